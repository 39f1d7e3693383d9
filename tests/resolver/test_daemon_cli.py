"""The corenet-resolver command line: config errors (exit 2, one line, nothing bound), the
TOML file and its precedence, ``query`` (in-process and @server), ``stats``/``flush``/
``reload`` over the control socket, SIGHUP, graceful SIGTERM, and ``--workers``."""
from __future__ import annotations

import os
import socket
import signal
import stat
import threading
import time

import dns.message
import dns.query
import dns.rcode
import pytest

from daemon_proc import Daemon, cli, refused_as_nobody
from ports import free_port


@pytest.mark.parametrize("args, names", [
    (["--listen", "nonsense"], "listen"),
    (["--listen", "127.0.0.1:99999"], "listen"),
    (["--workers", "0"], "workers"),
    (["--allow", "10.0.0.300/8"], "allow"),
    (["--root-hints", "/nonexistent/hints"], "root-hints"),
    (["--metrics", "localhost:x"], "metrics"),
    (["--log-level", "chatty"], "log-level"),
    (["--tcp-idle-timeout", "soon"], "tcp-idle-timeout"),
    (["--control", "/nonexistent/dir/ctl.sock"], "control"),
    (["--trust-anchor", "/nonexistent/anchor"], "trust-anchor"),
    (["--cache-size", "-5"], "cache-size"),
    (["--upstream-port", "0"], "upstream-port"),
])
def test_bad_option_is_one_line_naming_it_and_exit_2(tmp_path, args, names):
    port = free_port()
    ctl = tmp_path / "ctl.sock"
    extra = [] if "--control" in args else ["--control", str(ctl)]
    r = cli("serve", "--listen", f"127.0.0.1:{port}", *extra, *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], r.stderr
    assert not ctl.exists(), "nothing may be created before the config is known good"


@pytest.mark.parametrize("text, names", [
    ('tcp-idle-timeout = "soon"\n', "tcp-idle-timeout"),
    ("colour = 1\n", "colour"),
    ("workers = [\n", "config.toml"),
    ('listen = ["127.0.0.1:53", "::1:x"]\n', "listen"),
    ('root-hints = "bad.hints"\n', "root-hints"),
    ('ipv6 = "yes"\n', "ipv6"),
])
def test_bad_config_file_value_is_one_line_naming_it_and_exit_2(tmp_path, text, names):
    (tmp_path / "bad.hints").write_text("this is not a hints file\n")
    conf = tmp_path / "config.toml"
    conf.write_text(text.replace("bad.hints", str(tmp_path / "bad.hints")))
    r = cli("serve", "--config", str(conf), "--listen", f"127.0.0.1:{free_port()}")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], r.stderr


def test_config_file_is_read_and_the_command_line_wins(lab, tmp_path):
    port = free_port()
    conf = tmp_path / "resolver.toml"
    conf.write_text(f'listen = ["127.0.0.1:{port}"]\nallow = ["10.0.0.0/8"]\n'
                    f'tcp-max-inflight = 4\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--allow", "127.0.0.0/8",
               listen=False, port=port).start()
    try:
        r = d.ask("www.example.com.")       # listen from the file, allow from the command line
        assert r.rcode() == dns.rcode.NOERROR and r.answer
    finally:
        assert d.stop() == 0


def test_query_in_process_from_the_lab_root(lab):
    hints = ["--in-process", "--root-hints", str(lab.root_hints_file), "--upstream-port", str(lab.port),
             "--no-do-not-query-localhost"]
    r = cli("query", "www.example.com", "A", *hints, "+short")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == ["192.0.2.1", "192.0.2.11"]
    r = cli("query", "nope.example.com.", *hints)
    assert r.returncode == 0 and "status: NXDOMAIN" in r.stdout and "SOA" in r.stdout
    assert ";; QUESTION SECTION:" in r.stdout
    r = cli("query", "www.cyc1.com.", *hints)
    assert r.returncode == 0 and "status: SERVFAIL" in r.stdout     # an answer: 0, as dig
    assert "real root" not in r.stderr


@pytest.fixture(scope="module")
def daemon(lab, tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("clid"), lab).start()
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


def test_query_at_server_udp_and_tcp(daemon):
    for transport in ([], ["+tcp"]):
        r = cli("query", "@127.0.0.1", "-p", str(daemon.port), "www.example.net", *transport,
                "+short")
        assert r.returncode == 0 and r.stdout.split() == ["198.51.100.1"], r.stderr
    r = cli("query", "big.example.com", "TXT", "@127.0.0.1", "-p", str(daemon.port))
    assert r.returncode == 0 and r.stdout.count('"') == 80     # TC on UDP: retried over TCP



