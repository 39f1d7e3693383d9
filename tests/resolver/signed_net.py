"""A signed fake Internet: ``FakeNet`` zones signed by dnspython (NSEC), answered as a
DNSSEC-aware authority does (RFC 4035 3.1): RRSIGs beside every rrset, NSEC proofs with
NXDOMAIN, NODATA and wildcard answers, DS or the NSEC proving its absence with referrals.
An attacker (``Attacker``) rewrites the replies of chosen servers; ``truth`` is what the
genuine zones say, for tests that hold the resolver's AD to it."""
from __future__ import annotations

import time

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from scenario import FakeNet, small_internet

IN = dns.rdataclass.IN
RRSIG, NSEC, NSEC3, DS, NS, SOA, DNSKEY, CNAME, DNAME, NSEC3PARAM = (
    dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3, dns.rdatatype.DS,
    dns.rdatatype.NS, dns.rdatatype.SOA, dns.rdatatype.DNSKEY, dns.rdatatype.CNAME,
    dns.rdatatype.DNAME, dns.rdatatype.NSEC3PARAM)
LIFETIME = 7 * 86400

#: example.com.'s own data beyond small_internet's: a wildcard with a name of its own below
#: it, a second wildcard owner for mismatched replays, a DNAME inside the zone.
EXTRA = """
*.wild 300 TXT "wild"
real.wild 300 A 192.0.2.55
deeper.real.wild 300 A 192.0.2.56
dn 300 DNAME target.example.com.
host.target 300 A 192.0.2.77
"""


#: n3.example.com.: signed with NSEC3 (its servers 10.0.3.3), with a wildcard, an empty
#: non-terminal and an unsigned delegation left out of the chain by an opt-out span.
N3_ZONE = """
@ 3600 NS ns.n3
ns 3600 A 10.0.3.3
www 300 A 192.0.2.31
*.wild 300 A 192.0.2.39
*.wild 300 TXT "wild3"
real.wild 300 A 192.0.2.35
a.deep.ent 300 A 192.0.2.36
unsigned 300 NS ns.other.net.
"""
N3_SALT, N3_ITERATIONS = b"\xab\xcd", 0


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


class SignedNet(FakeNet):
    """FakeNet whose signed zones (those with a DNSKEY at the apex) add DNSSEC records:
    NSEC proofs, or NSEC3 ones in a zone with an NSEC3PARAM."""

    def _fill(self, r: dns.message.Message, z, qname: dns.name.Name, qtype) -> None:
        super()._fill(r, z, qname, qtype)
        if z.get_rdataset(z.origin, DNSKEY) is None:
            return
        proofs = Nsec3Proofs(z) if z.get_rdataset(z.origin, NSEC3PARAM) else NsecProofs(z)
        _sign_reply(r, z, qname, qtype, proofs)


def _rrsig(z, owner: dns.name.Name, rdtype, node_name: dns.name.Name | None = None):
    node = z.get_node(node_name or owner)
    if node is None:
        return None
    sig = node.get_rdataset(IN, RRSIG, rdtype)
    if sig is None:
        return None
    rs = dns.rrset.RRset(owner, IN, RRSIG, rdtype)
    rs.update(sig)
    return rs


def _nsec_of(z, owner: dns.name.Name):
    node = z.get_node(owner)
    ns = node.get_rdataset(IN, NSEC) if node is not None else None
    if ns is None:
        return []
    rs = dns.rrset.RRset(owner, IN, NSEC)
    rs.update(ns)
    return [rs, _rrsig(z, owner, NSEC)]


def _covering(z, target: dns.name.Name):
    """The NSEC rrset (and its RRSIG) whose span covers ``target``."""
    for owner, node in z.nodes.items():
        owner = owner if owner.is_absolute() else owner.concatenate(z.origin)
        ns = node.get_rdataset(IN, NSEC)
        if ns is None:
            continue
        nxt = ns[0].next
        if owner < target < nxt or (nxt <= owner and (target > owner or target < nxt)):
            return _nsec_of(z, owner)
    return []


def _exists(z, n: dns.name.Name) -> bool:
    return any(m.is_subdomain(n) for m in _names(z))


def _names(z):
    return [n if n.is_absolute() else n.concatenate(z.origin) for n in z.nodes]


def _closest_encloser(z, n: dns.name.Name) -> dns.name.Name:
    while not _exists(z, n) and n != z.origin:
        n = n.parent()
    return n


