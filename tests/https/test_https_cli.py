"""corenet-fetch, run as a process against the test nginx."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ci_policy import unavailable
from corenet.tools.fetch_output import render_progress
from https_servers import SMALL, TEXT
from ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def fetch(*args: str, timeout: float = 30, without_resolver: bool = False,
          input: bytes | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Runs corenet-fetch; ``without_resolver`` makes the child see no `resolver` package, as
    on an install of corenet alone (a None entry in sys.modules makes the import fail)."""
    hide = "sys.modules['resolver'] = None; " if without_resolver else ""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); {hide}"
            "from corenet.tools.fetch import main; sys.exit(main())")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True,
                          timeout=timeout, input=input)


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
    assert "< HTTP/1.1 302" in err and "< HTTP/1.1 200 OK" in err
    assert "* SSL connection using TLSv1.3 / " in err


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
    assert p.returncode == 60  # curl's "peer certificate cannot be authenticated"
    assert b"(60) SSL certificate problem: certificate has expired" in p.stderr
    assert b"Traceback" not in p.stderr


def test_http_error_status_exit_code_with_f_as_in_curl(env):
    p = fetch("--cacert", env.ca, "-f", env.base + "/missing")
    assert p.returncode == 22 and p.stdout == b""  # as curl -f: no body printed
    assert b"(22) The requested URL returned error: 404" in p.stderr
    p = fetch("--cacert", env.ca, "--fail-with-body", env.base + "/missing")
    assert p.returncode == 22 and b"404" in p.stdout
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
    url = f"https://www.corenet.example:{env.port}/small.txt"
    p = fetch("--cacert", env.ca, "--resolve-with", str(hints), "--dns-port", str(port),
              "--dns-query-localhost", "-v", url)
    assert p.returncode == 0, p.stderr
    assert p.stdout == SMALL
    # Without the switch the lab's loopback authorities are never asked.
    p = fetch("--cacert", env.ca, "--resolve-with", str(hints), "--dns-port", str(port), url)
    assert p.returncode == 6 and b"(6) Could not resolve host: www.corenet.example" in p.stderr


def test_progress_bar_when_stderr_is_a_terminal(env, tmp_path):
    import os
    import pty
    import select

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c",
             "import sys; from corenet.tools.fetch import main; sys.exit(main())",
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


# ---- curl's flags, output and exit codes ----

def echo(p: subprocess.CompletedProcess) -> dict:
    import json

    assert p.returncode == 0, p.stderr
    e = json.loads(p.stdout)
    e["h"] = {k.lower(): v for k, v in e["headers"]}
    return e


def test_exit_codes_as_curl(env, tmp_path):
    refused = free_port()
    cases = [
        (1, ["ftp://localhost/x"]),                                      # unsupported protocol
        (3, ["https://"]),                                               # malformed URL
        (7, [f"http://127.0.0.1:{refused}/"]),                           # connection refused
        (28, ["--connect-timeout", "0.5", f"https://localhost:{env.silent_port}/"]),
        (28, ["-m", "1", env.raw + "/stall-headers"]),                   # whole-transfer limit
        (35, [f"https://localhost:{env.raw_plain_port}/"]),              # TLS to a plain server
        (60, [f"https://localhost:{env.wrongname_port}/small.txt"]),     # wrong host name
        (60, [f"https://localhost:{env.expired_port}/small.txt"]),       # expired
        (22, ["-f", env.base + "/missing"]),
        (47, ["-L", "--max-redirs", "1", env.base + "/r/2"]),            # too many redirects
        (2, ["--no-such-option", env.base + "/small.txt"]),             # bad command line
        (23, ["-o", str(tmp_path / "no" / "dir" / "x"), env.base + "/small.txt"]),
        (23, ["-o", "/dev/full", env.base + "/small.txt"]),              # write error
        (26, ["-d", f"@{tmp_path / 'missing'}", env.raw + "/echo"]),     # read error (upload)
        (26, ["--data-binary", f"@{tmp_path / 'missing'}", env.raw + "/echo"]),
    ]
    for code, args in cases:
        p = fetch("--cacert", env.ca, *args)
        assert p.returncode == code, (args, p.stderr)
        assert b"Traceback" not in p.stderr
    # A CA that did not sign the server's certificate: 60 too.
    other = fetch(env.base + "/small.txt")
    assert other.returncode == 60, other.stderr


def test_silent_hides_errors_and_show_error_shows_them(env):
    refused = f"http://127.0.0.1:{free_port()}/"
    p = fetch("-s", refused)
    assert p.returncode == 7 and p.stderr == b""
    p = fetch("-sS", refused)
    assert p.returncode == 7 and b"(7) Failed to connect to 127.0.0.1" in p.stderr
    p = fetch("--cacert", env.ca, "-fsSL", env.base + "/missing")
    assert p.returncode == 22 and b"(22)" in p.stderr and p.stdout == b""
    p = fetch("--cacert", env.ca, "-sSL", env.base + "/r/2")
    assert p.returncode == 0 and p.stdout == SMALL and p.stderr == b""


def test_write_out_variables(env):
    fmt = ("%{http_code} %{http_version} %{size_download} %{num_redirects} "
           "%{content_type}|%{url_effective}|%{time_total} %{time_starttransfer}"
           " %{unknown_var}100%%\\n")
    p = fetch("--cacert", env.ca, "-sL", "-o", "/dev/null", "-w", fmt, env.base + "/r/2")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert out.endswith("100%\n")
    head, url, times = out[:-len(" 100%\n")].split("|")
    assert head == "200 1.1 1024 2 text/plain"
    assert url == env.base + "/small.txt"
    total, first = times.split(" ")  # the unknown variable printed nothing
    assert 0 < float(first) <= float(total) < 30 and len(total.split(".")[1]) == 6
    p = fetch("--cacert", env.ca, "-s", "-o", "/dev/null", "-w",
              "%{time_connect} %{time_appconnect} %{time_starttransfer} %{time_total}",
              env.base + "/small.txt")
    connect, appconnect, first, total = map(float, p.stdout.split())
    assert 0 < connect < appconnect <= first <= total, p.stdout     # curl's order
    p = fetch("--cacert", env.ca, "-s", "-o", "/dev/null", "-w",
              "%{remote_ip} %{remote_port}", env.base + "/small.txt")
    assert p.stdout.decode() in (f"127.0.0.1 {env.port}", f"::1 {env.port}"), p.stderr
    # After a failure -w still reports, with curl's 000.
    p = fetch("-s", "-w", "%{http_code}", f"http://127.0.0.1:{free_port()}/")
    assert p.returncode == 7 and p.stdout == b"000"


def test_include_prints_head_then_body(env):
    p = fetch("--cacert", env.ca, "-i", env.base + "/small.txt")
    assert p.returncode == 0, p.stderr
    head, body = p.stdout.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK" and "Content-Length: 1024" in lines
    assert body == SMALL
    p = fetch("--cacert", env.ca, "-iL", env.base + "/r/1")  # each hop's head, as curl
    assert p.stdout.startswith(b"HTTP/1.1 302 ") and b"\r\n\r\nHTTP/1.1 200 OK\r\n" in p.stdout
    assert p.stdout.endswith(SMALL)
    p = fetch("--cacert", env.ca, "-I", env.base + "/small.txt")
    assert p.stdout.startswith(b"HTTP/1.1 200 OK\r\n") and p.stdout.endswith(b"\r\n\r\n")


