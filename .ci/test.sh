#!/usr/bin/env bash
# The project's test command (README §Tests). Installs what the tests need when it is missing,
# then builds everything (benches included, so they cannot rot) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# (Today the tests need only the Rust toolchain; database and FUSE tests will add their
# apt packages here, installed only when missing.)

cargo build --all-targets --locked
cargo test --locked --all-targets --no-fail-fast
cargo test --locked --doc
