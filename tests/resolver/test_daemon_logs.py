"""The daemon's log (resolver.daemon.logs): a log file, reopened after it is renamed away,
syslog, Unbound's verbosity levels and time stamps; the per-query logs (log-replies,
log-servfail, log-local-actions) with their fields; start-up lines written once."""
from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import dns.message
import dns.rcode
import pytest

from daemon_proc import ROOT, Daemon, cli
from ports import free_port
from resolver.daemon import logs, querylog


#: a log-replies line (Unbound's): client, name, type, class, rcode, time, cached, size
REPLY = re.compile(r"info: (\S+ \S+ \S+ IN \S+ \d+\.\d{6} [01] \d+)$")


def _cfg(**kw):
    base = dict(verbosity=1, log_level=None, logfile=None, use_syslog=False,
                log_time_ascii=False, log_time_iso=False, log_identity=None)
    return SimpleNamespace(**{**base, **kw})


@pytest.fixture
def restore_logging():
    """setup() changes the process's root logger: put it back (and close the handler it
    made) after the test."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    logs.close()
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


def _lines(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# ---- the log file and reopen ------------------------------------------------------------------
def test_the_log_file_is_appended_and_reopen_writes_a_new_one_after_a_rename(tmp_path,
                                                                         restore_logging):
    path = tmp_path / "resolver.log"
    path.write_text("an older line\n")
    logs.setup(_cfg(logfile=str(path)))
    assert logs.log_file() == str(path)
    log = logging.getLogger("resolver.test")
    log.info("first")
    os.rename(path, tmp_path / "resolver.log.1")          # logrotate, no copytruncate
    log.info("second, still to the renamed file")
    logs.reopen()
    log.info("third")
    old = _lines(tmp_path / "resolver.log.1")
    assert old[0] == "an older line" and len(old) == 3
    assert old[1].endswith("] info: first")
    assert "second, still to the renamed file" in old[2]
    new = _lines(path)
    assert len(new) == 1 and new[0].endswith("] info: third")
    assert re.fullmatch(rf"\[\d+\] corenet-resolver\[{os.getpid()}:0\] info: third", new[0])


def test_reopen_without_a_file_changes_nothing_and_a_failed_reopen_keeps_the_old_file(
        tmp_path, restore_logging):
    logs.reopen()                                          # standard error: nothing to do
    path = tmp_path / "d" / "resolver.log"
    path.parent.mkdir()
    logs.setup(_cfg(logfile=str(path)))
    os.rename(path, tmp_path / "moved.log")
    os.rmdir(path.parent)                                  # the new file cannot be made
    logs.reopen()
    logging.getLogger("resolver.test").warning("after")
    moved = _lines(tmp_path / "moved.log")
    assert "cannot reopen the log file" in moved[0] and moved[1].endswith("warning: after")


def test_an_unwritable_log_file_leaves_the_log_on_stderr_and_says_why(tmp_path, capsys,
                                                                      restore_logging):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    logs.setup(_cfg(logfile=str(blocker / "x.log")))
    assert logs.log_file() is None
    logging.getLogger("resolver.test").warning("still seen")
    err = capsys.readouterr().err
    assert "cannot log to" in err and "logging to standard error" in err and "still seen" in err


def test_log_time_ascii_stamps_the_local_time(tmp_path, restore_logging):
    path = tmp_path / "t.log"
    logs.setup(_cfg(logfile=str(path), log_time_ascii=True))
    logging.getLogger("resolver.test").info("stamped")
    [line] = _lines(path)
    stamp = line.split(" corenet-resolver[")[0]
    assert re.fullmatch(r"[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d", stamp), line
    assert abs(time.mktime(time.strptime(f"{time.localtime().tm_year} {stamp}",
                                         "%Y %b %d %H:%M:%S")) - time.time()) < 120


# ---- verbosity ----------------------------------------------------------------------------------
def test_verbosity_levels_filter_as_unbound_s(tmp_path, restore_logging):
    path = tmp_path / "v.log"
    logs.setup(_cfg(logfile=str(path), verbosity=0))
    log = logging.getLogger("resolver.test")
    seen = {}
    for level in range(6):
        logs.set_verbosity(level)
        assert logs.verbosity() == level
        before = len(_lines(path))
        log.error("e%d", level)
        log.warning("w%d", level)
        log.info("i%d", level)
        log.log(logs.DETAIL, "d%d", level)
        log.debug("q%d", level)
        log.log(logs.ALGORITHM, "a%d", level)
        log.log(logs.CACHE_MISS, "c%d", level)
        seen[level] = [line.rsplit(": ", 1)[1][0] for line in _lines(path)[before:]]
    assert seen == {0: ["e", "w"], 1: ["e", "w", "i"], 2: ["e", "w", "i", "d"],
                    3: ["e", "w", "i", "d", "q"], 4: ["e", "w", "i", "d", "q", "a"],
                    5: ["e", "w", "i", "d", "q", "a", "c"]}
    for bad in (-1, 6, True, "3"):
        with pytest.raises(ValueError):
            logs.set_verbosity(bad)
    assert logs.verbosity() == 5


def test_log_level_is_another_spelling_of_verbosity(restore_logging):
    for name, want in (("WARNING", 0), ("INFO", 1), ("DEBUG", 3), ("ERROR", 0)):
        logs.setup(_cfg(verbosity=5, log_level=name))
        assert logs.verbosity() == want, name
    logs.setup(_cfg(log_level="ERROR"))
    assert not logging.getLogger("resolver.test").isEnabledFor(logging.WARNING)
    logs.setup(_cfg(verbosity=2))
    assert logs.verbosity() == 2


# ---- syslog -------------------------------------------------------------------------------------
def test_syslog_lines_reach_the_socket_named_in_the_environment(tmp_path, monkeypatch,
                                                                restore_logging):
    where = str(tmp_path / "log.sock")
    sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sink.bind(where)
    sink.settimeout(5)
    monkeypatch.setenv(logs.SYSLOG_ENV, where)
    try:
        logs.setup(_cfg(use_syslog=True, logfile=str(tmp_path / "ignored.log")))
        assert logs.log_file() is None                 # use-syslog wins over logfile
        logging.getLogger("resolver.test").info("to syslog")
        logging.getLogger("resolver.test").error("an error")
        first, second = sink.recv(4096).decode(), sink.recv(4096).decode()
    finally:
        sink.close()
    # facility daemon (3): info is <30>, error <27>; syslog stamps the time itself
    # Unbound's syslog line: the identity (openlog's), then [PID:N] and the level
    assert first.rstrip("\x00") == f"<30>corenet-resolver: [{os.getpid()}:0] info: to syslog"
    assert second.startswith("<27>") and second.rstrip("\x00").endswith("error: an error")
    assert not (tmp_path / "ignored.log").exists()


def test_an_unreachable_syslog_socket_leaves_the_log_on_stderr(tmp_path, monkeypatch, capsys,
                                                               restore_logging):
    monkeypatch.setenv(logs.SYSLOG_ENV, str(tmp_path / "nobody-listens"))
    logs.setup(_cfg(use_syslog=True))
    logging.getLogger("resolver.test").warning("here instead")
    err = capsys.readouterr().err
    assert "cannot log to" in err
    assert re.search(r"^\[\d+\] corenet-resolver\[\d+:0\] warning: here instead$",
                     err, re.M), err                 # stamped: syslog would have stamped it


# ---- the per-query lines, in process -----------------------------------------------------------
def _query(name="www.example.com.", rdtype="A", edns=False) -> bytes:
    q = dns.message.make_query(name, rdtype, use_edns=0 if edns else False)
    q.id = 4242
    return q.to_wire()


def _answer(q: bytes, rcode: int, ede: tuple | None = None) -> bytes:
    m = dns.message.from_wire(q)
    r = dns.message.make_response(m)
    r.set_rcode(rcode)
    if ede is not None:
        r.use_edns(0, options=[dns.edns.EDEOption(*ede)])
    return r.to_wire()


def test_a_reply_line_has_unbound_s_fields():
    q = _query()
    out = _answer(q, dns.rcode.NOERROR)
    assert querylog.reply_line("192.0.2.7", q, out, 0.0123456, True) == (
        f"192.0.2.7 www.example.com. A IN NOERROR 0.012346 1 {len(out)}")
    assert querylog.reply_line("192.0.2.7", q, _answer(q, dns.rcode.NXDOMAIN), 1.5,
                               False).split()[4:7] == ["NXDOMAIN", "1.500000", "0"]
    assert querylog.reply_line("::1", b"\x00" * 5, b"\x00\x00\x80\x01", 0, False) == (
        "::1 - - - FORMERR - - -")


def test_a_servfail_line_gives_the_resolution_s_reason_or_the_answer_s_extended_error():
    q = _query("dead.example.", "AAAA", edns=True)
    plain = _answer(q, dns.rcode.SERVFAIL)
    assert querylog.servfail_line(q, plain, (22, "all 2 servers timed out")) == (
        "SERVFAIL <dead.example. AAAA IN>: all 2 servers timed out "
        "(extended error 22, no reachable authority)")
    assert querylog.servfail_line(q, plain, (None, "time limit of 30s")) == (
        "SERVFAIL <dead.example. AAAA IN>: time limit of 30s")
    with_ede = _answer(q, dns.rcode.SERVFAIL, (6, "signature expired"))
    assert querylog.servfail_line(q, with_ede) == (
        "SERVFAIL <dead.example. AAAA IN>: signature expired (extended error 6, "
        "dnssec bogus)")
    assert querylog.servfail_line(q, plain).endswith(": no reason recorded")


def test_the_query_log_writes_only_the_lines_that_are_on(caplog):
    from resolver.zones import LocalZone, Zones

    zones = Zones(local=[LocalZone("example.com.", "static", ())])
    cfg = SimpleNamespace(log_queries=False, log_replies=True, log_servfail=True,
                          log_local_actions=True, log_tag_queryreply=False)
    ql = querylog.QueryLog(cfg, lambda: zones)
    q = _query()
    with caplog.at_level(logging.INFO):
        ql("127.0.0.1", q, _answer(q, dns.rcode.NXDOMAIN), "udp", 0.001, False)
        other = _query("www.example.net.")
        ql("127.0.0.1", other, _answer(other, dns.rcode.SERVFAIL), "tcp", 0.5, False,
           (22, "no servers"))
    got = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert [g[0] for g in got] == ["resolver.replies", "resolver.local", "resolver.replies",
                                   "resolver.servfail"]
    assert got[1][2] == "example.com. static 127.0.0.1 www.example.com. A IN"
    assert got[3][1] == "ERROR" and "SERVFAIL <www.example.net. A IN>: no servers" in got[3][2]
    assert not any(r.name == "resolver.queries" for r in caplog.records)


def test_a_local_action_line_names_the_zone_of_the_client_s_view(caplog):
    """With views, log-local-actions names the zone that holds the question for the client:
    its view's, the global one (a client of no view, or of a view-first view that does not
    hold it), or none (a view with zones that does not hold it: resolved), as Unbound."""
    from resolver.zones import LocalZone, View, Zones

    zones = Zones(local=[LocalZone("example.com.", "static", ())], views=[
        View("in", (LocalZone("www.example.com.", "transparent",
                              ("www.example.com. A 10.0.0.1",)),)),
        View("first", (LocalZone("other.test.", "static"),), first=True)],
        view_clients=[("127.0.0.0/8", None), ("127.0.0.2/32", "in"),
                      ("127.0.0.3/32", "first")])
    cfg = SimpleNamespace(log_queries=False, log_replies=False, log_servfail=False,
                          log_local_actions=True, log_tag_queryreply=False)
    ql = querylog.QueryLog(cfg, lambda: zones)
    with caplog.at_level(logging.INFO):
        for client in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            for name in ("www.example.com.", "mail.example.com."):
                q = _query(name)
                ql(client, q, _answer(q, dns.rcode.NOERROR), "udp", 0.001, False)
    assert [r.getMessage() for r in caplog.records if r.name == "resolver.local"] == [
        "example.com. static 127.0.0.1 www.example.com. A IN",
        "example.com. static 127.0.0.1 mail.example.com. A IN",
        "www.example.com. transparent 127.0.0.2 www.example.com. A IN",
        "example.com. static 127.0.0.3 www.example.com. A IN",
        "example.com. static 127.0.0.3 mail.example.com. A IN"]


# ---- the daemon ---------------------------------------------------------------------------------
def _start(d: Daemon, logfile, timeout: float = 20.0) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    d.proc = subprocess.Popen([sys.executable, "-m", "resolver.daemon.cli", *d.args],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=open(d.log, "wb"), cwd=str(ROOT), env=env,
                              start_new_session=True)
    deadline = time.monotonic() + timeout
    while "info: ready" not in "\n".join(_lines(logfile)):
        if d.proc.poll() is not None or time.monotonic() > deadline:
            d.stop()
            raise AssertionError(f"daemon not ready: {d.log_text()[-2000:]} "
                                 f"{_lines(logfile)[-20:]}")
        time.sleep(0.05)
    return d.proc


def _wait_for(path, text: str, count: int = 1, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = _lines(path)
        if sum(text in x for x in lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_the_daemon_writes_its_log_file_once_per_event_with_the_per_query_lines(lab, tmp_path):
    logfile = tmp_path / "resolver.log"
    dead = free_port()                     # nothing listens there: the forward zone fails
    conf = tmp_path / "c.toml"
    conf.write_text('local-data = ["here.local.test. 300 A 192.0.2.53"]\n'
                    # test. is a default zone (RFC 6761): lifted, so the forward zone is asked
                    'local-zone = ["local.test. static", "test. nodefault"]\n'
                    '[[forward-zone]]\nname = "dead.test."\n'
                    f'forward-addr = ["127.0.0.1@{dead}"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--logfile", str(logfile),
               "--log-replies", "--log-servfail", "--log-local-actions")
    _start(d, logfile)
    try:
        assert d.ask("www.example.com.").rcode() == dns.rcode.NOERROR
        assert d.ask("www.example.com.").rcode() == dns.rcode.NOERROR     # from the cache
        local = d.ask("here.local.test.")
        assert local.rcode() == dns.rcode.NOERROR and local.answer
        failed = d.ask("www.dead.test.", edns=True, timeout=30)
        assert failed.rcode() == dns.rcode.SERVFAIL
        lines = _wait_for(logfile, "error: SERVFAIL <")
    finally:
        assert d.stop() == 0
    lines = _lines(logfile)
    assert d.log_text() == ""                       # nothing on standard error
    for once in ("info: zones: ", "info: ready", "info: stopped", " on 127.0.0.1:"):
        assert sum(once in x for x in lines) == 1, (once, lines)
    replies = [m.group(1) for m in map(REPLY.search, lines) if m]
    miss, hit = replies[0].split(), replies[1].split()
    assert miss[:5] == ["127.0.0.1", "www.example.com.", "A", "IN", "NOERROR"] and miss[6] == "0"
    assert hit[:5] == miss[:5] and hit[6] == "1" and hit[7] == miss[7]
    assert re.fullmatch(r"\d+\.\d{6}", hit[5]) and float(hit[5]) < float(miss[5]) + 1
    assert any(r.startswith("127.0.0.1 www.dead.test. A IN SERVFAIL ") for r in replies)
    [local_line] = [x for x in lines if " static 127.0.0.1 " in x]
    assert local_line.endswith("info: local.test. static 127.0.0.1 here.local.test. A IN")
    [servfail] = [x for x in lines if "error: SERVFAIL <" in x]
    # the resolution's reason: the forwarder refused
    assert servfail.endswith(f"error: SERVFAIL <www.dead.test. A IN>: 127.0.0.1@{dead}: "
                             "127.0.0.1: [Errno 111] Connection refused"), servfail


def test_a_daemon_with_workers_reopens_its_log_file_on_reload(lab, tmp_path):
    """The supervisor and each worker reopen the file: after a rename and a reload, every
    process writes the new one."""
    logfile = tmp_path / "resolver.log"
    d = Daemon(tmp_path / "d", lab, "--logfile", str(logfile), "--workers", "2",
               "--log-replies")
    conf = tmp_path / "c.toml"
    conf.write_text("workers = 2\n")
    d.args += ["--config", str(conf)]
    _start(d, logfile)
    try:
        os.rename(logfile, tmp_path / "resolver.log.1")
        os.kill(d.pid, signal.SIGHUP)      # reload, which reopens the log everywhere
        lines = _wait_for(logfile, "config reloaded", count=3, timeout=20)
        assert d.ask("www.example.com.").rcode() == dns.rcode.NOERROR
        lines = _wait_for(logfile, " IN NOERROR ", timeout=10)
    finally:
        assert d.stop() == 0
    # each worker's "config reloaded (cache kept)", then the supervisor's "in 2 workers"
    reloaded = [x for x in lines if "config reloaded" in x]
    assert len(reloaded) == 3 and "config reloaded in 2 workers" in reloaded[-1], lines
    pids = {re.search(r"corenet-resolver\[(\d+):", x).group(1) for x in reloaded}
    assert str(d.pid) in pids and len(pids) == 3
    assert any(REPLY.search(x) for x in lines)     # answers go to the new file too
    old = _lines(tmp_path / "resolver.log.1")
    assert not any("reloaded" in x for x in old)
    # one banner and one "ready" for the daemon, not one per worker
    for once in (" on 127.0.0.1:", "info: ready"):
        assert sum(once in x for x in old) == 1, (once, old)
    assert [x.split("info: ")[1] for x in old if "info: ready" in x] == ["ready: 2 workers"]


def test_log_reopen_makes_every_process_write_the_new_file_without_a_reload(lab, tmp_path):
    """logrotate's postrotate runs ``corenet-resolver log_reopen``: after the rename every
    worker's replies land in the new file, and no reload happened."""
    logfile = tmp_path / "resolver.log"
    d = Daemon(tmp_path / "d", lab, "--logfile", str(logfile), "--workers", "2",
               "--log-replies")
    _start(d, logfile)
    try:
        os.rename(logfile, tmp_path / "resolver.log.1")
        r = cli("log_reopen", "--control", d.control)
        assert (r.returncode, r.stdout) == (0, "ok\n"), (r.stdout, r.stderr)
        # each worker answers some of these (SO_REUSEPORT spreads the source ports)
        for i in range(16):
            assert d.ask(f"www.example.com.").rcode() == dns.rcode.NOERROR
        lines = _wait_for(logfile, " IN NOERROR ", count=16, timeout=10)
    finally:
        assert d.stop() == 0
    assert sum(bool(REPLY.search(x)) for x in lines) == 16, lines
    assert not any("reloaded" in x for x in lines + _lines(tmp_path / "resolver.log.1"))
    assert not any(REPLY.search(x) for x in _lines(tmp_path / "resolver.log.1"))
    writers = {re.search(r"corenet-resolver\[(\d+):", x).group(1) for x in lines}
    assert len(writers) >= 2, lines      # the supervisor's or another worker's lines too


