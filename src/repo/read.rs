//! The one read pipeline: every reader of chunk contents (restore, cat, dump, trees, copy with
//! another key, the database and storage restores) hands it the chunks it wants in the order it
//! wants them and gets their plaintexts back in that order.
//!
//! 1. **Plan**: each chunk is looked up in the index; neighbours in one pack (a gap of at most
//!    [`ReadTuning::max_gap`], a read of at most [`ReadTuning::max_read`]) become one ranged
//!    read. A file backed up in one go lies in order in its packs, so a read covers many chunks.
//! 2. **Fetch**: one thread hands the reads to [`Backend::get_ranges`], which keeps
//!    [`ReadTuning::in_flight`] requests going (object stores: tens, on the async runtime,
//!    whatever the number of cores). Answers come back in order into a channel of
//!    [`ReadTuning::queued`] reads: memory stays bounded by `(in_flight + queued) × max_read`.
//! 3. **Decode** the chunks of a read on the CPU pool (authenticate, decompress, verify), on a
//!    thread of its own, so decoding overlaps the caller's writes.
//! 4. **Hand on** each plaintext, in order, to the caller's sink, on the caller's thread.
//!
//! A chunk that cannot be read (missing from the index, its pack missing, damaged bytes) is
//! handed on as an error naming the pack and the chunk; the sink decides whether that ends the
//! read (by returning an error) or only its file.

use std::cell::RefCell;
use std::collections::VecDeque;

use rayon::prelude::*;

use super::Repository;
use crate::backend::{Backend, RangeRequest};
use crate::blob::{self, BlobKind};
use crate::error::{Error, Result};
use crate::id::Id;

/// How reads are planned and how many run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTuning {
    /// Requests outstanding at once.
    pub in_flight: usize,
    /// The most bytes one ranged read covers.
    pub max_read: u64,
    /// Bytes of a pack read but not needed between two chunks of one read, at most.
    pub max_gap: u64,
    /// Fetched reads waiting to be decoded, at most.
    pub queued: usize,
}

impl ReadTuning {
    /// For a store across a network: many requests of a few MiB each (a request costs a round
    /// trip, ~20 ms to an object store; 16 × 4 MiB keep a 1 Gbit/s link busy at that latency).
    pub const REMOTE: ReadTuning = ReadTuning {
        in_flight: crate::backend::REMOTE_IN_FLIGHT,
        max_read: 4 << 20,
        max_gap: 256 << 10,
        queued: 4,
    };
    /// For a local directory: large reads one after the other (the OS reads ahead).
    pub const LOCAL: ReadTuning = ReadTuning {
        in_flight: 1,
        max_read: 4 << 20,
        max_gap: 256 << 10,
        queued: 4,
    };

    /// The tuning for `backend`.
    pub fn for_backend(backend: &dyn Backend) -> ReadTuning {
        if backend.is_remote() {
            ReadTuning::REMOTE
        } else {
            ReadTuning::LOCAL
        }
    }
}

/// One chunk of a planned read: its place in the caller's order and in the read.
#[derive(Debug, Clone)]
struct Member {
    seq: usize,
    id: Id,
    kind: BlobKind,
    /// Offset in the read's bytes.
    at: usize,
    len: usize,
}

/// A planned ranged read of one pack, with the chunks it serves (and the chunks before them
/// that could not be planned at all, handed on first as errors).
#[derive(Debug)]
struct Planned {
    pack: Id,
    start: u64,
    end: u64,
    members: Vec<(Member, u64)>,
    unplanned: Vec<(usize, Error)>,
}

/// What the fetch thread hands to the decoder: a read and its bytes (or why it failed), or
/// chunks that could not be planned after the last read.
enum Fetched {
    Read(Planned, Result<Vec<u8>>),
    Unplanned(Vec<(usize, Error)>),
}

/// Chunks per read, at most (a file of one repeated chunk — zeros — must not grow one read's
/// list without end).
const MAX_MEMBERS: usize = 1024;

