"""SOCKS5 (RFC 1928), the client's side of asking a SOCKS proxy for a TCP connection, with
username/password authentication (RFC 1929) when the proxy URL or `auth=` gives
credentials. Sans-IO: `Socks5Connect` says what to send and reads what the proxy answers;
`NetworkStream.socks_tunnel` moves the bytes. The origin is named as the request names it:
a host name goes to the proxy, which resolves it (as httpx does for `socks5://` and
`socks5h://` alike), an IP literal as its address."""
from __future__ import annotations

import ipaddress

from .errors import ProxyError

VERSION = 5
NO_AUTH, USER_PASSWORD, NO_ACCEPTABLE = 0x00, 0x02, 0xFF
CONNECT = 0x01
IPV4, DOMAIN, IPV6 = 0x01, 0x03, 0x04
#: RFC 1928 section 6: what a reply code other than 0 (succeeded) means.
REPLIES = {
    1: "general SOCKS server failure", 2: "connection not allowed by ruleset",
    3: "network unreachable", 4: "host unreachable", 5: "connection refused",
    6: "TTL expired", 7: "command not supported", 8: "address type not supported",
}


def _field(value: str | bytes, what: str) -> bytes:
    """One length-prefixed field of RFC 1929's request (1 to 255 bytes)."""
    raw = value.encode() if isinstance(value, str) else bytes(value)
    if not 0 < len(raw) < 256:
        raise ProxyError(f"the SOCKS5 {what} must be 1 to 255 bytes, not {len(raw)}")
    return bytes([len(raw)]) + raw


def _address(host: str, port: int) -> bytes:
    """DST.ADDR and DST.PORT of a CONNECT request: an IP literal as its address, a name as a
    domain name (ASCII: the URL's host is already IDNA-encoded)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        name = host.encode("ascii")
        if not 0 < len(name) < 256:
            raise ProxyError(f"the host name {host!r} is too long for SOCKS5") from None
        head = bytes([DOMAIN, len(name)]) + name
    else:
        head = bytes([IPV4 if ip.version == 4 else IPV6]) + ip.packed
    return head + port.to_bytes(2, "big")


class Socks5Connect:
    """One SOCKS5 handshake: `start()` gives the greeting; each `feed(data)` returns the
    bytes to send next (maybe none) and raises ProxyError when the proxy refuses or breaks
    the protocol; `done` once the proxy has connected to the origin, after which the
    connection's bytes are the origin's."""

    def __init__(self, host: str, port: int, auth: tuple[str, str] | None) -> None:
        self.origin = f"{host}:{port}"
        self.request = bytes([VERSION, CONNECT, 0]) + _address(host, port)
        self.login = None if auth is None else (
            b"\x01" + _field(auth[0], "user name") + _field(auth[1], "password"))
        self.buffer = bytearray()
        self.state = "method"
        self.done = False

    def start(self) -> bytes:
        """The greeting: the one method offered, credentials when there are some."""
        return bytes([VERSION, 1, NO_AUTH if self.login is None else USER_PASSWORD])

    def feed(self, data: bytes | memoryview) -> bytes:
        self.buffer += data
        out = b""
        while not self.done:
            step = getattr(self, "_" + self.state)()
            if step is None:
                break                           # more bytes needed
            out += step
        if self.done and self.buffer:
            raise ProxyError("the SOCKS5 proxy sent bytes after its reply, before the "
                             "origin was spoken to")
        return out

    def _take(self, n: int) -> bytes | None:
        if len(self.buffer) < n:
            return None
        head = bytes(self.buffer[:n])
        del self.buffer[:n]
        return head

    def _method(self) -> bytes | None:
        reply = self._take(2)
        if reply is None:
            return None
        if reply[0] != VERSION:
            raise ProxyError(f"not a SOCKS5 proxy (its reply begins {reply!r})")
        wanted = NO_AUTH if self.login is None else USER_PASSWORD
        if reply[1] == NO_ACCEPTABLE or reply[1] != wanted:
            raise ProxyError("the SOCKS5 proxy accepts no method offered: " +
                             ("it wants credentials" if self.login is None else
                              "user name and password were offered"))
        if self.login is not None:
            self.state = "login"
            return self.login
        self.state = "reply"
        return self.request

    def _login(self) -> bytes | None:
        reply = self._take(2)
        if reply is None:
            return None
        if reply[0] != 1:
            raise ProxyError(f"malformed SOCKS5 authentication reply {reply!r}")
        if reply[1] != 0:
            raise ProxyError("the SOCKS5 proxy refused the user name and password")
        self.state = "reply"
        return self.request

    def _reply(self) -> bytes | None:
        if len(self.buffer) < 5:
            return None
        ver, rep, _, atyp, first = self.buffer[:5]
        if ver != VERSION:
            raise ProxyError(f"malformed SOCKS5 reply {bytes(self.buffer[:5])!r}")
        if rep != 0:
            why = REPLIES.get(rep, f"reply code {rep}")
            raise ProxyError(f"the SOCKS5 proxy could not connect to {self.origin}: {why}")
        sizes = {IPV4: 4 + 2, IPV6: 16 + 2, DOMAIN: 1 + first + 2}
        if atyp not in sizes:
            raise ProxyError(f"malformed SOCKS5 reply: address type {atyp}")
        if self._take(4 + sizes[atyp]) is None:
            return None
        self.done = True
        return b""
