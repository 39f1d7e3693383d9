"""The daemon's configuration: defaults, a TOML file (``tomllib``) and the command line.

Precedence is default < config file < command line. Every value is checked against the
settings table (``resolver.daemon.settings``) before anything binds, and a bad one raises
:class:`ConfigError` whose message names the option, and in a file its line (the CLI prints
it on one line and exits with status 2).
"""
from __future__ import annotations

import functools
import ipaddress
import re
import tomllib
from dataclasses import replace
from typing import Any

from resolver.daemon.settings import (ALIASES, BY_NAME, LIMITS, LIMITS_AS_SETTINGS,
                                      RESTART_SETTINGS, ZONE_SETTINGS, Config, check_limits,
                                      limit_value)
from resolver.daemon.values import Address, ConfigError, parse_address
from resolver.limits import DEFAULT as _LIMITS, Limits

__all__ = ["Address", "Config", "ConfigError", "RESTART_SETTINGS", "ZONE_SETTINGS", "SETTINGS",
           "ALIASES", "LIMIT_SETTINGS", "RELOADED_LIMIT_SETTINGS", "build", "load_file",
           "key_line", "limit_value", "parse_address", "engine_limits", "engine_attributes",
           "make_zones",
           "insecure_domains", "check_encrypted"]

#: Every setting's name (``Config``'s fields but ``config_file``).
SETTINGS = tuple(BY_NAME)

#: The settings that set a limit of the engine, and the limit each one sets: those only a
#: restart changes are part of ``Config.limits`` (``_effective_limits``), the others are
#: applied to the engine's limits at start, at every reload and by set_option
#: (``engine_limits``).
LIMIT_SETTINGS = {s.name: s.limit for s in BY_NAME.values() if s.limit and s.restart}
RELOADED_LIMIT_SETTINGS = {s.name: s.limit for s in BY_NAME.values()
                           if s.limit and not s.restart}

#: The settings that set an attribute of the engine (``Setting.engine``), and the attribute.
ENGINE_SETTINGS = {s.name: s.engine for s in BY_NAME.values() if s.engine}


def convert(name: str, value: Any, what: str | None = None) -> Any:
    """One setting's raw value (from the file or the command line), checked."""
    setting = BY_NAME.get(name)
    if setting is None:
        raise ConfigError(f"unknown setting {what or name.replace('_', '-')!r}")
    return setting.convert(value, what or setting.key)


def _effective_limits(cfg: Config) -> Limits:
    """``cfg.limits`` with the settings that set a limit at a restart put in (those
    given: a setting whose value is None leaves its limit as ``[limits]`` has it). The
    limits are checked with the others put in too (``cache-min-ttl`` above
    ``cache-max-ttl`` is refused)."""
    changes = {limit: getattr(cfg, name) for name, limit in LIMIT_SETTINGS.items()
               if getattr(cfg, name) is not None}
    lim = cfg.limits.replace(**changes) if changes else cfg.limits
    check_limits(engine_limits(replace(cfg, limits=lim), lim))
    return lim


def engine_limits(cfg: "Config", base=_LIMITS, prefetch_fraction: float | None = None):
    """``base`` (the engine's limits) with the settings a reload changes applied: each
    that sets a limit (one that is None: as the config's limits have it), then serve-stale
    and prefetch turned off where they are. ``prefetch_fraction``: the prefetch point when
    prefetch is on (``base``'s when None). Made in one step: ``Limits`` has some seventy
    fields, and a reload makes this on the loop."""
    changes = {limit: getattr(cfg.limits, limit) if getattr(cfg, name) is None
               else getattr(cfg, name) for name, limit in RELOADED_LIMIT_SETTINGS.items()}
    if not cfg.serve_stale:
        changes["stale_window"] = 0
    point = base.prefetch_fraction if prefetch_fraction is None else prefetch_fraction
    changes["prefetch_fraction"] = point if cfg.prefetch else 0.0
    return replace(base, **changes)


def engine_attributes(cfg: "Config", reloading: bool = False) -> dict[str, Any]:
    """The engine's attributes the settings set (``Setting.engine``) and their values in
    ``cfg``: every one when the engine is made, those a reload changes when ``reloading``."""
    out = {attr: getattr(cfg, name) for name, attr in ENGINE_SETTINGS.items()
           if not (reloading and BY_NAME[name].restart)}
    out["pad_queries"] = cfg.pad_queries_block_size if cfg.pad_queries else 0
    if cfg.outgoing_interface:
        # as Unbound: no query of a family that no outgoing-interface address is of
        families = {":" in a for a in cfg.outgoing_interface}
        out["ipv6"] = cfg.do_ip6 and True in families
        out["do_ip4"] = cfg.do_ip4 and False in families
    return out


