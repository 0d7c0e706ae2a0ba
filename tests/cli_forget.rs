//! `snap forget` end to end: the real binary against a real repository. Snapshots at chosen
//! times are made through the library (`BackupOptions.time`), against the same repository
//! directory; everything else goes through the CLI. Forget runs with `TZ=UTC`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use snap::backend::LocalBackend;
use snap::ops::{BackupInput, BackupOptions, backup};
use snap::repo::Repository;
use snap::source::ReaderSource;
use support::*;

/// The repository opened through the library, with its own index cache (so it never shares
/// the index file with a running `snap`).
fn lib_repo(r: &TestRepo) -> Repository {
    Repository::open(
        Arc::new(LocalBackend::new(&r.repo)),
        r.password.as_bytes(),
        &r.path("lib-cache"),
    )
    .expect("open repository")
}

fn opts(host: &str, time: &str, tags: &[&str]) -> BackupOptions {
    BackupOptions {
        host: Some(host.into()),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        time: Some(chrono::DateTime::parse_from_rfc3339(time).expect("test time")),
        ..Default::default()
    }
}

/// A stream snapshot of `data` stored as `name`, taken at `time`; returns its full id.
fn stream_at(
    repo: &Repository,
    host: &str,
    name: &str,
    time: &str,
    tags: &[&str],
    data: &[u8],
) -> String {
    let src = ReaderSource::new(name, std::io::Cursor::new(data.to_vec()));
    let out = backup(
        repo,
        BackupInput::Stream(Box::new(src)),
        &opts(host, time, tags),
        &snap::progress::NoProgress,
    )
    .expect("backup");
    out.snapshot.id.to_hex()
}

/// A files snapshot of `path`, taken at `time`; returns its full id.
fn files_at(repo: &Repository, host: &str, path: &Path, time: &str) -> String {
    let out = backup(
        repo,
        BackupInput::Paths(vec![path.to_path_buf()]),
        &opts(host, time, &[]),
        &snap::progress::NoProgress,
    )
    .expect("backup");
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    out.snapshot.id.to_hex()
}

/// `time` minus `days` days and `hours` hours, as RFC 3339.
fn before(time: &str, days: i64, hours: i64) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(time).unwrap()
        - chrono::TimeDelta::days(days)
        - chrono::TimeDelta::hours(hours);
    t.to_rfc3339()
}

/// `snap forget args…` with TZ=UTC; (exit code, stdout, stderr).
fn forget(r: &TestRepo, args: &[&str]) -> (i32, String, String) {
    output_parts(
        r.cmd()
            .env("TZ", "UTC")
            .arg("forget")
            .args(args)
            .output()
            .expect("spawn snap"),
    )
}

