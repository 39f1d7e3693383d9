"""The client's httpx arguments against rawserver over TLS, on every loop kind:
client-level params, default_encoding, Response.cookies."""
from __future__ import annotations

from corenet.https import AsyncClient
from test_https_httpx_shape import set_cookie


def test_client_params_merge_with_request_params(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, params={"key": "k1", "lang": ["en", "fr"]}) as c:
            plain = (await c.get(env.raw + "/echo")).json()["path"]
            merged = (await c.get(env.raw + "/echo?own=1",
                                  params={"lang": "de", "page": 2})).json()["path"]
            return plain, merged

    plain, merged = run(main())
    assert plain == "/echo?key=k1&lang=en&lang=fr"
    assert merged == "/echo?own=1&key=k1&lang=de&page=2"  # the request's lang replaces


def test_default_encoding_for_a_response_without_charset(env, run):
    body = "déjà vu".encode("cp1252")

    async def main():
        async with AsyncClient(verify=env.ca, default_encoding="cp1252") as c:
            named = await c.get(env.raw + "/raw?" + (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                % len(body) + body).hex())
        async with AsyncClient(verify=env.ca, default_encoding=lambda b: "cp1252") as c:
            guessed = await c.get(env.raw + "/raw?" + (
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body).hex())
        async with AsyncClient(verify=env.ca) as c:
            plain = await c.get(env.raw + "/raw?" + (
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body).hex())
        return named.text, guessed.text, plain.encoding

    assert run(main()) == ("déjà vu", "déjà vu", "utf-8")


def test_response_cookies_are_what_it_set(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            r = await c.get(set_cookie(env, "a=1; Path=/", "b=2; Domain=elsewhere.org"))
            return dict(r.cookies), dict(c.cookies)

    mine, jar = run(main())
    assert mine == {"a": "1"} and jar == {"a": "1"}
