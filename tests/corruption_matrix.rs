//! Corruption matrix (issue 16, "nothing lost, whatever happens"): every object class of a
//! small repository with two snapshots × (bit flip, truncation, deletion, swap with another
//! object of the same class, a foreign object from another repository with the same password).
//! Each case runs on a fresh copy of the pre-built repository (and its cache) and runs
//! `snap check`, `snap check --read-data` and a restore of each snapshot, asserting:
//!
//! * no panic, ever;
//! * a restore that exits 0 restored exactly the bytes (and metadata) that were backed up;
//! * damage to repository data is detected (check exits non-zero) and the object is named;
//! * damage to the local index cache is repaired (restores succeed) with a warning.
//!
//! Some cases cannot be detected by design and are harmless; they are listed in [`expect`]
//! with the reason (e.g. a deleted manifest is a forgotten snapshot). A figure line reports
//! cases tried and detected.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use support::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Config,
    KeyFile,
    Pack,
    Manifest,
    Lock,
    DeletionPlan,
    IndexCache,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    BitFlip,
    Truncate,
    Delete,
    Swap,
    Foreign,
}

/// What a case must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// `check` (structure) exits non-zero and names the object.
    Detected,
    /// Only `check --read-data` can see it (the damage is inside a blob): it exits non-zero and
    /// names the object; restores that need the blob fail.
    DetectedByReadData,
    /// Not data (a lock only guards a running command): check names it (as a stale lock that
    /// `snap unlock` removes) without calling it a problem, and every restore succeeds.
    Named,
    /// A cache: restores succeed; a command says the cache was damaged or rebuilt.
    Repaired,
    /// Cannot be told from a legitimate state and loses nothing: every restore succeeds.
    Harmless(&'static str),
    /// Not applicable (no second object of the class to swap with).
    NotApplicable,
}

fn expect(c: Class, d: Damage) -> Expect {
    use Class::*;
    use Damage::*;
    match (c, d) {
        (Config, Swap) => Expect::NotApplicable,
        (Config, Foreign) => Expect::Harmless(
            "the config is plaintext and unauthenticated (repo-format.md §2): another repository's config with valid parameters only changes future chunking and the cache directory",
        ),
        (KeyFile, Delete) => Expect::Harmless(
            "the other key file still opens the repository (as after `snap key remove`)",
        ),
        (Pack, BitFlip) => Expect::DetectedByReadData,
        (Manifest, Delete) => Expect::Harmless("indistinguishable from `snap forget`"),
        (Lock, BitFlip | Truncate | Foreign) => Expect::Named,
        (Lock, Delete) => Expect::Harmless("a lock only protects a running command"),
        (Lock, Swap) => Expect::Harmless(
            "lock names are random: two valid locks under each other's names are still two valid locks",
        ),
        (DeletionPlan, Delete) => Expect::Harmless("a later prune plans the deletion again"),
        (DeletionPlan, Swap) => {
            Expect::Harmless("two valid plans under each other's names condemn the same packs")
        }
        (IndexCache, _) => Expect::Repaired,
        _ => Expect::Detected,
    }
}

/// The pre-built repository A (two snapshots, two key files, two locks, two deletion plans)
/// and repository B (same password, other key) for foreign objects.
struct Built {
    a: TestRepo,
    b: TestRepo,
    /// (snapshot id, copy of the source as it was backed up, source path)
    snapshots: Vec<(String, PathBuf)>,
    src: PathBuf,
}

fn small_spec() -> TreeSpec {
    TreeSpec {
        max_depth: 2,
        entries: (2, 4),
        large_files: 1,
        large_size: 200 << 10,
        small_max: 8 << 10,
    }
}

fn open_lib(r: &TestRepo) -> snap::repo::Repository {
    let backend: Arc<dyn snap::backend::Backend> =
        Arc::new(snap::backend::LocalBackend::new(&r.repo));
    snap::repo::Repository::open(backend, r.password.as_bytes(), &r.cache).unwrap()
}

/// Two locks (left behind: their guards are leaked) and two deletion plans.
fn add_locks_and_plans(r: &TestRepo) {
    let repo = open_lib(r);
    for cmd in ["backup", "check"] {
        let g = repo.lock(snap::repo::lock::LockKind::Shared, cmd).unwrap();
        std::mem::forget(g);
    }
    for _ in 0..2 {
        snap::repo::deletion::write_plan(
            &**repo.backend(),
            repo.key(),
            vec![snap::Id::random()],
            chrono::Utc::now(),
        )
        .unwrap();
    }
}

