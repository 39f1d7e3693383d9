"""PROXY v2 on the daemon's ``proxy-protocol-port``: headers built by hand over UDP and TCP,
and at the start of the decrypted stream of DNS over TLS and HTTPS (and plain HTTP): the
ACL, the per-client miss budget and the query log see the client the header names; bad
headers are dropped and counted. dnsdist in front sending them (``useProxyProtocol``), to
a plain and to a DNS-over-TLS backend, where four clients' misses all come back with the
rate limits at their defaults, which are Unbound's (read from unbound-checkconf): off."""
from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import time

import dns.message
import dns.query
import dns.rcode
import h2.config
import h2.connection
import pytest

from ci_policy import installed
from daemon_proc import Daemon, answer_or_shut, frame, read_frame
from ports import free_port
from procs import stop as stop_process
from test_daemon_doh import b64, h2_exchange, h2_headers
from tls_certs import CA, SERVER_NAME
from resolver.daemon import proxy_protocol as pp


def query(name: str = "www.example.com", rdtype: str = "A") -> dns.message.Message:
    return dns.message.make_query(name, rdtype)


def udp(d: Daemon, data: bytes, timeout: float = 3.0) -> dns.message.Message | None:
    got = d.raw_udp(data, timeout)
    return None if got is None else dns.message.from_wire(got)


def tcp(d: Daemon, header: bytes, q: dns.message.Message) -> dns.message.Message | None:
    with d.tcp_conn() as s:
        got = answer_or_shut(s, header + frame(q.to_wire()))
    return None if got is None else dns.message.from_wire(got)


@pytest.fixture(scope="module")
def proxied(lab, tmp_path_factory):
    port = free_port()
    # The proxy (127.0.0.1) and the clients it names are allowed; 127.0.0.5 and 127.0.0.6,
    # as proxies, are refused and denied: the ACL sees the proxy's own address first.
    d = Daemon(tmp_path_factory.mktemp("proxied"), lab, "--proxy-protocol-port", str(port),
               "--allow", "192.0.2.0/24", "--allow", "127.0.0.1/32",
               "--access-control", "127.0.0.5/32 refuse", "--access-control",
               "127.0.0.6/32 deny", "--ip-ratelimit", "2", "--log-queries", port=port)
    d.start()
    yield d
    d.stop()


def test_udp_and_tcp_headers_name_the_client_the_acl_and_the_log_see(proxied):
    d = proxied
    allowed = pp.build(("192.0.2.7", 40000), ("127.0.0.1", d.port))
    outside = pp.build(("198.51.100.1", 40000), ("127.0.0.1", d.port))
    r = udp(d, allowed + query().to_wire())
    assert r is not None and r.rcode() == dns.rcode.NOERROR and r.answer
    assert udp(d, outside + query().to_wire()).rcode() == dns.rcode.REFUSED
    # LOCAL: the proxy speaks for itself (127.0.0.1, allowed)
    assert udp(d, pp.build(None) + query().to_wire()).rcode() == dns.rcode.NOERROR
    stream = pp.build(("192.0.2.8", 40001), ("127.0.0.1", d.port), pp.STREAM)
    r = tcp(d, stream, query())
    assert r is not None and r.rcode() == dns.rcode.NOERROR and r.answer
    assert tcp(d, pp.build(("198.51.100.2", 1), None, pp.STREAM),
               query()).rcode() == dns.rcode.REFUSED
    log = d.log_text()
    assert "info: 192.0.2.7 www.example.com. A IN" in log
    assert "info: 192.0.2.8 www.example.com. A IN" in log


