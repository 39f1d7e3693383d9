"""What each control command does (the table is ``resolver.daemon.commands``).

:data:`WORKER` holds what one worker does for a command: a function of the worker's
:class:`WorkerControl` and the request, answering a dict (``{"ok": True, "text": ...}`` for
what the command prints). :data:`SUPERVISOR` holds the commands the process holding the
control socket answers itself when there are several workers; every other command is asked
of each worker and their answers are combined as the command's ``scope`` says
(:func:`combine`).

Runtime changes (zones, local data, negative trust anchors, options) are a new ``Config``
made from the running one and applied as a reload applies one (``Server.apply``); a reload
starts again from the config file (and the command line), so they last until then.
"""
from __future__ import annotations

import inspect
import logging
import os
import time
import tomllib
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable

import dns.exception
import dns.name
import dns.rdata
import dns.rdatatype

from resolver import operations as ops
from resolver.daemon import logs
from resolver.daemon.commands import BY_NAME as COMMANDS
from resolver.daemon.config import RELOADED_LIMIT_SETTINGS, ConfigError, convert, make_zones
from resolver.daemon import unbound_conf
from resolver.daemon.settings import ALIASES, BY_NAME as SETTINGS, LIMITS
from resolver.zones import LOCAL_TYPES, default_local_zones

OK = {"ok": True, "text": "ok"}

log = logging.getLogger("resolver.daemon.operations")


class CommandError(Exception):
    """A command that cannot be done as asked; its message is the error line."""


@dataclass
class WorkerControl:
    """What the commands of one worker act on: its server, how it reloads and stops, and
    the figures its last ``stats`` showed (``stats`` shows what was counted since)."""
    server: Any
    reload: Callable[[], Awaitable[dict]]
    stop: Callable[[], None]
    stats_base: dict | None = None


def _args(req: dict, low: int, high: int | None = None) -> list[str]:
    args = req.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise CommandError("arguments must be a list of strings")
    cmd = COMMANDS[req["cmd"]]
    if len(args) < low or (high is not None and len(args) > high):
        raise CommandError(f"usage: {cmd.name} {cmd.args}".rstrip())
    return args


def _second(req: dict) -> tuple[str, str]:
    """A command's first argument and the rest (Unbound's ``find_arg2``), refused in
    Unbound's words when there is no second."""
    args = _args(req, 0)
    if len(args) < 2:
        raise CommandError(f"could not find next argument after {' '.join(args)}")
    return args[0], " ".join(args[1:])


def _name_arg(req: dict) -> str:
    """The one name a command takes (none: Unbound's words for it)."""
    return _name(_args(req, 1, 1)[0] if _args(req, 0) else "")


def _name(text: str) -> str:
    if not text:                        # Unbound's words, its colon too
        raise CommandError(": this option requires a domain name")
    unparsed = _unparsed(text)
    if unparsed is not None:
        raise CommandError(f"cannot parse name {text} at {unparsed[0]}: {unparsed[1]}")
    try:
        return dns.name.from_text(text).to_text()
    except dns.exception.DNSException as e:
        raise CommandError(f"{text!r} is not a domain name: {e}") from None


def _unparsed(text: str) -> tuple[int, str] | None:
    """Why Unbound's reader of a name (sldns's) refuses ``text``, and where (its offset in
    the name's wire form, as Unbound's error says it); None when it takes it."""
    if len(text) > 255 * 4:
        return 0, "Domainname length overflow"
    if text == ".":
        return None
    q, label, i = 1, 0, 0                   # wire offset, label length, place in text
    while i < len(text):
        if q >= 255:
            return q, "Domainname length overflow"
        c = text[i]
        if c == ".":
            if label > 63:
                return q, "Label length overflow"
            if label == 0:
                return q, "Empty label"
            label = -1
        elif c == "\\":                    # \DDD (at most 255) or \X, X not a digit
            digits = text[i + 1:i + 4]
            if len(digits) == 3 and digits.isdigit() and int(digits) <= 255:
                i += 3
            elif i + 1 < len(text) and not text[i + 1].isdigit():
                i += 1
            else:
                return q, "Syntax error, bad escape sequence"
        label, i, q = label + 1, i + 1, q + 1
    if label and q >= 255:
        return q, "Domainname length overflow"
    if label > 63:
        return q, "Label length overflow"
    return None


def _change(ctl: WorkerControl, **values) -> dict:
    """Applies the running config with ``values`` changed, as a reload would."""
    root = logging.getLogger()
    level = root.level                  # a verbosity command's level lasts until a reload
    try:
        cfg = replace(ctl.server.cfg, **values)
        make_zones(cfg)                 # a clash (one name twice) refused before anything
        ctl.server.apply(cfg)
    except (ValueError, ConfigError) as e:
        raise CommandError(str(e)) from None
    finally:
        if "log_level" not in values:
            root.setLevel(level)
    return OK


# ---- the cache ------------------------------------------------------------------------------
async def flush(ctl: WorkerControl, req: dict) -> dict:
    args = _args(req, 0, 1)
    name = req.get("name") or (args[0] if args else None)
    name = _name(name or "")    # an empty $NAME in a script forgets nothing, as in Unbound
    r = ctl.server.resolver
    out: dict = {"ok": True, "flushed": name or "everything"}
    if name and r.shared is not None:         # the name's entries in Redis go too
        out["shared_deleted"] = await r.shared.forget(r, dns.name.from_text(name).to_wire())
    ops.flush(r, name)
    return out


def _held(r) -> tuple[int, int, int]:
    """What the cache holds: rrsets, messages and the validator's key entries (its zones'
    verdicts)."""
    keys = len(r.dnssec.zones) if r.dnssec is not None else 0
    return len(r.cache.rrsets.lru), len(r.cache.messages.lru), keys


def _removed(r, forget: Callable[[], None]) -> dict:
    """``forget()`` done, answered as Unbound's flush commands count: the rrsets, messages
    and key entries it removed."""
    before = _held(r)
    forget()
    after = _held(r)
    gone = [max(0, b - a) for b, a in zip(before, after)]
    return {"ok": True, "removed": dict(zip(("rrsets", "messages", "keys"), gone))}


def flush_zone(ctl: WorkerControl, req: dict) -> dict:
    name = _name_arg(req)
    r = ctl.server.resolver
    return _removed(r, lambda: ops.flush_zone(r, name))


def flush_type(ctl: WorkerControl, req: dict) -> dict:
    name, rdtype = _second(req)
    name = _name(name)
    try:
        t = dns.rdatatype.from_text(rdtype)
    except dns.exception.DNSException:     # Unbound's type 0: nothing held, nothing flushed
        return OK
    ops.flush_type(ctl.server.resolver, name, t)
    return OK


def flush_bogus(ctl: WorkerControl, req: dict) -> dict:
    _args(req, 0, 0)
    r = ctl.server.resolver
    return _removed(r, lambda: ops.flush_bogus(r))


