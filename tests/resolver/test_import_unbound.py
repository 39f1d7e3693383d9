"""``corenet-resolver import-unbound`` and ``checkconf`` on an unbound.conf, beside Unbound's own
unbound-checkconf: Unbound's shipped example (its option lines uncommented, as far as Unbound's
parser takes them), Debian's shipped config with its include-toplevel, and a home-resolver guide's
config, converted, checked and served. Every option read is either mapped or reported with a
reason; the values read are the ones unbound-checkconf -o prints."""
from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import pytest

from ci_policy import installed, unavailable
from daemon_proc import Daemon, cli
from ports import free_port
from ports import pick_port
from dnslab.unbound import local_unbound
from procs import stop as stop_process
from resolver.daemon import settings, unbound_conf
from resolver.daemon.config import build
from resolver.limits import DEFAULT
from tls_certs import CA, SERVER_NAME

EXAMPLE = Path("/usr/share/doc/unbound/examples/unbound.conf")
DEBIAN = Path("/etc/unbound/unbound.conf")
#: the root key as a DS record, what unbound-anchor writes first
ROOT_DS = (". IN DS 20326 8 2 "
           "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n")
#: a home resolver as the common guides set one up (Pi-hole's "unbound" guide)
GUIDE = """\
server:
    # If no logfile is specified, syslog is used
    # logfile: "/var/log/unbound/unbound.log"
    verbosity: 0

    interface: 127.0.0.1
    port: {port}
    do-ip4: yes
    do-udp: yes
    do-tcp: yes

    # May be set to yes if you have IPv6 connectivity
    do-ip6: no
    prefer-ip6: no

    root-hints: "{hints}"
    harden-glue: yes
    harden-dnssec-stripped: yes
    use-caps-for-id: no
    edns-buffer-size: 1232
    prefetch: yes
    num-threads: 1
    so-rcvbuf: 1m
    msg-cache-size: 8m
    rrset-cache-size: 16M
    access-control: 127.0.0.0/8 allow
    access-control: 10.0.0.0/8 allow_snoop
    access-control: 0.0.0.0/0 refuse
    access-control: 10.1.0.0/16 deny
    access-control: 10.2.0.0/16 refuse_non_local
    access-control: 10.3.0.0/16 deny_non_local
    local-zone: "home.lan." static
    local-data: "router.home.lan. IN A 192.168.1.1"

    # Ensure privacy of local IP ranges
    private-address: 192.168.0.0/16
    private-address: 169.254.0.0/16
    private-address: 172.16.0.0/12
    private-address: 10.0.0.0/8
    private-address: fd00::/8
    private-address: fe80::/10

forward-zone:
    name: "corp.example."
    forward-addr: 192.0.2.53@5353
    forward-first: yes
"""


def checkconf_tool() -> str:
    return installed("unbound-checkconf", "unbound")


def unbound_says(conf: Path, option: str) -> str:
    return subprocess.run([checkconf_tool(), "-o", option, str(conf)], capture_output=True,
                          text=True, timeout=30).stdout.strip()


def unbound_checkconf(conf: Path) -> subprocess.CompletedProcess:
    return subprocess.run([checkconf_tool(), str(conf)], capture_output=True, text=True,
                          timeout=30)


def unbound_accepts(conf: Path) -> tuple[bool, str]:
    r = unbound_checkconf(conf)
    return r.returncode == 0, r.stdout + r.stderr


def option_lines(conf: Path) -> int:
    """The ``key: value`` lines of a file that are options (not clause headers, not
    includes)."""
    n = 0
    for line in conf.read_text().splitlines():
        m = re.match(r"\s*([a-z][a-z0-9-]*):(\s|$)", line)
        if m and not (m.group(1) in unbound_conf.CLAUSES and not line.split(":", 1)[1].strip()
                      or m.group(1).startswith("include")):
            n += 1
    return n


def names_a_host_interface(line: str) -> bool:
    """An ``interface:`` line that names a network interface (``eth0@5003``) rather than
    an address: Unbound reads it only where the machine has that interface (not in the
    network namespace a test suite may run in), so the example keeps it commented."""
    import ipaddress
    m = re.match(r"\s*(?:outgoing-)?interface:\s*(\S+)", line)
    if not m:
        return False
    try:
        ipaddress.ip_address(m.group(1).split("@")[0])
    except ValueError:
        return True
    return False


def example_as_unbound_parses_it(tmp_path: Path) -> Path:
    """Unbound's example with its option lines uncommented, less the lines Unbound's own
    parser refuses (an include of a missing file, a few examples of other versions)."""
    if not EXAMPLE.exists():
        unavailable(f"{EXAMPLE} (Debian package 'unbound') is missing: scripts/setup.sh "
                    "installs it")
    lines = []
    for line in EXAMPLE.read_text().splitlines():
        m = re.match(r"^(\s*)#\s?(\s*)([a-z][a-z0-9-]*:(\s.*)?)$", line)
        text = m.group(1) + m.group(2) + m.group(3) if m else line
        lines.append("#" + text if text.lstrip().startswith("include:")
                     or names_a_host_interface(text) else text)
    conf = tmp_path / "example.conf"
    for _ in range(40):
        conf.write_text("\n".join(lines) + "\n")
        out = subprocess.run([checkconf_tool(), str(conf)], capture_output=True, text=True,
                             timeout=30)
        bad = {int(n) for n in re.findall(rf"{re.escape(str(conf))}:(\d+): error",
                                          out.stdout + out.stderr)}
        if not bad:
            return conf
        for n in bad:
            lines[n - 1] = "#" + lines[n - 1]
    raise AssertionError("unbound-checkconf kept refusing lines")


def corenet_names() -> set[str]:
    names = {s.key for s in settings.TABLE} | {a.replace("_", "-") for a in settings.ALIASES}
    return names | {f.replace("_", "-") for f in settings.LIMITS}


