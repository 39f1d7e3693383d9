"""Unbound's ``unbound.conf`` read, and turned into corenet-resolver's settings.

:func:`read` reads Unbound's format as Unbound's lexer does: ``keyword: value`` pairs,
several on a line if need be, values quoted (``"..."``, ``'...'``) or bare, ``#`` comments
(from a ``#`` that starts a word to the end of the line: one within a word is part of it),
clauses (``server:``, ``remote-control:``, ``forward-zone:``, ...) and ``include:`` /
``include-toplevel:`` with glob patterns. Every option comes out with its file and line.

:func:`convert` maps each option to corenet's settings and says, for every one, what it became
(:class:`Mapped`) or why it could not be carried over (:class:`Unmapped`): nothing is dropped
without a word. :meth:`Conversion.toml` writes the settings as a corenet TOML file, each key
with the Unbound lines it came from; :meth:`Conversion.report` lists both sides.
"""
from __future__ import annotations

import glob
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from resolver.daemon.settings import ALIASES, BY_NAME, LIMITS, default_of
from resolver.daemon.unbound_keywords import KEYWORDS
from resolver.daemon.values import ACL_ACTIONS, ConfigError, memsize

#: Unbound's clauses: a keyword that starts a section rather than setting an option.
CLAUSES = ("server", "remote-control", "forward-zone", "stub-zone", "auth-zone", "view",
           "python", "dynlib", "rpz", "cachedb", "dnstap", "dnscrypt", "ipset")
#: Bounds on what a config may make the reader do.
MAX_INCLUDE_DEPTH = 16
MAX_FILES = 1000
MAX_BYTES = 16 * 1024 * 1024

_KEYWORD = re.compile(r"[A-Za-z][A-Za-z0-9-]*:\Z")


@dataclass(frozen=True)
class Option:
    """One ``key: value...`` of the file: its clause, its values (quotes removed), where."""
    clause: str
    key: str
    values: tuple[str, ...]
    file: str
    line: int
    #: which clause of the file (each ``forward-zone:`` starts a new one)
    section: int = 0
    #: the keyword as the file spells it, where that is another name of ``key``
    #: (``SYNONYMS``: an Option is made with either, and goes by the one name); "" where
    #: it is ``key``
    written: str = ""

    def __post_init__(self) -> None:
        if self.key in SYNONYMS:
            object.__setattr__(self, "written", self.key)
            object.__setattr__(self, "key", SYNONYMS[self.key])

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def text(self) -> str:
        return f"{self.written or self.key}: {' '.join(self.values)}".rstrip()


def tokens(text: str, file: str = "-"):
    """(token, quoted, line) for each word of ``text``, comments skipped."""
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "\"'":
            # as Unbound's lexer: a backslash keeps the character after it in the string
            # (an escaped quote ends nothing), and both stay in the value
            end = i + 1
            while end < n and text[end] != c:
                end += 2 if text[end] == "\\" else 1
            if end >= n:
                raise ConfigError(f"{file}:{line}: unclosed quote")
            word = text[i + 1:end]
            if "\n" in word or "\r" in word:         # as Unbound's lexer says
                raise ConfigError(f"{file}:{line}: newline inside quoted string, no end {c}")
            yield word, True, line
            i = end + 1
        else:
            # a "#" within a word is part of it, as in Unbound's lexer (1.1.1.1@853#dns.name)
            start = i
            while i < n and not text[i].isspace() and text[i] not in "\"'":
                i += 1
            yield text[start:i], False, line


class _Reader:
    def __init__(self) -> None:
        self.files = 0
        self.bytes = 0
        self.section = 0
        self.options: list[Option] = []

    def read(self, path: str, depth: int, clause: str) -> str:
        if depth > MAX_INCLUDE_DEPTH:
            raise ConfigError(f"{path}: includes nested deeper than {MAX_INCLUDE_DEPTH}")
        self.files += 1
        if self.files > MAX_FILES:
            raise ConfigError(f"{path}: more than {MAX_FILES} files included")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read(MAX_BYTES + 1)
        except OSError as e:
            raise ConfigError(f"cannot read {path!r}: {e.strerror}") from None
        self.bytes += len(text)
        if self.bytes > MAX_BYTES:
            raise ConfigError(f"{path}: more than {MAX_BYTES} bytes of configuration")
        key, values, at = None, [], 0

        def flush() -> str:
            nonlocal clause
            if key is None:
                return clause
            if key in ("include", "include-toplevel"):
                for pattern in values:
                    matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) \
                        else [pattern]
                    inner = "server" if key == "include-toplevel" else clause
                    for inc in matches:
                        got = self.read(inc, depth + 1, inner)
                        if key == "include":
                            clause = got
            elif key in CLAUSES and not values:
                clause = key
                self.section += 1
            else:
                self.options.append(Option(clause, key, tuple(values), path, at,
                                           self.section))
            return clause

        for word, quoted, line in tokens(text, path):
            if not quoted and _KEYWORD.match(word):
                clause = flush()
                key, values, at = word[:-1].lower(), [], line
            elif key is None:
                raise ConfigError(f"{path}:{line}: {word!r} where a keyword was expected")
            else:
                values.append(word)
        return flush()


def read(path: str) -> list[Option]:
    """Every option of the Unbound config at ``path``, includes followed in place."""
    r = _Reader()
    r.read(path, 0, "server")
    return r.options


