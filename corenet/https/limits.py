"""Every limit a server can push against, with its default and the reason for it, and the
pool's limits under httpx's names (`Limits(max_connections=10)` means what it does there).
The header, body, interim and stream limits apply to HTTP/2 as to HTTP/1.1 (a header block is
counted as HPACK counts a header list); the h2_ ones are HTTP/2's own."""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Limits:
    # ---- the pool, as httpx.Limits ----
    # Open connections (busy and idle) across all origins; a request beyond waits (pool
    # timeout). None: no limit.
    max_connections: int | None = 100
    # Idle keep-alive connections kept for reuse (an HTTP/2 one is idle when no stream is
    # open on it); None: no limit.
    max_keepalive_connections: int | None = 20
    # Seconds an idle connection (HTTP/1.1 or HTTP/2) is kept, then closed by the pool's
    # timer whether or not another request comes (a connection carrying a request is not
    # idle); a server usually drops it after 5 to 75 s, so reusing an older one risks a
    # request on a dead connection, and holding it ties up a descriptor on both ends.
    # None: no limit.
    keepalive_expiry: float | None = 5.0
    # ---- what a server can push against ----
    # Status line plus all header lines. Real servers send a few KiB; 64 KiB leaves room for
    # big cookies while stopping a server that never stops sending headers.
    max_header_bytes: int = 64 * 1024
    # Browsers and proxies cap around 100; a few hundred bounds the per-response dict work.
    # (A chunked body's trailer fields are not kept: max_trailer_bytes bounds them.)
    max_header_count: int = 256
    # A body read whole into memory (`client.get()`, `response.aread()`), counted both as
    # received and as decoded (after gzip, br, zstd), so a compression bomb is stopped as
    # early as a huge plain body: decoding never allocates more than this plus one byte.
    # A Content-Length over it fails at the head, before any of the body is received.
    # 64 MiB holds any page or API answer; bigger downloads belong in `client.stream()`.
    max_body_bytes: int = 64 * 1024 * 1024
    # A streamed body (`client.stream()`, `aiter_bytes()`): the caller consumes it piece by
    # piece, so memory stays bounded (read_buffer_high, max_decoded_chunk) whatever its
    # length; None means no limit, a number stops a stream that runs longer.
    max_stream_bytes: int | None = None
    # Largest piece of decoded body produced at once. A few bytes of gzip can inflate to
    # megabytes (and gzip inside gzip to gigabytes): output is pulled out of the decoders in
    # pieces of at most this size, so neither a streaming reader nor the decoder ever holds
    # more than one piece per coding.
    max_decoded_chunk: int = 64 * 1024
    # Chunk extensions (what follows the size on a chunk-size line) and trailer lines of
    # one chunked body, counted together against the sum of these two. Real servers send
    # no extensions and rarely a trailer (a checksum, a status); the limit stops a server
    # that streams an endless extension, or a long one after every one-byte chunk (read
    # forever with no body to show), or a trailer line that never ends.
    max_chunk_extension_bytes: int = 16 * 1024
    max_trailer_bytes: int = 16 * 1024
    # A line given by `Response.aiter_lines()`, in characters: a server that never sends a
    # line end would otherwise grow one string for as long as the stream lasts.
    max_line_length: int = 1024 * 1024
    # Interim (1xx) responses before the final one: a server looping on 100 cannot spin us.
    max_interim_responses: int = 10
    # Bytes of body buffered in memory while the reader is slower than the network; above
    # this the connection stops reading (TCP back-pressure).
    read_buffer_high: int = 4 * 1024 * 1024
    # zstd window a response may ask the decoder to allocate, as a power of two. RFC 9659
    # caps Content-Encoding: zstd at 8 MiB (2**23); without a cap a frame header alone
    # could make the decoder reserve up to 2 GiB.
    zstd_window_log_max: int = 23
    # ---- HTTP/2 ----
    # Response bytes a stream may have in flight unread (its SETTINGS_INITIAL_WINDOW_SIZE),
    # and all streams of a connection together (the connection window): what a server can
    # make us hold for a reader that is not reading. A stream's window also bounds a 64 MiB
    # download's speed to window / round trip, hence 4 MiB, like read_buffer_high.
    h2_stream_window: int = 4 * 1024 * 1024
    h2_connection_window: int = 16 * 1024 * 1024
    # The HPACK table the server may make our decoder keep (SETTINGS_HEADER_TABLE_SIZE):
    # memory per connection, and the reach of one indexed reference in a header bomb.
    h2_header_table_size: int = 4096
    # CONTINUATION frames after one HEADERS: real servers send a head in one or two frames;
    # an endless run of them is CVE-2024-27316's way of holding memory and CPU.
    h2_max_continuations: int = 8
    # Entries in one SETTINGS frame: RFC 9113 defines six; a frame of thousands is work for
    # nothing.
    h2_max_settings: int = 32
    # Frames that make us write or work without answering any request of ours: PINGs and
    # SETTINGS that are not ACKs, DATA frames without data (empty, or padding alone). A connection takes this many, plus
    # h2_control_frames_per_request for each request sent on it; past that it ends
    # (GOAWAY, ENHANCE_YOUR_CALM). Without a bound a server makes us answer a flood.
    h2_max_control_frames: int = 1000
    h2_control_frames_per_request: int = 10
    # An HTTP/2 connection idle this long is asked for a PING before it takes a request,
    # and dropped if the answer does not come within h2_ping_timeout: a connection that a
    # middlebox or the server dropped silently would otherwise cost the request its read
    # timeout.
    h2_ping_after_idle: float = 2.0
    h2_ping_timeout: float = 2.0
    # ---- our own CPU ----
    # Seconds the loop may poll without sleeping for a response after an HTTP/1.1 request
    # is sent (corenet's loop only: `Loop.poll_before_sleeping`, which adapts the polling
    # to how soon responses come and stops when they come later than this). A server
    # nearby answers in tens of microseconds, and waking from sleep costs about as much
    # (twice a request: that is most of what a keep-alive GET to a local server takes
    # beyond the two sides' work). 0: always sleep.
    response_poll: float = 100e-6

    def __repr__(self) -> str:
        """httpx's three pool fields, then each other limit only where it differs from its
        default: `Limits(max_connections=10, max_keepalive_connections=20,
        keepalive_expiry=5.0)` reads as it does in httpx."""
        shown = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                 if f.name in _POOL or getattr(self, f.name) != f.default]
        return f"Limits({', '.join(shown)})"


_POOL = ("max_connections", "max_keepalive_connections", "keepalive_expiry")
DEFAULT_LIMITS = Limits()