def test_unbound_s_example_is_read_whole_and_every_option_accounted_for(tmp_path):
    conf = example_as_unbound_parses_it(tmp_path)
    options = unbound_conf.read(str(conf))
    assert len(options) == option_lines(conf) > 350
    conv = unbound_conf.convert(options)
    accounted = {id(m.option) for m in conv.mapped} | {id(u.option) for u in conv.unmapped}
    assert {id(o) for o in options} <= accounted                 # nothing dropped silently
    assert len(conv.mapped) > 150 and all(u.why for u in conv.unmapped)
    text = conv.toml(str(conf))
    data = tomllib.loads(text)
    assert set(data) - {"forward-zone", "stub-zone", "rpz"} <= corenet_names()
    # the values read are the ones Unbound reads
    assert data["workers"] == int(unbound_says(conf, "num-threads"))
    assert data["cache-size"] == (int(unbound_says(conf, "msg-cache-size"))
                                  + int(unbound_says(conf, "rrset-cache-size")))
    assert data["max-udp-size"] == int(unbound_says(conf, "max-udp-size"))
    assert data["jostle-timeout"] == int(unbound_says(conf, "jostle-timeout")) / 1000
    assert data["serve-stale-client-timeout"] == \
        int(unbound_says(conf, "serve-expired-client-timeout")) / 1000
    assert data["serve-stale"] == (unbound_says(conf, "serve-expired") == "yes")
    # the report names both sides, each option once
    r = cli("import-unbound", str(conf))
    assert r.stdout == text
    assert f"mapped ({len(conv.mapped)}):" in r.stderr
    assert f"not mapped ({len(conv.unmapped)}):" in r.stderr
    assert 'chroot: -> nothing to write (no chroot, as corenet runs)' in r.stderr  # chroot: ""
    assert "private-address: ::ffff:0:0/96 -> private-address" in r.stderr
    assert "private-domain: example.com -> private-domain" in r.stderr
    assert data["private-address"][-1] == "::ffff:0:0/96"
    assert data["private-domain"] == ["example.com"]
    # both checkers refuse it for the same missing trust anchor file
    ok, said = unbound_accepts(conf)
    assert not ok and "/usr/share/dns/root.key" in said
    r = cli("checkconf", str(conf))
    assert r.returncode == 1 and "/usr/share/dns/root.key" in r.stderr


def test_debian_s_config_with_its_includes(tmp_path):
    if not DEBIAN.exists():
        unavailable(f"{DEBIAN} (Debian package 'unbound') is missing: scripts/setup.sh "
                    "installs it")
    # Debian's files, with the include and the trust anchor where this test may write
    inc = tmp_path / "unbound.conf.d"
    inc.mkdir()
    key = tmp_path / "root.key"
    key.write_text(ROOT_DS)
    for f in DEBIAN.parent.joinpath("unbound.conf.d").glob("*.conf"):
        (inc / f.name).write_text(f.read_text().replace("/var/lib/unbound/root.key", str(key)))
    conf = tmp_path / "unbound.conf"
    conf.write_text(DEBIAN.read_text().replace("/etc/unbound/unbound.conf.d", str(inc)))
    ok, said = unbound_accepts(conf)
    assert ok, said
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert not conv.unmapped and len(conv.mapped) == option_lines(conf) + sum(
        option_lines(f) for f in inc.glob("*.conf"))
    assert conv.settings["auto-trust-anchor-file"] == [str(key)]
    assert conv.settings["control"] == "/run/unbound.ctl"
    assert conv.settings["control-enable"] is False      # a Unix socket, not TCP
    r = cli("checkconf", str(conf))
    assert r.returncode == 0 and "ok (Unbound's format: 3 options carried over, 0 not)" \
        in r.stdout, r.stderr


def test_a_guide_s_config_converted_checked_and_served(lab, tmp_path):
    port = free_port()
    conf = tmp_path / "unbound.conf"
    conf.write_text(GUIDE.format(port=port, hints=lab.root_hints_file))
    ok, said = unbound_accepts(conf)
    assert ok, said
    out = tmp_path / "corenet-resolver.toml"
    r = cli("import-unbound", str(conf), "-o", str(out))
    assert r.returncode == 0, r.stderr
    data = tomllib.loads(out.read_text())
    assert data["listen"] == [f"127.0.0.1:{port}"] and data["do-ip6"] is False
    assert data["cache-size"] == 24 * 1024 * 1024 == (
        int(unbound_says(conf, "msg-cache-size")) + int(unbound_says(conf, "rrset-cache-size")))
    assert data["access-control"] == ["127.0.0.0/8 allow", "10.0.0.0/8 allow_snoop",
                                      "0.0.0.0/0 refuse", "10.1.0.0/16 deny",
                                      "10.2.0.0/16 refuse_non_local",
                                      "10.3.0.0/16 deny_non_local"] and "allow" not in data
    assert data["forward-zone"] == [{"name": "corp.example.", "forward-addr": [
        "192.0.2.53@5353"], "forward-first": True}]
    report = r.stderr
    assert data["private-address"] == ["192.168.0.0/16", "169.254.0.0/16", "172.16.0.0/12",
                                       "10.0.0.0/8", "fd00::/8", "fe80::/10"]
    for line in ("so-rcvbuf: 1m -> so-rcvbuf",
                 "private-address: 10.0.0.0/8 -> private-address",
                 "edns-buffer-size: 1232 -> nothing to write (the EDNS size sent to "
                 "authorities is 1232 bytes)",
                 "use-caps-for-id: no -> use-caps-for-id"):
        assert line in report, report
    for action in ("0.0.0.0/0 refuse", "10.1.0.0/16 deny", "10.3.0.0/16 deny_non_local"):
        assert f"access-control: {action} -> access-control" in report, report
    r = cli("checkconf", str(conf))
    assert r.returncode == 0 and "ok (Unbound's format" in r.stdout, r.stderr
    assert "not carried over" not in r.stderr, r.stderr
    # served: the local zone from the config, and the lab through the converted settings
    d = Daemon(tmp_path / "d", lab, "--config", str(out), listen=False, port=port)
    d.start()
    try:
        a = d.ask("router.home.lan")        # local data: never a private address removed
        assert a.rcode() == dns.rcode.NOERROR and a.answer[0][0].address == "192.168.1.1"
        assert d.ask("www.example.com").answer
    finally:
        d.stop()


