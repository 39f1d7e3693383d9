"""corenet-fetch's command line, curl's flags, and what they make: the request (method, URL,
headers, body), the TLS context, the credentials, the cookie jar, the schemes allowed, and
the names pinned by --resolve or resolved by the recursive resolver (--resolve-with)."""
from __future__ import annotations

import argparse
import copy
import http.cookiejar
import os
import re
import ssl
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from corenet.https.errors import UnsupportedProtocol
from corenet.https.resolve import resolve_host
from corenet.https.transport import make_ssl_context
from corenet.tools.fetch_codes import (READ_ERROR, SSL_CERTPROBLEM, SSL_CIPHER, WRITE_ERROR,
                                       CommandError)


class _Trusted(argparse.Action):
    """--location-trusted: -L, with the credentials kept across hosts."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        namespace.follow = namespace.location_trusted = True


class _HTTPVersion(argparse.Action):
    """-0/--http1.0, --http1.1, --http2, --http2-prior-knowledge: the last one given wins,
    as curl's."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        namespace.http10 = self.const == "1.0"
        namespace.http2 = self.const in ("2", "prior")
        namespace.http2_prior_knowledge = self.const == "prior"


class _Verbose(argparse.Action):
    """-v: curl's account on stderr; it and --trace/--trace-ascii, the last one wins."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        namespace.verbose, namespace.trace = True, None


class _Trace(argparse.Action):
    """--trace FILE, --trace-ascii FILE: (hex or ascii, FILE), instead of -v."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        namespace.verbose, namespace.trace = False, (self.const, values)


class _Data(argparse.Action):
    """-d, --data-binary, --data-raw and --json, kept in order with their kind."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        items = list(getattr(namespace, self.dest) or [])
        items.append((self.const, values))
        setattr(namespace, self.dest, items)


PROG = "corenet-fetch"


class _Help(argparse.HelpFormatter):
    """--help's first line as curl's: `Usage: PROG [options...] <url>`."""

    def add_usage(self, usage, actions, groups, prefix=None):  # type: ignore[override]
        super().add_usage(usage, actions, groups, "Usage: " if prefix is None else prefix)


class _Parser(argparse.ArgumentParser):
    """A bad command line told in curl's words (`PROG: option --x: is unknown`, a hint to
    try --help), exit 2, instead of argparse's usage."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.argv: list[str] = []  # the command line, for the option as typed

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{PROG}: {curl_message(message, self.argv)}\n"
                     f"{PROG}: try '{PROG} --help' for more information\n")


def curl_message(message: str, argv: list[str]) -> str:
    """argparse's complaint as curl words it, with the option as typed."""
    if message.startswith("unrecognized arguments: "):
        return f"option {message.split(': ', 1)[1].split()[0]}: is unknown"
    if message.startswith("argument "):
        names, _, why = message[len("argument "):].partition(": ")
        typed = next((a for a in argv if a in names.split("/")), names.split("/")[0])
        if why.startswith("invalid") and ("int value" in why or "float value" in why):
            return f"option {typed}: expected a proper numerical parameter"
        if why.startswith("expected one argument"):
            return f"option {typed}: requires parameter"
        if why.startswith("ignored explicit argument"):  # --flag=VALUE: unknown to curl
            typed = next((a for a in argv if a.split("=", 1)[0] in names.split("/")
                          and "=" in a), typed)
            return f"option {typed}: is unknown"
        return f"option {typed}: {why}"
    return message


class _Version(argparse.Action):
    """--version: curl's first line (name, version, libraries), then its Protocols and
    Features lines, with what this installation has."""

    def __init__(self, option_strings, dest, **kw):  # type: ignore[no-untyped-def]
        super().__init__(option_strings, dest, nargs=0, **kw)

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        sys.stdout.write(version_text())
        parser.exit(0)


def version_text() -> str:
    import platform
    import zlib

    import corenet
    from corenet.https.decoder import accept_encoding

    codings = accept_encoding().split(", ")
    libs = [f"corenet-https/{corenet.__version__}",
            ssl.OPENSSL_VERSION.replace(" ", "/", 1).split()[0],
            f"zlib/{zlib.ZLIB_RUNTIME_VERSION}"]
    features = ["AsynchDNS", "HTTP2", "HTTPS-proxy", "IPv6", "Largefile", "libz", "SSL",
                "UnixSockets", *(["brotli"] if "br" in codings else []),
                *(["zstd"] if "zstd" in codings else [])]
    return (f"{PROG} {corenet.__version__} ({platform.machine()}-{sys.platform}) "
            f"{' '.join(libs)}\n"
            f"Protocols: {' '.join(SCHEMES)}\n"
            f"Features: {' '.join(sorted(features, key=str.lower))}\n")


