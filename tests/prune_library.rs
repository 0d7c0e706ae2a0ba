//! Rule W2 (repo-format.md §9.2) at library level: a deletion plan that condemns packs a
//! running backup has just written (a prune that ran while the backup's lock was stale) makes
//! the backup copy its chunks out before writing its manifest.

mod support;

use std::collections::HashSet;
use std::io::Read;
use std::sync::Arc;

use snap::backend::{Backend, MemoryBackend};
use snap::ops::prune::{self, PruneOptions};
use snap::ops::{BackupInput, BackupOptions, backup};
use snap::progress::NoProgress;
use snap::repo::{Repository, deletion};
use snap::source::ReaderSource;

/// Yields `data`; once `at` bytes are out, waits for packs to exist and condemns all of them.
struct CondemningReader {
    data: Vec<u8>,
    pos: usize,
    at: usize,
    backend: Arc<MemoryBackend>,
    key: Arc<snap::crypto::MasterKey>,
    condemned: Arc<std::sync::Mutex<HashSet<snap::Id>>>,
}

impl Read for CondemningReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.at && self.condemned.lock().unwrap().is_empty() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let packs = loop {
                let p: Vec<snap::Id> = self
                    .backend
                    .list("data/")
                    .unwrap()
                    .iter()
                    .filter_map(|o| snap::pack::pack_id_from_name(&o.name))
                    .collect();
                if !p.is_empty() {
                    break p;
                }
                assert!(std::time::Instant::now() < deadline, "no pack was uploaded");
                std::thread::sleep(std::time::Duration::from_millis(10));
            };
            deletion::write_plan(&*self.backend, &self.key, packs.clone(), chrono::Utc::now())
                .unwrap();
            self.condemned.lock().unwrap().extend(packs);
        }
        let n = buf.len().min(self.data.len() - self.pos).min(64 << 10);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn backup_copies_its_chunks_out_of_packs_condemned_while_it_ran() {
    let mem = Arc::new(MemoryBackend::new());
    let opts = support::fast_init_options();
    Repository::init(&*mem, b"pw", &opts).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = Repository::open(mem.clone(), b"pw", cache.path()).unwrap();
    let data = support::random_bytes(&mut support::Rng::new(99), 8 << 20);
    let condemned = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let reader = CondemningReader {
        data: data.clone(),
        pos: 0,
        at: 4 << 20,
        backend: mem.clone(),
        key: repo.key().clone(),
        condemned: condemned.clone(),
    };
    let out = backup(
        &repo,
        BackupInput::Stream(Box::new(ReaderSource::new("big", reader))),
        &BackupOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let condemned = condemned.lock().unwrap().clone();
    assert!(!condemned.is_empty());

    // No chunk of the snapshot lives only in a condemned pack.
    let tree = repo.load_tree(&out.snapshot.manifest).unwrap();
    let index = repo.index().unwrap();
    let chunks = tree
        .get("big")
        .unwrap()
        .chunks
        .iter()
        .map(|c| *c.id())
        .chain(out.snapshot.manifest.tree.iter().map(|c| *c.id()));
    for id in chunks {
        let loc = index.lookup(&id).unwrap().unwrap();
        assert!(
            !condemned.contains(&loc.pack),
            "chunk {} still only in condemned pack {}",
            id.short(),
            loc.pack.short()
        );
    }

    // A prune past the grace period deletes the condemned packs, resurrecting nothing, and the
    // snapshot is still whole.
    let popts = PruneOptions {
        grace: chrono::TimeDelta::zero(),
        ..Default::default()
    };
    let plan = prune::plan(&repo, &popts).unwrap();
    assert!(plan.resurrect.is_empty(), "{plan:?}");
    assert_eq!(plan.delete_now.len(), condemned.len());
    prune::execute(&repo, &plan, &popts, &NoProgress).unwrap();
    drop(repo);
    let repo = Repository::open(mem.clone(), b"pw", cache.path()).unwrap();
    let snap = repo.find_snapshot("latest").unwrap();
    let mut back = Vec::new();
    repo.write_file_to(
        &repo
            .load_tree(&snap.manifest)
            .unwrap()
            .get("big")
            .unwrap()
            .chunks,
        &mut back,
    )
    .unwrap();
    assert!(back == data);
}

/// Rule P1 (repo-format.md §9.2): a prune that made its plan before a snapshot was written
/// (its run stalled, or a writer's lock was gone) deletes nothing in phase 2: the new
/// snapshot's chunks were not counted when the plan was made.
#[test]
fn prune_deletes_nothing_when_a_snapshot_appeared_after_its_plan() {
    let mem = Arc::new(MemoryBackend::new());
    Repository::init(&*mem, b"pw", &support::fast_init_options()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = Repository::open(mem.clone(), b"pw", cache.path()).unwrap();
    let data = support::random_bytes(&mut support::Rng::new(7), 2 << 20);
    let stream =
        |d: Vec<u8>| BackupInput::Stream(Box::new(ReaderSource::new("f", std::io::Cursor::new(d))));
    let old = backup(
        &repo,
        stream(data.clone()),
        &BackupOptions::default(),
        &NoProgress,
    )
    .unwrap();
    // Forget it and condemn its packs.
    mem.delete(&format!("snapshots/{}", old.snapshot.id))
        .unwrap();
    let popts = PruneOptions {
        grace: chrono::TimeDelta::zero(),
        ..Default::default()
    };
    let first = prune::plan(&repo, &popts).unwrap();
    prune::execute(&repo, &first, &popts, &NoProgress).unwrap();
    let packs = || mem.list("data/").unwrap().len();
    let before = packs();
    // The next prune plans to delete them; then a snapshot appears before it executes.
    let second = prune::plan(&repo, &popts).unwrap();
    assert!(!second.delete_now.is_empty(), "{second:?}");
    backup(
        &repo,
        stream(b"late".to_vec()),
        &BackupOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let report = prune::execute(&repo, &second, &popts, &NoProgress).unwrap();
    assert!(report.deletions_postponed, "{report:?}");
    assert_eq!(report.packs_deleted, 0);
    assert!(
        packs() > before,
        "nothing deleted, the late backup's pack added"
    );
    assert!(
        !deletion::read_plans(&*mem, repo.key()).unwrap().is_empty(),
        "the plan waits"
    );
    // The next prune, planned after the snapshot, does delete.
    let third = prune::plan(&repo, &popts).unwrap();
    let report = prune::execute(&repo, &third, &popts, &NoProgress).unwrap();
    assert!(
        !report.deletions_postponed && report.packs_deleted > 0,
        "{report:?}"
    );
}
