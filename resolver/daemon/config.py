"""The daemon's configuration: defaults, a TOML file (``tomllib``) and the command line.

Precedence is default < config file < command line. Every value is checked here, before
anything binds, and a bad one raises :class:`ConfigError` whose message names the option
(the CLI prints it on one line and exits with status 2).
"""
from __future__ import annotations

import ipaddress
import logging
import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from resolver import limits as L
from resolver.limits import DEFAULT as _LIMITS, Limits


class ConfigError(ValueError):
    """A bad option or config value; the message names it."""


Address = tuple[str, int]


@dataclass(frozen=True)
class Config:
    #: Addresses to serve DNS on (UDP and TCP).
    listen: tuple[Address, ...] = (("127.0.0.1", 53), ("::1", 53))
    #: Root hints file; None for the real root servers shipped with the package.
    root_hints: str | None = None
    #: Clients allowed to query (networks); everyone else gets REFUSED.
    allow: tuple[Any, ...] = (ipaddress.ip_network("127.0.0.0/8"),
                              ipaddress.ip_network("::1/128"))
    #: Clients that may also ask with RD clear, answered from the cache only (Unbound's
    #: ``allow_snoop``); everyone else gets REFUSED for such a query (local zones still
    #: answer it), so what other clients asked cannot be read out of the cache. They may ask
    #: recursive queries too.
    allow_snoop: tuple[Any, ...] = ()
    #: Worker processes, each with its own sockets (SO_REUSEPORT) and its own cache.
    workers: int = 1
    #: Prometheus text over HTTP, or None.
    metrics: Address | None = None
    #: Unix control socket (stats, status, flush, reload); "" turns it off. At the default
    #: path a daemon that cannot create ``/run/corenet-resolver`` (not root) uses
    #: ``$XDG_RUNTIME_DIR/corenet-resolver/control`` (or ``/tmp/corenet-resolver-UID/control``)
    #: instead, and the commands look there too.
    control: str | None = "/run/corenet-resolver/control"
    #: Permission bits of the control socket. It belongs to root (or whoever started the
    #: daemon) and, with ``user``, to that user's group: 0660 lets root and that group in.
    control_mode: int = 0o660
    #: Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL.
    log_level: str = "INFO"
    #: Destination port of every authority (53 on the Internet; a lab may use another).
    upstream_port: int = 53
    #: Cache bound, bytes (messages and rrsets together), counted as the memory the entries
    #: really hold: a full cache adds at most 1.3 times this to the process, on top of
    #: a fixed 45-50 MiB (interpreter, modules, sockets) per worker.
    cache_size: int = 64 * 1024 * 1024
    #: DNSSEC trust anchor file (DS or DNSKEY records); None: the shipped root anchor when
    #: resolving from the real root, no validation with other root hints.
    trust_anchor: str | None = None
    #: DNSSEC validation on or off; None: on wherever there is a trust anchor.
    validate: bool | None = None
    #: Ask authorities over IPv6 too (their AAAA addresses), as Unbound's ``do-ip6: yes``.
    #: On a host without IPv6 routes an IPv6 address fails at once and is passed over; turn
    #: it off where IPv6 is routed but broken (every IPv6 server would time out once).
    #: ``ipv6`` is accepted as another name for it.
    do_ip6: bool = True
    # The listeners' limits: defaults and the reason for each in resolver.limits.
    #: TCP: a connection with no complete query for this long, seconds, is closed.
    tcp_idle_timeout: float = L.TCP_IDLE_TIMEOUT
    #: TCP: connections open at once; at the cap the oldest idle one is closed to make room,
    #: and a new one is refused only when none is idle.
    tcp_max_connections: int = L.TCP_MAX_CONNECTIONS
    #: TCP: connections one client address may hold at once.
    tcp_max_connections_per_client: int = L.TCP_MAX_CONNECTIONS_PER_CLIENT
    #: TCP: queries of one connection being resolved at once; past it reading pauses.
    tcp_max_inflight: int = L.TCP_MAX_INFLIGHT
    #: TCP: largest query frame accepted; a longer length closes the connection.
    tcp_max_query: int = L.TCP_MAX_QUERY
    #: UDP: no answer is larger, whatever the client's EDNS size says; past it the answer is
    #: truncated (TC) and the client asks over TCP (Unbound's ``max-udp-size``).
    max_udp_size: int = L.MAX_UDP_SIZE
    #: Cache misses being resolved at once for one client address; past it the query is
    #: dropped and counted.
    max_inflight_per_client: int = L.MAX_INFLIGHT_PER_CLIENT
    #: Cache misses being resolved at once in all (at start the daemon lowers this to what
    #: its descriptor limit allows, and says so).
    max_inflight: int = L.MAX_INFLIGHT
    #: Cache misses one client address may start per second (a bucket one second deep);
    #: past it the query is dropped and counted (``ratelimit``) while its cache hits are
    #: still answered. 0 turns it off (Unbound's ``ip-ratelimit``).
    ip_ratelimit: int = L.IP_RATELIMIT
    #: The IPv4 prefix that counts as one client for ``ip-ratelimit`` and
    #: ``max-inflight-per-client``: one address by default.
    ip_ratelimit_prefix_v4: int = L.IP_RATELIMIT_PREFIX_V4
    #: The IPv6 prefix that counts as one client for the same budgets (a /56 by default).
    ip_ratelimit_prefix_v6: int = L.IP_RATELIMIT_PREFIX_V6
    #: With every miss slot taken, a new miss may push out the oldest one once it has run
    #: this long, seconds (Unbound's ``jostle-timeout``): the old query gets no answer and
    #: is counted (``jostled``). 0 turns it off.
    jostle_timeout: float = L.JOSTLE_TIMEOUT
    #: The most new cache misses one wake-up of a UDP listener passes to the resolver; the
    #: wake-up's further misses are dropped and counted (``busy``) while its cache hits are
    #: still answered. The quota in force adapts below this (see ``busy-target``).
    misses_per_wakeup: int = L.MISSES_PER_WAKEUP
    #: Seconds a loop iteration may work before the daemon counts itself behind: each
    #: longer iteration halves the misses a wake-up may start, each shorter one lets the
    #: quota grow back. Under a flood of misses the loop settles near this, and a cached
    #: name is answered within about one iteration.
    busy_target: float = L.BUSY_TARGET
    #: Started as root, run as this user (and its group) once every socket is bound, with no
    #: supplementary groups and no capabilities left (Unbound's ``username``). Files read on
    #: reload (the config, root hints, trust anchor) must be readable by that user. Unset:
    #: the system user ``corenet-resolver`` when it exists (``scripts/serve.sh`` creates
    #: it), else ``nobody``; the empty string keeps root, which is not recommended. The
    #: installed package must be readable by that user (modules load lazily); where it is
    #: not (a virtual environment in root's home), the daemon says so and keeps root.
    user: str | None = None
    #: Seconds a graceful stop waits for queries in flight.
    shutdown_grace: float = 5.0
    #: Where the config came from (for reload).
    config_file: str | None = None
    # ---- service: serve-stale, prefetch, pidfile, query log
    #: Serve expired answers (RFC 8767) when the authorities fail, for at most
    #: ``serve-stale-window`` seconds past their expiry (Unbound's ``serve-expired``).
    serve_stale: bool = True
    #: How long past expiry an answer may still be served (Unbound's ``serve-expired-ttl``).
    serve_stale_window: int = _LIMITS.stale_window
    #: TTL put on an expired answer served (Unbound's ``serve-expired-reply-ttl``).
    serve_stale_ttl: int = _LIMITS.stale_answer_ttl
    #: Refresh popular cache entries in the background in the last tenth of their TTL
    #: (Unbound's ``prefetch``).
    prefetch: bool = True
    #: Hits an entry needs before it is prefetched (popular entries only).
    prefetch_min_hits: int = _LIMITS.prefetch_min_hits
    #: File the daemon's process id is written to once it serves (removed at exit), or None.
    #: Changed at restart only: it is written before the daemon drops its privileges.
    pidfile: str | None = None
    #: Log one line per answered query (client, name, type, rcode, flags, latency, cache hit)
    #: to the ``resolver.queries`` logger at INFO (Unbound's ``log-queries`` and
    #: ``log-replies``). Off by default: on, every query takes the Python path. A reload turns
    #: it off at once; on at restart only where corenet's C listener serves UDP.
    log_queries: bool = False
    # ---- zones (resolver.zones; no command-line flags: TOML tables) ----
    #: Forward zones, as ``[[forward-zone]]`` tables: ``name``, ``forward-addr`` (a list of
    #: `ADDR`, `ADDR@PORT` or `ADDR#PORT`; without a port, `upstream-port`),
    #: ``forward-first`` (recurse when no forwarder answers; default false),
    #: ``forward-tcp-upstream`` (TCP only; default false), ``forward-tls-upstream`` (DNS over
    #: TLS, see ``tls-cert-bundle``; default false). Questions at or below the name go
    #: to those recursive resolvers (RD set); the deepest forward or stub zone wins. Their
    #: answers are DNSSEC-validated when validation is on (see ``domain-insecure``).
    forward_zone: tuple[Any, ...] = ()
    #: Stub zones, as ``[[stub-zone]]`` tables: ``name``, ``stub-addr`` (a list, as
    #: ``forward-addr``). The given servers are asked as the zone's authorities (RD clear)
    #: whatever its parent says; iteration goes on below it, and DNSSEC validation applies
    #: as for any zone.
    stub_zone: tuple[Any, ...] = ()
    #: Local zones, as ``[[local-zone]]`` tables (``name``, ``type``, ``local-data``: a list
    #: of zone-file lines inside the zone) or ``"NAME TYPE"`` strings. Types (as Unbound's):
    #: static, transparent, typetransparent, redirect, refuse, deny, always_nxdomain,
    #: always_refuse, always_transparent.
    #: Answered before the cache and any resolution, with AA set.
    local_zone: tuple[Any, ...] = ()
    #: Records served locally, as zone-file lines (``NAME [TTL] [IN] TYPE RDATA``; TTL 3600
    #: when left out), placed in the deepest local zone holding them; a record outside
    #: every local zone gets a transparent zone at its own name (as Unbound). In the TOML
    #: file it must come before the first ``[[...]]`` table (or go in ``[server]``).
    local_data: tuple[Any, ...] = ()
    #: PTR records served locally, as ``"ADDR NAME"`` (or ``"ADDR NAME TTL"``) strings: the
    #: reverse name of the address points to the name (Unbound's ``local-data-ptr``), as
    #: ``local-data`` does with the record it stands for.
    local_data_ptr: tuple[Any, ...] = ()
    #: Second-level cache shared by workers and hosts: "redis" to use one, None for none
    #: (Unbound's ``cachedb`` module with ``backend: redis``). Looked up after the local
    #: cache misses and before resolving; answers are written to it once they are sent.
    cachedb_backend: str | None = None
    #: The Redis server's address (with ``cachedb-backend = "redis"``).
    redis_server_host: str = "127.0.0.1"
    #: The Redis server's TCP port.
    redis_server_port: int = 6379
    #: The Redis server's Unix socket, used instead of host and port when set.
    redis_server_path: str | None = None
    #: Mixed into every key (a hash of it with the question), so that resolvers meant to
    #: share answers use the same seed and others cannot read or plant entries by name.
    cachedb_secret_seed: str = "default"
    #: Milliseconds a look-up in the shared cache may take before the query is resolved
    #: without it (the error is counted, and the shared cache is skipped for a back-off
    #: while it keeps failing).
    redis_timeout: int = 5
    #: Keep answers in the shared cache past their TTL for the serve-stale window: one
    #: found expired fills the local cache as a stale answer, served if resolving fails.
    cachedb_store_expired: bool = False
    # ---- cache TTLs, glue, negative trust anchors and the resolver's limits
    #: Shortest time anything is cached, seconds: lower TTLs are raised to it, in the cache
    #: and in the answers clients get (Unbound's ``cache-min-ttl``). None: the ``min_ttl``
    #: limit (0, TTLs kept as the zone owner set them).
    cache_min_ttl: int | None = None
    #: Longest time anything is cached, seconds: higher TTLs are lowered to it (Unbound's
    #: ``cache-max-ttl``). None: the ``max_ttl`` limit (one day).
    cache_max_ttl: int | None = None
    #: Longest time a negative answer (NXDOMAIN, NODATA) is cached, seconds (Unbound's
    #: ``cache-max-negative-ttl``). None: the ``max_negative_ttl`` limit (one hour).
    cache_max_negative_ttl: int | None = None
    #: Glue is trusted only for names inside the zone that sent the referral (Unbound's
    #: ``harden-glue``). Off, out-of-zone addresses in a referral are used as well, as
    #: Unbound does with ``harden-glue: no``: fewer queries for some delegations, at the
    #: risk of a zone's servers naming addresses for names they do not serve.
    harden_glue: bool = True
    #: Negative trust anchors (Unbound's ``domain-insecure``): names at and below these
    #: domains are treated as unsigned (never bogus) even when a trust anchor above them
    #: says otherwise; a trust anchor at or below such a domain still wins.
    domain_insecure: tuple[str, ...] = ()
    #: The resolver's limits (``resolver.limits.Limits``), each settable by its field name
    #: in a ``[limits]`` table or as a top-level key; the defaults and the reason for each
    #: are listed below.
    limits: Limits = _LIMITS
    # ---- encrypted DNS
    #: DNS over TLS (RFC 7858): addresses to serve on, port 853 when none is given. Needs
    #: ``tls-service-key`` and ``tls-service-pem``. Same ACL, caps and idle timeout as TCP.
    tls_listen: tuple[Address, ...] = ()
    #: DNS over HTTPS (RFC 8484, HTTP/2 and HTTP/1.1 on TLS): addresses to serve on, port 443
    #: when none is given. Needs the same key and certificate as DNS over TLS.
    https_listen: tuple[Address, ...] = ()
    #: DNS over plain HTTP (HTTP/2 with prior knowledge and HTTP/1.1), for a TLS-terminating
    #: proxy in front: addresses to serve on, port 80 when none is given; loopback addresses
    #: only unless ``http-notls-allow-nonlocal`` is set.
    http_listen: tuple[Address, ...] = ()
    #: Lets ``http-listen`` bind addresses other than loopback (queries then cross the network
    #: unencrypted).
    http_notls_allow_nonlocal: bool = False
    #: The URL path DNS over HTTP(S) answers on; other paths get 404.
    http_endpoint: str = "/dns-query"
    #: Private key file (PEM) of the TLS listeners. Read again on reload: new handshakes use
    #: the new key and certificate, connections already open keep theirs, and sessions made
    #: before still resume (the session ticket keys stay, and all workers share them) unless
    #: the new key is of another kind (RSA after EC, say). Must stay readable by ``user``.
    tls_service_key: str | None = None
    #: Certificate chain file (PEM, the server's certificate first) of the TLS listeners;
    #: reloaded with the key.
    tls_service_pem: str | None = None
    #: The TLS listeners' TLS 1.2 cipher suites in OpenSSL's cipher list syntax, the server's
    #: order of preference (Unbound's ``tls-ciphers``); None: forward secrecy and AEAD only,
    #: "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL". Applied to new
    #: connections on reload.
    tls_ciphers: str | None = None
    #: The TLS listeners' TLS 1.3 cipher suites, names joined by ":" in the server's order
    #: of preference (Unbound's ``tls-ciphersuites``); None:
    #: "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256", a
    #: client that puts ChaCha20 first getting ChaCha20 (see ``resolver.daemon.tls_server``
    #: for why). Applied to new connections on reload.
    tls_ciphersuites: str | None = None
    # ---- authorities: which servers are asked, and how
    #: QNAME minimisation (RFC 9156) in relaxed mode: each zone is asked about one more
    #: label of the name only; a minimised query that fails (timeout, REFUSED, SERVFAIL,
    #: FORMERR, or NXDOMAIN from an unsigned zone) is asked again with the full name, and
    #: that zone is asked full names for ``infra-host-ttl``.
    qname_minimisation: bool = True
    #: Ask authorities at their IPv4 addresses (Unbound's ``do-ip4``).
    do_ip4: bool = True
    #: Never send a query to a loopback authority address (127.0.0.0/8, ::1), whatever a
    #: zone's NS and glue say, so a zone cannot point the resolver at services on its own
    #: host (Unbound's ``do-not-query-localhost``); stub zones' addresses too. A forward
    #: zone's addresses are the operator's own choice and are asked even on loopback (a local
    #: forwarder is the usual case), where Unbound wants this switch off for them. A lab of
    #: authorities on loopback turns it off.
    do_not_query_localhost: bool = True
    #: Seconds a mark on an authority address lasts (lame for a zone, EDNS refused); past
    #: it the server is tried again (Unbound's ``infra-host-ttl``).
    infra_host_ttl: float = 900.0
    # ---- per-zone upstream rate limits (the zone-ratelimit block below)
    #: Queries per second sent to the servers of these zones, each its own limit over the
    #: ``ratelimit`` limit (Unbound's ``ratelimit-for-domain``): a table of domain = number,
    #: or a list of "domain number" strings; 0 turns the limit off for that zone.
    ratelimit_for_domain: tuple[tuple[str, int], ...] = ()
    #: The same for every zone below these domains (Unbound's ``ratelimit-below-domain``);
    #: the deepest domain above a zone gives its limit, and a zone of
    #: ``ratelimit-for-domain`` keeps its own.
    ratelimit_below_domain: tuple[tuple[str, int], ...] = ()
    # ---- forwarding over TLS
    #: CA certificates (a PEM file) that the certificates of forward zones' servers over
    #: TLS (``forward-tls-upstream = true``) are verified against; None: the system's store.
    #: Each such server is written ``ADDR@PORT#AUTH-NAME`` in ``forward-addr`` (port 853
    #: when left out), and its certificate must be valid for AUTH-NAME: a server that fails
    #: the check is not asked, and the zone's next one is (Unbound's ``tls-cert-bundle``).
    tls_cert_bundle: str | None = None
    # ---- TLS session tickets
    #: TLS 1.3 session tickets the TLS listeners send after a full handshake; each costs the
    #: server one ticket's encryption per new connection (about 6% of the instructions of a
    #: full handshake). OpenSSL's default, 2, lets a client resume two connections at once;
    #: 1 suffices for a client that resumes one at a time (each resumption brings a new
    #: ticket); 0 sends none, so no connection is resumed. After a resumed handshake OpenSSL
    #: sends one ticket whatever this says. Applied to new connections on reload.
    tls_session_tickets: int = 2
    #: Files of session ticket keys (80 random bytes each, Unbound's format: ``head -c 80
    #: /dev/urandom``): the first encrypts the tickets, all decrypt them, so a key is
    #: rotated by putting a new file first, keeping the old one second for as long as its
    #: tickets should resume, and sending ``reload`` (Unbound's
    #: ``tls-session-ticket-keys``). Daemons with the same files resume each other's
    #: sessions. None given: keys drawn at start, shared by the workers, lasting until a
    #: restart. Must stay readable by ``user``.
    tls_session_ticket_keys: tuple[str, ...] = ()

    @property
    def ipv6(self) -> bool:
        """``do_ip6`` by its other name."""
        return self.do_ip6


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_address(text: str, what: str, default_port: int = 53) -> Address:
    """``ADDR:PORT``, ``[v6]:PORT``, ``ADDR`` (port defaulted) -> (addr, port)."""
    if not isinstance(text, str) or not text:
        raise ConfigError(f"{what}: expected ADDR:PORT, got {text!r}")
    host, port = text, str(default_port)
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ConfigError(f"{what}: unclosed '[' in {text!r}")
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"{what}: expected [ADDR]:PORT, got {text!r}")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif text.count(":") > 1 and "@" in text:
        host, port = text.rsplit("@", 1)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"{what}: {host!r} is not an IP address") from None
    try:
        p = int(port)
    except ValueError:
        raise ConfigError(f"{what}: port {port!r} is not a number") from None
    if not 0 <= p <= 65535:
        raise ConfigError(f"{what}: port {p} out of range 0-65535")
    return host, p


