"""Authoritative answers from a dnspython zone, for the fake server's well-behaved side.

A small, strict subset of what NSD does: referrals with glue at zone cuts, CNAME chains
inside the zone, wildcards, NODATA and NXDOMAIN with the SOA. Enough to stand in for a
real authority beside the faults a test scripts.
"""
from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

A, AAAA, CNAME, NS, SOA = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME,
                           dns.rdatatype.NS, dns.rdatatype.SOA)
IN = dns.rdataclass.IN


def make_zone(origin: str, text: str) -> dns.zone.Zone:
    """A zone from master-file text (names relative to ``origin`` or absolute)."""
    return dns.zone.from_text(text, origin=origin, relativize=False, check_origin=True)


def response(query: dns.message.Message, *, answer=(), authority=(), additional=(),
             rcode: int = dns.rcode.NOERROR, aa: bool = True) -> dns.message.Message:
    """A response to ``query`` with the given rrsets (``dns.rrset.RRset`` or one-line
    master-file text such as ``"www.fault. 300 IN A 192.0.2.1"``)."""
    r = dns.message.make_response(query, recursion_available=False)
    r.flags &= ~dns.flags.RA
    if aa:
        r.flags |= dns.flags.AA
    r.set_rcode(rcode)
    for section, items in ((r.answer, answer), (r.authority, authority), (r.additional, additional)):
        for item in items:
            section.append(_rrset(item))
    return r


def _rrset(item) -> dns.rrset.RRset:
    if isinstance(item, dns.rrset.RRset):
        return item
    name, ttl, rdclass, rdtype, *data = item.split(None, 4)
    return dns.rrset.from_text(name, int(ttl), rdclass, rdtype, " ".join(data))


def referral(query: dns.message.Message, zone: str, servers: list[tuple[str, str | None]],
             ttl: int = 300) -> dns.message.Message:
    """A referral of ``zone`` to ``servers`` [(ns name, glue address or None)]."""
    ns = dns.rrset.from_text_list(zone, ttl, "IN", "NS", [n for n, _ in servers])
    glue = [dns.rrset.from_text(n, ttl, "IN", "A", a) for n, a in servers if a]
    return response(query, authority=[ns], additional=glue, aa=False)


class ZoneAuthority:
    """Answers queries from one zone as its authoritative server would."""

    def __init__(self, zone: dns.zone.Zone) -> None:
        self.zone = zone
        self.origin = zone.origin

    @classmethod
    def from_text(cls, origin: str, text: str) -> "ZoneAuthority":
        return cls(make_zone(origin, text))

    def __call__(self, query: dns.message.Message) -> dns.message.Message:
        return self.answer(query)

    def _rrset(self, name: dns.name.Name, rdtype: int, owner: dns.name.Name | None = None):
        node = self.zone.get_node(name)
        rds = node.get_rdataset(IN, rdtype) if node is not None else None
        if rds is None:
            return None
        rr = dns.rrset.RRset(owner or name, IN, rdtype)
        rr.update(rds)
        return rr

    def _soa(self) -> dns.rrset.RRset:
        soa = self._rrset(self.origin, SOA)
        soa.ttl = min(soa.ttl, soa[0].minimum)
        return soa

    def _glue(self, ns: dns.rrset.RRset) -> list[dns.rrset.RRset]:
        out = []
        for r in ns:
            if r.target.is_subdomain(self.origin):
                for t in (A, AAAA):
                    g = self._rrset(r.target, t)
                    if g is not None:
                        out.append(g)
        return out

    def _cut(self, qname: dns.name.Name) -> dns.name.Name | None:
        """The highest zone cut at or above qname, below the apex."""
        names = []
        while qname != self.origin:
            names.append(qname)
            qname = qname.parent()
        for name in reversed(names):
            if self._rrset(name, NS) is not None:
                return name
        return None

    def _exists(self, name: dns.name.Name) -> bool:
        if self.zone.get_node(name) is not None:
            return True
        return any(n != name and n.is_subdomain(name) for n in self.zone.nodes)

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        q = query.question[0]
        qname, qtype = q.name, q.rdtype
        if not qname.is_subdomain(self.origin):
            return response(query, rcode=dns.rcode.REFUSED, aa=False)
        answer: list[dns.rrset.RRset] = []
        for _ in range(8):  # CNAME links followed inside the zone
            cut = self._cut(qname)
            if cut is not None:
                ns = self._rrset(cut, NS)
                return response(query, answer=answer, authority=[ns],
                                additional=self._glue(ns), aa=False)
            owner = qname
            node = self.zone.get_node(qname)
            if node is None and not self._exists(qname):
                wild = self._wildcard(qname)
                if wild is None:
                    return response(query, answer=answer, authority=[self._soa()],
                                    rcode=dns.rcode.NXDOMAIN)
                node, owner = wild, qname
                source = self._wildcard_name(qname)
            else:
                source = qname
            if node is None:  # empty non-terminal
                return response(query, answer=answer, authority=[self._soa()])
            rr = self._rrset(source, qtype, owner)
            if rr is not None:
                answer.append(rr)
                # the servers' addresses with an NS answer, as NSD sends them (priming reads them)
                return response(query, answer=answer,
                                additional=self._glue(rr) if qtype == NS else ())
            cname = self._rrset(source, CNAME, owner)
            if cname is None:
                return response(query, answer=answer, authority=[self._soa()])
            answer.append(cname)
            qname = cname[0].target
            if not qname.is_subdomain(self.origin):
                return response(query, answer=answer)
        return response(query, answer=answer)

    def _wildcard_name(self, qname: dns.name.Name) -> dns.name.Name | None:
        name = qname.parent()
        while name.is_subdomain(self.origin):
            if self._exists(name):
                return dns.name.Name((b"*",) + name.labels)
            if name == self.origin:
                break
            name = name.parent()
        return None

    def _wildcard(self, qname: dns.name.Name):
        wname = self._wildcard_name(qname)
        return self.zone.get_node(wname) if wname is not None else None