class NsecProofs:
    """What an NSEC zone puts in the authority section to deny a name or a type."""

    def __init__(self, z) -> None:
        self.z = z

    def nxdomain(self, n):
        ce = _closest_encloser(self.z, n)
        return _covering(self.z, n) + _covering(self.z, dns.name.Name((b"*",) + ce.labels))

    def nodata(self, n):
        return _nsec_of(self.z, n)

    def empty(self, n):
        """An empty non-terminal's NODATA, or a wildcard's."""
        ce = _closest_encloser(self.z, n)
        wild = dns.name.Name((b"*",) + ce.labels)
        out = _covering(self.z, n)
        if self.z.get_node(wild) is not None:
            out += _nsec_of(self.z, wild)
        return out

    def expansion(self, n):
        return _covering(self.z, n)

    def no_ds(self, child):
        return _nsec_of(self.z, child)


class Nsec3Proofs:
    """The same for an NSEC3 zone (RFC 5155 7.2): closest encloser, next closer name,
    wildcard; an opt-out span for an unsigned delegation left out of the chain."""

    def __init__(self, z) -> None:
        self.z = z
        self.chain = sorted(
            ((_b32(owner.labels[0]), owner) for owner, node in _nodes(z)
             if node.get_rdataset(IN, NSEC3) is not None), key=lambda x: x[0])

    def _h(self, n):
        return _b32(dns.dnssec.nsec3_hash(n, N3_SALT, N3_ITERATIONS, 1).lower().encode())

    def _rr(self, owner):
        node = self.z.get_node(owner)
        rs = dns.rrset.RRset(owner, IN, NSEC3)
        rs.update(node.get_rdataset(IN, NSEC3))
        return [rs, _rrsig(self.z, owner, NSEC3)]

    def match(self, n):
        h = self._h(n)
        return next((self._rr(o) for hh, o in self.chain if hh == h), [])

    def cover(self, n):
        h = self._h(n)
        for i, (hh, o) in enumerate(self.chain):
            nxt = self.chain[(i + 1) % len(self.chain)][0]
            if hh < h < nxt or (nxt <= hh and (h > hh or h < nxt)):
                return self._rr(o)
        return []

    def _ce_proof(self, n):
        """The closest encloser's NSEC3 and the one covering the next closer name."""
        ce = n
        while not self.match(ce) and ce != self.z.origin:
            ce = ce.parent()
        nc = n
        while nc.parent() != ce:
            nc = nc.parent()
        return ce, self.match(ce) + (self.cover(nc) if nc != ce and n != ce else [])

    def nxdomain(self, n):
        ce, proof = self._ce_proof(n)
        return proof + self.cover(dns.name.Name((b"*",) + ce.labels))

    def nodata(self, n):
        # a name without an NSEC3 of its own: an unsigned delegation in an opt-out span
        return self.match(n) or self._ce_proof(n)[1]

    def empty(self, n):
        if self.match(n):                   # an empty non-terminal has its own NSEC3
            return self.match(n)
        ce, proof = self._ce_proof(n)
        return proof + self.match(dns.name.Name((b"*",) + ce.labels))

    def expansion(self, n):
        ce = _closest_encloser(self.z, n)
        nc = n
        while nc.parent() != ce:
            nc = nc.parent()
        return self.cover(nc)

    def no_ds(self, child):
        m = self.match(child)
        return m if m else self._ce_proof(child)[1]


def _b32(label: bytes) -> bytes:
    import base64
    label = label.upper()
    return base64.b32hexdecode(label + b"=" * (-len(label) % 8))


def _nodes(z):
    for n, node in z.nodes.items():
        yield (n if n.is_absolute() else n.concatenate(z.origin)), node


