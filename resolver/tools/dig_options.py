"""dig's command line as ``corenet-resolver query`` reads it: the :class:`Options` of one
look-up, the ``+options`` and dig's grammar (options before the first name are global, each
name starts a look-up that takes what follows it)."""
from __future__ import annotations

import argparse
import os
import re
import socket
import sys
from dataclasses import dataclass, field, replace
from typing import NamedTuple

EXIT_OK, EXIT_USAGE, EXIT_BATCH, EXIT_NO_ANSWER, EXIT_INTERNAL = 0, 1, 8, 9, 10


class Fatal(Exception):
    """dig's fatal(): the message is said (on stderr) and the command ends at once, the
    look-ups after this one not asked; its exit status ``status`` (1 unless said)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status

#: The file read for the default servers, and the variable that names another one.
RESOLV_CONF, RESOLV_CONF_ENV = "/etc/resolv.conf", "CORENET_RESOLV_CONF"

PROG = "corenet-resolver query"

#: The display toggles of ``+all``/``+noall``.
DISPLAY = ("cmd", "comments", "question", "answer", "authority", "additional", "stats")

#: RFC 8914's names, as dig prints them.
class UsageError(Exception):
    pass


@dataclass
class Options:
    """What one look-up is asked with (the command line's, then a batch line's on top)."""
    name: str | None = None
    rdtype: str | None = None
    rdclass: str | None = None
    reverse: bool = False
    server: str | None = None
    servers: tuple = ()                  # every @SERVER given, in order (server: the last)
    fail: bool = True                    # +nofail: after SERVFAIL, the next server
    port: int | None = None
    family: int = 0                      # socket.AF_INET for -4, AF_INET6 for -6
    transport: str = "udp"               # udp, tcp, tls, https, http (+http-plain)
    https_path: str = "/dns-query"
    https_get: bool = False
    tls_ca: str | None = None            # "" for the system's store
    tls_hostname: str | None = None
    rec: bool = True
    cd: bool = False
    ad: bool = True
    dnssec: bool = False
    edns: bool = True
    edns_version: int = 0                # +edns=N: the EDNS version asked (0-255)
    ixfr_serial: int | None = None       # ixfr=N: the serial an IXFR asks from
    told: tuple = ()                     # the parts of the output given on (+comments...)
    bufsize: int = 1232
    bufsize_given: bool = False          # +bufsize given: EDNS asked, even after +noedns
    nsid: bool = False
    subnet: str | None = None            # +subnet=ADDR[/LEN]: EDNS Client Subnet
    short: bool = False
    yaml: bool = False                   # +yaml: each message as YAML, as dig writes it
    # the command lines were made: dig's +cmd was on as the first name was read (they
    # come before "no servers could be reached" then, whatever follows; before a reply
    # only with +cmd on at the end). The first look-up's only.
    greeting: bool = False
    counted: bool = False                # and say how many addresses @SERVER had: one was
                                         # given before the first name
    greeted_short: bool = False          # and +short was on then ("global options: +short")
    # a batch line's look-up: that line's words, for its own command lines (dig makes them
    # as each line's first name is read, the version line alone after the first)
    greeting_words: list | None = None
    greeting_first: bool = True          # the first command lines made: the whole of them
    multi: bool = False                  # +multi: records on several lines, as BIND's
    cookie: bool = True                  # +[no]cookie: an EDNS COOKIE option (on, as dig)
    cookie_value: bytes | None = None    # +cookie=HEX: that cookie rather than a random one
    trace: bool = False                  # +trace: iterate from the root hints, each step shown
    nssearch: bool = False               # +nssearch: each name server's SOA, one line each
    ignore_tc: bool = False
    badcookie: bool = True               # +[no]badcookie: a BADCOOKIE reply asked again
    showbadcookie: bool = False          # +showbadcookie: that reply printed first
    # accepted for dig's command lines; nothing they change applies here (COMPATIBILITY.md)
    onesoa: bool = False                 # +onesoa: a transfer without the SOA ending it
    besteffort: bool = False             # +besteffort: malformed replies shown
    ednsnegotiation: bool = True         # +ednsnegotiation: BADVERS asked again, server's version
    keepopen: bool = False               # +keepopen: the TCP connection kept between look-ups
    dns64prefix: bool = False            # +dns64prefix's look-up: ipv4only.arpa AAAA's prefixes
    tcp_chosen: bool = False             # +tcp or +notcp given (else ANY goes over TCP)
    # the query as sent
    aa: bool = False                     # +aaflag (+aaonly), +raflag, +tcflag, +zflag
    ra: bool = False
    tc: bool = False
    z: bool = False
    opcode: int = 0                      # +opcode=N|NAME
    qid: int | None = None               # +qid=N: the query's id (else a random one)
    ednsflags: int = 0                   # +ednsflags=N: EDNS flag bits no RFC defines
    ednsopts: list = field(default_factory=list)    # +ednsopt=CODE[:HEX], in order
    source: tuple | None = None          # -b ADDR[#PORT]: the query's socket bound there
    usec: bool = False                   # -u: the query time in microseconds
    header_only: bool = False            # +header-only: no question section
    expire: bool = False                 # +expire, +keepalive: those EDNS options
    keepalive: bool = False
    coflag: bool = False                 # +coflag: EDNS's CO bit (compact denial)
    padding: int = 0                     # +padding=N: the query padded to N bytes' blocks
    qr: bool = False                     # +qr: the query printed before it is sent
    # TSIG, the whole command's (dig's -y and -k): as given, then the key made of them
    tsig_given: object = None            # -y's KeySpec
    tsig_file: str | None = None         # -k FILE
    tsig_key: object = None              # the dnspython key the queries are signed with
    tsig_secret: bool = False            # a secret was given (whether or not a key was made)
    # how records are printed
    ttlid: bool = True                   # +[no]ttlid: the TTL field
    show_class: bool = True              # +[no]class: the class field
    ttlunits: bool = False               # +ttlunits: TTLs as 1w2d3h4m5s
    crypto: bool = True                  # +[no]crypto: keys, signatures and digests
    split: int | None = None             # +split=W: base64/hex groups (0: none; None: dig's)
    expandaaaa: bool = False             # +expandaaaa: IPv6 addresses in full
    unknownformat: bool = False          # +unknownformat: RFC 3597's generic form
    identify: bool = False               # +identify: the server after each +short line
    rrcomments: bool | None = None       # +[no]rrcomments (None: with +multi only)
    # the search list (+search, +domain=NAME, +ndots=N, +showsearch)
    search: bool = False
    domain: str | None = None
    ndots: int | None = None
    showsearch: bool = False
    idnin: bool | None = None            # +[no]idnin, +[no]idnout (None: on a terminal)
    idnout: bool | None = None
    timeout: float = 5.0
    tries: int = 3
    show: dict = field(default_factory=lambda: dict.fromkeys(DISPLAY, True))
    batch: str | None = None
    typed: bool = False                  # a type (class) given after this look-up's name
    classed: bool = False
    #: resolv.conf as dig read it when the command started (``resolv_conf_defaults``): the
    #: servers asked without @SERVER and +search's list and ndots; unread, an empty file's
    resolv_conf: "BindResolvConf" = field(default_factory=lambda: bind_resolv_conf(""))
    # in-process resolution
    in_process: bool = False
    root_hints: str | None = None
    upstream_port: int = 53
    ipv6: bool = True
    qname_minimisation: bool = True
    do_ip4: bool = True
    do_not_query_localhost: bool = True

    @property
    def split_width(self) -> int:
        """The width of base64 and hex groups: +split's, else dig's default (44 characters
        with +multi, 56 without); 0: not split."""
        if self.split is not None:
            return self.split
        return 44 if self.multi else 56


# ---- the command line ------------------------------------------------------------------------
def add_parser(sub, authority_flags) -> argparse.ArgumentParser:
    """The ``query`` subcommand as ``corenet-resolver --help`` lists it; the arguments
    themselves are read by :func:`parse` (dig's grammar: ``+options`` and ``@server``
    anywhere, several look-ups on one line)."""
    q = sub.add_parser(
        "query", help="ask a DNS server (as dig), or resolve in-process with --in-process",
        usage=f"{PROG} [@SERVER] [-p PORT] [-4|-6] [-b ADDR] [-t TYPE] [-c CLASS] [-x ADDR] "
              "[-q NAME] [-f FILE] [-y [HMAC:]NAME:SECRET | -k FILE] [NAME] [TYPE] [CLASS] "
              "[+OPTION ...]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="dig's +options (each with its +no form):\n"
                    "  +rec +cd +adflag +dnssec +edns +bufsize=N +nsid +subnet=ADDR[/LEN]\n"
                    "  +tcp (+vc) +ignore +tls +https[=/PATH] +https-get[=/PATH]\n"
                    "  +http-plain[=/PATH] +http-plain-get[=/PATH] +keepopen\n"
                    "  +tls-ca[=FILE] +tls-hostname=NAME +time=N +tries=N +retry=N\n"
                    "  +short +all +cmd +comments +question +answer +authority\n"
                    "  +additional +stats +multi +yaml +cookie[=HEX] +badcookie +showbadcookie +trace\n"
                    "  +dns64prefix +nssearch\n"
                    f"Without @SERVER the nameservers of {RESOLV_CONF} are asked\n"
                    f"(${RESOLV_CONF_ENV} names another file). Exit status: 0 a reply,\n"
                    "1 usage error, 8 batch file unreadable, 9 no reply, 10 internal error.")
    q.add_argument("args", nargs="*", metavar="NAME [TYPE] [CLASS] [@SERVER] [+OPTION]")
    q.add_argument("-t", dest="type", metavar="TYPE", help="query type")
    q.add_argument("-c", dest="rdclass", metavar="CLASS", help="query class (IN)")
    q.add_argument("-q", dest="qname", metavar="NAME", help="query name")
    q.add_argument("-x", dest="reverse", metavar="ADDR",
                   help="reverse look-up: the PTR of an IPv4 or IPv6 address")
    q.add_argument("-p", "--port", type=int, default=None, help="server port (53)")
    q.add_argument("-f", dest="batch", metavar="FILE", help="batch: one look-up per line")
    q.add_argument("-4", dest="v4", action="store_true", help="IPv4 servers only")
    q.add_argument("-6", dest="v6", action="store_true", help="IPv6 servers only")
    q.add_argument("-b", dest="source", metavar="ADDR[#PORT]",
                   help="the address (and port) the query leaves from; its family only")
    q.add_argument("-y", dest="tsig", metavar="[HMAC:]NAME:SECRET",
                   help="sign with this TSIG key (HMAC-MD5 unless HMAC is given)")
    q.add_argument("-k", dest="keyfile", metavar="FILE",
                   help="sign with the TSIG key of this file (a BIND key statement)")
    q.add_argument("-u", dest="usec", action="store_true",
                   help="the query time in microseconds")
    q.add_argument("-r", dest="no_digrc", action="store_true",
                   help="~/.digrc not read (its words: options before the command line's)")
    q.add_argument("-v", dest="version", action="store_true", help="the version, on stderr")
    q.add_argument("--in-process", action="store_true",
                   help="resolve in this process from the root servers, asking no server")
    q.add_argument("--root-hints", metavar="FILE", help="for --in-process (the real root)")
    q.add_argument("--upstream-port", type=int, default=53, metavar="PORT",
                   help="authorities' port, for --in-process")
    q.add_argument("--do-ip6", "--ipv6", dest="ipv6", action=argparse.BooleanOptionalAction,
                   default=True, help="--in-process asks authorities over IPv6 too (on)")
    authority_flags(q, True)
    return q


_LONG_BOOL = {"ipv6": "ipv6", "do-ip6": "ipv6", "qname-minimisation": "qname_minimisation",
              "do-ip4": "do_ip4", "do-not-query-localhost": "do_not_query_localhost"}


def _int(value: str, what: str, low: int = 0, high: int = 65535, base: int = 10) -> int:
    try:
        n = int(value, base)
    except ValueError:
        raise UsageError(f"{what}: {value!r} is not a number") from None
    if not low <= n <= high:
        raise UsageError(f"{what}: {value} is out of range {low}..{high}")
    return n


def dig_uint(value: str, what: str, high: int) -> int | None:
    """``value`` as dig's parse_uint reads a number: digits only, 0 to ``high``; another
    is said on stdout as dig says it (``invalid WHAT 'VALUE': out of range``), and None."""
    n = int(value) if value.isascii() and value.isdigit() else -1
    why = "not a valid number" if n < 0 else "out of range" if n > high else ""
    if why:
        print(f"invalid {what} '{value}': {why}", flush=True)
        return None
    return n


def _dig_number(value: str, what: str, high: int) -> int:
    """+edns=N's version (0 to 255) or +bufsize=N's size (0 to 65535); another value is
    dig's error, said as dig says it, and ends the command with status 10, nothing
    asked."""
    n = dig_uint(value, what, high)
    if n is None:
        raise Fatal(f"Couldn't parse {what}", EXIT_INTERNAL)
    return n


#: dig's +options that change how records are printed, and the Options field each sets
_PRINTING = {"ttlid": "ttlid", "class": "show_class", "ttlunits": "ttlunits",
             "crypto": "crypto", "expandaaaa": "expandaaaa", "unknownformat": "unknownformat",
             "identify": "identify", "split": "split", "rrcomments": "rrcomments",
             "idnout": "idnout"}

#: dig's +options this command takes (each with its +no form), and their other spellings
PLUS_OPTIONS = ("rec", "cd", "adflag", "dnssec", "edns", "bufsize", "nsid", "subnet", "tcp",
                "vc", "ignore", "tls", "https", "https-post", "https-get", "tls-ca",
                "tls-hostname", "time", "tries", "retry", "short", "all") + DISPLAY + (
                "multi", "cookie", "trace") + tuple(_PRINTING) + (
                "aaflag", "raflag", "tcflag", "zflag", "opcode", "qid", "ednsflags", "ednsopt",
                "header-only", "qr", "expire", "keepalive", "coflag", "padding", "search",
                "showsearch", "domain", "ndots", "idnin", "fail", "http-plain", "http-plain-post",
                "http-plain-get", "badcookie", "showbadcookie", "onesoa", "besteffort",
                "ednsnegotiation", "keepopen", "yaml", "dns64prefix", "nssearch")
PLUS_ALIASES = {"recurse": "rec", "cdflag": "cd", "ad": "adflag", "do": "dnssec",
                "timeout": "time", "multiline": "multi", "rdflag": "rec", "aaonly": "aaflag",
                "defname": "search"}


def plus_name(key: str) -> str | None:
    """The +option ``key`` (without +no) names, as dig reads it: a whole name (or one of its
    other spellings), or the start of the names of one option only (``ans`` is ``answer``,
    ``mult`` is ``multi``; ``sh`` is ``short``, ``showsearch`` or ``showbadcookie``: none)."""
    if key in PLUS_OPTIONS or key in PLUS_ALIASES:
        return key
    meant = {PLUS_ALIASES.get(n, n) for n in (*PLUS_OPTIONS, *PLUS_ALIASES) if n.startswith(key)}
    return meant.pop() if key and len(meant) == 1 else None


def plus_parts(arg: str) -> tuple[str, bool, str, str]:
    """A +option as (the name it stands for, on (not +no), "=" or "", its value)."""
    key, eq, value = arg[1:].partition("=")
    key = key.lower()
    on = True
    if key.startswith("no") and plus_name(key) is None:
        on, key = False, key[2:]
    name = plus_name(key)
    if name is None:
        raise UsageError(f"Invalid option: {arg}")
    return name, on, eq, value


#: the +options that put EDNS back after +noedns (each needs it), as dig's do
EDNS_NEEDED = ("dnssec", "do", "nsid", "subnet", "cookie", "padding", "ednsflags")


def _plus(o: Options, arg: str) -> None:
    key, on, eq, value = plus_parts(arg)
    if on and key in EDNS_NEEDED and not o.edns:
        o.edns, o.edns_version = True, 0
    flags = {"rec": "rec", "recurse": "rec", "rdflag": "rec", "cd": "cd", "cdflag": "cd",
             "adflag": "ad", "ad": "ad", "dnssec": "dnssec", "do": "dnssec", "nsid": "nsid",
             "edns": "edns", "ignore": "ignore_tc", "aaflag": "aa", "aaonly": "aa",
             "raflag": "ra", "tcflag": "tc", "zflag": "z", "header-only": "header_only",
             "qr": "qr", "expire": "expire", "keepalive": "keepalive", "coflag": "coflag",
             "idnin": "idnin", "fail": "fail", "badcookie": "badcookie",
             "showbadcookie": "showbadcookie", "onesoa": "onesoa", "besteffort": "besteffort",
             "ednsnegotiation": "ednsnegotiation", "keepopen": "keepopen", "yaml": "yaml",
             "nssearch": "nssearch"}
    if key in flags:
        if key == "edns":
            o.edns_version = _dig_number(value, "edns", 255) if (on and eq and value) else 0
        setattr(o, flags[key], on)
        if key == "nssearch" and on:      # as dig: no comments (a later +comments has)
            o.show["comments"] = False
    elif key in DISPLAY:
        o.show[key] = on
        o.told = tuple(k for k in o.told if k != key) + ((key,) if on else ())
    elif key == "all":
        o.show = dict.fromkeys(DISPLAY, on)
        o.told = DISPLAY if on else ()
    elif key in ("multi", "multiline"):
        o.multi = on
    elif key == "cookie":
        o.cookie = on
        if on and eq:
            try:
                cookie = bytes.fromhex(value)
            except ValueError:
                raise UsageError(f"+cookie: {value!r} is not hexadecimal") from None
            if len(cookie) not in (8,) + tuple(range(16, 41)):
                raise UsageError("+cookie: a client cookie of 8 bytes, or 16-40 with the "
                                 "server's")
            o.cookie_value = cookie
    elif key == "trace":
        o.trace = on
        if on:                            # as dig: +trace shows where each reply came from
            o.identify = True             # and has no comments (a later +comments has)
            o.show["comments"] = False
    elif key == "dns64prefix":
        pass                              # a look-up of its own: parse() starts it
    elif key == "opcode":
        o.opcode = _opcode(value) if (on and eq) else 0
    elif key in ("search", "defname"):
        o.search = on
    elif key == "showsearch":
        o.showsearch = o.search = on
    elif key == "domain":
        if on and not eq:
            raise UsageError("+domain needs =NAME")
        o.domain = value if on else None
        o.search = o.search or on
    elif key == "ndots":
        if on and not eq:
            raise UsageError("+ndots needs =N")
        o.ndots = _int(value, "+ndots", 0, 255) if on else None
    elif key == "padding":
        o.padding = _int(value, "+padding", 0, 512) if (on and eq) else 0
    elif key == "qid":
        if not on or not eq:
            raise UsageError("+qid needs =N")
        o.qid = _int(value, "+qid")
    elif key == "ednsflags":
        o.ednsflags = _int(value, "+ednsflags", 0, 0x7FFF, base=0) if (on and eq) else 0
    elif key == "ednsopt":
        if not on:
            o.ednsopts = []
        elif not eq:
            raise UsageError("+ednsopt needs =CODE[:VALUE]")
        else:
            o.ednsopts = [*o.ednsopts, _ednsopt(value)]
    elif key == "split":
        width = _int(value, "+split", 0, 1 << 20) if (on and eq) else (None if on else 0)
        if width is not None and width % 4:
            width += 4 - width % 4
            print(f";; Warning, split must be a multiple of 4; adjusting to {width}",
                  file=sys.stderr)
        o.split = width
    elif key in _PRINTING:
        setattr(o, _PRINTING[key], on)
        if key == "ttlunits" and on:
            o.ttlid = True                # as dig: units show the TTL again
    elif key == "short":
        o.short = on
        if on:
            o.show = dict.fromkeys(DISPLAY, False)
            o.show["answer"] = True
    elif key in ("tcp", "vc"):
        o.transport = "tcp" if on else "udp"
        o.tcp_chosen = True
    elif key == "tls":
        o.transport = "tls" if on else "udp"
    elif key in ("https", "https-post", "https-get", "http-plain", "http-plain-post",
                 "http-plain-get"):
        o.transport = ("https" if key.startswith("https") else "http") if on else "udp"
        o.https_get = key.endswith("-get")
        if on and eq:
            o.https_path = value if value.startswith("/") else "/" + value
    elif key == "tls-ca":
        o.tls_ca = (value if eq else "") if on else None
    elif key == "tls-hostname":
        if on and not value:
            raise UsageError("+tls-hostname needs =NAME")
        o.tls_hostname = value if on else None
    elif key in ("time", "timeout"):
        if not on or not eq:
            raise UsageError(f"+{key} needs =SECONDS")
        o.timeout = max(1, _int(value, "+time", 0, 86400))
    elif key in ("tries", "retry"):
        if not on or not eq:
            raise UsageError(f"+{key} needs =N")
        n = _int(value, f"+{key}", -(2 ** 31), 2 ** 31)
        o.tries = max(1, n + (1 if key == "retry" else 0))
    elif key == "subnet":
        if on and not eq:
            raise UsageError("+subnet needs =ADDR[/LEN]")
        if on:
            ecs(value)
        o.subnet = value if on else None
    elif key == "bufsize":
        if not on:                        # as dig: no +nobufsize
            raise UsageError(f"Invalid option: {arg}")
        size = _dig_number(value, "buffer size", 65535) if value else 1232
        # as dig 9.18, whose size is a signed 16-bit number: 32768 and up are as if not
        # given (1232, and no EDNS after +noedns)
        o.bufsize, o.bufsize_given = (size, True) if size < 32768 else (1232, False)
    else:
        raise UsageError(f"Invalid option: {arg}")


def _opcode(value: str) -> int:
    """+opcode's value: a number (0-15) or a name (QUERY, NOTIFY...)."""
    import dns.opcode
    if value.isdigit():
        return _int(value, "+opcode", 0, 15)
    try:
        return int(dns.opcode.from_text(value.upper()))
    except Exception:
        raise UsageError(f"+opcode: {value!r} is not an opcode") from None


