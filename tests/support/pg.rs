//! A throwaway PostgreSQL cluster for tests: `initdb` into a private temp dir, `pg_ctl start` on
//! a free port (TCP on 127.0.0.1 plus a private Unix socket directory), stopped and deleted on
//! drop — also when the test panics. Several clusters can run in parallel.
//!
//! When the tests run as root (CI), the server programs run as the `postgres` OS user (initdb
//! refuses root): the temp dir is chowned to it and `initdb`/`pg_ctl` are spawned with its uid
//! and gid (what `runuser -u postgres` does, without PAM). Clients (psql, pg_dump, snap) keep
//! running as the caller. Not root: everything runs as the current user.
//!
//! The binaries come from the newest `/usr/lib/postgresql/<major>/bin` (override with
//! `SNAP_TEST_PG_BIN`). `bash .ci/test.sh` installs PostgreSQL when it is missing.

#![allow(dead_code)]

use std::collections::BTreeMap;

use snap::source::postgres::cluster::{ClusterOptions, LocalCluster, ServerInstall};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Password set for `postgres` by [`PgCluster::start`] (TCP connections do not need it there).
pub const DEFAULT_PASSWORD: &str = "postgres";

/// Row counts of `tests/fixtures/supabase.sql` once loaded (schema-qualified table → rows).
pub const SUPABASE_FIXTURE_ROWS: &[(&str, i64)] = &[
    ("auth.users", 50),
    ("auth.schema_migrations", 3),
    ("storage.buckets", 3),
    ("storage.objects", 200),
    ("storage.migrations", 2),
    ("supabase_migrations.schema_migrations", 3),
    ("supabase_functions.hooks", 2000),
    ("supabase_functions.migrations", 2),
    ("public.profiles", 50),
    ("public.orders", 2000),
    ("public.order_items", 6000),
    ("billing.invoices", 500),
];

/// Row counts of `tests/fixtures/plain.sql`.
pub const PLAIN_FIXTURE_ROWS: &[(&str, i64)] = &[("public.notes", 3), ("public.tags", 2)];

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The newest installed `/usr/lib/postgresql/<major>/bin` with `initdb` (or `SNAP_TEST_PG_BIN`).
pub fn bin_dir() -> PathBuf {
    if let Some(b) = std::env::var_os("SNAP_TEST_PG_BIN") {
        return PathBuf::from(b);
    }
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(rd) = fs::read_dir("/usr/lib/postgresql") {
        for e in rd.flatten() {
            let Some(major) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let bin = e.path().join("bin");
            if bin.join("initdb").is_file() && best.as_ref().is_none_or(|(m, _)| major > *m) {
                best = Some((major, bin));
            }
        }
    }
    match best {
        Some((_, b)) => b,
        None => panic!(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb); \
             `bash .ci/test.sh` installs them (apt-get install postgresql), or set SNAP_TEST_PG_BIN"
        ),
    }
}

/// Remove every libpq environment variable of the caller (PGHOST, PGPASSWORD, …) from `c`, so
/// the test's connection settings are the only ones in effect.
pub fn clear_pg_env(c: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("PG")) {
            c.env_remove(k);
        }
    }
    c
}