def test_query_takes_digs_flags(daemon):
    at = f"@localhost#{daemon.port}"           # a server name, and dig's #PORT
    r = cli("query", at, "-t", "MX", "example.com", "+short")
    assert r.returncode == 0 and r.stdout.split() == ["10", "mail.example.com."], r.stderr
    r = cli("query", at, "-x", "192.0.2.1")
    assert r.returncode == 0 and ";1.2.0.192.in-addr.arpa.\t\tIN\tPTR" in r.stdout
    r = cli("query", at, "www.example.com", "+dnssec")
    assert r.returncode == 0 and "flags: do" in r.stdout       # DO asked (and echoed)
    r = cli("query", at, "-x", "not-an-address")       # dig's: any dotted words, reversed
    assert r.returncode == 0 and ";not-an-address.in-addr.arpa." in r.stdout
    r = cli("query", "@127.0.0.1#notaport", "www.example.com")
    assert r.returncode == 1 and "bad port" in r.stderr


def test_query_shows_extended_dns_errors():
    import dns.edns
    import dns.message

    from resolver.tools.dig_options import Options
    from resolver.tools.dig_output import render
    q = dns.message.make_query("bogus.example.", "A", use_edns=0)
    r = dns.message.make_response(q)
    r.set_rcode(dns.rcode.SERVFAIL)
    r.use_edns(0, options=[dns.edns.EDEOption(dns.edns.EDECode.DNSSEC_BOGUS, "no valid RRSIG")])
    text = render(dns.message.from_wire(r.to_wire()), Options(), elapsed=None, server="x",
                  size=None)
    assert "; EDE: 6 (DNSSEC Bogus): (no valid RRSIG)" in text


def test_query_from_the_real_root_says_so_before_sending(monkeypatch, capsys):
    """Nothing is sent here: the in-process resolution is replaced by one that records the
    moment it is asked and times out."""
    import asyncio

    from resolver.daemon import cli as cli_module
    from resolver.tools import dig

    said_before = []

    def no_network(q, o):
        said_before.append(";; resolving in this process from the real root" in
                           capsys.readouterr().err)
        raise asyncio.TimeoutError
    monkeypatch.setattr(dig, "resolve_in_process", no_network)
    assert cli_module.main(["query", "--in-process", "www.example.com"]) == 9
    assert said_before == [True]


def test_stats_flush_reload_over_the_control_socket(daemon):
    mode = stat.S_IMODE(os.stat(daemon.control).st_mode)
    assert mode == 0o660
    daemon.ask("h050.bulk.net.")
    r = cli("stats", "--control", daemon.control)
    assert r.returncode == 0 and "\ntotal.num.cachehits=" in r.stdout
    r = cli("stats", "--control", daemon.control, "--prometheus")
    assert r.returncode == 0 and "corenet_resolver_cache_hits_total" in r.stdout
    r = cli("stats", "--control", daemon.control, "--json")
    assert r.returncode == 0 and '"engine"' in r.stdout
    before = daemon.stats()["engine"]["upstream_queries"]
    daemon.ask("h050.bulk.net.")
    assert daemon.stats()["engine"]["upstream_queries"] == before         # a hit
    r = cli("flush", "h050.bulk.net.", "--control", daemon.control)
    assert r.returncode == 0, r.stderr
    daemon.ask("h050.bulk.net.")
    assert daemon.stats()["engine"]["upstream_queries"] > before          # asked again
    r = cli("reload", "--control", daemon.control)
    assert r.returncode == 0 and r.stdout == "ok\n"
    r = cli("stats", "--control", daemon.control + ".nothing")
    assert r.returncode == 1 and "control socket" in r.stderr