def _ednsopt(value: str) -> tuple[int, bytes]:
    """+ednsopt's value: CODE (a number or a name such as NSID) and optional hex data."""
    import dns.edns
    code, _, data = value.partition(":")
    if code.isdigit():
        otype = _int(code, "+ednsopt", 0, 65535)
    else:
        try:
            otype = int(dns.edns.OptionType[code.upper().replace("-", "_")])
        except KeyError:
            raise UsageError(f"+ednsopt: {code!r} is not an EDNS option") from None
    try:
        return otype, bytes.fromhex(data)
    except ValueError:
        raise UsageError(f"+ednsopt: {data!r} is not hexadecimal") from None


def ecs(value: str):
    """dig's +subnet value as an ECS option (``0`` is 0.0.0.0/0)."""
    import dns.edns
    addr, _, length = value.partition("/")
    if addr == "0":
        addr = "0.0.0.0"
    try:
        return dns.edns.ECSOption(addr, int(length) if length else None)
    except (ValueError, TypeError) as e:
        raise UsageError(f"+subnet: {value!r}: {e}") from None


def resolv_conf_defaults(o: Options) -> Options:
    """``o`` with dig's defaults from resolv.conf ($CORENET_RESOLV_CONF, else
    /etc/resolv.conf, read here once: ``o.resolv_conf``), as BIND's dig 9.18 takes them
    whatever the server: ``options timeout:N`` is +time=N and ``attempts:N`` +tries=N (N
    above 0, the last one winning); +time, +tries and +retry given on the command line
    come after and win. ``ndots:N`` and the search list are +search's (``search_names``).
    The environment's ``RES_OPTIONS`` and ``LOCALDOMAIN`` are not read, as dig reads
    neither. A file BIND's reader refuses (:func:`bind_resolv_conf`) is :class:`Fatal`, as
    dig stops before anything else; a missing one sets nothing."""
    from resolver.hostconf import config_text

    path = os.environ.get(RESOLV_CONF_ENV) or RESOLV_CONF
    try:
        o.resolv_conf = bind_resolv_conf(config_text(path))
    except ValueError as e:
        raise Fatal(f"parse of {path} failed: {e}") from None
    numbers = o.resolv_conf.numbers
    if numbers.get("timeout"):
        o.timeout = float(numbers["timeout"])
    if numbers.get("attempts"):
        o.tries = numbers["attempts"]
    return o


