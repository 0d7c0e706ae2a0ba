//! `snap backup`: sources → chunker → [`Saver`] → packs → manifest (written last).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Instant;

use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::progress::Progress;
use crate::repo::{Repository, Saver, TreeWriter};
use crate::snapshot::{
    ChunkRef, Entry, EntryKind, Manifest, Snapshot, SourceKind, Summary, path_cmp,
};
use crate::source::files::WalkItem;
use crate::source::{self, EntrySink, Excludes, Source, StreamSource};

#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// Host recorded in the snapshot (default: this machine's name).
    pub host: Option<String>,
    pub tags: Vec<String>,
    pub excludes: Vec<String>,
    /// Re-read every file even when the parent snapshot says it is unchanged.
    pub force: bool,
    /// Parent snapshot to compare against (default: the latest with the same host and paths).
    pub parent: Option<String>,
    /// zstd level (default: the repository's).
    pub compression: Option<i32>,
    /// Snapshot time (default: now). For imports and tests.
    pub time: Option<chrono::DateTime<chrono::FixedOffset>>,
}

pub enum BackupInput<'a> {
    Paths(Vec<PathBuf>),
    Stream(Box<dyn StreamSource + 'a>),
    /// A source that pushes many entries (a database).
    Source(Box<dyn Source + 'a>),
}

#[derive(Debug)]
pub struct BackupOutcome {
    pub snapshot: Snapshot,
    /// Problems that did not stop the backup (skipped files); the snapshot lacks those entries.
    pub warnings: Vec<String>,
    /// Things a source wants the user to know that are not problems (e.g. parts skipped on a
    /// plain Postgres).
    pub notes: Vec<String>,
    /// Source-specific figures (see [`Source::summary`]).
    pub source_summary: crate::source::SourceSummary,
}

/// Where a backup's chunks go: the repository (a [`Saver`]), or nowhere ([`DryStore`], for a
/// dry run that only counts what would be new).
trait Store {
    /// Store `data` unless the repository has it; its id and whether it was new.
    fn save(&self, kind: BlobKind, data: Vec<u8>) -> Result<(Id, bool)>;
    /// Whether chunk `id` may be referenced without storing it again.
    fn reusable(&self, id: &Id) -> Result<bool>;
}

impl Store for Saver {
    fn save(&self, kind: BlobKind, data: Vec<u8>) -> Result<(Id, bool)> {
        Saver::save(self, kind, data)
    }
    fn reusable(&self, id: &Id) -> Result<bool> {
        Saver::reusable(self, id)
    }
}

/// Where a backup's entries go: a [`TreeWriter`], or nowhere (a dry run).
trait TreeSink {
    fn push(&mut self, e: &Entry) -> Result<()>;
}

impl TreeSink for TreeWriter<'_> {
    fn push(&mut self, e: &Entry) -> Result<()> {
        TreeWriter::push(self, e)
    }
}

struct Ctx<'a> {
    repo: &'a Repository,
    saver: &'a dyn Store,
    progress: &'a dyn Progress,
    summary: Summary,
    warnings: Vec<String>,
}

