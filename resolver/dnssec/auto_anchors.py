"""A resolver's automated trust anchors (Unbound's ``auto-trust-anchor-file``): each file's
trust point (:mod:`resolver.dnssec.autotrust`), probed on its timer through the resolver
itself, its state file rewritten, and the validator's anchors replaced when they change.

A probe asks the resolver for the zone's DNSKEY rrset with DO and CD set (the rrset and its
RRSIGs as the zone serves them, also when the validator's current view calls them bogus, as
after a revocation) and the trust point uses it only when it verifies under a key already
trusted (RFC 5011 2.2). Several processes (the daemon's workers) may share one state file: a
worker reads it again when another one rewrote it, so the zone is probed once per interval
and every worker trusts the same keys.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import time

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from resolver.dnssec import autotrust_file
from resolver.dnssec.autotrust import State, Timers, TrustPoint
from resolver.dnssec.trust_anchor import TrustAnchor, TrustAnchorError

log = logging.getLogger("resolver.autotrust")

class _Point:
    def __init__(self, path: str) -> None:
        self.path = path
        self.tp: TrustPoint = autotrust_file.read(path)
        self.mtime = _mtime(path)

    @property
    def wire(self) -> bytes:
        return self.tp.name.to_wire().lower()


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


class AutoAnchors:
    """The auto trust anchors of one resolver. ``paths``: one state file per zone;
    ``wallclock``: seconds since the epoch (the state file's times)."""

    def __init__(self, paths, timers: Timers = Timers(), wallclock=time.time,
                 rng: random.Random | None = None, max_checks: int = 8) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.points = [_Point(os.fspath(p)) for p in paths]
        names = [p.tp.name for p in self.points]
        if len(set(names)) != len(names):
            raise TrustAnchorError("two auto trust anchor files for one zone: "
                                   + ", ".join(p.path for p in self.points))
        self.timers = timers
        self.wallclock = wallclock
        self.rng = rng
        #: signature checks per probe question (``Limits.dnssec_max_sig_checks_per_rrset``)
        self.max_checks = max_checks
        #: every algorithm of the trusted keys must sign the probed key set (the
        #: validator's ``harden_algo_downgrade``)
        self.harden_algo_downgrade = False
        self.validator = None
        self.probes = 0
        self.failures = 0
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None

    def anchors(self) -> dict[bytes, TrustAnchor]:
        """The trust anchors the points give now, keyed as ``trust_anchor.load`` keys them."""
        return {p.wire: p.tp.anchor() for p in self.points}

    def describe(self) -> list[dict]:
        """Each zone's keys and probe times, for ``status`` (what Unbound's
        ``list_auto_trust_anchors`` shows)."""
        return [{"zone": p.tp.name.to_text(), "file": p.path, "revoked": p.tp.revoked,
                 "keys": {str(tag): s.name for tag, s in p.tp.states().items()},
                 "last_success": p.tp.last_success, "next_probe": p.tp.next_probe_time,
                 "query_failed": p.tp.query_failed} for p in self.points]

    def problems(self) -> list[str]:
        """Why a state file could not be rewritten by this process (its directory)."""
        return [w for w in (autotrust_file.writable(p.path) for p in self.points) if w]

    def _install(self, p: _Point) -> None:
        """The validator trusts what ``p`` trusts now; what it proved with the keys it
        trusted before is forgotten."""
        if self.validator is not None:
            self.validator.anchors[p.wire] = p.tp.anchor()
            self.validator.flush(p.wire)

    def _reread(self, p: _Point) -> None:
        """Takes the state another process wrote to ``p``'s file since we last did."""
        m = _mtime(p.path)
        if m is None or m == p.mtime:
            return
        try:
            tp = autotrust_file.read(p.path)
        except TrustAnchorError as e:
            log.error("auto trust anchor: %s (the state kept in memory is used)", e)
            return
        p.mtime = m
        before = p.tp.anchor()
        p.tp = tp
        after = tp.anchor()
        if (before.dnskey, before.ds) != (after.dnskey, after.ds):
            self._install(p)

    # ---- probes ---------------------------------------------------------------------------------
    async def probe(self, p: _Point, resolve_message) -> bool:
        """One probe of ``p``'s zone through ``resolve_message`` (``Resolver.
        resolve_message``); True when the trusted keys changed."""
        q = dns.message.make_query(p.tp.name, dns.rdatatype.DNSKEY, want_dnssec=True)
        q.flags |= dns.flags.CD
        self.probes += 1
        try:
            r = await resolve_message(q)
        except Exception as e:          # noqa: BLE001 (a probe never takes the resolver down)
            r = None
            log.warning("auto trust anchor %s: DNSKEY probe failed: %s", p.tp.name, e)
        rrset = sigs = None
        if r is not None and r.rcode() == dns.rcode.NOERROR:
            for rs in r.answer:
                if rs.name == p.tp.name and rs.rdtype == dns.rdatatype.DNSKEY:
                    rrset = rs
                elif rs.name == p.tp.name and rs.rdtype == dns.rdatatype.RRSIG and \
                        rs.covers == dns.rdatatype.DNSKEY:
                    sigs = rs
        before = p.tp.anchor()
        now = int(self.wallclock())
        res = p.tp.probe(rrset, sigs, now, self.timers, self.rng, self.max_checks,
                         self.harden_algo_downgrade)
        if not res.verified:
            self.failures += 1
            log.warning("auto trust anchor %s: probe not used: %s", p.tp.name, res.reason)
        if rrset is None and not res.changed:
            return False                # nothing learnt: retried at the retry time
        self._save(p)
        after = p.tp.anchor()
        if (before.dnskey, before.ds) == (after.dnskey, after.ds):
            return False
        log.warning("auto trust anchor %s: trusted keys now %s%s", p.tp.name,
                    sorted(k for k, s in p.tp.states().items()
                           if s in (State.VALID, State.MISSING)),
                    " (every key revoked: the zone is not validated)" if p.tp.revoked else "")
        self._install(p)
        return True

    def _save(self, p: _Point) -> None:
        try:
            autotrust_file.write(p.path, p.tp)
        except OSError as e:
            log.error("auto trust anchor %s: %s", p.tp.name, e)
            return
        p.mtime = _mtime(p.path)

    async def probe_due(self, resolve_message) -> int:
        """Probes every point whose time has come (after taking what another process wrote
        to its file); returns how many were probed."""
        n = 0
        for p in self.points:
            self._reread(p)
            if p.tp.revoked or p.tp.next_probe_time > self.wallclock():
                continue
            await self.probe(p, resolve_message)
            n += 1
        return n

    def next_due(self) -> float | None:
        """Wall-clock second of the next probe, None when no point is probed any more."""
        times = [p.tp.next_probe_time for p in self.points if not p.tp.revoked]
        return min(times) if times else None

    # ---- the timer ------------------------------------------------------------------------------
    def attach(self, validator) -> None:
        """The validator whose anchors the probes replace."""
        self.validator = validator

    def start(self, resolver) -> None:
        """Probes on the running loop, for ``resolver`` (its validator's anchors are the
        ones replaced), each point when due; the first probe at once when due."""
        self.attach(resolver.dnssec)
        if self._timer is not None or self._task is not None:
            return
        self._schedule(resolver)

    def _schedule(self, resolver, at_least: float = 0.0) -> None:
        due = self.next_due()
        if due is None:
            return
        delay = max(at_least, due - self.wallclock())
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay, self._fire, resolver)

    def _fire(self, resolver) -> None:
        self._timer = None
        self._task = asyncio.ensure_future(self._run(resolver))

    async def _run(self, resolver) -> None:
        wait = 0.0
        try:
            await self.probe_due(resolver.resolve_message)
        except Exception:               # noqa: BLE001
            log.exception("auto trust anchor probe")
            wait = 60.0                 # not at once again
        finally:
            self._task = None
        self._schedule(resolver, wait)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
