"""A fake DNS Internet for the resolver's own tests: zones served by addresses, with faults.

``FakeNet.answer(addr, query_wire)`` plays the authoritative server at ``addr`` (referrals
with glue, CNAME, DNAME, wildcards, NXDOMAIN/NODATA with SOA) or a fault set for it. It is used
without sockets by the iterator scenario tests (with :class:`FakeClock` and :func:`drive`) and
behind real UDP/TCP sockets by the engine tests (:class:`FakeServers`).
"""
from __future__ import annotations

import asyncio
import socket
import struct
import time

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from resolver import iterator as itr
from resolver.wire.codec import build_query

IN = dns.rdataclass.IN
A = dns.rdatatype.A
NS = dns.rdatatype.NS
CNAME = dns.rdatatype.CNAME
DNAME = dns.rdatatype.DNAME
SOA = dns.rdatatype.SOA
DS = dns.rdatatype.DS
AAAA = dns.rdatatype.AAAA


def W(text: str) -> bytes:
    """Wire form of a name."""
    return dns.name.from_text(text).to_wire()


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


class RunningClock(FakeClock):
    """A FakeClock that also runs with real time, for a resolver whose timers are real:
    ``advance`` still jumps it."""

    def __call__(self) -> float:
        return self.t + time.monotonic()


SOA_TEXT = "@ 3600 SOA ns.invalid. host.invalid. 1 3600 600 86400 {neg}"