def _network(text: str, what: str):
    try:
        return ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not an address or CIDR network") from None


def _check_file(path: Any, what: str) -> str:
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{what}: expected a file path, got {path!r}")
    if not os.path.isfile(path):
        raise ConfigError(f"{what}: no such file {path!r}")
    return path


def _number(value: Any, what: str, kind: type, low: float, high: float | None = None):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{what}: expected a number, got {value!r}")
    try:
        v = kind(value)
    except ValueError:
        raise ConfigError(f"{what}: expected a number, got {value!r}") from None
    if v < low or (high is not None and v > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ConfigError(f"{what}: {v} must be {bound}")
    return v


def _as_list(value: Any, what: str) -> list:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{what}: expected a list, got {value!r}")
    return list(value)


# Setting name -> converter(value, name) -> value, shared by the file and the command line.
def _convert(name: str, value: Any, what: str | None = None) -> Any:
    what = what or name.replace("_", "-")
    if name in ZONE_RATELIMIT_SETTINGS:
        return _zone_ratelimits(value, what)
    if name in ZONE_SETTINGS:
        return _zone_setting(name, value)
    if name == "listen":
        items = _as_list(value, what)
        if not items:
            raise ConfigError(f"{what}: at least one address is needed")
        return tuple(parse_address(v, what) for v in items)
    if name in ("allow", "allow_snoop"):
        return tuple(_network(v, what) for v in _as_list(value, what))
    if name == "root_hints":
        return None if value is None else _check_file(value, what)
    if name == "trust_anchor":
        if value is None:
            return None
        from resolver.dnssec.trust_anchor import TrustAnchorError, load as load_anchor
        try:
            load_anchor(_check_file(value, what))
        except TrustAnchorError as e:
            raise ConfigError(f"{what}: {e}") from None
        return value
    if name == "metrics":
        return None if value in (None, "") else parse_address(value, what, 9153)
    if name == "control":
        if value in (None, ""):
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{what}: expected a path, got {value!r}")
        parent = Path(value).parent
        if not parent.is_dir():
            raise ConfigError(f"{what}: directory {str(parent)!r} does not exist")
        return value
    if name == "control_mode":
        if isinstance(value, str):
            try:
                value = int(value, 8)
            except ValueError:
                raise ConfigError(f"{what}: {value!r} is not an octal mode") from None
        return _number(value, what, int, 0, 0o777)
    if name == "user":
        if value is None:
            return None
        if value == "":
            return ""
        import pwd
        try:
            pwd.getpwnam(str(value))
        except KeyError:
            raise ConfigError(f"{what}: no such user {value!r}") from None
        return str(value)
    if name == "log_level":
        if not isinstance(value, str) or value.upper() not in _LEVELS:
            raise ConfigError(f"{what}: {value!r} is not one of {', '.join(_LEVELS)}")
        return value.upper()
    if name in ("validate", "do_ip6", "qname_minimisation", "do_ip4",
                "do_not_query_localhost"):
        if not isinstance(value, bool):
            raise ConfigError(f"{what}: expected true or false, got {value!r}")
        return value
    if name == "workers":
        return _number(value, what, int, 1, 256)
    if name == "upstream_port":
        return _number(value, what, int, 1, 65535)
    if name == "cache_size":
        return _number(value, what, int, 4096)
    if name in ("tcp_idle_timeout", "shutdown_grace"):
        return _number(value, what, float, 0.01, 3600)
    if name in ("tcp_max_connections", "tcp_max_inflight", "max_inflight_per_client",
                "max_inflight", "tcp_max_connections_per_client"):
        return _number(value, what, int, 1, 10_000_000)
    if name == "tcp_max_query":
        return _number(value, what, int, 17, 65535)
    if name == "ip_ratelimit":
        return _number(value, what, int, 0, 10_000_000)
    if name == "ip_ratelimit_prefix_v4":
        return _number(value, what, int, 8, 32)
    if name == "ip_ratelimit_prefix_v6":
        return _number(value, what, int, 16, 128)
    if name == "busy_target":
        return _number(value, what, float, 0.0005, 10)
    if name == "misses_per_wakeup":
        return _number(value, what, int, 1, 1_000_000)
    if name == "jostle_timeout":
        return _number(value, what, float, 0, 3600)
    if name == "max_udp_size":
        return _number(value, what, int, 512, 65535)
    if name == "infra_host_ttl":
        return _number(value, what, float, 0, 86400)
    if name in CACHEDB_SETTINGS:
        return _convert_cachedb(name, value, what)
    if name in CACHE_TTLS:
        return None if value is None else _number(value, what, int, 0, TTL_MAX)
    if name == "harden_glue":
        if not isinstance(value, bool):
            raise ConfigError(f"{what}: expected true or false, got {value!r}")
        return value
    if name == "domain_insecure":
        return tuple(_domain(v, what) for v in _as_list(value, what))
    if name == "limits":
        if isinstance(value, Limits):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{what}: expected a table of limits, got {value!r}")
        return _limits({k.replace("-", "_"): v for k, v in value.items()})
    converted = _convert_service(name, what, value)
    if converted is not _UNKNOWN:
        return converted
    if name in ENCRYPTED_SETTINGS:
        return _convert_encrypted(name, what, value)
    if name == "tls_cert_bundle":
        return _tls_cert_bundle(value, what)
    if name in TICKET_SETTINGS:
        return _convert_tickets(name, what, value)
    raise ConfigError(f"unknown setting {what!r}")


_UNKNOWN = object()


def _convert_service(name: str, what: str, value: Any) -> Any:
    """The service block's settings (serve-stale, prefetch, pidfile, query log)."""
    if name in ("serve_stale", "prefetch", "log_queries"):
        if not isinstance(value, bool):
            raise ConfigError(f"{what}: expected true or false, got {value!r}")
        return value
    if name == "serve_stale_window":
        return _number(value, what, int, 0, 30 * 86400)
    if name == "serve_stale_ttl":
        return _number(value, what, int, 0, 86400)
    if name == "prefetch_min_hits":
        return _number(value, what, int, 1, 1_000_000)
    if name == "pidfile":
        if value in (None, ""):
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{what}: expected a path, got {value!r}")
        if not Path(value).parent.is_dir():
            raise ConfigError(f"{what}: directory {str(Path(value).parent)!r} does not exist")
        return value
    return _UNKNOWN


def engine_limits(cfg: "Config", base=_LIMITS):
    """``base`` (the engine's limits) with the serve-stale and prefetch settings applied."""
    return replace(base,
                   stale_window=cfg.serve_stale_window if cfg.serve_stale else 0,
                   stale_answer_ttl=cfg.serve_stale_ttl,
                   prefetch_fraction=base.prefetch_fraction if cfg.prefetch else 0.0,
                   prefetch_min_hits=cfg.prefetch_min_hits)


#: The zone settings (resolver.zones): lists of tables, checked by ``_zone_setting``.
ZONE_SETTINGS = ("forward_zone", "stub_zone", "local_zone", "local_data", "local_data_ptr")


def _zone_setting(name: str, value: Any) -> tuple:
    from resolver import zones

    if name in ("local_data", "local_data_ptr"):
        parse = zones.local_data if name == "local_data" else zones.ptr_records
    else:
        parse = {"forward_zone": zones.forward_zone, "stub_zone": zones.stub_zone,
                 "local_zone": zones.local_zone}[name]
    if isinstance(value, dict) or (name == "local_zone" and isinstance(value, str)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name.replace('_', '-')}: expected a list of tables, "
                          f"got {value!r}")
    try:
        if name in ("local_data", "local_data_ptr"):
            return parse(value)
        return tuple(parse(v) for v in value)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def make_zones(cfg: Config):
    """The config's zones as ``resolver.zones.Zones`` (None when there are none); a name
    given twice raises ConfigError."""
    from resolver.zones import Zones

    forward = tuple(replace(z, tls_cert_bundle=cfg.tls_cert_bundle) if z.transport == "tls"
                    else z for z in cfg.forward_zone)
    try:
        zones = Zones(forward, cfg.stub_zone, cfg.local_zone,
                      cfg.local_data + cfg.local_data_ptr)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return zones if zones else None


