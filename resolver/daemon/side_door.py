"""The connections a side door of the daemon (the control channel, the metrics endpoint)
serves at once. Past its limit a new connection is closed at once, so a peer that opens
connections and sends nothing cannot take the descriptors the resolver needs; the log says
so once each time the door fills up."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable


class ConnectionCap:
    """At most ``most`` connections of the door named ``door`` at once (``setting``: the
    limit's name, for the log, which is the door's: ``resolver.daemon.DOOR``)."""

    def __init__(self, door: str, setting: str, most: int) -> None:
        self.door, self.setting, self.most = door, setting, most
        self.log = logging.getLogger(f"resolver.daemon.{door}")
        self.open = 0               # connections being served
        self.turned_away = 0        # connections closed at once: open was at the limit

    async def serve(self, writer: asyncio.StreamWriter,
                    serve: Callable[[], Awaitable[None]]) -> None:
        """Awaits ``serve()`` for the connection of ``writer`` and closes it, or closes it
        at once when ``most`` are open."""
        if self.open >= self.most:
            if not self.turned_away:
                self.log.warning("%s: %d connections at once (limits.%s); new ones are "
                                 "closed", self.door, self.open, self.setting)
            self.turned_away += 1
            writer.transport.abort()
            return
        self.open += 1
        try:
            await serve()
        finally:
            self.open -= 1
            if self.open == 0:
                self.turned_away = 0
            writer.close()