impl Repository {
    /// Read the chunks `ids` yields and hand each plaintext to `sink` in the same order, with
    /// its position. See the module documentation; stops at the first error `sink` returns.
    pub fn read_chunks<'a, I>(
        &self,
        ids: I,
        sink: &mut dyn FnMut(usize, Result<Vec<u8>>) -> Result<()>,
    ) -> Result<()>
    where
        I: Iterator<Item = &'a Id> + Send,
    {
        self.read_chunks_tuned(ids, ReadTuning::for_backend(&**self.backend()), sink)
    }

    /// [`Repository::read_chunks`] with an explicit tuning (tests, benchmarks).
    pub fn read_chunks_tuned<'a, I>(
        &self,
        ids: I,
        tuning: ReadTuning,
        sink: &mut dyn FnMut(usize, Result<Vec<u8>>) -> Result<()>,
    ) -> Result<()>
    where
        I: Iterator<Item = &'a Id> + Send,
    {
        let index = self.index()?.clone();
        let (tx, rx) = crossbeam_channel::bounded::<Fetched>(tuning.queued.max(1));
        let (out_tx, out_rx) = crossbeam_channel::bounded::<Decoded>(2);
        std::thread::scope(|scope| {
            let fetcher = scope.spawn(move || {
                let plans = Plans::new(ids, &index, tuning);
                fetch(&**self.backend(), plans, tuning.in_flight, &tx)
            });
            let decoder = scope.spawn(move || decode_all(self, rx, out_tx));
            let handed = hand_on(&out_rx, sink);
            drop(out_rx);
            let decoded = decoder.join().expect("the decode thread does not panic");
            let fetched = fetcher.join().expect("the fetch thread does not panic");
            // The sink's error first: the later stages then failed only because their channel
            // closed. When the sink took everything, the channels closed after the last read.
            handed.and(decoded).and(fetched)
        })
    }
}

impl Repository {
    /// Run `f` with a reader of the plaintexts of `ids`, one after the other, fed by
    /// [`Repository::read_chunks`] on another thread (a `Read` for code that consumes a
    /// stream: the re-chunking of `snap copy`). A chunk that cannot be read is an I/O error of
    /// kind `Other` wrapping the library's error.
    pub fn with_chunk_reader<'a, I, T>(
        &self,
        ids: I,
        f: impl FnOnce(&mut dyn std::io::Read) -> Result<T>,
    ) -> Result<T>
    where
        I: Iterator<Item = &'a Id> + Send,
    {
        let (tx, rx) = crossbeam_channel::bounded::<Result<Vec<u8>>>(8);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                self.read_chunks(ids, &mut |_, got| tx.send(got).map_err(|_| stopped()))
            });
            let mut reader = ChannelReader {
                rx,
                buf: Vec::new(),
                pos: 0,
            };
            f(&mut reader)
        })
    }
}

/// The `Read` of [`Repository::with_chunk_reader`].
struct ChannelReader {
    rx: crossbeam_channel::Receiver<Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(got) => self.buf = got.map_err(std::io::Error::other)?,
                Err(_) => return Ok(0),
            }
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The last stage, on the caller's thread: every decoded chunk to `sink`, in order.
fn hand_on(
    rx: &crossbeam_channel::Receiver<Decoded>,
    sink: &mut dyn FnMut(usize, Result<Vec<u8>>) -> Result<()>,
) -> Result<()> {
    for batch in rx {
        for (seq, d) in batch {
            sink(seq, d)?;
        }
    }
    Ok(())
}

/// The fetch stage: every planned read through [`Backend::get_ranges`], each answer sent on.
fn fetch<'a, I: Iterator<Item = &'a Id>>(
    backend: &dyn Backend,
    plans: Plans<'_, I>,
    in_flight: usize,
    tx: &crossbeam_channel::Sender<Fetched>,
) -> Result<()> {
    let plans = RefCell::new(plans);
    let pending: RefCell<VecDeque<Planned>> = RefCell::new(VecDeque::new());
    let mut requests = std::iter::from_fn(|| {
        let p = plans.borrow_mut().next()?;
        let r = RangeRequest {
            name: crate::pack::pack_name(&p.pack),
            offset: p.start,
            len: p.end - p.start,
        };
        pending.borrow_mut().push_back(p);
        Some(r)
    });
    backend.get_ranges(&mut requests, in_flight, &mut |_, got| {
        let p = pending
            .borrow_mut()
            .pop_front()
            .expect("answers come in order");
        tx.send(Fetched::Read(p, got)).map_err(|_| stopped())
    })?;
    let rest = std::mem::take(&mut plans.borrow_mut().unplanned);
    if !rest.is_empty() {
        tx.send(Fetched::Unplanned(rest)).map_err(|_| stopped())?;
    }
    Ok(())
}

