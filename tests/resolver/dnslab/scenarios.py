"""Ready-made fake-server scripts for the ``fault.`` TLD the lab delegates to its fake slots.

The root of the lab delegates ``fault.`` to ns1.fault. (``zones.FAKE_TLD_1``) and ns2.fault.
(``zones.FAKE_TLD_2``), where tests start ``dnslab.fake`` servers. ``FAULT_ZONE`` is what a
healthy server there serves; the helpers below turn it into faulty behaviours.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable

import dns.message
import dns.rcode
import dns.rrset

from . import zones as Z
from .authority import ZoneAuthority, response
from .fake import Close, CloseMidFrame, Garbage, Reply, Seen, Silence

FAULT_ZONE = f"""
@ 300 IN SOA ns1.fault. hostmaster.fault. 1 3600 600 86400 60
@ 300 IN NS ns1.fault.
@ 300 IN NS ns2.fault.
ns1 300 IN A {Z.FAKE_TLD_1}
ns2 300 IN A {Z.FAKE_TLD_2}
www 300 IN A 192.0.2.7
www 300 IN AAAA 2001:db8:7::7
www 300 IN TXT "fault"
"""
# n000..n099.fault.: distinct names, so each resolution asks the server again
FAULT_ZONE += "".join(f"n{i:03d} 300 IN A 192.0.2.{i % 250 + 1}\n" for i in range(100))

WWW = "www.fault."
WWW_A = "192.0.2.7"
SPOOF_A = "192.0.2.66"  # what spoofed replies claim; a correct resolver never returns it


def fault_authority(extra: str = "") -> ZoneAuthority:
    return ZoneAuthority.from_text("fault.", FAULT_ZONE + extra)


def spoofed(seen: Seen) -> dns.message.Message:
    """An authoritative-looking answer with the wrong data for the question asked."""
    q = seen.message.question[0]
    return response(seen.message, answer=[f"{q.name} 300 IN A {SPOOF_A}"])


def compression_loop(seen: Seen) -> bytes:
    """A reply (right ID and question) whose answer owner name is a pointer to itself."""
    qlen = len(seen.message.question[0].name.to_wire()) + 4
    head = seen.wire[:2] + b"\x84\x00" + b"\x00\x01\x00\x01\x00\x00\x00\x00"
    off = 12 + qlen
    owner = bytes([0xC0 | (off >> 8), off & 0xFF])
    rr = owner + b"\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04\xc0\x00\x02\x42"
    return head + seen.wire[12:off] + rr


def oversized(seen: Seen, auth: ZoneAuthority) -> bytes:
    """The right answer padded with records to ~8 KB, sent over UDP regardless of the
    query's buffer size (a server ignoring EDNS): use it or drop it, never crash."""
    r = auth(seen.message)
    pad = dns.rrset.from_text_list("pad.fault.", 300, "IN", "TXT", [f'"{i:03d}{"p" * 60}"' for i in range(120)])
    r.additional.append(pad)
    return r.to_wire(max_size=65535)


# Faults that make one reply useless, each as a function of the query.
FAULTS: dict[str, Callable[[Seen, ZoneAuthority], object]] = {
    "silence": lambda s, a: Silence(),
    "garbage": lambda s, a: Garbage(b"\x17\x2a garbage \xff" * 5),
    "short": lambda s, a: Garbage(s.wire[:5]),
    "header only": lambda s, a: Garbage(s.wire[:2] + b"\x84\x00" + b"\x00" * 8),
    "wrong id": lambda s, a: Reply(spoofed(s), wrong_id=True),
    "wrong question name": lambda s, a: Reply(spoofed(s), wrong_question="name"),
    "wrong question type": lambda s, a: Reply(spoofed(s), wrong_question="type"),
    "wrong question case": lambda s, a: Reply(spoofed(s), wrong_question="case"),
    "other address": lambda s, a: Reply(spoofed(s), from_address=Z.FAKE_MIXED),
    "compression loop": lambda s, a: Reply(compression_loop(s)),
    "truncated record": lambda s, a: Garbage(a(s.message).to_wire()[:-3]),
    "oversized udp": lambda s, a: Reply(oversized(s, a)) if s.transport == "udp" else a(s.message),
    "servfail": lambda s, a: response(s.message, rcode=dns.rcode.SERVFAIL, aa=False),
    "refused": lambda s, a: response(s.message, rcode=dns.rcode.REFUSED, aa=False),
    "lame (no AA, no referral)": lambda s, a: response(s.message, aa=False),
    "tc then tcp close mid-frame": lambda s, a: (
        Reply(a(s.message), tc=True) if s.transport == "udp" else CloseMidFrame(a(s.message))),
    "tc then tcp close": lambda s, a: (
        Reply(a(s.message), tc=True) if s.transport == "udp" else Close()),
}
# Faults that arrive *before* a correct reply to the same query: the resolver must skip
# them and take the real one (the "spoof race"). A reply that matches the query (address,
# ID, question) but does not parse, as "compression loop", may instead end the exchange
# as a failure: the issue allows an answer from another server or a SERVFAIL there.
SPOOFS = ("garbage", "short", "header only", "wrong id", "wrong question name",
          "wrong question type", "wrong question case", "other address")


def faulty_first(fault: str, auth: ZoneAuthority, n: int = 1):
    """A handler (share it between both fault slots) that answers the first ``n`` queries
    with ``fault`` and every later one correctly."""
    counter = itertools.count()
    make = FAULTS[fault]

    def handler(seen: Seen):
        if seen.message is None:
            return None
        if next(counter) < n:
            return make(seen, auth)
        return auth(seen.message)

    return handler


def always(fault: str, auth: ZoneAuthority):
    make = FAULTS[fault]
    return lambda seen: make(seen, auth) if seen.message is not None else None


def spoof_then_real(fault: str, auth: ZoneAuthority, delay: float = 0.02):
    """Every query gets ``fault`` at once and the correct reply ``delay`` seconds later
    (well inside the resolver's shortest timeout, limits.min_rto)."""
    make = FAULTS[fault]

    def handler(seen: Seen):
        if seen.message is None:
            return None
        return [make(seen, auth), Reply(auth(seen.message), delay=delay)]

    return handler
