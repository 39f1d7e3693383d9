"""The daemon's logging controls: Unbound's verbosity scale and reopening the log file."""
from __future__ import annotations

import logging

#: Unbound's verbosity (0-5) as the root logger's level: 0 errors only, 1 operational
#: (warnings and errors too), 2 detailed, 3 and above every debugging message.
LEVELS = {0: logging.ERROR, 1: logging.INFO, 2: logging.INFO}


def set_verbosity(level: int) -> None:
    """Sets the root logger's level from Unbound's 0-5 scale (``verbosity``)."""
    if not 0 <= level <= 5:
        raise ValueError(f"verbosity {level} is not in 0..5")
    logging.getLogger().setLevel(LEVELS.get(level, logging.DEBUG))


def reopen() -> None:
    """Reopens the log file (after a rotation); nothing to do when logging to stderr."""
    return None
