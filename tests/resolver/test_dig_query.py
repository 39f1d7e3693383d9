"""``corenet-resolver query`` as dig: its output next to BIND's dig against the same daemon
(sections, header flags, toggles), the query flags as they go on the wire, UDP, TCP, DoT
and DoH with certificate checks, resolv.conf servers, -4/-6, batch files and dig's exit
codes."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from ci_policy import unavailable
from daemon_proc import ROOT, Daemon
from ports import free_port
from ports import refusing_port
from tcp_queries import send, serve_tcp
from test_daemon_dot import tool
from tls_certs import CA, SERVER_NAME


@pytest.fixture(scope="module")
def daemon(lab, tmp_path_factory):
    """The daemon with UDP/TCP, DoT, DoH and plain DNS-over-HTTP listeners, certified by a
    test CA."""
    work = tmp_path_factory.mktemp("digq")
    ca = CA(work / "pki")
    pem, key = ca.issue("server")
    tls, https, http = free_port(), free_port(), free_port()
    conf = work / "enc.toml"
    # rrset-roundrobin off: both digs, asking with their own IDs, see one order
    conf.write_text(f'tls-listen = ["127.0.0.1:{tls}"]\nhttps-listen = ["127.0.0.1:{https}"]\n'
                    f'http-listen = ["127.0.0.1:{http}"]\nrrset-roundrobin = false\n'
                    f'tls-service-pem = "{pem}"\ntls-service-key = "{key}"\n')
    d = Daemon(work, lab, "--config", str(conf)).start()
    d.ca, d.tls_port, d.https_port, d.http_port = ca, tls, https, http
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


def query(*args: str, env: dict | None = None, timeout: float = 60):
    """``corenet-resolver query ARGS``, with $CORENET_RESOLV_CONF pointing at a file that
    names no server unless the test gives one (the host's resolver is never asked)."""
    e = dict(os.environ, PYTHONPATH=str(ROOT), CORENET_RESOLV_CONF=os.devnull)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "resolver.daemon.cli", "query", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=str(ROOT), env=e)


def dig(*args: str):
    return subprocess.run([tool("dig"), *args], capture_output=True, text=True, timeout=30)


def comparable(text: str) -> list[str]:
    """dig's text without what differs between two asks: the id, TTLs (the cache counts them
    down), timings (+identify's too), the date and the version line."""
    out = []
    for line in text.splitlines():
        if line.startswith(("; <<>>", ";; Query time", ";; WHEN", ";; MSG SIZE")):
            continue
        line = re.sub(r"id: \d+", "id: N", line)
        line = re.sub(r" in \d+ ms$", " in N ms", line)
        if not line.startswith(";"):            # a TTL in seconds, or +ttlunits' 59m47s
            line = re.sub(r"^(\S+\s+)\d[\dwdhms]*(\s)", r"\1TTL\2", line)
        out.append(line)
    return out


@pytest.mark.parametrize("name, rdtype, opts", [
    ("www.example.com", "A", []),
    ("nope.example.com", "A", []),                       # NXDOMAIN, SOA in AUTHORITY
    ("example.com", "MX", ["+nocomments"]),
    ("www.example.com", "A", ["+noall", "+answer"]),
    ("example.com", "NS", ["+noquestion", "+noadditional", "+nostats"]),
    ("www.example.com", "A", ["+noall", "+comments"]),
    ("www.example.com", "A", ["+norec"]),                # the daemon refuses RD=0
    ("www.example.com", "A", ["+cd", "+dnssec"]),
    ("www.example.com", "A", ["+nsid", "+bufsize=4096", "+noadflag"]),
    ("www.example.com", "A", ["+noedns"]),
    ("big.example.com", "TXT", ["+ignore", "+nostats"]),                # TC kept
    ("-x", "192.0.2.1", []),
    ("www.example.com", "A", ["+short"]),
    ("big.example.com", "TXT", ["+noall", "+answer", "+tcp"]),
    ("a-rather-long-label-to-pass-the-columns.example.com", "A", []),
    ("www.example.com", "A", ["+tls"]),
    ("www.example.com", "A", ["+https"]),
    ("www.example.com", "A", ["+https-get"]),
    ("www.example.com", "A", ["+http-plain"]),
    ("www.example.com", "A", ["+http-plain-get"]),
    ("www.example.com", "A", ["+http-plain-post=/dns-query"]),
    # accepted, and nothing they change applies to these look-ups (as with dig)
    ("www.example.com", "A", ["+onesoa", "+besteffort", "+keepopen"]),
    ("www.example.com", "A", ["+noednsnegotiation", "+nokeepopen", "+nobesteffort"]),
    ("www.example.com", "A", ["+nocookie"]),
    ("www.example.com", "A", ["+nobadcookie", "+showbadcookie"]),
])
def test_output_matches_bind_dig(daemon, name, rdtype, opts):
    first = opts[0] if opts else ""
    port = daemon.tls_port if "+tls" in opts else daemon.https_port if first in (
        "+https", "+https-get") else daemon.http_port if first.startswith(
        "+http-plain") else daemon.port
    if port in (daemon.tls_port, daemon.https_port):
        opts = [*opts, f"+tls-ca={daemon.ca.pem}", f"+tls-hostname={SERVER_NAME}"]
    args = ["@127.0.0.1", "-p", str(port), name, rdtype, *opts]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout


@pytest.mark.parametrize("opts", [
    ["+noall", "+ans"], ["+noall", "+answ", "+mult"], ["+noadd", "+noauth", "+nost"],
    ["+noques", "+nocom", "+nocl"], ["+tim=2", "+ret=1", "+buf=1232"], ["+nocook", "+ttlu"],
    ["+noall", "+ans", "+iden"], ["+nostats", "+identify"], ["+noall", "+identify"],
    ["+sh"], ["+tr=2"], ["+nor"], ["+id"], ["+ta"],
])
def test_option_abbreviations_as_dig(daemon, opts):
    """dig takes the start of an option's name when no other option's name starts so, and
    refuses an ambiguous one; the answer is the same as with the whole names. (+identify
    without the statistics: a line saying where the reply came from.)"""
    args = ["@127.0.0.1", "-p", str(daemon.port), "www.example.com", *opts]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode, (ours.stderr, theirs.stderr)
    if theirs.returncode == 0:
        assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout
    else:
        assert "Invalid option" in ours.stderr


@pytest.mark.parametrize("opts", [["-t", "NOTATYPE"], ["-t", "1"], ["-tNOTATYPE"],
                                  ["-c", "XX"], ["-t", "NOTATYPE", "-t", "MX"]])
def test_an_unknown_type_or_class_is_warned_of_and_passed_over_as_dig(daemon, opts):
    args = ["@127.0.0.1", "-p", str(daemon.port), "www.example.com", "+noall", "+answer",
            *opts]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stderr == theirs.stderr and ";; Warning, ignoring invalid" in ours.stderr
    assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout


def test_toggles_show_and_hide_sections(daemon):
    at = ["@127.0.0.1", "-p", str(daemon.port)]
    full = query(*at, "nope.example.com").stdout
    for part in (";; QUESTION SECTION:", ";; AUTHORITY SECTION:", ";; Query time:",
                 "; <<>> corenet-resolver", ";; ->>HEADER<<-", "status: NXDOMAIN"):
        assert part in full
    r = query(*at, "nope.example.com", "+noall", "+authority")
    assert comparable(r.stdout) == [l for l in comparable(full)
                                    if "\tSOA\t" in l and not l.startswith(";")]
    r = query(*at, "nope.example.com", "+nocmd", "+nostats")
    assert "; <<>>" not in r.stdout and ";; SERVER:" not in r.stdout and "HEADER" in r.stdout
    r = query(*at, "nope.example.com", "+noall", "+all")
    assert comparable(r.stdout) == comparable(full)


