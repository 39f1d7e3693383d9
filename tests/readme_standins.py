"""Network-free stand-ins for what README.md's examples reach: the Internet's web (an
https://example.org/ origin behind an HTTPS proxy that reaches it and nothing else), its DNS
(the lab's hierarchy from tests/resolver, with the names the examples ask) and the host's
resolver (a daemon of the lab named in a resolv.conf of the test's own).

A block runs unchanged; the stand-ins reach it through its interpreter's environment:
``HTTPS_PROXY`` and ``SSL_CERT_FILE`` (settings the client reads, as httpx does), and a
``sitecustomize`` on ``PYTHONPATH`` that gives ``resolver.Resolver`` the lab's root hints and
port and ``resolver.sync.Resolver`` the test's resolv.conf as their defaults, and refuses
every host name to ``socket.getaddrinfo`` but ``localhost``, so nothing asks the host's
resolver.
"""
from __future__ import annotations

import contextlib
import dataclasses
import ssl
import socket
import sys
import threading
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
for _room in ("https", "resolver"):
    if str(HERE / _room) not in sys.path:
        sys.path.insert(0, str(HERE / _room))

from daemon_proc import Daemon  # noqa: E402
from dnslab import Lab  # noqa: E402
from dnslab import zones as Z  # noqa: E402
from dnslab.nsd import NSD  # noqa: E402,F401 (re-exported: the test checks it is there)
from https_pki import make_pki  # noqa: E402
from https_rawserver import ok, proxy, read_request, send, serve  # noqa: E402

#: the origin's pages: path -> (content type, body)
PAGES: dict[str, tuple[str, bytes]] = {
    "/": ("text/html; charset=UTF-8",
          b"<!doctype html><html><head><title>Example Domain</title></head></html>\n"),
    "/big": ("application/octet-stream", bytes(range(256)) * 1024),
}

#: where the lab's recursive resolver (the resolv.conf's nameserver) listens, on the lab's port
RESOLVER_ADDRESS = "127.0.0.40"

SITECUSTOMIZE = '''\
"""README stand-ins (tests/readme_standins.py): the lab instead of the Internet."""
import ipaddress
import os
import socket

_getaddrinfo = socket.getaddrinfo


def _standin_getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name != "localhost":
        try:
            ipaddress.ip_address(name.partition("%")[0])
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME,
                                  f"{name}: the README stand-ins resolve no host name") from None
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _standin_getaddrinfo
if os.environ.get("STANDIN_ROOT_HINTS"):
    from resolver import api, sync

    api.Resolver.__init__.__defaults__ = (os.environ["STANDIN_ROOT_HINTS"],)
    api.Resolver.__init__.__kwdefaults__.update(
        port=int(os.environ["STANDIN_DNS_PORT"]), do_not_query_localhost=False)
    sync.Resolver.__init__.__defaults__ = (os.environ["STANDIN_RESOLV_CONF"], True)
'''


def lab_zones() -> tuple[dict[str, str], tuple[Z.Server, ...]]:
    """The lab's zones and servers with what the README asks besides: example.org. (its
    addresses and www) and the reverse name of 1.1.1.1."""
    texts = Z.zone_texts()
    texts["."] += "in-addr.arpa. NS ns1.nic.org.\n"
    texts["org."] += f"example NS ns1.example\nns1.example A {Z.EXAMPLE_NET}\n"
    texts["example.org."] = Z._soa("example.org.", "ns1.example.org.") + (
        f"@ NS ns1\nns1 A {Z.EXAMPLE_NET}\n"
        "@ A 192.0.2.70\n@ AAAA 2001:db8::70\nwww A 192.0.2.71\nwww AAAA 2001:db8::71\n")
    texts["in-addr.arpa."] = Z._soa("in-addr.arpa.", "ns1.nic.org.") + (
        "@ NS ns1.nic.org.\n1.1.1.1 PTR one.one.one.one.\n")
    more = {Z.NIC_ORG: ("in-addr.arpa.",), Z.EXAMPLE_NET: ("example.org.",)}
    servers = tuple(dataclasses.replace(s, zones=s.zones + more.get(s.address, ()))
                    for s in Z.SERVERS)
    return texts, servers


def _origin(sock: socket.socket, state: dict) -> None:
    """The pages of PAGES over HTTP/1.1 keep-alive; 404 for any other path."""
    while (req := read_request(sock)) is not None:
        page = PAGES.get(req.url.decode("latin-1").partition("?")[0])
        answer = (ok(page[1], f"Content-Type: {page[0]}\r\n") if page is not None else
                  b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        if not send(sock, answer):
            return


def _listen() -> socket.socket:
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    return ls


@contextlib.contextmanager
def web(tmp: Path) -> Iterator[dict[str, str]]:
    """https://example.org/ on loopback behind an HTTPS proxy that tunnels to it alone:
    yields the environment a block's interpreter needs (proxy and CA)."""
    tmp.mkdir(parents=True, exist_ok=True)
    pki = make_pki(tmp, servers={"origin": ["example.org"]})
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["origin_cert"], pki["origin_key"])
    ctx.set_alpn_protocols(["http/1.1"])
    origin, tunnel = _listen(), _listen()
    state = {"lock": threading.Lock(), "proxy_log": [],
             "routes": {"example.org:443": origin.getsockname()[1]}}
    threads = [threading.Thread(target=serve, args=(origin, ctx, state, _origin), daemon=True),
               threading.Thread(target=serve, args=(tunnel, None, state, proxy), daemon=True)]
    for t in threads:
        t.start()
    try:
        yield {"HTTPS_PROXY": f"http://127.0.0.1:{tunnel.getsockname()[1]}",
               "SSL_CERT_FILE": str(pki["ca"])}
    finally:
        for ls in (origin, tunnel):
            ls.shutdown(socket.SHUT_RDWR)
            ls.close()
        for t in threads:
            t.join(5)


@contextlib.contextmanager
def dns(tmp: Path) -> Iterator[dict[str, str]]:
    """The lab with the README's names, and a daemon recursing from it named in a
    resolv.conf: yields the environment a block's interpreter needs."""
    texts, servers = lab_zones()
    lab = Lab.start(tmp / "lab", zone_texts=texts, servers=servers)
    try:
        daemon = Daemon(tmp / "daemon", lab, "--listen", f"{RESOLVER_ADDRESS}:{lab.port}",
                        port=lab.port, listen=False, metrics=False, control=False).start()
        try:
            conf = tmp / "resolv.conf"
            conf.write_text(f"nameserver {RESOLVER_ADDRESS}\n")
            yield {"STANDIN_ROOT_HINTS": str(lab.root_hints_file),
                   "STANDIN_DNS_PORT": str(lab.port), "STANDIN_RESOLV_CONF": str(conf)}
        finally:
            status = daemon.stop()
            assert status == 0, daemon.log_text()[-2000:]
    finally:
        lab.stop()


def write_sitecustomize(directory: Path) -> Path:
    """The directory, holding the stand-ins' sitecustomize.py, to put first on PYTHONPATH."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return directory