def looks_like_unbound(path: str) -> bool:
    """Whether the file at ``path`` is in Unbound's format (its first word a clause or an
    Unbound keyword, where TOML has ``key =`` or ``[table]``)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(65536)
    except OSError:
        return False
    for word, quoted, _ in tokens(text.replace('"', " ").replace("'", " ")):
        return not quoted and bool(_KEYWORD.match(word))
    return False


# ---- values -----------------------------------------------------------------------------------
def yesno(text: str) -> bool:
    t = text.lower()
    if t not in ("yes", "no"):
        raise ValueError(f"{text!r} is not yes or no")
    return t == "yes"


def interface(text: str, port: int) -> tuple[str, int]:
    """``ADDR``, ``ADDR@PORT``; an interface name is not an address corenet can bind."""
    host, _, p = text.partition("@")
    ipaddress.ip_address(host)          # ValueError: a name (eth0) or garbage
    return host, int(p) if p else port


def address_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---- the conversion ---------------------------------------------------------------------------
@dataclass
class Mapped:
    option: Option
    key: str                # the corenet key it went into ("" for nothing to write)
    note: str = ""


@dataclass
class Unmapped:
    option: Option
    why: str
    #: a value Unbound itself would refuse (not a number, an address, ...): an unbound.conf
    #: served or checked with it is an error, as it is to Unbound
    refused: bool = False


@dataclass
class Unlike:
    """An Unbound option a config leaves at Unbound's default, which is not corenet's."""
    option: str
    unbound: str            # Unbound's default, as its config writes it
    key: str                # the corenet key
    value: Any              # Unbound's default as that key's value
    ours: Any               # corenet's default
    why: str

#: What errors call the TOML an unbound.conf converts to (it is never written to a file).
CONVERTED = "the converted config"


@dataclass
class Conversion:
    #: corenet key -> value, in the order first set
    settings: dict[str, Any] = field(default_factory=dict)
    #: the [[forward-zone]], [[stub-zone]] and [[rpz]] tables
    tables: dict[str, list[dict]] = field(default_factory=dict)
    mapped: list[Mapped] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    #: which Unbound lines each key came from
    sources: dict[str, list[Option]] = field(default_factory=dict)
    #: the options left at an Unbound default that corenet does not share
    unlike: list[Unlike] = field(default_factory=list)

    def set(self, opt: Option, key: str, value: Any, note: str = "") -> None:
        self.settings[key] = value
        self.sources.setdefault(key, []).append(opt)
        self.mapped.append(Mapped(opt, key, note))

    def add(self, opt: Option, key: str, value: Any, note: str = "") -> None:
        """Appends ``value`` to the list setting ``key``."""
        self.set(opt, key, [*self.settings.get(key, []), value], note)

    def same(self, opt: Option, note: str) -> None:
        """An option whose effect is corenet's own behaviour: nothing to write."""
        self.mapped.append(Mapped(opt, "", note))

    def skip(self, opt: Option, why: str) -> None:
        self.unmapped.append(Unmapped(opt, why))

    def refuse(self, opt: Option, error: Exception) -> None:
        """A value not understood: reported, and an error when the file is served."""
        self.unmapped.append(Unmapped(opt, f"value not understood: {error}", refused=True))

    def unknown(self, opt: Option) -> None:
        """A keyword Unbound does not know either: an error when the file is served, as
        Unbound's reader refuses it."""
        self.unmapped.append(Unmapped(opt, "unknown keyword: not an option of Unbound "
                                      "(1.26 or earlier)", refused=True))

    def check_values(self) -> None:
        """ConfigError for the first value not understood, with its line."""
        for u in self.unmapped:
            if u.refused:
                raise ConfigError(f"{u.option.where}: {u.option.text}: {u.why}")

    def traced(self, error: str, path: str) -> str:
        """An error of the converted config, said of the unbound.conf at ``path``: with the
        Unbound lines of the keys it names."""
        came = [o.where for key, opts in self.sources.items()
                if re.search(rf"\b{re.escape(key)}\b", error) for o in opts]
        return f"{path}: {error}" + (f" (from {', '.join(came[:3])})" if came else "")

    def toml(self, source: str = "") -> str:
        """The settings as a corenet-resolver TOML file."""
        out = [f"# corenet-resolver settings converted from {source or 'unbound.conf'} by "
               "`corenet-resolver import-unbound`.",
               f"# {len(self.mapped)} options carried over, {len(self.unmapped)} not (see "
               "the report it printed).", ""]
        for key, value in self.settings.items():
            lines = sorted({f"{o.where}: {o.text}" for o in self.sources.get(key, ())})
            out.extend(f"# {line}" for line in lines[:4])
            if len(lines) > 4:
                out.append(f"# ... and {len(lines) - 4} more lines")
            out.append(f"{key} = {_toml_value(value)}")
        if self.unlike:
            out += ["", "# Left at Unbound's default, which corenet does not share: corenet's "
                        "applies. Uncomment to keep Unbound's."]
            for u in self.unlike:
                out += [f"# {u.key} = {_toml_value(u.value)}    # corenet: "
                        f"{_toml_value(u.ours)}; {u.why}"]
        for key, tables in self.tables.items():
            for t in tables:
                out.append("")
                out.append(f"[[{key}]]")
                out.extend(f"{k} = {_toml_value(v)}" for k, v in t.items())
        return "\n".join(out) + "\n"

    def report(self) -> str:
        lines = [f"mapped ({len(self.mapped)}):"]
        for m in self.mapped:
            to = f"-> {m.key}" if m.key else "-> nothing to write"
            lines.append(f"  {m.option.where}: {m.option.clause}: {m.option.text} {to}"
                         + (f" ({m.note})" if m.note else ""))
        lines.append(f"not mapped ({len(self.unmapped)}):")
        for u in self.unmapped:
            lines.append(f"  {u.option.where}: {u.option.clause}: {u.option.text}: {u.why}")
        lines.append(f"defaults unlike Unbound's, not set by the config ({len(self.unlike)}):")
        for d in self.unlike:
            lines.append(f"  {d.option}: Unbound {d.unbound}, corenet {d.key} = "
                         f"{_toml_value(d.ours)}: {d.why}")
        return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML for {v!r}")


#: Unbound's other spellings of its own options (its grammar reads them as the same
#: keyword): the name the conversion goes by. The ssl- names are the older ones, which
#: many configs still use; away from Windows, tls-win-cert is tls-system-cert.
SYNONYMS = {"ip-address": "interface", "ssl-port": "tls-port", "ssl-upstream": "tls-upstream",
            "ssl-service-key": "tls-service-key", "ssl-service-pem": "tls-service-pem",
            "ssl-cert-bundle": "tls-cert-bundle", "tls-win-cert": "tls-system-cert",
            "tls-additional-ports": "tls-additional-port",
            "additional-tls-port": "tls-additional-port",
            "additional-ssl-port": "tls-additional-port",
            "forward-ssl-upstream": "forward-tls-upstream",
            "stub-ssl-upstream": "stub-tls-upstream", "caps-whitelist": "caps-exempt",
            "ipsecmod-whitelist": "ipsecmod-allow", "low-rtt-pct": "fast-server-permil",
            "low-rtt-permil": "fast-server-permil", "master": "primary"}
