# Sourced by every example: sets SNAP to the snap binary to run.
#   * $SNAP_BIN, when set (e.g. SNAP_BIN=~/.cargo/bin/snap, or the binary a test built);
#   * otherwise `cargo build --release --locked --quiet` in the checkout, and the binary where
#     cargo put it: `cargo metadata`'s target_directory (which honours CARGO_TARGET_DIR and
#     .cargo/config.toml) + /release/snap.
# Needs ROOT (the checkout) and `say` (examples/lib/common.sh).

if [ -n "${SNAP_BIN:-}" ]; then
    [ -x "$SNAP_BIN" ] || { echo "SNAP_BIN=$SNAP_BIN is not an executable file" >&2; exit 1; }
    SNAP=$SNAP_BIN
else
    command -v cargo >/dev/null ||
        { echo "cargo is not installed: install Rust (https://rustup.rs), or set SNAP_BIN to a snap binary" >&2; exit 1; }
    say "building snap (cargo build --release --locked; SNAP_BIN=path/to/snap skips this)"
    (cd "$ROOT" && cargo build --release --locked --quiet)
    # (a JSON string; paths with a quote or backslash in them are not supported here)
    SNAP_TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
        grep -o '"target_directory":"[^"]*"' | sed 's/^"target_directory":"//; s/"$//')
    SNAP="$SNAP_TARGET_DIR/release/snap"
    [ -x "$SNAP" ] || { echo "cargo build did not leave a binary at $SNAP" >&2; exit 1; }
fi
echo "snap: $SNAP ($("$SNAP" --version))"
