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
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec

from scenario import FakeNet, small_internet

IN = dns.rdataclass.IN
RRSIG, NSEC, NSEC3, DS, NS, SOA, DNSKEY, CNAME, DNAME = (
    dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3, dns.rdatatype.DS,
    dns.rdatatype.NS, dns.rdatatype.SOA, dns.rdatatype.DNSKEY, dns.rdatatype.CNAME,
    dns.rdatatype.DNAME)
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


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


class SignedNet(FakeNet):
    """FakeNet whose signed zones (those with a DNSKEY at the apex) add DNSSEC records."""

    def _fill(self, r: dns.message.Message, z, qname: dns.name.Name, qtype) -> None:
        super()._fill(r, z, qname, qtype)
        if z.get_rdataset(z.origin, DNSKEY) is None:
            return
        _sign_reply(r, z, qname, qtype)


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


def _sign_reply(r: dns.message.Message, z, qname: dns.name.Name, qtype) -> None:
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
            add_auth += _covering(z, rs.name)
        if sig is not None and not signed:
            r.answer.append(sig)
    aa = bool(r.flags & dns.flags.AA)
    referral = not aa and any(rs.rdtype == NS for rs in r.authority)
    if referral:
        child = next(rs.name for rs in r.authority if rs.rdtype == NS)
        if any(rs.rdtype == DS for rs in r.authority):
            add_auth.append(_rrsig(z, child, DS))
        else:
            add_auth += _nsec_of(z, child)
    elif any(rs.rdtype == SOA for rs in r.authority):
        add_auth.append(_rrsig(z, z.origin, SOA))
        final = qname
        for rs in answer:
            if rs.rdtype == CNAME and rs.name == final:
                final = rs[0].target
        if final.is_subdomain(z.origin):
            if r.rcode() == dns.rcode.NXDOMAIN:
                ce = _closest_encloser(z, final)
                add_auth += _covering(z, final)
                add_auth += _covering(z, dns.name.Name((b"*",) + ce.labels))
            elif z.get_node(final) is not None:
                add_auth += _nsec_of(z, final)
            else:                       # an empty non-terminal, or a wildcard's NODATA
                add_auth += _covering(z, final)
                ce = _closest_encloser(z, final)
                wild = dns.name.Name((b"*",) + ce.labels)
                if z.get_node(wild) is not None:
                    add_auth += _nsec_of(z, wild)
    seen = set()
    for rs in add_auth:
        if rs is None:
            continue
        k = (rs.name, rs.rdtype, rs.covers)
        if k not in seen and not any((a.name, a.rdtype, a.covers) == k for a in r.authority):
            seen.add(k)
            r.authority.append(rs)


def signed_world(wall: float | None = None, prefix: str = "10.0"):
    """small_internet (its servers on ``prefix``) with EXTRA in example.com. and ., com.
    and example.com. signed (ECDSA P-256, NSEC), DS records in the parents. Returns (net,
    anchor DS rrset, keys: origin -> (private key, DNSKEY))."""
    wall = time.time() if wall is None else wall
    net = small_internet(SignedNet(), prefix)
    ez = net.zones[name("example.com.")]
    extra = dns.zone.from_text(EXTRA, origin="example.com.", relativize=False,
                               check_origin=False)
    with ez.writer() as txn:
        for n, rds in extra.iterate_rdatasets():
            txn.add(n, rds)
    keys = {}
    for origin, children in (("example.com.", ()), ("com.", ("example.com.",)),
                             (".", ("com.",))):
        z = net.zones[name(origin)]
        with z.writer() as txn:
            for child in children:
                txn.add(name(child), 86400,
                        dns.dnssec.make_ds(child, keys[child][1], "SHA256"))
        priv = ec.generate_private_key(ec.SECP256R1())
        key = dns.dnssec.make_dnskey(priv.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256,
                                     flags=257)
        dns.dnssec.sign_zone(z, keys=[(priv, key)], inception=int(wall) - 3600,
                             lifetime=LIFETIME)
        keys[origin] = (priv, key)
    anchor = dns.rrset.from_rdata_list(dns.name.root, 86400,
                                       [dns.dnssec.make_ds(".", keys["."][1], "SHA256")])
    return net, anchor, keys

