"""Client addresses whose connections keep being ended for abuse, sans-IO.

A listener's defences (an HPACK budget spent, a protocol error's GOAWAY, a stream-reset
flood, output never drained) each end one connection; a client that reconnects after each
GOAWAY gets a new connection, a new handshake and a fresh budget every time. ``Throttle``
counts such endings (*strikes*) per client address: more than ``strikes`` of them within
``window`` seconds (counted from the first) and the address is refused for ``penalty``
seconds, which the listener applies at the accept, before the handshake costs anything.

The table is bounded: at most ``capacity`` addresses, in the order they were last struck;
when it is full, the address struck least recently is forgotten to make room, a penalised
one included (the penalised are refused at the accept, so they are struck no more and
drift to the front). A flood from more addresses than the table holds is beyond what a
per-address penalty can stop; the table must only not grow with it. An entry whose window
and penalty are both over is dropped when its address is next seen.

Times are the caller's (``time.monotonic()`` in the daemon, a fake clock in tests).
"""
from __future__ import annotations

from typing import Hashable


class _Entry:
    __slots__ = ("strikes", "since", "until")

    def __init__(self, since: float) -> None:
        self.strikes = 0
        self.since = since           # the first strike of the current window
        self.until = 0.0             # refused until then


class Throttle:
    """The strikes and penalties of client addresses (see the module's docstring)."""

    def __init__(self, strikes: int, window: float, penalty: float, capacity: int) -> None:
        if strikes < 1 or window <= 0 or penalty <= 0 or capacity < 1:
            raise ValueError("a throttle needs strikes >= 1, and a window, a penalty and "
                             "a capacity above 0")
        self.strikes = strikes
        self.window = window
        self.penalty = penalty
        self.capacity = capacity
        self._table: dict[Hashable, _Entry] = {}

    def __len__(self) -> int:
        return len(self._table)

    def strike(self, client: Hashable, now: float) -> bool:
        """One connection of ``client`` ended for abuse at ``now``; True when this strike
        starts its penalty."""
        table = self._table
        entry = table.pop(client, None)          # re-inserted last: struck most recently
        if entry is None or now - entry.since >= self.window and now >= entry.until:
            entry = _Entry(now)
        elif now - entry.since >= self.window:  # a new window while a penalty runs
            entry.strikes, entry.since = 0, now
        while len(table) >= self.capacity:
            del table[next(iter(table))]
        table[client] = entry
        entry.strikes += 1
        if entry.strikes > self.strikes and now >= entry.until:
            entry.until = now + self.penalty
            return True
        return False

    def refused(self, client: Hashable, now: float) -> bool:
        """Whether a new connection of ``client`` is refused at ``now``."""
        entry = self._table.get(client)
        if entry is None:
            return False
        if now < entry.until:
            return True
        if now - entry.since >= self.window:
            del self._table[client]              # nothing left to remember
        return False

    def penalised(self, now: float) -> int:
        """Addresses under a penalty at ``now``."""
        return sum(1 for e in self._table.values() if now < e.until)
