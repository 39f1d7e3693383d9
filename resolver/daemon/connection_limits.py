"""``tcp-connection-limit``: the stream connections (TCP, DoT, DoH) the clients of a network
may hold at once, counted across the workers, as Unbound counts across its threads.

Each network of the option has a column of a table, each worker a row, in memory shared by
the workers (an anonymous shared mapping the supervisor makes before it forks them). A
worker writes only its own row, so no lock is needed; a network is at its limit when the
sum of its column is. The supervisor clears a dead worker's row before it starts another in
its place: the connections it held went with it. A single worker has a table of one row in
its own memory.

A reload may change the networks or their order: each worker then writes its row again in
the new order, from the connections it holds. Between the reloads of two workers their rows
are in different orders, and a sum may miscount for as long as that lasts (the reloads of
one command, a few milliseconds). A connection counted against a network that a reload
removed stays counted in its worker (not in the table) until it closes.
"""
from __future__ import annotations

import logging
import mmap
from typing import Any, Iterable

from resolver.daemon.acl import ACL

log = logging.getLogger("resolver.daemon")

#: Networks the table counts across the workers. The configs seen in practice list a few;
#: the table takes 4 bytes per network and worker. Networks past it are counted per worker
#: (each worker allows the limit), and the log says so once.
MAX_NETWORKS = 1024


class Table:
    """The connections each worker holds per network: ``workers`` rows of ``width`` counters
    (32-bit, native order) in an anonymous mapping shared across ``fork``."""

    def __init__(self, workers: int, width: int = MAX_NETWORKS) -> None:
        self.workers, self.width = workers, width
        self.memory = mmap.mmap(-1, workers * width * 4)   # MAP_SHARED | MAP_ANONYMOUS
        self.cells = memoryview(self.memory).cast("i")

    def clear(self, row: int) -> None:
        """Row ``row`` back to zeros (its worker is gone, or is taking it over)."""
        start = row * self.width * 4
        self.memory[start:start + self.width * 4] = bytes(self.width * 4)

    def total(self, column: int) -> int:
        cells, width = self.cells, self.width
        return sum(cells[r * width + column] for r in range(self.workers))


class ConnectionLimits:
    """One worker's side of ``tcp-connection-limit``: the networks (the longest holding a
    client counts it), the connections it holds on each, and its row of the table."""

    def __init__(self, networks: Iterable[tuple[str, int]], table: Table | None = None,
                 row: int = 0) -> None:
        self.table = table if table is not None else Table(1)
        self.row = row
        self.networks: tuple = ()
        self.acl = ACL()                #: a network's standing: its place in ``networks``, 1 up
        self.held: dict[str, int] = {}  #: network -> the connections this worker holds on it
        self.network_of: dict[Any, str] = {}    #: connection -> the network it counts against
        self.columns: dict[str, int] = {}
        self.told = False
        self.set(networks)

    def set(self, networks: Iterable[tuple[str, int]]) -> None:
        """Takes a new list of (network, limit); the connections held stay counted against
        the networks they were counted against, and the row is written in the new order."""
        self.networks = tuple(networks)
        self.acl.set([(net, k + 1) for k, (net, _) in enumerate(self.networks)])
        table = self.table
        self.columns = {net: k for k, (net, _) in enumerate(self.networks) if k < table.width}
        if len(self.networks) > table.width and not self.told:
            self.told = True
            log.warning("tcp-connection-limit: %d networks; past the first %d each worker "
                        "counts its own connections", len(self.networks), table.width)
        base = self.row * table.width
        table.clear(self.row)
        for net, k in self.columns.items():
            table.cells[base + k] = self.held.get(net, 0)

    def network(self, client) -> tuple[str, int] | None:
        """The (network, limit) whose network is the longest holding ``client`` (an
        address), or None."""
        if not self.networks or not client:
            return None
        k = self.acl.standing(client)
        return self.networks[k - 1] if k else None

    def full(self, network: tuple[str, int] | None) -> bool:
        """Whether ``network`` (as :meth:`network` gives it; None: none) holds its limit."""
        if network is None:
            return False
        k = self.columns.get(network[0])
        held = self.table.total(k) if k is not None else self.held.get(network[0], 0)
        return held >= network[1]

    def hold(self, conn, network: tuple[str, int] | None) -> None:
        """Counts ``conn`` against ``network`` (None: none)."""
        if network is not None:
            self._add(network[0], 1)
            self.network_of[conn] = network[0]

    def release(self, conn) -> None:
        """``conn`` no longer counts (nothing when it did not)."""
        net = self.network_of.pop(conn, None)
        if net is not None:
            self._add(net, -1)

    def _add(self, net: str, n: int) -> None:
        held = self.held.get(net, 0) + n
        if held > 0:
            self.held[net] = held
        else:
            self.held.pop(net, None)
        k = self.columns.get(net)
        if k is not None:
            self.table.cells[self.row * self.table.width + k] = max(held, 0)