def test_an_unbound_conf_is_served_and_reloaded_as_it_is(lab, tmp_path):
    """`serve -c unbound.conf`, as ``unbound -c`` is run: the options read as import-unbound
    reads them (those not carried over said on standard error), the file read again at
    reload, and a bad edit refused with its Unbound line while the old config serves on."""
    port = free_port()
    conf = tmp_path / "unbound.conf"
    conf.write_text(GUIDE.format(port=port, hints=lab.root_hints_file))
    d = Daemon(tmp_path / "d", lab, "-c", str(conf), listen=False, port=port)
    d.start()
    try:
        assert "not carried over" not in d.log_text()
        # so-rcvbuf: 1m, forced past the system's cap as root (the kernel shows it doubled)
        shown = subprocess.run(["ss", "-Hlunm", f"sport = :{port}"], capture_output=True,
                               text=True, timeout=10).stdout
        assert f"rb{2 * 1024 * 1024}," in shown, shown
        assert d.ask("router.home.lan").answer[0][0].address == "192.168.1.1"
        assert d.ask("www.example.com").answer
        conf.write_text(conf.read_text().replace("192.168.1.1", "192.168.1.2"))
        r = cli("-s", d.control, "reload")
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
        assert d.ask("router.home.lan").answer[0][0].address == "192.168.1.2"
        lines = conf.read_text().splitlines()
        lines.insert(3, "    cache-max-ttl: banana")  # line 4: Unbound says "number expected"
        conf.write_text("\n".join(lines) + "\n")
        r = cli("-s", d.control, "reload")
        assert r.returncode == 1 and f"{conf}:4" in r.stdout + r.stderr, r.stdout + r.stderr
        assert d.alive() and d.ask("router.home.lan").answer[0][0].address == "192.168.1.2"
    finally:
        assert d.stop() == 0


def test_unbound_s_lexer_quirks(tmp_path):
    inner = tmp_path / "inner.conf"
    inner.write_text("forward-zone:\n name: 'inner.example.' forward-addr: 192.0.2.1\n")
    conf = tmp_path / "unbound.conf"
    conf.write_text(f'server: verbosity: 2 num-threads: 2 # two on one line\n'
                    f'  interface: "::1@5300"\n  local-data: "a.test. A 192.0.2.9"\n'
                    f'include: "{tmp_path}/inn*.conf"\n'
                    f'server:\n  msg-cache-size: 1g\n  rrset-cache-size: 512k\n')
    options = unbound_conf.read(str(conf))
    assert [(o.clause, o.key, o.values, o.line) for o in options] == [
        ("server", "verbosity", ("2",), 1), ("server", "num-threads", ("2",), 1),
        ("server", "interface", ("::1@5300",), 2),
        ("server", "local-data", ("a.test. A 192.0.2.9",), 3),
        ("forward-zone", "name", ("inner.example.",), 2),
        ("forward-zone", "forward-addr", ("192.0.2.1",), 2),
        ("server", "msg-cache-size", ("1g",), 6), ("server", "rrset-cache-size", ("512k",), 7)]
    assert options[4].file == str(inner)
    conv = unbound_conf.convert(options)
    assert conv.settings["listen"] == ["[::1]:5300"]
    assert conv.settings["cache-size"] == 1024 ** 3 + 512 * 1024
    ok, said = unbound_accepts(conf)
    assert ok, said                 # Unbound reads the same file


def test_a_hash_within_a_word_is_part_of_it_as_unbound_reads_it(tmp_path):
    """A ``#`` that starts a word starts a comment; one within a word (a DNS-over-TLS
    forwarder's ``ADDR@PORT#NAME``) is part of the value: the values Unbound reads
    (unbound-checkconf -o) and the forward zone converted with its servers' names."""
    conf = tmp_path / "unbound.conf"
    conf.write_text('server:\n  identity: my#host # a comment\n  version: "v1"#c\n'
                    "  tls-cert-bundle: /etc/ssl/certs/ca-certificates.crt\n"
                    'forward-zone:\n  name: "."\n  forward-tls-upstream: yes\n'
                    "  forward-addr: 1.1.1.1@853#cloudflare-dns.com\n"
                    "  forward-addr: 9.9.9.9@853#dns.quad9.net # Quad9\n")
    ok, said = unbound_accepts(conf)
    assert ok, said
    options = {o.key: o.values for o in unbound_conf.read(str(conf)) if o.clause == "server"}
    for key in ("identity", "version"):
        assert options[key] == (unbound_says(conf, key),)
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    (zone,) = conv.tables["forward-zone"]
    assert zone["forward-addr"] == ["1.1.1.1@853#cloudflare-dns.com",
                                    "9.9.9.9@853#dns.quad9.net"], zone
    r = cli("checkconf", str(conf))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("lines", [["tls-system-cert: yes"], ["tls-win-cert: yes"],
                                   ["tls-system-cert: yes", "tls-win-cert: no"],
                                   ["tls-win-cert: no", "tls-system-cert: yes"]])
def test_tls_system_cert_and_tls_win_cert_are_one_option_as_unbound_reads_them(tmp_path,
                                                                               lines):
    """Away from Windows Unbound's ``tls-win-cert`` is its ``tls-system-cert`` (one
    variable: the last line wins): both become corenet's ``tls-system-cert``, with the value
    Unbound reads (unbound-checkconf -o)."""
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n  tls-cert-bundle: /etc/ssl/certs/ca-certificates.crt\n" +
                    "".join(f"  {line}\n" for line in lines))
    ok, said = unbound_accepts(conf)
    assert ok, said
    said = {unbound_says(conf, "tls-system-cert"), unbound_says(conf, "tls-win-cert")}
    assert len(said) == 1, said
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert conv.settings["tls-system-cert"] is (said == {"yes"})
    assert {m.key for m in conv.mapped} == {"tls-cert-bundle", "tls-system-cert"}
    assert not conv.unmapped


def test_an_option_unbound_reads_every_line_of_is_not_cut_to_one_silently(tmp_path):
    """``root-hints`` given twice: Unbound reads both files (unbound-checkconf -o lists
    both); corenet takes one, the first, and reports the other as not carried over rather
    than keeping the last line's alone without a word. Of the options Unbound reads every
    line of, none else lands in a setting of one value."""
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n  root-hints: /tmp/a.hints\n  root-hints: /tmp/b.hints\n")
    assert sorted(unbound_says(conf, "root-hints").split()) == ["/tmp/a.hints",
                                                               "/tmp/b.hints"]
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert conv.settings["root-hints"] == "/tmp/a.hints"
    (left,) = conv.unmapped
    assert left.option.line == 3 and f"{conf}:2" in left.why, left
    single = {k for k in unbound_conf.EVERY_LINE
              if (s := unbound_conf.same_setting(k)) is not None and not s[2]}
    assert single == {"root-hints"}