def make_parser() -> _Parser:
    p = _Parser(prog=PROG, usage="%(prog)s [options...] <url>", formatter_class=_Help,
                description="Fetch a URL over HTTPS/1.1 with corenet.https, "
                            "with curl's flags and exit codes.")
    p.add_argument("-V", "--version", action=_Version,
                   help="show the version, protocols and features, and exit")
    p.add_argument("url", nargs="*", help="the URLs, fetched one after another")
    p.add_argument("--url", dest="url_option", action="append", default=[], metavar="URL",
                   help="a URL (as curl's)")
    p.add_argument("-K", "--config", metavar="FILE",
                   help="read options from FILE (- standard input) as curl's config files")
    p.add_argument("-o", "--output", action="append", default=[], metavar="FILE",
                   help="write the body to FILE (each -o for the next URL)")
    p.add_argument("-O", "--remote-name", action="count", default=0,
                   help="write the body to a file named as the URL's last path segment")
    p.add_argument("-J", "--remote-header-name", action="store_true",
                   help="with -O: name the file as the response's Content-Disposition says")
    p.add_argument("-R", "--remote-time", action="store_true",
                   help="give the output file the response's Last-Modified time")
    p.add_argument("-z", "--time-cond", metavar="TIME|FILE",
                   help="only a body newer than TIME or FILE's time (-TIME: older), "
                        "If-Modified-Since; a 304 leaves the output file as it is")
    p.add_argument("-I", "--head", action="store_true", help="HEAD request; print headers")
    p.add_argument("-i", "--include", action="store_true",
                   help="print the status line and headers before the body")
    p.add_argument("-v", "--verbose", action=_Verbose, nargs=0,
                   help="show TLS, the request and the response headers on stderr")
    p.add_argument("--trace", dest="trace", action=_Trace, const="hex", metavar="FILE",
                   help="write curl's dump of all that went and came, in hex and text, to "
                        "FILE (- standard output, %% stderr)")
    p.add_argument("--trace-ascii", dest="trace", action=_Trace, const="ascii",
                   metavar="FILE", help="as --trace, in text only")
    p.add_argument("-w", "--write-out", metavar="FORMAT",
                   help="after the transfer print FORMAT (or @FILE's contents) with "
                        "%%{http_code}, %%{time_total}, ... replaced, as curl")
    p.add_argument("--cacert", metavar="FILE", help="trust the CA certificates in FILE")
    p.add_argument("-k", "--insecure", action="store_true",
                   help="do not verify the server certificate (explicit opt-out)")
    p.add_argument("--resolve-with", metavar="ROOT_HINTS",
                   help="resolve the host with corenet's recursive resolver from these root hints")
    p.add_argument("--dns-port", type=int, default=None, metavar="PORT",
                   help="with --resolve-with: the port authorities listen on (a test lab)")
    p.add_argument("--dns-query-localhost", action="store_true",
                   help="with --resolve-with: let authorities be asked at loopback addresses "
                        "(a test lab; refused by default, as Unbound's do-not-query-localhost)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="connect/read/write timeout (default 30)")
    p.add_argument("--connect-timeout", type=float, default=None, metavar="SECONDS",
                   help="limit for connecting (lookup, TCP, TLS handshake)")
    p.add_argument("-m", "--max-time", type=float, default=None, metavar="SECONDS",
                   help="overall deadline for the whole transfer")
    p.add_argument("-L", "--location", dest="follow", action="store_true",
                   help="follow redirects (as curl: not followed unless asked)")
    p.add_argument("--location-trusted", dest="follow", action=_Trusted, nargs=0,
                   help="as -L, and send -u's credentials to every host redirected to")
    p.add_argument("--max-redirs", type=int, default=50, metavar="NUM",
                   help="with -L: at most NUM redirects (default 50, as curl)")
    for code in ("301", "302", "303"):
        p.add_argument(f"--post{code}", action="store_true",
                       help=f"with -L: a POST redirected by a {code} stays a POST, with its "
                            "body (curl's default: GET)")
    p.add_argument("-X", "--request", metavar="METHOD", help="the request method")
    p.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="an extra request header (repeatable)")
    p.add_argument("-d", "--data", dest="data", action=_Data, const="data", metavar="DATA",
                   help="send DATA (or @FILE, newlines removed; @- stdin) as a form body, "
                        "with POST (repeatable: joined with &)")
    p.add_argument("--data-binary", dest="data", action=_Data, const="binary", metavar="DATA",
                   help="as -d, but @FILE (or @-) is sent exactly as it is")
    p.add_argument("--data-raw", dest="data", action=_Data, const="raw", metavar="DATA",
                   help="as -d, without @ meaning a file")
    p.add_argument("--data-urlencode", dest="data", action=_Data, const="urlencode",
                   metavar="[NAME]=CONTENT|[NAME]@FILE",
                   help="as -d, with CONTENT (or FILE's) percent-encoded, as curl")
    p.add_argument("-G", "--get", action="store_true",
                   help="send -d data as the URL's query, with GET")
    p.add_argument("-F", "--form", action="append", default=[],
                   metavar="NAME=VALUE|NAME=@FILE|NAME=<FILE",
                   help="a multipart/form-data field (repeatable): a value, a file to "
                        "upload (@, ;type= and ;filename= as curl) or a file's content (<)")
    p.add_argument("-T", "--upload-file", metavar="FILE",
                   help="PUT FILE (- for stdin), to the URL's name or, when it ends in /, "
                        "to FILE's name under it")
    p.add_argument("--json", dest="data", action=_Data, const="json", metavar="DATA",
                   help="send DATA (or @FILE) as JSON with POST; Content-Type and Accept "
                        "become application/json")
    p.add_argument("-u", "--user", metavar="USER:PASSWORD", help="Basic authentication")
    p.add_argument("--basic", dest="auth_scheme", action="store_const", const="basic",
                   help="-u's credentials as Basic (the default)")
    p.add_argument("--digest", dest="auth_scheme", action="store_const", const="digest",
                   help="-u's credentials as Digest, answering the server's challenge")
    p.add_argument("--oauth2-bearer", metavar="TOKEN", help="Authorization: Bearer TOKEN")
    p.add_argument("-n", "--netrc", action="store_true",
                   help="credentials for the host from ~/.netrc")
    p.add_argument("--netrc-file", metavar="FILE", help="as -n, from FILE")
    p.add_argument("-A", "--user-agent", metavar="NAME", help="the User-Agent header")
    p.add_argument("-e", "--referer", metavar="URL", help="the Referer header")
    p.add_argument("-r", "--range", metavar="RANGE",
                   help="ask for these bytes only (Range: bytes=RANGE, as 0-499)")
    p.add_argument("-C", "--continue-at", metavar="OFFSET",
                   help="resume: ask for the body from OFFSET on, appended to -o's file "
                        "(-: from the file's size)")
    p.add_argument("-E", "--cert", metavar="CERT[:PASSWORD]",
                   help="a client certificate (PEM), with its key unless --key")
    p.add_argument("--key", metavar="KEY", help="the client certificate's private key")
    p.add_argument("--capath", metavar="DIR", help="trust the CA certificates in DIR "
                                                   "(hashed, as c_rehash makes it)")
    p.add_argument("--tlsv1.2", dest="tls_min", action="store_const", const="1.2",
                   help="TLS 1.2 or later")
    p.add_argument("--tlsv1.3", dest="tls_min", action="store_const", const="1.3",
                   help="TLS 1.3 only")
    p.add_argument("-4", "--ipv4", dest="family", action="store_const", const="4",
                   help="connect over IPv4 only")
    p.add_argument("-6", "--ipv6", dest="family", action="store_const", const="6",
                   help="connect over IPv6 only")
    p.add_argument("--resolve", action="append", default=[], metavar="HOST:PORT:ADDR",
                   help="connect to ADDR for HOST at PORT, without looking it up "
                        "(repeatable; ADDR may be a comma-separated list)")
    p.add_argument("--connect-to", action="append", default=[],
                   metavar="HOST1:PORT1:HOST2:PORT2",
                   help="connect to HOST2:PORT2 for a URL's HOST1:PORT1, which TLS and Host "
                        "still name (repeatable, the first that fits wins; an empty HOST1 or "
                        "PORT1 fits any, an empty HOST2 or PORT2 keeps the URL's)")
    p.add_argument("--path-as-is", action="store_true",
                   help="send the URL's path as it is, its /./ and /../ kept")
    p.add_argument("--unix-socket", metavar="PATH",
                   help="connect through this Unix socket instead of the network")
    p.add_argument("-D", "--dump-header", metavar="FILE",
                   help="write the status lines and headers received to FILE (- stdout)")
    p.add_argument("--output-dir", metavar="DIR", help="where -o and -O write their file")
    p.add_argument("--create-dirs", action="store_true",
                   help="make -o's missing directories")
    p.add_argument("-g", "--globoff", action="store_true",
                   help="accepted for curl's sake: URLs are never globbed here")
    p.add_argument("-b", "--cookie", metavar="'N=V; N2=V2' | FILE",
                   help="send these cookies, or load a cookie file (Netscape format)")
    p.add_argument("-c", "--cookie-jar", metavar="FILE",
                   help="write all cookies to FILE (Netscape format) after the transfer")
    p.add_argument("--compressed", action="store_true",
                   help="ask for a compressed body (gzip, deflate, br, zstd as installed) "
                        "and decode it")
    p.add_argument("-0", "--http1.0", dest="http2", action=_HTTPVersion, nargs=0,
                   const="1.0", help="use HTTP/1.0: its request line, http/1.0 in ALPN, "
                                     "and a connection for each request")
    p.add_argument("--http1.1", dest="http2", action=_HTTPVersion, nargs=0, const="1.1",
                   help="use HTTP/1.1 only")
    p.add_argument("--http2", dest="http2", action=_HTTPVersion, nargs=0, const="2",
                   help="offer HTTP/2 in ALPN (the default for https, as in curl); "
                        "HTTP/1.1 is used when the server does not take it")
    p.add_argument("--http2-prior-knowledge", dest="http2", action=_HTTPVersion, nargs=0,
                   const="prior", help="speak HTTP/2 to an http:// URL from the first byte (h2c), "
                        "without HTTP/1.1; https URLs offer h2 in ALPN as usual")
    p.add_argument("-x", "--proxy", metavar="URL",
                   help="use this proxy: http://, https:// or socks5h:// (socks5:// the same)")
    p.add_argument("-U", "--proxy-user", metavar="USER:PASSWORD",
                   help="Basic credentials for the proxy")
    p.add_argument("--noproxy", metavar="HOSTS",
                   help="reach these hosts (comma-separated, each with its subdomains; * "
                        "all) without the proxy of -x or the environment")
    p.add_argument("--proto", metavar="PROTOCOLS",
                   help="the schemes the URL may have, as curl: =https, -all,+https, ...")
    p.add_argument("--proto-redir", metavar="PROTOCOLS",
                   help="the schemes a redirect may go to (default: http and https)")
    p.add_argument("--url-query", action="append", default=[], metavar="DATA",
                   help="add DATA to the URL's query, percent-encoded as --data-urlencode "
                        "(+DATA: as it is)")
    p.add_argument("-N", "--no-buffer", action="store_true",
                   help="write each piece of the body out as it arrives")
    p.add_argument("--stderr", metavar="FILE",
                   help="write messages to FILE (- standard output) instead of stderr")
    p.add_argument("--retry", type=int, default=0, metavar="NUM",
                   help="try a transfer that failed transiently (a timeout, HTTP 408, 429, "
                        "500, 502, 503 or 504) again, up to NUM times, after 1 s, 2 s, 4 s... "
                        "(a Retry-After of the response, when it says more)")
    p.add_argument("--retry-delay", type=float, default=None, metavar="SECONDS",
                   help="wait this long before each retry instead")
    p.add_argument("--retry-max-time", type=float, default=None, metavar="SECONDS",
                   help="no retry starts after this long since the first attempt")
    p.add_argument("--retry-connrefused", action="store_true",
                   help="a refused connection is transient too")
    p.add_argument("--retry-all-errors", action="store_true",
                   help="every error is transient, -f's HTTP errors included")
    p.add_argument("--fail-early", action="store_true",
                   help="with several URLs: stop at the first that fails")
    p.add_argument("--max-filesize", type=size, default=None, metavar="BYTES",
                   help="refuse a body larger than BYTES (k, M, G suffixes), exit 63")
    p.add_argument("--limit-rate", type=size, default=None, metavar="SPEED",
                   help="receive at most SPEED bytes a second (k, M, G suffixes)")
    p.add_argument("--remove-on-error", action="store_true",
                   help="remove the output file when the transfer fails")
    p.add_argument("-Z", "--parallel", action="store_true",
                   help="accepted for curl's sake: the URLs are fetched one after another")
    p.add_argument("--parallel-max", type=int, default=50, metavar="NUM",
                   help="accepted with -Z")
    p.add_argument("--no-progress-meter", action="store_true",
                   help="no progress bar (the errors are still told)")
    p.add_argument("--tls-max", metavar="VERSION", choices=("1.2", "1.3", "default"),
                   help="TLS at most this version")
    p.add_argument("--ciphers", metavar="LIST", help="the TLS 1.2 cipher suites offered "
                                                     "(OpenSSL's names)")
    p.add_argument(*_ACCEPTED_FLAGS, dest="accepted", action="count",
                   help="accepted for curl's sake: what they ask is done already (TCP_NODELAY, "
                        "TLS 1.2 or later, no ~/.curlrc read) or concerns what is not done")
    p.add_argument(*_ACCEPTED_VALUES, dest="accepted_value", metavar="N",
                   help="accepted for curl's sake, changing nothing here")
    p.add_argument("-f", "--fail", action="store_true",
                   help="exit with 22 on an HTTP error status (400 and above), "
                        "without printing the body")
    p.add_argument("--fail-with-body", action="store_true",
                   help="as -f, but print the body")
    p.add_argument("-s", "--silent", action="store_true",
                   help="no progress meter nor error messages")
    p.add_argument("-S", "--show-error", action="store_true",
                   help="with -s: still print error messages")
    p.set_defaults(location_trusted=False, http10=False, http2=True, verbose=False,
                   http2_prior_knowledge=False)
    return p


