//! The first hour with snap (issue 18): messages that say each thing once and what to do,
//! plurals and units, progress with totals, `backup --dry-run` and `-v`. Real binary, real
//! repositories, real PostgreSQL.

#[path = "support/pg.rs"]
mod pg;
#[path = "support/storage_server.rs"]
mod storage_server;
mod support;

use std::fs;

use pg::PgCluster;
use storage_server::{Content, StorageServer};
use support::*;

#[test]
fn an_io_error_is_said_once() {
    let repo = TestRepo::new();
    let file = repo.path("file");
    fs::write(&file, b"x").unwrap();
    let under_file = file.join("below");
    for (path, cause) in [
        ("/nonexistent".to_string(), "No such file or directory"),
        (under_file.display().to_string(), "Not a directory"),
    ] {
        let (code, _, err) = repo.run(&["backup", &path]);
        assert_eq!(code, 1, "{err}");
        assert_eq!(err.matches(cause).count(), 1, "{err}");
        assert!(err.contains(&path), "{err}");
    }
}

#[test]
fn summaries_count_in_the_right_number_and_binary_units() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("one"), vec![7u8; 300_000]).unwrap();
    let (code, out, err) = repo.run(&["backup", src.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": 1 file, "), "{out}");
    assert!(!out.contains("MB/s") && out.contains("/s)"), "{out}");
    // An incremental backup that read a few bytes: no meaningless ratio.
    fs::write(src.join("two"), b"hi").unwrap();
    let (code, out, err) = repo.run(&["backup", src.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 files, "), "{out}");
    assert!(out.contains("1 file unchanged"), "{out}");
    assert!(!out.contains("dedup ratio 0."), "{out}");
    // Nothing new at all: said in words.
    let (_, out, _) = repo.run(&["backup", src.to_str().unwrap()]);
    assert!(out.contains("nothing new stored"), "{out}");
    let (_, out, _) = repo.run(&["snapshots"]);
    assert!(out.trim_end().ends_with("3 snapshots"), "{out}");
    let one = TestRepo::new();
    one.ok(&["backup", src.to_str().unwrap()]);
    let (_, out, _) = one.run(&["snapshots"]);
    assert!(out.trim_end().ends_with("\n1 snapshot"), "{out}");
    let target = one.path("restored");
    let out = one.restore("latest", &target, &[]);
    assert!(out.contains("2 files, ") && !out.contains("MB/s"), "{out}");
}

fn packs(repo: &TestRepo) -> usize {
    let Ok(dirs) = fs::read_dir(repo.repo.join("data")) else {
        return 0;
    };
    dirs.map(|d| fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum()
}

#[test]
fn dry_run_reports_what_a_backup_would_add_and_writes_nothing() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a"), vec![1u8; 100_000]).unwrap();
    fs::write(src.join("b"), b"bee").unwrap();
    let s = src.to_str().unwrap();
    let v = repo.json(&["backup", "--dry-run", "--json", s]);
    assert_eq!(v["dry_run"], true, "{v}");
    assert_eq!(
        (v["files"].as_u64(), v["files_new"].as_u64()),
        (Some(2), Some(2)),
        "{v}"
    );
    assert_eq!(v["new_bytes"], 100_003, "{v}");
    assert!(repo.snapshots().is_empty());
    assert_eq!(packs(&repo), 0);

    repo.ok(&["backup", s]);
    fs::write(src.join("b"), b"changed").unwrap();
    fs::write(src.join("c"), b"sea").unwrap();
    let (code, out, err) = repo.run(&["backup", "--dry-run", s]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("3 files") && out.contains("1 new, 1 changed, 1 unchanged"),
        "{out}"
    );
    assert!(
        out.contains("10 B of it is new") && out.contains("nothing was written"),
        "{out}"
    );
    assert_eq!(repo.snapshots().len(), 1);
}

#[test]
fn verbose_lists_new_and_changed_files_and_quiet_wins() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("old"), b"1").unwrap();
    fs::write(src.join("same"), b"2").unwrap();
    let s = src.to_str().unwrap();
    repo.ok(&["backup", s]);
    fs::write(src.join("old"), b"11").unwrap();
    fs::write(src.join("new"), b"3").unwrap();
    let (code, _, err) = repo.run(&["backup", "-v", s]);
    assert_eq!(code, 0, "{err}");
    let stored = stored(&src);
    assert!(err.contains(&format!("M {stored}/old\n")), "{err}");
    assert!(err.contains(&format!("+ {stored}/new\n")), "{err}");
    assert!(!err.contains("same"), "{err}");
    fs::write(src.join("new2"), b"4").unwrap();
    let (code, out, err) = repo.run(&["backup", "-v", "-q", s]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
}

