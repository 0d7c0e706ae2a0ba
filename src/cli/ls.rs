use serde::Serialize;
use snap::snapshot::{Entry, EntryKind};

use super::{Global, exit, output};

#[derive(clap::Args)]
pub struct Args {
    /// Snapshot id (prefix) or `latest`.
    snapshot: String,
    /// Only entries at or below this path.
    path: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    select: super::select::SnapshotSelect,
}

#[derive(Serialize)]
struct EntryJson<'a> {
    path: &'a str,
    #[serde(rename = "type")]
    kind: EntryKind,
    mode: String,
    size: u64,
    mtime: String,
    uid: u32,
    gid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    chunks: usize,
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    let (repo, _lock) = g.open_locked(snap::repo::lock::LockKind::Shared, "ls")?;
    let implied = super::select::implied_paths(a.path.as_deref());
    let quiet = g.quiet || a.json;
    let snap = super::select::choose(&repo, &a.snapshot, &a.select, &implied, quiet)?;
    let tree = repo.load_tree(&snap.manifest)?;
    let base = a.path.as_deref().unwrap_or("").trim_matches('/');
    if !base.is_empty() && tree.get(base).is_none() {
        anyhow::bail!(snap::Error::PathNotInSnapshot {
            snapshot: snap.id.short(),
            path: base.into()
        });
    }
    let entries: Vec<&Entry> = tree.under(base).collect();
    if a.json {
        let v: Vec<_> = entries
            .iter()
            .map(|e| EntryJson {
                path: &e.path,
                kind: e.kind,
                mode: format!("{:04o}", e.mode),
                size: e.size,
                mtime: chrono::DateTime::from_timestamp_nanos(e.mtime_ns).to_rfc3339(),
                uid: e.uid,
                gid: e.gid,
                target: e.target.as_deref(),
                chunks: e.chunks.len(),
            })
            .collect();
        output::json(&v)?;
        return Ok(exit::OK);
    }
    for e in entries {
        let link = e
            .target
            .as_ref()
            .map(|t| format!(" -> {}", output::path(t)))
            .unwrap_or_default();
        println!(
            "{} {:>5} {:>5} {:>12} {} /{}{}",
            output::mode(e.kind, e.mode),
            e.uid,
            e.gid,
            e.size,
            output::time_ns(e.mtime_ns),
            output::path(&e.path),
            link
        );
    }
    Ok(exit::OK)
}
