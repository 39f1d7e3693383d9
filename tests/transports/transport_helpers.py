"""Protocols and sockets shared by the transport tests (import as ``from transport_helpers
import ...``): a recording protocol that counts every callback, an echo server, a listener
whose connects hang, and a throw-away certificate authority for TLS."""
from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import socket
import ssl
import struct
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ports import free_port


class Recorder(asyncio.Protocol):
    """Records every callback so tests can check order and counts (``connection_lost``
    exactly once above all)."""

    def __init__(self, eof_keeps_open: bool = False) -> None:
        loop = asyncio.get_event_loop()
        self.made = loop.create_future()
        self.lost = loop.create_future()
        self.eof = loop.create_future()
        self.transport: asyncio.BaseTransport | None = None
        self.data = bytearray()
        self.chunks = 0
        self.lost_calls: list[BaseException | None] = []
        self.made_calls = 0
        self.eof_calls = 0
        self.pauses = 0
        self.resumes = 0
        self.eof_keeps_open = eof_keeps_open
        self._want: tuple[int, asyncio.Future] | None = None

    def connection_made(self, transport) -> None:
        self.made_calls += 1
        self.transport = transport
        if not self.made.done():
            self.made.set_result(transport)

    def data_received(self, data: bytes) -> None:
        assert not self.lost_calls, "data_received after connection_lost"
        self.data += data
        self.chunks += 1
        self._check_want()

    def eof_received(self):
        self.eof_calls += 1
        if not self.eof.done():
            self.eof.set_result(None)
        return self.eof_keeps_open

    def pause_writing(self) -> None:
        self.pauses += 1

    def resume_writing(self) -> None:
        self.resumes += 1

    def connection_lost(self, exc) -> None:
        self.lost_calls.append(exc)
        if not self.lost.done():
            self.lost.set_result(exc)
        if self._want is not None and not self._want[1].done():
            self._want[1].set_exception(ConnectionError(f"lost after {len(self.data)} bytes"))

    async def wait_bytes(self, n: int) -> bytes:
        """Waits until at least ``n`` bytes have arrived; returns all received so far."""
        if len(self.data) < n:
            self._want = (n, asyncio.get_running_loop().create_future())
            self._check_want()
            await self._want[1]
        return bytes(self.data)

    def _check_want(self) -> None:
        if self._want is not None and len(self.data) >= self._want[0] and not self._want[1].done():
            self._want[1].set_result(None)


class Echo(asyncio.Protocol):
    """Sends back what it receives; closes on EOF (the default protocol answer)."""

    instances: list["Echo"]

    def __init__(self) -> None:
        self.lost_calls = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def connection_lost(self, exc) -> None:
        self.lost_calls += 1


def closed_port() -> int:
    """A loopback TCP port with nobody listening (connects are refused)."""
    return free_port()


class HangingListener:
    """A listener with a full accept queue: the kernel drops further SYNs, so a connect to it
    neither succeeds nor fails until it is given up (a connect timeout on loopback)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.addr = self.sock.getsockname()
        self.filler = socket.socket()
        self.filler.settimeout(2)
        self.filler.connect(self.addr)

    def close(self) -> None:
        self.filler.close()
        self.sock.close()


def rst_close(sock: socket.socket) -> None:
    """Closes ``sock`` with an RST instead of a FIN (SO_LINGER with a zero timeout)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@dataclass
class Pki:
    ca_pem: bytes
    cert_path: str
    key_path: str

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        return ctx


def make_pki(directory: str) -> Pki:
    """A CA and a server certificate for ``localhost`` and 127.0.0.1 (ECDSA P-256)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corenet transport test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            # Python 3.13 verifies with VERIFY_X509_STRICT, which wants the key identifiers.
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path = os.path.join(directory, "server.pem")
    key_path = os.path.join(directory, "server.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return Pki(ca.public_bytes(serialization.Encoding.PEM), cert_path, key_path)


def fill_socket_buffers(transport: asyncio.WriteTransport, chunk: int = 65536,
                        limit: int = 64 * 1024 * 1024) -> int:
    """Writes until the transport has to queue (the peer is not reading); returns the bytes
    written. Used to make a later write take the queued path."""
    total = 0
    block = b"\0" * chunk
    while transport.get_write_buffer_size() == 0 and total < limit:
        transport.write(block)
        total += chunk
    assert transport.get_write_buffer_size() > 0, "the socket never filled up"
    return total


async def tcp_pair(loop, server_factory=Echo, client_factory=Recorder, **client_kw):
    """A server with one accepted connection; returns (client transport, client protocol,
    server protocol, server). The caller closes the server with ``stop_server``."""
    accepted = loop.create_future()

    def factory():
        proto = server_factory()
        if not accepted.done():
            accepted.set_result(proto)
        return proto

    srv = await loop.create_server(factory, "127.0.0.1", 0)
    addr = srv.sockets[0].getsockname()
    tr, pr = await loop.create_connection(client_factory, *addr, **client_kw)
    sp = await accepted
    for _ in range(100):  # connection_made of the accepted side runs soon after accept
        if getattr(sp, "transport", None) is not None:
            break
        await asyncio.sleep(0.001)
    return tr, pr, sp, srv


async def stop_server(srv) -> None:
    srv.close()
    await srv.wait_closed()