#: Unbound's options giving the port at which an interface serves DNS over TLS or over
#: HTTPS, and the port each means when the config does not give it
SPECIAL_PORTS = {"tls-port": 853, "tls-additional-port": None, "https-port": 443}
#: Unbound options whose corenet key has another name that the settings table does not list
#: (limits, which take no other names)
OTHER_NAMES = {"outgoing-range": "max-upstream-sockets", "http-max-streams": "doh-max-streams",
               "max-query-restarts": "max-cname-chain",
               "max-global-quota": "max-upstream-queries"}
#: settings naming files: read against Unbound's ``directory``
PATHS = {"root-hints", "pidfile", "logfile", "auto-trust-anchor-file", "trust-anchor",
         "tls-service-key", "tls-service-pem", "tls-cert-bundle", "tls-session-ticket-keys"}
#: how a value of each type of the settings table is read from Unbound's text
READERS: dict[str, tuple[Callable[[str], Any], bool]] = {
    "bool": (yesno, False), "int": (int, False), "int | None": (int, False),
    "float": (float, False), "float | None": (float, False), "str": (str, False),
    "str | None": (str, False), "tuple[str, ...]": (str, True),
    "tuple[int, ...]": (int, True)}
#: zone records and network lists: repeatable strings
RECORDS = ("local-data", "local-data-ptr", "private-address", "do-not-query-address")
#: server: options of which Unbound keeps every line (its grammar's string lists), where
#: other options take the last line's value (by the names of SYNONYMS' right side)
EVERY_LINE = frozenset({
    "access-control", "access-control-tag", "access-control-tag-action",
    "access-control-tag-data", "access-control-view", "auto-trust-anchor-file",
    "caps-exempt", "client-subnet-zone", "dns64-ignore-aaaa",
    "do-not-query-address", "domain-insecure", "edns-client-string", "interface",
    "interface-action", "interface-tag", "interface-tag-action", "interface-tag-data",
    "interface-view", "ipsecmod-allow", "local-data", "local-data-ptr", "local-zone",
    "local-zone-override", "local-zone-tag", "outgoing-interface", "private-address",
    "private-domain", "proxy-protocol-port", "ratelimit-below-domain", "ratelimit-for-domain",
    "response-ip", "response-ip-data", "response-ip-tag", "root-hints", "send-client-subnet",
    "tcp-connection-limit", "tls-additional-port", "tls-session-ticket-keys", "trust-anchor",
    "trust-anchor-file", "trusted-keys-file", "wait-limit-cookie-netblock",
    "wait-limit-netblock"})


def same_setting(key: str) -> tuple[str, Callable[[str], Any], bool] | None:
    """The corenet key that Unbound's server option ``key`` sets with the same meaning (its
    own name, one of its other names in the settings table, or a limit), how its value is
    read and whether it repeats; None when there is none."""
    name = OTHER_NAMES.get(key, key).replace("-", "_")
    name = ALIASES.get(name, name)
    row = BY_NAME.get(name) or LIMITS.get(name)
    if row is None:
        return None
    if row.key in RECORDS:
        return row.key, str, True
    if getattr(row.convert, "unit", None) == "bytes":       # "4m"
        return row.key, memsize, False
    if row.type not in READERS:
        return None
    return (row.key, *READERS[row.type])


#: What a corenet config says for Unbound options that have no corenet name of their own
#: (the unknown-key error names it)
HINTS = {"msg-cache-size": "cache-size (messages and rrsets together)",
         "rrset-cache-size": "cache-size (messages and rrsets together)",
         "port": "listen (ADDR:PORT)", "interface": "listen (ADDR:PORT)",
         "tls-port": "tls-listen", "tls-additional-port": "tls-listen",
         "https-port": "https-listen",
         "module-config": "validate and dns64", "control-interface": "control (a Unix socket) "
         "or control-interface", "include": "one TOML file (import-unbound follows includes)",
         **{k: v for k, v in OTHER_NAMES.items()}}


def hint(key: str) -> str | None:
    """What to say of ``key`` in a corenet config when it is an Unbound option."""
    key = key.replace("_", "-")
    name = SYNONYMS.get(key, key)
    if name in HINTS:
        return HINTS[name]
    known = name.replace("-", "_") in BY_NAME or name.replace("-", "_") in ALIASES
    return name if name != key and known else None


#: server: options whose Unbound value is milliseconds, corenet's seconds
MILLISECONDS = {"jostle-timeout": "jostle-timeout", "tcp-idle-timeout": "tcp-idle-timeout",
                "edns-tcp-keepalive-timeout": "edns-tcp-keepalive-timeout",
                "unknown-server-time-limit": "initial-rto", "infra-cache-min-rtt": "min-rto",
                "infra-cache-max-rtt": "max-rto",
                "serve-expired-client-timeout": "serve-stale-client-timeout",
                "tcp-auth-query-timeout": "tcp-timeout"}
