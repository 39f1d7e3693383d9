"""The answers a DNS-over-TCP or DNS-over-TLS connection makes in one turn of the loop (the
cached answers of one read, the misses answered from one batch of upstream replies) leave
together, in one write of the connection and in the order they were made; a framer given
no loop sends each as it is made; a pipelining client has at most ``MAX_QUEUED_ANSWERS``
answers held back."""
from __future__ import annotations

import asyncio
import struct
import time
import types

import dns.message
import pytest

import corenet
import resolver
from resolver import iterator as it
from resolver import response
from resolver.daemon.admission import ALLOWED_ACL, FrontDoor
from resolver.daemon.config import build
from resolver.daemon.connections import TCPConnection
from resolver.daemon.tcp_framer import MAX_QUEUED_ANSWERS, DNSFrameReceiver
from resolver.limits import Limits

A_RDATA = bytes([192, 0, 2, 1])


class Connection:
    """What the framer sees of its connection: each ``send_frames`` call is one write."""

    def __init__(self) -> None:
        self.writes: list[list[bytes]] = []
        self.held: list[bytes] = []

    def send_frames(self, pieces: list[bytes]) -> None:
        self.writes.append(list(pieces))

    def hold(self, q: bytes) -> bool:
        self.held.append(q)
        return False


def _query(name: str, qid: int) -> bytes:
    q = dns.message.make_query(name, "A")
    q.id = qid
    return q.to_wire()


def _cached(names: list[str]):
    """A message cache holding an answer for each of ``names``."""
    r = resolver.Resolver([("a.root.invalid.", "127.0.0.1")], validate=False)
    for name in names:
        q = _query(name, 1)
        miss = response.begin(r, q)
        res = it.Result(it.NOERROR, [(dns.name.from_text(name).to_wire(), 1, 1, 300, A_RDATA)],
                        [])
        response.finish(r, q, miss, res)
        assert r.resolve_cached(q) is not None
    return r.message_table


def _framer(conn: Connection, names: list[str], loop) -> DNSFrameReceiver:
    framer = DNSFrameReceiver(None, 2, "big", 65535, 16384)
    framer.setup(conn, FrontDoor(_cached(names), None), loop=loop)
    framer.who = ALLOWED_ACL
    return framer


def _read(framer: DNSFrameReceiver, data: bytes) -> None:
    """``data`` arriving in one read."""
    buf = framer.get_buffer(len(data))
    assert len(buf) >= len(data)
    buf[:len(data)] = data
    framer.buffer_updated(len(data))


def _frames(queries: list[bytes]) -> bytes:
    return b"".join(struct.pack("!H", len(q)) + q for q in queries)


def _answers(pieces: list[bytes]) -> list[int]:
    """The ids of the answers in ``pieces``, each checked to follow its length."""
    assert len(pieces) % 2 == 0
    ids = []
    for head, answer in zip(pieces[::2], pieces[1::2]):
        assert head == struct.pack("!H", len(answer))
        m = dns.message.from_wire(answer)
        assert m.answer and "192.0.2.1" in m.answer[0].to_text()
        ids.append(m.id)
    return ids


def _new_loop(kind: str):
    return corenet.new_event_loop() if kind == "corenet" else asyncio.new_event_loop()


@pytest.mark.parametrize("kind", ["corenet", "asyncio"])
def test_the_answers_of_one_read_leave_in_one_write_at_the_end_of_the_turn(kind):
    names = [f"n{i}.example.com." for i in range(5)]
    conn = Connection()
    loop = _new_loop(kind)
    try:
        framer = _framer(conn, names, loop)

        async def pipelined():
            _read(framer, _frames([_query(n, i) for i, n in enumerate(names)]))
            assert conn.writes == []                # held until the turn ends
            await asyncio.sleep(0)
            return list(conn.writes)

        writes = loop.run_until_complete(asyncio.wait_for(pipelined(), 5))
    finally:
        loop.close()
    assert len(writes) == 1
    assert _answers(writes[0]) == list(range(5))
    assert conn.held == []


