"""An operator's functions over a Resolver (``resolver.operations``), on a library
Resolver that asks no server: its cache filled from a dump, its stub zone's servers seeded.
The daemon's commands that call them are tested in ``test_control_commands.py``."""
from __future__ import annotations

import base64
import inspect
import re

import dns.flags
import dns.message
import dns.name
import dns.rcode
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


#: Unbound 1.17's ``dump_cache`` after resolving www.example.com., example.com. (NODATA)
#: and nx.example.com. over the lab (its rrset section shortened), with a bogus answer, a
#: message naming an rrset it lacks and one with a BADREF added
UNBOUND_DUMP = """START_RRSET_CACHE
;rrset 3600 2 0 2 0
com.\t3600\tIN\tNS\ta.gtld-servers.net.
com.\t3600\tIN\tNS\tb.gtld-servers.net.
;rrset 300 1 0 7 0
example.com.\t300\tIN\tSOA\tns1.example.com. hostmaster.example.com. 1 3600 600 86400 300
;rrset 3600 1 0 1 0
ns2.example.com.\t3600\tIN\tA\t127.0.0.11
;rrset 3600 2 0 2 0
example.com.\t3600\tIN\tNS\tns1.example.com.
example.com.\t3600\tIN\tNS\tns2.example.com.
;rrset 3600 2 0 8 0
www.example.com.\t3600\tIN\tA\t192.0.2.1
www.example.com.\t3600\tIN\tA\t192.0.2.11
;rrset 3600 1 0 1 0
ns1.example.com.\t3600\tIN\tA\t127.0.0.10
;rrset 60 1 0 8 1
bogus.example.com.\t60\tIN\tA\t192.0.2.66
END_RRSET_CACHE
START_MSG_CACHE
msg example.com. IN A 32896 1 300 0 0 1 0
example.com. IN SOA 4
msg nx.example.com. IN A 32899 1 300 0 0 1 0
example.com. IN SOA 4
msg www.example.com. IN A 32896 1 3600 0 1 0 0
www.example.com. IN A 0
msg bogus.example.com. IN A 32896 1 60 1 1 0 0
bogus.example.com. IN A 0
msg gone.example.com. IN A 32896 1 60 0 1 0 0
gone.example.com. IN A 0
msg badref.example.com. IN A 32896 1 60 0 1 0 0
BADREF
END_MSG_CACHE
EOF
"""


def _served(r, name: str, variant: int) -> dns.message.Message | None:
    """The cached answer to ``name`` A for a query variant (bits: 1 EDNS, 2 DO)."""
    import struct

    key = dns.name.from_text(name).to_wire() + struct.pack("!HHB", 1, 1, variant)
    e = r.cache.messages.lru.peek(key)
    return None if e is None else dns.message.from_wire(e.wire)


def test_unbound_s_dump_loads_its_messages_for_every_query_shape_and_its_rrsets(r):
    operations.flush(r)
    assert operations.load_cache(r, UNBOUND_DUMP) == 3
    for variant in (0, 1, 3):
        www = _served(r, "www.example.com.", variant)
        assert sorted(str(rd) for rd in www.answer[0]) == ["192.0.2.1", "192.0.2.11"]
        assert www.rcode() == dns.rcode.NOERROR and (www.edns >= 0) == bool(variant & 1)
        assert not www.flags & dns.flags.AD and bool(www.ednsflags & dns.flags.DO) == \
            (variant == 3)
        nx = _served(r, "nx.example.com.", variant)
        assert nx.rcode() == dns.rcode.NXDOMAIN and nx.authority[0].rdtype == 6
        nodata = _served(r, "example.com.", variant)
        assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    for name in ("bogus.example.com.", "gone.example.com.", "badref.example.com."):
        assert _served(r, name, 0) is None, name
    zone, servers = operations.servers_for(r, "www.example.com.")   # the delegation too
    assert zone == "example.com. (cached delegation)"
    assert sorted(s["address"] for s in servers) == ["127.0.0.10", "127.0.0.11"]
    zones = operations.infra_zones(r)
    assert zones["127.0.0.10"] == ["example.com."] and zones["127.0.0.1"] == ["."], zones


@pytest.mark.parametrize("change, why", [
    (lambda d: d.replace(";rrset 300 1 0 7 0", ";rrset 300 x 0 7 0"), "line 5: bad rrset"),
    (lambda d: d.replace("\t127.0.0.11", "\tnot-an-address"), "line 8: "),
    (lambda d: d.replace("msg www.example.com. IN A 32896 1 3600 0 1 0 0",
                         "msg www.example.com. IN A 32896"), "line 25: expected: msg NAME"),
    (lambda d: d.replace("END_MSG_CACHE\nEOF\n", ""),
     "the dump ends where END_MSG_CACHE was expected"),
    (lambda d: d.replace("EOF\n", "EOF\nmore\n"), "line 35: nothing expected after EOF"),
    (lambda d: d.replace("EOF\n", "EOD\n"), "line 34: EOF expected after END_MSG_CACHE"),
])
def test_a_bad_line_of_unbound_s_dump_is_named_and_loads_nothing(r, change, why):
    operations.flush(r)
    with pytest.raises(DumpError, match="^" + re.escape(why)):
        operations.load_cache(r, change(UNBOUND_DUMP))
    assert _cached(r) == set() and _served(r, "www.example.com.", 0) is None


def test_infra_figures_give_unbound_s_rtt_and_the_backed_off_rto(r):
    """After an answer in 3 ms and a timeout: Unbound's ``rtt`` is the timeout the RTT
    estimate gives (50 ms at least), ``rto`` the one doubled by the timeout."""
    from resolver.daemon.operations import _infra_line, _infra_text

    infra = r.cache.infra
    infra.record_rtt("127.0.0.1", 0.003, r.clock())
    infra.record_timeout("127.0.0.1", r.clock())
    infra.get("192.0.2.7@5353")                    # a server named with its port, unasked
    infra.mark_lame("192.0.2.7@5353", dns.name.from_text("lame.example.").to_wire(),
                    r.clock())
    zone, servers = operations.servers_for(r, "www.example.")
    assert re.fullmatch(r"rto 100 msec, ttl \d+, ping 3 var 2 rtt 50, tA 0, tAAAA 0, "
                        r"tother 1, EDNS 0 probed\.", _infra_text(servers[0]))
    lines = sorted(filter(None, map(_infra_line, operations.infra(r))))
    assert re.fullmatch(r"127\.0\.0\.1 \. ttl \d+ ping 3 var 2 rtt 50 rto 100 tA 0 tAAAA 0 "
                        r"tother 1 ednsknown 1 edns 0 delay 0 lame dnssec 0 rec 0 A 0 "
                        r"other 0", lines[0]), lines
    assert re.fullmatch(r"192\.0\.2\.7@5353 lame\.example\. ttl \d+ ping 0 var 94 rtt 376 "
                        r"rto 376 tA 0 tAAAA 0 tother 0 ednsknown 0 edns 0 delay 0 lame "
                        r"dnssec 0 rec 0 A 1 other 1", lines[1]), lines
    assert len(lines) == 2
