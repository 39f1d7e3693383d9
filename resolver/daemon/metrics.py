"""Prometheus exposition of the daemon's figures, over HTTP on the daemon's own loop:
``GET /metrics`` answers in the text format 0.0.4, or in OpenMetrics 1.0 when the scraper's
Accept header asks for ``application/openmetrics-text``. ``render`` is pure (stats dict in,
text out), so the same figures serve ``corenet-resolver stats``, a test, or several workers
merged.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import platform
import resource
import time
from typing import Any, Awaitable, Callable

import dns.rcode
import dns.rdatatype

from resolver.daemon.side_door import ConnectionCap
from resolver.limits import DEFAULT as DEFAULT_LIMITS, Limits

log = logging.getLogger("resolver.daemon.metrics")

P = "corenet_resolver_"


def merge(parts: list[dict]) -> dict:
    """Sums the stats of several workers (numbers add, lists add elementwise, dicts merge;
    uptime is the largest)."""
    def add(a: Any, b: Any) -> Any:
        if isinstance(a, dict):
            out = dict(a)
            for k, v in b.items():
                out[k] = add(out[k], v) if k in out else v
            return out
        if isinstance(a, list):
            if a and isinstance(a[0], float) and a == b:      # bucket bounds
                return a
            return [x + y for x, y in zip(a, b)]
        if isinstance(a, (int, float)) and not isinstance(a, bool):
            return a + b
        return a
    out: dict = {}
    for p in parts:
        out = add(out, p) if out else dict(p)
    if parts:
        out["uptime"] = max(p.get("uptime", 0) for p in parts)
        out["workers"] = len(parts)
        starts = [p["process"]["start_time"] for p in parts if "process" in p]
        if starts:
            out["process"]["start_time"] = min(starts)
        _keep_longest(out, parts)
    return out


def _keep_longest(out: dict, parts: list[dict]) -> None:
    """The longest loop iteration and collector pass, and the longest list of misses in
    flight, of several workers is the longest of theirs, not a sum."""
    its = [p["udp_iterations"]["max_ms"] for p in parts if "udp_iterations" in p]
    if its:
        out["udp_iterations"]["max_ms"] = max(its)
    lists = [p["requestlist"]["max"] for p in parts if "requestlist" in p]
    if lists:
        out["requestlist"]["max"] = max(lists)
    for part in parts:                   # a zone's serial and size: each worker's, not a sum
        for name, z in part.get("rpz", {}).get("zones", {}).items():
            held = out["rpz"]["zones"][name]
            held["serial"], held["triggers"] = z["serial"], z["triggers"]
    longest = [p["gc"]["longest_ms"] for p in parts if "gc" in p]
    if longest:
        out["gc"]["longest_ms"] = [max(g) for g in zip(*longest)]


def _rcode(n: int) -> str:
    try:
        return dns.rcode.to_text(dns.rcode.Rcode(int(n)))
    except ValueError:
        return str(n)


def _qtype(n: int) -> str:
    if int(n) == 0:
        return "OTHER"
    try:
        return dns.rdatatype.to_text(int(n))
    except ValueError:
        return str(n)


OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(stats: dict, openmetrics: bool = False) -> str:
    """The Prometheus text for a ``Server.stats()`` dict (or a merged one); OpenMetrics
    with ``openmetrics`` (counter families named without ``_total``, ``# EOF`` at the end)."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]],
               prefix: str = P) -> None:
        family = f"{prefix}{name}"
        if openmetrics and kind == "counter":
            family = family.removesuffix("_total")
        lines.append(f"# HELP {family} {help_}")
        lines.append(f"# TYPE {family} {kind}")
        for labels, value in samples:
            lines.append(f"{prefix}{name}{labels} {value:g}" if isinstance(value, float)
                         else f"{prefix}{name}{labels} {value}")

    q = []
    for key, n in sorted(stats["queries"].items()):
        transport, rcode = key.split(":")
        q.append((f'{{transport="{transport}",rcode="{_rcode(int(rcode))}"}}', n))
    metric("queries_total", "counter", "Queries answered, by transport and rcode.", q)
    metric("nodata_answers_total", "counter",
           "Answers with rcode NOERROR and an empty answer section (Unbound's "
           "num.answer.rcode.nodata).", [("", stats.get("nodata", 0))])
    metric("query_types_total", "counter", "Queries answered, by question type.",
           [(f'{{type="{_qtype(int(t))}"}}', n) for t, n in sorted(stats["qtypes"].items(),
                                                                  key=lambda kv: int(kv[0]))])
    e = stats["engine"]
    metric("cache_hits_total", "counter", "Queries answered from the cache.",
           [("", e["cache_hits"])])
    metric("cache_misses_total", "counter", "Queries that needed a resolution.",
           [("", e["cache_misses"])])
    c = stats["cache"]
    metric("cache_bytes", "gauge", "Bytes held by the cache.", [("", c["bytes"])])
    metric("cache_entries", "gauge", "Entries in the cache, by store.",
           [('{store="messages"}', c["messages"]), ('{store="rrsets"}', c["rrsets"])])
    metric("cache_evictions_total", "counter", "Entries evicted to keep the cache bound.",
           [("", c["evictions"])])
    if "memory" in stats:
        metric("memory_bytes", "gauge",
               "Bytes held outside the cache: by the iterator, the validator, answers "
               "waiting on TCP and TLS, queries and answers held on DNS over HTTP.",
               [(f'{{part="{k}"}}', v) for k, v in stats["memory"].items()])
    metric("upstream_queries_total", "counter", "Queries sent to authorities.",
           [("", e["upstream_queries"])])
    metric("upstream_tcp_total", "counter", "Queries retried over TCP after truncation.",
           [("", e["upstream_tcp"])])
    metric("upstream_joined_total", "counter",
           "Queries to authorities not sent: an identical one in flight was waited for.",
           [("", e.get("upstream_joined", 0))])
    metric("query_parses_total", "counter",
           "Client queries read: the question for the cache key, the whole query for a miss.",
           [("", e.get("query_parses", 0))])
    metric("cache_lookups_total", "counter", "Message cache look-ups for client queries.",
           [("", e.get("cache_lookups", 0))])
    metric("upstream_skipped_down_total", "counter",
           "Queries to authorities not sent: every server was marked down or at its most "
           "queries in flight.",
           [("", e.get("upstream_skipped_down", 0))])
    metric("zone_ratelimited_total", "counter",
           "Questions ended SERVFAIL: their zone's servers had their queries for the second.",
           [("", e.get("zone_ratelimited", 0))])
    metric("upstream_capped_total", "counter",
           "Questions ended SERVFAIL: the upstream sockets in flight were at their cap.",
           [("", e.get("upstream_capped", 0))])
    metric("upstream_caps_fallbacks_total", "counter",
           "Replies whose question came back in another case than the query's random one "
           "(use-caps-for-id): the question asked again as given.",
           [("", e.get("caps_fallbacks", 0))])
    metric("coalesced_total", "counter",
           "Client questions that joined the resolution of the same question in flight.",
           [("", e.get("coalesced", 0))])
    metric("upstream_timeouts_total", "counter", "Queries to authorities that timed out.",
           [("", e["upstream_timeouts"])])
    metric("upstream_failures_total", "counter", "Authorities that refused or broke.",
           [("", e["upstream_failures"])])
    metric("upstream_unreachable_total", "counter",
           "Queries this host had no route for (e.g. IPv6 without IPv6 connectivity).",
           [("", e["upstream_unreachable"])])
    metric("upstream_dropped_total", "counter", "Replies from authorities dropped.",
           [('{reason="malformed"}', e["dropped_malformed"]),
            ('{reason="mismatched"}', e["dropped_mismatched"])])
    metric("servfail_total", "counter", "Resolutions that ended in SERVFAIL.",
           [("", e["servfail"])])
    metric("stale_answers_total", "counter", "Expired answers served (RFC 8767).",
           [("", e["stale_answers"])])
    metric("prefetches_total", "counter", "Background refreshes of popular entries.",
           [("", e["prefetches"])])
    metric("root_primings_total", "counter", "Root priming exchanges (. NS), by outcome.",
           [('{outcome="primed"}', e["primings"]),
            ('{outcome="failed"}', e["priming_failures"])])
    metric("local_zone_answers_total", "counter", "Queries answered by a local zone.",
           [("", e.get("local_answers", 0))])
    metric("zone_resolutions_total", "counter",
           "Resolutions sent to a forward zone's servers or started at a stub zone's.",
           [('{zone="forward"}', e.get("forwarded", 0)), ('{zone="stub"}', e.get("stubbed", 0))])
    _histogram(lines, "answer_latency_seconds", "Time from query to answer.",
               stats["latency_buckets"], stats["latency_counts"], stats["latency_sum"])
    _histogram(lines, "recursion_latency_seconds",
               "Time from query to answer of the queries that needed a resolution.",
               stats["recursion_bounds"][1:], stats["recursion_counts"], stats["recursion_sum"])
    metric("dropped_total", "counter", "Client packets dropped, by reason.",
           [(f'{{reason="{r}"}}', n) for r, n in sorted(stats["dropped"].items())])
    metric("refused_acl_total", "counter", "Queries refused: client outside the allow list.",
           [("", stats["refused_acl"])])
    metric("header_errors_total", "counter",
           "Queries answered for their header alone, NOTIMP (an opcode other than QUERY "
           "and NOTIFY) or FORMERR (TC set, not one question, records a query does not "
           "carry): counted neither as queries nor by rcode, as Unbound counts them.",
           [("", stats.get("header_errors", 0))])
    metric("truncated_total", "counter", "UDP answers truncated (TC) to the client's size.",
           [("", stats["truncated"])])
    sent = stats.get("udp_sent", {"datagrams": 0, "sends": 0})
    metric("udp_datagrams_sent_total", "counter", "UDP answers sent to clients.",
           [("", sent["datagrams"])])
    metric("udp_sends_total", "counter",
           "Messages the UDP answers left in: several answers of one size to one client"
           " go in one, which the kernel cuts into datagrams.", [("", sent["sends"])])
    t = stats["tcp"]
    metric("tcp_connections_open", "gauge", "TCP connections open.", [("", t["open"])])
    metric("tcp_connections_total", "counter",
           "TCP and TLS connections, by outcome: write_stalled and close_stalled were "
           "aborted with answers the client had not read within tcp-write-timeout.",
           [('{outcome="accepted"}', t["accepted"]), ('{outcome="rejected"}', t["rejected"]),
            ('{outcome="idle_closed"}', t["idle_closed"]),
            ('{outcome="shed_idle"}', t.get("shed_idle", 0)),
            ('{outcome="write_stalled"}', t.get("write_stalled", 0)),
            ('{outcome="close_stalled"}', t.get("close_stalled", 0))])
    metric("inflight", "gauge", "Resolutions in progress.", [("", stats["inflight"])])
    rl = stats["requestlist"]
    metric("inflight_max", "gauge", "The most resolutions in progress when one started.",
           [("", rl["max"])])
    metric("inflight_full_total", "counter",
           "Resolutions not started: max-inflight were in progress.", [("", rl["exceeded"])])
    shape = stats.get("query_shape")
    if shape is not None:            # extended-statistics
        metric("query_flags_total", "counter", "Queries with each header flag set.",
               [(f'{{flag="{f}"}}', n) for f, n in shape["flags"].items()])
        metric("query_opcodes_total", "counter", "Queries, by opcode.",
               [(f'{{opcode="{o}"}}', n) for o, n in shape["opcodes"].items()])
        metric("query_classes_total", "counter", "Queries, by question class.",
               [(f'{{class="{c}"}}', n) for c, n in shape["classes"].items()])
        metric("query_edns_total", "counter", "Queries with EDNS, and with DO set.",
               [('{edns="present"}', shape["edns_present"]), ('{edns="do"}', shape["edns_do"])])
        metric("query_ipv6_total", "counter", "Queries from IPv6 clients.",
               [("", shape["ipv6"])])
    sc = stats.get("shared_cache")
    if sc is not None:
        metric("shared_cache_events_total", "counter",
               "Shared (Redis) cache look-ups, their outcomes, writes and failures, by event.",
               [(f'{{event="{k}"}}', n) for k, n in sorted(sc.items())])
    rates = stats.get("hit_rates", {})
    metric("cache_hit_ratio", "gauge",
           "Share of client queries answered by the local cache, and of shared cache "
           "look-ups answered by it.", [(f'{{cache="{k}"}}', float(v))
                                        for k, v in sorted(rates.items())])
    per = stats.get("per_worker", [])
    if per:
        metric("worker_cache_hit_ratio", "gauge", "The hit ratios of each worker.",
               [(f'{{worker="{i}",cache="{k}"}}', float(v)) for i, w in enumerate(per)
                for k, v in sorted(w["hit_rates"].items())])
    _render_encrypted(stats, metric)
    _render_tls_upstream(stats, metric)
    _render_rpz(stats, metric)
    _render_service(stats, metric)
    _render_gc(stats, metric)
    return "\n".join(lines) + ("\n# EOF\n" if openmetrics else "\n")


