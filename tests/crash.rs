//! The kill tests. `snap backup` of a large dataset is SIGKILLed at random moments (early,
//! mid-backup, near the end, and right after it starts); then every command that writes —
//! backup, forget + prune (`--grace 0s`), copy to a second local repository (same key and own
//! key), key add / passwd / remove, repair index — is SIGKILLed at a random instant of its run,
//! each trial on a fresh copy of one starting state. After every kill: stale locks are removed,
//! `check --read-data` passes on every repository involved (unreferenced packs and leftover
//! temporary files are only information), the passwords that must still open do, and every
//! listed snapshot restores byte-exact, including every one that existed before (but those a
//! killed forget was asked to remove). A figure line per command: trials, kills that landed
//! mid-command, failures.
//!
//! The seed is printed; set SNAP_CRASH_SEED to replay a run. SNAP_CRASH_TRIALS=300 is the long
//! mode (trials per command; default 5); SNAP_CRASH_ONLY=KeyPasswd,Backup picks commands.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::*;

const INIT: &[&str] = &["--chunk-avg-kib", "64", "--pack-size", "1"];

/// Dataset B: ~72 MB of incompressible, compressible and mixed files plus many small ones.
fn make_dataset_b(root: &Path, seed: u64) -> u64 {
    let mut rng = Rng::new(seed);
    fs::create_dir_all(root.join("random")).unwrap();
    fs::create_dir_all(root.join("text/ünïcødé ✓")).unwrap();
    fs::create_dir_all(root.join("mixed")).unwrap();
    let mut total = 0u64;
    let mut put = |p: PathBuf, data: Vec<u8>| {
        total += data.len() as u64;
        fs::write(p, data).unwrap();
    };
    for i in 0..5 {
        put(
            root.join(format!("random/blob {i}.bin")),
            random_bytes(&mut rng, (5 << 20) + i * 77_777),
        );
    }
    for i in 0..3 {
        put(
            root.join(format!("text/ünïcødé ✓/dump {i}.sql")),
            text_bytes(&mut rng, (7 << 20) + i * 12_345),
        );
    }
    for i in 0..3 {
        put(
            root.join(format!("mixed/part #{i}.dat")),
            mixed_bytes(&mut rng, (6 << 20) + i * 4_321),
        );
    }
    for d in 0..10 {
        let dir = root.join(format!("small/d{d}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..30 {
            let n = rng.range(0, 20_000) as usize;
            let data = if f % 2 == 0 {
                random_bytes(&mut rng, n)
            } else {
                text_bytes(&mut rng, n)
            };
            put(dir.join(format!("f{f}.txt")), data);
        }
    }
    std::os::unix::fs::symlink("random/blob 0.bin", root.join("link")).unwrap();
    total
}

fn spawn_backup(repo: &TestRepo, src: &Path, log: &Path) -> Child {
    let out = fs::File::create(log).unwrap();
    repo.cmd()
        .args(["backup", "--force", "--json"])
        .arg(src)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn snap backup")
}

/// Every object under data/: either a leftover temp file (`.tmp-*`, counted) or a complete pack
/// whose name is the BLAKE3 of its bytes, stored under its first two hex digits.
fn check_packs(repo: &Path) -> (usize, usize) {
    let (mut packs, mut temps) = (0, 0);
    let data = repo.join("data");
    if !data.exists() {
        return (0, 0);
    }
    for (rel, node) in scan(&data) {
        if node.kind != Kind::File {
            assert!(
                matches!(node.kind, Kind::Dir),
                "unexpected object in data/: {}",
                rel.display()
            );
            continue;
        }
        let name = rel.file_name().unwrap().to_str().unwrap();
        if name.starts_with(".tmp-") {
            temps += 1;
            continue;
        }
        let dir = rel.parent().unwrap().to_str().unwrap();
        assert!(
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "odd name in data/: {}",
            rel.display()
        );
        assert_eq!(dir, &name[..2], "pack {name} in the wrong directory");
        let bytes = fs::read(data.join(&rel)).unwrap();
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            name,
            "pack {name} is partial or damaged"
        );
        assert!(bytes.ends_with(b"SNAPPAK1"), "pack {name} lacks the footer");
        packs += 1;
    }
    (packs, temps)
}

