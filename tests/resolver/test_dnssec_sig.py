"""The signature check's own pieces against dnspython as the reference: every supported
algorithm verifies what dnspython signs (and rejects an altered signature), key tags, the
canonical form of rdata with names (case folded as RFC 4034 6.2 says), wildcard owners, and
the ECDSA signature's conversion for OpenSSL with integers that start with zero octets."""
from __future__ import annotations

import time

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.dnssec.sig import (Bogus, Counter, Key, canonical_rdata, parse_sig, signed_data,
                                 signer_of, verify_rrset)
from resolver.limits import DEFAULT

A = dns.dnssec.Algorithm
NOW = int(time.time())


def w(name: str) -> bytes:
    return dns.name.from_text(name).to_wire()


def _private(alg: int):
    if alg in (A.RSASHA1, A.RSASHA1NSEC3SHA1, A.RSASHA256, A.RSASHA512):
        return rsa.generate_private_key(public_exponent=65537, key_size=1024)
    if alg == A.ECDSAP256SHA256:
        return ec.generate_private_key(ec.SECP256R1())
    if alg == A.ECDSAP384SHA384:
        return ec.generate_private_key(ec.SECP384R1())
    if alg == A.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    return ed448.Ed448PrivateKey.generate()


def _sign(rrset, priv, dnskey, signer: str = "example."):
    return dns.dnssec.sign(rrset, priv, dns.name.from_text(signer), dnskey, NOW - 60,
                           NOW + 3600)


def _check(owner: str, rrset, sig, dnskey, signer: str = "example.", counter=None):
    rdatas = [rd.to_wire() for rd in rrset]      # as sent: names keep their case
    rec = (w(owner), 46, 1, rrset.ttl, sig.to_wire())
    return verify_rrset(w(owner), rrset.rdtype, 1, rdatas, [rec], w(signer), [Key(dnskey)],
                        NOW, DEFAULT, counter or Counter())


@pytest.mark.parametrize("alg", [A.RSASHA1, A.RSASHA1NSEC3SHA1, A.RSASHA256, A.RSASHA512,
                                 A.ECDSAP256SHA256, A.ECDSAP384SHA384, A.ED25519, A.ED448])
def test_every_supported_algorithm_verifies_and_rejects_an_altered_signature(alg):
    priv = _private(alg)
    dnskey = dns.dnssec.make_dnskey(priv.public_key(), alg)
    rrset = dns.rrset.from_text("www.example.", 300, "IN", "A", "192.0.2.1", "192.0.2.2")
    sig = _sign(rrset, priv, dnskey)
    c = Counter()
    got = _check("www.example.", rrset, sig, dnskey, counter=c)
    assert got.key_tag == dns.dnssec.key_id(dnskey) and got.algorithm == alg
    assert c.sig_checks == 1
    bad = sig.replace(signature=sig.signature[:-1] + bytes([sig.signature[-1] ^ 1]))
    with pytest.raises(Bogus, match="does not verify"):
        _check("www.example.", rrset, bad, dnskey)
    short = sig.replace(signature=sig.signature[:-1])
    with pytest.raises(Bogus, match="does not verify"):
        _check("www.example.", rrset, short, dnskey)


def test_key_fields_and_tags_match_dnspython():
    for alg in (A.RSASHA256, A.ECDSAP256SHA256, A.ED25519):
        for flags in (256, 257):
            dnskey = dns.dnssec.make_dnskey(_private(alg).public_key(), alg, flags=flags)
            k = Key(dnskey.to_wire())
            assert (k.tag, k.algorithm, k.flags) == (dns.dnssec.key_id(dnskey), alg, flags)
            assert k.wire == dnskey.to_digestable()
    md5 = dns.rdata.from_text("IN", "DNSKEY", "256 3 1 AwEAAbBCDEFG0123456789ab")
    assert Key(md5).tag == dns.dnssec.key_id(md5)
    with pytest.raises(ValueError):
        Key(b"\x01\x00\x03")


def test_a_key_the_crypto_library_rejects_fails_its_checks_without_raising():
    priv = _private(A.ECDSAP256SHA256)
    dnskey = dns.dnssec.make_dnskey(priv.public_key(), A.ECDSAP256SHA256)
    rrset = dns.rrset.from_text("www.example.", 300, "IN", "A", "192.0.2.1")
    sig = _sign(rrset, priv, dnskey)
    broken = Key(dnskey.to_wire()[:-1])          # one octet short of a P-256 point
    broken.tag = dns.dnssec.key_id(dnskey)
    rec = (w("www.example."), 46, 1, 300, sig.to_wire())
    with pytest.raises(Bogus, match="does not verify"):
        verify_rrset(w("www.example."), 1, 1, [rrset[0].to_wire()], [rec], w("example."),
                     [broken], NOW, DEFAULT, Counter())
    assert broken.verify(sig.signature, b"data") is False and broken.verify(b"", b"") is False