def flush_negative(ctl: WorkerControl, req: dict) -> dict:
    _args(req, 0, 0)
    r = ctl.server.resolver
    return _removed(r, lambda: ops.flush_negative(r))


def flush_infra(ctl: WorkerControl, req: dict) -> dict:
    which = " ".join(_args(req, 0))
    if which != "all":
        import ipaddress
        try:
            which = str(ipaddress.ip_address(which))
        except ValueError:                 # Unbound's words
            raise CommandError(f"parsing ip addr: '{which}'") from None
    ops.flush_infra(ctl.server.resolver, None if which == "all" else which)
    return OK


def dump_cache(ctl: WorkerControl, req: dict) -> dict:
    _args(req, 0, 0)
    return {"ok": True, "lines": ops.dump_cache(ctl.server.resolver)}


def load_cache(ctl: WorkerControl, req: dict) -> dict:
    from resolver.cache.dump import DumpError

    _args(req, 0, 0)
    text = req.get("input")
    if not isinstance(text, str):
        raise CommandError("load_cache reads the dump from its standard input")
    try:
        n = ops.load_cache(ctl.server.resolver, text)
    except DumpError as e:
        raise CommandError(f"load_cache: {e}") from None
    return {"ok": True, "text": "ok", "loaded": n}


def lookup(ctl: WorkerControl, req: dict) -> dict:
    """Unbound's ``lookup``: the delegations looked at for the name and, for each, its
    cached rrsets, its counts and one line per server address with what the infra cache
    holds of it, in Unbound's words."""
    name = _name_arg(req)
    steps = ops.delegations(ctl.server.resolver, name)
    lines = [f"The following name servers are used for lookup of {name}"]
    for step in steps:
        if step["kind"] == "root hints":
            lines.append("no delegation from cache; goes to configured roots")
            break
        if step["kind"] == "forward":
            lines.append("forwarding request:")
        elif step["kind"] == "stub":
            lines.append("The stub is primed with servers:" if step["prime"]
                         else "The noprime stub servers are used:")
        for r in step["rrsets"]:
            lines.append(f";rrset {r['ttl']} {r['count']} {r['sigs']} {r['trust']} "
                         f"{5 if r['secure'] else 0}")
            lines += r["lines"]
        n = len(step["names"])
        lines += [f"Delegation with {n} names, of which {n} can be examined to query "
                  "further addresses.", f"It provides {len(step['servers'])} IP addresses."]
        lines += [f"{s['ip']:<16}\t{_infra_text(s)}" for s in step["servers"]]
        if step["useless"]:
            lines.append("cache delegation was useless (no IP addresses)")
            zone = dns.name.from_text(step["zone"])
            if zone != dns.name.root:
                lines.append(f"going up, lookup {zone.parent()}")
    return {"ok": True, "text": "\n".join(lines), "delegations": steps}


def _infra_text(s: dict) -> str:
    """What the infra cache holds of a server, as Unbound's ``lookup`` says it: the RTO
    (backed off after timeouts), the entry's seconds left, the smoothed RTT and its
    variance (ms), the timeout they give without the backoff (Unbound's ``rtt``), the
    timeouts (not told apart by type here: all under ``tother``), a down server's wait for
    its next probe, EDNS (``probed`` once the server answered, ``assumed`` before)."""
    if not s["known"]:
        return "not in infra cache."
    lame = "LAME " if s["lame"] else ""
    ping = 0 if s["rtt_ms"] is None else round(s["rtt_ms"])
    text = (f"{lame}rto {round(s['rto_ms'])} msec, ttl {s['ttl']}, ping {ping} var "
            f"{round(s['rttvar_ms'])} rtt {round(s['timeout_ms'])}, tA 0, tAAAA 0, "
            f"tother {s['timeouts']}")
    if s["down"]:
        text += f", probedelay {round(s['probe_in'])}"      # seconds, as Unbound's
    return text + (", EDNS 0" if s["edns"] else ", noEDNS") + (
        " probed." if s["replied"] else " assumed.")


def dump_infra(ctl: WorkerControl, req: dict) -> dict:
    """Unbound's ``dump_infra``: a line per server address and zone (:func:`_infra_line`)."""
    _args(req, 0, 0)
    return {"ok": True, "text": "\n".join(filter(None, map(_infra_line,
                                                           ops.infra(ctl.server.resolver))))}


def _infra_line(s: dict) -> str:
    """A server's line as Unbound's ``dump_infra`` prints it: the entry's seconds left, the
    smoothed RTT and variance (ms), the timeout they give (``rtt``) and the one backed off
    after timeouts (``rto``), the timeouts (all under ``tother``), whether EDNS is known
    (``ednsknown``, once the server answered) and works (``edns`` 0, -1 not), a down
    server's seconds to its next probe (``delay``), and the lame marks (a zone's mark is
    for every type here: ``A`` and ``other``; ``dnssec`` and ``rec`` are not kept). An
    entry past its TTL is left out, but for a server marked down (``expired rto N``)."""
    rto = round(s["rto_ms"])
    if s["ttl"] <= 0:
        return f"{s['host']} {s['zone']} expired rto {rto}" if s["down"] else ""
    ping = 0 if s["rtt_ms"] is None else round(s["rtt_ms"])
    lame = int(s["lame_here"])
    return (f"{s['host']} {s['zone']} ttl {s['ttl']} ping {ping} var {round(s['rttvar_ms'])} "
            f"rtt {round(s['timeout_ms'])} rto {rto} tA 0 tAAAA 0 tother {s['timeouts']} "
            f"ednsknown {int(s['replied'])} edns {0 if s['edns'] else -1} "
            f"delay {round(s['probe_in']) if s['down'] else 0} lame dnssec 0 rec 0 A {lame} "
            f"other {lame}")


# ---- zones and local data -----------------------------------------------------------------
#: where a name sorts in Unbound's trees of zones
_tree_key = ops.tree_key


def _tree_order(names):
    """``names`` (text) in the order of Unbound's trees of zones (:func:`_tree_key`)."""
    return sorted(names, key=lambda n: _tree_key(dns.name.from_text(n)))


def _insecure(ctl: WorkerControl) -> set:
    return {dns.name.from_text(n) for n in ctl.server.cfg.domain_insecure}


def _servers_text(hosts, addresses) -> str:
    """A delegation point's servers as unbound-control prints them: host names first, then
    addresses without their ports."""
    return " ".join([*hosts, *addresses])


def _delegation_line(name: str, kind: str, hosts, addresses) -> str:
    """A zone's line: ``NAME IN KIND SERVERS``."""
    return f"{name} IN {kind} {_servers_text(hosts, addresses)}"


