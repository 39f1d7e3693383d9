"""``auto-trust-anchor-file`` in the daemon: off by default; with it, ``corenet-resolver
serve`` over the signed NSD lab starts from the lab's DS anchor, probes the root's DNSKEY
rrset at once, rewrites the file as an Unbound state file trusting the key the DS names,
and validates with it; a bad file or a state file it cannot rewrite is a clear error."""
from __future__ import annotations

import os
import re
import shutil
import time

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import pytest

from daemon_proc import Daemon, cli
from resolver.daemon.config import build
from resolver.daemon.settings import ConfigError, Config
from resolver.daemon.server import Server, make_resolver
from resolver.dnssec import autotrust_file
from resolver.dnssec.autotrust import State


def test_the_default_configuration_has_no_auto_anchor():
    assert Config().auto_trust_anchor_file == ()
    cfg = build(None, {})
    assert cfg.auto_trust_anchor_file == () and cfg.add_holddown == 30 * 86400
    assert cfg.keep_missing == 366 * 86400 and not cfg.permit_small_holddown
    r = make_resolver(cfg)
    assert r.auto_anchors is None
    assert Server(cfg, resolver=r).start_trust_probes() is None


def test_config_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text(". IN A 192.0.2.1\n")
    with pytest.raises(ConfigError, match="not a DS or DNSKEY"):
        build(None, {"auto_trust_anchor_file": [str(bad)]})
    with pytest.raises(ConfigError, match="no such file"):
        build(None, {"auto_trust_anchor_file": [str(tmp_path / "absent.key")]})
    one, two = tmp_path / "a.key", tmp_path / "b.key"
    for p in (one, two):
        p.write_text(". IN DS 20326 8 2 " + "ab" * 32 + "\n")
    with pytest.raises(ConfigError, match="both for zone ."):
        build(None, {"auto_trust_anchor_file": [str(one), str(two)]})


