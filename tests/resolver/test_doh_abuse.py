"""DoH under attack, on loopback against the daemon, each attack beside a legitimate client
that must still be served: an HPACK bomb (ended at the first block past the field budget),
connections kept alive by PINGs alone (closed by the idle timeout, shed for a new client at
the connection cap), output nobody reads (no longer read, then aborted, memory bounded), a
protocol error's GOAWAY (the connection closed right after it), streams reset before
their answers (none sent, counted), and a rapid-reset attacker that reconnects after each
GOAWAY (its address refused at the accept once it has too many, for a while)."""
from __future__ import annotations

import time

import dns.message
import h2.errors
import h2.events
import pytest

from daemon_proc import Daemon
from ports import free_port
from doh_attacks import (PING, LegitClient, Target, hpack_bomb, ping_holders, rapid_reset,
                         read_to_end, unread_output)
from test_daemon_doh import b64, h2_connect, h2_exchange, h2_headers, query
from tls_certs import CA

IDLE = 3.0
CAP = 6
WRITE_TIMEOUT = 1.0
STRIKES = 5            # connections ended for abuse allowed per address
PENALTY = 4.0
REQUESTS = 200         # per connection


@pytest.fixture(scope="module")
def daemon(lab, tmp_path_factory):
    work = tmp_path_factory.mktemp("doh-abuse")
    ca = CA(work / "pki")
    pem, key = ca.issue("server")
    https = free_port()
    conf = work / "doh.toml"
    conf.write_text(f'https-listen = ["127.0.0.1:{https}"]\n'
                    f'tls-service-pem = "{pem}"\ntls-service-key = "{key}"\n'
                    f'tcp-idle-timeout = {IDLE}\ntcp-max-connections = {CAP}\n'
                    f'[limits]\ndoh-max-pending-output = 16384\n'
                    f'doh-write-timeout = {WRITE_TIMEOUT}\n'
                    f'doh-max-requests-per-connection = {REQUESTS}\n'
                    f'doh-throttle-strikes = {STRIKES}\ndoh-throttle-penalty = {PENALTY}\n')
    d = Daemon(work, lab, "--config", str(conf)).start()
    d.ca, d.https_port = ca, https
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


def served(d) -> None:
    """A legitimate client gets its answer."""
    assert d.alive()
    s, conn = h2_connect(d)
    with s:
        conn.send_headers(1, h2_headers(f"/dns-query?dns={b64(query().to_wire())}"),
                          end_stream=True)
        s.sendall(conn.data_to_send())
        got, _ = h2_exchange(s, conn, {1})
    assert got[1][0] == b"200" and dns.message.from_wire(got[1][1]).answer


def https(d) -> dict:
    return d.stats()["https"]


def target(d) -> Target:
    return Target("127.0.0.1", d.https_port, str(d.ca.pem))


def test_an_hpack_bomb_is_ended_with_goaway_and_others_served(daemon):
    before = https(daemon).get("hpack_budget", 0)
    ending = hpack_bomb(target(daemon), 5.0)
    assert ending.how == "goaway ENHANCE_YOUR_CALM"
    assert ending.after < 2.0
    assert https(daemon)["hpack_budget"] == before + 1
    served(daemon)


