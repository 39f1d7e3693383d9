"""CPython's own asyncio tests, run on corenet and on stock asyncio in the same run: every test
that passes on stock asyncio must pass on corenet, in both trigger modes."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
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


def run_suite(kind: str, tmp_path) -> dict:
    out = tmp_path / f"{kind}.json"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, os.path.join(HERE, "cpython_asyncio.py"), kind, "all",
                           "--json", str(out)], cwd=str(tmp_path), env=env, timeout=SUITE_TIMEOUT,
                          capture_output=True, text=True)
    assert out.exists(), f"runner crashed for {kind}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def stock(tmp_path_factory):
    return run_suite("asyncio", tmp_path_factory.mktemp("stock"))


# Each suite takes about 70 s on a quiet machine, mostly its own sleeps, and two or three times
# that beside other suites; the first test also runs the stock suite (the fixture). Each run is
# bounded by its subprocess's timeout; the test by both of them.
@pytest.mark.timeout(2 * SUITE_TIMEOUT + 60)
@pytest.mark.parametrize("kind", ["corenet-edge", "corenet-level"])
def test_corenet_passes_what_stock_asyncio_passes(kind, stock, tmp_path):
    pytest.importorskip("corenet._loop", reason="corenet._loop extension is not built")
    ours = run_suite(kind, tmp_path)
    assert set(ours) == set(stock)
    regressions = {}
    for module, result in stock.items():
        lost = set(result["passed_ids"]) - set(ours[module]["passed_ids"])
        for test_id in (t for t in lost if not known(t)):
            regressions[test_id] = ours[module]["details"].get(test_id, "did not run")
    assert not regressions, "\n\n".join(f"{k}:\n{v}" for k, v in sorted(regressions.items()))
    assert sum(r["passed"] for r in ours.values()) >= 1600
