"""The answers the daemon's front door makes itself (the ACL's refusals, a cache probe's
refusal, a local zone's answer to a query with RD clear), side by side with a real Unbound
given the same access control, ``nsid`` and ``ede``: the same rcode, the same EDNS options
(Extended DNS Error Prohibited (18) for the ACL's refusals, Not Authoritative (20) for a
probe from a client that may not snoop; the server's identifier on every answer but the
ACL's refusals) and the question echoed; and odd queries (TC set, NOTIFY, zone transfers,
meta types, bad counts) the same rcode, in Unbound's order of checks."""
from __future__ import annotations

import os
import shutil

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import pytest
from ci_policy import unavailable

from daemon_proc import Daemon, udp_exchange
from dnslab.unbound import local_unbound
from ports import free_port
from procs import stop as stop_process

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
NSID, EDE = 3, 15
PROHIBITED, NOT_AUTHORITATIVE = b"\x00\x12", b"\x00\x14"

#: query kinds: (name, RD set)
KINDS = {"local": ("a.test.", True), "remote": ("x.example.", True),
         "probe": ("x.example.", False), "local probe": ("a.test.", False)}


def ask(port: int, kind: str):
    """rcode, the answer's EDNS options (None: no OPT record), questions echoed, RA."""
    name, rd = KINDS[kind]
    q = dns.message.make_query(name, "A", use_edns=0, options=[dns.edns.GenericOption(NSID, b"")])
    if not rd:
        q.flags &= ~dns.flags.RD
    r = dns.query.udp(q, "127.0.0.1", port=port, timeout=5)
    options = None if r.edns < 0 else sorted((int(o.otype), o.to_wire()) for o in r.options)
    return (dns.rcode.to_text(r.rcode()), options, len(r.question),
            bool(r.flags & dns.flags.RA))


# (action, kind) -> what both servers answer; the ACL's refusals leave RA clear
EXPECTED = {
    ("allow", "local"): ("NOERROR", [(NSID, b"r1")], 1, True),
    ("allow", "probe"): ("REFUSED", [(NSID, b"r1"), (EDE, NOT_AUTHORITATIVE)], 1, True),
    ("allow", "local probe"): ("NOERROR", [(NSID, b"r1")], 1, True),
    ("refuse", "local"): ("REFUSED", [(EDE, PROHIBITED)], 1, False),
    ("refuse", "remote"): ("REFUSED", [(EDE, PROHIBITED)], 1, False),
    ("refuse", "probe"): ("REFUSED", [(EDE, PROHIBITED)], 1, False),
    ("refuse_non_local", "local"): ("NOERROR", [(NSID, b"r1")], 1, True),
    ("refuse_non_local", "local probe"): ("NOERROR", [(NSID, b"r1")], 1, True),
}
#: what Unbound 1.17 gets wrong, checked on the daemon alone: its refusal of a non-local
#: name under refuse_non_local with ede on is a FORMERR without question or OPT (a refusal
#: under ``refuse`` is the reference)
DAEMON_ONLY = {
    ("refuse_non_local", "remote"): ("REFUSED", [(EDE, PROHIBITED)], 1, False),
    ("refuse_non_local", "probe"): ("REFUSED", [(EDE, PROHIBITED)], 1, False),
}


def _servers(lab, tmp_path, action: str, ede: bool):
    uport = free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    acl = [] if action == "allow" else [f"access-control: 127.0.0.1/32 {action}"]
    proc = local_unbound(w, uport, ['nsid: "ascii_r1"', f"ede: {'yes' if ede else 'no'}",
                                    "local-zone: test. static",
                                    'local-data: "a.test. A 10.0.0.1"', *acl])
    conf = tmp_path / "resolver.toml"
    conf.write_text(f'nsid = "ascii_r1"\nede = {str(ede).lower()}\n'
                    'local-data = ["a.test. 300 A 10.0.0.1"]\n'
                    + (f'access-control = ["127.0.0.1/32 {action}"]\n' if acl else ""))
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    return proc, uport, d


