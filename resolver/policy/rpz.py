"""Response policy zones (draft-vixie-dnsop-dns-rpz), sans-IO: a policy zone's records made
into look-up structures (:class:`PolicyZone`), and the ordered zones of a :class:`Policy`
answering "what action for this client, this name, these answer addresses", and the
response an action stands for (:func:`respond`, :func:`rewrite`), put on the wire by the
resolver's one answer encoder (:func:`encode`).

A policy zone's owner names, relative to its origin, are its triggers:

- ``name`` and ``*.name``: the query name (QNAME), exactly or anything below ``name``;
- ``PREFIX.B4.B3.B2.B1.rpz-ip`` (IPv4) and ``PREFIX.W8...W1.rpz-ip`` (IPv6, groups in hex,
  ``zz`` for the run of zero groups ``::`` stands for): an A or AAAA address of the answer
  inside that network (response IP);
- the same under ``rpz-client-ip``: the client's address (client IP);
- ``name.rpz-nsdname`` and ``*.name.rpz-nsdname``: a name server of the query name's zone
  (NSDNAME), and the IP form under ``rpz-nsip``: one of their addresses (NSIP).

A trigger name that encodes no network is not applied (counted in :attr:`PolicyZone.ignored`).

The records at a trigger are its action: ``CNAME .`` NXDOMAIN, ``CNAME *.`` NODATA,
``CNAME rpz-passthru.`` PASSTHRU (no policy), ``CNAME rpz-drop.`` DROP (no answer),
``CNAME rpz-tcp-only.`` TCP-ONLY (truncated over UDP), a CNAME to any other name a rewrite
to that name (``CNAME *.suffix`` to the query name under ``suffix``), and any other records
local data, the answer to the query name.

Precedence (the draft's section 5, as Unbound applies it): the zones in the order given, the
first zone with a match wins; within a zone the client-IP trigger comes before the QNAME
trigger, an exact QNAME before a wildcard, the longest wildcard before shorter ones, and for
response IPs the longest prefix of any answer address. QNAME and client-IP triggers are
decided before the answer is looked for; then the QNAME triggers on each name the answer's
CNAME chain leads to, in the chain's order (:meth:`Policy.qname`); then response-IP, NSDNAME
and NSIP triggers on the answer (each zone in order), if nothing before matched.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from resolver.limits import EDNS_BUFFER_SIZE
from resolver.policy.index import TriggerIndex
from resolver.wire.codec import build_response, parse_response

NXDOMAIN, NODATA, PASSTHRU, DROP, TCP_ONLY, LOCAL_DATA, CNAME, DISABLED = (
    "nxdomain", "nodata", "passthru", "drop", "tcp-only", "local-data", "cname", "disabled")
#: Every action, as counted and logged.
ACTIONS = (NXDOMAIN, NODATA, PASSTHRU, DROP, TCP_ONLY, LOCAL_DATA, CNAME, DISABLED)
#: ``rpz-action-override`` values (Unbound's).
OVERRIDES = (NXDOMAIN, NODATA, PASSTHRU, DROP, DISABLED, CNAME)

QNAME, CLIENT_IP, RESPONSE_IP, NSDNAME, NSIP = (
    "qname", "client-ip", "response-ip", "nsdname", "nsip")

_ROOT = dns.name.root
_WILD = dns.name.from_text("*.")
_SPECIAL = {dns.name.from_text("rpz-passthru."): PASSTHRU,
            dns.name.from_text("rpz-drop."): DROP,
            dns.name.from_text("rpz-tcp-only."): TCP_ONLY}
_IP_LABELS = {b"rpz-ip": RESPONSE_IP, b"rpz-client-ip": CLIENT_IP, b"rpz-nsip": NSIP}
_IP_SUFFIX = {RESPONSE_IP: ".rpz-ip", CLIENT_IP: ".rpz-client-ip", NSIP: ".rpz-nsip"}


class PolicyError(ValueError):
    """A policy zone that cannot be used (too many records, no SOA)."""


# ---- the IP trigger names ---------------------------------------------------------------------
def network_of(labels: Iterable[bytes]) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The network a trigger name's labels before ``rpz-ip``/``rpz-client-ip`` encode
    (``32.1.2.0.192`` is 192.0.2.1/32); ValueError when they encode none."""
    parts = [lab.decode("ascii").lower() for lab in labels]
    if len(parts) < 2 or not parts[0].isdigit():
        raise ValueError(f"{'.'.join(parts)!r}: no prefix length first")
    prefix, rest = int(parts[0]), parts[:0:-1]
    if len(rest) == 4 and all(p.isdigit() for p in rest):
        text = ".".join(rest)
    else:
        if rest.count("zz") > 1:
            raise ValueError(f"{'.'.join(parts)!r}: 'zz' given twice")
        text = ":".join("" if p == "zz" else p for p in rest)
        if rest == ["zz"]:
            text = "::"
        elif text.startswith(":"):
            text = ":" + text
        if text.endswith(":") and text != "::":
            text += ":"
    try:
        net = ipaddress.ip_network(f"{text}/{prefix}", strict=False)
    except ValueError as e:
        raise ValueError(f"{'.'.join(parts)!r}: {e}") from None
    if net.version == 4 and "zz" in rest:
        raise ValueError(f"{'.'.join(parts)!r}: not an address")
    return net