def test_verbosity_5_names_the_client_of_each_cache_miss_and_1_does_not(lab, tmp_path):
    seen, ports = {}, {}
    for level in (5, 1):
        logfile = tmp_path / f"v{level}.log"
        d = Daemon(tmp_path / f"d{level}", lab, "--logfile", str(logfile),
                   "--verbosity", str(level))
        at = d.args.index("--log-level")
        del d.args[at:at + 2]                 # log-level would win over verbosity
        _start(d, logfile)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", 0))
                s.settimeout(8)
                q = dns.message.make_query("www.example.com.", "A")
                for _ in range(2):            # a miss, then a hit (not a miss)
                    s.sendto(q.to_wire(), ("127.0.0.1", d.port))
                    assert dns.message.from_wire(s.recv(4096)).rcode() == dns.rcode.NOERROR
                ports[level] = s.getsockname()[1]
        finally:
            assert d.stop() == 0
        seen[level] = [x for x in _lines(logfile) if "cache miss from" in x]
    assert len(seen[5]) == 1 and seen[5][0].endswith(
        f"debug: resolver.daemon.misses: cache miss from 127.0.0.1@{ports[5]} over udp: "
        "www.example.com. A IN"), seen[5]
    assert seen[1] == []


def test_the_verbosity_command_turns_the_cache_miss_lines_on_and_off(lab, tmp_path):
    logfile = tmp_path / "d.log"
    d = Daemon(tmp_path / "d", lab, "--logfile", str(logfile), "--verbosity", "1")
    at = d.args.index("--log-level")
    del d.args[at:at + 2]
    _start(d, logfile)
    misses = {}
    try:
        for level, name in (("1", "www.example.com."), ("5", "ns1.example.com."),
                            ("1", "www.example.net.")):
            r = cli("verbosity", level, "--control", d.control)
            assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
            assert d.ask(name).rcode() == dns.rcode.NOERROR
            misses[level, name] = [x for x in _lines(logfile) if "cache miss from" in x]
    finally:
        assert d.stop() == 0
    assert misses["1", "www.example.com."] == []
    (line,) = misses["5", "ns1.example.com."]
    assert line.endswith("over udp: ns1.example.com. A IN")
    assert misses["1", "www.example.net."] == [line]          # none more after verbosity 1