def list_forwards(ctl: WorkerControl, req: dict) -> dict:
    """``NAME IN forward [+i] SERVERS``, one zone a line in the order of Unbound's tree,
    ``+i`` for a zone that is also ``domain-insecure``, as unbound-control prints them."""
    _args(req, 0, 0)
    zones = {z.name: z for z in ctl.server.cfg.forward_zone}
    insecure = _insecure(ctl)
    return {"ok": True, "text": "\n".join(
        _delegation_line(name, "forward +i" if dns.name.from_text(name) in insecure
                         else "forward", [h.addr for h in zones[name].hosts],
                         [s.addr for s in zones[name].servers])
        for name in _tree_order(zones))}


def list_stubs(ctl: WorkerControl, req: dict) -> dict:
    """``NAME IN stub prime|noprime [+i] SERVERS``, the root's hints first, as
    unbound-control prints them."""
    _args(req, 0, 0)
    insecure = _insecure(ctl)
    hints = ctl.server.resolver.hints
    names = list(dict.fromkeys(dns.name.from_wire(n, 0)[0].to_text().lower()
                               for n, _ in hints))
    # the hints file's servers newest first, as Unbound reads them in
    lines = {".": _delegation_line(".", "stub prime +i" if dns.name.root in insecure
                                   else "stub prime", names[::-1],
                                   [a for _, a in hints][::-1])}
    for z in ctl.server.cfg.stub_zone:
        kind = ("stub prime" if z.prime else "stub noprime") + \
            (" +i" if dns.name.from_text(z.name) in insecure else "")
        lines[z.name] = _delegation_line(z.name, kind, [h.addr for h in z.hosts],
                                         [s.addr for s in z.servers])
    return {"ok": True, "text": "\n".join(lines[name] for name in _tree_order(lines))}


def list_local_zones(ctl: WorkerControl, req: dict) -> dict:
    """The local zones served, with the transparent ones local data outside every zone
    makes, in the order of Unbound's tree (as Unbound lists them)."""
    _args(req, 0, 0)
    return {"ok": True, "text": _zones_text(ctl.server.resolver.local_zones)}


def _zones_text(local) -> str:
    """``list_local_zones``'s text for the LocalZones ``local`` (None: none)."""
    types = local.types if local is not None else {}
    zones = sorted(((dns.name.from_wire(name, 0)[0], kind) for name, kind in types.items()),
                   key=lambda zone: _tree_key(zone[0]))
    return "\n".join(f"{name} {kind}" for name, kind in zones)


def list_local_data(ctl: WorkerControl, req: dict) -> dict:
    """Every record the local zones serve (the default zones' too) in Unbound's text form
    (``NAME<tab>TTL<tab>IN<tab>TYPE<tab>RDATA``), each followed by an empty line, in
    unbound-control's order: zone by zone in the order of Unbound's tree of zones, name by
    name in canonical order; a name's types as the config gives them, a default zone's
    newest first (Unbound enters the config's lines last to first, and each new type in
    front)."""
    _args(req, 0, 0)
    return {"ok": True, "text": _data_text(ctl.server.resolver.local_zones)}


def _data_text(local) -> str:
    """``list_local_data``'s text for the LocalZones ``local`` (None: none)."""
    if local is None:
        return ""
    defaults = set(default_local_zones())
    as_entered = {z.name for z in local.zones if z in defaults}
    by_zone: dict[str, list[dns.name.Name]] = {}
    for owner in local.data:
        zone = dns.name.from_wire(local.zone_of(owner) or owner, 0)[0].to_text()
        by_zone.setdefault(zone, []).append(dns.name.from_wire(owner, 0)[0])
    lines = []
    for zone in _tree_order(by_zone):
        for owner in sorted(by_zone[zone]):
            types = list(local.data[owner.to_wire()].items())
            for rdtype, records in reversed(types) if zone in as_entered else types:
                for wire, _, rdclass, ttl, rdata in records:
                    rd = dns.rdata.from_wire(rdclass, rdtype, rdata, 0, len(rdata))
                    lines.append(f"{dns.name.from_wire(wire, 0)[0]}\t{ttl}\tIN\t"
                                 f"{dns.rdatatype.to_text(rdtype)}\t{rd.to_text()}")
    return "\n\n".join(lines) + "\n" if lines else ""


def list_insecure(ctl: WorkerControl, req: dict) -> dict:
    _args(req, 0, 0)
    return {"ok": True, "text": "\n".join(ctl.server.cfg.domain_insecure)}


def list_auth_zones(ctl: WorkerControl, req: dict) -> dict:
    """The response policy zones (Unbound lists them with its auth-zones, none of which is
    served here): ``NAME<tab>serial N``, or ``no serial`` before one is loaded, in
    canonical order."""
    _args(req, 0, 0)
    feeds = ctl.server.rpz.feeds if ctl.server.rpz is not None else []
    held = sorted((dns.name.from_text(f.source.name), f.zone) for f in feeds)
    return {"ok": True, "text": "\n".join(
        f"{name}\t" + (f"serial {zone.serial}" if zone is not None and zone.serial is not None
                       else "no serial") for name, zone in held)}


def _policy_feed(ctl: WorkerControl, req: dict):
    """The response policy zone the command names (Unbound's words when there is none)."""
    (arg,) = _args(req, 1, 1)
    _name(arg)
    feed = ctl.server.rpz.find(arg) if ctl.server.rpz is not None else None
    if feed is None:
        raise CommandError(f"no auth-zone {arg}")
    return arg, feed


def rpz_enable(ctl: WorkerControl, req: dict) -> dict:
    _, feed = _policy_feed(ctl, req)
    ctl.server.rpz.enable(feed, True)
    return OK


def rpz_disable(ctl: WorkerControl, req: dict) -> dict:
    _, feed = _policy_feed(ctl, req)
    ctl.server.rpz.enable(feed, False)
    return OK


async def auth_zone_reload(ctl: WorkerControl, req: dict) -> dict:
    arg, feed = _policy_feed(ctl, req)
    if feed.source.zonefile and not await feed.reload_file():
        raise CommandError(f"failed to read {arg}")
    return OK


def auth_zone_transfer(ctl: WorkerControl, req: dict) -> dict:
    arg, feed = _policy_feed(ctl, req)
    if not feed.source.primaries:
        raise CommandError(f"zone xfr task not found {arg}")
    feed.transfer_now()
    return OK


# ---- views: each command of a view that is not configured prints Unbound's words for it
# (not an error line: unbound-control exits 0)
def _no_view(name: str) -> dict:
    return {"ok": True, "text": f"no view with name: {name}"}


def _view(ctl: WorkerControl, name: str):
    """The configured view ``name`` (a resolver.zones.View), or None."""
    return next((v for v in ctl.server.cfg.view if v.name == name), None)


def _view_zones(ctl: WorkerControl, name: str):
    """The LocalZones the view ``name`` serves (None: it has none of its own)."""
    local = ctl.server.resolver.local_zones
    views = local.views if local is not None else None
    return views[name].zones if views and name in views else None


