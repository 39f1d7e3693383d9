"""One worker of the daemon: its listeners in front of one :class:`resolver.Resolver`.

UDP on corenet's loop goes through the Cython ``UDPListener`` (recvmmsg, verdicts in C,
sendmmsg); on any other asyncio loop through a plain ``DatagramProtocol``. TCP goes through
corenet's framer (2-byte length): queries of one connection are resolved concurrently and
answered as they complete (out of order), with caps on connections and on queries in flight
per connection, and an idle timeout that also ends slow-loris clients. DNS over TLS and over
HTTPS start from ``tls_listener.start_encrypted``.

Every listener hands each query, with its kind of reply, to the one front door
(``resolver.daemon.admission.FrontDoor.handle``), which ends it in that reply: what a query
may be, its answer, its miss and its counts are decided there, once, for every transport.
The server only wires the listeners to it.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

from resolver.daemon import logs, proxy_protocol, reloads, udp_listener
from resolver.daemon.acl import ACL
from resolver.daemon.admission import (ACL_STANDING, ALLOWED_ACL, DENY_ACL, LATENCY_BUCKETS,
                                       RECURSION_BOUNDS,
                                       OUTSIDE_ACL, SNOOP_ACL, CallReply, FrontDoor)
from resolver.daemon.connection_limits import ConnectionLimits, Table
from resolver.daemon.connections import (ProxiedTCPConnection, TCPConnection, address_text,
                                         bind_socket, listen_options, proxy_dropped)
from resolver.daemon.config import (RESTART_SETTINGS, Config, apply_zone_ratelimits,
                                    engine_attributes, engine_limits, insecure_domains,
                                    make_zones, tag_networks)
from resolver.daemon.metrics import build_info, gc_stats, hit_rates, process_stats
from resolver.api import Resolver
from resolver import memory, operations
from resolver.cache.answer import set_rrset_roundrobin

log = logging.getLogger("resolver.daemon.server")

@dataclass(frozen=True)
class Staged:
    """A config with what applying it needs built (``Server.stage``): its zones
    (``resolver.zones.Zones`` or None), its RPZ zone files as read
    (``rpz_feed.read_zone_files``) and each encrypted listener's key and certificate
    (``TLSListener.stage``); and, worked out against the config and the engine's limits
    running then (``against``: the swap uses them only when they still run), the settings
    that need a restart, the engine's new attributes and its new limits."""
    cfg: Config
    zones: Any
    rpz: dict
    tls: dict
    against: tuple
    need_restart: tuple
    attributes: dict
    limits: Any