def test_data_binary_json_and_stdin(env, tmp_path):
    f = tmp_path / "body"
    f.write_bytes(b"a=1\nb=2\r\n\x00")
    e = echo(fetch("--cacert", env.ca, "--data-binary", f"@{f}", env.raw + "/echo"))
    assert e["method"] == "POST" and e["body"] == "a=1\nb=2\r\n\x00"  # as it is
    assert e["h"]["content-type"] == "application/x-www-form-urlencoded"
    e = echo(fetch("--cacert", env.ca, "-d", f"@{f}", "-d", "c=3", env.raw + "/echo"))
    assert e["body"] == "a=1b=2\x00&c=3"  # -d drops newlines; several -d joined by &
    e = echo(fetch("--cacert", env.ca, "--data-binary", "@-", env.raw + "/echo",
                   input=b"from\nstdin"))
    assert e["body"] == "from\nstdin"
    e = echo(fetch("--cacert", env.ca, "--data-raw", "@literal", env.raw + "/echo"))
    assert e["body"] == "@literal"
    e = echo(fetch("--cacert", env.ca, "--json", '{"k": 1}', env.raw + "/echo"))
    assert e["method"] == "POST" and e["body"] == '{"k": 1}'
    assert e["h"]["content-type"] == "application/json"
    assert e["h"]["accept"] == "application/json"
    e = echo(fetch("--cacert", env.ca, "--json", "[1]", "-H", "Accept: text/x", "-X", "PUT",
                   env.raw + "/echo"))
    assert e["method"] == "PUT" and e["h"]["accept"] == "text/x"


def test_cookies_from_a_string_a_file_and_to_a_jar(env, tmp_path):
    e = echo(fetch("--cacert", env.ca, "-b", "a=1; b=2", env.raw + "/echo"))
    assert e["h"]["cookie"] == "a=1; b=2"
    cookies = tmp_path / "in.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n"
                       "localhost\tFALSE\t/\tFALSE\t0\tsid\tabc\n")
    e = echo(fetch("--cacert", env.ca, "-b", str(cookies), env.raw + "/echo"))
    assert e["h"]["cookie"] == "sid=abc"
    jar = tmp_path / "jar.txt"
    p = fetch("--cacert", env.ca, "-c", str(jar),
              env.raw + "/set-cookie?c1=" + b"tok=xyz; Path=/".hex())
    assert p.returncode == 0, p.stderr
    text = jar.read_text()
    assert "Netscape" in text and "localhost\tFALSE\t/\tFALSE\t0\ttok\txyz" in text
    e = echo(fetch("--cacert", env.ca, "-b", str(jar), env.raw + "/echo"))
    assert e["h"]["cookie"] == "tok=xyz"


def test_compressed_asks_and_decodes_and_without_it_bytes_are_as_sent(env):
    from corenet.https.decoder import accept_encoding

    e = echo(fetch("--cacert", env.ca, "--compressed", env.raw + "/echo"))
    assert e["h"]["accept-encoding"] == accept_encoding()
    assert "accept-encoding" not in echo(fetch("--cacert", env.ca, env.raw + "/echo"))["h"]
    p = fetch("--cacert", env.ca, "--compressed", "-i", env.base + "/gz/text.txt")
    assert p.returncode == 0, p.stderr
    head, body = p.stdout.split(b"\r\n\r\n", 1)
    assert b"Content-Encoding: gzip" in head and body == TEXT
    # A server that compresses unasked: as curl, the bytes are written as they came.
    coded = env.raw + "/coded?kind=gzip&n=1000"
    assert fetch("--cacert", env.ca, coded).stdout[:2] == b"\x1f\x8b"
    assert len(fetch("--cacert", env.ca, "--compressed", coded).stdout) == 1000


def test_http_versions_and_verbose_alpn(env):
    for flag in ("--http2", "--http1.1"):
        p = fetch("--cacert", env.ca, flag, "-v", env.base + "/small.txt")
        assert p.returncode == 0 and p.stdout == SMALL, p.stderr
        err = p.stderr.decode()
        assert "* ALPN: server accepted http/1.1" in err and "ALPN None" not in err
        assert "> GET /small.txt HTTP/1.1" in err
    p = fetch("--cacert", env.ca, "--http2", "-v", "-w", "%{http_version}",
              env.h2 + "/small.txt")
    err = p.stderr.decode()
    assert p.returncode == 0 and p.stdout == SMALL + b"2", p.stderr
    assert "* ALPN: server accepted h2" in err and "< HTTP/2 200 \r\n" in err
    p = fetch("--cacert", env.ca, "-v", env.h2 + "/small.txt")  # curl's default: h2 offered
    assert p.returncode == 0 and "< HTTP/2 200 \r\n" in p.stderr.decode()
    p = fetch("--cacert", env.ca, "--http1.1", "-v", env.h2 + "/small.txt")
    assert p.returncode == 0 and "< HTTP/1.1 200 OK" in p.stderr.decode()
    p = fetch("-v", env.raw_plain + "/echo")
    assert p.returncode == 0 and "ALPN" not in p.stderr.decode()
    p = fetch("-v", "--http2-prior-knowledge", env.h2c + "/small.txt")  # h2c
    assert p.returncode == 0 and "< HTTP/2 200 \r\n" in p.stderr.decode(), p.stderr
    assert p.stdout == SMALL
    p = fetch("--http2-prior-knowledge", env.raw_plain + "/echo")  # an HTTP/1.1-only server
    # CURLE_WEIRD_SERVER_REPLY, or CURLE_RECV_ERROR when the server's reset came first
    assert p.returncode in (8, 56) and b"Traceback" not in p.stderr


def test_remote_name(env, tmp_path):
    p = fetch("--cacert", env.ca, "-O", env.base + "/small.txt", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "small.txt").read_bytes() == SMALL and p.stdout == b""


def test_more_curl_request_flags(env, tmp_path):
    """-A, -e, -r, -G with --data-urlencode, -F, -T, --oauth2-bearer, -n, --url."""
    import base64
    import json

    def run(*args):
        return echo(fetch("--cacert", env.ca, *args))

    e = run("-A", "agent/1", "-e", "https://from.test/", "-r", "0-9", env.raw + "/echo")
    assert (e["h"]["user-agent"], e["h"]["referer"], e["h"]["range"]) == \
        ("agent/1", "https://from.test/", "bytes=0-9")

    e = run("-G", "--data-urlencode", "q=a b&c", "--data-urlencode", "=x/y", "-d", "n=1",
            env.raw + "/echo?k=v")
    assert e["method"] == "GET" and e["path"] == "/echo?k=v&q=a+b%26c&x%2Fy&n=1"

    upload = tmp_path / "notes.txt"
    upload.write_bytes(b"file body")
    e = run("-F", "name=al", "-F", f"doc=@{upload};type=text/plain", "-F", f"inline=<{upload}",
            env.raw + "/echo")
    assert e["method"] == "POST" and e["h"]["content-type"].startswith("multipart/form-data")
    assert 'name="name"\r\n\r\nal\r\n' in e["body"]
    assert 'name="doc"; filename="notes.txt"\r\nContent-Type: text/plain\r\n\r\nfile body' \
        in e["body"]
    assert 'name="inline"\r\n\r\nfile body\r\n' in e["body"]

    e = run("-T", str(upload), env.raw + "/echo")
    assert (e["method"], e["path"], e["body"]) == ("PUT", "/echo", "file body")
    to_dir = fetch("--cacert", env.ca, "-T", str(upload), "-o", "/dev/null", "-w",
                   "%{url_effective}", env.raw + "/up/")
    assert to_dir.stdout.decode() == env.raw + "/up/notes.txt"  # the file's name appended

    assert run("--oauth2-bearer", "tok", env.raw + "/echo")["h"]["authorization"] == \
        "Bearer tok"
    netrc = tmp_path / "netrc"
    netrc.write_text("machine localhost login al password pw\n")
    netrc.chmod(0o600)
    assert run("--netrc-file", str(netrc), env.raw + "/echo")["h"]["authorization"] == \
        "Basic " + base64.b64encode(b"al:pw").decode()
    assert json.loads(fetch("--cacert", env.ca, "--url", env.raw + "/echo").stdout)["path"] \
        == "/echo"
    assert fetch("--cacert", env.ca).returncode == 2  # no URL at all