#: local data whose quoted value holds escaped quotes, and the TXT strings Unbound serves
#: for it (the escaped quote is a character of the record's text, the space splits it)
ESCAPED = [('"esc.example. TXT \\"hello world\\""', ['"\\"hello"', '"world\\""']),
           ("'sq.example. TXT \"single quoted\"'", ['"single quoted"']),
           ('"bs.example. TXT \\"a\\\\\\"b\\" plain"', ['"\\"a\\\\\\"b\\""', '"plain"'])]


def test_a_quoted_value_keeps_its_escaped_quotes_as_unbound_reads_it(tmp_path):
    """A backslash in a quoted value keeps the next character in it (a quote it escapes
    ends nothing): the value Unbound reads (unbound-checkconf -o), and the TXT records a
    local zone serves from it, side by side with Unbound's."""
    from daemon_proc import beside_unbound

    installed("unbound", "unbound")
    lines = '  local-zone: "example." static\n' + "".join(
        f"  local-data: {value}\n" for value, _ in ESCAPED)
    conf = tmp_path / "unbound.conf"
    conf.write_text('server:\n  identity: "my \\"quoted\\" host"\n' + lines)
    ok, said = unbound_accepts(conf)
    assert ok, said
    options = {o.key: o.values for o in unbound_conf.read(str(conf)) if o.clause == "server"}
    assert options["identity"] == (unbound_says(conf, "identity"),) == ('my \\"quoted\\" host',)
    with beside_unbound(tmp_path, "--config", str(conf), unbound_extra=lines) as (ub, d):
        for (value, strings) in ESCAPED:
            name = value.strip("'\"").split()[0]
            got = []
            for address, port in ((ub.address, ub.port), ("127.0.0.1", d.port)):
                r = dns.query.udp(dns.message.make_query(name, "TXT"), address, port=port,
                                  timeout=5)
                got.append([rd.to_text() for rrset in r.answer for rd in rrset])
            assert got[0] == got[1] == [" ".join(strings)], (value, got)


@pytest.mark.parametrize("text, error", [
    ('server:\n  verbosity: "1\n', "unclosed quote"),
    ("just words\n", "where a keyword was expected"),
    ("server:\n  local-data: ' \nserver: '\n", "newline inside quoted string"),
])
def test_a_file_unbound_cannot_read_is_an_error_with_its_line(tmp_path, text, error):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    unbound = unbound_checkconf(conf)
    assert unbound.returncode != 0, unbound.stdout + unbound.stderr   # Unbound refuses it too
    r = cli("import-unbound", str(conf))
    assert r.returncode == 2 and error in r.stderr and f"{conf}:" in r.stderr, r.stderr
    # checkconf takes a file for Unbound's once it has a clause (else it is read as TOML),
    # and exits as unbound-checkconf does
    if ":" in text:
        r = cli("checkconf", str(conf))
        assert r.returncode == unbound.returncode and error in r.stderr, r.stderr
        assert f"{conf}:" in r.stderr, r.stderr


@pytest.mark.parametrize("text", [
    "server:\n  verbosity: 1\n",                              # accepted
    "server:\n  verbosty: 1\n",                               # a keyword misspelt
    "server:\n  num-threads: many\n",                         # no number
    "server:\n  do-ip4: perhaps\n",                           # no yes or no
    "server:\n  access-control: 10.0.0.0/8 let-in\n",         # no such action
    "server:\n  access-control: 10.0.0.0/33 allow\n",          # no netblock
    "server:\n  local-zone: example. nowhere\n",              # no such zone type
    "server:\n  local-data: \"example. IN A 300.1.1.1\"\n",   # no address
    "server:\n  interface: 127.0.0.1@port\n",                 # no port
    "server:\n  msg-cache-size: 4q\n",                        # no size
    "forward-zone:\n  forward-addr: 192.0.2.1\n",             # a zone without its name
    "remote-control:\n  control-enable: maybe\n",            # no yes or no
    "server:\n  include: /nonexistent/extra.conf\n",          # an include not there
    None,                                                      # the file itself not there
])
def test_checkconf_exits_as_unbound_checkconf_does(tmp_path, text):
    """``checkconf && reload`` and monitoring that reads the exit status work unchanged:
    the status is unbound-checkconf's for the same file, whatever the file's fault."""
    conf = tmp_path / "unbound.conf"
    if text is not None:
        conf.write_text(text)
    unbound = unbound_checkconf(conf)
    r = cli("checkconf", str(conf))
    assert r.returncode == unbound.returncode, (r.stderr, unbound.stdout + unbound.stderr)
    assert (r.returncode == 0) == (text == "server:\n  verbosity: 1\n")


@pytest.mark.parametrize("text, line", [
    ("server:\n  verbosity: 1\n  verbosty: 2\n", 3),
    ('server:\n  verbosity: 1\nforward-zone:\n  name: "."\n  forward-adr: 192.0.2.1\n', 5),
    ("remote-control:\n  control-enabel: yes\n", 2),
])
def test_an_unknown_keyword_is_refused_as_unbound_refuses_it(tmp_path, text, line):
    """A keyword Unbound does not know (a typo) stops the daemon before it starts, as it
    stops Unbound: checkconf fails with its line, and so does serving the file."""
    conf = tmp_path / "typo.conf"
    conf.write_text(text)
    unbound = unbound_checkconf(conf)
    assert "unknown keyword" in unbound.stdout + unbound.stderr, unbound.stdout + unbound.stderr
    r = cli("checkconf", str(conf))
    assert r.returncode == unbound.returncode == 1 and f"{conf}:{line}:" in r.stderr, r.stderr
    assert "unknown keyword" in r.stderr
    # an option Unbound knows and corenet has no setting for is still only reported
    conf.write_text("server:\n  delay-close: 10000\n")
    assert unbound_accepts(conf)[0]
    r = cli("checkconf", str(conf))
    assert r.returncode == 0 and "delay-close" in r.stderr, r.stderr


