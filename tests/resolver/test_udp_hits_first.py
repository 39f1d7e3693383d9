"""The UDP listener answers every cached name of a wake-up before it starts any of that
wake-up's misses: a probe queued behind a hundred flood queries (more than one recvmmsg
batch) is answered before the first of them reaches the engine, and every miss still
reaches it once, in order."""
from __future__ import annotations

import socket
import time

import dns.message
import dns.rrset

from looptools import make_loop
from resolver.cache.answer import parse_query
from resolver.daemon import udp_listener
from resolver.daemon.acl import ACL
from resolver.daemon.admission import FrontDoor
from resolver.wire.codec import MsgEntry

BEFORE, AFTER = 100, 20          # misses queued ahead of the probe (over a batch) and after


def _socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)     # all queued at once
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def test_hits_of_a_wakeup_are_answered_before_its_misses_start(corenet_kind):
    probe_q = dns.message.make_query("cached.example.", "A")
    resp = dns.message.make_response(probe_q)
    resp.answer.append(dns.rrset.from_text("cached.example.", 300, "IN", "A", "192.0.2.1"))
    table = {}
    table[parse_query(probe_q.to_wire())[0]] = MsgEntry(resp.to_wire(), time.monotonic(), 0.0)

    loop = make_loop(corenet_kind)
    sock, flood, probe = _socket(), _socket(), _socket()
    started = []                  # (miss number, whether the probe had its answer by then)
    probe_answers = []

    class Engine:
        """Notes each miss the door starts (left pending)."""
        def start_miss(self, query, done, loop, absent=None, client=None):
            try:
                probe_answers.append(probe.recv(512))
            except BlockingIOError:
                pass
            started.append((int.from_bytes(query[:2], "big"), bool(probe_answers)))
            return _Pending()

    listener = udp_listener.UDPListener(sock.fileno())
    front = FrontDoor(table, Engine())
    listener.setup(loop, sock, front, ACL(["127.0.0.0/8"]))
    try:
        target = sock.getsockname()
        for i in range(BEFORE + AFTER):
            if i == BEFORE:
                probe.sendto(probe_q.to_wire(), target)
            q = dns.message.make_query(f"m{i}.example.", "A")
            q.id = i
            flood.sendto(q.to_wire(), target)
        listener.start()
        deadline = time.monotonic() + 5
        while len(started) < BEFORE + AFTER and time.monotonic() < deadline:
            loop.run_until_complete(_tick())
        assert [n for n, _ in started] == list(range(BEFORE + AFTER))   # each once, in order
        assert all(answered for _, answered in started), started[:3]
        answer = dns.message.from_wire(probe_answers[0])
        assert answer.id == probe_q.id and answer.answer
        assert front.counters.hits == 1
        assert listener.counters()["received"] == BEFORE + AFTER + 1
    finally:
        listener.close()
        flood.close()
        probe.close()
        loop.close()


async def _tick():
    import asyncio
    await asyncio.sleep(0.01)


def test_a_cached_name_is_answered_in_the_middle_of_a_long_iteration(corenet_kind):
    """The loop reads the listener again between two callbacks once ``read_interval`` of
    an iteration has passed: a cached name's query that arrives while a callback works is
    answered before the iteration's next callback, not after the iteration."""
    probe_q = dns.message.make_query("cached.example.", "A")
    resp = dns.message.make_response(probe_q)
    resp.answer.append(dns.rrset.from_text("cached.example.", 300, "IN", "A", "192.0.2.1"))
    table = {parse_query(probe_q.to_wire())[0]: MsgEntry(resp.to_wire(), time.monotonic(), 0.0)}
    loop = make_loop(corenet_kind)
    sock, probe = _socket(), _socket()
    seen = []

    def busy():
        end = time.monotonic() + 0.005
        while time.monotonic() < end:
            pass
        probe.sendto(probe_q.to_wire(), sock.getsockname())
        end = time.monotonic() + 0.005
        while time.monotonic() < end:
            pass

    def next_callback():
        try:
            seen.append(dns.message.from_wire(probe.recv(512)).id)
        except BlockingIOError:
            seen.append(None)

    listener = udp_listener.UDPListener(sock.fileno())
    front = FrontDoor(table, None)
    listener.setup(loop, sock, front, ACL(["127.0.0.0/8"]), read_interval=0.001)
    try:
        listener.start()
        loop.call_soon(busy)
        loop.call_soon(next_callback)
        loop.run_until_complete(_tick())
        assert seen == [probe_q.id]
        assert front.counters.hits == 1 and front.counters.queries == {("udp", 0): 1}
    finally:
        listener.close()
        probe.close()
        loop.close()


class _Pending:
    """A miss left in flight, as the engine's Drive is (hashable, cancellable)."""
    finished = False

    def cancel(self) -> None:
        pass
