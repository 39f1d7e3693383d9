# cython: language_level=3, boundscheck=False, wraparound=False
# Every read below checks the offset against the length of the bytes object it reads first.
"""RRSIG checks and DS matching on the resolver's record tuples, within a budget.

Records are ``(owner wire, type, class, ttl, rdata wire)`` as ``resolver.wire.codec`` parses them
(names in rdata already decompressed). The signed data (RFC 4034 3.1.8.1: the RRSIG's fields,
then the rrset in canonical form and order) is built here in C, in one buffer; ``cryptography``
(OpenSSL) does the public-key arithmetic. A :class:`Key` parses its DNSKEY once and keeps the
loaded public key, so a check costs one call into OpenSSL. The choice of which signature to
try against which key, and how many times, is ours: that is where KeyTrap lives.
"""
import hashlib
import sys

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcpy

import dns.rdatatype

from resolver.wire.names cimport lower, u16, u32

RRSIG, DNSKEY, DS = 46, 48, 43

#: Algorithms validated (RFC 8624 "MUST/RECOMMENDED validate").
#: Anything else (RSAMD5, DSA, GOST, private, unknown) makes a zone insecure (RFC 6840 5.2).
SUPPORTED_ALGORITHMS = frozenset({5, 7, 8, 10, 13, 14, 15, 16})
#: DS digest types: SHA-1, SHA-256, SHA-384 (GOST and unknown ones are ignored).
DIGESTS = {1: hashlib.sha1, 2: hashlib.sha256, 4: hashlib.sha384}

ZONE_FLAG, REVOKE_FLAG, SEP_FLAG = 0x0100, 0x0080, 0x0001


class Bogus(Exception):
    """Validation failed; ``ede`` is the RFC 8914 Extended DNS Error code to report."""

    def __init__(self, reason: str, ede: int = 6) -> None:
        super().__init__(reason)
        self.ede = ede


# RFC 8914 codes used here
EDE_UNSUPPORTED_ALG, EDE_BOGUS, EDE_EXPIRED, EDE_NOT_YET_VALID = 1, 6, 7, 8
EDE_DNSKEY_MISSING, EDE_RRSIGS_MISSING, EDE_NO_ZONE_KEY, EDE_NSEC_MISSING = 9, 10, 11, 12






cdef class Sig:
    """An RRSIG's fields (wire rdata split once)."""

    cdef readonly unsigned int covered
    cdef readonly unsigned int algorithm
    cdef readonly unsigned int labels
    cdef readonly unsigned int original_ttl
    cdef readonly unsigned int expiration
    cdef readonly unsigned int inception
    cdef readonly unsigned int key_tag
    cdef readonly bytes signer        # wire, as sent
    cdef readonly bytes signature
    cdef readonly bytes header        # the rdata up to and including the signer, lower-cased:
                                      # the signed data's prefix


cdef Py_ssize_t _name_end(const unsigned char* p, Py_ssize_t n, Py_ssize_t pos,
                          bint* upper) noexcept:
    """The offset past the uncompressed name at ``pos`` (-1 if it runs past ``n`` or holds a
    pointer); ``upper`` set when it has a capital letter."""
    cdef unsigned int c
    cdef Py_ssize_t i
    while True:
        if pos >= n:
            return -1
        c = p[pos]
        if c == 0:
            return pos + 1
        if c > 63 or pos + 1 + c > n:
            return -1
        for i in range(pos + 1, pos + 1 + c):
            if 65 <= p[i] <= 90:
                upper[0] = True
        pos += 1 + c


cdef Py_ssize_t _signer_end(const unsigned char* p, Py_ssize_t n) noexcept:
    """The offset past an RRSIG rdata's signer name (uncompressed, after the 18 octets of
    fixed fields), or -1 when the rdata is malformed."""
    cdef bint upper = False
    return _name_end(p, n, 18, &upper) if n >= 19 else -1


cpdef bytes signer_of(bytes rdata):
    """An RRSIG rdata's signer name (wire, as sent), or None when the rdata is malformed."""
    cdef Py_ssize_t end = _signer_end(<const unsigned char*>PyBytes_AS_STRING(rdata),
                                      PyBytes_GET_SIZE(rdata))
    return rdata[18:end] if end > 0 else None


