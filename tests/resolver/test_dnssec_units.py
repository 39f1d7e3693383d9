"""DNSSEC building blocks without sockets: signature checks and their KeyTrap budget,
NSEC/NSEC3 proofs, NSEC3 hash budget and iteration cap, trust anchors, EDE, and fuzzing of
the record parsers with hypothesis."""
from __future__ import annotations

import struct
import time

import dns.dnssec
import dns.name
import dns.rdata
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.dnssec import denial, with_ede
from resolver.dnssec.sig import Bogus, Counter, Key, parse_sig, verify_rrset
from resolver.limits import DEFAULT
from resolver.dnssec.trust_anchor import ROOT_ANCHOR_FILE, TrustAnchorError, load

INSECURE, SECURE = denial.INSECURE, denial.SECURE


def w(name: str) -> bytes:
    return dns.name.from_text(name).to_wire()


# ---- signatures --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def signed():
    """An A rrset signed by an ECDSA P-256 key of example."""
    priv = ec.generate_private_key(ec.SECP256R1())
    key = dns.dnssec.make_dnskey(priv.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256)
    name = dns.name.from_text("www.example.")
    rrset = dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.1", "192.0.2.2")
    now = int(time.time())
    sig = dns.dnssec.sign(rrset, priv, dns.name.from_text("example."), key, now - 60, now + 3600)
    rdatas = [rd.to_digestable() for rd in rrset]
    return key, rdatas, sig, now


def _sigrec(sig) -> tuple:
    return (w("www.example."), 46, 1, 300, sig.to_digestable())


def test_valid_signature_verifies_and_case_does_not_matter(signed):
    key, rdatas, sig, now = signed
    c = Counter()
    got = verify_rrset(w("WWW.Example."), 1, 1, list(reversed(rdatas)), [_sigrec(sig)],
                       w("EXAMPLE."), [Key(key)], now, DEFAULT, c)
    assert got.key_tag == dns.dnssec.key_id(key) and c.sig_checks == 1


def test_altered_data_and_wrong_signer_are_bogus(signed):
    key, rdatas, sig, now = signed
    with pytest.raises(Bogus, match="does not verify"):
        verify_rrset(w("www.example."), 1, 1, [rdatas[0], b"\xc0\x00\x02\x09"],
                     [_sigrec(sig)], w("example."), [Key(key)], now, DEFAULT, Counter())
    with pytest.raises(Bogus, match="no RRSIG"):
        verify_rrset(w("www.example."), 1, 1, rdatas, [_sigrec(sig)], w("other."),
                     [Key(key)], now, DEFAULT, Counter())