def test_includes_are_bounded(tmp_path):
    loop = tmp_path / "loop.conf"
    loop.write_text(f"server:\ninclude: {loop}\n")
    r = cli("import-unbound", str(loop))
    assert r.returncode == 2 and "nested deeper" in r.stderr


def test_the_toml_takes_unbound_s_names_and_sizes_and_names_the_key_meant(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('interface = ["127.0.0.1@5353", "::1"]\nnum-threads = 2\n'
                    'cache-size = "96m"\nnum-queries-per-thread = 512\n'
                    'incoming-num-tcp = 50\nusername = ""\n')
    cfg = build(str(conf))
    assert cfg.listen == (("127.0.0.1", 5353), ("::1", 53)) and cfg.workers == 2
    assert cfg.cache_size == 96 * 1024 * 1024 and cfg.max_inflight == 512
    assert cfg.tcp_max_connections == 50
    assert build(None, {"cache_size": "1g"}).cache_size == 1024 ** 3
    for text, said in [
            ('msg-cache-size = "4m"\n', "unknown setting 'msg-cache-size' (Unbound's option; "
                                        "here: cache-size"),
            ("prefech = true\n", "unknown setting 'prefech'; did you mean 'prefetch'?"),
            ("max-inflite = 5\n", "did you mean 'max-inflight'?"),
            ('cache-size = "64q"\n', "cache-size: expected bytes (a number, or with k, m or "
                                     "g), got '64q'")]:
        conf.write_text(text)
        r = cli("checkconf", str(conf))
        assert r.returncode == 1 and said in r.stderr and f"{conf}:1:" in r.stderr, r.stderr


def test_options_whose_one_value_is_corenet_s_behaviour(lab, tmp_path):
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n hide-version: yes\n hide-identity: yes\n minimal-responses: yes\n"
                    " deny-any: no\n rrset-roundrobin: no\n"
                    "server:\n hide-version: no\n deny-any: yes\n rrset-roundrobin: yes\n"
                    " minimal-responses: no\n")
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert [m.option.key for m in conv.mapped] == ["hide-version", "hide-identity",
                                                   "minimal-responses", "deny-any",
                                                   "rrset-roundrobin", "hide-version",
                                                   "deny-any", "rrset-roundrobin"]
    assert [u.option.key for u in conv.unmapped] == ["minimal-responses"]
    assert all("is corenet's" in u.why for u in conv.unmapped)
    # the settings that exist carry the last value given, as Unbound reads them
    assert conv.settings["hide-version"] is False and conv.settings["deny-any"] is True
    assert conv.settings["rrset-roundrobin"] is True
    assert conv.settings["hide-identity"] is True
    # what hide-version and hide-identity make Unbound answer is what corenet answers
    installed("unbound", "unbound")
    w = tmp_path / "unbound"
    w.mkdir()
    port = pick_port(["127.0.0.1"])
    proc = local_unbound(w, port, ["hide-version: yes", "hide-identity: yes"])
    d = Daemon(tmp_path / "d", lab)
    try:
        d.start()
        for name in ("version.bind.", "id.server.", "hostname.bind."):
            q = dns.message.make_query(name, "TXT", rdclass=dns.rdataclass.CH)
            theirs = dns.query.udp(q, "127.0.0.1", port=port, timeout=5)
            ours = dns.query.udp(q, "127.0.0.1", port=d.port, timeout=5)
            assert ours.rcode() == theirs.rcode() == dns.rcode.REFUSED and not ours.answer
    finally:
        d.stop()
        stop_process(proc, 5.0, group=True)


def _unbound_names() -> dict[str, str]:
    """Every Unbound option name a corenet config reads as one of its settings (a setting's
    own name or its Unbound name, an alias, a limit, the importer's other names and its
    options in milliseconds, and Unbound's other spellings of those) -> that setting's
    name."""
    names = {}
    for s in settings.TABLE:
        names[s.unbound or s.key] = s.name
        names.update({a.replace("_", "-"): s.name for a in s.aliases})
    names.update({k.replace("_", "-"): k for k in settings.LIMITS})
    names.update({k: v.replace("-", "_") for k, v in unbound_conf.OTHER_NAMES.items()})
    names.update({k: v.replace("-", "_") for k, v in unbound_conf.MILLISECONDS.items()})
    names.update({k: names[v] for k, v in unbound_conf.SYNONYMS.items() if v in names})
    return names


def test_defaults_are_unbounds_or_say_why(tmp_path):
    """Each option a corenet config reads under Unbound's name has Unbound's default (as
    unbound-checkconf -o prints it, read as import-unbound reads a config that writes it),
    or is listed with Unbound's default and why corenet's differs; nothing listed agrees."""
    checkconf = installed("unbound-checkconf", "unbound")
    empty = tmp_path / "unbound.conf"
    empty.write_text("server:\n")
    listed = {u.option: u for u in unbound_conf.unlike_unbound()}
    compared, differ, printed = 0, set(), set()
    for option, name in sorted(_unbound_names().items()):
        row = settings.BY_NAME.get(name) or settings.LIMITS[name]
        if "str" in row.type:               # paths and names: the hosts' own
            continue
        r = subprocess.run([checkconf, "-o", option, str(empty)], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0 or not r.stdout.strip():
            continue                        # corenet's alone, or newer than this Unbound
        theirs = r.stdout.strip()
        printed.add(option)
        conv = unbound_conf.convert([unbound_conf.Option("server", option, (theirs,), "-", 1)])
        assert list(conv.settings) == [row.key], (option, conv.report())
        compared += 1
        if conv.settings[row.key] != settings.default_of(row):
            differ.add(option)
            assert option in listed, (f"{option}: Unbound's default {theirs} is not "
                                      f"corenet's {settings.default_of(row)}: say why")
            assert listed[option].unbound == theirs, option
    assert compared >= 40, compared
    # no entry for a default both share (of the options this Unbound prints)
    assert set(listed) & printed == differ


def test_a_config_that_sets_an_unlike_default_is_not_told_of_it(tmp_path):
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n    prefetch: no\n    hide-version: yes\n")
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    told = {u.option for u in conv.unlike}
    assert "prefetch" not in told and "hide-version" not in told and "hide-identity" in told
    assert conv.settings["prefetch"] is False
    report = conv.report()
    assert "hide-identity: Unbound no, corenet hide-identity = true: " in report
    # the TOML carries Unbound's default, commented out, for each one left unset
    text = conv.toml(str(conf))
    assert "# hide-identity = false    # corenet: true; " in text
    assert "# prefetch = false" not in text
    assert tomllib.loads(text) == {"prefetch": False, "hide-version": True}


def test_outgoing_interface_addresses_carry_over_and_a_netblock_does_not(tmp_path):
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n outgoing-interface: 192.0.2.53\n"
                    " outgoing-interface: 2001:db8::53\n"
                    " outgoing-interface: 2001:db8:1::/64\n")
    ok, said = unbound_accepts(conf)
    assert ok, said
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert conv.settings["outgoing-interface"] == ["192.0.2.53", "2001:db8::53"]
    (skipped,) = conv.unmapped
    assert skipped.option.values == ("2001:db8:1::/64",) and "netblock" in skipped.why


