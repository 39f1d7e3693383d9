"""unbound-control's commands as ``corenet-resolver COMMAND [ARGS]``, each against a real
daemon with two workers over the lab: what each changes in the answers (a flushed entry goes
upstream again, local data answers, a forward zone routes to another server ...), that runtime
changes last until ``reload``, the cache's dump and load with each entry's DNSSEC status, the
socket found from ``-c CONFIG``, and the TCP control listener with mutual TLS."""
from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.request

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from daemon_proc import Daemon, cli
from ports import free_port
from dnssec_cases import flagged_query
from loopback_authority import LoopbackAuthority
from tls_certs import CA

#: queries asked to reach both workers: each comes from a new source port, which the
#: kernel's SO_REUSEPORT hash spreads over the two (missing one is a 2**-ASKS chance)
ASKS = 24


def start(tmp, lab, *extra: str) -> Daemon:
    d = Daemon(tmp, lab, "--workers", "2", *extra).start(ready="ready: 2 workers")
    deadline = time.monotonic() + 15
    while d.stats().get("workers") != 2:
        assert time.monotonic() < deadline, d.log_text()[-2000:]
        time.sleep(0.05)
    return d


@pytest.fixture(scope="module")
def daemon(lab, tmp_path_factory):
    d = start(tmp_path_factory.mktemp("control"), lab)
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


def ctl(d: Daemon, *args: str, input: str | None = None):
    return cli(*args, "--control", d.control, input=input)


def ok(d: Daemon, *args: str) -> str:
    r = ctl(d, *args)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (args, r.stdout, r.stderr)
    return r.stdout


def removed(d: Daemon, *args: str) -> tuple[int, int, int]:
    """A flush's counts, as Unbound prints them: rrsets, messages, key entries."""
    import re
    r = ctl(d, *args)
    m = re.fullmatch(r"ok removed (\d+) rrsets, (\d+) messages and (\d+) key entries\n",
                     r.stdout)
    assert r.returncode == 0 and m, (args, r.stdout, r.stderr)
    return tuple(int(n) for n in m.groups())


def upstream(d: Daemon) -> int:
    return d.stats()["engine"]["upstream_queries"]


def addresses(r: dns.message.Message) -> set[str]:
    return {x.to_text() for rr in r.answer if rr.rdtype == dns.rdatatype.A for x in rr}


def everywhere(d: Daemon, name: str, rdtype: str = "A") -> list[dns.message.Message]:
    """The answers of ``ASKS`` queries: every worker answers some of them."""
    return [d.ask(name, rdtype) for _ in range(ASKS)]


def cached_everywhere(d: Daemon, name: str, rdtype: str = "A") -> None:
    """Fills both workers' caches with the answer, then checks they answer from it."""
    everywhere(d, name, rdtype)
    before = upstream(d)
    everywhere(d, name, rdtype)
    assert upstream(d) == before, f"{name} not cached in both workers"


# ---- help ---------------------------------------------------------------------------------
def test_help_lists_every_command_with_its_synopsis():
    from resolver.daemon.commands import COMMANDS

    for how in (["help"], ["--help"]):
        r = cli(*how)
        assert r.returncode == 0, r.stderr
        for c in COMMANDS:
            assert f"  {c.name} {c.args}".rstrip() in r.stdout, (c.name, r.stdout)
    from resolver.daemon.commands import SCOPES
    assert {c.scope for c in COMMANDS} <= set(SCOPES)
    r = cli("dump_cache", "-h")                  # a command's own help, no daemon asked
    assert r.returncode == 0 and r.stdout.startswith("usage: corenet-resolver")
    assert "union of workers" in r.stdout


def test_each_command_s_scope_has_what_it_needs_to_be_answered():
    """A command's scope (commands.py, written once) is what the supervisor and the workers
    act on: the supervisor answers each of scope "supervisor" itself, each of "union of
    workers" has its merge, every other one a worker's handler."""
    from resolver.daemon import operations
    from resolver.daemon.commands import COMMANDS
    from resolver.daemon.supervisor import Supervisor

    own = Supervisor.__new__(Supervisor).own_commands()
    assert set(own) == {c.name for c in COMMANDS if c.scope == "supervisor"}
    for c in COMMANDS:
        if c.scope == "union of workers":
            assert c.name in operations.MERGE, c.name
        assert c.name in operations.WORKER, c.name
    assert operations.HERE_TOO == {"verbosity", "log_reopen"}