/// Percent-encode a URL userinfo / path component (everything but unreserved characters).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Quote an SQL identifier.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quote an SQL string literal (standard_conforming_strings is on).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn show(o: &Output) -> String {
    format!(
        "exit status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A running throwaway cluster. Superuser `postgres`; trust authentication on the socket;
/// on TCP (127.0.0.1) trust for [`PgCluster::start`], scram-sha-256 for
/// [`PgCluster::start_with_password`].
pub struct PgCluster {
    pub port: u16,
    /// The Unix socket directory (use as `host=` / `-h`).
    pub socket_dir: PathBuf,
    /// `/usr/lib/postgresql/<major>/bin` the server runs from (its clients live there too).
    pub bin: PathBuf,
    pub data_dir: PathBuf,
    pub log_file: PathBuf,
    /// The password of `postgres` (needed on TCP only for `start_with_password`).
    pub password: String,
    /// Whether TCP connections must present the password.
    pub password_required: bool,
    /// The role setup SQL and [`PgCluster::psql_db`] run as: `postgres` (the bootstrap
    /// superuser) for [`PgCluster::start`], `supabase_admin` for [`PgCluster::start_hosted`].
    pub admin: String,
    /// The library's throwaway cluster (`snap::source::postgres::cluster`): it starts the
    /// server, and stops and deletes it on drop.
    cluster: LocalCluster,
}

impl PgCluster {
    /// A cluster with trust authentication everywhere (the password is still set).
    pub fn start() -> PgCluster {
        Self::start_inner(DEFAULT_PASSWORD, false, false)
    }

    /// A cluster whose TCP connections need `password` (scram-sha-256); the socket stays trusted.
    pub fn start_with_password(password: &str) -> PgCluster {
        Self::start_inner(password, true, false)
    }

    /// A fresh hosted Supabase project, with its privilege model (`../shared/supabase-facts.md`,
    /// "The privilege model of a hosted project"): the bootstrap superuser is `supabase_admin`,
    /// `postgres` is NOT a superuser, pg_cron is preloaded, and database `postgres` holds the
    /// platform of `tests/fixtures/hosted_platform.sql` (what the project has before any app
    /// touches it). Connect as `postgres` with [`PgCluster::url`]; [`PgCluster::psql_db`] runs
    /// as supabase_admin, [`PgCluster::psql_as`] as any role.
    pub fn start_hosted() -> PgCluster {
        let c = Self::start_inner(DEFAULT_PASSWORD, false, true);
        c.load_file("postgres", &fixture("hosted_platform.sql"));
        c
    }

    fn start_inner(password: &str, password_required: bool, hosted: bool) -> PgCluster {
        let admin = if hosted { "supabase_admin" } else { "postgres" };
        let word = |k: &str, v: &str| (k.to_string(), v.to_string());
        let mut settings = vec![
            word("shared_buffers", "16MB"),
            word("max_connections", "40"),
            word("wal_level", "logical"),
            word("max_wal_senders", "4"),
            word("max_replication_slots", "4"),
            word("log_min_messages", "warning"),
        ];
        if hosted {
            // pg_cron and pg_stat_statements need shared_preload_libraries; pg_cron runs in
            // database `postgres`.
            settings.push(word(
                "shared_preload_libraries",
                "pg_cron,pg_stat_statements",
            ));
            settings.push(word("cron.database_name", "postgres"));
        }
        let opts = ClusterOptions {
            superuser: admin.into(),
            host_auth: if password_required {
                "scram-sha-256"
            } else {
                "trust"
            }
            .into(),
            settings,
            prefix: "snap-pg-".into(),
        };
        let install = ServerInstall {
            major: 0,
            bin: bin_dir(),
        };
        let cluster = LocalCluster::start_with_options(&install, &opts)
            .unwrap_or_else(|e| panic!("starting a throwaway PostgreSQL failed: {e}"));
        let c = PgCluster {
            port: cluster.port(),
            socket_dir: cluster.socket_dir().to_path_buf(),
            bin: cluster.bin().to_path_buf(),
            data_dir: cluster.data_dir().to_path_buf(),
            log_file: cluster.log_file().to_path_buf(),
            password: password.to_string(),
            password_required,
            admin: admin.into(),
            cluster,
        };
        if hosted {
            // The role users connect as: not a superuser (what supautils leaves it).
            c.psql(
                "CREATE ROLE postgres LOGIN NOSUPERUSER CREATEROLE CREATEDB REPLICATION BYPASSRLS; \
                 GRANT SET ON PARAMETER session_replication_role TO postgres; \
                 ALTER DATABASE postgres OWNER TO postgres",
            );
        }
        c.psql(&format!(
            "ALTER ROLE postgres PASSWORD {}",
            quote_literal(password)
        ));
        c
    }

    /// [`PgCluster::psql_db`] as role `user` (e.g. `postgres` on a hosted cluster, where it is
    /// not a superuser).
    pub fn psql_as(&self, user: &str, db: &str, sql: &str) -> String {
        let o = self
            .client("psql")
            .env("PGUSER", user)
            .args([
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .expect("spawn psql");
        assert!(
            o.status.success(),
            "psql -U {user} -d {db} failed on:\n{sql}\n{}",
            show(&o)
        );
        String::from_utf8(o.stdout)
            .expect("psql output is UTF-8")
            .trim_end_matches('\n')
            .to_string()
    }

    /// [`PgCluster::load_file`] as role `user`.
    pub fn load_file_as(&self, user: &str, db: &str, file: &Path) {
        let o = self
            .client("psql")
            .env("PGUSER", user)
            .args(["-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", db, "-f"])
            .arg(file)
            .output()
            .expect("spawn psql");
        assert!(
            o.status.success(),
            "loading {} into {db} as {user} failed: {}",
            file.display(),
            show(&o)
        );
    }

    /// A client program (`psql`, `pg_dump`, `pg_dumpall`, …) from the server's bin directory,
    /// with a clean libpq environment pointing at this cluster's socket as `postgres`
    /// (PGHOST, PGPORT, PGUSER, PGDATABASE=postgres). Override with arguments or more env.
    pub fn client(&self, prog: &str) -> Command {
        let mut c = Command::new(self.bin.join(prog));
        clear_pg_env(&mut c);
        c.env("PGHOST", &self.socket_dir)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.admin)
            .env("PGDATABASE", "postgres")
            .env("PGCLIENTENCODING", "UTF8")
            .env("PGCONNECT_TIMEOUT", "10")
            // No ~/.pgpass of the caller's: a test's passwords come only from the test.
            .env("PGPASSFILE", self.dir().join("no-pgpass"))
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        c
    }

    /// `postgresql://postgres@127.0.0.1:PORT/postgres` (no password in it).
    pub fn url(&self) -> String {
        self.url_db("postgres")
    }

    /// `postgresql://postgres@127.0.0.1:PORT/<db>`.
    pub fn url_db(&self, db: &str) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{}/{}",
            self.port,
            percent_encode(db)
        )
    }

    /// The URL with the percent-encoded password in it.
    pub fn url_with_password(&self, db: &str) -> String {
        format!(
            "postgresql://postgres:{}@127.0.0.1:{}/{}",
            percent_encode(&self.password),
            self.port,
            percent_encode(db)
        )
    }

    /// Run SQL in database `postgres` (see [`PgCluster::psql_db`]).
    pub fn psql(&self, sql: &str) -> String {
        self.psql_db("postgres", sql)
    }

    /// Run SQL with `psql -X -A -t -v ON_ERROR_STOP=1` over the socket; returns stdout without
    /// its trailing newline (rows on lines, columns separated by `|`). Panics with stderr on
    /// failure.
    pub fn psql_db(&self, db: &str, sql: &str) -> String {
        let o = self
            .client("psql")
            .args([
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .expect("spawn psql");
        assert!(
            o.status.success(),
            "psql -d {db} failed on:\n{sql}\n{}",
            show(&o)
        );
        String::from_utf8(o.stdout)
            .expect("psql output is UTF-8")
            .trim_end_matches('\n')
            .to_string()
    }

    /// Load an SQL file into `db` in one transaction (`psql -1 -v ON_ERROR_STOP=1 -f`); panics
    /// with stderr on failure.
    pub fn load_file(&self, db: &str, file: &Path) {
        let o = self
            .client("psql")
            .args(["-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", db, "-f"])
            .arg(file)
            .output()
            .expect("spawn psql");
        assert!(
            o.status.success(),
            "loading {} into {db} failed: {}",
            file.display(),
            show(&o)
        );
    }

    /// `CREATE DATABASE "<name>"`.
    pub fn create_db(&self, name: &str) {
        self.psql(&format!("CREATE DATABASE {}", quote_ident(name)));
    }

    /// A new database `name` with `tests/fixtures/supabase.sql` loaded.
    pub fn create_supabase_db(&self, name: &str) {
        self.create_db(name);
        self.load_file(name, &fixture("supabase.sql"));
    }

    /// The server's major version (e.g. 15).
    pub fn server_major(&self) -> u32 {
        let n: u32 = self
            .psql("SHOW server_version_num")
            .trim()
            .parse()
            .expect("server_version_num");
        n / 10000
    }

    /// `SELECT count(*)` of a (schema-qualified, already quoted if needed) table.
    pub fn count(&self, db: &str, table: &str) -> i64 {
        self.psql_db(db, &format!("SELECT count(*) FROM {table}"))
            .trim()
            .parse()
            .expect("count")
    }

    /// Every ordinary/partitioned table outside the system schemas (`schema.table`, unquoted),
    /// mapped to `rows:md5` of its rows (sorted text form). Two databases with equal maps hold
    /// the same data.
    pub fn table_fingerprints(&self, db: &str) -> BTreeMap<String, String> {
        let tables = self.psql_db(
            db,
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1",
        );
        let tables: Vec<&str> = tables.lines().filter(|l| !l.is_empty()).collect();
        if tables.is_empty() {
            return BTreeMap::new();
        }
        let q: Vec<String> = tables
            .iter()
            .map(|t| {
                format!(
                    "SELECT {lit}, (SELECT count(*) || ':' || md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) FROM {t} x)",
                    lit = quote_literal(t)
                )
            })
            .collect();
        let out = self.psql_db(db, &q.join(" UNION ALL "));
        out.lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(t, f)| (t.replace('"', ""), f.to_string()))
            .collect()
    }

    /// The postmaster's pid (from `postmaster.pid`).
    pub fn pid(&self) -> Option<i32> {
        self.cluster.pid()
    }

    /// The cluster's temp dir (data, socket dir and log are inside).
    pub fn dir(&self) -> &Path {
        self.cluster.dir()
    }

    /// The server log so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }
}

impl PgCluster {
    /// Create `db` as a fresh Supabase project would be before a restore: [`FRESH_PROJECT`],
    /// then Supabase's own auth and storage schemas from a snapshot's `managed/*.sql`, applied
    /// leniently (the user's own additions there may need objects the restore creates).
    pub fn create_fresh_project(&self, db: &str, managed: &[(&str, Vec<u8>)]) {
        self.create_db(db);
        let f = self.dir().join(format!("{db}-fresh.sql"));
        fs::write(&f, FRESH_PROJECT).unwrap();
        self.load_file(db, &f);
        for (name, sql) in managed {
            let p = self.dir().join(format!("{db}-{name}.sql"));
            fs::write(&p, sql).unwrap();
            self.client("psql")
                .args(["-X", "-q", "-d", db, "-f"])
                .arg(&p)
                .output()
                .unwrap();
        }
    }
}

/// What a fresh Supabase project has before anything is restored into it: the reserved roles
/// (created only where missing, so it also runs in a cluster that has them), extensions,
/// Database Webhooks' function and table, and the realtime publication.
pub const FRESH_PROJECT: &str = r#"
DO $$ DECLARE r text; BEGIN
  FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role', 'authenticator', 'supabase_admin',
      'supabase_auth_admin', 'supabase_storage_admin', 'dashboard_user', 'pgbouncer'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN EXECUTE format('CREATE ROLE %I NOLOGIN', r); END IF;
  END LOOP;
END $$;
CREATE SCHEMA IF NOT EXISTS extensions;
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions;
CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA extensions;
CREATE SCHEMA supabase_functions;
CREATE TABLE supabase_functions.hooks (id bigserial PRIMARY KEY, hook_table_id integer NOT NULL,
  hook_name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), request_id bigint);
