"""The settings table and what is made from it: serve's flags, the file's conversion with
the line of a bad entry (zone tables too), Config, the reference page, the sample config
and the man page."""
from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from dataclasses import fields

import pytest

from daemon_proc import ROOT, cli
from resolver.daemon import cli as cli_mod
from resolver.daemon import config, reference, settings
from resolver.daemon.config import ConfigError
from resolver.limits import DEFAULT


def _serve_actions():
    sub = cli_mod.parser()._subparsers._group_actions[0].choices["serve"]
    return [a for a in sub._actions if a.option_strings and a.dest not in ("help", "config")]


def _build(*args: str):
    ns = cli_mod.parser().parse_args(["serve", *args])
    return config.build(ns.config, settings.overrides(ns))


# ---- the table itself -------------------------------------------------------------------------
def test_config_is_the_table_and_each_default_passes_its_own_check():
    names = [f.name for f in fields(config.Config)]
    assert names == [s.name for s in settings.TABLE] + ["config_file"]
    cfg = config.Config()
    for s in settings.TABLE:
        assert getattr(cfg, s.name) == s.default
        assert s.doc and not s.doc.endswith(" "), s.name
        if s.name == "control":
            # the daemon makes this directory when it starts: on a machine where no daemon
            # ran yet it does not exist, so the path check would fail here
            from resolver.daemon.service import SYSTEM_CONTROL
            assert s.default == SYSTEM_CONTROL
            continue
        if s.default is not None and not isinstance(s.default, (tuple, settings.Limits)):
            assert s.convert(s.default, s.key) == s.default, s.name
    with pytest.raises(AttributeError):
        cfg.workers = 2                                   # frozen


def test_bounds_come_from_the_table():
    row = settings.BY_NAME["ip_ratelimit_prefix_v6"]
    assert row.convert.bounds == (16, 128)
    with pytest.raises(ConfigError, match="ip-ratelimit-prefix-v6: 15 must be in 16..128"):
        config.build(None, {"ip_ratelimit_prefix_v6": 15})
    assert config.build(None, {"ip_ratelimit_prefix_v6": 16}).ip_ratelimit_prefix_v6 == 16


def test_an_allow_list_longer_than_the_acl_holds_is_refused_at_its_line(tmp_path):
    from resolver.daemon.acl import MAX_NETWORKS

    conf = tmp_path / "c.toml"
    nets = ", ".join(f'"10.{i // 256}.{i % 256}.0/24"' for i in range(MAX_NETWORKS + 1))
    conf.write_text(f'workers = 1\nallow = [{nets}]\n')
    with pytest.raises(ConfigError, match=rf"^{conf}:2: allow: at most {MAX_NETWORKS} networks"):
        config.build(str(conf))


