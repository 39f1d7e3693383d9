"""Response policy zones in the daemon as an operator runs them: a policy zone transferred
from a real NSD primary on loopback, answers per policy over UDP and TCP, the zone changed
on the primary and picked up on its refresh timer without a restart, and ``reload`` adding
and removing ``[[rpz]]`` zones; cached answers no trigger touches leaving by the door's hit
path, and a zone that triggers on a cached name applying to it once reloaded."""
from __future__ import annotations

import re
import time

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from daemon_proc import Daemon, cli
from dnslab.nsd import NSD_CONTROL, NsdServer
from ports import pick_port
from procs import reap  # noqa: F401  (NsdServer stops through it)

POLICY = """$TTL 60
@ SOA ns.rpz.test. hostmaster.rpz.test. {serial} 1 1 86400 30
@ NS ns.rpz.test.
{records}"""

V1 = """www.example.com CNAME .
*.wild.example.com CNAME *.
local.example.com A 10.9.9.9
redirect.example.com CNAME www.example.net.
drop.example.com CNAME rpz-drop.
tcp.example.com CNAME rpz-tcp-only.
32.25.2.0.192.rpz-ip CNAME .
*.z001.org.rpz-nsdname CNAME .
32.13.0.0.127.rpz-nsip CNAME *.
"""
# www.example.com unblocked, v4only.example.com blocked
V2 = V1.replace("www.example.com CNAME .\n", "v4only.example.com CNAME .\n")

CONFIG = """\
log-queries = true

[limits]
rpz-min-refresh = 1
{first}
[[rpz]]
name = "rpz.test."
primary = ["127.0.0.1@{port}"]
rpz-log = true
rpz-log-name = "feed"
"""
FIRST = """
[[rpz]]
name = "local.rpz."
zonefile = "{path}"
"""


