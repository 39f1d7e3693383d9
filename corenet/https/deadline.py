"""Per-request time budget: each wait gets min(stage timeout, what is left of the total)."""
from __future__ import annotations

import asyncio

from .timeout import Timeout


class Deadline:
    __slots__ = ("timeout", "_end", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: Timeout) -> None:
        self.loop = loop  # the loop the request runs on
        self.timeout = timeout
        self._end = None if timeout.total is None else loop.time() + timeout.total

    def budget(self, stage: float | None) -> tuple[float | None, bool]:
        """(seconds to wait, whether the total deadline is the binding limit)."""
        end = self._end
        if end is None:
            return stage, False
        left = end - self.loop.time()
        if left < 0:
            left = 0.0
        if stage is None or left < stage:
            return left, True
        return stage, False

    def message(self, what: str, stage: float | None, by_total: bool) -> str:
        """Built only when a timeout fires: no string formatting on the hot path."""
        if by_total:
            return f"{what}: total timeout of {self.timeout.total:g} s exceeded"
        return f"{what}: no progress within {stage:g} s"
