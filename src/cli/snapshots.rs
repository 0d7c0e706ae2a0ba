use serde::Serialize;
use snap::snapshot::{Snapshot, Summary};

use super::{Global, exit, output};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    select: super::select::SnapshotSelect,
    /// Only the N newest snapshots of each host and set of paths.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    latest: Option<u32>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
pub struct SnapshotJson<'a> {
    id: String,
    short_id: String,
    time: String,
    host: &'a str,
    username: &'a str,
    tags: &'a [String],
    paths: &'a [String],
    source: &'a snap::snapshot::SourceKind,
    description: String,
    parent: Option<String>,
    size: u64,
    added_bytes: u64,
    summary: &'a Summary,
    /// Set on snapshots made by `snap copy`: the original snapshot's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    copied_from: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

/// `snap backup db --json` / `snap backup storage --json`: the snapshot, the source's summary
/// under `key` (`database`, `storage`), the source's notes, and the rates.
pub fn backup_json(
    out: &snap::BackupOutcome,
    key: &str,
    dedup_ratio: Option<f64>,
    mb_per_second: f64,
) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::to_value(SnapshotJson::new(&out.snapshot, &out.warnings))?;
    v[key] = serde_json::to_value(&out.source_summary)?;
    v["notes"] = serde_json::json!(out.notes);
    v["dedup_ratio"] = serde_json::json!(dedup_ratio);
    v["mb_per_second"] = serde_json::json!(mb_per_second);
    Ok(v)
}

impl<'a> SnapshotJson<'a> {
    pub fn new(s: &'a Snapshot, warnings: &'a [String]) -> Self {
        let m = &s.manifest;
        SnapshotJson {
            id: s.id.to_hex(),
            short_id: s.id.short(),
            time: m.time.to_rfc3339(),
            host: &m.host,
            username: &m.username,
            tags: &m.tags,
            paths: &m.paths,
            source: &m.source,
            description: snap::redact::text(&m.description),
            parent: m.parent.map(|p| p.to_hex()),
            size: m.summary.total_bytes,
            added_bytes: m.summary.added_bytes,
            summary: &m.summary,
            copied_from: m.copied_from.map(|p| p.to_hex()),
            warnings,
        }
    }
}

/// The `n` newest of each group (host and set of paths, as `forget` groups), oldest first.
pub fn newest_per_group(snaps: Vec<Snapshot>, n: usize) -> Vec<Snapshot> {
    use snap::ops::forget::{GroupBy, GroupKey};
    let mut seen: std::collections::BTreeMap<GroupKey, usize> = Default::default();
    let mut keep: Vec<Snapshot> = snaps
        .into_iter()
        .rev()
        .filter(|s| {
            let count = seen
                .entry(GroupKey::of(&s.manifest, GroupBy::HostPaths))
                .or_default();
            *count += 1;
            *count <= n
        })
        .collect();
    keep.reverse();
    keep
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    let repo = g.open()?;
    let (all, damaged) = repo.snapshots_and_damaged()?;
    for (id, e) in &damaged {
        say!(
            "warning: snapshot {} cannot be read: {e} (run `snap check`)",
            id.short()
        );
    }
    let selector = a.select.selector();
    let snaps: Vec<Snapshot> = all
        .into_iter()
        .filter(|s| selector.matches(&s.manifest))
        .collect();
    let snaps = match a.latest {
        Some(n) => newest_per_group(snaps, n as usize),
        None => snaps,
    };
    if a.json {
        let v: Vec<_> = snaps.iter().map(|s| SnapshotJson::new(s, &[])).collect();
        output::json(&v)?;
        return Ok(if damaged.is_empty() {
            exit::OK
        } else {
            exit::FAILED
        });
    }
    println!(
        "{:<8}  {:<19}  {:<12}  {:<20}  {:>11}  {:>11}  paths",
        "id", "time", "host", "tags", "size", "added"
    );
    for s in &snaps {
        let m = &s.manifest;
        println!(
            "{:<8}  {:<19}  {:<12}  {:<20}  {:>11}  {:>11}  {}",
            s.id.short(),
            m.time
                .with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S"),
            m.host,
            m.tags.join(","),
            output::bytes(m.summary.total_bytes),
            output::bytes(m.summary.added_bytes),
            m.paths.join(" "),
        );
    }
    println!("{}", output::count(snaps.len() as u64, "snapshot"));
    Ok(if damaged.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
}
