//! `snap restore --db` between real throwaway clusters.

#[path = "support/pg.rs"]
mod pg;
mod support;

use pg::PgCluster;
use serde_json::Value;
use support::*;

struct Setup {
    source: PgCluster,
    target: PgCluster,
    repo: TestRepo,
}

/// A source with the Supabase fixture, snapshotted; a target cluster with a fresh "project"
/// database (`fresh`) and an empty plain database (`empty`).
fn setup() -> Setup {
    let source = PgCluster::start();
    source.create_supabase_db("app");
    // A hosted project refuses `ALTER … OWNER TO "supabase_admin"`: the restore must skip it
    // and say so.
    source.psql_db(
        "app",
        "ALTER TABLE public.order_items OWNER TO supabase_admin",
    );
    let repo = TestRepo::new();
    let (code, _, err) = repo.run(&["backup", "db", "--db-url", &source.url_db("app")]);
    assert_eq!(code, 0, "{err}");
    let target = PgCluster::start();
    // A fresh project has auth and storage (Supabase's own objects; the user's trigger that
    // needs a public function comes with the restore's managed files later).
    let managed: Vec<(&str, Vec<u8>)> = ["auth", "storage"]
        .iter()
        .map(|m| (*m, repo.cat("latest", &format!("db/app/managed/{m}.sql"))))
        .collect();
    target.create_fresh_project("fresh", &managed);
    target.create_db("empty");
    Setup {
        source,
        target,
        repo,
    }
}

fn user_schema(c: &PgCluster, db: &str) -> String {
    let o = c
        .client("pg_dump")
        .args([
            "--schema-only",
            "--no-owner",
            "--schema=public",
            "--schema=billing",
            "-d",
            db,
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    // Statements only (comments and blank lines aside). pg_dump's \restrict token is random per
    // run; supabase_admin's default privileges belong
    // to the platform (the Supabase CLI's cleanup comments them out; a project has its own).
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("--"))
        .filter(|l| {
            !l.starts_with("\\restrict")
                && !l.starts_with("\\unrestrict")
                && !l.starts_with("ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn round_trip_into_a_fresh_project_is_identical_and_verified() {
    let s = setup();
    let (code, out, err) = s.repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &s.target.url_db("fresh"),
        "--yes",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["supabase_target"], true);
    assert_eq!(v["verified"], true, "{}", v["verification"]);
    assert_eq!(v["restore"]["notified_postgrest"], true);
    let skipped = v["restore"]["skipped"].as_array().unwrap();
    assert!(
        skipped.iter().any(|x| x[0] == "schema.sql"
            && x[2]
                .as_str()
                .unwrap()
                .contains("\"order_items\" OWNER TO \"supabase_admin\"")),
        "the refused statement is listed: {skipped:?}"
    );
    let checks = v["verification"].as_array().unwrap();
    for what in [
        "row counts",
        "functions",
        "policies",
        "realtime publication tables",
        "privileges",
    ] {
        assert!(
            checks
                .iter()
                .any(|c| c["what"].as_str().unwrap().starts_with(what) && c["ok"] == true),
            "{what}: {checks:?}"
        );
    }

    // Same user schemas (pg_dump --schema-only), same contents table by table.
    assert_eq!(
        user_schema(&s.source, "app"),
        user_schema(&s.target, "fresh")
    );
    let mut src = s.source.table_fingerprints("app");
    let mut dst = s.target.table_fingerprints("fresh");
    for excluded in [
        "auth.schema_migrations",
        "storage.migrations",
        "supabase_functions.migrations",
    ] {
        src.remove(excluded);
        dst.remove(excluded);
    }
    assert_eq!(src, dst);
    assert_eq!(
        s.source
            .psql_db("app", "SELECT enum_range(NULL::public.order_status)::text"),
        s.target.psql_db(
            "fresh",
            "SELECT enum_range(NULL::public.order_status)::text"
        )
    );
    assert_eq!(
        s.source.psql_db("app", "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"),
        s.target.psql_db("fresh", "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'supabase_realtime'")
    );
    assert_eq!(
        s.target.psql_db(
            "fresh",
            "SELECT count(*) FROM supabase_migrations.schema_migrations"
        ),
        "3"
    );
    // Sequences continue where the source's were.
    for seq in ["public.orders_id_seq", "public.invoice_number_seq"] {
        let q = format!("SELECT last_value || ',' || is_called FROM {seq}");
        assert_eq!(
            s.source.psql_db("app", &q),
            s.target.psql_db("fresh", &q),
            "{seq}"
        );
    }
    assert_eq!(
        s.target.psql_db(
            "fresh",
            "SELECT rolname FROM pg_roles WHERE rolname = 'app_user'"
        ),
        "app_user"
    );

    // Into the same database again: its tables now hold rows, which blocks.
    let (code, out, _) = s.repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &s.target.url_db("fresh"),
        "--yes",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("already has rows in"), "{out}");
}

#[test]
fn a_target_that_is_not_ready_is_reported_and_left_alone() {
    let s = setup();
    // `empty` is a plain database: no extensions, no webhooks, no publication.
    let (code, out, err) = s.repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &s.target.url_db("empty"),
        "--yes",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        out.contains("BLOCKING")
            && out.contains(
                "CREATE EXTENSION IF NOT EXISTS \"pgcrypto\" WITH SCHEMA \"extensions\";"
            ),
        "{out}"
    );
    assert!(
        out.contains("Database Webhooks") && out.contains("supabase_realtime"),
        "{out}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(
        s.target.psql_db(
            "empty",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0"
    );

    // --dry-run on a ready target: the plan, exit 0, nothing changed.
    let (code, out, err) = s.repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &s.target.url_db("fresh"),
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("roles.sql → schema.sql → data.sql → migrations.sql")
            && out.contains("dry run: nothing was changed"),
        "{out}"
    );
    assert_eq!(
        s.target.psql_db(
            "fresh",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0"
    );

    // Without --yes and without a terminal: refused.
    let (code, _, err) = s.repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &s.target.url_db("fresh"),
    ]);
    assert_eq!(code, 2, "a usage error");
    assert!(err.contains("pass --yes"), "{err}");
    assert_eq!(
        s.target.psql_db(
            "fresh",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0"
    );
}

#[test]
fn a_failure_half_way_leaves_the_target_unchanged_and_names_the_statement() {
    let s = setup();
    // An existing, empty, incompatible billing.invoices: schema.sql's CREATE TABLE IF NOT EXISTS
    // passes over it, and the restore fails half way, after roles and many statements ran.
    s.target.psql_db(
        "fresh",
        "CREATE SCHEMA billing; CREATE TABLE billing.invoices (only_column int)",
    );
    let (code, _, err) = s.repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &s.target.url_db("fresh"),
        "--yes",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("rolled back, the target is unchanged"),
        "{err}"
    );
    assert!(
        !err.contains("no snapshot was recorded"),
        "a restore records no snapshot either way: {err}"
    );
    assert!(
        err.contains("schema.sql line")
            && err.contains("ERROR:  column \"id\" of relation \"invoices\" does not exist"),
        "{err}"
    );
    assert!(
        err.contains("statement: ALTER TABLE ONLY \"billing\".\"invoices\" ADD CONSTRAINT"),
        "{err}"
    );
    // Nothing of the restore remains: no user tables besides ours, no new role.
    assert_eq!(s.target.psql_db("fresh", "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname IN ('public', 'billing')"), "invoices");
    assert_eq!(
        s.target.psql_db(
            "fresh",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'app_user'"
        ),
        "0"
    );
}
