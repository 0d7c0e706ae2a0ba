//! Shared rendering: sizes, times, modes, JSON.

use serde::Serialize;

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.2} {}", UNITS[u]) }
}

pub fn time_ns(ns: i64) -> String {
    chrono::DateTime::from_timestamp(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000) as u32)
        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "?".into())
}

pub fn mode(kind: snap::snapshot::EntryKind, m: u32) -> String {
    use snap::snapshot::EntryKind::*;
    let mut s = String::with_capacity(10);
    s.push(match kind {
        Dir => 'd',
        Symlink => 'l',
        File => '-',
    });
    // (shift, special bit, letter when also executable / when not)
    for (shift, special, set, unset) in [(6, 0o4000, 's', 'S'), (3, 0o2000, 's', 'S'), (0, 0o1000, 't', 'T')] {
        let b = (m >> shift) & 7;
        s.push(if b & 4 != 0 { 'r' } else { '-' });
        s.push(if b & 2 != 0 { 'w' } else { '-' });
        let x = b & 1 != 0;
        s.push(match (m & special != 0, x) {
            (true, true) => set,
            (true, false) => unset,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// A path for human output: control characters (newlines, tabs…) escaped so one entry is
/// one line.
pub fn path(p: &str) -> std::borrow::Cow<'_, str> {
    if p.chars().any(char::is_control) {
        std::borrow::Cow::Owned(p.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect())
    } else {
        std::borrow::Cow::Borrowed(p)
    }
}

#[cfg(test)]
mod tests {
    use snap::snapshot::EntryKind;

    #[test]
    fn modes_and_paths() {
        assert_eq!(super::mode(EntryKind::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(super::mode(EntryKind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(super::mode(EntryKind::File, 0o2640), "-rw-r-S---");
        assert_eq!(super::mode(EntryKind::Symlink, 0o777), "lrwxrwxrwx");
        assert_eq!(super::path("a\nb"), "a\\nb");
        assert_eq!(super::path("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(super::path("plain ✓"), "plain ✓");
    }
}

pub fn json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Progress that prints warnings to stderr (unless quiet).
pub struct Warnings {
    pub quiet: bool,
}

impl snap::progress::Progress for Warnings {
    fn warn(&self, message: &str) {
        if !self.quiet {
            eprintln!("warning: {message}");
        }
    }
}
