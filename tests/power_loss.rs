//! Power loss at every write (issue 16): a backup, a forget + prune (`--grace 0s`) and a copy
//! (same key, own key) run over [`PowerLossBackend`], which cuts the power when write number k
//! starts — that write is lost, lands unseen, or is torn — and fails everything after. The
//! local index cache is then found as it was at the cut, gone, or stale (as before the command,
//! whole or truncated under its old seal). Reopened with the power back: `check --read-data`
//! passes, every snapshot committed before the cut (less the one forgotten) is listed, and every
//! listed snapshot — the one being written too, if its manifest landed — restores byte-exact;
//! and all of this again once the command has been run again to completion.
//!
//! A short pass cuts at every write index once per cut mode; SNAP_POWER_TRIALS=300 adds that
//! many random cuts per command (the long mode). SNAP_POWER_SEED replays the random choices.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use snap::Id;
use snap::backend::{Backend, CutMode, LocalBackend, MemoryBackend, Power, PowerLossBackend};
use snap::ops::check::{CheckOptions, DataSubset, FindingKind, check};
use snap::ops::copy::{CopyOptions, copy};
use snap::ops::prune::{self, PruneOptions};
use snap::ops::{BackupInput, BackupOptions, backup};
use snap::progress::NoProgress;
use snap::repo::Repository;
use snap::source::ReaderSource;
use support::{Rng, random_bytes};

const PW: &[u8] = b"power loss";
const OPS: [Op; 4] = [Op::Backup, Op::ForgetPrune, Op::CopySameKey, Op::CopyOwnKey];
const MODES: [CutMode; 3] = [CutMode::Lost, CutMode::Landed, CutMode::Torn];

/// A repository at rest: its objects (in memory, or in a local directory) and its cache.
struct World {
    backend: Arc<dyn Backend>,
    local: Option<tempfile::TempDir>,
    cache: tempfile::TempDir,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

impl World {
    fn new(local: bool) -> World {
        let dir = local.then(|| tempfile::tempdir().unwrap());
        let backend: Arc<dyn Backend> = match &dir {
            Some(d) => Arc::new(LocalBackend::new(d.path())),
            None => Arc::new(MemoryBackend::new()),
        };
        World {
            backend,
            local: dir,
            cache: tempfile::tempdir().unwrap(),
        }
    }

    fn clone(&self) -> World {
        let w = World::new(self.local.is_some());
        match (&self.local, &w.local) {
            (Some(from), Some(to)) => copy_dir(from.path(), to.path()),
            _ => {
                for o in self.backend.list("").unwrap() {
                    let bytes = self.backend.get(&o.name).unwrap();
                    w.backend.put(&o.name, &bytes).unwrap();
                }
            }
        }
        copy_dir(self.cache.path(), w.cache.path());
        w
    }

    fn open(&self) -> Repository {
        Repository::open(self.backend.clone(), PW, self.cache.path()).unwrap()
    }