CACHEDB_SETTINGS = ("cachedb_backend", "redis_server_host", "redis_server_port",
                    "redis_server_path", "cachedb_secret_seed", "redis_timeout",
                    "cachedb_store_expired")


def _convert_cachedb(name: str, value: Any, what: str) -> Any:
    """The shared cache's settings."""
    if name == "cachedb_backend":
        if value in (None, "", "none"):
            return None
        if value != "redis":
            raise ConfigError(f"{what}: {value!r} is not a backend (redis or none)")
        return value
    if name == "redis_server_port":
        return _number(value, what, int, 1, 65535)
    if name == "redis_timeout":
        return _number(value, what, int, 1, 60_000)
    if name == "cachedb_store_expired":
        if not isinstance(value, bool):
            raise ConfigError(f"{what}: expected true or false, got {value!r}")
        return value
    if name == "redis_server_path" and value in (None, ""):
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what}: expected a non-empty string, got {value!r}")
    return value
# ---- cache TTLs, glue, negative trust anchors, limits ---------------------------------------

#: The largest TTL there is (RFC 2181 section 8).
TTL_MAX = 2**31 - 1

#: The cache-TTL settings and the limit each one sets.
CACHE_TTLS = {"cache_min_ttl": "min_ttl", "cache_max_ttl": "max_ttl",
               "cache_max_negative_ttl": "max_negative_ttl"}

