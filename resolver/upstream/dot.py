"""DNS over TLS (RFC 7858) to a forward zone's servers, by callbacks, on any asyncio loop.

One connection per server (address, port, authentication name, CAs) and loop, opened by
the first query and kept for the next ones: queries are pipelined on it (RFC 7766 6.2.1.1),
each framed as over TCP (corenet's length-prefixed framer, a 2-byte length) and matched to
its answer by message ID, so answers may come in any order. :class:`Pipeline` is that
matching, with no I/O. A connection with no query outstanding is closed after
``Limits.tls_upstream_idle_timeout``; at most ``Limits.tls_upstream_max_outstanding`` queries
wait on one at once.

The server's certificate is verified against the CA file (``tls-cert-bundle``, with the
system's store too under ``tls-system-cert``) or the system's store, and must name the
server's authentication name; there is no mode without either. A connection that cannot be
opened (refused, TLS handshake or verification failed, no handshake in time) fails its
queries with ``UpstreamFailure`` naming the cause and the resolution goes on with the
zone's next server; so does a query whose connection closes before its answer, and one that
times out on a connection that has been silent since it was sent, which is closed. A
connection that had answered before and is closed by the server with queries outstanding
(it may have closed it as idle while they were on their way) has them sent once more on a
new connection. Each failure is counted by cause (``DoTUpstreams.counters``) and logged at
WARNING (at most once per ``WARN_EVERY`` seconds per server).

``DoTQuery`` has ``upstream.tcp.TCPQuery``'s face: ``on_done(query)`` once with
``reply``/``parsed`` or ``error``, ``close()`` to give up without a call back.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import ssl
import time

from corenet.framing import FrameProtocol, FrameTooLarge
from resolver.upstream.errors import UpstreamFailure, UpstreamTimeout, failure
from resolver.upstream.tcp import check_answer
from resolver.upstream.udp import source_for
from resolver.wire.codec import with_padding

log = logging.getLogger("resolver.upstream.dot")

#: ALPN of DNS over TLS (RFC 7858 section 3.2 and the IANA registry)
ALPN = "dot"
#: seconds between two warnings about the same server
WARN_EVERY = 10.0
#: the block a query's size is padded to a multiple of (RFC 7830): RFC 8467's 128 octets
#: for queries, Unbound's ``pad-queries-block-size``
PAD_QUERIES_BLOCK = 128
#: what ``DoTUpstreams.counters`` counts: connections opened, queries sent, connections
#: closed for idleness, answers that matched no query, queries sent again on a new
#: connection, and failures by cause
COUNTERS = ("connections", "queries", "idle_closed", "unmatched", "resent", "failed_connect",
            "failed_handshake", "failed_verify", "failed_timeout", "failed_closed",
            "failed_full")


class Full(Exception):
    """The connection already has its most queries outstanding."""


class Pipeline:
    """The queries outstanding on one connection, by the message ID they were sent with.

    A query keeps its own ID unless another outstanding query has it; it is then sent with
    a free one (``add`` returns the ID to send), and ``match`` finds it by that ID."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.pending: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, query, qid: int) -> int:
        """Registers ``query`` (message ID ``qid``); returns the ID to send it with. Raises
        Full at ``most`` queries."""
        pending = self.pending
        if len(pending) >= self.most:
            raise Full(f"{len(pending)} queries outstanding")
        wid = qid
        while wid in pending:            # fewer than 65536 are outstanding: one is free
            wid = secrets.randbits(16)
        pending[wid] = query
        return wid

    def match(self, reply: bytes):
        """The query ``reply`` answers (no longer outstanding), or None."""
        if len(reply) < 2:
            return None
        return self.pending.pop(reply[0] << 8 | reply[1], None)

    def drop(self, wid: int, query) -> None:
        """Forgets ``query`` (sent with ``wid``) if it is still outstanding."""
        if self.pending.get(wid) is query:
            del self.pending[wid]

    def take_all(self) -> list:
        """Every query outstanding, forgotten."""
        out = list(self.pending.values())
        self.pending.clear()
        return out


def _with_id(wire: bytes, qid: int) -> bytes:
    return qid.to_bytes(2, "big") + wire[2:]


