"""What a skip means under CI: a failure, unless it is listed here with its reason.

Under ``CI=true`` a test that cannot run because something is missing (a compiled extension,
a lab tool such as nsd, unbound, nginx or dnssec-signzone, a free port) must not pass as a
skip: CI would stay green with nothing tested. ``tests/conftest.py`` installs the hooks below,
and ``.ci/run`` loads this module into the benchmark run as well (``-p tests.ci_policy``).

``ALLOWED_SKIPS`` is the one place that lists the skips CI may keep, each with why.
Outside CI nothing changes: a missing tool is a skip that names what to install.

``ORACLE_DIFFERENCES`` lists the tests where stock asyncio itself, the oracle every loop-level
test runs against, does not behave as the test pins on some Python versions. They are
expected failures there (strict: once asyncio behaves, the run fails until the entry goes).
"""
from __future__ import annotations

import os
import re
import sys

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

# (pattern searched in the skip's reason, why CI may keep this skip). Keep it short: every
# entry is something CI does not test.
ALLOWED_SKIPS: list[tuple[str, str]] = [
]

DATAGRAM_BUFFER_SIZE_STAYS = ("asyncio's datagram transport still reports a non-zero write buffer "
                              "size after every queued datagram was delivered")

# (test file, test id, first Python version, what stock asyncio does there). Only the
# "asyncio" parametrization is listed: corenet must pass these on every version.
ORACLE_DIFFERENCES: list[tuple[str, str, tuple[int, int], str]] = [
    ("test_transport_buffered.py", "test_mutable_buffers_are_copied_when_queued[asyncio]",
     (3, 12), "asyncio's selector transport queues the caller's bytearray without copying it, "
              "so a buffer changed after write() goes out changed"),
    ("test_transport_buffered.py", "test_writelines_is_one_syscall[asyncio]", (3, 12),
     "asyncio's writelines() sends the pieces as several buffers of one sendmsg(), as corenet "
     "does, where the test expects 3.11's single joined buffer"),
    ("test_transport_faults.py", "test_writes_after_close_and_abort_are_dropped[asyncio]",
     (3, 12), "asyncio's writelines() after close() calls the transport's cleared _write_ready "
              "and raises TypeError"),
    ("test_transport_datagram.py", "test_sendto_queues_when_the_socket_would_block[asyncio]",
     (3, 13), DATAGRAM_BUFFER_SIZE_STAYS),
    ("test_transport_python_hooks.py",
     "test_what_a_datagram_socket_subclass_raises_goes_where_asyncio_puts_it[asyncio]", (3, 13),
     DATAGRAM_BUFFER_SIZE_STAYS),
]


def allowed(reason: str) -> str | None:
    """The listed reason that covers this skip, or None."""
    for pattern, why in ALLOWED_SKIPS:
        if re.search(pattern, reason):
            return why
    return None


def unavailable(what: str) -> None:
    """A test cannot run because ``what`` is missing: a failure under CI, a skip elsewhere."""
    if IN_CI:
        pytest.fail(f"CI=true and {what}", pytrace=False)
    pytest.skip(what)


def installed(name: str, package: str) -> str:
    """The path of the program ``name``, else :func:`unavailable` naming its Debian
    ``package``."""
    import shutil

    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} (Debian package {package!r}) is not installed: scripts/setup.sh "
                    "installs it")
    return path


def skip_reason(longrepr) -> str:
    """The reason pytest recorded for a skip (its longrepr is (path, line, 'Skipped: ...'))."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
    else:
        text = str(longrepr)
    return text.removeprefix("Skipped: ")


def _fail_if_not_allowed(report) -> None:
    if not IN_CI or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = skip_reason(report.longrepr)
    if allowed(reason) is None:
        report.outcome = "failed"
        report.longrepr = (f"skipped under CI=true, which fails the run: {reason}\n"
                           "(install what is missing, or list the skip with its reason in "
                           "tests/ci_policy.py ALLOWED_SKIPS)")


def oracle_difference(path: str, name: str, version=sys.version_info) -> str | None:
    """Why stock asyncio fails this test on this Python, if it is listed."""
    for file, test, since, why in ORACLE_DIFFERENCES:
        if os.path.basename(path) == file and name == test and tuple(version[:2]) >= since:
            return why
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        why = oracle_difference(str(item.path), item.name)
        if why is not None:
            item.add_marker(pytest.mark.xfail(reason=f"stock asyncio on this Python: {why}",
                                              strict=True))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_if_not_allowed(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_if_not_allowed(outcome.get_result())
