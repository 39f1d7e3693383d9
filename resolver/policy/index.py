"""What the front door needs to know of a response policy
(:class:`resolver.policy.rpz.Policy`) to be sure that no trigger can touch a cached answer:
:class:`TriggerIndex`, made once per policy (``Policy.index``, joining the parts each zone
made of its own triggers when it was read or transferred, ``PolicyZone.index_parts``) and
read by the daemon's front door (``resolver.daemon.admission``) when its ``policy`` is set.

Kept apart from ``rpz`` (no dnspython here) so that the front door can name the type without
loading the policy zones' code into a daemon that has none configured.
"""
from __future__ import annotations


def _lengths(networks: frozenset, size: int) -> tuple:
    """The prefix lengths present among ``networks`` of addresses of ``size`` bytes."""
    return tuple(sorted({n[0] for n in networks if len(n) == size + 1}))


class TriggerIndex:
    """Every trigger of every zone of a policy, in the forms the front door compares:

    - ``exact``: the names of the exact QNAME triggers (``name``), in lower-cased DNS wire
      form (uncompressed labels ending in the root's zero byte, ASCII letters lower-cased as
      the message cache keys them);
    - ``wild``: the names the wildcard QNAME triggers stand under (``*.name``: ``name``;
      such a trigger matches every name strictly below it, the root's every name but the
      root), in the same form;
    - ``networks``: the response-IP triggers' networks, each as its prefix length (one
      byte) then its address (4 bytes for IPv4, 16 for IPv6) with the bits past the prefix
      clear; ``lengths4`` and ``lengths6``: the prefix lengths present, per family;
    - ``clients``: the client-IP triggers' networks in the same form, ``clients4`` and
      ``clients6`` their prefix lengths (the door looks up each query's client in C);
    - ``ns_exact`` and ``ns_wild``: the NSDNAME triggers' names as ``exact`` and ``wild``
      hold the QNAME triggers', and ``ns_networks`` the NSIP triggers' networks (the door
      checks a cached entry's name servers once per entry, :meth:`ns_touches`).

    Every zone's triggers are in it whatever their action or the zone's override: a
    PASSTHRU rule or a DISABLED zone's match is still counted (and logged), so a name or
    address they hold is never decided without the policy. A query whose name is neither in
    ``exact`` nor below a name of ``wild`` matches no QNAME trigger of any zone; an address
    no network holds (:meth:`holds`) matches no response-IP trigger, a client no network of
    ``clients`` holds (:meth:`holds_client`) no client-IP trigger.
    """

    __slots__ = ("exact", "wild", "networks", "lengths4", "lengths6", "clients", "clients4",
                 "clients6", "ns_exact", "ns_wild", "ns_networks")

    def __init__(self, exact=(), wild=(), networks=(), clients=(), ns_exact=(), ns_wild=(),
                 ns_networks=()) -> None:
        self.exact: frozenset[bytes] = frozenset(exact)
        self.wild: frozenset[bytes] = frozenset(wild)
        self.networks: frozenset[bytes] = frozenset(networks)
        self.lengths4 = _lengths(self.networks, 4)
        self.lengths6 = _lengths(self.networks, 16)
        self.clients: frozenset[bytes] = frozenset(clients)
        self.clients4 = _lengths(self.clients, 4)
        self.clients6 = _lengths(self.clients, 16)
        self.ns_exact: frozenset[bytes] = frozenset(ns_exact)
        self.ns_wild: frozenset[bytes] = frozenset(ns_wild)
        self.ns_networks: frozenset[bytes] = frozenset(ns_networks)

    @staticmethod
    def network(prefix: int, address: bytes) -> bytes:
        """A network's key in ``networks`` (and ``clients``, ``ns_networks``): ``address``
        (4 or 16 bytes) cut to ``prefix`` bits, after the prefix length."""
        value = int.from_bytes(address, "big")
        bits = len(address) * 8
        value &= ((1 << prefix) - 1) << (bits - prefix) if prefix else 0
        return bytes([prefix]) + value.to_bytes(len(address), "big")

    @property
    def has_ns(self) -> bool:
        """Whether a zone has NSDNAME or NSIP triggers."""
        return bool(self.ns_exact or self.ns_wild or self.ns_networks)

    @staticmethod
    def _named(wire: bytes, exact: frozenset, wild: frozenset) -> bool:
        """``wire`` in ``exact``, or any name above it (its parent up to the root) in
        ``wild``."""
        if wire in exact:
            return True
        if not wild:
            return False
        pos = wire[0] + 1 if wire else 0
        while pos < len(wire):
            if wire[pos:] in wild:
                return True
            pos += wire[pos] + 1
        return False

    def _held(self, networks: frozenset, address: bytes) -> bool:
        """Whether a network of ``networks`` holds ``address`` (4 or 16 bytes)."""
        lengths = _lengths(networks, len(address))
        return any(self.network(n, address) in networks for n in lengths)

    def touches(self, wire: bytes) -> bool:
        """Whether a QNAME trigger can match the name ``wire`` (lower-cased wire form), as
        the front door decides it in C: the name itself in ``exact``, or any name above it
        (its parent up to the root) in ``wild``."""
        return self._named(wire, self.exact, self.wild)

    def holds(self, address: bytes) -> bool:
        """Whether a response-IP trigger's network holds ``address`` (4 or 16 bytes), as
        the front door decides it in C."""
        lengths = self.lengths4 if len(address) == 4 else self.lengths6
        return any(self.network(n, address) in self.networks for n in lengths)

    def holds_client(self, address: bytes) -> bool:
        """Whether a client-IP trigger's network holds the client ``address`` (4 or 16
        bytes), as the front door decides it in C."""
        lengths = self.clients4 if len(address) == 4 else self.clients6
        return any(self.network(n, address) in self.clients for n in lengths)

    def ns_touches(self, names, addresses) -> bool:
        """Whether an NSDNAME trigger can match one of the name servers ``names``
        (lower-cased wire form) or an NSIP trigger's network holds one of their
        ``addresses`` (4 or 16 bytes each)."""
        if self.ns_exact or self.ns_wild:
            if any(self._named(name, self.ns_exact, self.ns_wild) for name in names):
                return True
        return bool(self.ns_networks) and any(self._held(self.ns_networks, a)
                                              for a in addresses)

    def __repr__(self) -> str:
        return (f"TriggerIndex({len(self.exact)} exact, {len(self.wild)} wild, "
                f"{len(self.networks)} networks, {len(self.clients)} clients, "
                f"{len(self.ns_exact) + len(self.ns_wild)} NS names, "
                f"{len(self.ns_networks)} NS networks)")
