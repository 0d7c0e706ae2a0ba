//! `snap copy`: copy snapshots from one repository into another (an off-site copy on S3, or
//! back), incrementally.
//!
//! * Snapshots whose origin (§7.1 `copied_from`, else the id) the destination already holds are
//!   skipped; a copied manifest records its origin in `copied_from`.
//! * **Same master key** (the destination was made with `snap init --copy-key-from`): chunk ids
//!   match, so sealed blobs move as they are — no decryption, no re-encryption. Only chunks the
//!   destination lacks are sent: a source pack whose blobs are all missing is copied verbatim
//!   (same name); from other packs the missing blobs are cut out and packed anew. Source packs
//!   are fetched and uploaded by `parallel` workers.
//! * **Different keys**: chunk ids are keyed and the chunker is key-seeded, so each file's
//!   content is read, re-chunked and stored through the destination's normal write path
//!   ([`Saver`]), which deduplicates against what the destination has.
//! * Each snapshot's manifest is written last, after every pack it needs is durable, and after
//!   re-reading the destination's deletion plans (rule W2, repo-format.md §9.2); an interrupted
//!   copy leaves no partial snapshot, and the next run sends only what is still missing.
//!
//! The caller holds shared locks on both repositories.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use serde::Serialize;

use crate::backend::RequestCounts;
use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::Index;
use crate::pack::{self, PackEntry, PackWriter};
use crate::progress::Progress;
use crate::repo::{Repository, Saver, TreeWriter};
use crate::snapshot::{ChunkRef, Entry, EntryKind, Manifest, Snapshot};

/// Which snapshots to copy and how.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Snapshot ids or prefixes (or `latest`); empty = all that match the filters below.
    pub ids: Vec<String>,
    /// The snapshot must carry all of these tags.
    pub tags: Vec<String>,
    pub host: Option<String>,
    /// Only snapshots taken at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Work out what would be sent, send nothing.
    pub dry_run: bool,
    /// Source packs fetched and uploaded at once (same-key copies).
    pub parallel: usize,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            ids: Vec::new(),
            tags: Vec::new(),
            host: None,
            since: None,
            dry_run: false,
            parallel: 4,
        }
    }
}

/// How content travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyMode {
    /// Same master key: sealed blobs and packs are copied as they are.
    SameKey,
    /// Different keys: content is re-chunked and re-encrypted for the destination.
    Rechunk,
}

/// One source snapshot and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct CopiedSnapshot {
    pub source: Id,
    /// The new snapshot in the destination (`None` for a dry run).
    pub destination: Option<Id>,
    pub time: chrono::DateTime<chrono::FixedOffset>,
    pub host: String,
    pub paths: Vec<String>,
    /// Bytes sent (or, for a dry run, that would be sent) for this snapshot: sealed blobs for
    /// same-key copies; for re-chunked dry runs an upper bound (the snapshot's logical size).
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    pub mode: CopyMode,
    pub dry_run: bool,
    pub copied: Vec<CopiedSnapshot>,
    /// Selected snapshots the destination already holds (by origin): (source id, destination id).
    pub skipped: Vec<(Id, Id)>,
    pub chunks_sent: u64,
    /// Bytes of pack files written to the destination.
    pub bytes_sent: u64,
    pub packs_written: u64,
    /// Requests made to each repository during the copy, when its backend counts them.
    pub source_requests: Option<RequestCounts>,
    pub destination_requests: Option<RequestCounts>,
    pub duration_ms: u64,
}

impl CopyReport {
    /// Upload speed in MB/s (10^6 bytes), over the whole copy.
    pub fn mb_per_s(&self) -> f64 {
        if self.duration_ms == 0 {
            return 0.0;
        }
        self.bytes_sent as f64 / 1e6 / (self.duration_ms as f64 / 1000.0)
    }
}

