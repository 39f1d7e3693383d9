"""Shared fixtures: every loop-level test runs on stock asyncio (the oracle) and on
corenet's loop in both trigger modes, so a difference from asyncio is a failing test.

Under CI=true a skip fails the run unless ``ci_policy.ALLOWED_SKIPS`` lists it. A SIGTERM
ends the run as Ctrl-C does, so that the fixtures still stop the servers they started."""
from __future__ import annotations

import asyncio

import pytest

import ci_policy
from ci_policy import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401  (hooks)
from looptools import CORENET_KINDS, LOOP_KINDS, loop_factory, make_loop, open_fds  # noqa: F401  (re-exported)
from procs import sigterm_as_interrupt
from schedule import longest_first


def pytest_configure(config) -> None:
    sigterm_as_interrupt()


def pytest_collection_modifyitems(config, items) -> None:
    ci_policy.pytest_collection_modifyitems(config, items)
    longest_first(items)


@pytest.fixture(params=LOOP_KINDS)
def loop_kind(request) -> str:
    return request.param


@pytest.fixture(params=CORENET_KINDS)
def corenet_kind(request) -> str:
    """For checks of what only corenet has (its trigger modes, policy, counters)."""
    return request.param


@pytest.fixture
def loop(loop_kind):
    """A fresh loop of each kind, closed after the test with its executor shut down."""
    lp = make_loop(loop_kind)
    asyncio.set_event_loop(lp)
    try:
        yield lp
    finally:
        if not lp.is_closed():
            if not lp.is_running():
                lp.run_until_complete(lp.shutdown_asyncgens())
                lp.run_until_complete(lp.shutdown_default_executor())
            lp.close()
        asyncio.set_event_loop(None)


@pytest.fixture
def run(loop):
    """run(coro, timeout=10): run a coroutine on the test's loop with a bound on time."""

    def _run(coro, timeout: float = 10.0):
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))

    return _run