CREATE FUNCTION supabase_functions.http_request() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE PUBLICATION supabase_realtime;
"#;

/// The catalog facts a restore must reproduce, one query per category, each row one line
/// (`category → sorted lines`). Run with `search_path = ''`, so every name is schema-qualified
/// and nothing depends on the session. System schemas are left out; everything else (the
/// platform's schemas included) is compared, so a restore that drops or adds a platform object
/// shows too. ACLs are the whole ACL (the built-in default spelled out), grantees by name.
pub const CATALOG_QUERIES: &[(&str, &str)] = &[
    (
        "relation ACLs",
        "SELECT format('%s %s owner=%s acl=%s', c.relkind, c.oid::regclass, pg_get_userbyid(c.relowner), \
        pg_temp.acl_text(coalesce(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::\"char\", c.relowner)))) \
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'",
    ),
    (
        "column ACLs",
        "SELECT format('%s.%I %s', a.attrelid::regclass, a.attname, a.attacl) FROM pg_attribute a \
        JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
        WHERE a.attacl IS NOT NULL AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'",
    ),
    (
        "function ACLs",
        "SELECT format('%s owner=%s acl=%s', p.oid::regprocedure, pg_get_userbyid(p.proowner), \
        pg_temp.acl_text(coalesce(p.proacl, acldefault('f', p.proowner)))) \
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'",
    ),
    (
        "schema ACLs",
        "SELECT format('%I owner=%s acl=%s', n.nspname, pg_get_userbyid(n.nspowner), \
        pg_temp.acl_text(coalesce(n.nspacl, acldefault('n', n.nspowner)))) \
        FROM pg_namespace n WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'",
    ),
    (
        "type ACLs",
        "SELECT format('%s owner=%s acl=%s', t.oid::regtype, pg_get_userbyid(t.typowner), \
        pg_temp.acl_text(coalesce(t.typacl, acldefault('T', t.typowner)))) \
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
        WHERE t.typtype IN ('e', 'd', 'r', 'm') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'",
    ),
    (
        "default privileges",
        "SELECT format('%s %s %s %s', pg_get_userbyid(d.defaclrole), coalesce(n.nspname, '-'), d.defaclobjtype, d.defaclacl) \
        FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace",
    ),
    (
        "triggers",
        "SELECT format('%s %s enabled=%s', t.tgrelid::regclass, pg_get_triggerdef(t.oid), t.tgenabled) FROM pg_trigger t WHERE NOT t.tgisinternal",
    ),
    (
        "policies",
        "SELECT format('%I.%I %I %s %s %s using=%s check=%s', schemaname, tablename, policyname, permissive, roles, cmd, qual, with_check) FROM pg_policies",
    ),
    (
        "row security",
        "SELECT format('%s rls=%s force=%s', c.oid::regclass, c.relrowsecurity, c.relforcerowsecurity) FROM pg_class c \
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'",
    ),
    (
        "functions",
        "SELECT format('%s %s', p.oid::regprocedure, md5(pg_get_functiondef(p.oid))) FROM pg_proc p \
        JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind IN ('f', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'",
    ),
    (
        "views",
        "SELECT format('%s %s %s', c.oid::regclass, c.reloptions, md5(pg_get_viewdef(c.oid))) FROM pg_class c \
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'",
    ),
    (
        "constraints",
        "SELECT format('%s %I %s validated=%s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid), c.convalidated) \
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE c.conrelid <> 0 AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'",
    ),
    (
        "indexes",
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'",
    ),
    (
        "publication tables",
        "SELECT format('%s %I.%I', pubname, schemaname, tablename) FROM pg_publication_tables",
    ),
    (
        "extensions",
        "SELECT format('%s %s %s', e.extname, e.extversion, n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace",
    ),
];

