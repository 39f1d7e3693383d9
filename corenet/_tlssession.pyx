# cython: language_level=3
"""TLS sessions taken from a finished handshake and offered to the next one, without the
copy CPython's ``SSLObject.session`` makes.

CPython's getter hands out a duplicate of OpenSSL's session, made by encoding it to DER
and decoding it again (a workaround for an OpenSSL 1.1.0 bug: that version changed a
session in place when TLS 1.3 tickets came, under any other connection resuming it). The
decoding parses the server's certificate chain again: with OpenSSL 3.0, about 3 million
instructions per connection, more than resuming saves. OpenSSL 1.1.1 and later copy a
session themselves before changing it, so sharing one by reference is what OpenSSL's own
API means (``SSL_get1_session``, ``SSL_set_session``); that is done here.

OpenSSL is reached through the library CPython's ``_ssl`` module is linked with (its
functions looked up in that module's own scope), and the ``SSL *`` through the layout of
CPython's ``_ssl._SSLSocket`` (the same from 3.7 to 3.15, the versions it is trusted on),
which is checked on a fresh object at import: its socket field empty, as for every
``wrap_bio`` object, and its ``SSL``'s application data pointing back at the object, as
``_ssl`` sets it. When anything of that is not so, the same two functions use CPython's
getter and setter instead: slower, never wrong.

A session is offered only to a connection of the context it was made in (CPython's rule
too): a session carries the outcome of the first connection's certificate check, and a
context that trusts other authorities must not inherit it.
"""
import ssl

from cpython.object cimport PyObject

cdef extern from "dlfcn.h":
    void *dlopen(const char *filename, int flags)
    void *dlsym(void *handle, const char *symbol)
    int RTLD_NOW
    int RTLD_NOLOAD

cdef extern from *:
    """
    /* The head of CPython's _ssl PySSLSocket (Modules/_ssl.c), unchanged from 3.7 to 3.15. */
    typedef struct {
        PyObject_HEAD
        PyObject *Socket;
        void *ssl;
    } corenet_PySSLSocket;
    """
    ctypedef struct corenet_PySSLSocket:
        PyObject *Socket
        void *ssl

ctypedef void *(*get1_session_t)(void *ssl) noexcept nogil
ctypedef int (*set_session_t)(void *ssl, void *session) noexcept nogil
ctypedef void (*session_free_t)(void *session) noexcept nogil
ctypedef int (*is_resumable_t)(const void *session) noexcept nogil
ctypedef void *(*get_ex_data_t)(const void *ssl, int idx) noexcept nogil
ctypedef int (*in_before_t)(const void *ssl) noexcept nogil

cdef get1_session_t SSL_get1_session = NULL
cdef set_session_t SSL_set_session = NULL
cdef session_free_t SSL_SESSION_free = NULL
cdef is_resumable_t SSL_SESSION_is_resumable = NULL
cdef get_ex_data_t SSL_get_ex_data = NULL
cdef in_before_t SSL_in_before = NULL
cdef object SSLSocketType = None


cdef class TLSSession:
    """A resumable session of OpenSSL's (one reference to it) and the ``ssl.SSLContext``
    it was made in."""
    cdef void *session
    cdef readonly object context

    def __dealloc__(self):
        if self.session != NULL:
            SSL_SESSION_free(self.session)
            self.session = NULL


cdef void *ssl_of(object sslobject) except? NULL:
    """The ``SSL *`` of an ``ssl.SSLObject``, or NULL when it is not CPython's own."""
    cdef object c = getattr(sslobject, "_sslobj", None)
    if type(c) is not SSLSocketType:
        return NULL
    cdef corenet_PySSLSocket *s = <corenet_PySSLSocket *><PyObject *>c
    if s.Socket != NULL or s.ssl == NULL or SSL_get_ex_data(s.ssl, 0) != <void *>s:
        return NULL
    return s.ssl


cdef bint _load() except -1:
    """Find OpenSSL's functions in ``_ssl``'s scope and check the layout on a fresh
    object; True when the direct route is usable."""
    global SSL_get1_session, SSL_set_session, SSL_SESSION_free, SSL_SESSION_is_resumable
    global SSL_get_ex_data, SSL_in_before, SSLSocketType
    import _ssl
    import sys
    if (sys.implementation.name != "cpython" or not (3, 7) <= sys.version_info[:2] <= (3, 15)
            or ssl.OPENSSL_VERSION_INFO < (1, 1, 1)):
        return False
    path = getattr(_ssl, "__file__", None)
    cdef void *h = NULL
    if path is None:
        h = dlopen(NULL, RTLD_NOW)  # _ssl built into the interpreter
    else:
        h = dlopen(path.encode(), RTLD_NOW | RTLD_NOLOAD)
    if h == NULL:
        return False
    cdef void *f1 = dlsym(h, b"SSL_get1_session")
    cdef void *f2 = dlsym(h, b"SSL_set_session")
    cdef void *f3 = dlsym(h, b"SSL_SESSION_free")
    cdef void *f4 = dlsym(h, b"SSL_SESSION_is_resumable")
    cdef void *f5 = dlsym(h, b"SSL_get_ex_data")
    cdef void *f6 = dlsym(h, b"SSL_in_before")
    if f1 == NULL or f2 == NULL or f3 == NULL or f4 == NULL or f5 == NULL or f6 == NULL:
        return False
    SSL_get1_session = <get1_session_t>f1
    SSL_set_session = <set_session_t>f2
    SSL_SESSION_free = <session_free_t>f3
    SSL_SESSION_is_resumable = <is_resumable_t>f4
    SSL_get_ex_data = <get_ex_data_t>f5
    SSL_in_before = <in_before_t>f6
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).wrap_bio(
        ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="probe.invalid")
    SSLSocketType = type(probe._sslobj)
    if ssl_of(probe) == NULL:
        SSLSocketType = None
        return False
    return True


#: Whether sessions are shared by reference (False: through CPython's copying getter).
DIRECT = _load()


def session_of(sslobject):
    """The session of `sslobject`'s finished handshake, to resume in a later connection
    of the same context: a ``TLSSession``, or CPython's ``ssl.SSLSession`` where the direct
    route is not available; None when OpenSSL would not resume it."""
    cdef void *s = ssl_of(sslobject) if DIRECT else NULL
    cdef void *sess
    cdef TLSSession t
    if s == NULL:
        return sslobject.session
    sess = SSL_get1_session(s)
    if sess == NULL:
        return None
    if not SSL_SESSION_is_resumable(sess):
        SSL_SESSION_free(sess)
        return None
    t = TLSSession.__new__(TLSSession)
    t.session = sess
    t.context = sslobject.context
    return t


def resume(sslobject, session):
    """Offer `session` (from ``session_of``) in the handshake of `sslobject`, a client's
    whose handshake has not started. False, and nothing offered, when the session belongs
    to another context or it is too late; ``sslobject.session_reused`` tells after the
    handshake whether the server took it."""
    cdef void *s
    cdef TLSSession t
    if isinstance(session, TLSSession):
        t = <TLSSession>session
        if t.context is not sslobject.context or sslobject.server_side:
            return False
        s = ssl_of(sslobject)
        if s == NULL or not SSL_in_before(s) or SSL_set_session(s, t.session) != 1:
            return False
        return True
    try:
        sslobject.session = session
    except ValueError:  # another context's, or the handshake has begun
        return False
    return True
