#!/usr/bin/env bash
# A real backup and restore of files and a streamed dump with snap, from nothing, no database
# needed: generates a small data set (a SQL dump and a directory of files), creates a local
# repository, backs both up, changes the data, backs up again, restores, and compares. Exits
# non-zero on any mismatch; prints PASS at the end.
#   1. the snap binary: $SNAP_BIN, else `cargo build --release --locked` (examples/lib/snap-bin.sh),
#   2. data, a repository, snapshots, restore and comparisons, all in one work directory.
# Optional argument: the work directory (default: a new temp dir, kept afterwards).
# For the main job — a database backed up and restored into a database — see
# examples/db-quickstart.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
unset SNAP_REPO SNAP_PASSWORD SNAP_PASSWORD_FILE SNAP_PASSWORD_COMMAND SNAP_CACHE_DIR SNAP_CONFIG

# say, run, fail, short_id: examples/lib/common.sh
# shellcheck source=examples/lib/common.sh
source "$ROOT/examples/lib/common.sh"

# shellcheck source=examples/lib/snap-bin.sh
source "$ROOT/examples/lib/snap-bin.sh"

WORK="${1:-$(mktemp -d -t snap-quickstart.XXXXXX)}"
mkdir -p "$WORK"
export SNAP_REPO="$WORK/repo" SNAP_CACHE_DIR="$WORK/cache"
export SNAP_PASSWORD="quickstart-only-password"   # use SNAP_PASSWORD_FILE for real repositories

say "generating data in $WORK/data"
rm -rf "$WORK/data" "$WORK/restore"
mkdir -p "$WORK/data/docs" "$WORK/data/bin"
python3 - "$WORK/data" <<'PY'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(7)
with open(os.path.join(root, "shop.sql"), "w") as f:
    f.write("COPY public.orders (id, customer, total, created_at) FROM stdin;\n")
    for i in range(200_000):
        f.write(f"{i}\tcustomer{rnd.randrange(5000)}@example.com\t{rnd.randrange(100000)/100}\t2026-11-{1+i%28:02d} 12:00:00+00\n")
    f.write("\\.\n")
for i in range(50):
    with open(os.path.join(root, "docs", f"note {i}.txt"), "w") as f:
        f.write(("line %d of a note\n" % i) * rnd.randrange(10, 2000))
with open(os.path.join(root, "bin", "random.bin"), "wb") as f:
    f.write(os.urandom(4 << 20))
PY
ln -sf docs/"note 1.txt" "$WORK/data/latest-note"
cp "$WORK/data/shop.sql" "$WORK/shop.sql.first"

say "snap init (repository $SNAP_REPO)"
run "$SNAP" init
say "snap backup (files)"
FIRST=$("$SNAP" backup "$WORK/data" --tag env=demo --json | short_id)
echo "files snapshot $FIRST"
say "snap backup --command (a dump streamed from a child process)"
DUMP=$("$SNAP" backup --command "cat '$WORK/data/shop.sql'" --stdin-name db/shop.sql --json | short_id)
echo "dump snapshot $DUMP"
say "change a few rows and a file, back up again (only the changes are added)"
sed -i 's/^17\t/17\tCHANGED-/' "$WORK/data/shop.sql"
echo "appended" >>"$WORK/data/docs/note 3.txt"
SECOND=$("$SNAP" backup "$WORK/data" --tag env=demo --json | short_id)
echo "files snapshot $SECOND"
[ -n "$FIRST" ] && [ -n "$DUMP" ] && [ -n "$SECOND" ] || fail "a backup printed no snapshot id"
run "$SNAP" snapshots
say "snap diff $FIRST $SECOND"
run "$SNAP" diff "$FIRST" "$SECOND" | tee "$WORK/diff.txt"
for changed in shop.sql "docs/note 3.txt"; do
    grep -qF "$changed" "$WORK/diff.txt" || fail "snap diff does not name $changed"
done

say "snap restore $SECOND --target $WORK/restore"
run "$SNAP" restore "$SECOND" --target "$WORK/restore"
diff -r "$WORK/data" "$WORK/restore$WORK/data" || fail "the restored tree differs from the source"
echo "the restored tree is identical to the source"
say "snap cat $DUMP db/shop.sql (the streamed dump, as it was)"
"$SNAP" cat "$DUMP" db/shop.sql | cmp - "$WORK/shop.sql.first" ||
    fail "snap cat $DUMP db/shop.sql differs from the dump that was backed up"
echo "the dump is byte-identical"
du -sh "$WORK/data" "$WORK/repo"
echo
echo "PASS: everything is in $WORK"
