//! Snapshot manifests and their trees. See repo-format.md §Snapshots and §Trees.

pub mod name;
pub mod select;
pub mod tree;

pub use select::{Chosen, Kind, Selector};
pub use tree::{Attrs, Entry, EntryKind, Tree, path_cmp, validate_path};

use serde::{Deserialize, Serialize};

use crate::id::Id;

/// A reference to a stored chunk and its plaintext length; a file is the concatenation of its
/// chunks, so the chunk holding byte offset `o` is found from the running sum of lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkRef(pub Id, pub u32);

impl ChunkRef {
    pub fn id(&self) -> &Id {
        &self.0
    }
    pub fn len(&self) -> u64 {
        self.1 as u64
    }
    pub fn is_empty(&self) -> bool {
        self.1 == 0
    }
}

/// Figures recorded with each snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Logical bytes of all files in the snapshot.
    pub total_bytes: u64,
    /// Bytes read from the sources (unchanged files reused from the parent are not read).
    pub bytes_read: u64,
    pub files_new: u64,
    pub files_changed: u64,
    /// Files reused from the parent without reading, plus files read again (changed metadata
    /// or `--force`) whose content turned out identical.
    pub files_unchanged: u64,
    /// Chunks stored by this backup (not already in the repository).
    pub chunks_new: u64,
    /// Plaintext bytes of the new chunks.
    pub added_raw_bytes: u64,
    /// Bytes this backup added to the repository (sealed blobs plus pack trailers).
    pub added_bytes: u64,
    pub packs_new: u64,
    /// Entries skipped with a warning (unreadable files, unsupported names or types).
    pub skipped: u64,
    /// Files whose size or modification time changed while they were read: stored as read,
    /// with a warning (the copy may mix old and new content).
    pub changed_while_read: u64,
    pub duration_ms: u64,
}

/// What a snapshot came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Files,
    Stdin,
    Command,
    /// A database dumped with pg_dump (`snap backup db`).
    Database,
    /// Supabase Storage buckets and objects (`snap backup storage`).
    Storage,
    /// A whole project in one snapshot: a database and/or its storage.
    Project,
}

/// The decrypted content of `snapshots/<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub time: chrono::DateTime<chrono::FixedOffset>,
    pub host: String,
    pub username: String,
    /// `key=value` (or bare) tags, sorted.
    pub tags: Vec<String>,
    /// What was backed up: absolute source paths, or the stored names of stdin/command streams.
    pub paths: Vec<String>,
    pub source: SourceKind,
    /// Human description of the source (the command line for `--command`; secrets masked).
    pub description: String,
    pub parent: Option<Id>,
    /// The tree: JSON Lines of entries, stored as tree chunks, in this order.
    pub tree: Vec<ChunkRef>,
    pub summary: Summary,
    /// Set by `snap copy`: the id of the snapshot this one is a copy of, in the repository it
    /// was copied from (the original's id when copying a copy). Absent for backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_from: Option<Id>,
}

impl Manifest {
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

impl Snapshot {
    /// The snapshot this one originally is: `copied_from` for copies, else its own id. Two
    /// snapshots with the same origin hold the same content (`snap copy` skips them).
    pub fn origin(&self) -> Id {
        self.manifest.copied_from.unwrap_or(self.id)
    }
}

/// A snapshot for unit tests: id, time (seconds since the epoch), source, host, paths and
/// tags; an empty tree and summary.
#[cfg(test)]
pub(crate) fn test_snapshot(
    id: Id,
    secs: i64,
    source: SourceKind,
    host: &str,
    paths: &[&str],
    tags: &[&str],
) -> Snapshot {
    Snapshot {
        id,
        manifest: Manifest {
            version: 1,
            time: chrono::DateTime::from_timestamp(secs, 0)
                .expect("a time in range")
                .fixed_offset(),
            host: host.into(),
            username: "u".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            source,
            description: String::new(),
            parent: None,
            tree: Vec::new(),
            summary: Summary::default(),
            copied_from: None,
        },
    }
}

/// A snapshot: its id (the BLAKE3 of its stored bytes) and manifest.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: Id,
    pub manifest: Manifest,
}

/// Like [`resolve`], but a `spec` that names a snapshot whose manifest cannot be read (one of
/// `damaged`, as [`crate::repo::Repository::snapshots_and_damaged`] lists them) is
/// [`crate::Error::SnapshotDamaged`] naming it, not "no snapshot matches". A prefix matching a
/// readable and a damaged snapshot is ambiguous.
pub fn resolve_or_damaged<'a>(
    snapshots: &'a [Snapshot],
    damaged: &[(Id, crate::Error)],
    spec: &str,
) -> crate::Result<&'a Snapshot> {
    use crate::error::Error;
    let lower = spec.to_ascii_lowercase();
    let hex = !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_hexdigit());
    let bad: Vec<&(Id, Error)> = damaged
        .iter()
        .filter(|(id, _)| hex && id.to_hex().starts_with(&lower))
        .collect();
    match (resolve(snapshots, spec), bad.as_slice()) {
        (r, []) => r,
        (Err(Error::SnapshotNotFound(_)), [(id, e)]) => Err(Error::SnapshotDamaged {
            id: id.short(),
            full: id.to_hex(),
            detail: damage_detail(e),
        }),
        (Ok(one), more) => Err(ambiguous(
            spec,
            std::iter::once(&one.id).chain(more.iter().map(|d| &d.0)),
        )),
        (Err(Error::AmbiguousSnapshot { .. }) | Err(Error::SnapshotNotFound(_)), more) => {
            let good = snapshots
                .iter()
                .filter(|s| s.id.to_hex().starts_with(&lower));
            Err(ambiguous(
                spec,
                good.map(|s| &s.id).chain(more.iter().map(|d| &d.0)),
            ))
        }
        (Err(e), _) => Err(e),
    }
}

fn ambiguous<'a>(spec: &str, ids: impl Iterator<Item = &'a Id>) -> crate::Error {
    crate::Error::AmbiguousSnapshot {
        prefix: spec.into(),
        candidates: ids.map(|i| i.short()).collect(),
    }
}

/// The reason a manifest could not be read, without the repeated "corrupt snapshot …".
fn damage_detail(e: &crate::Error) -> String {
    match e {
        crate::Error::Corrupt { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}

/// Pick the snapshot `spec` names among `snapshots` (sorted oldest first): `latest`, a full id,
/// or a unique hex prefix.
pub fn resolve<'a>(snapshots: &'a [Snapshot], spec: &str) -> crate::Result<&'a Snapshot> {
    use crate::error::Error;
    if spec == "latest" {
        return snapshots
            .last()
            .ok_or_else(|| Error::SnapshotNotFound(spec.into()));
    }
    let lower = spec.to_ascii_lowercase();
    if lower.is_empty() || !lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::SnapshotNotFound(spec.into()));
    }
    let found: Vec<&Snapshot> = snapshots
        .iter()
        .filter(|s| s.id.to_hex().starts_with(&lower))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::SnapshotNotFound(spec.into())),
        many => Err(Error::AmbiguousSnapshot {
            prefix: spec.into(),
            candidates: many.iter().map(|s| s.id.short()).collect(),
        }),
    }
}
