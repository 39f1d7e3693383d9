"""Client and the module-level functions: the async client on a private corenet loop
in its own thread, called from threads that have no loop."""
from __future__ import annotations

import asyncio
import threading

import pytest

import corenet.https as https
from corenet.https import (
    AsyncClient, ConnectTimeout, HTTPStatusError, MockTransport, Response, Client, Timeout,
    WSGITransport,
)
from test_https_httpx_shape import set_cookie
from test_https_transports import wsgi_app


@pytest.fixture
def sync_loop(loop_kind, monkeypatch):
    """Client's private loop of each kind (corenet's by default; stock asyncio too)."""
    from looptools import make_loop

    import corenet.https.portal

    made = []

    def new_loop():
        made.append(make_loop(loop_kind))
        return made[-1]

    monkeypatch.setattr(corenet.https.portal, "new_loop", new_loop)
    return made


def test_sync_client_from_a_thread_without_a_loop(env, sync_loop):
    assert asyncio._get_running_loop() is None
    with Client(verify=env.ca, base_url=env.raw, headers={"X-S": "1"}) as c:
        r = c.post("/echo", json={"a": 1}, params={"q": "2"})
        assert r.raise_for_status() is r
        echo = r.json()
        c.get(set_cookie(env, "k=v; Path=/"))
        again = c.get("/echo").json()
        with c.stream("GET", "/lines") as s:
            lines = list(s.iter_lines())
        with c.stream("GET", "/big?n=100000") as s:
            sizes = [len(p) for p in s.iter_bytes(chunk_size=30000)]
        with c.stream("GET", "/echo") as s:
            whole = s.read()
        assert dict(c.cookies) == {"k": "v"} and c.pool.connections_opened == 1
        thread = c._portal.thread
        assert thread.is_alive() and thread is not threading.current_thread()
    assert not thread.is_alive() and c.is_closed
    assert len(sync_loop) == 1 and sync_loop[0].is_closed()
    assert echo["method"] == "POST" and echo["path"] == "/echo?q=2" and echo["body"] == '{"a":1}'
    assert ["X-S", "1"] in echo["headers"] and ["Cookie", "k=v"] in again["headers"]
    assert lines == ["line one", "line twö", "", "last"]
    assert sizes == [30000, 30000, 30000, 10000]
    assert b'"path": "/echo"' in whole
    with pytest.raises(RuntimeError, match="closed"):
        c.get("/echo")


def test_sync_client_errors_are_the_same_classes(env):
    with Client(verify=env.ca, timeout=Timeout(5, connect=0.2)) as c:
        with pytest.raises(ConnectTimeout) as info:
            c.get(f"https://localhost:{env.silent_port}/")
        assert info.value.request.url.port == env.silent_port
        with pytest.raises(HTTPStatusError):
            c.get(env.raw + "/nothing-here").raise_for_status()


def test_sync_client_in_worker_threads(env):
    results = []

    def work():
        with Client(verify=env.ca) as c:
            results.append(c.get(env.raw + "/echo").status_code)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == [200] * 3


def test_module_level_functions(env):
    r = https.get(env.raw + "/echo", verify=env.ca, params={"x": "1"})
    assert r.json()["path"] == "/echo?x=1"
    r = https.post(env.raw + "/echo", verify=env.ca, content=b"body", headers={"A": "b"})
    assert r.json()["body"] == "body" and ["A", "b"] in r.json()["headers"]
    assert https.request("PUT", env.raw + "/echo", verify=env.ca).json()["method"] == "PUT"
    assert https.delete(env.raw + "/echo", verify=env.ca).json()["method"] == "DELETE"
    assert https.head(env.raw + "/echo", verify=env.ca).content == b""
    with https.stream("GET", env.raw + "/lines", verify=env.ca) as s:
        assert "".join(s.iter_text()) == "line one\r\nline twö\r\n\nlast"
    r = https.get(env.raw + "/redirect?to=" + b"/echo".hex(), verify=env.ca,
                  follow_redirects=True)
    assert r.json()["path"] == "/echo" and [h.status_code for h in r.history] == [302]


def test_sync_client_with_mock_and_wsgi_transports():
    calls = []

    async def handler(request):
        calls.append(request.url.path)
        return Response(200, json={"path": request.url.path})

    with Client(transport=MockTransport(handler)) as c:
        assert c.get("https://m.test/a").json() == {"path": "/a"}
    assert calls == ["/a"]
    with Client(transport=WSGITransport(wsgi_app)) as c:
        assert c.post("http://app.test/w?z=1", content=b"in").text == "POST /w z=1 in "
    assert https.get("http://app.test/x", transport=WSGITransport(wsgi_app)).text.split(" ") \
        == ["GET", "/x", "", "", ""]  # no query, body or token


