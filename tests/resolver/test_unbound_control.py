"""Unbound's own ``unbound-control`` (Debian's package) driving corenet-resolver over the
control channel: Unbound's protocol (``UBCT1 COMMAND``, the text, the close) over TCP with
mutual TLS, over plain TCP and over the Unix socket; its exit status 1 on an ``error`` line.
And ``stats`` as Unbound prints it, read with unbound_exporter's parsing rules and compared
key by key with a real Unbound's ``stats_noreset``."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import pytest
from ci_policy import unavailable

from daemon_proc import Daemon, cli, udp_exchange
from ports import free_port
from dnslab import zones as Z
from dnslab.unbound import local_unbound
from procs import stop as stop_process
from tls_certs import CA

UNBOUND_CONTROL = shutil.which("unbound-control") or "/usr/sbin/unbound-control"
UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"


def need_unbound() -> None:
    for path in (UNBOUND_CONTROL, UNBOUND):
        if not os.path.exists(path):
            unavailable(f"{path} is missing (Debian package 'unbound')")


def control_conf(path: Path, interface: str, port: int | None = None,
                 certs: dict | None = None) -> Path:
    """An unbound.conf for unbound-control: its remote-control clause only."""
    lines = ["server:", '  chroot: ""', '  username: ""', "remote-control:",
             "  control-enable: yes", f"  control-interface: {interface}"]
    if port is not None:
        lines.append(f"  control-port: {port}")
    if certs is None:
        lines.append("  control-use-cert: no")
    else:
        lines += [f'  {k}: "{v}"' for k, v in certs.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def plain_control(port: int) -> tuple[str, ...]:
    """The remote-control clause of a ``local_unbound`` that unbound-control reaches over
    plain TCP on 127.0.0.1:``port``."""
    return ("control-enable: yes", "control-interface: 127.0.0.1", f"control-port: {port}",
            "control-use-cert: no")


def ubctl(conf: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """unbound-control with ``args`` (``input`` on its stdin; none: /dev/null)."""
    return subprocess.run([UNBOUND_CONTROL, "-c", str(conf), *args], capture_output=True,
                          text=True, timeout=30, input=input,
                          stdin=subprocess.DEVNULL if input is None else None)


def both_stats(ub: Path, d) -> tuple[dict[str, str], dict[str, str]]:
    """``stats_noreset`` of Unbound (its unbound-control config ``ub``) and of the daemon
    ``d``, each read with :func:`keys`: (Unbound's, corenet's)."""
    r = ubctl(ub, "stats_noreset")
    assert r.returncode == 0, r.stdout + r.stderr
    theirs = keys(r.stdout)
    r = cli("--control", d.control, "stats_noreset")
    assert r.returncode == 0, r.stderr
    return theirs, keys(r.stdout)


def keys(text: str) -> dict[str, str]:
    """``stats`` output read as unbound_exporter reads it: each line split on its first
    ``=``, the value a float."""
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        float(value)
        out[name] = value
    return out


def ask(port: int, name: str) -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=3)


# unbound_exporter's names (its unboundMetrics table): the keys a dashboard built on it reads
EXPORTER_KEYS = ("total.num.queries", "total.num.cachehits", "total.num.cachemiss",
                 "total.num.prefetch", "total.num.expired", "total.num.recursivereplies",
                 "total.requestlist.current.all", "total.recursion.time.avg",
                 "total.recursion.time.median", "time.up", "num.answer.rcode.NOERROR",
                 "num.answer.rcode.NXDOMAIN", "num.answer.rcode.SERVFAIL",
                 "num.query.type.A", "num.query.tcp", "unwanted.queries", "unwanted.replies",
                 "msg.cache.count", "rrset.cache.count", "thread0.num.queries",
                 "mem.mod.iterator", "mem.mod.validator", "mem.streamwait")


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict:
    """Keys as unbound-control-setup makes them: the server's self-signed certificate
    signs the control client's."""
    tmp = tmp_path_factory.mktemp("certs")
    ca = CA(tmp / "server", "unbound")
    server_pem, server_key = ca.self_signed()
    client_pem, client_key = ca.issue("unbound-control", purpose="client")
    return {"server-cert-file": server_pem, "server-key-file": server_key,
            "control-cert-file": client_pem, "control-key-file": client_key}


@pytest.mark.parametrize("workers", [1, 2])
def test_unbound_control_over_tls_drives_the_daemon(lab, tmp_path, certs, workers):
    need_unbound()
    port = free_port()
    conf = tmp_path / "resolver.toml"
    conf.write_text("control-enable = true\ncontrol-interface = [\"127.0.0.1\"]\n"
                    f"control-port = {port}\n"
                    + "".join(f'{k} = "{v}"\n' for k, v in certs.items())
                    + 'local-data = ["ub.test. 300 A 10.0.0.9"]\nextended-statistics = true\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--workers", str(workers))
    d.start(ready="ready: 2 workers" if workers == 2 else "ready")
    ub = control_conf(tmp_path / "unbound.conf", "127.0.0.1", port, certs)
    try:
        r = ubctl(ub, "status")
        assert r.returncode == 0, r.stdout + r.stderr
        lines = r.stdout.splitlines()
        assert [line.split(":")[0] for line in lines[:6]] == \
            ["version", "verbosity", "threads", "modules", "uptime", "options"]
        assert lines[2] == f"threads: {workers}"
        assert re.fullmatch(r"uptime: \d+ seconds", lines[4])
        assert "control(ssl)" in lines[5]
        assert re.fullmatch(rf"corenet-resolver \(pid {d.pid}\) is running\.\.\.", lines[-1])
        for _ in range(4):
            assert ask(d.port, "ub.test.").answer
        r = ubctl(ub, "stats_noreset")
        assert r.returncode == 0, r.stderr
        got = keys(r.stdout)
        assert int(got["total.num.queries"]) >= 4
        assert int(got["num.query.type.A"]) >= 4
        assert [k for k in got if k.startswith("thread") and k.endswith(".num.queries")] == \
            [f"thread{i}.num.queries" for i in range(workers)]
        r = ubctl(ub, "flush_zone", "ub.test.")
        assert r.returncode == 0
        assert re.fullmatch(r"ok removed \d+ rrsets, \d+ messages and \d+ key entries\n",
                            r.stdout), r.stdout
        r = ubctl(ub, "flush", "ub.test.")
        assert (r.returncode, r.stdout) == (0, "ok\n"), r.stdout + r.stderr
        r = ubctl(ub, "reload")
        assert (r.returncode, r.stdout) == (0, "ok\n"), r.stdout + r.stderr
        r = ubctl(ub, "get_option", "control-port")
        assert (r.returncode, r.stdout) == (0, f"{port}\n")
        # refusals: unbound-control prints the error line and exits 1
        r = ubctl(ub, "foo")
        assert (r.returncode, r.stdout) == (1, "error unknown command 'foo'\n")
        r = ubctl(ub, "flush_type", "ub.test.")
        assert (r.returncode, r.stdout) == \
            (1, "error could not find next argument after ub.test.\n"), r.stdout
        # the JSON lines of corenet's own command line still work beside it
        r = cli("-c", str(conf), "get_option", "control-port")
        assert (r.returncode, r.stdout) == (0, f"{port}\n"), r.stdout + r.stderr
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_unbound_control_over_plain_tcp_and_the_unix_socket(lab, tmp_path):
    need_unbound()
    port = free_port()
    conf = tmp_path / "resolver.toml"
    conf.write_text("control-enable = true\ncontrol-interface = [\"127.0.0.1\"]\n"
                    f"control-port = {port}\ncontrol-use-cert = false\n")
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        for ub in (control_conf(tmp_path / "tcp.conf", "127.0.0.1", port),
                   control_conf(tmp_path / "unix.conf", d.control)):
            r = ubctl(ub, "status")
            assert r.returncode == 0 and r.stdout.splitlines()[-1].endswith("is running..."), \
                r.stdout + r.stderr
            r = ubctl(ub, "verbosity", "x")
            assert r.returncode == 1 and r.stdout.startswith("error"), r.stdout
        # a line that is neither JSON nor Unbound's version 1: an error, the daemon goes on
        import socket
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"UBCT9 status\n")
            assert s.makefile("rb").read() == b"error version mismatch\n"
        assert d.alive() and "Traceback" not in d.log_text()
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def _shaped(name: str, how: str) -> dns.message.Message:
    """A query for ``name`` A of one shape: ``plain`` (no EDNS), ``edns``, ``do`` (EDNS
    with DO), ``cd`` (EDNS, CD set), ``norec`` (no EDNS, RD clear)."""
    q = dns.message.make_query(name, "A", use_edns=None if how in ("plain", "norec") else 0,
                               want_dnssec=how == "do")
    if how == "cd":
        q.flags |= dns.flags.CD
    if how == "norec":
        q.flags &= ~dns.flags.RD
    return q


#: What both resolvers are asked: a local name (also with RD clear: answered by the door
#: alone), names a forward zone resolves (each asked twice: a recursion, then a cache hit),
#: in every shape.
ASKED = (("a.test.", "plain"), ("a.test.", "edns"), ("a.test.", "do"), ("a.test.", "norec"),
         ("h001.bulk.net.", "plain"), ("h001.bulk.net.", "plain"),
         ("h002.bulk.net.", "edns"), ("h002.bulk.net.", "edns"),
         ("h003.bulk.net.", "do"), ("h003.bulk.net.", "do"),
         ("h004.bulk.net.", "cd"), ("h004.bulk.net.", "cd"))


