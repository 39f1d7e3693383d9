"""``corenet-resolver query``: dig's command line, output and exit codes.

    corenet-resolver query [@SERVER] [-p PORT] [-4|-6] [-t TYPE] [-c CLASS] [-q NAME] [-x ADDR]
                           [-f FILE] [NAME] [TYPE] [CLASS] [+OPTION ...]

Without ``@SERVER`` the nameservers of /etc/resolv.conf are asked (``$CORENET_RESOLV_CONF``
names another file); ``--in-process`` resolves in this process from the root instead.
Exit codes: 0 a DNS reply (any rcode), 1 usage error, 8 batch file unreadable, 9 no reply,
10 internal error.
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import os
import socket
import sys
import time
from dataclasses import dataclass, field, replace

EXIT_OK, EXIT_USAGE, EXIT_BATCH, EXIT_NO_ANSWER, EXIT_INTERNAL = 0, 1, 8, 9, 10

#: The file read for the default servers, and the variable that names another one.
RESOLV_CONF, RESOLV_CONF_ENV = "/etc/resolv.conf", "CORENET_RESOLV_CONF"

PROG = "corenet-resolver query"

#: The display toggles of ``+all``/``+noall``.
DISPLAY = ("cmd", "comments", "question", "answer", "authority", "additional", "stats")

#: RFC 8914's names, as dig prints them.
EDE_NAMES = {
    0: "Other", 1: "Unsupported DNSKEY Algorithm", 2: "Unsupported DS Digest Type",
    3: "Stale Answer", 4: "Forged Answer", 5: "DNSSEC Indeterminate", 6: "DNSSEC Bogus",
    7: "Signature Expired", 8: "Signature Not Yet Valid", 9: "DNSKEY Missing",
    10: "RRSIGs Missing", 11: "No Zone Key Bit Set", 12: "NSEC Missing", 13: "Cached Error",
    14: "Not Ready", 15: "Blocked", 16: "Censored", 17: "Filtered", 18: "Prohibited",
    19: "Stale NXDOMAIN Answer", 20: "Not Authoritative", 21: "Not Supported",
    22: "No Reachable Authority", 23: "Network Error", 24: "Invalid Data",
}


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
    transport: str = "udp"               # udp, tcp, tls, https
    https_path: str = "/dns-query"
    https_get: bool = False
    tls_ca: str | None = None            # "" for the system's store
    tls_hostname: str | None = None
    rec: bool = True
    cd: bool = False
    ad: bool = True
    dnssec: bool = False
    edns: bool = True
    bufsize: int = 1232
    nsid: bool = False
    subnet: str | None = None            # +subnet=ADDR[/LEN]: EDNS Client Subnet
    short: bool = False
    multi: bool = False                  # +multi: records on several lines, as BIND's
    cookie: bool = False                 # +cookie: an EDNS COOKIE option with a client cookie
    cookie_value: bytes | None = None    # +cookie=HEX: that cookie rather than a random one
    trace: bool = False                  # +trace: iterate from the root hints, each step shown
    ignore_tc: bool = False
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
    header_only: bool = False            # +header-only: no question section
    expire: bool = False                 # +expire, +keepalive: those EDNS options
    keepalive: bool = False
    coflag: bool = False                 # +coflag: EDNS's CO bit (compact denial)
    padding: int = 0                     # +padding=N: the query padded to N bytes' blocks
    qr: bool = False                     # +qr: the query printed before it is sent
    # how records are printed
    ttlid: bool = True                   # +[no]ttlid: the TTL field
    show_class: bool = True              # +[no]class: the class field
    ttlunits: bool = False               # +ttlunits: TTLs as 1w2d3h4m5s
    crypto: bool = True                  # +[no]crypto: keys, signatures and digests
    split: int = 56                      # +split=W: base64/hex groups (0: none)
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
    # in-process resolution
    in_process: bool = False
    root_hints: str | None = None
    upstream_port: int = 53
    ipv6: bool = True
    qname_minimisation: bool = True
    do_ip4: bool = True
    do_not_query_localhost: bool = True


# ---- the command line ------------------------------------------------------------------------
def add_parser(sub, authority_flags) -> argparse.ArgumentParser:
    """The ``query`` subcommand as ``corenet-resolver --help`` lists it; the arguments
    themselves are read by :func:`parse` (dig's grammar: ``+options`` and ``@server``
    anywhere, several look-ups on one line)."""
    q = sub.add_parser(
        "query", help="ask a DNS server (as dig), or resolve in-process with --in-process",
        usage=f"{PROG} [@SERVER] [-p PORT] [-4|-6] [-t TYPE] [-c CLASS] [-x ADDR] [-q NAME] "
              "[-f FILE] [NAME] [TYPE] [CLASS] [+OPTION ...]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="dig's +options (each with its +no form):\n"
                    "  +rec +cd +adflag +dnssec +edns +bufsize=N +nsid +subnet=ADDR[/LEN]\n"
                    "  +tcp (+vc) +ignore +tls +https[=/PATH] +https-get[=/PATH]\n"
                    "  +tls-ca[=FILE] +tls-hostname=NAME +time=N +tries=N +retry=N\n"
                    "  +short +all +cmd +comments +question +answer +authority\n"
                    "  +additional +stats +multi +cookie[=HEX] +trace\n"
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
                "showsearch", "domain", "ndots", "idnin", "fail")
PLUS_ALIASES = {"recurse": "rec", "cdflag": "cd", "ad": "adflag", "do": "dnssec",
                "timeout": "time", "multiline": "multi", "rdflag": "rec", "aaonly": "aaflag",
                "defname": "search"}


def _plus(o: Options, arg: str) -> None:
    body = arg[1:]
    key, eq, value = body.partition("=")
    key = key.lower()
    on = True
    if key.startswith("no") and key not in ("nsid",):
        on, key = False, key[2:]
    if key not in PLUS_OPTIONS and key not in PLUS_ALIASES:
        raise UsageError(f"Invalid option: {arg}")
    flags = {"rec": "rec", "recurse": "rec", "rdflag": "rec", "cd": "cd", "cdflag": "cd",
             "adflag": "ad", "ad": "ad", "dnssec": "dnssec", "do": "dnssec", "nsid": "nsid",
             "edns": "edns", "ignore": "ignore_tc", "aaflag": "aa", "aaonly": "aa",
             "raflag": "ra", "tcflag": "tc", "zflag": "z", "header-only": "header_only",
             "qr": "qr", "expire": "expire", "keepalive": "keepalive", "coflag": "coflag",
             "idnin": "idnin", "fail": "fail"}
    if key in flags:
        if key == "edns" and eq:
            _int(value, "+edns", 0, 0)
        setattr(o, flags[key], on)
    elif key in DISPLAY:
        o.show[key] = on
    elif key == "all":
        o.show = dict.fromkeys(DISPLAY, on)
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
        width = _int(value, "+split", 0, 1 << 20) if (on and eq) else (56 if on else 0)
        if width % 4:
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
    elif key in ("https", "https-post", "https-get"):
        o.transport = "https" if on else "udp"
        o.https_get = key == "https-get"
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
            _ecs(value)
        o.subnet = value if on else None
    elif key == "bufsize":
        o.bufsize = _int(value, "+bufsize") if (on and eq) else 1232
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


def _ecs(value: str):
    """dig's +subnet value as an ECS option (``0`` is 0.0.0.0/0)."""
    import dns.edns
    addr, _, length = value.partition("/")
    if addr == "0":
        addr = "0.0.0.0"
    try:
        return dns.edns.ECSOption(addr, int(length) if length else None)
    except (ValueError, TypeError) as e:
        raise UsageError(f"+subnet: {value!r}: {e}") from None


