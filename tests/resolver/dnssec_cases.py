"""The signed lab's cases (``dnssec_lab``) as expected answers, shared by the library tests
(test_dnssec_lab.py) and the daemon tests (test_dnssec_daemon.py)."""
from __future__ import annotations

from dataclasses import dataclass

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype


def flagged_query(name: str, rdtype: str = "A", *, edns: bool = False, do: bool = False,
                  ad: bool = False, cd: bool = False) -> dns.message.Message:
    """A query with exactly the EDNS, DO, AD and CD settings asked for (make_query's defaults
    would add EDNS and leave AD/CD as dnspython sets them)."""
    q = dns.message.make_query(name, rdtype, use_edns=0 if (edns or do) else False,
                               want_dnssec=do)
    q.flags &= ~(dns.flags.AD | dns.flags.CD)
    if ad:
        q.flags |= dns.flags.AD
    if cd:
        q.flags |= dns.flags.CD
    return q


@dataclass(frozen=True)
class DCase:
    qname: str
    rdtype: str
    rcode: str
    ad: bool
    data: frozenset = frozenset()     # expected data of the final rrset (positive answers)
    ede: int | None = None            # RFC 8914 code for bogus answers

    @property
    def id(self) -> str:
        return f"{self.qname}{self.rdtype}"


def _d(*items: str) -> frozenset:
    return frozenset(items)


CASES = [
    # NSEC zone (example.com., ECDSA P-256) under a signed root, com. (RSA, NSEC3 opt-out)
    DCase("www.example.com.", "A", "NOERROR", True, _d("192.0.2.1", "192.0.2.11")),
    DCase("nope.example.com.", "A", "NXDOMAIN", True),
    DCase("www.example.com.", "TXT", "NOERROR", True),                       # NODATA
    DCase("b.ent.example.com.", "A", "NOERROR", True),                       # empty non-terminal
    DCase("x.wild.example.com.", "A", "NOERROR", True, _d("192.0.2.80")),    # wildcard
    DCase("x.wild.example.com.", "TXT", "NOERROR", True),                    # wildcard NODATA
    DCase("exact.wild.example.com.", "A", "NOERROR", True, _d("192.0.2.81")),
    DCase("alias.example.com.", "A", "NOERROR", True, _d("192.0.2.1", "192.0.2.11")),
    DCase("xalias.example.com.", "A", "NOERROR", True, _d("198.51.100.1")),  # CNAME across zones
    DCase("www.dname.example.com.", "A", "NOERROR", True, _d("198.51.100.1")),   # DNAME
    DCase("q.wc.example.com.", "A", "NOERROR", True, _d("192.0.2.1", "192.0.2.11")),  # wild CNAME
    DCase("nope.dname.example.com.", "A", "NXDOMAIN", True),
    DCase("example.com.", "DNSKEY", "NOERROR", True),
    DCase("example.com.", "DS", "NOERROR", True),
    # NSEC3 zone (example.net., Ed25519, no opt-out)
    DCase("www.example.net.", "A", "NOERROR", True, _d("198.51.100.1")),
    DCase("nope.example.net.", "A", "NXDOMAIN", True),
    DCase("www.example.net.", "MX", "NOERROR", True),
    DCase("q.wild.example.net.", "TXT", "NOERROR", True, _d('"wild3"')),
    DCase("deep.example.net.", "A", "NOERROR", True),                        # ENT, NSEC3
    # NSEC3 with 200 iterations: positive answers secure, denial insecure (RFC 9276)
    DCase("www.n3iter.net.", "A", "NOERROR", True, _d("198.51.100.9")),
    DCase("nope.n3iter.net.", "A", "NXDOMAIN", False),
    # insecure delegations: NSEC3 opt-out (com.) and NSEC without DS (org.)
    DCase("www.insecure.com.", "A", "NOERROR", False, _d("192.0.2.150")),
    DCase("www.unsigned.org.", "A", "NOERROR", False, _d("203.0.113.50")),
    DCase("nope.unsigned.org.", "A", "NXDOMAIN", False),
    DCase("nope.com.", "A", "NXDOMAIN", False),                              # opt-out span
    DCase("nope.org.", "A", "NXDOMAIN", True),
    # bogus
    DCase("www.badds.com.", "A", "SERVFAIL", False, ede=9),                  # wrong DS
    DCase("www.expired.com.", "A", "SERVFAIL", False, ede=7),                # expired sigs
    DCase("www.altered.com.", "A", "SERVFAIL", False, ede=6),                # altered record
    DCase("www.keytrap.org.", "A", "SERVFAIL", False, ede=6),                # KeyTrap
    DCase("www.manyds.com.", "A", "SERVFAIL", False, ede=9),                 # DS mismatches
    # two algorithms, one left out over down/A: one that validates is enough (RFC 6840
    # 5.11), unless harden-algo-downgrade is on
    DCase("www.twoalg.com.", "A", "NOERROR", True, _d("192.0.2.157")),
    DCase("down.twoalg.com.", "A", "NOERROR", True, _d("192.0.2.158")),
    # a DS with an unknown algorithm only: insecure, not bogus (RFC 6840 5.2)
    DCase("www.unkalg.com.", "A", "NOERROR", False, _d("192.0.2.156")),
]
BY_ID = {c.id: c for c in CASES}


def _ede(resp: dns.message.Message) -> list[int]:
    return [o.code for o in resp.options if o.otype == dns.edns.EDE]


def check(case: DCase, resp: dns.message.Message, do: bool) -> None:
    assert dns.rcode.to_text(resp.rcode()) == case.rcode, (case, resp)
    assert bool(resp.flags & dns.flags.AD) == (case.ad and case.rcode != "SERVFAIL"), resp
    if case.data:
        final = [rr for rr in resp.answer if rr.rdtype == dns.rdatatype.from_text(case.rdtype)]
        assert final and {x.to_text() for x in final[-1]} == set(case.data)
    sigs = [rr for rr in resp.answer + resp.authority if rr.rdtype == dns.rdatatype.RRSIG]
    if do and case.ad:
        assert sigs, "DO set: RRSIGs are returned with secure data"
    if not do:
        assert not sigs and not [rr for rr in resp.authority
                                 if rr.rdtype in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3)]
    if case.ede is not None:
        assert _ede(resp) == [case.ede], resp.options
