#!/usr/bin/env bash
# snap's main job end to end, on an embedded default: back up a (Supabase-shaped) PostgreSQL
# database, change it, back it up again, and restore the second snapshot into a fresh database;
# then compare every table's rows with the source. Exits non-zero on any difference; prints PASS.
#   1. the snap binary: $SNAP_BIN, else `cargo build --release --locked` (examples/lib/snap-bin.sh),
#   2. two throwaway local PostgreSQL servers in temp dirs (stopped and deleted on exit),
#   3. a database "app" with tests/fixtures/supabase.sql (auth, storage, public, billing, …),
#   4. a snap repository in the work directory: snap init,
#   5. snap backup db; an UPDATE, INSERT and DELETE; snap backup db again,
#   6. snap snapshots, snap diff FIRST SECOND, snap ls SECOND db/app,
#   7. createdb app_restored on a second throwaway server, prepared as a fresh Supabase project
#      is (see below), then snap restore SECOND --db --db-url …/app_restored --yes,
#   8. per table: md5 of all its rows in app and in app_restored, which must be equal.
# Optional argument: the work directory for the repository (default: a new temp dir, kept
# afterwards so you can look at it).
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

# --- 2. two throwaway PostgreSQL servers --------------------------------------------------------
# One holds the database to back up; the other stands for the server you restore onto (a new
# project, another machine): roles are cluster-wide, so a restore of roles.sql belongs on a
# server that does not have the source's own roles already.
PG_TMP_PREFIX=snap-db-quickstart-pg
PG_EXTRA_OPTS="-c wal_level=logical"
# shellcheck source=examples/lib/throwaway-pg.sh
source "$ROOT/examples/lib/throwaway-pg.sh"
SRC_SOCK=$PGDIR/sock SRC_PORT=$PORT
throwaway_pg_start
DST_SOCK=$PGDIR/sock DST_PORT=$PORT
SRC="postgresql://postgres@127.0.0.1:$SRC_PORT" DST="postgresql://postgres@127.0.0.1:$DST_PORT"
echo "source server $SRC, restore server $DST (trust authentication, local only)"
src() { psql -X -q -v ON_ERROR_STOP=1 -h "$SRC_SOCK" -p "$SRC_PORT" -U postgres "$@"; }
dst() { psql -X -q -v ON_ERROR_STOP=1 -h "$DST_SOCK" -p "$DST_PORT" -U postgres "$@"; }

# --- 3. sample data ------------------------------------------------------------------------------
say "createdb app, loaded with tests/fixtures/supabase.sql (a Supabase-shaped database)"
createdb -h "$SRC_SOCK" -p "$SRC_PORT" -U postgres app
src -1 -d app -f "$ROOT/tests/fixtures/supabase.sql"
src -d app -c "
    SELECT n.nspname AS schema, count(*) AS tables, sum(c.reltuples)::bigint AS rows
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname !~ '^(pg_|information_schema)'
    GROUP BY 1 ORDER BY 1"

# --- 4. a repository -----------------------------------------------------------------------------
WORK="${1:-$(mktemp -d -t snap-db-quickstart.XXXXXX)}"
mkdir -p "$WORK"
rm -rf "$WORK/repo" "$WORK/cache"
export SNAP_REPO="$WORK/repo" SNAP_CACHE_DIR="$WORK/cache"
export SNAP_PASSWORD="quickstart-only-password"   # use SNAP_PASSWORD_FILE for real repositories
say "snap init (repository $SNAP_REPO)"
run "$SNAP" init

# --- 5. back up, change, back up again -----------------------------------------------------------
say "snap backup db --db-url $SRC/app"
FIRST=$("$SNAP" backup db --db-url "$SRC/app" --json | short_id)
[ -n "$FIRST" ] || fail "snap backup db printed no snapshot id"
echo "snapshot $FIRST"
say "a day of changes: UPDATE, INSERT, DELETE"
src -d app -c "UPDATE public.profiles SET full_name = full_name || ' (renamed)' WHERE id IN (SELECT id FROM public.profiles ORDER BY id LIMIT 5)"
src -d app -c "INSERT INTO billing.invoices (order_id, amount_cents, issued_on, memo) SELECT order_id, -amount_cents, issued_on + 1, 'credit note' FROM billing.invoices ORDER BY id LIMIT 10"
src -d app -c "DELETE FROM public.order_items WHERE (order_id, line) IN (SELECT order_id, line FROM public.order_items ORDER BY 1, 2 LIMIT 7)"
say "snap backup db again (only the changes are added)"
SECOND=$("$SNAP" backup db --db-url "$SRC/app" --json | short_id)
[ -n "$SECOND" ] || fail "snap backup db printed no snapshot id"
echo "snapshot $SECOND"

