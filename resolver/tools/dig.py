"""``corenet-resolver query``: dig's command line, output and exit codes.

    corenet-resolver query [@SERVER] [-p PORT] [-4|-6] [-t TYPE] [-c CLASS] [-q NAME] [-x ADDR]
                           [-f FILE] [NAME] [TYPE] [CLASS] [+OPTION ...]

Without ``@SERVER`` the nameservers of /etc/resolv.conf are asked (``$CORENET_RESOLV_CONF``
names another file); ``--in-process`` resolves in this process from the root instead.
Exit codes: 0 a DNS reply (any rcode), 1 usage error, 8 batch file unreadable, 9 no reply,
10 internal error.
"""
from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
import time
from dataclasses import replace

from resolver.tools.dig_exchange import exchange, make_query, server_addresses
from resolver.tools.dig_options import (EXIT_BATCH, EXIT_INTERNAL, EXIT_NO_ANSWER, EXIT_OK,
                                        EXIT_USAGE, PROG, Fatal, Options, UsageError,
                                        digrc, name_error, parse)
from resolver.tools.dig_nssearch import nssearch
from resolver.tools.dig_output import cmd_lines, cookie_of, dns64_prefixes, error_line, render
from resolver.tools.dig_trace import trace
from resolver.tools.dig_tsig import Checked
from resolver.tools.dig_tsig import setup as tsig_setup
from resolver.tools.dig_yaml import yaml_message


def lookup(o: Options, argv: list[str]) -> int:
    """One look-up, printed; its exit status."""
    if o.dns64prefix:                     # no search list, no trace: that question alone
        o = replace(o, search=False, qr=False, trace=False)
    try:
        q = make_query(o)
    except Exception as e:
        why = name_error(e)
        if why is not None:                # as dig's fatal(): the look-ups after it not asked
            raise Fatal(f"'{o.name}' is not a legal name ({why})", EXIT_INTERNAL) from None
        print(f"{PROG}: {e}", file=sys.stderr)
        return EXIT_USAGE
    if o.nssearch:
        return nssearch(o, argv)
    if o.trace:
        return trace(o, argv)
    if o.in_process:
        return _lookup_in_process(q, o, argv)
    try:
        servers = server_addresses(o)
    except LookupError as e:
        if o.server is not None:          # dig: a usage error, said before anything else
            print(f"{PROG}: {e}", file=sys.stderr)
            return EXIT_USAGE
        if o.show["cmd"] and not o.short:
            sys.stdout.write(cmd_lines(argv, o, None))
        print(f";; {e}", flush=True)
        return EXIT_NO_ANSWER
    if (o.transport == "udp" and not o.tcp_chosen
            and (o.rdtype or "").upper() in ("ANY", "TYPE255")):
        o = replace(o, transport="tcp")   # dig 9.18 asks ANY over TCP unless told +notcp
    default_port = {"tls": 853, "https": 443, "http": 80}.get(o.transport, 53)
    port = o.port if o.port is not None else default_port
    # as dig, the command lines come once the look-up ends, after its lost tries
    # dig counts the addresses of the last @SERVER
    found = sum(1 for _, name in servers if name == o.server)
    banner = (cmd_lines(argv, o, found)
              if o.greeting and o.show["cmd"] and not (o.short or o.dns64prefix) else "")
    # as dig: made, the command lines come before "no servers could be reached" (unless a
    # message came first), +nocmd, +short or +yaml after the first name notwithstanding
    error_banner = cmd_lines(argv, o, found) if o.greeting and not banner else ""
    if (o.rdtype or "").upper() in ("AXFR", "IXFR"):
        return _transfer(q, o, servers, port, [banner], error_banner)
    names = search_names(o)

    def yaml_reply(r, where: str, sent_at: float) -> str:
        """+yaml's text of the reply ``r`` from ``where`` (ADDRESS#PORT(NAME) (PROTOCOL))."""
        return yaml_message(r, o, sending=False, address=where.split("#", 1)[0], port=port,
                            proto=where.rsplit("(", 1)[1].rstrip(")"),
                            size=len(getattr(r, "wire", None) or r.to_wire()),
                            sent_at=sent_at, received_at=time.time(), sent_cookie=cookie_of(q))

    for i, qname in enumerate(names):
        if qname != o.name:
            q = make_query(replace(o, name=qname))
        sent_at = time.time()
        pending = [banner, error_banner]

        def show_query(addr: str, proto: str, q=q) -> None:
            """+qr: the query, as dig prints it each time it goes (every try); the
            command lines, made, go with the first (with +short, nothing printed)."""
            if o.yaml or not o.short:
                size = len(q.to_wire())
                sys.stdout.write(pending[0] + (yaml_message(
                    q, o, sending=True, address=addr, port=port, size=size,
                    proto="UDP" if proto == "UDP" else "TCP", sent_at=time.time())
                    if o.yaml else render(q, o, elapsed=None, server="", size=size,
                                          sending=True)))
                sys.stdout.flush()
            pending[:] = ["", ""]

        got = exchange(q, o, servers, port, pending, show_query if o.qr else None)
        banner, error_banner = pending
        if got is None:
            sys.stdout.write(banner + error_banner
                             + error_line(o, "no servers could be reached"))
            sys.stdout.flush()
            return EXIT_NO_ANSWER
        if isinstance(got, int):
            return got
        r, where, elapsed = got.reply, got.where, got.elapsed
        error_banner = ""
        if o.dns64prefix:                 # the prefixes, one per line (after +yaml's text)
            prefixes = "".join(f"{p}\n" for p in dns64_prefixes(r))
            sys.stdout.write((yaml_reply(r, where, sent_at) if o.yaml else "") + prefixes)
            return EXIT_OK
        searching = r.rcode() == 3 and i < len(names) - 1     # NXDOMAIN: the next name
        if not searching or o.showsearch:
            size = len(getattr(r, "wire", None) or r.to_wire())
            # as dig, each result +showsearch prints comes with the command lines
            if o.yaml:
                text = yaml_reply(r, where, sent_at)
                if o.short:               # as dig: the short lines after the header
                    text += render(r, o, elapsed=elapsed, server=where, size=size)
            else:
                text = render(r, o, elapsed=elapsed, server=where, size=size,
                              sent_cookie=cookie_of(q))
            sys.stdout.write(banner + text)
            sys.stdout.flush()
        if not searching:
            return EXIT_OK
    return EXIT_OK                        # pragma: no cover - the last name always returns


