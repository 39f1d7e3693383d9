"""Response policy applied to the daemon's client queries: the
:class:`resolver.policy.rpz.Policy` the feeds (``resolver.daemon.rpz_feed``) keep, at the
two points of a query where it can decide.

Only when ``[[rpz]]`` is configured is a :class:`PolicyGate` set on the front door
(``FrontDoor.policy``); without it nothing here runs. The door answers a recursive query
from the cache in C, without this gate, only when no trigger of the policy can touch it, as
the policy's :class:`resolver.policy.index.TriggerIndex` (``Policy.index``, made once per
policy; the door reads it when its ``policy`` is set, again at every change) lets it decide
exactly:

- no client-IP trigger's network holds the client's address (the one the gate reads,
  ``reply.addr``; looked up in C for every query);
- no QNAME trigger of any zone, whatever its action (a PASSTHRU rule, a DISABLED zone's
  match: counted and logged here), is on the query's name or a wildcard above it;
- the cached answer holds no DNAME, no owner or target of a CNAME in its answer section
  meets a QNAME trigger either, and no A or AAAA address of its answer section is in a
  response-IP trigger's network (of any zone or action: every prefix length the policy
  has, checked in C over the cached wire, exactly as ``Policy.after`` finds them);
- no NSDNAME or NSIP trigger meets the name servers of the query name's zone as the
  checker finds them (:meth:`PolicyGate.ns_touched`, asked once per cached entry and
  policy, not per query).

Every other recursive query comes here as a miss (its cached answer, if any, found by the
engine on ``policy_start``), so no cached answer leaves before the policy has seen what it
could act on.

- A question the local zones answer or drop (``local-zone``, ``local-data`` and the default
  zones, as the engine's ``LocalZones.lookup`` decides) meets no trigger at all: it goes to
  the engine untouched, as Unbound asks its local zones before its response policy. A
  redirect zone's CNAME (a local alias, whose target the engine resolves) meets the
  client-IP and QNAME triggers on the query's name, and the response-IP, NSDNAME and NSIP
  triggers on its target's answer, which they answer after the CNAME; not the QNAME
  triggers on the target's chain (as Unbound's).
- Before the answer is looked for (``miss``): the client-IP and QNAME triggers. NXDOMAIN,
  NODATA and local data are answered at once (built here, never stored in the cache, AA
  set and no AD, as Unbound answers from a policy zone);
  DROP sends nothing; TCP-ONLY answers a UDP query with TC set (over TCP it goes on as
  PASSTHRU); PASSTHRU resolves the query untouched; a CNAME rewrite resolves the target (the
  cache and the resolution as for any query) and answers the CNAME followed by the target's
  answer.
- On the answer (``rewrite`` of a miss the front door started), when any zone has QNAME,
  response-IP, NSDNAME or NSIP triggers: first the QNAME triggers on each name the answer
  section's CNAME chain leads the query's name to, in the chain's order, the zones in order
  for each name (as Unbound's iterator checks each CNAME target it follows). For a SERVFAIL
  the chain is the one the resolution had followed before it failed (longer than
  ``max-cname-chain``, a loop, a target that failed), which the failure's response does not
  carry: the door hands the check the miss that resolved it (a ``resolution.Drive``),
  whose ``failed_chain()`` gives it, and with no match the SERVFAIL goes out as it came.
  The first match decides: NXDOMAIN, NODATA and local data answer for the name met, after
  the CNAMEs that lead to it; DROP sends nothing; PASSTHRU sends the answer and ends the
  policy for the query; a CNAME rewrite answers those CNAMEs and the rewrite's CNAME, then
  what its target resolves to (``admission.Follow``: not checked again), AA clear; TCP-ONLY
  leaves the answer as it is and the chain's next names are still checked. Then, if no name of
  the chain decided, the response-IP triggers, on the A and AAAA addresses of the answer
  section, then the NSDNAME and NSIP triggers, on the name servers of the query name's
  zone as the cache holds them (the closest enclosing NS set in the rrset cache, and their
  cached addresses: :func:`cached_nameservers`), with the same actions (a CNAME rewrite
  there answers the CNAME and what its target resolves to, as Unbound's respip does).

Each match is counted per zone and action (``stats()``), and by Unbound's name of its
action over every zone (``actions()``: ``stats`` prints them as ``num.rpz.action.*``), and
logged when the zone has ``rpz-log``: one line with client, name, type, zone and action
(Unbound's).
"""
from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from resolver.daemon.admission import Follow
from resolver.policy.rpz import (CNAME, DISABLED, DROP, LOCAL_DATA, NODATA, NXDOMAIN,
                                 PASSTHRU, TCP_ONLY, Match, Policy, answer_addresses,
                                 cname_chain, cname_target, encode, respond, rewrite)
