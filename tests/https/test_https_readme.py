"""The README's HTTPS examples that need no server run as written."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"


def https_examples() -> list[str]:
    text = README.read_text()
    section = text.split("\n## HTTPS\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    # The others reach example.org: they are shapes to read, not to run here.
    return [b for b in blocks if "MockTransport" in b]


@pytest.mark.parametrize("code", https_examples(), ids=lambda c: c.split("\n")[-2][:40])
def test_readme_example_runs(code):
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})


def test_the_examples_are_found():
    assert len(https_examples()) == 3