def test_an_unknown_command_is_named_and_the_other_subcommands_are_not_control_commands():
    import argparse

    from resolver.daemon import cli as cli_module

    (sub,) = [a for a in cli_module.parser()._actions
              if isinstance(a, argparse._SubParsersAction)]
    assert cli_module.SUBCOMMANDS == set(sub.choices)
    r = cli("foo", "--control", "/nonexistent/control")
    assert (r.returncode, r.stdout) == (1, "error unknown command 'foo' (corenet-resolver "
                                           "help lists them)\n"), r.stdout + r.stderr
    r = cli("checkconf", "/nonexistent/resolver.toml")         # still checkconf's error
    assert r.returncode == 1 and "/nonexistent/resolver.toml" in r.stderr, r.stderr


def test_a_bad_command_or_argument_is_an_error_and_exit_1(daemon):
    r = ctl(daemon, "flush_type", "www.example.com.")
    assert (r.returncode, r.stdout) == \
        (1, "error could not find next argument after www.example.com.\n")
    r = ctl(daemon, "flush_infra", "somewhere")
    assert r.returncode == 1 and r.stdout.startswith("error ")
    r = ctl(daemon, "verbosity", "x")
    assert r.returncode == 1 and r.stdout == "error in verbosity number syntax: x\n"
    r = ctl(daemon, "local_data", "bad.test. A not-an-address")
    assert r.returncode == 1 and r.stdout.startswith("error ")
    for raw in (b'{"cmd": "flush_zone", "args": 5}\n', b'{"cmd": "load_cache"}\n',
                b'{"cmd": "lookup", "args": ["..bad.."]}\n', b"not json\n",
                b'{"cmd": "no_such_command"}\n'):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(daemon.control)
            s.sendall(raw)
            answer = json.loads(s.makefile("rb").readline())
        assert answer["ok"] is False and answer["error"], (raw, answer)
    assert daemon.ask("www.example.net.").rcode() == dns.rcode.NOERROR


# ---- the cache ----------------------------------------------------------------------------
def test_flush_type_and_flush_zone_send_the_names_upstream_again(daemon):
    cached_everywhere(daemon, "www.example.net.")
    cached_everywhere(daemon, "h001.bulk.net.")
    cached_everywhere(daemon, "h002.bulk.net.")
    ok(daemon, "flush_type", "www.example.net.", "A")
    before = upstream(daemon)
    assert all(addresses(r) == {"198.51.100.1"} for r in everywhere(daemon, "www.example.net."))
    assert upstream(daemon) >= before + 2             # one miss in each worker
    before = upstream(daemon)
    everywhere(daemon, "h001.bulk.net.")
    assert upstream(daemon) == before                 # another name stays cached
    rrsets, messages, _ = removed(daemon, "flush_zone", "bulk.net.")
    assert messages >= 4 and rrsets >= 4          # two answers in each worker's cache
    assert removed(daemon, "flush_zone", "bulk.net.") == (0, 0, 0)
    for name in ("h001.bulk.net.", "h002.bulk.net."):
        before = upstream(daemon)
        assert all(addresses(r) == {f"10.1.0.{name[3]}"} for r in everywhere(daemon, name))
        assert upstream(daemon) >= before + 2


def test_flush_negative_forgets_nxdomain_and_nodata_only(daemon):
    cached_everywhere(daemon, "nope.example.com.")
    cached_everywhere(daemon, "v4only.example.com.", "AAAA")
    cached_everywhere(daemon, "www.example.com.")
    _, messages, _ = removed(daemon, "flush_negative")
    assert messages >= 4                          # two negative answers in each worker
    before = upstream(daemon)
    everywhere(daemon, "www.example.com.")
    assert upstream(daemon) == before                 # positive answers stay
    for name, rdtype in (("nope.example.com.", "A"), ("v4only.example.com.", "AAAA")):
        before = upstream(daemon)
        answers = everywhere(daemon, name, rdtype)
        assert upstream(daemon) >= before + 2, name
        assert not any(r.answer for r in answers)


