"""dig's TSIG: ``-y [hmac:]NAME:SECRET`` and ``-k FILE`` (a BIND ``key`` statement, as
tsig-keygen writes it) read as dig reads them, the key made once before the look-ups (or
said why not, the queries then unsigned), and each reply's signature checked as it comes
(a transfer's messages in turn), what fails said as dig says it. dnspython does the
HMAC."""
from __future__ import annotations

import base64
import binascii
import re
import sys
import time

from resolver.tools.dig_options import (EXIT_USAGE, Fatal, KeySpec, UsageError, algorithm,
                                        name_error)

#: BIND's floor (in bits) under which a key is logged as too short to be secure
_SHORT_KEY_BITS = 64


class _KeyFileError(Exception):
    """A key file dig cannot read: why, in BIND's words."""


_TOKEN = re.compile(r'\s+|#[^\n]*|//[^\n]*|/\*.*?\*/|"([^"]*)"|([{};])|(/\*)|([^\s{};"]+)', re.S)


def _tokens(text: str) -> list[tuple[str, str]]:
    """The file's tokens as (kind, text): ``s`` a quoted string, ``p`` a ``{``, ``}`` or
    ``;``, ``w`` a word; blanks and comments (``#``, ``//``, ``/* */``) left out."""
    out, at = [], 0
    while at < len(text):
        m = _TOKEN.match(text, at)
        if m is None or m.group(3) is not None:     # an unclosed quote or comment
            raise _KeyFileError("unexpected end of input")
        at = m.end()
        if m.group(1) is not None:
            out.append(("s", m.group(1)))
        elif m.group(2) is not None:
            out.append(("p", m.group(2)))
        elif m.group(4) is not None:
            out.append(("w", m.group(4)))
    return out


def read_key_file(path: str) -> KeySpec:
    """The key of ``path``'s ``key "NAME" { algorithm ALG; secret "BASE64"; };`` as dig's
    -k reads it (raises :class:`_KeyFileError` with BIND's reason; :class:`Fatal` for a
    key without its algorithm or secret)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        raise _KeyFileError("file not found") from None
    except IsADirectoryError:
        raise _KeyFileError("not a file") from None
    except PermissionError:
        raise _KeyFileError("permission denied") from None
    except OSError as e:
        raise _KeyFileError(e.strerror or str(e)) from None
    tokens = _tokens(text)
    at = 0

    def take(kinds: str = "sw") -> str:
        nonlocal at
        if at >= len(tokens) or tokens[at][0] not in kinds:
            raise _KeyFileError("unexpected token")
        at += 1
        return tokens[at - 1][1]

    def semicolon() -> None:
        nonlocal at
        if at >= len(tokens) or tokens[at][1] != ";" or tokens[at][0] != "p":
            raise _KeyFileError("failure")     # BIND: "missing ';'"
        at += 1

    key: tuple[str, dict[str, str]] | None = None
    while at < len(tokens):
        if take("w").lower() != "key":
            raise _KeyFileError("failure")     # BIND: "unknown option"
        name = take()
        if take("p") != "{":
            raise _KeyFileError("unexpected token")
        fields: dict[str, str] = {}
        while True:
            word = take("pw")
            if word == "}":
                break
            if word.lower() not in ("algorithm", "secret"):
                raise _KeyFileError("failure")
            if word.lower() in fields:
                raise _KeyFileError("already exists")
            fields[word.lower()] = take()
            semicolon()
        semicolon()
        if key is not None:
            raise _KeyFileError("already exists")
        key = (name, fields)
    if key is None:
        raise _KeyFileError("not found")
    name, fields = key
    if "algorithm" not in fields or "secret" not in fields:
        raise Fatal("key must have algorithm and secret", EXIT_USAGE)
    return KeySpec(name, algorithm(fields["algorithm"]), fields["secret"])


def make_key(spec: KeySpec):
    """The dnspython key of ``spec``, or None after dig's ";; Couldn't create key NAME:
    WHY" (on stdout); a short secret is logged as BIND logs it (on stderr)."""
    import dns.name
    import dns.tsig

    why = None
    try:
        secret = base64.b64decode(re.sub(r"\s+", "", spec.secret), validate=True)
    except (binascii.Error, ValueError):
        why = "bad base64 encoding"
    if why is None and spec.algorithm is None:
        why = "algorithm is unsupported"
    if why is None:
        try:
            name = dns.name.from_text(spec.name)
        except Exception as e:
            why = name_error(e) or str(e)
    if why is not None:
        print(f";; Couldn't create key {spec.name}: {why}", flush=True)
        return None
    if len(secret) * 8 < _SHORT_KEY_BITS:
        now = time.time()
        stamp = time.strftime("%d-%b-%Y %H:%M:%S", time.localtime(now))
        print(f"{stamp}.{int(now * 1000) % 1000:03d} the key "
              f"'{name.to_text(omit_final_dot=True)}' is too short to be secure",
              file=sys.stderr, flush=True)
    return dns.tsig.Key(name, secret, spec.algorithm)