def test_stats_key_names_and_counts_are_a_real_unbound_s(lab, tmp_path):
    """Every key our ``stats`` prints is one a real Unbound (extended-statistics) prints
    after the same queries, the histogram's buckets by the same bounds, and with the same
    counts for what both count the same way: queries,
    types, rcodes, recursions and their histogram (cache hits and local answers untimed),
    the queries' flags, EDNS, DO, class and opcode; unbound_exporter's keys are all there."""
    need_unbound()
    uport, cport = free_port(), free_port()
    bulk = f"{Z.BULK}@{lab.port}"
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, ["extended-statistics: yes", "local-zone: test. static",
                                    'local-data: "a.test. A 10.0.0.1"',
                                    "do-not-query-localhost: no", "forward-zone:",
                                    'name: "bulk.net."', f"forward-addr: {bulk}"],
                         plain_control(cport))
    conf = tmp_path / "resolver.toml"
    conf.write_text('local-data = ["a.test. 300 A 10.0.0.1"]\nextended-statistics = true\n'
                    f'[[forward-zone]]\nname = "bulk.net."\nforward-addr = ["{bulk}"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        ub = control_conf(tmp_path / "ub.conf", "127.0.0.1", cport)
        # both count from here (the start-up probes forgotten)
        assert ubctl(ub, "stats").returncode == 0
        assert cli("--control", d.control, "stats").returncode == 0
        for port in (uport, d.port):
            for name, how in ASKED:
                r = dns.query.udp(_shaped(name, how), "127.0.0.1", port=port, timeout=3)
                assert r.rcode() == dns.rcode.NOERROR and r.answer, (port, name, how)
        theirs, ours = both_stats(ub, d)
        assert all(k in ours for k in EXPORTER_KEYS), set(EXPORTER_KEYS) - set(ours)
        assert set(ours) == set(theirs), set(ours) ^ set(theirs)
        # Unbound's cache hits are every query answered without a resolution (the local
        # name's too), its misses the resolutions
        same = ["total.num.queries", "total.num.cachehits", "total.num.cachemiss",
                "num.query.type.A", "num.answer.rcode.NOERROR",
                "total.num.recursivereplies", "num.query.class.IN", "num.query.opcode.QUERY",
                "num.query.edns.present", "num.query.edns.DO", "num.query.ipv6",
                "msg.cache.count", "infra.cache.count", "key.cache.count",
                "num.query.udpout", "num.query.tcpout",
                *(f"total.requestlist.{k}" for k in ("avg", "max", "overwritten", "exceeded")),
                *(f"num.query.flags.{f}" for f in ("QR", "AA", "TC", "RD", "RA", "Z", "AD",
                                                   "CD"))]
        assert {k: ours[k] for k in same} == {k: theirs[k] for k in same}
        assert int(ours["total.num.queries"]) == len(ASKED)
        assert int(ours["total.num.recursivereplies"]) == 4 == int(ours["total.num.cachemiss"])
        assert (int(ours["num.query.edns.present"]), int(ours["num.query.edns.DO"]),
                int(ours["num.query.flags.CD"])) == (8, 3, 2)

        def timed(k: dict) -> int:
            return sum(int(v) for name, v in k.items() if name.startswith("histogram."))
        assert timed(ours) == timed(theirs) == 4
        assert float(ours["total.recursion.time.avg"]) > 0.0
        # one at a time: no other resolution was in flight when each started
        assert (ours["total.requestlist.max"], ours["total.requestlist.exceeded"]) == ("0", "0")
        assert int(ours["msg.cache.count"]) == 4 == int(ours["infra.cache.count"]) + 3
        assert int(ours["mem.cache.message"]) > 0
        # what both hold outside the caches: the iterator's tables on both; nothing of
        # modules neither has loaded (no validation in this lab's config on our side)
        assert int(ours["mem.mod.iterator"]) > 0 and int(theirs["mem.mod.iterator"]) > 0
        for k in ("mem.mod.respip", "mem.mod.subnet", "mem.streamwait",
                  "mem.http.query_buffer", "mem.http.response_buffer"):
            assert ours[k] == theirs[k] == "0", k
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]



def _odd_queries() -> dict[str, bytes]:
    """Queries a resolver answers without resolving, each odd in one way."""
    q = dns.message.make_query("a.test.", "A")
    wire = q.to_wire()

    def with_header(offset: int, value: bytes, tail: bytes = b"") -> bytes:
        return wire[:offset] + value + wire[offset + len(value):] + tail

    notify = dns.message.make_query("a.test.", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags = dns.flags.AA
    status = dns.message.make_query("a.test.", "A")
    status.set_opcode(dns.opcode.STATUS)
    badvers = dns.message.make_query("a.test.", "A", use_edns=1)
    return {
        "notify": notify.to_wire(),
        "opcode STATUS": status.to_wire(),
        "TC set": with_header(2, bytes([wire[2] | 0x02])),
        "no question": wire[:4] + b"\0\0" + wire[6:12],
        "two questions": with_header(4, b"\0\2", wire[12:]),
        "an answer count": with_header(6, b"\0\1"),
        "question cut short": wire[:-2],
        "zone transfer": dns.message.make_query("test.", "AXFR").to_wire(),
        "meta type": dns.message.make_query("a.test.", 128).to_wire(),
        "EDNS version 1": badvers.to_wire(),
        "bytes after the question": wire + b"\0\0\0",
        "EDNS with DO": dns.message.make_query("a.test.", "A", want_dnssec=True).to_wire(),
    }


#: What both count of a query: Unbound's queries, hits, types, classes, opcodes, flags,
#: EDNS and rcodes (the CH class's version.bind and a class ANY question are left out:
#: hide-version is on by default here, and Unbound resolves class ANY).
_COUNTED = ("total.num.queries", "total.num.cachehits", "total.num.cachemiss",
            "num.query.type.", "num.query.class.", "num.query.opcode.", "num.query.flags.",
            "num.query.edns.", "num.answer.rcode.")


def test_odd_queries_are_counted_as_a_real_unbound_counts_them(lab, tmp_path):
    """Each odd query to both, the counters reset in between: the same figures for what
    both count. Unbound counts a header it rejects (an opcode other than QUERY and
    NOTIFY, TC set, counts) nowhere, a question it cannot read as a query of no type,
    a zone transfer or meta type by its type alone, an EDNS version it does not know
    under no type, a NOTIFY as a query; the daemon keeps the first apart, as
    ``header_errors``."""
    need_unbound()
    uport, cport = free_port(), free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, ["extended-statistics: yes", "local-zone: test. static",
                                    'local-data: "a.test. A 10.0.0.1"'], plain_control(cport))
    conf = tmp_path / "resolver.toml"
    conf.write_text('local-data = ["a.test. 300 A 10.0.0.1"]\nextended-statistics = true\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    header_rejected = {"opcode STATUS", "TC set", "no question", "two questions",
                       "an answer count"}
    try:
        ub = control_conf(tmp_path / "ub.conf", "127.0.0.1", cport)
        for name, wire in _odd_queries().items():
            assert ubctl(ub, "stats").returncode == 0
            errors = d.stats()["header_errors"]
            assert cli("--control", d.control, "stats").returncode == 0
            answers = [udp_exchange(port, wire, 2.0) for port in (uport, d.port)]
            assert all(a is not None for a in answers), name
            assert answers[0][3] & 0x0F == answers[1][3] & 0x0F, name     # the rcode
            theirs, ours = both_stats(ub, d)

            def counted(figures: dict) -> dict:
                return {k: v for k, v in figures.items()
                        if k.startswith(_COUNTED) and float(v) != 0}
            assert counted(ours) == counted(theirs), name
            assert d.stats()["header_errors"] == errors + (name in header_rejected), name
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]


#: Keys Unbound prints once their figure is non-zero (``statistics-inhibit-zero``), or the
#: rcodes always (NOERROR, FORMERR ...): with ``extended-statistics`` alone.
NONZERO = ("num.query.type.", "num.query.class.", "num.query.opcode.", "num.answer.rcode.",
           "num.rpz.action.")


@pytest.mark.parametrize("extended,workers,inhibit", [(False, 1, True), (True, 1, True),
                                                      (False, 2, True), (True, 2, False),
                                                      (False, 1, False)])
def test_stats_key_set_follows_extended_statistics_as_unbound_s(lab, tmp_path, extended,
                                                                 workers, inhibit):
    """With Unbound's ``extended-statistics: no`` (its default) both print the same keys
    (each thread's, the total's, the times; two workers as two threads); with ``yes`` the
    types, classes, opcodes and rcodes each once non-zero, on both: after a ``stats``
    reset, those asked since alone; with ``statistics-inhibit-zero: no`` as well, every one
    of them, by the same names (Unbound's own, not dnspython's: ``TYPE56``, ``EID``,
    ``RCODE11``), the types above 255 (CAA) counted as ``other`` on both."""
    need_unbound()
    uport, cport = free_port(), free_port()
    bulk = f"{Z.BULK}@{lab.port}"
    w = tmp_path / "unbound"
    w.mkdir()
    yes = "yes" if extended else "no"
    proc = local_unbound(w, uport, [f"extended-statistics: {yes}", f"num-threads: {workers}",
                                    f"statistics-inhibit-zero: {'yes' if inhibit else 'no'}",
                                    "local-zone: test. static",
                                    'local-data: "a.test. A 10.0.0.1"',
                                    "do-not-query-localhost: no", "forward-zone:",
                                    'name: "bulk.net."', f"forward-addr: {bulk}"],
                         plain_control(cport))
    conf = tmp_path / "resolver.toml"
    conf.write_text('local-data = ["a.test. 300 A 10.0.0.1"]\n'
                    f"extended-statistics = {str(extended).lower()}\n"
                    f"statistics-inhibit-zero = {str(inhibit).lower()}\n"
                    f'[[forward-zone]]\nname = "bulk.net."\nforward-addr = ["{bulk}"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--workers", str(workers))
    d.start(ready="ready: 2 workers" if workers == 2 else "ready")
    try:
        ub = control_conf(tmp_path / "ub.conf", "127.0.0.1", cport)
        for asked, reset in (((("h001.bulk.net.", "AAAA"), ("nx.test.", "MX")), True),
                             ((("a.test.", "A"), ("h002.bulk.net.", "A"), ("a.test.", "CAA")),
                              False)):
            for port in (uport, d.port):
                for name, rdtype in asked:
                    q = dns.message.make_query(name, rdtype)
                    dns.query.udp(q, "127.0.0.1", port=port, timeout=3)
            if reset:      # what was asked before is zero now: its keys go
                assert ubctl(ub, "stats").returncode == 0
                assert cli("--control", d.control, "stats").returncode == 0
        theirs, ours = both_stats(ub, d)
        if not extended:
            assert set(ours) == set(theirs), (set(ours) ^ set(theirs))
            # each thread's since the reset: the three asked last, over the workers
            assert sum(int(ours[f"thread{i}.num.queries"]) for i in range(workers)) == 3
            return
        shown = {who: {k for k in got if k.startswith(NONZERO)}
                 for who, got in (("theirs", theirs), ("ours", ours))}
        assert shown["ours"] == shown["theirs"], (shown["ours"] ^ shown["theirs"])
        # and the other counts of queries and answers, those of features the daemon lacks
        # too (auth zones, subnet: none), and the memory keys
        fixed = {who: {k for k in got if k.startswith(("num.", "mem."))
                       and not k.startswith(NONZERO)}
                 for who, got in (("theirs", theirs), ("ours", ours))}
        assert fixed["ours"] == fixed["theirs"], (fixed["ours"] ^ fixed["theirs"])
        assert "num.query.type.A" in shown["ours"]
        assert ("num.query.type.MX" in shown["ours"]) is (not inhibit)
        for who, got in (("theirs", theirs), ("ours", ours)):
            assert got["num.query.type.other"] == "1", who                 # the CAA
            assert got["num.query.type.A"] == "2", who
            if not inhibit:
                assert got["num.query.type.MX"] == got["num.query.type.TYPE56"] == "0", who
                assert got["num.rpz.action.rpz-drop"] == "0", who
        if not inhibit:
            assert len(shown["ours"]) == 256 + 1 + 256 + 1 + 16 + 16 + 1 + 9
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]


