"""One question asked of dig's servers: the servers (``@SERVER``, else resolv.conf's), the
query built from the options, one try over UDP, TCP, TLS or HTTPS, and the tries and
servers in turn with the lost tries said as dig says them."""
from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
import time
from dataclasses import replace
from typing import NamedTuple

from resolver.tools.dig_options import EXIT_NO_ANSWER, EXIT_OK, Options, ecs
from resolver.tools.dig_output import CO_FLAG, Z_FLAG, cookie_of, error_line, render, \
    tty_default
from resolver.tools.dig_wire import BadPacket, hex_dump, read_reply

# ---- the servers -----------------------------------------------------------------------------
def server_addresses(o: Options) -> list[tuple[str, str]]:
    """(address, name as given) of the servers to try, in order, of the family -4/-6 allow."""
    if o.server is not None:
        out: list[tuple[str, str]] = []
        for server in o.servers or (o.server,):
            try:
                infos = socket.getaddrinfo(server, None, o.family, socket.SOCK_DGRAM)
            except OSError as e:
                raise LookupError(f"couldn't get address for '{server}': not found") from e
            out += dict.fromkeys((i[4][0], server) for i in infos)
        return out
    out = [(n, n) for n in o.resolv_conf.nameservers
           if not o.family or o.family == (socket.AF_INET6 if ":" in n else socket.AF_INET)]
    if not out:          # none of -4's or -6's family: its loopback address, as dig
        loopback = "::1" if o.family == socket.AF_INET6 else "127.0.0.1"
        out = [(loopback, loopback)]
    return out


# ---- one look-up -----------------------------------------------------------------------------
def make_query(o: Options):
    import dns.edns
    import dns.flags
    import dns.message
    import dns.rdataclass
    import dns.rdatatype

    name = o.name if o.name is not None else "."
    if not name.isascii() and not tty_default(o.idnin):
        # as dig without +idnin (off unless on a terminal): the name's UTF-8 bytes as they
        # are, not its IDNA form
        name = dns.name.Name([label.encode() for label in name.rstrip(".").split(".")]
                             + [b""])
    rdtype = o.rdtype or ("NS" if o.name is None else "A")
    q = dns.message.make_query(name, dns.rdatatype.from_text(rdtype),
                               dns.rdataclass.from_text(o.rdclass or "IN"),
                               use_edns=o.edns_version if o.edns else False,
                               payload=o.bufsize,
                               want_dnssec=o.dnssec and o.edns)
    q.flags &= ~dns.flags.RD
    if o.rec and rdtype.upper() not in ("AXFR", "IXFR"):     # as dig: a transfer without
        q.flags |= dns.flags.RD
    if o.cd:
        q.flags |= dns.flags.CD
    if o.ad and rdtype.upper() != "IXFR":     # as dig: an IXFR without AD
        q.flags |= dns.flags.AD
    for on, bit in ((o.aa, dns.flags.AA), (o.ra, dns.flags.RA), (o.tc, dns.flags.TC),
                    (o.z, Z_FLAG)):
        if on:
            q.flags |= bit
    q.set_opcode(o.opcode)
    if o.qid is not None:
        q.id = o.qid
    if o.header_only:
        q.question = []
    if o.ixfr_serial is not None and rdtype.upper() == "IXFR":
        # as dig: the serial asked from, in an SOA of the authority section
        import dns.rrset
        q.authority.append(dns.rrset.from_text(q.question[0].name, 0, "IN", "SOA",
                                               f". . {o.ixfr_serial} 0 0 0 0"))
    options = []
    if o.nsid:
        options.append(dns.edns.GenericOption(dns.edns.OptionType.NSID, b""))
    if o.subnet is not None:
        options.append(ecs(o.subnet))
    if o.cookie:
        options.append(dns.edns.GenericOption(dns.edns.OptionType.COOKIE,
                                              o.cookie_value or os.urandom(8)))
    if o.expire:
        options.append(dns.edns.GenericOption(dns.edns.OptionType.EXPIRE, b""))
    if o.keepalive:
        options.append(dns.edns.GenericOption(dns.edns.OptionType.KEEPALIVE, b""))
    options += [dns.edns.GenericOption(code, data) for code, data in o.ednsopts]
    flags = o.ednsflags | (CO_FLAG if o.coflag else 0)
    if (options or flags or o.padding) and o.edns:
        q.use_edns(o.edns_version, q.ednsflags | flags, o.bufsize, options=options,
                   pad=o.padding)
    if o.tsig_key is not None:            # signed as it is written (dig's -y, -k)
        q.use_tsig(o.tsig_key)
    return q


