"""The daemon's config values, one converter each: ``(raw value, the name to give in an
error) -> the checked value``, raising :class:`ConfigError` that names it. The settings table
(``resolver.daemon.settings``) and the zone tables (``resolver.daemon.zone_tables``) are
read with them.
"""
from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A bad option or config value; the message names it."""


#: An address to serve or send to: (host, port).
Address = tuple[str, int]

#: The largest TTL there is (RFC 2181 section 8).
TTL_MAX = 2**31 - 1

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


# ---- converters: (raw value, the name to give in an error) -> the checked value ----------------
def number(kind: type, low: float, high: float | None = None, whole: bool = False):
    """A number of ``kind`` in ``low..high`` (no upper bound when ``high`` is None); with
    ``whole``, a float with a fractional part is refused rather than truncated."""
    def convert(value: Any, what: str):
        if whole and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{what}: expected a whole number, got {value!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{what}: expected a number, got {value!r}")
        try:
            v = kind(value)
        except ValueError:
            raise ConfigError(f"{what}: expected a number, got {value!r}") from None
        if v < low or (high is not None and v > high):
            bound = f">= {low}" if high is None else f"in {low}..{high}"
            raise ConfigError(f"{what}: {v} must be {bound}")
        return v
    convert.bounds = (low, high)
    return convert


_SIZE = re.compile(r"(\d+)\s*([kmg]?)b?\Z", re.IGNORECASE)


def memsize(text: str) -> int:
    """A size as Unbound reads one: a number with an optional k, m or g (powers of 1024,
    an optional b after it); ValueError otherwise."""
    m = _SIZE.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a size")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[
        m.group(2).lower()]


def size(low: int, high: int | None = None):
    """Bytes: a whole number, or a string with Unbound's k, m or g suffix ("64m")."""
    check = number(int, low, high, whole=True)

    def size_(value: Any, what: str) -> int:
        if isinstance(value, str):
            try:
                value = memsize(value)
            except ValueError:
                raise ConfigError(f"{what}: expected bytes (a number, or with k, m or g), "
                                  f"got {value!r}") from None
        return check(value, what)
    size_.bounds = (low, high)
    size_.unit = "bytes"          # Unbound's text of it is read with memsize
    return size_


def boolean(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{what}: expected true or false, got {value!r}")
    return value


def nullable(convert):
    """``convert``, with None meaning unset."""
    def nullable_(value: Any, what: str):
        return None if value is None else convert(value, what)
    nullable_.bounds = getattr(convert, "bounds", None)
    return nullable_


def optional(convert):
    """``convert``, with None or the empty string meaning unset."""
    def optional_(value: Any, what: str):
        return None if value in (None, "") else convert(value, what)
    return optional_


def as_list(value: Any, what: str) -> list:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{what}: expected a list, got {value!r}")
    return list(value)


def parse_address(text: str, what: str, default_port: int = 53) -> Address:
    """``ADDR:PORT``, ``[v6]:PORT``, ``ADDR@PORT`` (Unbound's), ``ADDR`` (port defaulted) ->
    (addr, port)."""
    if not isinstance(text, str) or not text:
        raise ConfigError(f"{what}: expected ADDR:PORT, got {text!r}")
    host, port = text, str(default_port)
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ConfigError(f"{what}: unclosed '[' in {text!r}")
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"{what}: expected [ADDR]:PORT, got {text!r}")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif "@" in text:                       # Unbound's ADDR@PORT
        host, port = text.rsplit("@", 1)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"{what}: {host!r} is not an IP address") from None
    try:
        p = int(port)
    except ValueError:
        raise ConfigError(f"{what}: port {port!r} is not a number") from None
    if not 0 <= p <= 65535:
        raise ConfigError(f"{what}: port {p} out of range 0-65535")
    return host, p


def address(default_port: int):
    def address_(value: Any, what: str) -> Address:
        return parse_address(value, what, default_port)
    return address_


def addresses(default_port: int, at_least_one: bool = False):
    def addresses_(value: Any, what: str) -> tuple[Address, ...]:
        items = as_list(value, what)
        if at_least_one and not items:
            raise ConfigError(f"{what}: at least one address is needed")
        return tuple(parse_address(v, what, default_port) for v in items)
    return addresses_