def infra_pairs(d: Daemon) -> list[tuple[str, str]]:
    """``dump_infra``'s (address, zone) of each line."""
    r = ctl(d, "dump_infra")
    assert r.returncode == 0, r.stdout + r.stderr
    return [tuple(line.split()[:2]) for line in r.stdout.splitlines()]


def test_lookup_shows_each_worker_s_servers_and_flush_infra_forgets_them(daemon, lab):
    cached_everywhere(daemon, "www.example.com.")
    r = ctl(daemon, "lookup", "www.example.com.")
    assert r.returncode == 0, r.stdout
    assert "worker 0:" in r.stdout and "worker 1:" in r.stdout
    assert r.stdout.count("\tIN\tNS\tns1.example.com.") == 2, r.stdout
    assert "127.0.0.10" in r.stdout and "127.0.0.11" in r.stdout
    assert " msec, " in r.stdout
    # dump_infra: both workers' servers, each address and zone once, the lab's port shown
    port = "" if lab.port == 53 else f"@{lab.port}"
    pairs = infra_pairs(daemon)
    assert len(pairs) == len(set(pairs)), pairs
    assert {(f"127.0.0.{n}{port}", "example.com.") for n in (10, 11)} & set(pairs), pairs
    ok(daemon, "flush_infra", "127.0.0.10")
    r = ctl(daemon, "lookup", "www.example.com.")
    assert r.stdout.count("127.0.0.10      \tnot in infra cache.") == 2, r.stdout
    assert not [p for p in infra_pairs(daemon) if p[0] == f"127.0.0.10{port}"]
    ok(daemon, "flush_infra", "all")
    r = ctl(daemon, "lookup", "www.example.com.")
    assert " msec, " not in r.stdout and r.stdout.count("not in infra cache.") >= 4, r.stdout
    assert infra_pairs(daemon) == []


# ---- zones and local data -----------------------------------------------------------------
@pytest.fixture
def responder():
    r = LoopbackAuthority()
    yield r
    r.close()


def test_forward_add_routes_the_zone_to_another_server_until_removed(daemon, responder):
    cached_everywhere(daemon, "www.example.com.")
    ok(daemon, "forward_add", "+i", "example.com.", f"127.0.0.1@{responder.port}")
    r = ctl(daemon, "list_forwards")
    # Unbound's form: the zone's addresses without their ports, "+i" for domain-insecure
    assert r.stdout.split() == ["example.com.", "IN", "forward", "+i", "127.0.0.1"]
    assert ctl(daemon, "get_option", "domain-insecure").stdout == "example.com.\n"   # +i
    answers = everywhere(daemon, "www.example.com.")
    assert all(addresses(a) == {"192.0.2.77"} for a in answers)
    assert "www.example.com." in responder.asked
    r = ctl(daemon, "lookup", "www.example.com.")
    assert r.stdout.count("forwarding request:") == 2, r.stdout
    assert "127.0.0.1       \trto " in r.stdout, r.stdout
    ok(daemon, "forward_remove", "+i", "example.com.")
    assert ctl(daemon, "list_forwards").stdout.strip() == ""
    # +t (newer Unbound's): the servers asked over TLS, each with its authentication name
    ok(daemon, "forward_add", "+t", "tls.test.", "127.0.0.1@853#dns.example")
    assert ctl(daemon, "get_option", "forward-zone").stdout == \
        "tls.test. 127.0.0.1@853#dns.example\n"
    r = ctl(daemon, "forward_add", "+x", "tls.test.", "127.0.0.1")
    assert r.returncode == 1 and r.stdout == "error: unknown option x\n"
    ok(daemon, "forward_remove", "tls.test.")
    assert ctl(daemon, "get_option", "domain-insecure").stdout.strip() == ""
    assert all(addresses(a) == {"192.0.2.1", "192.0.2.11"}
               for a in everywhere(daemon, "www.example.com."))


def test_stub_add_asks_the_given_authority_until_removed(daemon, responder):
    ok(daemon, "stub_add", "example.net.", f"127.0.0.1@{responder.port}")
    stubs = ctl(daemon, "list_stubs").stdout.splitlines()
    assert stubs[0].startswith(". IN stub prime ")             # the root's hints first
    assert "example.net. IN stub noprime 127.0.0.1" in stubs[1:], stubs
    assert all(addresses(a) == {"192.0.2.77"} for a in everywhere(daemon, "www.example.net."))
    ok(daemon, "stub_remove", "example.net.")
    assert all(addresses(a) == {"198.51.100.1"} for a in everywhere(daemon, "www.example.net."))


