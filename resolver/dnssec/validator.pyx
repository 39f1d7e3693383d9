"""The DNSSEC validator: the chain of trust from an anchor down to the data, over the iterator.

:meth:`Validator.validate` runs as the last step of the iterator's state machine for one
client query (``Iterator(dnssec=...)``), so the DS and DNSKEY lookups it needs go through the
same cache, the same upstream budget and the same time limit. It marks the Result SECURE,
INSECURE or BOGUS (with the reason and an RFC 8914 code) and never drops the data, so a client
that sets CD still gets it. Work is bounded by the limits in ``resolver.limits`` (KeyTrap).

The cache and trust (tests/resolver/test_dnssec_cacherank.py, test_ad_invariant.py): the
iterator caches what the authorities send at an authority rank (``cache.AUTH_ANSWER`` and
below) before validation, with the RRSIGs kept beside each rrset. Only this validator
raises entries to ``cache.VALIDATED``, and only once everything the verdict needs has been
checked: for an answer, every rrset's signature and the denial or wildcard proofs (the
proven rrsets wait in ``marks`` until then, ``_mark``); for a DNSKEY or DS set of the chain,
its signature; for a negative entry, its proof. An entry is raised only when it holds the
rdata checked and the RRSIG that proved it (else it is stored again with it), so an AD
answer to a DO client carries its signatures. The final answer to the client's own
question may be stored only once the answer has left (``Iterator.deferred``): its proven
rrsets wait in ``Iterator.validated`` and are applied when it is stored, under the same
conditions. A VALIDATED entry with the same rdata skips the crypto (nothing in it was
left unproven) and answers with its own RRSIGs. Bogus data is kept below VALIDATED, for CD
clients, only as long as the bogus verdict (``limits.dnssec_bogus_ttl``), so forged data
cannot pin a failure. Nothing stored at an authority rank can replace a fresh VALIDATED
entry (``cache.RRsetCache.store``). A secure Result carries ``valid_for``, the time left on
the signatures it relied on, past which the message cache neither answers nor serves it
stale (RFC 4035 5.3.3). The message cache holds finished answers keyed by the query's
EDNS/DO/CD bits, AD set when secure and shown only to clients that set AD or DO
(``wire.codec.answer_from_entry``, ``cache.answer``), so a hit is never revalidated.
"""
from __future__ import annotations

import logging
import time
from struct import error as struct_error
from collections import OrderedDict
from dataclasses import dataclass, field

import dns.exception
import dns.rdata
import dns.rdataclass

from resolver import cache as C
from resolver.dnssec import denial
from resolver.dnssec.aggressive import NsecCache
from resolver.dnssec.sig import (EDE_BOGUS, EDE_DNSKEY_MISSING, EDE_NSEC_MISSING,
                                 EDE_RRSIGS_MISSING, SUPPORTED_ALGORITHMS,
                                 Bogus, Counter, Key, ds_matches, load_crypto, signer_of,
                                 usable_ds, verify_rrset)
from resolver.limits import DEFAULT, Limits
from resolver.wire.codec import (dname_substitute, is_subdomain, label_count, parent,
                                 strip_to, to_text)
from resolver.wire.names cimport lower

log = logging.getLogger("resolver.dnssec")
#: what a bogus result's reason starts with
BOGUS_REASON = "DNSSEC validation failed: "

UNCHECKED, INSECURE, SECURE, BOGUS = 0, 1, 2, 3
NOERROR, SERVFAIL, NXDOMAIN = 0, 2, 3
NS, CNAME, SOA, DNAME, DS, RRSIG, NSEC, NSEC3, DNSKEY = 2, 5, 6, 39, 43, 46, 47, 50, 48
ANY = 255
ROOT = b"\x00"
EDE_NO_REACHABLE_AUTHORITY = 22


class _Refetch(Exception):
    """Cached data lacks what would prove it; the answer is fetched again."""


class Suspend:
    """Yielded by the validator to its driver: let the loop run others, then feed ``None``
    (Unbound's validation suspension after MAX_VALIDATE_AT_ONCE rrsets)."""


SUSPEND = Suspend()


@dataclass
class ZoneKeys:
    """What the chain of trust says about one zone: SECURE with its keys, INSECURE, BOGUS.
    ``algorithms``: those each of the zone's rrsets needs a verifying RRSIG of
    (``harden_algo_downgrade``; empty: one RRSIG of any algorithm is enough)."""

    status: int
    keys: list = field(default_factory=list)
    expires: float = 0.0
    reason: str = ""
    ede: int = 0
    algorithms: tuple = ()


@dataclass
class ValidatorStats:
    secure: int = 0
    insecure: int = 0
    bogus: int = 0
    bogus_cached: int = 0
    sig_checks: int = 0
    nsec3_hashes: int = 0
    suspends: int = 0
    retries: int = 0            # questions asked again of a zone's other servers after bogus
    # rrsets found bogus: a signature over an answer, authority or DS rrset that did not
    # verify, or none in a signed zone (Unbound's num.rrset.bogus; a DNSKEY set failing its
    # DS is a zone's verdict, not counted here, as in Unbound)
    rrsets_bogus: int = 0
    # answers made from validated NSEC/NSEC3 ranges and wildcards (RFC 8198), by rcode
    # (Unbound's num.query.aggressive.NOERROR and .NXDOMAIN)
    aggressive_noerror: int = 0
    aggressive_nxdomain: int = 0

    @property
    def synthesized(self) -> int:
        """Answers made from validated NSEC/NSEC3 ranges and wildcards, of either rcode."""
        return self.aggressive_noerror + self.aggressive_nxdomain


def _covered(rec: tuple) -> int:
    rd = rec[4]
    return (rd[0] << 8) | rd[1] if len(rd) >= 2 else -1


def _group(records) -> list:
    """[owner, type, ttl, rdatas, sigs] per rrset, in order of first appearance."""
    cdef dict sets = {}
    cdef list sigs = []
    cdef list g, rdatas
    for r in records:
        if r[1] == RRSIG:
            sigs.append(r)
            continue
        k = (lower(r[0]), r[1])
        g = sets.get(k)
        if g is None:
            sets[k] = g = [r[0], r[1], r[3], [r[4]], []]
            continue
        if r[3] < g[2]:
            g[2] = r[3]
        rdatas = g[3]
        if r[4] not in rdatas:
            rdatas.append(r[4])
    for r in sigs:
        g = sets.get((lower(r[0]), _covered(r)))
        if g is not None:
            (<list>g[4]).append(r)
    return list(sets.values())


def _over_cap(answer, dict caps) -> bool:
    """Some record of ``answer`` has a TTL above its rrset's cap in ``caps``."""
    for r in answer:
        cap = caps.get((lower(r[0]), r[1]))
        if cap is not None and r[3] > cap:
            return True
    return False


def _ttl_cap(sig, wall: float, min_ttl: int = 0) -> int:
    """RFC 4035 5.3.3: no longer than the RRSIG's original TTL nor past its expiration.
    The original TTL does not bring a TTL below the configured minimum (as in Unbound);
    the expiration does."""
    left = ((sig.expiration - int(wall)) & 0xFFFFFFFF)
    return min(max(sig.original_ttl, min_ttl), left if left < 0x80000000 else 0)


