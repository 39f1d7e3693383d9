"""Every way a query can be answered gives the same bytes.

The same questions (the DNS lab's names: positive, negative, CNAME and DNAME chains, wildcard,
SERVFAIL; with and without EDNS and DO; over the signed lab with validation on; and the
real-world cases of the signed fake network behind sockets: bogus data from one server of a
zone, an unsigned child on its signed parent's server, a wildcard CNAME answered from the
cache, a DNAME loop, a YXDOMAIN, an unsigned child proved so by its referral alone, the
parent's glue when the child's own address for its server refuses) are asked through each
path the resolver has:

- the daemon on corenet's loop over UDP: the miss path (callbacks, ``resolver.resolution``),
  then the C hit path of ``resolver.daemon.udp_listener``; a large answer is truncated there;
- the same daemon over TCP, where hits are answered by ``resolver.daemon.tcp_framer``;
- the library on stock asyncio: ``Resolver.resolve_message`` (the coroutine miss path), then
  its hit.

The answers must be equal byte for byte once the ID and the TTLs (which age) are set aside.
A difference means two paths encode answers differently: there must be one encoder.
"""
from __future__ import annotations

import asyncio
import socket
import struct

import dns.flags
import dns.message
import dns.rdata
import dns.rrset

from ports import free_port
from looptools import make_loop
from resolver.daemon.config import build
from resolver.daemon.server import Server
from resolver.wire.codec import ttl_offsets

PLAIN_NAMES = [
    ("www.example.com.", "A"), ("WwW.ExAmple.CoM.", "A"), ("www.example.com.", "AAAA"),
    ("example.com.", "MX"), ("v4only.example.com.", "AAAA"), ("nope.example.com.", "A"),
    ("nosuchtld.", "A"), ("host.wild.example.com.", "TXT"), ("xalias.example.com.", "A"),
    ("www.dname.example.com.", "A"), ("chain8-00.example.com.", "A"),
    ("dangling.example.com.", "A"), ("loop1.example.com.", "A"), ("www.example.", "A"),
    ("big.example.com.", "TXT"),
]
SIGNED_NAMES = [
    ("www.example.com.", "A"), ("nope.example.com.", "A"), ("www.example.com.", "TXT"),
    ("x.wild.example.com.", "A"), ("xalias.example.com.", "A"), ("example.com.", "DNSKEY"),
]
# (EDNS, DO)
VARIANTS = [(False, False), (True, False), (True, True)]


def _query(name: str, rdtype: str, edns: bool, do: bool) -> bytes:
    q = dns.message.make_query(name, rdtype, use_edns=0 if edns else False, want_dnssec=do,
                               payload=1232)
    q.id = 0x4242
    return q.to_wire()


def _normal(wire: bytes) -> bytes:
    """The answer with ID 0 and every TTL 0."""
    out = bytearray(wire)
    out[0:2] = b"\x00\x00"
    offsets, _, _ = ttl_offsets(bytes(wire))
    for (off,) in struct.iter_unpack("=H", offsets):
        out[off:off + 4] = b"\x00\x00\x00\x00"
    return bytes(out)


async def _udp(loop, addr, q: bytes) -> bytes:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    try:
        await loop.sock_sendto(s, q, addr)
        data, _ = await asyncio.wait_for(loop.sock_recvfrom(s, 65535), 8)
        return data
    finally:
        s.close()


async def _tcp(addr, q: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*addr)
    try:
        writer.write(struct.pack("!H", len(q)) + q)
        n = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 8))[0]
        return await asyncio.wait_for(reader.readexactly(n), 8)
    finally:
        writer.close()


