"""The daemon as a service: ``checkconf`` and config errors with their line, the sample
config, serve-stale and prefetch keys, ``sd_notify`` over a fake ``NOTIFY_SOCKET``, the
pidfile, the control socket's default place and mode, ``status``, the query log, reload
errors with several workers, the systemd unit, and the metrics through prometheus_client's
text and OpenMetrics parsers."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import pytest

from daemon_proc import ROOT, Daemon, cli, refused_as_nobody

SAMPLE = ROOT / "docs" / "corenet-resolver.toml"
UNIT = ROOT / "resolver" / "data" / "corenet-resolver.service"
#: a log-queries line (Unbound's): client, name, type, class
QUERY = re.compile(r"\] info: \S+ \S+ \S+ IN$")


# ---- config: checkconf, lines, sample, serve-stale and prefetch --------------------------------
def test_checkconf_accepts_the_sample_and_names_key_and_line_of_a_bad_one(tmp_path):
    r = cli("checkconf", str(SAMPLE))
    assert r.returncode == 0 and r.stdout.strip() == f"{SAMPLE}: ok", r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('# comment\nlisten = ["127.0.0.1:5353"]\n\nprefetch-hits = 3\n')
    r = cli("checkconf", str(bad))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{bad}:4:" in lines[0] and "'prefetch-hits'" in lines[0]
    bad.write_text('[server]\nworkers = 2\n"serve-stale-window" = -1\n')
    r = cli("checkconf", str(bad))
    assert r.returncode == 1 and f"{bad}:3:" in r.stderr and "serve-stale-window" in r.stderr
    bad.write_text('root-hints = "/nonexistent/hints"\n')
    r = cli("checkconf", str(bad))
    assert r.returncode == 1 and f"{bad}:1:" in r.stderr and "root-hints" in r.stderr
    hints = tmp_path / "garbage.hints"
    hints.write_text("not a hints file\n")
    bad.write_text(f'root-hints = "{hints}"\n')
    r = cli("checkconf", str(bad))
    assert r.returncode == 1 and "root hints" in r.stderr
    r = cli("checkconf", str(tmp_path / "missing.toml"))
    assert r.returncode == 1 and "cannot read" in r.stderr


def test_the_sample_config_parses_and_lists_every_setting():
    from resolver.daemon.config import SETTINGS, build

    cfg = build(str(SAMPLE))
    assert cfg.listen == (("127.0.0.1", 53), ("::1", 53)) and cfg.log_queries is False
    text = SAMPLE.read_text()
    for name in SETTINGS:
        key = name.replace("_", "-")
        assert f"\n{key} = " in text or f"\n# {key} = " in text, f"{key} missing from the sample"


def test_serve_stale_and_prefetch_keys_reach_the_engine(tmp_path):
    from resolver.daemon.config import build
    from resolver.daemon.server import make_resolver
    from resolver.limits import DEFAULT

    conf = tmp_path / "c.toml"
    conf.write_text("serve-stale-window = 3600\nserve-stale-ttl = 7\nprefetch-min-hits = 5\n")
    lv = make_resolver(build(str(conf))).lv
    assert (lv.stale_window, lv.stale_answer_ttl, lv.prefetch_min_hits) == (3600, 7, 5)
    assert lv.prefetch_fraction == DEFAULT.prefetch_fraction
    conf.write_text("serve-stale = false\nprefetch = false\n")
    lv = make_resolver(build(str(conf))).lv
    assert lv.stale_window == 0 and lv.prefetch_fraction == 0


# ---- sd_notify ---------------------------------------------------------------------------------
class FakeManager:
    """A NOTIFY_SOCKET: a Unix datagram socket (abstract with ``abstract``) collecting the
    daemon's messages."""

    def __init__(self, tmp_path: Path, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"corenet-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.address = str(tmp_path / "notify.sock")
            self.sock.bind(self.address)
        self.messages: list[dict[str, str]] = []

    def wait_for(self, key: str, value: str = "1", timeout: float = 20.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        for m in self.messages:
            if m.get(key) == value:
                self.messages.remove(m)
                return m
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                break
            m = dict(line.split("=", 1) for line in data.decode().splitlines())
            if m.get(key) == value:
                return m
            self.messages.append(m)
        raise AssertionError(f"no {key}={value} from the daemon; got {self.messages}")

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("abstract, workers", [(False, 1), (True, 1), (False, 2)])
def test_sd_notify_ready_reloading_stopping(lab, tmp_path, monkeypatch, abstract, workers):
    manager = FakeManager(tmp_path, abstract)
    monkeypatch.setenv("NOTIFY_SOCKET", manager.address)
    conf = tmp_path / "c.toml"
    conf.write_text("log-level = 'INFO'\n")
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--workers", str(workers))
    try:
        d.start()
        ready = manager.wait_for("READY")
        assert "STATUS" in ready
        assert d.ask("www.example.com.").rcode() == dns.rcode.NOERROR
        os.kill(d.pid, signal.SIGHUP)
        reloading = manager.wait_for("RELOADING")
        assert int(reloading["MONOTONIC_USEC"]) > 0
        manager.wait_for("READY")
        assert not [m for m in manager.messages if m.get("READY") == "1"], \
            "one READY per state change, from the main process only"
        os.kill(d.pid, signal.SIGTERM)
        manager.wait_for("STOPPING")
        assert d.proc.wait(timeout=20) == 0
    finally:
        d.stop()
        manager.close()


def test_a_missing_notify_socket_does_not_stop_the_daemon(lab, tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    d = Daemon(tmp_path / "d", lab).start()
    try:
        assert d.ask("www.example.com.").rcode() == dns.rcode.NOERROR
        assert "cannot notify the service manager" in d.log_text()
    finally:
        assert d.stop() == 0


def test_notifier_lines():
    from resolver.daemon.service import Notifier

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        name = f"corenet-unit-{os.getpid()}-{time.monotonic_ns()}"
        a.close()
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        rx.bind("\0" + name)
        with rx:
            n = Notifier("@" + name)
            assert n.ready("serving")
            assert rx.recv(100) == b"READY=1\nSTATUS=serving"
            with pytest.raises(ValueError):
                n.send(status="two\nlines")
    assert not Notifier("").enabled and Notifier("").send(ready=1) is False


# ---- pidfile, control socket, status -----------------------------------------------------------
@pytest.mark.parametrize("workers", [1, 2])
def test_pidfile_written_once_serving_and_removed_at_exit(lab, tmp_path, workers):
    pidfile = tmp_path / "resolver.pid"
    d = Daemon(tmp_path / "d", lab, "--pidfile", str(pidfile), "--workers", str(workers))
    d.start(ready="ready: 2 workers" if workers == 2 else "ready")
    try:
        deadline = time.monotonic() + 10
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pidfile.read_text() == f"{d.pid}\n"
    finally:
        assert d.stop() == 0
    assert not pidfile.exists()


def test_control_socket_is_on_by_default_group_accessible_and_status_answers(
        lab, tmp_path, monkeypatch):
    """No --control: the daemon binds the default place (overridden for the test by the
    variable the commands read too), mode 0660, and stats/status work without --control."""
    from corenet import __version__

    ctl = tmp_path / "run" / "control"
    ctl.parent.mkdir()
    monkeypatch.setenv("CORENET_RESOLVER_CONTROL", str(ctl))
    d = Daemon(tmp_path / "d", lab, control=False).start()
    try:
        assert stat.S_IMODE(os.stat(ctl).st_mode) == 0o660
        d.ask("www.example.com.")
        r = cli("status")
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"version: {__version__}\n")
        assert "\nthreads: 1\n" in r.stdout
        assert r.stdout.endswith(f"corenet-resolver (pid {d.pid}) is running...\n")
        assert f"127.0.0.1:{d.port}" in r.stdout
        st = json.loads(cli("status", "--json").stdout)
        assert 0 < st["cache_bytes"] < st["cache_size"] == 64 * 1024 * 1024
        assert 0 < st["uptime"] < 60
        r = cli("stats")
        assert r.returncode == 0 and "\ntotal.num.queries=" in r.stdout
    finally:
        assert d.stop() == 0
    assert not ctl.exists()


def test_the_default_control_path_falls_back_for_a_non_root_daemon(tmp_path, monkeypatch):
    from resolver.daemon import service

    monkeypatch.delenv("CORENET_RESOLVER_CONTROL", raising=False)
    monkeypatch.setattr(service, "SYSTEM_CONTROL", "/proc/no-such-dir/control")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    got = service.prepare_control("/proc/no-such-dir/control")
    assert got == str(tmp_path / "corenet-resolver" / "control")
    assert stat.S_IMODE(os.stat(tmp_path / "corenet-resolver").st_mode) == 0o700
    assert service.prepare_control(str(tmp_path / "x.sock")) == str(tmp_path / "x.sock")
    # the commands find it there once a socket exists
    assert service.find_control() == "/proc/no-such-dir/control"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(got)
    with s:
        assert service.find_control() == got
    # a directory someone else may write into is not used
    os.chmod(tmp_path / "corenet-resolver", 0o777)
    assert service.prepare_control("/proc/no-such-dir/control") is None


def test_the_quick_start_s_commands_find_the_daemon_without_flags(lab, tmp_path, monkeypatch):
    """`serve` and then `status`/`stats` with no --control and no variable: as root the
    socket is /run/corenet-resolver/control (0660), otherwise the user's fallback."""
    from resolver.daemon import service

    monkeypatch.delenv("CORENET_RESOLVER_CONTROL", raising=False)
    d = Daemon(tmp_path / "d", lab, control=False).start()
    try:
        expected = (service.SYSTEM_CONTROL if os.geteuid() == 0 else service.user_control())
        assert stat.S_IMODE(os.stat(expected).st_mode) == 0o660
        r = cli("status")
        assert r.returncode == 0 and f"(pid {d.pid}) is running" in r.stdout, r.stderr
        assert cli("flush_zone", ".").returncode == 0 and cli("reload").returncode == 0
    finally:
        assert d.stop() == 0
    assert not os.path.exists(expected)


# ---- the query log -----------------------------------------------------------------------------
def test_the_query_log_has_one_line_per_answer(lab, tmp_path):
    d = Daemon(tmp_path / "d", lab, "--log-queries").start()
    try:
        for _ in range(2):
            assert d.ask("www.example.com.").rcode() == dns.rcode.NOERROR
        assert d.ask("nope.example.com.", tcp=True).rcode() == dns.rcode.NXDOMAIN
        time.sleep(0.2)
    finally:
        assert d.stop() == 0
    lines = [x for x in d.log_text().splitlines() if QUERY.search(x)]
    assert len(lines) == 3, lines
    # Unbound's log-queries line (tests/resolver/test_unbound_logs.py: beside Unbound's)
    assert [x.split(" info: ", 1)[1] for x in lines] == [
        "127.0.0.1 www.example.com. A IN", "127.0.0.1 www.example.com. A IN",
        "127.0.0.1 nope.example.com. A IN"]


def test_no_query_log_by_default_and_the_c_hit_path_stays(lab, tmp_path):
    d = Daemon(tmp_path / "d", lab).start()
    try:
        for _ in range(3):
            d.ask("www.example.com.")
        stats = d.stats()
    finally:
        assert d.stop() == 0
    assert not any(QUERY.search(x) for x in d.log_text().splitlines())
    assert "via recvmmsg" in d.log_text()        # the C listener serves
    assert stats["engine"]["cache_hits"] >= 2


# ---- reload errors with any number of workers --------------------------------------------------
@pytest.mark.parametrize("workers", [1, 3])
def test_a_broken_reload_is_logged_and_returned(lab, tmp_path, workers):
    conf = tmp_path / "c.toml"
    conf.write_text("tcp-max-inflight = 8\n")
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--workers", str(workers))
    d.start(ready=f"ready: {workers} workers" if workers > 1 else "ready")
    try:
        conf.write_text("tcp-max-inflight = 8\n\ncolour = 'blue'\n")
        r = cli("reload", "--control", d.control)
        assert r.returncode == 1
        assert r.stdout.startswith("error ")
        assert f"{conf}:3:" in r.stdout and "'colour'" in r.stdout, r.stdout
        os.kill(d.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while d.log_text().count("reload failed") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert d.log_text().count("reload failed") >= 2
        assert d.ask("www.example.com.").rcode() == dns.rcode.NOERROR   # still serving
        conf.write_text("tcp-max-inflight = 4\n")
        r = cli("reload", "--control", d.control)
        assert r.returncode == 0 and r.stdout == "ok\n", r.stderr
    finally:
        assert d.stop() == 0


# ---- the systemd unit --------------------------------------------------------------------------
def test_the_systemd_unit_is_valid_and_hardened(tmp_path):
    import configparser

    text = UNIT.read_text()
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string(text)
    svc = unit["Service"]
    assert svc["Type"] == "notify" and "$MAINPID" in svc["ExecReload"]
    assert "serve --config" in svc["ExecStart"] and "checkconf" in svc["ExecStartPre"]
    for option in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
                   "RestrictAddressFamilies", "CapabilityBoundingSet", "SystemCallFilter"):
        assert option in svc, option
    assert svc["RuntimeDirectory"] == "corenet-resolver"
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is needed (scripts/setup.sh installs systemd)"
    copy = tmp_path / "corenet-resolver.service"
    copy.write_text(text.replace("/usr/local/bin/corenet-resolver", "/bin/true"))
    r = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


def test_service_unit_runs_this_installations_corenet_resolver(tmp_path):
    """``service-unit`` prints the shipped unit with the corenet-resolver beside this Python
    (the test's virtual environment) in every Exec line, and systemd accepts it."""
    import sys

    here = Path(sys.executable).parent / "corenet-resolver"
    assert here.exists(), "the test environment installs the corenet-resolver script"
    r = cli("service-unit")
    assert r.returncode == 0, r.stderr
    assert "/usr/local/bin/" not in r.stdout
    assert r.stdout == UNIT.read_text().replace("/usr/local/bin/corenet-resolver",
                                                str(here.absolute()))
    assert f"ExecStart={here.absolute()} serve --config " in r.stdout
    r = cli("service-unit", "--executable", "/opt/cr/bin/corenet-resolver")
    assert "ExecStartPre=/opt/cr/bin/corenet-resolver checkconf " in r.stdout
    unit = tmp_path / "corenet-resolver.service"
    unit.write_text(cli("service-unit").stdout)
    r = subprocess.run([shutil.which("systemd-analyze"), "verify", str(unit)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


# ---- metrics -----------------------------------------------------------------------------------
def _scrape(d: Daemon, openmetrics: bool) -> tuple[str, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{d.metrics_port}/metrics")
    if openmetrics:
        req.add_header("Accept", "application/openmetrics-text; version=1.0.0")
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.headers["Content-Type"], r.read().decode()


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_pass_prometheus_text_and_openmetrics_parsers(lab, tmp_path, workers):
    from prometheus_client.openmetrics.parser import (
        text_string_to_metric_families as openmetrics_families)
    from prometheus_client.parser import text_string_to_metric_families

    from corenet import __version__

    d = Daemon(tmp_path / "d", lab, "--workers", str(workers), "--extended-statistics")
    d.start(ready=f"ready: {workers} workers" if workers > 1 else "ready")
    try:
        d.ask("www.example.com.")
        ctype, text = _scrape(d, False)
        assert ctype.startswith("text/plain; version=0.0.4")
        families = {f.name: f for f in text_string_to_metric_families(text)}
        ctype, om = _scrape(d, True)
        assert ctype.startswith("application/openmetrics-text") and om.endswith("# EOF\n")
        om_families = {f.name: f for f in openmetrics_families(om)}
        st = json.loads(cli("status", "--control", d.control, "--json").stdout)
        assert st["workers"] == workers and st["pid"] == d.pid
        assert st["cache_size"] == workers * 64 * 1024 * 1024 and st["cache_bytes"] > 0
    finally:
        assert d.stop() == 0
    for fams in (families, om_families):
        names = set(fams)
        assert {"process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds",
                "process_start_time_seconds", "corenet_resolver_uptime_seconds",
                "corenet_resolver_build_info", "corenet_resolver_dnssec_validations",
                "corenet_resolver_tcp_connections", "corenet_resolver_tcp_connections_open",
                "corenet_resolver_answer_latency_seconds",
                "corenet_resolver_recursion_latency_seconds", "corenet_resolver_inflight_max",
                "corenet_resolver_query_flags", "corenet_resolver_query_edns"} <= names, names
        resolved = {s.name: s.value for s in
                    fams["corenet_resolver_recursion_latency_seconds"].samples}
        assert resolved["corenet_resolver_recursion_latency_seconds_count"] >= 1
        rd = {s.labels["flag"]: s.value for s in fams["corenet_resolver_query_flags"].samples}
        assert rd["RD"] >= 1 and rd["QR"] == 0
        build = fams["corenet_resolver_build_info"].samples[0]
        assert build.labels["version"] == __version__ and build.value == 1
        rss = fams["process_resident_memory_bytes"].samples[0].value
        assert 10 * 1024 * 1024 < rss < 4 * 1024 ** 3
        assert fams["corenet_resolver_uptime_seconds"].samples[0].value > 0
        for f in fams.values():           # Prometheus conventions
            assert f.name.startswith(("corenet_resolver_", "process_")), f.name
            if f.type == "counter":
                assert all(s.name.endswith(("_total", "_created")) for s in f.samples), f.name
    q = om_families["corenet_resolver_queries"]
    assert q.type == "counter" and sum(s.value for s in q.samples) >= 1


def test_dnssec_outcomes_are_counted(signed_lab, tmp_path):
    lab, anchor = signed_lab
    d = Daemon(tmp_path / "d", lab, "--trust-anchor", str(anchor)).start()
    try:
        asked = {"www.example.com.": "secure", "www.example.net.": "secure",
                 "www.insecure.com.": "insecure", "www.badds.com.": "bogus",
                 "www.altered.com.": "bogus"}
        for name in asked:
            d.ask(name)
        e = d.stats()["engine"]
        text = d.metrics()
    finally:
        assert d.stop() == 0
    assert e["dnssec_secure"] >= 2 and e["dnssec_insecure"] >= 1 and e["dnssec_bogus"] >= 2
    # each resolution ends once: the outcomes add up to at most the resolutions made
    total = sum(e[f"dnssec_{o}"] for o in ("secure", "insecure", "bogus", "indeterminate"))
    assert total <= e["cache_misses"] + e["prefetches"] + 50
    assert f'corenet_resolver_dnssec_validations_total{{outcome="bogus"}} {e["dnssec_bogus"]}' \
        in text


def test_no_dnssec_outcomes_without_validation(lab, tmp_path):
    d = Daemon(tmp_path / "d", lab).start()
    try:
        d.ask("www.example.com.")
        e = d.stats()["engine"]
    finally:
        assert d.stop() == 0
    assert e["cache_misses"] >= 1
    assert all(e[f"dnssec_{o}"] == 0 for o in ("secure", "insecure", "bogus", "indeterminate"))


# ---- the query tool's DNSSEC output ------------------------------------------------------------
def test_query_dnssec_shows_ad_rrsigs_and_ede(signed_lab, tmp_path):
    lab, anchor = signed_lab
    d = Daemon(tmp_path / "d", lab, "--trust-anchor", str(anchor)).start()
    try:
        at = f"@127.0.0.1#{d.port}"
        r = cli("query", at, "www.example.com", "+dnssec")
        assert r.returncode == 0, r.stderr
        flags = next(x for x in r.stdout.splitlines() if x.startswith(";; flags:"))
        assert " ad" in flags and "do" in r.stdout
        assert "\tIN\tRRSIG\tA " in r.stdout
        r = cli("query", at, "www.example.com", "+tcp", "+short")
        assert r.returncode == 0 and sorted(r.stdout.split()) == ["192.0.2.1", "192.0.2.11"]
        r = cli("query", at, "www.badds.com")
        assert r.returncode == 0 and "status: SERVFAIL" in r.stdout
        assert "; EDE: 9" in r.stdout
    finally:
        assert d.stop() == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_control_socket_belongs_to_the_daemon_user_s_group(lab, tmp_path, workers):
    """Started as root with --user: the socket stays root's, its group is the user's, 0660."""
    import pwd

    if os.geteuid() != 0:
        with pytest.raises(RuntimeError, match="only root can switch"):
            Daemon(tmp_path / "d", lab, "--user", "nobody").start()
        return
    if refused_as_nobody(tmp_path / "refused", lab):
        return
    nobody = pwd.getpwnam("nobody")
    d = Daemon(tmp_path / "d", lab, "--user", "nobody", "--workers", workers)
    d.start(ready="ready: 2 workers" if workers == "2" else "ready")
    try:
        st = os.stat(d.control)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, nobody.pw_gid, 0o660)
    finally:
        assert d.stop() == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_daemon_that_dropped_root_leaves_no_pid_in_its_pidfile(lab, tmp_path, workers):
    """The pidfile in a directory only root may write (as /run): written as root and given to
    the daemon's user, it is emptied at exit when the user cannot remove it (as Unbound)."""
    import pwd
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("needs root to switch user")
    if refused_as_nobody(tmp_path / "refused", lab):
        return
    nobody = pwd.getpwnam("nobody")
    run = Path(tempfile.mkdtemp(prefix="corenet-pid-", dir="/tmp"))
    try:
        run.chmod(0o755)                    # root's, readable by all, writable by root only
        pidfile = run / "resolver.pid"
        d = Daemon(tmp_path / "d", lab, "--user", "nobody", "--workers", workers,
                   "--pidfile", str(pidfile))
        d.start(ready="ready: 2 workers" if workers == "2" else "ready")
        try:
            deadline = time.monotonic() + 10
            while not pidfile.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert pidfile.read_text() == f"{d.pid}\n"
            assert pidfile.stat().st_uid == nobody.pw_uid
        finally:
            assert d.stop() == 0
        assert not pidfile.exists() or pidfile.read_text() == ""
    finally:
        shutil.rmtree(run)
