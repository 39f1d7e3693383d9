"""The response policy side by side with Unbound: both resolve the lab (on port 53, where
Unbound asks; its cross-zone CNAME chains among it) under the same two policy zones, in the
same order, and give the same rcode, RA and AA flags and answer section (names, types,
data; TTLs aside, but for the records the policy writes) for a trigger on the query's
name, on a chain's name or on an answer's address answering NXDOMAIN, NODATA, local data
or a CNAME rewrite (its target resolved), and a PASSTHRU on a chain's name in the first
zone where the second zone would block. Each name is asked of corenet-resolver again,
answered from its cache: the same answer. A trigger met within a chain whose resolution
fails (too long to finish, a loop) answers as Unbound's too; without one both give
SERVFAIL with no record (the last name such a chain reaches: ``test_rpz_unbound_limit.py``).

Local zones come before the policy, as in Unbound: a name a local zone answers (its local
data, a static zone's NXDOMAIN) meets no trigger, while a transparent zone's name without
local data is resolved, and so meets the policy."""
from __future__ import annotations

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from daemon_proc import beside_unbound

HEAD = """$TTL 60
@ SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 30
@ NS ns.{origin}
"""
ALLOW = "chain8-01.example.net CNAME rpz-passthru.\nchain20-01.example.net CNAME rpz-passthru.\n"
BLOCK = """chain8-04.example.com CNAME .
nothing.example.net CNAME *.
www.example.net A 203.0.113.7
chain8-01.example.net CNAME .
host.corp.test CNAME .
nothere.corp.test A 203.0.113.9
a.open.test CNAME .
b.open.test A 203.0.113.8
nx1.example.com CNAME .
ld1.example.com A 203.0.113.5
cn1.example.com CNAME www.example.net.
chain20-14.example.com CNAME www.example.com.
chain20-12.example.com CNAME .
32.7.0.1.10.rpz-ip CNAME www.example.com.
chain20-07.example.net CNAME .
loop2.example.net CNAME .
"""
#: local zones on both servers, some of their names under rules of BLOCK
LOCAL = (("corp.test.", "static", "host.corp.test. 300 IN A 10.1.2.3"),
         ("open.test.", "transparent", "a.open.test. 300 IN A 10.2.2.2"))
ZONES = (("allow.rpz.", ALLOW), ("block.rpz.", BLOCK))


def _chain(start: int, upto: int, n: int = 8) -> list[tuple[str, str, str]]:
    """The CNAMEs of the lab's chain``n`` from link ``start`` up to link ``upto``."""
    zone = ("example.com.", "example.net.")
    return [(f"chain{n}-{i:02d}.{zone[i % 2]}", "CNAME",
             f"chain{n}-{i + 1:02d}.{zone[(i + 1) % 2]}") for i in range(start, upto)]


