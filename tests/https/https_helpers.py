"""Small helpers shared by the HTTPS tests."""
from __future__ import annotations

import asyncio
import os


def open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


def server_holds(port: int) -> int:
    """Connections to the server on 127.0.0.1:`port` whose server side is still
    ESTABLISHED, i.e. it has had no FIN from the client yet (from /proc/net/tcp)."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state = fields[1], fields[3]
            if int(local.split(":")[1], 16) == port and state == "01":
                n += 1
    return n


async def until(pred, limit: float = 3.0) -> bool:
    """Poll `pred` every 50 ms, for at most `limit` s; its last answer."""
    for _ in range(int(limit / 0.05)):
        if pred():
            return True
        await asyncio.sleep(0.05)
    return pred()

