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


ENVIRONMENTS = [
    {}, {"HTTP_PROXY": "http://127.0.0.1"}, {"https_proxy": "proxy.test:3128"},
    {"https_proxy": "http://127.0.0.1", "HTTP_PROXY": "https://127.0.0.1"},
    {"all_proxy": "http://127.0.0.1:3128"}, {"TRAVIS_APT_PROXY": "http://127.0.0.1"},
    {"ALL_PROXY": "http://p.test:1", "NO_PROXY": "127.0.0.1"},
    {"ALL_PROXY": "http://p.test:1", "no_proxy": "192.168.0.0/16"},
    {"ALL_PROXY": "http://p.test:1", "no_proxy": "::1"},
    {"ALL_PROXY": "http://p.test:1", "no_proxy": "localhost"},
    {"ALL_PROXY": "http://p.test:1", "no_proxy": "example.org"},
    {"ALL_PROXY": "http://p.test:1", "no_proxy": ".example.org"},
    {"ALL_PROXY": "http://p.test:1", "no_proxy": "http://example.org"},
    {"ALL_PROXY": "http://p.test:1", "no_proxy": "other.test, *"},
    {"HTTPS_PROXY": "http://p.test:1", "HTTP_PROXY": "http://q.test:2",
     "NO_PROXY": "http://127.0.0.1:8080, all://*.example.org, a.test ,b.test"},
]
URLS = ["http://127.0.0.1:8080/", "http://127.0.0.1:9090/", "https://127.0.0.1/",
        "http://[::1]:8080/", "https://localhost/", "https://example.org/",
        "https://www.example.org/x", "http://wwwexample.org/", "http://a.test/",
        "https://sub.b.test:8443/", "https://other.test/", "http://192.168.1.1/"]
# A NO_PROXY network: httpx makes it a pattern that matches no host, corenet's matches the
# network's addresses (as curl reads NO_PROXY).
NETWORK_ADDRESSES = {"192.168.0.0/16": ["http://192.168.1.1/"]}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_proxy_variables_as_httpx_reads_them(clean_env, environment):
    """The mounts the variables make and, for each URL, the proxy a request takes (or
    none), beside the installed httpx's."""
    import httpcore
    import httpx
    from httpx._utils import get_environment_proxies as httpx_reads

    from corenet.https._utils import get_environment_proxies
    from corenet.https.transport import AsyncHTTPTransport, ParsedURL

    for name, value in environment.items():
        clean_env.setenv(name, value)
    assert get_environment_proxies() == httpx_reads()
    theirs = httpx.Client(trust_env=True)
    ours = AsyncHTTPTransport(trust_env=True)
    for url in URLS:
        pool = theirs._transport_for_url(httpx.URL(url))._pool
        expected = None
        if isinstance(pool, httpcore.HTTPProxy):
            at = pool._proxy_url
            expected = f"{at.host.decode()}:{at.port or {b'http': 80, b'https': 443}[at.scheme]}"
        if url in NETWORK_ADDRESSES.get(environment.get("no_proxy", ""), ()):
            expected = None  # corenet's difference: the network's addresses go direct
        proxy = ours._proxy_for(ParsedURL(url))
        assert (None if proxy is None else f"{proxy.host}:{proxy.port}") == expected, url
    theirs.close()


@pytest.mark.parametrize("no_proxy, url, direct", [
    ("192.168.0.0/16", "http://192.168.7.1/", True),     # httpx's pattern matches no host
    ("10.0.0.0/8, ::1", "http://[::1]:81/", True),
    ("10.0.0.0/8", "http://10.1.2.3.test/", False),
    (".example.org", "http://example.org/", False),
    (".example.org", "http://www.example.org/", True),
])
def test_no_proxy_networks_cover_their_addresses(clean_env, no_proxy, url, direct):
    from corenet.https.transport import AsyncHTTPTransport, ParsedURL

    clean_env.setenv("ALL_PROXY", "http://p.test:1")
    clean_env.setenv("NO_PROXY", no_proxy)
    assert (AsyncHTTPTransport()._proxy_for(ParsedURL(url)) is None) is direct


@pytest.mark.parametrize("pattern, url, expected", [
    ("http://example.com", "http://example.com", True),
    ("http://example.com", "https://example.com", False),
    ("http://example.com:123", "http://example.com", False),
    ("all://", "https://example.com:123", True),
    ("", "https://example.com:123", True),
    ("all://*example.com", "http://www.example.com/", True),
    ("all://*.example.com", "http://example.com/", False),
    ("all://[::1]", "http://[::1]:8080/", True),
    ("https://ÄB.test", "https://äb.test/", True),
])
def test_url_patterns_as_httpx_s(pattern, url, expected):
    import httpx
    from httpx._utils import URLPattern as HttpxPattern

    from corenet.https._utils import URLPattern

    assert HttpxPattern(pattern).matches(httpx.URL(url)) is expected
    assert URLPattern(pattern).matches(url) is expected
    patterns = ["all://", "http://", "http://example.com", "http://example.com:123",
                "all://*.example.com"]
    ours = sorted(URLPattern(p) for p in reversed(patterns))
    theirs = sorted(HttpxPattern(p) for p in reversed(patterns))
    assert [p.pattern for p in ours] == [p.pattern for p in theirs]
    assert URLPattern("all://") == URLPattern("all://") != URLPattern("http://")


@pytest.mark.parametrize("no_proxy, url, direct", [
    ("*.example.org", "http://www.example.org/", True),      # subdomains, as ".example.org"
    ("*.example.org", "http://example.org/", False),
    ("[::1]", "http://[::1]:8080/", True),                    # an address in brackets
    ("exa mple.org, a.test", "http://a.test/", True),        # the bad entry left out
])
def test_no_proxy_entries_httpx_cannot_read_are_read_or_left_out(clean_env, no_proxy, url,
                                                                 direct):
    """NO_PROXY as people write it: httpx makes ``*.example.org`` a pattern that matches
    nothing and ``[::1]`` one that fails; here the first covers the subdomains, the second
    the address, and an entry that is no name is left out with a warning, the client
    still made."""
    from corenet.https.transport import AsyncHTTPTransport, ParsedURL

    clean_env.setenv("ALL_PROXY", "http://p.test:1")
    clean_env.setenv("NO_PROXY", no_proxy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = AsyncHTTPTransport()
    assert (t._proxy_for(ParsedURL(url)) is None) is direct
    bad = [str(w.message) for w in caught if w.category is RuntimeWarning]
    assert bad == (["NO_PROXY: the pattern 'all://*exa mple.org' is ignored: Invalid host "
                    "name: 'exa mple.org'"]
                   if " " in no_proxy else []), bad


def test_a_proxy_variable_that_is_no_url_fails_the_client(clean_env):
    """Its requests are not sent direct: the client is not made, as httpx's is not."""
    from corenet.https import InvalidURL
    from corenet.https.transport import AsyncHTTPTransport

    clean_env.setenv("HTTPS_PROXY", "http://[bad")
    with pytest.raises(InvalidURL):
        AsyncHTTPTransport()