def _through_daemon(lab, names, anchor=None) -> dict:
    """{(name, type, edns, do): {path: answer}} from a daemon on corenet's loop."""
    import resolver

    loop = make_loop("corenet-edge")
    out: dict = {}

    async def go():
        if isinstance(lab, _FakeLab):
            await lab.start()
            try:
                return await asked()
            finally:
                await lab.stop()
        return await asked()

    async def asked():
        cfg = build(None, {"listen": [f"127.0.0.1:{free_port()}"], "root_hints": None,
                           "upstream_port": lab.port})
        r = resolver.Resolver(lab.root_hints, port=lab.port, trust_anchor=anchor,
                              do_not_query_localhost=False)
        s = Server(cfg, resolver=r)
        await s.start()
        assert s.fast_udp
        addr = s.addresses[0]
        try:
            for name, rdtype in names:
                for edns, do in VARIANTS:
                    q = _query(name, rdtype, edns, do)
                    got = out[(name, rdtype, edns, do)] = {}
                    got["udp miss"] = await _udp(loop, addr, q)
                    got["udp hit"] = await _udp(loop, addr, q)
                    got["tcp hit"] = await _tcp(addr, q)
            hits = s.counters.fast_tcp_hits
        finally:
            await s.stop()
            await r.close()
        return hits

    try:
        tcp_hits = loop.run_until_complete(asyncio.wait_for(go(), 120))
    finally:
        loop.close()
    assert tcp_hits > 0                      # the C framer answered hits
    return out


def _through_library(lab, names, anchor=None) -> dict:
    import resolver

    loop = asyncio.new_event_loop()
    out: dict = {}

    async def go():
        if isinstance(lab, _FakeLab):
            await lab.start()
            try:
                return await asked()
            finally:
                await lab.stop()
        return await asked()

    async def asked():
        r = resolver.Resolver(lab.root_hints, port=lab.port, trust_anchor=anchor,
                              do_not_query_localhost=False)
        try:
            for name, rdtype in names:
                for edns, do in VARIANTS:
                    q = _query(name, rdtype, edns, do)
                    got = out[(name, rdtype, edns, do)] = {}
                    got["library miss"] = await r.resolve_message(q)
                    got["library hit"] = await r.resolve_message(q)
        finally:
            await r.close()

    try:
        loop.run_until_complete(asyncio.wait_for(go(), 120))
    finally:
        loop.close()
    return out


def _compare(daemon: dict, library: dict) -> None:
    assert daemon.keys() == library.keys()
    for key, paths in daemon.items():
        paths = {**paths, **library[key]}
        name, rdtype, edns, do = key
        ref = _normal(paths["library miss"])
        for path, wire in paths.items():
            if path.startswith("udp") and len(ref) > (1232 if edns else 512):
                # Too large for the client's UDP size: header, question and OPT, with TC.
                m = dns.message.from_wire(wire)
                assert m.flags & 0x0200 and not m.answer, (key, path)
                continue
            assert _normal(wire) == ref, (key, path, dns.message.from_wire(wire).to_text(),
                                          dns.message.from_wire(paths["library miss"]).to_text())
            assert wire[:2] == b"\x42\x42", (key, path)


def test_every_path_answers_the_lab_alike(lab):
    _compare(_through_daemon(lab, PLAIN_NAMES), _through_library(lab, PLAIN_NAMES))


def test_every_path_answers_the_signed_lab_alike(signed_lab):
    lab, anchor = signed_lab
    daemon = _through_daemon(lab, SIGNED_NAMES, anchor)
    library = _through_library(lab, SIGNED_NAMES, anchor)
    _compare(daemon, library)
    # Validation happened on both paths: AD for the DO queries on signed data.
    m = dns.message.from_wire(daemon[("www.example.com.", "A", True, True)]["udp miss"])
    assert m.flags & dns.flags.AD and m.answer


