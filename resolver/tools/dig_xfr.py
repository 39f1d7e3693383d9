"""dig's zone transfers: ``axfr`` and ``ixfr=SERIAL`` asked over TCP, the records of each
message printed as they come (no header, no question unless +comments or +question are
given), then dig's statistics with the transfer's size; "; Transfer failed." when the
server refuses."""
from __future__ import annotations

import struct
import sys
import time
from dataclasses import replace

from resolver.tools.dig_exchange import ConnectFailed, connected, network_errors, \
    read_exactly, say_lost
from resolver.tools.dig_options import EXIT_NO_ANSWER, EXIT_OK, Options
from resolver.tools.dig_output import cookie_of, error_line, render, tsig_warning
from resolver.tools.dig_yaml import yaml_message

#: the most messages one transfer is read for (a server that never ends it)
MAX_MESSAGES = 100_000


def xfr_view(o: Options) -> Options:
    """``o`` as dig shows a transfer: without the comments and the question unless given
    as +comments or +question."""
    return replace(o, show=dict(o.show, comments=o.show["comments"] and "comments" in o.told,
                                question=o.show["question"] and "question" in o.told))


class _End:
    """Where a transfer ends, as dig finds it: an AXFR (or an IXFR answered with the whole
    zone) at the SOA that repeats the first one's serial; an incremental IXFR at the third
    SOA with the first one's serial (the last difference's, then the end); an IXFR at once
    when the first SOA's serial is not above the one asked."""

    def __init__(self, ixfr_serial: int | None) -> None:
        self.ixfr_serial = ixfr_serial
        self.first: int | None = None
        self.incremental = False
        self.seen = 0
        self.count = 0

    def record(self, rrset) -> bool:
        """Counts one record; whether the transfer is complete with it."""
        import dns.rdatatype
        self.count += 1
        soa = rrset.rdtype == dns.rdatatype.SOA
        serial = rrset[0].serial if soa else None
        if self.count == 1:
            self.first, self.seen = serial, 1
            return (self.ixfr_serial is not None and serial is not None
                    and _serial_le(serial, self.ixfr_serial))
        if self.count == 2:     # an older SOA second: the differences follow
            self.incremental = self.ixfr_serial is not None and soa and serial != self.first
        if soa and serial == self.first:
            self.seen += 1
            return self.seen == (3 if self.incremental else 2)
        return False


def _serial_le(a: int, b: int) -> bool:
    """RFC 1982: serial ``a`` is not above ``b``."""
    return a == b or (b - a) % (1 << 32) < (1 << 31)


def transfer(q, o: Options, servers, port: int, banner: list[str], sent=None,
             error_banner: str = "") -> int:
    """``q`` (AXFR or IXFR) asked of ``servers`` over TCP, the transfer printed as dig
    prints it; the exit status. A lost try is said and the transfer started again from
    the first server while tries are left, then the next server is asked, as dig's look-up
    over TCP (:func:`exchange`). ``banner``: [the command lines not printed yet];
    ``sent(address, protocol)`` is called as the query goes; ``error_banner``: the command
    lines printed before dig's error only."""
    left, i = o.tries, 0
    while i < len(servers):
        addr, name = servers[i]
        try:
            return _transfer_from(q, o, addr, name, port, banner, sent)
        except network_errors() as e:
            connect = isinstance(e, ConnectFailed)
            say_lost(o, e, addr, port)
            if left > 1:
                left -= 1
                if connect:              # dig's error, though it tries again
                    sys.stdout.write(error_line(o, "no servers could be reached"))
                i = 0
                continue
            if i + 1 < len(servers):
                i += 1
                continue
            if connect:
                sys.stdout.write(error_line(o, "no servers could be reached"))
                return EXIT_NO_ANSWER
            break
    sys.stdout.write(banner[0] + error_banner + error_line(o, "no servers could be reached"))
    return EXIT_NO_ANSWER


def _transfer_from(q, o: Options, addr: str, name: str, port: int, banner: list[str],
                   sent) -> int:
    """The transfer from one server, printed as dig prints it (+onesoa: without the SOA
    that ends it), the server's refusal as "; Transfer failed."; raises as the try is
    lost."""
    import dns.query
    import dns.rcode
    import dns.rdatatype
    view = xfr_view(o)
    shown = replace(view, show=dict(view.show, stats=False))
    ixfr = bool(q.question) and q.question[0].rdtype == dns.rdatatype.IXFR
    t0, sent_at = time.monotonic(), time.time()
    end = _End(q.authority[0][0].serial if ixfr and q.authority else None)
    messages = size = 0
    tsig_ctx = None                       # the signatures' running context (-y, -k)
    with connected(o, addr, port) as sock:
        sock.setblocking(False)
        if sent is not None:
            sent(addr, "TCP")
        dns.query.send_tcp(sock, q, time.time() + o.timeout)
        done = False
        while not done and messages < MAX_MESSAGES:
            expiration = time.time() + o.timeout
            length = int.from_bytes(read_exactly(sock, 2, expiration), "big")
            wire = read_exactly(sock, length, expiration)
            m = _message(q, wire)
            if q.had_tsig:
                from resolver.tools.dig_tsig import check
                tsig_ctx = check(q, m, wire, tsig_ctx, first=messages == 0, xfr=True)
            messages, size = messages + 1, size + len(wire)
            failed = m.rcode() != dns.rcode.NOERROR
            for at, rrset in enumerate(m.answer):
                if end.record(rrset):
                    done = True
                    if o.onesoa and end.count > 1 and rrset.rdtype == dns.rdatatype.SOA:
                        m.answer = m.answer[:at]         # dig's +onesoa
                    break
            text = (yaml_message(m, view, sending=False, address=addr, port=port,
                                 proto="TCP", size=len(wire), sent_at=sent_at,
                                 received_at=time.time(), sent_cookie=cookie_of(q))
                    if o.yaml else render(m, shown, elapsed=None, server="", size=len(wire)))
            sys.stdout.write(banner[0] + text + ("; Transfer failed.\n" if failed else ""))
            banner[0] = ""
            sys.stdout.flush()
            if failed:
                return EXIT_OK
    if view.show["stats"] and not (view.short or view.yaml):
        sys.stdout.write(
            f";; Query time: {(time.monotonic() - t0) * 1000:.0f} msec\n"
            f";; SERVER: {addr}#{port}({name}) (TCP)\n"
            f";; WHEN: {time.strftime('%a %b %d %H:%M:%S %Z %Y')}\n"
            f";; XFR size: {end.count} records (messages {messages}, bytes {size})\n"
            + tsig_warning(o) + "\n")
    return EXIT_OK


def _message(q, wire: bytes):
    """One message of the transfer, its records one to an rrset in the order they came;
    a reply that is not ``q``'s is a failed try."""
    import dns.message
    import dns.query
    m = dns.message.from_wire(wire, xfr=True, one_rr_per_rrset=True, ignore_trailing=True,
                              keyring=False)
    if m.id != q.id:
        raise dns.query.BadResponse
    m.wire = wire
    m.wire_counts = struct.unpack("!HHHH", wire[4:12])   # as its header says (+onesoa)
    return m