# curl's options that change nothing here: what they ask is done already, or concerns
# what corenet-fetch does not do (a progress style, TCP keep-alive probes, Windows'
# revocation checks, NPN, ~/.curlrc, TLS below 1.2 allowed). Taken, so that a curl
# command line runs as it is.
_ACCEPTED_FLAGS = ("-q", "--disable", "-#", "--progress-bar", "--tcp-nodelay",
                   "--styled-output", "--no-styled-output", "--no-keepalive", "--ssl-no-revoke",
                   "--false-start", "--no-npn", "--ssl-reqd", "-1", "--tlsv1", "--tlsv1.0",
                   "--tlsv1.1")
_ACCEPTED_VALUES = ("--keepalive-time", "--expect100-timeout", "--happy-eyeballs-timeout-ms")


_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def size(text: str) -> int:
    """A size as curl reads one: a number of bytes, with k, M or G (any case) after it."""
    number, unit = text[:-1] if text[-1:].isalpha() else text, \
        text[-1:].lower() if text[-1:].isalpha() else ""
    if unit not in _SIZE_UNITS:
        raise ValueError(text)
    return int(float(number) * _SIZE_UNITS[unit])


size.__name__ = "int"  # argparse's name for the type in "invalid int value"


_CONFIG_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "v": "\v"}
_CONFIG_DEPTH = 10  # -K inside a config file, at most this deep


