"""The bytes the resolver's tables outside its caches hold, as ``stats`` prints them under
Unbound's ``mem.mod.iterator`` and ``mem.mod.validator`` (the caches count their own, the
figure ``cache-size`` bounds: ``resolver.cache.store``).

A figure is the size (``sys.getsizeof``) of every object a table reaches through
``gc.get_referents``, each counted once. Types, modules, functions and code are shared by
everything and owned by no table: the walk does not enter them. A container of more than
``SAMPLE`` items is sized from ``SAMPLE`` of them spread over it, scaled to its length, so
that a figure costs the same however full the tables are. What Python cannot see is not
counted: memory a C library keeps for an object (a public key loaded into OpenSSL), and
what an extension type holds in fields it does not show the collector, unless its
``__sizeof__`` counts them (``resolver.dnssec.sig.Key`` does).
"""
from __future__ import annotations

import gc
import itertools
import sys
import types
from collections import deque

#: Items of a container that are walked; a longer one is sized from this many and scaled.
SAMPLE = 32
#: How deep the walk goes from a table; below, an object counts its own size alone.
DEPTH = 16
#: What no table owns.
SHARED = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
          types.MethodType, types.CodeType, types.FrameType)
_SAMPLED = (dict, list, tuple, set, frozenset, deque)


def held(*tables) -> int:
    """The bytes ``tables`` hold: their own size and that of everything they reach (an
    object two of them reach counts once)."""
    seen: set[int] = set()
    return sum(_held(t, seen, 0) for t in tables)


def _held(obj, seen: set[int], depth: int) -> int:
    if obj is None or isinstance(obj, SHARED) or id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if depth >= DEPTH:
        return size
    depth += 1
    if isinstance(obj, _SAMPLED) and len(obj) > SAMPLE:
        n = len(obj)
        step = n // SAMPLE
        if isinstance(obj, dict):
            picked = itertools.islice(obj.items(), 0, step * SAMPLE, step)
            part = sum(_held(k, seen, depth) + _held(v, seen, depth) for k, v in picked)
        else:
            picked = itertools.islice(obj, 0, step * SAMPLE, step)
            part = sum(_held(item, seen, depth) for item in picked)
        return size + part * n // SAMPLE
    return size + sum(_held(r, seen, depth) for r in gc.get_referents(obj))


def iterator_bytes(core) -> int:
    """What the iterator keeps between resolutions (``core``: a
    ``resolver.state.ResolverCore``): the root hints and their index, the forwarders, the
    private and never-queried networks, and the infra cache (the servers' measured round
    trips and their zones' rates)."""
    return held(core.hints, core.hint_index, core.forward, core.private, core.unqueried,
                core.cache.infra)


def validator_bytes(validator) -> int:
    """What the validator keeps (``validator``: a ``resolver.dnssec.validator.Validator``,
    or None: 0): its trust anchors, each zone's verdict and keys, the keys parsed, the
    bogus answers and the proven non-cuts it remembers, and the aggressive cache's NSEC and
    NSEC3 ranges and wildcards (Unbound's key cache and negative cache, which its
    ``mem.mod.validator`` counts)."""
    if validator is None:
        return 0
    return held(validator.anchors, validator.zones, validator.keys, validator.bogus,
                validator.no_cuts, validator.nsec_cache)