def test_a_protocol_errors_goaway_is_followed_by_the_close(daemon):
    s, conn = h2_connect(daemon)
    with s:
        s.sendall(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")     # DATA on stream 0
        seen, closed = read_to_end(s, conn, IDLE + 2)
    ended = [e for e in seen if isinstance(e, h2.events.ConnectionTerminated)]
    assert ended and ended[0].error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert closed < 1.0


def test_pings_alone_do_not_keep_a_connection_open(daemon):
    [ending] = ping_holders(target(daemon), 1, IDLE + 4, every=0.3)
    assert ending.how == "closed" and ending.after < IDLE + 1.5, ending


def test_at_the_cap_the_connection_idle_longest_is_shed_for_a_new_client(daemon):
    time.sleep(0.5)                       # the previous tests' connections are gone
    holders = []
    try:
        for _ in range(CAP):
            s, conn = h2_connect(daemon)
            s.sendall(PING)
            holders.append((s, conn))
        time.sleep(0.3)                   # each taken as established
        shed = https(daemon).get("handshake_refused", 0)
        served(daemon)                    # refused before: every slot held by PINGs
        assert https(daemon).get("handshake_refused", 0) == shed
        assert daemon.stats()["tcp"]["shed_idle"] >= 1
        s, conn = holders[0]              # the oldest went
        _, closed = read_to_end(s, conn, 1.0)
        assert closed < 1.0
    finally:
        for s, _ in holders:
            s.close()


def test_output_nobody_reads_stops_the_reading_then_ends_the_connection(daemon):
    """A client with a tiny receive buffer sends PINGs and never reads: past 16 KiB of
    output waiting the server stops reading it, and aborts it a second later; the daemon's
    memory does not follow the PINGs. Where one read brings more PINGs than nghttp2 queues
    ACKs for (1,000: a loaded machine reads seldom and much), nghttp2 ends the connection
    first, as a protocol error: one defence or the other, counted once."""
    defences = ("write_stalled", "protocol_error")
    before = {k: https(daemon).get(k, 0) for k in defences}
    rss0 = daemon.rss()
    ending, sent = unread_output(target(daemon), 30.0)
    assert ending.how == "reset", sent
    after = {k: https(daemon).get(k, 0) for k in defences}
    assert sorted(after[k] - before[k] for k in defences) == [0, 1], (before, after)
    assert daemon.rss() - rss0 < 32 << 20
    served(daemon)


def test_streams_reset_before_their_answers_get_none_and_are_counted(daemon):
    before = https(daemon).get("cancelled", 0)
    s, conn = h2_connect(daemon)
    with s:
        for i in range(10):
            sid = 1 + 2 * i
            conn.send_headers(sid, h2_headers(f"/dns-query?dns={b64(query().to_wire())}"),
                              end_stream=True)
            conn.reset_stream(sid)
        conn.send_headers(21, h2_headers(f"/dns-query?dns={b64(query().to_wire())}"),
                          end_stream=True)
        s.sendall(conn.data_to_send())
        got, _ = h2_exchange(s, conn, {21})
    assert set(got) == {21} and got[21][0] == b"200"
    assert https(daemon)["cancelled"] == before + 10


def test_a_reconnecting_rapid_reset_attacker_is_refused_at_the_accept_for_a_while(daemon):
    """From 127.0.0.2, ten connections one after the other, each resetting every request
    it makes until the request budget's GOAWAY ends it; a legitimate client on 127.0.0.1
    asks every 20 ms meanwhile. Past the strikes allowed the attacker's connections are
    closed at the accept (no handshake), counted; the legitimate client never fails; the
    penalty over, the attacker's address is served again."""
    attacker = Target("127.0.0.1", daemon.https_port, str(daemon.ca.pem), source="127.0.0.2")
    before = https(daemon)
    legit = LegitClient(Target("127.0.0.1", daemon.https_port, str(daemon.ca.pem))).start()
    try:
        endings = rapid_reset(attacker, 10, REQUESTS + 1)
        time.sleep(0.5)                           # and asks on after it
    finally:
        legit.stop()
    after = https(daemon)
    hows = [e.how for e in endings]
    assert hows[:STRIKES + 1] == ["goaway NO_ERROR"] * (STRIKES + 1), hows
    assert hows[STRIKES + 1:] == ["refused"] * (10 - STRIKES - 1), hows
    assert after["reset_flood"] - before.get("reset_flood", 0) == STRIKES + 1
    assert after["throttled"] - before.get("throttled", 0) == 10 - STRIKES - 1
    assert legit.failures == 0, legit.errors
    assert len(legit.latencies) >= 10
    assert "DoH client 127.0.0.2: new connections refused" in daemon.log_text()
    text = daemon.metrics()
    assert (f'doh_defences_total{{listener="https",defence="throttled"}} '
            f'{after["throttled"]}') in text
    time.sleep(PENALTY + 0.5)
    again = rapid_reset(attacker, 1, 2)        # a connection, two streams reset, closed
    assert again[0].how != "refused", again
    served(daemon)


def test_a_stream_reset_before_its_answer_stops_waiting_for_its_resolution(daemon):
    """A question whose every server is silent is asked and its stream reset while the
    resolution waits: the resolution is no longer in flight (it would be for seconds),
    and no answer comes; the connection goes on serving."""
    before = https(daemon).get("cancelled", 0)
    s, conn = h2_connect(daemon)
    with s:
        conn.send_headers(1, h2_headers(
            f"/dns-query?dns={b64(query('reset-me.alldead.com.').to_wire())}"), end_stream=True)
        s.sendall(conn.data_to_send())
        deadline = time.monotonic() + 2
        while daemon.stats()["inflight"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert daemon.stats()["inflight"] == 1
        conn.reset_stream(1)
        conn.send_headers(3, h2_headers(f"/dns-query?dns={b64(query().to_wire())}"),
                          end_stream=True)
        s.sendall(conn.data_to_send())
        got, _ = h2_exchange(s, conn, {3})
        assert set(got) == {3} and got[3][0] == b"200"
        assert daemon.stats()["inflight"] == 0
    assert https(daemon)["cancelled"] == before + 1
