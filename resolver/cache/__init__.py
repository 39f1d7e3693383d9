"""The resolver's memory: whole answers in wire form, rrsets ranked by trust, negative answers,
per-server facts and remembered failures.

Every time is passed in (``now``), so the sans-IO iterator and its tests run on a fake clock.
The message and rrset stores are LRU-bounded in bytes; the server table is bounded in entries.
"""
from __future__ import annotations

from resolver.cache.infra import InfraCache, ServerInfo  # noqa: F401 (part of this module's API)
# The classes are compiled (resolver/cache/store.pyx): the miss path reads their fields as C.
from resolver.cache.store import (  # noqa: F401 (this module's API)
    NXDOMAIN_TYPE, ByteLRU, Cache, MessageCache, RRsetCache, RRsetEntry)

# RFC 2181 5.4.1 trust ranks, low to high. Data replaces cached data only at the same or a
# higher rank (or when the cached data has expired), so glue never overrides an answer.
HINT = 0
ADDITIONAL = 1          # additional section of an answer (not glue)
GLUE = 2                # additional section of a referral
REFERRAL = 3            # NS set in a referral's authority section (the parent's copy)
NONAUTH_ANSWER = 4      # answer section without AA
AUTH_AUTHORITY = 5      # authority section of an authoritative answer
AUTH_ANSWER = 6         # answer section with AA
VALIDATED = 7           # DNSSEC-secure (set by resolver.dnssec's validator)
