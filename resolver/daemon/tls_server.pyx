# cython: language_level=3, boundscheck=False, wraparound=False
"""The daemon's TLS servers in C: OpenSSL's context for a listener, the accept and the
handshake, and the encrypted stream under the DNS or HTTP connection.

Why it is apart from ``corenet.tls``: that transport is asyncio's, built on CPython's
``ssl`` (an ``SSLContext`` of the application's, two ``MemoryBIO``s, an ``SSLObject`` and a
protocol object per connection), and a server's handshake through it spends more time in
Python than OpenSSL spends in everything but the cryptography. Here a connection is one
object from ``accept`` to close and nothing of Python runs for it until its first record
of application data: OpenSSL reads the socket itself and writes its handshake flights to
it the moment each is complete (the keys it derives afterwards are computed while the
client reads), and only then is the application protocol (the DNS connection, or the HTTP
one) made and given the connection as its transport. Decrypted bytes go straight into a
``BufferedProtocol``'s buffer (the DNS framer's); after the handshake what OpenSSL writes
is gathered in memory, so that the answers of one read leave with one ``send``.

``ServerContext``
    One ``SSL_CTX``: a certificate chain and its key, TLS 1.2 at least (1.3 is what OpenSSL
    prefers), the server's order of cipher suites (``TLS12_CIPHERS``, ``TLS13_CIPHERSUITES``
    unless set), no compression or renegotiation, record buffers released while a connection
    is idle, the ALPN protocols offered, the number of TLS 1.3 session tickets and the keys
    they are encrypted with (OpenSSL's own, or keys given: ``set_ticket_keys``). It
    is made before the daemon forks, so every worker has the same ticket keys.
    ``load_cert_chain`` loads a new pair into it (the caller checks the pair in a context
    of its own first: OpenSSL's loading is not atomic).

``TLSService`` and ``TLSServer``
    The listening sockets of one kind (a ``TLSServer`` each, which accepts one connection
    per wake-up) and what they share: the caps, the timeouts and the counters. A
    connection is *pending* from its accept until its first record of application data:
    pending connections and the application's established ones (the daemon's, passed in)
    together may not exceed ``max_handshakes`` in all and ``max_handshakes_per_client`` per
    client address, a connection past either being closed at once, unaccounted work for
    none. A handshake must finish within ``handshake_timeout`` and the first query come
    within ``idle_timeout`` of it (a sweep of the pending connections ends the others).
    ``refuse`` (None, or called with the client's address at each accept) may refuse a
    client outright, before anything else (a DoH listener's throttle: its counts are its
    own); the descriptor is closed at once. A socket may have an application protocol of
    its own, and be ``proxied``: its clients are proxies, each naming the client it speaks
    for at the start of the stream (a PROXY v2 header, after the handshake), and the
    application applies ``refuse`` and the cap per client to that client; the accept
    applies the cap in all only. ``counts``: handshakes, resumed, handshake_failed,
    handshake_timeout, handshake_refused, idle_before_query, bad_records (records that
    failed to decrypt or broke the protocol after the handshake), accept_failed.

``TLSTransport``
    asyncio's ``Transport`` methods the daemon's protocols use: ``write``, ``writelines``
    (each buffer its own TLS record, all sent together), ``close`` (close_notify after what
    is buffered), ``abort``, ``is_closing``, ``pause_reading``/``resume_reading``,
    ``set_write_buffer_limits``/``get_write_buffer_size`` (the protocol's ``pause_writing``
    and ``resume_writing``), ``get_extra_info`` ("peername", "sockname", "socket",
    "sslcontext", "cipher", "ssl_object": the transport itself, with
    ``selected_alpn_protocol()``, ``version()``, ``cipher()`` and ``session_reused``). The
    peer's close_notify (or its stream's end) is the protocol's ``eof_received``; a
    connection the protocol does not keep open is then closed, with no close_notify of
    ours. ``connection_lost`` follows the close, in a later step of the loop; an exception
    from the protocol closes the connection and reaches ``connection_lost``.

On corenet's loop the listeners and connections are ``FdWatcher``s called straight from
epoll (``corenet/capi.pxd``); on any other asyncio loop the same objects use
``add_reader``/``add_writer``.
"""
from libc.errno cimport EAGAIN, ECONNABORTED, EINTR, EPROTO, errno
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcmp, memcpy
from posix.unistd cimport close

from cpython.buffer cimport PyBUF_WRITABLE, PyObject_GetBuffer, PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize

from corenet.capi cimport (EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, FdWatcher, Loop,
                           call_before_poll, fast_loop, unwatch, unwatch_close, watch)
from corenet.batch cimport cn_addr_tuple, sockaddr_storage
from resolver.cache.answer cimport monotonic
from resolver.daemon.openssl cimport *             # OpenSSL's API, declared once

import asyncio
import socket
import ssl

from corenet.framing import FrameTooLarge
from corenet.tls import flow_control_limits

cdef extern from "sys/socket.h":
    ctypedef unsigned int socklen_t
    int accept4(int fd, void *addr, socklen_t *addrlen, int flags)
    ssize_t send(int fd, const void *buf, size_t n, int flags)
    int getsockname(int fd, void *addr, socklen_t *addrlen)
    int setsockopt(int fd, int level, int name, const void *value, socklen_t size)
    int getsockopt(int fd, int level, int name, void *value, socklen_t *size)
    int SOCK_NONBLOCK, SOCK_CLOEXEC, MSG_NOSIGNAL

#: TLS 1.2's cipher suites (OpenSSL's cipher list syntax): forward secrecy and AEAD only.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL"
#: TLS 1.3's suites, the server's order of preference. AES-128-GCM first, as BoringSSL,
#: Go and Mozilla's server configurations have it: the key exchanges offered (X25519,
#: P-256) stop at 128-bit security, so AES-256 adds none, and its suite hashes the
#: handshake with SHA-384, which has no instructions of its own where SHA-256 has (SHA-NI):
#: a full handshake costs both ends less. A client that puts ChaCha20 first (one without
#: AES instructions) gets ChaCha20 (``SSL_OP_PRIORITIZE_CHACHA``).
TLS13_CIPHERSUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#: The TLS 1.3 suites OpenSSL implements (RFC 8446, B.4); it skips other names silently.
TLS13_SUITE_NAMES = frozenset({"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                               "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256",
                               "TLS_AES_128_CCM_8_SHA256"})

