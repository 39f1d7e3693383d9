"""Keeps ``echo_instructions.py`` working: one small cell per loop under callgrind.

The full table (every mode and size, thousands of requests per cell) takes minutes and is
run by hand; see the script's docstring and BENCHMARKS.md.
"""
from __future__ import annotations

import shutil

import pytest

import echo_instructions as ei
import test_echo as te
from test_echo import echo_client  # noqa: F401  (the fixture that builds the C client)


@pytest.mark.skipif(shutil.which("callgrind_control") is None,
                    reason="valgrind (callgrind_control) is not installed")
@pytest.mark.parametrize("kind", [k for k in ("uvloop", "corenet-edge") if k in te.KINDS])
def test_echo_instructions_per_request(benchmark, echo_client, kind, tmp_path):
    benchmark.group = "echo-instructions"
    n = 200

    def measure():
        return ei.instructions_per_request(echo_client, kind, "protocol", 1024, n, str(tmp_path))

    per_request = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info["instructions_per_request"] = per_request
    # A request is at least a receive, a data_received call and a send; a count this low
    # would mean the dump missed the measured window.
    assert per_request > 500


@pytest.mark.skipif(shutil.which("callgrind_control") is None,
                    reason="valgrind (callgrind_control) is not installed")
def test_echo_instructions_split_by_where_they_ran(benchmark, echo_client, tmp_path):
    """--split: the parts add up to the whole, and in streams mode the interpreter (asyncio's
    stream classes) outweighs corenet's loop, which still has its share."""
    benchmark.group = "echo-instructions"
    n = 200

    def measure():
        return ei.instructions_per_request(echo_client, "corenet-edge", "streams", 1024, n,
                                           str(tmp_path), parts=True)

    parts = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(parts)
    total = parts.pop("total")
    assert sum(parts.values()) == pytest.approx(total)
    assert parts["the loop"] > 100 and parts["_asyncio"] > 100
    assert parts["the interpreter"] > 5 * parts["the loop"]
