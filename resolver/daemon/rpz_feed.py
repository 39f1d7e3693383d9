"""The policy zones of ``[[rpz]]`` tables, brought in and kept fresh: read from a zone file,
or transferred from a primary (AXFR, or IXFR where the primary offers it: dnspython's
``dns.query.inbound_xfr`` does the protocol, in a thread, :func:`transferred`) and asked
again on the zone's SOA refresh timer (its retry timer after a failure). A transfer that
fails, or a zone past ``limits.rpz_max_records``, leaves the policy it had in place.

:class:`RpzSource` is one table, checked (the setting's converter); :class:`Feeds` holds the
configured sources, each a :class:`Feed`, and calls ``on_change(policy)`` with a new
:class:`resolver.policy.rpz.Policy` (the zones in config order) whenever a zone is loaded,
changed or removed. The query path (``resolver.daemon.rpz_gate``) reads only that policy.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from functools import partial

import dns.exception
import dns.name
import dns.query
import dns.xfr
import dns.zone

from resolver.limits import Limits
from resolver.daemon.reloads import after_swap, off_loop
from resolver.daemon.zone_tables import config_table
from resolver.zones import Upstream
from resolver.policy.rpz import OVERRIDES, CNAME, Policy, PolicyError, PolicyZone, ZoneOptions

log = logging.getLogger("resolver.rpz")

_KEYS = ("name", "zonefile", "primary", "master", "url", "rpz-action-override",
         "rpz-cname-override", "rpz-log", "rpz-log-name", "rpz-signal-nxdomain-ra",
         "for-downstream", "tags")


@dataclass(frozen=True)
class RpzSource:
    """One ``[[rpz]]`` table (Unbound's ``rpz:`` clause)."""
    name: str
    zonefile: str | None = None
    primaries: tuple[tuple[str, int], ...] = ()
    url: str | None = None
    action_override: str | None = None
    cname_override: str | None = None
    log: bool = False
    log_name: str | None = None
    signal_nxdomain_ra: bool = False
    tags: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = self.zonefile or ", ".join(f"{a}@{p}" for a, p in self.primaries)
        return f"{self.name} ({where})"

    def options(self) -> ZoneOptions:
        return ZoneOptions(
            action_override=self.action_override,
            cname_override=(dns.name.from_text(self.cname_override)
                            if self.cname_override else None),
            log=self.log, log_name=self.log_name, signal_nxdomain_ra=self.signal_nxdomain_ra,
            tags=frozenset(self.tags))


def rpz_source(entry) -> RpzSource:
    """An ``[[rpz]]`` table, checked: ValueError names the zone and the key."""
    t = config_table(entry, "rpz", _KEYS)
    if not isinstance(t["name"], str):
        raise ValueError("rpz: 'name' is missing")
    try:
        name = dns.name.from_text(t["name"]).to_text()
    except dns.exception.DNSException as e:
        raise ValueError(f"rpz {t['name']!r}: bad name ({e})") from None
    what = f"rpz {name}"
    if "for-downstream" in t:
        raise ValueError(f"{what}: 'for-downstream' is not supported")
    tags = t.get("tags", ())
    tags = tags.replace('"', " ").split() if isinstance(tags, str) else tags
    if not isinstance(tags, (list, tuple)) or not all(isinstance(x, str) for x in tags):
        raise ValueError(f"{what}: tags: expected tag names")
    raw = t.get("primary", t.get("master", ()))
    raw = [raw] if isinstance(raw, str) else raw
    if not isinstance(raw, (list, tuple)):
        raise ValueError(f"{what}: primary: expected a list of ADDR[@PORT]")
    ups = tuple(Upstream.parse(a, f"{what}: primary") for a in raw)
    primaries = tuple((u.addr, u.port or 53) for u in ups)
    zonefile = t.get("zonefile")
    if zonefile is not None and not isinstance(zonefile, str):
        raise ValueError(f"{what}: zonefile: expected a path")
    if not zonefile and not primaries:
        raise ValueError(f"{what}: needs a zonefile or a primary")
    url = t.get("url")
    if url is not None:
        raise ValueError(f"{what}: 'url' is not supported (give a primary or a zonefile)")
    override = t.get("rpz-action-override")
    if override is not None and override not in OVERRIDES:
        raise ValueError(f"{what}: rpz-action-override {override!r} is not one of "
                         f"{', '.join(OVERRIDES)}")
    cname = t.get("rpz-cname-override")
    if cname is not None:
        try:
            cname = dns.name.from_text(cname).to_text()
        except (dns.exception.DNSException, AttributeError):
            raise ValueError(f"{what}: rpz-cname-override {cname!r} is not a name") from None
    if override == CNAME and cname is None:
        raise ValueError(f"{what}: rpz-action-override \"cname\" needs rpz-cname-override")
    for key in ("rpz-log", "rpz-signal-nxdomain-ra"):
        if not isinstance(t.get(key, False), bool):
            raise ValueError(f"{what}: {key}: expected true or false")
    log_name = t.get("rpz-log-name")
    if log_name is not None and not isinstance(log_name, str):
        raise ValueError(f"{what}: rpz-log-name: expected a string")
    return RpzSource(name, zonefile, primaries, None, override, cname,
                     t.get("rpz-log", False), log_name, t.get("rpz-signal-nxdomain-ra", False),
                     tuple(tags))


def rpz_sources(value) -> tuple[RpzSource, ...]:
    """The ``rpz`` setting: its tables, checked; a zone given twice is refused."""
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"rpz: expected a list of tables, got {value!r}")
    out = tuple(rpz_source(v) for v in items)
    seen = set()
    for s in out:
        if s.name.lower() in seen:
            raise ValueError(f"rpz {s.name} is given twice")
        seen.add(s.name.lower())
    return out


