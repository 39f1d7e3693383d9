"""``edns-tcp-keepalive`` (RFC 7828), side by side with a real Unbound given the same
option: a TCP connection whose client sends the empty keepalive option gets it back with the
keepalive timeout in 100 ms units, on that answer and every later one of the connection;
UDP never; the option with a value is FORMERR; a connection that did not ask is not told.
Here the connection that asked stays open for that timeout where others close after
``tcp-idle-timeout`` (Unbound gives every connection the keepalive timeout)."""
from __future__ import annotations

import os
import shutil
import socket
import time

import dns.edns
import dns.message
import dns.query
import dns.rcode
import pytest

from ci_policy import unavailable
from daemon_proc import Daemon, answer_or_shut, frame, read_frame
from dnslab.unbound import local_unbound
from ports import free_port
from procs import stop as stop_process
from resolver.daemon import unbound_conf

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
KEEPALIVE = 11
ZONE = ('local-zone: "ka.test." static', 'local-data: "ka.test. TXT kept"')
ACL = ("127.0.0.0/8 allow", "127.0.0.2/32 refuse", "127.0.0.3/32 deny")


def query(option: bytes | None = None, edns: bool = True) -> bytes:
    options = [] if option is None else [dns.edns.GenericOption(KEEPALIVE, option)]
    q = dns.message.make_query("ka.test.", "TXT", use_edns=0 if edns else False,
                               options=options)
    q.id = 4242
    return q.to_wire()


def keepalive_of(wire: bytes) -> bytes | None:
    """The data of the answer's keepalive option, or None when it has none."""
    for o in dns.message.from_wire(wire).options:
        if o.otype == KEEPALIVE:
            return o.to_wire()
    return None


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    s.settimeout(5)
    return s


def ask(s: socket.socket, q: bytes) -> bytes:
    s.sendall(frame(q))
    got = read_frame(s)
    assert got is not None
    return got


@pytest.fixture
def both(lab, tmp_path):
    """The TCP ports of a real Unbound and of the daemon, each with edns-tcp-keepalive on and
    its timeout at 6 s; the daemon's tcp-idle-timeout is 2 s."""
    if not os.path.exists(UNBOUND):
        unavailable(f"{UNBOUND} is missing (Debian package 'unbound')")
    uport = free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, ["edns-tcp-keepalive: yes",
                                    "edns-tcp-keepalive-timeout: 6000", *ZONE,
                                    *(f"access-control: {a}" for a in ACL)])
    conf = tmp_path / "keepalive.toml"
    conf.write_text('local-data = ["ka.test. 3600 TXT kept"]\nedns-tcp-keepalive = true\n'
                    "edns-tcp-keepalive-timeout = 6.0\ntcp-idle-timeout = 2.0\n"
                    f"access-control = {list(ACL)!r}\n".replace("'", '"'))
    try:
        d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    except BaseException:
        stop_process(proc, 5.0, group=True)
        raise
    yield {"unbound": uport, "corenet": d.port}
    stop_process(proc, 5.0, group=True)
    assert d.stop() == 0, d.log_text()[-2000:]


def test_the_option_is_answered_as_unbound_answers_it(both):
    told = (60).to_bytes(2, "big")                  # 6 s in units of 100 ms
    seen = {}
    for who, port in both.items():
        with connect(port) as s:
            assert keepalive_of(ask(s, query())) is None, who          # not asked: not told
            assert keepalive_of(ask(s, query(b""))) == told, who
            assert keepalive_of(ask(s, query())) == told, who          # from then on, always
            assert dns.message.from_wire(ask(s, query(edns=False))).edns < 0, who
        with connect(port) as s:
            bad = ask(s, query(b"\x00\x64"))                           # a value: FORMERR
            assert dns.message.from_wire(bad).rcode() == dns.rcode.FORMERR, who
            assert keepalive_of(ask(s, query())) is None, who          # and not kept alive
        seen[who] = bad
        udp = dns.query.udp(dns.message.from_wire(query(b"")), "127.0.0.1", port=port,
                            timeout=5)
        assert udp.rcode() == dns.rcode.NOERROR and keepalive_of(udp.to_wire()) is None, who
    assert seen["corenet"] == seen["unbound"]          # the same FORMERR, byte for byte


def test_the_access_control_answers_first(both):
    """A refused client gets REFUSED for the option with a value, not FORMERR, and no
    keepalive; a denied one gets nothing: the ACL comes before the option, as Unbound's."""
    for who, port in both.items():
        with connect(port, "127.0.0.2") as s:
            got = ask(s, query(b"\x00\x64"))
            assert dns.message.from_wire(got).rcode() == dns.rcode.REFUSED, who
            assert keepalive_of(ask(s, query(b""))) is None, who
        with connect(port, "127.0.0.3") as s:
            s.settimeout(1.0)
            assert answer_or_shut_or_silent(s, frame(query(b"\x00\x64"))) is None, who


def answer_or_shut_or_silent(s: socket.socket, data: bytes) -> bytes | None:
    """The answer to ``data``, or None when the server shuts the connection or says nothing
    within the socket's timeout."""
    try:
        return answer_or_shut(s, data)
    except socket.timeout:
        return None


def test_a_connection_that_asked_outlives_the_idle_timeout(both):
    port = both["corenet"]
    with connect(port) as kept, connect(port) as plain:
        assert keepalive_of(ask(kept, query(b""))) is not None
        assert keepalive_of(ask(plain, query())) is None
        time.sleep(3.5)                 # past tcp-idle-timeout (2 s), within the keepalive
        assert answer_or_shut(plain, frame(query())) is None
        assert keepalive_of(ask(kept, query())) is not None
        time.sleep(7.5)                 # past the keepalive timeout (6 s) too
        assert answer_or_shut(kept, frame(query())) is None


def test_off_by_default_and_carried_over_from_unbound_conf(lab, tmp_path):
    plain = tmp_path / "plain.toml"
    plain.write_text('local-data = ["ka.test. 3600 TXT kept"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(plain)).start()
    try:
        with connect(d.port) as s:
            assert keepalive_of(ask(s, query(b""))) is None
            assert dns.message.from_wire(ask(s, query(b"\x00\x64"))).answer   # not checked
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n    edns-tcp-keepalive: yes\n"
                    "    edns-tcp-keepalive-timeout: 30000\n")
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert conv.settings == {"edns-tcp-keepalive": True, "edns-tcp-keepalive-timeout": 30.0}
    assert not conv.unmapped, conv.report()


def test_over_tls_too(lab, tmp_path):
    """DNS over TLS answers it as TCP does (kdig's empty option; Unbound's default
    timeout, 120 s: 1200 units); padded answers have it inside the padding."""
    import subprocess

    from test_daemon_dot import start_dot, tool
    from tls_certs import SERVER_NAME
    d = start_dot(tmp_path, lab, edns_tcp_keepalive="true",
                  local_data='["ka.test. 3600 TXT kept"]')
    try:
        out = subprocess.run([tool("kdig"), "@127.0.0.1", "-p", str(d.tls_port), "+tls",
                              f"+tls-ca={d.ca.pem}", f"+tls-hostname={SERVER_NAME}",
                              "+ednsopt=11", "+padding", "+timeout=5", "+retry=0",
                              "ka.test.", "TXT"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and '"kept"' in out.stdout, out.stdout + out.stderr
        assert "Option (11): 04B0" in out.stdout, out.stdout
        assert "PADDING: " in out.stdout and "Received 468 B" in out.stdout, out.stdout
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