#: server: options whose effect corenet has without a setting: why
BUILT_IN = {
    "low-rtt": "Unbound ignores it (it gave way to fast-server-num)",
    **dict.fromkeys(("dlv-anchor", "dlv-anchor-file"),
                    "Unbound ignores it: DLV is decommissioned"),
    **dict.fromkeys(("infra-lame-ttl", "infra-cache-lame-size"),
                    "Unbound ignores it: lame marks live infra-host-ttl, in the infra cache"),
    "msg-cache-slabs": "one cache per worker, no slabs",
    "rrset-cache-slabs": "one cache per worker, no slabs",
    "infra-cache-slabs": "one cache per worker, no slabs",
    "key-cache-slabs": "one cache per worker, no slabs",
    "ratelimit-slabs": "one table per worker, no slabs",
    "ip-ratelimit-slabs": "one table per worker, no slabs",
    "statistics-cumulative": "stats resets its own base; stats_noreset and the metrics never",
    "directory": "relative file names are read against it",
    "interface-automatic": "each answer leaves from the address it was asked on",
    "do-daemonize": "the daemon runs in the foreground under its service manager",
    "use-systemd": "sd_notify is spoken whenever NOTIFY_SOCKET is set",
    "key-cache-size": "keys live in the one cache, sized by msg- and rrset-cache-size",
    "udp-upstream-without-downstream": "UDP is always served, and authorities are always "
                                       "asked over UDP first",
    "neg-cache-size": "negative answers live in the one cache, sized by msg- and "
                      "rrset-cache-size",
}
#: server: options whose one value is corenet's own behaviour: (that value, what corenet
#: does); another value cannot be carried over
FIXED = {
    "disable-edns-do": ("no", "a query with DO set gets the DNSSEC records of its answer"),
    "do-nat64": ("no", "authorities are asked at their own addresses (dns64 is another "
                       "thing: AAAA made for clients)"),
    "fake-dsa": ("no", "every signature is checked by its own algorithm"),
    "fake-sha1": ("no", "every signature is checked by its own algorithm"),
    "answer-cookie": ("no", "no DNS server cookies (RFC 7873) are made; a client's cookie "
                            "is ignored"),
    "log-thread-id": ("no", "a line carries its worker's number ([PID:N])"),
    "log-destaddr": ("no", "the log-replies line names no local address"),
    "sock-queue-timeout": ("0", "a query is answered however long it waited in the socket's "
                                "queue"),
    "tls-protocols": ("TLSv1.2 TLSv1.3", "DNS over TLS and over HTTPS take TLS 1.2 and 1.3"),
    "so-reuseport": ("yes", "the workers always share their ports with SO_REUSEPORT"),
    "do-udp": ("yes", "UDP is always served"), "do-tcp": ("yes", "TCP is always served"),
    "harden-dnssec-stripped": ("yes", "validation never accepts stripped signatures"),
    "harden-below-nxdomain": ("yes", "NXDOMAIN below a validated NXDOMAIN is always used"),
    "harden-short-bufsize": ("yes", "an EDNS buffer size below 512 is taken as 512"),
    "harden-referral-path": ("no", "the NS sets of referrals are not validated"),
    "serve-expired-ttl-reset": ("no", "an expired answer's window runs from its expiry; a "
                                      "failed refresh does not extend it"),
    "aggressive-nsec": ("yes", "the aggressive NSEC/NSEC3 cache (RFC 8198) is always on "
                               "with validation"),
    "minimal-responses": ("yes", "an answer carries no NS records or addresses beside it, "
                                 "but an NS answer the addresses of its servers inside the "
                                 "zone, as Unbound's"),
    "edns-buffer-size": ("1232", "the EDNS size sent to authorities is 1232 bytes"),
    "prefer-ip6": ("no", "authorities are chosen by measured RTT, whatever the family"),
    "prefer-ip4": ("no", "authorities are chosen by measured RTT, whatever the family"),
    "tls-use-sni": ("yes", "a forward zone's TLS server is sent its authentication name "
                           "(forward-addr's #NAME) as SNI"),
    "ratelimit-backoff": ("no", "past ratelimit a zone gets one query in ratelimit-factor "
                                "for the rest of that second, and its full rate the next"),
    "ip-ratelimit-backoff": ("no", "past ip-ratelimit a client's misses are dropped until "
                                   "its one-second bucket refills, at ip-ratelimit a second"),
    "val-clean-additional": ("yes", "the additional section is always checked"),
    "disable-dnssec-lame-check": ("no", "a signed zone's answer without its RRSIGs is bogus "
                                        "from that server, and the zone's other servers are "
                                        "asked (val-max-restart)"),
    "statistics-interval": ("0", "statistics are not logged periodically: read stats or the "
                                 "metrics"),
    "qname-minimisation-strict": ("no", "minimised queries that fail are asked again with "
                                        "the full name (qname-minimisation)"),
    "val-permissive-mode": ("no", "a bogus answer is SERVFAIL"),
    "ignore-cd-flag": ("no", "a query with CD set gets the data unvalidated"),
    "serve-original-ttl": ("no", "an answer from the cache carries the TTL left"),
    "tcp-upstream": ("no", "authorities are asked over UDP, over TCP after a truncated "
                           "answer (forward zones: forward-tcp-upstream)"),
    "udp-connect": ("yes", "each upstream UDP socket is connected to its server"),
    "trust-anchor-signaling": ("no", "no key tag queries (RFC 8145) are sent"),
    "harden-unknown-additional": ("yes", "of an additional section only a referral's A and "
                                         "AAAA glue is read; nothing else in it is kept"),
    "dns-error-reporting": ("no", "resolution failures are not reported to the agent "
                                  "domains authorities name (RFC 9567)"),
    "delay-close": ("0", "an upstream socket whose query timed out is closed at once"),
    "infra-keep-probing": ("yes", "a server marked down is still probed, one query per "
                                  "server-probe-interval"),
    "target-fetch-policy": ("0 0 0 0 0", "a delegation's NS names are resolved only when no "
                                         "server address is left to ask, one at a time"),
    "prefetch-key": ("no", "a zone's DNSKEY records are fetched when validation needs them"),
    "ip-ratelimit-factor": ("0", "past ip-ratelimit none of a client's misses get through"),
    "shm-enable": ("no", "statistics are read with stats or from the metrics, not from "
                         "shared memory"),
    "ip-dscp": ("0", "the daemon's packets carry no DSCP mark"),
    "tcp-mss": ("0", "the kernel's MSS is used on client connections"),
    "outgoing-tcp-mss": ("0", "the kernel's MSS is used on connections to authorities"),
    "http-nodelay": ("yes", "TCP_NODELAY is set on every TCP connection"),
    "hide-http-user-agent": ("yes", "DNS over HTTPS responses carry no Server header"),
    "iter-scrub-promiscuous": ("yes", "of a reply only the answer's chain is cached, and of "
                                      "a referral its NS set and glue"),
}
#: server: options corenet has no equivalent of: why (others: "no corenet setting")
NOT_CARRIED = {
    **dict.fromkeys(("cookie-secret", "cookie-secret-file"),
                    "no DNS server cookies are made (answer-cookie)"),
    **dict.fromkeys(("ip-ratelimit-cookie", "wait-limit-cookie", "wait-limit-cookie-netblock"),
                    "no DNS cookies are checked, so none lifts a limit (answer-cookie)"),
    "wait-limit-netblock": "max-inflight-per-client (wait-limit) is one cap for every client "
                           "address",
    "discard-timeout": "a miss is answered, SERVFAIL at worst, within max-query-time; none is "
                       "dropped unanswered",
    "nat64-prefix": "authorities are asked at their own addresses (do-nat64)",
    **dict.fromkeys(("edns-client-string", "edns-client-string-opcode"),
                    "no EDNS client string is sent to authorities"),
    **dict.fromkeys(("send-client-subnet", "client-subnet-zone", "client-subnet-always-forward",
                     "client-subnet-opcode", "max-client-subnet-ipv4", "max-client-subnet-ipv6",
                     "min-client-subnet-ipv4", "min-client-subnet-ipv6",
                     "max-ecs-tree-size-ipv4", "max-ecs-tree-size-ipv6"),
                    "corenet has no client subnet module (RFC 7871): no ECS goes to "
                    "authorities, and one answer is cached for every client"),
    **dict.fromkeys(("ratelimit-size", "ip-ratelimit-size"),
                    "the rate tables are bounded by entries, not bytes (limits "
                    "max-rate-clients for clients, infra-cache-numhosts for zones)"),
    **dict.fromkeys(("stream-wait-size", "http-query-buffer-size", "http-response-buffer-size"),
                    "each connection's buffers are capped, not all connections' together; "
                    "what they hold is counted (mem.streamwait, mem.http.*)"),
    **dict.fromkeys(("max-reuse-tcp-queries", "tcp-reuse-timeout"),
                    "a TCP query to an authority has a connection of its own (DNS over TLS "
                    "to forwarders keeps its connections: limits tls-upstream-idle-timeout, "
                    "tls-upstream-max-outstanding)"),
    **dict.fromkeys(("outbound-msg-retry", "max-sent-count"),
                    "a question's upstream queries are capped all together (limits "
                    "max-upstream-queries) and per server (limits max-tries-per-server)"),
    **dict.fromkeys(("quic-port", "quic-size"), "corenet serves no DNS over QUIC"),
    **dict.fromkeys(("python-script", "dynlib-file"),
                    "corenet runs no Python or dynlib modules"),
    **dict.fromkeys(("zonemd-check", "zonemd-reject-absence", "zonemd-permissive-mode"),
                    "corenet has no auth-zone: clause, whose ZONEMD this checks"),
    **dict.fromkeys(("response-ip", "response-ip-data", "response-ip-tag"),
                    "corenet has no respip module: an rpz: zone's response-IP triggers do "
                    "this"),
    "trusted-keys-file": "BIND's trusted-keys format: give the keys as DS or DNSKEY records "
                         "(trust-anchor-file)",
    **dict.fromkeys(("interface-action", "interface-tag", "interface-tag-action",
                     "interface-tag-data", "interface-view"),
                    "access control, tags and views go by the client's network "
                    "(access-control, access-control-tag, access-control-view), not by "
                    "the interface"),
    "interface-automatic-ports": "the interfaces are given (interface), not found",
    **dict.fromkeys(("fast-server-permil", "fast-server-num"),
                    "corenet asks the server of lowest smoothed RTT, and another at random "
                    "with probability exploration: no share of fast servers to set"),
    "chroot": "corenet does not chroot (the systemd unit's ProtectSystem and friends confine it)",
    "trust-anchor": "corenet reads trust anchors from files (trust-anchor-file)",
    "module-config": "read for validator, dns64 and cachedb; the other modules do not exist",
    "iter-scrub-ns": "an NS set is kept whole: at most max-servers-per-zone (8) of its "
                     "servers are asked and max-ns-names-per-delegation (6) of its names "
                     "resolved (limits)",
    "iter-scrub-cname": "a reply's CNAME and DNAME chain is followed for at most "
                        "max-cname-chain links (Unbound's max-query-restarts, 11), as are "
                        "the links of all a question's replies together (limits)",
    "iter-scrub-rrsig": "an rrset's RRSIGs are kept; at most dnssec-max-sig-checks-per-rrset "
                        "(8) of them are checked (limits)",
    "outgoing-num-tcp": "TCP queries to authorities have no cap of their own: the misses "
                        "that make them are capped (max-inflight)",
    **dict.fromkeys(("outgoing-port-permit", "outgoing-port-avoid"),
                    "the kernel picks each upstream socket's port from its ephemeral range "
                    "(net.ipv4.ip_local_port_range)"),
    "msg-buffer-size": "replies from authorities and messages over TCP may be 65,535 bytes "
                       "long, a client's query over UDP 4,096 (no setting)",
    "shm-key": "statistics are not kept in shared memory (shm-enable)",
    "http-user-agent": "DNS over HTTPS responses carry no Server header "
                       "(hide-http-user-agent)",
    "val-override-date": "validation always reads the clock",
    **dict.fromkeys(("ipsecmod-enabled", "ipsecmod-hook", "ipsecmod-strict",
                     "ipsecmod-max-ttl", "ipsecmod-ignore-bogus", "ipsecmod-allow"),
                    "corenet has no ipsecmod module"),
}
#: server: options whose Unbound value 0 means "no limit": the longest corenet allows
NO_LIMIT_ZERO = {"serve-expired-ttl": ("serve-stale-window", 30 * 86400,
                                       "Unbound's 0 is no limit; 30 days is corenet's longest"),
                 "wait-limit": ("max-inflight-per-client", 10_000_000,
                                "Unbound's 0 is no limit; 10,000,000 is corenet's highest")}
