"""RRSIG checks and DS matching on the resolver's record tuples, within a budget.

Records are ``(owner wire, type, class, ttl, rdata wire)`` as ``resolver.wire.codec`` parses them
(names in rdata already decompressed). dnspython (over ``cryptography``) does the public-key
arithmetic; the choice of which signature to try against which key, and how many times, is
ours: that is where KeyTrap lives.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import dns.dnssec
import dns.dnssecalgs
import dns.exception
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from cryptography.exceptions import InvalidSignature

from resolver.wire.codec import label_count

RRSIG, DNSKEY, DS = 46, 48, 43

#: Algorithms validated (RFC 8624 "MUST/RECOMMENDED validate", as dnspython's default policy).
#: Anything else (RSAMD5, DSA, GOST, private, unknown) makes a zone insecure (RFC 6840 5.2).
SUPPORTED_ALGORITHMS = frozenset({5, 7, 8, 10, 13, 14, 15, 16})
#: DS digest types: SHA-1, SHA-256, SHA-384 (GOST and unknown ones are ignored).
DIGESTS = {1: hashlib.sha1, 2: hashlib.sha256, 4: hashlib.sha384}

#: Types whose rdata holds names that are lower-cased in canonical form (RFC 4034 6.2,
#: RFC 6840 5.1: not NSEC's next name).
_LOWERED = frozenset({2, 3, 4, 5, 6, 7, 8, 9, 12, 14, 15, 17, 18, 21, 24, 26, 33, 35, 36,
                      39, 46})

ZONE_FLAG, REVOKE_FLAG, SEP_FLAG = 0x0100, 0x0080, 0x0001


class Bogus(Exception):
    """Validation failed; ``ede`` is the RFC 8914 Extended DNS Error code to report."""

    def __init__(self, reason: str, ede: int = 6) -> None:
        super().__init__(reason)
        self.ede = ede


# RFC 8914 codes used here
EDE_UNSUPPORTED_ALG, EDE_BOGUS, EDE_EXPIRED, EDE_NOT_YET_VALID = 1, 6, 7, 8
EDE_DNSKEY_MISSING, EDE_RRSIGS_MISSING, EDE_NO_ZONE_KEY, EDE_NSEC_MISSING = 9, 10, 11, 12


@dataclass
class Sig:
    """An RRSIG's fields (wire rdata split once)."""

    covered: int
    algorithm: int
    labels: int
    original_ttl: int
    expiration: int
    inception: int
    key_tag: int
    signer: bytes            # wire, as sent
    signature: bytes
    header: bytes            # the rdata up to and including the signer (signed data prefix)


def parse_sig(rdata: bytes) -> Sig | None:
    if len(rdata) < 19:
        return None
    covered, alg, labels, ottl, exp, inc, tag = struct.unpack_from("!HBBIIIH", rdata)
    pos = 18
    while True:
        if pos >= len(rdata):
            return None
        c = rdata[pos]
        if c == 0:
            pos += 1
            break
        if c > 63:
            return None
        pos += 1 + c
    signer = rdata[18:pos]
    return Sig(covered, alg, labels, ottl, exp, inc, tag, signer, rdata[pos:],
               rdata[:18] + signer.lower())


class Key:
    """A DNSKEY with its tag and parsed public key (parsed once, kept in the key cache)."""

    __slots__ = ("rdata", "wire", "tag", "algorithm", "flags", "_pub")

    def __init__(self, rdata) -> None:
        self.rdata = rdata
        self.wire = rdata.to_digestable()
        self.tag = dns.dnssec.key_id(rdata)
        self.algorithm = int(rdata.algorithm)
        self.flags = rdata.flags
        self._pub = None

    @classmethod
    def from_wire(cls, wire: bytes) -> "Key":
        return cls(dns.rdata.from_wire(dns.rdataclass.IN, DNSKEY, wire, 0, len(wire)))

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            if self._pub is None:
                priv = dns.dnssecalgs.get_algorithm_cls_from_dnskey(self.rdata)
                self._pub = priv.public_cls.from_dnskey(self.rdata)
            self._pub.verify(signature, data)
            return True
        except InvalidSignature:
            return False
        except Exception:       # a key or signature the crypto library rejects: a failed check
            return False


def canonical_rdata(rdtype: int, rdclass: int, rdata: bytes) -> bytes:
    if rdtype not in _LOWERED:
        return rdata
    try:
        return dns.rdata.from_wire(rdclass, rdtype, rdata, 0, len(rdata)).to_digestable()
    except dns.exception.DNSException:
        return rdata