fn build() -> Built {
    let a = TestRepo::with_init_args(&["--chunk-avg-kib", "16", "--pack-size", "1"]);
    let src = a.path("src");
    gen_tree(&src, 0x3a7, &small_spec());
    let mut snapshots = Vec::new();
    for v in 0..2 {
        if v == 1 {
            std::fs::write(
                src.join("changed.bin"),
                random_bytes(&mut Rng::new(9), 300 << 10),
            )
            .unwrap();
        }
        let id = a.backup(&[&src])["id"].as_str().unwrap().to_string();
        let copy = a.path(&format!("v{v}"));
        copy_tree(&src, &copy);
        if v == 0 {
            // The index as it was after the first backup: a stale (older) copy of the cache.
            let idx = index_file(&a.cache);
            let stale = a.path("stale-index");
            std::fs::create_dir(&stale).unwrap();
            std::fs::copy(&idx, stale.join("index.redb")).unwrap();
            std::fs::copy(sidecar(&idx), stale.join("index.redb.b3")).unwrap();
        }
        snapshots.push((id, copy));
    }
    // A second key file (same password), so one key file can be swapped or lost.
    let repo = open_lib(&a);
    snap::repo::add_key_file(
        &**repo.backend(),
        repo.key(),
        a.password.as_bytes(),
        snap::crypto::keyfile::KdfParams {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        },
    )
    .unwrap();
    drop(repo);
    add_locks_and_plans(&a);

    let b = TestRepo::with_init_args(&["--chunk-avg-kib", "32"]);
    let bsrc = b.path("src");
    gen_tree(&bsrc, 0xb, &small_spec());
    b.backup(&[&bsrc]);
    add_locks_and_plans(&b);
    Built {
        a,
        b,
        snapshots,
        src,
    }
}

fn files_under(root: &Path, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let dir = root.join(prefix);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let rel = format!("{prefix}/{}", e.file_name().to_string_lossy());
        if p.is_dir() {
            out.extend(files_under(root, &rel));
        } else if !rel.contains("/.tmp-") {
            out.push(rel);
        }
    }
    out.sort();
    out
}

fn sidecar(index: &Path) -> PathBuf {
    index.with_file_name("index.redb.b3")
}

/// The objects of `class` in repository `r` (files relative to the repository root, or the
/// index file's full path).
fn objects(r: &TestRepo, class: Class) -> Vec<PathBuf> {
    let rel = |v: Vec<String>| v.into_iter().map(|n| r.repo.join(n)).collect::<Vec<_>>();
    match class {
        Class::Config => vec![r.repo.join("config")],
        Class::KeyFile => rel(files_under(&r.repo, "keys")),
        Class::Pack => {
            // The largest packs first: they hold file data both snapshots use.
            let mut p = rel(files_under(&r.repo, "data"));
            p.sort_by_key(|f| std::cmp::Reverse(std::fs::metadata(f).unwrap().len()));
            p
        }
        Class::Manifest => rel(files_under(&r.repo, "snapshots")),
        Class::Lock => rel(files_under(&r.repo, "locks")),
        Class::DeletionPlan => rel(files_under(&r.repo, "prune")),
        Class::IndexCache => vec![index_file(&r.cache)],
    }
}

/// A fresh copy of `t` (repository and cache) in a new temporary directory.
fn fresh_copy(t: &TestRepo) -> TestRepo {
    let n = TestRepo::uninit();
    for (from, to) in [(&t.repo, &n.repo), (&t.cache, &n.cache)] {
        copy_dir(from, to);
    }
    n
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let d = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &d);
        } else {
            std::fs::copy(&p, &d).unwrap();
        }
    }
}

/// The same object in the copy `n` of `t`.
fn moved(p: &Path, t: &TestRepo, n: &TestRepo) -> PathBuf {
    match p.strip_prefix(&t.repo) {
        Ok(rel) => n.repo.join(rel),
        Err(_) => n.cache.join(p.strip_prefix(&t.cache).unwrap()),
    }
}

/// Apply `d` to the object at `target` (of class `c`) in repository copy `n`; `other` is
/// another object of the class in the same copy, `foreign` one from repository B. Returns the
/// name check should mention.
fn damage(d: Damage, target: &Path, other: Option<&Path>, foreign: &Path) {
    match d {
        Damage::BitFlip => {
            let mut b = std::fs::read(target).unwrap();
            let i = b.len() / 2;
            b[i] ^= 0x10;
            std::fs::write(target, b).unwrap();
        }
        Damage::Truncate => {
            let b = std::fs::read(target).unwrap();
            std::fs::write(target, &b[..b.len() * 2 / 3]).unwrap();
        }
        Damage::Delete => std::fs::remove_file(target).unwrap(),
        Damage::Swap => {
            let o = other.expect("a second object");
            let (x, y) = (std::fs::read(target).unwrap(), std::fs::read(o).unwrap());
            std::fs::write(target, y).unwrap();
            std::fs::write(o, x).unwrap();
        }
        Damage::Foreign => {
            std::fs::copy(foreign, target).unwrap();
        }
    }
}

