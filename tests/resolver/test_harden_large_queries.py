"""``harden-large-queries``, side by side with a real Unbound given the same option: a query
larger than 512 bytes gets no answer (over TCP its connection ends) when the option is on, an
answer when it is off; a query of 512 bytes is answered either way. The daemon counts each
dropped one (``large``)."""
from __future__ import annotations

import os
import shutil
import socket
import struct

import dns.edns
import dns.message
import pytest
from ci_policy import unavailable

from daemon_proc import Daemon, udp_exchange
from dnslab.unbound import local_unbound
from ports import free_port
from procs import stop as stop_process

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
PADDING = 12


def query(size: int) -> bytes:
    """A query for a.test. A padded (EDNS option 12) to exactly ``size`` bytes."""
    bare = dns.message.make_query("a.test.", "A", use_edns=0,
                                  options=[dns.edns.GenericOption(PADDING, b"")]).to_wire()
    pad = size - len(bare)
    assert pad >= 0
    return dns.message.make_query("a.test.", "A", use_edns=0, options=[
        dns.edns.GenericOption(PADDING, b"\0" * pad)]).to_wire()


def over_udp(port: int, wire: bytes) -> list[str] | None:
    """The answer's records, or None when none came within a second."""
    data = udp_exchange(port, wire)
    if data is None:
        return None
    return sorted(rd.to_text() for rrset in dns.message.from_wire(data).answer for rd in rrset)


def over_tcp(port: int, wire: bytes) -> list[str] | str:
    """The answer's records, or "closed" when the server ended the connection unanswered."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(struct.pack("!H", len(wire)) + wire)
        data = b""
        try:
            while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
                got = s.recv(65535)
                if not got:
                    return "closed"
                data += got
        except ConnectionResetError:
            return "closed"
    return sorted(rd.to_text() for rrset in dns.message.from_wire(data[2:]).answer
                  for rd in rrset)


@pytest.mark.parametrize("hardened", [True, False])
def test_a_query_over_512_bytes_is_dropped_as_unbound_drops_it(lab, tmp_path, hardened):
    if not os.path.exists(UNBOUND):
        unavailable(f"{UNBOUND} is missing (Debian package 'unbound')")
    yes_no = "yes" if hardened else "no"
    uport = free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, [f"harden-large-queries: {yes_no}",
                                    "local-zone: test. static",
                                    'local-data: "a.test. A 10.0.0.1"'])
    conf = tmp_path / "resolver.toml"
    conf.write_text(f"harden-large-queries = {str(hardened).lower()}\n"
                    'local-data = ["a.test. 300 A 10.0.0.1"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    answer = ["10.0.0.1"]
    try:
        for who, port in (("unbound", uport), ("corenet", d.port)):
            assert over_udp(port, query(512)) == answer, who
            assert over_tcp(port, query(512)) == answer, who
            assert over_udp(port, query(513)) == (None if hardened else answer), who
            assert over_tcp(port, query(600)) == ("closed" if hardened else answer), who
        dropped = d.stats()["dropped"]
        assert dropped.get("large", 0) == (2 if hardened else 0), dropped
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]