cdef enum:
    HANDSHAKE = 0       # accepted; OpenSSL has not finished the handshake
    OPEN = 1            # handshake done (the protocol is made with the first record)
    CLOSING = 2         # close(): what is buffered (and close_notify) still to send
    CLOSED = 3          # the descriptor is closed

cdef enum:
    READ_CHUNK = 16384          # what one SSL_read for a data_received protocol asks for
    READS_PER_WAKEUP = 64       # records read in one go before other descriptors' turn

#: Seconds a listener stops accepting after accept4 failed for want of descriptors or
#: memory (asyncio's servers wait as long).
ACCEPT_RETRY_DELAY = asyncio.constants.ACCEPT_RETRY_DELAY

cdef char scratch[READ_CHUNK]


cdef object openssl_error(str what):
    """An ``ssl.SSLError`` with the text of OpenSSL's first queued error after ``what``
    (its code as the error number), OpenSSL's queue cleared."""
    cdef char buf[256]
    cdef unsigned long e = ERR_get_error()
    ERR_clear_error()
    if e == 0:
        return ssl.SSLError(0, what)
    ERR_error_string_n(e, buf, sizeof(buf))
    return ssl.SSLError(<long>e, f"{what}: {buf.decode('utf-8', 'replace')}")


cdef int select_alpn(SSL *s, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *inp, unsigned int inlen, void *arg) noexcept nogil:
    # arg: the context's protocols in wire form (length-prefixed), kept by the context.
    cdef const unsigned char *mine = <const unsigned char *>arg
    cdef unsigned int n = mine[0] | (mine[1] << 8)
    if SSL_select_next_proto(<unsigned char **>out, outlen, mine + 2, n, inp,
                             inlen) == OPENSSL_NPN_NEGOTIATED:
        return SSL_TLSEXT_ERR_OK
    return SSL_TLSEXT_ERR_NOACK


#: What a session ticket key file holds (Unbound's ``tls-session-ticket-keys`` format):
#: the key's name (16 bytes, sent in the clear at the head of each ticket), the AES-256-CBC
#: key that encrypts tickets, the HMAC-SHA256 key that authenticates them (32 bytes each).
TICKET_KEY_SIZE = 80

cdef struct TicketKey:
    unsigned char name[16]
    unsigned char aes[32]
    unsigned char hmac[32]

cdef struct TicketKeys:
    int n                           # the first encrypts; all decrypt
    TicketKey *keys

cdef EVP_CIPHER *TICKET_CIPHER = NULL      # AES-256-CBC, fetched once
cdef char *TICKET_DIGEST = b"SHA256"


def read_ticket_keys(paths) -> list:
    """The session ticket keys in the files ``paths`` (``TICKET_KEY_SIZE`` bytes each, the
    one that encrypts first). Raises OSError when a file cannot be read and ValueError when
    one is not a key or two have the same name."""
    keys = []
    for path in paths:
        with open(path, "rb") as f:
            key = f.read(TICKET_KEY_SIZE + 1)
        if len(key) != TICKET_KEY_SIZE:
            raise ValueError(f"{path} holds {len(key)} bytes where a session ticket key has "
                             f"{TICKET_KEY_SIZE} (make one with: head -c 80 /dev/urandom)")
        if any(key[:16] == other[:16] for other in keys):
            raise ValueError(f"{path}: a key of the same name (its first 16 bytes) comes "
                             "before it")
        keys.append(key)
    return keys


cdef int ticket_key(SSL *s, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *cipher,
                    EVP_MAC_CTX *mac, int encrypt) noexcept nogil:
    """OpenSSL's ticket key callback (keys set by ``ServerContext.set_ticket_keys``): the
    first key encrypts a new ticket; a ticket is decrypted with the key its name names, and
    renewed (2) when that is not the first; an unknown name means a full handshake (0)."""
    cdef TicketKeys *keys = <TicketKeys *>SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), 0)
    cdef TicketKey *key
    cdef OSSL_PARAM params[3]
    cdef int i = 0
    if keys == NULL or keys.n == 0 or TICKET_CIPHER == NULL:
        return -1
    if encrypt:
        key = &keys.keys[0]
        memcpy(name, key.name, 16)
        if RAND_bytes(iv, 16) != 1:
            return -1
        if EVP_EncryptInit_ex2(cipher, TICKET_CIPHER, key.aes, iv, NULL) != 1:
            return -1
    else:
        while i < keys.n and memcmp(name, keys.keys[i].name, 16) != 0:
            i += 1
        if i == keys.n:
            return 0
        key = &keys.keys[i]
        if EVP_DecryptInit_ex2(cipher, TICKET_CIPHER, key.aes, iv, NULL) != 1:
            return -1
    params[0] = OSSL_PARAM_construct_octet_string(b"key", key.hmac, 32)
    params[1] = OSSL_PARAM_construct_utf8_string(b"digest", TICKET_DIGEST, 0)
    params[2] = OSSL_PARAM_construct_end()
    if EVP_MAC_CTX_set_params(mac, params) != 1:
        return -1
    return 2 if i > 0 else 1


cdef void free_ticket_keys(TicketKeys *keys) noexcept:
    if keys != NULL:
        if keys.keys != NULL:
            OPENSSL_cleanse(keys.keys, keys.n * sizeof(TicketKey))
            free(keys.keys)
        free(keys)