#: Unbound's options whose default corenet does not share: (Unbound's default as its config
#: writes it, why corenet's differs). ``import-unbound`` names each one a config leaves at
#: the default; the docs show them; a test reads Unbound's own (``unbound-checkconf -o``).
DEFAULTS_UNLIKE_UNBOUND = {
    "wait-limit": ("1000", "256 misses at once from one address is a flood already: each holds "
                           "an upstream socket and a slot of max-inflight"),
    "max-global-quota": ("128", "64 upstream queries answer any question a sane zone asks "
                                "(BIND's max-recursion-queries is near 100): past that a "
                                "question is an attack's"),
    "hide-identity": ("no", "the host name tells whoever asks which machine answers"),
    "hide-version": ("no", "a version string tells an attacker which flaws to try"),
    "prefetch": ("no", "popular names are refreshed before they expire, so their clients "
                       "never wait for a resolution"),
    "serve-expired": ("no", "answers keep coming while authorities fail (RFC 8767)"),
    "serve-expired-ttl": ("0", "RFC 8767 suggests serving stale data for 1 to 3 days, "
                               "not forever (Unbound's 0)"),
    "serve-expired-client-timeout": ("0", "RFC 8767's client response timer: an expired "
                                          "answer goes out once the resolution has run 1.8 s, "
                                          "where Unbound's 0 sends it before trying"),
    "tcp-idle-timeout": ("30000", "a connection idle for 10 s is more likely a slow client "
                                  "holding a descriptor than one about to ask"),
    "incoming-num-tcp": ("10", "10 per thread is too few once clients use DoT or pipeline "
                               "over TCP; at the cap an idle connection makes room"),
    "num-queries-per-thread": ("1024", "one figure for the whole worker, lowered at start "
                                       "to what the descriptor limit allows"),
    "outgoing-range": ("4096", "corenet counts sockets in flight, not ports: 1024 in flight "
                               "at 50 ms each is 20,000 misses a second"),
    "max-udp-size": ("4096", "DNS Flag Day 2020's 1232 bytes: no IP fragmentation"),
    "so-rcvbuf": ("0", "4 MiB holds a burst of some 5,000 queries that comes while a worker "
                       "is busy; the system's 208 KiB holds about 250"),
    "infra-cache-max-rtt": ("120000", "a server's timeout grows to 1.5 s at most: every "
                                      "answer is due within max-query-time (4 s), and a "
                                      "server that keeps timing out is marked down and "
                                      "probed, not waited for"),
    "tcp-auth-query-timeout": ("3000", "a TCP exchange with an authority is cut at 2 s, so "
                                       "that another can still be asked within "
                                       "max-query-time (4 s)"),
    "use-syslog": ("yes", "under systemd standard error already reaches the journal, with "
                          "each line's priority"),
    "ede": ("no", "a failed answer says why (RFC 8914: DNSSEC bogus, no reachable "
                  "authority...), where SERVFAIL alone tells clients and operators nothing"),
}
#: memory sizes of caches corenet keeps in its one cache, and Unbound's defaults
CACHE_SIZES = {"msg-cache-size": 4 * 1024 ** 2, "rrset-cache-size": 4 * 1024 ** 2}


