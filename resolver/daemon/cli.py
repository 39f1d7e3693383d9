"""``corenet-resolver``: serve, checkconf, query, stats, status, flush, reload.

    corenet-resolver serve [--config FILE] [--listen ADDR:PORT ...] [--allow CIDR ...] ...
    corenet-resolver checkconf FILE
    corenet-resolver query NAME [TYPE] [@SERVER] [-p PORT] [+tcp] [+short]
    corenet-resolver stats|status|flush [NAME]|reload [--control PATH]

A bad option or config value is a one-line error naming it and exit status 2, before
anything binds.
"""
from __future__ import annotations

import argparse
import asyncio
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
    q = sub.add_parser("query", help="resolve a name (in-process, or ask @SERVER), as dig",
                       usage=f"{PROG} query NAME [TYPE] [@SERVER[#PORT]] [-t TYPE] [-x ADDR] "
                             "[-p PORT] [+tcp] [+short] [+dnssec]")
    q.add_argument("args", nargs="*", metavar="NAME [TYPE] [@SERVER[#PORT]] [+tcp] [+short] [+dnssec]")
    q.add_argument("-t", dest="type", metavar="TYPE", help="query type (as dig -t)")
    q.add_argument("-x", dest="reverse", metavar="ADDR",
                   help="reverse look-up: the PTR of an IPv4 or IPv6 address")
    q.add_argument("-p", "--port", type=int, default=None, help="port of @SERVER (53)")
    q.add_argument("--root-hints", metavar="FILE", help="for in-process resolution")
    q.add_argument("--upstream-port", type=int, default=53, metavar="PORT",
                   help="authorities' port, for in-process resolution")
    q.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS")
    q.add_argument("--do-ip6", "--ipv6", dest="ipv6", action=argparse.BooleanOptionalAction,
                   default=True,
                   help="in-process resolution asks authorities over IPv6 as well (default: on)")
    _authority_flags(q, True)
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


# ---- query ------------------------------------------------------------------------------------
def _dig_text(msg, elapsed: float | None, server: str) -> str:
    import dns.edns
    import dns.flags
    import dns.opcode
    import dns.rcode

    flags = dns.flags.to_text(msg.flags).lower()
    lines = [f";; ->>HEADER<<- opcode: {dns.opcode.to_text(msg.opcode())}, "
             f"status: {dns.rcode.to_text(msg.rcode())}, id: {msg.id}",
             f";; flags: {flags}; QUERY: {len(msg.question)}, ANSWER: "
             f"{sum(len(r) for r in msg.answer)}, AUTHORITY: "
             f"{sum(len(r) for r in msg.authority)}, ADDITIONAL: "
             f"{sum(len(r) for r in msg.additional) + (1 if msg.edns >= 0 else 0)}", ""]
    if msg.edns >= 0:
        lines += [";; OPT PSEUDOSECTION:",
                  f"; EDNS: version: {msg.edns}, flags:"
                  f"{' do' if msg.ednsflags & dns.flags.DO else ''}; udp: {msg.payload}"]
        for opt in msg.options:               # Extended DNS Errors, as dig shows them
            if isinstance(opt, dns.edns.EDEOption):
                code = opt.code
                label = code.name.replace("_", " ").title() if hasattr(code, "name") else ""
                lines.append(f"; EDE: {int(code)}{f' ({label})' if label else ''}"
                             f"{f': ({opt.text})' if opt.text else ''}")
        lines.append("")
    lines.append(";; QUESTION SECTION:")
    lines += [";" + q.to_text() for q in msg.question]
    for title, section in (("ANSWER", msg.answer), ("AUTHORITY", msg.authority),
                           ("ADDITIONAL", msg.additional)):
        if section:
            lines += ["", f";; {title} SECTION:"]
            lines += [rr.to_text() for rr in section]
    lines.append("")
    if elapsed is not None:
        lines.append(f";; Query time: {elapsed * 1000:.0f} msec")
    lines.append(f";; SERVER: {server}")
    return "\n".join(lines)


#: dig's exit statuses: 0 for any DNS answer (whatever its rcode), 1 for a usage error, 9 when
#: no server answered, 10 for an internal error.
EXIT_NO_ANSWER, EXIT_INTERNAL = 9, 10


