"""What the host says about names before DNS is asked: ``/etc/hosts`` and the search rules of
``/etc/resolv.conf``, read as glibc reads them.

:class:`HostsFile` answers names from a hosts file and reads it again when it changes (its
size, modification time or inode), at most once a second. :func:`search_rules` gives the
``search`` domains (or the ``domain``) and ``options ndots:N`` of a resolv.conf, and
:func:`nameservers` its ``nameserver`` addresses (for ``Resolver(forward=...)``) and
:func:`nameserver_options` how glibc asks them (``options attempts:N``, ``timeout:N`` and
``trust-ad``).
:func:`read_resolv_conf` reads a resolv.conf as dnspython does, and those options as
glibc does, for the resolvers with dnspython's shape (:mod:`resolver.sync`).

glibc reads two environment variables with the file: ``RES_OPTIONS``, options applied
after the file's, and ``LOCALDOMAIN``, a search list in place of the file's. Where these
functions read as glibc, so do they: ``RES_OPTIONS`` in :func:`nameserver_options` (and
the ``nameserver_options`` of :func:`read_resolv_conf`), both in :func:`search_rules`
given ``environ``. What is read as dnspython reads it (:func:`read_resolv_conf`'s
settings) ignores both, as dnspython does. glibc asks the first ``MAXNS`` (3)
nameservers; ``nameservers(path, MAXNS)`` gives those.
"""
from __future__ import annotations

import io
import ipaddress
import os
import re
import socket
import time
from typing import TYPE_CHECKING, NamedTuple

import dns.name

if TYPE_CHECKING:
    import dns.resolver

#: How often, at most, the hosts file's metadata is checked for a change (seconds).
RECHECK_INTERVAL = 1.0

#: glibc's RES_MAXRETRY: ``options attempts:N`` above it is taken as this many
MAX_ATTEMPTS = 5

#: glibc's MAXNS: the nameservers it asks, the first of the file's
MAXNS = 3

#: glibc's RES_MAXRETRANS: ``options timeout:N`` above it is taken as this many seconds
MAX_TIMEOUT = 30

#: the environment variables glibc reads with resolv.conf: options applied after the
#: file's (same syntax), and a search list in place of the file's ``search``/``domain``
RES_OPTIONS, LOCALDOMAIN = "RES_OPTIONS", "LOCALDOMAIN"


