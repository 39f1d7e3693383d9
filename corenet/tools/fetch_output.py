"""What corenet-fetch writes, as curl writes it: the body to its file or standard output,
the heads of -i/-I/-D, -v's account, the progress bar and -w's report of a ``Transfer``."""
from __future__ import annotations

import argparse
import json
import os
import re
import stat
import sys
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from corenet.tools.fetch_codes import WRITE_ERROR, CommandError


PROGRESS_MIN = 1024 * 1024  # bodies smaller than this finish before a bar would help


def render_progress(done: int, total: int | None, elapsed: float, width: int = 30) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    speed = f"{rate / 1e6:7.2f} MB/s"
    if total:
        frac = min(1.0, done / total)
        bar = "#" * int(frac * width)
        return f"\r[{bar:<{width}}] {frac * 100:5.1f}% {done / 1e6:9.2f} MB {speed}"
    return f"\r{done / 1e6:9.2f} MB {speed}"


# -w %{http_version}: curl's name for each version.
_CURL_VERSIONS = {"HTTP/1.0": "1", "HTTP/1.1": "1.1", "HTTP/2": "2", "HTTP/3": "3"}


@dataclass
class Transfer:
    """What -w reports: filled in as the transfer goes, so that a failed one reports too."""
    url: str
    start: float = field(default_factory=time.monotonic)
    response: Any = None
    starttransfer: float = 0.0
    end: float = 0.0
    size_download: int = 0
    exitcode: int = 0
    errormsg: str = ""
    method: str = "GET"
    filename: str = ""      # the output file, "" for standard output
    urlnum: int = 0         # the URL's place on the command line, from 0
    local: Any = None       # the (address, port) the last connection was made from
    redirected: float = 0.0  # when the last redirect followed had come
    status: int | None = None  # the status told, when not the response's (-z's 304)


def _heads(r: Any) -> tuple:
    return (*r.history, r) if r is not None else ()


def request_line(req: Any, h2: bool = False) -> str:
    """A request's line as sent (over HTTP/1; `h2`: as curl shows an HTTP/2 one): the
    target and the version its extensions asked for, if any."""
    ext = req.extensions
    target = ext.get("target") or req.url.raw_path
    version = "HTTP/2" if h2 else ext.get("http_version") or "HTTP/1.1"
    if isinstance(target, bytes):
        target = target.decode("latin-1")
    if isinstance(version, bytes):
        version = version.decode("latin-1")
    return f"{req.method} {target} {version}"


def _request_size(req: Any) -> int:
    """The bytes of a request's head as sent over HTTP/1 (-w's size_request counts the
    body's too)."""
    line = request_line(req) + "\r\n"
    return len(line) + sum(len(k) + len(v) + 4 for k, v in req.headers.raw) + 2


def _effective_url(r: Any) -> str:
    """The URL of the last request, with the target it was sent with (--path-as-is)."""
    target = r.request.extensions.get("target") if r.request is not None else None
    if not target:
        return str(r.url)
    if isinstance(target, bytes):
        target = target.decode("latin-1")
    return f"{r.url.scheme}://{r.url.netloc.decode('ascii')}{target}"