def test_a_proxy_the_acl_refuses_or_denies_cannot_name_an_allowed_client(proxied):
    """As Unbound, the ACL looks at the proxy's own address first: a host it refuses or
    denies gets REFUSED or nothing, whichever allowed client its header names, over UDP
    and over TCP; an allowed proxy's refused client is refused."""
    d = proxied
    allowed = pp.build(("192.0.2.7", 40000), ("127.0.0.1", d.port))
    stream = pp.build(("192.0.2.8", 40001), ("127.0.0.1", d.port), pp.STREAM)

    def from_(source: str, data: bytes) -> dns.message.Message | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((source, 0))
            s.settimeout(1.0)
            s.sendto(data, ("127.0.0.1", d.port))
            try:
                return dns.message.from_wire(s.recv(65535))
            except socket.timeout:
                return None

    def tcp_from(source: str) -> dns.message.Message | None:
        with socket.create_connection(("127.0.0.1", d.port), timeout=3,
                                      source_address=(source, 0)) as s:
            s.sendall(stream + frame(query().to_wire()))
            try:
                got = read_frame(s)
            except (ConnectionResetError, socket.timeout):
                return None
        return None if got is None else dns.message.from_wire(got)

    assert from_("127.0.0.1", allowed + query().to_wire()).rcode() == dns.rcode.NOERROR
    assert from_("127.0.0.5", allowed + query().to_wire()).rcode() == dns.rcode.REFUSED
    assert from_("127.0.0.6", allowed + query().to_wire()) is None
    assert tcp_from("127.0.0.5").rcode() == dns.rcode.REFUSED
    assert tcp_from("127.0.0.6") is None
    assert tcp_from("127.0.0.1").rcode() == dns.rcode.NOERROR
    refused = pp.build(("198.51.100.1", 40000), ("127.0.0.1", d.port))
    assert from_("127.0.0.1", refused + query().to_wire()).rcode() == dns.rcode.REFUSED


def test_connections_awaiting_their_header_count_against_the_cap(lab, tmp_path):
    """A proxy's connection counts against ``tcp-max-connections`` from its accept, before
    its header names a client: connections that never send one fill the cap and no more,
    push out no connection that did, and free their slots as they end; a proxy the ACL
    denies is closed at once."""
    port = free_port()
    d = Daemon(tmp_path / "d", lab, "--proxy-protocol-port", str(port), "--allow",
               "192.0.2.0/24", "--allow", "127.0.0.1/32", "--access-control",
               "127.0.0.6/32 deny", "--tcp-max-connections", "3", port=port).start()
    stream = pp.build(("192.0.2.8", 40001), ("127.0.0.1", d.port), pp.STREAM)
    try:
        named = d.tcp_conn()
        named.sendall(stream + frame(query().to_wire()))
        assert dns.message.from_wire(read_frame(named)).answer
        silent = [d.tcp_conn() for _ in range(2)]       # never a header: the cap is full
        deadline = time.monotonic() + 10
        while d.stats()["tcp"]["open"] < 3:
            assert time.monotonic() < deadline, d.stats()["tcp"]
            time.sleep(0.02)
        with d.tcp_conn() as late:                      # refused, and no one pushed out
            assert answer_or_shut(late, stream + frame(query().to_wire())) is None
        named.sendall(frame(query().to_wire()))
        assert dns.message.from_wire(read_frame(named)).answer
        for s in silent:
            s.close()
        while d.stats()["tcp"]["open"] > 1:
            assert time.monotonic() < deadline, d.stats()["tcp"]
            time.sleep(0.02)
        with d.tcp_conn() as again:                     # a slot is free again
            again.sendall(stream + frame(query().to_wire()))
            assert dns.message.from_wire(read_frame(again)).answer
        with socket.create_connection(("127.0.0.1", d.port), timeout=3,
                                      source_address=("127.0.0.6", 0)) as denied:
            assert answer_or_shut(denied, stream + frame(query().to_wire())) is None
        named.close()
        while d.stats()["tcp"]["open"] > 0:
            assert time.monotonic() < deadline, d.stats()["tcp"]
            time.sleep(0.02)
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def in_pieces(s, client: str) -> dns.message.Message:
    """A header naming ``client`` and a query, sent on ``s`` 7 bytes at a time: the answer."""
    data = pp.build((client, 5), None, pp.STREAM) + frame(query().to_wire())
    for i in range(0, len(data), 7):
        s.sendall(data[i:i + 7])
        time.sleep(0.01)
    return dns.message.from_wire(read_frame(s))