def _expanded(owner: bytes, sig_labels: int) -> bool:
    """An RRSIG with ``sig_labels`` over ``owner`` signs a wildcard's expansion: its label
    count is below the owner's, a leading ``*`` not counted (RFC 4034 3.1.3, RFC 4035
    5.3.4); a query for the literal ``*`` name is answered, not expanded."""
    n = label_count(owner)
    if owner[:2] == b"\x01*":
        n -= 1
    return sig_labels < n


def _synthesized(owner: bytes, rdatas: list, dnames: list) -> bool:
    """``owner``'s CNAME is what one of the answer's DNAME rrsets makes of it (RFC 6672
    2.2): that DNAME is checked itself. A CNAME pointing elsewhere is not."""
    if len(rdatas) != 1:
        return False
    target = rdatas[0].lower()
    for d in dnames:
        for t in d[3]:
            sub = dname_substitute(owner, d[0], t)
            if sub is not None and sub.lower() == target:
                return True
    return False


def _up(name: bytes):
    """``name`` lower-cased, then each of its ancestors, the root last."""
    cur = name.lower()
    while True:
        yield cur
        if len(cur) <= 1:
            return
        cur = parent(cur)


def _blaming(step, name: bytes, rdtype: int):
    """Runs the validation step ``step`` (a generator); a Bogus it raises names ``name``/
    ``rdtype`` as the data found bad in its ``blame``, unless a step inside it named its
    own (``Validator.validate`` asks that zone's other servers: RFC 4035 5.5)."""
    try:
        return (yield from step)
    except Bogus as exc:
        if getattr(exc, "blame", None) is None:
            exc.blame = (name, rdtype)
        raise


def _signer(sigs: list) -> bytes | None:
    for s in sigs:
        p = signer_of(s[4])
        if p is not None:
            return p
    return None