def read_zone_file(source: RpzSource, limits: Limits,
                   held: PolicyZone | None = None) -> PolicyZone:
    """The policy zone of ``source``'s zone file (zone-file syntax, UTF-8, names relative to
    the zone's name unless the file says otherwise, ``$INCLUDE`` followed); ``held`` itself
    when it was read from the same bytes (a reload leaves an unchanged file's zone as it is;
    a file that includes others is always read again)."""
    assert source.zonefile is not None
    with open(source.zonefile, "rb") as f:
        data = f.read()
    digest = None if _includes(data) else hashlib.sha256(data).digest()
    if (digest is not None and held is not None and held.digest == digest
            and held.records <= limits.rpz_max_records):   # a lower bound since: read again
        return held
    zone = dns.zone.from_text(data.decode("utf-8"), origin=source.name, relativize=False,
                              check_origin=False, filename=source.zonefile, allow_include=True)
    out = policy_zone(zone, source, limits)
    out.digest = digest
    return out


def _includes(data: bytes) -> bool:
    """Whether zone-file ``data`` may have an ``$INCLUDE`` directive (in any case): looked for
    at each ``$``, not by upper-casing the whole file."""
    at = data.find(b"$")
    while at != -1:
        if data[at + 1:at + 8].upper() == b"INCLUDE":
            return True
        at = data.find(b"$", at + 1)
    return False


def read_zone_files(sources, limits: Limits, held: dict | None = None,
                    ) -> dict[RpzSource, PolicyZone | Exception]:
    """The zone of each source with a zone file, or why it cannot be read: no state
    touched, so a reload reads them in a thread and hands the result to
    :meth:`Feeds.set_sources`. ``held``: the zones loaded now, by source (one whose file
    has not changed is kept)."""
    out: dict[RpzSource, PolicyZone | Exception] = {}
    for source in sources:
        if source.zonefile:
            try:
                out[source] = read_zone_file(source, limits, (held or {}).get(source))
            except (OSError, ValueError, dns.exception.DNSException, PolicyError) as e:
                out[source] = e         # ValueError: not UTF-8
    return out


def policy_zone(zone: dns.zone.Zone, source: RpzSource, limits: Limits) -> PolicyZone:
    assert zone.origin is not None           # made with one
    return PolicyZone(zone.origin, zone.iterate_rdatasets(), source.options(),
                      limits.rpz_max_records)


