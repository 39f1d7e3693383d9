# Type stub for the compiled module corenet._datagram: the datagram transport (UDP, Unix).
import asyncio
from typing import Any

from corenet._transport import BaseTransport

class DatagramTransport(BaseTransport):
    """The engine of a datagram transport; protocols see its face, an
    asyncio.DatagramTransport."""

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None: ...
    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None: ...

def register_face(cls: type) -> None: ...
def face_sendto(face: Any, data: bytes | bytearray | memoryview, addr: Any = None) -> None: ...