def test_a_header_sent_in_pieces_over_tcp_is_waited_for(proxied):
    with proxied.tcp_conn() as s:
        r = in_pieces(s, "192.0.2.9")
    assert r.rcode() == dns.rcode.NOERROR and r.answer


def test_bad_headers_are_dropped_and_counted(proxied):
    d = proxied
    before = d.stats()["dropped"]
    q = query().to_wire()
    assert udp(d, q, timeout=0.5) is None                             # no header at all
    assert udp(d, pp.build(("192.0.2.7", 1))[:20], timeout=0.5) is None
    assert udp(d, pp.SIGNATURE + b"\x11\x12\x00\x0c" + bytes(12) + q, timeout=0.5) is None
    assert tcp(d, b"", query()) is None                               # a bare DNS frame
    after = d.stats()["dropped"]

    def grew(reason):
        return after.get(f"proxy_{reason}", 0) - before.get(f"proxy_{reason}", 0)

    assert (grew("signature"), grew("truncated"), grew("version")) == (2, 1, 1)
    # the daemon still serves
    assert udp(d, pp.build(("192.0.2.7", 2)) + q).rcode() == dns.rcode.NOERROR


def test_the_miss_budget_is_each_real_client_s(proxied):
    d = proxied                    # --ip-ratelimit 2: two misses a second per client
    before = d.stats()["dropped"].get("ratelimit", 0)
    answered = 0
    for i in range(6):             # six clients, one miss each: nobody over budget
        h = pp.build((f"192.0.2.{20 + i}", 1000 + i))
        r = udp(d, h + query(f"each{i}-{time.monotonic_ns()}.example.com").to_wire())
        answered += r is not None
    assert answered == 6 and d.stats()["dropped"].get("ratelimit", 0) == before
    h = pp.build(("192.0.2.50", 1000))
    for i in range(6):             # one client, six misses at once: past its budget
        d.raw_udp(h + query(f"one{i}-{time.monotonic_ns()}.example.com").to_wire(), 0.01)
    time.sleep(0.5)
    assert d.stats()["dropped"].get("ratelimit", 0) - before >= 3


# ---- DNS over TLS, HTTPS and HTTP: the header starts the (decrypted) stream -----------------
@pytest.fixture(scope="module")
def encrypted(lab, tmp_path_factory):
    """DoT, DoH and plain DoH listeners on proxy ports; 192.0.2.0/24 and the proxy
    (127.0.0.1) allowed."""
    work = tmp_path_factory.mktemp("proxied-tls")
    ca = CA(work / "pki")
    pem, key = ca.issue("server")
    dot, https, plain = free_port(), free_port(), free_port()
    conf = work / "tls.toml"
    conf.write_text(f'tls-listen = ["127.0.0.1:{dot}"]\nhttps-listen = ["127.0.0.1:{https}"]\n'
                    f'http-listen = ["127.0.0.1:{plain}"]\n'
                    f'tls-service-pem = "{pem}"\ntls-service-key = "{key}"\n'
                    f'proxy-protocol-port = [{dot}, {https}, {plain}]\n')
    d = Daemon(work, lab, "--config", str(conf), "--allow", "192.0.2.0/24",
               "--allow", "127.0.0.1/32", "--log-queries").start()
    d.ca, d.tls_port, d.https_port, d.http_port = ca, dot, https, plain
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


def tls_socket(d, port: int, alpn: str) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(d.ca.pem))
    ctx.set_alpn_protocols([alpn])
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                           server_hostname=SERVER_NAME)


def dot(d, header: bytes, q: dns.message.Message) -> dns.message.Message | None:
    """``header`` then ``q`` as the first bytes of a DNS-over-TLS stream."""
    with tls_socket(d, d.tls_port, "dot") as s:
        s.sendall(header + frame(q.to_wire()))
        try:
            got = read_frame(s)
        except (ConnectionResetError, ssl.SSLError):
            return None
    return None if got is None else dns.message.from_wire(got)