class Recorder:
    """A UDP server on loopback that keeps each query and answers it with NSID "lab-1"."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.seen: list[dns.message.Message] = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(65535)
            except OSError:
                return
            q = self.read(data)
            self.seen.append(q)
            self.reply_udp(q, peer)

    def read(self, data: bytes) -> dns.message.Message:
        return dns.message.from_wire(data)

    def reply_udp(self, q: dns.message.Message, peer) -> None:
        self.sock.sendto(self.respond(q, "udp").to_wire(), peer)

    def respond(self, q: dns.message.Message, transport: str) -> dns.message.Message:
        r = dns.message.make_response(q)
        if q.edns >= 0:
            ecs = [o for o in q.options if isinstance(o, dns.edns.ECSOption)]
            r.use_edns(0, options=[dns.edns.GenericOption(dns.edns.OptionType.NSID,
                                                          b"lab-1"), *ecs])
        return r

    def close(self):
        self.sock.close()


@pytest.fixture
def recorder():
    r = Recorder()
    yield r
    r.close()


def test_query_flags_on_the_wire(recorder):
    at = ["@127.0.0.1", "-p", str(recorder.port), "example.org"]
    assert query(*at).returncode == 0
    q = recorder.seen[-1]
    assert q.flags & dns.flags.RD and q.flags & dns.flags.AD and not q.flags & dns.flags.CD
    assert q.edns == 0 and q.payload == 1232 and not q.ednsflags & dns.flags.DO
    r = query(*at, "+norec", "+cd", "+noadflag", "+dnssec", "+bufsize=4096", "+nsid")
    assert r.returncode == 0, r.stderr
    q = recorder.seen[-1]
    assert not q.flags & dns.flags.RD and q.flags & dns.flags.CD and not q.flags & dns.flags.AD
    assert q.ednsflags & dns.flags.DO and q.payload == 4096
    assert [int(o.otype) for o in q.options] == [int(dns.edns.OptionType.NSID),
                                                 int(dns.edns.OptionType.COOKIE)]
    assert '; NSID: 6c 61 62 2d 31 ("lab-1")' in r.stdout
    assert query(*at, "+noedns").returncode == 0 and recorder.seen[-1].edns == -1
    r = query(*at, "+subnet=192.0.2.77/24", "+nocookie")
    [ecs] = recorder.seen[-1].options
    assert (ecs.address, ecs.srclen) == ("192.0.2.0", 24)
    assert "; CLIENT-SUBNET: 192.0.2.0/24/0" in r.stdout
    assert query(*at, "+subnet=nonsense").returncode == 1
    assert query(*at, "-t", "TXT", "-c", "CH").returncode == 0
    assert (recorder.seen[-1].question[0].rdtype, recorder.seen[-1].question[0].rdclass) == (16, 3)


@pytest.mark.parametrize("opt", ["+dnssec", "+nsid", "+subnet=192.0.2.0/24", "+bufsize=4096",
                                 "+bufsize=0", "+bufsize=40000", "+cookie", "+padding=64",
                                 "+ednsflags=0x80", "+expire", "+keepalive", "+ednsopt=65001",
                                 "+zflag"])
def test_what_puts_edns_back_after_noedns_is_dig_s(recorder, opt):
    at = ["@127.0.0.1", "-p", str(recorder.port), "example.org", "+noedns", opt]
    sent = []
    for tool_run in (dig, query):
        assert tool_run(*at).returncode == 0
        q = recorder.seen[-1]
        sent.append((q.edns, bool(q.ednsflags & dns.flags.DO)))
    assert sent[0] == sent[1], sent


@pytest.mark.parametrize("opts", [[], ["+nocomments"], ["+yaml"], ["+short"],
                                  ["+noall", "+answer"], ["+noall", "+comments"]])
def test_truncated_is_one_of_digs_comments(daemon, opts):
    """";; Truncated, retrying in TCP mode." comes with +comments only, never with +yaml."""
    args = ["@127.0.0.1", "-p", str(daemon.port), "big.example.com", "TXT", *opts]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    same = _yaml_comparable if "+yaml" in opts else comparable
    assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout
    assert ("Truncated, retrying" in ours.stdout) == (opts in ([], ["+noall", "+comments"]))


@pytest.mark.parametrize("option", ["+trace", "+nssearch"])
def test_trace_and_nssearch_turn_comments_off_as_dig(option):
    from resolver.tools.dig_options import parse

    assert not parse(["x.example", option])[1][0].show["comments"]
    assert parse(["x.example", option, "+comments"])[1][0].show["comments"]


def test_udp_and_tcp(daemon):
    for transport in ([], ["+tcp"], ["+vc"]):
        r = query("@127.0.0.1", "-p", str(daemon.port), "www.example.net", *transport)
        assert r.returncode == 0, r.stderr
        proto = "TCP" if transport else "UDP"
        assert f";; SERVER: 127.0.0.1#{daemon.port}(127.0.0.1) ({proto})" in r.stdout
    r = query("@127.0.0.1", "-p", str(daemon.port), "big.example.com", "TXT")
    assert ";; Truncated, retrying in TCP mode." in r.stdout and "(TCP)" in r.stdout


@pytest.mark.parametrize("transport, port", [(["+tls"], "tls_port"), (["+https"], "https_port"),
                                             (["+https-get"], "https_port"),
                                             (["+https=/dns-query"], "https_port")])
def test_encrypted_with_the_certificate_checked(daemon, transport, port):
    at = ["@127.0.0.1", "-p", str(getattr(daemon, port)), *transport, "+tries=1", "+time=5"]
    ca = f"+tls-ca={daemon.ca.pem}"
    r = query(*at, ca, f"+tls-hostname={SERVER_NAME}", "www.example.net")
    assert r.returncode == 0, r.stdout + r.stderr
    proto = {"+tls": "TLS", "+https-get": "HTTPS-GET"}.get(transport[0], "HTTPS")
    assert "198.51.100.1" in r.stdout and f"({proto})" in r.stdout
    failed = ";; TLS peer certificate verification for 127.0.0.1#"
    r = query(*at, ca, "+tls-hostname=other.test", "www.example.net")   # name mismatch
    assert r.returncode == 9 and r.stdout.startswith(failed), r.stdout
    assert r.stdout.endswith("failed: hostname mismatch\n")
    r = query(*at, "+tls-ca", f"+tls-hostname={SERVER_NAME}", "www.example.net")  # system CAs
    assert r.returncode == 9 and r.stdout.startswith(failed), r.stdout
    r = query(*at, "+short", "www.example.net")      # no +tls-ca: not checked, as dig
    assert r.returncode == 0 and r.stdout.split() == ["198.51.100.1"]


def test_https_path_is_sent(daemon):
    r = query("@127.0.0.1", "-p", str(daemon.https_port), "+https=/elsewhere", "+tries=1",
              "www.example.net")
    assert r.returncode == 9 and "404" in r.stdout


def test_without_server_the_resolv_conf_servers_are_asked(daemon, tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# a comment\nsearch example\nnameserver 127.0.0.55\nnameserver 127.0.0.1\n")
    env = {"CORENET_RESOLV_CONF": str(conf)}
    # the first server never answers (a socket on loopback that reads nothing): one try,
    # then the next server
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.55", daemon.port))
        r = query("-p", str(daemon.port), "+time=1", "+tries=1", "www.example.net", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ";; communications error to 127.0.0.55#" in r.stdout
    assert f";; SERVER: 127.0.0.1#{daemon.port}(127.0.0.1) (UDP)" in r.stdout
    # none of -6's family: ::1, as dig
    r = query("-6", "-p", str(daemon.port), "+time=1", "+tries=1", "www.example.net", env=env)
    assert r.returncode == 9 and f"communications error to ::1#{daemon.port}" in r.stdout
    # no file: ::1, then 127.0.0.1, as dig
    r = query("-p", str(daemon.port), "+time=1", "+tries=1", "www.example.net",
              env={"CORENET_RESOLV_CONF": str(tmp_path / "missing")})
    assert r.returncode == 0, r.stdout + r.stderr
    assert f";; SERVER: 127.0.0.1#{daemon.port}(127.0.0.1) (UDP)" in r.stdout


def test_no_name_asks_for_the_root_ns(recorder):
    assert query("@127.0.0.1", "-p", str(recorder.port)).returncode == 0
    q = recorder.seen[-1].question[0]
    assert (q.name.to_text(), q.rdtype) == (".", 2)


def test_families(daemon):
    r = query("-4", "@localhost", "-p", str(daemon.port), "www.example.net", "+short")
    assert r.returncode == 0 and r.stdout.split() == ["198.51.100.1"], r.stdout + r.stderr
    r = query("-6", "@127.0.0.1", "-p", str(daemon.port), "www.example.net")
    assert r.returncode == 0 and "No acceptable nameservers" in r.stdout   # as dig


@pytest.mark.parametrize("address", ["192.0.2", "10.1", "1.2.3.4.5", "::ffff:192.0.2.1",
                                     "2001:db8::1", "not-an-address"])
def test_reverse_names_are_dig_s(recorder, address):
    """-x takes what dig takes: an IPv6 address (an IPv4-mapped one too) under ip6.arpa,
    else the dotted words in reverse under in-addr.arpa, however many."""
    at = ["@127.0.0.1", "-p", str(recorder.port), "-x", address, "+noall", "+question"]
    ours, theirs = query(*at), dig(*at)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout


def test_the_port_and_family_are_the_whole_line_s_as_dig(daemon):
    """dig's -p, -4 and -6 are global: the last given applies to every name of the line,
    the ones before it too; -4 with -6 is a usage error."""
    port = str(daemon.port)
    for args in (["@127.0.0.1", "www.example.com", "www.example.net", "-p", port],
                 ["www.example.com", "@127.0.0.1", "-p", port, "www.example.net",
                  "@127.0.0.1", "-4"],
                 ["-p", "1", "@127.0.0.1", "www.example.com", "-p", port]):
        ours, theirs = query(*args, "+short", "+tries=1"), dig(*args, "+short", "+tries=1")
        assert ours.returncode == theirs.returncode == 0, (args, ours.stdout, ours.stderr)
        assert sorted(ours.stdout.split()) == sorted(theirs.stdout.split()), args
        assert len(ours.stdout.split()) == (2 if args[0] == "-p" else 3)
    ours, theirs = query("-4", "-6", "@127.0.0.1", "x.example"), dig("-4", "-6", "x.example")
    assert ours.returncode == theirs.returncode == 1


def test_batch_file_and_several_names(daemon, tmp_path):
    batch = tmp_path / "batch"
    batch.write_text("; a comment\n\nwww.example.net\nexample.com MX\n-t NS -q example.com\n")
    r = query("@127.0.0.1", "-p", str(daemon.port), "+short", "-f", str(batch))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["198.51.100.1", "10 mail.example.com."]
    assert sorted(lines[2:]) == ["ns1.example.com.", "ns2.example.com."]
    r = query("@127.0.0.1", "-p", str(daemon.port), "+short", "www.example.net",
              "example.com", "MX")
    assert r.stdout.splitlines() == ["198.51.100.1", "10 mail.example.com."]
    r = query("-f", str(tmp_path / "missing"))
    assert r.returncode == 8 and "couldn't open specified batch file" in r.stderr


def _greetings_kept(text: str) -> list[str]:
    """:func:`comparable`, the version lines kept, each program's name and version
    masked."""
    out = []
    for line in text.splitlines():
        if line.startswith("; <<>>"):
            out.append(re.sub(r"^; <<>> .*? <<>>", "; <<>> V <<>>", line))
        else:
            out += comparable(line)
    return out


@pytest.mark.parametrize("batch, args", [
    ("a.example\nb.example +cmd\n", []),
    ("a.example\nb.example +cmd\n", ["+nocmd"]),
    ("a.example +nocmd\nb.example\nc.example +cmd\nd.example\n", []),
    ("a.example\nb.example +cmd\n", ["x.example"]),
    ("a.example\nb.example +cmd\n", ["x.example", "+nocmd"]),
    ("+short a.example\nb.example +noshort\nc.example\n", []),
    ("a.example\nb.example +cmd\n", ["+short", "+cmd"]),
    ("a.example\nb.example\n", ["+yaml"]),
])
def test_batch_lines_make_their_own_command_lines_as_dig(fixed, tmp_path, batch, args):
    """As dig, each batch line makes its command lines (its own words) as its first name
    is read: all of them the first time they are made, the version line alone after
    that; +cmd/+nocmd and +short on a line hold for the lines after it."""
    f = tmp_path / "batch"
    f.write_text(batch)
    answering = ["@127.0.0.1", "-p", str(fixed(["a.example. 300 IN A 192.0.2.1"]).port)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:   # bound, never read
        silent.bind(("127.0.0.1", 0))
        lost = ["@127.0.0.1", "-p", str(silent.getsockname()[1]), "+tries=1", "+time=1"]
        for at, rc in ((answering, 0), (lost, 9)):
            line = [*at, *args, "-f", str(f)]
            ours, theirs = query(*line), dig(*line)
            assert ours.returncode == theirs.returncode == rc, ours.stderr
            same = _yaml_comparable if "+yaml" in args else _greetings_kept
            assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout


@pytest.mark.parametrize("batch", [
    "\n# a comment\n;\r\na.example\n\n# b.example +noshort\n; c.example\n  # d\n   \r\ne\n",
    " \n# a comment\na.example",
    "\ta.example\n\n;\n",
    "# nothing but comments\n\n;\n",
    "a b c d e f g h i j k l m n o p\nq r s t u v w x y z aa bb cc dd ee ff\n",
    # dig reads a line 1,023 characters at a time: the rest of a longer one is a line
    "a.example" + " " * 1014 + "\n",
    "a.example" + " " * 1020 + "b.example c.example\nd.example\n",
    "# " + "x" * 1030 + " e.example\na.example\n",
    "a.example" + " " * 2040 + "f.example",
])
def test_batch_blank_and_comment_lines_as_dig(fixed, tmp_path, batch):
    """As dig: blank lines and lines that start with "#" or ";" are skipped until the
    file's first look-up only; after it, a blank line looks up the root's NS and a
    comment's words are names and options; a line gives 13 words at most, and a line
    longer than 1,023 characters is read as lines of that many."""
    f = tmp_path / "batch"
    f.write_text(batch)
    line = ["@127.0.0.1", "-p", str(fixed(["a.example. 300 IN A 192.0.2.1"]).port), "+short",
            "+cmd", "-f", str(f)]
    ours, theirs = query(*line), dig(*line)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert _greetings_kept(ours.stdout) == _greetings_kept(theirs.stdout), \
        ours.stdout + theirs.stdout


def test_exit_codes(tmp_path):
    assert query("+bogus", "example.org").returncode == 1
    assert query("+time=x", "example.org").returncode == 1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:   # bound, never read
        silent.bind(("127.0.0.1", 0))
        at = ["@127.0.0.1", "-p", str(silent.getsockname()[1]), "example.org", "+time=1"]
        r = query(*at, "+tries=2")
        assert r.returncode == 9 and r.stdout.count("timed out") == 2
        r = query(*at, "+retry=0")
        assert r.returncode == 9 and r.stdout.count("timed out") == 1
        assert ";; no servers could be reached" in r.stdout


def _yaml_same(text: str) -> list[str]:
    """:func:`_yaml_comparable`, without the version line of the command lines."""
    return [line for line in _yaml_comparable(text) if not line.startswith("; <<>>")]


@pytest.mark.parametrize("args", [
    ["a.example", "+nocmd"], ["+nocmd", "a.example"], ["a.example", "+short"],
    ["a.example", "+yaml"], ["+yaml", "a.example"], ["+yaml", "a.example", "+all"],
    ["a.example", "+yaml", "+all"], ["+noall", "a.example", "+cmd"],
    ["a.example", "b.example"], ["a.example", "+nocmd", "b.example"],
    ["+short", "+cmd", "a.example"], ["+short", "+cmd", "-x", "192.0.2.1"],
    ["+cmd", "+short", "a.example"], ["a.example", "+short", "+cmd"],
])
def test_command_lines_before_no_servers_as_dig(args):
    """dig makes its command lines as it reads the first name, if +cmd is on then (+short
    and +yaml turn it off, +all on), and prints them before "no servers could be reached"
    whatever follows; the first look-up's only. Their global options say +short when
    +short was on then."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:   # bound, never read
        silent.bind(("127.0.0.1", 0))
        before = args[:min(args.index(a) for a in ("a.example", "-x") if a in args)]
        args = ["@127.0.0.1", "-p", str(silent.getsockname()[1]), "+tries=1", "+time=1",
                *args]
        ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 9, ours.stderr
    same = _yaml_same if "+yaml" in args else comparable
    assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout
    made = ";; global options:" in ours.stdout
    assert made == (not {"+nocmd", "+yaml", "+noall"} & set(before)
                    and before[-1:] != ["+short"]), ours.stdout
    assert ours.stdout.count(";; global options:") == int(made)
    assert (";; global options: +short +cmd\n" in ours.stdout) == (before == ["+short", "+cmd"])


