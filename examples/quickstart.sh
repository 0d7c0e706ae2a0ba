#!/usr/bin/env bash
# A real backup and restore with snap, from nothing: builds snap, generates a small data set
# (a SQL dump and a directory of files), creates a local repository, backs both up, changes
# the data, backs up again, restores, and compares. Everything lives in one temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
SNAP="$PWD/target/release/snap"
WORK="${1:-$(mktemp -d -t snap-quickstart.XXXXXX)}"
export SNAP_REPO="$WORK/repo" SNAP_CACHE_DIR="$WORK/cache"
export SNAP_PASSWORD="quickstart-only-password"   # use SNAP_PASSWORD_FILE for real repositories

echo "== generating data in $WORK/data"
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

echo "== snap init"
"$SNAP" init
echo "== snap backup (files)"
"$SNAP" backup "$WORK/data" --tag env=demo
echo "== snap backup --command (a dump streamed from a child process)"
"$SNAP" backup --command "cat '$WORK/data/shop.sql'" --stdin-name db/shop.sql
echo "== change a few rows and a file, back up again"
sed -i 's/^17\t/17\tCHANGED-/' "$WORK/data/shop.sql"
echo "appended" >> "$WORK/data/docs/note 3.txt"
"$SNAP" backup "$WORK/data" --tag env=demo
"$SNAP" snapshots
echo "== snap restore latest files snapshot"
FILES_SNAP=$("$SNAP" snapshots --json | python3 -c 'import json,sys; print([s for s in json.load(sys.stdin) if s["source"]=="files"][-1]["short_id"])')
"$SNAP" restore "$FILES_SNAP" --target "$WORK/restore"
diff -r "$WORK/data" "$WORK/restore$WORK/data" && echo "restored tree is identical to the source"
"$SNAP" cat latest db/shop.sql | head -c 200 >/dev/null
du -sh "$WORK/data" "$WORK/repo"
echo "done: everything is in $WORK"