class FakeNet:
    """Zones and the addresses that serve them; per-address faults."""

    def __init__(self) -> None:
        self.zones: dict[dns.name.Name, dns.zone.Zone] = {}
        self.served: dict[str, list[dns.name.Name]] = {}
        #: addr -> fault: "timeout", "servfail", "refused", "garbage", "lame", "nonauth",
        #: "formerr-edns", "tc" (UDP answers truncated), "unreachable" (no route: ``drive``
        #: fails the send at once), or a callable(query Message) -> bytes|None
        self.faults: dict[str, object] = {}
        self.log: list[tuple[str, str, str]] = []    # (addr, qname, qtype) as asked
        self.unsent: list[str] = []                  # addresses whose send failed at once
        self.skipped: list[str] = []                 # not asked: marked down (timeouts)

    def zone(self, origin: str, body: str, servers: list[str], neg_ttl: int = 300) -> None:
        text = SOA_TEXT.format(neg=neg_ttl) + "\n" + body
        z = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
        self.zones[z.origin] = z
        for addr in servers:
            self.served.setdefault(addr, []).append(z.origin)

    def queries(self, addr: str | None = None) -> list[tuple[str, str]]:
        return [(q, t) for a, q, t in self.log if addr is None or a == addr]

    # ---- the authoritative logic -------------------------------------------------------
    def answer(self, addr: str, wire: bytes, tcp: bool = False) -> bytes | None:
        q = dns.message.from_wire(wire)
        qname, qtype = q.question[0].name, q.question[0].rdtype
        self.log.append((addr, qname.to_text(), dns.rdatatype.to_text(qtype)))
        fault = self.faults.get(addr)
        if callable(fault):
            return fault(q)
        if fault == "timeout":
            return None
        r = dns.message.make_response(q)
        if fault in ("servfail", "refused"):
            r.set_rcode(dns.rcode.SERVFAIL if fault == "servfail" else dns.rcode.REFUSED)
            return r.to_wire()
        if fault == "garbage":
            return wire[:2] + b"\x84\x00" + b"\xff" * 20
        if fault == "malformed":
            # Matching ID and question, then a record that runs off the end.
            qlen = len(q.question[0].name.to_wire()) + 4
            return (wire[:2] + b"\x84\x00\x00\x01\x00\x01\x00\x00\x00\x00"
                    + wire[12:12 + qlen] + b"\xc0\x0c\x00\x01")
        if fault == "formerr-edns" and q.edns >= 0:
            r = dns.message.make_response(q)
            r.use_edns(False)
            r.set_rcode(dns.rcode.FORMERR)
            return r.to_wire()
        if fault == "lame":
            # Upward referral to the root, as a misconfigured server does.
            r.authority.append(dns.rrset.from_text(".", 3600, "IN", "NS", "a.root."))
            return r.to_wire()
        zones = [z for z in self.served.get(addr, []) if qname.is_subdomain(z)]
        if qtype == DS:
            zones = [z for z in zones if z != qname] or zones
        if not zones:
            r.set_rcode(dns.rcode.REFUSED)
            return r.to_wire()
        origin = max(zones, key=len)
        self._fill(r, self.zones[origin], qname, qtype)
        if fault == "nonauth":
            r.flags &= ~dns.flags.AA
        out = r.to_wire()
        if fault == "tc" and not tcp:
            r.answer = []
            r.authority = []
            r.additional = []
            r.flags |= dns.flags.TC
            return r.to_wire()
        return out

    def _fill(self, r: dns.message.Message, z: dns.zone.Zone, qname: dns.name.Name, qtype) -> None:
        origin = z.origin
        # Delegations between the apex and the name.
        labels = len(qname) - len(origin)
        for i in range(labels, 0, -1):
            n = qname.split(len(origin) + (labels - i + 1))[1]
            node = z.get_node(n)
            if node is None:
                continue
            ns = node.get_rdataset(IN, NS)
            if ns is not None and not (qtype == DS and n == qname):
                r.authority.append(_rrset(n, ns))
                ds = node.get_rdataset(IN, DS)
                if ds is not None:
                    r.authority.append(_rrset(n, ds))
                _add_glue(r, z, ns)
                return
            dname = node.get_rdataset(IN, DNAME)
            if dname is not None and n != qname:
                r.flags |= dns.flags.AA
                r.answer.append(_rrset(n, dname))
                target = qname.relativize(n).concatenate(dname[0].target)
                r.answer.append(dns.rrset.from_text(qname, dname.ttl, "IN", "CNAME",
                                                    target.to_text()))
                return
        r.flags |= dns.flags.AA
        cur = qname
        for _ in range(20):
            node = z.get_node(cur)
            owner = cur
            if node is None:
                node = self._wildcard(z, cur)
            if node is None:
                exists = any(n.is_subdomain(cur) for n in z.nodes)
                if not exists and cur == qname:
                    r.set_rcode(dns.rcode.NXDOMAIN)
                if not exists or cur == qname:
                    r.authority.append(_rrset(origin, z.get_rdataset(origin, SOA)))
                return
            rds = node.get_rdataset(IN, qtype)
            if rds is not None:
                r.answer.append(_rrset(owner, rds))
                sig = node.get_rdataset(IN, dns.rdatatype.RRSIG, qtype)
                if sig is not None:
                    r.answer.append(_rrset(owner, sig))
                if qtype == NS:     # their addresses too, as NSD adds them (priming needs them)
                    _add_glue(r, z, rds)
                return
            cn = node.get_rdataset(IN, CNAME)
            if cn is not None and qtype != CNAME:
                r.answer.append(_rrset(owner, cn))
                cur = cn[0].target
                if not cur.is_subdomain(origin):
                    return
                continue
            r.authority.append(_rrset(origin, z.get_rdataset(origin, SOA)))
            return

    @staticmethod
    def _wildcard(z: dns.zone.Zone, name: dns.name.Name):
        n = name
        while len(n) > len(z.origin):
            n = n.parent()
            if any(m.is_subdomain(n) for m in z.nodes if m != n) or z.get_node(n) is not None:
                return z.get_node(dns.name.Name((b"*",) + n.labels))
        return None


def _add_glue(r: dns.message.Message, z: dns.zone.Zone, ns) -> None:
    """The zone's A/AAAA records of the NS targets in it, to the additional section."""
    for rd in ns:
        t = rd.target
        if t.is_subdomain(z.origin):
            tn = z.get_node(t)
            for gt in (A, AAAA):
                g = tn.get_rdataset(IN, gt) if tn is not None else None
                if g is not None:
                    r.additional.append(_rrset(t, g))


