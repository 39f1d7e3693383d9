"""DNS64 (RFC 6147) and the root key sentinel (RFC 8509) end to end: a Resolver over real
sockets asking the scripted Internet (``scenario.small_internet``, ``signed_net.signed_world``)
on loopback, through the daemon's miss path (``start_miss``, with the client's DO and CD) and
the library's ``resolve``."""
from __future__ import annotations

import asyncio
import time

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.reversename
import dns.zone
import pytest

import resolver
from resolver import operations
from resolver.dns64 import Dns64
from resolver.limits import Limits
from scenario import FakeServers, root_hints, small_internet
from signed_net import signed_world

LIMITS = Limits(exploration=0.0, initial_rto=0.1, max_rto=0.2, max_query_time=3.0)
A, AAAA, CNAME, PTR, RRSIG = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME,
                              dns.rdatatype.PTR, dns.rdatatype.RRSIG)
U, S = "127.64", "127.65"        # the unsigned and the signed world's server addresses

#: example.com.'s extra names in the unsigned world
EXTRA = """
v4only 300 A 192.0.2.10
v4only 300 A 192.0.2.11
mapped 300 AAAA ::ffff:192.0.2.12
mapped 300 A 192.0.2.12
short 30 A 192.0.2.13
chain 300 CNAME v4only
"""
#: the reverse zone of 192.0.2.0/24 (served at U.5.1, delegated from the root)
REVERSE = """
@ 3600 NS ns.2.0.192.in-addr.arpa.
ns 3600 A 10.0.5.1
33 300 PTR host.example.com.
"""


def _add(net, origin: str, text: str) -> None:
    z = net.zones[dns.name.from_text(origin)]
    extra = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
    with z.writer() as txn:
        for n, rds in extra.iterate_rdatasets():
            txn.add(n, rds)


@pytest.fixture(scope="module")
def plain_net():
    net = small_internet(prefix=U)
    _add(net, "example.com.", EXTRA)
    _add(net, ".", f"2.0.192.in-addr.arpa. 86400 NS ns.2.0.192.in-addr.arpa.\n"
                   f"ns.2.0.192.in-addr.arpa. 86400 A {U}.5.1\n")
    net.zone("2.0.192.in-addr.arpa.", REVERSE.replace("10.0.", U + "."), [f"{U}.5.1"])
    return net


@pytest.fixture(scope="module")
def signed():
    net, anchor, keys = signed_world(time.time(), S)
    # a wildcard in the unsigned other.net.: a positive insecure answer for any first label
    _add(net, "other.net.", "*.wild 300 A 198.51.100.9\n")
    return net, anchor, keys


def _serve(run, net):
    fs = FakeServers(net)
    port = run(fs.start(sorted(net.served)))
    return fs, port


@pytest.fixture
def plain(run, plain_net):
    fs, port = _serve(run, plain_net)
    try:
        yield port
    finally:
        run(fs.stop())


@pytest.fixture
def signed_port(run, signed):
    fs, port = _serve(run, signed[0])
    try:
        yield port
    finally:
        run(fs.stop())


def _plain_resolver(port, dns64=True):
    return resolver.Resolver(root_hints(U), port=port, do_not_query_localhost=False,
                             limits=LIMITS, dns64=dns64)


def _signed_resolver(signed, port, dns64=True, **kw):
    return resolver.Resolver(root_hints(S), port=port, trust_anchor=signed[1],
                             do_not_query_localhost=False, limits=LIMITS, dns64=dns64, **kw)


async def ask(r, name, qtype, do=False, cd=False, ad=False):
    """The daemon's path for one client query: the cache, else the miss (``start_miss``)."""
    q = dns.message.make_query(name, qtype, want_dnssec=do)
    q.flags &= ~dns.flags.AD
    if cd:
        q.flags |= dns.flags.CD
    if ad:
        q.flags |= dns.flags.AD
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    d = r.start_miss(q.to_wire(), lambda _d, out: fut.done() or fut.set_result(out), loop)
    out = d if type(d) is bytes else await asyncio.wait_for(fut, 10)
    return dns.message.from_wire(out)