def trigger_labels(net) -> str:
    """The labels that encode ``net`` (the inverse of :func:`network_of`), e.g.
    ``24.0.2.0.192`` for 192.0.2.0/24."""
    net = ipaddress.ip_network(net, strict=False)
    if net.version == 4:
        groups = str(net.network_address).split(".")
    else:
        text = net.network_address.compressed
        groups = ["zz" if g == "" else g for g in text.replace("::", ":zz:").strip(":").split(":")]
    return ".".join([str(net.prefixlen), *reversed(groups)])


# ---- rules ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """What a trigger does: its action, its local data (rrsets at the trigger's name) or its
    CNAME target (a wildcard target, ``*.suffix``, stands for the query name under it) and
    that CNAME's TTL, which the rewrite's answer carries."""
    action: str
    records: tuple = ()
    target: dns.name.Name | None = None
    ttl: int = 300


def rule_of(rdatasets) -> Rule:
    """The rule the records at one trigger name stand for."""
    cname = next((rds for rds in rdatasets if rds.rdtype == dns.rdatatype.CNAME), None)
    if cname is not None:
        target = cname[0].target
        if target == _ROOT:
            return Rule(NXDOMAIN)
        if target == _WILD:
            return Rule(NODATA)
        special = _SPECIAL.get(target)
        if special is not None:
            return Rule(special)
        return Rule(CNAME, target=target, ttl=cname.ttl)
    return Rule(LOCAL_DATA, records=tuple(rdatasets))


@dataclass(frozen=True)
class Match:
    """A trigger that matched: which zone, which kind of trigger, the rule (after the zone's
    override) and the name the trigger is written at (relative to the zone)."""
    zone: "PolicyZone"
    trigger: str
    rule: Rule
    at: str

    @property
    def action(self) -> str:
        return self.rule.action


@dataclass
class ZoneOptions:
    """A ``[[rpz]]`` table's options that shape answers and logs (Unbound's keys)."""
    action_override: str | None = None          # rpz-action-override
    cname_override: dns.name.Name | None = None  # rpz-cname-override
    log: bool = False                           # rpz-log
    log_name: str | None = None                 # rpz-log-name
    signal_nxdomain_ra: bool = False            # rpz-signal-nxdomain-ra
    #: tags: only the queries of clients with one of them meet the zone (none: all do)
    tags: frozenset[str] = frozenset()


class PolicyZone:
    """One policy zone's triggers, made from its records (``(name, rdataset)`` pairs, names
    absolute, as ``dns.zone.Zone.iterate_rdatasets`` gives them)."""

    def __init__(self, origin: dns.name.Name, rdatasets, options: ZoneOptions | None = None,
                 max_records: int | None = None) -> None:
        self.origin = origin
        self.options = options or ZoneOptions()
        self.name = origin.to_text()
        self.serial: int | None = None
        self.soa = None                         # the zone's SOA rdataset
        self.qnames = _Names()                  # the QNAME triggers
        self.ips: dict[str, _Prefixes] = {RESPONSE_IP: _Prefixes(), CLIENT_IP: _Prefixes(),
                                          NSIP: _Prefixes()}
        self.nsdname = _Names()
        self.ignored = 0                        # IP triggers that encode no network
        self.records = 0
        self.digest: bytes | None = None        # the SHA-256 of the file it was read from
        by_name: dict[dns.name.Name, list] = {}
        for name, rds in rdatasets:
            self.records += len(rds)
            if max_records is not None and self.records > max_records:
                raise PolicyError(f"rpz {self.name}: more than {max_records} records "
                                  "(limits.rpz_max_records)")
            if name == origin:
                if rds.rdtype == dns.rdatatype.SOA:
                    self.soa = rds
                    self.serial = rds[0].serial
                continue                        # the apex: SOA, NS (no trigger)
            if rds.rdtype in (dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3):
                continue
            by_name.setdefault(name, []).append(rds)
        for name, sets in by_name.items():
            self._add(name.relativize(origin), rule_of(sets))
        #: this zone's part of its policies' ``TriggerIndex`` (``resolver.policy.index``),
        #: in the order of its arguments: the QNAME triggers' exact and wildcard names in
        #: wire form, the response-IP networks, the client-IP networks, the NSDNAME
        #: triggers' exact and wildcard names, the NSIP networks; made with the zone, so a
        #: policy of many zones only joins them
        self.index_parts = (
            _wires(self.qnames.exact), _wires(self.qnames.wild),
            self.ips[RESPONSE_IP].keys(), self.ips[CLIENT_IP].keys(),
            _wires(self.nsdname.exact), _wires(self.nsdname.wild), self.ips[NSIP].keys())

    def _add(self, rel: dns.name.Name, rule: Rule) -> None:
        labels = [lab.lower() for lab in rel.labels]
        kind = _IP_LABELS.get(labels[-1])
        if kind is not None:
            try:
                self.ips[kind].add(network_of(labels[:-1]), rule)
            except ValueError:
                self.ignored += 1
            return
        names = self.qnames
        if labels[-1] == b"rpz-nsdname":
            names, rel = self.nsdname, dns.name.Name(rel.labels[:-1])
            if not rel.labels:
                self.ignored += 1
                return
        name = dns.name.Name(rel.labels).derelativize(_ROOT)
        if labels[0] == b"*":
            names.wild[name.parent()] = rule
        else:
            names.exact[name] = rule

    def tables(self) -> list[dict]:
        """The zone's own tables of triggers (what holds its size), for letting go of a
        zone a piece at a time (``resolver.daemon.reloads.retire``)."""
        return [self.qnames.exact, self.qnames.wild, self.nsdname.exact, self.nsdname.wild,
                *(t for p in self.ips.values() for t in p.by_len.values())]

    def __len__(self) -> int:
        return (len(self.qnames.exact) + len(self.qnames.wild) + len(self.nsdname.exact)
                + len(self.nsdname.wild) + sum(len(p) for p in self.ips.values()))

    # the look-ups (names relative to the zone, made absolute under the root)
    def qname_rule(self, qname: dns.name.Name) -> tuple[Rule, str] | None:
        """The rule for ``qname`` (absolute): its exact trigger, else the longest wildcard
        above it."""
        return _name_rule(self.qnames, qname)

    def nsdname_rule(self, names) -> tuple[Rule, str] | None:
        """The rule of the first of the name servers ``names`` with an NSDNAME trigger."""
        if not (self.nsdname.exact or self.nsdname.wild):
            return None
        for name in names:
            hit = _name_rule(self.nsdname, name.canonicalize())
            if hit is not None:
                return hit[0], hit[1] + "rpz-nsdname"
        return None

    def ip_rule(self, kind: str, addresses) -> tuple[Rule, str] | None:
        """The rule of the longest prefix holding any of ``addresses``."""
        return self.ips[kind].find(addresses)

    def apply_override(self, rule: Rule) -> Rule:
        o = self.options
        if o.action_override is None:
            return rule
        if o.action_override == CNAME:
            return Rule(CNAME, target=o.cname_override)
        return Rule(o.action_override)


def _wires(names) -> frozenset[bytes]:
    """``names`` (absolute) in lower-cased wire form, as ``TriggerIndex`` holds them."""
    return frozenset(name.canonicalize().to_wire() for name in names)


class _Names:
    """Name triggers: exact, and wildcards by the name under ``*.``."""

    def __init__(self) -> None:
        self.exact: dict[dns.name.Name, Rule] = {}
        self.wild: dict[dns.name.Name, Rule] = {}


def _name_rule(names: _Names, qname: dns.name.Name) -> tuple[Rule, str] | None:
    """The exact trigger of ``qname`` (absolute) in ``names``, else the longest wildcard
    above it."""
    rule = names.exact.get(qname)
    if rule is not None:
        return rule, qname.to_text()
    if names.wild:
        name = qname
        while len(name) > 1:
            name = name.parent()
            rule = names.wild.get(name)
            if rule is not None:
                return rule, "*." + name.to_text()
    return None


class _Prefixes:
    """Networks and their rules, looked up longest prefix first."""

    def __init__(self) -> None:
        self.by_len: dict[tuple[int, int], dict[int, tuple[Rule, str]]] = {}
        self.lengths: list[tuple[int, int]] = []          # (version, prefix), longest first

    def add(self, net, rule: Rule) -> None:
        key = (net.version, net.prefixlen)
        table = self.by_len.get(key)
        if table is None:
            table = self.by_len[key] = {}
            self.lengths = sorted(self.by_len, key=lambda k: -k[1])
        table[int(net.network_address)] = (rule, trigger_labels(net))

    def __len__(self) -> int:
        return sum(len(t) for t in self.by_len.values())

    def keys(self) -> frozenset[bytes]:
        """The networks as ``TriggerIndex`` holds them (``TriggerIndex.network``)."""
        return frozenset(TriggerIndex.network(prefix, address.to_bytes(4 if v == 4 else 16,
                                                                       "big"))
                         for (v, prefix), table in self.by_len.items() for address in table)

    def find(self, addresses) -> tuple[Rule, str] | None:
        if not self.lengths:
            return None
        for version, prefix in self.lengths:
            bits = 32 if version == 4 else 128
            mask = ((1 << prefix) - 1) << (bits - prefix)
            table = self.by_len[(version, prefix)]
            for a in addresses:
                if a.version == version:
                    found = table.get(int(a) & mask)
                    if found is not None:
                        return found
        return None


# ---- the policy: zones in order -----------------------------------------------------------------
class Policy:
    """The policy zones in config order; the first zone with a match wins."""

    def __init__(self, zones: Iterable[PolicyZone] = ()) -> None:
        self.zones: list[PolicyZone] = list(zones)
        self.has_response_ip = any(len(z.ips[RESPONSE_IP]) for z in self.zones)
        #: whether any zone has NSDNAME or NSIP triggers (the answer's name servers asked)
        self.has_ns = any(z.nsdname.exact or z.nsdname.wild or len(z.ips[NSIP])
                          for z in self.zones)
        #: whether any zone has QNAME triggers (the names an answer's CNAME chain leads to
        #: are checked against them)
        self.has_qname = any(z.qnames.exact or z.qnames.wild for z in self.zones)
        #: what the front door's cached-answer path reads (``resolver.policy.index``),
        #: made here once, off the loop, as the policy is
        self.index = TriggerIndex(*(frozenset().union(*(z.index_parts[i] for z in self.zones))
                                    for i in range(7)))

    def _first(self, found, tags: frozenset[str]) -> tuple[Match | None, list[Match]]:
        """The first match of ``found`` (zone -> Match or None) that acts, and the matches of
        disabled zones met before it (logged, counted, not applied); a tagged zone is passed
        over unless it shares one of ``tags``, the client's."""
        disabled = []
        for z in self.zones:
            own = z.options.tags
            if own and not own & tags:
                continue
            m = found(z)
            if m is None:
                continue
            if m.rule.action == DISABLED:
                disabled.append(m)
                continue
            return m, disabled
        return None, disabled

    def before(self, qname: dns.name.Name, client, tags: frozenset[str] = frozenset()
               ) -> tuple[Match | None, list[Match]]:
        """The match for a query of ``qname`` (absolute) from ``client`` (an address or
        None; ``tags``, its network's): each zone's client-IP trigger, then its QNAME
        trigger."""
        qname = qname.canonicalize()
        try:
            client_ip = [ipaddress.ip_address(client)] if client else []
        except ValueError:                      # not an address (a Unix socket's peer)
            client_ip = []

        def found(z: PolicyZone):
            if client_ip:
                hit = z.ip_rule(CLIENT_IP, client_ip)
                if hit is not None:
                    return Match(z, CLIENT_IP, z.apply_override(hit[0]),
                                 hit[1] + _IP_SUFFIX[CLIENT_IP])
            hit = z.qname_rule(qname)
            if hit is not None:
                return Match(z, QNAME, z.apply_override(hit[0]), hit[1])
            return None
        return self._first(found, tags)

    def qname(self, name: dns.name.Name, tags: frozenset[str] = frozenset()
              ) -> tuple[Match | None, list[Match]]:
        """The match for ``name`` (absolute), a name a CNAME chain leads to: each zone's
        QNAME trigger alone (the client-IP triggers were decided with the query's name);
        ``tags``: the client's."""
        name = name.canonicalize()

        def found(z: PolicyZone):
            hit = z.qname_rule(name)
            return None if hit is None else Match(z, QNAME, z.apply_override(hit[0]), hit[1])
        return self._first(found, tags)

    def after(self, addresses, ns_names=(), ns_addresses=(),
              tags: frozenset[str] = frozenset()) -> tuple[Match | None, list[Match]]:
        """The match for an answer holding ``addresses`` (ipaddress objects) for a name
        whose zone has the name servers ``ns_names`` (absolute names) at ``ns_addresses``:
        each zone's response-IP, then NSDNAME, then NSIP trigger; ``tags``: the client's."""
        if not self.has_response_ip and not self.has_ns:
            return None, []

        def found(z: PolicyZone):
            for kind, hit in ((RESPONSE_IP, z.ip_rule(RESPONSE_IP, addresses)),
                              (NSDNAME, z.nsdname_rule(ns_names)),
                              (NSIP, z.ip_rule(NSIP, ns_addresses))):
                if hit is not None:
                    at = hit[1] if kind == NSDNAME else hit[1] + _IP_SUFFIX[kind]
                    return Match(z, kind, z.apply_override(hit[0]), at)
            return None
        return self._first(found, tags)


