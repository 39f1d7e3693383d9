"""corenet: an asyncio event loop on epoll, its transports, a framer and an HTTPS client.

The loop symbols load on first use, so ``import corenet.https`` or ``corenet.framing``
does not pay for the loop when another loop is in use.
"""
from __future__ import annotations

import sys as _sys

__version__ = "0.1.0"

_LAZY = {
    "Epoll": "corenet._epoll",
    "Loop": "corenet.loop",
    "new_event_loop": "corenet.loop",
    "EventLoopPolicy": "corenet.loop",
    "install": "corenet.loop",
    "run": "corenet.loop",
}

# No event-loop policy from Python 3.14, which deprecates asyncio's (corenet.loop says so
# when it is asked for).
__all__ = sorted(name for name in _LAZY
                 if name != "EventLoopPolicy" or _sys.version_info < (3, 14)) + ["__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'corenet' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
