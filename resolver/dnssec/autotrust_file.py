"""The state file of an RFC 5011 trust point, in Unbound's ``auto-trust-anchor-file`` format.

The file is a zone-file-like list of records for one zone. Written by a resolver, it starts
with a header of ``;;`` lines (``;;id: NAME CLASS``, ``;;last_queried:``, ``;;last_success:``,
``;;next_probe_time:``, ``;;query_failed:``, ``;;query_interval:``, ``;;retry_time:``) and
each DNSKEY line ends with ``;;state=N [ NAME ] ;;count=N ;;lastchange=SECONDS``;
``;;REVOKED`` first says every key was revoked. A file without the header is an initial
anchor (DS and/or DNSKEY lines, as for ``trust-anchor-file``): its keys are Valid. So a
state file moves between Unbound and corenet either way.

:func:`write` replaces the file atomically: a temporary file beside it is written, flushed
to disk (fsync) and renamed over it, so a crash leaves the old file or the new one, never a
part; the directory must therefore be writable by the daemon's user.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from resolver.dnssec.autotrust import State, TrackedKey, TrustPoint
from resolver.dnssec.trust_anchor import TrustAnchorError

_HEADER_INTS = {";;last_queried:": "last_queried", ";;last_success:": "last_success",
                ";;next_probe_time:": "next_probe_time", ";;query_failed:": "query_failed",
                ";;query_interval:": "query_interval", ";;retry_time:": "retry_time"}
_STATE_NAMES = {State.START: "  START  ", State.ADDPEND: " ADDPEND ",
                State.VALID: "  VALID  ", State.MISSING: " MISSING ",
                State.REVOKED: " REVOKED ", State.REMOVED: " REMOVED "}


def read(path: str | os.PathLike) -> TrustPoint:
    """The trust point a state file (or an initial anchor file) holds."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise TrustAnchorError(f"cannot read auto trust anchor {path}: {e.strerror}") \
            from None
    return parse(text, str(path))


def _int_after(line: str, tag: str) -> int:
    m = re.match(r"\s*(\d+)", line[len(tag):])
    return int(m.group(1)) if m else 0


def _logical_lines(text: str):
    """(line number, line) with a record in parentheses over several lines joined into
    one (its comments dropped but the last line's, where a state file keeps its own)."""
    pending, start = [], 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        data, sep, comment = raw.partition(";")
        if pending:
            pending.append(data)
            if ")" in data:
                yield start, " ".join(pending).replace("(", " ").replace(")", " ") + sep + comment
                pending = []
            continue
        if "(" in data and ")" not in data:
            pending, start = [data], lineno
            continue
        yield lineno, raw
    if pending:
        yield start, " ".join(pending)


