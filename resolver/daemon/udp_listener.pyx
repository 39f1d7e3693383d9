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
message cache is answered without leaving C (``resolver.cache.answer``: parse the question,
find the entry, copy it, patch ID, RD, question case and TTLs, truncate to the client's EDNS
size or 512), and all answers of a batch go out with one ``sendmmsg``, those of one size to
one client (a burst of its queries) in one message the kernel cuts into datagrams.
Oversized datagrams are counted (in the front door's ``Counters``) and dropped; every other
datagram goes to the front door (``FrontDoor.handle_at``, in C) with the listener's batch
slot as its reply (``UdpSlot``): the door answers into the slot (a hit, REFUSED, NOTIMP, a
local answer), drops, or hands a miss back to the slot (``held``), which keeps it, with the
query's message cache key when the cache has no fresh entry for it (the engine need neither
look again nor build the key), for the end of the wake-up. Then the misses go back to the door
(``FrontDoor.miss``, in C), each with a ``UdpReply`` for its client's address, ``busy`` set past a
quota of misses per loop iteration that adapts to how long the loop's iterations take
(``_iteration_end``): the door then starts the miss only for a client with none in flight,
and drops and counts (``busy``) the others, while hits are still answered. The engine's
answers come back through the ``UdpReply``, which queues them on the listener; it gathers
those of one loop iteration for one ``sendmmsg`` (a burst of misses wakes the client once,
not per answer).
"""
from libc.stdint cimport uint32_t
from libc.string cimport memcpy, memset

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF

from corenet.capi cimport (EPOLLIN, FdWatcher, Loop, call_before_poll, fast_loop, read_often,
                           unwatch, watch)
from resolver.cache.answer cimport monotonic
from resolver.daemon.admission cimport (R_BUSY, R_INTERNAL_ERROR, R_OVERSIZE,
                                        R_SEND_ERROR, T_UDP, Counters, FrontDoor, Reply)

import logging

from resolver.cache.answer import truncate   # re-exported: the Python paths truncate with it
from resolver.daemon.admission import udp_limit     # re-exported as well

logger = logging.getLogger("resolver.daemon.server")

from corenet.batch cimport *
from resolver.daemon.acl cimport ACL

from libc.stdlib cimport malloc, free

cdef enum:
    BATCHES_PER_WAKEUP = 32     # then other descriptors get their turn (level-triggered)
    ITERATION_BUCKETS = 8

#: Upper bounds (ms) of the buckets counting how long a loop iteration worked after the
#: listener woke (the last bucket has no bound): what a cached name waits behind at worst.
ITERATION_BOUNDS_MS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
cdef double _bounds[ITERATION_BUCKETS - 1]
for _i, _b in enumerate(ITERATION_BOUNDS_MS):
    _bounds[_i] = _b / 1000.0


cdef class UdpSlot
cdef class UdpReply


def runs_on(loop) -> bool:
    """Whether a UDPListener can serve on ``loop`` (corenet's loop); on any other asyncio
    loop the daemon uses a DatagramProtocol."""
    return fast_loop(loop) is not None


cdef class UDPListener(FdWatcher):
    """One UDP socket of the daemon on corenet's loop (see the module docstring)."""
    cdef Loop loop
    cdef object sock
    cdef FrontDoor front        # every query goes there
    cdef Counters counts        # the front door's counter block: this listener counts there
    cdef UdpSlot slot           # the reply of the datagram being handled
    cdef cn_batch* batch
    cdef cn_outbox* outbox      # the engine's answers, sent before the loop next polls
    cdef list outkeep           # ... and the bytes they point into
    cdef object flush_cb
    cdef ACL acl                # each client's standing (admission.Who)
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
    cdef bint told_unsegmented  # the log has said that segmented sends were refused
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
        cn_batch_init(self.batch, fd)
        cn_out_init(self.outbox, fd)
        self.keep = []
        self.outkeep = []
        self.misses = []

    def __dealloc__(self):
        free(self.batch)
        free(self.outbox)

    def setup(self, loop, sock, FrontDoor front not None, ACL acl not None,
              unsigned int misses_per_wakeup=256, double busy_target=0.01,
              double read_interval=0.0005):
        """Made as ``UDPListener(fd)`` (FdWatcher's constructor), then set up here."""
        self.loop = fast_loop(loop)
        if self.loop is None:
            raise TypeError("UDPListener needs corenet's loop")
        self.sock = sock
        self.front = front
        self.counts = front.counters
        self.counts.udp_reported = True
        self.slot = UdpSlot.__new__(UdpSlot)
        self.slot.listener = self
        self.slot.label = "udp"
        self.slot.kind = T_UDP
        self.slot.batch = True
        self.flush_cb = self.flush
        self.acl = acl
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
        """What this listener counts itself, for metrics: datagrams read, its loop
        iterations, the datagrams sent and in how many messages (several answers to one
        client go in one, see ``corenet/include/batch.h``; its verdicts and drops are in
        the front door's ``Counters``)."""
        return {
            "received": self.received,
            "iterations": [self.iteration_counts[i] for i in range(ITERATION_BUCKETS)],
            "iteration_max": self.iteration_max,
            "sent": self.batch.out.datagrams + self.outbox.out.datagrams,
            "sends": self.batch.out.sends + self.outbox.out.sends,
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
            if not self.outbox.out.gso and not self.told_unsegmented:
                self._tell_unsegmented()
        self.outbox.n = 0
        del self.outkeep[:]

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
                del self.keep[:]
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
        misses, self.misses = self.misses, []
        cdef FrontDoor front = self.front
        try:
            for q, a, over, absent in misses:
                front.miss(q, udp_reply(self, a), monotonic(), over, absent)
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
        cdef int i, family, port, who
        cdef Py_ssize_t n
        cdef unsigned char addr[16]
        cdef double now = monotonic()
        cdef FrontDoor front = self.front
        cdef UdpSlot slot = self.slot
        for i in range(count):
            self.received += 1
            n = cn_msg_len(self.batch, i)
            if cn_msg_flags(self.batch, i) & MSG_TRUNC:
                self.counts.drops[R_OVERSIZE] += 1
                continue
            family = cn_addr_bytes(cn_msg_addr(self.batch, i), addr, &port)
            who = self.acl.standing_raw(family, addr)
            slot.i = i
            front.handle_at(cn_msg_buf(self.batch, i), n, None, who, slot, now)
        if self.batch.nsend:
            self.counts.drops[R_SEND_ERROR] += cn_flush(self.fd, self.batch)
            del self.keep[:]
            if not self.batch.out.gso and not self.told_unsegmented:
                self._tell_unsegmented()
        return 0

    def _tell_unsegmented(self):
        """Once: the kernel refused a send of several datagrams on this socket (a device
        without checksum offload, an MTU below an answer's size), so each goes alone."""
        self.told_unsegmented = True
        logger.info("UDP listener %s: the kernel takes no segmented sends on this path;"
                    " each answer is sent alone", self.sock.getsockname())

    cdef int hold(self, bytes q, int i, key) except -1:
        """A miss of datagram ``i`` of the batch, kept for the end of the wake-up. Behind
        (past the quota): hits first; a miss goes on only if its client has none in flight
        (the door decides), and past twice the quota not at all."""
        over = self.behind and self.iteration_misses >= self.quota
        if over and self.iteration_misses >= self.quota + self.misses_per_wakeup:
            self.counts.drops[R_BUSY] += 1
            return 0
        self.iteration_misses += 1
        self.misses.append((q, cn_addr_tuple(cn_msg_addr(self.batch, i)), over, key))
        return 0


cdef class UdpSlot(Reply):
    """The reply of the datagram the listener's batch is at (one per listener, moved along
    the batch): an answer is queued in the batch's ``sendmmsg``, a miss kept for the end of
    the wake-up."""
    cdef UDPListener listener
    cdef int i

    cdef object client(self):
        return cn_addr_tuple(cn_msg_addr(self.listener.batch, self.i))

    cdef int client_address(self, unsigned char* out) except -1:
        """The datagram's source address, read from the batch each time (the slot moves
        from datagram to datagram), as ``client()``'s text gives it: a v4-mapped IPv6
        address stays IPv6 (``::ffff:a.b.c.d``)."""
        cdef sockaddr_storage* ss = cn_msg_addr(self.listener.batch, self.i)
        cdef int port
        cdef int family = cn_addr_bytes(ss, out, &port)
        if family == AF_INET6:
            return 16
        if family != AF_INET:
            return 0
        if ss.ss_family == AF_INET6:        # v4-mapped: cn_addr_bytes gave the IPv4 part
            memcpy(out + 12, out, 4)
            memset(out, 0, 10)
            out[10] = out[11] = 0xFF
            return 16
        return 4

    cdef int send(self, bytes out) except -1:
        cdef UDPListener listener = self.listener
        listener.keep.append(out)
        cn_queue(listener.batch, self.i, PyBytes_AS_STRING(out), PyBytes_GET_SIZE(out))
        return 0

    cdef object held(self, object door, bytes q, object key, double t0):
        self.listener.hold(q, self.i, key)
        return None


cdef class UdpReply(Reply):
    """The reply of one miss's client: the answer is queued on the listener for the
    gathered send to the client's address."""
    cdef UDPListener listener

    def __call__(self, bytes data):
        self.listener.queue(data, self.addr)

    cdef int send(self, bytes out) except -1:
        return self.listener.queue(out, self.addr)


cdef UdpReply udp_reply(UDPListener listener, addr):
    cdef UdpReply r = UdpReply.__new__(UdpReply)
    r.listener = listener
    r.addr = addr
    r.label = "udp"
    r.kind = T_UDP
    return r
