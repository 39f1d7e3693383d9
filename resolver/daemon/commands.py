"""The control commands of ``corenet-resolver``, by unbound-control's names: one entry each,
read by the command line's help and the corenet-resolver(8) man page.

``scope`` says how a daemon with several workers answers: "every worker" (each worker
applies it; the answer is given once, counts summed), "union of workers" (the workers'
answers merged into one), "per worker" (each worker's answer, under its number),
"supervisor" (the process that holds the control socket answers alone, or asks the workers
and sums) or "supervisor and every worker" (the supervisor applies it to itself too). The
supervisor and ``resolver.daemon.operations`` act on this field alone: it is the one place a
command's scope is written.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str     # unbound-control's name
    args: str     # synopsis of the arguments, e.g. "NAME TYPE"; "" for none
    doc: str      # one paragraph: what it does, what it prints
    scope: str    # how workers are involved: one of SCOPES
    stdin: bool = False   # reads a text from the standard input (unbound-control sends it)


#: The scopes a command may have (the module's docstring says what each means).
SCOPES = ("every worker", "union of workers", "per worker", "supervisor",
          "supervisor and every worker")


COMMANDS: tuple[Command, ...] = (
    Command("status", "", "Prints Unbound's lines (version, verbosity, threads: the "
            "workers, modules, uptime in seconds, options) then the listening addresses, "
            "whether DNSSEC validation is on and how full the cache is, and last "
            "``corenet-resolver (pid N) is running...``. Where nothing listens (the "
            "connection refused) prints ``corenet-resolver is stopped`` and exits 3, as "
            "unbound-control; exit 1 when the daemon cannot be reached otherwise.",
            "supervisor"),
    Command("stats", "", "Prints every figure counted since the last ``stats`` as "
            "Unbound's ``key=value`` lines (``total.num.queries=`` ...; --prometheus for "
            "Prometheus text, --json for JSON), then starts counting afresh, as unbound-control's "
            "does. Only what ``stats`` shows is reset: the counters themselves, and so "
            "``/metrics``, stay monotonic, as Prometheus needs.", "supervisor"),
    Command("stats_noreset", "", "As ``stats``, without starting afresh: the figures "
            "since the last ``stats`` (or since the start).", "supervisor"),
    Command("flush_stats", "", "Starts counting afresh what ``stats`` shows, as ``stats`` "
            "does, printing only ``ok``; the counters of ``/metrics`` stay monotonic.",
            "supervisor"),
    Command("reload", "", "Rereads the config file and applies it, the cache kept; every "
            "runtime change (local_data, forward_add, insecure_add, set_option ...) is "
            "dropped for the file's settings. Prints ``ok``; the settings that change only "
            "at a restart are named.", "supervisor"),
    Command("reload_keep_cache", "", "As ``reload`` (which keeps the cache here, where "
            "Unbound's ``reload`` empties it). Prints ``ok``.", "supervisor"),
    Command("fast_reload", "[+dpv]", "Unbound's ``fast_reload``: as ``reload``, which keeps "
            "the cache and never pauses the daemon here (``+p``, Unbound's no pause, is how "
            "it always runs); ``+d`` then drops the queries in flight, as "
            "``flush_requestlist``; ``+v`` prints ``start fast_reload`` before ``ok`` "
            "(Unbound's timings of its stages are not printed). An option Unbound does not "
            "know is refused in its words.", "supervisor"),
    Command("stop", "", "Stops the daemon gracefully (queries in flight are answered). "
            "Prints ``ok``.", "supervisor"),
    Command("verbosity", "N", "Sets the log verbosity on Unbound's scale: 0 errors, 1 "
            "operational, 2 detailed, 3-5 debugging, until the next reload. Prints ``ok``.",
            "supervisor and every worker"),
    Command("log_reopen", "", "Reopens the log file (after it was rotated). Prints ``ok``.",
            "supervisor and every worker"),
    Command("flush", "NAME", "Forgets every type of NAME (the shared cache's entries for "
            "it too). Prints what was flushed. (``flush_zone .`` forgets everything.)",
            "every worker"),
    Command("flush_zone", "NAME", "Forgets everything cached at or below NAME: answers, "
            "rrsets, negative entries and DNSSEC verdicts. Prints ``ok removed N rrsets, N "
            "messages and N key entries`` (the workers' caches summed).", "every worker"),
    Command("flush_type", "NAME TYPE", "Forgets the rrset and the answers of NAME with TYPE "
            "(a type it does not know: nothing, as Unbound). Prints ``ok``.", "every worker"),
    Command("flush_bogus", "", "Forgets every bogus verdict of DNSSEC validation and the "
            "failures it caused, so bogus data is fetched and validated again. Prints "
            "``ok removed N rrsets, N messages and N key entries``.", "every worker"),
    Command("flush_negative", "", "Forgets every negative answer (NXDOMAIN, NODATA) and "
            "remembered failure (SERVFAIL). Prints ``ok removed N rrsets, N messages and N "
            "key entries``.", "every worker"),
    Command("flush_infra", "all|IP", "Forgets what was learnt about every server (``all``) "
            "or one address: RTT, timeouts, down and lame marks, EDNS. Prints ``ok``.",
            "every worker"),
    Command("dump_infra", "", "Prints what is learnt of each authority server, as "
            "Unbound's: a line per address and zone, ``ADDR ZONE ttl N ping N var N rtt N "
            "rto N tA N tAAAA N tother N ednsknown N edns N delay N lame dnssec N rec N A N "
            "other N`` (the seconds left, the smoothed RTT and variance, the timeout they "
            "give and the one backed off, the timeouts, EDNS, a down server's wait for its "
            "next probe, the lame marks). A server is held once per address here: its zones "
            "are those it is known to serve (root hints, forward and stub zones, cached "
            "delegations, lame marks), each with the same figures. With several workers, "
            "each address and zone once, from the worker that heard from it last.",
            "union of workers"),
    Command("dump_requestlist", "", "Prints the resolutions in flight for clients, as "
            "Unbound's: a ``thread #N`` line and a header per worker, then one line each: "
            "number, type, class, name, seconds running, status.", "union of workers"),
    Command("flush_requestlist", "", "Drops every resolution in flight (their clients get "
            "no answer), as Unbound's. Prints ``ok``.", "every worker"),
    Command("ratelimit_list", "[+a]", "Prints the zones whose servers were sent their "
            "``ratelimit`` of queries this second, one per line as Unbound's: ``ZONE RATE "
            "limit LIMIT``; ``+a`` every zone counted this second. With several workers, "
            "each worker's (each counts its own).", "union of workers"),
    Command("ip_ratelimit_list", "[+a]", "Prints the clients at their ``ip-ratelimit`` of "
            "misses now, one per line as Unbound's: ``ADDRESS RATE limit LIMIT`` (a network "
            "as ``ADDRESS/LEN`` when ``ip-ratelimit-prefix-v4``/``-v6`` count clients by "
            "network); RATE is the misses of the last second as the client's token bucket "
            "has them. ``+a``: every client with a bucket. Empty with ``ip-ratelimit`` off. "
            "With several workers, each worker's (each counts its own).", "union of workers"),
    Command("dump_cache", "", "Prints the cached answers as text on stdout, each with its "
            "name, type, class, query variant, TTL left, DNSSEC status (secure or insecure) "
            "and rcode, and the message itself (base64). With several workers the "
            "dump is the union of their caches (an answer held by two workers once, with "
            "the longer TTL left).", "union of workers"),
    Command("load_cache", "", "Reads a ``dump_cache`` text from stdin into the cache of "
            "every worker, each entry with its DNSSEC status and TTL left; expired entries "
            "are skipped. A real Unbound's ``dump_cache`` text is read too: its rrsets into "
            "the rrset cache, its messages (those not bogus, whose rrsets are all there) into "
            "the message cache for plain, EDNS and DO queries. Prints ``ok``; a malformed "
            "line is an error naming its number and nothing is loaded.", "every worker",
            stdin=True),
    Command("lookup", "NAME", "Prints, as Unbound's, the servers that would be asked for "
            "NAME: the forward zone, else the deepest delegation the cache holds (its NS "
            "and address rrsets, ``;rrset`` lines and records) or a stub zone below it, "
            "the counts of names and addresses, then one line per address with what is "
            "learnt of it (rto, ttl, smoothed RTT and variance, timeouts, EDNS; ``not in "
            "infra cache.``). Per worker: each has its own cache and server facts.",
            "per worker"),
    Command("list_forwards", "", "Prints the forward zones as Unbound: name, ``IN "
            "forward`` (``+i`` when the zone is also domain-insecure) and the servers (host "
            "names, then addresses without ports), one zone per line.", "every worker"),
    Command("list_stubs", "", "Prints the root's hints and the stub zones as Unbound: name, "
            "``IN stub prime`` or ``noprime`` (``+i`` when domain-insecure) and the servers, "
            "one zone per line.", "every worker"),
    Command("list_local_zones", "", "Prints the local zones: name and type, one per line, "
            "with the transparent zone that local data outside every zone makes for its "
            "name.", "every worker"),
    Command("list_local_data", "", "Prints every record the local zones serve (the "
            "default zones' too), as Unbound: ``NAME<tab>TTL<tab>IN<tab>TYPE<tab>RDATA`` and "
            "an empty line after each.", "every worker"),
    Command("view_list_local_zones", "VIEW", "Prints the local zones of the view VIEW, as "
            "``list_local_zones`` (none for a view without zones of its own); for a view "
            "that is not configured, Unbound's ``no view with name: VIEW`` (as every view_ "
            "command).", "every worker"),
    Command("view_list_local_data", "VIEW", "Prints the local data of the view VIEW, as "
            "``list_local_data``.", "every worker"),
    Command("view_local_zone", "VIEW NAME TYPE", "Adds (or replaces) the local zone NAME of "
            "TYPE in the view VIEW until the next reload (a view without zones gets the "
            "default zones with it, unless view-first). Prints ``ok``.", "every worker"),
    Command("view_local_zone_remove", "VIEW NAME", "Removes the local zone NAME from the "
            "view VIEW until the next reload. Prints ``ok``.", "every worker"),
    Command("view_local_data", "VIEW RR...", "Adds the record to the local data of the view "
            "VIEW until the next reload. Prints ``ok``.", "every worker"),
    Command("view_local_data_remove", "VIEW NAME", "Removes the records of NAME from the "
            "local data of the view VIEW until the next reload. Prints ``ok``.",
            "every worker"),
    Command("view_local_datas", "VIEW", "Reads records from stdin, one per line, and adds "
            "them to the view VIEW, as ``local_datas``: ``added N datas``.", "every worker",
            stdin=True),
    Command("view_local_datas_remove", "VIEW", "Reads names from stdin, one per line, and "
            "removes their records from the view VIEW, as ``local_datas_remove``: ``removed N "
            "datas``.", "every worker", stdin=True),
    Command("local_zone", "NAME TYPE", "Adds (or replaces) the local zone NAME of TYPE "
            "(static, transparent, redirect, refuse, deny ...) until the next reload. "
            "Prints ``ok``.", "every worker"),
    Command("local_zone_remove", "NAME", "Removes the local zone NAME (and the local data "
            "declared in it) until the next reload. Prints ``ok``.", "every worker"),
    Command("local_data", "RR...", "Adds the record (zone-file line, ``NAME [TTL] [IN] "
            "TYPE RDATA``) to the local data until the next reload. Prints ``ok`` (also for "
            "``NAME TYPE`` with no data, as Unbound, which is logged and not kept).",
            "every worker"),
    Command("local_data_remove", "NAME", "Removes every local record of NAME until the "
            "next reload. Prints ``ok``.", "every worker"),
    Command("local_zones", "", "Reads lines ``NAME TYPE`` from stdin and adds (or "
            "replaces) each local zone, as ``local_zone``, until the next reload. Prints an "
            "``error for input line: LINE`` line for each line refused, then ``added N "
            "zones``; blank lines are skipped.", "every worker", stdin=True),
    Command("local_zones_remove", "", "Reads zone names from stdin, one per line, and "
            "removes each, as ``local_zone_remove``. Prints an error line for each line "
            "refused, then ``removed N zones``.", "every worker", stdin=True),
    Command("local_datas", "", "Reads records from stdin, one per line, and adds each, "
            "as ``local_data``. Prints ``error parsing local-data at line N 'LINE': WHY`` "
            "for each line refused, then ``added N datas``.", "every worker", stdin=True),
    Command("local_datas_remove", "", "Reads names from stdin, one per line, and removes "
            "their local records, as ``local_data_remove``. Prints an error line for each "
            "line refused, then ``removed N datas``.", "every worker", stdin=True),
    Command("forward", "[off | ADDR...]", "Without arguments prints the root's forwarders "
            "(the forward zone ``.``), or ``off (using root hints)``; ``off`` removes that "
            "zone; addresses (ADDR, ADDR@PORT) or host names make them the root's forwarders. "
            "Until the next reload; prints ``ok``.", "every worker"),
    Command("forward_add", "[+it] ZONE ADDR...", "Adds (or replaces) the forward zone ZONE "
            "with these servers (ADDR, ADDR@PORT, or a host name, resolved as "
            "``forward-host``'s) until the next reload; ``+i`` also makes "
            "ZONE a negative trust anchor (domain-insecure), ``+t`` asks them over TLS "
            "(each ADDR[@PORT]#AUTH-NAME). Prints ``ok``.", "every worker"),
    Command("forward_remove", "[+i] ZONE", "Removes the forward zone ZONE (``+i``: and its "
            "negative trust anchor) until the next reload. Prints ``ok``.", "every worker"),
    Command("stub_add", "[+ip] ZONE ADDR...", "Adds (or replaces) the stub zone ZONE with "
            "these authorities until the next reload; ``+i`` as for forward_add, ``+p`` "
            "primes it (stub-prime). Prints ``ok``.", "every worker"),
    Command("stub_remove", "[+i] ZONE", "Removes the stub zone ZONE until the next reload. "
            "Prints ``ok``.", "every worker"),
    Command("insecure_add", "ZONE", "Adds ZONE to the negative trust anchors "
            "(domain-insecure) until the next reload: data at and below it is treated as "
            "unsigned. Prints ``ok``.", "every worker"),
    Command("list_insecure", "", "Prints the negative trust anchors (domain-insecure), "
            "one per line.", "every worker"),
    Command("list_auth_zones", "", "Prints the response policy zones, as Unbound lists them "
            "with its authority zones (none of which is served here): ``NAME<tab>serial N``, "
            "or ``no serial`` before the zone is loaded.", "every worker"),
    Command("auth_zone_reload", "ZONE", "Reads the zone file of the response policy zone "
            "ZONE again and applies it (a zone without a file: nothing to read). Prints "
            "``ok``; ``error failed to read ZONE`` keeps the zone held.", "every worker"),
    Command("auth_zone_transfer", "ZONE", "Starts a transfer of the response policy zone "
            "ZONE from its primary now, rather than at its refresh timer. Prints ``ok``.",
            "every worker"),
    Command("rpz_disable", "ZONE", "Stops applying the response policy zone ZONE (it is "
            "kept loaded and fresh) until the config is read again. Prints ``ok``.",
            "every worker"),
    Command("rpz_enable", "ZONE", "Applies the response policy zone ZONE again after "
            "``rpz_disable``. Prints ``ok``.", "every worker"),
    Command("insecure_remove", "ZONE", "Removes ZONE from the negative trust anchors until "
            "the next reload. Prints ``ok``.", "every worker"),
    Command("get_option", "NAME", "Prints the value of the setting NAME (the config key, "
            "Unbound's name accepted, ``-`` or ``_``): ``yes``/``no``, a number, a text, "
            "or a list one item per line. A limit left unset (``cache-max-ttl``, "
            "``val-bogus-ttl``...) prints the value in force, its default, as Unbound "
            "prints it. Unbound's options without a setting of their own print what "
            "corenet does: ``do-udp``, ``minimal-responses``, ``edns-buffer-size``... the "
            "one value corenet behaves as, ``msg-cache-size`` and ``rrset-cache-size`` the "
            "one cache's size, ``port`` the first listener's, ``module-config`` the "
            "modules that run. Unbound's options in milliseconds (``tcp-idle-timeout``, "
            "``infra-cache-max-rtt``...) print milliseconds, as Unbound prints them; "
            "corenet's own names of those print seconds.", "every worker"),
    Command("set_option", "NAME: VALUE", "Sets the setting NAME to VALUE (TOML syntax, or a "
            "bare word as text; ``yes``/``no`` too) until the next reload; ``NAME VALUE``, "
            "without the colon, as Unbound takes it too; one word (``NAME:VALUE``) is refused, "
            "as Unbound refuses it. A setting that "
            "changes only at a restart is refused, naming it. Unbound's options in "
            "milliseconds (``tcp-idle-timeout``, ``jostle-timeout``...) take milliseconds "
            "under Unbound's name, as ``get_option`` prints them. Prints ``ok``.",
            "every worker"),
)

BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}
#: The commands that reload the config (each prints ``ok``, and names the settings that
#: change only at a restart)
RELOADS = ("reload", "reload_keep_cache", "fast_reload")


def usage() -> str:
    """Every command with its synopsis, for ``corenet-resolver help``."""
    import textwrap

    width = max(len(c.name) + 1 + len(c.args) for c in COMMANDS)
    return "\n".join(textwrap.fill(_first(c.doc), 100, initial_indent=" " * (width + 4),
                                    subsequent_indent=" " * (width + 4)).replace(
                          " " * (width + 4), f"  {(c.name + ' ' + c.args).strip():<{width}}  ", 1)
                      for c in COMMANDS)


def _first(doc: str) -> str:
    """The doc's first sentence."""
    end = doc.find(". ")
    return doc if end < 0 else doc[:end + 1]

assert all(c.scope in SCOPES for c in COMMANDS), [c.name for c in COMMANDS
                                                   if c.scope not in SCOPES]
