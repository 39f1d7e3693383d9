#!/usr/bin/env bash
# Installs what serving needs (a compiler, the Python headers, the runtime dependencies:
# no lab tools, no test extras), builds corenet into ./.venv and runs the resolver daemon
# in the foreground. Extra arguments go to `corenet-resolver serve`.
set -euo pipefail
export SETUP_FOR=serve
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
step "starting: corenet-resolver serve $*"
exec .venv/bin/corenet-resolver serve "$@"