def _config_value(text: str) -> str:
    """A config file's value as curl reads it: "quoted" with \\ escapes, or up to the
    first blank."""
    if not text.startswith('"'):
        return text.split()[0] if text.split() else ""
    out, i = [], 1
    while i < len(text) and text[i] != '"':
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
            out.append(_CONFIG_ESCAPES.get(text[i], text[i]))
        else:
            out.append(text[i])
        i += 1
    return "".join(out)


def _config_args(name: str, parser: argparse.ArgumentParser, depth: int) -> list[str]:
    """The options of a curl config file (-K FILE, - for standard input): one a line,
    `--name value`, `name = value` or `name: value`, without dashes for long names; #
    comments."""
    if depth > _CONFIG_DEPTH:
        raise CommandError(f"-K: config files nested more than {_CONFIG_DEPTH} deep")
    try:
        text = _read_file(name).decode("utf-8", "replace")
    except CommandError:
        raise CommandError("option -K: error encountered when reading a file",
                           READ_ERROR) from None
    argv: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([^\s=:]+)\s*[=:]?\s*(.*)", line)
        if m is None:
            continue
        option = m[1] if m[1].startswith("-") else "--" + m[1]
        action = parser._option_string_actions.get(option)
        argv.append(option)
        if m[2] and (action is None or action.nargs != 0):
            argv.append(_config_value(m[2]))
    return expand_config(argv, parser, depth + 1)