def test_a_state_file_directory_gone_is_a_clear_start_error(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    path = d / "root.key"
    path.write_text(". IN DS 20326 8 2 " + "ab" * 32 + "\n")
    cfg = build(None, {"auto_trust_anchor_file": [str(path)], "user": ""})
    server = Server(cfg, resolver=make_resolver(cfg))
    shutil.rmtree(d)
    why = server.start_trust_probes()
    assert why is not None and f"the directory {d}" in why and "not writable" in why


@pytest.fixture(scope="module")
def auto_daemon(signed_lab, tmp_path_factory):
    lab, anchor = signed_lab
    work = tmp_path_factory.mktemp("autotrust-daemon")
    state = work / "root.key"
    shutil.copy(anchor, state)
    d = Daemon(work, lab, "--auto-trust-anchor-file", str(state)).start()
    yield d, state, anchor
    assert d.stop() == 0, d.log_text()[-2000:]


def probed(d: Daemon, state):
    """The state file once the daemon's first probe has rewritten it (within 15 s)."""
    deadline = time.monotonic() + 15
    while ";;id: . 1" not in state.read_text():
        assert time.monotonic() < deadline, d.log_text()[-2000:]
        time.sleep(0.1)
    return autotrust_file.read(state)


def test_daemon_probes_at_once_and_writes_an_unbound_state_file(auto_daemon):
    d, state, anchor = auto_daemon
    assert "(RFC 5011)" in d.log_text()
    tp = probed(d, state)
    ds = [line.split() for line in anchor.read_text().splitlines() if " DS " in line]
    tags = {int(f[f.index("DS") + 1]) for f in ds}
    valid = [k for k in tp.keys if k.state == State.VALID]
    assert valid and {dns.dnssec.key_id(k.dnskey) for k in valid} <= tags
    assert tp.ds == [] and tp.last_success > 0 and tp.query_interval >= 3600
    assert tp.next_probe_time > time.time()
    q = dns.message.make_query("www.example.com.", "A", want_dnssec=True)
    r = d.ask(q, tcp=True)
    assert r.flags & dns.flags.AD and r.answer


def test_checkconf_reports_a_bad_auto_anchor(tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("garbage\n")
    conf = tmp_path / "c.toml"
    conf.write_text(f'auto-trust-anchor-file = ["{bad}"]\n')
    out = cli("checkconf", str(conf))
    assert out.returncode != 0
    said = out.stderr + out.stdout
    assert "auto-trust-anchor-file" in said and str(bad) in said


def test_unbound_reads_the_state_file_corenet_writes(tmp_path):
    """The file moves from corenet to Unbound: a real Unbound started on it reports each
    key with the state, pending count and last change corenet wrote (its root hints name
    a loopback server it never asks, so nothing leaves the machine)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from ports import pick_port
    from dnslab.unbound import UNBOUND, launch
    from procs import stop as stop_process
    from resolver.dnssec.autotrust import TrackedKey, TrustPoint

    assert os.path.exists(UNBOUND), "unbound is not installed (Debian package 'unbound')"
    keys = [dns.dnssec.make_dnskey(ec.generate_private_key(ec.SECP256R1()).public_key(),
                                   dns.dnssec.Algorithm.ECDSAP256SHA256, flags=257)
            for _ in range(2)]
    tp = TrustPoint(dns.name.root, keys=[
        TrackedKey(keys[0], State.VALID, ttl=172800, last_change=1700000000),
        TrackedKey(keys[1], State.ADDPEND, ttl=172800, pending_count=3,
                   last_change=1700001000)],
        last_queried=1700002000, last_success=1700002000, next_probe_time=4000000000,
        query_interval=43200, retry_time=8640)
    state = tmp_path / "root.key"
    autotrust_file.write(state, tp)
    hints = tmp_path / "root.hints"
    hints.write_text(". 3600 NS a.root.test.\na.root.test. 3600 A 127.0.0.9\n")
    port = pick_port(["127.0.0.1"])
    proc = launch(tmp_path, [
        f"  interface: 127.0.0.1@{port}", f"  port: {port}", "  do-ip6: no",
        '  username: ""', '  chroot: ""', f'  directory: "{tmp_path}"',
        f'  pidfile: "{tmp_path}/unbound.pid"', "  use-syslog: no",
        f'  logfile: "{tmp_path}/unbound.log"', "  verbosity: 4",
        f'  root-hints: "{hints}"', f'  auto-trust-anchor-file: "{state}"',
        '  module-config: "validator iterator"'], "127.0.0.1", port)
    try:
        log = (tmp_path / "unbound.log").read_text(errors="replace")
    finally:
        stop_process(proc, 5.0, group=True)
    tags = [dns.dnssec.key_id(k) for k in keys]
    assert "assembled 0 DS and 1 DNSKEYs" in log
    assert f"id = {tags[0]} (ksk)" in log and ";;state:2 ;;pending_count:0" in log
    assert re.search(rf"\[ ADDPEND \] .*id = {tags[1]} .*;;state:1 ;;pending_count:3 "
                     r"last:\w+ Nov 1[45] [\d:]+ 2023", log)          # ctime of 1700001000


def test_status_shows_each_auto_anchor(auto_daemon):
    from resolver.daemon.replies import status_text
    from resolver.daemon.control import request

    d, state, anchor = auto_daemon
    tp = probed(d, state)
    st = request(d.control, {"cmd": "status"})["status"]
    (a,) = st["auto_trust_anchors"]
    assert a["zone"] == "." and a["file"] == str(state) and not a["revoked"]
    assert a["keys"] == {str(t): s.name for t, s in tp.states().items()}
    assert "VALID" in a["keys"].values()
    assert a["last_success"] == tp.last_success and a["next_probe"] == tp.next_probe_time
    text = status_text(st)
    line = next(x for x in text.splitlines() if x.startswith("auto trust anchor . "))
    assert "VALID" in line and "next probe 20" in line


def test_workers_share_one_state_file(signed_lab, tmp_path):
    """Two workers on one state file: each takes the other's writes, the file stays whole
    (each writes its own temporary file), both validate, status shows the anchor once."""
    from resolver.daemon.control import request

    lab, anchor = signed_lab
    state = tmp_path / "root.key"
    shutil.copy(anchor, state)
    d = Daemon(tmp_path / "d", lab, "--auto-trust-anchor-file", str(state),
               "--workers", "2").start()
    try:
        tp = probed(d, state)
        assert State.VALID in tp.states().values()
        # no temporary file stays behind (the other worker may be writing its own: give it
        # the moment its rename takes)
        deadline = time.monotonic() + 10
        while (names := sorted(p.name for p in tmp_path.iterdir())) != ["d", "root.key"]:
            assert time.monotonic() < deadline, names
            time.sleep(0.05)
        for _ in range(4):                  # SO_REUSEPORT spreads these over both workers
            q = dns.message.make_query("www.example.com.", "A", want_dnssec=True)
            assert d.ask(q, tcp=True).flags & dns.flags.AD
        st = request(d.control, {"cmd": "status"})["status"]
        assert st["workers"] == 2 and len(st["auto_trust_anchors"]) == 1
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
