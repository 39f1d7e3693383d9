#!/usr/bin/env bash
# Runs the whole test suite (pytest's testpaths; tests/package is scripts/package.sh's) on
# every CPython 3.12 or later found on this machine other than the one of ./.venv, each in
# its own virtual environment (.venv-3.12, .venv-3.13, ...) with the extensions compiled in
# place for it.
#
# Time, measured on the 2-core CI machine with Python 3.11 while other jobs ran (load about
# 1.5): tests/loop, tests/transports and tests/framing 53 s, tests/compat 3 min (CPython's
# asyncio suite, three loops), tests/resolver 3.6 min (no test above 5 s: no benchmark-like
# test to leave out), tests/https 66 s, the rest 7 s: about 9 minutes. A new interpreter's
# virtual environment and compiled extensions took 1.7 minutes (3.12.1: 98 s, 3.13.0: 106 s),
# and its loop, transport, framing and compatibility tests 4 minutes, as on 3.11. Two other
# CPythons (3.12, 3.13) add about 22 minutes to CI, which stays under its hour.
#
# Interpreters are found by other_cpythons (scripts/lib.sh): one per minor version, the newest
# patch release. Arguments go to
# pytest: test paths among them run instead of the whole suite (e.g. tests/loop). With no
# interpreter found it says so and exits 0.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

declare -A best=()
declare -A best_version=()
while IFS=$'\t' read -r minor version exe; do
    best[$minor]=$exe
    best_version[$minor]=$version
done < <(other_cpythons)

if [ ${#best[@]} -eq 0 ]; then
    say "no CPython 3.12 or later besides the main one found: nothing to run"
    exit 0
fi

failed=()
for minor in $(printf '%s\n' "${!best[@]}" | sort -V); do
    PYTHON=${best[$minor]}
    venv=".venv-$minor"
    step "Python ${best_version[$minor]} ($PYTHON) in $venv"
    make_venv "$venv"
    stamp="$venv/.corenet-installed[test]"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
        step "installing the Python dependencies into $venv"
        CORENET_METADATA_ONLY=1 quietly "/tmp/corenet-pip-$minor.log" \
            "$venv/bin/pip" install --no-build-isolation -e ".[test]" ||
            die "pip could not install the dependencies for Python $minor"
        touch "$stamp"
    fi
    build_inplace "$venv/bin/python"
    step "Python ${best_version[$minor]}: ${*:-the whole test suite}"
    if ! "$venv/bin/python" -m pytest -q -ra "$@"; then
        failed+=("$minor")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    die "tests failed on Python ${failed[*]}"
fi
step "passed on Python $(printf '%s\n' "${!best_version[@]}" | sort -V | tr '\n' ' ')"