def _change_view(ctl: WorkerControl, view, **fields) -> dict:
    """The running config with the view ``view``'s ``fields`` changed, as a reload."""
    views = tuple(replace(v, **fields) if v.name == view.name else v
                  for v in ctl.server.cfg.view)
    return _change(ctl, view=views)


def _view_and_rest(req: dict) -> tuple[str, str]:
    """A view command's view and the rest of its arguments, refused in Unbound's words
    (``find_arg2``) when there is no rest."""
    args = _args(req, 1)
    if len(args) < 2:
        raise CommandError(f"could not find next argument after {args[0]}")
    return args[0], " ".join(args[1:])


def _view_command(reads_lines: bool = False):
    """A view_ command changing a view: ``fn(ctl, view, rest)`` with the view named first
    (Unbound's words for one that is not configured) and the rest of the arguments, or
    with ``reads_lines`` the lines it read from its standard input."""
    def wrap(fn: Callable[..., dict]) -> Handler:
        def command(ctl: WorkerControl, req: dict) -> dict:
            if reads_lines:
                (name,) = _args(req, 1, 1)
                rest: Any = _input_lines({**req, "args": []})
            else:
                name, rest = _view_and_rest(req)
            view = _view(ctl, name)
            if view is None:
                return _no_view(name)
            return fn(ctl, view, rest)
        command.__name__, command.__doc__ = fn.__name__, fn.__doc__
        return command
    return wrap


def view_list_local_zones(ctl: WorkerControl, req: dict) -> dict:
    (name,) = _args(req, 1, 1)
    if _view(ctl, name) is None:
        return _no_view(name)
    return {"ok": True, "text": _zones_text(_view_zones(ctl, name))}


def view_list_local_data(ctl: WorkerControl, req: dict) -> dict:
    (name,) = _args(req, 1, 1)
    if _view(ctl, name) is None:
        return _no_view(name)
    return {"ok": True, "text": _data_text(_view_zones(ctl, name))}


@_view_command()
def view_local_zone(ctl: WorkerControl, view, rest: str) -> dict:
    zone, _, kind = rest.partition(" ")
    if not kind:
        raise CommandError(f"could not find next argument after {zone}")
    return _change_view(ctl, view, local=_with_zones(view.local, [_zone_line(zone, kind)]))


@_view_command()
def view_local_zone_remove(ctl: WorkerControl, view, zone: str) -> dict:
    zone = _name(zone)
    return _change_view(ctl, view, local=tuple(z for z in view.local
                                               if not _same(z.name, zone)))


@_view_command()
def view_local_data(ctl: WorkerControl, view, line: str) -> dict:
    if not _has_data(line):
        return OK
    (line,) = _setting("local_data", [line])
    return _change_view(ctl, view, local_data=view.local_data + (line,))


@_view_command()
def view_local_data_remove(ctl: WorkerControl, view, owner: str) -> dict:
    return _change_view(ctl, view, **_view_without_data(view, [_name(owner)]))


@_view_command(reads_lines=True)
def view_local_datas(ctl: WorkerControl, view, lines: list[str]) -> dict:
    added, refused, taken = _input_records(lines)
    if added:
        _change_view(ctl, view, local_data=view.local_data + tuple(added))
    return {"ok": True, "lines": refused + [f"added {taken} datas"]}


@_view_command(reads_lines=True)
def view_local_datas_remove(ctl: WorkerControl, view, lines: list[str]) -> dict:
    names, refused = _names(lines)
    if names:
        _change_view(ctl, view, **_view_without_data(view, names))
    return {"ok": True, "lines": refused + [f"removed {len(names)} datas"]}


def ratelimit_list(ctl: WorkerControl, req: dict) -> dict:
    """The zones at their upstream ratelimit this second (``+a``: every zone counted), as
    Unbound lists them: ``ZONE RATE limit LIMIT``."""
    args = _args(req, 0, 1)
    if args and args[0] != "+a":
        raise CommandError(f"unknown flag {args[0]!r} (only +a)")
    r = ctl.server.resolver
    rates = r.cache.infra.rates
    if not (rates.enabled or args):
        return {"ok": True, "text": ""}
    lines = []
    for lzone in list(rates.counts):
        rate, limit = rates.rate(lzone, r.clock()), rates.limit_for(lzone)
        if args or 0 < limit <= rate:
            lines.append(f"{dns.name.from_wire(lzone, 0)[0]} {rate} limit {limit}")
    return {"ok": True, "text": "\n".join(lines)}


def ip_ratelimit_list(ctl: WorkerControl, req: dict) -> dict:
    """The clients at their ``ip-ratelimit`` budget now (``+a``: every client with a
    bucket), as Unbound lists them: ``ADDRESS RATE limit LIMIT``."""
    args = _args(req, 0, 1)
    if args and args[0] != "+a":
        raise CommandError(f"unknown flag {args[0]!r} (only +a)")
    door = ctl.server.front
    limit = door.client_rate_limit
    return {"ok": True, "text": "\n".join(
        f"{client} {rate} limit {limit}"
        for client, rate, at_limit in door.client_rates()
        if args or at_limit)}


# ---- the queries in flight ------------------------------------------------------------------
def requests_of(server) -> list[list]:
    """The resolutions in flight for clients: type, class, name and seconds running."""
    import dns.rdataclass

    now = time.monotonic()
    out = []
    for drive, started in list(server.misses.items()):
        miss = getattr(drive, "miss", None)
        if not miss:
            continue
        q = miss[0]
        try:
            name = dns.name.from_wire(q.qname, 0)[0].to_text()
        except dns.exception.DNSException:
            name = "?"
        out.append([dns.rdatatype.to_text(q.qtype), dns.rdataclass.to_text(q.qclass), name,
                    round(now - started, 6)])
    return out


def requestlist_text(requests: list[list], worker: int) -> str:
    """``dump_requestlist`` as Unbound prints one thread's."""
    return "\n".join([f"thread #{worker}", "#   type cl name    seconds    module status",
                      *(f"{i:3d} {t:>4} {c:>2} {name} {age:.6f} iterator resolving"
                        for i, (t, c, name, age) in enumerate(requests))])


def dump_requestlist(ctl: WorkerControl, req: dict) -> dict:
    _args(req, 0, 0)
    requests = requests_of(ctl.server)
    return {"ok": True, "requests": requests, "text": requestlist_text(requests, 0)}


def flush_requestlist(ctl: WorkerControl, req: dict) -> dict:
    """Drops every resolution in flight: its clients get no answer (Unbound's
    mesh_delete_all)."""
    _args(req, 0, 0)
    for drive in list(ctl.server.misses):
        drive.cancel()
    return OK


def _setting(name: str, value: Any) -> Any:
    try:
        return convert(name, value)
    except ConfigError as e:
        raise CommandError(str(e)) from None


