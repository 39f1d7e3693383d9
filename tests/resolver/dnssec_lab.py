"""A signed DNS hierarchy for the DNSSEC tests, signed at test time (never stale).

Zones are signed bottom-up with Debian's BIND tools (``dnssec-keygen``, ``dnssec-signzone``),
ldns (``ldns-signzone`` for an NSEC3 zone with more iterations than BIND allows), and
dnspython for the KeyTrap zone whose keys collide on purpose. Each parent gets its
children's DS records (or deliberately wrong ones), and the root's DS is the trust anchor.

    zones, servers, anchor = build(workdir)
    lab = Lab.start(workdir, zone_texts=zones, servers=servers)
    r = resolver.Resolver(root_hints=lab.root_hints, port=lab.port, trust_anchor=anchor,
                          do_not_query_localhost=False)
"""
from __future__ import annotations

import random
import shutil
import subprocess
import time
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives.asymmetric import rsa

from dnslab import zones as Z
from dnslab.zones import Server

KEYGEN = shutil.which("dnssec-keygen") or "/usr/bin/dnssec-keygen"
SIGNZONE = shutil.which("dnssec-signzone") or "/usr/bin/dnssec-signzone"
LDNS_SIGNZONE = shutil.which("ldns-signzone") or "/usr/bin/ldns-signzone"

TTL = 3600
NEG = 300
BENCH_NAMES = 1300     # h000..h1299.bench.net.: distinct secure names for the benchmarks
KEYTRAP_KEYS = 40      # DNSKEYs sharing one key tag in keytrap.org.
KEYTRAP_SIGS = 40      # RRSIGs naming that tag over www.keytrap.org/A, none valid
MANY_DS = 12           # DS records of manyds.com. naming its key, none matching

ALG_NAMES = {8: "RSASHA256", 13: "ECDSAP256SHA256", 14: "ECDSAP384SHA384", 15: "ED25519"}


def bench_names() -> list[str]:
    """The secure names of ``bench.net.``, each with an A record and its own RRSIG."""
    return [f"h{i:03d}.bench.net." for i in range(BENCH_NAMES)]


def tools_missing() -> str | None:
    for tool in (KEYGEN, SIGNZONE, LDNS_SIGNZONE):
        if not Path(tool).exists():
            return f"{Path(tool).name} (Debian packages bind9-utils / ldnsutils)"
    return None


def _soa(origin: str, mname: str) -> str:
    return (f"$ORIGIN {origin}\n$TTL {TTL}\n@ IN SOA {mname} hostmaster.{origin if origin != '.' else ''}"
            f" 1 3600 600 86400 {NEG}\n")


# ---- zone texts (unsigned) -----------------------------------------------------------------