#: The policy zones both resolvers apply, in this order: a zone whose matches are counted and
#: not applied (``rpz-action-override: disabled``), a zone with a rule of every action, a
#: zone whose matches all become a CNAME to ``h014.bulk.net.`` (``cname``).
POLICY_ZONES = (("off.rpz.", "h012.bulk.net CNAME .\n", ("disabled", None)),
                ("block.rpz.", "nx.bulk.net CNAME .\n"
                               "nd.bulk.net CNAME *.\n"
                               "h010.bulk.net CNAME rpz-passthru.\n"
                               "drop.bulk.net CNAME rpz-drop.\n"
                               "tc.bulk.net CNAME rpz-tcp-only.\n"
                               "ld.bulk.net A 192.0.2.1\n"
                               "cn.bulk.net CNAME h011.bulk.net.\n", (None, None)),
                ("over.rpz.", "h013.bulk.net CNAME .\n", ("cname", "h014.bulk.net.")))

#: What both are asked then (name, type, the rcode, whether the answer section has records;
#: None: no answer, the query dropped): NODATA from an authority, then from the cache, from a
#: local name, and a match of each action of the policy.
NODATA_RPZ_ASKED = (("h001.bulk.net.", "AAAA", dns.rcode.NOERROR, False),
                    ("h001.bulk.net.", "AAAA", dns.rcode.NOERROR, False),
                    ("a.test.", "AAAA", dns.rcode.NOERROR, False),
                    ("a.test.", "A", dns.rcode.NOERROR, True),
                    ("nx.bulk.net.", "A", dns.rcode.NXDOMAIN, False),
                    ("nd.bulk.net.", "A", dns.rcode.NOERROR, False),
                    ("h010.bulk.net.", "A", dns.rcode.NOERROR, True),
                    ("drop.bulk.net.", "A", None, False),
                    ("tc.bulk.net.", "A", dns.rcode.NOERROR, False),
                    ("ld.bulk.net.", "A", dns.rcode.NOERROR, True),
                    ("cn.bulk.net.", "A", dns.rcode.NOERROR, True),
                    ("h012.bulk.net.", "A", dns.rcode.NOERROR, True),
                    ("h013.bulk.net.", "A", dns.rcode.NOERROR, True),
                    ("h013.bulk.net.", "A", dns.rcode.NOERROR, True))


@pytest.mark.parametrize("workers", [1, 2])
def test_nodata_and_rpz_action_keys_count_as_a_real_unbound_s(lab, tmp_path, workers):
    """``num.answer.rcode.nodata`` (NOERROR answers without an answer record: from an
    authority, the cache, a local name, the policy) and ``num.rpz.action.*`` (the policy's
    matches by Unbound's name of their action, summed over the zones and the workers) after
    the same questions under the same policy zones: the keys and counts a real Unbound
    (``extended-statistics: yes``) prints, each once non-zero."""
    need_unbound()
    uport, cport = free_port(), free_port()
    bulk = f"{Z.BULK}@{lab.port}"
    ub_policy, ours_policy = [], ""
    for origin, rules, (override, target) in POLICY_ZONES:
        path = tmp_path / f"{origin}zone"
        path.write_text(f"$ORIGIN {origin}\n$TTL 60\n"
                        f"@ SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 30\n"
                        f"@ NS ns.{origin}\n" + rules)
        ub_policy += ["rpz:", f"name: {origin}", f'zonefile: "{path}"']
        ours_policy += f'[[rpz]]\nname = "{origin}"\nzonefile = "{path}"\n'
        if override:
            ub_policy.append(f"rpz-action-override: {override}")
            ours_policy += f'rpz-action-override = "{override}"\n'
        if target:
            ub_policy.append(f"rpz-cname-override: {target}")
            ours_policy += f'rpz-cname-override = "{target}"\n'
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, ["extended-statistics: yes",
                                    'module-config: "respip iterator"',
                                    "local-zone: test. static",
                                    'local-data: "a.test. A 10.0.0.1"',
                                    "do-not-query-localhost: no", "forward-zone:",
                                    'name: "bulk.net."', f"forward-addr: {bulk}", *ub_policy],
                         plain_control(cport))
    conf = tmp_path / "resolver.toml"
    conf.write_text('local-data = ["a.test. 300 A 10.0.0.1"]\nextended-statistics = true\n'
                    f'[[forward-zone]]\nname = "bulk.net."\nforward-addr = ["{bulk}"]\n'
                    + ours_policy)
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--workers", str(workers))
    d.start(ready="ready: 2 workers" if workers == 2 else "ready")
    try:
        ub = control_conf(tmp_path / "ub.conf", "127.0.0.1", cport)
        assert ubctl(ub, "stats").returncode == 0
        assert cli("--control", d.control, "stats").returncode == 0
        for port in (uport, d.port):
            for name, rdtype, rcode, records in NODATA_RPZ_ASKED:
                q = dns.message.make_query(name, rdtype)
                if rcode is None:               # dropped: nothing comes back
                    with pytest.raises(dns.exception.Timeout):
                        dns.query.udp(q, "127.0.0.1", port=port, timeout=1)
                    continue
                r = dns.query.udp(q, "127.0.0.1", port=port, timeout=3)
                assert (r.rcode(), bool(r.answer)) == (rcode, records), (port, name, r)
                assert bool(r.flags & dns.flags.TC) == name.startswith("tc."), (port, r)
        theirs, ours = both_stats(ub, d)

        def shown(k: dict) -> dict:
            return {name: v for name, v in k.items()
                    if name.startswith(("num.rpz.action.", "num.answer.rcode."))}
        assert shown(ours) == shown(theirs)
        assert {k: v for k, v in shown(ours).items() if v != "0"} == {
            "num.answer.rcode.NOERROR": "12", "num.answer.rcode.NXDOMAIN": "1",
            "num.answer.rcode.nodata": "5",
            "num.rpz.action.rpz-nxdomain": "1", "num.rpz.action.rpz-nodata": "1",
            "num.rpz.action.rpz-passthru": "1", "num.rpz.action.rpz-drop": "1",
            "num.rpz.action.rpz-tcp-only": "1", "num.rpz.action.rpz-local-data": "2",
            "num.rpz.action.rpz-disabled": "1", "num.rpz.action.rpz-cname-override": "2"}
        assert "corenet_resolver_nodata_answers_total 5\n" in d.metrics()
        # reset by ``stats``: zero again, so not printed
        assert cli("--control", d.control, "stats").returncode == 0
        r = cli("--control", d.control, "stats_noreset")
        assert not [k for k in keys(r.stdout)
                    if k.startswith("num.rpz.") or k == "num.answer.rcode.nodata"], r.stdout
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]

#: What both validating resolvers are asked over the signed lab, in this order, with what
#: each answers: a bogus rrset (altered.com.'s A does not match its signature), a zone whose
#: DNSKEY set fails its DS (a zone's verdict: no rrset counted), an NXDOMAIN whose NSEC
#: range then answers another name in it (twice: such a denial is made anew each time, by
#: both), a NODATA whose NSEC then answers another type,
#: a wildcard's expansion then another name below it.
SIGNED_ASKED = (("www.altered.com.", "A", dns.rcode.SERVFAIL),
                ("www.badds.com.", "A", dns.rcode.SERVFAIL),
                ("nope.example.com.", "A", dns.rcode.NXDOMAIN),
                ("nopf.example.com.", "A", dns.rcode.NXDOMAIN),
                ("nopf.example.com.", "A", dns.rcode.NXDOMAIN),
                ("www.example.com.", "TXT", dns.rcode.NOERROR),
                ("www.example.com.", "MX", dns.rcode.NOERROR),
                ("x.wild.example.com.", "A", dns.rcode.NOERROR),
                ("y.wild.example.com.", "A", dns.rcode.NOERROR))


def test_dnssec_stats_keys_count_as_a_real_unbound_s(signed_lab, tmp_path):
    """``num.rrset.bogus`` and ``num.query.aggressive.NOERROR``/``.NXDOMAIN`` after the same
    validated questions over the signed lab: the counts a real Unbound gives (it reaches the
    lab's port through stub zones, as it asks only port 53 of a delegation's servers)."""
    need_unbound()
    lab, anchor = signed_lab
    uport, cport = free_port(), free_port()
    stubs = []
    for zone, address in ((".", Z.ROOT_A), ("com.", Z.GTLD_A),
                          ("example.com.", Z.EXAMPLE_COM_1), ("altered.com.", Z.EXAMPLE_COM_2),
                          ("badds.com.", Z.EXAMPLE_COM_2)):
        stubs += ["stub-zone:", f'name: "{zone}"', f"stub-addr: {address}@{lab.port}"]
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, ["extended-statistics: yes", "do-not-query-localhost: no",
                                    'module-config: "validator iterator"',
                                    f'trust-anchor-file: "{anchor}"', *stubs],
                         plain_control(cport))
    d = Daemon(tmp_path / "d", lab, "--trust-anchor", str(anchor),
               "--extended-statistics").start()
    try:
        ub = control_conf(tmp_path / "ub.conf", "127.0.0.1", cport)
        assert ubctl(ub, "stats").returncode == 0
        assert cli("--control", d.control, "stats").returncode == 0
        for port in (uport, d.port):
            for name, rdtype, rcode in SIGNED_ASKED:
                q = dns.message.make_query(name, rdtype, want_dnssec=True)
                r = dns.query.udp(q, "127.0.0.1", port=port, timeout=10)
                if r.flags & dns.flags.TC:
                    r = dns.query.tcp(q, "127.0.0.1", port=port, timeout=10)
                assert r.rcode() == rcode, (port, name, rdtype, r)
                assert bool(r.flags & dns.flags.AD) == (rcode != dns.rcode.SERVFAIL), \
                    (port, name, rdtype, r)
        theirs, ours = both_stats(ub, d)
        same = ["total.num.queries", "num.answer.bogus", "num.rrset.bogus",
                "num.query.aggressive.NOERROR", "num.query.aggressive.NXDOMAIN"]
        assert {k: ours[k] for k in same} == {k: theirs[k] for k in same}
        assert [int(ours[k]) for k in same] == [len(SIGNED_ASKED), 2, 1, 2, 2]
        text = d.metrics()
        assert "corenet_resolver_dnssec_rrsets_bogus_total 1\n" in text
        assert 'corenet_resolver_aggressive_answers_total{rcode="NOERROR"} 2\n' in text
        assert 'corenet_resolver_aggressive_answers_total{rcode="NXDOMAIN"} 2\n' in text
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]


