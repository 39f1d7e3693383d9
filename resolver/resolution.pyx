# cython: language_level=3
"""The resolution driver: one question resolved by callbacks, for the library and the daemon.

A :class:`Resolution` runs the question's :class:`~resolver.iterator.Iterator` from the
completion callbacks of its upstream queries: it picks the server (``cache.infra``), sends
the ``Query`` the iterator asks for (``upstream.udp.UDPQuery``), feeds back the ``Reply``,
``Timeout`` or ``Failure`` and goes on until the iterator returns its ``Result``. No Task
and no Future per question or per upstream query. What a reply asks for goes through the
same callbacks: FORMERR to an EDNS query is asked again without EDNS (and remembered), a
truncated reply is asked again over TCP (``upstream.tcp.TCPQuery``), and DNSSEC work that
yields (``Suspend``) goes on from ``loop.call_soon``. A forward zone's servers over TLS
are asked on the resolver's kept connections (``upstream.dot``), with the TCP query's face.

The time limit (``Limits.max_query_time``) needs no timer: the iterator checks its budget
before every upstream query, each query's timeout is at most the time left, and a resumed
suspension checks it too.

Identical questions in flight share one Resolution: ``resolve`` adds the caller's callback
to it. Each callback gets the ``Result``, or ``None`` if the resolution was cancelled; a
caller that gives up (``discard``) cancels it only when nobody else waits. Identical
upstream UDP queries in flight are shared too (``_SharedQuery``): the minimised probes of
many questions below one name, sent at once by a flood that starts with an empty cache,
leave once, as Unbound's serviced queries do.

A question whose servers are all marked down (``InfraCache``: consecutive timeouts, no
probe due) or at their most queries in flight sends nothing: the iterator is told the query
could not leave, and a SERVFAIL it ends in carries extended error 22 (No Reachable
Authority); a Forwarder with a ``try_timeout`` (a stub's nameservers, or resolv.conf's
``options attempts:N``) asks a server marked down all the same, each try waiting that long,
as dnspython and glibc ask their nameservers on every call; its ``time_limit`` is the
question's. ``InfraCache.rates`` (Unbound's ``ratelimit``) ends a question whose zone's
servers have had their queries for the second; the process's upstream UDP sockets are capped
(``Limits.max_upstream_sockets``, ``upstream.udp``).

The entry points are thin:

- the daemon: ``start`` (``Resolver.start_miss``) answers a wire query from the cache or
  begins a :class:`Drive`, which turns the Result into the response and calls ``done``;
- the library: ``Resolver.resolve`` and ``resolve_message`` await a future that such a
  callback completes (``resolver.api``).
"""
cimport cython
import logging

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.object cimport PyObject

from corenet.capi cimport Loop, call_before_poll, fast_loop
from resolver import iterator as it
from resolver.response cimport (begin as begin_miss, failed_with_chain, finish as finish_miss,
                                hit_or_begin, stale_answer)
from resolver.state cimport ResolverCore
from resolver.cache.answer cimport monotonic
from resolver.iterator.events cimport Query as CQuery, Result as CResult, new_reply
from resolver.iterator.algorithm cimport Iterator
from resolver.wire.codec cimport Parsed, query_wire
from resolver.wire.names cimport lower
from resolver.cache.infra cimport InfraCache, ServerInfo
from resolver.cache.store cimport Cache
from resolver.upstream.udp cimport QueryDone, UDPQuery, fresh_id, mixed_case, needs_retry

import dns.rdataclass
import dns.rdatatype

from resolver.dnssec import Suspend, with_ede
from resolver.dnssec.validator import BOGUS_REASON
from resolver.dnssec.sentinel import LENGTHS as _SENTINEL_LENGTHS, verdict as sentinel_verdict
from resolver.iterator import Failure, Reply, Result, Timeout
from resolver.iterator.forward import Forwarder
from resolver.limits import EDNS_BUFFER_SIZE
from resolver.upstream.errors import (CapsMismatch, NoDescriptors, SocketCap, UpstreamFailure,
                                      UpstreamTimeout, UpstreamUnreachable)
from resolver.upstream.tcp import TCPQuery
from resolver.wire.codec import to_text

cdef extern from "Python.h":
    # the value now under ``key``: ``default``, stored there if the key was absent
    PyObject* PyDict_SetDefault(object d, object key, object default) except NULL

log = logging.getLogger("resolver.resolution")
#: Unbound's val-log-level lines (``ResolverCore.val_log_level``)
validator_log = logging.getLogger("resolver.validator")

cdef object _Result = Result
cdef object _Suspend = Suspend
cdef object _Timeout = UpstreamTimeout
cdef object _Unreachable = UpstreamUnreachable
cdef object _NoDescriptors = NoDescriptors
cdef object _CapsMismatch = CapsMismatch
cdef int _PTR = 12
cdef int _SECURE = it.SECURE
cdef int _BOGUS = it.BOGUS
cdef double _warned_at = -1e9      # when running out of descriptors was last logged
EDE_NO_REACHABLE_AUTHORITY = 22    # RFC 8914


cdef int _SENTINEL_IS_TA = _SENTINEL_LENGTHS[0], _SENTINEL_NOT_TA = _SENTINEL_LENGTHS[1]


cdef inline bint _sentinel_length(bytes qname, int qtype):
    """The cheap test of every secure result, in C: an A or AAAA question whose first label
    is as long as a root key sentinel label (``resolver.dnssec.sentinel.LENGTHS``)."""
    if (qtype != 1 and qtype != 28) or len(qname) == 0:
        return False
    cdef unsigned char n = (<const unsigned char*>PyBytes_AS_STRING(qname))[0]
    return n == _SENTINEL_IS_TA or n == _SENTINEL_NOT_TA


