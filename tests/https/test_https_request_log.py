"""The line each request leaves in the log, beside the installed httpx: logger "httpx",
INFO, ``HTTP Request: METHOD URL "VERSION CODE PHRASE"`` for every hop of a redirect chain,
from both clients, over HTTP/1.1 and HTTP/2 through nginx and through a MockTransport;
none when the request fails or the "httpx" logger is set above INFO; a password in the
URL masked, where httpx writes it out."""
from __future__ import annotations

import logging
import ssl

import httpx
import pytest

import corenet.https as https


def lines(caplog) -> list[tuple]:
    out = [(name, level, msg) for name, level, msg in caplog.record_tuples if name == "httpx"]
    caplog.clear()
    return out


def gets(module, verify, urls: list[str], http2: bool = False):
    with module.Client(verify=verify, http2=http2, follow_redirects=True) as c:
        return [c.get(url).status_code for url in urls]


async def agets(module, verify, urls: list[str], http2: bool = False):
    async with module.AsyncClient(verify=verify, http2=http2, follow_redirects=True) as c:
        return [(await c.get(url)).status_code for url in urls]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_each_hop_logs_httpx_s_line_over_nginx(env, run, caplog, kind):
    caplog.set_level(logging.INFO)
    urls = [env.base + "/r/2", env.h2 + "/small.txt", env.base + "/missing-file"]
    ctx = ssl.create_default_context(cafile=env.ca)

    def asked(module, verify):
        if kind == "sync":
            return gets(module, verify, urls, http2=True)
        return run(agets(module, verify, urls, http2=True))

    theirs = (asked(httpx, ctx), lines(caplog))
    ours = (asked(https, env.ca), lines(caplog))
    assert ours == theirs
    assert ours[0] == [200, 200, 404]
    assert [msg for _, _, msg in ours[1]] == [
        f'HTTP Request: GET {env.base}/r/2 "HTTP/1.1 302 Moved Temporarily"',
        f'HTTP Request: GET {env.base}/r/1 "HTTP/1.1 302 Moved Temporarily"',
        f'HTTP Request: GET {env.base}/small.txt "HTTP/1.1 200 OK"',
        f'HTTP Request: GET {env.h2}/small.txt "HTTP/2 200 OK"',
        f'HTTP Request: GET {env.base}/missing-file "HTTP/1.1 404 Not Found"']
    assert {level for _, level, _ in ours[1]} == {logging.INFO}


def test_a_mock_transport_s_responses_are_logged_as_httpx_logs_them(run, caplog):
    caplog.set_level(logging.INFO)

    def handler(module):
        def answer(request):
            if request.url.path == "/old":
                return module.Response(308, headers={"Location": "/new"})
            return module.Response(418 if request.method == "POST" else 204)
        return answer

    async def asked(module):
        async with module.AsyncClient(transport=module.MockTransport(handler(module)),
                                      follow_redirects=True) as c:
            await c.post("https://api.test/old?x=1", content=b"body")
            await c.delete("https://api.test/item")
        return lines(caplog)

    theirs = run(asked(httpx))
    ours = run(asked(https))
    assert ours == theirs == [
        ("httpx", logging.INFO,
         'HTTP Request: POST https://api.test/old?x=1 "HTTP/1.1 308 Permanent Redirect"'),
        ("httpx", logging.INFO, 'HTTP Request: POST https://api.test/new "HTTP/1.1 418 '
                                "I'm a teapot\""),
        ("httpx", logging.INFO, 'HTTP Request: DELETE https://api.test/item "HTTP/1.1 204 '
                                'No Content"')]


def test_no_line_for_a_failed_request_or_below_the_httpx_logger_s_level(env, run, caplog):
    caplog.set_level(logging.INFO)
    with pytest.raises(https.ConnectError), https.Client(verify=env.ca) as c:
        c.get("https://127.0.0.1:1/")           # nothing listens: refused
    assert lines(caplog) == []
    # what an application does to quiet httpx's request lines quiets these too
    caplog.set_level(logging.WARNING, logger="httpx")
    assert gets(https, env.ca, [env.base + "/small.txt"]) == [200]
    assert lines(caplog) == []
    caplog.set_level(logging.INFO, logger="httpx")
    assert gets(https, env.ca, [env.base + "/small.txt"]) == [200]
    assert len(lines(caplog)) == 1


def test_a_password_in_the_url_is_masked_in_the_line(run, caplog):
    """httpx writes the URL as given, password and all; the line here masks it as the
    URL's repr does in both."""
    caplog.set_level(logging.INFO)

    async def asked(module):
        async with module.AsyncClient(transport=module.MockTransport(
                lambda request: module.Response(200))) as c:
            r = await c.get("https://alice:s3cret@api.test/p")
            return r.request.headers["authorization"], lines(caplog)

    auth, ours = run(asked(https))
    their_auth, theirs = run(asked(httpx))
    assert auth == their_auth                       # the credentials were sent all the same
    assert ours == [("httpx", logging.INFO,
                     'HTTP Request: GET https://alice:[secure]@api.test/p "HTTP/1.1 200 OK"')]
    assert theirs[0][2] == ours[0][2].replace("[secure]", "s3cret")
