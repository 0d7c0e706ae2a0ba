//! The local chunk index in redb: chunk id → (pack, offset, length, raw length, kind) and
//! pack id → (size, blob count). It is a derived cache: [`Index::sync`] brings it in line with the
//! packs the backend lists, reading the trailers of packs it does not know, and a lost or damaged
//! index file is rebuilt from pack trailers alone.
//!
//! It is never trusted blindly: when a session closes, the file's BLAKE3 hash and length are
//! written beside it (`index.redb.b3`), and the next session removes the sidecar before redb
//! opens the file (redb writes to it even in a session that stores nothing). An index whose
//! sidecar is missing (a session that did not close: a crash, a kill) or does not match (damage
//! at rest: a bit flip, a truncation) is deleted and rebuilt before redb ever reads it, so no
//! cache content can reach redb's code (which may panic on a damaged file) or hand out a wrong
//! location. Opening goes through a panic boundary as well. An advisory lock
//! (`index.redb.lock`) makes one process the owner; others use a private temporary index.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};

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
    /// `None` when the kind byte is not a chunk kind (a damaged row): guessing one would send
    /// a reader to decode the blob as the wrong kind and blame the pack for the cache's damage.
    fn from_bytes(b: &[u8; 45]) -> Option<Location> {
        let u = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let kind =
            BlobKind::from_u8(b[44]).filter(|k| matches!(k, BlobKind::Data | BlobKind::Tree))?;
        Some(Location {
            pack: pack_of(b),
            offset: u(32),
            length: u(36),
            raw_len: u(40),
            kind,
        })
    }
}

/// The pack id of a chunks-table row.
fn pack_of(b: &[u8; 45]) -> Id {
    Id(b[..32].try_into().unwrap())
}

/// What [`Index::sync`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub packs_added: usize,
    pub packs_removed: usize,
    pub rebuilt: bool,
    /// Packs whose trailer could not be read (name, reason); their chunks are not indexed.
    pub unreadable: Vec<(String, String)>,
    /// The index file was found damaged when opened, and rebuilt: why.
    pub damaged: Option<String>,
}

/// Stream every row of the chunks table (in id order) to `f`.
fn each_chunk_row(rtx: &redb::ReadTransaction, mut f: impl FnMut(Id, &[u8; 45])) -> Result<()> {
    let t = match rtx.open_table(CHUNKS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for row in t.iter()? {
        let (k, v) = row?;
        f(Id(*k.value()), v.value());
    }
    Ok(())
}

/// redb's page cache. Lookups are random, so a big cache buys little, and redb would otherwise
/// grow it towards the size of the index (≈ 100 MB per million chunks).
const CACHE_BYTES: usize = 32 << 20;

fn create_db(path: &Path) -> std::result::Result<Database, DatabaseError> {
    // Created 0600 first (redb would create it 0666 minus the umask); redb fills an empty file.
    crate::util::open_private(path, false).map_err(|e| DatabaseError::Storage(e.into()))?;
    Database::builder().set_cache_size(CACHE_BYTES).create(path)
}

pub struct Index {
    /// `None` only while dropping (closed before its hash is taken).
    db: Option<Database>,
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
    /// The file is unsealed (its sidecar gone) until this session closes and seals it: always
    /// for the shared file, which redb writes to whenever it has it open.
    dirty: AtomicBool,
    /// Why the file was not trusted and was rebuilt when it was opened.
    distrusted: Option<Distrust>,
    /// The advisory lock that makes this process the file's owner.
    _lock: Option<std::fs::File>,
}

/// `path` with `suffix` appended to its file name (`index.redb` → `index.redb.b3`).
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// The checksum sidecar of an index file.
pub fn sum_path(path: &Path) -> PathBuf {
    beside(path, ".b3")
}

fn lock_path(path: &Path) -> PathBuf {
    beside(path, ".lock")
}

/// `"blake3 <hex> <length>"` of the file at `path`.
fn file_sum(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok(format!("blake3 {} {len}", h.finalize().to_hex()))
}

/// Why an index file is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Distrust {
    /// No sidecar: the last session that wrote it did not close (a crash, a kill).
    Unclean,
    /// The file does not match its sidecar, or cannot be read.
    Damaged(String),
}

