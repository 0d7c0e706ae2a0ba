//! The mounted repository as plain calls (lookup, getattr, readdir, readlink, read) over the
//! [`Model`], loading what the model needs from the repository: the snapshot list (refreshed
//! when a listing is older than [`MountOptions::refresh`]), a snapshot's tree when its
//! directory is first used, and chunks through the [`ChunkCache`], with readahead on a few
//! decode threads. No FUSE here: `fuse.rs` adapts this to the kernel.
//!
//! Copying many small files (`cp -r`) costs one kernel round trip per file, far more than
//! decoding it. So a read from a file's start is taken as the start of a walk through its
//! directory: the files that follow are decoded ahead and, given a [`KernelCache`], placed into
//! the kernel's page cache, where the copy then finds them without asking. The window grows
//! while the walk goes on (a lone `cat` pushes little).

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use lru::LruCache;

use super::cache::ChunkCache;
use super::model::{Attr, DirEntry, FileContent, Ino, Model, Piece, SnapshotInfo, VirtualFile};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::ops::dbsnap;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::{ChunkRef, EntryKind, Manifest, Tree};

/// The first window of following files a read from a file's start prepares (bytes); each
/// further read from a start in the same directory doubles it, up to
/// [`MountOptions::readahead_bytes`].
const WALK_WINDOW_START: u64 = 1 << 20;
/// At most this many following files per window.
const WALK_MAX_FILES: usize = 4096;
/// Files up to this size are placed into the kernel's page cache whole; larger ones are read
/// by the kernel's own readahead (a few large requests each).
const PUSH_FILE_MAX: u64 = 1 << 20;
/// The first part of a file past a read that is pushed (bytes); doubled while the file is
/// read on from where the last push ended, up to [`MountOptions::readahead_bytes`].
const STREAM_WINDOW_START: u64 = 1 << 20;
/// The largest single store into the kernel's page cache.
const STORE_MAX: u64 = 1 << 20;
/// Directories whose walk window is remembered, files remembered as pushed, and files whose
/// sequential reading is followed.
const WALKS_REMEMBERED: usize = 1024;
const PUSHED_REMEMBERED: usize = 1 << 16;
const STREAMS_REMEMBERED: usize = 256;
/// Page size assumed for aligning pushes (a smaller real page size only means more pushes
/// land on whole pages).
const PAGE: u64 = 4096;

/// Bytes `from..to` of file `ino`, to be placed into the kernel's page cache.
struct Push {
    ino: Ino,
    content: Arc<FileContent>,
    from: u64,
    to: u64,
}

/// A file being read on sequentially: where its last push ended, and the next window.
#[derive(Clone, Copy)]
struct Stream {
    pushed_to: u64,
    window: u64,
}

/// What the kernel caches of the mount, driven from here (FUSE notifications).
pub trait KernelCache: Send + Sync {
    /// Put `data` at `offset` of file `ino` into the page cache before it is read, so reading
    /// it needs no request to this process. An error only means the kernel will ask instead.
    fn store(&self, ino: Ino, offset: u64, data: &[u8]) -> std::io::Result<()>;
    /// Make the kernel forget what it cached of `ino` (attributes, data, a link's target).
    fn invalidate(&self, ino: Ino) -> std::io::Result<()>;
}

/// Tuning of a mount.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Decoded chunks kept in memory (bytes of plaintext).
    pub cache_bytes: u64,
    /// How far ahead of a read (and into the files of a listed directory) chunks are decoded
    /// in the background.
    pub readahead_bytes: u64,
    /// Listings of snapshots older than this are read again when used.
    pub refresh: Duration,
    /// Threads decoding chunks ahead of reads.
    pub readahead_threads: usize,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            cache_bytes: 256 << 20,
            readahead_bytes: 16 << 20,
            refresh: Duration::from_secs(5),
            readahead_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(2, 8),
        }
    }
}