def test_validity_window_with_skew(signed):
    key, rdatas, sig, now = signed
    args = (w("www.example."), 1, 1, rdatas, [_sigrec(sig)], w("example."), [Key(key)])
    # Unbound's allowance: a tenth of the signature's validity (3,660 s here), at least
    # dnssec_sig_skew_min
    skew = max(DEFAULT.dnssec_sig_skew_min, min(DEFAULT.dnssec_sig_skew_max, 3660 // 10))
    assert skew == 3600
    verify_rrset(*args, now + 3600 + skew - 1, DEFAULT, Counter())        # within the skew
    with pytest.raises(Bogus, match="expired") as e:
        verify_rrset(*args, now + 3600 + skew + 10, DEFAULT, Counter())
    assert e.value.ede == 7
    with pytest.raises(Bogus, match="not yet valid") as e:
        verify_rrset(*args, now - 60 - skew - 10, DEFAULT, Counter())
    assert e.value.ede == 8


def test_keytrap_colliding_keys_and_signatures_are_bounded(signed):
    """40 keys with the signature's tag and 40 signatures: at most the per-rrset budget of
    verifications, each signature tried against at most the collision cap of keys."""
    key, rdatas, sig, now = signed
    tag = dns.dnssec.key_id(key)
    fakes = []
    while len(fakes) < 40:
        k = Key(dns.dnssec.make_dnskey(ec.generate_private_key(ec.SECP256R1()).public_key(),
                                       dns.dnssec.Algorithm.ECDSAP256SHA256))
        k.tag = tag         # pretend they collide (the tag is only used to pick candidates)
        fakes.append(k)
    bad = [sig.replace(signature=bytes(64 - i) + bytes([i]) * i) for i in range(40)]
    c = Counter()
    with pytest.raises(Bogus, match="KeyTrap"):
        verify_rrset(w("www.example."), 1, 1, rdatas, [_sigrec(s) for s in bad], w("example."),
                     fakes, now, DEFAULT, c)
    assert c.sig_checks == DEFAULT.dnssec_max_sig_checks_per_rrset
    # a tighter collision cap: one key per signature, still bounded by the rrset budget
    c = Counter()
    with pytest.raises(Bogus):
        verify_rrset(w("www.example."), 1, 1, rdatas, [_sigrec(s) for s in bad[:3]],
                     w("example."), fakes, now,
                     DEFAULT.replace(dnssec_max_key_tag_collisions=1), c)
    assert c.sig_checks == 3


def test_unsupported_algorithm_signature_is_not_tried(signed):
    key, rdatas, sig, now = signed
    odd = sig.replace(algorithm=3)          # DSA: not validated (RFC 8624)
    c = Counter()
    with pytest.raises(Bogus, match="not supported"):
        verify_rrset(w("www.example."), 1, 1, rdatas, [_sigrec(odd)], w("example."),
                     [Key(key)], now, DEFAULT, c)
    assert c.sig_checks == 0


# ---- NSEC ----------------------------------------------------------------------------------

def nsec(owner: str, nxt: str, *types: str) -> denial.Nsec:
    rd = dns.rdata.from_text("IN", "NSEC", f"{nxt} {' '.join(types)}")
    return denial.Nsec(w(owner), rd.to_digestable())


ZONE = [nsec("example.", "a.example.", "SOA", "NS", "NSEC", "RRSIG", "DNSKEY"),
        nsec("a.example.", "x.b.example.", "A", "NSEC", "RRSIG"),
        nsec("x.b.example.", "d.example.", "A", "NSEC", "RRSIG"),
        nsec("d.example.", "*.w.example.", "NS", "DS", "NSEC", "RRSIG"),
        nsec("*.w.example.", "example.", "TXT", "NSEC", "RRSIG")]


def test_canonical_order():
    names = ["example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.",
             "zABC.a.EXAMPLE.", "z.example.", "\\001.z.example.", "*.z.example.",
             "\\200.z.example."]
    keys = [denial.canon(w(n)) for n in names]
    assert keys == sorted(keys)


def test_nsec_nxdomain_needs_name_and_wildcard_denied():
    assert denial.nsec_nxdomain(ZONE, w("c.example.")) == SECURE
    with pytest.raises(Bogus):          # the wildcard proof (*.example.) left out
        denial.nsec_nxdomain([ZONE[2]], w("c.example."))
    with pytest.raises(Bogus):          # name exists
        denial.nsec_nxdomain(ZONE, w("a.example."))
    with pytest.raises(Bogus):          # *.w.example. exists: y.w.example. must be expanded
        denial.nsec_nxdomain(ZONE, w("y.w.example."))


def test_nsec_nodata_ent_and_wildcard_nodata():
    assert denial.nsec_nodata(ZONE, w("a.example."), 16) == SECURE
    with pytest.raises(Bogus):
        denial.nsec_nodata(ZONE, w("a.example."), 1)              # A exists
    assert denial.nsec_nodata(ZONE, w("b.example."), 1) == SECURE   # empty non-terminal
    assert denial.nsec_nodata(ZONE, w("y.w.example."), 1) == SECURE  # wildcard NODATA
    with pytest.raises(Bogus):
        denial.nsec_nodata(ZONE, w("y.w.example."), 16)           # the wildcard has TXT


def test_nsec_delegation_rules():
    """RFC 6840 4.1/4.4: a parent-side NSEC proves only the DS's absence (or presence)."""
    deleg = [nsec("c.example.", "d.example.", "NS", "NSEC", "RRSIG")]
    assert denial.nsec_no_ds(deleg, w("c.example.")) == INSECURE
    with pytest.raises(Bogus):
        denial.nsec_nodata(deleg, w("c.example."), 1)
    with pytest.raises(Bogus):      # names below a delegation are not denied by it
        denial.nsec_nxdomain(deleg + [ZONE[0]], w("x.c.example."))
    with pytest.raises(Bogus, match="DS exists"):
        denial.nsec_no_ds(ZONE, w("d.example."))
    with pytest.raises(Bogus, match="delegation"):
        denial.nsec_no_ds(ZONE, w("a.example."))         # not a zone cut


def test_nsec_wildcard_answer():
    assert denial.nsec_wildcard(ZONE, w("y.w.example."), 2) == SECURE
    with pytest.raises(Bogus):
        denial.nsec_wildcard(ZONE, w("a.example."), 1)      # exists: no NSEC covers it


def test_nsec_wildcard_answer_needs_the_closest_encloser_its_labels_imply():
    """RFC 4035 5.3.4, RFC 4592: an NSEC covering the name is not enough; the closest
    encloser it shows must be the wildcard's parent. y.w.example. from *.example. (labels
    1) would need w.example. not to exist, and the NSEC shows it does (an ancestor of the
    next name *.w.example.); the true answer is NXDOMAIN or the *.w.example. expansion."""
    with pytest.raises(Bogus, match="closest encloser"):
        denial.nsec_wildcard(ZONE, w("y.w.example."), 1)
    # deeper: q.y.w.example. from *.w.example. needs y.w.example. absent, which the
    # covering NSEC (*.w.example. -> example.) shows: closest encloser w.example.
    assert denial.nsec_wildcard(ZONE, w("q.y.w.example."), 2) == SECURE
    with pytest.raises(Bogus, match="closest encloser"):
        denial.nsec_wildcard(ZONE, w("q.y.w.example."), 3)


# ---- NSEC3 ---------------------------------------------------------------------------------

def _h(name: str, salt: bytes, it: int) -> bytes:
    import base64
    return base64.b32hexdecode(dns.dnssec.nsec3_hash(name, salt, it, 1).upper())


def nsec3_zone(names: dict, salt=b"\xab", iterations=1, optout=()) -> list:
    """NSEC3 records for ``names`` (name -> types) in zone example."""
    import base64
    hashes = sorted((_h(n, salt, iterations), n) for n in names)
    out = []
    for i, (h, n) in enumerate(hashes):
        nxt = hashes[(i + 1) % len(hashes)][0]
        flags = 1 if n in optout else 0
        label = base64.b32hexencode(h).decode().lower()
        rd = dns.rdata.from_text(
            "IN", "NSEC3", f"1 {flags} {iterations} {salt.hex()} "
            f"{base64.b32hexencode(nxt).decode()} {' '.join(names[n])}")
        out.append(denial.Nsec3(w(f"{label}.example."), rd.to_digestable()))
    return out


NAMES3 = {"example.": ["SOA", "NS", "DNSKEY"], "a.example.": ["A"], "b.example.": [],
          "x.b.example.": ["A"], "*.w.example.": ["TXT"], "w.example.": [],
          "d.example.": ["NS", "DS"], "e.example.": ["NS"]}


def proof(recs, limits=DEFAULT):
    return denial.Nsec3Proof(recs, w("example."), limits, Counter())


def test_nsec3_hash_matches_dnspython():
    p = proof(nsec3_zone(NAMES3))
    assert p.h(w("A.Example.")) == _h("a.example.", b"\xab", 1)


def test_nsec3_proofs():
    recs = nsec3_zone(NAMES3)
    assert proof(recs).nxdomain(w("zz.example.")) == SECURE
    assert proof(recs).nodata(w("a.example."), 16) == SECURE
    assert proof(recs).nodata(w("b.example."), 1) == SECURE           # ENT
    assert proof(recs).nodata(w("q.w.example."), 1) == SECURE         # wildcard NODATA
    assert proof(recs).wildcard(w("q.w.example."), 2) == SECURE
    assert proof(recs).no_ds(w("e.example.")) == INSECURE
    with pytest.raises(Bogus):
        proof(recs).nxdomain(w("a.example."))
    with pytest.raises(Bogus):
        proof(recs).nodata(w("a.example."), 1)
    with pytest.raises(Bogus):
        proof(recs).no_ds(w("d.example."))
    with pytest.raises(Bogus):                                     # wildcard exists
        proof(recs).nxdomain(w("q.w.example."))
    with pytest.raises(Bogus):                                     # proofs left out
        proof(recs[:2]).nxdomain(w("zz.example."))


def test_nsec3_opt_out_never_vouches_for_a_wildcard():
    """RFC 5155 9.2: a wildcard answer or wildcard NODATA whose next closer name is covered
    by an opt-out span is not secure; a NODATA with no matching NSEC3 and no wildcard under
    such a span is insecure, not bogus (8.6, and as Unbound for other types)."""
    names = dict(NAMES3)
    plain = nsec3_zone(names)
    opted = nsec3_zone(names, optout=set(names))
    assert proof(plain).wildcard(w("q.w.example."), 2) == SECURE
    assert proof(opted).wildcard(w("q.w.example."), 2) == INSECURE
    assert proof(plain).nodata(w("q.w.example."), 1) == SECURE
    assert proof(opted).nodata(w("q.w.example."), 1) == INSECURE
    no_wild = {n: t for n, t in names.items() if not n.startswith("*")}
    with pytest.raises(Bogus):
        proof(nsec3_zone(no_wild)).nodata(w("zz.example."), 1)
    assert proof(nsec3_zone(no_wild, optout=set(no_wild))).nodata(w("zz.example."), 1) \
        == INSECURE


def test_nsec3_opt_out_makes_denial_insecure():
    names = dict(NAMES3)
    recs = nsec3_zone(names, optout=set(names))
    assert proof(recs).nxdomain(w("zz.example.")) == INSECURE
    assert proof(recs).no_ds(w("unlisted.example.")) == INSECURE


def test_nsec3_iterations_above_cap_are_insecure_and_hashes_are_budgeted():
    recs = nsec3_zone(NAMES3, iterations=151)
    p = proof(recs)
    assert p.nxdomain(w("zz.example.")) == INSECURE and p.done == 0   # nothing hashed
    deep = "." .join(f"l{i}" for i in range(60)) + ".zz.example."
    c = Counter()
    p = denial.Nsec3Proof(nsec3_zone(NAMES3), w("example."), DEFAULT, c)
    with pytest.raises(Bogus, match="hash budget"):
        p.nxdomain(w(deep))
    assert c.nsec3_hashes == DEFAULT.nsec3_max_hashes_per_proof
    # the per-query budget spans proofs: a fresh proof on a spent counter stops at once
    c.nsec3_hashes = DEFAULT.nsec3_max_hashes_per_query
    p = denial.Nsec3Proof(nsec3_zone(NAMES3), w("example."), DEFAULT, c)
    with pytest.raises(Bogus, match="per query"):
        p.nxdomain(w("zz.example."))


def test_nsec3_unknown_hash_or_flags_are_ignored():
    recs = nsec3_zone(NAMES3)
    for r in recs:
        r.alg = 2
    assert proof(recs).nxdomain(w("zz.example.")) == INSECURE


# ---- anchors, EDE ----------------------------------------------------------------------------

def test_shipped_root_anchor():
    anchors = load(ROOT_ANCHOR_FILE)
    root = anchors[b"\x00"]
    assert {dns.dnssec.key_id(k) for k in root.dnskey} == {20326, 38696}


def test_anchor_files(tmp_path):
    ds = tmp_path / "ds"
    ds.write_text(". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237"
                  "C7F8EC8D\n; comment\nexample. 3600 IN DS 1 13 2 " + "00" * 32 + "\n")
    a = load(ds)
    assert set(a) == {b"\x00", w("example.")} and a[b"\x00"].ds[0].key_tag == 20326
    xml = tmp_path / "root-anchors.xml"
    xml.write_text(
        '<?xml version="1.0"?><TrustAnchor id="x" source="y"><Zone>.</Zone>'
        '<KeyDigest id="old" validFrom="2010-07-15T00:00:00+00:00" '
        'validUntil="2019-01-11T00:00:00+00:00"><KeyTag>19036</KeyTag><Algorithm>8'
        '</Algorithm><DigestType>2</DigestType><Digest>' + "AB" * 32 + '</Digest></KeyDigest>'
        '<KeyDigest id="k" validFrom="2017-02-02T00:00:00+00:00"><KeyTag>20326</KeyTag>'
        '<Algorithm>8</Algorithm><DigestType>2</DigestType><Digest>' + "CD" * 32 +
        '</Digest></KeyDigest></TrustAnchor>')
    a = load(xml)
    assert [d.key_tag for d in a[b"\x00"].ds] == [20326]        # the expired one skipped
    bad = tmp_path / "bad"
    bad.write_text(". IN A 192.0.2.1\n")
    with pytest.raises(TrustAnchorError, match="bad:1"):
        load(bad)
    with pytest.raises(TrustAnchorError):
        load(tmp_path / "missing")
    (tmp_path / "bad.xml").write_text("<TrustAnchor><Zone>.</Zone>")
    with pytest.raises(TrustAnchorError):
        load(tmp_path / "bad.xml")


def test_with_ede_adds_the_option():
    import dns.edns
    import dns.message
    from resolver.wire.codec import build_response
    q = dns.message.make_query("x.example.", "A", use_edns=0)
    wire = build_response(7, 0x8182, q.question[0].name.to_wire() + b"\x00\x01\x00\x01",
                          [], [], [], edns=True)
    out = dns.message.from_wire(with_ede(wire, 7, "signature expired"))
    assert [(o.code, o.text) for o in out.options] == [(7, "signature expired")]
    assert with_ede(wire[:-11], 7) == wire[:-11]          # no OPT: unchanged


# ---- fuzz ----------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_record_parsers(data):
    parse_sig(data)
    try:
        denial.Nsec(w("a.example."), data)
    except (ValueError, IndexError):
        pass
    try:
        r = denial.Nsec3(w("0123456789abcdefghijklmnopqrstuv.example."), data)
        proof([r]).nxdomain(w("q.example."))
    except (ValueError, IndexError, struct.error, Bogus):
        pass
    denial.types_of(data)


def test_secure_ttl_capped_by_rrsig(signed):
    """RFC 4035 5.3.3: a validated rrset lives no longer than its RRSIG's original TTL and
    no longer than the signature's validity."""
    from resolver.dnssec.validator import _ttl_cap
    key, rdatas, sig, now = signed
    s = parse_sig(sig.to_digestable())
    assert _ttl_cap(s, now) == 300                    # original TTL
    assert _ttl_cap(s, now + 3600 - 100) == 100       # expires in 100 s
    assert _ttl_cap(s, now + 3600 + 5) == 0           # already past expiry


NAME_POOL = ["example.", "a.example.", "b.example.", "x.b.example.", "*.example.",
             "*.b.example.", "z.example.", "deep.x.b.example.", "other.", "A.EXAMPLE."]
TYPE_POOL = ["A", "NS", "SOA", "CNAME", "DS", "DNAME", "TXT", "NSEC", "RRSIG"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NAME_POOL), st.sampled_from(NAME_POOL),
                          st.sets(st.sampled_from(TYPE_POOL), max_size=5)), max_size=6),
       st.sampled_from(NAME_POOL), st.sampled_from([1, 2, 5, 16, 43]))
