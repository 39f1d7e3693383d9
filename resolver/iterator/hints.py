"""Root hints as the iterator reads them (``resolver.hints`` reads the file)."""
from __future__ import annotations


class Hints:
    """Root hints indexed for the iterator: built once per resolver and shared by its
    iterators, rather than re-indexed for every client query.

    With ``prime``, the iterators prime the root (``Iterator._prime``) before they rely on
    the hints, and share the priming state here: ``prime_at`` is the clock time before which
    none starts a priming exchange (one is in flight, or the last one failed)."""

    __slots__ = ("names", "addrs", "ipv6", "prime", "prime_at")

    def __init__(self, hints: list[tuple[bytes, str]], ipv6: bool = False,
                 prime: bool = False) -> None:
        self.ipv6 = ipv6
        self.prime = prime
        self.prime_at = 0.0
        self.names: list[bytes] = []
        self.addrs: dict[bytes, list[str]] = {}
        for name, addr in hints:
            if ":" in addr and not ipv6:
                continue
            key = name.lower()
            if key not in self.addrs:
                self.names.append(name)
                self.addrs[key] = []
            self.addrs[key].append(addr)