@pytest.mark.parametrize("args, shown", [
    (["a.example", "+yaml", "+all"], True), (["+yaml", "+all", "a.example"], True),
    (["+yaml", "a.example", "+cmd"], False), (["a.example", "+nocmd"], False),
    (["+nocmd", "a.example", "+cmd"], False), (["a.example", "+yaml"], False),
    (["a.example", "+nocmd", "+cmd"], True),
    # +short is the line's last +short or +noshort; the command lines say it was on
    (["+short", "+cmd", "a.example", "+noshort"], True), (["+short", "a.example", "+noshort"],
                                                          False),
    (["+short", "a.example", "b.example", "+noshort"], False),
    (["a.example", "+noshort", "+short"], False),
])
def test_command_lines_before_a_reply_as_dig(fixed, args, shown):
    """Before a reply, the command lines come if they were made and +cmd is on at the end:
    +yaml +all brings them back."""
    at = ["@127.0.0.1", "-p", str(fixed(["a.example. 300 IN A 192.0.2.1"]).port)]
    ours, theirs = query(*at, *args), dig(*at, *args)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    same = _yaml_same if "+yaml" in args else comparable
    assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout
    assert (";; global options:" in ours.stdout) == shown
    if shown:
        short = args[0] == "+short"
        assert f";; global options:{' +short' * short} +cmd\n" in ours.stdout, ours.stdout


@pytest.mark.parametrize("opts", [["+tries=2"], ["+tries=2", "+yaml"], ["+tries=3", "+qr"],
                                  ["+tries=1"], ["+tries=2", "+nocmd"], ["+tries=3", "+short"],
                                  ["@127.0.0.2", "+tries=3"], ["@127.0.0.2", "+tries=3",
                                                               "+yaml"]])
def test_a_tcp_connection_refused_as_dig(opts):
    """dig's TCP: each connection that fails is said ("Connection to ... failed"), with
    "no servers could be reached" (with +yaml a DIG_ERROR entry, the rest left out) each
    time no server is left to try next, the command lines left out; a try again starts
    from the first server."""
    with refusing_port() as port:
        args = ["@127.0.0.1", "-p", str(port), "a.example", "+tcp", "+time=1", *opts]
        ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 9, ours.stderr
    assert ours.stdout == theirs.stdout, ours.stdout + theirs.stdout
    tries = int([o for o in opts if o.startswith("+tries=")][0][len("+tries="):])
    assert ours.stdout.count("no servers could be reached") == tries, ours.stdout


@pytest.mark.parametrize("opts", [
    ["+tls"], ["+tls", "+tries=2"], ["+https"], ["+https-get", "+tries=2"], ["+http-plain"],
    ["+tls", "+yaml"],
    # the name said is the name as given, not as the search list made it
    ["www", "+domain=example.com", "+ndots=1", "+tcp"],
    ["www", "+domain=example.com", "+ndots=1", "+tls"],
    ["www.example", "+domain=com", "+ndots=3", "+tcp", "+tries=2"],
    ["-x", "192.0.2.1", "+tcp"], ["+tcp"],
])
def test_a_connection_refused_is_said_as_dig_over_every_transport(opts):
    """TLS, HTTPS and plain HTTP connect over TCP first: a connection that fails is
    dig's "Connection to ADDR#PORT(ADDR) for NAME failed: REASON.", NAME as given."""
    with refusing_port() as port:
        args = ["@127.0.0.1", "-p", str(port), "+time=1", "+tries=1",
                *(["a.example"] if opts[0].startswith("+") else []), *opts]
        ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 9, ours.stderr
    assert ours.stdout == theirs.stdout, ours.stdout + theirs.stdout
    if "+yaml" not in opts:
        assert ours.stdout.startswith(";; Connection to 127.0.0.1#"), ours.stdout
        name = "a.example" if opts[0].startswith("+") else opts[0]
        if opts[0] == "-x":
            name = "1.2.0.192.in-addr.arpa."
        assert f" for {name} failed: connection refused.\n" in ours.stdout, ours.stdout