def signed_data(sig: Sig, owner: bytes, rdtype: int, rdclass: int, rdatas: list[bytes]) -> bytes:
    """RFC 4034 3.1.8.1: the RRSIG rdata without its signature, then the rrset in canonical
    form and order, with the original TTL and the wildcard owner when ``labels`` says so."""
    name = owner.lower()
    n = label_count(name)
    if sig.labels < n:
        # strip leading labels down to ``labels`` and put "*" in front
        for _ in range(n - sig.labels):
            name = name[1 + name[0]:]
        name = b"\x01*" + name
    fixed = struct.pack("!HHI", rdtype, rdclass, sig.original_ttl)
    parts = [sig.header]
    canon = sorted({canonical_rdata(rdtype, rdclass, rd) for rd in rdatas})
    for rd in canon:
        parts += (name, fixed, struct.pack("!H", len(rd)), rd)
    return b"".join(parts)


class Counter:
    """Per-client-query work counters (checked against the limits by the validator)."""

    def __init__(self) -> None:
        self.sig_checks = 0
        self.rrsets = 0
        self.suspends = 0
        self.nsec3_hashes = 0


def verify_rrset(owner: bytes, rdtype: int, rdclass: int, rdatas: list[bytes],
                 sig_records: list[tuple], zone: bytes, keys: list[Key], now: float,
                 limits, counter: Counter) -> Sig:
    """Returns the RRSIG that verified the rrset with one of ``keys`` (zone ``zone``'s);
    raises Bogus otherwise. Tries at most ``dnssec_max_sig_checks_per_rrset`` (signature,
    key) pairs and ``dnssec_max_key_tag_collisions`` keys per signature."""
    lzone = zone.lower()
    nlabels = label_count(owner)
    checks = 0
    why, ede = "no RRSIG", EDE_RRSIGS_MISSING
    skew = limits.dnssec_clock_skew
    cap = limits.dnssec_max_sig_checks_per_rrset
    for rec in sig_records:
        sig = parse_sig(rec[4])
        if sig is None or sig.covered != rdtype or sig.signer.lower() != lzone:
            continue
        if sig.labels > nlabels:
            why, ede = "RRSIG labels exceed its owner's", EDE_BOGUS
            continue
        if sig.algorithm not in SUPPORTED_ALGORITHMS:
            why, ede = f"RRSIG algorithm {sig.algorithm} not supported", EDE_BOGUS
            continue
        if not _in_window(sig, now, skew):
            if _serial_lt(sig.expiration, now):
                why, ede = "signature expired", EDE_EXPIRED
            else:
                why, ede = "signature not yet valid", EDE_NOT_YET_VALID
            continue
        candidates = [k for k in keys if k.tag == sig.key_tag and k.algorithm == sig.algorithm]
        if not candidates:
            why, ede = f"no DNSKEY with tag {sig.key_tag}", EDE_DNSKEY_MISSING
            continue
        data = None
        for k in candidates[:limits.dnssec_max_key_tag_collisions]:
            if checks >= cap:
                raise Bogus(f"more than {cap} signature checks for one rrset (KeyTrap budget)")
            checks += 1
            counter.sig_checks += 1
            if data is None:
                data = signed_data(sig, owner, rdtype, rdclass, rdatas)
            if k.verify(sig.signature, data):
                return sig
        why, ede = "signature does not verify", EDE_BOGUS
    raise Bogus(f"{why} ({dns.rdatatype.to_text(rdtype)})", ede)


def _serial_lt(t: int, now: float) -> bool:
    """RFC 4034 3.1.5: times are serial numbers (mod 2**32) relative to now."""
    n = int(now) & 0xFFFFFFFF
    return ((t - n) & 0xFFFFFFFF) > 0x7FFFFFFF


def _in_window(sig: Sig, now: float, skew: int) -> bool:
    return not _serial_lt(sig.expiration, now - skew) and _serial_lt(sig.inception, now + skew + 1)


def ds_matches(ds, key: Key, owner: bytes) -> bool:
    """The DS digest over owner|DNSKEY rdata equals the DS's (RFC 4034 5.1.4)."""
    h = DIGESTS.get(ds.digest_type)
    if h is None:
        return False
    return h(owner.lower() + key.wire).digest() == ds.digest


def usable_ds(ds_list: list) -> list:
    """DS records we can use: supported key algorithm and digest; with a SHA-256 one present,
    SHA-1 ones are ignored (RFC 4509 3)."""
    ok = [d for d in ds_list if d.algorithm in SUPPORTED_ALGORITHMS and d.digest_type in DIGESTS]
    if any(d.digest_type == 2 for d in ok):
        ok = [d for d in ok if d.digest_type != 1]
    return ok