/// Past this much test time, snapshots of B already restored in an earlier round are not
/// restored again (keeps the worst case, many completed runs, bounded).
const RECHECK_BUDGET: Duration = Duration::from_secs(40);

/// After a kill: the repository opens cleanly, S1 is listed, and every listed snapshot restores
/// byte-exact (S1 → A, anything else → B).
fn verify(
    repo: &TestRepo,
    s1: &str,
    a: &Path,
    b: &Path,
    round: &str,
    checked: &mut Checked,
) -> usize {
    let (code, out, err) = repo.run(&["snapshots", "--json"]);
    assert_eq!(code, 0, "{round}: snapshots failed after a kill:\n{err}");
    assert!(
        !err.contains("warning"),
        "{round}: opening warned after a kill:\n{err}"
    );
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = list.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&s1), "{round}: S1 is gone: {ids:?}");
    // The text listing works too.
    let text = repo.ok(&["snapshots"]);
    assert!(text.contains(&s1[..8]), "{round}: {text}");
    for s in &list {
        let id = s["id"].as_str().unwrap();
        let src = if id == s1 { a } else { b };
        assert_eq!(
            s["paths"],
            serde_json::json!([src.to_str().unwrap()]),
            "{round}: unexpected snapshot {s}"
        );
        if id != s1 && checked.done.contains(id) && checked.started.elapsed() > RECHECK_BUDGET {
            continue;
        }
        let target = repo.path(&format!("verify-{round}-{}", &id[..8]));
        repo.restore(id, &target, &[]);
        assert_trees_equal(src, &restored_path(&target, src));
        fs::remove_dir_all(&target).unwrap();
        checked.done.insert(id.to_string());
    }
    list.len()
}

struct Checked {
    started: Instant,
    done: std::collections::HashSet<String>,
}

