"""corenet: an asyncio event loop on epoll, its transports, a framer and an HTTPS client.

The loop symbols load on first use, so ``import corenet.https`` or ``corenet.framing``
does not pay for the loop when another loop is in use. Type checkers see them imported.
"""
from __future__ import annotations

import sys as _sys
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from corenet._epoll import Epoll as Epoll
    from corenet.loop import Loop as Loop, install as install, new_event_loop as new_event_loop
    from corenet.loop import run as run

    import sys

    if sys.version_info < (3, 14):
        from corenet.loop import EventLoopPolicy as EventLoopPolicy
else:
    from corenet.lazy import lazy_attributes

    __getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals(), __all__)
