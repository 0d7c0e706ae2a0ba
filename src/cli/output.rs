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
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

pub fn time_ns(ns: i64) -> String {
    chrono::DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .map(|t| {
        t.with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    })
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
    for (shift, special, set, unset) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
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
    // Bytes that are not UTF-8 are stored escaped (repo-format.md §7.2): shown as `\xNN`.
    let p = snap::snapshot::name::display(p);
    if !p.chars().any(char::is_control) {
        return p;
    }
    std::borrow::Cow::Owned(
        p.chars()
            .flat_map(|c| {
                if c.is_control() {
                    c.escape_default().collect::<Vec<_>>()
                } else {
                    vec![c]
                }
            })
            .collect(),
    )
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

/// A dedup ratio: `4.2x`, or `∞` when nothing new was stored.
pub fn ratio(r: Option<f64>) -> String {
    r.map(|d| format!("{d:.1}x"))
        .unwrap_or_else(|| "∞ (nothing new)".into())
}

/// `read 1.20 MiB in 3.1 s (0.4 MB/s); added 300.00 KiB to the repository (dedup ratio 4.2x)`:
/// the one line every backup summary ends with.
pub fn backup_line(f: &snap::ops::summary::BackupFigures) -> String {
    format!(
        "read {} in {:.1} s ({:.1} MB/s); added {} to the repository (dedup ratio {})",
        bytes(f.bytes_read),
        f.duration_ms as f64 / 1000.0,
        f.mb_per_s,
        bytes(f.bytes_added),
        ratio(f.dedup_ratio),
    )
}

/// The rows of a backup's sources: `db/app  database  8 tables  12 files  1.20 MiB  0.4 MB/s`.
pub fn source_rows(f: &snap::ops::summary::BackupFigures) -> Vec<String> {
    f.sources
        .iter()
        .map(|s| {
            let mut counts = Vec::new();
            if let Some(t) = s.tables {
                counts.push(format!("{t} tables"));
            }
            if let Some(n) = s.files {
                counts.push(format!("{n} files"));
            }
            format!(
                "{:<24} {:<9} {:<22} {:>12} in {:.1} s ({:.1} MB/s)",
                path(&s.path),
                s.kind,
                counts.join(", "),
                bytes(s.bytes),
                s.duration_ms as f64 / 1000.0,
                s.mb_per_s
            )
        })
        .collect()
}

/// Ask `question` on the terminal (stderr) and read a yes/no answer; anything but y/yes is no.
pub fn confirm(question: &str) -> std::io::Result<bool> {
    use std::io::{BufRead, Write};
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