def _texts() -> dict[str, str]:
    t: dict[str, str] = {}
    t["."] = _soa(".", "a.root-servers.net.") + (
        "@ NS a.root-servers.net.\n@ NS b.root-servers.net.\n"
        "com. NS a.gtld-servers.net.\ncom. NS b.gtld-servers.net.\n"
        "net. NS a.gtld-servers.net.\nnet. NS b.gtld-servers.net.\n"
        "org. NS ns1.nic.org.\n"
        f"a.root-servers.net. A {Z.ROOT_A}\nb.root-servers.net. A {Z.ROOT_B}\n"
        f"a.gtld-servers.net. A {Z.GTLD_A}\nb.gtld-servers.net. A {Z.GTLD_B}\n"
        f"ns1.nic.org. A {Z.NIC_ORG}\n")
    t["com."] = _soa("com.", "a.gtld-servers.net.") + (
        "@ NS a.gtld-servers.net.\n@ NS b.gtld-servers.net.\n"
        "example NS ns1.example\nexample NS ns2.example\n"
        f"ns1.example A {Z.EXAMPLE_COM_1}\nns2.example A {Z.EXAMPLE_COM_1}\n"
        + "".join(f"{z} NS ns.{z}\nns.{z} A {Z.EXAMPLE_COM_2}\n"
                  for z in ("insecure", "badds", "expired", "altered", "manyds", "unkalg",
                            "twoalg")))
    t["net."] = _soa("net.", "a.gtld-servers.net.") + (
        "@ NS a.gtld-servers.net.\n@ NS b.gtld-servers.net.\n"
        f"a.root-servers A {Z.ROOT_A}\nb.root-servers A {Z.ROOT_B}\n"
        f"a.gtld-servers A {Z.GTLD_A}\nb.gtld-servers A {Z.GTLD_B}\n"
        f"example NS ns1.example\nns1.example A {Z.EXAMPLE_NET}\n"
        f"n3iter NS ns.n3iter\nns.n3iter A {Z.EXAMPLE_NET}\n"
        f"bench NS ns.bench\nns.bench A {Z.MANY}\n")
    t["org."] = _soa("org.", "ns1.nic.org.") + (
        f"@ NS ns1.nic.org.\nns1.nic A {Z.NIC_ORG}\n"
        f"unsigned NS ns.unsigned\nns.unsigned A {Z.EXAMPLE_NET}\n"
        f"keytrap NS ns.keytrap\nns.keytrap A {Z.BULK}\n")
    t["example.com."] = _soa("example.com.", "ns1.example.com.") + (
        f"@ NS ns1\n@ NS ns2\nns1 A {Z.EXAMPLE_COM_1}\nns2 A {Z.EXAMPLE_COM_1}\n"
        "@ MX 10 mail\nmail A 192.0.2.25\n"
        "www A 192.0.2.1\nwww A 192.0.2.11\nwww AAAA 2001:db8::1\n"
        "a.b.ent A 192.0.2.60\n"
        "*.wild A 192.0.2.80\nexact.wild A 192.0.2.81\n"
        "alias CNAME www\nxalias CNAME www.example.net.\n"
        "dname DNAME example.net.\n*.wc CNAME www\n")
    t["example.net."] = _soa("example.net.", "ns1.example.net.") + (
        f"@ NS ns1\nns1 A {Z.EXAMPLE_NET}\n"
        "www A 198.51.100.1\n*.wild TXT \"wild3\"\nsub.deep A 198.51.100.7\n")
    t["n3iter.net."] = _soa("n3iter.net.", "ns.n3iter.net.") + (
        f"@ NS ns\nns A {Z.EXAMPLE_NET}\nwww A 198.51.100.9\n")
    t["bench.net."] = _soa("bench.net.", "ns.bench.net.") + (
        f"@ NS ns\nns A {Z.MANY}\n"
        + "".join(f"h{i:03d} A 10.9.{i // 256}.{i % 256}\n" for i in range(BENCH_NAMES)))
    for z, addr in (("insecure.com.", "192.0.2.150"), ("badds.com.", "192.0.2.151"),
                    ("expired.com.", "192.0.2.152"), ("altered.com.", "192.0.2.153"),
                    ("manyds.com.", "192.0.2.155"), ("unkalg.com.", "192.0.2.156")):
        t[z] = _soa(z, f"ns.{z}") + f"@ NS ns\nns A {Z.EXAMPLE_COM_2}\nwww A {addr}\n"
    t["twoalg.com."] = _soa("twoalg.com.", "ns.twoalg.com.") + (
        f"@ NS ns\nns A {Z.EXAMPLE_COM_2}\nwww A 192.0.2.157\ndown A 192.0.2.158\n")
    t["keytrap.org."] = _soa("keytrap.org.", "ns.keytrap.org.") + (
        f"@ NS ns\nns A {Z.BULK}\nwww A 203.0.113.66\n")
    t["unsigned.org."] = _soa("unsigned.org.", "ns.unsigned.org.") + (
        f"@ NS ns\nns A {Z.EXAMPLE_NET}\nwww A 203.0.113.50\n")
    return t


