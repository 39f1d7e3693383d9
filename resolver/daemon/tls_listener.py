"""The daemon's TLS listeners: DNS over TLS (RFC 7858) and the TLS side of DNS over HTTPS.

A listener serves TLS on its sockets with :mod:`resolver.daemon.tls_server` (accept,
handshake and the encrypted stream in C) and makes the application protocol when a
connection's first record of application data arrives: for DNS over TLS the daemon's TCP
connection class itself (:class:`TLSConnection`, a
:class:`resolver.daemon.connections.TCPConnection` labelled "tls"), so the decrypted stream goes
through the same framer, whose cache hits are answered in C, and the same ACL, caps,
pipelining and idle timeout as TCP; for DNS over HTTPS the HTTP connection of
:mod:`resolver.daemon.doh_listener`. Until then a connection counts against the same caps
(``tcp-max-connections``, ``tcp-max-connections-per-client``) as one handshake in
progress: a connection past either is closed at its accept.

A listener's context lasts as long as the daemon: it is made before the workers are
forked, and a reload reads the key and certificate into it again
(:meth:`ServiceContext.reload`, which copies the two files to a private temporary
directory for the moment it checks them). New handshakes then use the new certificate while
connections already open keep theirs, and the session ticket keys OpenSSL drew when the
context was made stay until a restart: a client resumes its session on whichever worker its
next connection reaches, before and after a reload. Ticket keys from files
(``tls-session-ticket-keys``) replace OpenSSL's and are read again on reload, which is how
they are rotated and shared between daemons. TLS 1.2 is the minimum (1.3 is what
OpenSSL prefers), session tickets are on (``tls-session-tickets`` after a full TLS 1.3
handshake), the cipher suites are the server's choice (``tls-ciphers``,
``tls-ciphersuites``), the ALPN is ``dot`` (or ``h2``/``http/1.1``); a handshake that does
not finish within ``Limits.tls_handshake_timeout``, or a connection that asks nothing within
``tcp-idle-timeout`` of it, is closed and counted.

On a port of ``proxy-protocol-port`` the connection is the proxied kind
(:class:`ProxiedTLSConnection`, :class:`resolver.daemon.doh_listener.ProxiedHTTPConnection`):
its decrypted stream starts with the PROXY v2 header naming the client, as dnsdist sends it
to a TLS backend and Unbound reads it, and the caps per client, the DoH throttle, the ACLs
and the logs apply to that client, not to the proxy's address at the accept.
"""
from __future__ import annotations

import asyncio
# the loop's default executor, which ``StagedPair.discard`` hands work to at a reload: the
# standard library imports it on first use, and by then the daemon may run as a user that
# cannot read the interpreter's files; imported here, with the feature, before root is dropped
import concurrent.futures.thread  # noqa: F401
import functools
import hashlib
import logging
import os
import socket
import ssl
import tempfile
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from resolver.daemon import doh_listener, reloads, tls_server
from resolver.daemon.connections import (ProxiedStream, TCPConnection, address_text,
                                         bind_socket, listen_options)

log = logging.getLogger("resolver.daemon.tls")

#: ALPN of DNS over TLS (RFC 7858 has none; "dot" is IANA's registration for it).
DOT_ALPN = ("dot",)
#: ALPN of DNS over HTTPS: HTTP/2 first, as browsers ask.
DOH_ALPN = ("h2", "http/1.1")


def key_kind(path: str) -> str | None:
    """The kind of the private key in the PEM file ``path`` as OpenSSL keeps a server's
    certificates, one per kind ("rsa", "ec", "ed25519", "ed448", "dsa"), or None when it
    cannot be told."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    try:
        with open(path, "rb") as f:
            key = load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm):
        return None
    for kind, cls in (("rsa", rsa.RSAPrivateKey), ("ec", ec.EllipticCurvePrivateKey),
                      ("ed25519", ed25519.Ed25519PrivateKey),
                      ("ed448", ed448.Ed448PrivateKey)):
        if isinstance(key, cls):
            return kind
    # DSA last, looked up only for a key of none of those kinds: cryptography deprecates
    # it (a warning at each lookup) and will drop it.
    from cryptography.utils import CryptographyDeprecationWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        try:
            from cryptography.hazmat.primitives.asymmetric.dsa import DSAPrivateKey
        except ImportError:
            return None
    return "dsa" if isinstance(key, DSAPrivateKey) else None


def read_pair(pem: str, key: str) -> tuple[bytes, bytes]:
    """The bytes of a certificate chain file and of its key file."""
    with open(pem, "rb") as f, open(key, "rb") as g:
        return f.read(), g.read()


def pair_digest(pem: bytes, key: bytes) -> bytes:
    """A digest of the bytes of a certificate chain and of its key (``read_pair``)."""
    return hashlib.sha256(b"%d\0%s%s" % (len(pem), pem, key)).digest()


def make_context(cfg, pem: str, key: str, alpn: tuple[str, ...],
                 ticket_keys: list[bytes]) -> tls_server.ServerContext:
    """A server context for ``alpn`` with the certificate chain ``pem`` and its ``key``, the
    session ticket keys read from ``cfg``'s files (``tls_server.read_ticket_keys``), and
    ``cfg``'s ticket count and cipher suites."""
    return tls_server.ServerContext(pem, key, alpn, cfg.tls_session_tickets, cfg.tls_ciphers,
                                    cfg.tls_ciphersuites, ticket_keys)


