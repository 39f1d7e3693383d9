#!/usr/bin/env bash
# Sets up everything and runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
exec .venv/bin/python -m pytest -q -ra "$@"
