"""``corenet-resolver query`` with TSIG (dig's ``-y`` and ``-k``) side by side with BIND's
dig 9.18: against an NSD that knows the key (it signs its answers to signed queries and
transfers its zone only to them, over several messages for a big zone), with keys it does
not know or secrets it does not share, with key files good and bad, and against a fake
server whose signatures fail. The outputs are compared with the times, IDs, MACs and a
TSIG's other data masked."""
from __future__ import annotations

import base64
import re
import socket
import threading
import time
import types
from unittest import mock

import dns.message
import dns.rrset
import dns.tsig
import pytest

from test_dig_query import XFR_ZONE as ZONE
from test_dig_query import Recorder, _prog_free, _yaml_comparable, comparable, dig, query

SECRET = base64.b64encode(b"secret-secret-secret-secret!").decode()
KEY = ("xfr-key.", "hmac-sha256", SECRET)

#: a zone NSD transfers in several messages
BIG = ZONE + "".join(f"t{i} IN TXT \"{'x' * 200} {i}\"\n" for i in range(600))


@pytest.fixture(scope="module")
def signing(tmp_path_factory):
    """An NSD that knows KEY: it transfers example.com. and big.example. to loopback
    clients that sign with it, and not example.net."""
    from dnslab.nsd import nsd_on_loopback
    zones = {o: ZONE.format(origin=o) for o in ("example.com.", "example.net.")}
    zones["big.example."] = BIG.format(origin="big.example.")
    srv = nsd_on_loopback(tmp_path_factory.mktemp("tsig"), zones,
                          provide_xfr=("example.com.", "big.example."), tsig=KEY)
    yield srv
    srv.signal_stop()
    srv.wait_stopped(time.monotonic() + 10)


def tsig_free(text: str, yaml: bool = False) -> list[str]:
    """:func:`comparable` (+yaml's) with a TSIG's time, MAC, original ID and other data
    masked (the number of the MAC's groups and lines kept), and BIND's log stamp."""
    out, inside = [], False
    for line in (_yaml_comparable if yaml else comparable)(text):
        line = re.sub(r"^\d\d-[A-Z][a-z]{2}-\d{4} [\d:.]+ ", "STAMP ", line)
        m = re.match(r"(.*\bTSIG\s+\S+) \d+ (\d+ \d+)(.*)$", line)
        if m and not line.startswith(";"):
            head, rest = f"{m[1]} TIME {m[2]}", m[3]
            inside = rest.endswith("(")
        elif inside:                     # +multi: the MAC's lines
            head, rest = "", line
            inside = ")" not in line
        else:
            out.append(line)
            continue
        tail = re.search(r" \d+ [A-Z0-9]+ \d+ \S*$", rest)
        mac, tail_text = (rest[:tail.start()], rest[tail.start():]) if tail else (rest, "")
        tail_text = re.sub(r" \d+ ([A-Z0-9]+) (\d+) \S*$", r" ID \1 \2 OTHER", tail_text)
        out.append(head + re.sub(r"[A-Za-z0-9+/]+=*", "MAC", mac) + tail_text)
    return out


def both(*args: str):
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode, ours.stdout + ours.stderr + theirs.stdout
    yaml = "+yaml" in args
    assert tsig_free(ours.stdout, yaml) == tsig_free(theirs.stdout, yaml), \
        ours.stdout + theirs.stdout
    assert tsig_free(_prog_free(ours.stderr)) == tsig_free(_prog_free(theirs.stderr)), \
        ours.stderr + theirs.stderr
    return ours


