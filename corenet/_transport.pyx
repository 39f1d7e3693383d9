"""The base of corenet's transport engines (``_stream.StreamTransport``,
``_datagram.DatagramTransport``): the parts that do not depend on how bytes move."""
from libc.stdint cimport uint32_t

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport Py_REFCNT

from corenet._sys cimport EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD, close
from corenet._loop cimport BaseLoop, FdWatcher
from corenet.batch cimport sockaddr_storage, cn_addr_tuple

import asyncio
import os
import socket
import types
import warnings
from asyncio import trsock

cdef extern from "structmember.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset

cdef extern from "Python.h":
    ctypedef struct PyMemberDescrObject:
        PyMemberDef *d_member

cdef extern from "Python.h":
    object PyContext_CopyCurrent()
    object PyContext_Copy(object)
    int PyContext_Enter(object) except -1
    int PyContext_Exit(object) except -1

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct sockaddr:
        pass
    int getsockname(int sockfd, sockaddr *addr, socklen_t *addrlen)

cdef object logger = asyncio.log.logger
cdef object TransportSocket = trsock.TransportSocket
cdef object _socket_socket = socket.socket
cdef object _warn = warnings.warn
cdef object _MemberDescriptorType = types.MemberDescriptorType
cdef object _strerror = os.strerror
cdef dict _error_texts = {}         # errno -> os.strerror(errno): at most the errnos there are


def set_result_unless_cancelled(fut, result):
    """The waiter of a transport's creation is told it is made (unless cancelled since)."""
    if not fut.cancelled():
        fut.set_result(result)


cdef object io_overrides(object sock, tuple names):
    """``sock`` when its class overrides one of the socket's I/O methods ``names`` (a
    wrapper that counts, delays or fails reads and writes: asyncio drives a transport's
    socket through those methods), else None. Checked once per transport, so a plain
    socket keeps the direct system calls."""
    cls = type(sock)
    if cls is _socket_socket:
        return None
    for name in names:
        if getattr(cls, name, None) is not getattr(_socket_socket, name):
            return sock
    return None


# -- received bytes
#
# A read copied out of a shared buffer becomes a bytes object for data_received() or
# datagram_received(). Past 512 bytes that object comes from malloc(), and past about 1 KiB
# from beyond glibc's per-thread cache, where the malloc() and the free() cost more than the
# rest of the loop's work on a small read. So the last such object that nobody kept once its
# callback returned (only the reader refers to it) is kept, and the next read that fits is
# written into it: its size set, its cached hash forgotten. A read of less than half its
# room gets a new object, so that one the protocol keeps never holds more than twice its
# size. The spare is taken out while a callback has it (another thread's loop may read
# meanwhile) and put back after.

cdef extern from *:
    """
    static inline void corenet_bytes_refill(PyObject *o, const char *src, Py_ssize_t n) {
        PyBytesObject *b = (PyBytesObject *)o;
        Py_SET_SIZE(b, n);
        memcpy(b->ob_sval, src, (size_t)n);
        b->ob_sval[n] = 0;
    #if defined(__GNUC__)
    #pragma GCC diagnostic push
    #pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    #endif
        b->ob_shash = -1;
    #if defined(__GNUC__)
    #pragma GCC diagnostic pop
    #endif
    }
    """
    void corenet_bytes_refill(object o, const char *src, Py_ssize_t n)

cdef object _spare = None
cdef Py_ssize_t _spare_room = 0


cdef object received(const char *src, Py_ssize_t n, Py_ssize_t *room):
    global _spare
    data = _spare
    if data is not None and n <= _spare_room <= 2 * n:
        _spare = None
        room[0] = _spare_room
        corenet_bytes_refill(data, src, n)
        return data
    room[0] = n
    return PyBytes_FromStringAndSize(src, n)


cdef void give_back(object data, Py_ssize_t room) noexcept:
    global _spare, _spare_room
    if Py_REFCNT(data) == 1:
        _spare = data
        _spare_room = room


cdef object os_error(int err):
    text = _error_texts.get(err)
    if text is None:
        text = _error_texts[err] = _strerror(err)
    return OSError(err, text)


