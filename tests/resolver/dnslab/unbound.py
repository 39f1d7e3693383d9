"""Unbound (Debian's) as a reference recursive resolver over the lab.

Unbound always sends iterative queries to port 53 (a referral carries no port), so the lab
it resolves from must run on port 53: ``Lab.start(tmp, port=53)``. It refuses to query
127/8 unless ``do-not-query-localhost: no``. Started in the foreground in its own process
group, stopped by PID.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
from procs import stop as stop_process
from procs import stopped_unless_ready

from . import zones as Z
from .lab import Lab
from .nsd import LabError
from ports import bind_all, pick_port

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"


def lab_on_port_53(workdir, addresses=None, **lab_kw) -> Lab:
    """A lab that Unbound can resolve from (it only queries port 53). Skips the calling test,
    naming what is missing, when Unbound is not installed or port 53 is not free."""
    import pytest

    if not os.path.exists(UNBOUND):
        pytest.skip("unbound (Debian package 'unbound') is not installed")
    try:
        for s in bind_all(addresses or Z.ALL_ADDRESSES, 53):
            s.close()
    except OSError as e:
        pytest.skip(f"port 53 is taken on a lab address ({e}): Unbound can only query port 53")
    try:
        return Lab.start(workdir, port=53, **lab_kw)
    except LabError as e:  # e.g. another run took port 53 since the check above
        pytest.skip(f"no lab on port 53: {e}")


def server_lines(workdir: Path, lab: Lab, threads: int = 1) -> list[str]:
    """The ``server:`` settings every test's Unbound shares: in the foreground as the
    current user, its files in ``workdir``, the lab's root hints, IPv4 only, loopback
    authorities and clients allowed, the iterator alone."""
    w = workdir
    return [
        "  do-ip6: no",
        '  username: ""',
        '  chroot: ""',
        f'  directory: "{w}"',
        f'  pidfile: "{w}/unbound.pid"',
        "  use-syslog: no",
        f'  logfile: "{w}/unbound.log"',
        f'  root-hints: "{lab.root_hints_file}"',
        "  do-not-query-localhost: no",
        f"  num-threads: {threads}",
        "  verbosity: 1",
        '  module-config: "iterator"',
        "  access-control: 127.0.0.0/8 allow",
    ]


def launch(w: Path, lines: list[str], address: str, port: int,
           timeout: float = 10.0, wrap: tuple[str, ...] = (),
           control: tuple[str, ...] = ("control-enable: no",)) -> subprocess.Popen:
    """Unbound with ``lines`` as its ``server:`` clause (and the clauses that follow them;
    ``control`` its remote-control clause: off by default), in the foreground in its own
    process group, once it answers on ``address``:``port``; run under ``wrap`` (e.g.
    valgrind) if given. Raises LabError if it exits or does not answer in ``timeout``."""
    conf = w / "unbound.conf"
    conf.write_text("\n".join(["server:", *lines, "remote-control:",
                               *(f"  {line}" for line in control)]) + "\n")
    proc = subprocess.Popen([*wrap, UNBOUND, "-d", "-c", str(conf)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=open(w / "stderr.log", "wb"),
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    q = dns.message.make_query("localhost.", "A")  # answered locally by Unbound
    with stopped_unless_ready(proc, group=True):
        while True:
            if proc.poll() is not None:
                err = (w / "stderr.log").read_text(errors="replace")[-2000:]
                raise LabError(f"unbound exited with {proc.returncode}: {err}")
            try:
                dns.query.udp(q, address, port=port, timeout=0.1)
                return proc
            except (dns.exception.Timeout, OSError):
                if time.monotonic() > deadline:
                    raise LabError(f"unbound not answering on {address}:{port} after "
                                   f"{timeout}s") from None


def unasked_root_hints(path: Path) -> Path:
    """A root hints file at ``path`` naming one root server on 127.0.0.1, for resolvers that
    answer from their forward, stub and local zones only: nothing they might ask leaves
    loopback. Returns ``path``."""
    path.write_text(". 3600000 NS a.root.test.\na.root.test. 3600000 A 127.0.0.1\n")
    return path


def local_unbound(w: Path, port: int, lines: list[str],
                  control: tuple[str, ...] = ("control-enable: no",)) -> subprocess.Popen:
    """Unbound on 127.0.0.1:``port`` with no lab, answering what ``lines`` (its own
    server: options, indented or not) give it: its files in ``w``, IPv4 only, the iterator
    alone; ``control`` its remote-control clause. Stop it with procs.stop(..., group=True)."""
    base = [f"interface: 127.0.0.1@{port}", 'username: ""', 'chroot: ""', f'directory: "{w}"',
            f'pidfile: "{w}/unbound.pid"', "use-syslog: no", 'module-config: "iterator"',
            "do-ip6: no"]
    return launch(w, [f"  {line.strip()}" for line in (*base, *lines)], "127.0.0.1", port,
                  control=control)


class Unbound:
    def __init__(self, workdir: Path, address: str, port: int) -> None:
        self.workdir = workdir
        self.address = address
        self.port = port
        self.proc: subprocess.Popen | None = None

    @classmethod
    def start(cls, workdir: str | Path, lab: Lab, *, address: str = "127.0.0.1",
              port: int | None = None, threads: int = 1, extra: str = "",
              timeout: float = 10.0) -> "Unbound":
        """Unbound on ``address:port`` with the lab's root hints; ``extra`` is appended to
        its ``server:`` clause (e.g. cache sizes for a benchmark)."""
        if not os.path.exists(UNBOUND):
            raise LabError("unbound is not installed (Debian package 'unbound')")
        if lab.port != 53:
            raise LabError("Unbound asks authorities on port 53 only: start the lab with port=53")
        w = Path(workdir)
        w.mkdir(parents=True, exist_ok=True)
        port = port or pick_port([address])
        self = cls(w, address, port)
        self.proc = launch(w, [f"  interface: {address}@{port}", f"  port: {port}",
                               *server_lines(w, lab, threads), "  qname-minimisation: yes",
                               extra], address, port, timeout)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout, group=True)

    def __enter__(self) -> "Unbound":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
