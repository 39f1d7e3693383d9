"""The CI policy: under CI=true a skip that ci_policy does not list fails the run; outside CI
it stays a skip. Each case runs pytest on a tiny project in a temp dir."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ci_policy

HERE = Path(__file__).resolve().parent

CONFTEST = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import ci_policy
    ci_policy.ALLOWED_SKIPS.append((r"^listed: ", "a reason CI may keep, for this test"))
    from ci_policy import pytest_make_collect_report, pytest_runtest_makereport
""")

TESTS = textwrap.dedent("""
    import pytest
    from ci_policy import unavailable

    def test_plain_skip():
        pytest.skip("nginx is not installed")

    @pytest.mark.skipif(True, reason="strace is not installed")
    def test_marked_skip():
        pass

    def test_listed_skip():
        pytest.skip("listed: this host has no such thing")

    def test_unavailable():
        unavailable("nsd is not installed")

    @pytest.fixture
    def needs_port():
        pytest.skip("port 53 is taken")

    def test_fixture_skip(needs_port):
        pass

    @pytest.mark.xfail(reason="known", strict=True)
    def test_expected_failure():
        assert False

    def test_passes():
        assert True
""")

MODULE_SKIP = "import pytest\npytest.importorskip('no_such_extension_here')\n"
OTHER_MODULE = "def test_runs():\n    assert True\n"


def run_project(tmp_path: Path, ci: str | None, files: dict[str, str]) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(CONFTEST.format(tests=str(HERE)))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), "-c", os.devnull, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def outcomes(out: str) -> dict[str, str]:
    """test name -> PASSED/FAILED/SKIPPED/ERROR/XFAIL from pytest's verbose lines (a failure
    in a test's setup, where skipif marks and fixtures run, is reported as ERROR)."""
    found = {}
    for m in re.finditer(r"^\S+::(\w+) (PASSED|FAILED|SKIPPED|ERROR|XFAIL)", out, re.M):
        found[m.group(1)] = m.group(2)
    return found


def test_under_ci_an_unlisted_skip_is_a_failure_naming_what_is_missing(tmp_path):
    proc = run_project(tmp_path, "true", {"test_cases.py": TESTS})
    got = outcomes(proc.stdout)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert got["test_plain_skip"] == "FAILED"
    assert got["test_marked_skip"] in ("FAILED", "ERROR")
    assert got["test_unavailable"] == "FAILED"
    assert got["test_fixture_skip"] in ("FAILED", "ERROR")
    assert got["test_listed_skip"] == "SKIPPED"
    assert got["test_expected_failure"] == "XFAIL"
    assert got["test_passes"] == "PASSED"
    for what in ("nginx is not installed", "strace is not installed", "nsd is not installed",
                 "port 53 is taken"):
        assert what in proc.stdout, what


def test_outside_ci_the_same_skips_stay_skips(tmp_path):
    proc = run_project(tmp_path, None, {"test_cases.py": TESTS})
    got = outcomes(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("test_plain_skip", "test_marked_skip", "test_unavailable", "test_fixture_skip",
                 "test_listed_skip"):
        assert got[name] == "SKIPPED", (name, proc.stdout)
    assert got["test_passes"] == "PASSED"


@pytest.mark.parametrize("ci, code", [("true", 2), ("false", 0)])
def test_a_module_skipped_at_collection_fails_only_under_ci(tmp_path, ci, code):
    proc = run_project(tmp_path, ci, {"test_module.py": MODULE_SKIP,
                                          "test_other.py": OTHER_MODULE})
    assert proc.returncode == code, proc.stdout + proc.stderr
    if code:
        assert "no_such_extension_here" in proc.stdout


def test_oracle_differences_apply_from_their_python_version_and_to_asyncio_only():
    path = "/x/tests/transports/test_transport_buffered.py"
    name = "test_writelines_is_one_syscall"
    assert ci_policy.oracle_difference(path, f"{name}[asyncio]", (3, 11, 7)) is None
    assert "sendmsg" in ci_policy.oracle_difference(path, f"{name}[asyncio]", (3, 12, 1))
    assert ci_policy.oracle_difference(path, f"{name}[corenet-edge]", (3, 13, 0)) is None
    datagram = "/x/test_transport_datagram.py"
    test = "test_sendto_queues_when_the_socket_would_block[asyncio]"
    assert ci_policy.oracle_difference(datagram, test, (3, 12, 1)) is None
    assert ci_policy.oracle_difference(datagram, test, (3, 13, 0)) is not None


def test_every_listed_oracle_difference_names_a_test_that_exists():
    tests = Path(__file__).resolve().parent
    for file, test, _, why in ci_policy.ORACLE_DIFFERENCES:
        found = list(tests.rglob(file))
        assert len(found) == 1, file
        assert f"def {test.split('[')[0]}(" in found[0].read_text(), test
        assert test.endswith("[asyncio]") and len(why.split()) >= 5


def test_every_allowed_skip_says_why():
    for pattern, why in ci_policy.ALLOWED_SKIPS:
        assert pattern and len(why.split()) >= 3, (pattern, why)