#[test]
fn killed_backups_never_damage_the_repository() {
    let started = Instant::now();
    let seed = seed_from_env("SNAP_CRASH_SEED");
    println!("crash test seed: {seed} (replay with SNAP_CRASH_SEED={seed})");
    let mut rng = Rng::new(seed);
    let mut checked = Checked {
        started,
        done: Default::default(),
    };

    let repo = TestRepo::with_init_args(INIT);
    let a = repo.path("A");
    gen_tree(
        &a,
        1,
        &TreeSpec {
            large_files: 1,
            large_size: 1 << 20,
            ..TreeSpec::default()
        },
    );
    let b = repo.path("B");
    let b_bytes = make_dataset_b(&b, 2);
    println!("dataset B: {:.1} MB", b_bytes as f64 / 1e6);

    let s1 = repo.backup(&[&a])["id"].as_str().unwrap().to_string();

    // How long does a full backup of B take here? Measure in a scratch repository, so that the
    // kills can be spread over the whole run.
    let scratch = TestRepo::with_init_args(INIT);
    let t0 = Instant::now();
    let calib = scratch.backup(&[&b]);
    let full = t0.elapsed();
    assert!(
        calib["summary"]["packs_new"].as_u64().unwrap() > 20,
        "expected many packs: {calib}"
    );
    drop(scratch);
    println!("a full backup of B takes {full:?}");

    // A leftover of a crash in the middle of a put: a partial pack under a temp name. It must
    // never be taken for a pack.
    let leftover_dir = repo.repo.join("data/ab");
    fs::create_dir_all(&leftover_dir).unwrap();
    fs::write(
        leftover_dir.join(".tmp-crashed"),
        b"partial pack bytes without a trailer",
    )
    .unwrap();

    // Kill points as fractions of the expected run time: immediately, a few ms in, then late,
    // middle and early in turn, randomly within each band. Data stored by killed runs is
    // deduplicated by later ones, so runs get faster: the first banded kill (late, while packs
    // are still being written) uses the calibrated time, later ones the time of the last run
    // that finished on its own.
    let bands = [(0.6, 0.95), (0.25, 0.6), (0.02, 0.25)];
    let mut plan: Vec<Option<(f64, f64)>> = vec![None, None];
    for i in 0..10 {
        plan.push(Some(bands[i % 3]));
    }
    let mut estimate = full;
    let mut completed_early = 0;
    let mut max_temps = 0;
    for (i, band) in plan.iter().enumerate() {
        let delay = match band {
            None if i == 0 => Duration::ZERO,
            None => Duration::from_millis(rng.range(1, 30)),
            Some((lo, hi)) => {
                estimate.mul_f64(lo + (hi - lo) * (rng.range(0, 1000) as f64 / 1000.0))
            }
        };
        let round = format!("kill{i}");
        let log = repo.path(&format!("{round}.log"));
        let t = Instant::now();
        let mut child = spawn_backup(&repo, &b, &log);
        let mut finished: Option<Duration> = None;
        while t.elapsed() < delay {
            if child.try_wait().unwrap().is_some() {
                finished = Some(t.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(2).min(delay.saturating_sub(t.elapsed())));
        }
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        let log_text = fs::read_to_string(&log).unwrap_or_default();
        // It may also have exited in the instant between the last poll and the kill.
        if finished.is_none() && exit_code(status) != -9 {
            finished = Some(t.elapsed());
        }
        if let Some(took) = finished {
            completed_early += 1;
            estimate = took;
            assert_eq!(
                exit_code(status),
                0,
                "{round}: backup failed on its own:\n{log_text}"
            );
        }
        let (packs, temps) = check_packs(&repo.repo);
        max_temps = max_temps.max(temps);
        let n = verify(&repo, &s1, &a, &b, &round, &mut checked);
        println!(
            "{round}: killed after {delay:?} ({}); {packs} packs, {temps} temp files, {n} snapshots",
            match finished {
                Some(took) => format!("had finished after {took:?}"),
                None => "while running".into(),
            }
        );
    }
    println!(
        "{completed_early} of {} backups finished before their kill; at most {max_temps} temp files",
        plan.len()
    );

    // Finally a backup of B that runs to completion restores byte-exact, and so does S1.
    let done = repo.backup(&[&b]);
    assert_eq!(done["summary"]["total_bytes"].as_u64().unwrap(), b_bytes);
    let id = done["id"].as_str().unwrap();
    let target = repo.path("final");
    repo.restore(id, &target, &[]);
    assert_trees_equal(&b, &restored_path(&target, &b));
    fs::remove_dir_all(&target).unwrap();
    let n = verify(&repo, &s1, &a, &b, "final", &mut checked);
    assert!(n >= 2);
    let (packs, temps) = check_packs(&repo.repo);
    assert!(packs > 20);
    assert!(temps >= 1 && leftover_dir.join(".tmp-crashed").exists());
    println!("crash test done in {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Every command that writes: SIGKILL at random instants, then check, passwords and restores.

/// Trials per command: `SNAP_CRASH_TRIALS` (the long mode, e.g. 300), else a short pass.
fn trials_per_command() -> usize {
    std::env::var("SNAP_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

/// `SNAP_CRASH_ONLY=Backup,KeyPasswd` limits the kill harness to those commands (for replays).
fn selected(what: Killed) -> bool {
    match std::env::var("SNAP_CRASH_ONLY") {
        Ok(list) => list.split(',').any(|w| w.trim() == format!("{what:?}")),
        Err(_) => true,
    }
}

const OTHER_PW: &str = "a second password for the same key";
const NEW_PW: &str = "the password after key passwd";
const DST_PW: &str = "the copy destination's own password";

/// The starting state every trial copies: a source repository with snapshots S1 (A), S2 (B),
/// S3 (C), a deletion plan condemning the packs of a forgotten S0 (so `prune --grace 0s` deletes
/// in phase 2), a second key file (OTHER_PW); two copy destinations holding S1 (one sharing
/// the key, one with its own), and the trees the snapshots were taken of.
struct Template {
    src: TestRepo,
    same_key: TestRepo,
    own_key: TestRepo,
    /// Snapshot id → the tree it was taken of (source repository).
    trees: std::collections::HashMap<String, PathBuf>,
    /// S1, S2, S3, oldest first.
    ids: Vec<String>,
    /// A tree no snapshot holds yet (the killed backups take it).
    fresh: PathBuf,
    other_key: String,
    pw_files: std::collections::HashMap<&'static str, PathBuf>,
}

fn small_tree(root: &Path, seed: u64, large: usize) {
    gen_tree(
        root,
        seed,
        &TreeSpec {
            max_depth: 2,
            entries: (2, 5),
            large_files: large,
            large_size: 1 << 20,
            small_max: 8 << 10,
        },
    );
}

fn make_template() -> Template {
    let src = TestRepo::with_init_args(INIT);
    let mut pw_files = std::collections::HashMap::new();
    for pw in [PASSWORD, OTHER_PW, NEW_PW, DST_PW] {
        let f = src.path(&format!("pw-{}", pw_files.len()));
        fs::write(&f, format!("{pw}\n")).unwrap();
        pw_files.insert(pw, f);
    }
    let mut trees = std::collections::HashMap::new();
    let x = src.path("X");
    small_tree(&x, 10, 3);
    let s0 = src.backup(&[&x])["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for (i, name) in ["A", "B", "C"].into_iter().enumerate() {
        let t = src.path(name);
        small_tree(&t, 11 + i as u64, 2 + i);
        if i > 0 {
            // Share some content with A, so that forgetting S1 leaves packs half garbage.
            fs::copy(
                src.path("A").join("ünïcødé ✓ #1 %20 dir/x"),
                t.join("from A"),
            )
            .ok();
        }
        let id = src.backup(&[&t])["id"].as_str().unwrap().to_string();
        trees.insert(id.clone(), t);
        ids.push(id);
    }
    src.ok(&["forget", "--group-by", "host", "--keep-last", "3"]);
    assert!(!src.snapshot_ids().contains(&s0));
    src.ok(&["prune"]); // condemns S0's packs; a later `--grace 0s` deletes them
    src.ok(&[
        "key",
        "add",
        "--kdf-memory-kib",
        "64",
        "--kdf-iterations",
        "1",
    ]
    .iter()
    .copied()
    .chain(["--new-password-file", pw_files[OTHER_PW].to_str().unwrap()])
    .collect::<Vec<_>>());
    let keys = src.json(&["key", "list", "--json"]);
    let other_key = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] != serde_json::json!(true))
        .map(|k| k["id"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no second key: {keys}"));
    let same_key = TestRepo::uninit();
    same_key.ok(&[
        "init",
        "--kdf-memory-kib",
        "64",
        "--kdf-iterations",
        "1",
        "--copy-key-from",
        src.repo.to_str().unwrap(),
    ]);
    let own_key = TestRepo {
        password: DST_PW.into(),
        ..TestRepo::uninit()
    };
    own_key.init(&["--chunk-avg-kib", "32", "--pack-size", "1"]);
    let copy_s1 = |dst: &TestRepo, how: &[&str]| {
        let mut args = vec!["copy", &ids[0], "--to", dst.repo.to_str().unwrap()];
        args.extend_from_slice(how);
        src.ok(&args);
    };
    copy_s1(&same_key, &["--key-from-repo"]);
    copy_s1(
        &own_key,
        &["--to-password-file", pw_files[DST_PW].to_str().unwrap()],
    );
    let fresh = src.path("D");
    small_tree(&fresh, 20, 4);
    Template {
        src,
        same_key,
        own_key,
        trees,
        ids,
        fresh,
        other_key,
        pw_files,
    }
}

/// The commands killed, each a sequence of `snap` runs (forget, then prune).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Killed {
    Backup,
    ForgetPrune,
    CopySameKey,
    CopyOwnKey,
    KeyAdd,
    KeyPasswd,
    KeyRemove,
    RepairIndex,
}

const KILLED: [Killed; 8] = [
    Killed::Backup,
    Killed::ForgetPrune,
    Killed::CopySameKey,
    Killed::CopyOwnKey,
    Killed::KeyAdd,
    Killed::KeyPasswd,
    Killed::KeyRemove,
    Killed::RepairIndex,
];

/// One trial's private copies of the template's repositories (and their caches).
struct Trial {
    src: TestRepo,
    same_key: TestRepo,
    own_key: TestRepo,
}

fn clone_repo(t: &TestRepo) -> TestRepo {
    let n = TestRepo {
        password: t.password.clone(),
        ..TestRepo::uninit()
    };
    for (from, to) in [(&t.repo, &n.repo), (&t.cache, &n.cache)] {
        if from.exists() {
            fs::create_dir_all(to).unwrap();
            copy_tree(from, to);
        }
    }
    n
}

impl Trial {
    fn new(t: &Template) -> Trial {
        Trial {
            src: clone_repo(&t.src),
            same_key: clone_repo(&t.same_key),
            own_key: clone_repo(&t.own_key),
        }
    }

    /// The `snap` runs of `what`, in order.
    fn steps(&self, t: &Template, what: Killed) -> Vec<std::process::Command> {
        let cmd = |args: &[&str]| {
            let mut c = self.src.cmd();
            c.args(args);
            c
        };
        let pw = |p: &str| t.pw_files[p].to_str().unwrap().to_string();
        let kdf = ["--kdf-memory-kib", "8192", "--kdf-iterations", "2"];
        let new_key = |sub: &str| {
            let mut c = cmd(&["key", sub, "--new-password-file", &pw(NEW_PW)]);
            c.args(kdf);
            c
        };
        match what {
            Killed::Backup => vec![cmd(&["backup", "--force", t.fresh.to_str().unwrap()])],
            Killed::ForgetPrune => vec![
                cmd(&["forget", "--group-by", "host", "--keep-last", "2"]),
                cmd(&["prune", "--grace", "0s"]),
            ],
            Killed::CopySameKey => vec![cmd(&[
                "copy",
                "--to",
                self.same_key.repo.to_str().unwrap(),
                "--key-from-repo",
            ])],
            Killed::CopyOwnKey => vec![cmd(&[
                "copy",
                "--to",
                self.own_key.repo.to_str().unwrap(),
                "--to-password-file",
                &pw(DST_PW),
            ])],
            Killed::KeyAdd => vec![new_key("add")],
            Killed::KeyPasswd => vec![new_key("passwd")],
            Killed::KeyRemove => vec![cmd(&["key", "remove", &t.other_key])],
            Killed::RepairIndex => vec![cmd(&["repair", "index"])],
        }
    }
}

/// Run `steps` one after the other, SIGKILLing the one running `delay` after the first began.
/// A step that ends on its own must succeed.
fn run_killed(
    steps: Vec<std::process::Command>,
    delay: Duration,
    log: &Path,
) -> Result<Run, String> {
    let t = Instant::now();
    let n = steps.len();
    for (i, mut c) in steps.into_iter().enumerate() {
        let out = fs::File::create(log).unwrap();
        let mut child = c
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn snap");
        while t.elapsed() < delay && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1).min(delay.saturating_sub(t.elapsed())));
        }
        let _ = child.kill(); // SIGKILL (a no-op if it already exited)
        let code = exit_code(child.wait().unwrap());
        match code {
            -9 => return Ok(Run::Killed),
            0 if t.elapsed() >= delay && i + 1 < n => return Ok(Run::Between),
            0 => {}
            _ => {
                let text = fs::read_to_string(log).unwrap_or_default();
                return Err(format!("step {i} failed on its own (exit {code}):\n{text}"));
            }
        }
    }
    Ok(Run::Finished(t.elapsed()))
}

/// How a killed run ended.
#[derive(Debug, PartialEq)]
enum Run {
    /// The kill landed while a step ran.
    Killed,
    /// The instant fell between two steps (the later ones were not started).
    Between,
    /// Every step had finished, taking this long.
    Finished(Duration),
}

/// `snap` on `r` with password `pw`.
fn run_as(r: &TestRepo, pw: &str, args: &[&str]) -> (i32, String, String) {
    output_parts(
        r.cmd()
            .env("SNAP_PASSWORD", pw)
            .args(args)
            .output()
            .unwrap(),
    )
}

fn opens(r: &TestRepo, pw: &str) -> bool {
    run_as(r, pw, &["snapshots", "--json"]).0 == 0
}

/// What a repository must hold after a kill.
struct Expect<'a> {
    /// Snapshot id (or the id it was copied from) → the tree it holds.
    trees: &'a std::collections::HashMap<String, PathBuf>,
    /// Snapshots (ids, or origins for copies) that must still be listed.
    required: Vec<String>,
    /// A tree a snapshot listed under no known id may hold (the killed backup's).
    fresh: Option<&'a Path>,
}