def answer_addresses(response: dns.message.Message) -> list:
    """The A and AAAA addresses in an answer section."""
    out: list = []
    for rrset in response.answer:
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            out.extend(ipaddress.ip_address(rd.address) for rd in rrset)
    return out


def cname_chain(response: dns.message.Message, qname: dns.name.Name) -> list:
    """The names the answer section's CNAME chain leads ``qname`` to, in order: (the number
    of answer rrsets up to and including the CNAME that names it, the name); empty without
    a CNAME at ``qname``. A loop ends the chain."""
    out: list = []
    seen = {qname.canonicalize()}
    name = qname
    while True:
        for i, rrset in enumerate(response.answer):
            if rrset.rdtype == dns.rdatatype.CNAME and rrset.name == name and len(rrset):
                break
        else:
            return out
        name = rrset[0].target
        if name.canonicalize() in seen:
            return out
        seen.add(name.canonicalize())
        out.append((i + 1, name))


def cname_target(match: Match, qname: dns.name.Name) -> dns.name.Name:
    """The name a CNAME rule rewrites ``qname`` to (a wildcard target takes the query name
    under its suffix)."""
    target = match.rule.target
    assert target is not None, "a CNAME rule has its target"
    if target.labels[:1] == (b"*",):
        return dns.name.Name(qname.labels[:-1] + target.labels[1:])
    return target


