//! The write path: dedup → compress+seal on worker threads → pack → put → index.
//!
//! ```text
//! caller: chunk id (keyed BLAKE3), dedup against the pending set and the index
//!    └─► bounded channel ─► N workers: zstd + XChaCha20-Poly1305
//!            └─► bounded channel ─► packer: fill pack, put (durable), index it
//! ```
//! Memory is bounded by the two channels and one pack buffer. An id stays in the pending set
//! until its pack is durable and indexed, so concurrent duplicates are stored once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::Repository;
use crate::backend::Backend;
use crate::blob::{self, BlobKind};
use crate::chunker::Chunker;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::Index;
use crate::pack::{self, PackWriter};
use crate::snapshot::{ChunkRef, Entry, Tree};

/// What a save session added to the repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveStats {
    pub chunks_new: u64,
    pub raw_bytes_new: u64,
    /// Bytes of the pack files written.
    pub bytes_added: u64,
    pub packs: u64,
    /// Existing packs that chunks were deduplicated against, and the packs this session
    /// wrote: a backup checks both against deletion plans before writing its manifest.
    pub reused_packs: HashSet<Id>,
    pub written_packs: HashSet<Id>,
}

type Job = (BlobKind, Id, Vec<u8>);
/// Packs uploaded at once to a remote backend ([`Backend::is_remote`]).
pub const REMOTE_UPLOADS: usize = 4;
type Sealed = (BlobKind, Id, u32, Vec<u8>);

pub struct Saver {
    key: Arc<MasterKey>,
    index: Arc<Index>,
    /// Packs condemned by deletion plans: never deduplicated against.
    condemned: HashSet<Id>,
    reused_packs: Mutex<HashSet<Id>>,
    pending: Arc<Mutex<HashSet<Id>>>,
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    packer: Mutex<Option<JoinHandle<Result<SaveStats>>>>,
}

impl Saver {
    pub fn new(repo: &Repository, level: i32) -> Result<Saver> {
        Saver::avoiding(repo, level, HashSet::new())
    }

    /// A saver that also treats the packs in `avoid` as condemned (prune uses this to copy
    /// live chunks out of packs it is about to condemn).
    pub fn avoiding(repo: &Repository, level: i32, avoid: HashSet<Id>) -> Result<Saver> {
        let index = repo.index()?.clone();
        let mut condemned = repo.condemned_packs()?;
        condemned.extend(avoid);
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let (jobs_tx, jobs_rx) = bounded::<Job>(threads * 2);
        let (sealed_tx, sealed_rx) = bounded::<Sealed>(threads * 2);
        let workers = (0..threads)
            .map(|_| {
                let rx = jobs_rx.clone();
                let tx = sealed_tx.clone();
                let key = repo.key().clone();
                std::thread::spawn(move || {
                    for (kind, id, data) in rx {
                        let sealed = blob::encode(&key, kind, &id, &data, level);
                        if tx.send((kind, id, data.len() as u32, sealed)).is_err() {
                            return; // packer stopped; it reports why
                        }
                    }
                })
            })
            .collect();
        drop(sealed_tx);
        let pending = Arc::new(Mutex::new(HashSet::new()));
        let packer = {
            let backend = repo.backend().clone();
            let key = repo.key().clone();
            let index = index.clone();
            let pending = pending.clone();
            let target = repo.config().pack_size as usize;
            std::thread::spawn(move || {
                run_packer(sealed_rx, &*backend, &key, &index, &pending, target)
            })
        };
        Ok(Saver {
            key: repo.key().clone(),
            index,
            condemned,
            reused_packs: Mutex::new(HashSet::new()),
            pending,
            jobs: Some(jobs_tx),
            workers,
            packer: Mutex::new(Some(packer)),
        })
    }

    /// Store `data` as a blob of `kind` unless the repository already has it.
    /// Returns its id and whether it was new.
    pub fn save(&self, kind: BlobKind, data: Vec<u8>) -> Result<(Id, bool)> {
        let id = self.key.chunk_id(&data);
        let mut pending = self.pending.lock().unwrap();
        if pending.contains(&id) || self.reusable(&id)? {
            return Ok((id, false));
        }
        pending.insert(id);
        drop(pending);
        let tx = self.jobs.as_ref().expect("saver not finished");
        if tx.send((kind, id, data)).is_err() {
            return Err(self.packer_result().err().unwrap_or_else(stopped));
        }
        Ok((id, true))
    }

