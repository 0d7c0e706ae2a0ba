#!/usr/bin/env bash
# snap's main job, on an embedded default: back up a (Supabase-shaped) PostgreSQL database and
# get it back. With no arguments it
#   1. builds snap (cargo build --release),
#   2. starts a throwaway local PostgreSQL in a temp dir (stopped and deleted on exit),
#   3. loads tests/fixtures/supabase.sql as sample data (auth, storage, public, billing, …),
#   4. creates a snap repository in a temp dir,
#   5. runs snap backup db, snap snapshots, snap ls latest, snap restore latest --target DIR.
# Optional argument: the work directory for the repository and the restore (default: a new
# temp dir, kept afterwards so you can look at it).
#
# Needs PostgreSQL (server and client: `apt-get install postgresql`, or `bash .ci/test.sh`,
# which installs it). Run as root, the server runs as the `postgres` OS user.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE PGOPTIONS PGSSLMODE

say() { printf '\n== %s\n' "$*"; }
run() {
    printf '+ %s\n' "$*"
    "$@"
}

# --- 1. snap -------------------------------------------------------------------------------------
say "building snap (cargo build --release)"
cargo build --release --quiet
SNAP="$ROOT/target/release/snap"

# --- 2. a throwaway PostgreSQL -------------------------------------------------------------------
PGBIN=""
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n); do
    [ -x "$d/initdb" ] && PGBIN=$d
done
if [ -z "$PGBIN" ]; then
    echo "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)." >&2
    echo "Install it with: apt-get install postgresql   (or run: bash .ci/test.sh)" >&2
    exit 1
fi
# snap runs pg_dump/pg_dumpall/psql from PATH: use the ones of the server's version.
export PATH="$PGBIN:$PATH"

PGDIR=$(mktemp -d /tmp/snap-db-quickstart-pg.XXXXXX)
if [ "$(id -u)" -eq 0 ]; then
    # initdb refuses to run as root: the server runs as the `postgres` OS user.
    id -u postgres >/dev/null 2>&1 || { echo "no 'postgres' OS user (install postgresql)" >&2; exit 1; }
    chown postgres: "$PGDIR"
    if command -v runuser >/dev/null; then
        as_server() { (cd "$PGDIR" && runuser -u postgres -- "$@"); }
    else
        as_server() { (cd "$PGDIR" && setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"); }
    fi
else
    as_server() { (cd "$PGDIR" && "$@"); }
fi

PG_STARTED=0
cleanup() {
    local rc=$?
    if [ "$PG_STARTED" = 1 ]; then
        echo "== stopping the throwaway PostgreSQL"
        as_server "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -s stop >/dev/null 2>&1 || true
    fi
    rm -rf "$PGDIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting a throwaway PostgreSQL $(basename "$(dirname "$PGBIN")") in $PGDIR"
as_server mkdir "$PGDIR/sock"
as_server "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth-local=trust --auth-host=trust \
    --encoding=UTF8 --locale=C --no-sync --no-instructions >"$PGDIR/initdb.log" 2>&1 ||
    { cat "$PGDIR/initdb.log" >&2; exit 1; }
PORT=""
for _ in 1 2 3 4 5; do
    p=$((20000 + RANDOM % 30000))
    # Skip ports something already listens on.
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
    if as_server "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgres.log" -w -t 60 -s \
        -o "-k '$PGDIR/sock' -p $p -c listen_addresses=127.0.0.1 -c fsync=off -c wal_level=logical" \
        start; then
        PORT=$p
        PG_STARTED=1
        break
    fi
done
if [ -z "$PORT" ]; then
    echo "could not start PostgreSQL; its log:" >&2
    cat "$PGDIR/postgres.log" >&2 || true
    exit 1
fi
DB_URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
echo "listening on 127.0.0.1:$PORT (trust authentication, local only): $DB_URL"

# --- 3. sample data ------------------------------------------------------------------------------
say "loading tests/fixtures/supabase.sql (a Supabase-shaped database) as sample data"
run psql -X -q -1 -v ON_ERROR_STOP=1 -h "$PGDIR/sock" -p "$PORT" -U postgres -d postgres \
    -f "$ROOT/tests/fixtures/supabase.sql"
psql -X -q -h "$PGDIR/sock" -p "$PORT" -U postgres -d postgres -c "
    SELECT n.nspname AS schema, count(*) AS tables, sum(c.reltuples)::bigint AS rows
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname !~ '^(pg_|information_schema)'
    GROUP BY 1 ORDER BY 1"

# --- 4. a repository -----------------------------------------------------------------------------
WORK="${1:-$(mktemp -d -t snap-db-quickstart.XXXXXX)}"
mkdir -p "$WORK"
export SNAP_REPO="$WORK/repo" SNAP_CACHE_DIR="$WORK/cache"
export SNAP_PASSWORD="quickstart-only-password"   # use SNAP_PASSWORD_FILE for real repositories
say "snap init (repository $SNAP_REPO)"
run "$SNAP" init

# --- 5. back up, list, restore -------------------------------------------------------------------
say "snap backup db"
run "$SNAP" backup db --db-url "$DB_URL"
say "snap snapshots"
run "$SNAP" snapshots
say "snap ls latest"
run "$SNAP" ls latest
say "snap restore latest (the dump files)"
run "$SNAP" restore latest --target "$WORK/restore"
echo "restored files:"
(cd "$WORK/restore" && find . -type f -printf '  %10s bytes  %P\n' | sort -k3)

echo
echo "done: the repository and the restored files are in $WORK (the PostgreSQL is removed)"