#: BIND's limits for a resolv.conf: the nameservers read (later lines are passed over), the
#: sortlist entries, and the largest value of ``ndots:``, ``timeout:`` and ``attempts:``
BIND_MAX_NAMESERVERS, BIND_MAX_SORTLIST, BIND_MAX_OPTION = 3, 10, 255
#: the search domains BIND's reader keeps of a ``search`` line
BIND_MAX_SEARCH = 8


class BindResolvConf(NamedTuple):
    """What dig takes from a resolv.conf (:func:`bind_resolv_conf`)."""

    #: the servers asked without @SERVER, in order: the first ``BIND_MAX_NAMESERVERS``
    #: ``nameserver`` lines, 0.0.0.0 as 127.0.0.1; none: ::1 and 127.0.0.1
    nameservers: list[str]
    #: the numeric options, ``ndots``, ``timeout`` and ``attempts``: the last of each
    numbers: dict[str, int]
    #: the search list: the last ``search`` line's first ``BIND_MAX_SEARCH`` names, or the
    #: last ``domain``'s name, whichever came last
    search: list[str]


def bind_resolv_conf(text: str) -> BindResolvConf:
    """The nameservers, numeric options and search list of resolv.conf text as BIND's
    reader takes them (the one dig 9.18 reads), or ValueError naming the first thing it
    refuses: a ``nameserver`` without a numeric address or with more than one (past the
    third, unread), a ``domain`` without exactly one name, a ``search``, ``sortlist`` or
    ``options`` with nothing after it, a sortlist entry that is not ADDRESS[/MASK] (at
    most ``BIND_MAX_SORTLIST``), a number option that is not all decimal digits (a sign
    allowed; empty is 0) or is above ``BIND_MAX_OPTION``. Its reading is by words
    (:class:`_BindWords`), with its quirks: a keyword that ends its line takes its words
    from the next one; a line of another keyword is passed over, and so is a keyword the
    end of the file follows at once."""
    numbers: dict[str, int] = {}
    servers: list[str] = []
    search: list[str] = []
    sortlist = 0
    words = _BindWords(text)
    while True:
        key, stop = words.next()
        if stop == _EOF:
            return BindResolvConf(servers or ["::1", "127.0.0.1"], numbers, search)
        if not key:
            continue
        line = words.line - (stop == "\n")        # a newline that ended the key counted
        where = f"line {line}: {key}"
        if key == "nameserver":
            if len(servers) == BIND_MAX_NAMESERVERS:
                continue
            address, stop = words.next()
            if not address:
                raise ValueError(f"{where} names nothing")
            if stop in " \t" and words.rest_of_line():
                raise ValueError(f"{where} takes one address")
            if not _numeric_host(address):
                raise ValueError(f"{where}: {address!r} is not an address")
            address = address.split("%", 1)[0]
            servers.append("127.0.0.1" if address == "0.0.0.0" else address)
        elif key == "domain":
            name, stop = words.next()
            if not name:
                raise ValueError(f"{where} names nothing")
            if stop in " \t" and words.rest_of_line():
                raise ValueError(f"{where} takes one name")
            search = [name]
        elif key in ("search", "sortlist", "options"):
            values = words.line_of_words()
            if not values:
                raise ValueError(f"{where} names nothing")
            if key == "search":
                search = values[:BIND_MAX_SEARCH]
            for value in values:
                if key == "sortlist":
                    sortlist += 1
                    if sortlist > BIND_MAX_SORTLIST:
                        raise ValueError(f"{where}: more than {BIND_MAX_SORTLIST} entries")
                    if not all(_address(part) for part in value.split("/", 1)):
                        raise ValueError(f"{where}: {value!r} is not ADDRESS[/MASK]")
                elif key == "options":
                    _bind_option(value, where, numbers)
        elif stop != "\n":
            words.skip_line()