    /// Whether chunk `id` is stored in a pack no deletion plan condemns (and so may be
    /// referenced without storing it again). Records the pack for the pre-manifest check.
    pub fn reusable(&self, id: &Id) -> Result<bool> {
        match self.index.lookup(id)? {
            Some(loc) if !self.condemned.contains(&loc.pack) => {
                self.reused_packs.lock().unwrap().insert(loc.pack);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Wait for the packer and return what it returned (its error, when the pipeline broke).
    fn packer_result(&self) -> Result<SaveStats> {
        match self.packer.lock().unwrap().take() {
            Some(h) => h.join().expect("packer thread panicked"),
            None => Err(stopped()),
        }
    }

    /// Flush the last pack and wait until every pack is durable and indexed.
    pub fn finish(mut self) -> Result<SaveStats> {
        self.jobs.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let mut stats = self.packer_result()?;
        stats.reused_packs = std::mem::take(&mut *self.reused_packs.lock().unwrap());
        Ok(stats)
    }
}

impl Drop for Saver {
    fn drop(&mut self) {
        self.jobs.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(p) = self.packer.lock().unwrap().take() {
            let _ = p.join();
        }
    }
}

fn stopped() -> Error {
    Error::Invalid("the write pipeline stopped after an earlier error".into())
}

fn run_packer(
    rx: Receiver<Sealed>,
    backend: &(dyn Backend + 'static),
    key: &MasterKey,
    index: &Index,
    pending: &Mutex<HashSet<Id>>,
    target: usize,
) -> Result<SaveStats> {
    // Finished packs go to uploader threads, so a slow put (fsync, network) does not stall
    // compression; at most one pack waits while the uploaders upload and one fills. A remote
    // backend gets several uploaders (each put is a network round trip); a local one gets one.
    let uploaders = if backend.is_remote() {
        REMOTE_UPLOADS
    } else {
        1
    };
    let (up_tx, up_rx) = bounded::<(Id, Vec<u8>, Vec<pack::PackEntry>)>(1);
    let mut stats = SaveStats::default();
    let uploaded = std::thread::scope(|scope| {
        let upload = move |up_rx: Receiver<(Id, Vec<u8>, Vec<pack::PackEntry>)>| -> Result<(HashSet<Id>, u64)> {
            let (mut packs, mut bytes_added) = (HashSet::new(), 0u64);
            for (pid, bytes, entries) in up_rx {
                backend.put(&pack::pack_name(&pid), &bytes)?;
                index.add_pack(&pid, bytes.len() as u64, &entries)?;
                let mut p = pending.lock().unwrap();
                for e in &entries {
                    p.remove(&e.id);
                }
                packs.insert(pid);
                bytes_added += bytes.len() as u64;
            }
            Ok((packs, bytes_added))
        };
        let handles: Vec<_> = (0..uploaders)
            .map(|_| {
                let rx = up_rx.clone();
                scope.spawn(move || upload(rx))
            })
            .collect();
        drop(up_rx);
        let mut writer = PackWriter::new();
        for (kind, id, raw_len, sealed) in rx {
            writer.add(kind, id, raw_len, &sealed);
            stats.chunks_new += 1;
            stats.raw_bytes_new += raw_len as u64;
            if writer.len() >= target
                && up_tx.send(std::mem::take(&mut writer).finish(key)).is_err()
            {
                break; // the uploader failed; its error is returned below
            }
        }
        if !writer.is_empty() {
            let _ = up_tx.send(writer.finish(key));
        }
        drop(up_tx);
        let mut all = (HashSet::new(), 0u64);
        let mut first_err = None;
        for h in handles {
            match h.join().expect("uploader thread panicked") {
                Ok((packs, bytes)) => {
                    all.0.extend(packs);
                    all.1 += bytes;
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(all),
        }
    })?;
    (stats.written_packs, stats.bytes_added) = uploaded;
    stats.packs = stats.written_packs.len() as u64;
    Ok(stats)
}

/// Streams tree entries (JSON Lines) into tree chunks with bounded memory.
pub struct TreeWriter<'s> {
    saver: &'s Saver,
    chunker: Chunker,
    buf: Vec<u8>,
    refs: Vec<ChunkRef>,
    flush_at: usize,
}

impl<'s> TreeWriter<'s> {
    pub fn new(saver: &'s Saver, chunker: Chunker) -> TreeWriter<'s> {
        let flush_at = chunker.params().max_size as usize * 4;
        TreeWriter {
            saver,
            chunker,
            buf: Vec::new(),
            refs: Vec::new(),
            flush_at,
        }
    }

    pub fn push(&mut self, e: &Entry) -> Result<()> {
        Tree::serialize_entry(e, &mut self.buf);
        if self.buf.len() >= self.flush_at {
            self.emit(false)?;
        }
        Ok(())
    }

    /// Store every complete chunk; the last cut is kept back unless `all`, since more
    /// bytes may move it.
    fn emit(&mut self, all: bool) -> Result<()> {
        let cuts = self.chunker.cut(&self.buf);
        let keep = if all {
            cuts.len()
        } else {
            cuts.len().saturating_sub(1)
        };
        let mut consumed = 0;
        for &(off, len) in &cuts[..keep] {
            let (id, _) = self
                .saver
                .save(BlobKind::Tree, self.buf[off..off + len].to_vec())?;
            self.refs.push(ChunkRef(id, len as u32));
            consumed = off + len;
        }
        self.buf.drain(..consumed);
        Ok(())
    }

    pub fn finish(mut self) -> Result<Vec<ChunkRef>> {
        self.emit(true)?;
        Ok(self.refs)
    }
}
