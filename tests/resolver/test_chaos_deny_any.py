"""``hide-identity``, ``identity``, ``hide-version``, ``version``, ``hide-trustanchor`` and
``deny-any`` as Unbound's: the daemon and the real Unbound with the same lines give the same
responses (rcode, flags, answer records) to the CH-class questions about the server and to
ANY questions, with and without EDNS, RD set and clear. The CH answers are built by
``resolver.chaos``."""
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
    assert r.returncode == 1 and "deny-any" in r.stderr and "true or false" in r.stderr
    conf.write_text('hide-version = false\nversion = "x"\ndeny-any = true\n')
    assert cli("checkconf", str(conf)).returncode == 0


#: Trust anchors given to both: two root keys, a signed zone's, and a negative anchor
ANCHORS = (". 3600 IN DS 20326 8 2 "
           "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n"
           ". 3600 IN DS 38696 8 2 "
           "683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16\n"
           "example.com. 3600 IN DS 370 13 2 "
           "BE74359954660069D5C63D200C39F5603827D7DD02B56F120EE9F3A86764247C\n")


@pytest.mark.parametrize("hide", [False, True], ids=["shown", "hidden"])
def test_trustanchor_unbound_as_unbound_answers_it(tmp_path, hide):
    """``trustanchor.unbound.`` CH TXT: a record per zone with a trust anchor, its name and
    its key tags in order, beside a real Unbound validating from the same anchors (a
    negative anchor shows nothing); REFUSED on both with ``hide-trustanchor``."""
    from dnslab.unbound import local_unbound, unasked_root_hints

    installed("unbound", "unbound")
    hints = unasked_root_hints(tmp_path / "root.hints")
    anchors = tmp_path / "anchors.key"
    anchors.write_text(ANCHORS)
    (tmp_path / "unbound").mkdir()
    uport = pick_port(["127.0.0.1"])
    yes = "yes" if hide else "no"
    proc = local_unbound(tmp_path / "unbound", uport, [
        f'root-hints: "{hints}"', 'module-config: "validator iterator"',
        f'trust-anchor-file: "{anchors}"', 'domain-insecure: "insecure.example."',
        f"hide-trustanchor: {yes}"])
    conf = tmp_path / "corenet-resolver.toml"
    conf.write_text(f'trust-anchor = "{anchors}"\ndomain-insecure = ["insecure.example."]\n'
                    f"hide-trustanchor = {str(hide).lower()}\n")
    d = Daemon(tmp_path / "daemon", None, "--config", str(conf), "--root-hints", str(hints))
    try:
        d.start()
        for rdtype in ("TXT", "ANY"):
            q = dns.message.make_query("trustanchor.unbound.", rdtype, rdclass="CH")
            theirs = dns.query.udp(q, "127.0.0.1", port=uport, timeout=5)
            ours = dns.query.udp(q, "127.0.0.1", port=d.port, timeout=5)
            assert shape(ours) == shape(theirs), f"ours:\n{ours}\nunbound:\n{theirs}"
        texts = [rd.to_text() for rrset in ours.answer for rd in rrset]
        if hide:
            assert ours.rcode() == dns.rcode.REFUSED and texts == []
        else:
            assert texts == ['". 20326 38696"', '"example.com. 370"']
    finally:
        d.stop()
        stop_process(proc, 5.0, group=True)


def test_trust_anchors_from_several_files_as_unbound_reads_them(tmp_path):
    """Two ``trust-anchor-file`` lines (the root's keys in one, a signed zone's in the
    other) in one unbound.conf, served by corenet-resolver and by Unbound: both zones are
    anchored on both (``trustanchor.unbound.``), none dropped for the last line."""
    from dnslab.unbound import local_unbound, unasked_root_hints

    installed("unbound", "unbound")
    hints = unasked_root_hints(tmp_path / "root.hints")
    records = ANCHORS.splitlines(keepends=True)
    (tmp_path / "root.key").write_text("".join(records[:2]))       # the two root keys
    (tmp_path / "zone.key").write_text("".join(records[2:]))       # example.com.'s
    lines = [f'trust-anchor-file: "{tmp_path / "root.key"}"',
             f'trust-anchor-file: "{tmp_path / "zone.key"}"']
    (tmp_path / "unbound").mkdir()
    uport = pick_port(["127.0.0.1"])
    proc = local_unbound(tmp_path / "unbound", uport, [
        f'root-hints: "{hints}"', 'module-config: "validator iterator"', *lines])
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n" + "".join(f"  {line}\n" for line in lines))
    d = Daemon(tmp_path / "daemon", None, "--config", str(conf), "--root-hints", str(hints))
    try:
        d.start()
        q = dns.message.make_query("trustanchor.unbound.", "TXT", rdclass="CH")
        theirs = dns.query.udp(q, "127.0.0.1", port=uport, timeout=5)
        ours = dns.query.udp(q, "127.0.0.1", port=d.port, timeout=5)
        assert shape(ours) == shape(theirs), f"ours:\n{ours}\nunbound:\n{theirs}"
        assert [rd.to_text() for rrset in ours.answer for rd in rrset] == [
            '". 20326 38696"', '"example.com. 370"']
    finally:
        d.stop()
        stop_process(proc, 5.0, group=True)


def test_trustanchor_unbound_has_no_record_without_validation():
    import resolver

    r = resolver.Resolver(validate=False)
    assert chaos.anchor_texts(r) == []
    r = resolver.Resolver()
    assert [t[1:] for t in chaos.anchor_texts(r)] == [b". 20326 38696"]   # the shipped keys