/// How `check` names the object at `p` (a storage name, a short snapshot id, "config", or the
/// index file).
fn names(c: Class, p: &Path, n: &TestRepo) -> Vec<String> {
    let rel = p
        .strip_prefix(&n.repo)
        .map(|r| r.to_string_lossy().into_owned());
    let file = p.file_name().unwrap().to_string_lossy().into_owned();
    match c {
        Class::Config => vec!["config".into()],
        Class::Manifest => vec![format!("snapshot {}", &file[..8])],
        Class::IndexCache => vec!["local index".into(), "index".into()],
        _ => vec![rel.unwrap()],
    }
}

struct Outcome {
    detected: bool,
    ok: bool,
}

fn no_panic(what: &str, out: &str, err: &str) {
    assert!(
        !out.contains("panicked") && !err.contains("panicked"),
        "{what}: panicked\n{out}\n{err}"
    );
}

#[allow(clippy::too_many_arguments)]
fn run_case(built: &Built, c: Class, d: Damage) -> Option<Outcome> {
    let exp = expect(c, d);
    if exp == Expect::NotApplicable {
        return None;
    }
    let n = fresh_copy(&built.a);
    let targets: Vec<PathBuf> = objects(&built.a, c)
        .iter()
        .map(|p| moved(p, &built.a, &n))
        .collect();
    let foreign = objects(&built.b, c)[0].clone();
    let target = targets[0].clone();
    let named = names(c, &target, &n);
    if c == Class::IndexCache && matches!(d, Damage::Swap | Damage::Foreign) {
        // Another index file with its own (valid) checksum: a stale one of this repository,
        // or the one of repository B.
        let from = match d {
            Damage::Swap => built.a.path("stale-index").join("index.redb"),
            _ => foreign.clone(),
        };
        std::fs::copy(&from, &target).unwrap();
        std::fs::copy(sidecar(&from), sidecar(&target)).unwrap();
    } else {
        damage(d, &target, targets.get(1).map(|p| p.as_path()), &foreign);
    }
    let label = format!("{c:?} × {d:?}");

    let (code, out, err) = n.run(&["check"]);
    no_panic(&label, &out, &err);
    let check_text = format!("{out}\n{err}");
    let (rcode, rout, rerr) = n.run(&["check", "--read-data"]);
    no_panic(&label, &rout, &rerr);
    let rd_text = format!("{rout}\n{rerr}");
    let mention = |t: &str| named.iter().any(|x| t.contains(x.as_str()));

    let mut restores_ok = true;
    let mut restore_text = String::new();
    for (i, (id, copy)) in built.snapshots.iter().enumerate() {
        let dest = n.path(&format!("restore-{i}"));
        let (code, out, err) = n.run(&["restore", id, "--target", dest.to_str().unwrap()]);
        no_panic(&label, &out, &err);
        restore_text.push_str(&err);
        if (c, d) == (Class::Manifest, Damage::Delete) && *id == file_name(&target) {
            // Forgotten, in effect: it is gone, and said so.
            assert_ne!(code, 0, "{label}: a deleted snapshot restored");
            assert!(err.contains("no snapshot matches"), "{label}: {err}");
            continue;
        }
        if code == 0 {
            // Never wrong bytes with exit 0.
            assert_trees_equal(copy, &restored_path(&dest, &built.src));
        } else {
            restores_ok = false;
            assert!(
                !err.trim().is_empty(),
                "{label}: restore of {id} failed without a message"
            );
            if c == Class::Manifest && d != Damage::Delete && *id == file_name(&target) {
                assert!(
                    err.contains("is damaged")
                        && err.contains(&id[..8])
                        && err.contains("snap check"),
                    "{label}: restore of the damaged snapshot must name it as damaged: {err}"
                );
            }
        }
    }
    if c == Class::Manifest && d != Damage::Delete {
        // Swapped, both manifests are damaged.
        let both = d == Damage::Swap;
        commands_name_the_damaged_manifest(built, &n, &file_name(&target), both, &label);
    }
    let detected = match exp {
        Expect::Detected => {
            assert_ne!(code, 0, "{label}: check did not detect it\n{check_text}");
            assert!(
                mention(&check_text),
                "{label}: check does not name {named:?}\n{check_text}"
            );
            assert_ne!(
                rcode, 0,
                "{label}: check --read-data did not detect it\n{rd_text}"
            );
            true
        }
        Expect::DetectedByReadData => {
            assert_ne!(
                rcode, 0,
                "{label}: check --read-data did not detect it\n{rd_text}"
            );
            assert!(
                mention(&rd_text),
                "{label}: check --read-data does not name {named:?}\n{rd_text}"
            );
            true
        }
        Expect::Named => {
            assert!(
                mention(&check_text),
                "{label}: check does not name {named:?}\n{check_text}"
            );
            assert!(
                check_text.contains("stale"),
                "{label}: not named as stale\n{check_text}"
            );
            assert!(restores_ok, "{label}: a restore failed\n{restore_text}");
            true
        }
        Expect::Repaired => {
            assert!(
                restores_ok,
                "{label}: a restore failed on a damaged cache\n{restore_text}"
            );
            let all = format!("{check_text}{rd_text}{restore_text}");
            let warned = all.contains("local index");
            if d != Damage::Delete && d != Damage::Swap {
                assert!(warned, "{label}: no warning about the cache\n{all}");
            }
            true
        }
        Expect::Harmless(why) => {
            assert!(
                restores_ok,
                "{label} ({why}): a restore failed\n{restore_text}"
            );
            code != 0
        }
        Expect::NotApplicable => unreachable!(),
    };
    eprintln!(
        "  {label:<28} check {code}, check --read-data {rcode}, restores {}: {}",
        if restores_ok { "all ok" } else { "refused" },
        match exp {
            Expect::Harmless(why) => format!("harmless ({why})"),
            _ if detected => "detected".to_string(),
            _ => "-".to_string(),
        }
    );
    Some(Outcome { detected, ok: true })
}

