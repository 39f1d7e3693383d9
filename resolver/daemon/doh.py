"""DNS over HTTP (RFC 8484), sans-IO: requests in, DNS queries out, responses back in.

:func:`query_of` turns one HTTP request into the DNS query it carries or an
:class:`HTTPError` (400, 404, 405, 413, 415), before any DNS work. :class:`H1Server`
(HTTP/1.1, on ``h11``) and :class:`resolver.daemon.h2_server.H2Server` (HTTP/2, on
nghttp2) hold one connection's protocol state: ``receive(data)`` hands the queries that are
complete to the front door through their ``link`` (:class:`resolver.daemon.doh_reply.DoorLink`),
or returns them as ``(request_id, query)`` pairs without one, having answered bad requests
themselves; ``respond(request_id, answer)`` (the door's reply calls it) answers one (``Cache-Control: max-age`` from the answer's smallest TTL);
``data_to_send()`` is what goes to the peer; ``closing`` says the connection is to end once
that is sent. Nothing here touches a socket.
"""
from __future__ import annotations

import base64
import binascii

import h11

from resolver.wire.codec import WireError, ttl_offsets

CONTENT_TYPE = b"application/dns-message"
#: Starts every HTTP/2 connection with prior knowledge (RFC 9113 3.4).
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

_B64_ALTCHARS = bytes.maketrans(b"-_", b"+/")


