"""The PROXY protocol, version 2 (HAProxy's specification, section 2.2), sans I/O.

A proxy in front of the daemon (dnsdist, HAProxy) puts this binary header before each UDP
datagram and at the start of each TCP connection, naming the client it speaks for; on the
ports of ``proxy-protocol-port`` (Unbound's option of that name) the daemon reads it, and the
ACLs, rate limits and logs see that client instead of the proxy. Only version 2 is read, as
Unbound reads only it.

:func:`parse` takes the bytes received so far and returns the header, or None while a stream
has not yet delivered all of it; anything that is not a valid header raises
:class:`ProxyHeaderError`, whose ``reason`` is the name the drop is counted under.
:class:`StreamHeader` reads it at the start of a stream, into a buffer of :data:`MAX_HEADER`
bytes: of a TCP connection, and of the decrypted stream of a TLS one (after the handshake, as
dnsdist sends it and Unbound reads it).
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: The fixed part: the signature, version and command, family and transport, length.
FIXED = len(SIGNATURE) + 4
LOCAL, PROXY = 0, 1
#: Address family nibble: the length of its address block and how to read it.
UNSPEC, INET, INET6, UNIX = 0, 1, 2, 3
ADDRESS_BYTES = {UNSPEC: 0, INET: 12, INET6: 36, UNIX: 216}
STREAM, DGRAM = 1, 2
#: The longest header accepted: the addresses and a few TLVs (the protocol allows 64 KiB;
#: what dnsdist and HAProxy send is far shorter).
MAX_HEADER = 1024
#: The drop reasons, counted as ``proxy_<reason>``.
REASONS = ("signature", "version", "command", "family", "length", "too_long", "truncated")


class ProxyHeaderError(ValueError):
    """Bytes that are not a valid PROXY v2 header; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"PROXY v2 header: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class ProxyHeader:
    """A parsed header. ``command`` is LOCAL (the proxy speaking for itself: a health check;
    the connection's own addresses stand) or PROXY; ``source`` and ``destination`` are
    ``(host, port)`` for INET and INET6 (None otherwise); ``transport`` STREAM, DGRAM or 0;
    ``tlvs`` the (type, value) pairs after the addresses; ``length`` the header's bytes, the
    payload's offset."""
    command: int
    family: int
    transport: int
    source: tuple[str, int] | None
    destination: tuple[str, int] | None
    tlvs: tuple[tuple[int, bytes], ...]
    length: int

    def client(self, peer):
        """The client to act for: the source the proxy names, or, for LOCAL or an address
        family without one, ``peer`` (the proxy itself)."""
        if self.command == PROXY and self.source is not None:
            return self.source
        return peer


def parse(data, *, complete: bool = False) -> ProxyHeader | None:
    """The header at the start of ``data`` (bytes or a buffer). None when more bytes are
    needed (a stream's first reads); with ``complete`` (a datagram: all there is), a short
    header is an error instead."""
    view = memoryview(data)
    n = len(view)
    head = bytes(view[:min(n, FIXED)])
    if head[:len(SIGNATURE)] != SIGNATURE[:len(head)]:
        raise ProxyHeaderError("signature", "no PROXY v2 signature")
    if n < FIXED:
        if complete:
            raise ProxyHeaderError("truncated", f"{n} bytes, shorter than its fixed part")
        return None
    version, command = head[12] >> 4, head[12] & 0x0F
    family, transport = head[13] >> 4, head[13] & 0x0F
    (rest,) = struct.unpack_from("!H", head, 14)
    if version != 2:
        raise ProxyHeaderError("version", f"version {version}, not 2")
    if command not in (LOCAL, PROXY):
        raise ProxyHeaderError("command", f"unknown command {command}")
    if family not in ADDRESS_BYTES or transport not in (0, STREAM, DGRAM):
        raise ProxyHeaderError("family", f"unknown address family {family}/{transport}")
    length = FIXED + rest
    if length > MAX_HEADER:
        raise ProxyHeaderError("too_long", f"{length} bytes, over {MAX_HEADER}")
    if n < length:
        if complete:
            raise ProxyHeaderError("truncated", f"{n} bytes of a {length}-byte header")
        return None
    need = ADDRESS_BYTES[family]
    if command == PROXY and rest < need:
        raise ProxyHeaderError("length", f"{rest} bytes after the fixed part, the address "
                                         f"family needs {need}")
    body = bytes(view[FIXED:length])
    source = destination = None
    if command == PROXY and family in (INET, INET6):
        size = 4 if family == INET else 16
        src = str(ipaddress.ip_address(body[:size]))
        dst = str(ipaddress.ip_address(body[size:2 * size]))
        sport, dport = struct.unpack_from("!HH", body, 2 * size)
        source, destination = (src, sport), (dst, dport)
    # LOCAL: the block is the proxy's own business, ignored whole as the protocol says
    tlvs = _tlvs(body[need:]) if command == PROXY else ()
    return ProxyHeader(command, family, transport, source, destination, tlvs, length)


