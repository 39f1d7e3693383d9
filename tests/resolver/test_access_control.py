"""``access-control`` as Unbound's: the daemon and the real Unbound with the same lines,
asked from several loopback addresses with RD set and clear, over UDP and TCP, give the
same outcomes (the longest prefix decides: a refusal inside an allowed network, an allow
inside that, snooping for one address, deny and the ``_non_local`` actions inside each
other: an rcode, or no answer for a drop); a bad line is an error that says why."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import dns.flags
import dns.message
import dns.query
import dns.exception
import dns.rcode
import pytest

from ci_policy import installed
from daemon_proc import Daemon, cli
from ports import pick_port
from procs import stop as stop_process

LINES = ["127.0.0.0/8 allow", "127.0.1.0/24 refuse", "127.0.1.8/29 allow",
         "127.0.2.2/32 allow_snoop", "127.0.3.0/24 allow_setrd",
         "127.0.4.0/24 deny", "127.0.4.8/29 allow",
         "127.0.5.0/24 refuse_non_local", "127.0.5.8/29 deny",
         "127.0.6.0/24 deny_non_local", "127.0.6.8/29 refuse"]
#: (client address, RD) asked of both
ASKED = [(src, rd) for src in ("127.0.0.1", "127.0.0.5", "127.0.1.1", "127.0.1.9",
                                "127.0.2.2", "127.0.2.3", "127.0.3.3") for rd in (True, False)]
LOCAL = ('local-zone: "test." static', 'local-data: "www.test. A 192.0.2.1"')
#: clients of deny, the _non_local actions and the networks inside them
#: (deny, allow, refuse_non_local, deny, deny_non_local, refuse)
NON_LOCAL_CLIENTS = ("127.0.4.1", "127.0.4.9", "127.0.5.1", "127.0.5.9", "127.0.6.1",
                     "127.0.6.9")
#: (client, name, RD, TCP): a local name, one only recursion answers, and the server's
#: version (CH TXT: Unbound answers it before its local zones)
TABLE = [(src, name, rd, tcp) for src in NON_LOCAL_CLIENTS
         for name in ("www.test.", "nowhere.example.", "version.server.") for rd in (True, False)
         for tcp in (False, True)]
#: how long a drop is waited for
DROP_WAIT = 1.0
#: the question's type and class by name (A IN for the others)
QUESTION = {"version.server.": ("TXT", "CH")}


def ask(port: int, source: str, rd: bool, name: str) -> int:
    q = dns.message.make_query(name, "A")
    if not rd:
        q.flags &= ~dns.flags.RD
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=5, source=source).rcode()


def outcome(port: int, source: str, name: str, rd: bool, tcp: bool) -> int | str:
    """The rcode of the answer, or "drop" when none comes within ``DROP_WAIT`` (over TCP
    also when the connection is closed without one). Bytes after the message are let be:
    Unbound 1.17's REFUSED to a non-local query carries some of its buffer after it."""
    q = dns.message.make_query(name, *QUESTION.get(name, ("A", "IN")))
    if not rd:
        q.flags &= ~dns.flags.RD
    try:
        if tcp:
            return dns.query.tcp(q, "127.0.0.1", port=port, timeout=DROP_WAIT,
                                 source=source, ignore_trailing=True).rcode()
        return dns.query.udp(q, "127.0.0.1", port=port, timeout=DROP_WAIT,
                             source=source, ignore_trailing=True).rcode()
    except (dns.exception.Timeout, EOFError, ConnectionResetError):
        return "drop"


def outcomes(port: int, table: list) -> list:
    """``outcome`` for each (client, name, RD, TCP) of ``table``, asked at once (a drop
    costs its wait once, not once per row)."""
    with ThreadPoolExecutor(max_workers=len(table)) as pool:
        return list(pool.map(lambda row: outcome(port, *row), table))