    /// The same objects, through `power`.
    fn powered(&self, power: &Arc<Power>) -> Arc<dyn Backend> {
        let b = PowerLossBackend::new(self.backend.clone(), power.clone());
        match &self.local {
            Some(d) => Arc::new(b.with_local_root(d.path())),
            None => Arc::new(b),
        }
    }
}

fn backup_stream(repo: &Repository, name: &str, data: &[u8]) -> snap::Result<Id> {
    let src = ReaderSource::new(name, std::io::Cursor::new(data.to_vec()));
    let out = backup(
        repo,
        BackupInput::Stream(Box::new(src)),
        &BackupOptions::default(),
        &NoProgress,
    )?;
    Ok(out.snapshot.id)
}

/// The starting state: the source holds S1 ("a") and S2 ("b"), and a deletion plan condemning
/// the packs of a forgotten S0 (so a prune with no grace deletes in phase 2); two destinations
/// (sharing the key, with their own key) hold a copy of S1.
struct Base {
    src: World,
    same_key: World,
    own_key: World,
    /// Stream name → content ("c" is the one the killed backup stores).
    data: HashMap<String, Vec<u8>>,
    s1: Id,
    s2: Id,
}

fn make_base(local: bool) -> Base {
    let mut rng = Rng::new(16);
    let mut data = HashMap::new();
    for (name, len) in [
        ("x", 1 << 20),
        ("a", 3 << 19),
        ("b", 1 << 20),
        ("c", 5 << 20),
    ] {
        data.insert(name.to_string(), random_bytes(&mut rng, len));
    }
    // b and c share content with a (deduplicated; forgetting S1 leaves packs part garbage).
    let a = data["a"].clone();
    data.get_mut("b").unwrap().extend_from_slice(&a[..1 << 19]);
    data.get_mut("c").unwrap().extend_from_slice(&a[1 << 19..]);
    let src = World::new(local);
    Repository::init(&*src.backend, PW, &support::fast_init_options()).unwrap();
    let repo = src.open();
    let s0 = backup_stream(&repo, "x", &data["x"]).unwrap();
    let s1 = backup_stream(&repo, "a", &data["a"]).unwrap();
    let s2 = backup_stream(&repo, "b", &data["b"]).unwrap();
    src.backend.delete(&format!("snapshots/{s0}")).unwrap();
    let popts = PruneOptions::default();
    let plan = prune::plan(&repo, &popts).unwrap();
    prune::execute(&repo, &plan, &popts, &NoProgress).unwrap();
    let (same_key, own_key) = (World::new(local), World::new(local));
    let opts = support::fast_init_options();
    Repository::init_sharing_key(&*same_key.backend, &repo, PW, &opts).unwrap();
    Repository::init(&*own_key.backend, PW, &opts).unwrap();
    for dst in [&same_key, &own_key] {
        let only_s1 = CopyOptions {
            ids: vec![s1.to_hex()],
            ..Default::default()
        };
        copy(&repo, &dst.open(), &only_s1, &NoProgress).unwrap();
    }
    Base {
        src,
        same_key,
        own_key,
        data,
        s1,
        s2,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Backup,
    ForgetPrune,
    CopySameKey,
    CopyOwnKey,
}

/// How the local index cache is found after the cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CacheAfter {
    /// As it was at the instant of the cut (unsealed, possibly mid-write).
    AtCut,
    /// Lost.
    Gone,
    /// As before the command (none of its cache writes reached the disk), still sealed.
    Stale,
    /// As before the command, truncated to half under its old seal.
    StaleTorn,
}

const CACHES: [CacheAfter; 4] = [
    CacheAfter::AtCut,
    CacheAfter::Gone,
    CacheAfter::Stale,
    CacheAfter::StaleTorn,
];

/// The command, over backends that share `power`.
fn run_op(
    op: Op,
    src: &World,
    dst: Option<&World>,
    power: &Arc<Power>,
    b: &Base,
) -> snap::Result<()> {
    let repo = Repository::open(src.powered(power), PW, src.cache.path())?;
    match op {
        Op::Backup => backup_stream(&repo, "c", &b.data["c"]).map(|_| ()),
        Op::ForgetPrune => {
            match repo.backend().delete(&format!("snapshots/{}", b.s1)) {
                Ok(()) | Err(snap::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            let popts = PruneOptions {
                grace: chrono::TimeDelta::zero(),
                ..Default::default()
            };
            let plan = prune::plan(&repo, &popts)?;
            prune::execute(&repo, &plan, &popts, &NoProgress).map(|_| ())
        }
        Op::CopySameKey | Op::CopyOwnKey => {
            let dst = dst.expect("a destination");
            let to = Repository::open(dst.powered(power), PW, dst.cache.path())?;
            copy(&repo, &to, &CopyOptions::default(), &NoProgress).map(|_| ())
        }
    }
}

/// Put the cache of `w` in the state `how` (`at_cut`: its copy taken at the cut; `before`: the
/// cache before the command).
fn reset_cache(w: &World, how: CacheAfter, at_cut: &Path, before: &Path) {
    let dir = w.cache.path();
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    match how {
        CacheAfter::AtCut => copy_dir(at_cut, dir),
        CacheAfter::Gone => {}
        CacheAfter::Stale | CacheAfter::StaleTorn => copy_dir(before, dir),
    }
    if how == CacheAfter::StaleTorn {
        for e in walk_files(dir) {
            if e.file_name().is_some_and(|n| n == "index.redb") {
                let len = std::fs::metadata(&e).unwrap().len();
                let f = std::fs::OpenOptions::new().write(true).open(&e).unwrap();
                f.set_len(len / 2).unwrap();
            }
        }
    }
}

fn walk_files(d: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// With the power back: check passes, every listed snapshot restores byte-exact, and the
/// `required` ones (ids, or origins of copies) are listed.
fn verify(w: &World, required: &[Id], b: &Base) -> Result<usize, String> {
    let repo =
        Repository::open(w.backend.clone(), PW, w.cache.path()).map_err(|e| e.to_string())?;
    let opts = CheckOptions {
        read_data: Some(DataSubset::All),
        index_cache: Some(repo.index_path().to_path_buf()),
        own_lock: None,
    };
    let report = check(&repo, &opts, &NoProgress).map_err(|e| format!("check: {e}"))?;
    let odd = report
        .info
        .iter()
        .any(|f| f.kind == FindingKind::UnexpectedObject);
    if !report.is_ok() || odd {
        return Err(format!("check: {:?} {:?}", report.problems, report.info));
    }
    let (snaps, damaged) = repo.snapshots_and_damaged().map_err(|e| e.to_string())?;
    if !damaged.is_empty() {
        return Err(format!("damaged manifests: {damaged:?}"));
    }
    for s in &snaps {
        let name = &s.manifest.paths[0];
        let want = b
            .data
            .get(name)
            .ok_or(format!("unexpected snapshot {name}"))?;
        let tree = repo.load_tree(&s.manifest).map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        repo.write_file_to(&tree.get(name).ok_or("no entry")?.chunks, &mut got)
            .map_err(|e| format!("{name}: {e}"))?;
        if &got != want {
            return Err(format!(
                "{name} ({}) restores different bytes",
                s.id.short()
            ));
        }
    }
    let listed: Vec<Id> = snaps.iter().flat_map(|s| [s.id, s.origin()]).collect();
    match required.iter().find(|id| !listed.contains(id)) {
        Some(gone) => Err(format!("snapshot {} is gone", gone.short())),
        None => Ok(snaps.len()),
    }
}

/// One cut: at write `k` of `op`, in `mode`, the cache found `how`. `Ok(false)` when the command
/// finished before write `k` (no cut).
fn trial(op: Op, k: usize, mode: CutMode, how: CacheAfter, b: &Base) -> Result<bool, String> {
    let src = b.src.clone();
    let dst_base = match op {
        Op::CopySameKey => Some(&b.same_key),
        Op::CopyOwnKey => Some(&b.own_key),
        _ => None,
    };
    let dst = dst_base.map(World::clone);
    let power = Power::cut_at(k, mode);
    let at_cut = tempfile::tempdir().unwrap();
    let (s, d, at) = (
        src.cache.path().to_path_buf(),
        dst.as_ref().map(|d| d.cache.path().to_path_buf()),
        at_cut.path().to_path_buf(),
    );
    power.on_cut(move || {
        copy_dir(&s, &at.join("src"));
        if let Some(d) = d {
            copy_dir(&d, &at.join("dst"));
        }
    });
    let result = run_op(op, &src, dst.as_ref(), &power, b);
    if !power.is_cut() {
        return result
            .map(|_| false)
            .map_err(|e| format!("failed with the power on: {e}"));
    }
    reset_cache(&src, how, &at_cut.path().join("src"), b.src.cache.path());
    let mut required = match op {
        Op::ForgetPrune => vec![b.s2],
        _ => vec![b.s1, b.s2],
    };
    // A manifest whose put reached the store is a committed snapshot: it must be listed.
    let committed: Vec<Id> = power
        .stored()
        .iter()
        .filter_map(|n| n.strip_prefix("snapshots/")?.parse().ok())
        .collect();
    let mut dst_required = vec![b.s1];
    match dst {
        Some(_) => dst_required.extend(&committed),
        None => required.extend(&committed),
    }
    if let (Some(d), Some(base)) = (&dst, dst_base) {
        reset_cache(d, how, &at_cut.path().join("dst"), base.cache.path());
    }
    // With the power back, and again after the command is run again to completion (a prune
    // finishes what the interrupted one began).
    for when in ["after the cut", "after running it again"] {
        if when != "after the cut" {
            run_op(op, &src, dst.as_ref(), &Power::steady(), b)
                .map_err(|e| format!("running it again: {e}"))?;
        }
        verify(&src, &required, b).map_err(|e| format!("source, {when}: {e}"))?;
        if let Some(d) = &dst {
            verify(d, &dst_required, b).map_err(|e| format!("destination, {when}: {e}"))?;
        }
    }
    Ok(true)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

#[test]
fn power_loss_at_any_write_leaves_a_repository_that_checks_and_restores() {
    let seed = support::seed_from_env("SNAP_POWER_SEED");
    println!("power-loss seed: {seed} (replay with SNAP_POWER_SEED={seed})");
    let extra = env_u64("SNAP_POWER_TRIALS").unwrap_or(0);
    let mut rng = Rng::new(seed);
    let bases = [make_base(false), make_base(true)];
    let mut failures = Vec::new();
    for (b, op) in bases.iter().flat_map(|b| OPS.map(|op| (b, op))) {
        let place = if b.src.local.is_some() {
            "local"
        } else {
            "memory"
        };
        // How many writes the command makes with the power on (and that it then succeeds).
        let src = b.src.clone();
        let dst = match op {
            Op::CopyOwnKey => b.own_key.clone(),
            _ => b.same_key.clone(),
        };
        let power = Power::steady();
        run_op(op, &src, Some(&dst), &power, b).unwrap();
        let n = power.writes();
        // A torn put is a lost one in memory: tear only over a local directory.
        let modes = if b.src.local.is_some() {
            &MODES[..]
        } else {
            &MODES[..2]
        };
        let mut plan: Vec<(usize, CutMode, CacheAfter)> = (0..n)
            .flat_map(|k| modes.iter().map(move |m| (k, *m)))
            .map(|(k, m)| (k, m, *rng.pick(&CACHES)))
            .collect();
        for _ in 0..extra {
            let k = rng.range(0, n as u64) as usize;
            plan.push((k, *rng.pick(modes), *rng.pick(&CACHES)));
        }
        let (mut cut, mut failed) = (0, 0);
        for &(k, mode, how) in &plan {
            match trial(op, k, mode, how, b) {
                Ok(c) => cut += c as usize,
                Err(e) => {
                    failed += 1;
                    failures.push(format!(
                        "{op:?} ({place}), cut at write {k} ({mode:?}, cache {how:?}): {e}"
                    ));
                }
            }
        }
        println!(
            "power-loss figures: {op:?} ({place}): {n} writes; {} trials, {cut} cut mid-command, {failed} failures",
            plan.len()
        );
    }
    assert!(
        failures.is_empty(),
        "seed {seed}: {} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