cdef class BaseTransport(FdWatcher):
    """The protocol's callbacks run in ``context``, the contextvars context current when the
    transport was made (for a connection a server accepted: the one the protocol factory ran
    in), as in asyncio. It is taken once: subclasses enter it around their epoll events and
    schedule their own callbacks with it, so an event costs an enter and an exit, no copy.
    Callbacks that a caller's own call can set off (pause/resume_writing from write(), an
    error from sendto()) run in a fresh copy of it instead, since the caller may be one of
    this transport's callbacks, already inside it."""

    def __cinit__(self, int fd):
        self.high_water = 65536
        self.low_water = 16384

    def __del__(self):
        # Only an open transport whose loop went away is finalized open (the loop holds the
        # others): warn and abort, as asyncio's transports do. Here, not in the Python face,
        # so the common case (a closed transport) costs no Python call.
        if self.fd >= 0 and not self.closing and self.face is not None:
            _warn(f"unclosed transport {self.face!r}", ResourceWarning, source=self.face)
            self.abort()

    def __repr__(self):
        if self.face is not None:
            return f"<{type(self).__name__} of {self.face!r}>"
        return f"<{type(self).__name__} fd={self.fd} released>"

    def __dealloc__(self):
        # A bare descriptor nobody closed (the loop went away with the transport open): no
        # socket object will close it, so this does.
        if self.sock_obj is None and self.fd >= 0:
            close(self.fd)

    cdef int _attach(self, BaseLoop loop, object sock, object protocol, object face,
                     object extra, object context) except -1:
        """Takes the socket; into the fd table now, into epoll when connected (see
        ``_enter_epoll``), so readiness reaches the protocol through the next poll, after
        the callbacks already queued, as in asyncio. ``sock`` is None for a bare descriptor
        (an accepted connection, with ``sfamily``/``stype``/``sproto`` set): its socket
        object is made only if asked for. The ``socket`` extra is made when first asked for
        (``get_extra_info``), whichever the start. ``context`` is the one the protocol's
        callbacks run in (None: a copy of the current one)."""
        cdef sockaddr_storage sa
        cdef socklen_t salen = sizeof(sa)
        self.loop = loop
        self.context = PyContext_CopyCurrent() if context is None else context
        self.sock_obj = sock
        self.sockio = io_overrides(sock, self._io_methods()) if sock is not None else None
        self.face = face
        self.protocol = protocol
        self.edge = loop._edge
        self.extra = extra if extra is not None else {}
        if sock is None:
            if "sockname" in self.extra:
                pass            # known to the acceptor (its listener's own address)
            elif getsockname(self.fd, <sockaddr*>&sa, &salen) == 0:
                self.extra["sockname"] = cn_addr_tuple(&sa)
            else:
                self.extra["sockname"] = None
        else:
            try:
                self.extra["sockname"] = sock.getsockname()
            except OSError:
                self.extra["sockname"] = None
        if "peername" not in self.extra:
            try:
                self.extra["peername"] = sock.getpeername()
            except OSError:
                self.extra["peername"] = None
        loop.register_watcher(self, 0)
        return 0

    cdef int _enter_epoll(self, uint32_t edge_events) except -1:
        """Edge mode registers here, for the transport's whole life (a stream transport adds
        EPOLLOUT once it has to wait to write); level mode asks for what it waits for
        (``_update_interest``)."""
        if self.edge:
            self.loop._epoll_ctl(EPOLL_CTL_ADD, self.fd, edge_events)
            self.registered = edge_events
        else:
            self._update_interest()
        return 0

    cdef Py_ssize_t _buffered(self):
        return 0

    cdef uint32_t _wanted(self):
        return 0

    cdef int _drop_buffer(self) except -1:
        return 0

    cdef tuple _io_methods(self):
        """The socket methods asyncio's transport of this kind moves bytes with (or that a
        wrapper of them overrides): a socket whose class overrides one of them is driven
        through its own methods (``sockio``)."""
        return ()

    cdef int _update_interest(self) except -1:
        """Level-triggered mode: ask epoll for what we wait for, and nothing else."""
        cdef uint32_t want
        if self.edge or self.loop is None or self.fd < 0:
            return 0
        want = self._wanted()
        if want == self.registered:
            return 0
        if want == 0:
            self.loop._epoll_ctl(EPOLL_CTL_DEL, self.fd, 0)
        elif self.registered == 0:
            self.loop._epoll_ctl(EPOLL_CTL_ADD, self.fd, want)
        else:
            self.loop._epoll_ctl(EPOLL_CTL_MOD, self.fd, want)
        self.registered = want
        return 0

    # ------------------------------------------------------------ flow control

    cdef int _maybe_pause_protocol(self) except -1:
        if self._buffered() <= self.high_water or self._protocol_paused:
            return 0
        self._protocol_paused = True
        self._flow_hook("pause_writing")
        return 0

    cdef int _maybe_resume_protocol(self) except -1:
        if self._protocol_paused and self._buffered() <= self.low_water:
            self._protocol_paused = False
            self._flow_hook("resume_writing")
        return 0

    cdef int _flow_hook(self, str name) except -1:
        """Calls the protocol's pause_writing/resume_writing (in a copy of the transport's
        context: a write() may set it off from inside another callback): a failure goes to
        the loop's exception handler, as in asyncio, and the transport carries on."""
        ctx = self._fresh_context()
        PyContext_Enter(ctx)
        try:
            getattr(self.protocol, name)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.loop.call_exception_handler({
                "message": f"protocol.{name}() failed",
                "exception": exc, "transport": self.face, "protocol": self.protocol})
        finally:
            PyContext_Exit(ctx)
        return 0

    cdef object _fresh_context(self):
        """A copy of the callbacks' context, to run one that a caller's call sets off."""
        if self.context is None:
            return PyContext_CopyCurrent()
        return PyContext_Copy(self.context)

    def get_write_buffer_size(self):
        return self._buffered()

    def get_write_buffer_limits(self):
        return (self.low_water, self.high_water)

    def set_write_buffer_limits(self, high=None, low=None):
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self.high_water = high
        self.low_water = low
        self._maybe_pause_protocol()

    # ------------------------------------------------------------ closing

    def is_closing(self):
        return self.closing

    def close(self):
        """Stops reading; connection_lost follows once the write buffer has drained."""
        self._close()

    cdef int _close(self) except -1:
        if self.closing:
            return 0
        self.closing = True
        self._update_interest()
        if self._buffered() == 0:
            self.conn_lost += 1
            self.loop.call_soon(self._call_connection_lost_py, None, context=self.context)
        return 0

    def abort(self):
        self._force_close(None)

    cdef int _fatal_error(self, exc, str message) except -1:
        # An OSError is the peer's doing: logged only in debug mode, as asyncio does.
        if isinstance(exc, OSError):
            if self.loop._debug:
                logger.debug("%r: %s", self.face, message, exc_info=True)
        else:
            self.loop.call_exception_handler({
                "message": message, "exception": exc,
                "transport": self.face, "protocol": self.protocol})
        self._force_close(exc)
        return 0

    def _force_close(self, exc):
        if self.conn_lost:
            return
        self._drop_buffer()
        self.closing = True
        self.conn_lost += 1
        if self.loop._closed:
            # Nothing will run connection_lost any more: release the socket now.
            self._close_socket()
            return
        self._update_interest()
        self.loop.call_soon(self._call_connection_lost_py, exc, context=self.context)

    def _call_connection_lost_py(self, exc):
        self._call_connection_lost(exc)

    cdef int _call_connection_lost(self, exc) except -1:
        if self.fd < 0:
            return 0
        if not self.conn_lost:
            self.conn_lost = 1   # closed after draining: later writes are counted drops
        try:
            if self.protocol_connected:
                self.protocol.connection_lost(exc)
        finally:
            self._release()
        return 0

    cdef int _release(self) except -1:
        self.loop.unregister_watcher(self)
        self._close_socket()
        self.protocol = None
        # The face and the engine point at each other: let go of it, so both are freed by
        # reference counting when the user drops the transport, not by the cyclic GC.
        self.face = None
        return 0

    cdef int _close_socket(self) except -1:
        cdef int fd = self.fd
        self.fd = -1
        if self.sock_obj is not None:
            self.sock_obj.close()
        elif fd >= 0:
            close(fd)
        return 0

    @property
    def _sock(self):
        """The socket object (asyncio's transports have one in ``_sock``), made on first use
        for a transport that started from a bare descriptor: most connections never ask."""
        if self.sock_obj is None:
            if self.fd >= 0:
                self.sock_obj = _socket_socket(self.sfamily, self.stype, self.sproto, self.fd)
            else:
                # Closed before anyone asked: a closed socket object of the same kind, as a
                # closed asyncio transport has.
                self.sock_obj = _socket_socket(self.sfamily, self.stype, self.sproto)
                self.sock_obj.close()
        return self.sock_obj

    @property
    def _fd(self):
        return self.fd

    # ------------------------------------------------------------ the rest of the API

    def get_extra_info(self, name, default=None):
        return self._get_extra_info(name, default)

    cdef object _get_extra_info(self, name, default):
        cdef PyObject* found = PyDict_GetItem(self.extra, name)
        if found != NULL:
            return <object>found
        if name == "socket":
            ts = TransportSocket(self._sock)
            self.extra["socket"] = ts
            return ts
        return default

    def get_protocol(self):
        return self.protocol

    @property
    def _loop(self):
        return self.loop

    @property
    def _context(self):
        """The contextvars context the protocol's callbacks run in."""
        return self.context


