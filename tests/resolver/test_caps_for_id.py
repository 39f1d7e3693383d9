"""``use-caps-for-id`` (Unbound's "0x20"): with it on, the names of upstream UDP queries go
out with their letters in random case, which a reply must echo byte for byte. Over the lab's
``fault.`` servers (dnslab.fake), on every loop kind: the case varies from query to query
and the answers keep the name as asked; a server that does not echo the case, and a forged
reply that did not guess it, end in the right answer through the fallback (asked again as
given) and are counted; ``caps-exempt`` domains, PTR queries and the TCP retry after a
truncated reply keep the name's case; and an unbound.conf's options are carried over."""
from __future__ import annotations

import os

import dns.message
import dns.query
import dns.name
import dns.rdatatype
import dns.rrset

from dnslab import zones as Z
from dnslab.fake import Reply
from dnslab.scenarios import WWW, WWW_A, fault_authority, spoof_then_real

AUTH = fault_authority()
BOTH = (Z.FAKE_TLD_1, Z.FAKE_TLD_2)
NAMES = [f"n{i:03d}.fault." for i in range(1, 13)]


def recording(handler, seen: list):
    """``handler``, noting each query's (transport, name as sent, type)."""
    def wrapper(s):
        if s.message is not None and s.message.question:
            q = s.message.question[0]
            seen.append((s.transport, q.name.to_text(), dns.rdatatype.to_text(q.rdtype)))
        return handler(s)
    return wrapper


def answering(s):
    return AUTH(s.message) if s.message is not None else None


def lowering(s):
    """A server that answers with the question's name in lower case, whatever it was
    asked in (as some load balancers and middleboxes do)."""
    if s.message is None:
        return None
    m = AUTH(s.message)
    q = m.question[0]
    m.question = [dns.rrset.RRset(q.name.canonicalize(), q.rdclass, q.rdtype)]
    return m


def _data(ans) -> list[str]:
    return sorted(x.to_text() for x in ans.rrset)


def test_query_names_go_out_in_random_case_and_answers_keep_the_name_asked(
        run, fakes, lab_resolver):
    seen: list = []
    for a in BOTH:
        fakes(a, recording(answering, seen))

    async def go():
        r = lab_resolver()
        r.caps_for_id = True
        answers = [await r.resolve(name, "A") for name in NAMES]
        return r, answers

    r, answers = run(go(), timeout=30)
    sent = [n for t, n, _ in seen if t == "udp" and n.lower() in NAMES]
    assert sorted({n.lower() for n in sent}) == NAMES
    # each name's case is drawn again: 12 names of 4 letters each all in lower case
    # would happen once in 2**48 runs
    assert any(n != n.lower() for n in sent)
    assert len(set(sent)) == len(sent)
    for name, ans in zip(NAMES, answers):
        # the answer's owner is a pointer to the reply's question: the name as asked
        assert ans.rrset.name.to_text() == name and ans.qname.to_text() == name
    assert r.stats.caps_fallbacks == 0 and r.stats.dropped_mismatched == 0


def test_without_it_names_go_out_as_asked(run, fakes, lab_resolver):
    seen: list = []
    for a in BOTH:
        fakes(a, recording(answering, seen))

    async def go():
        r = lab_resolver()
        for name in NAMES[:4]:
            await r.resolve(name.upper(), "A")

    run(go(), timeout=30)
    sent = {n for t, n, _ in seen if n.lower() in NAMES}
    assert sent == {n.upper() for n in NAMES[:4]}


def test_a_server_that_does_not_echo_the_case_is_asked_again_as_given(
        run, fakes, lab_resolver):
    """Its reply to the random case is not taken; the name is asked again as the iterator
    gave it, at once (no timeout), and that reply is the answer. (A name whose case was
    drawn all lower, one time in 2**letters, is taken at once: the reply echoes it.)"""
    seen: list = []
    for a in BOTH:
        fakes(a, recording(lowering, seen))
    names = [WWW, *NAMES[:5]]

    async def go():
        r = lab_resolver()
        r.caps_for_id = True
        answers = [await r.resolve(name, "A") for name in names]
        return r, answers

    r, answers = run(go(), timeout=30)
    assert _data(answers[0]) == [WWW_A]
    assert all(ans.rrset.name.to_text() == name for name, ans in zip(names, answers))
    fell_back = 0
    for name in names:
        sent = [n for t, n, _ in seen if n.lower() == name]
        if sent[0] == name:
            assert sent == [name]
        else:
            assert sent == [sent[0], name]
            fell_back += 1
    assert r.stats.caps_fallbacks == fell_back > 0
    assert r.stats.upstream_timeouts == 0