impl std::fmt::Display for Distrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Distrust::Unclean => write!(f, "it was not closed cleanly (an interrupted snap)"),
            Distrust::Damaged(why) => write!(f, "{why}"),
        }
    }
}

/// Whether the index file at `path` may be opened: `None` when it is absent or matches its
/// sidecar; otherwise why it is not trusted. Reads the file; does not lock it.
pub fn distrust(path: &Path) -> Option<Distrust> {
    if !path.exists() {
        return None;
    }
    let Ok(want) = std::fs::read(sum_path(path)) else {
        return Some(Distrust::Unclean);
    };
    // The sidecar is one short line; anything longer is damage too.
    let want = String::from_utf8_lossy(&want[..want.len().min(200)])
        .trim()
        .to_string();
    match file_sum(path) {
        Ok(got) if got == want => None,
        Ok(_) => Some(Distrust::Damaged(
            "its content does not match the checksum written when it was last closed".into(),
        )),
        Err(e) => Some(Distrust::Damaged(format!("it cannot be read ({e})"))),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    crate::util::open_private(path, true)?.write_all(bytes)
}

/// Remove the sidecar of the index at `path`: until it is written again, the file is not trusted.
fn unseal(path: &Path) -> Result<()> {
    let sum = sum_path(path);
    match std::fs::remove_file(&sum) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(sum, e)),
    }
}

/// Whether another process has the index at `path` open (holds its lock).
pub fn in_use(path: &Path) -> bool {
    matches!(try_lock(path), Ok(None))
}

/// Take the advisory lock of the index at `path`; `None` when another process holds it.
pub fn try_lock(path: &Path) -> Result<Option<std::fs::File>> {
    let lp = lock_path(path);
    let f = crate::util::open_private(&lp, false).map_err(|e| Error::io(&lp, e))?;
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    Ok((r == 0).then_some(f))
}

/// Open or create the redb file; a file redb refuses or panics on is deleted and created anew.
fn open_db(path: &Path) -> Result<std::result::Result<Database, DatabaseError>> {
    match crate::util::quiet_catch(|| create_db(path)) {
        Ok(Err(DatabaseError::DatabaseAlreadyOpen)) => Ok(Err(DatabaseError::DatabaseAlreadyOpen)),
        Ok(Ok(db)) => Ok(Ok(db)),
        Ok(Err(e)) => recreate(path, &e.to_string()),
        Err(panic) => recreate(path, &panic),
    }
}

fn recreate(path: &Path, why: &str) -> Result<std::result::Result<Database, DatabaseError>> {
    let _ = std::fs::remove_file(path);
    create_db(path).map(Ok).map_err(|e| {
        Error::Index(format!(
            "{}: {why}; recreating it failed: {e}",
            path.display()
        ))
    })
}