def _histogram(lines: list[str], name: str, help_: str, bounds: list[float],
               counts: list[int], total_seconds: float) -> None:
    """A histogram family: cumulative buckets at ``bounds`` (then +Inf), sum and count."""
    samples, total = [], 0
    for b, n in zip(bounds, counts):
        total += n
        samples.append((f'_bucket{{le="{b:g}"}}', total))
    total += counts[-1]
    samples.append(('_bucket{le="+Inf"}', total))
    samples.append(("_sum", float(total_seconds)))
    samples.append(("_count", total))
    lines.append(f"# HELP {P}{name} {help_}")
    lines.append(f"# TYPE {P}{name} histogram")
    for suffix, v in samples:
        lines.append(f"{P}{name}{suffix} {v:g}" if isinstance(v, float)
                     else f"{P}{name}{suffix} {v}")


# ---- service series: DNSSEC outcomes, uptime, build, process ----------------------------------
def _render_service(stats: dict, metric) -> None:
    e = stats["engine"]
    metric("dnssec_validations_total", "counter",
           "Resolutions that ended under DNSSEC validation, by outcome (RFC 4035 4.3).",
           [(f'{{outcome="{o}"}}', e.get(f"dnssec_{o}", 0))
            for o in ("secure", "insecure", "bogus", "indeterminate")])
    v = stats.get("dnssec", {})
    metric("dnssec_rrsets_bogus_total", "counter",
           "Rrsets the validator found bogus: an answer, authority or DS rrset whose "
           "signatures did not verify, or that had none in a signed zone.",
           [("", v.get("rrsets_bogus", 0))])
    metric("aggressive_answers_total", "counter",
           "Answers made from validated NSEC/NSEC3 ranges and wildcards in the cache "
           "(RFC 8198) without asking the authorities, by rcode.",
           [('{rcode="NOERROR"}', v.get("aggressive_noerror", 0)),
            ('{rcode="NXDOMAIN"}', v.get("aggressive_nxdomain", 0))])
    metric("uptime_seconds", "gauge", "Seconds since the daemon started serving.",
           [("", float(stats["uptime"]))])
    b = stats.get("build") or build_info()
    metric("build_info", "gauge", "The daemon's version and Python (always 1).",
           [(f'{{version="{b["version"]}",python="{b["python"]}",'
             f'implementation="{b["implementation"]}"}}', 1)])
    proc = stats.get("process")
    if not proc:
        return
    metric("cpu_seconds_total", "counter", "User and system CPU time spent, seconds.",
           [("", float(proc["cpu_seconds"]))], prefix="process_")
    metric("resident_memory_bytes", "gauge", "Resident memory, bytes.",
           [("", proc["resident_memory"])], prefix="process_")
    metric("virtual_memory_bytes", "gauge", "Virtual memory, bytes.",
           [("", proc["virtual_memory"])], prefix="process_")
    metric("open_fds", "gauge", "Open file descriptors.", [("", proc["open_fds"])],
           prefix="process_")
    metric("max_fds", "gauge", "The descriptor limit (soft).", [("", proc["max_fds"])],
           prefix="process_")
    metric("start_time_seconds", "gauge", "Start time since the Unix epoch, seconds.",
           [("", float(proc["start_time"]))], prefix="process_")