def _rrset(name, rdataset) -> dns.rrset.RRset:
    rs = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype, rdataset.covers)
    rs.update(rdataset)
    return rs


def drive(iterator: itr.Iterator, net: FakeNet, clock: FakeClock, *, timeout: float = 0.4,
          max_steps: int = 500) -> itr.Result:
    """Runs an iterator against the fake network: the first server offered is asked (after the
    cache's choice), timeouts advance the fake clock, an unreachable address fails at once."""
    action = iterator.start()
    infra = iterator.cache.infra
    for _ in range(max_steps):
        if isinstance(action, itr.Result):
            return action
        if not isinstance(action, itr.Query):     # the validator's Suspend: go on at once
            action = iterator.feed(None)
            continue
        server = infra.choose(sorted(action.servers), clock())   # sorted: ties break alike
        if server is None:          # every server marked down, no probe due: as the driver
            net.skipped.append(action.servers[0])
            action = iterator.feed(itr.Failure(action.servers[0], "marked down", True))
            continue
        if net.faults.get(server) == "unreachable":     # as Resolver._failed does
            net.unsent.append(server)
            infra.record_unreachable(server, clock())
            action = iterator.feed(itr.Failure(server, "Network is unreachable", True))
            continue
        wire = build_query(4242, action.qname, action.qtype, action.qclass, do=True)
        reply = net.answer(server, wire)
        if reply is None:
            clock.advance(timeout)
            infra.record_timeout(server, clock())
            action = iterator.feed(itr.Timeout(server))
        else:
            clock.advance(0.001)
            infra.record_rtt(server, 0.001)
            action = iterator.feed(itr.Reply(server, reply))
    raise AssertionError("iterator did not finish within max_steps")


class FakeServers:
    """FakeNet behind real sockets: UDP and TCP on each address, one shared port."""

    def __init__(self, net: FakeNet) -> None:
        self.net = net
        self.transports: list = []
        self.servers: list = []
        self.port = 0
        #: addr -> callable(data, sendto) run instead of the normal UDP answer
        self.udp_hooks: dict = {}

    async def start(self, addrs: list[str]) -> int:
        loop = asyncio.get_running_loop()
        for attempt in range(20):
            probe = socket.socket(socket.AF_INET6 if ":" in addrs[0] else socket.AF_INET,
                                  socket.SOCK_DGRAM)
            probe.bind((addrs[0], 0))
            port = probe.getsockname()[1]
            probe.close()
            try:
                for a in addrs:
                    t, _ = await loop.create_datagram_endpoint(
                        lambda a=a: _UDP(self, a), local_addr=(a, port))
                    self.transports.append(t)
                    srv = await loop.create_server(lambda a=a: _TCP(self, a), a, port)
                    self.servers.append(srv)
                self.port = port
                return port
            except OSError:
                await self.stop()
        raise RuntimeError("no free port for the fake servers")

    async def stop(self) -> None:
        for t in self.transports:
            t.close()
        for s in self.servers:
            s.close()
            await s.wait_closed()
        self.transports, self.servers = [], []


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, owner: FakeServers, addr: str) -> None:
        self.owner, self.addr = owner, addr

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, peer) -> None:
        hook = self.owner.udp_hooks.get(self.addr)
        if hook is not None:
            hook(data, lambda out: self.transport.sendto(out, peer))
            return
        out = self.owner.net.answer(self.addr, data)
        if out is not None:
            self.transport.sendto(out, peer)


class _TCP(asyncio.Protocol):
    def __init__(self, owner: FakeServers, addr: str) -> None:
        self.owner, self.addr = owner, addr
        self.buf = b""

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 2:
            n = struct.unpack("!H", self.buf[:2])[0]
            if len(self.buf) < 2 + n:
                return
            msg, self.buf = self.buf[2:2 + n], self.buf[2 + n:]
            out = self.owner.net.answer(self.addr, msg, tcp=True)
            if out is not None:
                self.transport.write(struct.pack("!H", len(out)) + out)