/// Stale locks removed, `check --read-data` passes (garbage is only information), and every
/// listed snapshot restores byte-exact; the required ones are listed.
fn verify_killed(r: &TestRepo, pw: &str, want: &Expect, label: &str) -> Result<(), String> {
    let (code, out, err) = run_as(r, pw, &["unlock"]);
    if code != 0 {
        return Err(format!("{label}: unlock exited {code}: {out}{err}"));
    }
    let (code, out, err) = run_as(r, pw, &["check", "--read-data", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let odd = report["info"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f["kind"] == "unexpected_object");
    if code != 0 || report["problems"] != serde_json::json!([]) || odd {
        return Err(format!(
            "{label}: check --read-data exited {code}:\n{out}\n{err}"
        ));
    }
    let (code, out, err) = run_as(r, pw, &["snapshots", "--json"]);
    if code != 0 || err.contains("warning") {
        return Err(format!("{label}: snapshots exited {code}:\n{err}"));
    }
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let mut seen = Vec::new();
    for s in &list {
        let id = s["id"].as_str().unwrap().to_string();
        let origin = s["copied_from"].as_str().unwrap_or(&id).to_string();
        let tree = match (want.trees.get(&origin), want.fresh) {
            (Some(t), _) => t.clone(),
            (None, Some(f)) if s["paths"] == serde_json::json!([f.to_str().unwrap()]) => {
                f.to_path_buf()
            }
            _ => return Err(format!("{label}: unexpected snapshot {s}")),
        };
        restore_exact(r, pw, &id, &tree).map_err(|e| format!("{label}: {id}: {e}"))?;
        seen.push(origin);
    }
    match want.required.iter().find(|id| !seen.contains(id)) {
        Some(gone) => Err(format!("{label}: snapshot {gone} is gone: {seen:?}")),
        None => Ok(()),
    }
}

fn restore_exact(r: &TestRepo, pw: &str, id: &str, tree: &Path) -> Result<(), String> {
    let target = r.path(&format!("restore-{}", &id[..12]));
    let t = target.to_str().unwrap();
    let (code, out, err) = run_as(r, pw, &["restore", id, "--target", t]);
    if code != 0 {
        return Err(format!("restore exited {code}: {out}{err}"));
    }
    let restored = restored_path(&target, tree);
    let same = std::panic::catch_unwind(|| assert_trees_equal(tree, &restored));
    fs::remove_dir_all(&target).unwrap();
    same.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "trees differ".into())
    })
}

