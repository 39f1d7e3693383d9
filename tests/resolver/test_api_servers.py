"""Which servers a library resolution talked to, as dnspython reports them: the authority
that gave the answer (``Answer.nameserver``/``port``), the servers that failed
(``LifetimeTimeout``/``NoNameservers`` ``errors``), and the address the upstream sockets
are bound to (``Resolver(source=...)``). Against the lab's NSDs and scripted servers."""
from __future__ import annotations

import dns.exception
import dns.flags
import dns.message
import dns.rrset
import dns.resolver
import pytest

from dnslab import zones as Z
from dnslab.fake import Reply


def _serves(lab, address: str, qname: str, rdtype: str) -> bool:
    """``address`` answers the question itself, authoritatively."""
    m = lab.ask(address, qname, rdtype)
    return bool(m.flags & dns.flags.AA) and bool(m.answer)


@pytest.mark.parametrize("qname,rdtype", [("www.example.com.", "A"),
                                          ("www.example.com.", "AAAA"),
                                          ("www.example.net.", "A")])
def test_answer_names_the_authority_that_gave_it(run, lab, lab_resolver, qname, rdtype):
    r = lab_resolver()
    ans = run(r.resolve(qname, rdtype))
    assert ans.port == lab.port
    # an authority of the name's zone, never the root or the TLD that referred to it
    assert ans.nameserver not in (Z.ROOT_A, Z.ROOT_B, Z.GTLD_A)
    assert _serves(lab, ans.nameserver, qname, rdtype)
    again = run(r.resolve(qname, rdtype))          # from the cache: who gave it then
    assert (again.nameserver, again.port) == (ans.nameserver, ans.port)


def test_a_cached_answer_names_its_authority_in_a_later_second_and_case(run, lab, lab_resolver):
    # the Answer is rebuilt when its age in whole seconds changes, or for another case
    r = lab_resolver()
    ans = run(r.resolve("www.example.com.", "A"))
    assert ans.port == lab.port and ans.nameserver not in (Z.ROOT_A, Z.ROOT_B, Z.GTLD_A)
    clock, later = r.clock, [0.0]
    r.clock = lambda: clock() + later[0]
    for later[0], qname in ((1.2, "www.example.com."), (2.4, "WWW.Example.COM."),
                            (2.4, "www.example.com."), (3.6, "wWw.example.com.")):
        again = run(r.resolve(qname, "A"))
        assert again.response.answer[0].ttl < ans.response.answer[0].ttl   # from the cache
        assert str(again.qname) == qname
        assert (again.nameserver, again.port) == (ans.nameserver, ans.port), qname


def test_a_cname_chain_names_the_last_links_authority(run, lab, lab_resolver):
    r = lab_resolver()
    ans = run(r.resolve("xalias.example.com.", "A"))        # -> www.example.net.
    assert str(ans.canonical_name) == "www.example.net."
    assert ans.nameserver == Z.EXAMPLE_NET and ans.port == lab.port


def test_a_forwarded_answer_names_the_forwarder(run, lab, lab_resolver):
    r = lab_resolver(forward=[f"{Z.EXAMPLE_COM_1}@{lab.port}"])
    ans = run(r.resolve("www.example.com.", "A"))
    assert (ans.nameserver, ans.port) == (Z.EXAMPLE_COM_1, lab.port)


DEAD = "127.0.0.42"      # a listener that never answers


def _named(address: str, port: int) -> str:
    """A server as dnspython's errors name it."""
    return f"Do53:{address}@{port}"


def _timeouts_of(errors, port):
    return [e for e in errors if e[0] == _named(DEAD, port) and e[2] == port and e[1] is False
            and isinstance(e[3], dns.exception.Timeout) and e[4] is None]


def test_lifetime_timeout_lists_the_silent_server(run, lab, lab_resolver, fakes):
    srv = fakes(DEAD, lambda seen: None)
    r = lab_resolver(root_hints=[("a.dead.", DEAD)])
    with pytest.raises(dns.resolver.LifetimeTimeout) as ei:
        run(r.resolve("www.fake.", "A", lifetime=1.0))
    errors = ei.value.kwargs["errors"]
    assert _timeouts_of(errors, lab.port), errors
    assert len(_timeouts_of(errors, lab.port)) <= len(srv.queries)
    assert (f"Server {_named(DEAD, lab.port)} answered The DNS operation timed out"
            in str(ei.value))


def test_lifetime_timeout_of_the_time_limit_lists_it_too(run, lab, lab_resolver, fakes):
    from resolver.limits import Limits
    srv = fakes(DEAD, lambda seen: None)
    r = lab_resolver(root_hints=[("a.dead.", DEAD)], limits=Limits(max_query_time=1.0))
    with pytest.raises(dns.resolver.LifetimeTimeout) as ei:
        run(r.resolve("www.fake.", "A"))
    errors = ei.value.kwargs["errors"]
    assert 0 < len(_timeouts_of(errors, lab.port)) <= len(srv.queries), errors