cdef inline object _query_bits(CQuery qa, bint edns):
    """The question's type and class and the query's EDNS, RD and AD flags as one number:
    the last item of a shared query's key (four items to hash rather than eight)."""
    return ((<long long>qa.qtype << 19) | (<long long>qa.qclass << 3) | (edns << 2)
            | (qa.rd << 1) | qa.ad)


cdef _log_validation_failure(tuple key, res, int level):
    """One line for a resolution whose answer failed validation, as Unbound's
    ``val-log-level`` writes it: at 1 the question (``validation failure NAME TYPE CLASS``),
    at 2 the question in brackets, the reason and the server that gave the data (``res``
    came from one: :meth:`Resolution._finish` turned its name into (address, port))."""
    asked = (f"{to_text(key[0])} {dns.rdatatype.to_text(key[1])} "
             f"{dns.rdataclass.to_text(key[2])}")
    if level < 2:
        validator_log.info("validation failure %s", asked)
        return
    validator_log.info("validation failure <%s>: %s from %s", asked,
                       (res.reason or "bogus").removeprefix(BOGUS_REASON),
                       (<CResult>res).server[0])


cdef inline void _remove_own(dict table, object key, object owner):
    """Removes ``table[key]`` if it is ``owner``, with one look-up of the key (a tuple,
    hashed anew each time) when it is."""
    found = table.pop(key, None)
    if found is not None and found is not owner:
        table[key] = found


cpdef object start(ResolverCore resolver, bytes query, done, loop, bytes absent=None,
                   client=None):
    """``resolve_message`` for the daemon, by callbacks rather than a coroutine: the
    response now (a cache hit or an error), or a :class:`Drive` that calls ``done(drive,
    response)`` once (maybe before it is returned), or ``done(drive, None)`` if it is
    cancelled. ``loop`` is the running loop. Raises WireError for a query shorter than a
    header. With a shared cache (``resolver.shared``) the miss asks it first and gets an
    object with the Drive's ``finished`` and ``cancel``. ``absent``: the query's message
    cache key, under which the caller has just found no fresh entry (the daemon's UDP
    listener), so it is neither looked up nor built again; ``client``: the asker's address,
    which ``inform`` local zones log. (``Resolver.start_miss``.)"""
    miss = (begin_miss(resolver, query, absent, client) if absent is not None
            else hit_or_begin(resolver, query, client))
    if type(miss) is bytes or miss is None:      # None: a local zone drops the query
        return miss
    if resolver.shared is not None:           # the shared cache first, then a Drive
        return resolver.shared.start(resolver, loop, query, miss, done)
    cdef Drive d = Drive.__new__(Drive)
    d.begin(resolver, loop, query, miss, done)
    return d


cpdef object new_iterator(ResolverCore r, bytes qname, int qtype, int qclass):
    """What a resolution runs for one question (``Resolver.new_iterator``): the deepest
    forward or stub zone's (``zones``), else the recursive Iterator, or with ``forward`` a
    Forwarder that asks those servers."""
    if r.zone_cuts:                             # forward or stub zones, not local ones only
        cut = r._zones.match(qname)
        if cut is not None:
            return cut.iterator(r, qname, qtype, qclass, iterator_for)
    if r.forward:
        return Forwarder(qname, qtype, qclass, r.forward, r.clock, r.limits,
                         private=r.private, **(<object>r).nameserver_rules())
    return iterator_for(r, qname, qtype, qclass)


cpdef object iterator_for(ResolverCore r, qname, qtype, qclass):
    """A new Iterator for one question, with the root hints indexed once per resolver (and
    its root priming shared through them)."""
    hints = r.hint_index
    if hints is None or r.hint_index_ipv6 != r.ipv6 or r.hint_index_source is not r.hints:
        hints = r.hint_index = it.Hints(r.hints, r.ipv6, prime=True)
        r.hint_index_source = r.hints
        r.hint_index_ipv6 = r.ipv6
    cdef Iterator i = Iterator.__new__(Iterator)
    i.setup(qname, qtype, qclass, r.cache, hints, r.clock,
            r.lv.limits if r.lv is not None else None, r.minimise,
            r.ipv6, r.validator, r.counts, r.dnssec, r.do_ip4, r.no_localhost)
    if not r.harden_glue:
        i.harden_glue = False
    if r.harden_unverified_glue:
        i.harden_unverified_glue = True
    i.private = r.private
    i.unqueried = r.unqueried
    return i


cpdef Resolution resolve(ResolverCore r, bytes qname, int qtype, int qclass, loop, callback,
                         bint tcp=False):
    """Resolves the question and calls ``callback(result)`` once (maybe before returning),
    with ``None`` if the resolution is cancelled; joins the resolution of the same question
    already in flight, if there is one. ``tcp``: every upstream query over TCP. Returns the
    Resolution (``discard(callback)`` to give up)."""
    key = (lower(qname), qtype, qclass, True) if tcp else (lower(qname), qtype, qclass)
    cdef Resolution res = Resolution.__new__(Resolution)
    # one hash of the key to find the question in flight or take its place
    cdef Resolution joined = <Resolution>PyDict_SetDefault(r.resolutions, key, res)
    if joined is not res:
        r.counts.coalesced += 1
        joined.waiters.append(callback)
        return joined
    res.waiters = [callback]
    res.tcp_only = tcp
    res.begin(r, loop, key, qname, qtype, qclass)
    return res