def parse(text: str, where: str = "auto trust anchor") -> TrustPoint:
    tp: TrustPoint | None = None
    header = revoked = False
    origin: dns.name.Name | None = None
    for lineno, raw in _logical_lines(text):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(";;id: "):
            header = True
            try:
                name = dns.name.from_text(line[6:].split()[0])
            except (IndexError, dns.exception.DNSException) as e:
                raise TrustAnchorError(f"{where}:{lineno}: bad ;;id line: {e}") from None
            if tp is not None and tp.name != name:
                raise TrustAnchorError(f"{where}:{lineno}: a second zone ({name}); one auto "
                                       "trust anchor file holds one zone")
            tp = tp or TrustPoint(name)
            continue
        if line.startswith(";;REVOKED"):
            revoked = True
            continue
        tag = next((t for t in _HEADER_INTS if line.startswith(t)), None)
        if tag is not None:
            if tp is not None:
                setattr(tp, _HEADER_INTS[tag], _int_after(line, tag))
            continue
        if line.startswith("$ORIGIN"):
            try:
                origin = dns.name.from_text(line.split()[1])
            except (IndexError, dns.exception.DNSException) as e:
                raise TrustAnchorError(f"{where}:{lineno}: bad $ORIGIN: {e}") from None
            continue
        data, _, comment = line.partition(";")
        data = data.strip()
        if not data or data.startswith("$"):
            continue
        tok = data.split()
        try:
            i = next(i for i, t in enumerate(tok) if t.upper() in ("DS", "DNSKEY"))
        except StopIteration:
            raise TrustAnchorError(f"{where}:{lineno}: not a DS or DNSKEY record: {data!r}") \
                from None
        try:
            name = dns.name.from_text(tok[0], origin or dns.name.root)
            rdtype = dns.rdatatype.from_text(tok[i])
            rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, " ".join(tok[i + 1:]))
            ttl = next((int(t) for t in tok[1:i] if t.isdigit()), 0)
        except (dns.exception.DNSException, ValueError) as e:
            raise TrustAnchorError(f"{where}:{lineno}: {tok[i].upper()} record: "
                                   f"{e or type(e).__name__}") from None
        if tp is None:
            tp = TrustPoint(name)
        elif tp.name != name:
            raise TrustAnchorError(f"{where}:{lineno}: {name} is not {tp.name}; one auto "
                                   "trust anchor file holds one zone")
        if rdtype == dns.rdatatype.DS:
            tp.ds.append(rd)
            continue
        m = re.search(r"state=(\d)", comment)
        if m is None and header:
            raise TrustAnchorError(f"{where}:{lineno}: a key in a state file has no "
                                   ";;state= annotation")
        state = State(int(m.group(1))) if m and int(m.group(1)) <= State.REMOVED \
            else (State.START if m else State.VALID)
        count = re.search(r"count=(\d+)", comment)
        last = re.search(r"lastchange=(\d+)", comment)
        tp.keys.append(TrackedKey(rd, state, ttl=ttl,
                                  pending_count=int(count.group(1)) if count else 0,
                                  last_change=int(last.group(1)) if last else 0))
    if tp is None or (not tp.keys and not tp.ds):
        raise TrustAnchorError(f"no DS or DNSKEY record in auto trust anchor {where}")
    tp.revoked = revoked
    return tp


def _when(t: int) -> str:
    return time.ctime(t) + "\n"


def render(tp: TrustPoint) -> str:
    """The state file's text (Unbound's layout): Valid, Missing, AddPend and Revoked keys;
    Start and Removed ones are not kept, nor DS records."""
    out = ["; autotrust trust anchor file\n"]
    if tp.revoked:
        out.append(";;REVOKED\n; The zone has all keys revoked, and is\n"
                   "; considered as if it has no trust anchors.\n"
                   "; the remainder of the file is the last probe.\n"
                   "; to restart the trust anchor, overwrite this file.\n"
                   "; with one containing valid DNSKEYs or DSes.\n")
    out.append(f";;id: {tp.name.to_text()} 1\n")
    for tag in (";;last_queried:", ";;last_success:", ";;next_probe_time:"):
        v = getattr(tp, _HEADER_INTS[tag])
        out.append(f"{tag} {v} ;;{_when(v)}")
    for tag in (";;query_failed:", ";;query_interval:", ";;retry_time:"):
        out.append(f"{tag} {getattr(tp, _HEADER_INTS[tag])}\n")
    for k in tp.keys:
        if k.state in (State.START, State.REMOVED):
            continue
        out.append(f"{tp.name.to_text()}\t{k.ttl}\tIN\tDNSKEY\t{k.dnskey.to_text()} "
                   f";;state={int(k.state)} [{_STATE_NAMES[k.state]}] "
                   f";;count={k.pending_count} ;;lastchange={k.last_change} "
                   f";;{_when(k.last_change)}")
    return "".join(out)


def write(path: str | os.PathLike, tp: TrustPoint) -> None:
    """Replaces ``path`` with ``tp``'s state atomically (temporary file beside it, fsync,
    rename); raises OSError with the file named when it cannot."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}-tmp")
    data = render(tp).encode()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as e:
        raise OSError(e.errno, f"cannot write the auto trust anchor state beside {path} "
                      f"({tmp}: {e.strerror}); its directory must be writable by the "
                      "daemon's user") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def writable(path: str | os.PathLike) -> str | None:
    """Why the state file at ``path`` could not be replaced by this process, or None."""
    path = Path(path)
    d = path.parent
    if not os.access(d, os.W_OK | os.X_OK):
        return (f"the directory {d} of auto trust anchor file {path} is not writable by this "
                "user (the file is replaced by writing a new one beside it)")
    return None