SERVERS: tuple[Server, ...] = (
    Server(Z.ROOT_A, (".",), "signed root"),
    Server(Z.ROOT_B, (".",), "signed root"),
    Server(Z.GTLD_A, ("com.", "net."), "signed com (NSEC3 opt-out) and net (NSEC)"),
    Server(Z.GTLD_B, ("com.", "net."), "signed com and net"),
    Server(Z.NIC_ORG, ("org.",), "signed org (NSEC)"),
    Server(Z.EXAMPLE_COM_1, ("example.com.",), "signed example.com (NSEC)"),
    Server(Z.EXAMPLE_COM_2, ("insecure.com.", "badds.com.", "expired.com.", "altered.com.",
                             "manyds.com.", "unkalg.com.", "twoalg.com."),
           "unsigned / wrong DS / expired / altered / many wrong DS / unknown DS algorithm / "
           "two algorithms, one left out over down.twoalg.com/A"),
    Server(Z.EXAMPLE_NET, ("example.net.", "unsigned.org.", "n3iter.net."),
           "example.net (NSEC3), unsigned.org, n3iter.net (NSEC3, 200 iterations)"),
    Server(Z.BULK, ("keytrap.org.",), "KeyTrap: colliding keys and signatures"),
    Server(Z.MANY, ("bench.net.",), "bench.net: many secure names"),
)

#: How each zone is signed: (algorithm, mode) with mode nsec | nsec3 | nsec3-optout |
#: nsec3-200 (ldns) | expired | altered | unsigned | keytrap | twoalg (a second key, of
#: Ed25519, signs too, and its RRSIG over down.twoalg.com/A is taken out)
PLAN = {
    "example.com.": (13, "nsec"),
    "example.net.": (15, "nsec3"),
    "n3iter.net.": (13, "nsec3-200"),
    "bench.net.": (13, "nsec"),
    "insecure.com.": (None, "unsigned"),
    "unsigned.org.": (None, "unsigned"),
    "badds.com.": (13, "nsec"),
    "expired.com.": (13, "expired"),
    "altered.com.": (13, "altered"),
    "manyds.com.": (13, "nsec"),
    "unkalg.com.": (None, "unsigned"),
    "twoalg.com.": (13, "twoalg"),
    "keytrap.org.": (8, "keytrap"),
    "com.": (8, "nsec3-optout"),
    "net.": (13, "nsec"),
    "org.": (14, "nsec"),
    ".": (13, "nsec"),
}
CHILDREN = {
    ".": ["com.", "net.", "org."],
    "com.": ["example.com.", "insecure.com.", "badds.com.", "expired.com.", "altered.com.",
             "manyds.com.", "unkalg.com.", "twoalg.com."],
    "net.": ["example.net.", "n3iter.net.", "bench.net."],
    "org.": ["unsigned.org.", "keytrap.org."],
}


def _run(cmd: list[str], cwd: Path) -> str:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr.strip()}")
    return p.stdout


def _keygen(origin: str, alg: int, d: Path) -> Path:
    cmd = [KEYGEN, "-q", "-K", str(d), "-a", ALG_NAMES[alg], "-f", "KSK", "-n", "ZONE"]
    if alg == 8:
        cmd += ["-b", "2048"]
    name = _run(cmd + [origin], d).strip()
    return d / f"{name}.key"


def _dnskey_from_file(path: Path) -> dns.rdata.Rdata:
    for line in path.read_text().splitlines():
        if line.startswith(";") or "DNSKEY" not in line:
            continue
        tok = line.split()
        i = tok.index("DNSKEY")
        return dns.rdata.from_text("IN", "DNSKEY", " ".join(tok[i + 1:]))
    raise RuntimeError(f"no DNSKEY in {path}")