fn forget_ok(r: &TestRepo, args: &[&str]) -> String {
    let (code, out, err) = forget(r, args);
    assert_eq!(
        code, 0,
        "snap forget {args:?} exited {code}\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

fn forget_json(r: &TestRepo, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = forget_ok(r, &all);
    match serde_json::from_str(&out) {
        Ok(Value::Array(v)) => v,
        other => panic!("forget --json is not an array: {other:?}\n{out}"),
    }
}

fn ids_left(r: &TestRepo) -> BTreeSet<String> {
    r.snapshot_ids().into_iter().collect()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// Every file under the repository (except locks) with its size and content hash.
fn repo_listing(r: &TestRepo) -> BTreeMap<PathBuf, (u64, blake3::Hash)> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(&r.repo) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(&r.repo).unwrap().to_path_buf();
        if e.file_type().is_file() && !rel.starts_with("locks") {
            let data = fs::read(e.path()).unwrap();
            out.insert(rel, (data.len() as u64, blake3::hash(&data)));
        }
    }
    out
}

fn ids_of(group: &Value, list: &str) -> BTreeSet<String> {
    group[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

const NEWEST: &str = "2024-06-30T02:00:00+00:00";

#[test]
fn default_policy_is_keep_within_21d_of_the_newest_snapshot() {
    let r = TestRepo::new();
    let repo = lib_repo(&r);
    // All in 2024: were "within" measured from now, everything would go.
    let mk = |days, hours, n: u8| {
        stream_at(
            &repo,
            "db-1",
            "db/shop.sql",
            &before(NEWEST, days, hours),
            &[],
            &[n; 1000],
        )
    };
    let newest = mk(0, 0, 1);
    let day1 = mk(1, 0, 2);
    let almost = mk(20, 23, 3);
    let boundary = mk(21, 0, 4); // exactly 21 days older than the newest: removed
    let older = mk(22, 0, 5);
    let old = mk(90, 0, 6);
    assert_eq!(ids_left(&r).len(), 6);

    let out = forget_ok(&r, &[]);
    assert!(
        out.contains(
            "policy: keep-within 21d (the default retention, as no --keep-* option was given)"
        ),
        "{out}"
    );
    assert_eq!(ids_left(&r), set(&[&newest, &day1, &almost]));
    for gone in [&boundary, &older, &old] {
        assert!(
            !r.repo.join("snapshots").join(gone).exists(),
            "manifest {gone} still present"
        );
        assert!(out.contains(&gone[..8]), "removed {gone} not shown:\n{out}");
    }
    for kept in [&newest, &day1, &almost] {
        let line = out
            .lines()
            .find(|l| l.contains(&kept[..8]))
            .unwrap_or_else(|| panic!("{kept} not shown:\n{out}"));
        assert!(line.ends_with("within 21d"), "{line}");
    }
    assert!(
        out.contains("removed 3 snapshots, kept 3 (1 group)"),
        "{out}"
    );

    // Again: nothing more to remove (the newest did not change).
    let out = forget_ok(&r, &[]);
    assert!(out.contains("removed 0 snapshots, kept 3"), "{out}");
    assert_eq!(ids_left(&r).len(), 3);
}

#[test]
fn dry_run_changes_nothing_and_prints_the_plan() {
    let r = TestRepo::new();
    let repo = lib_repo(&r);
    let ids: Vec<String> = (0..4)
        .map(|i| {
            stream_at(
                &repo,
                "h",
                "db/x.sql",
                &before(NEWEST, i * 30, 0),
                &[],
                &[i as u8; 500],
            )
        })
        .collect();
    let before_listing = repo_listing(&r);

    let out = forget_ok(&r, &["--dry-run", "--keep-last", "1"]);
    assert!(out.contains("policy: keep-last 1\n"), "{out}");
    assert!(out.contains("would remove 3 snapshots:"), "{out}");
    assert!(
        out.contains("dry run: would remove 3 snapshots and keep 1 (1 group); nothing was changed"),
        "{out}"
    );
    for id in &ids[1..] {
        assert!(out.contains(&id[..8]), "{out}");
    }
    let groups = forget_json(&r, &["--dry-run", "--keep-last", "1"]);
    assert_eq!(
        ids_of(&groups[0], "remove"),
        set(&[&ids[1], &ids[2], &ids[3]])
    );
    // Quiet does not silence a dry run: its output is the point.
    let (code, out, _) = forget(&r, &["-q", "--dry-run", "--keep-last", "1"]);
    assert_eq!(code, 0);
    assert!(out.contains("would remove 3 snapshots"), "{out}");

    assert_eq!(
        repo_listing(&r),
        before_listing,
        "a dry run changed the repository"
    );
    assert_eq!(ids_left(&r).len(), 4);
    assert!(
        fs::read_dir(r.repo.join("locks"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "lock left behind"
    );
}

#[test]
fn json_output_shape() {
    let r = TestRepo::new();
    let repo = lib_repo(&r);
    let src = r.path("srv");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a.txt"), b"hello").unwrap();
    let f_old = files_at(&repo, "db-1", &src, "2024-06-01T10:00:00Z");
    let f_new = files_at(&repo, "db-1", &src, "2024-06-02T10:00:00Z");
    let d1 = stream_at(
        &repo,
        "db-1",
        "db/shop.sql",
        "2024-06-01T09:00:00+02:00",
        &["env=prod"],
        b"one",
    );
    let d2 = stream_at(
        &repo,
        "db-1",
        "db/shop.sql",
        "2024-06-02T09:00:00+02:00",
        &["env=prod"],
        b"two",
    );
    let d3 = stream_at(
        &repo,
        "db-1",
        "db/shop.sql",
        "2024-06-03T09:00:00+02:00",
        &["env=prod"],
        b"three",
    );

    let groups = forget_json(&r, &["--keep-last", "2"]);
    assert_eq!(groups.len(), 2, "{groups:?}");
    let src_str = src.to_str().unwrap();
    // Groups are sorted by host, then paths ("/…" sorts before "db/…").
    let (gf, gd) = (&groups[0], &groups[1]);
    for g in &groups {
        let keys: BTreeSet<&str> = g.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["host", "paths", "keep", "remove"]),
            "{g}"
        );
        assert_eq!(g["host"], "db-1");
    }
    assert_eq!(gf["paths"], serde_json::json!([src_str]));
    assert_eq!(gd["paths"], serde_json::json!(["db/shop.sql"]));
    assert_eq!(ids_of(gf, "keep"), set(&[&f_old, &f_new]));
    assert!(gf["remove"].as_array().unwrap().is_empty());
    assert_eq!(ids_of(gd, "keep"), set(&[&d2, &d3]));
    assert_eq!(ids_of(gd, "remove"), set(&[&d1]));
    // Entries: oldest first, with full and short id, the recorded time and the reasons.
    let k = &gd["keep"][0];
    assert_eq!(k["id"], d2.as_str());
    assert_eq!(k["short_id"], &d2[..8]);
    assert_eq!(k["time"], "2024-06-02T09:00:00+02:00");
    assert_eq!(k["reasons"], serde_json::json!(["last"]));
    assert_eq!(k["tags"], serde_json::json!(["env=prod"]));
    assert_eq!(k["host"], "db-1");
    assert_eq!(gd["keep"][1]["id"], d3.as_str());
    assert_eq!(gd["remove"][0]["reasons"], serde_json::json!([]));
    assert_eq!(gd["remove"][0]["time"], "2024-06-01T09:00:00+02:00");
    // Not a dry run: the removal happened.
    assert_eq!(ids_left(&r), set(&[&f_old, &f_new, &d2, &d3]));

    // Reasons accumulate; group-by none gives null host and paths.
    let groups = forget_json(
        &r,
        &[
            "--dry-run",
            "--group-by",
            "none",
            "--keep-last",
            "1",
            "--keep-daily",
            "2",
            "--keep-tag",
            "env=prod",
        ],
    );
    assert_eq!(groups.len(), 1);
    assert!(
        groups[0]["host"].is_null() && groups[0]["paths"].is_null(),
        "{}",
        groups[0]
    );
    let reasons: BTreeMap<String, Vec<String>> = groups[0]["keep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let rs = s["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect();
            (s["id"].as_str().unwrap().to_string(), rs)
        })
        .collect();
    // UTC days: d3 07:00 on 06-03, d2 07:00 and f_new 10:00 on 06-02.
    assert_eq!(reasons[&d3], vec!["last", "daily", "tag env=prod"]);
    assert_eq!(reasons[&f_new], vec!["daily"]);
    assert_eq!(reasons[&d2], vec!["tag env=prod"]);
    assert_eq!(ids_of(&groups[0], "remove"), set(&[&f_old]));
}

#[test]
fn keep_tag_protects_old_snapshots() {
    let r = TestRepo::new();
    let repo = lib_repo(&r);
    let tagged = stream_at(
        &repo,
        "h",
        "db/x.sql",
        &before(NEWEST, 400, 0),
        &["keep=forever"],
        b"a",
    );
    let plain = stream_at(&repo, "h", "db/x.sql", &before(NEWEST, 100, 0), &[], b"b");
    let other_tag = stream_at(
        &repo,
        "h",
        "db/x.sql",
        &before(NEWEST, 50, 0),
        &["env=prod"],
        b"c",
    );
    let newest = stream_at(&repo, "h", "db/x.sql", NEWEST, &[], b"d");

    let groups = forget_json(&r, &["--keep-last", "1", "--keep-tag", "keep=forever"]);
    assert_eq!(ids_of(&groups[0], "keep"), set(&[&tagged, &newest]));
    assert_eq!(
        groups[0]["keep"][0]["reasons"],
        serde_json::json!(["tag keep=forever"])
    );
    assert_eq!(ids_left(&r), set(&[&tagged, &newest]));
    assert!(!ids_left(&r).contains(&plain) && !ids_left(&r).contains(&other_tag));

    // Even a policy that would keep only the newest leaves the tagged one alone.
    let out = forget_ok(&r, &["--keep-within", "1h", "--keep-tag", "keep=forever"]);
    assert!(out.contains("tag keep=forever"), "{out}");
    assert_eq!(ids_left(&r), set(&[&tagged, &newest]));
}

#[test]
fn host_and_tag_filters_leave_other_snapshots_alone() {
    let r = TestRepo::new();
    let repo = lib_repo(&r);
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in 0..3 {
        a.push(stream_at(
            &repo,
            "host-a",
            "db/x.sql",
            &before(NEWEST, 10 * i, 0),
            &[],
            &[i as u8; 100],
        ));
        b.push(stream_at(
            &repo,
            "host-b",
            "db/x.sql",
            &before(NEWEST, 10 * i, 1),
            &[],
            &[10 + i as u8; 100],
        ));
    }
    let groups = forget_json(&r, &["--host", "host-a", "--keep-last", "1"]);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["host"], "host-a");
    assert_eq!(ids_left(&r), set(&[&a[0], &b[0], &b[1], &b[2]]));

    // --tag: only snapshots with all the given tags are considered.
    let t1 = stream_at(
        &repo,
        "host-b",
        "db/x.sql",
        &before(NEWEST, 40, 0),
        &["env=test"],
        b"t1",
    );
    let t2 = stream_at(
        &repo,
        "host-b",
        "db/x.sql",
        &before(NEWEST, 39, 0),
        &["env=test"],
        b"t2",
    );
    let out = forget_ok(&r, &["--tag", "env=test", "--keep-last", "1"]);
    assert!(out.contains("removed 1 snapshot,"), "{out}");
    assert_eq!(ids_left(&r), set(&[&a[0], &b[0], &b[1], &b[2], &t2]));
    assert!(!ids_left(&r).contains(&t1));

    // A filter that matches nothing removes nothing.
    let out = forget_ok(&r, &["--host", "nobody", "--keep-last", "1"]);
    assert!(out.contains("no snapshots to consider"), "{out}");
    assert_eq!(ids_left(&r).len(), 5);
}

#[test]
fn grouping_keeps_db_and_files_snapshots_apart() {
    let r = TestRepo::new();
    let repo = lib_repo(&r);
    let src = r.path("storage");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("object.bin"), b"bucket object").unwrap();
    // Every db dump is older than every files backup.
    let db: Vec<String> = (0..3)
        .map(|i| {
            stream_at(
                &repo,
                "prod",
                "db/shop.sql",
                &before(NEWEST, 10 - i, 0),
                &[],
                &[i as u8; 64],
            )
        })
        .collect();
    let files: Vec<String> = (0..3)
        .map(|i| files_at(&repo, "prod", &src, &before(NEWEST, 2 - i, 0)))
        .collect();

    // host + paths (the default): the newest of each source stays.
    let plan = forget_json(&r, &["--dry-run", "--keep-last", "1"]);
    assert_eq!(plan.len(), 2);
    let out = forget_ok(&r, &["--keep-last", "1"]);
    assert!(
        out.contains("removed 4 snapshots, kept 2 (2 groups)"),
        "{out}"
    );
    assert!(
        out.contains("host prod, paths db/shop.sql: 3 snapshots"),
        "{out}"
    );
    assert_eq!(ids_left(&r), set(&[&db[2], &files[2]]));

    // Grouped by host only, the files backup would evict the db dump.
    let plan = forget_json(&r, &["--dry-run", "--group-by", "host", "--keep-last", "1"]);
    assert_eq!(plan.len(), 1);
    assert!(plan[0]["paths"].is_null());
    assert_eq!(ids_of(&plan[0], "keep"), set(&[&files[2]]));
    assert_eq!(ids_of(&plan[0], "remove"), set(&[&db[2]]));
    let out = forget_ok(&r, &["--dry-run", "--group-by", "host", "--keep-last", "1"]);
    assert!(out.contains("host prod: 2 snapshots"), "{out}");
    // The per-snapshot paths column appears when paths are not part of the group.
    assert!(
        out.lines()
            .any(|l| l.contains(&db[2][..8]) && l.contains("db/shop.sql")),
        "{out}"
    );
}

