"""``dns.resolver``'s synchronous API on corenet's resolver.

    from resolver import sync as resolver      # for: from dns import resolver
    answer = resolver.resolve("example.org", "AAAA")
    r = resolver.Resolver()                    # the nameservers of /etc/resolv.conf
    r = resolver.Resolver(configure=False)     # recursion from the root, validating

:class:`Resolver` has dnspython's constructor (``filename``, ``configure``), attributes and
methods, and the module dnspython's functions on ``default_resolver``
(:func:`get_default_resolver`, :func:`reset_default_resolver`; assigning
``resolver.sync.default_resolver`` chooses it, as in dnspython). With ``configure`` (the
default) a Resolver reads ``filename`` (``/etc/resolv.conf``) as dnspython does
(``nameserver``, ``domain``, ``search``, ``options rotate``, ``timeout:N``, ``ndots:N``,
``edns0``, every ``nameserver`` line, the ``LOCALDOMAIN`` and ``RES_OPTIONS`` environment
variables not read for these; :func:`resolver.hostconf.read_resolv_conf`), and ``options
attempts:N`` and ``trust-ad`` as glibc does (``RES_OPTIONS``'s after the file's), and asks
those nameservers, with corenet's cache on top: ``attempts:N`` gives each nameserver N
tries per question (in rounds over them, each try waiting ``timeout``, a server marked
down included; 0 to 5, as glibc caps it) and then the call fails
(``LifetimeTimeout`` when none answered, else ``NoNameservers``), where without it they
are asked until the lifetime ends; ``trust-ad`` sets AD in the queries and keeps the AD bit
of their answers on the Answer's ``response.flags`` (without it an answer has AD only when
corenet validated it, ``validate=True``, which asks them as a validated forward zone
without these two). Without ``configure``, a Resolver has no nameservers and recurses from
the root hints (the real root's by default), validating DNSSEC with the shipped root
anchor, as the daemon does. The keyword arguments of :class:`resolver.Resolver`
(``root_hints``, ``limits``, ``zones``, ``trust_anchor``, ``cache_size``...) are accepted
after those two. ``validate``:
unset, what the engine resolves itself is validated and the nameservers' answers are not
(as dnspython); ``validate=True`` validates those too (they are asked as a forward zone for
"." whose DS and DNSKEY lookups go to them as well); ``validate=False``, nothing.

What runs where: each Resolver owns an engine, a :class:`resolver.Resolver` (the async
resolver: the same resolution, cache and validation), which lives on one private event loop
in a thread of its own (:mod:`resolver.loop_thread`), shared by every sync Resolver of the
process. A call hands its work to that loop and blocks until the answer, so any number of
threads may call at once (identical questions in flight share one resolution), and a call
from inside a running event loop's thread blocks that loop until it returns, as dnspython's
sync resolver does, without deadlocking. Setting an attribute is done on that loop too.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import warnings
from typing import Any, Callable, TextIO

import dns.inet
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.reversename
import dns.tsig
# dns.resolver's names for its answers and exceptions, exported as its own (``X as X``)
from dns.resolver import (NXDOMAIN as NXDOMAIN, YXDOMAIN as YXDOMAIN, Answer as Answer,
                          Answers as Answers, EmptyHostAnswers as EmptyHostAnswers,
                          HostAnswers as HostAnswers, LifetimeTimeout as LifetimeTimeout,
                          NoAnswer as NoAnswer, NoMetaqueries as NoMetaqueries,
                          NoNameservers as NoNameservers,
                          NoResolverConfiguration as NoResolverConfiguration,
                          NoRootSOA as NoRootSOA, NotAbsolute as NotAbsolute,
                          Timeout as Timeout)
# dns.resolver's caches, for code that makes one to assign to a resolver's ``cache`` (read
# and filled as dnspython's resolver does; the engine keeps its own beneath: Resolver.cache).
from dns.resolver import (Cache as Cache, CacheBase as CacheBase, CacheKey as CacheKey,
                          CacheStatistics as CacheStatistics, LRUCache as LRUCache)

from resolver import api, functions, hostconf, loop_thread, operations
from resolver.limits import DEFAULT
from resolver.zones import ForwardZone, Upstream, Zones

#: seconds a caller waits beyond the call's own lifetime before it gives up (the engine
#: bounds the call by the lifetime; this only bounds the hand-over)
_GRACE = 2.0

def _engine_attribute(name: str, doc: str) -> property:
    def get(self: Resolver) -> Any:
        return getattr(self._engine, name)

    def set_(self: Resolver, value: Any) -> None:
        loop_thread.call(setattr, self._engine, name, value)

    return property(get, set_, doc=doc)


class Resolver:
    """``dns.resolver.Resolver``: see the module docstring. ``filename``: a path or a file
    object in resolv.conf's format, read when ``configure`` is true (a missing file, or
    one without nameservers, raises ``NoResolverConfiguration`` as in dnspython).
    ``engine``: :class:`resolver.Resolver`'s keyword arguments."""

    def __init__(self, filename: str | os.PathLike | TextIO = "/etc/resolv.conf",
                 configure: bool = True, **engine: Any) -> None:
        if "forward" in engine:
            raise TypeError("Resolver(): set nameservers (or read a resolv.conf) rather "
                            "than forward=")
        if "limits" not in engine:           # dnspython's timeout, the rest the engine's
            engine["limits"] = dataclasses.replace(DEFAULT, max_rto=api.DNSPYTHON_TIMEOUT)
        validate = engine.pop("validate", None)
        if validate is False:
            engine["validate"] = False
        #: validate the nameservers' answers too (``validate=True`` given)
        self._validate_nameservers = validate is True
        self._zones = engine.get("zones")
        #: the nameservers asked through a validated forward zone for ".", else None
        self._validated: list[str] | None = None
        self._engine: api.Resolver = loop_thread.call(api.Resolver, **engine)
        self._port = self._engine.port
        #: a dnspython cache assigned to ``cache``, or None
        self._cache: dns.resolver.CacheBase | None = None
        self.reset()
        if configure and filename:
            self.read_resolv_conf(filename)

    # ---- configuration, as dnspython's ----------------------------------------------------------
    def reset(self) -> None:
        """Back to dnspython's defaults (:meth:`resolver.Resolver.reset`): no nameservers
        (recursion), no search list, the host's domain, ``lifetime`` 5 s, no EDNS
        settings, ``port`` as made, no dnspython cache."""
        self._cache = None
        loop_thread.call(self._reset)

    def _reset(self) -> None:
        self._engine.reset()
        self._set_nameservers([])

    def read_resolv_conf(self, f: str | os.PathLike | TextIO) -> None:
        """Reads ``f`` (a path or a file object) as dnspython does, ``attempts:N`` and
        ``trust-ad`` as glibc does, ``RES_OPTIONS`` included
        (:func:`resolver.hostconf.read_resolv_conf`), and asks its nameservers."""
        conf = hostconf.read_resolv_conf(f)
        loop_thread.call(self._apply, conf)

    def _apply(self, conf: dns.resolver.BaseResolver) -> None:
        self._engine.apply_resolv_conf(conf)
        self._set_nameservers(list(conf.nameservers))

    def _set_nameservers(self, entries: list) -> None:
        """Ask ``entries`` (on the engine's loop): as the engine's forwarders, or, with
        ``validate=True``, as a forward zone for "." whose answers the engine validates."""
        e = self._engine
        self._validated = None
        e.set_zones(self._zones)
        e.nameservers = entries
        if self._validate_nameservers and e.forward:
            servers = e.nameservers
            ups = tuple(Upstream.parse(server, "nameservers") for server in servers)
            e.nameservers = []                 # the recursion's validator, back
            e.set_zones((self._zones or Zones()).with_forward(ForwardZone(".", ups)))
            self._validated = servers


    @property
    def nameservers(self) -> list[str]:
        """The nameservers asked (``ADDR@PORT`` for one on a port of its own); ``[]``:
        recursion from the root hints. Set it as in dnspython (addresses, or
        ``dns.nameserver.Do53Nameserver``; ``nameserver_ports`` gives a plain address its
        port) or as :class:`resolver.Resolver`'s ``nameservers``."""
        if self._validated is not None:
            return list(self._validated)
        return self._engine.nameservers

    @nameservers.setter
    def nameservers(self, entries) -> None:
        if not isinstance(entries, (list, tuple)):
            raise ValueError(f"nameservers must be a list or tuple (not a {type(entries)})")
        loop_thread.call(self._set_nameservers, list(entries))

    port = _engine_attribute("port", "The port the nameservers are asked on.")
    nameserver_ports = _engine_attribute("nameserver_ports", "dnspython's: a plain "
                                         "address's port, for ``nameservers``.")
    flags = _engine_attribute("flags", "dnspython's ``flags`` (see ``set_flags``).")
    keyring = _engine_attribute("keyring", "dnspython's TSIG keyring: None.")
    keyname = _engine_attribute("keyname", "dnspython's TSIG key name.")
    keyalgorithm = _engine_attribute("keyalgorithm", "dnspython's TSIG algorithm.")
    retry_servfail = _engine_attribute("retry_servfail", "dnspython's: a nameserver that "
                                       "answered SERVFAIL is asked again.")
    search = _engine_attribute("search", "dnspython's search list (Names, or text).")
    domain = _engine_attribute("domain", "dnspython's domain: the search list when "
                                         "``search`` is empty.")
    ndots = _engine_attribute("ndots", "dnspython's ndots (None: 1).")
    use_search_by_default = _engine_attribute("use_search_by_default",
                                              "Whether ``search=None`` searches.")
    rotate = _engine_attribute("rotate", "Kept: servers are picked by measured RTT.")
    attempts = _engine_attribute("attempts", "resolv.conf's ``options attempts:N``: the "
                                             "tries each nameserver gets (None: until the "
                                             "lifetime).")
    trust_ad = _engine_attribute("trust_ad", "resolv.conf's ``options trust-ad``: AD asked "
                                             "for and kept from the nameservers' answers.")
    lifetime = _engine_attribute("lifetime", "Seconds one call may take (5 by default).")
    timeout = _engine_attribute("timeout", "What one try of a nameserver waits (2 s by "
                                           "default, as dnspython's; ``Limits.max_rto``).")
    @property
    def cache(self):
        """dnspython's ``cache``: a ``dns.resolver.Cache`` or ``LRUCache`` assigned here is
        read and filled as dnspython's resolver does it (each ``resolve`` and
        ``resolve_address`` asks it first and puts its answers and NXDOMAINs in it, so
        its ``get``, ``put``, ``flush``, ``hits``, ``data`` are dnspython's); unassigned,
        the engine's own cache (:attr:`resolver.Resolver.cache`), which is always on
        beneath either. None drops the assigned one and empties the engine's."""
        return self._cache if self._cache is not None else self._engine.cache

    @cache.setter
    def cache(self, value) -> None:
        if isinstance(value, dns.resolver.CacheBase):
            self._cache = value
            return
        loop_thread.call(setattr, self._engine, "cache", value)
        self._cache = None
    source = _engine_attribute("source", "The address the upstream sockets are bound to.")
    edns = _engine_attribute("edns", "dnspython's EDNS level (see ``use_edns``).")
    ednsflags = _engine_attribute("ednsflags", "dnspython's EDNS flags.")
    payload = _engine_attribute("payload", "dnspython's EDNS payload size.")
    ednsoptions = _engine_attribute("ednsoptions", "dnspython's EDNS options.")

    @property
    def stats(self):
        """The engine's counters (:class:`resolver.Stats`)."""
        return self._engine.stats

    def use_edns(self, edns: int | bool | None = 0, ednsflags: int = 0,
                 payload: int = dns.message.DEFAULT_EDNS_PAYLOAD, options=None) -> None:
        """dnspython's ``use_edns`` (see :meth:`resolver.Resolver.use_edns`)."""
        loop_thread.call(self._engine.use_edns, edns, ednsflags, payload, options)

    def set_flags(self, flags: int) -> None:
        """dnspython's ``set_flags`` (:meth:`resolver.Resolver.set_flags`)."""
        loop_thread.call(self._engine.set_flags, flags)

    def use_tsig(self, keyring, keyname=None, algorithm=dns.tsig.default_algorithm) -> None:
        """TSIG is not supported: a keyring raises NotImplementedError (None is accepted)."""
        loop_thread.call(self._engine.use_tsig, keyring, keyname, algorithm)

    def flush(self, name=None) -> None:
        """Forget the whole cache, or what it holds about one name
        (:func:`resolver.operations.flush` on the engine)."""
        loop_thread.call(operations.flush, self._engine, name)

    def close(self) -> None:
        """Stops the engine's resolutions in flight (see :meth:`resolver.Resolver.close`)."""
        self._run(self._engine.close, 0.0)

    # ---- queries --------------------------------------------------------------------------------
    def _run(self, coro_fn: Callable, lifetime: float | None, calls: int = 1):
        """``coro_fn()`` on the engine's loop; waited for at most ``calls`` lifetimes (and a
        grace), then LifetimeTimeout as dnspython raises when time runs out."""
        limit = (self._engine.lifetime if lifetime is None else lifetime) * calls + _GRACE
        try:
            return loop_thread.run(coro_fn, limit)
        except TimeoutError:
            raise LifetimeTimeout(timeout=limit, errors=[]) from None

    def resolve(self, qname, rdtype="A", rdclass="IN", tcp: bool = False, source=None,
                raise_on_no_answer: bool = True, source_port: int = 0,
                lifetime: float | None = None, search: bool | None = None) -> Answer:
        """``dns.resolver.Resolver.resolve`` (see :meth:`resolver.Resolver.resolve`)."""
        if lifetime is None:
            lifetime = self._engine.lifetime
        if self._cache is not None:
            return self._through_cache(qname, rdtype, rdclass, search, raise_on_no_answer,
                                       lambda: self._run(lambda: self._engine.resolve(
                                           qname, rdtype, rdclass, tcp, source, False,
                                           source_port, lifetime, search), lifetime))
        return self._run(lambda: self._engine.resolve(
            qname, rdtype, rdclass, tcp, source, raise_on_no_answer, source_port, lifetime,
            search), lifetime)

    def _through_cache(self, qname, rdtype, rdclass, search, raise_on_no_answer: bool,
                       ask: Callable[[], Answer]) -> Answer:
        """``resolve`` with the dnspython cache assigned, as dnspython's resolver uses it:
        each name of the search asked of the cache in turn (its answer, else its NXDOMAIN
        under type ANY, which passes to the next name); else ``ask()`` (the engine, which
        gives NODATA as an Answer without rrset) and its answer put in the cache, or each
        NXDOMAIN it met."""
        cache = self._cache
        rdtype = dns.rdatatype.RdataType.make(rdtype)
        rdclass = dns.rdataclass.RdataClass.make(rdclass)
        names = self._engine.search_names(qname, search)
        nxdomains = {}
        for name in names:
            answer = cache.get((name, rdtype, rdclass))
            if answer is None:
                nx = cache.get((name, dns.rdatatype.ANY, rdclass))
                if nx is None or nx.response.rcode() != dns.rcode.NXDOMAIN:
                    break
                nxdomains[name] = nx.response
                continue
            if answer.rrset is None and raise_on_no_answer:
                raise NoAnswer(response=answer.response)
            return answer
        else:
            raise NXDOMAIN(qnames=names, responses=nxdomains)
        try:
            answer = ask()
        except NXDOMAIN as exc:
            for name, response in exc.responses().items():
                cache.put((name, dns.rdatatype.ANY, rdclass),
                          dns.resolver.Answer(name, dns.rdatatype.ANY, rdclass, response))
            raise
        cache.put((answer.qname, rdtype, rdclass), answer)
        if answer.rrset is None and raise_on_no_answer:
            raise NoAnswer(response=answer.response)
        return answer

    def query(self, qname, rdtype="A", rdclass="IN", tcp: bool = False, source=None,
              raise_on_no_answer: bool = True, source_port: int = 0,
              lifetime: float | None = None) -> Answer:
        """dnspython's deprecated ``query``: ``resolve`` with ``search=True``."""
        warnings.warn("please use dns.resolver.Resolver.resolve() instead",
                      DeprecationWarning, stacklevel=2)
        return self.resolve(qname, rdtype, rdclass, tcp, source, raise_on_no_answer,
                            source_port, lifetime, True)

    def resolve_address(self, ipaddr: str, *args: Any, **kwargs: Any) -> Answer:
        """The PTR records of an address (as dnspython's: ``resolve`` of its reverse
        name)."""
        kwargs.update(rdtype=dns.rdatatype.PTR, rdclass=dns.rdataclass.IN)
        return self.resolve(dns.reversename.from_address(ipaddr), *args, **kwargs)

    def resolve_name(self, name, family: int = socket.AF_UNSPEC,
                     **kwargs: Any) -> HostAnswers:
        """IPv4 and/or IPv6 addresses of ``name`` (as dnspython's: A and AAAA)."""
        kwargs.setdefault("lifetime", self._engine.lifetime)
        return self._run(lambda: self._engine.resolve_name(name, family, **kwargs),
                         kwargs["lifetime"], 2)

    def canonical_name(self, name) -> dns.name.Name:
        """The name at the end of ``name``'s CNAME chain (as dnspython's)."""
        return self._run(lambda: self._engine.canonical_name(name), None)


