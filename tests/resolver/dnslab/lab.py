"""The running lab: every NSD of ``zones.SERVERS`` on its address, all on one port.

    lab = Lab.start(tmpdir)
    r = resolver.Resolver(root_hints=lab.root_hints, port=lab.port,
                          do_not_query_localhost=False)      # the lab is on loopback
    ...
    lab.stop()
"""
from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.flags
import dns.message
import dns.query

from . import zones as Z
from .nsd import LabError, NsdServer
from ports import bind_all, loopback_usable, pick_port


class Lab:
    """A DNS hierarchy on loopback, served by real NSD processes."""

    def __init__(self, workdir: Path, port: int, zone_texts: dict[str, str] | None = None,
                 servers: tuple[Z.Server, ...] | None = None, control: bool = False) -> None:
        self.workdir = Path(workdir)
        self.port = port
        self.zone_texts = Z.zone_texts() if zone_texts is None else zone_texts
        self.specs = Z.SERVERS if servers is None else servers
        self.control = control
        self.root_hints: list[tuple[str, str]] = list(Z.ROOT_HINTS)
        self.servers: list[NsdServer] = []
        self._silent: list[socket.socket] = []

    # -- public API ---------------------------------------------------------------

    @classmethod
    def start(cls, workdir: str | Path, *, port: int | None = None, timeout: float = 10.0,
              attempts: int = 3, zone_texts: dict[str, str] | None = None,
              servers: tuple[Z.Server, ...] | None = None, control: bool = False) -> "Lab":
        """Start the whole lab under ``workdir`` and return when every server answers.

        Without ``port`` a free one is picked; if another process takes it before NSD
        binds, the lab retries on a new port (``attempts`` times). ``zone_texts`` and
        ``servers`` replace ``zones.zone_texts()`` and ``zones.SERVERS`` (e.g. with signed
        zones for DNSSEC tests).
        """
        addresses = sorted(set(Z.ALL_ADDRESSES) | {s.address for s in servers or ()})
        bad = [a for a in addresses if not loopback_usable(a)]
        if bad:
            raise LabError(f"loopback addresses not usable here: {bad} (Linux routes 127/8 to lo)")
        last: Exception | None = None
        for attempt in range(attempts if port is None else 1):
            p = port if port is not None else pick_port(addresses)
            lab = cls(Path(workdir) / f"lab-{p}-{attempt}", p, zone_texts, servers, control)
            try:
                lab._start(timeout)
                return lab
            except LabError as e:
                last = e
                lab.stop()
            except BaseException:           # an interrupt: nothing of the lab is left running
                lab.stop()
                raise
        raise LabError(f"lab did not start: {last}")

    @property
    def root_hints_file(self) -> Path:
        """The root hints in the usual file format (as named.root), written on demand."""
        path = self.workdir / "root.hints"
        if not path.exists():
            lines = [f".  3600000  NS  {name}\n" for name, _ in self.root_hints]
            lines += [f"{name}  3600000  A  {addr}\n" for name, addr in self.root_hints]
            path.write_text("".join(lines))
        return path

    def ask(self, address: str, qname: str, rdtype: str = "A", *, tcp: bool = False,
            edns: bool = True, timeout: float = 2.0) -> dns.message.Message:
        """Ask one lab address directly (no recursion desired), as a resolver would."""
        q = dns.message.make_query(qname, rdtype, use_edns=0 if edns else False, payload=1232)
        q.flags &= ~dns.flags.RD
        if tcp:
            return dns.query.tcp(q, address, port=self.port, timeout=timeout)
        return dns.query.udp(q, address, port=self.port, timeout=timeout, ignore_trailing=False)

    def queries_received(self) -> int:
        """Queries every server of the lab has received since it started, summed (the lab
        must have been started with ``control``): upstream queries counted at the
        authorities, whichever resolver sent them. The servers are read in parallel."""
        with ThreadPoolExecutor(len(self.servers) or 1) as pool:
            return sum(pool.map(NsdServer.queries_received, self.servers))

    def server(self, address: str) -> NsdServer:
        for s in self.servers:
            if s.address == address:
                return s
        raise KeyError(address)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every NSD in parallel (each takes up to seconds), killing laggards."""
        for s in self.servers:
            s.signal_stop()
        deadline = time.monotonic() + timeout
        for s in self.servers:
            s.wait_stopped(deadline)
        for sock in self._silent:
            sock.close()
        self._silent.clear()

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def describe(self) -> str:
        out = [f"port {self.port}", "root hints:"]
        out += [f"  {n} {a}" for n, a in self.root_hints]
        out.append("servers:")
        out += [f"  {s.address}: {' '.join(sorted(s.zones)) or '(no zones: lame)'}" for s in self.servers]
        out.append(f"  {Z.SILENT}: silent (never answers)")
        out.append(f"  {Z.REFUSED}: nothing bound (port unreachable)")
        out.append(f"  {Z.FAKE_TLD_1} {Z.FAKE_TLD_2} {Z.FAKE_MIXED}: slots for dnslab.fake")
        return "\n".join(out)

    # -- internals ------------------------------------------------------------------

    def _start(self, timeout: float) -> None:
        texts = self.zone_texts
        for spec in self.specs:
            zones = {origin: texts[origin] for origin in spec.zones}
            workdir = self.workdir / spec.address
            self.servers.append(NsdServer(workdir, spec.address, self.port, zones, self.control))
        try:
            self._silent = self._hold_silent()
        except OSError as e:
            raise LabError(f"port {self.port} taken on {Z.SILENT}: {e}") from e
        for s in self.servers:
            s.start()
        deadline = time.monotonic() + timeout
        pending = list(self.servers)
        while pending:
            for s in list(pending):
                why = s.failure()
                if why:
                    raise LabError(why)
                if s.probe(timeout=0.05):
                    pending.remove(s)
            if pending and time.monotonic() > deadline:
                raise LabError(f"servers not answering after {timeout}s: {[s.address for s in pending]}")
            if pending:
                time.sleep(0.02)

    def _hold_silent(self) -> list[socket.socket]:
        """UDP that is never read and TCP that listens but never accepts: a dead host."""
        held = bind_all([Z.SILENT], self.port)
        for s in held:
            if s.type == socket.SOCK_STREAM:
                s.listen(1)
        return held