def _render_gc(stats: dict, metric) -> None:
    """The cyclic collector's passes by generation, their time, and what it tracks."""
    g = stats.get("gc")
    if not g:
        return
    metric("gc_collections_total", "counter", "Cyclic collector passes, by generation.",
           [(f'{{generation="{i}"}}', n) for i, n in enumerate(g["passes"])])
    metric("gc_seconds_total", "counter",
           "Seconds the cyclic collector's passes stopped the loop, by generation.",
           [(f'{{generation="{i}"}}', float(t)) for i, t in enumerate(g["seconds"])])
    metric("gc_tracked_objects", "gauge",
           "Objects the cyclic collector tracks (beyond the frozen start-up set).",
           [("", g["tracked"])])


def build_info() -> dict:
    from corenet import __version__

    return {"version": __version__, "python": platform.python_version(),
            "implementation": platform.python_implementation()}


class GCPasses:
    """The cyclic collector's passes in this process, per generation: how many, how long
    in all and the longest (from ``gc.callbacks``): a pass stops the loop while it walks
    the objects it tracks."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        g = info["generation"]
        self.count[g] += 1
        self.seconds[g] += took
        self.longest[g] = max(self.longest[g], took)


_gc_passes = GCPasses()


def watch_gc() -> None:
    """Starts timing the collector's passes (once per process)."""
    if _gc_passes not in gc.callbacks:
        gc.callbacks.append(_gc_passes)