cpdef Sig parse_sig(bytes rdata):
    """The RRSIG rdata's fields, or None when it is malformed."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(rdata)
    cdef Py_ssize_t pos = _signer_end(p, PyBytes_GET_SIZE(rdata))
    if pos < 0:
        return None
    cdef Sig s = Sig.__new__(Sig)
    s.covered = u16(p)
    s.algorithm = p[2]
    s.labels = p[3]
    s.original_ttl = u32(p + 4)
    s.expiration = u32(p + 8)
    s.inception = u32(p + 12)
    s.key_tag = u16(p + 16)
    s.signer = rdata[18:pos]
    s.signature = rdata[pos:]
    s.header = rdata[:18] + lower(s.signer)
    return s


# ---- public keys -----------------------------------------------------------------------------

#: RSA algorithms (RFC 3110, 5702) and the ECDSA ones with their integers' size (RFC 6605)
_RSA = frozenset({5, 7, 8, 10})
_ECDSA_SIZE = {13: 32, 14: 48}
_NO_KEY = object()      # a DNSKEY the crypto library cannot load: every check with it fails


cdef class _Crypto:
    """``cryptography``'s classes and schemes the checks use. The library is imported by a
    validator when it is made (``load_crypto``), or at the first key loaded, not with this
    module: a resolver that does not validate does not carry it."""

    cdef readonly object ec, ed25519, ed448, rsa, pkcs1, rsa_hashes, ecdsa

    def __init__(self) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
        self.ec, self.ed25519, self.ed448, self.rsa = ec, ed25519, ed448, rsa
        self.pkcs1 = padding.PKCS1v15()
        self.rsa_hashes = {5: hashes.SHA1(), 7: hashes.SHA1(), 8: hashes.SHA256(),
                           10: hashes.SHA512()}
        self.ecdsa = {13: (ec.SECP256R1(), ec.ECDSA(hashes.SHA256())),
                      14: (ec.SECP384R1(), ec.ECDSA(hashes.SHA384()))}


cdef _Crypto _crypto = None


cdef inline _Crypto _library():
    global _crypto
    if _crypto is None:
        _crypto = _Crypto()
    return _crypto


def load_crypto() -> None:
    """Imports the crypto library now: a validator does when it is made, so that the daemon
    has it before it drops its privileges and the first check does not pay for it."""
    _library()


cdef int _key_tag(bytes wire) noexcept:
    """RFC 4034 Appendix B (and B.1 for RSAMD5, algorithm 1)."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(wire)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(wire), i
    cdef unsigned long ac = 0
    if p[3] == 1:
        return u16(p + n - 3) if n >= 7 else 0
    for i in range(n):
        ac += (p[i] << 8) if (i & 1) == 0 else p[i]
    ac += (ac >> 16) & 0xFFFF
    return ac & 0xFFFF


cdef object _load_key(int algorithm, bytes key):
    """The ``cryptography`` public key of a DNSKEY's public-key field."""
    cdef Py_ssize_t n = len(key), off, elen
    cdef _Crypto c = _library()
    if algorithm in _RSA:       # RFC 3110 2: exponent length, exponent, modulus
        if n < 3:
            raise ValueError("RSA key too short")
        if key[0] == 0:
            elen, off = (key[1] << 8) | key[2], 3
        else:
            elen, off = key[0], 1
        if elen == 0 or off + elen >= n:
            raise ValueError("RSA key too short")
        return c.rsa.RSAPublicNumbers(int.from_bytes(key[off:off + elen], "big"),
                                      int.from_bytes(key[off + elen:], "big")).public_key()
    if algorithm in _ECDSA_SIZE:       # RFC 6605 4: the point's x and y, uncompressed
        if n != 2 * _ECDSA_SIZE[algorithm]:
            raise ValueError("ECDSA key of the wrong length")
        return c.ec.EllipticCurvePublicKey.from_encoded_point(c.ecdsa[algorithm][0],
                                                              b"\x04" + key)
    if algorithm == 15:
        return c.ed25519.Ed25519PublicKey.from_public_bytes(key)
    if algorithm == 16:
        return c.ed448.Ed448PublicKey.from_public_bytes(key)
    raise ValueError(f"algorithm {algorithm} not supported")


