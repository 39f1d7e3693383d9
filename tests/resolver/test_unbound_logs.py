"""The daemon's log as Unbound's users read it: log-queries and log-replies lines side by side
with the real Unbound's for the same questions, and under systemd (standard error the journal's
stream, $JOURNAL_STREAM) each line led by its sd-daemon priority and without a time of its own,
so that journalctl -p err finds the errors."""
from __future__ import annotations

import logging
import os
import re
import time
import socket

import dns.message
import dns.query
import pytest

from ci_policy import installed
from daemon_proc import Daemon
from ports import pick_port
from procs import stop as stop_process
from resolver.daemon import logs

LOCAL = ['local-zone: "test." static', 'local-data: "www.test. A 192.0.2.1"']
ASKED = [("www.test.", "A"), ("www.test.", "AAAA"), ("nope.test.", "A"), ("www.test.", "A")]


def messages(text: str, kind: str, word: str = "info") -> list[str]:
    """What follows ``word:`` (``info:``, or with log-tag-queryreply ``query:`` and
    ``reply:``) on each line of the log ``text`` written by the query or the reply log
    (``kind``), Unbound's or ours."""
    out = []
    for line in text.splitlines():
        m = re.search(rf" {word}: (\S+ \S+ \S+ IN\b.*)$", line)
        if m and (kind == "queries") == (len(m.group(1).split()) == 4):
            out.append(m.group(1))
    return out


@pytest.mark.parametrize("tagged", [False, True])
def test_query_and_reply_lines_are_unbound_s(lab, tmp_path, tagged):
    """The same lines, led by the same word: ``info:``, or with log-tag-queryreply
    ``query:`` and ``reply:``."""
    from dnslab.unbound import local_unbound

    installed("unbound", "unbound")
    w = tmp_path / "unbound"
    w.mkdir()
    port = pick_port(["127.0.0.1"])
    tag = "yes" if tagged else "no"
    proc = local_unbound(w, port, [f'logfile: "{w}/unbound.log"', "log-queries: yes",
                                   "log-replies: yes", f"log-tag-queryreply: {tag}", *LOCAL])
    conf = tmp_path / "corenet-resolver.toml"
    conf.write_text('log-queries = true\nlog-replies = true\nlocal-zone = ["test. static"]\n'
                    f'local-data = ["www.test. A 192.0.2.1"]\n'
                    f"log-tag-queryreply = {str(tagged).lower()}\n")
    d = Daemon(tmp_path / "d", lab, "--config", str(conf))
    try:
        d.start()
        for name, rdtype in ASKED:
            q = dns.message.make_query(name, rdtype)
            theirs = dns.query.udp(q, "127.0.0.1", port=port, timeout=5)
            ours = d.ask(name, rdtype)
            assert ours.rcode() == theirs.rcode()
    finally:
        d.stop()
        stop_process(proc, 5.0, group=True)
    unbound_log = (w / "unbound.log").read_text()
    # Unbound logs the localhost probe of launch() too: compare from the test's questions on
    asked, replied = ("query", "reply") if tagged else ("info", "info")
    theirs_q = [x for x in messages(unbound_log, "queries", asked) if ".test. " in x]
    ours_q = messages(d.log_text(), "queries", asked)
    assert len(ours_q) == len(ASKED) and ours_q == theirs_q, (ours_q, theirs_q)
    theirs_r = [x.split()[:5] for x in messages(unbound_log, "replies", replied)
                if ".test. " in x]
    ours_r = [x.split() for x in messages(d.log_text(), "replies", replied)]
    assert len(ours_r) == len(ASKED) and [r[:5] for r in ours_r] == theirs_r
    assert all(len(r) == 8 for r in ours_r)
    if tagged:                  # none of them left as info
        assert not messages(d.log_text(), "queries") + messages(d.log_text(), "replies")


