"""The network stream under every client connection: TCP (Happy Eyeballs among several
addresses), a proxy's tunnel (CONNECT, or SOCKS5), and TLS through `ssl.MemoryBIO`, with
the TLS write written once. `open_stream` brings one up; then the connection kind the
server chose in ALPN (`connection.HTTPConnection` for HTTP/1.1, `h2.H2Connection` for
HTTP/2, siblings made by `pool.connection_over`) takes it over and reads what it decrypts
its own way.

Why our own TLS over a plain transport rather than `loop.create_connection(ssl=ctx)`:

- Correctness: `create_connection` has no way to pass a TLS session, so a second
  connection could never resume the first one's session. Owning the `SSLObject` lets us
  offer one before the handshake (`corenet.tls.resume`, visible as
  `ssl_object.session_reused`), and send close_notify before closing, without which
  OpenSSL marks the session not resumable.
- Speed: one protocol object sits between the socket and the HTTP parser. The loop
  receives into a reused buffer (`BufferedProtocol`), `SSLObject.read` decrypts into
  another (or, inside a Content-Length body, into the body's own `bytes`), and the parser
  runs in the same callback: no second transport, no per-chunk hand-off into an
  application protocol, no StreamReader. Measured on a 4 MiB body: 4.2 ms of CPU against
  9.7 ms for aiohttp on the same stock-asyncio SSL transport (BENCHMARKS.md).

It needs only a plain TCP transport, so it runs on any asyncio loop.
"""
from __future__ import annotations

import asyncio
import os
import socket
import ssl
from typing import Any, Callable

import aiohappyeyeballs

from corenet.tls import TLSSession, resume, session_of

from .errors import ConnectError, ConnectTimeout, ProxyError, TLSError, WriteTimeout
from .limits import Limits
from .socks import Socks5Connect

READ_SIZE = 256 * 1024
# RFC 8305's recommended delay before racing the next address (of the other family first).
HAPPY_EYEBALLS_DELAY = 0.25
_WantRead = ssl.SSLWantReadError