def _bind_option(opt: str, where: str, numbers: dict[str, int]) -> None:
    """One word of an ``options`` line into ``numbers`` (see :func:`bind_resolv_conf`)."""
    name = next((n for n in ("ndots", "timeout", "attempts") if opt.startswith(n + ":")), None)
    if name is None:
        return
    value = opt[len(name) + 1:]
    if value and not re.fullmatch(r"[+-]?[0-9]+", value):
        raise ValueError(f"{where} {opt}: not a number")
    n = int(value) if value else 0
    if not 0 <= n <= BIND_MAX_OPTION:
        raise ValueError(f"{where} {opt}: out of range 0..{BIND_MAX_OPTION}")
    numbers[name] = n


_EOF = ""


class _BindWords:
    """resolv.conf text as BIND's reader takes it, a word at a time: blanks before a word
    skipped (a newline among them ends the line's words), ``#`` or ``;`` where a word
    would start a comment to the end of the line. The character that ended a word is
    consumed with it, so a keyword ending its line leaves the reader on the next one."""

    def __init__(self, text: str) -> None:
        self.text, self.at, self.line = text, 0, 1

    def _char(self) -> str:
        if self.at >= len(self.text):
            return _EOF
        c = self.text[self.at]
        self.at += 1
        if c == "\n":
            self.line += 1
        return c

    def skip_line(self) -> str:
        c = self._char()
        while c not in ("\n", _EOF):
            c = self._char()
        return c

    def _blanks(self) -> str:
        c = self._char()
        while c not in ("\n", _EOF) and c.isspace():
            c = self._char()
        return self.skip_line() if c in ("#", ";") else c

    def next(self) -> tuple[str, str]:
        """``(word, the character that ended it)``: an empty word at a line's end."""
        c = self._blanks()
        chars = []
        while c != _EOF and not c.isspace():
            chars.append(c)
            c = self._char()
        return "".join(chars), c

    def rest_of_line(self) -> bool:
        """After a word that a blank ended: whether anything but blanks and a comment
        follows it on its line."""
        return self._blanks() not in ("\n", _EOF)

    def line_of_words(self) -> list[str]:
        """The words up to the end of the line (the next line's, when the reader is at the
        start of one: a keyword that ended its line)."""
        out = []
        while True:
            word, stop = self.next()
            if not word:
                return out
            out.append(word)
            if stop in ("\n", _EOF):
                return out


