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


class CapsMismatch(UpstreamFailure):
    """The reply carries the query's ID and question, but the question's name with its
    letters in another case than the query's random one (``use-caps-for-id``): a server
    that does not echo the case, or a forgery that did not guess it."""


class NoDescriptors(Exception):
    """This process is out of file descriptors (EMFILE, ENFILE): load on our side, not a
    fault of the server, which is not penalised for it."""


class SocketCap(NoDescriptors):
    """The upstream UDP sockets in flight are at their cap (``Limits.max_upstream_sockets``):
    load on our side, shed as running out of descriptors is, no server penalised."""


#: What the kernel says when the process or the system has no descriptor left.
OUT_OF_DESCRIPTORS = frozenset((errno.EMFILE, errno.ENFILE))

#: What the kernel says, at once, when a host cannot reach an address at all (typically an
#: IPv6 address on a host without IPv6 connectivity).
UNREACHABLE_ERRNOS = frozenset((errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL,
                                errno.EAFNOSUPPORT))


def failure(addr: str, exc: OSError) -> Exception:
    """The UpstreamFailure (an UpstreamUnreachable if it is one) for ``exc`` asking ``addr``,
    or NoDescriptors when the process ran out of descriptors."""
    if exc.errno in OUT_OF_DESCRIPTORS:
        return NoDescriptors(f"asking {addr}: {exc}")
    kind = UpstreamUnreachable if exc.errno in UNREACHABLE_ERRNOS else UpstreamFailure
    return kind(f"{addr}: {exc}")