#[derive(Default)]
struct Figures {
    trials: usize,
    landed: usize,
    failures: Vec<String>,
    /// Outcomes worth counting (which passwords open after a killed key change).
    notes: std::collections::BTreeMap<String, usize>,
}

/// Which password opens the source after a killed `what` (failing if none that must does).
fn surviving_password(
    t: &Template,
    r: &TestRepo,
    what: Killed,
    fig: &mut Figures,
) -> Result<&'static str, String> {
    let (old, new, other) = (opens(r, PASSWORD), opens(r, NEW_PW), opens(r, OTHER_PW));
    let note = match what {
        Killed::KeyAdd => Some(format!("new password opens: {new}")),
        Killed::KeyPasswd => Some(format!("old opens: {old}, new opens: {new}")),
        Killed::KeyRemove => Some(format!("removed password still opens: {other}")),
        _ => None,
    };
    if let Some(n) = note {
        *fig.notes.entry(n).or_default() += 1;
    }
    if what != Killed::KeyRemove && !other {
        return Err(format!(
            "a key file the command did not touch ({}) no longer opens",
            t.other_key
        ));
    }
    match (old, new, what) {
        (true, _, _) => Ok(PASSWORD),
        (false, true, Killed::KeyPasswd) => Ok(NEW_PW),
        (false, false, Killed::KeyPasswd) => {
            Err("neither the old nor the new password opens".into())
        }
        _ => Err("the password no longer opens the repository".into()),
    }
}

