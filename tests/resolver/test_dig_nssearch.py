"""``corenet-resolver query`` +nssearch, and +trace with +yaml, side by side with BIND's dig
9.18 on the lab's port: the lab's NSD for example.com. (two servers), its silent address
and its address where nothing is bound, and fake servers on the lab's free slots.

dig finds a name server's addresses with the host's resolver (getaddrinfo), for +nssearch
and for every referral of +trace, so the fakes name their servers by address
(``127.0.0.10.``), which dig and this command both take as it is."""
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
    if NOWHERE in targets:                # looked up (in vain) before any server is asked
        # ("not found", or "failure" where the host's resolver cannot be reached)
        assert lines[0].startswith(f"couldn't get address for '{NOWHERE.rstrip('.')}': ")
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


@pytest.mark.parametrize("args, rc", [
    # +nssearch's fatal error ends the command: the look-up after it is not asked
    ([f"@{Z.FAKE_TLD_1}", "example.com", "+nssearch", "www.example.com", f"@{Z.REFUSED}",
      "+tries=1"], 1),
    # lost tries of an earlier look-up (exit status 9 then), and of this one's first
    # server: cleared as the query goes, the fatal error's status is 1
    ([f"@{Z.REFUSED}", "www.example.com", "+tries=1", "example.com", f"@{Z.FAKE_TLD_1}",
      "+nssearch"], 1),
    ([f"@{Z.REFUSED}", f"@{Z.FAKE_TLD_1}", "example.com", "+nssearch", "+tries=2"], 1),
    # dig's status is the last look-up's: an unanswered one, then an answered one, 0
    ([f"@{Z.REFUSED}", "www.example.com", "+tries=1", "+nssearch", "example.com",
      f"@{Z.FAKE_TLD_1}"], 0),
    (["example.com", "NS", f"@{Z.FAKE_TLD_1}", "www.example.com", f"@{Z.REFUSED}",
      "+tries=1"], 9),
])
def test_exit_status_and_fatal_error_as_dig(lab, fakes, args, rc):
    """dig's exit status: 9 when a look-up goes unanswered, cleared as the next query goes;
    its fatal error (no NS name with an address) exits with the status then, else 1, and
    asks nothing more."""
    fakes(Z.FAKE_TLD_1, ns_giver(NOWHERE))
    args = ["-p", str(lab.port), *args, "+time=1"]
    ours, theirs = query(*args), dig(*args)
    assert (ours.returncode, theirs.returncode) == (rc, rc), ours.stdout + ours.stderr
    assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout
    assert ours.stderr.split(": ", 1)[1:] == theirs.stderr.split(": ", 1)[1:], ours.stderr


def entries(text: str) -> list[str]:
    """+yaml's text as its entries (lines before the first one an entry of their own), each
    without what differs between two runs, in sorted order (the replies come as they come)."""
    out, cur = [], []
    for line in _yaml_comparable(text):
        if line.startswith("- type: ") and cur:
            out.append("\n".join(cur))
            cur = []
        cur.append(re.sub(r" in \d+ ms\.$", " in N ms.", line))
    return sorted(out + ["\n".join(cur)] if cur else out)


@pytest.mark.parametrize("name, targets, rc", [
    ("example.com", EXAMPLE, 0),
    ("example.com", f"{EXAMPLE} {NOWHERE} {Z.SILENT}. {Z.REFUSED}.", 0),
    ("www.example.com", EXAMPLE, 0),
    ("example.com", f"{Z.SILENT}. {Z.REFUSED}.", 9),
    ("example.com", NOWHERE, 1),
])
def test_nssearch_with_yaml_matches_bind_dig(lab, fakes, name, targets, rc):
    """+yaml: each reply's header as a YAML entry, then its lines; the lost tries left out;
    "NS servers could not be reached" a DIG_ERROR entry."""
    fakes(Z.FAKE_TLD_1, ns_giver(*targets.split()))
    args = ["-p", str(lab.port), f"@{Z.FAKE_TLD_1}", name, "+nssearch", "+time=1", "+yaml"]
    ours, theirs = query(*args), dig(*args)
    assert (ours.returncode, theirs.returncode) == (rc, rc), ours.stdout + ours.stderr
    assert entries(ours.stdout) == entries(theirs.stdout), ours.stdout + theirs.stdout
    assert "communications error" not in ours.stdout
    if rc == 0 and name == "example.com":
        assert ours.stdout.count("    type: AUTH_RESPONSE\n") == 2, ours.stdout
    if rc == 9:
        assert ours.stdout == ("- type: DIG_ERROR\n  message: |\n"
                               "    NS servers could not be reached\n")


