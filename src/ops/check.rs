//! `snap check`: verify a repository without changing it.
//!
//! The structure check reads every key file, every snapshot manifest, every pack trailer (fresh
//! from the backend, never from the local index) and every snapshot's tree, and verifies that
//! every chunk a tree references is listed by some readable pack. It then compares the local
//! index cache with the trailers, opening the cache file read-only. With a data subset
//! ([`CheckOptions::read_data`]) it also reads the chosen packs whole, checks each pack's BLAKE3
//! against its name, and decodes every blob through [`blob::decode`] (authenticate, decompress,
//! re-hash against its id), in parallel, one pack per worker thread.
//!
//! Nothing is written: not to the repository (only listing, whole and ranged gets are used),
//! and not to the local index (it is never opened for writing; an index that was not closed
//! cleanly is repaired in a private copy). The caller's lock, if any, is the only write.
//!
//! Findings have three severities: **problems** (the repository is damaged or could not be
//! read: data may be lost), **warnings** (the local index cache disagrees with the repository:
//! no data is at risk, `snap repair index` fixes it) and **info** (garbage for prune, stale
//! locks, which key file opened the repository, …).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::backend::strict::Strict;
use crate::backend::{Backend, RangeRequest};
use crate::blob;
use crate::crypto::MasterKey;
use crate::crypto::keyfile::KeyFile;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::{IndexReader, Location};
use crate::pack::{self, PackEntry};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::{Snapshot, Tree};

/// At most this many paths are listed per finding; the rest are counted in `paths_omitted`.
pub const MAX_PATHS: usize = 100;
/// At most this many individual local-index disagreements are listed; the rest are counted.
const MAX_INDEX_MISMATCHES: usize = 20;
/// Decoded tree chunks kept in memory (snapshots share most of their tree chunks).
const TREE_CACHE_BYTES: usize = 64 << 20;

// ---------------------------------------------------------------------------------------------
// Options

pub use crate::spec::DataSubset;

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Read these packs in full (`None`: structure only).
    pub read_data: Option<DataSubset>,
    /// The local index file to compare with the pack trailers (see [`Repository::index_path`]);
    /// `None` skips that comparison.
    pub index_cache: Option<PathBuf>,
    /// Name of the caller's own lock (`locks/…`), left out of the lock report.
    pub own_lock: Option<String>,
}

/// Where the local index of `repo` lives under `cache_dir` (repo-format.md §8).

// ---------------------------------------------------------------------------------------------
// Report

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    // Problems.
    /// A key file does not parse, or its content does not match its name.
    KeyFileDamaged,
    /// A snapshot manifest does not decrypt or parse, or does not match its name.
    SnapshotDamaged,
    /// A snapshot's tree cannot be loaded (a tree chunk is missing or damaged, or the tree does
    /// not parse): nothing of that snapshot can be restored.
    TreeDamaged,
    /// A pack's trailer cannot be read (truncated, no magic, damaged trailer).
    PackDamaged,
    /// A pack the local index knows is gone, and snapshots reference chunks only it held.
    PackMissing,
    /// A pack's content does not hash to its name (`--read-data`).
    PackHashMismatch,
    /// A referenced chunk is listed by no readable pack.
    ChunkMissing,
    /// A stored blob fails to decode: authentication, decompression or id check (`--read-data`).
    ChunkDamaged,
    /// A tree references a chunk with a length other than the one its pack lists.
    ChunkLengthMismatch,
    /// A deletion plan (`prune/…`) cannot be read.
    DeletionPlanDamaged,
    /// The backend failed to deliver an object (I/O error).
    ReadError,
    // Warnings (the local cache, not the repository).
    /// The local index file cannot be opened or read.
    LocalIndexDamaged,
    /// The local index disagrees with the pack trailers.
    LocalIndexMismatch,
    // Information.
    KeyFileUsed,
    LocalIndex,
    UnreferencedPack,
    UnreferencedChunks,
    DuplicateChunks,
    StaleLock,
    Lock,
    LeftoverTemporary,
    DeletionPlan,
    UnexpectedObject,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        use FindingKind::*;
        match self {
            KeyFileDamaged => "key_file_damaged",
            SnapshotDamaged => "snapshot_damaged",
            TreeDamaged => "tree_damaged",
            PackDamaged => "pack_damaged",
            PackMissing => "pack_missing",
            PackHashMismatch => "pack_hash_mismatch",
            ChunkMissing => "chunk_missing",
            ChunkDamaged => "chunk_damaged",
            ChunkLengthMismatch => "chunk_length_mismatch",
            DeletionPlanDamaged => "deletion_plan_damaged",
            ReadError => "read_error",
            LocalIndexDamaged => "local_index_damaged",
            LocalIndexMismatch => "local_index_mismatch",
            KeyFileUsed => "key_file_used",
            LocalIndex => "local_index",
            UnreferencedPack => "unreferenced_pack",
            UnreferencedChunks => "unreferenced_chunks",
            DuplicateChunks => "duplicate_chunks",
            StaleLock => "stale_lock",
            Lock => "lock",
            LeftoverTemporary => "leftover_temporary",
            DeletionPlan => "deletion_plan",
            UnexpectedObject => "unexpected_object",
        }
    }
}

/// One finding. Ids are full; `message` is one human sentence naming the objects involved
/// (short ids), without the snapshot and path lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub pack: Option<Id>,
    pub chunk: Option<Id>,
    /// A storage name (`keys/…`, `snapshots/…`, `locks/…`) when the finding is about one.
    pub object: Option<String>,
    /// Snapshots affected (referencing the chunk, or the snapshot itself), oldest first.
    pub snapshots: Vec<Id>,
    /// Paths (as stored in the snapshots) whose content includes the chunk; at most [`MAX_PATHS`].
    pub paths: Vec<String>,
    /// References (snapshot, path) beyond the listed `paths`.
    pub paths_omitted: u64,
    pub message: String,
}

impl Finding {
    fn new(kind: FindingKind, message: impl Into<String>) -> Finding {
        Finding {
            kind,
            pack: None,
            chunk: None,
            object: None,
            snapshots: Vec::new(),
            paths: Vec::new(),
            paths_omitted: 0,
            message: message.into(),
        }
    }
    fn pack(mut self, p: Id) -> Finding {
        self.pack = Some(p);
        self
    }
    fn chunk(mut self, c: Id) -> Finding {
        self.chunk = Some(c);
        self
    }
    fn object(mut self, o: impl Into<String>) -> Finding {
        self.object = Some(o.into());
        self
    }
    fn snapshots(mut self, s: Vec<Id>) -> Finding {
        self.snapshots = s;
        self
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckSummary {
    pub key_files: u64,
    pub snapshots: u64,
    /// Snapshots whose tree was loaded and checked.
    pub trees: u64,
    /// Tree entries (files, dirs, symlinks) over all checked snapshots.
    pub entries: u64,
    /// Packs listed in `data/`.
    pub packs: u64,
    pub pack_bytes: u64,
    /// Distinct chunk ids listed by the readable pack trailers.
    pub chunks: u64,
    /// Distinct chunk ids referenced by the checked snapshots (data and tree chunks).
    pub chunks_referenced: u64,
    /// `off`, `all`, or the subset asked for.
    pub read_data: String,
    /// Packs read in full, their bytes, and the blobs decoded from them.
    pub packs_read: u64,
    pub bytes_read: u64,
    pub blobs_read: u64,
    pub read_data_ms: u64,
    /// `bytes_read` per second of the read-data phase, in MB (10^6 bytes).
    pub read_mb_per_s: f64,
    pub duration_ms: u64,
    pub problems: u64,
    pub warnings: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub problems: Vec<Finding>,
    pub warnings: Vec<Finding>,
    pub info: Vec<Finding>,
    pub summary: CheckSummary,
}

impl CheckReport {
    /// No problems (warnings and info do not count).
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Default)]
struct Findings {
    problems: Mutex<Vec<Finding>>,
    warnings: Mutex<Vec<Finding>>,
    info: Mutex<Vec<Finding>>,
}

impl Findings {
    fn problem(&self, f: Finding) {
        self.problems.lock().unwrap().push(f);
    }
    fn warning(&self, f: Finding) {
        self.warnings.lock().unwrap().push(f);
    }
    fn info(&self, f: Finding) {
        self.info.lock().unwrap().push(f);
    }
}

// ---------------------------------------------------------------------------------------------
// Packs and chunks as the trailers list them

struct PackRec {
    id: Id,
    name: String,
    size: u64,
    /// `None` when the trailer could not be read.
    entries: Option<Vec<PackEntry>>,
    /// The trailer could not be read because it is damaged (not because of an I/O error).
    trailer_damaged: bool,
}

/// One stored copy of a chunk: pack index and entry index into [`PackRec::entries`].
#[derive(Clone, Copy, Debug)]
struct Loc {
    pack: u32,
    entry: u32,
}

#[derive(Default)]
struct ChunkMap {
    first: HashMap<Id, Loc>,
    extra: HashMap<Id, Vec<Loc>>,
}

impl ChunkMap {
    fn insert(&mut self, id: Id, loc: Loc) {
        match self.first.entry(id) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(loc);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.extra.entry(id).or_default().push(loc)
            }
        }
    }
    fn copies(&self, id: &Id) -> Vec<Loc> {
        let mut v: Vec<Loc> = self.first.get(id).copied().into_iter().collect();
        if let Some(x) = self.extra.get(id) {
            v.extend_from_slice(x);
        }
        v
    }
}

