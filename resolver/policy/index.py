"""What a cached answer's fast path needs to know of a response policy
(:class:`resolver.policy.rpz.Policy`) to be sure that no trigger can touch a query:
:class:`TriggerIndex`, made once per policy (``Policy.index``, joining the parts each zone
made of its own triggers when it was read or transferred, ``PolicyZone.index_parts``) and
read by the daemon's front door (``resolver.daemon.admission``) when its ``policy`` is set.

Kept apart from ``rpz`` (no dnspython here) so that the front door can name the type without
loading the policy zones' code into a daemon that has none configured.
"""
from __future__ import annotations


class TriggerIndex:
    """Every QNAME and response-IP trigger of every zone of a policy, in the forms the front
    door compares in C:

    - ``exact``: the names of the exact QNAME triggers (``name``), in lower-cased DNS wire
      form (uncompressed labels ending in the root's zero byte, ASCII letters lower-cased as
      the message cache keys them);
    - ``wild``: the names the wildcard QNAME triggers stand under (``*.name``: ``name``;
      such a trigger matches every name strictly below it, the root's every name but the
      root), in the same form;
    - ``networks``: the response-IP triggers' networks, each as its prefix length (one
      byte) then its address (4 bytes for IPv4, 16 for IPv6) with the bits past the prefix
      clear; ``lengths4`` and ``lengths6``: the prefix lengths present, per family;
    - ``decidable``: True when the query's name and the cached answer alone decide whether
      a trigger can touch a query: no zone has client-IP, NSDNAME or NSIP triggers (those
      need the client's address or the zone's name servers). When False every query goes
      the policy's own way.

    Every zone's triggers are in it whatever their action or the zone's override: a
    PASSTHRU rule or a DISABLED zone's match is still counted (and logged), so a name or
    address they hold is never decided without the policy. A query whose name is neither in
    ``exact`` nor below a name of ``wild`` matches no QNAME trigger of any zone; an address
    no network holds (:meth:`holds`) matches no response-IP trigger.
    """

    __slots__ = ("exact", "wild", "networks", "lengths4", "lengths6", "decidable")

    def __init__(self, exact=(), wild=(), networks=(), decidable: bool = True) -> None:
        self.exact: frozenset[bytes] = frozenset(exact)
        self.wild: frozenset[bytes] = frozenset(wild)
        self.networks: frozenset[bytes] = frozenset(networks)
        self.lengths4 = tuple(sorted({n[0] for n in self.networks if len(n) == 5}))
        self.lengths6 = tuple(sorted({n[0] for n in self.networks if len(n) == 17}))
        self.decidable = bool(decidable)

    @staticmethod
    def network(prefix: int, address: bytes) -> bytes:
        """A network's key in ``networks``: ``address`` (4 or 16 bytes) cut to ``prefix``
        bits, after the prefix length."""
        value = int.from_bytes(address, "big")
        bits = len(address) * 8
        value &= ((1 << prefix) - 1) << (bits - prefix) if prefix else 0
        return bytes([prefix]) + value.to_bytes(len(address), "big")

    def touches(self, wire: bytes) -> bool:
        """Whether a QNAME trigger can match the name ``wire`` (lower-cased wire form), as
        the front door decides it in C: the name itself in ``exact``, or any name above it
        (its parent up to the root) in ``wild``."""
        if wire in self.exact:
            return True
        pos = wire[0] + 1 if wire else 0
        while pos < len(wire):
            if wire[pos:] in self.wild:
                return True
            pos += wire[pos] + 1
        return False

    def holds(self, address: bytes) -> bool:
        """Whether a response-IP trigger's network holds ``address`` (4 or 16 bytes), as
        the front door decides it in C."""
        lengths = self.lengths4 if len(address) == 4 else self.lengths6
        return any(self.network(n, address) in self.networks for n in lengths)

    def __repr__(self) -> str:
        return (f"TriggerIndex({len(self.exact)} exact, {len(self.wild)} wild, "
                f"{len(self.networks)} networks, decidable={self.decidable})")