@pytest.mark.parametrize("action", ["allow", "refuse", "refuse_non_local"])
def test_the_door_s_own_answers_carry_the_options_unbound_s_do(lab, tmp_path, action):
    if not os.path.exists(UNBOUND):
        unavailable(f"{UNBOUND} is missing (Debian package 'unbound')")
    proc, uport, d = _servers(lab, tmp_path, action, True)
    try:
        for (act, kind), want in EXPECTED.items():
            if act == action:
                assert ask(uport, kind) == want, ("unbound", kind)
                assert ask(d.port, kind) == want, ("corenet", kind)
        for (act, kind), want in DAEMON_ONLY.items():
            if act == action:
                assert ask(d.port, kind) == want, ("corenet", kind)
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]


@pytest.mark.parametrize("action", ["allow", "refuse"])
def test_without_ede_a_refusal_says_nothing_of_why(lab, tmp_path, action):
    if not os.path.exists(UNBOUND):
        unavailable(f"{UNBOUND} is missing (Debian package 'unbound')")
    proc, uport, d = _servers(lab, tmp_path, action, False)
    kind = "probe" if action == "allow" else "remote"
    try:
        for who, port in (("unbound", uport), ("corenet", d.port)):
            rcode, options, questions, ra = ask(port, kind)
            assert rcode == "REFUSED", who
            assert EDE not in dict(options or []), (who, options)
            if action == "refuse":      # the header alone: nothing of the query
                assert (options, questions, ra) == (None, 0, False), who
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]


def test_a_local_answer_to_a_probe_fits_the_client_s_udp_size_as_unbound_s(lab, tmp_path):
    """A local zone's answer made by the door (RD clear) is cut to the client's UDP size
    (512 bytes without EDNS, its EDNS size else), TC set, as every other answer."""
    if not os.path.exists(UNBOUND):
        unavailable(f"{UNBOUND} is missing (Debian package 'unbound')")
    addresses = [f"10.0.{i // 250}.{i % 250}" for i in range(60)]      # 986 bytes in all
    uport = free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, [f'local-data: "big.test. A {a}"' for a in addresses])
    conf = tmp_path / "resolver.toml"
    conf.write_text("local-data = [" + ", ".join(f'"big.test. 300 A {a}"' for a in addresses)
                    + "]\n")
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        for payload, fits in ((None, False), (512, False), (1232, True)):
            q = dns.message.make_query("big.test.", "A", use_edns=payload is not None,
                                       payload=payload or 512)
            q.flags &= ~dns.flags.RD
            for who, port in (("unbound", uport), ("corenet", d.port)):
                data = udp_exchange(port, q.to_wire(), 2.0)
                r = dns.message.from_wire(data)
                assert len(data) <= (payload or 512), (who, payload)
                assert bool(r.flags & dns.flags.TC) != fits, (who, payload)
                assert sum(len(rrset) for rrset in r.answer) == (60 if fits else 0), who
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]


def _odd(kind: str) -> bytes:
    """A query for a.test. (x.example. for the ``remote`` kinds) made odd as ``kind`` says."""
    name = "x.example." if kind.endswith("remote") else "a.test."
    edns = 1 if kind.startswith("edns1") else 0 if "edns" in kind else False
    q = dns.message.make_query(name, "A", use_edns=edns)
    w = bytearray(q.to_wire())
    qtype_at = 12 + len(dns.name.from_text(name).to_wire())
    types = {"axfr": 252, "ixfr": 251, "tkey": 249, "meta": 128, "type0": 0}
    for word, t in types.items():
        if word in kind:
            w[qtype_at:qtype_at + 2] = t.to_bytes(2, "big")
    if "tc" in kind.split():
        w[2] |= 0x02
    if "notify" in kind:
        w[2] = (w[2] & 0x87) | (4 << 3)
    if "update" in kind:
        w[2] = (w[2] & 0x87) | (5 << 3)
    if "probe" in kind:
        w[2] &= ~0x01
    if "qd0" in kind:
        w = w[:12]
        w[4:6] = b"\x00\x00"
    if "qd2" in kind:
        w += w[12:]
        w[4:6] = b"\x00\x02"
    if "an1" in kind:
        w[6:8] = b"\x00\x01"
    if "ar2" in kind:               # an OPT, and a second one
        w = bytearray(dns.message.make_query(name, "A", use_edns=0).to_wire())
        w[10:12] = b"\x00\x02"
        w += w[-11:]
    return bytes(w)


