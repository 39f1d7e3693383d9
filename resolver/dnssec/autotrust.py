"""Automated updates of DNSSEC trust anchors (RFC 5011), sans-IO.

A :class:`TrustPoint` holds the keys tracked for one anchored zone, each in one of the states
of RFC 5011 section 4 (Start, AddPend, Valid, Missing, Revoked, Removed), and is fed the
zone's DNSKEY rrset (with its RRSIGs) as a probe fetched it and the current wall-clock time;
it answers whether anything changed, the keys to trust now (:meth:`TrustPoint.anchor`) and
when to probe again. It follows Unbound's ``validator/autotrust.c``:

- a DNSKEY rrset is used only when it verifies under a key already trusted (RFC 5011 2.2);
  before that, a key that is revoked (REVOKE bit, 0x0080) and signs the rrset itself is
  taken out of the trusted set at once (RFC 5011 2.1);
- a new secure-entry-point key goes AddPend, and Valid once it has been seen for the
  add hold-down and in at least two probes; an AddPend key that disappears goes back to
  Start (forgotten);
- a Valid key that disappears goes Missing (still trusted) and back to Valid when it
  reappears; Missing for ``keep_missing`` (0: forever) while another key is Valid, it is
  removed (Unbound's ``keep-missing``);
- a Revoked key is no longer trusted; it is forgotten once absent for the delete hold-down;
- the query interval (RFC 5011 2.3) is max(1 hour, min(15 days, 1/2 the original TTL,
  1/2 the time to the earliest RRSIG expiry)), the retry time max(1 hour, min(1 day,
  1/10 TTL, 1/10 expiry)); ``permit_small_holddown`` lifts the one-hour floor (for tests).

DS records read from the first anchor file trust the keys they match at the first probe
(which become Valid) and are dropped after it, as in Unbound. The state file's format is
Unbound's (:mod:`resolver.dnssec.autotrust_file`).
"""
from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset

from resolver.dnssec.dnspython import dnssec
from resolver.dnssec.sig import SUPPORTED_ALGORITHMS
from resolver.dnssec.trust_anchor import TrustAnchor

SEP = 0x0001
REVOKE = 0x0080
#: probes an AddPend key must be seen in, besides its hold-down (Unbound's MIN_PENDINGCOUNT)
MIN_PENDING_COUNT = 2
DAY = 86400


class State(enum.IntEnum):
    """RFC 5011 section 4's key states, numbered as in Unbound's state file."""
    START = 0
    ADDPEND = 1
    VALID = 2
    MISSING = 3
    REVOKED = 4
    REMOVED = 5


@dataclass(frozen=True)
class Timers:
    """The hold-downs, seconds (Unbound's ``add-holddown``, ``del-holddown``,
    ``keep-missing``, ``permit-small-holddown``)."""
    add_holddown: int = 30 * DAY
    del_holddown: int = 30 * DAY
    keep_missing: int = 366 * DAY
    permit_small_holddown: bool = False


@dataclass
class TrackedKey:
    """One key of a trust point, as stored (with the REVOKE bit set once revoked)."""
    dnskey: object                   # dns.rdtypes.ANY.DNSKEY.DNSKEY
    state: State
    ttl: int = 0
    pending_count: int = 0
    #: wall-clock second of the last state change (0: configured, never changed)
    last_change: int = 0
    #: seen in this probe's rrset (not stored)
    fetched: bool = False

    @property
    def sep(self) -> bool:
        return bool(self.dnskey.flags & SEP)

    def same(self, other) -> bool:
        """The same key as ``other``, the REVOKE bit aside."""
        return _unrevoked(self.dnskey) == _unrevoked(other)


def _unrevoked(key):
    return (key.flags | REVOKE, key.protocol, key.algorithm, key.key)


def _with_flags(key, flags: int):
    return key.replace(flags=flags)


@dataclass
class ProbeResult:
    """What one probe did: ``changed`` (the state or the trusted keys), ``verified`` (the
    rrset verified under a trusted key), ``reason`` when it was not used."""
    changed: bool
    verified: bool
    reason: str = ""


