"""The daemon's listeners: UDP and TCP sockets in front of one :class:`resolver.Resolver`.

UDP on corenet's loop goes through the Cython ``UDPListener`` (recvmmsg, cache hits answered
in C, sendmmsg); on any other asyncio loop through a plain ``DatagramProtocol``. TCP goes
through corenet's framer (2-byte length): queries of one connection are resolved
concurrently and answered as they complete (out of order), with caps on connections and on
queries in flight per connection, and an idle timeout that also ends slow-loris clients.

Answer semantics (as Unbound): RA set; RD clear means no recursion (cache or REFUSED);
question case, ID and EDNS echoed; FORMERR/NOTIMP from the engine; REFUSED outside the ACL.
Responses are never sent to packets that are responses themselves.
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import time
from bisect import bisect_left
from collections import Counter, deque
from typing import Any, Callable

from corenet.framing import FrameProtocol, FrameTooLarge

from resolver import _udp_server
from resolver._tcp_server import DNSFrameReceiver
from resolver.config import Config
from resolver.engine import Resolver
from resolver.wire import parse_query

log = logging.getLogger("resolver.server")

try:
    from corenet._loop import BaseLoop as _CorenetLoop
except ImportError:      # pragma: no cover - corenet is part of this package
    _CorenetLoop = None

#: Upper bounds (seconds) of the answer-latency histogram buckets.
LATENCY_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0)


def _qtype(q: bytes) -> int:
    parsed = parse_query(q)
    if parsed is None:
        return 0
    key = parsed[0]
    return (key[-5] << 8) | key[-4]


class Counters:
    """What the Python paths count (the Cython UDP path keeps its own, merged in stats())."""

    def __init__(self) -> None:
        self.queries: Counter = Counter()        # (transport, rcode) -> n
        self.qtypes: Counter = Counter()         # qtype -> n
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.dropped: Counter = Counter()        # reason -> n
        self.refused_acl = 0
        self.truncated = 0
        self.tcp_connections = 0
        self.tcp_accepted = 0
        self.tcp_rejected = 0
        self.tcp_idle_closed = 0

    def answered(self, transport: str, out: bytes, qtype: int, seconds: float) -> None:
        self.queries[(transport, out[3] & 0x0F)] += 1
        self.qtypes[qtype] += 1
        self.latency_sum += seconds
        # The first bucket whose bound is >= seconds (the last one, +Inf, if none).
        self.latency[bisect_left(LATENCY_BUCKETS, seconds)] += 1


class Server:
    """Listeners, ACL and query dispatch for one process (one worker)."""

    def __init__(self, cfg: Config, resolver: Resolver | None = None) -> None:
        self.cfg = cfg
        self.resolver = resolver if resolver is not None else make_resolver(cfg)
        self.counters = Counters()
        self.udp: list[Any] = []            # UDPListener or (transport, protocol)
        self.tcp_servers: list[asyncio.AbstractServer] = []
        self.connections: set[TCPConnection] = set()
        self.misses: set = set()          # resolver._drive.Drive in flight
        self._drained: asyncio.Future | None = None     # set when the last miss ends
        self.inflight_by_client: Counter = Counter()
        self.fast_tcp_hits = 0
        self.addresses: list[tuple[str, int]] = []
        self._allow = list(cfg.allow)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.started_at = time.time()

    # ---- setup ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind every listen address (UDP and TCP on the same port) and start serving."""
        self.loop = loop = asyncio.get_running_loop()
        reuse = self.cfg.workers > 1
        defaults = self.cfg.listen == Config.listen
        for host, port in self.cfg.listen:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                usock = _bind(family, socket.SOCK_DGRAM, host, port, reuse)
            except OSError as e:
                # The default ::1 on a host without IPv6: serve on the rest, as Unbound does.
                if defaults and e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                    log.warning("not serving on %s: %s", host, e.strerror)
                    continue
                raise
            port = usock.getsockname()[1]
            try:
                tsock = _bind(family, socket.SOCK_STREAM, host, port, reuse)
            except OSError:
                usock.close()
                raise
            tsock.listen(1024)
            await self._serve_udp(loop, usock)
            srv = await loop.create_server(lambda: TCPConnection(self), sock=tsock)
            self.tcp_servers.append(srv)
            self.addresses.append((host, port))
            log.info("serving DNS on %s port %d (UDP%s, TCP)", host, port,
                     " via recvmmsg" if self.fast_udp else "")

    @property
    def fast_udp(self) -> bool:
        return bool(self.udp) and isinstance(self.udp[0], _udp_server.UDPListener)

    async def _serve_udp(self, loop, sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        except OSError:
            pass
        if _CorenetLoop is not None and isinstance(loop, _CorenetLoop):
            listener = _udp_server.UDPListener(sock.fileno())
            listener.setup(loop, sock, self.resolver.cache.messages.table, self.udp_miss,
                           self._allow, self.resolver.limits.prefetch_fraction)
            listener.start()
            self.udp.append(listener)
            return
        _, proto = await loop.create_datagram_endpoint(lambda: UDPProtocol(self), sock=sock)
        self.udp.append(proto)

    # ---- the query paths ----------------------------------------------------------------
    def allowed(self, addr) -> bool:
        try:
            ip = ipaddress.ip_address(addr[0].split("%", 1)[0])
        except (ValueError, TypeError, IndexError):
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self._allow)

    def drop_unusable(self, q: bytes) -> bool:
        """Counts and drops what no answer can be made for: shorter than a header, or a
        response (QR set) rather than a query."""
        if len(q) < 12:
            self.counters.dropped["short"] += 1
            return True
        if q[2] & 0x80:
            self.counters.dropped["response"] += 1
            return True
        return False

    def udp_query(self, q: bytes, addr, send: Callable[[bytes], None]) -> None:
        """Python UDP path (any loop): everything the C path does, then the engine."""
        if self.drop_unusable(q):
            return
        c = self.counters
        if not self.allowed(addr):
            c.refused_acl += 1
            send(_udp_server.refused_response(q))
            return
        out = self.resolver.resolve_cached(q)
        if out is not None:
            out = self._truncate_udp(out, q)
            c.answered("udp", out, _qtype(q), 0.0)
            send(out)
            return
        self._miss(q, addr, "udp", send, time.monotonic())

    def udp_miss(self, q: bytes, addr, listener) -> None:
        """From the Cython listener: what its C path did not answer (it already checked
        size, QR and the ACL)."""
        self._miss(q, addr, "udp", lambda out: listener.send(out, addr), time.monotonic())

    def _miss(self, q: bytes, addr, transport: str, send: Callable[[bytes], None],
              t0: float) -> bool:
        """Answers now (no recursion wanted) or starts a resolution that answers later.
        False when the query was dropped (overload): ``send`` will never be called."""
        if (q[2] & 0x79) != 0x01:
            # RD clear (no recursion) or an opcode other than QUERY: never a resolution.
            out = self.resolver.resolve_cached(q)
            if out is None:
                out = _udp_server.error_response(q, 4 if (q[2] & 0x78) else 5)
            self._answer(q, out, transport, send, t0)
            return True
        client = addr[0] if addr else None
        inflight = self.inflight_by_client
        n = inflight.get(client, 0)       # (no Counter.__missing__ call for a new client)
        cfg = self.cfg
        if len(self.misses) >= cfg.max_inflight or n >= cfg.max_inflight_per_client:
            self.counters.dropped["overload"] += 1
            return False
        inflight[client] = n + 1
        # No task: the engine's Drive calls back with the response (or None if cancelled).
        try:
            d = self.resolver.start_miss(
                q, lambda d, out: self._resolved(q, client, transport, send, t0, d, out),
                self.loop)
        except Exception as exc:        # a malformed query the engine rejects, or a bug
            d = self._failed(q, client, exc)
        if d.__class__ is bytes:
            self._resolved(q, client, transport, send, t0, None, d)
        elif d is None:
            self._resolved(q, client, transport, send, t0, None, None)
        elif not d.finished:
            self.misses.add(d)
        return True

    def _failed(self, q: bytes, client, exc: Exception) -> bytes | None:
        log.debug("query from %s failed: %r", client, exc)
        out = _udp_server.error_response(q, 1 if isinstance(exc, ValueError) else 2)
        if out is None:
            self.counters.dropped["short"] += 1
        return out

    def _resolved(self, q: bytes, client, transport: str, send, t0: float, d,
                  out: bytes | None) -> None:
        """The end of a miss: its response sent (none if it was cancelled), its count
        released."""
        if d is not None:
            self.misses.discard(d)
            if not self.misses and self._drained is not None and not self._drained.done():
                self._drained.set_result(None)
        n = self.inflight_by_client[client] - 1
        if n <= 0:
            del self.inflight_by_client[client]
        else:
            self.inflight_by_client[client] = n
        if out is not None:
            self._answer(q, out, transport, send, t0)

    def _answer(self, q: bytes, out: bytes, transport: str, send, t0: float) -> None:
        if transport == "udp":
            out = self._truncate_udp(out, q)
        self.counters.answered(transport, out, _qtype(q), time.monotonic() - t0)
        send(out)

    def _truncate_udp(self, out: bytes, q: bytes) -> bytes:
        limit = _udp_server.udp_limit(q)
        if len(out) > limit:
            self.counters.truncated += 1
            return _udp_server.truncate(out, limit)
        return out

    # ---- management -----------------------------------------------------------------------
    def set_allow(self, allow) -> None:
        self._allow = list(allow)
        for u in self.udp:
            if isinstance(u, _udp_server.UDPListener):
                u.set_allow(self._allow)

    def apply(self, cfg: Config) -> list[str]:
        """Takes a reloaded config: what can change at run time changes (ACL, limits, log
        level); returns the settings that need a restart."""
        need_restart = [name for name in ("listen", "workers", "metrics", "control",
                                          "upstream_port", "root_hints", "cache_size",
                                          "trust_anchor", "validate")
                        if getattr(cfg, name) != getattr(self.cfg, name)]
        self.cfg = cfg
        self.set_allow(cfg.allow)
        logging.getLogger().setLevel(cfg.log_level)
        return need_restart

    def stats(self) -> dict:
        """Every figure of this process, JSON-ready (metrics and `stats` print these)."""
        c = self.counters
        queries: Counter = Counter()
        for (transport, rcode), n in c.queries.items():
            queries[f"{transport}:{rcode}"] += n
        qtypes = Counter({str(k): v for k, v in c.qtypes.items()})
        latency = list(c.latency)
        dropped = Counter(c.dropped)
        refused = c.refused_acl
        truncated = c.truncated
        for u in self.udp:
            if isinstance(u, _udp_server.UDPListener):
                k = u.counters()
                for rcode, n in k["hit_rcodes"].items():
                    queries[f"udp:{rcode}"] += n
                for t, n in k["hit_qtypes"].items():
                    qtypes[str(t)] += n
                latency[0] += k["hits"]
                dropped["short"] += k["dropped_short"]
                dropped["response"] += k["dropped_response"]
                dropped["oversize"] += k["dropped_oversize"]
                dropped["send_error"] += k["send_errors"]
                if k["errors"]:
                    dropped["internal_error"] += k["errors"]
                refused += k["refused"]
                truncated += k["truncated"]
                if k["refused"]:
                    queries["udp:5"] += k["refused"]
        r = self.resolver
        engine = r.stats.as_dict()
        fast_hits = sum(u.hits for u in self.udp if isinstance(u, _udp_server.UDPListener))
        fast_hits += self.fast_tcp_hits
        engine["cache_hits"] += fast_hits
        engine["client_queries"] += fast_hits
        return {
            "queries": dict(queries),
            "qtypes": dict(qtypes),
            "latency_buckets": list(LATENCY_BUCKETS),
            "latency_counts": latency,
            "latency_sum": c.latency_sum,
            "dropped": dict(dropped),
            "refused_acl": refused,
            "truncated": truncated,
            "tcp": {"open": c.tcp_connections, "accepted": c.tcp_accepted,
                    "rejected": c.tcp_rejected, "idle_closed": c.tcp_idle_closed,
                    "fast_hits": self.fast_tcp_hits},
            "engine": engine,
            "cache": {"bytes": r.cache.bytes, "messages": len(r.cache.messages.lru),
                      "rrsets": len(r.cache.rrsets.lru), "evictions": r.cache.evictions},
            "inflight": len(self.misses),
            "uptime": time.time() - self.started_at,
        }

    async def stop(self, grace: float | None = None) -> None:
        """Stops listening, lets queries in flight finish (at most ``grace`` seconds), then
        closes every connection and the resolver."""
        grace = self.cfg.shutdown_grace if grace is None else grace
        for u in self.udp:
            u.stop_reading()
        for srv in self.tcp_servers:
            srv.close()
        if self.misses:
            log.info("waiting up to %.1fs for %d queries in flight", grace, len(self.misses))
            self._drained = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._drained), grace)
            except asyncio.TimeoutError:
                for d in list(self.misses):
                    d.cancel()                # closes its sockets now; no answer is sent
        for conn in list(self.connections):
            conn.close()
        for u in self.udp:
            u.close()
        self.udp.clear()
        await self.resolver.close()


