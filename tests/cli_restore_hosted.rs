//! `snap restore --db` on clusters with a hosted Supabase project's privilege model
//! (tests/fixtures/hosted_platform.sql): the bootstrap superuser is `supabase_admin`, and the
//! backup and the restore both run as `postgres`, which is NOT a superuser. The app
//! (tests/fixtures/hosted_app.sql) revokes privileges the platform's default privileges grant,
//! has pg_cron jobs, triggers on auth.users and storage.objects, views and foreign keys to
//! auth.users. Every restore is compared with the source catalog by catalog, not only row by row.

#[path = "support/pg.rs"]
mod pg;
mod support;

use pg::{PgCluster, assert_catalogs_equal, fixture};
use serde_json::Value;
use support::*;

/// A hosted source with the app loaded (as postgres) and snapshotted (as postgres).
fn snapshotted_source() -> (PgCluster, TestRepo) {
    let source = PgCluster::start_hosted();
    source.load_file_as("postgres", "postgres", &fixture("hosted_app.sql"));
    assert_eq!(
        source.psql_db(
            "postgres",
            "SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'"
        ),
        "f"
    );
    let repo = TestRepo::new();
    let (code, _, err) = repo.run(&["backup", "db", "--db-url", &source.url()]);
    assert_eq!(code, 0, "{err}");
    (source, repo)
}

#[test]
fn a_whole_restore_as_postgres_into_a_fresh_project_is_exact() {
    let (source, repo) = snapshotted_source();
    let target = PgCluster::start_hosted();
    let (code, out, err) = repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &target.url(),
        "--yes",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verified"], true, "{}", v["verification"]);
    let checks = v["verification"].as_array().unwrap();
    for what in [
        "row counts of",
        "pg_cron jobs (2)",
        "privileges of",
        "your additions to auth and storage (4)",
    ] {
        assert!(
            checks
                .iter()
                .any(|c| c["what"].as_str().unwrap().starts_with(what) && c["ok"] == true),
            "{what}: {checks:?}"
        );
    }
    let applied: Vec<&str> = v["restore"]["additions_applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(
        applied.iter().any(|a| a.contains("on_auth_user_created"))
            && applied
                .iter()
                .any(|a| a.contains("Users upload own avatar")),
        "{applied:?}"
    );
    assert!(
        !applied
            .iter()
            .any(|a| a.contains("update_objects_updated_at")),
        "the Storage service's own trigger is left alone: {applied:?}"
    );
    assert_eq!(v["restore"]["cron_jobs_scheduled"], 2);

    assert_rows_equal(&source, &target);
    // pg_cron jobs come back through cron.schedule_in_database: name, schedule, command,
    // database, user and active flag.
    assert_eq!(source.cron_jobs().len(), 2);
    assert_eq!(source.cron_jobs(), target.cron_jobs());
    // Catalogs: ACLs (exact, not "present"), triggers, policies, functions, views,
    // constraints, default privileges.
    assert_catalogs_equal(&source.catalog("postgres"), &target.catalog("postgres"));
    // The data-exposure cases of atomic-crm, spelled out.
    let may = |role: &str, what: &str| {
        target.psql_db("postgres", &format!("SELECT {what}")) == "t" && !role.is_empty()
    };
    assert!(!may(
        "anon",
        "has_function_privilege('anon', 'public.get_user_id_by_email(text)', 'EXECUTE')"
    ));
    assert!(!may(
        "authenticated",
        "has_function_privilege('authenticated', 'public.get_user_id_by_email(text)', 'EXECUTE')"
    ));
    assert!(!may(
        "anon",
        "has_table_privilege('anon', 'public.secrets', 'SELECT')"
    ));
}

/// Every table's rows equal, but pg_cron's (jobs are compared by [`PgCluster::cron_jobs`]: ids
/// are assigned anew; a restore runs no job) and the platform's own migration tables.
fn assert_rows_equal(source: &PgCluster, target: &PgCluster) {
    let mut src = source.table_fingerprints("postgres");
    let mut dst = target.table_fingerprints("postgres");
    for t in [
        "cron.job",
        "cron.job_run_details",
        "auth.schema_migrations",
        "storage.migrations",
    ] {
        src.remove(t);
        dst.remove(t);
    }
    assert_eq!(src, dst);
}

/// Restore, compare everything with the source; `extra` are more `restore` arguments.
fn restore_and_compare(source: &PgCluster, repo: &TestRepo, extra: &[&str]) -> (PgCluster, Value) {
    let target = PgCluster::start_hosted();
    let url = target.url();
    let mut args = vec![
        "restore",
        "latest",
        "--db",
        "--db-url",
        url.as_str(),
        "--yes",
        "--json",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = repo.run(&args);
    assert_eq!(code, 0, "{extra:?}: {err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verified"], true, "{extra:?}: {}", v["verification"]);
    assert_catalogs_equal(&source.catalog("postgres"), &target.catalog("postgres"));
    assert_rows_equal(source, &target);
    assert_eq!(source.cron_jobs(), target.cron_jobs());
    (target, v)
}

