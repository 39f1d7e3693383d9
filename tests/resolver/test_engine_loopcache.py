"""The engine remembers the loop of its last miss (to skip a getpid() per miss on Python
3.11): a resolver moved to another loop must still bound, and cancel, the right task."""
from __future__ import annotations

import asyncio

from looptools import make_loop
from scenario import hanging_resolver
from resolver import iterator as it

NAME = b"\x03www\x07example\x03com\x00"


def test_time_limit_applies_to_the_caller_on_each_new_loop(loop_kind):
    r = hanging_resolver(0.05)
    seen = []
    for _ in range(2):                    # the second loop finds a stale cached loop
        lp = make_loop(loop_kind)
        try:
            async def go():
                res = await r._resolution(NAME, 1, 1)
                seen.append(r._loop is asyncio.get_running_loop())
                assert asyncio.current_task().cancelling() == 0
                return res

            res = lp.run_until_complete(asyncio.wait_for(go(), 5))
        finally:
            lp.close()
        assert res.rcode == it.SERVFAIL and res.time_exhausted
        assert not r._inflight
    assert seen == [True, True]


def test_two_tasks_on_one_loop_each_get_their_own_limit(run):
    r = hanging_resolver(0.05)

    async def go():
        one = asyncio.ensure_future(r._resolution(NAME, 1, 1))
        two = asyncio.ensure_future(r._resolution(NAME + b"", 28, 1))
        return await asyncio.gather(one, two)

    for res in run(go()):
        assert res.rcode == it.SERVFAIL and res.time_exhausted
