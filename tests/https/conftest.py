"""Servers for the HTTPS client tests: a test PKI, nginx from Debian on loopback (its own
config, pid and log files in a temp dir, `daemon off`, stopped by PID), and rawserver.py
for the faults nginx cannot produce. All session-scoped: started once, stopped at exit."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from https_pki import make_pki
from https_servers import nginx_conf, start_nginx, write_docroot
from ports import free_port
from procs import stop

HERE = Path(__file__).parent


@dataclass
class Env:
    ca: str
    port: int            # nginx, valid certificate
    h2_port: int         # the same nginx server, HTTP/2 offered in ALPN
    h2c_port: int        # the same nginx server, HTTP/2 with prior knowledge, no TLS
    expired_port: int
    wrongname_port: int
    raw_port: int        # rawserver over TLS
    raw2_port: int       # the same server on a second TLS port (another origin)
    proxy_port: int      # rawserver's HTTP proxy (CONNECT and forwarding)
    proxy_tls_port: int  # the same proxy reached over TLS
    raw_plain_port: int  # rawserver over plain TCP
    silent_port: int     # accepts TCP, never answers
    large: bytes
    pki: dict

    @property
    def base(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def h2(self) -> str:
        return f"https://localhost:{self.h2_port}"

    @property
    def h2c(self) -> str:
        return f"http://127.0.0.1:{self.h2c_port}"

    @property
    def raw(self) -> str:
        return f"https://localhost:{self.raw_port}"

    @property
    def raw_plain(self) -> str:
        return f"http://127.0.0.1:{self.raw_plain_port}"


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> dict:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def rawserver(pki):
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "https_rawserver.py"), str(pki["valid_cert"]),
         str(pki["valid_key"])], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("https_rawserver.py did not start")
        ports = json.loads(line)
        yield ports
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def nginx_files(tmp_path_factory) -> tuple[Path, bytes]:
    root = tmp_path_factory.mktemp("www")
    return root, write_docroot(root)


@pytest.fixture(scope="session")
def env(tmp_path_factory, pki, rawserver, nginx_files) -> Env:
    root, large = nginx_files
    tmp = tmp_path_factory.mktemp("nginx")
    ports = {"port": free_port(), "h2_port": free_port(), "h2c_port": free_port(),
             "expired_port": free_port(),
             "wrongname_port": free_port(), "backend": rawserver["plain"]}
    try:
        proc = start_nginx(tmp, nginx_conf(tmp, root, pki, ports), ports["port"])
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    try:
        yield Env(ca=str(pki["ca"]), port=ports["port"], h2_port=ports["h2_port"],
                  h2c_port=ports["h2c_port"],
                  expired_port=ports["expired_port"],
                  wrongname_port=ports["wrongname_port"], raw_port=rawserver["tls"],
                  raw2_port=rawserver["tls2"], proxy_port=rawserver["proxy"],
                  proxy_tls_port=rawserver["proxy_tls"],
                  raw_plain_port=rawserver["plain"],
                  silent_port=rawserver["silent"], large=large, pki=pki)
    finally:
        stop(proc)
