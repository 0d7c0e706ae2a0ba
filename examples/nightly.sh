#!/usr/bin/env bash
# The nightly job from nothing to a restored database, on a throwaway local PostgreSQL:
#   1. the snap binary: $SNAP_BIN, else `cargo build --release --locked` (examples/lib/snap-bin.sh),
#   2. starts a throwaway PostgreSQL in a temp dir (stopped and deleted on exit) with two
#      databases, "app" and "shop" (tests/fixtures/plain.sql as sample data),
#   3. creates a repository, and a configuration file from `snap config init` with two projects,
#      the repository password in a file (never in the configuration),
#   4. `snap config check`, then `snap run` twice (the second night deduplicates),
#   5. restores the latest snapshot of "shop" into a new database "shop_restored" and compares
#      the row counts.
# Optional argument: the work directory (default: a new temp dir, kept afterwards).
#
# Needs PostgreSQL (server and client: `apt-get install postgresql`, or `bash .ci/test.sh`,
# which installs it). Run as root, the server runs as the `postgres` OS user.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE PGOPTIONS PGSSLMODE
unset SNAP_REPO SNAP_PASSWORD SNAP_PASSWORD_FILE SNAP_PASSWORD_COMMAND SNAP_CACHE_DIR SNAP_CONFIG

# say, run, fail, short_id: examples/lib/common.sh
# shellcheck source=examples/lib/common.sh
source "$ROOT/examples/lib/common.sh"

# --- 1. snap -------------------------------------------------------------------------------------
# shellcheck source=examples/lib/snap-bin.sh
source "$ROOT/examples/lib/snap-bin.sh"

# --- 2. a throwaway PostgreSQL -------------------------------------------------------------------
PG_TMP_PREFIX=snap-nightly-pg
PG_EXTRA_OPTS=""
# shellcheck source=examples/lib/throwaway-pg.sh
source "$ROOT/examples/lib/throwaway-pg.sh"
psql_() { psql -X -q -v ON_ERROR_STOP=1 -h "$PGDIR/sock" -p "$PORT" -U postgres "$@"; }

say "two databases with sample data: app and shop"
for db in app shop; do
    psql_ -d postgres -c "CREATE DATABASE $db"
    psql_ -1 -d "$db" -f "$ROOT/tests/fixtures/plain.sql"
done
psql_ -d shop -c "INSERT INTO public.notes (title) SELECT 'order ' || g FROM generate_series(1, 1000) g"

# --- 3. a repository and a configuration ---------------------------------------------------------
WORK="${1:-$(mktemp -d -t snap-nightly.XXXXXX)}"
mkdir -p "$WORK"
CONF="$WORK/snap.toml"
PWFILE="$WORK/repo-password"
( umask 077 && printf 'nightly-example-password\n' >"$PWFILE" )

say "snap init (repository $WORK/repo)"
run "$SNAP" init --repo "$WORK/repo" --cache-dir "$WORK/cache" --password-file "$PWFILE"

say "snap config init > $CONF, adapted to this machine"
"$SNAP" config init >"$CONF"
# The template's values, replaced: repository, password file, cache, and the two projects.
sed -i \
    -e "s#^location = .*#location = \"$WORK/repo\"#" \
    -e "s#^password_file = .*#password_file = \"$PWFILE\"#" \
    -e "s#^cache_dir = .*#cache_dir = \"$WORK/cache\"#" \
    -e "s#^name = \"prod\"#name = \"app\"#" \
    -e "s#^tags = \[\"env=prod\"\]#tags = [\"env=example\"]#" \
    -e "s#^db_url = .*#db_url = \"postgresql://postgres@127.0.0.1:$PORT/app\"#" \
    -e "/^db_password_file = /d" \
    "$CONF"
cat >>"$CONF" <<CONF

[[projects]]
name = "shop"
tags = ["env=example"]
[projects.db]
db_url = "postgresql://postgres@127.0.0.1:$PORT/shop"
CONF
# (the throwaway server trusts local connections: no database password file here)
run "$SNAP" config check --config "$CONF"

# --- 4. two nights -------------------------------------------------------------------------------
say "snap run (the first night)"
run "$SNAP" run --config "$CONF"
psql_ -d shop -c "INSERT INTO public.notes (title) VALUES ('a new order')"
say "snap run (the second night: only the changes are added)"
run "$SNAP" run --config "$CONF"
say "snap snapshots"
run "$SNAP" snapshots --repo "$WORK/repo" --cache-dir "$WORK/cache" --password-file "$PWFILE"

# --- 5. restore ----------------------------------------------------------------------------------
say "restore the latest snapshot of project shop into a new database shop_restored"
psql_ -d postgres -c "CREATE DATABASE shop_restored"
SHOP=$("$SNAP" snapshots --repo "$WORK/repo" --cache-dir "$WORK/cache" --password-file "$PWFILE" \
    --tag project=shop --json | grep -o '"id": *"[0-9a-f]*"' | tail -n 1 | grep -o '[0-9a-f]\{64\}')
run "$SNAP" restore "$SHOP" --db --db-url "postgresql://postgres@127.0.0.1:$PORT/shop_restored" --yes \
    --repo "$WORK/repo" --cache-dir "$WORK/cache" --password-file "$PWFILE"
orig=$(psql_ -At -d shop -c "SELECT count(*) FROM public.notes")
back=$(psql_ -At -d shop_restored -c "SELECT count(*) FROM public.notes")
echo "public.notes: $orig rows in shop, $back rows in shop_restored"
[ "$orig" = "$back" ] || { echo "FAIL: row counts differ" >&2; exit 1; }

echo
echo "PASS: the repository, snap.toml and the password file are in $WORK (the PostgreSQL is removed)"
