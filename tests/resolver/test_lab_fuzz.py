"""Hypothesis-made replies through real sockets: for each example a fake authority sends a
mutated copy of the real reply first (bytes replaced, cut short, or random bytes) and the
real reply 20 ms later. Whatever arrives, the resolution ends within its time limit with an
answer or one of dnspython's resolver errors: no other exception, no hang, and the resolver
keeps working afterwards."""
from __future__ import annotations

import dns.exception
import dns.resolver
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnslab import zones as Z
from dnslab.fake import Garbage, Reply
from dnslab.scenarios import WWW, fault_authority

AUTH = fault_authority()
RESOLVER_ERRORS = (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers,
                   dns.resolver.LifetimeTimeout)

edits = st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=8)
mutations = st.one_of(
    st.tuples(st.just("edit"), edits, st.integers(0, 4096)),
    st.tuples(st.just("random"), st.binary(max_size=600), st.just(0)),
)


def mutate(wire: bytes, mutation) -> bytes:
    kind, data, cut = mutation
    if kind == "random":
        return data
    out = bytearray(wire)
    for pos, byte in data:
        out[pos % len(out)] = byte
    return bytes(out[: max(0, len(out) - cut % (len(out) + 1))] if cut % 3 == 0 else out)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=mutations)
def test_mutated_reply_raced_against_the_real_one(run, fakes_once, lab_resolver, mutation):
    import resolver

    fakes_once["mutation"] = mutation
    limits = resolver.Limits().replace(max_query_time=1.0)

    async def go():
        r = lab_resolver(limits=limits)
        try:
            await r.resolve(WWW, "A")
        except RESOLVER_ERRORS:  # a mutation may well say NXDOMAIN with the right ID
            pass
        # whatever the mutated reply did, another name still resolves through the same servers
        ans = await r.resolve("n007.fault.", "A")
        assert [x.to_text() for x in ans.rrset] == ["192.0.2.8"]

    run(go(), timeout=limits.max_query_time * 2 + 5)


@pytest.fixture
def fakes_once(fakes):
    """Both fault slots, started once per test (not per example), sending the current
    example's mutation first for www.fault. and plain answers for everything else."""
    state: dict = {"mutation": ("edit", [], 1)}

    def handler(seen):
        if seen.message is None:
            return None
        real = AUTH(seen.message)
        if seen.qname.lower() != WWW:
            return real
        bad = mutate(real.to_wire(), state["mutation"])
        return [Garbage(bad), Reply(real, delay=0.02)]

    for a in (Z.FAKE_TLD_1, Z.FAKE_TLD_2):
        fakes(a, handler)
    return state


def test_fuzz_helper_mutates():
    wire = bytes(range(40))
    assert mutate(wire, ("edit", [(0, 255), (41, 7)], 1)) == bytes([255, 7]) + wire[2:]
    assert mutate(wire, ("edit", [], 3)) == wire[:37]
    assert mutate(wire, ("random", b"xyz", 0)) == b"xyz"