def gc_stats() -> dict:
    """The collector's passes per generation (see GCPasses; zeros until ``watch_gc``) and
    how many objects it tracks outside the frozen start-up set (counting them walks the
    collector's lists once)."""
    return {"passes": list(_gc_passes.count),
            "seconds": list(_gc_passes.seconds),
            "longest_ms": [t * 1000 for t in _gc_passes.longest],
            "tracked": len(gc.get_objects())}


def process_stats() -> dict:
    """This process's CPU, memory and descriptors, from /proc (Linux), with the names of
    Prometheus' process collector."""
    ticks = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open("/proc/stat") as f:
        boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    return {"cpu_seconds": (int(fields[11]) + int(fields[12])) / ticks,
            "virtual_memory": int(fields[20]), "resident_memory": int(fields[21]) * page,
            "start_time": boot + int(fields[19]) / ticks,
            "open_fds": len(os.listdir("/proc/self/fd")),
            "max_fds": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}


#: The encrypted listeners' figures in ``stats``: DNS over TLS, over HTTPS, over plain HTTP.
ENCRYPTED_LISTENERS = ("tls", "https", "http")

#: The DoH listeners' defences (``resolver.daemon.doh_listener``), by their figures' keys.
DOH_DEFENCES = ("hpack_budget", "write_stalled", "close_stalled", "cancelled",
                "protocol_error", "reset_flood", "throttled")


