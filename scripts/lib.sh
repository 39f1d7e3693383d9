# Helpers sourced by the other scripts (not run on its own).
#
# They never stop, kill or disable a service of the host: the tests start their own NSD,
# Unbound and nginx on their own addresses and ports and stop them by PID.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The set-up's logs, in the checkout: two checkouts set up at once keep theirs apart.
LOGS="$ROOT/build/logs"
mkdir -p "$LOGS"
SCRIPT=${SCRIPT:-$(basename "$0" .sh)}
STEP_STARTED=$SECONDS

say() { printf '%s: %s\n' "$SCRIPT" "$*" >&2; }

# step "what": a progress line, and how long the step before it took.
step() {
    local took=$((SECONDS - STEP_STARTED))
    STEP_STARTED=$SECONDS
    if [ "$took" -gt 2 ]; then say "($took s) $*"; else say "$*"; fi
}

die() {
    say "$@"
    exit 1
}

# quietly LOG CMD...: runs CMD with its output in LOG; on failure shows the end of it.
quietly() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 && return 0
    tail -25 "$log" >&2
    say "failed: $* (the whole output is in $log)"
    return 1
}

# A line per Debian package: what it is for. Used to tell a user off Debian what to install.
describe_package() {
    case "$1" in
        gcc) echo "a C compiler (gcc or clang) for the Cython extensions" ;;
        python3-dev) echo "the Python headers (Python.h) of the Python that builds corenet" ;;
        python3-venv) echo "Python's venv module with ensurepip" ;;
        nsd) echo "NSD, the authoritative server of the tests' DNS lab" ;;
        unbound) echo "Unbound, the reference resolver the tests compare against" ;;
        dnsperf) echo "dnsperf, the DNS load generator of the benchmarks" ;;
        nginx) echo "nginx, the HTTPS server of the HTTPS client tests" ;;
        bind9-utils) echo "dnssec-keygen and dnssec-signzone (BIND tools) for the signed lab" ;;
        ldnsutils) echo "ldns-signzone (ldns tools) for the signed lab" ;;
        strace) echo "strace, for the system-call checks" ;;
        valgrind) echo "valgrind (callgrind), for the instruction-count benchmark" ;;
        iproute2) echo "ss and ip (iproute2)" ;;
        util-linux) echo "unshare (util-linux)" ;;
        libssl-dev) echo "OpenSSL's headers, for the daemon's TLS listeners (and the handshake benchmark's C servers)" ;;
        ccache) echo "ccache, a compiler cache (CI builds each Python's C twice: tests, release)" ;;
        libnghttp2-dev) echo "nghttp2's headers, for HTTP/2 in the HTTPS client and the daemon's DNS over HTTPS" ;;
        *) echo "$1" ;;
    esac
}