/// Decoded tree chunks and their total size.
type TreeCache = (HashMap<Id, std::sync::Arc<Vec<u8>>>, usize);

/// Why a chunk could not be read.
#[derive(Clone, Debug)]
enum ChunkFail {
    /// No readable pack lists it.
    Missing,
    /// Every copy failed to decode; the first failing pack and the reason.
    Damaged { pack: Id, reason: String },
    /// The backend failed to deliver it.
    Read { pack: Id, reason: String },
}

struct Ctx<'a> {
    backend: &'a dyn Backend,
    key: &'a MasterKey,
    packs: Vec<PackRec>,
    chunks: ChunkMap,
    tree_cache: Mutex<TreeCache>,
}

impl Ctx<'_> {
    fn entry(&self, l: Loc) -> (&PackRec, &PackEntry) {
        let p = &self.packs[l.pack as usize];
        (
            p,
            &p.entries
                .as_ref()
                .expect("a located chunk's pack has entries")[l.entry as usize],
        )
    }

    /// Read and decode a (tree) chunk, trying every copy; cached.
    fn read_chunk(&self, id: &Id) -> std::result::Result<std::sync::Arc<Vec<u8>>, ChunkFail> {
        if let Some(b) = self.tree_cache.lock().unwrap().0.get(id) {
            return Ok(b.clone());
        }
        let mut fail = ChunkFail::Missing;
        for l in self.chunks.copies(id) {
            let (p, e) = self.entry(l);
            let r = self
                .backend
                .get_range(&p.name, e.offset as u64, e.length as u64)
                .map_err(|err| ChunkFail::Read {
                    pack: p.id,
                    reason: err.to_string(),
                })
                .and_then(|sealed| {
                    blob::decode(self.key, e.kind, id, &sealed).map_err(|err| ChunkFail::Damaged {
                        pack: p.id,
                        reason: reason(err),
                    })
                });
            match r {
                Ok(plain) => {
                    let plain = std::sync::Arc::new(plain);
                    let mut c = self.tree_cache.lock().unwrap();
                    if c.1 + plain.len() > TREE_CACHE_BYTES {
                        c.0.clear();
                        c.1 = 0;
                    }
                    c.1 += plain.len();
                    c.0.insert(*id, plain.clone());
                    return Ok(plain);
                }
                Err(f) => {
                    if matches!(fail, ChunkFail::Missing) {
                        fail = f;
                    }
                }
            }
        }
        Err(fail)
    }

    /// Load and parse a snapshot's tree.
    fn load_tree(&self, s: &Snapshot) -> std::result::Result<Tree, TreeFail> {
        let mut bytes = Vec::new();
        for c in &s.manifest.tree {
            let plain = self
                .read_chunk(c.id())
                .map_err(|f| TreeFail::Chunk(*c.id(), f))?;
            bytes.extend_from_slice(&plain);
        }
        Tree::parse(&bytes).map_err(|e| TreeFail::Parse(e.to_string()))
    }
}

/// The detail of a decode error (the caller names the object).
fn reason(e: Error) -> String {
    match e {
        Error::Corrupt { detail, .. } => detail,
        other => other.to_string(),
    }
}

enum TreeFail {
    Chunk(Id, ChunkFail),
    Parse(String),
}

// ---------------------------------------------------------------------------------------------
// The check

/// Verify `repo` (see the module documentation). Returns the findings; an `Err` only when the
/// check itself cannot proceed (e.g. the pack listing fails).
pub fn check(
    repo: &Repository,
    opts: &CheckOptions,
    progress: &dyn Progress,
) -> Result<CheckReport> {
    let started = Instant::now();
    let strict = Strict(&**repo.backend());
    let mut c = Checker::new(repo, opts, progress, &strict);
    progress.start("check", None);
    c.key_files()?;
    let (snaps, all_snapshots_read) = c.snapshots()?;
    let ctx = c.packs()?;
    let trees = c.trees(&ctx, &snaps, all_snapshots_read);
    let damaged = c.read_data(&ctx, &trees.already_damaged);
    let refs = problem_refs(&ctx, &snaps, &trees, &damaged);
    let cache = c.local_index(&ctx, &trees.lost);
    let scan = Scan {
        ctx,
        snaps,
        trees,
        damaged,
        refs,
        cache,
    };
    c.chunk_findings(&scan);
    c.housekeeping(&scan.ctx, &scan.trees);
    progress.finish();
    Ok(c.report(started))
}

/// Read failures of this many packs or more, all with the same reason, are one problem.
const SERVER_PROBLEM_MIN: usize = 3;

/// Packs that cannot be read, all for one same reason (a server that refuses ranged reads,
/// credentials that expired mid-way, a connection that dropped), are a problem of the server
/// or the connection rather than of each pack: [`SERVER_PROBLEM_MIN`] or more such read errors
/// become one finding that says how many packs, the reason once, and the first pack.
fn collapse_server_failures(problems: Vec<Finding>) -> Vec<Finding> {
    let mut groups: BTreeMap<String, Vec<Finding>> = BTreeMap::new();
    let mut out = Vec::new();
    for f in problems {
        match (f.kind, f.pack) {
            (FindingKind::ReadError, Some(p)) => {
                let reason = f
                    .message
                    .replace(&pack::pack_name(&p), "<pack>")
                    .replace(&p.to_string(), "<pack>");
                groups.entry(reason).or_default().push(f);
            }
            _ => out.push(f),
        }
    }
    for (reason, mut same) in groups {
        if same.len() < SERVER_PROBLEM_MIN {
            out.extend(same);
            continue;
        }
        let n = same.len();
        let mut one = same.remove(0);
        let first = pack::pack_name(&one.pack.expect("grouped by pack"));
        for f in same {
            for s in f.snapshots {
                if !one.snapshots.contains(&s) {
                    one.snapshots.push(s);
                }
            }
            one.paths_omitted += f.paths_omitted;
            for p in f.paths {
                match (one.paths.contains(&p), one.paths.len() < MAX_PATHS) {
                    (true, _) => {}
                    (false, true) => one.paths.push(p),
                    (false, false) => one.paths_omitted += 1,
                }
            }
        }
        one.message = format!(
            "{n} packs cannot be read, all for the same reason — most likely the server or the connection, not the data (check the server, its S3 compatibility and the credentials, then run `snap check` again): {reason} (first: {first})"
        );
        out.push(one);
    }
    out
}

/// The state the phases of one check share: what it reads and what it has found so far.
struct Checker<'a> {
    repo: &'a Repository,
    opts: &'a CheckOptions,
    progress: &'a dyn Progress,
    backend: &'a dyn Backend,
    key: &'a MasterKey,
    out: Findings,
    summary: CheckSummary,
}

/// What the tree phase (4) learned.
struct TreeScan {
    /// Per snapshot (in `snaps` order): whether its tree was loaded.
    tree_ok: Vec<bool>,
    /// Distinct chunks the checked snapshots reference.
    referenced: HashSet<Id>,
    /// Referenced data chunks no readable pack lists.
    missing: HashSet<Id>,
    /// chunk → (length in the tree, raw length in the pack)
    len_mismatch: HashMap<Id, (u64, u32)>,
    /// (chunk) → (failure, snapshots) for tree chunks that could not be read
    tree_chunk_fail: BTreeMap<Id, (ChunkFail, BTreeSet<usize>)>,
    /// Every snapshot manifest and every tree was read.
    all_trees_read: bool,
    /// Blobs already named as damaged (chunk, pack), so --read-data does not name them twice.
    already_damaged: HashSet<(Id, Id)>,
    /// Referenced chunks no readable pack lists: data chunks, and tree chunks.
    lost: HashSet<Id>,
}

/// What the tree phase collects from the snapshots, shared by its worker threads.
#[derive(Default)]
struct TreeAcc {
    referenced: Mutex<HashSet<Id>>,
    missing: Mutex<HashSet<Id>>,
    len_mismatch: Mutex<HashMap<Id, (u64, u32)>>,
    tree_chunk_fail: Mutex<BTreeMap<Id, (ChunkFail, BTreeSet<usize>)>>,
    entries: AtomicU64,
}

