"""A local zone's CNAME as Unbound answers it: a ``redirect`` zone's, asked for another
type, is followed (Unbound's local alias: the CNAME, then what its target resolves to,
the target not asked of the local zones; AA set; a ``*`` first label of the target takes
the question's name); a ``static`` zone's is the answer alone; local data does not answer
ANY. The daemon and the real Unbound, given the same unbound.conf lines and the same lab,
asked the same questions over UDP and then over TCP (the second round from the caches):
the same rcode, AA bit and sections; and a response policy's triggers on a local alias."""
from __future__ import annotations

import dns.flags
import dns.message
import dns.query
import dns.rcode

CONF = """
  local-zone: "safe.test." redirect
  local-data: "safe.test. CNAME www.example.com."
  local-zone: "chain.test." redirect
  local-data: "chain.test. 120 CNAME alias.example.com."
  local-zone: "gone.test." redirect
  local-data: "gone.test. CNAME dangling.example.com."
  local-zone: "w.test." redirect
  local-data: "w.test. CNAME *.wild.example.com."
  local-zone: "lame.test." redirect
  local-data: "lame.test. CNAME www.alllame.com."
  local-zone: "net.test." redirect
  local-data: "net.test. CNAME www.example.net."
  local-zone: "www.example.net." static
  local-data: "www.example.net. A 10.9.9.9"
  local-zone: "static.test." static
  local-data: "a.static.test. CNAME b.static.test."
  local-data: "b.static.test. A 10.0.0.2"
  local-data: 'b.static.test. TXT "t"'
"""
QUESTIONS = [("x.safe.test.", "A"), ("safe.test.", "AAAA"), ("X.Safe.test.", "CNAME"),
             ("safe.test.", "TXT"), ("a.chain.test.", "A"), ("gone.test.", "A"),
             ("a.w.test.", "A"), ("a.w.test.", "TXT"), ("lame.test.", "A"),
             ("net.test.", "A"), ("www.example.net.", "A"), ("a.static.test.", "A"),
             ("b.static.test.", "ANY"), ("b.static.test.", "TXT")]


def said(port: int, name: str, rdtype: str, tcp: bool, rd: bool = True) -> tuple:
    """What a server on 127.0.0.1 at ``port`` answers (to a query with RD set or clear):
    rcode, AA, AD, the question, and the answer and authority sections as (owner, type,
    sorted data), TTLs aside (the caches count them down)."""
    ask = dns.query.tcp if tcp else dns.query.udp
    q = dns.message.make_query(name, rdtype)
    if not rd:
        q.flags &= ~dns.flags.RD
    r = ask(q, "127.0.0.1", port=port, timeout=5)

    def section(rrsets):
        return [(s.name.to_text(), s.rdtype, sorted(rd.to_text() for rd in s))
                for s in rrsets]

    return (dns.rcode.to_text(r.rcode()), bool(r.flags & dns.flags.AA),
            bool(r.flags & dns.flags.AD), r.question[0].to_text(), section(r.answer),
            section(r.authority))


def test_local_cnames_are_answered_as_unbound_answers_them(tmp_path):
    from ci_policy import installed
    from daemon_proc import beside_unbound

    installed("unbound", "unbound")
    conf = tmp_path / "alias.conf"
    conf.write_text("server:\n" + CONF)
    with beside_unbound(tmp_path, "--config", str(conf), unbound_extra=CONF) as (ub, d):
        for tcp in (False, True):           # the second round (TCP): from the caches
            ours, theirs = ({q: said(port, *q, tcp) for q in QUESTIONS}
                            for port in (d.port, ub.port))
            assert ours == theirs, {q: (ours[q], theirs[q]) for q in ours
                                    if ours[q] != theirs[q]}
        # RD clear: no recursion for the alias's target, even one the cache holds
        probes = [("y.safe.test.", "A"), ("y.safe.test.", "MX")]
        probed = [{q: said(port, *q, False, rd=False) for q in probes}
                  for port in (d.port, ub.port)]
        assert probed[0] == probed[1], probed
    assert probed[0][("y.safe.test.", "A")][0] == "REFUSED"
    # what the two agree on, so that they are not agreeing on something else
    www = ["192.0.2.1", "192.0.2.11"]
    assert ours[("x.safe.test.", "A")] == (
        "NOERROR", True, False, "x.safe.test. IN A",
        [("x.safe.test.", 5, ["www.example.com."]), ("www.example.com.", 1, www)], [])
    assert ours[("X.Safe.test.", "CNAME")][4] == [("X.Safe.test.", 5, ["www.example.com."])]
    assert ours[("a.chain.test.", "A")][4] == [
        ("a.chain.test.", 5, ["alias.example.com."]),
        ("alias.example.com.", 5, ["www.example.com."]), ("www.example.com.", 1, www)]
    assert ours[("gone.test.", "A")][:2] == ("NXDOMAIN", True)
    assert ours[("a.w.test.", "A")][4][-1] == ("a.w.test.wild.example.com.", 1,
                                              ["192.0.2.80"])
    assert ours[("lame.test.", "A")] == ("SERVFAIL", False, False, "lame.test. IN A", [], [])
    assert ours[("net.test.", "A")][4][-1] == ("www.example.net.", 1, ["198.51.100.1"])
    assert ours[("www.example.net.", "A")][4] == [("www.example.net.", 1, ["10.9.9.9"])]
    assert ours[("a.static.test.", "A")][4] == [("a.static.test.", 5, ["b.static.test."])]
    assert ours[("b.static.test.", "ANY")][:2] == ("NOERROR", True)
    assert ours[("b.static.test.", "ANY")][4] == []


