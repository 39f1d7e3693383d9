#!/usr/bin/env bash
# Sourced by the other scripts: installs what corenet needs and builds it into ./.venv.
# Safe to run again: it only does what is missing, and compiles again only when a source of
# the extensions changed (scripts/lib.sh, build_profiled).
#
#   SETUP_FOR=serve  the compiler and Python headers, the runtime dependencies
#   SETUP_FOR=test   (the default) also the lab tools and the test extras
#
# Debian packages are installed with apt-get when run as root; otherwise, or off Debian, the
# script names what to install and exits with status 1. PYTHON picks the interpreter
# (default python3, 3.11 or later).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

SETUP_FOR=${SETUP_FOR:-test}
# To build the extensions (the daemon's TLS listeners call OpenSSL: its headers).
BUILD_PACKAGES=(gcc python3-dev python3-venv libssl-dev libnghttp2-dev)
# The tests' lab: NSD and Unbound (DNS lab and reference), BIND and ldns tools (signing the
# DNSSEC lab), nginx (HTTPS tests), dnsperf and valgrind (benchmarks), strace, ss and unshare,
# systemd-analyze (checks the shipped systemd unit), Redis and dnsdist (the shared cache and its
# load balancer), kdig and dig (DNS over TLS and HTTPS clients), curl (what corenet-fetch
# copies, run beside it), microsocks (a SOCKS5 proxy for the client's tests; no service),
# ccache (CI compiles the same C for the tests and again for the release check: .ci/run).
TEST_PACKAGES=(nsd unbound bind9-utils ldnsutils nginx dnsperf strace valgrind iproute2 util-linux
               systemd redis-server dnsdist knot-dnsutils bind9-dnsutils curl microsocks ccache)

case "$SETUP_FOR" in
    serve) need_debian_packages "${BUILD_PACKAGES[@]}"; extras="" ;;
    test) need_debian_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"; extras="[test]" ;;
    *) die "SETUP_FOR must be serve or test, not $SETUP_FOR" ;;
esac
need_python
make_venv .venv

# The project itself, editable, without compiling (build_profiled does): its dependencies,
# the corenet-resolver and corenet-fetch commands. Redone when the packaging files change.
stamp=".venv/.corenet-installed${extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
    step "installing the Python dependencies into .venv${extras:+ (with the test extras)}"
    CORENET_METADATA_ONLY=1 quietly "$LOGS/pip.log" \
        .venv/bin/pip install --no-build-isolation -e ".${extras}" ||
        die "pip could not install the dependencies"
    touch "$stamp"
fi
build_profiled .venv/bin/python
step "ready: .venv ($(.venv/bin/python -c 'import corenet; print("corenet", corenet.__version__)'))"
