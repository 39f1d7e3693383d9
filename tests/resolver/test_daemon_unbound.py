"""The daemon and Unbound, both resolving from the same lab (on port 53, where Unbound asks),
give the same rcode and the same answer data for every lab case, over UDP and TCP."""
from __future__ import annotations


import dns.flags
import dns.query
import pytest

from daemon_proc import beside_unbound
from dnslab import CASES
from dnslab.check import query

# Unbound holds these for many seconds (dead servers); the engine's own tests cover them.
SLOW_IN_UNBOUND = {"silent server + good", "refused address + good", "all servers dead"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    with beside_unbound(tmp_path_factory.mktemp("vs-unbound")) as pair:
        yield pair


def _ask(q, addr, port, tcp):
    if tcp:
        return dns.query.tcp(q, addr, port=port, timeout=10)
    r = dns.query.udp(q, addr, port=port, timeout=10, raise_on_truncation=False)
    if r.flags & dns.flags.TC:
        r = dns.query.tcp(q, addr, port=port, timeout=10)
    return r


def _answer_data(msg):
    return sorted((rr.name.to_text().lower(), rr.rdtype, sorted(x.to_text() for x in rr))
                  for rr in msg.answer)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("case", [c for c in CASES if c.kind not in SLOW_IN_UNBOUND],
                         ids=lambda c: c.id)
def test_same_rcode_and_answer_data_as_unbound(pair, case, tcp):
    ub, d = pair
    q = query(case)
    theirs = _ask(q, ub.address, ub.port, tcp)
    ours = _ask(q, "127.0.0.1", d.port, tcp)
    assert ours.rcode() == theirs.rcode(), f"{case.id}\nours:\n{ours}\nunbound:\n{theirs}"
    assert _answer_data(ours) == _answer_data(theirs), f"{case.id}\nours:\n{ours}\nunbound:\n{theirs}"
    assert bool(ours.flags & dns.flags.RA) == bool(theirs.flags & dns.flags.RA)