def expand_config(argv: list[str], parser: argparse.ArgumentParser,
                  depth: int = 0) -> list[str]:
    """The command line with each -K/--config FILE replaced by the file's options."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-K", "--config") and i + 1 < len(argv):
            out += _config_args(argv[i + 1], parser, depth)
            i += 2
            continue
        if arg.startswith("--config="):
            out += _config_args(arg.split("=", 1)[1], parser, depth)
        elif arg.startswith("-K") and not arg.startswith("--") and len(arg) > 2:
            out += _config_args(arg[2:], parser, depth)
        else:
            out.append(arg)
        i += 1
    return out


# Options whose value may begin with "-" (curl's `--proto -all,https`), which argparse
# would take for another option unless joined to it with "=".
_DASHED_VALUES = ("--proto", "--proto-redir", "-z", "--time-cond")


def join_dashed_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in _DASHED_VALUES and i + 1 < len(argv):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _read_file(name: str) -> bytes:
    try:
        if name == "-":
            return sys.stdin.buffer.read()
        with open(name, "rb") as f:
            return f.read()
    except OSError as exc:
        raise CommandError(f"cannot read {name}: {exc.strerror or exc}", READ_ERROR) from None


def _urlencoded(value: str) -> bytes:
    """One --data-urlencode argument, as curl reads it: `content`, `=content`,
    `name=content`, `@file` or `name@file`, the content percent-encoded."""
    from urllib.parse import quote_plus

    eq, at = value.find("="), value.find("@")
    if at >= 0 and (eq < 0 or at < eq):
        name, content = value[:at], _read_file(value[at + 1:])
    elif eq >= 0:
        name, content = value[:eq], value[eq + 1:].encode()
    else:
        name, content = "", value.encode()
    encoded = quote_plus(content).encode()
    return name.encode() + b"=" + encoded if name else encoded


def _read_data(kind: str, value: str) -> bytes:
    """One -d/--data-binary/--data-raw/--data-urlencode/--json argument's bytes, as curl
    reads them."""
    if kind == "urlencode":
        return _urlencoded(value)
    if kind == "raw" or not value.startswith("@"):
        return value.encode()
    body = _read_file(value[1:])
    if kind == "data":
        body = body.replace(b"\r", b"").replace(b"\n", b"")
    return body


# The types curl gives an uploaded file by its name's extension (any case); other files
# are application/octet-stream.
_FORM_TYPES = {".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".png": "image/png", ".svg": "image/svg+xml", ".txt": "text/plain",
               ".htm": "text/html", ".html": "text/html", ".pdf": "application/pdf",
               ".xml": "application/xml"}


def _form(fields: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """-F fields as the client's (data, files): `name=value`, `name=<file` (the file's
    content as the value), `name=@file` (an upload), with curl's `;type=` and
    `;filename=` after a file."""
    data: dict[str, Any] = {}
    files: dict[str, Any] = {}
    for spec in fields:
        name, sep, value = spec.partition("=")
        if not sep or not name:
            raise CommandError(f"-F needs NAME=VALUE, not {spec!r}")
        if value[:1] not in ("@", "<"):
            data.setdefault(name, []).append(value)
            continue
        path, *params = value[1:].split(";")
        options = dict(p.strip().partition("=")[::2] for p in params if "=" in p)
        content = _read_file(path)
        if value[0] == "<":
            data.setdefault(name, []).append(content.decode("utf-8", "replace"))
            continue
        filename = options.get("filename", os.path.basename(path) if path != "-" else "-")
        ctype = options.get("type") or _FORM_TYPES.get(
            os.path.splitext(filename)[1].lower(), "application/octet-stream")
        files[name] = (filename, content, ctype)
    return data, files


def _header_lines(given: list[str]) -> list[str]:
    """-H's headers, `@FILE` read as curl reads it: a header a line, blank lines left out."""
    lines: list[str] = []
    for h in given:
        if h.startswith("@"):
            text = _read_file(h[1:]).decode("latin-1")
            lines += [line for line in text.splitlines() if line.strip()]
        else:
            lines.append(h)
    return lines


def time_condition(value: str, silent: bool) -> tuple[str, str] | None:
    """-z's header: If-Modified-Since (If-Unmodified-Since for -TIME) the date given, or
    the named file's time. A date that cannot be read is curl's warning and no condition."""
    from datetime import datetime, timezone
    from email.utils import formatdate, parsedate_to_datetime

    older = value.startswith("-")
    text = value[1:] if older else value
    name = "If-Unmodified-Since" if older else "If-Modified-Since"
    try:
        return name, formatdate(os.path.getmtime(text), usegmt=True)
    except OSError:
        pass
    def compact(text: str) -> datetime:  # curl's YYYYMMDD [HH:MM:SS]
        return datetime.strptime(text, "%Y%m%d %H:%M:%S" if " " in text else "%Y%m%d")

    for parse in (parsedate_to_datetime, compact):
        try:
            when = parse(text.strip())
        except (TypeError, ValueError):
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return name, formatdate(when.timestamp(), usegmt=True)
    if not silent:
        sys.stderr.write("Warning: Illegal date format for -z, --time-cond (and not a file "
                         "name). \nWarning: Disabling time condition. See curl_getdate(3) "
                         "for valid date syntax.\n")
    return None


def condition_met(condition: tuple[str, str], r: Any) -> bool:
    """Whether a response's Last-Modified meets -z's condition (curl checks it itself, for
    a server that answers 200 regardless); one without the header does."""
    from email.utils import parsedate_to_datetime

    try:
        modified = parsedate_to_datetime(r.headers.get("last-modified", ""))
        limit = parsedate_to_datetime(condition[1])
    except (TypeError, ValueError):
        return True
    return modified > limit if condition[0] == "If-Modified-Since" else modified < limit


