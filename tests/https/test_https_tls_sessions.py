"""TLS sessions taken and offered by reference (corenet.tls.session_of / resume), against the
tests' nginx: what the HTTPS client's resumption rests on."""
from __future__ import annotations

import gc
import socket
import ssl

import pytest

import corenet._tlssession as tlssession
from corenet.tls import TLSSession, resume, session_of


def handshake(ctx: ssl.SSLContext, port: int, session=None, offered=None,
              close_notify: bool = True) -> ssl.SSLObject:
    """A blocking TLS handshake over MemoryBIOs with nginx on `port`, `session` offered
    first (whether `resume` took it is appended to `offered`); then one GET read whole, so
    that TLS 1.3 tickets have come, and our close_notify, as corenet.https sends it."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    so = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    if session is not None:
        took = resume(so, session)
        if offered is not None:
            offered.append(took)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for _ in range(20):
            try:
                so.do_handshake()
                break
            except ssl.SSLWantReadError:
                s.sendall(outgoing.read())
                data = s.recv(65536)
                assert data, "nginx closed during the handshake"
                incoming.write(data)
        else:
            raise AssertionError("the handshake did not finish in 20 flights")
        so.write(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        s.sendall(outgoing.read())
        got = b""
        for _ in range(100):
            data = s.recv(65536)
            if not data:
                break
            incoming.write(data)
            try:
                got += so.read(65536)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                pass
        assert got.startswith(b"HTTP/1.1 200")
        if close_notify:
            try:
                so.unwrap()
            except ssl.SSLError:
                pass
            s.sendall(outgoing.read())
    return so


def test_sessions_are_shared_with_openssl_on_this_build():
    """The direct route is what every supported build takes (CPython's own `_ssl`, OpenSSL
    1.1.1 or later): a build that fell back to the copying getter fails here."""
    assert tlssession.DIRECT, "corenet._tlssession fell back to CPython's copying getter"


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_a_session_taken_by_reference_resumes(env, version):
    ctx = ssl.create_default_context(cafile=env.ca)
    ctx.maximum_version = getattr(ssl.TLSVersion, version.replace(".", "_"))
    first = handshake(ctx, env.port)
    s = session_of(first)
    assert isinstance(s, TLSSession) and s.context is ctx
    del first
    gc.collect()  # the session outlives the connection it came from
    offered = []
    second = handshake(ctx, env.port, s, offered)
    assert offered == [True]
    assert second.session_reused and second.version() == version
    third = handshake(ctx, env.port, session_of(second), offered)
    assert offered == [True, True] and third.session_reused


def test_a_session_of_a_context_that_did_not_verify_is_not_offered_to_one_that_does(env):
    """A resumed handshake carries no certificate: the client trusts the first connection's
    check. A session made where checking was off must not let a verifying context reach an
    expired certificate's server."""
    lax = ssl.create_default_context(cafile=env.ca)
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    strict = ssl.create_default_context(cafile=env.ca)
    taken = session_of(handshake(lax, env.expired_port))
    assert isinstance(taken, TLSSession)
    assert handshake(lax, env.expired_port, taken).session_reused  # the server would take it
    offered = []
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        handshake(strict, env.expired_port, taken, offered)
    assert offered == [False]


def test_no_session_before_a_handshake_and_none_offered_after_one(env):
    ctx = ssl.create_default_context(cafile=env.ca)
    fresh = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="localhost")
    assert session_of(fresh) is None  # nothing resumable yet
    done = handshake(ctx, env.port)
    s = session_of(done)
    assert s is not None
    # Too late for a connection whose handshake is over: refused, its own left as it was.
    assert resume(done, s) is False
    assert not done.session_reused
    again = session_of(done)
    assert isinstance(again, TLSSession)
    # A server's connection is never offered one.
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    assert resume(server.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True),
                  s) is False


def test_a_connection_dropped_without_close_notify_spoils_its_session(env):
    """The session is OpenSSL's own, shared: when a connection is freed without having sent
    close_notify, OpenSSL marks its session not resumable, and a later connection offered
    it makes a full handshake instead (what OpenSSL means; a copy would not have heard)."""
    ctx = ssl.create_default_context(cafile=env.ca)
    first = handshake(ctx, env.port, close_notify=False)
    s = session_of(first)
    assert isinstance(s, TLSSession)
    del first
    gc.collect()
    offered = []
    second = handshake(ctx, env.port, s, offered)
    assert offered == [True] and not second.session_reused
    assert handshake(ctx, env.port, session_of(second)).session_reused


def test_without_the_direct_route_cpythons_sessions_are_used(env, monkeypatch):
    """Where the layout check fails, the same two calls go through CPython's getter and
    setter, and resumption still works (only slower)."""
    monkeypatch.setattr(tlssession, "DIRECT", False)
    ctx = ssl.create_default_context(cafile=env.ca)
    s = session_of(handshake(ctx, env.port))
    assert isinstance(s, ssl.SSLSession)
    offered = []
    assert handshake(ctx, env.port, s, offered).session_reused and offered == [True]
    other = ssl.create_default_context(cafile=env.ca)
    assert resume(other.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="localhost"),
                  s) is False
