"""``rrset-roundrobin`` as Unbound's: the encoder (``resolver.cache.answer``) rotates the
addresses of each A and AAAA rrset of a cached answer by the query's ID, touching nothing
else; and the daemon, beside the real Unbound over the same NSD, hands out every address
first, each answer a rotation of the one cycle both hold."""
from __future__ import annotations

import time

import dns.message
import dns.query
import dns.rdatatype
import dns.rrset
import pytest

from ci_policy import installed
from daemon_proc import Daemon
from dnslab.nsd import nsd_on_loopback
from ports import pick_port
from procs import stop as stop_process
from resolver.cache.answer import answer_from_entry, set_rrset_roundrobin
from resolver.wire.codec import MsgEntry

ADDRS = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
V6 = ["2001:db8::1", "2001:db8::2"]


def cached(qname="www.example.", rdtype="A"):
    """A cached answer: a CNAME, a three-address A rrset, an MX rrset, a two-address AAAA
    rrset of another owner, and an authority NS."""
    q = dns.message.make_query(qname, rdtype)
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("www.example.", 60, "IN", "CNAME", "host.example."))
    r.answer.append(dns.rrset.from_text_list("host.example.", 60, "IN", "A", ADDRS))
    r.answer.append(dns.rrset.from_text_list("host.example.", 60, "IN", "MX",
                                             ["10 a.example.", "20 b.example."]))
    r.answer.append(dns.rrset.from_text_list("v6.example.", 60, "IN", "AAAA", V6))
    r.authority.append(dns.rrset.from_text_list("example.", 60, "IN", "NS",
                                                ["a.example.", "b.example."]))
    return q, MsgEntry(r.to_wire(want_shuffle=False), time.monotonic(), 0.0, 86400)


def encoded(qid: int):
    q, e = cached()
    q.id = qid
    wire = q.to_wire()
    out = dns.message.from_wire(answer_from_entry(e, wire, e.qend, time.monotonic()))
    return out


def order(msg, rdtype):
    return [[rd.to_text() for rd in rrset] for rrset in msg.answer
            if rrset.rdtype == dns.rdatatype.from_text(rdtype)][0]


@pytest.fixture
def roundrobin():
    set_rrset_roundrobin(True)
    yield
    set_rrset_roundrobin(False)


def test_addresses_rotate_by_the_query_id_and_nothing_else_moves(roundrobin):
    for qid in range(6):
        out = encoded(qid)
        assert out.id == qid
        assert order(out, "A") == ADDRS[qid % 3:] + ADDRS[:qid % 3]
        assert order(out, "AAAA") == V6[qid % 2:] + V6[:qid % 2]
        assert order(out, "MX") == ["10 a.example.", "20 b.example."]
        assert order(out, "CNAME") == ["host.example."]
        assert [rd.to_text() for rd in out.authority[0]] == ["a.example.", "b.example."]


@pytest.fixture
def roundrobin_off():
    # the setting is the process's: a daemon Server another test made in this process
    # turned it on (its default)
    set_rrset_roundrobin(False)


def test_off_the_cached_order_stays(roundrobin_off):
    for qid in range(3):
        assert order(encoded(qid), "A") == ADDRS


ZONE = """$TTL 300
@ SOA ns.rr.example. admin.rr.example. 1 3600 600 86400 60
@ NS ns.rr.example.
ns A 127.0.0.1
many A 192.0.2.1
many A 192.0.2.2
many A 192.0.2.3
many A 192.0.2.4
"""


def rotations(cycle):
    return {tuple(cycle[k:] + cycle[:k]) for k in range(len(cycle))}


def test_the_daemon_hands_out_every_address_first_as_unbound(tmp_path):
    from dnslab.unbound import local_unbound, unasked_root_hints

    installed("nsd", "nsd")
    installed("unbound", "unbound")
    nsd = nsd_on_loopback(tmp_path / "nsd", {"rr.example.": ZONE})
    hints = unasked_root_hints(tmp_path / "root.hints")
    (tmp_path / "unbound").mkdir()
    uport = pick_port(["127.0.0.1"])
    proc = local_unbound(tmp_path / "unbound", uport, [
        f'root-hints: "{hints}"', "do-not-query-localhost: no", "rrset-roundrobin: yes",
        "stub-zone:", '  name: "rr.example."', f"  stub-addr: 127.0.0.1@{nsd.port}"])
    conf = tmp_path / "corenet-resolver.toml"
    conf.write_text(f'do-not-query-localhost = false\nrrset-roundrobin = true\n'
                    f'[[stub-zone]]\nname = "rr.example."\n'
                    f'stub-addr = ["127.0.0.1@{nsd.port}"]\n')
    d = Daemon(tmp_path / "d", None, "--config", str(conf), "--root-hints", str(hints))
    try:
        d.start()
        seen = {}
        for port in (uport, d.port):
            orders = set()
            for qid in range(1, 41):
                q = dns.message.make_query("many.rr.example.", "A")
                q.id = qid
                r = dns.query.udp(q, "127.0.0.1", port=port, timeout=5)
                orders.add(tuple(rd.address for rd in r.answer[0]))
            seen[port] = orders
        theirs, ours = seen[uport], seen[d.port]
        assert len(theirs) == 4 and theirs == rotations(list(next(iter(theirs))))
        assert ours == theirs              # every rotation of the same cycle
    finally:
        d.stop()
        stop_process(proc, 5.0, group=True)
        nsd.signal_stop()
        nsd.wait_stopped(time.monotonic() + 5)