class Server:
    """One process (one worker): its listeners, the ACLs, the front door every listener
    hands its queries to, and management (reload, stats, stop)."""

    def __init__(self, cfg: Config, resolver: Resolver | None = None,
                 tls_services: dict | None = None, connection_table: Table | None = None,
                 index: int = 0) -> None:
        self.cfg = cfg
        self.resolver = resolver = resolver if resolver is not None else make_resolver(cfg)
        # the process's answers rotate their addresses while it serves (off again at close)
        set_rrset_roundrobin(cfg.rrset_roundrobin)
        #: the front door (``resolver.daemon.admission``): every query, to its reply
        self.front = FrontDoor(resolver.cache.messages.table, resolver,
                               resolver.limits.prefetch_fraction, cfg.max_udp_size, cfg)
        #: the front door's counter block
        self.counters = self.front.counters
        #: the TLS listeners' contexts by label, when made before the workers were forked
        #: (``tls_listener.service_contexts``); made at start otherwise
        self.tls_services: dict = tls_services or {}
        self.udp: list[Any] = []            # UDPListener or UDPProtocol
        self.tcp_servers: list[asyncio.AbstractServer] = []
        self.connections: set[TCPConnection] = set()
        self.tcp_by_client: dict = {}            # client address -> TCP connections open
        #: ``tcp-connection-limit``, counted across the workers in ``connection_table`` (the
        #: supervisor's; this worker's row is ``index``), or in this process alone
        self.connection_limits = ConnectionLimits(cfg.tcp_connection_limit, connection_table,
                                                  index)
        self.addresses: list[tuple[str, int]] = []
        #: each client network's standing (``admission.Who``), shared by the listeners
        self.acl = ACL(acl_entries(cfg))
        self.encrypted: list[Any] = []      # tls_listener.TLSListener / doh_listener.HTTPListener
        self.started_at = time.time()
        #: the prefetch point ``prefetch = true`` gives (the config's limits), also after a
        #: reload that turned prefetching off
        self.prefetch_base = cfg.limits.prefetch_fraction
        self.front.query_log = self._query_log(cfg)
        #: the response policy zones (``[[rpz]]``, ``rpz_feed.Feeds``), made when a config
        #: first names one
        self.rpz: Any = None
        self.policy_gate: Any = None        # rpz_gate.PolicyGate, with the first policy

    def _query_log(self, cfg: Config):
        """The per-query logs ``cfg`` turns on, or None when all are off."""
        from resolver.daemon.querylog import QueryLog
        if not QueryLog.wanted(cfg):
            return None
        return QueryLog(cfg, lambda: self.resolver.zones)

    def set_policy(self, policy) -> None:
        """Puts the response policy in the query path (None: none configured, and the
        path is the one without it)."""
        if policy is None:
            self.front.policy = None
            return
        if self.policy_gate is None:
            from resolver.daemon.rpz_gate import PolicyGate, cached_nameservers
            rrsets = self.resolver.cache.rrsets     # its counters outlive the policies
            self.policy_gate = PolicyGate(policy, lambda q: cached_nameservers(rrsets, q),
                                          lambda: self.resolver.local_zones)
        old = self.policy_gate.policy
        if old is policy and self.front.policy is self.policy_gate:
            return                          # the same zones: the door's index stands
        self.policy_gate.policy = policy
        self.front.policy = self.policy_gate    # the door reads the new policy's index here
        if old is not None and old is not policy:
            kept = {id(z) for z in policy.zones}
            for zone in old.zones:          # freed a slice at a time, not in this turn
                if id(zone) not in kept:
                    reloads.retire(self.loop, zone, lambda z: z.tables())

    @property
    def query_log(self):
        """The query log (``resolver.daemon.querylog.QueryLog``), or None when it is off."""
        return self.front.query_log

    @property
    def loop(self):
        """The running loop, once started (the front door's: misses start on it)."""
        return self.front.loop

    @loop.setter
    def loop(self, loop) -> None:
        self.front.loop = loop

    @property
    def misses(self) -> dict:
        """The misses in flight (``FrontDoor.misses``)."""
        return self.front.misses

    # ---- setup ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind every listen address (UDP and TCP on the same port) and start serving."""
        self.loop = loop = asyncio.get_running_loop()
        if self.cfg.cachedb_backend == "redis" and self.resolver.shared is None:
            from resolver.cache.shared import SharedCache
            self.resolver.shared = SharedCache.from_config(self.cfg)
            log.info("shared cache: %s (look-ups within %d ms)", self.resolver.shared.where,
                     self.cfg.redis_timeout)
        if self.cfg.rpz:
            self._set_rpz(self.cfg)
        # forward-host and stub-host names: resolved before the first query is served
        await self.resolver.start_server_names()
        reuse = self.cfg.workers > 1
        defaults = self.cfg.listen == Config.listen
        udp_options = listen_options(self.cfg, socket.SOCK_DGRAM)
        options = listen_options(self.cfg)
        for host, port in self.cfg.listen:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                usock = bind_socket(family, socket.SOCK_DGRAM, host, port, reuse, udp_options)
            except OSError as e:
                # The default ::1 on a host without IPv6: serve on the rest, as Unbound does.
                if defaults and e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                    log.warning("not serving on %s: %s", host, e.strerror)
                    continue
                raise OSError(e.errno, f"UDP {address_text(host, port)}: {e.strerror}") from None
            port = usock.getsockname()[1]
            try:
                tsock = bind_socket(family, socket.SOCK_STREAM, host, port, reuse, options)
            except OSError as e:
                usock.close()
                raise OSError(e.errno, f"TCP {address_text(host, port)}: {e.strerror}") from None
            tsock.listen(1024)
            proxied = port in self.cfg.proxy_protocol_port
            await self._serve_udp(loop, usock, proxied)
            kind = ProxiedTCPConnection if proxied else TCPConnection
            srv = await loop.create_server(lambda: kind(self), sock=tsock)
            self.tcp_servers.append(srv)
            self.addresses.append((host, port))
            log.info("serving DNS on %s port %d (UDP%s, TCP%s)", host, port,
                     " via recvmmsg" if isinstance(self.udp[-1], udp_listener.UDPListener)
                     else "",
                     "; PROXY v2 from the proxies in front" if proxied else "")
        if self.cfg.tls_listen or self.cfg.https_listen or self.cfg.http_listen:
            from resolver.daemon.tls_listener import start_encrypted
            await start_encrypted(self, loop, reuse)

    def _set_rpz(self, cfg: Config, loaded: dict | None = None, fresh: bool = False) -> None:
        """Hands ``cfg``'s ``[[rpz]]`` sources to the feeds, made at the first config that
        names one; ``loaded``: their zone files already read (``Server.stage``); ``fresh``:
        ``cfg`` is the config file read again (``Feeds.set_sources``)."""
        if self.rpz is None:
            from resolver.daemon.rpz_feed import Feeds
            self.rpz = Feeds(cfg.limits, self.set_policy)
        self.rpz.set_sources(cfg.rpz, loaded, fresh)

    def start_trust_probes(self) -> str | None:
        """Starts the RFC 5011 probes of ``auto-trust-anchor-file`` (once running as the
        daemon's user); why not, when a state file's directory is not writable."""
        auto = self.resolver.auto_anchors
        if auto is None:
            return None
        problems = auto.problems()
        if problems:
            user = self.cfg.user or "the user it runs as"
            return f"auto-trust-anchor-file: {'; '.join(problems)}; make it writable by {user}"
        self.resolver.start_trust_probes()
        return None

    @property
    def fast_udp(self) -> bool:
        return bool(self.udp) and isinstance(self.udp[0], udp_listener.UDPListener)

    async def _serve_udp(self, loop, sock: socket.socket, proxied: bool = False) -> None:
        if proxied:
            _, proto = await loop.create_datagram_endpoint(lambda: ProxiedUDPProtocol(self),
                                                           sock=sock)
            self.udp.append(proto)
            return
        if udp_listener.runs_on(loop):
            listener = udp_listener.UDPListener(sock.fileno())
            listener.setup(loop, sock, self.front, self.acl, self.cfg.misses_per_wakeup,
                           self.cfg.busy_target, self.cfg.read_interval)
            listener.start()
            self.udp.append(listener)
            return
        _, proto = await loop.create_datagram_endpoint(lambda: UDPProtocol(self), sock=sock)
        self.udp.append(proto)

    # ---- the ACLs -------------------------------------------------------------------------
    def who(self, addr) -> int:
        """The standing of the peer ``addr`` (a socket address tuple) by the ACL
        (``resolver.daemon.admission.Who``)."""
        if not addr:
            return OUTSIDE_ACL
        return self.acl.standing(addr[0])

    def proxied_who(self, proxy, client) -> int:
        """The standing of ``client``, named by a PROXY v2 header that ``proxy`` sent: the
        proxy's own when the ACL denies or refuses it, as Unbound checks a proxy's address
        before its client's (a host the ACL keeps out cannot get in by naming an allowed
        client), else the client's."""
        standing = self.who(proxy)
        if standing == DENY_ACL or standing == OUTSIDE_ACL:
            return standing
        return self.who(client)

    # ---- management -----------------------------------------------------------------------
    def admit(self, conn) -> bool:
        """Counts a new stream connection (TCP, TLS or HTTP) against the caps it shares with
        the others; False when it must be refused: one client may not hold more than its
        share, and at the global cap the oldest idle connection makes room (only when none
        is idle is the new one refused)."""
        c = self.counters
        mine = self.tcp_by_client.get(conn.client, 0)
        network = self.connection_limits.network(conn.client)
        if (mine >= self.cfg.tcp_max_connections_per_client
                or self.connection_limits.full(network)
                or c.tcp_connections >= self.cfg.tcp_max_connections
                and not self.shed_idle_tcp()):
            c.tcp_rejected += 1
            return False
        c.tcp_connections += 1
        c.tcp_accepted += 1
        self.connections.add(conn)
        self.tcp_by_client[conn.client] = mine + 1
        self.connection_limits.hold(conn, network)
        return True

    def network_full(self, client) -> bool:
        """Whether the network of ``tcp-connection-limit`` holding ``client`` (an address)
        has its limit of connections open."""
        return self.connection_limits.full(self.connection_limits.network(client))

    def hold_unnamed(self, proxy) -> bool:
        """Counts a proxy's stream connection whose PROXY v2 header has not come yet against
        the global connection cap (not against a client's share: the client is not known
        yet); False when it must be refused: the ACL denies the proxy, or the cap is
        reached (then no other connection is shed for it, so that connections which never
        name a client cannot push out those that did)."""
        c = self.counters
        if self.who(proxy) == DENY_ACL or c.tcp_connections >= self.cfg.tcp_max_connections:
            c.tcp_rejected += 1
            return False
        c.tcp_connections += 1
        return True

    def release_unnamed(self) -> None:
        """A connection :meth:`hold_unnamed` counted no longer awaits its header."""
        self.counters.tcp_connections -= 1

    def shed_idle_tcp(self) -> bool:
        """Closes the TCP connection idle the longest (no query in flight) to make room for
        a new one; False when every connection has a query in flight."""
        idle = [conn for conn in self.connections if conn.inflight == 0 and not conn.closed]
        if not idle:
            return False
        victim = min(idle, key=lambda conn: conn.last)
        self.counters.tcp_shed_idle += 1
        victim.close()
        self.forget_connection(victim)            # its slot is free now, not at its EOF
        return True

    def forget_connection(self, conn) -> None:
        """``conn`` no longer counts against the TCP caps (idempotent)."""
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        self.counters.tcp_connections -= 1
        n = self.tcp_by_client.get(conn.client, 0) - 1
        if n > 0:
            self.tcp_by_client[conn.client] = n
        else:
            self.tcp_by_client.pop(conn.client, None)
        self.connection_limits.release(conn)

    def set_allow(self, cfg: Config) -> None:
        """Replaces the client ACLs from ``cfg`` (the listeners share them)."""
        self.acl.set(acl_entries(cfg))

    def stage(self, cfg: Config) -> "Staged":
        """What applying ``cfg`` needs built: its zones and its RPZ zone files read. Touches
        nothing the server runs with, so a reload calls it in a thread (``reloads``)."""
        from resolver.daemon.rpz_feed import read_zone_files
        limits = self.rpz.limits if self.rpz is not None else cfg.limits
        zones = make_zones(cfg)
        if zones is not None:
            zones.definitions()         # made now, compared with the running ones at the swap
        reloads.breathe()
        tls = {listener: listener.stage(cfg) for listener in self.encrypted}
        reloads.breathe()
        held = self.rpz.held() if self.rpz is not None else None
        rpz = read_zone_files(cfg.rpz, limits, held)
        reloads.breathe()
        running, base = self.cfg, self.resolver.limits
        return Staged(cfg, zones, rpz, tls, (running, base), self._needing_restart(cfg, running),
                      engine_attributes(cfg, reloading=True),
                      engine_limits(cfg, base, self.prefetch_base))

    @staticmethod
    def _needing_restart(cfg: Config, running: Config) -> tuple[str, ...]:
        return tuple(name for name in RESTART_SETTINGS
                     if getattr(cfg, name) != getattr(running, name))

    def apply(self, cfg: Config, staged: "Staged | None" = None) -> list[str]:
        """Takes a reloaded config: what can change at run time changes (ACL, limits, log
        level, the choice of authorities); returns the settings that need a restart.
        ``staged``: :meth:`stage`'s for ``cfg``, made here when not given (a change made
        by a control command: ``staged`` comes with the config file read again)."""
        from_file = staged is not None
        if staged is None or staged.cfg is not cfg or \
                staged.against[0] is not self.cfg or staged.against[1] is not self.resolver.limits:
            staged = self.stage(cfg)    # (what it worked out may no longer hold)
        need_restart = list(staged.need_restart)
        if acl_entries(cfg) != acl_entries(self.cfg):
            self.set_allow(cfg)         # (kept when unchanged: setting parses every network)
        if cfg.tcp_connection_limit != self.cfg.tcp_connection_limit:
            self.connection_limits.set(cfg.tcp_connection_limit)
        if cfg.outgoing_interface != self.cfg.outgoing_interface:
            warn_unbindable(cfg.outgoing_interface)
        self.cfg = self.front.cfg = cfg
        for attr, value in staged.attributes.items():
            setattr(self.resolver, attr, value)   # the next miss reads them (iterator_for)
        operations.set_insecure(self.resolver, insecure_domains(cfg))
        apply_zone_ratelimits(cfg, self.resolver.cache.infra.rates)
        self._apply_service(cfg, staged.limits)
        zones = staged.zones
        if zones is not None or self.resolver.zones is not None:
            self.resolver.set_zones(zones)     # forgets only what changed zones held
            reloads.after_swap(lambda: log.info(
                "zones: %s", zones.describe() if zones is not None else "none"))
        if cfg.rpz or self.rpz is not None:
            self._set_rpz(cfg, staged.rpz, from_file)   # zones added, removed, files read again
        for listener in self.encrypted:
            listener.reload(cfg, staged.tls.get(listener))   # for new handshakes
        logs.reload(cfg)
        return need_restart

    def _apply_service(self, cfg: Config, limits) -> None:
        """serve-stale and prefetch (the engine's ``limits`` and the front door's prefetch
        point), and the per-query logs, on or off at once on every listener."""
        if limits != self.resolver.limits:
            self.resolver.set_limits(limits)
            self.front.prefetch_fraction = limits.prefetch_fraction
        self.front.query_log = self._query_log(cfg)

    def stats(self) -> dict:
        """Every figure of this process, JSON-ready (metrics and `stats` print these)."""
        c = self.counters
        queries = {f"{transport}:{rcode}": n for (transport, rcode), n in c.queries.items()}
        qtypes = {str(k): v for k, v in c.qtypes.items()}
        iterations = [0] * (len(udp_listener.ITERATION_BOUNDS_MS) + 1)
        iteration_max = 0.0
        sent = {"datagrams": 0, "sends": 0}
        for u in self.udp:
            if isinstance(u, udp_listener.UDPListener):
                k = u.counters()
                iterations = [a + b for a, b in zip(iterations, k["iterations"])]
                iteration_max = max(iteration_max, k["iteration_max"])
                sent["datagrams"] += k["sent"]
                sent["sends"] += k["sends"]
        r = self.resolver
        out = {
            "queries": queries,
            "nodata": c.nodata,
            "qtypes": qtypes,
            "latency_buckets": list(LATENCY_BUCKETS),
            "recursion_bounds": list(RECURSION_BOUNDS),
            "latency_counts": c.latency,
            "latency_sum": c.latency_sum,
            "recursion_counts": c.recursion,
            "recursion_sum": c.recursion_sum,
            "requestlist": {"inserts": c.requestlist_inserts, "sum": c.requestlist_sum,
                            "max": c.requestlist_max, "exceeded": c.requestlist_exceeded},
            "dropped": c.shown_drops,
            "refused_acl": c.refused_acl,
            "header_errors": c.header_errors,
            "truncated": c.truncated,
            "tcp": {"open": c.tcp_connections, "accepted": c.tcp_accepted,
                    "rejected": c.tcp_rejected, "idle_closed": c.tcp_idle_closed,
                    "shed_idle": c.tcp_shed_idle, "write_stalled": c.tcp_write_stalled,
                    "close_stalled": c.tcp_close_stalled,
                    "fast_hits": c.fast_tcp_hits},
            **{listener.label: listener.stats() for listener in self.encrypted},
            "engine": r.stats.as_dict(),
            "dnssec": dnssec_counts(r.dnssec),
            "cache": {"bytes": r.cache.bytes, "messages": len(r.cache.messages.lru),
                      "rrsets": len(r.cache.rrsets.lru), "evictions": r.cache.evictions,
                      "message_bytes": r.cache.messages.lru.bytes,
                      "rrset_bytes": r.cache.rrsets.lru.bytes,
                      "servers": len(r.cache.infra.servers),
                      "key_zones": 0 if r.dnssec is None else len(r.dnssec.zones)},
            "memory": {"iterator": memory.iterator_bytes(r),
                       "validator": memory.validator_bytes(r.dnssec),
                       **self.buffered()},
            "inflight": len(self.misses),
            "udp_iterations": {"bounds_ms": list(udp_listener.ITERATION_BOUNDS_MS),
                               "counts": iterations, "max_ms": iteration_max * 1000},
            "udp_sent": sent,
            "gc": gc_stats(),
            "uptime": time.time() - self.started_at,
            "process": process_stats(),
            "build": build_info(),
            **({} if r.shared is None else {"shared_cache": dict(r.shared.counters)}),
            "tls_upstream": r.tls_upstreams.stats(),
            **({"query_shape": c.query_shape} if self.cfg.extended_statistics else {}),
            "statistics_inhibit_zero": self.cfg.statistics_inhibit_zero,
            **({} if self.rpz is None or (not self.rpz.feeds and self.policy_gate is None)
               else {"rpz": {
                "zones": self.rpz.stats(),
                "matches": self.policy_gate.stats() if self.policy_gate else {},
                "actions": self.policy_gate.actions() if self.policy_gate else {}}}),
        }
        out["hit_rates"] = hit_rates(out)
        return out

    def buffered(self) -> dict[str, int]:
        """Bytes the stream connections hold now: the answers not yet written on TCP and
        TLS (Unbound's ``mem.streamwait``), the queries read and the answers not yet written
        on DNS over HTTP(S) (``mem.http.query_buffer``, ``mem.http.response_buffer``)."""
        stream = http_queries = http_answers = 0
        for conn in self.connections:
            queries, answers = conn.buffered()
            if conn.speaks_http:
                http_queries += queries
                http_answers += answers
            else:
                stream += answers
        return {"stream_wait": stream, "http_query_buffer": http_queries,
                "http_response_buffer": http_answers}

    async def stop(self, grace: float | None = None) -> None:
        """Stops listening, lets queries in flight finish (at most ``grace`` seconds), then
        closes every connection and the resolver."""
        grace = self.cfg.shutdown_grace if grace is None else grace
        if self.rpz is not None:
            self.rpz.stop()
        for u in self.udp:
            u.stop_reading()
        for srv in self.tcp_servers:
            srv.close()
        if self.misses:
            log.info("waiting up to %.1fs for %d queries in flight", grace, len(self.misses))
            drained = self.front.drained = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(drained), grace)
            except asyncio.TimeoutError:
                for d in list(self.misses):
                    d.cancel()                # closes its sockets now; no answer is sent
        for conn in list(self.connections):
            conn.close()
        for u in self.udp:
            u.close()
        self.udp.clear()
        if self.resolver.shared is not None:
            shared, self.resolver.shared = self.resolver.shared, None
            await shared.close()
        await self.resolver.close()
        set_rrset_roundrobin(False)