class NetworkStream(asyncio.BufferedProtocol):
    """One connection's bytes: the transport, the proxy's tunnel, TLS, and the state of
    the write buffer. Once it is up, a connection kind (a subclass) takes it over
    (`take_over`): it reads in `data_received` (TLS's buffers, `ssl_object` and
    `read_buffer`), writes with `transmit`, and learns the end of the connection in
    `on_lost`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: tuple[str, str, int],
                 limits: Limits, read_buffer: bytearray | None = None,
                 recv_buffer: bytearray | None = None) -> None:
        self.loop = loop
        self.origin = origin
        self.limits = limits
        self.transport: asyncio.Transport | None = None
        self.peername: tuple | None = None  # the address connected to (a proxy's, via one)
        #: when (``loop.time()``) the connection was begun, its addresses known (the name
        #: resolved), and when the TCP connection (with a proxy's tunnel) and the TLS
        #: handshake were done; 0.0 until then
        self.begun_at = loop.time()
        self.connected_at = 0.0
        self.secured_at = 0.0
        self.ssl_object: ssl.SSLObject | None = None
        # What reads, writes and asks `pending()` of TLS: CPython's C object under a plain
        # SSLObject (no Python frame per call), else the SSLObject itself (a context's own
        # sslobject_class is honoured); None without TLS.
        self._tls: Any = None
        self._incoming: ssl.MemoryBIO | None = None
        self._outgoing: ssl.MemoryBIO | None = None
        self._handshake: asyncio.Future | None = None
        # Decrypted bytes land here and are parsed before data_received returns (the
        # parser copies what it keeps), so one buffer can serve every connection of a
        # client on its loop.
        self.read_buffer = read_buffer if read_buffer is not None else bytearray(READ_SIZE)
        self.read_view = memoryview(self.read_buffer)
        # The loop receives into this buffer (BufferedProtocol): no bytes object per recv.
        self._rview = memoryview(recv_buffer if recv_buffer is not None
                                 else bytearray(READ_SIZE))
        self._fd = -1
        self._drain: asyncio.Future | None = None
        self._write_paused = False
        self._lost: asyncio.Future | None = None  # set by connection_lost
        # While a proxy's tunnel is set up: what reads the proxy's bytes (CONNECT's answer
        # or the SOCKS5 handshake), and the future it ends.
        self._tunnel_feed: Any = None
        self._tunnel: bytearray | None = None  # the proxy's answer to CONNECT, so far
        self._socks: Socks5Connect | None = None
        self._tunnel_done: asyncio.Future | None = None
        # Bytes received without TLS before a connection kind took the stream over.
        self._early = bytearray()
        self.closed = False
        self.closed_by: str | None = None  # who closed it on this side, when it was said
        self.lost_by: OSError | None = None  # the socket error that ended the connection
        self.broken = False  # unsolicited bytes or EOF while idle: never reuse

    # ---- asyncio protocol callbacks ----
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._lost = self.loop.create_future()
        sock = transport.get_extra_info("socket")
        self.peername = transport.get_extra_info("peername")
        if sock is not None:
            self._fd = sock.fileno()
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def get_extra_info(self, info: str) -> Any:
        """httpcore's network stream's (a response's ``extensions["network_stream"]``):
        "ssl_object", "server_addr", "client_addr", "socket", "is_readable" (bytes or the
        peer's close waiting: the connection is not idle and clean); None for others."""
        if info == "ssl_object":
            return self.ssl_object
        if info == "server_addr":
            return self.peername
        transport = self.transport
        if transport is None:
            return None
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "socket":
            return transport.get_extra_info("socket")
        if info == "is_readable":
            return self.broken or self.closed or bool(self._early)
        return None

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._rview

    def buffer_updated(self, nbytes: int) -> None:
        if self._tunnel_feed is not None:
            self._tunnel_feed(self._rview[:nbytes])
            return
        self.data_received(self._rview[:nbytes])

    def data_received(self, data) -> None:
        # Until a connection kind takes the stream over (which reads them then): bytes
        # after the TLS handshake wait in TLS's buffer; without TLS, in `_early`, up to
        # a response head's worth.
        if self.ssl_object is not None:
            self._incoming.write(data)  # type: ignore[union-attr]
            if self._handshake is not None:
                self._handshake_step()
            return
        self._early += data
        if len(self._early) > self.limits.max_header_bytes:
            self.close()

    def take_over(self, stream: "NetworkStream") -> None:
        """Carry on `stream`'s connection: its state, and its transport's callbacks from
        now on. The connection kind then reads what came before (`take_early`)."""
        self.__dict__.update(stream.__dict__)
        t = self.transport
        if t is not None and not self.closed:
            t.set_protocol(self)

    def take_early(self) -> Any:
        """What came before this connection kind took the stream over, to feed to its
        `data_received`: bytes (b"" when they wait in TLS's buffer), or None."""
        if self.closed:
            return None
        if self.ssl_object is not None:
            return b"" if self._incoming.pending else None  # type: ignore[union-attr]
        early = self._early
        if not early:
            return None
        self._early = bytearray()
        return bytes(early)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if isinstance(exc, OSError):
            self.lost_by = exc
        t = self._tunnel_done
        if t is not None and not t.done():
            t.set_exception(ProxyError(
                f"the proxy closed the connection before the tunnel to {self.origin[1]} "
                "was set up"))
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(TLSError(
                f"connection to {self.origin[1]} closed during the TLS handshake",
                "connection closed"))
            self._handshake = None
        self.on_lost(exc)
        d = self._drain
        if d is not None and not d.done():
            d.set_result(None)
        lost = self._lost
        if lost is not None and not lost.done():
            lost.set_result(None)

    def on_lost(self, exc: Exception | None) -> None:
        """Called when the transport has closed (`closed` and `lost_by` are set)."""

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        d = self._drain
        if d is not None and not d.done():
            d.set_result(None)

    # ---- a tunnel through a proxy: CONNECT, or SOCKS5 ----
    async def tunnel(self, authority: str, proxy_lines: str) -> None:
        """Ask the proxy for a tunnel to `authority` (host:port), with `proxy_lines` (its
        credentials and headers, each line ending in CRLF); returns once it answered 2xx,
        after which the bytes on this transport are the origin's."""
        head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{proxy_lines}"
        self._tunnel = bytearray()
        await self._tunnel_through(self._tunnel_data, (head + "\r\n").encode("latin-1"))

    async def socks_tunnel(self, host: str, port: int, auth: tuple[str, str] | None) -> None:
        """Ask a SOCKS5 proxy to connect to `host` port `port` (with `auth`'s user name and
        password when given); returns once it has, after which the bytes on this transport
        are the origin's."""
        self._socks = Socks5Connect(host, port, auth)
        await self._tunnel_through(self._socks_data, self._socks.start())

    async def _tunnel_through(self, feed: Any, first: bytes) -> None:
        fut = self._tunnel_done = self.loop.create_future()
        self._tunnel_feed = feed
        self.transport.write(first)  # type: ignore[union-attr]
        try:
            await fut
        finally:
            self._tunnel_feed = self._tunnel = self._socks = self._tunnel_done = None

    def _socks_data(self, data) -> None:
        fut = self._tunnel_done
        if fut is None or fut.done():
            return
        try:
            out = self._socks.feed(data)  # type: ignore[union-attr]
        except ProxyError as exc:
            fut.set_exception(exc)
            return
        if out:
            self.transport.write(out)  # type: ignore[union-attr]
        if self._socks.done:  # type: ignore[union-attr]
            fut.set_result(None)

    def _tunnel_data(self, data) -> None:
        buf = self._tunnel
        buf += data  # type: ignore[operator]
        fut = self._tunnel_done
        if fut is None or fut.done():
            return
        end = buf.find(b"\r\n\r\n")  # type: ignore[union-attr]
        if end < 0:
            limit = self.limits.max_header_bytes  # a response head like any other
            if len(buf) > limit:  # type: ignore[arg-type]
                fut.set_exception(ProxyError(
                    f"the proxy's answer to CONNECT exceeds {limit} bytes (max_header_bytes)"))
            return
        status = bytes(buf[:buf.find(b"\r\n")])  # type: ignore[index, union-attr]
        parts = status.split(b" ", 2)
        code = parts[1] if len(parts) > 1 else b""
        if not (parts[0] in (b"HTTP/1.1", b"HTTP/1.0") and len(code) == 3
                and code.isdigit()):
            fut.set_exception(ProxyError(f"malformed answer from the proxy to CONNECT: "
                                         f"{status[:80]!r}"))
        elif code[:1] != b"2":
            fut.set_exception(ProxyError(
                f"the proxy refused the tunnel to {self.origin[1]}: "
                f"{status.decode('latin-1')[9:]}"))
        elif len(buf) > end + 4:  # type: ignore[arg-type]
            fut.set_exception(ProxyError("the proxy sent bytes after its answer to CONNECT, "
                                         "before the TLS handshake"))
        else:
            fut.set_result(None)

    # ---- TLS handshake ----
    def start_tls(self, ctx: ssl.SSLContext, server_hostname: str,
                  session: TLSSession | ssl.SSLSession | None) -> asyncio.Future:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.ssl_object = ctx.wrap_bio(self._incoming, self._outgoing,
                                       server_hostname=server_hostname)
        so = self.ssl_object
        self._tls = getattr(so, "_sslobj", so) if type(so) is ssl.SSLObject else so
        if session is not None:
            resume(so, session)  # not offered if from another context
        self._handshake = self.loop.create_future()
        fut = self._handshake
        if self._early:
            self._handshake = None
            fut.set_exception(TLSError(
                f"{self.origin[1]} spoke before the TLS handshake", "unexpected bytes"))
            return fut
        self._handshake_step()
        return fut

    def _handshake_step(self) -> None:
        fut = self._handshake
        sslobj = self.ssl_object
        try:
            sslobj.do_handshake()  # type: ignore[union-attr]
        except _WantRead:
            pass
        except ssl.SSLCertVerificationError as exc:
            self._handshake = None
            reason = exc.verify_message or str(exc)
            failed = TLSError(f"TLS certificate verification failed for {self.origin[1]}: "
                              f"{reason}", reason)
            failed.__cause__ = exc          # its verify_code, for who needs it
            fut.set_exception(failed)  # type: ignore[union-attr]
        except ssl.SSLError as exc:
            self._handshake = None
            reason = exc.reason or str(exc)
            fut.set_exception(TLSError(  # type: ignore[union-attr]
                f"TLS handshake with {self.origin[1]} failed: {reason}", reason))
        else:
            self._handshake = None
            fut.set_result(None)  # type: ignore[union-attr]
            if self._outgoing.pending and not self.closed:  # type: ignore[union-attr]
                self.transport.write(self._outgoing.read())  # type: ignore[union-attr]
            return
        if self._outgoing.pending and not self.closed:  # type: ignore[union-attr]
            self.transport.write(self._outgoing.read())  # type: ignore[union-attr]

    # ---- output ----
    def transmit(self, data: Any) -> bool:
        """Send `data` (bytes, or a list of bytes), through TLS once it is up; False when
        the server has ended TLS (close_notify, or an alert such as "certificate required"
        after a TLS 1.3 handshake), when nothing more can be written."""
        tls = self._tls
        if tls is None:
            if data.__class__ is list:
                self.transport.writelines(data)  # type: ignore[union-attr]
            else:
                self.transport.write(data)  # type: ignore[union-attr]
            return True
        try:
            if data.__class__ is list:
                for p in data:
                    if p:
                        tls.write(p)
            else:
                tls.write(data)
        except ssl.SSLError:
            return False
        self.transport.write(self._outgoing.read())  # type: ignore[union-attr]
        return True

    @property
    def write_paused(self) -> bool:
        """The transport's write buffer is above its high-water mark."""
        return self._write_paused

    async def drain(self, timeout: float | None, message: Callable[[], str]) -> None:
        """Wait until the transport's write buffer is below its high-water mark;
        `message` is called only when the timeout fires."""
        if not self._write_paused or self.closed:
            return
        fut = self._drain = self.loop.create_future()
        try:
            ok = await within(self.loop, fut, timeout)
        finally:
            self._drain = None
        if ok is False:
            raise WriteTimeout(message())

    # ---- ending ----
    def session(self) -> TLSSession | ssl.SSLSession | None:
        s = self.ssl_object
        if s is None:
            return None
        try:
            return session_of(s)
        except Exception:
            return None

    def close(self, by: str | None = None) -> None:
        """Close now. For TLS a close_notify goes first: OpenSSL marks the session of an
        SSL that never sent one as not resumable. `by` says who closed it ("the client was
        closed"), for the error of a request still in progress."""
        if self.closed:
            return
        self.closed = True
        self.closed_by = by
        self.broken = True
        sslobj = self.ssl_object
        t = self.transport
        if t is None:
            return
        if sslobj is not None and self._handshake is None and not t.is_closing() \
                and not t.get_write_buffer_size():
            try:
                sslobj.unwrap()
            except (ssl.SSLError, ValueError):
                pass
            try:
                pending = self._outgoing.read()  # type: ignore[union-attr]
                if pending:
                    t.write(pending)
            except Exception:
                pass
        if t.get_write_buffer_size():
            # The server is not reading (a body it refused, a stalled peer): a graceful
            # close would wait for a drain that may never come, holding the descriptor.
            t.abort()
        else:
            t.close()

    async def wait_closed(self, timeout: float) -> None:
        """Wait (at most `timeout` s) until the transport has let go of its socket."""
        lost = self._lost
        if lost is not None and not lost.done():
            try:
                await asyncio.wait_for(asyncio.shield(lost), timeout)
            except TimeoutError:
                pass


def _addr_info(address: str, port: int) -> tuple:
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))