def test_curl_digest_and_dump_header(env, tmp_path):
    dumped = tmp_path / "head.txt"
    p = fetch("--cacert", env.ca, "--digest", "-u", "dg:pw", "-D", str(dumped),
              env.raw + "/digest")
    assert p.returncode == 0, p.stderr
    head = dumped.read_bytes()
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
    assert fetch("--cacert", env.ca, "-u", "dg:pw", "-f", env.raw + "/digest").returncode == 22


def test_curl_connection_flags(env, tmp_path):
    """--resolve pins a name to an address for the URL's port; -4 and -6 keep one family;
    --unix-socket goes through a socket; --output-dir with --create-dirs; --tlsv1.3."""
    import asyncio
    import threading

    p = fetch("--cacert", env.ca, "--resolve", f"pinned.test:{env.raw_port}:127.0.0.1",
              "--resolve", "pinned.test:1:192.0.2.1", "-H", "Host: localhost",
              "-k", f"https://pinned.test:{env.raw_port}/echo")
    assert p.returncode == 0, p.stderr
    assert fetch("--cacert", env.ca, "-4", env.raw + "/echo").returncode == 0
    six = fetch("--cacert", env.ca, "-6", f"https://127.0.0.1:{env.raw_port}/echo")
    assert six.returncode == 7 and b"no IPv6 address" in six.stderr
    assert fetch("--cacert", env.ca, "--tlsv1.3", env.raw + "/echo").returncode == 0
    assert fetch("-E", str(tmp_path / "missing.pem"), env.raw + "/echo").returncode == 58

    out = fetch("--cacert", env.ca, "--output-dir", str(tmp_path / "a"), "--create-dirs",
                "-o", "b/c.bin", env.base + "/small.txt")
    assert out.returncode == 0 and (tmp_path / "a" / "b" / "c.bin").read_bytes() == SMALL

    sock = str(tmp_path / "api.sock")
    ready, stop = threading.Event(), threading.Event()

    def serve():
        async def answer(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nvia uds")
            await writer.drain()
            writer.close()

        async def main():
            server = await asyncio.start_unix_server(answer, sock)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
            server.close()

        asyncio.run(main())

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        assert ready.wait(5)
        p = fetch("--unix-socket", sock, "http://localhost/info")
        assert p.returncode == 0 and p.stdout == b"via uds", p.stderr
    finally:
        stop.set()
        th.join(5)


def test_retry_as_curl(env, tmp_path):
    """--retry: a 503 (or a timeout) is tried again, its body not written; what the last
    attempt gets is the result; -o's file holds only the last attempt's body."""
    url = env.raw + "/unavailable?n=2&key="
    p = fetch("--cacert", env.ca, "--retry", "2", "--retry-delay", "0", url + "a")
    assert (p.returncode, p.stdout) == (0, b"ready"), p.stderr
    assert p.stderr.count(b"retrying") == 2
    p = fetch("--cacert", env.ca, "-f", "--retry", "1", "--retry-delay", "0", url + "b")
    assert p.returncode == 22 and p.stderr.count(b"retrying") == 1
    p = fetch("--cacert", env.ca, url + "c")  # no --retry: the 503 is the answer
    assert (p.returncode, p.stdout) == (0, b"busy")
    out = tmp_path / "out"
    p = fetch("--cacert", env.ca, "--retry", "3", "--retry-delay", "0", "-o", str(out),
              env.raw + "/unavailable?n=1&key=d")
    assert p.returncode == 0 and out.read_bytes() == b"ready"
    p = fetch("--cacert", env.ca, "--retry", "1", "--retry-delay", "0", "-m", "0.5",
              env.raw + "/stall-headers")
    assert p.returncode == 28 and p.stderr.count(b"retrying") == 1
    refused = free_port()
    p = fetch("--retry", "2", "--retry-delay", "0", f"http://127.0.0.1:{refused}/")
    assert p.returncode == 7 and b"retrying" not in p.stderr  # refusal is not transient
    p = fetch("--retry", "2", "--retry-delay", "0", "--retry-connrefused",
              f"http://127.0.0.1:{refused}/")
    assert p.returncode == 7 and p.stderr.count(b"retrying") == 2
    p = fetch("--cacert", env.ca, "--retry", "5", "--retry-delay", "1", "--retry-max-time",
              "0.5", url + "e")
    assert (p.returncode, p.stdout) == (0, b"busy")  # no retry would start in time


def test_curl_proxy_and_protocol_limits(env, tmp_path):
    """--noproxy bypasses -x for the hosts named; --proto and --proto-redir refuse other
    schemes with exit 1, a redirect's before it is followed; --url-query; --stderr."""
    import json

    def proxied():
        return json.loads(fetch("--cacert", env.ca, env.raw + "/proxy-log").stdout)

    before = len(proxied())
    p = fetch("--cacert", env.ca, "-x", f"http://127.0.0.1:{env.proxy_port}",
              "--noproxy", "example.test,localhost", env.raw + "/echo")
    assert p.returncode == 0, p.stderr
    assert len(proxied()) == before  # straight to the server, no CONNECT
    p = fetch("--cacert", env.ca, "-x", f"http://127.0.0.1:{env.proxy_port}",
              "--noproxy", "example.test", env.raw + "/echo")
    assert p.returncode == 0 and len(proxied()) == before + 1

    assert fetch("--cacert", env.ca, "--proto", "=http", env.raw + "/echo").returncode == 1
    assert fetch("--cacert", env.ca, "--proto", "-all,+https", env.raw + "/echo") \
        .returncode == 0
    to_tls = env.raw_plain + "/redirect?to=" + (env.raw + "/echo").encode().hex()
    p = fetch("--cacert", env.ca, "-L", "--proto-redir", "=http", to_tls)
    assert p.returncode == 1 and b"--proto-redir" in p.stderr
    assert fetch("--cacert", env.ca, "-L", to_tls).returncode == 0

    e = echo(fetch("--cacert", env.ca, "--url-query", "q=a b", "--url-query", "+raw=x%20y",
                   env.raw + "/echo"))
    assert e["path"] == "/echo?q=a+b&raw=x%20y"
    log = tmp_path / "err.txt"
    p = fetch("--stderr", str(log), "-f", "--cacert", env.ca, env.raw + "/missing")
    assert p.returncode == 22 and p.stderr == b"" and b"(22)" in log.read_bytes()


# ---- beside curl itself: the same command line, the same server ----

def curl(*args: str, cwd: Path = ROOT, input: bytes | None = None
         ) -> subprocess.CompletedProcess:
    exe = shutil.which("curl")
    if exe is None:
        unavailable("curl is not installed (Debian package curl; scripts/setup.sh)")
    return subprocess.run([exe, "--noproxy", "*", *args], cwd=cwd, capture_output=True,
                          timeout=30, input=input)


def both(*args: str, cwd: Path = ROOT, input: bytes | None = None
         ) -> tuple[subprocess.CompletedProcess, ...]:
    return curl(*args, cwd=cwd, input=input), fetch(*args, cwd=cwd, input=input)


def test_dump_header_to_stdout_while_the_body_goes_elsewhere_as_curl(env):
    theirs, ours = both("-s", "--cacert", env.ca, "-D", "-", "-o", "/dev/null",
                        env.raw + "/big?n=10")
    assert theirs.returncode == ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout == b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"


def test_retry_into_a_device_as_curl(env):
    """A 503's body is not written here, so nothing is to take back before trying again
    (curl writes it, and then exits 23: /dev/null cannot be truncated). Bytes written
    before a timeout cannot be taken back from a device by either: exit 23."""
    p = fetch("--cacert", env.ca, "--retry", "1", "--retry-delay", "0", "-o", "/dev/null",
              env.raw + "/unavailable?n=1&key=devnull")
    assert p.returncode == 0 and p.stderr.count(b"retrying") == 1, p.stderr
    theirs, ours = both("-s", "--cacert", env.ca, "--retry", "1", "-m", "0.5", "-o",
                        "/dev/null", env.raw + "/trickle")
    assert theirs.returncode == ours.returncode == 23, ours.stderr
    assert b"Traceback" not in ours.stderr


def test_several_urls_one_after_another_as_curl(env, tmp_path):
    refused = f"http://127.0.0.1:{free_port()}/"
    ok = env.base + "/small.txt"
    for urls in ((refused, ok), (ok, refused), (ok, env.raw + "/big?n=5", ok)):
        theirs, ours = both("-s", "--cacert", env.ca, "-w", "[%{http_code}]", *urls)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), urls
    got = []
    for run in (curl, fetch):  # -o takes the first URL; the second goes to stdout
        first = tmp_path / f"first-{run.__name__}"
        p = run("-s", "--cacert", env.ca, "-o", str(first), ok, env.raw + "/big?n=5")
        got.append((p.returncode, len(p.stdout), first.read_bytes()))
    assert got[0] == got[1] == (0, 5, SMALL)


