"""The installed-package tests: they exercise corenet and resolver as installed from the
wheel, never the source tree. scripts/package.sh runs them from a copy of the tests, in a
directory without the sources, with CORENET_SDIST and CORENET_WHEEL naming what it built.
The main test run leaves this folder out (pyproject's addopts)."""
from __future__ import annotations

import os
import sysconfig

import pytest

import corenet
import resolver

SITE = os.path.realpath(sysconfig.get_paths()["platlib"])


def installed(module) -> bool:
    return os.path.realpath(module.__file__).startswith(SITE + os.sep)


if not (installed(corenet) and installed(resolver)):
    pytest.exit(f"the package tests must import the installed wheel from {SITE}, not "
                f"{corenet.__file__} and {resolver.__file__}: run them with scripts/package.sh",
                returncode=3)


@pytest.fixture(scope="session")
def artifact():
    """artifact("CORENET_WHEEL") -> the path scripts/package.sh built (a failure without it)."""

    def get(name: str) -> str:
        path = os.environ.get(name)
        if not path or not os.path.exists(path):
            pytest.fail(f"{name} does not name a built file: run scripts/package.sh", pytrace=False)
        return path

    return get
