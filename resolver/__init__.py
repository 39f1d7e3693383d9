"""A recursive, caching DNS resolver that runs on the loop of the process it is in.

    r = resolver.Resolver()                       # real root hints; or a path / [(name, addr)]
    answer = await r.resolve("example.com", "A")  # like dns.asyncresolver.Resolver.resolve
    wire = await r.resolve_message(query_wire)    # full recursive-server response, for the daemon
    resolver.install(loop, r)                     # loop.getaddrinfo now resolves through r
    resolver.Resolver(forward=["192.0.2.53"])     # a stub asking other resolvers instead
    await resolver.resolve("example.com", "MX")   # dns.asyncresolver's functions, on a default
    resolver.default_resolver = r                 # ... which this chooses
    from resolver import sync                     # dns.resolver's sync API (resolver.sync)
"""
import sys
import types

# dns.asyncresolver's names for dnspython's exceptions, as it has them (``X as X``)
from dns.resolver import (NXDOMAIN as NXDOMAIN, NoAnswer as NoAnswer, NoRootSOA as NoRootSOA,
                          NotAbsolute as NotAbsolute)

from corenet import __version__
from resolver.api import Answer, Resolver, Stats
from resolver.functions import (canonical_name, get_default_resolver, make_resolver_at,
                                reset_default_resolver, resolve, resolve_address, resolve_at,
                                resolve_name, zone_for_name)
from resolver.getaddrinfo import install
from resolver.limits import Limits

__all__ = ["Answer", "Limits", "NXDOMAIN", "NoAnswer", "NoRootSOA", "NotAbsolute", "Resolver",
           "Stats", "__version__", "canonical_name",
           "get_default_resolver", "install", "make_resolver_at", "reset_default_resolver",
           "resolve", "resolve_address", "resolve_at", "resolve_name", "zone_for_name"]


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
