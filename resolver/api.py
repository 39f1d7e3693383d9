"""Resolver: the library's face of the resolver, on the running asyncio loop.

A hit (``resolve_cached``, the first step of ``resolve_message``) is answered from the
message cache by the one answer encoder (``resolver.cache.answer``): no dnspython. A miss is
one :class:`~resolver.resolution.Resolution` per distinct question (identical lookups in
flight share it), run by callbacks and bounded by ``Limits.max_query_time``; the coroutines
here await a future that its callback completes, and the daemon starts the same driver
without a coroutine (``start_miss``).
"""
from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import os
import random
import socket
import struct
import time
import typing
from typing import Any, Iterable

import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.reversename
import dns.tsig

from resolver import iterator as it
from resolver import response
from resolver.state import ResolverCore, Stats  # noqa: F401 (Stats: part of this module's API)
from resolver.cache import Cache
from resolver.dnssec import Validator
from resolver.dnssec.trust_anchor import (ROOT_ANCHOR_FILE, load as load_trust_anchor,
                                          unusable as unusable_anchors)
from resolver.hints import ROOT_HINTS_FILE, parse_root_hints
from resolver.iterator import Result
from resolver.limits import DEFAULT, Limits
from resolver.resolution import (EDE_NO_REACHABLE_AUTHORITY, Drive, iterator_for, new_iterator,
                                 resolve_client as start_resolution, start)
from resolver import dns64 as _dns64
from resolver import hostconf
from resolver.iterator import networks as _networks
from resolver.iterator import private as _private
from resolver.upstream.dot import DoTUpstreams
from resolver.wire.codec import WireError, build_query, build_response, parse_response
from resolver.zones import (DROP, Alias, Denied, ForwardZone, Upstream, Zones, changed_names,
                            flush_under)

log = logging.getLogger("resolver.api")

_VARIANT_DO, _VARIANT_CD = response.KEY_VARIANT_DO, response.KEY_VARIANT_CD
_HIT, _STALE, _LOCAL, _BOGUS = (response.OUTCOME_HIT, response.OUTCOME_STALE,
                                response.OUTCOME_LOCAL, response.OUTCOME_BOGUS)
_DO = 0x8000                # EDNS's DO flag (dns.flags.DO)


class Answer(dns.resolver.Answer):
    """dnspython's Answer (``.rrset``, ``.response``, ``.canonical_name``, ``.expiration``),
    with ``expiration`` taken from our cache (wall-clock seconds, as dnspython does)."""

    def __init__(self, qname: dns.name.Name, rdtype, rdclass, response: dns.message.Message,
                 expiration: float) -> None:
        super().__init__(qname, rdtype, rdclass, response)
        self.expiration = expiration


def _has_pointer(question: bytes) -> bool:
    """Whether a question's name has a compression pointer (a response echoes the question,
    which must stand on its own)."""
    i = 0
    while i < len(question) and question[i]:
        if question[i] & 0xC0:
            return True
        i += 1 + question[i]
    return False


def _text_name(qname) -> str:
    """``qname`` as text, when it is text: anything else (bytes, a number) is a TypeError
    rather than a name made of its repr."""
    if not isinstance(qname, str):
        raise TypeError(f"a name is a dns.name.Name or a str, not {type(qname).__name__}")
    return qname


def name_wire(qname) -> bytes:
    """A name (a dnspython Name or text; relative ones taken as absolute) in wire form."""
    if isinstance(qname, dns.name.Name):
        name = qname
    else:
        name = dns.name.from_text(_text_name(qname))
    if not name.is_absolute():
        name = name.concatenate(dns.name.root)
    return name.to_wire()


#: dnspython's ``lifetime`` after ``reset()`` (seconds)
RESET_LIFETIME = 5.0
#: dnspython's ``timeout``, what one try of a nameserver waits (seconds): a sync
#: Resolver's (``resolver.sync``) unless its ``limits`` say otherwise
DNSPYTHON_TIMEOUT = 2.0