#: a policy with a QNAME trigger on a local alias's name, one on another alias's target,
#: and response-IP triggers on the addresses two other aliases' targets resolve to
RPZ = ("$TTL 60\n@ SOA ns.p.rpz. hostmaster.p.rpz. 1 3600 600 86400 30\n@ NS ns.p.rpz.\n"
       "www.example.com CNAME .\nsafe.test CNAME *.\n"
       "32.1.100.51.198.rpz-ip CNAME .\n32.2.2.0.192.rpz-ip A 10.0.0.1\n")
RPZ_LINES = ['  local-zone: "safe.test." redirect',
             '  local-data: "safe.test. CNAME www.example.com."',
             '  local-zone: "net.test." redirect',
             '  local-data: "net.test. CNAME www.example.net."',
             '  local-zone: "v4.test." redirect',
             '  local-data: "v4.test. CNAME v4only.example.com."',
             '  module-config: "respip iterator"']
RPZ_QUESTIONS = [("x.safe.test.", "A"), ("safe.test.", "A"), ("net.test.", "A"),
                 ("v4.test.", "A"), ("www.example.com.", "A")]


def test_the_response_policy_meets_a_local_alias_as_unbounds(tmp_path):
    """The QNAME triggers on the query's name (not on the alias's target), the response-IP
    triggers on the target's answer, answered after the alias's CNAME. The authority
    section is left out of the comparison: the policy's negative answers carry its SOA
    (COMPATIBILITY.md)."""
    from ci_policy import installed
    from daemon_proc import beside_unbound

    installed("unbound", "unbound")
    path = tmp_path / "p.rpz.zone"
    path.write_text(RPZ)
    lines = [*RPZ_LINES, "rpz:", "  name: p.rpz.", f'  zonefile: "{path}"']
    conf = tmp_path / "alias-rpz.conf"
    conf.write_text("server:\n" + "\n".join(lines) + "\n")
    with beside_unbound(tmp_path, "--config", str(conf),
                        unbound_extra="\n".join(lines)) as (ub, d):
        for tcp in (False, True):
            ours, theirs = ({q: said(port, *q, tcp)[:5] for q in RPZ_QUESTIONS}
                            for port in (d.port, ub.port))
            assert ours == theirs, {q: (ours[q], theirs[q]) for q in ours
                                    if ours[q] != theirs[q]}
    assert ours[("x.safe.test.", "A")][4][-1] == ("www.example.com.", 1,
                                                 ["192.0.2.1", "192.0.2.11"])
    assert ours[("safe.test.", "A")] == ("NOERROR", True, False, "safe.test. IN A", [])
    assert ours[("net.test.", "A")] == ("NXDOMAIN", True, False, "net.test. IN A",
                                        [("net.test.", 5, ["www.example.net."])])
    assert ours[("www.example.com.", "A")][0] == "NXDOMAIN"
    assert ours[("v4.test.", "A")][4] == [("v4.test.", 5, ["v4only.example.com."]),
                                          ("v4only.example.com.", 1, ["10.0.0.1"])]
