"""The answer before the store, with validation on: on corenet's loop the final answer's
rrsets reach the rrset cache only once the answer has been handed over, and at the rank the
validator gave them meanwhile (VALIDATED, their lifetime capped by the signature), so the
next question that reads them checks no signature. On stock asyncio they are stored first."""
from __future__ import annotations

import asyncio
import time

import dns.flags
import dns.message
import dns.name
import dns.rcode

from resolver.daemon.admission import ALLOWED_ACL, CallReply
from resolver import cache as C

A, DNSKEY = 1, 48


def W(name: str) -> bytes:
    return dns.name.from_text(name).to_wire()


def _entry(r, name: str, rdtype: int = A):
    return r.cache.rrsets.lru.peek((W(name).lower(), rdtype, 1))


async def _settle() -> None:
    """Lets the loop reach its next poll, where the deferred stores run."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def _server(r):
    """The daemon's miss path over resolver ``r``."""
    from ports import free_port
    from resolver.daemon.config import build
    from resolver.daemon.server import Server

    cfg = build(None, {"listen": [f"127.0.0.1:{free_port()}"], "root_hints": None})
    s = Server(cfg, resolver=r)
    s.loop = asyncio.get_running_loop()
    return s


def _ask(s, name: str, rdtype: str = "A"):
    """(future of the response, what the rrset cache held for the name when the response
    was handed to the listener)."""
    fut = s.loop.create_future()
    seen = []
    q = dns.message.make_query(name, rdtype, want_dnssec=True)

    def send(out: bytes) -> None:
        seen.append(_entry(s.resolver, name, q.question[0].rdtype))
        fut.set_result(dns.message.from_wire(out))

    assert s.front.handle(q.to_wire(), ALLOWED_ACL,
                          CallReply("udp", ("127.0.0.1", 5353), send)) >= 0
    return fut, seen


def test_validated_answer_is_stored_after_it_is_handed_over(run, validating, loop_kind):
    async def go():
        r = validating()
        s = _server(r)
        # the chain of trust and example.com.'s keys: the next answer needs no lookup
        fut, _ = _ask(s, "www.example.com.")
        assert (await fut).flags & dns.flags.AD
        await _settle()
        assert _entry(r, "www.example.com.").rank == C.VALIDATED
        checks = r.dnssec.stats.sig_checks
        fut, seen = _ask(s, "mail.example.com.")
        resp = await fut
        assert resp.rcode() == dns.rcode.NOERROR and resp.flags & dns.flags.AD
        assert r.dnssec.stats.sig_checks == checks + 1          # its own signature only
        if loop_kind.startswith("corenet"):
            assert seen == [None]                 # not yet stored: the answer went first
        else:
            assert seen[0] is not None
        await _settle()
        e = _entry(r, "mail.example.com.")
        assert e is not None and e.rank == C.VALIDATED
        assert e.expires <= time.monotonic() + resp.answer[0].ttl + 1
        # another variant of the question (no DO) is built from the validated rrset: no crypto
        plain = await r.resolve_message(dns.message.make_query("mail.example.com.", "A",
                                                               use_edns=0))
        assert plain.rcode() == dns.rcode.NOERROR and plain.answer
        assert r.dnssec.stats.sig_checks == checks + 1

    run(go(), timeout=15)


def test_bogus_answer_is_stored_below_validated_and_briefly(run, validating):
    """The deferred store stores what the verdict says: a bogus answer's rrsets are never
    raised, and kept only as long as the bogus verdict, so the next query after it asks the
    servers again rather than validating the same (possibly forged) data from the cache."""
    async def go():
        r = validating()
        s = _server(r)
        fut, _ = _ask(s, "www.example.com.")
        await fut
        fut, _ = _ask(s, "www.altered.com.")
        assert (await fut).rcode() == dns.rcode.SERVFAIL
        await _settle()
        e = _entry(r, "www.altered.com.")
        assert e is not None and e.rank < C.VALIDATED, "bogus data kept, never ranked up"
        assert e.expires <= r.clock() + r.limits.dnssec_bogus_ttl, "kept past its verdict"

    run(go(), timeout=15)


def test_a_question_for_keys_is_stored_before_its_validation_reads_them(run, validating):
    """A client's DNSKEY question is what its own validation looks up: the key set is in
    the cache, VALIDATED, by the time the answer is handed over."""
    async def go():
        r = validating()
        s = _server(r)
        fut, seen = _ask(s, "example.com.", "DNSKEY")
        resp = await fut
        assert resp.rcode() == dns.rcode.NOERROR and resp.flags & dns.flags.AD
        assert seen[0] is not None and seen[0].rank == C.VALIDATED

    run(go(), timeout=15)