@pytest.mark.parametrize("args", [
    ["-y", f"hmac-sha256:xfr-key.:{SECRET}", "www.example.com"],
    ["-y", f"HMAC-SHA256:xfr-key:{SECRET}", "www.example.com", "+multi"],
    ["-y", f"hmac-sha512:xfr-key.:{SECRET}", "www.example.com", "+noall", "+additional"],
    ["-y", f"hmac-sha512:xfr-key.:{SECRET}", "www.example.com", "+multi", "+nocomments"],
    ["-y", f"hmac-sha512:xfr-key.:{SECRET}", "www.example.com", "+split=8", "+nocrypto"],
    ["-y", f"hmac-sha1:xfr-key.:{SECRET}", "www.example.com", "+qr", "+nocookie"],
    ["-y", f"xfr-key.:{SECRET}", "www.example.com"],                 # HMAC-MD5
    ["-y", f"hmac-sha256:xfr-key.:{SECRET}", "www.example.com", "+short"],
    ["-y", f"hmac-sha512:xfr-key.:{SECRET}", "www.example.com", "+yaml", "+qr"],
    ["-y", f"hmac-sha256:xfr-key.:{SECRET}", "www.example.com", "+yaml", "+nocomments"],
    ["-y", f"hmac-sha256:xfr-key.:{SECRET}", "example.com", "axfr", "+yaml"],
    ["-y", f"hmac-sha256:xfr-key.:{SECRET}", "www.example.com", "+tcp", "+noadditional"],
    ["-y", f"hmac-sha256::xfr-key.:{SECRET}", "nope.example.com", "+noall", "+comments"],
    ["-y", f"xfr-key.::{SECRET}", "www.example.com", "+noall", "+answer", "+additional"],
    ["-y", f"hmac-sha256:xfr-key.:{SECRET}", "example.com", "axfr"],
    ["-y", f"hmac-sha256:xfr-key.:{SECRET}", "example.com", "axfr", "+comments", "+qr",
     "+nocookie"],
    ["-y", f"hmac-sha256:xfr-key.:{SECRET}", "example.com", "ixfr=3"],
    ["-y", f"hmac-sha256:xfr-key.:{SECRET}", "example.com", "ixfr=5", "+all"],
    ["-y", f"hmac-sha256:xfr-key.:{SECRET}", "big.example", "axfr"],
    ["-y", f"hmac-sha256:xfr-key.:{SECRET}", "big.example", "axfr", "+multi"],
    ["-y", f"hmac-sha256:xfr-key.:{SECRET}", "example.net", "axfr"],  # not transferred
    ["www.example.com", "-y", f"hmac-sha256:xfr-key.:{SECRET}", "txt.example.com", "TXT"],
])
def test_signed_queries_and_transfers_as_dig(signing, args):
    """The query signed, the reply's signature checked and shown in the TSIG pseudosection
    (a transfer's after its messages' records, each message of a big one checked in turn),
    the header counting it; the same text as dig's."""
    ours = both("@127.0.0.1", "-p", str(signing.port), *args)
    assert ours.returncode == 0
    assert "Couldn't verify" not in ours.stdout and "WARNING --" not in ours.stdout
    if not {"+short", "+noadditional", "+noall"} & set(args):     # shown, and the same
        assert "TSIG" in ours.stdout
    if "big.example" in args and "+multi" not in args:
        messages = int(re.search(r"messages (\d+)", ours.stdout)[1])
        assert messages > 1 and ours.stdout.count("\tTSIG\t") == messages