# --- 6. look inside ------------------------------------------------------------------------------
say "snap snapshots"
run "$SNAP" snapshots
say "snap diff $FIRST $SECOND (the tables that changed)"
run "$SNAP" diff "$FIRST" "$SECOND" | tee "$WORK/diff.txt"
for t in public.profiles billing.invoices public.order_items; do
    grep -qF "tables/$t.sql" "$WORK/diff.txt" || fail "snap diff does not name tables/$t.sql"
done
say "snap ls $SECOND db/app"
run "$SNAP" ls "$SECOND" db/app

# --- 7. restore into a fresh database ------------------------------------------------------------
# snap restore --db expects what a new Supabase project has before anything is restored into it,
# and names whatever is missing, with the fix (run it with --dry-run to see that report). On a
# plain PostgreSQL that is: the reserved roles (anon, authenticated, service_role, supabase_admin,
# …; roles.sql creates only your own), the extensions in schema "extensions", Database Webhooks'
# supabase_functions.hooks and http_request(), the supabase_realtime publication, and Supabase's
# own auth and storage schemas (the snapshot's managed/*.sql has them).
say "createdb app_restored on the restore server, prepared like a fresh Supabase project"
createdb -h "$DST_SOCK" -p "$DST_PORT" -U postgres app_restored
dst -d app_restored <<'SQL'
DO $$ DECLARE r text; BEGIN
  FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role', 'authenticator', 'supabase_admin',
      'supabase_auth_admin', 'supabase_storage_admin', 'dashboard_user', 'pgbouncer'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN EXECUTE format('CREATE ROLE %I NOLOGIN', r); END IF;
  END LOOP;
END $$;
CREATE SCHEMA extensions;
CREATE EXTENSION pgcrypto WITH SCHEMA extensions;
CREATE EXTENSION "uuid-ossp" WITH SCHEMA extensions;
CREATE SCHEMA supabase_functions;
CREATE TABLE supabase_functions.hooks (id bigserial PRIMARY KEY, hook_table_id integer NOT NULL,
  hook_name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), request_id bigint);
CREATE FUNCTION supabase_functions.http_request() RETURNS trigger LANGUAGE plpgsql
  AS $$ BEGIN RETURN NEW; END $$;
CREATE PUBLICATION supabase_realtime;
SQL
for m in auth storage; do
    # Leniently: the user's own additions in there need objects the restore creates (snap
    # applies those itself, after the data).
    "$SNAP" cat "$SECOND" "db/app/managed/$m.sql" | dst -d app_restored -v ON_ERROR_STOP=0 >/dev/null 2>&1 || true
done
say "snap restore $SECOND --db --db-url $DST/app_restored --yes"
run "$SNAP" restore "$SECOND" --db --db-url "$DST/app_restored" --yes

# --- 8. compare ----------------------------------------------------------------------------------
# Every table of the source: those the snapshot holds (tables/<schema>.<table>.sql, and the
# migration history in migrations.sql) must have the same rows in app_restored. The only others
# allowed are the platform's own migration-history tables, which a project's services (auth,
# storage, webhooks) create and fill themselves.
say "comparing every table's rows: app (the source, now) and app_restored"
SNAPPED=$("$SNAP" ls "$SECOND" db/app/tables | awk '{print $NF}' | sed -n 's#.*/tables/\(.*\)\.sql$#\1#p')
[ -n "$SNAPPED" ] || fail "snap ls $SECOND db/app/tables lists no tables"
# The migration history (supabase_migrations.schema_migrations) is in db/app/migrations.sql.
LISTING=$("$SNAP" ls "$SECOND" db/app)
if grep -q '/db/app/migrations\.sql$' <<<"$LISTING"; then
    SNAPPED+=$'\nsupabase_migrations.schema_migrations'
fi
PLATFORM="auth.schema_migrations storage.migrations supabase_functions.migrations"
TABLES=$(src -At -d app -c "
    SELECT format('%s.%s', schemaname, tablename) FROM pg_tables
    WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")
differ=0 compared=0
for t in $TABLES; do
    if ! grep -qxF "$t" <<<"$SNAPPED"; then
        if grep -qw -- "$t" <<<"$PLATFORM"; then
            printf '  skipped  %-40s (the platform'"'"'s own, not in a snapshot)\n' "$t"
        else
            printf '  MISSING  %-40s is not in snapshot %s\n' "$t" "$SECOND"
            differ=1
        fi
        continue
    fi
    q="SELECT count(*) || ' rows, md5 ' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '-') FROM $t t"
    a=$(src -At -d app -c "$q")
    b=$(dst -At -d app_restored -c "$q" 2>&1) || b="missing ($b)"
    compared=$((compared + 1))
    if [ "$a" = "$b" ]; then
        printf '  same     %-40s %s\n' "$t" "$a"
    else
        printf '  DIFFERS  %-40s %s, restored: %s\n' "$t" "$a" "$b"
        differ=1
    fi
done
[ "$differ" = 0 ] || fail "some tables of app_restored differ from app"

echo
echo "PASS: snapshot $SECOND restored into app_restored, all $compared tables identical; the repository is in $WORK (the PostgreSQL is removed)"
