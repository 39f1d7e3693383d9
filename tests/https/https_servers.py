"""Test servers shared by tests/https and benchmarks/test_https.py: nginx on loopback with
its own config, pid and logs in a temp dir (`daemon off`, stopped by PID), and the files it
serves."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

from ports import free_port
from procs import stopped_unless_ready

HERE = Path(__file__).parent
SMALL = bytes(range(256)) * 4  # 1 KiB
TEXT = b"".join(b"line %05d of a compressible text file\n" % i for i in range(2000))
# What an API answers, and a large text download: nginx gzips both (under /gz/).
JSON_1K = b"".join(b'{"id": %d, "name": "item %d", "tags": ["a", "b"]},\n' % (i, i)
                   for i in range(40))[:1024]
TEXT_4M = b"".join(b"line %07d of a compressible text download, with a few words\n" % i
                   for i in range(70000))[:4 * 1024 * 1024]


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")


def write_docroot(root: Path) -> bytes:
    """Write the files nginx serves; return the 4 MiB large body."""
    root.chmod(0o755)
    large = os.urandom(4 * 1024 * 1024)
    (root / "small.txt").write_bytes(SMALL)
    (root / "large.bin").write_bytes(large)
    (root / "gz").mkdir()
    (root / "gz" / "text.txt").write_bytes(TEXT)
    (root / "gz" / "small.txt").write_bytes(JSON_1K)
    (root / "gz" / "large.txt").write_bytes(TEXT_4M)
    (root / "chunked.shtml").write_bytes(
        b"<p>start</p>\n<p><!--# echo var=\"date_gmt\" --></p>\n" + b"<p>tail</p>\n" * 50)
    return large


NGINX_CONF = """
{user}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ text/plain txt; text/html html shtml; application/octet-stream bin; }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 30 30;
    keepalive_requests 1000000;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:1m;
    ssl_session_timeout 10m;
    server {{
        listen 127.0.0.1:{port} ssl;
        listen 127.0.0.1:{h2_port} ssl http2;
        listen 127.0.0.1:{h2c_port} http2;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {root};
        absolute_redirect off;
        location /gz/ {{ gzip on; gzip_types text/plain; gzip_min_length 0; }}
        location = /chunked.shtml {{ ssi on; }}
        location = /r/1 {{ return 302 /small.txt; }}
        location = /r/2 {{ return 302 /r/1; }}
        location = /r/3 {{ return 301 /r/2; }}
        location = /loop {{ return 302 /loop; }}
        location = /r301 {{ return 301 /echo; }}
        location = /r302 {{ return 302 /echo; }}
        location = /r303 {{ return 303 /echo; }}
        location = /r307 {{ return 307 /echo; }}
        location = /r308 {{ return 308 /echo; }}
        location = /cross {{ return 302 https://127.0.0.1:{port}/echo; }}
        location = /echo {{
            return 200 "$request_method|$http_authorization|$http_content_length\\n";
        }}
        location = /close {{ keepalive_timeout 0; return 200 "bye\\n"; }}
        location = /sni {{ return 200 "$ssl_server_name|$ssl_protocol|$ssl_session_reused"; }}
        location = /stall {{
            proxy_pass http://127.0.0.1:{backend}/trickle;
            proxy_buffering off;
            proxy_http_version 1.1;
        }}
    }}
    server {{
        listen 127.0.0.1:{expired_port} ssl;
        ssl_certificate {expired_cert};
        ssl_certificate_key {expired_key};
        root {root};
    }}
    server {{
        listen 127.0.0.1:{wrongname_port} ssl;
        ssl_certificate {wrong_cert};
        ssl_certificate_key {wrong_key};
        root {root};
    }}
}}
"""


def start_nginx(tmp: Path, conf: str, port: int) -> subprocess.Popen:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        raise FileNotFoundError("nginx is not installed (Debian package nginx; scripts/setup.sh)")
    (tmp / "nginx.conf").write_text(conf)
    proc = subprocess.Popen(
        [nginx, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(tmp / "nginx.conf"),
         "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with stopped_unless_ready(proc):
        try:
            wait_port(port, proc, "nginx")
        except RuntimeError as exc:
            err = proc.stderr.read().decode() if proc.poll() is not None else ""
            raise RuntimeError(f"{exc}: {err}") from None
    return proc


def nginx_conf(tmp: Path, root: Path, pki: dict, ports: dict) -> str:
    user = ""
    if os.geteuid() == 0:
        user = f"user {pwd.getpwuid(0).pw_name};"
    ports.setdefault("h2_port", free_port())  # the same server over HTTP/2
    ports.setdefault("h2c_port", free_port())  # and over HTTP/2 without TLS (h2c)
    return NGINX_CONF.format(
        user=user, tmp=tmp, root=root, cert=pki["valid_cert"], key=pki["valid_key"],
        expired_cert=pki["expired_cert"], expired_key=pki["expired_key"],
        wrong_cert=pki["wrongname_cert"], wrong_key=pki["wrongname_key"], **ports)