class ServiceContext:
    """A TLS listener's context for the daemon's life, and the kind of its key."""

    def __init__(self, cfg, alpn: tuple[str, ...]) -> None:
        self.alpn = alpn
        self.context = make_context(cfg, cfg.tls_service_pem, cfg.tls_service_key, alpn,
                                    tls_server.read_ticket_keys(cfg.tls_session_ticket_keys))
        self.kind = key_kind(cfg.tls_service_key)
        #: the bytes of the pair the context holds (``pair_digest``): a reload whose files
        #: are the same bytes does not load them again
        self.digest = pair_digest(*read_pair(cfg.tls_service_pem, cfg.tls_service_key))
        #: the cipher lists the context was given (setting them again costs OpenSSL
        #: about 0.15 ms, on the loop)
        self.ciphers = (cfg.tls_ciphers, cfg.tls_ciphersuites)

    def stage(self, cfg) -> "StagedPair":
        """What :meth:`reload` takes, read without touching the context in use (a reload
        calls it in a thread): the ticket keys, and unless the files hold the bytes the
        context holds, copies of them and a context loaded from the copies. Raises (OSError,
        ssl.SSLError, ...) when they do not load."""
        ticket_keys = tls_server.read_ticket_keys(cfg.tls_session_ticket_keys)
        pem, key = read_pair(cfg.tls_service_pem, cfg.tls_service_key)
        digest = pair_digest(pem, key)
        if digest == self.digest:
            return StagedPair(None, "", "", None, self.kind, ticket_keys, digest)
        tmp = tempfile.TemporaryDirectory(prefix="corenet-resolver-tls-")
        try:
            pem_copy, key_copy = os.path.join(tmp.name, "chain.pem"), os.path.join(tmp.name,
                                                                                   "key.pem")
            for path, data in ((pem_copy, pem), (key_copy, key)):
                with open(path, "wb") as f:
                    f.write(data)
            checked = make_context(cfg, pem_copy, key_copy, self.alpn, ticket_keys)
            return StagedPair(tmp, pem_copy, key_copy, checked, key_kind(key_copy),
                              ticket_keys, digest)
        except BaseException:
            tmp.cleanup()
            raise

    def reload(self, cfg, staged: "StagedPair | None" = None) -> bool:
        """Reads the certificate chain and key again for the handshakes that start from now
        on (a connection keeps the certificate it started with), with the configuration's
        ticket count, ticket key files and cipher suites. The context stays, and with it
        the session ticket keys OpenSSL drew (used when no key files are set), so sessions
        made before still resume; True then.

        The files are copied once and the copy is loaded into a context of its own first:
        OpenSSL's loading is not atomic, so a broken pair (or files replaced meanwhile)
        must not reach the context in use, and raises (OSError, ssl.SSLError) with it
        unchanged. When the new key is of another kind than the old one the context is
        replaced instead (False): OpenSSL keeps a certificate per kind of key and would go
        on offering the old one, and the new context has ticket keys of its own. Files
        whose bytes are those the context holds are not loaded again, nor cipher lists it
        has (loading a key on the loop costs about half a millisecond, which every reload
        would add to the answers waiting).

        ``staged``: :meth:`stage`'s for ``cfg`` (read here when not given)."""
        if staged is None:
            staged = self.stage(cfg)
        try:
            if staged.checked is None:
                pass                        # the same bytes: nothing to load
            elif staged.kind is None or staged.kind != self.kind:
                self.context, self.kind = staged.checked, staged.kind
                self.digest = staged.digest
                self.ciphers = (cfg.tls_ciphers, cfg.tls_ciphersuites)
                return False
            if staged.digest != self.digest:
                self.context.load_cert_chain(staged.pem, staged.key)
                self.digest = staged.digest
        finally:
            staged.discard()
        self.context.num_tickets = cfg.tls_session_tickets
        ciphers = (cfg.tls_ciphers, cfg.tls_ciphersuites)
        if ciphers != self.ciphers:
            self.context.set_ciphers(*ciphers)
            self.ciphers = ciphers
        self.context.set_ticket_keys(staged.ticket_keys)
        return True