/// The chunk references of one snapshot, checked against the pack trailers.
#[derive(Default)]
struct SnapshotRefs {
    seen: HashSet<Id>,
    missing: Vec<Id>,
    mismatch: Vec<(Id, (u64, u32))>,
}

impl SnapshotRefs {
    /// Note a reference to chunk `id` of length `len` (once per chunk): unlisted, or listed
    /// with another length.
    fn check(&mut self, ctx: &Ctx, id: &Id, len: u64) {
        if !self.seen.insert(*id) {
            return;
        }
        match ctx.chunks.first.get(id) {
            None => self.missing.push(*id),
            Some(l) => {
                let (_, e) = ctx.entry(*l);
                if e.raw_len as u64 != len {
                    self.mismatch.push((*id, (len, e.raw_len)));
                }
            }
        }
    }
}

/// Counters of the read-data phase, shared by its worker threads.
#[derive(Default)]
struct ReadCounters {
    bytes: AtomicU64,
    packs: AtomicU64,
    blobs: AtomicU64,
}

/// Blobs that fail to decode: (chunk, pack index) → reason.
type Damaged = BTreeMap<(Id, u32), String>;

/// Everything phases 2 to 7 learned, for the chunk findings of phase 8.
struct Scan<'a> {
    ctx: Ctx<'a>,
    snaps: Vec<Snapshot>,
    trees: TreeScan,
    damaged: Damaged,
    refs: HashMap<Id, Refs>,
    cache: CacheScan,
}

impl Scan<'_> {
    /// `f` with the snapshots and paths that reference `chunk`.
    fn with_refs(&self, mut f: Finding, chunk: &Id) -> Finding {
        if let Some(r) = self.refs.get(chunk) {
            f.snapshots = r.snapshots.iter().map(|i| self.snaps[*i].id).collect();
            f.paths = r.paths.iter().cloned().collect();
            f.paths_omitted = r.omitted;
        }
        f
    }
}