pub struct SnapFs {
    repo: Arc<Repository>,
    model: RwLock<Model>,
    cache: Arc<ChunkCache>,
    /// Manifests read so far (a snapshot's tree is loaded from its manifest on first use).
    manifests: Mutex<HashMap<Id, Manifest>>,
    /// When the snapshot list was last read; held while reading it.
    listed_at: Mutex<Option<Instant>>,
    /// Held while a tree is loaded (so two lookups do not load it twice).
    load_lock: Mutex<()>,
    readahead: crossbeam_channel::Sender<Id>,
    opts: MountOptions,
    progress: Arc<dyn Progress>,
    /// Damaged manifests already reported.
    warned: Mutex<HashSet<Id>>,
    /// The kernel's cache of the mount (set by [`SnapFs::attach_kernel_cache`]).
    kernel: OnceLock<Arc<dyn KernelCache>>,
    /// Parts of files to place into the kernel's page cache.
    push: OnceLock<crossbeam_channel::Sender<Push>>,
    /// Per directory: the size of the next walk window.
    walks: Mutex<LruCache<Ino, u64>>,
    /// Files already queued for pushing whole.
    pushed: Mutex<LruCache<Ino, ()>>,
    /// Files being read sequentially.
    streams: Mutex<LruCache<Ino, Stream>>,
}

/// Run `f`; if it failed because the index does not know a chunk or points at a pack that is
/// gone (a backup or prune ran since the index was read), bring the index up to date and run it
/// once more.
fn with_resync<T>(repo: &Repository, f: impl Fn() -> Result<T>) -> Result<T> {
    match f() {
        Err(Error::ChunkMissing(_) | Error::Corrupt { .. }) => {
            repo.resync_index()?;
            f()
        }
        other => other,
    }
}

fn load_chunk(repo: &Repository, id: &Id) -> Result<Vec<u8>> {
    with_resync(repo, || repo.read_chunk(id))
}

/// The decoded chunks that hold `pieces` of `f` (from the cache or loaded into it), each
/// checked to hold its piece.
fn decode_pieces(
    repo: &Repository,
    cache: &ChunkCache,
    f: &FileContent,
    pieces: &[Piece],
) -> Result<Vec<Arc<Vec<u8>>>> {
    pieces
        .iter()
        .map(|p| {
            let c = &f.chunks()[p.chunk];
            let data = cache.get(c.id(), || load_chunk(repo, c.id()))?;
            if data.len() < p.start + p.len {
                return Err(Error::corrupt(
                    format!("chunk {}", c.id().short()),
                    format!("holds {} bytes, the tree says {}", data.len(), c.len()),
                ));
            }
            Ok(data)
        })
        .collect()
}

/// Append the bytes of `pieces`, held by `decoded` (from [`decode_pieces`]), to `out`.
fn append_pieces(out: &mut Vec<u8>, pieces: &[Piece], decoded: &[Arc<Vec<u8>>]) {
    for (p, d) in pieces.iter().zip(decoded) {
        out.extend_from_slice(&d[p.start..p.start + p.len]);
    }
}

/// Chunks queued for readahead that one read through the pipeline takes at most.
const READAHEAD_BATCH: usize = 64;

/// A readahead thread: the chunks queued so far (up to [`READAHEAD_BATCH`]) read together
/// through [`Repository::read_chunks`] — neighbours in one ranged read, many requests in flight
/// on a remote store — into the cache. Errors surface when the data is actually read.
fn readahead(repo: &Repository, cache: &ChunkCache, rx: &crossbeam_channel::Receiver<Id>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < READAHEAD_BATCH {
            match rx.try_recv() {
                Ok(id) => batch.push(id),
                Err(_) => break,
            }
        }
        batch.retain(|id| !cache.contains(id));
        let _ = repo.read_chunks(batch.iter(), &mut |i, got| {
            if let Ok(data) = got {
                let _ = cache.get(&batch[i], move || Ok(data));
            }
            Ok(())
        });
    }
}