impl<'a> Ctx<'a> {
    /// A context with an empty summary and no warnings yet.
    fn new(repo: &'a Repository, saver: &'a dyn Store, progress: &'a dyn Progress) -> Ctx<'a> {
        Ctx {
            repo,
            saver,
            progress,
            summary: Summary::default(),
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, msg: String) {
        self.progress.warn(&msg);
        self.warnings.push(msg);
        self.summary.skipped += 1;
    }

    /// Chunk a stream into the saver; returns the chunk list and bytes read.
    fn store_stream(
        &mut self,
        reader: &mut dyn Read,
    ) -> std::io::Result<Result<(Vec<ChunkRef>, u64)>> {
        let mut refs = Vec::new();
        let mut total = 0u64;
        for chunk in self.repo.chunker().stream(reader) {
            let chunk = chunk?;
            let len = chunk.len();
            total += len as u64;
            self.progress.bytes(len as u64);
            match self.saver.save(BlobKind::Data, chunk) {
                Ok((id, _)) => refs.push(ChunkRef(id, len as u32)),
                Err(e) => return Ok(Err(e)),
            }
        }
        self.summary.bytes_read += total;
        Ok(Ok((refs, total)))
    }
}

/// A command of the source (pg_dump, a `--command`) failed: the error says no snapshot was
/// recorded.
fn source_failed(e: Error) -> Error {
    match e {
        e @ Error::CommandFailed { .. } => Error::BackupSourceFailed(Box::new(e)),
        e => e,
    }
}

/// What backing up one input recorded, for the manifest and the outcome.
struct Backed {
    paths: Vec<String>,
    kind: SourceKind,
    description: String,
    parent: Option<Id>,
    notes: Vec<String>,
    source_summary: crate::source::SourceSummary,
}

/// Run a backup and record a snapshot. The manifest is written only after every pack it
/// references is durable and indexed; on any error nothing is recorded.
pub fn backup(
    repo: &Repository,
    input: BackupInput<'_>,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    let time = opts
        .time
        .unwrap_or_else(|| chrono::Local::now().fixed_offset());
    let host = opts.host.clone().unwrap_or_else(crate::util::hostname);
    let mut tags = opts.tags.clone();
    tags.sort();
    tags.dedup();
    let level = opts.compression.unwrap_or(repo.config().compression);
    let saver = Saver::new(repo, level)?;
    let mut ctx = Ctx::new(repo, &saver, progress);
    let mut tree = TreeWriter::new(&saver, repo.chunker());
    let backed = back_up_input(&mut ctx, &mut tree, input, opts, &host, time)?;

    let tree_refs = tree.finish()?;
    let mut summary = std::mem::take(&mut ctx.summary);
    let warnings = std::mem::take(&mut ctx.warnings);
    drop(ctx);
    let stats = saver.finish()?;
    let (id, manifest, _) = commit_manifest(repo, &tree_refs, stats, level, |stats| {
        summary.chunks_new = stats.chunks_new;
        summary.added_raw_bytes = stats.raw_bytes_new;
        summary.added_bytes = stats.bytes_added;
        summary.packs_new = stats.packs;
        summary.duration_ms = started.elapsed().as_millis() as u64;
        Manifest {
            version: 1,
            time,
            host,
            username: crate::util::username(),
            tags,
            paths: backed.paths,
            source: backed.kind,
            description: backed.description,
            parent: backed.parent,
            tree: tree_refs.clone(),
            summary,
            copied_from: None,
        }
    })?;
    progress.finish();
    Ok(BackupOutcome {
        snapshot: Snapshot { id, manifest },
        warnings,
        notes: backed.notes,
        source_summary: backed.source_summary,
    })
}

/// Read `input` into `ctx`'s store and `tree`.
fn back_up_input(
    ctx: &mut Ctx,
    tree: &mut dyn TreeSink,
    input: BackupInput<'_>,
    opts: &BackupOptions,
    host: &str,
    time: chrono::DateTime<chrono::FixedOffset>,
) -> Result<Backed> {
    match input {
        BackupInput::Paths(paths) => backup_paths(ctx, tree, &paths, opts, host),
        BackupInput::Stream(src) => backup_stream(ctx, tree, src, time),
        BackupInput::Source(src) => backup_source(ctx, tree, src, opts, host, time),
    }
}

/// What a dry run found: the figures a backup would record (`chunks_new` and `added_raw_bytes`
/// are the data that would be stored, before compression; nothing for the tree), its warnings
/// and notes.
#[derive(Debug)]
pub struct DryRunOutcome {
    pub summary: Summary,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

/// Read `input` as [`backup`] would — walk, chunk, hash, compare with the index — but write
/// nothing: no pack, no index entry, no manifest.
pub fn dry_run(
    repo: &Repository,
    input: BackupInput<'_>,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<DryRunOutcome> {
    let started = Instant::now();
    let time = opts
        .time
        .unwrap_or_else(|| chrono::Local::now().fixed_offset());
    let host = opts.host.clone().unwrap_or_else(crate::util::hostname);
    let store = DryStore {
        repo,
        condemned: repo.condemned_packs()?,
        seen: Default::default(),
        new: Default::default(),
    };
    let mut ctx = Ctx::new(repo, &store, progress);
    let backed = back_up_input(&mut ctx, &mut DryTree, input, opts, &host, time)?;
    let mut summary = std::mem::take(&mut ctx.summary);
    let warnings = std::mem::take(&mut ctx.warnings);
    drop(ctx);
    progress.finish();
    (summary.chunks_new, summary.added_raw_bytes) = *store.new.lock().unwrap();
    summary.duration_ms = started.elapsed().as_millis() as u64;
    Ok(DryRunOutcome {
        summary,
        warnings,
        notes: backed.notes,
    })
}

/// A [`Store`] that stores nothing: it counts the chunks the repository lacks.
struct DryStore<'r> {
    repo: &'r Repository,
    condemned: HashSet<Id>,
    seen: std::sync::Mutex<HashSet<Id>>,
    /// New data chunks and their bytes.
    new: std::sync::Mutex<(u64, u64)>,
}

impl Store for DryStore<'_> {
    fn save(&self, _kind: BlobKind, data: Vec<u8>) -> Result<(Id, bool)> {
        let id = self.repo.key().chunk_id(&data);
        if self.reusable(&id)? || !self.seen.lock().unwrap().insert(id) {
            return Ok((id, false));
        }
        let mut new = self.new.lock().unwrap();
        new.0 += 1;
        new.1 += data.len() as u64;
        Ok((id, true))
    }

    fn reusable(&self, id: &Id) -> Result<bool> {
        Ok(self
            .repo
            .index()?
            .lookup(id)?
            .is_some_and(|l| !self.condemned.contains(&l.pack)))
    }
}

/// A [`TreeSink`] that keeps nothing.
struct DryTree;

impl TreeSink for DryTree {
    fn push(&mut self, _e: &Entry) -> Result<()> {
        Ok(())
    }
}

/// Back up files and directories under `paths`, against the parent snapshot of the same roots.
fn backup_paths(
    ctx: &mut Ctx,
    tree: &mut dyn TreeSink,
    paths: &[PathBuf],
    opts: &BackupOptions,
    host: &str,
) -> Result<Backed> {
    let roots = normalize_roots(paths)?;
    let stored: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    let parent = match find_parent(ctx.repo, opts, host, &stored, SourceKind::Files) {
        Ok(p) => p,
        // A damaged parent must not stop the nightly backup: read everything instead.
        Err(e) if opts.parent.is_none() => {
            ctx.progress
                .warn(&format!("parent snapshot unusable, reading all files: {e}"));
            None
        }
        Err(e) => return Err(e),
    };
    ctx.progress.start("backup", None);
    backup_files(ctx, tree, &roots, opts, parent.as_ref())?;
    Ok(Backed {
        paths: stored,
        kind: SourceKind::Files,
        description: "files".to_string(),
        parent: parent.map(|p| p.0),
        notes: Vec::new(),
        source_summary: crate::source::SourceSummary::None,
    })
}

/// Back up one stream as a file named by the stream (with its parent directories).
fn backup_stream(
    ctx: &mut Ctx,
    tree: &mut dyn TreeSink,
    mut src: Box<dyn StreamSource + '_>,
    time: chrono::DateTime<chrono::FixedOffset>,
) -> Result<Backed> {
    let name = src.name().trim_matches('/').to_string();
    crate::snapshot::validate_path(&name)
        .map_err(|_| Error::Invalid(format!("invalid stream name {name:?}")))?;
    ctx.progress.start("backup", None);
    let now_ns = time.timestamp_nanos_opt().unwrap_or(0);
    let parts: Vec<&str> = name.split('/').collect();
    for i in 1..parts.len() {
        let dir = synthetic(parts[..i].join("/"), EntryKind::Dir, 0o755, now_ns);
        tree.push(&dir)?;
        ctx.summary.dirs += 1;
    }
    ctx.progress.item(&name);
    let (chunks, size) = match ctx.store_stream(src.reader()) {
        Ok(r) => r?,
        Err(e) => return Err(Error::io(format!("<{}>", src.description()), e)),
    };
    let (kind, description) = (src.kind(), src.description());
    // A failed command never becomes a snapshot.
    src.finish().map_err(source_failed)?;
    let mut file = synthetic(name.clone(), EntryKind::File, 0o600, now_ns);
    file.size = size;
    file.chunks = chunks;
    tree.push(&file)?;
    ctx.summary.files += 1;
    ctx.summary.files_new += 1;
    ctx.summary.total_bytes += size;
    Ok(Backed {
        paths: vec![name],
        kind,
        description,
        parent: None,
        notes: Vec::new(),
        source_summary: crate::source::SourceSummary::None,
    })
}

/// Back up a source that pushes many entries (a database), against its parent snapshot.
fn backup_source(
    ctx: &mut Ctx,
    tree: &mut dyn TreeSink,
    mut src: Box<dyn Source + '_>,
    opts: &BackupOptions,
    host: &str,
    time: chrono::DateTime<chrono::FixedOffset>,
) -> Result<Backed> {
    let paths = src.paths();
    let parent = match find_parent(ctx.repo, opts, host, &paths, src.kind()) {
        Ok(p) => p,
        Err(e) if opts.parent.is_none() => {
            ctx.progress.warn(&format!(
                "parent snapshot unusable, reading everything: {e}"
            ));
            None
        }
        Err(e) => return Err(e),
    };
    let (parent_id, parent_files) = match parent {
        Some((id, files)) if !opts.force => (Some(id), files),
        Some((id, _)) => (Some(id), HashMap::new()),
        None => (None, HashMap::new()),
    };
    ctx.progress.start("backup", None);
    let now_ns = time.timestamp_nanos_opt().unwrap_or(0);
    let mut sink = CollectingSink {
        ctx: &mut *ctx,
        entries: Vec::new(),
        dirs: Vec::new(),
        notes: Vec::new(),
        now_ns,
        parent: parent_files,
    };
    // A failed dump (pg_dump, a --command) ends the backup before any manifest.
    src.run(&mut sink).map_err(source_failed)?;
    let (entries, dirs, notes) = (
        std::mem::take(&mut sink.entries),
        std::mem::take(&mut sink.dirs),
        std::mem::take(&mut sink.notes),
    );
    write_sorted(ctx, tree, entries, dirs, now_ns)?;
    Ok(Backed {
        paths,
        kind: src.kind(),
        description: src.description(),
        parent: parent_id,
        notes,
        source_summary: src.summary(),
    })
}

fn synthetic(path: String, kind: EntryKind, mode: u32, mtime_ns: i64) -> Entry {
    Entry {
        path,
        kind,
        mode,
        mtime_ns,
        uid: unsafe { libc::geteuid() },
        gid: unsafe { libc::getegid() },
        size: 0,
        inode: 0,
        target: None,
        chunks: Vec::new(),
        attrs: BTreeMap::new(),
    }
}

/// Absolute, existing, sorted roots with nested ones removed.
fn normalize_roots(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if paths.is_empty() {
        return Err(Error::Invalid(
            "nothing to back up: give paths, --stdin or --command".into(),
        ));
    }
    let mut roots = Vec::new();
    for p in paths {
        let abs = source::files::absolute(p)?;
        std::fs::symlink_metadata(&abs).map_err(|e| Error::io(&abs, e))?;
        roots.push(abs);
    }
    roots.sort_by(|a, b| path_cmp(&source::stored_path(a), &source::stored_path(b)));
    roots.dedup();
    let mut out: Vec<PathBuf> = Vec::new();
    for r in roots {
        if r.parent().is_none() {
            return Err(Error::Invalid(
                "backing up / as a whole is not supported; name directories".into(),
            ));
        }
        if !out.iter().any(|o| r.starts_with(o)) {
            out.push(r);
        }
    }
    Ok(out)
}

/// The parent snapshot's files by path.
type ParentFiles = (Id, HashMap<String, Entry>);

fn find_parent(
    repo: &Repository,
    opts: &BackupOptions,
    host: &str,
    paths: &[String],
    kind: SourceKind,
) -> Result<Option<ParentFiles>> {
    let snap = match &opts.parent {
        Some(spec) => Some(repo.find_snapshot(spec)?),
        None => repo.snapshots_and_damaged()?.0.into_iter().rev().find(|s| {
            s.manifest.host == host && s.manifest.source == kind && s.manifest.paths == paths
        }),
    };
    let Some(snap) = snap else { return Ok(None) };
    let tree = repo.load_tree(&snap.manifest)?;
    let files = tree
        .entries
        .into_iter()
        .filter(|e| e.kind == EntryKind::File)
        .map(|e| (e.path.clone(), e))
        .collect();
    Ok(Some((snap.id, files)))
}

/// Back up the files under `roots` into `tree`, reusing the parent's chunks of unchanged files.
fn backup_files(
    ctx: &mut Ctx,
    tree: &mut dyn TreeSink,
    roots: &[PathBuf],
    opts: &BackupOptions,
    parent: Option<&ParentFiles>,
) -> Result<()> {
    let excludes = Excludes::new(&opts.excludes)?;
    if let Some(r) = roots.iter().find(|r| excludes.is_excluded(r)) {
        return Err(Error::Invalid(format!(
            "{} is given as a path to back up but matches an exclude pattern; nothing of it would be saved",
            r.display()
        )));
    }
    let progress = ctx.progress;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (finished, scanned) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            prescan(roots, &excludes, opts, parent, progress, &stop);
            let _ = finished.send(());
        });
        // A head start: a small tree is scanned whole before the first byte is read, so its
        // total is exact from the start; a large one goes on scanning beside the backup.
        let _ = scanned.recv_timeout(PRESCAN_HEAD_START);
        let done = walk_into(ctx, tree, roots, &excludes, opts, parent);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        done
    })
}