def test_a_whole_limit_takes_a_whole_float_and_refuses_a_fraction(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text("[limits]\nmax-referrals = 20.0\n")
    assert config.build(str(conf)).limits.max_referrals == 20
    conf.write_text("[limits]\nmax-referrals = 20.5\n")
    with pytest.raises(ConfigError, match=rf"^{conf}:2: limits.max_referrals: expected a whole"):
        config.build(str(conf))


def test_unbound_names_and_aliases_are_read(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text("serve-expired = false\nserve-expired-ttl = 600\nipv6 = false\n")
    cfg = config.build(str(conf))
    assert (cfg.serve_stale, cfg.serve_stale_window, cfg.do_ip6) == (False, 600, False)


def test_restart_settings_are_the_table_s():
    assert "listen" in config.RESTART_SETTINGS and "limits" in config.RESTART_SETTINGS
    assert "allow" not in config.RESTART_SETTINGS and "log_queries" not in config.RESTART_SETTINGS
    assert set(config.RESTART_SETTINGS) == {s.name for s in settings.TABLE if s.restart}


# ---- the command line -------------------------------------------------------------------------
#: Every flag ``serve`` had before the table, with a value and what it must set.
TODAY_S_FLAGS = [
    (["--listen", "127.0.0.1:5353", "--listen", "[::1]:5353"],
     "listen", (("127.0.0.1", 5353), ("::1", 5353))),
    (["--root-hints", str(ROOT / "resolver" / "data" / "root.hints")], "root_hints",
     str(ROOT / "resolver" / "data" / "root.hints")),
    (["--allow", "10.0.0.0/8"], "allow", (ipaddress.ip_network("10.0.0.0/8"),)),
    (["--workers", "3"], "workers", 3),
    (["--metrics", "127.0.0.1:9999"], "metrics", ("127.0.0.1", 9999)),
    (["--control", ""], "control", None),                   # "" turns it off
    (["--log-level", "debug"], "log_level", "DEBUG"),
    (["--upstream-port", "5300"], "upstream_port", 5300),
    (["--cache-size", "1000000"], "cache_size", 1000000),
    (["--no-validate"], "validate", False),
    (["--no-do-ip6"], "do_ip6", False),
    (["--no-ipv6"], "do_ip6", False),
    (["--ipv6"], "do_ip6", True),
    (["--do-ip6"], "do_ip6", True),
    (["--no-qname-minimisation"], "qname_minimisation", False),
    (["--no-do-ip4"], "do_ip4", False),
    (["--no-do-not-query-localhost"], "do_not_query_localhost", False),
    (["--infra-host-ttl", "60"], "infra_host_ttl", 60.0),
    (["--tcp-idle-timeout", "2.5"], "tcp_idle_timeout", 2.5),
    (["--tcp-max-connections", "50"], "tcp_max_connections", 50),
    (["--tcp-max-inflight", "4"], "tcp_max_inflight", 4),
    (["--tcp-max-connections-per-client", "5"], "tcp_max_connections_per_client", 5),
    (["--user", "root"], "user", "root"),
    (["--allow-snoop", "192.0.2.0/24"], "allow_snoop", (ipaddress.ip_network("192.0.2.0/24"),)),
    (["--ip-ratelimit", "0"], "ip_ratelimit", 0),
    (["--max-udp-size", "1400"], "max_udp_size", 1400),
    (["--log-queries"], "log_queries", True),
    (["--cache-min-ttl", "30"], "cache_min_ttl", 30),
    (["--cache-max-ttl", "600"], "cache_max_ttl", 600),
    (["--cache-max-negative-ttl", "60"], "cache_max_negative_ttl", 60),
    (["--no-harden-glue"], "harden_glue", False),
    (["--domain-insecure", "test", "--domain-insecure", "lab."], "domain_insecure",
     ("test.", "lab.")),
]


@pytest.mark.parametrize("args, name, want", TODAY_S_FLAGS, ids=lambda v: str(v)[:40])
def test_every_flag_of_before_still_parses_to_the_same_config(args, name, want):
    cfg = _build(*args)
    assert getattr(cfg, name) == want
    untouched = config.build()
    for s in settings.TABLE:                  # nothing else moved
        if s.name not in (name, "limits"):
            assert getattr(cfg, s.name) == getattr(untouched, s.name), s.name


def test_no_flag_given_leaves_the_file_in_charge(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text("workers = 4\nharden-glue = false\nmax-udp-size = 1400\n")
    cfg = _build("--config", str(conf))
    assert (cfg.workers, cfg.harden_glue, cfg.max_udp_size) == (4, False, 1400)
    cfg = _build("--config", str(conf), "--harden-glue", "--workers", "2")
    assert (cfg.workers, cfg.harden_glue) == (2, True)


def test_the_parser_is_the_table_s():
    """Each flag of ``serve`` is a row's, and each row's flag is on ``serve``."""
    spelled = {opt for a in _serve_actions() for opt in a.option_strings}
    from_table = {f for s in settings.TABLE for f in reference.flags(s)}
    assert spelled == from_table
    for s in settings.TABLE:
        if s.flag is None:
            assert f"--{s.key}" not in spelled
    before = {opt for args, _, _ in TODAY_S_FLAGS for opt in args if opt.startswith("--")}
    assert before <= spelled


# ---- errors naming the file and line, zone tables included -----------------------------------
ZONES = """\
# zones
local-data = ["a.example. A 192.0.2.1"]

[[local-zone]]
name = "good.example."
type = "static"

[[local-zone]]
name = "bad.example."
type = "{local_type}"
local-data = ["bad.example. A 192.0.2.1",
              "{record}"]

[[forward-zone]]
name = "corp."
forward-addr = ["192.0.2.53",
                "{server}"]
"""


def _zones(**changes) -> str:
    values = {"local_type": "static", "record": "bad.example. TXT hello",
              "server": "192.0.2.54@5353"}
    values.update(changes)
    return ZONES.format(**values)


@pytest.mark.parametrize("change, line, words", [
    ({"local_type": "stattic"}, 10, "type 'stattic'"),
    ({"record": "bad.example. A not-an-address"}, 12, "local-data"),
    ({"server": "ns1.corp.example"}, 17, "ns1.corp.example"),
    ({"server": "192.0.2.53"}, 14, "given twice"),          # no one value: the entry
])
def test_a_bad_zone_entry_is_named_with_its_line(tmp_path, change, line, words):
    conf = tmp_path / "zones.toml"
    conf.write_text(_zones())
    config.build(str(conf))                                    # the good file is good
    conf.write_text(_zones(**change))
    with pytest.raises(ConfigError) as e:
        config.build(str(conf))
    assert str(e.value).startswith(f"{conf}:{line}: "), str(e.value)
    assert words in str(e.value)


def test_a_bad_inline_zone_item_is_named_with_its_line(tmp_path):
    conf = tmp_path / "zones.toml"
    conf.write_text('log-level = "INFO"\nlocal-zone = ["a.example. static",\n'
                    '              "b.example. nonsense"]\n'
                    'local-data = ["c.example. A 192.0.2.1",\n'
                    '              "c.example. AAAA 192.0.2.1"]\n')
    with pytest.raises(ConfigError, match=rf"^{conf}:3: local-zone b.example."):
        config.build(str(conf))
    conf.write_text('local-data = ["c.example. A 192.0.2.1",\n'
                    '              "c.example. AAAA 192.0.2.1"]\n')
    with pytest.raises(ConfigError, match=rf"^{conf}:2: local-data"):
        config.build(str(conf))


def test_a_zone_given_twice_is_named_at_its_second_mention(tmp_path):
    conf = tmp_path / "zones.toml"
    conf.write_text('[[forward-zone]]\nname = "example.com"\nforward-addr = ["192.0.2.1"]\n\n'
                    '[[stub-zone]]\nname = "Example.COM."\nstub-addr = ["192.0.2.2"]\n')
    with pytest.raises(ConfigError, match=rf"^{conf}:6: zone example.com. is given twice"):
        config.build(str(conf))
    conf.write_text('local-zone = ["lan. static",\n              "other. static", "LAN. deny"]\n')
    with pytest.raises(ConfigError, match=rf"^{conf}:2: local-zone lan. is given twice"):
        config.build(str(conf))


def test_checkconf_prints_the_line_of_a_bad_zone_entry(tmp_path):
    conf = tmp_path / "zones.toml"
    conf.write_text(_zones(local_type="stattic"))
    r = cli("checkconf", str(conf))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{conf}:10: local-zone bad.example.: type 'stattic'" in lines[0]


# ---- the documents ----------------------------------------------------------------------------
@pytest.mark.parametrize("path, maker", reference.DOCUMENTS.items())
def test_the_documents_are_the_table_s(path, maker):
    """docs/config.md, the sample config and the man page are generated; regenerate with
    ``python -m resolver.daemon.reference --write``."""
    text = getattr(reference, maker)()
    assert (ROOT / path).read_text() == text, "run: python -m resolver.daemon.reference --write"
    if path.endswith(".8"):           # corenet-resolver(8): serve's options and the commands
        from resolver.daemon.commands import COMMANDS
        for s in settings.TABLE:
            for flag in reference.flags(s):
                assert f"\\fB{flag.replace('-', chr(92) + '-')}\\fR" in text, flag
        for c in COMMANDS:
            assert f"\n.B{'I' if c.args else ''} {c.name}" in text, c.name
        return
    for s in settings.TABLE:
        assert s.key.replace("-", "\\-" if path.endswith(".5") else "-") in text, s.key
    for name in settings.LIMITS:
        if name not in settings.LIMITS_AS_SETTINGS:
            key = name.replace("_", "-")
            assert key.replace("-", "\\-" if path.endswith(".5") else "-") in text, name


@pytest.mark.parametrize("page", ["corenet-resolver.8", "corenet-resolver.toml.5"])
def test_the_man_pages_render_without_a_warning(page):
    """groff with every warning on (and mandoc's lint where installed) says nothing."""
    path = ROOT / "docs" / "man" / page
    r = subprocess.run(["groff", "-ww", "-man", "-Tutf8", str(path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    shown = re.sub(".\b", "", r.stdout)                    # bold and underline overstrikes
    assert "SYNOPSIS" in shown and "corenet-resolver" in shown
    if shutil.which("mandoc"):
        r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", str(path)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr


def test_the_sample_sets_each_setting_to_a_value_it_accepts(tmp_path):
    """Each commented line of the sample, uncommented alone, is a valid file (examples
    naming files that do not exist here are left out)."""
    lines = (ROOT / "docs" / "corenet-resolver.toml").read_text().splitlines()
    checked = 0
    for line in lines:
        if not line.startswith("# ") or " = " not in line:
            continue
        key = line[2:].split(" = ")[0]
        row = settings.BY_NAME.get(key.replace("-", "_")) or settings.LIMITS.get(
            key.replace("-", "_"))
        if row is None or key == "user" or "/" in line and "listen" not in key and "allow" not in key \
                and "endpoint" not in key:
            continue
        conf = tmp_path / "one.toml"
        conf.write_text(("[limits]\n" if row.section == "limits" else "") + line[2:] + "\n")
        config.load_file(str(conf))
        checked += 1
    assert checked > 60


def test_the_limit_defaults_in_the_sample_are_the_limits():
    text = (ROOT / "docs" / "corenet-resolver.toml").read_text()
    assert f"# max-query-time = {DEFAULT.max_query_time}\n" in text
    assert "# max-udp-size = 1232\n" in text


@pytest.mark.skipif(shutil.which("man") is None, reason="no man here")
def test_the_man_page_renders():
    r = subprocess.run(["man", "-l", str(ROOT / "docs" / "man" / "corenet-resolver.toml.5")],
                       capture_output=True, text=True, env={"MANWIDTH": "100", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0
    assert "corenet-resolver.toml - configuration file" in r.stdout
    assert "tcp-idle-timeout" in r.stdout and "max-referrals" in r.stdout


# ---- limits that were constants ---------------------------------------------------------------
def test_a_query_s_records_are_bounded_by_its_header_whatever_the_old_limit(tmp_path):
    import dns.message
    import dns.rrset

    from resolver.daemon.server import make_resolver
    from resolver.response import begin

    q = dns.message.make_query("www.example.", "A", use_edns=0)
    conf = tmp_path / "c.toml"
    conf.write_text("[limits]\nmax-query-records = 64\n")    # still read, for old files
    resolver = make_resolver(config.build(str(conf)))
    assert isinstance(begin(resolver, q.to_wire()), tuple)      # a question and its OPT
    q.additional.append(dns.rrset.from_text("h.example.", 60, "IN", "A", "192.0.2.1"))
    out = begin(resolver, q.to_wire())
    assert isinstance(out, bytes) and out[3] & 0x0F == 1 and len(out) == 12  # FORMERR, unread


def test_the_codec_s_defaults_are_the_limits():
    from resolver.wire import codec

    assert codec.DEF_MAX_JUMPS == DEFAULT.max_pointer_jumps


def test_the_limits_that_were_constants_are_settable(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text("max-rate-clients = 10\n[limits]\nshared-cache-commands = 4\n"
                    "nsec3-max-hashes-per-synthesis = 8\nmax-query-records = 4\n")
    lim = config.build(str(conf)).limits
    assert (lim.max_rate_clients, lim.shared_cache_commands,
            lim.nsec3_max_hashes_per_synthesis, lim.max_query_records) == (10, 4, 8, 4)
    conf.write_text("[limits]\nshared-cache-backoff = 0\n")
    with pytest.raises(ConfigError, match=rf"{conf}:2: limits.shared_cache_backoff"):
        config.build(str(conf))