def _without_network() -> list[str]:
    """A command's prefix that runs it in a network namespace of its own, with no
    interface up: no route to any address, and nothing it sends leaves it."""
    try:
        ok = subprocess.run(["unshare", "-n", "true"], capture_output=True,
                            timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        unavailable("unshare -n (a network namespace of its own), not permitted here")
    return ["unshare", "-n"]


@pytest.mark.parametrize("opts", [
    ["+tries=1"], ["+tries=2"], ["+tries=3", "@127.0.0.2"], ["+yaml", "+tries=2"],
    ["+tcp", "+tries=2", "@127.0.0.2"], ["+tls"],
    ["www", "+domain=example.com", "+ndots=1", "+tries=1"],     # the name as given
])
def test_no_route_to_the_server_is_said_as_dig(opts):
    """With no route to the server the UDP socket cannot be connected: dig's "UDP setup
    with ADDR#PORT(ADDR) for NAME failed: network unreachable." (over TCP "Connection to
    ..."), then, as for a TCP connection that fails, "no servers could be reached" each
    time, the look-up started again from the first server while tries are left."""
    netns = _without_network()
    at = ["@127.0.0.1", *[o for o in opts if o.startswith("@")]]
    rest = [o for o in opts if not o.startswith("@")]
    args = [*at, "-p", "53", "+time=1", *(["a.example"] if rest[0].startswith("+") else []),
            *rest]
    e = dict(os.environ, PYTHONPATH=str(ROOT), CORENET_RESOLV_CONF=os.devnull)
    ours = subprocess.run([*netns, sys.executable, "-m", "resolver.daemon.cli", "query",
                           *args], capture_output=True, text=True, timeout=60, cwd=str(ROOT),
                          env=e)
    theirs = subprocess.run([*netns, tool("dig"), *args], capture_output=True, text=True,
                            timeout=60)
    assert ours.returncode == theirs.returncode == 9, ours.stderr
    assert ours.stdout == theirs.stdout, ours.stdout + theirs.stdout
    if "+yaml" not in opts:
        said = "Connection to" if {"+tcp", "+tls"} & set(opts) else "UDP setup with"
        name = "a.example" if rest[0].startswith("+") else rest[0]
        assert ours.stdout.startswith(f";; {said} 127.0.0.1#53(127.0.0.1) for {name} failed: "
                                      "network unreachable.\n"), ours.stdout


def test_tries_are_the_look_ups_as_dig():
    """Over UDP, dig's tries are the look-up's: the first server has them all, the next
    one the one left."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:   # bound, never read
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]      # at 127.0.0.2: nothing, "connection refused"
        args = ["@127.0.0.1", "@127.0.0.2", "-p", str(port), "a.example", "+tries=2",
                "+time=1"]
        ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 9, ours.stderr
    assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout
    assert ours.stdout.count("127.0.0.2#") == 1


def test_the_grammar_of_several_lookups():
    from resolver.tools.dig_options import parse

    glob, lookups = parse(["+norec", "-p", "5300", "MX", "example.org", "+tcp", "-x",
                           "192.0.2.1", "+cd", "example.net", "TXT", "CH", "@ns.example"])
    assert not glob.rec and glob.port == 5300 and glob.transport == "udp"
    a, b, c = lookups
    assert (a.name, a.rdtype, a.transport, a.rec, a.port) == ("example.org", "MX", "tcp", False,
                                                              5300)
    assert (b.name, b.rdtype, b.cd, b.transport) == ("1.2.0.192.in-addr.arpa.", "PTR", True,
                                                     "udp")
    assert (c.name, c.rdtype, c.rdclass, c.server, c.cd) == ("example.net", "TXT", "CH",
                                                             "ns.example", False)
    _, [d] = parse(["+noall", "+answer", "+tries=0", "+retry=4", "+https=doh", "x.example"])
    assert [k for k, v in d.show.items() if v] == ["answer"]
    assert (d.tries, d.transport, d.https_path) == (5, "https", "/doh")
    _, [e] = parse([])
    assert (e.name, e.rdtype) == (None, None)         # dig: the root's NS


def test_doh_requests_are_rfc_8484_post_and_get(monkeypatch):
    """The HTTP requests themselves, seen by a stand-in for corenet.https's client."""
    import base64
    import types

    import corenet.https
    from resolver.tools import dig_exchange as dig_mod

    q = dig_mod.make_query(dig_mod.Options(name="www.example.net"))
    reply = dns.message.make_response(q).to_wire()
    seen = []

    class FakeClient:
        def __init__(self, **kw):
            seen.append(kw)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def get(self, url, params, headers):
            seen.append(("GET", url, params, headers))
            return types.SimpleNamespace(status_code=200, content=reply)

        def post(self, url, content, headers):
            seen.append(("POST", url, content, headers))
            return types.SimpleNamespace(status_code=200, content=reply)

    monkeypatch.setattr(corenet.https, "Client", FakeClient)
    o = dig_mod.Options(transport="https", tls_ca="/ca.pem", tls_hostname="dns.test")
    assert dig_mod.doh(q, o, "127.0.0.1", "dns.test", 8443).id == q.id
    kw, (method, url, body, headers) = seen
    assert (kw["verify"], method, url) == ("/ca.pem", "POST", "https://dns.test:8443/dns-query")
    assert body == q.to_wire() and headers["content-type"] == "application/dns-message"
    seen.clear()
    o.https_get, o.https_path, o.tls_ca = True, "/q", None
    dig_mod.doh(q, o, "::1", "::1", 443)
    kw, (method, url, params, headers) = seen
    assert (kw["verify"], method, url) == (False, "GET", "https://[::1]:443/q")
    assert base64.urlsafe_b64decode(params["dns"] + "==") == q.to_wire()
    assert "=" not in params["dns"]


def test_help_lists_the_options():
    r = query("-h")
    assert r.returncode == 0
    for word in ("+tls-ca", "+https", "--in-process", "CORENET_RESOLV_CONF", "-f FILE"):
        assert word in r.stdout, word


def test_a_fault_of_its_own_is_an_internal_error(monkeypatch, capsys):
    from resolver.tools import dig as dig_mod
    from resolver.tools import dig_exchange

    def broken(*args):
        raise RuntimeError("a bug")
    monkeypatch.setenv("CORENET_RESOLV_CONF", os.devnull)
    monkeypatch.setattr(dig_exchange, "ask", broken)
    assert dig_mod.main(["@127.0.0.1", "example.org"]) == 10
    assert "internal error" in capsys.readouterr().err


def test_a_server_name_not_found_is_a_usage_error(monkeypatch, capsys):
    """As dig; the name is not looked up here (getaddrinfo is replaced)."""
    from resolver.tools import dig as dig_mod

    monkeypatch.setenv("CORENET_RESOLV_CONF", os.devnull)

    def not_found(*args, **kw):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", not_found)
    assert dig_mod.main(["@ns.example", "example.org"]) == 1
    out = capsys.readouterr()
    assert "couldn't get address for 'ns.example': not found" in out.err and out.out == ""


# ---- +multi, +cookie, +trace -----------------------------------------------------------------

@pytest.mark.parametrize("name, rdtype", [("example.com", "SOA"), ("example.com", "MX"),
                                          ("nope.example.com", "A")])
def test_multi_matches_bind_dig(daemon, name, rdtype):
    args = ["@127.0.0.1", "-p", str(daemon.port), name, rdtype, "+multi", "+nocookie"]
    ours, theirs = query(*args[:-1]), dig(*args)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout
    if rdtype == "SOA":
        assert "; serial" in ours.stdout and "; expire (" in ours.stdout


def test_multi_keys_signatures_and_digests():
    import dns.dnssec
    import dns.rrset

    from resolver.tools.dig_options import Options
    from resolver.tools.dig_output import rr_lines

    key = ("257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+"
           "KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==")
    rrset = dns.rrset.from_text("example.com.", 3600, "IN", "DNSKEY", key)
    lines = "\n".join(rr_lines([rrset], multi=True)).split("\n")
    assert lines[0] == "example.com.\t\t3600 IN\tDNSKEY 257 3 13 ("
    assert lines[1:3] == ["\t\t\t\tmdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+Gq",
                          "\t\t\t\tJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ=="]
    assert lines[3] == (f"\t\t\t\t) ; KSK; alg = ECDSAP256SHA256 ; key id = "
                        f"{dns.dnssec.key_id(rrset[0])}")
    ds = dns.rrset.from_text("example.com.", 60, "IN", "DS", "31406 13 2 " + "ab" * 32)
    assert "\n".join(rr_lines([ds], multi=True)).split("\n") == [
        "example.com.\t\t60 IN DS 31406 13 2 (", "\t\t\t\t" + "AB" * 22,
        "\t\t\t\t" + "AB" * 10 + " )"]
    assert Options().multi is False


HASHED = "2vptu5timamqttgl4luu9kg21e0aor3s.example.com. 300 IN "
#: certificates and keys BIND lays out over lines with +multi (and +nocrypto leaves whole,
#: an OpenPGP key aside)
CERTIFIED = ["example.com. 60 IN CERT PKIX 12345 RSASHA256 MIIB0zCCAX2gAwIBAgIJAJ0s" + "A" * 56,
             "example.com. 60 IN OPENPGPKEY mQINBFit2jsBEADrbl5vjVxYeAE0g0IDYCBpHirv1Sjlqxx5gjt"
             "Phb2YhvyDMXjq2hgEj3M5IxRyNfnkc6lXyZmmZw9fcWU6pHrUGbR4TQEVcLUF9A4rcl2ZF4hcAU0Vb9pN",
             "example.com. 60 IN IPSECKEY 10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6"
             "BSGvgqt4AQ==",
             "example.com. 60 IN IPSECKEY 10 0 2 . " + "AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGv"
             "gqt4" * 2 + "AQ=="]


@pytest.mark.parametrize("records", [
    ["_443._tcp.example.com. 300 IN TLSA 3 1 1 " + "cd" * 32,
     "_443._tcp.example.com. 300 IN TLSA 3 1 2 " + "cd" * 64,
     "_443._tcp.example.com. 300 IN TLSA 3 1 0 " + "cd" * 10],
    ["example.com. 300 IN SSHFP 4 2 " + "ef" * 32, "example.com. 300 IN SSHFP 1 1 " + "ef" * 20,
     "example.com. 300 IN SSHFP 1 3 " + "ef" * 2],
    [HASHED + "NSEC3 1 1 12 aabbccdd 2vptu5timamqttgl4luu9kg21e0aor3s A RRSIG",
     # types past 255: a window of their own, on a line of its own
     HASHED + "NSEC3 1 0 0 - 2vptu5timamqttgl4luu9kg21e0aor3s A NS SOA RRSIG CAA TYPE65534",
     HASHED + "NSEC3 1 0 0 - 2vptu5timamqttgl4luu9kg21e0aor3s"],           # no types
    ["example.com. 300 IN NSEC3PARAM 1 0 0 aabb",
     "example.com. 300 IN NSEC a.example.com. A RRSIG NSEC CAA"],          # one line each
    ["example.com. 300 IN SOA ns.example.com. host.example.com. 1 3600 600 86400 300",
     "example.com. 300 IN DS 12345 13 4 " + "ab" * 48, "example.com. 300 IN A 192.0.2.1",
     "example.com. 300 IN DNSKEY 257 3 13 " + "K" * 60 + "L" * 28,
     "example.com. 300 IN RRSIG A 13 2 300 20300101000000 20200101000000 12345 "
     "example.com. " + "A" * 40 + "B" * 40 + "C" * 40 + "D" * 8],
    ["example.com. 60 IN ZONEMD 2018031500 1 1 " + "FEBE3D4C" * 12,
     "example.com. 60 IN TYPE65280 \\# 4 0A0B0C0D", "example.com. 60 IN TYPE65281 \\# 0",
     "example.com. 60 IN NID 10 0014:4fff:ff20:ee64", "a.example.com. 60 IN LOC 1 S 2 W 0m"],
    CERTIFIED,
])
@pytest.mark.parametrize("opts", [
    ["+multi"], ["+multi", "+norrcomments"], ["+multi", "+nocrypto"],
    ["+multi", "+unknownformat"],
    # +split sets the width of the lines, in either order; 0 (or +nosplit): one line
    ["+multi", "+split=20"], ["+split=20", "+multi"], ["+multi", "+split=18"],
    ["+multi", "+split=56"], ["+multi", "+split=100"], ["+multi", "+split"],
    ["+multi", "+split=0"], ["+multi", "+nosplit"], ["+multi", "+unknownformat", "+split=8"]])
def test_multi_lays_records_out_as_dig(fixed, records, opts):
    """+multi: TLSA's and SSHFP's hex in parentheses over lines of 44 characters (or
    +split's width), NSEC3's next hash and each window of its types on lines of their
    own, as dig prints them; with +nocrypto a key's id and "[omitted]" in place of digests and signatures; with
    +unknownformat every type's RFC 3597 form, its hex over lines the same way."""
    args = ["@127.0.0.1", "-p", str(fixed(records).port), "example.com", "+noall",
            "+answer", *opts]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout, ours.stdout + theirs.stdout
    assert len(ours.stdout.splitlines()) > len(records) or "NSEC3PARAM" in records[0], \
        ours.stdout


def test_cookie_is_sent_and_the_servers_shown(recorder):
    """A client cookie by default, as dig sends it (dig itself asks the same server)."""
    at = ["@127.0.0.1", "-p", str(recorder.port), "example.org"]
    wire = []
    for ask in (query, dig):
        for opts in ((), ("+nocookie",), ("+nocookie", "+cookie")):
            assert ask(*at, *opts).returncode == 0
            wire.append([(int(o.otype), len(o.to_wire())) for o in recorder.seen[-1].options])
    assert wire[:3] == wire[3:] == [[(10, 8)], [], [(10, 8)]]
    assert recorder.seen[-1].options[0].to_wire() != recorder.seen[-3].options[0].to_wire()
    r = query(*at, "+cookie=0102030405060708")
    [cookie] = [o for o in recorder.seen[-1].options if int(o.otype) == 10]
    assert cookie.to_wire() == bytes(range(1, 9))
    assert "COOKIE" not in r.stdout          # this server sends none back
    assert query(*at, "+cookie=xyz").returncode == 1
    assert query(*at, "+cookie=0102").returncode == 1


def _yaml_comparable(text: str) -> list[str]:
    """+yaml's text without what differs between two asks: times, ids, TTLs, cookies."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"!!timestamp \S+", "!!timestamp T", line)
        line = re.sub(r"id: \d+", "id: N", line)
        line = re.sub(r"COOKIE: [0-9a-f]+", "COOKIE: X", line)
        line = re.sub(r"^(\s+- '\S+ )\d+ ", r"\1TTL ", line)
        out.append(line)
    return out


@pytest.mark.parametrize("server, args", [
    ("daemon", ["www.example.com"]),
    ("daemon", ["nope.example.com", "+dnssec"]),
    ("daemon", ["example.com", "MX", "+noall", "+answer"]),
    ("daemon", ["www.example.com", "+yaml", "+qr", "+tcp"]),
    ("daemon", ["www.example.com", "+short"]),
    ("daemon", ["example.com", "NS", "+short", "+qr"]),
    ("recorder", ["example.org", "+nsid", "+nocookie"]),
])
def test_yaml_matches_bind_dig(daemon, recorder, server, args):
    port = daemon.port if server == "daemon" else recorder.port
    args = ["@127.0.0.1", "-p", str(port), "+yaml", *args]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert _yaml_comparable(ours.stdout) == _yaml_comparable(theirs.stdout), \
        ours.stdout + theirs.stdout
    assert ours.stdout.startswith("- type: MESSAGE\n")


def test_cookie_of_a_server_is_shown_in_the_opt_section():
    """A server that answers the client cookie with its own: dig's COOKIE line."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    def serve():
        data, peer = sock.recvfrom(65535)
        q = dns.message.from_wire(data)
        [c] = [o for o in q.options if int(o.otype) == 10]
        r = dns.message.make_response(q)
        r.use_edns(0, options=[dns.edns.GenericOption(10, c.to_wire() + b"S" * 16)])
        sock.sendto(r.to_wire(), peer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        r = query("@127.0.0.1", "-p", str(sock.getsockname()[1]), "example.org",
                  "+cookie=0102030405060708")
    finally:
        t.join(10)
        sock.close()
    assert r.returncode == 0, r.stderr
    assert "; COOKIE: 0102030405060708" + ("53" * 16) + " (good)" in r.stdout


def test_trace_follows_the_referrals_from_the_lab_root(lab):
    from dnslab import zones as Z

    r = query("-p", str(lab.port), "www.example.com", "A", "+trace",
              "--root-hints", str(lab.root_hints_file))
    assert r.returncode == 0, r.stdout + r.stderr
    blocks = [b for b in r.stdout.split("\n\n") if ";; Received" in b]
    # the root's NS set, the root's referral to com., com.'s to example.com., the answer
    assert len(blocks) == 4, r.stdout
    assert re.search(r"^\.\s+\d+\s+IN\s+NS\s", blocks[0], re.M)
    assert re.search(r"^com\.\s+\d+\s+IN\s+NS\s", blocks[1], re.M)
    assert re.search(r"^example\.com\.\s+\d+\s+IN\s+NS\s", blocks[2], re.M)
    assert re.search(r"^www\.example\.com\.\s+\d+\s+IN\s+A\s+192\.0\.2\.1$", blocks[3], re.M)
    roots = {a for _, a in lab.root_hints}
    for b in blocks[:2]:
        m = re.search(r";; Received \d+ bytes from ([\d.]+)#(\d+)\((\S+)\) in \d+ ms", b)
        assert m and m.group(1) in roots and m.group(2) == str(lab.port)
    m = re.search(r"from ([\d.]+)#", blocks[3])
    assert m.group(1) in (Z.EXAMPLE_COM_1, Z.EXAMPLE_COM_2)


def test_trace_ends_at_nxdomain_and_when_nobody_answers(lab, tmp_path):
    r = query("-p", str(lab.port), "nope.example.com", "+trace",
              "--root-hints", str(lab.root_hints_file))
    assert r.returncode == 0 and "IN\tSOA\t" in r.stdout.split("\n\n")[-2], r.stdout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:   # bound, never read
        silent.bind(("127.0.0.1", 0))
        hints = tmp_path / "hints"
        hints.write_text(". 3600 NS a.dead.\na.dead. 3600 A 127.0.0.1\n")
        r = query("-p", str(silent.getsockname()[1]), "example.org", "+trace", "+time=1",
                  "+tries=1", "--root-hints", str(hints))
    assert r.returncode == 9, r.stdout
    assert "timed out" in r.stdout and ";; no servers could be reached" in r.stdout


def test_the_listed_options_are_the_parsers():
    """COMPATIBILITY.md's list of dig options and the README's table name exactly what the
    parser takes, each with its +no form."""
    import pathlib

    from resolver.tools.dig_options import PLUS_ALIASES, PLUS_OPTIONS, Options, UsageError, _plus

    root = pathlib.Path(__file__).parents[2]
    text = (root / "COMPATIBILITY.md").read_text()
    para = text.split("`corenet-resolver query` takes dig's options:", 1)[1].split("(each")[0]
    listed = re.findall(r"\+([a-z0-9-]+)", para)
    assert sorted(listed) == sorted(PLUS_OPTIONS)
    readme = (root / "README.md").read_text()
    for name in PLUS_OPTIONS:
        assert f"`+{name}" in readme, name
    values = {"subnet": "=192.0.2.0/24", "tls-hostname": "=dns.example", "time": "=2",
              "timeout": "=2", "tries": "=2", "retry": "=1", "bufsize": "=4096",
              "qid": "=1", "ednsopt": "=10:0102", "opcode": "=NOTIFY", "ednsflags": "=1",
              "split": "=16", "domain": "=example.com", "ndots": "=2"}
    for name in (*PLUS_OPTIONS, *PLUS_ALIASES):
        _plus(Options(), f"+{name}{values.get(name, '')}")
        if name not in ("time", "timeout", "tries", "retry", "qid", "bufsize"):   # no +notime
            _plus(Options(), f"+no{name}")
    with pytest.raises(UsageError):
        _plus(Options(), "+nosuchoption")
    assert PLUS_ALIASES.keys().isdisjoint(PLUS_OPTIONS)
    assert set(PLUS_ALIASES.values()) <= set(PLUS_OPTIONS)


class Fixed(Recorder):
    """A Recorder that answers every query with the same records, on TCP too (the same
    port); ``transports`` has the transport of each query."""

    def __init__(self, records: list[str]):
        import dns.rrset

        self.rrsets = [dns.rrset.from_text(*r.split(" ", 4)) for r in records]
        self.transports: list[str] = []
        for _ in range(20):             # a UDP port whose TCP twin is free too
            super().__init__()
            self.tcp = socket.socket()
            try:
                self.tcp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.tcp.close()
                super().close()
        self.tcp.listen(8)
        threading.Thread(target=serve_tcp, args=(self.tcp, self.answer_tcp, 5),
                         daemon=True).start()

    def respond(self, q: dns.message.Message, transport: str) -> dns.message.Message:
        self.transports.append(transport)
        r = dns.message.make_response(q)
        r.answer.extend(self.rrsets)
        return r

    def answer_tcp(self, conn: socket.socket, q: dns.message.Message) -> None:
        send(conn, self.respond(q, "tcp").to_wire())

    def close(self):
        super().close()
        self.tcp.close()


class Shaped(Fixed):
    """A Fixed server whose UDP reply goes as the datagrams ``shape(query, wire)`` makes
    of it, in order (a stray first, the reply cut short, octets after it...)."""

    def __init__(self, records: list[str], shape):
        self.shape = shape
        super().__init__(records)

    def reply_udp(self, q: dns.message.Message, peer) -> None:
        for datagram in self.shape(q, self.respond(q, "udp").to_wire()):
            self.sock.sendto(datagram, peer)


def _stray_first(q, wire: bytes) -> list[bytes]:
    """The reply with another ID (a stray, or a late reply to an earlier try), then as it
    is."""
    return [bytes([wire[0] ^ 0xFF]) + wire[1:], wire]


def _id_free(text: str) -> list[str]:
    return comparable(re.sub(r"expected ID \d+, got \d+", "N/M", text))


def test_a_reply_with_another_id_is_said_and_the_right_one_awaited_as_dig():
    f = Shaped(["example.com. 300 IN A 192.0.2.1"], _stray_first)
    try:
        for opts in ([], ["+short"], ["+noall", "+answer"]):
            args = ["@127.0.0.1", "-p", str(f.port), "example.com", "+tries=1", *opts]
            ours, theirs = query(*args), dig(*args)
            assert ours.returncode == theirs.returncode == 0, ours.stdout + ours.stderr
            assert _id_free(ours.stdout) == _id_free(theirs.stdout), ours.stdout + theirs.stdout
            assert ours.stdout.startswith(";; Warning: ID mismatch: expected ID ")
    finally:
        f.close()


def _other_question(name: str, rdtype: str):
    """A reply to another question (with the query's ID), then the reply."""
    def shape(q, wire: bytes) -> list[bytes]:
        other = dns.message.make_query(name, rdtype)
        other.id = q.id
        return [dns.message.make_response(other).to_wire(), wire]
    return shape


def _question_left_out(q, wire: bytes) -> list[bytes]:
    r = dns.message.from_wire(wire)
    r.question = []
    return [r.to_wire()]


#: the odd replies dig takes, says and shows, and the words it says
ODD_REPLIES = {
    "extra octets": (lambda q, w: [w + b"\x00\x01\x02\x03"], "4 extra bytes at end"),
    "one extra octet": (lambda q, w: [w + b"\x00"], "1 extra bytes at end"),
    "cut in the OPT record": (lambda q, w: [w[:-3]], "malformed message packet"),
    "cut in the question": (lambda q, w: [w[:20]], "malformed message packet"),
    "cut in the answer": (lambda q, w: [w[:40]], "malformed message packet"),
    "qdcount 0, the question there": (lambda q, w: [w[:4] + b"\0\0" + w[6:]],
                                      "malformed message packet"),
    "no question": (_question_left_out, ";; ->>HEADER<<-"),
    "another name first": (_other_question("other.example.", "A"),
                           "Question section mismatch: got other.example/A/IN"),
    "another type first": (_other_question("example.com.", "MX"),
                           "Question section mismatch: got example.com/MX/IN"),
    "the root first": (_other_question(".", "NS"), "Question section mismatch: got ./NS/IN"),
    "the name in other case": (_other_question("EXAMPLE.com.", "A"), ";; ->>HEADER<<-"),
    "shorter than a header first": (lambda q, w: [w[:7], w], "short (< header size)"),
    "a bad compression pointer": (lambda q, w: [w[:12] + b"\xff" * 20],
                                  "Got bad packet: bad compression pointer"),
    "a bad pointer, shorter": (lambda q, w: [w[:12] + b"\xc0\x30abc\x00\x10\x7f"],
                               "Got bad packet: bad compression pointer"),
    "QR clear": (lambda q, w: [w[:2] + bytes([w[2] & 0x7F]) + w[3:]],
                 ";; Warning: query response not set"),
}


@pytest.mark.parametrize("odd", ODD_REPLIES)
@pytest.mark.parametrize("opts", [[], ["+short"]])
def test_odd_replies_are_said_and_shown_as_dig(odd, opts):
    """A reply with octets after its end, one cut short or with no question, a reply to
    another question or a datagram shorter than a header before the right reply, one
    without QR set: dig's warning and what it reads of the reply (one it cannot read at
    all: its octets), exit 0."""
    shape, said = ODD_REPLIES[odd]
    f = Shaped(["example.com. 300 IN A 192.0.2.1"], shape)
    try:
        # one ID for both: the octets dumped are the same
        args = ["@127.0.0.1", "-p", str(f.port), "example.com", "+tries=1", "+time=2",
                "+qid=4660", *opts]
        ours, theirs = query(*args), dig(*args)
    finally:
        f.close()
    assert ours.returncode == theirs.returncode == 0, ours.stdout + ours.stderr
    assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout
    assert said in ours.stdout or "+short" in opts


SERVICES = ['example.com. 60 IN HTTPS 1 . alpn="h2,h3" port=443 ipv4hint=192.0.2.1,192.0.2.2 '
            'ipv6hint=2001:db8::1',
            "example.com. 60 IN HTTPS 1 . mandatory=port,alpn alpn=h2 port=443",
            'example.com. 60 IN HTTPS 3 . dohpath="/q{?dns}" ech="AEn+DQBFKwAgACABWIHUGj4u+PIg'
            'gYXcR5JF0gYk3dCRioBW8uJq9H4mKAAIAAEAAQABAANAEnB1YmxpYy50bHMtZWNoLmRldgAA"',
            "svc.example.com. 60 IN SVCB 0 svc.example.",
            'svc.example.com. 60 IN SVCB 2 svc.example. no-default-alpn alpn="h3,h2" '
            'key65000="a b\\\\,c" key667=x']


@pytest.mark.parametrize("opts", [[], ["+noall", "+answer"], ["+short"],
                                  ["+noall", "+answer", "+multi"], ["+tcp", "+short"]])
def test_svcb_and_https_are_written_as_dig(fixed, opts):
    """SVCB and HTTPS data as BIND 9.18 writes it (alpn and unnamed keys quoted, the
    others not), with one whose ECH value dnspython refuses (not an ECHConfigList): shown
    as dig shows it, not a failed look-up."""
    import base64

    import dns.name
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    f = fixed(SERVICES)
    ech = base64.b64decode("AEX+DQBBhAAgACBdgk5K")
    bad = dns.rrset.RRset(dns.name.from_text("ech.example.com."), dns.rdataclass.IN,
                          dns.rdatatype.HTTPS)
    bad.add(dns.rdata.GenericRdata(dns.rdataclass.IN, dns.rdatatype.HTTPS,
                                   b"\0\1\0\0\5" + bytes([0, len(ech)]) + ech), 60)
    f.rrsets.append(bad)
    args = ["@127.0.0.1", "-p", str(f.port), "example.com", "HTTPS", "+tries=1", *opts]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 0, ours.stdout + ours.stderr
    assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout
    assert "ech=AEX+DQBBhAAgACBdgk5K" in ours.stdout


@pytest.mark.parametrize("opts", [
    ["+edns=1"], ["+edns=1", "+short"], ["+edns=1", "+noednsnegotiation"],
    ["+edns=1", "+nocookie", "+qr"], ["+edns=3", "+nocomments"], ["+edns=1", "+tcp"],
    ["+edns=1", "+noedns", "+dnssec", "+nocookie", "+qr"], ["+edns="],
])
def test_another_edns_version_is_negotiated_down_as_dig(daemon, opts):
    """+edns=N sends version N; the daemon's BADVERS (which gives version 0) is said and
    asked again with version 0, with a new ID (+qr prints it), as dig does; not with
    +noednsnegotiation (the BADVERS reply is the answer)."""
    args = ["@127.0.0.1", "-p", str(daemon.port), "www.example.com", *opts]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout
    if opts == ["+edns=1"]:
        assert ";; BADVERS, retrying with EDNS version 0." in ours.stdout


@pytest.mark.parametrize("option, value", [
    *(("edns", v) for v in ("256", "-1", "x", "99999999999")),
    *(("bufsize", v) for v in ("70000", "65536", "4294967296", "-1", "+5", "0x10", "12abc")),
])
def test_a_number_out_of_range_is_digs_error(option, value):
    """+edns=N takes 0 to 255, +bufsize=N 0 to 65535, in digits; another value is dig's
    error, said on stdout and stderr as dig says it, exit status 10, nothing asked."""
    with refusing_port(socket.SOCK_DGRAM) as port:
        args = ["@127.0.0.1", "-p", str(port), "+tries=1", "+time=1", "example.com",
                f"+{option}={value}"]
        ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 10, ours.stderr
    assert _prog_free(ours.stderr) == _prog_free(theirs.stderr)
    assert ours.stdout == theirs.stdout
    said = {"edns": "edns", "bufsize": "buffer size"}[option]
    assert ours.stdout.startswith(f"invalid {said} '{value}': ")


def test_nobufsize_is_not_an_option_as_dig():
    args = ["@127.0.0.1", "-p", "9", "example.com", "+nobufsize"]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 1
    assert "Invalid option: +nobufsize" in ours.stderr
    assert "Invalid option: +nobufsize" in theirs.stderr


class Refusing(Fixed):
    """Answers every query with ``rcode`` and no OPT record, as a server that does not
    take EDNS may."""

    def __init__(self, rcode: int):
        self.rcode = rcode
        super().__init__([])

    def respond(self, q: dns.message.Message, transport: str) -> dns.message.Message:
        r = dns.message.make_response(q)
        r.set_rcode(self.rcode)
        r.use_edns(False)
        return r


@pytest.mark.parametrize("rcode", ["FORMERR", "NOTIMP"])
@pytest.mark.parametrize("opts", [[], ["+norec"], ["+noedns"]])
def test_an_edns_query_refused_without_opt_is_warned_of_as_dig(rcode, opts):
    f = Refusing(dns.rcode.from_text(rcode))
    try:
        args = ["@127.0.0.1", "-p", str(f.port), "example.com", "+tries=1", *opts]
        ours, theirs = query(*args), dig(*args)
        assert ours.returncode == theirs.returncode == 0, ours.stdout + ours.stderr
        assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout
        assert ("EDNS query returned status" in ours.stdout) is ("+noedns" not in opts)
    finally:
        f.close()


class CookieServer(Fixed):
    """Answers with a server cookie after the client's; a UDP query that carries only the
    client cookie (every UDP query when ``stubborn``) gets BADCOOKIE."""

    def __init__(self, stubborn: bool = False):
        self.stubborn = stubborn
        super().__init__(["example.org. 300 IN A 192.0.2.1"])

    def respond(self, q, transport):
        r = super().respond(q, transport)
        sent = [o.to_wire() for o in q.options if int(o.otype) == 10]
        if sent:
            r.use_edns(0, options=[dns.edns.GenericOption(10, sent[0][:8] + b"S" * 16)])
            if transport == "udp" and (self.stubborn or len(sent[0]) == 8):
                r.answer.clear()
                r.set_rcode(dns.rcode.BADCOOKIE)
        return r


@pytest.mark.parametrize("stubborn", [False, True])
@pytest.mark.parametrize("opts", [[], ["+showbadcookie"], ["+nobadcookie"], ["+nocomments"]])
def test_badcookie_is_asked_again_as_dig_does(stubborn, opts):
    """+[no]badcookie and +showbadcookie: the text of dig and ours, the cookies masked."""
    server = CookieServer(stubborn)
    try:
        args = ["@127.0.0.1", "-p", str(server.port), "example.org", *opts]
        ours, theirs = query(*args), dig(*args)
    finally:
        server.close()

    def masked(text):
        return [re.sub(r"COOKIE: [0-9a-f]+", "COOKIE: X", line) for line in comparable(text)]
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert masked(ours.stdout) == masked(theirs.stdout), ours.stdout + theirs.stdout
    assert ("BADCOOKIE, retrying" in ours.stdout) == (opts != ["+nobadcookie"]
                                                       and opts != ["+nocomments"])


SIGNED = ["example.com. 300 IN RRSIG A 13 2 300 20300101000000 20200101000000 12345 "
          "example.com. " + "A" * 40 + "B" * 40 + "C" * 40 + "D" * 8,
          "example.com. 300 IN DNSKEY 257 3 13 " + "K" * 60 + "L" * 28,
          "example.com. 300 IN DS 12345 13 4 " + "ab" * 48,
          "example.com. 300 IN TLSA 3 1 1 " + "cd" * 32,
          "example.com. 300 IN SSHFP 4 2 " + "ef" * 32]


@pytest.fixture
def fixed():
    made = []

    def make(records):
        made.append(Fixed(records))
        return made[-1]

    yield make
    for f in made:
        f.close()


def test_keys_signatures_and_digests_are_grouped_as_bind_does(fixed):
    """Base64 and hex in groups of 56, hex digests in upper case: the same text as dig."""
    at = ["@127.0.0.1", "-p", str(fixed(SIGNED).port), "example.com"]
    for opts in (["+noall", "+answer"], ["+short"]):
        ours, theirs = query(*at, *opts), dig(*at, *opts)
        assert ours.returncode == theirs.returncode == 0, ours.stderr
        assert ours.stdout == theirs.stdout
    assert " ".join(["A" * 40 + "B" * 16, "B" * 24 + "C" * 32, "C" * 8 + "D" * 8]) in ours.stdout


def test_any_goes_over_tcp_unless_notcp(fixed):
    f = fixed(["example.com. 300 IN A 192.0.2.1"])
    at = ["@127.0.0.1", "-p", str(f.port), "example.com", "ANY"]
    for opts, transport in (([], "tcp"), (["+notcp"], "udp"), (["+tcp"], "tcp")):
        for run in (query, dig):
            before = len(f.transports)
            r = run(*at, *opts)
            assert r.returncode == 0, r.stdout + r.stderr
            assert f.transports[before:] == [transport], (run.__name__, opts)
            assert f"({transport.upper()})" in r.stdout


def test_a_refused_port_says_connection_refused_as_dig():
    with refusing_port(socket.SOCK_DGRAM) as port:
        args = ["@127.0.0.1", "-p", str(port), "example.com", "+tries=2", "+time=1"]
        ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 9
    assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout
    assert ours.stdout.count("connection refused") == 2


def test_short_is_global_wherever_it_is_given(daemon):
    at = ["@127.0.0.1", "-p", str(daemon.port)]
    for args in (["www.example.com", "alias.example.com", "+short"],
                 ["+short", "www.example.com", "v4only.example.com", "AAAA",
                  "alias.example.com"],
                 ["www.example.com", "+short", "example.com", "MX"]):
        ours, theirs = query(*at, *args), dig(*at, *args)
        assert ours.returncode == theirs.returncode == 0, ours.stderr
        assert ours.stdout == theirs.stdout, args
    assert ours.stdout.count("\n") >= 3


@pytest.mark.parametrize("transport, port", [("+tls", "tls_port"), ("+https", "https_port")])
def test_a_certificate_that_fails_is_said_once_not_tried_again(daemon, transport, port):
    """dig's one line, with OpenSSL's reason; no try after it (dig then exits 0, which
    hides the failure: this command exits 9, no reply)."""
    at = ["@127.0.0.1", "-p", str(getattr(daemon, port)), "www.example.com", transport]
    for opts in ([f"+tls-ca={daemon.ca.pem}", "+tls-hostname=wrong.example"],
                 ["+tls-ca", f"+tls-hostname={SERVER_NAME}"]):        # the system's CAs
        ours, theirs = query(*at, *opts), dig(*at, *opts)
        assert (ours.returncode, theirs.returncode) == (9, 0), ours.stderr
        assert ours.stdout == theirs.stdout, ours.stdout + theirs.stdout
        assert ours.stdout.startswith(";; TLS peer certificate verification for")


@pytest.fixture(scope="module")
def daemon_on_lab_port(lab, tmp_path_factory):
    """A daemon at 127.0.0.1 on the lab's port (no authority of the lab is at 127.0.0.1),
    so that one -p reaches it and the lab's authorities, as +trace @SERVER needs."""
    d = Daemon(tmp_path_factory.mktemp("digtrace"), lab, port=lab.port).start()
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


def test_trace_at_a_server_starts_from_its_root_ns(daemon_on_lab_port, lab):
    """The root's NS set is asked of @SERVER (with recursion), and the walk starts at the
    root servers it names, never at the shipped hints. (Not side by side with BIND's dig:
    the lab's root NS names have no glue there, and dig would look their addresses up with
    the host's resolver.)"""
    from dnslab import zones as Z

    r = query("@127.0.0.1", "-p", str(lab.port), "www.example.com", "+trace")
    assert r.returncode == 0, r.stdout + r.stderr
    blocks = [b for b in r.stdout.split("\n\n") if ";; Received" in b]
    froms = [re.search(r";; Received \d+ bytes from ([\d.]+)#(\d+)", b).groups()
             for b in blocks]
    assert froms[0] == ("127.0.0.1", str(lab.port))             # the server asked
    assert re.search(r"^\.\s+\d+\s+IN\s+NS\s", blocks[0], re.M)
    assert froms[1][0] in (Z.ROOT_A, Z.ROOT_B)                   # the lab's root, named by it
    assert re.search(r"^com\.\s+\d+\s+IN\s+NS\s", blocks[1], re.M)
    assert re.search(r"^www\.example\.com\.\s+\d+\s+IN\s+A\s+192\.0\.2\.1$", blocks[-1],
                     re.M)
    assert all(port == str(lab.port) for _, port in froms)


PRINTED = SIGNED + ["example.com. 300 IN A 192.0.2.1", "example.com. 300 IN AAAA 2001:db8::1",
                    "example.com. 90 IN TXT hello", "example.com. 694861 IN MX 10 mx.example.com.",
                    "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.com. 300 IN NSEC3 1 0 10 AABB "
                    "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom A RRSIG",
                    "example.com. 300 IN NSEC3PARAM 1 0 10 AABB",
                    "example.com. 300 IN CDNSKEY 257 3 13 " + "K" * 88,
                    # LOC's sizes, a locator's groups, RFC 3597's hex, a zone digest
                    "a.example.com. 60 IN LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m "
                    "10000m 10m", "b.example.com. 60 IN LOC 52 22 23.5 N 4 53 32 E 12.5m 1.5m "
                    "20m 0.5m", "c.example.com. 60 IN LOC 1 S 2 W 0m",
                    "example.com. 60 IN NID 10 0014:4fff:ff20:ee64",
                    "example.com. 60 IN L64 10 2001:0db8:1140:1000",
                    "example.com. 60 IN TYPE65280 \\# 4 0A0B0C0D",
                    "example.com. 60 IN TYPE65281 \\# 0",
                    "example.com. 60 IN ZONEMD 2018031500 1 1 " + "FEBE3D4C" * 12] + CERTIFIED


@pytest.mark.parametrize("opts", [
    ["+nottlid"], ["+noclass"], ["+nottlid", "+noclass"], ["+ttlunits"], ["+nocrypto"],
    ["+split=8"], ["+split=10"], ["+nosplit"], ["+split=0"], ["+expandaaaa"],
    ["+unknownformat"], ["+short", "+identify"], ["+short", "+nocrypto", "+split=16"],
    ["+nottlid", "+crypto", "+noclass", "+ttlunits"],
])
def test_how_records_are_printed_matches_bind_dig(fixed, opts):
    at = ["@127.0.0.1", "-p", str(fixed(PRINTED).port), "example.com"]
    args = [*at, *([] if "+short" in opts else ["+noall", "+answer"]), *opts]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    mine, bind = ours.stdout, theirs.stdout
    if "+identify" in opts:                       # the time it took differs
        mine, bind = (re.sub(r" in \d+ ms\.$", "", t, flags=re.M) for t in (mine, bind))
    assert mine == bind, mine + bind
    assert ours.stderr == theirs.stderr


@pytest.mark.parametrize("opts", [
    ["+nottlid"], ["+noclass"], ["+nottlid", "+noclass"], ["+multi"], ["+nottlid", "+multi"],
    ["+noclass", "+multi"], ["+nottlid", "+noclass", "+multi"], ["+ttlunits", "+noclass"],
])
def test_the_question_and_records_are_laid_out_as_dig(fixed, opts):
    """The columns of the question line and of the records without the TTL or the class,
    or with +multi: dig's style puts the fields nearer the name then."""
    f = fixed(["a-rather-long-label-to-pass.example.com. 300 IN A 192.0.2.1",
               "example.com. 300 IN MX 10 mx.example.com.", "example.com. 90 IN TXT hello"])
    args = ["@127.0.0.1", "-p", str(f.port), "example.com", "+noall", "+question",
            "+answer", *opts]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout, ours.stdout + theirs.stdout


@pytest.mark.parametrize("opts", [
    ["+aaflag", "+raflag", "+tcflag", "+zflag"], ["+aaonly", "+nordflag"],
    ["+opcode=status"], ["+opcode=9"], ["+qid=4660"], ["+ednsflags=1"],
    ["+ednsopt=65001:abcd", "+ednsopt=nsid"], ["+ednsopt=65001:ab", "+noednsopt"],
    ["+header-only"], ["+dnssec", "+ednsflags=0x10"], ["+expire", "+keepalive"],
    ["+coflag"], ["+padding=64"], ["+padding=128", "+nsid", "+dnssec"],
    # +bufsize, +dnssec and +subnet ask with EDNS (version 0) even after +noedns
    ["+bufsize=512", "+noedns"], ["+noedns", "+bufsize"], ["+bufsize=", "+noedns"],
    ["+dnssec", "+noedns"], ["+subnet=192.0.2.0/24", "+noedns"], ["+nsid", "+noedns"],
    ["+bufsize=512", "+edns=1", "+noedns"], ["+noedns", "+bufsize=0", "+edns=1"],
    ["+bufsize=00070"], ["+bufsize=32767"], ["+bufsize=65535"], ["+bufsize=40000", "+noedns"],
    ["+bufsize=512", "+bufsize=32768"], ["+noedns", "+bufsize=40000"],
    ["+noedns", "+bufsize=40000", "+bufsize=512"],
])
def test_the_query_sent_is_digs(recorder, opts):
    """The query on the wire, as BIND's dig sends it (the id aside, unless +qid)."""
    at = ["@127.0.0.1", "-p", str(recorder.port), "example.org", "+nocookie"]
    sent = []
    for run in (dig, query):
        r = run(*at, *opts)
        assert r.returncode == 0, r.stdout + r.stderr
        q = recorder.seen[-1]
        sent.append((q.flags, q.opcode(), q.id if "+qid=4660" in opts else None,
                     [str(rrset) for rrset in q.question], q.edns, q.ednsflags, q.payload,
                     [(int(o.otype), o.to_wire()) for o in q.options]))
    assert sent[0] == sent[1]


@pytest.mark.parametrize("opts", [
    [], ["+zflag", "+aaflag", "+ednsflags=1", "+ednsopt=65001:abcd", "+ednsopt=nsid"],
    ["+opcode=9"], ["+header-only", "+nostats"], ["+nocomments"], ["+short"],
    ["+expire", "+keepalive", "+coflag", "+padding=64"],
])
def test_qr_prints_the_query_as_dig(fixed, opts):
    at = ["@127.0.0.1", "-p", str(fixed(["example.com. 300 IN A 192.0.2.1"]).port),
          "example.com", "+qr", "+qid=4660", "+nocookie"]
    ours, theirs = query(*at, *opts), dig(*at, *opts)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout
    assert (";; Sending:" in ours.stdout) == ("+short" not in opts and "+nocomments" not in opts)


@pytest.mark.parametrize("opts", [[], ["+yaml"], ["+short"], ["+nostats"]])
def test_qr_prints_the_query_on_each_try_as_dig(opts):
    """dig prints the query each time it sends it: once per lost try, with the command
    lines before the first."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:   # bound, never read
        silent.bind(("127.0.0.1", 0))
        args = ["@127.0.0.1", "-p", str(silent.getsockname()[1]), "example.org", "+qr",
                "+tries=2", "+time=1", "+nocookie", "+qid=5", *opts]
        ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 9, ours.stderr
    same = _yaml_comparable if "+yaml" in opts else comparable
    assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout
    sent = ours.stdout.count("type: RECURSIVE_QUERY" if "+yaml" in opts else ";; Sending:")
    assert sent == (0 if "+short" in opts else 2)


@pytest.mark.parametrize("opts", [[], ["+yaml"]])
def test_qr_prints_the_query_again_over_tcp_and_to_the_next_server(
        daemon, failing_then_answering, opts):
    """A truncated reply: the query again as it goes over TCP; a SERVFAIL: the query
    again as it goes to the next server."""
    same = _yaml_comparable if opts else comparable
    for args in (["@127.0.0.1", "-p", str(daemon.port), "big.example.com", "TXT"],
                 ["@127.0.0.50", "@127.0.0.51", "-p", str(failing_then_answering),
                  "x.example", "+nofail"]):
        args = [*args, "+qr", "+nocookie", "+qid=5", *opts]
        ours, theirs = query(*args), dig(*args)
        assert ours.returncode == theirs.returncode == 0, ours.stderr
        assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout
        assert ours.stdout.count("RECURSIVE_QUERY" if opts else ";; Sending:") == 2


KEYS = ["example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 "
        "3600 1209600 300"] + SIGNED[:3] + ["example.com. 300 IN CDNSKEY 256 3 8 " + "Q" * 88]


@pytest.mark.parametrize("opts", [["+rrcomments"], ["+norrcomments"], ["+multi"],
                                  ["+multi", "+norrcomments"], ["+multi", "+rrcomments"]])
def test_record_comments_as_dig(fixed, opts):
    at = ["@127.0.0.1", "-p", str(fixed(KEYS).port), "example.com", "+noall", "+answer"]
    ours, theirs = query(*at, *opts), dig(*at, *opts)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout, ours.stdout + theirs.stdout
    assert ours.stderr == theirs.stderr == ""       # no library's warning in between
    assert ("key id =" in ours.stdout) == ("+norrcomments" not in opts and
                                          ("+multi" in opts or "+rrcomments" in opts))


@pytest.mark.parametrize("args", [
    ["www", "+domain=example.com", "+ndots=1"],
    ["www", "+search", "+domain=example.com", "+ndots=1", "+short"],
    ["www", "+showsearch", "+domain=nowhere.example", "+ndots=1"],
    ["www.example", "+domain=com", "+ndots=1"],                   # as it is first: found
    ["www.example", "+domain=com", "+ndots=3"],                   # searched first
    ["v4only", "AAAA", "+showsearch", "+domain=example.com", "+ndots=1"],   # NODATA ends it
    ["www.example.", "+domain=com", "+ndots=3"],                 # absolute: no search
    ["nope", "+showsearch", "+domain=example.com", "+ndots=1", "+nostats"],
    ["www", "+domain=example.com", "+ndots=1", "+qr", "+nocookie", "+qid=7"],
])
def test_search_list_as_dig(daemon, args):
    at = ["@127.0.0.1", "-p", str(daemon.port)]
    ours, theirs = query(*at, *args), dig(*at, *args)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout


@pytest.mark.parametrize("args", [
    "www.x a a", "www.x in ch", "-x 127.0.0.1 a", "-x 127.0.0.1 a a", "www.x a ns",
    "www.x -t a ns", "www.x a y.z a", "www.x ns a.b", "-t mx www.x a", "www.x ch txt in",
    "-q y.z a a", "www.x -q y.z a", "www.x -c ch txt", "-c ch www.x in", "www.x a -t ns a",
    "-x 127.0.0.1 -x 127.0.0.2 ns", "www.x -t ns y.z a", "mx www.x", "mx", "txt ch"])
def test_types_and_classes_among_names_as_dig(daemon, args):
    """dig's grammar for bare words: a type or class word after a name is its type or
    class (a second one wins, with dig's warning on stderr) until a -t or -c, after
    which such a word is a name; no name asks the root's NS whatever the type."""
    at = ["@127.0.0.1", "-p", str(daemon.port), "+noall", "+question", "+nocookie"]
    ours, theirs = query(*at, *args.split()), dig(*at, *args.split())
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout.split() == theirs.stdout.split() != [], ours.stdout + theirs.stdout
    assert ours.stderr == theirs.stderr


def test_search_list_and_ndots_from_resolv_conf(daemon, tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("search nowhere.example example.com\noptions ndots:2\n")
    at = ["@127.0.0.1", "-p", str(daemon.port), "+search", "+showsearch", "+noall",
          "+question"]
    r = query(*at, "www.example", env={"CORENET_RESOLV_CONF": str(conf)})
    assert r.stdout.split() == [";www.example.nowhere.example.", "IN", "A",
                                ";www.example.example.com.", "IN", "A",
                                ";www.example.", "IN", "A"], r.stdout
    r = query(*at, "www", env={"CORENET_RESOLV_CONF": str(conf)})
    assert r.stdout.split()[::3] == [";www.nowhere.example.", ";www.example.com."]
    r = query(*at[:3], "www", "+noall", "+question")       # without +search: the name
    assert r.stdout.split() == [";www.", "IN", "A"]


IDN = ["xn--mlaut-jva.example. 300 IN CNAME xn--fa-hia.example.",
       "xn--fa-hia.example. 300 IN A 192.0.2.9"]


@pytest.mark.parametrize("opts", [[], ["+idnout"], ["+noidnout"], ["+noidnin"], ["+idnin"],
                                  ["+idnin", "+idnout", "+short"]])
def test_international_names_as_dig(fixed, opts):
    """Off a terminal, dig sends a name's UTF-8 bytes as they are and prints names as they
    come (+idnin, +idnout: IDNA)."""
    at = ["@127.0.0.1", "-p", str(fixed(IDN).port), "ümlaut.example", "+noall", "+answer",
          "+question"]
    ours, theirs = query(*at, *opts), dig(*at, *opts)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout, ours.stdout + theirs.stdout
    assert ("faß.example." in ours.stdout) == ("+idnout" in opts)


@pytest.fixture
def failing_then_answering():
    """A server that answers SERVFAIL at 127.0.0.50 and one that answers at 127.0.0.51,
    on the same port: (port, stop)."""
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.50", 0))
    port = a.getsockname()[1]
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b.bind(("127.0.0.51", port))

    def serve(sock, fail):
        while True:
            try:
                data, peer = sock.recvfrom(65535)
            except OSError:
                return
            q = dns.message.from_wire(data)
            r = dns.message.make_response(q)
            if fail:
                r.set_rcode(dns.rcode.SERVFAIL)
            else:
                r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A",
                                                    "192.0.2.5"))
            sock.sendto(r.to_wire(), peer)

    for sock, fail in ((a, True), (b, False)):
        threading.Thread(target=serve, args=(sock, fail), daemon=True).start()
    yield port
    a.close()
    b.close()


@pytest.mark.parametrize("opts", [["+nofail"], ["+fail"], [], ["+nofail", "+short"],
                                  ["+nofail", "+nocomments"], ["+nofail", "+yaml"]])
def test_several_servers_and_nofail_as_dig(failing_then_answering, opts):
    args = ["@127.0.0.50", "@127.0.0.51", "-p", str(failing_then_answering), "x.example",
            *opts]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    same = _yaml_comparable if "+yaml" in opts else comparable
    assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout
    assert ("192.0.2.5" in ours.stdout) == ("+nofail" in opts)
    # dig's SERVFAIL line is one of its comments
    assert ("Got SERVFAIL reply from 127.0.0.50, trying next server" in ours.stdout) == (
        opts == ["+nofail"])


@pytest.mark.parametrize("opts", [[], ["+nocomments"], ["+yaml"]])
def test_servfail_of_the_last_server_is_said_as_dig(failing_then_answering, opts):
    """The last server's SERVFAIL is the reply: dig says so (a comment) and prints it."""
    args = ["@127.0.0.50", "-p", str(failing_then_answering), "x.example",
            "+nofail", "+tries=1", *opts]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    same = _yaml_comparable if "+yaml" in opts else comparable
    assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout
    assert (";; Got SERVFAIL reply from 127.0.0.50\n" in ours.stdout) == (opts == [])


def _aaaa(*addresses: str) -> list[str]:
    return [f"ipv4only.arpa. 600 IN AAAA {a}" for a in addresses]


@pytest.mark.parametrize("records", [
    _aaaa("64:ff9b::c000:aa", "64:ff9b::c000:ab"),
    _aaaa("2001:db8:1:2:c0:0:aa00:0", "2001:db8:1:2:c0:0:ab00:0"),     # /64, the u octet
    _aaaa("2001:db8:1:2:c0:0:aa00:0"),                                  # .171 missing
    _aaaa("64:ff9b::c000:ab", "2001:db8::c000:aa", "64:ff9b::c000:aa"),  # other prefixes
    _aaaa("2001:db8:100:c000:aa:0:a:b", "2001:db8:100:c000:ab:0:c:d",     # /56, suffix free
          "2001:db8:101:c000:ab::"),
    _aaaa("2001:db8:1:2:3:4:c000:aa", "2001:db8:1:2:3:4:c000:ab", "2001:db8:122:344::c000:ab"),
    _aaaa("2001:db8::1"),
    ["ipv4only.arpa. 600 IN A 192.0.0.170"],
])
def test_dns64prefix_prints_the_prefixes_as_dig(fixed, records):
    """+dns64prefix asks ipv4only.arpa AAAA and prints the DNS64 prefixes (RFC 7050) its
    addresses reveal, one per line and nothing else: the same text as BIND's dig."""
    f = fixed(records)
    for opts in ([], ["+short"], ["+yaml"]):
        args = ["@127.0.0.1", "-p", str(f.port), "+dns64prefix", *opts]
        ours, theirs = query(*args), dig(*args)
        assert ours.returncode == theirs.returncode == 0, ours.stderr
        same = _yaml_comparable if opts == ["+yaml"] else str
        assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout
    assert {(q.question[0].name.to_text(), q.question[0].rdtype) for q in f.seen} == {
        ("ipv4only.arpa.", 28)}


@pytest.mark.parametrize("args", [
    ["+dns64prefix", "example.com", "MX"], ["example.com", "+dns64prefix"],
    ["example.com", "+dns64prefix", "example.org", "+nocomments"],
    ["+dns64prefix", "example.com", "+nodns64prefix"],
])
def test_dns64prefix_is_a_look_up_where_it_stands(fixed, args):
    """As in dig, +dns64prefix is a look-up of its own, asked in its place among the
    names given; the others are asked and printed as usual."""
    f = fixed(_aaaa("64:ff9b::c000:aa", "64:ff9b::c000:ab"))
    asked = {}
    for run in (query, dig):
        before = len(f.seen)
        r = run("@127.0.0.1", "-p", str(f.port), *args)
        assert r.returncode == 0, r.stderr
        asked[run] = [q.question[0].name.to_text() for q in f.seen[before:]], comparable(
            r.stdout)
    assert asked[query] == asked[dig]
    assert "64:ff9b::/96" in asked[query][1]


def test_dns64prefix_of_an_unreachable_server_is_no_reply():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        args = ["@127.0.0.1", "-p", str(port), "+dns64prefix", "+tries=1", "+time=1"]
        ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 9
    assert ours.stdout.splitlines()[-1] == theirs.stdout.splitlines()[-1] == \
        ";; no servers could be reached"


class Scripted:
    """A server at ``address`` on ``port`` over UDP and TCP that meets each query with the
    next step of its transport's script (the last one again once the script is done):
    ``answer`` (an A record), ``tc`` (UDP: an empty reply with TC set), ``drop`` (no
    reply; over TCP the connection is held, unanswered, until the client closes it) or
    ``close`` (TCP: closed once the query is read). ``seen``: (transport, step) of each
    query, in order."""

    def __init__(self, address: str, port: int, udp: list[str], tcp: list[str]):
        self.given = {"udp": list(udp), "tcp": list(tcp)}
        self.reset()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tcp = socket.socket()
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.udp.bind((address, port))
            self.tcp.bind((address, port))
        except OSError:
            self.close()
            raise
        self.tcp.listen(8)
        threading.Thread(target=self.serve_udp, daemon=True).start()
        threading.Thread(target=serve_tcp, args=(self.tcp, self.answer_tcp),
                         daemon=True).start()

    def reset(self) -> list[tuple[str, str]]:
        """The scripts from their start again; what was seen until then."""
        seen, self.seen = getattr(self, "seen", []), []
        self.scripts = {k: list(v) for k, v in self.given.items()}
        return seen

    def step(self, transport: str) -> str:
        script = self.scripts[transport]
        step = script.pop(0) if len(script) > 1 else script[0]
        self.seen.append((transport, step))
        return step

    @staticmethod
    def reply(q: dns.message.Message, step: str) -> bytes:
        r = dns.message.make_response(q)
        if step == "tc":
            r.flags |= dns.flags.TC
        else:
            r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A",
                                                "192.0.2.8"))
        return r.to_wire()

    def serve_udp(self):
        while True:
            try:
                data, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            step = self.step("udp")
            if step != "drop":
                self.udp.sendto(self.reply(dns.message.from_wire(data), step), peer)

    def answer_tcp(self, conn: socket.socket, q: dns.message.Message) -> None:
        step = self.step("tcp")
        if step == "drop":                # held until the client closes (10 s at most)
            while conn.recv(512):
                pass
        elif step == "answer":
            send(conn, self.reply(q, step))

    def close(self):
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def scripted():
    """scripted(first, second): Scripted servers at 127.0.0.60 and 127.0.0.61 on one
    port, each given as (UDP script, TCP script): (port, [servers])."""
    made = []

    def make(*scripts):
        for _ in range(20):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.bind(("127.0.0.60", 0))
                port = probe.getsockname()[1]
            try:
                for n, (udp, tcp) in enumerate(scripts):
                    made.append(Scripted(f"127.0.0.{60 + n}", port, udp, tcp))
                return port, made[-len(scripts):]
            except OSError:
                while made:
                    made.pop().close()
        raise RuntimeError("no port free at 127.0.0.60 and 127.0.0.61")

    yield make
    for s in made:
        s.close()