cdef class ServerContext:
    """An OpenSSL server context for one kind of listener (see the module's docstring).
    Raises ``ssl.SSLError`` (OpenSSL's reason in the text) when the pair does not load and
    ``FileNotFoundError`` when a file is missing."""

    cdef SSL_CTX *ctx
    cdef bytes alpn_wire          # 2-byte length (little-endian), then ALPN's wire form
    cdef readonly tuple alpn
    cdef readonly str ciphers, ciphersuites     # what set_ciphers set
    cdef TicketKeys *ticket_keys                # set_ticket_keys's, or NULL: OpenSSL's own

    def __cinit__(self):
        self.ctx = NULL

    def __init__(self, str pem, str key, alpn=(), int tickets=2, ciphers=None,
                 ciphersuites=None, ticket_keys=()):
        cdef bytes wire = b"".join(bytes([len(p)]) + p.encode() for p in alpn)
        if any(not 0 < len(p.encode()) < 256 for p in alpn):
            raise ValueError(f"an ALPN protocol name must have 1 to 255 bytes: {alpn!r}")
        self.alpn = tuple(alpn)
        self.alpn_wire = bytes([len(wire) & 0xff, len(wire) >> 8]) + wire
        # OpenSSL's loading runs without the GIL (a context is made in a reload's build
        # thread: the loop answers meanwhile); its error queue is the thread's own.
        with nogil:
            self.ctx = SSL_CTX_new(TLS_server_method())
        if self.ctx == NULL:
            raise MemoryError(str(openssl_error("cannot make a TLS context")))
        SSL_CTX_set_min_proto_version(self.ctx, TLS1_2_VERSION)
        SSL_CTX_set_options(self.ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
                            | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA
                            | SSL_OP_IGNORE_UNEXPECTED_EOF)
        # A socket read takes what has arrived (up to a record's buffer), not a record's
        # header and then its body.
        SSL_CTX_set_read_ahead(self.ctx, 1)
        # OpenSSL's record buffers are freed while a connection has nothing in them: an idle
        # DoT client costs the daemon about 27 KiB rather than 42.
        SSL_CTX_set_mode(self.ctx, SSL_MODE_RELEASE_BUFFERS)
        self.set_ciphers(ciphers, ciphersuites)
        if alpn:
            SSL_CTX_set_alpn_select_cb(self.ctx, select_alpn,
                                       <void *>PyBytes_AS_STRING(self.alpn_wire))
        self.num_tickets = tickets
        self.set_ticket_keys(ticket_keys)
        self.load_cert_chain(pem, key)

    def __dealloc__(self):
        if self.ctx != NULL:
            SSL_CTX_free(self.ctx)
        free_ticket_keys(self.ticket_keys)

    def set_ticket_keys(self, keys):
        """The keys session tickets are encrypted and decrypted with from now on: a list of
        ``TICKET_KEY_SIZE``-byte keys (``read_ticket_keys``), the first encrypting, all
        decrypting (a ticket of another than the first is renewed). Empty: the random keys
        OpenSSL drew when the context was made. The old keys are wiped."""
        global TICKET_CIPHER
        cdef TicketKeys *made = NULL
        cdef TicketKeys *old = self.ticket_keys
        cdef int i
        cdef bytes key
        keys = list(keys)
        if any(not isinstance(k, bytes) or len(k) != TICKET_KEY_SIZE for k in keys):
            raise ValueError(f"a session ticket key is {TICKET_KEY_SIZE} bytes")
        if keys:
            if TICKET_CIPHER == NULL:
                TICKET_CIPHER = EVP_CIPHER_fetch(NULL, b"AES-256-CBC", NULL)
                if TICKET_CIPHER == NULL:
                    raise openssl_error("no AES-256-CBC for session tickets")
            made = <TicketKeys *>calloc(1, sizeof(TicketKeys))
            if made != NULL:
                made.keys = <TicketKey *>calloc(len(keys), sizeof(TicketKey))
            if made == NULL or made.keys == NULL:
                free_ticket_keys(made)
                raise MemoryError("no memory for the session ticket keys")
            made.n = len(keys)
            for i in range(made.n):
                key = keys[i]
                memcpy(made.keys[i].name, PyBytes_AS_STRING(key), 16)
                memcpy(made.keys[i].aes, PyBytes_AS_STRING(key) + 16, 32)
                memcpy(made.keys[i].hmac, PyBytes_AS_STRING(key) + 48, 32)
        SSL_CTX_set_ex_data(self.ctx, 0, made)
        SSL_CTX_set_tlsext_ticket_key_evp_cb(
            self.ctx, ticket_key if made != NULL else <ticket_key_evp_cb>NULL)
        self.ticket_keys = made
        free_ticket_keys(old)

    @property
    def ticket_key_names(self):
        """The names of the session ticket keys set (the first encrypts), or () when they
        are OpenSSL's own."""
        if self.ticket_keys == NULL:
            return ()
        return tuple((<char *>self.ticket_keys.keys[i].name)[:16]
                     for i in range(self.ticket_keys.n))

    def load_cert_chain(self, str pem, str key):
        """Loads a certificate chain (PEM, the server's certificate first) and its private
        key for the handshakes that start from now on."""
        for path in (pem, key):
            with open(path, "rb"):
                pass                      # FileNotFoundError, PermissionError: OSError's text
        ERR_clear_error()
        cdef bytes pem_path = pem.encode(), key_path = key.encode()
        cdef const char *pem_c = pem_path
        cdef const char *key_c = key_path
        cdef int failed = 0
        with nogil:                     # the files read and parsed without the GIL
            if SSL_CTX_use_certificate_chain_file(self.ctx, pem_c) != 1:
                failed = 1
            elif SSL_CTX_use_PrivateKey_file(self.ctx, key_c, SSL_FILETYPE_PEM) != 1:
                failed = 2
            elif SSL_CTX_check_private_key(self.ctx) != 1:
                failed = 3
        if failed == 1:
            raise openssl_error(f"cannot load the certificate chain {pem}")
        if failed == 2:
            raise openssl_error(f"cannot load the private key {key}")
        if failed == 3:
            raise openssl_error(f"the key {key} is not the certificate's")

    def set_ciphers(self, ciphers=None, ciphersuites=None):
        """The TLS 1.2 cipher list (OpenSSL's syntax) and the TLS 1.3 suites (names joined
        by ":"), each in the server's order of preference, for the handshakes that start
        from now on; None: ``TLS12_CIPHERS``, ``TLS13_CIPHERSUITES``. Raises ValueError
        (nothing changed) for a TLS 1.3 name OpenSSL does not implement, an empty list, or
        a TLS 1.2 list that selects no cipher."""
        ciphers = TLS12_CIPHERS if ciphers is None else ciphers
        ciphersuites = TLS13_CIPHERSUITES if ciphersuites is None else ciphersuites
        names = ciphersuites.split(":")
        unknown = [n for n in names if n not in TLS13_SUITE_NAMES]
        if unknown:
            raise ValueError(f"not a TLS 1.3 cipher suite: {', '.join(map(repr, unknown))} "
                             f"(there are {', '.join(sorted(TLS13_SUITE_NAMES))})")
        # The TLS 1.2 list is tried on a context of its own first: OpenSSL leaves a
        # context's list as it was when none matches, but the error must not leave half a
        # change behind either.
        cdef SSL_CTX *probe
        with nogil:
            probe = SSL_CTX_new(TLS_server_method())
        if probe == NULL:
            raise MemoryError(str(openssl_error("cannot make a TLS context")))
        ok = SSL_CTX_set_cipher_list(probe, ciphers.encode()) == 1
        SSL_CTX_free(probe)
        if not ok:
            ERR_clear_error()
            raise ValueError(f"no TLS 1.2 cipher matches {ciphers!r}")
        if (SSL_CTX_set_cipher_list(self.ctx, ciphers.encode()) != 1
                or SSL_CTX_set_ciphersuites(self.ctx, ciphersuites.encode()) != 1):
            raise openssl_error("cannot set the cipher suites")
        self.ciphers, self.ciphersuites = ciphers, ciphersuites

    @property
    def num_tickets(self):
        """TLS 1.3 session tickets sent after a full handshake."""
        return SSL_CTX_get_num_tickets(self.ctx)

    @num_tickets.setter
    def num_tickets(self, int n):
        if n < 0:
            raise ValueError("num_tickets must be 0 or more")
        SSL_CTX_set_num_tickets(self.ctx, n)