def dnssec_counts(validator) -> dict:
    """The validator's counts that ``stats`` prints under Unbound's names: rrsets found
    bogus, answers made from validated NSEC/NSEC3 ranges and wildcards (RFC 8198) by rcode;
    zeros without validation."""
    v = None if validator is None else validator.stats
    return {"rrsets_bogus": 0 if v is None else v.rrsets_bogus,
            "aggressive_noerror": 0 if v is None else v.aggressive_noerror,
            "aggressive_nxdomain": 0 if v is None else v.aggressive_nxdomain}


def acl_entries(cfg: Config) -> list:
    """The (network, standing) entries of the client ACL: ``access-control-view``'s and the
    tag settings' networks (allowed, as Unbound makes them), ``allow``, ``allow-snoop``,
    then ``access-control`` (for a network named twice the last one holds), where the
    longest prefix holding a client decides (a refusal inside an allowed network refuses)."""
    return [*((n, ALLOWED_ACL) for n, _ in cfg.access_control_view),
            *((n, ALLOWED_ACL) for n in tag_networks(cfg)),
            *((n, ALLOWED_ACL) for n in cfg.allow),
            *((n, SNOOP_ACL) for n in cfg.allow_snoop),
            *((net, ACL_STANDING[action]) for net, action in cfg.access_control)]