/// How long a files backup waits for its pre-scan before it starts reading.
const PRESCAN_HEAD_START: std::time::Duration = std::time::Duration::from_millis(250);

/// The walk of [`backup_files`]: every item's entry into `tree`.
fn walk_into(
    ctx: &mut Ctx,
    tree: &mut dyn TreeSink,
    roots: &[PathBuf],
    excludes: &Excludes,
    opts: &BackupOptions,
    parent: Option<&ParentFiles>,
) -> Result<()> {
    for item in source::walk(roots, excludes) {
        let item = match item {
            Ok(i) => i,
            Err((path, e)) => {
                ctx.warn(format!("{}: {e} (skipped)", path.display()));
                continue;
            }
        };
        if let Some(e) = walked_entry(ctx, &item, opts, parent)? {
            tree.push(&e)?;
        }
    }
    Ok(())
}

/// Beside the backup's walk, a walk of metadata only: the bytes of the files it will read
/// (those the parent snapshot does not have unchanged), announced as the progress total as
/// they are found. Stops early when the backup is done.
fn prescan(
    roots: &[PathBuf],
    excludes: &Excludes,
    opts: &BackupOptions,
    parent: Option<&ParentFiles>,
    progress: &dyn Progress,
    stop: &std::sync::atomic::AtomicBool,
) {
    let (mut pending, mut files) = (0u64, 0u32);
    for item in source::walk(roots, excludes).flatten() {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let m = &item.meta;
        if !m.file_type().is_file() {
            continue;
        }
        let path = source::stored_path(&item.abs);
        let unchanged = parent
            .and_then(|(_, files)| files.get(&path))
            .is_some_and(|o| same_as_parent(o, m, opts.force));
        if !unchanged {
            pending += m.len();
            files += 1;
        }
        if files >= 256 {
            progress.expect(std::mem::take(&mut pending), false);
            files = 0;
        }
    }
    if pending > 0 {
        progress.expect(pending, false);
    }
}