#: FIXED options whose Unbound default is not corenet's behaviour
FIXED_UNLIKE_UNBOUND = {"trust-anchor-signaling", "harden-unknown-additional",
                        "infra-keep-probing", "target-fetch-policy", "ip-ratelimit-factor",
                        "hide-http-user-agent"}
#: FIXED options Debian's Unbound (1.17) cannot print, being newer or never printed: the
#: default their version's unbound.conf(5) and config_file.c give (harden-unknown-additional
#: 1.18, dns-error-reporting 1.23, answer-cookie 1.18, disable-edns-do, do-nat64,
#: log-thread-id and sock-queue-timeout 1.19, log-destaddr 1.20, tls-protocols 1.22;
#: fake-dsa and fake-sha1, test options, are never printed)
NEWER_THAN_1_17 = {"harden-unknown-additional": "no", "dns-error-reporting": "no",
                   "answer-cookie": "no", "disable-edns-do": "no", "do-nat64": "no",
                   "log-thread-id": "no", "sock-queue-timeout": "0", "log-destaddr": "no",
                   "tls-protocols": "TLSv1.2 TLSv1.3", "fake-dsa": "no", "fake-sha1": "no",
                   "iter-scrub-promiscuous": "yes"}


def test_options_fixed_at_corenet_s_behaviour_are_at_unbound_s_defaults(tmp_path):
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n")
    theirs = {k: unbound_says(conf, k) or NEWER_THAN_1_17.get(k, "") for k in unbound_conf.FIXED}
    same = {k for k, (value, _) in unbound_conf.FIXED.items()
            if theirs[k].lower() == value.lower()}
    assert set(unbound_conf.FIXED) - same == FIXED_UNLIKE_UNBOUND, theirs
    # written out at Unbound's values, each is corenet's behaviour; the other value is not
    conf.write_text("server:\n" + "".join(f' {k}: "{theirs[k]}"\n' for k in same))
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert not conv.unmapped and {m.option.key for m in conv.mapped} == same
    # those unlike Unbound's default, written at corenet's value: Unbound takes the line, and
    # corenet carries it over
    ours = {k: unbound_conf.FIXED[k][0] for k in FIXED_UNLIKE_UNBOUND - set(NEWER_THAN_1_17)}
    conf.write_text("server:\n" + "".join(f' {k}: "{v}"\n' for k, v in ours.items()))
    ok, said = unbound_accepts(conf)
    assert ok, said
    assert {k: unbound_says(conf, k) for k in ours} == ours
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert not conv.unmapped and {m.option.key for m in conv.mapped} == set(ours)
    conf.write_text("server:\n val-permissive-mode: yes\n udp-connect: no\n"
                    " trust-anchor-signaling: yes\n")
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert [u.why for u in conv.unmapped] == [
        "only val-permissive-mode: no is corenet's: a bogus answer is SERVFAIL",
        "only udp-connect: yes is corenet's: each upstream UDP socket is connected to its "
        "server",
        "only trust-anchor-signaling: no is corenet's: no key tag queries (RFC 8145) are sent"]


def test_nsec3_iteration_caps_carry_over_when_one_for_keys_of_every_size(tmp_path):
    """val-nsec3-keysize-iterations at Unbound's own default (150 for every key size) and
    at another single cap becomes nsec3-max-iterations; caps that differ by key size (the
    default before Unbound 1.13.2) are reported; what Unbound refuses is refused."""
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n")
    default = unbound_says(conf, "val-nsec3-keysize-iterations")
    for text, cap in ((default, 150), ("1024 100 2048 100 4096 100", 100), ("4096 0", 0)):
        conf.write_text(f'server:\n  val-nsec3-keysize-iterations: "{text}"\n')
        ok, said = unbound_accepts(conf)
        assert ok, said
        conv = unbound_conf.convert(unbound_conf.read(str(conf)))
        assert conv.unmapped == [] and conv.settings == {"nsec3-max-iterations": cap}
        assert build(str(conf)).limits.nsec3_max_iterations == cap
    conf.write_text('server:\n  val-nsec3-keysize-iterations: "1024 150 2048 500 4096 2500"\n')
    (skipped,) = unbound_conf.convert(unbound_conf.read(str(conf))).unmapped
    assert not skipped.refused and "differ by key size" in skipped.why
    for text in ("1024", "2048 100 1024 100", "1024 150 1024 150"):
        conf.write_text(f'server:\n  val-nsec3-keysize-iterations: "{text}"\n')
        assert not unbound_accepts(conf)[0]
        (refused,) = unbound_conf.convert(unbound_conf.read(str(conf))).unmapped
        assert refused.refused, text