def _render_encrypted(stats: dict, metric) -> None:
    """TLS handshakes by outcome and DoH responses by HTTP status, per listener kind."""
    hs, http, defences = [], [], []
    for name in ENCRYPTED_LISTENERS:
        figures = stats.get(name)
        if not figures:
            continue
        if "handshakes" in figures:
            for outcome, key in (("done", "handshakes"), ("resumed", "resumed"),
                                 ("timeout", "handshake_timeout"),
                                 ("failed", "handshake_failed"),
                                 ("refused", "handshake_refused"),
                                 ("idle", "idle_before_query")):
                hs.append((f'{{listener="{name}",outcome="{outcome}"}}', figures[key]))
        for key, n in sorted(figures.items()):
            if key.startswith("status_"):
                http.append((f'{{listener="{name}",status="{key[7:]}"}}', n))
            elif key in DOH_DEFENCES:
                defences.append((f'{{listener="{name}",defence="{key}"}}', n))
    if hs:
        metric("tls_handshakes_total", "counter", "TLS handshakes, by listener and outcome.", hs)
    if http:
        metric("doh_responses_total", "counter",
               "DNS-over-HTTP(S) responses, by listener and HTTP status.", http)
    if defences:
        metric("doh_defences_total", "counter",
               "DNS-over-HTTP(S) defences applied, by listener: hpack_budget (connection ended "
               "for HPACK work), write_stalled (output not drained in time), close_stalled "
               "(a closing connection not drained in time), cancelled (a stream reset before "
               "its answer), protocol_error (connection ended by an HTTP/2 error), "
               "reset_flood (connection ended with most of its streams reset unanswered), "
               "throttled (a connection refused at its accept: its address had too many "
               "connections ended for abuse).", defences)


