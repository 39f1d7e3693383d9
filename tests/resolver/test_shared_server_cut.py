"""An unsigned child zone served by the same server as its signed parent (a hosting
provider's): the server answers for the child with AA and never refers, so the iterator
takes the child's data for the parent's. The validator finds the cut the way Unbound's
does, asking the DS of each name below the parent's apex: the parent's signed denial
(NSEC3, an opt-out span here) proves an unsigned delegation, and the answer is insecure,
not bogus, with QNAME minimisation on and off. On the signed fake network: n3.example.com.'s
server (10.0.3.3) serves unsigned.n3.example.com. too (NSEC3, opt-out), and example.com.'s
servers a child of their own (NSEC)."""
from __future__ import annotations

import time

import pytest

from resolver import iterator as itr
from resolver.cache import Cache
from resolver.dnssec import BOGUS, INSECURE, SECURE, Validator
from resolver.dnssec.trust_anchor import load
from resolver.hints import parse_root_hints
from resolver.limits import Limits
from scenario import FakeClock, W, drive, root_hints
from signed_net import signed_world

LIMITS = Limits(exploration=0.0)
A, TXT, DS = 1, 16, 43
N3 = "10.0.3.3"


@pytest.fixture(scope="module")
def world():
    wall = time.time()
    net, anchor, keys = signed_world(wall)
    net.zone("unsigned.n3.example.com.", """
@ 3600 NS ns.n3.example.com.
www 300 A 192.0.2.81
""", [N3])
    return net, anchor, wall


class Run:
    def __init__(self, world, minimise):
        self.net, anchor, wall = world
        self.cache = Cache(1 << 22, LIMITS)
        self.validator = Validator(load(anchor), LIMITS, wallclock=lambda: wall)
        self.clock = FakeClock()
        self.minimise = minimise

    def ask(self, name, qtype):
        it = itr.Iterator(W(name), qtype, 1, self.cache, parse_root_hints(root_hints()),
                          self.clock, limits=LIMITS, dnssec=self.validator,
                          minimise=self.minimise)
        before = len(self.net.log)
        res = drive(it, self.net, self.clock)
        return res, self.net.log[before:]


@pytest.mark.parametrize("minimise", [True, False])
def test_the_unsigned_child_on_the_parents_server_is_insecure(world, minimise):
    run = Run(world, minimise)
    res, log = run.ask("www.unsigned.n3.example.com.", A)
    assert res.rcode == 0 and res.security == INSECURE, res.reason
    assert [r[4] for r in res.answer if r[1] == A] == [bytes([192, 0, 2, 81])]
    assert ("unsigned.n3.example.com.", "DS") in [(q, t) for _a, q, t in log]
    # its negative answers too; the cut is known now: no DS asked again
    res, log = run.ask("nope.unsigned.n3.example.com.", A)
    assert res.rcode == 3 and res.security == INSECURE, res.reason
    assert all(t != "DS" for _a, _q, t in log)
    # the parent's own data stays secure
    res, _log = run.ask("www.n3.example.com.", A)
    assert res.security == SECURE


@pytest.mark.parametrize("minimise", [True, False])
def test_the_same_with_nsec(minimise):
    """example.com. (NSEC) delegates insec.example.com. without DS to its own servers,
    which serve the child too: the NSEC at the cut (NS, no DS) proves it unsigned."""
    wall = time.time()
    net, anchor, keys = signed_world(wall, extra="insec 3600 NS ns1.example.com.\n")
    net.zone("insec.example.com.", """
@ 3600 NS ns1.example.com.
www 300 A 192.0.2.82
""", ["10.0.3.1", "10.0.3.2"])
    run = Run((net, anchor, wall), minimise)
    res, log = run.ask("www.insec.example.com.", A)
    assert res.rcode == 0 and res.security == INSECURE, res.reason
    assert [r[4] for r in res.answer if r[1] == A] == [bytes([192, 0, 2, 82])]
    assert ("insec.example.com.", "DS") in [(q, t) for _a, q, t in log]
    res, _log = run.ask("www.example.com.", A)
    assert res.security == SECURE


def test_unsigned_data_of_the_signed_zone_itself_stays_bogus(world):
    """No cut between the apex and the name (the DS walk finds the parent's NSEC3 of an
    existing name, without NS): unsigned data in the signed zone is still bogus."""
    net = world[0]

    def unsigned(q):
        import dns.message
        net.faults.pop(N3)
        try:
            r = dns.message.from_wire(net.answer(N3, q.to_wire()))
        finally:
            net.log.pop()
            net.faults[N3] = unsigned
        if q.question[0].rdtype == A:
            r.answer = [x for x in r.answer if x.rdtype != 46]
        return r.to_wire()

    net.faults[N3] = unsigned
    try:
        res, _log = Run(world, False).ask("www.n3.example.com.", A)
    finally:
        net.faults.pop(N3, None)
    assert res.security == BOGUS
