# cython: language_level=3
"""The recursive algorithm: :class:`Iterator` resolves one question (``resolver.iterator``
documents the state machine and re-exports it). It is compiled so that its generator frames,
attribute reads, cache look-ups and calls into ``resolver.iterator.replies`` cost C
operations rather than bytecode: they are most of a cache miss's Python time. The events
(Query, Reply, ...) are ``resolver.iterator.events``, re-exported by ``resolver.iterator``.
"""
cimport cython
from types import GeneratorType

import logging
from socket import AF_INET, AF_INET6, inet_ntop

from resolver.cache import ranks as C
from resolver.state cimport LimitValues, limit_values, read_clock
from resolver.cache.store cimport (Cache, RRsetCache, RRsetEntry, clamp_ttls,
                                failure, holds_name, keep_proofs, rrset_get,
                                store_records)
from resolver.cache.dicts cimport dict_get
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcmp
from cpython.ref cimport PyObject, Py_XDECREF

cdef extern from "Python.h":
    object PyUnicode_DecodeASCII(const char* s, Py_ssize_t size, const char* errors)
    enum:
        PYGEN_RETURN
    # PySendResult: PYGEN_RETURN (0, ``out`` is the return value), PYGEN_NEXT (1, ``out`` is
    # the yielded value) or PYGEN_ERROR (-1, an exception is set)
    int PyIter_Send(object iterator, object arg, PyObject** out) except -1
from resolver.wire.names cimport lower
from resolver.wire.codec cimport Parsed, parse_response
from resolver.cache.infra cimport InfraCache, ServerInfo
from resolver.wire.codec cimport (dname_substitute, is_subdomain, label_count,
                                  same_name as _same_name, strip_to)
from resolver.iterator.replies cimport (answer_chain, count_type, glue as _glue,
                                 has_soa as _has_soa_in,
                                 in_zone as _in_zone, is_lame as _is_lame_ref,
                                 owned as _owned, referral as _referral,
                                 split_sigs as _split_sigs,
                                 wildcard_expanded as _wildcard_expanded)
from resolver.iterator.events cimport (Failure as CFailure, Query as CQuery, Reply as CReply,
                                      Result as CResult, Timeout as CTimeout, new_query,
                                      new_result)
from resolver.iterator.events import Failure, Query, Result, Timeout
from resolver.iterator.hints import Hints
from resolver.iterator.verdicts import Bogus, SECURE

log = logging.getLogger("resolver.iterator")
from resolver.wire.codec import WireError, to_text

cdef enum:
    A = 1
    NS = 2
    CNAME = 5
    SOA = 6
    AAAA = 28
    DNAME = 39
    DS = 43
    RRSIG = 46
    DNSKEY = 48
    NSEC = 47
    NSEC3 = 50
    ANY = 255
    NOERROR = 0
    SERVFAIL = 2
    NXDOMAIN = 3
    REFUSED = 5
    YXDOMAIN = 6
    NOTAUTH = 9

cdef bytes ROOT = b"\x00"
# the error rcodes' names, as dnspython's resolver reports a server's rcode
cdef dict _RCODES = {1: "FORMERR", 2: "SERVFAIL", 4: "NOTIMP", 5: "REFUSED", 6: "YXDOMAIN",
                     9: "NOTAUTH"}
# The ancestors of the parent of the last name whose ancestors an Iterator listed, shared by
# every Iterator (see Iterator._ancestors).
cdef bytes _last_parent = None
cdef list _last_ancestors = None
cdef int PRIME_TRIES = 2        # queries one priming may send (it delays the query it is in)
cdef tuple _A_AAAA = (1, 28)
cdef tuple _A_ONLY = (1,)
cdef int NONAUTH_ANSWER = C.NONAUTH_ANSWER
cdef int NXDOMAIN_TYPE = C.NXDOMAIN_TYPE
cdef int REFERRAL = C.REFERRAL
cdef int GLUE = C.GLUE
cdef int AUTH_AUTHORITY = C.AUTH_AUTHORITY
cdef int AUTH_ANSWER = C.AUTH_ANSWER
cdef int VALIDATED = C.VALIDATED


cdef inline bytes _parent(bytes name):
    """``wire.parent``: ``name`` without its first label (the root is its own parent)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(name), skip
    if n <= 1:
        return name
    cdef const char* p = PyBytes_AS_STRING(name)
    skip = (<const unsigned char*>p)[0] + 1
    return PyBytes_FromStringAndSize(p + skip, n - skip) if skip < n else b""


cdef inline bint _aa(Parsed m):
    """The reply's AA flag (``Parsed.aa``, read as a C field)."""
    return (m.flags & 0x0400) != 0


class _Exhausted(Exception):
    def __init__(self, reason, time=False):
        super().__init__(reason)
        self.time = time


@cython.freelist(64)
cdef class _Step:
    """What one (qname, qtype) came to: kind is answer | cname | nx | nodata | servfail."""
    def __init__(self, kind, records=None, authority=None, next=None, reason=None):
        _set_step(self, kind, records, authority, next, reason)


cdef int _set_step(_Step s, str kind, list records, list authority, next, reason) except -1:
    s.kind = kind
    s.records = [] if records is None else records
    s.authority = [] if authority is None else authority
    s.next = next
    s.reason = reason
    return 0


cdef _Step _step(str kind, list records, list authority, next=None):
    """``_Step(kind, records, authority, next)`` without a Python call."""
    cdef _Step s = _Step.__new__(_Step)
    _set_step(s, kind, records, authority, next, None)
    return s


