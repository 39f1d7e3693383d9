"""The lab's DNS hierarchy: which server address serves which zones, and the zone texts.

Built the way the Internet is built: a root served by two addresses, TLD servers that
serve several TLDs, second-level zones with glue, NS names outside the bailiwick of the
zone they serve (resolvable only by a sub-query), and the broken delegations a resolver
meets in the wild. The cases a test can ask about, with the data they must return, are
in ``cases.py``; the addresses are here so both sides agree.
"""
from __future__ import annotations

from dataclasses import dataclass

TTL = 3600
NEG_TTL = 300  # SOA minimum: the negative-caching TTL of every lab zone

BULK_NAMES = 4000  # h000..h3999.bulk.net, for cache tests and cold-resolution benchmarks (the daemon
#                    benchmark's burst of misses takes 3,800 of them, enough to outlast start-up effects)
MANY_ZONES = 100  # z000.org..z099.org, one small zone each: "a name in a new zone"


@dataclass(frozen=True)
class Server:
    """One authoritative address: an NSD process serving ``zones`` there."""

    address: str
    zones: tuple[str, ...]
    note: str


# Addresses with something behind them. Every one of them, the silent and refused
# ones and the fake slots too, uses the lab's single port.
ROOT_A = "127.0.0.2"
ROOT_B = "127.0.0.3"
GTLD_A = "127.0.0.4"
GTLD_B = "127.0.0.5"
NIC_ORG = "127.0.0.6"
EXAMPLE_COM_1 = "127.0.0.10"
EXAMPLE_COM_2 = "127.0.0.11"
EXAMPLE_NET = "127.0.0.12"
BULK = "127.0.0.13"
MANY = "127.0.0.14"
LAME = "127.0.0.22"

# A black hole: the lab holds a UDP socket there that is never read and a TCP socket
# that listens but never accepts, so queries time out as with a dead host.
SILENT = "127.0.0.20"
# Nothing bound at all: UDP gets ICMP port unreachable, TCP a reset.
REFUSED = "127.0.0.21"
# Slots for dnslab.fake servers started by tests; nothing listens unless a test does.
FAKE_TLD_1 = "127.0.0.30"  # ns1.fault.
FAKE_TLD_2 = "127.0.0.31"  # ns2.fault.
FAKE_MIXED = "127.0.0.32"  # ns1.mixed.com. (ns2.mixed.com. is a real NSD)

ROOT_HINTS: list[tuple[str, str]] = [
    ("a.root-servers.net.", ROOT_A),
    ("b.root-servers.net.", ROOT_B),
]

# Every address the lab's port must be free on (tested at start, UDP and TCP).
ALL_ADDRESSES = (
    ROOT_A, ROOT_B, GTLD_A, GTLD_B, NIC_ORG, EXAMPLE_COM_1, EXAMPLE_COM_2, EXAMPLE_NET,
    BULK, MANY, LAME, SILENT, REFUSED, FAKE_TLD_1, FAKE_TLD_2, FAKE_MIXED,
)


def _soa(origin: str, mname: str) -> str:
    return f"$ORIGIN {origin}\n$TTL {TTL}\n@ IN SOA {mname} hostmaster.{origin if origin != '.' else ''} 1 3600 600 86400 {NEG_TTL}\n"


def _many_zone_names() -> list[str]:
    return [f"z{i:03d}.org." for i in range(MANY_ZONES)]


def root_zone() -> str:
    z = [_soa(".", "a.root-servers.net.")]
    z.append("@ NS a.root-servers.net.\n@ NS b.root-servers.net.\n")
    # com. and net. share their servers (as on the Internet); their NS names sit in
    # net., so the glue below is sibling glue for com.
    for tld in ("com.", "net."):
        z.append(f"{tld} NS a.gtld-servers.net.\n{tld} NS b.gtld-servers.net.\n")
    z.append("org. NS ns1.nic.org.\n")
    # example. is served by a host under org.: out of its own bailiwick, glued here
    # because org. is in the root's.
    z.append("example. NS ns1.nic.org.\n")
    z.append("fault. NS ns1.fault.\nfault. NS ns2.fault.\n")
    z.append(
        f"a.root-servers.net. A {ROOT_A}\nb.root-servers.net. A {ROOT_B}\n"
        f"a.gtld-servers.net. A {GTLD_A}\nb.gtld-servers.net. A {GTLD_B}\n"
        f"ns1.nic.org. A {NIC_ORG}\n"
        f"ns1.fault. A {FAKE_TLD_1}\nns2.fault. A {FAKE_TLD_2}\n"
    )
    return "".join(z)


