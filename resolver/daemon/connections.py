"""What the daemon's stream listeners share: the bound socket, the client of a stream
(``StreamClient``: peer, ACL verdict, the connection caps, the idle timeout, output the
peer does not take) and the
DNS-over-TCP connection (``TCPConnection``), which DNS over TLS runs too.

A connection talks to its server through a small interface: ``admit``/``forget_connection``
(the caps), ``who`` (the client's standing by the ACL), ``front`` (the front door, which the
framer hands each query in C), ``resolver``, ``cfg``, ``counters`` (the front door's counter
block) and ``loop`` (``resolver.daemon.server.Server`` has them). This module is below the
listeners and the server: it imports neither.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from typing import Any

from corenet.framing import FrameTooLarge

from resolver.daemon import proxy_protocol
from resolver.daemon.admission import OUTSIDE_ACL
from resolver.daemon.tcp_framer import DNSFrameReceiver

log = logging.getLogger("resolver.daemon.connections")


#: Sockets bound ahead for this process, which :func:`bind_socket` hands out before it binds
#: one itself: (kind, host, port) -> socket. A supervisor binds its workers' while it is
#: still root (:func:`bind_ahead`) and keeps them, so that a worker it starts again, running
#: as the daemon's user by then, finds its sockets here: a port below 1024 needs no
#: privilege, and SO_REUSEPORT joins only sockets made by one user.
RESERVED: dict[tuple[int, str, int], socket.socket] = {}


#: Linux's socket options that Python does not name
IP_FREEBIND = 15
IP_TRANSPARENT = getattr(socket, "IP_TRANSPARENT", 19)
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
#: a buffer size forced past the system's cap (CAP_NET_ADMIN), and the option that asks
#: for it within the cap when the process may not force it
UNFORCED = {SO_RCVBUFFORCE: (socket.SO_RCVBUF, "so-rcvbuf", "rmem_max"),
            SO_SNDBUFFORCE: (socket.SO_SNDBUF, "so-sndbuf", "wmem_max")}
_warned: set[int] = set()


def listen_options(cfg, kind: int = socket.SOCK_STREAM) -> tuple[tuple[int, int, int], ...]:
    """The socket options ``cfg`` asks of a listening socket of ``kind``, as (level,
    option, value), as Unbound sets them on its interfaces: IP_FREEBIND (``ip-freebind``:
    an address not, or not yet, on the host may be bound, as a listener started before its
    interface comes up needs), IP_TRANSPARENT (``ip-transparent``: any address, as traffic
    a firewall redirects there needs; the kernel asks for CAP_NET_ADMIN), and on UDP the
    receive and send buffers (``so-rcvbuf``, ``so-sndbuf``; 0: the system's), forced past
    ``net.core.rmem_max`` and ``wmem_max`` where the process may (CAP_NET_ADMIN)."""
    out = []
    if cfg.ip_freebind:
        out.append((socket.SOL_IP, IP_FREEBIND, 1))
    if cfg.ip_transparent:
        out.append((socket.SOL_IP, IP_TRANSPARENT, 1))
    if kind == socket.SOCK_DGRAM:
        out += [(socket.SOL_SOCKET, force, size)
                for force, size in ((SO_RCVBUFFORCE, cfg.so_rcvbuf),
                                    (SO_SNDBUFFORCE, cfg.so_sndbuf)) if size]
    return tuple(out)


def _setsockopt(s: socket.socket, level: int, option: int, value: int) -> None:
    """``option`` set on ``s``; a buffer size the process may not force is asked within
    the system's cap, and said once when the kernel grants less (as Unbound says it)."""
    try:
        s.setsockopt(level, option, value)
        return
    except PermissionError:
        if option not in UNFORCED:
            raise
    plain, name, cap = UNFORCED[option]
    s.setsockopt(level, plain, value)
    granted = s.getsockopt(level, plain) // 2        # the kernel reports it doubled
    if granted < value and option not in _warned:
        _warned.add(option)
        log.warning("%s %d was not granted: got %d; give the daemon CAP_NET_ADMIN (root "
                    "has it) or raise the sysctl net.core.%s", name, value, granted, cap)


def bind_ahead(cfg, count: int) -> list[dict[tuple[int, str, int], socket.socket]]:
    """``count`` sets of the sockets ``cfg``'s listeners bind (UDP and TCP of ``listen``,
    the TCP of the encrypted listeners), SO_REUSEPORT, one set per worker, for
    :data:`RESERVED`. An address that cannot be bound is left out: the worker binding it
    itself meets the error and says it."""
    sets: list[dict] = [{} for _ in range(count)]
    wanted = [(socket.SOCK_DGRAM, h, p) for h, p in cfg.listen] + \
        [(socket.SOCK_STREAM, h, p) for h, p in cfg.listen] + \
        [(socket.SOCK_STREAM, h, p)
         for h, p in (*cfg.tls_listen, *cfg.https_listen, *cfg.http_listen)]
    for kind, host, port in wanted:
        if port == 0:                   # each worker's own port: bound by the worker
            continue
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        options = listen_options(cfg, kind)
        for held in sets:
            try:
                held[(kind, host, port)] = _bind(family, kind, host, port, True, options)
            except OSError:
                break
    return sets


def bind_socket(family: int, kind: int, host: str, port: int, reuseport: bool,
                options: tuple = ()) -> socket.socket:
    """A non-blocking socket of ``family`` and ``kind`` bound to (``host``, ``port``): the
    one bound ahead (:data:`RESERVED`), else a new one with SO_REUSEADDR for a stream,
    SO_REUSEPORT when asked (workers share the port), IPv6 only on an IPv6 address, and
    ``options`` (:func:`listen_options`), closed again if any step fails."""
    held = RESERVED.pop((kind, host, port), None)
    if held is not None:
        return held
    return _bind(family, kind, host, port, reuseport, options)


def _bind(family: int, kind: int, host: str, port: int, reuseport: bool,
          options: tuple = ()) -> socket.socket:
    s = socket.socket(family, kind)
    try:
        s.setblocking(False)
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        for level, option, value in options:
            _setsockopt(s, level, option, value)
        s.bind((host, port))
    except OSError:
        s.close()
        raise
    return s


def address_text(host: str, port: int) -> str:
    """``host:port`` as messages write it, an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class StreamClient:
    """What every stream client (TCP, TLS, HTTP) has: its peer and standing by the ACL
    (``who``, decided once per connection), admission
    against the connection caps it shares with the others (``Server.admit``), the idle
    timeout (no query in flight and nothing received for ``tcp-idle-timeout``, or
    ``edns-tcp-keepalive-timeout`` once the client asked for it), output the
    peer does not take (past ``_output_limits()``'s bytes the connection is no longer read,
    and aborted if they are not drained within its seconds: ``write_stalled``; a closing
    connection's last output too: ``close_stalled``), close.

    A subclass says its output limits, whether it wants input apart from them
    (``_wants_input``) and how a connection so ended is counted (``_defence``)."""

    server: Any                 # resolver.daemon.server.Server (the interface above)
    transport: Any
    #: DNS over HTTP(S): its bytes held are Unbound's ``mem.http.*``, not ``mem.streamwait``
    speaks_http = False

    def _setup_client(self, server) -> None:
        self.transport = None
        self.server = server
        self.peer = None
        self.client = None
        self.who = OUTSIDE_ACL
        self.inflight = 0
        self.closed = False
        self.last = 0.0
        self.idle_timeout = 0.0     # tcp-idle-timeout once admitted (keep_alive may raise it)
        self.timer: asyncio.TimerHandle | None = None
        self.write_paused = False   # output past the limit: not read until it drains
        self.stall: asyncio.TimerHandle | None = None   # aborts it if not drained in time

    def _output_limits(self) -> tuple[int, float]:
        """Bytes of output waiting past which the connection is not read, and the seconds
        it may stay so (``resolver.limits``)."""
        raise NotImplementedError

    def _wants_input(self) -> bool:
        """Whether the connection would be read, output aside."""
        return True

    def buffered(self) -> tuple[int, int]:
        """Bytes held for the client now: of its queries read and not yet handed to the
        front door, and of answers not yet written (the transport's buffer included)."""
        raise NotImplementedError

    def _unwritten(self) -> int:
        """Bytes in the transport's buffer, not yet taken by the socket."""
        return 0 if self.transport is None else self.transport.get_write_buffer_size()

    def _defence(self, what: str) -> None:
        """Counts a connection ended for output not taken (``write_stalled``,
        ``close_stalled``)."""
        raise NotImplementedError

    def _admitted(self, transport, peer=None) -> bool:
        """The start of ``connection_made``: False when the caps refuse the connection (then
        aborted). ``peer``: the client when not the transport's peer (a proxy's: the ACL
        looks at the proxy's address too, ``Server.proxied_who``)."""
        self.transport = transport
        s = self.server
        sender = transport.get_extra_info("peername")
        self.peer = peer if peer is not None else sender
        self.client = self.peer[0] if self.peer else None
        if not s.admit(self):
            self.closed = True
            transport.abort()
            return False
        self.who = s.who(self.peer) if peer is None else s.proxied_who(sender, self.peer)
        self.last = s.loop.time()
        self.idle_timeout = s.cfg.tcp_idle_timeout
        self.timer = s.loop.call_later(self.idle_timeout, self._idle_check)
        transport.set_write_buffer_limits(high=self._output_limits()[0])
        return True

    def keep_alive(self, seconds: float) -> None:
        """The client asked for TCP keepalive (RFC 7828, ``edns-tcp-keepalive``): idle,
        the connection stays open for ``seconds``, which its answers tell it."""
        self.idle_timeout = seconds

    def _idle_check(self) -> None:
        self.timer = None
        if self.closed:
            return
        loop = self.server.loop
        idle = self.idle_timeout
        if self.inflight == 0 and loop.time() - self.last >= idle:
            self.server.counters.tcp_idle_closed += 1
            self.close()
            return
        self.timer = loop.call_at(max(self.last + idle, loop.time() + 0.01), self._idle_check)

    # ---- output the peer does not take
    def pause_writing(self) -> None:
        """Output past the limit: nothing more is read (no query, nothing to answer) until
        it drains; aborted if it has not within the limit's seconds."""
        self.write_paused = True
        if not self.closed:
            self.transport.pause_reading()
        if self.stall is None:
            self.stall = self.server.loop.call_later(self._output_limits()[1], self._stalled,
                                                     "write_stalled")

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.stall is not None:
            self.stall.cancel()
            self.stall = None
        if not self.closed and self._wants_input():
            self.transport.resume_reading()

    def _stalled(self, what: str) -> None:
        self.stall = None
        self._defence(what)
        self.closed = True
        self.transport.abort()

    def close(self) -> None:
        """Closes once what is buffered is out, or aborts if the peer has not taken it
        within the limit's seconds."""
        if self.closed:
            return
        self.closed = True
        if self.transport is not None:
            self.transport.close()
            if self.stall is None:
                self.stall = self.server.loop.call_later(self._output_limits()[1],
                                                         self._stalled, "close_stalled")

    def _gone(self) -> None:
        """The end of ``connection_lost``: the caps forget it, its timers stop."""
        self.server.forget_connection(self)
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.stall is not None:
            self.stall.cancel()
            self.stall = None


class TCPConnection(StreamClient, asyncio.BufferedProtocol):
    """One DNS-over-TCP client: frames in, answers out as they complete. Over TLS the same
    class reads the decrypted stream, with ``label`` "tls" in the counters."""

    label = "tcp"
    #: The transport hands received bytes straight to the framer (a subclass with a
    #: ``buffer_updated`` of its own says False).
    framer_reads = True
    #: The answers to queries that ask for padding are padded as ``pad-responses`` says
    #: (DNS over TLS, as Unbound's: padding hides sizes only from who cannot read them).
    pads = False

    def __init__(self, server) -> None:
        cfg = server.cfg
        # corenet's framer, each frame handed to the front door in C (handle_frame
        # overridden), with this connection's reply (tcp_framer.StreamReply)
        self.framer = DNSFrameReceiver(None, 2, "big", cfg.tcp_max_query,
                                       max(1024, min(16384, cfg.tcp_max_query * 4)))
        self.framer.setup(self, server.front, self.label,
                          cfg.pad_responses_block_size if self.pads and cfg.pad_responses
                          else 0, server.loop,
                          cfg.edns_tcp_keepalive_timeout if cfg.edns_tcp_keepalive else 0.0)
        self.get_buffer = self.framer.get_buffer
        if self.framer_reads:
            self.buffer_updated = self.framer.buffer_updated
        self._setup_client(server)
        self.backlog: deque = deque()
        self.paused = False
        self.draining = False           # a turn of _drain is due

    def connection_made(self, transport) -> None:
        if self._admitted(transport):
            self.framer.who = self.who

    def _frames(self, data: bytes) -> None:
        """Frames ``data``, read before the framer was (what came after a proxy's header)."""
        while data and not self.closed:
            buf = self.framer.get_buffer(len(data))
            k = min(len(buf), len(data))
            buf[:k] = data[:k]
            data = data[k:]
            self.framer.buffer_updated(k)

    def hold(self, q: bytes) -> bool:
        """A miss of this connection (its reply asks): True when it goes on now, counted
        in flight; False when the connection is at ``tcp-max-inflight``: then it waits in
        the backlog (reading paused) and goes to the front door again when its turn
        comes."""
        if self.closed:
            return False
        self.last = self.server.loop.time()
        if self.inflight >= self.server.cfg.tcp_max_inflight:
            self.backlog.append(q)
            if not self.paused:
                self.paused = True
                self.transport.pause_reading()
            return False
        self.inflight += 1
        return True

    def _output_limits(self) -> tuple[int, float]:
        limits = self.server.resolver.limits
        return limits.tcp_max_pending_output, limits.tcp_write_timeout

    def _wants_input(self) -> bool:
        return not self.paused

    def buffered(self) -> tuple[int, int]:
        return sum(len(q) for q in self.backlog), self._unwritten()

    def _defence(self, what: str) -> None:
        c = self.server.counters
        if what == "write_stalled":
            c.tcp_write_stalled += 1
        else:
            c.tcp_close_stalled += 1

    def close(self) -> None:
        """Closes once the answers already made (the framer's, due at the end of the turn)
        are written: an idle check or the door may close it in the turn that made them."""
        if not self.closed:
            self.framer.flush()
        super().close()

    def send_frames(self, pieces: list[bytes]) -> None:
        """Answers, each after its length (the framer's answers of one turn), written in
        one call."""
        if not self.closed and self.transport is not None and not self.transport.is_closing():
            self._write(pieces)
            self.last = self.server.loop.time()

    def _write(self, pieces: list[bytes]) -> None:
        self.transport.writelines(pieces)

    def query_done(self) -> None:
        """A miss this connection let through is answered or dropped: the backlog's next
        queries go to the front door, on the loop's next turn (the door may be in the
        middle of starting another miss: one it jostled out ends here)."""
        self.inflight = max(0, self.inflight - 1)
        if self.paused and not self.draining:
            self.draining = True
            self.server.loop.call_soon(self._drain)

    def _drain(self) -> None:
        self.draining = False
        while (self.backlog and not self.closed
               and self.inflight < self.server.cfg.tcp_max_inflight):
            self.framer.handle(self.backlog.popleft())
        if self.paused and not self.backlog and not self.closed:
            self.paused = False
            if not self.write_paused:
                self.transport.resume_reading()

    def connection_lost(self, exc) -> None:
        if isinstance(exc, FrameTooLarge):
            self.server.counters.drop("tcp_oversize")
        self.backlog.clear()
        self.framer.release()
        self._gone()


def proxy_dropped(server, reason: str) -> None:
    """Counts a stream or datagram dropped for its PROXY v2 header (``proxy_<reason>``)."""
    server.counters.drop(f"proxy_{reason}")


class ProxiedStream:
    """The start of a stream from a proxy (``proxy-protocol-port``), before the protocol's
    own: the PROXY v2 header naming the client, read before anything else within the idle
    timeout (on TLS: the start of the decrypted stream, after the handshake). Meanwhile the
    connection counts against the global connection cap, and a proxy the ACL denies is
    not read at all (``Server.hold_unnamed``). A connection
    whose header is wrong, late or cut short is closed and counted (``proxy_<reason>``);
    once it is complete, ``_named(peer, rest)`` admits the client it names (the caps, the
    ACLs and the logs see that one) and reads ``rest``, what came after it. Mixed in before
    a ``StreamClient`` protocol."""

    proxy_head: proxy_protocol.StreamHeader | None = None
    #: counted in the connection cap while its header is awaited (``Server.hold_unnamed``)
    unnamed = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        s = self.server
        if not s.hold_unnamed(transport.get_extra_info("peername")):
            self.closed = True
            transport.abort()
            return
        self.unnamed = True
        self.proxy_head = proxy_protocol.StreamHeader()
        self.timer = s.loop.call_later(s.cfg.tcp_idle_timeout, self._no_header)

    def _named_now(self) -> None:
        """The header came, or the connection ends without it: no longer counted as one
        awaiting its header (a named client is counted by ``_admitted``)."""
        if self.unnamed:
            self.unnamed = False
            self.server.release_unnamed()

    def _gone(self) -> None:
        self._named_now()
        super()._gone()

    def _header_read(self, read, arg) -> None:
        """``read(arg)``: the header's bytes came (``StreamHeader.received``, ``feed``)."""
        try:
            header = read(arg)
        except proxy_protocol.ProxyHeaderError as e:
            self._refuse(e.reason)
            return
        if header is None:
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        rest = self.proxy_head.rest(header)
        self.proxy_head = None
        self._named_now()
        self._named(header.client(self.transport.get_extra_info("peername")), rest)

    def _named(self, peer, rest: bytes) -> None:
        raise NotImplementedError

    def eof_received(self):
        if self.proxy_head is None:
            return super().eof_received()
        reason = self.proxy_head.ended()
        if reason is not None:
            self._refuse(reason)
        return None

    def _no_header(self) -> None:
        self.timer = None
        if not self.closed and self.proxy_head is not None:
            self._refuse("truncated")

    def _refuse(self, reason: str) -> None:
        proxy_dropped(self.server, reason)
        self._named_now()
        self.closed = True
        self.proxy_head = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.transport.abort()


class ProxiedTCPConnection(ProxiedStream, TCPConnection):
    """DNS over TCP from a proxy: the header (``ProxiedStream``), then the frames."""

    framer_reads = False

    def __init__(self, server) -> None:
        super().__init__(server)
        self.get_buffer = self._header_buffer
        self.buffer_updated = self._header_received

    def _header_buffer(self, n: int) -> memoryview:
        return self.proxy_head.buffer()

    def _header_received(self, n: int) -> None:
        self._header_read(self.proxy_head.received, n)

    def _named(self, peer, rest: bytes) -> None:
        if not self._admitted(self.transport, peer):
            return
        self.framer.who = self.who
        self.get_buffer = self.framer.get_buffer
        self.buffer_updated = self.framer.buffer_updated
        self._frames(rest)