def ports(value: Any, what: str) -> tuple[int, ...]:
    """Port numbers, a list or one."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return tuple(number(int, 1, 65535, whole=True)(v, what) for v in items)


def acl_items(value: Any, what: str) -> list:
    """A list for a client ACL, no longer than the ACL holds."""
    from resolver.daemon.acl import MAX_NETWORKS

    items = as_list(value, what)
    if len(items) > MAX_NETWORKS:
        raise ConfigError(f"{what}: at most {MAX_NETWORKS} networks, got {len(items)}")
    return items


#: Unbound's access-control actions corenet has
ACL_ACTIONS = ("allow", "allow_setrd", "allow_snoop", "refuse", "deny", "refuse_non_local",
               "deny_non_local")


def access_controls(value: Any, what: str) -> tuple:
    """Unbound's ``access-control`` lines, ``"NETBLOCK ACTION"``: (network, action) pairs."""
    out = []
    for item in acl_items(value, what):
        parts = item.split() if isinstance(item, str) else []
        if len(parts) != 2:
            raise ConfigError(f"{what}: expected \"NETBLOCK ACTION\", got {item!r}")
        net = client_network(parts[0], what)
        action = parts[1].lower()
        if action not in ACL_ACTIONS:
            raise ConfigError(f"{what}: unknown action {parts[1]!r} (one of "
                              f"{', '.join(ACL_ACTIONS)})")
        out.append((net, action))
    return tuple(out)


def access_control_views(value: Any, what: str) -> tuple:
    """Unbound's ``access-control-view`` lines, ``"NETBLOCK VIEW"``: (network, view name)
    pairs."""
    out = []
    for item in acl_items(value, what):
        parts = item.split() if isinstance(item, str) else []
        if len(parts) != 2:
            raise ConfigError(f"{what}: expected \"NETBLOCK VIEW\", got {item!r}")
        out.append((client_network(parts[0], what), parts[1].strip('"')))
    return tuple(out)


def tag_names(value: Any, what: str) -> tuple:
    """Unbound's ``define-tag``: tag names (letters, digits, ``-`` and ``_``), a string of
    them or a list of such strings, in order; a name given again keeps its place."""
    out: list[str] = []
    for item in as_list(value, what):
        if not isinstance(item, str):
            raise ConfigError(f"{what}: expected tag names, got {item!r}")
        for name in item.replace('"', " ").split():
            if not all(c.isalnum() or c in "-_" for c in name):
                raise ConfigError(f"{what}: {name!r} is not a tag name (letters, digits, "
                                  f"- and _)")
            if name not in out:
                out.append(name)
    return tuple(out)


def _words(item: Any, what: str, shape: str, least: int, rest: bool = False,
           exact: bool = False) -> list:
    """The words of one ``shape`` line, quotes dropped, at least ``least`` of them (with
    ``exact``, that many); with ``rest``, ``least`` of them, the last the rest of the line
    as written (a record: its own quotes kept, one pair around all of it dropped)."""
    if not isinstance(item, str):
        raise ConfigError(f"{what}: expected \"{shape}\", got {item!r}")
    if rest:
        words = item.split(None, least - 1)
        words[:-1] = [w.strip('"') for w in words[:-1]]
        last = words[-1].strip() if words else ""
        if len(last) > 1 and last[0] == '"' == last[-1]:
            words[-1] = last[1:-1]
    else:
        words = item.replace('"', " ").split()
    if len(words) < least or (exact and len(words) != least):
        raise ConfigError(f"{what}: expected \"{shape}\", got {item!r}")
    return words


def _lines(value: Any, what: str, shape: str, least: int, network: int | None = None,
           acl: bool = False, **how) -> list[list]:
    """The words of each ``shape`` line of ``value`` (``_words``, ``how`` as there), word
    ``network`` read as a client network; ``acl``: no more lines than the ACL holds."""
    out = []
    for item in acl_items(value, what) if acl else as_list(value, what):
        words = _words(item, what, shape, least, **how)
        if network is not None:
            words[network] = client_network(words[network], what)
        out.append(words)
    return out


def access_control_tags(value: Any, what: str) -> tuple:
    """Unbound's ``access-control-tag`` lines, ``"NETBLOCK TAG..."``: (network, tags)."""
    return tuple((w[0], tuple(w[1:]))
                 for w in _lines(value, what, "NETBLOCK TAG...", 2, network=0, acl=True))


def access_control_tag_actions(value: Any, what: str) -> tuple:
    """Unbound's ``access-control-tag-action`` lines, ``"NETBLOCK TAG ACTION"``: (network,
    tag, local zone type)."""
    return tuple(tuple(w) for w in _lines(value, what, "NETBLOCK TAG ACTION", 3, network=0,
                                          acl=True, exact=True))