class _FakeLab:
    """The signed fake network (``signed_net``) behind sockets on loopback, as a lab: its
    ``root_hints`` and ``port``, started and stopped on the loop of the path asking it."""

    PREFIX = "127.54"

    def __init__(self, net) -> None:
        from scenario import FakeServers, root_hints
        self.net = net
        self.servers = FakeServers(net)
        self.root_hints = root_hints(self.PREFIX)
        self.port = 0

    async def start(self) -> None:
        self.net.log.clear()
        self.port = await self.servers.start(sorted(self.net.served))

    async def stop(self) -> None:
        await self.servers.stop()


#: the cases on the signed fake network; a wildcard CNAME is asked for one type first, then
#: another name below it is answered from the cache for another type
CASE_NAMES = [
    ("txt.example.com.", "TXT"),                # its first server's signatures are bad
    ("www.unsigned.n3.example.com.", "A"),      # unsigned child on the parent's server
    ("nope.unsigned.n3.example.com.", "A"),
    ("a.cwild.example.com.", "A"), ("b.cwild.example.com.", "AAAA"),
    ("x.loop1.example.com.", "A"),              # a DNAME loop: SERVFAIL
    ("b.c.d.long.example.com.", "A"),           # the substitution overflows: YXDOMAIN
    ("www.nods.example.com.", "A"),             # insecure by the referral's own proof
    ("ns.fb.example.com.", "A"),                # the child's address for its server ...
    ("www.fb.example.com.", "A"),               # ... refuses: the parent's glue answers
]
LONG = ".".join(["a" * 62] * 3 + ["b" * 48]) + ".example.net."


def _cases_lab():
    import time

    import dns.name
    import dns.rcode
    import dns.rdatatype
    from signed_net import signed_world

    p = _FakeLab.PREFIX
    net, anchor, _keys = signed_world(time.time(), prefix=p, extra=(
        "*.cwild 300 CNAME www.example.com.\n"
        "loop1 300 DNAME loop2.example.com.\nloop2 300 DNAME loop1.example.com.\n"
        f"long 300 DNAME {LONG}\n"
        f"nods 3600 NS ns.nods\nns.nods 3600 A {p}.3.5\n"
        f"fb 3600 NS ns.fb\nns.fb 3600 A {p}.3.6\n"))
    net.zone("unsigned.n3.example.com.", f"@ 3600 NS ns.n3.example.com.\n"
             f"www 300 A 192.0.2.81\n", [f"{p}.3.3"])
    # nods.example.com.: an unsigned child whose referral from example.com. carries the
    # signed NSEC proving it has no DS. example.com.'s servers refuse a DS question for it
    # (in ``server`` below), so the DS cannot be had from the parent and an insecure answer
    # can only come from the referral's proof; the test also finds no DS question for it in
    # the log. Refused rather than dropped: a resolver that did ask waits out no timeout.
    net.zone("nods.example.com.", f"@ 3600 NS ns.nods.example.com.\n"
             f"ns 3600 A {p}.3.5\nwww 300 A 192.0.2.82\n", [f"{p}.3.5"])
    # fb.example.com.: the referral's glue puts ns.fb at .3.6, which serves the zone; the
    # zone itself puts ns.fb at .3.96, which serves nothing and so refuses every question.
    # Once ns.fb's address has been asked (the child's answer is authoritative and replaces
    # the glue in the cache), the only address left that answers for fb.example.com. is the
    # glue's: an answer for www.fb.example.com. proves the fallback, as it would with a
    # silent address, and a refusal costs no timeout.
    net.zone("fb.example.com.", f"@ 3600 NS ns.fb.example.com.\n"
             f"ns 3600 A {p}.3.96\nwww 300 A 192.0.2.83\n", [f"{p}.3.6"])
    net.served.setdefault(f"{p}.3.96", [])
    nods = dns.name.from_text("nods.example.com.")
    long_owner = dns.name.from_text("long.example.com.")

    def server(addr, bad_txt):
        def answer(q):
            qname = q.question[0].name
            if qname == nods and q.question[0].rdtype == dns.rdatatype.DS:
                r = dns.message.make_response(q)
                r.set_rcode(dns.rcode.REFUSED)
                return r.to_wire()
            if qname.is_subdomain(long_owner) and qname != long_owner:
                r = dns.message.make_response(q)
                r.flags |= dns.flags.AA
                r.set_rcode(dns.rcode.YXDOMAIN)
                r.answer.append(dns.rrset.from_text(long_owner, 300, "IN", "DNAME", LONG))
                return r.to_wire()
            net.faults.pop(addr)
            try:
                r = dns.message.from_wire(net.answer(addr, q.to_wire()))
            finally:
                net.log.pop()
                net.faults[addr] = answer
            if bad_txt:
                for rrset in r.answer:
                    if rrset.rdtype == 46 and rrset.covers == 16:
                        for rd in list(rrset):
                            rrset.remove(rd)
                            rrset.add(rd.replace(signature=rd.signature[:-1] + bytes(
                                [rd.signature[-1] ^ 0xFF])))
            return r.to_wire()
        return answer

    for addr, bad in ((f"{p}.3.1", True), (f"{p}.3.2", False)):
        net.faults[addr] = server(addr, bad)
    return _FakeLab(net), anchor


