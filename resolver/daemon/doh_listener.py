"""The daemon's DNS-over-HTTP(S) connections: the socket side of :mod:`resolver.daemon.doh`.

An :class:`HTTPConnection` is the application protocol of one client, on TLS (an
``https-listen`` socket, HTTP/2 or HTTP/1.1 by ALPN) or on plain TCP (``http-listen``,
HTTP/2 with prior knowledge when the client starts with its preface, HTTP/1.1 otherwise).
The connection accepts the client and wires its HTTP session, which asks the front door
itself (:mod:`resolver.daemon.doh_reply`): the daemon's usual path, ACL (REFUSED outside it),
the cache, then a resolution, with the connection caps, idle timeout and counters the TCP
connections have. The connection writes what the session has to send after each read and
after each answer that comes later (``answered``).

Its defences, each counted in the listener's figures (and logged at INFO once per client
per minute): HPACK work past ``limits.doh_max_header_fields`` (per block) or
``doh_max_header_fields_per_connection`` ends the connection (``hpack_budget``); only a
query or an answer renews the idle time (a PING or a SETTINGS does not), so a connection
that only keeps itself alive is closed by ``tcp-idle-timeout`` or shed for a new client at
the cap; past ``limits.doh_max_pending_output`` bytes of output the connection is no longer
read, and aborted if the peer has not drained it within ``limits.doh_write_timeout``
(``write_stalled``), and a closing connection whose last output is not taken within it too
(``close_stalled``); a stream reset before its answer gets none (``cancelled``), and the
client's wait for its resolution is cancelled (the resolution stops unless another query
waits for it too); after a
GOAWAY the connection closes once it is flushed, counted when the peer earned it: a protocol
error (``protocol_error``) or most of its streams reset before their answers
(``reset_flood``, a rapid-reset attack ended by nghttp2 or by
``doh_max_requests_per_connection``).

Each connection so ended is a strike against its client address (the listener's
:class:`Guard`, its table a :class:`resolver.daemon.throttle.Throttle`): past
``limits.doh_throttle_strikes`` within ``doh_throttle_window`` seconds, the address's new
connections are closed at their accept for ``doh_throttle_penalty`` seconds (``throttled``,
each refused connection counted): on ``https-listen`` by the TLS accept
(``tls_server.TLSService.refuse``) before the handshake, on ``http-listen`` as the
connection is made, before any byte is read.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

from resolver.daemon.doh import H2_PREFACE, H1Server
from resolver.daemon.doh_reply import DoorLink
from resolver.daemon.h2_server import H2Server
from resolver.daemon.connections import ProxiedStream, StreamClient
from resolver.daemon.throttle import Throttle

log = logging.getLogger("resolver.daemon")

#: (client, defence) -> when it was last logged: one line per client per interval.
_logged: dict[tuple[Any, str], float] = {}
LOG_INTERVAL = 60.0


def log_defence(client, what: str, now: float) -> None:
    """Logs a defence against ``client`` at INFO, once per ``LOG_INTERVAL`` per client."""
    key = (client, what)
    if now - _logged.get(key, -LOG_INTERVAL) < LOG_INTERVAL:
        return
    if len(_logged) > 10000:
        _logged.clear()
    _logged[key] = now
    log.info("DoH client %s: %s", client, what)


class Guard:
    """A DoH listener's defences against its clients: each counted in the listener's
    figures and logged once per client per interval; a connection ended for abuse is a
    strike against its client's address, and an address with too many is refused for a
    while (``refuse``, asked at each accept). One per listener and worker."""

    def __init__(self, counts: dict[str, int], limits) -> None:
        self.counts = counts
        counts.setdefault("throttled", 0)
        self.throttle = (Throttle(limits.doh_throttle_strikes, limits.doh_throttle_window,
                                  limits.doh_throttle_penalty, limits.doh_throttle_clients)
                         if limits.doh_throttle_penalty > 0 else None)

    def defended(self, client, what: str, ended: bool) -> None:
        """A defence of kind ``what`` against ``client``; ``ended``: it ends the connection
        for abuse (a strike)."""
        now = time.monotonic()
        self.counts[what] = self.counts.get(what, 0) + 1
        log_defence(client, what, now)
        if ended and self.throttle is not None and client is not None:
            if self.throttle.strike(client, now):
                log.info("DoH client %s: new connections refused for %g s (more than %d "
                         "ended for abuse within %g s)", client, self.throttle.penalty,
                         self.throttle.strikes, self.throttle.window)

    def refuse(self, client) -> bool:
        """Whether a new connection of ``client`` is refused now (its address throttled);
        counted and logged when it is."""
        if self.throttle is None or client is None:
            return False
        now = time.monotonic()
        if not self.throttle.refused(client, now):
            return False
        self.counts["throttled"] += 1
        log_defence(client, "throttled", now)
        return True


class PlainListener:
    """``http-listen``: DNS over HTTP without TLS (behind a proxy that terminates it)."""

    label = "http"

    def __init__(self, server) -> None:
        self.server = server
        self.counts: dict[str, int] = {}
        self.guard = Guard(self.counts, server.resolver.limits)

    async def listen(self, loop, sock: socket.socket,
                     proxied: bool = False) -> asyncio.AbstractServer:
        """Serves on ``sock``; ``proxied``: a proxy's port, each connection starting with a
        PROXY v2 header."""
        kind = ProxiedHTTPConnection if proxied else HTTPConnection
        return await loop.create_server(lambda: kind(self.server, self), sock=sock)

    def stage(self, cfg) -> None:
        return None               # nothing to read

    def reload(self, cfg, staged=None) -> None:
        pass                      # the endpoint is read from the server's config per request

    def stats(self) -> dict[str, Any]:
        return dict(self.counts)


class HTTPConnection(StreamClient, asyncio.Protocol):
    """One DNS-over-HTTP(S) client."""

    speaks_http = True

    def __init__(self, server, listener) -> None:
        self._setup_client(server)
        self.listener = listener
        self.label = listener.label
        self.engine: H1Server | H2Server | None = None
        self.head = b""            # plain HTTP: the first bytes, until the version is known
        self.reading = True
        self.sock = None           # the TCP socket, for TCP_QUICKACK
        self.batch: list[bytes] | None = None    # during a read: its answers, to write
        self.rest = b""            # input past doh_max_bytes_per_read, for the next turn
        self.struck = False        # ended for abuse: a strike against its address
        self.link: DoorLink | None = None   # the session's tie to the front door

    # ---- the connection
    def connection_made(self, transport) -> None:
        self._begin(transport, transport.get_extra_info("peername"))

    def _begin(self, transport, peer, throttled: bool = False) -> None:
        """The client ``peer`` is admitted, or refused (``transport`` aborted).
        ``throttled``: the accept has not asked the throttle (a proxy's client)."""
        if ((self.label == "http" or throttled)
                and self.listener.guard.refuse(peer[0] if peer else None)):
            # (On TLS the accept has asked already, before the handshake, unless the
            # client is a proxy's.)
            self.transport = transport
            self.closed = True
            transport.abort()
            return
        if not self._admitted(transport, peer):
            return
        self._count("connections")
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self._start(ssl_object.selected_alpn_protocol() == "h2")

    def _start(self, http2: bool) -> None:
        """Wires the connection's HTTP session, which asks the front door itself."""
        cfg = self.server.cfg
        limits = self.server.resolver.limits
        endpoint = cfg.http_endpoint.encode()
        self.sock = self.transport.get_extra_info("socket")
        self.link = DoorLink(self.server.front, self.label, self,
                             self.listener.counts)
        if http2:
            self.engine = H2Server(endpoint, cfg.tcp_max_query, limits.doh_max_streams,
                                   limits.doh_max_requests_per_connection,
                                   limits.doh_max_request_head,
                                   limits.doh_max_header_fields,
                                   limits.doh_max_header_fields_per_connection, self.link)
        else:
            self.engine = H1Server(endpoint, cfg.tcp_max_query,
                                   limits.doh_max_requests_per_connection,
                                   limits.doh_max_request_head, self.link)
        self._flush()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.rest:                 # a read while the rest waits: after it, in order
            self.rest += data
            return
        if self.engine is None:
            # Plain HTTP: HTTP/2 with prior knowledge starts with its preface.
            self.head += data
            n = min(len(self.head), len(H2_PREFACE))
            if self.head[:n] == H2_PREFACE[:n] and n < len(H2_PREFACE):
                return
            self._start(self.head[:n] == H2_PREFACE[:n])
            data, self.head = self.head, b""
        most = self.server.resolver.limits.doh_max_bytes_per_read
        if len(data) > most and isinstance(self.engine, H2Server):
            # One HTTP/2 connection's share of a loop iteration is bounded: the rest is fed
            # on the next one, the connection not read until then. (HTTP/1.1 bounds its
            # head and answers one request at a time.)
            data, self.rest = data[:most], data[most:]
            self.transport.pause_reading()
            self.server.loop.call_soon(self._feed_rest)
        self.batch = []
        try:
            asked = self.link.asked
            self.engine.receive(data)
            if self.link.asked == asked:
                self._acknowledge_now()
        finally:
            batch, self.batch = self.batch, None
        self._flush(batch)

    def _acknowledge_now(self) -> None:
        """A read that completed no request (a POST's head without its body, say): what came
        is acknowledged at once. Clients that write a request's head and body apart with
        Nagle's algorithm on (dnsperf's DoH POST: HEADERS, then DATA) hold the body until the
        head is acknowledged, and Linux delays that acknowledgement up to 40 ms, so each
        such query would take 40 ms. TCP_QUICKACK lasts only until the kernel's next
        delayed-ACK decision, hence once per such read."""
        if self.sock is not None:
            try:
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                pass

    def eof_received(self) -> bool:
        if self.engine is not None and not self.closed:
            self.engine.receive(b"")
            self._flush()
        return False

    def _flush(self, batch: list[bytes] | None = None) -> None:
        """Writes what the engine has to send after ``batch`` (the answers a read made), in
        one call: on TLS one send, each answer its own record. A client may take one answer
        per record it reads (dnsperf does, and with several in one record it waits for the
        rest until the socket is readable again)."""
        engine = self.engine
        if self.closed or engine is None:
            return
        out = engine.data_to_send()
        if batch:
            if out:
                batch.append(out)
            self.transport.writelines(batch)
        elif out:
            # Not activity: a PING's or a SETTINGS' ACK does not keep a connection alive
            # (only a query and its answer renew ``last``).
            self.transport.write(out)
        for status in engine.errors:
            self._count(f"status_{status}")
        engine.errors.clear()
        if engine.closing and not engine.busy:
            abuse = getattr(engine, "abuse", None)
            if abuse is not None and not self.closed:
                self._defence(abuse)
            self.close()
        elif engine.wants_input != self.reading:
            # HTTP/1.1 answers in order: while one is owed, what the client sends next waits
            # in the socket rather than in memory.
            self.reading = engine.wants_input
            if self.reading and not self.write_paused:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def _feed_rest(self) -> None:
        """The input a read left over, on the loop's next iteration."""
        rest, self.rest = self.rest, b""
        if self.closed:
            return
        if self.reading and not self.write_paused:
            self.transport.resume_reading()
        if rest:
            self.data_received(rest)

    # ---- output the peer does not read (``StreamClient``)
    def _output_limits(self) -> tuple[int, float]:
        limits = self.server.resolver.limits
        return limits.doh_max_pending_output, limits.doh_write_timeout

    def _wants_input(self) -> bool:
        return self.reading

    def buffered(self) -> tuple[int, int]:
        queries, answers = (0, 0) if self.engine is None else self.engine.buffered()
        return (queries + len(self.head) + len(self.rest),
                answers + sum(map(len, self.batch or ())) + self._unwritten())

    def _defence(self, what: str) -> None:
        """A defence that ends this connection: counted, logged once per client per
        interval, a strike against the client's address (``Guard``): one per connection,
        however many defences it meets on its way out."""
        strike, self.struck = not self.struck, True
        self.listener.guard.defended(self.client, what, strike)

    # ---- answers
    def answered(self) -> None:
        """An answer is in the session (``DoorLink``): out at once when it comes later than
        the read that asked it (a resolution), else with the read's other answers, each its
        own piece."""
        if self.batch is None:
            self._flush()
        else:
            out = self.engine.data_to_send()
            if out:
                self.batch.append(out)

    def _count(self, key: str) -> None:
        """Counts one event in the listener's figures (connections, requests, statuses)."""
        counts = self.listener.counts
        counts[key] = counts.get(key, 0) + 1

    def connection_lost(self, exc) -> None:
        if self.link is not None:
            self.link.close()
        self._gone()


class ProxiedHTTPConnection(ProxiedStream, HTTPConnection):
    """DNS over HTTP(S) from a proxy: the header (``ProxiedStream``; on TLS the start of
    the decrypted stream), then HTTP."""

    def data_received(self, data: bytes) -> None:
        if self.proxy_head is not None:
            self._header_read(self.proxy_head.feed, data)
        elif not self.closed:
            HTTPConnection.data_received(self, data)

    def _named(self, peer, rest: bytes) -> None:
        self._begin(self.transport, peer, True)
        if rest and not self.closed:
            HTTPConnection.data_received(self, rest)