def access_control_tag_datas(value: Any, what: str) -> tuple:
    """Unbound's ``access-control-tag-data`` lines, ``"NETBLOCK TAG RECORD"``, the record
    without its owner (``A 192.0.2.1``): (network, tag, record)."""
    return tuple(tuple(w) for w in _lines(value, what, "NETBLOCK TAG RECORD", 3, network=0,
                                          acl=True, rest=True))


def local_zone_tags(value: Any, what: str) -> tuple:
    """Unbound's ``local-zone-tag`` lines, ``"ZONE TAG..."``: (zone name, tags)."""
    return tuple((w[0], tuple(w[1:])) for w in _lines(value, what, "ZONE TAG...", 2))


def local_zone_overrides(value: Any, what: str) -> tuple:
    """Unbound's ``local-zone-override`` lines, ``"ZONE NETBLOCK TYPE"``: (zone name,
    network, local zone type)."""
    return tuple(tuple(w) for w in _lines(value, what, "ZONE NETBLOCK TYPE", 3, network=1,
                                          exact=True))


def client_network(text: Any, what: str):
    """An address or CIDR network. Host bits set under the prefix length are refused: the
    rule would cover the whole network, which is rarely what was meant."""
    try:
        net = ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not an address or CIDR network") from None
    if ipaddress.ip_interface(str(text)).ip != net.network_address:
        raise ConfigError(f"{what}: {text!r} has host bits set; the network is {net} "
                          f"(or write {ipaddress.ip_interface(str(text)).ip} alone for one "
                          f"address)")
    return net


def networks(value: Any, what: str) -> tuple:
    """Networks (client networks, private addresses; a list, or one as a string), no more
    than a client ACL holds."""
    return tuple(client_network(text, what) for text in acl_items(value, what))


def avoided_networks(value: Any, what: str) -> tuple:
    """Networks kept out of reach (``do-not-query-address``): host bits under the prefix
    length are dropped, as Unbound's reader drops them (``127.0.0.1/8`` is 127.0.0.0/8, in
    Unbound's example config); a deny list read wide errs on the safe side."""
    out = []
    for text in acl_items(value, what):
        try:
            out.append(ipaddress.ip_network(str(text), strict=False))
        except ValueError:
            raise ConfigError(f"{what}: {text!r} is not an address or CIDR network") from None
    return tuple(out)


def existing_file(path: Any, what: str) -> str:
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{what}: expected a file path, got {path!r}")
    if not os.path.isfile(path):
        raise ConfigError(f"{what}: no such file {path!r}")
    return path


def files(value: Any, what: str) -> tuple[str, ...]:
    return tuple(existing_file(v, what) for v in as_list(value, what) if v != "")


def path_in_directory(value: Any, what: str) -> str:
    """A path whose directory exists (a socket or a file the daemon makes)."""
    if not isinstance(value, str):
        raise ConfigError(f"{what}: expected a path, got {value!r}")
    parent = Path(value).parent
    if not parent.is_dir():
        raise ConfigError(f"{what}: directory {str(parent)!r} does not exist")
    return value


def text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what}: expected a non-empty string, got {value!r}")
    return value


def octal_mode(value: Any, what: str) -> int:
    if isinstance(value, str):
        try:
            value = int(value, 8)
        except ValueError:
            raise ConfigError(f"{what}: {value!r} is not an octal mode") from None
    return number(int, 0, 0o777)(value, what)


def log_level(value: Any, what: str) -> str:
    if not isinstance(value, str) or value.upper() not in LEVELS:
        raise ConfigError(f"{what}: {value!r} is not one of {', '.join(LEVELS)}")
    return value.upper()


def user_name(value: Any, what: str) -> str | None:
    if value is None or value == "":
        return value
    import pwd
    try:
        pwd.getpwnam(str(value))
    except KeyError:
        raise ConfigError(f"{what}: no such user {value!r}") from None
    return str(value)


# DNS64 (RFC 6147)
def dns64_prefix(value: Any, what: str) -> str:
    """An RFC 6052 prefix for DNS64 (``resolver.dns64.parse_prefix``), kept as its text."""
    from resolver.dns64 import parse_prefix
    try:
        return str(parse_prefix(value))
    except ValueError as e:
        raise ConfigError(f"{what}: {e}") from None


def trust_anchor_files(value: Any, what: str) -> tuple[str, ...]:
    """Trust anchor files (one path, or a list of them), each read."""
    from resolver.dnssec.trust_anchor import TrustAnchorError, load
    out = files(value, what)
    for path in out:
        try:
            load(path)
        except TrustAnchorError as e:
            raise ConfigError(f"{what}: {e}") from None
    return out


