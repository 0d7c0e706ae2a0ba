use std::path::PathBuf;

use snap::ops::{RestoreOptions, restore};

use super::{Global, exit, output};

#[derive(clap::Args)]
pub struct Args {
    /// Snapshot id (prefix) or `latest`.
    snapshot: String,
    /// Directory to restore into (created if missing; must be empty unless --overwrite).
    #[arg(long)]
    target: PathBuf,
    /// Restore only this path and what lies below it (repeatable).
    #[arg(long = "include")]
    includes: Vec<String>,
    /// Restore into a non-empty directory, replacing entries at restored paths.
    #[arg(long)]
    overwrite: bool,
    #[arg(long)]
    json: bool,
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    let (repo, _lock) = g.open_locked(snap::repo::lock::LockKind::Shared, "restore")?;
    let snap = repo.find_snapshot(&a.snapshot)?;
    let opts = RestoreOptions { target: a.target.clone(), includes: a.includes.clone(), overwrite: a.overwrite };
    let started = std::time::Instant::now();
    let s = restore(&repo, &snap, &opts, &output::Warnings { quiet: g.quiet })?;
    if a.json {
        output::json(&s)?;
    } else if !g.quiet {
        let secs = started.elapsed().as_secs_f64();
        println!(
            "restored snapshot {} to {}: {} files, {} dirs, {} symlinks, {} ({:.1} MB/s)",
            snap.id.short(),
            a.target.display(),
            s.files,
            s.dirs,
            s.symlinks,
            output::bytes(s.bytes),
            s.bytes as f64 / 1e6 / secs.max(0.001)
        );
    }
    Ok(exit::OK)
}
