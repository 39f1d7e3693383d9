"""DNS over HTTPS (RFC 8484) served by corenet-resolver: asked by kdig (+https, +https-get)
and BIND's dig (+https, +https-get, +http-plain), by Python's http.client over HTTP/1.1 and
the h2 library over HTTP/2; bad requests refused before any DNS work (400, 404, 405, 413,
415), Cache-Control from the answer's TTL, and an HTTP/2 stream flood."""
from __future__ import annotations

import base64
import http.client
import socket
import ssl
import subprocess

import dns.message
import dns.rcode
import dns.rrset
import h2.config
import h2.connection
import h2.events
import pytest

from daemon_proc import Daemon
from ports import free_port
from test_daemon_dot import tool
from tls_certs import CA, SERVER_NAME

from resolver.daemon import config as config_mod
from resolver.daemon.doh import HTTPError, min_ttl, query_of


@pytest.fixture(scope="module")
def daemon(lab, tmp_path_factory):
    work = tmp_path_factory.mktemp("doh")
    ca = CA(work / "pki")
    pem, key = ca.issue("server")
    https, plain = free_port(), free_port()
    conf = work / "doh.toml"
    conf.write_text(f'https-listen = ["127.0.0.1:{https}"]\nhttp-listen = ["127.0.0.1:{plain}"]\n'
                    f'tls-service-pem = "{pem}"\ntls-service-key = "{key}"\n')
    d = Daemon(work, lab, "--config", str(conf)).start()
    d.ca, d.https_port, d.http_port = ca, https, plain
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


def b64(wire: bytes) -> str:
    return base64.urlsafe_b64encode(wire).rstrip(b"=").decode()


def query(name: str = "www.example.com.", rdtype: str = "A") -> dns.message.Message:
    return dns.message.make_query(name, rdtype, id=0)


# ---- real clients

