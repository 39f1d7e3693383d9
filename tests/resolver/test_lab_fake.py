"""The fake authority does what a script says, byte for byte, on every loop kind."""
from __future__ import annotations

import asyncio
import struct

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from dnslab import zones as Z
from dnslab.authority import ZoneAuthority, referral, response
from dnslab.fake import Close, CloseMidFrame, Garbage, Reply, Silence, serve

FAULT_ZONE = """
@ 300 IN SOA ns1.fault. hostmaster.fault. 1 3600 600 86400 60
@ 300 IN NS ns1.fault.
ns1 300 IN A 127.0.0.30
www 300 IN A 192.0.2.7
www 300 IN TXT "hello"
alias 300 IN CNAME www
out 300 IN CNAME www.example.com.
*.wild 300 IN A 192.0.2.9
a.b.ent 300 IN A 192.0.2.10
sub 300 IN NS ns.sub
ns.sub 300 IN A 127.0.0.31
big 300 IN TXT "%s"
""" % '" "'.join("y" * 200 for _ in range(4))

AUTH = ZoneAuthority.from_text("fault.", FAULT_ZONE)


def q(name: str, rdtype: str = "A", edns: bool = True) -> dns.message.Message:
    m = dns.message.make_query(name, rdtype, use_edns=0 if edns else False, payload=1232)
    m.flags &= ~dns.flags.RD
    return m


async def udp_exchange(port: int, query: dns.message.Message, wait: float = 5.0,
                       address: str = Z.FAKE_TLD_1, count: int = 1) -> list[tuple[bytes, str]]:
    """Send one datagram from an unconnected socket; collect what comes back (from anyone)
    until ``count`` datagrams arrived or ``wait`` seconds passed (an exchange expected to
    bring nothing passes a short ``wait``; one expected to be answered returns once it is,
    so the bound only matters on a loaded machine)."""
    loop = asyncio.get_running_loop()
    got: list[tuple[bytes, str]] = []
    done = loop.create_future()

    class P(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            got.append((data, addr[0]))
            if len(got) >= count and not done.done():
                done.set_result(None)

    t, _ = await loop.create_datagram_endpoint(P, local_addr=("127.0.0.1", 0))
    try:
        t.sendto(query.to_wire(), (address, port))
        try:
            await asyncio.wait_for(asyncio.shield(done), wait)
        except asyncio.TimeoutError:
            pass
    finally:
        t.close()
    return got


async def tcp_exchange(port: int, query: dns.message.Message, address: str = Z.FAKE_TLD_1) -> bytes:
    """One TCP query; returns what was read until EOF after the length-prefixed frame."""
    reader, writer = await asyncio.open_connection(address, port)
    try:
        wire = query.to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        head = await reader.readexactly(2)
        (n,) = struct.unpack("!H", head)
        try:
            return await reader.readexactly(n)
        except asyncio.IncompleteReadError as e:
            return b"PARTIAL:" + e.partial
    finally:
        writer.close()


# -- the zone authority (sans-IO) ----------------------------------------------------

def answer(name, rdtype="A"):
    return AUTH(q(name, rdtype))


def test_authority_answers_delegates_and_denies_like_an_authoritative_server():
    r = answer("www.fault.")
    assert r.flags & dns.flags.AA and [x.to_text() for x in r.answer[0]] == ["192.0.2.7"]
    r = answer("alias.fault.")
    assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    r = answer("out.fault.")  # CNAME leaving the zone: the chain stops there
    assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME]
    r = answer("x.y.sub.fault.")
    assert not r.flags & dns.flags.AA and r.authority[0].name.to_text() == "sub.fault."
    assert r.additional[0].name.to_text() == "ns.sub.fault."
    r = answer("nope.fault.")
    assert r.rcode() == dns.rcode.NXDOMAIN and r.authority[0].rdtype == dns.rdatatype.SOA
    assert r.authority[0].ttl == 60  # negative TTL: the SOA minimum
    r = answer("www.fault.", "AAAA")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority[0].rdtype == dns.rdatatype.SOA
    r = answer("ent.fault.")  # empty non-terminal: NODATA, not NXDOMAIN
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    r = answer("q.wild.fault.")
    assert r.answer[0].name.to_text() == "q.wild.fault." and r.answer[0][0].to_text() == "192.0.2.9"
    r = answer("www.example.com.")
    assert r.rcode() == dns.rcode.REFUSED


def test_referral_and_response_builders():
    m = q("www.x.fault.")
    r = referral(m, "x.fault.", [("ns1.x.fault.", "127.0.0.31"), ("ns.elsewhere.", None)])
    assert not r.flags & dns.flags.AA and len(r.authority[0]) == 2 and len(r.additional) == 1
    r = response(m, answer=["www.x.fault. 5 IN A 192.0.2.1"], additional=["evil.com. 5 IN A 6.6.6.6"])
    assert r.answer[0].ttl == 5 and r.additional[0].name.to_text() == "evil.com."