impl<'a> Checker<'a> {
    /// A check of `repo` that reads through `backend` and has found nothing yet.
    fn new(
        repo: &'a Repository,
        opts: &'a CheckOptions,
        progress: &'a dyn Progress,
        backend: &'a dyn Backend,
    ) -> Checker<'a> {
        Checker {
            repo,
            opts,
            progress,
            backend,
            key: repo.key(),
            out: Findings::default(),
            summary: CheckSummary {
                read_data: "off".into(),
                ..Default::default()
            },
        }
    }

    /// Phase 1: name the key file that opened the repository, and check every key file.
    fn key_files(&mut self) -> Result<()> {
        self.progress.item("keys/");
        self.out.info(
            Finding::new(
                FindingKind::KeyFileUsed,
                format!("the password opened key file {}", self.repo.key_name()),
            )
            .object(self.repo.key_name()),
        );
        check_key_files(self.backend, &self.out, &mut self.summary)
    }

    /// Phase 2: read every snapshot manifest. Returns the snapshots oldest first, and whether
    /// every manifest was read.
    fn snapshots(&mut self) -> Result<(Vec<Snapshot>, bool)> {
        self.progress.item("snapshots/");
        let snapshot_ids = self.snapshot_ids()?;
        self.summary.snapshots = snapshot_ids.len() as u64;
        let repo = self.repo;
        let loaded: Vec<(Id, Result<crate::snapshot::Manifest>)> = snapshot_ids
            .par_iter()
            .map(|id| (*id, repo.load_manifest_uncached(id)))
            .collect();
        let mut snaps: Vec<Snapshot> = Vec::new();
        let mut all_snapshots_read = true;
        for (id, r) in loaded {
            match r {
                Ok(manifest) => snaps.push(Snapshot { id, manifest }),
                Err(e) => {
                    if self.manifest_failed(id, e) {
                        all_snapshots_read = false;
                    }
                }
            }
        }
        self.flag_versions(&snaps);
        snaps.sort_by(|a, b| a.manifest.time.cmp(&b.manifest.time).then(a.id.cmp(&b.id)));
        Ok((snaps, all_snapshots_read))
    }

    /// The ids of the snapshots listed in `snapshots/` (other names are reported and skipped).
    fn snapshot_ids(&self) -> Result<Vec<Id>> {
        let mut snapshot_ids = Vec::new();
        for obj in self.backend.list("snapshots/")? {
            match obj
                .name
                .strip_prefix("snapshots/")
                .and_then(|n| n.parse::<Id>().ok())
            {
                Some(id) => snapshot_ids.push(id),
                None => self.out.info(
                    Finding::new(
                        FindingKind::UnexpectedObject,
                        format!("{} is not a snapshot name; snap ignores it", obj.name),
                    )
                    .object(obj.name.clone()),
                ),
            }
        }
        Ok(snapshot_ids)
    }

    /// Report a snapshot manifest that could not be loaded; true when it counts as unread (not
    /// merely forgotten meanwhile).
    fn manifest_failed(&self, id: Id, e: Error) -> bool {
        let name = format!("snapshots/{id}");
        match e {
            Error::NotFound { .. } => {
                self.out.info(
                    Finding::new(
                        FindingKind::UnexpectedObject,
                        format!(
                            "snapshot {} disappeared during the check (forgotten meanwhile?)",
                            id.short()
                        ),
                    )
                    .object(name),
                );
                false
            }
            Error::Corrupt { detail, .. } => {
                self.out.problem(
                    Finding::new(
                        FindingKind::SnapshotDamaged,
                        format!("snapshot {} is damaged: {detail}", id.short()),
                    )
                    .object(name)
                    .snapshots(vec![id]),
                );
                true
            }
            e => {
                self.out.problem(
                    Finding::new(
                        FindingKind::ReadError,
                        format!("snapshot {} cannot be read: {e}", id.short()),
                    )
                    .object(name)
                    .snapshots(vec![id]),
                );
                true
            }
        }
    }

    /// Name the snapshots whose manifest version this snap does not know.
    fn flag_versions(&self, snaps: &[Snapshot]) {
        for s in snaps {
            if s.manifest.version != 1 {
                // Kept in the list (its tree may still be readable), but named.
                self.out.problem(
                    Finding::new(
                        FindingKind::SnapshotDamaged,
                        format!(
                            "snapshot {} has manifest version {} (this snap knows 1)",
                            s.id.short(),
                            s.manifest.version
                        ),
                    )
                    .object(format!("snapshots/{}", s.id))
                    .snapshots(vec![s.id]),
                );
            }
        }
    }

    /// Phase 3: read every pack trailer fresh, and map each chunk to the packs listing it.
    ///
    /// Listed after the manifests on purpose: a writer puts every pack before the manifest that
    /// refers to it (repo-format.md §9), so every snapshot listed above has its packs in this
    /// listing even while a backup runs concurrently.
    fn packs(&mut self) -> Result<Ctx<'a>> {
        self.progress.item("data/");
        let listed = self.list_packs()?;
        self.summary.packs = listed.len() as u64;
        self.summary.pack_bytes = listed.iter().map(|p| p.2).sum();
        let this = &*self;
        let packs: Vec<PackRec> = listed
            .into_par_iter()
            .map(|(id, name, size)| this.read_pack_trailer(id, name, size))
            .collect();
        let mut chunks = ChunkMap::default();
        for (pi, p) in packs.iter().enumerate() {
            for (ei, e) in p.entries.iter().flatten().enumerate() {
                chunks.insert(
                    e.id,
                    Loc {
                        pack: pi as u32,
                        entry: ei as u32,
                    },
                );
            }
        }
        self.summary.chunks = chunks.first.len() as u64;
        Ok(Ctx {
            backend: self.backend,
            key: self.key,
            packs,
            chunks,
            tree_cache: Mutex::new((HashMap::new(), 0)),
        })
    }

    /// The packs listed in `data/` (id, name, size), in id order; other names are reported.
    fn list_packs(&self) -> Result<Vec<(Id, String, u64)>> {
        let mut listed = Vec::new();
        for obj in self.backend.list("data/")? {
            match pack::pack_id_from_name(&obj.name) {
                Some(id) => listed.push((id, obj.name, obj.size)),
                None => self.out.info(
                    Finding::new(
                        FindingKind::UnexpectedObject,
                        format!("{} is not a pack name; snap ignores it", obj.name),
                    )
                    .object(obj.name),
                ),
            }
        }
        listed.sort();
        Ok(listed)
    }

    /// Read one pack's trailer; a trailer that cannot be read is reported.
    fn read_pack_trailer(&self, id: Id, name: String, size: u64) -> PackRec {
        match pack::read_trailer(self.backend, self.key, &name, size) {
            Ok(entries) => PackRec {
                id,
                name,
                size,
                entries: Some(entries),
                trailer_damaged: false,
            },
            Err(e) => {
                let damaged = matches!(e, Error::Corrupt { .. });
                let f = match &e {
                    Error::Corrupt { detail, .. } => {
                        Finding::new(FindingKind::PackDamaged, format!("pack {name}: {detail}"))
                    }
                    Error::NotFound { .. } => Finding::new(
                        FindingKind::ReadError,
                        format!(
                            "pack {name} disappeared during the check (pruned meanwhile? run check with a lock)"
                        ),
                    ),
                    _ => Finding::new(
                        FindingKind::ReadError,
                        format!("pack {name}: trailer cannot be read: {e}"),
                    ),
                };
                self.out.problem(f.pack(id));
                PackRec {
                    id,
                    name,
                    size,
                    entries: None,
                    trailer_damaged: damaged,
                }
            }
        }
    }

    /// Phase 4: load every snapshot's tree; every referenced chunk must be listed by a
    /// readable pack.
    fn trees(&mut self, ctx: &Ctx, snaps: &[Snapshot], all_snapshots_read: bool) -> TreeScan {
        self.progress.item("trees");
        let acc = TreeAcc::default();
        let this = &*self;
        let tree_ok: Vec<bool> = snaps
            .par_iter()
            .enumerate()
            .map(|(si, s)| this.scan_tree(ctx, &acc, si, s))
            .collect();
        let referenced = acc.referenced.into_inner().unwrap();
        let missing = acc.missing.into_inner().unwrap();
        let len_mismatch = acc.len_mismatch.into_inner().unwrap();
        let tree_chunk_fail = acc.tree_chunk_fail.into_inner().unwrap();
        self.summary.trees = tree_ok.iter().filter(|ok| **ok).count() as u64;
        self.summary.entries = acc.entries.into_inner();
        self.summary.chunks_referenced = referenced.len() as u64;
        let all_trees_read = all_snapshots_read && tree_ok.iter().all(|ok| *ok);
        let already_damaged: HashSet<(Id, Id)> = tree_chunk_fail
            .iter()
            .filter_map(|(c, (f, _))| match f {
                ChunkFail::Damaged { pack, .. } => Some((*c, *pack)),
                _ => None,
            })
            .collect();
        let mut lost: HashSet<Id> = missing.clone();
        lost.extend(
            tree_chunk_fail
                .iter()
                .filter(|(_, (f, _))| matches!(f, ChunkFail::Missing))
                .map(|(c, _)| *c),
        );
        TreeScan {
            tree_ok,
            referenced,
            missing,
            len_mismatch,
            tree_chunk_fail,
            all_trees_read,
            already_damaged,
            lost,
        }
    }

    /// Check snapshot `si`'s tree and the chunks it references into `acc`; false when the tree
    /// cannot be loaded.
    fn scan_tree(&self, ctx: &Ctx, acc: &TreeAcc, si: usize, s: &Snapshot) -> bool {
        let mut local = SnapshotRefs::default();
        for c in &s.manifest.tree {
            local.check(ctx, c.id(), c.len());
        }
        let ok = match ctx.load_tree(s) {
            Ok(tree) => {
                acc.entries
                    .fetch_add(tree.entries.len() as u64, Ordering::Relaxed);
                for e in &tree.entries {
                    for c in &e.chunks {
                        local.check(ctx, c.id(), c.len());
                    }
                }
                true
            }
            Err(TreeFail::Chunk(id, fail)) => {
                acc.tree_chunk_fail
                    .lock()
                    .unwrap()
                    .entry(id)
                    .or_insert((fail, BTreeSet::new()))
                    .1
                    .insert(si);
                false
            }
            Err(TreeFail::Parse(reason)) => {
                self.out.problem(
                    Finding::new(
                        FindingKind::TreeDamaged,
                        format!(
                            "the tree of snapshot {} does not parse: {reason}",
                            s.id.short()
                        ),
                    )
                    .snapshots(vec![s.id]),
                );
                false
            }
        };
        // Tree chunks that are missing are reported as tree_damaged, not as chunk_missing.
        let tree_ids: HashSet<&Id> = s.manifest.tree.iter().map(|c| c.id()).collect();
        local.missing.retain(|id| !tree_ids.contains(id));
        acc.referenced.lock().unwrap().extend(local.seen);
        acc.missing.lock().unwrap().extend(local.missing);
        acc.len_mismatch.lock().unwrap().extend(local.mismatch);
        ok
    }

    /// Phase 5 (`--read-data`): read the selected packs whole and decode every blob; returns
    /// the blobs that fail, except those `already_damaged` names.
    fn read_data(&mut self, ctx: &Ctx, already_damaged: &HashSet<(Id, Id)>) -> Damaged {
        let mut damaged: Damaged = BTreeMap::new();
        let opts = self.opts;
        let Some(subset) = &opts.read_data else {
            return damaged;
        };
        self.summary.read_data = subset.to_string();
        let selected = select_packs(&ctx.packs, subset);
        let total: u64 = selected.iter().map(|i| ctx.packs[*i].size).sum();
        self.progress.start("read data", Some(total));
        let t0 = Instant::now();
        let counters = ReadCounters::default();
        let found: Mutex<Vec<((Id, u32), String)>> = Mutex::new(Vec::new());
        let this = &*self;
        let requests = selected
            .iter()
            .map(|&pi| RangeRequest {
                name: ctx.packs[pi].name.clone(),
                offset: 0,
                len: ctx.packs[pi].size,
            })
            .collect();
        let tuning = crate::repo::ReadTuning::for_backend(self.backend);
        let workers = rayon::current_num_threads();
        let read =
            crate::repo::for_each_fetched(self.backend, requests, tuning, workers, |i, _, got| {
                this.read_whole_pack(ctx, selected[i], got, &counters, &found);
                Ok(())
            });
        debug_assert!(read.is_ok(), "the work never fails");
        self.progress.finish();
        for ((chunk, pi), reason) in found.into_inner().unwrap() {
            if !already_damaged.contains(&(chunk, ctx.packs[pi as usize].id)) {
                damaged.insert((chunk, pi), reason);
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let summary = &mut self.summary;
        summary.packs_read = counters.packs.into_inner();
        summary.bytes_read = counters.bytes.into_inner();
        summary.blobs_read = counters.blobs.into_inner();
        summary.read_data_ms = (secs * 1000.0) as u64;
        summary.read_mb_per_s = if secs > 0.0 {
            summary.bytes_read as f64 / 1e6 / secs
        } else {
            0.0
        };
        damaged
    }

    /// Pack `pi`, read whole (`got`): check that it hashes to its name and decode every blob its trailer
    /// lists, adding the failing blobs to `found`.
    fn read_whole_pack(
        &self,
        ctx: &Ctx,
        pi: usize,
        got: Result<Vec<u8>>,
        counters: &ReadCounters,
        found: &Mutex<Vec<((Id, u32), String)>>,
    ) {
        let p = &ctx.packs[pi];
        self.progress.item(&p.name);
        let bytes = match got {
            Ok(b) => b,
            Err(e) => {
                self.out.problem(
                    Finding::new(
                        FindingKind::ReadError,
                        format!("pack {} cannot be read: {e}", p.name),
                    )
                    .pack(p.id),
                );
                return;
            }
        };
        counters.packs.fetch_add(1, Ordering::Relaxed);
        counters
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if Id::hash_of(&bytes) != p.id && !p.trailer_damaged {
            self.out.problem(
                Finding::new(
                    FindingKind::PackHashMismatch,
                    format!(
                        "pack {}: its content does not hash to its name ({} bytes read)",
                        p.name,
                        bytes.len()
                    ),
                )
                .pack(p.id),
            );
        }
        if let Some(entries) = &p.entries {
            let mut local = Vec::new();
            for e in entries {
                let r = decode_in_pack(self.key, &bytes, e);
                counters.blobs.fetch_add(1, Ordering::Relaxed);
                if let Err(reason) = r {
                    local.push(((e.id, pi as u32), reason));
                }
            }
            found.lock().unwrap().extend(local);
        }
        self.progress.bytes(p.size);
    }

    /// Phase 7: compare the local index cache with the trailers, and hash whole the packs it
    /// disputes (unless phase 5 read them already).
    fn local_index(&self, ctx: &Ctx, lost: &HashSet<Id>) -> CacheScan {
        let mut cache = CacheScan::default();
        if let Some(path) = &self.opts.index_cache {
            self.progress.item("local index");
            compare_cache(path, self.repo, ctx, lost, &self.out, &mut cache);
            let read: HashSet<Id> = self
                .opts
                .read_data
                .as_ref()
                .map(|s| {
                    select_packs(&ctx.packs, s)
                        .into_iter()
                        .map(|i| ctx.packs[i].id)
                        .collect()
                })
                .unwrap_or_default();
            cache.disputed.retain(|p| !read.contains(p));
            verify_disputed(ctx, &cache.disputed, &self.out);
        }
        cache
    }

    /// Phase 8: problem findings for chunks (and the packs the local index knows that are gone).
    fn chunk_findings(&self, scan: &Scan) {
        self.tree_chunk_findings(scan);
        self.missing_chunk_findings(scan);
        self.length_findings(scan);
        self.damaged_findings(scan);
        self.gone_pack_findings(scan);
    }

    /// Tree chunks that could not be read: the snapshots whose tree they belong to.
    fn tree_chunk_findings(&self, scan: &Scan) {
        for (chunk, (fail, sis)) in &scan.trees.tree_chunk_fail {
            let snapshots: Vec<Id> = sis.iter().map(|i| scan.snaps[*i].id).collect();
            let f = match fail {
                ChunkFail::Missing => {
                    let f = Finding::new(
                        FindingKind::TreeDamaged,
                        format!("tree chunk {} is listed by no readable pack: the snapshot's tree cannot be loaded", chunk.short()),
                    )
                    .chunk(*chunk);
                    match scan.cache.cache_pack_of.get(chunk) {
                        Some(p) => {
                            let mut f = f.pack(*p);
                            f.message.push_str(&format!(" (the local index places it in pack {})", pack::pack_name(p)));
                            f
                        }
                        None => f,
                    }
                }
                ChunkFail::Damaged { pack, reason } => Finding::new(
                    FindingKind::TreeDamaged,
                    format!(
                        "tree chunk {} in pack {} is damaged ({reason}): the snapshot's tree cannot be loaded",
                        chunk.short(),
                        pack::pack_name(pack)
                    ),
                )
                .chunk(*chunk)
                .pack(*pack),
                ChunkFail::Read { pack, reason } => Finding::new(
                    FindingKind::ReadError,
                    format!("tree chunk {} in pack {} cannot be read: {reason}", chunk.short(), pack::pack_name(pack)),
                )
                .chunk(*chunk)
                .pack(*pack),
            };
            self.out.problem(f.snapshots(snapshots));
        }
    }

    /// Referenced data chunks no readable pack lists.
    fn missing_chunk_findings(&self, scan: &Scan) {
        let mut missing_sorted: Vec<&Id> = scan.trees.missing.iter().collect();
        missing_sorted.sort();
        for chunk in missing_sorted {
            let mut f = Finding::new(
                FindingKind::ChunkMissing,
                format!(
                    "chunk {} is referenced but listed by no readable pack",
                    chunk.short()
                ),
            )
            .chunk(*chunk);
            if let Some(p) = scan.cache.cache_pack_of.get(chunk) {
                f.message.push_str(&format!(
                    " (the local index places it in pack {})",
                    pack::pack_name(p)
                ));
                f = f.pack(*p);
            }
            self.out.problem(scan.with_refs(f, chunk));
        }
    }

    /// Chunks referenced with another length than their pack lists.
    fn length_findings(&self, scan: &Scan) {
        for (chunk, (tree_len, raw_len)) in &scan.trees.len_mismatch {
            let l = scan.ctx.chunks.first[chunk];
            let p = &scan.ctx.packs[l.pack as usize];
            let f = Finding::new(
                FindingKind::ChunkLengthMismatch,
                format!(
                    "chunk {} is referenced with length {tree_len}, but pack {} lists {raw_len} bytes",
                    chunk.short(),
                    p.name
                ),
            )
            .chunk(*chunk)
            .pack(p.id);
            self.out.problem(scan.with_refs(f, chunk));
        }
    }

    /// Blobs that failed to decode in phase 5, with the other copies of each chunk.
    fn damaged_findings(&self, scan: &Scan) {
        let ctx = &scan.ctx;
        for ((chunk, pi), reason) in &scan.damaged {
            let p = &ctx.packs[*pi as usize];
            let mut msg = format!(
                "chunk {} in pack {} is damaged: {reason}",
                chunk.short(),
                p.name
            );
            let others: Vec<String> = ctx
                .chunks
                .copies(chunk)
                .iter()
                .filter(|l| l.pack != *pi)
                .map(|l| {
                    let q = &ctx.packs[l.pack as usize];
                    if scan.damaged.contains_key(&(*chunk, l.pack)) {
                        format!("{} (damaged too)", q.name)
                    } else {
                        q.name.clone()
                    }
                })
                .collect();
            if !others.is_empty() {
                msg.push_str(&format!(
                    "; another copy is listed in {}",
                    others.join(", ")
                ));
            }
            if !scan.trees.referenced.contains(chunk) && scan.trees.all_trees_read {
                msg.push_str("; no snapshot references it (garbage for prune)");
            }
            let f = Finding::new(FindingKind::ChunkDamaged, msg)
                .chunk(*chunk)
                .pack(p.id);
            self.out.problem(scan.with_refs(f, chunk));
        }
    }

    /// Packs the local index knows that the repository no longer lists: a problem when
    /// referenced chunks were only in them.
    fn gone_pack_findings(&self, scan: &Scan) {
        for (pack, chunks_lost) in &scan.cache.gone_packs {
            let name = pack::pack_name(pack);
            let only_here: Vec<&Id> = chunks_lost
                .iter()
                .filter(|c| scan.trees.lost.contains(c))
                .collect();
            if only_here.is_empty() {
                self.out.info(
                    Finding::new(
                        FindingKind::LocalIndex,
                        format!("the local index lists pack {name}, which is no longer in the repository (pruned?); it is dropped on next use"),
                    )
                    .pack(*pack),
                );
            } else {
                let mut sis = BTreeSet::new();
                for c in &only_here {
                    if let Some(r) = scan.refs.get(*c) {
                        sis.extend(r.snapshots.iter().copied());
                    }
                }
                self.out.problem(
                    Finding::new(
                        FindingKind::PackMissing,
                        format!(
                            "pack {name} is missing from the repository (the local index knows it); {} referenced chunks were only in it",
                            only_here.len()
                        ),
                    )
                    .pack(*pack)
                    .snapshots(sis.iter().map(|i| scan.snaps[*i].id).collect()),
                );
            }
        }
    }

    /// Phase 9: garbage, duplicates, locks, deletion plans, leftover temporaries.
    fn housekeeping(&self, ctx: &Ctx, trees: &TreeScan) {
        let condemned = self.deletion_plans();
        if trees.all_trees_read {
            self.unreferenced(ctx, &trees.referenced, &condemned);
        } else {
            self.out.info(Finding::new(
                FindingKind::UnreferencedChunks,
                "unreferenced data was not computed: some snapshots or trees could not be read",
            ));
        }
        if !ctx.chunks.extra.is_empty() {
            self.out.info(Finding::new(
                FindingKind::DuplicateChunks,
                format!(
                    "{} chunks are stored in more than one pack (harmless: written by concurrent backups)",
                    ctx.chunks.extra.len()
                ),
            ));
        }
        report_locks(
            self.backend,
            self.key,
            self.opts.own_lock.as_deref(),
            &self.out,
        );
        report_temporaries(self.backend, &self.out);
    }

    /// Report the deletion plans; returns the packs they condemn.
    fn deletion_plans(&self) -> HashSet<Id> {
        match crate::repo::deletion::read_plans(self.backend, self.key) {
            Ok(plans) => {
                for p in &plans {
                    self.out.info(
                        Finding::new(
                            FindingKind::DeletionPlan,
                            format!(
                                "deletion plan {} (created {}) condemns {} packs; `snap prune` deletes them",
                                p.name,
                                p.plan.created.format("%Y-%m-%d %H:%M:%S UTC"),
                                p.plan.packs.len()
                            ),
                        )
                        .object(p.name.clone()),
                    );
                }
                plans.into_iter().flat_map(|p| p.plan.packs).collect()
            }
            Err(e @ Error::Corrupt { .. }) => {
                self.out.problem(Finding::new(
                    FindingKind::DeletionPlanDamaged,
                    e.to_string(),
                ));
                HashSet::new()
            }
            Err(e) => {
                self.out.problem(Finding::new(
                    FindingKind::ReadError,
                    format!("deletion plans cannot be read: {e}"),
                ));
                HashSet::new()
            }
        }
    }

    /// Report the packs and chunks no snapshot references (garbage for prune).
    fn unreferenced(&self, ctx: &Ctx, referenced: &HashSet<Id>, condemned: &HashSet<Id>) {
        let mut n = 0u64;
        let mut bytes = 0u64;
        for (id, l) in &ctx.chunks.first {
            if !referenced.contains(id) {
                n += 1;
                bytes += ctx.entry(*l).1.length as u64;
            }
        }
        for p in &ctx.packs {
            if let Some(entries) = &p.entries
                && entries.iter().all(|e| !referenced.contains(&e.id))
            {
                let c = if condemned.contains(&p.id) {
                    " (condemned by a deletion plan)"
                } else {
                    ""
                };
                self.out.info(
                    Finding::new(
                        FindingKind::UnreferencedPack,
                        format!("pack {} ({} bytes) holds no referenced chunk{c}; `snap prune` removes it", p.name, p.size),
                    )
                    .pack(p.id),
                );
            }
        }
        if n > 0 {
            self.out.info(Finding::new(
                FindingKind::UnreferencedChunks,
                format!("{n} chunks ({bytes} bytes stored) are not referenced by any snapshot; `snap prune` removes them"),
            ));
        }
    }

    /// The findings, sorted, with the summary's counts and duration filled in.
    fn report(self, started: Instant) -> CheckReport {
        let sort = |v: &mut Vec<Finding>| {
            v.sort_by(|a, b| {
                (a.kind, a.pack, a.chunk, &a.object, &a.message)
                    .cmp(&(b.kind, b.pack, b.chunk, &b.object, &b.message))
            })
        };
        let mut report = CheckReport {
            problems: collapse_server_failures(self.out.problems.into_inner().unwrap()),
            warnings: self.out.warnings.into_inner().unwrap(),
            info: self.out.info.into_inner().unwrap(),
            summary: self.summary,
        };
        sort(&mut report.problems);
        sort(&mut report.warnings);
        sort(&mut report.info);
        report.summary.problems = report.problems.len() as u64;
        report.summary.warnings = report.warnings.len() as u64;
        report.summary.duration_ms = started.elapsed().as_millis() as u64;
        report
    }
}

/// Phase 6: which snapshots and paths reference the chunks with problems.
fn problem_refs(
    ctx: &Ctx,
    snaps: &[Snapshot],
    trees: &TreeScan,
    damaged: &Damaged,
) -> HashMap<Id, Refs> {
    let mut interest: HashSet<Id> = trees.lost.clone();
    interest.extend(trees.len_mismatch.keys().copied());
    interest.extend(damaged.keys().map(|(c, _)| *c));
    resolve_refs(ctx, snaps, &trees.tree_ok, &interest)
}

/// Decode the blob `e` lists from the whole pack `bytes`; the reason when it fails.
fn decode_in_pack(key: &MasterKey, bytes: &[u8], e: &PackEntry) -> std::result::Result<(), String> {
    let (s, l) = (e.offset as usize, e.length as usize);
    match bytes.get(s..s + l) {
        None => Err(format!(
            "blob at {s}+{l} lies past the end of the pack ({} bytes)",
            bytes.len()
        )),
        Some(sealed) => match blob::decode(key, e.kind, &e.id, sealed) {
            Err(err) => Err(reason(err)),
            Ok(plain) if plain.len() != e.raw_len as usize => Err(format!(
                "decodes to {} bytes but the trailer says {}",
                plain.len(),
                e.raw_len
            )),
            Ok(_) => Ok(()),
        },
    }
}

/// Check every key file in `keys/`: readable, named by its hash, and of a known format.
fn check_key_files(
    backend: &dyn Backend,
    out: &Findings,
    summary: &mut CheckSummary,
) -> Result<()> {
    for obj in backend.list("keys/")? {
        summary.key_files += 1;
        let bytes = match backend.get_bounded(&obj.name, crate::repo::limits::KEY_FILE) {
            Ok(b) => b,
            Err(Error::NotFound { .. }) => continue,
            Err(e) => {
                out.problem(
                    Finding::new(
                        FindingKind::ReadError,
                        format!("key file {} cannot be read: {e}", obj.name),
                    )
                    .object(obj.name),
                );
                continue;
            }
        };
        if let Some(why) = key_file_defect(&obj.name, &bytes) {
            out.problem(
                Finding::new(
                    FindingKind::KeyFileDamaged,
                    format!("key file {} is damaged: {why}", obj.name),
                )
                .object(obj.name),
            );
        }
    }
    Ok(())
}

/// What is wrong with the key file `name` holding `bytes`, if anything.
fn key_file_defect(name: &str, bytes: &[u8]) -> Option<String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let named = name
        .strip_prefix("keys/")
        .and_then(|n| n.parse::<Id>().ok());
    if named != Some(Id::hash_of(bytes)) {
        return Some("its content does not match its name".to_string());
    }
    match KeyFile::from_bytes(bytes) {
        Err(Error::Corrupt { detail, .. }) => Some(detail),
        Err(e) => Some(e.to_string()),
        Ok(kf) => {
            let salt = b64.decode(&kf.kdf.salt).map(|s| s.len());
            let wrapped = b64.decode(&kf.wrapped_key).map(|w| w.len());
            if kf.version != 1 {
                Some(format!("version {} (this snap knows 1)", kf.version))
            } else if kf.kdf.algorithm != "argon2id" || kf.kdf.version != 0x13 {
                Some(format!(
                    "unsupported KDF {} v{}",
                    kf.kdf.algorithm, kf.kdf.version
                ))
            } else if salt.as_ref().ok() != Some(&32) {
                Some("salt is not 32 bytes of base64".into())
            } else if wrapped.as_ref().ok() != Some(&(24 + 32 + 16)) {
                Some("wrapped_key is not 72 bytes of base64".into())
            } else {
                None
            }
        }
    }
}

