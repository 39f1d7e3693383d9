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
    from resolver.daemon.settings import add_flags

    p = sub.add_parser("serve", help="run the resolver daemon in the foreground")
    p.add_argument("--config", metavar="FILE", help="TOML config file (the command line wins)")
    add_flags(p)


def _authority_flags(p, default) -> None:
    """The switches of server selection and QNAME minimisation for ``query``, which
    resolves with their defaults (``serve`` has them from the settings table)."""
    p.add_argument("--qname-minimisation", action=argparse.BooleanOptionalAction,
                   default=default, help="RFC 9156, relaxed (default: on)")
    p.add_argument("--do-ip4", action=argparse.BooleanOptionalAction, default=default,
                   help="ask authorities over IPv4 (default: on)")
    p.add_argument("--do-not-query-localhost", action=argparse.BooleanOptionalAction,
                   default=default,
                   help="never query loopback authority addresses (default: on; a lab on "
                        "loopback needs --no-do-not-query-localhost)")


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
    from resolver.daemon import config, settings
    from resolver.daemon import process as daemon

    overrides = settings.overrides(ns)
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
        *(_auto_anchor_text(a) for a in st.get("auto_trust_anchors", ())),
    ])


def _auto_anchor_text(a: dict) -> str:
    """One RFC 5011 trust point: its keys by tag and state, its last and next probe."""
    import time

    def when(t: int) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else "never"

    keys = ", ".join(f"{tag} {state}" for tag, state in sorted(a["keys"].items())) or "none"
    return (f"auto trust anchor {a['zone']} ({a['file']}): "
            + ("every key revoked, not validated" if a["revoked"] else f"keys {keys}")
            + f"; last success {when(a['last_success'])}; next probe {when(a['next_probe'])}"
            + (f"; {a['query_failed']} failed probes" if a["query_failed"] else ""))


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