@pytest.mark.parametrize("method", ["+https", "+https-get"])
def test_kdig_over_https(daemon, method):
    out = subprocess.run([tool("kdig"), "@127.0.0.1", "-p", str(daemon.https_port), method,
                          f"+tls-ca={daemon.ca.pem}", f"+tls-hostname={SERVER_NAME}",
                          "+short", "+timeout=5", "+retry=0", "www.example.com", "A"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split()) == ["192.0.2.1", "192.0.2.11"]


@pytest.mark.parametrize("method,port", [("+https", "https_port"), ("+https-get", "https_port"),
                                         ("+http-plain", "http_port")])
def test_dig_over_https_and_plain_http(daemon, method, port):
    """BIND 9.18's dig: +https (POST), +https-get (both checking the certificate against the
    test's CA), and +http-plain on the plain listener."""
    tls = [f"+tls-ca={daemon.ca.pem}", f"+tls-hostname={SERVER_NAME}"] if "https" in method else []
    out = subprocess.run([tool("dig"), "@127.0.0.1", "-p", str(getattr(daemon, port)), method,
                          *tls, "+short", "+time=5", "+tries=1", "www.example.net", "A"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split() == ["198.51.100.1"]


# ---- HTTP/1.1

def test_http11_get_and_post_with_cache_control_from_the_ttl(daemon):
    c = http.client.HTTPConnection("127.0.0.1", daemon.http_port, timeout=5)
    q = query()
    c.request("GET", f"/dns-query?dns={b64(q.to_wire())}", headers={"Accept": "application/dns-message"})
    r = c.getresponse()
    body = r.read()
    assert r.status == 200 and r.getheader("Content-Type") == "application/dns-message"
    answer = dns.message.from_wire(body)
    assert answer.id == 0 and answer.rcode() == dns.rcode.NOERROR
    ttls = [rrset.ttl for rrset in answer.answer + answer.authority]
    assert r.getheader("Cache-Control") == f"max-age={min(ttls)}" and min(ttls) > 0
    # the same connection, kept alive: POST
    c.request("POST", "/dns-query", body=query("www.example.net.").to_wire(),
              headers={"Content-Type": "application/dns-message"})
    r = c.getresponse()
    assert r.status == 200
    assert dns.message.from_wire(r.read()).answer[0][0].to_text() == "198.51.100.1"
    c.close()


def test_negative_answer_cache_control_from_the_soa(daemon):
    c = http.client.HTTPConnection("127.0.0.1", daemon.http_port, timeout=5)
    c.request("GET", f"/dns-query?dns={b64(query('nope.example.com.').to_wire())}")
    r = c.getresponse()
    answer = dns.message.from_wire(r.read())
    assert answer.rcode() == dns.rcode.NXDOMAIN
    soa = [rrset.ttl for rrset in answer.authority]
    assert soa and r.getheader("Cache-Control") == f"max-age={min(soa)}"
    c.close()


BAD_REQUESTS = [
    ("POST", "/dns-query", b"x" * 40, {"Content-Type": "text/plain"}, 415),
    ("POST", "/dns-query", b"\x00" * 65536, {"Content-Type": "application/dns-message"}, 413),
    ("GET", "/dns-query?dns=" + "A" * 90000, None, {}, 413),
    ("GET", "/dns-query?dns=!!!notbase64", None, {}, 400),
    ("GET", "/dns-query?name=www.example.com", None, {}, 400),
    ("GET", "/dns-query?dns=" + b64(b"\x00\x00\x81\x80" + b"\x00" * 8), None, {}, 400),
    ("GET", "/other?dns=" + b64(query().to_wire()), None, {}, 404),
    ("PUT", "/dns-query", b"x", {"Content-Type": "application/dns-message"}, 405),
]


@pytest.mark.parametrize("method,path,body,headers,status", BAD_REQUESTS,
                         ids=[f"{b[4]}-{i}" for i, b in enumerate(BAD_REQUESTS)])
def test_bad_requests_refused_before_any_dns_work(daemon, method, path, body, headers, status):
    before = daemon.stats()
    c = http.client.HTTPConnection("127.0.0.1", daemon.http_port, timeout=5)
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    r.read()
    assert r.status == status
    c.close()
    after = daemon.stats()
    assert after["engine"]["client_queries"] == before["engine"]["client_queries"]
    assert sum(after["queries"].values()) == sum(before["queries"].values())
    assert after["http"][f"status_{status}"] == before["http"].get(f"status_{status}", 0) + 1
    assert daemon.ask("www.example.com.").answer          # still serving


def test_http11_over_tls_by_alpn(daemon):
    ctx = ssl.create_default_context(cafile=str(daemon.ca.pem))
    ctx.set_alpn_protocols(["http/1.1"])
    c = http.client.HTTPSConnection("127.0.0.1", daemon.https_port, timeout=5, context=ctx)
    c.connect()
    assert c.sock.selected_alpn_protocol() == "http/1.1"
    c.request("GET", f"/dns-query?dns={b64(query().to_wire())}")
    r = c.getresponse()
    assert r.status == 200 and dns.message.from_wire(r.read()).answer
    c.close()
    assert daemon.stats()["https"]["status_200"] >= 1


def test_acl_and_endpoint_apply_to_http(lab, tmp_path):
    plain = free_port()
    conf = tmp_path / "doh.toml"
    conf.write_text(f'http-listen = ["127.0.0.1:{plain}"]\nhttp-endpoint = "/q"\n')
    d = Daemon(tmp_path, lab, "--config", str(conf), "--allow", "10.0.0.0/8").start()
    try:
        c = http.client.HTTPConnection("127.0.0.1", plain, timeout=5)
        c.request("GET", f"/dns-query?dns={b64(query().to_wire())}")
        r = c.getresponse()
        r.read()
        assert r.status == 404
        c.request("GET", f"/q?dns={b64(query().to_wire())}")
        r = c.getresponse()
        assert r.status == 200
        assert dns.message.from_wire(r.read()).rcode() == dns.rcode.REFUSED
        c.close()
        assert d.stats()["refused_acl"] == 1
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


# ---- HTTP/2 on TLS

def h2_connect(d):
    ctx = ssl.create_default_context(cafile=str(d.ca.pem))
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", d.https_port), timeout=5),
                        server_hostname=SERVER_NAME)
    assert s.selected_alpn_protocol() == "h2"
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    return s, conn


def h2_headers(path: str, method: str = "GET") -> list[tuple[str, str]]:
    return [(":method", method), (":path", path), (":scheme", "https"),
            (":authority", SERVER_NAME), ("accept", "application/dns-message")]


def h2_exchange(s, conn, want: set[int], rounds: int = 200) -> tuple[dict, list]:
    """Reads until every stream of ``want`` has ended (or the connection did); returns
    {stream: (status, body)} and the events seen."""
    got: dict[int, list] = {}
    seen = []
    for _ in range(rounds):
        if want <= {sid for sid, v in got.items() if v[2]}:
            break
        data = s.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            seen.append(ev)
            sid = getattr(ev, "stream_id", None)
            if isinstance(ev, h2.events.ResponseReceived):
                got.setdefault(sid, [None, b"", False])[0] = dict(ev.headers)[b":status"]
            elif isinstance(ev, h2.events.DataReceived):
                got.setdefault(sid, [None, b"", False])[1] += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, h2.events.StreamEnded):
                got.setdefault(sid, [None, b"", False])[2] = True
            elif isinstance(ev, h2.events.ConnectionTerminated):
                return {k: tuple(v[:2]) for k, v in got.items()}, seen
        s.sendall(conn.data_to_send())
    return {k: tuple(v[:2]) for k, v in got.items()}, seen


def test_http2_get_and_post_on_one_connection(daemon):
    s, conn = h2_connect(daemon)
    with s:
        conn.send_headers(1, h2_headers(f"/dns-query?dns={b64(query().to_wire())}"),
                          end_stream=True)
        conn.send_headers(3, h2_headers("/dns-query", "POST")
                          + [("content-type", "application/dns-message")])
        conn.send_data(3, query("h402.bulk.net.").to_wire(), end_stream=True)
        conn.send_headers(5, h2_headers("/dns-query", "POST")
                          + [("content-type", "text/plain")])
        conn.send_data(5, b"hello", end_stream=True)
        s.sendall(conn.data_to_send())
        got, _ = h2_exchange(s, conn, {1, 3, 5})
    assert got[1][0] == b"200" and dns.message.from_wire(got[1][1]).answer
    assert got[3][0] == b"200"
    assert dns.message.from_wire(got[3][1]).answer[0][0].to_text() == "10.1.1.146"
    assert got[5][0] == b"415"


def test_http2_bodies_of_64_kib_get_413_and_the_connection_serves_on(daemon):
    """A 64 KiB body announced over HTTP/2 (content-length), or 48 KiB sent unannounced
    (what the connection's first flow-control window lets in): 413 with no DNS work, the
    stream reset while the client is still sending, the connection kept."""
    s, conn = h2_connect(daemon)
    post = h2_headers("/dns-query", "POST") + [("content-type", "application/dns-message")]
    with s:
        conn.send_headers(1, post + [("content-length", "65536")])
        conn.send_data(1, b"\x00" * 8192)
        conn.send_headers(3, post)
        for _ in range(3):                       # 48 KiB: within the stream's window
            conn.send_data(3, b"\x00" * 16384)
        s.sendall(conn.data_to_send())
        got, seen = h2_exchange(s, conn, {1, 3})
        assert got[1][0] == b"413" and got[3][0] == b"413"
        conn.send_headers(5, h2_headers(f"/dns-query?dns={b64(query().to_wire())}"),
                          end_stream=True)
        s.sendall(conn.data_to_send())
        got, _ = h2_exchange(s, conn, {5})
    assert got[5][0] == b"200" and dns.message.from_wire(got[5][1]).answer


def _flood(conn, s, n: int) -> None:
    """Opens ``n`` streams that never finish, ignoring the server's bound."""
    conn.local_settings.max_concurrent_streams = 1000
    conn.remote_settings.max_concurrent_streams = 1000
    conn.remote_settings.acknowledge()            # in force at once, whatever the server said
    for i in range(n):
        conn.send_headers(1 + 2 * i, h2_headers("/dns-query", "POST")
                          + [("content-type", "application/dns-message")])
    s.sendall(conn.data_to_send())


def _still_served(daemon, before) -> None:
    assert daemon.alive()
    s, conn = h2_connect(daemon)
    with s:
        conn.send_headers(1, h2_headers(f"/dns-query?dns={b64(query().to_wire())}"),
                          end_stream=True)
        s.sendall(conn.data_to_send())
        got, _ = h2_exchange(s, conn, {1})
    assert got[1][0] == b"200"
    assert daemon.stats()["tcp"]["open"] <= before["tcp"]["open"] + 1


def test_http2_stream_flood_is_ended_with_goaway_and_others_still_served(daemon):
    """300 streams opened and never finished, more than the 100 announced, by a client that
    has the server's SETTINGS: a connection error (RFC 9113 5.1.2), GOAWAY."""
    before = daemon.stats()
    s, conn = h2_connect(daemon)
    with s:
        for _ in range(20):                           # the server's SETTINGS, acknowledged
            if any(isinstance(ev, h2.events.RemoteSettingsChanged)
                   for ev in conn.receive_data(s.recv(65536))):
                break
        s.sendall(conn.data_to_send())
        _flood(conn, s, 300)
        _, seen = h2_exchange(s, conn, {10**6}, rounds=50)
    ended = [ev for ev in seen if isinstance(ev, h2.events.ConnectionTerminated)]
    assert ended and ended[0].error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR, seen[-3:]
    _still_served(daemon, before)


def test_http2_streams_past_the_bound_before_the_settings_arrive_are_refused(daemon):
    """A client may open streams before the server's SETTINGS reach it (the bound is
    unlimited until then): those past the 100 announced are each refused (RST_STREAM,
    REFUSED_STREAM, which a client may retry), the first 100 kept."""
    before = daemon.stats()
    s, conn = h2_connect(daemon)
    with s:
        _flood(conn, s, 300)
        refused: set[int] = set()
        for _ in range(200):
            if len(refused) >= 200:
                break
            data = s.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.StreamReset):
                    assert ev.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
                    refused.add(ev.stream_id)
            s.sendall(conn.data_to_send())
    assert refused == {1 + 2 * i for i in range(100, 300)}
    _still_served(daemon, before)