def small_internet(net: FakeNet | None = None, prefix: str = "10.0") -> FakeNet:
    """root (10.0.0.1-2) -> com (10.0.1.1-2), net (10.0.2.1) -> example.com (10.0.3.1-2),
    other.net (10.0.4.1, NS names out of bailiwick of example.com)."""
    net = net or FakeNet()
    zone = lambda origin, body, servers: net.zone(  # noqa: E731
        origin, body.replace("10.0.", prefix + "."), [s.replace("10.0.", prefix + ".") for s in servers])
    zone(".", """
@ 86400 NS a.root.
@ 86400 NS b.root.
a.root. 86400 A 10.0.0.1
b.root. 86400 A 10.0.0.2
com. 86400 NS a.gtld.com.
com. 86400 NS b.gtld.com.
a.gtld.com. 86400 A 10.0.1.1
b.gtld.com. 86400 A 10.0.1.2
net. 86400 NS ns.net.
ns.net. 86400 A 10.0.2.1
""", ["10.0.0.1", "10.0.0.2"])
    zone("com.", """
@ 86400 NS a.gtld.com.
@ 86400 NS b.gtld.com.
a.gtld 86400 A 10.0.1.1
b.gtld 86400 A 10.0.1.2
example 86400 NS ns1.example.com.
example 86400 NS ns2.example.com.
ns1.example 86400 A 10.0.3.1
ns2.example 86400 A 10.0.3.2
glueless 86400 NS ns.other.net.
""", ["10.0.1.1", "10.0.1.2"])
    zone("net.", """
@ 86400 NS ns.net.
ns 86400 A 10.0.2.1
other 86400 NS ns.other.net.
ns.other 86400 A 10.0.4.1
""", ["10.0.2.1"])
    zone("example.com.", """
@ 3600 NS ns1
@ 3600 NS ns2
ns1 3600 A 10.0.3.1
ns2 3600 A 10.0.3.2
www 300 A 192.0.2.1
www 300 AAAA 2001:db8::1
alias 300 CNAME www
far 300 CNAME host.other.net.
mail 300 MX 10 www
txt 300 TXT "hello"
*.wild 300 A 192.0.2.99
deep.empty.nonterminal 300 A 192.0.2.5
sub 300 DNAME other.net.
svc 300 A 10.0.7.7
""", ["10.0.3.1", "10.0.3.2"])
    zone("other.net.", """
@ 3600 NS ns.other.net.
ns 3600 A 10.0.4.1
host 300 A 198.51.100.7
www 300 A 198.51.100.8
""", ["10.0.4.1"])
    zone("glueless.com.", """
@ 3600 NS ns.other.net.
www 300 A 203.0.113.5
""", ["10.0.4.1"])
    return net


def referral_with_glue(net: FakeNet, servers: tuple[str, ...], zone: str, ns: str,
                       glue: str) -> None:
    """Makes the ``servers`` of a zone of ``net`` answer every name under ``zone`` with a
    referral to ``ns`` and an A record for it at ``glue`` in the additional section,
    whatever zone ``ns`` is in; other names as before."""
    cut = dns.name.from_text(zone)

    def refer(q: dns.message.Message) -> bytes:
        if q.question[0].name.is_subdomain(cut):
            r = dns.message.make_response(q)
            r.authority.append(dns.rrset.from_text(zone, 86400, "IN", "NS", ns))
            r.additional.append(dns.rrset.from_text(ns, 86400, "IN", "A", glue))
            return r.to_wire()
        saved = {a: net.faults.pop(a) for a in servers}
        try:
            return net.answer(servers[0], q.to_wire())
        finally:
            net.faults.update(saved)

    for a in servers:
        net.faults[a] = refer


def root_hints(prefix: str = "10.0") -> list[tuple[str, str]]:
    return [("a.root.", f"{prefix}.0.1"), ("b.root.", f"{prefix}.0.2")]