def test_write_out_variables_as_curl(env):
    fmt = "%{redirect_url}|%{exitcode}|%{http_version}|%{num_redirects}"
    for url in (env.base + "/r/1", env.raw + "/big?n=3"):
        theirs, ours = both("-s", "--cacert", env.ca, "-o", "/dev/null", "-w", fmt, url)
        assert ours.stdout == theirs.stdout, url
    assert ours.stdout == b"|0|1.1|0"
    refused = f"http://127.0.0.1:{free_port()}/"
    theirs, ours = both("-s", "-w", "%{exitcode}|%{errormsg}|%{speed_download}", refused)
    for p in (theirs, ours):
        code, message, speed = p.stdout.decode().split("|")
        assert code == "7" and message and speed == "0", p.stdout
    theirs, ours = both("-s", "--cacert", env.ca, "-o", "/dev/null", "-w",
                        "%{speed_download}|%{time_namelookup}|%{time_connect}",
                        env.raw + "/big?n=100000")
    for p in (theirs, ours):
        speed, lookup, connect = p.stdout.decode().split("|")
        assert int(speed) > 0 and 0 <= float(lookup) <= float(connect), p.stdout
        assert re.fullmatch(r"\d+\.\d{6}", lookup), p.stdout


def test_write_out_json_as_curl(env):
    theirs, ours = both("-s", "--cacert", env.ca, "-o", "/dev/null", "-w", "%{json}",
                        env.base + "/r/1")
    want, got = json.loads(theirs.stdout), json.loads(ours.stdout)
    assert set(got) <= set(want), set(got) - set(want)
    for name, value in got.items():
        assert type(value) is type(want[name]), (name, value, want[name])
        if name in ("http_code", "response_code", "redirect_url", "exitcode", "errormsg",
                    "num_redirects", "size_download", "url_effective", "http_version",
                    "remote_ip", "remote_port"):
            assert value == want[name], name


def test_form_file_content_types_as_curl(env, tmp_path):
    names = ["a.txt", "b.HTML", "c.png", "d.bin", "e.json", "f.svg", "noext"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")

    def part_types(p: subprocess.CompletedProcess) -> list[str]:
        assert p.returncode == 0, p.stderr
        body = json.loads(p.stdout)["body"]
        return re.findall(r"(?im)^content-type: *(\S+)\r$", body)

    args = ["-s", "--cacert", env.ca]
    for i, name in enumerate(names):
        args += ["-F", f"f{i}=@{name}"]
    theirs, ours = both(*args, env.raw + "/echo", cwd=tmp_path)
    assert part_types(ours) == part_types(theirs) == [
        "text/plain", "text/html", "image/png", "application/octet-stream",
        "application/octet-stream", "image/svg+xml", "application/octet-stream"]


def said(p: subprocess.CompletedProcess, stream: str = "stderr") -> list[str]:
    """The lines a command wrote, its own name (curl, corenet-fetch) as PROG."""
    text = getattr(p, stream).decode("latin-1")
    return re.sub(r"\b(curl|corenet-fetch)\b", "PROG", text).splitlines()


def test_command_line_errors_as_curl():
    url = f"http://127.0.0.1:{free_port()}/"  # never reached: the command line is wrong
    for args in (("--bogus-opt", url), ("-sS", "--frobnicate", url), ("-s",), ("-m", "abc", url),
                 ("--max-time", "abc", url), (url, "-o"), ("--max-redirs", "x", url),
                 (url, "--connect-to"), ("--post302=1", url)):
        theirs, ours = both(*args)
        assert ours.returncode == theirs.returncode == 2, (args, ours.stderr)
        assert said(ours)[0] == said(theirs)[0], args
        assert said(ours)[1].startswith("PROG: try 'PROG --help'"), args


def test_version_and_help_as_curl():
    theirs, ours = both("--version")
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    version = r"PROG \d+\.\d+\.\d+ \(\S+\) (\S+/\S+ )*\S+/\S+"
    for p in (theirs, ours):
        lines = said(p, "stdout")
        assert re.fullmatch(version, lines[0]), lines[0]
    protocols, features = ({line.split(": ", 1)[0]: set(line.split()[1:])
                            for line in said(p, "stdout")[1:]} for p in (ours, theirs))
    assert {"http", "https"} <= protocols["Protocols"]
    assert protocols["Features"] <= features["Features"]  # what ours has, in curl's names
    theirs, ours = both("--help")
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    usage = "Usage: PROG [options...] <url>"
    assert said(ours, "stdout")[0] == said(theirs, "stdout")[0] == usage


def test_write_out_more_variables_as_curl(env):
    fmt = ("%{size_header}|%{response_code}|%{num_connects}|%{scheme}|%{method}|"
           "%{num_headers}|%{size_upload}|%{filename_effective}|%{url}|"
           "%{urlnum}|%{ssl_verify_result}|%header{content-length}|%header{nope}|"
           "%{num_redirects}")
    for url in (env.raw + "/big?n=5", env.base + "/r/2", env.h2 + "/small.txt"):
        theirs, ours = both("-s", "--cacert", env.ca, "-A", "x", "-L", "-o", "/dev/null",
                            "-w", fmt, url)
        assert ours.stdout == theirs.stdout, url
    theirs, ours = both("-s", "--cacert", env.ca, "-A", "x", "-d", "abc", "-o", "/dev/null",
                        "-w", "%{size_upload}|%{size_request}|%{method}", env.raw + "/echo")
    assert ours.stdout == theirs.stdout
    theirs, ours = both("-s", "--cacert", env.ca, "-o", "/dev/null", "-w",
                        "%{local_ip}|%{local_port}", env.raw + "/big?n=5")
    for p in (theirs, ours):
        assert re.fullmatch(rb"127\.0\.0\.1\|[1-9]\d*", p.stdout), p.stdout


def test_write_out_headers_streams_and_escapes_as_curl(env):
    refused = f"http://127.0.0.1:{free_port()}/"
    ok = env.raw + "/big?n=5"
    for fmt, urls in (("%{header_json}", [ok]),
                      ("%{stderr}to err|%{stdout}to out\\n", [ok]),
                      ("%{nosuchvar}[%{http_code}]", [ok]),
                      ("[%{urlnum}%{onerror} failed: %{exitcode}]", [ok, refused]),
                      ("\\t%%|\\\\|\\\\n|\\q|\\r", [ok])):
        theirs, ours = both("-s", "--cacert", env.ca, "-o", "/dev/null", "-w", fmt, *urls)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), fmt
        assert said(ours) == said(theirs), fmt
    theirs, ours = both("-s", "--cacert", env.ca, "-o", "/dev/null", "-w", "%{header_json}",
                        env.base + "/small.txt")
    assert list(json.loads(ours.stdout)) == list(json.loads(theirs.stdout))
    assert ours.stdout.count(b"\n") == theirs.stdout.count(b"\n")
    theirs, ours = both("-s", "--cacert", env.ca, "-I", "-w", "%{size_header}",
                        env.h2 + "/small.txt")
    assert ours.stdout.split(b"\r\n")[0] == theirs.stdout.split(b"\r\n")[0] == b"HTTP/2 200 "
    assert ours.stdout.rsplit(b"\n", 1)[1] == theirs.stdout.rsplit(b"\n", 1)[1]


