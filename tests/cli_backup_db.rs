//! `snap backup db` against real throwaway PostgreSQL clusters and the real pg_dump.

#[path = "support/pg.rs"]
mod pg;
mod support;

use std::fs;
use std::path::Path;

use pg::PgCluster;
use serde_json::Value;
use support::*;

fn backup_db(repo: &TestRepo, args: &[&str]) -> (i32, String, String) {
    let mut a = vec!["backup", "db"];
    a.extend_from_slice(args);
    a.push("--json");
    repo.run(&a)
}

fn entries(repo: &TestRepo, base: &str) -> Vec<String> {
    let v = repo.json(&["ls", "latest", base, "--json"]);
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

fn text(repo: &TestRepo, path: &str) -> String {
    String::from_utf8(repo.cat("latest", path)).expect("UTF-8 dump")
}

/// data.sql reassembled from the parts `data-order.json` lists.
fn data_sql(repo: &TestRepo, base: &str) -> Vec<u8> {
    let order: Value =
        serde_json::from_slice(&repo.cat("latest", &format!("{base}/data-order.json"))).unwrap();
    let mut out = Vec::new();
    for p in order["parts"].as_array().unwrap() {
        out.extend(repo.cat("latest", &format!("{base}/{}", p["path"].as_str().unwrap())));
    }
    out
}

fn load(c: &PgCluster, db: &str, name: &str, sql: &[u8], dir: &Path) {
    let f = dir.join(name);
    fs::write(&f, sql).unwrap();
    c.load_file(db, &f);
}

#[test]
fn supabase_database_snapshot_has_every_part_and_restores_identically() {
    let c = PgCluster::start();
    c.create_supabase_db("app");
    let repo = TestRepo::new();
    let (code, out, err) = backup_db(&repo, &["--db-url", &c.url_db("app"), "--tag", "env=test"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["tags"][0], "env=test");
    assert_eq!(v["source"], "database");
    let db = &v["database"];
    assert_eq!(db["supabase"], true, "{db}");
    assert!(
        db["snapshot"].as_str().unwrap().contains('-'),
        "an exported snapshot id: {db}"
    );
    let orders = db["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["schema"] == "public" && t["table"] == "orders")
        .expect("orders dumped");
    assert_eq!(
        orders["rows"].as_i64().unwrap(),
        c.count("app", "public.orders")
    );
    assert!(
        db["schemas"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["schema"] == "billing")
    );

    // Every part is there; the excluded tables are not.
    let base = "db/app";
    let all = entries(&repo, base);
    for p in [
        "roles.sql",
        "schema.sql",
        "data-order.json",
        "migrations.sql",
        "managed/auth.sql",
        "managed/storage.sql",
        "inventory.json",
        "tables/public.orders.sql",
        "tables/public.profiles.sql",
        "tables/auth.users.sql",
        "tables/storage.objects.sql",
        "tables/billing.invoices.sql",
        "data/begin.sql",
        "data/end.sql",
    ] {
        assert!(
            all.contains(&format!("{base}/{p}")),
            "{p} missing from {all:?}"
        );
    }
    for p in [
        "tables/auth.schema_migrations.sql",
        "tables/storage.migrations.sql",
        "tables/supabase_functions.migrations.sql",
        "tables/supabase_migrations.schema_migrations.sql",
    ] {
        assert!(
            !all.contains(&format!("{base}/{p}")),
            "{p} must be excluded from the data"
        );
    }

    // roles.sql: reserved roles commented out, the user's own roles and allowed settings kept.
    let roles = text(&repo, &format!("{base}/roles.sql"));
    assert!(
        roles
            .lines()
            .any(|l| l.starts_with("-- ") && l.contains("CREATE ROLE \"anon\"")),
        "{roles}"
    );
    assert!(
        roles
            .lines()
            .any(|l| l.starts_with("CREATE ROLE \"app_user\"")),
        "{roles}"
    );
    assert!(
        roles.contains("ALTER ROLE \"app_user\" SET \"statement_timeout\"")
            || roles.contains("ALTER ROLE \"app_user\" SET statement_timeout"),
        "{roles}"
    );
    // As the Supabase CLI does, the settings allow-list applies to reserved roles only: the
    // user's own roles keep all their settings.
    assert!(
        roles
            .lines()
            .any(|l| l.starts_with("ALTER ROLE \"app_user\" SET \"work_mem\"")),
        "{roles}"
    );
    assert!(
        roles
            .lines()
            .any(|l| l.starts_with("ALTER ROLE \"authenticator\" SET \"statement_timeout\"")),
        "{roles}"
    );

    // schema.sql: user schemas only, with the CLI's cleanups.
    let schema = text(&repo, &format!("{base}/schema.sql"));
    assert!(
        schema.contains("CREATE TABLE IF NOT EXISTS \"public\".\"orders\""),
        "{schema}"
    );
    assert!(schema.contains("CREATE OR REPLACE VIEW \"public\".\"order_totals\""));
    assert!(schema.contains("security_invoker"));
    assert!(
        !schema.contains("CREATE SCHEMA IF NOT EXISTS \"auth\"")
            && !schema.contains("CREATE TABLE IF NOT EXISTS \"auth\".")
    );
    assert!(schema.contains("ALTER PUBLICATION \"supabase_realtime\" ADD TABLE"));
    assert!(
        text(&repo, &format!("{base}/managed/auth.sql")).contains("on_auth_user_created"),
        "the user's trigger on auth.users is kept"
    );
    assert!(text(&repo, &format!("{base}/migrations.sql")).contains("20240315093000"));

    // inventory.json
    let inv: Value =
        serde_json::from_slice(&repo.cat("latest", &format!("{base}/inventory.json"))).unwrap();
    assert_eq!(
        inv["server_version_num"].as_u64().unwrap() / 10000,
        c.server_major() as u64
    );
    assert!(
        inv["pg_dump_version"]
            .as_str()
            .unwrap()
            .starts_with("pg_dump")
    );
    assert!(
        inv["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "pgcrypto" && e["schema"] == "extensions")
    );
    assert!(
        inv["realtime"]["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["table"] == "orders")
    );
    assert!(
        inv["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["table"] == "orders")
    );
    assert!(
        inv["grants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["grantee"] == "anon")
    );
    assert!(
        inv["view_reloptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["view"] == "order_totals")
    );
    assert!(inv["database_size_bytes"].as_u64().unwrap() > 0);
    assert!(inv["dumps"].as_array().unwrap().len() >= 4);

    // Identical in effect: restore the files into a fresh database with psql, the Supabase way.
    c.create_db("restored");
    let dir = repo.path("sql");
    fs::create_dir_all(&dir).unwrap();
    load(
        &c,
        "restored",
        "fresh.sql",
        pg::FRESH_PROJECT.as_bytes(),
        &dir,
    );
    // A fresh project already has auth and storage; the managed dumps hold those plus the
    // user's own additions (a trigger on auth.users calling a public function), so: managed
    // (tolerating the additions that need the user schema), schema, then managed again.
    let lenient = |part: &str| {
        let f = dir.join(part.replace('/', "_"));
        fs::write(&f, repo.cat("latest", &format!("{base}/{part}"))).unwrap();
        let o = c
            .client("psql")
            .args(["-X", "-q", "-d", "restored", "-f"])
            .arg(&f)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    for m in ["managed/auth.sql", "managed/storage.sql"] {
        let err = lenient(m);
        assert!(
            err.lines()
                .filter(|l| l.contains("ERROR"))
                .all(|l| l.contains("handle_new_user")),
            "{m}: {err}"
        );
    }
    load(
        &c,
        "restored",
        "schema.sql",
        &repo.cat("latest", &format!("{base}/schema.sql")),
        &dir,
    );
    lenient("managed/auth.sql");
    assert_eq!(
        c.psql_db(
            "restored",
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'on_auth_user_created'"
        ),
        "1"
    );
    let data = data_sql(&repo, base);
    assert!(data.starts_with(b"SET session_replication_role = replica;"));
    load(&c, "restored", "data.sql", &data, &dir);
    load(
        &c,
        "restored",
        "migrations.sql",
        &repo.cat("latest", &format!("{base}/migrations.sql")),
        &dir,
    );
    let mut src = c.table_fingerprints("app");
    let mut dst = c.table_fingerprints("restored");
    // The Supabase platform's own migration tables are excluded from the data by design.
    for excluded in [
        "auth.schema_migrations",
        "storage.migrations",
        "supabase_functions.migrations",
    ] {
        assert!(
            !src.remove(excluded).unwrap().starts_with("0:"),
            "{excluded} has rows in the source"
        );
        if let Some(f) = dst.remove(excluded) {
            assert!(
                f.starts_with("0:"),
                "{excluded} must not be restored with data"
            );
        }
    }
    assert_eq!(src, dst, "restored data differs");
    // Sequences continue where they were.
    assert_eq!(
        c.psql_db("app", "SELECT last_value FROM public.orders_id_seq"),
        c.psql_db("restored", "SELECT last_value FROM public.orders_id_seq")
    );

    // A second snapshot of an unchanged database adds next to nothing.
    let (code, out, err) = backup_db(&repo, &["--db-url", &c.url_db("app")]);
    assert_eq!(code, 0, "{err}");
    let v2: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v2["parent"], v["id"]);
    // (pg_dump writes a random `\restrict` token into each file's header and the inventory
    // records new durations, so each small file gets one new chunk; table data is shared.)
    let (added, read) = (
        v2["summary"]["added_raw_bytes"].as_u64().unwrap(),
        v2["summary"]["bytes_read"].as_u64().unwrap(),
    );
    assert!(added * 10 < read, "{}", v2["summary"]);
}

#[test]
fn plain_postgres_works_and_says_what_it_skipped() {
    let c = PgCluster::start();
    c.create_db("plain");
    c.load_file("plain", &pg::fixture("plain.sql"));
    let repo = TestRepo::new();
    let (code, out, err) = backup_db(&repo, &["--db-url", &c.url_db("plain")]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["database"]["supabase"], false);
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("plain PostgreSQL")
            && notes.contains("migrations.sql")
            && notes.contains("managed/auth.sql"),
        "{notes}"
    );
    let all = entries(&repo, "db/plain");
    assert!(
        all.contains(&"db/plain/tables/public.notes.sql".to_string()),
        "{all:?}"
    );
    assert!(
        !all.iter()
            .any(|p| p.contains("migrations.sql") || p.contains("managed/")),
        "{all:?}"
    );
    let (code, out, _) = repo.run(&["backup", "db", "--db-url", &c.url_db("plain")]);
    assert_eq!(code, 0);
    assert!(out.contains("public"), "human summary lists schemas: {out}");
}

#[test]
fn passwords_with_special_characters_work_and_are_never_shown() {
    let pw = "p@ss:w/rd?#%*x";
    let c = PgCluster::start_with_password(pw);
    c.create_db("shop");
    c.psql_db(
        "shop",
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)",
    );
    let repo = TestRepo::new();
    let url = c.url_db("shop");

    let out = repo
        .cmd()
        .args(["backup", "db", "--db-url", &url, "--json"])
        .env("SNAP_DB_PASSWORD", pw)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pwfile = repo.path("dbpw");
    fs::write(&pwfile, format!("{pw}\n")).unwrap();
    let (code, _, err) = backup_db(
        &repo,
        &[
            "--db-url",
            &url,
            "--db-password-file",
            pwfile.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    // In the URL, percent-encoded, also works.
    let (code, out, err) = backup_db(&repo, &["--db-url", &c.url_with_password("shop")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains(pw) && !out.contains("p%40ss"),
        "the password leaked into the output"
    );

    // A wrong password: a clear error, no snapshot, nothing secret printed.
    let before = repo.snapshots().len();
    let out = repo
        .cmd()
        .args(["backup", "db", "--db-url", &url])
        .env("SNAP_DB_PASSWORD", "wrong-secret")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("wrong-secret"));
    assert_eq!(repo.snapshots().len(), before);
}

/// `--pg-bin` pointing at wrappers around the real tools.
fn wrapper_bin(dir: &Path, real: &Path, pg_dump_script: &str) {
    fs::create_dir_all(dir).unwrap();
    for tool in ["pg_dumpall", "psql"] {
        let p = dir.join(tool);
        fs::write(
            &p,
            format!("#!/bin/sh\nexec '{}' \"$@\"\n", real.join(tool).display()),
        )
        .unwrap();
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut fs::metadata(&p).unwrap().permissions(),
            0o755,
        );
        fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let p = dir.join("pg_dump");
    fs::write(
        &p,
        pg_dump_script.replace("REAL", &real.join("pg_dump").display().to_string()),
    )
    .unwrap();
    fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

#[test]
fn a_pg_dump_killed_mid_stream_leaves_no_snapshot() {
    let c = PgCluster::start();
    c.create_db("big");
    c.psql_db(
        "big",
        "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200000) g",
    );
    let repo = TestRepo::new();
    let bin = repo.path("bin");
    // The data dump sends part of its output, then dies by SIGKILL.
    wrapper_bin(
        &bin,
        &c.bin,
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --data-only ] && { 'REAL' \"$@\" | head -c 300000; kill -9 $$; }; done\nexec 'REAL' \"$@\"\n",
    );
    let (code, _, err) = backup_db(
        &repo,
        &[
            "--db-url",
            &c.url_db("big"),
            "--pg-bin",
            bin.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("killed by signal 9") && err.contains("no snapshot was recorded"),
        "{err}"
    );
    assert!(repo.snapshots().is_empty());
    // The same command with the real tools succeeds.
    let (code, _, err) = backup_db(&repo, &["--db-url", &c.url_db("big")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(repo.snapshots().len(), 1);
}

#[test]
fn an_old_pg_dump_is_refused_with_the_version_needed() {
    let c = PgCluster::start();
    let repo = TestRepo::new();
    let bin = repo.path("bin");
    wrapper_bin(
        &bin,
        &c.bin,
        "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'pg_dump (PostgreSQL) 9.6.24'; exit 0; }\nexec 'REAL' \"$@\"\n",
    );
    let (code, _, err) = backup_db(
        &repo,
        &["--db-url", &c.url(), "--pg-bin", bin.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    let major = c.server_major();
    assert!(
        err.contains(&format!("needs pg_dump {major} or newer"))
            && err.contains(&format!("postgresql-client-{major}")),
        "{err}"
    );
    assert!(repo.snapshots().is_empty());
}

#[test]
fn the_transaction_pooler_is_refused_and_the_url_masked() {
    let repo = TestRepo::new();
    let (code, _, err) = backup_db(
        &repo,
        &[
            "--db-url",
            "postgresql://postgres.abcdefgh:hunter2secret@aws-0-eu-central-1.pooler.supabase.com:6543/postgres",
        ],
    );
    assert_eq!(code, 2, "a usage error");
    assert!(
        err.contains("transaction pooler") && err.contains("5432"),
        "{err}"
    );
    assert!(!err.contains("hunter2secret"), "{err}");
    let (code, _, err) = backup_db(
        &repo,
        &[
            "--project-ref",
            "abcdefgh",
            "--pooler-host",
            "aws-0-x.pooler.supabase.com",
            "--pg-bin",
            "/nonexistent",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("no pg_dump, pg_dumpall and psql in /nonexistent"),
        "{err}"
    );
}

#[test]
fn a_missing_database_fails_cleanly() {
    let c = PgCluster::start();
    let repo = TestRepo::new();
    let (code, _, err) = backup_db(&repo, &["--db-url", &c.url_db("nope")]);
    assert_eq!(code, 1);
    // Under --json the error is a JSON object on stderr.
    let v: Value = serde_json::from_str(&err).unwrap_or_else(|e| panic!("{e}: {err}"));
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("database \"nope\" does not exist"),
        "{err}"
    );
    assert!(repo.snapshots().is_empty());
}

/// All parts come from one point in time: changes made after the backup started (a new table,
/// new rows, a new role) appear in no part of the snapshot, although they are committed long
/// before the later dumps run.
#[test]
fn every_part_comes_from_one_point_in_time() {
    let c = PgCluster::start();
    c.create_db("live");
    c.psql_db(
        "live",
        "CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g",
    );
    let repo = TestRepo::new();
    let bin = repo.path("bin");
    let gate = repo.path("gate");
    // The schema dump (the first pg_dump) waits until the test has changed the database.
    wrapper_bin(
        &bin,
        &c.bin,
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --schema-only ] && {{ touch '{ready}'; while [ ! -e '{gate}' ]; do sleep 0.05; done; }}; done\nexec 'REAL' \"$@\"\n",
            ready = repo.path("ready").display(),
            gate = gate.display()
        ),
    );
    let child = repo
        .cmd()
        .args([
            "backup",
            "db",
            "--json",
            "--db-url",
            &c.url_db("live"),
            "--pg-bin",
            bin.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !repo.path("ready").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the backup never reached the schema dump"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Changes committed after the snapshot was exported, before any pg_dump ran.
    c.psql_db("live", "CREATE TABLE late AS SELECT 1 AS x; INSERT INTO orders SELECT g, 'new' FROM generate_series(5001, 6000) g");
    fs::write(&gate, b"").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();

    let base = "db/live";
    let schema = text(&repo, &format!("{base}/schema.sql"));
    assert!(
        schema.contains("\"orders\"") && !schema.contains("\"late\""),
        "schema.sql is from before the change"
    );
    let all = entries(&repo, base);
    assert!(!all.iter().any(|p| p.contains("late")), "{all:?}");
    let orders = v["database"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "orders")
        .unwrap();
    assert_eq!(
        orders["rows"], 5000,
        "the data dump is from before the inserts"
    );
    assert_eq!(c.count("live", "orders"), 6000);
    let inv: Value =
        serde_json::from_slice(&repo.cat("latest", &format!("{base}/inventory.json"))).unwrap();
    assert!(
        !inv["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "late"),
        "the inventory is from the same snapshot"
    );
}