@pytest.mark.parametrize("rdtype,texts", [
    ("MX", ["10 Mail.Example.", "20 MX2.example."]),
    ("SOA", ["NS1.Example. HostMaster.EXAMPLE. 1 3600 600 86400 300"]),
    ("SRV", ["0 5 5060 SIP.Example."]),
    ("NAPTR", ['100 10 "S" "SIP+D2U" "" _SIP._udp.EXAMPLE.']),
    ("CNAME", ["WWW.Example."]),
    ("PX", ["10 Map822.EXAMPLE. MapX400.Example."]),
    ("RP", ["Admin.Example. TXT.Example."]),
    ("TXT", ['"Mixed Case Stays"']),
])
def test_names_in_rdata_are_lower_cased_as_the_signer_did(rdtype, texts):
    """dnspython signs the canonical form (RFC 4034 6.2); the records arrive with their
    names as the server wrote them, and must still verify."""
    rrset = dns.rrset.from_text("Multi.Example.", 300, "IN", rdtype, *texts)
    for rd in rrset:
        assert canonical_rdata(rrset.rdtype, rd.to_wire()) == rd.to_digestable()
    priv = _private(A.ECDSAP256SHA256)
    dnskey = dns.dnssec.make_dnskey(priv.public_key(), A.ECDSAP256SHA256)
    sig = _sign(rrset, priv, dnskey)
    assert _check("Multi.Example.", rrset, sig, dnskey).covered == rrset.rdtype


def test_nsec_next_name_keeps_its_case_and_malformed_rdata_is_left_alone():
    nsec = dns.rdata.from_text("IN", "NSEC", "Next.Example. A RRSIG NSEC").to_wire()
    assert canonical_rdata(47, nsec) is nsec               # RFC 6840 5.1
    assert canonical_rdata(15, b"\x00\x0a\x04MAIL") == b"\x00\x0a\x04MAIL"  # runs past its end
    assert canonical_rdata(6, w("A.") + w("B.") + bytes(19)) == w("A.") + w("B.") + bytes(19)
    assert canonical_rdata(1, b"\xc0\x00\x02\x01") == b"\xc0\x00\x02\x01"


def test_signed_data_matches_dnspython_for_wildcards_and_duplicates():
    priv = _private(A.ECDSAP256SHA256)
    dnskey = dns.dnssec.make_dnskey(priv.public_key(), A.ECDSAP256SHA256)
    wild = dns.rrset.from_text("*.Sub.example.", 300, "IN", "MX", "20 B.example.", "10 A.example.")
    sig = _sign(wild, priv, dnskey)
    expanded = dns.name.from_text("X.Y.sub.example.")
    reference = dns.dnssec._make_rrsig_signature_data(
        dns.rrset.from_rdata_list(expanded, 300, list(wild)), sig)
    rdatas = [rd.to_wire() for rd in wild] + [list(wild)[0].to_wire()]   # one sent twice
    assert signed_data(parse_sig(sig.to_wire()), expanded.to_wire(), 15, 1, rdatas) == reference
    # and the check accepts the expansion (RFC 4035 5.3.2)
    rec = (expanded.to_wire(), 46, 1, 300, sig.to_wire())
    got = verify_rrset(expanded.to_wire(), 15, 1, rdatas, [rec], w("example."), [Key(dnskey)],
                       NOW, DEFAULT, Counter())
    assert got.labels == 2        # *.sub.example.: the wildcard label is not counted


def test_ecdsa_signatures_whose_integers_start_with_zero_or_a_high_bit_verify():
    """OpenSSL wants r and s as DER INTEGERs: leading zero octets dropped, a zero added
    before a high bit. Signs until r starts with a zero octet (1 in 256), at most 4000."""
    priv = _private(A.ECDSAP256SHA256)
    dnskey = dns.dnssec.make_dnskey(priv.public_key(), A.ECDSAP256SHA256)
    seen = set()
    for i in range(4000):       # dnspython signs deterministically: new data each time
        rrset = dns.rrset.from_text("www.example.", 300, "IN", "A",
                                    f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
        sig = _sign(rrset, priv, dnskey)
        r = sig.signature[:32]
        kind = "zero" if r[0] == 0 else "high" if r[0] & 0x80 else "low"
        if kind in seen:
            continue
        seen.add(kind)
        assert _check("www.example.", rrset, sig, dnskey).key_tag == dns.dnssec.key_id(dnskey)
        if len(seen) == 3:
            break
    assert seen == {"zero", "high", "low"}


LABEL = st.text(alphabet="abcXYZ09-", min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(st.lists(LABEL, min_size=1, max_size=4), st.sampled_from(["MX", "CNAME", "SRV", "NS"]))
def test_canonical_form_matches_dnspython(labels, rdtype):
    name = ".".join(labels) + "."
    text = {"MX": f"5 {name}", "SRV": f"1 2 3 {name}"}.get(rdtype, name)
    rd = dns.rdata.from_text("IN", rdtype, text)
    assert canonical_rdata(rd.rdtype, rd.to_wire()) == rd.to_digestable()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), st.sampled_from([b"", w("Example."), w("a.b.example.")]))
def test_signer_of_agrees_with_the_full_parse(tail, signer):
    rdata = bytes(18) + signer + tail if signer else bytes(18) + tail
    p = parse_sig(rdata)
    assert signer_of(rdata) == (p.signer if p is not None else None)
    if signer:
        assert signer_of(rdata) == signer          # as sent: the case is kept
