"""DNS over TLS (RFC 7858) served by corenet-resolver, asked by Knot's kdig, BIND's dig and
Python's ssl module: certificate and ALPN, TLS versions, session resumption, pipelining out
of order, the ACL, the connection caps, the handshake and idle timeouts, a certificate
reload that keeps open connections, garbage, and the counters."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import warnings
from dataclasses import replace

import dns.message
import dns.rcode
import pytest

from ci_policy import installed
from daemon_proc import Daemon, frame, read_frame
from ports import free_port
from tls_certs import CA, SERVER_NAME


def tool(name: str) -> str:
    return installed(name, {"kdig": "knot-dnsutils", "dig": "bind9-dnsutils"}[name])


def start_dot(workdir, lab, *extra: str, ready: str = "ready", **settings) -> Daemon:
    """The daemon with a DNS-over-TLS listener on a free port and a fresh CA (``d.ca``),
    once its log says ``ready`` (with workers, the parent's "ready: N workers")."""
    ca = CA(workdir / "pki")
    pem, key = ca.issue("server")
    port = free_port()
    lines = [f'tls-listen = ["127.0.0.1:{port}"]', f'tls-service-pem = "{pem}"',
             f'tls-service-key = "{key}"']
    lines += [f"{k.replace('_', '-')} = {v}" for k, v in settings.items()]
    conf = workdir / "tls.toml"
    conf.write_text("\n".join(lines) + "\n")
    d = Daemon(workdir, lab, "--config", str(conf), *extra).start(ready=ready)
    d.ca, d.tls_port, d.pem, d.key = ca, port, pem, key
    return d


@pytest.fixture(scope="module")
def daemon(lab, tmp_path_factory):
    d = start_dot(tmp_path_factory.mktemp("dot"), lab)
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


def client_context(d, alpn=("dot",), max_version=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(d.ca.pem))
    ctx.set_alpn_protocols(list(alpn))
    if max_version is not None:
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = max_version
    return ctx


def dot(d, ctx=None, session=None, timeout=5.0) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", d.tls_port), timeout=timeout)
    return (ctx or client_context(d)).wrap_socket(raw, server_hostname=SERVER_NAME,
                                                  session=session)


def ask_dot(s: ssl.SSLSocket, name: str, rdtype: str = "A", qid: int | None = None):
    q = dns.message.make_query(name, rdtype, id=qid)
    s.sendall(frame(q.to_wire()))
    r = dns.message.from_wire(read_frame(s))
    assert r.id == q.id
    return r


def test_kdig_over_tls_verifies_the_certificate_and_gets_the_answer(daemon):
    out = subprocess.run([tool("kdig"), "@127.0.0.1", "-p", str(daemon.tls_port), "+tls",
                          f"+tls-ca={daemon.ca.pem}", f"+tls-hostname={SERVER_NAME}",
                          "+short", "+timeout=5", "+retry=0", "www.example.com", "A"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split()) == ["192.0.2.1", "192.0.2.11"]


def test_kdig_refuses_a_certificate_from_another_ca(daemon, tmp_path):
    other = CA(tmp_path, "another CA")
    out = subprocess.run([tool("kdig"), "@127.0.0.1", "-p", str(daemon.tls_port), "+tls",
                          f"+tls-ca={other.pem}", f"+tls-hostname={SERVER_NAME}",
                          "+timeout=3", "+retry=0", "www.example.com", "A"],
                         capture_output=True, text=True, timeout=30)
    assert "192.0.2.1" not in out.stdout


def test_dig_over_tls(daemon):
    """BIND 9.18's dig: ``+tls``, checking the certificate against the test's CA."""
    out = subprocess.run([tool("dig"), "@127.0.0.1", "-p", str(daemon.tls_port), "+tls",
                          f"+tls-ca={daemon.ca.pem}", f"+tls-hostname={SERVER_NAME}", "+short", "+time=5", "+tries=1", "www.example.net", "A"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split() == ["198.51.100.1"]


def test_alpn_dot_tls13_preferred_and_tls12_accepted_but_not_older(daemon):
    with dot(daemon) as s:
        assert s.selected_alpn_protocol() == "dot"
        assert s.version() == "TLSv1.3"
        assert ask_dot(s, "www.example.com.").answer
    with dot(daemon, client_context(daemon, max_version=ssl.TLSVersion.TLSv1_2)) as s:
        assert s.version() == "TLSv1.2"
        assert ask_dot(s, "www.example.com.").answer
    with pytest.raises((ssl.SSLError, ConnectionError)), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # TLS 1.1 itself is
        ctx = client_context(daemon, max_version=ssl.TLSVersion.TLSv1_1)
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        dot(daemon, ctx).close()


def test_session_tickets_resume_the_session(daemon):
    ctx = client_context(daemon)
    with dot(daemon, ctx) as s:
        ask_dot(s, "www.example.com.")          # the TLS 1.3 tickets arrive with the data
        session = s.session
    assert session is not None and session.has_ticket
    before = daemon.stats()["tls"]["resumed"]
    with dot(daemon, ctx, session=session) as s:
        assert s.session_reused
        assert ask_dot(s, "www.example.com.").answer
    assert daemon.stats()["tls"]["resumed"] == before + 1


def test_pipelined_queries_answered_out_of_order(daemon):
    with dot(daemon) as s:
        ask_dot(s, "www.example.com.")
        slow = dns.message.make_query("h401.bulk.net.", "A")      # a miss: needs the lab
        fast = dns.message.make_query("www.example.com.", "A")    # a hit, answered in C
        s.sendall(frame(slow.to_wire()) + frame(fast.to_wire()))
        first = dns.message.from_wire(read_frame(s))
        second = dns.message.from_wire(read_frame(s))
    assert (first.id, second.id) == (fast.id, slow.id)
    assert second.answer[0][0].to_text() == "10.1.1.145"


def test_counted_as_tls_in_stats_and_metrics(daemon):
    with dot(daemon) as s:                  # the name cached first, whatever ran before
        ask_dot(s, "www.example.com.")
    before = daemon.stats()
    with dot(daemon) as s:
        ask_dot(s, "www.example.com.")
        ask_dot(s, "www.example.com.")
    after = daemon.stats()
    assert after["queries"].get("tls:0", 0) - before["queries"].get("tls:0", 0) == 2
    assert after["tls"]["handshakes"] == before["tls"]["handshakes"] + 1
    assert after["tcp"]["fast_hits"] >= before["tcp"]["fast_hits"] + 2   # the C hit path
    text = daemon.metrics()
    assert 'corenet_resolver_queries_total{transport="tls",rcode="NOERROR"}' in text
    assert 'corenet_resolver_tls_handshakes_total{listener="tls",outcome="done"}' in text


def test_handshake_that_never_completes_is_closed_after_the_timeout(daemon):
    before = daemon.stats()["tls"]["handshake_timeout"]
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", daemon.tls_port), timeout=15) as s:
        s.sendall(b"\x16\x03\x01")         # the start of a record header, then nothing
        assert s.recv(100) == b""          # closed by the daemon
    waited = time.monotonic() - t0
    assert 4.0 < waited < 10.0             # Limits.tls_handshake_timeout is 5 s
    assert daemon.stats()["tls"]["handshake_timeout"] == before + 1
    with dot(daemon) as s:
        assert ask_dot(s, "www.example.com.").answer


def read_to_end(s: socket.socket) -> None:
    """Reads until the peer closes (a timeout fails the test: it did not)."""
    s.settimeout(5)
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass


def test_garbage_before_and_after_the_handshake(daemon):
    before = daemon.stats()
    with socket.create_connection(("127.0.0.1", daemon.tls_port), timeout=5) as s:
        s.sendall(b"\xff" * 600)            # not a ClientHello: the handshake fails
        read_to_end(s)
    with dot(daemon) as s:                   # inside TLS, rubbish as DNS
        s.sendall(frame(b"\x00" * 5))       # too short for a query: dropped, counted
        s.sendall(frame(b"\x12\x34\x01\x00\x00\x02" + b"\x00" * 6))    # QDCOUNT 2
        r = read_frame(s)
        assert r is not None and r[:2] == b"\x12\x34" and r[3] & 0x0F == dns.rcode.FORMERR
    with dot(daemon) as s:                   # a forged TLS record after the handshake
        with socket.socket(fileno=os.dup(s.fileno())) as raw:
            raw.sendall(b"\x17\x03\x03\x00\x20" + os.urandom(32))
            read_to_end(raw)                 # the daemon ends the connection
    after = daemon.stats()
    assert after["tls"]["handshake_failed"] == before["tls"]["handshake_failed"] + 1
    assert after["tls"]["bad_records"] == before["tls"]["bad_records"] + 1
    assert after["dropped"].get("short", 0) == before["dropped"].get("short", 0) + 1
    assert daemon.alive()
    with dot(daemon) as s:
        assert ask_dot(s, "www.example.com.").answer
    assert daemon.ask("www.example.com.").answer


def test_reload_takes_a_new_certificate_for_new_connections_only(lab, tmp_path):
    d = start_dot(tmp_path, lab)
    try:
        old = dot(d)
        ask_dot(old, "www.example.com.")
        old_cert = old.getpeercert(binary_form=True)
        from resolver.daemon.control import ControlError, request
        assert request(d.control, {"cmd": "reload"})["ok"]        # the same files
        assert f"certificate {d.pem} unchanged" in d.log_text()
        assert "loaded for new connections" not in d.log_text()
        second = CA(tmp_path / "next", "the next CA")
        pem, key = second.issue("server")
        shutil.copy(pem, d.pem)
        shutil.copy(key, d.key)
        os.kill(d.pid, signal.SIGHUP)
        # (bounded; a busy machine has taken more than 10 s once: the log says what it did)
        deadline = time.monotonic() + 30
        while d.stats()["tls"]["reloads"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert d.stats()["tls"]["reloads"] == 2, (d.stats()["tls"], d.log_text()[-3000:])
        assert f"certificate {d.pem} loaded for new connections" in d.log_text()
        assert ask_dot(old, "www.example.net.").answer[0][0].to_text() == "198.51.100.1"
        assert old.getpeercert(binary_form=True) == old_cert
        old.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            dot(d)                            # the old CA no longer vouches for it
        ctx = ssl.create_default_context(cafile=str(second.pem))
        ctx.set_alpn_protocols(["dot"])
        with dot(d, ctx) as s:
            assert s.getpeercert(binary_form=True) != old_cert
            assert ask_dot(s, "www.example.com.").answer
        # A broken pair on reload keeps the current certificate.
        d.key.write_text("not a key\n")
        with pytest.raises(ControlError, match="tls-service-pem/tls-service-key"):
            request(d.control, {"cmd": "reload"})
        with dot(d, ctx) as s:
            assert ask_dot(s, "www.example.com.").answer
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_acl_caps_and_idle_timeout(lab, tmp_path):
    d = start_dot(tmp_path, lab, "--allow", "10.0.0.0/8", "--tcp-idle-timeout", "1",
                  "--tcp-max-connections-per-client", "2")
    try:
        # Two handshakes stalled by one client hold its share: a third is closed at once.
        stalled = [socket.create_connection(("127.0.0.1", d.tls_port)) for _ in range(2)]
        deadline = time.monotonic() + 5
        while d.stats()["tls"]["handshake_refused"] == 0 and time.monotonic() < deadline:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                dot(d).close()
        assert d.stats()["tls"]["handshake_refused"] >= 1
        for raw in stalled:
            raw.close()
        time.sleep(0.2)                         # their slots are free again
        with dot(d) as s:
            assert ask_dot(s, "www.example.com.").rcode() == dns.rcode.REFUSED
        # a asks (a DNS connection); b has asked nothing yet: it counts as a connection in
        # its handshake would, and together they are the client's share.
        a, b = dot(d), dot(d)
        a.sendall(frame(dns.message.make_query("www.example.com.", "A").to_wire()))
        assert read_frame(a) is not None
        refused = d.stats()["tls"]["handshake_refused"]
        with pytest.raises((ssl.SSLError, ConnectionError)):
            dot(d).close()                      # the third: closed at its accept
        assert d.stats()["tls"]["handshake_refused"] == refused + 1
        t0 = time.monotonic()
        for idle in (b, a):                     # idle for 1 s, asked or not: closed
            idle.settimeout(5)
            try:
                assert idle.recv(100) == b""
            except (ConnectionResetError, ssl.SSLError):
                pass
        assert time.monotonic() - t0 < 4
        a.close()
        b.close()
        stats = d.stats()
        assert stats["tcp"]["idle_closed"] >= 1 and stats["tls"]["idle_before_query"] == 1
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_two_workers_share_the_tls_port(lab, tmp_path):
    """Each worker binds the DoT port too (SO_REUSEPORT); the parent sums their figures."""
    d = start_dot(tmp_path, lab, "--workers", "2", ready="ready: 2 workers")
    try:
        for _ in range(6):
            with dot(d) as s:
                assert ask_dot(s, "www.example.com.").answer
        stats = d.stats()
        assert stats["workers"] == 2 and stats["tls"]["handshakes"] == 6
        assert stats["queries"]["tls:0"] == 6
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def ticketed_session(d, ctx) -> ssl.SSLSession:
    """A session of ``d`` with its TLS 1.3 ticket (tickets arrive with the first data)."""
    with dot(d, ctx) as s:
        ask_dot(s, "www.example.com.")
        session = s.session
    assert session is not None and session.has_ticket
    return session


def reload(d) -> None:
    from resolver.daemon.control import request
    answer = request(d.control, {"cmd": "reload"})
    assert answer.get("ok"), answer


def test_two_workers_resume_each_others_sessions_before_and_after_a_reload(lab, tmp_path):
    """The workers share their session ticket keys (the contexts are made before the fork
    and a reload loads the new pair into them): a session resumes on whichever worker
    SO_REUSEPORT gives the next connection to. Each worker drew its own keys before, and
    about half of these connections made a full handshake."""
    d = start_dot(tmp_path, lab, "--workers", "2", ready="ready: 2 workers")
    try:
        ctx = client_context(d)
        session = ticketed_session(d, ctx)

        def resume_on_both_workers() -> int:
            """Connections with ``session`` until each worker has answered three of them
            (at most 60): all must resume. Returns how many were made."""
            start = [w["client_queries"] for w in d.stats()["per_worker"]]
            deadline = time.monotonic() + 30
            for n in range(1, 61):
                with dot(d, ctx, session=session) as s:
                    assert s.session_reused, f"connection {n} made a full handshake"
                    assert ask_dot(s, "www.example.com.").answer
                done = [w["client_queries"] - b
                        for w, b in zip(d.stats()["per_worker"], start)]
                if min(done) >= 3 or time.monotonic() > deadline:
                    break
            assert min(done) >= 3, f"the connections reached the workers {done} times"
            return n

        n = resume_on_both_workers()
        # A new certificate with a key of the same kind: loaded into the same contexts.
        pem, key = d.ca.issue("renewed")
        shutil.copy(pem, d.pem)
        shutil.copy(key, d.key)
        reload(d)
        m = resume_on_both_workers()
        assert d.stats()["tls"]["resumed"] == n + m
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_reload_keeps_sessions_unless_the_key_changes_kind(lab, tmp_path):
    d = start_dot(tmp_path, lab)
    try:
        ctx = client_context(d)
        session = ticketed_session(d, ctx)
        with dot(d, ctx) as s:
            first_cert = s.getpeercert(binary_form=True)
        pem, key = d.ca.issue("renewed")                # P-256 again
        shutil.copy(pem, d.pem)
        shutil.copy(key, d.key)
        reload(d)
        with dot(d, ctx) as s:                          # a full handshake: the new certificate
            assert not s.session_reused
            served = s.getpeercert(binary_form=True)
            assert served == ssl.PEM_cert_to_DER_cert(pem.read_text()) != first_cert
        with dot(d, ctx, session=session) as s:         # the session of before still resumes
            assert s.session_reused
            assert ask_dot(s, "www.example.com.").answer
        # An RSA key where there was an EC one: a new context, since the old one would go
        # on offering the EC certificate to clients that prefer it.
        pem, key = d.ca.issue("rsa", kind="rsa")
        shutil.copy(pem, d.pem)
        shutil.copy(key, d.key)
        reload(d)
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import rsa
        with dot(d, ctx) as s:
            served = x509.load_der_x509_certificate(s.getpeercert(binary_form=True))
            assert isinstance(served.public_key(), rsa.RSAPublicKey)
        with dot(d, ctx, session=session) as s:
            assert not s.session_reused
            assert ask_dot(s, "www.example.com.").answer
        assert "the new key is of another kind (rsa, was ec)" in d.log_text()
        assert d.stats()["tls"]["reloads"] == 2
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def served_certificate(server_ctx, ca: CA) -> bytes:
    """The certificate (DER) a client's handshake with ``server_ctx`` (a
    ``tls_server.ServerContext``) gets, served on a loop of its own on loopback."""
    import asyncio

    from resolver.daemon.tls_server import TLSService

    client_ctx = ssl.create_default_context(cafile=str(ca.pem))

    def handshake(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=SERVER_NAME) as s:
                return s.getpeercert(binary_form=True)

    async def serve() -> bytes:
        loop = asyncio.get_running_loop()
        listening = socket.create_server(("127.0.0.1", 0))
        server = TLSService(loop, server_ctx, asyncio.Protocol, {}, 10, 10, 5.0,
                            5.0).serve(listening)
        try:
            return await loop.run_in_executor(None, handshake,
                                              listening.getsockname()[1])
        finally:
            server.close()

    return asyncio.run(asyncio.wait_for(serve(), 10))


def test_a_pair_that_does_not_load_leaves_the_context_as_it_was(tmp_path):
    """OpenSSL's loading is not atomic (a certificate whose key does not match clears the
    key it had): the pair is checked in a context of its own before the one in use takes
    it."""
    from resolver.daemon.config import Config
    from resolver.daemon.tls_listener import DOT_ALPN, ServiceContext
    ca = CA(tmp_path)
    pem, key = ca.issue("first")
    other_pem, other_key = ca.issue("second")
    cfg = replace(Config(), tls_service_pem=str(pem), tls_service_key=str(key))
    service = ServiceContext(cfg, DOT_ALPN)
    ctx = service.context
    der = ssl.PEM_cert_to_DER_cert(pem.read_text())
    assert served_certificate(ctx, ca) == der
    with pytest.raises(ssl.SSLError, match="key values mismatch"):
        service.reload(replace(cfg, tls_service_pem=str(other_pem)))
    with pytest.raises(FileNotFoundError):
        service.reload(replace(cfg, tls_service_pem=str(tmp_path / "missing.pem")))
    assert service.context is ctx and served_certificate(ctx, ca) == der
    assert service.reload(replace(cfg, tls_service_pem=str(other_pem),
                                  tls_service_key=str(other_key),
                                  tls_session_tickets=1)) is True
    assert service.context is ctx and ctx.num_tickets == 1
    assert served_certificate(ctx, ca) == ssl.PEM_cert_to_DER_cert(other_pem.read_text())


def test_a_reload_with_the_same_files_does_not_load_the_pair_again(tmp_path):
    """Loading a key takes the loop about half a millisecond: a reload whose certificate
    and key files hold the bytes the context holds leaves them loaded (its other settings
    still apply); a file rewritten with other bytes under the same name is loaded. Cipher
    lists are set again only when they change."""
    from resolver.daemon.config import Config
    from resolver.daemon.tls_listener import DOT_ALPN, ServiceContext
    ca = CA(tmp_path / "ca")
    pem, key = ca.issue("first")
    cfg = replace(Config(), tls_service_pem=str(pem), tls_service_key=str(key))
    service = ServiceContext(cfg, DOT_ALPN)
    ctx = service.context

    class Recording:
        """The context, with its load_cert_chain calls recorded."""

        def __init__(self) -> None:
            object.__setattr__(self, "loads", [])

        def load_cert_chain(self, *files):
            self.loads.append(files)
            return ctx.load_cert_chain(*files)

        def set_ciphers(self, *lists):
            self.loads.append(lists)
            return ctx.set_ciphers(*lists)

        def __getattr__(self, name):
            return getattr(ctx, name)

        def __setattr__(self, name, value):
            setattr(ctx, name, value)

    service.context = spy = Recording()
    assert service.reload(replace(cfg, tls_session_tickets=1)) is True
    assert spy.loads == [] and ctx.num_tickets == 1
    renewed_pem, renewed_key = ca.issue("renewed")      # the same kind of key, other bytes
    shutil.copy(renewed_pem, pem)
    shutil.copy(renewed_key, key)
    assert service.reload(cfg) is True and len(spy.loads) == 1
    assert served_certificate(ctx, ca) == ssl.PEM_cert_to_DER_cert(renewed_pem.read_text())
    assert service.reload(cfg) is True and len(spy.loads) == 1     # the same bytes again
    suites = "TLS_AES_256_GCM_SHA384"
    assert service.reload(replace(cfg, tls_ciphersuites=suites)) is True
    assert spy.loads[1:] == [(None, suites)]                          # other cipher suites


def test_answers_of_one_read_leave_together_and_all_arrive(daemon):
    """Forty cached queries in one write: their answers go out as one TLS write; each
    arrives whole, with its own ID."""
    with dot(daemon) as s:
        ask_dot(s, "www.example.com.")
        ask_dot(s, "www.example.net.")
        qs = [dns.message.make_query("www.example.com." if i % 2 else "www.example.net.", "A",
                                     id=1000 + i) for i in range(40)]
        s.sendall(b"".join(frame(q.to_wire()) for q in qs))
        got = {}
        for _ in qs:
            r = dns.message.from_wire(read_frame(s))
            got[r.id] = r
    assert sorted(got) == [q.id for q in qs]
    for q in qs:
        assert got[q.id].question == q.question and got[q.id].answer


def test_an_idle_connection_holds_no_tls_record_buffers(lab, tmp_path):
    """OpenSSL's record buffers are released while a connection has nothing in them, so 300
    clients that asked once and stay connected cost the daemon about the framer's 16 KiB
    buffer and the connection's objects each (about 27 KiB on x86-64), not the 42 KiB they
    cost with the buffers held."""
    d = start_dot(tmp_path, lab, tcp_max_connections_per_client=400, tcp_idle_timeout=120)
    socks: list = []
    try:
        def connect_and_ask(n: int) -> None:
            for _ in range(n):
                s = dot(d)
                socks.append(s)
                assert ask_dot(s, "www.example.com.").answer
        connect_and_ask(20)                       # one-time allocations out of the way
        time.sleep(0.3)
        before = d.rss()
        connect_and_ask(300)
        time.sleep(0.3)
        per_connection = (d.rss() - before) / 300
        assert per_connection < 34 * 1024, f"{per_connection / 1024:.1f} KiB a connection"
    finally:
        for s in socks:
            s.close()
        assert d.stop() == 0, d.log_text()[-2000:]


def test_staging_the_same_pair_copies_and_loads_nothing(tmp_path):
    """A reload's staging (in its thread, with the GIL) reads the two files and stops there
    when they hold the bytes the context holds: no copies, no context made; other bytes are
    copied and loaded into a context of their own."""
    from resolver.daemon.config import Config
    from resolver.daemon.tls_listener import DOT_ALPN, ServiceContext
    ca = CA(tmp_path / "ca")
    pem, key = ca.issue("first")
    cfg = replace(Config(), tls_service_pem=str(pem), tls_service_key=str(key))
    service = ServiceContext(cfg, DOT_ALPN)
    same = service.stage(cfg)
    assert same.tmp is None and same.checked is None and same.kind == service.kind
    ctx = service.context
    assert service.reload(cfg, same) is True and service.context is ctx
    renewed_pem, renewed_key = ca.issue("renewed")
    shutil.copy(renewed_pem, pem)
    shutil.copy(renewed_key, key)
    other = service.stage(cfg)
    copies = other.tmp.name
    assert other.checked is not None and os.path.exists(other.pem)
    assert service.reload(cfg, other) is True and service.digest == other.digest
    assert served_certificate(ctx, ca) == ssl.PEM_cert_to_DER_cert(renewed_pem.read_text())
    deadline = time.monotonic() + 10
    while os.path.exists(copies) and time.monotonic() < deadline:     # removed at once
        time.sleep(0.01)
    assert not os.path.exists(copies)


# ---- padding (RFC 7830, RFC 8467), beside Unbound's pad-responses ------------------------------
PAD_ZONE = ('["pad.test. static"]', '["pad.test. TXT \\"padded\\"", "pad.test. A 192.0.2.7"]')


def kdig_size(port: int, ca, tls: bool, *flags: str, name: str = "pad.test.",
              rdtype: str = "TXT", answer: str = "padded") -> int:
    """The size of the answer kdig gets for ``name`` (``flags`` added: ``+padding``),
    which holds ``answer``."""
    how = ["+tls", f"+tls-ca={ca}", f"+tls-hostname={SERVER_NAME}"] if tls else ["+tcp"]
    out = subprocess.run([tool("kdig"), "@127.0.0.1", "-p", str(port), *how, *flags,
                          "+timeout=5", "+retry=0", name, rdtype],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and answer in out.stdout, out.stdout + out.stderr
    return int(re.search(r";; Received (\d+) B", out.stdout).group(1))


def test_dot_answers_are_padded_as_unbounds_to_queries_that_ask(lab, tmp_path):
    """A DNS-over-TLS query with the padding option gets its answer padded to a multiple
    of 468 octets, the same size as Unbound's answer to the same question; without the
    option, over plain TCP, or with ``pad-responses = false``, no padding; the block is
    ``pad-responses-block-size``."""
    from dnslab.unbound import local_unbound
    from procs import stop as stop_process

    installed("unbound", "unbound")
    d = start_dot(tmp_path / "ours", lab, local_zone=PAD_ZONE[0], local_data=PAD_ZONE[1])
    w = tmp_path / "unbound"
    w.mkdir()
    pem, key = d.ca.issue("unbound")
    tls_port, ub_port = free_port(), free_port()
    ub = local_unbound(w, ub_port, [
        f"interface: 127.0.0.1@{tls_port}", f"tls-port: {tls_port}",
        f'tls-service-pem: "{pem}"', f'tls-service-key: "{key}"',
        'local-zone: "pad.test." static', 'local-data: "pad.test. TXT padded"',
        'local-data: "pad.test. A 192.0.2.7"'])
    try:
        ours = kdig_size(d.tls_port, d.ca.pem, True, "+padding")
        theirs = kdig_size(tls_port, d.ca.pem, True, "+padding")
        plain = kdig_size(d.tls_port, d.ca.pem, True, "+nopadding")   # kdig pads over TLS
        assert ours == theirs == 468 and plain < 468
        assert kdig_size(tls_port, d.ca.pem, True, "+nopadding") == plain
        tcp = kdig_size(d.port, None, False, "+padding")             # TCP: not padded
        assert tcp == kdig_size(ub_port, None, False, "+padding") and tcp < 468
        for _ in range(2):              # resolved, then a cache hit: both padded
            assert kdig_size(d.tls_port, d.ca.pem, True, "+padding", name="www.example.com.",
                             rdtype="A", answer="192.0.2.11") == 468
    finally:
        stop_process(ub, 5.0, group=True)
        assert d.stop() == 0
    d = start_dot(tmp_path / "block", lab, local_zone=PAD_ZONE[0], local_data=PAD_ZONE[1],
                  pad_responses_block_size=128)
    try:
        assert kdig_size(d.tls_port, d.ca.pem, True, "+padding") == 128
    finally:
        assert d.stop() == 0
    d = start_dot(tmp_path / "off", lab, local_zone=PAD_ZONE[0], local_data=PAD_ZONE[1],
                  pad_responses="false")
    try:
        assert kdig_size(d.tls_port, d.ca.pem, True, "+padding") == tcp
    finally:
        assert d.stop() == 0


@pytest.mark.parametrize("kind", ["rsa", "ec", "ed25519", "ed448", "dsa"])
def test_the_service_key_kind_is_told_without_touching_dsa_for_others(tmp_path, kind):
    """The kind of the service key, as OpenSSL keeps one certificate per kind: DSA, which
    cryptography deprecates (a warning at each lookup), is looked up only for a key of
    none of the others."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
    from cryptography.utils import CryptographyDeprecationWarning

    from resolver.daemon.tls_listener import key_kind
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        from cryptography.hazmat.primitives.asymmetric import dsa
        make = {"rsa": lambda: rsa.generate_private_key(65537, 2048),
                "ec": lambda: ec.generate_private_key(ec.SECP256R1()),
                "ed25519": ed25519.Ed25519PrivateKey.generate,
                "ed448": ed448.Ed448PrivateKey.generate,
                "dsa": lambda: dsa.generate_private_key(2048)}
        key = make[kind]()
    path = tmp_path / "key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if kind == "dsa":                   # (loading a DSA key warns, as it should)
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        assert key_kind(str(path)) == kind
    assert key_kind(str(tmp_path / "missing.pem")) is None
