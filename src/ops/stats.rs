//! Repository statistics: what is stored, what the snapshots hold, and how well deduplication
//! and compression do. Memory: one set of referenced chunk ids and one tree at a time.

use std::collections::HashSet;

use serde::Serialize;

use crate::blob::BlobKind;
use crate::error::Result;
use crate::id::Id;
use crate::repo::Repository;
use crate::snapshot::EntryKind;

/// Figures for a whole repository. "Stored" bytes are sealed blob lengths (compressed,
/// encrypted, with nonce and tag); "raw" bytes are plaintext lengths.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RepoStats {
    /// Sum of the sizes of every object the backend lists (packs, snapshots, keys, locks, …).
    pub repo_bytes: u64,
    pub objects: u64,
    pub packs: u64,
    pub pack_bytes: u64,
    /// Chunks (data and tree) in the local index.
    pub indexed_chunks: u64,
    /// Readable snapshots.
    pub snapshots: u64,
    /// File entries summed over all snapshots.
    pub files: u64,
    /// Sum of the sizes of all files of all snapshots (what restoring everything would write).
    pub logical_bytes: u64,
    /// Distinct data chunks the snapshots reference, and their plaintext and stored bytes.
    pub unique_chunks: u64,
    pub unique_raw_bytes: u64,
    pub unique_stored_bytes: u64,
    /// Distinct tree (metadata) chunks the snapshots reference.
    pub tree_chunks: u64,
    pub tree_raw_bytes: u64,
    pub tree_stored_bytes: u64,
    /// Referenced chunks the index does not have (damage: run `snap check`).
    pub missing_chunks: u64,
    /// Indexed chunks no snapshot references (garbage, removable by prune).
    pub unreferenced_chunks: u64,
    pub unreferenced_raw_bytes: u64,
    pub unreferenced_bytes: u64,
    /// `logical_bytes / unique_raw_bytes`; `None` when nothing is stored.
    pub dedup_ratio: Option<f64>,
    /// `unique_raw_bytes / unique_stored_bytes`; `None` when nothing is stored.
    pub compression_ratio: Option<f64>,
    /// Snapshots whose manifest or tree could not be read; their chunks are
    /// not counted as referenced, so the garbage figures are then an upper bound.
    pub unreadable_snapshots: Vec<Unreadable>,
}

/// A snapshot that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// Short id.
    pub id: String,
    pub error: String,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Compute [`RepoStats`] (opens and syncs the index).