def setup(key_file: str | None, given: KeySpec | None):
    """The key the look-ups sign with, as dig makes it before asking: ``-k``'s file's
    (read, else said on stderr and none), else ``-y``'s; and whether a secret was given
    (dig's warning that the key was not used, when none could be made)."""
    if key_file is not None:
        try:
            given = read_key_file(key_file)
        except _KeyFileError as e:
            print(f"Couldn't read key from {key_file}: {e}", file=sys.stderr, flush=True)
            return None, False
    if given is None:
        return None, False
    return make_key(given), bool(given.secret)


class Checked:
    """dig's verdict on the signatures of the replies so far (one for the whole command,
    as dig's): false once one could not be verified."""
    validated = True


def check(q, r, wire: bytes, ctx=None, first: bool = True, xfr: bool = False):
    """The signature of the reply ``r`` (read from ``wire``) to the signed query ``q``
    checked, what fails said as dig says it (";; Couldn't verify signature: WHY"); the
    TSIG context a transfer's next message is checked with. A transfer's messages after
    the first may come unsigned (the next signature covers them); as in dig, a signed
    message that follows no signed one fails, and after a failure the next message is
    checked from this one's MAC."""
    import dns.message
    import dns.tsig

    why = None
    if r.tsig is None:
        if first or not xfr:
            why = "expected a TSIG or SIG(0)"
        elif ctx is not None:
            ctx.update(wire)
    elif xfr and not first and ctx is None:
        why = "tsig verify failure"
    else:
        try:
            m = dns.message.from_wire(wire, keyring=q.keyring, request_mac=q.mac,
                                      xfr=xfr, tsig_ctx=ctx, multi=xfr,
                                      ignore_trailing=True, one_rr_per_rrset=xfr)
            ctx = m.tsig_ctx
        except (dns.tsig.PeerBadTime, dns.tsig.BadTime):
            why = "clocks are unsynchronized"
        except dns.tsig.PeerError:
            why = "tsig indicates error"
        except Exception:
            why = "tsig verify failure"
    if why is not None:
        Checked.validated = False
        print(f";; Couldn't verify signature: {why}", flush=True)
        if xfr and r.tsig is not None:
            mac = r.tsig[0].mac
            ctx = dns.tsig.get_context(q.keyring)
            ctx.update(len(mac).to_bytes(2, "big") + mac)
    return ctx


#: BIND's names of a TSIG's error field
_TSIG_ERRORS = {16: "BADSIG", 17: "BADKEY", 18: "BADTIME", 19: "BADMODE", 20: "BADNAME",
                21: "BADALG", 22: "BADTRUNC"}


def tsig_text(rd, width: int, more: str | None = None) -> str:
    """A TSIG's data as BIND writes it: the MAC in base64 groups of ``width`` (0: one),
    over lines of their own in parentheses when ``more`` (+multi's line break) is given;
    the other data's size followed by a space, then the data in base64."""
    import dns.rcode
    mac = base64.b64encode(rd.mac).decode()
    groups = [mac[i:i + width] for i in range(0, len(mac), width)] if width else [mac]
    if not rd.mac:
        shown = ""
    elif more is not None:
        shown = " (" + "".join(more + g for g in groups) + " )"
    else:
        shown = " " + " ".join(groups)
    error = _TSIG_ERRORS.get(rd.error) or (dns.rcode.to_text(rd.error) if rd.error < 16
                                          else str(rd.error))
    return (f"{rd.algorithm} {rd.time_signed} {rd.fudge} {len(rd.mac)}{shown} "
            f"{rd.original_id} {error} {len(rd.other)} "
            + base64.b64encode(rd.other).decode())
