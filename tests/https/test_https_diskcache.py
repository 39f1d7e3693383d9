"""The HTTP cache kept in a directory (DiskCache), against rawserver's /cacheable route,
and the cache key's handling of cookies (both stores)."""
from __future__ import annotations

import os

import pytest

from corenet.https import Cache, DiskCache

from test_https_cache import LM, cacheable, fetch_all, seen


def files(cache: DiskCache) -> list[str]:
    return sorted(n for n in os.listdir(cache.path) if not n.startswith("."))


def test_fresh_hit_served_from_disk_with_no_request(env, run, loop_kind, tmp_path):
    key = f"dfresh-{loop_kind}"
    url = cacheable(env, key, cc="max-age=60")
    first = fetch_all(env, run, [url], cache=DiskCache(tmp_path))
    # A second client opening the same directory finds the stored response.
    again = DiskCache(tmp_path)
    rs = fetch_all(env, run, [url, url], cache=again)
    assert seen(env, run, key) == (1, 0)
    assert [r.content for r in first + rs] == [f"{key}:1:".encode()] * 3
    assert [r.extensions.get("from_cache", False) for r in rs] == [True, True]
    assert again.hits == 2 and len(again) == 1


@pytest.mark.parametrize("validator", ["etag", "last-modified"])
def test_stale_entry_revalidated_by_304_from_disk(env, run, loop_kind, tmp_path, validator):
    key = f"dstale-{validator}-{loop_kind}"
    url = (cacheable(env, key, cc="max-age=0", etag="v1") if validator == "etag"
           else cacheable(env, key, cc="no-cache", lm=LM))
    fetch_all(env, run, [url], cache=DiskCache(tmp_path))
    cache = DiskCache(tmp_path)
    rs = fetch_all(env, run, [url, url], cache=cache)
    assert seen(env, run, key) == (3, 2)
    assert [r.content for r in rs] == [f"{key}:1:".encode()] * 2
    assert rs[1].status_code == 200 and rs[1].extensions["revalidated"]
    assert cache.revalidated == 2 and len(cache) == 1


def test_vary_kept_per_variant_on_disk(env, run, loop_kind, tmp_path):
    key = f"dvary-{loop_kind}"
    url = cacheable(env, key, cc="max-age=60", vary="Accept-Language")
    rs = fetch_all(env, run, [("GET", url, {"Accept-Language": lang})
                              for lang in ("en", "fr")], cache=DiskCache(tmp_path))
    rs += fetch_all(env, run, [("GET", url, {"Accept-Language": lang})
                               for lang in ("fr", "en", "de")], cache=DiskCache(tmp_path))
    assert seen(env, run, key) == (3, 0)
    assert [r.content.decode() for r in rs] == [
        f"{key}:1:en", f"{key}:2:fr", f"{key}:2:fr", f"{key}:1:en", f"{key}:3:de"]
    assert len(files(DiskCache(tmp_path))) == 3


def test_no_store_is_not_written(env, run, loop_kind, tmp_path):
    key = f"dnostore-{loop_kind}"
    cache = DiskCache(tmp_path)
    fetch_all(env, run, [cacheable(env, key, cc="no-store, max-age=60")] * 2, cache=cache)
    fetch_all(env, run, [("GET", cacheable(env, key + "r", cc="max-age=60"),
                          {"Cache-Control": "no-store"})], cache=cache)
    assert seen(env, run, key) == (2, 0)
    assert os.listdir(tmp_path) == [] and cache.stored == 0


@pytest.mark.parametrize("damage", ["truncated", "flipped", "garbage", "empty"])
def test_corrupt_file_is_a_counted_miss_and_removed(env, run, loop_kind, tmp_path, damage):
    key = f"dcorrupt-{damage}-{loop_kind}"
    url = cacheable(env, key, cc="max-age=60")
    fetch_all(env, run, [url], cache=DiskCache(tmp_path))
    (name,) = files(DiskCache(tmp_path))
    path = tmp_path / name
    data = path.read_bytes()
    path.write_bytes({"truncated": data[:-3], "flipped": data[:-1] + bytes([data[-1] ^ 1]),
                      "garbage": b"\x00" * len(data), "empty": b""}[damage])
    cache = DiskCache(tmp_path)
    rs = fetch_all(env, run, [url, url], cache=cache)
    assert cache.corrupt == 1 and cache.hits == 1
    assert seen(env, run, key) == (2, 0)  # the damaged copy was not served
    assert [r.content for r in rs] == [f"{key}:2:".encode()] * 2
    assert files(cache) == [name]  # the fresh answer took the damaged file's place