def _input_lines(req: dict) -> list[str]:
    """The non-blank lines of what a list command read from its standard input."""
    _args(req, 0, 0)
    text = req.get("input")
    if not isinstance(text, str):
        raise CommandError(f"{req['cmd']} reads its list from its standard input")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _input_names(req: dict) -> tuple[list[str], list[str]]:
    """The names a list command read from its input: ``_names``."""
    return _names(_input_lines(req))


def _names(lines: list[str]) -> tuple[list[str], list[str]]:
    """The names of ``lines``, one per line, and for each line that is not one Unbound's
    two error lines: why, then which line."""
    names, refused = [], []
    for line in lines:
        try:
            names.append(_name(line))
        except CommandError as e:
            refused += [f"error {e}", f"error for input line: {line}"]
    return names, refused


def _with_zones(local_zone: tuple, zones: list) -> tuple:
    """``local_zone`` with ``zones`` added, each replacing one of its name (whose local data
    it keeps, as Unbound's ``local_zone`` does) and going last; in one pass, as a list on
    stdin may hold a blocklist's hundred thousand zones."""
    by_name = {dns.name.from_text(z.name): z for z in local_zone}
    for zone in zones:
        key = dns.name.from_text(zone.name)
        kept = by_name.pop(key, None)
        by_name[key] = replace(zone, data=kept.data) if kept is not None else zone
    return tuple(by_name.values())


def _records_kept(names: list[str]):
    """A filter of local-data lines that drops every record of ``names``."""
    from resolver.zones import parse_record

    owners = {dns.name.from_text(n).canonicalize().to_wire() for n in names}

    def keep(lines) -> tuple:
        return tuple(line for line in lines if parse_record(line)[0].lower() not in owners)
    return keep


def _without_data(cfg, names: list[str]) -> dict:
    """The changes that remove every local record of ``names``."""
    keep = _records_kept(names)
    return {"local_data": keep(cfg.local_data), "local_data_ptr": keep(cfg.local_data_ptr),
            "local_zone": tuple(replace(z, data=keep(z.data)) for z in cfg.local_zone)}


def _view_without_data(view, names: list[str]) -> dict:
    """The changes to the view ``view`` that remove every local record of ``names``."""
    keep = _records_kept(names)
    return {"local_data": keep(view.local_data),
            "local": tuple(replace(z, data=keep(z.data)) for z in view.local)}


def _listed(ctl: WorkerControl, done: str, refused: list[str], **changes) -> dict:
    """A list command's answer: its refused lines, then ``done`` (Unbound's ``added N
    zones``); the accepted lines are applied in one change."""
    if changes:
        _change(ctl, **changes)
    return {"ok": True, "lines": refused + [done]}


def _zone_line(name: str, kind: str):
    """The local zone ``NAME TYPE`` of a command line (a LocalZone), refused in Unbound's
    words."""
    name = _name(name)
    if kind not in LOCAL_TYPES:
        raise CommandError(f"not a zone type. {kind}")
    (zone,) = _setting("local_zone", [f"{name} {kind}"])
    return zone


def local_zone(ctl: WorkerControl, req: dict) -> dict:
    zone = _zone_line(*_second(req))
    return _change(ctl, local_zone=_with_zones(ctl.server.cfg.local_zone, [zone]))


def local_zones(ctl: WorkerControl, req: dict) -> dict:
    zones, refused = [], []
    for line in _input_lines(req):
        try:
            if len(line.split()) != 2:
                raise CommandError("a line is NAME TYPE")
            zones += _setting("local_zone", [line])
        except CommandError:
            refused.append(f"error for input line: {line}")
    changes = {"local_zone": _with_zones(ctl.server.cfg.local_zone, zones)} if zones else {}
    return _listed(ctl, f"added {len(zones)} zones", refused, **changes)


def local_zone_remove(ctl: WorkerControl, req: dict) -> dict:
    name = _name_arg(req)
    cfg = ctl.server.cfg
    return _change(ctl, local_zone=tuple(z for z in cfg.local_zone if not _same(z.name, name)))


def local_zones_remove(ctl: WorkerControl, req: dict) -> dict:
    names, refused = _input_names(req)
    cfg = ctl.server.cfg
    gone = {dns.name.from_text(n) for n in names}
    kept = tuple(z for z in cfg.local_zone if dns.name.from_text(z.name) not in gone)
    changes = {"local_zone": kept} if len(kept) != len(cfg.local_zone) else {}
    return _listed(ctl, f"removed {len(names)} zones", refused, **changes)


def _without_rdata(line: str) -> bool:
    """Whether a local-data line is ``NAME [TTL] [CLASS] TYPE`` with no data. Unbound takes
    it with ``ok`` and serves a record of empty data (a malformed answer for most types);
    corenet answers ``ok`` as well, keeps nothing and says so in its log."""
    words = line.split()
    if not 2 <= len(words) <= 4 or words[-1].isdigit():
        return False
    try:
        dns.name.from_text(words[0])
        dns.rdatatype.from_text(words[-1])
    except dns.exception.DNSException:
        return False
    return all(w.isdigit() or w.upper() == "IN" for w in words[1:-1])


def _has_data(line: str) -> bool:
    """Whether a local-data line taken is kept: one with data (the others are logged)."""
    if _without_rdata(line):
        log.warning("local-data %r has no data: not served", line)
        return False
    return True


def local_data(ctl: WorkerControl, req: dict) -> dict:
    line = " ".join(_args(req, 1))
    if not _has_data(line):
        return OK
    (line,) = _setting("local_data", [line])
    return _change(ctl, local_data=ctl.server.cfg.local_data + (line,))


def _input_records(lines: list[str]) -> tuple[list[str], list[str], int]:
    """The records a list command read (one per line): those to add, an error line for
    each line refused, and how many lines were taken (a record without data is taken and
    not kept, as Unbound)."""
    added, refused, taken = [], [], 0
    for n, line in enumerate(lines, 1):
        try:
            if _has_data(line):
                added += _setting("local_data", [line])
            taken += 1
        except CommandError as e:
            refused.append(f"error parsing local-data at line {n} '{line}': {e}")
    return added, refused, taken


def local_datas(ctl: WorkerControl, req: dict) -> dict:
    added, refused, taken = _input_records(_input_lines(req))
    changes = {"local_data": ctl.server.cfg.local_data + tuple(added)} if added else {}
    return _listed(ctl, f"added {taken} datas", refused, **changes)


def local_data_remove(ctl: WorkerControl, req: dict) -> dict:
    name = _name_arg(req)
    return _change(ctl, **_without_data(ctl.server.cfg, [name]))


def local_datas_remove(ctl: WorkerControl, req: dict) -> dict:
    names, refused = _input_names(req)
    changes = _without_data(ctl.server.cfg, names) if names else {}
    return _listed(ctl, f"removed {len(names)} datas", refused, **changes)