def chaos_answers(cfg: Config) -> dict:
    """The CH-class answers about this server (``resolver.chaos``): its identity (the host
    name unless ``identity`` says), version (``corenet-resolver VERSION`` unless
    ``version`` says) and trust anchors, each unless hidden."""
    import socket

    from corenet import __version__
    from resolver import chaos

    return chaos.answers(None if cfg.hide_identity else cfg.identity or socket.gethostname(),
                         None if cfg.hide_version else
                         cfg.version or f"corenet-resolver {__version__}",
                         not cfg.hide_trustanchor)


def warn_unbindable(addresses) -> None:
    """A warning for each ``outgoing-interface`` address this host cannot send from (the
    daemon starts all the same, as Unbound does, but the queries drawn to leave from it
    fail)."""
    import socket

    for addr in addresses:
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            try:
                s.bind((addr, 0))
            except OSError as e:
                log.warning("outgoing-interface %s: cannot send from it (%s): the upstream "
                            "queries drawn to leave from it fail", addr, e.strerror or e)


def make_resolver(cfg: Config) -> Resolver:
    kw: dict[str, Any] = {"port": cfg.upstream_port, "cache_size": cfg.cache_size,
                          "harden_glue": cfg.harden_glue,
                          "harden_unverified_glue": cfg.harden_unverified_glue,
                          "harden_algo_downgrade": cfg.harden_algo_downgrade,
                          "private_address": cfg.private_address,
                          "private_domain": cfg.private_domain,
                          "do_not_query_address": cfg.do_not_query_address,
                          "domain_insecure": insecure_domains(cfg)}
    if cfg.trust_anchor:
        kw["trust_anchor"] = list(cfg.trust_anchor)
    if cfg.auto_trust_anchor_file:
        from resolver.dnssec.autotrust import Timers
        kw["auto_trust_anchor_file"] = list(cfg.auto_trust_anchor_file)
        kw["auto_trust_timers"] = Timers(cfg.add_holddown, cfg.del_holddown,
                                         cfg.keep_missing, cfg.permit_small_holddown)
    if cfg.validate is not None:
        kw["validate"] = cfg.validate
    kw["limits"] = engine_limits(cfg, cfg.limits)
    zones = make_zones(cfg)
    if zones is not None:
        kw["zones"] = zones
    if not cfg.root_key_sentinel:
        kw["root_key_sentinel"] = False
    if cfg.dns64:
        from resolver.dns64 import Dns64
        kw["dns64"] = Dns64(cfg.dns64_prefix, cfg.dns64_synthall, cfg.dns64_ignore_aaaa)
    r = Resolver(cfg.root_hints, **kw)
    warn_unbindable(cfg.outgoing_interface)
    for attr, value in engine_attributes(cfg).items():
        setattr(r, attr, value)
    r.chaos = chaos_answers(cfg)
    apply_zone_ratelimits(cfg, r.cache.infra.rates)
    return r


