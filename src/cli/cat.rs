use std::io::Write;

use snap::snapshot::EntryKind;

use super::{Global, exit};

#[derive(clap::Args)]
pub struct Args {
    /// Snapshot id (prefix) or `latest`.
    snapshot: String,
    /// Path of the file inside the snapshot.
    path: String,
    #[command(flatten)]
    select: super::select::SnapshotSelect,
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    let (repo, _lock) = g.open_locked(snap::repo::lock::LockKind::Shared, "cat")?;
    let implied = super::select::implied_paths([a.path.as_str()]);
    let snap = super::select::choose(&repo, &a.snapshot, &a.select, &implied, g.quiet)?;
    let tree = repo.load_tree(&snap.manifest)?;
    let path = a.path.trim_matches('/');
    let e = tree
        .get(path)
        .ok_or_else(|| snap::Error::PathNotInSnapshot {
            snapshot: snap.id.short(),
            path: path.into(),
        })?;
    if e.kind != EntryKind::File {
        anyhow::bail!("/{path} is not a file in snapshot {}", snap.id.short());
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    repo.write_file_to(&e.chunks, &mut out)?;
    out.flush()?;
    Ok(exit::OK)
}