def transferred(base: dns.zone.Zone, query, addr: str, port: int, source: RpzSource,
                limits: Limits) -> PolicyZone:
    """``query``'s transfer from ``addr`` applied to ``base``, and the policy zone it makes:
    run off the loop (:func:`resolver.daemon.reloads.off_loop`), as reading and indexing
    the records of a large zone is long (10,000 rules: about a second, half of it making
    the messages' records, the rest the triggers) and would hold the loop between two
    answers. The whole transfer is bounded by ``rpz-transfer-timeout``."""
    dns.query.inbound_xfr(addr, base, query, port=port, timeout=limits.rpz_transfer_timeout,
                          lifetime=limits.rpz_transfer_timeout)
    return policy_zone(base, source, limits)


class Feed:
    """One source: its zone (the last one loaded), kept fresh by a task when it comes from a
    primary."""

    def __init__(self, source: RpzSource, limits: Limits, changed) -> None:
        self.source = source
        self.limits = limits
        self.changed = changed              # called after the zone changed
        self.zone: PolicyZone | None = None
        self.xfr_zone: dns.zone.Zone | None = None
        self.task: asyncio.Task | None = None
        self.transfers = 0                  # transfers that brought a change
        self.failures = 0
        #: False after ``rpz_disable``: the zone stays loaded and fresh but is not applied
        self.enabled = True
        self.wake = asyncio.Event()         # set: transfer now (``auth_zone_transfer``)

    def start(self, loaded: PolicyZone | Exception | None = None) -> None:
        if self.source.zonefile:
            self.load_file(loaded)
        if self.source.primaries:
            self.task = asyncio.get_running_loop().create_task(self.refresh_loop())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    def load_file(self, loaded: PolicyZone | Exception | None = None) -> bool:
        """Takes the zone file's zone: ``loaded`` (as :func:`read_zone_files` read it),
        else the file read now."""
        if loaded is None:
            loaded = read_zone_files([self.source], self.limits)[self.source]
        if isinstance(loaded, Exception):
            self.failures += 1
            log.error("rpz %s: cannot load %s (%s)%s", self.source.name, self.source.zonefile,
                      loaded, "; keeping the zone loaded before" if self.zone else "")
            return False
        source = self.source
        if loaded is self.zone:
            after_swap(lambda: log.info("rpz %s: %s unchanged (serial %s)", source.name,
                                        source.zonefile, loaded.serial))
            return True
        self.zone = zone = loaded
        after_swap(lambda: log.info("rpz %s: %d triggers from %s (serial %s)", source.name,
                                    len(zone), source.zonefile, zone.serial))
        self.changed()
        return True

    async def reload_file(self) -> bool:
        """Reads the zone file again (off the loop) and takes its zone
        (``auth_zone_reload``); False when it could not be read (the zone held is kept)."""
        source, limits = self.source, self.limits
        loaded = await off_loop(lambda: read_zone_files([source], limits)[source])
        return self.load_file(loaded)

    def transfer_now(self) -> None:
        """Ends the wait for the refresh timer: the next transfer starts at once."""
        self.wake.set()

    async def transfer(self) -> bool:
        """One transfer from the first primary that gives one (IXFR from the serial held,
        else AXFR); True when the zone changed."""
        lim = self.limits
        for addr, port in self.source.primaries:
            base = self.xfr_zone
            if base is None:
                base = dns.zone.Zone(dns.name.from_text(self.source.name), relativize=False)
            before = self.zone.serial if self.zone is not None and base is self.xfr_zone else None
            try:
                query, _ = dns.xfr.make_query(base, serial=0 if self.xfr_zone else None)
                # nothing else touches ``base`` until this transfer ends
                zone = await off_loop(partial(transferred, base, query, addr, port,
                                              self.source, lim))
            except (OSError, EOFError, asyncio.TimeoutError, dns.exception.DNSException,
                    PolicyError, ValueError) as e:
                self.failures += 1
                log.warning("rpz %s: transfer from %s port %d failed: %s", self.source.name,
                            addr, port, e or type(e).__name__)
                if isinstance(e, PolicyError):
                    self.xfr_zone = None        # its records are past the bound: AXFR anew
                continue
            self.xfr_zone = base
            if zone.serial == before and self.zone is not None:
                return False                    # up to date
            self.zone = zone
            self.transfers += 1
            log.info("rpz %s: %d triggers from %s port %d (serial %s)", self.source.name,
                     len(zone), addr, port, zone.serial)
            self.changed()
            return True
        return False

    def delays(self) -> tuple[float, float]:
        """(refresh, retry) seconds: the zone's SOA timers, at least
        ``limits.rpz_min_refresh``."""
        floor = self.limits.rpz_min_refresh
        soa = self.zone.soa[0] if self.zone is not None and self.zone.soa is not None else None
        if soa is None:
            return max(floor, 3600.0), max(floor, 60.0)
        return max(floor, float(soa.refresh)), max(floor, float(soa.retry))

    async def refresh_loop(self) -> None:
        while True:
            before = self.failures
            try:
                await self.transfer()
            except Exception:               # a fault of ours must not end the refreshes
                self.failures += 1
                log.exception("rpz %s: transfer failed", self.source.name)
            refresh, retry = self.delays()
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(),
                                       retry if self.failures > before else refresh)
            except asyncio.TimeoutError:
                pass


