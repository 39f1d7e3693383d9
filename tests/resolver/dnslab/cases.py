"""The table of lab names per case, with the data a correct resolver must return.

Each ``Case`` is one question a client may ask a recursive resolver that uses the lab's
root hints, and what it must get: the rcode, the final rrset's data (presentation format,
order-free) and the canonical name after CNAME/DNAME chasing. ``auth`` is an address that
serves the canonical name authoritatively, so the lab can be checked without a resolver.

| kind              | name (type)                         | expected                        |
|-------------------|-------------------------------------|---------------------------------|
| glue referral     | www.example.com. A                  | 192.0.2.1, 192.0.2.11           |
| AAAA/MX/TXT/SRV   | www.example.com. AAAA, example.com. MX/TXT, _sip._udp.example.com. SRV | |
| NS                | example.com., ., com., oob.org. NS  | the servers, the addresses of those inside the zone |
| NODATA            | v4only.example.com. AAAA, ent.example.com. A (empty non-terminal) | |
| NXDOMAIN          | nope.example.com. A, nosuch.com. A, nosuchtld. A | rcode NXDOMAIN    |
| wildcard          | host.wild.example.com. A/TXT        | 192.0.2.80 / "wild"             |
| CNAME             | alias.example.com. (in zone), xalias.example.com. (to example.net.) |  |
| DNAME             | www.dname.example.com. A            | -> www.example.net. 198.51.100.1|
| CNAME chain       | chain8-00.example.com. A            | 8 cross-zone links, 192.0.2.108 |
| chain too long    | chain20-00.example.com. A           | SERVFAIL (limit 11)             |
| CNAME loop        | loop1.example.com. A                | SERVFAIL                        |
| dangling CNAME    | dangling.example.com. A             | NXDOMAIN at nothing.example.net.|
| TC then TCP       | big.example.com. TXT                | 40 strings, ~2.6 KB             |
| out-of-bailiwick  | www.oob.org. A, www.oobchain.org. A, www.example. A |                 |
| dead server       | www.dead.com. (silent + good), www.deadr.com. (refused + good) |      |
| all dead          | www.alldead.com. A                  | SERVFAIL in bounded time        |
| lame server       | www.lame.com. (REFUSED + good), www.alllame.com. (SERVFAIL) |         |
| cyclic delegation | www.cyc1.com. A                     | SERVFAIL                        |
| cache names       | h000..h499.bulk.net. A              | 10.1.(i//256).(i%256)           |
| many zones        | www.z000..z099.org. A               | 10.2.(i//256).(i%256)           |
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import zones as Z


@dataclass(frozen=True)
class Case:
    kind: str
    qname: str
    rdtype: str
    rcode: str = "NOERROR"  # what a resolver must answer
    data: frozenset[str] = field(default_factory=frozenset)  # final rrset; empty = none
    canonical: str | None = None  # after CNAME/DNAME chasing; None = qname
    auth: str | None = None  # an address authoritative for the canonical name

    @property
    def canonical_name(self) -> str:
        return self.canonical or self.qname

    @property
    def has_data(self) -> bool:
        return self.rcode == "NOERROR" and bool(self.data)

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.qname}{self.rdtype}"


def _d(*items: str) -> frozenset[str]:
    return frozenset(items)


WWW_EXAMPLE_COM = _d("192.0.2.1", "192.0.2.11")
WWW_EXAMPLE_NET = _d("198.51.100.1")
BIG_TXT = frozenset(f'"{i:02d}-' + "x" * 56 + '"' for i in range(40))

C1, C2, NET = Z.EXAMPLE_COM_1, Z.EXAMPLE_COM_2, Z.EXAMPLE_NET

CASES: tuple[Case, ...] = (
    Case("glue referral", "www.example.com.", "A", data=WWW_EXAMPLE_COM, auth=C1),
    Case("AAAA", "www.example.com.", "AAAA", data=_d("2001:db8::1"), auth=C2),
    Case("MX", "example.com.", "MX", data=_d("10 mail.example.com."), auth=C1),
    Case("TXT", "example.com.", "TXT", data=_d('"v=lab1"'), auth=C2),
    # an NS answer carries the addresses of the servers named inside the zone (Unbound's
    # additional section), not those of servers named elsewhere
    Case("NS, servers inside the zone", "example.com.", "NS",
         data=_d("ns1.example.com.", "ns2.example.com."), auth=C1),
    Case("NS of the root", ".", "NS", data=_d("a.root-servers.net.", "b.root-servers.net."),
         auth=Z.ROOT_A),
    Case("NS, servers outside the zone", "com.", "NS",
         data=_d("a.gtld-servers.net.", "b.gtld-servers.net."), auth=Z.GTLD_A),
    Case("NS, a server of another zone", "oob.org.", "NS", data=_d("ns1.example.net."),
         auth=NET),
    Case("SRV", "_sip._udp.example.com.", "SRV", data=_d("10 60 5060 sip.example.com."), auth=C1),
    Case("NODATA", "v4only.example.com.", "AAAA", auth=C1),
    Case("NODATA empty non-terminal", "ent.example.com.", "A", auth=C2),
    Case("NXDOMAIN", "nope.example.com.", "A", rcode="NXDOMAIN", auth=C1),
    Case("NXDOMAIN at TLD", "nosuch.com.", "A", rcode="NXDOMAIN", auth=Z.GTLD_A),
    Case("NXDOMAIN at root", "nosuchtld.", "A", rcode="NXDOMAIN", auth=Z.ROOT_B),
    Case("wildcard", "host.wild.example.com.", "A", data=_d("192.0.2.80"), auth=C1),
    Case("wildcard TXT", "other.wild.example.com.", "TXT", data=_d('"wild"'), auth=C2),
    Case("wildcard beside exact", "exact.wild.example.com.", "A", data=_d("192.0.2.81"), auth=C1),
    Case("CNAME in zone", "alias.example.com.", "A", data=WWW_EXAMPLE_COM,
         canonical="www.example.com.", auth=C1),
    Case("CNAME across zones", "xalias.example.com.", "A", data=WWW_EXAMPLE_NET,
         canonical="www.example.net.", auth=NET),
    Case("DNAME", "www.dname.example.com.", "A", data=WWW_EXAMPLE_NET,
         canonical="www.example.net.", auth=NET),
    Case("CNAME chain", "chain8-00.example.com.", "A", data=_d("192.0.2.108"),
         canonical="chain8-08.example.com.", auth=C1),
    Case("CNAME chain too long", "chain20-00.example.com.", "A", rcode="SERVFAIL"),
    Case("CNAME loop", "loop1.example.com.", "A", rcode="SERVFAIL"),
    Case("dangling CNAME", "dangling.example.com.", "A", rcode="NXDOMAIN",
         canonical="nothing.example.net.", auth=NET),
    Case("TC then TCP", "big.example.com.", "TXT", data=BIG_TXT, auth=C1),
    Case("second-level", "www.example.net.", "A", data=WWW_EXAMPLE_NET, auth=NET),
    Case("out-of-bailiwick NS", "www.oob.org.", "A", data=_d("203.0.113.1"), auth=NET),
    Case("out-of-bailiwick NS, two levels", "www.oobchain.org.", "A", data=_d("203.0.113.2"), auth=NET),
    Case("TLD with out-of-bailiwick NS", "www.example.", "A", data=_d("192.0.2.200"), auth=Z.NIC_ORG),
    Case("silent server + good", "www.dead.com.", "A", data=_d("192.0.2.100"), auth=C2),
    Case("refused address + good", "www.deadr.com.", "A", data=_d("192.0.2.101"), auth=C2),
    Case("all servers dead", "www.alldead.com.", "A", rcode="SERVFAIL"),
    Case("lame server + good", "www.lame.com.", "A", data=_d("192.0.2.110"), auth=C2),
    Case("all servers lame", "www.alllame.com.", "A", rcode="SERVFAIL"),
    Case("cyclic delegation", "www.cyc1.com.", "A", rcode="SERVFAIL"),
    Case("many zones", "www.z042.org.", "A", data=_d("10.2.0.42"), auth=Z.MANY),
    Case("cache names", "h123.bulk.net.", "A", data=_d("10.1.0.123"), auth=Z.BULK),
)

# Cases a healthy resolver answers quickly (no dead or silent server on the path).
FAST_CASES = tuple(c for c in CASES if c.kind not in {
    "silent server + good", "all servers dead", "refused address + good",
})


def bulk_names() -> list[tuple[str, str]]:
    """(name, address) for every cache-test name of bulk.net."""
    return [(f"h{i:03d}.bulk.net.", f"10.1.{i // 256}.{i % 256}") for i in range(Z.BULK_NAMES)]


def many_zone_names() -> list[tuple[str, str]]:
    """(name, address) for www of every zNNN.org. zone: each one a new zone to a resolver."""
    return [(f"www.z{i:03d}.org.", f"10.2.{i // 256}.{i % 256}") for i in range(Z.MANY_ZONES)]
