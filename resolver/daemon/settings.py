"""The daemon's settings, each declared once: its key, type, bounds, default, what it does,
the command-line flag it has (if any) and whether ``reload`` applies it.

The TOML file's conversion (``resolver.daemon.config``), the ``serve`` flags
(``resolver.daemon.cli``), ``Config``, the reference page ``docs/config.md``, the sample
config ``docs/corenet-resolver.toml`` and the man page ``corenet-resolver.toml(5)``
(``resolver.daemon.reference``) are all made from :data:`TABLE`.

A key is written with ``-`` in the file (``_`` is accepted too) and is Unbound's name for
the same thing where Unbound has one; where our key differs, Unbound's name is accepted as
another name for it.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any, Callable

from resolver.limits import DEFAULT as _LIMITS, MAX_SESSION_TICKETS, Limits
from resolver.daemon.values import (ConfigError, Address, TTL_MAX, number, size, boolean,
                                    nullable, optional, address, addresses, ports,
                                    access_controls, access_control_views, networks,
                                    avoided_networks,
                                    tag_names, access_control_tags, access_control_tag_actions,
                                    access_control_tag_datas, local_zone_tags,
                                    local_zone_overrides,
                                    existing_file, files,
                                    path_in_directory, text, octal_mode, log_level, user_name,
                                    dns64_prefix, trust_anchor_files, auto_trust_anchor_files,
                                    domains, ip_addresses, zone_rates, cachedb_backend, url_path,
                                    cipher_list, ca_bundle, connection_limits, nsid)
from resolver.daemon.zone_tables import zone_tables


# ---- converters that need the zones or the limits -----------------------------------------
def rpz_tables(value: Any, what: str) -> tuple:
    """The ``rpz`` setting: ``[[rpz]]`` tables (``resolver.daemon.rpz_feed``)."""
    from resolver.daemon.rpz_feed import rpz_sources

    try:
        return rpz_sources(value)
    except ValueError as e:
        raise ConfigError(str(e)) from None


rpz_tables.zone = True


def limits_table(value: Any, what: str) -> Limits:
    if isinstance(value, Limits):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"{what}: expected a table of limits, got {value!r}")
    values = {}
    for key, raw in value.items():
        name = key.replace("-", "_")
        if name not in LIMITS:
            raise ConfigError(f"{what}: unknown limit {key!r}")
        values[name] = LIMITS[name].convert(raw, f"limits.{name}")
    lim = _LIMITS.replace(**values)
    check_limits(lim)
    return lim


def check_limits(lim: Limits) -> None:
    """What the limits must be together."""
    if lim.min_ttl > lim.max_ttl:
        raise ConfigError(f"cache-min-ttl: {lim.min_ttl} is above cache-max-ttl {lim.max_ttl}")
    if lim.min_rto > lim.max_rto:
        raise ConfigError(f"limits.min_rto: {lim.min_rto} is above max_rto {lim.max_rto}")
    if lim.dnssec_sig_skew_min > lim.dnssec_sig_skew_max:
        raise ConfigError(f"val-sig-skew-min: {lim.dnssec_sig_skew_min} is above "
                          f"val-sig-skew-max {lim.dnssec_sig_skew_max}")


# ---- the table's rows -------------------------------------------------------------------------
@dataclass(frozen=True)
class Flag:
    """How a setting appears on ``serve``'s command line: ``--KEY METAVAR`` (``repeat``:
    given once per item), or a switch: ``form="both"`` for ``--KEY``/``--no-KEY``,
    ``form="no"`` for ``--no-KEY`` alone (it sets false)."""
    metavar: str | None
    help: str
    repeat: bool = False
    form: str | None = None
    names: tuple[str, ...] = ()      # further spellings of the flag
    dest: str | None = None          # the attribute argparse gives it, when not the name's


@dataclass(frozen=True)
class Setting:
    #: The attribute of ``Config`` (the file's key is this with ``-``).
    name: str
    #: The attribute's type, as an annotation.
    type: str
    default: Any
    #: (raw value, name for errors) -> checked value; raises ConfigError.
    convert: Callable[[Any, str], Any]
    doc: str = ""
    flag: Flag | None = None
    #: True when only a restart applies a change; ``reload`` applies the others.
    restart: bool = False
    #: Unbound's name for it, where it differs from the key (accepted in the file too).
    unbound: str | None = None
    #: Other names accepted in the file and as overrides.
    aliases: tuple[str, ...] = ()
    #: The field of ``resolver.limits.Limits`` it sets, if any.
    limit: str | None = None
    #: The attribute of the daemon's ``resolver.Resolver`` it sets, if any: set once the
    #: engine is made, and again at each reload unless ``restart``.
    engine: str | None = None
    #: Why the default is what it is, for a bound a client can push against.
    reason: str | None = None
    #: A value shown in the sample config where the default (unset) says nothing.
    example: str | None = None
    section: str = ""

    @property
    def key(self) -> str:
        return self.name.replace("_", "-")


def section(title: str, *rows: Setting) -> tuple[Setting, ...]:
    return tuple(Setting(**{**{f.name: getattr(r, f.name) for f in fields(r)},
                            "section": title}) for r in rows)


TABLE: tuple[Setting, ...] = (*section(
    "where it serves and whom",
    Setting("listen", 'tuple[Address, ...]', (("127.0.0.1", 53), ("::1", 53)),
            addresses(53, at_least_one=True),
            aliases=("interface",),
            flag=Flag("ADDR:PORT", "address to serve on, UDP and TCP (repeatable)", repeat=True),
            restart=True,
            doc="Addresses to serve DNS on (UDP and TCP)."),
    Setting("ip_freebind", 'bool', False, boolean,
            flag=Flag(None, "bind listening addresses not (yet) on this host (IP_FREEBIND)",
                      form="both"),
            restart=True,
            doc="Every listening socket (``listen``, ``tls-listen``, ``https-listen``, "
                "``http-listen``) may be bound to an address this host does not have yet "
                "(Unbound's ``ip-freebind``, Linux's IP_FREEBIND): the daemon starts before "
                "the interface that will carry the address is up, and serves on it once it "
                "is."),
    Setting("ip_transparent", 'bool', False, boolean,
            flag=Flag(None, "bind any address, for traffic redirected here (IP_TRANSPARENT)",
                      form="both"),
            restart=True,
            doc="Every listening socket may be bound to any address, on this host or not "
                "(Unbound's ``ip-transparent``, Linux's IP_TRANSPARENT), as traffic a "
                "firewall's TPROXY rule sends here needs. The kernel asks for CAP_NET_ADMIN: "
                "the daemon sets it while it is still root."),
    Setting("so_rcvbuf", 'int', 4 * 1024 * 1024, size(0, 1024 ** 3),
            flag=Flag("BYTES", "receive buffer of each UDP listening socket (0: the "
                      "system's)"),
            restart=True,
            doc="The receive buffer of each UDP listening socket (Unbound's ``so-rcvbuf``; "
                "``4m`` is read too): a burst of queries that comes while the worker is "
                "busy waits there rather than being dropped by the kernel. With "
                "CAP_NET_ADMIN (root has it; a container's root may not) the daemon forces "
                "it past ``net.core.rmem_max`` before it drops root (as Unbound does), else "
                "it asks within it and says so once when it got less. 0: the system's."),
    Setting("so_sndbuf", 'int', 0, size(0, 1024 ** 3),
            flag=Flag("BYTES", "send buffer of each UDP listening socket (0: the system's)"),
            restart=True,
            doc="The send buffer of each UDP listening socket (Unbound's ``so-sndbuf``), "
                "forced past ``net.core.wmem_max`` as ``so-rcvbuf`` is; 0, the default: "
                "the system's."),
    Setting("proxy_protocol_port", 'tuple[int, ...]', (), ports,
            flag=Flag("PORT", "a port of the listeners whose clients are a proxy sending "
                      "PROXY v2 headers (repeatable)", repeat=True),
            restart=True,
            example="[5300]",
            doc="Ports of ``listen``, ``tls-listen``, ``https-listen`` or ``http-listen`` "
                "whose clients are proxies (dnsdist, HAProxy) that put a PROXY protocol "
                "version 2 header before each UDP datagram and at the start of each TCP "
                "connection (Unbound's ``proxy-protocol-port``); every listener on such a "
                "port reads it, DNS over TLS and HTTPS at the start of the decrypted stream, "
                "after the handshake (as dnsdist sends it and Unbound reads it). The ACLs, "
                "rate limits, per-client budgets and connection caps and the logs see the "
                "client the header names; a LOCAL header (a health "
                "check) stands for the proxy itself. The ACL looks at the proxy's own "
                "address first, as Unbound's does: a proxy it refuses or denies is refused "
                "or dropped whatever client it names, so the proxies must be allowed too. "
                "A datagram or connection without a "
                "valid header, or ending within it, is dropped and counted "
                "(``proxy_signature``, ``proxy_truncated``, ...: see ``stats``)."),
    Setting("allow", 'tuple[Any, ...]',
            (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")), networks,
            flag=Flag("CIDR", "clients allowed (repeatable)", repeat=True),
            doc="Clients allowed to query (networks); everyone else gets REFUSED."),
    Setting("allow_snoop", 'tuple[Any, ...]', (), networks,
            flag=Flag("CIDR", "clients that may also ask with RD clear (answered from the "
                      "cache)", repeat=True),
            doc="Clients that may also ask with RD clear, answered from the cache only "
                "(Unbound's ``allow_snoop``); everyone else gets REFUSED for such a query "
                "(local zones still answer it), so what other clients asked cannot be read out "
                "of the cache. They may ask recursive queries too."),
    Setting("access_control", 'tuple[Any, ...]', (), access_controls,
            flag=Flag("\"NETBLOCK ACTION\"", "Unbound's access-control (repeatable)",
                      repeat=True),
            example='["10.0.0.0/8 allow", "10.9.0.0/16 refuse", "192.0.2.0/24 allow_snoop"]',
            doc="Unbound's ``access-control``, beside ``allow`` and ``allow-snoop``: each entry "
                "a network and an action, ``allow``, ``allow_setrd`` (a query with RD clear "
                "that no local zone answers is taken as if RD were set), ``allow_snoop`` (may "
                "also ask with RD clear), ``refuse`` (REFUSED), ``deny`` (queries dropped, "
                "counted as the drop reason ``acl``; a TCP or TLS connection is closed), "
                "``refuse_non_local`` "
                "or ``deny_non_local`` (only local zones and local data answer; the other "
                "queries are REFUSED or dropped); for a client, the longest prefix holding "
                "its address among these and the two lists decides (so a ``refuse`` carves "
                "an exception out of an allowed network), and a client none holds gets "
                "REFUSED, as in Unbound."),
    Setting("access_control_view", 'tuple[Any, ...]', (), access_control_views,
            flag=Flag("\"NETBLOCK VIEW\"", "Unbound's access-control-view (repeatable)",
                      repeat=True),
            example='["10.0.0.0/8 inside"]',
            doc="Unbound's ``access-control-view``: the clients of a network get the local "
                "zones of a ``[[view]]`` (its name). The network is an ``access-control`` "
                "entry too, ``allow`` unless ``access-control`` gives it an action; as "
                "Unbound's, the longest prefix holding a client among all these networks "
                "decides its view, so a network given an action alone inside a view's "
                "leaves its clients without a view. Naming a view that is not given is an "
                "error."),
    Setting("define_tag", 'tuple[Any, ...]', (), tag_names,
            flag=Flag("\"TAG...\"", "Unbound's define-tag (repeatable)", repeat=True),
            example='["kids work"]',
            doc="Unbound's ``define-tag``: the names of the tags that ``local-zone-tag`` puts "
                "on local zones and ``access-control-tag`` on client networks, in order: where "
                "a zone and a client share several tags, the first in this order decides the "
                "zone's action and data for that client. A tag used and not defined here is "
                "an error."),
    Setting("access_control_tag", 'tuple[Any, ...]', (), access_control_tags,
            flag=Flag("\"NETBLOCK TAG...\"", "Unbound's access-control-tag (repeatable)",
                      repeat=True),
            example='["10.0.0.0/8 kids"]',
            doc="Unbound's ``access-control-tag``: the tags of a client network. A tagged "
                "local zone (``local-zone-tag``) answers only the clients of networks sharing "
                "one of its tags; for the others, the zone above it, if any, decides, as if "
                "it were not there. The network is an ``access-control`` entry too, "
                "``allow`` unless ``access-control`` gives it an action, and, as for views, "
                "the longest prefix holding a client among all these networks decides its "
                "tags (a network given an action alone inside a tagged one has none)."),
    Setting("access_control_tag_action", 'tuple[Any, ...]', (), access_control_tag_actions,
            flag=Flag("\"NETBLOCK TAG TYPE\"",
                      "Unbound's access-control-tag-action (repeatable)", repeat=True),
            example='["10.0.0.0/8 kids always_refuse"]',
            doc="Unbound's ``access-control-tag-action``: for the clients of the network, "
                "a local zone whose first tag shared with them is this one answers as this "
                "local-zone type (``local-zone``'s types) instead of its own. The network is "
                "an ``access-control`` entry too, as for ``access-control-tag``."),
    Setting("access_control_tag_data", 'tuple[Any, ...]', (), access_control_tag_datas,
            flag=Flag("\"NETBLOCK TAG RECORD\"",
                      "Unbound's access-control-tag-data (repeatable)", repeat=True),
            example='["10.0.0.0/8 kids A 192.0.2.53"]',
            doc="Unbound's ``access-control-tag-data``: a record without its owner (``A "
                "192.0.2.53``; TTL 3600 when left out) that a ``redirect`` or "
                "``inform_redirect`` zone whose first tag shared with the clients of the "
                "network is this one answers them, for every name of the zone, in place of "
                "the zone's own data: the records of the question's type, or a CNAME for any "
                "type (followed as a redirect zone's own). The network is an "
                "``access-control`` entry too."),
    Setting("local_zone_tag", 'tuple[Any, ...]', (), local_zone_tags,
            flag=Flag("\"ZONE TAG...\"", "Unbound's local-zone-tag (repeatable)",
                      repeat=True),
            example='["ads.example. kids"]',
            doc="Unbound's ``local-zone-tag``: the tags of a local zone (one of "
                "``local-zone``'s, or a default one), which then answers only the clients of "
                "networks sharing one of them (``access-control-tag``). A zone tagged twice "
                "keeps the last line's tags."),
    Setting("local_zone_override", 'tuple[Any, ...]', (), local_zone_overrides,
            flag=Flag("\"ZONE NETBLOCK TYPE\"", "Unbound's local-zone-override (repeatable)",
                      repeat=True),
            example='["ads.example. 10.1.0.0/16 transparent"]',
            doc="Unbound's ``local-zone-override``: the type (``local-zone``'s types) a local "
                "zone has for the clients of a network, the most specific network of the "
                "zone's overrides holding a client deciding; before the tags' actions. The "
                "zone must be a local zone (a global one: a view's zones keep their types)."),
    Setting("workers", 'int', 1, number(int, 1, 256),
            flag=Flag("N", "worker processes (SO_REUSEPORT)"),
            aliases=("num-threads",),
            restart=True,
            doc="Worker processes, each with its own sockets (SO_REUSEPORT) and its own cache. "
                "With several, a supervisor binds their sockets, answers the control socket "
                "and metrics for them, and starts a worker that dies again on the same "
                "sockets (after 0.1 s, doubling while it keeps dying within a minute; the "
                "log says how it ended) while the others serve on with their caches; one "
                "that died so 8 times in a row is not started again and its sockets are "
                "closed, so that the others get its share. The workers end with the "
                "supervisor, even one killed with SIGKILL."),
    Setting("user", 'str | None', None, user_name,
            flag=Flag("NAME", "run as this user once the sockets are bound (when started as "
                      "root)"),
            restart=True,
            unbound='username',
            example='"corenet-resolver"',
            doc="Started as root, run as this user (and its group) once every socket is bound, "
                "with no supplementary groups and no capabilities left (Unbound's "
                "``username``). Files read on reload (the config, root hints, trust anchor) "
                "must be readable by that user. Unset: the system user ``corenet-resolver`` "
                "when it exists (``scripts/serve.sh`` creates it), else ``nobody``; the empty "
                "string keeps root, which is not recommended. The installed package must be "
                "readable by that user (modules load lazily); where it is not (a virtual "
                "environment in root's home), the daemon says so and keeps root."),
), *section(
    'how it resolves',
    Setting("root_hints", 'str | None', None, nullable(existing_file),
            flag=Flag("FILE", "root hints file"),
            restart=True,
            example='"/etc/corenet-resolver/root.hints"',
            doc="Root hints file; None for the real root servers shipped with the package."),
    Setting("upstream_port", 'int', 53, number(int, 1, 65535),
            flag=Flag("PORT", "port of every authority (a test lab may use another)"),
            restart=True,
            doc="Destination port of every authority (53 on the Internet; a lab may use "
                "another)."),
    Setting("cache_size", 'int', 64 * 1024 * 1024, size(4096),
            flag=Flag("BYTES", "cache bound in bytes"),
            restart=True,
            doc="Cache bound, bytes (messages and rrsets together; Unbound's k, m and g suffixes "
                "are read: \"64m\"), counted as the memory the "
                "entries really hold: a full cache adds at most 1.3 times this to the process, "
                "on top of a fixed 45-50 MiB (interpreter, modules, sockets) per worker."),
    Setting("trust_anchor", 'tuple[str, ...]', (), trust_anchor_files,
            flag=Flag("FILE", "DNSSEC trust anchor (DS or DNSKEY; repeatable)", repeat=True),
            restart=True,
            unbound='trust-anchor-file',
            example='["/etc/corenet-resolver/root.key"]',
            doc="DNSSEC trust anchor files (DS or DNSKEY records; one file, or a list of them "
                "as Unbound's ``trust-anchor-file`` lines, each zone's records from all of "
                "them together); none: the shipped root anchor "
                "when resolving from the real root, no validation with other root hints. The "
                "root key sentinel (RFC 8509; ``root-key-sentinel``, on by default as in "
                "Unbound) reads the root's anchor: an A or AAAA question "
                "whose first label is ``root-key-sentinel-is-ta-NNNNN`` (NNNNN a key tag, five "
                "digits) is answered SERVFAIL when its answer validates as secure and NNNNN is "
                "not the key tag of a root anchor record (DS or DNSKEY); "
                "``root-key-sentinel-not-ta-NNNNN`` is SERVFAIL when it is; any other answer "
                "(insecure, bogus, or with validation off) is left as it is."),
    Setting("validate", 'bool | None', None, boolean,
            flag=Flag(None, "turn DNSSEC validation off", form="no"),
            restart=True,
            example='true',
            doc="DNSSEC validation on or off; None: on wherever there is a trust anchor."),
    Setting("val_sig_skew_min", 'int', _LIMITS.dnssec_sig_skew_min, number(int, 0, TTL_MAX),
            limit='dnssec_sig_skew_min',
            doc="Least clock skew allowed around a signature's validity window, seconds: "
                "the allowance is a tenth of the signature's validity, at least this and at "
                "most ``val-sig-skew-max`` (Unbound's option of the same name, 1 hour)."),
    Setting("val_sig_skew_max", 'int', _LIMITS.dnssec_sig_skew_max, number(int, 0, TTL_MAX),
            limit='dnssec_sig_skew_max',
            doc="Most clock skew allowed around a signature's validity window, seconds "
                "(Unbound's option of the same name, 1 day)."),
    Setting("val_bogus_ttl", 'int', _LIMITS.dnssec_bogus_ttl, number(int, 0, 300),
            limit='dnssec_bogus_ttl',
            doc="Seconds a bogus verdict is kept (Unbound's option of the same name; RFC 9520 "
                "3.2 allows at most 300). Data that failed validation, a zone's key and DS "
                "sets included, is kept no longer: the next question after it is resolved "
                "and validated anew."),
    # ---- automated trust anchors (RFC 5011) ----------------------------------------------------
    Setting("auto_trust_anchor_file", 'tuple[str, ...]', (), auto_trust_anchor_files,
            flag=Flag("FILE", "trust anchor kept up to date by RFC 5011 probes "
                      "(repeatable, one zone each)", repeat=True),
            restart=True,
            example='["/var/lib/corenet-resolver/root.key"]',
            doc="Trust anchor files tracked with RFC 5011 probes, one zone each (Unbound's "
                "``auto-trust-anchor-file``): the zone's DNSKEY rrset is asked for on the "
                "RFC 5011 timer (max(1 hour, min(15 days, half the TTL, half the time to "
                "signature expiry))) with DO and CD set and used only when a key already trusted "
                "signs it (at most ``dnssec-max-sig-checks-per-rrset`` signatures tried); a new "
                "key is trusted after ``add-holddown``, a key revoked by itself is distrusted "
                "at once. The file starts as a ``trust-anchor-file`` (DS or DNSKEY lines) or "
                "as a state file Unbound wrote, and is rewritten in Unbound's format (so it "
                "moves between the two) by writing a new file beside it and renaming it: the "
                "file's directory must be writable by the daemon's user (``user``); the "
                "daemon refuses to start when it is not. Without ``trust-anchor`` the shipped "
                "root anchor is not used. Workers sharing the file read what another one "
                "wrote, so the zone is probed once per interval."),
    Setting("add_holddown", 'int', 30 * 86400, number(int, 0, TTL_MAX),
            restart=True,
            doc="Seconds a new key must be seen (in at least two probes) before it is "
                "trusted (Unbound's ``add-holddown``; RFC 5011's 30 days)."),
    Setting("del_holddown", 'int', 30 * 86400, number(int, 0, TTL_MAX),
            restart=True,
            doc="Seconds a revoked key is kept in the state file once it is no longer "
                "published, before it is forgotten (Unbound's ``del-holddown``; 30 days). A "
                "revoked key is never trusted meanwhile. The time counts from the key's "
                "withdrawal, as RFC 5011's RemTime says (Unbound counts from the revocation), "
                "so the record of a revocation outlives the revoked key's publication."),
    Setting("keep_missing", 'int', 366 * 86400, number(int, 0, TTL_MAX),
            restart=True,
            doc="Seconds a trusted key may be missing from the zone's DNSKEY rrset before it "
                "is removed, while another key is trusted (Unbound's ``keep-missing``, 366 "
                "days); 0 keeps missing keys forever, as RFC 5011 does. A missing key stays "
                "trusted until then."),
    Setting("permit_small_holddown", 'bool', False, boolean,
            restart=True,
            doc="Lets the RFC 5011 probe interval fall under one hour (Unbound's "
                "``permit-small-holddown``, for tests with short TTLs and hold-downs)."),
    Setting("do_ip6", 'bool', True, boolean,
            engine="ipv6",
            flag=Flag(None, "ask authorities over IPv6 as well", form="both", names=("--ipv6",),
                      dest="ipv6"),
            aliases=("ipv6",),
            doc="Ask authorities over IPv6 too (their AAAA addresses), as Unbound's ``do-ip6: "
                "yes``. On a host without IPv6 routes an IPv6 address fails at once and is "
                "passed over; turn it off where IPv6 is routed but broken (every IPv6 server "
                "would time out once). ``ipv6`` is accepted as another name for it."),
    Setting("serve_stale", 'bool', True, boolean,
            unbound='serve-expired',
            doc="Serve expired answers (RFC 8767) when the authorities fail or are slower "
                "than ``serve-stale-client-timeout``, for at most ``serve-stale-window`` "
                "seconds past their expiry (Unbound's ``serve-expired``)."),
    Setting("serve_stale_window", 'int', _LIMITS.stale_window, number(int, 0, 30 * 86400),
            unbound='serve-expired-ttl',
            limit='stale_window',
            doc="How long past expiry an answer may still be served (Unbound's "
                "``serve-expired-ttl``)."),
    Setting("serve_stale_ttl", 'int', _LIMITS.stale_answer_ttl, number(int, 0, 86400),
            unbound='serve-expired-reply-ttl',
            limit='stale_answer_ttl',
            doc="TTL put on an expired answer served (Unbound's ``serve-expired-reply-ttl``)."),
    Setting("serve_stale_client_timeout", 'float', 1.8, number(float, 0, 60),
            doc="How long a client whose question has an expired answer in its stale window "
                "waits for the resolution, seconds, before it gets the expired answer (RFC "
                "8767's client response timer; Unbound's ``serve-expired-client-timeout``, "
                "there in milliseconds). The resolution goes on and refreshes the cache. 0: "
                "the expired answer at once, as Unbound's ``serve-expired`` without a "
                "timeout; a value past the resolution's own time limit serves it only when "
                "the resolution fails. RFC 8767 recommends 1.8 s: well inside a stub's 5 s "
                "timeout, long enough for a working authority to give fresh data."),
    Setting("prefetch", 'bool', True, boolean,
            doc="Refresh popular cache entries in the background in the last tenth of their TTL "
                "(Unbound's ``prefetch``)."),
    Setting("prefetch_min_hits", 'int', _LIMITS.prefetch_min_hits, number(int, 1, 1_000_000),
            limit='prefetch_min_hits',
            doc="Hits an entry needs before it is prefetched (popular entries only)."),
    Setting("cache_min_ttl", 'int | None', None, nullable(number(int, 0, TTL_MAX)),
            flag=Flag("SECONDS", "lower TTLs are raised to this in the cache"),
            limit='min_ttl',
            example='0',
            doc="Shortest time anything is cached, seconds: lower TTLs are raised to it, in the "
                "cache and in the answers clients get (Unbound's ``cache-min-ttl``). None: the "
                "``min_ttl`` limit (0, TTLs kept as the zone owner set them)."),
    Setting("cache_max_ttl", 'int | None', None, nullable(number(int, 0, TTL_MAX)),
            flag=Flag("SECONDS", "higher TTLs are lowered to this in the cache"),
            limit='max_ttl',
            example='86400',
            doc="Longest time anything is cached, seconds: higher TTLs are lowered to it "
                "(Unbound's ``cache-max-ttl``). None: the ``max_ttl`` limit (one day)."),
    Setting("cache_max_negative_ttl", 'int | None', None, nullable(number(int, 0, TTL_MAX)),
            flag=Flag("SECONDS", "longest time a negative answer is cached"),
            limit='max_negative_ttl',
            example='3600',
            doc="Longest time a negative answer (NXDOMAIN, NODATA) is cached, seconds "
                "(Unbound's ``cache-max-negative-ttl``). None: the ``max_negative_ttl`` limit "
                "(one hour); it is applied after ``cache-min-ttl``, so the lower wins for "
                "negative answers, as in Unbound."),
    Setting("cache_min_negative_ttl", 'int | None', None, nullable(number(int, 0, TTL_MAX)),
            flag=Flag("SECONDS", "shortest time a negative answer is cached"),
            limit='min_negative_ttl',
            example='0',
            doc="Shortest time a negative answer (NXDOMAIN, NODATA) is cached, seconds "
                "(Unbound's ``cache-min-negative-ttl``): set, it takes the place of "
                "``cache-min-ttl`` for negative answers and is applied last, over "
                "``cache-max-ttl`` and ``cache-max-negative-ttl``. None: the "
                "``min_negative_ttl`` limit (0: none)."),
    Setting("harden_glue", 'bool', True, boolean,
            flag=Flag(None, "use glue only from inside the referring zone", form="both"),
            restart=True,
            doc="Glue is trusted only for names inside the zone that sent the referral "
                "(Unbound's ``harden-glue``). Off, out-of-zone addresses in a referral are used "
                "as well, as Unbound does with ``harden-glue: no``: fewer queries for some "
                "delegations, at the risk of a zone's servers naming addresses for names they "
                "do not serve. The glue is kept with the referral's NS set: where the "
                "addresses the child zone gives for its own servers (which replace the glue "
                "in the cache) do not answer, the glue's are tried last, as Unbound falls "
                "back on the parent side's addresses."),
    Setting("harden_unverified_glue", 'bool', False, boolean,
            flag=Flag(None, "resolve the names of servers outside the delegated zone "
                      "instead of using their glue", form="both"),
            restart=True,
            doc="Glue is used at once only for servers named inside the zone being delegated "
                "(Unbound's ``harden-unverified-glue``): the addresses a referral gives for "
                "servers named in a sibling or another zone are unverified, so those names "
                "are resolved, and their glue is tried only when that fails. Off (Unbound's "
                "default), glue that ``harden-glue`` lets through is used as it comes."),
    Setting("harden_algo_downgrade", 'bool', False, boolean,
            flag=Flag(None, "require a valid signature of every algorithm a zone's DS "
                      "names", form="both"),
            restart=True,
            doc="Every key algorithm a zone's DS records name (those of the strongest digest "
                "they use) must sign the zone's DNSKEY set and each of its rrsets, or the "
                "answer is bogus, and each algorithm of an ``auto-trust-anchor-file``'s "
                "trusted keys the key set a probe brings (Unbound's "
                "``harden-algo-downgrade``): a zone signed with "
                "two algorithms cannot be passed off with the signatures of the weaker one "
                "alone. Off (Unbound's default, RFC 6840 5.11), one algorithm that validates "
                "is enough, which keeps a zone whose signer left an algorithm out of some "
                "rrsets resolving."),
    Setting("private_address", 'tuple[Any, ...]', (), networks,
            flag=Flag("CIDR", "remove addresses in this network from upstream answers "
                      "(DNS-rebinding guard; repeatable)", repeat=True),
            restart=True,
            example='["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", '
                    '"fd00::/8", "fe80::/10", "::ffff:0:0/96"]',
            doc="The DNS-rebinding guard (Unbound's ``private-address``): networks, or single "
                "addresses, that no public name may resolve to. Every A and AAAA record in "
                "such a network is removed from the replies of authorities and forwarders, in "
                "any section, before they are used or cached, unless its owner is at or below "
                "a ``private-domain``; an rrset left empty is dropped and the rest of the "
                "answer stands, so a name whose addresses were all private answers NOERROR "
                "with no data (a CNAME to it keeps the CNAME). Addresses are matched as "
                "written: add ``::ffff:0:0/96`` to stop IPv4-mapped IPv6 addresses too. Local "
                "data and local zones are never filtered."),
    Setting("private_domain", 'tuple[str, ...]', (), domains,
            flag=Flag("DOMAIN", "a domain whose names may resolve to private addresses "
                      "(repeatable)", repeat=True),
            restart=True,
            example='["lan.example.com."]',
            doc="Names at and below these domains keep their addresses in a "
                "``private-address`` network (Unbound's ``private-domain``): the owner name "
                "of each record is checked, so a public name's CNAME to such a name keeps the "
                "target's private addresses."),
    Setting("rrset_roundrobin", 'bool', True, boolean,
            flag=Flag(None, "rotate the addresses of each A and AAAA rrset in answers",
                      form="both"),
            restart=True,
            doc="The addresses of each A and AAAA rrset of an answer are rotated by the query's "
                "ID, so that clients taking the first address spread over all of them "
                "(Unbound's ``rrset-roundrobin``, on by default as there; Unbound rotates every "
                "rrset type, by the time as well). Off, every answer keeps the order it was "
                "cached in."),
    Setting("deny_any", 'bool', False, boolean,
            engine="deny_any",
            flag=Flag(None, "answer queries of type ANY with NOTIMP", form="both"),
            restart=True,
            doc="A query of type ANY is answered NOTIMP with no records (RFC 8482), never "
                "resolved (Unbound's ``deny-any``); a local zone still answers it. Off, ANY is "
                "resolved like any other type."),
    Setting("ede", 'bool', True, boolean,
            engine="ede",
            doc="A failed answer carries an Extended DNS Error (RFC 8914) saying why: DNSSEC "
                "bogus, no reachable authority, the resolution's reason as its text (Unbound's "
                "``ede``, off by default there). A refusal with EDNS says why too, as "
                "Unbound's: Prohibited (18) to a client the ACL refuses, Not Authoritative (20) "
                "to a cache probe (RD clear) from a client that may not snoop. Off, failures "
                "and refusals are answered without it."),
    Setting("ede_serve_expired", 'bool', False, boolean,
            engine="ede_serve_expired",
            doc="With ``ede`` and ``serve-stale``: an expired answer served (RFC 8767) "
                "carries the Extended DNS Error Stale Answer (3) when the query had EDNS, so "
                "a client can tell it from a fresh one (Unbound's ``ede-serve-expired``, off "
                "by default there too)."),
    Setting("nsid", 'str | None', None, optional(nsid),
            example='"ascii_resolver1"',
            doc="The name server identifier (RFC 5001) the answer to a query carrying an NSID "
                "option gets in its own (``dig +nsid``), as Unbound's ``nsid``: ``ascii_`` and "
                "the text, or the identifier in hex; at most 255 octets. Every answer "
                "carries it but the ACL's refusals (as Unbound's). Unset, the option "
                "is ignored. Such a query takes the engine's path (its cache look-up "
                "included, under the miss budgets) rather than the door's own look-up."),
    Setting("hide_identity", 'bool', True, boolean,
            flag=Flag(None, "answer id.server and hostname.bind (CH TXT) with REFUSED",
                      form="both"),
            restart=True,
            doc="CH-class TXT (or ANY) questions for ``id.server.`` and ``hostname.bind.`` are "
                "REFUSED (Unbound's ``hide-identity``). Off, they are "
                "answered with ``identity``: one TXT record, TTL 0."),
    Setting("identity", 'str | None', None, optional(text),
            restart=True,
            doc="What ``id.server.`` and ``hostname.bind.`` answer when ``hide-identity`` is "
                "off (Unbound's ``identity``); None or empty: the host name."),
    Setting("hide_version", 'bool', True, boolean,
            flag=Flag(None, "answer version.server and version.bind (CH TXT) with REFUSED",
                      form="both"),
            restart=True,
            doc="CH-class TXT (or ANY) questions for ``version.server.`` and ``version.bind.`` "
                "are REFUSED (Unbound's ``hide-version``). Off, they "
                "are answered with ``version``."),
    Setting("hide_trustanchor", 'bool', False, boolean,
            flag=Flag(None, "answer trustanchor.unbound (CH TXT) with REFUSED", form="both"),
            restart=True,
            doc="CH-class TXT (or ANY) questions for ``trustanchor.unbound.`` are REFUSED "
                "(Unbound's ``hide-trustanchor``). Off, as Unbound's by default, they are "
                "answered with a TXT record per zone with a trust anchor: its name and the "
                "key tags of its anchors (``. 20326 38696``), as they are when asked (RFC "
                "5011 rolls them), and no record without validation. The tags are public: "
                "a monitor reads from them which root key the resolver trusts."),
    Setting("version", 'str | None', None, optional(text),
            restart=True,
            doc="What ``version.server.`` and ``version.bind.`` answer when ``hide-version`` "
                "is off (Unbound's ``version``); None or empty: ``corenet-resolver VERSION``."),
    Setting("domain_insecure", 'tuple[str, ...]', (), domains,
            flag=Flag("DOMAIN", "negative trust anchor: treat this domain as unsigned "
                      "(repeatable)", repeat=True),
            example='["test."]',
            doc="Negative trust anchors (Unbound's ``domain-insecure``): names at and below "
                "these domains are treated as unsigned (never bogus) even when a trust anchor "
                "above them says otherwise; a trust anchor at or below such a domain still "
                "wins. A reload applies a change (what is cached at and below a name added or "
                "removed is forgotten), as do ``insecure_add`` and ``insecure_remove``."),
    Setting("limits", 'Limits', _LIMITS, limits_table,
            restart=True,
            example='{ max-query-time = 4.0 }',
            doc="The resolver's limits (``resolver.limits.Limits``), each settable by its field "
                "name in a ``[limits]`` table or as a top-level key; the defaults and the "
                "reason for each are listed below."),
    Setting("qname_minimisation", 'bool', True, boolean,
            engine="minimise",
            flag=Flag(None, "RFC 9156, relaxed", form="both"),
            doc="QNAME minimisation (RFC 9156) in relaxed mode: each zone is asked about one "
                "more label of the name only; a minimised query that fails (timeout, REFUSED, "
                "SERVFAIL, FORMERR, or NXDOMAIN from an unsigned zone) is asked again with the "
                "full name, and that zone is asked full names for ``infra-host-ttl``."),
    Setting("use_caps_for_id", 'bool', False, boolean,
            engine="caps_for_id",
            flag=Flag(None, "random case in the names of UDP queries to authorities "
                      "(0x20)", form="both"),
            doc="The letters of each upstream UDP query's name in a case drawn at random, "
                "a bit per letter, which a reply must echo exactly (Unbound's "
                "``use-caps-for-id``, draft-vixie-dnsext-dns0x20): a forged reply must "
                "guess it on top of the query's ID and port. A reply whose question comes "
                "back in another case (a server that does not echo it, or a forgery) is not "
                "taken: the question is asked again of the same server with the name as it "
                "was, as is every later query of that resolution, and the fallback counted "
                "(``caps_fallbacks``). Unbound then asks all the zone's servers and wants "
                "the same reply from each; corenet takes the one server's. PTR queries go out "
                "as given (Unbound sends them in random case but does not check the reply's, "
                "for middleboxes that mangle reverse names), and so do queries over TCP and "
                "TLS. Off by default, as Unbound's."),
    Setting("caps_exempt", 'tuple[str, ...]', (), domains,
            engine="caps_exempt",
            aliases=("caps-whitelist",),
            flag=Flag("DOMAIN", "no random case in queries at or below this domain "
                      "(repeatable)", repeat=True),
            example='["licdn.com."]',
            doc="Domains at and below which queries keep their name's case when "
                "``use-caps-for-id`` is on (Unbound's ``caps-exempt``, formerly "
                "``caps-whitelist``): for the zones whose servers do not echo it."),
    Setting("do_ip4", 'bool', True, boolean,
            engine="do_ip4",
            flag=Flag(None, "ask authorities over IPv4", form="both"),
            doc="Ask authorities at their IPv4 addresses (Unbound's ``do-ip4``)."),
    Setting("outgoing_interface", 'tuple[str, ...]', (), ip_addresses,
            engine="source",
            flag=Flag("ADDR", "send upstream queries from this address (repeatable)",
                      repeat=True),
            example='["192.0.2.53", "2001:db8::53"]',
            doc="Addresses the queries to authorities and forwarders leave from (Unbound's "
                "``outgoing-interface``): each upstream socket (UDP, TCP, TLS) is bound to one "
                "of its server's address family, drawn at random when there are several. "
                "Once one is given, a family with none here is not used to ask authorities "
                "(as Unbound: the IPv6 addresses of servers go unused when all of these are "
                "IPv4). Empty: the kernel picks the source by the route. Each entry is one "
                "address (Unbound's other form, an IPv6 netblock to draw random source "
                "addresses from, is not taken)."),
    Setting("do_not_query_address", 'tuple[Any, ...]', (), avoided_networks,
            restart=True,
            example='["10.0.0.0/8", "192.0.2.53"]',
            doc="Networks, or single addresses, no query is ever sent to, whatever a zone's "
                "NS and glue say (Unbound's ``do-not-query-address``): a zone cannot point "
                "the resolver at servers of these networks. Stub zones' addresses too; a "
                "forward zone's are the operator's own choice and are asked all the same, "
                "as with ``do-not-query-localhost``."),
    Setting("do_not_query_localhost", 'bool', True, boolean,
            engine="no_localhost",
            flag=Flag(None, "never query loopback authority addresses (a lab on loopback needs "
                      "--no-do-not-query-localhost)", form="both"),
            doc="Never send a query to a loopback authority address (127.0.0.0/8, ::1), "
                "whatever a zone's NS and glue say, so a zone cannot point the resolver at "
                "services on its own host (Unbound's ``do-not-query-localhost``); stub zones' "
                "addresses too. A forward zone's addresses are the operator's own choice and "
                "are asked even on loopback (a local forwarder is the usual case), where "
                "Unbound wants this switch off for them. A lab of authorities on loopback turns "
                "it off."),
    Setting("infra_host_ttl", 'float', 900.0, number(float, 0, 86400),
            limit="infra_host_ttl",
            flag=Flag("SECONDS", "how long a lame or no-EDNS mark on a server lasts"),
            doc="Seconds a mark on an authority address lasts (lame for a zone, EDNS refused); "
                "past it the server is tried again (Unbound's ``infra-host-ttl``). A server "
                "whose data failed DNSSEC validation is marked lame for its zone too, once the "
                "question was asked again of the zone's other servers (RFC 4035 5.5, as "
                "Unbound's validator blacklists it and restarts): later questions ask the "
                "others first. Those attempts count against the question's upstream queries, "
                "time and signature checks, at most ``limits.val-max-restart`` of them."),
    Setting("unwanted_reply_threshold", 'int', 0, number(int, 0, 2 ** 31 - 1),
            limit="unwanted_reply_threshold",
            doc="Replies nobody asked for (a wrong ID or question; the kernel drops one "
                "from another address) that may come to the upstream queries' ports "
                "before the message and rrset caches are cleared, in case one of those "
                "guesses poisoned them (Unbound's "
                "``unwanted-reply-threshold``, with its log line); the count then starts "
                "again. 0 (the default, as Unbound's) never clears. Each worker counts its "
                "own, as each of Unbound's threads does; ``unwanted.replies`` in ``stats`` "
                "counts them all."),
    Setting("ratelimit_for_domain", 'tuple[tuple[str, int], ...]', (), zone_rates,
            doc="Queries per second sent to the servers of these zones, each its own limit "
                "over the ``ratelimit`` limit (Unbound's ``ratelimit-for-domain``): a table of "
                "domain = number, or a list of \"domain number\" strings; 0 turns the limit "
                "off for that zone.", example='["example.com 1000"]'),
    Setting("ratelimit_below_domain", 'tuple[tuple[str, int], ...]', (), zone_rates,
            doc="The same for every zone below these domains (Unbound's "
                "``ratelimit-below-domain``); the deepest domain above a zone gives its limit, "
                "and a zone of ``ratelimit-for-domain`` keeps its own.",
            example='["example.net 500"]'),
), *section(
    # DNS64 (RFC 6147): resolver.dns64, applied by resolver.resolution.resolve_client;
    # the root key sentinel (RFC 8509): resolver.dnssec.sentinel
    'DNS64 and the root key sentinel',
    Setting("root_key_sentinel", 'bool', True, boolean,
            restart=True,
            doc="Answer the root key sentinel (RFC 8509) when validating, as Unbound's "
                "``root-key-sentinel``: see ``trust-anchor`` for what it answers. Off, "
                "sentinel names are resolved like any other."),
    Setting("dns64", 'bool', False, boolean,
            flag=Flag(None, "DNS64 (RFC 6147): synthesise AAAA from A for IPv6-only clients",
                      form="both"),
            restart=True,
            doc="DNS64 (RFC 6147), as Unbound's ``dns64`` module (which Unbound turns on with "
                "``module-config: \"dns64 validator iterator\"``). An AAAA question whose "
                "answer is NOERROR without AAAA records at the end of its CNAME chain (or "
                "only AAAA in ::ffff:0:0/96, treated as absent: RFC 6147 5.1.4) is answered "
                "with the chain and one AAAA per A record of the chain's end, each the IPv4 "
                "address embedded in ``dns64-prefix`` (RFC 6052); its TTL is the smaller of "
                "the A record's and the negative TTL of the AAAA answer's SOA, or of 600 s "
                "without a SOA (RFC 6147 5.1.7). NXDOMAIN, SERVFAIL and other errors are "
                "never synthesised, nor is an answer without A records (the AAAA answer "
                "stands). A PTR question for a whole address under the prefix's ip6.arpa "
                "name is asked as the embedded IPv4 address's in-addr.arpa name and answered, "
                "as Unbound does, with a CNAME from the ip6.arpa name to it followed by its "
                "answer (RFC 6147 5.3.1). DNSSEC (RFC 6147 5.5): a synthesised answer never "
                "has AD; a query with DO and CD set gets the authorities' own answer (the "
                "client validates itself), kept apart in the cache as DO and CD are part of "
                "the message cache key; with DO set and CD clear the answer is synthesised, "
                "without AD; synthesis from A records that fail validation is SERVFAIL "
                "unless CD is set. The library offers the same: ``Resolver(dns64=...)``. "
                "With a shared cache (``cachedb``), every host sharing it should use the same "
                "DNS64 settings: synthesised answers are stored there like any other."),
    Setting("dns64_prefix", 'str', "64:ff9b::/96", dns64_prefix,
            flag=Flag("PREFIX", "DNS64 prefix (RFC 6052: /32, /40, /48, /56, /64 or /96)"),
            restart=True,
            doc="The IPv6 prefix DNS64 embeds IPv4 addresses in (Unbound's ``dns64-prefix``): "
                "the well-known prefix 64:ff9b::/96 or a network-specific one of length /32, "
                "/40, /48, /56, /64 or /96 whose bits 64 to 71 (the \"u\" octet, which the "
                "embedding skips) are zero (RFC 6052 2.2)."),
    Setting("dns64_synthall", 'bool', False, boolean,
            restart=True,
            doc="DNS64: synthesise AAAA from A records even for names that have AAAA records, "
                "which are then left out (Unbound's ``dns64-synthall``)."),
    Setting("dns64_ignore_aaaa", 'tuple[str, ...]', (), domains,
            restart=True,
            example='["example.com."]',
            doc="DNS64: names at and below which AAAA records are ignored and the answer is "
                "synthesised from the A records (Unbound's ``dns64-ignore-aaaa``), matched "
                "against the question's name."),
), *section(
    'bounds against floods and slow clients',
    Setting("tcp_idle_timeout", 'float', 10.0, number(float, 0.01, 3600),
            flag=Flag("SECONDS", "close a TCP connection idle this long"),
            doc="TCP: a connection with no complete query for this long, seconds, is closed.",
            reason="A connection with no complete query for this long is a slow-loris holding a "
                   "descriptor; a client that asks sends its query at once."),
    Setting("edns_tcp_keepalive", 'bool', False, boolean,
            doc="TCP and DNS over TLS: a connection whose client sends the EDNS TCP keepalive "
                "option (RFC 7828, empty) stays open while idle for "
                "``edns-tcp-keepalive-timeout`` rather than ``tcp-idle-timeout``, and the "
                "answers on it carry the option with that timeout, the first one's and every "
                "later one's, as Unbound's ``edns-tcp-keepalive``; the option with a value "
                "gets FORMERR. Unbound gives every connection that timeout; here a client "
                "that does not ask keeps ``tcp-idle-timeout``. UDP and DNS over HTTPS "
                "answers never carry it (RFC 7828, RFC 8484)."),
    Setting("edns_tcp_keepalive_timeout", 'float', 120.0, number(float, 0.1, 6553.5),
            doc="The idle timeout, seconds, of the connections that asked for TCP keepalive "
                "(``edns-tcp-keepalive``), which their answers tell them (in 100 ms units: at "
                "most 6553.5 s); Unbound's ``edns-tcp-keepalive-timeout``, in milliseconds "
                "there."),
    Setting("tcp_max_connections", 'int', 1000, number(int, 1, 10_000_000),
            flag=Flag("N", "TCP connections open at once"),
            aliases=("incoming-num-tcp",),
            doc="TCP: connections open at once; at the cap the oldest idle one is closed to "
                "make room, and a new one is refused only when none is idle (lowered at "
                "start to fit the descriptor limit: see ``max-inflight``).",
            reason="Each open connection holds a descriptor and buffers."),
    Setting("tcp_max_connections_per_client", 'int', 64, number(int, 1, 10_000_000),
            flag=Flag("N", "TCP connections one client address may hold"),
            doc="TCP: connections one client address may hold at once.",
            reason="One client address must not take TCP away from the others; a resolver "
                   "behind a NAT or a stub with pipelining needs a few dozen at most."),
    Setting("tcp_connection_limit", 'tuple[Any, ...]', (), connection_limits,
            doc="TCP: connections the clients of a network may hold at once, all together, "
                "as \"NETBLOCK LIMIT\" lines (Unbound's ``tcp-connection-limit``); the longest "
                "network holding a client counts it, and past its limit a new connection is "
                "closed at once (0: none at all), before any TLS handshake for DNS over TLS "
                "and HTTPS. Counted across the workers (as Unbound counts across its threads), "
                "once a connection is established (after its handshake), beside "
                "``tcp-max-connections-per-client``.",
            example='["192.0.2.0/24 20"]',
            reason="A network of many hosts (a NAT, a cloud range) may take the connections "
                   "one address alone cannot."),
    Setting("tcp_max_inflight", 'int', 32, number(int, 1, 10_000_000),
            flag=Flag("N", "queries in flight per connection"),
            doc="TCP: queries of one connection being resolved at once; past it reading pauses.",
            reason="One pipelining client cannot fill the miss slots through one connection."),
    Setting("tcp_max_query", 'int', 4096, number(int, 17, 65535),
            doc="TCP: largest query frame accepted; a longer length closes the connection.",
            reason="A query is a few hundred bytes; larger frames only cost memory."),
    Setting("harden_large_queries", 'bool', False, boolean,
            doc="A query larger than 512 bytes gets no answer, over every transport (a "
                "stream's connection ends with it) and is counted (``large``), as Unbound's "
                "``harden-large-queries``. Off by default: EDNS options and TSIG make larger "
                "queries legitimate.",
            reason="A question fits in 512 bytes; where no client needs large options, a "
                   "larger query only feeds the parsers bytes an attacker chose."),
    Setting("max_udp_size", 'int', 1232, number(int, 512, 65535),
            flag=Flag("BYTES", "largest UDP answer, whatever the client asks"),
            doc="UDP: no answer is larger, whatever the client's EDNS size says; past it the "
                "answer is truncated (TC) and the client asks over TCP (Unbound's "
                "``max-udp-size``).",
            reason="DNS Flag Day 2020's value: no IP fragmentation, and a small cap on the "
                   "answer a spoofed query can make us send to its victim (amplification)."),
    Setting("max_inflight_per_client", 'int', 256, number(int, 1, 10_000_000),
            aliases=("wait-limit",),
            doc="Cache misses being resolved at once for one client address; past it the query "
                "is dropped and counted (Unbound's ``wait-limit``).",
            reason="A flood from one address cannot take every miss slot."),
    Setting("max_inflight", 'int', 10000, number(int, 1, 10_000_000),
            aliases=("num-queries-per-thread",),
            doc="Cache misses being resolved at once in all. At start the daemon raises its "
                "descriptor soft limit to what this, ``limits.max-upstream-sockets`` and "
                "``tcp-max-connections`` need (no further, as Unbound's ``checkrlimit``); "
                "where the hard limit does not allow it, it lowers the three to fit (TCP "
                "clients at most half) and says so once in a warning, so a flood meets a "
                "bound rather than running out of descriptors (EMFILE).",
            reason="Each miss in flight holds a socket and some memory."),
    Setting("ip_ratelimit", 'int', 0, number(int, 0, 10_000_000),
            flag=Flag("N", "cache misses one client may start per second (0: no limit)"),
            doc="Cache misses one client address may start per second (a bucket one second "
                "deep); past it the query is dropped and counted (``ratelimit``) while its "
                "cache hits are still answered. 0, the default, turns it off (Unbound's "
                "``ip-ratelimit``, off by default too). Behind a proxy on "
                "``proxy-protocol-port`` the client is the one the proxy names.",
            reason="Off, as Unbound: a NAT, a mail server or a proxy in front sends every "
                   "query from one address, and a limit would drop its legitimate misses; a "
                   "flood from one address is still bounded by ``max-inflight-per-client``."),
    Setting("ip_ratelimit_prefix_v4", 'int', 32, number(int, 8, 32),
            doc="The IPv4 prefix that counts as one client for ``ip-ratelimit`` and "
                "``max-inflight-per-client``: one address by default.",
            reason="One address is one client."),
    Setting("ip_ratelimit_prefix_v6", 'int', 56, number(int, 16, 128),
            doc="The IPv6 prefix that counts as one client for the same budgets (a /56 by "
                "default).",
            reason="A /56, the least a subscriber is usually given, so that one attacker cannot "
                   "multiply its budget by walking the addresses of its own network."),
    Setting("jostle_timeout", 'float', 0.2, number(float, 0, 3600),
            doc="With every miss slot taken, a new miss may push out the oldest one once it has "
                "run this long, seconds (Unbound's ``jostle-timeout``): the old query gets no "
                "answer and is counted (``jostled``). 0 turns it off.",
            reason="Slow authorities cannot hold every slot while fresh queries are dropped "
                   "(Unbound's value)."),
    Setting("misses_per_wakeup", 'int', 256, number(int, 1, 1_000_000),
            doc="The most new cache misses a UDP listener passes to the resolver in one loop "
                "iteration while it is behind (it found a whole batch of queries waiting); "
                "the iteration's further misses are dropped and counted (``busy``) while its "
                "cache hits are still answered. The quota in force adapts below this (see "
                "``busy-target``).",
            reason="Each miss costs a socket and a recursion, and an iteration that starts "
                   "hundreds delays every answer behind it."),
    Setting("busy_target", 'float', 0.002, number(float, 0.0005, 10),
            doc="Seconds a loop iteration may work before the daemon counts itself behind: each "
                "longer iteration halves the misses the next may start, each shorter one lets "
                "the quota grow back. Under a flood of misses the loop settles near this.",
            reason="Misses keep flowing under a flood (about 20k recursions a second in "
                   "BENCHMARKS.md, \"Under a random-name flood\") while a loop that falls "
                   "behind starts fewer; what a cached name waits for is bounded by "
                   "``read-interval``, not by this."),
    Setting("read_interval", 'float', 0.0005, number(float, 0.0001, 1),
            doc="Seconds of one loop iteration's work after which each UDP listener reads its "
                "socket again, between two of the iteration's callbacks, rather than at the "
                "iteration's end: a cached name waits about this long at most behind the "
                "replies, timers and callbacks of the misses started before it.",
            reason="Under a flood of misses an iteration works for milliseconds; a cached answer "
                   "should not wait for all of it, and a read that finds nothing costs one "
                   "system call."),
), *section(
    'operating it',
    Setting("metrics", 'Address | None', None, optional(address(9153)),
            flag=Flag("ADDR:PORT", "serve Prometheus metrics over HTTP"),
            restart=True,
            example='"127.0.0.1:9153"',
            doc="Prometheus text over HTTP, or None. Its counters only ever grow: "
                "``corenet-resolver stats`` (unbound-control's, which resets) shows what was "
                "counted since the last ``stats`` by keeping the figures it showed, never by "
                "zeroing a counter, so a scrape never sees one go back."),
    Setting("extended_statistics", 'bool', False, boolean,
            flag=Flag(None, "count queries by flag, opcode, class, EDNS and address family",
                      form="both"),
            doc="Count each client query's flags, opcode and class, whether it carries EDNS "
                "and sets DO, and whether it came over IPv6 (Unbound's "
                "``extended-statistics``): ``stats`` prints them as Unbound does "
                "(``num.query.flags.RD``, ``num.query.opcode.QUERY``, ``num.query.class.IN``, "
                "``num.query.edns.present``, ``num.query.edns.DO``, ``num.query.ipv6``) and "
                "the metrics as ``query_flags_total`` and its siblings. Off by default, as "
                "Unbound's: reading the question's class and the OPT record is work a cached "
                "answer otherwise skips. As Unbound's, ``stats`` prints the threads', the "
                "total's and the times alone without it, and with it the rest (types, "
                "rcodes, transports, the histogram, the caches), which are counted either "
                "way, as the metrics show. A reload turns it on or off; what was counted "
                "stays."),
    Setting("statistics_inhibit_zero", 'bool', True, boolean,
            doc="Whether ``stats`` leaves out the query types, classes, opcodes, rcodes (but "
                "NOERROR to REFUSED) and response policy actions that counted nothing since "
                "the last reset (Unbound's ``statistics-inhibit-zero``, and its default). Off, "
                "it prints a line for each of them that Unbound has, at 0 (``TYPE0`` to "
                "``ANY``, ``CLASS0`` to ``ANY``, ``OPCODE15``, ``RCODE15``, "
                "``num.answer.rcode.nodata``, every ``num.rpz.action``), so that a graph's "
                "series exist before their first query. With ``extended-statistics`` alone, "
                "as Unbound's."),
    Setting("control", 'str | None', "/run/corenet-resolver/control", optional(path_in_directory),
            flag=Flag("PATH", "Unix control socket (the control commands)"),
            restart=True,
            doc="Unix control socket, for the control commands (unbound-control's: "
                "``corenet-resolver help`` lists them; ``corenet-resolver -c FILE COMMAND`` "
                "finds the socket in this file); \"\" turns it off. At the "
                "default path a daemon that cannot create ``/run/corenet-resolver`` (not root) "
                "uses ``$XDG_RUNTIME_DIR/corenet-resolver/control`` (or "
                "``/tmp/corenet-resolver-UID/control``) instead, and the commands look there "
                "too."),
    Setting("control_mode", 'int', 0o660, octal_mode,
            doc="Permission bits of the control socket. It belongs to root (or whoever started "
                "the daemon) and, with ``user``, to that user's group: 0660 lets root and that "
                "group in."),
    # ---- the control channel over TCP (Unbound's remote-control clause)
    Setting("control_enable", 'bool', False, boolean,
            restart=True,
            doc="Also take the control commands over TCP on ``control-interface`` and "
                "``control-port`` (Unbound's ``control-enable``), besides the Unix socket "
                "``control``. Off by default. With ``control-use-cert`` (the default) a client "
                "must show a certificate signed by ``server-cert-file`` (mutual TLS, as "
                "unbound-control-setup makes them); ``corenet-resolver -c CONFIG COMMAND`` "
                "then connects there with ``control-cert-file`` and ``control-key-file``."),
    Setting("control_interface", 'tuple[str, ...]', ("127.0.0.1", "::1"), ip_addresses,
            restart=True,
            doc="Addresses the TCP control listener binds (Unbound's ``control-interface``); "
                "an address the host does not have is skipped with a warning."),
    Setting("control_port", 'int', 8953, number(int, 1, 65535),
            restart=True,
            doc="Port of the TCP control listener (Unbound's ``control-port``)."),
    Setting("control_use_cert", 'bool', True, boolean,
            restart=True,
            doc="Mutual TLS on the TCP control listener (Unbound's ``control-use-cert``). "
                "Without it the listener takes plain TCP, so only a loopback "
                "``control-interface`` is allowed then."),
    Setting("server_key_file", 'str', "/etc/corenet-resolver/control_server.key", text,
            restart=True,
            doc="The TCP control listener's private key (Unbound's ``server-key-file``)."),
    Setting("server_cert_file", 'str', "/etc/corenet-resolver/control_server.pem", text,
            restart=True,
            doc="The TCP control listener's certificate (Unbound's ``server-cert-file``); "
                "it also signs the clients' certificates: a client whose certificate it did "
                "not sign is refused, as Unbound refuses it."),
    Setting("control_key_file", 'str', "/etc/corenet-resolver/control.key", text,
            restart=True,
            doc="The command line's private key for the TCP control listener (Unbound's "
                "``control-key-file``)."),
    Setting("control_cert_file", 'str', "/etc/corenet-resolver/control.pem", text,
            restart=True,
            doc="The command line's certificate for the TCP control listener, signed by "
                "``server-cert-file`` (Unbound's ``control-cert-file``)."),
    Setting("shutdown_grace", 'float', 5.0, number(float, 0.01, 3600),
            doc="Seconds a graceful stop waits for queries in flight."),
    Setting("pidfile", 'str | None', None, optional(path_in_directory),
            flag=Flag("FILE", "write the daemon's process id there once it serves"),
            restart=True,
            example='"/run/corenet-resolver/corenet-resolver.pid"',
            doc="File the daemon's process id is written to once it serves (removed at exit), "
                "or None. Changed at restart only: it is written before the daemon drops its "
                "privileges."),
), *section(
    # ---- logging: Unbound's verbosity, logfile, use-syslog and per-query logs ----------------
    'logging',
    Setting("verbosity", 'int', 1, number(int, 0, 5, whole=True),
            flag=Flag("N", "how much to log, 0 to 5 (Unbound's verbosity)"),
            doc="How much the daemon logs, Unbound's scale (Unbound's ``verbosity``): 0 errors "
                "only (and warnings, which Unbound too prints at every verbosity), 1 "
                "operational information, 2 detailed operational information, 3 query level "
                "information (among it a line for each question that failed, with its "
                "reason), 4 algorithm level information, 5 client identification for "
                "cache misses. The per-query logs (``log-queries``, ``log-replies``, "
                "``log-servfail``, ``log-local-actions``) are written whatever it says. The "
                "control command ``verbosity N`` changes it until the next reload."),
    Setting("log_level", 'str | None', None, optional(log_level),
            flag=Flag("LEVEL", "DEBUG, INFO, WARNING, ERROR or CRITICAL (another spelling "
                      "of --verbosity)"),
            doc="Python's name for a level, kept as another spelling of ``verbosity``: WARNING "
                "is verbosity 0, INFO 1, DEBUG 3; ERROR and CRITICAL hide the warnings too (as "
                "Python's levels do). Unset: ``verbosity`` decides; set, it wins over it."),
    Setting("logfile", 'str | None', None, optional(path_in_directory),
            flag=Flag("FILE", "append the log to FILE instead of standard error"),
            example='"/var/log/corenet-resolver.log"',
            doc="Append the log to this file instead of standard error (Unbound's "
                "``logfile``); ignored with ``use-syslog``. Started as root, the file is given "
                "to ``user`` before the daemon drops root. The control command ``log_reopen`` "
                "(and a reload) makes the supervisor and every worker reopen it, so logrotate "
                "needs neither ``copytruncate`` nor a signal: rename the file, make the new one "
                "for ``user`` (logrotate's ``create``; the daemon, no longer root, may not "
                "create files in ``/var/log``), then run ``corenet-resolver log_reopen`` "
                "(``contrib/corenet-resolver.logrotate``). A file that cannot be opened leaves "
                "the log on standard error, which says why; one that cannot be reopened stays "
                "in use, and the error is logged in it."),
    Setting("use_syslog", 'bool', False, boolean,
            flag=Flag(None, "log to the local syslog socket", form="both"),
            doc="Send the log to the local syslog (the datagram socket ``/dev/log``, facility "
                "daemon; the environment variable ``CORENET_RESOLVER_SYSLOG`` names another "
                "socket) instead of a file or standard error (Unbound's ``use-syslog``). Off "
                "by default where Unbound's is on: under systemd standard error already goes "
                "to the journal (there, ``$JOURNAL_STREAM`` naming it, each line starts with "
                "its priority, ``<3>`` error to ``<7>`` debug, for ``journalctl -p``, and "
                "carries no time of its own), and a daemon run by hand shows its log where "
                "it was started."),
    Setting("log_identity", 'str | None', None, optional(text),
            doc="The name each log line carries, ``corenet-resolver`` when unset (Unbound's "
                "``log-identity``): ``unbound`` keeps the log parsers and alerts written for "
                "Unbound's lines matching."),
    Setting("log_time_ascii", 'bool', False, boolean,
            doc="Stamp each line with the local time as ``Nov 25 14:55:14`` instead of seconds "
                "since the epoch in brackets (Unbound's ``log-time-ascii``). Syslog stamps its "
                "lines itself."),
    Setting("log_time_iso", 'bool', False, boolean,
            doc="With ``log-time-ascii``, stamp each line with the local time in ISO 8601, "
                "to the millisecond and with its offset from UTC, as "
                "``2025-11-25T14:55:14.042+01:00`` (Unbound's ``log-time-iso``; alone it "
                "changes nothing, as in Unbound)."),
    Setting("log_queries", 'bool', False, boolean,
            flag=Flag(None, "log one line per answered query", form="both"),
            doc="Log one line per answered query to the ``resolver.queries`` logger at INFO, "
                "in Unbound's shape (``log-queries``): client, name, type, class, as "
                "``127.0.0.1 www.example.com. A IN`` (``log-replies`` adds the rcode, time, "
                "cache hit and size). Written when the answer goes. Off by default. Queries "
                "take the same path with the log on or off; each answered query costs one "
                "log line. A reload turns it on or off at once."),
    Setting("log_tag_queryreply", 'bool', False, boolean,
            doc="The ``log-queries`` and ``log-replies`` lines say ``query:`` and ``reply:`` "
                "where other lines say their level (``info:``), as Unbound's "
                "``log-tag-queryreply``: a log reader can tell them from the rest."),
    Setting("log_replies", 'bool', False, boolean,
            flag=Flag(None, "log one line per reply, as Unbound's log-replies", form="both"),
            doc="Log one line per reply in Unbound's ``log-replies`` format, on the "
                "``resolver.replies`` logger: the client's address, the name, type and class "
                "asked, the rcode, the time taken in seconds (six decimals), 1 when the answer "
                "came from the cache (else 0) and the reply's size in bytes, for example "
                "``127.0.0.1 www.example.com. A IN NOERROR 0.000112 1 49``. A reply to a "
                "query that could not be read (FORMERR) shows ``-`` for name, type and class. "
                "Unbound writes the client as ADDR@PORT only in newer versions; corenet writes "
                "the address."),
    Setting("log_servfail", 'bool', False, boolean,
            flag=Flag(None, "log the reason of each SERVFAIL", form="both"),
            doc="Log one line for each SERVFAIL answer with its reason, on the "
                "``resolver.servfail`` logger at ERROR (Unbound's ``log-servfail``): "
                "``SERVFAIL <www.example.com. A IN>: REASON``, the reason being the extended "
                "DNS error the resolver found (RFC 8914: its code's name and its text, the "
                "same a client asking with EDNS gets in the answer)."),
    Setting("val_log_level", 'int', 0, number(int, 0, 2),
            engine="val_log_level",
            doc="Log each failed DNSSEC validation (Unbound's ``val-log-level``), on the "
                "``resolver.validator`` logger whatever the verbosity: 1, one line with the "
                "question, ``validation failure www.example.com. A IN``; 2, with the reason "
                "and the server that gave the data, ``validation failure <www.example.com. "
                "A IN>: REASON from 192.0.2.1``. Once for data an authority gave: the same "
                "bogus answer made again from the cache is not logged again. 0: not logged."),
    Setting("log_local_actions", 'bool', False, boolean,
            flag=Flag(None, "log each answer from a local zone", form="both"),
            doc="Log one line for each query that falls in a local zone, on the "
                "``resolver.local`` logger (Unbound's ``log-local-actions``): the zone, its "
                "type, the client's address, then the name, type and class asked, for "
                "example ``example.com. static 127.0.0.1 www.example.com. A IN``. Written when "
                "the answer goes, so a query a ``deny`` zone drops, which gets none, has no "
                "line (Unbound writes one)."),
), *section(
    'zones (tables; examples in zones-example.toml)',
    Setting("forward_zone", 'tuple[Any, ...]', (), zone_tables("forward_zone"),
            doc="Forward zones, as ``[[forward-zone]]`` tables: ``name``, ``forward-addr`` (a "
                "list of `ADDR`, `ADDR@PORT` or `ADDR#PORT`; without a port, `upstream-port`), "
                "``forward-first`` (recurse when no forwarder answers; default false), "
                "``forward-tcp-upstream`` (TCP only; default false), ``forward-tls-upstream`` "
                "(DNS over TLS, see ``tls-cert-bundle``; default false). Questions at or below "
                "the name go to those recursive resolvers (RD set); the deepest forward or stub "
                "zone wins. Their answers are DNSSEC-validated when validation is on (see "
                "``domain-insecure``). ``forward-host`` (Unbound's): servers by name, "
                "`NAME`, `NAME@PORT`, over TLS `NAME[@PORT][#AUTH-NAME]` (the certificate "
                "checked against the host's own name unless given), beside or instead of "
                "``forward-addr``; the resolver resolves the names itself (A, and AAAA with "
                "``do-ip6``) before it serves, and again when their TTL runs out (not sooner "
                "than the limit ``server-name-min-ttl``), following a server that moves; a "
                "name that fails keeps the addresses it had. A zone none of whose servers has "
                "an address yet is not served until one has."),
    Setting("stub_zone", 'tuple[Any, ...]', (), zone_tables("stub_zone"),
            doc="Stub zones, as ``[[stub-zone]]`` tables: ``name``, ``stub-addr`` (a list, as "
                "``forward-addr``) and/or ``stub-host`` (servers by name, `NAME` or "
                "`NAME@PORT`, resolved and followed as ``forward-host``'s; Unbound's "
                "``stub-host``), ``stub-first`` (Unbound's: when the servers fail, SERVFAIL, "
                "the question is resolved as if there were no stub zone, from the root past "
                "the stub's delegation, within the same time limit; default false) and "
                "``stub-prime`` (Unbound's: the servers are asked for the zone's NS set, RD "
                "clear, before the zone serves and again when it expires, and the servers it "
                "names, at their glue or resolved addresses on ``upstream-port``, are asked "
                "from then on; the given ones stay in use until it is had; default false). "
                "The given servers are asked as the zone's authorities (RD "
                "clear) whatever its parent says; iteration goes on below it, and DNSSEC "
                "validation applies as for any zone."),
    Setting("local_zone", 'tuple[Any, ...]', (), zone_tables("local_zone"),
            doc="Local zones (Unbound's ``local-zone``), as ``[[local-zone]]`` tables "
                "(``name``, ``type``, ``local-data``: a list of zone-file lines inside the zone) "
                "or ``\"NAME TYPE\"`` strings, answered before the cache and any resolution, "
                "with AA set; the deepest zone holding the name decides. Types, as Unbound's "
                "(its ``local-zone`` types): ``static`` (local data, else NODATA or NXDOMAIN "
                "with the zone's SOA); ``transparent`` (local data; a name with data of other "
                "types NODATA; other names resolved); ``typetransparent`` (local data, "
                "anything else resolved); ``redirect`` (the zone's apex data answers every name "
                "below it; a CNAME there, asked for another type, is followed: the CNAME, then "
                "what its target resolves to, the target not asked of the local zones, as "
                "Unbound's local alias; a ``*`` first label of the target takes the "
                "question's name); ``refuse`` and ``deny`` (local data, else REFUSED or no "
                "answer); "
                "``inform``, ``inform_deny`` and ``inform_redirect`` (as transparent, deny and "
                "redirect, and each question logged as \"ZONE TYPE IP@PORT NAME TYPE IN\" to the "
                "``resolver.daemon.localzone`` logger at INFO); ``always_transparent``, "
                "``always_refuse``, ``always_nxdomain``, ``always_nodata`` and ``always_deny`` "
                "(ignore their local data: resolve, REFUSED (their own DS too), NXDOMAIN, "
                "NODATA, no answer); ``always_null`` (0.0.0.0 or :: for A and AAAA, TTL 3600, "
                "NODATA for other types); ``block_a`` and ``block_aaaa`` (NODATA for A, or "
                "AAAA, the rest resolved, local data ignored) and ``block_a_wdata``, "
                "``block_aaaa_wdata`` (the same, local data answered first); ``nodefault`` "
                "(removes the default zone of that name, see ``unblock-lan-zones``, and "
                "nothing else); ``noview`` (as ``transparent``; in a ``[[view]]``, the view does "
                "not hold its names: see ``view``). A DS "
                "question is answered by the zone above its name, as Unbound does. A CNAME "
                "of a zone of another type is the answer alone, and no local data answers "
                "ANY (NODATA where the zone has no other answer), as Unbound's. An ``inform`` "
                "line for a query with RD clear names no client (\"unknown\"): that path does "
                "not carry the address."),
    Setting("local_data", 'tuple[Any, ...]', (), zone_tables("local_data"),
            doc="Records served locally, as zone-file lines (``NAME [TTL] [IN] TYPE RDATA``; "
                "TTL 3600 when left out), placed in the deepest local zone holding them; a "
                "record outside every local zone gets a transparent zone at its own name (as "
                "Unbound). In the TOML file it must come before the first ``[[...]]`` table (or "
                "go in ``[server]``)."),
    Setting("local_data_ptr", 'tuple[Any, ...]', (), zone_tables("local_data_ptr"),
            doc="PTR records served locally, as ``\"ADDR NAME\"`` (or ``\"ADDR NAME TTL\"``) "
                "strings: the reverse name of the address points to the name (Unbound's "
                "``local-data-ptr``), as ``local-data`` does with the record it stands for."),
    Setting("view", 'tuple[Any, ...]', (), zone_tables("view"),
            doc="Views (Unbound's ``view:`` clauses), as ``[[view]]`` tables: ``name``, "
                "``local-zone``, ``local-data`` and ``local-data-ptr`` (as the global "
                "settings of those names) and ``view-first`` (default false), for the "
                "clients ``access-control-view`` maps to the view, whose local zones answer "
                "before the cache (and the global zones). A question none of the view's zones "
                "holds (a ``noview``, ``always_transparent``, ``block_a`` or ``block_aaaa`` "
                "zone never holds one; a ``transparent`` or ``inform`` zone holds only names "
                "with local data, a ``typetransparent`` one only the types it has) is "
                "resolved, or with ``view-first`` answered by the global local zones; a view "
                "with no zones or data of its own leaves its clients to the global zones. "
                "Unless ``view-first``, a view with zones of its own also serves the default "
                "local zones, the AS112 ones included (``nodefault`` removes one); with "
                "``view-first`` it serves none, and its ``nodefault`` zones keep their names "
                "away from the global zones (resolved). As Unbound's."),

), *section(
    # ---- default local zones (Unbound's) ----
    "default local zones (Unbound's)",
    Setting("unblock_lan_zones", 'bool', False, boolean,
            flag=Flag(None, "resolve the private and special-use reverse zones upstream",
                      form="both"),
            doc="Unbound's default local zones are always served (as Unbound's "
                "``local-zone`` defaults): ``localhost.`` (redirect: A 127.0.0.1 and AAAA ::1 "
                "for it and every name below it), the reverse zones of 127.0.0.0/8 and ::1 "
                "(static, a PTR to ``localhost.`` for 127.0.0.1 and ::1), ``test.``, "
                "``invalid.``, ``onion.``, ``home.arpa.``, ``resolver.arpa.``, ``service.arpa.`` "
                "(static) and the AS112 reverse zones: NXDOMAIN or NODATA from the resolver "
                "itself with the SOA ``localhost. nobody.invalid. 1 3600 1200 604800 10800`` "
                "(TTL 10800) and an NS ``localhost.``, never a query upstream. A ``local-zone`` "
                "of the same name replaces a default zone, and one of type ``nodefault`` "
                "removes it. As in Unbound, a ``stub-zone`` or ``forward-zone`` at or below a "
                "default zone does not lift it (its questions are still answered locally: give "
                "the name ``nodefault`` too); the daemon warns of such zones at start. "
                "This setting leaves out the AS112 default zones (Unbound's "
                "``unblock-lan-zones``): the "
                "reverse zones of RFC 1918 (10., 16-31.172., 168.192.in-addr.arpa), "
                "0.in-addr.arpa, 64-127.100.in-addr.arpa (RFC 6598), 254.169.in-addr.arpa, "
                "the TEST-NETs (2.0.192, 100.51.198, 113.0.203.in-addr.arpa), "
                "255.255.255.255.in-addr.arpa, the IPv6 unspecified address, d.f.ip6.arpa, "
                "8-b.e.f.ip6.arpa and 8.b.d.0.1.0.0.2.ip6.arpa are then resolved as usual, for "
                "a resolver serving one host whose LAN's reverse names its upstream knows. "
                "``localhost`` and the loopback reverse zones stay. Usually set with "
                "``insecure-lan-zones``."),
    Setting("insecure_lan_zones", 'bool', False, boolean,
            flag=Flag(None, "do not validate the private and special-use reverse zones",
                      form="both"),
            restart=True,
            doc="Treat the AS112 reverse zones (the list of ``unblock-lan-zones``) as "
                "unsigned, as ``domain-insecure`` entries (Unbound's ``insecure-lan-zones``): "
                "a LAN's reverse zones resolved upstream are not in the signed public tree, "
                "whose denial of them would make them bogus."),
), *section(
    'response policy zones (RPZ)',
    Setting("rpz", 'tuple[Any, ...]', (), rpz_tables,
            doc="Response policy zones, as ``[[rpz]]`` tables (Unbound's ``rpz:`` clause, "
                "draft-vixie-dnsop-dns-rpz): ``name`` (the zone), ``zonefile`` (read at start "
                "and at every reload) and/or ``primary`` (a list of ``ADDR``, ``ADDR@PORT``; "
                "Unbound's ``master`` is accepted too: the zone is transferred, by IXFR from "
                "the serial held where the primary offers it, else AXFR, and asked again on "
                "its SOA refresh timer, on its retry timer after a failure, never sooner than "
                "``limits.rpz-min-refresh``; a failed transfer keeps the zone held), "
                "``rpz-action-override`` (nxdomain, nodata, passthru, drop, disabled: matches "
                "logged and counted, not applied; cname: to ``rpz-cname-override``), "
                "``rpz-log`` (one line per match to the ``resolver.rpz`` logger at INFO: "
                "zone (``rpz-log-name`` if set), trigger, action, name, type, client), "
                "``rpz-signal-nxdomain-ra`` (RA clear on NXDOMAIN answers from the policy), "
                "``tags`` (tag names of ``define-tag``: the zone applies only to the clients "
                "of networks sharing one of them, ``access-control-tag``). "
                "Triggers: QNAME (exact and ``*.`` wildcard; on the query's name, and on each "
                "name the answer's CNAME chain leads to, in the chain's order (also the names "
                "a chain that ends in SERVFAIL reached: one longer than "
                "``limits.max-cname-chain``, a loop, a target that failed), where a match "
                "answers for that name after the CNAMEs that lead to it, PASSTHRU ends the "
                "policy for the query and TCP-ONLY leaves the answer as it is; a CNAME "
                "rewrite there is resolved as on the query's name), response IP (``rpz-ip``: A and "
                "AAAA addresses of the answer), client IP (``rpz-client-ip``), NSDNAME "
                "(``rpz-nsdname``) and NSIP (``rpz-nsip``): the name servers of the query "
                "name's zone and their addresses as the cache holds them when the answer is "
                "sent. Actions: NXDOMAIN (``CNAME .``), "
                "NODATA (``CNAME *.``), PASSTHRU (``CNAME rpz-passthru.``), DROP (``CNAME "
                "rpz-drop.``), TCP-ONLY (``CNAME rpz-tcp-only.``: TC over UDP), local data "
                "(any other records), CNAME rewrite (a CNAME to another name: the target "
                "resolved, not checked again, and answered after the CNAME). Zones are checked "
                "in the order given, the first with a match wins; in a zone the client-IP "
                "trigger before the QNAME trigger, exact before wildcard; response-IP, then "
                "NSDNAME, then NSIP triggers apply when no zone matched the client or the "
                "name (as Unbound). A question the local zones answer or drop meets no "
                "trigger: they come first, as in Unbound. Policy "
                "answers carry no AD and are not cached; the cache keeps the real data, so a "
                "name taken out of a zone resolves normally at once. With any ``[[rpz]]`` "
                "table a cached answer is served on the front door's C path only when no "
                "trigger can touch it (no client-IP, NSDNAME or NSIP trigger in any zone; no "
                "QNAME trigger, of any action or zone, on the name, a wildcard above it or a "
                "name of the answer's CNAME chain; no response-IP trigger on an address of "
                "the answer; no DNAME in the answer); "
                "every other recursive query passes the policy before the cache (its cache "
                "hits served through the engine, counted against the miss budgets); queries "
                "with RD clear are not checked. Owner "
                "names in a zone file are relative to the zone (names outside it are "
                "ignored). Each worker transfers the zones itself; NOTIFY is not listened "
                "for (the refresh timer is). Not supported: ``url``, ``for-downstream``, "
                "``tags``. Matches are counted per "
                "zone and action in ``stats`` and the metrics. A reload adds and removes "
                "zones."),
), *section(
    'a cache shared by workers and hosts (Redis; see shared-cache.md)',
    Setting("cachedb_backend", 'str | None', None, cachedb_backend,
            restart=True,
            example='"redis"',
            doc="Second-level cache shared by workers and hosts: \"redis\" to use one, None for "
                "none (Unbound's ``cachedb`` module with ``backend: redis``). Looked up after "
                "the local cache misses and before resolving; answers are written to it once "
                "they are sent."),
    Setting("redis_server_host", 'str', "127.0.0.1", text,
            restart=True,
            doc="The Redis server's address (with ``cachedb-backend = \"redis\"``)."),
    Setting("redis_server_port", 'int', 6379, number(int, 1, 65535),
            restart=True,
            doc="The Redis server's TCP port."),
    Setting("redis_server_path", 'str | None', None, optional(text),
            restart=True,
            example='"/run/redis/redis.sock"',
            doc="The Redis server's Unix socket, used instead of host and port when set."),
    Setting("redis_server_password", 'str | None', None, optional(text),
            restart=True,
            doc="The password sent (``AUTH``) when a connection to Redis is made, for a "
                "server with ``requirepass`` or an ACL on its default user; None: none is "
                "sent. A server that refuses it is counted and logged as Redis failing "
                "(Unbound's ``redis-server-password``)."),
    Setting("redis_logical_db", 'int', 0, number(int, 0, 1_000_000),
            restart=True,
            doc="The Redis database the shared cache's keys go in (``SELECT``, on each new "
                "connection): resolvers that share answers give the same (Unbound's "
                "``redis-logical-db``)."),
    Setting("cachedb_secret_seed", 'str', "default", text,
            restart=True,
            doc="Mixed into every key (a hash of it with the question), so that resolvers meant "
                "to share answers use the same seed and others cannot read or plant entries by "
                "name."),
    Setting("redis_timeout", 'int', 5, number(int, 1, 60_000),
            restart=True,
            doc="Milliseconds a look-up in the shared cache may take before the query is "
                "resolved without it (the error is counted, and the shared cache is skipped for "
                "a back-off while it keeps failing)."),
    Setting("cachedb_store_expired", 'bool', False, boolean,
            restart=True,
            doc="Keep answers in the shared cache past their TTL for the serve-stale window: "
                "one found expired fills the local cache as a stale answer, served if resolving "
                "fails."),
), *section(
    'encrypted DNS',
    Setting("tls_listen", 'tuple[Address, ...]', (), addresses(853),
            restart=True,
            example='["0.0.0.0:853"]',
            doc="DNS over TLS (RFC 7858): addresses to serve on, port 853 when none is given. "
                "Needs ``tls-service-key`` and ``tls-service-pem``. Same ACL, caps and idle "
                "timeout as TCP."),
    Setting("https_listen", 'tuple[Address, ...]', (), addresses(443),
            restart=True,
            example='["0.0.0.0:443"]',
            doc="DNS over HTTPS (RFC 8484, HTTP/2 and HTTP/1.1 on TLS): addresses to serve on, "
                "port 443 when none is given. Needs the same key and certificate as DNS over "
                "TLS."),
    Setting("http_listen", 'tuple[Address, ...]', (), addresses(80),
            restart=True,
            example='["127.0.0.1:8053"]',
            doc="DNS over plain HTTP (HTTP/2 with prior knowledge and HTTP/1.1), for a "
                "TLS-terminating proxy in front: addresses to serve on, port 80 when none is "
                "given; loopback addresses only unless ``http-notls-allow-nonlocal`` is set."),
    Setting("http_notls_allow_nonlocal", 'bool', False, boolean,
            restart=True,
            doc="Lets ``http-listen`` bind addresses other than loopback (queries then cross "
                "the network unencrypted)."),
    Setting("http_endpoint", 'str', "/dns-query", url_path,
            doc="The URL path DNS over HTTP(S) answers on; other paths get 404."),
    Setting("tls_service_key", 'str | None', None, optional(existing_file),
            example='"/etc/corenet-resolver/key.pem"',
            doc="Private key file (PEM) of the TLS listeners. Read again on reload: new "
                "handshakes use the new key and certificate, connections already open keep "
                "theirs, and sessions made before still resume (the session ticket keys stay, "
                "and all workers share them) unless the new key is of another kind (RSA after "
                "EC, say). Must stay readable by ``user``."),
    Setting("tls_service_pem", 'str | None', None, optional(existing_file),
            example='"/etc/corenet-resolver/cert.pem"',
            doc="Certificate chain file (PEM, the server's certificate first) of the TLS "
                "listeners; reloaded with the key."),
    Setting("pad_responses", 'bool', True, boolean,
            doc="Pads the DNS-over-TLS answers to queries that carry the EDNS padding option "
                "(RFC 7830) to a multiple of ``pad-responses-block-size`` octets, so that "
                "their sizes say less of what was asked (RFC 8467), as Unbound's "
                "``pad-responses``. Other transports are not padded (as Unbound's)."),
    Setting("pad_responses_block_size", 'int', 468, number(int, 1, 65535, whole=True),
            doc="The block the padded answers' sizes are a multiple of: 468 octets, RFC "
                "8467's recommendation for responses (Unbound's "
                "``pad-responses-block-size``)."),
    Setting("pad_queries", 'bool', True, boolean,
            doc="Pads the queries sent over DNS over TLS (``forward-tls-upstream``) to a "
                "multiple of ``pad-queries-block-size`` octets with the EDNS padding option "
                "(RFC 7830, RFC 8467), as Unbound's ``pad-queries``."),
    Setting("pad_queries_block_size", 'int', 128, number(int, 1, 65535, whole=True),
            doc="The block the padded queries' sizes are a multiple of: 128 octets, RFC "
                "8467's recommendation for queries (Unbound's ``pad-queries-block-size``)."),
    Setting("tls_ciphers", 'str | None', None, optional(cipher_list),
            example='"ECDHE+AESGCM:ECDHE+CHACHA20"',
            doc="The TLS listeners' TLS 1.2 cipher suites in OpenSSL's cipher list syntax, the "
                "server's order of preference (Unbound's ``tls-ciphers``); None: forward "
                "secrecy and AEAD only, "
                "\"ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL\". Applied "
                "to new connections on reload."),
    Setting("tls_ciphersuites", 'str | None', None, optional(cipher_list),
            example='"TLS_AES_128_GCM_SHA256"',
            doc="The TLS listeners' TLS 1.3 cipher suites, names joined by \":\" in the server's "
                "order of preference (Unbound's ``tls-ciphersuites``); None: "
                "\"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256\", "
                "a client that puts ChaCha20 first getting ChaCha20 (see "
                "``resolver.daemon.tls_server`` for why). Applied to new connections on reload."),
    Setting("tls_cert_bundle", 'str | None', None, optional(ca_bundle),
            example='"/etc/ssl/certs/ca-certificates.crt"',
            doc="CA certificates (a PEM file) that the certificates of forward zones' servers "
                "over TLS (``forward-tls-upstream = true``) are verified against; None: the "
                "system's store. Each such server is written ``ADDR@PORT#AUTH-NAME`` in "
                "``forward-addr`` (port 853 when left out), and its certificate must be valid "
                "for AUTH-NAME: a server that fails the check is not asked, and the zone's next "
                "one is (Unbound's ``tls-cert-bundle``)."),
    Setting("tls_system_cert", 'bool', False, boolean,
            doc="With ``tls-cert-bundle``, the system's store is trusted too, beside the "
                "bundle's CAs (Unbound's ``tls-system-cert``, and its ``tls-win-cert``). "
                "Without a bundle the system's store is the one trusted whatever this says "
                "(Unbound given neither option trusts no CA, and cannot verify a server "
                "named with ``#AUTH-NAME``)."),
    Setting("tls_session_tickets", 'int', 2, number(int, 0, MAX_SESSION_TICKETS, whole=True),
            doc="TLS 1.3 session tickets the TLS listeners send after a full handshake; each "
                "costs the server one ticket's encryption per new connection (about 6% of the "
                "instructions of a full handshake). OpenSSL's default, 2, lets a client resume "
                "two connections at once; 1 suffices for a client that resumes one at a time "
                "(each resumption brings a new ticket); 0 sends none, so no connection is "
                "resumed. After a resumed handshake OpenSSL sends one ticket whatever this "
                "says. Applied to new connections on reload."),
    Setting("tls_session_ticket_keys", 'tuple[str, ...]', (), files,
            example=('["/etc/corenet-resolver/ticket-new.key", '
                     '"/etc/corenet-resolver/ticket-old.key"]'),
            doc="Files of session ticket keys (80 random bytes each, Unbound's format: ``head "
                "-c 80 /dev/urandom``): the first encrypts the tickets, all decrypt them, so a "
                "key is rotated by putting a new file first, keeping the old one second for as "
                "long as its tickets should resume, and sending ``reload`` (Unbound's "
                "``tls-session-ticket-keys``). Daemons with the same files resume each other's "
                "sessions. None given: keys drawn at start, shared by the workers, lasting "
                "until a restart. Must stay readable by ``user``."),
))

#: Each setting by its attribute name.
BY_NAME: dict[str, Setting] = {s.name: s for s in TABLE}
#: Every name a setting is accepted by (its own, its aliases, Unbound's) -> its attribute.
ALIASES: dict[str, str] = {other.replace("-", "_"): s.name for s in TABLE
                           for other in (*s.aliases, *((s.unbound,) if s.unbound else ()))
                           if other.replace("-", "_") != s.name}
#: What a reload cannot change.
RESTART_SETTINGS: tuple[str, ...] = tuple(s.name for s in TABLE if s.restart)
#: Settings that set a field of ``Limits`` themselves: that field is set there, not in
#: ``[limits]``.
LIMITS_AS_SETTINGS: dict[str, str] = {s.limit: s.key for s in TABLE if s.limit}
#: The zone settings (``resolver.zones``).
ZONE_SETTINGS: tuple[str, ...] = tuple(s.name for s in TABLE
                                       if getattr(s.convert, "zone", False))


# ---- the engine's limits (``resolver.limits.Limits``): ``[limits]`` keys ----------------------
#: Limits that may be 0 (a count of none, a feature off, no allowance); every other count
#: is at least 1 and every other duration above 0.
_FROM_ZERO = frozenset({
    "ratelimit", "ratelimit_factor", "min_ttl", "max_ttl", "max_negative_ttl", "failure_ttl", "max_minimise_count",
    "stale_window", "stale_answer_ttl", "prefetch_min_hits", "server_holddown",
    "dnssec_max_suspends", "dnssec_max_ds_match_failures", "nsec3_max_iterations",
    "dnssec_sig_skew_min", "dnssec_sig_skew_max", "dnssec_bogus_ttl",
    "doh_throttle_penalty", "val_max_restart"})
#: Limits with bounds of their own.
_BOUNDS = {"prefetch_fraction": (0, 1), "exploration": (0, 1),
           "max_tcp_message": (512, 65535), "min_ttl": (0, TTL_MAX),
           "max_ttl": (0, TTL_MAX), "max_negative_ttl": (0, TTL_MAX),
           "tls_upstream_max_outstanding": (1, 65535),
           # RFC 9520 3.2: a resolution failure is cached at most five minutes
           "failure_ttl": (0, 300), "dnssec_bogus_ttl": (0, 300)}


def _limit_row(f) -> Setting:
    kind = {"int": int, "float": float}[f.type]
    low, high = _BOUNDS.get(f.name, (0 if f.name in _FROM_ZERO else
                                     (1 if kind is int else 0.001), None))
    return Setting(f.name, f.type, f.default, number(kind, low, high, whole=kind is int),
                   restart=True, limit=f.name, section="limits")


#: Each limit as a ``[limits]`` key (its doc and reason are the comments in resolver.limits).
LIMITS: dict[str, Setting] = {f.name: _limit_row(f) for f in fields(Limits)}


def limit_value(name: str, value: Any) -> Any:
    """One limit from the config file, checked against its type and range."""
    return LIMITS[name].convert(value, f"limits.{name}")


# ---- Config, made from the table ----------------------------------------------------------------
def _ipv6(self) -> bool:
    """``do_ip6`` by its other name."""
    return self.do_ip6


Config = make_dataclass(
    "Config",
    [(s.name, s.type, field(default=s.default)) for s in TABLE]
    + [("config_file", "str | None", field(default=None))],      # where it came from
    frozen=True, namespace={"ipv6": property(_ipv6), "__module__": __name__,
                            "__doc__": "The daemon's settings (see TABLE); frozen."})


def default_of(s: Setting) -> Any:
    """A setting's default as the daemon uses it (a limit's when the setting is unset)."""
    if s.default is None and s.limit is not None:
        return getattr(_LIMITS, s.limit)
    return s.default


# ---- the command line -------------------------------------------------------------------------
def add_flags(parser) -> None:
    """``serve``'s flags, one per setting that has one; each is None when not given."""
    import argparse

    for s in TABLE:
        f = s.flag
        if f is None:
            continue
        dest = f.dest or s.name
        if f.form == "no":
            parser.add_argument(f"--no-{s.key}", *f.names, dest=dest, action="store_const",
                                const=False, default=None, help=f.help)
        elif f.form == "both":
            parser.add_argument(f"--{s.key}", *f.names, dest=dest, default=None,
                                action=argparse.BooleanOptionalAction,
                                help=f"{f.help} (default: {'on' if default_of(s) else 'off'})")
        else:
            shown = flag_default(s)
            parser.add_argument(f"--{s.key}", *f.names, dest=dest, metavar=f.metavar,
                                action="append" if f.repeat else "store", default=None,
                                help=f.help + (f" (default: {shown})" if shown else ""))


def flag_default(s: Setting) -> str:
    value = default_of(s)
    if value is None or value == ():
        return ""
    if isinstance(value, tuple):
        return ", ".join(f"{v[0]}:{v[1]}" if isinstance(v, tuple) else str(v) for v in value)
    return str(value)


def overrides(ns) -> dict[str, Any]:
    """The settings given on the command line (parsed by :func:`add_flags`), by name; None
    for a flag not given."""
    return {s.name: getattr(ns, s.flag.dest or s.name) for s in TABLE if s.flag}