#[test]
fn jobs_and_clean_restores_as_postgres_are_exact_too() {
    let (source, repo) = snapshotted_source();
    // --jobs: schema, privileges in one transaction, tables in parallel, then additions and cron.
    restore_and_compare(&source, &repo, &["--jobs", "3"]);
    // --clean on a fresh project: the row probe meets empty tables there (cron.job_run_details,
    // which once failed with "could not parse XML document").
    restore_and_compare(&source, &repo, &["--clean"]);
}

#[test]
fn the_dry_run_foresees_what_goes_through_an_api_and_what_is_left_out() {
    let (source, repo) = snapshotted_source();
    let target = PgCluster::start_hosted();
    // A platform table postgres may read but not write (as pg_net's queue in schema net), with
    // rows in the snapshot.
    for c in [&source, &target] {
        c.psql_db("postgres", "CREATE SCHEMA net; CREATE TABLE net._http_response (id bigint, status_code int); GRANT USAGE ON SCHEMA net TO postgres; GRANT SELECT ON net._http_response TO postgres");
    }
    source.psql_db(
        "postgres",
        "INSERT INTO net._http_response VALUES (1, 200), (2, 500)",
    );
    let (code, _, err) = repo.run(&["backup", "db", "--db-url", &source.url()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &target.url(),
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(
        out.contains("2 pg_cron job(s) are recreated with cron.schedule_in_database"),
        "{out}"
    );
    assert!(
        out.contains(
            "the rows of net._http_response will not be restored: postgres may not INSERT into it"
        ),
        "{out}"
    );
    assert!(
        out.contains("your additions to auth and storage are applied after the data (4)"),
        "{out}"
    );
    assert!(
        !out.contains("the target has everything the snapshot needs"),
        "{out}"
    );
    assert_eq!(
        target.psql_db(
            "postgres",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0",
        "a dry run changes nothing"
    );
    // The restore itself succeeds, says what it left out, and leaves the rest exact.
    let (code, out, err) = repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &target.url(),
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(
        out.contains("not restored: the rows of net._http_response: postgres may not INSERT"),
        "{out}"
    );
    assert!(out.contains("recreated 2 pg_cron job(s)"), "{out}");
    assert_eq!(target.count("postgres", "net._http_response"), 0);
    assert_eq!(source.cron_jobs(), target.cron_jobs());
    assert_eq!(target.count("postgres", "public.deals"), 300);
}

#[test]
fn without_additions_auth_and_storage_keep_only_the_platforms_objects() {
    let (_source, repo) = snapshotted_source();
    let target = PgCluster::start_hosted();
    let (code, out, err) = repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &target.url(),
        "--yes",
        "--no-auth-storage-additions",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(!out.contains("applied your addition"), "{out}");
    assert_eq!(target.psql_db("postgres", "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'auth.users'::regclass AND NOT tgisinternal"), "0");
    assert_eq!(
        target.psql_db(
            "postgres",
            "SELECT count(*) FROM pg_policy WHERE polrelid = 'storage.objects'::regclass"
        ),
        "0"
    );
}

#[test]
fn clean_keeps_the_schema_recreates_your_dependents_and_refuses_to_drop_what_it_cannot() {
    let (source, repo) = snapshotted_source();
    let (target, _) = restore_and_compare(&source, &repo, &[]);
    let url = target.url();
    // --schema public --clean: the triggers on auth.users and storage.objects call functions
    // in public, so a CASCADE takes them; the restore says so and puts them back. public keeps
    // its owner (pg_database_owner), PUBLIC's USAGE and supabase_admin's default privileges.
    let (code, out, err) = repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &url,
        "--schema",
        "public",
        "--clean",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(out.contains("trigger on_auth_user_created on table auth.users (outside the restored scope; re-created"), "{out}");
    assert!(
        out.contains("trigger on_upload on table storage.objects (outside"),
        "{out}"
    );
    let (code, out, err) = repo.run(&[
        "restore", "latest", "--db", "--db-url", &url, "--schema", "public", "--clean", "--yes",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verified"], true, "{}", v["verification"]);
    assert_catalogs_equal(&source.catalog("postgres"), &target.catalog("postgres"));
    assert_eq!(
        target.psql_db(
            "postgres",
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'"
        ),
        "pg_database_owner"
    );
    assert_rows_equal(&source, &target);

    // --table public.deals --clean: two views and deal_notes' foreign key hang on it, and a
    // table restore cannot re-create them: refused, named, nothing changed.
    let (code, out, _) = repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &url,
        "--table",
        "public.deals",
        "--clean",
        "--yes",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("--clean would also drop, outside what is restored"),
        "{out}"
    );
    assert!(
        out.contains("view public.deal_summary") && out.contains("view public.deals_with_notes"),
        "{out}"
    );
    assert!(
        out.contains("constraint deal_notes_deal_id_fkey on table public.deal_notes"),
        "{out}"
    );
    assert_catalogs_equal(&source.catalog("postgres"), &target.catalog("postgres"));
}

#[test]
fn a_schema_restore_without_its_users_names_the_orphans_and_trusts_no_foreign_key_over_them() {
    let (_source, repo) = snapshotted_source();
    let target = PgCluster::start_hosted();
    let (code, out, err) = repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &target.url(),
        "--schema",
        "public",
        "--yes",
        "--json",
    ]);
    assert_eq!(code, 1, "verification fails: {err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let fk = v["verification"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["what"].as_str().unwrap().starts_with("foreign keys"))
        .cloned()
        .unwrap();
    assert_eq!(fk["ok"], false);
    let d = fk["detail"].as_str().unwrap();
    assert!(
        d.contains(
            "300 rows of public.deals are not in auth.users (deals_user_id_fkey, NOT VALID)"
        ),
        "{d}"
    );
    assert!(
        d.contains("40 rows of public.profiles are not in auth.users"),
        "{d}"
    );
    assert_eq!(target.psql_db("postgres", "SELECT string_agg(conname || '=' || convalidated, ',' ORDER BY conname) FROM pg_constraint WHERE contype = 'f' AND confrelid = 'auth.users'::regclass"), "deals_user_id_fkey=false,profiles_id_fkey=false");
    // The constraints inside the schema hold: deal_notes → deals stays valid.
    assert_eq!(
        target.psql_db(
            "postgres",
            "SELECT convalidated FROM pg_constraint WHERE conname = 'deal_notes_deal_id_fkey'"
        ),
        "t"
    );
    assert_eq!(target.count("postgres", "public.deals"), 300);
}

#[test]
fn the_drill_runs_a_real_project_snapshot() {
    // pg_cron (in pg_catalog, as supautils puts it) and pg_stat_statements need
    // shared_preload_libraries: the drill's throwaway server preloads them.
    let (_source, repo) = snapshotted_source();
    let (code, out, err) = repo.run(&["restore", "latest", "--db", "--verify", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    assert_eq!(code, 0, "{err}\n{out}");
    assert_eq!(v["result"], "PASS", "{out}");
    let prepared = v["prepared"].to_string();
    assert!(
        prepared.contains("shared_preload_libraries = pg_cron,pg_stat_statements"),
        "{prepared}"
    );
    let checks = v["verification"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["what"].as_str().unwrap().starts_with("functions") && c["ok"] == true),
        "{checks:?}"
    );
}

#[test]
fn the_files_of_snap_dump_restore_exactly_with_psql_alone() {
    let (source, repo) = snapshotted_source();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("dump");
    let (code, _, err) = repo.run(&["dump", "latest", "--out", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    assert!(readme.contains("--file schema.sql --file privileges.sql --command 'SET session_replication_role = replica' --file data.sql --file auth-storage-additions.sql --file cron-jobs.sql"), "{readme}");
    // README lists exactly your additions: not the Storage service's own trigger.
    assert!(
        readme.contains("trigger on_auth_user_created on auth.users")
            && readme.contains("policy Users upload own avatar on storage.objects"),
        "{readme}"
    );
    assert!(!readme.contains("update_objects_updated_at"), "{readme}");

    // The README's commands, as postgres, into a fresh project.
    let target = PgCluster::start_hosted();
    let psql = |files: &[&str], single: bool| {
        let mut c = target.client("psql");
        c.env("PGUSER", "postgres").current_dir(&dir).args([
            "-X",
            "-q",
            "--variable",
            "ON_ERROR_STOP=1",
            "-d",
            "postgres",
        ]);
        if single {
            c.arg("--single-transaction");
        }
        for f in files {
            if *f == "replica" {
                c.args(["--command", "SET session_replication_role = replica"]);
            } else {
                c.args(["--file", f]);
            }
        }
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "psql {files:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    psql(
        &[
            "roles.sql",
            "schema.sql",
            "privileges.sql",
            "replica",
            "data.sql",
            "auth-storage-additions.sql",
            "cron-jobs.sql",
        ],
        true,
    );
    psql(&["migrations.sql"], true);
    assert_catalogs_equal(&source.catalog("postgres"), &target.catalog("postgres"));
    assert_eq!(source.cron_jobs(), target.cron_jobs());
    assert_eq!(target.count("postgres", "public.deals"), 300);
}