@dataclass
class StagedPair:
    """A key and certificate read for a reload (``ServiceContext.stage``): the private
    directory holding their copies, a context loaded from them, the kind of key, the
    ticket keys and the copies' ``pair_digest``; without a directory, copies or context
    when the files hold the bytes the running context holds."""
    tmp: tempfile.TemporaryDirectory | None
    pem: str
    key: str
    checked: Any
    kind: str | None
    ticket_keys: list
    digest: bytes

    def discard(self) -> None:
        """Removes the copies: in the running loop's executor (a slow disk must not hold
        up the loop), else at once."""
        if self.tmp is None:
            return
        try:
            asyncio.get_running_loop().run_in_executor(None, self.tmp.cleanup)
        except RuntimeError:
            self.tmp.cleanup()


def service_contexts(cfg) -> dict[str, ServiceContext]:
    """The contexts of the configured TLS listeners, by label ("tls", "https"). The daemon
    makes them once, before it forks its workers, so that every worker has the same session
    ticket keys: each would otherwise draw its own, and a client's next connection, which
    SO_REUSEPORT may give to another worker, could not resume."""
    made = {}
    for label, addresses, alpn in (("tls", cfg.tls_listen, DOT_ALPN),
                                   ("https", cfg.https_listen, DOH_ALPN)):
        if addresses:
            made[label] = ServiceContext(cfg, alpn)
    return made


#: What reading a key and certificate can fail with (the ones in use then stay).
RELOAD_ERRORS = (OSError, ssl.SSLError, TypeError, ValueError)


class TLSListener:
    """The TLS listening sockets of one label: the service they share (context, counters,
    caps on handshakes in progress; ``tls_server.TLSService``), the addresses, the reload."""

    def __init__(self, server, label: str, alpn: tuple[str, ...],
                 app_factory: Callable[["TLSListener"], asyncio.BaseProtocol],
                 service: ServiceContext | None = None, guard: bool = False,
                 proxied_factory: Callable[["TLSListener"], asyncio.BaseProtocol] | None
                 = None) -> None:
        self.server = server
        self.label = label
        self.proxied_factory = proxied_factory      # the protocol behind a proxy
        self.counts = {"handshakes": 0, "resumed": 0, "handshake_timeout": 0,
                       "handshake_failed": 0, "handshake_refused": 0,
                       "idle_before_query": 0, "bad_records": 0, "accept_failed": 0,
                       "reloads": 0, "reload_failed": 0}
        cfg = server.cfg
        if service is None:     # a server of its own (the daemon's come from service_contexts)
            service = ServiceContext(cfg, alpn)
        self.service = service
        self.tls = tls_server.TLSService(
            server.loop, service.context, functools.partial(app_factory, self), self.counts,
            cfg.tcp_max_connections, cfg.tcp_max_connections_per_client,
            server.resolver.limits.tls_handshake_timeout, cfg.tcp_idle_timeout,
            established=server.connections, established_by_client=server.tcp_by_client)
        self.tls.shed = getattr(server, "shed_idle_tcp", None)
        # DNS over HTTPS: its defences, and the throttle asked at each accept
        # (doh_listener.Guard). DNS over TLS shares the accept path but has none.
        self.guard = doh_listener.Guard(self.counts, server.resolver.limits) if guard else None
        self.tls.refuse = self.refused
        self.addresses: list[tuple[str, int]] = []

    def refused(self, client) -> bool:
        """Whether a connection from ``client`` is closed at its accept, before any
        handshake: the DoH throttle refuses it, or its network holds its
        ``tcp-connection-limit`` already (Unbound checks the limit at the accept too)."""
        if self.guard is not None and self.guard.refuse(client):
            return True
        if self.server.network_full(client):
            self.server.counters.tcp_rejected += 1
            return True
        return False

    @property
    def handshaking(self) -> int:
        """Handshakes in progress."""
        return self.tls.handshaking

    async def listen(self, loop, sock: socket.socket,
                     proxied: bool = False) -> tls_server.TLSServer:
        """Serves on ``sock``; ``proxied``: a proxy's port, each connection's decrypted
        stream starting with a PROXY v2 header."""
        if proxied:
            srv = self.tls.serve(sock, functools.partial(self.proxied_factory, self), True)
        else:
            srv = self.tls.serve(sock)
        self.addresses.append(sock.getsockname()[:2])
        return srv

    def stage(self, cfg) -> "StagedPair | Exception":
        """The key and certificate read for :meth:`reload` (in a thread), or why not."""
        try:
            return self.service.stage(cfg)
        except RELOAD_ERRORS as e:
            return e

    def reload(self, cfg, staged: "StagedPair | Exception | None" = None) -> None:
        """Reads the key and certificate again (the files may have been replaced under the same
        names; ``staged``: as :meth:`stage` read them); on failure the current ones stay and
        the error is logged. The caps on handshakes in progress follow the configuration's."""
        tls = self.tls
        tls.max_handshakes = cfg.tcp_max_connections
        tls.max_handshakes_per_client = cfg.tcp_max_connections_per_client
        tls.idle_timeout = cfg.tcp_idle_timeout
        service = self.service
        old_kind, old_digest = service.kind, service.digest
        try:
            if isinstance(staged, Exception):
                raise staged
            kept = service.reload(cfg, staged)
        except RELOAD_ERRORS as e:
            self.counts["reload_failed"] += 1
            log.error("%s: keeping the current TLS settings, cannot load %s with %s (or "
                      "the ticket keys): %s", self.label, cfg.tls_service_pem,
                      cfg.tls_service_key, e)
            return
        tls.context = service.context
        if not kept and not cfg.tls_session_ticket_keys:
            log.warning("%s: the new key is of another kind (%s, was %s): a new TLS context, "
                        "so sessions made before the reload do not resume%s", self.label,
                        service.kind or "unknown", old_kind or "unknown",
                        ", and until a restart the workers do not share session tickets"
                        if cfg.workers > 1 else "")
        self.counts["reloads"] += 1
        what = "unchanged" if service.digest == old_digest else "loaded for new connections"
        reloads.after_swap(lambda: log.info("%s: certificate %s %s", self.label,
                                            cfg.tls_service_pem, what))

    def stats(self) -> dict[str, Any]:
        return dict(self.counts)


