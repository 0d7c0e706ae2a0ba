//! The one read pipeline (src/repo/read.rs) through the library: restores and streamed reads
//! come back byte-exact on the memory, local and S3 (moto) backends with chunks that span packs, shared
//! (deduplicated) chunks, holes and many small files, in far fewer requests than chunks; a
//! store with latency sees many requests in flight; `check --read-data` reads the same way;
//! a damaged or missing pack mid-way fails only the files it holds, naming the pack and the
//! path, and leaves nothing half written.

#[path = "support/s3.rs"]
mod s3;
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use snap::backend::{Backend, CountingBackend, LatencyBackend, LocalBackend, MemoryBackend};
use snap::ops::check::{CheckOptions, DataSubset, check};
use snap::ops::{BackupInput, BackupOptions, RestoreOptions, backup, restore};
use snap::progress::NoProgress;
use snap::repo::{ReadTuning, Repository};
use snap::snapshot::Snapshot;
use support::Rng;

const PW: &[u8] = b"read pipeline password";

/// A source tree: a file spanning several 1 MiB packs, one sharing half its chunks, one mostly
/// zeros (holes), an empty one and 120 small ones. Returns the files' contents by name.
fn make_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut rng = Rng::new(19);
    let mut files = BTreeMap::new();
    let mut big = vec![0u8; 3 << 20];
    rng.fill(&mut big);
    let mut shared = big[..(3 << 19)].to_vec();
    let mut tail = vec![0u8; 300_000];
    rng.fill(&mut tail);
    shared.extend_from_slice(&tail);
    let mut sparse = vec![0u8; 2 << 20];
    sparse.extend_from_slice(&tail[..5000]);
    files.insert("big".to_string(), big);
    files.insert("shared".to_string(), shared);
    files.insert("sparse".to_string(), sparse);
    files.insert("empty".to_string(), Vec::new());
    for i in 0..120 {
        let mut b = vec![0u8; rng.range(1, 9000) as usize];
        rng.fill(&mut b);
        files.insert(format!("small/{i:03}"), b);
    }
    for (name, bytes) in &files {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
    files
}

fn backup_dir(repo: &Repository, dir: &Path) -> Snapshot {
    let input = BackupInput::Paths(vec![dir.to_path_buf()]);
    backup(repo, input, &BackupOptions::default(), &NoProgress)
        .unwrap()
        .snapshot
}

/// Where `restore` put the source file `name` of `src` under `target`.
fn restored(target: &Path, src: &Path, name: &str) -> PathBuf {
    support::restored_path(target, &src.join(name))
}

