"""Choosing ports for the servers the tests start, the one way every test area does it
(import as ``from ports import ...``): free for UDP and TCP on every address asked for.

A port handed to a server that binds it later is taken below the kernel's ephemeral range,
so that no client socket of the machine (the resolvers' random source ports, every
connect()) can be handed it meanwhile; a port bound to 0 and closed again has no such
guarantee.
"""
from __future__ import annotations

import contextlib
import errno
import random
import socket
from collections import deque
from collections.abc import Iterable, Iterator

#: Ports pick_port handed out lately in this process. A port is free when picked and taken
#: only later, when its server binds it: a test that picks the ports of several servers
#: before starting them must not get one port twice.
_RECENT: deque[int] = deque(maxlen=256)


def ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def bind_all(addresses: Iterable[str], port: int) -> list[socket.socket]:
    """Bind UDP and TCP on every address at ``port``; raise OSError if any is taken."""
    held: list[socket.socket] = []
    try:
        for addr in addresses:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, kind)
                held.append(s)
                s.bind((addr, port))
    except OSError:
        for s in held:
            s.close()
        raise
    return held


def pick_port(addresses: Iterable[str], tries: int = 200, low: int = 20000) -> int:
    """A port free on every address, UDP and TCP (sockets closed again before return), and
    not among the last ones handed out."""
    addresses = list(addresses)
    high = max(low + 1000, ephemeral_low() - 1)
    for _ in range(tries):
        port = random.randint(low, high)
        if port in _RECENT:
            continue
        try:
            held = bind_all(addresses, port)
        except OSError:
            continue
        for s in held:
            s.close()
        _RECENT.append(port)
        return port
    raise OSError(f"no port free on all of {addresses} after {tries} tries")


def free_port(host: str = "127.0.0.1") -> int:
    """A port of ``host`` (IPv4 or IPv6) free for UDP and TCP, for a server started next."""
    return pick_port([host])


@contextlib.contextmanager
def refusing_port(kind: int = socket.SOCK_STREAM, address: str = "127.0.0.1",
                  *others: str) -> Iterator[int]:
    """A port of ``address`` (and of each of ``others``; IPv4 or IPv6) where a client is
    refused at once for as long as the block runs: TCP connections get a reset, UDP
    datagrams an ICMP port unreachable. The port is held meanwhile on each address (a TCP
    socket bound but not listening; a UDP socket connected elsewhere, which takes no one
    else's datagrams), so no server another test starts can be given it between the
    choice and the client's use."""
    addresses = (address, *others)
    for _ in range(50):
        held: list[socket.socket] = []
        port = 0                    # the first address's, chosen by the kernel
        try:
            for a in addresses:
                s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, kind)
                held.append(s)
                s.bind((a, port))
                port = s.getsockname()[1]
                if kind == socket.SOCK_DGRAM:
                    s.connect((a, 9))
        except OSError as e:
            for s in held:
                s.close()
            if e.errno != errno.EADDRINUSE:
                raise
            continue                # the first address's port is taken on another: again
        try:
            yield port
        finally:
            for s in held:
                s.close()
        return
    raise OSError(f"no port free on all of {addresses} after 50 tries")


def loopback_usable(address: str) -> bool:
    """Whether this 127.0.0.x address can be bound and reached (Linux routes all of
    127/8 to lo; other systems only 127.0.0.1)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as cli:
            srv.bind((address, 0))
            srv.settimeout(1.0)
            cli.sendto(b"ping", srv.getsockname())
            data, _ = srv.recvfrom(16)
            return data == b"ping"
    except OSError:
        return False