def _write_out_vars(t: Transfer) -> dict[str, str]:
    r = t.response
    end = t.end or time.monotonic()
    addr = r.extensions.get("server_addr") if r is not None else None
    connected, secured = r.extensions.get("connect_times", (0.0, 0.0)) if r is not None \
        else (0.0, 0.0)
    resolved = r.extensions.get("resolved_at", 0.0) if r is not None else 0.0
    total = end - t.start
    redirect = ""
    if r is not None and r.has_redirect_location:  # one not followed
        redirect = str(r.url.join(r.headers["location"]))
    heads = _heads(r)
    requests = [h.request for h in heads if h.request is not None]
    length = (q.headers.get("content-length", "") for q in requests)
    upload = sum(int(n) for n in length if n.isdigit())

    def since_start(at: float) -> str:      # 0 for a connection opened before this transfer
        return f"{at - t.start:.6f}" if at >= t.start else "0.000000"

    status = t.status or (r.status_code if r is not None else 0)
    return {
        "http_code": f"{status:03d}",
        "response_code": f"{status:03d}",
        "http_version": _CURL_VERSIONS.get(r.http_version, r.http_version)
        if r is not None else "0",
        "time_total": f"{total:.6f}",
        "time_namelookup": since_start(resolved),
        "time_connect": since_start(connected),
        "time_appconnect": since_start(secured),
        "time_pretransfer": since_start(max(connected, secured)),
        "time_redirect": since_start(t.redirected) if r is not None and r.history
        else "0.000000",
        "time_starttransfer": f"{t.starttransfer - t.start:.6f}" if t.starttransfer
        else "0.000000",
        "size_download": str(t.size_download),
        "size_header": str(sum(len(head_block(h)) for h in heads)),
        "size_request": str(sum(_request_size(q) for q in requests) + upload),
        "size_upload": str(upload),
        "num_headers": str(len(r.headers.raw)) if r is not None else "0",
        "num_connects": str(sum(1 for h in heads
                                if not h.extensions.get("connection_reused", True))),
        "url_effective": _effective_url(r) if r is not None else t.url,
        "url": t.url,
        "urlnum": str(t.urlnum),
        "method": t.method,
        "scheme": r.url.scheme.upper() if r is not None else "",
        "filename_effective": t.filename,
        "content_type": (r.headers.get("content-type") or "") if r is not None else "",
        "num_redirects": str(len(r.history)) if r is not None else "0",
        "remote_ip": str(addr[0]) if addr else "",
        "remote_port": str(addr[1]) if addr else "",
        "local_ip": str(t.local[0]) if t.local else "",
        "local_port": str(t.local[1]) if t.local else "",
        "speed_download": str(int(t.size_download / total) if total > 0 else 0),
        "redirect_url": redirect,
        "speed_upload": str(int(upload / total) if total > 0 else 0),
        "http_connect": "000",
        "referer": (r.request.headers.get("referer") or "") if r is not None else "",
        "ssl_verify_result": "0",
        "proxy_ssl_verify_result": "0",
        "exitcode": str(t.exitcode),
        "errormsg": t.errormsg,
    }


# -w %{json}: the variables that are numbers in curl's, and those that are null when unset.
_JSON_NUMBERS = frozenset({"http_code", "response_code", "size_download", "num_redirects",
                           "remote_port", "speed_download", "exitcode", "size_header",
                           "size_request", "size_upload", "num_headers", "num_connects",
                           "urlnum", "local_port", "ssl_verify_result",
                           "proxy_ssl_verify_result", "speed_upload", "http_connect"})
_JSON_NULLS = frozenset({"redirect_url", "errormsg", "content_type", "scheme", "referer"})


def _json(values: dict[str, str]) -> str:
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name.startswith("time_"):
            out[name] = float(value)
        elif name in _JSON_NUMBERS:
            out[name] = int(value) if value else 0
        elif name in _JSON_NULLS and not value:
            out[name] = None
        else:
            out[name] = value
    return json.dumps(out, sort_keys=True, separators=(",", ":"))  # as curl's


def _header_json(r: Any) -> str:
    """-w %{header_json}: the last response's headers as curl writes them, one name (in
    lower case) a line with the list of its values."""
    if r is None:
        return "{\n}"
    values: dict[str, list[str]] = {}
    for k, v in r.headers.multi_items():
        values.setdefault(k.lower(), []).append(v)
    return "{" + ",\n".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in values.items()) \
        + "\n}"


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}
_WRITE_OUT = re.compile(r"%\{([a-z_]+)\}|%header\{([^}]*)\}|%%|\\(.)", re.S)