def convert(options: list[Option]) -> Conversion:
    """What corenet makes of ``options`` (from :func:`read`)."""
    conv = Conversion()
    for o in options:
        if o.key not in KEYWORDS:
            conv.unknown(o)
    options = [o for o in options if o.key in KEYWORDS]
    server = [o for o in options if o.clause == "server"]
    port = 53
    for o in server:
        if o.key == "port":
            try:
                port = int(o.values[0])
                conv.same(o, "the port of every interface without one")
            except (IndexError, ValueError):
                conv.skip(o, "not a port number")
    directory = next((o.values[0] for o in server if o.key == "directory" and o.values), "")
    _server(conv, server, port, directory)
    _control(conv, [o for o in options if o.clause == "remote-control"])
    _zones(conv, options)
    _upstream_tls(conv, [o for o in server if o.key == "tls-upstream"])
    for o in options:
        if o.clause not in ("server", "remote-control", "forward-zone", "stub-zone",
                            "cachedb", "rpz", "view"):
            conv.skip(o, f"corenet has no {o.clause}: clause")
    given = {o.key for o in server}
    conv.unlike = [d for d in unlike_unbound() if d.option not in given]
    return conv


def unlike_unbound() -> list[Unlike]:
    """Each default of ``DEFAULTS_UNLIKE_UNBOUND``: Unbound's, read as corenet reads a
    config that writes it, beside corenet's."""
    out = []
    for name, (value, why) in DEFAULTS_UNLIKE_UNBOUND.items():
        one = Conversion()
        _server(one, [Option("server", name, (value,), "(Unbound's default)", 0)], 53, "")
        ((key, theirs),) = one.settings.items()
        row = BY_NAME.get(key.replace("-", "_")) or LIMITS[key.replace("-", "_")]
        out.append(Unlike(name, value, key, theirs, default_of(row), why))
    return out


#: The options of tags and overrides, each one line: how many values it takes, whether
#: exactly that many (else at least), and which of them is a client network (None: none)
ONE_LINE_OPTIONS = {"define-tag": (1, False, None), "local-zone-tag": (2, False, None),
                    "access-control-tag": (2, False, 0),
                    "access-control-tag-action": (3, True, 0),
                    "access-control-tag-data": (3, False, 0),
                    "local-zone-override": (3, True, 1)}


def _one_line(key: str, vals: tuple[str, ...]) -> str:
    """The values of one of ``ONE_LINE_OPTIONS`` as the one string its corenet setting reads
    (a quoted list of tags is a list of words; a record's words are kept in order)."""
    count, exact, network = ONE_LINE_OPTIONS[key]
    if len(vals) < count or (exact and len(vals) != count):
        raise ValueError(f"expected {'' if exact else 'at least '}{count} values, "
                         f"got {len(vals)}")
    words = list(vals)
    if network is not None:
        words[network] = str(ipaddress.ip_network(words[network], strict=False))
    return " ".join(words)


def _nsec3_iterations(conv: Conversion, o: Option, text: str) -> None:
    """``val-nsec3-keysize-iterations``: pairs of a key size and the most NSEC3 iterations
    a key of up to that size may have. One cap for every size is ``nsec3-max-iterations``;
    caps that differ by key size have no corenet setting."""
    words = text.split()
    if not words or len(words) % 2:
        raise ValueError("expected pairs of a key size and an iteration count")
    sizes, caps = [int(w) for w in words[::2]], {int(w) for w in words[1::2]}
    if any(b <= a for a, b in zip(sizes, sizes[1:])) or min(sizes + list(caps)) < 0:
        raise ValueError("expected key sizes in ascending order and counts of 0 or more")
    if len(caps) == 1:
        conv.set(o, "nsec3-max-iterations", caps.pop(), "one cap for every key size")
    else:
        conv.skip(o, "caps that differ by key size are not corenet's: nsec3-max-iterations "
                     "is one cap for keys of every size")