class DoTQuery:
    """One query on a DNS-over-TLS connection (see the module docstring)."""

    __slots__ = ("conn", "addr", "wire", "qid", "wid", "question", "max_jumps", "max_records",
                 "on_done", "stats", "reply", "parsed", "error", "finished", "timer",
                 "sent_at", "resent")

    def __init__(self, conn: "DoTConnection", wire: bytes, qid: int, question: bytes,
                 timeout: float, limits, on_done, stats) -> None:
        self.conn, self.addr = conn, conn.name
        self.wire = wire
        self.resent = False
        self.qid = self.wid = qid
        self.question = question
        self.max_jumps = limits.max_pointer_jumps
        self.max_records = limits.max_records_per_section
        self.on_done, self.stats = on_done, stats
        self.reply: bytes | None = None
        self.parsed = None
        self.error: Exception | None = None
        self.finished = False
        self.sent_at = time.monotonic()
        self.timer = conn.loop.call_later(timeout, self._expire)

    def close(self) -> None:
        """Ends the query (idempotent); ``on_done`` is not called for it."""
        self.finished = True
        self.timer.cancel()
        self.conn.forget(self)

    def answered(self, reply: bytes) -> None:
        if self.finished:
            return
        if self.wid != self.qid:
            reply = _with_id(reply, self.qid)
        try:
            self.parsed = check_answer(self.addr, reply, self.qid, self.question,
                                       self.max_jumps, self.max_records, self.stats, "TLS")
        except UpstreamFailure as exc:
            self.fail(exc)
            return
        self.reply = reply
        self._finish(None)

    def fail(self, error: Exception) -> None:
        if not self.finished:
            self._finish(error)

    def _expire(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.conn.timed_out(self)
        self.error = UpstreamTimeout(self.addr)
        self.on_done(self)

    def _finish(self, error: Exception | None) -> None:
        self.error = error
        self.close()
        self.on_done(self)


def _cause(exc: BaseException) -> str:
    """Why a connection could not be opened, as a counter's suffix."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "verify"
    if isinstance(exc, ssl.SSLError):
        return "handshake"
    if isinstance(exc, (TimeoutError, ConnectionAbortedError, asyncio.TimeoutError)):
        return "timeout"          # asyncio aborts a handshake that takes too long
    if isinstance(exc, ConnectionResetError):
        return "handshake"        # the server hung up in the handshake
    return "connect"


_WHAT = {"verify": "certificate verification failed", "handshake": "TLS handshake failed",
         "timeout": "no TLS handshake in time", "connect": "cannot connect"}


class DoTConnection(FrameProtocol):
    """One connection to one server, shared by the queries to it (module docstring)."""

    def __init__(self, pool: "DoTUpstreams", key, loop, addr: str, port: int, auth: str,
                 ctx: ssl.SSLContext, limits, source=None) -> None:
        super().__init__(2, "big", limits.max_tcp_message, buffer_size=16384)
        self.pool, self.key, self.loop = pool, key, loop
        self.addr, self.port, self.auth, self.ctx, self.limits = addr, port, auth, ctx, limits
        self.source = source              # the resolver's (udp.source_for picks the address)
        self.name = f"{addr}@{port}#{auth}"
        self.pipe = Pipeline(limits.tls_upstream_max_outstanding)
        self.idle_timeout = limits.tls_upstream_idle_timeout
        self.unsent: dict[DoTQuery, bytes] = {}    # frames waiting for the handshake
        self.open = False
        self.closed = False
        self.idle: asyncio.TimerHandle | None = None
        self.heard_at = 0.0                    # when the last frame arrived
        self.answers = 0
        bound = source_for(source, addr)
        self.connecting = asyncio.ensure_future(
            loop.create_connection(lambda: self, addr, port, ssl=ctx, server_hostname=auth,
                                   ssl_handshake_timeout=limits.tcp_timeout,
                                   local_addr=None if bound is None else (bound, 0)), loop=loop)
        self.connecting.add_done_callback(self._connected)

    # ---- queries ----------------------------------------------------------------------------
    def submit(self, q: DoTQuery, wire: bytes) -> None:
        """Sends ``q`` (its ``wire``), now or once the handshake is done. Raises
        UpstreamFailure when the connection has its most queries outstanding."""
        try:
            q.wid = self.pipe.add(q, q.qid)
        except Full as e:
            self.pool.count("failed_full")
            raise UpstreamFailure(f"{self.name}: {e} on its DNS-over-TLS connection") from None
        frame = len(wire).to_bytes(2, "big") + (wire if q.wid == q.qid
                                                else _with_id(wire, q.wid))
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        if self.open:
            self.transport.write(frame)
        else:
            self.unsent[q] = frame

    def forget(self, q: DoTQuery) -> None:
        self.pipe.drop(q.wid, q)
        self.unsent.pop(q, None)
        self._maybe_idle()

    def timed_out(self, q: DoTQuery) -> None:
        """``q`` got no answer in time; if nothing at all came since it was sent the
        connection is taken for dead and closed (its other queries fail over)."""
        self.forget(q)
        if not self.closed and self.heard_at < q.sent_at:
            self.pool.count("failed_timeout")
            self.pool.warn(self.name, "no answer on the connection in time: closing it")
            self._abort(UpstreamFailure(f"{self.name}: DNS-over-TLS connection silent"))

    def _maybe_idle(self) -> None:
        if self.open and not self.closed and not self.pipe and self.idle is None:
            self.idle = self.loop.call_later(self.idle_timeout, self._idle_expired)

    def _idle_expired(self) -> None:
        self.idle = None
        if self.pipe or self.closed:
            return
        self.pool.count("idle_closed")
        self._close()

    # ---- the connection ---------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if self.closed:
            transport.close()
            return
        self.open = True
        self.pool.count("connections")
        if self.unsent:
            transport.write(b"".join(self.unsent.values()))
            self.unsent.clear()
        self._maybe_idle()

    def _connected(self, fut: asyncio.Future) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is None or self.closed:
            return
        cause = _cause(exc)
        self.pool.count(f"failed_{cause}")
        self.pool.warn(self.name, f"{_WHAT[cause]}: {exc}")
        if isinstance(exc, OSError) and cause == "connect":
            error = failure(self.name, exc)
        else:
            error = UpstreamFailure(f"{self.name}: {_WHAT[cause]}: {exc}")
        self._abort(error)

    def frame_received(self, frame: memoryview) -> None:
        reply = bytes(frame)
        self.heard_at = time.monotonic()
        q = self.pipe.match(reply)
        if q is None:
            self.pool.count("unmatched")      # a query given up, or a server's mistake
            return
        self.answers += 1
        self._maybe_idle()
        q.answered(reply)

    def connection_lost(self, exc) -> None:
        self.open = False
        if self.pipe and not self.closed and self.answers:
            # a connection that worked, closed by the server: each query once more on a new
            # one (the server may have closed it as idle while they were on their way)
            self._close()
            for q in self.pipe.take_all():
                if q.resent or q.finished:
                    q.fail(UpstreamFailure(f"{self.name}: DNS-over-TLS connection closed "
                                           "before the answer, twice"))
                else:
                    q.resent = True
                    self.pool.count("resent")
                    self.pool.resend(q)
            return
        if self.pipe and not self.closed:
            self.pool.count("failed_closed")
            why = "an oversized frame" if isinstance(exc, FrameTooLarge) else (exc or "EOF")
            self.pool.warn(self.name, f"connection closed with queries outstanding ({why})")
        self._abort(UpstreamFailure(f"{self.name}: DNS-over-TLS connection closed before "
                                    "the answer"))

    # ---- ending -----------------------------------------------------------------------------
    def _close(self, abort: bool = False) -> None:
        """Closes the connection (with ``abort``, at once, without TLS's close_notify); the
        pool forgets it at once."""
        self.closed = True
        self.pool.forget(self)
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        if not self.connecting.done():
            self.connecting.cancel()
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def _abort(self, error: Exception, now: bool = False) -> None:
        """Closes the connection (``now``: see ``_close``) and fails every query waiting on
        it with ``error``."""
        self._close(now)
        self.unsent.clear()
        for q in self.pipe.take_all():
            q.fail(error)


class DoTUpstreams:
    """The DNS-over-TLS connections of one resolver (``Resolver.tls_upstreams``), their TLS
    contexts and counters."""

    def __init__(self) -> None:
        self.conns: dict[tuple, DoTConnection] = {}
        self.contexts: dict[tuple[str | None, bool], tuple] = {}
        self.counters = dict.fromkeys(COUNTERS, 0)
        self._warned: dict[str, float] = {}
        #: the block the queries (with EDNS) are padded to, 0 for none
        self.pad_block = PAD_QUERIES_BLOCK

    def query(self, loop, addr: str, port: int, auth: str, cafile: str | None, wire: bytes,
              qid: int, question: bytes, timeout: float, limits, on_done,
              stats=None, source=None, system: bool = False) -> DoTQuery:
        """Sends one query to ``addr``:``port`` over TLS, its certificate checked against
        the name ``auth`` and the CAs of ``cafile`` (None: the system's; with ``system``,
        the system's as well), on the connection to it (opened if there is none, from an
        address of ``source``: the resolver's).
        Raises UpstreamFailure when it cannot be sent. A query with EDNS is padded to a
        multiple of ``pad_block`` octets (RFC 7830, RFC 8467)."""
        if self.pad_block:
            wire = with_padding(wire, self.pad_block)
        key = (loop, addr, port, auth, cafile, system, source)
        conn = self.conns.get(key)
        if conn is None:
            ctx = self.context(cafile, system)
            try:
                conn = DoTConnection(self, key, loop, addr, port, auth, ctx, limits, source)
            except OSError as exc:
                raise failure(f"{addr}@{port}#{auth}", exc) from None
            self.conns[key] = conn
        q = DoTQuery(conn, wire, qid, question, timeout, limits, on_done, stats)
        try:
            conn.submit(q, wire)
        except UpstreamFailure:
            q.finished = True
            q.timer.cancel()
            raise
        self.counters["queries"] += 1
        return q

    def resend(self, q: DoTQuery) -> None:
        """Sends ``q`` again, on the connection now open (or opened) to its server; it fails
        if that cannot be done."""
        old = q.conn
        conn = self.conns.get(old.key)
        try:
            if conn is None:
                conn = DoTConnection(self, old.key, old.loop, old.addr, old.port, old.auth,
                                     old.ctx, old.limits, old.source)
                self.conns[old.key] = conn
            q.conn = conn
            conn.submit(q, q.wire)
        except OSError as exc:
            q.fail(failure(old.name, exc))
        except UpstreamFailure as exc:
            q.fail(exc)

    def context(self, cafile: str | None, system: bool = False) -> ssl.SSLContext:
        """The client context for ``cafile`` (None: the system's store; with ``system``, that
        store beside the file's CAs), made again when the file changed: the certificate and
        the server's name always checked, TLS 1.2 at least, ALPN "dot"."""
        stamp = None
        if cafile is not None:
            try:
                st = os.stat(cafile)
            except OSError as e:
                raise UpstreamFailure(f"tls-cert-bundle {cafile!r}: {e.strerror}") from None
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        system = system and cafile is not None      # without a file, the store alone
        have = self.contexts.get((cafile, system))
        if have is not None and have[0] == stamp:
            return have[1]
        try:
            ctx = ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as e:
            raise UpstreamFailure(f"tls-cert-bundle {cafile!r}: cannot load it: {e}") from None
        if system:
            ctx.load_default_certs()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols([ALPN])
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
        self.contexts[(cafile, system)] = (stamp, ctx)
        return ctx

    def count(self, name: str) -> None:
        self.counters[name] += 1

    def warn(self, server: str, text: str) -> None:
        now = time.monotonic()
        if now - self._warned.get(server, -WARN_EVERY) >= WARN_EVERY:
            self._warned[server] = now
            log.warning("DNS over TLS to %s: %s", server, text)
        else:
            log.debug("DNS over TLS to %s: %s", server, text)

    def forget(self, conn: DoTConnection) -> None:
        if self.conns.get(conn.key) is conn:
            del self.conns[conn.key]

    def stats(self) -> dict:
        """The counters, and the connections open now (``open``)."""
        return {**self.counters, "open": sum(1 for c in self.conns.values() if c.open)}

    def close(self) -> None:
        """Closes every connection at once (the resolver is closing); the queries waiting on
        them fail."""
        for conn in list(self.conns.values()):
            conn._abort(UpstreamFailure(f"{conn.name}: the resolver is closing"), now=True)


__all__ = ["ALPN", "DoTConnection", "DoTQuery", "DoTUpstreams", "Pipeline"]