LIMIT_FIELDS = tuple(f.name for f in fields(Limits))

#: Limits that settings of their own set (the cache TTLs, serve-stale, prefetch): the file
#: sets them there, once.
_LIMITS_AS_SETTINGS = {"min_ttl": "cache-min-ttl", "max_ttl": "cache-max-ttl",
                       "max_negative_ttl": "cache-max-negative-ttl",
                       "stale_window": "serve-stale-window",
                       "stale_answer_ttl": "serve-stale-ttl",
                       "prefetch_min_hits": "prefetch-min-hits"}

#: Limits that may be 0 (a count of none, a feature off, no allowance); every other count
#: is at least 1 and every other duration above 0.
_LIMITS_FROM_ZERO = frozenset({"ratelimit", "ratelimit_factor",
    "min_ttl", "max_ttl", "max_negative_ttl", "failure_ttl", "max_minimise_count",
    "stale_window", "stale_answer_ttl", "prefetch_min_hits", "server_holddown",
    "dnssec_max_suspends", "dnssec_max_ds_match_failures", "nsec3_max_iterations",
    "dnssec_clock_skew", "dnssec_bogus_ttl"})
#: Limits with bounds of their own: fractions, the TCP message size, TTLs, failure caching.
_LIMIT_BOUNDS = {"prefetch_fraction": (0, 1), "exploration": (0, 1),
                 "max_tcp_message": (512, 65535), "min_ttl": (0, TTL_MAX),
                 "max_ttl": (0, TTL_MAX), "max_negative_ttl": (0, TTL_MAX),
                 "tls_upstream_max_outstanding": (1, 65535),
                 # RFC 9520 3.2: a resolution failure is cached at most five minutes
                 "failure_ttl": (0, 300), "dnssec_bogus_ttl": (0, 300)}