def test_a_silent_forwarder_times_out_on_every_call(run, lab, lab_resolver, fakes):
    """dnspython asks a silent server again on each call until its lifetime is over: a
    LifetimeTimeout every time. Here too, each try waiting the timeout whatever the server's
    down mark (every call asks it), never NoNameservers; each error is a try of that
    server that timed out, as dnspython lists them."""
    fakes(DEAD, lambda seen: None)
    r = lab_resolver(forward=[f"{DEAD}@{lab.port}"])
    for lifetime in (None, 0.5, None, 0.5):
        with pytest.raises(dns.resolver.LifetimeTimeout) as ei:
            run(r.resolve("www.example.com.", "A", lifetime=lifetime))
        errors = ei.value.kwargs["errors"]
        assert errors and _timeouts_of(errors, lab.port) == errors, errors
    assert r.stats.upstream_skipped_down == 0       # never passed over as marked down
    assert r.stats.upstream_timeouts >= 4


def test_no_nameservers_lists_timeouts_and_refusals(run, lab, lab_resolver):
    r = lab_resolver()
    with pytest.raises(dns.resolver.NoNameservers) as ei:
        run(r.resolve("www.alldead.com.", "A"))
    errors = ei.value.kwargs["errors"]
    assert any(e[0] == _named(Z.SILENT, lab.port) and isinstance(e[3], dns.exception.Timeout)
               for e in errors)
    assert any(e[0] == _named(Z.REFUSED, lab.port) and "refused" in str(e[3])
               for e in errors), errors


def test_no_nameservers_lists_servers_and_rcodes(run, lab, lab_resolver):
    r = lab_resolver()
    with pytest.raises(dns.resolver.NoNameservers) as ei:
        run(r.resolve("www.alllame.com.", "A"))
    errors = ei.value.kwargs["errors"]
    assert any(e[0] == _named(Z.LAME, lab.port) and e[2] == lab.port and e[3] == "REFUSED"
               for e in errors), errors
    assert f"Server {_named(Z.LAME, lab.port)} answered REFUSED" in str(ei.value)


FAKE = "127.0.0.41"


def _answer_all(seen):
    q = seen.message
    m = dns.message.make_response(q)
    m.flags |= dns.flags.AA
    m.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "192.0.2.77"))
    return Reply(m)


@pytest.mark.parametrize("source", ["127.0.0.9", "127.0.0.10"])
@pytest.mark.parametrize("tcp", [False, True])
def test_upstream_sockets_are_bound_to_the_source(run, lab, lab_resolver, fakes, source, tcp):
    srv = fakes(FAKE, _answer_all)
    r = lab_resolver(root_hints=[("a.fake.", FAKE)], source=source)
    ans = run(r.resolve("www.fake.", "A", tcp=tcp, source=source))
    assert [rd.address for rd in ans] == ["192.0.2.77"]
    assert (ans.nameserver, ans.port) == (FAKE, lab.port)
    assert srv.queries and {s.peer[0] for s in srv.queries} == {source}
    assert {s.transport for s in srv.queries} == {"tcp" if tcp else "udp"}


def test_without_source_the_kernel_picks_it(run, lab, lab_resolver, fakes):
    srv = fakes(FAKE, _answer_all)
    r = lab_resolver(root_hints=[("a.fake.", FAKE)])
    run(r.resolve("www.fake.", "A"))
    assert {s.peer[0] for s in srv.queries} == {"127.0.0.1"}   # the loopback route's


def test_a_source_that_cannot_be_bound_fails_the_query_clearly(run, lab, lab_resolver, fakes):
    fakes(FAKE, _answer_all)
    r = lab_resolver(root_hints=[("a.fake.", FAKE)], source="192.0.2.200")  # not ours
    with pytest.raises(dns.resolver.NoNameservers) as ei:
        run(r.resolve("www.fake.", "A"))
    assert "cannot bind the source address 192.0.2.200" in str(ei.value)


def test_resolve_at_binds_its_resolver_to_the_source(run, lab, fakes):
    from resolver import functions

    srv = fakes(FAKE, _answer_all)
    ans = run(functions.resolve_at(FAKE, "www.fake.", port=lab.port, source="127.0.0.9"))
    assert [rd.address for rd in ans] == ["192.0.2.77"]
    assert {s.peer[0] for s in srv.queries} == {"127.0.0.9"}