def cmd_query(ns: argparse.Namespace) -> int:
    import socket
    import time

    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rdatatype
    import dns.reversename

    name, rdtype, server, port = None, ns.type, None, ns.port
    tcp = short = dnssec = False
    for a in ns.args:
        if a.startswith("@"):
            server, _, at_port = a[1:].partition("#")
            if at_port:
                try:
                    port = int(at_port)
                except ValueError:
                    return _fail(f"query: bad port in {a!r}", 1)
        elif a.startswith("+"):
            opt = a[1:]
            if opt in ("tcp", "vc"):
                tcp = True
            elif opt == "short":
                short = True
            elif opt == "dnssec":
                dnssec = True
            elif opt in ("notcp", "novc", "noshort", "nodnssec"):
                pass
            else:
                return _fail(f"query: unknown option {a!r}", 1)
        elif name is None:
            name = a
        elif rdtype is None:
            rdtype = a
        else:
            return _fail(f"query: unexpected argument {a!r}", 1)
    if ns.reverse is not None:
        try:
            name = dns.reversename.from_address(ns.reverse).to_text()
        except (ValueError, dns.exception.SyntaxError):
            return _fail(f"query: -x needs an IPv4 or IPv6 address, got {ns.reverse!r}", 1)
        rdtype = rdtype or "PTR"
    if name is None:
        return _fail("query: NAME is missing", 1)
    try:
        rdtype_v = dns.rdatatype.from_text(rdtype or "A")
        q = dns.message.make_query(name, rdtype_v, use_edns=0, payload=1232,
                                   want_dnssec=dnssec)
    except Exception as e:
        return _fail(f"query: {e}", 1)
    if server is not None:
        try:                      # dig looks a server name up with the host's resolver too
            server = socket.getaddrinfo(server, None, type=socket.SOCK_DGRAM)[0][4][0]
        except OSError as e:
            return _fail(f"query: cannot find server {server!r}: {e}", EXIT_NO_ANSWER)
    elif ns.root_hints is None:
        print(";; resolving in this process from the real root servers (no --root-hints)",
              file=sys.stderr)
    t0 = time.monotonic()
    try:
        if server is not None:
            port = 53 if port is None else port
            if tcp:
                r = dns.query.tcp(q, server, port=port, timeout=ns.timeout)
            else:
                r = dns.query.udp(q, server, port=port, timeout=ns.timeout,
                                  raise_on_truncation=False)
                if r.flags & dns.flags.TC:
                    r = dns.query.tcp(q, server, port=port, timeout=ns.timeout)
            where = f"{server}#{port}({'TCP' if tcp else 'UDP'})"
        else:
            r = _resolve_in_process(q, ns)
            where = "in-process resolution from the root"
    except (dns.exception.Timeout, asyncio.TimeoutError):
        print(";; connection timed out; no servers could be reached", file=sys.stderr)
        return EXIT_NO_ANSWER
    except OSError as e:
        return _fail(f"query: {e}", EXIT_NO_ANSWER)
    except ValueError as e:
        return _fail(f"query: {e}", EXIT_INTERNAL)
    elapsed = time.monotonic() - t0
    if short:
        for rrset in r.answer:
            for rd in rrset:
                print(rd.to_text())
    else:
        print(_dig_text(r, elapsed, where))
    return 0


def _resolve_in_process(q, ns):
    from resolver import Resolver
    from resolver.daemon.process import new_loop

    async def go():
        r = Resolver(ns.root_hints, port=ns.upstream_port, ipv6=ns.ipv6,
                     qname_minimisation=ns.qname_minimisation, do_ip4=ns.do_ip4,
                     do_not_query_localhost=ns.do_not_query_localhost)
        try:
            return await asyncio.wait_for(r.resolve_message(q), ns.timeout)
        finally:
            await r.close()

    loop = new_loop()
    try:
        return loop.run_until_complete(go())
    finally:
        loop.close()


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
    extra: list[str] = []
    if argv and argv[0] == "query":
        # dig style: NAME, TYPE, @SERVER and +options may come anywhere, around -p PORT.
        extra = [a for a in argv[1:] if a[:1] in ("@", "+")]
        argv = [argv[0]] + [a for a in argv[1:] if a[:1] not in ("@", "+")]
    ns = parser().parse_args(argv)
    if ns.command == "query":
        ns.args = ns.args + extra
    if ns.command == "serve":
        return cmd_serve(ns)
    if ns.command == "query":
        return cmd_query(ns)
    if ns.command == "checkconf":
        return cmd_checkconf(ns)
    return cmd_control(ns)


if __name__ == "__main__":
    sys.exit(main())
