"""dig's +trace: the question followed down the referrals from the root, each step printed."""
from __future__ import annotations

import contextlib
import io
import random
import socket
import sys
import time
from dataclasses import replace

from resolver.tools.dig_exchange import exchange, make_query, server_addresses
from resolver.tools.dig_options import EXIT_NO_ANSWER, EXIT_OK, EXIT_USAGE, PROG, Fatal, \
    Options
from resolver.tools.dig_output import cmd_lines, cookie_of, error_line, rdata_text, rr_lines
from resolver.tools.dig_yaml import yaml_message

#: the most steps one +trace takes (referrals, and the walks to NS names without glue)
TRACE_MAX_STEPS = 30
#: the sections +trace shows of each step (its +yaml documents too): answer and authority
_TRACE_SHOWN = {"cmd": False, "comments": False, "question": False, "answer": True,
                "authority": True, "additional": False, "stats": False}


def trace(o: Options, argv: list[str]) -> int:
    """+trace: the root's NS set asked (with recursion) of ``@SERVER`` when one is given,
    else of a root hint (``--root-hints``, else the shipped ones), then the question asked
    without recursion of each zone's servers down the referrals, each reply's answer and
    authority printed with where it came from, as dig does. ``-p`` (else
    ``--upstream-port``) is every server's port."""
    port = o.port if o.port is not None else o.upstream_port
    if o.server is not None:
        try:
            start = server_addresses(o)
        except LookupError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            return EXIT_USAGE
    else:
        try:
            start = _root_hints(o)
        except (OSError, ValueError) as e:
            print(f"{PROG}: root hints: {e}", file=sys.stderr)
            return EXIT_USAGE
    found = (sum(1 for _, name in start if name == o.server) if o.server is not None
             else None)
    # as dig, the command lines (made as the first name was read) come with the first
    # reply, after its lost tries, with +cmd on at the end and no +short; before an error
    # that comes first in any case
    banner = cmd_lines(argv, o, found) if o.greeting else ""
    steps = [0]
    # as dig, the tries are the trace's: each step has the ones the steps before it left
    tries = [o.tries]
    root = replace(o, name=".", rdtype="NS", rdclass=None, reverse=False)
    # as dig, a step's "Received" line comes once its NS names' addresses are found (after
    # the names without one are said)
    received: list[str] = []
    r = _trace_ask(root, start, port, steps, show=True, rec=o.server is not None,
                   banner=banner, tries=tries, typed=o.name, received=received)
    if r is None:
        return EXIT_NO_ANSWER
    hints = start
    if o.server is not None:          # the root servers that server names
        ns = [rrset for rrset in r.answer if rrset.rdtype == 2 and rrset.name.labels == (b"",)]
        hints = _addresses_of(ns[0] if ns else [], r, o, start, port, steps, rec=True)
    _print(received)
    if not hints:
        print(";; no address found for the root servers", flush=True)
        return EXIT_NO_ANSWER
    servers = _shuffled(hints)
    while True:
        r = _trace_ask(o, servers, port, steps, show=True, tries=tries, received=received)
        if r is None:
            return EXIT_NO_ANSWER
        nxt = _referral(r, o, port, hints, steps)
        _print(received)
        if nxt is None:
            return EXIT_OK
        if not nxt:
            print(";; no address found for the servers of the referral", flush=True)
            return EXIT_NO_ANSWER
        servers = _shuffled(nxt)


def _print(lines: list[str]) -> None:
    """``lines`` printed, and taken out of the list."""
    sys.stdout.write("".join(lines))
    sys.stdout.flush()
    lines.clear()


def _shuffled(servers: list) -> list:
    """A referral's servers in a random order, the order dig asks them in."""
    servers = list(servers)
    random.shuffle(servers)
    return servers


def _root_hints(o: Options) -> list[tuple[str, str]]:
    """(address, name) of the root hints (``--root-hints``, else the shipped ones) of the
    family -4/-6 allow."""
    import dns.name

    from resolver.hints import ROOT_HINTS_FILE, parse_root_hints
    hints = [(dns.name.from_wire(n, 0)[0].to_text(omit_final_dot=True), a)
             for n, a in parse_root_hints(o.root_hints or ROOT_HINTS_FILE)]
    return [(a, n) for n, a in hints if not o.family
            or (o.family == socket.AF_INET6) == (":" in a)]


