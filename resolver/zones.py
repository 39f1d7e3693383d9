"""Zones the operator configures: forward zones, stub zones and local zones.

- A **forward zone** sends every question at or below its name to recursive resolvers (RD
  set) and caches their answers; with ``first`` the resolver recurses itself when none of
  them answers. ``transport`` picks how the queries travel ("udp": UDP, TCP after
  truncation; "tcp": TCP only; "tls": DNS over TLS, RFC 7858, each server's certificate
  verified against its authentication name, see ``resolver.upstream.dot``).
- A **stub zone** gives the authoritative servers of its name: the resolver asks them
  (RD clear) instead of finding them through the parent, and iterates normally below.
- A **local zone** answers from configured records (``local-data``) before the cache and
  before any resolution, with every one of Unbound's types (``LOCAL_TYPES``, each as
  ``services/localzone.c`` answers it; ``inform`` types log the client to the
  ``resolver.daemon.localzone`` logger at INFO).
- The **default local zones** (``default_local_zones``) are Unbound's: ``localhost``, the
  loopback reverse zones, the special-use names (``test``, ``invalid``, ``onion``,
  ``home.arpa``, ``resolver.arpa``, ``service.arpa``) and the AS112 reverse zones (RFC
  6303), answered locally unless a local zone of the same name (``nodefault`` or any
  other type) replaces them; ``unblock_lan_zones`` leaves the AS112 ones out.

The longest matching name decides: a local zone is looked at first (it may leave the
question to resolution), then the deepest forward or stub zone. :class:`Zones` holds one set
of them; ``Resolver(zones=...)`` takes it, ``Resolver.set_zones`` replaces it at run time.
Names here are presentation text; the compiled paths get wire names.
"""
from __future__ import annotations

import functools
import ipaddress
import logging
from dataclasses import dataclass, replace
from typing import Iterable

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer
import dns.ttl

from resolver.iterator.events import Result
from resolver.wire.codec import under_any


A, NS, CNAME, SOA, AAAA, DS = 1, 2, 5, 6, 28, 43
NOERROR, SERVFAIL, NXDOMAIN, REFUSED, YXDOMAIN = 0, 2, 3, 5, 6

#: local-zone types (Unbound's names; ``nodefault`` only removes a default zone, and
#: ``noview``, there being no views, answers as ``transparent``, as Unbound's global zones do)
LOCAL_TYPES = ("static", "transparent", "typetransparent", "redirect", "refuse", "deny",
               "inform", "inform_deny", "inform_redirect", "always_transparent",
               "block_a", "block_aaaa", "block_a_wdata", "block_aaaa_wdata",
               "always_refuse", "always_nxdomain", "always_nodata", "always_deny",
               "always_null", "noview", "nodefault")
#: types that answer without looking at their local data (Unbound's local_zones_answer)
_IGNORE_DATA = frozenset(("always_refuse", "always_transparent", "block_a", "block_aaaa",
                          "always_nxdomain", "always_nodata", "always_deny"))
#: types that leave names without local data of theirs to resolution
_PASSING = frozenset(("transparent", "typetransparent", "always_transparent", "inform",
                      "noview", "block_a", "block_aaaa", "block_a_wdata", "block_aaaa_wdata"))
#: types whose zone in a view never holds a question (Unbound's local_zones_answer: the
#: global zones or resolution answer it)
_VIEW_PASSING = frozenset(("noview", "always_transparent", "block_a", "block_aaaa"))
#: types that log each question with its client
INFORM_TYPES = frozenset(("inform", "inform_deny", "inform_redirect"))
#: where ``inform`` zones log
inform_log = logging.getLogger("resolver.daemon.localzone")

# ---- Unbound's default local zones (services/localzone.c, util/as112.c) -------------------
#: the SOA and NS every default zone holds (Unbound's, TTL 10800)
_DEFAULT_SOA = "10800 IN SOA localhost. nobody.invalid. 1 3600 1200 604800 10800"
_DEFAULT_NS = "10800 IN NS localhost."
#: the IPv6 loopback's reverse name (::1)
IP6_LOOPBACK = "1." + "0." * 31 + "ip6.arpa."
#: reverse zones of the loopback addresses, with a PTR to localhost
REVERSE_LOOPBACK_ZONES = ("127.in-addr.arpa.", IP6_LOOPBACK)
#: special-use names never to be resolved on the Internet (RFC 6761, 7686, 8375, 9462, 9665)
SPECIAL_ZONES = ("test.", "invalid.", "onion.", "home.arpa.", "resolver.arpa.",
                 "service.arpa.")
#: reverse zones of private and special-purpose addresses (RFC 1918, RFC 6303, RFC 6598,
#: RFC 3849), in Unbound's order; ``unblock-lan-zones`` resolves them as usual
AS112_ZONES = (
    ("10.in-addr.arpa.",)
    + tuple(f"{i}.172.in-addr.arpa." for i in range(16, 32))
    + ("168.192.in-addr.arpa.", "0.in-addr.arpa.")
    + tuple(f"{i}.100.in-addr.arpa." for i in range(64, 128))
    + ("254.169.in-addr.arpa.", "2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.",
       "113.0.203.in-addr.arpa.", "255.255.255.255.in-addr.arpa.",
       "0." * 32 + "ip6.arpa.", "d.f.ip6.arpa.", "8.e.f.ip6.arpa.", "9.e.f.ip6.arpa.",
       "a.e.f.ip6.arpa.", "b.e.f.ip6.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa."))
#: how a forward zone's queries travel
TRANSPORTS = ("udp", "tcp", "tls")
#: the port of DNS over TLS (RFC 7858), for a TLS server given without one
DOT_PORT = 853
#: TTL of a local-data record written without one (as Unbound)
DEFAULT_LOCAL_TTL = 3600
#: TTL of an ``always_null`` zone's 0.0.0.0 and :: (as Unbound)
NULL_TTL = 3600
#: trust rank of a stub zone's servers in the rrset cache: above anything learned from the
#: network (resolver.cache's ranks end at VALIDATED, 7), so no reply replaces them
CONFIGURED = 8
#: lifetime of a stub zone's servers in the cache; they are put back whenever they are gone
STUB_TTL = 86400
#: the zone under which a stub zone's server addresses get names (RFC 6761: never resolved)
STUB_NS_SUFFIX = "stub.invalid."


class Denied(dns.exception.DNSException):
    """The question is in a ``deny`` local zone: it gets no answer."""


#: ``LocalZones.lookup``'s answer for a question that gets no answer at all
DROP = "drop"


class Alias:
    """``LocalZones.lookup``'s answer for a question a ``redirect`` or ``inform_redirect``
    zone answers with a CNAME, the question asking another type (Unbound's local alias):
    the answer is ``record``, the CNAME at the question's name, followed by what its
    ``target`` (a wire name) resolves to, asked as any question is but without the local
    zones; AA set and AD clear, the local data being the answer's first word."""

    __slots__ = ("record", "target")

    def __init__(self, record: tuple, target: bytes) -> None:
        self.record, self.target = record, target

    def __repr__(self) -> str:
        return f"<Alias to {_text(self.target)}>"