/// A file's modification time in nanoseconds since the epoch, as entries record it.
fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}

/// Whether the parent snapshot's entry `o` still describes the file with metadata `m` (same
/// size, mtime and inode; never with --force, never without an inode), so its chunks are
/// reused without reading it.
fn same_as_parent(o: &Entry, m: &std::fs::Metadata, force: bool) -> bool {
    !force && o.size == m.len() && o.mtime_ns == mtime_ns(m) && o.inode == m.ino() && o.inode != 0
}

/// The entry of one walked item (None: skipped, with a warning); a file's content is stored.
fn walked_entry(
    ctx: &mut Ctx,
    item: &WalkItem,
    opts: &BackupOptions,
    parent: Option<&ParentFiles>,
) -> Result<Option<Entry>> {
    let path = source::stored_path(&item.abs);
    let m = &item.meta;
    let ft = m.file_type();
    let mut e = Entry {
        path,
        kind: EntryKind::Dir,
        mode: m.mode() & 0o7777,
        mtime_ns: mtime_ns(m),
        uid: m.uid(),
        gid: m.gid(),
        size: 0,
        inode: m.ino(),
        target: None,
        chunks: Vec::new(),
        attrs: BTreeMap::new(),
    };
    if ft.is_dir() {
        e.inode = 0;
        ctx.summary.dirs += 1;
    } else if ft.is_symlink() {
        let target = match std::fs::read_link(&item.abs) {
            Ok(t) => t,
            Err(err) => {
                ctx.warn(format!("{}: {err} (skipped)", item.abs.display()));
                return Ok(None);
            }
        };
        e.kind = EntryKind::Symlink;
        e.inode = 0;
        e.target = Some(crate::snapshot::name::from_os(target.as_os_str()));
        ctx.summary.symlinks += 1;
    } else if ft.is_file() {
        return file_entry(ctx, item, e, opts, parent);
    } else {
        ctx.warn(format!(
            "{}: special file (fifo, socket or device) not backed up",
            item.abs.display()
        ));
        return Ok(None);
    }
    Ok(Some(e))
}