/// Every command that meets a damaged manifest names it as damaged, with its id and what to
/// do; none says "no snapshot matches".
fn commands_name_the_damaged_manifest(
    built: &Built,
    n: &TestRepo,
    id: &str,
    other_damaged: bool,
    label: &str,
) {
    let other = built
        .snapshots
        .iter()
        .map(|s| s.0.as_str())
        .find(|s| *s != id)
        .unwrap();
    let names_one =
        |err: &str| err.contains(&id[..8]) || (other_damaged && err.contains(&other[..8]));
    let dump_to = n.path("dump-out");
    let b = built.b.repo.to_str().unwrap();
    let prefix = &id[..10];
    let by_id: Vec<Vec<&str>> = vec![
        vec!["ls", prefix],
        vec!["cat", prefix, "x"],
        vec!["dump", prefix, "--out", dump_to.to_str().unwrap()],
        vec!["diff", prefix, other],
        vec!["diff", other, prefix],
        vec!["copy", "--to", b, "--key-from-repo", prefix],
        vec!["copy", "--to", b, "--key-from-repo"],
    ];
    for args in by_id {
        let (code, out, err) = n.run(&args);
        no_panic(label, &out, &err);
        assert_ne!(code, 0, "{label}: {args:?} succeeded");
        assert!(
            err.contains("is damaged") && names_one(&err) && err.contains("snap check"),
            "{label}: {args:?} does not name the damaged snapshot: {err}"
        );
        assert!(
            !err.contains("no snapshot matches"),
            "{label}: {args:?}: {err}"
        );
    }
    // Listing commands go on with the readable snapshots and name the damaged one.
    for args in [
        vec!["snapshots"],
        vec!["forget", "--keep-last", "5", "--dry-run"],
        vec!["stats"],
    ] {
        let (_, out, err) = n.run(&args);
        no_panic(label, &out, &err);
        assert!(
            err.contains(&id[..8]) && err.contains("snap check"),
            "{label}: {args:?} does not name the damaged snapshot: {err}"
        );
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_object_class_times_every_damage() {
    let built = build();
    let classes = [
        Class::Config,
        Class::KeyFile,
        Class::Pack,
        Class::Manifest,
        Class::Lock,
        Class::DeletionPlan,
        Class::IndexCache,
    ];
    let damages = [
        Damage::BitFlip,
        Damage::Truncate,
        Damage::Delete,
        Damage::Swap,
        Damage::Foreign,
    ];
    let (mut tried, mut detected, mut harmless) = (0, 0, 0);
    let mut by_kind: std::collections::BTreeMap<&str, u32> = Default::default();
    for c in classes {
        for d in damages {
            let Some(o) = run_case(&built, c, d) else {
                continue;
            };
            assert!(o.ok);
            tried += 1;
            *by_kind
                .entry(match expect(c, d) {
                    Expect::Detected => "detected by check",
                    Expect::DetectedByReadData => "detected by check --read-data only",
                    Expect::Named => "named as a stale lock",
                    Expect::Repaired => "cache repaired",
                    _ => "harmless by design",
                })
                .or_default() += 1;
            if o.detected {
                detected += 1;
            } else {
                harmless += 1;
            }
        }
    }
    eprintln!(
        "corruption matrix: {tried} cases tried, {detected} detected or repaired, {harmless} harmless by design (nothing lost), 0 panics, 0 wrong restores"
    );
    eprintln!("corruption matrix by outcome: {by_kind:?}");
}
