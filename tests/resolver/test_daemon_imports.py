"""What a daemon with a default config carries: the modules of features it does not run
(DNSSEC crypto without validation, the TLS, HTTP and DoH listeners, response policy zones,
the Redis cache, syslog, RFC 5011, XML anchors) are imported where the feature starts, not
at startup, so they cost no memory to the daemon that does not use them. A configured
feature has its modules at startup, before the daemon drops its privileges. The commands
that only ask (``query`` over UDP, a control command) load neither the resolver nor the
HTTPS client: each run starts an interpreter, and scripts run them often.

The daemon runs as ``serve`` does, under a runner that writes ``sys.modules`` to a file when
the process exits (after SIGTERM, once it was ready)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon_proc import ROOT
from ports import free_port

from resolver.dnssec.trust_anchor import ROOT_ANCHOR_FILE

#: Modules a default config must not load at startup, each with the feature it belongs to.
HEAVY = {
    "cryptography": "DNSSEC validation (loaded when the validator is made)",
    "dns.dnssec": "dnspython's DNSSEC (RFC 5011 anchors)",
    "dns.zone": "zone files and transfers (RPZ)",
    "resolver.dnssec.autotrust": "auto-trust-anchor-file",
    "xml.etree.ElementTree": "trust anchors in RFC 7958 XML",
    "corenet.tls": "the loop's TLS (ssl= connections, DoT forwarders' handshakes)",
    "resolver.daemon.tls_listener": "tls-port / https-port",
    "resolver.daemon.tls_server": "tls-port / https-port",
    "resolver.daemon.doh_listener": "https-port / http-port",
    "resolver.daemon.h2_server": "DNS over HTTP/2 (nghttp2)",
    "h11": "DNS over HTTP/1.1",
    "resolver.daemon.rpz_feed": "[[rpz]]",
    "resolver.policy.rpz": "[[rpz]]",
    "resolver.cache.shared": "cachedb-backend = redis",
    "resolver.cache.redis_link": "cachedb-backend = redis",
    "hiredis": "cachedb-backend = redis",
    "logging.handlers": "use-syslog",
}

RUNNER = """\
import atexit, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv[0] = "corenet-resolver"
runpy.run_module("resolver.daemon.cli", run_name="__main__", alter_sys=True)
"""


def _modules_of_a_daemon(tmp_path: Path, *args: str) -> set[str]:
    """The modules of a daemon started with ``args``, ready, then stopped by SIGTERM."""
    runner, out, log = tmp_path / "runner.py", tmp_path / "modules.txt", tmp_path / "daemon.log"
    runner.write_text(RUNNER)
    hints = tmp_path / "root.hints"          # a root no query reaches: nothing is resolved
    hints.write_text(". 3600000 IN NS a.root.test.\na.root.test. 3600000 IN A 127.0.9.9\n")
    cmd = [sys.executable, str(runner), str(out), "serve", "--listen",
           f"127.0.0.1:{free_port()}", "--root-hints", str(hints), "--control",
           str(tmp_path / "control.sock"), "--log-level", "INFO", *args]
    if os.geteuid() == 0:
        cmd += ["--user", ""]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, cwd=str(ROOT), env=env)
    try:
        deadline = time.monotonic() + 20
        while b"ready" not in log.read_bytes():
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    return set(out.read_text().split())


def _modules_of_a_command(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess,
                                                                set[str]]:
    """The finished ``corenet-resolver ARGS`` and the modules it had loaded at its exit."""
    runner, out = tmp_path / "runner.py", tmp_path / "modules.txt"
    runner.write_text(RUNNER)
    conf = tmp_path / "resolv.conf"                  # not the host's
    conf.write_text("nameserver 127.0.0.1\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), CORENET_RESOLV_CONF=str(conf))
    done = subprocess.run([sys.executable, str(runner), str(out), *args], capture_output=True,
                          text=True, cwd=str(ROOT), env=env, timeout=30)
    return done, set(out.read_text().split())


#: What a command that only asks must not load, each with what it is.
NOT_FOR_COMMANDS = {
    "resolver.api": "the resolver",
    "resolver.iterator": "the resolver's iteration",
    "dns.resolver": "dnspython's resolver",
    "corenet.https": "the HTTPS client (DoH queries load it)",
    "resolver.daemon.settings": "the daemon's settings table",
}


@pytest.mark.parametrize("args,status,said", [
    # nothing listens on the port: the query's tries fail with ICMP's refusal, as dig's do
    (("query", "@127.0.0.1", "-p", "{port}", "example.", "A", "+tries=2", "+time=1"), 9,
     "connection refused"),
    (("status", "-s", "{tmp}/no-daemon.sock"), 1, "no-daemon.sock"),
], ids=["query", "control"])
def test_a_command_that_only_asks_loads_neither_the_resolver_nor_the_client(
        tmp_path, args, status, said):
    args = tuple(a.format(port=free_port(), tmp=tmp_path) for a in args)
    done, modules = _modules_of_a_command(tmp_path, *args)
    assert done.returncode == status, done.stdout + done.stderr
    assert said in done.stdout + done.stderr
    loaded = {name: why for name, why in NOT_FOR_COMMANDS.items() if _loaded(modules, name)}
    assert not loaded, f"{' '.join(args)} imported {loaded}"


def _loaded(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


def test_a_default_daemon_does_not_import_what_it_does_not_run(tmp_path):
    # root hints of its own and no trust anchor for them: validation is off
    modules = _modules_of_a_daemon(tmp_path)
    assert {"resolver.daemon.server", "resolver.dnssec.validator",
            "resolver.dnssec.sig"} <= modules          # the list is the daemon's own
    loaded = {name: why for name, why in HEAVY.items() if _loaded(modules, name)}
    assert not loaded, f"imported at startup though not configured: {loaded}"


def test_a_validating_daemon_has_its_crypto_library_from_the_start(tmp_path):
    modules = _modules_of_a_daemon(tmp_path, "--trust-anchor", str(ROOT_ANCHOR_FILE))
    assert _loaded(modules, "cryptography")
    assert not _loaded(modules, "dns.dnssec")           # the sentinel's key tags are ours


def test_a_configured_feature_imports_its_modules(tmp_path):
    zone = tmp_path / "rpz.zone"
    zone.write_text("$ORIGIN rpz.test.\n@ 300 IN SOA ns. h. 1 3600 600 86400 300\n"
                    "@ 300 IN NS ns.\nblocked.example 300 IN CNAME .\n")
    config = tmp_path / "rpz.toml"
    config.write_text(f'[[rpz]]\nname = "rpz.test."\nzonefile = "{zone}"\n')
    modules = _modules_of_a_daemon(tmp_path, "--config", str(config))
    assert {"resolver.daemon.rpz_feed", "resolver.policy.rpz", "dns.zone"} <= modules


def test_a_tls_listener_has_the_reload_s_executor_before_root_is_dropped(tmp_path):
    """A reload hands the replaced pair's copies to the loop's default executor, a module
    the standard library imports on first use: it is imported with the feature, before
    the daemon drops root, as the user it becomes may not read the interpreter's files (a
    reload as that user failed with ModuleNotFoundError where it could not)."""
    from tls_certs import CA

    pem, key = CA(tmp_path / "pki").issue("server")
    config = tmp_path / "tls.toml"
    config.write_text(f'tls-listen = ["127.0.0.1:{free_port()}"]\n'
                      f'tls-service-pem = "{pem}"\ntls-service-key = "{key}"\n')
    modules = _modules_of_a_daemon(tmp_path, "--config", str(config))
    assert "resolver.daemon.tls_listener" in modules
    assert "concurrent.futures.thread" in modules