/// A regular file's entry `e`: the parent's chunks when it is unchanged, else read and stored
/// (None: it could not be read, with a warning).
fn file_entry(
    ctx: &mut Ctx,
    item: &WalkItem,
    mut e: Entry,
    opts: &BackupOptions,
    parent: Option<&ParentFiles>,
) -> Result<Option<Entry>> {
    e.kind = EntryKind::File;
    e.size = item.meta.len();
    ctx.progress.item(&e.path);
    let old = parent.and_then(|(_, files)| files.get(&e.path));
    let unchanged = old.filter(|o| same_as_parent(o, &item.meta, opts.force));
    let reused = match unchanged {
        Some(o) if all_reusable(ctx.saver, &o.chunks)? => {
            e.chunks = o.chunks.clone();
            true
        }
        _ => false,
    };
    if reused {
        ctx.summary.files_unchanged += 1;
    } else {
        if !read_file(ctx, item, &mut e)? {
            return Ok(None);
        }
        match old {
            Some(o) if o.chunks == e.chunks => ctx.summary.files_unchanged += 1,
            Some(_) => {
                ctx.summary.files_changed += 1;
                ctx.progress.changed(&e.path, false);
            }
            None => {
                ctx.summary.files_new += 1;
                ctx.progress.changed(&e.path, true);
            }
        }
    }
    ctx.summary.files += 1;
    ctx.summary.total_bytes += e.size;
    Ok(Some(e))
}