def addrs(msg, rdtype=AAAA) -> list[str]:
    return sorted(rd.to_text() for rrset in msg.answer if rrset.rdtype == rdtype
                  for rd in rrset)


# ---- unsigned world: which answers are synthesised -------------------------------------------

def test_aaaa_absent_is_synthesised_and_cached(run, plain):
    async def go():
        r = _plain_resolver(plain)
        out = await ask(r, "v4only.example.com.", AAAA)
        assert out.rcode() == dns.rcode.NOERROR
        assert addrs(out) == ["64:ff9b::c000:20a", "64:ff9b::c000:20b"]
        # RFC 6147 5.1.7: min(A TTL 300, the negative TTL of the zone's SOA, 300)
        assert [rr.ttl for rr in out.answer] == [300]
        hits = r.stats.cache_hits
        again = await ask(r, "v4only.example.com.", AAAA)
        assert r.stats.cache_hits == hits + 1 and addrs(again) == addrs(out)
        # the A question itself is answered as it is
        assert addrs(await ask(r, "v4only.example.com.", A), A) == ["192.0.2.10",
                                                                      "192.0.2.11"]
        await r.close()
    run(go())


def test_prefetch_keeps_the_synthesis(run, plain):
    """A popular synthesised entry refreshed near its expiry (prefetch) is synthesised
    again, not replaced by the authorities' NODATA."""
    async def go():
        r = _plain_resolver(plain)
        now = [time.monotonic()]
        r.clock = lambda: now[0]
        for _ in range(3):
            assert addrs(await ask(r, "v4only.example.com.", AAAA)) == ["64:ff9b::c000:20a",
                                                                        "64:ff9b::c000:20b"]
        now[0] += 285                               # the last tenth of its 300 s
        prefetches = r.stats.prefetches
        await ask(r, "v4only.example.com.", AAAA)
        assert r.stats.prefetches == prefetches + 1
        for _ in range(200):                        # the refresh runs in the background
            if not r.resolutions:
                break
            await asyncio.sleep(0.01)
        assert not r.resolutions
        now[0] += 100                               # past the old entry's expiry
        hits = r.stats.cache_hits
        out = await ask(r, "v4only.example.com.", AAAA)
        assert r.stats.cache_hits == hits + 1       # the refreshed entry answers
        assert addrs(out) == ["64:ff9b::c000:20a", "64:ff9b::c000:20b"]
        await r.close()
    run(go())


def test_ttl_is_bounded_by_the_a_record(run, plain):
    async def go():
        r = _plain_resolver(plain)
        out = await ask(r, "short.example.com.", AAAA)
        assert addrs(out) == ["64:ff9b::c000:20d"] and out.answer[0].ttl <= 30
        await r.close()
    run(go())


def test_aaaa_present_is_the_real_one(run, plain):
    async def go():
        r = _plain_resolver(plain)
        assert addrs(await ask(r, "www.example.com.", AAAA)) == ["2001:db8::1"]
        await r.close()
    run(go())


def test_mapped_aaaa_counts_as_absent(run, plain):
    async def go():
        r = _plain_resolver(plain)
        assert addrs(await ask(r, "mapped.example.com.", AAAA)) == ["64:ff9b::c000:20c"]
        await r.close()
    run(go())


def test_synthall_and_ignore_aaaa(run, plain):
    async def go():
        r = _plain_resolver(plain, Dns64(synthall=True))
        assert addrs(await ask(r, "www.example.com.", AAAA)) == ["64:ff9b::c000:201"]
        await r.close()
        r = _plain_resolver(plain, Dns64("2001:db8:122:344::/64",
                                         ignore_aaaa=["www.example.com."]))
        assert addrs(await ask(r, "www.example.com.", AAAA)) == ["2001:db8:122:344:c0:2:100:0"]
        # names not listed keep their AAAA
        operations.flush(r)
        assert addrs(await ask(r, "alias.example.com.", AAAA)) == ["2001:db8::1"]
        await r.close()
    run(go())


def test_nxdomain_is_not_synthesised(run, plain):
    async def go():
        r = _plain_resolver(plain, Dns64(synthall=True))
        out = await ask(r, "nothing.example.com.", AAAA)
        assert out.rcode() == dns.rcode.NXDOMAIN and out.answer == []
        await r.close()
    run(go())