fn check_trial(
    t: &Template,
    trial: &Trial,
    what: Killed,
    label: &str,
    fig: &mut Figures,
) -> Result<(), String> {
    let pw = surviving_password(t, &trial.src, what, fig).map_err(|e| format!("{label}: {e}"))?;
    let forgotten = if what == Killed::ForgetPrune { 1 } else { 0 };
    let src = Expect {
        trees: &t.trees,
        required: t.ids[forgotten..].to_vec(),
        fresh: (what == Killed::Backup).then_some(t.fresh.as_path()),
    };
    verify_killed(&trial.src, pw, &src, &format!("{label}, source"))?;
    let dst = match what {
        Killed::CopySameKey => (&trial.same_key, PASSWORD),
        Killed::CopyOwnKey => (&trial.own_key, DST_PW),
        _ => return Ok(()),
    };
    let want = Expect {
        trees: &t.trees,
        required: t.ids[..1].to_vec(),
        fresh: None,
    };
    verify_killed(dst.0, dst.1, &want, &format!("{label}, destination"))
}

#[test]
fn killed_commands_never_damage_the_repositories() {
    let started = Instant::now();
    let seed = seed_from_env("SNAP_CRASH_SEED");
    println!("kill harness seed: {seed} (replay with SNAP_CRASH_SEED={seed})");
    let mut rng = Rng::new(seed);
    let trials = trials_per_command();
    let t = make_template();
    let mut failures = Vec::new();
    for what in KILLED.into_iter().filter(|w| selected(*w)) {
        // Calibration: the command run to completion, verified like a kill.
        let trial = Trial::new(&t);
        let log = trial.src.path("kill.log");
        let run = run_killed(trial.steps(&t, what), Duration::from_secs(3600), &log);
        let Ok(Run::Finished(mut full)) = run else {
            panic!("{what:?} run to completion: {run:?}");
        };
        // From a clean copy, nothing is worth a warning (e.g. an index cache taken for damaged).
        let text = fs::read_to_string(&log).unwrap();
        assert!(!text.contains("warning"), "{what:?} warned:\n{text}");
        let mut fig = Figures::default();
        check_trial(
            &t,
            &trial,
            what,
            &format!("{what:?} to completion"),
            &mut fig,
        )
        .unwrap();
        fig.notes.clear();
        drop(trial);
        for i in 0..trials {
            let trial = Trial::new(&t);
            let delay = full.mul_f64(rng.range(0, 1100) as f64 / 1000.0);
            let label = format!("{what:?} #{i} killed after {delay:?}");
            let log = trial.src.path("kill.log");
            let outcome = run_killed(trial.steps(&t, what), delay, &log).and_then(|run| {
                match run {
                    Run::Killed => fig.landed += 1,
                    // Runs time differently on a busy machine: aim at the latest one.
                    Run::Finished(took) => full = took,
                    Run::Between => {}
                }
                check_trial(&t, &trial, what, &label, &mut fig)
            });
            fig.trials += 1;
            if let Err(e) = outcome {
                fig.failures.push(e);
            }
        }
        let notes: Vec<String> = fig.notes.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        println!(
            "kill figures: {what:?} (runs {full:?}): {} trials, {} killed mid-command, {} failures{}",
            fig.trials,
            fig.landed,
            fig.failures.len(),
            if notes.is_empty() {
                String::new()
            } else {
                format!("; {}", notes.join(", "))
            }
        );
        failures.extend(fig.failures);
    }
    println!("kill harness done in {:?}", started.elapsed());
    assert!(
        failures.is_empty(),
        "seed {seed}: {} failures:\n{}",
        failures.len(),
        failures.join("\n---\n")
    );
}
