from libc.stdint cimport uint32_t
from cpython.object cimport PyObject, PyTypeObject, Py_TYPE
from corenet._loop cimport BaseLoop, FdWatcher


cdef class BaseTransport(FdWatcher):
    """What stream and datagram transports share: the socket, the protocol, extra info,
    flow control of the write buffer, epoll interest in level mode, and closing."""
    cdef BaseLoop loop
    cdef object sock_obj            # the socket object: given, or made on first use (_sock)
    cdef object sockio              # the socket, when its class overrides its I/O methods
    cdef int sfamily, stype, sproto # what it is made with
    cdef int conn_lost              # writes after the loss (beside the ints: no padding)
    cdef object protocol
    cdef object face
    cdef object context             # contextvars.Context the protocol's callbacks run in
    cdef dict extra
    cdef bint edge
    cdef bint closing
    cdef bint started               # connection_made has returned
    cdef bint protocol_connected    # connection_made has been called
    cdef bint read_scheduled
    cdef public bint _protocol_paused
    cdef Py_ssize_t high_water
    cdef Py_ssize_t low_water

    cdef int _attach(self, BaseLoop loop, object sock, object protocol, object face,
                     object extra, object context) except -1
    cdef int _enter_epoll(self, uint32_t edge_events) except -1
    cdef Py_ssize_t _buffered(self)
    cdef uint32_t _wanted(self)
    cdef int _drop_buffer(self) except -1
    cdef tuple _io_methods(self)
    cdef int _update_interest(self) except -1
    cdef int _maybe_pause_protocol(self) except -1
    cdef int _maybe_resume_protocol(self) except -1
    cdef int _flow_hook(self, str name) except -1
    cdef object _fresh_context(self)
    cdef int _fatal_error(self, exc, str message) except -1
    cdef int _call_connection_lost(self, exc) except -1
    cdef int _release(self) except -1
    cdef int _close_socket(self) except -1
    cdef int _close(self) except -1
    cdef object _get_extra_info(self, name, default)


# Where a face (transports.py) keeps its engine: see "the faces' methods" in _transport.pyx.
cdef struct FaceSlot:
    PyTypeObject* face_type     # the face class
    Py_ssize_t offset           # of its ``_engine`` slot in an instance
    PyTypeObject* engine_type   # the engine class it holds

cdef FaceSlot* add_face(type face_cls, type engine_cls) except NULL
cdef BaseTransport engine_of(object face)

# ``OSError(err, os.strerror(err))`` (the subclass the errno maps to), its text read once
# per errno: os.strerror decodes it from the C locale at each call.
cdef object os_error(int err)

# A bytes object holding ``src[:n]`` for a reader's callback, and how many bytes it has room
# for; once the callback has returned, ``give_back`` keeps it for the next read if nothing
# else refers to it (see "received bytes" in _transport.pyx).
cdef object received(const char *src, Py_ssize_t n, Py_ssize_t *room)
cdef void give_back(object data, Py_ssize_t room) noexcept

# ``sock`` when its class overrides one of the socket methods ``names``, else None.
cdef object io_overrides(object sock, tuple names)


cdef inline PyObject* engine_at(object face, FaceSlot* slot):
    # The engine of ``face`` if it is exactly the slot's face class holding its engine
    # class, else NULL (then engine_of finds it, or raises, the slow way).
    cdef PyObject* engine
    if slot != NULL and Py_TYPE(face) == slot.face_type:
        engine = (<PyObject**>((<char*><PyObject*>face) + slot.offset))[0]
        if engine != NULL and engine.ob_type == slot.engine_type:
            return engine
    return NULL