def doh2(d, header: bytes, q: dns.message.Message) -> tuple | None:
    """``header`` then an HTTP/2 GET of ``q`` over TLS: (status, body), None if closed."""
    with tls_socket(d, d.https_port, "h2") as s:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.send_headers(1, h2_headers(f"/dns-query?dns={b64(q.to_wire())}"),
                          end_stream=True)
        s.sendall(header + conn.data_to_send())
        try:
            got, _ = h2_exchange(s, conn, {1})
        except (ConnectionResetError, ssl.SSLError):
            return None
    return got.get(1)


def test_dot_and_doh_headers_name_the_client_the_acl_and_the_log_see(encrypted):
    d = encrypted
    stream = pp.build(("192.0.2.30", 40000), ("127.0.0.1", d.tls_port), pp.STREAM)
    r = dot(d, stream, query())
    assert r is not None and r.rcode() == dns.rcode.NOERROR and r.answer
    outside = pp.build(("198.51.100.30", 40000), None, pp.STREAM)
    assert dot(d, outside, query()).rcode() == dns.rcode.REFUSED
    # LOCAL: the proxy speaks for itself (127.0.0.1, allowed)
    assert dot(d, pp.build(None), query()).rcode() == dns.rcode.NOERROR

    status, body = doh2(d, pp.build(("192.0.2.31", 1), None, pp.STREAM), query())
    assert status == b"200"
    assert dns.message.from_wire(body).rcode() == dns.rcode.NOERROR
    status, body = doh2(d, pp.build(("198.51.100.31", 1), None, pp.STREAM), query())
    assert status == b"200" and dns.message.from_wire(body).rcode() == dns.rcode.REFUSED

    c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=5)
    c.connect()
    c.sock.sendall(pp.build(("192.0.2.32", 1), None, pp.STREAM))
    c.request("GET", f"/dns-query?dns={b64(query().to_wire())}")
    r = c.getresponse()
    assert r.status == 200 and dns.message.from_wire(r.read()).answer
    c.close()

    log = d.log_text()
    for client in ("192.0.2.30", "192.0.2.31", "192.0.2.32", "198.51.100.30",
                   "198.51.100.31"):
        assert f"info: {client} www.example.com. A IN" in log
    assert "info: 127.0.0.1 www.example.com. A IN" in log          # the LOCAL one


def test_dot_and_doh_without_a_header_are_closed_and_counted(encrypted):
    d = encrypted
    before = d.stats()["dropped"]
    assert dot(d, b"", query()) is None                       # a bare DNS frame
    assert doh2(d, b"", query()) is None                      # the HTTP/2 preface
    # the header cut short by the end of the stream
    with tls_socket(d, d.tls_port, "dot") as s:
        s.sendall(pp.build(("192.0.2.33", 1), None, pp.STREAM)[:20])
        try:
            s.unwrap()                                        # close_notify
        except (OSError, ssl.SSLError):
            pass                                              # closed without one
    deadline = time.monotonic() + 5
    while True:
        after = d.stats()["dropped"]
        grew = {r: after.get(f"proxy_{r}", 0) - before.get(f"proxy_{r}", 0)
                for r in ("signature", "truncated")}
        if grew == {"signature": 2, "truncated": 1} or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert grew == {"signature": 2, "truncated": 1}
    # the daemon still serves
    r = dot(d, pp.build(("192.0.2.34", 2), None, pp.STREAM), query())
    assert r is not None and r.rcode() == dns.rcode.NOERROR


def test_a_header_and_the_first_query_in_pieces_over_tls_are_waited_for(encrypted):
    with tls_socket(encrypted, encrypted.tls_port, "dot") as s:
        r = in_pieces(s, "192.0.2.35")
    assert r.rcode() == dns.rcode.NOERROR and r.answer