/// Copy the snapshots `opts` selects from `src` to `dst`. See the module docs.
pub fn copy(
    src: &Repository,
    dst: &Repository,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport> {
    let started = Instant::now();
    let src_before = src.backend().counts();
    let dst_before = dst.backend().counts();
    if src.config().id == dst.config().id {
        return Err(Error::Invalid(
            "source and destination are the same repository".into(),
        ));
    }
    let mode = if src.key().secret() == dst.key().secret() {
        CopyMode::SameKey
    } else {
        CopyMode::Rechunk
    };
    let selected = select(src, opts)?;
    let (dst_snaps, _) = dst.snapshots_and_damaged()?;
    let present: HashMap<Id, Id> = dst_snaps.iter().map(|s| (s.origin(), s.id)).collect();
    let mut report = CopyReport {
        mode,
        dry_run: opts.dry_run,
        copied: Vec::new(),
        skipped: Vec::new(),
        chunks_sent: 0,
        bytes_sent: 0,
        packs_written: 0,
        source_requests: None,
        destination_requests: None,
        duration_ms: 0,
    };
    let todo: Vec<&Snapshot> = selected
        .iter()
        .filter(|s| match present.get(&s.origin()) {
            Some(d) => {
                report.skipped.push((s.id, *d));
                false
            }
            None => true,
        })
        .collect();
    progress.start("copy", None);
    // Origins copied in this run, so parents can point at their copies.
    let mut copied_ids: HashMap<Id, Id> = present;
    let mut same_key =
        (mode == CopyMode::SameKey).then(|| SameKey::new(src, dst, opts.parallel.max(1)));
    // Re-chunking: files with identical content (same source chunk list) are re-chunked once
    // per run, whichever snapshot they are in.
    let mut rechunked: HashMap<Vec<ChunkRef>, Vec<ChunkRef>> = HashMap::new();
    for s in todo {
        progress.item(&s.id.short());
        let (dst_id, bytes) = match &mut same_key {
            Some(sk) => sk.copy_snapshot(s, &copied_ids, opts.dry_run, progress, &mut report)?,
            None => rechunk_snapshot(
                src,
                dst,
                s,
                &copied_ids,
                &mut rechunked,
                opts.dry_run,
                progress,
                &mut report,
            )?,
        };
        if let Some(d) = dst_id {
            copied_ids.insert(s.origin(), d);
        }
        report.copied.push(CopiedSnapshot {
            source: s.id,
            destination: dst_id,
            time: s.manifest.time,
            host: s.manifest.host.clone(),
            paths: s.manifest.paths.clone(),
            bytes,
        });
    }
    progress.finish();
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.source_requests = src
        .backend()
        .counts()
        .zip(src_before)
        .map(|(a, b)| a.since(&b));
    report.destination_requests = dst
        .backend()
        .counts()
        .zip(dst_before)
        .map(|(a, b)| a.since(&b));
    Ok(report)
}

/// The source snapshots `opts` selects, oldest first.
fn select(src: &Repository, opts: &CopyOptions) -> Result<Vec<Snapshot>> {
    let (all, damaged) = src.snapshots_and_damaged()?;
    if opts.ids.is_empty()
        && let Some((id, e)) = damaged.first()
    {
        // Copying "everything" must not silently leave one out.
        return Err(
            crate::snapshot::resolve_or_damaged(&[], &[(*id, clone_err(e))], &id.to_hex())
                .map(|_| ())
                .unwrap_err(),
        );
    }
    let filter = crate::snapshot::Selector {
        host: opts.host.clone(),
        tags: opts.tags.clone(),
        ..Default::default()
    };
    let wanted: Option<HashSet<Id>> = if opts.ids.is_empty() {
        None
    } else {
        Some(
            opts.ids
                .iter()
                .map(|spec| crate::snapshot::resolve_or_damaged(&all, &damaged, spec).map(|s| s.id))
                .collect::<Result<_>>()?,
        )
    };
    Ok(all
        .into_iter()
        .filter(|s| wanted.as_ref().is_none_or(|w| w.contains(&s.id)))
        .filter(|s| filter.matches(&s.manifest))
        .filter(|s| opts.since.is_none_or(|t| s.manifest.time >= t))
        .collect())
}

/// The reason a manifest could not be read, as a new error (errors are not `Clone`).
fn clone_err(e: &crate::Error) -> crate::Error {
    match e {
        crate::Error::Corrupt { what, detail } => {
            crate::Error::corrupt(what.clone(), detail.clone())
        }
        other => crate::Error::corrupt("snapshot", other.to_string()),
    }
}

/// The manifest of the copy of `s`: the same, with `copied_from` and a parent that points at
/// the parent's copy (when the destination has one).
fn copied_manifest(s: &Snapshot, tree: Vec<ChunkRef>, copied: &HashMap<Id, Id>) -> Manifest {
    let mut m = s.manifest.clone();
    m.tree = tree;
    m.copied_from = Some(s.origin());
    m.parent = s.manifest.parent.and_then(|p| copied.get(&p).copied());
    m
}

/// Every chunk a snapshot needs: its tree chunks and the content chunks of its files.
fn snapshot_chunks(repo: &Repository, s: &Snapshot) -> Result<Vec<Id>> {
    let mut ids: Vec<Id> = s.manifest.tree.iter().map(|c| *c.id()).collect();
    for e in repo.load_tree(&s.manifest)?.entries {
        ids.extend(e.chunks.iter().map(|c| *c.id()));
    }
    let mut seen = HashSet::new();
    ids.retain(|id| seen.insert(*id));
    Ok(ids)
}

// ---------------------------------------------------------------------------------------------
// Same master key: move sealed blobs.

struct SameKey<'a> {
    src: &'a Repository,
    dst: &'a Repository,
    parallel: usize,
    /// Chunks sent in this run (so later snapshots do not send them again).
    sent: HashSet<Id>,
}