# -- the server, through sockets, on each loop -----------------------------------------

def test_serves_udp_and_tcp_and_records_queries(run, fakes, lab):
    srv = fakes(Z.FAKE_TLD_1, serve(AUTH))
    got = run(udp_exchange(lab.port, q("WwW.fault.")))
    r = dns.message.from_wire(got[0][0])
    assert r.answer[0][0].to_text() == "192.0.2.7" and got[0][1] == Z.FAKE_TLD_1
    wire = run(tcp_exchange(lab.port, q("www.fault.", "TXT")))
    assert dns.message.from_wire(wire).answer[0][0].to_text() == '"hello"'
    assert srv.qnames == ["WwW.fault.", "www.fault."]  # case kept as sent
    assert srv.count(transport="udp") == 1 and srv.count(transport="tcp") == 1
    assert srv.count(qname="www.fault.", qtype="A") == 1 and srv.sent["reply"] == 2


def test_udp_answer_over_the_buffer_is_truncated(run, fakes, lab):
    fakes(Z.FAKE_TLD_1, serve(AUTH))
    got = run(udp_exchange(lab.port, q("big.fault.", "TXT", edns=False)))
    r = dns.message.from_wire(got[0][0])
    assert r.flags & dns.flags.TC and not r.answer
    got = run(udp_exchange(lab.port, q("big.fault.", "TXT")))  # fits in 1232
    assert not dns.message.from_wire(got[0][0]).flags & dns.flags.TC


def test_silence_delay_and_order(run, fakes, lab):
    def handler(seen):
        if seen.qname.startswith("quiet"):
            return Silence()
        return [Reply(AUTH(seen.message), delay=0.15), Garbage(b"first")]

    srv = fakes(Z.FAKE_TLD_1, handler)
    assert run(udp_exchange(lab.port, q("quiet.fault."), wait=0.2)) == []
    got = run(udp_exchange(lab.port, q("www.fault."), wait=2, count=2))
    assert [d[:5] for d, _ in got][0] == b"first" and dns.message.from_wire(got[1][0]).answer
    assert srv.sent == {"silence": 1, "garbage": 1, "reply": 1}


@pytest.mark.parametrize("how", ["id", "name", "type", "case"])
def test_spoiled_replies(run, fakes, lab, how):
    def handler(seen):
        if how == "id":
            return Reply(AUTH(seen.message), wrong_id=True)
        return Reply(AUTH(seen.message), wrong_question=how)

    fakes(Z.FAKE_TLD_1, handler)
    query = q("www.fault.")
    r = dns.message.from_wire(run(udp_exchange(lab.port, query))[0][0])
    if how == "id":
        assert r.id != query.id and r.question == query.question
    else:
        assert r.id == query.id
        got, want = r.question[0], query.question[0]
        if how == "name":
            assert got.name != want.name
        elif how == "type":
            assert got.rdtype != want.rdtype
        else:  # equal as DNS names, different on the wire
            assert got.name == want.name and got.name.labels != want.name.labels


def test_reply_from_another_address(run, fakes, lab):
    fakes(Z.FAKE_TLD_1, lambda seen: Reply(AUTH(seen.message), from_address=Z.FAKE_TLD_2))
    got = run(udp_exchange(lab.port, q("www.fault.")))
    assert got and got[0][1] == Z.FAKE_TLD_2


def test_tcp_close_mid_frame_and_close(run, fakes, lab):
    def handler(seen):
        if seen.qname == "www.fault.":
            return CloseMidFrame(AUTH(seen.message))
        return Close()

    srv = fakes(Z.FAKE_TLD_1, handler)
    got = run(tcp_exchange(lab.port, q("www.fault.")))
    assert got.startswith(b"PARTIAL:")
    with pytest.raises(asyncio.IncompleteReadError):
        run(tcp_exchange(lab.port, q("other.fault.")))
    assert srv.sent == {"half": 1, "closed": 1}


def test_unparsable_query_is_recorded_and_a_broken_handler_is_reported(run, fakes, lab):
    def handler(seen):
        if seen.message is None:
            return Garbage(b"?")
        raise RuntimeError("script bug")

    srv = fakes(Z.FAKE_TLD_1, handler)

    async def send_raw():
        loop = asyncio.get_running_loop()
        t, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                   remote_addr=(Z.FAKE_TLD_1, lab.port))
        t.sendto(b"\x00\x01junk")
        await asyncio.sleep(0.1)
        t.close()

    run(send_raw())
    assert srv.queries[0].message is None and srv.sent["garbage"] == 1
    assert run(udp_exchange(lab.port, q("www.fault."), wait=0.2)) == []
    assert len(srv.errors) == 1
    srv.errors.clear()  # expected here; the fixture fails tests that leave errors behind