impl Index {
    /// Open (or create) the index at `path` for repository `repo_id`. If another process holds
    /// it, a private temporary index is used instead (built from the pack trailers by `sync`).
    /// A file that is not trusted ([`distrust`]) is deleted first: `sync` rebuilds it.
    pub fn open(path: &Path, repo_id: &str) -> Result<Index> {
        if let Some(dir) = path.parent() {
            crate::util::create_private_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let Some(lock) = try_lock(path)? else {
            return Index::temporary(repo_id);
        };
        let distrusted = distrust(path);
        if distrusted.is_some() {
            let _ = std::fs::remove_file(path);
        }
        // redb writes to the file even in a session that stores nothing (its header when it
        // opens, its allocator state when it closes): every session unseals the file before
        // redb opens it, and seals it again when it closes.
        unseal(path)?;
        let db = match open_db(path)? {
            Ok(db) => db,
            Err(_) => return Index::temporary(repo_id),
        };
        let idx = Index {
            db: Some(db),
            path: path.to_path_buf(),
            _temp: None,
            dirty: AtomicBool::new(true),
            distrusted,
            _lock: Some(lock),
        };
        idx.ensure_meta(repo_id)?;
        Ok(idx)
    }

    /// A throwaway index in a temporary directory.
    pub fn temporary(repo_id: &str) -> Result<Index> {
        let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let path = dir.path().join("index.redb");
        let db = create_db(&path).map_err(|e| Error::Index(e.to_string()))?;
        let idx = Index {
            db: Some(db),
            path,
            _temp: Some(dir),
            dirty: AtomicBool::new(false),
            distrusted: None,
            _lock: None,
        };
        idx.ensure_meta(repo_id)?;
        Ok(idx)
    }

    fn db(&self) -> &Database {
        self.db.as_ref().expect("the index is open")
    }

    /// Before a write: the file stops being sealed until this session closes.
    fn begin_write(&self) -> Result<redb::WriteTransaction> {
        if self._temp.is_none() && !self.dirty.swap(true, Ordering::SeqCst) {
            unseal(&self.path)?;
        }
        Ok(self.db().begin_write()?)
    }

    /// Why the file was not trusted when it was opened (and was rebuilt), if it was not.
    pub fn distrusted(&self) -> Option<&Distrust> {
        self.distrusted.as_ref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_temporary(&self) -> bool {
        self._temp.is_some()
    }

    fn ensure_meta(&self, repo_id: &str) -> Result<()> {
        let rtx = self.db().begin_read()?;
        let current = match rtx.open_table(META) {
            Ok(t) => (
                t.get("repo_id")?.map(|v| v.value().to_vec()),
                t.get("layout")?.map(|v| v.value().to_vec()),
            ),
            Err(redb::TableError::TableDoesNotExist(_)) => (None, None),
            Err(e) => return Err(e.into()),
        };
        drop(rtx);
        if current.0.as_deref() == Some(repo_id.as_bytes())
            && current.1.as_deref() == Some(INDEX_LAYOUT)
        {
            return Ok(());
        }
        self.clear()?;
        let tx = self.begin_write()?;
        {
            let mut m = tx.open_table(META)?;
            m.insert("repo_id", repo_id.as_bytes())?;
            m.insert("layout", INDEX_LAYOUT)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn clear(&self) -> Result<()> {
        let tx = self.begin_write()?;
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
        let rtx = self.db().begin_read()?;
        let t = match rtx.open_table(CHUNKS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        t.get(id.as_bytes())?
            .map(|v| {
                Location::from_bytes(v.value()).ok_or_else(|| {
                    Error::Index(format!(
                        "the local index row of chunk {} is malformed; run `snap repair index`",
                        id.short()
                    ))
                })
            })
            .transpose()
    }

    pub fn contains(&self, id: &Id) -> Result<bool> {
        Ok(self.lookup(id)?.is_some())
    }

    /// Record a pack and its blobs in one transaction.
    pub fn add_pack(&self, pack: &Id, size: u64, entries: &[PackEntry]) -> Result<()> {
        let tx = self.begin_write()?;
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

    /// Forget deleted packs: drop them and every chunk entry pointing into them (one scan).
    pub fn remove_packs(&self, gone: &HashSet<Id>) -> Result<()> {
        if gone.is_empty() {
            return Ok(());
        }
        let tx = self.begin_write()?;
        {
            let mut chunks = tx.open_table(CHUNKS)?;
            let mut dead: Vec<[u8; 32]> = Vec::new();
            for row in chunks.iter()? {
                let (k, v) = row?;
                if gone.contains(&pack_of(v.value())) {
                    dead.push(*k.value());
                }
            }
            for k in &dead {
                chunks.remove(k)?;
            }
            let mut packs = tx.open_table(PACKS)?;
            for p in gone {
                packs.remove(p.as_bytes())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Ids of all packs the index knows.
    pub fn packs(&self) -> Result<HashSet<Id>> {
        let rtx = self.db().begin_read()?;
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
        let rtx = self.db().begin_read()?;
        Ok(rtx.open_table(CHUNKS)?.len()?)
    }

    /// Call `f` for every indexed chunk (in id order), streaming: memory use does not grow with
    /// the index.
    pub fn for_each_chunk(&self, mut f: impl FnMut(Id, Location)) -> Result<()> {
        each_chunk_row(&self.db().begin_read()?, |id, raw| {
            // A malformed row locates nothing (lookups report it).
            if let Some(loc) = Location::from_bytes(raw) {
                f(id, loc)
            }
        })?;
        Ok(())
    }

    /// Bring the index in line with the packs in `backend`: index packs it lacks (reading their
    /// trailers); if packs it knows have gone, rebuild from scratch (a chunk may live in more
    /// than one pack, so dropping entries pack by pack could lose a surviving copy).
    pub fn sync(&self, backend: &dyn Backend, key: &MasterKey) -> Result<SyncReport> {
        let listed = backend.list("data/")?;
        let known = self.packs()?;
        let mut report = SyncReport::default();
        let present: HashSet<Id> = listed
            .iter()
            .filter_map(|o| pack::pack_id_from_name(&o.name))
            .collect();
        if known.iter().any(|p| !present.contains(p)) {
            report.packs_removed = known.iter().filter(|p| !present.contains(p)).count();
            report.rebuilt = true;
            self.clear()?;
        }
        let known = if report.rebuilt {
            HashSet::new()
        } else {
            known
        };
        let new: Vec<(Id, u64)> = listed
            .iter()
            .filter_map(|o| Some((pack::pack_id_from_name(&o.name)?, o.size)))
            .filter(|(id, _)| !known.contains(id))
            .collect();
        self.add_trailers(backend, key, &new, &mut report)?;
        Ok(report)
    }

    /// Read the trailers of the packs `new` (id, size), many requests in flight on a remote
    /// store, and index their blobs; a pack whose trailer cannot be read is reported.
    fn add_trailers(
        &self,
        backend: &dyn Backend,
        key: &MasterKey,
        new: &[(Id, u64)],
        report: &mut SyncReport,
    ) -> Result<()> {
        let mut requests = new.iter().map(|(id, size)| {
            let (offset, len) = pack::tail_range(*size);
            crate::backend::RangeRequest {
                name: pack::pack_name(id),
                offset,
                len,
            }
        });
        let in_flight = crate::backend::in_flight_for(backend);
        let mut at = 0;
        backend.get_ranges(&mut requests, in_flight, &mut |r, got| {
            let (id, size) = new[at];
            at += 1;
            let entries =
                got.and_then(|tail| pack::trailer_from_tail(backend, key, &r.name, size, &tail));
            match entries {
                Ok(entries) => {
                    self.add_pack(&id, size, &entries)?;
                    report.packs_added += 1;
                }
                Err(e) => report.unreadable.push((r.name, e.to_string())),
            }
            Ok(())
        })
    }

    /// Drop everything and re-read every pack trailer.
    pub fn rebuild(&self, backend: &dyn Backend, key: &MasterKey) -> Result<SyncReport> {
        self.clear()?;
        let mut r = self.sync(backend, key)?;
        r.rebuilt = true;
        Ok(r)
    }
}

impl Drop for Index {
    /// Close the file and, if this session wrote to it, seal it with its checksum.
    fn drop(&mut self) {
        let Some(db) = self.db.take() else { return };
        drop(db);
        if self._temp.is_some() || !self.dirty.load(Ordering::SeqCst) {
            return;
        }
        let sum = sum_path(&self.path);
        let tmp = beside(&sum, ".tmp");
        if let Ok(line) = file_sum(&self.path)
            && write_private(&tmp, format!("{line}\n").as_bytes()).is_ok()
        {
            let _ = std::fs::rename(&tmp, &sum);
        }
    }
}

/// Read-only access to an index file, for verification (`snap check`). Nothing is ever written
/// to `path`: the file is opened in redb's read-only mode, and an index that was not closed
/// cleanly (which opening it normally would repair in place) is repaired in a private copy.
pub struct IndexReader {
    db: ReaderDb,
    _temp: Option<tempfile::TempDir>,
}

enum ReaderDb {
    ReadOnly(redb::ReadOnlyDatabase),
    Copy(Database),
}

impl IndexReader {
    /// Open the index at `path` read-only. Errors: [`Error::IndexBusy`] when another process
    /// has it open for writing; [`Error::Io`] when it cannot be read (or does not exist);
    /// [`Error::Index`] when it is not a readable redb file (damaged).
    pub fn open(path: &Path) -> Result<IndexReader> {
        match redb::ReadOnlyDatabase::open(path) {
            Ok(db) => Ok(IndexReader {
                db: ReaderDb::ReadOnly(db),
                _temp: None,
            }),
            Err(DatabaseError::DatabaseAlreadyOpen) => Err(Error::IndexBusy {
                path: path.to_path_buf(),
            }),
            Err(DatabaseError::Storage(redb::StorageError::Io(e))) => Err(Error::io(path, e)),
            Err(DatabaseError::RepairAborted) => {
                let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
                let copy = dir.path().join("index.redb");
                std::fs::copy(path, &copy).map_err(|e| Error::io(path, e))?;
                let db = Database::open(&copy).map_err(|e| {
                    Error::Index(format!(
                        "{}: not closed cleanly, and repairing a copy failed: {e}",
                        path.display()
                    ))
                })?;
                Ok(IndexReader {
                    db: ReaderDb::Copy(db),
                    _temp: Some(dir),
                })
            }
            Err(e) => Err(Error::Index(format!("{}: {e}", path.display()))),
        }
    }

    /// Whether the file had not been closed cleanly (a snap process was interrupted) and was
    /// read from a repaired private copy.
    pub fn was_repaired(&self) -> bool {
        self._temp.is_some()
    }

    fn begin_read(&self) -> Result<redb::ReadTransaction> {
        Ok(match &self.db {
            ReaderDb::ReadOnly(d) => d.begin_read()?,
            ReaderDb::Copy(d) => d.begin_read()?,
        })
    }

    /// The repository id and layout recorded in the `meta` table (`None` when absent).
    pub fn meta(&self) -> Result<(Option<String>, Option<String>)> {
        let rtx = self.begin_read()?;
        let t = match rtx.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok((None, None)),
            Err(e) => return Err(e.into()),
        };
        let get = |k: &str| -> Result<Option<String>> {
            Ok(t.get(k)?
                .map(|v| String::from_utf8_lossy(v.value()).into_owned()))
        };
        Ok((get("repo_id")?, get("layout")?))
    }

    /// Whether the file is an index of repository `repo_id` in the layout this snap writes.
    pub fn is_current(&self, repo_id: &str) -> Result<bool> {
        let (id, layout) = self.meta()?;
        Ok(id.as_deref() == Some(repo_id)
            && layout.as_deref().map(str::as_bytes) == Some(INDEX_LAYOUT))
    }

    /// Every pack recorded: (pack id, size in bytes, blob count).
    pub fn packs(&self) -> Result<Vec<(Id, u64, u32)>> {
        let rtx = self.begin_read()?;
        let t = match rtx.open_table(PACKS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let v = v.value();
            out.push((
                Id(*k.value()),
                u64::from_le_bytes(v[..8].try_into().unwrap()),
                u32::from_le_bytes(v[8..].try_into().unwrap()),
            ));
        }
        Ok(out)
    }

    /// Call `f` for every chunk row, streaming (in id order). The location is `None` when the
    /// row's kind byte is not a chunk kind (a damaged row).
    pub fn for_each_chunk(&self, mut f: impl FnMut(Id, Option<Location>)) -> Result<()> {
        each_chunk_row(&self.begin_read()?, |id, raw| {
            f(id, Location::from_bytes(raw))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;
    use crate::blob;
    use crate::pack::PackWriter;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("SNAP_MUTATION_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Index rows: a valid row (from `to_bytes`) with any byte replaced decodes to a
        /// location only when its kind byte is a chunk kind, and then round-trips.
        #[test]
        fn location_rows_mutated(
            offset in any::<u32>(), length in any::<u32>(), raw_len in any::<u32>(), tree in any::<bool>(),
            at in 0usize..45, byte in any::<u8>(),
        ) {
            let loc = Location {
                pack: Id::hash_of(&offset.to_le_bytes()),
                offset,
                length,
                raw_len,
                kind: if tree { BlobKind::Tree } else { BlobKind::Data },
            };
            let mut row = loc.to_bytes();
            prop_assert_eq!(Location::from_bytes(&row), Some(loc));
            row[at] = byte;
            match Location::from_bytes(&row) {
                Some(l) => prop_assert_eq!(l.to_bytes(), row),
                None => prop_assert!(at == 44 && !matches!(byte, 1 | 2)),
            }
        }
    }

    fn write_pack(b: &MemoryBackend, k: &MasterKey, datas: &[&[u8]]) -> (Id, Vec<Id>) {
        let mut w = PackWriter::new();
        let mut ids = vec![];
        for d in datas {
            let id = k.chunk_id(d);
            w.add(
                BlobKind::Data,
                id,
                d.len() as u32,
                &blob::encode(k, BlobKind::Data, &id, d, 3),
            );
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