# ---------------------------------------------------------------- the faces' methods
#
# A face (transports.py) is an asyncio.Transport subclass that holds its engine in an
# ``_engine`` slot. Its hot methods are the functions below, set as class attributes: the
# call goes straight from the user's ``transport.write(data)`` to the engine, with no
# Python frame, no bound method stored per connection and no ``__getattr__`` on the class
# (which would slow down every attribute lookup on it and stop CPython from specialising
# them). The engine is found by the slot's offset, read once per face class (add_face).

cdef FaceSlot _faces[4]
cdef int _n_faces = 0


cdef FaceSlot* add_face(type face_cls, type engine_cls) except NULL:
    """Records where instances of ``face_cls`` keep their engine (their ``_engine`` slot)."""
    global _n_faces
    cdef FaceSlot* slot
    cdef int i
    descr = face_cls.__dict__.get("_engine")
    if type(descr) is not _MemberDescriptorType:
        raise TypeError(f"{face_cls.__name__} has no _engine slot of its own")
    for i in range(_n_faces):
        if _faces[i].face_type == <PyTypeObject*>face_cls:
            return &_faces[i]
    if _n_faces == 4:
        raise RuntimeError("too many transport faces")
    slot = &_faces[_n_faces]
    slot.face_type = <PyTypeObject*>face_cls
    slot.offset = (<PyMemberDescrObject*>descr).d_member.offset
    slot.engine_type = <PyTypeObject*>engine_cls
    _n_faces += 1
    return slot


