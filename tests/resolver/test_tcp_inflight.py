"""A DNS-over-TCP connection's queries in flight (``tcp-max-inflight``) through the front
door, with a recording transport and a stand-in engine: at the cap a miss waits in the
connection's backlog with reading paused; a miss the door gives up (jostled out for
another client's) frees its slot, so the backlog moves on (on the loop's next turn, not
inside the door's start of the miss that jostled) and the connection is read again."""
from __future__ import annotations

import struct
import time
import types

import dns.message

from resolver.daemon.admission import ALLOWED_ACL, FrontDoor
from resolver.daemon.config import build
from resolver.daemon.connections import TCPConnection
from resolver.wire.codec import parse_response


class _Miss:
    finished = False

    def __init__(self, done, q: bytes) -> None:
        self.done = done
        m = parse_response(q)
        self.miss = (m, m.edns, False, False)

    def cancel(self) -> None:
        if not self.finished:
            self.finished = True
            self.done(self, None)


class _Transport:
    def __init__(self) -> None:
        self.sent = bytearray()
        self.reading = []

    def writelines(self, chunks) -> None:
        for c in chunks:
            self.sent += c

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self.reading.append(False)

    def resume_reading(self) -> None:
        self.reading.append(True)


def _connection(door, cfg, peer, soon):
    loop = types.SimpleNamespace(time=time.monotonic, call_soon=soon.append)
    server = types.SimpleNamespace(cfg=cfg, front=door, loop=loop)
    conn = TCPConnection(server)
    conn.transport, conn.peer = _Transport(), peer
    conn.framer.who = ALLOWED_ACL
    return conn


def _send(conn, name: str) -> None:
    q = dns.message.make_query(name, "A").to_wire()
    data = struct.pack("!H", len(q)) + q
    buf = conn.framer.get_buffer(len(data))
    buf[:len(data)] = data
    conn.framer.buffer_updated(len(data))


def test_a_miss_the_door_gives_up_frees_its_slot_and_the_backlog_moves_on():
    cfg = build(None, {"listen": ["127.0.0.1:5300"], "tcp_max_inflight": 1, "max_inflight": 1,
                       "jostle_timeout": 60, "ip_ratelimit": 0})
    misses: list[_Miss] = []
    engine = types.SimpleNamespace(
        start_miss=lambda q, done, loop, absent=None, client=None:
        misses.append(_Miss(done, q)) or misses[-1])
    door = FrontDoor({}, engine, cfg=cfg)
    soon: list = []                             # the loop's next turn
    a = _connection(door, cfg, ("192.0.2.1", 1000), soon)
    b = _connection(door, cfg, ("192.0.2.2", 1000), soon)
    _send(a, "one.example.")
    assert len(misses) == 1 and a.inflight == 1
    _send(a, "two.example.")                    # at the cap: waits, reading paused
    assert len(misses) == 1 and len(a.backlog) == 1 and a.transport.reading == [False]
    door.misses[misses[0]] -= 120               # a's first miss has run past the jostle age
    # Another client's miss jostles a's first out: a's slot is free, and on the loop's next
    # turn its backlog goes to the door (and is dropped there, the one slot being b's now,
    # too young to jostle), and a is read again.
    _send(b, "three.example.")
    assert misses[0].finished and len(misses) == 2 and len(door.misses) == 1
    assert door.counters.dropped == {"jostled": 1}
    assert a.inflight == 0 and len(a.backlog) == 1
    for callback in soon:
        callback()
    assert len(misses) == 2 and door.counters.dropped == {"jostled": 1, "overload": 1}
    assert not a.backlog and a.transport.reading == [False, True]
    assert b.inflight == 1 and a.transport.sent == b""
