"""The daemon's figures as Unbound's ``stats`` prints them: ``key=value`` lines with
Unbound's names (``thread0.num.queries``, ``total.num.cachehits``, ``time.up``,
``histogram.*``, ``num.query.type.A``, ``num.answer.rcode.NOERROR``,
``num.rpz.action.rpz-nxdomain`` ...), so the tools written for ``unbound-control stats``
(munin's plugin, unbound_exporter, collectd, zabbix templates) read them. Pure: a
``Server.stats()`` dict (one worker's, or the supervisor's merge with its ``per_worker``
list) in, text out.

Only the names whose figure the daemon counts are printed; COMPATIBILITY.md lists those of
Unbound it has not, and why.
"""
from __future__ import annotations

import time

import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

#: The rcodes Unbound prints even at zero, by its names (NOTIMP is ``NOTIMPL`` there).
RCODES_ALWAYS = ("NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMPL", "REFUSED")

#: Unbound's names of the response policy's actions, in the order it prints them, each once
#: non-zero (``statistics-inhibit-zero``'s default); no action of the daemon is
#: ``rpz-invalid`` (Unbound's for a rule it cannot use).
RPZ_ACTIONS = ("rpz-nxdomain", "rpz-nodata", "rpz-passthru", "rpz-drop", "rpz-tcp-only",
               "rpz-invalid", "rpz-local-data", "rpz-disabled", "rpz-cname-override")

#: The histogram's top, for answers slower than the daemon's last bucket bound: Unbound's
#: own last bound.
HISTOGRAM_TOP = 524288.0

#: The transports whose queries Unbound counts in ``num.query.tcp`` (every stream), in
#: ``num.query.tls`` (over TLS) and in ``num.query.https`` (DNS over HTTP).
STREAM = ("tcp", "tls", "https", "http")
TLS = ("tls", "https")
HTTP = ("https", "http")


def render(stats: dict, now: float | None = None, extended: bool | None = None) -> str:
    """The ``key=value`` lines for ``stats``, each ending in a newline: the threads', the
    total's and the times alone, as Unbound prints them without ``extended-statistics``;
    with it (``extended``; None: whether ``stats`` holds the ``query_shape`` that setting
    counts) the memory, the histogram and the rest too."""
    out: list[tuple[str, object]] = []
    e = stats["engine"]
    workers = stats.get("per_worker") or [None]
    for i, w in enumerate(workers):
        out += _thread(f"thread{i}", stats, w)
    out += _thread("total", stats, None)
    up = float(stats["uptime"])
    out += [("time.now", _sec(time.time() if now is None else now)),
            ("time.up", _sec(up)),
            ("time.elapsed", _sec(float(stats.get("elapsed", up))))]
    if not ("query_shape" in stats if extended is None else extended):
        return "".join(f"{k}={v}\n" for k, v in out)
    cache = stats["cache"]
    out += [("mem.cache.rrset", cache["rrset_bytes"]),
            ("mem.cache.message", cache["message_bytes"])]
    out += _histogram(stats)
    # the types, classes and opcodes each once non-zero (``statistics-inhibit-zero``)
    for t, n in sorted(stats["qtypes"].items(), key=lambda kv: int(kv[0])):
        if n:
            out.append((f"num.query.type.{_qtype(int(t))}", n))
    shape = stats.get("query_shape")
    if shape is not None:
        out += [(f"num.query.class.{_qclass(c)}", n) for c, n in shape["classes"].items()
                if n]
        out += [(f"num.query.opcode.{_opcode(int(o))}", n)
                for o, n in shape["opcodes"].items() if n]
    by_transport: dict[str, int] = {}
    by_rcode: dict[str, int] = {name: 0 for name in RCODES_ALWAYS}
    for key, n in stats["queries"].items():
        transport, rcode = key.split(":")
        by_transport[transport] = by_transport.get(transport, 0) + n
        name = _rcode(int(rcode))
        by_rcode[name] = by_rcode.get(name, 0) + n

    def among(names) -> int:
        return sum(by_transport.get(t, 0) for t in names)
    out += [("num.query.tcp", among(STREAM)),
            ("num.query.tcpout", e["upstream_tcp"]),
            ("num.query.udpout", e["upstream_udp"]),
            ("num.query.tls", among(TLS)),
            ("num.query.https", among(HTTP))]
    tls = stats.get("tls")
    if tls and "resumed" in tls:
        out.append(("num.query.tls.resume", tls["resumed"]))
    if shape is not None:
        out.append(("num.query.ipv6", shape["ipv6"]))
        out += [(f"num.query.flags.{name}", n) for name, n in shape["flags"].items()]
        out += [("num.query.edns.present", shape["edns_present"]),
                ("num.query.edns.DO", shape["edns_do"])]
    v = stats.get("dnssec", {})
    out += [(f"num.answer.rcode.{name}", n) for name, n in by_rcode.items()
            if n or name in RCODES_ALWAYS]
    if stats.get("nodata"):                 # printed once non-zero, as Unbound's
        out.append(("num.answer.rcode.nodata", stats["nodata"]))
    out += [("num.query.ratelimited", stats["dropped"].get("ratelimit", 0)),
            ("num.answer.secure", e.get("dnssec_secure", 0)),
            ("num.answer.bogus", e.get("dnssec_bogus", 0)),
            ("num.rrset.bogus", v.get("rrsets_bogus", 0)),
            ("num.query.aggressive.NOERROR", v.get("aggressive_noerror", 0)),
            ("num.query.aggressive.NXDOMAIN", v.get("aggressive_nxdomain", 0)),
            ("unwanted.queries", stats["refused_acl"] + stats["dropped"].get("acl", 0)),
            ("unwanted.replies", e["dropped_mismatched"]),
            ("msg.cache.count", cache["messages"]),
            ("rrset.cache.count", cache["rrsets"]),
            ("infra.cache.count", cache["servers"]),
            ("key.cache.count", cache["key_zones"])]
    actions = stats.get("rpz", {}).get("actions", {})
    out += [(f"num.rpz.action.{name}", actions[name]) for name in RPZ_ACTIONS
            if actions.get(name)]
    return "".join(f"{k}={v}\n" for k, v in out)


