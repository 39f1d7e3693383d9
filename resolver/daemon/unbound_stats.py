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

#: Unbound's names of the query types below 256 it knows (the others print as ``TYPEn``;
#: the types from 256 up are counted together as ``other``): its own list, which is not
#: dnspython's (EID, NIMLOC, ATMA, SINK, TALINK; no NINFO, UNSPEC or NXNAME).
QTYPE_NAMES = {int(n): name for n, name in (pair.split(":") for pair in """
    1:A 2:NS 3:MD 4:MF 5:CNAME 6:SOA 7:MB 8:MG 9:MR 10:NULL 11:WKS 12:PTR 13:HINFO 14:MINFO
    15:MX 16:TXT 17:RP 18:AFSDB 19:X25 20:ISDN 21:RT 22:NSAP 23:NSAP-PTR 24:SIG 25:KEY
    26:PX 27:GPOS 28:AAAA 29:LOC 30:NXT 31:EID 32:NIMLOC 33:SRV 34:ATMA 35:NAPTR 36:KX
    37:CERT 38:A6 39:DNAME 40:SINK 41:OPT 42:APL 43:DS 44:SSHFP 45:IPSECKEY 46:RRSIG
    47:NSEC 48:DNSKEY 49:DHCID 50:NSEC3 51:NSEC3PARAM 52:TLSA 53:SMIMEA 55:HIP 58:TALINK
    59:CDS 60:CDNSKEY 61:OPENPGPKEY 62:CSYNC 63:ZONEMD 64:SVCB 65:HTTPS 99:SPF 104:NID
    105:L32 106:L64 107:LP 108:EUI48 109:EUI64 249:TKEY 250:TSIG 251:IXFR 252:AXFR
    253:MAILB 254:MAILA 255:ANY""".split())}
