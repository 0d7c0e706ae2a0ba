//! Prune and a concurrent backup, in two processes.
//!
//! The backup deduplicates against chunks of an older snapshot, then stalls. While it stalls,
//! the older snapshot is forgotten, so those chunks look unreferenced. First prune must refuse
//! (the backup holds a shared lock). Then the backup's lock is removed, as if it had gone
//! stale (a suspended host), and prune runs anyway: it may only *condemn* the packs. The backup
//! then finishes; a second prune with no grace period deletes what is condemned. The backup's
//! snapshot must be complete: every chunk present, restore byte-exact.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// `snap backup --command` of `first`, then (once the file `go` exists) `second`, as
/// `db/all.sql`: a backup that stalls mid-stream until the test lets it go on.
fn spawn_gated_backup(repo: &TestRepo, first: &Path, go: &Path, second: &Path) -> Child {
    let script = format!(
        "cat '{}'; while [ ! -e '{}' ]; do sleep 0.05; done; cat '{}'",
        first.display(),
        go.display(),
        second.display()
    );
    repo.cmd()
        .args([
            "backup",
            "--json",
            "--command",
            &script,
            "--stdin-name",
            "db/all.sql",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn backup_survives_prune_even_when_its_lock_was_removed() {
    let repo = TestRepo::with_init_args(&["--chunk-avg-kib", "16", "--pack-size", "1"]);
    let mut rng = Rng::new(0x5eed_0f_9a3e);
    let part1 = mixed_bytes(&mut rng, 3 << 20);
    let part2 = mixed_bytes(&mut rng, 1 << 20);
    let src = repo.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("part1"), &part1).unwrap();
    std::fs::write(repo.path("part2"), &part2).unwrap();

    // S1 holds part1: the backup below will deduplicate against its packs.
    let s1 = repo.backup(&[&src]);
    let s1_id = s1["id"].as_str().unwrap().to_string();

    // Backup B streams part1, then waits for a go file, then streams part2.
    let go = repo.path("go");
    let mut b = spawn_gated_backup(&repo, &src.join("part1"), &go, &repo.path("part2"));

    // Wait until B holds its lock and has had time to push part1 through the pipeline.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(repo.repo.join("locks"))
        .map(|d| d.count())
        .unwrap_or(0)
        == 0
    {
        assert!(Instant::now() < deadline, "backup never took its lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));

    // Forget S1 (a snapshot manifest is just removed), so part1's chunks look unreferenced.
    std::fs::remove_file(repo.repo.join("snapshots").join(&s1_id)).unwrap();

    // Prune refuses while the backup's lock is live: exit code 3, naming the holder.
    let (code, _, err) = repo.run(&["prune"]);
    assert_eq!(
        code, 3,
        "prune must refuse while a backup holds its lock: {err}"
    );
    assert!(err.contains("snap backup"), "{err}");

    // The lock goes "stale" (removed by force) and prune runs during the backup.
    let (code, _, err) = repo.run(&["unlock", "--remove-all"]);
    assert_eq!(code, 0, "{err}");
    let p1 = repo.json(&["prune", "--json"]);
    let condemned = p1["report"]["packs_condemned"].as_u64().unwrap();
    assert!(
        condemned > 0,
        "part1's packs are unreferenced now and get condemned: {p1}"
    );
    assert_eq!(
        p1["report"]["packs_deleted"].as_u64().unwrap(),
        0,
        "phase 1 deletes nothing"
    );

    // The backup finishes.
    std::fs::write(&go, b"").unwrap();
    let mut out = String::new();
    b.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    b.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = b.wait().unwrap();
    assert!(status.success(), "backup failed: {err}");
    let snap: serde_json::Value = serde_json::from_str(&out).unwrap();

    // A second prune, with no grace period, deletes every condemned pack nobody needs.
    // The backup copied what it needed out of the condemned packs before writing its
    // manifest, so nothing needs resurrecting.
    let p2 = repo.json(&["prune", "--grace", "0s", "--json"]);
    assert!(
        p2["report"]["packs_deleted"].as_u64().unwrap() > 0,
        "condemned packs are deleted: {p2}"
    );
    assert_eq!(
        p2["report"]["packs_resurrected"].as_u64().unwrap(),
        0,
        "the backup rescued its chunks itself: {p2}"
    );

    // Nothing the finished backup references is missing.
    let expected = [part1.as_slice(), part2.as_slice()].concat();
    let got = repo.cat(snap["id"].as_str().unwrap(), "db/all.sql");
    assert!(
        got == expected,
        "the backup's snapshot lost data ({} vs {} bytes)",
        got.len(),
        expected.len()
    );
    // And a fresh process (no cached index) agrees, reading every chunk from its pack.
    std::fs::remove_dir_all(&repo.cache).unwrap();
    assert!(repo.cat("latest", "db/all.sql") == expected);
}

#[test]
fn prune_refuses_when_a_snapshot_cannot_be_read() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"data").unwrap();
    let s = repo.backup(&[&src]);
    let manifest = repo.repo.join("snapshots").join(s["id"].as_str().unwrap());
    let mut bytes = std::fs::read(&manifest).unwrap();
    bytes[30] ^= 1;
    std::fs::write(&manifest, bytes).unwrap();
    let packs_before = std::fs::read_dir(repo.repo.join("data")).unwrap().count();
    let (code, _, err) = repo.run(&["prune", "--grace", "0s"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("prune refuses to run") && err.contains(&s["short_id"].as_str().unwrap()[..8]),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(repo.repo.join("data")).unwrap().count(),
        packs_before
    );
    assert!(
        !repo.repo.join("prune").exists()
            || std::fs::read_dir(repo.repo.join("prune")).unwrap().count() == 0
    );
}

/// The second layer: a snapshot that references chunks in condemned packs (its manifest
/// appeared after the packs were condemned) makes phase 2 resurrect those packs.
#[test]
fn condemned_packs_needed_by_a_late_manifest_are_resurrected() {
    let repo = TestRepo::with_init_args(&["--chunk-avg-kib", "16", "--pack-size", "1"]);
    let mut rng = Rng::new(77);
    let src = repo.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let data = mixed_bytes(&mut rng, 2 << 20);
    std::fs::write(src.join("f"), &data).unwrap();
    let s1 = repo.backup(&[&src]);
    let manifest = repo.repo.join("snapshots").join(s1["id"].as_str().unwrap());
    let saved = std::fs::read(&manifest).unwrap();

    std::fs::remove_file(&manifest).unwrap();
    let p1 = repo.json(&["prune", "--json"]);
    let condemned = p1["report"]["packs_condemned"].as_u64().unwrap();
    assert!(condemned > 0, "{p1}");

    // The manifest comes back (a backup that finished late), referencing the condemned packs.
    std::fs::write(&manifest, &saved).unwrap();
    let p2 = repo.json(&["prune", "--grace", "0s", "--json"]);
    assert_eq!(p2["report"]["packs_deleted"].as_u64().unwrap(), 0, "{p2}");
    assert_eq!(
        p2["report"]["packs_resurrected"].as_u64().unwrap(),
        condemned,
        "{p2}"
    );
    assert_eq!(p2["report"]["plans_removed"].as_u64().unwrap(), 1);
    assert!(repo.cat(s1["id"].as_str().unwrap(), &format!("{}/f", stored(&src))) == data);

    // Resurrected packs are live again: a later prune leaves them alone.
    let p3 = repo.json(&["prune", "--grace", "0s", "--json"]);
    assert_eq!(p3["report"]["packs_condemned"].as_u64().unwrap(), 0, "{p3}");
    assert_eq!(p3["report"]["packs_deleted"].as_u64().unwrap(), 0, "{p3}");
}

/// The case (repo-format.md §9.2, rule W3): while a backup streams, its lock is removed
/// and two prunes with no grace period run. The first condemns the packs the backup has written
/// so far (no manifest refers to them yet), the second deletes them and their plan, so the
/// backup cannot learn of them from any plan. The backup must not record a snapshot: it checks
/// that every pack it depends on still exists just before (and after) writing its manifest.
#[test]
fn a_backup_whose_packs_a_prune_deleted_records_no_snapshot() {
    let repo = TestRepo::with_init_args(&["--chunk-avg-kib", "16", "--pack-size", "1"]);
    let mut rng = Rng::new(0x0dd_ba11);
    let part1 = mixed_bytes(&mut rng, 3 << 20);
    let part2 = mixed_bytes(&mut rng, 1 << 20);
    std::fs::write(repo.path("part1"), &part1).unwrap();
    std::fs::write(repo.path("part2"), &part2).unwrap();
    // An older snapshot that stays: prune must leave it intact.
    let kept = repo.path("kept");
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::write(kept.join("k"), mixed_bytes(&mut rng, 200_000)).unwrap();
    let s0 = repo.backup(&[&kept]);

    let go = repo.path("go");
    let b = spawn_gated_backup(&repo, &repo.path("part1"), &go, &repo.path("part2"));
    // Wait until the backup has written packs of part1.
    let deadline = Instant::now() + Duration::from_secs(60);
    let packs = || count_files(&repo.repo.join("data"));
    let before = packs();
    while packs() < before + 2 {
        assert!(Instant::now() < deadline, "the backup wrote no packs");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, _, err) = repo.run(&["unlock", "--remove-all"]);
    assert_eq!(code, 0, "{err}");
    let p1 = repo.json(&["prune", "--grace", "0s", "--json"]);
    assert!(
        p1["report"]["packs_condemned"].as_u64().unwrap() > 0,
        "{p1}"
    );
    let p2 = repo.json(&["prune", "--grace", "0s", "--json"]);
    assert!(
        p2["report"]["packs_deleted"].as_u64().unwrap() > 0,
        "the backup's packs are gone: {p2}"
    );

    std::fs::write(&go, b"").unwrap();
    let out = b.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        !out.status.success(),
        "the backup must fail\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("were deleted while it was being written")
            && stderr.contains("No snapshot was recorded"),
        "{stderr}"
    );
    let ids: Vec<String> = repo
        .snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        [s0["id"].as_str().unwrap().to_string()],
        "only the older snapshot"
    );
    let (code, out, err) = repo.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "the repository is sound\n{out}\n{err}");
}

fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.flatten()
            .map(|e| {
                if e.path().is_dir() {
                    count_files(&e.path())
                } else {
                    1
                }
            })
            .sum()
    })
}