cpdef object resolve_client(ResolverCore r, bytes qname, int qtype, int qclass, loop,
                            callback, bint tcp=False, bint validates_itself=False):
    """``resolve`` for a client's question: with DNS64 on (``ResolverCore.dns64``), an AAAA
    question, or a PTR question under the DNS64 prefix, is answered as RFC 6147 says
    (``resolver.dns64``) through a :class:`Synthesis`, which asks the further questions and
    calls ``callback`` once with the answer's Result. ``validates_itself``: the client set
    DO and CD, so it gets the authorities' own answer (RFC 6147 5.5). Returns what
    ``discard(callback)`` gives up on. With DNS64 off this is ``resolve``."""
    d64 = r.dns64
    if d64 is None or validates_itself or qclass != 1 or (qtype != 28 and qtype != 12):
        return resolve(r, qname, qtype, qclass, loop, callback, tcp)
    cdef Synthesis s
    if qtype == 12:
        target = d64.ptr_target(qname)
        if target is None:
            return resolve(r, qname, qtype, qclass, loop, callback, tcp)
        s = Synthesis.__new__(Synthesis)
        s.start(r, loop, qname, callback, tcp, target)
        return s
    s = Synthesis.__new__(Synthesis)
    s.start(r, loop, qname, callback, tcp, None)
    return s


cdef class Synthesis:
    """One client question answered by DNS64 (``resolve_client``): an AAAA question is
    resolved, then, when ``Dns64.target`` names a name, that name's A question, and the
    callback gets ``Dns64.synthesize``'s Result; a PTR question under the prefix is asked
    as its ``in-addr.arpa`` name and answered by ``Dns64.ptr_answer``. Each step is a shared
    ``resolve``; ``discard`` leaves the one in flight."""

    cdef ResolverCore r
    cdef object loop, callback, resolution, aaaa
    cdef bytes qname, ptr
    cdef bint tcp, done

    cdef start(self, ResolverCore r, loop, bytes qname, callback, bint tcp, bytes ptr):
        self.r, self.loop, self.qname, self.callback, self.tcp, self.ptr = \
            r, loop, qname, callback, tcp, ptr
        if ptr is not None:
            self._ask(ptr, 12)
        else:
            self._ask(qname, 28)

    cdef _ask(self, bytes name, int qtype):
        resolution = resolve(self.r, name, qtype, 1, self.loop, self, self.tcp)
        if not self.done:                   # (its callback may have run already)
            self.resolution = resolution

    def __call__(self, res):
        """The callback of the step in flight."""
        if self.done:
            return
        self.resolution = None
        d64 = self.r.dns64
        try:
            if res is None or d64 is None:      # cancelled, or DNS64 turned off meanwhile
                out = res
            elif self.ptr is not None:
                out = d64.ptr_answer(self.qname, self.ptr, res)
            elif self.aaaa is None:
                target = d64.target(self.qname, res)
                if target is not None:
                    self.aaaa = res
                    self._ask(target, 1)
                    return
                out = res
            else:
                out = d64.synthesize(self.qname, self.aaaa, res)
        except Exception as exc:            # a bug: reported, and the client gets SERVFAIL
            log.error("DNS64 for %s failed", to_text(self.qname), exc_info=exc)
            out = _Result(it.SERVFAIL, reason=f"internal error: {exc!r}")
        self._end(out)

    cdef _end(self, res):
        self.done = True
        callback, self.callback = self.callback, None
        self.aaaa = None
        if type(callback) is Drive:
            (<Drive>callback).resolved(res)
        else:
            callback(res)

    def discard(self, callback):
        """``callback`` gives up: the step in flight is left (it stops if nobody else
        waits)."""
        if self.done:
            return
        self.done = True
        self.callback = None
        resolution, self.resolution = self.resolution, None
        if resolution is not None:
            resolution.discard(self)


cdef class _SharedQuery(QueryDone):
    """One upstream UDP query and the resolutions waiting for its outcome, in send order.
    The first waiter takes the outcome as its own (it records the RTT or the timeout and
    parses nothing again); the others get the same reply to parse themselves. The socket
    closes after the outcome, or when the last waiter leaves.

    Once the outcome is handed out, what the exchange leaves waits for the end of the
    loop's iteration (on corenet's loop, where the object is called once before the loop
    next polls): the iterators' final rrsets to store, then the socket to close, so neither
    is on the way to the client's answer or the next queries."""

    cdef object key
    cdef dict table                 # the resolver's queries in flight, where ``key`` leads
    cdef UDPQuery q
    cdef list waiters
    cdef double expires             # monotonic time at which the query times out
    cdef ServerInfo info            # the server's, whose queries in flight count this one
    cdef object stores              # iterators whose final rrsets wait: one, a list, or None

    cdef int unwanted(self, UDPQuery q) except -1:
        """A reply nobody asked for came to the query's socket: counted against the
        resolver's ``limits.unwanted_reply_threshold``."""
        cdef Resolution res
        if self.waiters:
            res = self.waiters[0]
            res.resolver.unwanted_reply()
        return 0

    cdef int done(self, UDPQuery q) except -1:
        """The query's on_done (the object itself, called in C): every waiter gets the
        outcome."""
        cdef Resolution res
        cdef bint first = True
        cdef ServerInfo info = self.info
        self._release_slot()
        self._forget()
        waiters, self.waiters = self.waiters, None
        try:
            for res in waiters:
                iterator = res._outcome(q, first)
                first = False
                if iterator is not None:
                    if self.stores is None:
                        self.stores = iterator
                    elif type(self.stores) is list:
                        self.stores.append(iterator)
                    else:
                        self.stores = [self.stores, iterator]
            if info is not None and info.waiters and waiters:
                _wake_waiting(res.infra, info)      # the outcome is recorded: it decides
        finally:
            if q.corenet:
                self.q = q                  # until the call below
                call_before_poll(<Loop>q.loop, self)
            else:
                self.q = None
                self._after(q)
        return 0

    def __call__(self):
        """The end of the loop's iteration: see the class docstring."""
        q, self.q = self.q, None        # no cycle left with the query, whose on_done is this
        self._after(q)

    cdef _after(self, UDPQuery q):
        stores, self.stores = self.stores, None
        try:
            if type(stores) is list:
                for iterator in stores:
                    _store_later(iterator)
            elif stores is not None:
                _store_later(stores)
        finally:
            q.close()

    cdef _forget(self):
        _remove_own(self.table, self.key, self)

    cdef inline void _release_slot(self):
        if self.info is not None:
            self.info.inflight -= 1
            self.info = None

    cdef leave(self, Resolution res):
        """``res`` stops waiting (it finished or was cancelled): the query goes on for the
        others, and is closed when nobody waits."""
        if self.waiters is None:        # its outcome is being handed out
            return
        try:
            self.waiters.remove(res)
        except ValueError:
            return
        if not self.waiters:
            info = self.info
            self._release_slot()
            self._forget()
            self.q.close()
            self.q = None
            if info is not None and info.waiters:
                _wake_waiting(res.infra, info)      # dropped: one of them finds out instead