def add_nsec3_chain(z, optout: bool = True) -> None:
    """NSEC3 records for every authoritative name and empty non-terminal of ``z`` (an
    insecure delegation left to an opt-out span when ``optout``), and the NSEC3PARAM."""
    import base64
    names, omitted = {}, []
    for n, node in _nodes(z):
        types = {rds.rdtype for rds in node.rdatasets}
        below_cut = any(n != z.origin and n.is_subdomain(c) and n != c
                        for c, cn in _nodes(z) if cn.get_rdataset(IN, NS) and c != z.origin)
        if below_cut:
            continue                         # glue
        if optout and NS in types and n != z.origin and DS not in types:
            omitted.append(dns.dnssec.nsec3_hash(n, N3_SALT, N3_ITERATIONS, 1))
            continue                         # an unsigned delegation: in an opt-out span
        names[n] = types | ({RRSIG} if types - {NS} or n == z.origin or DS in types else set())
        e = n.parent()
        while e != z.origin and e.is_subdomain(z.origin):
            names.setdefault(e, set())       # empty non-terminals
            e = e.parent()
    names[z.origin] |= {NSEC3PARAM, DNSKEY, RRSIG}
    hashed = sorted((dns.dnssec.nsec3_hash(n, N3_SALT, N3_ITERATIONS, 1), n) for n in names)
    with z.writer() as txn:
        for i, (h, n) in enumerate(hashed):
            nxt = hashed[(i + 1) % len(hashed)][0]
            types = " ".join(dns.rdatatype.to_text(t) for t in sorted(names[n]))
            # opt-out only on the span that leaves a delegation out (RFC 5155 6)
            out = any(h < o < nxt or (nxt <= h and (o > h or o < nxt)) for o in omitted)
            rd = dns.rdata.from_text(IN, NSEC3, f"1 {1 if out else 0} {N3_ITERATIONS} "
                                                f"{N3_SALT.hex()} {nxt} {types}")
            txn.add(dns.name.from_text(h.lower(), z.origin), 300, rd)
        txn.add(z.origin, 0, dns.rdata.from_text(
            IN, NSEC3PARAM, f"1 0 {N3_ITERATIONS} {N3_SALT.hex()}"))


def _strip_nsec(z) -> None:
    """Takes away the NSEC chain ``sign_zone`` always adds (an NSEC3 zone has none)."""
    with z.writer() as txn:
        for n, node in list(_nodes(z)):
            if node.get_rdataset(IN, NSEC) is not None:
                txn.delete(n, NSEC)
                txn.delete(n, RRSIG, NSEC)


def _sign_reply(r: dns.message.Message, z, qname: dns.name.Name, qtype, proofs) -> None:
    add_auth = []
    answer = list(r.answer)
    for rs in answer:
        if rs.rdtype == RRSIG:
            continue
        signed = any(s.rdtype == RRSIG and s.covers == rs.rdtype and s.name == rs.name
                     for s in answer)
        if z.get_node(rs.name) is not None:
            sig = _rrsig(z, rs.name, rs.rdtype)
        elif rs.rdtype == CNAME and any(d.rdtype == DNAME for d in answer):
            continue                    # synthesized from the DNAME: unsigned
        else:                           # expanded from the wildcard of its closest encloser
            ce = _closest_encloser(z, rs.name)
            sig = _rrsig(z, rs.name, rs.rdtype, dns.name.Name((b"*",) + ce.labels))
            add_auth += proofs.expansion(rs.name)
        if sig is not None and not signed:
            r.answer.append(sig)
    aa = bool(r.flags & dns.flags.AA)
    referral = not aa and any(rs.rdtype == NS for rs in r.authority)
    if referral:
        child = next(rs.name for rs in r.authority if rs.rdtype == NS)
        if any(rs.rdtype == DS for rs in r.authority):
            add_auth.append(_rrsig(z, child, DS))
        else:
            add_auth += proofs.no_ds(child)
    elif any(rs.rdtype == SOA for rs in r.authority):
        add_auth.append(_rrsig(z, z.origin, SOA))
        final = qname
        for rs in answer:
            if rs.rdtype == CNAME and rs.name == final:
                final = rs[0].target
        if final.is_subdomain(z.origin):
            if r.rcode() == dns.rcode.NXDOMAIN:
                add_auth += proofs.nxdomain(final)
            elif z.get_node(final) is not None:
                add_auth += proofs.nodata(final)
            else:                       # an empty non-terminal, or a wildcard's NODATA
                add_auth += proofs.empty(final)
    seen = set()
    for rs in add_auth:
        if rs is None:
            continue
        k = (rs.name, rs.rdtype, rs.covers)
        if k not in seen and not any((a.name, a.rdtype, a.covers) == k for a in r.authority):
            seen.add(k)
            r.authority.append(rs)