def test_fuzz_nsec_proofs_never_crash(chain, name, qtype):
    """Whatever NSEC records a zone sends (signed, but inconsistent), a proof either holds or
    is Bogus: never another exception, never a hang."""
    recs = [nsec(o, n, *t) for o, n, t in chain]
    for fn in (lambda: denial.nsec_nxdomain(recs, w(name)),
               lambda: denial.nsec_nodata(recs, w(name), qtype),
               lambda: denial.nsec_no_ds(recs, w(name)),
               lambda: denial.nsec_wildcard(recs, w(name), 1)):
        try:
            assert fn() in (SECURE, INSECURE)
        except Bogus:
            pass


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(NAME_POOL[:8]), st.sets(st.sampled_from(TYPE_POOL),
                                                                 max_size=4), max_size=6),
       st.sampled_from(NAME_POOL), st.sampled_from([1, 16, 43]), st.booleans(),
       st.integers(0, 3))
def test_fuzz_nsec3_proofs_never_crash(names, name, qtype, optout, drop):
    names = {n: sorted(t - {"NSEC", "RRSIG"}) for n, t in names.items()}
    recs = nsec3_zone(names, optout=set(names) if optout else ()) if names else []
    recs = recs[drop:]
    for fn in (lambda p: p.nxdomain(w(name)), lambda p: p.nodata(w(name), qtype),
               lambda p: p.no_ds(w(name)), lambda p: p.wildcard(w(name), 1)):
        try:
            assert fn(proof(recs)) in (SECURE, INSECURE)
        except Bogus:
            pass


def test_resolver_wiring_of_trust_anchor_and_validate(tmp_path):
    """Validation is on with the shipped root anchor for the real root hints, on with a given
    anchor, off for other hints without an anchor, and off with validate=False."""
    import resolver
    r = resolver.Resolver()
    assert r.dnssec is not None and b"\x00" in r.dnssec.anchors
    hints = [("a.root.", "127.0.0.1")]
    assert resolver.Resolver(hints).dnssec is None
    assert resolver.Resolver(validate=False).dnssec is None
    assert resolver.Resolver(hints, trust_anchor=ROOT_ANCHOR_FILE).dnssec is not None
    assert resolver.Resolver(hints, trust_anchor=ROOT_ANCHOR_FILE, validate=False).dnssec is None
    bad = tmp_path / "anchor"
    bad.write_text("garbage\n")
    with pytest.raises(TrustAnchorError, match="anchor:1"):
        resolver.Resolver(hints, trust_anchor=bad)