def _thread(prefix: str, stats: dict, worker: dict | None) -> list[tuple[str, object]]:
    """One thread's (a worker's own figures, its ``per_worker`` entry's ``thread``) or the
    total's ``num.*``, ``requestlist.*``, ``recursion.time.*`` and ``tcpusage``."""
    s = stats if worker is None else worker.get("thread", stats)
    e = s["engine"]
    queries, hits = e["client_queries"], e["cache_hits"]
    return [(f"{prefix}.num.queries", queries),
            (f"{prefix}.num.queries_ip_ratelimited", s["dropped"].get("ratelimit", 0)),
            (f"{prefix}.num.cachehits", hits), (f"{prefix}.num.cachemiss", queries - hits),
            (f"{prefix}.num.prefetch", e["prefetches"]),
            (f"{prefix}.num.expired", e["stale_answers"]),
            (f"{prefix}.num.recursivereplies", e["cache_misses"]),
            (f"{prefix}.requestlist.avg", _general(_list_average(s))),
            (f"{prefix}.requestlist.max", s["requestlist"]["max"]),
            (f"{prefix}.requestlist.overwritten", s["dropped"].get("jostled", 0)),
            (f"{prefix}.requestlist.exceeded", s["requestlist"]["exceeded"]),
            (f"{prefix}.requestlist.current.all", s["inflight"]),
            (f"{prefix}.requestlist.current.user", s["inflight"]),
            (f"{prefix}.recursion.time.avg", _sec(_average(s))),
            (f"{prefix}.recursion.time.median", _sec(_median(s))),
            (f"{prefix}.tcpusage", s["tcp"]["open"])]


#: What a worker's ``thread`` figures hold of its stats (:func:`thread_figures`): the
#: engine's counters ``stats`` prints per thread, and the rest whole
THREAD_ENGINE = ("client_queries", "cache_hits", "prefetches", "stale_answers",
                 "cache_misses")
THREAD_KEYS = ("dropped", "requestlist", "inflight", "recursion_counts", "recursion_sum",
               "latency_buckets")


def thread_figures(stats: dict) -> dict:
    """The figures of one worker's ``stats`` that its ``thread{N}.`` lines show."""
    return {"engine": {k: stats["engine"][k] for k in THREAD_ENGINE},
            "tcp": {"open": stats["tcp"]["open"]},
            **{k: stats[k] for k in THREAD_KEYS}}


def _average(stats: dict) -> float:
    n = sum(stats["recursion_counts"])
    return float(stats["recursion_sum"]) / n if n else 0.0


def _list_average(stats: dict) -> float:
    """The misses in flight when one more started, on average (Unbound's
    ``requestlist.avg``)."""
    r = stats["requestlist"]
    return r["sum"] / r["inserts"] if r["inserts"] else 0.0


def _buckets(stats: dict) -> list[tuple[float, float, int]]:
    """(lower bound, upper bound, count) of each bucket of the resolutions' times (the
    door's latency buckets; answers from the cache and local zones are not timed here, as
    Unbound's histogram times recursive replies alone)."""
    bounds = [0.0, *stats["latency_buckets"], HISTOGRAM_TOP]
    return [(bounds[i], bounds[i + 1], n) for i, n in enumerate(stats["recursion_counts"])]


def _median(stats: dict) -> float:
    """The median answer time, interpolated in its bucket as Unbound's is."""
    buckets = _buckets(stats)
    half = sum(n for _, _, n in buckets) / 2
    seen = 0
    for low, high, n in buckets:
        if n and seen + n >= half:
            return low + (high - low) * (half - seen) / n
        seen += n
    return 0.0


def _histogram(stats: dict) -> list[tuple[str, object]]:
    return [(f"histogram.{_bound(low)}.to.{_bound(high)}", n)
            for low, high, n in _buckets(stats)]


def _bound(seconds: float) -> str:
    """A bucket bound as Unbound names it: six digits of seconds, six of microseconds."""
    us = round(seconds * 1_000_000)
    return f"{us // 1_000_000:06d}.{us % 1_000_000:06d}"


def _sec(seconds: float) -> str:
    return f"{seconds:.6f}"


def _general(x: float) -> str:
    """A ratio as Unbound prints one (C's ``%g``)."""
    return f"{x:g}"


def _qclass(c: str) -> str:
    if c == "other":                      # the classes above 255, counted together
        return "other"
    try:
        return dns.rdataclass.to_text(int(c))
    except ValueError:
        return f"CLASS{c}"


def _opcode(n: int) -> str:
    name = dns.opcode.to_text(n)          # the number itself for an opcode with no name
    return f"OPCODE{n}" if name.isdigit() else name


def _qtype(n: int) -> str:
    if n == 0:                            # the types counted together (admission's OTHER)
        return "other"
    try:
        return dns.rdatatype.to_text(n)
    except ValueError:
        return f"TYPE{n}"


def _rcode(n: int) -> str:
    if n == dns.rcode.NOTIMP:
        return "NOTIMPL"
    try:
        return dns.rcode.to_text(dns.rcode.Rcode(n))
    except ValueError:
        return f"RCODE{n}"