def _same(a: str, b: str) -> bool:
    return dns.name.from_text(a) == dns.name.from_text(b)


def _insecure_flag(args: list[str]) -> tuple[bool, list[str]]:
    if args and args[0].startswith("+"):
        if args[0] != "+i":
            raise CommandError(f"unknown flag {args[0]!r} (only +i)")
        return True, args[1:]
    return False, args


def _with_insecure(cfg, name: str, add: bool) -> tuple[str, ...]:
    kept = tuple(n for n in cfg.domain_insecure if not _same(n, name))
    return kept + (name,) if add else kept


def _as_given(servers: list[str]) -> list[str]:
    """Servers named on a command line, kept as Unbound keeps them: the last one first
    (``list_forwards`` and ``forward`` show them so; whom to ask is chosen by RTT)."""
    return servers[::-1]


#: the flags unbound-control's forward_add and stub_add take (one word, ``+ipt``): the
#: zone table's key each sets; +i is the negative trust anchor, set apart
_ZONE_FLAGS = {"forward_zone": {"i": None, "t": "forward-tls-upstream"},
               "stub_zone": {"i": None, "p": "stub-prime"}}


def _is_address(text: str) -> bool:
    """Whether a server on a command line is an address (``ADDR[@PORT][#NAME]``, or dig's
    ``ADDR#PORT``), not a host name."""
    import ipaddress

    try:
        ipaddress.ip_address(text.split("#", 1)[0].split("@", 1)[0].strip("[]"))
    except ValueError:
        return False
    return True


def _servers_given(servers: list[str], tls: bool) -> tuple[list[str], list[str]]:
    """A command line's servers as Unbound's ``parse_delegpt`` reads them: addresses, and
    host names for the others (resolved as ``forward-host``'s); without TLS an
    authentication name (``#NAME``) is taken and not used, as in Unbound."""
    addresses, hosts = [], []
    for text in servers:
        kept = text
        if not tls and "#" in text and not text.rsplit("#", 1)[1].isdigit():
            kept = text.rsplit("#", 1)[0]
        if _is_address(kept):
            addresses.append(kept)
            continue
        try:
            dns.name.from_text(kept.split("@", 1)[0])
        except dns.exception.DNSException:
            raise CommandError(f"cannot parse '{text}'") from None
        hosts.append(kept)
    return addresses, hosts


def _zone_table(name: str, kind: str, servers: list[str], tls: bool) -> dict[str, Any]:
    """The ``[[forward-zone]]`` or ``[[stub-zone]]`` table (``kind``) of a zone whose
    servers a command line names."""
    addresses, hosts = _servers_given(servers, tls)
    table: dict[str, Any] = {"name": name}
    if addresses:
        table[f"{kind}-addr"] = _as_given(addresses)
    if hosts:
        table[f"{kind}-host"] = _as_given(hosts)
    return table


def _zone_add(ctl: WorkerControl, req: dict, key: str) -> dict:
    args = _args(req, 0)
    flags = ""
    if args and args[0].startswith("+"):
        if len(args) < 2:
            _second(req)
        flags, args = args[0][1:], args[1:]
        for i, f in enumerate(flags):
            if f not in _ZONE_FLAGS[key]:          # Unbound's words: the rest of the word
                raise CommandError(f": unknown option {flags[i:]}")
    if len(args) < 2:
        _second({**req, "args": args})
    name = _name(args[0])
    table = _zone_table(name, "forward" if key == "forward_zone" else "stub", args[1:],
                        "t" in flags)
    table.update({_ZONE_FLAGS[key][f]: True for f in flags if _ZONE_FLAGS[key][f]})
    (zone,) = _setting(key, [table])
    cfg = ctl.server.cfg
    changes = {key: tuple(z for z in getattr(cfg, key) if not _same(z.name, name)) + (zone,)}
    if "i" in flags:
        changes["domain_insecure"] = _with_insecure(cfg, name, True)
    return _change(ctl, **changes)


def _zone_remove(ctl: WorkerControl, req: dict, key: str) -> dict:
    insecure, args = _insecure_flag(_args(req, 1, 2))
    if len(args) != 1:
        raise CommandError(f"usage: {req['cmd']} {COMMANDS[req['cmd']].args}")
    name = _name(args[0])
    cfg = ctl.server.cfg
    changes = {key: tuple(z for z in getattr(cfg, key) if not _same(z.name, name))}
    if insecure:
        changes["domain_insecure"] = _with_insecure(cfg, name, False)
    return _change(ctl, **changes)


def forward(ctl: WorkerControl, req: dict) -> dict:
    """Unbound's ``forward``: the root's forwarders shown, removed (``off``) or set."""
    args = _args(req, 0)
    cfg = ctl.server.cfg
    others = tuple(z for z in cfg.forward_zone if not _same(z.name, "."))
    if not args:
        root = [z for z in cfg.forward_zone if _same(z.name, ".")]
        return {"ok": True,
                "text": _servers_text([h.addr for h in root[0].hosts],
                                      [s.addr for s in root[0].servers])
                if root else "off (using root hints)"}
    if args == ["off"]:
        return _change(ctl, forward_zone=others)
    (zone,) = _setting("forward_zone", [_zone_table(".", "forward", args, False)])
    return _change(ctl, forward_zone=others + (zone,))


def forward_add(ctl: WorkerControl, req: dict) -> dict:
    return _zone_add(ctl, req, "forward_zone")


def forward_remove(ctl: WorkerControl, req: dict) -> dict:
    return _zone_remove(ctl, req, "forward_zone")


def stub_add(ctl: WorkerControl, req: dict) -> dict:
    return _zone_add(ctl, req, "stub_zone")


def stub_remove(ctl: WorkerControl, req: dict) -> dict:
    return _zone_remove(ctl, req, "stub_zone")


def insecure_add(ctl: WorkerControl, req: dict) -> dict:
    name = _name_arg(req)
    return _change(ctl, domain_insecure=_with_insecure(ctl.server.cfg, name, True))


def insecure_remove(ctl: WorkerControl, req: dict) -> dict:
    name = _name_arg(req)
    return _change(ctl, domain_insecure=_with_insecure(ctl.server.cfg, name, False))


# ---- options --------------------------------------------------------------------------------
def setting_name(text: str) -> str:
    """The settings table's name for ``text`` (the key, Unbound's name, ``-`` or ``_``, a
    trailing ``:`` as unbound-control takes it)."""
    name = text.rstrip(":").strip().replace("-", "_")
    name = ALIASES.get(name, name)
    if name not in SETTINGS:
        raise CommandError(f"unknown option {text.rstrip(':')!r}")
    return name