def make_zones(cfg: Config):
    """The config's zones as ``resolver.zones.Zones``, Unbound's default local zones
    included; a name given twice raises ConfigError."""
    forward = tuple(replace(z, tls_cert_bundle=cfg.tls_cert_bundle,
                            tls_system_cert=cfg.tls_system_cert) if z.transport == "tls"
                    else z for z in cfg.forward_zone)
    t = tags(cfg)
    try:
        zones = _zones(forward, cfg.stub_zone, cfg.local_zone,
                       cfg.local_data + cfg.local_data_ptr, cfg.unblock_lan_zones, cfg.view,
                       view_clients(cfg) if cfg.access_control_view or t else (), t,
                       cfg.local_zone_override)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return zones if zones else None


def view_clients(cfg: Config) -> tuple:
    """The client networks that map clients to views and tags
    (``resolver.zones.ClientNets``): each of the ACL's (none a view), and
    ``access-control-view``'s (``tags`` has the tags' own)."""
    return (*((n, None) for n in cfg.allow + cfg.allow_snoop),
            *((net, None) for net, _ in cfg.access_control),
            *cfg.access_control_view)


def tags(cfg: Config):
    """The config's tags (``define-tag``, ``local-zone-tag``, ``access-control-tag``,
    ``-tag-action``, ``-tag-data``) as ``resolver.zones.Tags``."""
    from resolver.zones import Tags

    return Tags(cfg.define_tag, cfg.local_zone_tag, cfg.access_control_tag,
                cfg.access_control_tag_action, cfg.access_control_tag_data)


def tag_networks(cfg: Config) -> tuple:
    """The client networks the tag settings name (each an ``allow`` entry of the ACL unless
    ``access-control`` gives it an action, as Unbound makes them)."""
    return (*(n for n, _ in cfg.access_control_tag),
            *(n for n, _, _ in cfg.access_control_tag_action),
            *(n for n, _, _ in cfg.access_control_tag_data))


@functools.lru_cache(maxsize=1)
def _zones(forward, stub, local, local_data, unblock_lan_zones: bool, views, clients, tags,
           overrides):
    """The zones of these tables, the last set kept (a set of zones does not change once
    made): :func:`build` checks a config's zones and a reload then takes the same set,
    made once, and a reload that changes no zone makes none."""
    from resolver.zones import Zones

    return Zones(forward, stub, local, local_data, defaults=True,
                 unblock_lan_zones=unblock_lan_zones, views=views, view_clients=clients,
                 tags=tags, overrides=overrides)


def insecure_domains(cfg: Config) -> tuple[str, ...]:
    """The negative trust anchors: ``domain-insecure``, and the AS112 reverse zones with
    ``insecure-lan-zones`` (as Unbound)."""
    if not cfg.insecure_lan_zones:
        return cfg.domain_insecure
    from resolver.zones import AS112_ZONES

    return cfg.domain_insecure + tuple(z for z in AS112_ZONES if z not in cfg.domain_insecure)


def unloadable_pair(cfg: "Config", e: Exception) -> ConfigError:
    """The error for a certificate and key that do not load together."""
    return ConfigError(f"tls-service-pem/tls-service-key: cannot load "
                       f"{cfg.tls_service_pem!r} with {cfg.tls_service_key!r}: {e}")


def check_encrypted(cfg: "Config") -> None:
    """What the encrypted listeners need together: a key and certificate that load and
    cipher suites that OpenSSL can use (checked here, in a context like the listeners', so
    that a bad setting stops the daemon or a reload before anything changes), and plain
    HTTP on loopback unless allowed elsewhere."""
    if cfg.tls_listen or cfg.https_listen:
        if cfg.tls_service_key is None or cfg.tls_service_pem is None:
            raise ConfigError("tls-service-key and tls-service-pem are needed by "
                              "tls-listen and https-listen")
        import ssl
        from resolver.daemon.tls_server import ServerContext, read_ticket_keys
        try:
            keys = read_ticket_keys(cfg.tls_session_ticket_keys)
        except (OSError, ValueError) as e:
            raise ConfigError(f"tls-session-ticket-keys: {e}") from None
        try:
            ServerContext(cfg.tls_service_pem, cfg.tls_service_key, (), 0, cfg.tls_ciphers,
                          cfg.tls_ciphersuites, keys)
        except ValueError as e:
            raise ConfigError(f"tls-ciphers/tls-ciphersuites: {e}") from None
        except (OSError, ssl.SSLError) as e:
            raise unloadable_pair(cfg, e) from None
    if not cfg.http_notls_allow_nonlocal:
        for host, _ in cfg.http_listen:
            if not ipaddress.ip_address(host).is_loopback:
                raise ConfigError(f"http-listen: {host} is not a loopback address (set "
                                  "http-notls-allow-nonlocal to serve plain HTTP there)")


