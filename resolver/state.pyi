# Type stub for the compiled module resolver.state: the resolver's counters (Stats, public
# as resolver.Stats) and the C fields of Resolver that its compiled miss path reads
# (ResolverCore, the base of resolver.Resolver).
from typing import Any, Callable, ClassVar, Iterable

from resolver.limits import Limits

STATS_FIELDS: tuple[str, ...]

class Stats:
    """Counters for the daemon's metrics; keyword construction, repr and == as a dataclass."""

    _fields: ClassVar[tuple[str, ...]]
    client_queries: int
    upstream_queries: int
    upstream_tcp: int
    upstream_timeouts: int
    upstream_failures: int
    dropped_malformed: int
    dropped_mismatched: int
    cache_hits: int
    cache_misses: int
    cache_evictions: int
    stale_answers: int
    prefetches: int
    coalesced: int
    servfail: int
    primings: int
    priming_failures: int
    upstream_unreachable: int
    no_descriptors: int
    dnssec_secure: int
    dnssec_insecure: int
    dnssec_bogus: int
    dnssec_indeterminate: int
    local_answers: int
    forwarded: int
    stubbed: int
    upstream_joined: int
    upstream_skipped_down: int
    zone_ratelimited: int
    upstream_capped: int
    caps_fallbacks: int

    def __init__(self, **values: int) -> None: ...
    def as_dict(self) -> dict[str, int]: ...
    def __eq__(self, other: object) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

class LimitValues:
    """The values of a ``Limits`` that a miss reads, copied out once per ``Limits``."""

    def __init__(self, limits: Limits) -> None: ...
    @property
    def limits(self) -> Limits: ...
    @property
    def max_referrals(self) -> int: ...
    @property
    def max_cname_chain(self) -> int: ...
    @property
    def max_ns_names_per_delegation(self) -> int: ...
    @property
    def max_dependency_depth(self) -> int: ...
    @property
    def max_upstream_queries(self) -> int: ...
    @property
    def max_minimise_count(self) -> int: ...
    @property
    def max_servers_per_zone(self) -> int: ...
    @property
    def max_tries_per_server(self) -> int: ...
    @property
    def max_pointer_jumps(self) -> int: ...
    @property
    def max_records_per_section(self) -> int: ...
    @property
    def prefetch_min_hits(self) -> int: ...
    @property
    def stale_answer_ttl(self) -> int: ...
    @property
    def max_query_time(self) -> float: ...
    @property
    def prefetch_fraction(self) -> float: ...
    @property
    def min_ttl(self) -> int: ...
    @property
    def max_ttl(self) -> int: ...
    @property
    def max_negative_ttl(self) -> int: ...
    @property
    def failure_ttl(self) -> int: ...
    @property
    def stale_window(self) -> float: ...

class ResolverCore:
    """The fields of ``resolver.Resolver`` that its compiled miss path reads."""

    hints: Any
    cache: Any
    clock: Callable[[], float]
    validator: Any
    dnssec: Any
    message_table: Any
    hint_index: Any
    hint_index_source: Any
    local_zones: Any
    zones: Any
    forward: Any
    resolutions: dict[Any, Any]
    port: int
    minimise: bool
    ipv6: bool
    do_ip4: bool
    no_localhost: bool
    harden_glue: bool
    shared: Any
    private: Any
    source: str | None
    caps_for_id: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None: ...
    @property
    def caps_exempt(self) -> tuple[str, ...]: ...
    @caps_exempt.setter
    def caps_exempt(self, value: Iterable[Any]) -> None: ...
    @property
    def shared_queries(self) -> dict[Any, Any]: ...
    @property
    def lv(self) -> LimitValues: ...
    @property
    def stats(self) -> Stats: ...
    @stats.setter
    def stats(self, value: Stats) -> None: ...
    @property
    def limits(self) -> Limits | None: ...
    @limits.setter
    def limits(self, limits: Limits) -> None: ...
