#!/usr/bin/env bash
# The whole test suite, with every feature on: what the README's test command runs, and what
# CI runs. The fleet tests (`--features redis`) start a real `redis-server` per test
# (`limit_suite::redis_server`), which fails rather than skips when the binary is missing, so
# this script installs it first when it can.
# Usage: scripts/test.sh [cargo test arguments…]   (e.g. scripts/test.sh --test fleet_lease)
set -euo pipefail
cd "$(dirname "$0")/.."

# The fleet tests need `redis-server` on this machine (any Redis 7, or $REDIS_SERVER). When
# it is not on PATH, install Debian's package, which is what CI and the fleet's design were
# checked against (7.0.15). The fixture also looks in /usr/bin and /usr/sbin, so a package
# installed there but off PATH is found too.
if [ -n "${REDIS_SERVER:-}" ]; then
  redis_server=$REDIS_SERVER
elif command -v redis-server >/dev/null 2>&1; then
  redis_server=redis-server
else
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: redis-server is not installed and there is no apt-get to install it with." >&2
    echo "test.sh: install Redis 7 (macOS: \`brew install redis\`; Fedora: \`sudo dnf install redis\`)" >&2
    echo "test.sh: or set REDIS_SERVER=/path/to/redis-server, then run this again." >&2
    exit 1
  fi
  # apt-get needs root: use sudo only when not root already and sudo exists (a container
  # often runs as root without it).
  as_root() {
    if [ "$(id -u)" -eq 0 ]; then
      "$@"
    elif command -v sudo >/dev/null 2>&1; then
      sudo "$@"
    else
      echo "test.sh: installing redis-server needs root, and there is no sudo: run" >&2
      echo "test.sh: \`apt-get install -y redis-server\` as root, then this again." >&2
      exit 1
    fi
  }
  echo "test.sh: redis-server is not on PATH; installing it (apt-get)"
  # A fresh machine has no package lists yet: update them once, then install only the
  # server (no recommends: redis-tools' client is not needed).
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends redis-server
  # Debian's package may leave its own service on 6379; the tests never use that port.
  if command -v redis-server >/dev/null 2>&1; then
    redis_server=redis-server
  else
    redis_server=/usr/bin/redis-server
  fi
fi

# Which server the fleet tests run against, in the log.
"$redis_server" --version

# Every crate (unit, integration, UI and doc tests) with every feature on, so the `tracing`,
# `metrics` and `redis` tests run too. Extra arguments go to cargo test.
cargo test --workspace --all-features "$@"
