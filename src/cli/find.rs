use serde::Serialize;
use snap::ops::find::{Matcher, find};
use snap::snapshot::EntryKind;

use super::{Global, exit, output};

#[derive(clap::Args)]
#[command(after_help = "\
A pattern without a `/` matches an entry's name, one with a `/` the whole path inside the
snapshot (`*` stays within one component, `**` crosses them). Quote patterns for the shell.

Examples:
  snap find '*.sql' --kind db                 # every dump file of every database snapshot
  snap find 'srv/data/**/invoice-*.pdf' --latest 1
  snap find -i readme.md --host web-1")]
pub struct Args {
    /// Glob patterns (any may match).
    #[arg(required = true, value_name = "PATTERN")]
    patterns: Vec<String>,
    /// Match without regard to case.
    #[arg(long, short = 'i')]
    ignore_case: bool,
    /// Search only the N newest snapshots of each host and set of paths.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    latest: Option<u32>,
    #[command(flatten)]
    select: super::select::SnapshotSelect,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct FoundJson<'a> {
    snapshot: String,
    time: String,
    host: &'a str,
    paths: &'a [String],
    entries: Vec<EntryJson<'a>>,
}

#[derive(Serialize)]
struct EntryJson<'a> {
    path: &'a str,
    #[serde(rename = "type")]
    kind: EntryKind,
    size: u64,
    mtime: String,
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    let matcher = Matcher::new(&a.patterns, a.ignore_case)?;
    let (repo, _lock) = g.open_locked(snap::repo::lock::LockKind::Shared, "find")?;
    let (all, damaged) = repo.snapshots_and_damaged()?;
    for (id, e) in &damaged {
        say!(
            "warning: snapshot {} cannot be read and was not searched: {e} (run `snap check`)",
            id.short()
        );
    }
    let selector = a.select.selector();
    let chosen: Vec<_> = all
        .into_iter()
        .filter(|s| selector.matches(&s.manifest))
        .collect();
    let chosen = match a.latest {
        Some(n) => super::snapshots::newest_per_group(chosen, n as usize),
        None => chosen,
    };
    let found = find(&repo, &chosen, &matcher)?;
    if a.json {
        let v: Vec<FoundJson> = found.iter().map(found_json).collect();
        output::json(&v)?;
    } else {
        print_found(&found, chosen.len(), g.quiet);
    }
    Ok(if damaged.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
}

fn found_json(f: &snap::ops::find::Found) -> FoundJson<'_> {
    let m = &f.snapshot.manifest;
    FoundJson {
        snapshot: f.snapshot.id.to_hex(),
        time: m.time.to_rfc3339(),
        host: &m.host,
        paths: &m.paths,
        entries: f
            .entries
            .iter()
            .map(|e| EntryJson {
                path: &e.path,
                kind: e.kind,
                size: e.size,
                mtime: chrono::DateTime::from_timestamp_nanos(e.mtime_ns).to_rfc3339(),
            })
            .collect(),
    }
}

fn print_found(found: &[snap::ops::find::Found], searched: usize, quiet: bool) {
    for f in found {
        let m = &f.snapshot.manifest;
        println!(
            "snapshot {} of {} (host {}, {}):",
            f.snapshot.id.short(),
            m.time
                .with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S"),
            m.host,
            m.paths.join(" ")
        );
        for e in &f.entries {
            println!(
                "  {} {:>12} {} /{}",
                output::mode(e.kind, e.mode),
                e.size,
                output::time_ns(e.mtime_ns),
                output::path(&e.path)
            );
        }
    }
    if !quiet {
        let hits: usize = found.iter().map(|f| f.entries.len()).sum();
        say!(
            "{} in {} of {} searched",
            output::count_irregular(hits as u64, "match", "matches"),
            found.len(),
            output::count(searched as u64, "snapshot")
        );
    }
}