# ---- sans-IO and config

def test_query_of_rules():
    q = query().to_wire()
    assert query_of(b"GET", b"/dns-query?x=1&dns=" + b64(q).encode(), None, b"",
                    b"/dns-query", 4096) == q
    assert query_of(b"POST", b"/dns-query", b"application/dns-message; charset=x", q,
                    b"/dns-query", 4096) == q
    for args, status in [((b"GET", b"/dns-query", None, b""), 400),
                         ((b"POST", b"/dns-query", b"application/json", q), 415),
                         ((b"POST", b"/dns-query", b"application/dns-message", q * 200), 413),
                         ((b"DELETE", b"/dns-query", None, b""), 405)]:
        with pytest.raises(HTTPError) as e:
            query_of(*args, b"/dns-query", 4096)
        assert e.value.status == status


def test_min_ttl_reads_every_section_but_opt():
    r = dns.message.make_response(dns.message.make_query("a.example.", "A", use_edns=0))
    assert min_ttl(r.to_wire()) is None
    r.answer.append(dns.rrset.from_text("a.example.", 300, "IN", "A", "192.0.2.1"))
    r.authority.append(dns.rrset.from_text("example.", 70, "IN", "NS", "ns.example."))
    assert min_ttl(r.to_wire()) == 70
    assert min_ttl(b"\x00" * 5) is None
    assert min_ttl(r.to_wire()[:-3]) is None        # a record cut short