#[test]
fn removed_snapshots_are_gone_and_the_others_still_restore() {
    let r = TestRepo::new();
    let repo = lib_repo(&r);
    let src = r.path("data");
    gen_tree(
        &src,
        7,
        &TreeSpec {
            large_files: 1,
            large_size: 1 << 20,
            ..Default::default()
        },
    );
    let v1 = files_at(&repo, "h", &src, "2024-05-01T00:00:00Z");
    fs::write(src.join("added in v2.txt"), b"version two").unwrap();
    set_mtime(&src.join("added in v2.txt"), 1_700_000_000, 5);
    set_mtime(&src, 1_700_000_100, 0);
    let copy_v2 = r.path("copy-v2");
    copy_tree(&src, &copy_v2);
    let v2 = files_at(&repo, "h", &src, "2024-05-02T00:00:00Z");
    let dump_old = stream_at(
        &repo,
        "h",
        "db/shop.sql",
        "2024-05-01T00:00:00Z",
        &[],
        &text_bytes(&mut Rng::new(1), 300_000),
    );
    let dump_data = text_bytes(&mut Rng::new(2), 300_000);
    let dump_new = stream_at(
        &repo,
        "h",
        "db/shop.sql",
        "2024-05-02T00:00:00Z",
        &[],
        &dump_data,
    );
    drop(repo);

    forget_ok(&r, &["--keep-last", "1"]);
    assert_eq!(ids_left(&r), set(&[&v2, &dump_new]));
    let listed = r.ok(&["snapshots"]);
    assert!(
        !listed.contains(&v1[..8]) && !listed.contains(&dump_old[..8]),
        "{listed}"
    );
    let (code, _, err) = r.run(&["ls", &v1[..8]]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no snapshot matches"), "{err}");

    let target = r.path("restore");
    r.restore(&v2[..8], &target, &[]);
    assert_trees_equal(&copy_v2, &restored_path(&target, &src));
    assert_eq!(r.cat(&dump_new[..8], "db/shop.sql"), dump_data);
}

#[test]
fn a_damaged_manifest_is_reported_and_neither_kept_nor_removed() {
    let r = TestRepo::new();
    let repo = lib_repo(&r);
    let old = stream_at(&repo, "h", "db/x.sql", &before(NEWEST, 5, 0), &[], b"old");
    let new = stream_at(&repo, "h", "db/x.sql", NEWEST, &[], b"new");
    let damaged = "ab".repeat(32);
    fs::write(r.repo.join("snapshots").join(&damaged), b"not a manifest").unwrap();

    let (code, out, err) = forget(&r, &["--keep-last", "1", "--prune"]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("snapshot abababab cannot be read, so it is neither kept nor removed"),
        "{err}"
    );
    assert!(err.contains("not running prune"), "{err}");
    assert!(!out.contains("abababab"), "{out}");
    assert!(
        r.repo.join("snapshots").join(&damaged).exists(),
        "the damaged manifest was removed"
    );
    assert!(
        !r.repo.join("snapshots").join(&old).exists(),
        "the readable old snapshot was not removed"
    );
    assert!(r.repo.join("snapshots").join(&new).exists());
}

#[test]
fn bad_arguments_are_usage_errors() {
    let r = TestRepo::new();
    for (args, expect) in [
        (&["--keep-within", "10x"][..], "invalid duration \"10x\""),
        (&["--keep-within", "0d"][..], "longer than zero"),
        (&["--keep-within", "21"][..], "no unit after 21"),
        (&["--keep-last", "0"][..], "--keep-last"),
        (&["--keep-daily=-1"][..], "--keep-daily"),
        (&["--group-by", "tags"][..], "invalid grouping"),
        (&["--keep-tag", ""][..], "--keep-tag"),
    ] {
        let (code, _, err) = forget(&r, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    // Compare with clap's line wrapping folded away.
    let help = r
        .ok(&["forget", "--help"])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help.contains("older than the NEWEST snapshot of their group"),
        "{help}"
    );
    assert!(
        help.contains("Without any --keep-* option the policy is --keep-within 21d"),
        "{help}"
    );
}

#[test]
fn forget_runs_beside_backups_but_not_beside_prune() {
    let r = TestRepo::new();
    let repo = lib_repo(&r);
    let old = stream_at(&repo, "h", "db/x.sql", &before(NEWEST, 50, 0), &[], b"old");
    stream_at(&repo, "h", "db/x.sql", NEWEST, &[], b"new");
    // A concurrent backup (shared lock) does not stop forget…
    let shared = repo
        .lock(snap::repo::lock::LockKind::Shared, "backup")
        .unwrap();
    let (code, out, err) = forget(&r, &["--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    drop(shared);
    // …a prune (exclusive) does.
    let exclusive = repo
        .lock(snap::repo::lock::LockKind::Exclusive, "prune")
        .unwrap();
    let (code, _, err) = forget(&r, &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("locked"), "{err}");
    assert!(r.repo.join("snapshots").join(&old).exists());
    drop(exclusive);
    forget_ok(&r, &[]);
    assert!(!r.repo.join("snapshots").join(&old).exists());
}

#[test]
fn prune_runs_after_forget_released_its_lock() {
    let r = TestRepo::new();
    let repo = lib_repo(&r);
    let old = stream_at(
        &repo,
        "h",
        "db/x.sql",
        &before(NEWEST, 50, 0),
        &[],
        &random_bytes(&mut Rng::new(3), 200_000),
    );
    let data = random_bytes(&mut Rng::new(4), 200_000);
    let new = stream_at(&repo, "h", "db/x.sql", NEWEST, &[], &data);
    drop(repo);

    // Dry run: forget's plan, then prune's, and nothing changes.
    let before_listing = repo_listing(&r);
    let out = forget_ok(&r, &["--dry-run", "--prune", "--json"]);
    let docs: Vec<Value> = serde_json::Deserializer::from_str(&out)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(docs.len(), 2, "{out}");
    assert_eq!(ids_of(&docs[0][0], "remove"), set(&[&old]));
    assert!(docs[1].is_object(), "{out}");
    assert_eq!(repo_listing(&r), before_listing);

    // For real: prune (exclusive lock) could only run because forget's shared lock is gone.
    let (code, out, err) = forget(&r, &["--prune"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("removed 1 snapshot, kept 1"), "{out}");
    assert_eq!(ids_left(&r), set(&[&new]));
    assert_eq!(r.cat(&new[..8], "db/x.sql"), data);
    assert!(
        fs::read_dir(r.repo.join("locks"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "lock left behind"
    );
}

/// A size-limited tmpfs mounted for one test (unmounted when dropped).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` when this process may not mount (not root): the caller says it skipped.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "mounting a tmpfs at {} failed", dir.display());
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn fill_disk(dir: &Path) {
    use std::io::Write;
    let mut f = fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0x5a_u8; 4096];
    while f.write_all(&block).and_then(|()| f.sync_data()).is_ok() {}
}

fn reserve_pieces(repo: &Path) -> usize {
    fs::read_dir(repo.join("reserve"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_full_repository_disk_can_still_be_checked_restored_and_pruned() {
    let mut repo = TestRepo::uninit();
    let disk = repo.path("disk");
    let Some(_fs) = Tmpfs::mount(&disk, "12m") else {
        eprintln!("SKIPPED: mounting a tmpfs (a disk that can be filled) needs root");
        return;
    };
    repo.repo = disk.join("repo");
    let (code, out, err) = repo.init(&["--pack-size", "1", "--chunk-avg-kib", "64"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(reserve_pieces(&repo.repo), 4, "init keeps a 4 MiB reserve");
    let mut rng = Rng::new(77);
    let mut ids = Vec::new();
    for n in 0..2 {
        let src = repo.path(&format!("src{n}"));
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("data.bin"), random_bytes(&mut rng, 5 << 19)).unwrap();
        ids.push(repo.backup(&[&src])["id"].as_str().unwrap().to_string());
    }
    fill_disk(&disk);

    // A backup adds data: it does not spend the reserve, and says what to do.
    let (code, _, err) = repo.run(&["backup", repo.path("src0").to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is full") && err.contains("snap prune"),
        "{err}"
    );
    assert_eq!(reserve_pieces(&repo.repo), 4);

    // Reading commands work, and put the reserve back when they are done.
    let (code, out, err) = repo.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("space reserve"), "{err}");
    assert_eq!(reserve_pieces(&repo.repo), 4);
    let target = repo.path("restored");
    repo.restore(&ids[0], &target, &[]);
    assert_trees_equal(
        &repo.path("src0"),
        &restored_path(&target, &repo.path("src0")),
    );

    // Forget the first snapshot; two prunes (condemn, then delete) free its data.
    let (code, out, err) = repo.run(&["forget", "--keep-last", "1", "--group-by", "none"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for _ in 0..2 {
        let (code, out, err) = repo.run(&["prune", "--grace", "0s"]);
        assert_eq!(code, 0, "{out}\n{err}");
    }
    let free = {
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let p = std::ffi::CString::new(disk.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::statvfs(p.as_ptr(), &mut st) }, 0);
        st.f_bavail as u64 * st.f_frsize as u64
    };
    assert!(
        free > 2 << 20,
        "the forgotten snapshot's packs were deleted ({free} bytes free)"
    );
    assert_eq!(reserve_pieces(&repo.repo), 4, "the reserve is whole again");
    let (code, out, err) = repo.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let target = repo.path("restored2");
    repo.restore(&ids[1], &target, &[]);
    assert_trees_equal(
        &repo.path("src1"),
        &restored_path(&target, &repo.path("src1")),
    );
}
