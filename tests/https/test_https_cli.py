"""corenet-fetch, run as a process against the test nginx."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from corenet.https.cli import render_progress
from https_servers import SMALL

ROOT = Path(__file__).resolve().parents[2]


def fetch(*args: str, timeout: float = 30, without_resolver: bool = False
          ) -> subprocess.CompletedProcess:
    """Runs corenet-fetch; ``without_resolver`` makes the child see no `resolver` package, as
    on an install of corenet alone (a None entry in sys.modules makes the import fail)."""
    hide = "sys.modules['resolver'] = None; " if without_resolver else ""
    code = f"import sys; {hide}from corenet.https.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                          timeout=timeout)


def test_fetch_to_file(env, tmp_path):
    out = tmp_path / "large.bin"
    p = fetch("--cacert", env.ca, "-o", str(out), env.base + "/large.bin")
    assert p.returncode == 0, p.stderr
    assert out.read_bytes() == env.large


def test_fetch_to_stdout_following_redirects_verbose(env):
    p = fetch("--cacert", env.ca, "-v", "-L", env.base + "/r/2")
    assert p.returncode == 0, p.stderr
    assert p.stdout == SMALL
    err = p.stderr.decode()
    assert "< HTTP/1.1 302" in err and "< HTTP/1.1 200 OK" in err and "* TLS TLSv1.3" in err


def test_redirects_followed_only_with_L_as_in_curl(env):
    p = fetch("--cacert", env.ca, "-v", env.base + "/r/2")
    assert p.returncode == 0, p.stderr
    assert p.stdout != SMALL and b"302" in p.stdout  # the redirect's own page
    err = p.stderr.decode()
    assert "< HTTP/1.1 302" in err and "200 OK" not in err


def test_head_prints_headers(env):
    p = fetch("--cacert", env.ca, "-I", env.base + "/small.txt")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    assert "Content-Length: 1024" in lines


def test_tls_failure_is_reported_not_a_traceback(env):
    p = fetch(f"https://localhost:{env.expired_port}/small.txt", "--cacert", env.ca)
    assert p.returncode == 1
    assert b"TLSError" in p.stderr and b"expired" in p.stderr
    assert b"Traceback" not in p.stderr


def test_http_error_status_exit_code_with_f_as_in_curl(env):
    assert fetch("--cacert", env.ca, "-f", env.base + "/missing").returncode == 22
    assert fetch("--cacert", env.ca, env.base + "/missing").returncode == 0


def test_curl_request_options(env):
    import json

    p = fetch("--cacert", env.ca, "-X", "put", "-H", "X-A: 1", "-H", "X-B:two", "-d", "k=v",
              "-u", "al:pw", env.raw + "/echo")
    assert p.returncode == 0, p.stderr
    echo = json.loads(p.stdout)
    assert echo["method"] == "PUT" and echo["body"] == "k=v"
    for pair in (["X-A", "1"], ["X-B", "two"], ["Authorization", "Basic YWw6cHc="],
                 ["Content-Type", "application/x-www-form-urlencoded"]):
        assert pair in echo["headers"]
    posted = json.loads(fetch("--cacert", env.ca, "-d", "x", env.raw + "/echo").stdout)
    assert posted["method"] == "POST"


def test_curl_proxy_option(env):
    import json

    p = fetch("--cacert", env.ca, "-x", f"http://127.0.0.1:{env.proxy_port}",
              env.raw + "/proxy-log")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)[-1][:2] == ["CONNECT", f"localhost:{env.raw_port}"]


def test_resolve_with_missing_resolver_is_a_clear_error(env, tmp_path):
    hints = tmp_path / "root.hints"
    hints.write_text(". 3600000 NS a.root.test.\n")
    p = fetch("--cacert", env.ca, "--resolve-with", str(hints), env.base + "/small.txt",
              without_resolver=True)
    assert p.returncode == 2
    assert b"needs corenet's resolver package" in p.stderr and b"Traceback" not in p.stderr


def test_render_progress():
    s = render_progress(512, 1024, 1.0, width=10)
    assert "[#####     ]" in s and "50.0%" in s
    assert "MB/s" in render_progress(10, None, 0.5)


@pytest.fixture
def dns_lab(tmp_path):
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "https_dnsserver.py")],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        hints = tmp_path / "root.hints"
        hints.write_text(".  3600000 IN NS a.root.test.\na.root.test. 3600000 IN A 127.0.0.1\n")
        yield hints, port
    finally:
        proc.kill()
        proc.wait(5)


def test_fetch_resolving_with_the_recursive_resolver(env, dns_lab):
    hints, port = dns_lab
    url = f"https://www.corenet.test:{env.port}/small.txt"
    p = fetch("--cacert", env.ca, "--resolve-with", str(hints), "--dns-port", str(port),
              "--dns-query-localhost", "-v", url)
    assert p.returncode == 0, p.stderr
    assert p.stdout == SMALL
    # Without the switch the lab's loopback authorities are never asked.
    p = fetch("--cacert", env.ca, "--resolve-with", str(hints), "--dns-port", str(port), url)
    assert p.returncode != 0 and b"cannot resolve" in p.stderr


def test_progress_bar_when_stderr_is_a_terminal(env, tmp_path):
    import os
    import pty
    import select

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c",
             "import sys; from corenet.https.cli import main; sys.exit(main())",
             "--cacert", env.ca, "-o", str(tmp_path / "out.bin"), env.base + "/large.bin"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        slave = -1
        seen = b""
        for _ in range(200):  # bounded: 200 reads of at most 0.1 s each
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    break
                if not data:
                    break
                seen += data
            elif proc.poll() is not None:
                break
        assert proc.wait(10) == 0
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert b"100.0%" in seen and b"MB/s" in seen
    assert (tmp_path / "out.bin").read_bytes() == env.large
