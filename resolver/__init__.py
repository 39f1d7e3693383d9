"""A recursive, caching DNS resolver that runs on the loop of the process it is in.

    r = resolver.Resolver()                       # real root hints; or a path / [(name, addr)]
    answer = await r.resolve("example.com", "A")  # like dns.asyncresolver.Resolver.resolve
    wire = await r.resolve_message(query_wire)    # full recursive-server response, for the daemon
    resolver.install(loop, r)                     # loop.getaddrinfo now resolves through r
    resolver.Resolver(forward=["192.0.2.53"])     # a stub asking other resolvers instead
    await resolver.resolve("example.com", "MX")   # dns.asyncresolver's functions, on a default
"""
from corenet import __version__
from resolver.api import Answer, Resolver, Stats
from resolver.functions import (canonical_name, get_default_resolver, make_resolver_at,
                                reset_default_resolver, resolve, resolve_address, resolve_at,
                                resolve_name, zone_for_name)
from resolver.getaddrinfo import install
from resolver.limits import Limits

__all__ = ["Answer", "Limits", "Resolver", "Stats", "__version__", "canonical_name",
           "get_default_resolver", "install", "make_resolver_at", "reset_default_resolver",
           "resolve", "resolve_address", "resolve_at", "resolve_name", "zone_for_name"]
