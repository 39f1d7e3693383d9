"""The daemon's zones as an operator runs them: ``corenet-resolver serve --config`` in a
subprocess against the lab, with local, forward and stub zones, reloaded by SIGHUP and by
the ``reload`` command without losing the cache."""
from __future__ import annotations

import os
import signal
import time

import dns.flags
import dns.message
import dns.rcode

from daemon_proc import Daemon, cli
from dnslab import zones as Z

CONFIG = """\
local-data = ["printer.home. 120 A 10.0.0.5"]
local-data-ptr = ["10.0.0.5 printer.home."]

[[local-zone]]
name = "lan."
type = "static"
local-data = ["lan. SOA ns.lan. admin.lan. 1 3600 600 86400 120",
              "router.lan. 60 A {router}"]

[[local-zone]]
name = "denied.test."
type = "deny"

[[local-zone]]
name = "refused.test."
type = "refuse"
{forward}
[[stub-zone]]
name = "example.net."
stub-addr = ["{net}"]
"""

FORWARD = """
[[forward-zone]]
name = "example.com."
forward-addr = ["{addr}@{port}"]
"""


def write(path, lab, router: str, forward: bool = True) -> None:
    fwd = FORWARD.format(addr=Z.EXAMPLE_COM_1, port=lab.port) if forward else ""
    path.write_text(CONFIG.format(router=router, forward=fwd, net=Z.EXAMPLE_NET))


def a_records(resp) -> set[str]:
    return {rd.to_text() for rrset in resp.answer for rd in rrset}


def wait_for(check, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout}s")
        time.sleep(0.1)


def test_daemon_zones_answer_and_reload_keeps_the_cache(lab, tmp_path):
    conf = tmp_path / "resolver.toml"
    write(conf, lab, "192.168.1.1")
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        # local zones, over UDP and TCP
        resp = d.ask("router.lan.")
        assert a_records(resp) == {"192.168.1.1"} and resp.flags & dns.flags.AA
        assert a_records(d.ask("router.lan.", tcp=True)) == {"192.168.1.1"}
        assert d.ask("nothing.lan.").rcode() == dns.rcode.NXDOMAIN
        assert d.ask("x.refused.test.").rcode() == dns.rcode.REFUSED
        assert a_records(d.ask("printer.home.")) == {"10.0.0.5"}
        assert a_records(d.ask("5.0.0.10.in-addr.arpa.", "PTR")) == {"printer.home."}
        deny = dns.message.make_query("x.denied.test.", "A")
        assert d.raw_udp(deny.to_wire(), timeout=1.0) is None          # dropped (counted)
        engine = d.stats()["engine"]
        assert engine["local_answers"] == 7 and engine["upstream_queries"] == 0
        # a forward zone (one query to its server) and a stub zone (one to its authority)
        assert a_records(d.ask("www.example.com.")) == {"192.0.2.1", "192.0.2.11"}
        assert a_records(d.ask("www.example.net.")) == {"198.51.100.1"}
        engine = d.stats()["engine"]
        assert engine["forwarded"] == 1 and engine["stubbed"] == 1
        assert engine["upstream_queries"] == 2
        metrics = d.metrics()
        assert "corenet_resolver_local_zone_answers_total 7" in metrics
        assert 'corenet_resolver_zone_resolutions_total{zone="forward"} 1' in metrics
        # something resolved from the root, to find in the cache after the reloads
        assert a_records(d.ask("h007.bulk.net.")) == {"10.1.0.7"}
        sent = d.stats()["engine"]["upstream_queries"]

        # SIGHUP: the local data changes, the forward zone goes away, the cache stays
        write(conf, lab, "192.168.1.2", forward=False)
        os.kill(d.pid, signal.SIGHUP)
        wait_for(lambda: a_records(d.ask("router.lan.")) == {"192.168.1.2"},
                 "the reloaded local data answers")
        assert a_records(d.ask("h007.bulk.net.")) == {"10.1.0.7"}
        assert d.stats()["engine"]["upstream_queries"] == sent         # a cache hit
        assert a_records(d.ask("www.example.com.")) == {"192.0.2.1", "192.0.2.11"}
        engine = d.stats()["engine"]
        assert engine["forwarded"] == 1 and engine["upstream_queries"] > sent + 1

        # `reload` with a broken record: refused with the reason, the old zones stay
        conf.write_text(conf.read_text().replace('"printer.home. 120 A 10.0.0.5"',
                                                 '"printer.home. A not-an-address"'))
        r = cli("reload", "--control", d.control)
        assert r.returncode != 0 and "printer.home." in (r.stderr + r.stdout)
        assert a_records(d.ask("printer.home.")) == {"10.0.0.5"}
        # `reload` with a good one
        write(conf, lab, "192.168.1.3", forward=True)
        r = cli("reload", "--control", d.control)
        assert r.returncode == 0, r.stderr
        assert a_records(d.ask("router.lan.")) == {"192.168.1.3"}
        assert d.alive()
    finally:
        d.stop()


def test_bad_zone_config_stops_the_daemon_before_it_binds(lab, tmp_path):
    conf = tmp_path / "bad.toml"
    conf.write_text('[[forward-zone]]\nname = "corp."\nforward-addr = ["corp-dns.example"]\n')
    r = cli("serve", "--config", str(conf), "--listen", "127.0.0.1:0", timeout=30)
    assert r.returncode == 2
    assert "forward-zone corp." in r.stderr and "corp-dns.example" in r.stderr


def test_the_sample_zones_config_loads():
    from pathlib import Path

    from resolver.daemon import config

    sample = Path(__file__).resolve().parents[2] / "docs" / "zones-example.toml"
    cfg = config.build(str(sample))
    zones = config.make_zones(cfg)
    # Unbound's 104 default zones but home.arpa, which the sample configures; the records
    # given alone (2 and a PTR) and inside the home.arpa. and ads.example. zones (3 and 1)
    assert zones.describe() == ("3 forward, 1 stub, 106 local zones (103 default), "
                                "7 local-data records")
    assert zones.local_zones.lookup(b"\x06router\x04home\x04arpa\x00", 1)[1][0][4] == \
        bytes([192, 168, 1, 1])
    assert zones.match(b"\x01x\x08tcp-only\x04corp\x07example\x00").zone.transport == "tcp"
    tls = zones.match(b"\x03www\x07partner\x07example\x00")
    assert tls.zone.transport == "tls" and tls.tls == {
        "192.0.2.56@853#dns.partner.example": ("dns.partner.example", None, False),
        "192.0.2.57@853#dns.partner.example": ("dns.partner.example", None, False)}


def test_reload_reaches_every_worker(lab, tmp_path):
    """With two workers (two caches), SIGHUP to the parent changes the local data of both:
    twenty queries from fresh source ports all get the new answer."""
    conf = tmp_path / "resolver.toml"
    write(conf, lab, "192.168.1.1")
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--workers", "2").start()
    try:
        assert all(a_records(d.ask("router.lan.")) == {"192.168.1.1"} for _ in range(10))
        write(conf, lab, "192.168.1.9")
        os.kill(d.pid, signal.SIGHUP)
        wait_for(lambda: all(a_records(d.ask("router.lan.")) == {"192.168.1.9"}
                             for _ in range(20)), "every worker answers the new data")
        assert d.stats()["engine"]["local_answers"] >= 30
    finally:
        d.stop()
