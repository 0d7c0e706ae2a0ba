//! `snap run --config F` (and `snap backup --config F`) end to end: the real binary, a real
//! throwaway PostgreSQL cluster whose two databases are two projects, and an in-test HTTP server
//! receiving the health pings. Snapshot times are chosen with the hidden `--time` flag, so
//! retention is applied on a fake calendar.

#[path = "support/pg.rs"]
mod pg;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;

use pg::PgCluster;
use serde_json::Value;
use support::*;

fn write_config(repo: &TestRepo, projects: &[(&str, String)], extra: &str) -> PathBuf {
    let mut s = format!(
        "[repository]\nlocation = {:?}\npassword_env = \"SNAP_PASSWORD\"\ncache_dir = {:?}\n\n[prune]\ngrace = \"0s\"\n\n{extra}\n",
        repo.repo.display().to_string(),
        repo.cache.display().to_string()
    );
    for (name, url) in projects {
        s.push_str(&format!("[[projects]]\nname = {name:?}\ntags = [\"env=test\"]\n[projects.db]\ndb_url = {url:?}\n\n"));
    }
    let f = repo.path("snap.toml");
    std::fs::write(&f, s).unwrap();
    f
}

fn snap(repo: &TestRepo, args: &[&str]) -> (i32, String, String) {
    let mut c: Command = bare_snap(repo.dir.path());
    c.env("SNAP_PASSWORD", &repo.password).args(args);
    output_parts(c.output().expect("run snap"))
}

fn steps(v: &Value) -> Vec<(String, String, String)> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["project"].as_str().unwrap_or("-").to_string(),
                s["step"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn step<'a>(v: &'a Value, project: Option<&str>, name: &str) -> &'a Value {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name && s["project"].as_str() == project)
        .unwrap_or_else(|| panic!("no step {project:?} {name} in {v}"))
}

fn two_databases() -> PgCluster {
    let c = PgCluster::start();
    for db in ["app", "shop"] {
        c.create_db(db);
        c.load_file(db, &pg::fixture("plain.sql"));
    }
    c.psql_db(
        "shop",
        "INSERT INTO public.notes (title) SELECT 'order ' || g FROM generate_series(1, 500) g",
    );
    c
}