@pytest.mark.parametrize("scripts, opts, served", [
    # truncated, the TCP try lost: again from the first server, over TCP (2 tries)
    ([(["tc"], ["drop", "answer"])], ["+tries=2"], 0),
    ([(["tc"], ["close", "answer"])], ["+tries=2"], 0),
    # the same with the second server there: the first has the tries left
    ([(["tc"], ["drop", "answer"]), (["answer"], ["answer"])], ["+tries=2"], 0),
    # one try left: the next server, over TCP
    ([(["tc"], ["drop"]), (["answer"], ["answer"])], ["+tries=1"], 1),
    # the second server truncates: TCP from the first server, which answers over TCP
    ([(["drop"], ["answer"]), (["tc"], ["drop"])], ["+tries=2"], 0),
    # and whose TCP try is lost too: the second one's, then no servers could be reached
    ([(["drop"], ["drop"]), (["tc"], ["drop"])], ["+tries=2"], None),
    ([(["tc"], ["drop"]), (["tc"], ["close"])], ["+tries=3", "+qr"], None),
    ([(["tc"], ["drop", "answer"])], ["+tries=2", "+yaml"], 0),
    ([(["tc"], ["drop", "answer"])], ["+tries=2", "+short"], 0),
])
def test_truncated_then_lost_over_tcp_starts_again_from_the_first_server_as_dig(
        scripted, scripts, opts, served):
    """dig asks a truncated reply's question again from the first server, over TCP for
    the rest of the look-up, with the tries left; a lost TCP try starts it again from the
    first server too (or, at the last try, goes to the next one)."""
    port, servers = scripted(*scripts)
    at = [f"@{s.udp.getsockname()[0]}" for s in servers]
    args = [*at, "-p", str(port), "a.example", "+time=1", "+nocookie", "+qid=9", *opts]
    ours = query(*args)
    asked = [s.reset() for s in servers]
    theirs = dig(*args)
    assert ours.returncode == theirs.returncode == (0 if served is not None else 9), \
        ours.stdout + theirs.stdout
    same = _yaml_comparable if "+yaml" in opts else comparable
    assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout
    assert asked == [s.seen for s in servers]        # the same queries, in the same order
    if served is not None and "+short" not in opts and "+yaml" not in opts:
        assert f";; SERVER: 127.0.0.{60 + served}#{port}(127.0.0.{60 + served}) (TCP)" in \
            ours.stdout


