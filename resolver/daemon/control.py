"""The control socket: a Unix stream socket (0600 by default) taking one JSON request per
line and answering one JSON line, for ``corenet-resolver stats|flush|reload``.

Requests: ``{"cmd": "stats"}``, ``{"cmd": "flush", "name": "example.com."}`` (name
optional), ``{"cmd": "reload"}``. Answers: ``{"ok": true, ...}`` or ``{"ok": false,
"error": "..."}``. A request line is bounded in size and time; a bad one gets an error answer.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
from typing import Any, Awaitable, Callable

log = logging.getLogger("resolver.daemon.control")

MAX_REQUEST = 4096
REQUEST_TIMEOUT = 5.0

Handler = Callable[[dict], Awaitable[dict]]


class ControlError(Exception):
    """The daemon could not be reached or refused the request."""


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
    def __init__(self, path: str, handler: Handler, mode: int = 0o600) -> None:
        self.path = path
        self.handler = handler
        self.mode = mode
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        sock = _bind_unix(self.path, self.mode)
        self.server = await asyncio.start_unix_server(self._client, sock=sock,
                                                      limit=MAX_REQUEST)
        log.info("control socket at %s", self.path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
                req = json.loads(line)
                if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
                    raise ValueError("expected an object with a 'cmd' string")
            except (ValueError, asyncio.LimitOverrunError, asyncio.TimeoutError) as e:
                answer: dict[str, Any] = {"ok": False, "error": f"bad request: {e}"}
            else:
                try:
                    answer = await self.handler(req)
                except Exception as e:          # reported to the client, daemon keeps going
                    log.exception("control command %r failed", req.get("cmd"))
                    answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        try:
            os.unlink(self.path)
        except OSError:
            pass


def request(path: str, req: dict, timeout: float = 10.0) -> dict:
    """Send one request to a daemon's control socket (blocking; for the CLI)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(path)
            s.sendall(json.dumps(req).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except OSError as e:
            raise ControlError(f"control socket {path}: {e.strerror or e}") from None
    try:
        answer = json.loads(buf)
    except ValueError:
        raise ControlError(f"control socket {path}: unreadable answer {buf[:80]!r}") from None
    if not answer.get("ok"):
        raise ControlError(answer.get("error", "request failed"))
    return answer


async def arequest(path: str, req: dict, timeout: float = 5.0) -> dict:
    """The same, on the running loop (the worker parent asks its workers)."""
    async def go() -> dict:
        reader, writer = await asyncio.open_unix_connection(path, limit=16 * 1024 * 1024)
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
        raise ControlError(answer.get("error", "request failed"))
    return answer