def respond(query: dns.message.Message, match: Match, ttl: int = 300) -> dns.message.Message:
    """The response ``match``'s action (NXDOMAIN, NODATA, local data) gives to ``query``:
    AA set (the policy zone's data, as Unbound answers it), RA set (clear for NXDOMAIN with
    ``rpz-signal-nxdomain-ra``), never AD, the policy zone's SOA in the authority section
    of a negative answer."""
    r = dns.message.make_response(query, recursion_available=True)
    r.flags = r.flags & ~dns.flags.AD | dns.flags.AA
    q = query.question[0]
    action = match.rule.action
    if action == LOCAL_DATA:
        found = [rds for rds in match.rule.records if rds.rdtype == q.rdtype
                 or q.rdtype == dns.rdatatype.ANY]
        for rds in found:
            rrset = r.find_rrset(r.answer, q.name, rds.rdclass, rds.rdtype, create=True)
            rrset.update(rds)
        if found:
            return r
        action = NODATA
    if action == NXDOMAIN:
        r.set_rcode(dns.rcode.NXDOMAIN)
        if match.zone.options.signal_nxdomain_ra:
            r.flags &= ~dns.flags.RA
    soa = match.zone.soa
    if soa is not None:
        rrset = r.find_rrset(r.authority, match.zone.origin, soa.rdclass, soa.rdtype,
                             create=True)
        rrset.update(soa)
        rrset.ttl = min(soa.ttl, soa[0].minimum)
    return r