def write_out(fmt: str, t: Transfer, err: Any) -> list[tuple[str, str]]:
    """curl's -w, as the pieces to write, each with its stream ("stdout" or "stderr"):
    %{name} replaced (%{json}: every variable, as a JSON object; %{header_json} the
    headers), %header{name} a header's value, %{stderr} and %{stdout} switching streams,
    %{onerror} ending the format unless the transfer failed, %% is %, \\n \\r \\t escapes.
    An unknown variable is left out, with curl's warning on `err`."""
    if fmt.startswith("@"):
        with open(fmt[1:]) if fmt != "@-" else sys.stdin as f:
            fmt = f.read()
    values = _write_out_vars(t)
    values["json"] = _json(values)
    values["header_json"] = _header_json(t.response)
    pieces: list[tuple[str, str]] = []
    stream, at = "stdout", 0
    for m in _WRITE_OUT.finditer(fmt):
        pieces.append((stream, fmt[at:m.start()]))
        at = m.end()
        name, header, escaped = m[1], m[2], m[3]
        if name in ("stdout", "stderr"):
            stream = name
        elif name == "onerror":
            if not t.exitcode:
                return [p for p in pieces if p[1]]
        elif name is not None:
            if name not in values:
                err.write(f"corenet-fetch: unknown --write-out variable: '{name}'\n")
            pieces.append((stream, values.get(name, "")))
        elif header is not None:
            r = t.response
            pieces.append((stream, ", ".join(r.headers.get_list(header)) if r is not None
                           else ""))
        elif escaped is not None:
            pieces.append((stream, _ESCAPES.get(escaped, m[0])))
        else:
            pieces.append((stream, "%"))
    pieces.append((stream, fmt[at:]))
    return [p for p in pieces if p[1]]


def status_line(r: Any) -> str:
    """The status line as curl shows it: HTTP/2 has no reason phrase, and curl writes
    the space before it all the same."""
    reason = "" if r.http_version == "HTTP/2" else r.reason_phrase
    return f"{r.http_version} {r.status_code} {reason}"


