//! `snap restore --db` with --schema, --table, --data-only, --jobs and --clean, between real
//! throwaway clusters (same setup as tests/cli_restore_db.rs).

#[path = "support/pg.rs"]
mod pg;
mod support;

use std::collections::BTreeMap;

use pg::PgCluster;
use serde_json::Value;
use support::*;

struct Setup {
    source: PgCluster,
    target: PgCluster,
    repo: TestRepo,
}

fn setup() -> Setup {
    let source = PgCluster::start();
    source.create_supabase_db("app");
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
    Setup {
        source,
        target,
        repo,
    }
}

fn only(m: &BTreeMap<String, String>, prefix: &str) -> BTreeMap<String, String> {
    m.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn without(m: &BTreeMap<String, String>, prefix: &str) -> BTreeMap<String, String> {
    m.iter()
        .filter(|(k, _)| !k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn tables_in(c: &PgCluster, db: &str, schema: &str) -> String {
    c.psql_db(db, &format!("SELECT coalesce(string_agg(tablename, ',' ORDER BY tablename), '') FROM pg_tables WHERE schemaname = '{schema}'"))
}

#[test]
fn schema_table_and_data_only_restores_touch_nothing_else() {
    let s = setup();
    let url = s.target.url_db("fresh");
    let src = s.source.table_fingerprints("app");

    // billing needs public (its default uses public.invoice_number_seq, its FK public.orders):
    // into a fresh project it fails, and the transaction leaves the target unchanged.
    let (code, _, err) = s.repo.run(&[
        "restore", "latest", "--db", "--db-url", &url, "--schema", "billing", "--yes",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("rolled back, the target is unchanged"),
        "{err}"
    );
    assert_eq!(
        s.target.psql_db(
            "fresh",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'billing'"
        ),
        "0"
    );

    // --schema public: public only; billing is not created, auth/storage rows untouched. The
    // fresh project has none of the snapshot's users, so the profiles' foreign key to
    // auth.users has orphans: it is left NOT VALID and verification says so (exit 1).
    let before = s.target.table_fingerprints("fresh");
    let (code, out, err) = s.repo.run(&[
        "restore", "latest", "--db", "--db-url", &url, "--schema", "public", "--yes", "--json",
    ]);
    assert_eq!(code, 1, "{err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let failed: Vec<&Value> = v["verification"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0]["detail"].as_str().unwrap().contains(
            "50 rows of public.profiles are not in auth.users (profiles_id_fkey, NOT VALID)"
        ),
        "{failed:?}"
    );
    assert_eq!(
        s.target.psql_db(
            "fresh",
            "SELECT convalidated FROM pg_constraint WHERE conname = 'profiles_id_fkey'"
        ),
        "f"
    );
    let after = s.target.table_fingerprints("fresh");
    assert_eq!(only(&after, "public."), only(&src, "public."));
    assert_eq!(
        without(&after, "public."),
        without(&before, "public."),
        "nothing outside public changed"
    );
    assert_eq!(
        s.target.psql_db(
            "fresh",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'billing'"
        ),
        "0"
    );
    assert_eq!(
        s.target.psql_db("fresh", "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"),
        s.source.psql_db("app", "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'supabase_realtime' AND schemaname = 'public'")
    );
    // Its sequences are set as in the source.
    assert_eq!(
        s.target
            .psql_db("fresh", "SELECT last_value FROM public.invoice_number_seq"),
        s.source
            .psql_db("app", "SELECT last_value FROM public.invoice_number_seq")
    );

    // --schema billing now: billing only.
    let before = s.target.table_fingerprints("fresh");
    let (code, out, err) = s.repo.run(&[
        "restore", "latest", "--db", "--db-url", &url, "--schema", "billing", "--yes",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    let after = s.target.table_fingerprints("fresh");
    assert_eq!(only(&after, "billing."), only(&src, "billing."));
    assert_eq!(without(&after, "billing."), before);
    assert_eq!(
        s.target
            .psql_db("fresh", "SELECT obj_description('billing'::regnamespace)"),
        "Invoices (owned by the application)"
    );

    // --table public.orders after the table was dropped: that table, its definition and data.
    s.target
        .psql_db("fresh", "DROP TABLE public.orders CASCADE");
    let before = s.target.table_fingerprints("fresh");
    let (code, out, err) = s.repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &url,
        "--table",
        "public.orders",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    let after = s.target.table_fingerprints("fresh");
    assert_eq!(after.get("public.orders"), src.get("public.orders"));
    assert_eq!(without(&after, "public.orders"), before);
    // Its index, policies, trigger, comment, identity and grants came back with it.
    let q = "SELECT (SELECT count(*) FROM pg_indexes WHERE tablename = 'orders' AND schemaname = 'public') || ',' || \
             (SELECT count(*) FROM pg_policies WHERE tablename = 'orders') || ',' || \
             (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.orders'::regclass AND NOT tgisinternal) || ',' || \
             coalesce(obj_description('public.orders'::regclass), '') || ',' || \
             (SELECT attidentity::text FROM pg_attribute WHERE attrelid = 'public.orders'::regclass AND attname = 'id') || ',' || \
             has_table_privilege('app_user', 'public.orders', 'SELECT')::text";
    assert_eq!(s.target.psql_db("fresh", q), s.source.psql_db("app", q));
    let seq = "SELECT last_value FROM public.orders_id_seq";
    assert_eq!(s.target.psql_db("fresh", seq), s.source.psql_db("app", seq));

    // --data-only into an existing (emptied) table.
    s.target.psql_db("fresh", "TRUNCATE billing.invoices");
    let before = s.target.table_fingerprints("fresh");
    let (code, out, err) = s.repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &url,
        "--table",
        "billing.invoices",
        "--data-only",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    let after = s.target.table_fingerprints("fresh");
    assert_eq!(after.get("billing.invoices"), src.get("billing.invoices"));
    assert_eq!(
        without(&after, "billing.invoices"),
        without(&before, "billing.invoices")
    );
    // …which must exist.
    s.target.create_db("empty");
    let (code, _, err) = s.repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &s.target.url_db("empty"),
        "--table",
        "billing.invoices",
        "--data-only",
        "--yes",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("table billing.invoices does not exist in the target"),
        "{err}"
    );
    // An unknown table is named.
    let (code, _, err) = s.repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &url,
        "--table",
        "public.nope",
        "--yes",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("has no table public.nope"), "{err}");
}

#[test]
fn jobs_restore_equals_the_single_transaction_one_and_clean_restores_again() {
    let s = setup();
    let url = s.target.url_db("fresh");
    let (code, out, err) = s.repo.run(&[
        "restore", "latest", "--db", "--db-url", &url, "--jobs", "2", "--yes", "--json",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verified"], true, "{}", v["verification"]);
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
        s.target.psql_db(
            "fresh",
            "SELECT count(*) FROM supabase_migrations.schema_migrations"
        ),
        "3"
    );
    let seq = "SELECT last_value FROM public.invoice_number_seq";
    assert_eq!(s.target.psql_db("fresh", seq), s.source.psql_db("app", seq));

    // A whole-database --clean drops only user schemas: auth's rows would be loaded twice.
    let (code, out, _) = s.repo.run(&[
        "restore", "latest", "--db", "--db-url", &url, "--clean", "--yes",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("--clean drops only user schemas") && out.contains("auth.users"),
        "{out}"
    );
    assert!(
        out.contains("everything in schema billing") && out.contains("everything in schema public"),
        "{out}"
    );
    assert_eq!(
        s.target.count("fresh", "billing.invoices"),
        s.source.count("app", "billing.invoices")
    );

    // --clean without --yes and without a terminal: refused, with what it would drop.
    let (code, _, err) = s.repo.run(&[
        "restore", "latest", "--db", "--db-url", &url, "--schema", "billing", "--clean",
    ]);
    assert_eq!(code, 2, "a usage error");
    assert!(
        err.contains("pass --yes")
            && err.contains("--clean would drop: everything in schema billing"),
        "{err}"
    );
    // --dry-run shows the target (no password) and the drop list, and changes nothing.
    let (code, out, err) = s.repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &url,
        "--schema",
        "billing",
        "--clean",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(
        out.contains("--clean drops first:")
            && out.contains("everything in schema billing")
            && out.contains("127.0.0.1"),
        "{out}"
    );
    assert!(
        !out.contains("schema public") && !out.contains("schema auth"),
        "{out}"
    );
    // Without --clean the rows block.
    let (code, out, _) = s.repo.run(&[
        "restore", "latest", "--db", "--db-url", &url, "--schema", "billing", "--yes",
    ]);
    assert_eq!(code, 1);
    assert!(
        out.contains("already has rows in billing.invoices"),
        "{out}"
    );

    // --clean --yes over the restored target: restored again, no duplicates.
    let (code, out, err) = s.repo.run(&[
        "restore", "latest", "--db", "--db-url", &url, "--schema", "billing", "--clean", "--yes",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(
        out.contains("dropped first: everything in schema billing"),
        "{out}"
    );
    assert_eq!(
        s.target.table_fingerprints("fresh").get("billing.invoices"),
        src.get("billing.invoices")
    );
    // --clean of one table with --jobs.
    let (code, out, err) = s.repo.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &url,
        "--table",
        "public.order_items",
        "--clean",
        "--jobs",
        "2",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    let mut dst = s.target.table_fingerprints("fresh");
    for excluded in [
        "auth.schema_migrations",
        "storage.migrations",
        "supabase_functions.migrations",
    ] {
        dst.remove(excluded);
    }
    assert_eq!(src, dst);
}

#[test]
fn a_jobs_failure_names_the_table_and_leaves_the_schema_and_loaded_tables() {
    let s = setup();
    let url = s.target.url_db("fresh");
    // An existing, empty order_items whose CHECK refuses the snapshot's rows: schema.sql's
    // CREATE TABLE IF NOT EXISTS passes over it, and its data fails in its own transaction.
    s.target.psql_db(
        "fresh",
        "CREATE TABLE public.order_items (order_id bigint NOT NULL, line integer NOT NULL, sku text NOT NULL, \
         qty integer NOT NULL CHECK (qty > 1000), unit_price numeric(10, 2) NOT NULL)",
    );
    let (code, out, err) = s.repo.run(&[
        "restore", "latest", "--db", "--db-url", &url, "--jobs", "2", "--yes",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("failed loading table public.order_items")
            && err.contains("not all-or-nothing"),
        "{err}"
    );
    assert!(err.contains("order_items_qty_check"), "{err}");
    // The schema transaction committed: billing exists; public.order_items holds no rows.
    assert_eq!(tables_in(&s.target, "fresh", "billing"), "invoices");
    assert_eq!(s.target.count("fresh", "public.order_items"), 0);
}