def _domain(value: Any, what: str) -> str:
    import dns.exception
    import dns.name

    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what}: expected a domain name, got {value!r}")
    try:
        return dns.name.from_text(value).to_text()
    except dns.exception.DNSException as e:
        raise ConfigError(f"{what}: {value!r} is not a domain name ({e})") from None


def limit_value(name: str, value: Any) -> Any:
    """One limit from the config file, checked against its type and range."""
    what = f"limits.{name}"
    kind = {"int": int, "float": float}[Limits.__dataclass_fields__[name].type]
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"{what}: expected a whole number, got {value!r}")
    low, high = _LIMIT_BOUNDS.get(name, (0 if name in _LIMITS_FROM_ZERO else
                                         (1 if kind is int else 0.001), None))
    return _number(value, what, kind, low, high)


def _limits(values: dict[str, Any], base: Limits = _LIMITS) -> Limits:
    """``base`` with ``values`` (field name -> raw value) checked and set."""
    for name in values:
        if name not in LIMIT_FIELDS:
            raise ConfigError(f"limits: unknown limit {name.replace('_', '-')!r}")
    lim = base.replace(**{k: limit_value(k, v) for k, v in values.items()})
    _check_limits(lim)
    return lim


def _check_limits(lim: Limits) -> None:
    if lim.min_ttl > lim.max_ttl:
        raise ConfigError(f"cache-min-ttl: {lim.min_ttl} is above cache-max-ttl {lim.max_ttl}")
    if lim.min_rto > lim.max_rto:
        raise ConfigError(f"limits.min_rto: {lim.min_rto} is above max_rto {lim.max_rto}")