#: the resolver of the module's functions, made by ``get_default_resolver`` when None;
#: assign a Resolver to choose it (as dnspython's)
default_resolver: Resolver | None = None


def get_default_resolver() -> Resolver:
    """``default_resolver``, made (reading /etc/resolv.conf) if None."""
    if default_resolver is None:
        reset_default_resolver()
    assert default_resolver is not None
    return default_resolver


def reset_default_resolver() -> None:
    """A new ``default_resolver``: ``Resolver()``, reading /etc/resolv.conf again."""
    global default_resolver
    default_resolver = Resolver()


def resolve(qname, rdtype="A", rdclass="IN", tcp: bool = False, source=None,
            raise_on_no_answer: bool = True, source_port: int = 0,
            lifetime: float | None = None, search: bool | None = None) -> Answer:
    """``get_default_resolver().resolve(...)``."""
    return get_default_resolver().resolve(qname, rdtype, rdclass, tcp, source,
                                          raise_on_no_answer, source_port, lifetime, search)


def query(qname, rdtype="A", rdclass="IN", tcp: bool = False, source=None,
          raise_on_no_answer: bool = True, source_port: int = 0,
          lifetime: float | None = None) -> Answer:
    """``get_default_resolver().query(...)`` (deprecated, as in dnspython)."""
    warnings.warn("please use dns.resolver.resolve() instead", DeprecationWarning,
                  stacklevel=2)
    return get_default_resolver().resolve(qname, rdtype, rdclass, tcp, source,
                                          raise_on_no_answer, source_port, lifetime, True)