from resolver.zones import Alias

log = logging.getLogger("resolver.rpz")

#: An action's name in Unbound's statistics (``rpz_action_to_string``). A CNAME rule of the
#: zone is Unbound's local data; ``rpz-action-override: cname`` is ``rpz-cname-override``.
UNBOUND_ACTIONS = {NXDOMAIN: "rpz-nxdomain", NODATA: "rpz-nodata", PASSTHRU: "rpz-passthru",
                   DROP: "rpz-drop", TCP_ONLY: "rpz-tcp-only", LOCAL_DATA: "rpz-local-data",
                   CNAME: "rpz-local-data", DISABLED: "rpz-disabled"}
CNAME_OVERRIDE = "rpz-cname-override"


class PolicyGate:
    """The policy between the front door and the engine (see the module docstring)."""

    def __init__(self, policy: Policy, nameservers=None, local_zones=None) -> None:
        self.policy = policy
        #: qname -> (name server names, their addresses) for NSDNAME/NSIP triggers
        self.nameservers = nameservers or (lambda qname: ((), ()))
        #: () -> the engine's local zones now (``resolver.zones.LocalZones``, or None)
        self.local_zones = local_zones or (lambda: None)
        #: (zone, action) -> matches
        self.counts: Counter = Counter()
        #: Unbound's name of the action (``UNBOUND_ACTIONS``) -> matches, of every zone
        self.by_unbound_name: Counter = Counter()

    def stats(self) -> dict:
        out: dict = {}
        for (zone, action), n in self.counts.items():
            out.setdefault(zone, {})[action] = n
        return out

    def actions(self) -> dict:
        """Matches by Unbound's name of their action, of every zone."""
        return dict(self.by_unbound_name)

    def ns_touched(self, index, wire: bytes) -> bool:
        """Whether an NSDNAME or NSIP trigger of ``index`` (the policy's
        ``TriggerIndex``) meets the name servers of the name ``wire`` (wire form) as the
        answer's check finds them (``nameservers``: :func:`cached_nameservers` in the
        daemon). The front door asks it once per cached entry and policy."""
        names, addresses = self.nameservers(dns.name.from_wire(wire, 0)[0])
        return index.ns_touches([n.canonicalize().to_wire() for n in names],
                                [a.packed for a in addresses])

    def tags_of(self, client) -> frozenset[str]:
        """The tags of the network of ``client`` (an address, or None): a tagged policy
        zone applies only to the clients of networks sharing one of its tags."""
        local = self.local_zones()
        who = None if local is None else local.client(client)
        return frozenset() if who is None else who.names

    def note(self, m: Match, client, query: dns.message.Message, action: str | None = None,
             name: dns.name.Name | None = None):
        """Counts a match, and logs it with ``rpz-log``: the query's name and type, or
        ``name`` (a name the answer's CNAME chain leads to, which the trigger met)."""
        action = action or m.action
        self.counts[(m.zone.name, action)] += 1
        overridden = action == CNAME and m.zone.options.action_override == CNAME
        self.by_unbound_name[CNAME_OVERRIDE if overridden else UNBOUND_ACTIONS[action]] += 1
        if m.zone.options.log:
            q = query.question[0]
            log.info("rpz: applied [%s] %s %s %s %s %s@%s", m.zone.options.log_name or m.zone.name,
                     m.at, action, (name or q.name).to_text(), dns.rdatatype.to_text(q.rdtype),
                     client or "-", m.trigger)

    def miss(self, door, q: bytes, reply, t0: float, busy: bool) -> bool:
        """A recursive query the front door sent on, to be answered through ``reply``:
        answered by the policy, dropped (``policy_drop``), or started on the door
        (``policy_start``) with the response-IP check on its answer. False when nothing
        will be sent."""
        addr, transport = reply.addr, reply.label
        try:
            query = dns.message.from_wire(q)
        except (dns.exception.DNSException, ValueError):
            query = None                    # the engine answers FORMERR or drops it
        if query is None or len(query.question) != 1:
            return door.policy_start(q, reply, t0, busy, None)
        client = addr[0].partition("%")[0] if addr else None
        question = query.question[0]
        qname = question.name
        local = self.local_zones()
        alias = None
        if local is not None and question.rdclass == dns.rdataclass.IN:
            found = local.answer(qname.to_wire(), question.rdtype, client, inform=False)
            if type(found) is Alias:
                alias = dns.name.from_wire(found.target, 0)[0]
            elif found is not None:
                return door.policy_start(q, reply, t0, busy, None)
        m, disabled = self.policy.before(qname, client, self.tags_of(client))
        for d in disabled:
            self.note(d, client, query, DISABLED)
        if m is None:
            check = (self.checker(q, query, client, transport, alias)
                     if (self.policy.has_qname and alias is None)
                     or self.policy.has_response_ip or self.policy.has_ns else None)
            return door.policy_start(q, reply, t0, busy, check)
        self.note(m, client, query)
        action = m.action
        if action == PASSTHRU or (action == TCP_ONLY and transport != "udp"):
            return door.policy_start(q, reply, t0, busy, None)
        if action == DROP:
            door.policy_drop(reply)
            return False
        if action == CNAME:
            f = self.follow(q, query, m, cname_target(m, qname))
            return door.policy_start(f.query, reply, t0, busy, f.combine, q)
        door.policy_answer(q, self.answer(q, query, m, transport), reply, t0)
        return True

    def follow(self, q: bytes, query: dns.message.Message, m: Match, target: dns.name.Name,
               lead=(), owner: dns.name.Name | None = None) -> Follow:
        """A CNAME rewrite of the client's query ``q`` (``query``, read) to ``target``: its
        question (the query's type, EDNS and flags, AD clear) to resolve, and the response
        ``rewrite`` makes of its answer, after the CNAMEs of ``lead`` that led to ``owner``
        (the query's name when None)."""
        sub = dns.message.make_query(target, query.question[0].rdtype,
                                     use_edns=query.edns if query.edns >= 0 else False,
                                     payload=query.payload)
        sub.flags = query.flags & ~dns.flags.AD

        def combine(out: bytes, _miss) -> bytes:
            try:
                resolved = dns.message.from_wire(out)
            except (dns.exception.DNSException, ValueError):
                resolved = None
            return encode(q, rewrite(query, m, target, resolved, lead, owner))
        return Follow(sub.to_wire(), combine)

    def answer(self, q: bytes, query: dns.message.Message, m: Match, transport: str) -> bytes:
        """The response an answering action gives to the client's query ``q`` (``query``,
        read): TCP-ONLY's is TC over UDP."""
        if m.action == TCP_ONLY:
            r = dns.message.make_response(query, recursion_available=True)
            r.flags |= dns.flags.TC
            return encode(q, r)
        return encode(q, respond(query, m))

    @staticmethod
    def failed_chain(miss) -> dns.message.Message | None:
        """The SERVFAIL of ``miss`` (the ``resolution.Drive`` or shared cache ``Lookup`` that
        resolved it, or None) with the CNAME/DNAME chain its resolution had followed before
        it failed (its ``failed_chain()``), read; None when it followed no link."""
        wire = None if miss is None else miss.failed_chain()
        if wire is None:
            return None
        try:
            return dns.message.from_wire(wire)
        except (dns.exception.DNSException, ValueError):
            return None

    def checker(self, q: bytes, query: dns.message.Message, client, transport: str,
                alias: dns.name.Name | None = None):
        """``rewrite(out, miss)`` for a miss's answer ``out`` (``miss``: what resolved it,
        as ``FrontDoor.policy_start`` hands it): the answer, or the one a QNAME trigger on a
        name of its CNAME chain, or else a response-IP, NSDNAME or NSIP trigger, gives
        (None: dropped). For a SERVFAIL the chain is the one the resolution had followed
        before it failed (too long to finish, a loop, a link whose target failed:
        ``miss.failed_chain()``), so that a trigger met within it answers as for a chain
        that finishes; with no match the SERVFAIL goes out as it came, without the chain.
        ``alias``: the target of a local zone's CNAME that answers the query (its answer
        leads with that CNAME): the QNAME triggers are not asked of its chain, and what the
        other triggers answer comes after the CNAME, at the target, as Unbound's."""
        tags = self.tags_of(client)

        def check(out: bytes, miss):
            try:
                response = dns.message.from_wire(out)
            except (dns.exception.DNSException, ValueError):
                return out                  # not ours to judge: the engine made it
            if self.policy.has_qname and alias is None:
                chain = response
                if response.rcode() == dns.rcode.SERVFAIL:
                    chain = self.failed_chain(miss)
                done, answer = (self.chained(q, query, chain, client, tags, transport)
                                if chain is not None else (False, None))
                if done:
                    if answer is None or type(answer) is Follow:
                        return answer
                    return out if answer is chain else encode(q, answer)
            if not (self.policy.has_response_ip or self.policy.has_ns):
                return out
            addresses = answer_addresses(response)
            owner = query.question[0].name if alias is None else alias
            lead = response.answer[:1] if alias is not None else []
            names, ns_addresses = (self.nameservers(owner)
                                   if self.policy.has_ns else ((), ()))
            m, disabled = self.policy.after(addresses, names, ns_addresses, tags)
            for d in disabled:
                self.note(d, client, query, DISABLED)
            if m is None:
                return out
            self.note(m, client, query)
            action = m.action
            if action == PASSTHRU or (action == TCP_ONLY and transport != "udp"):
                return out
            if action == DROP:
                return None
            if action == CNAME:             # resolved, AA clear, as Unbound's respip
                return self.follow(q, query, m, cname_target(m, owner), lead, owner)
            if alias is None or action == TCP_ONLY:
                return self.answer(q, query, m, transport)
            return encode(q, self.answered_at(query, lead, owner, m))
        return check

    def chained(self, q: bytes, query: dns.message.Message, response: dns.message.Message,
                client, tags: frozenset[str], transport: str):
        """The QNAME triggers on the names ``response``'s CNAME chain leads the query's name
        to (a SERVFAIL's as ``failed_chain`` gives it), each name in the chain's order, the
        zones in order for each (Unbound's ``rpz_callback_from_iterator_cname``): (whether a
        match decided, the response then sent: ``response`` itself for PASSTHRU, None for
        DROP, a ``Follow`` for a CNAME rewrite). NXDOMAIN, NODATA and local data answer for
        the name met, after the CNAMEs that lead to it; a CNAME rewrite answers those CNAMEs,
        the rewrite's CNAME and what its target resolves to; TCP-ONLY changes nothing of the
        answer (the chain's next names are still checked); a DISABLED zone's match is
        counted and logged, not applied. ``tags``: the client's (``tags_of``)."""
        question = query.question[0]
        for kept, name in cname_chain(response, question.name):
            m, disabled = self.policy.qname(name, tags)
            for d in disabled:
                self.note(d, client, query, DISABLED)
            if m is None:
                continue
            self.note(m, client, query, name=name)
            action = m.action
            if action == PASSTHRU:
                return True, response       # no further policy for this query
            if action == TCP_ONLY:
                continue
            if action == DROP:
                return True, None
            if action == CNAME:
                return True, self.follow(q, query, m, cname_target(m, name),
                                         response.answer[:kept], name)
            return True, self.answered_at(query, response.answer[:kept], name, m)
        return False, None

    @staticmethod
    def answered_at(query: dns.message.Message, lead, name: dns.name.Name,
                    m: Match) -> dns.message.Message:
        """The response to ``query`` of an answering action (NXDOMAIN, NODATA, local data)
        met at ``name``, which the CNAMEs of ``lead`` led the query's name to: those
        CNAMEs, then the action's records for ``name``, its rcode, AA and RA."""
        question = query.question[0]
        part = respond(dns.message.make_query(name, question.rdtype, question.rdclass), m)
        r = dns.message.make_response(query, recursion_available=True)
        r.flags = (r.flags & ~(dns.flags.AD | dns.flags.AA | dns.flags.RA)
                   | (part.flags & (dns.flags.RA | dns.flags.AA)))
        r.set_rcode(part.rcode())
        r.answer = [*lead, *part.answer]
        r.authority = list(part.authority)
        return r

def cached_nameservers(rrsets, qname: dns.name.Name, now: float | None = None):
    """The name servers of ``qname``'s zone as the rrset cache (``Cache.rrsets``) holds
    them: the NS set of the closest enclosing name that has one, and the cached A and AAAA
    addresses of those names; ((), ()) when none is cached."""
    now = time.monotonic() if now is None else now
    name = qname
    while True:
        entry = rrsets.get(name.canonicalize().to_wire(), dns.rdatatype.NS, 1, now)
        if entry is not None and entry.negative is None:
            break
        if len(name) <= 1:
            return (), ()
        name = name.parent()
    names: list = []
    addresses: list = []
    for record in entry.records(now):
        try:
            ns = dns.name.from_wire(record[4], 0)[0]
        except dns.exception.DNSException:
            continue
        names.append(ns)
        wire = ns.canonicalize().to_wire()
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            found = rrsets.get(wire, rdtype, 1, now)
            if found is not None and found.negative is None:
                addresses.extend(ipaddress.ip_address(r[4]) for r in found.records(now))
    return names, addresses