def _ssl_context(o: Options, alpn: list[str] | None):
    import ssl
    if o.tls_ca is None:                  # as dig: no +tls-ca, no verification
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=o.tls_ca or None)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def comment(o: Options, text: str) -> None:
    """One of dig's comments on the look-up (``;; Truncated, retrying in TCP mode.``):
    printed with the look-up's +comments only (+short, +trace and +nssearch turn it off),
    never with +yaml."""
    if o.show["comments"] and not o.yaml:
        print(f";; {text}", flush=True)


def ask(q, o: Options, addr: str, name: str, port: int, sent=None, follow_tc: bool = True):
    """The reply of one server, over the transport asked; raises on no reply. ``sent``,
    when given, is called with the protocol each time the query goes (over TCP once
    connected), where dig prints the query for +qr. A truncated reply over UDP is asked
    again of the same server over TCP, unless not ``follow_tc`` (then it is returned)."""
    import dns.flags
    import dns.query

    sent = sent or (lambda proto: None)
    if o.transport == "udp":
        # connected, so that a port nobody listens on is "connection refused" (ICMP), as
        # dig says, rather than a timeout
        with socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET,
                           socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            try:
                if o.source is not None:
                    sock.bind(o.source)
                sock.connect((addr, port))
            except OSError as e:          # no packet went: dig's "UDP setup ... failed"
                raise UdpSetupFailed(str(e)) from e
            sent("UDP")
            r = _udp(q, o, sock, (addr, port))
        if r.flags & dns.flags.TC and not o.ignore_tc and follow_tc:
            comment(o, "Truncated, retrying in TCP mode.")
            return _tcp(q, o, addr, port, sent), "TCP"
        return r, "UDP"
    if o.transport == "tcp":
        return _tcp(q, o, addr, port, sent), "TCP"
    hostname = o.tls_hostname or (name if o.server is not None else addr)
    if o.transport == "tls":
        return _tls(q, o, addr, port, hostname if o.tls_ca is not None else None, sent), "TLS"
    proto = "HTTPS" if o.transport == "https" else "HTTP"
    sent(proto)
    return doh(q, o, addr, hostname, port), proto + ("-GET" if o.https_get else "")


def _udp(q, o: Options, sock: socket.socket, where: tuple[str, int]):
    """``q``'s reply on the connected UDP ``sock`` within ``o.timeout``, read as dig reads
    it (:func:`_taken`); what is not the reply is said and the wait goes on for the
    right one, as in dig."""
    import select
    import time

    import dns.exception
    import dns.query

    expiration = time.time() + o.timeout         # dnspython's clock for expirations
    dns.query.send_udp(sock, q, where, expiration)
    while True:
        left = expiration - time.time()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            raise dns.exception.Timeout
        r = _taken(q, sock.recv(65535))
        if r is not None:
            return r


def _taken(q, wire: bytes):
    """The reply ``wire`` to ``q`` read as dig reads it (:func:`read_reply`), what dig says
    of it said: None (said) for what is not the reply, a datagram shorter than a header,
    a reply with another ID (a late one to an earlier try, a stray) or to another
    question. One without QR set is said and taken, one cut short (malformed) is said
    and taken as far as it goes; one that cannot be read at all is :class:`BadPacket`."""
    import dns.flags
    if len(wire) < 12:
        print(";; Warning: short (< header size) message received", flush=True)
        return None
    rid = int.from_bytes(wire[:2], "big")
    if rid != q.id:
        print(f";; Warning: ID mismatch: expected ID {q.id}, got {rid}", flush=True)
        return None
    r, extra, malformed = read_reply(wire)
    r.extra_bytes = extra
    if malformed:
        print(";; Warning: Message parser reports malformed message packet.", flush=True)
    if q.had_tsig:
        from resolver.tools.dig_tsig import check
        check(q, r, wire)
    if not r.flags & dns.flags.QR:
        # as dig: said, and shown as it came if it answers the question otherwise
        print(";; Warning: query response not set", flush=True)
    other = _other_question(q, r)
    if other is not None:
        print(f";; ;; Question section mismatch: got {other}", flush=True)
        return None
    return r