#: name asked (A), the rcode and answer both servers give
CASES = {
    "nxdomain": ("chain8-02.example.com.", "NXDOMAIN", _chain(2, 4)),
    "nodata": ("dangling.example.com.", "NOERROR",
               [("dangling.example.com.", "CNAME", "nothing.example.net.")]),
    "local-data": ("xalias.example.com.", "NOERROR",
                   [("xalias.example.com.", "CNAME", "www.example.net."),
                    ("www.example.net.", "A", "203.0.113.7")]),
    # chain8-01 passes in the first zone: its block in the second, and chain8-04's, not applied
    "passthru": ("chain8-00.example.com.", "NOERROR",
                 _chain(0, 8) + [("chain8-08.example.com.", "A", "192.0.2.108")]),
    # triggers on the query's own name
    "qname-nxdomain": ("nx1.example.com.", "NXDOMAIN", []),
    "qname-local-data": ("ld1.example.com.", "NOERROR", [("ld1.example.com.", "A",
                                                          "203.0.113.5")]),
    # the rewrite's target is resolved, not checked again (its rule in BLOCK not applied)
    "qname-cname": ("cn1.example.com.", "NOERROR", [("cn1.example.com.", "CNAME",
                                                     "www.example.net."),
                                                    ("www.example.net.", "A", "198.51.100.1")]),
    # a CNAME rewrite met down the chain: the rewrite's target resolved after it
    # (chain20: a chain no other case has Unbound cache, as Unbound checks a cached chain
    # no more)
    "chain-cname": ("chain20-13.example.net.", "NOERROR",
                    [("chain20-13.example.net.", "CNAME", "chain20-14.example.com."),
                     ("chain20-14.example.com.", "CNAME", "www.example.com."),
                     ("www.example.com.", "A", "192.0.2.1"),
                     ("www.example.com.", "A", "192.0.2.11")]),
    # a CNAME rewrite on a response-IP trigger (h007.bulk.net's 10.1.0.7): resolved too
    "response-ip-cname": ("h007.bulk.net.", "NOERROR",
                          [("h007.bulk.net.", "CNAME", "www.example.com."),
                           ("www.example.com.", "A", "192.0.2.1"),
                           ("www.example.com.", "A", "192.0.2.11")]),
    # local zones before the policy: their answers stand; a transparent zone's name without
    # data meets the rule
    "local-static-data": ("host.corp.test.", "NOERROR", [("host.corp.test.", "A", "10.1.2.3")]),
    "local-static-nxdomain": ("nothere.corp.test.", "NXDOMAIN", []),
    "local-transparent-data": ("a.open.test.", "NOERROR", [("a.open.test.", "A", "10.2.2.2")]),
    "local-transparent-policy": ("b.open.test.", "NOERROR", [("b.open.test.", "A",
                                                              "203.0.113.8")]),
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rpz-vs-unbound")
    files = []
    for origin, records in ZONES:
        path = tmp / f"{origin}zone"
        path.write_text(HEAD.format(origin=origin) + records)
        files.append((origin, path))
    conf = tmp / "rpz.toml"
    conf.write_text("".join(f'[[rpz]]\nname = "{origin}"\nzonefile = "{path}"\n'
                            for origin, path in files)
                    + "".join(f'[[local-zone]]\nname = "{name}"\ntype = "{kind}"\n'
                              f'local-data = ["{data}"]\n' for name, kind, data in LOCAL))
    ub_rpz = ['  module-config: "respip iterator"']
    for name, kind, data in LOCAL:
        ub_rpz += [f'  local-zone: "{name}" {kind}', f'  local-data: "{data}"']
    for origin, path in files:
        ub_rpz += ["rpz:", f"  name: {origin}", f'  zonefile: "{path}"']
    with beside_unbound(tmp, "--config", str(conf), unbound_extra="\n".join(ub_rpz)) as pair:
        yield pair

def _ttls(msg) -> dict[tuple[str, str], int]:
    """The TTLs of the records the policy writes (those from authorities count down)."""
    return {(rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype)): rrset.ttl
            for rrset in msg.answer
            if rrset.name.to_text().lower().startswith(("cn1.", "ld1.", "h007.", "chain20-14."))}


def _answer(msg) -> list[tuple[str, str, str]]:
    return [(rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype), rd.to_text())
            for rrset in msg.answer for rd in sorted(rrset, key=lambda rd: rd.to_text())]


def side_by_side(ub, d, case: str, q, rcode: str, answer: list):
    """``q`` asked of Unbound ``ub`` and the daemon ``d``: Unbound gives ``rcode`` and
    ``answer``, and ours the same rcode and answer section. (ours, theirs, both shown)."""
    theirs = dns.query.udp(q, ub.address, port=ub.port, timeout=10)
    ours = dns.query.udp(q, "127.0.0.1", port=d.port, timeout=10)
    shown = f"{case}\nours:\n{ours}\nunbound:\n{theirs}"
    assert dns.rcode.to_text(theirs.rcode()) == rcode, shown
    assert _answer(theirs) == answer, shown
    assert ours.rcode() == theirs.rcode(), shown
    assert _answer(ours) == _answer(theirs), shown
    return ours, theirs, shown


@pytest.mark.parametrize("case", list(CASES))
def test_a_trigger_on_a_cname_chains_name_answers_as_unbound(pair, case):
    ub, d = pair
    name, rcode, answer = CASES[case]
    q = dns.message.make_query(name, "A")
    ours, theirs, shown = side_by_side(ub, d, case, q, rcode, answer)
    assert _ttls(ours) == _ttls(theirs), shown
    for flag in (dns.flags.RA, dns.flags.AA):     # AA: set on what the policy or a local zone
        assert bool(ours.flags & flag) == bool(theirs.flags & flag), shown     # answers
    # Asked again, the answer comes from the cache: the policy still holds (Unbound answers
    # the chain it cached, through the trigger's name, unchanged)
    again = dns.query.udp(q, "127.0.0.1", port=d.port, timeout=10)
    assert again.rcode() == ours.rcode() and _answer(again) == _answer(ours), f"{case}\n{again}"



