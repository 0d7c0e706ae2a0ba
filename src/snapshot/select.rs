//! Which snapshot a command means: `latest` (or an id) narrowed by host, tags, paths and the
//! kind of what was backed up. One home for the rule, used by every command that takes a
//! snapshot argument and by `forget`, `copy` and the nightly runner's filters.

use std::fmt;

use super::{Manifest, Snapshot, SourceKind};
use crate::error::{Error, Result};
use crate::id::Id;

/// What a snapshot holds, as a user asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Files and directories (`snap backup PATH`).
    Files,
    /// Standard input or a command's output stored as one file (`--stdin`, `--command`).
    Stream,
    /// A database dumped by `snap backup db` (alone or in a project snapshot).
    Database,
    /// Storage buckets (alone or in a project snapshot).
    Storage,
}

impl Kind {
    /// Whether a snapshot with manifest `m` holds this kind. A project snapshot holds a
    /// database when one of its paths is under `db/`, storage when one is under `storage`.
    pub fn held_by(self, m: &Manifest) -> bool {
        let has = |root: &str| {
            m.paths
                .iter()
                .any(|p| super::tree::is_under(p.trim_start_matches('/'), root))
        };
        match (self, &m.source) {
            (Kind::Files, SourceKind::Files) => true,
            (Kind::Stream, SourceKind::Stdin | SourceKind::Command) => true,
            (Kind::Database, SourceKind::Database) | (Kind::Storage, SourceKind::Storage) => true,
            (Kind::Database, SourceKind::Project) => has("db"),
            (Kind::Storage, SourceKind::Project) => has("storage"),
            _ => false,
        }
    }

    /// The kinds `m` holds, for messages.
    pub fn of(m: &Manifest) -> Vec<Kind> {
        [Kind::Files, Kind::Stream, Kind::Database, Kind::Storage]
            .into_iter()
            .filter(|k| k.held_by(m))
            .collect()
    }

    /// How to make a snapshot of this kind.
    fn how_to_make(self) -> &'static str {
        match self {
            Kind::Files => "snap backup PATH",
            Kind::Stream => "snap backup --stdin or --command",
            Kind::Database => "snap backup db",
            Kind::Storage => "snap backup storage",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Files => "files",
            Kind::Stream => "stream",
            Kind::Database => "database",
            Kind::Storage => "storage",
        })
    }
}

/// Filters on snapshots. Empty fields match everything; all given ones must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    pub host: Option<String>,
    /// The snapshot must carry all of these.
    pub tags: Vec<String>,
    /// The snapshot must have backed up each of these paths: one of its paths is the path,
    /// a directory above it or a path below it (a leading `/` is ignored on both sides).
    pub paths: Vec<String>,
    /// The snapshot must hold one of these kinds.
    pub kinds: Vec<Kind>,
}

impl Selector {
    pub fn matches(&self, m: &Manifest) -> bool {
        self.host.as_ref().is_none_or(|h| &m.host == h)
            && self.tags.iter().all(|t| m.has_tag(t))
            && self.paths.iter().all(|p| covers(m, p))
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| k.held_by(m)))
    }

    pub fn is_empty(&self) -> bool {
        *self == Selector::default()
    }

    /// This selector with the gaps filled from `implied` (what the command's other arguments
    /// imply): its own fields win.
    pub fn or(&self, implied: &Selector) -> Selector {
        Selector {
            host: self.host.clone().or_else(|| implied.host.clone()),
            tags: pick(&self.tags, &implied.tags),
            paths: pick(&self.paths, &implied.paths),
            kinds: if self.kinds.is_empty() {
                implied.kinds.clone()
            } else {
                self.kinds.clone()
            },
        }
    }
}

fn pick(own: &[String], implied: &[String]) -> Vec<String> {
    if own.is_empty() { implied } else { own }.to_vec()
}

/// Whether snapshot `m` backed up `path`: one of its paths is it, above it or below it.
fn covers(m: &Manifest, path: &str) -> bool {
    let want = path.trim_matches('/');
    m.paths.iter().any(|p| {
        let p = p.trim_matches('/');
        super::tree::is_under(want, p) || super::tree::is_under(p, want)
    })
}

impl fmt::Display for Selector {
    /// "database snapshot of host "h" tagged t of /path".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<String> = self.kinds.iter().map(|k| k.to_string()).collect();
        match kinds.as_slice() {
            [] => f.write_str("snapshot")?,
            k => write!(f, "{} snapshot", k.join(" or "))?,
        }
        if let Some(h) = &self.host {
            write!(f, " of host {h:?}")?;
        }
        if !self.tags.is_empty() {
            write!(f, " tagged {}", self.tags.join(" and "))?;
        }
        if !self.paths.is_empty() {
            write!(f, " of {}", self.paths.join(" and "))?;
        }
        Ok(())
    }
}