def test_stats_prometheus_and_json_on_request_and_a_closed_pipe_is_quiet(lab, tmp_path):
    d = Daemon(tmp_path / "d", lab).start()
    try:
        ask(d.port, "localhost.")
        r = cli("--control", d.control, "stats_noreset", "--prometheus")
        assert r.returncode == 0 and "corenet_resolver_queries_total" in r.stdout
        r = cli("--control", d.control, "stats_noreset", "--json")
        assert r.returncode == 0 and r.stdout.lstrip().startswith("{")
        # the reader is gone before anything is written: no traceback, SIGPIPE's status
        r = subprocess.run(["bash", "-c", f"{_cli_line()} --control {d.control} status | "
                            "true; echo ${PIPESTATUS[0]}"],
                           capture_output=True, text=True, timeout=30)
        assert (r.stdout, r.stderr) == ("141\n", ""), r.stdout + r.stderr
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def _cli_line() -> str:
    import shlex
    import sys
    root = Path(__file__).resolve().parents[2]
    return f"cd {shlex.quote(str(root))} && {shlex.quote(sys.executable)} -m resolver.daemon.cli"


def test_requestlist_commands_and_views_as_unbound(lab, tmp_path):
    """dump_requestlist shows a resolution in flight in Unbound's shape (its header lines
    are a real Unbound's), flush_requestlist drops it, view_list_local_data answers
    Unbound's words for a view it does not have."""
    need_unbound()
    import socket
    import threading

    uport, cport = free_port(), free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, [], plain_control(cport))
    conf = tmp_path / "resolver.toml"           # a dead server's query waits 5 s
    conf.write_text("[limits]\ninitial_rto = 5.0\nmax_rto = 5.0\nmax_query_time = 20.0\n")
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--workers", "2")
    d.start(ready="ready: 2 workers")
    try:
        theirs = ubctl(control_conf(tmp_path / "ub.conf", "127.0.0.1", cport),
                       "dump_requestlist")
        assert theirs.returncode == 0
        # a question whose servers never answer stays in flight for seconds
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(dns.message.make_query("www.alldead.com.", "A").to_wire(),
                     ("127.0.0.1", d.port))
            deadline = time.monotonic() + 5
            while True:
                r = cli("--control", d.control, "dump_requestlist")
                assert r.returncode == 0, r.stdout + r.stderr
                if "www.alldead.com." in r.stdout:
                    break
                assert time.monotonic() < deadline, r.stdout
                time.sleep(0.05)
            lines = r.stdout.splitlines()
            assert [x for x in lines if x.startswith("thread #")] == ["thread #0", "thread #1"]
            assert lines[:2] == theirs.stdout.splitlines()[:2]       # Unbound's two lines
            (entry,) = [x for x in lines if "www.alldead.com." in x]
            assert re.fullmatch(r"  0    A IN www\.alldead\.com\. \d+\.\d{6} .+", entry), entry
            r = cli("--control", d.control, "flush_requestlist")
            assert (r.returncode, r.stdout) == (0, "ok\n")
            r = cli("--control", d.control, "dump_requestlist")
            assert "www.alldead.com." not in r.stdout
            s.settimeout(2.0)
            try:
                got = dns.message.from_wire(s.recv(512))
            except socket.timeout:
                got = None
            assert got is None, (got, d.log_text()[-3000:])       # dropped: no answer
        ours = cli("--control", d.control, "view_list_local_data", "nosuch")
        theirs = ubctl(control_conf(tmp_path / "ub.conf", "127.0.0.1", cport),
                       "view_list_local_data", "nosuch")
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == \
            (0, "no view with name: nosuch\n")                      # not an error line
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]


def test_ratelimit_list_names_the_zone_at_its_limit(lab, tmp_path):
    """A zone sent its ratelimit this second is listed as Unbound lists it; ``+a`` lists
    every zone counted; a zone without a limit is not listed without it."""
    from resolver.daemon.control import request

    conf = tmp_path / "resolver.toml"
    conf.write_text('ratelimit-for-domain = {"bulk.net" = 2}\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        assert request(d.control, {"cmd": "ratelimit_list", "args": []})["text"] == ""
        names = iter(f"h{i:03d}.bulk.net." for i in range(1, 51))
        seen = ""
        for _ in range(10):            # the count is this second's: asked and read at once
            for _ in range(5):
                ask(d.port, next(names))
            seen = request(d.control, {"cmd": "ratelimit_list", "args": []})["text"]
            if seen:
                break
        assert re.fullmatch(r"bulk\.net\. \d+ limit 2", seen), seen
        assert int(seen.split()[1]) >= 2
        every = request(d.control, {"cmd": "ratelimit_list", "args": ["+a"]})["text"]
        assert all(re.fullmatch(r"\S+\. \d+ limit \d+", x) for x in every.splitlines())
        r = cli("--control", d.control, "ratelimit_list", "-x")
        assert r.returncode == 1 and r.stdout.startswith("error unknown flag"), r.stdout
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


@pytest.mark.parametrize("prefix, client", [(32, "127.0.0.1"), (24, "127.0.0.0/24")])
def test_ip_ratelimit_list_names_the_client_at_its_limit(lab, tmp_path, prefix, client):
    """A client that spent its ``ip-ratelimit`` budget of misses is listed as Unbound lists
    it (``ADDRESS RATE limit LIMIT``; its network when clients are counted by network), by
    Unbound's own unbound-control too; ``+a`` lists every client with a budget; nothing is
    listed with the limit off."""
    need_unbound()
    from resolver.daemon.control import request

    conf = tmp_path / "resolver.toml"
    conf.write_text(f"ip-ratelimit = 2\nip-ratelimit-prefix-v4 = {prefix}\n")
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        assert request(d.control, {"cmd": "ip_ratelimit_list", "args": []})["text"] == ""
        names = iter(f"h{i:03d}.example.com." for i in range(1, 200))
        seen = ""
        import socket
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(10):        # the budget refills: sent and read at once
                for _ in range(6):     # not waited for: a miss past the budget is dropped
                    s.sendto(dns.message.make_query(next(names), "A").to_wire(),
                             ("127.0.0.1", d.port))
                seen = request(d.control, {"cmd": "ip_ratelimit_list", "args": []})["text"]
                if seen:
                    break
        assert re.fullmatch(re.escape(client) + r" 2 limit 2", seen), seen
        every = request(d.control, {"cmd": "ip_ratelimit_list", "args": ["+a"]})["text"]
        assert re.fullmatch(re.escape(client) + r" [0-2] limit 2", every), every
        r = ubctl(control_conf(tmp_path / "unix.conf", d.control), "ip_ratelimit_list", "+a")
        assert r.returncode == 0 and re.fullmatch(re.escape(client) + r" [0-2] limit 2\n",
                                                  r.stdout), r.stdout + r.stderr
        r = cli("--control", d.control, "ip_ratelimit_list", "-x")
        assert r.returncode == 1 and r.stdout.startswith("error unknown flag"), r.stdout
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
    d = Daemon(tmp_path / "off", lab).start()
    try:
        ask(d.port, "www.example.com.")
        assert request(d.control, {"cmd": "ip_ratelimit_list", "args": ["+a"]})["text"] == ""
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


#: options both name the same way and leave unset by default: get_option prints the
#: default in force, as Unbound prints its own
DEFAULTED = ("cache-max-ttl", "cache-min-ttl", "cache-max-negative-ttl", "val-bogus-ttl",
             "infra-host-ttl", "val-sig-skew-min", "val-sig-skew-max")


def unbound_beside_daemon(lab, tmp_path: Path):
    """A real Unbound, unbound-control reaching it over plain TCP, and the daemon over the
    lab: (Unbound's process, the daemon, Unbound's unbound.conf for unbound-control)."""
    need_unbound()
    cport = free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, free_port(), [], plain_control(cport))
    try:
        d = Daemon(tmp_path / "d", lab).start()
    except BaseException:
        stop_process(proc, group=True)
        raise
    return proc, d, control_conf(tmp_path / "ub.conf", "127.0.0.1", cport)


#: Unbound options with no setting of corenet's own whose value, at Unbound's default, is
#: corenet's behaviour too (unbound_conf.FIXED, and limits that share Unbound's default)
BEHAVIOUR = ("do-udp", "do-tcp", "so-reuseport", "minimal-responses", "aggressive-nsec",
             "harden-dnssec-stripped", "harden-below-nxdomain", "edns-buffer-size",
             "statistics-interval", "unwanted-reply-threshold", "ratelimit",
             "infra-cache-numhosts")
#: ones that print corenet's own figure: the one cache's size, the first listener's port,
#: the upstream sockets in flight (outgoing-range)
FIGURES = ("msg-cache-size", "rrset-cache-size", "port", "outgoing-range")


def test_get_option_answers_unbound_s_names_corenet_has_no_setting_for(lab, tmp_path):
    """Monitoring reads these with unbound-control: each prints a value, the same as a
    default Unbound's where corenet behaves as that value says."""
    proc, d, ub = unbound_beside_daemon(lab, tmp_path)
    try:
        for option in BEHAVIOUR:
            theirs = ubctl(ub, "get_option", option)
            ours = cli("--control", d.control, "get_option", option)
            assert theirs.returncode == ours.returncode == 0, (option, theirs, ours.stderr)
            assert ours.stdout == theirs.stdout, (option, ours.stdout, theirs.stdout)
        for option in FIGURES:
            ours = cli("--control", d.control, "get_option", option)
            assert ours.returncode == 0 and ours.stdout.strip().isdigit(), (option, ours)
        assert cli("--control", d.control, "get_option", "port").stdout == \
            f"{d.port}\n"
        modules = cli("--control", d.control, "get_option", "module-config")
        assert modules.stdout == "iterator\n", modules   # the lab's own root: no anchor
        for args in (["verbosity", "x"], ["verbosity", "9"], ["verbosity", "1"]):
            theirs = ubctl(ub, *args)
            ours = cli("--control", d.control, *args)
            assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), args
        unknown = cli("--control", d.control, "get_option", "outgoing-num-tcp")
        assert unknown.returncode == 1 and "TCP queries to authorities have no cap" in \
            unknown.stdout + unknown.stderr
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
        stop_process(proc, group=True)