def _sign_bind(origin: str, text: str, alg: int, mode: str, d: Path) -> tuple[str, list]:
    zd = d / (origin.strip(".") or "root")
    zd.mkdir(parents=True, exist_ok=True)
    keyfile = _keygen(origin, alg, zd)
    keyfiles = [keyfile] + ([_keygen(origin, 15, zd)] if mode == "twoalg" else [])
    src = zd / "zone"
    src.write_text(text)
    out = zd / "zone.signed"
    if mode == "nsec3-200":
        _run([LDNS_SIGNZONE, "-n", "-t", "200", "-s", "abcd", "-o", origin, "-f", str(out),
              str(src), str(keyfile)[:-4]], zd)
    else:
        cmd = [SIGNZONE, "-S", "-z", "-q", "-K", str(zd), "-d", str(zd), "-o", origin,
               "-f", str(out)]
        if mode == "nsec3":
            cmd += ["-3", "-", "-H", "0"]
        elif mode == "nsec3-optout":
            cmd += ["-3", "beef", "-H", "5", "-A"]
        elif mode == "expired":
            cmd += ["-P", "-s", "now-7200", "-e", "now-3600"]
        _run(cmd + [str(src)], zd)
    signed = out.read_text()
    if mode == "altered":
        # a record changed after signing: its RRSIG no longer matches
        signed = signed.replace("192.0.2.153", "192.0.2.154")
        assert "192.0.2.154" in signed
    if mode == "twoalg":
        signed = _without_rrsig(signed, origin, f"down.{origin}", dns.rdatatype.A, 15)
    return signed, [_dnskey_from_file(k) for k in keyfiles]


def _without_rrsig(text: str, origin: str, owner: str, covered: int, algorithm: int) -> str:
    """The zone ``text`` without the RRSIGs of ``algorithm`` over ``owner``/``covered``."""
    z = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
    node = z.get_node(owner)
    sigs = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, covered)
    kept = [rd for rd in sigs if rd.algorithm != algorithm]
    assert len(kept) < len(sigs), f"no RRSIG of algorithm {algorithm} over {owner}"
    node.delete_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, covered)
    new = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, covered, create=True)
    new.update_ttl(sigs.ttl)
    for rd in kept:
        new.add(rd)
    return z.to_text(relativize=False)


def _colliding_rsa_key(tag: int, rng: random.Random) -> dns.rdata.Rdata:
    """An RSA DNSKEY (ZONE flag, algorithm 8) whose key tag is ``tag``: a random odd modulus
    whose last two bytes are chosen to make the checksum come out right."""
    while True:
        mod = bytearray(rng.getrandbits(2048).to_bytes(256, "big"))
        mod[0] |= 0x80
        mod[-2:] = b"\x00\x00"
        key = b"\x03\x01\x00\x01" + bytes(mod)
        rd0 = dns.rdtypes.ANY.DNSKEY.DNSKEY("IN", "DNSKEY", 256, 3, 8, key)
        wire = rd0.to_digestable()
        ac = 0
        for i, b in enumerate(wire):
            ac += b << 8 if i % 2 == 0 else b
        high = ac >> 16          # the fold adds the high half back in; it barely moves with v
        for carry in (high, high + 1, high - 1):
            v = (tag - ac - carry) % 65536
            if v % 2 == 0:
                continue
            mod[-2:] = v.to_bytes(2, "big")
            rd = dns.rdtypes.ANY.DNSKEY.DNSKEY("IN", "DNSKEY", 256, 3, 8,
                                               b"\x03\x01\x00\x01" + bytes(mod))
            if dns.dnssec.key_id(rd) == tag:
                return rd


