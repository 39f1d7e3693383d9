"""CPython's own asyncio tests, run on corenet and on stock asyncio in the same run: every test
that passes on stock asyncio must pass on corenet, in both trigger modes. Stock asyncio runs
the tests corenet did not pass (the rest need no comparison)."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cpython_asyncio  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))

# Tests that pass on stock asyncio but not on corenet, by test method name, with the reason.
KNOWN_DIFFERENCES: dict[str, str] = {
    "test_internal_fds": "reads selector internals (_internal_fds, _csock); the test skips "
                         "itself on loops that are not BaseSelectorEventLoop",
    "test_timeout_rounding": "replaces the private loop._run_once; corenet's iteration is a "
                             "C function the loop calls directly",
    "test_create_subprocess_fails_with_inactive_watcher": "expects RuntimeError from an "
        "inactive child watcher; corenet watches children through pidfds and needs no watcher",
}


SUITE_TIMEOUT = 900  # seconds for one run of the whole suite


def known(test_id: str) -> bool:
    return test_id.rsplit(".", 1)[-1] in KNOWN_DIFFERENCES


def run_suite(kind: str, tmp_path, only: list[str] | None = None) -> dict:
    tmp_path.mkdir(exist_ok=True)
    out = tmp_path / f"{kind}.json"
    args = [sys.executable, os.path.join(HERE, "cpython_asyncio.py"), kind, "all", "--json",
            str(out)]
    if only is not None:
        (tmp_path / "only.txt").write_text("\n".join(only) + "\n")
        args += ["--only", str(tmp_path / "only.txt")]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(args, cwd=str(tmp_path), env=env, timeout=SUITE_TIMEOUT,
                          capture_output=True, text=True)
    assert out.exists(), f"runner crashed for {kind}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(out.read_text())


# A suite takes about 70 s on a quiet machine, mostly its own sleeps, and two or three times
# that beside other suites. Stock asyncio then runs just the tests that did not pass on
# corenet (skips included): what passes on corenet needs no comparison. Each run is bounded by
# its subprocess's timeout; the test by both of them.
@pytest.mark.timeout(2 * SUITE_TIMEOUT + 60)
@pytest.mark.parametrize("kind", ["corenet-edge", "corenet-level"])
def test_corenet_passes_what_stock_asyncio_passes(kind, tmp_path):
    pytest.importorskip("corenet._loop", reason="corenet._loop extension is not built")
    ours = run_suite(kind, tmp_path / "ours")
    names = {*cpython_asyncio.MODULES, *cpython_asyncio.NET_MODULES}
    assert set(ours) == names
    assert sum(r["passed"] for r in ours.values()) >= 1600
    not_passed = sorted(t for r in ours.values() for t in set(r["ids"]) - set(r["passed_ids"]))
    stock = run_suite("asyncio", tmp_path / "stock", not_passed) if not_passed else {}
    # stock asyncio loaded the same tests, so none of them went unchecked
    assert sorted(t for r in stock.values() for t in r["ids"]) == not_passed
    regressions = {}
    for module, result in stock.items():
        for test_id in (t for t in result["passed_ids"] if not known(t)):
            regressions[test_id] = ours[module]["details"].get(test_id, "skipped on corenet")
    assert not regressions, "\n\n".join(f"{k}:\n{v}" for k, v in sorted(regressions.items()))