/// Read the file into the saver, setting `e`'s chunks and size; warn when it changed while
/// read. False: it could not be opened or read (skipped, with a warning).
fn read_file(ctx: &mut Ctx, item: &WalkItem, e: &mut Entry) -> Result<bool> {
    let mut f = match std::fs::File::open(&item.abs) {
        Ok(f) => f,
        Err(err) => {
            ctx.warn(format!("{}: {err} (skipped)", item.abs.display()));
            return Ok(false);
        }
    };
    match ctx.store_stream(&mut f) {
        Ok(r) => {
            let (chunks, size) = r?;
            e.chunks = chunks;
            e.size = size;
            if changed_while_read(&item.meta, &f, size) {
                ctx.summary.changed_while_read += 1;
                ctx.warn(format!(
                    "{}: changed while it was read (size or modification time); stored as read, which may mix old and new content",
                    item.abs.display()
                ));
            }
            Ok(true)
        }
        Err(err) => {
            ctx.warn(format!(
                "{}: read failed: {err} (skipped)",
                item.abs.display()
            ));
            Ok(false)
        }
    }
}

/// Whether the file read through `f` (whose metadata before reading was `before`; `read`
/// bytes came out) was modified meanwhile: another size, length or change time.
fn changed_while_read(before: &std::fs::Metadata, f: &std::fs::File, read: u64) -> bool {
    let Ok(after) = f.metadata() else { return true };
    read != before.len()
        || after.len() != before.len()
        || after.mtime() != before.mtime()
        || after.mtime_nsec() != before.mtime_nsec()
        || after.ctime() != before.ctime()
        || after.ctime_nsec() != before.ctime_nsec()
}