def _stream(q, o: Options, sock) -> object:
    """``q`` over the connected TCP or TLS ``sock`` (not blocking), its reply read as dig
    reads it (:func:`_taken`); one that is not the reply is a failed try."""
    import dns.query
    expiration = time.time() + o.timeout
    dns.query.send_tcp(sock, q, expiration)
    size = int.from_bytes(read_exactly(sock, 2, expiration), "big")
    r = _taken(q, read_exactly(sock, size, expiration))
    if r is None:
        raise dns.query.BadResponse
    return r


def read_exactly(sock, size: int, expiration: float) -> bytes:
    """``size`` octets read from the stream ``sock`` (not blocking) by ``expiration``."""
    import select
    import ssl

    import dns.exception
    out = b""
    while len(out) < size:
        left = expiration - time.time()
        if left <= 0:
            raise dns.exception.Timeout
        try:
            chunk = sock.recv(size - len(out))
        except (BlockingIOError, ssl.SSLWantReadError):
            select.select([sock], [], [], left)
            continue
        if not chunk:
            raise EOFError
        out += chunk
    return out


def _other_question(q, r) -> str | None:
    """The question of the reply ``r`` that is not ``q``'s, as dig says it
    (``NAME/TYPE/CLASS``); None when it asks ``q``'s (or none at all, as dig takes it)."""
    import dns.rdataclass
    import dns.rdatatype
    if not q.question:
        return None
    asked = q.question[0]
    for rrset in r.question:
        if (rrset.name, rrset.rdtype, rrset.rdclass) != (asked.name, asked.rdtype,
                                                         asked.rdclass):
            name = rrset.name.to_text(omit_final_dot=True) or "."
            return (f"{name}/{dns.rdatatype.to_text(rrset.rdtype)}/"
                    f"{dns.rdataclass.to_text(rrset.rdclass)}")
    return None


class ConnectFailed(OSError):
    """A TCP connection that could not be made (its reason the exception it comes from)."""


class UdpSetupFailed(ConnectFailed):
    """A UDP socket that could not be connected to the server (no route to it): dig says
    it as a TCP connection that failed, in words of its own."""


def _tcp(q, o: Options, addr: str, port: int, sent):
    """``q`` over TCP: connected first (:class:`ConnectFailed` when it cannot be), then
    ``sent("TCP")``, then asked."""
    with connected(o, addr, port) as sock:
        sock.setblocking(False)
        sent("TCP")
        return _stream(q, o, sock)


def connected(o: Options, addr: str, port: int) -> socket.socket:
    """A TCP socket connected to ``addr``, within ``o.timeout``; :class:`ConnectFailed`
    when it cannot be (dig's "Connection to ... failed")."""
    sock = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET,
                         socket.SOCK_STREAM)
    sock.settimeout(o.timeout)
    try:
        if o.source is not None:
            sock.bind(o.source)
        sock.connect((addr, port))
    except OSError as e:
        sock.close()
        raise ConnectFailed(str(e)) from e
    return sock


def _tls(q, o: Options, addr: str, port: int, hostname: str | None, sent):
    """``q`` over TLS (DoT): connected first (:class:`ConnectFailed` when it cannot be),
    then the handshake (the certificate checked against ``hostname`` with +tls-ca), then
    ``sent("TLS")``, then asked."""
    with connected(o, addr, port) as raw:
        with _ssl_context(o, ["dot"]).wrap_socket(raw, server_hostname=hostname,
                                                  do_handshake_on_connect=False) as sock:
            sock.do_handshake()
            sock.setblocking(False)
            sent("TLS")
            return _stream(q, o, sock)