def parse(argv: list[str], base: Options | None = None) -> tuple[Options, list[Options]]:
    """(global options, look-ups) in dig's grammar: options before the first name are
    global; each NAME (or ``-x``, ``-q``) starts a look-up that takes the type, class and
    options after it.  No name and no ``-f``: one look-up of the root's NS, as dig."""
    import dns.rdataclass
    import dns.rdatatype
    import dns.reversename

    glob = replace(base, show=dict(base.show)) if base else Options()
    lookups: list[Options] = []
    cur = glob

    def start(name: str, reverse: bool = False) -> Options:
        """A new look-up: the global options, then what follows its name."""
        nonlocal cur
        cur = replace(glob, show=dict(glob.show), name=name, reverse=reverse, typed=reverse,
                      classed=False)
        lookups.append(cur)
        return cur

    it = iter(argv)

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
        elif a.startswith("+") and len(a) > 1:
            _plus(cur, a)
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
            if opt == "-4":
                cur.family = socket.AF_INET
            elif opt == "-6":
                cur.family = socket.AF_INET6
            elif opt in ("-t", "-c", "-q", "-x", "-p", "-f"):
                val = rest or value(opt)
                if opt == "-t":
                    try:
                        dns.rdatatype.from_text(val)
                    except Exception:
                        raise UsageError(f"invalid type: {val}") from None
                    cur.rdtype, cur.typed = val, True
                elif opt == "-c":
                    try:
                        dns.rdataclass.from_text(val)
                    except Exception:
                        raise UsageError(f"invalid class: {val}") from None
                    cur.rdclass, cur.classed = val, True
                elif opt == "-q":
                    start(val)
                elif opt == "-x":
                    try:
                        rev = dns.reversename.from_address(val).to_text()
                    except Exception:
                        raise UsageError(f"-x needs an IPv4 or IPv6 address, got {val!r}") \
                            from None
                    start(rev, reverse=True).rdtype = "PTR"
                elif opt == "-p":
                    cur.port = _int(val, "-p")
                else:
                    glob.batch = cur.batch = val
            else:
                raise UsageError(f"Invalid option: {a}")
        else:
            if cur is not glob:
                if not cur.typed and _is_type(a):
                    cur.rdtype, cur.typed = a, True
                    continue
                if not cur.classed and _is_class(a):
                    cur.rdclass, cur.classed = a, True
                    continue
            elif cur is glob and lookups == [] and (_is_type(a) or _is_class(a)) \
                    and _looks_like_keyword(a):
                # dig reads ``dig MX example.com`` as type then name
                if _is_type(a):
                    glob.rdtype = a
                else:
                    glob.rdclass = a
                continue
            start(a)
    if not lookups and glob.batch is None:
        lookups.append(replace(glob, show=dict(glob.show)))
    if glob.short or any(o.short for o in lookups):
        # +short is one of dig's global settings, wherever it is given
        for o in (glob, *lookups):
            o.short = True
    return glob, lookups


def _is_type(a: str) -> bool:
    import dns.rdatatype
    try:
        dns.rdatatype.from_text(a)
        return True
    except Exception:
        return False


def _is_class(a: str) -> bool:
    import dns.rdataclass
    try:
        dns.rdataclass.from_text(a)
        return True
    except Exception:
        return False


def _looks_like_keyword(a: str) -> bool:
    return "." not in a


# ---- the servers -----------------------------------------------------------------------------
def system_nameservers() -> list[str]:
    """The ``nameserver`` lines of resolv.conf ($CORENET_RESOLV_CONF, else /etc/resolv.conf)."""
    path = os.environ.get(RESOLV_CONF_ENV) or RESOLV_CONF
    servers = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            words = line.split()
            if len(words) >= 2 and words[0] == "nameserver":
                servers.append(words[1].split("%")[0])
    return servers


def server_addresses(o: Options) -> list[tuple[str, str]]:
    """(address, name as given) of the servers to try, in order, of the family -4/-6 allow."""
    if o.server is not None:
        out: list[tuple[str, str]] = []
        for server in o.servers or (o.server,):
            try:
                infos = socket.getaddrinfo(server, None, o.family, socket.SOCK_DGRAM)
            except OSError as e:
                raise LookupError(f"couldn't get address for '{server}': not found") from e
            out += dict.fromkeys((i[4][0], server) for i in infos)
        return out
    try:
        names = system_nameservers()
    except OSError as e:
        raise LookupError(f"can't read the system's resolver configuration: {e}") from None
    out = []
    for n in names:
        fam = socket.AF_INET6 if ":" in n else socket.AF_INET
        if o.family and fam != o.family:
            continue
        out.append((n, n))
    if not out and names:
        raise LookupError("No acceptable nameservers")
    if not out:
        out = [("127.0.0.1", "127.0.0.1")] if o.family != socket.AF_INET6 else [("::1", "::1")]
    return out


