"""``corenet-resolver query`` +nssearch side by side with BIND's dig 9.18 on the lab's port:
the lab's NSD for example.com. (two servers), its silent address and its address where
nothing is bound, and fake servers on the lab's free slots.

dig finds a name server's addresses with the host's resolver (getaddrinfo), so the fakes
name their servers by address (``127.0.0.10.``), which dig and this command both take as
it is."""
from __future__ import annotations

import re
import socket
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset
import pytest

from dnslab import zones as Z
from test_dig_query import _yaml_comparable, comparable, dig, query

#: a name no resolver has (RFC 6761): its NS target's address is "not found"
NOWHERE = "nowhere.invalid."


class Fake:
    """A UDP server at ``address`` on ``port`` that answers each query with
    ``handler(query)`` (None: no answer)."""

    def __init__(self, address: str, port: int, handler):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, port))
        self.sock.settimeout(0.1)         # the loop looks at ``stop`` this often
        self.handler = handler
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            r = self.handler(dns.message.from_wire(data))
            if r is not None:
                self.sock.sendto(r.to_wire(), peer)

    def close(self):
        """Stopped, and its address free again (the thread out of recvfrom first)."""
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def fakes(lab):
    """fakes(address, handler): a Fake on the lab's port, closed after the test."""
    made = []

    def make(address, handler):
        made.append(Fake(address, lab.port, handler))
        return made[-1]

    yield make
    for f in made:
        f.close()


def ns_giver(*targets: str):
    """A recursive server's handler: example.com.'s NS set (``targets``) in the answer for
    example.com. and names under it, a referral to them for refer.example.com., REFUSED
    for anything else."""
    zone, refer = dns.name.from_text("example.com."), dns.name.from_text("refer.example.com.")

    def handle(q):
        r = dns.message.make_response(q)
        r.flags |= dns.flags.RA
        name, rdtype = q.question[0].name, q.question[0].rdtype
        if rdtype == 2 and name == refer:
            r.authority.append(dns.rrset.from_text(refer, 300, "IN", "NS", *targets))
        elif rdtype == 2 and name.is_subdomain(zone):
            r.answer.append(dns.rrset.from_text(zone, 300, "IN", "NS", *targets))
        else:
            r.set_rcode(dns.rcode.REFUSED)
        return r
    return handle


def masked(text: str) -> list[str]:
    """+nssearch's lines, the times masked, in order (dig prints each reply as it comes,
    having shuffled the servers: the order is not compared)."""
    return sorted(re.sub(r" in \d+ ms\.$", " in N ms.", line) for line in text.splitlines())


EXAMPLE = f"{Z.EXAMPLE_COM_1}. {Z.EXAMPLE_COM_2}."


@pytest.mark.parametrize("name, targets, rc", [
    # both example.com. servers of the lab: their SOA, one line each
    ("example.com", EXAMPLE, 0),
    # and a name without an address, one that never answers and one that refuses
    ("example.com", f"{EXAMPLE} {NOWHERE} {Z.SILENT}. {Z.REFUSED}.", 0),
    # a name below the zone: its SOA is asked, the servers answer none (NODATA)
    ("www.example.com", EXAMPLE, 0),
    # a referral (the NS set in the authority section): followed the same way
    ("refer.example.com", EXAMPLE, 0),
    # no server replies: dig's error line, exit 9
    ("example.com", f"{Z.SILENT}. {Z.REFUSED}.", 9),
    # no name server has an address: dig's fatal error (on stderr), exit 1
    ("example.com", NOWHERE, 1),
    # no NS set (REFUSED here): nothing to ask, nothing printed
    ("example.org", EXAMPLE, 0),
])
def test_nssearch_matches_bind_dig(lab, fakes, name, targets, rc):
    fakes(Z.FAKE_TLD_1, ns_giver(*targets.split()))
    args = ["-p", str(lab.port), f"@{Z.FAKE_TLD_1}", name, "+nssearch", "+time=1"]
    ours, theirs = query(*args), dig(*args)
    assert (ours.returncode, theirs.returncode) == (rc, rc), ours.stdout + ours.stderr
    assert masked(ours.stdout) == masked(theirs.stdout), ours.stdout + theirs.stdout
    lines = ours.stdout.splitlines()
    if NOWHERE in targets:                # found (not) before any server is asked
        assert lines[0] == f"couldn't get address for '{NOWHERE.rstrip('.')}': not found"
    if rc == 9:
        assert lines[-1] == ";; NS servers could not be reached"
    if rc == 1:
        assert ours.stderr.split(": ", 1)[1] == theirs.stderr.split(": ", 1)[1], \
            ours.stderr + theirs.stderr
    if name == "example.com" and rc == 0:
        soa = {line.split(" from server ")[1].split(" in ")[0]: line.split(" from server ")[0]
               for line in lines if line.startswith("SOA ")}
        assert soa.keys() == {Z.EXAMPLE_COM_1, Z.EXAMPLE_COM_2}, ours.stdout
        assert set(soa.values()) == {"SOA ns1.example.com. hostmaster.example.com. 1 3600 "
                                     "600 86400 300"}, ours.stdout


def test_nssearch_asked_of_the_zones_own_server(lab):
    """Asked of the lab's NSD (no recursion there): its NS names have no address on the
    host, so, as dig, nothing is asked; a name without an NS set prints nothing."""
    for name in ("example.com", "nope.example.com"):
        args = ["-p", str(lab.port), f"@{Z.EXAMPLE_COM_1}", name, "+nssearch", "+time=1"]
        ours, theirs = query(*args), dig(*args)
        assert ours.returncode == theirs.returncode, ours.stdout + ours.stderr
        assert masked(ours.stdout) == masked(theirs.stdout), ours.stdout + theirs.stdout


def test_nssearch_of_a_server_that_does_not_reply(lab):
    args = ["-p", str(lab.port), f"@{Z.REFUSED}", "example.com", "+nssearch", "+time=1"]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 9, ours.stdout + ours.stderr
    assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout
    assert ours.stdout.rstrip().endswith(";; no servers could be reached")

