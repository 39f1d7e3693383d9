"""The library never imports its commands: no module of ``corenet/`` outside
``corenet/tools/`` imports ``corenet.tools`` (by name or relatively), inside functions
included, so ``corenet-fetch`` can change without the library it is built on."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "corenet" / "tools"
IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(?:corenet\.tools\b|\.+tools\b|corenet[ \t]+c?import"
                    r"[ \t]+[^\n]*\btools\b|\.+[ \t]+c?import[ \t]+[^\n]*\btools\b)"
                    r"|c?import[ \t]+corenet\.tools\b)", re.M)


def _importers() -> list[str]:
    return [str(p.relative_to(ROOT)) for p in sorted((ROOT / "corenet").rglob("*"))
            if p.suffix in (".py", ".pyx", ".pxd") and TOOLS not in p.parents
            and IMPORT.search(p.read_text())]


def test_the_pattern_finds_each_form_of_import():
    forms = ["from corenet.tools.fetch import main", "import corenet.tools.fetch",
             "    from ..tools import fetch", "from corenet import tools",
             "from .. import tools"]
    assert [f for f in forms if not IMPORT.search(f)] == []
    assert not IMPORT.search("from corenet.https.client import AsyncClient")


def test_no_library_module_imports_the_tools():
    assert TOOLS.is_dir() and (TOOLS / "fetch.py").exists()
    assert _importers() == []
