"""The config keys for cache TTLs, glue, negative trust anchors and every field of
``Limits``: checked when the config is built (bad ones are one-line errors naming the key and
its line), on the command line too, and taking effect in a running daemon."""
from __future__ import annotations

from dataclasses import fields

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from daemon_proc import Daemon, cli
from ports import free_port
from resolver.daemon import config
from resolver.daemon.settings import TABLE
from resolver.daemon.config import ConfigError
from resolver.limits import DEFAULT, Limits


def build(tmp_path, text: str, **overrides):
    path = tmp_path / "resolver.toml"
    path.write_text(text)
    return config.build(str(path), overrides)


def _changed(f) -> object:
    """A valid value for limit ``f`` other than its default."""
    if f.name == "max_tcp_message":
        return 4096
    if f.type == "int":
        return f.default + 1
    return round(f.default / 2, 4)


#: limits set by settings of their own, and those settings
OWN_SETTING = {s.limit: s.name.replace("_", "-") for s in TABLE if s.limit}


def test_every_limit_is_settable_from_the_file(tmp_path):
    """Every field of Limits: in the [limits] table, or (for the few with a setting of
    their own) by that setting; the limits the daemon's resolver gets have them all."""
    from resolver.daemon.config import engine_limits

    values = {f.name: _changed(f) for f in fields(Limits)}
    text = "".join(f"{OWN_SETTING[n]} = {v!r}\n" for n, v in values.items()
                   if n in OWN_SETTING)
    text += "[limits]\n" + "".join(f"{n.replace('_', '-')} = {v!r}\n"
                                   for n, v in values.items() if n not in OWN_SETTING)
    cfg = build(tmp_path, text)
    lim = engine_limits(cfg, cfg.limits)
    for name, v in values.items():
        assert getattr(lim, name) == v, name
        assert getattr(lim, name) != getattr(DEFAULT, name), name


@pytest.mark.parametrize("name", sorted(OWN_SETTING))
def test_a_limit_with_its_own_setting_is_refused_in_the_limits_table(tmp_path, name):
    key = name.replace("_", "-")
    with pytest.raises(ConfigError) as err:
        build(tmp_path, f"workers = 1\n[limits]\n{key} = 7\n")
    assert "resolver.toml:3" in str(err.value) and OWN_SETTING[name] in str(err.value)


def test_limits_at_the_top_level_and_defaults_for_the_rest(tmp_path):
    cfg = build(tmp_path, "max_referrals = 12\nmax-query-time = 2.5\n")
    assert cfg.limits.max_referrals == 12 and cfg.limits.max_query_time == 2.5
    assert cfg.limits.max_cname_chain == DEFAULT.max_cname_chain
    assert build(tmp_path, "").limits == DEFAULT


@pytest.mark.parametrize("text, words", [
    ("workers = 1\n[limits]\nmax-referals = 3\n", ["resolver.toml:3", "max-referals"]),
    ("workers = 1\n\nmax-refferals = 3\n", ["resolver.toml:3", "max-refferals"]),
    ('[limits]\nmax-referrals = "many"\n', ["resolver.toml:2", "max_referrals", "number"]),
    ("[limits]\nmax-referrals = 0\n", ["max_referrals", ">= 1"]),
    ("[limits]\nmax-referrals = 2.5\n", ["max_referrals", "whole number"]),
    ("[limits]\nprefetch-fraction = 2\n", ["prefetch_fraction", "0..1"]),
    ("[limits]\nmax-tcp-message = 100\n", ["max_tcp_message", "512..65535"]),
    ("[limits]\nmin-rto = 2.0\nmax-rto = 1.0\n", ["min_rto"]),
    ("max-referrals = 3\n[limits]\nmax-referrals = 4\n", ["max-referrals", "both"]),
    ("limits = 3\n", ["resolver.toml:1", "[limits] table"]),
    ("cache-min-ttl = 600\ncache-max-ttl = 300\n", ["cache-min-ttl", "cache-max-ttl"]),
    ("cache-max-ttl = -1\n", ["cache-max-ttl"]),
    ('harden-glue = "no"\n', ["harden-glue", "true or false"]),
    ('domain-insecure = ["ok.example.", "bad..name"]\n', ["domain-insecure", "bad..name"]),
    # TOML itself: the file, and where in it and what is wrong there
    ("workers = 1\nprefetch = \n", ["resolver.toml", "line 2, column 12", "Invalid value"]),
    ("workers = 1\nworkers = 2\n", ["resolver.toml", "line 2", "Cannot overwrite"]),
    ('allow = ["127.0.0.0/8"\n', ["resolver.toml", "Unclosed array"]),
])
def test_bad_keys_and_values_name_the_key_and_line(tmp_path, text, words):
    with pytest.raises(ConfigError) as err:
        build(tmp_path, text)
    msg = str(err.value)
    for w in words:
        assert w in msg, msg


