"""The config file is read for a reload in a process of its own (``config_reader``): the
same Config as read in the daemon, the same errors, the process kept between reads, at a
lower priority, replaced when it dies, stopped when a read hangs, ended when closed."""
from __future__ import annotations

import logging
import os
import pickle
import signal
import threading

import pytest

from resolver.daemon import config_reader
from resolver.daemon.config import ConfigError, build
from resolver.daemon.config_reader import ConfigReader

CONF = """max-udp-size = 1300
local-zone = ["home.lan. static"]
local-data = ["printer.home.lan. 300 IN A 192.168.1.9", "nas.home.lan. 300 IN A 192.168.1.10"]
access-control = ["10.0.0.0/8 allow", "10.9.0.0/16 refuse"]
"""
OVERRIDES = {"listen": ["127.0.0.1:5399"], "root_hints": None}


@pytest.fixture
def reader():
    r = ConfigReader()
    yield r
    r.close()


def _nice(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


def test_the_reader_process_reads_what_the_daemon_would(reader, tmp_path):
    conf = tmp_path / "resolver.toml"
    conf.write_text(CONF)
    got = reader.read(str(conf), OVERRIDES)
    assert got == build(str(conf), OVERRIDES)
    assert got.max_udp_size == 1300 and got.listen == (("127.0.0.1", 5399),)
    proc = reader.proc
    assert proc.pid != os.getpid() and proc.poll() is None
    assert _nice(proc.pid) == min(19, os.nice(0) + config_reader.NICE)
    conf.write_text(CONF.replace("1300", "1400"))
    assert reader.read(str(conf), OVERRIDES).max_udp_size == 1400   # the file as it is now
    assert reader.proc is proc                                      # the same process


@pytest.mark.parametrize("text", ["max-udp-size = 'lots'\n", "max-udp-size = [\n",
                                  "max-udp-sise = 1300\n",
                                  'local-data = ["x.home.lan. IN A 300.1.1.1"]\n'])
def test_a_bad_config_raises_what_reading_it_here_raises(reader, tmp_path, text):
    conf = tmp_path / "resolver.toml"
    conf.write_text(text)
    with pytest.raises(ConfigError) as here:
        build(str(conf), OVERRIDES)
    with pytest.raises(ConfigError) as there:
        reader.read(str(conf), OVERRIDES)
    assert str(there.value) == str(here.value)
    assert reader.proc.poll() is None                 # a bad file does not end the process
    conf.write_text(CONF)
    assert reader.read(str(conf), OVERRIDES).max_udp_size == 1300


def test_a_missing_file_is_a_config_error(reader, tmp_path):
    with pytest.raises(ConfigError, match="nowhere.toml"):
        reader.read(str(tmp_path / "nowhere.toml"), OVERRIDES)


def test_a_dead_reader_is_replaced(reader, tmp_path):
    conf = tmp_path / "resolver.toml"
    conf.write_text(CONF)
    reader.read(str(conf), OVERRIDES)
    first = reader.proc
    first.kill()
    first.wait()
    assert reader.read(str(conf), OVERRIDES).max_udp_size == 1300
    assert reader.proc.pid != first.pid and reader.proc.poll() is None


def test_the_reader_starts_at_its_priority_before_its_own_code_runs(reader, tmp_path,
                                                                   monkeypatch):
    """The interpreter's start and imports run at the reader's priority already: a program
    that never reaches ``serve`` (which lowers it again) has it."""
    idle = tmp_path / "idle"
    idle.write_text("#!/bin/sh\nexec sleep 30\n")
    idle.chmod(0o755)
    monkeypatch.setattr(config_reader.sys, "executable", str(idle))
    proc = reader._start()
    try:
        assert _nice(proc.pid) == min(19, os.nice(0) + config_reader.NICE)
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()


def test_a_reader_that_ends_without_answering_leaves_the_read_to_the_daemon(
        reader, tmp_path, monkeypatch, caplog):
    conf = tmp_path / "resolver.toml"
    conf.write_text(CONF)
    monkeypatch.setattr(config_reader.sys, "executable", "/bin/true")   # reads nothing
    with caplog.at_level(logging.WARNING, "resolver.daemon.process"):
        assert reader.read(str(conf), OVERRIDES).max_udp_size == 1300   # read here
    assert "config reader process" in caplog.text and reader.proc is None


def test_a_reader_that_cannot_start_leaves_the_read_to_the_daemon(reader, tmp_path,
                                                                 monkeypatch, caplog):
    conf = tmp_path / "resolver.toml"
    conf.write_text(CONF)
    monkeypatch.setattr(config_reader.sys, "executable", str(tmp_path / "no-python"))
    with caplog.at_level(logging.WARNING, "resolver.daemon.process"):
        assert reader.read(str(conf), OVERRIDES).max_udp_size == 1300
    assert "cannot be started" in caplog.text and reader.proc is None


def test_a_read_that_hangs_fails_in_bounded_time_and_stops_the_process(reader, tmp_path,
                                                                      monkeypatch):
    fifo = tmp_path / "resolver.toml"
    os.mkfifo(fifo)                 # opening it for reading blocks until a writer comes
    monkeypatch.setattr(config_reader, "READ_TIMEOUT", 1.0)
    with pytest.raises(ConfigError, match="not read within 1 s"):
        reader.read(str(fifo), OVERRIDES)
    assert reader.proc is None
    # The next read starts a new process, which on a loaded machine may take more than the
    # 1 s that bounded the hung one: it gets the usual time.
    monkeypatch.undo()
    conf = tmp_path / "real.toml"
    conf.write_text(CONF)
    assert reader.read(str(conf), OVERRIDES).max_udp_size == 1300
    assert reader.proc is not None


def test_closing_ends_the_process_and_so_does_the_daemon_going(tmp_path):
    conf = tmp_path / "resolver.toml"
    conf.write_text(CONF)
    r = ConfigReader()
    r.read(str(conf), OVERRIDES)
    proc = r.proc
    r.close()
    assert proc.returncode == 0 and r.proc is None
    r.read(str(conf), OVERRIDES)                    # started again when asked again
    again = r.proc
    again.stdin.close()                             # what the daemon's end does when it dies
    assert again.wait(timeout=10) == 0
    r.close()


def test_the_reader_ignores_the_terminal_s_interrupt(reader, tmp_path):
    conf = tmp_path / "resolver.toml"
    conf.write_text(CONF)
    reader.read(str(conf), OVERRIDES)
    assert os.getsid(reader.proc.pid) == reader.proc.pid      # a session of its own
    os.kill(reader.proc.pid, signal.SIGINT)
    assert reader.read(str(conf), OVERRIDES).max_udp_size == 1300


def test_closing_during_a_read_that_hangs_does_not_wait_for_it(tmp_path, monkeypatch):
    """The daemon stopping while a reload's read hangs: close ends the process at once, and
    the read fails instead of waiting for its time-out."""
    import threading
    import time

    fifo = tmp_path / "resolver.toml"
    os.mkfifo(fifo)
    monkeypatch.setattr(config_reader, "READ_TIMEOUT", 30.0)
    r = ConfigReader()
    failed = []

    def read():
        try:
            r.read(str(fifo), OVERRIDES)
        except ConfigError as e:
            failed.append(str(e))

    t = threading.Thread(target=read)
    t.start()
    for _ in range(500):
        if r.proc is not None:
            break
        time.sleep(0.01)
    time.sleep(0.2)                         # the reader is blocked opening the FIFO
    r.close()
    t.join(10)
    assert not t.is_alive() and failed == ["the config was not read: the daemon is stopping"]
    assert r.proc is None


def test_while_it_works_the_reader_offers_the_cpu_back_on_a_timer(monkeypatch):
    """A query on the reader's core waits at most about YIELD_EVERY for the CPU: inside,
    sched_yield is called on a timer; on the way out the timer stops and the handler that
    was there is back."""
    import time

    yields = []
    monkeypatch.setattr(config_reader.os, "sched_yield", lambda: yields.append(1))
    before = signal.getsignal(signal.SIGALRM)
    deadline = time.monotonic() + 10
    with config_reader.offering_the_cpu(0.001):
        assert signal.getitimer(signal.ITIMER_REAL)[1] == pytest.approx(0.001)
        while len(yields) < 5 and time.monotonic() < deadline:
            sum(range(1000))                        # work, as reading a config is
    assert len(yields) >= 5
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before


def _catches(pid: int, signum: int) -> bool:
    with open(f"/proc/{pid}/status") as f:
        caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    return bool(caught >> (signum - 1) & 1)


def test_the_reader_process_offers_the_cpu_during_a_read_only(tmp_path, monkeypatch):
    """The process arms its timer around a read (here one that hangs opening a FIFO) and
    not while it waits for the next request."""
    import threading
    import time

    conf = tmp_path / "resolver.toml"
    conf.write_text(CONF)
    r, t = ConfigReader(), None
    try:
        r.read(str(conf), OVERRIDES)
        # the answer may arrive before the process has put its handler back
        deadline = time.monotonic() + 10
        while _catches(r.proc.pid, signal.SIGALRM) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _catches(r.proc.pid, signal.SIGALRM)         # waiting: no timer
        fifo = tmp_path / "hangs.toml"
        os.mkfifo(fifo)
        monkeypatch.setattr(config_reader, "READ_TIMEOUT", 30.0)
        t = threading.Thread(target=lambda: pytest.raises(ConfigError, r.read, str(fifo),
                                                          OVERRIDES))
        t.start()
        deadline = time.monotonic() + 10
        while not _catches(r.proc.pid, signal.SIGALRM) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _catches(r.proc.pid, signal.SIGALRM)             # reading: the timer's
    finally:
        r.close()
        if t is not None:
            t.join(10)
    assert not t.is_alive()


def _through_a_pipe(message):
    """``message`` sent by ``_send`` in a thread and read back by ``_receive``."""
    r, w = os.pipe()
    try:
        writer = threading.Thread(target=config_reader._send, args=(w, message))
        writer.start()
        received = config_reader._receive(r, None)
        writer.join(10)
        return received
    finally:
        os.close(r)
        os.close(w)


def test_a_message_is_unpickled_a_chunk_at_a_time_letting_the_gil_go_between(monkeypatch):
    """A big answer does not hold the GIL in one piece, nor in 64 KiB frames: the GIL goes
    before each UNPICKLE_CHUNK bytes, and what comes out is what went in."""
    breaths = []
    monkeypatch.setattr(config_reader.reloads, "breathe", lambda: breaths.append(1))
    message = ("ok", [f"name{i}.example. A 192.0.2.{i % 250}" for i in range(7000)])
    size = len(pickle.dumps(message, protocol=config_reader.PROTOCOL))
    assert size > 16 * config_reader.UNPICKLE_CHUNK
    assert _through_a_pipe(message) == message
    assert len(breaths) >= size // config_reader.UNPICKLE_CHUNK


@pytest.mark.parametrize("message", [
    ("ok", "x" * (5 * config_reader.UNPICKLE_CHUNK)),             # one value longer than a chunk
    ("ok", [b"y" * (3 * config_reader.UNPICKLE_CHUNK), "z" * 900, list(range(5000))]),
    ("ok", ""),
    ("error", "boom")], ids=["long-string", "mixed", "empty", "error"])
def test_values_longer_than_a_chunk_and_short_messages_come_out_whole(message):
    assert _through_a_pipe(message) == message