def test_nssearch_with_yaml_of_a_server_that_does_not_reply(lab):
    args = ["-p", str(lab.port), f"@{Z.REFUSED}", "example.com", "+nssearch", "+time=1",
            "+yaml"]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 9, ours.stdout + ours.stderr
    assert comparable(ours.stdout) == comparable(theirs.stdout), ours.stdout + theirs.stdout
    assert ours.stdout.endswith("- type: DIG_ERROR\n  message: |\n"
                                "    no servers could be reached\n"), ours.stdout


@pytest.mark.parametrize("args", [
    ["example.com", "+nssearch", "example.com", "NS"],
    ["example.com", "NS", "example.com", "+nssearch"],
    ["example.com", "+nssearch", "example.com", "NS", "+comments"],
])
def test_nssearch_makes_every_look_up_short(lab, fakes, args):
    """As dig's: +nssearch turns +short on for the whole command line, the look-ups
    before it too (the lines' order is not compared: +nssearch's come as the replies come,
    and the NS set's order differs between two asks)."""
    fakes(Z.FAKE_TLD_1, ns_giver(f"{Z.EXAMPLE_COM_1}.", f"{Z.EXAMPLE_COM_2}."))
    args = ["-p", str(lab.port), f"@{Z.FAKE_TLD_1}", *args, "+time=1"]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 0, ours.stdout + ours.stderr
    assert masked(ours.stdout) == masked(theirs.stdout), ours.stdout + theirs.stdout
    others = [line for line in ours.stdout.splitlines() if not line.startswith("SOA ")]
    assert sorted(others) == [f"{Z.EXAMPLE_COM_1}.", f"{Z.EXAMPLE_COM_2}."], ours.stdout


# ---- +trace, and +trace +yaml ---------------------------------------------------------------
def soa(zone):
    return dns.rrset.from_text(zone, 300, "IN", "SOA", f"ns.{zone} host.{zone} 1 2 3 4 5")


def referring_root(root: str, referrals: dict[str, list[str]]):
    """A root's handler: its NS set (itself, ``root``, by address) for the root's NS, for a
    name in a zone of ``referrals`` a referral to that zone's NS names (no glue),
    NXDOMAIN for the rest."""
    zones = {dns.name.from_text(zone): targets for zone, targets in referrals.items()}

    def at_root(q):
        r = dns.message.make_response(q)
        if q.flags & dns.flags.RD:
            r.flags |= dns.flags.RA
        name, rdtype = q.question[0].name, q.question[0].rdtype
        if name == dns.name.root and rdtype == 2:
            r.flags |= dns.flags.AA
            r.answer.append(dns.rrset.from_text(name, 300, "IN", "NS", f"{root}."))
            return r
        for zone, targets in zones.items():
            if name.is_subdomain(zone):
                r.authority.append(dns.rrset.from_text(zone, 300, "IN", "NS", *targets))
                return r
        r.flags |= dns.flags.AA
        r.set_rcode(dns.rcode.NXDOMAIN)
        r.authority.append(soa(dns.name.root))
        return r
    return at_root