class TLSConnection(TCPConnection):
    """A DNS-over-TLS client: the TCP connection over the decrypted stream. The answers the
    framer sends together (those of one turn of the loop) go as one write: one TLS record
    and one send, rather than a record each."""

    label = "tls"
    pads = True

    def __init__(self, listener: TLSListener) -> None:
        TCPConnection.__init__(self, listener.server)

    def _write(self, pieces: list[bytes]) -> None:
        self.transport.write(b"".join(pieces))


class ProxiedTLSConnection(ProxiedStream, TLSConnection):
    """DNS over TLS from a proxy (``proxy-protocol-port``): the decrypted stream starts with
    the PROXY v2 header naming the client (``ProxiedStream``), then the frames."""

    def __init__(self, listener: TLSListener) -> None:
        TLSConnection.__init__(self, listener)
        # (the transport asks these of the connection made at its first record, once)
        self.get_buffer = self._get_buffer
        self.buffer_updated = self._buffer_updated

    def _get_buffer(self, n: int) -> memoryview:
        if self.proxy_head is not None:
            return self.proxy_head.buffer()
        return self.framer.get_buffer(n)

    def _buffer_updated(self, n: int) -> None:
        if self.proxy_head is not None:
            self._header_read(self.proxy_head.received, n)
        else:
            self.framer.buffer_updated(n)

    def _named(self, peer, rest: bytes) -> None:
        if self._admitted(self.transport, peer):
            self.framer.who = self.who
            self._frames(rest)


def bind_stream(host: str, port: int, reuseport: bool, options: tuple = ()) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = bind_socket(family, socket.SOCK_STREAM, host, port, reuseport, options)
    except OSError as e:
        raise OSError(e.errno, f"TCP {address_text(host, port)}: {e.strerror}") from None
    sock.listen(1024)
    return sock


async def start_encrypted(server, loop, reuseport: bool) -> None:
    """Binds and starts the configured DNS-over-TLS and DNS-over-HTTP(S) listeners of
    ``server`` (none when nothing is configured)."""
    cfg = server.cfg
    services = server.tls_services
    plans: list[tuple[Any, tuple]] = []
    if cfg.tls_listen:
        plans.append((TLSListener(server, "tls", DOT_ALPN, TLSConnection, services.get("tls"),
                                  proxied_factory=ProxiedTLSConnection), cfg.tls_listen))
    if cfg.https_listen:
        plans.append((TLSListener(server, "https", DOH_ALPN,
                                  lambda listener: doh_listener.HTTPConnection(server, listener),
                                  services.get("https"), guard=True,
                                  proxied_factory=lambda listener:
                                  doh_listener.ProxiedHTTPConnection(server, listener)),
                      cfg.https_listen))
    if cfg.http_listen:
        plans.append((doh_listener.PlainListener(server), cfg.http_listen))
    for listener, addresses in plans:
        for host, port in addresses:
            sock = bind_stream(host, port, reuseport, listen_options(cfg))
            proxied = port in cfg.proxy_protocol_port
            server.tcp_servers.append(await listener.listen(loop, sock, proxied))
            log.info("serving DNS over %s on %s port %d%s", listener.label.upper(), host,
                     sock.getsockname()[1],
                     " (PROXY v2 from the proxies in front)" if proxied else "")
        server.encrypted.append(listener)