cdef bytes _ecdsa_der(bytes sig, Py_ssize_t size):
    """RFC 6605 4's r|s as the DER SEQUENCE of two INTEGERs OpenSSL reads (RFC 3279 2.2.3);
    None if the signature is not exactly two ``size``-octet integers."""
    if PyBytes_GET_SIZE(sig) != 2 * size:
        return None
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(sig)
    cdef Py_ssize_t r0 = 0, s0 = size, rl, sl, rpad, spad, pos
    while r0 < size - 1 and p[r0] == 0:
        r0 += 1
    while s0 < 2 * size - 1 and p[s0] == 0:
        s0 += 1
    rl, sl = size - r0, 2 * size - s0
    rpad, spad = p[r0] >> 7, p[s0] >> 7          # a leading zero keeps the integer positive
    cdef Py_ssize_t body = 4 + rl + rpad + sl + spad          # < 128: a one-octet length
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 2 + body)
    cdef unsigned char* q = <unsigned char*>PyBytes_AS_STRING(out)
    q[0], q[1], q[2], q[3] = 0x30, body, 0x02, rl + rpad
    pos = 4
    if rpad:
        q[pos] = 0
        pos += 1
    memcpy(q + pos, p + r0, rl)
    pos += rl
    q[pos], q[pos + 1] = 0x02, sl + spad
    pos += 2
    if spad:
        q[pos] = 0
        pos += 1
    memcpy(q + pos, p + s0, sl)
    return out


cdef class Key:
    """A DNSKEY: its rdata, tag, algorithm and flags read once, and its public key loaded at
    the first check and kept (the key lives as long as its zone's entry in the key cache)."""

    cdef public bytes wire             # the rdata (canonical: a DNSKEY holds no name)
    cdef public int tag
    cdef public int algorithm
    cdef public int flags
    cdef public int protocol
    cdef object _pub

    def __init__(self, rdata) -> None:
        """``rdata``: the DNSKEY's wire rdata, or a dnspython DNSKEY rdata."""
        wire = rdata if isinstance(rdata, bytes) else rdata.to_digestable()
        if len(wire) < 4:
            raise ValueError("DNSKEY rdata shorter than its fixed fields")
        self.wire = wire
        self.flags = (wire[0] << 8) | wire[1]
        self.protocol = wire[2]
        self.algorithm = wire[3]
        self.tag = _key_tag(wire)
        self._pub = None

    def __sizeof__(self):
        """The object and its rdata, which it does not show the collector (what OpenSSL
        holds for the public key is not seen)."""
        return object.__sizeof__(self) + sys.getsizeof(self.wire)

    @classmethod
    def from_wire(cls, bytes wire):
        return cls(wire)

    cpdef bint signs_zone(self):
        """The key may verify its zone's signatures: the Zone Key flag set, not revoked
        (RFC 5011 2.1) and protocol 3 (RFC 4034 2.1.2: any other value makes the key invalid
        for verification)."""
        return (self.flags & 0x0100) != 0 and (self.flags & 0x0080) == 0 \
            and self.protocol == 3                        # ZONE_FLAG, REVOKE_FLAG

    cpdef bint verify(self, bytes signature, bytes data):
        """``signature`` (RRSIG wire form) is this key's over ``data``. A key or signature the
        crypto library rejects is a failed check, never an exception."""
        cdef int alg = self.algorithm
        if self._pub is None:
            try:
                self._pub = _load_key(alg, self.wire[4:])
            except Exception:
                self._pub = _NO_KEY
        if self._pub is _NO_KEY:
            return False
        cdef _Crypto c = _crypto          # loaded with the key above
        try:
            if alg == 13 or alg == 14:
                der = _ecdsa_der(signature, _ECDSA_SIZE[alg])
                if der is None:
                    return False
                self._pub.verify(der, data, c.ecdsa[alg][1])
            elif alg == 15 or alg == 16:
                self._pub.verify(signature, data)
            else:
                self._pub.verify(signature, data, c.pkcs1, c.rsa_hashes[alg])
            return True
        except Exception:                 # InvalidSignature, or a signature it cannot read
            return False