/// Indices of the packs `subset` selects (in id order).
fn select_packs(packs: &[PackRec], subset: &DataSubset) -> Vec<usize> {
    let all: Vec<usize> = (0..packs.len()).collect();
    let shuffled = || {
        let mut v = all.clone();
        let mut seed = [0u8; 8];
        crate::crypto::fill_random(&mut seed);
        let mut x = u64::from_le_bytes(seed) | 1;
        for i in (1..v.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.swap(i, (x % (i as u64 + 1)) as usize);
        }
        v
    };
    let mut out = match subset {
        DataSubset::All => all.clone(),
        DataSubset::Slice { n, m } => all
            .iter()
            .copied()
            .filter(|i| slice_of(&packs[*i].id, *m) == n - 1)
            .collect(),
        DataSubset::Percent(p) => {
            let k = ((packs.len() as f64) * p / 100.0).ceil() as usize;
            shuffled().into_iter().take(k.min(packs.len())).collect()
        }
        DataSubset::Bytes(limit) => {
            let mut acc = 0u64;
            let mut v = Vec::new();
            for i in shuffled() {
                if acc >= *limit {
                    break;
                }
                acc += packs[i].size;
                v.push(i);
            }
            v
        }
    };
    out.sort();
    out
}

/// The slice (0-based, of `m`) a pack belongs to for `--read-data-subset n/m`.
pub fn slice_of(pack: &Id, m: u64) -> u64 {
    u64::from_be_bytes(pack.as_bytes()[..8].try_into().unwrap()) % m
}