def tree(root: str, auth: str):
    """(root's handler, auth's handler): a root whose NS set is itself, by address, that
    refers example.test. to ``auth`` (by address), dead.test. to the lab's address
    where nothing is bound and two.test. to that one and the lab's silent one; ``auth``
    answers www.example.test. A, NXDOMAIN otherwise."""
    example = dns.name.from_text("example.test.")
    at_root = referring_root(root, {"example.test.": [f"{auth}."],
                                    "dead.test.": [f"{Z.REFUSED}."],
                                    "two.test.": [f"{Z.REFUSED}.", f"{Z.SILENT}."]})

    def at_auth(q):
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        name, rdtype = q.question[0].name, q.question[0].rdtype
        if name == dns.name.from_text("www.example.test.") and rdtype == 1:
            r.answer.append(dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.7"))
        else:
            r.set_rcode(dns.rcode.NXDOMAIN)
            r.authority.append(soa(example))
        return r
    return at_root, at_auth


@pytest.fixture
def fake_tree(fakes):
    at_root, at_auth = tree(Z.FAKE_TLD_1, Z.FAKE_TLD_2)
    fakes(Z.FAKE_TLD_1, at_root)
    fakes(Z.FAKE_TLD_2, at_auth)


def same(text: str) -> list[str]:
    """+trace's text or YAML without what differs between two runs: the version line,
    times, ids, cookies."""
    return [re.sub(r"in \d+ ms(\.?)$", r"in N ms\1", line)
            for line in _yaml_comparable(text) if not line.startswith("; <<>>")]


@pytest.mark.parametrize("server, args, rc", [
    ("root", ["www.example.test", "+yaml"], 0),
    ("root", ["nope.example.test", "+yaml"], 0),
    ("root", ["www.example.test", "+yaml", "+dnssec"], 0),
    ("root", ["www.example.test", "+yaml", "+multi", "+nocmd"], 0),
    ("root", ["www.example.test", "+yaml", "+comments"], 0),
    ("root", ["www.example.test", "+yaml", "+short"], 0),   # the header, then the lines
    ("root", ["www.example.test"], 0),
    ("root", ["nope.example.test"], 0),
    ("root", ["www.example.test", "+short"], 0),       # each line with its type and server
    ("root", ["www.example.test", "+short", "+noidentify"], 0),
    # the referral's server refuses: dig's lost tries, then its error (with +yaml a
    # DIG_ERROR entry, the lost tries left out)
    ("root", ["www.dead.test", "+tries=2"], 9),
    ("root", ["www.dead.test", "+yaml", "+tries=2"], 9),
    # the server asked first refuses: the command lines come with the error
    ("refused", ["www.example.test", "+tries=2"], 9),
    ("refused", ["www.example.test", "+yaml", "+tries=2"], 9),
    # over TCP, the connection refused: dig's "Connection to ... for NAME failed" (the
    # name as given, though the root's NS set is asked), no command lines
    ("refused", ["www.example.test", "+tcp"], 9),
    ("refused", ["www.example.test", "+tcp", "+tries=2"], 9),
])
def test_trace_and_yaml_trace_match_bind_dig(lab, fake_tree, server, args, rc):
    """+trace @SERVER down a tree whose servers are named by address; with +yaml each step
    is a YAML document entry (the answer and authority sections, as +trace shows them)."""
    at = Z.FAKE_TLD_1 if server == "root" else Z.REFUSED
    args = ["-p", str(lab.port), f"@{at}", *args, "+trace"]
    ours, theirs = query(*args), dig(*args)
    assert (ours.returncode, theirs.returncode) == (rc, rc), ours.stdout + ours.stderr
    assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout
    if "+yaml" in args and rc == 0:
        docs = ours.stdout.split("- type: MESSAGE\n")
        assert docs[0] == "" and len(docs) == 4, ours.stdout      # root NS, referral, end
        assert "    type: RECURSIVE_RESPONSE\n" in docs[1]
        assert all("    type: AUTH_RESPONSE\n" in d for d in docs[2:])
        assert f'response_address: "{Z.FAKE_TLD_2}"' in docs[3]
    if "+yaml" in args and rc == 9:
        assert ours.stdout.endswith("- type: DIG_ERROR\n  message: |\n"
                                    "    no servers could be reached\n"), ours.stdout
        assert "communications error" not in ours.stdout


@pytest.mark.parametrize("args", [["+tries=1"], ["+tries=2"], ["+tries=1", "+qr"]])
def test_yaml_of_a_server_that_does_not_reply(lab, args):
    """Without +trace too: the lost tries left out, the command lines then dig's error as
    a DIG_ERROR entry (after the query, with +qr)."""
    args = ["-p", str(lab.port), f"@{Z.REFUSED}", "www.example.com", "+yaml", *args]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 9, ours.stdout + ours.stderr
    assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout
    assert ours.stdout.endswith("- type: DIG_ERROR\n  message: |\n"
                                "    no servers could be reached\n"), ours.stdout


def dropping(handler, n: int):
    """``handler``, but the first ``n`` queries for a name other than the root's go
    unanswered (the root's NS set, asked first, is answered)."""
    left = [n]

    def handle(q):
        if q.question[0].name != dns.name.root and left[0] > 0:
            left[0] -= 1
            return None
        return handler(q)
    return handle


@pytest.mark.parametrize("lost_at_root, lost_at_auth, opts, rc", [
    (1, 1, ["+tries=3"], 0),
    # the tries are the trace's, not each step's: the root's lost try leaves two
    (1, 2, ["+tries=3"], 9),
    (0, 3, ["+tries=3"], 9),
    (0, 2, ["+tries=3"], 0),
    (1, 1, ["+tries=2"], 9),
    (1, 2, ["+tries=3", "+yaml"], 9),
    (1, 1, ["+tries=3", "+short"], 0),
])
def test_trace_tries_are_the_traces_as_dig(lab, fakes, lost_at_root, lost_at_auth, opts, rc):
    """dig's +trace: each step is a look-up that has the tries the steps before it left
    (a lost try over UDP asked again of the same server, then the next server), each
    lost try said, then "no servers could be reached" with the command lines."""
    at_root, at_auth = tree(Z.FAKE_TLD_1, Z.FAKE_TLD_2)
    args = ["-p", str(lab.port), f"@{Z.FAKE_TLD_1}", "www.example.test", "+trace",
            "+time=1", *opts]
    out = {}
    for run in (query, dig):              # each run has servers of its own, tries fresh
        root = fakes(Z.FAKE_TLD_1, dropping(at_root, lost_at_root))
        auth = fakes(Z.FAKE_TLD_2, dropping(at_auth, lost_at_auth))
        out[run] = run(*args)
        root.close()
        auth.close()
    ours, theirs = out[query], out[dig]
    assert (ours.returncode, theirs.returncode) == (rc, rc), ours.stdout + theirs.stdout
    assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout
    if "+yaml" not in opts:
        lost = ours.stdout.count(";; communications error to ")
        assert lost == min(lost_at_root + lost_at_auth, int(opts[0][len("+tries="):])), \
            ours.stdout


@pytest.mark.parametrize("opts", [["+tries=2"], ["+tries=3"], ["+tries=1"]])
def test_trace_step_of_two_servers_that_do_not_reply_as_dig(lab, fake_tree, opts):
    """A referral to two servers, one refusing, one silent: dig asks them in a random
    order, the first with the tries left, the second with the one left (the lines'
    order is not compared)."""
    args = ["-p", str(lab.port), f"@{Z.FAKE_TLD_1}", "www.two.test", "+trace", "+time=1",
            *opts]
    ours, theirs = query(*args), dig(*args)
    assert ours.returncode == theirs.returncode == 9, ours.stdout + theirs.stdout
    tries = int(opts[0][len("+tries="):])

    def shape(text):
        """The lines but the lost tries', and the lost tries' lines: the first server's
        ``tries`` times, then the other's once."""
        lines = same(text)
        lost = [line for line in lines if "communications error" in line]
        first, other = lost[0], lost[-1]
        assert lost == [first] * tries + [other] and first != other, text
        # (the fake's NS records come in a random order: the lines sorted)
        return sorted(line for line in lines if line not in lost), {first, other}
    assert shape(ours.stdout) == shape(theirs.stdout), ours.stdout + theirs.stdout


@pytest.mark.parametrize("targets, opts, rc", [
    # a server with no route to it, over IPv4 and IPv6: dig's "UDP setup with ... failed",
    # one refusing (a packet went: "communications error"), one replying
    (["127.0.0.1.", "192.0.2.1.", "2001:db8::1.", "127.0.0.2."], [], 0),
    # over TCP: "Connection to ... failed", the refused one too
    (["127.0.0.1.", "192.0.2.1.", "2001:db8::1.", "127.0.0.2."], ["+tcp"], 0),
    # none reached: dig's error line, exit 9 (the name said as given)
    (["192.0.2.1.", "2001:db8::1."], [], 9),
    (["192.0.2.1."], ["+tcp"], 9),
])
def test_nssearch_server_without_a_route_as_dig(targets, opts, rc):
    """+nssearch in a network namespace of its own (loopback alone): a name server the
    UDP socket cannot be set up for (no route to it) is dig's ";; UDP setup with
    ADDR#PORT(ADDR) for NAME failed: network unreachable.", over TCP ";; Connection to
    ...", as dig words them; the fake answering the NS set is in the namespace too.
    dig 9.18 has a race of its own here: when the last server of its random order cannot
    be set up before the others have replied, it says "NS servers could not be reached"
    (exit 9) though a server answers, and under load a run has been seen never to end;
    dig is run again then (8 runs at most, each stopped after 15 s)."""
    import json
    import os
    import subprocess
    import sys

    from daemon_proc import ROOT
    from test_dig_query import _without_network
    from test_daemon_dot import tool

    netns = _without_network()
    name = "example.com." if "+tcp" in opts else "example.com"
    args = ["@127.0.0.1", "-p", "{port}", name, "+nssearch", "+time=1", *opts]
    spec = {"targets": targets, "until": rc,
            "commands": [[sys.executable, "-m", "resolver.daemon.cli", "query", *args],
                         *[[tool("dig"), *args]] * 8]}
    helper = str(ROOT / "tests" / "resolver" / "netns_ns_giver.py")
    e = dict(os.environ, PYTHONPATH=str(ROOT), CORENET_RESOLV_CONF=os.devnull)
    run = subprocess.run([*netns, "sh", "-c", 'ip link set lo up && exec "$0" "$@"',
                          sys.executable, helper, json.dumps(spec)],
                         capture_output=True, text=True, timeout=200, cwd=str(ROOT), env=e)
    assert run.returncode == 0, run.stderr
    (ours_rc, ours, ours_err), *digs = json.loads(run.stdout)
    theirs_rc, theirs, _ = next((d for d in digs if d[0] == rc), digs[0])
    assert (ours_rc, theirs_rc) == (rc, rc), ours + ours_err
    assert masked(ours) == masked(theirs), ours + theirs
    said = "Connection to" if "+tcp" in opts else "UDP setup with"
    assert f";; {said} 192.0.2.1#" in ours and f"(192.0.2.1) for {name} failed: network " \
        "unreachable.\n" in ours, ours
    assert "communications error to 192.0.2.1" not in ours, ours


#: the NS names of glueless.test. (no glue): ns1's address refuses, ns2's is the auth,
#: ns3 has none; the hosts file dig reads them from, the walk from the root finds them
GLUELESS_NS = {"ns1.hosts.test.": Z.REFUSED, "ns2.hosts.test.": Z.FAKE_TLD_2,
               "ns3.hosts.test.": None}


def glueless_tree(root: str, auth: str):
    """(root's handler, auth's handler): a root (its NS set itself, by address) that
    refers glueless.test. to :data:`GLUELESS_NS` without glue, none.test. to its name
    without an address and hosts.test. to ``auth`` by address; ``auth`` answers the A
    of the NS names and of www.glueless.test. (the rest NXDOMAIN)."""
    at_root = referring_root(root, {"glueless.test.": list(GLUELESS_NS),
                                    "none.test.": ["ns3.hosts.test."],
                                    "hosts.test.": [f"{auth}."]})

    def at_auth(q):
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        name, rdtype = q.question[0].name.to_text(), q.question[0].rdtype
        address = {**GLUELESS_NS, "www.glueless.test.": "192.0.2.7"}.get(name)
        if address is not None and rdtype == 1:
            r.answer.append(dns.rrset.from_text(name, 300, "IN", "A", address))
        elif address is None:
            r.set_rcode(dns.rcode.NXDOMAIN)
        return r
    return at_root, at_auth


def dig_with_hosts(tmp_path, *args: str, names: dict[str, str | None] = GLUELESS_NS):
    """BIND's dig in a mount namespace of its own whose /etc/hosts names the NS names of
    ``names`` and whose nsswitch.conf reads that file alone: dig finds their addresses
    there, and asks no resolver of the host."""
    import subprocess

    from test_daemon_dot import tool
    hosts, nsswitch = tmp_path / "hosts", tmp_path / "nsswitch.conf"
    hosts.write_text("".join(f"{a} {n.rstrip('.')}\n" for n, a in names.items() if a))
    nsswitch.write_text("hosts: files\n")
    script = (f"mount --make-rprivate / && mount --bind {hosts} /etc/hosts && "
              f'mount --bind {nsswitch} /etc/nsswitch.conf && exec "$0" "$@"')
    try:
        run = subprocess.run(["unshare", "-m", "sh", "-c", script, tool("dig"), *args],
                             capture_output=True, text=True, timeout=60)
    except OSError:
        run = None
    if run is None or "mount" in run.stderr or "unshare" in run.stderr:
        from ci_policy import unavailable
        unavailable("unshare -m and mount --bind (a mount namespace of its own), not "
                    "permitted here")
    return run


@pytest.mark.parametrize("opts", [[], ["+tries=1"], ["+short"]])
def test_trace_finds_every_ns_name_of_a_referral_without_glue_as_dig(lab, fakes, tmp_path,
                                                                     opts):
    """A referral whose NS names have no glue: as dig, the addresses of every NS name are
    found (dig: the host's resolver, here a hosts file of its own; this command: walks
    from the trace's root), a name without one said, and every server found asked in a
    random order with the trace's tries: the first name's server refuses, the second's
    answers (the first server asked has the tries, the next one the one left). The
    refused tries (there when that server is asked first) are not compared."""
    at_root, at_auth = glueless_tree(Z.FAKE_TLD_1, Z.FAKE_TLD_2)
    fakes(Z.FAKE_TLD_1, at_root)
    fakes(Z.FAKE_TLD_2, at_auth)
    args = ["-p", str(lab.port), f"@{Z.FAKE_TLD_1}", "www.glueless.test", "+trace",
            "+time=1", *opts]
    ours, theirs = query(*args), dig_with_hosts(tmp_path, *args)

    def kept(text):
        """The lines but the refused tries, the NS set's sorted (the fake's NS records
        come in a random order)."""
        lines = [line for line in same(text) if "communications error" not in line]
        ns = sorted(line for line in lines if line.startswith("glueless.test."))
        return [ns.pop(0) if line.startswith("glueless.test.") else line for line in lines]
    assert ours.returncode == theirs.returncode == 0, ours.stdout + ours.stderr + theirs.stdout
    assert kept(ours.stdout) == kept(theirs.stdout), ours.stdout + theirs.stdout
    assert "couldn't get address for 'ns3.hosts.test': not found\n" in ours.stdout, \
        ours.stdout
    if "+short" not in opts:           # the answer came from the second name's server
        assert ";; Received 62 bytes from 127.0.0.31#" in ours.stdout, ours.stdout


@pytest.mark.parametrize("opts", [[], ["+short"], ["+tries=2"]])
def test_trace_walks_to_ns_names_say_nothing_of_their_lost_tries_as_dig(lab, fakes, tmp_path,
                                                                        opts):
    """The walk that finds a glueless NS name's address is not shown, its lost tries
    included (dig asks the host's resolver, which says nothing): here the server of the
    NS name's zone drops the first query for it, and only the trace's own steps are
    printed."""
    auth = Z.FAKE_TLD_2
    at_root = referring_root(Z.FAKE_TLD_1, {"walk.test.": ["ns.slow.test."],
                                            "slow.test.": [f"{auth}."]})
    dropped = []

    def at_auth(q):
        name = q.question[0].name.to_text()
        if name == "ns.slow.test." and not dropped:
            dropped.append(name)
            return None                     # the walk's first try is lost
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        address = {"ns.slow.test.": auth, "www.walk.test.": "192.0.2.7"}.get(name)
        if address is not None and q.question[0].rdtype == 1:
            r.answer.append(dns.rrset.from_text(name, 300, "IN", "A", address))
        else:
            r.set_rcode(dns.rcode.NXDOMAIN)
        return r
    fakes(Z.FAKE_TLD_1, at_root)
    fakes(auth, at_auth)
    args = ["-p", str(lab.port), f"@{Z.FAKE_TLD_1}", "www.walk.test", "+trace", "+time=1",
            *opts]
    ours = query(*args)
    assert dropped, "the walk never asked for the NS name"
    theirs = dig_with_hosts(tmp_path, *args, names={"ns.slow.test.": auth})
    assert ours.returncode == theirs.returncode == 0, ours.stdout + ours.stderr
    assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout
    assert "communications error" not in ours.stdout + ours.stderr, ours.stdout


@pytest.mark.parametrize("opts", [[], ["+short"]])
def test_trace_referral_whose_ns_names_have_no_address_as_dig(lab, fakes, tmp_path, opts):
    """No NS name of the referral has an address: each said, then dig's fatal error
    (exit 1), the step's "Received" line not printed."""
    at_root, at_auth = glueless_tree(Z.FAKE_TLD_1, Z.FAKE_TLD_2)
    fakes(Z.FAKE_TLD_1, at_root)
    fakes(Z.FAKE_TLD_2, at_auth)
    args = ["-p", str(lab.port), f"@{Z.FAKE_TLD_1}", "www.none.test", "+trace", "+time=1",
            *opts]
    ours, theirs = query(*args), dig_with_hosts(tmp_path, *args)
    assert ours.returncode == theirs.returncode == 1, ours.stdout + ours.stderr
    assert same(ours.stdout) == same(theirs.stdout), ours.stdout + theirs.stdout
    assert ours.stderr.split(": ", 1)[1] == theirs.stderr.split(": ", 1)[1] == \
        "couldn't get address for 'ns3.hosts.test': no more\n", ours.stderr + theirs.stderr