/// Every file under `dir` whose name marks a temporary file of a restore.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in walk(dir) {
        if e.file_name()
            .unwrap()
            .to_string_lossy()
            .contains(".snap-tmp-")
        {
            out.push(e);
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn round_trip(backend: Arc<CountingBackend<Box<dyn Backend>>>) {
    snap::repo::Repository::init(&*backend, PW, &support::fast_init_options()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let files = make_tree(&src);
    let cache = work.path().join("cache");
    let repo = Repository::open(backend.clone(), PW, &cache).unwrap();
    let snap = backup_dir(&repo, &src);
    let tree = repo.load_tree(&snap.manifest).unwrap();
    let chunks: usize = tree.entries.iter().map(|e| e.chunks.len()).sum();

    let before = backend.counts().unwrap().gets;
    let target = work.path().join("restore");
    let opts = RestoreOptions {
        target: target.clone(),
        ..Default::default()
    };
    let summary = restore(&repo, &snap, &opts, &NoProgress).unwrap();
    let gets = backend.counts().unwrap().gets - before;
    assert_eq!(summary.files, files.len() as u64);
    for (name, bytes) in &files {
        let got = fs::read(restored(&target, &src, name)).unwrap();
        assert!(got == *bytes, "{name} differs after restore");
    }
    let sparse = fs::metadata(restored(&target, &src, "sparse")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert!(
        sparse.blocks() * 512 < 1 << 20,
        "the zeros came back as holes"
    );
    // Small files are read in parallel at backup, so their order in the packs is not the
    // snapshot's: some of them cost a read each.
    assert!(
        gets * 3 < chunks as u64,
        "{gets} requests for {chunks} chunks: neighbours are not read together"
    );
    // Streamed reads (cat, dump) through the same pipeline; one file's chunks lie together.
    for name in ["big", "shared", "sparse"] {
        let stored = support::stored(&src.join(name));
        let e = tree.get(&stored).unwrap();
        let mut out = Vec::new();
        let before = backend.counts().unwrap().gets;
        repo.write_file_to(&e.chunks, &mut out).unwrap();
        let gets = backend.counts().unwrap().gets - before;
        assert!(out == files[name], "{name} differs when streamed");
        if name == "big" {
            assert!(
                gets * 10 < e.chunks.len() as u64,
                "{gets} requests for the {} chunks of {name}",
                e.chunks.len()
            );
        }
    }
}

#[test]
fn restores_and_streams_are_byte_exact_in_few_requests_on_s3() {
    let server = s3::S3Server::start();
    let remote: Box<dyn Backend> = Box::new(server.backend("pipeline"));
    round_trip(Arc::new(CountingBackend::new(remote)));
}

#[test]
fn restores_and_streams_are_byte_exact_in_few_requests_on_memory_and_local() {
    let mem: Box<dyn Backend> = Box::new(MemoryBackend::new());
    round_trip(Arc::new(CountingBackend::new(mem)));
    let dir = tempfile::tempdir().unwrap();
    let local: Box<dyn Backend> = Box::new(LocalBackend::new(dir.path().join("repo")));
    round_trip(Arc::new(CountingBackend::new(local)));
}

#[test]
fn a_store_with_latency_keeps_many_requests_in_flight_and_answers_in_order() {
    let mem = Arc::new(MemoryBackend::new());
    Repository::init(&*mem, PW, &support::fast_init_options()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let files = make_tree(&src);
    let snap = backup_dir(
        &Repository::open(mem.clone(), PW, &work.path().join("c1")).unwrap(),
        &src,
    );
    let slow = Arc::new(LatencyBackend::new(mem.clone(), Duration::from_millis(20)));
    let repo = Repository::open(slow.clone(), PW, &work.path().join("c1")).unwrap();
    let tree = repo.load_tree(&snap.manifest).unwrap();
    let e = tree.get(&support::stored(&src.join("big"))).unwrap();
    let ids: Vec<_> = e.chunks.iter().map(|c| *c.id()).collect();
    // Reads of one chunk each: many requests, all in order.
    let tuning = ReadTuning {
        max_read: 1,
        ..ReadTuning::REMOTE
    };
    let mut out = Vec::new();
    let mut seqs = Vec::new();
    repo.read_chunks_tuned(ids.iter(), tuning, &mut |i, got| {
        seqs.push(i);
        out.extend_from_slice(&got?);
        Ok(())
    })
    .unwrap();
    assert!(out == files["big"]);
    assert_eq!(seqs, (0..ids.len()).collect::<Vec<_>>());
    // All 16 at once, unless a loaded machine started some only after others ended.
    let peak = slow.peak_in_flight();
    assert!(
        peak > ReadTuning::REMOTE.in_flight / 2 && peak <= ReadTuning::REMOTE.in_flight,
        "{peak}"
    );

    // check --read-data fetches whole packs through the same kind of window.
    let slow = Arc::new(LatencyBackend::new(mem.clone(), Duration::from_millis(20)));
    let repo = Repository::open(slow.clone(), PW, &work.path().join("c1")).unwrap();
    let opts = CheckOptions {
        read_data: Some(DataSubset::All),
        ..Default::default()
    };
    let report = check(&repo, &opts, &NoProgress).unwrap();
    assert!(report.is_ok(), "{:#?}", report.problems);
    let packs = mem.list("data/").unwrap().len();
    assert!(packs >= 3, "{packs}");
    assert!(slow.peak_in_flight() > 2, "{}", slow.peak_in_flight());
}

/// Restore after the middle chunk of `big` is damaged in its pack (or, `whole`, its pack
/// deleted): only the files with a chunk so lost fail, each named with the pack; the others
/// come back exact.
fn restore_around_a_bad_pack(whole: bool) {
    let what = if whole { "missing" } else { "damaged" };
    let mem = Arc::new(MemoryBackend::new());
    Repository::init(&*mem, PW, &support::fast_init_options()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let files = make_tree(&src);
    let repo = Repository::open(mem.clone(), PW, &work.path().join("cache")).unwrap();
    let snap = backup_dir(&repo, &src);
    let tree = repo.load_tree(&snap.manifest).unwrap();
    let index = repo.index().unwrap();
    let big = tree.get(&support::stored(&src.join("big"))).unwrap();
    let mid = *big.chunks[big.chunks.len() / 2].id();
    let loc = index.lookup(&mid).unwrap().unwrap();
    let in_bad = |e: &snap::snapshot::Entry| {
        e.chunks.iter().any(|c| match whole {
            true => index.lookup(c.id()).unwrap().unwrap().pack == loc.pack,
            false => *c.id() == mid,
        })
    };
    let name = snap::pack::pack_name(&loc.pack);
    if whole {
        mem.delete(&name).unwrap();
    } else {
        let at = (loc.offset + loc.length / 2) as usize;
        mem.tamper(&name, |b| b[at] ^= 0x40);
    }
    let target = work.path().join("restore");
    let opts = RestoreOptions {
        target: target.clone(),
        ..Default::default()
    };
    let err = restore(&repo, &snap, &opts, &NoProgress).unwrap_err();
    let snap::Error::RestoreIncomplete { failed, .. } = &err else {
        panic!("{what}: {err}");
    };
    for (name_, bytes) in &files {
        let e = tree.get(&support::stored(&src.join(name_))).unwrap();
        let at = restored(&target, &src, name_);
        match failed.iter().find(|(p, _)| *p == e.path) {
            Some((_, msg)) => {
                assert!(in_bad(e), "{what}: {name_} failed: {msg}");
                assert!(msg.contains(&name), "{what}: {msg}");
                assert!(!at.exists(), "{what}: {name_} is there half written");
            }
            None => {
                assert!(!in_bad(e), "{what}: {name_} restored from a bad pack");
                assert!(fs::read(&at).unwrap() == *bytes, "{what}: {name_} differs");
            }
        }
    }
    assert!(
        failed.iter().any(|(p, _)| p.ends_with("/big")),
        "{failed:?}"
    );
    assert_eq!(leftovers(&target), Vec::<PathBuf>::new(), "{what}");
}

#[test]
fn a_damaged_or_missing_pack_mid_way_fails_only_its_files_and_names_it() {
    restore_around_a_bad_pack(false);
    restore_around_a_bad_pack(true);
}