impl<'a> SameKey<'a> {
    fn new(src: &'a Repository, dst: &'a Repository, parallel: usize) -> Self {
        SameKey {
            src,
            dst,
            parallel,
            sent: HashSet::new(),
        }
    }

    /// Chunks of `ids` the destination lacks (or holds only in condemned packs, rule W1).
    fn missing(&self, ids: &[Id], dst_index: &Index, condemned: &HashSet<Id>) -> Result<Vec<Id>> {
        let mut out = Vec::new();
        for id in ids {
            if self.sent.contains(id) {
                continue;
            }
            match dst_index.lookup(id)? {
                Some(loc) if !condemned.contains(&loc.pack) => {}
                _ => out.push(*id),
            }
        }
        Ok(out)
    }

    fn copy_snapshot(
        &mut self,
        s: &Snapshot,
        copied: &HashMap<Id, Id>,
        dry_run: bool,
        progress: &dyn Progress,
        report: &mut CopyReport,
    ) -> Result<(Option<Id>, u64)> {
        let ids = snapshot_chunks(self.src, s)?;
        let dst_index = self.dst.index()?.clone();
        let src_index = self.src.index()?.clone();
        let mut bytes = 0u64;
        let mut condemned = self.dst.condemned_packs()?;
        // Rule W2: after sending, re-read the plans; chunks we relied on that a prune condemned
        // meanwhile are sent again, until a pass finds nothing missing.
        for pass in 0.. {
            let missing = self.missing(&ids, &dst_index, &condemned)?;
            if missing.is_empty() {
                break;
            }
            if pass == 3 {
                return Err(Error::Invalid(format!(
                    "copying snapshot {}: the destination keeps condemning the packs it needs; is a prune running with its lock removed?",
                    s.id.short()
                )));
            }
            let mut by_pack: HashMap<Id, HashSet<Id>> = HashMap::new();
            for id in &missing {
                let loc = src_index.lookup(id)?.ok_or(Error::ChunkMissing(*id))?;
                by_pack.entry(loc.pack).or_default().insert(*id);
                bytes += loc.length as u64;
            }
            if dry_run {
                self.sent.extend(missing);
                return Ok((None, bytes));
            }
            let sent = self.send_packs(by_pack, &dst_index, &condemned, progress)?;
            report.chunks_sent += sent.chunks;
            report.bytes_sent += sent.bytes;
            report.packs_written += sent.packs;
            self.sent.extend(missing);
            condemned = self.dst.condemned_packs()?;
            // Chunks sent in this run live in new, uncondemned packs; only re-check the rest.
            self.sent.retain(|id| {
                dst_index
                    .lookup(id)
                    .ok()
                    .flatten()
                    .is_some_and(|l| !condemned.contains(&l.pack))
            });
        }
        if dry_run {
            return Ok((None, bytes));
        }
        let id = self
            .dst
            .save_manifest(&copied_manifest(s, s.manifest.tree.clone(), copied))?;
        Ok((Some(id), bytes))
    }

