# cython: language_level=3
"""A cache miss resolved by callbacks: the daemon's way to the iterator, with no Task.

``Resolver.resolve_message`` runs a miss as a coroutine in its caller's task: per client
query a Task, four coroutine frames and a total-time timer, and per upstream query a Future
whose result wakes the task through the loop's ready queue. A Drive does the same work from
the upstream query's own completion callback (``UDPQuery(on_done=...)``): it feeds the
Iterator, sends the next query or builds the response, and calls ``done(response)`` once.

The time limit is kept without a timer: the iterator checks its budget before every upstream
query, and each query's timeout is at most the time the resolution has left.

What a callback cannot do goes on in a task, through the same coroutines as
``resolve_message``: DNSSEC work that yields (``Suspend``), a retry without EDNS or over TCP,
and a question already being resolved for another client (which shares that resolution).
"""
import logging
import time

from corenet.capi cimport Loop, call_before_poll, fast_loop
from resolver import iterator as it
from resolver.response import finish as finish_miss, hit_or_begin
from resolver.state cimport ResolverCore
from resolver.iterator.events cimport Query as CQuery
from resolver.wire.codec cimport Parsed, query_wire
from resolver.wire.names cimport lower
from resolver.cache.infra cimport InfraCache
from resolver.cache.store cimport Cache
from resolver.upstream.udp cimport UDPQuery, fresh_id, needs_retry
from resolver.dnssec import Suspend
from resolver.iterator import Reply, Result
from resolver.limits import EDNS_BUFFER_SIZE
from resolver.upstream.errors import UpstreamFailure, UpstreamTimeout
from resolver.wire.codec import to_text

log = logging.getLogger("resolver.engine")

cdef object monotonic = time.monotonic
cdef object _Result = Result
cdef object _Reply = Reply
cdef object _Suspend = Suspend
cdef object _Timeout = UpstreamTimeout


cpdef object start(ResolverCore resolver, bytes query, done, loop):
    """``resolve_message`` for the daemon, by callbacks rather than a coroutine: the
    response now (a cache hit or an error), or a :class:`Drive` that calls ``done(drive,
    response)`` once (maybe before it is returned), or ``done(drive, None)`` if it is
    cancelled. ``loop`` is the running loop. Raises WireError for a query shorter than a
    header. (``Resolver.start_miss``.)"""
    miss = hit_or_begin(resolver, query)
    if type(miss) is bytes:
        return miss
    return Drive(resolver, loop, query, miss, done)


cpdef object iterator_for(ResolverCore r, qname, qtype, qclass):
    """A new Iterator for one question (``Resolver._iterator``), with the root hints indexed
    once per resolver (and its root priming shared through them)."""
    hints = r._hints
    if hints is None or hints.ipv6 != r.ipv6 or r._hints_src is not r.hints:
        hints = r._hints = it.Hints(r.hints, r.ipv6, prime=True)
        r._hints_src = r.hints
    return it.Iterator(qname, qtype, qclass, r.cache, hints, r.clock, limits=r.limits,
                       minimise=r.minimise, ipv6=r.ipv6, validator=r.validator,
                       stats=r._stats, dnssec=r.dnssec)


cdef class Shared:
    """A resolution in flight: the task of the caller running it inline (``owner``), the
    daemon's Drive running it by callbacks (``drive``) or the task either handed it to, and
    its result future, made when an identical caller (or ``close``) first waits on it."""

    cdef public object fut, owner, task, drive
    cdef public Py_ssize_t waiters

    def __init__(self, owner, drive=None):
        self.fut = None
        self.owner = owner
        self.task = None
        self.waiters = 0
        self.drive = drive

    def future(self, loop):
        if self.fut is None:
            self.fut = loop.create_future()
        return self.fut


cpdef forget(ResolverCore r, key, Shared shared):
    """``Resolver._forget``: the question is no longer in flight for ``shared``."""
    inflight = r._inflight
    if inflight.get(key) is shared:
        del inflight[key]


