//! The local chunk index in redb: chunk id → (pack, offset, length, raw length, kind) and
//! pack id → (size, blob count). It is a derived cache: [`Index::sync`] brings it in line with the
//! packs the backend lists, reading the trailers of packs it does not know, and a lost or damaged
//! index file is rebuilt from pack trailers alone.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::backend::Backend;
use crate::blob::BlobKind;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::pack::{self, PackEntry};

const CHUNKS: TableDefinition<&[u8; 32], &[u8; 45]> = TableDefinition::new("chunks");
const PACKS: TableDefinition<&[u8; 32], &[u8; 12]> = TableDefinition::new("packs");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Bump when the tables' layout changes: an index with another layout is rebuilt.
const INDEX_LAYOUT: &[u8] = b"1";

/// Where a chunk is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub pack: Id,
    pub offset: u32,
    pub length: u32,
    pub raw_len: u32,
    pub kind: BlobKind,
}

impl Location {
    fn to_bytes(self) -> [u8; 45] {
        let mut b = [0u8; 45];
        b[..32].copy_from_slice(self.pack.as_bytes());
        b[32..36].copy_from_slice(&self.offset.to_le_bytes());
        b[36..40].copy_from_slice(&self.length.to_le_bytes());
        b[40..44].copy_from_slice(&self.raw_len.to_le_bytes());
        b[44] = self.kind as u8;
        b
    }
    fn from_bytes(b: &[u8; 45]) -> Location {
        let u = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        Location {
            pack: Id(b[..32].try_into().unwrap()),
            offset: u(32),
            length: u(36),
            raw_len: u(40),
            kind: BlobKind::from_u8(b[44]).unwrap_or(BlobKind::Data),
        }
    }
}

/// What [`Index::sync`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub packs_added: usize,
    pub packs_removed: usize,
    pub rebuilt: bool,
    /// Packs whose trailer could not be read (name, reason); their chunks are not indexed.
    pub unreadable: Vec<(String, String)>,
}

pub struct Index {
    db: Database,
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Index {
    /// Open (or create) the index at `path` for repository `repo_id`. If another process holds
    /// it, a private temporary index is used instead (built from the pack trailers by `sync`).
    pub fn open(path: &Path, repo_id: &str) -> Result<Index> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let db = match Database::create(path) {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => return Index::temporary(repo_id),
            Err(e) => {
                // A damaged cache file is rebuilt, never trusted.
                let _ = std::fs::remove_file(path);
                Database::create(path).map_err(|_| Error::Index(format!("{}: {e}", path.display())))?
            }
        };
        let idx = Index { db, path: path.to_path_buf(), _temp: None };
        idx.ensure_meta(repo_id)?;
        Ok(idx)
    }

