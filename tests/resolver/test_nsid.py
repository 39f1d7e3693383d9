"""``nsid``: the name server identifier (RFC 5001), side by side with a real Unbound given
the same option. A query carrying an empty NSID option gets the identifier in its answer's
OPT record, over UDP and TCP, for a local name, a name resolved from an authority and the
same name again from the cache; a query without the option, or without EDNS, gets none."""
from __future__ import annotations

import os
import shutil

import dns.edns
import dns.message
import dns.query
import pytest
from ci_policy import unavailable

from daemon_proc import Daemon
from dnslab.unbound import local_unbound
from loopback_authority import LoopbackAuthority
from ports import free_port
from procs import stop as stop_process

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
NSID = 3


def ask(port: int, name: str, tcp: bool, edns: bool = True, nsid: bool = True):
    """The EDNS options of the answer (None: no OPT record) and its answer records."""
    options = [dns.edns.GenericOption(NSID, b"")] if nsid and edns else None
    q = dns.message.make_query(name, "A", use_edns=0 if edns else False, options=options)
    r = (dns.query.tcp if tcp else dns.query.udp)(q, "127.0.0.1", port=port, timeout=5)
    got = None if r.edns < 0 else [(o.otype, o.to_wire()) for o in r.options]
    return got, sorted(rd.to_text() for rrset in r.answer for rd in rrset)


@pytest.mark.parametrize("written", ["ascii_resolver1", "7265736f6c76657231"])
def test_a_query_that_asks_is_told_the_identifier_as_unbound_s(lab, tmp_path, written):
    if not os.path.exists(UNBOUND):
        unavailable(f"{UNBOUND} is missing (Debian package 'unbound')")
    authority = LoopbackAuthority("192.0.2.60")
    uport = free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, [f'nsid: "{written}"', "local-zone: test. static",
                                    'local-data: "a.test. A 10.0.0.1"',
                                    "do-not-query-localhost: no", "forward-zone:",
                                    'name: "far.example."',
                                    f"forward-addr: 127.0.0.1@{authority.port}"])
    conf = tmp_path / "resolver.toml"
    conf.write_text(f'nsid = "{written}"\nlocal-data = ["a.test. 300 A 10.0.0.1"]\n'
                    'domain-insecure = ["far.example."]\n'
                    '[[forward-zone]]\nname = "far.example."\n'
                    f'forward-addr = ["127.0.0.1@{authority.port}"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    told = [(NSID, b"resolver1")]
    try:
        for who, port in (("unbound", uport), ("corenet", d.port)):
            for tcp in (False, True):
                assert ask(port, "a.test.", tcp) == (told, ["10.0.0.1"]), (who, tcp)
                # resolved from the authority, then from the cache
                for _ in range(2):
                    assert ask(port, "www.far.example.", tcp) == (told, ["192.0.2.60"]), \
                        (who, tcp)
                assert ask(port, "www.far.example.", tcp, nsid=False) == ([], ["192.0.2.60"])
                assert ask(port, "a.test.", tcp, edns=False) == (None, ["10.0.0.1"])
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        stop_process(proc, 5.0, group=True)
        authority.close()
        assert d.stop() == 0, d.log_text()[-2000:]


def test_a_cached_answer_asked_for_the_identifier_is_a_hit_past_the_miss_budgets(lab, tmp_path):
    """The cache answers a query that asks for the identifier as any other (the identifier
    goes in before the answer is cut to the client's UDP size): a client past its
    ``ip-ratelimit`` of misses still gets it, as its other hits."""
    conf = tmp_path / "resolver.toml"
    conf.write_text('nsid = "ascii_r1"\nip-ratelimit = 1\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        assert ask(d.port, "www.example.com.", False, nsid=False)[1]    # the one miss
        for tcp in (False, True, False, False, True):
            options, answer = ask(d.port, "www.example.com.", tcp)
            assert options == [(NSID, b"r1")] and answer, tcp
        stats = d.stats()
        assert stats["engine"]["cache_hits"] == 5, stats["engine"]
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