def _set_type(o: Options, rdtype: str) -> None:
    """``o``'s type, from -t or a word; a second one wins, with dig's warning."""
    if o.typed:
        print(";; Warning, extra type option", file=sys.stderr)
    ixfr = _IXFR.fullmatch(rdtype)
    if ixfr:                              # dig's ixfr=SERIAL: an IXFR from that serial
        rdtype, o.ixfr_serial = "IXFR", int(ixfr.group(1))
    o.rdtype, o.typed = rdtype, True


#: dig's type word for an IXFR from a serial
_IXFR = re.compile(r"(?i)ixfr=(\d+)")


def _set_class(o: Options, rdclass: str) -> None:
    """``o``'s class, from -c or a word; a second one wins, with dig's warning."""
    if o.classed:
        print(";; Warning, extra class option", file=sys.stderr)
    o.rdclass, o.classed = rdclass, True


def _numeric_host(text: str) -> bool:
    """A numeric address as getaddrinfo takes one, as BIND's reader takes a nameserver's
    (``inet_aton``'s IPv4 forms; an IPv6 scope by number, or by name for a link-local
    address)."""
    try:
        socket.getaddrinfo(text, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):
        return False
    return True


def _address(text: str) -> bool:
    """An IPv4 address as inet_aton reads one, or an IPv6 address (as BIND's reader takes
    a sortlist's)."""
    try:
        socket.inet_aton(text)
        return True
    except OSError:
        pass
    try:
        socket.inet_pton(socket.AF_INET6, text)
        return True
    except OSError:
        return False