    /// A throwaway index in a temporary directory.
    pub fn temporary(repo_id: &str) -> Result<Index> {
        let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let path = dir.path().join("index.redb");
        let db = Database::create(&path).map_err(|e| Error::Index(e.to_string()))?;
        let idx = Index { db, path, _temp: Some(dir) };
        idx.ensure_meta(repo_id)?;
        Ok(idx)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_temporary(&self) -> bool {
        self._temp.is_some()
    }

    fn ensure_meta(&self, repo_id: &str) -> Result<()> {
        let rtx = self.db.begin_read()?;
        let current = match rtx.open_table(META) {
            Ok(t) => (
                t.get("repo_id")?.map(|v| v.value().to_vec()),
                t.get("layout")?.map(|v| v.value().to_vec()),
            ),
            Err(redb::TableError::TableDoesNotExist(_)) => (None, None),
            Err(e) => return Err(e.into()),
        };
        drop(rtx);
        if current.0.as_deref() == Some(repo_id.as_bytes()) && current.1.as_deref() == Some(INDEX_LAYOUT) {
            return Ok(());
        }
        self.clear()?;
        let tx = self.db.begin_write()?;
        {
            let mut m = tx.open_table(META)?;
            m.insert("repo_id", repo_id.as_bytes())?;
            m.insert("layout", INDEX_LAYOUT)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn clear(&self) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.delete_table(CHUNKS)?;
        tx.delete_table(PACKS)?;
        {
            tx.open_table(CHUNKS)?;
            tx.open_table(PACKS)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn lookup(&self, id: &Id) -> Result<Option<Location>> {
        let rtx = self.db.begin_read()?;
        let t = match rtx.open_table(CHUNKS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(t.get(id.as_bytes())?.map(|v| Location::from_bytes(v.value())))
    }

    pub fn contains(&self, id: &Id) -> Result<bool> {
        Ok(self.lookup(id)?.is_some())
    }

    /// Record a pack and its blobs in one transaction.
    pub fn add_pack(&self, pack: &Id, size: u64, entries: &[PackEntry]) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut chunks = tx.open_table(CHUNKS)?;
            for e in entries {
                let loc = Location {
                    pack: *pack,
                    offset: e.offset,
                    length: e.length,
                    raw_len: e.raw_len,
                    kind: e.kind,
                };
                chunks.insert(e.id.as_bytes(), &loc.to_bytes())?;
            }
            let mut packs = tx.open_table(PACKS)?;
            let mut v = [0u8; 12];
            v[..8].copy_from_slice(&size.to_le_bytes());
            v[8..].copy_from_slice(&(entries.len() as u32).to_le_bytes());
            packs.insert(pack.as_bytes(), &v)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Ids of all packs the index knows.
    pub fn packs(&self) -> Result<HashSet<Id>> {
        let rtx = self.db.begin_read()?;
        let t = rtx.open_table(PACKS)?;
        let mut out = HashSet::new();
        for row in t.iter()? {
            let (k, _) = row?;
            out.insert(Id(*k.value()));
        }
        Ok(out)
    }

    /// Number of indexed chunks.
    pub fn chunk_count(&self) -> Result<u64> {
        let rtx = self.db.begin_read()?;
        Ok(rtx.open_table(CHUNKS)?.len()?)
    }

    /// Bring the index in line with the packs in `backend`: index packs it lacks (reading their
    /// trailers); if packs it knows have gone, rebuild from scratch (a chunk may live in more
    /// than one pack, so dropping entries pack by pack could lose a surviving copy).
    pub fn sync(&self, backend: &dyn Backend, key: &MasterKey) -> Result<SyncReport> {
        let listed = backend.list("data/")?;
        let known = self.packs()?;
        let mut report = SyncReport::default();
        let present: HashSet<Id> = listed.iter().filter_map(|o| pack::pack_id_from_name(&o.name)).collect();
        if known.iter().any(|p| !present.contains(p)) {
            report.packs_removed = known.iter().filter(|p| !present.contains(p)).count();
            report.rebuilt = true;
            self.clear()?;
        }
        let known = if report.rebuilt { HashSet::new() } else { known };
        for obj in &listed {
            let Some(id) = pack::pack_id_from_name(&obj.name) else { continue };
            if known.contains(&id) {
                continue;
            }
            match pack::read_trailer(backend, key, &obj.name, obj.size) {
                Ok(entries) => {
                    self.add_pack(&id, obj.size, &entries)?;
                    report.packs_added += 1;
                }
                Err(e) => report.unreadable.push((obj.name.clone(), e.to_string())),
            }
        }
        Ok(report)
    }

    /// Drop everything and re-read every pack trailer.
    pub fn rebuild(&self, backend: &dyn Backend, key: &MasterKey) -> Result<SyncReport> {
        self.clear()?;
        let mut r = self.sync(backend, key)?;
        r.rebuilt = true;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;
    use crate::blob;
    use crate::pack::PackWriter;

    fn write_pack(b: &MemoryBackend, k: &MasterKey, datas: &[&[u8]]) -> (Id, Vec<Id>) {
        let mut w = PackWriter::new();
        let mut ids = vec![];
        for d in datas {
            let id = k.chunk_id(d);
            w.add(BlobKind::Data, id, d.len() as u32, &blob::encode(k, BlobKind::Data, &id, d, 3));
            ids.push(id);
        }
        let (pid, bytes, _) = w.finish(k);
        b.put(&pack::pack_name(&pid), &bytes).unwrap();
        (pid, ids)
    }

    #[test]
    fn sync_adds_and_rebuilds() {
        let dir = tempfile::tempdir().unwrap();
        let k = MasterKey::generate();
        let b = MemoryBackend::new();
        let (p1, ids1) = write_pack(&b, &k, &[b"one", b"two"]);
        let (p2, ids2) = write_pack(&b, &k, &[b"three", b"one"]);
        let idx = Index::open(&dir.path().join("i.redb"), "repo").unwrap();
        let r = idx.sync(&b, &k).unwrap();
        assert_eq!(r.packs_added, 2);
        assert!(idx.contains(&ids1[1]).unwrap() && idx.contains(&ids2[0]).unwrap());
        assert_eq!(idx.sync(&b, &k).unwrap().packs_added, 0);
        // "one" is in both packs; removing whichever the index points at must keep it findable.
        let loc = idx.lookup(&ids1[0]).unwrap().unwrap();
        b.delete(&pack::pack_name(&loc.pack)).unwrap();
        let r = idx.sync(&b, &k).unwrap();
        assert!(r.rebuilt);
        let other = if loc.pack == p1 { p2 } else { p1 };
        assert_eq!(idx.lookup(&ids1[0]).unwrap().unwrap().pack, other);
        // Another repository id wipes the cache.
        drop(idx);
        let idx = Index::open(&dir.path().join("i.redb"), "other").unwrap();
        assert_eq!(idx.chunk_count().unwrap(), 0);
    }

    #[test]
    fn damaged_index_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("i.redb");
        std::fs::write(&p, b"garbage that is not a redb file at all").unwrap();
        let idx = Index::open(&p, "repo").unwrap();
        assert_eq!(idx.chunk_count().unwrap(), 0);
    }
}