# ---- one look-up -----------------------------------------------------------------------------
def make_query(o: Options):
    import dns.edns
    import dns.flags
    import dns.message
    import dns.rdataclass
    import dns.rdatatype

    name = o.name if o.name is not None else "."
    if not name.isascii() and not _tty_default(o.idnin):
        # as dig without +idnin (off unless on a terminal): the name's UTF-8 bytes as they
        # are, not its IDNA form
        name = dns.name.Name([label.encode() for label in name.rstrip(".").split(".")]
                             + [b""])
    rdtype = o.rdtype or ("NS" if o.name is None else "A")
    q = dns.message.make_query(name, dns.rdatatype.from_text(rdtype),
                               dns.rdataclass.from_text(o.rdclass or "IN"),
                               use_edns=0 if o.edns else False, payload=o.bufsize,
                               want_dnssec=o.dnssec and o.edns)
    q.flags &= ~dns.flags.RD
    if o.rec:
        q.flags |= dns.flags.RD
    if o.cd:
        q.flags |= dns.flags.CD
    if o.ad:
        q.flags |= dns.flags.AD
    for on, bit in ((o.aa, dns.flags.AA), (o.ra, dns.flags.RA), (o.tc, dns.flags.TC),
                    (o.z, _Z_FLAG)):
        if on:
            q.flags |= bit
    q.set_opcode(o.opcode)
    if o.qid is not None:
        q.id = o.qid
    if o.header_only:
        q.question = []
    options = []
    if o.nsid:
        options.append(dns.edns.GenericOption(dns.edns.OptionType.NSID, b""))
    if o.subnet is not None:
        options.append(_ecs(o.subnet))
    if o.cookie:
        options.append(dns.edns.GenericOption(dns.edns.OptionType.COOKIE,
                                              o.cookie_value or os.urandom(8)))
    if o.expire:
        options.append(dns.edns.GenericOption(dns.edns.OptionType.EXPIRE, b""))
    if o.keepalive:
        options.append(dns.edns.GenericOption(dns.edns.OptionType.KEEPALIVE, b""))
    options += [dns.edns.GenericOption(code, data) for code, data in o.ednsopts]
    flags = o.ednsflags | (_CO_FLAG if o.coflag else 0)
    if (options or flags or o.padding) and o.edns:
        q.use_edns(0, q.ednsflags | flags, o.bufsize, options=options, pad=o.padding)
    return q


def _ssl_context(o: Options, alpn: list[str] | None):
    import ssl
    if o.tls_ca is None:                  # as dig: no +tls-ca, no verification
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=o.tls_ca or None)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def ask(q, o: Options, addr: str, name: str, port: int):
    """The reply of one server, over the transport asked; raises on no reply."""
    import dns.flags
    import dns.query

    if o.transport == "udp":
        # connected, so that a port nobody listens on is "connection refused" (ICMP), as
        # dig says, rather than a timeout
        with socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET,
                           socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect((addr, port))
            r = dns.query.udp(q, addr, timeout=o.timeout, port=port,
                              raise_on_truncation=False, ignore_unexpected=True, sock=sock)
        if r.flags & dns.flags.TC and not o.ignore_tc:
            print(";; Truncated, retrying in TCP mode.", flush=True)
            return dns.query.tcp(q, addr, timeout=o.timeout, port=port), "TCP"
        return r, "UDP"
    if o.transport == "tcp":
        return dns.query.tcp(q, addr, timeout=o.timeout, port=port), "TCP"
    hostname = o.tls_hostname or (name if o.server is not None else addr)
    if o.transport == "tls":
        return dns.query.tls(q, addr, timeout=o.timeout, port=port,
                             ssl_context=_ssl_context(o, ["dot"]),
                             server_hostname=hostname if o.tls_ca is not None else None), "TLS"
    return doh(q, o, addr, hostname, port), "HTTPS-GET" if o.https_get else "HTTPS"


class _Pinned:
    """A resolver for corenet.https's client that gives the server's address for the
    certificate's name (the URL names the host the certificate is checked against)."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def resolve(self, host: str, rdtype: str):
        import types
        if (rdtype == "AAAA") != (":" in self.address):
            raise LookupError(f"no {rdtype}")
        rrset = [types.SimpleNamespace(address=self.address)]
        return types.SimpleNamespace(rrset=_TTL(rrset))


class _TTL(list):
    ttl = 0


def doh(q, o: Options, addr: str, hostname: str, port: int):
    """RFC 8484 over corenet.https's client: POST, or GET with ``?dns=``."""
    import base64

    import dns.message

    from corenet.https import Client

    host = f"[{hostname}]" if ":" in hostname else hostname
    url = f"https://{host}:{port}{o.https_path}"
    verify = False if o.tls_ca is None else (o.tls_ca or True)
    wire = q.to_wire()
    headers = {"accept": "application/dns-message"}
    with Client(verify=verify, resolver=_Pinned(addr), trust_env=False,
                    timeout=o.timeout) as client:
        if o.https_get:
            b64 = base64.urlsafe_b64encode(wire).rstrip(b"=").decode()
            r = client.get(url, params={"dns": b64}, headers=headers)
        else:
            r = client.post(url, content=wire,
                            headers=dict(headers, **{"content-type": "application/dns-message"}))
        if r.status_code != 200:
            raise OSError(f"HTTP status {r.status_code}")
        body = r.content
    msg = dns.message.from_wire(body)
    if msg.id != q.id or not msg.flags & dns.flags.QR:
        raise OSError("the reply does not match the query")
    msg.wire = body
    return msg


def _network_errors() -> tuple[type[BaseException], ...]:
    """What a server (or the way to it) can make a try fail with; anything else is a bug,
    reported as dig's internal error."""
    import dns.exception

    from corenet.https.errors import RequestError
    return (OSError, EOFError, TimeoutError, dns.exception.DNSException, RequestError)


#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, which Python reports in words of its own
_HOSTNAME_MISMATCH = 62