def parse(argv: list[str], base: Options | None = None,
          first_greeting: bool = True) -> tuple[Options, list[Options]]:
    """(global options, look-ups) in dig's grammar: options before the first name are
    global; each NAME (or ``-x``, ``-q``) starts a look-up that takes the type, class and
    options after it.  No name and no ``-f``: one look-up of the root's NS, as dig.
    ``base``: a batch line's, the command line's global options (its look-up greets with
    the line's words; ``first_greeting``: no command lines were made before it)."""
    glob = replace(base, show=dict(base.show)) if base else resolv_conf_defaults(Options())
    lookups: list[Options] = []
    cur = glob

    def start(name: str, reverse: bool = False, named: bool = True) -> Options:
        """A new look-up: the global options, then what follows its name."""
        nonlocal cur
        cur = replace(glob, show=dict(glob.show), name=name, reverse=reverse, typed=False,
                      classed=False)
        lookups.append(cur)
        if named:
            greet(cur)
        return cur

    it = iter(argv)
    # dig's open_type_class: a bare word that names a type or a class is the look-up's
    # type or class, until a -t or -c (after which such a word is a name)
    open_type_class = True
    # dig's printcmd, one setting for the whole line: +cmd, +all and their +no forms, off
    # with +short, +yaml and +dns64prefix (a batch line: as the lines before it left it)
    printcmd = glob.show["cmd"]
    # dig's short_form, likewise one setting for the whole line: the last +short or
    # +noshort given (+nssearch turns it on)
    short_form = glob.short
    line_port: int | None = None            # the line's -p, and its -4 or -6
    line_family: int | None = None
    key_given, key_file = glob.tsig_given, glob.tsig_file   # -y and -k: the whole command's
    greeted = False

    def greet(o: Options) -> None:
        """dig's greeting, made (or not) as the first name is read."""
        nonlocal greeted
        if not greeted:
            greeted = True
            o.greeting, o.counted = printcmd, glob.server is not None
            o.greeted_short = short_form
            if base is not None:
                o.greeting_words, o.greeting_first = list(argv), first_greeting

    def value(opt: str) -> str:
        try:
            return next(it)
        except StopIteration:
            raise UsageError(f"option {opt} needs an argument") from None

    for a in it:
        if a.startswith("@") and len(a) > 1:
            server, _, at_port = a[1:].partition("#")
            cur.server = server
            cur.servers = (*cur.servers, server)
            if at_port:
                try:
                    cur.port = _int(at_port, "port")
                except UsageError:
                    raise UsageError(f"bad port in {a!r}") from None
        elif a.startswith("+") and len(a) > 1 and plus_parts(a)[:2] == ("dns64prefix", True):
            printcmd = False
            # as dig: a look-up of its own (ipv4only.arpa AAAA, the global options), added
            # where it stands among the names; what follows it applies to it
            start("ipv4only.arpa.", named=False)
            cur.rdtype, cur.rdclass, cur.typed, cur.classed = "AAAA", "IN", True, True
            cur.dns64prefix, cur.show = True, dict.fromkeys(DISPLAY, False)
        elif a.startswith("+") and len(a) > 1:
            _plus(cur, a)
            key, on = plus_parts(a)[:2]
            if key in ("cmd", "all"):
                printcmd = on
            elif key in ("short", "yaml") and on:
                printcmd = False
            if key == "short":
                short_form = on
            elif key == "nssearch" and on:
                short_form = True
        elif a.startswith("--"):
            key, eq, val = a[2:].partition("=")
            bare = key[3:] if key.startswith("no-") else key
            if key == "in-process":
                glob.in_process = cur.in_process = True
            elif bare in _LONG_BOOL:
                for o in {id(glob): glob, id(cur): cur}.values():
                    setattr(o, _LONG_BOOL[bare], not key.startswith("no-"))
            elif key in ("root-hints", "upstream-port", "timeout", "port"):
                val = val if eq else value(a)
                for o in {id(glob): glob, id(cur): cur}.values():
                    if key == "root-hints":
                        o.root_hints = val
                    elif key == "upstream-port":
                        o.upstream_port = _int(val, "--upstream-port", 1)
                    elif key == "port":
                        o.port = _int(val, "--port")
                    else:
                        try:
                            o.timeout = float(val)
                        except ValueError:
                            raise UsageError(f"--timeout: {val!r} is not a number") from None
            else:
                raise UsageError(f"Invalid option: {a}")
        elif a.startswith("-") and len(a) > 1:
            opt, rest = a[:2], a[2:]
            if opt in ("-4", "-6"):
                family = socket.AF_INET if opt == "-4" else socket.AF_INET6
                if line_family not in (None, family):
                    raise UsageError("only one of -4 and -6 allowed")
                line_family = cur.family = family
            elif opt in ("-r", "-m", "-i") and not rest:
                pass        # -r: ~/.digrc is not read (see digrc); -m, -i: nothing here
            elif opt == "-u" and not rest:
                glob.usec = cur.usec = True
            elif opt in ("-t", "-c", "-q", "-x", "-p", "-f", "-b", "-y", "-k"):
                val = rest or value(opt)
                # as dig: a type or class it does not know is said and passed over
                if opt == "-t":
                    if _is_type(val):
                        _set_type(cur, val)
                    else:
                        print(f";; Warning, ignoring invalid type {val}", file=sys.stderr)
                    open_type_class = False
                elif opt == "-c":
                    if _is_class(val):
                        _set_class(cur, val)
                    else:
                        print(f";; Warning, ignoring invalid class {val}", file=sys.stderr)
                    open_type_class = False
                elif opt == "-q":
                    start(val)
                elif opt == "-x":
                    start(reverse_name(val), reverse=True).rdtype = "PTR"
                elif opt == "-p":
                    line_port = cur.port = _int(val, "-p")
                elif opt == "-y":
                    key_given = parse_y(val)      # as dig: its algorithm read now
                elif opt == "-k":
                    key_file = val
                elif opt == "-b":
                    # as dig: the source's family is the only one asked, as -4 or -6 say
                    glob.source = cur.source = source_address(val)
                    line_family = cur.family = (socket.AF_INET6 if ":" in val.split("#")[0]
                                                else socket.AF_INET)
                else:
                    glob.batch = cur.batch = val
            else:
                raise UsageError(f"Invalid option: {a}")
        else:
            if open_type_class and cur is not glob:
                if _is_type(a):
                    _set_type(cur, a)
                    continue
                if _is_class(a):
                    _set_class(cur, a)
                    continue
            elif open_type_class and lookups == [] and (_is_type(a) or _is_class(a)) \
                    and _looks_like_keyword(a):
                # dig reads ``dig MX example.com`` as type then name
                if _is_type(a):
                    glob.rdtype = a
                else:
                    glob.rdclass = a
                continue
            start(a)
    if not lookups and glob.batch is None:
        # as dig: no name asks the root's NS, whatever type was given (the class is kept)
        lookups.append(replace(glob, show=dict(glob.show), rdtype=None))
        greet(lookups[0])
    for o in (glob, *lookups):            # dig's printcmd is the line's, as it ends
        o.show["cmd"] = printcmd
    # +short is one of dig's global settings, wherever it is given (the last +short or
    # +noshort of the line); +nssearch turns it on (for every look-up of the command
    # line, as in dig)
    for o in (glob, *lookups):
        o.short = short_form
    # so are the port and the address family: the line's last -p, -4 or -6 is every look-up's
    for o in (glob, *lookups):
        o.tsig_given, o.tsig_file = key_given, key_file
        if line_port is not None:
            o.port = line_port
        if line_family is not None:
            o.family = line_family
    # as dig: +bufsize, +dnssec or +subnet ask with EDNS (version 0), +noedns or not
    for o in (glob, *lookups):
        if not o.edns and (o.bufsize_given or o.dnssec or o.subnet is not None):
            o.edns, o.edns_version = True, 0
    return glob, lookups