# ---- the signed data -------------------------------------------------------------------------

cdef inline bint _lowered_layout(unsigned int t, Py_ssize_t* pre, int* names,
                                 Py_ssize_t* post) noexcept:
    """Where the names lie in the rdata of the types whose names are lower-cased in canonical
    form (RFC 4034 6.2, without NSEC's next name as RFC 6840 5.1 says; HINFO has no name):
    octets before the first name, the number of names, and the octets after them (-1: any).
    False for every other type (A and AAAA among them)."""
    pre[0], names[0], post[0] = 0, 1, 0
    if t == 2 or t == 3 or t == 4 or t == 5 or t == 7 or t == 8 or t == 9 or t == 12 \
            or t == 39:
        return True
    if t == 6:                        # SOA: two names, then five 32-bit fields
        names[0], post[0] = 2, 20
        return True
    if t == 14 or t == 17:            # MINFO, RP
        names[0] = 2
        return True
    if t == 15 or t == 18 or t == 21 or t == 36:    # MX, AFSDB, RT, KX: a 16-bit preference
        pre[0] = 2
        return True
    if t == 26:                       # PX: preference, MAP822, MAPX400
        pre[0], names[0] = 2, 2
        return True
    if t == 33:                       # SRV: priority, weight, port
        pre[0] = 6
        return True
    if t == 24 or t == 46:            # SIG, RRSIG: fixed fields, the signer, the signature
        pre[0], post[0] = 18, -1
        return True
    if t == 35:                       # NAPTR: order, preference, three strings, replacement
        pre[0] = -1
        return True
    return False


cpdef bytes canonical_rdata(unsigned int rdtype, bytes rdata):
    """``rdata`` in canonical form: its embedded names lower-cased for the types RFC 4034 6.2
    lists. ``rdata`` itself when nothing changes, or when it does not parse as its type."""
    cdef Py_ssize_t pre, post, pos, n = PyBytes_GET_SIZE(rdata), i, k
    cdef int names
    cdef bint upper = False
    if not _lowered_layout(rdtype, &pre, &names, &post):
        return rdata
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(rdata)
    if pre < 0:                       # NAPTR: skip 4 octets and three <character-string>s
        pre = 4
        for k in range(3):
            if pre >= n:
                return rdata
            pre += 1 + p[pre]
    pos = pre
    for k in range(names):
        pos = _name_end(p, n, pos, &upper)
        if pos < 0:
            return rdata
    if post >= 0 and pos + post != n:
        return rdata
    if not upper:
        return rdata
    cdef bytes out = PyBytes_FromStringAndSize(<const char*>p, n)
    cdef unsigned char* q = <unsigned char*>PyBytes_AS_STRING(out)
    for i in range(pre, pos):        # length octets are < 64: never letters
        if 65 <= q[i] <= 90:
            q[i] += 32
    return out


