# Type stub for the compiled module corenet._tls: the TLS protocol of stream transports
# (corenet.tls.SSLProtocol mixes asyncio.BufferedProtocol into TLSProtocol) and the
# application's transport over it.
import asyncio
import ssl
from typing import Any

RECEIVE_BUFFER: int
STATE_NAMES: tuple[str, ...]

def flow_control_limits(high: int | None, low: int | None, kb: int) -> tuple[int, int]: ...

class TLSProtocol:
    """One TLS connection over a stream transport: handshake, MemoryBIO reads and writes,
    flow control, half-close and shutdown."""

    _sslobj: Any
    _transport: asyncio.BaseTransport | None
    _app_transport: "SSLTransport | None"
    _sslcontext: ssl.SSLContext
    dropped_after_close_notify: int   # bytes the peer sent after its close_notify
    def __init__(self, loop: asyncio.AbstractEventLoop, app_protocol: asyncio.BaseProtocol,
                 sslcontext: ssl.SSLContext | None, waiter: asyncio.Future[None] | None,
                 server_side: bool = ..., server_hostname: str | None = ...,
                 call_connection_made: bool = ..., ssl_handshake_timeout: float | None = ...,
                 ssl_shutdown_timeout: float | None = ...) -> None: ...
    @property
    def state_name(self) -> str: ...
    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...
    def connection_lost(self, exc: BaseException | None) -> None: ...
    def get_buffer(self, n: int) -> memoryview: ...
    def buffer_updated(self, nbytes: int) -> None: ...
    def eof_received(self) -> bool | None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...

class SSLTransport(asyncio.Transport):
    """The application's side of a TLS connection; write_eof() sends close_notify."""

    def write_eof(self) -> None: ...
    def can_write_eof(self) -> bool: ...