impl SnapFs {
    /// Read the snapshot list (manifests only; trees are loaded when first used).
    pub fn new(
        repo: Arc<Repository>,
        opts: MountOptions,
        progress: Arc<dyn Progress>,
    ) -> Result<SnapFs> {
        let now_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let cache = Arc::new(ChunkCache::new(opts.cache_bytes));
        let (tx, rx) = crossbeam_channel::bounded::<Id>(4096);
        for n in 0..opts.readahead_threads.max(1) {
            let (rx, repo, cache) = (rx.clone(), repo.clone(), cache.clone());
            std::thread::Builder::new()
                .name(format!("snap-readahead-{n}"))
                .spawn(move || readahead(&repo, &cache, &rx))
                .map_err(|e| Error::io("<readahead thread>", e))?;
        }
        let fs = SnapFs {
            repo,
            model: RwLock::new(Model::new(uid, gid, now_ns)),
            cache,
            manifests: Mutex::new(HashMap::new()),
            listed_at: Mutex::new(None),
            load_lock: Mutex::new(()),
            readahead: tx,
            opts,
            progress,
            warned: Mutex::new(HashSet::new()),
            kernel: OnceLock::new(),
            push: OnceLock::new(),
            walks: Mutex::new(LruCache::new(
                NonZeroUsize::new(WALKS_REMEMBERED).expect("not zero"),
            )),
            pushed: Mutex::new(LruCache::new(
                NonZeroUsize::new(PUSHED_REMEMBERED).expect("not zero"),
            )),
            streams: Mutex::new(LruCache::new(
                NonZeroUsize::new(STREAMS_REMEMBERED).expect("not zero"),
            )),
        };
        fs.refresh(true)?;
        Ok(fs)
    }

    pub fn progress(&self) -> &dyn Progress {
        &*self.progress
    }