def resolve_address(ipaddr: str, *args: Any, **kwargs: Any) -> Answer:
    """``get_default_resolver().resolve_address(...)``."""
    return get_default_resolver().resolve_address(ipaddr, *args, **kwargs)


def resolve_name(name, family: int = socket.AF_UNSPEC, **kwargs: Any) -> HostAnswers:
    """``get_default_resolver().resolve_name(...)``."""
    return get_default_resolver().resolve_name(name, family, **kwargs)


def canonical_name(name) -> dns.name.Name:
    """``get_default_resolver().canonical_name(...)``."""
    return get_default_resolver().canonical_name(name)


def zone_for_name(name, rdclass=dns.rdataclass.IN, tcp: bool = False,
                  resolver: Resolver | None = None,
                  lifetime: float | None = None) -> dns.name.Name:
    """The name of the zone holding ``name`` (absolute), as dnspython finds it
    (:func:`resolver.functions.zone_for_name`, on ``resolver``'s engine)."""
    if resolver is None:
        resolver = get_default_resolver()
    engine = resolver._engine
    labels = len(name) if isinstance(name, dns.name.Name) else str(name).count(".") + 2
    return resolver._run(lambda: functions.zone_for_name(name, rdclass, tcp, engine,
                                                         lifetime=lifetime),
                         lifetime, 1 if lifetime is not None else labels)


