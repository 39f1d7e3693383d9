"""The daemon's answer counters read back whatever the transport and qtype, and the limits the
miss path copies out of the Config follow a reload (resolver.daemon.admission)."""
from __future__ import annotations

import dns.message

from resolver.daemon.config import build
from resolver.daemon.admission import CallReply, Counters, FrontDoor


def _answer(rcode: int) -> bytes:
    return b"\x00\x00\x81" + bytes([0x80 | rcode]) + b"\x00" * 8


def test_answers_are_counted_by_transport_rcode_and_qtype_of_any_size():
    c = Counters()
    c.answered("udp", _answer(0), 1, 0.0)
    c.answered("udp", _answer(0), 1, 0.0)
    c.answered("udp", _answer(15), 255, 0.0)
    c.answered("tcp", _answer(3), 28, 0.0)
    c.answered("https", _answer(2), 256, 0.0)
    c.answered("tls", _answer(0), 65535, 0.0)
    assert c.queries == {("udp", 0): 2, ("udp", 15): 1, ("tcp", 3): 1, ("https", 2): 1,
                         ("tls", 0): 1}
    assert c.qtypes == {1: 2, 255: 1, 28: 1, 256: 1, 65535: 1}
    # What is read back is a copy: changing it does not change the counts.
    c.queries[("udp", 0)] += 10
    assert c.queries[("udp", 0)] == 2


def test_noerror_answers_without_an_answer_record_are_counted_as_nodata():
    """Unbound's ``num.answer.rcode.nodata``: rcode NOERROR and ANCOUNT 0, whatever the
    other sections hold; an NXDOMAIN or an answer with records is not one."""
    c = Counters()
    soa_only = b"\x00\x00\x81\x80\x00\x01\x00\x00\x00\x01\x00\x00"
    c.answered("udp", _answer(0), 1, 0.0)
    c.answered("tcp", soa_only, 28, 0.0)
    c.answered("udp", _answer(3), 1, 0.0)                          # NXDOMAIN
    c.answered("udp", b"\x00\x00\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00", 1, 0.0)
    c.answered("udp", b"\x00\x00\x81\x80\x00\x01\x01\x00\x00\x00\x00\x00", 1, 0.0)
    assert c.nodata == 2
    assert c.queries == {("udp", 0): 3, ("tcp", 0): 1, ("udp", 3): 1}


class _Engine:
    def __init__(self, out: bytes) -> None:
        self.out = out

    def start_miss(self, q, done, loop, absent=None, client=None):
        return self.out


def test_a_new_config_sets_the_limits_the_miss_path_reads():
    cfg = build(None, {"listen": ["127.0.0.1:5300"], "max_inflight_per_client": 1})
    big = dns.message.make_response(dns.message.make_query("big.example.", "TXT",
                                                           use_edns=0, payload=4096))
    big.answer.append(dns.rrset.from_text("big.example.", 60, "IN", "TXT",
                                          *[f'"{i}{"x" * 200}"' for i in range(5)]))
    out = big.to_wire()
    d = FrontDoor({}, _Engine(out), cfg=cfg)
    q = dns.message.make_query("big.example.", "TXT", use_edns=0, payload=4096).to_wire()
    sent: list[bytes] = []
    assert d.start_held(q, CallReply("udp", ("127.0.0.1", 1), sent.append))
    assert sent[-1] == out and d.counters.truncated == 0
    d.cfg = build(None, {"listen": ["127.0.0.1:5300"], "max_udp_size": 600})
    assert d.cfg.max_udp_size == 600
    assert d.start_held(q, CallReply("udp", ("127.0.0.1", 1), sent.append))
    assert len(sent[-1]) <= 600 and sent[-1][2] & 0x02 and d.counters.truncated == 1