def test_disk_bytes_bound_holds_and_evicts_oldest(env, run, loop_kind, tmp_path):
    urls = [cacheable(env, f"dlru{i}-{loop_kind}", cc="max-age=60") for i in range(6)]
    fetch_all(env, run, urls[:1], cache=DiskCache(tmp_path))
    one = sum(f.stat().st_size for f in tmp_path.iterdir())
    bound = 2 * one + one // 2  # room for two files
    cache = DiskCache(tmp_path, max_bytes=bound)
    fetch_all(env, run, urls[1:], cache=cache)
    sizes = [f.stat().st_size for f in tmp_path.iterdir()]
    assert len(sizes) == 2 and sum(sizes) <= bound and cache._bytes == sum(sizes)
    assert cache.evicted == 4
    fetch_all(env, run, [urls[5], urls[0]], cache=DiskCache(tmp_path, max_bytes=bound))
    assert seen(env, run, f"dlru5-{loop_kind}") == (1, 0)  # the newest stayed
    assert seen(env, run, f"dlru0-{loop_kind}") == (2, 0)  # evicted, asked again
    assert sum(f.stat().st_size for f in tmp_path.iterdir()) <= bound


def test_unsafe_request_removes_the_file(env, run, loop_kind, tmp_path):
    key = f"dunsafe-{loop_kind}"
    url = cacheable(env, key, cc="max-age=60")
    cache = DiskCache(tmp_path)
    fetch_all(env, run, [url, ("POST", url, None)], cache=cache)
    assert os.listdir(tmp_path) == [] and len(cache) == 0


@pytest.mark.parametrize("store", ["memory", "disk"])
def test_response_to_a_cookie_is_not_served_to_other_cookies(env, run, loop_kind, tmp_path,
                                                             store):
    key = f"cookie-{store}-{loop_kind}"
    url = cacheable(env, key, cc="max-age=60")
    cache = Cache() if store == "memory" else DiskCache(tmp_path)
    rs = fetch_all(env, run, [("GET", url, {"Cookie": "id=alice"}), ("GET", url, None),
                              ("GET", url, {"Cookie": "id=bob"}),
                              ("GET", url, {"Cookie": "id=alice"})], cache=cache)
    assert seen(env, run, key) == (3, 0)
    assert [r.content.decode().split(":")[1] for r in rs] == ["1", "2", "3", "1"]


@pytest.mark.parametrize("store", ["memory", "disk"])
def test_public_response_is_shared_across_cookies(env, run, loop_kind, tmp_path, store):
    key = f"public-{store}-{loop_kind}"
    url = cacheable(env, key, cc="public, max-age=60")
    cache = Cache() if store == "memory" else DiskCache(tmp_path)
    fetch_all(env, run, [("GET", url, {"Cookie": "id=alice"}), ("GET", url, None),
                         ("GET", url, {"Cookie": "id=bob"})], cache=cache)
    assert seen(env, run, key) == (1, 0) and cache.hits == 2


def test_304_rewrites_only_the_metadata_in_place(env, run, loop_kind, tmp_path):
    key = f"dinplace-{loop_kind}"
    url = cacheable(env, key, cc="max-age=0", etag="v1")
    cache = DiskCache(tmp_path)
    fetch_all(env, run, [url], cache=cache)
    (name,) = files(cache)
    before = (tmp_path / name).stat()
    body = (tmp_path / name).read_bytes()[-len(f"{key}:1:"):]
    rs = fetch_all(env, run, [url, url], cache=cache)
    after = (tmp_path / name).stat()
    assert seen(env, run, key) == (3, 2) and cache.revalidated == 2
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert (tmp_path / name).read_bytes().endswith(body) and rs[1].content == body
    # The rewritten metadata reads back: a new store serves the body after one more 304.
    again = DiskCache(tmp_path)
    assert fetch_all(env, run, [url], cache=again)[0].content == body
    assert again.revalidated == 1 and again.corrupt == 0


def test_a_directory_that_cannot_be_written_fails_no_request(env, run, loop_kind, tmp_path):
    key = f"dgone-{loop_kind}"
    url = cacheable(env, key, cc="max-age=60")
    cache = DiskCache(tmp_path / "c")
    os.rmdir(tmp_path / "c")  # every write now fails
    rs = fetch_all(env, run, [url, url], cache=cache)
    assert [r.status_code for r in rs] == [200, 200]
    assert cache.write_errors == 2 and cache.stored == 0 and len(cache) == 0
    assert seen(env, run, key) == (2, 0)


def test_oversized_body_is_not_written(env, run, loop_kind, tmp_path):
    key = f"dbig-{loop_kind}"
    cache = DiskCache(tmp_path, max_entry_bytes=4)
    fetch_all(env, run, [cacheable(env, key, cc="max-age=60")] * 2, cache=cache)
    assert seen(env, run, key) == (2, 0) and os.listdir(tmp_path) == []


def test_leftover_temporary_files_are_cleared_when_old(tmp_path):
    old, young = tmp_path / ".tmp-old", tmp_path / ".tmp-young"
    old.write_bytes(b"x" * 100)
    young.write_bytes(b"x" * 100)
    os.utime(old, (1, 1))
    cache = DiskCache(tmp_path)
    assert not old.exists() and young.exists()  # a writer may still own the young one
    assert len(cache) == 0 and cache._bytes == 0