class _Pinned:
    """A resolver for corenet.https's client that gives the server's address for the
    certificate's name (the URL names the host the certificate is checked against)."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def resolve(self, host: str, rdtype: str):
        import types
        if (rdtype == "AAAA") != (":" in self.address):
            raise LookupError(f"no {rdtype}")
        rrset = [types.SimpleNamespace(address=self.address)]
        return types.SimpleNamespace(rrset=_TTL(rrset))


class _TTL(list):
    ttl = 0


def doh(q, o: Options, addr: str, hostname: str, port: int):
    """RFC 8484 over corenet.https's client: POST, or GET with ``?dns=``; over TLS, or
    over plain HTTP for +http-plain."""
    import base64

    from corenet.https import Client
    from corenet.https.errors import ConnectError, ConnectTimeout, TLSError

    host = f"[{hostname}]" if ":" in hostname else hostname
    scheme = "http" if o.transport == "http" else "https"
    url = f"{scheme}://{host}:{port}{o.https_path}"
    verify = False if o.tls_ca is None else (o.tls_ca or True)
    wire = q.to_wire()
    headers = {"accept": "application/dns-message"}
    with Client(verify=verify, resolver=_Pinned(addr), trust_env=False,
                    timeout=o.timeout) as client:
        try:
            if o.https_get:
                b64 = base64.urlsafe_b64encode(wire).rstrip(b"=").decode()
                r = client.get(url, params={"dns": b64}, headers=headers)
            else:
                r = client.post(url, content=wire, headers=dict(
                    headers, **{"content-type": "application/dns-message"}))
        except (ConnectError, ConnectTimeout) as e:
            if isinstance(e, TLSError):   # the handshake: not the connection
                raise
            raise ConnectFailed(str(e)) from _os_error_in(e)
        if r.status_code != 200:
            raise OSError(f"HTTP status {r.status_code}")
        body = r.content
    msg = _taken(q, body)
    if msg is None:
        raise OSError("the reply does not match the query")
    return msg


def _os_error_in(e: BaseException) -> BaseException:
    """The OSError ``e`` comes from (what a connection that failed says), else ``e``."""
    seen, cur = 0, e
    while cur is not None and seen < 8:
        if isinstance(cur, OSError):
            return cur
        cur, seen = cur.__cause__ or cur.__context__, seen + 1
    return e


def network_errors() -> tuple[type[BaseException], ...]:
    """What a server (or the way to it) can make a try fail with; anything else is a bug,
    reported as dig's internal error."""
    import dns.exception

    return (OSError, EOFError, TimeoutError, dns.exception.DNSException,
            *_client_errors("RequestError"))


def _client_errors(*names: str) -> tuple[type[BaseException], ...]:
    """The HTTPS client's exception classes ``names``; none when no DoH exchange has loaded
    the client (then none of them was raised, and a query over UDP, TCP or TLS does not
    pay for importing it)."""
    errors = sys.modules.get("corenet.https.errors")
    return () if errors is None else tuple(getattr(errors, n) for n in names)


#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, which Python reports in words of its own
_HOSTNAME_MISMATCH = 62


def _certificate_refused(e: BaseException) -> str | None:
    """OpenSSL's reason when ``e`` (or what caused it) is a server certificate that failed
    verification, as dig words it; else None."""
    import ssl

    seen = 0
    while e is not None and seen < 8:
        if isinstance(e, ssl.SSLCertVerificationError):
            if e.verify_code == _HOSTNAME_MISMATCH:
                return "hostname mismatch"
            return e.verify_message or "certificate verify failed"
        e, seen = e.__cause__ or e.__context__, seen + 1
    return None


def error_text(e: BaseException) -> str:
    import dns.exception

    if isinstance(e, ConnectFailed) and e.__cause__ is not None:
        e = e.__cause__
    if isinstance(e, (dns.exception.Timeout, TimeoutError, asyncio.TimeoutError,
                      *_client_errors("TimeoutException"))):
        return "timed out"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ConnectionResetError):
        return "connection reset"
    if isinstance(e, EOFError):
        return "end of file"
    if isinstance(e, OSError) and e.errno in _ERRNO_TEXT:
        return _ERRNO_TEXT[e.errno]
    text = str(e) or type(e).__name__
    return text.splitlines()[0]


