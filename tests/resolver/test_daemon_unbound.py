"""The daemon and Unbound, both resolving from the same lab (on port 53, where Unbound asks),
give the same rcode and the same answer data for every lab case, over UDP and TCP."""
from __future__ import annotations

import socket

import dns.flags
import dns.message
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



def _raw_udp(q: dns.message.Message, addr: str, port: int) -> bytes:
    """The response to ``q`` over UDP as its bytes came (read at most 5 datagrams)."""
    wire = q.to_wire()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.sendto(wire, (addr, port))
        for _ in range(5):
            data = s.recv(65535)
            if data[:2] == wire[:2]:
                return data
    raise AssertionError(f"no response from {addr}#{port}")


def _answer_bytes(wire: bytes) -> int:
    """How many bytes the answer section takes in ``wire``, as written (its names'
    compression pointers not followed)."""
    pos = 12
    for _ in range(int.from_bytes(wire[4:6], "big")):
        pos = _past_name(wire, pos) + 4
    start = pos
    for _ in range(int.from_bytes(wire[6:8], "big")):
        pos = _past_name(wire, pos)
        pos += 10 + int.from_bytes(wire[pos + 8:pos + 10], "big")
    return pos - start


def _past_name(wire: bytes, pos: int) -> int:
    while wire[pos] and wire[pos] < 0xC0:
        pos += 1 + wire[pos]
    return pos + (2 if wire[pos] else 1)


@pytest.mark.parametrize("case", [c for c in CASES if c.kind not in SLOW_IN_UNBOUND
                                  and c.rcode == "NOERROR"], ids=lambda c: c.id)
def test_answer_sections_take_the_bytes_unbound_takes(pair, case):
    """Names are compressed as Unbound compresses them (owners, and the names in the rdata
    of RFC 1035's types), so an answer section takes as many bytes as Unbound's and what
    fits a client without EDNS (512 bytes) for Unbound fits here too."""
    ub, d = pair
    q = query(case)
    theirs = _raw_udp(q, ub.address, ub.port)
    ours = _raw_udp(q, "127.0.0.1", d.port)
    assert ours[2] & 0x02 == theirs[2] & 0x02, "TC differs"
    assert _answer_bytes(ours) == _answer_bytes(theirs), (
        f"{case.id}\nours:\n{dns.message.from_wire(ours)}\n"
        f"unbound:\n{dns.message.from_wire(theirs)}")