def test_sighup_rereads_the_config_and_keeps_the_cache(lab, tmp_path):
    conf = tmp_path / "resolver.toml"
    conf.write_text('allow = ["127.0.0.0/8"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        assert d.ask("www.example.com.").answer
        cached = d.stats()["cache"]["messages"]
        conf.write_text('allow = ["10.0.0.0/8"]\n')
        os.kill(d.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while d.ask("www.example.com.").rcode() != dns.rcode.REFUSED:
            assert time.monotonic() < deadline, "reload not applied"
            time.sleep(0.05)
        conf.write_text('allow = ["127.0.0.0/8"]\nlog-level = "DEBUG"\n')
        r = cli("reload", "--control", d.control)
        assert r.returncode == 0, r.stderr
        upstream = d.stats()["engine"]["upstream_queries"]
        assert d.ask("www.example.com.").answer
        s = d.stats()
        assert s["cache"]["messages"] >= cached and s["engine"]["upstream_queries"] == upstream
        conf.write_text('allow = ["nonsense"]\n')        # a bad reload keeps the old config
        r = cli("reload", "--control", d.control)
        assert r.returncode == 1 and r.stdout.startswith("error ") and "allow" in r.stdout
        assert d.ask("www.example.com.").answer
    finally:
        assert d.stop() == 0


def test_sigterm_finishes_the_queries_in_flight(lab, tmp_path):
    d = Daemon(tmp_path, lab).start()
    got = {}

    def ask() -> None:
        try:
            got["r"] = d.ask("www.alldead.com.", timeout=15)   # seconds of dead servers
        except Exception as e:                               # noqa: BLE001 - reported below
            got["e"] = e

    t = threading.Thread(target=ask)
    t.start()
    deadline = time.monotonic() + 5
    while d.stats()["inflight"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    t.join(20)
    assert "r" in got, got
    assert got["r"].rcode() == dns.rcode.SERVFAIL
    assert d.proc.wait(20) == 0
    assert time.monotonic() - t0 < 15
    assert "stopped" in d.log_text()


def test_workers_share_the_port_and_the_parent_sums_their_figures(lab, tmp_path):
    d = Daemon(tmp_path, lab, "--workers", "2").start(ready="started 2 workers")
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                s = d.stats()
                if s.get("workers") == 2:
                    break
            except Exception:          # noqa: BLE001 - workers still starting
                pass
            assert time.monotonic() < deadline, d.log_text()[-2000:]
            time.sleep(0.1)
        with open(f"/proc/{d.pid}/task/{d.pid}/children") as f:
            children = [int(x) for x in f.read().split()]
        assert len(children) == 2
        for i in range(40):            # from distinct source ports: spread over both workers
            r = d.ask(f"h{i:03d}.bulk.net.")
            assert r.answer[0][0].to_text() == f"10.1.0.{i}"
        s = d.stats()
        assert s["workers"] == 2 and s["engine"]["client_queries"] >= 40
        assert "corenet_resolver_queries_total" in d.metrics()
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}") or _zombie_or_gone(pid)


def _zombie_or_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_query_timeout_is_a_nonzero_exit():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:   # bound, never read
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        r = cli("query", "www.example.com", "@127.0.0.1", "-p", str(port), "--timeout", "0.3")
    assert r.returncode == 9 and "timed out" in r.stdout


def test_started_daemon_freezes_its_startup_objects_and_collects_young_ones_less_often():
    import gc

    from resolver.daemon import worker as daemon

    threshold = gc.get_threshold()
    try:
        gc.unfreeze()
        daemon.settle_gc()
        assert gc.get_freeze_count() > 1000          # modules, functions, config...
        assert gc.get_threshold() == (daemon.GC_YOUNG_THRESHOLD, *threshold[1:])
        junk = [[] for _ in range(10)]
        junk.append(junk)                             # a cycle is still collected
        del junk
        assert gc.collect() >= 11
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM])
def test_an_address_in_use_is_named_in_the_error(lab, kind):
    taken = socket.socket(socket.AF_INET, kind)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        r = cli("serve", "--listen", f"127.0.0.1:{port}", "--root-hints", str(lab.root_hints_file),
                "--upstream-port", str(lab.port), timeout=60)
    finally:
        taken.close()
    proto = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
    assert r.returncode == 1
    assert f"cannot listen: {proto} 127.0.0.1:{port}: Address already in use" in r.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_user_drops_root_once_the_sockets_are_bound(lab, tmp_path, workers):
    import pwd

    if refused_as_nobody(tmp_path / "refused", lab):
        return
    nobody = pwd.getpwnam("nobody")
    # With workers, the parent drops root once they all run as that user; it says so last.
    d = Daemon(tmp_path, lab, "--user", "nobody", "--workers", workers).start(
        ready="ready" if workers == "1" else f"ready: {workers} workers")
    try:
        assert d.ask("www.example.com.").answer          # serving after the switch
        pids = [d.pid]
        if workers != "1":
            with open(f"/proc/{d.pid}/task/{d.pid}/children") as f:
                pids += [int(p) for p in f.read().split()]
            assert len(pids) == 3
        for pid in pids:
            with open(f"/proc/{pid}/status") as f:
                status = dict(line.split(":", 1) for line in f.read().splitlines())
            assert status["Uid"].split() == [str(nobody.pw_uid)] * 4, pid
            assert status["Gid"].split() == [str(nobody.pw_gid)] * 4, pid
            assert status["Groups"].strip() == ""
            assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0
        assert d.stats()["engine"]["client_queries"] >= 1    # the control socket still works
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_user_must_exist():
    r = cli("serve", "--user", "no-such-user-here")
    assert r.returncode == 2 and "no such user" in r.stderr