@pytest.mark.parametrize("tcp", [False, True])
def test_several_sources_each_query_leaves_from_one_of_them(run, lab, lab_resolver, fakes, tcp):
    srv = fakes(FAKE, _answer_all)
    sources = ("127.0.0.9", "127.0.0.10", "::1")       # ::1 is not of the server's family
    r = lab_resolver(root_hints=[("a.fake.", FAKE)], source=sources)
    for i in range(40):                                # distinct names: a query each
        run(r.resolve(f"n{i}.fake.", "A", tcp=tcp))
    peers = [s.peer[0] for s in srv.queries]
    assert len(peers) >= 40
    # each address of the family is drawn (one of them 40 times running: 2 ** -39)
    assert set(peers) == {"127.0.0.9", "127.0.0.10"}
    assert {s.transport for s in srv.queries} == {"tcp" if tcp else "udp"}


def test_sources_all_of_the_other_family_leave_the_choice_to_the_kernel(run, lab, lab_resolver,
                                                                       fakes):
    srv = fakes(FAKE, _answer_all)
    r = lab_resolver(root_hints=[("a.fake.", FAKE)], source=["::1", "fe80::1"])
    run(r.resolve("www.fake.", "A"))
    assert {s.peer[0] for s in srv.queries} == {"127.0.0.1"}


def test_the_source_attribute_takes_several_addresses(lab_resolver):
    import ipaddress

    r = lab_resolver()
    r.source = ["127.0.0.9", ipaddress.ip_address("::1"), "127.0.0.9"]
    assert r.source == ("127.0.0.9", "::1")            # checked, duplicates dropped
    r.source = iter(["0:0::1"])
    assert r.source == "::1"                           # one alone is itself
    r.source = []
    assert r.source is None
    with pytest.raises(ValueError, match="numeric"):
        r.source = ["127.0.0.9", "localhost"]
    with pytest.raises(ValueError, match="or several"):
        r.source = 53
    assert r.source is None


def test_the_source_attribute_is_checked(lab_resolver):
    r = lab_resolver()
    assert r.source is None
    r.source = "::1"
    assert r.source == "::1"
    with pytest.raises(ValueError, match="numeric"):
        r.source = "localhost"
    assert r.source == "::1"
    r.source = None
    assert r.source is None


def test_a_stub_servers_own_port_is_the_answers(run, lab, lab_resolver, fakes):
    from ports import pick_port

    from resolver.daemon.zone_tables import stub_zone
    from resolver.zones import Zones

    port = pick_port([FAKE])
    fakes(FAKE, _answer_all, port=port)
    r = lab_resolver(zones=Zones(stub=[stub_zone({"name": "fake.",
                                                  "stub-addr": [f"{FAKE}@{port}"]})]))
    ans = run(r.resolve("www.fake.", "A"))
    assert port != lab.port and (ans.nameserver, ans.port) == (FAKE, port)


def test_one_resolver_shared_by_threads_each_with_its_loop_wakes_every_caller(lab):
    """One Resolver used from threads that each run a loop of their own, asking the same
    question at once: the resolution in flight is shared, ends on one loop, and every
    caller is woken with the answer (the others slept until their own timeout)."""
    import asyncio
    import socket
    import threading
    import time

    import resolver

    slow = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)     # a forwarder taking 0.3 s
    slow.bind(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        slow.settimeout(0.1)
        while not stop.is_set():
            try:
                data, peer = slow.recvfrom(4096)
            except OSError:
                continue
            q = dns.message.from_wire(data)
            reply = dns.message.make_response(q)
            reply.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A",
                                                    "192.0.2.7"))
            time.sleep(0.3)
            slow.sendto(reply.to_wire(), peer)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    r = resolver.Resolver(forward=[f"127.0.0.1@{slow.getsockname()[1]}"],
                          do_not_query_localhost=False)
    start = threading.Barrier(4)
    got: list = []

    def caller():
        async def ask():
            start.wait(5)
            try:
                ans = await asyncio.wait_for(r.resolve("shared.example.", "A"), 120)
                got.append([rd.address for rd in ans.rrset])
            except BaseException as e:
                got.append(type(e).__name__)
        asyncio.run(ask())

    callers = [threading.Thread(target=caller, daemon=True) for _ in range(4)]
    try:
        for t in callers:
            t.start()
        deadline = time.monotonic() + 30             # a caller left asleep: not joined
        for t in callers:
            t.join(max(0.0, deadline - time.monotonic()))
    finally:
        stop.set()
        server.join(5)
        slow.close()
    assert got == [["192.0.2.7"]] * 4


def test_a_name_that_is_not_text_is_a_type_error(run, lab_resolver):
    """bytes (or a number) as a name is a TypeError, not a question about its repr
    ("b'www.example.com'.", which came back NXDOMAIN)."""
    r = lab_resolver()
    for name in (b"www.example.com", 42):
        with pytest.raises(TypeError, match="dns.name.Name or a str"):
            run(r.resolve(name, "A"))
    assert r.stats.upstream_queries == 0