#: Command lines both take or refuse alike, in this order: host names and authentication
#: names without TLS among a zone's servers, a type unknown, a record with no data, and the
#: refusals of a missing or bad argument, names that do not parse among them
ALIKE = (("forward_add", "fa.test.", "192.0.2.2#dns.example"),
         ("forward_add", "fb.test.", "notanip"),
         ("forward_add", "fc.test.", "192.0.2.3@5353#x.example", "ns.example@5353#y.example",
          "ns2.example"),
         ("stub_add", "sa.test.", "nsa.example", "192.0.2.4"),
         ("list_forwards",), ("list_stubs",),
         ("forward_remove", "fb.test."), ("list_forwards",),
         ("forward_add", "fd.test.", "192.0.2.5", "bad..name"),
         ("forward_add", "fd.test."), ("forward_add", "+i"), ("forward_add",),
         ("forward_add", "+ix", "fd.test.", "192.0.2.5"), ("stub_add", "+p", "fd.test."),
         ("flush_type", "x.test.", "NOTYPE"), ("flush_type", "x.test."), ("flush_type",),
         ("local_data", "x.test.", "A"), ("local_data", "y.test.", "300", "IN", "TXT"),
         ("get_option",), ("set_option", "cache-max-ttl:"), ("set_option", "cache-max-ttl"),
         ("set_option", "cache-max-ttl:77"), ("set_option",), ("get_option", "cache-max-ttl"),
         ("local_zone", "z.test.", "badtype"), ("local_zone", "z.test.", "static", "x"),
         ("local_zone", "z.test."), ("local_zone",),
         ("flush_zone",), ("lookup",), ("insecure_add",), ("local_data_remove",),
         ("flush_infra",), ("flush_infra", "nowhere"),
         ("flush_zone", "a..b"), ("flush_type", "x" * 64 + ".test.", "A"), ("lookup", "a\\300"),
         ("insecure_add", ".."), ("local_zone_remove", "abcdefghi." * 26),
         ("forward", "ns.example", "192.0.2.1"), ("forward",), ("forward", "bad..x"),
         ("forward", "off"), ("forward",))


def test_arguments_taken_and_refused_as_unbound(lab, tmp_path):
    """Each of ALIKE prints the same and exits the same on both; the servers named by host
    name are listed as Unbound lists them, and a record with no data is taken (Unbound
    keeps one of empty data, which corenet does not serve)."""
    proc, d, ub = unbound_beside_daemon(lab, tmp_path)

    def shown(r: subprocess.CompletedProcess) -> tuple[int, str]:
        # the root's stub line: each has its own hints (the lab's, the real root's)
        return r.returncode, re.sub(r"^\. IN stub .*\n", "", r.stdout, flags=re.M)
    try:
        for args in ALIKE:
            theirs = ubctl(ub, *args)
            ours = cli("--control", d.control, *args)
            assert shown(ours) == shown(theirs), (args, ours.stdout, ours.stderr, theirs.stdout)
        assert "fc.test. IN forward ns2.example. ns.example. 192.0.2.3" in \
            cli("--control", d.control, "list_forwards").stdout
        assert "local-data 'x.test. A' has no data" in d.log_text()
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
        stop_process(proc, group=True)


#: A server line of ``lookup``: the address padded to 16, a tab, then what the infra cache
#: holds of it in one of Unbound's two forms
LOOKUP_SERVER = re.compile(r"(\S+ *)\t(?:not in infra cache\.|(?:LAME )?rto \d+ msec, ttl \d+, "
                           r"ping \d+ var \d+ rtt \d+, tA \d+, tAAAA \d+, tother \d+"
                           r"(?:, probedelay \d+)?, (?:EDNS 0|noEDNS) (?:probed|assumed)\.)")


def lookup_shape(text: str) -> list[str]:
    """``lookup``'s lines with the TTLs and the infra cache's figures left out."""
    out = []
    for line in text.splitlines():
        server = LOOKUP_SERVER.fullmatch(line)
        if server:
            out.append(f"{server.group(1)}\tINFRA")
        elif line.startswith(";rrset "):
            out.append(re.sub(r"^;rrset \d+", ";rrset TTL", line))
        else:
            out.append(re.sub(r"^(\S+)\t\d+\t", r"\1\tTTL\t", line))
    return out


def rtts_as_unbound_s(text: str) -> int:
    """Checks each server line of ``lookup`` with figures: its ``rtt`` is the timeout its
    smoothed RTT and variance give (Unbound's: ping + 4 * var, 50 ms at least; corenet's
    figures rounded to the ms each), whatever its backed-off ``rto``. How many it checked."""
    n = 0
    for m in re.finditer(r"rto (\d+) msec, ttl \d+, ping (\d+) var (\d+) rtt (\d+),", text):
        rto, ping, var, rtt = map(int, m.groups())
        assert abs(rtt - max(50, ping + 4 * var)) <= 3 and rto >= rtt - 3, m.group(0)
        n += 1
    return n


def unbound_over_lab(tmp_path: Path, lines: tuple[str, ...] = ()):
    """A lab on port 53 and a real Unbound resolving from it (``lines`` added to its
    config), unbound-control reaching it over plain TCP: (the lab, Unbound's process, its
    port, its control port)."""
    from dnslab.unbound import lab_on_port_53, launch, server_lines

    need_unbound()
    lab = lab_on_port_53(tmp_path / "lab")
    uport, cport = free_port(), free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    try:
        proc = launch(w, [f"  interface: 127.0.0.1@{uport}", f"  port: {uport}",
                          *server_lines(w, lab), *lines], "127.0.0.1", uport,
                      control=plain_control(cport))
    except BaseException:
        lab.stop()
        raise
    return lab, proc, uport, cport


def test_lookup_prints_unbound_s_lines(tmp_path):
    """``lookup`` of a name under a cached delegation, a forward zone and a stub zone, and
    of a name asked of neither: the same lines as a real Unbound's with the same zones
    after the same question (the TTLs and the infra cache's figures aside, each server
    line in one of Unbound's two forms)."""
    lab, proc, uport, cport = unbound_over_lab(tmp_path, (
        "forward-zone:", '  name: "fwd.test."', "  forward-addr: 127.0.0.12",
        "stub-zone:", '  name: "stub.test."', "  stub-addr: 127.0.0.14"))
    conf = tmp_path / "resolver.toml"
    conf.write_text('[[forward-zone]]\nname = "fwd.test."\nforward-addr = ["127.0.0.12"]\n'
                    '[[stub-zone]]\nname = "stub.test."\nstub-addr = ["127.0.0.14"]\n')
    d = None
    try:
        d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
        ub = control_conf(tmp_path / "ub.conf", "127.0.0.1", cport)
        for port in (uport, d.port):
            assert ask(port, "www.example.com.").rcode() == dns.rcode.NOERROR
        for name in ("www.example.com.", "fwd.test.", "x.stub.test."):
            theirs = ubctl(ub, "lookup", name)
            ours = cli("--control", d.control, "lookup", name)
            assert theirs.returncode == ours.returncode == 0, (name, ours.stderr)
            assert lookup_shape(ours.stdout) == lookup_shape(theirs.stdout), \
                (name, ours.stdout, theirs.stdout)
            assert any(LOOKUP_SERVER.fullmatch(line) for line in ours.stdout.splitlines())
            rtts_as_unbound_s(theirs.stdout)
            rtts_as_unbound_s(ours.stdout)
        r = cli("--control", d.control, "lookup", "www.example.com.")
        assert "Delegation with 2 names, of which 2 can be examined" in r.stdout, r.stdout
        assert rtts_as_unbound_s(r.stdout) >= 1, r.stdout
        assert "example.com.\t" in r.stdout and "\tIN\tNS\tns1.example.com." in r.stdout
    finally:
        stop_process(proc, 5.0, group=True)
        if d is not None:
            assert d.stop() == 0, d.log_text()[-2000:]
        lab.stop()


def test_get_option_of_an_unset_limit_prints_the_default_as_unbound(lab, tmp_path):
    proc, d, ub = unbound_beside_daemon(lab, tmp_path)
    try:
        for option in DEFAULTED:
            theirs = ubctl(ub, "get_option", option)
            ours = cli("--control", d.control, "get_option", option)
            assert theirs.returncode == ours.returncode == 0, (option, theirs, ours.stderr)
            assert ours.stdout == theirs.stdout, (option, ours.stdout, theirs.stdout)
        assert cli("--control", d.control, "set_option", "cache-max-ttl:", "3600"
                   ).returncode == 0
        assert cli("--control", d.control, "get_option", "cache-max-ttl").stdout == "3600\n"
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
        stop_process(proc, group=True)


