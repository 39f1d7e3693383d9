# cython: language_level=3
"""A TLS server whose accept and handshake run in C on corenet's loop: the listening socket
and each connection are ``FdWatcher``s (``corenet/capi.pxd``), OpenSSL reads and writes the
socket itself (``SSL_set_fd``), and no Python object is made for a connection until its
handshake is done. Then ``factory()`` (when given) makes the connection's application
object, which is told ``connection_lost(None)`` when the peer has gone. Built and run by
``c_handshake_server.py``; it shows what the handshake costs on corenet's loop without
CPython's ``ssl`` and the transport's objects around it.
"""
from libc.stdint cimport uint32_t
from posix.unistd cimport close

from corenet.capi cimport EPOLLET, EPOLLIN, EPOLLRDHUP, FdWatcher, Loop, fast_loop, unwatch, watch
from resolver.daemon.openssl cimport (SSL, SSL_CTX, SSL_ERROR_WANT_READ, SSL_FILETYPE_PEM,
                                      TLS1_2_VERSION, ERR_clear_error, SSL_accept,
                                      SSL_CTX_new, SSL_CTX_set_min_proto_version,
                                      SSL_CTX_use_PrivateKey_file,
                                      SSL_CTX_use_certificate_chain_file, SSL_free,
                                      SSL_get_error, SSL_new, SSL_read, SSL_set_fd,
                                      TLS_server_method)

cdef extern from "sys/socket.h":
    int accept4(int fd, void *addr, void *addrlen, int flags)
    int SOCK_NONBLOCK, SOCK_CLOEXEC

cdef SSL_CTX *context = NULL
cdef char scratch[4096]        # what the peer sends after its handshake, read and dropped


cdef class Connection(FdWatcher):
    cdef SSL *ssl
    cdef bint established
    cdef object factory
    cdef object app

    cdef int on_events(self, Loop loop, uint32_t events) except -1:
        cdef int r
        if not self.established:
            r = SSL_accept(self.ssl)
            if r != 1:
                if SSL_get_error(self.ssl, r) == SSL_ERROR_WANT_READ:
                    return 0
                return self.end(loop)
            self.established = True
            if self.factory is not None:
                self.app = self.factory()
        while True:
            r = SSL_read(self.ssl, scratch, sizeof(scratch))
            if r > 0:
                continue
            if SSL_get_error(self.ssl, r) == SSL_ERROR_WANT_READ:
                return 0
            return self.end(loop)

    cdef int end(self, Loop loop) except -1:
        unwatch(loop, self)
        SSL_free(self.ssl)
        self.ssl = NULL
        close(self.fd)
        self.fd = -1
        ERR_clear_error()
        if self.app is not None:
            app, self.app = self.app, None
            app.connection_lost(None)
        return 0


cdef class Listener(FdWatcher):
    cdef object factory

    cdef int on_events(self, Loop loop, uint32_t events) except -1:
        cdef Connection conn
        cdef int fd = accept4(self.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)
        if fd < 0:
            return 0
        conn = Connection.__new__(Connection)
        conn.fd = fd
        conn.factory = self.factory
        conn.ssl = SSL_new(context)
        if conn.ssl == NULL or SSL_set_fd(conn.ssl, fd) != 1:
            close(fd)
            return 0
        watch(loop, conn, EPOLLIN | EPOLLET | EPOLLRDHUP)
        return 0


def serve(loop, sock, str pem, str key, factory=None):
    """Serves TLS on the listening socket ``sock`` (non-blocking; its TCP_NODELAY is the
    connections') with the certificate chain ``pem`` and ``key``, TLS 1.2 at least and
    OpenSSL's defaults otherwise, as ``openssl_server.c``. Returns the listener, which must
    be kept."""
    global context
    cdef Listener listener
    if context == NULL:
        context = SSL_CTX_new(TLS_server_method())
        if (context == NULL or SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) != 1
                or SSL_CTX_use_certificate_chain_file(context, pem.encode()) != 1
                or SSL_CTX_use_PrivateKey_file(context, key.encode(), SSL_FILETYPE_PEM) != 1):
            raise RuntimeError(f"OpenSSL cannot load {pem} with {key}")
    listener = Listener.__new__(Listener)
    listener.fd = sock.fileno()
    listener.factory = factory
    watch(fast_loop(loop), listener, EPOLLIN)
    return listener