#: names whose answer the policy writes, each asked of Unbound once (a chain Unbound has
#: cached it checks no more): on the query's name, down a chain, a rewrite, a response IP
HEADER_CASES = {"qname-nxdomain": "nx1.example.com.", "qname-local-data": "ld1.example.com.",
                "qname-cname": "cn1.example.com.", "chain-nxdomain": "chain20-10.example.com.",
                "response-ip-cname": "h007.bulk.net."}


def _header(msg) -> dict:
    """What the encoder writes beside the sections: the question as sent, the flags it
    echoes, EDNS."""
    return {"question": msg.question[0].to_text(), "rd": bool(msg.flags & dns.flags.RD),
            "cd": bool(msg.flags & dns.flags.CD), "edns": msg.edns,
            "payload": msg.payload if msg.edns >= 0 else None,
            "do": bool(msg.ednsflags & dns.flags.DO)}


@pytest.mark.parametrize("case", list(HEADER_CASES))
def test_a_policy_answer_is_written_as_unbound_writes_it(pair, case):
    """The question's case as the client wrote it, RD and CD echoed, EDNS with the server's
    buffer size and DO echoed: the same from both servers, for an answer the policy writes."""
    ub, d = pair
    name = HEADER_CASES[case]
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(name))
    q = dns.message.make_query(mixed, "A", use_edns=0, payload=4000, want_dnssec=True)
    q.flags |= dns.flags.CD
    theirs = dns.query.udp(q, ub.address, port=ub.port, timeout=10)
    ours = dns.query.udp(q, "127.0.0.1", port=d.port, timeout=10)
    shown = f"{case}\nours:\n{ours}\nunbound:\n{theirs}"
    assert _header(theirs)["question"].startswith(mixed), shown
    assert _header(ours) == _header(theirs), shown
    # names compared without case: Unbound's compression points names of the data at the
    # question's, so they take its case
    assert ours.rcode() == theirs.rcode() != dns.rcode.SERVFAIL, shown
    assert ([tuple(f.lower() for f in rr) for rr in _answer(ours)]
            == [tuple(f.lower() for f in rr) for rr in _answer(theirs)]), shown


#: chains whose resolution fails (chain20: 20 links, past max-cname-chain; loop1 <-> loop2):
#: name asked (A), the rcode and answer both servers give. Each asked once of Unbound, in
#: this order (chain20-00 after chain20-04: it follows the links chain20-04 had cached).
FAILING = {
    # link 3 of a chain too long to finish: blocked, after the CNAMEs that lead to it
    "long-nxdomain": ("chain20-04.example.com.", "NXDOMAIN",
                      _chain(4, 7, 20)),
    # a trigger before the link that loops back
    "loop-nxdomain": ("loop1.example.com.", "NXDOMAIN",
                      [("loop1.example.com.", "CNAME", "loop2.example.net.")]),
    # PASSTHRU on the first link ends the policy (chain20-07's block not applied): the chain
    # too long is SERVFAIL, without its records
    "long-passthru": ("chain20-00.example.com.", "SERVFAIL", []),
}


def test_a_trigger_within_a_chain_that_fails_answers_as_unbound(pair):
    """Unbound checks each CNAME target as its iterator follows it, so a trigger met within
    a chain too long to finish, or before a loop, applies; without one the failure is
    SERVFAIL with an empty answer section on both."""
    ub, d = pair
    for case, (name, rcode, answer) in FAILING.items():
        q = dns.message.make_query(name, "A")
        ours, theirs, shown = side_by_side(ub, d, case, q, rcode, answer)
        assert not theirs.authority or ours.authority, shown
        for flag in (dns.flags.RA, dns.flags.AA):
            assert bool(ours.flags & flag) == bool(theirs.flags & flag), shown
        again = dns.query.udp(q, "127.0.0.1", port=d.port, timeout=10)     # from the cache
        assert again.rcode() == ours.rcode() and _answer(again) == _answer(ours), (
            f"{case}\n{again}")

