//! Library-level tests over the in-memory and fault-injecting backends: a full disk mid-backup
//! leaves no half-written snapshot and a valid repository; damage is detected and named;
//! a lost index cache costs a rebuild, not data.

mod support;

use std::sync::Arc;

use snap::backend::{Backend, Fault, FaultyBackend, MemoryBackend};
use snap::crypto::keyfile::KdfParams;
use snap::ops::{BackupInput, BackupOptions, RestoreOptions, backup, restore};
use snap::progress::NoProgress;
use snap::repo::Repository;
use snap::source::ReaderSource;

const PW: &[u8] = b"test password";

fn init_opts() -> snap::repo::InitOptions {
    support::fast_init_options()
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    // Half compressible text, half noise, so packs fill at a realistic rate.
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (x >> 60) < 8 {
            out.extend_from_slice(format!("{x}\tcustomer-{}\t2026-11-21\n", x % 977).as_bytes());
        } else {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out.truncate(len);
    out
}

fn backup_bytes(
    repo: &Repository,
    name: &str,
    bytes: &[u8],
) -> snap::Result<snap::snapshot::Snapshot> {
    let src = ReaderSource::new(name, bytes);
    backup(
        repo,
        BackupInput::Stream(Box::new(src)),
        &BackupOptions::default(),
        &NoProgress,
    )
    .map(|o| o.snapshot)
}

fn read_back(
    repo: &Repository,
    snap: &snap::snapshot::Snapshot,
    name: &str,
) -> snap::Result<Vec<u8>> {
    let tree = repo.load_tree(&snap.manifest)?;
    let mut out = Vec::new();
    repo.write_file_to(&tree.get(name).expect("entry").chunks, &mut out)?;
    Ok(out)
}

#[test]
fn disk_full_mid_backup_leaves_no_snapshot_and_a_valid_repository() {
    let mem = Arc::new(MemoryBackend::new());
    Repository::init(&*mem, PW, &init_opts()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let first = data(3 << 20, 1);
    let s1 = {
        let repo = Repository::open(mem.clone(), PW, cache.path()).unwrap();
        backup_bytes(&repo, "db/a.sql", &first).unwrap()
    };
    let packs_before = mem.list("data/").unwrap().len();

    // The disk fills after two more packs of the next backup.
    let faulty: Arc<dyn Backend> = Arc::new(FaultyBackend::new(
        mem.clone(),
        Fault::DiskFullFromPut {
            n: 2,
            prefix: "data/".into(),
        },
    ));
    let repo = Repository::open(faulty, PW, cache.path()).unwrap();
    let err = backup_bytes(&repo, "db/b.sql", &data(8 << 20, 2)).unwrap_err();
    assert!(err.to_string().contains("No space left on device"), "{err}");
    drop(repo);

    assert_eq!(
        mem.list("data/").unwrap().len(),
        packs_before + 2,
        "two packs landed before the disk filled"
    );
    let repo = Repository::open(mem.clone(), PW, cache.path()).unwrap();
    let snaps = repo.snapshots().unwrap();
    assert_eq!(snaps.len(), 1, "no snapshot from the failed backup");
    assert_eq!(snaps[0].id, s1.id);
    assert_eq!(read_back(&repo, &snaps[0], "db/a.sql").unwrap(), first);

    // With space again, the same backup completes and reuses what already landed.
    let second = data(8 << 20, 2);
    let s2 = backup_bytes(&repo, "db/b.sql", &second).unwrap();
    assert!(
        s2.manifest.summary.added_raw_bytes < second.len() as u64,
        "chunks from the failed run are reused"
    );
    assert_eq!(read_back(&repo, &s2, "db/b.sql").unwrap(), second);
}

#[test]
fn disk_full_at_manifest_write_records_nothing() {
    let mem = Arc::new(MemoryBackend::new());
    Repository::init(&*mem, PW, &init_opts()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let faulty: Arc<dyn Backend> = Arc::new(FaultyBackend::new(
        mem.clone(),
        Fault::DiskFullFromPut {
            n: 0,
            prefix: "snapshots/".into(),
        },
    ));
    let repo = Repository::open(faulty, PW, cache.path()).unwrap();
    assert!(backup_bytes(&repo, "x", &data(100_000, 3)).is_err());
    assert!(repo.snapshots().unwrap().is_empty());
}

#[test]
fn damaged_pack_is_detected_and_named() {
    let mem = Arc::new(MemoryBackend::new());
    Repository::init(&*mem, PW, &init_opts()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = Repository::open(mem.clone(), PW, cache.path()).unwrap();
    let bytes = data(200_000, 4);
    let s = backup_bytes(&repo, "f", &bytes).unwrap();
    let tree = repo.load_tree(&s.manifest).unwrap();
    let first_chunk = tree.get("f").unwrap().chunks[0].0;
    let loc = repo.index().unwrap().lookup(&first_chunk).unwrap().unwrap();
    let pack = snap::pack::pack_name(&loc.pack);
    mem.tamper(&pack, |b| b[loc.offset as usize + 30] ^= 0x04);
    let err = read_back(&repo, &s, "f").unwrap_err().to_string();
    assert!(
        err.contains(&pack) && err.contains(&first_chunk.short()),
        "{err}"
    );

    // Restore fails loudly instead of writing wrong bytes.
    let target = tempfile::tempdir().unwrap();
    let opts = RestoreOptions {
        target: target.path().join("out"),
        ..Default::default()
    };
    let err = restore(&repo, &s, &opts, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("authentication failed"), "{err}");
}

#[test]
fn short_reads_and_failed_reads_are_errors() {
    let mem = Arc::new(MemoryBackend::new());
    Repository::init(&*mem, PW, &init_opts()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let bytes = data(100_000, 5);
    let s = {
        let repo = Repository::open(mem.clone(), PW, cache.path()).unwrap();
        backup_bytes(&repo, "f", &bytes).unwrap()
    };
    let short: Arc<dyn Backend> = Arc::new(FaultyBackend::new(mem.clone(), Fault::ShortReads));
    let repo = Repository::open(short, PW, cache.path()).unwrap();
    assert!(read_back(&repo, &s, "f").is_err());

    // Whichever read fails (the tree's, the first of the file's, a later one), the whole read
    // is an error that says why; once n passes the reads made, it succeeds.
    let mut failed = 0;
    for n in 0.. {
        let failing: Arc<dyn Backend> =
            Arc::new(FaultyBackend::new(mem.clone(), Fault::FailGet { n }));
        let Ok(repo) = Repository::open(failing, PW, cache.path()) else {
            continue; // the failed get was one of opening the repository
        };
        match read_back(&repo, &s, "f") {
            Ok(got) => {
                assert_eq!(got, bytes);
                break;
            }
            Err(e) => {
                // A failed read of a pack's trailer while the index syncs leaves the pack
                // out of the index: its chunks are then reported missing from it.
                let err = e.to_string();
                assert!(
                    err.contains("injected read failure") || err.contains("not in the index"),
                    "{err}"
                );
                failed += err.contains("injected read failure") as usize;
            }
        }
    }
    assert!(failed >= 2, "{failed}");
}

#[test]
fn lost_cache_is_rebuilt_from_packs() {
    let mem = Arc::new(MemoryBackend::new());
    Repository::init(&*mem, PW, &init_opts()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let bytes = data(2 << 20, 6);
    let s = {
        let repo = Repository::open(mem.clone(), PW, cache.path()).unwrap();
        backup_bytes(&repo, "f", &bytes).unwrap()
    };
    std::fs::remove_dir_all(cache.path()).unwrap();
    let repo = Repository::open(mem.clone(), PW, cache.path()).unwrap();
    assert_eq!(read_back(&repo, &s, "f").unwrap(), bytes);
    assert!(repo.sync_report().unwrap().packs_added > 0);
}

#[test]
fn index_held_by_another_opener_falls_back_to_a_temporary_index() {
    let mem = Arc::new(MemoryBackend::new());
    Repository::init(&*mem, PW, &init_opts()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let first = Repository::open(mem.clone(), PW, cache.path()).unwrap();
    let s = backup_bytes(&first, "f", b"held").unwrap();
    let second = Repository::open(mem.clone(), PW, cache.path()).unwrap();
    assert!(second.index().unwrap().is_temporary());
    assert_eq!(read_back(&second, &s, "f").unwrap(), b"held");
}

#[test]
fn wrong_password_and_second_key_file() {
    let mem = Arc::new(MemoryBackend::new());
    Repository::init(&*mem, PW, &init_opts()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let err = Repository::open(mem.clone(), b"nope", cache.path())
        .err()
        .unwrap();
    assert!(matches!(err, snap::Error::WrongPassword));
    let repo = Repository::open(mem.clone(), PW, cache.path()).unwrap();
    snap::repo::add_key_file(
        &*mem,
        repo.key(),
        b"second",
        KdfParams {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        },
    )
    .unwrap();
    let s = backup_bytes(&repo, "f", b"shared data").unwrap();
    drop(repo);
    let repo2 = Repository::open(mem.clone(), b"second", cache.path()).unwrap();
    assert_eq!(read_back(&repo2, &s, "f").unwrap(), b"shared data");
}

#[test]
fn dedup_within_and_across_backups() {
    let mem = Arc::new(MemoryBackend::new());
    Repository::init(&*mem, PW, &init_opts()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = Repository::open(mem.clone(), PW, cache.path()).unwrap();
    let block = data(1 << 20, 7);
    let doubled = [block.clone(), block.clone()].concat();
    let s1 = backup_bytes(&repo, "f", &doubled).unwrap();
    // The second copy of the block is (almost) entirely deduplicated within the same backup.
    assert!(
        s1.manifest.summary.added_raw_bytes < (block.len() as u64) * 12 / 10,
        "{:?}",
        s1.manifest.summary
    );
    let s2 = backup_bytes(&repo, "g", &doubled).unwrap();
    assert_eq!(
        s2.manifest.summary.chunks_new, 1,
        "only the new tree chunk: {:?}",
        s2.manifest.summary
    );
    assert_eq!(read_back(&repo, &s2, "g").unwrap(), doubled);
}

#[test]
fn a_damaged_manifest_does_not_hide_the_others_or_block_backups() {
    let mem = Arc::new(MemoryBackend::new());
    Repository::init(&*mem, PW, &init_opts()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = Repository::open(mem.clone(), PW, cache.path()).unwrap();
    let a = backup_bytes(&repo, "a", b"first").unwrap();
    let b = backup_bytes(&repo, "b", b"second").unwrap();
    mem.tamper(&format!("snapshots/{}", a.id), |v| v[40] ^= 1);
    let err = repo.snapshots().unwrap_err().to_string();
    assert!(err.contains(&a.id.short()), "{err}");
    let (ok, damaged) = repo.snapshots_and_damaged().unwrap();
    assert_eq!(ok.iter().map(|s| s.id).collect::<Vec<_>>(), vec![b.id]);
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged[0].0, a.id);
    assert_eq!(
        read_back(&repo, &repo.find_snapshot("latest").unwrap(), "b").unwrap(),
        b"second"
    );
    backup_bytes(&repo, "c", b"third").unwrap();
}

/// A restore with one damaged file (issue 16): the other files are restored byte-exact, the
/// damaged one is named in the error and never appears half written under its name (nor as a
/// leftover temporary file); a sparse file comes back sparse.
#[test]
fn a_damaged_file_fails_alone_and_sparse_files_stay_sparse() {
    let mem = Arc::new(MemoryBackend::new());
    Repository::init(&*mem, PW, &init_opts()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = Repository::open(mem.clone(), PW, cache.path()).unwrap();
    let src = tempfile::tempdir().unwrap();
    let good = data(300_000, 11);
    let bad = data(300_000, 12);
    std::fs::write(src.path().join("good.bin"), &good).unwrap();
    std::fs::write(src.path().join("bad.bin"), &bad).unwrap();
    // 32 MiB with 8 KiB of data in the middle: almost all holes.
    let sparse = std::fs::File::create(src.path().join("sparse.img")).unwrap();
    sparse.set_len(32 << 20).unwrap();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = &sparse;
        f.seek(SeekFrom::Start(16 << 20)).unwrap();
        f.write_all(&data(8192, 13)).unwrap();
    }
    let s = backup(
        &repo,
        BackupInput::Paths(vec![src.path().to_path_buf()]),
        &BackupOptions::default(),
        &NoProgress,
    )
    .unwrap()
    .snapshot;
    let tree = repo.load_tree(&s.manifest).unwrap();
    let stored = |n: &str| {
        format!(
            "{}/{n}",
            src.path().display().to_string().trim_start_matches('/')
        )
    };
    let bad_chunk = tree
        .get(&stored("bad.bin"))
        .unwrap()
        .chunks
        .last()
        .unwrap()
        .0;
    let loc = repo.index().unwrap().lookup(&bad_chunk).unwrap().unwrap();
    mem.tamper(&snap::pack::pack_name(&loc.pack), |b| {
        b[loc.offset as usize + 30] ^= 0x04
    });

    let target = tempfile::tempdir().unwrap();
    let out = target.path().join("out");
    let opts = RestoreOptions {
        target: out.clone(),
        ..Default::default()
    };
    let err = restore(&repo, &s, &opts, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1 file(s) could not be restored") && err.contains("bad.bin"),
        "{err}"
    );
    let dir = out.join(stored(""));
    assert_eq!(std::fs::read(dir.join("good.bin")).unwrap(), good);
    assert!(
        !dir.join("bad.bin").exists(),
        "no half-written file under its name"
    );
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("snap-tmp")),
        "no temporary file left: {names:?}"
    );
    let img = dir.join("sparse.img");
    let bytes = std::fs::read(&img).unwrap();
    assert_eq!(bytes.len(), 32 << 20);
    assert_eq!(&bytes[16 << 20..(16 << 20) + 8192], &data(8192, 13)[..]);
    use std::os::unix::fs::MetadataExt;
    let allocated = std::fs::metadata(&img).unwrap().blocks() * 512;
    assert!(
        allocated < 4 << 20,
        "restored sparse: {allocated} bytes allocated for 32 MiB"
    );
}

/// Names and link targets that are not UTF-8 come back byte-exact; a path too long for this
/// system (a tree written elsewhere) fails alone, and everything else is restored.
#[test]
fn odd_bytes_come_back_exact_and_a_too_long_path_fails_alone() {
    use snap::snapshot::{Entry, EntryKind, Snapshot, path_cmp};
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let mem = Arc::new(MemoryBackend::new());
    Repository::init(&*mem, PW, &init_opts()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = Repository::open(mem.clone(), PW, cache.path()).unwrap();
    let src = tempfile::tempdir().unwrap();
    let odd_dir = src.path().join(OsStr::from_bytes(b"d\xff"));
    std::fs::create_dir(&odd_dir).unwrap();
    let odd_file = odd_dir.join(OsStr::from_bytes(b"caf\xe9.txt"));
    std::fs::write(&odd_file, b"latin-1 name").unwrap();
    std::fs::write(src.path().join("plain.txt"), data(50_000, 3)).unwrap();
    let link = src.path().join(OsStr::from_bytes(b"l\xfe"));
    std::os::unix::fs::symlink(OsStr::from_bytes(b"t\xfd/x"), &link).unwrap();
    let s = backup(
        &repo,
        BackupInput::Paths(vec![src.path().to_path_buf()]),
        &BackupOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert!(s.warnings.is_empty(), "nothing skipped: {:?}", s.warnings);
    let s = s.snapshot;

    // A tree with one path longer than PATH_MAX (20 components of 242 bytes), as another
    // system could have written it; its file reuses plain.txt's chunks.
    let tree = repo.load_tree(&s.manifest).unwrap();
    let plain = tree
        .entries
        .iter()
        .find(|e| e.path.ends_with("/plain.txt"))
        .unwrap()
        .clone();
    let mut entries = tree.entries.clone();
    let mut deep = String::new();
    for i in 0..20 {
        if !deep.is_empty() {
            deep.push('/');
        }
        deep.push_str(&format!("{i:02}{}", "x".repeat(240)));
        entries.push(Entry {
            path: deep.clone(),
            kind: EntryKind::Dir,
            mode: 0o755,
            chunks: vec![],
            size: 0,
            ..plain.clone()
        });
    }
    entries.push(Entry {
        path: format!("{deep}/f"),
        ..plain.clone()
    });
    entries.sort_by(|a, b| path_cmp(&a.path, &b.path));
    let saver = snap::repo::Saver::new(&repo, 3).unwrap();
    let mut w = snap::repo::TreeWriter::new(&saver, repo.chunker());
    for e in &entries {
        w.push(e).unwrap();
    }
    let refs = w.finish().unwrap();
    saver.finish().unwrap();
    let mut m = s.manifest.clone();
    m.tree = refs;
    let forged = Snapshot {
        id: repo.save_manifest(&m).unwrap(),
        manifest: m,
    };

    let target = tempfile::tempdir().unwrap();
    let out = target.path().join("out");
    let opts = RestoreOptions {
        target: out.clone(),
        ..Default::default()
    };
    let err = restore(&repo, &forged, &opts, &NoProgress).unwrap_err();
    let snap::Error::RestoreIncomplete { failed, .. } = &err else {
        panic!("{err}");
    };
    assert!(!failed.is_empty());
    for (path, why) in failed {
        assert!(path.starts_with("00x"), "only the deep path fails: {path}");
        assert!(why.contains("too long"), "{why}");
    }
    let base = out.join(src.path().strip_prefix("/").unwrap());
    let odd = base
        .join(OsStr::from_bytes(b"d\xff"))
        .join(OsStr::from_bytes(b"caf\xe9.txt"));
    assert_eq!(std::fs::read(odd).unwrap(), b"latin-1 name");
    assert_eq!(
        std::fs::read_link(base.join(OsStr::from_bytes(b"l\xfe")))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        b"t\xfd/x"
    );
    assert_eq!(
        std::fs::read(base.join("plain.txt")).unwrap(),
        data(50_000, 3)
    );
}