cdef BaseTransport engine_of(object face):
    cdef PyObject* engine
    cdef int i
    for i in range(_n_faces):
        engine = engine_at(face, &_faces[i])
        if engine != NULL:
            return <BaseTransport>engine
    # A subclass of a face (the ordinary lookup finds its engine), a face never given its
    # engine, or not a face at all.
    found = getattr(face, "_engine", None)
    if not isinstance(found, BaseTransport):
        raise TypeError(f"{type(face).__name__!r} object is not a corenet transport with an engine")
    return <BaseTransport>found


def face_close(face):
    """Stops reading; connection_lost follows once the write buffer has drained."""
    engine_of(face)._close()


def face_is_closing(face):
    return engine_of(face).closing


def face_extra(face):
    """The face's ``_extra``: the transport's extra info, the dict asyncio's
    ``BaseTransport.get_extra_info`` reads (with "socket" filled in, as asyncio's transports
    have it). The faces inherit that method rather than define their own, so a patch of it
    on asyncio's classes (``mock.patch("asyncio.Transport.get_extra_info")``) reaches them
    as it reaches asyncio's socket transports."""
    cdef BaseTransport engine = engine_of(face)
    if "socket" not in engine.extra:
        engine._get_extra_info("socket", None)
    return engine.extra


def face_get_write_buffer_size(face):
    return engine_of(face)._buffered()
