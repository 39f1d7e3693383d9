"""What can go wrong asking an authority, as exceptions the resolution turns into events."""
from __future__ import annotations

import errno


class UpstreamTimeout(Exception):
    """No acceptable reply within the timeout."""


class UpstreamFailure(Exception):
    """The server could not be asked (refused, reset, oversized or broken TCP reply...)."""


class UpstreamUnreachable(UpstreamFailure):
    """This host has no way to the server (no route, no such address family): the kernel
    refused the send at once, so it cost no time, and retrying soon is pointless."""


#: What the kernel says, at once, when a host cannot reach an address at all (typically an
#: IPv6 address on a host without IPv6 connectivity).
UNREACHABLE_ERRNOS = frozenset((errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL,
                                errno.EAFNOSUPPORT))


def failure(addr: str, exc: OSError) -> UpstreamFailure:
    """The UpstreamFailure (an UpstreamUnreachable if it is one) for ``exc`` asking ``addr``."""
    kind = UpstreamUnreachable if exc.errno in UNREACHABLE_ERRNOS else UpstreamFailure
    return kind(f"{addr}: {exc}")