def _certificate_refused(e: BaseException) -> str | None:
    """OpenSSL's reason when ``e`` (or what caused it) is a server certificate that failed
    verification, as dig words it; else None."""
    import ssl

    seen = 0
    while e is not None and seen < 8:
        if isinstance(e, ssl.SSLCertVerificationError):
            if e.verify_code == _HOSTNAME_MISMATCH:
                return "hostname mismatch"
            return e.verify_message or "certificate verify failed"
        e, seen = e.__cause__ or e.__context__, seen + 1
    return None


def _error_text(e: BaseException) -> str:
    import dns.exception

    from corenet.https.errors import TimeoutException
    if isinstance(e, (dns.exception.Timeout, TimeoutError, asyncio.TimeoutError,
                      TimeoutException)):
        return "timed out"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ConnectionResetError):
        return "connection reset"
    text = str(e) or type(e).__name__
    return text.splitlines()[0]


# ---- output ----------------------------------------------------------------------------------
def _columns(*fields: str, stops: tuple[int, ...] = (24, 32, 40, 48)) -> str:
    """Fields laid out as BIND prints records: tabs to the columns 24, 32, 40 and 48 (8 wide),
    one space when a field already reaches past its column; columns are counted in UTF-8
    bytes, as BIND counts them."""
    out, col = fields[0], len(fields[0].encode())
    for text, to in zip(fields[1:], stops):
        to = max(to, col + 1)
        tabs = to // 8 - col // 8
        out += "\t" * tabs + " " * (to % 8 if tabs else to - col)
        out += text
        col = to + len(text.encode())
    return out


def _rr_lines(section, question: bool = False, multi: bool = False,
              o: Options | None = None) -> list[str]:
    """A section's records as dig prints them (``o``: +[no]ttlid, +[no]class, +ttlunits,
    +unknownformat and what ``rdata_text`` reads)."""
    import dns.rdataclass
    import dns.rdatatype
    o = o or Options(multi=multi)
    lines = []
    for rrset in section:
        cls = dns.rdataclass.to_text(rrset.rdclass)
        typ = dns.rdatatype.to_text(rrset.rdtype)
        if o.unknownformat:
            cls, typ = f"CLASS{int(rrset.rdclass)}", f"TYPE{int(rrset.rdtype)}"
        if question:
            # the ";" is outside BIND's column count
            owner = _name_text(rrset.name, o)
            lines.append(";" + (_multi_fields(owner, cls, typ) if multi
                                else _columns(owner, cls, typ, stops=(32, 40))))
            continue
        ttl = _ttl_units(rrset.ttl) if o.ttlunits else str(rrset.ttl)
        fields = [f for f, shown in ((ttl, o.ttlid), (cls, o.show_class)) if shown]
        for rd in rrset:
            if multi:
                lines.append(_multi_fields(_name_text(rrset.name, o), *fields, typ,
                                           _multiline(rd, o.rrcomments is not False)))
            else:
                data = rdata_text(rd, o)
                if o.rrcomments and typ in ("DNSKEY", "CDNSKEY"):
                    data += "  " + _key_comment(rd)
                lines.append(_columns(_name_text(rrset.name, o), *fields, typ, data))
    return lines


def _tty_default(setting: bool | None) -> bool:
    """+idnin/+idnout: as given, else on when the output is a terminal, as in dig."""
    return sys.stdout.isatty() if setting is None else setting


def _name_text(name, o: Options) -> str:
    """A name as dig prints it: in Unicode with +idnout (IDNA 2008), else as it is."""
    if _tty_default(o.idnout):
        import dns.name
        try:
            return name.to_unicode(idna_codec=dns.name.IDNA_2008_Practical)
        except dns.name.IDNAException:
            return str(name)
    return str(name)


def _ttl_units(seconds: int) -> str:
    """dig's +ttlunits: ``1w2d``, ``5m``, ``1m30s``."""
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0"


#: the fields of these types' text (from, to) that BIND prints in upper case (hex, base32)
_UPPER = {"DS": (3, None), "CDS": (3, None), "DLV": (3, None), "TLSA": (3, None),
          "SMIMEA": (3, None), "SSHFP": (2, None), "NSEC3": (3, 5), "NSEC3PARAM": (3, 4)}
#: types whose data +nocrypto leaves whole in BIND (dnspython would omit it)
_NOT_CRYPTO = frozenset({"TLSA", "SMIMEA"})


@functools.lru_cache(maxsize=8)
def _bind_style(split: int, crypto: bool, idnout: bool):
    import dns.name
    import dns.rdata
    size = split or 1 << 30
    return dns.rdata.RdataStyle(base64_chunk_size=size, hex_chunk_size=size,
                                truncate_crypto=not crypto,
                                idna_codec=dns.name.IDNA_2008_Practical if idnout else None)


def rdata_text(rd, o: Options | None = None) -> str:
    """A record's data on one line as BIND prints it: base64 and hex in groups of 56
    characters (``+split``), hex and base32 in upper case; ``o``'s +nocrypto, +expandaaaa
    and +unknownformat."""
    import ipaddress

    import dns.rdatatype

    o = o or Options()
    if o.unknownformat:
        wire = rd.to_wire()
        hexed = wire.hex().upper()
        size = o.split or len(hexed) or 1
        return " ".join([f"\\# {len(wire)}"] + [hexed[i:i + size]
                                                 for i in range(0, len(hexed), size)])
    typ = dns.rdatatype.to_text(rd.rdtype)
    if o.expandaaaa and typ == "AAAA":
        return ipaddress.IPv6Address(rd.address).exploded
    text = rd.to_text(style=_bind_style(o.split, o.crypto or typ in _NOT_CRYPTO,
                                        _tty_default(o.idnout)))
    upper = _UPPER.get(typ)
    if upper is not None and not text.endswith("]"):
        fields = text.split(" ")
        a, b = upper
        fields[a:b] = [f.upper() for f in fields[a:b]]
        text = " ".join(fields)
    return text


def _multi_fields(name: str, *fields: str) -> str:
    """A record's first line as BIND lays it out with +multi: the TTL at column 24, the
    other fields one column apart, the separator a tab where it reaches a tab stop."""
    out = _columns(name, fields[0], stops=(24,))
    col = max(24, len(name) + 1) + len(fields[0])
    for text in fields[1:]:
        out += ("\t" if col % 8 == 7 else " ") + text
        col += 1 + len(text.split("\n", 1)[0])
    return out