def rewrite(query: dns.message.Message, match: Match, target: dns.name.Name,
            resolved: dns.message.Message | None, lead=(),
            owner: dns.name.Name | None = None) -> dns.message.Message:
    """The response to ``query`` for a CNAME rewrite to ``target``: the CNAMEs of ``lead``
    (those of the answer's chain that led to ``owner``, the name the trigger met: the
    query's own when None), the rewrite's CNAME from ``owner``, then the answer the target
    resolved to (``resolved``; SERVFAIL when None), without AD. AA is set on a rewrite of
    the query's own name (the CNAME is the policy zone's, as Unbound answers it), not on
    one met down a chain (the answer is the resolution's, as Unbound's)."""
    r = dns.message.make_response(query, recursion_available=True)
    r.flags = r.flags & ~(dns.flags.AD | dns.flags.AA) | (dns.flags.AA if owner is None else 0)
    owner = query.question[0].name if owner is None else owner
    r.answer.extend(lead)
    cname = dns.rrset.from_text(owner, match.rule.ttl, "IN", "CNAME", target.to_text())
    r.answer.append(cname)
    if resolved is None:
        r.set_rcode(dns.rcode.SERVFAIL)
        return r
    r.set_rcode(resolved.rcode())
    r.answer.extend(resolved.answer)
    r.authority.extend(resolved.authority)
    return r