#: Unbound's names of the classes (others: ``CLASSn``; from 256 up: ``other``).
CLASS_NAMES = {1: "IN", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}
#: Unbound's names of the opcodes (others: ``OPCODEn``).
OPCODE_NAMES = {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE"}
#: Unbound's names of the rcodes of the header's four bits (others: ``RCODEn``; NOTIMP is
#: ``NOTIMPL`` there).
RCODE_NAMES = ("NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMPL", "REFUSED",
               "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE")
#: How many of them, NOERROR to REFUSED, Unbound prints even at zero.
RCODES_ALWAYS = 6

#: Unbound's names of the response policy's actions, in the order it prints them; no action
#: of the daemon is ``rpz-invalid`` (Unbound's for a rule it cannot use).
RPZ_ACTIONS = ("rpz-nxdomain", "rpz-nodata", "rpz-passthru", "rpz-drop", "rpz-tcp-only",
               "rpz-invalid", "rpz-local-data", "rpz-disabled", "rpz-cname-override")

#: The upper bound of the histogram's last bucket (the daemon's buckets are Unbound's,
#: ``admission.RECURSION_BOUNDS``), which takes any slower answer too, as Unbound's.
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
    counts) the memory, the histogram and the rest too. The types, classes, opcodes,
    rcodes and policy actions that counted nothing are left out unless ``stats`` says
    ``statistics_inhibit_zero`` is off (Unbound's ``statistics-inhibit-zero``): then every
    one Unbound has a line for is printed, at 0."""
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
    mem = stats["memory"]
    out += [("mem.cache.rrset", cache["rrset_bytes"]),
            ("mem.cache.message", cache["message_bytes"]),
            ("mem.mod.iterator", mem["iterator"]),
            ("mem.mod.validator", mem["validator"]),
            # the modules the daemon does not have, as Unbound prints one not loaded
            ("mem.mod.respip", 0),
            ("mem.mod.subnet", 0),
            ("mem.streamwait", mem["stream_wait"]),
            ("mem.http.query_buffer", mem["http_query_buffer"]),
            ("mem.http.response_buffer", mem["http_response_buffer"])]
    out += _histogram(stats)
    every = not stats.get("statistics_inhibit_zero", True)
    # the admission's qtype 0 holds the types above 255 its fast path counted
    qtypes, other = _numbered(stats["qtypes"], 256, zero_is_other=True)
    out += _lines("num.query.type.", qtypes, QTYPE_NAMES, "TYPE", every)
    if other or every:
        out.append(("num.query.type.other", other))
    shape = stats.get("query_shape")
    if shape is not None:
        classes, other = _numbered(shape["classes"], 256)
        out += _lines("num.query.class.", classes, CLASS_NAMES, "CLASS", every)
        if other or every:
            out.append(("num.query.class.other", other))
        opcodes, _ = _numbered(shape["opcodes"], 16)
        out += _lines("num.query.opcode.", opcodes, OPCODE_NAMES, "OPCODE", every)
    by_transport: dict[str, int] = {}
    by_rcode = [0] * 16
    for key, n in stats["queries"].items():
        transport, rcode = key.split(":")
        by_transport[transport] = by_transport.get(transport, 0) + n
        by_rcode[int(rcode) & 0x0F] += n          # the header's rcode, as Unbound counts

    def among(names) -> int:
        return sum(by_transport.get(t, 0) for t in names)
    out += [("num.query.tcp", among(STREAM)),
            ("num.query.tcpout", e["upstream_tcp"]),
            ("num.query.udpout", e["upstream_udp"]),
            ("num.query.tls", among(TLS)),
            ("num.query.https", among(HTTP))]
    out.append(("num.query.tls.resume", (stats.get("tls") or {}).get("resumed", 0)))
    # what Unbound counts of features the daemon does not have: auth-zone queries (up to
    # the authorities, down from the clients) and EDNS Client Subnet ones, always none
    out += [("num.query.authzone.up", 0), ("num.query.authzone.down", 0),
            ("num.query.subnet", 0), ("num.query.subnet_cache", 0)]
    if shape is not None:
        out.append(("num.query.ipv6", shape["ipv6"]))
        out += [(f"num.query.flags.{name}", n) for name, n in shape["flags"].items()]
        out += [("num.query.edns.present", shape["edns_present"]),
                ("num.query.edns.DO", shape["edns_do"])]
    v = stats.get("dnssec", {})
    out += _lines("num.answer.rcode.", by_rcode, dict(enumerate(RCODE_NAMES)), "RCODE",
                  every, always=RCODES_ALWAYS)
    if stats.get("nodata") or every:
        out.append(("num.answer.rcode.nodata", stats.get("nodata", 0)))
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
    out += [(f"num.rpz.action.{name}", actions.get(name, 0)) for name in RPZ_ACTIONS
            if actions.get(name) or every]
    return "".join(f"{k}={v}\n" for k, v in out)


def _numbered(counts: dict, below: int, zero_is_other: bool = False) -> tuple[list[int], int]:
    """Counts keyed by number (as decimal text, or ``other``) as Unbound keeps them: a list
    of the figures of 0 to ``below`` - 1, and the sum of the rest."""
    low, other = [0] * below, 0
    for k, n in counts.items():
        i = below if k == "other" else int(k)
        if i >= below or (zero_is_other and i == 0):
            other += n
        else:
            low[i] += n
    return low, other


def _lines(prefix: str, figures: list[int], names: dict, unnamed: str, every: bool,
           always: int = 0) -> list[tuple[str, int]]:
    """A line for each figure by Unbound's name of its number (``unnamed`` and the number
    for one it has no name for): those not zero, the first ``always``, or ``every`` one."""
    return [(f"{prefix}{names.get(i) or f'{unnamed}{i}'}", n) for i, n in enumerate(figures)
            if n or every or i < always]


def _thread(prefix: str, stats: dict, worker: dict | None) -> list[tuple[str, object]]:
    """One thread's (a worker's own figures, its ``per_worker`` entry's ``thread``) or the
    total's ``num.*``, ``requestlist.*``, ``recursion.time.*`` and ``tcpusage``."""
    s = stats if worker is None else worker.get("thread", stats)
    e = s["engine"]
    # Unbound's cache misses are the queries that needed a resolution; its hits the rest
    # (answers from the cache, the local zones, errors)
    queries, misses = e["client_queries"], e["cache_misses"]
    return [(f"{prefix}.num.queries", queries),
            (f"{prefix}.num.queries_ip_ratelimited", s["dropped"].get("ratelimit", 0)),
            (f"{prefix}.num.cachehits", queries - misses),
            (f"{prefix}.num.cachemiss", misses),
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
               "recursion_bounds")


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
    """(lower bound, upper bound, count) of each bucket of the resolutions' times
    (Unbound's buckets; answers from the cache and local zones are not timed here, as
    Unbound's histogram times recursive replies alone)."""
    bounds = [*stats["recursion_bounds"], HISTOGRAM_TOP]
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
