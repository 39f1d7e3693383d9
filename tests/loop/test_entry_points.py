"""How a program gets corenet's loop on each Python: ``corenet.run``, ``asyncio.Runner`` and
(3.12+) ``asyncio.run(..., loop_factory=)``; the event-loop policy and ``corenet.install``
only where asyncio still has policies without deprecation (before 3.14). Importing the
package raises no DeprecationWarning."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

POLICIES = sys.version_info < (3, 14)


def test_import_and_run_under_deprecation_warnings_as_errors():
    """A fresh interpreter with ``-W error::DeprecationWarning``: every public module
    imports, and each documented way of running a coroutine on corenet's loop works."""
    script = textwrap.dedent("""
        import asyncio, sys
        import corenet, corenet.loop, corenet.transports, corenet.tls, corenet.framing
        import corenet.https, resolver

        async def main():
            await asyncio.sleep(0)
            return type(asyncio.get_running_loop()).__module__

        loop = corenet.new_event_loop()
        assert loop.run_until_complete(main()) == "corenet.loop"
        loop.close()
        assert corenet.run(main()) == "corenet.loop"
        with asyncio.Runner(loop_factory=corenet.new_event_loop) as runner:
            assert runner.run(main()) == "corenet.loop"
        if sys.version_info >= (3, 12):
            assert asyncio.run(main(), loop_factory=corenet.new_event_loop) == "corenet.loop"
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", script],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_policy_and_install_where_asyncio_has_policies(corenet_kind):
    """Before 3.14: corenet.install() sets corenet's policy, whose loops are corenet's. From
    3.14 (asyncio deprecates policies): no policy class, and install() raises an error that
    says what to use instead."""
    import corenet

    if not POLICIES:
        with pytest.raises(RuntimeError, match=r"loop_factory=corenet\.new_event_loop"):
            corenet.install()
        with pytest.raises(AttributeError, match=r"corenet\.run"):
            corenet.EventLoopPolicy
        assert "EventLoopPolicy" not in dir(corenet)
        return
    assert "EventLoopPolicy" in dir(corenet)
    trigger = corenet_kind.split("-", 1)[1]
    old = asyncio.get_event_loop_policy()
    try:
        corenet.install(trigger=trigger)
        assert isinstance(asyncio.get_event_loop_policy(), corenet.EventLoopPolicy)
        lp = asyncio.new_event_loop()
        try:
            assert isinstance(lp, corenet.Loop)
            assert lp.trigger == trigger
        finally:
            lp.close()
    finally:
        asyncio.set_event_loop_policy(old)
