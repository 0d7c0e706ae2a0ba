//! `snap check`: render the findings of [`snap::ops::check`].

use snap::ops::check::{CheckOptions, CheckReport, DataSubset, Finding, check};
use snap::repo::lock::LockKind;

use super::{Global, exit, output};

/// Information lines of one kind shown before the rest are summarised (all are in --json).
const INFO_PER_KIND: usize = 10;

#[derive(clap::Args)]
#[command(after_long_help = "\
The structure check reads every key file, snapshot manifest, pack trailer and tree, and verifies \
that every chunk a snapshot references is listed by a readable pack. It also compares the local \
index cache with the pack trailers.

check never changes the repository: by default the only thing it writes is its own shared lock \
(locks/<id>, removed when it ends); with --no-lock it writes nothing at all. The local index is \
opened read-only.

Exit status: 0 when no problem was found (warnings about the local index cache and information \
lines do not count), 1 when any problem was found or the check could not run, 3 when the \
repository is locked exclusively (by prune).")]
pub struct Args {
    /// Also read every pack in full: verify its hash, and decrypt, decompress and re-hash every
    /// chunk (slow, complete).
    #[arg(long, conflicts_with = "read_data_subset")]
    read_data: bool,
    /// Like --read-data, for some packs only: `n/m` (a fixed slice: 1/7 … 7/7 together read
    /// every pack once), `P%` (a random P percent of the packs) or a size such as `500MiB`
    /// (random packs until that many bytes).
    #[arg(long, value_name = "SUBSET", value_parser = parse_subset)]
    read_data_subset: Option<DataSubset>,
    /// Take no lock (check then writes nothing at all to the repository).
    #[arg(long)]
    no_lock: bool,
    /// Print the findings and summary as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_subset(s: &str) -> Result<DataSubset, String> {
    s.parse()
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    let (repo, lock) = if a.no_lock {
        (g.open()?, None)
    } else {
        let (repo, lock) = g.open_locked(LockKind::Shared, "check")?;
        (repo, Some(lock))
    };
    let opts = CheckOptions {
        read_data: if a.read_data {
            Some(DataSubset::All)
        } else {
            a.read_data_subset.clone()
        },
        index_cache: Some(repo.index_path().to_path_buf()),
        own_lock: lock.as_ref().map(|l| l.name().to_string()),
    };
    let progress = super::progress::Bars::bars_only(g.quiet);
    let report = check(&repo, &opts, &progress)?;
    drop(lock);
    if a.json {
        output::json(&report)?;
    } else {
        render(&report, g.quiet);
    }
    Ok(if report.is_ok() {
        exit::OK
    } else {
        exit::FAILED
    })
}

fn line(level: &str, f: &Finding) -> String {
    let mut s = format!(
        "{level} [{}]: {}",
        f.kind.as_str(),
        output::path(&f.message)
    );
    if !f.snapshots.is_empty() {
        let ids: Vec<String> = f.snapshots.iter().map(|i| i.short()).collect();
        s.push_str(&format!(
            "; snapshot{} {}",
            if ids.len() == 1 { "" } else { "s" },
            ids.join(", ")
        ));
    }
    if !f.paths.is_empty() {
        let paths: Vec<String> = f
            .paths
            .iter()
            .map(|p| output::path(p).into_owned())
            .collect();
        s.push_str(&format!(
            "; path{} {}",
            if paths.len() == 1 { "" } else { "s" },
            paths.join(", ")
        ));
    }
    if f.paths_omitted > 0 {
        s.push_str(&format!(" and {} more", f.paths_omitted));
    }
    s
}

fn render(r: &CheckReport, quiet: bool) {
    for f in &r.problems {
        tell!("{}", line("problem", f));
    }
    for f in &r.warnings {
        tell!("{}", line("warning", f));
    }
    if !quiet {
        let mut shown: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
        for f in &r.info {
            let n = shown.entry(f.kind).or_default();
            *n += 1;
            if *n <= INFO_PER_KIND {
                tell!("{}", line("info", f));
            }
        }
        for (kind, n) in shown {
            if n > INFO_PER_KIND {
                tell!(
                    "info [{}]: … and {} more (see --json)",
                    kind.as_str(),
                    n - INFO_PER_KIND
                );
            }
        }
    }
    let s = &r.summary;
    tell!(
        "checked {}, {} ({}, {}), {} ({}), {} ({} referenced)",
        output::count(s.key_files, "key file"),
        output::count(s.snapshots, "snapshot"),
        output::count(s.trees, "tree"),
        output::count_irregular(s.entries, "entry", "entries"),
        output::count(s.packs, "pack"),
        output::bytes(s.pack_bytes),
        output::count(s.chunks, "chunk"),
        s.chunks_referenced,
    );
    if s.read_data != "off" {
        tell!(
            "read data ({}): {}, {}, {} in {:.1} s ({})",
            s.read_data,
            output::count(s.packs_read, "pack"),
            output::bytes(s.bytes_read),
            output::count(s.blobs_read, "blob"),
            s.read_data_ms as f64 / 1000.0,
            output::rate(s.bytes_read, s.read_data_ms),
        );
    }
    let warnings = match s.warnings {
        0 => String::new(),
        1 => " (1 warning about the local index)".into(),
        n => format!(" ({n} warnings about the local index)"),
    };
    match s.problems {
        0 => tell!("no problems found{warnings}"),
        1 => tell!("1 problem found{warnings}"),
        n => tell!("{n} problems found{warnings}"),
    }
}
