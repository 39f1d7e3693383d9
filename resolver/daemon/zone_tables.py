"""The config's zone tables (``[[forward-zone]]``, ``[[stub-zone]]``, ``[[local-zone]]``,
``[[view]]``, and the keys of ``[[rpz]]``) and its lists of records (``local-data``,
``local-data-ptr``), read into :mod:`resolver.zones`' objects with the config's value converters
(``resolver.daemon.values``): :func:`zone_tables` is the settings table's converter for each.
"""
from __future__ import annotations

from typing import Any

import dns.name

from resolver.daemon.values import ConfigError, boolean
from resolver.wire.codec import is_subdomain
from resolver.zones import (LOCAL_TYPES, ForwardZone, LocalZone, StubZone, Upstream, View,
                            local_data, parse_record, presentation_name, ptr_records)


def config_table(entry, what: str, keys: tuple[str, ...]) -> dict:
    """A zone table of the config (``[[forward-zone]]``, ``[[rpz]]``...) with its keys
    spelled with hyphens, checked against ``keys``; ValueError names ``what`` and the key."""
    if not isinstance(entry, dict):
        raise ValueError(f"{what}: expected a table, got {entry!r}")
    out = {}
    for key, value in entry.items():
        k = key.replace("_", "-")
        if k not in keys:
            raise ValueError(f"{what}: unknown key {key!r} (known: {', '.join(keys)})")
        out[k] = value
    if "name" not in out:
        raise ValueError(f"{what}: 'name' is missing")
    return out


def _servers(value, what: str, tls: bool = False) -> tuple[Upstream, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError(f"{what}: at least one address is needed")
    servers = tuple(Upstream.parse(v, what, tls) for v in items)
    if len({(s.addr, s.port) for s in servers}) != len(servers):
        raise ValueError(f"{what}: an address is given twice")
    return servers


def _hosts(value, what: str, tls: bool = False) -> tuple[Upstream, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError(f"{what}: at least one host name is needed")
    hosts = tuple(Upstream.parse_host(v, what, tls) for v in items)
    if len({(h.addr, h.port) for h in hosts}) != len(hosts):
        raise ValueError(f"{what}: a host is given twice")
    return hosts


def forward_zone(entry) -> ForwardZone:
    """A ``[[forward-zone]]`` table: ``name``, ``forward-addr`` (a list of addresses) and/or
    ``forward-host`` (a list of host names), ``forward-first``, ``forward-tcp-upstream``,
    ``forward-tls-upstream`` (each address then ``ADDR[@PORT]#AUTH-NAME``)."""
    t = config_table(entry, "forward-zone", ("name", "forward-addr", "forward-host", "forward-first",
                                       "forward-tcp-upstream", "forward-tls-upstream"))
    name = presentation_name(t["name"], "forward-zone name")
    what = f"forward-zone {name}"
    if "forward-addr" not in t and "forward-host" not in t:
        raise ValueError(f"{what}: forward-addr or forward-host is missing")
    tls = boolean(t.get("forward-tls-upstream", False), f"{what}: forward-tls-upstream")
    tcp = boolean(t.get("forward-tcp-upstream", False), f"{what}: forward-tcp-upstream")
    servers = (_servers(t["forward-addr"], f"{what}: forward-addr", tls)
               if "forward-addr" in t else ())
    hosts = (_hosts(t["forward-host"], f"{what}: forward-host", tls)
             if "forward-host" in t else ())
    return ForwardZone(name, servers,
                       boolean(t.get("forward-first", False), f"{what}: forward-first"),
                       "tls" if tls else "tcp" if tcp else "udp", hosts=hosts)


def stub_zone(entry) -> StubZone:
    """A ``[[stub-zone]]`` table: ``name``, ``stub-addr`` (a list of addresses) and/or
    ``stub-host`` (a list of host names), ``stub-first``, ``stub-prime``."""
    t = config_table(entry, "stub-zone", ("name", "stub-addr", "stub-host", "stub-first",
                                    "stub-prime"))
    name = presentation_name(t["name"], "stub-zone name")
    if "stub-addr" not in t and "stub-host" not in t:
        raise ValueError(f"stub-zone {name}: stub-addr or stub-host is missing")
    servers = (_servers(t["stub-addr"], f"stub-zone {name}: stub-addr")
               if "stub-addr" in t else ())
    hosts = (_hosts(t["stub-host"], f"stub-zone {name}: stub-host")
             if "stub-host" in t else ())
    return StubZone(name, servers, hosts,
                    boolean(t.get("stub-first", False), f"stub-zone {name}: stub-first"),
                    boolean(t.get("stub-prime", False), f"stub-zone {name}: stub-prime"))


def local_zone(entry) -> LocalZone:
    """A ``[[local-zone]]`` table (``name``, ``type``, ``local-data``: zone-file lines) or
    Unbound's one-line form, ``"NAME TYPE"``."""
    if isinstance(entry, str):
        parts = entry.split()
        if len(parts) != 2:
            raise ValueError(f"local-zone: expected \"NAME TYPE\", got {entry!r}")
        entry = {"name": parts[0], "type": parts[1]}
    t = config_table(entry, "local-zone", ("name", "type", "local-data"))
    name = presentation_name(t["name"], "local-zone name")
    kind = t.get("type", "static")
    if kind not in LOCAL_TYPES:
        raise ValueError(f"local-zone {name}: type {kind!r} is not one of "
                         f"{', '.join(LOCAL_TYPES)}")
    data = t.get("local-data", ())
    data = (data,) if isinstance(data, str) else data
    if not isinstance(data, (list, tuple)):
        raise ValueError(f"local-zone {name}: local-data: expected a list of records")
    zone = dns.name.from_text(name).to_wire()
    for line in data:
        if not is_subdomain(parse_record(line)[0], zone):
            raise ValueError(f"local-zone {name}: local-data {line!r} is outside the zone")
    return LocalZone(name, kind, tuple(data))


def view(entry) -> View:
    """A ``[[view]]`` table: ``name``, ``view-first``, and the view's own ``local-zone``
    (tables or ``"NAME TYPE"`` strings, as the global setting), ``local-data`` and
    ``local-data-ptr``."""
    t = config_table(entry, "view", ("name", "view-first", "local-zone", "local-data",
                                     "local-data-ptr"))
    name = t["name"]
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"view: name: expected a word, got {name!r}")
    what = f"view {name}"
    zones = t.get("local-zone", ())
    zones = [zones] if isinstance(zones, (str, dict)) else zones
    if not isinstance(zones, (list, tuple)):
        raise ValueError(f"{what}: local-zone: expected a list, got {zones!r}")
    try:
        local = tuple(local_zone(z) for z in zones)
        data = local_data(t.get("local-data", ())) + ptr_records(t.get("local-data-ptr", ()))
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None
    return View(name, local, data, boolean(t.get("view-first", False), f"{what}: view-first"))


def zone_tables(name: str):
    """A zone setting (``resolver.zones``): a list of tables, or of zone-file lines for
    ``local-data`` and ``local-data-ptr``."""
    def zone_tables_(value: Any, what: str) -> tuple:
        if isinstance(value, dict) or (name == "local_zone" and isinstance(value, str)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{what}: expected a list of tables, got {value!r}")
        try:
            if name == "local_data":
                return local_data(value)
            if name == "local_data_ptr":
                return ptr_records(value)
            parse = {"forward_zone": forward_zone, "stub_zone": stub_zone,
                     "local_zone": local_zone, "view": view}[name]
            return tuple(parse(v) for v in value)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    zone_tables_.zone = True
    return zone_tables_