# need_debian_packages PKG...: installs the ones missing, or says exactly what to install
# and exits with status 1 when it cannot (not root, or no apt-get).
need_debian_packages() {
    local missing=() p
    if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
        for p in "$@"; do missing+=("$p"); done
        say "this script installs its system packages with apt-get (Debian or Ubuntu), not found here."
        say "install these with your system's package manager, then run it again:"
        for p in "${missing[@]}"; do say "  - $(describe_package "$p")"; done
        exit 1
    fi
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        say "missing Debian packages: ${missing[*]}"
        say "install them as root, then run this again:"
        say "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
        exit 1
    fi
    step "installing Debian packages: ${missing[*]} (a minute or two)"
    # A package's maintainer scripts may start its service (nsd, unbound and nginx listen on
    # port 53 or 80 once started). A policy-rc.d that refuses every start, present only for
    # this install call, keeps them stopped; a policy the host already has is left as it is.
    local policy=${POLICY_RC_D:-/usr/sbin/policy-rc.d} made_policy=0   # (the tests move it)
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# corenet scripts: no service starts during this package install\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    } >"$LOGS/apt.log" 2>&1 || rc=$?
    [ "$made_policy" -eq 1 ] && rm -f "$policy"
    if [ "$rc" -ne 0 ]; then
        tail -20 "$LOGS/apt.log" >&2
        die "apt-get failed (status $rc; the whole log is $LOGS/apt.log)"
    fi
    local services=() s
    for s in nsd unbound nginx; do
        [[ " ${missing[*]} " == *" $s "* ]] && services+=("$s")
    done
    if [ ${#services[@]} -gt 0 ]; then
        say "note: Debian enables ${services[*]} at boot; nothing here needs them running (the"
        say "tests start their own). To keep them from starting at boot: systemctl disable ${services[*]}"
    fi
}

# need_python: PYTHON is a CPython 3.11 or later, or the script says so and stops.
need_python() {
    PYTHON=${PYTHON:-python3}
    command -v "$PYTHON" >/dev/null 2>&1 || die "no $PYTHON found: install Python 3.11 or later, or set PYTHON=/path/to/python3"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "$PYTHON is Python $("$PYTHON" -c 'import platform; print(platform.python_version())'); corenet needs 3.11 or later (set PYTHON=/path/to/python3.11)"
}

# build_requires PY PYPROJECT: the build requirements (build-system.requires) of that
# pyproject.toml, one a line, read by PY (3.11 or later: tomllib).
build_requires() {
    "$1" -c 'import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"]))' "$2" ||
        die "no build-system.requires in $2"
}

# make_venv DIR: a virtual environment of $PYTHON with pip and the tree's build requirements
# (pyproject.toml: setuptools, wheel, Cython).
make_venv() {
    local dir=$1 requires
    if [ ! -x "$dir/bin/python" ]; then
        step "creating the virtual environment $dir ($("$PYTHON" -c 'import platform; print(platform.python_version())'))"
        "$PYTHON" -m venv "$dir" || die "$PYTHON -m venv failed: on Debian, install python3-venv"
        "$dir/bin/pip" install -q --upgrade pip setuptools wheel
    fi
    requires=$(build_requires "$dir/bin/python" "$ROOT/pyproject.toml")
    # shellcheck disable=SC2086  # one requirement a line, none with a space
    (IFS=$'\n'; "$dir/bin/pip" install -q $requires)
}

# build_inplace PY: compiles the extensions next to their sources for that interpreter
# (the file names carry the interpreter's ABI, so several Pythons can share the tree), and
# the Python modules to bytecode: every process started from the tree (the daemon and its
# workers, the query and fetch commands; the tests start thousands) then loads it instead of
# compiling the sources again, which costs about 0.1 s of CPU a process where
# PYTHONDONTWRITEBYTECODE is set (no process writes it then).
# A second argument, --force, compiles every extension again (what is in place may be another
# build's, e.g. build_profiled's instrumented one).
build_inplace() {
    local py=$1
    step "compiling the Cython extensions for $("$py" -c 'import platform; print(platform.python_version())') (a few minutes the first time)"
    (cd "$ROOT" && nice -n 5 "$py" setup.py -q build_ext --inplace ${2:-} >"$LOGS/build.log" 2>&1) || {
        tail -30 "$LOGS/build.log" >&2
        die "the build failed (the whole log is $LOGS/build.log)"
    }
    compile_bytecode "$py"
}

# compile_bytecode PY: the Python modules to bytecode (see build_inplace).
compile_bytecode() {
    local py=$1
    (cd "$ROOT" && "$py" -m compileall -q -j 0 corenet resolver >"$LOGS/bytecode.log" 2>&1) || {
        tail -30 "$LOGS/bytecode.log" >&2
        die "compiling the Python modules to bytecode failed (the whole log is $LOGS/bytecode.log)"
    }
}

# build_profiled PY: as build_inplace, but compiled from a profile of a run (setup.py,
# CORENET_PROFILE): instrumented, scripts/profile_workload.py run on it, compiled again from
# its counts. Done again, for every extension (the counts are the whole program's), whenever
# a source of their C (.pyx, .pxd, .h), setup.py or the workload is newer than the profile:
# about twice build_inplace's time. Not through ccache, which would have to find each
# object's counts by their mangled path.
build_profiled() {
    local py=$1 profile mode
    profile="$ROOT/build/profile-$("$py" -c 'import sys; print(sys.implementation.cache_tag)')"
    if [ -f "$profile/.built" ] && [ ! "$ROOT/setup.py" -nt "$profile/.built" ] &&
        [ ! "$ROOT/scripts/profile_workload.py" -nt "$profile/.built" ] &&
        [ -z "$(cd "$ROOT" && find corenet resolver \( -name '*.pyx' -o -name '*.pxd' \
                -o -name '*.h' \) -newer "$profile/.built" -print -quit)" ]; then
        build_inplace "$py"
        return
    fi
    step "compiling the Cython extensions from a profile of the daemon and the loop: instrumented, run, compiled again (a few minutes)"
    rm -rf "$profile"
    for mode in generate use; do
        if [ "$mode" = use ]; then
            if ! (cd "$ROOT" && "$py" scripts/profile_workload.py >"$LOGS/profile.log" 2>&1); then
                tail -30 "$LOGS/profile.log" >&2
                # CI stops on it; elsewhere the profile only makes the compiled code faster, so the
                # extensions are compiled without it (and profiled again on the next run).
                [ "${CI:-}" = true ] && die "the profile's workload failed (the whole log is $LOGS/profile.log)"
                say "the profile's workload failed (the whole log is $LOGS/profile.log): compiling without a profile"
                rm -rf "$profile"
                build_inplace "$py" --force
                return
            fi
            compgen -G "$profile/*.gcda" >/dev/null || die "the profile's workload left no counts in $profile"
        fi
        (cd "$ROOT" && CCACHE_DISABLE=1 CORENET_PROFILE=$mode nice -n 5 "$py" setup.py -q \
            build_ext --inplace --force >"$LOGS/build.log" 2>&1) || {
            tail -30 "$LOGS/build.log" >&2
            die "the $mode build failed (the whole log is $LOGS/build.log)"
        }
    done
    touch "$profile/.built"
    compile_bytecode "$py"
}

# can_isolate: whether a test process can have namespaces of its own (scripts/isolated-python):
# root, unshare and ip.
can_isolate() {
    [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null
}

# pytest_workers PY: sets WORKER_ARGS to the pytest arguments that run the suite on PY in
# parallel workers (pytest-xdist), one per CPU and at least two (a worker waits on the servers
# its tests start about half of the time), each in namespaces of its own
# (scripts/isolated-python); a test file's tests stay together on one worker, in their order,
# and the files are handed out in collection order, which starts with the longest files
# (tests/schedule.py), not by their number of tests.
# Empty (one process, as plain pytest) without root, unshare or ip, or with
# CORENET_TEST_WORKERS=0 (for --pdb, say); CORENET_TEST_WORKERS=N sets the count.
pytest_workers() {
    local py=$1 n=${CORENET_TEST_WORKERS:-}
    WORKER_ARGS=()
    if [ -z "$n" ]; then
        n=$(nproc 2>/dev/null || echo 1)
        [ "$n" -ge 2 ] || n=2
    fi
    if [ "$n" = 0 ] || ! can_isolate; then
        return 0
    fi
    export CORENET_WORKER_PYTHON=$py
    WORKER_ARGS=(--dist loadfile --no-loadscope-reorder --tx "$n*popen//python=$ROOT/scripts/isolated-python")
}

# other_cpythons: a line "MINOR<TAB>VERSION<TAB>EXECUTABLE" per CPython 3.12 or later found on
# this machine, the newest patch release of each minor version, leaving out the minor version
# of ./.venv (the main one) and pre-releases. Looked for as python3.N on PATH, in /usr/bin and
# /usr/local/bin, and under ~/.pyenv/versions.
other_cpythons() {
    local main_minor="" c
    if [ -x "$ROOT/.venv/bin/python" ]; then
        main_minor=$("$ROOT/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    fi
    {
        compgen -c python3. 2>/dev/null | grep -E '^python3\.[0-9]+$' || true
        ls /usr/bin/python3.* /usr/local/bin/python3.* 2>/dev/null | grep -E 'python3\.[0-9]+$' || true
        ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin/python3 2>/dev/null || true
    } | sort -u | while read -r c; do
        "$c" -c 'import sys
if sys.implementation.name == "cpython" and sys.version_info >= (3, 12) and not sys.flags.optimize:
    import platform; print(platform.python_version(), sys.executable, sep="\t")' 2>/dev/null || true
    done | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\s' | sort -t. -k1,1n -k2,2n -k3,3n | awk -F'\t' -v main="$main_minor" '
        { split($1, v, "."); minor = v[1] "." v[2]; if (minor != main) { best[minor] = $1 "\t" $2 } }
        END { for (m in best) print m "\t" best[m] }' | sort -V
}