def _prog_free(text: str) -> str:
    """stderr with the command's name (either's, dig's as it was run) as "dig:"."""
    return re.sub(r"^(corenet-resolver query|\S*dig):", "dig:", text, flags=re.M)


@pytest.mark.parametrize("name", ["example..com", ".foo", "a" * 64 + ".com",
                                  "abcd." * 60 + "com", "a\\999.com"])
def test_a_name_that_is_not_legal_ends_the_command_as_dig(name):
    """dig's fatal error, its words and its exit status 10; nothing is asked."""
    with refusing_port(socket.SOCK_DGRAM) as port:
        args = ["@127.0.0.1", "-p", str(port), "+tries=1", "+time=1", name]
        ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 10, ours.stderr
    assert _prog_free(ours.stderr) == _prog_free(theirs.stderr)
    assert ours.stdout == theirs.stdout == ""


def test_a_batch_stops_at_its_first_name_that_is_not_legal_as_dig(recorder, tmp_path):
    batch = tmp_path / "names"
    batch.write_text("one.example\nbad..name\nthree.example\n")
    args = ["@127.0.0.1", "-p", str(recorder.port), "+noall", "+question", "-f", str(batch)]
    theirs = dig(*args)
    asked_by_dig = [str(q.question[0].name) for q in recorder.seen]
    recorder.seen.clear()
    ours = query(*args)
    assert ours.returncode == theirs.returncode == 10
    assert ours.stdout == theirs.stdout
    assert [str(q.question[0].name) for q in recorder.seen] == asked_by_dig == ["one.example."]