def _key_file(tmp_path, text: str) -> str:
    path = tmp_path / "key.conf"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text", [
    # tsig-keygen's output
    f'key "xfr-key." {{\n\talgorithm hmac-sha256;\n\tsecret "{SECRET}";\n}};\n',
    f'key xfr-key {{ secret "{SECRET}"; algorithm "HMAC-SHA512"; }};',
    f'# a key\n// for xfr\n/* signed */ key "xfr-key." {{ algorithm hmac-sha1; '
    f'secret "{SECRET}"; }};',
    f'key "xfr-key." {{ algorithm hmac-sha256; secret "{SECRET[:8]}"; }};',  # too short
    f'key "xfr-key." {{ algorithm hmac-sha256; secret "{SECRET}',          # open quote
    f'key "xfr-key." {{ algorithm hmac-sha256; secret "{SECRET}"; /* open',
    f'key "xfr-key." {{ algorithm hmac-sha256; secret "{SECRET[:-4]}@@@@"; }};',
    f'key "xfr-key." {{ algorithm hmac-foo; secret "{SECRET}"; }};',
    "",                                                                     # not found
    f'key "xfr-key." {{ algorithm hmac-sha256; secret "{SECRET}";',         # cut short
    f'key "xfr-key." {{ algorithm hmac-sha256; secret "{SECRET}"; }}',      # no ";"
    f'key "xfr-key." {{ algorithm hmac-sha256; secret "{SECRET}"; port 1; }};',
    f'key "a." {{ algorithm hmac-sha256; secret "{SECRET}"; }};\n'
    f'key "b." {{ algorithm hmac-sha256; secret "{SECRET}"; }};',         # already exists
    'key "xfr-key." { algorithm hmac-sha256; };',                          # exit 1
    f'key "xfr-key." {{ secret "{SECRET}"; }};',
])
def test_key_files_as_dig(signing, tmp_path, text):
    """-k FILE: a BIND key statement (as tsig-keygen writes it); a file dig cannot read is
    said on stderr and the query goes unsigned; a secret that is not base64 or an unknown
    algorithm is said and the key not used; a key without its secret or algorithm ends
    the command (exit 1)."""
    ours = both("@127.0.0.1", "-p", str(signing.port), "-k", _key_file(tmp_path, text),
                "www.example.com")
    assert ours.returncode == (1 if ("secret" in text) != ("algorithm" in text) else 0)


@pytest.mark.parametrize("name, why", [("none.key", "file not found"), (".", "not a file")])
def test_a_key_file_that_is_not_one_as_dig(signing, tmp_path, name, why):
    ours = both("@127.0.0.1", "-p", str(signing.port), "-k", str(tmp_path / name),
                "www.example.com", "+noall", "+answer")
    assert ours.stderr.endswith(f": {why}\n")


@pytest.mark.parametrize("args", [
    ["-y", "hmac-sha256:xfr-key.:c2VjcmV0", "www.example.com"],      # another secret
    ["-y", f"hmac-sha256:other-key.:{SECRET}", "www.example.com"],   # a key NSD lacks
    ["-y", "hmac-sha256:xfr-key.:c2VjcmV0", "example.com", "axfr"],
    ["-y", f"hmac-sha384:other-key.:{SECRET}", "example.com", "axfr", "+comments"],
    ["-y", "xfr-key.:@@@@", "www.example.com"],                      # not base64
    ["-y", f"hmac-foo:xfr-key.:{SECRET}", "www.example.com"],        # unknown algorithm
    ["-y", f"hmac-sha256:xfr-key..:{SECRET}", "www.example.com"],    # not a name
    ["-y", f"hmac-sha256:xfr-key.:{SECRET}:", "www.example.com"],    # the secret: the rest
    ["-y", f"hmac-sha256:xfr-key.::{SECRET}", "www.example.com"],
    ["-y", f"a:b:{SECRET}:d", "www.example.com"],
    ["-y", f"xfr-key.:{SECRET[:12]}:{SECRET[12:]}", "www.example.com"],
    ["-y", "hmac-sha256:xfr-key.:c2VjcmV0", "www.example.com", "+nostats"],
    ["example.com", "axfr"],                                         # unsigned: refused
])
def test_keys_the_server_refuses_as_dig(signing, args):
    """A secret NSD does not share (BADSIG) or a key it does not know (BADKEY): NOTAUTH
    with an unsigned TSIG, ";; Couldn't verify signature: tsig indicates error" and dig's
    warning after the statistics; a key that cannot be made: said, the query unsigned,
    "TSIG key was not used"; exit 0."""
    ours = both("@127.0.0.1", "-p", str(signing.port), *args)
    assert ours.returncode == 0


@pytest.mark.parametrize("args", [["-y"], ["-y", "xfr-key."], ["-y", "::"], ["-y", "a:"],
                                  ["-y", f"hmac-sha256-99999:xfr-key.:{SECRET}"],
                                  ["-y", f"hmac-md5-x:xfr-key.:{SECRET}"]])