def com_zone() -> str:
    z = [_soa("com.", "a.gtld-servers.net."), "@ NS a.gtld-servers.net.\n@ NS b.gtld-servers.net.\n"]
    z.append(
        "example NS ns1.example\nexample NS ns2.example\n"
        f"ns1.example A {EXAMPLE_COM_1}\nns2.example A {EXAMPLE_COM_2}\n"
        # one silent server and one good one
        "dead NS ns1.dead\ndead NS ns2.dead\n"
        f"ns1.dead A {SILENT}\nns2.dead A {EXAMPLE_COM_2}\n"
        # one refusing (nothing bound) address and one good one
        "deadr NS ns1.deadr\ndeadr NS ns2.deadr\n"
        f"ns1.deadr A {REFUSED}\nns2.deadr A {EXAMPLE_COM_2}\n"
        # every server dead
        "alldead NS ns1.alldead\nalldead NS ns2.alldead\n"
        f"ns1.alldead A {SILENT}\nns2.alldead A {REFUSED}\n"
        # a lame server (REFUSED: it does not serve the zone) and a good one
        "lame NS ns1.lame\nlame NS ns2.lame\n"
        f"ns1.lame A {LAME}\nns2.lame A {EXAMPLE_COM_2}\n"
        "alllame NS ns1.alllame\n"
        f"ns1.alllame A {LAME}\n"
        # a fake-server slot and a good NSD for the same zone
        "mixed NS ns1.mixed\nmixed NS ns2.mixed\n"
        f"ns1.mixed A {FAKE_MIXED}\nns2.mixed A {EXAMPLE_COM_2}\n"
        # TsuNAME-style cycle: each zone's only NS name lives in the other zone, no glue
        "cyc1 NS ns.cyc2.net.\n"
    )
    return "".join(z)


def net_zone() -> str:
    z = [_soa("net.", "a.gtld-servers.net."), "@ NS a.gtld-servers.net.\n@ NS b.gtld-servers.net.\n"]
    z.append(
        # authoritative here, not glue: the root-servers.net. and gtld-servers.net. names
        f"a.root-servers A {ROOT_A}\nb.root-servers A {ROOT_B}\n"
        f"a.gtld-servers A {GTLD_A}\nb.gtld-servers A {GTLD_B}\n"
        "example NS ns1.example\n"
        f"ns1.example A {EXAMPLE_NET}\n"
        "bulk NS ns.bulk\n"
        f"ns.bulk A {BULK}\n"
        "cyc2 NS ns.cyc1.com.\n"
    )
    return "".join(z)


def org_zone() -> str:
    z = [_soa("org.", "ns1.nic.org."), "@ NS ns1.nic.org.\n", f"ns1.nic A {NIC_ORG}\n"]
    # oob.org.: its only NS name is in example.net.: no glue possible here
    z.append("oob NS ns1.example.net.\n")
    # oobchain.org.: its NS name is inside oob.org., itself reachable only by name
    z.append("oobchain NS ns.oob.org.\n")
    for name in _many_zone_names():
        label = name.split(".")[0]
        z.append(f"{label} NS ns.{label}\nns.{label} A {MANY}\n")
    return "".join(z)


def example_tld_zone() -> str:
    return _soa("example.", "ns1.nic.org.") + "@ NS ns1.nic.org.\nwww A 192.0.2.200\n"


def example_com_zone() -> str:
    big = "".join(f'big TXT "{i:02d}-' + "x" * 56 + '"\n' for i in range(40))
    return _soa("example.com.", "ns1.example.com.") + (
        "@ NS ns1\n@ NS ns2\n"
        f"ns1 A {EXAMPLE_COM_1}\nns2 A {EXAMPLE_COM_2}\n"
        "@ MX 10 mail\n"
        '@ TXT "v=lab1"\n'
        "mail A 192.0.2.25\n"
        "www A 192.0.2.1\nwww A 192.0.2.11\nwww AAAA 2001:db8::1\n"
        "v4only A 192.0.2.2\n"
        '_sip._udp SRV 10 60 5060 sip\nsip A 192.0.2.50\n'
        # empty non-terminal: ent. has no data but a name below it exists
        "a.b.ent A 192.0.2.60\n"
        "*.wild A 192.0.2.80\n*.wild TXT \"wild\"\nexact.wild A 192.0.2.81\n"
        "alias CNAME www\n"
        "xalias CNAME www.example.net.\n"
        "dname DNAME example.net.\n"
        "loop1 CNAME loop2.example.net.\n"
        "dangling CNAME nothing.example.net.\n"
        + big
        + _chain_records("example.com.")
    )


def example_net_zone() -> str:
    return _soa("example.net.", "ns1.example.net.") + (
        "@ NS ns1\n"
        f"ns1 A {EXAMPLE_NET}\n"
        "www A 198.51.100.1\nwww AAAA 2001:db8:5::1\n"
        "loop2 CNAME loop1.example.com.\n"
        + _chain_records("example.net.")
    )


# CNAME chains that cross zones at every link: chain<N>-00 has N CNAMEs before the
# address, so every link is a new question to another zone.
CHAIN_LENGTHS = (8, 20)