def test_set_option_without_the_colon_flush_without_a_name_and_quiet_as_unbound(lab, tmp_path):
    """``set_option NAME VALUE`` sets as ``NAME: VALUE`` does, on both; ``flush`` with no
    name is refused on both (a script's empty $NAME forgets nothing), through
    unbound-control and through the daemon's own command line; ``-q`` prints nothing but
    an error; ``-c`` takes the unbound.conf unbound-control is given."""
    proc, d, ub = unbound_beside_daemon(lab, tmp_path)
    confs = {"unbound": ub, "corenet": control_conf(tmp_path / "d.conf", d.control)}
    try:
        for who, conf in confs.items():
            r = ubctl(conf, "set_option", "cache-max-ttl", "77")
            assert (r.returncode, r.stdout) == (0, "ok\n"), (who, r.stdout, r.stderr)
            r = ubctl(conf, "get_option", "cache-max-ttl")
            assert (r.returncode, r.stdout) == (0, "77\n"), (who, r.stdout, r.stderr)
            r = ubctl(conf, "flush")
            assert r.returncode == 1 and "requires a domain name" in r.stdout + r.stderr, \
                (who, r.stdout, r.stderr)
        for args in (["status"], ["get_option", "do-ip4"], ["flush_zone", "example.com."]):
            r = cli("--control", d.control, "-q", *args)     # as unbound-control -q: silent
            assert (r.returncode, r.stdout) == (0, ""), (args, r)
            assert ubctl(confs["unbound"], "-q", *args).stdout == ""
        for who, conf in confs.items():       # -c an unbound.conf: its remote-control clause
            r = cli("-c", str(conf), "status") if who == "corenet" else ubctl(conf, "status")
            assert r.returncode == 0 and "is running" in r.stdout, (who, r)
        r = cli("--control", d.control, "-q", "get_option", "no-such-option")
        assert r.returncode == 1 and r.stdout.startswith("error"), r
        assert ask(d.port, "www.example.com.").rcode() == dns.rcode.NOERROR
        cached = d.stats()["cache"]["messages"]
        r = cli("--control", d.control, "flush")
        assert r.returncode == 1 and "requires a domain name" in r.stdout + r.stderr, r
        assert d.stats()["cache"]["messages"] == cached > 0
        r = cli("--control", d.control, "set_option", "cache-min-ttl", "5")
        assert r.returncode == 0, r.stderr
        assert cli("--control", d.control, "get_option", "cache-min-ttl").stdout == "5\n"
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
        stop_process(proc, group=True)


def test_list_commands_forward_flush_stats_and_reload_keep_cache_as_unbound(lab, tmp_path):
    """The same unbound-control commands, with the same lists on stdin, to a real Unbound
    and to the daemon (two workers): local_zones, local_datas and their _remove forms print
    Unbound's counts, an error line for each line refused and exit 1 then, and change the
    answers alike; forward shows, sets and removes the root's forwarders; flush_stats
    zeroes what stats shows; reload_keep_cache answers ok."""
    need_unbound()
    uport, cport = free_port(), free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, [], plain_control(cport))
    d = Daemon(tmp_path / "d", lab, "--workers", "2").start(ready="ready: 2 workers")
    servers = {"unbound": (control_conf(tmp_path / "ub.conf", "127.0.0.1", cport), uport),
               "corenet": (control_conf(tmp_path / "d.conf", d.control), d.port)}
    try:
        def both(*args, input=None, rc=None, last=None):
            out = {}
            for who, (conf, _) in servers.items():
                r = ubctl(conf, *args, input=input)
                if rc is not None:
                    assert r.returncode == rc, (who, args, r.stdout, r.stderr)
                if last is not None:
                    assert r.stdout.splitlines()[-1:] == [last], (who, args, r.stdout)
                out[who] = r.stdout
            return out

        def answers(name):
            out = set()
            for who, (_, port) in servers.items():
                reply = ask(port, name)
                out.add((dns.rcode.to_text(reply.rcode()),
                         tuple(sorted(rd.to_text() for rr in reply.answer for rd in rr))))
            assert len(out) == 1, (name, out)
            return out.pop()

        got = both("local_zones", input="blocked.test. static\nredir.test. redirect\n"
                   "bad line here x\n", rc=1, last="added 2 zones")
        for text in got.values():
            assert "error for input line: bad" in text
        assert answers("blocked.test.") == ("NXDOMAIN", ())
        got = both("local_datas", input="redir.test. 300 IN A 192.0.2.1\n"
                   "host.blocked.test. 300 IN A 192.0.2.2\nnot a record\n",
                   rc=1, last="added 2 datas")
        for text in got.values():
            assert "error parsing local-data at line 3" in text and "'not a record'" in text
        assert answers("www.redir.test.") == ("NOERROR", ("192.0.2.1",))
        assert answers("host.blocked.test.") == ("NOERROR", ("192.0.2.2",))
        both("local_datas_remove", input="host.blocked.test.\nbad..name\n", rc=1,
             last="removed 1 datas")
        assert answers("host.blocked.test.") == ("NXDOMAIN", ())
        both("local_zones_remove", input="redir.test.\nblocked.test.\n", rc=0,
             last="removed 2 zones")
        for text in both("list_local_zones", rc=0).values():
            assert "blocked.test." not in text and "redir.test." not in text
        both("local_zones", input="", rc=0, last="added 0 zones")

        both("forward", rc=0, last="off (using root hints)")
        both("forward", "127.0.0.1", "::1", rc=0, last="ok")
        shown = both("forward", rc=0)
        assert {who: set(text.split()) for who, text in shown.items()} == \
            dict.fromkeys(servers, {"127.0.0.1", "::1"}), shown
        both("forward", "off", rc=0, last="ok")
        both("forward", rc=0, last="off (using root hints)")

        both("flush_stats", rc=0, last="ok")
        for text in both("stats_noreset", rc=0).values():
            assert keys(text)["total.num.queries"] == "0", text
        both("reload_keep_cache", rc=0, last="ok")
        # the daemon's own command line reads the list from stdin as unbound-control does
        r = cli("--control", d.control, "local_datas", input="a.example. 60 IN A 192.0.2.9\n")
        assert (r.returncode, r.stdout) == (0, "added 1 datas\n"), r.stderr
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]


#: views for the view commands: one with a zone, one without, one view-first
VIEWS = ["access-control-view: 127.0.0.2/32 inside", "access-control-view: 127.0.0.3/32 first",
         "access-control-view: 127.0.0.4/32 bare", 'local-zone: "g.test." static',
         'local-data: "www.g.test. A 192.0.2.1"',
         "view:", 'name: "inside"', 'local-zone: "v.test." static',
         'local-data: "www.v.test. A 10.0.0.1"',
         "view:", 'name: "first"', "view-first: yes", 'local-zone: "f.test." static',
         "view:", 'name: "bare"']


def test_view_commands_as_unbound(lab, tmp_path):
    """The view_ commands, with the same views configured: a real Unbound and the daemon
    (two workers) print the same (lists of the views' zones and data, ok, the counts of
    the list forms, Unbound's words for a view that is not there and for a missing
    argument) and answer each view's clients the same after each change."""
    need_unbound()
    uport, cport = free_port(), free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, VIEWS, plain_control(cport))
    conf = tmp_path / "views.conf"
    conf.write_text("server:\n" + "".join(f"  {line}\n" for line in VIEWS))
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--workers", "2")
    d.start(ready="ready: 2 workers")
    servers = {"unbound": (control_conf(tmp_path / "ub.conf", "127.0.0.1", cport), uport),
               "corenet": (control_conf(tmp_path / "d.conf", d.control), d.port)}
    try:
        # default zones of a newer Unbound than the one installed (service.arpa....): left
        # out of what the list commands print
        listed = {who: {line.split()[0] for line in ubctl(conf, "list_local_zones")
                        .stdout.splitlines()} for who, (conf, _) in servers.items()}
        newer = listed["corenet"] - listed["unbound"]
        assert newer <= {"resolver.arpa.", "service.arpa."}, newer

        def shown(text: str) -> str:
            """``text`` less the lines of those zones (and the empty line after each
            record of a data list, which is checked apart)."""
            return "".join(line for line in text.splitlines(keepends=True)
                           if line.split() and line.split()[0] not in newer)

        def both(*args, input=None, loose=False) -> tuple[int, str]:
            """The same exit status and output from both (``loose``: the same exit status,
            number of lines and last line: an error line's reason is each parser's own)."""
            got = {who: ubctl(conf, *args, input=input) for who, (conf, _) in servers.items()}
            seen = {(r.returncode, shown(r.stdout)) for r in got.values()}
            if loose:
                seen = {(rc, len(text.splitlines()), text.splitlines()[-1:][0])
                        for rc, text in seen}
            assert len(seen) == 1, (args, got)
            return got["corenet"].returncode, got["corenet"].stdout

        def answer(source: str, name: str):
            out = set()
            for _, port in servers.values():
                r = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port,
                                  timeout=3, source=source)
                out.add((dns.rcode.to_text(r.rcode()),
                         tuple(sorted(rd.to_text() for rr in r.answer for rd in rr))))
            assert len(out) == 1, (source, name, out)
            return out.pop()

        for view in ("inside", "first", "bare"):
            for cmd in ("view_list_local_zones", "view_list_local_data"):
                both(cmd, view)
        assert "v.test. static" in both("view_list_local_zones", "inside")[1]
        data = ubctl(servers["corenet"][0], "view_list_local_data", "inside").stdout
        assert "www.v.test.\t3600\tIN\tA\t10.0.0.1\n\n" in data, data
        assert both("view_list_local_zones", "nosuch") == (0, "no view with name: nosuch\n")
        assert both("view_local_zone", "nosuch", "x.test.", "static") == \
            (0, "no view with name: nosuch\n")
        assert both("view_local_zone", "inside") == \
            (1, "error could not find next argument after inside\n")
        assert answer("127.0.0.2", "www.w.test.")[0] != "NOERROR"
        assert both("view_local_zone", "inside", "w.test.", "static") == (0, "ok\n")
        assert both("view_local_data", "inside", "www.w.test. 300 IN A 192.0.2.5") == \
            (0, "ok\n")
        assert answer("127.0.0.2", "www.w.test.") == ("NOERROR", ("192.0.2.5",))
        assert answer("127.0.0.1", "www.w.test.")[0] != "NOERROR"
        rc, text = both("view_local_datas", "inside",
                        input="a.w.test. 60 IN A 192.0.2.6\nnot a record\n", loose=True)
        assert text.endswith("added 1 datas\n") and rc == 1, text
        assert "error parsing local-data at line 2" in text and "'not a record'" in text
        assert answer("127.0.0.2", "a.w.test.") == ("NOERROR", ("192.0.2.6",))
        both("view_list_local_data", "inside")
        assert both("view_local_datas_remove", "inside", input="a.w.test.\nbad..name\n") == \
            (1, "error cannot parse name bad..name at 5: Empty label\n"
                "error for input line: bad..name\nremoved 1 datas\n")
        assert answer("127.0.0.2", "a.w.test.") == ("NXDOMAIN", ())
        assert both("view_local_data_remove", "inside", "www.w.test.") == (0, "ok\n")
        assert answer("127.0.0.2", "www.w.test.") == ("NXDOMAIN", ())
        assert both("view_local_zone_remove", "inside", "w.test.") == (0, "ok\n")
        both("view_list_local_zones", "inside")
        # a view without zones gets some (and the default zones with them); the global
        # zones no longer answer its clients
        assert answer("127.0.0.4", "www.g.test.") == ("NOERROR", ("192.0.2.1",))
        assert both("view_local_zone", "bare", "b.test.", "static") == (0, "ok\n")
        both("view_list_local_zones", "bare")
        assert answer("127.0.0.4", "localhost.") == ("NOERROR", ("127.0.0.1",))
        assert answer("127.0.0.3", "www.g.test.") == ("NOERROR", ("192.0.2.1",))
        # (the daemon alone: it has the lab) a name the cache holds, under no local zone
        # until a view gets one for it: that view's clients are answered from it at once
        cached = dns.message.make_query("www.example.com.", "A")
        assert dns.query.udp(cached, "127.0.0.1", port=d.port, timeout=3,
                             source="127.0.0.2").answer
        ubctl(servers["corenet"][0], "view_local_zone", "inside", "www.example.com.", "static")
        r = dns.query.udp(cached, "127.0.0.1", port=d.port, timeout=3, source="127.0.0.2")
        assert (r.rcode(), r.answer) == (dns.rcode.NXDOMAIN, []), r    # static, no data
        r = dns.query.udp(cached, "127.0.0.1", port=d.port, timeout=3, source="127.0.0.1")
        assert r.answer, r
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]