def test_local_zone_and_local_data_answer_until_removed(daemon):
    ok(daemon, "local_data", "printer.office.example.", "300", "A", "10.0.0.5")
    assert all(addresses(a) == {"10.0.0.5"}
               for a in everywhere(daemon, "printer.office.example."))
    assert "printer.office.example.\t300\tIN\tA\t10.0.0.5\n" in \
        ctl(daemon, "list_local_data").stdout
    assert "printer.office.example. transparent" in ctl(daemon, "list_local_zones").stdout
    ok(daemon, "local_zone", "blocked.example.net.", "refuse")
    assert "blocked.example.net. refuse" in ctl(daemon, "list_local_zones").stdout
    assert all(a.rcode() == dns.rcode.REFUSED
               for a in everywhere(daemon, "www.blocked.example.net."))
    ok(daemon, "local_zone_remove", "blocked.example.net.")
    assert "blocked.example.net." not in ctl(daemon, "list_local_zones").stdout
    assert all(a.rcode() != dns.rcode.REFUSED
               for a in everywhere(daemon, "www.blocked.example.net."))
    r = ctl(daemon, "-q", "local_data_remove", "printer.office.example.")
    assert r.returncode == 0 and r.stdout == ""                 # -q: no "ok"
    assert "printer.office.example." not in ctl(daemon, "list_local_data").stdout
    assert not any(addresses(a) for a in everywhere(daemon, "printer.office.example."))


# ---- options, logging ---------------------------------------------------------------------
def test_get_option_and_set_option_through_the_settings_table(daemon):
    assert ctl(daemon, "get_option", "do-ip4").stdout == "yes\n"
    assert ctl(daemon, "get_option", "do_ip4").stdout == "yes\n"
    assert ctl(daemon, "get_option", "tcp-idle-timeout").stdout.strip().replace(".0", "") \
        .isdigit()
    ok(daemon, "set_option", "prefetch:", "no")
    assert ctl(daemon, "get_option", "prefetch").stdout == "no\n"
    ok(daemon, "set_option", "serve-expired:", "no")             # Unbound's name for it
    assert ctl(daemon, "get_option", "serve-stale").stdout == "no\n"
    ok(daemon, "set_option", "serve_expired:", "yes")
    ok(daemon, "set_option", "prefetch:", "yes")
    assert ctl(daemon, "get_option", "prefetch").stdout == "yes\n"
    r = ctl(daemon, "set_option", "prefetch:no")                # one word: Unbound refuses it
    assert r.returncode == 1 and "could not find next argument after prefetch:no" in r.stdout
    assert ctl(daemon, "get_option", "prefetch").stdout == "yes\n"
    r = ctl(daemon, "set_option", "prefetch")
    assert r.returncode == 1 and "could not find next argument after prefetch" in r.stdout
    r = ctl(daemon, "set_option", "cache-size:", "100000000")
    assert r.returncode == 1 and "cache-size" in r.stdout and "restart" in r.stdout
    r = ctl(daemon, "set_option", "no-such-thing:", "1")
    assert r.returncode == 1 and "unknown option 'no-such-thing'" in r.stdout
    r = ctl(daemon, "set_option", "prefetch:", "maybe")
    assert r.returncode == 1 and "prefetch" in r.stdout
    # allow (Unbound's access-control) takes effect at once in every worker
    ok(daemon, "set_option", "allow:", '["10.0.0.0/8"]')
    assert all(a.rcode() == dns.rcode.REFUSED for a in everywhere(daemon, "www.example.net."))
    ok(daemon, "set_option", "allow:", '["127.0.0.0/8", "::1/128"]')
    assert all(a.rcode() == dns.rcode.NOERROR for a in everywhere(daemon, "www.example.net."))


