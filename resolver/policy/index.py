"""What a cached answer's fast path needs to know of a response policy
(:class:`resolver.policy.rpz.Policy`) to be sure that no trigger can touch a query:
:class:`TriggerIndex`, made once per policy (``Policy.index``, when the policy is built off
the loop at a load, reload or transfer) and read by the daemon's front door
(``resolver.daemon.admission``) when its ``policy`` is set.

Kept apart from ``rpz`` (no dnspython here) so that the front door can name the type without
loading the policy zones' code into a daemon that has none configured.
"""
from __future__ import annotations


class TriggerIndex:
    """Every QNAME trigger of every zone of a policy, as names in lower-cased DNS wire form
    (uncompressed labels ending in the root's zero byte, ASCII letters lower-cased as the
    message cache keys them):

    - ``exact``: the names of the exact QNAME triggers (``name``);
    - ``wild``: the names the wildcard QNAME triggers stand under (``*.name``: ``name``;
      such a trigger matches every name strictly below it, the root's matching every name
      but the root);
    - ``by_name``: True when a query's name alone decides whether a trigger can touch it:
      no zone has client-IP, response-IP, NSDNAME or NSIP triggers (those need the client's
      address, the answer's addresses or the zone's name servers). When False every query
      goes the policy's own way.

    Every zone's triggers are in it whatever their action or the zone's override: a
    PASSTHRU rule or a DISABLED zone's match is still counted (and logged), so a name they
    hold is never decided without the policy. A query whose name is neither in ``exact`` nor
    below a name of ``wild`` matches no QNAME trigger of any zone.
    """

    __slots__ = ("exact", "wild", "by_name")

    def __init__(self, exact=(), wild=(), by_name: bool = True) -> None:
        self.exact: frozenset[bytes] = frozenset(exact)
        self.wild: frozenset[bytes] = frozenset(wild)
        self.by_name = bool(by_name)

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

    def __repr__(self) -> str:
        return (f"TriggerIndex({len(self.exact)} exact, {len(self.wild)} wild, "
                f"by_name={self.by_name})")
