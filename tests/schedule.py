"""The order the suite's files are handed to parallel workers (scripts/lib.sh,
pytest_workers: a file's tests stay on one worker, files go out in collection order).

The longest files go first: a file that cannot be split and starts last ends the run alone.
The rest keep their order."""
from __future__ import annotations

#: Test files (relative to tests/) whose tests take the longest, longest first: each takes
#: several minutes of one worker.
LONGEST_FIRST = (
    "resolver/test_dig_query.py",
    "resolver/test_ad_invariant.py",
    "compat/test_cpython_asyncio.py",
    "resolver/test_downgrade.py",
    "resolver/test_dig_nssearch.py",
)


def longest_first(items: list) -> None:
    """Moves the tests of :data:`LONGEST_FIRST`'s files ahead of the others, in place; a stable
    sort, so every other order stays as collected."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def key(item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return rank.get(path.removeprefix("tests/"), len(rank))

    items.sort(key=key)
