"""Every limit a server can push against, with its default and the reason for it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    # Status line plus all header lines. Real servers send a few KiB; 64 KiB leaves room for
    # big cookies while stopping a server that never stops sending headers.
    max_header_bytes: int = 64 * 1024
    # Browsers and proxies cap around 100; a few hundred bounds the per-response dict work.
    max_header_count: int = 256
    # Decoded body size (after gzip/deflate), so a compression bomb is stopped as early as a
    # huge plain body. 1 GiB by default; streaming users may raise it.
    max_body_bytes: int = 1 << 30
    # Interim (1xx) responses before the final one: a server looping on 100 cannot spin us.
    max_interim_responses: int = 10
    # Bytes of body buffered in memory while the reader is slower than the network; above
    # this the connection stops reading (TCP back-pressure).
    read_buffer_high: int = 4 * 1024 * 1024


DEFAULT_LIMITS = Limits()