def load_file(path: str) -> dict[str, Any]:
    """The settings of a TOML file, converted and checked (keys may use - or _). An error
    names the file, the line of the key (of the entry, in a zone table) and the key."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except OSError as e:
        raise ConfigError(f"--config: cannot read {path!r}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"--config: {path}: not UTF-8 text ({e.reason})") from None
    return load_text(text, path)


def load_text(text: str, path: str) -> dict[str, Any]:
    """The settings of TOML ``text`` (from ``path``, which errors name), as `load_file`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--config: {path}: {e}") from None
    if isinstance(data.get("server"), dict):     # a [server] table is accepted too
        data = {**{k: v for k, v in data.items() if k != "server"}, **data["server"]}

    def where(key: str, line: int = 0) -> str:
        line = line or key_line(text, key)
        return f"{path}:{line}" if line else path

    out: dict[str, Any] = {}
    limits: dict[str, Any] = {}         # a [limits] table and top-level limit keys
    table = data.get("limits")
    if "limits" in data and not isinstance(table, dict):
        raise ConfigError(f"{where('limits')}: limits: expected a [limits] table")
    for key, value in (table or {}).items():
        name = key.replace("-", "_")
        if name not in LIMITS:
            raise ConfigError(f"{where(key)}: unknown limit {key!r} in [limits]")
        if name in LIMITS_AS_SETTINGS:
            raise ConfigError(f"{where(key)}: {key!r} is set by the "
                              f"{LIMITS_AS_SETTINGS[name]!r} setting, not in [limits]")
        limits[name] = (key, value)
    for key, value in data.items():
        name = key.replace("-", "_")
        name = ALIASES.get(name, name)
        if name == "limits":
            continue
        if name in LIMITS and name not in BY_NAME:
            if name in LIMITS_AS_SETTINGS:
                raise ConfigError(f"{where(key)}: {key!r} is set by the "
                                  f"{LIMITS_AS_SETTINGS[name]!r} setting")
            if name in limits:
                raise ConfigError(f"{where(key)}: {key!r} is set both in [limits] and at "
                                  "the top level")
            limits[name] = (key, value)
            continue
        if name not in BY_NAME:
            raise ConfigError(f"{where(key)}: unknown setting {key!r}{did_you_mean(key)}")
        try:
            out[name] = convert(name, value, key)
        except ConfigError as e:
            line = _bad_entry_line(text, key, value, BY_NAME[name].convert, str(e)) \
                if name in ZONE_SETTINGS else 0
            raise ConfigError(f"{where(key, line)}: {e}") from None
    if limits:
        checked = {}
        for name, (key, value) in limits.items():
            try:
                checked[name] = limit_value(name, value)
            except ConfigError as e:
                raise ConfigError(f"{where(key)}: {e}") from None
        lim = _LIMITS.replace(**checked)
        try:
            check_limits(lim)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        out["limits"] = lim
    return out