def make_resolver(cfg: Config) -> Resolver:
    kw: dict[str, Any] = {"port": cfg.upstream_port, "cache_size": cfg.cache_size}
    if cfg.trust_anchor is not None:
        kw["trust_anchor"] = cfg.trust_anchor
    if cfg.validate is not None:
        kw["validate"] = cfg.validate
    return Resolver(cfg.root_hints, **kw)


def _bind(family: int, kind: int, host: str, port: int, reuseport: bool) -> socket.socket:
    s = socket.socket(family, kind)
    try:
        s.setblocking(False)
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
    except OSError:
        s.close()
        raise
    return s


class UDPProtocol(asyncio.DatagramProtocol):
    """UDP on a loop that is not corenet's: a plain asyncio DatagramProtocol, the same
    checks and answers as the C listener, one datagram at a time."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.reading = True

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if self.reading:
            self.server.udp_query(data, addr, lambda out: self.send(out, addr))

    def error_received(self, exc: Exception) -> None:
        self.server.counters.dropped["send_error"] += 1     # ICMP from a client gone away

    def send(self, data: bytes, addr) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)

    def stop_reading(self) -> None:
        """A graceful stop: new queries are ignored, answers in flight still go out."""
        self.reading = False

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class TCPConnection(FrameProtocol):
    """One DNS-over-TCP client: frames in, answers out as they complete."""

    def __init__(self, server: Server) -> None:
        cfg = server.cfg
        super().__init__(header_size=2, byteorder="big", max_frame_size=cfg.tcp_max_query,
                         buffer_size=max(1024, min(16384, cfg.tcp_max_query * 4)))
        # The framer with cache hits answered in C (handle_frame overridden); the rest comes
        # to query() as bytes.
        self._framer = DNSFrameReceiver(None, 2, "big", cfg.tcp_max_query,
                                        max(1024, min(16384, cfg.tcp_max_query * 4)))
        self._framer.setup(self, server.resolver.cache.messages.table,
                           server.resolver.limits.prefetch_fraction)
        self._framer.fast = False          # until the client is known to be allowed
        self.server = server
        self.peer = None
        self.allowed = False
        self.inflight = 0
        self.backlog: deque = deque()
        self.paused = False
        self.closed = False
        self.last = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        s = self.server
        c = s.counters
        if c.tcp_connections >= s.cfg.tcp_max_connections:
            c.tcp_rejected += 1
            self.closed = True
            transport.abort()
            return
        c.tcp_connections += 1
        c.tcp_accepted += 1
        s.connections.add(self)
        self.peer = transport.get_extra_info("peername")
        self.allowed = s.allowed(self.peer) if self.peer else False
        self._framer.fast = self.allowed
        self.last = s.loop.time()
        self.timer = s.loop.call_later(s.cfg.tcp_idle_timeout, self._idle_check)

    def _idle_check(self) -> None:
        self.timer = None
        if self.closed:
            return
        loop = self.server.loop
        idle = self.server.cfg.tcp_idle_timeout
        if self.inflight == 0 and loop.time() - self.last >= idle:
            self.server.counters.tcp_idle_closed += 1
            self.close()
            return
        self.timer = loop.call_at(max(self.last + idle, loop.time() + 0.01), self._idle_check)

    def frame_received(self, frame: memoryview) -> None:
        self.query(bytes(frame))           # only with a plain FrameReceiver

    def answer_hit(self, out: bytes, qtype: int) -> None:
        """A cache hit answered by the framer in C."""
        if self.closed:
            return
        s = self.server
        s.fast_tcp_hits += 1
        s.counters.answered("tcp", out, qtype, 0.0)
        self._send(out)

    def query(self, q: bytes) -> None:
        """A query the framer did not answer itself."""
        if self.closed:
            return
        self.last = self.server.loop.time()
        if self.inflight >= self.server.cfg.tcp_max_inflight:
            self.backlog.append(q)
            if not self.paused:
                self.paused = True
                self.transport.pause_reading()
            return
        self._query(q)

    def _query(self, q: bytes) -> None:
        s = self.server
        if s.drop_unusable(q):
            return
        c = s.counters
        t0 = time.monotonic()
        if not self.allowed:
            c.refused_acl += 1
            s._answer(q, _udp_server.refused_response(q), "tcp", self._send, t0)
            return
        if q[2] & 0x01 and not q[2] & 0x78:
            out = s.resolver.resolve_cached(q)
            if out is not None:
                s._answer(q, out, "tcp", self._send, t0)
                return
        self.inflight += 1
        if not s._miss(q, self.peer, "tcp", self._send_done, t0):
            self._one_done()

    def _send(self, out: bytes) -> None:
        if not self.closed and self.transport is not None and not self.transport.is_closing():
            self.send_frame(out)
            self.last = self.server.loop.time()

    def _send_done(self, out: bytes) -> None:
        self._send(out)
        self._one_done()

    def _one_done(self) -> None:
        self.inflight = max(0, self.inflight - 1)
        while self.backlog and self.inflight < self.server.cfg.tcp_max_inflight:
            self._query(self.backlog.popleft())
        if self.paused and not self.backlog and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc) -> None:
        s = self.server
        if isinstance(exc, FrameTooLarge):
            s.counters.dropped["tcp_oversize"] += 1
        if self in s.connections:
            s.connections.discard(self)
            s.counters.tcp_connections -= 1
        self.closed = True
        self.backlog.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