def test_a_proxy_port_is_one_of_the_listeners_ports(tmp_path):
    from resolver.daemon.config import ConfigError, build

    pem, key = CA(tmp_path / "pki").issue("server")
    tls = {"root_hints": None, "tls_listen": ["127.0.0.1:8853"], "tls_service_pem": str(pem),
           "tls_service_key": str(key)}
    assert build(None, {**tls, "proxy_protocol_port": ["8853"]}).proxy_protocol_port == (8853,)
    with pytest.raises(ConfigError, match="5399 is not a port of listen, tls-listen"):
        build(None, {**tls, "proxy_protocol_port": ["5399"]})


# ---- dnsdist in front ------------------------------------------------------------------------
def from_address(source: str, q: dns.message.Message, port: int, *, over_tcp: bool = False,
                 timeout: float = 5.0) -> dns.message.Message:
    if over_tcp:
        return dns.query.tcp(q, "127.0.0.1", port=port, timeout=timeout, source=source)
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=timeout, source=source)


def start_dnsdist(dnsdist: str, tmp_path, front: int, backend: str):
    """dnsdist on ``front`` in front of the one server ``backend`` (newServer's fields), once
    it answers a query of 127.0.0.2's: (its process, that answer)."""
    conf = tmp_path / "dnsdist.conf"
    conf.write_text(f'setLocal("127.0.0.1:{front}")\n'
                    'setACL({"127.0.0.0/8"})\n'
                    f'newServer({{{backend}}})\n'
                    'getServer(0):setUp()\n')
    proxy = subprocess.Popen([dnsdist, "--supervised", "--disable-syslog", "-C", str(conf)],
                             stdin=subprocess.DEVNULL, stdout=open(tmp_path / "dnsdist.log", "wb"),
                             stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                return proxy, from_address("127.0.0.2", query(), front, timeout=0.5)
            except (dns.exception.Timeout, OSError):
                assert proxy.poll() is None, (tmp_path / "dnsdist.log").read_text()
                assert time.monotonic() < deadline, "dnsdist did not answer"
    except BaseException:
        stop_process(proxy, 10, group=True)
        raise


def test_dnsdist_in_front_the_daemon_sees_and_serves_the_real_clients(lab, tmp_path):
    dnsdist = installed("dnsdist", "dnsdist")
    port, front = free_port(), free_port()
    # the clients, and dnsdist itself (127.0.0.1): the ACL sees the proxy's address too
    d = Daemon(tmp_path / "d", lab, "--proxy-protocol-port", str(port), "--allow",
               "127.0.0.2/32", "--allow", "127.0.0.10/31", "--allow", "127.0.0.12/31",
               "--allow", "127.0.0.1/32", "--log-queries", port=port)
    d.start()
    proxy = None
    try:
        proxy, r = start_dnsdist(dnsdist, tmp_path, front,
                                 f'address="127.0.0.1:{port}", useProxyProtocol=true')
        assert r.rcode() == dns.rcode.NOERROR and r.answer
        assert from_address("127.0.0.3", query(), front).rcode() == dns.rcode.REFUSED
        r = from_address("127.0.0.2", query(), front, over_tcp=True)
        assert r.rcode() == dns.rcode.NOERROR and r.answer
        log = d.log_text()
        assert "info: 127.0.0.2 www.example.com. A IN" in log
        assert "info: 127.0.0.3 www.example.com. A IN" in log
        assert "info: 127.0.0.1 " not in log               # never the proxy itself

        # four clients, each sending misses as fast as they come back, 150 each: with the
        # rate limits at their defaults none is dropped
        lost = _misses_through(front, ["127.0.0.10", "127.0.0.11", "127.0.0.12",
                                       "127.0.0.13"], 150)
        st = d.stats()
        print(f"\nfour clients behind dnsdist, 150 misses each: lost {lost}, daemon dropped "
              f"{st['dropped']}")
        assert lost == 0 and not st["dropped"].get("ratelimit")
    finally:
        if proxy is not None:
            stop_process(proxy, 10, group=True)
        d.stop()


def test_dnsdist_in_front_of_dns_over_tls_the_daemon_sees_the_real_clients(lab, tmp_path):
    """dnsdist to a DNS-over-TLS backend with ``useProxyProtocol``: it sends the header at
    the start of the decrypted stream."""
    dnsdist = installed("dnsdist", "dnsdist")
    ca = CA(tmp_path / "pki")
    pem, key = ca.issue("server")
    tls, front = free_port(), free_port()
    conf = tmp_path / "tls.toml"
    conf.write_text(f'tls-listen = ["127.0.0.1:{tls}"]\ntls-service-pem = "{pem}"\n'
                    f'tls-service-key = "{key}"\nproxy-protocol-port = [{tls}]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--allow", "127.0.0.2/32",
               "--allow", "127.0.0.1/32", "--log-queries").start()
    version = subprocess.run([dnsdist, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.split("\n")[0]
    proxy = None
    try:
        proxy, r = start_dnsdist(dnsdist, tmp_path, front,
                                 f'address="127.0.0.1:{tls}", tls="openssl", '
                                 f'subjectName="{SERVER_NAME}", caStore="{ca.pem}", '
                                 'useProxyProtocol=true')
        assert r.rcode() == dns.rcode.NOERROR and r.answer, version
        assert from_address("127.0.0.3", query(), front).rcode() == dns.rcode.REFUSED
        r = from_address("127.0.0.2", query("www.example.com", "AAAA"), front, over_tcp=True)
        assert r.rcode() == dns.rcode.NOERROR
        log = d.log_text()
        assert "info: 127.0.0.2 www.example.com. A IN" in log
        assert "info: 127.0.0.2 www.example.com. AAAA IN" in log
        assert "info: 127.0.0.3 www.example.com. A IN" in log
        assert "info: 127.0.0.1 " not in log               # never the proxy itself
        st = d.stats()
        assert not any(k.startswith("proxy_") for k in st["dropped"]), st["dropped"]
        assert st["tls"]["handshakes"] >= 1
        print(f"\n{version}: DoT backend, {st['tls']['handshakes']} handshakes")
    finally:
        if proxy is not None:
            stop_process(proxy, 10, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]


def _misses_through(port: int, sources: list[str], each: int, window: int = 32) -> int:
    """Sends ``each`` distinct misses from every source, ``window`` at a time per source,
    waiting up to 5 s for each; the number never answered."""
    import selectors

    sel = selectors.DefaultSelector()
    lost, pending = 0, {}
    todo = [(src, i) for i in range(each) for src in sources]
    stamp = time.monotonic_ns()
    start = time.monotonic()
    try:
        while todo or pending:
            while todo and len(pending) < window * len(sources):
                src, i = todo.pop()
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((src, 0))
                s.setblocking(False)
                q = query(f"m{i}-{src.rsplit('.', 1)[1]}-{stamp}.example.com")
                s.sendto(q.to_wire(), ("127.0.0.1", port))
                sel.register(s, selectors.EVENT_READ)
                pending[s] = time.monotonic()
            for key, _ in sel.select(timeout=0.01):
                sel.unregister(key.fileobj)
                key.fileobj.close()
                del pending[key.fileobj]
            now = time.monotonic()
            for s, t in list(pending.items()):
                if now - t > 5:
                    lost += 1
                    sel.unregister(s)
                    s.close()
                    del pending[s]
            assert now - start < 120, "the misses took far too long"
    finally:
        for s in pending:
            s.close()
        sel.close()
    return lost


def test_the_rate_limits_are_off_by_default_as_unbound_s(tmp_path):
    from resolver.daemon.config import build

    checkconf = installed("unbound-checkconf", "unbound")
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n")

    def unbound(option: str) -> int:
        out = subprocess.run([checkconf, "-o", option, str(conf)], capture_output=True,
                             text=True, timeout=30, check=True).stdout
        return int(out.strip())

    cfg = build(None, {"root_hints": None})
    assert cfg.ip_ratelimit == unbound("ip-ratelimit") == 0
    assert cfg.limits.ratelimit == unbound("ratelimit") == 0
    assert cfg.limits.ratelimit_factor == unbound("ratelimit-factor")