def _keytrap_zone(origin: str, text: str) -> tuple[str, list]:
    """keytrap.org.: a valid KSK over the DNSKEY set, which also holds KEYTRAP_KEYS RSA keys
    sharing one key tag; www/A carries KEYTRAP_SIGS signatures naming that tag, none valid."""
    rng = random.Random(7)
    name = dns.name.from_text(origin)
    ksk_priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ksk = dns.dnssec.make_dnskey(ksk_priv.public_key(), dns.dnssec.Algorithm.RSASHA256,
                                 flags=257)
    zsk_priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    zsk = dns.dnssec.make_dnskey(zsk_priv.public_key(), dns.dnssec.Algorithm.RSASHA256)
    tag = (dns.dnssec.key_id(zsk) + 1) % 65536
    fakes = [_colliding_rsa_key(tag, rng) for _ in range(KEYTRAP_KEYS)]
    zone = dns.zone.from_text(text, origin, relativize=False)
    now = int(time.time())
    inception, expiration = now - 3600, now + 30 * 86400
    keys_rrset = dns.rrset.from_rdata_list(name, TTL, [ksk, zsk] + fakes)
    def sigset(owner, ttl, sigs):
        return dns.rrset.from_rdata_list(owner, ttl, sigs)

    out = [keys_rrset,
           sigset(name, TTL, [dns.dnssec.sign(keys_rrset, ksk_priv, name, ksk, inception,
                                              expiration)])]
    for node_name, node in zone.nodes.items():
        for rds in node.rdatasets:
            rrset = dns.rrset.from_rdata_list(node_name, rds.ttl, list(rds))
            out.append(rrset)
            if node_name == name or not node_name.labels[0] == b"www":
                out.append(sigset(node_name, rds.ttl, [
                    dns.dnssec.sign(rrset, zsk_priv, name, zsk, inception, expiration)]))
            else:
                real = dns.dnssec.sign(rrset, zsk_priv, name, zsk, inception, expiration)
                bad = [real.replace(key_tag=tag, signature=rng.randbytes(256))
                       for _ in range(KEYTRAP_SIGS)]
                out.append(dns.rrset.from_rdata_list(node_name, rds.ttl, bad))
    lines = [f"$ORIGIN {origin}\n"]
    for rrset in out:
        lines.append(rrset.to_text() + "\n")
    return "".join(lines), [ksk]


def build(workdir: Path) -> tuple[dict[str, str], tuple[Server, ...], Path]:
    """(signed zone texts, servers, path of the root's DS trust-anchor file)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    texts = _texts()
    signed: dict[str, str] = {}
    keys: dict[str, list] = {}
    done: set[str] = set()

    def sign(origin: str) -> None:
        for child in CHILDREN.get(origin, ()):
            sign(child)
            ds_lines = _ds_lines(child, keys.get(child, []))
            texts[origin] += ds_lines
        alg, mode = PLAN[origin]
        if mode == "unsigned":
            signed[origin] = texts[origin]
        elif mode == "keytrap":
            signed[origin], keys[origin] = _keytrap_zone(origin, texts[origin])
        else:
            signed[origin], keys[origin] = _sign_bind(origin, texts[origin], alg, mode, workdir)
        done.add(origin)

    def _ds_lines(child: str, child_keys: list) -> str:
        out = []
        if child == "unkalg.com.":      # a DS for an algorithm nobody implements: insecure
            out.append(f"{child} {TTL} IN DS 4242 200 2 {'ab' * 32}\n")
        for k in child_keys:
            ds = dns.dnssec.make_ds(child, k, "SHA256")
            if child == "badds.com.":
                ds = ds.replace(digest=bytes(b ^ 0xFF for b in ds.digest))   # wrong DS
            if child == "manyds.com.":  # many DS naming the key, none matching it
                for i in range(MANY_DS):
                    bad = ds.replace(digest=bytes([i]) + ds.digest[1:] if ds.digest[0] != i
                                     else bytes([i + 1]) + ds.digest[1:])
                    out.append(f"{child} {TTL} IN DS {bad.to_text()}\n")
                continue
            out.append(f"{child} {TTL} IN DS {ds.to_text()}\n")
        return "".join(out)

    sign(".")
    anchor = workdir / "root-anchor.ds"
    anchor.write_text(_ds_lines(".", keys["."]))
    return signed, SERVERS, anchor