#[derive(Default)]
struct Refs {
    snapshots: BTreeSet<usize>,
    paths: BTreeSet<String>,
    omitted: u64,
}

/// For each chunk in `interest`: the snapshots (and file paths) that reference it.
fn resolve_refs(
    ctx: &Ctx,
    snaps: &[Snapshot],
    tree_ok: &[bool],
    interest: &HashSet<Id>,
) -> HashMap<Id, Refs> {
    let refs: Mutex<HashMap<Id, Refs>> = Mutex::new(HashMap::new());
    if interest.is_empty() {
        return HashMap::new();
    }
    snaps.par_iter().enumerate().for_each(|(si, s)| {
        let mut local: Vec<(Id, Option<String>)> = Vec::new();
        for c in &s.manifest.tree {
            if interest.contains(c.id()) {
                local.push((*c.id(), None));
            }
        }
        if tree_ok[si]
            && let Ok(tree) = ctx.load_tree(s)
        {
            for e in &tree.entries {
                for c in &e.chunks {
                    if interest.contains(c.id()) {
                        local.push((*c.id(), Some(e.path.clone())));
                    }
                }
            }
        }
        let mut refs = refs.lock().unwrap();
        for (id, path) in local {
            let r = refs.entry(id).or_default();
            r.snapshots.insert(si);
            if let Some(p) = path
                && !r.paths.contains(&p)
            {
                if r.paths.len() < MAX_PATHS {
                    r.paths.insert(p);
                } else {
                    r.omitted += 1;
                }
            }
        }
    });
    refs.into_inner().unwrap()
}