#: where BIND's +multi continues a record: column 32
_MORE = "\n\t\t\t\t"


def _duration(seconds: int) -> str:
    """BIND's reading of a time in seconds: ``2 weeks``, ``1 minute 30 seconds``."""
    parts = []
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60),
                       ("second", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
    return " ".join(parts) or "0 seconds"


def _chunks(text: str, width: int = 44) -> list[str]:
    return [text[i:i + width] for i in range(0, len(text), width)] or [""]


def _key_comment(rd) -> str:
    """dig's comment on a key: its role, algorithm and key id."""
    import dns.dnssec
    role = "KSK" if rd.flags & 0x0001 else "ZSK"
    alg = dns.dnssec.algorithm_to_text(rd.algorithm)
    return f"; {role}; alg = {alg} ; key id = {dns.dnssec.key_id(rd)}"


def _multiline(rd, comments: bool = True) -> str:
    """A record's data as dig's +multi prints it: SOA with its fields commented, keys,
    signatures and digests in parentheses over lines of 44 characters; other types on
    one line. Without ``comments`` (+norrcomments) the SOA's and keys' comments are left
    out."""
    import base64

    import dns.rdatatype
    t = rd.rdtype
    if t == dns.rdatatype.SOA:
        fields = [(rd.serial, "serial"), (rd.refresh, "refresh"), (rd.retry, "retry"),
                  (rd.expire, "expire"), (rd.minimum, "minimum")]
        if not comments:
            return (f"{rd.mname} {rd.rname} ("
                    + "".join(f"{_MORE}{value}" for value, _ in fields) + ")")
        body = "".join(f"{_MORE}{value:<10} ; {what}"
                       + (f" ({_duration(value)})" if what != "serial" else "")
                       for value, what in fields)
        return f"{rd.mname} {rd.rname} ({body}{_MORE})"
    if t in (dns.rdatatype.DNSKEY, dns.rdatatype.CDNSKEY):
        key = base64.b64encode(rd.key).decode()
        chunks = "".join(f"{_MORE}{c}" for c in _chunks(key))
        return (f"{rd.flags} {rd.protocol} {int(rd.algorithm)} (" + chunks
                + (f"{_MORE}) {_key_comment(rd)}" if comments else " )"))
    if t in (dns.rdatatype.DS, dns.rdatatype.CDS):
        chunks = _chunks(rd.digest.hex().upper())
        return (f"{rd.key_tag} {int(rd.algorithm)} {rd.digest_type} ("
                + "".join(f"{_MORE}{c}" for c in chunks) + " )")
    if t == dns.rdatatype.RRSIG:
        import dns.rdtypes.ANY.RRSIG as R
        sig = base64.b64encode(rd.signature).decode()
        return (f"{dns.rdatatype.to_text(rd.type_covered)} {int(rd.algorithm)} {rd.labels} "
                f"{rd.original_ttl} ({_MORE}{R.posixtime_to_sigtime(rd.expiration)} "
                f"{R.posixtime_to_sigtime(rd.inception)} {rd.key_tag} {rd.signer}"
                + "".join(f"{_MORE}{c}" for c in _chunks(sig)) + " )")
    return rd.to_text()


def _opt_lines(msg, sent_cookie: bytes | None = None) -> list[str]:
    import dns.edns
    import dns.flags
    flags = " do" if msg.ednsflags & dns.flags.DO else ""
    flags += " co" if msg.ednsflags & _CO_FLAG else ""
    mbz = msg.ednsflags & 0x7FFF & ~_CO_FLAG    # the flags no RFC defines
    flags += f"; MBZ: 0x{mbz:04x}," if mbz else ";"
    lines = [";; OPT PSEUDOSECTION:",
             f"; EDNS: version: {msg.edns}, flags:{flags} udp: {msg.payload}"]
    for opt in msg.options:
        if isinstance(opt, dns.edns.EDEOption):
            code = int(opt.code)
            label = EDE_NAMES.get(code, "")
            lines.append(f"; EDE: {code}{f' ({label})' if label else ''}"
                         f"{f': ({opt.text})' if opt.text else ''}")
        elif int(opt.otype) == int(dns.edns.OptionType.NSID):
            data = getattr(opt, "nsid", None) or getattr(opt, "data", b"") or b""
            lines.append(_bytes_line("NSID", data))
        elif isinstance(opt, dns.edns.ECSOption):
            lines.append(f"; CLIENT-SUBNET: {opt.address}/{opt.srclen}/{opt.scopelen}")
        elif int(opt.otype) == int(dns.edns.OptionType.COOKIE):
            wire = opt.to_wire()
            verdict = ""
            if sent_cookie is not None and wire[:8] == sent_cookie[:8]:
                # as dig: the server's cookie with ours is "good", ours alone "echoed"
                verdict = " (good)" if len(wire) > 8 else " (echoed)"
            lines.append(f"; COOKIE: {wire.hex()}{verdict}")
        elif int(opt.otype) in _OPTION_NAMES and not opt.to_wire():
            lines.append(f"; {_OPTION_NAMES[int(opt.otype)]}:")
        elif int(opt.otype) == int(dns.edns.OptionType.PADDING):
            n = len(opt.to_wire())
            lines.append(f"; PAD: ({n} bytes)" if n else "; PAD:")
        else:
            lines.append(_bytes_line(f"OPT={int(opt.otype)}", opt.to_wire()))
    if getattr(msg, "pad", 0) and not any(int(opt.otype) == int(dns.edns.OptionType.PADDING)
                                          for opt in msg.options):
        lines.append("; PAD:")            # a query padded when it is written (+padding)
    return lines


#: EDNS's CO flag (compact denial of existence, dig's +coflag)
_CO_FLAG = 0x4000
#: the names dig gives the options a query may carry empty (+expire, +keepalive)
_OPTION_NAMES = {9: "EXPIRE", 11: "TCP KEEPALIVE"}


def _bytes_line(label: str, data: bytes) -> str:
    """An option's bytes as dig shows them: hex pairs, then the printable ones quoted."""
    if not data:
        return f"; {label}:"
    shown = "".join(chr(b) if 32 <= b < 127 else "." for b in data)
    return f"; {label}: {' '.join(f'{b:02x}' for b in data)} (\"{shown}\")"


def _cookie_of(q) -> bytes | None:
    """The COOKIE option a query carries (its client cookie first), or None."""
    for opt in q.options:
        if int(opt.otype) == 10:
            return opt.to_wire()
    return None


#: the header flag no RFC defines (dig's +zflag), which dig shows as MBZ
_Z_FLAG = 0x0040


def render(msg, o: Options, *, elapsed: float | None, server: str, size: int | None,
           sent_cookie: bytes | None = None, sending: bool = False) -> str:
    """dig's text of one reply, with the sections ``o.show`` keeps; ``sent_cookie``: the
    client cookie the query carried (+cookie), which the reply's is checked against.
    ``sending``: the query itself, as +qr shows it before it is sent."""
    import dns.flags
    import dns.opcode
    import dns.rcode

    if o.short:
        said = (f" from server {server.split('#')[0]} in {elapsed * 1000:.0f} ms."
                if o.identify and elapsed is not None else "")
        return "".join(f"{rdata_text(rd, o)}{said}\n" for rrset in msg.answer for rd in rrset)
    s, c = o.show, o.show["comments"]
    out: list[str] = []
    if c:
        flags = " ".join(f for f in dns.flags.to_text(msg.flags & ~_Z_FLAG).lower().split())
        if msg.flags & _Z_FLAG:
            flags += f"; MBZ: 0x{(msg.flags & _Z_FLAG) >> 4:x}"
        opcode = dns.opcode.to_text(msg.opcode())
        n_add = sum(len(r) for r in msg.additional) + (1 if msg.edns >= 0 else 0)
        out += [";; Sending:" if sending else ";; Got answer:",
                f";; ->>HEADER<<- opcode: {'RESERVED' * opcode.isdigit()}{opcode}, "
                f"status: {dns.rcode.to_text(msg.rcode())}, id: {msg.id}",
                f";; flags: {flags}; QUERY: {len(msg.question)}, ANSWER: "
                f"{sum(len(r) for r in msg.answer)}, AUTHORITY: "
                f"{sum(len(r) for r in msg.authority)}, ADDITIONAL: {n_add}"]
        if msg.flags & dns.flags.RD and not msg.flags & dns.flags.RA and not sending:
            out.append(";; WARNING: recursion requested but not available")
        out.append("")
        if msg.edns >= 0:
            out += _opt_lines(msg, sent_cookie)
    if s["question"] and (msg.question or sending):
        if c:
            out.append(";; QUESTION SECTION:")
        out += _rr_lines(msg.question, question=True, multi=o.multi, o=o)
        if c:
            out.append("")
    for key, title, section in (("answer", "ANSWER", msg.answer),
                                ("authority", "AUTHORITY", msg.authority),
                                ("additional", "ADDITIONAL", msg.additional)):
        if s[key] and section:
            if c:
                out.append(f";; {title} SECTION:")
            out += _rr_lines(section, multi=o.multi, o=o)
            if c:
                out.append("")
    if s["stats"] and sending:
        out += [f";; QUERY SIZE: {size}", ""]
    elif s["stats"]:
        if elapsed is not None:
            out.append(f";; Query time: {elapsed * 1000:.0f} msec")
        out.append(f";; SERVER: {server}")
        out.append(f";; WHEN: {time.strftime('%a %b %d %H:%M:%S %Z %Y')}")
        if size is not None:
            out.append(f";; MSG SIZE  rcvd: {size}")
        out.append("")
    return "".join(line + "\n" for line in out)


def _cmd_lines(argv: list[str], o: Options, n_servers: int | None) -> str:
    from corenet import __version__
    lines = ["", f"; <<>> corenet-resolver {__version__} <<>> {' '.join(argv)}"]
    if n_servers is not None and o.server is not None:
        lines.append(f"; ({n_servers} server{'s' if n_servers != 1 else ''} found)")
    lines.append(";; global options: +cmd")
    return "".join(line + "\n" for line in lines)


def lookup(o: Options, argv: list[str]) -> int:
    """One look-up, printed; its exit status."""
    try:
        q = make_query(o)
    except Exception as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return EXIT_USAGE
    if o.trace:
        return trace(o, argv)
    if o.in_process:
        return _lookup_in_process(q, o, argv)
    try:
        servers = server_addresses(o)
    except LookupError as e:
        if o.server is not None:          # dig: a usage error, said before anything else
            print(f"{PROG}: {e}", file=sys.stderr)
            return EXIT_USAGE
        if o.show["cmd"] and not o.short:
            sys.stdout.write(_cmd_lines(argv, o, None))
        print(f";; {e}", flush=True)
        return EXIT_NO_ANSWER
    if (o.transport == "udp" and not o.tcp_chosen
            and (o.rdtype or "").upper() in ("ANY", "TYPE255")):
        o = replace(o, transport="tcp")   # dig 9.18 asks ANY over TCP unless told +notcp
    default_port = {"tls": 853, "https": 443}.get(o.transport, 53)
    port = o.port if o.port is not None else default_port
    # as dig, the command lines come once the look-up ends, after its lost tries
    # dig counts the addresses of the last @SERVER
    found = sum(1 for _, name in servers if name == o.server)
    banner = _cmd_lines(argv, o, found) if o.show["cmd"] and not o.short else ""
    names = search_names(o)
    for i, qname in enumerate(names):
        if qname != o.name:
            q = make_query(replace(o, name=qname))
        if o.qr and not o.short:
            sys.stdout.write(banner + render(q, o, elapsed=None, server="",
                                             size=len(q.to_wire()), sending=True))
            banner = ""
        got = _exchange(q, o, servers, port)
        if got is None:
            print(banner + ";; no servers could be reached", flush=True)
            return EXIT_NO_ANSWER
        if isinstance(got, int):
            return got
        r, where, elapsed = got
        searching = r.rcode() == 3 and i < len(names) - 1     # NXDOMAIN: the next name
        if not searching or o.showsearch:
            size = len(getattr(r, "wire", None) or r.to_wire())
            # as dig, each result +showsearch prints comes with the command lines
            sys.stdout.write(banner + render(r, o, elapsed=elapsed, server=where, size=size,
                                             sent_cookie=_cookie_of(q)))
            sys.stdout.flush()
        if not searching:
            return EXIT_OK
    return EXIT_OK                        # pragma: no cover - the last name always returns


def _exchange(q, o: Options, servers, port: int):
    """``q`` asked of ``servers`` in turn, ``o.tries`` each, the lost tries said as dig
    says them: (reply, where it came from, seconds), None when no server replied, or an
    exit status when dig stops at once (a certificate that failed verification)."""
    for addr, name in servers:
        for _ in range(o.tries):
            t0 = time.monotonic()
            try:
                r, proto = ask(q, o, addr, name, port)
            except _network_errors() as e:    # a try lost: dig says so and tries again
                refused = _certificate_refused(e)
                if refused is not None:      # dig neither tries again nor goes on
                    print(f";; TLS peer certificate verification for {addr}#{port} "
                          f"failed: {refused}", flush=True)
                    return EXIT_NO_ANSWER
                print(f";; communications error to {addr}#{port}: {_error_text(e)}",
                      flush=True)
                continue
            if r.rcode() == 2 and not o.fail and (addr, name) != servers[-1]:
                if not o.short:
                    print(f";; Got SERVFAIL reply from {addr}, trying next server",
                          flush=True)
                break
            return r, f"{addr}#{port}({name}) ({proto})", time.monotonic() - t0
    return None


def search_names(o: Options) -> list[str | None]:
    """The names a look-up asks in turn, as dig's +search orders them: a relative name
    with fewer dots than ndots (+ndots, else resolv.conf's) with each search domain
    (+domain, else resolv.conf's search or domain) first and then as it is, one with as
    many or more as it is first; without +search, or for an absolute name, the name."""
    name = o.name
    if not o.search or name is None or o.reverse or name.endswith("."):
        return [name]
    from resolver.hostconf import search_rules
    try:
        domains, ndots = search_rules(os.environ.get(RESOLV_CONF_ENV) or RESOLV_CONF)
    except (OSError, ValueError):
        domains, ndots = [], 1
    suffixes = [o.domain.strip(".")] if o.domain else [d.to_text(omit_final_dot=True)
                                                        for d in domains]
    searched = [f"{name}.{d}." if d else f"{name}." for d in suffixes]
    ndots = ndots if o.ndots is None else o.ndots
    if name.count(".") >= ndots:
        return [f"{name}."] + searched
    return searched + [f"{name}."]


#: the most steps one +trace takes (referrals, and the walks to NS names without glue)
TRACE_MAX_STEPS = 30


def trace(o: Options, argv: list[str]) -> int:
    """+trace: the root's NS set asked (with recursion) of ``@SERVER`` when one is given,
    else of a root hint (``--root-hints``, else the shipped ones), then the question asked
    without recursion of each zone's servers down the referrals, each reply's answer and
    authority printed with where it came from, as dig does. ``-p`` (else
    ``--upstream-port``) is every server's port."""
    port = o.port if o.port is not None else o.upstream_port
    if o.server is not None:
        try:
            start = server_addresses(o)
        except LookupError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            return EXIT_USAGE
    else:
        try:
            start = _root_hints(o)
        except (OSError, ValueError) as e:
            print(f"{PROG}: root hints: {e}", file=sys.stderr)
            return EXIT_USAGE
    if o.show["cmd"] and not o.short:
        sys.stdout.write(_cmd_lines(argv, o, None))
    steps = [0]
    root = replace(o, name=".", rdtype="NS", rdclass=None, reverse=False)
    r = _trace_ask(root, start, port, steps, show=True, rec=o.server is not None)
    if r is None:
        return EXIT_NO_ANSWER
    hints = start
    if o.server is not None:          # the root servers that server names
        ns = [rrset for rrset in r.answer if rrset.rdtype == 2 and rrset.name.labels == (b"",)]
        hints = _addresses_of(ns[0] if ns else [], r, o, start, port, steps, rec=True)
        if not hints:
            print(";; no address found for the root servers", flush=True)
            return EXIT_NO_ANSWER
    servers = hints
    while True:
        r = _trace_ask(o, servers, port, steps, show=True)
        if r is None:
            return EXIT_NO_ANSWER
        nxt = _referral(r, o, port, hints, steps)
        if nxt is None:
            return EXIT_OK
        if not nxt:
            print(f";; no address found for the servers of the referral", flush=True)
            return EXIT_NO_ANSWER
        servers = nxt


def _root_hints(o: Options) -> list[tuple[str, str]]:
    """(address, name) of the root hints (``--root-hints``, else the shipped ones) of the
    family -4/-6 allow."""
    import dns.name

    from resolver.hints import ROOT_HINTS_FILE, parse_root_hints
    hints = [(dns.name.from_wire(n, 0)[0].to_text(omit_final_dot=True), a)
             for n, a in parse_root_hints(o.root_hints or ROOT_HINTS_FILE)]
    return [(a, n) for n, a in hints if not o.family
            or (o.family == socket.AF_INET6) == (":" in a)]


def _trace_ask(o: Options, servers, port: int, steps: list, show: bool, rec: bool = False):
    """One step of +trace: ``o``'s question without RD (with it when ``rec``) asked of
    ``servers`` ((address, name) pairs) in turn, ``o.tries`` each, the reply printed when
    ``show``; None when none replied or the steps are spent."""
    steps[0] += 1
    if steps[0] > TRACE_MAX_STEPS:
        print(f";; +trace: more than {TRACE_MAX_STEPS} steps, giving up", flush=True)
        return None
    q = make_query(replace(o, rec=rec))
    for addr, name in servers:
        for _ in range(o.tries):
            t0 = time.monotonic()
            try:
                r, _proto = ask(q, replace(o, transport="udp" if o.transport != "tcp"
                                           else "tcp"), addr, name, port)
            except _network_errors() as e:
                print(f";; communications error to {addr}#{port}: {_error_text(e)}",
                      flush=True)
                continue
            if show:
                size = len(getattr(r, "wire", None) or r.to_wire())
                lines = _rr_lines(r.answer + r.authority, multi=o.multi, o=o)
                if o.short:
                    lines = [rdata_text(rd, o) for rrset in r.answer for rd in rrset]
                sys.stdout.write("".join(line + "\n" for line in lines))
                if not o.short:
                    print(f";; Received {size} bytes from {addr}#{port}({name}) in "
                          f"{(time.monotonic() - t0) * 1000:.0f} ms\n", flush=True)
            return r
    print(";; no servers could be reached", flush=True)
    return None


def _referral(r, o: Options, port: int, hints, steps: list):
    """The servers a reply refers the question to ((address, name) pairs, glue first,
    then NS names found by a walk from the root that is not shown), or None when the
    reply is the end: an answer, an error rcode or no NS set deeper than the question's
    zone."""
    import dns.rcode
    import dns.rdatatype
    if r.answer or r.rcode() != dns.rcode.NOERROR:
        return None
    ns = [rrset for rrset in r.authority if rrset.rdtype == dns.rdatatype.NS]
    if not ns:
        return None
    return _addresses_of(ns[0], r, o, hints, port, steps)


def _addresses_of(ns, r, o: Options, servers, port: int, steps: list, rec: bool = False):
    """(address, name) of the NS set ``ns``'s targets: the glue of ``r``, else each name's
    addresses found through ``servers`` (by a walk down the referrals from them, or asked
    of them with recursion when ``rec``), not shown."""
    import dns.rdatatype

    targets = [rd.target for rd in ns]
    want = (dns.rdatatype.A, dns.rdatatype.AAAA) if not o.family else (
        (dns.rdatatype.A,) if o.family == socket.AF_INET else (dns.rdatatype.AAAA,))
    out = []
    for rrset in r.additional:
        if rrset.name in targets and rrset.rdtype in want:
            out += [(rd.address, rrset.name.to_text(omit_final_dot=True)) for rd in rrset]
    if out:
        return out
    for target in targets:          # no glue: each name's address
        ask = replace(o, name=target.to_text(), rdtype="A" if o.family != socket.AF_INET6
                      else "AAAA", rdclass=None, reverse=False)
        if rec:
            got = _trace_ask(ask, servers, port, steps, show=False, rec=True)
            found = [rd.address for rrset in (got.answer if got else [])
                     if rrset.rdtype in want for rd in rrset]
        else:
            found = _walk(ask, port, servers, steps)
        if found:
            return [(a, target.to_text(omit_final_dot=True)) for a in found]
    return []


def _walk(o: Options, port: int, hints, steps: list) -> list[str]:
    """The addresses of ``o.name``, found down the referrals from the root without
    printing (within the steps left)."""
    servers = hints
    while True:
        r = _trace_ask(o, servers, port, steps, show=False)
        if r is None:
            return []
        nxt = _referral(r, o, port, hints, steps)
        if nxt is None:
            return [rd.address for rrset in r.answer if rrset.rdtype in (1, 28)
                    for rd in rrset]
        if not nxt:
            return []
        servers = nxt


def _lookup_in_process(q, o: Options, argv: list[str]) -> int:
    if o.root_hints is None:
        print(";; resolving in this process from the real root servers (no --root-hints)",
              file=sys.stderr, flush=True)
    if o.show["cmd"] and not o.short:
        sys.stdout.write(_cmd_lines(argv, o, None))
    t0 = time.monotonic()
    try:
        r = resolve_in_process(q, o)
    except (TimeoutError, asyncio.TimeoutError):
        print(";; in-process resolution timed out", flush=True)
        return EXIT_NO_ANSWER
    except OSError as e:
        print(f";; in-process resolution failed: {e}", flush=True)
        return EXIT_NO_ANSWER
    except Exception as e:
        print(f"{PROG}: internal error: {e}", file=sys.stderr)
        return EXIT_INTERNAL
    where = "in-process resolution from the " + ("root hints" if o.root_hints else "real root")
    sys.stdout.write(render(r, o, elapsed=time.monotonic() - t0, server=where,
                            size=len(r.to_wire())))
    return EXIT_OK


def resolve_in_process(q, o: Options):
    from resolver import Resolver
    from resolver.daemon.worker import new_loop

    async def go():
        r = Resolver(o.root_hints, port=o.upstream_port, ipv6=o.ipv6,
                     qname_minimisation=o.qname_minimisation, do_ip4=o.do_ip4,
                     do_not_query_localhost=o.do_not_query_localhost)
        try:
            return await asyncio.wait_for(r.resolve_message(q), o.timeout)
        finally:
            await r.close()

    loop = new_loop()
    try:
        return loop.run_until_complete(go())
    finally:
        loop.close()


def main(argv: list[str]) -> int:
    """``corenet-resolver query ARGV``: the exit status of the last look-up that failed."""
    try:
        glob, lookups = parse(argv)
        if glob.batch is not None:
            try:
                with open(glob.batch, encoding="utf-8", errors="replace") as f:
                    lines = f.read().splitlines()
            except OSError as e:
                print(f"{glob.batch}: {e.strerror or e}", file=sys.stderr)
                print(f"{PROG}: couldn't open specified batch file", file=sys.stderr)
                return EXIT_BATCH
            base = replace(glob, batch=None)
            for line in lines:
                words = line.split()
                if words and not words[0].startswith((";", "#")):
                    lookups += parse(words, base)[1]
    except UsageError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        print(f"usage: {PROG} [@SERVER] [-p PORT] [-4|-6] [-t TYPE] [-x ADDR] [-f FILE] "
              "[NAME] [TYPE] [CLASS] [+OPTION ...]", file=sys.stderr)
        return EXIT_USAGE
    status = EXIT_OK
    for i, o in enumerate(lookups):
        if o.family and o.server is not None and _is_address_of_other_family(o):
            print(f";; {o.server} is not an IPv{4 if o.family == socket.AF_INET else 6} "
                  "address", flush=True)
            status = EXIT_NO_ANSWER
            continue
        if i:
            o.show["cmd"] = False         # dig prints its command line once
        try:
            rc = lookup(o, argv)
        except Exception as e:            # a bug, not the network: dig's "internal error"
            print(f"{PROG}: internal error: {type(e).__name__}: {e}", file=sys.stderr)
            rc = EXIT_INTERNAL
        if rc:
            status = rc
    return status


def _is_address_of_other_family(o: Options) -> bool:
    try:
        fam = socket.AF_INET6 if ":" in o.server else socket.AF_INET
        socket.inet_pton(fam, o.server)
    except OSError:
        return False
    return fam != o.family