def _transfer(q, o: Options, servers, port: int, banner: list[str],
              error_banner: str) -> int:
    """A zone transfer (:func:`transfer`), the query printed for +qr as dig prints it (with
    +yaml too)."""
    from resolver.tools.dig_xfr import transfer, xfr_view

    def sent(addr: str, proto: str) -> None:
        if o.qr and (o.yaml or not o.short):
            size = len(q.to_wire())
            sys.stdout.write(banner[0] + (
                yaml_message(q, xfr_view(o), sending=True, address=addr, port=port,
                             size=size, proto=proto, sent_at=time.time()) if o.yaml
                else render(q, xfr_view(o), elapsed=None, server="", size=size,
                            sending=True)))
            banner[0] = ""

    return transfer(q, o, servers, port, banner, sent, error_banner)


def search_names(o: Options) -> list[str | None]:
    """The names a look-up asks in turn, as dig's +search orders them: a relative name
    with fewer dots than ndots (+ndots, else resolv.conf's) with each search domain
    (+domain, else resolv.conf's search or domain, as BIND's reader took them:
    ``o.resolv_conf``) and then as it is; one with as many or more is absolute, as it
    is to dig (no search); without +search, or for an absolute name, the name."""
    name = o.name
    if not o.search or name is None or o.reverse or name.endswith("."):
        return [name]
    suffixes = ([o.domain.strip(".")] if o.domain
                else [d.strip(".") for d in o.resolv_conf.search])
    searched = [f"{name}.{d}." if d else f"{name}." for d in suffixes]
    ndots = o.resolv_conf.numbers.get("ndots", 1) if o.ndots is None else o.ndots
    if name.count(".") >= ndots:
        return [f"{name}."]
    return searched + [f"{name}."]


def _lookup_in_process(q, o: Options, argv: list[str]) -> int:
    if o.root_hints is None:
        print(";; resolving in this process from the real root servers (no --root-hints)",
              file=sys.stderr, flush=True)
    if o.show["cmd"] and not o.short:
        sys.stdout.write(cmd_lines(argv, o, None))
    t0 = time.monotonic()
    try:
        r = resolve_in_process(q, o)
    except (TimeoutError, asyncio.TimeoutError):
        print(";; in-process resolution timed out", flush=True)
        return EXIT_NO_ANSWER
    except OSError as e:
        print(f";; in-process resolution failed: {e}", flush=True)
        return EXIT_NO_ANSWER
    except Exception as e:
        print(f"{PROG}: internal error: {e}", file=sys.stderr)
        return EXIT_INTERNAL
    where = "in-process resolution from the " + ("root hints" if o.root_hints else "real root")
    sys.stdout.write(render(r, o, elapsed=time.monotonic() - t0, server=where,
                            size=len(r.to_wire())))
    return EXIT_OK


def resolve_in_process(q, o: Options):
    from resolver import Resolver
    from resolver.loop_thread import new_loop

    async def go():
        r = Resolver(o.root_hints, port=o.upstream_port, ipv6=o.ipv6,
                     qname_minimisation=o.qname_minimisation, do_ip4=o.do_ip4,
                     do_not_query_localhost=o.do_not_query_localhost)
        try:
            return await asyncio.wait_for(r.resolve_message(q), o.timeout)
        finally:
            await r.close()

    loop = new_loop()
    try:
        return loop.run_until_complete(go())
    finally:
        loop.close()


