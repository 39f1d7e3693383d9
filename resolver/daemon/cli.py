"""``corenet-resolver``: serve, checkconf, query, stats, status, flush, reload.

    corenet-resolver serve [--config FILE] [--listen ADDR:PORT ...] [--allow CIDR ...] ...
    corenet-resolver checkconf FILE
    corenet-resolver query [@SERVER] [NAME] [TYPE] [+OPTION ...]   (as dig: see dig.py)
    corenet-resolver stats|status|flush [NAME]|reload [--control PATH]

A bad option or config value is a one-line error naming it and exit status 2, before
anything binds.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from resolver.daemon.config import ConfigError

PROG = "corenet-resolver"


def _serve_parser(sub) -> None:
    p = sub.add_parser("serve", help="run the resolver daemon in the foreground")
    p.add_argument("--config", metavar="FILE", help="TOML config file (the command line wins)")
    p.add_argument("--listen", metavar="ADDR:PORT", action="append",
                   help="address to serve on, UDP and TCP (repeatable; default 127.0.0.1:53 "
                        "and [::1]:53)")
    p.add_argument("--root-hints", metavar="FILE", help="root hints file (default: the real root)")
    p.add_argument("--allow", metavar="CIDR", action="append",
                   help="clients allowed (repeatable; default loopback only)")
    p.add_argument("--workers", metavar="N", help="worker processes (SO_REUSEPORT), default 1")
    p.add_argument("--metrics", metavar="ADDR:PORT", help="serve Prometheus metrics over HTTP")
    p.add_argument("--control", metavar="PATH", help="Unix control socket (stats/flush/reload)")
    p.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR")
    p.add_argument("--upstream-port", metavar="PORT",
                   help="port of every authority (53; a test lab may use another)")
    p.add_argument("--cache-size", metavar="BYTES", help="cache bound in bytes")
    p.add_argument("--trust-anchor", metavar="FILE", help="DNSSEC trust anchor (DS or DNSKEY)")
    p.add_argument("--no-validate", action="store_true", help="turn DNSSEC validation off")
    p.add_argument("--do-ip6", "--ipv6", dest="ipv6", action=argparse.BooleanOptionalAction,
                   default=None, help="ask authorities over IPv6 as well (default: on)")
    _authority_flags(p, None)
    p.add_argument("--tcp-idle-timeout", metavar="SECONDS")
    p.add_argument("--tcp-max-connections", metavar="N")
    p.add_argument("--tcp-max-inflight", metavar="N", help="queries in flight per connection")
    p.add_argument("--tcp-max-connections-per-client", metavar="N",
                   help="TCP connections one client address may hold (default 64)")
    p.add_argument("--user", metavar="NAME",
                   help="run as this user once the sockets are bound (when started as root)")
    p.add_argument("--allow-snoop", metavar="CIDR", action="append",
                   help="clients that may also ask with RD clear (answered from the cache)")
    p.add_argument("--ip-ratelimit", metavar="N",
                   help="cache misses one client may start per second (0: no limit; 1000)")
    p.add_argument("--max-udp-size", metavar="BYTES",
                   help="largest UDP answer, whatever the client asks (default 1232)")
    p.add_argument("--pidfile", metavar="FILE",
                   help="write the daemon's process id there once it serves")
    p.add_argument("--log-queries", action=argparse.BooleanOptionalAction, default=None,
                   help="log one line per answered query (default: off)")
    p.add_argument("--cache-min-ttl", metavar="SECONDS",
                   help="lower TTLs are raised to this in the cache (default 0)")
    p.add_argument("--cache-max-ttl", metavar="SECONDS",
                   help="higher TTLs are lowered to this in the cache (default 86400)")
    p.add_argument("--cache-max-negative-ttl", metavar="SECONDS",
                   help="longest time a negative answer is cached (default 3600)")
    p.add_argument("--harden-glue", action=argparse.BooleanOptionalAction, default=None,
                   help="use glue only from inside the referring zone (default: on)")
    p.add_argument("--domain-insecure", metavar="DOMAIN", action="append",
                   help="negative trust anchor: treat this domain as unsigned (repeatable)")


def _authority_flags(p, default) -> None:
    """The switches of server selection and QNAME minimisation (``serve`` leaves them unset
    so that the config file decides; ``query`` resolves with their defaults)."""
    p.add_argument("--qname-minimisation", action=argparse.BooleanOptionalAction,
                   default=default, help="RFC 9156, relaxed (default: on)")
    p.add_argument("--do-ip4", action=argparse.BooleanOptionalAction, default=default,
                   help="ask authorities over IPv4 (default: on)")
    p.add_argument("--do-not-query-localhost", action=argparse.BooleanOptionalAction,
                   default=default,
                   help="never query loopback authority addresses (default: on; a lab on "
                        "loopback needs --no-do-not-query-localhost)")
    if default is None:
        p.add_argument("--infra-host-ttl", metavar="SECONDS",
                       help="how long a lame or no-EDNS mark on a server lasts (900)")


def _control_parser(sub, name: str, help_: str):
    from resolver.daemon.service import SYSTEM_CONTROL

    p = sub.add_parser(name, help=help_)
    p.add_argument("--control", metavar="PATH", default=None,
                   help=f"the daemon's control socket (default {SYSTEM_CONTROL}, or the "
                        "non-root daemon's, or $CORENET_RESOLVER_CONTROL)")
    return p


def parser() -> argparse.ArgumentParser:
    from corenet import __version__

    ap = argparse.ArgumentParser(prog=PROG, description="A recursive, caching DNS resolver.")
    ap.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    c = sub.add_parser("checkconf", help="check a config file without starting (exit 0 or 2)")
    c.add_argument("file", metavar="FILE")
    from resolver.daemon import dig
    dig.add_parser(sub, _authority_flags)
    p = _control_parser(sub, "stats", "print a running daemon's figures")
    p.add_argument("--json", action="store_true", help="as JSON")
    p = _control_parser(sub, "flush", "forget the cache (or one name, in the shared cache "
                                       "too) of a running daemon")
    p.add_argument("name", nargs="?")
    _control_parser(sub, "reload", "make a running daemon reread its config (cache kept)")
    p = _control_parser(sub, "status", "a running daemon's version, uptime, workers, cache")
    p.add_argument("--json", action="store_true", help="as JSON")
    return ap


def _fail(msg: str, code: int = 2) -> int:
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    return code


def cmd_serve(ns: argparse.Namespace) -> int:
    from resolver.daemon import config
    from resolver.daemon import process as daemon

    overrides: dict[str, Any] = {
        "listen": ns.listen, "root_hints": ns.root_hints, "allow": ns.allow,
        "workers": ns.workers, "metrics": ns.metrics, "control": ns.control,
        "log_level": ns.log_level, "upstream_port": ns.upstream_port,
        "cache_size": ns.cache_size, "trust_anchor": ns.trust_anchor,
        "validate": False if ns.no_validate else None,
        "ipv6": ns.ipv6,
        "qname_minimisation": ns.qname_minimisation, "do_ip4": ns.do_ip4,
        "do_not_query_localhost": ns.do_not_query_localhost,
        "infra_host_ttl": ns.infra_host_ttl,
        "tcp_idle_timeout": ns.tcp_idle_timeout,
        "tcp_max_connections": ns.tcp_max_connections,
        "tcp_max_inflight": ns.tcp_max_inflight,
        "tcp_max_connections_per_client": ns.tcp_max_connections_per_client,
        "max_udp_size": ns.max_udp_size, "allow_snoop": ns.allow_snoop, "user": ns.user,
        "ip_ratelimit": ns.ip_ratelimit,
        "pidfile": ns.pidfile, "log_queries": ns.log_queries,
        "cache_min_ttl": ns.cache_min_ttl, "cache_max_ttl": ns.cache_max_ttl,
        "cache_max_negative_ttl": ns.cache_max_negative_ttl,
        "harden_glue": ns.harden_glue, "domain_insecure": ns.domain_insecure,
    }
    try:
        cfg = config.build(ns.config, overrides)
        return daemon.run(cfg, overrides)
    except ConfigError as e:
        return _fail(str(e))


def cmd_checkconf(ns: argparse.Namespace) -> int:
    """Everything ``serve`` checks before it binds (values, files, root hints, trust
    anchor), without binding or starting anything."""
    from resolver.daemon import config
    from resolver.daemon.server import make_resolver

    try:
        cfg = config.build(ns.file)
        try:
            make_resolver(cfg)
        except (ValueError, OSError, TypeError) as e:
            raise ConfigError(f"{ns.file}: root hints or trust anchor: {e}") from None
    except ConfigError as e:
        return _fail(str(e))
    print(f"{ns.file}: ok")
    return 0


# ---- control ----------------------------------------------------------------------------------
def _print_stats(stats: dict) -> None:
    from resolver.daemon.metrics import render

    print(render(stats), end="")


def cmd_control(ns: argparse.Namespace) -> int:
    from resolver.daemon.control import ControlError, request

    from resolver.daemon.service import find_control

    req: dict[str, Any] = {"cmd": ns.command}
    if ns.command == "flush" and ns.name:
        req["name"] = ns.name
    try:
        answer = request(ns.control or find_control(), req)
    except ControlError as e:
        return _fail(str(e), 1)
    if ns.command == "status":
        if ns.json:
            print(json.dumps(answer["status"], indent=1, sort_keys=True))
        else:
            print(_status_text(answer["status"]))
    elif ns.command == "stats":
        if ns.json:
            print(json.dumps(answer["stats"], indent=1, sort_keys=True))
        else:
            _print_stats(answer["stats"])
    elif ns.command == "flush":
        print(f"flushed {answer.get('flushed', ns.name or 'everything')}")
        if "shared_deleted" in answer:
            if answer["shared_deleted"] is None:
                return _fail("the shared cache could not be reached: the name's entries "
                             "there stay until they expire", 1)
            print(f"deleted {answer['shared_deleted']} entries from the shared cache")
    else:
        restart = answer.get("restart_needed")
        print("reloaded" + (f" ({', '.join(restart)} need a restart)" if restart else ""))
    return 0


def _status_text(st: dict) -> str:
    up = int(st["uptime"])
    fill = st["cache_bytes"] / st["cache_size"] if st["cache_size"] else 0.0
    where = ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in st["listen"])
    return "\n".join([
        f"version: {PROG} {st['version']}",
        f"pid: {st['pid']}",
        f"uptime: {up // 86400}d {up % 86400 // 3600:02d}:{up % 3600 // 60:02d}:{up % 60:02d}",
        f"workers: {st['workers']}",
        f"listening: {where or '(none)'}",
        f"dnssec validation: {'on' if st['dnssec'] else 'off'}",
        f"cache: {st['cache_bytes']} of {st['cache_size']} bytes ({fill:.1%})",
        f"queries in flight: {st['inflight']}",
        f"query log: {'on' if st['log_queries'] else 'off'}",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "query" and not {"-h", "--help"} & set(argv[1:]):
        from resolver.daemon import dig       # dig's grammar, not argparse's
        return dig.main(argv[1:])
    ns = parser().parse_args(argv)
    if ns.command == "serve":
        return cmd_serve(ns)
    if ns.command == "checkconf":
        return cmd_checkconf(ns)
    return cmd_control(ns)


if __name__ == "__main__":
    sys.exit(main())