@pytest.mark.parametrize("args", [["-6", "@127.0.0.1"], ["-4", "@::1"],
                                  ["-b", "127.0.0.1", "@::1"], ["-b", "::1", "@127.0.0.1"]])
def test_a_server_of_the_other_family_as_dig(args):
    """-6 (or -b with an IPv6 address) passes over an IPv4 server's mapped address and asks
    nothing, exit 0; -4 (or an IPv4 -b) and an IPv6 server is dig's error, exit 1."""
    with refusing_port(socket.SOCK_DGRAM) as port:
        line = [*args, "-p", str(port), "+tries=1", "+time=1", "example.org"]
        ours, theirs = query(*line), dig(*line)
    assert ours.returncode == theirs.returncode, (ours.stdout, ours.stderr, theirs.stderr)
    assert ours.stdout.strip() == theirs.stdout.strip()
    assert _prog_free(ours.stderr) == _prog_free(theirs.stderr)


def test_the_source_address_is_bound_as_dig_binds_it():
    """-b ADDR and -b ADDR#PORT: the query leaves from there, over UDP and over TCP."""
    seen: list = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(10)
        port = server.getsockname()[1]

        def answer():
            for _ in range(4):
                try:
                    data, peer = server.recvfrom(4096)
                except OSError:
                    return
                seen.append(peer)
                server.sendto(dns.message.make_response(dns.message.from_wire(data)).to_wire(),
                              peer)

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        for run in (dig, query):
            source = free_port("127.0.0.9")
            for b in ("127.0.0.8", f"127.0.0.9#{source}"):
                r = run("-b", b, "@127.0.0.1", "-p", str(port), "+short", "example.org")
                assert r.returncode == 0, (run, r.stderr)
        thread.join(10)
    assert [a for a, _ in seen] == ["127.0.0.8", "127.0.0.9"] * 2
    assert seen[1][1] != 0 and seen[3][1] != 0
    with refusing_port() as port:
        ours, theirs = (run("-b", "no-address", "@127.0.0.1", "-p", str(port), "x")
                        for run in (query, dig))
        assert ours.returncode == theirs.returncode == 1
        assert _prog_free(ours.stderr) == _prog_free(theirs.stderr)