def test_a_forgery_that_did_not_guess_the_case_is_never_the_answer(run, fakes, lab_resolver):
    """Each query gets a forged reply with the right ID and question but another case at
    once, and the real one a moment later: the forgery is not taken, the question is asked
    again as given, and the answer is the real data."""
    for a in BOTH:
        fakes(a, spoof_then_real("wrong question case", AUTH))

    async def go():
        import resolver

        r = lab_resolver(limits=resolver.Limits().replace(min_rto=0.5, initial_rto=1.0,
                                                          max_rto=1.5))
        r.caps_for_id = True
        return r, await r.resolve(WWW, "A")

    r, ans = run(go(), timeout=30)
    assert _data(ans) == [WWW_A]
    assert r.stats.caps_fallbacks >= 1


def test_exempt_domains_ptr_queries_and_the_tcp_retry_keep_the_case(run, fakes, lab_resolver):
    seen: list = []

    def truncating(s):
        if s.message is None:
            return None
        name = s.message.question[0].name.to_text().lower()
        if name == "n001.fault." and s.transport == "udp":
            return Reply(AUTH(s.message), tc=True)
        return AUTH(s.message)
    for a in BOTH:
        fakes(a, recording(truncating, seen))

    others = NAMES[3:]

    async def go():
        r = lab_resolver()
        r.caps_for_id = True
        await r.resolve("n001.fault.", "A")                 # truncated, then over TCP
        await r.resolve("n002.fault.", "PTR", raise_on_no_answer=False)
        r.caps_exempt = ["N003.fault."]
        await r.resolve("n003.fault.", "A")
        for name in others:
            await r.resolve(name, "A")
        return r

    r = run(go(), timeout=30)
    by = {(t, n.lower(), k): n for t, n, k in seen}
    assert ("udp", "n001.fault.", "A") in by                     # (in random case)
    assert by[("tcp", "n001.fault.", "A")] == "n001.fault."      # as given over TCP
    assert by[("udp", "n002.fault.", "PTR")] == "n002.fault."
    assert by[("udp", "n003.fault.", "A")] == "n003.fault."      # exempt
    # the others in random case: 9 names of 6 letters all drawn lower, once in 2**54 runs
    assert any(by[("udp", name, "A")] != name for name in others)
    assert r.caps_exempt == ("N003.fault.",)


def test_an_unbound_conf_s_options_are_carried_over(tmp_path):
    from resolver.daemon import unbound_conf
    from resolver.daemon.config import build
    from resolver.daemon.server import make_resolver

    conf = tmp_path / "unbound.conf"
    conf.write_text('server:\n  use-caps-for-id: yes\n  caps-whitelist: "licdn.com"\n'
                    '  caps-exempt: "Example.NET."\n')
    conv = unbound_conf.convert(unbound_conf.read(str(conf)))
    assert conv.unmapped == [] and len(conv.mapped) == 3
    cfg = build(str(conf))
    assert cfg.use_caps_for_id is True
    assert cfg.caps_exempt == ("licdn.com.", "Example.NET.")
    r = make_resolver(cfg)
    assert r.caps_for_id is True and r.caps_exempt == ("licdn.com.", "Example.NET.")
    assert make_resolver(build(None)).caps_for_id is False


def test_beside_unbound_both_answer_through_nsd_in_random_case(lab, tmp_path):
    """Unbound and the daemon, both with ``use-caps-for-id: yes``, forward ``bulk.net.`` to
    the lab's NSD, which echoes the case it is asked in: the same answers from both, and
    the daemon never had to fall back."""
    from ci_policy import unavailable
    from daemon_proc import Daemon
    from dnslab.unbound import UNBOUND, local_unbound
    from ports import free_port
    from procs import stop as stop_process

    if not os.path.exists(UNBOUND):
        unavailable(f"{UNBOUND} is missing (Debian package 'unbound')")
    bulk = f"{Z.BULK}@{lab.port}"
    uport = free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, ["use-caps-for-id: yes", "do-not-query-localhost: no",
                                    "forward-zone:", 'name: "bulk.net."',
                                    f"forward-addr: {bulk}"])
    conf = tmp_path / "resolver.toml"
    conf.write_text("use-caps-for-id = true\n"
                    f'[[forward-zone]]\nname = "bulk.net."\nforward-addr = ["{bulk}"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        names = [f"h{i:03d}.bulk.net." for i in range(1, 11)]
        for name in names:
            theirs = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1",
                                   port=uport, timeout=5)
            ours = d.ask(name)
            assert ours.rcode() == theirs.rcode() == 0 and ours.answer == theirs.answer
            assert ours.answer[0].name.to_text() == name
        engine = d.stats()["engine"]
        assert engine["caps_fallbacks"] == 0 and engine["upstream_udp"] >= len(names)
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]
