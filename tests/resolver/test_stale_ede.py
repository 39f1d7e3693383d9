"""Expired answers served (RFC 8767), side by side with a real Unbound given the same
options over the same authority: the Extended DNS Error that says so (RFC 8914's Stale
Answer, 3: ``ede-serve-expired``), and an expired answer left by clients that send EDNS
serving one that does not (glibc's stub), and the other way round. Both forward
``stale.example.`` to a server on loopback that answers with a one-second TTL, then falls
silent once the answers have expired; both serve the expired answer at once (a client
timeout of 0)."""
from __future__ import annotations

import os
import shutil
import socket
import time

import dns.edns
import dns.message
import pytest
from ci_policy import unavailable

from daemon_proc import Daemon
from dnslab.unbound import local_unbound
from loopback_authority import LoopbackAuthority
from ports import free_port
from procs import stop as stop_process

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
NAME = "www.stale.example."
#: asked while fresh by clients of one kind only: without EDNS, then expired with it
OTHER = "mail.stale.example."
STALE_TTL = 30                    # the TTL of an expired answer, both resolvers' default


def ask(port: int, edns: bool, name: str = NAME) -> dns.message.Message:
    q = dns.message.make_query(name, "A", use_edns=0 if edns else False)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.sendto(q.to_wire(), ("127.0.0.1", port))
        return dns.message.from_wire(s.recv(4096))


def seen(m: dns.message.Message) -> tuple:
    """What a client reads: the answer's address and TTL, and the EDE codes (None: no
    EDNS in the response)."""
    (rrset,) = m.answer
    codes = None if m.edns < 0 else [o.code for o in m.options
                                     if isinstance(o, dns.edns.EDEOption)]
    return {rd.to_text() for rd in rrset}, rrset.ttl, codes


@pytest.mark.parametrize("marked", [True, False])
def test_expired_answers_and_stale_answer_as_unbound_s(lab, tmp_path, marked):
    if not os.path.exists(UNBOUND):
        unavailable(f"{UNBOUND} is missing (Debian package 'unbound')")
    authority = LoopbackAuthority("192.0.2.50", ttl=1)
    yes = "yes" if marked else "no"
    uport = free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, ["serve-expired: yes", "serve-expired-client-timeout: 0",
                                    "ede: yes", f"ede-serve-expired: {yes}",
                                    "do-not-query-localhost: no", "forward-zone:",
                                    'name: "stale.example."',
                                    f"forward-addr: 127.0.0.1@{authority.port}"])
    conf = tmp_path / "resolver.toml"
    conf.write_text("serve-stale-client-timeout = 0\nede = true\n"
                    f"ede-serve-expired = {str(marked).lower()}\n"
                    'domain-insecure = ["stale.example."]\n'
                    f'[[forward-zone]]\nname = "stale.example."\n'
                    f'forward-addr = ["127.0.0.1@{authority.port}"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        ports = {"unbound": uport, "corenet": d.port}
        for who, port in ports.items():       # fresh: no error to report
            assert seen(ask(port, True)) == ({"192.0.2.50"}, 1, []), who
            assert seen(ask(port, False, OTHER)) == ({"192.0.2.50"}, 1, None), who
        time.sleep(2.2)        # past the TTL by a whole second: Unbound counts in seconds
        authority.silent.set()
        stale = [3] if marked else []
        for who, port in ports.items():
            assert seen(ask(port, True)) == ({"192.0.2.50"}, STALE_TTL, stale), who
            # without EDNS there is no OPT record to carry it: the plain expired answer,
            # though only clients with EDNS asked while it was fresh
            assert seen(ask(port, False)) == ({"192.0.2.50"}, STALE_TTL, None), who
            assert seen(ask(port, True, OTHER)) == ({"192.0.2.50"}, STALE_TTL, stale), who
        assert d.stats()["engine"]["stale_answers"] == 3
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        stop_process(proc, 5.0, group=True)
        authority.close()
        assert d.stop() == 0, d.log_text()[-2000:]
