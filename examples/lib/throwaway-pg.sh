# Sourced by the examples: starts a throwaway PostgreSQL in a temp dir; every cluster started
# is stopped and deleted when the script exits. Set PG_TMP_PREFIX (temp dir name) and
# PG_EXTRA_OPTS (extra server -c options) before sourcing; afterwards PGBIN (first in PATH),
# PGDIR ($PGDIR/sock is the socket dir), PORT and `as_server CMD…` (runs CMD as the server's OS
# user) are set. `throwaway_pg_start` starts one more cluster (e.g. a restore target on another
# "server") and sets PGDIR and PORT to it.
# Needs `say` (defined by the example). initdb refuses to run as root: as root the server runs as
# the `postgres` OS user.

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

if [ "$(id -u)" -eq 0 ]; then
    id -u postgres >/dev/null 2>&1 || { echo "no 'postgres' OS user (install postgresql)" >&2; exit 1; }
    if command -v runuser >/dev/null; then
        as_server() { (cd "$PGDIR" && runuser -u postgres -- "$@"); }
    else
        as_server() { (cd "$PGDIR" && setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"); }
    fi
else
    as_server() { (cd "$PGDIR" && "$@"); }
fi

PG_DIRS=()      # every cluster's temp dir
PG_RUNNING=()   # the data dirs of the clusters that started
cleanup() {
    local rc=$? d
    for d in "${PG_RUNNING[@]}"; do
        echo "== stopping the throwaway PostgreSQL in $(dirname "$d")"
        PGDIR=$(dirname "$d") as_server "$PGBIN/pg_ctl" -D "$d" -m immediate -s stop >/dev/null 2>&1 || true
    done
    for d in "${PG_DIRS[@]}"; do rm -rf "$d"; done
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

throwaway_pg_start() {
    PGDIR=$(mktemp -d "/tmp/${PG_TMP_PREFIX:-snap-example-pg}.XXXXXX")
    PG_DIRS+=("$PGDIR")
    [ "$(id -u)" -ne 0 ] || chown postgres: "$PGDIR"
    say "starting a throwaway PostgreSQL $(basename "$(dirname "$PGBIN")") in $PGDIR"
    as_server mkdir "$PGDIR/sock"
    as_server "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth-local=trust --auth-host=trust \
        --encoding=UTF8 --locale=C --no-sync --no-instructions >"$PGDIR/initdb.log" 2>&1 ||
        { cat "$PGDIR/initdb.log" >&2; exit 1; }
    PORT=""
    local p
    for _ in 1 2 3 4 5; do
        p=$((20000 + RANDOM % 30000))
        # Skip ports something already listens on.
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
        if as_server "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgres.log" -w -t 60 -s \
            -o "-k '$PGDIR/sock' -p $p -c listen_addresses=127.0.0.1 -c fsync=off ${PG_EXTRA_OPTS:-}" start; then
            PORT=$p
            PG_RUNNING+=("$PGDIR/data")
            break
        fi
    done
    if [ -z "$PORT" ]; then
        echo "could not start PostgreSQL; its log:" >&2
        cat "$PGDIR/postgres.log" >&2 || true
        exit 1
    fi
}

throwaway_pg_start
