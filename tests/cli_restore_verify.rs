//! `snap restore <id> --db --verify`: the restore drill into a throwaway local cluster.

#[path = "support/pg.rs"]
mod pg;
mod support;

use std::fs;
use std::path::Path;

use pg::PgCluster;
use serde_json::Value;
use support::*;

/// Processes whose command line mentions `needle` (e.g. a `postgres -D <dir>/data`).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        if !e
            .file_name()
            .to_str()
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
        {
            continue;
        }
        if let Ok(c) = fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                out.push(format!("{}: {c}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

/// Run the drill with --json; returns (exit code, report, stderr) and checks that the
/// throwaway cluster is gone: no directory, no server process.
fn drill(repo: &TestRepo, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["restore", "latest", "--db", "--verify", "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = repo.run(&args);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}\nstderr:\n{err}"));
    let dir = v["cluster_dir"]
        .as_str()
        .unwrap_or_else(|| panic!("no cluster_dir: {v:#}"))
        .to_string();
    assert!(dir.contains("snap-drill-"), "{dir}");
    assert!(
        !Path::new(&dir).exists(),
        "the drill's cluster dir {dir} survived"
    );
    let left = processes_mentioning(&dir);
    assert!(left.is_empty(), "processes of the drill survived: {left:?}");
    (code, v, err)
}

#[test]
fn a_supabase_snapshot_passes_the_drill_and_leaves_nothing_behind() {
    let source = PgCluster::start();
    source.create_supabase_db("app");
    let repo = TestRepo::new();
    let (code, _, err) = repo.run(&["backup", "db", "--db-url", &source.url_db("app")]);
    assert_eq!(code, 0, "{err}");

    let (code, v, err) = drill(&repo, &[]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    assert_eq!(v["result"], "PASS", "{v:#}");
    assert_eq!(v["pass"], true);
    assert_eq!(v["verified"], true);
    assert_eq!(v["database"], "app");
    assert!(v["error"].is_null(), "{v:#}");
    assert!(
        v["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["blocking"] == false),
        "{v:#}"
    );
    let checks = v["verification"].as_array().unwrap();
    assert!(checks.len() >= 5, "{v:#}");
    assert!(checks.iter().all(|c| c["ok"] == true), "{v:#}");
    assert!(
        checks
            .iter()
            .any(|c| c["what"].as_str().unwrap().starts_with("row counts of")
                && c["detail"] == "all equal"),
        "{v:#}"
    );
    assert!(
        v["server"].as_str().unwrap().contains("PostgreSQL"),
        "{v:#}"
    );
    assert!(v["server_major"].as_u64().unwrap() >= source.server_major() as u64);
    let steps: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    for s in [
        "start throwaway cluster",
        "prepare fresh project",
        "requirements",
        "restore",
        "re-apply managed schemas",
        "verify",
        "remove cluster",
    ] {
        assert!(steps.contains(&s), "{steps:?}");
    }
    assert!(
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["ok"] == true && s["seconds"].as_f64().is_some())
    );
    assert_eq!(v["supabase_target"], true, "{v:#}");
    let prepared = v["prepared"].to_string();
    assert!(
        prepared.contains("supabase_realtime")
            && prepared.contains("pgcrypto")
            && prepared.contains("webhooks"),
        "{prepared}"
    );
    let managed: Vec<&str> = v["managed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["part"].as_str().unwrap())
        .collect();
    assert_eq!(managed, ["managed/auth.sql", "managed/storage.sql"]);

    // The text report: the same drill, PASS, exit 0.
    let (code, out, err) = repo.run(&["restore", "latest", "--db", "--verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("verification:") && out.contains("PASS: snapshot") && !out.contains("FAIL"),
        "{out}"
    );
    assert!(
        out.contains("throwaway server: postgres (PostgreSQL)"),
        "{out}"
    );

    // --verify takes no target.
    let (code, _, err) = repo.run(&[
        "restore",
        "latest",
        "--db",
        "--verify",
        "--db-url",
        &source.url_db("app"),
    ]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_plain_database_passes_too() {
    let source = PgCluster::start();
    source.create_db("plain");
    source.load_file("plain", &pg::fixture("plain.sql"));
    let repo = TestRepo::new();
    let (code, _, err) = repo.run(&["backup", "db", "--db-url", &source.url_db("plain")]);
    assert_eq!(code, 0, "{err}");
    let (code, v, err) = drill(&repo, &["--database", "plain"]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    assert_eq!(v["result"], "PASS", "{v:#}");
    assert_eq!(v["supabase_target"], false);
    assert!(
        v["verification"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true),
        "{v:#}"
    );
    assert!(
        v["managed"].as_array().unwrap().is_empty()
            || v["managed"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["part"].is_string())
    );
}

#[test]
fn a_snapshot_that_does_not_restore_fails_the_drill() {
    // A CHECK constraint that reads another table: pg_dump's data order loads a_items before
    // z_refs, so the restore fails although the source database is consistent. Exactly what a
    // drill is for.
    let source = PgCluster::start();
    source.create_db("trap");
    source.psql_db(
        "trap",
        "CREATE TABLE public.z_refs (id int PRIMARY KEY); \
         CREATE FUNCTION public.ref_ok(int) RETURNS boolean LANGUAGE sql STABLE AS \
           $$ SELECT EXISTS (SELECT 1 FROM public.z_refs WHERE id = $1) $$; \
         CREATE TABLE public.a_items (id int PRIMARY KEY, ref int CHECK (public.ref_ok(ref))); \
         INSERT INTO public.z_refs VALUES (1), (2); INSERT INTO public.a_items VALUES (10, 1), (11, 2);",
    );
    let repo = TestRepo::new();
    let (code, _, err) = repo.run(&["backup", "db", "--db-url", &source.url_db("trap")]);
    assert_eq!(code, 0, "{err}");
    let (code, v, err) = drill(&repo, &[]);
    assert_eq!(code, 1, "{v:#}\n{err}");
    assert_eq!(v["result"], "FAIL", "{v:#}");
    let e = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {v:#}"));
    assert!(
        e.starts_with("restore:") && e.contains("rolled back") && e.contains("a_items"),
        "{e}"
    );

    // Text mode: FAIL on stdout, the error on stderr, exit 1.
    let (code, out, err) = repo.run(&["restore", "latest", "--db", "--verify"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("FAIL: snapshot") && err.contains("error: restore:"),
        "{out}\n{err}"
    );
}

#[test]
fn a_files_only_snapshot_is_refused() {
    let repo = TestRepo::new();
    let src = repo.path("files");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"hello").unwrap();
    repo.backup(&[&src]);
    let (code, out, err) = repo.run(&["restore", "latest", "--db", "--verify"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("no database snapshot"), "{err}");
    // `latest` is the newest database snapshot: there is none. By id: it holds no "nope".
    let files = repo.snapshot_ids().pop().unwrap();
    let (code, _, err) = repo.run(&["restore", &files, "--db", "--verify", "--database", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("holds no database \"nope\""), "{err}");
}

/// A SIGTERM while the drill's throwaway server runs: snap exits 143 and the server and its
/// directory are gone (destructors do not run on an interrupt; the cleanup stops it).
#[test]
fn sigterm_during_the_drill_stops_and_deletes_its_cluster() {
    use std::os::unix::fs::PermissionsExt;
    let source = PgCluster::start();
    source.create_supabase_db("app");
    let repo = TestRepo::new();
    let (code, _, err) = repo.run(&["backup", "db", "--db-url", &source.url_db("app")]);
    assert_eq!(code, 0, "{err}");
    // The drill's cluster goes under TMPDIR: a directory of this test, reachable by the
    // server's OS user.
    let tmp = tempfile::Builder::new()
        .prefix("snap-tmp-")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = repo
        .cmd()
        .args(["restore", "latest", "--db", "--verify"])
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let cluster = loop {
        let running = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|d| {
                fs::read_to_string(d.join("postgres.log"))
                    .is_ok_and(|l| l.contains("ready to accept connections"))
            });
        if let Some(d) = running {
            break d;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the drill ended before its server started"
        );
        assert!(
            started.elapsed().as_secs() < 120,
            "no drill server after 2 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(!processes_mentioning(cluster.to_str().unwrap()).is_empty());
    // SAFETY: kill(2) of our own child, not reaped yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(exit_code(out.status), 143, "{err}");
    assert!(err.contains("interrupted (SIGTERM), cleaning up"), "{err}");
    assert!(
        !cluster.exists(),
        "the drill's cluster dir {} survived",
        cluster.display()
    );
    let left = processes_mentioning(cluster.to_str().unwrap());
    assert!(left.is_empty(), "processes of the drill survived: {left:?}");
}