def source_address(text: str) -> tuple[str, int]:
    """-b's ADDR[#PORT]: a numeric address (and a port, else 0) the query leaves from."""
    addr, _, port = text.partition("#")
    if not _numeric_host(addr):
        raise Fatal(f"invalid address {addr}")
    return addr, _int(port, "-b") if port else 0


def digrc(argv: list[str], home: str | None) -> list[str]:
    """The words of dig's ``$HOME/.digrc``, every line's, which dig reads as options given
    before the command line's; none with ``-r`` among ``argv``'s words or without a
    file."""
    if "-r" in argv or not home:
        return []
    try:
        with open(os.path.join(home, ".digrc"), encoding="utf-8", errors="replace") as f:
            return [w for line in f for w in re.split(r"[ \t\r\n]+", line) if w]
    except OSError:
        return []


def reverse_name(text: str) -> str:
    """-x's name, as dig makes it: an IPv6 address's nibbles under ip6.arpa (an IPv4-mapped
    one's too), else the dotted words in reverse under in-addr.arpa, however many
    (``10.1`` is ``1.10.in-addr.arpa.``, a reverse zone's own name)."""
    try:
        packed = socket.inet_pton(socket.AF_INET6, text)
    except OSError:
        return ".".join(reversed(text.split("."))) + ".in-addr.arpa."
    return ".".join(reversed(packed.hex())) + ".ip6.arpa."