class Feeds:
    """The configured sources, in config order; ``on_change(policy)`` gets the policy of the
    zones loaded so far (None when no source is configured)."""

    def __init__(self, limits: Limits, on_change) -> None:
        self.limits = limits
        self.on_change = on_change
        self.feeds: list[Feed] = []
        self.started = False
        self.made: Policy | None = None          # the last policy made (``policy``)

    def policy(self) -> Policy | None:
        """The policy of the zones the feeds hold now: the one made last when they are the
        same zones in the same order (a reload whose zone files did not change keeps its
        zones: the policy's trigger index, a union over all of them, is not made again on
        the loop, and the cached answers keep the verdicts they had under it)."""
        if not self.feeds:
            self.made = None
            return None
        zones = [f.zone for f in self.feeds if f.zone is not None and f.enabled]
        made = self.made
        if (made is None or len(made.zones) != len(zones)
                or any(a is not b for a, b in zip(made.zones, zones))):
            made = self.made = Policy(zones)
        return made

    def _changed(self) -> None:
        if self.started:
            self.on_change(self.policy())

    def find(self, name: str) -> Feed | None:
        """The source of the zone ``name`` (a domain name, absolute or not), or None."""
        wanted = dns.name.from_text(name)
        return next((f for f in self.feeds if dns.name.from_text(f.source.name) == wanted),
                    None)

    def enable(self, feed: Feed, on: bool) -> None:
        """``rpz_enable``/``rpz_disable``: ``feed``'s zone applied again, or skipped (kept
        loaded and fresh), until the config file is read again."""
        if feed.enabled != on:
            feed.enabled = on
            self._changed()

    def set_sources(self, sources, loaded: dict | None = None, fresh: bool = False) -> None:
        """Takes the configured sources (at start and on reload): a source unchanged keeps
        its zone and its timers (a zone file is read again), a new one is loaded, one gone
        is dropped. ``loaded``: the zone files as :func:`read_zone_files` read them (those
        missing from it are read here). ``fresh``: the config file was read again, so a
        zone disabled at run time is applied again."""
        loaded = loaded or {}
        old = {f.source: f for f in self.feeds}
        feeds = []
        self.started = False                    # one on_change for the whole set
        for source in sources:
            f = old.pop(source, None)
            if f is None:
                f = Feed(source, self.limits, self._changed)
                f.start(loaded.get(source))
            elif source.zonefile:
                f.load_file(loaded.get(source))
            f.enabled = f.enabled or fresh
            feeds.append(f)
        for f in old.values():
            f.stop()
            log.info("rpz %s: removed", f.source.name)
        self.feeds = feeds
        self.started = True
        self.on_change(self.policy())

    def stop(self) -> None:
        for f in self.feeds:
            f.stop()
        self.feeds = []

    def held(self) -> dict:
        """The zone each source has loaded now, by source (for :func:`read_zone_files`)."""
        return {f.source: f.zone for f in list(self.feeds) if f.zone is not None}

    def stats(self) -> dict:
        return {f.source.name: {"loaded": f.zone is not None,
                                "serial": f.zone.serial if f.zone else None,
                                "triggers": len(f.zone) if f.zone else 0,
                                "transfers": f.transfers, "failures": f.failures}
                for f in self.feeds}