def test_switches_dig_takes_without_effect_here_and_the_version(recorder):
    """-r, -m and -i change nothing of a look-up here; -u gives the query time in
    microseconds; -v prints the version on stderr and asks nothing."""
    at = ["@127.0.0.1", "-p", str(recorder.port), "example.org", "+noall", "+question"]
    for switch in ("-r", "-m", "-i"):
        ours, theirs = query(switch, *at), dig(switch, *at)
        assert ours.returncode == theirs.returncode == 0, (switch, ours.stderr)
        assert ours.stdout == theirs.stdout
    for run in (query, dig):
        r = run("-u", "@127.0.0.1", "-p", str(recorder.port), "example.org")
        assert re.search(r"^;; Query time: \d+ usec$", r.stdout, re.M), r.stdout
        asked = len(recorder.seen)
        r = run("-v", *at)
        assert r.returncode == 0 and r.stdout == "" and r.stderr.strip()
        assert len(recorder.seen) == asked


def test_the_digrc_file_is_read_as_dig_reads_it_unless_r(recorder, tmp_path):
    """$HOME/.digrc's words are options given before the command line's; -r leaves it."""
    (tmp_path / ".digrc").write_text("+noall\n+answer +question -t MX\n")
    env = dict(os.environ, HOME=str(tmp_path))
    at = ["@127.0.0.1", "-p", str(recorder.port), "example.org"]
    for args in (at, ["-r", *at], [*at, "+comments"]):
        ours = query(*args, env=env)
        theirs = subprocess.run([tool("dig"), *args], capture_output=True, text=True,
                                timeout=30, env=env)
        assert ours.returncode == theirs.returncode == 0, ours.stderr
        assert comparable(ours.stdout) == comparable(theirs.stdout), args
    assert str(recorder.seen[-1].question[0]).endswith("IN MX")


XFR_ZONE = """$ORIGIN {origin}
$TTL 3600
@ IN SOA ns.{origin} host.{origin} 5 3600 600 86400 300
@ IN NS ns
ns IN A 192.0.2.53
www IN A 192.0.2.1
www IN AAAA 2001:db8::1
txt IN TXT "hello world"
"""


@pytest.fixture(scope="module")
def transferring(tmp_path_factory):
    """An NSD that transfers example.com. to loopback clients and refuses example.net."""
    from dnslab.nsd import nsd_on_loopback
    zones = {o: XFR_ZONE.format(origin=o) for o in ("example.com.", "example.net.")}
    srv = nsd_on_loopback(tmp_path_factory.mktemp("xfr"), zones, provide_xfr=("example.com.",))
    yield srv
    srv.signal_stop()
    srv.wait_stopped(time.monotonic() + 10)


@pytest.mark.parametrize("args", [
    ["example.com", "axfr"], ["axfr", "example.com", "+short"],
    ["example.com", "AXFR", "+multi"], ["-t", "axfr", "example.com", "+qr"],
    ["example.com", "axfr", "+nostats"], ["example.com", "axfr", "+question"],
    ["example.com", "ixfr=3"], ["-t", "ixfr=5", "example.com"], ["example.com", "IXFR=4"],
    ["example.com", "axfr", "+comments"], ["example.com", "axfr", "+all", "+onesoa"],
    ["example.com", "axfr", "+nocookie", "+qr", "+comments"], ["example.com", "axfr", "+onesoa"],
    ["example.com", "ixfr=3", "+nocookie", "+qr", "+all", "+rec"],
    ["example.com", "axfr", "+yaml", "+qr"], ["example.net", "axfr", "+yaml"],
    ["example.net", "axfr"], ["example.net", "ixfr=1", "+short"], ["example.net", "axfr", "+all"],
])
def test_zone_transfers_as_dig(transferring, args):
    """AXFR and IXFR=SERIAL over TCP, without RD (an IXFR without AD, the serial in its
    authority section): the records as they come (the header and
    the question only when +comments or +question are given), then dig's statistics with
    the transfer's size (an IXFR not behind: the SOA alone; +onesoa: without the last
    SOA); "; Transfer failed." when the server refuses; exit 0."""
    at = ["@127.0.0.1", "-p", str(transferring.port), *args]
    ours, theirs = query(*at), dig(*at)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    same = _yaml_comparable if "+yaml" in args else comparable
    assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout
    assert ("Transfer failed" in ours.stdout) is ("example.net" in args)


@pytest.mark.parametrize("opts", [["+tries=1"], ["+tries=2", "+nocmd"]])
def test_a_zone_transfer_refused_a_connection_as_dig(opts):
    with refusing_port(socket.SOCK_STREAM) as port:
        args = ["@127.0.0.1", "-p", str(port), "+time=1", "example.com", "axfr", *opts]
        ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 9
    assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout
    assert "connection refused." in ours.stdout


def test_where_an_incremental_transfer_ends():
    """An IXFR's differences (SOA new, then SOA old, deletions, SOA new, additions for
    each) end at the third SOA with the new serial; a whole zone at the second; a reply
    not behind the serial asked at its first SOA."""
    from resolver.tools.dig_xfr import _End

    def rr(text):
        return dns.rrset.from_text("example.com.", 60, "IN", *text.split(" ", 1))

    def soa(serial):
        return rr(f"SOA ns.example.com. host.example.com. {serial} 1 1 1 1")

    def ends(records, serial):
        end = _End(serial)
        return [end.record(r) for r in records]

    diffs = [soa(7), soa(5), rr("A 192.0.2.1"), soa(6), rr("A 192.0.2.2"), soa(6),
             rr("A 192.0.2.2"), soa(7), rr("A 192.0.2.3"), soa(7)]
    assert ends(diffs, 5) == [False] * 9 + [True]
    whole = [soa(7), rr("NS ns.example.com."), rr("A 192.0.2.3"), soa(7)]
    assert ends(whole, 5) == ends(whole, None) == [False, False, False, True]
    assert ends([soa(7), soa(7)], 5) == [False, True]
    assert ends([soa(7)], 7) == ends([soa(7)], 9) == [True]