fn all_reusable(saver: &dyn Store, chunks: &[ChunkRef]) -> Result<bool> {
    for c in chunks {
        if !saver.reusable(c.id())? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Rule W2 (repo-format.md §9.2): if a prune condemned any of `deps` (packs the snapshot
/// depends on) while it was written, copy the chunks it needs out of condemned packs (they stay
/// readable during the grace period), so the snapshot never depends on a pack that a later
/// prune may delete. Returns the extra stats and the packs condemned at this moment.
fn rescue_from_condemned(
    repo: &Repository,
    tree: &[ChunkRef],
    deps: &HashSet<Id>,
    level: i32,
) -> Result<(crate::repo::SaveStats, HashSet<Id>)> {
    let condemned = repo.condemned_packs()?;
    if deps.is_disjoint(&condemned) {
        return Ok((Default::default(), condemned));
    }
    let index = repo.index()?;
    let needs_copy = |id: &Id| -> Result<bool> {
        Ok(index
            .lookup(id)?
            .is_some_and(|l| condemned.contains(&l.pack)))
    };
    let saver = Saver::new(repo, level)?;
    let mut ids: Vec<(BlobKind, Id)> = tree.iter().map(|c| (BlobKind::Tree, *c.id())).collect();
    for e in repo.load_tree_refs(tree)?.entries {
        ids.extend(e.chunks.iter().map(|c| (BlobKind::Data, *c.id())));
    }
    let mut seen = HashSet::new();
    for (kind, id) in ids {
        if seen.insert(id) && needs_copy(&id)? {
            saver.save(kind, repo.read_chunk(&id)?)?;
        }
    }
    Ok((saver.finish()?, condemned))
}

/// Rule W3 (repo-format.md §9.2): whether every pack of `deps` exists and no plan condemns it
/// (`Ok(false)`: one is condemned; an error: one is gone, whatever its plan said).
fn deps_live(repo: &Repository, deps: &HashSet<Id>) -> Result<bool> {
    let listed: HashSet<Id> = repo
        .backend()
        .list("data/")?
        .iter()
        .filter_map(|o| crate::pack::pack_id_from_name(&o.name))
        .collect();
    let mut missing: Vec<&Id> = deps.iter().filter(|p| !listed.contains(p)).collect();
    if !missing.is_empty() {
        missing.sort();
        return Err(Error::PacksDeletedMeanwhile {
            count: missing.len(),
            example: crate::pack::pack_name(missing[0]),
        });
    }
    Ok(deps.is_disjoint(&repo.condemned_packs()?))
}

/// Write a snapshot's manifest once every pack it depends on is durable, present and not
/// condemned (rules W2 and W3, repo-format.md §9.2), and check the packs again once it is
/// written: a manifest whose packs a prune deleted meanwhile is removed again and the command
/// fails, so no command ever records a snapshot it cannot restore. `make` builds the manifest
/// from the final figures. Returns the snapshot id, its manifest and those figures.
pub(crate) fn commit_manifest(
    repo: &Repository,
    tree: &[ChunkRef],
    mut stats: crate::repo::SaveStats,
    level: i32,
    make: impl FnOnce(&crate::repo::SaveStats) -> Manifest,
) -> Result<(Id, Manifest, crate::repo::SaveStats)> {
    let mut deps: HashSet<Id> = stats
        .reused_packs
        .union(&stats.written_packs)
        .copied()
        .collect();
    for _ in 0..3 {
        let (rescued, condemned) = rescue_from_condemned(repo, tree, &deps, level)?;
        stats.chunks_new += rescued.chunks_new;
        stats.raw_bytes_new += rescued.raw_bytes_new;
        stats.bytes_added += rescued.bytes_added;
        stats.packs += rescued.packs;
        // Every needed chunk whose copy was in a condemned pack now has a live copy.
        deps.retain(|p| !condemned.contains(p));
        deps.extend(rescued.reused_packs.iter().chain(&rescued.written_packs));
        if !deps_live(repo, &deps)? {
            continue; // condemned between the rescue and the check: rescue again
        }
        let manifest = make(&stats);
        let id = repo.save_manifest(&manifest)?;
        if let Err(e) = deps_live(repo, &deps) {
            let _ = repo.backend().delete(&format!("snapshots/{id}"));
            return Err(e);
        }
        return Ok((id, manifest, stats));
    }
    Err(Error::Invalid(
        "prunes running alongside this command keep condemning packs it depends on; no snapshot was recorded. Run it again when no prune runs"
            .into(),
    ))
}

/// Collects the entries a [`Source`] pushes (their content goes into the saver right away).
struct CollectingSink<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    entries: Vec<Entry>,
    /// Directories the source declared (with attributes).
    dirs: Vec<Entry>,
    notes: Vec<String>,
    now_ns: i64,
    /// The parent snapshot's files by path (empty without a parent or with `--force`).
    parent: HashMap<String, Entry>,
}

impl CollectingSink<'_, '_> {
    fn valid(path: &str) -> Result<()> {
        crate::snapshot::validate_path(path)
            .map_err(|_| Error::Invalid(format!("a source produced an invalid path {path:?}")))
    }
}

impl EntrySink for CollectingSink<'_, '_> {
    fn file(
        &mut self,
        path: &str,
        mode: u32,
        reader: &mut dyn Read,
        attrs: crate::snapshot::Attrs,
    ) -> Result<u64> {
        let now = self.now_ns;
        self.file_at(path, mode, now, reader, attrs)
    }

    fn file_at(
        &mut self,
        path: &str,
        mode: u32,
        mtime_ns: i64,
        reader: &mut dyn Read,
        attrs: crate::snapshot::Attrs,
    ) -> Result<u64> {
        Self::valid(path)?;
        self.ctx.progress.item(path);
        let (chunks, size) = self
            .ctx
            .store_stream(reader)
            .map_err(|e| Error::io(path, e))??;
        let mut e = synthetic(path.to_string(), EntryKind::File, mode, mtime_ns);
        e.size = size;
        e.chunks = chunks;
        e.attrs = attrs;
        match self.parent.get(path) {
            Some(o) if o.chunks == e.chunks => self.ctx.summary.files_unchanged += 1,
            Some(_) => {
                self.ctx.summary.files_changed += 1;
                self.ctx.progress.changed(path, false);
            }
            None => {
                self.ctx.summary.files_new += 1;
                self.ctx.progress.changed(path, true);
            }
        }
        self.entries.push(e);
        self.ctx.summary.files += 1;
        self.ctx.summary.total_bytes += size;
        Ok(size)
    }

    fn dir(
        &mut self,
        path: &str,
        mtime_ns: Option<i64>,
        attrs: crate::snapshot::Attrs,
    ) -> Result<()> {
        Self::valid(path)?;
        let mut e = synthetic(
            path.to_string(),
            EntryKind::Dir,
            0o755,
            mtime_ns.unwrap_or(self.now_ns),
        );
        e.attrs = attrs;
        self.dirs.push(e);
        Ok(())
    }

    fn parent_entry(&self, path: &str) -> Option<&Entry> {
        self.parent.get(path)
    }

    fn reuse(
        &mut self,
        path: &str,
        mtime_ns: i64,
        attrs: crate::snapshot::Attrs,
    ) -> Result<Option<u64>> {
        Self::valid(path)?;
        let Some(old) = self.parent.get(path) else {
            return Ok(None);
        };
        if !all_reusable(self.ctx.saver, &old.chunks)? {
            return Ok(None);
        }
        let mut e = synthetic(path.to_string(), EntryKind::File, old.mode, mtime_ns);
        e.size = old.size;
        e.chunks = old.chunks.clone();
        e.attrs = attrs;
        self.ctx.progress.item(path);
        self.ctx.summary.files += 1;
        self.ctx.summary.files_unchanged += 1;
        self.ctx.summary.total_bytes += e.size;
        let size = e.size;
        self.entries.push(e);
        Ok(Some(size))
    }

    fn warn(&mut self, message: String) {
        self.ctx.progress.warn(&message);
        self.notes.push(message);
    }

    fn expect(&mut self, n: u64, estimate: bool) {
        self.ctx.progress.expect(n, estimate);
    }
}

/// Add the parent directories of `entries`, sort everything by path and write the tree.
fn write_sorted(
    ctx: &mut Ctx,
    tree: &mut dyn TreeSink,
    mut entries: Vec<Entry>,
    declared: Vec<Entry>,
    now_ns: i64,
) -> Result<()> {
    // Every directory (declared, or an ancestor of an entry), with the newest mtime below it.
    // A directory a source did not read from disk (a storage folder, a bucket) takes that, not
    // the backup's time: unchanged folders stay unchanged from one snapshot to the next (`snap
    // diff`), as on a file system. An empty one keeps its declared time (a bucket's), else
    // the backup's.
    let mut dirs: std::collections::BTreeMap<String, Option<i64>> =
        std::collections::BTreeMap::new();
    for d in &declared {
        let mut p = d.path.as_str();
        dirs.entry(p.to_string()).or_insert(None);
        while let Some((parent, _)) = p.rsplit_once('/') {
            dirs.entry(parent.to_string()).or_insert(None);
            p = parent;
        }
    }
    for e in &entries {
        let mut p = e.path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            match dirs.get_mut(parent) {
                Some(m) => *m = Some(m.map_or(e.mtime_ns, |m| m.max(e.mtime_ns))),
                None => {
                    dirs.insert(parent.to_string(), Some(e.mtime_ns));
                }
            }
            p = parent;
        }
    }
    ctx.summary.dirs += dirs.len() as u64;
    let mut declared: HashMap<String, Entry> =
        declared.into_iter().map(|d| (d.path.clone(), d)).collect();
    entries.extend(dirs.into_iter().map(|(d, newest)| {
        let mut e = declared
            .remove(&d)
            .unwrap_or_else(|| synthetic(d, EntryKind::Dir, 0o755, now_ns));
        if let Some(newest) = newest {
            e.mtime_ns = newest;
        }
        e
    }));
    entries.sort_by(|a, b| path_cmp(&a.path, &b.path));
    if let Some(w) = entries.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(Error::Invalid(format!(
            "a source produced {:?} twice",
            w[0].path
        )));
    }
    for e in &entries {
        tree.push(e)?;
    }
    Ok(())
}