    /// Fetch each source pack once and upload the blobs in `by_pack` to the destination, with
    /// `parallel` workers. Returns when every pack is durable and indexed.
    fn send_packs(
        &self,
        by_pack: HashMap<Id, HashSet<Id>>,
        dst_index: &Index,
        condemned: &HashSet<Id>,
        progress: &dyn Progress,
    ) -> Result<Sent> {
        let work: Vec<(Id, HashSet<Id>)> = by_pack.into_iter().collect();
        let target = self.dst.config().pack_size as usize;
        let shared = Mutex::new(PackWriter::new());
        let (chunks, bytes, packs) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        let upload = |pid: Id, data: Vec<u8>, entries: Vec<PackEntry>| -> Result<()> {
            self.dst.backend().put(&pack::pack_name(&pid), &data)?;
            dst_index.add_pack(&pid, data.len() as u64, &entries)?;
            bytes.fetch_add(data.len() as u64, Relaxed);
            packs.fetch_add(1, Relaxed);
            progress.bytes(data.len() as u64);
            Ok(())
        };
        let sizes: HashMap<String, u64> = self
            .src
            .backend()
            .list("data/")?
            .into_iter()
            .map(|o| (o.name, o.size))
            .collect();
        let mut requests = Vec::with_capacity(work.len());
        for (pid, _) in &work {
            let name = pack::pack_name(pid);
            let Some(&len) = sizes.get(&name) else {
                return Err(Error::corrupt(
                    format!("pack {name}"),
                    "missing from the source repository; run `snap check` on the source",
                ));
            };
            requests.push(crate::backend::RangeRequest {
                name,
                offset: 0,
                len,
            });
        }
        let one = |i: usize, got: Result<Vec<u8>>| -> Result<()> {
            let (pid, wanted) = &work[i];
            let name = pack::pack_name(pid);
            let data = got?;
            if Id::hash_of(&data) != *pid {
                return Err(Error::corrupt(
                    format!("pack {name}"),
                    "content does not match its name; run `snap check` on the source",
                ));
            }
            let entries = pack::parse_pack(self.src.key(), &data, &format!("pack {name}"))?;
            chunks.fetch_add(wanted.len() as u64, Relaxed);
            // A pack the destination holds condemned is not put back under its old name
            // (the plan would still condemn it): its blobs go into a new pack instead.
            if !condemned.contains(pid) && entries.iter().all(|e| wanted.contains(&e.id)) {
                return upload(*pid, data, entries);
            }
            for e in entries.iter().filter(|e| wanted.contains(&e.id)) {
                let sealed = &data[e.offset as usize..(e.offset + e.length) as usize];
                let full = {
                    let mut w = shared.lock().unwrap();
                    w.add(e.kind, e.id, e.raw_len, sealed);
                    (w.len() >= target).then(|| std::mem::take(&mut *w))
                };
                if let Some(w) = full {
                    let (npid, nbytes, nentries) = w.finish(self.dst.key());
                    upload(npid, nbytes, nentries)?;
                }
            }
            Ok(())
        };
        let mut tuning = crate::repo::ReadTuning::for_backend(&**self.src.backend());
        tuning.in_flight = tuning.in_flight.max(self.parallel);
        // The work uploads too: as many workers as uploads may run at once.
        let workers = self.parallel.max(rayon::current_num_threads());
        crate::repo::for_each_fetched(
            &**self.src.backend(),
            requests,
            tuning,
            workers,
            |i, _, got| one(i, got),
        )?;
        let rest = shared.into_inner().unwrap();
        if !rest.is_empty() {
            let (pid, data, entries) = rest.finish(self.dst.key());
            upload(pid, data, entries)?;
        }
        Ok(Sent {
            chunks: chunks.into_inner(),
            bytes: bytes.into_inner(),
            packs: packs.into_inner(),
        })
    }
}

