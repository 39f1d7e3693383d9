"""An operator's functions over a Resolver (``resolver.operations``), on a library
Resolver that asks no server: its cache filled from a dump, its stub zone's servers seeded.
The daemon's commands that call them are tested in ``test_control_commands.py``."""
from __future__ import annotations

import base64
import inspect
import re

import dns.message
import dns.name
import dns.rrset
import pytest

import resolver
from resolver import operations
from resolver.cache.dump import DumpError
from resolver.daemon.zone_tables import stub_zone
from resolver.zones import Zones

NS = 2
NAMES = ("www.example.", "deep.www.example.", "www.other.")


def _dump(names) -> str:
    """A cache dump holding an A answer (TTL 300) for each of ``names``."""
    lines = []
    for name in names:
        r = dns.message.make_response(dns.message.make_query(name, "A"))
        r.answer.append(dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.1"))
        lines.append(f"msg {name} A IN 3 300 insecure NOERROR "
                     f"{base64.b64encode(r.to_wire()).decode()}")
    return "\n".join(lines)


def _cached(r) -> set[str]:
    return {line.split()[1] for line in operations.dump_cache(r) if line.startswith("msg ")}


def _stub_seeded(r) -> bool:
    key = (dns.name.from_text("lab.").to_wire(), NS, 1)
    return r.cache.rrsets.lru.peek(key) is not None


@pytest.fixture
def r():
    zones = Zones(stub=[stub_zone({"name": "lab.", "stub-addr": ["127.0.0.9"]})])
    r = resolver.Resolver(root_hints=[("a.root.", "127.0.0.1")], zones=zones)
    assert operations.load_cache(r, _dump(NAMES)) == len(NAMES)
    return r


def test_flush_zone_forgets_at_and_below_the_name_only(r):
    operations.flush_zone(r, "www.example.")
    assert _cached(r) == {"www.other."}
    assert _stub_seeded(r)


def test_flush_of_one_name_keeps_the_names_below_it(r):
    operations.flush(r, "www.example.")
    assert _cached(r) == {"deep.www.example.", "www.other."}


def test_flush_of_everything_keeps_the_stub_zones_servers(r):
    operations.flush(r)
    assert _cached(r) == set() and _stub_seeded(r)


def test_assigning_no_cache_flushes_as_operations_flush(r):
    r.cache = None
    assert _cached(r) == set() and _stub_seeded(r)


def test_flush_type_forgets_that_type_only(r):
    operations.flush_type(r, "www.other.", "AAAA")
    assert _cached(r) == set(NAMES)
    operations.flush_type(r, "www.other.", "A")
    assert _cached(r) == {"www.example.", "deep.www.example."}


def test_a_bad_dump_line_loads_nothing(r):
    operations.flush(r)
    with pytest.raises(DumpError, match="line 2"):
        operations.load_cache(r, _dump(["a.example."]) + "\nmsg broken")
    assert _cached(r) == set()


def test_servers_for_names_the_stub_zone_else_the_root_hints(r):
    zone, servers = operations.servers_for(r, "host.lab.")
    assert zone == "lab. (stub)" and [s["address"] for s in servers] == ["127.0.0.9"]
    zone, servers = operations.servers_for(r, "www.example.")
    assert zone == ". (root hints)" and [s["address"] for s in servers] == ["127.0.0.1"]
    assert not servers[0]["known"]


def test_the_resolver_class_holds_no_operator_function():
    moved = [name for name, f in vars(operations).items()
             if inspect.isfunction(f) and f.__module__ == operations.__name__
             and not name.startswith("_")]
    assert "flush" in moved and "servers_for" in moved
    assert [name for name in moved if hasattr(resolver.Resolver, name)] == []


def test_delegations_pass_over_a_cut_without_addresses_for_its_parent(r):
    """A cached cut whose servers are all named inside it and have no address cached is
    Unbound's "useless" delegation: ``lookup`` shows it, then goes up to its parent's."""
    from types import SimpleNamespace

    import dns.rdata

    from resolver.cache import GLUE, REFERRAL
    from resolver.daemon.operations import WorkerControl, lookup

    def record(owner: str, rdtype: str, text: str) -> tuple:
        rd = dns.rdata.from_text("IN", rdtype, text)
        return dns.name.from_text(owner).to_wire(), int(rd.rdtype), 1, 300, rd.to_wire()

    now = r.clock()
    r.cache.rrsets.store_records([record("sub.example.", "NS", "ns.sub.example.")],
                                 REFERRAL, now)
    r.cache.rrsets.store_records([record("example.", "NS", "ns.example.")], REFERRAL, now)
    r.cache.rrsets.store_records([record("ns.example.", "A", "192.0.2.53")], GLUE, now)
    steps = operations.delegations(r, "www.sub.example.")
    assert [(s["zone"], s["useless"]) for s in steps] == \
        [("sub.example.", True), ("example.", False)]
    assert [s["ip"] for s in steps[1]["servers"]] == ["192.0.2.53"]
    assert [(x["count"], x["trust"]) for x in steps[1]["rrsets"]] == [(1, 2), (1, 1)]
    ctl = WorkerControl(SimpleNamespace(resolver=r), reload=None, stop=None)
    text = lookup(ctl, {"cmd": "lookup", "args": ["www.sub.example."]})["text"]
    ttl = re.compile(r"^;rrset \d+|(?<=\t)\d+(?=\tIN\t)")      # 300 or a second less
    assert [ttl.sub("TTL", line) for line in text.splitlines()[5:]] == [
        "cache delegation was useless (no IP addresses)", "going up, lookup example.",
        "TTL 1 0 2 0", "example.\tTTL\tIN\tNS\tns.example.",
        "TTL 1 0 1 0", "ns.example.\tTTL\tIN\tA\t192.0.2.53",
        "Delegation with 1 names, of which 1 can be examined to query further addresses.",
        "It provides 1 IP addresses.", "192.0.2.53      \tnot in infra cache."], text
