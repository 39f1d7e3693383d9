"""Comparing what a recursive resolver returned with what the lab serves (``cases.CASES``).

Used by the engine's integration tests and reusable for the daemon (and for Unbound as
a reference): ``check_response(case, msg)`` takes any full recursive response.
"""
from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from .cases import Case


def query(case_or_name: Case | str, rdtype: str = "A", *, rd: bool = True,
          edns: bool = False) -> dns.message.Message:
    """The query a stub would send for a case (RD set, no EDNS unless asked)."""
    if isinstance(case_or_name, Case):
        case_or_name, rdtype = case_or_name.qname, case_or_name.rdtype
    q = dns.message.make_query(case_or_name, rdtype, use_edns=0 if edns else False)
    if not rd:
        q.flags &= ~dns.flags.RD
    return q


def final_rrset(msg: dns.message.Message, name: str, rdtype: str):
    return msg.get_rrset(msg.answer, dns.name.from_text(name), dns.rdataclass.IN,
                         dns.rdatatype.from_text(rdtype))


def cname_chain(msg: dns.message.Message, qname: str) -> list[str]:
    """The names a response's answer section leads through from qname (CNAMEs followed,
    DNAME-synthesised CNAMEs included), ending at the canonical name."""
    names = [dns.name.from_text(qname)]
    for _ in range(64):
        rr = msg.get_rrset(msg.answer, names[-1], dns.rdataclass.IN, dns.rdatatype.CNAME)
        if rr is None:
            break
        names.append(rr[0].target)
    return [n.to_text() for n in names]


def check_response(case: Case, msg: dns.message.Message, query_msg: dns.message.Message | None = None) -> None:
    """Assert that ``msg`` is a correct recursive answer to ``case``."""
    got = dns.rcode.to_text(msg.rcode())
    assert got == case.rcode, f"{case.id}: rcode {got}, expected {case.rcode}\n{msg}"
    assert msg.flags & dns.flags.QR and msg.flags & dns.flags.RA, f"{case.id}: QR/RA missing\n{msg}"
    if query_msg is not None:
        assert msg.id == query_msg.id, f"{case.id}: ID not echoed"
        assert msg.question == query_msg.question, f"{case.id}: question not echoed"
        assert [q.name.labels for q in msg.question] == [q.name.labels for q in query_msg.question], \
            f"{case.id}: question case not echoed"
        assert bool(msg.flags & dns.flags.RD) == bool(query_msg.flags & dns.flags.RD)
    if case.rcode == "SERVFAIL":
        return
    chain = cname_chain(msg, case.qname)
    assert chain[-1] == case.canonical_name.lower() or chain[-1] == case.canonical_name, \
        f"{case.id}: chain {chain}, expected to end at {case.canonical_name}\n{msg}"
    rr = final_rrset(msg, case.canonical_name, case.rdtype)
    if case.has_data:
        assert rr is not None, f"{case.id}: no {case.rdtype} at {case.canonical_name}\n{msg}"
        assert {r.to_text() for r in rr} == set(case.data), f"{case.id}\n{msg}"
    else:
        assert rr is None, f"{case.id}: unexpected data\n{msg}"
        soa = [r for r in msg.authority if r.rdtype == dns.rdatatype.SOA]
        assert soa, f"{case.id}: negative answer without SOA (RFC 2308)\n{msg}"