def test_set_option_changes_the_ttl_clamps_at_once_until_reload(daemon):
    """cache-max-ttl (and Unbound's other TTL clamps) change with set_option, as Unbound
    changes them: answers cached from then on are held at most that long."""
    def ttls() -> set[int]:
        return {rr.ttl for r in everywhere(daemon, "www.example.net.") for rr in r.answer}
    removed(daemon, "flush_zone", ".")
    assert max(ttls()) > 5
    ok(daemon, "set_option", "cache-max-ttl:", "5")
    assert ctl(daemon, "get_option", "cache-max-ttl").stdout == "5\n"
    removed(daemon, "flush_zone", ".")
    assert max(ttls()) <= 5
    ok(daemon, "reload")
    assert ctl(daemon, "get_option", "cache-max-ttl").stdout == "86400\n"   # unset: the default
    removed(daemon, "flush_zone", ".")
    assert max(ttls()) > 5


def test_verbosity_sets_the_log_level_and_log_reopen_answers_ok(daemon):
    ok(daemon, "verbosity", "0")
    mark = len(daemon.log_text())
    ok(daemon, "local_data", "quiet.test.", "A", "10.0.0.9")      # logs its zones at INFO
    ok(daemon, "local_data_remove", "quiet.test.")
    assert "zones:" not in daemon.log_text()[mark:]
    ok(daemon, "verbosity", "1")
    ok(daemon, "local_data", "loud.test.", "A", "10.0.0.9")
    ok(daemon, "local_data_remove", "loud.test.")
    assert "zones:" in daemon.log_text()[mark:]
    ok(daemon, "log_reopen")