def _effective_limits(cfg: Config) -> Limits:
    """``cfg.limits`` with the cache-TTL settings that were given put in."""
    changes = {limit: getattr(cfg, name) for name, limit in CACHE_TTLS.items()
               if getattr(cfg, name) is not None}
    lim = cfg.limits.replace(**changes) if changes else cfg.limits
    _check_limits(lim)
    return lim


SETTINGS = tuple(f.name for f in fields(Config) if f.name != "config_file")

#: Other names accepted for a setting, in the file and as overrides.
ALIASES = {"ipv6": "do_ip6"}

#: What a reload cannot change: sockets, processes, the resolver's construction, the user.
#: (The pidfile is written before privileges are dropped; serve-stale, prefetch and the query
#: log are applied by ``Server.apply``, the query log's turning on at restart where corenet's
#: C listener answers hits.)
RESTART_SETTINGS = ("listen", "workers", "metrics", "control", "upstream_port", "root_hints",
                    "cache_size", "trust_anchor", "validate", "user", "pidfile",
                    "cache_min_ttl", "cache_max_ttl", "cache_max_negative_ttl", "harden_glue",
                    "domain_insecure", "limits")
RESTART_SETTINGS += CACHEDB_SETTINGS


# ---- encrypted DNS settings
ENCRYPTED_SETTINGS = ("tls_listen", "https_listen", "http_listen", "http_notls_allow_nonlocal",
                      "http_endpoint", "tls_service_key", "tls_service_pem", "tls_ciphers",
                      "tls_ciphersuites")