def test_cache_ttl_keys_set_the_limits(tmp_path):
    from resolver.daemon.config import engine_limits

    cfg = build(tmp_path, "cache-min-ttl = 30\ncache-max-ttl = 7200\n"
                          "cache-max-negative-ttl = 900\n")
    lim = engine_limits(cfg, cfg.limits)
    assert (lim.min_ttl, lim.max_ttl, lim.max_negative_ttl) == (30, 7200, 900)
    # the command line wins over the file
    cfg = build(tmp_path, "cache-max-ttl = 7200\n", cache_max_ttl="100")
    assert engine_limits(cfg, cfg.limits).max_ttl == 100 and cfg.cache_max_ttl == 100
    # unset, the limit is [limits]'s, whatever the engine ran with before (a reload)
    assert engine_limits(build(tmp_path, ""), cfg.limits.replace(max_ttl=5)).max_ttl == \
        cfg.limits.max_ttl


def test_serve_stale_and_prefetch_turn_their_limits_off_and_on(tmp_path):
    from resolver.daemon.config import engine_limits

    base = build(tmp_path, "").limits
    on = build(tmp_path, "serve-stale = true\nprefetch = true\nserve-stale-window = 600\n")
    lim = engine_limits(on, base, 0.25)
    assert (lim.stale_window, lim.prefetch_fraction) == (600, 0.25)
    assert engine_limits(on, base).prefetch_fraction == base.prefetch_fraction
    off = build(tmp_path, "serve-stale = false\nprefetch = false\nserve-stale-window = 600\n")
    lim = engine_limits(off, base, 0.25)
    assert (lim.stale_window, lim.prefetch_fraction) == (0, 0.0)


def test_glue_and_negative_anchors_from_the_file(tmp_path):
    cfg = build(tmp_path, 'harden-glue = false\ndomain-insecure = ["Example.COM", "test."]\n')
    assert cfg.harden_glue is False
    assert cfg.domain_insecure == ("Example.COM.", "test.")
    assert build(tmp_path, "").harden_glue is True


@pytest.mark.parametrize("args, name", [
    (["--cache-min-ttl", "soon"], "cache-min-ttl"),
    (["--cache-max-ttl", "-3"], "cache-max-ttl"),
    (["--cache-max-negative-ttl", "x"], "cache-max-negative-ttl"),
    (["--domain-insecure", "a..b"], "domain-insecure"),
])
def test_bad_command_line_values_exit_2_naming_the_flag(args, name):
    r = cli("serve", "--listen", f"127.0.0.1:{free_port()}", *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], r.stderr


def test_the_daemon_applies_ttl_limits_and_negative_anchors(signed_lab, tmp_path):
    """cache-max-ttl lowers the lab's 3600 s TTLs in answers; the negative anchor turns a
    bogus zone insecure; cache-max-negative-ttl caps the NXDOMAIN's SOA (3600 s in the
    lab)."""
    lab, anchor = signed_lab
    conf = tmp_path / "resolver.toml"
    conf.write_text(f'trust-anchor = "{anchor}"\ncache-max-ttl = 60\n'
                    'domain-insecure = ["altered.com."]\n'
                    "cache-max-negative-ttl = 20\n[limits]\nmax-query-time = 3.5\n")
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        r = d.ask(dns.message.make_query("www.example.com.", "A", want_dnssec=True))
        assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AD
        assert r.answer and all(rr.ttl <= 60 for rr in r.answer)
        r = d.ask(dns.message.make_query("www.altered.com.", "A", want_dnssec=True))
        assert r.rcode() == dns.rcode.NOERROR and r.answer and not r.flags & dns.flags.AD
        r = d.ask(dns.message.make_query("www.expired.com.", "A", want_dnssec=True))
        assert r.rcode() == dns.rcode.SERVFAIL
        r = d.ask(dns.message.make_query("nope.example.com.", "A", want_dnssec=True))
        assert r.rcode() == dns.rcode.NXDOMAIN and r.flags & dns.flags.AD
        soa = [rr for rr in r.authority if rr.rdtype == dns.rdatatype.SOA]
        assert soa and soa[0].ttl <= 20
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_the_reference_page_lists_every_limit():
    from resolver.daemon.reference import reference
    page = reference()
    for f in fields(Limits):
        assert f"### `limits.{f.name.replace('_', '-')}`" in page, f.name
    for key in ("cache-min-ttl", "cache-max-ttl", "cache-max-negative-ttl", "harden-glue",
                "domain-insecure"):
        assert f"## `{key}`" in page and f"--{key}" in page, key


def test_the_daemon_builds_its_resolver_with_these_settings(tmp_path):
    from resolver.daemon.server import make_resolver

    cfg = build(tmp_path, 'harden-glue = false\ndomain-insecure = ["test."]\n'
                          "cache-min-ttl = 10\n[limits]\nmax-referrals = 9\n")
    r = make_resolver(cfg)
    assert r.harden_glue is False
    assert r.dnssec is not None and r.dnssec.insecure == {b"\x04test\x00"}
    assert r.limits.min_ttl == 10 and r.limits.max_referrals == 9
    assert r.cache.rrsets.limits is r.limits
    assert r.new_iterator(b"\x01x\x00", 1, 1).harden_glue is False
