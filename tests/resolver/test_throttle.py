"""The throttle's table, sans-IO, on a fake clock: strikes within a window start a penalty,
the penalty ends, the window starts afresh, the table stays within its capacity."""
from __future__ import annotations

import pytest

from resolver.daemon.throttle import Throttle
from scenario import FakeClock


def make(capacity=100) -> Throttle:
    return Throttle(strikes=3, window=60.0, penalty=30.0, capacity=capacity)


def test_more_strikes_than_allowed_within_the_window_start_a_penalty_that_expires():
    clock = FakeClock()
    t = make()
    for _ in range(3):
        assert not t.strike("192.0.2.1", clock())
        assert not t.refused("192.0.2.1", clock())
        clock.advance(1.0)
    assert t.strike("192.0.2.1", clock())          # the fourth: more than three
    start = clock()
    assert t.refused("192.0.2.1", clock())
    assert not t.refused("192.0.2.2", clock())      # another address is not
    assert t.penalised(clock()) == 1
    clock.advance(29.9)
    assert t.refused("192.0.2.1", clock())
    clock.advance(0.2)
    assert clock() - start > 30.0
    assert not t.refused("192.0.2.1", clock())      # the penalty is over
    assert t.penalised(clock()) == 0


def test_strikes_spread_wider_than_the_window_never_throttle():
    clock = FakeClock()
    t = make()
    for _ in range(20):
        assert not t.strike("192.0.2.1", clock())
        assert not t.refused("192.0.2.1", clock())
        clock.advance(21.0)                        # three per window at most


def test_a_strike_soon_after_a_penalty_within_the_window_starts_another():
    clock = FakeClock()
    t = make()
    for _ in range(4):
        t.strike("192.0.2.1", clock())
    clock.advance(31.0)
    assert not t.refused("192.0.2.1", clock())
    assert t.strike("192.0.2.1", clock())          # still within the window
    assert t.refused("192.0.2.1", clock())
    clock.advance(31.0)
    clock.advance(60.0)                            # window and penalty over: forgotten
    assert not t.refused("192.0.2.1", clock())
    assert len(t) == 0
    assert not t.strike("192.0.2.1", clock())


def test_the_table_is_bounded_and_forgets_the_least_recently_struck():
    clock = FakeClock()
    t = make(capacity=4)
    for _ in range(4):
        t.strike("192.0.2.1", clock())             # penalised
    for i in range(2, 5):
        t.strike(f"192.0.2.{i}", clock())
    assert len(t) == 4 and t.refused("192.0.2.1", clock())
    t.strike("192.0.2.2", clock())                 # struck again: the most recent
    t.strike("192.0.2.9", clock())                 # full: the least recently struck goes
    assert len(t) == 4
    assert not t.refused("192.0.2.1", clock())     # it was the penalised one
    for i in range(100, 1100):
        t.strike(f"198.51.100.{i}", clock())
        assert len(t) <= 4


def test_a_throttle_needs_sensible_bounds():
    with pytest.raises(ValueError):
        Throttle(0, 60.0, 30.0, 10)
    with pytest.raises(ValueError):
        Throttle(3, 60.0, 0.0, 10)
    with pytest.raises(ValueError):
        Throttle(3, 60.0, 30.0, 0)