#: Each listener's port when an address comes without one.
DEFAULT_PORTS = {"tls_listen": 853, "https_listen": 443, "http_listen": 80}
RESTART_SETTINGS += ("tls_listen", "https_listen", "http_listen", "http_notls_allow_nonlocal")


def _convert_encrypted(name: str, what: str, value: Any) -> Any:
    if name in DEFAULT_PORTS:
        return tuple(parse_address(v, what, DEFAULT_PORTS[name]) for v in _as_list(value, what))
    if name == "http_notls_allow_nonlocal":
        if not isinstance(value, bool):
            raise ConfigError(f"{what}: expected true or false, got {value!r}")
        return value
    if name == "http_endpoint":
        if (not isinstance(value, str) or not value.startswith("/") or "?" in value
                or any(c.isspace() for c in value)):
            raise ConfigError(f"{what}: expected a URL path such as /dns-query, got {value!r}")
        return value
    if name in ("tls_ciphers", "tls_ciphersuites"):
        if value is None or value == "":
            return None
        if not isinstance(value, str) or any(c.isspace() for c in value):
            raise ConfigError(f"{what}: expected OpenSSL's cipher names joined by ':', "
                              f"got {value!r}")
        return value
    return None if value in (None, "") else _check_file(value, what)


def unloadable_pair(cfg: "Config", e: Exception) -> ConfigError:
    """The error for a certificate and key that do not load together."""
    return ConfigError(f"tls-service-pem/tls-service-key: cannot load "
                       f"{cfg.tls_service_pem!r} with {cfg.tls_service_key!r}: {e}")


def check_encrypted(cfg: "Config") -> None:
    """What the encrypted listeners need together: a key and certificate that load and
    cipher suites that OpenSSL can use (checked here, in a context like the listeners', so
    that a bad setting stops the daemon or a reload before anything changes), and plain
    HTTP on loopback unless allowed elsewhere."""
    if cfg.tls_listen or cfg.https_listen:
        if cfg.tls_service_key is None or cfg.tls_service_pem is None:
            raise ConfigError("tls-service-key and tls-service-pem are needed by "
                              "tls-listen and https-listen")
        import ssl
        from resolver.daemon.tls_server import ServerContext, read_ticket_keys
        try:
            keys = read_ticket_keys(cfg.tls_session_ticket_keys)
        except (OSError, ValueError) as e:
            raise ConfigError(f"tls-session-ticket-keys: {e}") from None
        try:
            ServerContext(cfg.tls_service_pem, cfg.tls_service_key, (), 0, cfg.tls_ciphers,
                          cfg.tls_ciphersuites, keys)
        except ValueError as e:
            raise ConfigError(f"tls-ciphers/tls-ciphersuites: {e}") from None
        except (OSError, ssl.SSLError) as e:
            raise unloadable_pair(cfg, e) from None
    if not cfg.http_notls_allow_nonlocal:
        for host, _ in cfg.http_listen:
            if not ipaddress.ip_address(host).is_loopback:
                raise ConfigError(f"http-listen: {host} is not a loopback address (set "
                                  "http-notls-allow-nonlocal to serve plain HTTP there)")


# ---- forwarding over TLS
def _tls_cert_bundle(value: Any, what: str) -> str | None:
    """A CA file that loads as one (a reload with a broken file changes nothing)."""
    if value in (None, ""):
        return None
    path = _check_file(value, what)
    import ssl
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"{what}: cannot load {path!r} as CA certificates: {e}") from None
    return path


# ---- TLS session tickets
TICKET_SETTINGS = ("tls_session_tickets", "tls_session_ticket_keys")


def _convert_tickets(name: str, what: str, value: Any) -> Any:
    if name == "tls_session_ticket_keys":
        return tuple(_check_file(v, what) for v in _as_list(value, what) if v != "")
    if isinstance(value, float):
        raise ConfigError(f"{what}: expected a whole number, got {value!r}")
    return _number(value, what, int, 0, L.MAX_SESSION_TICKETS)


