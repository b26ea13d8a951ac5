#!/usr/bin/env bash
# Installs the two Elasticsearch-API emulators the indexer tests run against
# (BRIEF §8) into a venv, idempotently: osmem-server (OpenSearch 3.x API on
# Bleve) and noida-db (reports Elasticsearch 8.15).
# Prints `export` lines for the paths the tests read:
#   FAROL_TEST_OSMEM_BIN  the osmem-server executable
#   FAROL_TEST_NOIDA_BIN  the noida-db executable
# Usage: eval "$(scripts/install-es-emulators.sh)"
# The venv lives in $FAROL_ES_VENV (default: target/es-emulators-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${FAROL_ES_VENV:-$PWD/target/es-emulators-venv}"
osmem_version=0.1.6
noida_version=0.2.3
stamp="$venv/.farol-installed-osmem-$osmem_version-noida-$noida_version"
if [ ! -f "$stamp" ]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "osmem-server==$osmem_version" "noida-db==$noida_version" >&2
    touch "$stamp"
fi
site=$("$venv/bin/python" -c 'import osmem_server, os; print(os.path.dirname(os.path.dirname(osmem_server.__file__)))')
osmem="$site/osmem_server/bin/osmem-server"
# The native server itself, not the Python launcher around it, so that
# stopping the child process stops the server.
noida="$site/noida_db/noida-db"
[ -x "$osmem" ] || { echo "install-es-emulators: $osmem missing" >&2; exit 1; }
[ -x "$noida" ] || { echo "install-es-emulators: $noida missing" >&2; exit 1; }
echo "export FAROL_TEST_OSMEM_BIN='$osmem'"
echo "export FAROL_TEST_NOIDA_BIN='$noida'"
