"""trust_env with a proxy variable naming a kind of proxy the client cannot use (SOCKS4;
SOCKS5 is taken: test_https_socks), and mounts= choosing a proxy per URL pattern."""
from __future__ import annotations

import warnings

import pytest

from corenet.https import AsyncClient

from test_https_httpx_shape import proxy_log

VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
        "NO_PROXY", "no_proxy")


@pytest.fixture
def clean_env(monkeypatch):
    for var in VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def fetch(env, run) -> tuple[int, list[str]]:
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            return (await c.get(env.raw + "/echo")).status_code

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = run(main())
    return status, [str(w.message) for w in caught if w.category is RuntimeWarning]


@pytest.mark.parametrize("var", ["ALL_PROXY", "HTTPS_PROXY"])
def test_socks4_proxy_variable_is_ignored_with_a_warning(env, run, clean_env, var):
    clean_env.setenv(var, "socks4://user:secret@127.0.0.1:1")
    before = len(proxy_log(env, run))
    status, warned = fetch(env, run)
    assert status == 200  # went direct instead of failing with InvalidURL
    assert len(warned) == 1 and "socks4" in warned[0] and var.lower() in warned[0]
    assert "secret" not in warned[0]
    assert len(proxy_log(env, run)) == before


def test_http_proxy_still_used_beside_an_ignored_socks4_one(env, run, clean_env):
    clean_env.setenv("ALL_PROXY", "socks4a://127.0.0.1:1")
    clean_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{env.proxy_port}")
    before = len(proxy_log(env, run))
    status, warned = fetch(env, run)
    assert status == 200 and len(warned) == 1 and "all_proxy" in warned[0]
    assert len(proxy_log(env, run)) == before + 1  # tunnelled through the HTTP proxy


def tunnelled(env, run, **kw) -> int:
    """Requests to rawserver that went through its proxy, for one GET with `kw`."""
    async def main():
        async with AsyncClient(verify=env.ca, trust_env=False, **kw) as c:
            return (await c.get(env.raw + "/echo")).status_code

    before = len(proxy_log(env, run))
    assert run(main()) == 200
    return len(proxy_log(env, run)) - before


def test_mounts_pick_a_proxy_per_url_pattern(env, run):
    proxy = f"http://127.0.0.1:{env.proxy_port}"
    host = env.raw.split("://")[1].rsplit(":", 1)[0]
    port = int(env.raw.rsplit(":", 1)[1].split("/")[0])
    assert tunnelled(env, run, mounts={"https://": proxy}) == 1
    assert tunnelled(env, run, mounts={"http://": proxy}) == 0  # the scheme differs
    assert tunnelled(env, run, mounts={"all://": proxy, f"all://{host}": None}) == 0
    assert tunnelled(env, run, mounts={"all://": None, f"https://{host}:{port}": proxy}) == 1
    assert tunnelled(env, run, mounts={f"all://*.{host}": proxy}) == 0  # subdomains only
    assert tunnelled(env, run, mounts={f"all://*{host}": proxy}) == 1
    # A mount wins over proxy=; a host no mount names keeps proxy=.
    assert tunnelled(env, run, proxy=proxy, mounts={f"all://{host}": None}) == 0
    assert tunnelled(env, run, proxy=proxy, mounts={"all://other.example": None}) == 1


def test_bad_mount_pattern_is_refused():
    from corenet.https import InvalidURL

    for bad in ("example.org", "https://host:port"):
        with pytest.raises(InvalidURL):
            AsyncClient(mounts={bad: None})
    with pytest.raises(InvalidURL):
        AsyncClient(mounts={"all://": "socks4://127.0.0.1:1"})


@pytest.mark.parametrize("no_proxy, url, direct", [
    ("http://127.0.0.1", "http://127.0.0.1:8080/", True),      # a scheme: a mount pattern
    ("http://127.0.0.1", "https://127.0.0.1/", False),
    ("all://127.0.0.1", "https://127.0.0.1/", True),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/", True),
    ("http://127.0.0.1:8080", "http://127.0.0.1:9090/", False),
    ("http://*.example.org", "http://a.example.org/", True),
    ("http://other.test, example.org", "http://www.example.org/", True),   # urllib's rule
    ("127.0.0.1", "https://127.0.0.1/", True),
    ("", "http://127.0.0.1/", False),
])
def test_no_proxy_entries_with_a_scheme_are_mount_patterns_as_httpx(no_proxy, url, direct):
    """NO_PROXY as httpx reads it: an entry with a scheme is a mount pattern going direct
    (scheme, host, port), the others urllib's names and addresses."""
    import httpx

    from corenet.https.proxy import proxy_from_env

    u = httpx.URL(url)
    env = {"http": "http://proxy.test:3128", "https": "http://proxy.test:3128",
           "no": no_proxy}
    port = u.port or (443 if u.scheme == "https" else 80)
    assert (proxy_from_env(env, u.scheme, f"{u.host}:{port}") is None) is direct