def test_policy_zone_commands_as_unbound(lab, tmp_path):
    """list_auth_zones lists the response policy zones with their serials, rpz_disable and
    rpz_enable stop and resume a zone's policy, auth_zone_reload takes its changed zone
    file, and the errors for a zone that is not there: a real Unbound and the daemon (two
    workers) print the same and answer the same after each command."""
    need_unbound()
    uport, cport = free_port(), free_port()
    bulk = f"{Z.BULK}@{lab.port}"
    zone = tmp_path / "rpz.zone"

    def publish(serial: int, blocked: str) -> None:
        zone.write_text(f"$ORIGIN rpz.test.\n$TTL 60\n"
                        f"@ SOA ns.rpz.test. hostmaster.rpz.test. {serial} 3600 600 86400 30\n"
                        f"@ NS ns.rpz.test.\n{blocked} CNAME .\n")

    publish(1, "h001.bulk.net")
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, ['module-config: "respip iterator"',
                                    "do-not-query-localhost: no", "forward-zone:",
                                    'name: "bulk.net."', f"forward-addr: {bulk}",
                                    "rpz:", "name: rpz.test.", f'zonefile: "{zone}"'],
                         plain_control(cport))
    conf = tmp_path / "resolver.toml"
    conf.write_text(f'[[forward-zone]]\nname = "bulk.net."\nforward-addr = ["{bulk}"]\n'
                    f'[[rpz]]\nname = "rpz.test."\nzonefile = "{zone}"\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--workers", "2")
    d.start(ready="ready: 2 workers")
    servers = {"unbound": (control_conf(tmp_path / "ub.conf", "127.0.0.1", cport), uport),
               "corenet": (control_conf(tmp_path / "d.conf", d.control), d.port)}
    try:
        def both(*args) -> tuple[int, str]:
            got = {who: ubctl(conf, *args) for who, (conf, _) in servers.items()}
            seen = {(r.returncode, r.stdout) for r in got.values()}
            assert len(seen) == 1, (args, got)
            return seen.pop()

        def rcodes(name: str) -> str:
            seen = {dns.rcode.to_text(ask(port, name).rcode()) for _, port in servers.values()}
            assert len(seen) == 1, (name, seen)
            return seen.pop()

        assert both("list_auth_zones") == (0, "rpz.test.\tserial 1\n")
        assert rcodes("h001.bulk.net.") == "NXDOMAIN"
        assert both("rpz_disable", "rpz.test.") == (0, "ok\n")
        assert rcodes("h001.bulk.net.") == "NOERROR"
        assert both("rpz_enable", "rpz.test.") == (0, "ok\n")
        assert rcodes("h001.bulk.net.") == "NXDOMAIN"
        publish(2, "h002.bulk.net")
        assert both("auth_zone_reload", "rpz.test.") == (0, "ok\n")
        assert both("list_auth_zones") == (0, "rpz.test.\tserial 2\n")
        assert (rcodes("h001.bulk.net."), rcodes("h002.bulk.net.")) == ("NOERROR", "NXDOMAIN")
        for cmd in ("auth_zone_reload", "rpz_disable", "rpz_enable"):
            assert both(cmd, "nosuch.test.") == (1, "error no auth-zone nosuch.test.\n")
        # a zone read from a file has no primary to transfer from
        assert both("auth_zone_transfer", "rpz.test.") == \
            (1, "error zone xfr task not found rpz.test.\n")
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]


def test_status_of_a_daemon_not_listening_is_unbound_control_s(tmp_path):
    """Where nothing listens (a socket file left behind, a TCP port no daemon holds),
    ``status`` prints that the daemon is stopped and exits 3, as unbound-control does (the
    LSB status of a stopped service); other commands fail with 1; a socket that is not
    there at all is an error (1), as for unbound-control."""
    import socket

    need_unbound()
    stale = tmp_path / "stale.sock"
    left = socket.socket(socket.AF_UNIX)
    left.bind(str(stale))                       # bound, never listening: refused
    port = free_port()
    ours_tcp = tmp_path / "resolver.toml"
    ours_tcp.write_text('control-enable = true\ncontrol-interface = ["127.0.0.1"]\n'
                        f"control-port = {port}\ncontrol-use-cert = false\n")
    try:
        for theirs_conf, ours_args in (
                (control_conf(tmp_path / "unix.conf", str(stale)), ("-s", str(stale))),
                (control_conf(tmp_path / "tcp.conf", "127.0.0.1", port), ("-c", str(ours_tcp)))):
            theirs = ubctl(theirs_conf, "status")
            ours = cli(*ours_args, "status")
            assert (theirs.returncode, theirs.stdout) == (3, "unbound is stopped\n")
            assert (ours.returncode, ours.stdout) == (3, "corenet-resolver is stopped\n"), ours
            assert cli(*ours_args, "flush").returncode == ubctl(theirs_conf, "flush").returncode == 1
        missing = str(tmp_path / "none.sock")
        theirs = ubctl(control_conf(tmp_path / "none.conf", missing), "status")
        ours = cli("-s", missing, "status")
        assert theirs.returncode == ours.returncode == 1 and ours.stdout == ""
    finally:
        left.close()


#: One unbound.conf's zones for both servers: forward zones (by address and port, one also
#: domain-insecure), stub zones (primed or not), a local zone with records of several types
#: added one type after another, records outside any zone and a local-data-ptr.
LISTED_ZONES = [
    "domain-insecure: fwd-b.test.",
    'local-zone: "data.test." static',
    'local-data: "data.test. 300 IN A 192.0.2.1"',
    'local-data: "data.test. 300 IN A 192.0.2.2"',
    'local-data: "data.test. IN AAAA 2001:db8::1"',
    'local-data: "data.test. 60 IN MX 10 mail.data.test."',
    "local-data: 'txt.data.test. 60 IN TXT \"hello world\" \"two\"'",
    'local-data: "a.data.test. 60 IN CNAME data.test."',
    'local-data: "srv.outside.test. 120 IN SRV 0 5 443 host.outside.test."',
    'local-data-ptr: "192.0.2.1 data.test."',
    "forward-zone:", 'name: "fwd-b.test."', "forward-addr: 127.0.0.1@5353",
    "forward-addr: ::1",
    "forward-zone:", 'name: "fwd-a.test."', "forward-addr: 127.0.0.2",
    "forward-first: yes",
    "stub-zone:", 'name: "stub.test."', "stub-addr: 127.0.0.3@5300", "stub-addr: 127.0.0.4",
    "stub-zone:", 'name: "primed.test."', "stub-addr: 127.0.0.5", "stub-prime: yes",
]


def test_list_forwards_stubs_and_local_data_print_as_unbound(lab, tmp_path):
    """The same unbound.conf zones in a real Unbound and in the daemon (its import):
    ``list_forwards``, ``list_stubs`` (the root's hints first), ``list_local_data`` (the
    default zones' records too, in Unbound's text form and order), ``list_local_zones`` (in
    the order of Unbound's tree) and ``forward`` print the same lines."""
    need_unbound()
    uport, cport = free_port(), free_port()
    w = tmp_path / "ub"
    w.mkdir()
    hints = f'root-hints: "{lab.root_hints_file}"'
    conf = tmp_path / "zones.conf"
    conf.write_text("server:\n" + "".join(f"  {line}\n" for line in LISTED_ZONES))
    toml = tmp_path / "zones.toml"
    r = cli("import-unbound", str(conf), "-o", str(toml))
    assert r.returncode == 0, r.stderr
    d = Daemon(tmp_path / "d", lab, "--config", str(toml)).start()
    try:
        proc = local_unbound(w, uport, [hints, 'module-config: "validator iterator"',
                                        *LISTED_ZONES], plain_control(cport))
    except BaseException:
        d.stop()
        raise
    servers = {"unbound": control_conf(tmp_path / "ub.conf", "127.0.0.1", cport),
               "corenet": control_conf(tmp_path / "d.conf", d.control)}
    try:
        for who, cf in servers.items():        # servers named on a command line
            for args in (("forward_add", "fwd-c.test.", "127.0.0.7", "127.0.0.8"),
                         ("stub_add", "stub-c.test.", "127.0.0.9", "127.0.0.10"),
                         ("stub_add", "+p", "stub-d.test.", "127.0.0.11"),
                         ("stub_add", "+ip", "stub-e.test.", "127.0.0.13"),
                         ("forward_add", "+i", "fwd-d.test.", "127.0.0.12")):
                r = ubctl(cf, *args)
                assert (r.returncode, r.stdout) == (0, "ok\n"), (who, args, r.stdout)
        for command in ("list_forwards", "list_stubs", "list_local_data", "list_local_zones"):
            out = {}
            for who, cf in servers.items():
                r = ubctl(cf, command)
                assert r.returncode == 0, (who, command, r.stdout, r.stderr)
                out[who] = r.stdout
            if command == "list_local_data":
                # default zones of RFC 9462 and 9665, which Unbound 1.17 predates
                out["corenet"] = "".join(re.findall(r"^(?!(?:service|resolver)\.arpa\.\t)"
                                                    r".*\n\n", out["corenet"], re.M))
            if command == "list_local_zones":      # the same zones, in Unbound's tree order
                out["corenet"] = re.sub(r"^(?:service|resolver)\.arpa\. .*\n", "",
                                        out["corenet"], flags=re.M)
            assert out["corenet"] == out["unbound"], (command, out)
            assert out["unbound"].strip(), (command, out)
        shown = {who: ubctl(cf, "forward", "127.0.0.1@5353", "::1").returncode
                 for who, cf in servers.items()}
        assert shown == dict.fromkeys(servers, 0)
        shown = {who: ubctl(cf, "forward").stdout for who, cf in servers.items()}
        assert shown["corenet"] == shown["unbound"] == "::1 127.0.0.1\n", shown
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]