def _server(conv: Conversion, server: list[Option], port: int, directory: str) -> None:
    interfaces: list[tuple[Option, str, int]] = []
    special: dict[str, list[tuple[Option, int]]] = {k: [] for k in SPECIAL_PORTS}
    plain_http: list[tuple[Option, bool]] = []
    acl: list[tuple[Option, Any, str]] = []
    sizes: list[tuple[Option, int]] = []

    def path(text: str) -> str:
        return os.path.join(directory, text) if directory and not os.path.isabs(text) else text

    for o in server:
        k, vals = o.key, o.values
        v = vals[0] if vals else ""
        try:
            if k in ("port", "tls-upstream"):        # convert() and _upstream_tls read them
                continue
            if k in MILLISECONDS:
                conv.set(o, MILLISECONDS[k], int(v) / 1000, "milliseconds to seconds")
            elif k == "val-nsec3-keysize-iterations":
                _nsec3_iterations(conv, o, v)
            elif k in NO_LIMIT_ZERO and v.strip() == "0":
                conv.set(o, *NO_LIMIT_ZERO[k])
            elif k == "outgoing-interface" and "/" in v:
                conv.skip(o, "a netblock of random source addresses is not corenet's: give "
                             "addresses")
            elif k in ONE_LINE_OPTIONS:
                conv.add(o, k, _one_line(k, vals))
            elif same_setting(k) is not None:
                key, read_, many = same_setting(k)
                value = read_(v)
                if key in PATHS and value:
                    value = path(value)
                if value == "":
                    conv.same(o, "empty: the default")
                elif many:
                    conv.add(o, key, value)
                elif k in EVERY_LINE and key in conv.settings:
                    first = conv.sources[key][0]
                    conv.skip(o, f"corenet takes one {key}: the first line's "
                                 f"({first.file}:{first.line})")
                else:
                    conv.set(o, key, value)
            elif k == "interface":
                interfaces.append((o, *interface(v, port)))
            elif k in SPECIAL_PORTS:
                special[k].append((o, int(v)))
            elif k == "http-notls-downstream":
                plain_http.append((o, yesno(v)))
            elif k == "access-control":
                if len(vals) != 2:
                    raise ValueError("expected a netblock and an action")
                acl.append((o, ipaddress.ip_network(vals[0], strict=False), vals[1].lower()))
            elif k in CACHE_SIZES:
                sizes.append((o, memsize(v)))
            elif k == "local-zone":
                if len(vals) != 2:
                    raise ValueError("expected a zone and a type")
                conv.add(o, "local-zone", f"{vals[0]} {vals[1]}")
            elif k == "access-control-view":
                if len(vals) != 2:
                    raise ValueError("expected a netblock and a view name")
                conv.add(o, "access-control-view",
                         f"{ipaddress.ip_network(vals[0], strict=False)} {vals[1]}")
            elif k in ("ratelimit-for-domain", "ratelimit-below-domain"):
                if len(vals) != 2:
                    raise ValueError("expected a domain and a number")
                conv.add(o, k, f"{vals[0]} {int(vals[1])}")
            elif k == "tcp-connection-limit":
                if len(vals) != 2:
                    raise ValueError("expected a netblock and a number")
                conv.add(o, k, f"{ipaddress.ip_network(vals[0], strict=False)} {int(vals[1])}")
            elif k == "module-config":
                _modules(conv, o)
            elif k in FIXED:
                value, does = FIXED[k]
                if " ".join(vals).lower() == value.lower():
                    conv.same(o, does)
                else:
                    conv.skip(o, f"only {k}: {value} is corenet's: {does}")
            elif k in BUILT_IN:
                conv.same(o, BUILT_IN[k])
            elif k == "chroot" and not v:
                conv.same(o, "no chroot, as corenet runs")
            elif k in NOT_CARRIED:
                conv.skip(o, NOT_CARRIED[k])
            else:
                conv.skip(o, "no corenet setting")
        except (ValueError, IndexError) as e:
            conv.refuse(o, e)
    _listeners(conv, interfaces, special, plain_http[-1][1] if plain_http else False)
    for o, _ in plain_http:
        conv.same(o, "the https-port interfaces go to " +
                  ("http-listen" if plain_http[-1][1] else "https-listen"))
    if sizes:
        given = {o.key: n for o, n in sizes}
        total = sum(given.get(k, n) for k, n in CACHE_SIZES.items())
        for o, _ in sizes:
            conv.set(o, "cache-size", total, "corenet's one cache holds messages and rrsets: "
                                             "the two sizes added, Unbound's 4m for one not "
                                             "given")
    _access(conv, acl)


def _modules(conv: Conversion, o: Option) -> None:
    mods = " ".join(o.values).split()
    if "validator" not in mods:
        conv.set(o, "validate", False, "no validator module")
    if "dns64" in mods:
        conv.set(o, "dns64", True)
    other = [m for m in mods if m not in ("validator", "iterator", "dns64", "cachedb")]
    if other:
        conv.skip(o, f"modules corenet does not have: {', '.join(other)}")
    elif "validator" in mods and "dns64" not in mods:
        conv.same(o, "validation and iteration are corenet's own")


def _listeners(conv: Conversion, interfaces: list[tuple[Option, str, int]],
               special: dict[str, list[tuple[Option, int]]], plain_http: bool) -> None:
    """Each interface goes where Unbound serves it: at the tls-port or a tls-additional-port,
    DNS over TLS alone (tls-listen); at the https-port, DNS over HTTPS alone (https-listen,
    or http-listen with http-notls-downstream); elsewhere DNS over UDP and TCP (listen).
    Without a service key and certificate Unbound serves no TLS: an interface at a TLS port
    is then plain DNS (listen), one at the https-port plain HTTP (http-listen)."""
    last = {k: lines[-1][1] if lines else SPECIAL_PORTS[k] for k, lines in special.items()}
    tls = {last["tls-port"]} | {p for _, p in special["tls-additional-port"]}
    keyed = "tls-service-key" in conv.settings and "tls-service-pem" in conv.settings
    for o, host, p in interfaces:
        if p in tls and keyed:
            conv.add(o, "tls-listen", address_text(host, p), f"port {p}: DNS over TLS")
        elif p in tls:
            conv.add(o, "listen", address_text(host, p), f"port {p} with no tls-service-key "
                     "and tls-service-pem: plain DNS (Unbound's over TCP alone)")
        elif p == last["https-port"] and keyed and not plain_http:
            conv.add(o, "https-listen", address_text(host, p), f"port {p}: DNS over HTTPS")
        elif p == last["https-port"]:
            conv.add(o, "http-listen", address_text(host, p), f"port {p}: DNS over plain HTTP"
                     + ("" if plain_http else " (no tls-service-key and tls-service-pem)"))
        else:
            conv.add(o, "listen", address_text(host, p))
    for key, lines in special.items():
        for o, p in lines:
            given = [address_text(h, q) for _, h, q in interfaces if q == p]
            if key != "tls-additional-port" and p != last[key]:
                conv.same(o, f"a later {key} line gives the port")
            elif given:
                conv.same(o, f"the interfaces at port {p}: {', '.join(given)}")
            else:
                conv.same(o, "no interface is given with this port")