def test_min_ttl_reads_a_ttl_with_its_high_bit_set_as_zero():
    r = dns.message.make_response(dns.message.make_query("a.example.", "A"))
    r.answer.append(dns.rrset.from_text("a.example.", 300, "IN", "A", "192.0.2.1"))
    wire = bytearray(r.to_wire())
    ttl_at = wire.index(bytes.fromhex("0000012c"))       # the A record's TTL, 300
    wire[ttl_at:ttl_at + 4] = bytes.fromhex("80000000")  # RFC 2181 8: read as zero
    assert min_ttl(bytes(wire)) == 0


def test_plain_http_only_on_loopback_unless_allowed(tmp_path):
    with pytest.raises(config_mod.ConfigError, match="http-listen"):
        config_mod.build(None, {"http_listen": ["192.0.2.1:8053"]})
    cfg = config_mod.build(None, {"http_listen": ["192.0.2.1"],
                                  "http_notls_allow_nonlocal": True})
    assert cfg.http_listen == (("192.0.2.1", 80),)
    with pytest.raises(config_mod.ConfigError, match="tls-service-key"):
        config_mod.build(None, {"https_listen": ["127.0.0.1"]})


def test_http11_pipelined_requests_answered_in_order(daemon):
    """Several requests in one write, a miss first: every one answered, in order."""
    names = ["h403.bulk.net.", "www.example.com.", "h404.bulk.net."]
    wire = b""
    for name in names:
        q = query(name).to_wire()
        wire += (b"POST /dns-query HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/dns-message\r\nContent-Length: %d\r\n\r\n"
                 % len(q)) + q
    with socket.create_connection(("127.0.0.1", daemon.http_port), timeout=5) as s:
        s.sendall(wire)
        f = s.makefile("rb")
        got = []
        for _ in names:
            assert f.readline().startswith(b"HTTP/1.1 200")
            length = None
            while (line := f.readline()) not in (b"\r\n", b""):
                key, _, value = line.partition(b":")
                if key.strip().lower() == b"content-length":
                    length = int(value)
            got.append(dns.message.from_wire(f.read(length)))
    assert [str(m.question[0].name) for m in got] == names
    assert got[0].answer[0][0].to_text() == "10.1.1.147"