def test_cname_chain_is_kept(run, plain):
    async def go():
        r = _plain_resolver(plain)
        out = await ask(r, "chain.example.com.", AAAA)
        assert [(rr.name.to_text(), rr.rdtype) for rr in out.answer] == [
            ("chain.example.com.", CNAME), ("v4only.example.com.", AAAA)]
        assert addrs(out) == ["64:ff9b::c000:20a", "64:ff9b::c000:20b"]
        # across zones: far.example.com. -> host.other.net. (A only)
        out = await ask(r, "far.example.com.", AAAA)
        assert out.answer[0].rdtype == CNAME and addrs(out) == ["64:ff9b::c633:6407"]
        await r.close()
    run(go())


def test_ptr_under_the_prefix_is_answered_from_in_addr_arpa(run, plain):
    async def go():
        r = _plain_resolver(plain)
        name = dns.reversename.from_address("64:ff9b::192.0.2.33")
        out = await ask(r, name, PTR)
        assert out.rcode() == dns.rcode.NOERROR
        assert [(rr.name, rr.rdtype) for rr in out.answer] == [
            (name, CNAME), (dns.name.from_text("33.2.0.192.in-addr.arpa."), PTR)]
        assert out.answer[0][0].target == dns.name.from_text("33.2.0.192.in-addr.arpa.")
        assert addrs(out, PTR) == ["host.example.com."]
        # an address with no PTR: the in-addr.arpa NXDOMAIN, behind the CNAME
        out = await ask(r, dns.reversename.from_address("64:ff9b::192.0.2.34"), PTR)
        assert out.rcode() == dns.rcode.NXDOMAIN and out.answer[0].rdtype == CNAME
        # outside the prefix: resolved as it is (nobody serves ip6.arpa here)
        out = await ask(r, dns.reversename.from_address("2001:db8::192.0.2.33"), PTR)
        assert all(rr.rdtype != CNAME for rr in out.answer)
        await r.close()
    run(go())


def test_off_by_default(run, plain):
    async def go():
        r = _plain_resolver(plain, None)
        out = await ask(r, "v4only.example.com.", AAAA)
        assert out.rcode() == dns.rcode.NOERROR and out.answer == []
        await r.close()
    run(go())


def test_library_resolve_synthesises(run, plain):
    async def go():
        r = _plain_resolver(plain)
        ans = await r.resolve("chain.example.com.", "AAAA")
        assert sorted(rd.to_text() for rd in ans.rrset) == ["64:ff9b::c000:20a",
                                                            "64:ff9b::c000:20b"]
        assert ans.canonical_name == dns.name.from_text("v4only.example.com.")
        with pytest.raises(dns.resolver.NXDOMAIN):
            await r.resolve("nothing.example.com.", "AAAA")
        await r.close()
    run(go())


# ---- signed world: RFC 6147 5.5 --------------------------------------------------------------

def test_signed_name_synthesis_has_no_ad(run, signed, signed_port):
    async def go():
        r = _signed_resolver(signed, signed_port)
        # svc.example.com. (signed, A only): DO set, CD clear -> synthesised, no AD
        out = await ask(r, "svc.example.com.", AAAA, do=True)
        assert out.rcode() == dns.rcode.NOERROR and addrs(out) == ["64:ff9b::7f41:707"]
        assert not out.flags & dns.flags.AD
        # its A answer is secure: the resolver validated it
        a = await ask(r, "svc.example.com.", A, do=True)
        assert a.flags & dns.flags.AD
        # a client asking with AD (no DO) gets no AD on the synthesis either
        out = await ask(r, "svc.example.com.", AAAA, ad=True)
        assert addrs(out) == ["64:ff9b::7f41:707"] and not out.flags & dns.flags.AD
        await r.close()
    run(go())