def _render_tls_upstream(stats: dict, metric) -> None:
    """Forward zones' servers over TLS: connections, queries and failures by cause."""
    t = stats.get("tls_upstream")
    if not t:
        return
    metric("tls_upstream_connections_open", "gauge",
           "Connections to forwarders over TLS open now.", [("", t["open"])])
    metric("tls_upstream_connections_total", "counter",
           "Connections to forwarders over TLS opened (handshake done).",
           [("", t["connections"])])
    metric("tls_upstream_queries_total", "counter", "Queries sent to forwarders over TLS.",
           [("", t["queries"])])
    metric("tls_upstream_failures_total", "counter",
           "Failures asking forwarders over TLS, by cause (connect, handshake, verify: the "
           "certificate or its name, timeout, closed: the connection ended with queries "
           "outstanding, full: too many outstanding).",
           [(f'{{cause="{k[7:]}"}}', n) for k, n in sorted(t.items())
            if k.startswith("failed_")])


def _render_rpz(stats: dict, metric) -> None:
    """Response policy zones: matches by zone and action, each zone's triggers and serial,
    transfers."""
    r = stats.get("rpz")
    if not r:
        return
    metric("rpz_matches_total", "counter",
           "Queries a response policy zone matched, by zone and action (disabled: matched "
           "in a zone whose action is overridden to disabled, not applied).",
           [(f'{{zone="{z}",action="{a}"}}', n) for z, acts in sorted(r["matches"].items())
            for a, n in sorted(acts.items())])
    zones = sorted(r["zones"].items())
    metric("rpz_zone_triggers", "gauge", "Triggers of each response policy zone loaded.",
           [(f'{{zone="{z}"}}', v["triggers"]) for z, v in zones])
    metric("rpz_zone_serial", "gauge", "SOA serial of each response policy zone loaded.",
           [(f'{{zone="{z}"}}', v["serial"]) for z, v in zones if v["serial"] is not None])
    metric("rpz_loads_total", "counter",
           "Loads of response policy zones, by zone and outcome (changed: a transfer that "
           "brought a new serial; failed: a transfer or zone file that failed).",
           [(f'{{zone="{z}",outcome="{k}"}}', v[key]) for z, v in zones
            for k, key in (("changed", "transfers"), ("failed", "failures"))])