def test_a_y_without_its_parts_is_a_usage_error(args):
    """A -y without a name and a secret is a usage error, a truncated MAC's bits out of
    range dig's error (said as dig says it); exit 1, nothing asked."""
    ours, theirs = query("@127.0.0.1", "-p", "9", *args, "example.com"), \
        dig("@127.0.0.1", "-p", "9", *args, "example.com")
    assert ours.returncode == theirs.returncode == 1, theirs.stdout + theirs.stderr
    assert ours.stdout == theirs.stdout
    if "hmac" in args[-1]:
        assert _prog_free(ours.stderr) == _prog_free(theirs.stderr)


class _Signer(Recorder):
    """A UDP server that answers every query for an A record, signed as ``mode`` says:
    ``good`` with KEY, ``unsigned``, ``secret`` (another secret), ``name`` (another key's
    name), ``skew`` (signed 1000 seconds ago), ``badtime`` (KEY's BADTIME error),
    ``always`` (signed with KEY, the query signed or not)."""

    def __init__(self, mode: str):
        self.mode = mode
        self.key = dns.tsig.Key(KEY[0], base64.b64decode(SECRET), KEY[1])
        super().__init__()

    def read(self, data: bytes) -> dns.message.Message:
        return dns.message.from_wire(data, keyring={self.key.name: self.key})

    def reply_udp(self, q: dns.message.Message, peer) -> None:
        self.sock.sendto(self.reply(q), peer)

    def reply(self, q: dns.message.Message) -> bytes:
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "192.0.2.7"))
        other = {"secret": dns.tsig.Key(KEY[0], b"another-secret", KEY[1]),
                 "name": dns.tsig.Key("other-key.", self.key.secret, KEY[1])}
        if self.mode == "unsigned":
            r.tsig, r.want_tsig_sign = None, False
        elif self.mode in other:
            r.use_tsig(other[self.mode], original_id=q.id)
        elif self.mode == "always":
            r.use_tsig(self.key)
        elif self.mode == "badtime":
            r.use_tsig(self.key, original_id=q.id, tsig_error=18,
                       other_data=int(time.time()).to_bytes(6, "big"))
        if self.mode == "skew":
            clock = types.SimpleNamespace(time=lambda: time.time() - 1000)
            with mock.patch.object(dns.message, "time", clock):
                return r.to_wire()
        return r.to_wire()


@pytest.mark.parametrize("mode, why", [
    ("good", None), ("unsigned", "expected a TSIG or SIG(0)"),
    ("secret", "tsig verify failure"), ("name", "tsig verify failure"),
    ("skew", "clocks are unsynchronized"), ("badtime", "clocks are unsynchronized"),
])
def test_a_signature_that_fails_is_said_as_dig(mode, why):
    """";; Couldn't verify signature: WHY" as the reply comes, the reply shown, and dig's
    warning after the statistics; exit 0."""
    server = _Signer(mode)
    try:
        ours = both("@127.0.0.1", "-p", str(server.port), "+tries=1", "+time=2",
                    "-y", f"hmac-sha256:{KEY[0]}:{SECRET}", "www.example.com")
    finally:
        server.close()
    assert ours.returncode == 0
    said = re.findall(r";; Couldn't verify signature: (.*)", ours.stdout)
    assert said == ([why] if why else [])
    assert (";; WARNING -- Some TSIG could not be validated" in ours.stdout) is bool(why)


def test_the_query_is_signed_with_the_key(signing):
    """The query as it goes: its TSIG is KEY's, over the message as sent."""
    from resolver.tools.dig_exchange import make_query
    from resolver.tools.dig_options import parse, parse_y
    from resolver.tools.dig_tsig import make_key
    _, [o] = parse(["www.example.com"])
    o.tsig_key = make_key(parse_y(f"hmac-sha256:xfr-key.:{SECRET}"))
    wire = make_query(o).to_wire()
    key = dns.tsig.Key(KEY[0], base64.b64decode(SECRET), KEY[1])
    m = dns.message.from_wire(wire, keyring={key.name: key})      # raises if it fails
    assert m.had_tsig and str(m.tsig.name) == "xfr-key." and m.tsig[0].fudge == 300
    with pytest.raises(dns.tsig.BadSignature):
        dns.message.from_wire(wire, keyring={key.name: dns.tsig.Key(KEY[0], b"x", KEY[1])})


