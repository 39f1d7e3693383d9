"""``hide-identity``, ``identity``, ``hide-version``, ``version`` and ``deny-any`` as Unbound's:
the daemon and the real Unbound with the same lines give the same responses (rcode, flags,
answer records) to the CH-class questions about the server and to ANY questions, with and
without EDNS, RD set and clear. The CH answers are built by ``resolver.chaos``."""
from __future__ import annotations

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from ci_policy import installed
from daemon_proc import Daemon, cli
from ports import pick_port
from procs import stop as stop_process
from resolver import chaos

#: (name, type, class) asked of both
QUESTIONS = [("version.bind.", "TXT", "CH"), ("version.server.", "ANY", "CH"),
             ("id.server.", "TXT", "CH"), ("hostname.bind.", "TXT", "CH"),
             ("ID.Server.", "TXT", "CH"), ("version.bind.", "A", "CH"),
             ("foo.bind.", "TXT", "CH"), ("x.example.", "ANY", "IN")]


def test_answers_cut_text_and_hide_what_is_none():
    shown = chaos.answers("host-1", None)
    assert set(shown) == set(chaos.IDENTITY_NAMES)
    assert shown[b"\x02id\x06server\x00"] == b"\x06host-1"
    assert chaos.txt("x" * 300) == b"\xff" + b"x" * 255
    assert chaos.answers(None, None) == {}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from dnslab.unbound import local_unbound, unasked_root_hints

    installed("unbound", "unbound")
    w = tmp_path_factory.mktemp("chaos")
    hints = unasked_root_hints(w / "root.hints")
    (w / "unbound").mkdir()
    uport = pick_port(["127.0.0.1"])
    proc = local_unbound(w / "unbound", uport, [
        f'root-hints: "{hints}"', "hide-identity: no", 'identity: "resolver one"',
        "hide-version: no", 'version: "v-test 1"', "deny-any: yes"])
    conf = w / "corenet-resolver.toml"
    conf.write_text('hide-identity = false\nidentity = "resolver one"\nhide-version = false\n'
                    'version = "v-test 1"\ndeny-any = true\n')
    d = Daemon(w / "daemon", None, "--config", str(conf), "--root-hints", str(hints))
    try:
        d.start()
        yield uport, d
    finally:
        d.stop()
        stop_process(proc, 5.0, group=True)


def shape(m: dns.message.Message):
    return (m.rcode(), m.flags & (dns.flags.AA | dns.flags.RA | dns.flags.RD | dns.flags.TC),
            [rrset.to_text() for rrset in m.answer], len(m.authority), m.edns)


@pytest.mark.parametrize("rd", [True, False], ids=["rd", "no-rd"])
@pytest.mark.parametrize("edns", [False, True], ids=["plain", "edns"])
@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: f"{q[0]}{q[1]}-{q[2]}")
def test_the_same_responses_as_unbound(pair, question, edns, rd):
    """RD set or clear: Unbound answers about itself before it refuses a cache probe."""
    uport, d = pair
    name, rdtype, rdclass = question
    q = dns.message.make_query(name, rdtype, rdclass=rdclass, use_edns=0 if edns else False)
    if not rd:
        q.flags &= ~dns.flags.RD
    theirs = dns.query.udp(q, "127.0.0.1", port=uport, timeout=5)
    ours = dns.query.udp(q, "127.0.0.1", port=d.port, timeout=5)
    assert shape(ours) == shape(theirs), f"ours:\n{ours}\nunbound:\n{theirs}"


def test_what_each_question_is_answered(pair):
    _, d = pair
    said = {}
    for name, rdtype, rdclass in QUESTIONS:
        r = d.ask(dns.message.make_query(name, rdtype, rdclass=rdclass))
        said[name, rdtype] = (r.rcode(), [rd.to_text() for rrset in r.answer for rd in rrset])
    assert said[("id.server.", "TXT")] == (dns.rcode.NOERROR, ['"resolver one"'])
    assert said[("version.server.", "ANY")] == (dns.rcode.NOERROR, ['"v-test 1"'])
    assert said[("version.bind.", "A")] == (dns.rcode.REFUSED, [])
    assert said[("x.example.", "ANY")] == (dns.rcode.NOTIMP, [])


def test_checkconf_reads_them(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('deny-any = "yes"\n')
    r = cli("checkconf", str(conf))
    assert r.returncode == 2 and "deny-any" in r.stderr and "true or false" in r.stderr
    conf.write_text('hide-version = false\nversion = "x"\ndeny-any = true\n')
    assert cli("checkconf", str(conf)).returncode == 0