def _trace_ask(o: Options, servers, port: int, steps: list, show: bool, rec: bool = False,
               banner: str = "", tries: list[int] | None = None, typed: str | None = None,
               received: list[str] | None = None):
    """One step of +trace: ``o``'s question without RD (with it when ``rec``) asked of
    ``servers`` ((address, name) pairs) with dig's tries (:func:`exchange`: ``tries``,
    [the tries left], shared by the steps of one trace; else ``o.tries`` of its own). When
    ``show``: a lost try said with the name as given (``typed``, else ``o.name``), the
    reply printed (its "Received" line added to ``received``, when given, for the caller
    to print); else nothing is printed. None when none replied (said after ``banner``)
    or the steps are spent."""
    import dns.rdatatype
    steps[0] += 1
    if steps[0] > TRACE_MAX_STEPS:
        if show:
            print(f";; +trace: more than {TRACE_MAX_STEPS} steps, giving up", flush=True)
        return None
    q = make_query(replace(o, rec=rec))
    asked = replace(o, name=o.name if typed is None else typed,
                    transport="udp" if o.transport != "tcp" else "tcp")
    sent_at = time.time()
    # a step not shown (a walk to an NS name's address, which dig leaves to the host's
    # resolver) says nothing of its lost tries or its failure either
    with contextlib.nullcontext() if show else contextlib.redirect_stdout(io.StringIO()):
        got = exchange(q, asked, servers, port, [""], tries=tries)
    if got is None:
        if show:
            sys.stdout.write(banner + error_line(o, "no servers could be reached"))
            sys.stdout.flush()
        return None
    if isinstance(got, int):              # said already (a connection that failed)
        return None
    r, addr, name, proto = got.reply, got.address, got.name, got.proto
    if not show:
        return r
    ms = got.elapsed * 1000
    # +short: the answer's records, each with its type (and, +identify, which +trace
    # sets, where and how fast it came), as dig's +trace prints them
    said = f" from server {addr} in {ms:.0f} ms." if o.identify else ""
    short = [f"{dns.rdatatype.to_text(rrset.rdtype)} {rdata_text(rd, o)}{said}"
             for rrset in r.answer for rd in rrset] if o.short else []
    if o.show["cmd"] and not o.short:
        sys.stdout.write(banner)
    if o.yaml:                            # as dig: each step a YAML document entry
        sys.stdout.write(yaml_message(
            r, replace(o, show=_TRACE_SHOWN), sending=False, address=addr,
            port=port, proto=proto, sent_at=sent_at, received_at=time.time(),
            size=len(getattr(r, "wire", None) or r.to_wire()),
            sent_cookie=cookie_of(q)) + "".join(line + "\n" for line in short))
        sys.stdout.flush()
    else:
        size = len(getattr(r, "wire", None) or r.to_wire())
        lines = short if o.short else rr_lines(r.answer + r.authority, multi=o.multi, o=o)
        sys.stdout.write("".join(line + "\n" for line in lines))
        if not o.short:
            line = f";; Received {size} bytes from {addr}#{port}({name}) in {ms:.0f} ms\n\n"
            if received is None:
                _print([line])
            else:
                received.append(line)
    return r


def _referral(r, o: Options, port: int, hints, steps: list):
    """The servers a reply refers the question to ((address, name) pairs: the glue, else
    every NS name's addresses, found by walks from the root that are not shown), or None
    when the reply is the end: an answer, an error rcode or no NS set deeper than the
    question's zone."""
    import dns.rcode
    import dns.rdatatype
    if r.answer or r.rcode() != dns.rcode.NOERROR:
        return None
    ns = [rrset for rrset in r.authority if rrset.rdtype == dns.rdatatype.NS]
    if not ns:
        return None
    return _addresses_of(ns[0], r, o, hints, port, steps)


def _addresses_of(ns, r, o: Options, servers, port: int, steps: list, rec: bool = False):
    """(address, name) of the NS set ``ns``'s targets: the glue of ``r``; else, as dig
    finds them, every target's: a name that is an address taken as it is, any other's
    addresses found through ``servers`` (by a walk down the referrals from them, or asked
    of them with recursion when ``rec``), not shown. A name without an address is said as
    dig says it; when no name has one, dig's fatal error (:class:`Fatal`)."""
    import dns.rdatatype

    targets = [rd.target for rd in ns]
    want = (dns.rdatatype.A, dns.rdatatype.AAAA) if not o.family else (
        (dns.rdatatype.A,) if o.family == socket.AF_INET else (dns.rdatatype.AAAA,))
    out = []
    for rrset in r.additional:
        if rrset.name in targets and rrset.rdtype in want:
            out += [(rd.address, rrset.name.to_text(omit_final_dot=True)) for rd in rrset]
    if out:
        return out
    missing = []
    for target in targets:
        name = target.to_text(omit_final_dot=True)
        literal = _address_literal(target)
        if literal is not None:     # an address as a name: that address, as dig takes it
            if not o.family or (o.family == socket.AF_INET6) == (":" in literal):
                out.append((literal, literal))
            continue
        ask = replace(o, name=target.to_text(), rdtype="A" if o.family != socket.AF_INET6
                      else "AAAA", rdclass=None, reverse=False)
        if rec:
            got = _trace_ask(ask, servers, port, steps, show=False, rec=True)
            found = [rd.address for rrset in (got.answer if got else [])
                     if rrset.rdtype in want for rd in rrset]
        else:
            found = _walk(ask, port, servers, steps)
        if found:
            out += [(a, name) for a in found]
        else:                       # as dig, said as the referral is followed
            print(f"couldn't get address for '{name}': not found", flush=True)
            missing.append(name)
    if not out and missing:         # dig's fatal error, with its result text
        raise Fatal(f"couldn't get address for '{missing[0]}': no more")
    return out


def _walk(o: Options, port: int, hints, steps: list) -> list[str]:
    """The addresses of ``o.name``, found down the referrals from the root without
    printing (within the steps left)."""
    servers = hints
    while True:
        r = _trace_ask(o, servers, port, steps, show=False)
        if r is None:
            return []
        nxt = _referral(r, o, port, hints, steps)
        if nxt is None:
            return [rd.address for rrset in r.answer if rrset.rdtype in (1, 28)
                    for rd in rrset]
        if not nxt:
            return []
        servers = nxt


def _address_literal(name) -> str | None:
    """The address a name spells (``192.0.2.1.``), as dig reads an NS name; else None."""
    text = name.to_text(omit_final_dot=True)
    for fam in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(fam, text)
            return text
        except OSError:
            continue
    return None