@cython.freelist(64)
cdef class Iterator:
    """Resolves one (qname, qtype, qclass) from the closest cached delegation downwards."""

    # fields: algorithm.pxd

    def __init__(self, qname, qtype, qclass, cache, hints, clock, limits=None,
                 minimise=True, ipv6=False, validator=None, stats=None, dnssec=None,
                 ip4=True, no_localhost=True):
        self.setup(qname, qtype, qclass, cache, hints, clock, limits, minimise, ipv6, validator,
                   stats, dnssec, ip4, no_localhost)

    cdef setup(self, bytes qname, int qtype, int qclass, cache, hints, clock, limits,
               bint minimise, bint ipv6, validator, stats, dnssec, bint ip4, bint no_localhost):
        """``__init__``, for the driver (resolver.resolution), which makes its Iterators
        without a Python call."""
        if limits is None:
            from resolver.limits import DEFAULT
            limits = DEFAULT
        self.qname, self.qtype, self.qclass = qname, qtype, qclass
        self.cache = cache
        self.clock = clock
        self.limits = limits
        self.minimise = minimise
        self.ipv6 = ipv6
        self.harden_glue = True
        self.harden_unverified_glue = False
        #: ask authorities at their IPv4 addresses (Unbound's do-ip4; ``ipv6`` is do-ip6)
        self.ip4 = ip4
        #: never send to a loopback address (Unbound's do-not-query-localhost): a zone
        #: must not be able to point this resolver at services on its own host
        self.no_localhost = no_localhost
        self.validator = validator
        #: resolver.dnssec.Validator: checks the final Result (its ``validate`` generator runs
        #: inside this state machine, so its DS/DNSKEY lookups share the query's budget).
        self.dnssec = dnssec
        #: names answered NXDOMAIN/NODATA from validated NSEC ranges (RFC 8198) in this query,
        #: None until the first
        self.aggressive = None
        self.stats = stats
        if not isinstance(hints, Hints):       # the engine passes its own, built once
            hints = Hints(hints, ipv6)
        self.hints = hints
        self.queries = 0
        self.origins = None
        self.t0 = self._now()
        self.bypass = None
        self.stack = ()
        self.deferred = None
        self.validated = None
        self.ns_additional = None
        self.lv = limit_values(limits)
        cdef Cache c = cache
        self._rrsets = c.rrsets
        self._rrdata = c.rrsets.lru.data
        self._infra = c.infra
        self._gen = _lookup(self, qname, qtype, 0)
        self.validating = False
        self.result = None

    @property
    def hint_names(self):
        """The root servers' names from the hints, in their order."""
        return self.hints.names

    @property
    def hint_addrs(self):
        """The hints' addresses: lower-cased root server name -> its addresses."""
        return self.hints.addrs

    # ---- driver API ----------------------------------------------------------------------
    def start(self):
        return self.step(None)

    def feed(self, event):
        return self.step(event)

    def store_deferred(self):
        """Caches what ``_final`` left in ``deferred``, at the validated rank where the
        validator proved it meanwhile (``validated``)."""
        self.store_later()

    cdef int store_later(self) except -1:
        """``store_deferred``."""
        cdef list todo = self.deferred
        if todo:
            self.deferred = []
            for m, zone, now, answer in todo:
                self._cache_answer(m, zone, now, answer)
                if _wildcard_expanded(answer):
                    proofs = _wildcard_proofs(m, zone, answer)
                    if proofs:
                        self._keep_proofs(_Step("answer", answer, clamp_ttls(self.lv, proofs)))
        proved = self.validated
        if proved:
            self.validated = None
            self._mark_validated(proved)
        return 0

    cdef _mark_validated(self, dict proved):
        """Raises the stored rrsets the validator proved (``Validator._mark``: only once
        every proof of the answer was checked) to VALIDATED, their lifetime capped by their
        signatures, as it does itself for rrsets already in the cache; an entry that holds
        other data, or not the signature that proved it, keeps its rank."""
        cdef RRsetEntry e
        cdef double now = self._now()
        for key, verdict in proved.items():
            e = dict_get(self._rrdata, key)
            if (e is not None and e.negative is None and e.rank < VALIDATED
                    and set(e.rdatas) == verdict[0]
                    and any(r[4] == verdict[2] for r in e.rrsigs)):
                e.rank = VALIDATED
                e.expires = min(e.expires, now + verdict[1])

    cdef object step(self, event):
        """The algorithm's next action for ``event``: the running generator's next yield,
        or, when the question is done, its Result (kept as ``result``), taken without a
        StopIteration. Two generators run one after the other, each driven from here (no
        generator around them): ``_lookup`` for the question, then, with a validator and
        a NOERROR or NXDOMAIN result, the validator's ``validate`` of it. Running out of
        budget (``_Exhausted``) in either ends the question in SERVFAIL."""
        cdef PyObject* out = NULL
        cdef int state
        cdef CResult res
        while True:
            try:
                state = PyIter_Send(self._gen, event, &out)
            except _Exhausted as exc:
                self._log_servfail(exc)
                self.result = res = Result(SERVFAIL, reason=str(exc), time_exhausted=exc.time)
                res.errors = self.errors
                return res
            action = <object>out
            Py_XDECREF(out)
            if state != PYGEN_RETURN:
                return action
            res = <CResult?>action
            if (not self.validating and self.dnssec is not None
                    and (res.rcode == NOERROR or res.rcode == NXDOMAIN)):
                self.validating = True
                self._gen = self.dnssec.validate(res, self)
                event = None
                continue
            if res.rcode == SERVFAIL:
                self._log_servfail(res.reason)
                res.errors = self.errors
            res.server = self.answered
            self.result = res
            return res

    cdef _log_servfail(self, reason):
        """The question's SERVFAIL and its reason, a line per question: query-level detail
        (Unbound's verbosity 3), which a flood of failing names must not turn into a line
        each (and the name into text each) at the levels a server runs at."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("SERVFAIL %s/%d: %s", to_text(self.qname), self.qtype, reason)

    cdef double _now(self) except? -1.0:
        return read_clock(self.clock)

    # ---- cache reads ---------------------------------------------------------------------
    cdef RRsetEntry _get(self, bytes name, int rdtype, double now):
        """``RRsetCache.get`` (fresh entries only), without the method call."""
        cdef RRsetEntry e = rrset_get(self._rrsets.lru, lower(name), rdtype, self.qclass)
        if e is None or e.expires < now:
            return None
        return e

    # ---- the algorithm -------------------------------------------------------------------
    def _lookup(self, bytes name, int qtype, int depth):
        """Resolves ``name``/``qtype`` following CNAME/DNAME links; returns a Result."""
        cdef double now = self._now()
        # The records so far and the NSEC/NSEC3 proving wildcard answers, for the validator:
        # the first step's own lists when they are fresh (most questions take one step).
        cdef list answer = None, proofs = None
        cdef bytes cur = name
        cdef long links = 0
        cdef _Step hit
        cdef Py_ssize_t c
        cdef str kind
        cdef tuple outer
        cdef bint fresh             # hit's lists were made for it alone
        cdef list seen = None       # the chain's names so far, once it has a link
        while True:
            key = (lower(cur), qtype, self.qclass)
            why = failure(self.cache, key, now)
            if why is not None:
                return Result(SERVFAIL, answer or [], reason=f"cached failure: {why}")
            hit = self._from_cache(cur, qtype, now)
            fresh = True
            if hit is None and self.dnssec is not None:
                syn = self.dnssec.synthesize(cur, qtype, now)
                if syn is not None:     # (kind, authority[, answer from a wildcard[, the
                                        # target of a wildcard CNAME]])
                    hit = _Step(syn[0], syn[2] if len(syn) > 2 else [], syn[1],
                                syn[3] if len(syn) > 3 else None)
                    fresh = False
                    if self.aggressive is None:
                        self.aggressive = set()
                    self.aggressive.add(lower(cur))
            if hit is None:
                outer = self.stack
                if key in outer:
                    return Result(SERVFAIL, answer or [], reason="cyclic dependency on "
                                  f"{to_text(cur)}/{qtype}")
                self.stack = outer + (key,) if outer else (key,)
                try:
                    hit = yield from _iterate(self, cur, qtype, depth)
                finally:
                    self.stack = outer
                if hit.kind == "servfail":
                    self.cache.remember_failure(key, hit.reason or "failed", self._now())
                    return Result(SERVFAIL, answer or [], reason=hit.reason)
                if hit.authority and (hit.kind == "answer" or hit.kind == "cname"):
                    self._keep_proofs(hit)
            kind = hit.kind
            if answer is None and fresh:
                answer = hit.records
                proofs = hit.authority if kind == "answer" or kind == "cname" else []
            else:
                if answer is None:
                    answer, proofs = [], []
                answer.extend(hit.records)
                if kind == "answer" or kind == "cname":
                    proofs.extend(hit.authority)
            c = count_type(hit.records, CNAME)
            if c:
                links += c
            elif kind == "cname":
                links += 1
            if links > self.lv.max_cname_chain:
                return Result(SERVFAIL, answer, reason="CNAME/DNAME chain longer than "
                              f"{self.limits.max_cname_chain}")
            if kind == "answer":
                return new_result(NOERROR, answer, proofs)
            if kind == "nx":
                return new_result(NXDOMAIN, answer, proofs + hit.authority)
            if kind == "nodata":
                return new_result(NOERROR, answer, proofs + hit.authority)
            if kind == "yx":
                return new_result(YXDOMAIN, answer, [])
            # A link back to a name of the chain is a loop (RFC 1034 3.6.2; DNAMEs that
            # point at each other, RFC 6672): SERVFAIL now rather than at the chain limit.
            if seen is None:
                seen = [lower(name)]
            seen.append(lower(cur))
            cur = hit.next
            if lower(cur) in seen:
                return Result(SERVFAIL, answer, reason=f"CNAME/DNAME loop at {to_text(cur)}")
            now = self._now()

    cdef _keep_proofs(self, _Step hit):
        """Keeps a wildcard answer's proofs with its cached rrsets that were expanded from
        the wildcard (``_from_cache`` returns them with the rrsets); the chain's other
        rrsets (a wildcard CNAME's target) prove nothing with them and keep none."""
        seen = set()
        cdef int covered
        for r in hit.records:
            if r[1] != RRSIG or len(r[4]) < 4 or not _wildcard_expanded([r]):
                continue
            covered = (r[4][0] << 8) | r[4][1]
            key = (lower(r[0]), covered)
            if covered == DNAME or key in seen:
                continue
            seen.add(key)
            keep_proofs(self._rrsets, r[0], covered, self.qclass, hit.authority)

    cdef _Step _from_cache(self, bytes name, int qtype, double now):
        cdef RRsetEntry e = None, neg, nx
        # A name the cache holds nothing for (the question of most misses) is looked up
        # once, not once for each type asked below.
        cdef bint held = holds_name(self._rrsets.lru, lower(name))
        if held:
            e = self._get(name, qtype, now)
            if e is not None and e.negative is None and e.rank >= NONAUTH_ANSWER:
                return _step("answer", e.records(now) + e.sig_records(now),
                             e.proof_records(now))
            # RRsetCache.get_negative, inline: the name's NXDOMAIN, else the type's NODATA
            neg = self._get(name, NXDOMAIN_TYPE, now)
            if neg is None and e is not None and e.negative is not None:
                neg = e
            if neg is not None:
                return _step("nx" if neg.negative == 3 else "nodata", [],
                             neg.negative_records(now))
        # RFC 8020: below a name that does not exist, nothing exists (the root exists).
        for anc in self._ancestors(name):
            nx = self._get(anc, NXDOMAIN_TYPE, now)
            if nx is not None:
                return _step("nx", [], nx.negative_records(now))
        if held and qtype != CNAME:
            e = self._get(name, CNAME, now)
            if e is not None and e.negative is None and e.rank >= NONAUTH_ANSWER and e.rdatas:
                sigs = e.sig_records(now)
                lead = [] if sigs else self._dname_from_cache(name, e.rdatas[0], now)
                return _step("cname", lead + e.records(now)[:1] + sigs,
                             e.proof_records(now), next=e.rdatas[0])
        return None

    cdef list _dname_from_cache(self, bytes name, bytes target, double now):
        """The cached DNAME (with its RRSIGs) that synthesized the unsigned CNAME
        ``name`` -> ``target``, or []: a validator proves such a CNAME by its DNAME, so an
        answer rebuilt from the cache must carry it as the first one did."""
        cdef bytes anc = name
        cdef RRsetEntry d
        while len(anc) > 1:
            anc = _parent(anc)
            d = self._get(anc, DNAME, now)
            if d is not None and d.negative is None and d.rdatas:
                synthesized = name[:len(name) - len(anc)] + d.rdatas[0]
                if lower(synthesized) == lower(target):
                    return d.records(now)[:1] + d.sig_records(now)
                return []
        return []

    def referral_proof(self, bytes zone):
        """The NSEC/NSEC3 records (with their RRSIGs) the referral to ``zone`` carried in
        place of a DS, kept with the parent's NS set while it is cached; [] if none."""
        cdef RRsetEntry e = self._get(zone, NS, self._now())
        if e is None or e.negative is not None or e.rank != REFERRAL or not e.proofs:
            return []
        return [r for r in e.proof_records(self._now()) if r[1] != A and r[1] != AAAA]

    cdef list _parent_glue(self, bytes zone, double now, list out, bytes only=None):
        """Adds to ``out`` the usable addresses the referral to ``zone`` gave as glue (of
        the name ``only``, if given), kept with the parent's NS set while it is cached
        (``_cache_referral``)."""
        cdef RRsetEntry e = self._get(zone, NS, now)
        if e is None or e.negative is not None or e.rank != REFERRAL or not e.proofs:
            return out
        for r in e.proofs:
            if (r[1] == A or r[1] == AAAA) and (only is None or _same_name(r[0], only)):
                a = _addr_text(r[1], r[4])
                if a and a not in out and self._usable(a):
                    out.append(a)
        return out

    cdef list _parent_side(self, bytes zone, tuple nsnames, double now):
        """The parent side's addresses of ``zone``'s servers, for when those their own
        zones give (authoritative, so they replaced the glue in the cache) do not answer
        (RFC 1034 5.3.3; Unbound's parent-side fallback): the glue of the referral to
        ``zone``, and for a server named in another zone, the glue the referral to that
        zone gave for it."""
        cdef list out = self._parent_glue(zone, now, [])
        for ns in nsnames:
            cut = self._closest_delegation(ns)[0]
            if not _same_name(cut, zone):
                self._parent_glue(cut, now, out, ns)
        return out

    def zone_of(self, bytes name):
        """The closest enclosing zone cut the cache knows for ``name`` (the root if none):
        where a validator looks for the keys of data that carries no signature."""
        return self._closest_delegation(name)[0]

    cdef list _ancestors(self, bytes name):
        """``name``'s ancestors above it and below the root, nearest first (not to be
        changed: shared). Kept for the last name asked: the cache's negative-ancestor check
        and the closest delegation walk the same names, and the same objects keep their
        hashes. A sibling of the last name any Iterator asked (most misses are names of a
        zone already known) gets the same list again."""
        global _last_parent, _last_ancestors
        if name is self._ancestors_of:
            return self._ancestors_list
        cdef Py_ssize_t n = PyBytes_GET_SIZE(name), skip
        cdef list out
        cdef bytes anc
        if n > 1 and _last_parent is not None:
            skip = (<const unsigned char*>PyBytes_AS_STRING(name))[0] + 1
            if (n - skip == PyBytes_GET_SIZE(_last_parent)
                    and memcmp(PyBytes_AS_STRING(name) + skip,
                               PyBytes_AS_STRING(_last_parent), n - skip) == 0):
                self._ancestors_of, self._ancestors_list = name, _last_ancestors
                return _last_ancestors
        out = []
        anc = _parent(name)
        while len(anc) > 1:
            out.append(anc)
            anc = _parent(anc)
        self._ancestors_of, self._ancestors_list = name, out
        if out:
            _last_parent, _last_ancestors = out[0], out
        return out

    cdef tuple _closest_delegation(self, bytes name):
        cdef double now = self._now()
        cdef RRsetEntry e
        cdef bytes bypass = self.bypass
        if len(name) > 1:
            e = self._get(name, NS, now)
            if (e is not None and e.negative is None and e.rdatas
                    and (bypass is None or lower(name) != bypass)):
                return name, e.rdatas
            for z in self._ancestors(name):
                e = self._get(z, NS, now)
                if (e is not None and e.negative is None and e.rdatas
                        and (bypass is None or lower(z) != bypass)):
                    return z, e.rdatas
        e = self._get(ROOT, NS, now)
        if e is not None and e.negative is None and e.rdatas:
            return ROOT, e.rdatas
        return ROOT, tuple(self.hints.names)

    cdef list _addresses(self, bytes ns, double now):
        """The addresses the cache holds for ``ns``, else its hint addresses (so a primed
        root server is asked where the root says it is, not where the hints did)."""
        cdef list out = []
        cdef int t
        cdef RRsetEntry e
        cdef bint cached = False
        for t in (_A_AAAA if self.ipv6 else _A_ONLY):
            e = self._get(ns, t, now)
            if e is not None and e.negative is None:
                texts = e.addrs
                if texts is None:       # converted once per cached rrset, not per query
                    texts = []
                    for rd in e.rdatas:
                        text = _addr_text(t, rd)
                        if text:
                            texts.append(text)
                    e.addrs = texts
                for addr in texts:
                    cached = True
                    if addr not in out and self._usable(addr):
                        out.append(addr)
        if cached:
            return out
        return [a for a in self.hints.addrs.get(lower(ns), ()) if self._usable(a)]

    cdef bint _usable(self, str addr):
        """The address family is enabled (``ip4``, ``ipv6``); with ``no_localhost``, the
        address is not a loopback one (127.0.0.0/8, ::1, or IPv4-mapped 127/8); it is in
        none of the ``unqueried`` networks."""
        if ":" in addr:
            if not self.ipv6:
                return False
            if self.no_localhost and (addr == "::1" or addr.startswith("::ffff:127.")):
                return False
        elif not self.ip4 or (self.no_localhost and addr.startswith("127.")):
            return False
        return self.unqueried is None or not self.unqueried.holds_address(addr)

    cdef int _budget(self) except -1:
        if self.queries >= self.lv.max_upstream_queries:
            raise _Exhausted(f"upstream query limit ({self.limits.max_upstream_queries}) reached")
        if self._now() - self.t0 > self.lv.max_query_time:
            raise _Exhausted(f"time limit ({self.limits.max_query_time}s) reached", time=True)
        return 0

    def _ask(self, bytes zone, tuple nsnames, bytes qname, int qtype, int depth, int most=0,
             bint probe=False):
        """Asks the zone's servers until one gives a usable reply: (server, parsed, what
        ``_referral`` says of it) or None. At most ``most`` queries if given, else
        ``max_servers_per_zone``; a query to an address this host has no route to never
        left, so it is not counted there (with AAAA addresses on an IPv4-only host, a zone's
        unreachable addresses must not use up its tries) and that address is not asked
        again. NS names without addresses are resolved to A (with ``ip4``), and with
        ``ipv6`` to AAAA when they have no A (one sub-query per name where it suffices).

        Servers marked lame for the zone (``InfraCache.mark_lame``, until the mark expires)
        are asked last, once each, when no other server is left: a mark must not turn into
        a SERVFAIL without a packet sent. A server that refuses the zone (REFUSED, NOTAUTH)
        or refers upwards or sideways is marked lame. With ``probe`` (a minimised query),
        an error reply returns (server, None, None) at once and marks nothing: the caller
        asks the full name instead (RFC 9156 section 2.3)."""
        # Made when first needed: most questions get a usable reply from the first server.
        cdef dict attempts = None       # server -> queries sent to it
        cdef list retryable = None      # asked, but the reply was lost: may be asked again
        cdef list marked                # lame for this zone: the last resort
        cdef dict extra = None          # NS name -> addresses resolved here
        cdef list fallback = None       # the parent's glue, once every other server failed
        cdef int resolved = 0, unsent = 0
        cdef int asked = 0              # the sum of ``attempts``
        cdef double now
        cdef list addrs, pending, found
        last = None                     # the server asked last, counted in ``attempts``
                                        # when another round begins
        cdef Parsed m
        cdef CReply reply
        cdef bytes lzone = lower(zone)
        cdef InfraCache infra = self._infra
        if most <= 0:
            most = self.lv.max_servers_per_zone
        servers = infra.servers
        while True:
            if last is not None:
                if attempts is None:
                    attempts = {}
                attempts[last] = attempts.get(last, 0) + 1
                last = None
            now = self._now()
            addrs = []
            pending = None
            marked = None
            for ns in nsnames:
                found = self._addresses(ns, now)
                if not found and extra is not None:
                    found = extra.get(lower(ns))
                if not found:
                    if extra is None or lower(ns) not in extra:
                        if pending is None:
                            pending = []
                        pending.append(ns)
                    continue
                for a in found:
                    if ((attempts is None or a not in attempts) and a not in addrs
                            and (marked is None or a not in marked)):
                        s = dict_get(servers, a)
                        if s is not None and (<ServerInfo>s).lame and infra.lame_for(
                                a, lzone, now):
                            if marked is None:
                                marked = []
                            marked.append(a)
                        else:
                            addrs.append(a)
            if not addrs:
                if (pending and resolved < self.lv.max_ns_names_per_delegation
                        and depth < self.lv.max_dependency_depth):
                    ns = pending[0]
                    resolved += 1
                    found = []
                    if self.ip4:
                        res = yield from _lookup(self, ns, A, depth + 1)
                        found = [_addr_text(A, r[4]) for r in res.answer
                                 if r[1] == A and len(r[4]) == 4]
                    if not found and self.ipv6:
                        res = yield from _lookup(self, ns, AAAA, depth + 1)
                        found = [_addr_text(AAAA, r[4]) for r in res.answer
                                 if r[1] == AAAA and len(r[4]) == 16]
                    if extra is None:
                        extra = {}
                    extra[lower(ns)] = [a for a in found if self._usable(a)]
                    continue
                # Every server has been asked once: a lost datagram is not a dead server.
                if retryable is not None:
                    addrs = [a for a in retryable
                             if attempts[a] < self.lv.max_tries_per_server]
                if not addrs:
                    # Last resort: the servers marked lame for this zone, once each.
                    addrs = marked
                if not addrs:
                    # ... and the addresses the parent's glue gave, where the child's own
                    # (authoritative, so they replaced the glue in the cache) failed, once
                    # each (as Unbound falls back on the parent side's addresses)
                    if fallback is None:
                        fallback = self._parent_side(zone, nsnames, now)
                    addrs = [a for a in fallback if attempts is None or a not in attempts]
                if not addrs:
                    return None
            if asked - unsent >= most:
                return None
            self._budget()
            self.queries += 1
            event = yield new_query(qname, qtype, self.qclass, zone, addrs)
            server = (<CReply>event).server if type(event) is CReply else event.server
            last = server
            asked += 1
            if retryable is not None and server in retryable:
                retryable.remove(server)
            if isinstance(event, CTimeout) or isinstance(event, CFailure):
                if type(event) is CFailure and (<CFailure>event).unreachable:
                    unsent += 1
                else:
                    if retryable is None:
                        retryable = []
                    retryable.append(server)
                self._failed(server, "timeout" if isinstance(event, CTimeout)
                             else (<CFailure>event).reason or "failure")
                continue
            reply = event if type(event) is CReply else None     # read as C fields
            try:
                m = reply.parsed if reply is not None else event.parsed
                if m is None:
                    m = parse_response(reply.wire if reply is not None else event.wire,
                                       self.lv.max_pointer_jumps,
                                       self.lv.max_records_per_section)
            except WireError:
                self._count("dropped_malformed")
                infra.record_failure(server, self._now())
                continue
            if (not (m.flags & 0x8000) or m.qname is None or not _same_name(m.qname, qname)
                    or m.qtype != qtype or m.qclass != self.qclass):
                self._count("dropped_malformed")
                continue
            if self.private is not None:
                self.private.scrub(m)
            if m.rcode not in (NOERROR, NXDOMAIN) and not (
                    m.rcode == YXDOMAIN and _aa(m) and count_type(m.answer, DNAME)):
                # (YXDOMAIN with its DNAME is the zone's answer: RFC 6672 2.2)
                if probe:
                    return server, None, None
                self._failed(server, _RCODES.get(m.rcode) or f"rcode {m.rcode}")
                if m.rcode == REFUSED or m.rcode == NOTAUTH:
                    log.debug("server %s disclaims %s", server, to_text(zone))
                    infra.mark_lame(server, zone, self._now())
                else:
                    infra.record_failure(server, self._now())
                continue
            ref = _referral(m, zone, qname)
            if _is_lame_ref(m, zone, qname, ref):
                log.debug("lame server %s for %s", server, to_text(zone))
                self._failed(server, "lame")
                infra.mark_lame(server, zone, self._now())
                continue
            if self.validator is not None:
                try:
                    out = self.validator(m, zone, server, self)
                    if isinstance(out, GeneratorType):     # inspect.isgenerator
                        out = yield from out
                except Bogus as exc:
                    raise _Exhausted(f"bogus data from {server}: {exc}")
                m = out
                ref = _referral(m, zone, qname)     # the validator may have changed the reply
            if self.dnssec is not None:
                self._used(lzone, server, qtype)
            return server, m, ref

    cdef _failed(self, server, what):
        """Notes that a query of this question to ``server`` failed (``errors``)."""
        if self.errors is None:
            self.errors = []
        self.errors.append((server, what))

    cdef _used(self, bytes lzone, server, int qtype):
        """Notes that ``server``'s reply to a ``qtype`` question for the zone ``lzone`` went
        into this question."""
        if self.origins is None:
            self.origins = {}
        used = self.origins.get(lzone)
        if used is None:
            self.origins[lzone] = [(server, qtype)]
        elif (server, qtype) not in used:
            used.append((server, qtype))

    def avoid(self, bytes zone, bint keys=False):
        """Data of ``zone`` was found bogus (RFC 4035 5.5): the servers whose replies for it
        this question used are marked lame for it (``InfraCache.mark_lame``, until
        ``infra_host_ttl``), so that this question's next attempt and later questions ask
        its other servers first, the marked ones only as a last resort: with ``keys``
        those that sent its DNSKEY set, else the others (a key set is proven before any
        data it signs, so the servers that sent only keys sent nothing found bad). True
        when the zone has a server left that is not marked (an address, or an NS name not
        yet resolved, which may be one): another attempt may get genuine data."""
        cdef bytes lz = lower(zone)
        cdef double now = self._now()
        used = self.origins.get(lz) if self.origins else None
        if not used:
            return False
        bad = {s for s, t in used if (t == DNSKEY) == keys}
        if not bad:
            return False
        self.origins[lz] = [u for u in used if u[0] not in bad]
        for server in bad:
            self._infra.mark_lame(server, zone, now)
        cut, nsnames = self._closest_delegation(zone)
        if lower(cut) != lz:
            return False
        for ns in nsnames:
            addrs = self._addresses(ns, now)
            if not addrs:
                return True
            for a in addrs:
                if not self._infra.lame_for(a, lz, now):
                    return True
        return False

    def lookup(self, name, rdtype):
        """Generator: a sub-lookup (following CNAMEs, through the cache) inside this client
        query's budget, for validators; ``res = yield from it.lookup(name, DNSKEY)``."""
        return (yield from _lookup(self, name, rdtype, 1))

    def _count(self, name):
        if self.stats is not None:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    def _iterate(self, bytes name, int qtype, int depth):
        """Finds ``name``/``qtype`` by walking down delegations (no CNAME following)."""
        cdef bytes start = _parent(name) if qtype == DS and name != ROOT else name
        cdef bytes zone, sent, child
        cdef tuple nsnames
        cdef list ns_recs
        cdef int nl = label_count(name), probe = 0, steps = 0, referrals = 0, stype
        cdef bint minimise = self.minimise, deeper
        cdef double now
        zone, nsnames = self._closest_delegation(start)
        if zone == ROOT and self.hints.prime and (yield from _prime(self, depth)):
            zone, nsnames = self._closest_delegation(start)
        while True:
            probe = max(probe, label_count(zone))
            sent, stype = name, qtype
            deeper = False
            if minimise and probe + 1 < nl and steps < self.lv.max_minimise_count:
                now = self._now()
                deeper = self._infra.minimise_ok(lower(zone), now)
            if deeper:
                # What earlier probes learned (the name's A data or NODATA, cached) says the
                # name is no zone cut: the next label is asked at once.
                probe += 1
                while probe < nl and self._get(strip_to(name, probe), A, now) is not None:
                    probe += 1
                if probe < nl:
                    steps += 1
                    sent, stype = strip_to(name, probe), A
            got = yield from _ask(self, zone, nsnames, sent, stype, depth, 0,
                                  sent != name or stype != qtype)     # most, probe
            if got is None:
                if sent != name or stype != qtype:
                    # Relaxed minimisation (RFC 9156 section 2.3): the full name is asked.
                    minimise = False
                    self._infra.stop_minimising(zone, self._now())
                    continue
                return _Step("servfail", reason=f"no server of {to_text(zone)} answered "
                             f"{to_text(sent)}/{stype} usably")
            server, m, ref = got
            if m is None:       # the probe was refused or failed: the full name decides
                minimise = False
                self._infra.stop_minimising(zone, self._now())
                continue
            now = self._now()
            if ref is not None:
                child, ns_recs = ref
                referrals += 1
                if referrals > self.lv.max_referrals:
                    return _Step("servfail", reason="too many referrals")
                self._cache_referral(m, zone, child, ns_recs, now)
                zone, nsnames = child, tuple([r[4] for r in ns_recs])
                continue
            if sent != name or stype != qtype:
                # A minimised probe that did not delegate.
                if m.rcode == NXDOMAIN:
                    if _has_soa_in(m.authority, zone) and (
                            m.security == SECURE or _has_denial(m.authority, zone)):
                        # RFC 8020: nothing exists below a name that does not exist. Only
                        # from a signed zone (whose proof the validator checks): an unsigned
                        # server may answer NXDOMAIN for an empty non-terminal.
                        soa = self._rrsets.store_negative(
                            name, qtype, self.qclass, True, _in_zone(m.authority, zone),
                            AUTH_AUTHORITY if _aa(m) else NONAUTH_ANSWER, now)
                        if depth == 0:
                            self.answered = server
                        return _step("nx", [], soa)
                    minimise = False       # relaxed: the full name decides
                    self._infra.stop_minimising(zone, now)
                    continue
                if any(r[1] in (CNAME, DNAME) for r in m.answer):
                    minimise = False       # the full name decides; ask it in this zone
                    continue
                self._cache_answer(m, zone, now, answer_chain(
                    _in_zone(m.answer, zone), sent, A, self.lv.max_cname_chain + 1))
                if _owned(_in_zone(m.answer, zone), sent, A) is None:
                    # NODATA at an intermediate name (an empty non-terminal, or a name with
                    # other types): remembered, so later probes below it skip it.
                    soa = [r for r in _in_zone(m.authority, zone)
                           if r[1] in (SOA, RRSIG, NSEC, NSEC3)]
                    if _has_soa_in(soa, zone):
                        self._rrsets.store_negative(sent, A, self.qclass, False, soa,
                                                    AUTH_AUTHORITY if _aa(m) else NONAUTH_ANSWER,
                                                    now)
                continue
            if depth == 0:
                self.answered = server
            return self._final(m, zone, name, qtype, now)

    def _prime(self, int depth):
        """Root priming (RFC 8109) when the root delegation would come from the hints: a hint
        server is asked for ``. NS`` and the root's own NS set and glue are cached, so this
        query and later ones start from them until they expire. One exchange at a time per
        resolver: queries meanwhile use the hints, as they would without priming (Unbound
        makes them wait; a sans-IO iterator cannot wait on another). A failure is counted,
        not retried for ``failure_ttl`` and never fails the query (the hints serve). True if
        primed."""
        hints = self.hints
        cdef double now = self._now()
        if self.qclass != 1 or now < hints.prime_at or self._get(ROOT, NS, now) is not None:
            return False
        hints.prime_at = now + self.lv.max_query_time      # in flight, at most this long
        try:
            got = yield from _ask(self, ROOT, tuple(self.hints.names), ROOT, NS, depth,
                                       PRIME_TRIES)
        except _Exhausted:      # the budget, or bogus: the query's next step tells which
            got = None
        now = self._now()
        primed = got is not None and self._cache_priming(got[1], now)
        hints.prime_at = 0.0 if primed else now + self.lv.failure_ttl
        self._count("primings" if primed else "priming_failures")
        return primed

    cdef bint _cache_priming(self, Parsed m, double now):
        """Caches the root's NS set (at an answer's rank: VALIDATED only if a validator
        proved it, lower without AA) and its usable glue, from a NOERROR answer with at
        least one usable address; False for any other reply (the hints go on serving)."""
        if m.rcode != NOERROR:
            return False
        ns = [r for r in m.answer if r[1] == NS and r[0] == ROOT]
        glue = [r for r in _glue(m.additional, ROOT, ns) if (r[1] == A and len(r[4]) == 4)
                or (self.ipv6 and r[1] == AAAA and len(r[4]) == 16)]
        if not glue:
            return False
        self._cache_answer(m, ROOT, now, ns + [r for r in m.answer
                                               if r[0] == ROOT and _covers(r, NS)])
        store_records(self._rrsets, glue, GLUE, now)
        return True

    cdef _cache_referral(self, Parsed m, bytes zone, bytes child, list ns_recs, double now):
        rr = self._rrsets
        store_records(rr, ns_recs, REFERRAL, now)
        glue = _glue(m.additional, zone, ns_recs, self.harden_glue)
        if self.harden_unverified_glue:
            # Unbound's harden-unverified-glue: a server named outside the child zone (a
            # sibling's, or another zone's) has its name resolved; its glue stays only
            # with the NS set below, the last resort when that fails (``_ask``).
            trusted = [r for r in glue if is_subdomain(r[0], child)]
        else:
            trusted = glue
        if trusted:
            store_records(rr, trusted, GLUE, now)
        # Kept with the parent's NS set (``keep_proofs``): the glue, the addresses to fall
        # back on when those the child gives for its servers do not answer (``_ask``), and
        # the referral's proof that the child has no DS (``referral_proof``).
        kept = glue
        ds = [r for r in m.authority if r[1] in (DS, RRSIG, NSEC, NSEC3)
              and is_subdomain(r[0], zone)]
        if ds:
            lchild = lower(child)
            dsrecs = [r for r in ds if r[1] == DS and lower(r[0]) == lchild]
            if dsrecs:
                store_records(rr, dsrecs, NONAUTH_ANSWER, now,
                                 [r for r in ds if r[1] == RRSIG])
            elif self.dnssec is not None:
                # RFC 4035 5.2, RFC 5155 8.9: the parent need not be asked for the DS again
                kept = glue + [r for r in ds if r[1] == NSEC or r[1] == NSEC3
                               or _covers_any(r, (NSEC, NSEC3))]
        if kept:
            keep_proofs(rr, child, NS, self.qclass, kept)

    cdef _cache_answer(self, Parsed m, bytes zone, double now, list in_zone):
        rank = VALIDATED if m.security == SECURE else (
            AUTH_ANSWER if _aa(m) else NONAUTH_ANSWER)
        if in_zone is None:
            in_zone = _in_zone(m.answer, zone)
        if not count_type(in_zone, RRSIG):          # unsigned: nothing to split
            if in_zone:
                store_records(self._rrsets, in_zone, rank, now)
            return
        recs, sigs = _split_sigs(in_zone)
        if recs:
            store_records(self._rrsets, recs, rank, now, sigs)

    cdef _Step _final(self, Parsed m, bytes zone, bytes name, int qtype, double now):
        """Interprets the authoritative reply to the full question. Its TTLs are clamped
        as the cache stores them, so the client sees what the cache keeps."""
        cdef list answer = clamp_ttls(self.lv, answer_chain(
            _in_zone(m.answer, zone), name, qtype, self.lv.max_cname_chain + 1))
        if count_type(answer, DNAME):
            answer = _without_dname_synthesis(answer)
        if (qtype == NS and self.qtype == NS and self.dnssec is not None and m.additional
                and name == self.qname):
            self.ns_additional = _server_addresses(m.additional, answer, zone)
        if (self.deferred is not None and qtype == self.qtype and name == self.qname
                and (self.dnssec is None or (qtype != DNSKEY and qtype != DS))):
            found = _answered(answer, name, qtype)
            if found is not None:
                # The client's own question, answered directly: nothing but the validator
                # reads these rrsets before the resolution ends (and it is handed them, and
                # leaves its verdicts in ``validated``), so they can be stored after the
                # answer has left. Keys and DS records are looked up by the validation
                # itself, so they are stored at once.
                self.deferred.append((m, zone, now, answer))
                return _step("answer", found,
                             clamp_ttls(self.lv, _wildcard_proofs(m, zone, found)))
        self._cache_answer(m, zone, now, answer)
        cdef list out = []
        cdef bytes cur = name
        for _ in range(len(answer) + 1):
            found = _answered(answer, cur, qtype)
            if found is not None:
                out += found
                return _step("answer", out,
                             clamp_ttls(self.lv, _wildcard_proofs(m, zone, out)))
            lcur = lower(cur)
            dn = [r for r in answer if r[1] == DNAME and lower(r[0]) != lcur
                  and is_subdomain(cur, r[0])]
            if dn and qtype != DNAME:
                d = dn[0]
                target = dname_substitute(cur, d[0], d[4])
                if len(target) > 255:
                    # RFC 6672 2.2: the substituted name is too long: YXDOMAIN, with the
                    # DNAME that made it, as the authority answers it
                    out.append(d)
                    ld = lower(d[0])
                    out += [r for r in answer if lower(r[0]) == ld and _covers(r, DNAME)]
                    return _step("yx", out, [])
                out.append(d)
                ld = lower(d[0])
                out += [r for r in answer if lower(r[0]) == ld and _covers(r, DNAME)]
                out.append((cur, CNAME, self.qclass, d[3], target))
                if qtype == CNAME and cur == name:
                    # the CNAME asked for is the DNAME's synthesis (RFC 6672 2.2)
                    return _step("answer", out, [])
                cur = target
                continue
            cn = [r for r in answer if lower(r[0]) == lcur and r[1] == CNAME]
            if cn and qtype != CNAME:
                out.append(cn[0])
                out += [r for r in answer if lower(r[0]) == lcur and _covers(r, CNAME)]
                cur = cn[0][4]
                continue
            break
        soa = [r for r in _in_zone(m.authority, zone) if r[1] in (SOA, RRSIG, NSEC, NSEC3)]
        in_zone = is_subdomain(cur, zone)
        if cur != name and not (in_zone and (m.rcode == NXDOMAIN or _has_soa_in(m.authority, zone))):
            return _step("cname", out, clamp_ttls(self.lv, _wildcard_proofs(m, zone, out)),
                         next=cur)
        # A negative answer without AA (from a server that is not recursive: is_lame) is
        # used at the rank of a non-authoritative answer.
        rank = AUTH_AUTHORITY if _aa(m) else NONAUTH_ANSWER
        if m.rcode == NXDOMAIN:
            soa = self._rrsets.store_negative(cur, qtype, self.qclass, True, soa, rank, now)
            return _step("nx", out, soa)
        if soa:
            soa = self._rrsets.store_negative(cur, qtype, self.qclass, False, soa, rank, now)
        return _step("nodata", out, soa)


# The generator steps, called as functions of the class rather than bound methods (one object
# less per call).
cdef object _lookup = Iterator._lookup
cdef object _iterate = Iterator._iterate
cdef object _ask = Iterator._ask
cdef object _prime = Iterator._prime


# ---- reply classification ---------------------------------------------------------------------

cdef list _without_dname_synthesis(list answer):
    """``answer`` without the CNAMEs below one of its DNAMEs: such a CNAME is the DNAME's
    synthesis (RFC 6672 2.2) with no signature of its own, so it is made here from the
    DNAME (``_final``), never cached or followed as sent (a forged one would be)."""
    dnames = [r[0] for r in answer if r[1] == DNAME]
    return [r for r in answer if r[1] != CNAME
            or not any(dname_substitute(r[0], d, b"") is not None for d in dnames)]


cdef list _wildcard_proofs(Parsed m, bytes zone, list out):
    """NSEC/NSEC3 (with their RRSIGs) of the authority section when an answer record was
    expanded from a wildcard (its RRSIG's label count is below its owner's): the proof that
    no closer name exists, kept for the validator."""
    if not _wildcard_expanded(out):
        return []
    return [r for r in _in_zone(m.authority, zone)
            if r[1] in (NSEC, NSEC3) or (r[1] == RRSIG and _covers_any(r, (NSEC, NSEC3)))]


def _has_denial(list authority, bytes zone):
    """NSEC or NSEC3 records of the zone in an authority section: the zone is signed."""
    return any(r[1] in (NSEC, NSEC3) and is_subdomain(r[0], zone) for r in authority)


cdef object _answered(list answer, bytes name, int qtype):
    """``owned``, except that a CNAME does not answer ANY: it is followed, as for any other
    type but CNAME (as Unbound does)."""
    found = _owned(answer, name, qtype)
    if found is not None and qtype == ANY and count_type(found, CNAME):
        return None
    return found


cdef list _server_addresses(list additional, list answer, bytes zone):
    """The A/AAAA records of an NS answer's additional section for the servers the answer
    names inside ``zone``, with the RRSIGs over them; None if there are none."""
    cdef list addrs = _glue(additional, zone, [r for r in answer if r[1] == NS], True)
    if not addrs:
        return None
    owners = {lower(r[0]) for r in addrs}
    return addrs + [r for r in additional
                    if (_covers(r, A) or _covers(r, AAAA)) and lower(r[0]) in owners]


def _covers_any(rec, types):
    return len(rec[4]) >= 2 and ((rec[4][0] << 8) | rec[4][1]) in types


def _covers(rec, rdtype):
    return rec[1] == RRSIG and len(rec[4]) >= 2 and ((rec[4][0] << 8) | rec[4][1]) == rdtype


cdef str _addr_text(int rdtype, rd):
    """An A or AAAA record's address as text, "" for another type or a wrong length."""
    cdef const unsigned char* b
    cdef char text[16]
    cdef int i, v, o = 0
    if rdtype == A and type(rd) is bytes and PyBytes_GET_SIZE(rd) == 4:
        # written here: socket.inet_ntop formats through sprintf, several times the cost
        b = <const unsigned char*>PyBytes_AS_STRING(rd)
        for i in range(4):
            v = b[i]
            if v >= 100:
                text[o] = c'0' + v // 100
                o += 1
            if v >= 10:
                text[o] = c'0' + v // 10 % 10
                o += 1
            text[o] = c'0' + v % 10
            o += 1
            text[o] = c'.'
            o += 1
        return PyUnicode_DecodeASCII(text, o - 1, NULL)
    if rdtype == A and len(rd) == 4:
        return inet_ntop(AF_INET, rd)
    if rdtype == AAAA and len(rd) == 16:
        return inet_ntop(AF_INET6, rd)
    return ""