def option_text(value: Any) -> str:
    """A setting's value as ``get_option`` prints it (lists one item per line)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return ""
    if (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], int)):                           # an address
        return f"{value[0]}@{value[1]}"
    if isinstance(value, tuple):
        return "\n".join(option_text(v) for v in value)
    if hasattr(value, "name") and hasattr(value, "servers"):          # a zone
        return f"{value.name} {' '.join(s.key for s in value.servers)}"
    if hasattr(value, "name") and hasattr(value, "type"):             # a local zone
        return f"{value.name} {value.type}"
    if hasattr(value, "with_prefixlen"):                              # a network
        return value.with_prefixlen
    if isinstance(value, float) and value.is_integer():               # seconds, whole
        return str(int(value))
    return str(value)


def _milliseconds(text: str) -> str | None:
    """The corenet key (seconds) of Unbound's option ``text`` when Unbound's is in
    milliseconds (``unbound_conf.MILLISECONDS``): get_option and set_option take and print
    such an option in milliseconds under Unbound's name, as Unbound does; else None."""
    return unbound_conf.MILLISECONDS.get(text.rstrip(":").strip().replace("_", "-"))


def get_option(ctl: WorkerControl, req: dict) -> dict:
    """A setting's value; one left unset that sets a limit of the engine is that limit's
    value in force, as Unbound prints its default. An Unbound option with no setting of
    its own is answered as ``_unbound_option`` says; one that Unbound keeps in
    milliseconds is printed in milliseconds."""
    text = " ".join(_args(req, 0))
    if not text:                              # Unbound's words for no name
        raise CommandError("unknown option")
    seconds_key = _milliseconds(text)
    if seconds_key is not None:
        seconds = float(_value(ctl, seconds_key) if seconds_key.replace("-", "_") in SETTINGS
                        else _unbound_option(ctl, seconds_key))
        return {"ok": True, "text": str(round(seconds * 1000))}
    try:
        name = setting_name(text)
    except CommandError:
        return {"ok": True, "text": _unbound_option(ctl, text.rstrip(":").strip())}
    return {"ok": True, "text": option_text(_value(ctl, name))}


def _value(ctl: WorkerControl, text: str) -> Any:
    """The value in force of the setting ``text``: one left unset that sets a limit of the
    engine is that limit's value."""
    name = setting_name(text)
    value = getattr(ctl.server.cfg, name)
    if value is None and name in RELOADED_LIMIT_SETTINGS:
        value = getattr(ctl.server.resolver.limits, RELOADED_LIMIT_SETTINGS[name])
    return value


def _unbound_option(ctl: WorkerControl, key: str) -> str:
    """``get_option`` of Unbound's option ``key`` where no setting holds it: a limit of
    the engine in force, the one value that is corenet's behaviour
    (``unbound_conf.FIXED``), the one cache's size for ``msg-cache-size`` and
    ``rrset-cache-size``, the first listener's port for ``port``, the modules that run for
    ``module-config``; else the unknown-option error, with why corenet has none."""
    key = key.replace("_", "-")
    same = unbound_conf.same_setting(key)
    if same is not None and same[0].replace("-", "_") in LIMITS:
        return option_text(getattr(ctl.server.resolver.limits,
                                   LIMITS[same[0].replace("-", "_")].limit))
    if key in unbound_conf.FIXED:
        return unbound_conf.FIXED[key][0]
    cfg = ctl.server.cfg
    if key in unbound_conf.CACHE_SIZES:
        return str(cfg.cache_size)
    if key == "port":
        return str(cfg.listen[0][1]) if cfg.listen else "53"
    if key == "module-config":
        resolver = ctl.server.resolver
        return " ".join(m for m, on in (("dns64", cfg.dns64),
                                        ("validator", resolver.dnssec is not None),
                                        ("cachedb", resolver.shared is not None),
                                        ("iterator", True)) if on)
    why = unbound_conf.NOT_CARRIED.get(key) or unbound_conf.BUILT_IN.get(key)
    raise CommandError(f"unknown option {key!r}" + (f" ({why})" if why else ""))


def parse_value(text: str) -> Any:
    """A value as ``set_option`` takes it: ``yes``/``no``, TOML, or a bare word as text."""
    if text in ("yes", "no"):
        return text == "yes"
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_option(ctl: WorkerControl, req: dict) -> dict:
    # NAME: VALUE, or as Unbound takes it too, NAME VALUE (the colon is the name's); one
    # word (NAME:VALUE too) is refused in Unbound's words: it splits at the first space
    text, value = _second(req)
    seconds_key = _milliseconds(text)
    name = setting_name(seconds_key or text)
    if SETTINGS[name].restart:
        raise CommandError(f"{SETTINGS[name].key}: changes only at a restart, not with "
                           "set_option")
    parsed = parse_value(value.strip())
    if seconds_key is not None and isinstance(parsed, (int, float)) \
            and not isinstance(parsed, bool):
        parsed = parsed / 1000                  # Unbound's milliseconds
    value = _setting(name, parsed)
    return _change(ctl, **{name: value})


# ---- the daemon -----------------------------------------------------------------------------
def verbosity(ctl: WorkerControl | None, req: dict) -> dict:
    (level,) = _args(req, 1, 1)
    if not level.isdigit():                 # "error in verbosity...", as Unbound says
        raise CommandError(f"in verbosity number syntax: {level}")
    # a level above the last shows what the last shows, as Unbound takes it
    logs.set_verbosity(min(int(level), logs.MAX_VERBOSITY))
    return OK


def log_reopen(ctl: WorkerControl | None, req: dict) -> dict:
    _args(req, 0, 0)
    logs.reopen()
    return OK


def stop(ctl: WorkerControl, req: dict) -> dict:
    _args(req, 0, 0)
    ctl.stop()
    return OK


def status_of(server) -> dict:
    """What ``corenet-resolver status`` shows of one worker."""
    from corenet import __version__

    cfg, r = server.cfg, server.resolver
    return {"version": __version__, "pid": os.getpid(), "verbosity": logs.verbosity(),
            "control": control_options(cfg),
            "uptime": time.time() - server.started_at, "workers": 1,
            "listen": [list(a) for a in server.addresses],
            "dnssec": r.dnssec is not None, "cache_bytes": r.cache.bytes,
            "cache_size": cfg.cache_size, "inflight": len(server.misses),
            "log_queries": cfg.log_queries, "uid": os.geteuid(),
            "auto_trust_anchors": r.auto_anchors.describe() if r.auto_anchors else []}


def control_options(cfg) -> list[str]:
    """The ``options:`` of ``status`` that tell how commands come, as Unbound's: ``control``
    with ``(ssl)`` for the TCP listener with TLS, ``(namedpipe)`` for a socket path."""
    if not (cfg.control or cfg.control_enable):
        return []
    ssl = cfg.control_enable and cfg.control_use_cert
    return ["control" + ("(ssl)" if ssl else "") + ("(namedpipe)" if cfg.control else "")]


def status(ctl: WorkerControl, req: dict) -> dict:
    return {"ok": True, "status": status_of(ctl.server)}


def reload(ctl: WorkerControl, req: dict) -> dict:
    return ctl.reload()


