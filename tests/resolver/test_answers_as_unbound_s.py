"""Every case of the lab's table asked of a real Unbound and of the daemon, each started
fresh, side by side (as respdiff compares resolvers): the same rcode, header flags, EDNS
(version, payload, options) and sections, record for record, TTLs within the second that
separates the two clocks; asked without EDNS, then with EDNS and the DO bit (the lab is
unsigned), the second round answered from each cache."""
from __future__ import annotations

import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import pytest

from daemon_proc import beside_unbound
from dnslab import CASES

# Unbound can hold a query for many seconds when a server never answers: those cases are
# test_lab_unbound's and test_dead_ends' business, not this comparison's.
SLOW_IN_UNBOUND = {"silent server + good", "refused address + good", "all servers dead"}
ASKED = [c for c in CASES if c.kind not in SLOW_IN_UNBOUND]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """(Unbound's address and port, the daemon's) over one lab on port 53."""
    with beside_unbound(tmp_path_factory.mktemp("answers")) as (ub, d):
        yield (ub.address, ub.port), ("127.0.0.1", d.port)


def answer(at: tuple, name: str, rdtype: str, edns: bool) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, use_edns=0 if edns else False, want_dnssec=edns,
                               payload=1232)
    r = dns.query.udp(q, at[0], port=at[1], timeout=10)
    if r.flags & dns.flags.TC:
        r = dns.query.tcp(q, at[0], port=at[1], timeout=10)
    return r


def shape(r: dns.message.Message) -> tuple:
    """Everything but the TTLs, and the TTLs apart."""
    sections, ttls = [], []
    for section in (r.answer, r.authority, r.additional):
        rrsets = sorted(section, key=lambda rr: (rr.name, rr.rdtype))
        sections.append([(rr.name.to_text(), dns.rdatatype.to_text(rr.rdtype),
                          sorted(x.to_text() for x in rr)) for rr in rrsets])
        ttls.append([rr.ttl for rr in rrsets])
    return ((r.rcode(), dns.flags.to_text(r.flags), r.edns,
             r.payload if r.edns >= 0 else None, sorted(o.otype for o in r.options),
             sections), ttls)


@pytest.mark.parametrize("edns", [False, True], ids=["plain", "edns-do"])
def test_every_case_answered_as_unbound_answers_it(servers, edns):
    unbound, daemon = servers
    differ = []
    for case in ASKED:
        theirs, their_ttls = shape(answer(unbound, case.qname, case.rdtype, edns))
        ours, our_ttls = shape(answer(daemon, case.qname, case.rdtype, edns))
        close = all(abs(a - b) <= 1 for x, y in zip(their_ttls, our_ttls)
                    for a, b in zip(x, y))
        if ours != theirs or not close:
            differ.append((case.id, theirs, their_ttls, ours, our_ttls))
    assert not differ, "\n".join(map(str, differ))
    assert len(ASKED) > 25
