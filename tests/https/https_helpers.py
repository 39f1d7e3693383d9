"""Small helpers shared by the HTTPS tests."""
from __future__ import annotations

import os


def open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}