# ---- stats --------------------------------------------------------------------------------
def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def test_stats_shows_what_was_counted_since_the_last_stats_and_metrics_stay_monotonic(daemon):
    for _ in range(5):
        daemon.ask("www.example.net.")
    r = ctl(daemon, "stats", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["engine"]["client_queries"] >= 5
    total = _metric(daemon.metrics(), "corenet_resolver_queries_total")
    for _ in range(3):
        daemon.ask("www.example.net.")
    shown = json.loads(ctl(daemon, "stats_noreset", "--json").stdout)
    assert shown["engine"]["client_queries"] == 3
    assert json.loads(ctl(daemon, "stats", "--json").stdout)["engine"]["client_queries"] == 3
    assert json.loads(ctl(daemon, "stats", "--json").stdout)["engine"]["client_queries"] == 0
    after = _metric(daemon.metrics(), "corenet_resolver_queries_total")
    assert after >= total + 3                          # /metrics never went back
    r = ctl(daemon, "stats", "--prometheus")
    assert "corenet_resolver_cache_hits_total" in r.stdout


# ---- runtime changes last until reload ----------------------------------------------------
def test_runtime_changes_last_until_reload(lab, tmp_path, responder):
    conf = tmp_path / "resolver.toml"
    conf.write_text('local-data = ["fromfile.test. 300 A 10.0.0.1"]\n')
    d = start(tmp_path / "d", lab, "--config", str(conf))
    try:
        ok(d, "local_data", "runtime.test.", "A", "10.0.0.2")
        ok(d, "forward_add", "example.com.", f"127.0.0.1@{responder.port}")
        ok(d, "set_option", "prefetch:", "no")
        ok(d, "insecure_add", "example.org.")
        assert ctl(d, "get_option", "domain-insecure").stdout == "example.org.\n"
        assert all(addresses(a) == {"10.0.0.2"} for a in everywhere(d, "runtime.test."))
        assert all(addresses(a) == {"192.0.2.77"} for a in everywhere(d, "www.example.com."))
        r = ctl(d, "reload")
        assert r.returncode == 0 and r.stdout == "ok\n", r.stdout + r.stderr
        data = ctl(d, "list_local_data").stdout
        assert "fromfile.test.\t300\tIN\tA\t10.0.0.1\n" in data and "runtime" not in data
        assert ctl(d, "list_forwards").stdout.strip() == ""
        assert ctl(d, "get_option", "prefetch").stdout == "yes\n"
        assert ctl(d, "get_option", "domain-insecure").stdout.strip() == ""
        assert not any(addresses(a) for a in everywhere(d, "runtime.test."))
        assert all(addresses(a) == {"10.0.0.1"} for a in everywhere(d, "fromfile.test."))
        assert all(addresses(a) == {"192.0.2.1", "192.0.2.11"}
                   for a in everywhere(d, "www.example.com."))
        # the socket from the config file, as unbound-control -c finds it
        conf.write_text(conf.read_text() + f'control = "{tmp_path / "c.sock"}"\n')
        r = cli("-c", str(conf), "status")
        assert r.returncode == 1 and "c.sock" in r.stderr      # not there until a restart
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


@pytest.mark.parametrize("workers", [1, 2])
def test_the_control_socket_is_found_from_the_config_file_and_stop_stops(lab, tmp_path,
                                                                          workers):
    sock = tmp_path / "ctl.sock"
    conf = tmp_path / "resolver.toml"
    conf.write_text(f'control = "{sock}"\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--workers", str(workers),
               control=False)
    d.start(ready="ready: 2 workers" if workers == 2 else "ready")
    try:
        r = cli("-c", str(conf), "status")
        assert r.returncode == 0 and f"threads: {workers}\n" in r.stdout, r.stdout + r.stderr
        d.ask("www.example.net.")
        r = cli("-c", str(conf), "dump_cache")
        assert r.returncode == 0 and "\nmsg www.example.net. A IN " in r.stdout, r.stdout
        d.ask("www.example.net.")
        assert json.loads(cli("-c", str(conf), "stats", "--json").stdout)["engine"][
            "client_queries"] == 2
        assert json.loads(cli("-c", str(conf), "stats_noreset", "--json").stdout)["engine"][
            "client_queries"] == 0
        r = cli("status", "-c", str(conf))                 # the option after the command too
        assert r.returncode == 0
        r = cli("-c", str(conf), "stop")
        assert r.returncode == 0 and r.stdout == "ok\n"
        assert d.proc.wait(20) == 0
        assert not sock.exists()
    finally:
        d.stop()


# ---- dump_cache and load_cache, with each entry's DNSSEC status ----------------------------
def test_dump_and_load_cache_round_trip_answers_and_ad_bits(signed_lab, tmp_path):
    lab, anchor = signed_lab
    d = start(tmp_path / "d", lab, "--trust-anchor", str(anchor))
    questions = [("www.example.com.", "A", True), ("nope.example.com.", "A", True),
                 ("www.insecure.com.", "A", False), ("nope.unsigned.org.", "A", False),
                 ("www.example.com.", "TXT", True)]

    def ask_all() -> dict:
        seen = {}
        for name, rdtype, _ in questions:
            for _ in range(ASKS):
                r = d.ask(flagged_query(name, rdtype, do=True))
                got = (r.rcode(), bool(r.flags & dns.flags.AD),      # TTLs aside
                       sorted((rr.name.to_text(), rr.rdtype, sorted(x.to_text() for x in rr))
                              for rr in r.answer))
                assert seen.setdefault((name, rdtype), got) == got      # every worker alike
        return seen

    try:
        first = ask_all()
        for name, rdtype, secure in questions:
            assert first[(name, rdtype)][1] is secure, (name, rdtype, first)
        assert first[("nope.example.com.", "A")][0] == dns.rcode.NXDOMAIN
        assert first[("nope.unsigned.org.", "A")][0] == dns.rcode.NXDOMAIN
        r = ctl(d, "dump_cache")
        assert r.returncode == 0, r.stdout
        dump = r.stdout
        lines = [line for line in dump.splitlines() if line.startswith("msg ")]
        # the union: each question's DO variant once, though both workers hold it
        assert len([x for x in lines if x.split()[1:3] == ["www.example.com.", "A"]]) == 1
        status = {tuple(x.split()[1:3]): x.split()[6] for x in lines}
        assert status[("www.example.com.", "A")] == "secure"
        assert status[("www.insecure.com.", "A")] == "insecure"
        assert status[("nope.example.com.", "A")] == "secure"
        assert status[("nope.unsigned.org.", "A")] == "insecure"
        removed(d, "flush_zone", ".")
        assert ctl(d, "dump_cache").stdout.count("\nmsg ") == 0
        r = ctl(d, "load_cache", input=dump)
        assert r.returncode == 0 and r.stdout == "ok\n", r.stdout + r.stderr
        before = upstream(d)
        assert ask_all() == first
        assert upstream(d) == before          # every answer came from the loaded caches
        # a status edited by hand is what the entry gets: AD follows it
        removed(d, "flush_zone", ".")
        edited = "\n".join(x.replace(" secure ", " insecure ")
                           if x.split()[1:3] == ["www.example.com.", "A"] else x
                           for x in dump.splitlines())
        ok_r = ctl(d, "load_cache", input=edited)
        assert ok_r.returncode == 0, ok_r.stdout
        r = d.ask(flagged_query("www.example.com.", "A", do=True))
        assert not r.flags & dns.flags.AD and r.answer
        # a bad line: an error naming it, nothing loaded
        removed(d, "flush_zone", ".")
        bad = dump.replace("msg ", "msg www.bad. ", 1)
        r = ctl(d, "load_cache", input=bad)
        first = next(i for i, x in enumerate(dump.splitlines(), 1) if x.startswith("msg "))
        assert r.returncode == 1 and f"line {first}:" in r.stdout, r.stdout
        assert ctl(d, "dump_cache").stdout.count("\nmsg ") == 0
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_flush_bogus_and_insecure_add_on_a_bogus_zone(signed_lab, tmp_path):
    lab, anchor = signed_lab
    d = start(tmp_path / "d", lab, "--trust-anchor", str(anchor))
    try:
        assert all(a.rcode() == dns.rcode.SERVFAIL for a in everywhere(d, "www.badds.com."))
        before = upstream(d)
        everywhere(d, "www.badds.com.")
        assert upstream(d) == before                  # the bogus verdict is remembered
        counts = removed(d, "flush_bogus")
        assert sum(counts) >= 2, counts               # each worker's verdict at least
        assert all(a.rcode() == dns.rcode.SERVFAIL for a in everywhere(d, "www.badds.com."))
        assert upstream(d) >= before + 2              # fetched and validated again
        ok(d, "insecure_add", "badds.com.")
        answers = [d.ask(flagged_query("www.badds.com.", do=True)) for _ in range(ASKS)]
        assert all(a.rcode() == dns.rcode.NOERROR and a.answer
                   and not a.flags & dns.flags.AD for a in answers)
        ok(d, "insecure_remove", "badds.com.")
        assert all(a.rcode() == dns.rcode.SERVFAIL for a in everywhere(d, "www.badds.com."))
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


# ---- the TCP control listener with mutual TLS ---------------------------------------------
@pytest.mark.parametrize("workers", [1, 2])
def test_tcp_control_with_mutual_tls_refuses_a_client_the_server_did_not_sign(lab, tmp_path,
                                                                             workers):
    ca = CA(tmp_path / "server", "server")           # as unbound-control-setup makes it
    server_pem, server_key = ca.self_signed()
    client_pem, client_key = ca.issue("control", purpose="client")
    rogue_pem, rogue_key = CA(tmp_path / "other", "other").issue("rogue", purpose="client")
    port = free_port()

    def config(path, pem, key) -> None:
        path.write_text(f'control-enable = true\ncontrol-interface = ["127.0.0.1"]\n'
                        f'control-port = {port}\nserver-cert-file = "{server_pem}"\n'
                        f'server-key-file = "{server_key}"\ncontrol-cert-file = "{pem}"\n'
                        f'control-key-file = "{key}"\n')

    conf = tmp_path / "resolver.toml"
    config(conf, client_pem, client_key)
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--workers", str(workers))
    d.start(ready="ready: 2 workers" if workers == 2 else "ready")
    try:
        r = cli("-c", str(conf), "status")
        assert r.returncode == 0 and f"threads: {workers}\n" in r.stdout, r.stdout + r.stderr
        r = cli("-c", str(conf), "local_data", "tls.test.", "A", "10.0.0.7")
        assert r.returncode == 0 and r.stdout == "ok\n"
        assert all(addresses(a) == {"10.0.0.7"} for a in everywhere(d, "tls.test."))
        r = cli("-c", str(conf), "-s", f"127.0.0.1@{port}", "get_option", "control-port")
        assert r.returncode == 0 and r.stdout == f"{port}\n", r.stdout + r.stderr
        rogue = tmp_path / "rogue.toml"
        config(rogue, rogue_pem, rogue_key)
        r = cli("-c", str(rogue), "status")
        assert r.returncode == 1 and "control interface" in r.stderr, r.stdout + r.stderr
        # no certificate at all: the handshake fails, nothing is answered
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(str(server_pem))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
                with ctx.wrap_socket(raw) as s:
                    s.sendall(b'{"cmd": "status"}\n')
                    if not s.recv(4096):
                        raise ConnectionError("closed without an answer")
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