cdef int _wake_waiting(InfraCache infra, ServerInfo info) except -1:
    """The questions waiting for ``info``'s server (``Resolution._wait``) go on, in the
    loop's next iteration, once no query is finding out whether it is down: it answered
    (they ask it), its timeout marked it down (they fail fast), or it timed out again
    without the mark or the query was dropped (one of them asks it next, the others wait
    again). Not woken while that query is still in flight."""
    if infra._finding_out(info):
        return 0
    cdef Resolution res
    waiters, info.waiters = info.waiters, None
    for res in waiters:
        res.waits_for = None
        if res.resume is not None:
            res.resume.cancel()
        res.resume = res.loop.call_soon(res._waited)
    return 0


cdef bint _at_or_below(bytes name, frozenset domains):
    """Whether the wire name ``name`` is one of ``domains`` or below one (both lower-cased)."""
    cdef const unsigned char *p = name
    cdef Py_ssize_t i = 0, n = len(name)
    while i < n:
        if (name[i:] if i else name) in domains:
            return True
        if p[i] == 0:
            return False
        i += p[i] + 1
    return False


cdef inline _store_later(iterator):
    """Stores the final rrsets ``iterator`` kept for after the answer."""
    if type(iterator) is Iterator:
        (<Iterator>iterator).store_later()
    else:
        iterator.store_deferred()