def load_file(path: str) -> dict[str, Any]:
    """The settings of a TOML file, converted and checked (keys may use - or _). An error
    names the file, the line of the key and the key."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        data = tomllib.loads(raw.decode("utf-8"))
    except OSError as e:
        raise ConfigError(f"--config: cannot read {path!r}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"--config: {path}: not UTF-8 text ({e.reason})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--config: {path}: {e}") from None
    text = raw.decode("utf-8")
    if isinstance(data.get("server"), dict):     # a [server] table is accepted too
        data = {**{k: v for k, v in data.items() if k != "server"}, **data["server"]}

    def where(key: str) -> str:
        line = key_line(text, key)
        return f"{path}:{line}" if line else path

    out: dict[str, Any] = {}
    limits: dict[str, Any] = {}         # a [limits] table and top-level limit keys
    table = data.get("limits")
    if "limits" in data and not isinstance(table, dict):
        raise ConfigError(f"{where('limits')}: limits: expected a [limits] table")
    for key, value in (table or {}).items():
        name = key.replace("-", "_")
        if name not in LIMIT_FIELDS:
            raise ConfigError(f"{where(key)}: unknown limit {key!r} in [limits]")
        if name in _LIMITS_AS_SETTINGS:
            raise ConfigError(f"{where(key)}: {key!r} is set by the "
                              f"{_LIMITS_AS_SETTINGS[name]!r} setting, not in [limits]")
        limits[name] = (key, value)
    for key, value in data.items():
        name = key.replace("-", "_")
        name = ALIASES.get(name, name)
        if name == "limits":
            continue
        if name in LIMIT_FIELDS and name not in SETTINGS:
            if name in _LIMITS_AS_SETTINGS:
                raise ConfigError(f"{where(key)}: {key!r} is set by the "
                                  f"{_LIMITS_AS_SETTINGS[name]!r} setting")
            if name in limits:
                raise ConfigError(f"{where(key)}: {key!r} is set both in [limits] and at "
                                  "the top level")
            limits[name] = (key, value)
            continue
        if name not in SETTINGS or name == "limits":
            raise ConfigError(f"{where(key)}: unknown setting {key!r}")
        try:
            out[name] = _convert(name, value, key)
        except ConfigError as e:
            raise ConfigError(f"{where(key)}: {e}") from None
    if limits:
        checked = {}
        for name, (key, value) in limits.items():
            try:
                checked[name] = limit_value(name, value)
            except ConfigError as e:
                raise ConfigError(f"{where(key)}: {e}") from None
        lim = _LIMITS.replace(**checked)
        try:
            _check_limits(lim)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        out["limits"] = lim
    return out


def key_line(text: str, key: str) -> int:
    """The line (from 1) where ``key`` is assigned in TOML ``text`` (bare or quoted, at the
    top or in a table), or where a table of that name starts; 0 if not found."""
    import re

    quoted = re.escape(key)
    assign = re.compile(rf"""^\s*(?:{quoted}|"{quoted}"|'{quoted}')\s*=""")
    table = re.compile(rf"""^\s*\[\s*(?:{quoted}|"{quoted}")\s*\]""")
    for number, line in enumerate(text.splitlines(), 1):
        if assign.match(line) or table.match(line):
            return number
    return 0


def build(config_file: str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the file, then ``overrides`` (raw command-line values, None = unset)."""
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(load_file(config_file))
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        name = ALIASES.get(name, name)
        values[name] = _convert(name, value)
    cfg = replace(Config(), **values, config_file=config_file)
    cfg = replace(cfg, limits=_effective_limits(cfg))
    if cfg.metrics is not None and cfg.metrics[1] == 0 and cfg.workers > 1:
        raise ConfigError("--metrics: port 0 cannot be shared by several workers")
    make_zones(cfg)
    check_encrypted(cfg)
    return cfg


def log_level(cfg: Config) -> int:
    return getattr(logging, cfg.log_level)


# ---- zone-ratelimit: Unbound's ratelimit-for-domain and ratelimit-below-domain (the numeric
# ``ratelimit`` and ``ratelimit-factor`` are limits, resolver.limits)

ZONE_RATELIMIT_SETTINGS = ("ratelimit_for_domain", "ratelimit_below_domain")


def _zone_ratelimits(value: Any, what: str) -> tuple[tuple[str, int], ...]:
    """A table of domain = queries per second, or a list of "domain number" strings (as
    Unbound writes them), as (domain, number) pairs."""
    if isinstance(value, dict):
        items = list(value.items())
    else:
        items = []
        for v in _as_list(value, what):
            parts = v.split() if isinstance(v, str) else []
            if len(parts) != 2:
                raise ConfigError(f"{what}: expected \"domain number\", got {v!r}")
            items.append((parts[0], parts[1]))
    out = []
    for domain, n in items:
        if isinstance(n, str) and n.isdigit():
            n = int(n)
        out.append((_domain(domain, what), _number(n, what, int, 0, 10_000_000)))
    return tuple(out)


def apply_zone_ratelimits(cfg: Config, rates) -> None:
    """Gives ``rates`` (the resolver's ``cache.infra.rates``) the config's per-domain
    limits; at start and on reload."""
    import dns.name

    def wire(pairs):
        return [(dns.name.from_text(d).to_wire(), n) for d, n in pairs]

    rates.configure(wire(cfg.ratelimit_for_domain), wire(cfg.ratelimit_below_domain))