def make_resolver_at(where, port: int = 53, family: int = socket.AF_UNSPEC,
                     resolver: Resolver | None = None) -> Resolver:
    """A Resolver asking ``where`` (an address, or a name whose addresses ``resolver``, or
    the default resolver, finds) on ``port`` (as dnspython's)."""
    if isinstance(where, str) and dns.inet.is_address(where):
        addresses = [where]
    else:
        if resolver is None:
            resolver = get_default_resolver()
        addresses = list(resolver.resolve_name(where, family).addresses())
    made = Resolver(configure=False)
    made.nameservers = [(a, port) for a in addresses]
    return made


def resolve_at(where, qname, rdtype="A", rdclass="IN", tcp: bool = False, source=None,
               raise_on_no_answer: bool = True, source_port: int = 0,
               lifetime: float | None = None, search: bool | None = None, port: int = 53,
               family: int = socket.AF_UNSPEC, resolver: Resolver | None = None) -> Answer:
    """Ask ``where`` ``qname`` through a Resolver made for the call
    (:func:`make_resolver_at`), bound to ``source`` when given, and closed after it."""
    made = make_resolver_at(where, port, family, resolver)
    try:
        made.source = source
        return made.resolve(qname, rdtype, rdclass, tcp, source, raise_on_no_answer,
                            source_port, lifetime, search)
    finally:
        made.close()


def override_system_resolver(resolver: Resolver | None = None) -> None:
    """dnspython's: the socket module's getaddrinfo, getnameinfo, getfqdn, gethostbyname,
    gethostbyname_ex and gethostbyaddr answered by ``resolver`` (the default resolver when
    None), through dnspython's own replacements of them, which ask it ``resolve_name`` and
    ``resolve``; ``restore_system_resolver()`` gives the socket module its own back."""
    dns.resolver.override_system_resolver(
        get_default_resolver() if resolver is None else resolver)  # type: ignore[arg-type]


def restore_system_resolver() -> None:
    """dnspython's: the socket module's own functions back."""
    dns.resolver.restore_system_resolver()
