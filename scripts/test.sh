#!/usr/bin/env bash
# Farol's whole test suite: formatting, lints, unit tests beside the code and
# whole-pipeline tests in tests/ (which start the real `farol` binary).
# Tests that read the team's shared data (../shared/data) say SKIPPED when it
# is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