/// Packs named by their hash never change, so when the local index recorded another size, blob
/// count or blob location for a pack id than the object stored under that name now shows, either
/// the cache is wrong or the object is not the pack its name says (e.g. two packs swapped: each
/// trailer is intact and matches its own bytes). Hash each such pack whole to tell which: a
/// mismatch is a problem (repo-format.md §8.1); a match leaves the cache warning.
fn verify_disputed(ctx: &Ctx, disputed: &BTreeSet<Id>, out: &Findings) {
    for p in ctx.packs.iter().filter(|p| disputed.contains(&p.id)) {
        match ctx.backend.get(&p.name) {
            Ok(bytes) if Id::hash_of(&bytes) != p.id => out.problem(
                Finding::new(
                    FindingKind::PackHashMismatch,
                    format!(
                        "pack {}: its content does not hash to its name ({} bytes; the local index recorded other contents for this id): another object is stored under this pack's name (swapped or overwritten packs?); restore the pack from a copy of the repository",
                        p.name,
                        bytes.len()
                    ),
                )
                .pack(p.id),
            ),
            Ok(_) => {}
            Err(e) => out.problem(
                Finding::new(FindingKind::ReadError, format!("pack {} cannot be read: {e}", p.name))
                    .pack(p.id),
            ),
        }
    }
}

/// What the local index says about chunks and packs the repository lacks or disputes.
#[derive(Default)]
struct CacheScan {
    /// Missing chunk → the pack the index places it in.
    cache_pack_of: HashMap<Id, Id>,
    /// Packs the index knows that the repository no longer lists → the chunks the index places
    /// in them.
    gone_packs: BTreeMap<Id, BTreeSet<Id>>,
    /// Listed packs whose size, blob count or blob locations disagree with what the index
    /// recorded for their id.
    disputed: BTreeSet<Id>,
}

/// Compare the local index at `path` with the trailers, filling `cache` (see [`CacheScan`];
/// `missing` are the chunks whose pack the index is asked for).
fn compare_cache(
    path: &Path,
    repo: &Repository,
    ctx: &Ctx,
    missing: &HashSet<Id>,
    out: &Findings,
    cache: &mut CacheScan,
) {
    let Some(reader) = open_cache(path, repo, out) else {
        return;
    };
    let mut cmp = CacheCompare {
        ctx,
        missing,
        by_id: ctx
            .packs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, i))
            .collect(),
        m: Mismatches::default(),
    };
    let cache_packs = match reader.packs() {
        Ok(p) => p,
        Err(e) => return cache_damaged(out, path, e.to_string()),
    };
    let known = cmp.packs(&cache_packs, &mut cache.gone_packs);
    let not_indexed = ctx.packs.iter().filter(|p| !known.contains(&p.id)).count();
    if not_indexed > 0 {
        out.info(Finding::new(
            FindingKind::LocalIndex,
            format!(
                "{not_indexed} packs are not in the local index yet (written since it was last updated); they are added on next use"
            ),
        ));
    }
    let mut cache_ids: HashSet<Id> = HashSet::new();
    let r = reader.for_each_chunk(|id, loc| {
        cache_ids.insert(id);
        cmp.chunk(cache, id, loc);
    });
    if let Err(e) = r {
        cache_damaged(out, path, e.to_string());
    }
    cmp.unindexed(&known, &cache_ids);
    cmp.finish(out, path, &mut cache.disputed);
}

/// Warn that the local index at `path` is damaged, and why.
fn cache_damaged(out: &Findings, path: &Path, why: String) {
    let shown = path.display();
    out.warning(
        Finding::new(
            FindingKind::LocalIndexDamaged,
            format!("the local index {shown} is damaged ({why}); snap rebuilds it on next use, or run `snap repair index`"),
        )
        .object(path.display().to_string()),
    )
}

/// Whether the local index at `path` exists, is not in use and was closed cleanly with its
/// checksum intact; reports why not otherwise.
fn cache_comparable(path: &Path, out: &Findings) -> bool {
    let shown = path.display();
    if !path.exists() {
        out.info(Finding::new(
            FindingKind::LocalIndex,
            format!("no local index at {shown}; it is built from the pack trailers on first use"),
        ));
        return false;
    }
    // Never hand a file that fails its checksum to redb (it may panic on damage).
    if crate::index::in_use(path) {
        out.info(Finding::new(
            FindingKind::LocalIndex,
            format!(
                "the local index {shown} is in use by another snap process; it was not compared"
            ),
        ));
        return false;
    }
    match crate::index::distrust(path) {
        Some(crate::index::Distrust::Damaged(why)) => {
            cache_damaged(out, path, why);
            false
        }
        Some(crate::index::Distrust::Unclean) => {
            out.info(Finding::new(
                FindingKind::LocalIndex,
                format!("the local index {shown} was not closed cleanly (an interrupted snap); it is rebuilt on next use"),
            ));
            false
        }
        None => true,
    }
}

/// Open the local index at `path` read-only for the comparison, or report why it is not
/// compared.
fn open_cache(path: &Path, repo: &Repository, out: &Findings) -> Option<IndexReader> {
    if !cache_comparable(path, out) {
        return None;
    }
    let shown = path.display();
    let reader = match IndexReader::open(path) {
        Ok(r) => r,
        Err(Error::IndexBusy { .. }) => {
            out.info(Finding::new(
                FindingKind::LocalIndex,
                format!(
                    "the local index {shown} is in use by another snap process; it was not compared"
                ),
            ));
            return None;
        }
        Err(Error::Index(why)) => {
            cache_damaged(out, path, why);
            return None;
        }
        Err(e) => {
            cache_damaged(out, path, e.to_string());
            return None;
        }
    };
    if reader.was_repaired() {
        out.info(Finding::new(
            FindingKind::LocalIndex,
            format!("the local index {shown} was not closed cleanly (an interrupted snap); it is repaired on next use"),
        ));
    }
    match reader.is_current(&repo.config().id) {
        Ok(true) => Some(reader),
        Ok(false) => {
            out.info(Finding::new(
                FindingKind::LocalIndex,
                format!("the local index {shown} belongs to another repository or layout; it is rebuilt on next use"),
            ));
            None
        }
        Err(e) => {
            cache_damaged(out, path, e.to_string());
            None
        }
    }
}

/// Local-index disagreements: the first [`MAX_INDEX_MISMATCHES`], how many more, and the packs
/// they name.
#[derive(Default)]
struct Mismatches {
    list: Vec<Finding>,
    more: u64,
    packs: BTreeSet<Id>,
}

impl Mismatches {
    /// Record one disagreement.
    fn push(&mut self, f: Finding) {
        if let Some(p) = f.pack {
            self.packs.insert(p);
        }
        if self.list.len() < MAX_INDEX_MISMATCHES {
            self.list.push(f);
        } else {
            self.more += 1;
        }
    }
}

/// One comparison of the local index with the trailers.
struct CacheCompare<'c> {
    ctx: &'c Ctx<'c>,
    /// Chunks whose pack the index is asked for.
    missing: &'c HashSet<Id>,
    /// Pack id → index into `ctx.packs`.
    by_id: HashMap<Id, usize>,
    m: Mismatches,
}