def head_block(r: Any) -> bytes:
    """The status line and headers as curl -i and -I print them."""
    lines = [status_line(r)]
    lines += [f"{k}: {v}" for k, v in r.headers.frozen()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _connection_info(r: Any, connections: dict[Any, int]) -> list[str]:
    """curl's words for the connection an exchange went on: made (and its TLS and ALPN),
    or used again. `connections` numbers the connections of the command, as curl's #0,
    #1..."""
    stream = r.extensions.get("network_stream")
    addr = r.extensions.get("server_addr") or ("", 0)
    host = r.url.host
    ip = f"[{addr[0]}]" if ":" in str(addr[0]) else str(addr[0])
    if r.extensions.get("connection_reused") and stream in connections:
        return [f"Re-using existing connection #{connections[stream]} with host {host}"]
    number = connections.setdefault(stream, len(connections))
    lines = [f"  Trying {ip}:{addr[1]}...",
             f"Connected to {host} ({addr[0]}) port {addr[1]} (#{number})"]
    so = r.extensions.get("ssl_object")
    if r.url.scheme == "https" and so is not None:
        lines.append(f"SSL connection using {so.version()} / {so.cipher()[0]}")
        alpn = so.selected_alpn_protocol()
        lines.append(f"ALPN: server accepted {alpn}" if alpn else
                     "ALPN: server did not agree on a protocol. Uses default.")
    return lines


def verbose(r: Any, err: Any, connections: dict[Any, int]) -> None:
    """curl -v's account of one exchange: the connection (made, or used again), TLS and
    ALPN, the request and the response head, header lines ending in CRLF as curl's."""
    for line in _connection_info(r, connections):
        err.write(f"* {line}\n")
    req = r.request
    if req is not None:
        h2 = r.http_version == "HTTP/2"  # curl shows HTTP/2's names in lower case, but Host
        err.write(f"> {request_line(req, h2)}\r\n")
        for k, v in req.headers.frozen():
            name = k.lower() if h2 and k.lower() != "host" else k
            err.write(f"> {name}: {'*****' if k.lower() == 'authorization' else v}\r\n")
        err.write("> \r\n")
    err.write(f"< {status_line(r)}\r\n")
    for k, v in r.headers.frozen():
        err.write(f"< {k}: {v}\r\n")
    err.write("< \r\n")


_FRAMING = ("content-length", "transfer-encoding")


def _request_head(req: Any, h2: bool) -> bytes:
    """A request's head as it went: its line, Host, the other headers, the framing ones
    last but for HTTP/1.1's one plain Content-Length, which goes where it was given
    (HTTP/2's as curl shows them: lower-case names but Host)."""
    items = list(req.headers.frozen())
    lengths = [v for k, v in items if k.lower() == "content-length"]
    plain = len(lengths) == 1 and lengths[0].isascii() and lengths[0].isdigit()
    kept = ("content-length",) if plain and not h2 else ()
    last = tuple(f for f in _FRAMING if f not in kept)
    items = ([(k, v) for k, v in items if k.lower() == "host"]
             + [(k, v) for k, v in items if k.lower() not in ("host", *last)]
             + [(k, v) for k, v in items if k.lower() in last])
    lines = [request_line(req, h2)] + [
        f"{k.lower() if h2 and k.lower() != 'host' else k}: {v}" for k, v in items]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Trace:
    """--trace and --trace-ascii: curl's dump of what went and came (`== Info:` lines,
    then `=> Send header`, `=> Send data`, `<= Recv header` for each header line, `<= Recv
    data` for each piece of body), to a file, - for standard output or % for stderr."""

    def __init__(self, name: str, ascii: bool) -> None:
        self.name, self.ascii = name, ascii
        self.stream: Any = None
        self.connections: dict[Any, int] = {}
        self.hosts: dict[Any, str] = {}
        self.closing: set[Any] = set()  # connections the server or HTTP/1.0 ends
        self.failed = False  # a write failed: the trace given up

    def _out(self) -> Any:
        if self.stream is None:
            if self.name == "-":
                self.stream = sys.stdout.buffer
            elif self.name == "%":
                self.stream = sys.stderr.buffer
            else:
                try:
                    self.stream = open(self.name, "wb")
                except OSError:  # as curl: the trace goes to stderr instead
                    self.name, self.stream = "%", sys.stderr.buffer
        return self.stream

    def _write(self, data: bytes) -> None:
        """As curl's: a trace that cannot be written (a closed pipe, a full disk) is
        given up, the transfer goes on."""
        if self.failed:
            return
        try:
            self._out().write(data)
        except OSError:
            self.failed = True

    def info(self, text: str) -> None:
        self._write(f"== Info: {text}\n".encode("latin-1", "replace"))

    def dump(self, title: str, data: bytes) -> None:
        """One block in curl's layout: 16 bytes a line in hex and text, or 64 of text
        with a new line after each CRLF (--trace-ascii); "." for what is not printable."""
        width = 0x40 if self.ascii else 0x10
        out = [f"{title}, {len(data)} bytes (0x{len(data):x})\n"]
        i = 0
        while i < len(data):
            line = [f"{i:04x}: "]
            if not self.ascii:
                line += [f"{data[i + c]:02x} " if i + c < len(data) else "   "
                         for c in range(width)]
            step = width
            c = 0
            while c < width and i + c < len(data):
                if self.ascii and data[i + c:i + c + 2] == b"\r\n":
                    step = c + 2
                    break
                byte = data[i + c]
                line.append(chr(byte) if 0x20 <= byte < 0x80 else ".")
                if self.ascii and data[i + c + 1:i + c + 3] == b"\r\n":
                    step = c + 3
                    break
                c += 1
            out.append("".join(line) + "\n")
            i += step
        self._write("".join(out).encode("latin-1"))

    def exchange(self, r: Any, body: bool) -> None:
        """One request and the head of its response (`body`: its body too, read)."""
        for line in _connection_info(r, self.connections):
            self.info(line)
        stream = r.extensions.get("network_stream")
        self.hosts[stream] = r.url.host
        req = r.request
        if r.headers.get("connection", "").lower() == "close" or req is not None and \
                req.extensions.get("http_version") in (b"HTTP/1.0", "HTTP/1.0"):
            self.closing.add(stream)
        h2 = r.http_version == "HTTP/2"
        if req is not None:
            self.dump("=> Send header", _request_head(req, h2))
            if isinstance(req.body, bytes) and req.body:
                self.dump("=> Send data", req.body)
        for field in head_block(r).split(b"\r\n")[:-1]:
            self.dump("<= Recv header", field + b"\r\n")
        if body and r.content:
            self.dump("<= Recv data", r.content)

    def close(self) -> None:
        """The connections left open said, as curl ends its trace; the file closed."""
        if self.stream is None:
            return
        for stream, number in self.connections.items():
            self.info(f"Closing connection {number}" if stream in self.closing else
                      f"Connection #{number} to host {self.hosts.get(stream, '')} left intact")
        try:
            if self.name not in ("-", "%"):
                self.stream.close()
            else:
                self.stream.flush()
        except OSError:
            pass
        self.stream = None


def dump_headers(name: str, heads: tuple) -> None:
    """-D: the status lines and headers received, to a file or (-) standard output (which
    -o does not redirect)."""
    block = b"".join(head_block(h) for h in heads)
    if name == "-":
        write(sys.stdout.buffer, block)
        return
    try:
        with open(name, "wb") as f:
            f.write(block)
    except OSError as exc:
        raise CommandError(f"cannot write {name}: {exc.strerror or exc}", WRITE_ERROR) \
            from None


def write(out: BinaryIO, data: bytes) -> None:
    try:
        out.write(data)
    except OSError as exc:
        raise CommandError(f"failure writing output: {exc.strerror or exc}", WRITE_ERROR) \
            from None


def output_name(args: argparse.Namespace) -> str | None:
    """-o's file, or -O's name from the URL; under --output-dir, its directories made
    with --create-dirs."""
    name = args.output
    if not name and args.remote_name:
        from urllib.parse import unquote, urlsplit

        name = unquote(urlsplit(args.url).path.rsplit("/", 1)[-1])
        if not name:
            raise CommandError("-O: the URL has no file name", WRITE_ERROR)
    if not name or name == "-":
        return None
    if args.output_dir:
        name = os.path.join(args.output_dir, name)
    if args.create_dirs and os.path.dirname(name):
        try:
            os.makedirs(os.path.dirname(name), exist_ok=True)
        except OSError as exc:
            raise CommandError(f"cannot create the directory of {name}: "
                               f"{exc.strerror or exc}", WRITE_ERROR) from None
    return name


class OpenedOnResponse:
    """An output file opened when the response comes, not before: -z's, which a 304
    leaves as it is, and -O -J's, named by the response's Content-Disposition filename
    (its last path segment, else the URL's name) and never over a file that is there
    already, as curl."""

    def __init__(self, fallback: str, output_dir: str | None, by_header: bool) -> None:
        self.name, self.output_dir, self.by_header = fallback, output_dir, by_header
        self.file: BinaryIO | None = None

    def open_for(self, r: Any) -> str:
        if not self.by_header:
            try:
                self.file = open(self.name, "wb")
            except OSError as exc:
                raise CommandError(f"Failed to open the file {self.name}: "
                                   f"{exc.strerror or exc}", WRITE_ERROR) from None
            return self.name
        m = re.search(r'filename\s*=\s*("([^"]*)"|[^;\s]*)',
                      r.headers.get("content-disposition", ""), re.I)
        given = (m[2] if m[2] is not None else m[1]) if m else ""
        name = re.split(r"[/\\]", given)[-1] or self.name
        if self.output_dir:
            name = os.path.join(self.output_dir, name)
        try:
            self.file = open(name, "xb")
        except FileExistsError:
            raise CommandError(f"Failed to open the file {name}: File exists",
                               WRITE_ERROR) from None
        except OSError as exc:
            raise CommandError(f"Failed to open the file {name}: {exc.strerror or exc}",
                               WRITE_ERROR) from None
        self.name = name
        return name

    def write(self, data: bytes) -> int:
        assert self.file is not None, "open_for comes first"
        return self.file.write(data)

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def fileno(self) -> int:
        assert self.file is not None, "open_for comes first"
        return self.file.fileno()

    def seek(self, offset: int) -> int:
        assert self.file is not None, "open_for comes first"
        return self.file.seek(offset)

    def truncate(self) -> int:
        assert self.file is not None, "open_for comes first"
        return self.file.truncate()


def remote_time(name: str, r: Any) -> None:
    """-R: the file's time set to the response's Last-Modified, when it says one."""
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(r.headers.get("last-modified", "")).timestamp()
        os.utime(name, (when, when))
    except (TypeError, ValueError, OSError):
        pass  # no date, or one that cannot be read: the file keeps its time, as curl's


def rewind(out: BinaryIO, keep: int = 0) -> None:
    """-o's file emptied of what the failed attempt wrote, for the next one (its first
    `keep` bytes, those -C resumed after, kept). A device or a pipe (/dev/null, say)
    cannot be: that ends the command, as curl ends it."""
    if not stat.S_ISREG(os.fstat(out.fileno()).st_mode):
        raise CommandError("Failed to truncate file", WRITE_ERROR)
    out.seek(keep)
    out.truncate()