def _rcode(port: int, wire: bytes) -> int | None:
    """The answer's rcode, extended (BADVERS) when its OPT record can be read; None: none."""
    data = udp_exchange(port, wire, 2.0)
    if data is None:
        return None
    try:
        return dns.message.from_wire(data).rcode()
    except dns.exception.DNSException:
        return data[3] & 0x0F       # Unbound echoes some bad queries' counts without records


#: odd queries and the rcode both servers give them, Unbound's order of checks: the header
#: (TC, opcode, counts), then zone transfers and meta types, then EDNS, then local zones
ODD = {
    "tc": dns.rcode.FORMERR, "notify": dns.rcode.REFUSED, "update": dns.rcode.NOTIMP,
    "qd0": dns.rcode.FORMERR, "qd2": dns.rcode.FORMERR, "an1": dns.rcode.FORMERR,
    "axfr": dns.rcode.REFUSED, "ixfr": dns.rcode.REFUSED, "axfr remote": dns.rcode.REFUSED,
    "axfr probe": dns.rcode.REFUSED, "edns1 axfr": dns.rcode.REFUSED,
    "tkey": dns.rcode.FORMERR, "meta": dns.rcode.FORMERR, "edns1 meta": dns.rcode.FORMERR,
    "edns1": dns.rcode.BADVERS, "type0": dns.rcode.NOERROR, "edns": dns.rcode.NOERROR,
    "ar2": dns.rcode.FORMERR, "notify qd2": dns.rcode.FORMERR,
}
#: the odd queries rejected for their header or their question's type (Unbound's
#: query_error): RA clear on both servers. Unbound 1.17 echoes the rest of the query;
#: since 1.25 it answers the header alone (the question, for a type refused), as the
#: daemon does: checked on the daemon.
REJECTED = {"tc": 0, "update": 0, "qd0": 0, "qd2": 0, "an1": 0, "ar2": 0, "notify qd2": 0,
            "axfr": 1, "ixfr": 1, "axfr remote": 1, "axfr probe": 1, "edns1 axfr": 1,
            "tkey": 1, "meta": 1, "edns1 meta": 1}


def test_odd_queries_get_the_rcode_unbound_gives_them(lab, tmp_path):
    if not os.path.exists(UNBOUND):
        unavailable(f"{UNBOUND} is missing (Debian package 'unbound')")
    proc, uport, d = _servers(lab, tmp_path, "allow", True)
    try:
        for kind, want in ODD.items():
            wire = _odd(kind)
            assert _rcode(uport, wire) == want, ("unbound", kind)
            assert _rcode(d.port, wire) == want, ("corenet", kind)
            ours = udp_exchange(d.port, wire, 2.0)
            ra = ours[3] & 0x80
            assert ra == udp_exchange(uport, wire, 2.0)[3] & 0x80, kind
            if kind in REJECTED:
                assert not ra, kind
                # the id, QR, opcode, RD and CD; no count but the question's, if any
                assert ours[:2] == wire[:2] and ours[2] == 0x80 | (wire[2] & 0x79), kind
                assert ours[4:] == bytes([0, REJECTED[kind]]) + bytes(6) + (
                    wire[12:12 + len(ours) - 12] if REJECTED[kind] else b""), kind
                assert len(ours) == 12 + (len(wire[12:]) - (11 if "edns" in kind else 0)
                                          if REJECTED[kind] else 0), kind
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]
