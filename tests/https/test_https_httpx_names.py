"""httpx's names mean what they mean in httpx: `Client` is the sync client, `AsyncClient`
the async one, the module functions are httpx's, so `import corenet.https as httpx`
switches code written for httpx. Checked beside the installed httpx."""
from __future__ import annotations

import inspect

import httpx
import pytest

import corenet.https as https

MODULE_FUNCTIONS = ("request", "stream", "get", "options", "head", "post", "put", "patch",
                    "delete")


def echo(request):
    return https.Response(200, json={"method": request.method, "url": str(request.url)})


def test_client_is_sync_and_async_client_is_async_as_in_httpx():
    for name in ("Client", "AsyncClient"):
        theirs, ours = getattr(httpx, name), getattr(https, name)
        for method in ("__enter__", "__aenter__", "close", "aclose"):
            assert hasattr(ours, method) == hasattr(theirs, method), (name, method)
        for verb in ("get", "post", "request", "send"):
            assert (inspect.iscoroutinefunction(getattr(ours, verb))
                    == inspect.iscoroutinefunction(getattr(theirs, verb))), (name, verb)
    assert https.Client.__module__ == "corenet.https.sync" and not hasattr(https, "SyncClient")


def test_the_sync_client_under_httpx_s_name_sends():
    with https.Client(transport=https.MockTransport(echo)) as c:
        r = c.post("https://api.test/x", params={"q": "1"})
    assert r.json() == {"method": "POST", "url": "https://api.test/x?q=1"}


def test_the_async_client_under_httpx_s_name_sends(run):
    async def main():
        async with https.AsyncClient(transport=https.MockTransport(echo)) as c:
            return (await c.get("https://api.test/y")).json()

    assert run(main()) == {"method": "GET", "url": "https://api.test/y"}


@pytest.mark.parametrize("name", MODULE_FUNCTIONS)
def test_module_functions_are_httpx_s(name):
    theirs, ours = getattr(httpx, name), getattr(https, name)
    assert callable(ours) and not inspect.iscoroutinefunction(ours)
    assert name in https.__all__

    def positional(f):  # (method, url) or (url,)
        return [p.name for p in inspect.signature(f).parameters.values()
                if p.kind is p.POSITIONAL_OR_KEYWORD][:2 if name in ("request", "stream") else 1]

    assert positional(ours) == positional(theirs)


def test_module_functions_send_as_httpx_s_do():
    transport = https.MockTransport(echo)
    assert https.get("https://api.test/g", transport=transport).json()["method"] == "GET"
    assert https.request("PUT", "https://api.test/p", transport=transport).json() == {
        "method": "PUT", "url": "https://api.test/p"}
    with https.stream("DELETE", "https://api.test/d", transport=transport) as r:
        assert b"DELETE" in r.read()


def test_httpx_s_private_modules_under_httpx_s_name():
    """Code written for httpx that imports `httpx._urlparse` or `httpx._utils` with
    corenet.https put in httpx's place gets corenet.https's classes, not copies: a URL made
    by `httpx.URL` is matched and parsed as one."""
    program = """if True:
        import sys
        import corenet.https
        sys.modules["httpx"] = corenet.https
        import httpx
        from httpx._urlparse import urlparse
        from httpx._utils import URLPattern, get_environment_proxies
        url = httpx.URL("https://A.test:8443/p?q")
        assert URLPattern("all://a.test:8443").matches(url)
        assert not URLPattern("http://").matches(url)
        assert tuple(urlparse(str(url))) == ("https", "", "a.test", 8443, "/p", "q", None)
        assert URLPattern is corenet.https.proxy.URLPattern
        assert get_environment_proxies() == {"https://": "http://p.test:1"}
        print("ok")
    """
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                         env={**env, "HTTPS_PROXY": "http://p.test:1"}, timeout=60)
    assert out.returncode == 0 and out.stdout == "ok\n", out.stderr
