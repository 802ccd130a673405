#!/usr/bin/env bash
# Builds and tests limit-runtime against the oldest tokio it supports, exactly 1.47.0 (the
# first with `tokio::task::coop::poll_proceed`, which the fast path needs). The workspace's
# own lock file resolves tokio to the newest release, so this runs in a scratch copy of the
# two crates, with a lock file of its own pinned to 1.47.0.
# Usage: scripts/tokio_floor.sh   (CI runs it; the scratch copy is under target/)
set -euo pipefail
cd "$(dirname "$0")/.."

floor=1.47.0
scratch=target/tokio-floor
rm -rf "$scratch"
mkdir -p "$scratch"
cp -r limit-macro limit-runtime README.md "$scratch"/
# The workspace's shared lints and package fields, without its other members.
{
  echo '[workspace]'
  echo 'members = ["limit-macro", "limit-runtime"]'
  echo 'resolver = "3"'
  echo
  sed -n '/^\[workspace\.lints/,/^\[package\]/p' Cargo.toml | sed '$d'
} >"$scratch/Cargo.toml"
# The floor is the default build's: the `redis` feature's client (redis-rs 1.8) needs tokio
# 1.51, so its optional dependencies and the features that use them (`redis`, `redis-tls`)
# are left out of the scratch copy.
sed -i -e '/^redis = /d' -e '/^redis-tls = /d' -e '/^futures-core = /d' -e '/^rustls = /d' \
  "$scratch/limit-runtime/Cargo.toml"
cp Cargo.lock "$scratch/Cargo.lock"
cd "$scratch"
cargo update -p tokio --precise "$floor"
resolved=$(cargo tree -p limit-runtime -e normal -i tokio --depth 0 | head -1)
echo "tokio_floor.sh: limit-runtime builds against ${resolved}"
case "$resolved" in
  "tokio v$floor"*) ;;
  *) echo "tokio_floor.sh: expected tokio v$floor" >&2; exit 1 ;;
esac
cargo test -p limit-runtime --target-dir ../tokio-floor-target