@cython.freelist(64)
cdef class Resolution:
    """One question being resolved (see the module docstring)."""

    cdef ResolverCore resolver
    cdef object loop
    cdef object key
    cdef readonly object iterator
    cdef Iterator native        # the iterator when it is an Iterator (not a Forwarder)
    cdef InfraCache infra
    cdef double max_time
    cdef double t0              # the iterator's start, which its time limit counts from
    cdef list waiters
    cdef object action          # the Query being asked
    cdef UDPQuery q             # its UDP query (shared as ``shared``), or
    cdef _SharedQuery shared
    cdef object tcp             # its TCP query (or DNS-over-TLS query)
    cdef object tls_pool        # forward zones over TLS: the resolver's DoTUpstreams
    cdef dict tls_servers       # and their servers: key -> (authentication name, CA file)
    cdef dict ports             # server -> (address, port) where the iterator says so
    cdef readonly str host      # where the query in flight went
    cdef readonly int dport
    cdef object resume          # the call_soon handle of a suspended validation, or the
                                # timer of a question waiting for a server (``_wait``)
    cdef ServerInfo waits_for   # the server it waits for, in whose ``waiters`` it is
    cdef str server
    cdef double timeout
    cdef double try_timeout     # what each query waits (a Forwarder's, with attempts or
                                # as a stub)
    cdef bint counted_tries     # each server gets its tries, marked down or not (the same)
    cdef double rtt             # of the UDP exchange a TCP retry follows
    cdef bint edns
    cdef bint corenet
    cdef bint tcp_only          # every upstream query over TCP
    cdef double sent_at         # of the TCP query asked straight away
    cdef bint skipped_down      # a query was not sent: its servers were all marked down
                                # or at their most queries in flight
    cdef bint plain_case        # a reply did not echo a random case: asked as given since
    cdef readonly bint finished

    cdef begin(self, ResolverCore r, loop, key, bytes qname, int qtype, int qclass):
        cdef Iterator native
        self.resolver, self.loop, self.key = r, loop, key     # resolve() put it in r.resolutions
        self.infra = (<Cache?>r.cache).infra
        self.max_time = r.lv.max_query_time
        self.corenet = fast_loop(loop) is not None
        try:
            self.iterator = iterator = new_iterator(r, qname, qtype, qclass)
            # A forward or stub zone's servers may have ports of their own, or want TCP.
            if type(iterator) is Iterator:
                self.native = native = <Iterator>iterator
                self.t0 = native.t0
                self.ports = native.ports          # a stub zone's, else None
                if self.corenet:
                    native.deferred = []           # see _outcome
            else:                                  # a Forwarder
                self.t0 = iterator.t0
                self.ports = getattr(iterator, "ports", None)
                self.max_time = getattr(iterator, "time_limit", self.max_time)
                self.try_timeout = getattr(iterator, "try_timeout", 0.0)
                self.counted_tries = self.try_timeout > 0
                if getattr(iterator, "tcp_upstream", False):
                    self.tcp_only = True
                tls = getattr(iterator, "tls_upstream", None)
                if tls is not None:
                    self.tls_pool, self.tls_servers = tls
                if self.corenet:
                    iterator.deferred = []         # see _outcome
            self._advance(self._feed(None))
        except Exception as exc:
            self._crashed(exc)

    def allow_time(self, double seconds):
        """Lets a question whose iterator keeps a time limit of its own (a Forwarder's
        ``time_limit``: a stub's is its first caller's lifetime) take ``seconds`` from its
        start when that is longer: a caller with a longer lifetime has joined it."""
        if self.native is None and seconds > self.max_time and hasattr(self.iterator,
                                                                       "time_limit"):
            self.max_time = self.iterator.time_limit = seconds

    cdef object _feed(self, event):
        """The iterator's next action for ``event`` (None to start it)."""
        if self.native is not None:
            return self.native.step(event)
        return self.iterator.feed(event)

    cdef bint _deferred(self) except -1:
        """Whether the iterator holds rrsets to store once the answer has left."""
        if self.native is not None:
            return bool(self.native.deferred)
        return bool(self.iterator.deferred)

    cdef double _left(self):
        return self._left_at(self.resolver.now())

    cdef inline double _left_at(self, double now):
        return self.max_time - (now - self.t0)

    cdef _advance(self, action):
        """Goes on from the iterator's next step."""
        cdef ResolverCore r = self.resolver
        cdef CQuery qa
        cdef double now, timeout
        cdef bint edns
        while type(action) is CQuery:
            qa = <CQuery>action
            now = r.now()
            if self.counted_tries:
                server = self.infra.pick_down_too_c(qa.servers, now, self._left_at(now),
                                                    &timeout, &edns)
            else:
                server = self.infra.pick_c(qa.servers, now, self._left_at(now), &timeout,
                                           &edns)
            if server is None:
                if not self.counted_tries:
                    info = self.infra.waiting_room(qa.servers, now)
                    if info is not None:
                        self._wait(qa, <ServerInfo>info, now)
                        return
                # Every server the iterator may ask is marked down (none due a probe) or
                # busy (its most queries in flight, max_queries_per_server, or its one query
                # after its timeouts) with no room to wait: nothing is sent, and each is
                # reported as a query that could not leave, so the iterator turns to what
                # else it has (another name's servers) or gives up.
                r.counts.upstream_skipped_down += 1
                self.skipped_down = True
                action = self._feed(Failure(qa.servers[0], "marked down or busy", True))
                continue
            if self.counted_tries:            # each try waits the whole timeout, as glibc's
                timeout = min(self.try_timeout, max(0.01, self._left_at(now)))
            if self.infra.rates.enabled and not self.infra.rates.allow(qa.zone, now):
                # The zone's servers have had their queries for this second (ratelimit).
                r.counts.zone_ratelimited += 1
                self._stop()
                self._finish(_Result(it.SERVFAIL, reason=f"ratelimit of "
                                     f"{to_text(qa.zone)} exceeded"))
                return
            try:
                self._send(server, qa, timeout, edns)
            except UpstreamFailure as exc:    # could not even be sent
                action = self._feed(self._failed(server, exc))
                continue
            except NoDescriptors as exc:      # load on our side: shed, nobody penalised
                self._shed(exc)
            return
        if type(action) is _Result:
            self._finish(action)
        else:                                  # Suspend: DNSSEC work that lets others run
            self.resume = self.loop.call_soon(self._resumed)

    cdef _send(self, str server, CQuery qa, double timeout, bint edns):
        cdef ResolverCore r = self.resolver
        cdef _SharedQuery shared
        self.action, self.server, self.timeout, self.edns = qa, server, timeout, edns
        self.host, self.dport = server, r.port
        if self.ports is not None:
            dest = self.ports.get(server)
            if dest is not None:
                self.host, self.dport = dest
        tls = self.tls_servers.get(server) if self.tls_servers is not None else None
        cdef _SharedQuery mine = None
        key = None
        if not self.tcp_only and tls is None:
            key = (self.host, self.dport, lower(qa.qname), _query_bits(qa, edns))
            # one hash of the key to find the same query in flight or take its place
            mine = _SharedQuery.__new__(_SharedQuery)
            shared = <_SharedQuery>PyDict_SetDefault(r.shared_queries, key, mine)
            if shared is not mine:
                # joined only if its outcome is due within this question's time limit
                if shared.expires <= monotonic() + self._left():
                    r.counts.upstream_joined += 1
                    shared.waiters.append(self)
                    self.shared, self.q = shared, shared.q
                    return
                r.shared_queries[key] = mine    # in place of the one due too late
        try:
            self._ask(r, qa, timeout, edns, tls, key, mine)
        except BaseException:
            if mine is not None:                # not left in the table without its query
                _remove_own(r.shared_queries, key, mine)
            raise

    cdef _ask(self, ResolverCore r, CQuery qa, double timeout, bint edns, tls, key,
              _SharedQuery shared):
        """``_send``'s query itself, once no query in flight could be joined: over TLS to a
        forward zone's server, over TCP, or over UDP as ``shared`` (in the table already)."""
        cdef UDPQuery q
        cdef bytes wire
        qid = fresh_id()
        wire = query_wire(qid, qa.qname, qa.qtype, qa.qclass, edns, edns, EDNS_BUFFER_SIZE,
                          qa.rd, False, qa.ad)
        r.counts.upstream_queries += 1
        # The question the reply must echo: the query's own, sliced from its wire.
        question = PyBytes_FromStringAndSize(PyBytes_AS_STRING(wire) + 12, len(qa.qname) + 4)
        if tls is not None:                   # a forward zone's server over TLS
            self.rtt = -1.0
            self.sent_at = monotonic()
            self.tcp = self.tls_pool.query(self.loop, self.host, self.dport, tls[0], tls[1],
                                           wire, qid, question,
                                           min(r.lv.limits.tcp_timeout, max(self._left(), 0.0)),
                                           r.lv.limits, self._tcp_replied, r.counts, r.source,
                                           tls[2])
            return
        if self.tcp_only:
            r.counts.upstream_tcp += 1
            self.rtt = -1.0                   # measured when the answer comes
            self.sent_at = monotonic()
            self.tcp = TCPQuery(self.loop, self.host, self.dport, wire, qid, question,
                                min(r.lv.limits.tcp_timeout, max(self._left(), 0.0)),
                                r.lv.limits, self._tcp_replied, r.counts, r.source)
            return
        r.counts.upstream_udp += 1
        shared.key, shared.table, shared.waiters = key, r.shared_queries, [self]
        shared.expires = monotonic() + timeout
        asked = None
        if r.caps_for_id and not self.plain_case and self._caps_apply(qa):
            asked = question
            n = len(qa.qname)
            wire = wire[:12] + mixed_case(qa.qname) + wire[12 + n:]
            question = wire[12:16 + n]
        q = UDPQuery.__new__(UDPQuery)
        q.open(self.loop, self.host, self.dport, wire, qid, question, timeout, r.counts,
               r.lv.limits, shared, True, r.source)
        q.asked = asked
        self.q = shared.q = q
        self.shared = shared
        shared.info = self.infra.get(self.server)
        shared.info.inflight += 1

    cdef bint _caps_apply(self, CQuery qa):
        """Whether the query ``qa`` goes out with its name in random case (``caps_for_id``
        on): not a PTR query (some middleboxes mangle the case of reverse names: Unbound
        does not check a PTR reply's), nor one whose name or question is at or below a
        ``caps_exempt`` domain."""
        if qa.qtype == _PTR:
            return False
        cdef frozenset exempt = self.resolver.caps_exempt_wire
        return not exempt or not (_at_or_below(lower(qa.qname), exempt)
                                  or _at_or_below(lower(self.key[0]), exempt))

    cdef _caps_fallback(self, bint first):
        """The reply's question came back in another case than the query's random one: a
        server that does not echo the case, or a forgery that did not guess it. The
        question is asked again of the same server with the name as the iterator gave it,
        as is every later query of this resolution (as Unbound falls back)."""
        cdef ResolverCore r = self.resolver
        if first:
            r.counts.caps_fallbacks += 1
        self.plain_case = True
        try:
            self._send(self.server, <CQuery>self.action,
                       min(self.timeout, max(self._left(), 0.0)), self.edns)
        except UpstreamFailure as exc:
            self._advance(self._feed(self._failed(self.server, exc)))
        except NoDescriptors as exc:
            self._shed(exc)

    cdef bint _out_of_time(self) except -1:
        """The question's time limit has passed: it ends in SERVFAIL (True), else False."""
        if self._left() >= 0:
            return False
        self._finish(_Result(it.SERVFAIL, reason=f"time limit ({self.max_time}s) reached",
                             time_exhausted=True))
        return True

    cdef _wait(self, CQuery qa, ServerInfo info, double now):
        """No server of ``qa`` may be asked now, and ``info``'s has timed out in a row and
        is being asked whether it is down: the question waits for that, trying again
        every initial timeout within its time limit (or sooner: ``_wake_waiting``), rather
        than failing at once or sending one more query to a server that may be dead. A
        burst lost at once (or a stall) costs one query then, not one more per question,
        and the others go on as soon as it answers, or fail fast once it is marked down."""
        if info.waiters is None:
            info.waiters = [self]
        else:
            info.waiters.append(self)
        self.waits_for = info
        self.action = qa
        self.resume = self.loop.call_later(
            min(self.resolver.lv.limits.initial_rto, max(self._left_at(now), 0.0)),
            self._waited)

    cdef int _stop_waiting(self) except -1:
        cdef ServerInfo info = self.waits_for
        if info is not None:
            self.waits_for = None
            if info.waiters is not None and self in info.waiters:
                info.waiters.remove(self)
        return 0

    def _waited(self):
        self.resume = None
        self._stop_waiting()
        if self.finished:
            return
        try:
            if not self._out_of_time():
                self._advance(self.action)
        except Exception as exc:
            self._crashed(exc)

    def _resumed(self):
        self.resume = None
        if self.finished:
            return
        try:
            if not self._out_of_time():
                self._advance(self._feed(None))
        except Exception as exc:
            self._crashed(exc)

    cdef object _outcome(self, UDPQuery q, bint first):
        """The UDP query's reply, timeout or ICMP error (from its ``_SharedQuery``).
        ``first``: this resolution sent it, or took it over, and records what it says of
        the server; the others only see the outcome. Returns the iterator when its final
        rrsets are to be stored once the answer has left, else None (the ``_SharedQuery``
        then stores them and closes the socket)."""
        cdef bint store_later = False
        cdef double rtt
        if self.finished or q is not self.q:
            return None
        self.q = None
        self.shared = None
        iterator = self.iterator
        try:
            err = q.error
            if type(err) is _CapsMismatch:
                self._caps_fallback(first)
                return None
            if err is None:
                wire = q.reply
                rtt = monotonic() - q.sent_at     # sent late in the iteration
                if needs_retry(wire, self.edns):
                    self._retry(q, wire, rtt)
                    return None
                if first:
                    self.infra.record_rtt(self.server, rtt, self.resolver.now())
                    event = new_reply(self.server, wire, rtt, q.parsed)
                else:       # parsed again: a validator may annotate what it is given
                    event = new_reply(self.server, wire, rtt, None)
            elif not first:
                event = (Timeout(self.server) if isinstance(err, _Timeout) else
                         Failure(self.server, str(err), isinstance(err, _Unreachable)))
            elif isinstance(err, _Timeout):
                event = self._timed_out(self.server)
            else:
                event = self._failed(self.server, err)
            action = self._feed(event)
            if self._deferred():
                # The final answer's rrsets wait until the answer has left (the listener's
                # flush is queued before them), unless the resolution goes on.
                if type(action) is _Result:
                    store_later = True
                else:
                    iterator.store_deferred()
            self._advance(action)
        except Exception as exc:
            self._crashed(exc)
        return iterator if store_later else None

    cdef _retry(self, UDPQuery q, bytes wire, double rtt):
        """The reply needs the exchange to go on: FORMERR to EDNS is asked once more
        without EDNS (and remembered), a truncated reply over TCP."""
        cdef ResolverCore r = self.resolver
        cdef double left = self._left()
        if self.edns and (wire[3] & 0x0F) == 1:
            self.infra.set_edns(self.server, False, r.now())
            try:
                self._send(self.server, <CQuery>self.action, min(self.timeout, max(left, 0.0)),
                           False)
            except UpstreamFailure as exc:
                self._advance(self._feed(self._failed(self.server, exc)))
            except NoDescriptors as exc:
                self._shed(exc)
            return
        r.counts.upstream_tcp += 1
        self.rtt = rtt
        if left <= 0:
            self._advance(self._feed(self._timed_out(self.server)))
            return
        wire, question = q.wire, q.question
        if q.asked is not None:               # over TCP the name as the iterator gave it
            question = q.asked
            wire = wire[:12] + question + wire[12 + len(question):]
        self.tcp = TCPQuery(self.loop, self.host, self.dport, wire, q.qid, question,
                            min(r.lv.limits.tcp_timeout, left), r.lv.limits, self._tcp_replied,
                            r.counts, r.source)

    def _tcp_replied(self, tq):
        if self.finished or tq is not self.tcp:
            return
        self.tcp = None
        try:
            err = tq.error
            if self.rtt < 0:
                self.rtt = monotonic() - self.sent_at
            if err is None:
                self.infra.record_rtt(self.server, self.rtt, self.resolver.now())
                event = new_reply(self.server, tq.reply, self.rtt, tq.parsed)
            elif isinstance(err, _Timeout):
                event = self._timed_out(self.server)
            elif isinstance(err, _NoDescriptors):
                self._shed(err)
                return
            else:
                event = self._failed(self.server, err)
            self._advance(self._feed(event))
        except Exception as exc:
            self._crashed(exc)

    cdef object _timed_out(self, str server):
        self.resolver.counts.upstream_timeouts += 1
        self.infra.record_timeout(server, self.resolver.now(), self.timeout)
        return Timeout(server)

    cdef object _failed(self, str server, exc):
        cdef ResolverCore r = self.resolver
        r.counts.upstream_failures += 1
        if isinstance(exc, _Unreachable):
            r.counts.upstream_unreachable += 1
            self.infra.record_unreachable(server, r.now())
            return Failure(server, str(exc), True)
        self.infra.record_failure(server, r.now())
        return Failure(server, str(exc))

    cdef _shed(self, exc):
        """The process has no descriptor for the next upstream query: the question ends in
        SERVFAIL (counted, logged at WARNING at most every 10 seconds) and no server is
        blamed."""
        global _warned_at
        cdef ResolverCore r = self.resolver
        if isinstance(exc, SocketCap):      # our own cap: counted, not worth a warning
            r.counts.upstream_capped += 1
            self._stop()
            self._finish(_Result(it.SERVFAIL, reason=str(exc)))
            return
        r.counts.no_descriptors += 1
        now = monotonic()
        if now - _warned_at >= 10.0:
            _warned_at = now
            log.warning("out of file descriptors (%s): questions are answered SERVFAIL until "
                        "some close (%d so far); raise the limit or lower max-inflight",
                        exc, r.counts.no_descriptors)
        self._finish(_Result(it.SERVFAIL, reason=f"out of file descriptors: {exc}"))

    cdef _crashed(self, exc):
        """A bug: reported, and the waiters get SERVFAIL."""
        log.error("resolving %s/%d failed", to_text(self.key[0]), self.key[1], exc_info=exc)
        self._stop()
        self._finish(_Result(it.SERVFAIL, reason=f"internal error: {exc!r}"))

    cdef _stop(self):
        """Closes what is in flight."""
        if self.q is not None:
            if self.shared is not None:
                self.shared.leave(self)
                self.shared = None
            else:
                self.q.close()
            self.q = None
        if self.tcp is not None:
            self.tcp.close()
            self.tcp = None
        if self.resume is not None:
            self.resume.cancel()
            self.resume = None
        self._stop_waiting()
        if self.iterator is not None and self._deferred():
            self.iterator.store_deferred()

    cdef tuple _dest(self, str server):
        """(address, port) where ``server`` (as the iterator names it) is asked."""
        if self.ports is not None:
            dest = self.ports.get(server)
            if dest is not None:
                return tuple(dest)
        return (server, self.resolver.port)

    cdef _release(self):
        _remove_own(self.resolver.resolutions, self.key, self)

    cdef _finish(self, res):
        if self.finished:
            return
        self.finished = True
        self._release()
        cdef CResult out = res          # its fields read in C
        if out is not None:
            if type(out.server) is str:
                out.server = self._dest(out.server)
            if out.errors is not None:
                out.errors = [(self._dest(s), what) if type(s) is str else (s, what)
                              for s, what in out.errors]
        if (self.skipped_down and res is not None and res.rcode == it.SERVFAIL
                and res.ede is None):
            # RFC 8914 code 22: no authority could be reached (servers down or busy).
            errors = res.errors
            res = _Result(it.SERVFAIL, res.answer, res.authority,
                          f"no reachable authority ({res.reason})", res.time_exhausted,
                          res.security, EDE_NO_REACHABLE_AUTHORITY)
            res.errors = errors
        if res is not None and self.resolver.dnssec is not None:
            self.resolver.counts.count_security(res.security)
            if (res.security == _BOGUS and self.resolver.val_log_level > 0
                    and (<CResult>res).server is not None):    # (not made again from the cache)
                _log_validation_failure(self.key, res, self.resolver.val_log_level)
            if (res.security == _SECURE and _sentinel_length(self.key[0], self.key[1])
                    and self.resolver.dnssec.root_key_sentinel):
                # RFC 8509: a root key sentinel name's secure answer, checked against the
                # root's trust anchor (resolver.dnssec.sentinel)
                res = sentinel_verdict(self.key[0], res, self.resolver.dnssec.anchors)
        self._call(res)

    cdef _call(self, res):
        waiters, self.waiters = self.waiters, None
        for cb in waiters:
            try:
                if type(cb) is Drive:       # the daemon's: called in C
                    (<Drive>cb).resolved(res)
                else:
                    cb(res)
            except Exception:
                log.exception("a resolution's callback failed")

    def discard(self, callback):
        """``callback`` no longer waits; the resolution stops if nobody else does."""
        if self.waiters is None:        # finished
            return
        try:
            self.waiters.remove(callback)
        except ValueError:
            return
        if not self.waiters:
            self.cancel()

    def cancel(self):
        """Stops the resolution (its sockets closed now); every waiter gets ``None``."""
        if self.finished:
            return
        self.finished = True
        self._stop()
        self._release()
        self._call(None)