fn sv(v: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    v.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[test]
fn nightly_run_backs_up_two_projects_applies_retention_prunes_and_checks() {
    let c = two_databases();
    let repo = TestRepo::new();
    let cfg = write_config(
        &repo,
        &[("app", c.url_db("app")), ("shop", c.url_db("shop"))],
        "",
    );
    let cfg = cfg.to_str().unwrap();

    // Two earlier nights, on a fake calendar: January 1st and 10th.
    for t in ["2026-01-01T03:00:00Z", "2026-01-10T03:00:00Z"] {
        let (code, out, err) = snap(&repo, &["backup", "--config", cfg, "--time", t, "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
        assert_eq!(v[1]["project"], "shop");
        assert_eq!(v[1]["backup"]["tables"], 2, "{v}");
    }

    // The night of January 25th: keep-within 21d (the default) keeps the 10th and the 25th.
    let (code, out, err) = snap(
        &repo,
        &[
            "run",
            "--config",
            cfg,
            "--time",
            "2026-01-25T03:00:00Z",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        steps(&v),
        sv(&[
            ("app", "backup", "ok"),
            ("app", "forget", "ok"),
            ("shop", "backup", "ok"),
            ("shop", "forget", "ok"),
            ("-", "prune", "ok"),
            ("-", "check", "ok")
        ])
    );
    for p in ["app", "shop"] {
        let b = &step(&v, Some(p), "backup")["backup"];
        assert_eq!(b["snapshot"].as_str().unwrap().len(), 64, "{b}");
        assert_eq!(b["tables"], 2, "{b}");
        assert!(b["bytes_read"].as_u64().unwrap() > 0, "{b}");
        assert_eq!(b["sources"][0]["path"], format!("db/{p}"), "{b}");
        assert_eq!(b["sources"][0]["kind"], "database", "{b}");
        let f = &step(&v, Some(p), "forget")["forget"];
        assert_eq!(
            (f["kept"].as_u64(), f["removed"].as_u64()),
            (Some(2), Some(1)),
            "{f}"
        );
        assert_eq!(f["policy"], "keep-within 21d");
    }
    // Nothing changed in the databases since the 10th: the night's data deduplicates.
    let shop = &step(&v, Some("shop"), "backup")["backup"];
    assert!(
        shop["raw_bytes_added"].as_u64().unwrap() < shop["bytes_read"].as_u64().unwrap(),
        "{shop}"
    );
    let check = &step(&v, None, "check")["check"];
    assert_eq!(
        (check["read_data"].as_str(), check["problems"].as_u64()),
        (Some("5%"), Some(0)),
        "{check}"
    );
    assert!(check["packs_read"].as_u64().unwrap() >= 1, "{check}");

    // What is left: the 10th and the 25th of each project, each tagged with its project.
    let snaps = repo.snapshots();
    let mut left: Vec<(String, String)> = snaps
        .iter()
        .map(|s| {
            let tags: Vec<&str> = s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            let project = tags
                .iter()
                .find_map(|t| t.strip_prefix("project="))
                .unwrap()
                .to_string();
            assert!(tags.contains(&"env=test"), "{tags:?}");
            (project, s["time"].as_str().unwrap()[..10].to_string())
        })
        .collect();
    left.sort();
    let want: Vec<(String, String)> = [
        ("app", "2026-01-10"),
        ("app", "2026-01-25"),
        ("shop", "2026-01-10"),
        ("shop", "2026-01-25"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(left, want);

    // The log: one logfmt line per event on stderr, with the figures.
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("ts=") && l.contains(" level=")),
        "{err}"
    );
    let done = lines
        .iter()
        .find(|l| l.contains("level=info project=shop step=backup msg=done"))
        .expect(&err);
    for k in [
        "bytes_read=",
        "bytes_added=",
        "dedup_ratio=",
        "tables=2",
        "snapshot=",
        "mb_per_s=",
    ] {
        assert!(done.contains(k), "{k} missing from {done}");
    }
    assert!(
        lines.iter().any(|l| l.contains("step=forget")
            && l.contains("removed=1")
            && l.contains("policy=\"keep-within 21d\"")),
        "{err}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains("step=run msg=\"nightly run succeeded\""),
        "{err}"
    );

    // The human summary, one project only (prune and check still run).
    let (code, out, err) = snap(&repo, &["run", "--config", cfg, "--project", "app"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().any(|l| l.starts_with("app")
            && l.contains("backup")
            && l.contains("ok")
            && l.contains("dedup ratio")),
        "{out}"
    );
    assert!(out.contains("db/app") && out.contains("2 tables"), "{out}");
    assert!(!out.contains("shop"), "{out}");
    assert!(out.contains("nightly run succeeded"), "{out}");

    // Damage: one unreadable snapshot manifest. Backups still run; forget names the damage and
    // fails; prune is skipped (it could free data that snapshot needs); check runs and fails.
    let victim = repo
        .repo
        .join("snapshots")
        .join(repo.snapshot_ids()[0].clone());
    std::fs::write(&victim, b"not a manifest").unwrap();
    let (code, out, err) = snap(
        &repo,
        &[
            "run",
            "--config",
            cfg,
            "--time",
            "2026-01-26T03:00:00Z",
            "--json",
        ],
    );
    assert_eq!(code, 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        steps(&v),
        sv(&[
            ("app", "backup", "ok"),
            ("app", "forget", "failed"),
            ("shop", "backup", "ok"),
            ("shop", "forget", "skipped"),
            ("-", "prune", "skipped"),
            ("-", "check", "failed")
        ])
    );
    assert!(
        step(&v, Some("app"), "forget")["message"]
            .as_str()
            .unwrap()
            .contains("cannot be read"),
        "{v}"
    );
    assert!(
        step(&v, None, "prune")["message"]
            .as_str()
            .unwrap()
            .contains("repository damage was reported"),
        "{v}"
    );
    assert!(
        err.lines()
            .any(|l| l.contains("level=warn step=prune msg=\"skipped: repository damage")),
        "{err}"
    );
}

/// A one-thread HTTP server that answers 200 to every request and reports
/// (request line, body) for each.
fn ping_server() -> (String, mpsc::Receiver<(String, String)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ping/3f2a", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            r.read_line(&mut first).unwrap();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK");
            if tx
                .send((
                    first.trim().to_string(),
                    String::from_utf8_lossy(&body).into_owned(),
                ))
                .is_err()
            {
                return;
            }
        }
    });
    (url, rx)
}