def test_the_config_reference_page_is_the_code_s():
    """docs/config.md is generated from the settings table (resolver.daemon.reference) and must not drift."""
    from pathlib import Path

    from resolver.daemon.config import SETTINGS
    from resolver.daemon.reference import reference
    page = Path(__file__).resolve().parents[2] / "docs" / "config.md"
    text = reference()
    assert page.read_text() == text, "run: python -m resolver.daemon.reference > docs/config.md"
    for name in SETTINGS:
        assert f"## `{name.replace('_', '-')}`" in text
    assert "(undocumented)" not in text


def test_version_and_the_start_up_banner(daemon):
    from corenet import __version__

    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"corenet-resolver {__version__}"
    log = daemon.log_text()
    line = next(x for x in log.splitlines() if f"corenet-resolver {__version__} on " in x)
    assert f"127.0.0.1:{daemon.port}" in line
    assert "DNSSEC validation OFF (no trust anchor for these root hints)" in line
    assert "cache 64 MiB" in line and "workers 1" in line


def test_started_as_root_it_becomes_an_unprivileged_user_by_default(lab, tmp_path):
    """No user configured: as root the daemon runs as corenet-resolver (or nobody when that
    system user is absent) once bound; without root it keeps its own identity."""
    import pwd

    from resolver.daemon.process import DEFAULT_USER, FALLBACK_USER

    d = Daemon(tmp_path, lab)
    if "--user" in d.args:                    # the helper's "keep root" for other tests
        i = d.args.index("--user")
        del d.args[i:i + 2]
    d.start()
    try:
        assert d.ask("www.example.com.").answer
        with open(f"/proc/{d.pid}/status") as f:
            status = dict(line.split(":", 1) for line in f.read().splitlines())
        if os.geteuid() == 0:
            from resolver.daemon.process import unreadable_code
            try:
                want = pwd.getpwnam(DEFAULT_USER)
            except KeyError:
                want = pwd.getpwnam(FALLBACK_USER)
            if not unreadable_code(want):
                assert status["Uid"].split() == [str(want.pw_uid)] * 4
                assert int(status["CapEff"], 16) == 0
                assert f"running as user {want.pw_name}" in d.log_text()
            else:
                # A checkout the user cannot read (a private temporary directory, root's
                # home): it would fail at its first lazy import, so the daemon keeps root
                # and says why.
                assert status["Uid"].split()[1] == "0"
                assert f"user {want.pw_name} could not read" in d.log_text()
        else:
            assert status["Uid"].split()[1] == str(os.geteuid())
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_an_empty_user_keeps_root(lab, tmp_path):
    d = Daemon(tmp_path, lab, "--user", "").start()
    try:
        with open(f"/proc/{d.pid}/status") as f:
            uid = next(line for line in f if line.startswith("Uid:")).split()[1]
        assert uid == str(os.geteuid())
        assert "running as user" not in d.log_text()
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_a_configured_user_that_cannot_read_the_code_is_refused(tmp_path, monkeypatch):
    """Modules load lazily: a user that cannot read the installed code would fail at a
    worker's restart or a feature's first use, so the daemon refuses it at start."""
    import pwd

    from resolver.daemon import process
    from resolver.daemon.config import ConfigError, build

    private = tmp_path / "private" / "site-packages"
    private.mkdir(parents=True)
    (tmp_path / "private").chmod(0o700)
    nobody = pwd.getpwnam("nobody")
    assert not process._reachable_by(nobody, str(private))
    (tmp_path / "private").chmod(0o755)
    if os.geteuid() != 0:
        return                                 # only root switches users: nothing to refuse
    monkeypatch.setattr(process, "unreadable_code", lambda pw: [str(private)])
    with pytest.raises(ConfigError, match=f"user: nobody could not read {private}"):
        process.choose_user(build(None, {"user": "nobody"}), None)
    cfg = build(None, {"user": ""})
    assert process.choose_user(cfg, None)[0].user == ""
