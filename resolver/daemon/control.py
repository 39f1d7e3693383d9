"""The control channel: a Unix stream socket (0660 by default) and, with
``control-enable``, a TCP listener with mutual TLS (Unbound's remote-control), each taking
one JSON request per line and answering one JSON line, for the control commands
(``resolver.daemon.commands``). A connection that starts with ``UBCT`` speaks Unbound's
protocol instead, so Unbound's own ``unbound-control`` drives the daemon: one line
``UBCT1 COMMAND ARGS``, answered with the text the command prints (``resolver.daemon.replies``)
and the close.

Requests: ``{"cmd": NAME, "args": [...]}`` (``load_cache`` adds ``"input"``: the dump).
Answers: ``{"ok": true, ...}`` (``"text"``: what the command prints) or ``{"ok": false,
"error": "..."}``. Bounded by ``resolver.limits``: connections at once
(``control_max_connections``, past it closed at once), a request's size
(``max_control_request``), the time for the request line to arrive and for each piece of
the answer to be taken (``control_timeout``), and for a command's input
(``control_input_timeout``); a bad request gets an error answer.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import socket
import ssl
import stat
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from resolver.daemon.side_door import ConnectionCap
from resolver.limits import DEFAULT as DEFAULT_LIMITS, Limits

log = logging.getLogger("resolver.daemon.control")

#: Unbound's control protocol: a line ``UBCT1 COMMAND ARGS`` (unbound-control's version 1)
MAGIC = b"UBCT1 "
#: an answer is written in pieces of this many bytes, each to be taken within
#: ``limits.control_timeout``
PIECE = 64 * 1024

Handler = Callable[[dict], Awaitable[dict]]


class ControlError(Exception):
    """The daemon could not be reached (``refused`` False; ``stopped`` True when nothing
    listens where it would: the connection refused) or refused the request (``refused``
    True: the daemon's own error message)."""

    def __init__(self, message: str, refused: bool = False, stopped: bool = False) -> None:
        super().__init__(message)
        self.refused, self.stopped = refused, stopped


def server_context(cfg) -> ssl.SSLContext:
    """The TCP control listener's TLS: its key and certificate, and a client certificate
    signed by that certificate required (Unbound's remote-control). Raises OSError or
    ssl.SSLError for files that do not load."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cfg.server_cert_file, cfg.server_key_file)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cfg.server_cert_file)
    return ctx


def client_context(cfg) -> ssl.SSLContext:
    """The command line's TLS to the TCP control listener: its own key and certificate, the
    server's certificate the one trusted (pinned: no host name is checked, as Unbound)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.load_verify_locations(cfg.server_cert_file)
    ctx.load_cert_chain(cfg.control_cert_file, cfg.control_key_file)
    return ctx


@dataclass(frozen=True)
class TCPTarget:
    """A daemon's TCP control listener, as the command line reaches it."""
    host: str
    port: int
    ssl: ssl.SSLContext | None

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def tcp_target(cfg, server: str | None = None) -> TCPTarget | None:
    """Where ``-c CONFIG`` sends commands when the config enables the TCP listener, or
    where ``-s ADDR[@PORT]`` says (unbound-control's form; the port by default
    ``control-port``), with the config's certificates; None for neither."""
    if server is None and not cfg.control_enable:
        return None
    host = cfg.control_interface[0] if cfg.control_interface else "127.0.0.1"
    port = cfg.control_port
    if server is not None:
        host, _, port_text = server.partition("@")
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise ControlError(f"-s {server}: port {port_text!r} is not a port number")
            port = int(port_text)
    try:
        ctx = client_context(cfg) if cfg.control_use_cert else None
    except (OSError, ssl.SSLError) as e:
        raise ControlError(f"control-key-file/control-cert-file/server-cert-file: {e}") \
            from None
    return TCPTarget(host, port, ctx)


def is_address(text: str) -> bool:
    """Whether ``-s`` names a TCP listener (``ADDR[@PORT]``) rather than a socket path."""
    import ipaddress

    try:
        ipaddress.ip_address(text.partition("@")[0])
    except ValueError:
        return False
    return True


def _bind_unix(path: str, mode: int) -> socket.socket:
    """A listening Unix socket at ``path`` with ``mode``, created under a umask so it is
    never reachable with looser permissions. A stale socket file is replaced; any other
    file at that path is an error."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise OSError(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(0.5)
            probe.connect(path)
        except OSError:
            os.unlink(path)            # nobody listens: a leftover of a killed daemon
        else:
            raise OSError(f"{path}: another daemon is listening there")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o777 & ~mode)
    try:
        sock.bind(path)
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old)
    os.chmod(path, mode)
    sock.listen(16)
    sock.setblocking(False)
    return sock


class ControlServer:
    def __init__(self, path: str | None, handler: Handler, mode: int = 0o600,
                 limits: Limits = DEFAULT_LIMITS, tcp=None) -> None:
        self.path = path
        self.limits = limits
        self.cap = ConnectionCap("control", "control-max-connections",
                                 limits.control_max_connections)
        #: the config of the TCP listener (``control-enable`` ...), or None
        self.tcp = tcp
        self.tcp_servers: list[asyncio.AbstractServer] = []
        self.handler = handler
        self.mode = mode
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        if self.path:
            sock = _bind_unix(self.path, self.mode)
            self.server = await asyncio.start_unix_server(
                self._client, sock=sock, limit=self.limits.max_control_request)
            log.info("control socket at %s", self.path)
        if self.tcp is not None:
            await self._start_tcp(self.tcp)

    async def _start_tcp(self, cfg) -> None:
        import ipaddress

        ctx = None
        if cfg.control_use_cert:
            try:
                ctx = server_context(cfg)
            except (OSError, ssl.SSLError) as e:
                raise OSError(f"control-enable: server-key-file/server-cert-file: {e}") \
                    from None
        for host in cfg.control_interface:
            if ctx is None and not ipaddress.ip_address(host).is_loopback:
                raise OSError(f"control-interface {host}: plain TCP (control-use-cert: no) "
                              "only on a loopback address")
            # TLS starts on the accepted connection, so that one still in its handshake
            # is counted against control-max-connections like any other.
            client = self._client if ctx is None else functools.partial(self._tls_client, ctx)
            try:
                srv = await asyncio.start_server(client, host, cfg.control_port,
                                                 limit=self.limits.max_control_request)
            except OSError as e:
                if len(cfg.control_interface) > 1 and e.errno in (99, 97):
                    log.warning("control-interface %s: %s", host, e.strerror)
                    continue
                raise OSError(e.errno, f"control-interface {host} port "
                                       f"{cfg.control_port}: {e.strerror}") from None
            self.tcp_servers.append(srv)
            log.info("control over TCP%s on %s port %d", " with TLS" if ctx else "", host,
                     cfg.control_port)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.cap.serve(writer, lambda: self._guarded(reader, writer))

    async def _tls_client(self, ctx: ssl.SSLContext, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        await self.cap.serve(writer, lambda: self._handshake(ctx, reader, writer))

    async def _handshake(self, ctx: ssl.SSLContext, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        """The TLS handshake of an accepted connection, within ``limits.control_timeout``,
        then its command."""
        try:
            await writer.start_tls(ctx, ssl_handshake_timeout=self.limits.control_timeout)
        except (OSError, ssl.SSLError, asyncio.TimeoutError):
            writer.transport.abort()
            return
        await self._guarded(reader, writer)

    async def _guarded(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except asyncio.TimeoutError:            # an answer the client left untaken
            writer.transport.abort()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), self.limits.control_timeout)
            if line.startswith(MAGIC[:4]):
                await self._unbound(line, reader, writer)
                return
            req = json.loads(line)
            if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
                raise ValueError("expected an object with a 'cmd' string")
        except (ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError,
                asyncio.TimeoutError) as e:
            answer: dict[str, Any] = {"ok": False, "error": f"bad request: {e}"}
        else:
            try:
                answer = await self.handler(req)
            except Exception as e:              # reported to the client, daemon keeps going
                log.exception("control command %r failed", req.get("cmd"))
                answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        await self._send(writer, json.dumps(answer).encode() + b"\n")

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        """Writes ``data`` in pieces of ``PIECE`` bytes, each taken by the client (down to
        the transport's high-water mark) within ``limits.control_timeout``: asyncio's
        TimeoutError when one is not."""
        view = memoryview(data)
        for at in range(0, len(view), PIECE):
            writer.write(view[at:at + PIECE])
            await asyncio.wait_for(writer.drain(), self.limits.control_timeout)

    async def _unbound(self, line: bytes, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        """One command of Unbound's unbound-control: ``UBCT1 COMMAND ARGS``, answered with
        the text the command prints (``error ...`` when refused), then the close."""
        from resolver.daemon import replies
        from resolver.daemon.commands import BY_NAME

        words = line[len(MAGIC):].decode("utf-8", "replace").split()
        if not line.startswith(MAGIC):
            out = "error version mismatch\n"
        elif not words or words[0] not in BY_NAME:
            out = f"error unknown command '{words[0] if words else ''}'\n"
        else:
            stdin = None
            try:
                if BY_NAME[words[0]].stdin:
                    stdin = await self._input(reader, words[0])
                answer = await self.handler(replies.request(words[0], words[1:], stdin))
                out = replies.text(words[0], answer)
            except replies.Refused as e:
                out = f"{replies.error_line(str(e))}\n"
            except Exception as e:              # reported to the client, daemon keeps going
                log.exception("control command %r failed", words[0])
                out = f"error {type(e).__name__}: {e}\n"
        await self._send(writer, out.encode())

    async def _input(self, reader: asyncio.StreamReader, cmd: str) -> str:
        """What unbound-control sends after a command that reads its standard input: its
        lines up to the end line (``load_cache``: the dump's own, ``END_MSG_CACHE`` of
        corenet's, ``EOF`` of Unbound's; the lists: a line of one 0x04, left out), at most
        ``limits.max_control_request`` bytes in ``limits.control_input_timeout`` seconds
        (``load_cache``'s dump past them is refused: replies.Refused)."""
        from resolver.cache.dump import END
        from resolver.cache.unbound_dump import EOF, START
        from resolver.daemon import replies

        end = END if cmd == "load_cache" else "\x04"
        most, timeout = self.limits.max_control_request, self.limits.control_input_timeout

        async def lines() -> str:
            nonlocal end
            got, size, first = [], 0, True
            while True:
                line = await reader.readline()
                size += len(line)
                if size > most:
                    raise ValueError(f"an input above {most} bytes")
                text = line.decode("utf-8", "replace")
                if not line or text.strip() == end:
                    return "".join(got + ([text] if cmd == "load_cache" else []))
                if first and text.strip():
                    first = False
                    if cmd == "load_cache" and text.strip() == START:
                        end = EOF               # Unbound's dump, ended by its EOF line
                got.append(text)
        try:
            return await asyncio.wait_for(lines(), timeout)
        except (ValueError, asyncio.LimitOverrunError, asyncio.TimeoutError) as e:
            if cmd == "load_cache":             # a dump cut short loads nothing
                why = (f"no {end} line in {timeout:g} seconds"
                       if isinstance(e, asyncio.TimeoutError) else str(e))
                raise replies.Refused(f"load_cache: the dump did not end: {why}") from None
            return f"; unreadable: {e}\n"

    async def close(self) -> None:
        for srv in self.tcp_servers:
            srv.close()
        self.tcp_servers.clear()
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def request(target, req: dict, timeout: float = 30.0) -> dict:
    """Send one request to a daemon (blocking; for the command line): ``target`` is a
    control socket's path or a :class:`TCPTarget`."""
    where = (f"control interface {target}" if isinstance(target, TCPTarget)
             else f"control socket {target}")
    try:
        if isinstance(target, TCPTarget):
            raw = socket.create_connection((target.host, target.port), timeout=timeout)
            s = (target.ssl.wrap_socket(raw) if target.ssl is not None else raw)
        else:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(target)
    except OSError as e:
        raise ControlError(f"{where}: {e.strerror or e}",
                           stopped=isinstance(e, ConnectionRefusedError)) from None
    with s:
        try:
            s.sendall(json.dumps(req).encode() + b"\n")
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if chunk.endswith(b"\n"):
                    break
            buf = b"".join(chunks)
        except OSError as e:
            raise ControlError(f"{where}: {e.strerror or e}") from None
    try:
        answer = json.loads(buf)
    except ValueError:
        raise ControlError(f"{where}: unreadable answer {buf[:80]!r}") from None
    if not answer.get("ok"):
        raise ControlError(answer.get("error", "request failed"), refused=True)
    return answer


async def arequest(path: str, req: dict, timeout: float = 5.0,
                   limit: int = 16 * 1024 * 1024) -> dict:
    """The same, on the running loop (the worker parent asks its workers); an answer is at
    most ``limit`` bytes."""
    async def go() -> dict:
        reader, writer = await asyncio.open_unix_connection(path, limit=limit)
        try:
            writer.write(json.dumps(req).encode() + b"\n")
            await writer.drain()
            return json.loads(await reader.readline())
        finally:
            writer.close()
    try:
        answer = await asyncio.wait_for(go(), timeout)
    except (OSError, ValueError, asyncio.TimeoutError) as e:
        raise ControlError(f"control socket {path}: {e!r}") from None
    if not answer.get("ok"):
        raise ControlError(answer.get("error", "request failed"), refused=True)
    return answer