impl CacheCompare<'_> {
    /// Compare the packs the index records (id, size, blob count) with the listed ones; packs
    /// no longer listed go to `gone_packs`. Returns the ids the index knows.
    fn packs(
        &mut self,
        cache_packs: &[(Id, u64, u32)],
        gone_packs: &mut BTreeMap<Id, BTreeSet<Id>>,
    ) -> HashSet<Id> {
        let ctx = self.ctx;
        let mut known: HashSet<Id> = HashSet::new();
        for (id, size, count) in cache_packs {
            known.insert(*id);
            match self.by_id.get(id) {
                None => {
                    gone_packs.insert(*id, BTreeSet::new());
                }
                Some(&i) => {
                    let p = &ctx.packs[i];
                    if p.entries.is_none() {
                        // Named as damaged or unreadable already.
                    } else if p.size != *size {
                        self.m.push(
                            Finding::new(
                                FindingKind::LocalIndexMismatch,
                                format!(
                                    "the local index records pack {} as {size} bytes; it has {}",
                                    p.name, p.size
                                ),
                            )
                            .pack(p.id),
                        );
                    } else if let Some(e) = &p.entries
                        && e.len() as u64 != *count as u64
                    {
                        self.m.push(
                            Finding::new(
                                FindingKind::LocalIndexMismatch,
                                format!("the local index records {count} blobs in pack {}; its trailer lists {}", p.name, e.len()),
                            )
                            .pack(p.id),
                        );
                    }
                }
            }
        }
        known
    }

    /// Compare the index's row for chunk `id` with the trailers.
    fn chunk(&mut self, cache: &mut CacheScan, id: Id, loc: Option<Location>) {
        let ctx = self.ctx;
        let Some(loc) = loc else {
            self.m.push(
                Finding::new(
                    FindingKind::LocalIndexMismatch,
                    format!("the local index row for chunk {} is malformed", id.short()),
                )
                .chunk(id),
            );
            return;
        };
        if self.missing.contains(&id) {
            cache.cache_pack_of.insert(id, loc.pack);
        }
        if let Some(chunks) = cache.gone_packs.get_mut(&loc.pack) {
            chunks.insert(id);
            return;
        }
        let Some(&pi) = self.by_id.get(&loc.pack) else {
            self.m.push(
                Finding::new(
                    FindingKind::LocalIndexMismatch,
                    format!(
                        "the local index places chunk {} in pack {}, which it does not list",
                        id.short(),
                        pack::pack_name(&loc.pack)
                    ),
                )
                .chunk(id)
                .pack(loc.pack),
            );
            return;
        };
        let p = &ctx.packs[pi];
        if p.entries.is_none() {
            return; // the pack is named as damaged or unreadable already
        }
        let copy = ctx
            .chunks
            .copies(&id)
            .into_iter()
            .map(|l| ctx.entry(l))
            .find(|(q, _)| q.id == loc.pack);
        match copy {
            None => self.m.push(
                Finding::new(
                    FindingKind::LocalIndexMismatch,
                    format!("the local index places chunk {} in pack {}, whose trailer does not list it", id.short(), p.name),
                )
                .chunk(id)
                .pack(p.id),
            ),
            Some((_, e)) => {
                if (e.offset, e.length, e.raw_len, e.kind) != (loc.offset, loc.length, loc.raw_len, loc.kind) {
                    self.m.push(location_mismatch(id, p, &loc, e))
                }
            }
        }
    }

    /// Name the chunks of packs the index knows that it does not list.
    fn unindexed(&mut self, known: &HashSet<Id>, cache_ids: &HashSet<Id>) {
        for p in &self.ctx.packs {
            if !known.contains(&p.id) {
                continue;
            }
            for e in p.entries.iter().flatten() {
                if !cache_ids.contains(&e.id) {
                    self.m.push(
                        Finding::new(
                            FindingKind::LocalIndexMismatch,
                            format!(
                                "chunk {} of pack {} is missing from the local index",
                                e.id.short(),
                                p.name
                            ),
                        )
                        .chunk(e.id)
                        .pack(p.id),
                    );
                }
            }
        }
    }

    /// Report the disagreements as warnings; the listed packs they name go to `disputed`.
    fn finish(self, out: &Findings, path: &Path, disputed: &mut BTreeSet<Id>) {
        let Mismatches { list, more, packs } = self.m;
        disputed.extend(packs.into_iter().filter(|p| self.by_id.contains_key(p)));
        let any = !list.is_empty();
        for f in list {
            out.warning(f);
        }
        if more > 0 {
            out.warning(Finding::new(
                FindingKind::LocalIndexMismatch,
                format!("… and {more} more disagreements with the local index"),
            ));
        }
        if any {
            out.warning(Finding::new(
                FindingKind::LocalIndexMismatch,
                format!(
                    "the local index {} disagrees with the pack trailers; run `snap repair index`",
                    path.display()
                ),
            ));
        }
    }
}

/// The finding for an index row that places chunk `id` in pack `p` elsewhere than its trailer
/// entry `e` does.
fn location_mismatch(id: Id, p: &PackRec, loc: &Location, e: &PackEntry) -> Finding {
    Finding::new(
        FindingKind::LocalIndexMismatch,
        format!(
            "the local index places chunk {} in pack {} at offset {} length {} (raw {}, {}); the trailer says offset {} length {} (raw {}, {})",
            id.short(),
            p.name,
            loc.offset,
            loc.length,
            loc.raw_len,
            loc.kind.name(),
            e.offset,
            e.length,
            e.raw_len,
            e.kind.name()
        ),
    )
    .chunk(id)
    .pack(p.id)
}

/// Temporary files interrupted writes left (information: `snap prune` removes them).
fn report_temporaries(backend: &dyn Backend, out: &Findings) {
    let Ok(left) = backend.leftover_temporaries(crate::ops::prune::TEMPORARY_MIN_AGE) else {
        return;
    };
    for t in left {
        out.info(
            Finding::new(
                FindingKind::LeftoverTemporary,
                format!("temporary file {} ({} bytes) left by an interrupted write; `snap prune` removes it", t.name, t.size),
            )
            .object(t.name.clone()),
        );
    }
}

fn report_locks(backend: &dyn Backend, key: &MasterKey, own: Option<&str>, out: &Findings) {
    let locks = match crate::repo::lock::list_locks(backend, key, chrono::Utc::now()) {
        Ok(l) => l,
        Err(e) => {
            out.info(Finding::new(
                FindingKind::Lock,
                format!("locks could not be listed: {e}"),
            ));
            return;
        }
    };
    for l in locks {
        if Some(l.name.as_str()) == own {
            continue;
        }
        let f = match (&l.info, l.stale) {
            (Ok(i), true) => Finding::new(
                FindingKind::StaleLock,
                format!(
                    "stale lock {}: {}; `snap unlock` removes it",
                    l.name,
                    i.describe()
                ),
            ),
            (Err(e), _) => Finding::new(
                FindingKind::StaleLock,
                format!(
                    "lock {} cannot be read ({e}) and counts as stale; `snap unlock` removes it",
                    l.name
                ),
            ),
            (Ok(i), false) => Finding::new(
                FindingKind::Lock,
                format!("lock {}: {}", l.name, i.describe()),
            ),
        };
        out.info(f.object(l.name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_specs() {
        assert_eq!(
            "1/7".parse::<DataSubset>().unwrap(),
            DataSubset::Slice { n: 1, m: 7 }
        );
        assert_eq!(
            "7/7".parse::<DataSubset>().unwrap(),
            DataSubset::Slice { n: 7, m: 7 }
        );
        assert_eq!(
            "10%".parse::<DataSubset>().unwrap(),
            DataSubset::Percent(10.0)
        );
        assert_eq!(
            "2.5%".parse::<DataSubset>().unwrap(),
            DataSubset::Percent(2.5)
        );
        assert_eq!(
            "500MiB".parse::<DataSubset>().unwrap(),
            DataSubset::Bytes(500 << 20)
        );
        assert_eq!(
            "1G".parse::<DataSubset>().unwrap(),
            DataSubset::Bytes(1 << 30)
        );
        for bad in [
            "0/7",
            "8/7",
            "1/0",
            "a/b",
            "0%",
            "101%",
            "x%",
            "0",
            "12 parsecs",
            "",
        ] {
            assert!(bad.parse::<DataSubset>().is_err(), "{bad:?}");
        }
        assert_eq!(DataSubset::Slice { n: 2, m: 3 }.to_string(), "2/3");
    }

    fn fake_packs(n: usize) -> Vec<PackRec> {
        (0..n)
            .map(|i| {
                let id = Id::hash_of(&(i as u64).to_le_bytes());
                PackRec {
                    id,
                    name: pack::pack_name(&id),
                    size: 1000 + i as u64,
                    entries: Some(vec![]),
                    trailer_damaged: false,
                }
            })
            .collect()
    }

    #[test]
    fn slices_partition_the_packs() {
        let packs = fake_packs(200);
        for m in [1, 2, 3, 7] {
            let mut seen = vec![0; packs.len()];
            for n in 1..=m {
                for i in select_packs(&packs, &DataSubset::Slice { n, m }) {
                    seen[i] += 1;
                    assert_eq!(slice_of(&packs[i].id, m), n - 1);
                }
            }
            assert!(seen.iter().all(|c| *c == 1), "m = {m}");
        }
    }

    #[test]
    fn random_subsets() {
        let packs = fake_packs(50);
        assert_eq!(select_packs(&packs, &DataSubset::Percent(10.0)).len(), 5);
        assert_eq!(
            select_packs(&packs, &DataSubset::Percent(1.0)).len(),
            1,
            "rounded up"
        );
        assert_eq!(select_packs(&packs, &DataSubset::Percent(100.0)).len(), 50);
        // Sizes are 1000..1049: three packs stay below 3500 bytes, the fourth reaches it.
        assert_eq!(select_packs(&packs, &DataSubset::Bytes(3500)).len(), 4);
        assert_eq!(select_packs(&packs, &DataSubset::Bytes(1)).len(), 1);
        assert_eq!(select_packs(&packs, &DataSubset::Bytes(u64::MAX)).len(), 50);
        assert_eq!(select_packs(&packs, &DataSubset::All).len(), 50);
    }
}
