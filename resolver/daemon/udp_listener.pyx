# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# Every read of a datagram goes through a pointer after an explicit check against its length
# (and the batch arrays are indexed by the kernel's count, at most BATCH), so Cython's own
# bounds checks would only duplicate them.
"""The daemon's UDP listener on corenet's loop: an FdWatcher called straight from epoll.

Each wake-up drains datagrams with ``recvmmsg`` in batches (up to 2,048 datagrams, so that a
flood finds the socket drained and a cached name's query is not lost in a full receive
buffer), answers the hits of each batch as it is read, and starts the wake-up's misses only
once all its batches are read and answered. Besides its epoll wake-ups, the loop reads the
socket again between two callbacks of an iteration once ``read_interval`` seconds of it have
passed (``corenet.capi.read_often``): a cached name waits about that long at most behind the
replies, timers and callbacks of the misses started before it. A query whose answer is in the
message cache is answered without leaving C (``resolver.cache.answer``: parse the question, find the
entry, copy it, patch ID, RD, question case and TTLs, truncate to the client's EDNS size or
512), and all answers of a batch go out with one ``sendmmsg``. Short packets, responses and
oversized datagrams are counted (in the front door's ``Counters``) and dropped; every other
datagram gets the front door's verdict (``resolver.daemon.admission``, in C): answered at once (a hit, REFUSED, NOTIMP, a
local answer), dropped, or a miss. Misses (and entries due for prefetch) go to
``on_miss(query, addr, send, over, absent)``, ``absent`` the query's message cache key when
the cache has no fresh entry for it (the engine need neither look again nor build the key),
else None, ``over`` set past
a quota of misses per loop iteration that adapts to how long the loop's
iterations take (``_iteration_end``): the engine then starts the miss only for a client with
none in flight, and drops and counts (``busy``) the others, while hits are still answered.
The engine's answers come back through ``send(answer)``, which queues them on the listener;
it gathers those of one loop iteration for one ``sendmmsg`` (a burst of misses wakes the
client once, not per answer). With ``query_log`` set, each answer the listener makes itself
is logged there (the misses' answers are logged by the dispatch): logging changes no path.
The helper at the end (the UDP size of a query) serves the Python paths too.
"""
from libc.stdint cimport uint32_t
from libc.string cimport memcpy, memset

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF

from corenet.capi cimport (EPOLLIN, FdWatcher, Loop, call_before_poll, fast_loop, read_often,
                           unwatch, watch)
from resolver.cache.answer cimport monotonic
from resolver.daemon.admission cimport (ALLOWED, DROP_LOCAL, HIT, MISS, OUTSIDE, R_BUSY,
                                        R_INTERNAL_ERROR, R_OVERSIZE, R_SEND_ERROR, SNOOPER,
                                        Counters, FrontDoor)

import logging

from resolver.cache.answer import truncate   # re-exported: the Python paths truncate with it

logger = logging.getLogger("resolver.daemon.server")

from corenet.batch cimport *
from resolver.daemon.acl cimport ACL

from libc.stdlib cimport malloc, free
from resolver.wire.names cimport u16, skip_name

cdef enum:
    MAX_NAME = 255
    T_OPT = 41
    BATCHES_PER_WAKEUP = 32     # then other descriptors get their turn (level-triggered)
    ITERATION_BUCKETS = 8

#: Upper bounds (ms) of the buckets counting how long a loop iteration worked after the
#: listener woke (the last bucket has no bound): what a cached name waits behind at worst.
ITERATION_BOUNDS_MS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
cdef double _bounds[ITERATION_BUCKETS - 1]
for _i, _b in enumerate(ITERATION_BOUNDS_MS):
    _bounds[_i] = _b / 1000.0


def runs_on(loop) -> bool:
    """Whether a UDPListener can serve on ``loop`` (corenet's loop); on any other asyncio
    loop the daemon uses a DatagramProtocol."""
    return fast_loop(loop) is not None