def did_you_mean(key: str) -> str:
    """The end of an unknown-key error: the key meant, by Unbound's name or by spelling."""
    import difflib

    from resolver.daemon.unbound_conf import hint

    said = hint(key)
    if said:
        return f" (Unbound's option; here: {said})"
    names = {s.key for s in BY_NAME.values()} | {a.replace("_", "-") for a in ALIASES} | \
        {n.replace("_", "-") for n in LIMITS}
    close = difflib.get_close_matches(key.replace("_", "-").lower(), sorted(names), n=1,
                                      cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


def key_line(text: str, key: str) -> int:
    """The line (from 1) where ``key`` is assigned in TOML ``text`` (bare or quoted, at the
    top or in a table), or where a table of that name starts; 0 if not found."""
    quoted = re.escape(key)
    assign = re.compile(rf"""^\s*(?:{quoted}|"{quoted}"|'{quoted}')\s*=""")
    table = re.compile(rf"""^\s*\[\[?\s*(?:server\.)?(?:{quoted}|"{quoted}")\s*\]""")
    for number, line in enumerate(text.splitlines(), 1):
        if assign.match(line) or table.match(line):
            return number
    return 0


def _bad_entry_line(text: str, key: str, value: Any, check, message: str) -> int:
    """The line of the entry of a zone setting that ``check`` refuses: the entry's own line
    (``[[key]]`` or its item in a list) and in it the line of the value or key the error
    quotes; 0 if it cannot be told."""
    items = value if isinstance(value, list) else [value]
    index = next((i for i, item in enumerate(items) if _refused(check, item, key)), None)
    if index is None:
        return 0
    lines = text.splitlines()
    escaped = re.escape(key)
    header = re.compile(rf"""^\s*\[\[\s*(?:server\.)?(?:{escaped}|"{escaped}")\s*\]\]""")
    starts = [n for n, line in enumerate(lines) if header.match(line)]
    if len(starts) == len(items):                     # [[key]] tables, one per entry
        low = starts[index]
        high = next((n for n in range(low + 1, len(lines))
                     if lines[n].lstrip().startswith("[")), len(lines))
    else:                                             # key = [...] (or a table inline)
        low, high = key_line(text, key) - 1, len(lines)
        if low < 0:
            return 0
    quoted = set(re.findall(r"'([^']*)'", message)) | set(re.findall(r'"([^"]*)"', message))
    wanted = [s for s in _strings(items[index]) if any(q and q in s for q in quoted)]
    if isinstance(items[index], str) and len(starts) != len(items):
        wanted.append(items[index])                  # an item of an inline list
    for s in sorted(wanted, key=len, reverse=True):
        for n in range(low, high):
            line = lines[n]
            if (f'"{s}"' in line or f"'{s}'" in line
                    or re.match(rf"""^\s*["']?{re.escape(s)}["']?\s*=""", line)):
                return n + 1
    return low + 1


def _refused(check, item: Any, key: str) -> bool:
    try:
        check([item], key)
    except ConfigError:
        return True
    return False


def _strings(value: Any) -> list[str]:
    """Every string in a TOML value, table keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def build(config_file: str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the file, then ``overrides`` (raw command-line values, None = unset).
    The file is corenet's TOML, or an unbound.conf, read as ``import-unbound`` converts it
    (an error then names the Unbound lines the bad value came from)."""
    from resolver.daemon import unbound_conf

    if config_file is not None and unbound_conf.looks_like_unbound(config_file):
        conv = unbound_conf.convert(unbound_conf.read(config_file))
        conv.check_values()
        try:
            return _build(load_text(conv.toml(config_file), unbound_conf.CONVERTED),
                          config_file, overrides)
        except ConfigError as e:
            raise ConfigError(conv.traced(str(e), config_file)) from None
    return _build(load_file(config_file) if config_file is not None else {}, config_file,
                  overrides)


def _build(values: dict[str, Any], config_file: str | None,
           overrides: dict[str, Any] | None) -> Config:
    """`build` from the file's settings ``values``."""
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        name = ALIASES.get(name, name)
        values[name] = convert(name, value)
    cfg = replace(Config(), **values, config_file=config_file)
    cfg = replace(cfg, limits=_effective_limits(cfg))
    if cfg.metrics is not None and cfg.metrics[1] == 0 and cfg.workers > 1:
        raise ConfigError("--metrics: port 0 cannot be shared by several workers")
    served = {port for _, port in (*cfg.listen, *cfg.tls_listen, *cfg.https_listen,
                                   *cfg.http_listen)}
    stray = sorted(set(cfg.proxy_protocol_port) - served)
    if stray:
        raise ConfigError(f"proxy-protocol-port: {', '.join(map(str, stray))} is not a port "
                          "of listen, tls-listen, https-listen or http-listen "
                          f"({', '.join(map(str, sorted(served)))})")
    try:
        make_zones(cfg)
    except ConfigError as e:
        raise _at_second_mention(config_file, e) from None
    for source in cfg.rpz:
        for t in source.tags:
            if t not in cfg.define_tag:
                raise ConfigError(f"rpz {source.name}: tags: tag {t!r} is not defined "
                                  "(define-tag)")
    check_encrypted(cfg)
    return cfg


#: A zone error that names a zone given twice (resolver.zones).
_TWICE = re.compile(r"zone (\S+) is given twice")


def _at_second_mention(config_file: str | None, e: ConfigError) -> ConfigError:
    """``e`` with the file and line of the zone's second mention when it names a zone given
    twice (as the other zone-table errors carry theirs)."""
    m = _TWICE.search(str(e))
    if config_file is None or m is None:
        return e
    try:
        with open(config_file, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return e
    name = m.group(1).rstrip(".")
    quoted = re.compile(rf"""["']{re.escape(name)}\.?[\s"']""", re.IGNORECASE)
    seen = [n for n, line in enumerate(text.splitlines(), 1) for _ in quoted.finditer(line)]
    return ConfigError(f"{config_file}:{seen[1]}: {e}") if len(seen) >= 2 else e


def apply_zone_ratelimits(cfg: Config, rates) -> None:
    """Gives ``rates`` (the resolver's ``cache.infra.rates``) the config's per-domain upstream
    rate limits (``ratelimit-for-domain``, ``ratelimit-below-domain``); at start and on
    reload."""
    import dns.name

    def wire(pairs):
        return [(dns.name.from_text(d).to_wire(), n) for d, n in pairs]

    rates.configure(wire(cfg.ratelimit_for_domain), wire(cfg.ratelimit_below_domain))