#: the most characters dig reads of a batch file's line at once (its buffer, less the NUL)
BATCH_LINE = 1023


def batch_lines(text: str) -> list[str]:
    """A batch file's lines as dig reads them: at most :data:`BATCH_LINE` characters, the
    newline among them, at a time, so that the rest of a longer line is a line of its own
    (a line of exactly that many characters is followed by an empty one)."""
    *ended, last = text.split("\n")        # ``last``: what follows the last newline
    out: list[str] = []
    for line in ended:
        out += [line[i:i + BATCH_LINE] for i in range(0, len(line), BATCH_LINE)]
        if len(line) % BATCH_LINE == 0:
            out.append("")                     # the newline read alone
    return out + [last[i:i + BATCH_LINE] for i in range(0, len(last), BATCH_LINE)]


def main(argv: list[str]) -> int:
    """``corenet-resolver query ARGV``: dig's exit status, that of the last look-up (dig
    sets 9 when a look-up goes unanswered and clears it as the next one's query goes); a
    fatal error ends the command with that status, else 1; 10 after an error of its own."""
    if "-v" in argv:                      # as dig: the version, and nothing asked
        from corenet import __version__
        print(f"corenet-resolver query {__version__}", file=sys.stderr)
        return EXIT_OK
    try:
        glob, lookups = parse(digrc(argv, os.environ.get("HOME")) + argv)
        if glob.batch is not None:
            try:
                with open(glob.batch, encoding="utf-8", errors="replace", newline="") as f:
                    lines = batch_lines(f.read())
            except OSError as e:
                print(f"{glob.batch}: {e.strerror or e}", file=sys.stderr)
                print(f"{PROG}: couldn't open specified batch file", file=sys.stderr)
                return EXIT_BATCH
            base = replace(glob, batch=None)
            started = False
            for line in lines:
                # as dig: until the file's first look-up, a line that starts with a newline,
                # a carriage return, "#" or ";" is skipped; after it every line is one
                # (no words: the root's NS; a comment's words: names and options)
                if not started and (line == "" or line[0] in "\r#;"):
                    continue
                started = True
                # dig splits a line at spaces, tabs, CRs and LFs and takes 13 words of it
                words = [w for w in re.split(r"[ \t\r]+", line) if w][:13]
                # as dig, each line makes its command lines as its first name is read
                # (the whole of them the first time they are made)
                first = not any(o.greeting for o in lookups)
                line_glob, more = parse(words, base, first_greeting=first)
                lookups += more
                # dig's printcmd and +short are global: a line's hold for the next
                base = replace(base, show=dict(base.show, cmd=line_glob.show["cmd"]),
                               short=line_glob.short)
        # as dig: the TSIG key made once, before anything is asked (-k's file, else -y's)
        given = lookups[-1] if lookups else glob
        key, secret = tsig_setup(given.tsig_file, given.tsig_given)
        Checked.validated = True
        for o in lookups:
            o.tsig_key, o.tsig_secret = key, secret
    except Fatal as e:                    # resolv.conf refused: before anything else, as dig
        print(f"{PROG}: {e}", file=sys.stderr)
        return e.status
    except UsageError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        print(f"usage: {PROG} [@SERVER] [-p PORT] [-4|-6] [-t TYPE] [-x ADDR] [-f FILE] "
              "[NAME] [TYPE] [CLASS] [+OPTION ...]", file=sys.stderr)
        return EXIT_USAGE
    status, internal = EXIT_OK, False
    if any(o.dns64prefix for o in lookups):
        for o in lookups:                 # as dig: with a +dns64prefix look-up, no banner
            o.show["cmd"] = False
    for i, o in enumerate(lookups):
        if o.family and o.server is not None and _is_address_of_other_family(o):
            if o.family == socket.AF_INET:        # as dig: -4 (or -b) and an IPv6 server
                print(f"{PROG}: couldn't get address for '{o.server}': address family "
                      "not supported", file=sys.stderr)
                return EXIT_USAGE
            # -6 and an IPv4 server: its mapped address is passed over, nothing asked
            print(f";; Skipping mapped address '::ffff:{o.server}'\n"
                  ";; No acceptable nameservers", flush=True)
            status = EXIT_OK
            continue
        if i and o.greeting_words is None:
            o.show["cmd"] = False         # dig prints the command line's once
        try:
            status = lookup(o, argv)
        except Fatal as e:                # as dig's fatal(): said, and nothing more asked
            sys.stdout.flush()
            print(f"{PROG}: {e}", file=sys.stderr, flush=True)
            return e.status
        except Exception as e:            # a bug, not the network: dig's "internal error"
            print(f"{PROG}: internal error: {type(e).__name__}: {e}", file=sys.stderr)
            internal = True
    return EXIT_INTERNAL if internal else status


def _is_address_of_other_family(o: Options) -> bool:
    try:
        fam = socket.AF_INET6 if ":" in o.server else socket.AF_INET
        socket.inet_pton(fam, o.server)
    except OSError:
        return False
    return fam != o.family