class UDPProtocol(asyncio.DatagramProtocol):
    """UDP on a loop that is not corenet's: a plain asyncio DatagramProtocol, one datagram
    at a time through the same front door as the C listener's, its reply a ``CallReply``
    that sends to the client's address."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.reading = True

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if self.reading:
            s = self.server
            s.front.handle(data, s.who(addr),
                           CallReply("udp", addr, lambda out: self.send(out, addr)))

    def error_received(self, exc: Exception) -> None:
        self.server.counters.drop("send_error")     # ICMP from a client gone away

    def send(self, data: bytes, addr) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)

    def stop_reading(self) -> None:
        """A graceful stop: new queries are ignored, answers in flight still go out."""
        self.reading = False

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class ProxiedUDPProtocol(UDPProtocol):
    """UDP from a proxy (``proxy-protocol-port``): each datagram starts with a PROXY v2
    header naming the client, which the ACLs, rate limits and logs see; the answer goes
    back to the proxy. A datagram without a valid header is dropped and counted
    (``proxy_<reason>``)."""

    def datagram_received(self, data: bytes, addr) -> None:
        if not self.reading:
            return
        s = self.server
        try:
            header = proxy_protocol.parse(data, complete=True)
        except proxy_protocol.ProxyHeaderError as e:
            proxy_dropped(s, e.reason)
            return
        client = header.client(addr)
        s.front.handle(data[header.length:], s.proxied_who(addr, client),
                       CallReply("udp", client, lambda out: self.send(out, addr)))
