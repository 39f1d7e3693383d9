"""resolver.limits: one place, every field with its reason, and the engine honours them."""
from __future__ import annotations

import inspect
from dataclasses import fields

import pytest

from resolver import limits
from resolver.limits import Limits


def test_every_limit_has_a_default_and_a_documented_reason():
    src = inspect.getsource(Limits).splitlines()
    for f in fields(Limits):
        line = next(i for i, s in enumerate(src) if s.strip().startswith(f"{f.name}:"))
        above = src[line - 1].strip()
        documented = above.startswith("#:") or any(
            src[j].strip().startswith("#:") for j in range(max(0, line - 4), line))
        assert documented, f"{f.name} has no reason next to it"
        assert getattr(limits.DEFAULT, f.name) == f.default


def test_defaults_in_line_with_other_resolvers():
    d = limits.DEFAULT
    assert d.max_cname_chain == 11
    assert 1 < d.max_query_time <= 10
    assert d.max_ns_names_per_delegation <= 20
    assert limits.EDNS_BUFFER_SIZE == 1232


def test_replace_rejects_unknown_names_and_keeps_others():
    changed = limits.DEFAULT.replace(max_cname_chain=3)
    assert changed.max_cname_chain == 3 and changed.max_referrals == limits.DEFAULT.max_referrals
    with pytest.raises(TypeError):
        limits.DEFAULT.replace(max_cname=3)
