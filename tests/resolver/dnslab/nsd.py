"""One NSD process serving some zones on one address: config, start, readiness, stop.

Debian's NSD, run in the foreground (``-d``) in its own process group, with every file it
writes kept in its own directory, no privilege drop and response rate limiting off (NSD's
default of 200 answers/s per source would drop a resolver's answers under load). With
``control`` it listens for ``nsd-control`` on a Unix socket in its directory (no keys or
certificates: the file's permissions guard it), so a test can read how many queries it
received.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
from procs import reap

NSD = shutil.which("nsd") or "/usr/sbin/nsd"
NSD_CONTROL = shutil.which("nsd-control") or "/usr/sbin/nsd-control"


class LabError(RuntimeError):
    """The lab could not be built: a missing binary, a port taken, a server that died."""


class NsdServer:
    def __init__(self, workdir: Path, address: str, port: int, zones: dict[str, str],
                 control: bool = False, provide_xfr: tuple[str, ...] = (),
                 tsig: tuple[str, str, str] | None = None) -> None:
        self.workdir = workdir
        self.address = address
        self.port = port
        self.zones = zones  # origin -> zone text
        self.control = control
        # the origins transferred to loopback clients (AXFR, IXFR): NSD's provide-xfr
        self.provide_xfr = provide_xfr
        # (name, algorithm, base64 secret): a TSIG key NSD knows, which then signs its
        # answers to queries signed with it and is the one the transfers require
        self.tsig = tsig
        self.proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "nsd.log"

    def write_files(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        w = self.workdir
        conf = [
            "server:",
            f"  ip-address: {self.address}",
            f"  port: {self.port}",
            "  do-ip4: yes",
            "  do-ip6: no",
            '  username: ""',
            '  chroot: ""',
            '  database: ""',
            f'  zonesdir: "{w}"',
            f'  zonelistfile: "{w}/zone.list"',
            f'  xfrdfile: "{w}/xfrd.state"',
            f'  xfrdir: "{w}"',
            f'  pidfile: "{w}/nsd.pid"',
            f'  logfile: "{self.log_path}"',
            "  server-count: 1",
            "  verbosity: 1",
            "  hide-version: yes",
            "  zonefiles-check: no",
            "  rrl-ratelimit: 0",
            "  rrl-whitelist-ratelimit: 0",
            "remote-control:",
        ]
        if self.control:
            conf += ["  control-enable: yes", f'  control-interface: "{w}/nsd.ctl"']
        else:
            conf += ["  control-enable: no"]
        if self.tsig is not None:
            name, algorithm, secret = self.tsig
            conf += ["key:", f'  name: "{name}"', f"  algorithm: {algorithm}",
                     f'  secret: "{secret}"']
        for i, (origin, text) in enumerate(sorted(self.zones.items())):
            fname = f"zone{i:03d}.zone"
            (w / fname).write_text(text)
            conf += ["zone:", f'  name: "{origin}"', f'  zonefile: "{fname}"']
            if origin in self.provide_xfr:
                key = self.tsig[0] if self.tsig is not None else "NOKEY"
                conf.append(f"  provide-xfr: 127.0.0.0/8 {key}")
        path = w / "nsd.conf"
        path.write_text("\n".join(conf) + "\n")
        return path

    def start(self) -> None:
        if not os.path.exists(NSD):
            raise LabError("nsd is not installed (Debian package 'nsd'; scripts/setup.sh installs it)")
        conf = self.write_files()
        self.proc = subprocess.Popen(
            [NSD, "-d", "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "stderr.log", "wb"),
            start_new_session=True,  # its own process group: its children die with it
        )

    def probe(self, timeout: float = 0.2) -> bool:
        """True when the server answers a query (any rcode: a lame one answers REFUSED)."""
        origin = next(iter(sorted(self.zones)), ".")
        q = dns.message.make_query(origin, "SOA")
        try:
            dns.query.udp(q, self.address, port=self.port, timeout=timeout)
            return True
        except (dns.exception.Timeout, OSError, dns.exception.DNSException):
            return False

    def queries_received(self, timeout: float = 5.0) -> int:
        """How many queries this server has received since it started (NSD's ``num.queries``,
        read with ``nsd-control stats_noreset``). Needs ``control``; retried until
        ``timeout`` while the control socket is not up yet."""
        if not self.control:
            raise LabError(f"nsd on {self.address} runs without a control socket")
        if not os.path.exists(NSD_CONTROL):
            raise LabError("nsd-control is not installed (Debian package 'nsd')")
        deadline = time.monotonic() + timeout
        while True:
            r = subprocess.run([NSD_CONTROL, "-c", str(self.workdir / "nsd.conf"),
                                "stats_noreset"], capture_output=True, text=True,
                               timeout=timeout)
            for line in r.stdout.splitlines() if r.returncode == 0 else ():
                if line.startswith("num.queries="):
                    return int(line.split("=", 1)[1])
            if time.monotonic() > deadline:
                raise LabError(f"nsd-control on {self.address}: exit {r.returncode}: "
                               f"{(r.stderr or r.stdout)[-500:]}")
            time.sleep(0.05)

    def failure(self) -> str | None:
        """Why the process died, when it has."""
        if self.proc is None or self.proc.poll() is None:
            return None
        logs = ""
        for name in ("nsd.log", "stderr.log"):
            p = self.workdir / name
            if p.exists():
                logs += p.read_text(errors="replace")[-2000:]
        return f"nsd on {self.address}:{self.port} exited with {self.proc.returncode}: {logs.strip()}"

    def signal_stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def wait_stopped(self, deadline: float) -> None:
        """Wait for the process until ``deadline``; then kill its whole process group."""
        if self.proc is not None:
            reap(self.proc, deadline - time.monotonic(), group=True)


def nsd_on_loopback(workdir: Path, zones: dict[str, str], timeout: float = 10.0,
                    provide_xfr: tuple[str, ...] = (),
                    tsig: tuple[str, str, str] | None = None) -> NsdServer:
    """One NSD on 127.0.0.1 at a free port serving ``zones`` (origin -> zone text), once it
    answers, the zones named in ``provide_xfr`` transferred to loopback clients (those that
    sign with ``tsig``'s key (name, algorithm, base64 secret) when given); stop it with
    ``signal_stop`` and ``wait_stopped``. Raises LabError if it dies or does not answer in
    ``timeout``."""
    from ports import pick_port

    srv = NsdServer(Path(workdir), "127.0.0.1", pick_port(["127.0.0.1"]), zones,
                    provide_xfr=provide_xfr, tsig=tsig)
    srv.start()
    deadline = time.monotonic() + timeout
    while not srv.probe():
        if srv.failure() is not None or time.monotonic() > deadline:
            why = srv.failure() or f"nsd not answering after {timeout}s"
            srv.signal_stop()
            srv.wait_stopped(time.monotonic() + 5)
            raise LabError(why)
        time.sleep(0.05)
    return srv