/// The snapshot a command asked for, and whether it was chosen as `latest`.
#[derive(Debug, Clone, Copy)]
pub struct Chosen<'a> {
    pub snapshot: &'a Snapshot,
    /// Picked as the newest of those that match (`latest`, `latest~N`), not named by id.
    pub latest: bool,
}

/// Pick the snapshot `spec` names among `snapshots` (oldest first; `damaged` are the ids
/// whose manifest could not be read, see [`super::resolve_or_damaged`]).
///
/// `latest` is the newest snapshot matching `given` (the user's filters) filled with
/// `implied` (what the command implies: the kind it needs, the path it reads); `latest~N` the
/// Nth before it. An id is checked against `given` only: a filter the user wrote that the
/// snapshot does not match is an error, not a silent choice.
pub fn choose<'a>(
    snapshots: &'a [Snapshot],
    damaged: &[(Id, Error)],
    spec: &str,
    given: &Selector,
    implied: &Selector,
) -> Result<Chosen<'a>> {
    if let Some(back) = latest_back(spec)? {
        let mut sel = given.or(implied);
        let nth = |sel: &Selector| {
            let mut matching = snapshots.iter().rev().filter(|s| sel.matches(&s.manifest));
            matching.nth(back)
        };
        // A path the command reads narrows `latest` when some snapshot backed it up; when none
        // did, the command's own "not in snapshot" says so.
        if nth(&sel).is_none() && given.paths.is_empty() && !implied.paths.is_empty() {
            sel.paths.clear();
        }
        return match nth(&sel) {
            Some(snapshot) => Ok(Chosen {
                snapshot,
                latest: true,
            }),
            None if back > 0 => Err(Error::NoSnapshotMatches(format!(
                "{spec} needs {} {sel}(s) but only {} match; list them with `snap snapshots`",
                back + 1,
                snapshots
                    .iter()
                    .filter(|s| sel.matches(&s.manifest))
                    .count()
            ))),
            None => Err(no_match(snapshots, &sel)),
        };
    }
    let snapshot = super::resolve_or_damaged(snapshots, damaged, spec)?;
    if !given.matches(&snapshot.manifest) {
        return Err(Error::SnapshotMismatch {
            id: snapshot.id.short(),
            wanted: given.to_string(),
            is: describe(&snapshot.manifest),
        });
    }
    Ok(Chosen {
        snapshot,
        latest: false,
    })
}

/// `latest` → 0, `latest~N` → N, anything else → None (an id).
fn latest_back(spec: &str) -> Result<Option<usize>> {
    let Some(rest) = spec.strip_prefix("latest") else {
        return Ok(None);
    };
    if rest.is_empty() {
        return Ok(Some(0));
    }
    rest.strip_prefix('~')
        .and_then(|n| n.parse::<usize>().ok())
        .map(Some)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{spec:?} is not a snapshot: use an id (prefix), `latest` or `latest~N` (the Nth before the latest, e.g. latest~1)"
            ))
        })
}

/// "there is no database snapshot …": with what exists and what to do.
fn no_match(snapshots: &[Snapshot], sel: &Selector) -> Error {
    let make = match sel.kinds.as_slice() {
        [k] => k.how_to_make(),
        _ => "snap backup",
    };
    Error::NoSnapshotMatches(if snapshots.is_empty() {
        format!("the repository holds no snapshots yet; make one with `{make}`")
    } else {
        format!(
            "the repository holds no {sel}: none of its {} snapshot(s) matches; list them with `snap snapshots`, pick one by id, or make one with `{make}`",
            snapshots.len()
        )
    })
}

/// `a database snapshot of host "h" (db/postgres)`: what a snapshot is, for messages.
pub fn describe(m: &Manifest) -> String {
    let kinds: Vec<String> = Kind::of(m).iter().map(|k| k.to_string()).collect();
    let kinds = if kinds.is_empty() {
        "snapshot".to_string()
    } else {
        format!("{} snapshot", kinds.join(" and "))
    };
    let tags = if m.tags.is_empty() {
        String::new()
    } else {
        format!(", tagged {}", m.tags.join(", "))
    };
    format!(
        "a {kinds} of host {:?} ({}){tags}",
        m.host,
        m.paths.join(", ")
    )
}

#[cfg(test)]
mod tests;
