"""Loop factories shared by every test area (import as ``from looptools import ...``)."""
from __future__ import annotations

import asyncio
import importlib.util
import os

from ci_policy import unavailable

LOOP_KINDS = ["asyncio", "corenet-edge", "corenet-level"]
# For behaviour where Python 3.11's own asyncio is the one at fault (fixed upstream later):
# parametrize ``loop_kind`` with these to leave the broken oracle out.
CORENET_KINDS = [k for k in LOOP_KINDS if k.startswith("corenet")]


def corenet_built() -> bool:
    return importlib.util.find_spec("corenet._loop") is not None


def make_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "asyncio":
        return asyncio.SelectorEventLoop()
    if not corenet_built():
        unavailable("the corenet._loop extension is not built "
                    "(python setup.py build_ext --inplace, or scripts/setup.sh)")
    import corenet

    return corenet.new_event_loop(trigger=kind.split("-", 1)[1])


def loop_factory(kind: str):
    return lambda: make_loop(kind)


def open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}
