"""A recursive, caching DNS resolver that runs on the loop of the process it is in.

    r = resolver.Resolver()                       # real root hints; or a path / [(name, addr)]
    answer = await r.resolve("example.com", "A")  # like dns.asyncresolver.Resolver.resolve
    wire = await r.resolve_message(query_wire)    # full recursive-server response, for the daemon
    resolver.install(loop, r)                     # loop.getaddrinfo now resolves through r
    resolver.Resolver(forward=["192.0.2.53"])     # a stub asking other resolvers instead
    await resolver.resolve("example.com", "MX")   # dns.asyncresolver's functions, on a default
    resolver.default_resolver = r                 # ... which this chooses
    from resolver import sync                     # dns.resolver's sync API (resolver.sync)

The names load on first use, so that a command of the package (``corenet-resolver query``,
the control commands) does not pay for the resolver and dnspython's resolver it does not
use. Type checkers see them imported.
"""
from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

from corenet import __version__

_LAZY = {
    # dns.asyncresolver's names for dnspython's exceptions, as it has them (``X as X``)
    **dict.fromkeys(("NXDOMAIN", "NoAnswer", "NoRootSOA", "NotAbsolute"), "dns.resolver"),
    **dict.fromkeys(("Answer", "Resolver", "Stats"), "resolver.api"),
    **dict.fromkeys(("canonical_name", "get_default_resolver", "make_resolver_at",
                     "reset_default_resolver", "resolve", "resolve_address", "resolve_at",
                     "resolve_name", "zone_for_name"), "resolver.functions"),
    "install": "resolver.getaddrinfo",
    "Limits": "resolver.limits",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:
    from dns.resolver import (NXDOMAIN as NXDOMAIN, NoAnswer as NoAnswer,
                              NoRootSOA as NoRootSOA, NotAbsolute as NotAbsolute)

    from resolver.api import Answer as Answer, Resolver as Resolver, Stats as Stats
    from resolver.functions import (canonical_name as canonical_name,
                                    get_default_resolver as get_default_resolver,
                                    make_resolver_at as make_resolver_at,
                                    reset_default_resolver as reset_default_resolver,
                                    resolve as resolve, resolve_address as resolve_address,
                                    resolve_at as resolve_at, resolve_name as resolve_name,
                                    zone_for_name as zone_for_name)
    from resolver.getaddrinfo import install as install
    from resolver.limits import Limits as Limits
else:
    from corenet.lazy import lazy_attributes

    __getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


class _Package(types.ModuleType):
    """The package, with ``default_resolver`` read from and assigned to
    ``resolver.functions`` (as ``dns.asyncresolver.default_resolver``)."""

    @property
    def default_resolver(self):
        from resolver import functions
        return functions.default_resolver

    @default_resolver.setter
    def default_resolver(self, value) -> None:
        from resolver import functions
        functions.default_resolver = value


sys.modules[__name__].__class__ = _Package