def test_do_and_cd_get_the_real_nodata_even_after_a_synthesis(run, signed, signed_port):
    async def go():
        r = _signed_resolver(signed, signed_port)
        synth = await ask(r, "svc.example.com.", AAAA, do=True)
        assert addrs(synth) == ["64:ff9b::7f41:707"]
        # the synthesised answer is cached; DO+CD is another cache key and never sees it
        out = await ask(r, "svc.example.com.", AAAA, do=True, cd=True)
        assert out.rcode() == dns.rcode.NOERROR and out.answer == []
        assert any(rr.rdtype == dns.rdatatype.NSEC for rr in out.authority)
        assert out.flags & dns.flags.AD            # the real NODATA, validated
        again = await ask(r, "svc.example.com.", AAAA, do=True, cd=True)
        assert again.answer == []
        # and the others still get the synthesis from the cache
        hits = r.stats.cache_hits
        cached = await ask(r, "svc.example.com.", AAAA, do=True)
        assert addrs(cached) == ["64:ff9b::7f41:707"] and not cached.flags & dns.flags.AD
        assert r.stats.cache_hits == hits + 1
        # CD alone (no DO): synthesised, RFC 6147 5.5 leaves it to the resolver
        assert addrs(await ask(r, "svc.example.com.", AAAA, cd=True)) == ["64:ff9b::7f41:707"]
        await r.close()
    run(go())


def test_signed_aaaa_present_keeps_ad(run, signed, signed_port):
    async def go():
        r = _signed_resolver(signed, signed_port)
        out = await ask(r, "www.example.com.", AAAA, do=True)
        assert addrs(out) == ["2001:db8::1"] and out.flags & dns.flags.AD
        await r.close()
    run(go())


# ---- the root key sentinel (RFC 8509) ---------------------------------------------------------

def _tag(signed) -> int:
    return dns.dnssec.key_id(signed[2]["."][1])


def _other_tag(signed) -> int:
    return (_tag(signed) + 1) % 100000


@pytest.mark.parametrize("qtype", [A, AAAA])
def test_sentinel_on_secure_answers(run, signed, signed_port, qtype):
    async def go():
        r = _signed_resolver(signed, signed_port, dns64=None)
        tag, other = _tag(signed), _other_tag(signed)
        # *.wild.example.com. is a signed wildcard with A records (no AAAA: NODATA, secure)
        rc = lambda m: m.rcode()   # noqa: E731
        assert rc(await ask(r, f"root-key-sentinel-is-ta-{tag:05d}.wild.example.com.",
                            qtype)) == dns.rcode.NOERROR
        assert rc(await ask(r, f"root-key-sentinel-is-ta-{other:05d}.wild.example.com.",
                            qtype)) == dns.rcode.SERVFAIL
        assert rc(await ask(r, f"root-key-sentinel-not-ta-{tag:05d}.wild.example.com.",
                            qtype)) == dns.rcode.SERVFAIL
        out = await ask(r, f"root-key-sentinel-not-ta-{other:05d}.wild.example.com.", qtype,
                        do=True)
        assert out.rcode() == dns.rcode.NOERROR and out.flags & dns.flags.AD
        if qtype == A:
            assert addrs(out, A) == ["192.0.2.99"]
        # asked again (now from the cache's rrsets), the verdicts hold
        assert rc(await ask(r, f"root-key-sentinel-not-ta-{tag:05d}.wild.example.com.",
                            qtype)) == dns.rcode.SERVFAIL
        await r.close()
    run(go())


def test_sentinel_leaves_other_types_and_insecure_answers(run, signed, signed_port):
    async def go():
        r = _signed_resolver(signed, signed_port, dns64=None)
        other = _other_tag(signed)
        out = await ask(r, f"root-key-sentinel-is-ta-{other:05d}.wild.example.com.", "TXT")
        assert out.rcode() == dns.rcode.NOERROR             # only A and AAAA
        out = await ask(r, f"root-key-sentinel-is-ta-{other:05d}.wild.other.net.", A, do=True)
        assert out.rcode() == dns.rcode.NOERROR and not out.flags & dns.flags.AD
        assert addrs(out, A) == ["198.51.100.9"]
        await r.close()
    run(go())


def test_sentinel_is_off_without_validation(run, signed, signed_port):
    async def go():
        r = resolver.Resolver(root_hints(S), port=signed_port, do_not_query_localhost=False,
                              limits=LIMITS)
        assert r.dnssec is None
        tag, other = _tag(signed), _other_tag(signed)
        for label in (f"is-ta-{other:05d}", f"not-ta-{tag:05d}"):
            out = await ask(r, f"root-key-sentinel-{label}.wild.example.com.", A)
            assert out.rcode() == dns.rcode.NOERROR and addrs(out, A) == ["192.0.2.99"]
        await r.close()
    run(go())


