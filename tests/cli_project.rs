//! One snapshot for a whole project, through the configuration file: `snap run --config F` backs up
//! a real throwaway PostgreSQL database and the in-test Storage API server into ONE snapshot, and
//! both come back from it — the rows into a fresh database, the objects into an empty Storage
//! server — from the same night.

#[path = "support/pg.rs"]
mod pg;
#[path = "support/s3.rs"]
mod s3;
#[path = "support/storage_server.rs"]
mod storage_server;
mod support;

use serde_json::{Value, json};
use storage_server::{Content, StorageServer};
use support::*;

const KEY: &str = "service-role-key.for.project-tests";

fn config(repo: &TestRepo, db_url: &str, storage_url: &str, key_file: &str) -> String {
    let s = format!(
        "[repository]\nlocation = {:?}\npassword_env = \"SNAP_PASSWORD\"\ncache_dir = {:?}\n\n\
         [[projects]]\nname = \"prod\"\n\
         [projects.db]\ndb_url = {db_url:?}\n\
         [projects.storage]\nstorage_url = {storage_url:?}\nservice_key_file = {key_file:?}\nconcurrency = 2\n",
        repo.repo.display().to_string(),
        repo.cache.display().to_string()
    );
    let f = repo.path("snap.toml");
    std::fs::write(&f, s).unwrap();
    f.display().to_string()
}

fn run(repo: &TestRepo, args: &[&str]) -> (i32, String, String) {
    run_env(repo, args, &[])
}

fn run_env(repo: &TestRepo, args: &[&str], env: &[(String, String)]) -> (i32, String, String) {
    let mut c = bare_snap(repo.dir.path());
    c.env("SNAP_PASSWORD", &repo.password)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args);
    output_parts(c.output().expect("run snap"))
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no {name} step in {report}"))
}

#[test]
fn run_puts_database_and_storage_of_a_project_in_one_snapshot_and_both_restore() {
    let pg = pg::PgCluster::start();
    pg.create_db("app");
    pg.psql_db(
        "app",
        "CREATE TABLE public.files(id int PRIMARY KEY, object text); \
         INSERT INTO public.files SELECT g, 'u' || g || '/avatar.png' FROM generate_series(1, 300) g",
    );
    let server = StorageServer::start(KEY);
    server.create_bucket("avatars", true, Some(5 << 20), Some(&["image/png"]));
    server.create_bucket("docs", false, None, None);
    let avatar: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    server.put(
        "avatars",
        "u1/avatar.png",
        Content::Bytes(avatar.clone().into()),
        "image/png",
        "max-age=3600",
        Some(json!({"user": 1})),
    );
    server.put(
        "docs",
        "contracts/2026/a b (1)@v2.txt",
        Content::Bytes(b"signed".to_vec().into()),
        "text/plain",
        "no-cache",
        None,
    );

    let repo = TestRepo::new();
    let key_file = repo.path("service-key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let cfg = config(
        &repo,
        &pg.url_db("app"),
        &server.storage_url(),
        &key_file.display().to_string(),
    );

    let (code, out, err) = run(&repo, &["run", "--config", &cfg, "--json"]);
    assert_eq!(code, 0, "snap run failed\nstdout:\n{out}\nstderr:\n{err}");
    assert!(
        !out.contains(KEY) && !err.contains(KEY),
        "the service key was printed"
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    let backup = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "backup")
        .expect("a backup step");
    assert_eq!(backup["status"], "ok", "{backup}");

    // ONE snapshot, holding both the database and the buckets.
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let id = snaps[0]["id"].as_str().unwrap().to_string();
    let ls = repo.json(&["ls", &id, "--json"]);
    let paths: Vec<String> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        paths.iter().any(|p| p == "db/app/inventory.json"),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p == "storage/avatars/u1/avatar.png"),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("storage/docs/contracts/2026/")),
        "{paths:?}"
    );
    // The human summary of `run` names both sources of the project.
    let figures = backup.to_string();
    assert!(
        figures.contains("storage/avatars") && figures.contains("db/app"),
        "{figures}"
    );

    // The rows come back into a fresh database …
    pg.create_db("fresh");
    let (code, out, err) = repo.run(&[
        "restore",
        &id,
        "--db",
        "--db-url",
        &pg.url_db("fresh"),
        "--yes",
    ]);
    assert_eq!(code, 0, "restore --db failed\n{out}\n{err}");
    assert_eq!(pg.count("fresh", "public.files"), 300);

    // … and the objects they describe into an empty Storage server, with their metadata.
    let empty = StorageServer::start(KEY);
    let (code, out, err) = repo.run(&[
        "restore",
        &id,
        "--storage",
        "--storage-url",
        &empty.storage_url(),
        "--service-key-file",
        key_file.to_str().unwrap(),
        "--yes",
    ]);
    assert_eq!(code, 0, "restore --storage failed\n{out}\n{err}");
    let avatars = empty.objects("avatars");
    let a = &avatars["u1/avatar.png"];
    assert_eq!(a.content.all(), avatar);
    assert_eq!(a.content_type, "image/png");
    assert_eq!(a.cache_control, "max-age=3600");
    assert_eq!(a.user_metadata, Some(json!({"user": 1})));
    assert_eq!(
        empty.objects("docs")["contracts/2026/a b (1)@v2.txt"]
            .content
            .all(),
        b"signed"
    );
    let buckets = empty.buckets();
    assert!(buckets["avatars"].public);
    assert_eq!(buckets["avatars"].file_size_limit, Some(5 << 20));
}