def request_options(args: argparse.Namespace) -> tuple[str, str, dict[str, Any]]:
    """Method, URL and AsyncClient.stream() keywords from curl-style options."""
    url = args.url
    for part in args.url_query:
        extra = part[1:].encode() if part.startswith("+") else _urlencoded(part)
        url += ("&" if "?" in url else "?") + extra.decode("latin-1")
    headers = []
    removed: set[str] = set()  # as curl's: `-H "Name:"` sends no Name at all
    for h in _header_lines(args.header):
        name, sep, value = h.partition(":")
        if not sep and h.rstrip().endswith(";") and h.strip(" ;"):  # `Name;`: empty value
            name, sep, value = h.rstrip()[:-1], ":", ""
        elif not sep or not name.strip():
            raise CommandError(f"-H needs 'Name: value', not {h!r}")
        elif not value.strip():
            removed.add(name.strip().lower())
            continue
        headers.append((name.strip(), value.strip()))
    if args.user_agent == "":  # -A "": no User-Agent, as curl
        removed.add("user-agent")
    args.removed_headers = removed
    given = {k.lower() for k, _ in headers} | removed
    for name, value in (("Referer", args.referer),
                        ("Range", args.range and f"bytes={args.range}"
                         or getattr(args, "resume_from", 0) and f"bytes={args.resume_from}-")):
        if value and name.lower() not in given:  # -H's own header wins
            headers.append((name, value))
    if args.time_cond:
        condition = time_condition(args.time_cond, args.silent)
        if condition is not None and condition[0].lower() not in given:
            headers.append(condition)
            args.condition = condition
    kw: dict[str, Any] = {"headers": headers}
    implied = "GET"
    if args.form and (args.data or args.upload_file):
        raise CommandError("-F cannot be used with -d, --json or -T")
    if args.data:
        parts = [_read_data(kind, value) for kind, value in args.data]
        as_json = all(kind == "json" for kind, _ in args.data)
        body = (b"" if as_json else b"&").join(parts)
        if args.get:
            from urllib.parse import urlsplit

            sep = "&" if urlsplit(url).query else "?"
            url = f"{url}{sep}{body.decode('latin-1')}"
        else:
            kw["content"] = body
            implied = "POST"
            if as_json:  # curl's --json adds its two as if by -H: the length goes last
                for name, value in (("Content-Type", "application/json"),
                                    ("Accept", "application/json")):
                    if name.lower() not in given:
                        headers.append((name, value))
            else:
                _body_headers(headers, given, len(body), "application/x-www-form-urlencoded")
    elif args.form:  # multipart/form-data, files or not, as curl's -F
        from corenet.https.multipart import encode_multipart

        content, ctype = encode_multipart(*_form(args.form))
        kw["content"] = content
        length = len(content) if isinstance(content, bytes) else content.length
        _body_headers(headers, given, length, ctype)
        implied = "POST"
    elif args.upload_file:
        if url.endswith("/") and args.upload_file != "-":
            url += os.path.basename(args.upload_file)
        kw["content"] = _read_file(args.upload_file)
        implied = "PUT"
    if args.cookie and "=" in args.cookie:
        headers.append(("Cookie", args.cookie))
    args.curl_method = "HEAD" if args.head else implied  # the method before -X
    method = args.request or ("HEAD" if args.head else implied)
    return method.upper(), url, kw


def _body_headers(headers: list, given: set, length: int | None, ctype: str) -> None:
    """A POST body's Content-Length (when known) and Content-Type, in curl's order (the
    length first), each unless -H gave it."""
    if length is not None and "content-length" not in given:
        headers.append(("Content-Length", str(length)))
    if "content-type" not in given:
        headers.append(("Content-Type", ctype))


def redirect_methods(args: argparse.Namespace, body: bytes | None
                     ) -> tuple[Callable[[Any], None], Callable[[Any], None]]:
    """A request hook and a response hook that give each request of -L the method (and
    body) curl's rules give it: a POST becomes a GET after a 301 or 302 (unless --post301,
    --post302) and any method but HEAD after a 303 (a POST stays one with --post303);
    other methods, a PUT's body with them, stay."""
    state: list[Any] = [args.curl_method, body]
    redirected = [False]
    keep = {301: args.post301, 302: args.post302, 303: args.post303}

    def on_response(response: Any) -> None:
        code = response.status_code
        method = state[0]
        if not response.has_redirect_location:
            return
        redirected[0] = True
        if code in keep and (method == "POST" and not keep[code] or code == 303 and
                             method not in ("GET", "HEAD", "POST")):
            state[:] = ["GET", None]

    def on_request(request: Any) -> None:
        if redirected[0] and request.method != state[0]:  # changed where curl does not
            request.method, request.body = state
    return on_request, on_response