cdef class Drive:
    """One client query's miss in flight (see the module's docstring); ``done(drive,
    response)`` is called once, with None if it was cancelled."""

    cdef ResolverCore resolver
    cdef object loop
    cdef bytes query
    cdef tuple miss
    cdef object done
    cdef object key
    cdef object shared
    cdef object iterator
    cdef InfraCache infra
    cdef double max_time
    cdef object action         # the Query being asked
    cdef UDPQuery q            # its UDPQuery
    cdef object task           # the task the rest was handed to, if any
    cdef str server
    cdef double timeout
    cdef bint edns
    cdef readonly bint finished

    def __init__(self, ResolverCore resolver, loop, bytes query, tuple miss, done):
        self.resolver, self.loop, self.query, self.miss, self.done = (resolver, loop, query,
                                                                      miss, done)
        cdef Parsed m = miss[0]
        key = self.key = (lower(m.qname), m.qtype, m.qclass)
        inflight = resolver._inflight
        if key in inflight:
            # Someone is resolving this question already: wait for it in a task, as
            # resolve_message does (counted there as coalesced).
            self.shared = None
            self._hand_over(resolver.resolve_miss(query, miss), True)
            return
        self.shared = inflight[key] = Shared(None, self)
        self.infra = (<Cache?>resolver.cache).infra
        self.max_time = resolver.lv.max_query_time
        try:
            self.iterator = resolver._iterator(m.qname, m.qtype, m.qclass)
            if fast_loop(loop) is not None:
                self.iterator.deferred = []      # see _replied
            self._advance(self.iterator.start())
        except Exception as exc:
            self._crashed(exc)

    cdef _advance(self, action):
        """Goes on from the iterator's next step."""
        cdef ResolverCore r = self.resolver
        cdef double now
        cdef CQuery qa
        while type(action) is CQuery:
            qa = <CQuery>action
            now = r.clock()         # as Resolver._server_for
            server, timeout, edns = self.infra.pick(qa.servers, now, self.max_time
                                                    - (now - self.iterator.t0))
            qid = fresh_id()
            wire = query_wire(qid, qa.qname, qa.qtype, qa.qclass, edns, edns, EDNS_BUFFER_SIZE)
            try:
                # The question the reply must echo: the query's own, sliced from its wire.
                q = UDPQuery(self.loop, server, r.port, wire, qid,
                             wire[12:12 + len(qa.qname) + 4], timeout, r._stats, r.lv.limits,
                             self._replied, True)
            except UpstreamFailure as exc:    # could not even be sent
                r._stats.upstream_queries += 1
                action = self.iterator.feed(r._failed(server, exc))
                continue
            r._stats.upstream_queries += 1
            self.action, self.q, self.server, self.timeout, self.edns = (action, q, server,
                                                                         timeout, edns)
            return
        if isinstance(action, _Result):
            self._finish(action)
        else:                                  # Suspend: DNSSEC work that lets others run
            self._hand_over(self._rest(action, None), False)

    def _replied(self, UDPQuery q):
        """UDPQuery's on_done: a reply, a timeout or an ICMP error."""
        cdef ResolverCore r = self.resolver
        cdef bint store_later = False
        if self.finished or q is not self.q:
            return
        self.q = None
        iterator = self.iterator
        try:
            err = q.error
            if err is None:
                wire = q.reply
                rtt = monotonic() - q.sent_at     # sent late in the iteration
                if needs_retry(wire, self.edns):
                    self._hand_over(self._rest(None, r._retried(
                        q, wire, q.parsed, rtt, self.server, self.action, self.timeout,
                        self.edns, self.loop)), False)
                    return
                self.infra.record_rtt(self.server, rtt)       # Resolver._replied, inline
                event = _Reply(self.server, wire, rtt, q.parsed)
            elif isinstance(err, _Timeout):
                event = r._timed_out(self.server)
            else:
                event = r._failed(self.server, err)
            action = iterator.feed(event)
            if iterator.deferred:
                # The final answer's rrsets wait until the answer has left (the listener's
                # flush is queued before them), unless the resolution goes on.
                if type(action) is _Result:
                    store_later = True
                else:
                    iterator.store_deferred()
            self._advance(action)
        except Exception as exc:
            self._crashed(exc)
        finally:
            if store_later:
                call_before_poll(<Loop>self.loop, iterator.store_deferred)
            self._close_later(q)

    cdef _close_later(self, UDPQuery q):
        """Closes the finished query's socket once this iteration's answers and next
        queries have left (corenet runs its before-poll callbacks in order), so its close(2)
        is not on the way to the client. The query takes no more events meanwhile (it is
        finished)."""
        if q.corenet:
            call_before_poll(<Loop>self.loop, (<object>q).close)
        else:
            q.close()

    cdef _rest(self, action, pending):
        """The resolution from here on as a coroutine, under what is left of the time limit."""
        m = self.miss[0]
        return self.resolver._bounded(m.qname, m.qtype, m.qclass, self.loop, None,
                                      self.iterator, action, pending)

    cdef _hand_over(self, coro, bint whole):
        """The rest runs in a task: ``coro`` returns the Result (or, ``whole``, the response)."""
        if self.iterator is not None and self.iterator.deferred is not None:
            self.iterator.store_deferred()
            self.iterator.deferred = None          # the task's coroutines store as they go
        task = self.task = self.loop.create_task(coro)
        if self.shared is not None:
            self.shared.task = task
        task.add_done_callback(self._handed_whole if whole else self._handed)

    def _handed(self, task):
        if self.finished:
            return
        if task.cancelled():
            self.cancel()
        else:
            self._finish(task.result())       # Resolver._bounded never raises

    def _handed_whole(self, task):
        if self.finished:
            return
        if task.cancelled():
            self.cancel()
            return
        self.finished = True
        exc = task.exception()
        if exc is not None:
            log.error("resolving a shared question failed: %r", exc)
            self.done(self, finish_miss(self.resolver, self.query, self.miss, Result(
                it.SERVFAIL, reason=f"internal error: {exc!r}")))
        else:
            self.done(self, task.result())

    cdef _crashed(self, exc):
        """A bug: reported, and the client gets SERVFAIL (as Resolver._bounded does)."""
        m = self.miss[0]
        log.error("resolving %s/%d failed", to_text(m.qname), m.qtype, exc_info=exc)
        if self.q is not None:
            self.q.close()
            self.q = None
        self._finish(_Result(it.SERVFAIL, reason=f"internal error: {exc!r}"))

    cdef _release(self):
        shared = self.shared
        if shared is not None:
            forget(self.resolver, self.key, shared)
            shared.drive = None

    cdef _finish(self, res):
        if self.finished:
            return
        self.finished = True
        self._release()
        shared = self.shared
        if shared is not None:
            fut = shared.fut
            if fut is not None and not fut.done():
                fut.set_result(res)
        self.done(self, finish_miss(self.resolver, self.query, self.miss, res))

    def cancel(self):
        """Stops the resolution (its sockets closed now); ``done(None)`` is called."""
        if self.finished:
            return
        self.finished = True
        if self.q is not None:
            self.q.close()
            self.q = None
        if self.task is not None:
            self.task.cancel()
        self._release()
        shared = self.shared
        if shared is not None and shared.fut is not None:
            shared.fut.cancel()
        self.done(self, None)
