"""DNS over HTTP (RFC 8484), sans-IO: requests in, DNS queries out, responses back in.

:func:`query_of` turns one HTTP request into the DNS query it carries or an
:class:`HTTPError` (400, 404, 405, 413, 415), before any DNS work. :class:`H2Server` (HTTP/2,
on the ``h2`` library) and :class:`H1Server` (HTTP/1.1, on ``h11``) hold one connection's
protocol state: ``receive(data)`` returns the queries that are complete, as
``(request_id, query)`` pairs, having answered bad requests themselves; ``respond(request_id,
answer)`` answers one (``Cache-Control: max-age`` from the answer's smallest TTL);
``data_to_send()`` is what goes to the peer; ``closing`` says the connection is to end once
that is sent. Nothing here touches a socket.
"""
from __future__ import annotations

import base64
import binascii

import h11
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

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


def _error_body(err: HTTPError) -> bytes:
    return f"{err.status} {err.reason}\n".encode()


class H2Server:
    """One HTTP/2 connection's state (server side).

    What a request needs (method, path, content type and length) is kept per open stream,
    the body as it comes. An answer that fits the client's flow-control window goes out as
    one HEADERS and one DATA frame ending the stream; the rest waits in ``pending`` for
    window updates. The response headers are not validated again by h2: they are made
    here, in the form HTTP/2 wants (lowercase names, no connection headers). The request
    headers are validated but not normalized (h2's normalizing joins cookies, which DoH
    does not read)."""

    version = "h2"

    def __init__(self, endpoint: bytes, max_size: int, max_streams: int, max_requests: int,
                 max_head: int) -> None:
        self.endpoint = endpoint
        self.max_size = max_size
        self.max_requests = max_requests
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False, normalize_inbound_headers=False))
        self.conn.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_streams,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: max_head,
            h2.settings.SettingCodes.ENABLE_PUSH: 0})
        self.conn.initiate_connection()
        self.streams: dict[int, dict] = {}     # open requests: their headers (first of each)
        self.bodies: dict[int, bytes] = {}     # the bodies of open requests, so far
        self.pending: dict[int, bytes] = {}    # response bodies waiting for flow control
        self.requests = 0
        self.last_taken = 0                    # the last stream taken within max_requests
        self.ending = False                    # max_requests reached: no more streams taken
        self.closing = False
        self.refused = 0                       # streams refused past max_requests
        self.errors: list[int] = []            # HTTP statuses answered here (for counting)

    def receive(self, data: bytes) -> list[tuple[int, bytes]]:
        if self.closing:
            return []
        if not data:
            self.closing = True
            return []
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.TooManyStreamsError:
            self._goaway(h2.errors.ErrorCodes.REFUSED_STREAM)
            return []
        except h2.exceptions.ProtocolError:
            self._goaway(h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return []
        ready: list[tuple[int, bytes]] = []
        for ev in events:
            try:
                kind = type(ev)
                if kind is _DATA:
                    self._data(ev)
                elif kind is _ENDED:
                    sid = ev.stream_id
                    if sid in self.streams:
                        q = self._finish(sid)
                        if q is not None:
                            ready.append((sid, q))
                elif kind is _REQUEST:
                    self._request(ev)
                elif kind is _RESET:
                    self._forget(ev.stream_id)
                elif kind is _WINDOW:
                    if self.pending:
                        self._flush_pending()
                elif kind is _TERMINATED:
                    self.closing = True
            except h2.exceptions.ProtocolError:
                # The stream was reset by the client in the same read, or the connection is
                # ending: what was owed on it is dropped.
                self._forget(getattr(ev, "stream_id", None))
        self._end_if_done()
        return ready

    def _forget(self, sid) -> None:
        self.streams.pop(sid, None)
        self.bodies.pop(sid, None)
        self.pending.pop(sid, None)

    def _goaway(self, code, last_stream_id: int | None = None) -> None:
        self.closing = True
        self.streams.clear()
        self.bodies.clear()
        self.pending.clear()
        try:
            self.conn.close_connection(error_code=code, last_stream_id=last_stream_id)
        except h2.exceptions.ProtocolError:
            pass

    def _request(self, ev) -> None:
        sid = ev.stream_id
        self.requests += 1
        if self.requests > self.max_requests:
            # Past the budget: the stream is not taken. Once every stream taken is answered
            # the connection ends with GOAWAY naming the last one, which tells the client
            # that the later ones were not processed and may be asked again elsewhere
            # (RFC 9113 6.8). h2 sends nothing after a GOAWAY, so it waits for those answers.
            self.refused += 1
            self.ending = True
            return
        self.last_taken = sid
        head = dict(reversed(ev.headers))      # the first of a repeated header counts
        self.streams[sid] = head
        length = head.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_size:
            self._fail(sid, HTTPError(413, "query too large"))

    def _data(self, ev) -> None:
        sid = ev.stream_id
        self.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
        if sid not in self.streams:
            return
        body = self.bodies.get(sid, b"") + ev.data
        if len(body) > self.max_size:
            self._fail(sid, HTTPError(413, "query too large"))
        else:
            self.bodies[sid] = body

    def _finish(self, sid: int) -> bytes | None:
        head = self.streams[sid]
        try:
            return query_of(head.get(b":method", b""), head.get(b":path", b""),
                            head.get(b"content-type"), self.bodies.pop(sid, b""),
                            self.endpoint, self.max_size)
        except HTTPError as err:
            self._fail(sid, err)
            return None

    def _fail(self, sid: int, err: HTTPError) -> None:
        """Answers ``err`` on a stream and forgets it (what more the client sends on it is
        dropped: the stream is reset if it is still sending)."""
        self.streams.pop(sid, None)
        self.bodies.pop(sid, None)
        self.errors.append(err.status)
        body = _error_body(err)
        self.conn.send_headers(sid, [(b":status", str(err.status).encode()),
                                     (b"content-type", b"text/plain"),
                                     (b"content-length", str(len(body)).encode())])
        self.pending[sid] = body
        self._flush_pending()
        if sid not in self.pending and self.conn.streams.get(sid) is not None:
            stream = self.conn.streams[sid]
            if not stream.closed:
                self.conn.reset_stream(sid, h2.errors.ErrorCodes.NO_ERROR)

    def respond(self, sid: int, answer: bytes) -> list[tuple[int, bytes]]:
        if self.streams.pop(sid, None) is None:
            return []                        # reset by the client meanwhile
        conn = self.conn
        try:
            conn.send_headers(sid, [_STATUS_200, *answer_headers(answer)])
            conn.send_data(sid, answer, end_stream=True)
        except (h2.exceptions.FlowControlError, h2.exceptions.FrameTooLargeError):
            self.pending[sid] = answer       # more than the window or a frame takes
            self._flush_pending()
        except h2.exceptions.ProtocolError:
            return []
        self._end_if_done()
        return []

    def _end_if_done(self) -> None:
        """Past the request budget with every stream taken answered: GOAWAY."""
        if self.ending and not self.closing and not self.streams and not self.pending:
            self._goaway(h2.errors.ErrorCodes.NO_ERROR, last_stream_id=self.last_taken)

    def _flush_pending(self) -> None:
        for sid in list(self.pending):
            body = self.pending[sid]
            try:
                window = self.conn.local_flow_control_window(sid)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                del self.pending[sid]
                continue
            n = min(window, len(body))
            size = self.conn.max_outbound_frame_size
            try:
                for at in range(0, n, size):
                    end = min(n, at + size)
                    self.conn.send_data(sid, body[at:end], end_stream=end == len(body))
                if not body:
                    self.conn.end_stream(sid)
            except h2.exceptions.ProtocolError:
                del self.pending[sid]
                continue
            if n == len(body):
                del self.pending[sid]
            else:
                self.pending[sid] = body[n:]

    @property
    def busy(self) -> bool:
        """Something is still owed to the peer."""
        return bool(self.streams or self.pending)

    #: More input is welcome at any time (streams and bodies are bounded above).
    wants_input = True

    def data_to_send(self) -> bytes:
        return self.conn.data_to_send()


_STATUS_200 = (b":status", b"200")
_REQUEST = h2.events.RequestReceived
_DATA = h2.events.DataReceived
_ENDED = h2.events.StreamEnded
_RESET = h2.events.StreamReset
_WINDOW = h2.events.WindowUpdated
_TERMINATED = h2.events.ConnectionTerminated


class H1Server:
    """One HTTP/1.1 connection's state (server side): one request at a time, in order."""

    version = "http/1.1"

    def __init__(self, endpoint: bytes, max_size: int, max_requests: int, max_head: int) -> None:
        self.endpoint = endpoint
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
                    q = query_of(req.method, req.target, dict(req.headers).get(b"content-type"),
                                 bytes(self.body), self.endpoint, self.max_size)
                except HTTPError as err:
                    self._fail(err)
                    continue
                self.waiting = True
                return [(self.requests, q)]
            elif isinstance(ev, h11.ConnectionClosed):
                self.closing = True
        return []

    def _last(self) -> bool:
        return self.requests >= self.max_requests

    def _send(self, status: int, headers: list, body: bytes, close: bool = False) -> None:
        if close or self._last():
            headers = [*headers, (b"connection", b"close")]
        self.out += self.conn.send(h11.Response(status_code=status, headers=headers))
        self.out += self.conn.send(h11.Data(data=body))
        self.out += self.conn.send(h11.EndOfMessage())
        if close or self._last() or self.conn.our_state is h11.MUST_CLOSE:
            self.closing = True

    def _fail(self, err: HTTPError, close: bool = False) -> None:
        self.errors.append(err.status)
        body = _error_body(err)
        self._send(err.status, [(b"content-type", b"text/plain"),
                                (b"content-length", str(len(body)).encode())], body, close)
        if self.conn.their_state is not h11.DONE:
            self.closing = True          # the rest of the request is not read

    def respond(self, rid: int, answer: bytes) -> list[tuple[int, bytes]]:
        if not self.waiting or rid != self.requests:
            return []
        self.waiting = False
        self._send(200, answer_headers(answer), answer)
        return self._step()

    @property
    def busy(self) -> bool:
        return self.waiting

    @property
    def wants_input(self) -> bool:
        """False while an answer is owed: the next request is not read before it is sent."""
        return not self.waiting

    def data_to_send(self) -> bytes:
        out = bytes(self.out)
        self.out.clear()
        return out