def signed_world(wall: float | None = None, prefix: str = "10.0", extra: str = "",
                 second_algorithm: dict[str, bool] | None = None):
    """small_internet (its servers on ``prefix``) with EXTRA (and ``extra``) in
    example.com. and ., com. and example.com. signed (ECDSA P-256, NSEC), DS records in the
    parents. ``second_algorithm``: origin -> whether its parent holds a DS for it: those
    zones are signed with an Ed25519 key as well (each rrset then has two RRSIGs). Returns
    (net, anchor DS rrset, keys: origin -> (private key, DNSKEY) of its ECDSA key)."""
    second_algorithm = second_algorithm or {}
    wall = time.time() if wall is None else wall
    net = small_internet(SignedNet(), prefix)
    net.zone("n3.example.com.", N3_ZONE.replace("10.0.", prefix + "."), [f"{prefix}.3.3"])
    ez = net.zones[name("example.com.")]
    extra = dns.zone.from_text(EXTRA + extra + "n3 3600 NS ns.n3\nns.n3 3600 A 10.0.3.3\n"
                               .replace("10.0.", prefix + "."),
                               origin="example.com.", relativize=False, check_origin=False)
    with ez.writer() as txn:
        for n, rds in extra.iterate_rdatasets():
            txn.add(n, rds)
    keys = {}
    delegated = {}                      # origin -> the DNSKEYs its parent holds a DS for
    for origin, children in (("n3.example.com.", ()), ("example.com.", ("n3.example.com.",)),
                             ("com.", ("example.com.",)), (".", ("com.",))):
        z = net.zones[name(origin)]
        with z.writer() as txn:
            for child in children:
                for k in delegated[child]:
                    txn.add(name(child), 86400, dns.dnssec.make_ds(child, k, "SHA256"))
        priv = ec.generate_private_key(ec.SECP256R1())
        key = dns.dnssec.make_dnskey(priv.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256,
                                     flags=257)
        pairs = [(priv, key)]
        delegated[origin] = [key]
        if origin in second_algorithm:
            priv2 = ed25519.Ed25519PrivateKey.generate()
            key2 = dns.dnssec.make_dnskey(priv2.public_key(), dns.dnssec.Algorithm.ED25519,
                                          flags=257)
            pairs.append((priv2, key2))
            if second_algorithm[origin]:
                delegated[origin].append(key2)
        n3 = origin == "n3.example.com."
        if n3:
            add_nsec3_chain(z)
        dns.dnssec.sign_zone(z, keys=pairs, inception=int(wall) - 3600, lifetime=LIFETIME)
        if n3:
            _strip_nsec(z)
        keys[origin] = (priv, key)
    anchor = dns.rrset.from_rdata_list(dns.name.root, 86400,
                                       [dns.dnssec.make_ds(".", k, "SHA256")
                                        for k in delegated["."]])
    return net, anchor, keys



# ---- a tree of zone cuts, for downgrade attacks ----------------------------------------------
#: tld. (NSEC3 with opt-out) holds a signed child sub.tld. (NSEC), which holds a signed
#: grandchild g.sub.tld. (NSEC3, no opt-out); unsigned siblings: the opt-out delegations
#: uns0..uns11.tld. and u.sub.tld. (NSEC: NS without DS). ATTACKER serves an unsigned zone
#: of its own (``cut_world``'s ``forged``) that no genuine server delegates to.
CUT_ZONES = ("g.sub.tld.", "sub.tld.", "tld.", ".")
UNSIGNED_SIBLINGS = 12