class Resolver(ResolverCore):
    """A recursive, caching resolver on the running asyncio loop.

    ``root_hints``: ``None`` for the real root servers (shipped file), a path to a hints file,
    or a list of (name, address); the root is primed from them (``Iterator._prime``) and
    they serve when priming fails. ``port``: destination port for every authority.
    ``cache_size``: byte bound of the cache. ``limits``: see ``resolver.limits``.
    ``validator``: per-reply hook (``resolver.iterator.Validator``).
    ``trust_anchor``: DNSSEC anchor (a DS/DNSKEY file, RFC 7958 XML, a dnspython rrset, or a
    list of them); ``None`` means the shipped root anchor when ``root_hints`` is ``None``
    (the real root) and no validation otherwise. ``validate=False`` turns validation off.
    ``harden_glue=False`` uses a referral's out-of-zone glue too (Unbound's ``harden-glue:
    no``); ``harden_unverified_glue=True`` uses only the glue of names inside the delegated
    zone, resolving the other servers' names and falling back on their glue when that
    fails (Unbound's ``harden-unverified-glue: yes``). ``harden_algo_downgrade=True`` has
    every key algorithm a zone's DS names sign its keys and each of its rrsets, where one
    that validates is otherwise enough (Unbound's ``harden-algo-downgrade: yes``).
    ``domain_insecure``: names (negative trust anchors) at and below which data is
    treated as unsigned, never bogus, unless a trust anchor sits at or below one of them.
    ``auto_trust_anchor_file``: a file (or a list, one per zone) of trust anchors kept up to
    date by RFC 5011 probes (Unbound's ``auto-trust-anchor-file``,
    :mod:`resolver.dnssec.auto_anchors`), with ``auto_trust_timers`` its hold-downs
    (:class:`resolver.dnssec.autotrust.Timers`); the file is rewritten as the keys change, so
    its directory must be writable. Without ``trust_anchor``, it replaces the shipped root
    anchor. The probes start at ``start_trust_probes()`` (on the running loop); until then
    the file's keys are trusted as they are.
    TTL clamps are ``Limits.min_ttl``, ``max_ttl``, ``max_negative_ttl`` and
    ``min_negative_ttl``.
    ``forward``: numeric addresses of recursive resolvers to ask (RD set, on ``port``) instead
    of recursing from the root: a stub with this cache on this loop (``hostconf.nameservers``
    reads them from ``/etc/resolv.conf``); its answers are not validated (the forward zones
    of ``zones`` are). How the forwarders are asked, as glibc asks a resolv.conf's
    nameservers (``hostconf.nameserver_options``): ``attempts``, the times each one is
    asked for a question before it fails, marked down after its timeouts or not, as glibc
    asks each one that many times every call (None: until the question's time limit), and
    ``trust_ad``, queries with AD set and an answer's AD bit believed (the only way a
    forwarded answer, not validated, is marked AD); both are attributes too.
    ``qname_minimisation``: RFC 9156 in relaxed mode (a minimised query that fails is asked
    again with the full name). ``ipv6``/``do_ip4``: ask authorities at their IPv6/IPv4
    addresses. ``do_not_query_localhost``: never send to a loopback authority address
    (127.0.0.0/8, ::1), as Unbound by default; a lab of authorities on loopback turns it off.
    ``dns64``: DNS64 (RFC 6147): True for the prefix 64:ff9b::/96, a prefix (``"2001:db8::/96"``)
    or a :class:`resolver.dns64.Dns64` (``synthall``, ``ignore_aaaa``); AAAA answers
    without AAAA records are synthesised from the A records, and PTR questions under the
    prefix answered from ``in-addr.arpa`` (never with AD). None: off.
    ``root_key_sentinel``: answer the root key sentinel (RFC 8509,
    ``resolver.dnssec.sentinel``) when validating.
    ``zones``: forward, stub and local zones (:class:`resolver.zones.Zones`; its servers
    without a port are asked on ``port``); a question none of them holds is resolved as
    above. ``set_zones`` replaces them at run time. While the resolver recurses itself (no
    ``forward``, ``nameservers`` or forward zone for "."), Unbound's default local zones
    are answered too (``localhost``, the loopback reverse zones, RFC 6761's special-use
    names, RFC 6303's reverse zones: ``resolver.zones.default_local_zones``), never asked
    upstream, unless ``zones`` says ``defaults=False``. With validation on, a forward or
    stub zone's answers are validated as recursive ones are (``resolver.iterator.forward``).
    ``source``: the numeric address the upstream sockets are bound to (dnspython's per-call
    ``source``, set once for the resolver: see ``resolve``), or several (Unbound's
    ``outgoing-interface``): each socket is bound to one of the server's address family,
    drawn at random.
    ``val_log_level`` (an attribute, 0 by default): each resolution whose answer fails
    validation is logged on the ``resolver.validator`` logger at INFO, as Unbound's
    ``val-log-level`` writes it: at 1 ``validation failure NAME TYPE CLASS``, at 2
    ``validation failure <NAME TYPE CLASS>: REASON from SERVER``, once for data an authority
    gave: the same bogus answer made again from the cache is not logged again.
    ``private_address``: networks (``"10.0.0.0/8"``, ``"fd00::/8"``) whose addresses are
    removed from every upstream reply, A and AAAA records of any section, unless their owner
    is at or below one of the ``private_domain`` names (Unbound's ``private-address`` and
    ``private-domain``, the DNS-rebinding guard: :mod:`resolver.iterator.private`); local
    zones are never filtered. ``do_not_query_address``: networks no query is sent to,
    whatever a zone's NS and glue say (Unbound's ``do-not-query-address``; forwarders are
    the operator's own and are asked all the same).

    The fields its compiled miss path reads (``stats``, ``limits``, ``cache``...) live in
    its C base class, ``resolver.state.ResolverCore``.
    """

    def __init__(self, root_hints: str | os.PathLike | Iterable[tuple[str, str]] | None = None, *,
                 port: int = 53, cache_size: int = 64 * 1024 * 1024, limits: Limits = DEFAULT,
                 qname_minimisation: bool = True, ipv6: bool = False, validator=None,
                 rng: random.Random | None = None, trust_anchor=None,
                 validate: bool = True,
                 forward: Iterable[str | tuple[str, int]] | None = None,
                 zones: Zones | None = None,
                 harden_glue: bool = True, harden_unverified_glue: bool = False,
                 harden_algo_downgrade: bool = False,
                 domain_insecure: Iterable = (),
                 do_ip4: bool = True, do_not_query_localhost: bool = True,
                 auto_trust_anchor_file=None, auto_trust_timers=None,
                 dns64=None, root_key_sentinel: bool = True,
                 source: str | Iterable[str] | None = None, private_address: Iterable = (),
                 private_domain: Iterable[str] = (), attempts: int | None = None,
                 trust_ad: bool = False, do_not_query_address: Iterable = ()) -> None:
        self.port = int(port)
        self._port_as_made = self.port        # what reset() goes back to
        #: dnspython's: a nameserver's port by its address, for the plain addresses set in
        #: ``nameservers``; ``flags`` (``set_flags``), kept; the TSIG settings (``use_tsig``:
        #: none, TSIG is not supported); ``retry_servfail``: the nameservers ask again one
        #: that answered SERVFAIL (without it, it is not asked again for the question)
        self.nameserver_ports: dict[str, int] = {}
        self._entries: list = []                # ``nameservers`` as set, and the ports
        self._ports_seen: dict[str, int] = {}   # they were set with
        self.flags: int | None = None
        self.keyring, self.keyname, self.keyalgorithm = None, None, dns.tsig.default_algorithm
        self.retry_servfail = False
        #: the DNS-rebinding guard, or None (no private addresses)
        self.private = _private.make(private_address, private_domain)
        #: the networks no query is sent to, or None
        self.unqueried = _networks.make(do_not_query_address)
        #: the CH-class TXT questions answered about this resolver (``resolver.chaos``:
        #: name -> rdata, or a function of the resolver giving its rdatas); none by
        #: default, every CH question REFUSED
        self.chaos: dict[bytes, Any] = {}
        #: a query of type ANY is answered NOTIMP (Unbound's ``deny-any``); local zones
        #: still answer it
        self.deny_any = False
        self.source = source
        #: DNS64 (RFC 6147, ``resolver.dns64``): None (off), or its Dns64 settings
        self.dns64 = _dns64.make(dns64)
        #: a forward zone for "." holding forwarders with ports of their own (see _set_forward)
        self._root_forward = None
        self._user_zones: Zones | None = None
        self.zones: Zones | None = None
        #: the zones' servers given by name, kept resolved (resolver.server_names)
        self.server_names = None
        self.forward = None
        #: resolv.conf's ``options attempts:N``: the times each forwarder is asked for one
        #: question before it fails (each try waits ``timeout``); None: until the time limit
        self.attempts = attempts
        self._trust_ad = bool(trust_ad)
        if forward is not None:
            if isinstance(forward, (str, tuple)):
                forward = [forward]
            forward = list(forward)
            if not forward:
                raise ValueError("forward= needs at least one server address")
            if trust_anchor is not None:
                raise ValueError("DNSSEC validation of forwarded answers is not supported: "
                                 "leave trust_anchor unset with forward=")
            self._set_forward(forward)
        self.hints = parse_root_hints(ROOT_HINTS_FILE if root_hints is None else root_hints)
        self.limits = limits
        self._timeout_as_made = limits.max_rto        # what reset() goes back to
        self.minimise = qname_minimisation
        self.ipv6 = ipv6
        self.do_ip4 = do_ip4
        self.no_localhost = do_not_query_localhost
        self.validator = validator
        self.dnssec: Validator | None = None
        #: glue only from inside the referring zone (False: any glue naming an NS target)
        self.harden_glue = bool(harden_glue)
        #: glue only for names inside the delegated zone; the rest a last resort
        self.harden_unverified_glue = bool(harden_unverified_glue)
        #: the RFC 5011 trust anchors (``auto_trust_anchor_file``), or None
        self.auto_anchors = None
        if validate and not self.forward and auto_trust_anchor_file:
            from resolver.dnssec.auto_anchors import AutoAnchors
            from resolver.dnssec.autotrust import Timers
            self.auto_anchors = AutoAnchors(
                auto_trust_anchor_file, auto_trust_timers or Timers(),
                max_checks=limits.dnssec_max_sig_checks_per_rrset)
        if validate and not self.forward and (trust_anchor is not None or
                                              (root_hints is None and
                                               self.auto_anchors is None)):
            anchors = load_trust_anchor(ROOT_ANCHOR_FILE if trust_anchor is None
                                        else trust_anchor)
        else:
            anchors = {}
        if self.auto_anchors is not None:
            anchors.update(self.auto_anchors.anchors())
        if anchors:
            for warning in unusable_anchors(anchors):
                log.warning("%s", warning)
            self.dnssec = Validator(anchors, limits,
                                    insecure=[name_wire(n) for n in domain_insecure])
            self.dnssec.root_key_sentinel = bool(root_key_sentinel)
            self.dnssec.harden_algo_downgrade = bool(harden_algo_downgrade)
        if self.auto_anchors is not None:
            self.auto_anchors.harden_algo_downgrade = bool(harden_algo_downgrade)
        self.cache = Cache(cache_size, limits, rng=rng)
        self.clock = time.monotonic
        self.message_table = self.cache.messages.table
        # self.stats (zeroed) and self.resolutions (question -> Resolution) come from
        # ResolverCore
        self.hint_index: it.Hints | None = None   # self.hints indexed once for the iterators
        #: dnspython's search settings for relative names (see ``resolve``)
        #: (names or text; relative ones are taken as absolute)
        self.search: list[dns.name.Name | str] = []
        self.ndots: int | None = None       # dnspython's: None reads as 1
        self.use_search_by_default = False
        #: dnspython's ``domain``: the search list when ``search`` is empty (root: none)
        self.domain = dns.name.root
        #: dnspython's ``rotate``: accepted; servers are picked by measured RTT, never in turn
        self.rotate = False
        #: dnspython's EDNS settings (see ``use_edns``), none by default as dnspython's
        self.edns, self.ednsflags, self.payload, self.ednsoptions = -1, 0, 0, None
        self._lifetime: float | None = RESET_LIFETIME
        self.hint_index_source = None
        #: the connections to forward zones' servers over TLS, kept between queries
        self.tls_upstreams = DoTUpstreams()
        self.set_zones(zones)

    def start_trust_probes(self) -> None:
        """Starts the RFC 5011 probes of ``auto_trust_anchor_file`` on the running loop
        (the first at once when due); nothing without one, or when already started."""
        if self.auto_anchors is not None and self.dnssec is not None:
            self.auto_anchors.start(self)

    def _set_forward(self, entries) -> None:
        """Forward to ``entries`` (see ``_upstreams``); ``[]`` or None: recurse again.
        Forwarders on ``port`` are asked there; any on a port of its own make a forward
        zone for "." (``zones``) holding them all, ``port`` unchanged."""
        entries = list(entries or ())
        tls = [e for e in entries if isinstance(e, dns.nameserver.DoTNameserver)]
        if tls:                             # DNS over TLS: a TLS forward zone for "."
            if len(tls) != len(entries):
                raise ValueError("nameservers: DoTNameserver entries cannot be mixed with "
                                 "plain ones (one transport for all)")
            ups, bundle = _tls_upstreams(tls)
            self._root_forward = ForwardZone(".", ups, transport="tls", tls_cert_bundle=bundle)
            self.forward = [u.key for u in ups]
            return
        ups = _upstreams(entries)
        self._root_forward = None
        if not ups:
            self.forward = None
        else:
            # a server's own port is its own: ``port`` stays (as dnspython's) for the
            # addresses given without one, now and later
            if all(u.port in (None, self.port) for u in ups):
                self.forward = [u.addr for u in ups]
            else:
                self.forward = [u.key for u in ups]
                self._root_forward = ForwardZone(".", tuple(ups))

    # ---- dnspython's attributes ----------------------------------------------------------------
    @property
    def source(self) -> str | tuple[str, ...] | None:
        """The numeric address every upstream UDP, TCP and TLS socket is bound to (queries
        to servers of the other address family are not bound), or None: the kernel picks it
        for the route. Several addresses (a tuple; set from any iterable of them, as
        Unbound's ``outgoing-interface`` lines; an empty one is None): each socket is bound
        to one of its server's family, drawn at random; a family none is of is not bound.
        The source port is always a fresh random one (RFC 5452). Setting it checks each
        address (ValueError unless numeric)."""
        return ResolverCore.source.__get__(self)

    @source.setter
    def source(self, value: object) -> None:
        ResolverCore.source.__set__(self, _source_address(value))

    @property
    def nameservers(self) -> list[str]:
        """The forwarders' addresses (``ADDR@PORT`` for one on a port of its own), or ``[]``
        for a recursive resolver. Setting it forwards to those servers (as ``forward=``:
        ``"ADDR"``, ``"ADDR@PORT"``, ``"ADDR#PORT"``, ``(ADDR, PORT)``); ``[]`` recurses
        again (validating again if it did). Forwarded answers are not DNSSEC-validated; the
        cache is kept."""
        return list(self.forward) if self.forward else []

    @nameservers.setter
    def nameservers(self, entries) -> None:
        if isinstance(entries, (str, tuple)):
            raise ValueError("nameservers takes a list of addresses")
        ports = self.nameserver_ports
        self._set_forward([(e, ports[e]) if isinstance(e, str) and e in ports else e
                           for e in entries])
        # dnspython reads ``nameserver_ports`` at each call: ``resolve`` applies them again
        # when they change
        self._entries, self._ports_seen = list(entries), dict(ports)
        if self.forward:                    # forwarded answers are not validated
            if self.dnssec is not None:
                self._recursive_dnssec = self.dnssec
            self.dnssec = None
        elif self.dnssec is None:           # recursing again: validating again
            self.dnssec = getattr(self, "_recursive_dnssec", None)
        self.set_zones(self._user_zones)

    @property
    def trust_ad(self) -> bool:
        """resolv.conf's ``options trust-ad``: the queries to the forwarders carry AD and
        the AD bit of their answers is believed (kept on the answers given); otherwise an
        answer is marked AD only when this resolver validated it. Turning it off forgets
        the cache, whose answers it may have marked."""
        return self._trust_ad

    @trust_ad.setter
    def trust_ad(self, value) -> None:
        value = bool(value)
        if self._trust_ad and not value:
            self.forget([b"\x00"])
        self._trust_ad = value

    @property
    def lifetime(self) -> float:
        """dnspython's ``lifetime``: seconds one ``resolve`` call may take (search list
        included) before LifetimeTimeout, 5 s by default as dnspython's. A recursion is
        bounded by ``Limits.max_query_time`` as well: servers that never answer give
        LifetimeTimeout when the resolution gives up, at the latest after that limit. Set
        to None, only that limit bounds a call (the nameservers are asked for as long)."""
        return self.limits.max_query_time if self._lifetime is None else self._lifetime

    @lifetime.setter
    def lifetime(self, seconds) -> None:
        self._lifetime = None if seconds is None else float(seconds)

    @property
    def timeout(self) -> float:
        """dnspython's ``timeout``, what one try of a nameserver waits, and the most the
        recursion waits for an authority's reply: ``Limits.max_rto`` (setting it replaces
        the limits, see ``set_limits``)."""
        return self.limits.max_rto

    @timeout.setter
    def timeout(self, seconds) -> None:
        seconds = float(seconds)
        self.set_limits(dataclasses.replace(
            self.limits, max_rto=seconds, initial_rto=min(self.limits.initial_rto, seconds)))

    # ---- dnspython's configuration calls --------------------------------------------------
    def reset(self) -> None:
        """dnspython's ``reset``: no nameservers (recursion), no search list, the host's
        domain, ``lifetime`` 5 s, no EDNS, no ``attempts`` or ``trust_ad``, ``port`` and
        ``timeout`` as made, and dnspython's defaults for ``nameserver_ports``, ``flags``,
        the TSIG settings and ``retry_servfail``."""
        domain = dns.name.Name(dns.name.from_text(socket.gethostname())[1:])
        self.attempts, self.trust_ad = None, False
        self.nameserver_ports = {}
        self.nameservers = []
        self.port = self._port_as_made
        self.search, self.ndots, self.use_search_by_default = [], None, False
        self.domain = domain if len(domain) else dns.name.root
        self.rotate = False
        self.lifetime = RESET_LIFETIME
        if self.timeout != self._timeout_as_made:
            self.timeout = self._timeout_as_made
        self.use_edns(-1, 0, 0, None)
        self.flags = None
        self.keyring, self.keyname, self.keyalgorithm = None, None, dns.tsig.default_algorithm
        self.retry_servfail = False

    def read_resolv_conf(self, f: str | os.PathLike | typing.TextIO) -> None:
        """dnspython's: reads ``f`` (a path or a file object) as dnspython does,
        ``attempts:N`` and ``trust-ad`` as glibc does, ``RES_OPTIONS`` included
        (:func:`resolver.hostconf.read_resolv_conf`), and forwards to its nameservers."""
        conf = hostconf.read_resolv_conf(f)
        self.apply_resolv_conf(conf)
        self.nameservers = list(conf.nameservers)

    def apply_resolv_conf(self, conf: dns.resolver.BaseResolver) -> None:
        """What a resolv.conf read by :func:`resolver.hostconf.read_resolv_conf` sets, but
        its nameservers: the search list and domain, ``rotate``, ``ndots``, ``timeout``,
        EDNS, glibc's ``attempts`` and ``trust_ad``."""
        self.domain, self.search, self.rotate = conf.domain, list(conf.search), conf.rotate
        if conf.ndots is not None:
            self.ndots = conf.ndots
        if conf.timeout is not None:
            self.timeout = conf.timeout
        if conf.edns >= 0:
            self.use_edns(conf.edns, conf.ednsflags, conf.payload, conf.ednsoptions)
        glibc = conf.nameserver_options        # timeout: dnspython's reading, above
        self.attempts, self.trust_ad = glibc.attempts, glibc.trust_ad

    def set_flags(self, flags: int) -> None:
        """dnspython's ``set_flags``: kept in ``flags``; the resolver sets each query's
        flags itself (RD towards forwarders, CD/DO as validation needs)."""
        self.flags = flags

    def use_tsig(self, keyring, keyname=None, algorithm=dns.tsig.default_algorithm) -> None:
        """TSIG is not supported: a keyring raises NotImplementedError (None is accepted)."""
        if keyring is not None:
            raise NotImplementedError("TSIG-signed queries are not supported")
        self.keyring, self.keyname, self.keyalgorithm = None, keyname, algorithm

    def use_edns(self, edns=0, ednsflags: int = 0, payload: int = 1232,
                 options=None) -> None:
        """dnspython's ``use_edns``: the values are kept (``edns``, ``ednsflags``,
        ``payload``, ``ednsoptions``) and an Answer's ``response`` is what a server gives a
        query with them (its OPT record with EDNS; the signatures too with DO), but they
        change no upstream query: the resolver sends EDNS (DO set when validating) and
        falls back without it per server, as recursive resolvers do."""
        if edns is None or edns is False:
            edns = -1
        elif edns is True:
            edns = 0
        self.edns, self.ednsflags, self.payload, self.ednsoptions = \
            edns, ednsflags, payload, options

    @property
    def cache(self):
        """The resolver's own cache (``resolver.cache.Cache``), always on: a recursive
        resolver keeps its delegations there. dnspython's ``cache`` is off (None) unless a
        ``dns.resolver.Cache``/``LRUCache`` is assigned; here assigning one of those is
        accepted and changes nothing, and assigning None forgets what is cached (as
        ``resolver.operations.flush``) but keeps caching."""
        return ResolverCore.cache.__get__(self)

    @cache.setter
    def cache(self, value) -> None:
        if isinstance(value, Cache):
            ResolverCore.cache.__set__(self, value)
        elif value is None:
            self.forget([b"\x00"])
        elif not isinstance(value, (dns.resolver.Cache, dns.resolver.LRUCache)):
            raise TypeError(f"cache: a dns.resolver.Cache, LRUCache or None, not {value!r}")

    @property
    def pad_queries(self) -> int:
        """The block, in octets, the queries sent over DNS over TLS are padded to a
        multiple of (RFC 7830; RFC 8467's 128 by default), 0 for no padding: Unbound's
        ``pad-queries`` and ``pad-queries-block-size``."""
        return self.tls_upstreams.pad_block

    @pad_queries.setter
    def pad_queries(self, block: int) -> None:
        if isinstance(block, bool) or not isinstance(block, int) or not 0 <= block <= 65535:
            raise ValueError(f"pad_queries: a block of 0 to 65535 octets, not {block!r}")
        self.tls_upstreams.pad_block = block

    # ---- the cache-hit path ----------------------------------------------------------------
    #: ``resolve_cached(query: bytes) -> bytes | None``: the response to a wire query if the
    #: cache has a fresh one, else None. Synchronous: the daemon calls it straight from its
    #: receive path. Compiled (resolver.response.cached), bound as a method.
    resolve_cached = response.cached

    # ---- resolve_message ---------------------------------------------------------------------
    async def resolve_message(self, query: dns.message.Message | bytes
                              ) -> dns.message.Message | bytes:
        """The full response a recursive server sends for ``query``.

        Returns wire ``bytes`` for a ``bytes`` query (the daemon's fast path: a cache hit is a
        copy and a patch) and a ``dns.message.Message`` for a Message. Malformed queries get
        FORMERR when a header can be read; a query shorter than a header raises WireError.
        A query a ``deny`` local zone drops raises :class:`resolver.zones.Denied`.
        """
        if isinstance(query, dns.message.Message):
            out = await self.resolve_message(query.to_wire())
            return dns.message.from_wire(out, ignore_trailing=True)
        miss = response.hit_or_begin(self, query)
        if miss.__class__ is bytes:
            return miss
        if miss is None:
            raise Denied("the query is dropped by a deny local zone")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        settle = _settler(fut, loop)

        def done(_, out):
            settle(out)

        drive = Drive(self, loop, query, miss, done)
        return await _settled(fut, drive.cancel)

    #: ``start_miss(query, done, loop, absent=None) -> bytes | Drive``: ``resolve_message``
    #: for the daemon, by callbacks rather than a coroutine (see resolver.resolution.start,
    #: bound as a method).
    start_miss = start

    #: ``new_iterator(qname, qtype, qclass)``: what a resolution runs for one question, the
    #: deepest forward or stub zone's, else the recursive Iterator or, with ``forward``, a
    #: Forwarder (resolver.resolution.new_iterator, bound as a method).
    new_iterator = new_iterator

    # ---- resolve (dnspython-style) ------------------------------------------------------------
    async def resolve(self, qname, rdtype="A", rdclass="IN", tcp: bool = False,
                      source=None, raise_on_no_answer: bool = True, source_port: int = 0,
                      lifetime: float | None = None, search: bool | None = None,
                      backend=None) -> Answer:
        """``dns.asyncresolver.Resolver.resolve``, recursively: an :class:`Answer`, or
        NXDOMAIN, NoAnswer (unless ``raise_on_no_answer`` is false: then the Answer has no
        rrset), NoNameservers (every server failed, or DNSSEC bogus), LifetimeTimeout (no
        answer within ``lifetime``, or the servers never answered: see ``_resolve_one``)
        or, for ANY and the other meta types, NoMetaqueries as dnspython
        (``resolve_message`` answers ANY).

        ``tcp``: every upstream query of the resolution over TCP. ``lifetime``: seconds the
        whole call may take (a recursion is bounded by ``Limits.max_query_time`` too; the
        nameservers are asked until the lifetime ends, see ``nameserver_rules``).
        ``search``: try a relative name with the search domains (``self.search``, else
        ``self.domain``, as dnspython does with ``ndots``); ``None`` means
        ``use_search_by_default``. ``source``: the upstream sockets are bound to the
        resolver's ``source`` (``Resolver(source=...)``), as a resolution and its upstream
        queries are shared by every caller asking the same question at the same time; a
        ``source`` here must be that address (or None), else ValueError. ``source_port``
        must be 0: each upstream query gets a fresh random source port (spoofing
        resistance, RFC 5452; sockets in flight to one server could not share a port
        either), so a fixed one is a ValueError rather than silently not used.
        ``backend`` is accepted and ignored: the resolver runs on the running asyncio
        loop."""
        if source is not None and _source_address(source) != self.source:
            raise ValueError(
                f"source {source!r}: the upstream sockets are bound to the resolver's source "
                f"address ({self.source}): set it with Resolver(source=...) or "
                f"resolver.source")
        if source_port:
            if not 0 < source_port <= 65535:
                raise ValueError(f"source_port {source_port} out of range 0-65535")
            raise ValueError(f"source_port {source_port}: every upstream query gets a fresh "
                             f"random source port (RFC 5452); only 0 is accepted")
        if lifetime is None:
            lifetime = self._lifetime
        if self.nameserver_ports != self._ports_seen and self._entries:
            self.nameservers = self._entries
        rdtype = _enum(dns.rdatatype.RdataType, rdtype)
        rdclass = _enum(dns.rdataclass.RdataClass, rdclass)
        if rdtype in _META or rdclass in _META_CLASSES:
            raise dns.resolver.NoMetaqueries        # ANY, AXFR...: as dnspython's resolve
        candidates = self._names_to_try(qname, search)
        if len(candidates) == 1 and (lifetime is None or not self.forward
                                     and lifetime >= self.limits.max_query_time):
            # the common case, kept short: the resolution's own time limit ends it first
            return await self._resolve_one(candidates[0][1], rdtype, rdclass, tcp,
                                           raise_on_no_answer)
        tried: list = []        # the failed queries of a resolution the lifetime cut short
        try:
            async with asyncio.timeout(lifetime):
                nxdomains: dict = {}
                for name, wire in candidates:
                    try:
                        return await self._resolve_one(wire, rdtype, rdclass, tcp,
                                                       raise_on_no_answer, tried, lifetime)
                    except dns.resolver.NXDOMAIN as exc:
                        nxdomains.update(exc.responses())
                raise dns.resolver.NXDOMAIN(qnames=[n for n, _ in candidates],
                                            responses=nxdomains)
        except TimeoutError:
            cut = Result(it.SERVFAIL)
            cut.errors = tried
            raise LifetimeTimeout(timeout=lifetime, errors=self._errors(
                tcp, "no answer within the lifetime", cut)) from None

    async def resolve_address(self, ipaddr: str, *args, **kwargs) -> Answer:
        """The PTR records of an IPv4 or IPv6 address (as dnspython's)."""
        kwargs.pop("search", None)
        return await self.resolve(dns.reversename.from_address(ipaddr), "PTR", "IN", *args,
                                  search=False, **kwargs)

    async def canonical_name(self, name) -> dns.name.Name:
        """The name at the end of ``name``'s CNAME chain (``name`` itself if it has none),
        as dnspython's: also when the chain ends in NXDOMAIN."""
        try:
            answer = await self.resolve(name, raise_on_no_answer=False)
            return answer.canonical_name
        except dns.resolver.NXDOMAIN as exc:
            return exc.canonical_name

    async def resolve_name(self, name, family: int = socket.AF_UNSPEC,
                           **kwargs) -> dns.resolver.HostAnswers:
        """IPv4 and/or IPv6 addresses of ``name`` as dnspython's ``HostAnswers``: A for
        AF_INET, AAAA for AF_INET6, both for AF_UNSPEC (NoAnswer only if neither has any).
        ``rdtype`` and ``rdclass``, when given, are passed over (the class is IN), as
        dnspython passes them over."""
        kwargs.pop("rdtype", None)
        kwargs["rdclass"] = dns.rdataclass.IN
        raise_on_no_answer = kwargs.pop("raise_on_no_answer", True)
        if family == socket.AF_INET:
            return dns.resolver.HostAnswers.make(
                v4=await self.resolve(name, "A", raise_on_no_answer=raise_on_no_answer,
                                      **kwargs))
        if family == socket.AF_INET6:
            return dns.resolver.HostAnswers.make(
                v6=await self.resolve(name, "AAAA", raise_on_no_answer=raise_on_no_answer,
                                      **kwargs))
        if family != socket.AF_UNSPEC:
            raise NotImplementedError(f"unknown address family {family}")
        v6 = await self.resolve(name, "AAAA", raise_on_no_answer=False, **kwargs)
        kwargs.pop("search", None)          # the name the search found, as dnspython does
        v4 = await self.resolve(v6.qname, "A", raise_on_no_answer=False, search=False,
                                **kwargs)
        answers = dns.resolver.HostAnswers.make(v6=v6, v4=v4, add_empty=not raise_on_no_answer)
        if not answers:
            raise dns.resolver.NoAnswer(response=v6.response)
        return answers

    def search_names(self, qname, search: bool | None = None) -> list[dns.name.Name]:
        """The absolute names ``resolve(qname, search=search)`` asks in turn: dnspython's
        search rules (``search``, else ``domain``, ordered by ``ndots``), which are also
        glibc's order; an absolute ``qname`` is the only one."""
        return [name for name, _ in self._names_to_try(qname, search)]

    def _names_to_try(self, qname, search: bool | None) -> list[tuple[dns.name.Name, bytes]]:
        """The (name, wire form) to ask in turn, as dnspython's search rules order them;
        remembered per (text, search settings), as applications ask the same names again."""
        if search is None:
            search = self.use_search_by_default
        # without search the settings play no part (and hashing ``domain``, a Name, is dear)
        key = (None if not isinstance(qname, str) else
               (qname, tuple(self.search), self.domain, self.ndots) if search else qname)
        if key is not None:
            found = _CANDIDATES.get(key)
            if found is not None:
                return found
        name = qname if isinstance(qname, dns.name.Name) else dns.name.from_text(
            _text_name(qname), origin=None)
        if name.is_absolute():
            names = [name]
        else:
            absolute = name.concatenate(dns.name.root)
            suffixes = [_absolute(d) for d in self.search] if search else []
            if search and not suffixes and self.domain not in (None, dns.name.root):
                suffixes = [_absolute(self.domain)]
            if not suffixes:
                names = [absolute]
            else:
                searched = [name.concatenate(d) for d in suffixes]
                # at least ndots dots: the name as it is first
                if len(name) > (1 if self.ndots is None else self.ndots):
                    names = [absolute] + searched
                else:
                    names = searched + [absolute]
        out = [(n, n.to_wire()) for n in names]
        if key is not None:
            if len(_CANDIDATES) >= _CANDIDATES_MAX:
                _CANDIDATES.clear()
            _CANDIDATES[key] = out
        return out

    async def _resolve_one(self, name: bytes, rdtype, rdclass, tcp: bool,
                           raise_on_no_answer: bool, tried: list | None = None,
                           lifetime: float | None = None) -> Answer:
        """The question's outcome (``resolver.response``) as dnspython gives it. ``tried``:
        where the failed queries of the resolution go when the caller cancels it;
        ``lifetime``: the call's, which the nameservers' rounds may use up."""
        # dnspython's use_edns: the answer as a server gives it to a query with that EDNS
        # (its signatures with DO)
        o = response.lookup(self, name, rdtype, rdclass, self.edns >= 0,
                            bool(self.edns >= 0 and self.ednsflags & _DO))
        if o.kind == _HIT:
            return self._answer(o.entry, name, rdtype, rdclass, self.clock(),
                                raise_on_no_answer)
        if o.kind == _LOCAL:
            if type(o.local) is Alias:
                return await self._alias_answer(name, rdtype, rdclass, raise_on_no_answer)
            return self._local_answer(o.local, name, rdtype, rdclass, raise_on_no_answer)
        stats = self.stats
        t0, timeouts = self.clock(), stats.upstream_timeouts
        res = await self._result(name, rdtype, rdclass, tcp, tried, lifetime)
        o = response.resolved(self, o.key, name + struct.pack("!HH", rdtype, rdclass), rdtype,
                              res)
        now = self.clock()
        if o.kind == _HIT or o.kind == _STALE:
            # AD tells library users the answer was validated (dnspython shows it in .response)
            return self._answer(o.entry, name, rdtype, rdclass, now, raise_on_no_answer,
                                res.server)
        if o.kind == _BOGUS:
            raise NoNameservers(request=self._request(name, rdtype, rdclass),
                                errors=self._errors(tcp, o.reason or "DNSSEC bogus", res,
                                                    own=True))
        if o.rcode == it.SERVFAIL:
            # Out of time, waited on silent servers for half of it, no server could be
            # asked (each marked down after its timeouts), or the forwarders' attempts were
            # all spent in silence: dnspython's LifetimeTimeout (its servers never
            # answered); otherwise every server failed.
            if (o.result.time_exhausted or _unreachable(o.result)
                    or (self.attempts is not None and _silent(o.result))
                    or (stats.upstream_timeouts > timeouts and
                        now - t0 >= self.limits.max_query_time / 2)):
                raise LifetimeTimeout(timeout=now - t0, errors=self._errors(
                    tcp, o.reason or "no server answered in time", res))
            raise NoNameservers(request=self._request(name, rdtype, rdclass),
                                errors=self._errors(tcp, o.reason or "SERVFAIL", res))
        if o.rcode == 6:
            # a DNAME's substitution too long for a name (RFC 6672 2.2): dnspython's own
            # resolver raises YXDOMAIN for it
            raise dns.resolver.YXDOMAIN()
        raise NoNameservers(request=self._request(name, rdtype, rdclass),
                            errors=self._errors(tcp, f"rcode {dns.rcode.to_text(o.rcode)}",
                                                res))

    @staticmethod
    def _request(name: bytes, rdtype, rdclass) -> dns.message.Message:
        return dns.message.make_query(dns.name.from_wire(name, 0)[0], rdtype, rdclass)

    def _errors(self, tcp: bool, reason: str, res: Result | None = None,
                own: bool = False) -> list:
        """dnspython's per-server error list, (server, tcp, port, error, response): one
        entry per failed query of the resolution (``Result.errors``), in order, the server
        named as dnspython names a nameserver (``Do53:ADDR@PORT``, ``DoT:ADDR@PORT``), a
        timeout as ``dns.exception.Timeout``, an error rcode by its name with the server's
        response (a ``dns.message.Message``), any other failure by its reason. When no
        server failed (the cache, a time limit), or with ``own`` (DNSSEC bogus), the
        resolution's own ``reason`` follows, with None for its server."""
        kind = "DoT" if (self._root_forward is not None
                         and self._root_forward.transport == "tls") else "Do53"
        out = []
        for (addr, port), what in (res.errors if res is not None and res.errors else ()):
            wire = getattr(what, "wire", None)
            out.append((f"{kind}:{addr}@{port}", tcp, port,
                        dns.exception.Timeout() if what == "timeout" else str(what),
                        None if wire is None else dns.message.from_wire(bytes(wire))))
        if own or not out:
            out.append((None, tcp, self.port, reason, None))
        return out

    def _local_answer(self, local, name: bytes, rdtype, rdclass,
                      raise_on_no_answer: bool) -> Answer:
        """A local zone's answer as ``resolve`` gives answers (never cached)."""
        request = dns.message.make_query(dns.name.from_wire(name, 0)[0], rdtype, rdclass)
        if local is DROP:
            raise NoNameservers(request=request, errors=[
                (None, False, self.port, "dropped by a deny local zone", None)])
        rcode, answer, authority = local
        if rcode not in (it.NOERROR, it.NXDOMAIN):
            raise NoNameservers(request=request, errors=[
                (None, False, self.port, f"rcode {rcode} from a local zone", None)])
        question = name + struct.pack("!HH", rdtype, rdclass)
        wire = build_response(0, 0x8580, question, answer, authority, [], rcode=rcode)
        ttl = min((r[3] for r in answer + authority), default=0)
        entry = _LocalEntry(wire, self.clock() + ttl, ttl)
        return self._answer(entry, name, rdtype, rdclass, self.clock(), raise_on_no_answer)

    async def _alias_answer(self, name: bytes, rdtype, rdclass,
                            raise_on_no_answer: bool) -> Answer:
        """A redirect zone's CNAME (``resolver.zones.Alias``) as ``resolve`` gives answers:
        the response a server gives (``resolve_message``: the CNAME, then what its target
        resolves to), never cached under the question's name."""
        edns = self.edns >= 0
        query = build_query(0, name, rdtype, rdclass, rd=True, edns=edns,
                            do=edns and bool(self.ednsflags & _DO))
        wire = await self.resolve_message(query)
        rcode = wire[3] & 0x0F
        if rcode not in (it.NOERROR, it.NXDOMAIN):
            raise NoNameservers(request=self._request(name, rdtype, rdclass), errors=[
                (None, False, self.port, f"rcode {dns.rcode.to_text(rcode)} for the target "
                 "of a local zone's CNAME", None)])
        msg = dns.message.from_wire(wire)
        ttl = min((rrset.ttl for rrset in msg.answer + msg.authority), default=0)
        entry = _LocalEntry(wire, self.clock() + ttl, ttl)
        return self._answer(entry, name, rdtype, rdclass, self.clock(), raise_on_no_answer)

    def _answer(self, e, name: bytes, rdtype, rdclass, now: float,
                raise_on_no_answer: bool = True, server: tuple | None = None) -> Answer:
        """The entry's Answer, built once a second and shared by the hits within it: its
        records' TTLs are what is left of them, as a server's answer from its cache says
        (dnspython's own cache, by contrast, keeps them as stored); ``expiration`` is
        exact, and ``nameserver``/``port`` name the server that gave it when it was
        resolved: ``server``, the Result's, kept with the entry for every later hit, in any
        second and any case. A stale entry gets a fresh Answer with the
        stale TTL. ``name`` is the question as the caller wrote it: its case is the
        question's, and that of the names compressed to it, as the daemon's answer encoder
        gives a query its own case (the entry keeps the case of whoever asked first; an
        Answer for another case is made afresh, never shared)."""
        wire = e.wire
        own_case = wire.startswith(name, 12)
        if not own_case and wire[12:12 + len(name)].lower() == name.lower():
            wire = wire[:12] + name + wire[12 + len(name):]
        kept = e.parsed
        outcome = kept if own_case else None
        age = int(now - e.stored_at)            # whole seconds since it was stored
        if outcome is None or e.expires < now or outcome[-1] != age:
            if server is None and kept is not None:
                server = kept[-2]               # who gave it, whatever its age now
            msg = dns.message.from_wire(wire)
            qname = msg.question[0].name
            if msg.rcode() == dns.rcode.NXDOMAIN:
                outcome = ("nx", qname, msg, server, age)
            else:
                if e.expires < now:
                    for rrset in msg.answer:
                        rrset.ttl = self.limits.stale_answer_ttl
                    expiration = time.time() + self.limits.stale_answer_ttl
                else:
                    if age > 0:
                        for section in (msg.answer, msg.authority, msg.additional):
                            for rrset in section:
                                rrset.ttl = max(0, rrset.ttl - age)
                    expiration = time.time() + max(0.0, e.expires - now)
                ans = Answer(qname, rdtype, rdclass, msg, expiration)
                if server is not None:
                    ans.nameserver, ans.port = server
                elif self.forward and len(self.forward) == 1 and self._root_forward is None:
                    ans.nameserver, ans.port = self.forward[0], self.port
                outcome = ("ok" if ans.rrset is not None else "nodata", ans, server, age)
            if e.expires >= now and own_case:
                e.parsed = outcome
            elif kept is None:
                # another case's Answer is never shared, but who gave it is kept (an age
                # no hit has makes the entry's own case build its Answer afresh)
                e.parsed = outcome[:-1] + (-1,)
        if outcome[0] == "ok":
            return outcome[1]
        if outcome[0] == "nx":
            raise dns.resolver.NXDOMAIN(qnames=[outcome[1]], responses={outcome[1]: outcome[2]})
        if not raise_on_no_answer:
            return outcome[1]
        raise dns.resolver.NoAnswer(response=outcome[1].response)

    # ---- resolution ---------------------------------------------------------------------------
    async def _result(self, qname: bytes, qtype: int, qclass: int, tcp: bool = False,
                      tried: list | None = None, lifetime: float | None = None) -> Result:
        """The Result of resolving the question (shared with identical ones in flight).
        A caller that gives up first gets, in ``tried``, the (address, port) and what went
        wrong of each of its queries that failed so far. ``lifetime``: what the caller
        allows, which a question asking the nameservers may take (``nameserver_rules``)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        done = _settler(fut, loop)
        resolution = start_resolution(self, qname, qtype, qclass, loop, done, tcp)
        if lifetime is not None and self.forward:
            allow = getattr(resolution, "allow_time", None)     # a DNS64 Synthesis has none
            if allow is not None:
                allow(lifetime)

        def give_up():
            if tried is not None:
                tried.extend(self._failed_so_far(resolution))
            resolution.discard(done)

        return await _settled(fut, give_up)

    def _failed_so_far(self, resolution) -> list:
        """The failed queries of a resolution in flight, as ``Result.errors``; asking the
        nameservers, the query in flight then too, as timed out (dnspython's last try, cut
        short by the lifetime, ends in a timeout)."""
        iterator = getattr(resolution, "iterator", None)
        errors = getattr(iterator, "errors", None) or ()
        ports = getattr(iterator, "ports", None) or {}
        out = [(tuple(ports.get(s) or (s, self.port)), what) for s, what in errors]
        host = getattr(resolution, "host", None)
        if self.forward and host and not resolution.finished:
            out.append(((host, resolution.dport), "timeout"))
        return out

    def set_limits(self, limits: Limits) -> None:
        """Replaces the limits the resolver and its message and rrset stores read (serve-stale
        and prefetch at run time) and how long a mark on a server lasts
        (``infra_host_ttl``); the validator and the other per-server facts keep those they
        were made with."""
        self.limits = limits
        self.cache.set_limits(limits)
        self.cache.infra.host_ttl = limits.infra_host_ttl

    def local_answer(self, q: bytes, client=None):
        """The local zones' response to the wire query ``q`` whatever its RD bit says (as
        Unbound, local data answers a query with RD clear too), or the CH-class answer
        about this resolver (``resolver.chaos``, which Unbound answers as early): bytes,
        ``DROP`` (a deny zone), or None when neither holds the question (or it is no plain
        QUERY of class IN or CH); None for a redirect zone's CNAME too (a local alias,
        whose target is resolved: a query with RD clear gets REFUSED, as from Unbound).
        A zone transfer or a meta type gets its error first, as from ``begin``
        (``response.type_refusal``). ``client``: the asker's address, for ``inform``
        zones' log."""
        lz = self.local_zones
        if len(q) < 12 or q[2] & 0xF8 or lz is None and not self.chaos:
            return None
        try:
            m = parse_response(q, self.limits.max_pointer_jumps, self.limits.max_query_records,
                               False)
        except WireError:
            return None
        if (m.qname is None or m.edns and (m.edns_flags >> 16) & 0xFF
                or _has_pointer(m.question)):
            return None
        refused = response.type_refusal(q, m.qtype)
        if refused is not None:
            return refused
        if m.qclass == 3:
            return response.chaos_wire(self, q, m, bool(m.edns),
                                       bool(m.edns_flags & 0x8000))
        if m.qclass != 1 or lz is None:
            return None
        found = response.local_data(self, m.qname, m.qtype, m.qclass, client)
        if found is None or found is DROP:
            return found
        if type(found) is Alias:        # its target is the resolution's to find
            return None
        return response.local_wire(q, found, m.question, m.edns, bool(m.edns_flags & 0x8000))

    def nameserver_rules(self, zone: ForwardZone | None = None) -> dict:
        """The Forwarder arguments that make its servers asked as this resolver's own
        nameservers are (``forward``, or ``zone`` when it is the forward zone for "." they
        make, ``nameservers`` with ports or over TLS): glibc's ``attempts`` and
        ``trust_ad``; without ``attempts``, as dnspython asks them (``stub``,
        ``retry_servfail``); within the ``lifetime``. Another forward zone: none (its
        servers are asked as Unbound asks them)."""
        if zone is not None and zone is not self._root_forward:
            return {}
        return {"attempts": self.attempts, "trust_ad": self.trust_ad,
                "stub": self.attempts is None, "retry_servfail": bool(self.retry_servfail),
                "time_limit": self.lifetime}

    def validating(self, zone: bytes) -> dict:
        """The Forwarder arguments for a question of the forward zone ``zone`` (wire): with
        validation on, the validator and where its lookups go (``lookup_iterator``)."""
        if self.dnssec is None:
            return {"zone": zone}
        return {"zone": zone, "dnssec": self.dnssec, "cache": self.cache,
                "route": self.lookup_iterator}

    def lookup_iterator(self, name: bytes, rdtype: int, qclass: int):
        """What asks a validator's lookup of ``name``/``rdtype`` for a forwarded answer, as
        Unbound routes it: the deepest forward zone holding the name (a DS: its parent, the
        zone that serves it) asks its forwarders; otherwise the recursive iterator, which
        finds a stub zone's servers in the cache. Never counted as a client's question."""
        key = name if rdtype != it.DS or name == b"\x00" else name[name[0] + 1:]
        cut = self.zones.match(key) if self.zones is not None else None
        if cut is not None and hasattr(cut, "lookup_iterator"):
            return cut.lookup_iterator(self, name, rdtype, qclass)
        return iterator_for(self, name, rdtype, qclass)

    def recursive_iterator(self, qname: bytes, qtype: int, qclass: int):
        """The Iterator for a question that forwarding gave up on (``forward-first``):
        from the deepest stub zone holding it, else from the root."""
        cut = self.zones.match(qname, stub_only=True) if self.zones is not None else None
        if cut is not None:
            return cut.iterator(self, qname, qtype, qclass, iterator_for)
        return iterator_for(self, qname, qtype, qclass)

    def set_zones(self, zones: Zones | None) -> None:
        """Replaces the forward, stub and local zones. The cache is kept but for what it
        holds at or below a zone (or local-data name) that changed, which is forgotten now
        and once more when the resolutions in flight meanwhile have ended (one of them may
        store its answer after the first time). Servers given by name (``forward-host``,
        ``stub-host``) are resolved by this resolver and followed when they move, and a
        ``stub-prime`` zone's NS set is asked of its servers (``server_names``, started now
        on a running loop, else by ``start_server_names``); a zone is served once one of
        its servers has an address."""
        from resolver.server_names import ServerNames

        self._user_zones = zones
        old_names = self.server_names
        names = None
        if zones is not None and zones.kept:
            names = ServerNames(self, zones, old_names)
            zones = zones.resolved(names.addresses, names.primed)
        self.server_names = names
        if old_names is not None:
            old_names.stop()
        self.install_zones(zones)
        if names is not None:
            names.start()

    async def start_server_names(self) -> None:
        """Keeps the zones' server names resolved from the running loop, and returns once
        they have been resolved a first time (the daemon awaits it before it serves)."""
        names = self.server_names
        if names is not None and names.start():
            await names.ready.wait()

    def install_zones(self, zones: Zones | None) -> None:
        """``set_zones`` for zones whose servers are all addresses (``ServerNames`` installs
        the configured zones with their names' addresses through it)."""
        if self._root_forward is not None:          # forwarders on ports of their own
            z = zones if zones is not None else Zones()
            zones = z.with_forward(self._root_forward)
        elif not self.forward and (zones is None or b"\x00" not in zones.cuts):
            # recursing itself (no forwarders, no forward zone for "."): Unbound's default
            # local zones (localhost, the loopback reverse zones, RFC 6761's special-use
            # names and RFC 6303's AS112 zones) answered here, never asked upstream,
            # unless the zones say otherwise
            zones = (zones if zones is not None else Zones()).with_defaults()
        old, new = self.zones, (zones if zones else None)
        changed = changed_names(old, new)
        self.zones = new
        self.local_zones = new.local_zones if new is not None else None
        if self.dnssec is not None:
            self.dnssec.configured = frozenset(new.cuts) if new is not None else frozenset()
        self.forget(changed)                        # and seeds the new stub zones
        if changed and self.resolutions:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            loop.call_later(self.limits.max_query_time + 1.0, self.forget, changed)

    def forget(self, names: Iterable[bytes]) -> None:
        """Forgets what the cache and the validator hold at or below each of ``names``
        (wire, lower case; the root: everything), then puts the stub zones' servers back
        (the operator's flushes in ``resolver.operations`` and a change of zones use it)."""
        for name in names:
            flush_under(self.cache, name)
            if self.dnssec is not None:
                self.dnssec.flush(None if name == b"\x00" else name)
        if self.zones is not None:
            self.zones.seed(self.cache, self.clock())

    def refresh(self, key: bytes, e) -> None:
        """Refreshes a popular entry near its expiry in the background (the hit paths call
        it for an entry due for prefetch)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        e.prefetching = True
        self.stats.prefetches += 1
        name = key[:-5]
        qtype, qclass = struct.unpack("!HH", key[-5:-1])
        # Forget the rrset-level data so the iterator asks the authorities again (with
        # DNS64, the A records an AAAA answer may be synthesised from as well).
        types = (qtype, it.CNAME, it.A) if self.dns64 is not None and qtype == it.AAAA else (
            qtype, it.CNAME)
        for t in types:
            self.cache.rrsets.lru.pop((name, t, qclass))

        def done(res) -> None:
            e.prefetching = False
            if (res is not None and res.rcode in (it.NOERROR, it.NXDOMAIN)
                    and res.security != it.BOGUS):
                now = self.clock()
                response.store_keyed(self.cache, key, res, e.wire[12:e.qend], qtype, now)
                if self.shared is not None:     # the other processes get the fresh answer
                    self.shared.offer(self, loop, key, now)

        variant = key[-1]
        start_resolution(self, name, qtype, qclass, loop, done, False,
                         bool(variant & _VARIANT_DO and variant & _VARIANT_CD))

    async def close(self) -> None:
        """Stops the resolutions in flight (prefetches included): their sockets are closed
        and the callers waiting on them get CancelledError; the connections to TLS
        forwarders are closed too."""
        if self.auto_anchors is not None:
            self.auto_anchors.stop()
        if self.server_names is not None:
            self.server_names.stop()
        for resolution in list(self.resolutions.values()):
            resolution.cancel()
        self.tls_upstreams.close()
        await asyncio.sleep(0)          # TCP transports finish closing


class _LocalEntry:
    """A local answer in the shape ``Resolver._answer`` reads from a cache entry."""

    __slots__ = ("wire", "expires", "ttl", "parsed", "stored_at")

    def __init__(self, wire: bytes, expires: float, ttl: float) -> None:
        self.wire, self.expires, self.ttl, self.parsed = wire, expires, ttl, None
        self.stored_at = expires - ttl


#: names asked by text, with their search candidates (bounded: cleared when full)
_CANDIDATES: dict = {}
_CANDIDATES_MAX = 4096
_ENUMS: dict = {}
_META = frozenset(t for t in dns.rdatatype.RdataType if dns.rdatatype.is_metatype(t))
_META_CLASSES = frozenset(c for c in dns.rdataclass.RdataClass if dns.rdataclass.is_metaclass(c))


def _enum(kind, value):
    """``kind.make(value)``, remembered for the few values applications pass."""
    try:
        return _ENUMS[kind, value]
    except (KeyError, TypeError):
        made = kind.make(value)
        if len(_ENUMS) < 256:
            try:
                _ENUMS[kind, value] = made
            except TypeError:
                pass
        return made


class NoNameservers(dns.resolver.NoNameservers):
    """dnspython's NoNameservers; an error of no single server reads as its reason."""

    def _fmt_kwargs(self, **kwargs):
        return dns.exception.DNSException._fmt_kwargs(
            self, query=kwargs["request"].question, errors=_errors_text(kwargs["errors"]))