def test_error_messages_in_curls_words(env, tmp_path):
    """The message of each common failure as curl's, but for the milliseconds taken."""
    refused = f"http://127.0.0.1:{free_port()}/"
    cases = [("-sS", refused), ("-sS", "http://no-such-host.invalid/"),
             ("-sS", "-m", "0.5", f"https://localhost:{env.silent_port}/"),
             ("-sS", "--cacert", env.ca, "-m", "0.5", env.raw + "/trickle"),
             ("-sS", "--cacert", env.ca, f"https://localhost:{env.expired_port}/"),
             ("-sS", "--cacert", env.ca, "-L", "--max-redirs", "1", env.base + "/r/3"),
             ("-sS", "foo://x/"), ("-sS", "http://"),
             ("-sS", "--cacert", env.ca, env.raw + "/short-body"),
             ("-sS", "--cacert", env.ca, env.raw + "/big-short"),
             ("-sS", "--cacert", env.ca, env.raw + "/bad-chunk"),
             ("-sS", "--cacert", env.ca, "--compressed", env.raw + "/bad-gzip")]
    for args in cases:
        theirs, ours = both(*args)
        assert ours.returncode == theirs.returncode, (args, ours.stderr)
        first = [re.sub(r"\d+ (ms|milliseconds)", r"N \1", said(p)[0]) for p in (ours, theirs)]
        # curl names a deadline so when its TLS code is what sees it, which depends on
        # where in the handshake the deadline falls: corenet's one message for both
        first[1] = first[1].replace("SSL connection timeout",
                                    "Connection timed out after N milliseconds")
        if ours.returncode == 28:
            # How much of the trickle came before the deadline varies from run to run: each
            # wrote what it had, and says how much that was.
            for p in (ours, theirs):
                assert p.stdout == b"x" * len(p.stdout), args
                count = re.search(r"with (\d+)", said(p)[0])
                assert count is None or int(count[1]) == len(p.stdout), said(p)
            first = [re.sub(r"with \d+", "with N", line) for line in first]
        else:
            assert ours.stdout == theirs.stdout, args  # what came before the failure
        if ours.returncode == 1:
            first[1] = first[1].replace(" in libcurl", "")
        assert first[0] == first[1], args
    theirs, ours = both("-s", "-w", "%{errormsg}", refused)
    assert [re.sub(rb"\d+ ms", b"N ms", p.stdout) for p in (ours, theirs)] == \
        [re.sub(rb"\d+ ms", b"N ms", theirs.stdout)] * 2


def test_header_file_size_limits_and_several_urls_as_curl(env, tmp_path):
    (tmp_path / "hdrs").write_bytes(b"X-One: 1\r\n\r\nX-Two: two words\n")
    theirs, ours = both("-s", "--cacert", env.ca, "-H", "@hdrs", env.raw + "/echo",
                        cwd=tmp_path)
    sent = [[h for h in json.loads(p.stdout)["headers"] if h[0].startswith("X-")]
            for p in (theirs, ours)]
    assert sent[0] == sent[1] == [["X-One", "1"], ["X-Two", "two words"]]
    for limit, n in (("10", 30), ("1k", 1025), ("1k", 1024), ("100", 30)):
        theirs, ours = both("-sS", "--cacert", env.ca, "--max-filesize", limit,
                            env.raw + f"/big?n={n}")
        assert (ours.returncode, ours.stdout, said(ours)) == \
            (theirs.returncode, theirs.stdout, said(theirs)), (limit, n)
    assert theirs.returncode == 0 and ours.returncode == 0
    missing, ok = env.base + "/missing", env.raw + "/big?n=5"
    for extra in ((), ("--fail-early",)):
        theirs, ours = both("-s", "-f", *extra, "--cacert", env.ca, missing, ok)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), extra
    for run in (curl, fetch):  # the file of a failed transfer removed, the other kept
        where = tmp_path / run.__name__
        where.mkdir()
        p = run("-s", "-f", "--remove-on-error", "--cacert", env.ca, "-o", "a", "-o", "b",
                ok, missing, cwd=where)
        assert p.returncode == 22 and sorted(os.listdir(where)) == ["a"], run.__name__
        p = run("-s", "-Z", "--cacert", env.ca, "-o", "c", "-o", "d", ok, env.base +
                "/small.txt", cwd=where)
        assert p.returncode == 0 and (where / "c").read_bytes() == (where / "a").read_bytes()
        assert (where / "d").read_bytes() == SMALL


def test_limit_rate_as_curl(env):
    """The same bytes as curl's; ours at the rate asked (the installed curl 7.88.1 does not
    slow a transfer from loopback down, so its time is not compared)."""
    url = env.raw + "/big?n=300000"
    theirs = curl("-s", "--cacert", env.ca, "--limit-rate", "200k", url)
    begun = time.monotonic()
    ours = fetch("-s", "--cacert", env.ca, "--limit-rate", "200k", url)
    took = time.monotonic() - begun
    assert ours.returncode == theirs.returncode == 0 and ours.stdout == theirs.stdout
    assert 1.0 <= took < 10, took


def test_verbose_lines_scripts_look_for_as_curl(env):
    """-v's connection lines, request and response heads (CRLF-ended, a blank line after
    each) as curl's: those of a new connection, and of one used again after a redirect."""
    def lines(p: subprocess.CompletedProcess) -> list[str]:
        kept = [line for line in said(p)
                if line.startswith(("> ", "< ", "* Connected to ", "* Re-using ", "*   Trying"))
                or line in (">\r", "<\r")]
        return [re.sub(r"^< (date|last-modified|etag): .*", r"< \1: ...", line, flags=re.I)
                for line in kept]

    for url in (env.raw + "/big?n=5", env.raw_plain + "/echo", env.h2 + "/small.txt"):
        theirs, ours = both("-sv", "--cacert", env.ca, "-A", "x", "-o", "/dev/null", url)
        assert ours.returncode == theirs.returncode == 0, ours.stderr
        assert lines(ours) == lines(theirs), url
    theirs, ours = both("-sv", "--cacert", env.ca, "-A", "x", "-L", "-o", "/dev/null",
                        env.base + "/r/1")
    assert [line for line in lines(ours) if line.startswith("*")] == \
        [line for line in lines(theirs) if line.startswith("*")]
    assert "* ALPN: server accepted http/1.1" in said(ours)