def test_every_path_answers_the_real_world_cases_alike():
    lab, anchor = _cases_lab()
    daemon = _through_daemon(lab, CASE_NAMES, anchor)
    logs = [list(lab.net.log)]          # (the log is cleared when the lab starts)
    library = _through_library(lab, CASE_NAMES, anchor)
    logs.append(list(lab.net.log))
    _compare(daemon, library)
    # each answer is the one the case calls for, on both paths
    want = {"txt.example.com.": (0, True), "www.unsigned.n3.example.com.": (0, False),
            "nope.unsigned.n3.example.com.": (3, False), "a.cwild.example.com.": (0, True),
            "b.cwild.example.com.": (0, True), "x.loop1.example.com.": (2, False),
            "b.c.d.long.example.com.": (6, False), "www.nods.example.com.": (0, False),
            "ns.fb.example.com.": (0, False), "www.fb.example.com.": (0, False)}
    p = _FakeLab.PREFIX
    addresses = {"www.nods.example.com.": "192.0.2.82", "ns.fb.example.com.": f"{p}.3.96",
                 "www.fb.example.com.": "192.0.2.83"}
    for name, rdtype in CASE_NAMES:
        m = dns.message.from_wire(daemon[(name, rdtype, True, True)]["udp miss"])
        assert (m.rcode(), bool(m.flags & dns.flags.AD)) == want[name], (name, m.to_text())
        if name in addresses:
            assert [rd.address for rs in m.answer if rs.rdtype == 1
                    for rd in rs] == [addresses[name]], (name, m.to_text())
    for log in logs:                    # the daemon's, then the library's
        # the child's insecurity came from the referral: no server was asked for its DS
        assert ("nods.example.com.", "DS") not in [(q, t) for _a, q, t in log]
        # the child's address was asked first and refused; the glue's answered after it
        asked = [a for a, q, _t in log if q == "www.fb.example.com."]
        assert asked and asked[0] == f"{p}.3.96" and asked[-1] == f"{p}.3.6", asked
        assert set(asked) == {f"{p}.3.96", f"{p}.3.6"}, asked


def test_the_comparison_sees_a_difference():
    """_normal keeps what a client sees apart from ID and TTLs."""
    a = _query("www.example.com.", "A", True, False)
    r = dns.message.make_response(dns.message.from_wire(a))
    r.answer.append(dns.rrset.from_text("www.example.com.", 300, "IN", "A", "192.0.2.1"))
    w1 = r.to_wire()
    r.answer[0].ttl = 5
    r.id = 7
    assert _normal(r.to_wire()) == _normal(w1)
    r.answer[0].add(dns.rdata.from_text("IN", "A", "192.0.2.2"))
    assert _normal(r.to_wire()) != _normal(w1)