class MetricsServer:
    """A minimal HTTP/1.0-style server: GET /metrics answers, everything else 404/405.
    Bounded by ``limits``: connections at once (``metrics_max_connections``, past it closed
    at once), the request head's size, and the time for the request to arrive and for the
    response to be taken (``metrics_timeout`` each, past it aborted)."""

    def __init__(self, address: tuple[str, int],
                 stats: Callable[[], dict] | Callable[[], Awaitable[dict]],
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.address = address
        self.stats = stats
        self.limits = limits
        self.server: asyncio.AbstractServer | None = None
        self.cap = ConnectionCap("metrics", "metrics-max-connections",
                                 limits.metrics_max_connections)

    async def start(self) -> tuple[str, int]:
        host, port = self.address
        self.server = await asyncio.start_server(self._client, host, port,
                                                 limit=self.limits.metrics_max_request_head,
                                                 reuse_address=True)
        bound = self.server.sockets[0].getsockname()[:2]
        log.info("metrics on http://%s:%d/metrics", *bound)
        return bound

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.cap.serve(writer, lambda: self._answer(reader, writer))

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            response = await self._response(reader)
            if response is not None:
                writer.write(response)
                await asyncio.wait_for(writer.drain(), self.limits.metrics_timeout)
        except (ConnectionError, asyncio.TimeoutError):
            writer.transport.abort()

    async def _response(self, reader: asyncio.StreamReader) -> bytes | None:
        """The response to the request ``reader`` brings: head and body, or None when no
        request came whole within the limits."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                          self.limits.metrics_timeout)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
            return None
        om = False
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) != 3:
            status, body = "400 Bad Request", b"bad request\n"
        elif parts[0] != b"GET":
            status, body = "405 Method Not Allowed", b"GET only\n"
        elif parts[1].split(b"?")[0] != b"/metrics":
            status, body = "404 Not Found", b"try /metrics\n"
        else:
            s = self.stats()
            if asyncio.iscoroutine(s):
                s = await s
            om = b"application/openmetrics-text" in head.lower()
            status, body = "200 OK", render(s, openmetrics=om).encode()
        ctype = ((OPENMETRICS_TYPE if om else TEXT_TYPE) if status.startswith("200")
                 else "text/plain")
        return (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None


#: The figures of ``stats`` that are gauges (what is, not what was counted): ``since``
#: shows them as they are. ``max`` is the longest list of misses in flight since the start.
GAUGES = frozenset({"cache", "memory", "inflight", "uptime", "process", "build", "gc",
                    "hit_rates", "latency_buckets", "recursion_bounds", "udp_iterations",
                    "workers", "workers_answering", "open", "tls_upstream", "max"})


def hit_rates(stats: dict) -> dict:
    """The share of client queries answered from the local cache and, with a shared
    cache, the share of its look-ups it answered (of one worker's stats, or merged)."""
    e = stats["engine"]
    out = {"local": e["cache_hits"] / e["client_queries"] if e["client_queries"] else 0.0}
    sc = stats.get("shared_cache")
    if sc is not None:
        out["shared"] = sc["hits"] / sc["lookups"] if sc["lookups"] else 0.0
    return out


def since(stats: dict, base: dict | None) -> dict:
    """``stats`` with every counter less its value in ``base`` (the figures of the last
    ``stats`` that reset): what ``corenet-resolver stats`` shows, as unbound-control's does.
    The counters themselves never go back, so ``/metrics`` stays monotonic."""
    if base is None:
        return stats

    def sub(a: Any, b: Any) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            return {k: v if k in GAUGES else sub(v, b.get(k)) for k, v in a.items()}
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            return [sub(x, y) for x, y in zip(a, b)]
        if (isinstance(a, (int, float)) and not isinstance(a, bool)
                and isinstance(b, (int, float))):
            return a - b
        return a
    out = sub(stats, base)
    if "uptime" in stats and "uptime" in base:
        out["elapsed"] = stats["uptime"] - base["uptime"]
    if "engine" in out:
        out["hit_rates"] = hit_rates(out)
    return out
