//! `snap unlock`: remove stale locks (or all of them with --remove-all), and say what is left.

use serde::Serialize;
use snap::repo::lock::{self, FoundLock, LockInfo};

use super::{Global, exit, output};

#[derive(clap::Args)]
pub struct Args {
    /// Remove every lock, including live ones. Only when you are sure no other snap process is
    /// using the repository: a running backup or prune then loses its protection.
    #[arg(long)]
    remove_all: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct LockJson<'a> {
    name: &'a str,
    stale: bool,
    #[serde(flatten)]
    info: Option<&'a LockInfo>,
    /// Why the lock file cannot be read, if it cannot (such locks count as stale).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

impl<'a> LockJson<'a> {
    fn new(l: &'a FoundLock) -> Self {
        LockJson {
            name: &l.name,
            stale: l.stale,
            info: l.info.as_ref().ok(),
            error: l.info.as_ref().err().map(String::as_str),
        }
    }
}

fn describe(l: &FoundLock) -> String {
    let what = match &l.info {
        Ok(i) => i.describe(),
        Err(e) => format!("an unreadable lock ({e})"),
    };
    format!(
        "{what} [{}{}]",
        l.name,
        if l.stale { ", stale" } else { "" }
    )
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    let repo = g.open()?;
    let backend = &**repo.backend();
    let before = lock::list_locks(backend, repo.key(), chrono::Utc::now())?;
    let removed_names = lock::remove_locks(backend, repo.key(), a.remove_all)?;
    let remaining = lock::list_locks(backend, repo.key(), chrono::Utc::now())?;
    // Describe what was removed from the listing taken before (remove_locks re-lists, so a lock
    // created in between may be removed without having been listed: show its name only).
    let removed: Vec<FoundLock> = removed_names
        .iter()
        .map(|n| match before.iter().find(|l| &l.name == n) {
            Some(l) => FoundLock {
                name: l.name.clone(),
                info: l.info.clone(),
                stale: l.stale,
            },
            None => FoundLock {
                name: n.clone(),
                info: Err("not listed before removal".into()),
                stale: true,
            },
        })
        .collect();
    if a.json {
        output::json(&serde_json::json!({
            "removed": removed.iter().map(LockJson::new).collect::<Vec<_>>(),
            "remaining": remaining.iter().map(LockJson::new).collect::<Vec<_>>(),
        }))?;
        return Ok(exit::OK);
    }
    if removed.is_empty() {
        tell!(
            "no {}locks to remove",
            if a.remove_all { "" } else { "stale " }
        );
    }
    for l in &removed {
        tell!("removed {}", describe(l));
    }
    for l in &remaining {
        tell!("still held: {}", describe(l));
    }
    if !remaining.is_empty() && !a.remove_all {
        tell!(
            "{} live lock{} kept. If the process holding it is really gone (e.g. on another host), \
             `snap unlock --remove-all` removes it.",
            remaining.len(),
            if remaining.len() == 1 { "" } else { "s" }
        );
    }
    Ok(exit::OK)
}