class Primary(NsdServer):
    """NSD serving the policy zone, with transfers allowed to 127.0.0.1 and IXFR made from
    each new version of the zone file."""

    def write_files(self):
        path = super().write_files()
        path.write_text(path.read_text() + "  provide-xfr: 127.0.0.1 NOKEY\n"
                        "  store-ixfr: yes\n  create-ixfr: yes\n")
        return path

    def transfers(self) -> dict[str, int]:
        """Transfer requests received, by type (NSD's ``num.type.AXFR``/``IXFR``)."""
        import subprocess
        r = subprocess.run([NSD_CONTROL, "-c", str(self.workdir / "nsd.conf"),
                            "stats_noreset"], capture_output=True, text=True, timeout=10)
        out = {"AXFR": 0, "IXFR": 0}
        for line in r.stdout.splitlines():           # NSD names them by number
            key, _, value = line.partition("=")
            if key in ("num.type.TYPE252", "num.type.TYPE251"):
                out["AXFR" if key.endswith("252") else "IXFR"] = int(value)
        return out

    def publish(self, text: str) -> None:
        import subprocess
        (self.workdir / "zone000.zone").write_text(text)
        r = subprocess.run([NSD_CONTROL, "-c", str(self.workdir / "nsd.conf"), "reload"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r.stderr or r.stdout


def addresses(resp) -> set[str]:
    return {rd.to_text() for rrset in resp.answer for rd in rrset
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)}


def wait_for(check, what: str, d: Daemon, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout}s:\n{d.log_text()[-3000:]}")
        time.sleep(0.2)


def hits_by_the_door(d: Daemon) -> dict:
    """Asks the cached www.example.com over UDP and TCP: both answered by the door's hit
    path (one TCP fast hit, the engine reads each query once: the door's read, no policy
    parse). The stats after."""
    before = d.stats()
    for tcp in (False, True):
        assert addresses(d.ask("www.example.com.", tcp=tcp)) == {"192.0.2.1", "192.0.2.11"}
    after = d.stats()
    assert after["tcp"]["fast_hits"] - before["tcp"]["fast_hits"] == 1
    assert after["engine"]["cache_hits"] - before["engine"]["cache_hits"] == 2
    assert after["engine"]["query_parses"] - before["engine"]["query_parses"] == 2
    return after


@pytest.fixture
def primary(tmp_path):
    port = pick_port(["127.0.0.1"], low=31000)
    p = Primary(tmp_path / "nsd", "127.0.0.1", port,
                {"rpz.test.": POLICY.format(serial=1, records=V1)}, control=True)
    p.start()
    try:
        deadline = time.monotonic() + 10
        while not p.probe():
            assert p.failure() is None, p.failure()
            assert time.monotonic() < deadline, "nsd did not answer"
            time.sleep(0.1)
        yield p
    finally:
        p.signal_stop()
        p.wait_stopped(time.monotonic() + 10)


def test_policy_from_a_primary_applied_refreshed_and_reloaded(lab, primary, tmp_path):
    conf = tmp_path / "resolver.toml"
    conf.write_text(CONFIG.format(first="", port=primary.port))
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        wait_for(lambda: "rpz rpz.test.: 9 triggers" in d.log_text(), "the zone transferred", d)
        # QNAME trigger: NXDOMAIN, over UDP and TCP, no AD, the policy zone's SOA
        for tcp in (False, True):
            r = d.ask("www.example.com.", tcp=tcp)
            assert r.rcode() == dns.rcode.NXDOMAIN and not r.flags & dns.flags.AD
            assert r.authority and r.authority[0].name.to_text() == "rpz.test."
        assert re.search(r"rpz: applied \[feed\] www\.example\.com\. nxdomain "
                         r"www\.example\.com\. A 127\.0\.0\.1@qname", d.log_text())
        r = d.ask("x.wild.example.com.")                     # wildcard, NODATA
        assert r.rcode() == dns.rcode.NOERROR and not r.answer
        assert addresses(d.ask("local.example.com.")) == {"10.9.9.9"}     # local data
        r = d.ask("redirect.example.com.")                  # CNAME rewrite, resolved
        assert r.answer[0].rdtype == dns.rdatatype.CNAME
        assert r.answer[0][0].target.to_text() == "www.example.net."
        assert addresses(r) == {"198.51.100.1"} and r.rcode() == dns.rcode.NOERROR
        # the query log shows the client's question, not the target asked for it
        assert "info: 127.0.0.1 redirect.example.com. A IN" in d.log_text()
        assert " www.example.net. A IN" not in d.log_text()
        drop = dns.message.make_query("drop.example.com.", "A")
        assert d.raw_udp(drop.to_wire(), timeout=1.0) is None          # DROP
        r = d.ask("tcp.example.com.")                        # TCP-only: TC over UDP
        assert r.flags & dns.flags.TC and not r.answer
        # response IP: mail.example.com is 192.0.2.25, blocked by address (also once cached)
        for _ in range(2):
            assert d.ask("mail.example.com.").rcode() == dns.rcode.NXDOMAIN
        assert addresses(d.ask("v4only.example.com.")) == {"192.0.2.2"}   # untouched
        # NSDNAME: z001.org's server is ns.z001.org; NSIP: bulk.net's is at 127.0.0.13
        assert d.ask("www.z001.org.").rcode() == dns.rcode.NXDOMAIN
        assert addresses(d.ask("www.z002.org.")) == {"10.2.0.2"}
        r = d.ask("h001.bulk.net.")
        assert r.rcode() == dns.rcode.NOERROR and not r.answer
        assert "*.z001.org.rpz-nsdname nxdomain www.z001.org. A 127.0.0.1@nsdname" \
            in d.log_text()
        s = d.stats()
        m = s["rpz"]["matches"]["rpz.test."]
        assert m["nxdomain"] == 5 and m["nodata"] == 2 and m["drop"] == 1
        assert m["local-data"] == 1 and m["cname"] == 1 and m["tcp-only"] == 1
        assert s["rpz"]["zones"]["rpz.test."]["serial"] == 1
        metrics = d.metrics()
        assert 'corenet_resolver_rpz_matches_total{zone="rpz.test.",action="nxdomain"} 5' \
            in metrics

        # the primary's zone changes: picked up on the refresh timer, no restart
        primary.publish(POLICY.format(serial=2, records=V2))
        wait_for(lambda: d.ask("v4only.example.com.").rcode() == dns.rcode.NXDOMAIN,
                 "the changed policy", d)
        r = d.ask("www.example.com.")          # unblocked: resolves normally, not a cached NXDOMAIN
        assert r.rcode() == dns.rcode.NOERROR and addresses(r) == {"192.0.2.1", "192.0.2.11"}
        assert d.stats()["rpz"]["zones"]["rpz.test."]["serial"] == 2
        # the first transfer was AXFR; the refreshes ask IXFR from the serial held
        xfr = primary.transfers()
        assert xfr["AXFR"] == 1 and xfr["IXFR"] >= 1, xfr

        # reload adds a zone (first in order: it wins) ...
        local = tmp_path / "local.rpz"
        local.write_text(POLICY.format(serial=1, records="v4only.example.com CNAME rpz-passthru.\n"))
        conf.write_text(CONFIG.format(first=FIRST.format(path=local), port=primary.port))
        r = cli("reload", "--control", d.control)
        assert r.returncode == 0, r.stderr
        assert addresses(d.ask("v4only.example.com.")) == {"192.0.2.2"}
        assert d.stats()["rpz"]["matches"]["local.rpz."]["passthru"] == 1
        # ... and removes them all: the path without policy
        conf.write_text("")
        r = cli("reload", "--control", d.control)
        assert r.returncode == 0, r.stderr
        assert addresses(d.ask("v4only.example.com.")) == {"192.0.2.2"}
        assert addresses(d.ask("mail.example.com.")) == {"192.0.2.25"}
        assert d.stats()["rpz"]["zones"] == {}
    finally:
        d.stop()


def test_cached_answers_leave_by_the_door_and_a_later_policy_applies_to_them(lab, tmp_path):
    """With a policy zone from a file: a cached answer no trigger touches leaves by the
    door's hit path (the TCP fast hits count it, the engine reads the query once: the door's
    read, no policy parse); a CNAME chain's answer goes to the policy; then the zone,
    changed to trigger on the cached name, is read again on reload and applies to it."""
    zone = tmp_path / "local.rpz"
    zone.write_text(POLICY.format(serial=1, records="elsewhere.example.org CNAME .\n"
                                                   "*.wild.example.org CNAME .\n"))
    conf = tmp_path / "resolver.toml"
    conf.write_text(FIRST.format(path=zone))
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        for name in ("www.example.com.", "xalias.example.com.", "alias.example.com."):
            assert addresses(d.ask(name))               # a miss: cached
        assert d.ask("a.wild.example.org.").rcode() == dns.rcode.NXDOMAIN   # the policy is on
        after = hits_by_the_door(d)
        # a CNAME chain through untouched names: a door hit too
        r = d.ask("xalias.example.com.", tcp=True)
        assert r.answer[0].rdtype == dns.rdatatype.CNAME
        chained = d.stats()
        assert chained["tcp"]["fast_hits"] - after["tcp"]["fast_hits"] == 1
        assert after["rpz"]["matches"] == {"local.rpz.": {"nxdomain": 1}}

        # the zone now triggers on the cached name (and passes another through, counted)
        zone.write_text(POLICY.format(serial=2, records="www.example.com CNAME .\n"
                                                       "v4only.example.com CNAME rpz-passthru.\n"
                                                       "32.25.2.0.192.rpz-ip CNAME .\n"))
        assert addresses(d.ask("v4only.example.com.")) == {"192.0.2.2"}      # cached
        assert addresses(d.ask("mail.example.com.")) == {"192.0.2.25"}       # cached
        r = cli("reload", "--control", d.control)
        assert r.returncode == 0, r.stderr
        for tcp in (False, True):
            r = d.ask("www.example.com.", tcp=tcp)
            assert r.rcode() == dns.rcode.NXDOMAIN and not r.answer
        assert addresses(d.ask("v4only.example.com.")) == {"192.0.2.2"}
        assert d.ask("mail.example.com.").rcode() == dns.rcode.NXDOMAIN     # its address
        s = d.stats()
        assert s["rpz"]["matches"]["local.rpz."] == {"nxdomain": 4, "passthru": 1}
        assert s["tcp"]["fast_hits"] == chained["tcp"]["fast_hits"]
        # a cached chain into the triggered name is no door hit now
        d.ask("alias.example.com.", tcp=True)
        assert d.stats()["tcp"]["fast_hits"] == chained["tcp"]["fast_hits"]
    finally:
        d.stop()


def test_client_ip_and_ns_triggers_act_on_cached_names_and_spare_the_rest(lab, tmp_path):
    """A policy of client-IP, NSDNAME and NSIP triggers alone: a cached name whose servers
    none meets, asked by a client outside the client-IP network, leaves by the door's hit
    path over UDP (the C listener) and TCP; the client the network holds (127.0.0.2, over
    UDP and TCP) and the cached names whose servers trigger get the policy's actions."""
    zone = tmp_path / "local.rpz"
    zone.write_text(POLICY.format(serial=1, records="32.2.0.0.127.rpz-client-ip CNAME .\n"
                                                   "*.z001.org.rpz-nsdname CNAME .\n"
                                                   "32.13.0.0.127.rpz-nsip CNAME *.\n"))
    conf = tmp_path / "resolver.toml"
    conf.write_text(FIRST.format(path=zone))
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        assert addresses(d.ask("www.example.com.")) == {"192.0.2.1", "192.0.2.11"}  # cached
        after = hits_by_the_door(d)
        assert after["rpz"]["matches"] == {}
        # the client the client-IP network holds: NXDOMAIN for the same cached name
        q = dns.message.make_query("www.example.com.", "A")
        r = dns.query.udp(q, "127.0.0.1", port=d.port, source="127.0.0.2", timeout=8)
        assert r.rcode() == dns.rcode.NXDOMAIN
        r = dns.query.tcp(q, "127.0.0.1", port=d.port, source="127.0.0.2", timeout=8)
        assert r.rcode() == dns.rcode.NXDOMAIN
        # NSDNAME (z001.org's server ns.z001.org), NSIP (bulk.net's at 127.0.0.13): a miss,
        # then from the cache, over UDP and TCP
        for tcp in (False, False, True):
            assert d.ask("www.z001.org.", tcp=tcp).rcode() == dns.rcode.NXDOMAIN
            r = d.ask("h001.bulk.net.", tcp=tcp)
            assert r.rcode() == dns.rcode.NOERROR and not r.answer
        s = d.stats()
        assert s["rpz"]["matches"]["local.rpz."] == {"nxdomain": 5, "nodata": 3}
        assert s["tcp"]["fast_hits"] == after["tcp"]["fast_hits"]
    finally:
        d.stop()


def test_a_transferred_zone_is_made_into_triggers_off_the_loop(primary, monkeypatch):
    """A transfer brings the records in on the loop, a message at a time, and makes them
    into triggers in a thread: the loop goes on answering meanwhile (a zone of 10,000 rules
    takes about a fifth of a second to make). The zone made is the one applied."""
    import asyncio
    import threading

    from resolver.daemon import rpz_feed
    from resolver.daemon.rpz_feed import Feed, RpzSource
    from resolver.limits import DEFAULT
    from resolver.policy.rpz import NXDOMAIN

    made_in: list[int] = []
    make = rpz_feed.policy_zone

    def recorded(*args):
        made_in.append(threading.get_ident())
        return make(*args)
    monkeypatch.setattr(rpz_feed, "policy_zone", recorded)
    changed: list[int] = []
    feed = Feed(RpzSource("rpz.test.", primaries=(("127.0.0.1", primary.port),)), DEFAULT,
                lambda: changed.append(1))

    async def transfer() -> bool:
        return await feed.transfer()
    assert asyncio.run(transfer()) is True
    assert made_in and threading.get_ident() not in made_in, made_in
    assert changed == [1] and feed.zone is not None and feed.zone.serial == 1
    rule, _ = feed.zone.qname_rule(dns.name.from_text("www.example.com."))
    assert rule.action == NXDOMAIN


def test_a_transfer_asked_for_and_a_zone_disabled_until_the_config_is_read_again(
        lab, primary, tmp_path):
    """``auth_zone_transfer`` brings the primary's new version at once, though the zone's
    refresh timer is an hour away; ``rpz_disable`` lasts through other runtime changes
    (``local_data``) and ends when the config file is read again (``reload``)."""
    slow = POLICY.replace("{serial} 1 1 86400 30", "{serial} 3600 3600 86400 30")
    primary.publish(slow.format(serial=10, records=V1))
    conf = tmp_path / "resolver.toml"
    conf.write_text(CONFIG.format(first="", port=primary.port).replace(
        "rpz-min-refresh = 1", "rpz-min-refresh = 600"))
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        wait_for(lambda: "(serial 10)" in d.log_text(), "the zone transferred", d)
        assert d.ask("www.example.com.").rcode() == dns.rcode.NXDOMAIN
        primary.publish(slow.format(serial=11, records=V2))
        time.sleep(1.0)                          # the timer is far: nothing moves ...
        assert d.stats()["rpz"]["zones"]["rpz.test."]["serial"] == 10
        r = cli("auth_zone_transfer", "rpz.test.", "--control", d.control)
        assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
        wait_for(lambda: d.stats()["rpz"]["zones"]["rpz.test."]["serial"] == 11,
                 "the transfer asked for", d)       # ... until asked
        assert d.ask("v4only.example.com.").rcode() == dns.rcode.NXDOMAIN

        assert cli("rpz_disable", "rpz.test", "--control", d.control).returncode == 0
        assert addresses(d.ask("v4only.example.com.")) == {"192.0.2.2"}
        r = cli("local_data", "extra.test. 60 A 192.0.2.77", "--control", d.control)
        assert r.returncode == 0, r.stdout + r.stderr
        assert addresses(d.ask("v4only.example.com.")) == {"192.0.2.2"}   # still off
        assert cli("reload", "--control", d.control).returncode == 0
        assert d.ask("v4only.example.com.").rcode() == dns.rcode.NXDOMAIN  # on again
    finally:
        d.stop()
