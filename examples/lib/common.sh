# Sourced by every example: how they print steps and stop on a mismatch.

# A heading for the next step.
say() { printf '\n== %s\n' "$*"; }
# Show a command, then run it.
run() {
    printf '+ %s\n' "$*"
    "$@"
}
# Stop the example with a message (exit 1).
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
# The short id of the snapshot a `snap backup --json` printed.
short_id() { sed -n 's/^ *"short_id": *"\([0-9a-f]*\)".*/\1/p' | head -n 1; }
