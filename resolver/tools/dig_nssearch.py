"""dig's +nssearch: the zone's NS set asked of the server, then each name server's SOA, one
line per server in the order the replies come, as dig 9.18 prints them."""
from __future__ import annotations

import random
import socket
import sys
import threading
import time
from dataclasses import replace

from resolver.tools.dig_exchange import ConnectFailed, UdpSetupFailed, ask, error_text, \
    exchange, make_query, network_errors, server_addresses
from resolver.tools.dig_options import EXIT_NO_ANSWER, EXIT_OK, EXIT_USAGE, PROG, Fatal, Options
from resolver.tools.dig_output import cmd_lines, cookie_of, error_line, rdata_text
from resolver.tools.dig_yaml import yaml_message


def nssearch(o: Options, argv: list[str]) -> int:
    """+nssearch: the NS set of ``o.name`` asked (with recursion) of ``@SERVER`` (else of
    resolv.conf's servers); each NS name's addresses found by the host's resolver, as dig
    finds them; then the SOA of ``o.name`` asked without recursion of every address at
    once, each reply's answer printed as ``SOA ... from server ADDR in N ms.`` as it comes,
    each failure as dig says it. Exit status: 0 when one server replied, 9 when none did
    (or the first server did not); :class:`Fatal` when no NS name had an address."""
    try:
        servers = server_addresses(o)
    except LookupError as e:
        if o.server is not None:
            print(f"{PROG}: {e}", file=sys.stderr)
            return EXIT_USAGE
        print(f";; {e}", flush=True)
        return EXIT_NO_ANSWER
    port = o.port if o.port is not None else 53
    found = sum(1 for _, name in servers if name == o.server)
    # as dig: the command lines only with "no servers could be reached"
    pending = [cmd_lines(argv, o, found) if o.greeting else ""]
    got = exchange(make_query(replace(o, rdtype="NS", rec=True)), o, servers, port, pending)
    if got is None:
        sys.stdout.write(pending[0] + error_line(o, "no servers could be reached"))
        sys.stdout.flush()
        return EXIT_NO_ANSWER
    if isinstance(got, int):
        return got
    targets = ns_targets(got[0])
    addresses: list[str] = []
    first_failed = None
    for target in targets:
        try:
            addresses += host_addresses(target, o.family)
        except LookupError as e:
            print(f"couldn't get address for '{target}': {e}", flush=True)
            first_failed = first_failed or target
    if not addresses:
        if first_failed is not None:      # dig's fatal error, with its result text
            raise Fatal(f"couldn't get address for '{first_failed}': no more")
        return EXIT_OK                    # no NS set (NXDOMAIN, NODATA): nothing to ask
    random.shuffle(addresses)             # dig asks the servers in a random order
    return EXIT_OK if _ask_all(o, addresses, port) else EXIT_NO_ANSWER


def ns_targets(r) -> list[str]:
    """The NS names a reply gives, as dig follows it up: the NS sets of the answer, else of
    the authority section, unless that has an SOA (the name has no NS set)."""
    import dns.rdatatype
    for section in (r.answer, r.authority):
        if section is r.authority and any(rrset.rdtype == dns.rdatatype.SOA
                                          for rrset in section):
            return []
        names = [rd.target.to_text(omit_final_dot=True) for rrset in section
                 if rrset.rdtype == dns.rdatatype.NS for rd in rrset]
        if names:
            return names
    return []


def host_addresses(host: str, family: int = 0) -> list[str]:
    """A name server's addresses as dig finds them: an address as it is, else the host's
    resolver (getaddrinfo), of the family -4/-6 allow; LookupError with dig's reason."""
    for fam in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(fam, host)
        except OSError:
            continue
        if family and fam != family:
            raise LookupError("address family not supported")
        return [host]
    try:
        infos = socket.getaddrinfo(host, None, family,
                                   socket.SOCK_STREAM, 0,
                                   socket.AI_ADDRCONFIG if not family else 0)
    except socket.gaierror as e:
        nodata = getattr(socket, "EAI_NODATA", socket.EAI_NONAME)
        raise LookupError("not found" if e.errno in (socket.EAI_NONAME, nodata)
                          else "failure") from None
    out = [i[4][0] for i in infos if i[0] in (socket.AF_INET, socket.AF_INET6)]
    if not out:
        raise LookupError("not found")
    return list(dict.fromkeys(out))


def _ask_all(o: Options, addresses: list[str], port: int) -> bool:
    """The SOA asked of every address at once (no recursion, one try each, as dig's
    +nssearch), each outcome printed as it comes; whether any server replied."""
    import dns.rdatatype
    lock = threading.Lock()
    replied = []
    soa = replace(o, rdtype="SOA", rec=False)

    def one(addr: str) -> None:
        q = make_query(soa)
        t0, sent_at = time.monotonic(), time.time()
        try:
            r, proto = ask(q, o, addr, addr, port)
        except network_errors() as e:
            if not o.yaml:                # as dig: +yaml leaves its warnings out
                if isinstance(e, ConnectFailed):     # no packet went: said as dig says it
                    what = "UDP setup with" if isinstance(e, UdpSetupFailed) else "Connection to"
                    said = (f";; {what} {addr}#{port}({addr}) for {o.name or '.'} failed: "
                            f"{error_text(e)}.")
                else:
                    said = f";; communications error to {addr}#{port}: {error_text(e)}"
                with lock:
                    print(said, flush=True)
            return
        ms = (time.monotonic() - t0) * 1000
        lines = [f"{dns.rdatatype.to_text(rrset.rdtype)} {rdata_text(rd, o)} from server "
                 f"{addr} in {ms:.0f} ms.\n" for rrset in r.answer for rd in rrset]
        if o.yaml:                        # as dig: the reply's header, then its lines
            lines.insert(0, yaml_message(
                r, replace(o, short=True), sending=False, address=addr, port=port,
                proto=proto, size=len(getattr(r, "wire", None) or r.to_wire()),
                sent_at=sent_at, received_at=time.time(), sent_cookie=cookie_of(q)))
        with lock:
            replied.append(addr)
            sys.stdout.write("".join(lines))
            sys.stdout.flush()

    threads = [threading.Thread(target=one, args=(a,), daemon=True) for a in addresses]
    for t in threads:
        t.start()
    for t in threads:
        t.join(o.timeout * 3 + 10)        # ask() is bounded by o.timeout (TCP: twice)
    if not replied:
        sys.stdout.write(error_line(o, "NS servers could not be reached"))
        sys.stdout.flush()
    return bool(replied)