def _chain_records(origin: str) -> str:
    """Links of chain ``chain<N>``: link i lives in example.com. for even i, example.net.
    for odd i; link N holds the final A record."""
    out = []
    for n in CHAIN_LENGTHS:
        for i in range(n + 1):
            here = "example.com." if i % 2 == 0 else "example.net."
            if here != origin:
                continue
            owner = f"chain{n}-{i:02d}"
            if i == n:
                out.append(f"{owner} A 192.0.2.{100 + n}\n")
            else:
                nxt = "example.com." if (i + 1) % 2 == 0 else "example.net."
                out.append(f"{owner} CNAME chain{n}-{i + 1:02d}.{nxt}\n")
    return "".join(out)


def oob_zone() -> str:
    return _soa("oob.org.", "ns1.example.net.") + (
        "@ NS ns1.example.net.\n"
        "www A 203.0.113.1\n"
        f"ns A {EXAMPLE_NET}\n"
    )


def oobchain_zone() -> str:
    return _soa("oobchain.org.", "ns.oob.org.") + "@ NS ns.oob.org.\nwww A 203.0.113.2\n"


def dead_zone(origin: str, ns1: str) -> str:
    return _soa(origin, f"ns2.{origin}") + (
        "@ NS ns1\n@ NS ns2\n"
        f"ns1 A {ns1}\nns2 A {EXAMPLE_COM_2}\n"
        f"www A 192.0.2.{100 if origin.startswith('dead.') else 101}\n"
    )


def lame_zone() -> str:
    return _soa("lame.com.", "ns2.lame.com.") + (
        "@ NS ns1\n@ NS ns2\n"
        f"ns1 A {LAME}\nns2 A {EXAMPLE_COM_2}\n"
        "www A 192.0.2.110\n"
    )


def mixed_zone() -> str:
    """mixed.com. as the NSD half serves it; a fake in the other slot may serve the same."""
    return _soa("mixed.com.", "ns2.mixed.com.") + (
        "@ NS ns1\n@ NS ns2\n"
        f"ns1 A {FAKE_MIXED}\nns2 A {EXAMPLE_COM_2}\n"
        "www A 192.0.2.120\n"
        + "".join(f"n{i:02d} A 192.0.2.{130 + i}\n" for i in range(40))
    )


def bulk_zone() -> str:
    names = "".join(f"h{i:03d} A 10.1.{i // 256}.{i % 256}\n" for i in range(BULK_NAMES))
    return _soa("bulk.net.", "ns.bulk.net.") + f"@ NS ns\nns A {BULK}\n" + names


def many_zone(origin: str) -> str:
    n = int(origin[1:4])
    return _soa(origin, f"ns.{origin}") + f"@ NS ns\nns A {MANY}\nwww A 10.2.{n // 256}.{n % 256}\n"


def zone_texts() -> dict[str, str]:
    """Every zone of the lab, by origin."""
    zones = {
        ".": root_zone(),
        "com.": com_zone(),
        "net.": net_zone(),
        "org.": org_zone(),
        "example.": example_tld_zone(),
        "example.com.": example_com_zone(),
        "example.net.": example_net_zone(),
        "oob.org.": oob_zone(),
        "oobchain.org.": oobchain_zone(),
        "dead.com.": dead_zone("dead.com.", SILENT),
        "deadr.com.": dead_zone("deadr.com.", REFUSED),
        "lame.com.": lame_zone(),
        "mixed.com.": mixed_zone(),
        "bulk.net.": bulk_zone(),
    }
    for name in _many_zone_names():
        zones[name] = many_zone(name)
    return zones


# The NSD processes: one per address, as one host per address on the Internet.
SERVERS: tuple[Server, ...] = (
    Server(ROOT_A, (".",), "a.root-servers.net."),
    Server(ROOT_B, (".",), "b.root-servers.net."),
    Server(GTLD_A, ("com.", "net."), "a.gtld-servers.net."),
    Server(GTLD_B, ("com.", "net."), "b.gtld-servers.net."),
    Server(NIC_ORG, ("org.", "example."), "ns1.nic.org."),
    Server(EXAMPLE_COM_1, ("example.com.",), "ns1.example.com."),
    Server(
        EXAMPLE_COM_2,
        ("example.com.", "dead.com.", "deadr.com.", "lame.com.", "mixed.com."),
        "ns2.example.com. and the good half of dead/deadr/lame/mixed.com.",
    ),
    Server(EXAMPLE_NET, ("example.net.", "oob.org.", "oobchain.org."), "ns1.example.net. (out-of-bailiwick NS of oob.org.)"),
    Server(BULK, ("bulk.net.",), "ns.bulk.net."),
    Server(MANY, tuple(_many_zone_names()), "ns.zNNN.org."),
    # Lame: delegated alllame.com. and lame.com. but serves neither: NSD answers REFUSED.
    Server(LAME, (), "ns1.lame.com. / ns1.alllame.com. (lame)"),
)
