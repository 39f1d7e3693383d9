"""The listening sockets' options as Unbound's: with ``ip-freebind`` or ``ip-transparent``
an address the host does not have is bound (refused at start without them) over UDP, TCP
and the encrypted listeners' TCP; ``so-rcvbuf`` and ``so-sndbuf`` size the UDP sockets'
buffers past the system's cap as root, within it otherwise (said once); an unbound.conf's
lines carry over."""
from __future__ import annotations

import errno
import os
import socket
from types import SimpleNamespace

import pytest

from daemon_proc import Daemon
from ports import free_port
from resolver.daemon import connections, unbound_conf
from resolver.daemon.config import build
from resolver.daemon.connections import _bind, listen_options

#: TEST-NET-2: an address no host of ours has
ELSEWHERE = "198.51.100.7"


def options(freebind: bool = False, transparent: bool = False):
    return listen_options(SimpleNamespace(ip_freebind=freebind, ip_transparent=transparent))


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM], ids=["udp", "tcp"])
def test_an_address_not_on_the_host_is_bound_only_with_freebind_or_transparent(kind):
    with pytest.raises(OSError) as e:
        _bind(socket.AF_INET, kind, ELSEWHERE, 0, False, options())
    assert e.value.errno == errno.EADDRNOTAVAIL
    asked = [options(freebind=True)]
    if os.geteuid() == 0:                     # IP_TRANSPARENT wants CAP_NET_ADMIN
        asked.append(options(transparent=True))
    for opts in asked:
        s = _bind(socket.AF_INET, kind, ELSEWHERE, 0, False, opts)
        try:
            assert s.getsockname()[0] == ELSEWHERE
        finally:
            s.close()


def _bound(pid: int, table: str, address: str, port: int) -> bool:
    """Whether process ``pid``'s network namespace has a ``table`` (udp, tcp) socket on
    ``address``:``port``."""
    a = socket.inet_aton(address)[::-1].hex().upper()
    want = f"{a}:{port:04X}"
    with open(f"/proc/{pid}/net/{table}") as f:
        return any(line.split()[1] == want for line in f.readlines()[1:])


def test_the_daemon_serves_on_an_address_it_does_not_have_with_ip_freebind(tmp_path):
    port, dot = free_port(), free_port()
    args = ("--listen", f"127.0.0.1:{free_port()}", "--listen", f"{ELSEWHERE}:{port}")
    d = Daemon(tmp_path / "refused", None, *args, listen=False)
    with pytest.raises(RuntimeError, match="Cannot assign requested address"):
        d.start()
    conf = tmp_path / "freebind.toml"
    conf.write_text(f'ip-freebind = true\nhttp-listen = ["{ELSEWHERE}:{dot}"]\n'
                    "http-notls-allow-nonlocal = true\n")
    d = Daemon(tmp_path / "freebind", None, *args, "--config", str(conf), listen=False)
    d.start()
    try:
        assert _bound(d.pid, "udp", ELSEWHERE, port)
        assert _bound(d.pid, "tcp", ELSEWHERE, port) and _bound(d.pid, "tcp", ELSEWHERE, dot)
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_an_unbound_conf_s_lines_carry_over(tmp_path):
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n  ip-freebind: yes\n  ip-transparent: yes\n")
    assert unbound_conf.convert(unbound_conf.read(str(conf))).unmapped == []
    cfg = build(str(conf))
    assert (cfg.ip_freebind, cfg.ip_transparent) == (True, True)
    assert len(listen_options(cfg)) == 2 and listen_options(build(None)) == ()


def buffers(rcv: int, snd: int = 0):
    return listen_options(SimpleNamespace(ip_freebind=False, ip_transparent=False,
                                          so_rcvbuf=rcv, so_sndbuf=snd), socket.SOCK_DGRAM)


def _rmem_max() -> int:
    with open("/proc/sys/net/core/rmem_max") as f:
        return int(f.read())


def test_udp_buffers_are_forced_past_the_system_s_cap_as_root():
    if os.geteuid() != 0:
        pytest.skip("forcing a buffer past net.core.rmem_max takes root")
    want = 4 * _rmem_max()
    s = _bind(socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1", 0, False, buffers(want, want))
    try:
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * want   # shown doubled
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * want
    finally:
        s.close()
    assert buffers(0, 0) == ()                        # 0: the system's, nothing set
    assert listen_options(SimpleNamespace(ip_freebind=False, ip_transparent=False,
                                          so_rcvbuf=want, so_sndbuf=0)) == ()   # not TCP


class Unprivileged(socket.socket):
    """A socket of a process that may not force a buffer size (no CAP_NET_ADMIN)."""

    def setsockopt(self, level, option, value, *rest):
        if option in (connections.SO_RCVBUFFORCE, connections.SO_SNDBUFFORCE):
            raise PermissionError(1, "Operation not permitted")
        return super().setsockopt(level, option, value, *rest)


def test_without_root_the_buffer_is_asked_within_the_cap_and_the_shortfall_said_once(
        monkeypatch, caplog):
    monkeypatch.setattr(connections, "_warned", set())
    want = 4 * _rmem_max()
    with caplog.at_level("WARNING", logger="resolver.daemon.connections"):
        for _ in range(2):
            s = Unprivileged(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                for level, option, value in buffers(want):
                    connections._setsockopt(s, level, option, value)
                assert s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * _rmem_max()
            finally:
                s.close()
    assert caplog.messages == [f"so-rcvbuf {want} was not granted: got {_rmem_max()}; give "
                               "the daemon CAP_NET_ADMIN (root has it) or raise the sysctl "
                               "net.core.rmem_max"]
