"""``corenet-resolver``: serve, checkconf, query, and the control commands of unbound-control.

    corenet-resolver serve [--config FILE] [--listen ADDR:PORT ...] [--allow CIDR ...] ...
    corenet-resolver checkconf FILE                 (a TOML file, or an unbound.conf)
    corenet-resolver import-unbound UNBOUND_CONF [-o FILE]   (resolver.daemon.unbound_conf)
    corenet-resolver query [@SERVER] [NAME] [TYPE] [+OPTION ...]   (as dig: see dig.py)
    corenet-resolver [-c CONFIG] [-s PATH] COMMAND [ARGS]    (resolver.daemon.commands)

A control command's output is unbound-control's where scripts read it: ``ok`` for the
commands that print it, ``error MESSAGE`` on stdout and exit status 1 when the daemon refuses;
a daemon that cannot be reached is an error on stderr and exit status 1.

A bad option or config value is a one-line error naming it and exit status 2, before
anything binds.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

from resolver.daemon.values import ConfigError

PROG = "corenet-resolver"


def _serve_parser(sub) -> None:
    from resolver.daemon.settings import add_flags

    p = sub.add_parser("serve", help="run the resolver daemon in the foreground")
    p.add_argument("-c", "--config", metavar="FILE",
                   help="config file: corenet's TOML, or an unbound.conf, read as "
                   "import-unbound reads it (the command line wins)")
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


def parser() -> argparse.ArgumentParser:
    from corenet import __version__

    from resolver.daemon.commands import usage
    from resolver.daemon.service import SYSTEM_CONTROL

    ap = argparse.ArgumentParser(
        prog=PROG, description="A recursive, caching DNS resolver.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"control commands, run as  {PROG} [-c CONFIG] [-s PATH] [-q] COMMAND "
               "[ARGS]\n  -c CONFIG  the daemon's config file (or an unbound.conf): its "
               "control socket (or TCP control listener, control-enable) is used\n"
               "  -s PATH, --control PATH  the "
               f"control socket (default {SYSTEM_CONTROL}, or the non-root\n"
               "             daemon's, or $CORENET_RESOLVER_CONTROL); -s ADDR[@PORT]: the TCP "
               "control listener, with -c's certificates\n  -q  nothing printed on "
               "success   --json  stats and status as JSON   --prometheus  stats as "
               "Prometheus text\n  COMMAND -h  the command's doc\n\n" + usage())
    ap.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    c = sub.add_parser("checkconf", help="check a config file without starting (exit 0, or "
                       "1 as unbound-checkconf); an unbound.conf is read as import-unbound "
                       "reads it")
    c.add_argument("file", metavar="FILE")
    i = sub.add_parser("import-unbound", help="convert an unbound.conf to corenet's TOML "
                       "(the TOML on standard output, the report of every option on standard "
                       "error)")
    i.add_argument("file", metavar="UNBOUND_CONF")
    i.add_argument("-o", "--output", metavar="FILE", help="write the TOML there")
    u = sub.add_parser("service-unit", help="print the systemd unit, running this "
                       "installation's corenet-resolver")
    u.add_argument("--executable", metavar="PATH",
                   help="the corenet-resolver command the unit runs (default: this one's)")
    from resolver.tools.dig_options import add_parser
    add_parser(sub, _authority_flags)
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
        if ns.config is not None:
            _say_not_carried(ns.config)
        return daemon.run(cfg, overrides)
    except ConfigError as e:
        return _fail(str(e))


def _say_not_carried(path: str) -> None:
    """On standard error: the options of the unbound.conf at ``path`` that are not carried
    over (nothing for a TOML file), as checkconf lists them."""
    from resolver.daemon import unbound_conf

    if unbound_conf.looks_like_unbound(path):
        for u in _converted(path).unmapped:
            print(f"{PROG}: {u.option.where}: {u.option.text}: not carried over: {u.why}",
                  file=sys.stderr)


def _converted(path: str):
    """The conversion of the unbound.conf at ``path`` (ConfigError when it cannot be read)."""
    from resolver.daemon import unbound_conf

    return unbound_conf.convert(unbound_conf.read(path))


def cmd_import_unbound(ns: argparse.Namespace) -> int:
    """The TOML (standard output or ``-o``) and the report (standard error); exit status 1
    when the converted config does not pass checkconf (it is written all the same)."""
    try:
        conv = _converted(ns.file)
    except ConfigError as e:
        return _fail(str(e))
    sys.stderr.write(conv.report())
    text = conv.toml(ns.file)
    if ns.output:
        try:
            with open(ns.output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            return _fail(f"cannot write {ns.output!r}: {e.strerror}")
    else:
        sys.stdout.write(text)
    from resolver.daemon import config

    try:
        config.build(ns.file)
    except ConfigError as e:
        print(f"{PROG}: the converted config does not pass checkconf: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_checkconf(ns: argparse.Namespace) -> int:
    """Everything ``serve`` checks before it binds (values, files, root hints, trust
    anchor), without binding or starting anything. An unbound.conf is converted first;
    what could not be carried over is listed on standard error. Exit status 1 for a file
    it refuses, as unbound-checkconf's (a script's ``checkconf && reload`` reads both
    alike)."""
    from resolver.daemon import config, unbound_conf
    from resolver.daemon.server import make_resolver

    if unbound_conf.looks_like_unbound(ns.file):
        try:
            conv = _converted(ns.file)
            cfg = config.build(ns.file)
        except ConfigError as e:
            return _fail(str(e), 1)
        try:
            make_resolver(cfg)
        except (ValueError, OSError, TypeError) as e:
            return _fail(f"{ns.file}: root hints or trust anchor: {e}", 1)
        _say_not_carried(ns.file)
        print(f"{ns.file}: ok (Unbound's format: {len(conv.mapped)} options carried over, "
              f"{len(conv.unmapped)} not)")
        return 0
    try:
        cfg = config.build(ns.file)
        try:
            make_resolver(cfg)
        except (ValueError, OSError, TypeError) as e:
            raise ConfigError(f"{ns.file}: root hints or trust anchor: {e}") from None
    except ConfigError as e:
        return _fail(str(e), 1)
    print(f"{ns.file}: ok")
    return 0


# ---- control ----------------------------------------------------------------------------------
#: The control commands' options: (their names, what they set, whether a value follows).
CONTROL_OPTIONS = {"-c": ("config", True), "--config": ("config", True),
                   "-s": ("control", True), "--control": ("control", True),
                   "--json": ("json", False), "--prometheus": ("prometheus", False),
                   "-q": ("quiet", False)}


def split_control(argv: list[str]) -> tuple[dict, list[str]]:
    """A control command line: its options (before or after the command) and the command
    with its arguments. Raises ValueError for an option without its value."""
    opts: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, _, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in CONTROL_OPTIONS:
            key, takes = CONTROL_OPTIONS[name]
            if takes and not value:
                if i + 1 >= len(argv):
                    raise ValueError(f"{name} needs a value")
                i += 1
                value = argv[i]
            opts[key] = value if takes else True
        else:
            rest.append(arg)
        i += 1
    return opts, rest


def _config_of(path: str | None):
    """The config a control command reads from ``-c``: a TOML file, or an unbound.conf
    (converted, as ``unbound-control -c`` reads one: its remote-control clause)."""
    from resolver.daemon import config

    return config.build(path)


def control_target(opts: dict):
    """Where the daemon listens for commands: ``-s``/``--control``, else the control socket
    (or TCP control interface) of the config file ``-c`` names (TOML or unbound.conf), else
    the default socket."""
    from resolver.daemon.control import is_address, tcp_target
    from resolver.daemon.service import find_control

    if opts.get("control") and is_address(opts["control"]):     # -s ADDR[@PORT]: over TCP
        return tcp_target(_config_of(opts.get("config")), opts["control"])
    if opts.get("control"):
        return opts["control"]
    if opts.get("config"):
        from resolver.daemon import config

        cfg = _config_of(opts["config"])
        target = tcp_target(cfg)
        if target is not None:
            return target
        if not cfg.control:
            raise ConfigError(f"{opts['config']}: the control socket is off (control = \"\")")
        # the default path: where a daemon that could not make it put its socket too
        return find_control() if cfg.control == config.Config.control else cfg.control
    return find_control()


def cmd_control(argv: list[str]) -> int:
    from resolver.daemon import replies
    from resolver.daemon.commands import BY_NAME
    from resolver.daemon.control import ControlError, request

    try:
        opts, rest = split_control(argv)
    except ValueError as e:
        return _fail(str(e))
    cmd, args = rest[0], rest[1:]
    if cmd not in BY_NAME:               # unbound-control's words and exit status
        print(f"error unknown command '{cmd}' ({PROG} help lists them)")
        return 1
    if {"-h", "--help"} & set(args):
        c = BY_NAME[cmd]
        print(f"usage: {PROG} [-c CONFIG] [-s PATH] {c.name} {c.args}".rstrip())
        print(f"\n{c.doc}\n\nWith several workers: {c.scope}.")
        return 0
    req = replies.request(cmd, args, sys.stdin.read() if BY_NAME[cmd].stdin else None)
    try:
        answer = request(control_target(opts), req)
    except ConfigError as e:
        return _fail(str(e))
    except ControlError as e:
        if e.refused:                    # the daemon answered: unbound-control's form
            print(replies.error_line(str(e)))
            return 1
        if e.stopped and cmd == "status":        # unbound-control's words and status 3
            print(f"{PROG} is stopped")
            return 3
        return _fail(str(e), 1)
    fmt = "json" if opts.get("json") else "prometheus" if opts.get("prometheus") else "unbound"
    out = replies.text(cmd, answer, fmt)
    if not opts.get("quiet") or out.startswith("error"):   # -q: errors only, as unbound-control
        sys.stdout.write(out)
    if cmd == "flush" and "shared_deleted" in answer and answer["shared_deleted"] is None:
        return _fail("the shared cache could not be reached: the name's entries there stay "
                     "until they expire", 1)
    from resolver.daemon.commands import RELOADS
    if cmd in RELOADS and answer.get("restart_needed"):
        print(f"{PROG}: {', '.join(answer['restart_needed'])} change only at a restart",
              file=sys.stderr)
    return 1 if out.startswith("error") else 0     # unbound-control's: an error line first


def main(argv: Sequence[str] | None = None) -> int:
    """The command's exit status; output into a closed pipe (``| head -1``) ends it
    quietly, with the status a write into a closed pipe has (128 + SIGPIPE)."""
    try:
        code = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away: nothing more to say, and nothing for Python's exit to flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "query" and not {"-h", "--help"} & set(argv[1:]):
        from resolver.tools import dig       # dig's grammar, not argparse's
        return dig.main(argv[1:])
    if argv and argv[0] == "help":
        argv = ["--help"]
    if _control_command(argv):
        return cmd_control(argv)
    ns = parser().parse_args(argv)
    if ns.command == "serve":
        return cmd_serve(ns)
    if ns.command == "import-unbound":
        return cmd_import_unbound(ns)
    if ns.command == "service-unit":
        from resolver.daemon.service import unit_text

        sys.stdout.write(unit_text(ns.executable))
        return 0
    return cmd_checkconf(ns)


#: The commands that are not control commands: the parser's (a test keeps them equal).
SUBCOMMANDS = frozenset({"serve", "checkconf", "import-unbound", "service-unit", "query"})


def _control_command(argv: list[str]) -> bool:
    """Whether ``argv`` is a control command (its options may come first): a control
    command's name, or any other word that is not a subcommand (an unknown command)."""
    try:
        _, rest = split_control(argv)
    except ValueError:
        return False
    return bool(rest) and rest[0] not in SUBCOMMANDS and not rest[0].startswith("-")


if __name__ == "__main__":
    sys.exit(main())
