"""corenet: an asyncio event loop on epoll, its transports, a framer and an HTTPS client.

The loop symbols load on first use, so ``import corenet.https`` or ``corenet.framing``
does not pay for the loop when another loop is in use.
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "Epoll": "corenet._epoll",
    "Loop": "corenet.loop",
    "new_event_loop": "corenet.loop",
    "EventLoopPolicy": "corenet.loop",
    "install": "corenet.loop",
    "run": "corenet.loop",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'corenet' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
