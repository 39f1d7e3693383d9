"""``access-control`` as Unbound's: the daemon and the real Unbound with the same lines,
asked from several loopback addresses with RD set and clear, give the same rcodes (the
longest prefix decides: a refusal inside an allowed network, an allow inside that, snooping
for one address); Unbound's actions corenet has not are refused with a message."""
from __future__ import annotations

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from ci_policy import installed
from daemon_proc import Daemon, cli
from dnslab.ports import pick_port
from procs import stop as stop_process

LINES = ["127.0.0.0/8 allow", "127.0.1.0/24 refuse", "127.0.1.8/29 allow",
         "127.0.2.2/32 allow_snoop", "127.0.3.0/24 allow_setrd"]
#: (client address, RD) asked of both
ASKED = [(src, rd) for src in ("127.0.0.1", "127.0.0.5", "127.0.1.1", "127.0.1.9",
                                "127.0.2.2", "127.0.2.3", "127.0.3.3") for rd in (True, False)]
LOCAL = ('local-zone: "test." static', 'local-data: "www.test. A 192.0.2.1"')


def ask(port: int, source: str, rd: bool, name: str) -> int:
    q = dns.message.make_query(name, "A")
    if not rd:
        q.flags &= ~dns.flags.RD
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=5, source=source).rcode()


def test_the_same_rcodes_as_unbound_for_the_same_lines(lab, tmp_path):
    from dnslab.unbound import local_unbound

    installed("unbound", "unbound")
    w = tmp_path / "unbound"
    w.mkdir()
    uport = pick_port(["127.0.0.1"])
    proc = local_unbound(w, uport, [*(f"access-control: {line}" for line in LINES), *LOCAL])
    conf = tmp_path / "corenet-resolver.toml"
    conf.write_text(f"access-control = {LINES!r}\n".replace("'", '"') +
                    'local-zone = ["test. static"]\nlocal-data = ["www.test. A 192.0.2.1"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf))
    try:
        d.start()
        assert d.ask("www.example.com").answer          # in the cache: a snooper may read it
        for name in ("www.test.", "www.example.com."):
            theirs = [ask(uport, src, rd, name) for src, rd in ASKED]
            ours = [ask(d.port, src, rd, name) for src, rd in ASKED]
            if name == "www.test.":                     # Unbound holds no lab: local only
                assert ours == theirs, list(zip(ASKED, ours, theirs))
            refused = [a for a, r in zip(ASKED, ours) if r == dns.rcode.REFUSED]
            assert ("127.0.1.1", True) in refused and ("127.0.1.9", True) not in refused
            assert ("127.0.0.5", True) not in refused and ("127.0.3.3", True) not in refused
        # RD clear for a cached name: only the snooper, as Unbound's allow_snoop
        assert ask(d.port, "127.0.2.2", False, "www.example.com.") == dns.rcode.NOERROR
        assert ask(d.port, "127.0.2.3", False, "www.example.com.") == dns.rcode.REFUSED
    finally:
        d.stop()
        stop_process(proc, 5.0, group=True)


@pytest.mark.parametrize("line, said", [
    ("10.0.0.0/8 deny", "action deny is not supported"),
    ("10.0.0.0/8 refuse_non_local", "action refuse_non_local is not supported"),
    ("10.0.0.0/8 permit", "unknown action 'permit'"),
    ("10.0.0.0/33 allow", "is not an address or CIDR network"),
    ("10.1.0.0/8 allow", "has host bits set; the network is 10.0.0.0/8"),
    ("10.0.0.0/8", "expected \"NETBLOCK ACTION\""),
])
def test_what_corenet_has_not_is_an_error_that_says_so(tmp_path, line, said):
    conf = tmp_path / "c.toml"
    conf.write_text(f'access-control = ["{line}"]\n')
    r = cli("checkconf", str(conf))
    assert r.returncode == 2 and said in r.stderr and f"{conf}:1:" in r.stderr, r.stderr


@pytest.mark.parametrize("value, said", [
    ('["127.0.0.1/8"]', "has host bits set; the network is 127.0.0.0/8 (or write 127.0.0.1"),
    ('["2001:db8::1/32"]', "the network is 2001:db8::/32"),
    ('["not-a-net"]', "is not an address or CIDR network"),
    ('127', "expected a list, got 127"),
])
def test_allow_networks_are_checked_as_written(tmp_path, value, said):
    conf = tmp_path / "c.toml"
    conf.write_text(f"allow = {value}\n")
    r = cli("checkconf", str(conf))
    assert r.returncode == 2 and said in r.stderr, r.stderr


@pytest.mark.parametrize("value", ['"127.0.0.0/8"', '["127.0.0.1", "::1", "10.0.0.0/8"]'])
def test_allow_takes_one_network_as_a_string_or_a_list(tmp_path, value):
    conf = tmp_path / "c.toml"
    conf.write_text(f"allow = {value}\n")
    r = cli("checkconf", str(conf))
    assert r.returncode == 0, r.stderr