def _redirected(qname: bytes, qtype: int, recs: list):
    """A redirect zone's records ``recs`` answering the question, put at its name: an
    :class:`Alias` when they are a CNAME and the question asks another type. A CNAME target
    whose first label is ``*`` gets the question's name in place of that label; YXDOMAIN
    when that makes the name too long (as Unbound's)."""
    rec = recs[0]
    if rec[1] != CNAME or qtype == CNAME:
        return (NOERROR, [(qname,) + r[1:] for r in recs], [])
    target = rec[4]
    if target[:2] == b"\x01*":
        target = qname[:-1] + target[2:]
        if len(target) > 255:
            return (YXDOMAIN, [], [])
    return Alias((qname, CNAME, rec[2], rec[3], target), target)


def presentation_name(text, what: str) -> str:
    """The canonical presentation form of a domain name (absolute, lower case); ValueError
    names ``what``."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"{what}: expected a domain name, got {text!r}")
    try:
        return dns.name.from_text(text).to_text().lower()
    except dns.exception.DNSException as e:
        raise ValueError(f"{what}: bad domain name {text!r}: {e}") from None


def _wire(text: str) -> bytes:
    return dns.name.from_text(text).to_wire().lower()


@dataclass(frozen=True)
class Upstream:
    """One server of a forward or stub zone: a numeric address and a port (None: the
    resolver's upstream port); over TLS, the name its certificate must carry (``auth``)."""

    addr: str
    port: int | None = None
    auth: str | None = None

    @classmethod
    def parse(cls, text, what: str, tls: bool = False) -> "Upstream":
        """``ADDR``, ``ADDR@PORT`` (Unbound) or ``ADDR#PORT`` (dig); with ``tls``,
        ``ADDR[@PORT]#AUTH-NAME`` (Unbound's form: port 853 unless given, the name the
        server's certificate is verified against)."""
        if not isinstance(text, str) or not text:
            raise ValueError(f"{what}: expected an address, got {text!r}")
        addr, port, auth = text, None, None
        if tls and "#" in addr and not addr.rsplit("#", 1)[1].isdigit():
            addr, auth = addr.rsplit("#", 1)
            auth = _auth_name(auth, f"{what}: {text!r}")
        for sep in ("@", "#"):
            if sep in addr:
                addr, port_text = addr.rsplit(sep, 1)
                if not port_text.isdigit():
                    raise ValueError(f"{what}: {text!r}: port {port_text!r} is not a number "
                                     "(a TLS authentication name needs a TLS transport)")
                port = int(port_text)
                if not 1 <= port <= 65535:
                    raise ValueError(f"{what}: {text!r}: port {port} out of range 1-65535")
        try:
            addr = str(ipaddress.ip_address(addr.strip("[]")))
        except ValueError:
            raise ValueError(f"{what}: {addr!r} is not a numeric IPv4 or IPv6 address") \
                from None
        if tls:
            if auth is None:
                raise ValueError(f"{what}: {text!r}: DNS over TLS needs the server's "
                                 "authentication name (ADDR@PORT#NAME): its certificate is "
                                 "verified against it")
            port = DOT_PORT if port is None else port
        return cls(addr, port, auth)

    @classmethod
    def parse_host(cls, text, what: str, tls: bool = False) -> "Upstream":
        """A server given by name (Unbound's ``forward-host``, ``stub-host``): ``NAME``,
        ``NAME@PORT`` or ``NAME#AUTH-NAME`` (``NAME@PORT#AUTH-NAME``); ``addr`` holds the
        name (absolute, lower case) until the resolver finds its addresses. Over TLS the
        authentication name is the host's name unless given."""
        if not isinstance(text, str) or not text:
            raise ValueError(f"{what}: expected a host name, got {text!r}")
        name, port, auth = text, None, None
        if "#" in name:
            name, auth = name.rsplit("#", 1)
            auth = _auth_name(auth, f"{what}: {text!r}")
        if "@" in name:
            name, port_text = name.rsplit("@", 1)
            if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
                raise ValueError(f"{what}: {text!r}: port {port_text!r} is not a number "
                                 "in 1-65535")
            port = int(port_text)
        try:
            ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            pass
        else:
            raise ValueError(f"{what}: {name!r} is an address (give it as an address, not "
                             "a host)")
        name = presentation_name(name, what)
        if name == ".":
            raise ValueError(f"{what}: {text!r}: the root is no host name")
        if tls:
            auth = name.rstrip(".") if auth is None else auth
            port = DOT_PORT if port is None else port
        elif auth is not None:
            raise ValueError(f"{what}: {text!r}: an authentication name needs a TLS transport")
        return cls(name, port, auth)

    @property
    def key(self) -> str:
        """The server's name for the driver and its per-server facts (RTT, failures); over
        TLS with its authentication name, so that one address and port named differently
        in two zones are two servers."""
        key = self.addr if self.port is None else f"{self.addr}@{self.port}"
        return key if self.auth is None else f"{key}#{self.auth}"

    def __str__(self) -> str:
        return self.key


def _auth_name(text: str, what: str) -> str:
    """A TLS authentication name: a host name (checked as a domain name, kept as written
    without a final dot) or an IP address, as a certificate names its server."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = presentation_name(text, f"{what}: authentication name")
    if name == ".":
        raise ValueError(f"{what}: the authentication name is empty")
    return name.rstrip(".")


@dataclass(frozen=True)
class ForwardZone:
    """Questions at or below ``name`` go to ``servers`` (recursive resolvers)."""

    name: str
    servers: tuple[Upstream, ...]
    #: recurse from the root (or the closest stub zone) when no forwarder answers
    first: bool = False
    #: "udp" (TCP after truncation), "tcp" or "tls" (each server with its ``auth`` name)
    transport: str = "udp"
    #: over TLS: the CA certificates (a PEM file) the servers' certificates are verified
    #: against; None: the system's store
    tls_cert_bundle: str | None = None
    #: over TLS with ``tls_cert_bundle``: the system's store trusted too
    tls_system_cert: bool = False
    #: servers given by name (``forward-host``), asked at the addresses the resolver finds
    #: for them (``resolver.server_names``), beside ``servers``
    hosts: tuple[Upstream, ...] = ()


@dataclass(frozen=True)
class StubZone:
    """``servers`` are the authorities of ``name``; below it iteration goes on as usual."""

    name: str
    servers: tuple[Upstream, ...]
    #: servers given by name (``stub-host``), as ``ForwardZone.hosts``
    hosts: tuple[Upstream, ...] = ()
    #: when the servers fail (SERVFAIL), resolve as if there were no stub (``stub-first``)
    first: bool = False
    #: ask the servers for the zone's NS set and use the servers it names
    #: (``stub-prime``; ``resolver.server_names``)
    prime: bool = False


@dataclass(frozen=True)
class LocalZone:
    """``name`` answered locally as ``type`` says, from ``data`` (zone-file lines)."""

    name: str
    type: str = "static"
    data: tuple[str, ...] = ()


@dataclass(frozen=True)
class View:
    """Unbound's ``view:``: local zones and local data of its own for the clients mapped to
    it (``access-control-view``). A question one of its zones holds is answered from the
    view; any other goes on to resolution, or with ``first`` to the global local zones
    (Unbound's ``view-first``), as do all questions of a view without zones of its own.
    Unless ``first``, a view with zones gets the default local zones too, AS112 ones
    included."""

    name: str
    local: tuple[LocalZone, ...] = ()
    local_data: tuple[str, ...] = ()
    first: bool = False


@dataclass(frozen=True)
class Tags:
    """Unbound's tags. ``names``: ``define-tag``'s, in order (where a zone and a client
    share several tags, the first in this order decides the zone's action and data);
    ``zones``: (local zone name, its tags), ``local-zone-tag``: a tagged global zone
    answers only the clients of a network sharing one of its tags, and the others are
    answered by the zone above it, if any; ``clients``: (network, its tags),
    ``access-control-tag``; ``actions``: (network, tag, zone type), the type the zone of
    that tag has for those clients (``access-control-tag-action``); ``datas``: (network,
    tag, record without its owner, as ``"A 192.0.2.1"``), what a ``redirect`` zone of
    that tag answers those clients for the record's type, CNAME for every type
    (``access-control-tag-data``). Each network is an ``access-control`` one too, and
    the most specific network holding a client decides its tags, as its view."""

    names: tuple[str, ...] = ()
    zones: tuple[tuple[str, tuple[str, ...]], ...] = ()
    clients: tuple[tuple[object, tuple[str, ...]], ...] = ()
    actions: tuple[tuple[object, str, str], ...] = ()
    datas: tuple[tuple[object, str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.zones or self.clients or self.actions or self.datas)

    def index(self, tag: str, what: str) -> int:
        """The bit of ``tag``; ValueError when ``define-tag`` does not name it."""
        try:
            return self.names.index(tag)
        except ValueError:
            raise ValueError(f"{what}: tag {tag!r} is not defined (define-tag)") from None


def default_local_zones(unblock_lan_zones: bool = False) -> tuple[LocalZone, ...]:
    """Unbound's default local zones, in its order: ``localhost`` (redirect: A 127.0.0.1,
    AAAA ::1 for every name below it), the loopback reverse zones (static, a PTR to
    localhost), the special-use names and, unless ``unblock_lan_zones``, the AS112 reverse
    zones (static: NXDOMAIN with the zone's SOA). Each holds an SOA and an NS record, in
    the order Unbound enters them (its ``list_local_data`` shows it: the newest first)."""
    def apex(name: str) -> tuple[str, str]:
        return (f"{name} {_DEFAULT_SOA}", f"{name} {_DEFAULT_NS}")

    def loopback_apex(name: str) -> tuple[str, str]:
        return (f"{name} {_DEFAULT_NS}", f"{name} {_DEFAULT_SOA}")

    out = [LocalZone("localhost.", "redirect", loopback_apex("localhost.") + (
        "localhost. 10800 IN A 127.0.0.1", "localhost. 10800 IN AAAA ::1"))]
    out.append(LocalZone("127.in-addr.arpa.", "static", loopback_apex("127.in-addr.arpa.") + (
        "1.0.0.127.in-addr.arpa. 10800 IN PTR localhost.",)))
    out.append(LocalZone(IP6_LOOPBACK, "static", loopback_apex(IP6_LOOPBACK) + (
        f"{IP6_LOOPBACK} 10800 IN PTR localhost.",)))
    out.extend(LocalZone(name, "static", apex(name)) for name in SPECIAL_ZONES)
    if not unblock_lan_zones:
        out.extend(LocalZone(name, "static", apex(name)) for name in AS112_ZONES)
    return tuple(out)


def _text(wire: bytes) -> str:
    return dns.name.from_wire(wire, 0)[0].to_text()


def _type_text(rdtype: int) -> str:
    return dns.rdatatype.to_text(rdtype)


def _client_text(client) -> str:
    """A client address as Unbound's inform lines print it: ``IP@PORT``."""
    if isinstance(client, (tuple, list)) and len(client) >= 2:
        return f"{client[0]}@{client[1]}"
    return "unknown" if client is None else str(client)


# ---- the config's lists of records -----------------------------------------------------
def local_data(value) -> tuple[str, ...]:
    """Top-level ``local-data``: zone-file lines, each checked."""
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"local-data: expected a list of records, got {value!r}")
    for line in items:
        parse_record(line)
    return tuple(items)


def ptr_records(value) -> tuple[str, ...]:
    """``local-data-ptr``: ``"ADDR NAME [TTL]"`` lines (as Unbound's, TTL after the name
    when given) as the PTR records of local-data, reverse names made from the addresses."""
    import dns.reversename

    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"local-data-ptr: expected a list of \"ADDR NAME\", got {value!r}")
    out = []
    for line in items:
        parts = line.split() if isinstance(line, str) else []
        if len(parts) not in (2, 3):
            raise ValueError(f"local-data-ptr: expected \"ADDR NAME [TTL]\", got {line!r}")
        try:
            rev = dns.reversename.from_address(parts[0]).to_text()
        except (ValueError, dns.exception.DNSException):
            raise ValueError(f"local-data-ptr {line!r}: {parts[0]!r} is not an IP address") \
                from None
        ttl = f" {parts[2]}" if len(parts) == 3 else ""
        record = f"{rev}{ttl} PTR {parts[1]}"
        parse_record(record)
        out.append(record)
    return tuple(out)


#: the record lines whose parse is remembered (``parse_record``): a reload parses again only
#: the lines that changed (dnspython's parse is about 0.1 ms a line, a config of a few
#: thousand local-data lines would spend most of its reload on it, holding the GIL the
#: answers need); the tuples are those the local zones hold, so the memory is the cache's own
RECORDS_REMEMBERED = 1 << 16


def parse_record(line) -> tuple:
    """One zone-file line (``NAME [TTL] [CLASS] TYPE RDATA``; names absolute, a relative one
    is taken from the root) as a record tuple (owner, type, class, TTL, rdata), rdata in
    wire form without compression. ValueError names the line."""
    if not isinstance(line, str):
        raise ValueError(f"local-data: expected a record line, got {line!r}")
    return _parsed(line)


@functools.lru_cache(maxsize=RECORDS_REMEMBERED)
def _parsed(line: str) -> tuple:
    try:
        tok = dns.tokenizer.Tokenizer(line)
        owner = dns.name.from_text(tok.get_string(), dns.name.root)
        ttl = DEFAULT_LOCAL_TTL
        word = tok.get_string()
        if word[:1].isdigit():
            ttl = dns.ttl.from_text(word)
            word = tok.get_string()
        rdclass = dns.rdataclass.IN
        try:
            rdclass = dns.rdataclass.from_text(word)
            word = tok.get_string()
        except dns.rdataclass.UnknownRdataclass:
            pass
        if rdclass != dns.rdataclass.IN:
            raise ValueError("only class IN is served")
        rdtype = dns.rdatatype.from_text(word)
        if rdtype in (dns.rdatatype.ANY, dns.rdatatype.OPT) or dns.rdatatype.is_metatype(rdtype):
            raise ValueError(f"type {word} cannot be local data")
        rd = dns.rdata.from_text(rdclass, rdtype, tok, dns.name.root, False)
    except (dns.exception.DNSException, ValueError) as e:
        raise ValueError(f"local-data {line!r}: {e}") from None
    return (owner.to_wire(), int(rdtype), int(rdclass), int(ttl), rd.to_wire())


# ---- local zones ----------------------------------------------------------------------------
def _labels_up(lname: bytes):
    """``lname`` (wire) and each of its ancestors, the root last."""
    pos = 0
    while True:
        yield lname[pos:]
        n = lname[pos]
        if n == 0:
            return
        pos += 1 + n


def _top(lname: bytes) -> bytes:
    """The last label of ``lname`` (wire) with the root: ``\\x04arpa\\x00`` for any name
    under ``arpa.``; the root itself for the root."""
    top = lname
    for up in _labels_up(lname):
        if up == b"\x00":
            return top
        top = up
    return top


class LocalZones:
    """The local zones and their records, indexed for ``lookup``. ``defaults``: zones (the
    default ones) entered only where no zone of ``zones`` has the same name; a zone of type
    ``nodefault`` removes the default of its name and is not entered itself."""

    def __init__(self, zones: Iterable[LocalZone] = (), data: Iterable[str] = (),
                 defaults: Iterable[LocalZone] = (), keep_nodefault: bool = False) -> None:
        self.types: dict[bytes, str] = {}
        #: the views (name -> ViewZones) and which clients they serve (``Zones`` sets
        #: them: the global local zones' ``answer`` goes through a client's view first)
        self.views: dict[str, ViewZones] | None = None
        self.clients: ClientNets | None = None
        #: the tagged zones' tags, a mask of ``Tags.names`` bits (``Zones`` sets them)
        self.tags: dict[bytes, int] = {}
        #: per zone, the type it has for the clients of some networks
        #: (``local-zone-override``: ``Zones`` sets them)
        self.overrides: dict[bytes, ClientNets] = {}
        named: set[bytes] = set()
        entered: list[LocalZone] = []
        for z in zones:
            key = _wire(z.name)
            if key in named:
                raise ValueError(f"local-zone {z.name} is given twice")
            named.add(key)
            if z.type != "nodefault" or keep_nodefault:
                # (a view's nodefault zone, with view-first, is entered: it holds its
                # names, answered as transparent, away from the global zones)
                self.types[key] = z.type
                entered.append(z)
        for z in defaults:
            key = _wire(z.name)
            if key not in named:
                self.types[key] = z.type
                entered.append(z)
        #: every zone entered (configured and default), in order
        self.zones: tuple[LocalZone, ...] = tuple(entered)
        records = [parse_record(line) for z in entered for line in z.data]
        extra = [parse_record(line) for line in data]
        for rec in extra:                # outside every zone: a transparent zone of its own
            if self.zone_of(rec[0].lower()) is None:
                self.types[rec[0].lower()] = "transparent"
        #: lower owner -> {type: [record tuples]}
        self.data: dict[bytes, dict[int, list]] = {}
        #: names with data below them in the same zone (empty non-terminals)
        self.parents: set[bytes] = set()
        for rec in records + extra:
            owner = rec[0].lower()
            have = self.data.setdefault(owner, {}).setdefault(rec[1], [])
            if any(r[4] == rec[4] for r in have):
                continue                 # a record given twice is served once (as Unbound)
            have.append(rec)
            zone = self.zone_of(owner)
            for up in _labels_up(owner):
                if up == zone:
                    break
                if up != owner:
                    self.parents.add(up)
        #: the top-level label (with the root) of every zone: a name under none of them
        #: is in no local zone, found with one ``under_any`` instead of a walk up its labels
        #: (the default zones sit under a few names, and most questions are under none);
        #: ``resolver.response.local_data`` asks it before it calls ``lookup``
        self.tails: tuple[bytes, ...] = tuple({_top(zone) for zone in self.types})

    def __bool__(self) -> bool:
        return bool(self.types)

    def zone_names(self) -> frozenset[bytes]:
        """The name (wire, lower case) of every zone, these and their views'."""
        views = self.views.values() if self.views else ()
        return frozenset(self.types).union(*(v.zones.types for v in views
                                             if v.zones is not None))

    def zone_of(self, lname: bytes) -> bytes | None:
        types = self.types
        for up in _labels_up(lname):
            if up in types:
                return up
        return None

    def _negative(self, zone: bytes, rcode: int) -> tuple:
        soa = self.data.get(zone, {}).get(SOA)
        if not soa:
            return (rcode, [], [])
        rec = soa[0]
        minimum = int.from_bytes(rec[4][-4:], "big")
        return (rcode, [], [(rec[0], rec[1], rec[2], min(rec[3], minimum), rec[4])])

    def lookup(self, qname: bytes, qtype: int, client=None, inform: bool = True,
               who: "Client | None" = None):
        """What the local zones say of ``qname``/``qtype`` (class IN): None (resolve it as
        usual), ``DROP``, an :class:`Alias` (a redirect zone's CNAME: resolve its target),
        or (rcode, answer records, authority records); as Unbound's
        ``local_zones_answer``. ``client``: the asker's address, which ``inform`` zones
        log; with ``inform`` False they do not (a look that answers nothing itself).
        ``who``: what the client's network gets (its tags; ``answer`` finds it)."""
        held = self._holder(qname, qtype, who)
        if held is None:
            return None
        lname, zone, kind = held
        kind, tag = self._type_for(zone, kind, who, client)
        if inform and kind in INFORM_TYPES and inform_log.isEnabledFor(logging.INFO):
            inform_log.info("%s %s %s %s %s IN", _text(zone), kind, _client_text(client),
                            _text(qname), _type_text(qtype))
        redirect = kind == "redirect" or kind == "inform_redirect"
        if redirect and tag >= 0 and tag in who.datas:  # type: ignore[union-attr]
            recs = [r for r in who.datas[tag]  # type: ignore[union-attr]
                    if r[1] == qtype or r[1] == CNAME]
            if recs:
                return _redirected(qname, qtype, recs)
        exists = False              # Unbound's ``ld``: a node of local data at the name
        if kind not in _IGNORE_DATA:
            node = self.data.get(zone if redirect else lname)
            if node is not None:
                # the records of the type, else a CNAME; ANY is a type like another (as
                # Unbound's local_data_find_type: no local data answers ANY)
                recs = node.get(qtype) or node.get(CNAME)
                if recs:
                    if redirect:
                        return _redirected(qname, qtype, recs)
                    return (NOERROR, recs, [])
            exists = node is not None or (not redirect and lname in self.parents)
        if kind in ("deny", "always_deny", "inform_deny"):
            return DROP
        if kind == "refuse" or kind == "always_refuse":
            return (REFUSED, [], [])
        if kind in ("static", "always_nxdomain"):
            return self._negative(zone, NOERROR if exists else NXDOMAIN)
        if redirect or kind == "always_nodata":
            return self._negative(zone, NOERROR)
        if kind == "typetransparent" or kind == "always_transparent":
            return None
        if kind == "block_a" or kind == "block_a_wdata":
            return (NOERROR, [], []) if qtype == A else None
        if kind == "block_aaaa" or kind == "block_aaaa_wdata":
            return (NOERROR, [], []) if qtype == AAAA else None
        if kind == "always_null":
            if qtype == A:
                return (NOERROR, [(qname, A, 1, NULL_TTL, bytes(4))], [])
            if qtype == AAAA:
                return (NOERROR, [(qname, AAAA, 1, NULL_TTL, bytes(16))], [])
            return (NOERROR, [], [])
        # transparent, inform, noview: a name with data of other types is NODATA
        if lname in self.data:
            return self._negative(zone, NOERROR)
        return None

    def _holder(self, qname: bytes, qtype: int, who: "Client | None" = None
                ) -> tuple[bytes, bytes, str] | None:
        """The question's name lower-cased, and the zone that holds it and its type; None
        when no zone does. A tagged zone holds the questions of ``who`` (a client's
        network) only when it shares one of its tags, else the zone above it decides."""
        if not under_any(qname, self.tails):
            return None
        lname = qname.lower()
        if qtype == DS and lname != b"\x00":
            # a DS belongs to the parent side of a zone cut: the zone above decides,
            # but for an always_refuse zone, which refuses its DS too (tags or not)
            if self.types.get(lname) == "always_refuse":
                zone: bytes | None = lname
            else:
                zone = self._zone_for(lname[lname[0] + 1:], who)
        else:
            zone = self._zone_for(lname, who)
        return None if zone is None else (lname, zone, self.types[zone])

    def _type_for(self, zone: bytes, kind: str, who: "Client | None", client
                  ) -> tuple[str, int]:
        """The type ``zone`` has for ``client`` (a socket address or a host; ``who``: what
        its network gets) and the tag that gave it (-1: none): the zone's override for the
        most specific network holding the client (``local-zone-override``), else the first
        tag, in ``define-tag``'s order, that the zone and the client's network share, whose
        action for that network, if it has one, replaces the zone's type."""
        if self.overrides and client is not None:
            nets = self.overrides.get(zone)
            if nets is not None:
                over = nets.of(client[0] if isinstance(client, (tuple, list)) else client)
                if over is not None:
                    return over, -1
        if not self.tags or who is None:
            return kind, -1
        shared = self.tags.get(zone, 0) & who.tags
        if not shared:
            return kind, -1
        tag = (shared & -shared).bit_length() - 1
        return who.actions.get(tag, kind), tag

    def _zone_for(self, lname: bytes, who: "Client | None") -> bytes | None:
        """``zone_of`` for a question of ``who``: tagged zones that share none of its tags
        passed over."""
        tags = self.tags
        if not tags:
            return self.zone_of(lname)
        mask = 0 if who is None else who.tags
        types = self.types
        for up in _labels_up(lname):
            if up in types:
                m = tags.get(up)
                if m is None or m & mask:
                    return up
        return None

    def covers(self, qname: bytes, qtype: int) -> bool:
        """Whether these zones, a view's, hold the question (Unbound's local_zones_answer
        with a view: a ``noview`` zone does not hold it; nor do ``always_transparent``,
        ``block_a`` and ``block_aaaa`` zones, nor ``transparent`` and ``inform`` ones
        without local data at the name, nor a ``typetransparent`` one without data of the
        type or a CNAME there)."""
        held = self._holder(qname, qtype)
        if held is None:
            return False
        lname, _, kind = held
        if kind in _VIEW_PASSING:
            return False
        if kind == "transparent" or kind == "inform":
            return lname in self.data
        if kind == "typetransparent":
            node = self.data.get(lname)
            return node is not None and (qtype in node or CNAME in node)
        return True

    def asked(self, qname: bytes, qtype: int, client=None) -> "LocalZones | None":
        """The zones that answer a question from ``client`` (its socket address, or its
        host): these, or with views the zones of the view its address maps to
        (``access-control-view``) when they hold the question; None when, as Unbound, a
        view with zones does not hold it and is not ``view-first`` (it is resolved; a
        view-first view and a view without zones go on to these global zones)."""
        return self._asked(qname, qtype, self.client(client))

    def _asked(self, qname: bytes, qtype: int, who: "Client | None") -> "LocalZones | None":
        if who is not None and who.view is not None:
            vz = self.views[who.view]  # type: ignore[index]
            if vz.zones is not None:
                if vz.zones.covers(qname, qtype):
                    return vz.zones
                if not vz.first:
                    return None
        return self

    def client(self, client) -> "Client | None":
        """What the network of ``client`` (a socket address, or a host) gets: its view
        and tags; None without views and tags, or for a network given neither."""
        clients = self.clients
        if clients is None or client is None:
            return None
        return clients.of(client[0] if isinstance(client, (tuple, list)) else client)

    def answer(self, qname: bytes, qtype: int, client=None, inform: bool = True):
        """``lookup`` (``inform`` as there) by the zones ``asked`` names for ``client``."""
        who = self.client(client)
        zones = self._asked(qname, qtype, who)
        if zones is None:
            return None
        return zones.lookup(qname, qtype, client, inform, who if zones is self else None)

    def holder(self, qname: bytes, qtype: int, client=None) -> tuple[bytes, str] | None:
        """The zone (wire) that holds the question for ``client``, a view's or a global
        one, and its type; None when none does."""
        who = self.client(client)
        zones = self._asked(qname, qtype, who)
        if zones is None:
            return None
        if zones is not self:
            who = None
        held = zones._holder(qname, qtype, who)
        if held is None:
            return None
        if zones is not self:               # a view's zones: their own types
            return held[1:]
        return held[1], self._type_for(held[1], held[2], who, client)[0]


@dataclass(frozen=True)
class ViewZones:
    """A view as ``LocalZones.answer`` reads it: ``zones`` None for a view without local
    zones or data of its own (its clients get the global ones)."""

    name: str
    first: bool
    zones: LocalZones | None


_UNSEEN = object()


class Client:
    """What a client network gets (``ClientNets``): its view (a name, or None), its tags (a
    mask of ``Tags.names`` bits), and per tag bit a zone type (``actions``) and redirect
    records (``datas``, record tuples whose owner is the question's name)."""

    __slots__ = ("view", "tags", "names", "actions", "datas")

    def __init__(self, view: str | None = None, tags: int = 0,
                 actions: dict[int, str] | None = None,
                 datas: dict[int, tuple] | None = None) -> None:
        self.view, self.tags = view, tags
        #: the tags by name (the response policy's zones are tagged by name)
        self.names: frozenset[str] = frozenset()
        self.actions, self.datas = actions or {}, datas or {}


class ClientNets:
    """What a client gets by its address, the most specific network holding it deciding:
    which view and tags serve it, as Unbound's access-control tree tells it,
    ``access-control``, ``access-control-view`` and ``access-control-tag`` networks alike
    (so a network given an action alone, inside a view's, leaves its clients without a
    view or tags); or a zone's type for it (``local-zone-override``). ``nets``: (network,
    what its clients get, or None for a network that gives them nothing)."""

    #: clients remembered (a flood of new ones clears it: the look-up is a few dict reads)
    REMEMBERED = 4096

    def __init__(self, nets: Iterable[tuple]) -> None:
        nodes: dict = {}
        for net, who in nets:
            n = ipaddress.ip_network(net, strict=False)
            if who is None:
                nodes.setdefault(n, None)
            else:
                nodes[n] = who
        by_length: dict[tuple[int, int], dict[int, Client | None]] = {}
        for n, who in nodes.items():
            shift = n.max_prefixlen - n.prefixlen
            by_length.setdefault((n.version, shift), {})[int(n.network_address) >> shift] = who
        #: per address family, (shift, {network >> shift: Client}), the longest prefix first
        self._tables = {v: sorted(((shift, t) for (ver, shift), t in by_length.items()
                                   if ver == v), key=lambda st: st[0]) for v in (4, 6)}
        self._seen: dict[str, Client | None] = {}

    def of(self, host: str) -> Client | None:
        """What the network of the client at ``host`` (an address) gets, or None."""
        found = self._seen.get(host, _UNSEEN)
        if found is not _UNSEEN:
            return found  # type: ignore[return-value]
        who = None
        try:
            addr = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            addr = None
        if addr is not None and addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped      # as the ACL checks it: the IPv4 address
        if addr is not None:
            a = int(addr)
            for shift, table in self._tables[addr.version]:
                hit = table.get(a >> shift, _UNSEEN)
                if hit is not _UNSEEN:
                    who = hit  # type: ignore[assignment]
                    break
        if len(self._seen) >= self.REMEMBERED:
            self._seen.clear()
        self._seen[host] = who
        return who


def compile_clients(views: Iterable[View], clients: Iterable[tuple], tags: Tags
                    ) -> tuple[dict[str, ViewZones] | None, ClientNets | None]:
    """The views as ``LocalZones.answer`` reads them (None without views), and what each
    client network gets, its view and its tags (None when no network is given either).
    ``clients``: (network, view name or None for an ``access-control`` network).
    ValueError for a view named twice, a network mapped to a view that is not given
    (Unbound's "no view with name"), a tag not defined, an action that is no zone type,
    or redirect data that does not parse or mixes a CNAME with other records."""
    compiled: dict[str, ViewZones] = {}
    for v in views:
        if v.name in compiled:
            raise ValueError(f"view {v.name!r} is given twice")
        # Unbound's test: zones of other types than nodefault, or local data
        own = any(z.type != "nodefault" for z in v.local) or bool(v.local_data)
        try:
            zones = LocalZones(v.local, v.local_data,
                               () if v.first else default_local_zones(),
                               keep_nodefault=v.first) if own else None
        except ValueError as e:
            raise ValueError(f"view {v.name!r}: {e}") from None
        compiled[v.name] = ViewZones(v.name, v.first, zones)
    nodes: dict = {}

    def node(net) -> Client:
        n = ipaddress.ip_network(net, strict=False)
        who = nodes.get(n)
        if who is None:
            who = nodes[n] = Client()
        return who

    for net, name in clients:
        if name is None:
            nodes.setdefault(ipaddress.ip_network(net, strict=False), None)
            continue
        if name not in compiled:
            raise ValueError(f"access-control-view {net} {name}: no view with name: {name}")
        node(net).view = name
    for net, names in tags.clients:
        who = node(net)
        for t in names:
            who.tags |= 1 << tags.index(t, f"access-control-tag {net}")
    for net, t, action in tags.actions:
        what = f"access-control-tag-action {net} {t}"
        if action not in LOCAL_TYPES:
            raise ValueError(f"{what}: {action!r} is not one of {', '.join(LOCAL_TYPES)}")
        node(net).actions[tags.index(t, what)] = action
    for net, t, line in tags.datas:
        what = f"access-control-tag-data {net} {t}"
        bit = tags.index(t, what)
        rec = parse_record(f". {line}")
        who = node(net)
        have = who.datas.get(bit, ())
        if have and (rec[1] == CNAME or have[0][1] == CNAME):
            raise ValueError(f"{what}: redirect data {line!r} must not coexist with other "
                             "data (a CNAME stands alone)")
        who.datas[bit] = have + (rec,)
    for who in nodes.values():
        if who is not None and who.tags:
            who.names = frozenset(t for i, t in enumerate(tags.names) if who.tags >> i & 1)
    nets = ClientNets(nodes.items()) if any(w is not None for w in nodes.values()) else None
    return compiled or None, nets


def zone_tags(zones: "LocalZones", tags: Tags) -> dict[bytes, int]:
    """``local-zone-tag``'s tags of each tagged zone of ``zones``, a mask of tag bits (a
    zone tagged twice keeps the last line's). ValueError for a zone that is no local zone
    (Unbound's "no local-zone for tag") or a tag not defined."""
    out: dict[bytes, int] = {}
    for name, names in tags.zones:
        what = f"local-zone-tag {name}"
        key = _wire(name)
        if key not in zones.types:
            raise ValueError(f"{what}: no local-zone {name} for its tags")
        mask = 0
        for t in names:
            mask |= 1 << tags.index(t, what)
        out[key] = mask
    return out


def zone_overrides(zones: "LocalZones", overrides: Iterable[tuple]) -> dict[bytes, ClientNets]:
    """``local-zone-override``'s (zone, network, type) lines as ``LocalZones.overrides``.
    ValueError for a zone that is no local zone or a type that is no local zone type."""
    by_zone: dict[bytes, list] = {}
    for name, net, kind in overrides:
        what = f"local-zone-override {name} {net}"
        key = _wire(name)
        if key not in zones.types:
            raise ValueError(f"{what}: no local-zone {name} to override")
        if kind not in LOCAL_TYPES:
            raise ValueError(f"{what}: {kind!r} is not one of {', '.join(LOCAL_TYPES)}")
        by_zone.setdefault(key, []).append((net, kind))
    return {key: ClientNets(nets) for key, nets in by_zone.items()}


# ---- forward and stub zones -----------------------------------------------------------------
def _ports(servers: tuple[Upstream, ...]) -> dict[str, tuple[str, int]] | None:
    """Where the servers with a port of their own are asked (the others: on the
    resolver's port)."""
    return {s.key: (s.addr, s.port) for s in servers if s.port is not None} or None


def _tls_route(resolver, servers: dict | None):
    """What a Forwarder needs to ask ``servers`` (key -> (auth name, CA file, the system's
    store too)) over TLS."""
    return None if servers is None else (resolver.tls_upstreams, servers)


class _ForwardCut:
    def __init__(self, zone: ForwardZone) -> None:
        self.zone = zone
        self.wire = _wire(zone.name)
        self.keys = [s.key for s in zone.servers]
        self.ports = _ports(zone.servers)
        self.tls = None
        if zone.transport == "tls":
            for s in zone.servers:
                if s.auth is None:
                    raise ValueError(f"forward-zone {zone.name}: {s.key}: DNS over TLS needs "
                                     "the server's authentication name")
            if len({(s.addr, s.port or DOT_PORT) for s in zone.servers}) != len(self.keys):
                raise ValueError(f"forward-zone {zone.name}: a server is given twice")
            # a server without a port is asked on DNS over TLS's
            self.ports = {s.key: (s.addr, DOT_PORT if s.port is None else s.port)
                          for s in zone.servers}
            #: server key -> (authentication name, CA file, the system's store too)
            self.tls = {s.key: (s.auth, zone.tls_cert_bundle, zone.tls_system_cert)
                        for s in zone.servers}

    def iterator(self, resolver, qname: bytes, qtype: int, qclass: int, make):
        """The question's Forwarder (``make``, the recursive Iterator's maker, is a stub
        zone's)."""
        from resolver.iterator.forward import Forwarder

        resolver.stats.forwarded += 1
        fallback = None
        if self.zone.first:
            def recurse():
                return resolver.recursive_iterator(qname, qtype, qclass)
            fallback = recurse
        zones = resolver.zones
        return Forwarder(qname, qtype, qclass, self.keys, resolver.clock, resolver.limits,
                         ports=zones.ports if zones is not None else self.ports,
                         transport=self.zone.transport, fallback=fallback,
                         tls=_tls_route(resolver, zones.tls if zones is not None
                                        else self.tls), private=resolver.private,
                         **resolver.validating(self.wire), **resolver.nameserver_rules(self.zone))

    def lookup_iterator(self, resolver, qname: bytes, qtype: int, qclass: int):
        """A validator's lookup in this zone: its forwarders, asked without counting a
        forwarded question (see ``Forwarder.lookup``)."""
        from resolver.iterator.forward import Forwarder

        return Forwarder(qname, qtype, qclass, self.keys, resolver.clock, resolver.limits,
                         zone=self.wire, private=resolver.private)


class _StubCut:
    def __init__(self, zone: StubZone) -> None:
        self.zone = zone
        self.wire = dns.name.from_text(zone.name).to_wire()
        self.names: list[bytes] = []
        self.addrs: list[tuple[bytes, int, bytes]] = []
        for s in zone.servers:
            ip = ipaddress.ip_address(s.addr)
            label = str(ip).replace(":", "-").replace(".", "-")
            ns = dns.name.from_text(f"{label}.{STUB_NS_SUFFIX}").to_wire()
            self.names.append(ns)
            self.addrs.append((ns, AAAA if ip.version == 6 else A, ip.packed))
        # the iterator names servers by address
        self.ports = {s.addr: v for s in zone.servers
                      for v in (_ports((s,)) or {}).values()} or None
        # servers given by IPv6 address are asked even where the resolver otherwise asks
        # over IPv4 only (the iterator reads AAAA addresses only with ``ipv6``)
        self.ipv6 = any(rdtype == AAAA for _, rdtype, _ in self.addrs)

    def seed(self, cache, now: float) -> None:
        """Puts the zone's servers in the rrset cache as its delegation (when missing)."""
        from resolver.cache import RRsetEntry

        rrsets = cache.rrsets
        have = rrsets.lru.peek((self.wire.lower(), NS, 1))
        if (have is not None and have.rank == CONFIGURED and have.expires > now + 60
                and have.rdatas == tuple(self.names)):
            return
        rrsets.lru.pop((self.wire.lower(), NS, 1))
        rrsets.store(RRsetEntry(self.wire, NS, 1, STUB_TTL, now + STUB_TTL, CONFIGURED,
                                list(self.names)))
        for ns, rdtype, packed in self.addrs:
            rrsets.lru.pop((ns.lower(), rdtype, 1))
            rrsets.store(RRsetEntry(ns, rdtype, 1, STUB_TTL, now + STUB_TTL, CONFIGURED,
                                    [packed]))

    def iterator(self, resolver, qname: bytes, qtype: int, qclass: int, make):
        """The question's Iterator (``make(resolver, qname, qtype, qclass)``, the driver's
        ``iterator_for``) from the stub's servers, seeded as the zone's delegation."""
        resolver.stats.stubbed += 1
        self.seed(resolver.cache, resolver.clock())
        it = make(resolver, qname, qtype, qclass)
        if self.ports is not None:
            it.ports = self.ports
        if self.ipv6 and not it.ipv6:
            it.ipv6 = True
        if not self.zone.first:
            return it
        lzone = self.wire.lower()

        def recurse():
            rec = make(resolver, qname, qtype, qclass)
            rec.bypass = lzone
            return rec
        return StubFirst(it, recurse)


class StubFirst:
    """A ``stub-first`` zone's question, with the driver API of an Iterator: the stub's
    servers first; when they fail (SERVFAIL), the recursive Iterator that passes over the
    stub's configured delegation (``Iterator.bypass``: it starts above the zone and follows
    the parent's referral), within the same time limit (Unbound's ``stub-first``)."""

    def __init__(self, stub, fallback) -> None:
        self.current = stub
        self.fallback = fallback
        self.t0 = stub.t0
        #: read by the driver when it starts: the stub's servers with ports of their own
        self.ports = stub.ports
        self.result = None
        #: whether the stub's servers failed and recursion took over
        self.recursed = False
        self._keep = False           # the driver wants final rrsets kept (``deferred``)

    @property
    def deferred(self):
        return self.current.deferred

    @deferred.setter
    def deferred(self, value) -> None:
        self._keep = value is not None
        self.current.deferred = value

    def start(self):
        return self._next(self.current.start())

    def feed(self, event):
        return self._next(self.current.feed(event))

    def store_deferred(self) -> None:
        self.current.store_deferred()

    def _next(self, action):
        if type(action) is Result and action.rcode == SERVFAIL and not self.recursed:
            self.recursed = True
            stub = self.current
            # the stub's failure was remembered for the question (failure-ttl): it is the
            # stub's, not the question's, and would end the recursion at once
            stub.cache.failures.pop((stub.qname.lower(), stub.qtype, stub.qclass), None)
            rec = self.fallback()
            rec.t0 = self.t0                    # one time limit for the whole question
            if self._keep:
                rec.deferred = []
            self.current = rec
            action = rec.start()
        if type(action) is Result:
            self.result = action
        return action


class Zones:
    """One set of forward, stub and local zones (see the module docstring); servers given
    without a port are asked on the resolver's. ``defaults``: Unbound's default local zones
    are served too (True: the daemon always), less the AS112 ones with
    ``unblock_lan_zones``; False: not; None (unset): as the resolver they are given to
    decides (a library Resolver serves them while it recurses itself, see
    ``with_defaults``). Raises ValueError for a name given twice."""

    def __init__(self, forward: Iterable[ForwardZone] = (), stub: Iterable[StubZone] = (),
                 local: Iterable[LocalZone] = (), local_data: Iterable[str] = (),
                 defaults: bool | None = None, unblock_lan_zones: bool = False,
                 views: Iterable[View] = (), view_clients: Iterable[tuple] = (),
                 tags: Tags = Tags(), overrides: Iterable[tuple] = ()) -> None:
        self.forward, self.stub = tuple(forward), tuple(stub)
        self.local, self.local_data = tuple(local), tuple(local_data)
        #: the views, and the client netblocks (netblock, view name or None: see
        #: ``ClientNets``) that map clients to them
        self.views, self.view_clients = tuple(views), tuple(view_clients)
        #: Unbound's tags of local zones and client networks, and the types some zones
        #: have for some client networks (``local-zone-override``: (zone, network, type))
        self.tags, self.overrides = tags, tuple(overrides)
        #: whether Unbound's default local zones are served (``default_local_zones``)
        self.defaults, self.unblock_lan_zones = defaults, unblock_lan_zones
        self.cuts: dict[bytes, _ForwardCut | _StubCut] = {}
        named: set[bytes] = set()
        #: every server host name of the forward and stub zones (absolute, lower case)
        self.hosts: tuple[str, ...] = tuple(sorted({h.addr for z in self.forward + self.stub
                                                    for h in z.hosts}))
        #: the stub zones whose NS set is primed from their servers (``stub-prime``)
        self.primed: tuple[str, ...] = tuple(z.name for z in self.stub if z.prime)
        for z in self.forward + self.stub:
            if isinstance(z, ForwardZone) and z.transport not in TRANSPORTS:
                raise ValueError(f"forward-zone {z.name}: transport {z.transport!r} is not "
                                 f"one of {', '.join(TRANSPORTS)}")
            key = _wire(z.name)
            if key in named:
                raise ValueError(f"zone {z.name} is given twice as a forward or stub zone")
            named.add(key)
            if not z.servers:
                continue           # servers by name only, none resolved yet: not served yet
            self.cuts[key] = (_ForwardCut(z) if isinstance(z, ForwardZone)
                              else _StubCut(z))
        local_zones = LocalZones(self.local, self.local_data,
                                 default_local_zones(unblock_lan_zones) if defaults else ())
        local_zones.views, local_zones.clients = compile_clients(self.views,
                                                                 self.view_clients, tags)
        local_zones.tags = zone_tags(local_zones, tags)
        local_zones.overrides = zone_overrides(local_zones, self.overrides)
        self.local_zones = (local_zones if local_zones or local_zones.views is not None
                            or local_zones.clients is not None else None)
        #: where every forward zone's servers with a port of their own are asked (their
        #: names, ADDR@PORT, never clash): a forwarded question's DS and DNSKEY lookups may
        #: go to another forward zone's servers
        self.ports = {k: v for cut in self.cuts.values() if type(cut) is _ForwardCut
                      for k, v in (cut.ports or {}).items()} or None
        #: the servers over TLS of every forward zone, by key: (authentication name, CA file),
        #: for the same reason
        self.tls = {k: v for cut in self.cuts.values() if type(cut) is _ForwardCut
                    for k, v in (cut.tls or {}).items()} or None
        self._definitions: dict[bytes, object] | None = None

    def __bool__(self) -> bool:
        return bool(self.cuts) or bool(self.hosts) or self.local_zones is not None

    @property
    def kept(self) -> bool:
        """Whether some servers are known by name or by priming (``resolver.server_names``
        keeps them)."""
        return bool(self.hosts) or bool(self.primed)

    def resolved(self, addresses: dict[str, tuple[str, ...]],
                 primed: dict[str, tuple[str, ...]] | None = None) -> "Zones":
        """These zones with each server host name's ``addresses`` (name -> numeric
        addresses) added to its zone's servers, at the host's port and authentication
        name, and each primed stub zone's servers replaced by the addresses its NS set
        named (``primed``: zone name -> addresses, asked on the resolver's port, as
        Unbound asks a primed zone's servers). A zone none of whose servers has an address
        yet is not served (its names are resolved as if it were not configured) until one
        has."""
        def fill(z):
            if primed and isinstance(z, StubZone) and primed.get(z.name):
                return replace(z, servers=tuple(Upstream(a) for a in primed[z.name]))
            if not z.hosts:
                return z
            have = {(s.addr, s.port) for s in z.servers}
            extra = []
            for h in z.hosts:
                for addr in addresses.get(h.addr, ()):
                    if (addr, h.port) not in have:
                        have.add((addr, h.port))
                        extra.append(Upstream(addr, h.port, h.auth))
            return replace(z, servers=z.servers + tuple(extra))

        return Zones(tuple(fill(z) for z in self.forward), tuple(fill(z) for z in self.stub),
                     self.local, self.local_data, self.defaults, self.unblock_lan_zones,
                     self.views, self.view_clients, self.tags, self.overrides)

    def with_defaults(self) -> "Zones":
        """These zones with Unbound's default local zones served, unless ``defaults`` says
        otherwise (False); themselves when they already are."""
        if self.defaults is not None:
            return self
        return Zones(self.forward, self.stub, self.local, self.local_data, True,
                     self.unblock_lan_zones, self.views, self.view_clients, self.tags,
                     self.overrides)

    def with_forward(self, extra: ForwardZone) -> "Zones":
        """The same zones with the forward zone ``extra`` added."""
        return Zones(self.forward + (extra,), self.stub, self.local, self.local_data,
                     self.defaults, self.unblock_lan_zones, self.views, self.view_clients,
                     self.tags, self.overrides)

    def shadowed(self) -> list[tuple[str, str]]:
        """The forward and stub zones a local zone answers for before they are asked (a
        zone at or below a local zone that holds their name: as in Unbound, a default
        zone is not lifted by a stub or forward zone, ``nodefault`` does that), each
        with the local zone's name."""
        lz = self.local_zones
        out = []
        if lz is None:
            return out
        for z in self.forward + self.stub:
            zone = lz.zone_of(_wire(z.name))
            if zone is not None and lz.types[zone] not in _PASSING:
                out.append((z.name, _text(zone)))
        return out

    def needless_nodefaults(self) -> list[str]:
        """The ``nodefault`` local zones that name no default zone (unbound-checkconf warns
        of them too): they change nothing."""
        names = {z.name for z in default_local_zones(self.unblock_lan_zones)} \
            if self.defaults else set()
        return [z.name for z in self.local if z.type == "nodefault" and z.name not in names]

    def match(self, qname: bytes, stub_only: bool = False):
        """The deepest forward or stub zone holding ``qname`` (wire), or None; with
        ``stub_only`` the deepest stub zone."""
        cuts = self.cuts
        if not cuts:                # local zones only (the defaults): nothing to walk
            return None
        for up in _labels_up(qname.lower()):
            cut = cuts.get(up)
            if cut is not None and not (stub_only and type(cut) is _ForwardCut):
                return cut
        return None

    def seed(self, cache, now: float) -> None:
        """Puts every stub zone's servers in ``cache`` (see ``_StubCut.seed``), so that a
        name of a stub zone met inside another question (a CNAME target, an NS name) is
        looked up there too."""
        for cut in self.cuts.values():
            if type(cut) is _StubCut:
                cut.seed(cache, now)

    def definitions(self) -> dict[bytes, object]:
        """Each zone name (wire, lower case) with what defines it; top-level local data
        under its owner. Made once (a set of zones does not change), so that a reload can
        make them before it swaps the zones in."""
        if self._definitions is not None:
            return self._definitions
        out: dict[bytes, object] = {k: c.zone for k, c in self.cuts.items()}
        for z in (self.local_zones.zones if self.local_zones is not None else ()):
            out[(_wire(z.name), "local")] = z
        for line in self.local_data:
            out[(parse_record(line)[0].lower(), "data", line)] = line
        self._definitions = out
        return out

    def describe(self) -> str:
        """One line for the log: how many zones of each kind, and local-data records (those
        given inside a local zone and those given alone)."""
        n = len(self.local_zones.zones) if self.local_zones is not None else 0
        records = len(self.local_data) + sum(len(z.data) for z in self.local)
        return (f"{len(self.forward)} forward, {len(self.stub)} stub, "
                f"{n} local zones ({n - len([z for z in self.local if z.type != 'nodefault'])}"
                f" default), {records} local-data records")


def changed_names(old: Zones | None, new: Zones | None) -> set[bytes]:
    """Wire names (lower case) of every zone or local-data owner that differs between two
    sets: what the cache may hold wrongly for after a change."""
    a = old.definitions() if old is not None else {}
    b = new.definitions() if new is not None else {}
    if a == b:                  # the usual reload: compared in C, no name looked at
        return set()
    out = set()
    for key in set(a) | set(b):
        if a.get(key) != b.get(key):
            out.add(key if isinstance(key, bytes) else key[0])
    return out


def _under(lname: bytes, zone: bytes) -> bool:
    """Whether the wire name ``lname`` is ``zone`` or below it (both lower case)."""
    if not lname.endswith(zone):
        return False
    for up in _labels_up(lname):
        if len(up) <= len(zone):
            return up == zone
    return False


def flush_under(cache, zone: bytes) -> None:
    """Forgets what ``cache`` holds at or below ``zone`` (wire, lower case)."""
    if zone == b"\x00":
        cache.flush(None)
        return
    messages, rrsets = cache.messages.lru, cache.rrsets.lru
    for k in [k for k in messages.data if _under(k[:-5], zone)]:
        messages.pop(k)
    for k in [k for k in rrsets.data if _under(k[0], zone)]:
        rrsets.pop(k)
    for k in [k for k in cache.failures if isinstance(k, tuple) and isinstance(k[0], bytes)
              and _under(k[0], zone)]:
        del cache.failures[k]