#: A line of ``dump_infra``: an address (``@PORT`` when not 53), a zone, then the figures in
#: Unbound's order
INFRA_LINE = re.compile(r"(\S+) (\S*\.) ttl \d+ ping \d+ var \d+ rtt \d+ rto \d+ tA \d+ "
                        r"tAAAA \d+ tother \d+ ednsknown [01] edns (?:0|-1) delay \d+ lame "
                        r"dnssec [01] rec [01] A [01] other [01]")


def infra_lines(text: str) -> dict[str, set[str]]:
    """``dump_infra``'s lines, each checked against INFRA_LINE: the zones of each address."""
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        m = INFRA_LINE.fullmatch(line)
        assert m, f"not a dump_infra line: {line!r}"
        assert m.group(2) not in out.get(m.group(1), ()), f"twice: {line!r}"
        out.setdefault(m.group(1), set()).add(m.group(2))
    return out


#: the lab's names both resolvers are asked, and the shapes of query each is asked in
LAB_NAMES = ("www.example.com.", "example.com.", "nx.example.com.")


def _asked(port: int, name: str, edns: bool) -> dns.message.Message:
    q = dns.message.make_query(name, "A", use_edns=0 if edns else False)
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=3)


def _answer_shape(r: dns.message.Message) -> tuple:
    """An answer without its TTLs and the order of its records."""
    return (r.rcode(), sorted((str(rr.name), rr.rdtype, sorted(map(str, rr)))
                              for rr in r.answer),
            sorted((str(rr.name), rr.rdtype) for rr in r.authority))


def test_dump_infra_and_load_cache_of_unbound_s_dump_as_unbound(tmp_path):
    """A real Unbound and the daemon resolve the same lab names: ``dump_infra`` prints
    Unbound's line on both, for the same zones, and every server Unbound asked is in the
    daemon's too (it asked the same servers' zones). Then Unbound's own ``dump_cache``, fed
    through unbound-control to a fresh daemon's ``load_cache``, answers those names from its
    cache as Unbound answers them, with no query sent to the lab; a dump cut short or with
    a line it cannot read is refused and loads nothing."""
    lab, proc, uport, cport = unbound_over_lab(tmp_path)
    d = fresh = None
    try:
        d = Daemon(tmp_path / "d", lab).start()
        ub = control_conf(tmp_path / "ub.conf", "127.0.0.1", cport)
        theirs = {}
        for name in LAB_NAMES:
            theirs[name] = _asked(uport, name, True)
            assert _answer_shape(_asked(d.port, name, True)) == _answer_shape(theirs[name])
        shown = {}
        for who, conf in (("unbound", ub),
                          ("corenet", control_conf(tmp_path / "d.conf", d.control))):
            r = ubctl(conf, "dump_infra")
            assert r.returncode == 0 and r.stdout.endswith("\n"), (who, r.stdout, r.stderr)
            shown[who] = infra_lines(r.stdout)
        assert set(shown["unbound"]) <= set(shown["corenet"]), shown
        for addr, zones in shown["unbound"].items():
            assert zones <= shown["corenet"][addr], (addr, shown)
        assert {"com.", "example.com."} <= set().union(*shown["corenet"].values()), shown

        r = ubctl(ub, "dump_cache")
        assert r.returncode == 0 and r.stdout.startswith("START_RRSET_CACHE\n"), r.stdout
        dump = r.stdout
        assert "\nmsg www.example.com. IN A " in dump and dump.endswith("END_MSG_CACHE\nEOF\n")
        fresh = Daemon(tmp_path / "fresh", lab).start()
        fresh_ub = control_conf(tmp_path / "fresh.conf", fresh.control)
        cut = dump[:dump.index("START_MSG_CACHE")]             # no message section
        r = cli("--control", fresh.control, "load_cache", input=cut)
        assert r.returncode == 1 and "START_MSG_CACHE was expected" in r.stdout + r.stderr, r
        bad = dump.replace("\n;rrset ", "\n;rrset x ", 1)       # its first rrset unreadable
        r = ubctl(fresh_ub, "load_cache", input=bad)
        assert r.returncode == 1 and r.stdout.startswith("error load_cache: line 2: "), r.stdout
        assert fresh.stats()["cache"]["messages"] == fresh.stats()["cache"]["rrsets"] == 0
        r = ubctl(fresh_ub, "load_cache", input=dump)
        assert (r.returncode, r.stdout) == (0, "ok\n"), (r.stdout, r.stderr)
        for name in LAB_NAMES:
            for edns in (False, True):
                got = _asked(fresh.port, name, edns)
                assert _answer_shape(got) == _answer_shape(theirs[name]), (name, edns, got)
        engine = fresh.stats()["engine"]
        assert engine["upstream_queries"] == 0 and engine["cache_misses"] == 0, engine
        assert engine["cache_hits"] == 2 * len(LAB_NAMES), engine
        r = ubctl(fresh_ub, "lookup", "www.example.com.")       # the delegation came too
        assert "Delegation with 2 names" in r.stdout, r.stdout
        assert fresh.alive() and "Traceback" not in fresh.log_text(), fresh.log_text()[-3000:]
    finally:
        stop_process(proc, 5.0, group=True)
        for daemon in (d, fresh):
            if daemon is not None:
                assert daemon.stop() == 0, daemon.log_text()[-2000:]
        lab.stop()


#: Unbound's options in milliseconds (corenet's settings and limits in seconds), each with
#: a value both take
IN_MILLISECONDS = {"jostle-timeout": "250", "tcp-idle-timeout": "20000",
                   "edns-tcp-keepalive-timeout": "60000", "unknown-server-time-limit": "500",
                   "infra-cache-min-rtt": "60", "infra-cache-max-rtt": "1200",
                   "serve-expired-client-timeout": "1500", "tcp-auth-query-timeout": "2500"}


def test_options_in_milliseconds_are_got_and_set_in_milliseconds(lab, tmp_path):
    """get_option prints Unbound's options that it keeps in milliseconds in milliseconds,
    and set_option takes them so, on the daemon serving the same lines as a real Unbound
    (through unbound-control and corenet-resolver alike)."""
    from resolver.daemon import unbound_conf

    need_unbound()
    assert set(IN_MILLISECONDS) == set(unbound_conf.MILLISECONDS)
    lines = [f"{k}: {v}" for k, v in IN_MILLISECONDS.items()]
    cport = free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, free_port(), lines, plain_control(cport))
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n" + "".join(f"    {line}\n" for line in lines))
    try:
        d = Daemon(tmp_path / "d", lab, "-c", str(conf)).start()
    except BaseException:
        stop_process(proc, group=True)
        raise
    ub = control_conf(tmp_path / "ub.conf", "127.0.0.1", cport)
    ours = control_conf(tmp_path / "ours.conf", d.control)
    try:
        for option, value in IN_MILLISECONDS.items():
            theirs = ubctl(ub, "get_option", option)
            assert theirs.stdout == f"{value}\n", (option, theirs.stdout)
            assert ubctl(ours, "get_option", option).stdout == theirs.stdout, option
            assert cli("--control", d.control, "get_option", option).stdout == theirs.stdout
        for ctl in (ub, ours):
            r = ubctl(ctl, "set_option", "tcp-idle-timeout:", "15000")
            assert r.returncode == 0 and r.stdout == "ok\n", (ctl, r.stdout + r.stderr)
            assert ubctl(ctl, "get_option", "tcp-idle-timeout").stdout == "15000\n", ctl
        # corenet's own name for it, in its own unit
        assert cli("--control", d.control, "get_option", "serve-stale-client-timeout"
                   ).stdout == "1.5\n"
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
        stop_process(proc, group=True)


@pytest.mark.parametrize("workers", [1, 2])
def test_fast_reload_reloads_keeping_the_cache_and_drops_queries_with_d(lab, tmp_path,
                                                                        workers):
    """unbound-control's fast_reload (Unbound 1.22's: this Unbound has none to compare):
    the file read again, the cache kept; ``+v`` says it starts; ``+d`` drops the
    resolutions in flight, whose clients get no answer; an unknown option is refused as
    Unbound's remote.c refuses it."""
    import socket

    need_unbound()
    conf = tmp_path / "resolver.toml"           # a dead server's query waits 5 s
    base = "[limits]\ninitial_rto = 5.0\nmax_rto = 5.0\nmax_query_time = 20.0\n"
    conf.write_text('local-data = ["a.test. 300 A 10.0.0.1"]\n' + base)
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--workers", str(workers))
    d.start(ready="ready: 2 workers" if workers == 2 else "ready")
    ours = control_conf(tmp_path / "ours.conf", d.control)
    try:
        assert d.ask("www.example.com.").answer
        cached = d.stats()["cache"]["messages"]
        assert cached > 0
        conf.write_text('local-data = ["a.test. 300 A 10.0.0.2"]\n' + base)
        r = ubctl(ours, "fast_reload")
        assert (r.returncode, r.stdout) == (0, "ok\n"), r.stdout + r.stderr
        assert d.ask("a.test.").answer[0][0].address == "10.0.0.2"
        assert d.stats()["cache"]["messages"] == cached     # the cache kept
        r = ubctl(ours, "fast_reload", "+vp")
        assert (r.returncode, r.stdout) == (0, "start fast_reload\nok\n"), r.stdout
        for bad, said in (("+vx", "+x"), ("now", "now")):
            r = ubctl(ours, "fast_reload", bad)
            assert (r.returncode, r.stdout) == (1, f"error: unknown option '{said}'\n")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(dns.message.make_query("www.alldead.com.", "A").to_wire(),
                     ("127.0.0.1", d.port))
            deadline = time.monotonic() + 5
            while "www.alldead.com." not in cli("--control", d.control,
                                                 "dump_requestlist").stdout:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            r = ubctl(ours, "fast_reload", "+d")
            assert (r.returncode, r.stdout) == (0, "ok\n"), r.stdout + r.stderr
            assert "www.alldead.com." not in cli("--control", d.control,
                                                  "dump_requestlist").stdout
            s.settimeout(2.0)
            with pytest.raises(socket.timeout):
                s.recv(512)                                     # dropped: no answer
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