class HTTPError(Exception):
    """A request answered with ``status`` and no DNS work."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


def query_of(method: bytes, target: bytes, content_type: bytes | None, body: bytes,
             endpoint: bytes, max_size: int) -> bytes:
    """The DNS query of a request: ``GET endpoint?dns=<base64url>`` or ``POST endpoint`` with
    an ``application/dns-message`` body of at most ``max_size`` bytes."""
    path, _, params = target.partition(b"?")
    if path != endpoint:
        raise HTTPError(404, "no such path")
    if method == b"GET":
        value = None
        for part in params.split(b"&"):
            key, _, v = part.partition(b"=")
            if key == b"dns":
                value = v
                break
        if value is None:
            raise HTTPError(400, "no dns parameter")
        if len(value) > (max_size * 4 + 2) // 3 + 2:
            raise HTTPError(413, "query too large")
        value = value.rstrip(b"=")       # RFC 8484 has no padding; some clients add it
        try:
            q = base64.b64decode(value.translate(_B64_ALTCHARS) + b"=" * (-len(value) % 4),
                                 validate=True)
        except (binascii.Error, ValueError):
            raise HTTPError(400, "dns parameter is not base64url") from None
    elif method == b"POST":
        mime = (content_type or b"").split(b";")[0].strip().lower()
        if mime != CONTENT_TYPE:
            raise HTTPError(415, "content type must be application/dns-message")
        q = body
    else:
        raise HTTPError(405, "GET or POST only")
    if len(q) > max_size:
        raise HTTPError(413, "query too large")
    if len(q) < 12 or q[2] & 0x80:
        raise HTTPError(400, "not a DNS query")
    return q


def min_ttl(answer: bytes) -> int | None:
    """The smallest TTL of the answer's records (OPT aside, a TTL with its high bit set read
    as 0, RFC 2181 8), None when it has no record or cannot be read."""
    try:
        offsets, low, _ = ttl_offsets(answer)
    except WireError:
        return None
    return low if offsets else None


def answer_headers(answer: bytes) -> list[tuple[bytes, bytes]]:
    """The headers of a 200 response carrying ``answer``."""
    return [_CONTENT_TYPE, (b"content-length", b"%d" % len(answer)),
            (b"cache-control", b"max-age=%d" % (min_ttl(answer) or 0))]


_CONTENT_TYPE = (b"content-type", CONTENT_TYPE)


def error_body(err: HTTPError) -> bytes:
    """The plain-text body of an error response."""
    return f"{err.status} {err.reason}\n".encode()


class H1Server:
    """One HTTP/1.1 connection's state (server side): one request at a time, in order."""

    version = "http/1.1"

    def __init__(self, endpoint: bytes, max_size: int, max_requests: int, max_head: int,
                 link=None) -> None:
        self.endpoint = endpoint
        self.link = link           # the front door (a doh_reply.DoorLink), or None
        self.stepping = False      # in _step: an answer given meanwhile does not step again
        self.max_size = max_size
        self.max_requests = max_requests
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head)
        self.out = bytearray()
        self.request: h11.Request | None = None
        self.body = bytearray()
        self.waiting = False       # a query handed out, its answer not sent yet
        self.requests = 0
        self.closing = False
        self.errors: list[int] = []

    def receive(self, data: bytes) -> list[tuple[int, bytes]]:
        if self.closing:
            return []
        try:
            self.conn.receive_data(data)
        except h11.RemoteProtocolError:
            self.closing = True
            return []
        return self._step()

    def _step(self) -> list[tuple[int, bytes]]:
        """Reads the requests in order: each query to the front door (``link.ask``), the
        next request read once it is answered; without a link the query is returned, as
        ``[(request_id, query)]``."""
        self.stepping = True
        try:
            return self._steps()
        finally:
            self.stepping = False

    def _steps(self) -> list[tuple[int, bytes]]:
        while not self.waiting and not self.closing:
            try:
                ev = self.conn.next_event()
            except h11.RemoteProtocolError as e:
                if self.conn.our_state is h11.SEND_RESPONSE:
                    self._fail(HTTPError(e.error_status_hint, "bad request"))
                self.closing = True
                break
            if ev is h11.NEED_DATA:
                break
            if ev is h11.PAUSED:
                if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                    self.conn.start_next_cycle()
                    continue
                self.closing = True
                break
            if isinstance(ev, h11.Request):
                self.request = ev
                self.body = bytearray()
                length = dict(ev.headers).get(b"content-length")
                if length is not None and length.isdigit() and int(length) > self.max_size:
                    self._fail(HTTPError(413, "query too large"), close=True)
            elif isinstance(ev, h11.Data):
                self.body += ev.data
                if len(self.body) > self.max_size:
                    self._fail(HTTPError(413, "query too large"), close=True)
            elif isinstance(ev, h11.EndOfMessage):
                req = self.request
                self.requests += 1
                try:
                    body, self.body = bytes(self.body), bytearray()
                    q = query_of(req.method, req.target, dict(req.headers).get(b"content-type"),
                                 body, self.endpoint, self.max_size)
                except HTTPError as err:
                    self._fail(err)
                    continue
                self.waiting = True
                if self.link is None:
                    return [(self.requests, q)]
                self.link.ask(self, self.requests, q)
            elif isinstance(ev, h11.ConnectionClosed):
                self.closing = True
        return []

    def _last(self) -> bool:
        return self.requests >= self.max_requests

    def _send(self, status: int, headers: list, body: bytes, close: bool = False) -> None:
        if close or self._last():
            headers = [*headers, (b"connection", b"close")]
        self.out += self.conn.send(h11.Response(status_code=status, headers=headers))
        if self.request is None or self.request.method != b"HEAD":     # HEAD: no body
            self.out += self.conn.send(h11.Data(data=body))
        self.out += self.conn.send(h11.EndOfMessage())
        if close or self._last() or self.conn.our_state is h11.MUST_CLOSE:
            self.closing = True

    def _fail(self, err: HTTPError, close: bool = False) -> None:
        self.errors.append(err.status)
        body = error_body(err)
        self._send(err.status, [(b"content-type", b"text/plain"),
                                (b"content-length", str(len(body)).encode())], body, close)
        if self.conn.their_state is not h11.DONE:
            self.closing = True          # the rest of the request is not read

    def respond(self, rid: int, answer: bytes) -> list[tuple[int, bytes]]:
        if not self.waiting or rid != self.requests:
            return []
        self.waiting = False
        self._send(200, answer_headers(answer), answer)
        return [] if self.stepping else self._step()

    @property
    def busy(self) -> bool:
        return self.waiting

    @property
    def wants_input(self) -> bool:
        """False while an answer is owed: the next request is not read before it is sent."""
        return not self.waiting

    def buffered(self) -> tuple[int, int]:
        """Bytes held: of the request body read so far and the input not yet read (the
        requests pipelined behind it), of the responses not yet taken by ``data_to_send``."""
        return len(self.body) + len(self.conn.trailing_data[0]), len(self.out)

    def data_to_send(self) -> bytes:
        out = bytes(self.out)
        self.out.clear()
        return out