def test_the_infra_cache_timeouts_streams_and_restarts_are_carried_over(tmp_path):
    """Unbound's retransmit bounds (milliseconds) become the limits that are the same
    thing in seconds, its HTTP/2 stream cap the DoH listener's and its CNAME restarts the
    chain's: Unbound's defaults read back as corenet's own where the two agree."""
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n  infra-cache-min-rtt: 100\n  infra-cache-max-rtt: 3000\n"
                    "  unknown-server-time-limit: 1128\n  http-max-streams: 50\n"
                    "  max-query-restarts: 5\n")
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert conv.unmapped == []
    limits = build(str(conf)).limits
    assert (limits.min_rto, limits.max_rto, limits.initial_rto, limits.doh_max_streams,
            limits.max_cname_chain) == (0.1, 3.0, 1.128, 50, 5)
    checkconf = installed("unbound-checkconf", "unbound")
    empty = tmp_path / "empty.conf"
    empty.write_text("server:\n")
    for option, field in (("infra-cache-min-rtt", "min_rto"),
                          ("unknown-server-time-limit", "initial_rto"),
                          ("http-max-streams", "doh_max_streams")):
        theirs = subprocess.run([checkconf, "-o", option, str(empty)], capture_output=True,
                                text=True, timeout=30).stdout.strip()
        one = unbound_conf.convert([unbound_conf.Option("server", option, (theirs,), "-", 1)])
        assert list(one.settings.values()) == [getattr(DEFAULT, field)], option


#: Unbound's other spellings of server options, with a value each (their unbound.conf
#: lines are read as the option of the other name)
SPELLINGS = {"ip-address": "127.0.0.1@5353", "ssl-port": "8853", "ssl-upstream": "no",
             "ssl-service-key": "/tmp/service.key", "ssl-service-pem": "/tmp/service.pem",
             "ssl-cert-bundle": "/tmp/bundle.pem", "tls-win-cert": "yes",
             "tls-additional-ports": "9853", "additional-tls-port": "9854",
             "additional-ssl-port": "9855", "caps-whitelist": "example.com",
             "low-rtt-pct": "100", "low-rtt-permil": "200", "ipsecmod-whitelist": "example.org"}
#: an option this Unbound reads but does not print (its ipsecmod module is not built in)
UNPRINTED = {"ipsecmod-whitelist"}


@pytest.mark.parametrize("spelled", sorted(SPELLINGS))
def test_unbound_s_other_spellings_are_read_as_their_option(tmp_path, spelled):
    """An option written with one of Unbound's other names (the ssl- names of the TLS
    options, ip-address...) is the same option, as unbound-checkconf prints it under
    either name, and converts as its other spelling does; the report quotes the line as
    written."""
    name, value = unbound_conf.SYNONYMS[spelled], SPELLINGS[spelled]
    old, new = tmp_path / "old.conf", tmp_path / "new.conf"
    old.write_text(f"server:\n    {spelled}: {value}\n")
    new.write_text(f"server:\n    {name}: {value}\n")
    if spelled in UNPRINTED:
        assert unbound_accepts(old)[0]
    else:
        theirs = unbound_says(old, name) or unbound_says(old, spelled)   # some print one name
        assert value in theirs.split(), theirs
    a, b = (unbound_conf.convert(unbound_conf.read(str(p))) for p in (old, new))
    assert a.settings == b.settings and a.tables == b.tables
    assert [(m.key, m.note) for m in a.mapped] == [(m.key, m.note) for m in b.mapped]
    assert [u.why for u in a.unmapped] == [u.why for u in b.unmapped]
    assert not any("unknown keyword" in u.why or u.why == "no corenet setting"
                   for u in a.unmapped), a.report()
    assert f"{spelled}: {value}" in a.report() and f"{name}: {value}" not in a.report()


def test_zone_clauses_other_spellings(tmp_path):
    conf = tmp_path / "unbound.conf"
    conf.write_text('forward-zone:\n    name: "a.test."\n    forward-addr: 192.0.2.1@853\n'
                    "    forward-ssl-upstream: yes\n"
                    'rpz:\n    name: "rpz.test."\n    master: 192.0.2.2\n    primary: 192.0.2.3\n')
    assert unbound_says(conf, "forward-zone").count("forward-tls-upstream") in (0, 1)
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert conv.tables["forward-zone"][0]["forward-tls-upstream"] is True
    # Unbound's master and primary lines add to one list of servers
    assert conv.tables["rpz"][0]["primary"] == ["192.0.2.2", "192.0.2.3"]
    assert not conv.unmapped, conv.report()


@pytest.mark.parametrize("forward_root", [True, False])
def test_tls_upstream_is_every_forward_zone_s(tmp_path, forward_root):
    """tls-upstream: yes (Unbound's every server over TLS) turns TLS on in every forward
    zone; where questions also go to authorities, which corenet asks without TLS, the line
    is reported as carried over only in part."""
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n    tls-upstream: no\n    ssl-upstream: yes\n"
                    f'forward-zone:\n    name: "{"." if forward_root else "a.test."}"\n'
                    "    forward-addr: 192.0.2.1@853#dns.test\n"
                    "    forward-tls-upstream: no\n"
                    'forward-zone:\n    name: "b.test."\n    forward-addr: 192.0.2.2@853\n')
    assert unbound_says(conf, "tls-upstream") == "yes"          # the last line
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert [t["forward-tls-upstream"] for t in conv.tables["forward-zone"]] == [True, True]
    said = {u.option.text: u.why for u in conv.unmapped}
    if forward_root:
        assert not said, conv.report()
        assert "ssl-upstream: yes -> forward-zone.forward-tls-upstream" in conv.report()
    else:
        assert list(said) == ["ssl-upstream: yes"]
        assert "authorities without TLS" in said["ssl-upstream: yes"]
    assert "tls-upstream: no -> nothing to write (a later tls-upstream line" in conv.report()