def test_without_a_loop_each_answer_is_sent_when_made():
    names = [f"n{i}.example.com." for i in range(3)]
    conn = Connection()
    framer = _framer(conn, names, None)
    _read(framer, _frames([_query(n, i) for i, n in enumerate(names)]))
    assert [_answers(w) for w in conn.writes] == [[0], [1], [2]]


@pytest.mark.parametrize("kind", ["corenet", "asyncio"])
def test_a_pipelining_client_has_at_most_the_cap_of_answers_held_back(kind):
    n = 2 * MAX_QUEUED_ANSWERS + 22
    names = [f"n{i}.example.com." for i in range(n)]
    conn = Connection()
    loop = _new_loop(kind)
    try:
        framer = _framer(conn, names, loop)

        async def pipelined():
            _read(framer, _frames([_query(name, i) for i, name in enumerate(names)]))
            during = [len(w) // 2 for w in conn.writes]
            await asyncio.sleep(0)
            return during

        during = loop.run_until_complete(asyncio.wait_for(pipelined(), 5))
    finally:
        loop.close()
    assert during == [MAX_QUEUED_ANSWERS, MAX_QUEUED_ANSWERS]
    assert [len(w) // 2 for w in conn.writes] == [MAX_QUEUED_ANSWERS, MAX_QUEUED_ANSWERS, 22]
    assert [i for w in conn.writes for i in _answers(w)] == list(range(n))


def test_a_released_framer_sends_nothing_it_had_queued():
    """The connection ended within the turn: what it had queued is dropped, not written to a
    connection that is gone."""
    names = ["n0.example.com."]
    conn = Connection()
    loop = corenet.new_event_loop()
    try:
        framer = _framer(conn, names, loop)

        async def ended():
            _read(framer, _frames([_query(names[0], 0)]))
            framer.release()
            await asyncio.sleep(0)

        loop.run_until_complete(asyncio.wait_for(ended(), 5))
    finally:
        loop.close()
    assert conn.writes == []


class _Transport:
    """Records the connection's writes and its close, in order."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def writelines(self, pieces) -> None:
        self.events.append(("write", list(pieces)))

    def is_closing(self) -> bool:
        return any(e[0] == "close" for e in self.events)

    def close(self) -> None:
        self.events.append(("close",))


def test_a_connection_closed_in_the_turn_of_its_answers_writes_them_first():
    """Its idle check (or the door) may close it in the turn that made them: the answers
    go out before the close, not dropped with the connection."""
    names = ["n0.example.com."]
    cfg = build(None, {"listen": ["127.0.0.1:5300"], "ip_ratelimit": 0})
    soon: list = []                             # the loop's next turn
    later: list = []                            # (seconds, what): the close's stall timer
    loop = types.SimpleNamespace(time=time.monotonic, call_soon=soon.append,
                                 call_later=lambda delay, *what: later.append((delay, what)))
    server = types.SimpleNamespace(cfg=cfg, front=FrontDoor(_cached(names), None, cfg=cfg),
                                   loop=loop, resolver=types.SimpleNamespace(limits=Limits()))
    conn = TCPConnection(server)
    conn.transport, conn.peer = _Transport(), ("192.0.2.1", 1000)
    conn.framer.who = ALLOWED_ACL
    _read(conn.framer, _frames([_query(names[0], 7)]))
    assert conn.transport.events == [] and len(soon) == 1
    conn.close()
    assert [e[0] for e in conn.transport.events] == ["write", "close"]
    assert _answers(conn.transport.events[0][1]) == [7]
    soon[0]()                                   # the turn's end: nothing is left to send
    assert len(conn.transport.events) == 2
    assert [(delay, what[1]) for delay, what in later] == [(Limits().tcp_write_timeout,
                                                           "close_stalled")]