def as_is_target(url: str) -> str | None:
    """--path-as-is: the request target of `url` with its path's "." and ".." segments
    kept (percent-encoded as the URL's own), None when it has none to keep."""
    from corenet.https.urls import URL

    m = re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*([^?#]*)", url)
    path = m[1] if m else ""
    if "/." not in path:
        return None
    slashes = len(path) - len(path.lstrip("/"))  # a relative URL cannot begin with //
    kept = "/" * (slashes - 1) + URL("/" + path.lstrip("/")).raw_path.decode("ascii")
    raw = URL(url).raw_path.decode("ascii")
    query = raw[raw.index("?"):] if "?" in raw else ""
    return None if kept + query == raw else kept + query


def _join_as_is(base: str, location: str) -> str:
    """A redirect's Location joined to the URL it came from, dot segments kept."""
    if re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", location):
        return location
    m = re.match(r"([^:]+:)(//[^/?#]*)([^?#]*)", base)
    if m is None:
        return location
    if location.startswith("//"):
        return m[1] + location
    if location.startswith("/"):
        return m[1] + m[2] + location
    if location.startswith(("?", "#")) or not location:
        return m[1] + m[2] + m[3] + location
    return m[1] + m[2] + m[3][:m[3].rfind("/") + 1] + location


def path_as_is(url: str) -> tuple[Callable[[Any], None], Callable[[Any], None]]:
    """--path-as-is: a request hook that sends each request's path as the URL given (or
    a redirect's Location) has it, its dot segments kept, and the response hook that
    notes where a redirect goes."""
    from corenet.https.errors import HTTPError
    from corenet.https.models import Request

    def normal(text: str) -> str:
        return str(Request("GET", text).url)

    given = {normal(url): url}  # the URL as sent -> as it was written
    current = [url]

    def on_request(request: Any) -> None:
        text = given.get(str(request.url))
        current[0] = str(request.url) if text is None else text
        target = as_is_target(text) if text is not None else None
        if target is not None:
            request.extensions["target"] = target

    def on_response(response: Any) -> None:
        if response.has_redirect_location:
            joined = _join_as_is(current[0], response.headers["location"])
            try:
                given[normal(joined)] = joined
            except (HTTPError, ValueError):
                pass  # the client tells what is wrong with it
    return on_request, on_response


def resume_offset(continue_at: str | None, name: str | None) -> int:
    """-C's offset: a number, or (-) the size of the output file, 0 when there is none."""
    if continue_at is None:
        return 0
    if continue_at == "-":
        try:
            return os.path.getsize(name) if name else 0
        except OSError:
            return 0
    if not continue_at.isdigit():
        raise CommandError("option -C: expected a proper numerical parameter")
    return int(continue_at)


SCHEMES = ("http", "https")


def protocols(spec: str | None, default: frozenset[str]) -> frozenset[str]:
    """curl's --proto list: tokens of [+-=]NAME, `all` meaning every scheme, applied left
    to right to `default` (a bare name adds, as +NAME)."""
    if spec is None:
        return default
    allowed = set(default)
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        op, name = (token[0], token[1:]) if token[0] in "+-=" else ("+", token)
        names = set(SCHEMES) if name.lower() == "all" else {name.lower()}
        if op == "=":
            allowed = names
        elif op == "+":
            allowed |= names
        else:
            allowed -= names
    return frozenset(allowed)


def scheme_check(url: str, allowed: frozenset[str],
                  redirects: frozenset[str]) -> Callable[[Any], None]:
    """A request hook: the URL's scheme must be one of --proto's, a redirect's one of
    --proto-redir's."""
    def check(request: Any) -> None:
        first = str(request.url) == url
        scheme = request.url.scheme
        if scheme not in (allowed if first else redirects):
            raise UnsupportedProtocol(
                f"{scheme}:// is not allowed " + ("(--proto)" if first else
                                                  "for a redirect (--proto-redir)"))
    return check


def auth(args: argparse.Namespace) -> Any:
    """The credentials of -u (Basic, or Digest with --digest), --oauth2-bearer or the
    netrc file; None for none."""
    from corenet.https.auth import BasicAuth, BearerAuth, DigestAuth, NetRCAuth

    if args.user is not None:
        user, colon, password = args.user.partition(":")
        if not colon:
            password = _ask_password(user)
        return DigestAuth(user, password) if args.auth_scheme == "digest" else \
            BasicAuth(user, password)
    if args.oauth2_bearer:
        return BearerAuth(args.oauth2_bearer)
    if args.netrc or args.netrc_file:
        try:
            return NetRCAuth(args.netrc_file)
        except FileNotFoundError:
            if args.netrc_file:
                raise CommandError(f"cannot read the netrc file {args.netrc_file}",
                                   READ_ERROR) from None
            return None  # as curl: no ~/.netrc is no credentials
        except Exception as exc:  # netrc.NetrcParseError
            raise CommandError(f"cannot parse the netrc file: {exc}", READ_ERROR) from None
    return None


def _ask_password(user: str) -> str:
    """-u USER without a password: asked for as curl asks, from the terminal without echo
    when there is one, else a line of standard input."""
    prompt = f"Enter host password for user '{user}':"
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(prompt, stream=sys.stderr)
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    sys.stderr.write("\n")
    return line.rstrip("\r\n")


def tls_context(args: argparse.Namespace, http2: bool, http1: bool) -> ssl.SSLContext:
    """The TLS settings of --cacert, --capath, -k, -E/--key and --tlsv1.x."""
    verify: Any = True
    if args.insecure:
        verify = False
    elif args.cacert:
        verify = args.cacert
    cert: Any = None
    if args.cert:
        path, _, password = args.cert.partition(":")
        cert = (path, args.key or path, password) if password else \
            (path, args.key) if args.key else path
    try:
        ctx = make_ssl_context(verify, cert, http2, http1)
        if args.capath and not args.insecure:
            ctx.load_verify_locations(capath=args.capath)
    except (OSError, ssl.SSLError) as exc:
        raise CommandError(f"cannot load the TLS files: {exc}", SSL_CERTPROBLEM) from None
    if args.tls_min == "1.3":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if args.tls_max == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if args.ciphers:
        try:
            ctx.set_ciphers(args.ciphers)
        except ssl.SSLError:
            raise CommandError(f"failed setting cipher list: {args.ciphers}",
                               SSL_CIPHER) from None
    return ctx


class Pinned:
    """--resolve: the addresses given for some names; other names as the client would look
    them up (through `fallback`, the recursive resolver, or getaddrinfo). dnspython's
    `resolve(qname, rdtype)` shape, which the client asks for A and AAAA."""

    def __init__(self, pins: dict[str, list[str]], fallback: Any) -> None:
        self.pins = pins
        self.fallback = fallback

    async def resolve(self, qname: str, rdtype: str) -> Any:
        pinned = self.pins.get(qname.lower().rstrip("."))
        if pinned is None:
            if self.fallback is not None:
                return await self.fallback.resolve(qname, rdtype)
            pinned, _ = await resolve_host(qname, 0)  # getaddrinfo, as without --resolve
        found = [a for a in pinned if (":" in a) == (rdtype == "AAAA")]
        if not found:
            raise LookupError(f"no {rdtype} address")
        return _Answer(found)


@dataclass
class _Answer:
    rrset: list[str]


def pins(entries: list[str], url: str, connect_to: Sequence[str] = ()
         ) -> dict[str, list[str]]:
    """--resolve HOST:PORT:ADDR[,ADDR...] entries for the URL's port (or a port
    --connect-to names), by host."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        ports = {parts.port or (443 if parts.scheme == "https" else 80)}
    except ValueError:
        ports = set()
    for entry in connect_to:
        port_text = entry.rsplit(":", 1)[-1].strip()
        if port_text.isdigit():
            ports.add(int(port_text))
    pins: dict[str, list[str]] = {}
    for entry in entries:
        host, sep1, rest = entry.partition(":")
        port_text, sep2, addrs = rest.partition(":")
        if not (sep1 and sep2 and host and port_text.isdigit() and addrs):
            raise CommandError(f"--resolve needs HOST:PORT:ADDRESS, not {entry!r}")
        if int(port_text) in ports:
            pins[host.lower()] = [a.strip().strip("[]") for a in addrs.split(",")]
    return pins


CONNECT_TO_SYNTAX = 49  # CURLE_SETOPT_OPTION_SYNTAX: --connect-to's port that is none


def _strtol(text: str) -> tuple[int | None, str]:
    """C's strtol in base 10: the number at the start of `text` (blanks skipped, a sign
    taken) and what follows it; None when there is no number."""
    m = re.match(r"\s*([+-]?\d+)", text)
    return (int(m[1]), text[m.end():]) if m else (None, text)


def _connect_target(text: str) -> tuple[str, int]:
    """HOST2:PORT2 of a --connect-to entry as curl reads it: an [IPv6] host, an empty
    host ("") or port (-1) keeping the URL's; a port that is no number from 0 to 65535 is
    curl's error 49."""
    first, host_end, port_from = 0, -1, 0
    if text.startswith("["):  # to the "]" that ends the address, if it is there
        m = re.match(r"[0-9A-Fa-f:.]*(?:%[A-Za-z0-9\-._~]*)?", text[1:])
        assert m is not None  # every part may be empty
        first = port_from = 1 + m.end()
        if text[port_from:port_from + 1] == "]":
            host_end, port_from = port_from, port_from + 1
        first = 1
    colon = text.find(":", port_from)
    host = text[first:host_end if host_end >= 0 else colon if colon >= 0 else len(text)]
    port = -1
    if colon >= 0 and text[colon + 1:]:
        port_text = text[colon + 1:]
        number, after = _strtol(port_text)
        if after or number is None or not 0 <= number <= 65535:
            raise CommandError("No valid port number in connect to host string "
                               f"({port_text})", CONNECT_TO_SYNTAX)
        port = number
    return host, port


def connect_to(entries: list[str]) -> Callable[[str, int], tuple[str, int]]:
    """--connect-to HOST1:PORT1:HOST2:PORT2 entries as the transport's `connect_to`: for a
    URL's host and port, the first entry that fits (an empty HOST1 or PORT1 fits any) and
    says where to go instead; an empty HOST2 or PORT2 keeps the URL's, as curl's."""
    def where(host: str, port: int) -> tuple[str, int]:
        named = f"[{host}]" if ":" in host else host
        for entry in entries:
            if entry.startswith(":"):
                rest = entry[1:]
            elif entry[:len(named)].lower() == named.lower() and \
                    entry[len(named):len(named) + 1] == ":":
                rest = entry[len(named) + 1:]
            else:
                continue
            if rest.startswith(":"):
                rest = rest[1:]
            else:
                colon = rest.find(":")
                number, after = _strtol(rest[:colon]) if colon >= 0 else (None, "")
                if number != port or after:
                    continue
                rest = rest[colon + 1:]
            if not rest:
                continue
            to_host, to_port = _connect_target(rest)
            if to_host or to_port >= 0:
                return to_host or host, port if to_port < 0 else to_port
        return host, port
    return where


def make_resolver(root_hints: str, port: int | None = None,
                  query_localhost: bool = False) -> Any:
    """The recursive resolver that a package registers as the ``recursive`` entry point of
    the ``corenet.resolvers`` group (corenet's distribution registers its ``resolver``),
    loaded only here: plain fetches must not pay for (or need) it."""
    import importlib.metadata

    cls = None
    for ep in importlib.metadata.entry_points(group="corenet.resolvers", name="recursive"):
        try:
            cls = ep.load()
        except ImportError:
            cls = None
        break
    if cls is None:
        raise CommandError("--resolve-with needs corenet's resolver package ('resolver'), "
                         "which is not installed")
    if not os.path.exists(root_hints):
        raise CommandError(f"root hints file {root_hints!r} not found")
    kw: dict[str, Any] = {"root_hints": root_hints}
    if port is not None:
        kw["port"] = port
    if query_localhost:
        kw["do_not_query_localhost"] = False
    return cls(**kw)


def cookie_jar(args: argparse.Namespace) -> http.cookiejar.MozillaCookieJar:
    """The cookie engine: loaded from -b FILE when given (a -b with '=' is a header)."""
    jar = http.cookiejar.MozillaCookieJar()
    if args.cookie and "=" not in args.cookie:
        try:
            jar.load(args.cookie, ignore_discard=True, ignore_expires=True)
        except OSError:
            pass  # as curl: a cookie file that cannot be read is no cookies
        except http.cookiejar.LoadError as exc:
            raise CommandError(f"cannot load cookies from {args.cookie}: {exc}", READ_ERROR)
        for c in jar:
            if c.expires == 0:  # curl writes a session cookie's expiry as 0
                c.expires, c.discard = None, True
            if "." not in c.domain.strip("."):  # http.cookiejar's name for a dotless host
                c.domain += ".local"
    return jar


def save_cookies(jar: http.cookiejar.CookieJar, path: str) -> None:
    out = http.cookiejar.MozillaCookieJar()
    for c in jar:
        c = copy.copy(c)
        if c.domain.endswith(".local") and "." not in c.domain[:-6].strip("."):
            c.domain = c.domain[:-6]  # "localhost", as curl writes it
        if c.expires is None:
            c.expires = 0  # a session cookie, as curl writes it
        out.set_cookie(c)
    try:
        out.save(path, ignore_discard=True, ignore_expires=True)
    except OSError as exc:
        raise CommandError(f"cannot write cookies to {path}: {exc.strerror or exc}",
                         WRITE_ERROR) from None