#[test]
fn without_a_terminal_progress_is_a_line_now_and_then() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    fs::create_dir(&src).unwrap();
    let mut rng = Rng::new(18);
    for i in 0..8 {
        fs::write(src.join(format!("f{i}")), random_bytes(&mut rng, 1 << 20)).unwrap();
    }
    let s = src.to_str().unwrap();
    // Short operations print no progress by default (every 10 s).
    let (code, _, err) = repo.run(&["backup", s]);
    assert_eq!((code, err.as_str()), (0, ""));
    fs::write(src.join("f0"), random_bytes(&mut rng, 1 << 20)).unwrap();
    let mut c = repo.cmd();
    c.env("SNAP_PROGRESS_INTERVAL", "0.000001")
        .args(["backup", "--force", s]);
    let (code, _, err) = output_parts(c.output().unwrap());
    assert_eq!(code, 0, "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("backup: ") && l.contains(" of 8.00 MiB ("))
        .unwrap_or_else(|| panic!("no progress line with the total: {err}"));
    assert!(line.contains(" %)") && line.contains("/s"), "{line}");
    assert!(err.lines().any(|l| l.contains("ETA")), "{err}");
    assert!(!err.contains('\r') && !err.contains('\x1b'), "{err:?}");
    let (code, _, err) = repo.run(&["backup", "-q", s]);
    assert_eq!((code, err.as_str()), (0, ""));
}

#[test]
fn usage_lines_leave_out_options_set_from_the_environment() {
    let repo = TestRepo::new();
    let mut c = bare_snap(repo.path("").as_path());
    c.env("SNAP_REPO", repo.path("repo"))
        .env("SNAP_PASSWORD_FILE", repo.path("pw"))
        .env("SNAP_CACHE_DIR", repo.path("cache"))
        .arg("restore");
    let (code, _, err) = output_parts(c.output().unwrap());
    assert_eq!(code, 2, "{err}");
    let usage = err.lines().find(|l| l.starts_with("Usage:")).unwrap();
    assert_eq!(
        usage, "Usage: snap restore --target <TARGET> <SNAPSHOT>",
        "{err}"
    );
}

#[test]
fn config_check_fails_on_a_secret_file_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("snap.toml");
    let missing = dir.path().join("no-such-password");
    let key = dir.path().join("service-key");
    fs::write(&key, "k").unwrap();
    fs::write(
        &f,
        format!(
            "[repository]\nlocation = \"/srv/repo\"\npassword_file = \"{}\"\n\n[[projects]]\nname = \"app\"\n[projects.db]\ndb_url = \"postgresql://postgres@127.0.0.1/app\"\ndb_password_file = \"{}\"\n",
            missing.display(),
            key.display()
        ),
    )
    .unwrap();
    let mut c = bare_snap(dir.path());
    c.args(["config", "check", "--config", f.to_str().unwrap()]);
    let (code, out, err) = output_parts(c.output().unwrap());
    assert_eq!(code, 2, "{out}{err}");
    assert!(!out.contains("is valid"), "{out}");
    assert!(
        err.contains("repository.password_file") && err.contains(&missing.display().to_string()),
        "{err}"
    );
    assert!(!err.contains("db_password_file"), "{err}");
}

/// A throwaway cluster with the plain (non-Supabase) fixture in database `plain`.
fn plain() -> (PgCluster, String) {
    let c = PgCluster::start();
    c.create_db("plain");
    c.load_file("plain", &pg::fixture("plain.sql"));
    let url = c.url_db("plain");
    (c, url)
}

#[test]
fn backup_db_dry_run_dumps_and_stores_nothing() {
    let (_c, url) = plain();
    let repo = TestRepo::new();
    let (code, out, err) = repo.run(&["backup", "db", "--db-url", &url, "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("dry run") && out.contains("nothing was written"),
        "{out}"
    );
    assert!(repo.snapshots().is_empty());
    assert_eq!(packs(&repo), 0);
}

#[test]
fn a_plain_postgres_backup_notes_one_line_and_shows_an_estimated_total() {
    let (_c, url) = plain();
    let repo = TestRepo::new();
    let mut cmd = repo.cmd();
    cmd.env("SNAP_PROGRESS_INTERVAL", "0.000001")
        .args(["backup", "db", "--db-url", &url]);
    let (code, _, err) = output_parts(cmd.output().unwrap());
    assert_eq!(code, 0, "{err}");
    let notes: Vec<&str> = err.lines().filter(|l| l.starts_with("note:")).collect();
    assert_eq!(notes.len(), 1, "{err}");
    assert!(
        notes[0].contains("plain PostgreSQL") && notes[0].contains("managed/auth.sql"),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("backup: ") && l.contains(" of ~")),
        "a progress line with the estimated total: {err}"
    );
    // -v: every note in full.
    let (code, _, err) = repo.run(&["-v", "backup", "db", "--db-url", &url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("note:")).count(),
        4,
        "{err}"
    );
}

#[test]
fn restoring_into_a_missing_database_says_how_to_create_it() {
    let (c, url) = plain();
    let repo = TestRepo::new();
    let (code, _, err) = repo.run(&["backup", "db", "--db-url", &url]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &c.url_db("nosuchdb"),
        "--yes",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("database \"nosuchdb\" does not exist") && err.contains("createdb -h "),
        "{err}"
    );
    assert!(!err.contains("snapshot was recorded"), "{err}");
}

#[test]
fn storage_progress_has_the_listing_total_and_dry_run_stores_nothing() {
    const KEY: &str = "service-role-key.for.tests";
    let server = StorageServer::start(KEY);
    server.create_bucket("b", false, None, None);
    let mut rng = Rng::new(6);
    for n in ["x", "y", "z"] {
        let body = random_bytes(&mut rng, 1 << 20);
        server.put(
            "b",
            n,
            Content::Bytes(body.into()),
            "application/octet-stream",
            "no-cache",
            None,
        );
    }
    let repo = TestRepo::new();
    let key = repo.path("key");
    fs::write(&key, KEY).unwrap();
    let args = [
        "backup".to_string(),
        "storage".into(),
        "--storage-url".into(),
        server.storage_url(),
        "--service-key-file".into(),
        key.display().to_string(),
    ];
    let mut c = repo.cmd();
    c.args(&args).arg("--dry-run");
    let (code, out, err) = output_parts(c.output().unwrap());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 new, 0 changed"), "{out}");
    assert!(repo.snapshots().is_empty());
    assert_eq!(packs(&repo), 0);

    let mut c = repo.cmd();
    c.env("SNAP_PROGRESS_INTERVAL", "0.000001").args(&args);
    let (code, _, err) = output_parts(c.output().unwrap());
    assert_eq!(code, 0, "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("backup: ") && l.contains(" of 3.00 MiB (")),
        "a progress line with the listing's total: {err}"
    );
}