cdef class MissDone:
    """What a Drive calls in C when it ends: ``finished(drive, response)``, the response None
    when the miss was cancelled (resolver.daemon.admission's). A ``done`` of any other type is
    called as ``done(drive, response)``."""

    cdef int finished(self, Drive drive, object response) except -1:
        raise NotImplementedError


cdef inline _call_done(done, Drive drive, response):
    if isinstance(done, MissDone):
        (<MissDone>done).finished(drive, response)
    else:
        done(drive, response)


@cython.freelist(64)
cdef class Drive:
    """One client query's miss for the daemon: its question's Resolution, then the
    response (``response.finish``) passed to ``done(drive, response)`` once; ``done(drive,
    None)`` if it is cancelled. A SERVFAIL whose resolution had followed part of a
    CNAME/DNAME chain keeps that chain for whoever holds the Drive (``failed_chain``)."""

    # fields: resolution.pxd

    def __init__(self, ResolverCore resolver, loop, bytes query, tuple miss, done):
        self.begin(resolver, loop, query, miss, done)

    cdef begin(self, ResolverCore resolver, loop, bytes query, tuple miss, done):
        """``__init__``, for ``start``, which makes its Drives without a Python call."""
        self.resolver, self.query, self.miss, self.done = resolver, query, miss, done
        cdef Parsed m = miss[0]
        self.resolution = resolve_client(resolver, m.qname, m.qtype, m.qclass, loop, self,
                                         False, miss[2] and miss[3])

    def __call__(self, res):
        """The Resolution's callback (a Drive waits on it as itself)."""
        self.resolved(res)

    cdef resolved(self, res):
        if self.finished:
            return
        done = self._settle()
        if res is None:
            _call_done(done, self, None)
            return
        cdef bytes response = finish_miss(self.resolver, self.query, self.miss, res)
        if len(response) > 3 and (response[3] & 0x0F) == 2:   # SERVFAIL, not served stale
            self.failure = (res.ede, res.reason)     # for the daemon's log-servfail
            if res.ede == EDE_NO_REACHABLE_AUTHORITY and self.resolver.ede:
                response = with_ede(response, EDE_NO_REACHABLE_AUTHORITY, res.reason)
            if res.answer and res.rcode == it.SERVFAIL:  # the chain it reached
                self.chain_failure = res
        _call_done(done, self, response)

    def stale(self):
        """While the resolution runs: the response its cache entry gives now
        (``response.stale_answer``: an expired answer in its stale window, or a fresh one
        stored meanwhile), for a client that has waited long enough (RFC 8767's client
        response timer); None when there is none or the Drive has finished. The resolution
        goes on and refreshes the entry."""
        if self.finished:
            return None
        return stale_answer(self.resolver, self.query, self.miss)

    def failed_chain(self):
        """The SERVFAIL this Drive handed to ``done`` with the answer section its resolution
        had reached before it failed (the CNAME/DNAME chain followed: one too long, a loop,
        a link whose target failed), as ``response.failed_with_chain`` writes it, for the
        response policy to check the chain's names. None when the Drive has not finished,
        was cancelled, answered other than SERVFAIL, or its resolution followed no link. The
        response handed over never carries the chain, as Unbound's does not."""
        if self.chain_failure is None:
            return None
        return failed_with_chain(self.query, self.miss, self.chain_failure)

    def cancel(self):
        """Stops waiting (the resolution stops if nobody else waits); ``done(None)``."""
        if self.finished:
            return
        resolution = self.resolution
        done = self._settle()
        if resolution is not None:
            resolution.discard(self)
        _call_done(done, self, None)

    cdef object _settle(self):
        """Finished: lets go of the resolution and of ``done`` (often a method of an object
        holding this drive), and returns ``done`` for its one call. Without these cycles a finished
        miss's objects are freed as soon as the last reference goes, not by a later run of
        the cyclic collector."""
        done = self.done
        self.finished = True
        self.resolution = None
        self.done = None
        return done