_HEADER_FROM_QUERY = dns.flags.RD | dns.flags.CD      # echoed from the client's query
_DO = 0x8000


def encode(q: bytes, r: dns.message.Message) -> bytes:
    """The wire form of ``r``, a response of :func:`respond` or :func:`rewrite`, to the
    client's query ``q``, written by the encoder every answer of the resolver is written
    by (:func:`resolver.wire.codec.build_response`): the query's ID and question as sent
    (its case kept, owners equal to it written as a pointer to it), RD and CD echoed, EDNS
    when the query has it (the resolver's buffer size, DO echoed), ``r``'s other flags, rcode
    and sections. ``WireError`` for a query whose question does not read."""
    p = parse_response(q, sections=False)
    flags = (r.flags & ~_HEADER_FROM_QUERY & 0xFFFF) | (p.flags & _HEADER_FROM_QUERY) | 0x8000
    return build_response(p.id, flags, p.question, _records(r.answer),
                          _records(r.authority), _records(r.additional), edns=p.edns,
                          do=bool(p.edns_flags & _DO), payload=EDNS_BUFFER_SIZE,
                          rcode=r.rcode())


def _records(section) -> list:
    """A section's records as the encoder takes them: (owner, type, class, TTL, rdata)."""
    return [(rrset.name.to_wire(), rd.rdtype, rrset.rdclass, rrset.ttl, rd.to_wire())
            for rrset in section for rd in rrset]
