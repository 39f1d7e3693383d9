"""The TTL clamps beside a real Unbound given the same options: the SOA of a negative answer
(NXDOMAIN, and NODATA) and a positive answer's records carry the same TTL from both, for
each order the clamps can meet in (cache-min-ttl, cache-max-ttl, cache-max-negative-ttl).
The lab's zones give their records a TTL of 3600 s and their SOA a MINIMUM of 300 s.
A TTL is counted down in whole seconds from when the answer was stored, so either side may
answer one less when a second ticks between storing and answering: the same TTL is the same
within 1 s.
(cache-min-negative-ttl is Unbound 1.21's; the installed Unbound predates it: its tests are
in test_ttl_clamps.py.)"""
from __future__ import annotations

import dns.message
import dns.query
import dns.rdatatype
import pytest

from daemon_proc import beside_unbound

# (cache-min-ttl, cache-max-ttl, cache-max-negative-ttl)
CLAMPS = [(0, 86400, 3600), (600, 86400, 100), (60, 200, 3600), (0, 86400, 100),
          (600, 86400, 3600), (1000, 2000, 1500)]
ASKED = [("nope.example.com.", "A"), ("www.example.com.", "TXT"), ("www.example.com.", "A")]


def ttls(address: str, port: int) -> list[tuple]:
    """(rcode, answer TTLs, authority SOA TTLs) of each of ASKED, asked once."""
    out = []
    for name, rdtype in ASKED:
        r = dns.query.udp(dns.message.make_query(name, rdtype), address, port=port, timeout=5)
        out.append((r.rcode(), sorted(rrset.ttl for rrset in r.answer),
                    sorted(rrset.ttl for rrset in r.authority
                           if rrset.rdtype == dns.rdatatype.SOA)))
    return out


@pytest.mark.parametrize("clamps", CLAMPS, ids=lambda c: "min%d-max%d-maxneg%d" % c)
def test_clamped_ttls_as_unbound_s(tmp_path, clamps):
    low, high, negative = clamps
    conf = tmp_path / "clamps.toml"
    conf.write_text(f"cache-min-ttl = {low}\ncache-max-ttl = {high}\n"
                    f"cache-max-negative-ttl = {negative}\n")
    with beside_unbound(tmp_path, "--config", str(conf),
                        unbound_extra=f"  cache-min-ttl: {low}\n  cache-max-ttl: {high}\n"
                                      f"  cache-max-negative-ttl: {negative}") as (ub, d):
        theirs = ttls(ub.address, ub.port)
        ours = ttls("127.0.0.1", d.port)
    assert [r[0] for r in ours] == [3, 0, 0]          # NXDOMAIN, NODATA, an answer
    assert [(rcode, len(answer), len(soa)) for rcode, answer, soa in ours] == \
        [(rcode, len(answer), len(soa)) for rcode, answer, soa in theirs]
    for (_, answer, soa), (_, their_answer, their_soa) in zip(ours, theirs):
        for ttl, their_ttl in zip(answer + soa, their_answer + their_soa):
            assert abs(ttl - their_ttl) <= 1, (ours, theirs)
