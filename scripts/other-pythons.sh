#!/usr/bin/env bash
# Runs the test suite on every CPython 3.12 or later found on this machine other than the one
# of ./.venv, each in its own virtual environment (.venv-3.12, .venv-3.13, ...) with the
# extensions compiled in place for it: corenet's tests on each, the resolver's test files
# dealt out among them but its four longest (share, below), so that the other Pythons
# together run most of the suite once more (tests/package is scripts/package.sh's, on every
# Python).
#
# Time on the 2-core CI machine: a new interpreter's virtual environment and compiled
# extensions take 2 to 3 minutes. A suite runs in parallel workers (scripts/lib.sh,
# pytest_workers) and the interpreters' suites side by side, isolated from each other
# (below): a worker waits on the daemons and servers its tests start about half of the time,
# so together they keep both cores busy.
#
# Interpreters are found by other_cpythons (scripts/lib.sh): one per minor version, the newest
# patch release. Arguments go to
# pytest: test paths among them run instead of the whole suite (e.g. tests/loop). With no
# interpreter found it says so and exits 0. `--prepare` as the only argument makes the
# environments and compiles, and runs nothing: .ci/run does that first, so that the compiling
# is over before these suites run beside the main one.
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

# Each interpreter's environment is made in turn (compiling uses both cores already); then
# the suites run side by side, each in a network namespace of its own with private /run
# directories for what the tests name there (the daemon's default control socket, the
# namespaces the shared-cache tests create), so that their labs on port 53, Redis on 6379 and
# test namespaces cannot meet. Without root (no namespaces) they run one after the other.
for minor in $(printf '%s\n' "${!best[@]}" | sort -V); do
    PYTHON=${best[$minor]}
    venv=".venv-$minor"
    step "Python ${best_version[$minor]} ($PYTHON) in $venv"
    make_venv "$venv"
    stamp="$venv/.corenet-installed[test]"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
        step "installing the Python dependencies into $venv"
        CORENET_METADATA_ONLY=1 quietly "$LOGS/pip-$minor.log" \
            "$venv/bin/pip" install --no-build-isolation -e ".[test]" ||
            die "pip could not install the dependencies for Python $minor"
        touch "$stamp"
    fi
    build_inplace "$venv/bin/python"
done
if [ "${1:-}" = --prepare ]; then
    exit 0
fi

isolated=false
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && command -v unshare >/dev/null; then
    isolated=true
fi
namespaces=()
cleanup() {
    local ns
    for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT

# run_suite MINOR LOG NS [ARGS...]: the whole suite (or the given paths) on that interpreter,
# output in LOG, inside network namespace NS when NS is not empty.
run_suite() {
    local minor=$1 log=$2 ns=$3
    shift 3
    pytest_workers "$ROOT/.venv-$minor/bin/python"
    local cmd=(".venv-$minor/bin/python" -m pytest -q -ra "${WORKER_ARGS[@]}" "$@")
    if [ -z "$ns" ]; then
        "${cmd[@]}" >"$log" 2>&1
        return
    fi
    # `ip netns exec` gives the command a mount namespace of its own: the tmpfs mounts
    # below are seen by this suite alone.
    ip netns exec "$ns" sh -c '
        for d in /run/netns /run/corenet-resolver; do
            mkdir -p "$d" && mount -t tmpfs -o mode=0755 tmpfs "$d" || exit 1
        done
        exec "$@"' sh "${cmd[@]}" >"$log" 2>&1
}

# The resolver's longest test files, a good half of its tests' time, run on the main Python
# alone: BIND's dig side by side with the query command, and the DNSSEC labs' invariants.
MAIN_ONLY=(test_dig_query.py test_dig_nssearch.py test_ad_invariant.py test_downgrade.py)

# share INDEX COUNT: sets SHARE to the test paths of the INDEX-th of COUNT interpreters: the
# tests of corenet (its loop, transports, framer and HTTPS client, CPython's asyncio suite on
# the loop: what differs most between Pythons, and a quarter of the suite's time) whole, and
# every COUNT-th of the resolver's test files but MAIN_ONLY, dealt out in turn. Three whole
# suites side by side would need more than the CPU of CI's 2-core hour.
share() {
    local index=$1 count=$2 i=0 f
    SHARE=()
    for f in "$ROOT"/tests/*/ "$ROOT"/tests/test_*.py; do
        case "$f" in */tests/resolver/|*/tests/package/) ;; *) SHARE+=("${f#"$ROOT"/}") ;; esac
    done
    for f in "$ROOT"/tests/resolver/test_*.py; do
        [[ " ${MAIN_ONLY[*]} " == *" ${f##*/} "* ]] && continue
        [ $((i % count)) = "$index" ] && SHARE+=("${f#"$ROOT"/}")
        i=$((i + 1))
    done
}

failed=()
pids=()
minors=$(printf '%s\n' "${!best[@]}" | sort -V)
count=$(wc -w <<<"$minors")
index=0
for minor in $minors; do
    log="$LOGS/tests-$minor.log"
    if [ $# -gt 0 ]; then
        SHARE=("$@")
        step "Python ${best_version[$minor]}: $* (output in $log)"
    else
        share "$index" "$count"
        step "Python ${best_version[$minor]}: corenet's tests and 1 in $count of the resolver's test files (output in $log)"
    fi
    index=$((index + 1))
    if $isolated; then
        ns="corenet-ci-$minor-$$"
        ip netns add "$ns" && ip -n "$ns" link set lo up || die "could not make namespace $ns"
        namespaces+=("$ns")
        run_suite "$minor" "$log" "$ns" "${SHARE[@]}" &
        pids+=("$!:$minor")
    elif ! run_suite "$minor" "$log" "" "${SHARE[@]}"; then
        failed+=("$minor")
    fi
done
for entry in "${pids[@]}"; do
    wait "${entry%%:*}" || failed+=("${entry#*:}")
done
for minor in $minors; do
    log="$LOGS/tests-$minor.log"
    if [[ " ${failed[*]} " == *" $minor "* ]]; then
        say "Python ${best_version[$minor]}: FAILED; the end of $log:"
        tail -80 "$log" >&2
    else
        say "Python ${best_version[$minor]}: $(tail -1 "$log")"
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    die "tests failed on Python ${failed[*]}"
fi
step "passed on Python $(printf '%s\n' "${!best_version[@]}" | sort -V | tr '\n' ' ')"
