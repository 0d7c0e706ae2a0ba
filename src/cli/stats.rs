//! `snap stats`: repository size, what the snapshots hold, dedup and compression ratios.

use snap::repo::lock::LockKind;

use super::{Global, exit, output};

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn ratio(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}x"))
        .unwrap_or_else(|| "n/a".into())
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    let (repo, _lock) = g.open_locked(LockKind::Shared, "stats")?;
    let s = snap::ops::stats::stats(&repo)?;
    if !g.quiet {
        for u in &s.unreadable_snapshots {
            say!(
                "warning: snapshot {} cannot be read and is not counted: {} (run `snap check`)",
                u.id,
                u.error
            );
        }
        if s.missing_chunks > 0 {
            say!(
                "warning: {} chunks referenced by snapshots are not in any pack the index knows (run `snap check`)",
                s.missing_chunks
            );
        }
    }
    let code = if s.unreadable_snapshots.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    };
    if a.json {
        output::json(&s)?;
        return Ok(code);
    }
    let b = output::bytes;
    println!(
        "repository        {} in {} objects",
        b(s.repo_bytes),
        s.objects
    );
    println!("packs             {} ({})", s.packs, b(s.pack_bytes));
    println!("indexed chunks    {}", s.indexed_chunks);
    println!("snapshots         {} ({} files)", s.snapshots, s.files);
    println!(
        "logical size      {}  (all files of all snapshots)",
        b(s.logical_bytes)
    );
    println!(
        "unique data       {} chunks, {} raw, {} stored",
        s.unique_chunks,
        b(s.unique_raw_bytes),
        b(s.unique_stored_bytes)
    );
    println!(
        "tree metadata     {} chunks, {} stored",
        s.tree_chunks,
        b(s.tree_stored_bytes)
    );
    println!(
        "dedup ratio       {}  (logical / unique raw)",
        ratio(s.dedup_ratio)
    );
    println!(
        "compression ratio {}  (unique raw / unique stored)",
        ratio(s.compression_ratio)
    );
    println!(
        "unreferenced      {} chunks, {} stored  (removable by `snap prune`)",
        s.unreferenced_chunks,
        b(s.unreferenced_bytes)
    );
    if s.missing_chunks > 0 {
        println!("missing           {} chunks", s.missing_chunks);
    }
    Ok(code)
}
