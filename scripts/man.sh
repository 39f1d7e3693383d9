#!/usr/bin/env bash
# Installs the man pages corenet-resolver(8) and corenet-resolver.toml(5) (docs/man, made
# from the settings and commands tables) into MAN_DIR (default /usr/local/share/man), so that
# `man corenet-resolver` finds them. Safe to run again: it puts the same files in place.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MAN_DIR=${MAN_DIR:-/usr/local/share/man}
for page in "$ROOT"/docs/man/*.[1-8]; do
    section=${page##*.}
    install -D -m 0644 "$page" "$MAN_DIR/man$section/$(basename "$page")"
done