class HostsFile:
    """Addresses by name from a hosts file (``/etc/hosts`` by default); names are compared
    without case and without a final dot. A missing file is an empty one."""

    def __init__(self, path: str | os.PathLike = "/etc/hosts", clock=time.monotonic) -> None:
        self.path = os.fspath(path)
        self.clock = clock
        self._stamp: tuple | None = None
        self._checked = float("-inf")
        self._names: dict[str, list[tuple[int, str]]] = {}

    def lookup(self, name: str) -> list[tuple[int, str]]:
        """``[(family, address)]`` for ``name``, in file order; empty if it is not there."""
        now = self.clock()
        if now - self._checked >= RECHECK_INTERVAL:
            self._checked = now
            self._reload_if_changed()
        return self._names.get(name.rstrip(".").lower(), [])

    def _reload_if_changed(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            self._stamp, self._names = None, {}
            return
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            return
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            return
        self._stamp, self._names = stamp, parse_hosts(text)


def parse_hosts(text: str) -> dict[str, list[tuple[int, str]]]:
    """``{name: [(family, address)]}`` from hosts-file text; malformed lines are skipped."""
    names: dict[str, list[tuple[int, str]]] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        addr = fields[0]
        try:
            ip = ipaddress.ip_address(addr.split("%", 1)[0])
        except ValueError:
            continue
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        for name in fields[1:]:
            entry = (family, addr)
            got = names.setdefault(name.rstrip(".").lower(), [])
            if entry not in got:
                got.append(entry)
    return names


def config_text(path: str | os.PathLike) -> str:
    """The text of a configuration file such as resolv.conf; "" when it cannot be read (a
    missing file sets nothing, as for glibc and dig)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def search_rules(path: str | os.PathLike = "/etc/resolv.conf",
                 environ=None) -> tuple[list[dns.name.Name], int]:
    """``(search domains, ndots)`` from a resolv.conf: the last ``search`` line (else the
    ``domain`` line), and ``options ndots:N`` (1 by default, at most 15 as glibc caps it).
    A missing file gives no domains and ndots 1. With ``environ`` (a mapping such as
    ``os.environ``) its variables apply as glibc applies them: ``LOCALDOMAIN`` (its
    names, split on blanks) is the search list in place of the file's ``search`` and
    ``domain``, and ``RES_OPTIONS``'s ``ndots:N`` comes after the file's."""
    search: list[dns.name.Name] = []
    domain: list[dns.name.Name] = []
    ndots = 1
    lines = config_text(path).splitlines()
    localdomain = None if environ is None else environ.get(LOCALDOMAIN)
    if localdomain is not None:
        lines = [line for line in lines if line.split()[:1] not in (["search"], ["domain"])]
        lines.append("search " + localdomain.split("\n", 1)[0])
    res_options = None if environ is None else environ.get(RES_OPTIONS)
    if res_options is not None:
        lines.append("options " + res_options)
    for line in lines:
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        try:
            if fields[0] == "search":
                search = [dns.name.from_text(d) for d in fields[1:]]
            elif fields[0] == "domain" and len(fields) > 1:
                domain = [dns.name.from_text(fields[1])]
            elif fields[0] == "options":
                for opt in fields[1:]:
                    if opt.startswith("ndots:"):
                        ndots = max(0, min(15, int(opt[6:])))
        except (ValueError, dns.exception.DNSException):
            continue                     # a malformed line counts as absent, as in glibc
    return (search or domain), ndots


def nameservers(path: str | os.PathLike = "/etc/resolv.conf",
                most: int | None = None) -> list[str]:
    """The ``nameserver`` addresses of a resolv.conf, in order (scope IDs dropped);
    malformed ones are skipped. ``most``: at most that many, the first (``MAXNS``: the
    ones glibc asks; None: all of them, as dnspython reads them)."""
    out: list[str] = []
    lines = config_text(path).splitlines()
    for line in lines:
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                out.append(str(ipaddress.ip_address(fields[1].split("%", 1)[0])))
            except ValueError:
                continue
    return out if most is None else out[:most]


class NameserverOptions(NamedTuple):
    """How glibc asks a resolv.conf's nameservers, from its ``options`` lines."""

    #: ``attempts:N``: the times each nameserver is asked before the lookup fails (0 to
    #: ``MAX_ATTEMPTS``); None where the file sets none
    attempts: int | None = None
    #: ``trust-ad``: the queries carry AD and the AD bit of the answers is believed
    trust_ad: bool = False
    #: ``timeout:N``: the seconds each try waits for its reply (1 to ``MAX_TIMEOUT``);
    #: None where the file sets none
    timeout: int | None = None


def nameserver_options(path: str | os.PathLike = "/etc/resolv.conf") -> NameserverOptions:
    """The ``attempts:N``, ``timeout:N`` and ``trust-ad`` options of a resolv.conf and of
    ``RES_OPTIONS``, read as glibc reads them (:func:`glibc_nameserver_options`); a
    missing file sets none, ``RES_OPTIONS`` still applies."""
    return glibc_nameserver_options(config_text(path))


def glibc_nameserver_options(text: str, environ=os.environ) -> NameserverOptions:
    """``attempts:N``, ``timeout:N`` and ``trust-ad`` as glibc's resolver takes them for
    resolv.conf text: the file's ``options`` lines, then the environment's ``RES_OPTIONS``
    (same syntax, applied after the file's, so its values win), each read by
    :func:`parse_nameserver_options`. ``environ`` is read when this is called."""
    res_options = environ.get(RES_OPTIONS)
    if res_options is not None:
        text = f"{text}\noptions {res_options}"
    return parse_nameserver_options(text)


def parse_nameserver_options(text: str) -> NameserverOptions:
    """``attempts:N``, ``timeout:N`` and ``trust-ad`` from resolv.conf text, as glibc's
    ``res_setoptions`` takes them: on any ``options`` line, the last of each winning; N is
    read as ``atoi`` reads it (``attempts:x`` is 0: glibc then sends no query at all), an
    attempts below 0 counts as 0 and above ``MAX_ATTEMPTS`` as ``MAX_ATTEMPTS``; a timeout
    above ``MAX_TIMEOUT`` counts as ``MAX_TIMEOUT`` and below 1 as 1 (glibc waits at least
    a second); an option is recognised by its start, as glibc compares it."""
    attempts: int | None = None
    timeout: int | None = None
    trust_ad = False
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] != "options":
            continue
        for opt in fields[1:]:
            if opt.startswith("attempts:"):
                attempts = max(0, min(MAX_ATTEMPTS, _atoi(opt[9:])))
            elif opt.startswith("timeout:"):
                timeout = max(1, min(MAX_TIMEOUT, _atoi(opt[8:])))
            elif opt.startswith("trust-ad"):
                trust_ad = True
    return NameserverOptions(attempts, trust_ad, timeout)


def _atoi(text: str) -> int:
    """``text``'s leading number as C's ``atoi`` reads it: 0 where there is none."""
    number = re.match(r"\s*[+-]?\d+", text)
    return int(number.group()) if number else 0


def read_resolv_conf(f) -> dns.resolver.BaseResolver:
    """A resolv.conf (a path or a file object) read by dnspython's own reader, so that what it
    takes (``nameserver``, ``domain``, ``search``, ``options rotate``, ``timeout:N``,
    ``ndots:N``, ``edns0``) and what it refuses are dnspython's: the settings are the
    attributes of the ``dns.resolver.BaseResolver`` returned, whose ``timeout`` and
    ``ndots`` are None where the file sets none. As dnspython, every ``nameserver`` line
    is taken (glibc asks the first ``MAXNS``), and the environment's ``LOCALDOMAIN`` and
    ``RES_OPTIONS`` do not change the search list, ``ndots``, ``timeout`` or ``rotate``.
    What dnspython passes over and glibc reads, ``options attempts:N`` and ``trust-ad``,
    is its attribute ``nameserver_options``, read as glibc reads them, ``RES_OPTIONS``
    included (:func:`glibc_nameserver_options`). Raises ``dns.resolver.NoResolverConfiguration``
    for a file that cannot be read or names no nameserver, and dnspython's error for a bad
    ``domain`` or ``search`` name."""
    import dns.resolver     # here: the dig command reads resolv.conf without it
    if isinstance(f, (str, os.PathLike)):
        try:
            opened = open(f, encoding="utf-8")
        except OSError:
            raise dns.resolver.NoResolverConfiguration(f"cannot open {f}") from None
        with opened:
            text = opened.read()
    else:
        text = f.read()
    conf = dns.resolver.BaseResolver(configure=False)
    conf.timeout = None           # type: ignore[assignment]
    conf.read_resolv_conf(io.StringIO(text))
    conf.nameserver_options = glibc_nameserver_options(text)    # type: ignore[attr-defined]
    return conf