class _Transferring:
    """A TCP server that answers every AXFR with example.com. in four messages, each
    signed with KEY unless ``mode`` says otherwise: ``partial`` (the middle two unsigned,
    the next signature covering them), ``last`` (the last unsigned), ``first`` (the first
    unsigned), ``mac`` (the third's MAC altered), ``mac2`` (the second's MAC altered, the
    third unsigned), ``data`` (a record of the second altered after signing)."""

    SOA = "SOA ns.example.com. host.example.com. 5 3600 600 86400 300"
    PARTS = [[SOA, "NS ns.example.com."], ["A 192.0.2.1"], ["A 192.0.2.2"], ["TXT x", SOA]]

    def __init__(self, mode: str):
        self.mode = mode
        self.key = dns.tsig.Key(KEY[0], base64.b64decode(SECRET), KEY[1])
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.run, daemon=True).start()

    def signed(self, i: int) -> bool:
        return {"partial": i in (0, 3), "last": i < 3, "first": i > 0,
                "mac2": i != 2}.get(self.mode, True)

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(5)
                    size = int.from_bytes(conn.recv(2), "big")
                    data = b""
                    while len(data) < size:
                        data += conn.recv(size - len(data))
                    for wire in self.messages(data):
                        conn.sendall(len(wire).to_bytes(2, "big") + wire)
                except OSError:
                    continue

    def messages(self, data: bytes) -> list[bytes]:
        q = dns.message.from_wire(data, keyring={self.key.name: self.key})
        ctx, out = None, []
        for i, part in enumerate(self.PARTS):
            r = dns.message.make_response(q)
            r.answer = [dns.rrset.from_text("example.com.", 3600, "IN", *rr.split(" ", 1))
                        for rr in part]
            if self.signed(i):
                wire = r.to_wire(multi=True, tsig_ctx=ctx)
                ctx = r.tsig_ctx
                if (self.mode, i) in (("mac", 2), ("mac2", 1)):      # a bit of the MAC
                    wire = wire[:-12] + bytes([wire[-12] ^ 1]) + wire[-11:]
                if (self.mode, i) == ("data", 1):
                    wire = wire.replace(bytes([192, 0, 2, 1]), bytes([192, 0, 2, 9]))
            else:
                r.tsig, r.want_tsig_sign = None, False
                wire = r.to_wire()
                if ctx is not None:
                    ctx.update(wire)
            out.append(wire)
        return out

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("mode, failed", [
    ("all", 0), ("partial", 0), ("last", 0), ("first", 2), ("mac", 2), ("mac2", 2),
    ("data", 1),
])
def test_a_transfer_s_signatures_are_checked_message_by_message_as_dig(mode, failed):
    """Each message of a transfer checked against the signatures before it (RFC 8945:
    unsigned messages in between covered by the next signature); a message that fails is
    said, and the next is checked from its MAC, as dig does; exit 0."""
    server = _Transferring(mode)
    try:
        ours = both("@127.0.0.1", "-p", str(server.port), "+tries=1", "+time=2",
                    "-y", f"hmac-sha256:{KEY[0]}:{SECRET}", "example.com", "axfr")
    finally:
        server.close()
    assert ours.returncode == 0
    assert ours.stdout.count(";; Couldn't verify signature: ") == failed
    assert "(messages 4, " in ours.stdout


@pytest.mark.parametrize("opts", [[], ["+multi"], ["+yaml"], ["+noadditional"]])
def test_a_signed_reply_to_a_query_without_key_is_shown_as_dig(opts):
    """Without a key nothing is checked, and the reply's TSIG is shown in its pseudosection
    as dig shows it (not as an additional record)."""
    server = _Signer("always")
    try:
        ours = both("@127.0.0.1", "-p", str(server.port), "+tries=1", "+time=2",
                    "www.example.com", *opts)
    finally:
        server.close()
    assert ours.returncode == 0 and "Couldn't verify" not in ours.stdout
    assert ("TSIG" in ours.stdout) is ("+noadditional" not in opts)
    assert "ADDITIONAL SECTION" not in ours.stdout