def _is_type(a: str) -> bool:
    import dns.rdatatype
    return bool(_IXFR.fullmatch(a)) or _reads(dns.rdatatype.from_text, a)


def _is_class(a: str) -> bool:
    import dns.rdataclass
    return _reads(dns.rdataclass.from_text, a)


def _reads(from_text, a: str) -> bool:
    try:
        from_text(a)
        return True
    except Exception:
        return False


def _looks_like_keyword(a: str) -> bool:
    return "." not in a


def name_error(e: Exception) -> str | None:
    """How BIND says why a name cannot be made (dig's "is not a legal name (...)"), for
    dnspython's error ``e`` making one; None for another error."""
    import dns.name
    return {dns.name.EmptyLabel: "empty label", dns.name.LabelTooLong: "label too long",
            dns.name.NameTooLong: "ran out of space",
            dns.name.BadEscape: "bad escape"}.get(type(e))


# ---- -y: a TSIG key given on the command line (made and used by dig_tsig) ----
#: the algorithms dig takes, in the order it tries their names as prefixes, with the most
#: bits a truncated MAC may keep
_ALGORITHMS = (("hmac-md5", "hmac-md5.sig-alg.reg.int.", 128),
               ("hmac-sha1", "hmac-sha1.", 160), ("hmac-sha224", "hmac-sha224.", 224),
               ("hmac-sha256", "hmac-sha256.", 256), ("hmac-sha384", "hmac-sha384.", 384),
               ("hmac-sha512", "hmac-sha512.", 512))
#: dig's algorithm for ``-y NAME:SECRET``
DEFAULT_ALGORITHM = "hmac-md5.sig-alg.reg.int."


class KeySpec(NamedTuple):
    """A key as given: its name, algorithm (a name; None for one dig does not take) and
    secret (base64, as given)."""
    name: str
    algorithm: str | None
    secret: str


def algorithm(text: str) -> str | None:
    """dig's reading of an algorithm (``hmac-sha256``): the algorithm's name, as a prefix
    of ``text`` in any case; an unknown one is warned of (None). A truncated MAC
    (``hmac-sha256-128``) is not taken."""
    for prefix, name, bits in _ALGORITHMS:
        if text[:len(prefix)].lower() == prefix:
            rest = text[len(prefix):]
            if rest.startswith("-"):
                n = dig_uint(rest[1:], f"digest-bits [0..{bits}]", bits)
                if n is None:
                    raise Fatal("couldn't parse digest bits")
                if n:
                    raise UsageError(f"TSIG with a truncated MAC ({text}) is not supported")
            return name
    print(f";; Warning, ignoring invalid TSIG algorithm {text}", file=sys.stderr)
    return None


def parse_y(value: str) -> KeySpec:
    """``-y``'s value as dig reads it: ``[hmac:]NAME:SECRET``, the first two fields
    separated by colons (empty ones passed over), the secret all that follows (without
    ``hmac``, HMAC-MD5); a usage error without a name and a secret."""
    first, rest = _next_field(value, ":")
    second, rest = _next_field(rest, ":")
    third, _ = _next_field(rest, "")
    if first is None or second is None:
        raise UsageError(f"-y: {value!r} is not [hmac:]name:secret")
    if third is not None:
        return KeySpec(second, algorithm(first), third)
    return KeySpec(first, DEFAULT_ALGORITHM, second)


def _next_field(text: str | None, sep: str) -> tuple[str | None, str | None]:
    """BIND's next_token: the next non-empty field of ``text`` up to ``sep`` (all of it
    without ``sep``), and what is left after it (None: nothing)."""
    while text is not None:
        if sep:
            field, found, after = text.partition(sep)
            text = after if found else None
        else:
            field, text = text, None
        if field:
            return field, text
    return None, None
