"""The switches of server selection and QNAME minimisation, alike in the config file, on the
command line, at reload and in the library: ``qname-minimisation``, ``do-ip4``, ``do-ip6``
(``ipv6`` by its other name), ``do-not-query-localhost`` and ``infra-host-ttl``."""
from __future__ import annotations

import pytest

import resolver
from resolver.daemon import cli as cli_mod
from resolver.daemon import config
from resolver.daemon.server import Server, make_resolver

KEYS = ("qname_minimisation", "do_ip4", "do_ip6", "do_not_query_localhost", "infra_host_ttl")


def _overrides(*args: str) -> dict:
    ns = cli_mod.parser().parse_args(["serve", *args])
    return {"ipv6": ns.ipv6, "qname_minimisation": ns.qname_minimisation,
            "do_ip4": ns.do_ip4, "do_not_query_localhost": ns.do_not_query_localhost,
            "infra_host_ttl": ns.infra_host_ttl}


def _resolver_view(r) -> dict:
    return {"qname_minimisation": r.minimise, "do_ip4": r.do_ip4, "do_ip6": r.ipv6,
            "do_not_query_localhost": r.no_localhost,
            "infra_host_ttl": r.cache.infra.host_ttl}


def test_defaults_match_unbound_s():
    cfg = config.build(None, _overrides())
    want = {"qname_minimisation": True, "do_ip4": True, "do_ip6": True,
            "do_not_query_localhost": True, "infra_host_ttl": 900.0}
    assert {k: getattr(cfg, k) for k in KEYS} == want
    r = make_resolver(cfg)
    assert _resolver_view(r) == want
    # the library: the loopback refusal and IPv4 are on unless turned off
    lib = resolver.Resolver([("a.root.", "192.0.2.1")])
    assert lib.no_localhost and lib.do_ip4 and lib.minimise
    it = lib.new_iterator(b"\x00", 2, 1)
    assert it.no_localhost and it.ip4 and it.minimise


def test_from_the_file(tmp_path):
    path = tmp_path / "resolver.toml"
    path.write_text("qname-minimisation = false\ndo-ip4 = false\nipv6 = true\n"
                    "do_not_query_localhost = false\ninfra-host-ttl = 60\n")
    cfg = config.build(str(path), _overrides())
    want = {"qname_minimisation": False, "do_ip4": False, "do_ip6": True,
            "do_not_query_localhost": False, "infra_host_ttl": 60.0}
    assert {k: getattr(cfg, k) for k in KEYS} == want
    r = make_resolver(cfg)
    assert _resolver_view(r) == want
    it = r.new_iterator(b"\x00", 2, 1)
    assert (it.minimise, it.ip4, it.ipv6, it.no_localhost) == (False, False, True, False)


def test_the_command_line_wins_over_the_file(tmp_path):
    path = tmp_path / "resolver.toml"
    path.write_text("do-ip6 = true\nqname-minimisation = true\ninfra-host-ttl = 60\n")
    cfg = config.build(str(path), _overrides(
        "--no-qname-minimisation", "--no-do-ip4", "--no-do-ip6",
        "--no-do-not-query-localhost", "--infra-host-ttl", "5"))
    assert {k: getattr(cfg, k) for k in KEYS} == {
        "qname_minimisation": False, "do_ip4": False, "do_ip6": False,
        "do_not_query_localhost": False, "infra_host_ttl": 5.0}
    assert config.build(None, _overrides("--ipv6")).do_ip6 is True      # the old flag


@pytest.mark.parametrize("text, names", [
    ('qname-minimisation = "no"\n', "qname-minimisation"),
    ("do-ip4 = 0\n", "do-ip4"),
    ('do-not-query-localhost = "off"\n', "do-not-query-localhost"),
    ("infra-host-ttl = -1\n", "infra-host-ttl"),
    ('infra-host-ttl = "soon"\n', "infra-host-ttl"),
    ('ipv6 = "yes"\n', "ipv6"),
])
def test_bad_values_are_errors_naming_the_key(tmp_path, text, names):
    path = tmp_path / "resolver.toml"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=names):
        config.build(str(path))


def test_they_change_at_reload(loop):
    server = Server(config.build())
    r = server.resolver
    assert server.apply(config.build(None, _overrides(
        "--no-qname-minimisation", "--no-do-ip4", "--no-do-not-query-localhost",
        "--infra-host-ttl", "30"))) == []
    assert _resolver_view(r) == {"qname_minimisation": False, "do_ip4": False, "do_ip6": True,
                                 "do_not_query_localhost": False, "infra_host_ttl": 30.0}
    it = r.new_iterator(b"\x00", 2, 1)
    assert (it.minimise, it.ip4, it.no_localhost) == (False, False, False)
    loop.run_until_complete(r.close())


def test_the_query_command_takes_them():
    p = cli_mod.parser()
    ns = p.parse_args(["query", "example.org"])
    assert (ns.qname_minimisation, ns.do_ip4, ns.do_not_query_localhost) == (True, True, True)
    ns = p.parse_args(["query", "example.org", "--no-do-not-query-localhost",
                       "--no-qname-minimisation", "--no-do-ip4"])
    assert (ns.qname_minimisation, ns.do_ip4, ns.do_not_query_localhost) == (False, False, False)


@pytest.mark.parametrize("outgoing, do_ip6, want", [
    ('["127.0.0.9"]', True, ("127.0.0.9", True, False)),            # IPv6 servers go unused
    ('["::1"]', True, ("::1", False, True)),                        # IPv4 ones
    ('["127.0.0.9", "::1"]', True, (("127.0.0.9", "::1"), True, True)),
    ('["127.0.0.9", "::1"]', False, (("127.0.0.9", "::1"), True, False)),
    ("[]", True, (None, True, True)),
])
def test_outgoing_interface_binds_and_leaves_a_family_without_one_unused(
        tmp_path, loop, outgoing, do_ip6, want):
    path = tmp_path / "resolver.toml"
    path.write_text(f"outgoing-interface = {outgoing}\ndo-ip6 = {str(do_ip6).lower()}\n")
    cfg = config.build(str(path))
    r = make_resolver(cfg)
    assert (r.source, r.do_ip4, r.ipv6) == want
    # and at reload, as Unbound's reload does: back to the kernel's choice and both families
    server = Server(cfg)
    assert server.apply(config.build(None, _overrides())) == []
    assert (server.resolver.source, server.resolver.do_ip4, server.resolver.ipv6) == \
        (None, True, True)
    loop.run_until_complete(server.resolver.close())
    loop.run_until_complete(r.close())


@pytest.mark.parametrize("value", ['["localhost"]', '["10.0.0.0/8"]', '"127.0.0.1:53"'])
def test_outgoing_interface_takes_addresses_only(tmp_path, value):
    path = tmp_path / "resolver.toml"
    path.write_text(f"outgoing-interface = {value}\n")
    with pytest.raises(config.ConfigError, match="outgoing-interface"):
        config.build(str(path))


def test_an_outgoing_interface_the_host_lacks_is_warned_of(tmp_path, loop, caplog):
    path = tmp_path / "resolver.toml"
    path.write_text('outgoing-interface = ["127.0.0.9", "192.0.2.253"]\n')
    with caplog.at_level("WARNING", logger="resolver.daemon.server"):
        r = make_resolver(config.build(str(path)))
    warned = [rec.getMessage() for rec in caplog.records if "outgoing-interface" in
              rec.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("outgoing-interface 192.0.2.253: cannot "
                                                     "send from it")
    assert r.source == ("127.0.0.9", "192.0.2.253")       # as Unbound: it starts all the same
    loop.run_until_complete(r.close())