def test_the_same_rcodes_as_unbound_for_the_same_lines(lab, tmp_path):
    from dnslab.unbound import local_unbound

    installed("unbound", "unbound")
    w = tmp_path / "unbound"
    w.mkdir()
    uport = pick_port(["127.0.0.1"])
    proc = local_unbound(w, uport, [*(f"access-control: {line}" for line in LINES), *LOCAL,
                                    "hide-version: no", 'version: "v-test 1"'])
    conf = tmp_path / "corenet-resolver.toml"
    conf.write_text(f"access-control = {LINES!r}\n".replace("'", '"') +
                    'local-zone = ["test. static"]\nlocal-data = ["www.test. A 192.0.2.1"]\n'
                    'hide-version = false\nversion = "v-test 1"\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf))
    try:
        d.start()
        assert d.ask("www.example.com").answer          # in the cache: a snooper may read it
        for name in ("www.test.", "www.example.com."):
            theirs = [ask(uport, src, rd, name) for src, rd in ASKED]
            ours = [ask(d.port, src, rd, name) for src, rd in ASKED]
            if name == "www.test.":                     # Unbound holds no lab: local only
                assert ours == theirs, list(zip(ASKED, ours, theirs))
            refused = [a for a, r in zip(ASKED, ours) if r == dns.rcode.REFUSED]
            assert ("127.0.1.1", True) in refused and ("127.0.1.9", True) not in refused
            assert ("127.0.0.5", True) not in refused and ("127.0.3.3", True) not in refused
        # RD clear for a cached name: only the snooper, as Unbound's allow_snoop
        assert ask(d.port, "127.0.2.2", False, "www.example.com.") == dns.rcode.NOERROR
        assert ask(d.port, "127.0.2.3", False, "www.example.com.") == dns.rcode.REFUSED

        # deny and the _non_local actions, over UDP and TCP. Unbound holds no lab: the
        # allowed client's recursive query for the other name is the daemon's alone.
        assert d.ask("nowhere.example.").rcode() == dns.rcode.NXDOMAIN    # now cached
        before = d.stats()
        ours = outcomes(d.port, TABLE)
        recursive = [(src, name, rd) == ("127.0.4.9", "nowhere.example.", True)
                     for src, name, rd, _ in TABLE]
        theirs = outcomes(uport, [row for row, r in zip(TABLE, recursive) if not r])
        mine = [o for o, r in zip(ours, recursive) if not r]
        assert mine == theirs, [x for x in zip(TABLE, mine, theirs) if x[1] != x[2]]
        assert all(o == dns.rcode.NXDOMAIN for o, r in zip(ours, recursive) if r)
        seen = dict(zip(TABLE, ours))
        # what each action does, so that the comparison is not of two servers that agree
        # on something else
        assert {seen[("127.0.4.1", n, rd, t)] for n in ("www.test.", "nowhere.example.")
                for rd in (True, False) for t in (False, True)} == {"drop"}
        assert seen[("127.0.5.1", "www.test.", True, True)] == dns.rcode.NOERROR
        assert seen[("127.0.5.1", "nowhere.example.", True, False)] == dns.rcode.REFUSED
        assert seen[("127.0.6.1", "www.test.", True, False)] == dns.rcode.NOERROR
        assert seen[("127.0.6.1", "nowhere.example.", True, False)] == "drop"
        assert seen[("127.0.6.9", "www.test.", True, False)] == dns.rcode.REFUSED
        assert seen[("127.0.6.1", "version.server.", False, True)] == dns.rcode.NOERROR
        # the drops are counted, as Unbound's unwanted.queries counts them
        from resolver.daemon.unbound_stats import render
        dropped = sum(o == "drop" for o in ours)
        after = d.stats()
        assert after["dropped"]["acl"] - before["dropped"].get("acl", 0) == dropped
        lines = dict(line.partition("=")[::2]
                     for line in render(after, extended=True).splitlines())
        assert int(lines["unwanted.queries"]) == after["refused_acl"] + after["dropped"]["acl"]
    finally:
        d.stop()
        stop_process(proc, 5.0, group=True)


@pytest.mark.parametrize("line, said", [
    ("10.0.0.0/8 permit", "unknown action 'permit'"),
    ("10.0.0.0/8 allow_view", "unknown action 'allow_view'"),
    ("10.0.0.0/33 allow", "is not an address or CIDR network"),
    ("10.1.0.0/8 allow", "has host bits set; the network is 10.0.0.0/8"),
    ("10.0.0.0/8", "expected \"NETBLOCK ACTION\""),
])
def test_a_bad_line_is_an_error_that_says_why(tmp_path, line, said):
    conf = tmp_path / "c.toml"
    conf.write_text(f'access-control = ["{line}"]\n')
    r = cli("checkconf", str(conf))
    assert r.returncode == 1 and said in r.stderr and f"{conf}:1:" in r.stderr, r.stderr


@pytest.mark.parametrize("value, said", [
    ('["127.0.0.1/8"]', "has host bits set; the network is 127.0.0.0/8 (or write 127.0.0.1"),
    ('["2001:db8::1/32"]', "the network is 2001:db8::/32"),
    ('["not-a-net"]', "is not an address or CIDR network"),
    ('127', "expected a list, got 127"),
])
def test_allow_networks_are_checked_as_written(tmp_path, value, said):
    conf = tmp_path / "c.toml"
    conf.write_text(f"allow = {value}\n")
    r = cli("checkconf", str(conf))
    assert r.returncode == 1 and said in r.stderr, r.stderr


@pytest.mark.parametrize("value", ['"127.0.0.0/8"', '["127.0.0.1", "::1", "10.0.0.0/8"]'])
def test_allow_takes_one_network_as_a_string_or_a_list(tmp_path, value):
    conf = tmp_path / "c.toml"
    conf.write_text(f"allow = {value}\n")
    r = cli("checkconf", str(conf))
    assert r.returncode == 0, r.stderr


def tcp_after_query(port: int, source: str, name: str, wait: float = 3.0) -> str:
    """What a TCP client of ``source`` sees after one query for ``name``: "answered",
    "closed" (the connection ended with no answer) or "open" (nothing within ``wait``)."""
    import socket

    q = dns.message.make_query(name, "A").to_wire()
    with socket.create_connection(("127.0.0.1", port), timeout=wait,
                                  source_address=(source, 0)) as s:
        s.sendall(len(q).to_bytes(2, "big") + q)
        try:
            data = s.recv(65535)
        except socket.timeout:
            return "open"
        except ConnectionResetError:
            return "closed"
    return "answered" if data else "closed"


def test_a_denied_tcp_client_loses_its_connection_as_in_unbound(lab, tmp_path):
    """Unbound drops a denied client's query by closing its TCP connection; so does the
    daemon, rather than keeping it open until the idle timeout."""
    from dnslab.unbound import local_unbound

    installed("unbound", "unbound")
    lines = ["127.0.0.0/8 allow", "127.0.4.0/24 deny", "127.0.6.0/24 deny_non_local"]
    w = tmp_path / "unbound"
    w.mkdir()
    uport = pick_port(["127.0.0.1"])
    proc = local_unbound(w, uport, [*(f"access-control: {line}" for line in lines), *LOCAL,
                                    "tcp-idle-timeout: 30000"])
    conf = tmp_path / "corenet-resolver.toml"
    conf.write_text(f"access-control = {lines!r}\n".replace("'", '"') +
                    'local-zone = ["test. static"]\nlocal-data = ["www.test. A 192.0.2.1"]\n'
                    'tcp-idle-timeout = 30\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf))
    rows = [("127.0.4.1", "www.test."), ("127.0.6.1", "nowhere.example."),
            ("127.0.6.1", "www.test."), ("127.0.0.1", "www.test.")]
    try:
        d.start()
        ours = [tcp_after_query(d.port, src, name) for src, name in rows]
        theirs = [tcp_after_query(uport, src, name) for src, name in rows]
        assert ours == theirs == ["closed", "closed", "answered", "answered"], (ours, theirs)
    finally:
        d.stop()
        stop_process(proc, 5.0, group=True)


def flags_of(port: int, source: str, name: str, rd: bool) -> tuple[int, str]:
    q = dns.message.make_query(name, "A")
    if not rd:
        q.flags &= ~dns.flags.RD
    r = dns.query.udp(q, "127.0.0.1", port=port, timeout=5, source=source)
    return r.rcode(), dns.flags.to_text(r.flags)


def test_allow_setrd_takes_rd_as_set_as_unbound_does(lab, tmp_path):
    """``allow_setrd``: a query with RD clear that no local zone answers is answered as if RD
    were set (recursion, and RD set in the reply), where ``allow`` refuses it; a local name's
    answer has the same flags as Unbound's."""
    from dnslab.unbound import local_unbound

    installed("unbound", "unbound")
    lines = ["127.0.0.0/8 allow", "127.0.3.0/24 allow_setrd"]
    w = tmp_path / "unbound"
    w.mkdir()
    uport = pick_port(["127.0.0.1"])
    proc = local_unbound(w, uport, [*(f"access-control: {line}" for line in lines), *LOCAL])
    conf = tmp_path / "corenet-resolver.toml"
    conf.write_text(f"access-control = {lines!r}\n".replace("'", '"') +
                    'local-zone = ["test. static"]\nlocal-data = ["www.test. A 192.0.2.1"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf))
    try:
        d.start()
        for src in ("127.0.3.3", "127.0.0.1"):
            for rd in (False, True):
                ours, theirs = flags_of(d.port, src, "www.test.", rd), flags_of(
                    uport, src, "www.test.", rd)
                assert ours == theirs, (src, rd, ours, theirs)
        # local zones answer the query as it came (Unbound sets RD after them)
        assert flags_of(d.port, "127.0.3.3", "www.test.", False)[1] == "QR AA RA"
        # a name only recursion answers, asked with RD clear: resolved for allow_setrd,
        # REFUSED for allow (Unbound holds no lab to compare with)
        assert flags_of(d.port, "127.0.3.3", "nowhere.example.", False) == (
            dns.rcode.NXDOMAIN, "QR RD RA")
        assert flags_of(d.port, "127.0.0.1", "elsewhere.example.", False)[0] == \
            dns.rcode.REFUSED
    finally:
        d.stop()
        stop_process(proc, 5.0, group=True)