/// The off-site step: `[offsite]` names an S3 repository (moto, signatures checked) created with
/// `--copy-key-from`; each night `snap run` copies what it lacks after the check, and the
/// database restores from the off-site copy alone.
#[test]
fn run_copies_every_night_to_the_offsite_repository() {
    let pg = pg::PgCluster::start();
    pg.create_db("app");
    pg.psql_db("app", "CREATE TABLE public.t(id int PRIMARY KEY, v text); INSERT INTO public.t SELECT g, md5(g::text) FROM generate_series(1, 2000) g");
    let s3 = s3::S3Server::start();
    let repo = TestRepo::new();
    let offsite = TestRepo::uninit_at(&s3.location("offsite"), s3.env());
    let (code, out, err) = offsite.init(&["--copy-key-from", repo.repo.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");

    let cfg = repo.path("snap.toml");
    std::fs::write(
        &cfg,
        format!(
            "[repository]\nlocation = {:?}\npassword_env = \"SNAP_PASSWORD\"\ncache_dir = {:?}\n\n\
             [offsite]\nlocation = {:?}\npassword_env = \"SNAP_PASSWORD\"\nparallel = 2\n\n\
             [[projects]]\nname = \"app\"\n[projects.db]\ndb_url = {:?}\n",
            repo.repo.display().to_string(),
            repo.cache.display().to_string(),
            s3.location("offsite"),
            pg.url_db("app")
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();

    // Night 1: one snapshot, copied.
    let (code, out, err) = run_env(&repo, &["run", "--config", cfg, "--json"], &s3.env());
    assert_eq!(code, 0, "night 1\n{out}\n{err}");
    let r1: Value = serde_json::from_str(&out).unwrap();
    let c1 = step(&r1, "copy");
    assert_eq!(c1["status"], "ok", "{c1}");
    assert_eq!(
        (
            c1["copy"]["snapshots_copied"].as_u64(),
            c1["copy"]["snapshots_present"].as_u64()
        ),
        (Some(1), Some(0)),
        "{c1}"
    );
    assert!(c1["copy"]["bytes_sent"].as_u64().unwrap() > 0);
    assert!(
        err.contains("step=copy") && !err.contains(&s3.env()[1].1),
        "log lines name the step, never the S3 secret\n{err}"
    );
    let order: Vec<&str> = r1["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["backup", "forget", "prune", "check", "copy"]);

    // Night 2: a change; only the new snapshot travels.
    pg.psql_db("app", "UPDATE public.t SET v = 'changed' WHERE id <= 10");
    let (code, out, err) = run_env(&repo, &["run", "--config", cfg, "--json"], &s3.env());
    assert_eq!(code, 0, "night 2\n{out}\n{err}");
    let r2: Value = serde_json::from_str(&out).unwrap();
    let c2 = &step(&r2, "copy")["copy"];
    assert_eq!(
        (
            c2["snapshots_copied"].as_u64(),
            c2["snapshots_present"].as_u64()
        ),
        (Some(1), Some(1)),
        "{c2}"
    );
    assert!(
        c2["bytes_sent"].as_u64().unwrap() < c1["copy"]["bytes_sent"].as_u64().unwrap(),
        "the second copy sends only what changed"
    );
    assert_eq!(offsite.snapshots().len(), 2);

    // The off-site copy alone restores the database of night 2.
    pg.create_db("fresh");
    let (code, out, err) = offsite.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &pg.url_db("fresh"),
        "--yes",
    ]);
    assert_eq!(code, 0, "restore from off-site\n{out}\n{err}");
    assert_eq!(
        pg.psql_db("fresh", "SELECT count(*) FROM public.t WHERE v = 'changed'")
            .trim(),
        "10"
    );
    assert_eq!(pg.count("fresh", "public.t"), 2000);

    // An off-site repository that does not exist: the copy step fails with what to do, the
    // rest of the night still succeeded.
    let missing = s3.location("nowhere");
    let text = std::fs::read_to_string(cfg)
        .unwrap()
        .replace(&s3.location("offsite"), &missing);
    std::fs::write(cfg, text).unwrap();
    let (code, out, err) = run_env(&repo, &["run", "--config", cfg, "--json"], &s3.env());
    assert_eq!(code, 1, "{out}\n{err}");
    let r3: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(step(&r3, "backup")["status"], "ok");
    let c3 = step(&r3, "copy");
    assert_eq!(c3["status"], "failed");
    assert!(
        c3["message"].as_str().unwrap().contains("--copy-key-from"),
        "{c3}"
    );
}
