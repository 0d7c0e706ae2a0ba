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
PG_TMP_PREFIX=snap-db-quickstart-pg
PG_EXTRA_OPTS="-c wal_level=logical"
# shellcheck source=examples/lib/throwaway-pg.sh
source "$ROOT/examples/lib/throwaway-pg.sh"
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