reload_keep_cache = reload            # a reload keeps the cache here


def fast_reload_options(req: dict) -> tuple[int, bool]:
    """``fast_reload``'s options as Unbound reads them (``+v``, ``+vv``, ``+p``, ``+d``, in
    one word or several): (how verbose, whether the queries in flight are dropped)."""
    verbose, drop = 0, False
    for word in _args(req, 0):
        if not word.startswith("+"):
            raise CommandError(f": unknown option '{word}'")
        for flag in word[1:]:
            if flag not in "vpd":
                raise CommandError(f": unknown option '+{flag}'")
            verbose += flag == "v"
            drop = drop or flag == "d"
    return verbose, drop


async def fast_reload(ctl: WorkerControl, req: dict) -> dict:
    verbose, drop = fast_reload_options(req)
    answer = await ctl.reload()
    if drop and answer.get("ok"):
        flush_requestlist(ctl, {"cmd": "flush_requestlist", "args": []})
    return {**answer, "verbose": verbose}


def flush_stats(ctl: WorkerControl, req: dict) -> dict:
    _args(req, 0, 0)
    ctl.stats_base = ctl.server.stats()
    return OK


def stats(ctl: WorkerControl, req: dict) -> dict:
    """The totals (what ``/metrics`` and the JSON API read); with ``reset`` or ``since``
    (the command line's ``stats``/``stats_noreset``), the figures since the last reset."""
    from resolver.daemon.metrics import since

    now = ctl.server.stats()
    if req.get("since") or req.get("reset"):
        shown = since(now, ctl.stats_base)
        if req.get("reset"):
            ctl.stats_base = now
        return {"ok": True, "stats": shown}
    return {"ok": True, "stats": now}


def stats_noreset(ctl: WorkerControl, req: dict) -> dict:
    return stats(ctl, {**req, "since": True, "reset": False})


Handler = Callable[[Any, dict], "dict | Awaitable[dict]"]

#: What a worker does for each command (every name of the command table has one).
WORKER: dict[str, Handler] = {name: globals()[name] for name in COMMANDS}


async def run(handlers: dict[str, Handler], ctl: Any, req: dict) -> dict:
    """One request through ``handlers``: an unknown command or a refused one is an error
    answer, never an exception."""
    handler = handlers.get(req["cmd"])
    if handler is None:
        return {"ok": False, "error": f"unknown command {req['cmd']!r}"}
    try:
        out = handler(ctl, req)
        if inspect.isawaitable(out):
            out = await out
    except CommandError as e:
        return {"ok": False, "error": str(e)}
    return out


# ---- several workers ------------------------------------------------------------------------
def combine(cmd: str, answers: list[dict], errors: list[str]) -> dict:
    """The one answer of a command asked of every worker, as its scope says."""
    if errors:
        reasons = {e.split(": ", 1)[-1] for e in errors}
        if not answers and len(reasons) == 1:      # every worker refused it alike
            return {"ok": False, "error": reasons.pop()}
        return {"ok": False, "error": "; ".join(errors), "workers": len(answers)}
    scope = COMMANDS[cmd].scope
    if scope == "per worker":
        text = "\n".join(f"worker {i}:\n{a.get('text', '')}" for i, a in enumerate(answers))
        return {"ok": True, "text": text, "workers": [dict(a) for a in answers]}
    if scope == "union of workers" or cmd in MERGE:
        return MERGE[cmd](answers)
    out = dict(answers[0]) if answers else {"ok": True}
    out["workers"] = len(answers)
    return out


def union_dump(answers: list[dict]) -> dict:
    """Every worker's cached answers once: the one with the most TTL left."""
    from resolver.cache.dump import END, HEADER, START

    best: dict[tuple, tuple[int, str]] = {}
    for a in answers:
        for line in a["lines"]:
            parts = line.split()
            if len(parts) == 9 and parts[0] == "msg":
                key = tuple(p.lower() for p in parts[1:5])
                if key not in best or int(parts[5]) > best[key][0]:
                    best[key] = (int(parts[5]), line)
    return {"ok": True, "lines": [HEADER, f"; the union of the caches of {len(answers)} "
                                  "workers", START, *(v[1] for v in best.values()), END]}


def union_flush(answers: list[dict]) -> dict:
    """``flush``: the shared cache's deletions counted once (each worker deletes the same
    keys: the first one counts them)."""
    out = {"ok": True, "workers": len(answers),
           "flushed": answers[0].get("flushed") if answers else None}
    deleted = [a["shared_deleted"] for a in answers if "shared_deleted" in a]
    if deleted:
        out["shared_deleted"] = (None if all(d is None for d in deleted)
                                 else sum(d or 0 for d in deleted))
    return out


def union_requests(answers: list[dict]) -> dict:
    """``dump_requestlist``: each worker's list under its number, as Unbound's threads."""
    return {"ok": True, "workers": len(answers),
            "text": "\n".join(requestlist_text(a["requests"], i) for i, a in enumerate(answers))}


def union_lines(answers: list[dict]) -> dict:
    """The lines every worker printed, one after the other (each has its own table)."""
    return {"ok": True, "workers": len(answers),
            "text": "\n".join(a["text"] for a in answers if a.get("text"))}


def union_infra(answers: list[dict]) -> dict:
    """``dump_infra``: each server address and zone once, from the worker that heard from
    it last (the most seconds left)."""
    best: dict[tuple, tuple[int, str]] = {}
    for a in answers:
        for line in a["text"].splitlines():
            words = line.split()
            left = int(words[3]) if len(words) > 3 and words[2] == "ttl" else -1
            if tuple(words[:2]) not in best or left > best[tuple(words[:2])][0]:
                best[tuple(words[:2])] = (left, line)
    return {"ok": True, "workers": len(answers),
            "text": "\n".join(line for _, line in best.values())}


def union_removed(answers: list[dict]) -> dict:
    """A flush's counts: what every worker's cache removed, summed."""
    return {"ok": True, "workers": len(answers),
            "removed": {k: sum(a["removed"][k] for a in answers)
                        for k in ("rrsets", "messages", "keys")}}


#: How the answers of every worker make one, for the commands whose answers differ.
MERGE = {"dump_cache": union_dump, "flush": union_flush, "flush_zone": union_removed,
         "flush_bogus": union_removed, "flush_negative": union_removed,
         "dump_requestlist": union_requests, "ratelimit_list": union_lines,
         "ip_ratelimit_list": union_lines, "dump_infra": union_infra}

#: Commands the supervisor of several workers applies to itself as well as to each worker.
HERE_TOO = frozenset(c.name for c in COMMANDS.values() if c.scope == "supervisor and every worker")

#: Commands whose request or answer may hold a whole cache or list (``dump_cache``, and
#: those that read their standard input).
BULK = frozenset({"dump_cache"} | {c.name for c in COMMANDS.values() if c.stdin})
