"""Client-IP, NSDNAME and NSIP triggers side by side with Unbound: both resolve the lab (on
port 53, where Unbound asks) under a policy zone of those triggers alone, and give the same
rcode, AA flag and answer section to a client the client-IP network holds and one it does
not, for a name whose zone's server an NSDNAME trigger names and one whose server's address
an NSIP trigger holds. Each is asked of corenet-resolver again, from its cache, where the
front door answers the untouched name itself and leaves the rest to the policy: the same
answer. (A module of its own: its lab and Unbound take port 53, which the other side-by-side
module's pair holds until that module ends.)"""
from __future__ import annotations

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from daemon_proc import beside_unbound
from test_rpz_unbound import HEAD, _answer


#: client-IP, NSDNAME and NSIP triggers alone: 127.0.0.2 is a client the first holds,
#: z001.org's server (ns.z001.org) the second's, bulk.net's address (127.0.0.13) the third's
MIXED = """32.2.0.0.127.rpz-client-ip CNAME .
*.z001.org.rpz-nsdname CNAME .
32.13.0.0.127.rpz-nsip CNAME *.
"""


@pytest.fixture(scope="module")
def mixed_pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rpz-mixed-vs-unbound")
    path = tmp / "mixed.rpz.zone"
    path.write_text(HEAD.format(origin="mixed.rpz.") + MIXED)
    conf = tmp / "rpz.toml"
    conf.write_text(f'[[rpz]]\nname = "mixed.rpz."\nzonefile = "{path}"\n')
    ub_rpz = ['  module-config: "respip iterator"', "rpz:", "  name: mixed.rpz.",
              f'  zonefile: "{path}"']
    with beside_unbound(tmp, "--config", str(conf), unbound_extra="\n".join(ub_rpz)) as pair:
        yield pair


@pytest.mark.parametrize("name, source, rcode, answer", [
    ("www.example.com.", "127.0.0.1", "NOERROR", [("www.example.com.", "A", "192.0.2.1"),
                                                  ("www.example.com.", "A", "192.0.2.11")]),
    ("www.example.com.", "127.0.0.2", "NXDOMAIN", []),      # client-IP, on a cached name
    ("www.z001.org.", "127.0.0.1", "NXDOMAIN", []),         # NSDNAME
    ("h001.bulk.net.", "127.0.0.1", "NOERROR", []),         # NSIP: NODATA
])
def test_client_ip_nsdname_and_nsip_triggers_answer_as_unbound(mixed_pair, name, source,
                                                                rcode, answer):
    """The same answer from both servers, the first time and (corenet-resolver) again from
    its cache, where the door answers the untouched name and leaves the rest to the
    policy."""
    ub, d = mixed_pair
    q = dns.message.make_query(name, "A")
    theirs = dns.query.udp(q, ub.address, port=ub.port, source=source, timeout=10)
    ours = dns.query.udp(q, "127.0.0.1", port=d.port, source=source, timeout=10)
    shown = f"{name} from {source}\nours:\n{ours}\nunbound:\n{theirs}"
    assert dns.rcode.to_text(theirs.rcode()) == rcode and _answer(theirs) == answer, shown
    assert ours.rcode() == theirs.rcode() and _answer(ours) == _answer(theirs), shown
    assert bool(ours.flags & dns.flags.AA) == bool(theirs.flags & dns.flags.AA), shown
    for _ in range(2):
        again = dns.query.udp(q, "127.0.0.1", port=d.port, source=source, timeout=10)
        assert again.rcode() == ours.rcode() and _answer(again) == _answer(ours), again
