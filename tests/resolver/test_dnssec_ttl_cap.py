"""RFC 4035 5.3.3 on a resolution: a secure answer's TTL is no longer than its RRSIG's
original TTL, even when the authority serves the rrset with a longer one."""
from __future__ import annotations

import time

import dns.name
import dns.rdataset

from resolver.dnssec import SECURE
from test_dnssec_scenario import run, signed_internet


def test_answer_ttl_capped_by_the_rrsig_original_ttl():
    wall = time.time()
    net, anchor = signed_internet(wall)
    z = net.zones[dns.name.from_text("example.com.")]
    with z.writer() as txn:                   # signed with TTL 300, now served with 900
        txn.replace(dns.name.from_text("www.example.com."),
                    dns.rdataset.from_text("IN", "A", 900, "192.0.2.1"))
    res, _it, _v = run(net, anchor, lambda: wall)
    assert res.security == SECURE
    ttls = {(r[1], r[3]) for r in res.answer}
    assert (1, 300) in ttls and not any(t == 1 and ttl > 300 for t, ttl in ttls)
