"""SOCKS5 proxies (`proxy="socks5://..."` or `socks5h://`, as httpx takes them): every origin,
http:// and https:// alike, through a tunnel the proxy opens (RFC 1928), with a user name and
password (RFC 1929) when given; a refusal or a broken reply is a ProxyError. Against a real
SOCKS5 server (microsocks, on loopback, stopped by PID), and the handshake's parser against
whatever a proxy may send."""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time

import pytest
from hypothesis import given, settings, strategies as st

from corenet.https import AsyncClient, Client, ConnectError, Proxy, ProxyError
from corenet.https.socks import Socks5Connect
from ports import free_port
from procs import stop
from test_https_hostile import wire_head


def _start_socks(args: list[str]) -> tuple[subprocess.Popen, int]:
    exe = shutil.which("microsocks")
    if exe is None:
        pytest.skip("microsocks is not installed (the SOCKS5 server of these tests)")
    port = free_port()
    proc = subprocess.Popen([exe, "-i", "127.0.0.1", "-p", str(port), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError("microsocks did not start") from None
            time.sleep(0.05)


@pytest.fixture
def socks():
    proc, port = _start_socks([])
    yield port
    stop(proc)


@pytest.fixture
def socks_auth():
    proc, port = _start_socks(["-u", "alice", "-P", "s3cret"])
    yield port
    stop(proc)


def through(env, run, proxy, url: str):
    async def main():
        async with AsyncClient(verify=env.ca, proxy=proxy, trust_env=False) as c:
            r = await c.get(url)
            return r.status_code, r.json(), r.extensions["server_addr"]
    return run(main())


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_https_and_http_origins_go_through_the_socks_tunnel(env, run, socks, scheme):
    proxy = f"{scheme}://127.0.0.1:{socks}"
    status, echo, peer = through(env, run, proxy, env.raw + "/echo")
    assert status == 200 and peer[1] == socks         # TLS to the origin, inside the tunnel
    status, echo, peer = through(env, run, proxy, env.raw_plain + "/echo")
    assert status == 200 and peer[1] == socks
    # the tunnel reaches the origin itself: the request line is the origin's form, not a
    # forwarding proxy's absolute URL
    assert echo["raw"].split("\r\n", 1)[0] == "GET /echo HTTP/1.1"


def test_credentials_in_the_url_or_in_auth(env, run, socks_auth):
    url = env.raw + "/echo"
    assert through(env, run, f"socks5://alice:s3cret@127.0.0.1:{socks_auth}", url)[0] == 200
    assert through(env, run, Proxy(f"socks5://127.0.0.1:{socks_auth}",
                                   auth=("alice", "s3cret")), url)[0] == 200
    with pytest.raises(ProxyError, match="refused the user name and password"):
        through(env, run, f"socks5://alice:wrong@127.0.0.1:{socks_auth}", url)
    with pytest.raises(ProxyError, match="wants credentials"):
        through(env, run, f"socks5://127.0.0.1:{socks_auth}", url)


def test_an_origin_the_proxy_cannot_reach_is_a_proxy_error_naming_it(env, run, socks):
    closed = free_port()
    with pytest.raises(ProxyError, match=f"could not connect to 127.0.0.1:{closed}: "
                                         "connection refused"):
        through(env, run, f"socks5://127.0.0.1:{socks}", f"http://127.0.0.1:{closed}/")
    with pytest.raises(ConnectError):                      # no proxy there at all
        through(env, run, f"socks5://127.0.0.1:{free_port()}", env.raw + "/echo")


def test_the_sync_client_and_the_environment_take_socks_too(env, socks, monkeypatch):
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY",
                "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ALL_PROXY", f"socks5h://127.0.0.1:{socks}")
    with Client(verify=env.ca) as c:
        r = c.get(env.raw + "/echo")
    assert r.status_code == 200 and r.extensions["server_addr"][1] == socks
    assert wire_head(r.json())                              # the origin's echo came back


async def _handshake_with(replies: list[bytes], auth=None) -> tuple[list[bytes], Exception | None]:
    """A SOCKS5 'server' on loopback answering each of the client's writes with the next of
    ``replies``; what the client sent, and the client's error."""
    got: list[bytes] = []
    handlers: list[asyncio.Task] = []

    async def serve(reader, writer):
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            for reply in replies:
                data = await reader.read(1024)
                if not data:
                    break
                got.append(data)
                writer.write(reply)
                await writer.drain()
            await asyncio.sleep(0.5)     # then the connection ends, mid-handshake or not
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with AsyncClient(proxy=Proxy(f"socks5://127.0.0.1:{port}", auth=auth),
                               trust_env=False, timeout=5) as c:
            try:
                await c.get("http://origin.test:8080/")
            except Exception as exc:                          # noqa: BLE001
                return got, exc
            return got, None
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


@pytest.mark.parametrize("replies, message", [
    ([b"\x04\x00"], "not a SOCKS5 proxy"),
    ([b"\x05\xff"], "accepts no method offered"),
    ([b"\x05\x00", b"\x05\x01\x00\x01"], "proxy closed the connection"),  # cut short
    ([b"\x05\x00", b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50"], "not allowed by ruleset"),
    ([b"\x05\x00", b"\x05\x00\x00\x09\x00\x00"], "address type 9"),
    ([b"\x05\x00", b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x50HTTP/1.1"], "bytes after"),
])
def test_a_broken_or_refusing_proxy_is_a_proxy_error(run, replies, message):
    got, exc = run(_handshake_with(replies))
    assert isinstance(exc, ProxyError) and message in str(exc), exc
    assert got[0] == b"\x05\x01\x00"                  # one method offered: none
    if len(got) > 1:                                  # the name, for the proxy to resolve
        assert got[1] == b"\x05\x01\x00\x03\x0borigin.test\x1f\x90"


def test_the_greeting_and_login_as_rfc_1928_and_1929_write_them(run):
    got, exc = run(_handshake_with([b"\x05\x02", b"\x01\x01"], auth=("u", "pw")))
    assert got == [b"\x05\x01\x02", b"\x01\x01u\x02pw"]
    assert isinstance(exc, ProxyError) and "refused the user name" in str(exc)


def test_addresses_and_field_limits():
    assert Socks5Connect("192.0.2.1", 443, None).request.endswith(
        b"\x01\xc0\x00\x02\x01\x01\xbb")
    assert Socks5Connect("[2001:db8::1]", 80, None).request[3] == 0x04
    with pytest.raises(ProxyError, match="1 to 255 bytes"):
        Socks5Connect("a.test", 80, ("u" * 256, "p"))
    with pytest.raises(ProxyError, match="1 to 255 bytes"):
        Socks5Connect("a.test", 80, ("u", ""))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64), st.lists(st.integers(1, 16), max_size=8),
       st.booleans())
def test_any_reply_in_any_pieces_ends_done_or_in_a_proxy_error(data, cuts, auth):
    """Whatever a proxy sends, in whatever pieces: the handshake ends done or raises
    ProxyError, never another exception, and asks to send only the login or the request."""
    hs = Socks5Connect("origin.test", 443, ("u", "p") if auth else None)
    allowed = {b"", hs.request, hs.login}
    pos = 0
    try:
        for cut in [*cuts, len(data)]:
            piece, pos = data[pos:pos + cut], pos + cut
            assert hs.feed(piece) in allowed
            if hs.done:
                break
    except ProxyError:
        return


def test_corenet_fetch_through_socks_as_curl(env, socks, socks_auth):
    """`-x socks5h://...` on both command lines: the same body, and curl's exit code 97
    (CURLE_PROXY) when the proxy cannot reach the origin or refuses the credentials."""
    from test_https_cli import fetch

    exe = shutil.which("curl")
    if exe is None:
        pytest.skip("curl is not installed (the reference for corenet-fetch)")
    quiet = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}

    def both(*args: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
        theirs = subprocess.run([exe, *args], capture_output=True, timeout=30, env=quiet)
        return theirs, fetch(*args)

    theirs, ours = both("-s", "--cacert", str(env.ca), "-x", f"socks5h://127.0.0.1:{socks}",
                        env.base + "/small.txt")
    assert theirs.returncode == ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    closed = free_port()
    theirs, ours = both("-s", "-x", f"socks5h://127.0.0.1:{socks}",
                        f"http://127.0.0.1:{closed}/")
    assert theirs.returncode == ours.returncode == 97, ours.stderr
    theirs, ours = both("-s", "--cacert", str(env.ca), "-x",
                        f"socks5h://alice:wrong@127.0.0.1:{socks_auth}", env.base + "/small.txt")
    assert theirs.returncode == ours.returncode == 97, ours.stderr
