//! `snap repair …`: rebuild derived data.

use snap::ops::repair::repair_index;
use snap::repo::lock::LockKind;

use super::{Global, exit, output};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Rebuild the local index cache from the pack trailers alone (the repository is not changed).
    #[command(after_long_help = "\
Deletes nothing in the repository and writes nothing to it except a shared lock while it runs. \
Exit status: 0 when every pack was indexed, 1 when some pack's trailer could not be read (each \
is named; run `snap check` for the snapshots affected) or the rebuild failed.")]
    Index(IndexArgs),
}

#[derive(clap::Args)]
pub struct IndexArgs {
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(g: &Global, c: &Command) -> anyhow::Result<u8> {
    match c {
        Command::Index(a) => index(g, a),
    }
}

#[derive(serde::Serialize)]
struct Unreadable<'a> {
    pack: &'a str,
    message: &'a str,
}

fn index(g: &Global, a: &IndexArgs) -> anyhow::Result<u8> {
    let (repo, _lock) = g.open_locked(LockKind::Shared, "repair index")?;
    let path = repo.index_path().to_path_buf();
    let r = repair_index(&repo, &path)?;
    if a.json {
        let unreadable: Vec<Unreadable> = r
            .unreadable
            .iter()
            .map(|(p, m)| Unreadable {
                pack: p,
                message: m,
            })
            .collect();
        output::json(&serde_json::json!({
            "index": r.path,
            "packs": r.packs,
            "chunks": r.chunks,
            "recreated": r.recreated,
            "unreadable": unreadable,
        }))?;
    } else {
        for (pack, why) in &r.unreadable {
            say!("error: pack {pack} is unreadable and was not indexed: {why}");
        }
        tell!(
            "rebuilt the local index {}: {} packs, {} chunks indexed{}",
            r.path.display(),
            r.packs,
            r.chunks,
            if r.recreated {
                " (the damaged file was replaced)"
            } else {
                ""
            }
        );
        if !r.unreadable.is_empty() {
            tell!(
                "{} packs could not be read; run `snap check` to see which snapshots they affect",
                r.unreadable.len()
            );
        }
    }
    Ok(if r.unreadable.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
}