def _socket_with(options: list[tuple]) -> Callable[[tuple], socket.socket]:
    """A socket factory (aiohappyeyeballs's) that sets `options` before connecting, as
    httpx's socket_options= are set."""
    def make(addr_info: tuple) -> socket.socket:
        family, type_, proto = addr_info[:3]
        sock = socket.socket(family, type_, proto)
        try:
            for option in options:
                sock.setsockopt(*option)
        except BaseException:
            sock.close()
            raise
        return sock
    return make


def expire(fut: asyncio.Future) -> None:
    """Time is up: `fut` gets False, unless it is already done."""
    if not fut.done():
        fut.set_result(False)


async def within(loop: asyncio.AbstractEventLoop, fut: asyncio.Future,
                  timeout: float | None) -> Any:
    """`fut`'s result, or False when `timeout` seconds pass first (None: no limit)."""
    h = loop.call_later(timeout, expire, fut) if timeout is not None else None
    try:
        return await fut
    finally:
        if h is not None:
            h.cancel()


async def open_stream(
    loop: asyncio.AbstractEventLoop, origin: tuple[str, str, int], addresses: list[str],
    ssl_context: ssl.SSLContext | None, session: TLSSession | ssl.SSLSession | None,
    limits: Limits,
    timeout: float | None, timeout_message: str, read_buffer: bytearray | None = None,
    recv_buffer: bytearray | None = None, proxy: Any = None,
    proxy_ssl: ssl.SSLContext | None = None,
    factory: Callable[[NetworkStream], Any] | None = None,
    uds: str | None = None, local_address: str | None = None,
    socket_options: list[tuple] | None = None, port: int | None = None,
) -> Any:
    """Connect to the address that answers first (Happy Eyeballs when there are several;
    the proxy's, when there is one, over TLS when `proxy_ssl` is given, then a CONNECT
    tunnel for an https origin, a SOCKS5 one for any), then do the TLS handshake with the
    origin; `timeout` covers all of it (ConnectTimeout). Returns `factory(stream)`: the
    connection kind that takes the stream over (chosen by ALPN: `pool.connection_over`),
    or the stream itself without a factory. `uds`: the Unix socket to connect to instead of any
    address; `local_address`: the address to connect from (and so its family only);
    `socket_options`: `setsockopt` arguments for each socket, before it connects; `port`:
    the port to connect to instead of the origin's (without a proxy)."""
    scheme, host, origin_port = origin
    to_port = (origin_port if port is None else port) if proxy is None else proxy.port
    what = host if proxy is None else f"the proxy {proxy.host}"
    if uds is None and local_address is not None:
        v6 = ":" in local_address
        addresses = [a for a in addresses if (":" in a) == v6]
        if not addresses:
            raise ConnectError(f"cannot connect to {what} from {local_address}: it has no "
                               f"IPv{6 if v6 else 4} address")
    where = uds if uds is not None else f"{', '.join(addresses)} port {to_port}"

    async def attempt() -> Any:
        conn = NetworkStream(loop, origin, limits, read_buffer, recv_buffer)
        tls = {} if proxy_ssl is None else {"ssl": proxy_ssl, "server_hostname": proxy.host}
        try:
            if uds is not None and socket_options:
                sock = _socket_with(socket_options)((socket.AF_UNIX, socket.SOCK_STREAM, 0))
                try:
                    sock.setblocking(False)
                    await loop.sock_connect(sock, uds)
                    await loop.create_unix_connection(lambda: conn, sock=sock, **tls)
                except BaseException:
                    sock.close()
                    raise
            elif uds is not None:
                await loop.create_unix_connection(lambda: conn, uds, **tls)
            elif len(addresses) == 1 and not socket_options:
                await loop.create_connection(
                    lambda: conn, addresses[0], to_port, **tls,
                    local_addr=None if local_address is None else (local_address, 0))
            else:
                # Happy Eyeballs (RFC 8305): families interleaved, the next address tried
                # 250 ms after the previous one (at once if it fails), the first to answer
                # wins and the others are closed.
                sock = await aiohappyeyeballs.start_connection(
                    [_addr_info(a, to_port) for a in addresses],
                    local_addr_infos=None if local_address is None else
                    [_addr_info(local_address, 0)],
                    happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, interleave=1,
                    socket_factory=_socket_with(socket_options) if socket_options else None)
                try:
                    await loop.create_connection(lambda: conn, sock=sock, **tls)
                except BaseException:
                    sock.close()
                    raise
        except ssl.SSLError as exc:
            reason = getattr(exc, "verify_message", None) or exc.reason or str(exc)
            raise TLSError(f"TLS with {what} failed: {reason}", reason) from exc
        except OSError as exc:
            # the errno's own words ("Connection refused", as httpx's message has them):
            # asyncio's strerror for a failed connect is "Connect call failed (addr)"
            said = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
            raise ConnectError(f"cannot connect to {what} ({where}): {said}") from exc
        if proxy is not None and (scheme == "https" or proxy.socks):
            try:
                if proxy.socks:
                    await conn.socks_tunnel(host, origin_port, proxy.auth)
                else:
                    await conn.tunnel(f"[{host}]:{origin_port}" if ":" in host
                                      else f"{host}:{origin_port}",
                                      proxy.lines)
            except BaseException:
                conn.close()
                raise
        conn.connected_at = loop.time()
        if ssl_context is not None:
            try:
                await conn.start_tls(ssl_context, host, session)
            except BaseException:
                conn.close()
                raise
            conn.secured_at = loop.time()
        if factory is None:
            return conn
        try:
            return factory(conn)
        except BaseException:
            conn.close()
            raise

    if timeout is None:
        return await attempt()
    try:
        async with asyncio.timeout(timeout):
            return await attempt()
    except TimeoutError:
        raise ConnectTimeout(timeout_message) from None

