"""The TTL clamps beside a real Unbound given the same options: the SOA of a negative answer
(NXDOMAIN, and NODATA) and a positive answer's records carry the same TTL from both, for
each order the clamps can meet in (cache-min-ttl, cache-max-ttl, cache-max-negative-ttl).
The lab's zones give their records a TTL of 3600 s and their SOA a MINIMUM of 300 s.
(cache-min-negative-ttl is Unbound 1.21's; the installed Unbound predates it: its tests are
in test_ttl_clamps.py.)"""
from __future__ import annotations

import dns.message
import dns.query
import dns.rdatatype
import pytest

from daemon_proc import Daemon
from dnslab.unbound import Unbound

# (cache-min-ttl, cache-max-ttl, cache-max-negative-ttl)
CLAMPS = [(0, 86400, 3600), (600, 86400, 100), (60, 200, 3600), (0, 86400, 100),
          (600, 86400, 3600), (1000, 2000, 1500)]
ASKED = [("nope.example.com.", "A"), ("www.example.com.", "TXT"), ("www.example.com.", "A")]


@pytest.fixture(scope="module")
def lab53(tmp_path_factory):
    """The lab on port 53, where Unbound asks its authorities."""
    from dnslab.unbound import lab_on_port_53

    lab = lab_on_port_53(tmp_path_factory.mktemp("ttl-clamps") / "lab")
    try:
        yield lab
    finally:
        lab.stop()


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
def test_clamped_ttls_as_unbound_s(lab53, tmp_path, clamps):
    low, high, negative = clamps
    ub = Unbound.start(tmp_path / "unbound", lab53,
                       extra=f"  cache-min-ttl: {low}\n  cache-max-ttl: {high}\n"
                             f"  cache-max-negative-ttl: {negative}")
    try:
        theirs = ttls(ub.address, ub.port)
    finally:
        ub.stop()
    conf = tmp_path / "clamps.toml"
    conf.write_text(f"cache-min-ttl = {low}\ncache-max-ttl = {high}\n"
                    f"cache-max-negative-ttl = {negative}\n")
    d = Daemon(tmp_path / "d", lab53, "--config", str(conf)).start()
    try:
        ours = ttls("127.0.0.1", d.port)
    finally:
        d.stop()
    assert [r[0] for r in ours] == [3, 0, 0]          # NXDOMAIN, NODATA, an answer
    assert ours == theirs