def test_interfaces_at_the_tls_port_serve_tls_alone_as_unbound_s(lab, tmp_path):
    """An unbound.conf in the older spellings whose interface at its ssl-port serves DNS
    over TLS: served by corenet as it is (`serve -c`), the interface at that port answers
    over TLS, as Unbound serves the same lines, and the other interface answers plain DNS.
    No plain DNS at the TLS port: corenet opens no UDP socket there, as Unbound does not
    since 1.23 (earlier ones, Debian 12's 1.17 among them, also answered over UDP there).
    Before, the converted settings listened at the TLS port twice, and the daemon could
    not start."""
    kdig = installed("kdig", "knot-dnsutils")
    ca = CA(tmp_path / "pki")
    pem, key = ca.issue("server")
    lines = ['ssl-service-key: "{key}"', 'ssl-service-pem: "{pem}"', "ssl-port: {tls}",
             "ip-address: 127.0.0.1@{tls}", 'local-zone: "spell.test." static',
             'local-data: "spell.test. TXT here"']
    plain, tls = free_port(), free_port()
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n" + "".join(f"    {line.format(key=key, pem=pem, tls=tls)}\n"
                                          for line in [f"ip-address: 127.0.0.1@{plain}",
                                                       *lines]))
    out = tmp_path / "converted.toml"
    r = cli("import-unbound", str(conf), "-o", str(out))
    data = tomllib.loads(out.read_text())
    assert data["listen"] == [f"127.0.0.1:{plain}"], r.stderr
    assert data["tls-listen"] == [f"127.0.0.1:{tls}"], r.stderr
    uplain, utls = free_port(), free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    ub = local_unbound(w, uplain, [line.format(key=key, pem=pem, tls=utls) for line in lines])
    d = Daemon(tmp_path / "d", lab, "-c", str(conf), listen=False, port=plain)
    try:
        d.start()
        assert "not carried over" not in d.log_text(), d.log_text()
        for who, port_plain, port_tls in (("unbound", uplain, utls), ("corenet", plain, tls)):
            over_tls = subprocess.run(
                [kdig, "@127.0.0.1", "-p", str(port_tls), "+tls", f"+tls-ca={ca.pem}",
                 f"+tls-hostname={SERVER_NAME}", "+timeout=5", "+retry=0", "spell.test.",
                 "TXT"], capture_output=True, text=True, timeout=30)
            assert over_tls.returncode == 0 and '"here"' in over_tls.stdout, \
                (who, over_tls.stdout + over_tls.stderr)
            q = dns.message.make_query("spell.test.", "TXT")
            a = dns.query.udp(q, "127.0.0.1", port=port_plain, timeout=5)
            assert a.rcode() == dns.rcode.NOERROR and a.answer, who
        udp = subprocess.run(["ss", "-Hlun", f"sport = :{tls}"], capture_output=True,
                             text=True, timeout=10).stdout
        assert udp.strip() == "", udp
    finally:
        stop_process(ub, 5.0, group=True)
        assert d.proc is None or d.stop() == 0, d.log_text()[-2000:]


@pytest.mark.parametrize("keyed, plain_http", [(True, False), (True, True), (False, False)])
def test_interfaces_go_where_unbound_serves_them(tmp_path, keyed, plain_http):
    """At Unbound's tls-port and https-port (853 and 443 unless given, as
    unbound-checkconf prints them) and at each tls-additional-port, an interface serves
    DNS over TLS or over HTTPS alone (plain HTTP with http-notls-downstream); without a
    service key and certificate Unbound serves no TLS: plain DNS, or plain HTTP."""
    empty = tmp_path / "empty.conf"
    empty.write_text("server:\n")
    defaults = {k: v for k, v in unbound_conf.SPECIAL_PORTS.items() if v is not None}
    assert {k: int(unbound_says(empty, k)) for k in defaults} == defaults
    lines = ["interface: 127.0.0.1", "interface: 127.0.0.1@853", "interface: ::1@443",
             "interface: 127.0.0.2@8853", "interface: 127.0.0.3@5353",
             "tls-additional-port: 8853"]
    if keyed:
        lines += ['tls-service-key: "/k.pem"', 'tls-service-pem: "/c.pem"']
    if plain_http:
        lines += ["http-notls-downstream: yes"]
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n" + "".join(f"    {line}\n" for line in lines))
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    s = conv.settings
    if keyed:
        assert s["listen"] == ["127.0.0.1:53", "127.0.0.3:5353"]
        assert s["tls-listen"] == ["127.0.0.1:853", "127.0.0.2:8853"]
        assert s["https-listen" if not plain_http else "http-listen"] == ["[::1]:443"]
        assert ("https-listen" if plain_http else "http-listen") not in s
    else:
        assert s["listen"] == ["127.0.0.1:53", "127.0.0.1:853", "127.0.0.2:8853",
                               "127.0.0.3:5353"]
        assert s["http-listen"] == ["[::1]:443"]
        assert not {"tls-listen", "https-listen"} & set(s)
        assert "127.0.0.1@853 -> listen (port 853 with no tls-service-key" in conv.report()
    assert not conv.unmapped, conv.report()
    assert "tls-additional-port: 8853 -> nothing to write (the interfaces at port 8853: " \
           "127.0.0.2:8853)" in conv.report()


def test_an_empty_chroot_is_no_chroot(tmp_path):
    """chroot: "" turns Unbound's chroot off, which is how corenet runs: nothing to report;
    a directory is reported as not carried over."""
    conf = tmp_path / "unbound.conf"
    conf.write_text('server:\n    chroot: ""\n')
    assert unbound_says(conf, "chroot") == ""
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert not conv.unmapped and [m.key for m in conv.mapped] == [""], conv.report()
    conf.write_text('server:\n    chroot: "/var/lib/unbound"\n')
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert [u.why for u in conv.unmapped] == [unbound_conf.NOT_CARRIED["chroot"]]


#: server: options of Unbound newer than the installed one (1.19 to 1.23), at a value an
#: operator writes: each is carried over or has its reason
NEWER_OPTIONS = {"log-time-iso": "yes", "cache-min-negative-ttl": "30",
                 "harden-unverified-glue": "yes", "iter-scrub-ns": "20",
                 "iter-scrub-cname": "11", "iter-scrub-rrsig": "8",
                 "iter-scrub-promiscuous": "yes"}


def test_unbound_s_newer_options_are_carried_over_or_explained(tmp_path):
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n" + "".join(f"    {k}: {v}\n" for k, v in NEWER_OPTIONS.items()))
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert {m.option.key for m in conv.mapped} == {
        "log-time-iso", "cache-min-negative-ttl", "harden-unverified-glue",
        "iter-scrub-promiscuous"}
    assert conv.settings["cache-min-negative-ttl"] == 30
    assert conv.settings["log-time-iso"] is True and conv.settings["harden-unverified-glue"]
    whys = {u.option.key: u.why for u in conv.unmapped}
    assert set(whys) == {"iter-scrub-ns", "iter-scrub-cname", "iter-scrub-rrsig"}
    assert all("limits" in why and why != "no corenet setting" for why in whys.values())