def test_sentinel_can_be_turned_off(run, signed, signed_port, tmp_path):
    from resolver.daemon import config
    from resolver.daemon.server import make_resolver
    path = tmp_path / "resolver.toml"
    path.write_text("root-key-sentinel = false\n")
    assert make_resolver(config.build(str(path), {})).dnssec.root_key_sentinel is False

    async def go():
        r = _signed_resolver(signed, signed_port, dns64=None, root_key_sentinel=False)
        out = await ask(r, f"root-key-sentinel-not-ta-{_tag(signed):05d}.wild.example.com.", A,
                        do=True)
        assert out.rcode() == dns.rcode.NOERROR and out.flags & dns.flags.AD
        await r.close()
    run(go())


def test_library_resolve_sees_the_sentinel(run, signed, signed_port):
    async def go():
        r = _signed_resolver(signed, signed_port, dns64=None)
        with pytest.raises(dns.resolver.NoNameservers):
            await r.resolve(f"root-key-sentinel-not-ta-{_tag(signed):05d}.wild.example.com.",
                            "A")
        ans = await r.resolve(f"root-key-sentinel-is-ta-{_tag(signed):05d}.wild.example.com.",
                              "A")
        assert [rd.to_text() for rd in ans.rrset] == ["192.0.2.99"]
        await r.close()
    run(go())


# ---- the daemon's settings ---------------------------------------------------------------------

def test_daemon_settings_make_the_resolver_s_dns64(tmp_path):
    from resolver.daemon import config
    from resolver.daemon.server import make_resolver
    path = tmp_path / "resolver.toml"
    path.write_text('dns64 = true\ndns64-prefix = "2001:db8:100::/40"\ndns64-synthall = true\n'
                    'dns64-ignore-aaaa = ["example.com"]\nvalidate = false\n')
    cfg = config.build(str(path), {})
    d = make_resolver(cfg).dns64
    assert str(d.prefix) == "2001:db8:100::/40" and d.synthall
    assert d.ignore_aaaa == (dns.name.from_text("example.com.").to_wire(),)
    path.write_text('validate = false\n')
    assert make_resolver(config.build(str(path), {})).dns64 is None


@pytest.mark.parametrize("bad,why", [('"64:ff9b::/80"', "prefix length"),
                                     ('"2001:db8:0:0:100::/96"', "bits 64 to 71"),
                                     ('"64:ff9b::"', "prefix length")])
def test_a_bad_prefix_is_a_config_error_naming_the_key(tmp_path, bad, why):
    from resolver.daemon import config
    from resolver.daemon.config import ConfigError
    path = tmp_path / "resolver.toml"
    path.write_text(f"dns64 = true\ndns64-prefix = {bad}\n")
    with pytest.raises(ConfigError, match=f"dns64-prefix.*{why}|dns64_prefix.*{why}"):
        config.build(str(path), {})


# ---- the daemon, over the NSD lab ----------------------------------------------------------------

def test_the_daemon_serves_dns64(lab, tmp_path):
    """``--dns64 --dns64-prefix``: the lab's v4only.example.com. (A 192.0.2.2, no AAAA) gets
    a synthesised AAAA over UDP and TCP, from the cache the second time; www keeps its own."""
    from daemon_proc import Daemon
    d = Daemon(tmp_path / "d", lab, "--dns64", "--dns64-prefix", "2001:db8:122:344::/64",
               "--no-validate").start()
    try:
        for tcp in (False, True):
            r = d.ask("v4only.example.com.", "AAAA", tcp=tcp)
            assert r.rcode() == dns.rcode.NOERROR, r
            assert addrs(r) == ["2001:db8:122:344:c0:2:200:0"]
        assert addrs(d.ask("www.example.com.", "AAAA")) == ["2001:db8::1"]
        assert addrs(d.ask("v4only.example.com.", "A"), A) == ["192.0.2.2"]
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
