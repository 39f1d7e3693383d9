"""PROXY v2 on the daemon's ``proxy-protocol-port``: headers built by hand over UDP and TCP
(the ACL, the per-client miss budget and the query log see the client the header names; bad
headers are dropped and counted), and dnsdist in front sending them (``useProxyProtocol``),
where four clients' misses all come back with the rate limits at their defaults, which are
Unbound's (read from unbound-checkconf): off."""
from __future__ import annotations

import socket
import subprocess
import time

import dns.message
import dns.query
import dns.rcode
import pytest

from ci_policy import installed
from daemon_proc import Daemon, frame, free_port, read_frame
from procs import stop as stop_process
from resolver.daemon import proxy_protocol as pp


def query(name: str = "www.example.com", rdtype: str = "A") -> dns.message.Message:
    return dns.message.make_query(name, rdtype)


def udp(d: Daemon, data: bytes, timeout: float = 3.0) -> dns.message.Message | None:
    got = d.raw_udp(data, timeout)
    return None if got is None else dns.message.from_wire(got)


def tcp(d: Daemon, header: bytes, q: dns.message.Message) -> dns.message.Message | None:
    with d.tcp_conn() as s:
        s.sendall(header + frame(q.to_wire()))
        try:
            got = read_frame(s)
        except ConnectionResetError:
            return None
    return None if got is None else dns.message.from_wire(got)


@pytest.fixture(scope="module")
def proxied(lab, tmp_path_factory):
    port = free_port()
    d = Daemon(tmp_path_factory.mktemp("proxied"), lab, "--proxy-protocol-port", str(port),
               "--allow", "192.0.2.0/24", "--ip-ratelimit", "2", "--log-queries", port=port)
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
    # LOCAL: the proxy speaks for itself, and 127.0.0.1 is not allowed here
    assert udp(d, pp.build(None) + query().to_wire()).rcode() == dns.rcode.REFUSED
    stream = pp.build(("192.0.2.8", 40001), ("127.0.0.1", d.port), pp.STREAM)
    r = tcp(d, stream, query())
    assert r is not None and r.rcode() == dns.rcode.NOERROR and r.answer
    assert tcp(d, pp.build(("198.51.100.2", 1), None, pp.STREAM),
               query()).rcode() == dns.rcode.REFUSED
    log = d.log_text()
    assert "info: 192.0.2.7 www.example.com. A IN" in log
    assert "info: 192.0.2.8 www.example.com. A IN" in log


def test_a_header_sent_in_pieces_over_tcp_is_waited_for(proxied):
    d = proxied
    data = pp.build(("192.0.2.9", 5), None, pp.STREAM) + frame(query().to_wire())
    with d.tcp_conn() as s:
        for i in range(0, len(data), 7):
            s.sendall(data[i:i + 7])
            time.sleep(0.01)
        r = dns.message.from_wire(read_frame(s))
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


# ---- dnsdist in front ------------------------------------------------------------------------
def from_address(source: str, q: dns.message.Message, port: int, *, over_tcp: bool = False,
                 timeout: float = 5.0) -> dns.message.Message:
    if over_tcp:
        return dns.query.tcp(q, "127.0.0.1", port=port, timeout=timeout, source=source)
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=timeout, source=source)


def test_dnsdist_in_front_the_daemon_sees_and_serves_the_real_clients(lab, tmp_path):
    dnsdist = installed("dnsdist", "dnsdist")
    port, front = free_port(), free_port()
    d = Daemon(tmp_path / "d", lab, "--proxy-protocol-port", str(port), "--allow",
               "127.0.0.2/32", "--allow", "127.0.0.10/31", "--allow", "127.0.0.12/31",
               "--log-queries", port=port)
    d.start()
    conf = tmp_path / "dnsdist.conf"
    conf.write_text(f'setLocal("127.0.0.1:{front}")\n'
                    'setACL({"127.0.0.0/8"})\n'
                    f'newServer({{address="127.0.0.1:{port}", useProxyProtocol=true}})\n'
                    'getServer(0):setUp()\n')
    proxy = subprocess.Popen([dnsdist, "--supervised", "--disable-syslog", "-C", str(conf)],
                             stdin=subprocess.DEVNULL, stdout=open(tmp_path / "dnsdist.log", "wb"),
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = from_address("127.0.0.2", query(), front, timeout=0.5)
                break
            except (dns.exception.Timeout, OSError):
                assert proxy.poll() is None, (tmp_path / "dnsdist.log").read_text()
                assert time.monotonic() < deadline, "dnsdist did not answer"
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
        stop_process(proxy, 10, group=True)
        d.stop()


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
