"""Unbound's ``do-not-query-address``: networks no query is sent to, whatever a zone's NS
and glue say. The library on the lab (the avoided server of a zone never asked, a zone
whose every server is avoided failing, the others answered), then the daemon beside the
real Unbound with the same lines: the same answers."""
from __future__ import annotations

import dns.resolver
import pytest

from dnslab import zones as Z


def test_the_avoided_servers_are_never_asked(run, lab_resolver):
    async def go():
        r = lab_resolver(do_not_query_address=[Z.EXAMPLE_COM_1, f"{Z.EXAMPLE_NET}/32"])
        for name in ("www", "mail", "v4only", "sip", "alias", "nothing", "a.b.ent"):
            try:
                await r.resolve(f"{name}.example.com.", "A", raise_on_no_answer=False)
            except dns.resolver.NXDOMAIN:
                pass
        with pytest.raises(dns.resolver.NoNameservers):
            await r.resolve("www.example.net.", "A")
        return r.cache.infra.servers

    asked = run(go())
    assert Z.EXAMPLE_COM_2 in asked
    assert Z.EXAMPLE_COM_1 not in asked and Z.EXAMPLE_NET not in asked


LINES = f"""
  do-not-query-address: {Z.EXAMPLE_COM_1}
  do-not-query-address: {Z.EXAMPLE_NET}/32
"""
QUESTIONS = [("www.example.com.", "A"), ("mail.example.com.", "A"), ("www.example.net.", "A"),
             ("xalias.example.com.", "A"), ("www.example.", "A")]
#: a CNAME to a name of the avoided zone: SERVFAIL on both sides, where Unbound's answer
#: keeps the CNAME that led there and corenet's, as for every failure, carries no record
CHAIN = ("127.0.0.1", "xalias.example.com.", "A")


def test_the_same_answers_as_unbound_with_the_same_avoided_servers(tmp_path):
    from ci_policy import installed
    from daemon_proc import answers_by_client, beside_unbound

    installed("unbound", "unbound")
    conf = tmp_path / "avoid.conf"
    conf.write_text("server:\n" + LINES)
    with beside_unbound(tmp_path, "--config", str(conf), unbound_extra=LINES) as (ub, d):
        for tcp in (False, True):
            ours, theirs = (answers_by_client(port, ("127.0.0.1",), QUESTIONS, tcp)
                            for port in (d.port, ub.port))
            assert ours.pop(CHAIN)[0] == theirs.pop(CHAIN)[0] == "SERVFAIL"
            assert ours == theirs, {k: (ours[k], theirs[k]) for k in ours
                                    if ours[k] != theirs.get(k)}
    assert ours[("127.0.0.1", "www.example.com.", "A")] == ("NOERROR",
                                                            ["192.0.2.1", "192.0.2.11"])
    assert ours[("127.0.0.1", "www.example.net.", "A")] == ("SERVFAIL", [])


def test_a_network_with_host_bits_is_read_as_unbound_reads_it(tmp_path):
    """``127.0.0.1/8`` (Unbound's example config) is 127.0.0.0/8, not an error."""
    from resolver.daemon.config import build
    from resolver.daemon.server import make_resolver

    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n  do-not-query-address: 127.0.0.1/8\n"
                    "  do-not-query-address: ::1\n")
    r = make_resolver(build(str(conf)))
    assert [str(n) for n in r.unqueried.networks] == ["127.0.0.0/8", "::1/128"]
    assert r.unqueried.holds_address("127.9.9.9") and not r.unqueried.holds_address("10.0.0.1")