cpdef bytes signed_data(Sig sig, bytes owner, unsigned int rdtype, unsigned int rdclass,
                        list rdatas):
    """RFC 4034 3.1.8.1: the RRSIG rdata without its signature, then the rrset in canonical
    form and order (duplicates removed), each record with the original TTL and the owner
    lower-cased, or the wildcard owner when the RRSIG's ``labels`` says so."""
    cdef bytes name = lower(owner)
    cdef const unsigned char* np = <const unsigned char*>PyBytes_AS_STRING(name)
    cdef Py_ssize_t nn = PyBytes_GET_SIZE(name), pos = 0, total, rl
    cdef unsigned int labels = 0
    while pos < nn and np[pos] != 0:
        pos += 1 + np[pos]
        labels += 1
    if sig.labels < labels:
        pos = 0
        while labels > sig.labels:
            pos += 1 + np[pos]
            labels -= 1
        name = b"\x01*" + name[pos:]
        nn = PyBytes_GET_SIZE(name)
    cdef list canon
    if len(rdatas) == 1:
        canon = [canonical_rdata(rdtype, rdatas[0])]
    else:
        canon = sorted({canonical_rdata(rdtype, rd) for rd in rdatas})
    cdef bytes head = sig.header
    total = PyBytes_GET_SIZE(head)
    for rd in canon:
        total += nn + 10 + PyBytes_GET_SIZE(<bytes>rd)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    cdef unsigned char* q = <unsigned char*>PyBytes_AS_STRING(out)
    cdef unsigned int ttl = sig.original_ttl
    memcpy(q, PyBytes_AS_STRING(head), PyBytes_GET_SIZE(head))
    pos = PyBytes_GET_SIZE(head)
    for rd in canon:
        rl = PyBytes_GET_SIZE(<bytes>rd)
        memcpy(q + pos, PyBytes_AS_STRING(name), nn)
        pos += nn
        q[pos], q[pos + 1] = (rdtype >> 8) & 0xFF, rdtype & 0xFF
        q[pos + 2], q[pos + 3] = (rdclass >> 8) & 0xFF, rdclass & 0xFF
        q[pos + 4], q[pos + 5] = (ttl >> 24) & 0xFF, (ttl >> 16) & 0xFF
        q[pos + 6], q[pos + 7] = (ttl >> 8) & 0xFF, ttl & 0xFF
        q[pos + 8], q[pos + 9] = (rl >> 8) & 0xFF, rl & 0xFF
        memcpy(q + pos + 10, PyBytes_AS_STRING(<bytes>rd), rl)
        pos += 10 + rl
    return out


# ---- checks ----------------------------------------------------------------------------------

cdef class Counter:
    """Per-client-query work counters (checked against the limits by the validator)."""

    cdef public int sig_checks
    cdef public int rrsets
    cdef public int suspends
    cdef public int nsec3_hashes
    # the wall-clock time the earliest signature verified (or data relied on) expires;
    # 0 while none was
    cdef public double valid_until

    def rely_until(self, double until):
        """Notes that the verdict relies on something valid until ``until`` (wall clock)."""
        if self.valid_until == 0 or until < self.valid_until:
            self.valid_until = until


cdef inline bint _serial_lt(unsigned int t, double now) noexcept:
    """RFC 4034 3.1.5: times are serial numbers (mod 2**32) relative to now."""
    cdef unsigned int n = <unsigned int>(<long long>now)
    return <unsigned int>(t - n) > 0x7FFFFFFF


cdef inline unsigned int _skew(Sig sig, unsigned int low, unsigned int high) noexcept:
    """The clock skew allowed around ``sig``'s validity window, as Unbound allows it: a
    tenth of the window, within ``low``..``high`` (``dnssec_sig_skew_min``/``_max``)."""
    cdef unsigned int skew = <unsigned int>(sig.expiration - sig.inception) // 10
    if skew < low:
        return low
    return high if skew > high else skew


cdef inline bint _in_window(Sig sig, double now, unsigned int skew) noexcept:
    return (not _serial_lt(sig.expiration, now - skew)
            and _serial_lt(sig.inception, now + skew + 1))