@pytest.mark.parametrize("escape", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("where", ["hook", "handler"])
def test_an_interrupt_or_exit_raised_by_the_clients_own_code_reaches_the_caller(
        sync_loop, escape, where):
    """A KeyboardInterrupt or SystemExit raised on the private loop's thread (an event hook,
    a mock transport's handler) is raised to the caller, as httpx raises it in its own
    thread, and the client keeps working (its loop's thread did not die of it)."""
    armed = [True]

    def fire(*_):
        if armed[0]:
            armed[0] = False
            raise escape(3)

    def handler(request):
        if where == "handler":
            fire()
        return Response(200, text="ok")

    hooks = {"request": [fire]} if where == "hook" else {}
    done = []

    def caller():
        with Client(transport=MockTransport(handler), event_hooks=hooks) as c:
            with pytest.raises(escape):
                c.get("http://a.test/")
            done.append(c.get("http://a.test/").text)

    t = threading.Thread(target=caller, daemon=True)    # a hung caller fails, not hangs
    t.start()
    t.join(10)
    assert not t.is_alive() and done == ["ok"]


@pytest.mark.parametrize("used", [False, True])
def test_a_client_made_before_fork_works_in_the_child_and_the_parent_keeps_its_own(env,
                                                                                  used):
    """A Client made before ``fork`` (gunicorn --preload, a prefork worker pool) answers in
    the child, on a loop and connections of the child's own, and the parent's connection,
    untouched by the child, goes on serving the parent."""
    import os
    import signal

    with Client(verify=env.ca, base_url=env.raw) as c:
        if used:
            assert c.get("/echo").status_code == 200
        pid = os.fork()
        if pid == 0:                                    # the child: an exit status only
            code = 1
            try:
                signal.alarm(10)                        # a hang fails, bounded
                # a connection of its own: the parent's (counted before) is not used
                code = 0 if c.get("/echo").status_code == 200 and \
                    c.pool.connections_opened == 1 + used else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert c.get("/echo").status_code == 200
        assert c.pool.connections_opened == 1            # the parent's, kept


def test_calling_the_client_from_its_own_loop_is_refused():
    def hook(request):
        c.get("https://m.test/inner")  # would wait for the loop it runs on

    with Client(transport=MockTransport(lambda r: Response(200)),
                    event_hooks={"request": [hook]}) as c:
        with pytest.raises(RuntimeError, match="its own loop's thread"):
            c.get("https://m.test/outer")
        c.event_hooks["request"].clear()
        assert c.get("https://m.test/after").status_code == 200  # still usable


def test_sync_client_inside_a_running_loop_blocks_it_but_completes(env, run):
    """Its loop is its own: called from a coroutine it holds that loop up for the call
    (the AsyncClient is the one to use there) but cannot deadlock."""
    async def main():
        with Client(verify=env.ca) as c:
            return c.get(env.raw + "/echo").status_code

    assert run(main(), timeout=20) == 200


def test_streamed_async_response_is_not_read_by_the_sync_methods(env, run):
    """Without a Client's loop, the sync methods read only what needs no waiting."""
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            async with c.stream("GET", env.raw + "/trickle") as r:
                with pytest.raises(RuntimeError, match="aread"):
                    r.read()
            async with c.stream("GET", env.raw + "/trickle") as r:
                with pytest.raises(RuntimeError, match="aiter_bytes"):
                    next(r.iter_bytes())
            async with c.stream("GET", env.raw + "/echo") as r:
                await r.aread()
                return r.read(), list(r.iter_bytes())

    whole, pieces = run(main())
    assert whole and pieces == [whole]


def test_sync_stream_left_early_gives_its_connection_back(env, sync_loop):
    with Client(verify=env.ca, limits=https.Limits(max_connections=1)) as c:
        with c.stream("GET", env.raw + "/big?n=4000000") as s:
            for _ in s.iter_bytes():
                break  # the rest unread: the connection is discarded, not kept
        assert s.is_closed
        with c.stream("GET", env.raw + "/big?n=1000") as s:
            assert len(s.read()) == 1000
        s.close()  # closing a read response again is harmless
        assert c.get(env.raw + "/echo").status_code == 200
        assert (c.pool.connections_opened, c.pool.open_count) == (2, 1)


def test_sync_client_with_a_sync_transport():
    from test_https_transports import SyncEcho

    t = SyncEcho()
    with Client(transport=t) as c:
        assert c.put("https://s.test/", content=b"abc").text == "PUT abc"
    assert t.closed == 1