class StreamHeader:
    """The header at the start of a stream, read as it comes: :meth:`buffer` is where the
    next bytes go, :meth:`received` says how many came and returns the header once it is
    all there (None until then; :class:`ProxyHeaderError` when it is not valid),
    :meth:`rest` what came after it, :meth:`ended` what a stream that ended now is counted
    as."""

    __slots__ = ("data", "got", "extra")

    def __init__(self) -> None:
        self.data = bytearray(MAX_HEADER)
        self.got = 0
        self.extra = b""

    def buffer(self) -> memoryview:
        """Where the next bytes go (the rest of the buffer)."""
        return memoryview(self.data)[self.got:]

    def received(self, n: int) -> ProxyHeader | None:
        """``n`` bytes have come into :meth:`buffer`: the header when it is complete."""
        self.got += n
        return parse(memoryview(self.data)[:self.got])

    def feed(self, data: bytes) -> ProxyHeader | None:
        """``data`` came (a protocol that is handed its reads): as :meth:`received`."""
        buf = self.buffer()
        k = min(len(buf), len(data))
        buf[:k] = data[:k]
        self.extra = data[k:]         # past the buffer: after the header, whatever it is
        return self.received(k)

    def rest(self, header: ProxyHeader) -> bytes:
        """What came after ``header``: the stream's first bytes."""
        return bytes(self.data[header.length:self.got]) + self.extra

    def ended(self) -> str | None:
        """The drop reason of a stream that ends before its header is complete: none when
        it sent nothing (a port probe), else ``truncated``."""
        return "truncated" if self.got else None


def _tlvs(data: bytes) -> tuple[tuple[int, bytes], ...]:
    out, i = [], 0
    while i < len(data):
        if len(data) - i < 3:
            raise ProxyHeaderError("length", "a TLV cut short")
        kind, size = data[i], struct.unpack_from("!H", data, i + 1)[0]
        if i + 3 + size > len(data):
            raise ProxyHeaderError("length", f"TLV {kind:#x} of {size} bytes runs past the "
                                             "header")
        out.append((kind, data[i + 3:i + 3 + size]))
        i += 3 + size
    return tuple(out)


def build(source: tuple[str, int] | None, destination: tuple[str, int] | None = None,
          transport: int = DGRAM, tlvs: tuple[tuple[int, bytes], ...] = ()) -> bytes:
    """A PROXY v2 header naming ``source`` (LOCAL when None), as a proxy sends it."""
    extra = b"".join(struct.pack("!BH", k, len(v)) + v for k, v in tlvs)
    if source is None:
        return SIGNATURE + bytes([0x20 | LOCAL, 0]) + struct.pack("!H", len(extra)) + extra
    src = ipaddress.ip_address(source[0])
    if destination is None:
        destination = ("::" if src.version == 6 else "0.0.0.0", 0)
    dst = ipaddress.ip_address(destination[0])
    if src.version != dst.version:
        raise ValueError("source and destination of different address families")
    family = INET if src.version == 4 else INET6
    body = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1]) + extra
    return (SIGNATURE + bytes([0x20 | PROXY, family << 4 | transport])
            + struct.pack("!H", len(body)) + body)