def verify_rrset(bytes owner, unsigned int rdtype, unsigned int rdclass, list rdatas,
                 list sig_records, bytes zone, list keys, double now, limits,
                 Counter counter, tuple algorithms=()) -> Sig:
    """Returns the RRSIG that verified the rrset with one of ``keys`` (zone ``zone``'s);
    raises Bogus otherwise. ``algorithms``: each of these needs an RRSIG of its own that
    verifies (Unbound's ``harden-algo-downgrade``: the zone's DS names them), and the one
    of those that expires first is returned; empty, one RRSIG of any algorithm does. Tries
    at most ``dnssec_max_sig_checks_per_rrset`` (signature, key) pairs and
    ``dnssec_max_key_tag_collisions`` keys per signature."""
    cdef bytes lzone = lower(zone)
    cdef const unsigned char* op = <const unsigned char*>PyBytes_AS_STRING(owner)
    cdef Py_ssize_t on = PyBytes_GET_SIZE(owner), pos = 0
    cdef unsigned int nlabels = 0
    while pos < on and op[pos] != 0:
        pos += 1 + op[pos]
        nlabels += 1
    cdef int checks = 0, found
    cdef unsigned int skew_min = limits.dnssec_sig_skew_min
    cdef unsigned int skew_max = limits.dnssec_sig_skew_max
    cdef int cap = limits.dnssec_max_sig_checks_per_rrset
    cdef int collisions = limits.dnssec_max_key_tag_collisions
    cdef Sig sig, proven = None
    cdef Key k
    cdef bytes data
    cdef set needed = set(algorithms) if algorithms else None
    cdef bint verified
    why, ede = "no RRSIG", EDE_RRSIGS_MISSING
    for rec in sig_records:
        sig = parse_sig(rec[4])
        if sig is None or sig.covered != rdtype or lower(sig.signer) != lzone:
            continue
        if needed is not None and sig.algorithm not in needed:
            continue                    # an algorithm proven already, or not one needed
        if sig.labels > nlabels:
            why, ede = "RRSIG labels exceed its owner's", EDE_BOGUS
            continue
        if sig.algorithm not in SUPPORTED_ALGORITHMS:
            why, ede = f"RRSIG algorithm {sig.algorithm} not supported", EDE_BOGUS
            continue
        if <unsigned int>(sig.expiration - sig.inception) > 0x7FFFFFFF:
            why, ede = "signature's inception after its expiration", EDE_BOGUS
            continue
        if not _in_window(sig, now, _skew(sig, skew_min, skew_max)):
            if _serial_lt(sig.expiration, now):
                why, ede = "signature expired", EDE_EXPIRED
            else:
                why, ede = "signature not yet valid", EDE_NOT_YET_VALID
            continue
        data = None
        found = 0
        verified = False
        for k in keys:
            if k.tag != <int>sig.key_tag or k.algorithm != <int>sig.algorithm:
                continue
            found += 1
            if found > collisions:
                break
            if checks >= cap:
                raise Bogus(f"more than {cap} signature checks for one rrset (KeyTrap budget)")
            checks += 1
            counter.sig_checks += 1
            if data is None:
                data = signed_data(sig, owner, rdtype, rdclass, rdatas)
            if k.verify(sig.signature, data):
                verified = True
                break
        if verified:
            counter.rely_until(
                now + <unsigned int>(sig.expiration - <unsigned int>(<long long>now))
                if not _serial_lt(sig.expiration, now) else now)
            if needed is None:
                return sig
            if proven is None or _serial_lt(sig.expiration, proven.expiration):
                proven = sig
            needed.discard(sig.algorithm)
            if not needed:
                return proven
        elif found == 0:
            why, ede = f"no DNSKEY with tag {sig.key_tag}", EDE_DNSKEY_MISSING
        else:
            why, ede = "signature does not verify", EDE_BOGUS
    if needed and proven is not None:      # another algorithm verified: this one did not
        why, ede = (f"no RRSIG of algorithm {min(needed)} that verifies, where the DS names "
                    f"it (harden-algo-downgrade)"), EDE_BOGUS
    raise Bogus(f"{why} ({dns.rdatatype.to_text(rdtype)})", ede)


def ds_matches(ds, Key key, bytes owner) -> bool:
    """The DS digest over owner|DNSKEY rdata equals the DS's (RFC 4034 5.1.4)."""
    h = DIGESTS.get(ds.digest_type)
    if h is None:
        return False
    return h(lower(owner) + key.wire).digest() == ds.digest


def usable_ds(list ds_list) -> list:
    """DS records we can use: supported key algorithm and digest; with a SHA-256 one present,
    SHA-1 ones are ignored (RFC 4509 3)."""
    ok = [d for d in ds_list if d.algorithm in SUPPORTED_ALGORITHMS and d.digest_type in DIGESTS]
    if any(d.digest_type == 2 for d in ok):
        ok = [d for d in ok if d.digest_type != 1]
    return ok