@dataclass
class TrustPoint:
    """The tracked keys of one zone, and its probe timers (wall-clock seconds)."""
    name: dns.name.Name
    keys: list[TrackedKey] = field(default_factory=list)
    #: DS records from the first anchor file: trusted until the first successful probe
    ds: list = field(default_factory=list)
    last_queried: int = 0
    last_success: int = 0
    next_probe_time: int = 0
    query_failed: int = 0
    query_interval: int = 0
    retry_time: int = 0
    #: every key was revoked: the zone has no trust anchor left (Unbound's ``;;REVOKED``)
    revoked: bool = False

    # ---- what is trusted -------------------------------------------------------------------
    def trusted_keys(self) -> list:
        """The DNSKEYs trusted now: those Valid or Missing (RFC 5011 4)."""
        if self.revoked:
            return []
        return [k.dnskey for k in self.keys if k.state in (State.VALID, State.MISSING)]

    def anchor(self) -> TrustAnchor:
        """The trust anchor the validator uses for this zone now."""
        return TrustAnchor(self.name, ds=[] if self.revoked else list(self.ds),
                           dnskey=self.trusted_keys(), where=["auto-trust-anchor"])

    def states(self) -> dict[int, State]:
        """Key tag (as stored) -> state, for logs and tests."""
        return {dnssec.key_id(k.dnskey): k.state for k in self.keys}

    def _find(self, key) -> TrackedKey | None:
        return next((k for k in self.keys if k.same(key)), None)

    # ---- the probe ---------------------------------------------------------------------------
    def probe(self, dnskeys: dns.rrset.RRset | None, rrsigs: dns.rrset.RRset | None,
              now: int, timers: Timers = Timers(), rng: random.Random | None = None,
              max_checks: int = 8, every_algorithm: bool = False) -> ProbeResult:
        """Feeds one probe's answer: the zone's DNSKEY rrset and the RRSIGs over it (None
        when the probe got no answer). ``max_checks``: signature verifications tried per
        question asked of the rrset (is it signed by a trusted key, by a revoked one).
        ``every_algorithm``: each algorithm of the trusted keys and of the DS must sign the
        rrset with a trusted key (``harden-algo-downgrade``), not one of them."""
        now = int(now)
        changed = False
        if self.revoked:
            return ProbeResult(False, False, "every key of the zone was revoked")
        self.last_queried = now
        changed |= self._holddown_exceeded(now, timers)
        if dnskeys is None or dnskeys.rdtype != dns.rdatatype.DNSKEY or \
                dnskeys.name != self.name:
            self._schedule(now, self.retry_time or self.query_interval, timers, rng)
            return ProbeResult(changed, False, "no DNSKEY rrset")
        sigs = rrsigs if rrsigs is not None else dns.rrset.RRset(
            self.name, dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)
        changed |= self._revocations(dnskeys, sigs, now, max_checks)
        if not self.trusted_keys() and not self.ds:
            self.revoked = True
            return ProbeResult(True, False, "every trusted key is revoked")
        why = self._verify(dnskeys, sigs, now, max_checks, every_algorithm)
        if why is not None:
            if self.last_success:
                self.query_failed += 1
            self._schedule(now, self.retry_time or self.query_interval, timers, rng)
            return ProbeResult(changed, False, why)
        self.last_success = now
        self.query_failed = 0
        changed |= self._events(dnskeys, sigs, now, timers)
        changed |= self._statetable(now, timers)
        changed |= self._cleanup()
        if not self.trusted_keys():
            self.revoked = True
            changed = True
        self._schedule(now, self.query_interval, timers, rng)
        return ProbeResult(changed, True)

    def _schedule(self, now: int, wait: int, timers: Timers, rng) -> None:
        """The next probe, 90-100% of ``wait`` from now (as Unbound: probes of many
        resolvers do not fall on one second)."""
        wait = max(wait, 1 if timers.permit_small_holddown else 3600)
        rnd = wait // 10
        self.next_probe_time = now + wait - rnd + (rng or random).randint(0, rnd)

    def _verify(self, dnskeys, sigs, now: int, max_checks: int,
                every_algorithm: bool = False) -> str | None:
        """None when ``dnskeys`` verifies under a key trusted now (RFC 5011 2.2), else why
        not; with ``every_algorithm``, under a trusted key of each algorithm trusted."""
        now_trusted = self.trusted_keys()
        trusted = [k for k in dnskeys if k in now_trusted]
        for ds in self.ds:
            for k in dnskeys:
                if dnssec.key_id(k) == ds.key_tag and k.algorithm == ds.algorithm \
                        and _ds_matches(self.name, k, ds) and k not in trusted:
                    trusted.append(k)
        if not trusted:
            return "no key of the DNSKEY rrset is trusted"
        if not _signs(dnskeys, sigs, trusted, now, max_checks):
            return "the DNSKEY rrset is not signed by a trusted key"
        if every_algorithm:
            strongest = max([ds.digest_type for ds in self.ds], default=None)
            needed = ({k.algorithm for k in now_trusted}
                      | {ds.algorithm for ds in self.ds if ds.digest_type == strongest})
            for algorithm in sorted(a for a in needed if a in SUPPORTED_ALGORITHMS):
                if not _signs(dnskeys, sigs, [k for k in trusted if k.algorithm == algorithm],
                              now, max_checks):
                    return (f"the DNSKEY rrset is not signed by a trusted key of algorithm "
                            f"{algorithm} (harden-algo-downgrade)")
        return None

    def _revocations(self, dnskeys, sigs, now: int, max_checks: int) -> bool:
        """Valid or Missing keys the rrset shows revoked and signed by themselves: Revoked."""
        changed = False
        for rd in dnskeys:
            if not (rd.flags & SEP and rd.flags & REVOKE):
                continue
            k = self._find(rd)
            if k is None or k.state not in (State.VALID, State.MISSING):
                continue
            if _signs(dnskeys, sigs, [rd], now, max_checks):
                k.dnskey = _with_flags(k.dnskey, k.dnskey.flags | REVOKE)
                self._set(k, State.REVOKED, now)
                changed = True
        return changed

    def _events(self, dnskeys, sigs, now: int, timers: Timers) -> bool:
        changed = False
        for k in self.keys:
            k.fetched = False
        for rd in dnskeys:
            if not rd.flags & SEP or rd.algorithm not in SUPPORTED_ALGORITHMS:
                continue
            k = self._find(rd)
            if rd.flags & REVOKE:
                if k is not None and k.state == State.REVOKED:
                    k.fetched = True        # still published: its delete hold-down waits
                continue
            if k is None:
                k = TrackedKey(rd, State.START, ttl=dnskeys.ttl)
                if any(_ds_matches(self.name, rd, ds) for ds in self.ds):
                    k.state = State.VALID   # first seen, and matching the configured DS
                self.keys.append(k)
                changed = True
            k.fetched = True
            k.ttl = k.ttl or dnskeys.ttl    # a configured key had none
            k.pending_count = min(k.pending_count + 1, 250)
        ttl = min([s.original_ttl for s in sigs] or [dnskeys.ttl])
        expiry = min([int(s.expiration) - now for s in sigs if int(s.expiration) > now]
                     or [30 * DAY])
        qi = min(15 * DAY, ttl // 2, expiry // 2)
        rt = min(DAY, ttl // 10, expiry // 10)
        if not timers.permit_small_holddown:
            qi, rt = max(qi, 3600), max(rt, 3600)
        if (qi, rt) != (self.query_interval, self.retry_time):
            self.query_interval, self.retry_time = qi, rt
            changed = True
        return changed

    def _set(self, k: TrackedKey, state: State, now: int) -> None:
        k.state = state
        k.last_change = now

    @staticmethod
    def _exceeded(k: TrackedKey, now: int, holddown: int) -> bool:
        return now >= k.last_change and now - k.last_change > holddown

    def _holddown_exceeded(self, now: int, timers: Timers) -> bool:
        """AddPend keys whose hold-down is over and that were seen often enough: Valid."""
        changed = False
        for k in self.keys:
            if k.sep and k.state == State.ADDPEND and \
                    self._exceeded(k, now, timers.add_holddown) and \
                    k.pending_count >= MIN_PENDING_COUNT:
                self._set(k, State.VALID, now)
                k.pending_count = 0
                changed = True
        return changed

    def _statetable(self, now: int, timers: Timers) -> bool:
        """RFC 5011 4.4's transitions for each secure-entry-point key, then the removal of
        long-missing keys."""
        before = [(k.state, k.last_change) for k in self.keys]
        for k in self.keys:
            if not k.sep:
                continue
            s = k.state
            if s == State.START:
                if k.fetched:                                   # NewKey
                    self._set(k, State.ADDPEND, now)
            elif s == State.ADDPEND:
                if not k.fetched:                               # KeyRem
                    self._set(k, State.START, now)
                    k.pending_count = 0
                elif self._exceeded(k, now, timers.add_holddown) and \
                        k.pending_count >= MIN_PENDING_COUNT:   # AddTime
                    self._set(k, State.VALID, now)
                    k.pending_count = 0
            elif s == State.VALID:
                if not k.fetched:                               # KeyRem
                    self._set(k, State.MISSING, now)
                elif not k.last_change:                         # first seen since configured
                    k.last_change = now
            elif s == State.MISSING:
                if k.fetched:                                   # KeyPres
                    self._set(k, State.VALID, now)
            elif s == State.REVOKED:
                if k.fetched:                   # still published: the hold-down restarts
                    k.last_change = now
                elif self._exceeded(k, now, timers.del_holddown):   # RemTime
                    self._set(k, State.REMOVED, now)
        self._remove_missing(now, timers)
        return before != [(k.state, k.last_change) for k in self.keys]

    def _remove_missing(self, now: int, timers: Timers) -> None:
        valid = sum(1 for k in self.keys if k.sep and k.state == State.VALID)
        if not valid:
            # configured with a ZSK only (never changed since): trust the KSKs it signs
            if any(not k.sep and k.state == State.VALID and not k.last_change
                   for k in self.keys):
                for k in self.keys:
                    if k.sep and k.state == State.ADDPEND:
                        self._set(k, State.VALID, now)
                        valid += 1
            if not valid:
                return
        for k in self.keys:
            if k.state == State.START:
                continue
            if not k.sep:
                self._set(k, State.REMOVED, now)    # a KSK is trusted: ZSK anchors go
                continue
            if k.state == State.MISSING and timers.keep_missing and \
                    self._exceeded(k, now, timers.keep_missing):
                self._set(k, State.REMOVED, now)

    def _cleanup(self) -> bool:
        """Forgets Start and Removed keys and the DS records (used by the first probe)."""
        n = len(self.keys) + len(self.ds)
        self.keys = [k for k in self.keys if k.state not in (State.START, State.REMOVED)]
        self.ds = []
        for k in self.keys:
            if k.state != State.ADDPEND:
                k.pending_count = 0
        return n != len(self.keys)


def _ds_matches(name: dns.name.Name, key, ds) -> bool:
    try:
        return dnssec.make_ds(name, key, ds.digest_type) == ds
    except (dnssec.UnsupportedAlgorithm, dns.exception.DNSException, ValueError):
        return False


def _signs(dnskeys, sigs, keys: list, now: int, max_checks: int) -> bool:
    """Whether an RRSIG over ``dnskeys`` made by one of ``keys`` verifies at ``now``; at
    most ``max_checks`` RRSIGs naming one of the keys are tried (the validator's KeyTrap
    budget, ``Limits.dnssec_max_sig_checks_per_rrset``)."""
    rds = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.DNSKEY)
    for k in keys:
        rds.add(k)
    tags = {(dnssec.key_id(k), k.algorithm) for k in keys}
    tried = 0
    for sig in sigs:
        if (sig.key_tag, sig.algorithm) not in tags or sig.signer != dnskeys.name:
            continue
        if tried >= max_checks:
            return False
        tried += 1
        try:
            dnssec.validate_rrsig(dnskeys, sig, {dnskeys.name: rds}, now=now)
        except (dnssec.ValidationFailure, dnssec.UnsupportedAlgorithm):
            continue
        return True
    return False
