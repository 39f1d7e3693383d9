"""The outside-suites runner's own logic, without PyPI: how uvloop's suite gets corenet's loop,
which of its tests are compared with which, and how its table rows are split."""
import os
import sys
import types

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import outside_suites as runner  # noqa: E402

import corenet  # noqa: E402


@pytest.mark.parametrize("aio, uv", [
    ("tests.test_tcp.Test_AIO_TCP::test_x", "tests.test_tcp.Test_UV_TCP::test_x"),
    ("tests.test_tcp.Test_AIO_TCPSSL::test_x", "tests.test_tcp.Test_UV_TCPSSL::test_x"),
    ("tests.test_sockets.TestAIOSockets::test_x", "tests.test_sockets.TestUVSockets::test_x"),
    ("tests.test_base.TestBaseAIO::test_x", "tests.test_base.TestBaseUV::test_x"),
    ("tests.test_process.TestAsyncio_AIO_Process::test_x",
     "tests.test_process.TestAsyncio_UV_Process::test_x"),
    # "Aio" in the rest of the name is not the class kind
    ("tests.test_aiohttp.Test_AIO_AioHTTP::test_AIO_x",
     "tests.test_aiohttp.Test_UV_AioHTTP::test_AIO_x"),
])
def test_an_aio_test_is_compared_with_its_uv_twin(aio, uv):
    assert runner.uv_name(aio) == uv


def test_uvloop_rows_split_shared_tests_from_uv_only_ones():
    by_loop = {
        "asyncio": {"m.Test_AIO_A::t1": "passed", "m.Test_AIO_A::t2": "skipped"},
        "uvloop": {"m.Test_UV_A::t1": "passed", "m.Test_UV_A::t2": "passed",
                   "m.Test_UV_A::uv_only": "passed"},
        "corenet-edge": {"m.Test_UV_A::t1": "failed", "m.Test_UV_A::t2": "passed",
                         "m.Test_UV_A::uv_only": "error"},
    }
    (label_both, both), (label_uv, uv_only) = runner.rows(runner.SUITES["uvloop"], by_loop)
    assert "both" in label_both and "UV classes only" in label_uv
    assert runner.counts(both["asyncio"]) == "1 / 0 / 0 / 1"
    assert runner.counts(both["corenet-edge"]) == "1 / 1 / 0 / 0"
    assert "asyncio" not in uv_only
    assert uv_only["corenet-edge"] == {"m.Test_UV_A::uv_only": "error"}
    # the other suites have a test once per loop: one row, as it is
    assert runner.rows(runner.SUITES["aiohttp"], by_loop) == [("", by_loop)]


@pytest.mark.parametrize("trigger", ["edge", "level"])
def test_uvloop_factories_give_corenet_loops_when_corenet_is_under_test(monkeypatch, trigger):
    fake = types.ModuleType("uvloop")
    fake.new_event_loop = fake.EventLoopPolicy = None
    monkeypatch.setitem(sys.modules, "uvloop", fake)
    monkeypatch.setenv("OUTSIDE_SUITES_UVLOOP_IS", f"corenet-{trigger}")
    exec(runner.SITECUSTOMIZE, {})
    loop = fake.new_event_loop()
    try:
        assert isinstance(loop, corenet.Loop) and loop.trigger == trigger
    finally:
        loop.close()
    policy = fake.EventLoopPolicy()
    assert isinstance(policy, corenet.EventLoopPolicy)
    loop = policy.new_event_loop()
    try:
        assert loop.trigger == trigger
    finally:
        loop.close()


@pytest.mark.parametrize("kind", ["uvloop", "asyncio", ""])
def test_uvloop_is_left_alone_on_other_loops(monkeypatch, kind):
    fake = types.ModuleType("uvloop")
    fake.new_event_loop = fake.EventLoopPolicy = original = object()
    monkeypatch.setitem(sys.modules, "uvloop", fake)
    monkeypatch.setenv("OUTSIDE_SUITES_UVLOOP_IS", kind)
    exec(runner.SITECUSTOMIZE, {})
    assert fake.new_event_loop is original and fake.EventLoopPolicy is original


def test_the_substitution_tolerates_a_python_without_uvloop(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)     # import uvloop raises ImportError
    monkeypatch.setenv("OUTSIDE_SUITES_UVLOOP_IS", "corenet-edge")
    namespace = {}
    exec(runner.SITECUSTOMIZE, namespace)
    assert namespace["uvloop"] is None


@pytest.mark.parametrize("classes", ["uvloop", "asyncio"])
def test_the_plugin_keeps_the_classes_of_the_loop_kind_under_test(monkeypatch, classes):
    class UV:
        implementation = "uvloop"

    class AIO:
        implementation = "asyncio"

    class Plain:     # uvloop's plain unittest.TestCase classes: never run
        pass

    items = [types.SimpleNamespace(cls=cls, name=cls.__name__) for cls in (UV, AIO, Plain)]
    items.append(types.SimpleNamespace(name="a function"))
    dropped = []
    config = types.SimpleNamespace(hook=types.SimpleNamespace(
        pytest_deselected=lambda items: dropped.extend(items)))
    monkeypatch.setenv("OUTSIDE_SUITES_LOOP", "asyncio")
    monkeypatch.setenv("OUTSIDE_SUITES_TWIN_CLASSES", classes)
    plugin = {}
    exec(runner.PLUGIN, plugin)
    kept = list(items)
    plugin["pytest_collection_modifyitems"](config, kept)
    want = "UV" if classes == "uvloop" else "AIO"
    assert [i.name for i in kept] == [want]
    assert len(dropped) == 3 and all(i.name != want for i in dropped)


def test_httpx_s_name_gives_corenet_https_where_the_suite_is_replaced(monkeypatch):
    monkeypatch.setenv("OUTSIDE_SUITES_LOOP", "asyncio")
    monkeypatch.setenv("OUTSIDE_SUITES_REPLACED", runner.SUITES["httpx"].replaced)
    import httpx as real                     # put back in sys.modules after the test
    monkeypatch.setitem(sys.modules, "httpx", real)
    exec(runner.PLUGIN, {})
    import httpx
    import corenet.https
    assert httpx is corenet.https


def test_only_corenet_s_columns_replace_httpx(monkeypatch, tmp_path):
    seen = {}

    def fake_run(cmd, cwd, env, **kw):
        seen[env["OUTSIDE_SUITES_LOOP"]] = env.get("OUTSIDE_SUITES_REPLACED")
        raise StopIteration
    monkeypatch.setattr(runner.subprocess, "run", fake_run)
    for loop in ("asyncio", "corenet-edge"):
        with pytest.raises(StopIteration):
            runner.run_suite(runner.SUITES["httpx"], loop, str(tmp_path), "/bin/python",
                             str(tmp_path), 1, False)
    assert seen == {"asyncio": None, "corenet-edge": "httpx:corenet.https"}
