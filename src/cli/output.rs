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

pub fn json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// `1 file`, `2 files`: a count with its noun in the right number (nouns that add `s`).
pub fn count(n: u64, noun: &str) -> String {
    count_irregular(n, noun, &format!("{noun}s"))
}

/// `1 entry`, `3 entries`: [`count`] for nouns whose plural is not `…s`.
pub fn count_irregular(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A transfer rate in binary units, as the progress bars show it: `12.30 MiB/s`.
pub fn rate(bytes: u64, ms: u64) -> String {
    if ms == 0 {
        return "—".into();
    }
    let per_s = (bytes as f64 * 1000.0 / ms as f64) as u64;
    format!("{}/s", self::bytes(per_s))
}

/// A dedup ratio worth showing: `dedup ratio 4.2x`; `nothing new stored` when nothing was
/// added; nothing when the new bytes are mostly the snapshot's own metadata (a ratio well below
/// 1, e.g. an incremental backup that read a few bytes), where a ratio would mislead.
pub fn ratio(r: Option<f64>) -> Option<String> {
    match r {
        None => Some("nothing new stored".into()),
        Some(d) if d >= 0.95 => Some(format!("dedup ratio {d:.1}x")),
        Some(_) => None,
    }
}

/// `read 1.20 MiB in 3.1 s (0.39 MiB/s); added 300.00 KiB to the repository (dedup ratio 4.2x)`:
/// the one line every backup summary ends with.
pub fn backup_line(f: &snap::ops::summary::BackupFigures) -> String {
    let ratio = ratio(f.dedup_ratio)
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    format!(
        "read {} in {:.1} s ({}); added {} to the repository{ratio}",
        bytes(f.bytes_read),
        f.duration_ms as f64 / 1000.0,
        rate(f.bytes_read, f.duration_ms),
        bytes(f.bytes_added),
    )
}

/// The rows of a backup's sources: `db/app  database  8 tables  12 files  1.20 MiB  0.4 MiB/s`.
pub fn source_rows(f: &snap::ops::summary::BackupFigures) -> Vec<String> {
    f.sources
        .iter()
        .map(|s| {
            let mut counts = Vec::new();
            if let Some(t) = s.tables {
                counts.push(count(t, "table"));
            }
            if let Some(n) = s.files {
                counts.push(count(n, "file"));
            }
            format!(
                "{:<24} {:<9} {:<22} {:>12} in {:.1} s ({})",
                path(&s.path),
                s.kind,
                counts.join(", "),
                bytes(s.bytes),
                s.duration_ms as f64 / 1000.0,
                rate(s.bytes, s.duration_ms)
            )
        })
        .collect()
}

/// A usage error as clap renders it, without the global options in its `Usage:` line: clap lists
/// options set from the environment (SNAP_REPO, SNAP_PASSWORD_FILE…) there as if they had to
/// be typed, next to what is really missing.
pub fn usage_error(e: &clap::Error) -> String {
    const GLOBAL: [&str; 4] = [
        " --repo <REPO>",
        " --password-file <PASSWORD_FILE>",
        " --password-command <PASSWORD_COMMAND>",
        " --cache-dir <CACHE_DIR>",
    ];
    let text = e.render().to_string();
    text.split_inclusive('\n')
        .map(|line| {
            if line.starts_with("Usage: ") {
                GLOBAL
                    .iter()
                    .fold(line.to_string(), |l, g| l.replacen(g, "", 1))
            } else {
                line.to_string()
            }
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

    #[test]
    fn counts_rates_and_ratios() {
        assert_eq!(super::count(1, "file"), "1 file");
        assert_eq!(super::count(0, "file"), "0 files");
        assert_eq!(super::count_irregular(3, "entry", "entries"), "3 entries");
        assert_eq!(super::rate(3 * 1024 * 1024, 1000), "3.00 MiB/s");
        assert_eq!(super::ratio(None).as_deref(), Some("nothing new stored"));
        assert_eq!(
            super::ratio(Some(4.25)).as_deref(),
            Some("dedup ratio 4.2x")
        );
        assert_eq!(
            super::ratio(Some(0.9999)).as_deref(),
            Some("dedup ratio 1.0x")
        );
        assert_eq!(super::ratio(Some(0.01)), None);
    }
}
