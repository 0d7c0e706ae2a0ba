//! The kill test: `snap backup` is SIGKILLed at random moments (early, mid-backup, near the
//! end, and right after it starts). After every kill, every listed snapshot must still restore
//! byte-exact, the repository must open without complaint, and no partial pack may be visible.
//!
//! The seed is printed; set SNAP_CRASH_SEED to replay a run.

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
    let seed: u64 = std::env::var("SNAP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                % 1_000_000_007
        });
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