def cut_world(wall: float | None = None, prefix: str = "10.9"):
    """The tree above on ``prefix`` addresses: root (.0.1), tld. (.1.1, .1.2), sub.tld.
    (.2.1, .2.2), g.sub.tld. (.3.1), the unsigned uns*.tld. (.4.1) and u.sub.tld. (.5.1);
    the attacker's own server .6.6. Returns (net, anchor DS rrset, keys: origin ->
    (private key, DNSKEY), names) where ``names`` holds ``forged`` (a zone below sub.tld.
    whose name hashes into one of tld.'s opt-out spans, as an attacker would pick it, served
    unsigned by the attacker) and ``victim`` (a name of sub.tld. whose hash falls in one of
    tld.'s opt-out spans too)."""
    wall = time.time() if wall is None else wall
    net = SignedNet()
    p = prefix
    uns = "".join(f"uns{i} 86400 NS ns.uns{i}\nns.uns{i} 86400 A {p}.4.1\n"
                  for i in range(UNSIGNED_SIBLINGS))
    net.zone(".", f"""
@ 86400 NS a.root.
a.root. 86400 A {p}.0.1
tld. 86400 NS ns1.tld.
tld. 86400 NS ns2.tld.
ns1.tld. 86400 A {p}.1.1
ns2.tld. 86400 A {p}.1.2
""", [f"{p}.0.1"])
    net.zone("tld.", f"""
@ 86400 NS ns1
@ 86400 NS ns2
ns1 86400 A {p}.1.1
ns2 86400 A {p}.1.2
www 300 A 192.0.2.1
sub 86400 NS ns1.sub
sub 86400 NS ns2.sub
ns1.sub 86400 A {p}.2.1
ns2.sub 86400 A {p}.2.2
{uns}""", [f"{p}.1.1", f"{p}.1.2"])
    tld = net.zones[name("tld.")]
    optout = _optout_spans(tld, ["sub.tld."])
    forged = _label_in_spans("y", "sub.tld.", optout)
    victim = _label_in_spans("v", "sub.tld.", optout)
    net.zone("sub.tld.", f"""
@ 3600 NS ns1
@ 3600 NS ns2
ns1 3600 A {p}.2.1
ns2 3600 A {p}.2.2
www 300 A 192.0.2.10
www 300 TXT "genuine"
{victim.split('.')[0]} 300 A 192.0.2.11
g 3600 NS ns.g
ns.g 3600 A {p}.3.1
u 3600 NS ns.u
ns.u 3600 A {p}.5.1
""", [f"{p}.2.1", f"{p}.2.2"])
    net.zone("g.sub.tld.", f"""
@ 3600 NS ns
ns 3600 A {p}.3.1
www 300 A 192.0.2.20
""", [f"{p}.3.1"])
    net.zone("uns0.tld.", f"""
@ 3600 NS ns.uns0.tld.
www 300 A 192.0.2.30
""", [f"{p}.4.1"])
    net.zone("u.sub.tld.", f"""
@ 3600 NS ns.u.sub.tld.
www 300 A 192.0.2.40
""", [f"{p}.5.1"])
    net.zone(forged, f"""
@ 3600 NS ns.evil.{forged}
ns.evil 3600 A {p}.6.6
www 300 A 203.0.113.66
""", [f"{p}.6.6"])
    keys = {}
    for origin in CUT_ZONES:
        z = net.zones[name(origin)]
        with z.writer() as txn:
            for child in keys:
                if name(child).parent() == z.origin:
                    txn.add(name(child), 86400,
                            dns.dnssec.make_ds(child, keys[child][1], "SHA256"))
        priv = ec.generate_private_key(ec.SECP256R1())
        key = dns.dnssec.make_dnskey(priv.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256,
                                     flags=257)
        nsec3 = origin in ("tld.", "g.sub.tld.")
        if nsec3:
            add_nsec3_chain(z, optout=origin == "tld.")
        dns.dnssec.sign_zone(z, keys=[(priv, key)], inception=int(wall) - 3600,
                             lifetime=LIFETIME)
        if nsec3:
            _strip_nsec(z)
        keys[origin] = (priv, key)
    # the names' spans are among those the signed zone serves
    served = [(_b32(o.labels[0]), node.get_rdataset(IN, NSEC3)[0].next)
              for o, node in _nodes(tld) if node.get_rdataset(IN, NSEC3) is not None
              and node.get_rdataset(IN, NSEC3)[0].flags & 1]
    assert _label_in_spans("y", "sub.tld.", served) == forged
    assert _label_in_spans("v", "sub.tld.", served) == victim
    anchor = dns.rrset.from_rdata_list(dns.name.root, 86400,
                                       [dns.dnssec.make_ds(".", keys["."][1], "SHA256")])
    return net, anchor, keys, {"forged": forged, "victim": victim}


def _optout_spans(z, signed_children):
    """(owner hash, next hash) of the opt-out spans the NSEC3 chain of ``z`` will have once
    ``signed_children`` have their DS: those that leave out one of its unsigned
    delegations (``add_nsec3_chain``)."""
    import copy
    z = copy.deepcopy(z)
    with z.writer() as txn:
        for child in signed_children:
            txn.add(name(child), 86400, dns.rdata.from_text(IN, DS, "1 13 2 " + "00" * 32))
    add_nsec3_chain(z, optout=True)
    out = []
    for owner, node in _nodes(z):
        rds = node.get_rdataset(IN, NSEC3)
        if rds is not None and rds[0].flags & 1:
            out.append((_b32(owner.labels[0]), rds[0].next))
    return out


def _label_in_spans(prefix: str, parent: str, spans) -> str:
    """The first name ``<prefix>N.<parent>`` whose NSEC3 hash one of ``spans`` covers."""
    for i in range(10000):
        n = name(f"{prefix}{i}.{parent}")
        h = _b32(dns.dnssec.nsec3_hash(n, N3_SALT, N3_ITERATIONS, 1).encode())
        for o, nxt in spans:
            if o < h < nxt or (nxt <= o and (h > o or h < nxt)):
                return n.to_text()
    raise AssertionError("no name hashes into an opt-out span")
