"""The HTTP cache (RFC 9111) against rawserver's /cacheable route, which counts the
requests that reach it and answers 304 to a matching validator."""
from __future__ import annotations

import pytest

from corenet.https import Cache, AsyncClient

LM = "Wed, 21 Oct 2015 07:28:00 GMT"


def cacheable(env, key: str, cc: str | None = None, etag: str | None = None,
              lm: str | None = None, vary: str | None = None) -> str:
    q = f"key={key}"
    if cc is not None:
        q += "&cc=" + cc.encode().hex()
    if etag is not None:
        q += f"&etag={etag}"
    if lm is not None:
        q += "&lm=" + lm.encode().hex()
    if vary is not None:
        q += f"&vary={vary}"
    return f"{env.raw}/cacheable?{q}"


def seen(env, run, key: str) -> tuple[int, int]:
    """(requests that reached the server, of which answered 304) for `key`."""
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            return (await c.get(f"{env.raw}/cacheable-count?key={key}")).json()

    counts = run(main())
    return counts["requests"], counts["not_modified"]


def fetch_all(env, run, urls: list, cache=True, **kw) -> list:
    async def main():
        async with AsyncClient(verify=env.ca, cache=cache) as c:
            out = []
            for item in urls:
                method, url, headers = item if isinstance(item, tuple) else ("GET", item, None)
                out.append(await c.request(method, url, headers=headers, **kw))
            return out

    return run(main())


def test_cache_is_off_by_default(env, run, loop_kind):
    key = f"off-{loop_kind}"
    url = cacheable(env, key, cc="max-age=60")
    fetch_all(env, run, [url, url], cache=False)
    assert seen(env, run, key) == (2, 0)


def test_fresh_response_served_without_a_request(env, run, loop_kind):
    key = f"fresh-{loop_kind}"
    url = cacheable(env, key, cc="private, max-age=60")
    rs = fetch_all(env, run, [url, url, url])
    assert seen(env, run, key) == (1, 0)
    assert [r.content for r in rs] == [f"{key}:1:".encode()] * 3
    assert [r.extensions.get("from_cache", False) for r in rs] == [False, True, True]
    assert rs[2].status_code == 200 and rs[2].headers["age"].isdigit()


@pytest.mark.parametrize("validator", ["etag", "last-modified"])
def test_stale_response_revalidated_and_completed_by_304(env, run, loop_kind, validator):
    key = f"stale-{validator}-{loop_kind}"
    url = (cacheable(env, key, cc="max-age=0", etag="v1") if validator == "etag"
           else cacheable(env, key, cc="no-cache", lm=LM))
    rs = fetch_all(env, run, [url, url, url])
    assert seen(env, run, key) == (3, 2)  # each reuse asked, each answered 304
    assert [r.content for r in rs] == [f"{key}:1:".encode()] * 3  # the stored body
    assert rs[2].status_code == 200 and rs[2].extensions["revalidated"]


def test_no_store_is_respected(env, run, loop_kind):
    key = f"nostore-{loop_kind}"
    url = cacheable(env, key, cc="no-store, max-age=60")
    fetch_all(env, run, [url, url])
    assert seen(env, run, key) == (2, 0)
    key = f"reqnostore-{loop_kind}"
    url = cacheable(env, key, cc="max-age=60")
    fetch_all(env, run, [("GET", url, {"Cache-Control": "no-store"})] * 2)
    assert seen(env, run, key) == (2, 0)


def test_vary_is_honoured(env, run, loop_kind):
    key = f"vary-{loop_kind}"
    url = cacheable(env, key, cc="max-age=60", vary="Accept-Language")
    rs = fetch_all(env, run, [("GET", url, {"Accept-Language": lang})
                              for lang in ("en", "fr", "en", "fr")])
    assert seen(env, run, key) == (2, 0)
    assert [r.content for r in rs] == [f"{key}:1:en".encode(), f"{key}:2:fr".encode(),
                                       f"{key}:1:en".encode(), f"{key}:2:fr".encode()]


def test_unsafe_request_drops_the_stored_response(env, run, loop_kind):
    key = f"unsafe-{loop_kind}"
    url = cacheable(env, key, cc="max-age=60")
    rs = fetch_all(env, run, [url, url, ("POST", url, None), url])
    assert seen(env, run, key) == (3, 0)
    assert rs[3].content == f"{key}:3:".encode()


def test_response_without_freshness_or_validator_is_not_kept(env, run, loop_kind):
    key = f"plain-{loop_kind}"
    url = cacheable(env, key)
    cache = Cache()
    fetch_all(env, run, [url, url], cache=cache)
    assert seen(env, run, key) == (2, 0) and len(cache) == 0 and cache.stored == 0


def test_cache_memory_is_bounded(env, run, loop_kind):
    size = len(f"lru0-{loop_kind}:1:")  # each body here
    cache = Cache(max_entries=3, max_bytes=2 * size + 1)  # room for two of them
    urls = [cacheable(env, f"lru{i}-{loop_kind}", cc="max-age=60") for i in range(6)]
    fetch_all(env, run, urls + [urls[0], urls[5]], cache=cache)
    assert len(cache) == 2 and cache._bytes == 2 * size
    assert seen(env, run, f"lru0-{loop_kind}") == (2, 0)  # evicted, asked again
    assert seen(env, run, f"lru5-{loop_kind}") == (1, 0)  # the newest stayed


def test_stored_response_is_not_served_to_other_credentials(env, run, loop_kind):
    key = f"auth-{loop_kind}"
    url = cacheable(env, key, cc="private, max-age=60")
    rs = fetch_all(env, run, [("GET", url, {"Authorization": "Bearer alice"}),
                              ("GET", url, {"Authorization": "Bearer bob"}),
                              ("GET", url, {"Authorization": "Bearer alice"})])
    assert seen(env, run, key) == (2, 0)
    assert [r.content for r in rs] == [f"{key}:1:".encode(), f"{key}:2:".encode(),
                                       f"{key}:1:".encode()]