class SocketOptions:
    """What ``get_extra_info("socket")`` gives: the connection's socket options (the
    descriptor stays the connection's)."""

    def __init__(self, int fd):
        self._fd = fd

    def fileno(self):
        return self._fd

    def setsockopt(self, int level, int name, int value):
        cdef int v = value
        if setsockopt(self._fd, level, name, &v, sizeof(v)) != 0:
            raise OSError(errno, "setsockopt failed")

    def getsockopt(self, int level, int name):
        cdef int v = 0
        cdef socklen_t size = sizeof(v)
        if getsockopt(self._fd, level, name, &v, &size) != 0:
            raise OSError(errno, "getsockopt failed")
        return v


cdef class TLSTransport(FdWatcher):
    """One accepted TLS connection, and once its handshake is done the transport of its
    application protocol (see the module's docstring)."""

    cdef SSL *ssl
    cdef BIO *wbio                 # once open: what OpenSSL writes, sent by flush()
    cdef bint handshake_writes     # the handshake waits for the socket to take its flight
    cdef BIO *sockbio              # until gather_writes: where OpenSSL writes (the socket)
    cdef TLSService service
    cdef object loop
    cdef Loop fast                 # the loop as corenet's, or None
    cdef int state
    cdef uint32_t mask             # the events asked for (add_reader/add_writer loops)
    cdef bint reading              # the protocol has not paused reading
    cdef bint writing_paused       # the protocol was told pause_writing
    cdef bint buffered             # the protocol is a BufferedProtocol
    cdef bint read_scheduled
    cdef bint send_blocked         # a send fell short: the next waits for EPOLLOUT
    cdef double deadline           # of the handshake, then of the first query
    cdef Py_ssize_t high_water, low_water
    cdef object client             # the peer's address while its handshake counts
    cdef readonly object peername
    cdef object app
    cdef object get_buffer, buffer_updated
    cdef object close_timer
    cdef object app_factory        # its listening socket's, or the service's

    # ---- events

    cdef int on_events(self, Loop loop, uint32_t events) except -1:
        return self.handle(events)

    def _readable(self):
        self.handle(EPOLLIN)

    def _writable(self):
        self.handle(EPOLLOUT)

    cdef int handle(self, uint32_t events) except -1:
        if self.state == CLOSED:
            return 0
        try:
            if events & EPOLLOUT:
                self.send_blocked = False
            if self.state == HANDSHAKE:
                self.handshake()
                return 0
            if events & EPOLLOUT:
                self.flush()
                if self.state == CLOSED:
                    return 0
            if events & (EPOLLIN | EPOLLHUP | EPOLLERR):
                if self.state == OPEN:
                    if self.reading:
                        self.read()
                    elif events & (EPOLLHUP | EPOLLERR):
                        self.finish(ConnectionResetError("the peer's connection ended"))
                elif self.state == CLOSING and events & (EPOLLHUP | EPOLLERR):
                    self.finish(None)
        except Exception as exc:
            self.fail(exc)
        return 0

    cdef int fail(self, exc) except -1:
        """The application protocol raised: the connection ends with the error (a frame
        over the framer's limit is the protocol's to count; anything else is logged)."""
        if not isinstance(exc, FrameTooLarge):
            self.loop.call_exception_handler({
                "message": "Fatal error on the TLS connection's protocol",
                "exception": exc, "transport": self, "protocol": self.app})
        self.finish(exc)
        return 0

    cdef int want(self, uint32_t mask) except -1:
        """Asks the loop for ``mask`` (EPOLLIN, EPOLLOUT, both or neither)."""
        if self.fast is not None:
            if mask == 0:
                if self.registered:
                    unwatch(self.fast, self)
            elif mask != self.registered:
                watch(self.fast, self, mask)
            return 0
        if mask & EPOLLIN and not self.mask & EPOLLIN:
            self.loop.add_reader(self.fd, self._readable)
        elif self.mask & EPOLLIN and not mask & EPOLLIN:
            self.loop.remove_reader(self.fd)
        if mask & EPOLLOUT and not self.mask & EPOLLOUT:
            self.loop.add_writer(self.fd, self._writable)
        elif self.mask & EPOLLOUT and not mask & EPOLLOUT:
            self.loop.remove_writer(self.fd)
        self.mask = mask
        return 0

    cdef uint32_t wanted(self):
        cdef uint32_t mask = 0
        if self.state == HANDSHAKE:
            mask = EPOLLIN | EPOLLOUT if self.handshake_writes else EPOLLIN
        elif self.state == OPEN and self.reading:
            mask = EPOLLIN
        if self.wbio != NULL and BIO_ctrl_pending(self.wbio):
            mask |= EPOLLOUT
        return mask

    # ---- the handshake

    cdef int handshake(self) except -1:
        """A step of the handshake. OpenSSL writes its first flight (ServerHello to
        Finished in TLS 1.3) to the socket itself, the moment it is complete: the work it
        does afterwards (the keys it derives once its Finished is out) overlaps the
        client's. What it writes after that (the session tickets, TLS 1.2's last flight, the
        answers) is gathered in memory and sent by ``flush``: the two tickets leave as one
        segment, and later the answers of one read with one ``send``."""
        cdef int r = SSL_do_handshake(self.ssl)
        cdef int err
        if r != 1:
            err = SSL_get_error(self.ssl, r)
            if err == SSL_ERROR_WANT_READ:
                if self.wbio == NULL and BIO_number_written(self.sockbio):
                    self.gather_writes()
                self.flush()
                if self.handshake_writes and self.state == HANDSHAKE:
                    self.handshake_writes = False
                    self.want(self.wanted())
                return 0
            if err == SSL_ERROR_WANT_WRITE:     # the socket is full (the first flight)
                if not self.handshake_writes:
                    self.handshake_writes = True
                    self.want(self.wanted())
                return 0
            self.service.handshake_failed(self)
            ERR_clear_error()
            self.finish(None)
            return 0
        if self.wbio == NULL:
            self.gather_writes()
        self.service.handshake_done(self)
        self.handshake_writes = False
        self.state = OPEN
        self.reading = True
        self.flush()
        if self.state == OPEN and SSL_has_pending(self.ssl):
            self.read()        # records that came with the client's Finished
        # (any still in the socket make it readable: the loop watches it level-triggered)
        return 0

    cdef int gather_writes(self) except -1:
        """From now on what OpenSSL writes goes to memory, sent by ``flush``."""
        cdef BIO *buffered = BIO_new(BIO_s_mem())
        if buffered == NULL:
            ERR_clear_error()
            raise MemoryError("OpenSSL cannot make a buffer")
        SSL_set0_wbio(self.ssl, buffered)      # frees the socket's
        self.sockbio = NULL
        self.wbio = buffered
        return 0

    cdef int start_app(self) except -1:
        """The first record has come: the application protocol is made and given the
        connection (until then the connection counts with the handshakes in progress)."""
        self.service.handshake_over(self)
        app = (self.app_factory or self.service.app_factory)()
        self.app = app
        if isinstance(app, asyncio.BufferedProtocol):
            self.buffered = True
            self.get_buffer = app.get_buffer
            self.buffer_updated = app.buffer_updated
        app.connection_made(self)
        return 0

    # ---- reading

    cdef int read(self) except -1:
        cdef int reads = 0, r
        self.read_scheduled = False
        while self.state == OPEN and self.reading:
            if reads >= READS_PER_WAKEUP:
                self.schedule_read()
                return 0
            reads += 1
            if self.app is None:
                r = SSL_peek(self.ssl, scratch, 1)
                if r <= 0:
                    self.read_ended(SSL_get_error(self.ssl, r))
                    return 0
                self.start_app()
                continue
            if self.buffered:
                if self.read_buffered():
                    return 0
            elif self.read_copied():
                return 0
        return 0

    cdef bint read_buffered(self) except -1:
        """Fills the protocol's buffer; True when OpenSSL has nothing more for now."""
        cdef Py_buffer view
        cdef Py_ssize_t filled = 0
        cdef int r = 1, err = SSL_ERROR_NONE
        if not SSL_has_pending(self.ssl):
            # Whether a record has come, before the protocol is asked for a buffer (the
            # framer allocates its own on the first): after the handshake, often none has.
            r = SSL_peek(self.ssl, scratch, 1)
            if r <= 0:
                return self.read_ended(SSL_get_error(self.ssl, r))
        buf = self.get_buffer(-1)
        PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
        try:
            if view.len <= 0:
                raise RuntimeError("get_buffer() returned an empty buffer")
            while filled < view.len:
                r = SSL_read(self.ssl, <char *>view.buf + filled,
                             <int>min(view.len - filled, 1 << 30))
                if r <= 0:
                    err = SSL_get_error(self.ssl, r)
                    break
                filled += r
        finally:
            PyBuffer_Release(&view)
        if filled:
            self.buffer_updated(filled)
        if r > 0:
            return False                  # the buffer is full: read on
        return self.read_ended(err)

    cdef bint read_copied(self) except -1:
        cdef list chunks = []
        cdef int r = 1, err = SSL_ERROR_NONE
        while True:
            r = SSL_read(self.ssl, scratch, READ_CHUNK)
            if r <= 0:
                err = SSL_get_error(self.ssl, r)
                break
            chunks.append(PyBytes_FromStringAndSize(scratch, r))
            if len(chunks) >= READS_PER_WAKEUP:
                break
        if chunks:
            self.app.data_received(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if r > 0:
            return False
        return self.read_ended(err)

    cdef bint read_ended(self, int err) except -1:
        """What a read that returned nothing means; True when reading stops for now."""
        if err == SSL_ERROR_WANT_READ:
            self.flush()                  # a key update or ticket OpenSSL answered
            return True
        if self.state != OPEN:
            return True
        if err == SSL_ERROR_ZERO_RETURN:
            # The peer's close_notify, or (IGNORE_UNEXPECTED_EOF) its stream's end.
            if self.app is None:
                self.finish(None)         # it asked nothing
                return True
            self.reading = False
            self.want(self.wanted())
            if not self.app.eof_received() and self.state == OPEN:
                # The peer has closed: what is buffered goes, with no close_notify of ours
                # (TLS 1.3 asks none; the initiator of a TLS 1.2 close waits for none).
                self.state = CLOSING
                self.flush()
                if self.state == CLOSING:
                    self.close_timer = self.loop.call_later(self.service.shutdown_timeout,
                                                            self._close_expired)
            return True
        if err == SSL_ERROR_SSL:
            self.service.counts["bad_records"] += 1
            exc = openssl_error("TLS error")
        else:
            ERR_clear_error()
            exc = ConnectionResetError(errno, "the peer's connection failed")
        self.finish(exc)
        return True

    cdef int schedule_read(self) except -1:
        if not self.read_scheduled:
            self.read_scheduled = True
            if self.fast is not None:
                call_before_poll(self.fast, self._read_now)
            else:
                self.loop.call_soon(self._read_now)
        return 0

    def _read_now(self):
        try:
            if self.read_scheduled and self.state == OPEN and self.reading:
                self.read()
        except Exception as exc:
            self.fail(exc)
        self.read_scheduled = False

    # ---- writing

    cdef int flush(self) except -1:
        """Sends what OpenSSL has written; what the socket does not take waits for EPOLLOUT."""
        cdef char *data
        cdef long size
        cdef ssize_t sent
        cdef int skip
        if self.wbio == NULL:
            return 0                      # the handshake writes to the socket itself
        size = BIO_get_mem_data(self.wbio, &data)
        if size > 0 and not self.send_blocked:
            sent = send(self.fd, data, size, MSG_NOSIGNAL)
            if sent == size:
                BIO_reset(self.wbio)
            elif sent >= 0 or errno == EAGAIN or errno == EINTR:
                self.send_blocked = True          # until the socket is writable again
                while sent > 0:       # drop what went out (rare: the socket is full)
                    skip = BIO_read(self.wbio, scratch, <int>min(sent, READ_CHUNK))
                    if skip <= 0:
                        break
                    sent -= skip
            else:
                # (the error is the protocol's to see; a handshake's end has no protocol)
                self.finish(ConnectionResetError(errno, "cannot send to the peer")
                            if self.app is not None else None)
                return 0
        self.after_flush()
        return 0

    cdef int after_flush(self) except -1:
        cdef size_t left = BIO_ctrl_pending(self.wbio)
        if self.state == CLOSING and left == 0:
            self.finish(None)
            return 0
        if self.state == CLOSED:
            return 0
        self.want(self.wanted())
        if self.app is not None and self.state == OPEN:
            if self.writing_paused and left <= <size_t>self.low_water:
                self.writing_paused = False
                self.app.resume_writing()
            elif not self.writing_paused and left > <size_t>self.high_water:
                self.writing_paused = True
                self.app.pause_writing()
        return 0

    cdef int write_one(self, data) except -1:
        """Encrypts ``data`` into the write buffer; an error of OpenSSL's ends the
        connection (its protocol gets it in ``connection_lost``), as a failed send does."""
        cdef const unsigned char[::1] view
        cdef const char *p
        cdef Py_ssize_t n
        cdef int chunk
        if isinstance(data, bytes):
            p = PyBytes_AS_STRING(data)
            n = len(<bytes>data)
        else:
            view = memoryview(data).cast("B")
            n = view.shape[0]
            if n == 0:
                return 0
            p = <const char *>&view[0]
        while n > 0 and self.state == OPEN:
            chunk = <int>min(n, 1 << 30)
            if SSL_write(self.ssl, p, chunk) <= 0:
                self.finish(openssl_error("cannot encrypt"))
                return 0
            p += chunk
            n -= chunk
        return 0

    def write(self, data):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data: expecting a bytes-like instance, got {type(data).__name__}")
        if self.state != OPEN:
            return
        self.write_one(data)
        self.flush()

    def writelines(self, list_of_data):
        """Each buffer its own TLS record, sent together."""
        if self.state != OPEN:
            return
        for data in list_of_data:
            self.write_one(data)
        self.flush()

    def can_write_eof(self):
        return False

    def get_write_buffer_size(self):
        return BIO_ctrl_pending(self.wbio) if self.wbio != NULL else 0

    def get_write_buffer_limits(self):
        return (self.low_water, self.high_water)

    def set_write_buffer_limits(self, high=None, low=None):
        self.high_water, self.low_water = flow_control_limits(high, low, 64)
        if self.state == OPEN:
            self.after_flush()

    # ---- reading control

    def is_reading(self):
        return self.state == OPEN and self.reading

    def pause_reading(self):
        if self.state == OPEN and self.reading:
            self.reading = False
            self.want(self.wanted())

    def resume_reading(self):
        if self.state == OPEN and not self.reading:
            self.reading = True
            self.want(self.wanted())
            if SSL_has_pending(self.ssl):
                self.schedule_read()       # records OpenSSL read before the pause

    # ---- the end

    def is_closing(self):
        return self.state != OPEN and self.state != HANDSHAKE

    def close(self):
        """Sends close_notify after what is buffered, then closes; connection_lost(None)
        follows. What is not sent within the listener's shutdown timeout is dropped."""
        if self.state != OPEN:
            if self.state == HANDSHAKE:
                self.finish(None)
            return
        self.state = CLOSING
        self.reading = False
        SSL_shutdown(self.ssl)
        ERR_clear_error()
        self.flush()
        if self.state == CLOSING:
            self.close_timer = self.loop.call_later(self.service.shutdown_timeout,
                                                    self._close_expired)

    def _close_expired(self):
        self.close_timer = None
        if self.state == CLOSING:
            self.finish(None)

    def abort(self):
        """Closes at once; what is buffered is dropped. connection_lost(None) follows."""
        if self.state != CLOSED:
            self.finish(None)

    def _force_close(self, exc):
        if self.state != CLOSED:
            self.finish(exc)

    cdef int finish(self, exc) except -1:
        """Closes the descriptor and frees OpenSSL's state; the application protocol, if any,
        is told in a later step of the loop."""
        cdef int state = self.state
        if state == CLOSED:
            return 0
        self.state = CLOSED
        if self.app is None:
            self.service.handshake_over(self)
        if self.fast is not None:
            unwatch_close(self.fast, self)
        else:
            self.want(0)
            close(self.fd)
            self.fd = -1
        SSL_free(self.ssl)                # and its BIOs
        self.ssl = NULL
        self.wbio = NULL
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        self.get_buffer = self.buffer_updated = None
        if self.app is not None:
            self.loop.call_soon(self._lost, exc)
        return 0

    def _lost(self, exc):
        app, self.app = self.app, None
        app.connection_lost(exc)

    def __dealloc__(self):
        if self.ssl != NULL:
            SSL_free(self.ssl)
        if self.fd >= 0 and self.state != CLOSED:
            close(self.fd)

    # ---- what the protocol may ask

    def get_extra_info(self, name, default=None):
        if name == "peername":
            return self.peername
        if name == "ssl_object":
            return self if self.state == OPEN or self.state == CLOSING else default
        if name == "sslcontext":
            return self.service.context
        if name == "socket":
            return SocketOptions(self.fd) if self.state != CLOSED else default
        if name == "sockname":
            return self.sockname()
        if name == "cipher":
            return self.cipher() if self.ssl != NULL else default
        return default

    cdef object sockname(self):
        cdef sockaddr_storage ss
        cdef socklen_t size = sizeof(ss)
        if self.state == CLOSED or getsockname(self.fd, <void *>&ss, &size) != 0:
            return None
        return cn_addr_tuple(&ss)

    def get_protocol(self):
        return self.app

    def selected_alpn_protocol(self):
        """The protocol ALPN chose, or None."""
        cdef const unsigned char *data = NULL
        cdef unsigned int n = 0
        if self.ssl == NULL:
            return None
        SSL_get0_alpn_selected(self.ssl, &data, &n)
        return data[:n].decode("ascii", "replace") if n else None

    def version(self):
        return SSL_get_version(self.ssl).decode() if self.ssl != NULL else None

    def cipher(self):
        cdef const SSL_CIPHER *c
        cdef int bits = 0
        if self.ssl == NULL:
            return None
        c = SSL_get_current_cipher(self.ssl)
        if c == NULL:
            return None
        SSL_CIPHER_get_bits(c, &bits)
        return (SSL_CIPHER_get_name(c).decode(), SSL_CIPHER_get_version(c).decode(), bits)

    @property
    def session_reused(self):
        return self.ssl != NULL and SSL_session_reused(self.ssl) == 1

    @property
    def server_side(self):
        return True


cdef class TLSService:
    """What the listening sockets of one label share (see the module's docstring): the
    context, ``app_factory``, the counters, the caps on handshakes in progress, the
    timeouts, and the handshakes in progress themselves."""

    cdef public ServerContext context        # a reload may replace it
    cdef public object app_factory
    cdef public dict counts
    cdef public object shed                  # at the cap: closes an idle connection, or False
    cdef public object refuse                # client -> True to close it at the accept
    cdef public int max_handshakes, max_handshakes_per_client
    cdef public double handshake_timeout, idle_timeout, shutdown_timeout
    cdef readonly int handshaking
    cdef readonly dict handshaking_by_client
    cdef set pending                        # the connections in their handshake
    cdef set established                    # the application's connections, for the caps
    cdef dict established_by_client
    cdef object loop
    cdef Loop fast
    cdef object sweeper
    cdef double sweep_at                    # when the sweeper runs

    def __init__(self, loop, ServerContext context, app_factory, dict counts,
                 int max_handshakes, int max_handshakes_per_client, double handshake_timeout,
                 double idle_timeout, double shutdown_timeout=30.0, set established=None,
                 dict established_by_client=None):
        for key in ("handshakes", "resumed", "handshake_timeout", "handshake_failed",
                    "handshake_refused", "idle_before_query", "bad_records", "accept_failed"):
            counts.setdefault(key, 0)
        self.loop = loop
        self.fast = fast_loop(loop)
        self.context = context
        self.app_factory = app_factory
        self.counts = counts
        self.max_handshakes = max_handshakes
        self.max_handshakes_per_client = max_handshakes_per_client
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.shutdown_timeout = shutdown_timeout
        self.handshaking_by_client = {}
        self.pending = set()
        self.established = established if established is not None else set()
        self.established_by_client = (established_by_client
                                      if established_by_client is not None else {})
        self.shed = None
        self.refuse = None

    def serve(self, sock, app_factory=None, bint proxied=False):
        """Starts accepting on the listening socket ``sock``; returns its ``TLSServer``.
        ``app_factory``: the application protocol of its connections, when not the
        service's; ``proxied``: its clients are proxies (see the module's docstring)."""
        cdef TLSServer server = TLSServer.__new__(TLSServer)
        server.service = self
        server.sock = sock
        server.app_factory = app_factory
        server.proxied = proxied
        server.fd = sock.fileno()
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # Accepted sockets inherit it (Linux): what is written leaves at once.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.fast is not None:
            watch(self.fast, server, EPOLLIN)
        else:
            self.loop.add_reader(server.fd, server._readable)
        return server

    def abort_handshakes(self):
        """Ends the handshakes in progress."""
        for conn in list(self.pending):
            (<TLSTransport>conn).finish(None)
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None

    cdef int start(self, int fd, peer, TLSServer server) except -1:
        cdef TLSTransport conn
        cdef SSL *s
        cdef BIO *rbio
        cdef BIO *wbio
        client = peer[0] if peer else None
        # (From a proxy, the client is known only to the application: see ``serve``.)
        cdef bint own = not server.proxied
        if own and self.refuse is not None and self.refuse(client):
            close(fd)
            return 0
        mine = self.handshaking_by_client.get(client, 0)
        # At the cap in all, the connection idle the longest is shed for the new one (as TCP
        # does; ``shed``), the new one refused only when none is idle; a client at its own
        # cap is refused.
        if (own and mine + self.established_by_client.get(client, 0)
                >= self.max_handshakes_per_client
                or self.handshaking + len(self.established) >= self.max_handshakes
                and not (self.shed is not None and self.handshaking < self.max_handshakes
                         and self.shed())):
            self.counts["handshake_refused"] += 1
            close(fd)
            return 0
        s = SSL_new(self.context.ctx)
        rbio = BIO_new_socket(fd, BIO_NOCLOSE)
        wbio = BIO_new_socket(fd, BIO_NOCLOSE)
        if s == NULL or rbio == NULL or wbio == NULL:
            if s != NULL:
                SSL_free(s)
            if rbio != NULL:
                BIO_free(rbio)
            if wbio != NULL:
                BIO_free(wbio)
            ERR_clear_error()
            close(fd)
            raise MemoryError("OpenSSL cannot make a connection")
        SSL_set_bio(s, rbio, wbio)
        SSL_set_accept_state(s)
        conn = TLSTransport.__new__(TLSTransport)
        conn.fd = fd
        conn.ssl = s
        conn.sockbio = wbio
        conn.service = self
        conn.loop = self.loop
        conn.fast = self.fast
        conn.peername = peer
        conn.client = client
        conn.app_factory = server.app_factory
        conn.high_water = 64 * 1024
        conn.low_water = 16 * 1024
        conn.deadline = monotonic() + self.handshake_timeout
        self.handshaking += 1
        self.handshaking_by_client[client] = mine + 1
        self.pending.add(conn)
        self.sweep_by(conn.deadline)
        conn.want(EPOLLIN)
        return 0

    cdef int sweep_by(self, double deadline) except -1:
        """Makes the sweeper run by ``deadline``."""
        if self.sweeper is not None:
            if self.sweep_at <= deadline:
                return 0
            self.sweeper.cancel()
        self.sweep_at = deadline
        self.sweeper = self.loop.call_later(max(deadline - monotonic(), 0.0), self._sweep)
        return 0

    cdef int handshake_done(self, TLSTransport conn) except -1:
        counts = self.counts
        counts["handshakes"] += 1
        if SSL_session_reused(conn.ssl) == 1:
            counts["resumed"] += 1
        conn.deadline = monotonic() + self.idle_timeout
        self.sweep_by(conn.deadline)
        return 0

    cdef int handshake_failed(self, TLSTransport conn) except -1:
        self.counts["handshake_failed"] += 1
        return 0

    cdef int handshake_over(self, TLSTransport conn) except -1:
        """``conn``'s handshake no longer counts (done, failed or cut short)."""
        if conn not in self.pending:
            return 0
        client = conn.client
        self.pending.discard(conn)
        self.handshaking -= 1
        n = self.handshaking_by_client.get(client, 0) - 1
        if n > 0:
            self.handshaking_by_client[client] = n
        else:
            self.handshaking_by_client.pop(client, None)
        conn.client = None
        return 0

    def _sweep(self):
        """Ends the handshakes past their deadline, and the connections that have asked
        nothing within the idle timeout of their handshake's end; runs while any is
        pending."""
        cdef TLSTransport conn
        cdef double now = monotonic(), due = now + 3600.0
        self.sweeper = None
        for c in list(self.pending):
            conn = <TLSTransport>c
            if now >= conn.deadline:
                self.counts["handshake_timeout" if conn.state == HANDSHAKE
                            else "idle_before_query"] += 1
                conn.finish(None)
            elif conn.deadline < due:
                due = conn.deadline
        if self.pending:
            self.sweep_by(max(due, now + 0.01))


cdef class TLSServer(FdWatcher):
    """One listening socket of a ``TLSService`` (made by its ``serve``), with
    ``asyncio.Server``'s ``close``, ``is_serving``, ``wait_closed`` and ``sockets``."""

    cdef TLSService service
    cdef object sock
    cdef object app_factory
    cdef bint proxied

    @property
    def sockets(self):
        return (self.sock,) if self.sock is not None else ()

    def close(self):
        """Stops listening (the socket is closed) and ends the handshakes in progress."""
        if self.sock is None:
            return
        if self.service.fast is not None:
            unwatch(self.service.fast, self)
        else:
            self.service.loop.remove_reader(self.fd)
        self.sock.close()
        self.sock = None
        self.fd = -1
        self.service.abort_handshakes()

    def is_serving(self):
        return self.sock is not None

    async def wait_closed(self):
        return None

    cdef int on_events(self, Loop loop, uint32_t events) except -1:
        return self.accept()

    def _readable(self):
        self.accept()

    cdef int accept(self) except -1:
        """One connection per wake-up: the listening socket is watched level-triggered, so
        the loop comes back at once for the next (after the other ready descriptors), and
        no accept4 is made only to learn that none is waiting."""
        cdef sockaddr_storage ss
        cdef socklen_t size = sizeof(ss)
        cdef int fd
        cdef int err
        if self.sock is None:
            return 0
        fd = accept4(self.fd, <void *>&ss, &size, SOCK_NONBLOCK | SOCK_CLOEXEC)
        if fd >= 0:
            self.service.start(fd, cn_addr_tuple(&ss), self)
            return 0
        err = errno
        if err == EAGAIN or err == EINTR or err == ECONNABORTED or err == EPROTO:
            return 0          # none waiting, or one that went before it was taken
        # Out of descriptors or memory: the socket stays readable, so accepting pauses
        # for a moment rather than spinning; the connections wait in the backlog.
        self.service.counts["accept_failed"] += 1
        self.pause(ACCEPT_RETRY_DELAY)
        return 0

    cdef int pause(self, double delay) except -1:
        if self.service.fast is not None:
            unwatch(self.service.fast, self)
        else:
            self.service.loop.remove_reader(self.fd)
        self.service.loop.call_later(delay, self._resume)
        return 0

    def _resume(self):
        if self.sock is None:
            return
        if self.service.fast is not None:
            watch(self.service.fast, self, EPOLLIN)
        else:
            self.service.loop.add_reader(self.fd, self._readable)
