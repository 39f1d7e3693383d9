"""Every way a query can be answered gives the same bytes.

The same questions (the DNS lab's names: positive, negative, CNAME and DNAME chains, wildcard,
SERVFAIL; with and without EDNS and DO; over the signed lab with validation on; and the
real-world cases of the signed fake network behind sockets: bogus data from one server of a
zone, an unsigned child on its signed parent's server, a wildcard CNAME answered from the
cache, a DNAME loop, a YXDOMAIN) are asked through each path the resolver has:

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

from daemon_proc import free_port
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
            hits = s.fast_tcp_hits
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
]
LONG = ".".join(["a" * 62] * 3 + ["b" * 48]) + ".example.net."


def _cases_lab():
    import time

    import dns.name
    import dns.rcode
    from signed_net import signed_world

    p = _FakeLab.PREFIX
    net, anchor, _keys = signed_world(time.time(), prefix=p, extra=(
        "*.cwild 300 CNAME www.example.com.\n"
        "loop1 300 DNAME loop2.example.com.\nloop2 300 DNAME loop1.example.com.\n"
        f"long 300 DNAME {LONG}\n"))
    net.zone("unsigned.n3.example.com.", f"@ 3600 NS ns.n3.example.com.\n"
             f"www 300 A 192.0.2.81\n", [f"{p}.3.3"])
    long_owner = dns.name.from_text("long.example.com.")

    def server(addr, bad_txt):
        def answer(q):
            qname = q.question[0].name
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
    library = _through_library(lab, CASE_NAMES, anchor)
    _compare(daemon, library)
    # each answer is the one the case calls for, on both paths
    want = {"txt.example.com.": (0, True), "www.unsigned.n3.example.com.": (0, False),
            "nope.unsigned.n3.example.com.": (3, False), "a.cwild.example.com.": (0, True),
            "b.cwild.example.com.": (0, True), "x.loop1.example.com.": (2, False),
            "b.c.d.long.example.com.": (6, False)}
    for name, rdtype in CASE_NAMES:
        m = dns.message.from_wire(daemon[(name, rdtype, True, True)]["udp miss"])
        assert (m.rcode(), bool(m.flags & dns.flags.AD)) == want[name], (name, m.to_text())


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