pub fn stats(repo: &Repository) -> Result<RepoStats> {
    let mut s = RepoStats::default();
    for o in repo.backend().list("")? {
        s.objects += 1;
        s.repo_bytes += o.size;
        if o.name.starts_with("data/") && crate::pack::pack_id_from_name(&o.name).is_some() {
            s.packs += 1;
            s.pack_bytes += o.size;
        }
    }
    let index = repo.index()?;
    s.indexed_chunks = index.chunk_count()?;

    let (snaps, damaged) = repo.snapshots_and_damaged()?;
    for (id, e) in damaged {
        s.unreadable_snapshots.push(Unreadable {
            id: id.short(),
            error: e.to_string(),
        });
    }
    let mut referenced: HashSet<Id> = HashSet::new();
    for snap in &snaps {
        let tree = match repo.load_tree(&snap.manifest) {
            Ok(t) => t,
            Err(e) => {
                s.unreadable_snapshots.push(Unreadable {
                    id: snap.id.short(),
                    error: e.to_string(),
                });
                continue;
            }
        };
        s.snapshots += 1;
        referenced.extend(snap.manifest.tree.iter().map(|c| *c.id()));
        for e in tree.entries.iter().filter(|e| e.kind == EntryKind::File) {
            s.files += 1;
            s.logical_bytes += e.size;
            referenced.extend(e.chunks.iter().map(|c| *c.id()));
        }
    }

    let mut found = 0u64;
    index.for_each_chunk(|id, loc| {
        if referenced.contains(&id) {
            found += 1;
            if loc.kind == BlobKind::Tree {
                s.tree_chunks += 1;
                s.tree_raw_bytes += loc.raw_len as u64;
                s.tree_stored_bytes += loc.length as u64;
            } else {
                s.unique_chunks += 1;
                s.unique_raw_bytes += loc.raw_len as u64;
                s.unique_stored_bytes += loc.length as u64;
            }
        } else {
            s.unreferenced_chunks += 1;
            s.unreferenced_raw_bytes += loc.raw_len as u64;
            s.unreferenced_bytes += loc.length as u64;
        }
    })?;
    s.missing_chunks = referenced.len() as u64 - found;
    s.dedup_ratio = ratio(s.logical_bytes, s.unique_raw_bytes);
    s.compression_ratio = ratio(s.unique_raw_bytes, s.unique_stored_bytes);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::{Backend, MemoryBackend};
    use crate::crypto::keyfile::KdfParams;
    use crate::ops::{BackupInput, BackupOptions, backup};
    use crate::repo::InitOptions;
    use crate::source::ReaderSource;

    fn repo() -> (Repository, tempfile::TempDir) {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let init = InitOptions {
            kdf: KdfParams {
                m_cost: 64,
                t_cost: 1,
                p_cost: 1,
            },
            ..Default::default()
        };
        Repository::init(&*backend, b"pw", &init).unwrap();
        let cache = tempfile::tempdir().unwrap();
        (
            Repository::open(backend, b"pw", cache.path()).unwrap(),
            cache,
        )
    }

    fn store(repo: &Repository, name: &str, data: &[u8]) -> Id {
        let src = ReaderSource::new(name, data);
        backup(
            repo,
            BackupInput::Stream(Box::new(src)),
            &BackupOptions::default(),
            &crate::progress::NoProgress,
        )
        .unwrap()
        .snapshot
        .id
    }

    #[test]
    fn empty_repository() {
        let (r, _c) = repo();
        let s = stats(&r).unwrap();
        assert_eq!(
            (s.snapshots, s.packs, s.indexed_chunks, s.logical_bytes),
            (0, 0, 0, 0)
        );
        assert_eq!(s.dedup_ratio, None);
        assert!(s.repo_bytes > 0, "config and key file");
    }

    #[test]
    fn dedup_compression_and_garbage() {
        let (r, _c) = repo();
        // Compressible, identical content under two names: stored once.
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("row {i} value {}\n", i.wrapping_mul(7919) % 1000).into_bytes())
            .collect();
        store(&r, "a.sql", &data);
        store(&r, "b.sql", &data);
        let s = stats(&r).unwrap();
        assert_eq!(s.snapshots, 2);
        assert_eq!(s.files, 2);
        assert_eq!(s.logical_bytes, 2 * data.len() as u64);
        assert_eq!(s.unique_raw_bytes, data.len() as u64);
        assert_eq!(s.dedup_ratio, Some(2.0));
        assert!(s.compression_ratio.unwrap() > 5.0, "{s:?}");
        assert_eq!(s.unreferenced_chunks, 0);
        assert_eq!(s.missing_chunks, 0);
        assert_eq!(s.indexed_chunks, s.unique_chunks + s.tree_chunks);
        assert!(s.pack_bytes > s.unique_stored_bytes + s.tree_stored_bytes);
        assert!(s.repo_bytes > s.pack_bytes);

        // A snapshot with content of its own, then deleted: its chunks become garbage.
        let other = vec![7u8; 100_000];
        let id = store(&r, "c.bin", &other);
        r.backend().delete(&format!("snapshots/{id}")).unwrap();
        let s2 = stats(&r).unwrap();
        assert_eq!(s2.snapshots, 2);
        assert!(s2.unreferenced_chunks >= 1, "{s2:?}");
        assert!(s2.unreferenced_raw_bytes >= other.len() as u64);
        assert_eq!(s2.unique_raw_bytes, s.unique_raw_bytes);
    }
}