#: what dig says of a socket's errors (isc_result_totext of the result it maps them to)
_ERRNO_TEXT = {errno.ENETUNREACH: "network unreachable", errno.EHOSTUNREACH: "host unreachable",
               errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EADDRNOTAVAIL: "address not available",
               errno.ECONNREFUSED: "connection refused", errno.ECONNRESET: "connection reset",
               errno.ETIMEDOUT: "timed out"}

#: the extended rcode of a reply that wants the server's cookie (RFC 7873)
BADCOOKIE = 23
#: the extended rcode of a reply to an EDNS version the server does not take (RFC 6891)
BADVERS = 16


def _ask_past_badcookie(q, o: Options, addr: str, name: str, port: int, banner: list[str],
                        sent=None, follow_tc: bool = True):
    """:func:`ask`, then, as dig's +badcookie, a BADCOOKIE reply over UDP that echoes the
    client cookie asked again with the server cookie it gives: over UDP, and a second time
    over TCP; as dig's +ednsnegotiation, a BADVERS reply asked again (said) with the
    lower EDNS version it gives. +showbadcookie prints that reply first, after
    ``banner[0]`` (the command lines, then emptied: dig prints them before the first reply
    it shows)."""
    t0 = time.monotonic()
    r, proto = ask(q, o, addr, name, port, sent, follow_tc)
    for retry in range(2):
        ours = cookie_of(q)
        given = cookie_of(r)
        if not (o.badcookie and proto == "UDP" and r.rcode() == BADCOOKIE and ours
                and given and given[:8] == ours[:8]):
            break
        if o.showbadcookie and not o.short:
            size = len(getattr(r, "wire", None) or r.to_wire())
            sys.stdout.write(banner[0] + render(r, o, elapsed=time.monotonic() - t0,
                                                server=f"{addr}#{port}({name}) ({proto})",
                                                size=size, sent_cookie=ours))
            banner[0] = ""
        comment(o, f"BADCOOKIE, retrying{' in TCP mode' if retry else ''}.")
        _set_cookie(q, given)
        t0 = time.monotonic()
        r, proto = ask(q, replace(o, transport="tcp") if retry else o, addr, name, port,
                       sent, follow_tc)
    for _ in range(8):   # the version goes down each time
        if not (o.ednsnegotiation and r.rcode() == BADVERS and 0 <= r.edns < q.edns):
            break
        # as dig: asked again, with a new ID, with the version the server gives
        comment(o, f"BADVERS, retrying with EDNS version {r.edns}.")
        q.use_edns(r.edns, q.ednsflags, q.payload, options=q.options, pad=q.pad)
        if o.qid is None:
            q.set_id(int.from_bytes(os.urandom(2), "big"))     # the TSIG's too
        r, proto = ask(q, o, addr, name, port, sent, follow_tc)
    return r, proto


def _set_cookie(q, cookie: bytes) -> None:
    """``q``'s COOKIE option replaced by ``cookie`` (client and server cookie)."""
    import dns.edns
    options = [opt if int(opt.otype) != int(dns.edns.OptionType.COOKIE)
               else dns.edns.GenericOption(dns.edns.OptionType.COOKIE, cookie)
               for opt in q.options]
    q.use_edns(q.edns, q.ednsflags, q.payload, options=options, pad=q.pad)


def say_lost(o: Options, e: BaseException, addr: str, port: int) -> None:
    """A lost try said as dig says it: a connection that failed ("Connection to ...
    failed", over UDP "UDP setup with ... failed"), else a communications error; nothing
    with +yaml."""
    if o.yaml:
        return
    if isinstance(e, ConnectFailed):
        what = "UDP setup with" if isinstance(e, UdpSetupFailed) else "Connection to"
        print(f";; {what} {addr}#{port}({addr}) for {o.name or '.'} failed: "
              f"{error_text(e)}.", flush=True)
    else:
        print(f";; communications error to {addr}#{port}: {error_text(e)}", flush=True)