#[test]
fn a_failing_project_fails_the_run_and_pings_failure_while_the_other_succeeds() {
    let c = PgCluster::start();
    c.create_db("app");
    c.load_file("app", &pg::fixture("plain.sql"));
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (url, pings) = ping_server();
    let repo = TestRepo::new();
    let cfg = write_config(
        &repo,
        &[
            ("good", c.url_db("app")),
            (
                "broken",
                format!("postgresql://postgres@127.0.0.1:{closed}/gone"),
            ),
        ],
        &format!("[healthcheck]\nurl = {url:?}\n"),
    );
    let cfg = cfg.to_str().unwrap();

    let (code, _, err) = snap(&repo, &["run", "--config", cfg, "--project", "nope"]);
    assert_eq!(code, 2, "an unknown project is a usage error: {err}");
    assert!(
        err.contains("no project \"nope\"") && err.contains("good, broken"),
        "{err}"
    );

    let (code, out, err) = snap(&repo, &["run", "--config", cfg, "--json"]);
    assert_eq!(code, 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(
        steps(&v),
        sv(&[
            ("good", "backup", "ok"),
            ("good", "forget", "ok"),
            ("broken", "backup", "failed"),
            ("broken", "forget", "ok"),
            ("-", "prune", "ok"),
            ("-", "check", "ok")
        ])
    );
    let msg = step(&v, Some("broken"), "backup")["message"]
        .as_str()
        .unwrap();
    assert!(
        msg.contains(&closed.to_string()),
        "the error names the server: {msg}"
    );
    assert_eq!(
        repo.snapshots().len(),
        1,
        "the good project's snapshot is saved"
    );
    assert!(
        err.lines()
            .any(|l| l.contains("level=error project=broken step=backup")),
        "{err}"
    );
    assert!(err.lines().any(|l| l.contains("msg=\"nightly run failed\"") && l.contains("failed=broken:backup")), "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("level=info step=ping msg=\"failure ping sent\"")),
        "{err}"
    );
    let (line, body) = pings
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a ping");
    assert_eq!(line, "POST /ping/3f2a/fail HTTP/1.1");
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&sent["ok"], &sent["steps"][2]["status"]),
        (&Value::Bool(false), &Value::from("failed")),
        "{sent}"
    );

    // The human table shows it too.
    let (code, out, _) = snap(&repo, &["run", "--config", cfg, "--no-ping"]);
    assert_eq!(code, 1);
    assert!(
        out.lines()
            .any(|l| l.starts_with("broken") && l.contains("backup") && l.contains("FAILED")),
        "{out}"
    );
    assert!(out.contains("nightly run FAILED: 1 step failed"), "{out}");
    assert!(pings.try_recv().is_err(), "--no-ping sends nothing");

    // The good project alone succeeds, and says so to the ping URL.
    let (code, _, err) = snap(
        &repo,
        &["run", "--config", cfg, "--project", "good", "--quiet"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.is_empty(),
        "--quiet logs only warnings and errors: {err}"
    );
    let (line, body) = pings
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a ping");
    assert_eq!(line, "POST /ping/3f2a HTTP/1.1");
    assert!(body.contains("\"ok\":true"), "{body}");
}

/// examples/nightly.sh, the walk-through from nothing to a restored database, with the binary
/// under test (about 15 s).
#[test]
fn the_nightly_walkthrough_example_runs() {
    let work = tempfile::tempdir().unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/nightly.sh");
    let mut c = Command::new("bash");
    c.arg(&script)
        .arg(work.path().join("work"))
        .env("SNAP_BIN", snap_bin())
        .stdin(std::process::Stdio::null());
    let (code, out, err) = run_with_timeout(c, std::time::Duration::from_secs(180));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("is valid"), "config check ran: {out}");
    assert_eq!(out.matches("nightly run succeeded").count(), 2, "{out}");
    assert!(
        out.contains("public.notes: 1004 rows in shop, 1004 rows in shop_restored"),
        "{out}"
    );
}

#[test]
fn a_repository_that_cannot_be_opened_skips_every_step() {
    let repo = TestRepo::uninit();
    let cfg = write_config(
        &repo,
        &[("app", "postgresql://postgres@127.0.0.1:9/app".to_string())],
        "",
    );
    let (code, out, err) = snap(&repo, &["run", "--config", cfg.to_str().unwrap(), "--json"]);
    assert_eq!(code, 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        steps(&v),
        sv(&[
            ("-", "open", "failed"),
            ("app", "backup", "skipped"),
            ("app", "forget", "skipped"),
            ("-", "prune", "skipped"),
            ("-", "check", "skipped")
        ])
    );
    assert!(
        step(&v, None, "open")["message"]
            .as_str()
            .unwrap()
            .contains("snap init"),
        "{v}"
    );
    assert!(
        err.lines().any(|l| l.contains("level=error step=open")),
        "{err}"
    );
}

/// A lock left by a killed snap of this host is removed by the next `snap run`, with a warning.
#[test]
fn the_run_removes_the_lock_of_a_killed_snap_of_this_host() {
    let repo = TestRepo::new();
    let mut child = repo
        .cmd()
        .args(["backup", "--stdin", "--stdin-name", "x"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let locks = || {
        std::fs::read_dir(repo.repo.join("locks"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let t = std::time::Instant::now();
    while locks() == 0 {
        assert!(t.elapsed().as_secs() < 60, "no lock after a minute");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(locks(), 1, "the killed backup left its lock");
    let cfg = write_config(
        &repo,
        &[("app", "postgresql://postgres@127.0.0.1:9/app".to_string())],
        "",
    );
    let (_, _, err) = snap(&repo, &["run", "--config", cfg.to_str().unwrap()]);
    assert!(
        err.lines().any(|l| l.contains("level=warn step=open")
            && l.contains("removed a stale lock of pid")
            && l.contains("(snap backup)")),
        "{err}"
    );
    assert_eq!(locks(), 0, "{err}");
}