class Validator:
    """Validates resolution results against ``anchors`` (``resolver.dnssec.trust_anchor.load``)."""

    def __init__(self, anchors: dict, limits: Limits = DEFAULT, wallclock=time.time,
                 aggressive_nsec: bool = True, insecure=()) -> None:
        load_crypto()
        self.anchors = anchors
        #: the root key sentinel (RFC 8509, ``resolver.dnssec.sentinel``) is answered
        #: (Unbound's ``root-key-sentinel``)
        self.root_key_sentinel = True
        #: every algorithm a zone's DS names must sign its keys and each of its rrsets
        #: (Unbound's ``harden-algo-downgrade``); off, one algorithm that validates is
        #: enough (RFC 6840 5.11)
        self.harden_algo_downgrade = False
        #: negative trust anchors (Unbound's domain-insecure): lower-cased wire names
        self.insecure = frozenset(n.lower() for n in insecure)
        #: names (lower-cased wire) of the forward and stub zones: a zone at or below one
        #: that its signed parent proves absent is insecure, not bogus (``Resolver.set_zones``)
        self.configured: frozenset = frozenset()
        self.nsec_cache = NsecCache(limits=limits) if aggressive_nsec else None
        self.limits = limits
        self.wallclock = wallclock
        self.zones: OrderedDict[bytes, ZoneKeys] = OrderedDict()
        #: DNSKEY rdata -> Key (parsed, its public key loaded once): ``_key``
        self.keys: OrderedDict[bytes, Key] = OrderedDict()
        self.bogus: OrderedDict[tuple, tuple] = OrderedDict()
        #: lower-cased names a signed zone's denial of DS showed to be no zone cut ->
        #: until when (``_cut_at``); bounded like ``zones``
        self.no_cuts: OrderedDict[bytes, float] = OrderedDict()
        self.stats = ValidatorStats()

    # ---- entry point ----------------------------------------------------------------------
    def below_insecure_point(self, name: bytes) -> bool:
        """``name`` is at or below a negative trust anchor with no trust anchor between
        them (an anchor at or below the insecure point wins, as in Unbound)."""
        if not self.insecure:
            return False
        for cur in _up(name):
            if cur in self.anchors:
                return False
            if cur in self.insecure:
                return True
        return False

    def configured_view(self, name: bytes) -> bool:
        """``name`` is at or below a forward or stub zone (``configured``)."""
        return bool(self.configured) and any(cur in self.configured for cur in _up(name))

    def _zone_of(self, it, name: bytes):
        """Generator: the zone whose keys should sign ``name``'s data when it carries no
        signature. The iterator's closest known cut; for a forwarded answer (``it`` has
        ``find_zone``) an enclosing zone already proven insecure (nothing below it can be
        secure without a trust anchor), else what its servers' SOA says."""
        find = getattr(it, "find_zone", None)
        if find is None:
            return it.zone_of(name)
        now = it.clock()
        for cur in _up(name):
            if cur in self.anchors:
                break
            e = self.zones.get(cur)
            if e is not None and e.status == INSECURE and e.expires >= now:
                return cur
        return (yield from find(name))

    def validate(self, res, it):
        """Generator run by the iterator: returns ``res`` (or a refetched Result) with
        ``security``, and for bogus data ``reason``/``ede`` set."""
        if res.rcode not in (NOERROR, NXDOMAIN):
            return res
        if self.below_insecure_point(it.qname) and not any(
                r[1] in (CNAME, DNAME) for r in res.answer):
            res.security = INSECURE
            self.stats.insecure += 1
            return res
        key = (it.qname.lower(), it.qtype)
        now = it.clock()
        hit = self.bogus.get(key)
        if hit is not None:
            if hit[0] >= now:
                self.stats.bogus_cached += 1
                return self._mark_bogus(res, hit[1], hit[2])
            del self.bogus[key]
        ctx = Counter()
        restarts = 0
        try:
            while True:
                try:
                    res, status = yield from self._validate(res, it, ctx, refetch=True)
                    break
                except Bogus as exc:
                    again = yield from self._elsewhere(it, res, exc, restarts)
                    if again is None:
                        raise
                    restarts += 1
                    res = again
        except Bogus as exc:
            self.bogus[key] = (it.clock() + self.limits.dnssec_bogus_ttl, str(exc), exc.ede)
            while len(self.bogus) > 10000:
                self.bogus.popitem(last=False)
            if log.isEnabledFor(logging.DEBUG):  # query-level detail (verbosity 3)
                log.debug("BOGUS %s/%d: %s", to_text(it.qname), it.qtype, exc)
            self._keep_briefly(it, res)
            return self._mark_bogus(res, str(exc), exc.ede)
        finally:
            self.stats.sig_checks += ctx.sig_checks
            self.stats.nsec3_hashes += ctx.nsec3_hashes
            self.stats.suspends += ctx.suspends
        res.security = status
        if status == SECURE:
            # data proven only by what is already in the cache (synthesis from validated
            # NSEC ranges) has no signature of its own here: no life past its TTL
            res.valid_for = (max(0.0, ctx.valid_until - self.wallclock()) if ctx.valid_until
                             else 0.0)
            self.stats.secure += 1
        else:
            self.stats.insecure += 1
        return res

    def _elsewhere(self, it, res, exc: Bogus, restarts: int):
        """Generator: the question answered again by the other servers of the zone whose data
        ``exc`` found bogus (RFC 4035 5.5: a validator should try the zone's other servers
        before it gives up; Unbound restarts with the bad servers blacklisted, Knot Resolver
        likewise), or None when there is no other server to ask. The servers that sent it
        are marked for the zone (``Iterator.avoid``), so the next attempt and the questions
        after it ask the others first; what they sent is forgotten (below VALIDATED only).
        Every attempt runs in the question's budgets: its upstream queries
        (``max_upstream_queries``), its time (``max_query_time``) and its signature checks
        (the one ``Counter``); at most ``val_max_restart`` attempts. A verdict kept
        from an earlier question, unreachable servers, or a resolver without the iterator's
        server choice (forwarders) end it at once."""
        blame = getattr(exc, "blame", None)
        avoid = getattr(it, "avoid", None)
        if (not blame or avoid is None or exc.ede == EDE_NO_REACHABLE_AUTHORITY
                or restarts >= self.limits.val_max_restart):
            return None
        name, rdtype = blame
        zone = it.zone_of(parent(name) if rdtype == DS and len(name) > 1 else name)
        if not avoid(zone, rdtype == DNSKEY):
            return None
        self._forget(it, res, name, rdtype, zone)
        self.stats.retries += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("bogus %s/%d from %s's servers: asking its others", to_text(name),
                      rdtype, to_text(zone))
        again = yield from it.lookup(it.qname, it.qtype)
        if again.rcode not in (NOERROR, NXDOMAIN):
            return None
        return again

    def _forget(self, it, res, name: bytes, rdtype: int, zone: bytes) -> None:
        """What a bogus attempt left, so that the next one asks again: the answer's rrsets,
        the bad rrset, the negative entries of the question and of the bad name (each only
        below VALIDATED), the deferred store's share, and the bogus key verdicts of the
        zone and below it."""
        if getattr(it, "deferred", None):
            it.deferred = []
        it.validated = None
        lru = it.cache.rrsets.lru
        keys = [(g[0].lower(), g[1], it.qclass) for g in _group(res.answer)]
        keys.append((name.lower(), rdtype, it.qclass))
        for key in keys:
            e = lru.peek(key)
            if e is not None and e.rank < C.VALIDATED:
                lru.pop(key)
        for n, t in ((it.qname, it.qtype), (name, rdtype)):
            for nx in (False, True):
                for e in self._negative_entries(it, n, t, nx):
                    if e.rank < C.VALIDATED:
                        lru.pop((e.name.lower(), e.rdtype, e.rdclass))
        for cur in set(_up(name)) | set(_up(it.qname)):
            e = self.zones.get(cur)
            if e is not None and e.status == BOGUS and is_subdomain(cur, zone):
                del self.zones[cur]

    def _keep_briefly(self, it, res) -> None:
        """A bogus answer is kept no longer than its verdict (``dnssec_bogus_ttl``, within
        RFC 9520's five minutes) and never above an authority rank: its rrsets and the
        negative entries for the name asked expire with the verdict (those below VALIDATED:
        a proven entry stays), and so does what of it the deferred store will store. The
        next query after that asks the servers again, so forged data cannot keep a name
        failing for the TTL its forger chose, and a genuine answer replaces it."""
        now = it.clock()
        ttl = self.limits.dnssec_bogus_ttl
        until = now + ttl
        it.validated = None
        if getattr(it, "deferred", None):
            it.deferred = [(m, zone, t, [(o, rt, c, min(rttl, ttl), rd)
                                         for (o, rt, c, rttl, rd) in answer])
                           for (m, zone, t, answer) in it.deferred]
        lru = it.cache.rrsets.lru
        for g in _group(res.answer):
            e = lru.peek((g[0].lower(), g[1], it.qclass))
            if e is not None and e.rank < C.VALIDATED:
                e.expires = min(e.expires, until)
        for name in {it.qname.lower(), self._final_name(it.qname, _group(res.answer)).lower()}:
            for e in self._negative_entries(it, name, it.qtype, res.rcode == NXDOMAIN):
                if e.rank < C.VALIDATED:
                    e.expires = min(e.expires, until)

    def synthesize(self, name: bytes, qtype: int, now: float):
        """RFC 8198: ("nx" | "nodata", records) when validated NSEC/NSEC3 ranges in cache
        already prove the answer, or ("answer", proof records, answer records) expanded
        from a validated wildcard; the iterator then asks no one."""
        if self.below_insecure_point(name):
            return None
        if self.nsec_cache is None:
            return None

        def secure(zone: bytes) -> bool:
            e = self.zones.get(zone)
            return e is not None and e.status == SECURE and e.expires >= now

        out = self.nsec_cache.synthesize(name, qtype, now, secure)
        if out is None or (out[0] != "nx" and qtype in (RRSIG, ANY)):
            # no type bitmap holds ANY, and RRSIGs have no RRSIGs of their own: a range
            # proves such a name absent, never that it has no data for them
            return None
        if out[0] == "nx":
            self.stats.aggressive_nxdomain += 1
        else:                   # NODATA, or a wildcard's answer (or CNAME) expanded
            self.stats.aggressive_noerror += 1
        return out

    def _mark_bogus(self, res, reason: str, ede: int):
        self.stats.bogus += 1
        res.security = BOGUS
        res.reason = BOGUS_REASON + reason
        res.ede = ede
        return res

    # ---- the result ------------------------------------------------------------------------
    def _validate(self, res, it, ctx: Counter, refetch: bool):
        qtype = it.qtype
        if qtype == RRSIG and res.rcode == NOERROR and any(r[1] == RRSIG for r in res.answer):
            return res, INSECURE          # signatures have none: returned, never secure
        # (a name or type that is not there is proven so, as for any type)
        status = SECURE
        wild = []
        caps: dict = {}
        # What this answer proves, applied to the cache only once every proof it needs
        # has been checked: key -> (rdatas, sigs, ttl cap, the RRSIG that verified them)
        # (``_mark``).
        marks: dict = {}
        sets = _group(res.answer)
        dnames = [g for g in sets if g[1] == DNAME]
        for owner, rdtype, ttl, rdatas, sigs in sets:
            if rdtype == CNAME and not sigs and _synthesized(owner, rdatas, dnames):
                continue                  # synthesized from a DNAME that is checked itself
            try:
                st, labels, zone = yield from self._rrset(ctx, it, owner, rdtype, rdatas, sigs,
                                                          caps, refetch, marks)
            except _Refetch:
                return (yield from self._refetch(ctx, it, sets))
            status = min(status, st)
            if st == SECURE and labels is None:
                # proven before (VALIDATED in the cache): the answer carries the RRSIGs
                # that proved it, whatever came with it (none, or others), so a DO client
                # gets them with AD
                lo = owner.lower()
                res.answer = [r for r in res.answer if not (
                    r[1] == RRSIG and _covered(r) == rdtype and r[0].lower() == lo)
                ] + self._cached_sigs(it, owner, rdtype)
            if st == SECURE and labels is not None and _expanded(owner, labels):
                wild.append((owner, rdtype, labels, zone))
        if caps and _over_cap(res.answer, caps):
            res.answer = [(o, t, c, min(ttl, caps.get((o.lower(), t), ttl)), rd)
                          for (o, t, c, ttl, rd) in res.answer]
        # a CNAME asked for is the answer itself, not a step to chase (RFC 4035 3.2.3); ANY
        # is answered by whatever the chain's last name holds, each rrset validated (as
        # Unbound does)
        final = it.qname if qtype == CNAME else self._final_name(it.qname, sets)
        negative = res.rcode == NXDOMAIN or not any(
            g[0].lower() == final.lower() and (g[1] == qtype or qtype == ANY) for g in sets)
        if not negative and not wild:
            self._mark(it, marks)
            if status == SECURE and qtype == NS:
                yield from self._prove_additional(ctx, it)
            return res, status
        auth = _group(res.authority)
        if negative and final.lower() in (getattr(it, "aggressive", None) or ()):
            negative = False            # synthesized from NSEC ranges validated before
        if negative:
            st = yield from self._denial(ctx, it, res, final, qtype, auth)
            status = min(status, st)
        for owner, rdtype, labels, zone in wild:
            try:
                proofs = yield from self._proofs(ctx, it, auth, zone)
                if proofs is None:
                    if refetch:
                        # Answer from the rrset cache without its proof: ask again, once.
                        return (yield from self._refetch(ctx, it, sets))
                    raise Bogus("wildcard answer without NSEC/NSEC3 proof", EDE_NSEC_MISSING)
                nsecs, proof = proofs
                st = (denial.nsec_wildcard(nsecs, owner, labels) if nsecs
                      else proof.wildcard(owner, labels))
            except Bogus as exc:
                if getattr(exc, "blame", None) is None:
                    exc.blame = (owner, rdtype)
                raise
            status = min(status, st)
            if st == SECURE:
                if self.nsec_cache is not None:
                    self._remember_wildcard(it, res, owner, labels, zone)
            else:                       # opt-out: proven data, but nothing to vouch for
                marks.pop((owner.lower(), rdtype, it.qclass), None)
        self._mark(it, marks)
        return res, status

    def _prove_additional(self, ctx, it):
        """Generator: Unbound's val-clean-additional for a secure NS answer: the addresses
        of its servers from the reply's additional section (``ns_additional``) that the
        zone's own keys sign are stored VALIDATED, for the answer to carry; the others
        (unsigned, signed by another zone, not verifying, expanded from a wildcard, beyond
        the query's validation budget) are left out and do not change the answer's
        verdict."""
        recs = getattr(it, "ns_additional", None)
        if not recs:
            return
        it.ns_additional = None
        zone = it.qname.lower()
        zk = self._cached_keys(zone, it.clock())
        if zk is None or zk.status != SECURE:
            return
        wall = self.wallclock()
        now = it.clock()
        for owner, rdtype, ttl, rdatas, sigs in _group(recs):
            signer = _signer(sigs)
            if signer is None or signer.lower() != zone:
                continue
            try:
                if self._charge(ctx):
                    yield SUSPEND
            except Bogus:
                return                  # the query's budget is spent: the rest left out
            try:
                sig = self._verify(owner, rdtype, it.qclass, rdatas, sigs, signer, zk.keys,
                                   wall, ctx, zk.algorithms)
            except Bogus:
                continue
            if _expanded(owner, sig.labels):
                continue
            ttl = min(ttl, _ttl_cap(sig, wall, self.limits.min_ttl))
            it.cache.rrsets.store_records([(owner, rdtype, it.qclass, ttl, rd) for rd in rdatas],
                                          C.VALIDATED, now, list(sigs))

    @staticmethod
    def _cached_sigs(it, owner: bytes, rdtype: int) -> list:
        e = it.cache.rrsets.lru.peek((owner.lower(), rdtype, it.qclass))
        if e is None or not e.rrsigs:
            return []
        return e.sig_records(it.clock())

    def _mark(self, it, marks: dict) -> None:
        """Records the answer's proven rrsets as VALIDATED: in the cache when they are there
        with the same rdata (with the signatures that proved them, so a DO client gets
        them), else for the deferred store (``Iterator.validated``), which applies them once
        it has stored the answer. Called only once the whole answer's proofs are checked."""
        if not marks:
            return
        now = it.clock()
        rrsets = it.cache.rrsets
        deferred = getattr(it, "deferred", None)
        for key, (rdatas, sigs, cap, verified) in marks.items():
            e = rrsets.lru.peek(key)
            if e is not None and e.negative is None and set(e.rdatas) == set(rdatas):
                if any(r[4] == verified for r in e.rrsigs):
                    e.rank = C.VALIDATED
                    e.expires = min(e.expires, now + cap)
                    continue
                # proven with signatures the entry does not hold (glue, a referral's
                # copy): stored again with them
                ttl = min(e.ttl, cap)
                rrsets.store_records([(key[0], key[1], key[2], ttl, rd) for rd in rdatas],
                                     C.VALIDATED, now, list(sigs))
            elif e is None and deferred:
                if it.validated is None:
                    it.validated = {}
                it.validated[key] = (set(rdatas), cap, verified)

    def _refetch(self, ctx, it, sets: list):
        """Forgets the answer's rrsets and resolves the question again, once: for data the
        cache holds without what proves it (a referral's DS without RRSIGs, a wildcard
        answer without its NSEC)."""
        for g in sets:
            it.cache.rrsets.lru.pop((g[0].lower(), g[1], it.qclass))
        res2 = yield from it.lookup(it.qname, it.qtype)
        if res2.rcode not in (NOERROR, NXDOMAIN):
            raise Bogus("the answer could not be fetched again with its proofs",
                        EDE_RRSIGS_MISSING)
        return (yield from self._validate(res2, it, ctx, refetch=False))

    @staticmethod
    def _final_name(qname: bytes, sets: list) -> bytes:
        cur = qname
        for _ in range(len(sets) + 1):
            nxt = None
            for g in sets:
                if g[1] == CNAME and g[0].lower() == cur.lower() and g[3]:
                    nxt = g[3][0]
                    break
            if nxt is None:
                return cur
            cur = nxt
        return cur

    def _rrset(self, ctx, it, owner: bytes, rdtype: int, rdatas: list, sigs: list,
               caps: dict | None = None, refetch: bool = False, marks: dict | None = None):
        return (yield from _blaming(self._rrset_of(ctx, it, owner, rdtype, rdatas, sigs, caps,
                                                   refetch, marks), owner, rdtype))

    def _rrset_of(self, ctx, it, owner: bytes, rdtype: int, rdatas: list, sigs: list,
                  caps: dict | None = None, refetch: bool = False, marks: dict | None = None):
        """(status, RRSIG labels or None, zone) for one answer rrset; Bogus raised. A secure
        rrset's TTL is capped (in ``caps`` and in the cache) by its RRSIG's original TTL and
        expiration (RFC 4035 5.3.3). What is proven goes into ``marks`` for the caller to
        apply once the rest of the answer's proofs (a wildcard's, a denial's) are checked;
        without ``marks`` (a DS of the chain of trust) it is applied at once, and a DS
        expanded from a wildcard is bogus (a delegation is never a wildcard's)."""
        if self.below_insecure_point(parent(owner) if rdtype == DS else owner):
            return INSECURE, None, None
        key = (owner.lower(), rdtype, it.qclass)
        e = it.cache.rrsets.lru.peek(key)
        if (e is not None and e.rank == C.VALIDATED and e.negative is None
                and set(e.rdatas) == set(rdatas)):
            # VALIDATED only once everything its verdict needed was checked (``_mark``),
            # a wildcard expansion's proof included: nothing to check again. Its lifetime
            # stops at its signature's expiration.
            ctx.rely_until(self.wallclock() + max(0.0, e.expires - it.clock()))
            return SECURE, None, None
        signer = _signer(sigs)
        if signer is None or not is_subdomain(owner, signer) or (
                rdtype == DS and len(signer) >= len(owner)):
            zone = yield from self._zone_of(it, parent(owner) if rdtype == DS else owner)
            zk = yield from self._zone_keys(ctx, it, zone)
            if zk.status == INSECURE:
                return INSECURE, None, zone
            if refetch and e is not None and e.rank < C.AUTH_ANSWER:
                raise _Refetch()          # e.g. a DS from a referral: ask its zone for it
            cut = yield from self._insecure_cut(ctx, it, zone,
                                                parent(owner) if rdtype == DS else owner)
            if cut is not None:
                return INSECURE, None, cut
            self.stats.rrsets_bogus += 1
            raise Bogus(f"no usable RRSIG over {to_text(owner)}/{rdtype} in a signed zone",
                        EDE_RRSIGS_MISSING)
        zk = self._cached_keys(signer.lower(), it.clock())
        if zk is None:
            zk = yield from self._zone_keys(ctx, it, signer)
        if zk.status == INSECURE:
            return INSECURE, None, signer
        if self._charge(ctx):
            yield SUSPEND
        wall = self.wallclock()
        sig = self._verify(owner, rdtype, it.qclass, rdatas, sigs, signer, zk.keys, wall,
                           ctx, zk.algorithms)
        if label_count(owner) - label_count(signer) > 1:
            # RFC 4035 5.3.1: the signer must be the zone that holds the rrset; a signature
            # by an ancestor over data below a zone cut proves nothing
            inner = b"\x01*" + strip_to(owner, sig.labels) if _expanded(owner, sig.labels) \
                else owner
            if (yield from self._clear_between(ctx, it, signer, inner)) == INSECURE:
                return INSECURE, None, signer
        cap = _ttl_cap(sig, wall, self.limits.min_ttl)
        if caps is not None:
            caps[(owner.lower(), rdtype)] = cap
        verified = next((r[4] for r in sigs if r[4].endswith(sig.signature)), None)
        proven = {key: (rdatas, sigs, cap, verified)}
        if marks is not None:
            marks.update(proven)
        elif _expanded(owner, sig.labels):
            raise Bogus(f"{to_text(owner)}/{rdtype} expanded from a wildcard", EDE_BOGUS)
        else:
            self._mark(it, proven)
        return SECURE, sig.labels, signer

    def _verify(self, owner: bytes, rdtype: int, rdclass: int, rdatas: list, sigs: list,
                signer: bytes, keys: list, wall: float, ctx, algorithms: tuple):
        """``verify_rrset`` for an answer, authority or DS rrset (``algorithms``: its
        zone's, ``ZoneKeys.algorithms``): one found bogus is counted
        (``stats.rrsets_bogus``) and its Bogus raised."""
        try:
            return verify_rrset(owner, rdtype, rdclass, rdatas, sigs, signer, keys, wall,
                                self.limits, ctx, algorithms)
        except Bogus:
            self.stats.rrsets_bogus += 1
            raise

    def _proofs(self, ctx, it, auth: list, zone: bytes):
        """The NSEC or NSEC3 records of ``zone`` in ``auth``, each signature-checked with the
        zone's keys (and its SOA, when there): (nsecs, None) or ([], Nsec3Proof); None when
        there are none."""
        zk = self._cached_keys(zone.lower(), it.clock())
        if zk is None:
            zk = yield from self._zone_keys(ctx, it, zone)
        nsecs, nsec3s = [], []
        for owner, rdtype, ttl, rdatas, sigs in auth:
            if rdtype == SOA and owner.lower() == zone.lower():
                if self._charge(ctx):
                    yield SUSPEND
                self._verify(owner, rdtype, it.qclass, rdatas, sigs, zone, zk.keys,
                             self.wallclock(), ctx, zk.algorithms)
                continue
            if rdtype not in (NSEC, NSEC3) or not is_subdomain(owner, zone):
                continue
            if self._charge(ctx):
                yield SUSPEND
            self._verify(owner, rdtype, it.qclass, rdatas, sigs, zone, zk.keys,
                         self.wallclock(), ctx, zk.algorithms)
            try:
                for rd in rdatas:
                    if rdtype == NSEC:
                        nsecs.append(denial.Nsec(owner, rd))
                    else:
                        nsec3s.append(denial.Nsec3(owner, rd))
            except (ValueError, IndexError, struct_error) as exc:
                raise Bogus(f"malformed NSEC/NSEC3 record: {exc}") from None
        if nsecs:
            return nsecs, None
        if nsec3s:
            return [], denial.Nsec3Proof(nsec3s, zone, self.limits, ctx)
        return None

    @staticmethod
    def _negative_entries(it, name: bytes, qtype: int, nx: bool):
        """Cached negative entries that may have supplied this denial: the name's own, or an
        ancestor's NXDOMAIN (RFC 8020)."""
        rr = it.cache.rrsets.lru
        out = [rr.peek((name.lower(), C.NXDOMAIN_TYPE if nx else qtype, it.qclass))]
        anc = name
        while nx and len(anc) > 1:
            anc = parent(anc)
            out.append(rr.peek((anc.lower(), C.NXDOMAIN_TYPE, it.qclass)))
        return [e for e in out if e is not None and e.negative is not None]

    def _denial(self, ctx, it, res, name: bytes, qtype: int, auth: list):
        return (yield from _blaming(self._denial_of(ctx, it, res, name, qtype, auth),
                                    name, qtype))

    def _denial_of(self, ctx, it, res, name: bytes, qtype: int, auth: list):
        """Status of a NODATA/NXDOMAIN for ``name``/``qtype`` from its authority section.
        A denial that a cached negative entry already proved (same records, VALIDATED rank)
        is not checked again."""
        nx = res.rcode == NXDOMAIN
        seen = {(r[0].lower(), r[1], r[4]) for r in res.authority}
        entries = self._negative_entries(it, name, qtype, nx) if seen else []
        for e in entries:
            if e.rank == C.VALIDATED and {(r[0].lower(), r[1], r[4]) for r in e.soa} == seen:
                ctx.rely_until(self.wallclock() + max(0.0, e.expires - it.clock()))
                return SECURE
        st = yield from self._check_denial(ctx, it, res, name, qtype, auth)
        if st == SECURE:
            # proven until the earliest signature of the proof expires (RFC 4035 5.3.3)
            left = (max(0.0, ctx.valid_until - self.wallclock()) if ctx.valid_until
                    else 0.0)
            for e in entries:
                if {(r[0].lower(), r[1], r[4]) for r in e.soa} == seen:
                    e.rank = C.VALIDATED
                    e.expires = min(e.expires, it.clock() + left)
        return st

    def _check_denial(self, ctx, it, res, name: bytes, qtype: int, auth: list):
        if self.below_insecure_point(parent(name) if qtype == DS else name):
            return INSECURE
        signer = None
        for g in auth:
            if g[1] in (SOA, NSEC, NSEC3):
                signer = _signer(g[4])
                if signer is not None:
                    break
        if signer is None or not is_subdomain(name, signer):
            zone = yield from self._zone_of(it, parent(name) if qtype == DS else name)
            zk = yield from self._zone_keys(ctx, it, zone)
            if zk.status == INSECURE:
                return INSECURE
            cut = yield from self._insecure_cut(ctx, it, zone,
                                                parent(name) if qtype == DS else name)
            if cut is not None:
                return INSECURE
            raise Bogus("negative answer without signed NSEC/NSEC3 in a signed zone",
                        EDE_NSEC_MISSING)
        zk = self._cached_keys(signer.lower(), it.clock())
        if zk is None:
            zk = yield from self._zone_keys(ctx, it, signer)
        if zk.status == INSECURE:
            return INSECURE
        proofs = yield from self._proofs(ctx, it, auth, signer)
        if proofs is None:
            raise Bogus("negative answer without NSEC/NSEC3", EDE_NSEC_MISSING)
        nsecs, proof = proofs
        if res.rcode == NXDOMAIN:
            st = denial.nsec_nxdomain(nsecs, name) if nsecs else proof.nxdomain(name)
        else:
            st = denial.nsec_nodata(nsecs, name, qtype) if nsecs else proof.nodata(name, qtype)
        if st == SECURE and self.nsec_cache is not None:
            self._remember_ranges(it, signer, auth)
        return st

    def _remember_ranges(self, it, zone: bytes, auth: list, denial_proof: bool = True) -> None:
        """Keeps the proof's NSEC/NSEC3 records for RFC 8198 synthesis, for as long as the
        negative answer itself may be cached (RFC 8198 5: min of the SOA TTL, its MINIMUM,
        the record's TTL). A wildcard answer's proof (``denial_proof`` false) has no SOA:
        its records are kept for their own TTL, capped like negative answers."""
        lz = zone.lower()
        soa, cap = [], self.limits.max_negative_ttl
        if denial_proof:
            soa_g = next((g for g in auth if g[1] == SOA and g[0].lower() == lz), None)
            if soa_g is None or not soa_g[3] or len(soa_g[3][0]) < 20:
                return
            minimum = int.from_bytes(soa_g[3][0][-4:], "big")
            soa = [(soa_g[0], SOA, it.qclass, soa_g[2], rd) for rd in soa_g[3]] + soa_g[4]
            cap = min(cap, soa_g[2], minimum)
        now = it.clock()
        for owner, rdtype, ttl, rdatas, sigs in auth:
            if rdtype not in (NSEC, NSEC3) or not is_subdomain(owner, zone):
                continue
            expires = now + min(ttl, cap)
            recs = [(owner, rdtype, it.qclass, ttl, rd) for rd in rdatas] + sigs
            for rd in rdatas:
                try:
                    if rdtype == NSEC:
                        self.nsec_cache.add(zone, denial.Nsec(owner, rd), recs, soa, expires)
                    else:
                        self.nsec_cache.add3(zone, denial.Nsec3(owner, rd), recs, soa,
                                             expires)
                except (ValueError, IndexError, struct_error):
                    continue        # checked by the proof already; never kept malformed

    def _remember_wildcard(self, it, res, owner: bytes, labels: int, zone: bytes) -> None:
        """Keeps a validated wildcard expansion's rrset as the wildcard itself (owner
        ``*.<closest encloser>``) for RFC 8198 positive synthesis, with its proof."""
        lo = owner.lower()
        ce = strip_to(owner, labels)
        recs = [r for r in res.answer if r[0].lower() == lo and r[1] != RRSIG]
        if not recs:
            return
        rdtype = recs[0][1]
        recs = [r for r in recs if r[1] == rdtype]
        sigs = [r for r in res.answer if r[0].lower() == lo and r[1] == RRSIG
                and _covered(r) == rdtype]
        ttl = min(r[3] for r in recs)
        wildcard = b"\x01*" + ce
        self.nsec_cache.add_wildcard(
            zone, wildcard, rdtype, [(wildcard, t, c, rt, rd) for (_o, t, c, rt, rd) in recs],
            [(wildcard, t, c, rt, rd) for (_o, t, c, rt, rd) in sigs], it.clock() + ttl)
        self._remember_ranges(it, zone, _group(res.authority), denial_proof=False)

    def _charge(self, ctx: Counter) -> bool:
        """Charges one rrset validation; True every ``dnssec_validations_at_once``, when the
        caller yields SUSPEND before going on."""
        lim = self.limits
        ctx.rrsets += 1
        if ctx.rrsets > lim.dnssec_validations_at_once * (ctx.suspends + 1):
            ctx.suspends += 1
            if ctx.suspends > lim.dnssec_max_suspends:
                raise Bogus("validation budget for one query exhausted (KeyTrap budget)")
            return True
        return False

    # ---- the chain of trust ----------------------------------------------------------------
    def _cached_keys(self, lz: bytes, now: float):
        """The fresh key-cache entry of zone ``lz`` (lower-cased), or None; Bogus raised
        for a zone found bogus."""
        e = self.zones.get(lz)
        if e is None or e.expires < now:
            return None
        self.zones.move_to_end(lz)
        if e.status == BOGUS:
            exc = Bogus(e.reason, e.ede)
            exc.blame = False       # a verdict kept from an earlier question: asked again
            raise exc               # once it expires, not by this one
        return e

    def _zone_keys(self, ctx, it, zone: bytes):
        lz = zone.lower()
        e = self._cached_keys(lz, it.clock())
        if e is not None:
            return e
        self.zones.pop(lz, None)
        try:
            e = yield from self._fetch_keys(ctx, it, zone)
        except Bogus as exc:
            ttl = (self.limits.failure_ttl if exc.ede == EDE_NO_REACHABLE_AUTHORITY
                   else self.limits.dnssec_bogus_ttl)
            until = it.clock() + ttl
            self._store(lz, ZoneKeys(BOGUS, [], until, str(exc), exc.ede))
            self._expire_unproven(it, lz, until)
            raise
        self._store(lz, e)
        return e

    @staticmethod
    def _expire_unproven(it, lz: bytes, until: float) -> None:
        """The zone's key set, DS set and delegation (NS), as the cache holds them unproven,
        live no longer than the zone's bogus verdict (Unbound's ``val-bogus-ttl``): a forged
        key set, or a forged referral to a zone that is not one, sent with a TTL of a day
        would otherwise keep the names below failing after the genuine servers answer
        again; the next question after the verdict fetches them anew."""
        lru = it.cache.rrsets.lru
        for rdtype in (DNSKEY, DS, NS):
            e = lru.peek((lz, rdtype, it.qclass))
            if e is not None and e.rank < C.VALIDATED and e.expires > until:
                e.expires = until

    def _key(self, rdata: bytes) -> Key:
        """The Key of a DNSKEY rdata, kept (``limits.dnssec_key_cache_keys``, LRU) so that a
        zone's key set fetched again reuses the public keys already loaded. Keyed by the
        whole rdata: a rolled or changed key is never taken for the old one. ValueError for
        rdata too short to be a DNSKEY."""
        k = self.keys.get(rdata)
        if k is not None:
            self.keys.move_to_end(rdata)
            return k
        k = self.keys[rdata] = Key(rdata)
        while len(self.keys) > self.limits.dnssec_key_cache_keys:
            self.keys.popitem(last=False)
        return k

    def _store(self, lz: bytes, e: ZoneKeys) -> None:
        self.zones[lz] = e
        self.zones.move_to_end(lz)
        while len(self.zones) > self.limits.dnssec_key_cache_zones:
            self.zones.popitem(last=False)

    def _ttl(self, ttl: int) -> int:
        return max(self.limits.min_ttl, min(ttl, self.limits.max_ttl))

    def _fetch_keys(self, ctx, it, zone: bytes):
        return (yield from _blaming(self._keys_of(ctx, it, zone), zone, DS))

    def _keys_of(self, ctx, it, zone: bytes):
        lz = zone.lower()
        now = it.clock()
        anchor = self.anchors.get(lz)
        if anchor is None and self.below_insecure_point(lz):
            return ZoneKeys(INSECURE, [], now + self.limits.max_ttl)
        if anchor is not None:
            ds = usable_ds(anchor.ds)
            keys = [k for k in anchor.dnskey if k.algorithm in SUPPORTED_ALGORITHMS]
            if not ds and not keys:
                return ZoneKeys(INSECURE, [], now + self.limits.max_ttl)
            return (yield from self._dnskeys(ctx, it, zone, ds, keys))
        if not any(is_subdomain(zone, a) for a in self.anchors) or lz == ROOT:
            return ZoneKeys(INSECURE, [], now + self.limits.max_ttl)
        proof = getattr(it, "referral_proof", None)
        proof = proof(zone) if proof is not None else None
        if proof:
            # RFC 4035 5.2, RFC 5155 8.9: the referral's signed NSEC/NSEC3 proves the
            # child has no DS; the parent is asked only when it proves nothing
            try:
                return (yield from self._no_ds(ctx, it, zone, _group(proof), now))
            except Bogus:
                pass
        ds_set = None
        for attempt in (0, 1):
            res = yield from it.lookup(zone, DS)
            if res.rcode == SERVFAIL:
                raise Bogus(f"no DS answer for {to_text(zone)}: {res.reason}",
                            EDE_NO_REACHABLE_AUTHORITY)
            ds_set = next((g for g in _group(res.answer) if g[1] == DS and g[0].lower() == lz),
                          None)
            if ds_set is None or ds_set[4] or attempt:
                break
            # A DS kept from a referral that came without its RRSIGs: ask the parent for it.
            it.cache.rrsets.lru.pop((lz, DS, it.qclass))
        if ds_set is not None:
            st, _labels, _z = yield from self._rrset(ctx, it, zone, DS, ds_set[3], ds_set[4])
            if st == INSECURE:
                return ZoneKeys(INSECURE, [], now + self._ttl(ds_set[2]))
            ds = []
            for rd in ds_set[3]:
                try:
                    ds.append(dns.rdata.from_wire(dns.rdataclass.IN, DS, rd, 0, len(rd)))
                except dns.exception.DNSException:
                    continue
            ds = usable_ds(ds)
            if not ds:       # RFC 6840 5.2: only unknown algorithms or digests: insecure
                return ZoneKeys(INSECURE, [], now + self._ttl(ds_set[2]))
            return (yield from self._dnskeys(ctx, it, zone, ds, []))
        # No DS: proven absent (an insecure delegation) or bogus.
        auth = _group(res.authority)
        if res.rcode == NXDOMAIN:
            st = yield from self._denial(ctx, it, res, zone, DS, auth)
            if st == INSECURE or self.configured_view(zone):
                # A zone the public tree denies, served by configured servers: no DS can
                # lead to it, so nothing there can be proven secure.
                return ZoneKeys(INSECURE, [], now + self.limits.max_negative_ttl)
            raise Bogus(f"{to_text(zone)} signs data but does not exist", EDE_DNSKEY_MISSING)
        return (yield from self._no_ds(ctx, it, zone, auth, now))

    def _insecure_cut(self, ctx, it, zone: bytes, name: bytes):
        """Generator: the insecure delegation between the signed ``zone`` and ``name`` that
        the iterator never saw, or None. A server of both a signed parent and its unsigned
        child (a hosting provider's) answers for the child with AA and no referral, so the
        child's unsigned data seems to be the parent's. As Unbound's validator does, the DS
        of each name below the apex down to ``name`` is asked for (``_cut_at``): the
        parent's signed denial of it proves either no cut there (go on) or an unsigned
        delegation (the data is insecure); a DS, a name that does not exist or an answer
        that proves nothing leaves the data bogus. The DS questions run in the question's
        budgets."""
        if len(name) <= len(zone) or not is_subdomain(name, zone):
            return None
        for k in range(label_count(zone) + 1, label_count(name) + 1):
            cut = strip_to(name, k)
            st = yield from self._cut_at(ctx, it, zone, cut)
            if st == INSECURE:
                return cut
            if st != SECURE:
                return None
        return None

    def _clear_between(self, ctx, it, zone: bytes, name: bytes):
        """Generator: what lies strictly between the signed ``zone`` and ``name`` below it:
        SECURE when ``zone``'s signed denials of DS show no zone cut there, INSECURE when
        they show an unsigned delegation (everything below it is unsigned); Bogus raised
        when a name between holds a DS or nothing is proven. A signature or a denial by
        ``zone`` speaks for ``name`` only when ``zone`` is the zone that holds it: below a
        signed cut the child's keys speak, never an ancestor's (RFC 4035 5.3.1, RFC 6840
        4.1). So a proof signed further up is believed only once the cuts between are
        known, as Unbound finds the cuts between a trust anchor and a signer."""
        for k in range(label_count(zone) + 1, label_count(name)):
            cut = strip_to(name, k)
            st = yield from self._cut_at(ctx, it, zone, cut)
            if st == INSECURE:
                return INSECURE
            if st != SECURE:
                raise Bogus(f"{to_text(name)} lies below {to_text(cut)}, a signed zone cut "
                            f"under its signer {to_text(zone)}", EDE_BOGUS)
        return SECURE

    def _cut_at(self, ctx, it, zone: bytes, cut: bytes):
        """Generator: what the signed ``zone`` says of a zone cut at ``cut`` (a name below
        it), from its signed denial of ``cut``/DS: INSECURE for a delegation without DS,
        SECURE for no delegation there; None for a DS (a signed child), a denial signed by
        another zone, or nothing proven. Found cuts are kept with the zone keys and names
        that are no cut in ``no_cuts``, for the denial's TTL, so the next answer costs no
        query."""
        lc = cut.lower()
        now = it.clock()
        e = self.zones.get(lc)
        if e is not None and e.expires >= now:
            return INSECURE if e.status == INSECURE else None
        until = self.no_cuts.get(lc)
        if until is not None:
            if until >= now:
                return SECURE
            del self.no_cuts[lc]
        res = yield from it.lookup(cut, DS)
        if res.rcode != NOERROR or any(g[1] == DS for g in _group(res.answer)):
            return None
        auth = _group(res.authority)
        signer = next((s for s in (_signer(g[4]) for g in auth
                                   if g[1] in (SOA, NSEC, NSEC3)) if s is not None), None)
        if signer is None or signer.lower() != zone.lower():
            return None
        try:
            pk = yield from self._zone_keys(ctx, it, signer)
            if pk.status != SECURE:
                return None
            proofs = yield from self._proofs(ctx, it, auth, signer)
            if proofs is None:
                return None
            nsecs, proof = proofs
            st = denial.nsec_cut(nsecs, cut) if nsecs else proof.cut(cut)
        except Bogus:
            return None
        cap = self.limits.max_negative_ttl
        until = now + min(self._ttl(min([g[2] for g in auth] or [cap])), cap)
        if st == INSECURE:
            self._store(lc, ZoneKeys(INSECURE, [], until))
        elif st == SECURE:
            self.no_cuts[lc] = until
            self.no_cuts.move_to_end(lc)
            while len(self.no_cuts) > self.limits.dnssec_key_cache_zones:
                self.no_cuts.popitem(last=False)
        return st

    def _no_ds(self, ctx, it, zone: bytes, auth: list, now: float):
        """INSECURE zone keys when ``auth`` (grouped) proves ``zone`` a delegation without
        DS under its parent's keys, or its parent insecure; Bogus raised otherwise."""
        signer = next((s for s in (_signer(g[4]) for g in auth if g[1] in (SOA, NSEC, NSEC3))
                       if s is not None), None)
        if signer is None or not is_subdomain(zone, signer) or len(signer) >= len(zone):
            pz = yield from self._zone_of(it, parent(zone))
            pk = yield from self._zone_keys(ctx, it, pz)
            if pk.status == INSECURE:
                return ZoneKeys(INSECURE, [], now + self.limits.max_negative_ttl)
            raise Bogus(f"no signed proof that {to_text(zone)} has no DS", EDE_NSEC_MISSING)
        pk = yield from self._zone_keys(ctx, it, signer)
        if pk.status == INSECURE:
            return ZoneKeys(INSECURE, [], now + self.limits.max_negative_ttl)
        proofs = yield from self._proofs(ctx, it, auth, signer)
        if proofs is None:
            raise Bogus(f"no NSEC/NSEC3 proves {to_text(zone)} has no DS", EDE_NSEC_MISSING)
        nsecs, proof = proofs
        if nsecs:
            denial.nsec_no_ds(nsecs, zone)
        else:
            proof.no_ds(zone)
        # only the zone just above the cut speaks for its DS: with a signed zone between,
        # this denial is not that zone's (``_clear_between`` raises Bogus)
        yield from self._clear_between(ctx, it, signer, zone)
        ttl = min([g[2] for g in auth] or [self.limits.max_negative_ttl])
        return ZoneKeys(INSECURE, [], now + min(self._ttl(ttl), self.limits.max_negative_ttl))

    def _dnskeys(self, ctx, it, zone: bytes, ds_list: list, anchor_keys: list):
        """The zone's DNSKEY set, proven by a DS (or an anchor key) and its self-signature."""
        return (yield from _blaming(self._dnskey_set(ctx, it, zone, ds_list, anchor_keys),
                                    zone, DNSKEY))

    def _dnskey_set(self, ctx, it, zone: bytes, ds_list: list, anchor_keys: list):
        lz = zone.lower()
        res = yield from it.lookup(zone, DNSKEY)
        if res.rcode == SERVFAIL:
            raise Bogus(f"no DNSKEY answer for {to_text(zone)}: {res.reason}",
                        EDE_NO_REACHABLE_AUTHORITY)
        sets = _group(res.answer)
        g = next((g for g in sets if g[1] == DNSKEY and g[0].lower() == lz), None)
        if g is None:
            raise Bogus(f"{to_text(zone)} has a DS but no DNSKEY", EDE_DNSKEY_MISSING)
        keys = []
        for rd in g[3]:
            try:
                keys.append(self._key(rd))
            except ValueError:
                continue
        lim = self.limits
        needs: tuple = ()
        if self.harden_algo_downgrade:
            # as Unbound's: the DS records of the strongest digest they use, and every key
            # algorithm those and the anchor's keys name, each proven on its own
            strongest = max([ds.digest_type for ds in ds_list], default=None)
            ds_list = [ds for ds in ds_list if ds.digest_type == strongest]
            needs = tuple(sorted({ds.algorithm for ds in ds_list}
                                 | {k.algorithm for k in anchor_keys}))
        sep: list[Key] = []
        failures = 0
        for ds in ds_list:
            cands = [k for k in keys if k.tag == ds.key_tag and k.algorithm == ds.algorithm]
            for k in cands[:lim.dnssec_max_key_tag_collisions]:
                if ds_matches(ds, k, zone):
                    if k not in sep:
                        sep.append(k)
                else:
                    failures += 1
                    if failures > lim.dnssec_max_ds_match_failures:
                        raise Bogus(f"more than {lim.dnssec_max_ds_match_failures} DNSKEYs of "
                                    f"{to_text(zone)} fail their DS digest", EDE_DNSKEY_MISSING)
        wires = {a.to_digestable() for a in anchor_keys}
        sep += [k for k in keys if k.wire in wires and k not in sep]
        sep = [k for k in sep if k.signs_zone()]
        if not sep:
            raise Bogus(f"no DNSKEY of {to_text(zone)} matches its DS", EDE_DNSKEY_MISSING)
        if self._charge(ctx):
            yield SUSPEND
        wall = self.wallclock()
        sig = verify_rrset(zone, DNSKEY, it.qclass, g[3], g[4], zone, sep, wall, lim, ctx,
                           needs)
        zone_keys = [k for k in keys if k.signs_zone() and k.algorithm in SUPPORTED_ALGORITHMS]
        e = it.cache.rrsets.lru.peek((lz, DNSKEY, it.qclass))
        if e is not None and e.negative is None and set(e.rdatas) == set(g[3]):
            # only the keys just proven: the entry may have been replaced while suspended
            e.rank = C.VALIDATED
        return ZoneKeys(SECURE, zone_keys,
                        it.clock() + min(self._ttl(g[2]),
                                         _ttl_cap(sig, wall, self.limits.min_ttl)),
                        algorithms=needs)

    def flush(self, name: bytes | None = None) -> None:
        """Forget zone keys and bogus verdicts (all, or those of ``name``)."""
        if self.nsec_cache is not None:
            self.nsec_cache.flush()
        if name is None:
            self.zones.clear()
            self.bogus.clear()
            self.keys.clear()
            self.no_cuts.clear()
            return
        lname = name.lower()
        self.zones.pop(lname, None)
        self.no_cuts.pop(lname, None)
        for k in [k for k in self.bogus if k[0] == lname]:
            del self.bogus[k]


__all__ = ["Validator", "Suspend", "SUSPEND", "ZoneKeys", "Bogus",
           "UNCHECKED", "INSECURE", "SECURE", "BOGUS"]