def test_continue_at_as_curl(env, tmp_path):
    """-C -: the rest of a partial file asked for and appended; a server that ignores the
    range is exit 33; a whole file (416) is left as it is, exit 0."""
    for start in (b"", SMALL[:100], SMALL):
        got = []
        for run in (curl, fetch):
            part = tmp_path / f"part-{run.__name__}"
            part.write_bytes(start)
            p = run("-sS", "--cacert", env.ca, "-C", "-", "-o", str(part),
                    env.base + "/small.txt")
            got.append((p.returncode, part.read_bytes(), said(p)))
        assert got[0] == got[1] and got[0][:2] == (0, SMALL), len(start)
    got = []
    for run in (curl, fetch):
        part = tmp_path / f"part-{run.__name__}"
        part.write_bytes(b"abc")
        p = run("-sS", "--cacert", env.ca, "-C", "-", "-o", str(part), env.raw + "/big?n=9")
        got.append((p.returncode, part.read_bytes(), said(p)))
    assert got[0] == got[1] and got[0][0] == 33


def test_config_file_as_curl(env, tmp_path):
    """-K FILE and -K - (standard input): curl's config syntax, the same transfer."""
    config = (f'# a comment\n\n  silent\n--cacert "{env.ca}"\n'
              f'url = "{env.raw}/echo"\noutput: /dev/null\n-A x\n'
              'header = "X-Quoted: a \\"b\\"\\tc"\n'
              'write-out = "%{http_code}|%{size_request}|%{url}\\n"\n')
    (tmp_path / "cfg").write_text(config)
    theirs, ours = both("-K", "cfg", cwd=tmp_path)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), ours.stderr
    assert theirs.stdout.startswith(b"200|")
    theirs, ours = both("--config", "-", cwd=tmp_path, input=config.encode())
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), ours.stderr
    theirs, ours = both("-sS", "-K", "missing.cfg", env.raw + "/echo", cwd=tmp_path)
    assert ours.returncode == theirs.returncode == 26
    said_first = "PROG: option -K: error encountered when reading a file"
    assert said(ours)[0] == said(theirs)[0] == said_first


def test_remote_header_name_as_curl(env, tmp_path):
    """-O -J: the file named by Content-Disposition (its last path segment), else by the
    URL; a file already there is not written over."""
    from urllib.parse import quote

    sent = ['attachment; filename="named.txt"', "attachment; filename=plain.bin",
            'attachment; filename="../up/last.txt"', "inline", ""]
    for value in sent:
        url = env.raw + "/attachment?as=" + quote(value)
        got = []
        for run in (curl, fetch):
            where = tmp_path / run.__name__ / str(sent.index(value))
            where.mkdir(parents=True)
            p = run("-sS", "--cacert", env.ca, "-O", "-J", "-w", "%{filename_effective}",
                    url, cwd=where)
            got.append((p.returncode, p.stdout, sorted(os.listdir(where)),
                        [(where / n).read_bytes() for n in sorted(os.listdir(where))]))
        assert got[0] == got[1], value
    got = []
    for run in (curl, fetch):
        where = tmp_path / run.__name__ / "0"
        for silent in ("-sS", "-S"):
            p = run(silent, "--cacert", env.ca, "-OJ",
                    url.split("?")[0] + "?as=" + quote(sent[0]), cwd=where)
            said_here = re.findall(r"(?:PROG|Warning): [^\r\n]*", "\n".join(said(p)))
            got.append((p.returncode, said_here, (where / "named.txt").read_bytes()))
    assert got[0] == got[2] and got[1] == got[3] and got[0][0] == 23


def test_user_without_password_asks_as_curl(env):
    """-u USER: curl's prompt on stderr, the password a line of standard input."""
    for given in (b"s3cret\n", b""):
        theirs, ours = both("-s", "--cacert", env.ca, "-u", "bob", env.raw + "/echo",
                            input=given)
        sent = [dict(json.loads(p.stdout)["headers"])["Authorization"] for p in (theirs, ours)]
        assert sent[0] == sent[1], given
        assert said(ours) == said(theirs) == ["Enter host password for user 'bob':"]


def test_output_that_cannot_be_opened_as_curl(env, tmp_path):
    got = []
    for run in (curl, fetch):
        for silent in ("-sS", "-S"):
            p = run(silent, "--cacert", env.ca, "-o", "no/such", env.raw + "/big?n=5",
                    cwd=tmp_path)  # a short name: curl folds a warning past 79 columns
            got.append((p.returncode, re.findall(r"(?:PROG|Warning): [^\r\n]*",
                                                 "\n".join(said(p)))))
    assert got[:2] == got[2:] and got[0][0] == 23 and len(got[1][1]) == 2, got


def test_request_method_kept_across_redirects_as_curl(env):
    """-X names the method of every request, a redirect's too (curl's rule): nginx's /echo
    says the method it got (and the length: the body goes as curl's goes, but a POST or PUT
    without one says Content-Length: 0 here, as httpx's, where curl says nothing)."""
    for status in ("302", "303", "307"):
        for args in (("-X", "POST", "-d", "x=1"), ("-X", "PUT"), ("-d", "x=1")):
            theirs, ours = both("-s", "--cacert", env.ca, "-L", *args, env.base + "/r" + status)
            assert ours.returncode == theirs.returncode == 0, ours.stderr
            said_got = [p.stdout.decode().strip().split("|") for p in (theirs, ours)]
            assert said_got[0][0] == said_got[1][0], (status, args)
            assert said_got[0][2] == said_got[1][2] or (said_got[0][2], said_got[1][2]) == \
                ("", "0"), (status, args)


def test_form_fields_without_files_as_curl(env):
    """-F is multipart/form-data even without a file, as curl's."""
    theirs, ours = both("-s", "--cacert", env.ca, "-F", "a=1", "-F", "text=two words",
                        env.raw + "/echo")

    def parts(p: subprocess.CompletedProcess) -> tuple[str, list[str]]:
        got = json.loads(p.stdout)
        ctype = dict(got["headers"])["Content-Type"].split(";")[0]
        return ctype, re.findall(r'name="([^"]*)"\r\n\r\n([^\r]*)', got["body"])

    assert parts(ours) == parts(theirs) == ("multipart/form-data",
                                            [("a", "1"), ("text", "two words")])


def test_options_that_change_nothing_here_are_taken_as_curl(env):
    """curl options a script may carry that ask for what is done already (or concern what
    is not done) run the transfer, as curl's do, instead of failing as unknown."""
    url = env.raw + "/big?n=3"
    for args in (("--no-progress-meter",), ("-q",), ("-#",), ("--progress-bar",),
                 ("--tcp-nodelay",), ("--no-keepalive",), ("--styled-output",),
                 ("--ssl-no-revoke",), ("--false-start",), ("--no-npn",), ("--ssl-reqd",),
                 ("-1",), ("--tlsv1",), ("--tlsv1.1",), ("--keepalive-time", "5"),
                 ("--expect100-timeout", "1"), ("--happy-eyeballs-timeout-ms", "100"),
                 ("--tls-max", "1.2"), ("--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256")):
        theirs, ours = both("-sS", "--cacert", env.ca, *args, "-w", "|%{http_code}", url)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), args
    theirs, ours = both("-sS", "--cacert", env.ca, "--tls-max", "1.2", "-w",
                        "%{http_code}", "-o", "/dev/null", env.base + "/sni")
    assert ours.stdout == theirs.stdout == b"200"
    got = [fetch("-s", "--cacert", env.ca, *tls, env.base + "/sni").stdout.split(b"|")[1]
           for tls in ((), ("--tls-max", "1.2"))]
    assert got == [b"TLSv1.3", b"TLSv1.2"]