struct Sent {
    chunks: u64,
    bytes: u64,
    packs: u64,
}

// ---------------------------------------------------------------------------------------------
// Different keys: re-chunk into the destination.

/// A file's content read from `src` through the read pipeline, chunked and saved by `saver`.
fn rechunk_file(
    src: &Repository,
    e: &Entry,
    chunker: &crate::chunker::Chunker,
    saver: &Saver,
    progress: &dyn Progress,
) -> Result<Vec<ChunkRef>> {
    src.with_chunk_reader(e.chunks.iter().map(|c| c.id()), |reader| {
        let mut refs = Vec::new();
        for chunk in chunker.stream(reader) {
            let chunk = chunk.map_err(|err| match err.downcast::<Error>() {
                Ok(inner) => inner,
                Err(other) => Error::io(&e.path, other),
            })?;
            let len = chunk.len() as u32;
            progress.bytes(len as u64);
            let (id, _) = saver.save(BlobKind::Data, chunk)?;
            refs.push(ChunkRef(id, len));
        }
        Ok(refs)
    })
}

#[allow(clippy::too_many_arguments)]
fn rechunk_snapshot(
    src: &Repository,
    dst: &Repository,
    s: &Snapshot,
    copied: &HashMap<Id, Id>,
    done: &mut HashMap<Vec<ChunkRef>, Vec<ChunkRef>>,
    dry_run: bool,
    progress: &dyn Progress,
    report: &mut CopyReport,
) -> Result<(Option<Id>, u64)> {
    if dry_run {
        // Without re-chunking there is no telling what the destination already has: report the
        // upper bound.
        return Ok((None, s.manifest.summary.total_bytes));
    }
    let level = dst.config().compression;
    let saver = Saver::new(dst, level)?;
    let chunker = dst.chunker();
    let mut tree = TreeWriter::new(&saver, dst.chunker());
    for e in src.load_tree(&s.manifest)?.entries {
        let mut out: Entry = e.clone();
        if e.kind == EntryKind::File && !e.chunks.is_empty() {
            progress.item(&e.path);
            out.chunks = match done.get(&e.chunks) {
                Some(c) => c.clone(),
                None => {
                    let refs = rechunk_file(src, &e, &chunker, &saver, progress)?;
                    done.insert(e.chunks.clone(), refs.clone());
                    refs
                }
            };
        }
        tree.push(&out)?;
    }
    let tree_refs = tree.finish()?;
    let stats = saver.finish()?;
    let manifest = copied_manifest(s, tree_refs.clone(), copied);
    let (id, _, stats) =
        crate::ops::backup::commit_manifest(dst, &tree_refs, stats, level, |_| manifest)?;
    report.chunks_sent += stats.chunks_new;
    report.bytes_sent += stats.bytes_added;
    report.packs_written += stats.packs;
    Ok((Some(id), stats.bytes_added))
}
