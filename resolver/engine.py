"""Resolver: public API (skeleton; implementation landing next)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import dns.message
import dns.name
import dns.rrset

from resolver.limits import DEFAULT, Limits


@dataclass
class Stats:
    client_queries: int = 0
    upstream_queries: int = 0
    upstream_timeouts: int = 0
    dropped_malformed: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    cache_evictions: int = 0


class Answer:
    """What `Resolver.resolve` returns: the same attributes as dnspython's Answer."""

    rrset: dns.rrset.RRset
    response: dns.message.Message
    canonical_name: dns.name.Name
    expiration: float


class Resolver:
    def __init__(self, root_hints: str | os.PathLike | Iterable[tuple[str, str]] | None = None, *,
                 port: int = 53, cache_size: int = 64 * 1024 * 1024, limits: Limits = DEFAULT,
                 qname_minimisation: bool = True) -> None:
        raise NotImplementedError("in progress")

    async def resolve(self, qname, rdtype="A", rdclass="IN") -> Answer:
        raise NotImplementedError

    async def resolve_message(self, query: dns.message.Message | bytes) -> dns.message.Message | bytes:
        raise NotImplementedError