def test_size_download_of_a_compressed_body_as_curl(env):
    """--compressed: -w's size_download counts the bytes received, not the decoded ones."""
    for kind in ("gzip", "br", "zstd"):
        theirs, ours = both("-s", "--compressed", "--cacert", env.ca, "-o", "/dev/null", "-w",
                            "%{size_download}", env.raw + f"/coded?kind={kind}&n=20000")
        assert ours.stdout == theirs.stdout, kind
        assert 0 < int(ours.stdout) < 20000


def test_write_out_time_redirect_as_curl(env):
    """%{time_redirect}: 0 without a redirect followed, else within the total, as curl's."""
    fmt = "%{time_redirect}|%{time_total}"
    for url, followed in ((env.raw + "/big?n=3", False), (env.base + "/r/2", True)):
        for p in both("-sL", "--cacert", env.ca, "-o", "/dev/null", "-w", fmt, url):
            redirect, total = map(float, p.stdout.split(b"|"))
            assert (0 < redirect <= total) if followed else redirect == 0, (url, p.stdout)


def test_time_condition_and_remote_time_as_curl(env, tmp_path):
    """-z FILE -o FILE: a 304 leaves the file as it is, a newer body replaces it; -R gives
    the file the Last-Modified time; a date that cannot be read is no condition."""
    url = env.base + "/small.txt"
    for age, expect in ((-3600, SMALL), (3600, b"kept")):  # the copy older, then newer
        got = []
        for run in (curl, fetch):
            copy = tmp_path / f"copy-{run.__name__}"
            copy.write_bytes(b"kept")
            when = time.time() + age
            os.utime(copy, (when, when))
            p = run("-sS", "--cacert", env.ca, "-z", str(copy), "-o", str(copy), "-w",
                    "%{http_code}", url)
            got.append((p.returncode, p.stdout, copy.read_bytes()))
        assert got[0] == got[1] and got[0][2] == expect, age
    stamps = []
    for run in (curl, fetch):
        out = tmp_path / f"timed-{run.__name__}"
        assert run("-s", "--cacert", env.ca, "-R", "-o", str(out), url).returncode == 0
        stamps.append(int(out.stat().st_mtime))
    assert stamps[0] == stamps[1]
    for when in ("Sun, 06 Nov 1994 08:49:37 GMT", "20990101", "20990101 10:00:00",
                 "-Sun, 06 Nov 1994 08:49:37 GMT", "2099-01-01", "not a date"):
        theirs, ours = both("-S", "--cacert", env.ca, "-z", when, "-o", "/dev/null", "-w",
                            "%{http_code}", url)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), when
        warned = [[line for line in said(p) if line.startswith("Warning")]
                  for p in (theirs, ours)]
        assert warned[0] == warned[1], when


def test_header_removed_or_empty_as_curl(env):
    """-H "Name:" sends no Name (a default one neither), -H "Name;" an empty one, -A ""
    no User-Agent, as curl."""
    def sent(p: subprocess.CompletedProcess) -> list[list[str]]:
        assert p.returncode == 0, p.stderr
        return [h for h in json.loads(p.stdout)["headers"] if h[0] != "User-Agent"
                or h[1].startswith("x")]

    for args in (("-H", "Accept:"), ("-H", "Accept: "), ("-H", "User-Agent:"),
                 ("-H", "X-Empty;"), ("-A", ""), ("-d", "a=1", "-H", "Content-Type:"),
                 ("-H", "X-Set: 1", "-H", "X-Gone:")):
        theirs, ours = both("-s", "--cacert", env.ca, *args, env.raw + "/echo")
        assert sorted(sent(ours)) == sorted(sent(theirs)), args
        agent = [("User-Agent" in dict(json.loads(p.stdout)["headers"])) for p in (theirs, ours)]
        assert agent[0] == agent[1], args


def test_location_trusted_as_curl(env):
    """-u's credentials go to another host redirected to only with --location-trusted
    (which follows redirects by itself): nginx's /echo says the Authorization it got."""
    for follow in ("-L", "--location-trusted"):
        theirs, ours = both("-s", "--cacert", env.ca, "-u", "al:pw", follow,
                            env.base + "/cross")
        assert ours.returncode == theirs.returncode == 0, ours.stderr
        assert ours.stdout == theirs.stdout, follow
    assert b"Basic" in ours.stdout


def test_continue_at_with_retries_as_curl(env, tmp_path):
    """-C - --retry: what a try wrote before the body was cut short is thrown away, and
    the next try starts again from -C's offset, as curl's."""
    got = []
    for run in (curl, fetch):
        part = tmp_path / f"part-{run.__name__}"
        p = run("-sS", "--cacert", env.ca, "-C", "-", "-o", str(part), "--retry", "1",
                "--retry-all-errors", "--retry-delay", "0", env.raw + "/big-short")
        got.append((p.returncode, part.read_bytes(), said(p)[-1:]))
    assert got[0] == got[1] and got[0][0] == 18 and len(got[0][1]) == 200000


def request_sent(p: subprocess.CompletedProcess) -> tuple[str, list[str]]:
    """The request line rawserver's /echo got, and its header names but User-Agent."""
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout.split(b"\n", 1)[0])
    return (got["raw"].split("\r\n", 1)[0],
            sorted(h[0] for h in got["headers"] if h[0] != "User-Agent"))


def test_http10_as_curl(env, tmp_path):
    """-0/--http1.0: the HTTP/1.0 request line (a body still with its Content-Length),
    http/1.0 offered in ALPN, a new connection for each request; the last of -0, --http1.1,
    --http2 and --http2-prior-knowledge wins, as curl's."""
    for args, line in ((("-0",), "GET /echo HTTP/1.0"), (("--http1.0",), "GET /echo HTTP/1.0"),
                       (("-0", "-d", "a=1"), "POST /echo HTTP/1.0"),
                       (("-0", "--http1.1"), "GET /echo HTTP/1.1"),
                       (("--http2", "-0"), "GET /echo HTTP/1.0")):
        theirs, ours = both("-s", "--cacert", env.ca, *args, env.raw + "/echo")
        assert request_sent(ours) == request_sent(theirs), args
        assert request_sent(ours)[0] == line, args
    for args, line in ((("--http2-prior-knowledge", "-0"), "GET /echo HTTP/1.0"),
                       (("--http2-prior-knowledge", "--http1.1"), "GET /echo HTTP/1.1")):
        theirs, ours = both("-s", *args, env.raw_plain + "/echo")
        assert request_sent(ours)[0] == request_sent(theirs)[0] == line, args
    for url in (env.base + "/small.txt", env.h2 + "/small.txt"):
        theirs, ours = both("-sv", "--cacert", env.ca, "-0", "-o", "/dev/null", url)
        shown = [[line for line in said(p) if line.startswith(("* ALPN: server", "> GET"))]
                 for p in (theirs, ours)]
        assert shown[0] == shown[1] == ["* ALPN: server accepted http/1.0",
                                        "> GET /small.txt HTTP/1.0"], url
    theirs, ours = both("-s", "--cacert", env.ca, "-0", "-L", "-o", "/dev/null", "-w",
                        "%{num_connects}|%{http_code}", env.base + "/r/2")
    assert ours.stdout == theirs.stdout == b"3|200"