    /// From now on, tell `kernel` when a link moves, and place the files a directory walk is
    /// about to read into its page cache (one background thread; an error from
    /// [`KernelCache::store`] stops the pushing, reads work as before).
    pub fn attach_kernel_cache(&self, kernel: Arc<dyn KernelCache>) -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded::<Push>(WALK_MAX_FILES);
        let (repo, cache, store) = (self.repo.clone(), self.cache.clone(), kernel.clone());
        std::thread::Builder::new()
            .name("snap-pagestore".into())
            .spawn(move || {
                let mut buf = Vec::new();
                for job in rx {
                    let mut at = job.from;
                    while at < job.to {
                        let len = (job.to - at).min(STORE_MAX);
                        let pieces = job.content.pieces(at, len);
                        // On an error the read path reports what is wrong.
                        let Ok(decoded) = decode_pieces(&repo, &cache, &job.content, &pieces)
                        else {
                            break;
                        };
                        let stored = if let ([p], [d]) = (&pieces[..], &decoded[..]) {
                            // Most small files are one chunk: no copy.
                            store.store(job.ino, at, &d[p.start..p.start + p.len])
                        } else {
                            buf.clear();
                            append_pieces(&mut buf, &pieces, &decoded);
                            store.store(job.ino, at, &buf)
                        };
                        if stored.is_err() {
                            return;
                        }
                        at += len;
                    }
                }
            })
            .map_err(|e| Error::io("<page store thread>", e))?;
        let _ = self.kernel.set(kernel);
        let _ = self.push.set(tx);
        Ok(())
    }

    /// Read the snapshot list again if it is older than the refresh interval (or `force`).
    fn refresh(&self, force: bool) -> Result<()> {
        let mut listed_at = self.listed_at.lock().unwrap();
        if !force && listed_at.is_some_and(|t| t.elapsed() < self.opts.refresh) {
            return Ok(());
        }
        let ids = self.repo.snapshot_ids()?;
        let mut manifests = self.manifests.lock().unwrap();
        for id in &ids {
            if manifests.contains_key(id) {
                continue;
            }
            match self.repo.load_manifest(id) {
                Ok(m) => {
                    manifests.insert(*id, m);
                }
                // Forgotten between listing and reading.
                Err(Error::NotFound { .. }) => {}
                Err(e) => {
                    if self.warned.lock().unwrap().insert(*id) {
                        self.progress
                            .warn(&format!("snapshot {} is not shown: {e}", id.short()));
                    }
                }
            }
        }
        let mut infos: Vec<SnapshotInfo> = ids
            .iter()
            .filter_map(|id| {
                let m = manifests.get(id)?;
                Some(SnapshotInfo {
                    id: *id,
                    time: m.time,
                    host: m.host.clone(),
                    tags: m.tags.clone(),
                })
            })
            .collect();
        drop(manifests);
        infos.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        let moved = self.model.write().unwrap().set_snapshots(&infos);
        *listed_at = Some(Instant::now());
        drop(listed_at);
        // Links the kernel may have cached (`FUSE_CACHE_SYMLINKS`) that now point elsewhere.
        // Sent with no lock held: the kernel may need another request (a readlink in
        // flight) answered first.
        if let Some(kernel) = self.kernel.get() {
            for ino in moved {
                if let Err(e) = kernel.invalidate(ino) {
                    self.progress.warn(&format!(
                        "the kernel did not take a changed link (inode {ino}): {e}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Make `ino` ready to be listed or searched: refresh a stale listing, load a pending tree.
    fn prepare_dir(&self, ino: Ino) -> Result<()> {
        if self.model.read().unwrap().is_listing(ino) {
            self.refresh(false)?;
        }
        let Some(id) = self.model.read().unwrap().pending_tree(ino) else {
            return Ok(());
        };
        let _loading = self.load_lock.lock().unwrap();
        if self.model.read().unwrap().pending_tree(ino).is_none() {
            return Ok(());
        }
        let refs = self
            .manifests
            .lock()
            .unwrap()
            .get(&id)
            .map(|m| m.tree.clone())
            .ok_or_else(|| Error::SnapshotNotFound(id.short()))?;
        let tree = with_resync(&self.repo, || self.repo.load_tree_refs(&refs))?;
        let virtual_files = self.virtual_files(&id, &tree);
        self.model
            .write()
            .unwrap()
            .attach_tree(ino, &tree, &virtual_files);
        Ok(())
    }

    /// `db/<database>/data.sql` for each database of `tree`: the parts `data-order.json` lists,
    /// in order, as one file. A database whose parts cannot be assembled gets a warning.
    fn virtual_files(&self, snapshot: &Id, tree: &Tree) -> Vec<VirtualFile> {
        let mut out = Vec::new();
        for db in dbsnap::databases(tree) {
            let base = format!("db/{db}");
            let Some(order) = tree
                .get(&format!("{base}/data-order.json"))
                .filter(|e| e.kind == EntryKind::File)
            else {
                continue;
            };
            let assembled = (|| -> Result<Vec<ChunkRef>> {
                let bytes = with_resync(&self.repo, || {
                    let mut b = Vec::new();
                    self.repo.write_file_to(&order.chunks, &mut b)?;
                    Ok(b)
                })?;
                dbsnap::data_sql_chunks(tree, &base, &dbsnap::parse_data_order(&bytes, &base)?)
            })();
            match assembled {
                Ok(chunks) => out.push(VirtualFile {
                    path: format!("{base}/data.sql"),
                    chunks,
                    mode: order.mode,
                    mtime_ns: order.mtime_ns,
                    uid: order.uid,
                    gid: order.gid,
                }),
                Err(e) => self.progress.warn(&format!(
                    "snapshot {}: {base}/data.sql is not shown: {e}",
                    snapshot.short()
                )),
            }
        }
        out
    }

    pub fn getattr(&self, ino: Ino) -> Option<Attr> {
        self.model.read().unwrap().attr(ino)
    }

    /// Whether `ino`'s attributes may change (so the kernel should cache them only briefly).
    pub fn is_dynamic(&self, ino: Ino) -> bool {
        self.model.read().unwrap().is_dynamic(ino)
    }

    /// The entry `name` in directory `parent`; `Ok(None)` if there is none.
    pub fn lookup(&self, parent: Ino, name: &str) -> Result<Option<Attr>> {
        self.prepare_dir(parent)?;
        let model = self.model.read().unwrap();
        Ok(model.lookup(parent, name).and_then(|ino| model.attr(ino)))
    }

    /// A directory's entries, `.` and `..` first; `Ok(None)` if `ino` is not a directory.
    /// `first` marks the first call of a listing (it starts readahead of the files).
    pub fn readdir(&self, ino: Ino, first: bool) -> Result<Option<Vec<DirEntry>>> {
        self.prepare_dir(ino)?;
        let model = self.model.read().unwrap();
        let Some(children) = model.children(ino) else {
            return Ok(None);
        };
        let parent = model.parent(ino).unwrap_or(ino);
        let mut out = vec![
            DirEntry {
                name: ".".into(),
                ino,
                kind: EntryKind::Dir,
            },
            DirEntry {
                name: "..".into(),
                ino: parent,
                kind: EntryKind::Dir,
            },
        ];
        // Files are often read right after their directory is listed (`cp -r`): start decoding
        // the first chunk of each (reading a file then reads ahead within it).
        let mut budget = if first { self.opts.readahead_bytes } else { 0 };
        for c in children.iter().filter(|c| c.kind == EntryKind::File) {
            let Some(first) = model.file(c.ino).and_then(|f| f.chunks().first().copied()) else {
                continue;
            };
            if budget < first.len() || !self.queue(first.id()) {
                break;
            }
            budget -= first.len();
        }
        out.extend(children);
        Ok(Some(out))
    }

    pub fn readlink(&self, ino: Ino) -> Option<String> {
        self.model.read().unwrap().readlink(ino).map(str::to_string)
    }

    /// Whether `ino` is a regular file.
    pub fn is_file(&self, ino: Ino) -> bool {
        self.model.read().unwrap().file(ino).is_some()
    }

    /// Up to `size` bytes of file `ino` from `offset` (fewer only at the end of the file). The
    /// chunks are found from the cumulative chunk lengths, so no earlier chunk is read.
    pub fn read(&self, ino: Ino, offset: u64, size: u32) -> Result<Vec<u8>> {
        let f = self
            .model
            .read()
            .unwrap()
            .file(ino)
            .ok_or_else(|| Error::Invalid(format!("inode {ino} is not a file")))?;
        let pieces = f.pieces(offset, size as u64);
        if let Some(last) = pieces.last() {
            self.queue_chunks(&f, last.chunk + 1, self.opts.readahead_bytes);
        }
        let len: usize = pieces.iter().map(|p| p.len).sum();
        self.stream_ahead(ino, &f, offset, offset + len as u64);
        if offset == 0 {
            self.walk_ahead(ino);
        }
        let decoded = decode_pieces(&self.repo, &self.cache, &f, &pieces)?;
        let mut out = Vec::with_capacity(len);
        append_pieces(&mut out, &pieces, &decoded);
        Ok(out)
    }

    /// File `ino` is read from its start, often one of many copied in turn (`cp -r`): decode
    /// the files that follow it in its directory and push the small ones into the kernel's
    /// page cache, within a window that doubles with each such read in the directory.
    fn walk_ahead(&self, ino: Ino) {
        let Some(dir) = self.model.read().unwrap().parent(ino) else {
            return;
        };
        let window = {
            let mut walks = self.walks.lock().unwrap();
            let w = walks
                .get(&dir)
                .map_or(WALK_WINDOW_START, |w| w.saturating_mul(2))
                .min(self.opts.readahead_bytes.max(WALK_WINDOW_START));
            walks.put(dir, w);
            w
        };
        let files = self
            .model
            .read()
            .unwrap()
            .following_files(ino, WALK_MAX_FILES, window);
        let push = self.push.get();
        let mut left = window;
        for (file, f) in files {
            if f.size() > left {
                // Only the start of a file past the window: reading it continues the walk.
                if let Some(c) = f.chunks().first().filter(|c| c.len() <= left) {
                    self.queue(c.id());
                }
                break;
            }
            left -= f.size();
            if !f.chunks().iter().all(|c| self.queue(c.id())) {
                break;
            }
            if let Some(push) = push
                && f.size() > 0
                && f.size() <= PUSH_FILE_MAX
                && self.pushed.lock().unwrap().put(file, ()).is_none()
                && push
                    .try_send(Push {
                        ino: file,
                        from: 0,
                        to: f.size(),
                        content: f,
                    })
                    .is_err()
            {
                break;
            }
        }
    }

    /// Bytes `offset..end` of file `ino` are being read: push the part after them into the
    /// kernel's page cache, so a sequential reader (`cp` of a large file) finds it there. The
    /// window doubles while the reads continue where the last push ended; a read elsewhere
    /// starts over small.
    fn stream_ahead(&self, ino: Ino, f: &Arc<FileContent>, offset: u64, end: u64) {
        let Some(push) = self.push.get() else { return };
        if end >= f.size() {
            return;
        }
        let max = self.opts.readahead_bytes.max(STREAM_WINDOW_START);
        let mut streams = self.streams.lock().unwrap();
        let (from, window) = match streams.get(&ino) {
            // Within (or just at the end of) what was pushed: the reader follows the pushes.
            Some(s) if offset <= s.pushed_to && offset + s.window >= s.pushed_to => {
                (s.pushed_to.max(end), (s.window * 2).min(max))
            }
            _ => (end, STREAM_WINDOW_START),
        };
        let from = from / PAGE * PAGE;
        let to = (end + window).min(f.size());
        if to <= from {
            return;
        }
        streams.put(
            ino,
            Stream {
                pushed_to: to,
                window,
            },
        );
        drop(streams);
        let _ = push.try_send(Push {
            ino,
            content: f.clone(),
            from,
            to,
        });
        // No read comes while the reader is inside the pushed part: decode the next window now,
        // so the push that the read at its end asks for finds its chunks ready.
        if let Some((chunk, within)) = f.locate(to) {
            self.queue_chunks(f, chunk, within + window);
        }
    }

    /// Queue the chunks of `f` from index `from` on, `budget` bytes of them, for background
    /// decoding.
    fn queue_chunks(&self, f: &FileContent, from: usize, budget: u64) {
        let mut queued = 0;
        for c in f.chunks().iter().skip(from) {
            if queued >= budget || !self.queue(c.id()) {
                break;
            }
            queued += c.len();
        }
    }

    /// Queue chunk `id` for background decoding unless it is cached; false if the queue is full.
    fn queue(&self, id: &Id) -> bool {
        self.cache.contains(id) || self.readahead.try_send(*id).is_ok()
    }

    /// Plaintext bytes held by the chunk cache.
    pub fn cached_bytes(&self) -> u64 {
        self.cache.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, MemoryBackend};
    use crate::ops::{BackupInput, BackupOptions, backup};
    use crate::progress::NoProgress;
    use crate::repo::{InitOptions, Repository};
    use crate::source::ReaderSource;

    fn repo() -> (Arc<Repository>, tempfile::TempDir) {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let init = InitOptions {
            kdf: crate::crypto::keyfile::KdfParams {
                m_cost: 64,
                t_cost: 1,
                p_cost: 1,
            },
            chunker: crate::chunker::ChunkerParams::with_avg(16 * 1024),
            pack_size: 1 << 20,
            ..Default::default()
        };
        Repository::init(&*backend, b"pw", &init).unwrap();
        let cache = tempfile::tempdir().unwrap();
        (
            Arc::new(Repository::open(backend, b"pw", cache.path()).unwrap()),
            cache,
        )
    }

    fn stream(repo: &Repository, name: &str, data: &[u8]) {
        let src = ReaderSource::new(name, data);
        backup(
            repo,
            BackupInput::Stream(Box::new(src)),
            &BackupOptions::default(),
            &NoProgress,
        )
        .unwrap();
    }

    fn walk(fs: &SnapFs, mut ino: Ino, path: &str) -> Attr {
        let mut attr = fs.getattr(ino).unwrap();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            attr = fs
                .lookup(ino, part)
                .unwrap()
                .unwrap_or_else(|| panic!("{part} of {path} not found"));
            if attr.kind == EntryKind::Symlink {
                // Only the top-level `latest` is followed here.
                let target = fs.readlink(attr.ino).unwrap();
                attr = walk(fs, super::super::model::ROOT, &target);
            }
            ino = attr.ino;
        }
        attr
    }

    /// Records what the filesystem tells the kernel.
    #[derive(Default)]
    struct Recorder {
        stored: Mutex<Vec<(Ino, u64, Vec<u8>)>>,
        invalidated: Mutex<Vec<Ino>>,
    }

    impl KernelCache for Recorder {
        fn store(&self, ino: Ino, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.stored
                .lock()
                .unwrap()
                .push((ino, offset, data.to_vec()));
            Ok(())
        }
        fn invalidate(&self, ino: Ino) -> std::io::Result<()> {
            self.invalidated.lock().unwrap().push(ino);
            Ok(())
        }
    }

    /// A mounted backup of a directory of 40 small files and one large one, with a kernel cache
    /// that records what it is told.
    struct Walked {
        fs: SnapFs,
        kernel: Arc<Recorder>,
        /// The backed-up directory in the mount.
        dir: Attr,
        files: Vec<(String, Vec<u8>)>,
        large: Vec<u8>,
        _src: tempfile::TempDir,
    }

    impl Walked {
        /// Back up the directory into `repo` and mount it.
        fn new(repo: &Arc<Repository>) -> Walked {
            let dir = tempfile::tempdir().unwrap();
            let files: Vec<(String, Vec<u8>)> = (0..40u32)
                .map(|i| {
                    (
                        format!("f{i:02}"),
                        (0..(i * 997 + 1)).map(|b| (b * 31 + i) as u8).collect(),
                    )
                })
                .collect();
            for (name, data) in &files {
                std::fs::write(dir.path().join(name), data).unwrap();
            }
            // One larger than what is pushed whole; still decoded ahead, never pushed.
            let large: Vec<u8> = (0..3 * PUSH_FILE_MAX + 1)
                .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
                .collect();
            std::fs::write(dir.path().join("zz-large"), &large).unwrap();
            backup(
                repo,
                BackupInput::Paths(vec![dir.path().to_path_buf()]),
                &BackupOptions::default(),
                &NoProgress,
            )
            .unwrap();

            let opts = MountOptions {
                refresh: Duration::ZERO,
                ..Default::default()
            };
            let fs = SnapFs::new(repo.clone(), opts, Arc::new(NoProgress)).unwrap();
            let kernel = Arc::new(Recorder::default());
            fs.attach_kernel_cache(kernel.clone()).unwrap();
            let root = super::super::model::ROOT;
            let stored_dir = dir.path().to_str().unwrap().trim_start_matches('/');
            let d = walk(&fs, root, &format!("latest/{stored_dir}"));
            Walked {
                fs,
                kernel,
                dir: d,
                files,
                large,
                _src: dir,
            }
        }

        /// The inode of file `name` of the directory.
        fn ino_of(&self, name: &str) -> Ino {
            self.fs.lookup(self.dir.ino, name).unwrap().unwrap().ino
        }

        /// Wait (up to 10 s) for `n` pushes, then take all pushed so far.
        fn wait_for(&self, n: usize) -> Vec<(Ino, u64, Vec<u8>)> {
            let kernel = &self.kernel;
            let deadline = Instant::now() + Duration::from_secs(10);
            while kernel.stored.lock().unwrap().len() < n && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(100));
            std::mem::take(&mut *kernel.stored.lock().unwrap())
        }

        /// Reads that push the rest of a file, and a walk that pushes the files after it.
        fn small_files(&self) {
            let (fs, files) = (&self.fs, &self.files);
            let ino_of = |name: &str| self.ino_of(name);
            let wait_for = |n: usize| self.wait_for(n);

            // Reading a file at an offset other than its start is no walk: only the rest of that
            // file is pushed (from the page the read ended in).
            fs.read(ino_of("f05"), 1, 10).unwrap();
            let f05 = &files[5].1;
            assert_eq!(wait_for(1), vec![(ino_of("f05"), 0, f05.clone())]);

            // Reading f00 from its start pushes the files after it, whole and byte-exact, within
            // the first window (1 MiB).
            assert_eq!(fs.read(ino_of("f00"), 0, 1 << 20).unwrap(), files[0].1);
            let want: HashMap<Ino, &Vec<u8>> = files.iter().map(|(n, d)| (ino_of(n), d)).collect();
            let stored = wait_for(39);
            assert_eq!(
                stored.len(),
                39,
                "f01..f39 are pushed (together {} bytes)",
                files[1..].iter().map(|f| f.1.len()).sum::<usize>()
            );
            for (ino, offset, data) in &stored {
                assert_eq!((*offset, data), (0, want[ino]), "inode {ino}");
            }
            assert!(
                !stored.iter().any(|(ino, ..)| *ino == ino_of("zz-large")),
                "too large to push"
            );

            // A second walk pushes nothing twice (f01 itself is short: nothing follows the read).
            fs.read(ino_of("f01"), 0, 1 << 20).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            assert!(wait_for(0).is_empty());
        }

        /// A large file read on sequentially: the part after each read is pushed, 1 MiB first,
        /// twice as much when the reader goes on where the push ended; a read elsewhere starts
        /// over small.
        fn large_file(&self) {
            let (fs, large) = (&self.fs, &self.large);
            let wait_for = |n: usize| self.wait_for(n);
            let big = self.ino_of("zz-large");
            let check = |stored: &[(Ino, u64, Vec<u8>)], from: u64, to: u64| {
                let mut at = from;
                for (ino, off, data) in stored {
                    assert_eq!((*ino, *off), (big, at));
                    assert!(data.len() as u64 <= STORE_MAX);
                    assert_eq!(&data[..], &large[at as usize..at as usize + data.len()]);
                    at += data.len() as u64;
                }
                assert_eq!(at, to, "pushed {from}..{at}, wanted ..{to}");
            };
            let read = 128 * 1024;
            fs.read(big, 0, read as u32).unwrap();
            check(&wait_for(1), read, read + STREAM_WINDOW_START);
            let next = read + STREAM_WINDOW_START;
            fs.read(big, next, read as u32).unwrap();
            check(
                &wait_for(2),
                next + read,
                (next + read + 2 * STREAM_WINDOW_START).min(large.len() as u64),
            );
            fs.read(big, 5 * PAGE + 1, 10).unwrap();
            check(&wait_for(1), 5 * PAGE, 5 * PAGE + 11 + STREAM_WINDOW_START);
        }

        /// A new snapshot moves `latest`: the kernel is told to forget the cached targets.
        fn latest_moves(&self, repo: &Repository) {
            let (fs, kernel) = (&self.fs, &self.kernel);
            let root = super::super::model::ROOT;
            let latest = fs.lookup(root, "latest").unwrap().unwrap().ino;
            let old_snapshot = walk(fs, root, "latest").ino;
            stream(repo, "other", b"x");
            fs.readdir(super::super::model::ROOT, true).unwrap();
            let invalidated = kernel.invalidated.lock().unwrap().clone();
            assert!(invalidated.contains(&latest), "{invalidated:?}");
            assert_eq!(fs.lookup(root, "latest").unwrap().unwrap().ino, latest);
            assert_ne!(
                walk(fs, root, "latest").ino,
                old_snapshot,
                "`latest` is the new snapshot"
            );
        }
    }

    #[test]
    fn a_walk_through_a_directory_pushes_the_following_files_and_moved_links_are_invalidated() {
        let (repo, _c) = repo();
        let w = Walked::new(&repo);
        w.small_files();
        w.large_file();
        w.latest_moves(&repo);
    }

    #[test]
    fn reads_at_any_offset_and_sees_new_snapshots() {
        let (repo, _c) = repo();
        let data: Vec<u8> = (0..600_000u32)
            .flat_map(|i| (i.wrapping_mul(2654435761)).to_le_bytes())
            .collect();
        stream(&repo, "dump/big.bin", &data);
        let opts = MountOptions {
            refresh: Duration::ZERO,
            ..Default::default()
        };
        let fs = SnapFs::new(repo.clone(), opts, Arc::new(NoProgress)).unwrap();
        let f = walk(&fs, super::super::model::ROOT, "latest/dump/big.bin");
        assert_eq!(f.size, data.len() as u64);
        assert!(fs.model.read().unwrap().file(f.ino).unwrap().chunks().len() > 10);
        for (off, len) in [
            (0u64, 10u32),
            (1_234_567, 100_000),
            (data.len() as u64 - 5, 100),
            (data.len() as u64, 10),
        ] {
            let got = fs.read(f.ino, off, len).unwrap();
            let end = (off as usize + len as usize).min(data.len());
            assert_eq!(got, &data[off as usize..end], "read at {off}");
        }
        assert!(fs.cached_bytes() > 0);

        let snaps = fs.readdir(2, true).unwrap().unwrap();
        assert_eq!(snaps.len(), 2 + 2, "., .., one snapshot, latest");
        stream(&repo, "dump/second.bin", b"hello");
        let snaps = fs.readdir(2, true).unwrap().unwrap();
        assert_eq!(snaps.len(), 2 + 3, "the new snapshot is listed");
        let s = walk(&fs, super::super::model::ROOT, "latest/dump/second.bin");
        assert_eq!(fs.read(s.ino, 0, 100).unwrap(), b"hello");
    }
}