class Got(NamedTuple):
    """A reply :func:`exchange` got: the message, where it came from as dig's SERVER line
    says it (``ADDR#PORT(NAME) (PROTOCOL)``), the seconds its try took, the server's
    address and name, the protocol."""
    reply: object
    where: str
    elapsed: float
    address: str
    name: str
    proto: str


def exchange(q, o: Options, servers, port: int, banner: list[str], sent=None,
             tries: list[int] | None = None):
    """``q`` asked of ``servers`` in turn with dig's tries, the lost tries said as dig says
    them: a :class:`Got`, None when no server replied, or an exit status when dig has
    said its error itself (a certificate that failed verification, a TCP connection
    that failed).

    As dig, the tries are the look-up's, not each server's (``tries``: [the tries left],
    kept between calls, as +trace's steps share them; else ``o.tries``): a lost try over
    UDP is tried again at the same server while tries are left, then the next server has
    the tries left (one); over TCP (TLS, HTTPS) a lost try starts the look-up again from
    the first server. A truncated reply over UDP starts it again from the first server
    too, over TCP from then on. A connection that fails is said ("Connection to ...
    failed", over UDP "UDP setup with ... failed", no route to the server) with "no
    servers could be reached" (dig's error, with +yaml a DIG_ERROR entry) each time no
    server is left to try next, the command lines left out, and starts the look-up
    again while tries are left; the name said is ``o.name``, the name as given (dig's,
    whatever the search list or +trace asks).
    ``banner``: [the command lines not printed yet] (see :func:`_ask_past_badcookie`);
    ``sent(address, protocol)``, when given, is called each time the query goes (as dig
    prints it for +qr: on every try, of every server)."""
    import dns.flags
    left = tries if tries is not None else [o.tries]
    i, tcp = 0, proto_of(o) != "udp"
    asked = o
    while i < len(servers):
        addr, name = servers[i]
        t0 = time.monotonic()
        try:
            r, proto = _ask_past_badcookie(
                q, asked, addr, name, port, banner,
                None if sent is None else lambda proto, a=addr: sent(a, proto),
                follow_tc=False)
        except BadPacket as e:           # as dig: said, and the look-up over
            if not o.yaml:
                print(f";; Got bad packet: {e.why}\n{hex_dump(e.wire)}", end="", flush=True)
            return EXIT_OK
        except network_errors() as e:    # a try lost: dig says so and tries again
            refused = _certificate_refused(e)
            if refused is not None:      # dig neither tries again nor goes on
                print(f";; TLS peer certificate verification for {addr}#{port} "
                      f"failed: {refused}", flush=True)
                return EXIT_NO_ANSWER
            connect = isinstance(e, ConnectFailed)
            say_lost(o, e, addr, port)
            if left[0] > 1:
                left[0] -= 1
                if connect:              # dig's error, though it tries again
                    sys.stdout.write(error_line(o, "no servers could be reached"))
                    sys.stdout.flush()
                if connect or tcp:
                    i = 0                # dig starts the look-up again
                continue
            if i + 1 < len(servers):
                i += 1
                continue
            if connect:                  # dig's error, without the command lines
                sys.stdout.write(error_line(o, "no servers could be reached"))
                sys.stdout.flush()
                return EXIT_NO_ANSWER
            return None
        if proto == "UDP" and r.flags & dns.flags.TC and not o.ignore_tc:
            # dig asks again from the first server, over TCP from then on (the tries left)
            comment(o, "Truncated, retrying in TCP mode.")
            i, tcp, asked = 0, True, replace(o, transport="tcp")
            continue
        if r.rcode() == 2 and not o.fail:
            if i + 1 < len(servers):
                comment(o, f"Got SERVFAIL reply from {addr}, trying next server")
                i += 1
                continue
            comment(o, f"Got SERVFAIL reply from {addr}")
        return Got(r, f"{addr}#{port}({name}) ({proto})", time.monotonic() - t0, addr, name,
                   proto)
    return None


def proto_of(o: Options) -> str:
    """The transport a look-up's tries go over first: ``udp``, or ``tcp`` (TCP, TLS,
    HTTPS)."""
    return "udp" if o.transport == "udp" else "tcp"