def auto_trust_anchor_files(value: Any, what: str) -> tuple[str, ...]:
    """State files of RFC 5011 trust points, each read (one zone each, no zone twice)."""
    from resolver.dnssec.autotrust_file import read
    from resolver.dnssec.trust_anchor import TrustAnchorError
    out, zones = files(value, what), {}
    for path in out:
        try:
            name = read(path).name
        except TrustAnchorError as e:
            raise ConfigError(f"{what}: {e}") from None
        if name in zones:
            raise ConfigError(f"{what}: {path} and {zones[name]} are both for zone {name}")
        zones[name] = path
    return out


def domains(value: Any, what: str) -> tuple[str, ...]:
    import dns.exception
    import dns.name

    out = []
    for v in as_list(value, what):
        if not isinstance(v, str) or not v:
            raise ConfigError(f"{what}: expected a domain name, got {v!r}")
        try:
            out.append(dns.name.from_text(v).to_text())
        except dns.exception.DNSException as e:
            raise ConfigError(f"{what}: {v!r} is not a domain name ({e})") from None
    return tuple(out)


def ip_addresses(value: Any, what: str) -> tuple[str, ...]:
    """A list of IP addresses (the TCP control listener's)."""
    out = []
    for item in as_list(value, what):
        try:
            out.append(str(ipaddress.ip_address(str(item))))
        except ValueError:
            raise ConfigError(f"{what}: {item!r} is not an IP address") from None
    return tuple(out)


#: The longest name server identifier taken (``nsid``), in octets.
NSID_MAX = 255


def nsid_octets(text: str) -> bytes:
    """The identifier Unbound's ``nsid`` value gives: ``ascii_`` and its text, or hex
    digits. ValueError for anything else."""
    if text.startswith("ascii_"):
        return text[6:].encode("ascii")
    if not text or len(text) % 2 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ValueError("expected \"ascii_\" and text, or hex digits in pairs")
    return bytes.fromhex(text)


def nsid(value: Any, what: str) -> str:
    """Unbound's ``nsid`` value, checked (``nsid_octets`` reads it), as written."""
    if not isinstance(value, str):
        raise ConfigError(f"{what}: expected a string, got {value!r}")
    try:
        n = len(nsid_octets(value))
    except (ValueError, UnicodeEncodeError) as e:
        raise ConfigError(f"{what}: {value!r}: {e}") from None
    if n > NSID_MAX:
        raise ConfigError(f"{what}: {n} octets, at most {NSID_MAX}")
    return value


def connection_limits(value: Any, what: str) -> tuple:
    """Unbound's ``tcp-connection-limit`` lines, ``"NETBLOCK LIMIT"``: (network, limit)
    pairs, no more than a client ACL holds (``resolver.daemon.acl`` finds the network)."""
    to_limit = number(int, 0, 10_000_000)
    return tuple((w[0], to_limit(w[1], what))
                 for w in _lines(value, what, "NETBLOCK LIMIT", 2, network=0, acl=True,
                                 exact=True))


def zone_rates(value: Any, what: str) -> tuple[tuple[str, int], ...]:
    """A table of domain = queries per second, or a list of "domain number" strings (as
    Unbound writes them), as (domain, number) pairs."""
    if isinstance(value, dict):
        items = list(value.items())
    else:
        items = []
        for v in as_list(value, what):
            parts = v.split() if isinstance(v, str) else []
            if len(parts) != 2:
                raise ConfigError(f"{what}: expected \"domain number\", got {v!r}")
            items.append((parts[0], parts[1]))
    to_rate = number(int, 0, 10_000_000)
    return tuple((domains(domain, what)[0],
                  to_rate(int(n) if isinstance(n, str) and n.isdigit() else n, what))
                 for domain, n in items)


def cachedb_backend(value: Any, what: str) -> str | None:
    if value in (None, "", "none"):
        return None
    if value != "redis":
        raise ConfigError(f"{what}: {value!r} is not a backend (redis or none)")
    return value


def url_path(value: Any, what: str) -> str:
    if (not isinstance(value, str) or not value.startswith("/") or "?" in value
            or any(c.isspace() for c in value)):
        raise ConfigError(f"{what}: expected a URL path such as /dns-query, got {value!r}")
    return value


def cipher_list(value: Any, what: str) -> str:
    if not isinstance(value, str) or any(c.isspace() for c in value):
        raise ConfigError(f"{what}: expected OpenSSL's cipher names joined by ':', "
                          f"got {value!r}")
    return value


def ca_bundle(value: Any, what: str) -> str:
    """A CA file that loads as one (a reload with a broken file changes nothing)."""
    path = existing_file(value, what)
    import ssl
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"{what}: cannot load {path!r} as CA certificates: {e}") from None
    return path