/// `pg_temp.acl_text(aclitem[])`: an ACL as sorted `grantee:PRIVILEGE[*]` (grantors left out:
/// a restore grants as its own user).
const ACL_TEXT: &str = "CREATE FUNCTION pg_temp.acl_text(acl aclitem[]) RETURNS text LANGUAGE sql STABLE AS $f$ \
    SELECT string_agg(e, ',' ORDER BY e) FROM (SELECT format('%s:%s%s', CASE WHEN a.grantee = 0 THEN 'PUBLIC' \
    ELSE pg_catalog.pg_get_userbyid(a.grantee) END, a.privilege_type, CASE WHEN a.is_grantable THEN '*' ELSE '' END) AS e \
    FROM pg_catalog.aclexplode(acl) a) z $f$;";

impl PgCluster {
    /// [`CATALOG_QUERIES`] of database `db` (run as the cluster's admin, who sees everything).
    pub fn catalog(&self, db: &str) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for (what, q) in CATALOG_QUERIES {
            let text = self.psql_db(
                db,
                &format!("SET search_path = ''; {ACL_TEXT} SELECT x FROM ({q}) AS t(x) ORDER BY 1"),
            );
            out.insert(
                what.to_string(),
                text.lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
        out
    }

    /// The pg_cron jobs of the cluster: `name|schedule|command|database|user|active`, sorted.
    pub fn cron_jobs(&self) -> Vec<String> {
        let t = self.psql_db("postgres", "SELECT concat_ws('|', jobname, schedule, command, database, username, active) FROM cron.job ORDER BY jobname");
        t.lines().map(str::to_string).collect()
    }
}

/// Panic with every difference between two [`PgCluster::catalog`]s, category by category.
pub fn assert_catalogs_equal(
    source: &BTreeMap<String, Vec<String>>,
    target: &BTreeMap<String, Vec<String>>,
) {
    let mut diffs = Vec::new();
    for (what, want) in source {
        let have = target.get(what).cloned().unwrap_or_default();
        for l in want.iter().filter(|l| !have.contains(l)) {
            diffs.push(format!("{what}: only in the source: {l}"));
        }
        for l in have.iter().filter(|l| !want.contains(l)) {
            diffs.push(format!("{what}: only in the target: {l}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "the restored catalogs differ from the source's:\n{}",
        diffs.join("\n")
    );
}
