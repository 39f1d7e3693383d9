"""The daemon as the tests run it: ``corenet-resolver serve`` in a subprocess on a free
loopback port, resolving from the lab, stopped by PID (SIGTERM, then SIGKILL)."""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

from ports import free_port
from procs import stop as stop_process
from procs import stopped_unless_ready

ROOT = Path(__file__).resolve().parents[2]      # the worktree: resolver/ and corenet/ live here


def cli(*args: str, timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess:
    """Runs ``corenet-resolver ARGS`` to completion."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "resolver.daemon.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=str(ROOT), env=env, input=input)


class Daemon:
    def __init__(self, workdir: Path, lab, *extra: str, port: int | None = None,
                 metrics: bool = True, control: bool = True, listen: bool = True,
                 wrap: tuple[str, ...] = ()) -> None:
        self.workdir = Path(workdir)
        self.wrap = tuple(wrap)          # a command the daemon runs under (ip netns exec NS)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.control = str(self.workdir / "control.sock") if control else None
        self.metrics_port = free_port() if metrics else None
        self.log = self.workdir / "daemon.log"
        args = ["serve", "--log-level", "INFO"]
        if listen:
            args += ["--listen", f"127.0.0.1:{self.port}"]
        if lab is not None:
            args += ["--root-hints", str(lab.root_hints_file), "--upstream-port", str(lab.port),
                     "--no-do-not-query-localhost"]      # the lab is on loopback
        if self.control:
            args += ["--control", self.control]
        if self.metrics_port:
            args += ["--metrics", f"127.0.0.1:{self.metrics_port}"]
        if os.geteuid() == 0 and "--user" not in extra:
            # Started as root the daemon would become an unprivileged user, which cannot read
            # the tests' private temporary files on reload; tests of that switch say --user.
            args += ["--user", ""]
        self.args = args + list(extra)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0, ready: str = "ready") -> "Daemon":
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen([*self.wrap, sys.executable, "-m", "resolver.daemon.cli",
                                      *self.args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "wb"), cwd=str(ROOT), env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        with stopped_unless_ready(self.proc, group=True):
            while True:
                text = self.log_text()
                if self.proc.poll() is not None:
                    raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n"
                                       f"{text[-3000:]}")
                if ready in text:
                    return self
                if time.monotonic() > deadline:
                    raise RuntimeError(f"daemon not ready after {timeout}s:\n{text[-3000:]}")
                time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait; SIGKILL the group if it lingers. Returns the exit status."""
        if self.proc is None:
            return None
        return stop_process(self.proc, timeout, group=True)

    # ---- asking it ------------------------------------------------------------------------
    def ask(self, qname_or_msg, rdtype: str = "A", *, tcp: bool = False, timeout: float = 8.0,
            edns: bool = False, rd: bool = True) -> dns.message.Message:
        if isinstance(qname_or_msg, dns.message.Message):
            q = qname_or_msg
        else:
            q = dns.message.make_query(qname_or_msg, rdtype, use_edns=0 if edns else False)
            if not rd:
                q.flags &= ~dns.flags.RD
        if tcp:
            return dns.query.tcp(q, "127.0.0.1", port=self.port, timeout=timeout)
        return dns.query.udp(q, "127.0.0.1", port=self.port, timeout=timeout,
                             raise_on_truncation=False, ignore_trailing=False)

    def raw_udp(self, data: bytes, timeout: float = 1.0) -> bytes | None:
        """Sends raw bytes; the reply, or None if none came within ``timeout``."""
        return udp_exchange(self.port, data, timeout)

    def tcp_conn(self, timeout: float = 5.0) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return s

    def stats(self) -> dict:
        from resolver.daemon.control import request
        return request(self.control, {"cmd": "stats"})["stats"]

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as r:
            return r.read().decode()

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss(self) -> int:
        """Resident memory, bytes."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def udp_exchange(port: int, data: bytes, timeout: float = 1.0) -> bytes | None:
    """Sends the datagram ``data`` to 127.0.0.1:``port``; the reply, or None if none came
    within ``timeout``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(data, ("127.0.0.1", port))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None


def frame(msg: bytes) -> bytes:
    return struct.pack("!H", len(msg)) + msg


def read_frame(s: socket.socket) -> bytes | None:
    """One length-prefixed message, or None when the peer closed."""
    head = _read_exact(s, 2)
    if head is None:
        return None
    return _read_exact(s, struct.unpack("!H", head)[0])


def answer_or_shut(s: socket.socket, data: bytes) -> bytes | None:
    """Send ``data`` on ``s``: the one message that comes back, or None when the peer shut
    the connection instead. A server that closes a connection with our bytes unread makes
    the kernel send a reset, and one that closes before we write makes the write fail, so
    an end of file, a reset and a broken pipe are all the same answer here: shut."""
    try:
        s.sendall(data)
        return read_frame(s)
    except (ConnectionResetError, BrokenPipeError):
        return None


def _read_exact(s: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def refused_as_nobody(workdir: Path, lab) -> bool:
    """Where user nobody cannot read the code under test (a checkout in a private directory),
    checks that a daemon told to run as nobody refuses to start, saying why, and returns
    True: the caller's test of running as nobody cannot run there. False elsewhere."""
    import pwd

    import pytest

    from resolver.daemon.process import unreadable_code

    if os.geteuid() != 0 or not unreadable_code(pwd.getpwnam("nobody")):
        return False
    with pytest.raises(RuntimeError, match="nobody could not read"):
        Daemon(workdir, lab, "--user", "nobody").start()
    return True


@contextmanager
def beside_unbound(tmp: Path, *args: str, unbound_extra: str = ""):
    """A lab on port 53 (skipped as ``lab_on_port_53`` says when it cannot be had), and Unbound
    (``unbound_extra`` added to its config) and the daemon (``args``) resolving from it:
    (unbound, daemon), each stopped at the end."""
    from dnslab.unbound import Unbound, lab_on_port_53

    lab = lab_on_port_53(tmp / "lab")
    ub = d = None
    try:
        ub = Unbound.start(tmp / "unbound", lab, extra=unbound_extra)
        d = Daemon(tmp / "daemon", lab, *args).start()
        yield ub, d
    finally:
        if d is not None:
            d.stop()
        if ub is not None:
            ub.stop()
        lab.stop()


def answer_from(port: int, source: str, name: str, rdtype: str, tcp: bool) -> tuple:
    """The rcode and the sorted answer records of a server on 127.0.0.1 at ``port`` for a
    question asked from the loopback address ``source``."""
    ask = dns.query.tcp if tcp else dns.query.udp
    r = ask(dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=5,
            source=source)
    return dns.rcode.to_text(r.rcode()), sorted(rd.to_text() for rrset in r.answer
                                                 for rd in rrset)


def answers_by_client(port: int, clients, questions, tcp: bool) -> dict:
    """Every question from every client, {(client, name, type): ``answer_from``}, the
    clients of one question at once (so that one client's resolution can fill the cache
    another's answer must not come from)."""
    from concurrent.futures import ThreadPoolExecutor

    out = {}
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        for name, rdtype in questions:
            got = pool.map(lambda src: answer_from(port, src, name, rdtype, tcp), clients)
            out.update({(src, name, rdtype): a for src, a in zip(clients, got)})
    return out


def served_and_imported(tmp: Path, server_lines: str, written: str):
    """The zones of an unbound.conf of ``server_lines`` served as it is, and of the TOML
    ``import-unbound`` writes for it, which must carry every option over and hold
    ``written``: (served, imported), ``resolver.zones.Zones`` each."""
    from resolver.daemon.config import build, make_zones

    conf = tmp / "unbound.conf"
    conf.write_text("server:\n" + server_lines)
    r = cli("import-unbound", str(conf))
    assert r.returncode == 0, r.stderr
    assert written in r.stdout and "0 not" in r.stdout, r.stdout
    toml = tmp / "imported.toml"
    toml.write_text(r.stdout)
    return make_zones(build(str(conf))), make_zones(build(str(toml)))