def test_connect_to_as_curl(env):
    """--connect-to HOST1:PORT1:HOST2:PORT2: the connection goes to HOST2:PORT2 while TLS
    (nginx's /sni says the name it got) and Host name the URL's; empty fields as curl's;
    the first entry that fits and names somewhere wins; a bad port is curl's error 49."""
    unused = free_port()
    url = f"https://localhost:{unused}"
    for entries in ([f"localhost:{unused}:127.0.0.1:{env.port}"],
                    [f":{unused}:127.0.0.1:{env.port}"], [f"localhost::127.0.0.1:{env.port}"],
                    [f"localhost:{unused}::{env.port}"], [f"::localhost:{env.port}"],
                    ["::", f"other:{unused}:192.0.2.1:1", f"LOCALHOST:0{unused}::{env.port}"]):
        args = [a for e in entries for a in ("--connect-to", e)]
        theirs, ours = both("-sS", "--cacert", env.ca, *args, url + "/sni")
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), entries
        assert ours.stdout.startswith(b"localhost|TLSv1.3|"), entries
    theirs, ours = both("-s", "--cacert", env.ca, "--connect-to", f"::127.0.0.1:{env.raw_port}",
                        url + "/echo")
    hosts = [dict(json.loads(p.stdout)["headers"])["Host"] for p in (theirs, ours)]
    assert hosts == [f"localhost:{unused}"] * 2
    # --resolve pins the name connected to, for the port connected to
    theirs, ours = both("-sSk", "--connect-to", f"site.test:{unused}:backend.test:{env.port}",
                        "--resolve", f"backend.test:{env.port}:127.0.0.1",
                        f"https://site.test:{unused}/sni")
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    assert ours.stdout.startswith(b"site.test|")
    for entry in ("::b:x", "::b:99999", "::b:-1", "::b:2:3", f"localhost:{unused}:b: 1x"):
        theirs, ours = both("-sS", "--cacert", env.ca, "--connect-to", entry, url + "/sni")
        assert ours.returncode == theirs.returncode == 49, (entry, ours.stderr)
        assert said(ours) == said(theirs), entry
    theirs, ours = both("-sS", "--cacert", env.ca, "--connect-to", f"::127.0.0.1:{unused}",
                        env.base + "/sni")
    assert ours.returncode == theirs.returncode == 7
    told = [re.sub(r"after \d+ ms", "after N ms", said(p)[0]) for p in (theirs, ours)]
    assert told[0] == told[1] == (f"PROG: (7) Failed to connect to 127.0.0.1 port {unused} "
                                  "after N ms: Couldn't connect to server")


def test_path_as_is_as_curl(env):
    """The URL's /./ and /../ segments are squashed before the request, as curl's, unless
    --path-as-is sends the path as it is (a redirect's Location's too); -w's url_effective
    says which went."""
    for path, squashed in (("/x/../echo", "/echo"), ("/./echo", "/echo"),
                           ("/a/b/../.././echo?q=/../", "/echo?q=/../"),
                           ("/x/%2e%2e/../echo", "/x/echo")):
        for as_is in (False, True):
            args = ("--path-as-is",) if as_is else ()
            theirs, ours = both("-s", "--cacert", env.ca, *args, "-w", "\n%{url_effective}",
                                env.raw + path)
            sent = request_sent(ours)[0]
            assert sent == request_sent(theirs)[0], (path, as_is)
            want = path if as_is else squashed
            assert sent == f"GET {want} HTTP/1.1", (path, as_is)
            effective = [p.stdout.rsplit(b"\n", 1)[1] for p in (theirs, ours)]
            assert effective[0] == effective[1] == (env.raw + want).encode(), (path, as_is)
    for location in ("/x/../echo", "a/./../echo", f"{env.raw}/b/../echo"):  # a redirect's too
        for as_is in (False, True):
            args = ("--path-as-is",) if as_is else ()
            theirs, ours = both("-sL", "--cacert", env.ca, *args,
                                env.raw + f"/redirect?to={location.encode().hex()}")
            assert request_sent(ours) == request_sent(theirs), (location, as_is)


def test_post_redirects_as_curl(env, tmp_path):
    """-L: a POST is a GET after a 301, 302 or 303 (the body left behind), as curl's,
    unless --post301, --post302 or --post303 keeps it; a PUT stays one but after a 303; a
    307 keeps any. nginx's /echo says the method and Content-Length it got."""
    upload = tmp_path / "up.txt"
    upload.write_bytes(b"12345")
    seen = set()
    for status in ("301", "302", "303", "307"):
        for flags in ((), (f"--post{status}",) if status != "307" else (),
                      ("--post301", "--post302", "--post303")):
            for args in (("-d", "x=1"), ("-T", str(upload))):
                theirs, ours = both("-s", "--cacert", env.ca, "-L", *flags, *args,
                                    env.base + "/r" + status)
                assert ours.returncode == theirs.returncode == 0, ours.stderr
                assert ours.stdout == theirs.stdout, (status, flags, args)
                seen.add((status, bool(flags), args[0], ours.stdout.decode().strip()))
    assert ("302", False, "-d", "GET||") in seen and ("302", True, "-d", "POST||3") in seen
    assert ("302", False, "-T", "PUT||5") in seen and ("303", True, "-T", "GET||") in seen


def test_trace_as_curl(env, tmp_path):
    """--trace and --trace-ascii: curl's dump, byte for byte for a plain-http exchange, a
    body sent (-d, --json; -F's headers in curl's order, its boundary being random); -v
    after them, or them after -v, the last one wins; "-" is standard output, a file that
    cannot be opened stderr; a failure's message ends the trace, as curl's."""
    url = env.raw_plain + "/echo"
    for kind in ("--trace", "--trace-ascii"):
        dumps = []
        for run in (curl, fetch):
            name = tmp_path / f"{run.__name__}{kind}"
            assert run("-s", "-A", "agent/1", kind, str(name), url).returncode == 0
            dumps.append(name.read_text())
        assert dumps[0] == dumps[1], kind
        assert "<= Recv header, 17 bytes (0x11)\n" in dumps[0]
    sent = {}
    for body in (("-d", "a=1"), ("--json", '{"a":1}')):
        theirs, ours = both("-s", "-A", "agent/1", *body, "--trace-ascii", "-",
                            env.raw_plain + "/big?n=3")
        # byte for byte: -d's Content-Length before its Content-Type, --json's two
        # headers before the Content-Length, as curl sends them
        assert ours.stdout == theirs.stdout, body
        sent[body[0]] = ours.stdout
    assert b"=> Send data, 3 bytes (0x3)\n0000: a=1\n" in sent["-d"]
    theirs, ours = both("-s", "-A", "agent/1", "-F", "a=1", "--trace-ascii", "-",
                        env.raw_plain + "/big?n=3")
    heads = [re.findall(rb"(?m)^[0-9a-f]{4}: ([A-Za-z-]+):", p.stdout.split(b"=> Send data")[0])
             for p in (theirs, ours)]
    assert heads[0] == heads[1] and heads[0][-2:] == [b"Content-Length", b"Content-Type"]
    for args, traced in ((("--trace-ascii", "-", "-v"), False), (("-v", "--trace", "-"), True)):
        theirs, ours = both("-s", *args, "-o", "/dev/null", url)
        for p in (theirs, ours):
            assert (b"=> Send header" in p.stdout) is traced, args
            assert (b"> GET /echo HTTP/1.1" in p.stderr) is not traced, args
    for p in both("-s", "--trace-ascii", str(tmp_path / "none" / "t"), "-o", "/dev/null", url):
        assert p.returncode == 0 and b"=> Send header" in p.stderr  # stderr instead
    closed = f"http://127.0.0.1:{free_port()}/"
    theirs, ours = both("-s", "--trace-ascii", "-", closed)
    assert ours.returncode == theirs.returncode == 7
    ends = [re.sub(r"after \d+ ms", "after N ms", p.stdout.decode()) for p in (theirs, ours)]
    assert ends[1].splitlines()[-1] in ends[0].splitlines()
    assert ends[1].splitlines()[-1].startswith("== Info: Failed to connect to 127.0.0.1 port")