class LifetimeTimeout(dns.resolver.LifetimeTimeout):
    """dnspython's LifetimeTimeout; an error of no single server reads as its reason."""

    def _fmt_kwargs(self, **kwargs):
        return dns.exception.DNSException._fmt_kwargs(
            self, timeout=kwargs["timeout"], errors=_errors_text(kwargs["errors"]))


def _unreachable(res: Result) -> bool:
    """No server could be asked (each marked down after its timeouts) and none answered:
    dnspython, which asks them again until its lifetime is over, ends in LifetimeTimeout."""
    return res.ede == EDE_NO_REACHABLE_AUTHORITY and _silent(res)


def _silent(res: Result) -> bool:
    """Every query of the question went unanswered (timed out, or not sent to a server
    marked down after its timeouts)."""
    return bool(res.errors) and all(what in ("timeout", "marked down or busy")
                                    for _, what in res.errors)


def _errors_text(errors) -> str:
    return "; ".join(str(e[3]) if e[0] is None else f"Server {e[0]} answered {e[3]}"
                     for e in errors)


def _source_address(source: object) -> str | tuple[str, ...] | None:
    """``source`` as the upstream sockets are bound to it: a numeric address, a tuple of
    several (one given alone is itself), or None."""
    if source is None:
        return None
    if isinstance(source, (str, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return _one_source(source)
    try:
        addresses = list(source)        # type: ignore[call-overload]
    except TypeError:
        raise ValueError(f"source: a numeric IPv4 or IPv6 address or several, not "
                         f"{source!r}") from None
    several = tuple(dict.fromkeys(_one_source(a) for a in addresses))
    if len(several) < 2:
        return several[0] if several else None
    return several


def _one_source(address: object) -> str:
    try:
        return str(ipaddress.ip_address(str(address)))
    except ValueError:
        raise ValueError(f"source: a numeric IPv4 or IPv6 address, not {address!r}") from None


def _absolute(name) -> dns.name.Name:
    """A search domain (a Name or text) as an absolute name."""
    if not isinstance(name, dns.name.Name):
        return dns.name.from_text(str(name))
    return name if name.is_absolute() else name.concatenate(dns.name.root)


def _upstreams(entries) -> list[Upstream]:
    """``forward=``/``nameservers`` entries: ``"ADDR"``, ``"ADDR@PORT"``, ``"ADDR#PORT"``,
    ``(ADDR, PORT)`` or a dnspython ``Do53Nameserver``; a port of None means ``port``."""
    out = []
    for e in entries:
        if isinstance(e, (tuple, list)) and len(e) == 2:
            up = Upstream.parse(str(e[0]), "forward=")
            if up.port is not None:
                raise ValueError(f"forward=: {e!r}: the port is given twice")
            port = int(e[1])
            if not 1 <= port <= 65535:
                raise ValueError(f"forward=: {e!r}: port {port} out of range 1-65535")
            up = Upstream(up.addr, port)
        elif isinstance(e, dns.nameserver.Nameserver) and not isinstance(
                e, dns.nameserver.Do53Nameserver):
            raise ValueError(f"nameservers: {type(e).__name__} is not asked here (plain "
                             "addresses, Do53Nameserver or DoTNameserver)")
        elif hasattr(e, "address") and hasattr(e, "port"):     # dns.nameserver.Do53Nameserver
            up = Upstream(Upstream.parse(str(e.address), "forward=").addr, int(e.port))
        elif isinstance(e, str):
            up = Upstream.parse(e, "forward=")
        else:
            raise ValueError(f"forward= takes numeric IPv4 or IPv6 addresses, not {e!r}")
        out.append(up)
    return out


def _tls_upstreams(entries) -> tuple[tuple[Upstream, ...], str | None]:
    """dnspython ``DoTNameserver`` entries as TLS forwarders, and the CA file their
    certificates are verified against (None: the system's store). Each needs its
    ``hostname`` (the name its certificate must carry) and one ``verify`` for all; a
    certificate is always verified (``verify=False`` is refused)."""
    ups, bundles = [], set()
    for e in entries:
        if not e.hostname:
            raise ValueError(f"nameservers: {e}: a DoTNameserver needs hostname= (the name "
                             "its certificate is verified against)")
        if e.verify is False:
            raise ValueError(f"nameservers: {e}: verify=False is refused; the certificate "
                             "is always verified (verify= a CA file to trust another CA)")
        bundles.add(None if e.verify is True else os.fspath(e.verify))
        ups.append(Upstream.parse(f"{e.address}@{e.port}#{e.hostname}", "nameservers",
                                  tls=True))
    if len(bundles) > 1:
        raise ValueError("nameservers: the DoTNameservers name different verify= CA files")
    return tuple(ups), bundles.pop()


def _settler(fut: asyncio.Future, loop: asyncio.AbstractEventLoop):
    """``done(result)`` for a caller waiting on ``fut`` (of ``loop``): its result, or None
    to cancel it. A resolution in flight is shared by the callers of the same question,
    whatever their loop (one Resolver used from threads that each run their own), and it
    ends on one of them: a caller of another loop is woken through its loop's thread-safe
    call (which it never was: it slept until something else woke its loop)."""
    def settle(res) -> None:
        if not fut.done():
            fut.cancel() if res is None else fut.set_result(res)

    def done(res) -> None:
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:            # called from a thread that runs no loop
            here = None
        if here is loop:
            settle(res)
            return
        try:
            loop.call_soon_threadsafe(settle, res)
        except RuntimeError:            # that caller's loop is closed: no one waits there
            pass

    return done


async def _settled(fut: asyncio.Future, give_up):
    """``fut``'s result; a caller cancelled while it waits gives up with ``give_up()``."""
    if fut.done():
        return fut.result()
    try:
        return await fut
    except asyncio.CancelledError:
        give_up()
        raise