def failing_start(workdir, lab) -> Daemon:
    """The daemon started on a port another socket holds: it logs, then exits 1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        d = Daemon(workdir, lab, port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="exited with 1"):
            d.start(ready="\0")           # never: its "Address already in use" has "ready"
    return d


def test_lines_carry_sd_daemon_priorities_under_the_journal(lab, tmp_path, monkeypatch):
    log = tmp_path / "d" / "daemon.log"
    log.parent.mkdir()
    log.write_bytes(b"")                     # Daemon.start truncates it: the same inode
    st = os.stat(log)
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    lines = [x for x in failing_start(tmp_path / "d", lab).log_text().splitlines() if x]
    assert lines and all(re.match(r"<[3467]>corenet-resolver\[\d+:0\] ", x) for x in lines), lines
    assert any(x.startswith("<6>") and " info: " in x for x in lines)
    assert any(x.startswith("<3>") and " error: cannot listen" in x for x in lines), lines
    assert not any(re.search(r"\[\d{10}\]", x) for x in lines)        # no time of its own


def test_no_priorities_when_standard_error_is_not_the_journal_s(lab, tmp_path, monkeypatch):
    monkeypatch.setenv("JOURNAL_STREAM", "1:1")        # some other file: redirected since
    lines = [x for x in failing_start(tmp_path / "d", lab).log_text().splitlines() if x]
    assert lines and all(re.match(r"\[\d+\] corenet-resolver\[\d+:0\] ", x) for x in lines), lines


@pytest.mark.parametrize("level, prefix", [(logging.ERROR, "<3>"), (logging.CRITICAL, "<3>"),
                                           (logging.WARNING, "<4>"), (logging.INFO, "<6>"),
                                           (logs.DETAIL, "<6>"), (logging.DEBUG, "<7>")])
def test_each_level_s_priority(level, prefix):
    record = logging.LogRecord("resolver.x", level, __file__, 1, "said %s", ("it",), None)
    line = logs.LineFormatter(priority=True).format(record)
    assert line.startswith(prefix) and line.endswith(": said it")
    assert logs.LineFormatter().format(record).startswith("[")


@pytest.mark.parametrize("tz, stamp", [("XST-1", "2025-11-25T14:55:14.042+01:00"),
                                       ("XST+5:30", "2025-11-25T08:25:14.042-05:30"),
                                       ("UTC0", "2025-11-25T13:55:14.042+00:00")])
def test_log_time_iso_stamps_as_unbound_s(monkeypatch, tz, stamp):
    """``log-time-iso`` (Unbound 1.19's, util/log.c; the installed Unbound predates it):
    with ``log-time-ascii``, the local time to the millisecond and its offset as +hh:mm;
    without it, the lines keep their epoch stamp, as Unbound's."""
    import datetime
    import time

    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        when = datetime.datetime(2025, 11, 25, 13, 55, 14, 42999,
                                 tzinfo=datetime.timezone.utc).timestamp()
        record = logging.LogRecord("resolver.x", logging.INFO, __file__, 1, "ready", (), None)
        record.created, record.process = when, 4242
        line = logs.LineFormatter(ascii_time=True, iso_time=True).format(record)
        assert re.fullmatch(re.escape(stamp) + r" \S+\[4242:[0-9a-f]+\] info: ready", line)
        assert logs.LineFormatter(iso_time=True).format(record).startswith(f"[{int(when)}] ")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_log_time_iso_from_the_config(lab, tmp_path):
    """An unbound.conf's ``log-time-iso: yes`` beside ``log-time-ascii: yes``, served as it
    is: every line of the daemon's log file starts with an ISO 8601 time of now."""
    import datetime

    conf = tmp_path / "unbound.conf"
    d = Daemon(tmp_path / "d", lab, "--config", str(conf))
    conf.write_text(f'server:\n  logfile: "{d.log}"\n  log-time-ascii: yes\n'
                    "  log-time-iso: yes\n  verbosity: 1\n")
    try:
        d.start()
    finally:
        d.stop()
    lines = d.log_text().splitlines()
    assert lines
    for line in lines:
        stamp, _, rest = line.partition(" ")
        when = datetime.datetime.fromisoformat(stamp)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", stamp)
        assert abs(when.timestamp() - time.time()) < 120, line
        assert re.match(r"corenet-resolver\[\d+:0\] (info|warning|notice): ", rest), line


#: a line of Unbound's log (util/log.c): the time, IDENT[PID:THREAD], the level word, the text
LINE = r"{time} {ident}\[\d+:[0-9a-f]+\] (notice|info|warning|error|debug|fatal error): \S.*"
EPOCH, ASCII = r"\[\d+\]", r"[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d"


@pytest.mark.parametrize("ascii_time", [False, True])
def test_every_line_has_unbound_s_shape_and_log_identity(lab, tmp_path, ascii_time):
    """Unbound and the daemon, both with ``log-identity: myres`` (and ``log-time-ascii``),
    asked the same questions: every line of both logs has the shape a parser written for
    Unbound's reads; the query lines are the same text."""
    from dnslab.unbound import local_unbound

    installed("unbound", "unbound")
    w = tmp_path / "unbound"
    w.mkdir()
    port = pick_port(["127.0.0.1"])
    stamp = ["log-time-ascii: yes"] if ascii_time else []
    proc = local_unbound(w, port, [f'logfile: "{w}/unbound.log"', "log-queries: yes",
                                   'log-identity: "myres"', "verbosity: 2", *stamp, *LOCAL])
    conf = tmp_path / "corenet-resolver.toml"
    conf.write_text('log-queries = true\nlog-identity = "myres"\nverbosity = 2\n'
                    + ("log-time-ascii = true\n" if ascii_time else "")
                    + 'local-zone = ["test. static"]\nlocal-data = ["www.test. A 192.0.2.1"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--workers", "2")
    try:
        d.start(ready="ready: 2 workers")
        for name, rdtype in ASKED:
            q = dns.message.make_query(name, rdtype)
            dns.query.udp(q, "127.0.0.1", port=port, timeout=5)
            d.ask(name, rdtype)
    finally:
        d.stop()
        stop_process(proc, 5.0, group=True)
    shape = re.compile(LINE.format(time=ASCII if ascii_time else EPOCH, ident="myres"))
    unbound_log = (w / "unbound.log").read_text()
    for who, text in (("unbound", unbound_log), ("corenet", d.log_text())):
        lines = text.splitlines()
        assert len(lines) >= len(ASKED), (who, text)
        bad = [x for x in lines if not shape.fullmatch(x)]
        assert not bad, (who, bad)
    # the supervisor's lines are [PID:0], each worker's its number
    assert {re.search(r"\[\d+:([0-9a-f]+)\]", x).group(1)
            for x in d.log_text().splitlines()} == {"0", "1"}
    theirs = [x for x in messages(unbound_log, "queries") if ".test. " in x]
    assert messages(d.log_text(), "queries") == theirs