/// The fetch stage's error once the decode stage stopped taking reads (never returned to the
/// caller, who gets the decode stage's own error).
fn stopped() -> Error {
    Error::Invalid("the read stopped".into())
}

/// Chunks decoded (or failed), in order, as the decode stage hands them to the caller.
type Decoded = Vec<(usize, Result<Vec<u8>>)>;

/// The decode stage, on a thread of its own so that it overlaps the caller's writes: each
/// fetched read's chunks decoded in parallel on the CPU pool, sent on in order.
fn decode_all(
    repo: &Repository,
    rx: crossbeam_channel::Receiver<Fetched>,
    out: crossbeam_channel::Sender<Decoded>,
) -> Result<()> {
    for fetched in rx {
        let batch = match fetched {
            Fetched::Read(p, got) => decode_read(repo, p, got),
            Fetched::Unplanned(errs) => errs.into_iter().map(|(seq, e)| (seq, Err(e))).collect(),
        };
        out.send(batch).map_err(|_| stopped())?;
    }
    Ok(())
}

/// The chunks of one read, decoded (the chunks before it that could not be planned first).
fn decode_read(repo: &Repository, p: Planned, got: Result<Vec<u8>>) -> Decoded {
    let Planned {
        pack,
        start,
        end,
        members,
        unplanned,
    } = p;
    // A backend that answers fewer bytes than asked breaks its contract: never sliced past.
    let got = got.and_then(|b| match b.len() as u64 == end - start {
        true => Ok(b),
        false => Err(Error::Invalid(format!(
            "{} bytes answered where {} were asked for",
            b.len(),
            end - start
        ))),
    });
    let mut batch: Decoded = unplanned
        .into_iter()
        .map(|(seq, e)| (seq, Err(e)))
        .collect();
    let name = crate::pack::pack_name(&pack);
    match &got {
        Ok(bytes) => batch.par_extend(
            members
                .par_iter()
                .map(|(m, _)| (m.seq, decode_member(repo, &name, bytes, m))),
        ),
        Err(e) => {
            let why = read_failure(e);
            batch.extend(
                members
                    .iter()
                    .map(|(m, _)| (m.seq, Err(unreadable(&name, &m.id, &why)))),
            );
        }
    }
    batch
}

/// One chunk's plaintext out of its read's bytes.
fn decode_member(repo: &Repository, pack: &str, bytes: &[u8], m: &Member) -> Result<Vec<u8>> {
    let sealed = &bytes[m.at..m.at + m.len];
    blob::decode(repo.key(), m.kind, &m.id, sealed)
        .map_err(|e| Error::corrupt(format!("pack {pack}"), e.to_string()))
}

/// Why a read failed, in words every chunk of it can carry.
fn read_failure(e: &Error) -> String {
    match e {
        Error::NotFound { .. } => "missing".to_string(),
        other => other.to_string(),
    }
}

/// The error of one chunk whose read failed.
fn unreadable(pack: &str, id: &Id, why: &str) -> Error {
    if why == "missing" {
        return Error::corrupt(
            format!("pack {pack}"),
            format!("missing, but the index says it holds chunk {}", id.short()),
        );
    }
    Error::corrupt(
        format!("pack {pack}"),
        format!("reading chunk {} failed: {why}", id.short()),
    )
}

/// The planner: chunk ids in, ranged reads out, neighbours coalesced.
struct Plans<'i, I> {
    ids: std::iter::Enumerate<I>,
    index: &'i crate::index::Index,
    tuning: ReadTuning,
    current: Option<Planned>,
    /// Chunks that could not be planned since the last read was closed.
    unplanned: Vec<(usize, Error)>,
}

impl<'a, 'i, I: Iterator<Item = &'a Id>> Plans<'i, I> {
    fn new(ids: I, index: &'i crate::index::Index, tuning: ReadTuning) -> Self {
        Plans {
            ids: ids.enumerate(),
            index,
            tuning,
            current: None,
            unplanned: Vec::new(),
        }
    }

