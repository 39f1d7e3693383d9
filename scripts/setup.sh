#!/usr/bin/env bash
# Sourced by the other scripts: installs what corenet needs on a Debian machine and
# builds it into ./.venv. Safe to run again; it only does what is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# Debian packages: compiler and headers for the extensions, the authoritative servers,
# Unbound, dnsperf and nginx for the integration tests and benchmarks, strace for the
# syscall counts, valgrind for the instruction counts.
DEB_PACKAGES=(gcc python3-dev python3-venv nsd unbound dnsperf nginx bind9-utils ldnsutils dns-root-data strace
              valgrind)
missing=()
for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Package installs must not leave daemons running on the ports the tests use.
    for svc in nsd unbound nginx; do
        if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
        pkill -x "$svc" >/dev/null 2>&1 || true
    done
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
    .venv/bin/pip install -q --upgrade pip setuptools wheel
fi
.venv/bin/pip install -q Cython
.venv/bin/pip install -q -e '.[test]'
# The editable install builds into the tree; build again in place so a change to a
# .pyx since the last install is always compiled.
.venv/bin/python setup.py -q build_ext --inplace >/dev/null