def _upstream_tls(conv: Conversion, lines: list[Option]) -> None:
    """tls-upstream: Unbound asks every server over TLS, the forward zones' and the
    authorities'. corenet's forward zones take it as forward-tls-upstream; authorities are
    asked without TLS (they do not serve it), so where questions go to them the option is
    only partly carried, and said so."""
    if not lines:
        return
    for o in lines[:-1]:
        conv.same(o, "a later tls-upstream line gives it")
    last = lines[-1]
    try:
        on = yesno(last.values[0] if last.values else "")
    except ValueError as e:
        conv.refuse(last, e)
        return
    if not on:
        conv.same(last, "servers are asked without TLS unless a forward zone says otherwise")
        return
    zones = conv.tables.get("forward-zone", [])
    for t in zones:
        t["forward-tls-upstream"] = True
    if any(t.get("name", "").rstrip(".") == "" for t in zones):
        conv.mapped.append(Mapped(last, "forward-zone.forward-tls-upstream",
                                  "every forward zone, and every question is forwarded"))
    else:
        conv.skip(last, "corenet asks authorities without TLS: only the forward zones "
                        f"({len(zones)}) take it, as forward-tls-upstream")


#: access-control actions Unbound has and corenet has not: left out (the network then falls
#: to the rules around it; each of these only lets clients in)
UNBOUND_ONLY_ACL_ACTIONS = ("allow_cookie",)


def _access(conv: Conversion, acl: list[tuple[Option, Any, str]]) -> None:
    """access-control: corenet's access-control, for the actions it has. An action Unbound
    has not either is refused, as Unbound refuses the file."""
    for o, net, action in acl:
        if action in ACL_ACTIONS:
            conv.add(o, "access-control", f"{net} {action}")
        elif action in UNBOUND_ONLY_ACL_ACTIONS:
            conv.skip(o, f"no action {action} in corenet: the netblock is not let in by it")
        else:
            conv.refuse(o, ValueError(f"unknown action {action} (one of "
                                      f"{', '.join(ACL_ACTIONS + UNBOUND_ONLY_ACL_ACTIONS)})"))


def _control(conv: Conversion, opts: list[Option]) -> None:
    for o in opts:
        k = o.key
        v = o.values[0] if o.values else ""
        try:
            if k in ("control-enable", "control-use-cert"):
                conv.set(o, k, yesno(v))
            elif k == "control-interface" and v.startswith("/"):
                conv.set(o, "control", v, "a Unix socket")
            elif k == "control-interface":
                ipaddress.ip_address(v)
                conv.add(o, k, v)
            elif k == "control-port":
                conv.set(o, k, int(v))
            elif k in ("server-key-file", "server-cert-file", "control-key-file",
                       "control-cert-file"):
                conv.set(o, k, v)
            else:
                conv.skip(o, "no corenet setting")
        except ValueError as e:
            conv.refuse(o, e)
    if conv.settings.get("control-enable") and "control" in conv.settings \
            and not conv.settings.get("control-interface"):
        # only a Unix socket: corenet's TCP listener (its control-enable) stays off
        conv.settings["control-enable"] = False
        for m in conv.mapped:
            if m.key == "control-enable":
                m.note = "the control channel is the Unix socket: corenet's TCP control " \
                         "listener stays off"


#: zone clauses: Unbound's key -> (kind of value, repeatable)
ZONE_KEYS = {
    "forward-zone": {"name": (str, False), "forward-addr": (str, True),
                     "forward-host": (str, True), "forward-first": (yesno, False),
                     "forward-tcp-upstream": (yesno, False),
                     "forward-tls-upstream": (yesno, False)},
    "stub-zone": {"name": (str, False), "stub-addr": (str, True), "stub-host": (str, True),
                  "stub-first": (yesno, False), "stub-prime": (yesno, False)},
    # (a kind of None: the option's two values, "NAME TYPE")
    "view": {"name": (str, False), "view-first": (yesno, False), "local-zone": (None, True),
             "local-data": (str, True), "local-data-ptr": (str, True)},
    "rpz": {"name": (str, False), "zonefile": (str, False), "primary": (str, True),
            "rpz-action-override": (str, False),
            "rpz-cname-override": (str, False), "rpz-log": (yesno, False),
            "rpz-log-name": (str, False), "rpz-signal-nxdomain-ra": (yesno, False),
            "tags": (str, False)},
}
CACHEDB = {"backend": ("cachedb-backend", str), "secret-seed": ("cachedb-secret-seed", str),
           "redis-server-host": ("redis-server-host", str),
           "redis-server-port": ("redis-server-port", int),
           "redis-server-path": ("redis-server-path", str),
           "redis-timeout": ("redis-timeout", int),
           "redis-server-password": ("redis-server-password", str),
           "redis-logical-db": ("redis-logical-db", int),
           "cachedb-store-expired": ("cachedb-store-expired", yesno)}


def _zones(conv: Conversion, options: list[Option]) -> None:
    current: dict[int, dict] = {}
    for o in options:
        if o.clause in ZONE_KEYS:
            keys = ZONE_KEYS[o.clause]
            if o.section not in current:
                current[o.section] = {}
                conv.tables.setdefault(o.clause, []).append(current[o.section])
            table = current[o.section]
            if o.key not in keys:
                conv.skip(o, f"no corenet {o.clause} key")
                continue
            kind, many = keys[o.key]
            try:
                if kind is None:
                    if len(o.values) != 2:
                        raise ValueError("expected a zone and a type")
                    value = f"{o.values[0]} {o.values[1]}"
                else:
                    value = kind(o.values[0])
            except (IndexError, ValueError) as e:
                conv.refuse(o, e)
                continue
            if many:
                table.setdefault(o.key, []).append(value)
            else:
                table[o.key] = value
            conv.mapped.append(Mapped(o, f"{o.clause}.{o.key}"))
        elif o.clause == "cachedb":
            if o.key == "redis-expire-records":
                conv.same(o, "answers are written with their TTL as Redis's expiry, as "
                             "Unbound's yes writes them (with no, Redis keeps them until it "
                             "evicts them: the same answers are served)")
                continue
            if o.key not in CACHEDB:
                conv.skip(o, "no corenet cachedb setting")
                continue
            key, kind = CACHEDB[o.key]
            try:
                conv.set(o, key, kind(o.values[0]))
            except (IndexError, ValueError) as e:
                conv.refuse(o, e)