    /// Add chunk `seq` at `loc` to the current read; `Some(read)` when that read had to close.
    fn add(&mut self, seq: usize, id: Id, loc: crate::index::Location) -> Option<Planned> {
        let (start, end) = (loc.offset as u64, loc.offset as u64 + loc.length as u64);
        if let Some(c) = &mut self.current
            && fits(c, loc.pack, start, end, &self.tuning)
        {
            c.start = c.start.min(start);
            c.end = c.end.max(end);
            c.members.push((member(seq, id, &loc, 0), start));
            return None;
        }
        let next = Planned {
            pack: loc.pack,
            start,
            end,
            members: vec![(member(seq, id, &loc, 0), start)],
            unplanned: std::mem::take(&mut self.unplanned),
        };
        self.current.replace(next).map(finish)
    }
}

/// Whether a chunk at `start..end` of `pack` joins read `c`.
fn fits(c: &Planned, pack: Id, start: u64, end: u64, t: &ReadTuning) -> bool {
    // Packs hold chunks nearly in the order they were read at backup (sealed in parallel,
    // neighbours may swap): a chunk a little before the read's start joins it too.
    c.pack == pack
        && c.members.len() < MAX_MEMBERS
        && start + t.max_gap >= c.start
        && start <= c.end + t.max_gap
        && end.max(c.end) - start.min(c.start) <= t.max_read
}

fn member(seq: usize, id: Id, loc: &crate::index::Location, at: usize) -> Member {
    Member {
        seq,
        id,
        kind: loc.kind,
        at,
        len: loc.length as usize,
    }
}

/// A read closed: each member's offset within the read's bytes.
fn finish(mut p: Planned) -> Planned {
    for (m, start) in &mut p.members {
        m.at = (*start - p.start) as usize;
    }
    p
}

impl<'a, 'i, I: Iterator<Item = &'a Id>> Iterator for Plans<'i, I> {
    type Item = Planned;

    fn next(&mut self) -> Option<Planned> {
        while let Some((seq, id)) = self.ids.next() {
            let e = match self.index.lookup(id) {
                Ok(Some(loc)) => {
                    if let Some(done) = self.add(seq, *id, loc) {
                        return Some(done);
                    }
                    continue;
                }
                Ok(None) => Error::ChunkMissing(*id),
                Err(e) => e,
            };
            // Handed on before every later chunk: the open read closes first.
            self.unplanned.push((seq, e));
            if let Some(open) = self.current.take() {
                return Some(finish(open));
            }
        }
        self.current.take().map(finish)
    }
}

/// Fetch what `requests` names (whole packs, usually), `tuning.in_flight` requests at a time,
/// and run `work` on each answer on `workers` threads (the CPU pool's size for work that only
/// computes; more for work that also writes somewhere), with at most `tuning.queued` answers
/// waiting: `check --read-data` and `copy` read so. `work` gets each request's position in
/// `requests`. Stops at the first error `work` returns, and returns it.
pub fn for_each_fetched<W>(
    backend: &dyn Backend,
    requests: Vec<RangeRequest>,
    tuning: ReadTuning,
    workers: usize,
    work: W,
) -> Result<()>
where
    W: Fn(usize, RangeRequest, Result<Vec<u8>>) -> Result<()> + Sync,
{
    let (tx, rx) = crossbeam_channel::bounded(tuning.queued.max(1));
    let failed: std::sync::Mutex<Option<Error>> = std::sync::Mutex::new(None);
    let fail = |e| {
        failed.lock().unwrap().get_or_insert(e);
    };
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            let rx = rx.clone();
            let (work, fail) = (&work, &fail);
            scope.spawn(move || {
                for (i, r, got) in rx {
                    if let Err(e) = work(i, r, got) {
                        fail(e);
                        return;
                    }
                }
            });
        }
        drop(rx);
        let mut i = 0;
        let fetched = backend.get_ranges(
            &mut requests.into_iter(),
            tuning.in_flight,
            &mut |r, got| {
                if failed.lock().unwrap().is_some() {
                    return Err(stopped());
                }
                tx.send((i, r, got)).map_err(|_| stopped())?;
                i += 1;
                Ok(())
            },
        );
        drop(tx);
        if let Err(e) = fetched {
            fail(e);
        }
    });
    match failed.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
