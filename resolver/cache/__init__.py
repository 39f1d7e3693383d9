"""The resolver's memory: whole answers in wire form, rrsets ranked by trust, negative answers,
per-server facts and remembered failures.

Every time is passed in (``now``), so the sans-IO iterator and its tests run on a fake clock.
The message and rrset stores are LRU-bounded in bytes; the server table is bounded in entries.
"""
from __future__ import annotations

from resolver.cache.infra import InfraCache, ServerInfo  # noqa: F401 (part of this module's API)
# The classes are compiled (resolver/cache/store.pyx): the miss path reads their fields as C.
from resolver.cache.store import (  # noqa: F401 (this module's API)
    ByteLRU, Cache, MessageCache, RRsetCache, RRsetEntry)
# The trust ranks of cached data (RFC 2181 5.4.1), low to high, and the NXDOMAIN key type.
from resolver.cache.ranks import (  # noqa: F401 (this module's API)
    ADDITIONAL, AUTH_ANSWER, AUTH_AUTHORITY, GLUE, HINT, NONAUTH_ANSWER, NXDOMAIN_TYPE,
    REFERRAL, VALIDATED)

