"""What a skip means under CI: a failure, unless it is listed here with its reason.

Under ``CI=true`` a test that cannot run because something is missing (a compiled extension,
a lab tool such as nsd, unbound, nginx or dnssec-signzone, a free port) must not pass as a
skip: CI would stay green with nothing tested. ``tests/conftest.py`` installs the hooks below,
and ``.ci/run`` loads this module into the benchmark run as well (``-p tests.ci_policy``).

``ALLOWED_SKIPS`` is the one place that lists the skips CI may keep, each with why.
Outside CI nothing changes: a missing tool is a skip that names what to install.
"""
from __future__ import annotations

import os
import re

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

# (pattern searched in the skip's reason, why CI may keep this skip). Keep it short: every
# entry is something CI does not test.
ALLOWED_SKIPS: list[tuple[str, str]] = [
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_if_not_allowed(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_if_not_allowed(outcome.get_result())
