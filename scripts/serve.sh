#!/usr/bin/env bash
# Installs what serving needs (a compiler, the Python headers, the runtime dependencies:
# no lab tools, no test extras), builds corenet into ./.venv and runs the resolver daemon
# in the foreground, as the system user corenet-resolver once bound (created here when
# missing). As root it installs the man pages too (scripts/man.sh). Safe to run again.
# Extra arguments go to `corenet-resolver serve`.
set -euo pipefail
export SETUP_FOR=serve
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
if [ "$(id -u)" = 0 ] && ! getent passwd corenet-resolver >/dev/null; then
    # The unprivileged system user the daemon becomes once its sockets are bound.
    step "creating the system user corenet-resolver"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        corenet-resolver
fi
if [ "$(id -u)" = 0 ]; then
    step "installing the man pages: man corenet-resolver, man corenet-resolver.toml"
    bash "$ROOT/scripts/man.sh"
else
    say "not root: man pages not installed (man -l docs/man/corenet-resolver.8 shows one)"
fi
step "starting: corenet-resolver serve $*"
exec .venv/bin/corenet-resolver serve "$@"