cdef class UDPListener(FdWatcher):
    """One UDP socket of the daemon on corenet's loop (see the module docstring)."""
    cdef Loop loop
    cdef object sock
    cdef FrontDoor front        # the verdict on each query
    cdef Counters counts        # the front door's counter block: this listener counts there
    cdef object on_miss         # on_miss(query: bytes, addr, send, over, absent key or None)
    cdef public object query_log    # query_log(client, query, answer, "udp", 0.0, hit) or None
    cdef cn_batch* batch
    cdef cn_outbox* outbox      # the engine's answers, sent before the loop next polls
    cdef list outkeep           # ... and the bytes they point into
    cdef object flush_cb
    cdef ACL acl
    cdef ACL snoop              # may also ask with RD clear (answered from the cache)
    cdef public unsigned int misses_per_wakeup  # the most misses one iteration passes on
    cdef public double busy_target  # a loop iteration longer than this: the loop is behind
    cdef double read_interval       # the socket is read again after this much of an iteration
    cdef unsigned int quota         # misses one iteration may pass on (see _iteration_end)
    cdef unsigned int iteration_misses # ... passed on so far in this iteration
    cdef bint behind                # a read of this iteration found a full batch: a backlog
    cdef double woke_at
    cdef bint measuring
    cdef object iteration_end_cb
    cdef list keep              # answers referenced by the pending sendmmsg
    cdef list misses            # (query, addr, over, absent key) of this wake-up, started once read
    cdef bint closed
    # what only this listener knows (read by metrics through counters()); its verdicts and
    # drops are counted in the front door's block
    cdef readonly unsigned long long received
    # how long the loop worked after each wake-up (see ITERATION_BOUNDS_MS), and the longest
    cdef unsigned long long iteration_counts[ITERATION_BUCKETS]
    cdef readonly double iteration_max

    def __cinit__(self, int fd):
        self.batch = <cn_batch*>malloc(sizeof(cn_batch))
        self.outbox = <cn_outbox*>malloc(sizeof(cn_outbox))
        if self.batch == NULL or self.outbox == NULL:
            raise MemoryError()
        cn_batch_init(self.batch)
        self.outbox.n = 0
        self.keep = []
        self.outkeep = []
        self.misses = []

    def __dealloc__(self):
        free(self.batch)
        free(self.outbox)

    def setup(self, loop, sock, FrontDoor front not None, on_miss, ACL acl not None,
              ACL snoop=None, unsigned int misses_per_wakeup=256, double busy_target=0.01,
              query_log=None, double read_interval=0.0005):
        """Made as ``UDPListener(fd)`` (FdWatcher's constructor), then set up here."""
        self.loop = fast_loop(loop)
        if self.loop is None:
            raise TypeError("UDPListener needs corenet's loop")
        self.sock = sock
        self.front = front
        self.counts = front.counters
        self.on_miss = on_miss
        self.query_log = query_log
        self.flush_cb = self.flush
        self.acl = acl
        self.snoop = snoop if snoop is not None else ACL()
        self.misses_per_wakeup = self.quota = max(1, misses_per_wakeup)
        self.busy_target = busy_target
        self.read_interval = read_interval
        self.iteration_end_cb = self._iteration_end

    def start(self):
        watch(self.loop, self, EPOLLIN)
        read_often(self.loop, self, self.read_interval)

    def stop_reading(self):
        """No more queries (a graceful stop); answers to those in flight still go out."""
        if self.registered:
            unwatch(self.loop, self)

    def close(self):
        if self.closed:
            return
        self.flush()
        self.closed = True
        unwatch(self.loop, self)
        self.sock.close()

    def counters(self):
        """What this listener counts itself, for metrics: datagrams read and its loop
        iterations (its verdicts and drops are in the front door's ``Counters``)."""
        return {
            "received": self.received,
            "iterations": [self.iteration_counts[i] for i in range(ITERATION_BUCKETS)],
            "iteration_max": self.iteration_max,
        }

    cdef int queue(self, bytes data, addr) except -1:
        """Queues ``data`` for ``addr`` (each miss's ``send(answer)``)."""
        if self.closed:
            return 0
        if self.outbox.n >= CN_BATCH:
            self.flush()
        cn_out_add(self.outbox, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), addr)
        self.outkeep.append(data)
        if self.outbox.n == 1:
            call_before_poll(self.loop, self.flush_cb)
        return 0

    def flush(self):
        """Sends the answers ``send`` queued (the loop calls it once per iteration)."""
        if self.outbox.n and not self.closed:
            self.counts.drops[R_SEND_ERROR] += cn_out_flush(self.fd, self.outbox)
        self.outbox.n = 0
        self.outkeep.clear()

    cdef int on_events(self, Loop loop, uint32_t events) except -1:
        cdef int b, r
        if self.closed:
            return 0
        if not self.measuring:
            self.measuring = True
            self.woke_at = monotonic()
            call_before_poll(self.loop, self.iteration_end_cb)
        for b in range(BATCHES_PER_WAKEUP):
            r = cn_recv(self.fd, self.batch)
            if r <= 0:
                break
            if b == 0 and r == CN_BATCH:
                self.behind = True
            try:
                self._batch(r)
            except Exception:
                # A bug (or an entry the C path does not know): logged and counted, the
                # batch's pending answers dropped, and the listener keeps serving.
                self.batch.nsend = 0
                self.keep.clear()
                self.counts.drops[R_INTERNAL_ERROR] += 1
                logger.exception("UDP listener: batch of %d datagrams failed", r)
            if self.closed or r < CN_BATCH:
                break
        if self.misses:
            self._start_misses()
        return 0

    cdef int _start_misses(self) except -1:
        """Passes this wake-up's misses on, once every hit it read is answered: a cached
        name waits behind no miss that reached the socket before it."""
        cdef ClientSend send
        misses, self.misses = self.misses, []
        on_miss = self.on_miss
        try:
            for q, a, over, absent in misses:
                send = ClientSend.__new__(ClientSend)
                send.listener, send.addr = self, a
                on_miss(q, a, send, over, absent)
        except Exception:
            self.counts.drops[R_INTERNAL_ERROR] += 1
            logger.exception("UDP listener: starting %d misses failed", len(misses))
        return 0

    def _iteration_end(self):
        """Before the loop polls again: how long this iteration worked after the wake-up
        sets the next iterations' miss quota. The quota holds only while the listener is
        behind (a read found a whole batch waiting, which a client's burst of a few dozen
        queries never fills): then past ``busy_target`` the quota halves (the
        misses started are what slows the loop: each brings replies and timers back), below
        it the quota grows back by steps, so under a flood the loop settles near the target.
        (A cached name does not wait for the iteration's end: see ``read_interval``.)"""
        cdef double took = monotonic() - self.woke_at
        cdef int b = 0
        cdef bint behind = self.behind
        self.measuring = False
        self.behind = False
        self.iteration_misses = 0
        while b < ITERATION_BUCKETS - 1 and took > _bounds[b]:
            b += 1
        self.iteration_counts[b] += 1
        if took > self.iteration_max:
            self.iteration_max = took
        if behind and took > self.busy_target:
            self.quota = max(1, self.quota >> 1)
        elif self.quota < self.misses_per_wakeup:
            self.quota = min(self.misses_per_wakeup, self.quota + 2)

    cdef int _batch(self, int count) except -1:
        cdef int i, family, port, who, v
        cdef unsigned char* p
        cdef Py_ssize_t n
        cdef unsigned char addr[16]
        cdef PyObject* absent
        cdef unsigned int qtype
        cdef bint trunc
        cdef double now = monotonic()
        cdef list misses = self.misses
        cdef FrontDoor front = self.front
        cdef Counters counts = self.counts
        for i in range(count):
            self.received += 1
            n = cn_msg_len(self.batch, i)
            p = cn_msg_buf(self.batch, i)
            if cn_msg_flags(self.batch, i) & MSG_TRUNC:
                counts.drops[R_OVERSIZE] += 1
                continue
            family = cn_addr_bytes(cn_msg_addr(self.batch, i), addr, &port)
            if self.snoop.n > 0 and self.snoop.allows_raw(family, addr):
                who = SNOOPER
            elif self.acl.allows_raw(family, addr):
                who = ALLOWED
            else:
                who = OUTSIDE
            absent = NULL
            qtype = 0
            trunc = False
            v = front.admit(p, n, who, True, now, &absent, &qtype, &trunc)
            if v == MISS:
                if absent != NULL:          # admit's reference, now this variable's
                    key = <object>absent
                    Py_DECREF(key)
                else:
                    key = None
                # Behind (past the quota): hits first; a miss goes on only if its client has
                # none in flight (the engine decides), and past twice the quota not at all.
                over = self.behind and self.iteration_misses >= self.quota
                if over and self.iteration_misses >= self.quota + self.misses_per_wakeup:
                    counts.drops[R_BUSY] += 1
                    continue
                self.iteration_misses += 1
                misses.append((PyBytes_FromStringAndSize(<char*>p, n),
                               cn_addr_tuple(cn_msg_addr(self.batch, i)), over, key))
                continue
            if v <= DROP_LOCAL:
                counts.acted(v)
                continue
            out = front.take()
            counts.udp_answered(v, out, qtype, trunc)
            self.keep.append(out)
            cn_queue(self.batch, i, PyBytes_AS_STRING(out), PyBytes_GET_SIZE(out))
            if self.query_log is not None:
                self.query_log(cn_addr_tuple(cn_msg_addr(self.batch, i))[0],
                               PyBytes_FromStringAndSize(<char*>p, n), out, "udp", 0.0, v == HIT)
        if self.batch.nsend:
            counts.drops[R_SEND_ERROR] += cn_flush(self.fd, self.batch)
            self.keep.clear()
        return 0


cdef class ClientSend:
    # fields: udp_listener.pxd

    def __call__(self, bytes data):
        (<UDPListener>self.listener).queue(data, self.addr)

    cdef int send(self, bytes data) except -1:
        return (<UDPListener>self.listener).queue(data, self.addr)


# ---------------------------------------------------------------------------------------------
# Helpers shared with the Python paths


def udp_limit(bytes q):
    """Largest UDP answer this query accepts: its EDNS payload size (at least 512), else 512."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(q)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(q), pos = 12
    cdef unsigned int i, total, payload
    if n < 12:
        return 512
    for i in range(u16(p + 4)):
        pos = skip_name(p, n, pos)
        if pos < 0 or pos + 4 > n:
            return 512
        pos += 4
    total = u16(p + 6) + u16(p + 8) + u16(p + 10)
    for i in range(total):
        pos = skip_name(p, n, pos)
        if pos < 0 or pos + 10 > n:
            return 512
        if u16(p + pos) == T_OPT:
            payload = u16(p + pos + 2)
            return payload if payload > 512 else 512
        pos += 10 + u16(p + pos + 8)
    return 512


