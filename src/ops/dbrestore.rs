//! `snap restore --db`: load a database snapshot into a target database.
//!
//! 1. [`inspect`] the target and compare it with the snapshot's inventory ([`requirements`]):
//!    blocking problems (a missing extension, webhooks or realtime not enabled, a reserved role
//!    missing, an older server, user tables already present) stop the restore with the fix.
//! 2. [`restore`] streams roles.sql → schema.sql → data.sql (session_replication_role = replica,
//!    so triggers stay off) → migrations.sql into ONE `psql --single-transaction` with
//!    ON_ERROR_STOP: a failure leaves the target as it was, and the failing statement is named
//!    with its part and line. On a Supabase target, statements a hosted project refuses
//!    (`GRANT … TO "postgres"`, `ALTER … OWNER TO "supabase_admin"`, the vector tables postgres
//!    cannot write) are skipped and listed, never silently dropped. Then `NOTIFY pgrst`.
//! 3. [`verify`] compares the target with the snapshot: row counts per table, functions,
//!    policies, realtime publication tables, grants to the API roles.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ops::dbsnap::DbSnapshot;
use crate::progress::Progress;
use crate::source::postgres::conn::ConnSpec;
use crate::source::postgres::pgbin::PgTools;
use crate::source::postgres::sanitize::is_reserved_role;
use crate::source::postgres::session::{self, PSQL_ARGS};

/// What the target database has.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct TargetInfo {
    pub server_version_num: u32,
    pub database: String,
    pub extensions: Vec<String>,
    pub available_extensions: Vec<String>,
    pub roles: Vec<String>,
    pub schemas: Vec<String>,
    pub publications: Vec<String>,
    /// `schema.table` of user tables that already hold rows.
    pub nonempty_tables: Vec<String>,
    pub has_http_request: bool,
}

impl TargetInfo {
    /// A Supabase project (hosted or local): auth and storage schemas and the supabase_admin role.
    pub fn is_supabase(&self) -> bool {
        self.schemas.iter().any(|s| s == "auth") && self.schemas.iter().any(|s| s == "storage") && self.roles.iter().any(|r| r == "supabase_admin")
    }
}

const TARGET_SQL: &str = r#"
SELECT json_build_object(
  'server_version_num', current_setting('server_version_num')::int,
  'database', current_database(),
  'extensions', (SELECT coalesce(json_agg(extname ORDER BY extname), '[]') FROM pg_extension),
  'available_extensions', (SELECT coalesce(json_agg(name ORDER BY name), '[]') FROM pg_available_extensions),
  'roles', (SELECT coalesce(json_agg(rolname ORDER BY rolname), '[]') FROM pg_roles),
  'schemas', (SELECT coalesce(json_agg(nspname ORDER BY nspname), '[]') FROM pg_namespace),
  'publications', (SELECT coalesce(json_agg(pubname ORDER BY pubname), '[]') FROM pg_publication),
  'nonempty_tables', (SELECT coalesce(json_agg(format('%s.%s', n.nspname, c.relname) ORDER BY 1), '[]')
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
        AND n.nspname NOT IN ('auth', 'storage', 'extensions', 'supabase_functions', 'realtime', 'vault', 'graphql', 'net', 'cron')
        AND (c.reltuples > 0 OR pg_relation_size(c.oid) > 0)),
  'has_http_request', EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'supabase_functions' AND p.proname = 'http_request')
);
"#;

/// Read what the target has.
pub fn inspect(tools: &PgTools, conn: &ConnSpec) -> Result<TargetInfo> {
    let out = session::query(tools, conn, None, TARGET_SQL)?;
    serde_json::from_str(&out).map_err(|e| Error::Invalid(format!("target inspection returned unexpected output: {e}")))
}

/// One line of the requirement report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirement {
    /// A blocking problem stops the restore.
    pub blocking: bool,
    pub what: String,
    /// What to run or do about it.
    pub fix: Option<String>,
}

fn names<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> + 'a {
    v[key].as_array().into_iter().flatten().map(move |x| x)
}

/// Compare the snapshot's inventory with the target. Pure: no I/O.
pub fn requirements(inventory: &Value, parts_tables: &[(String, String)], t: &TargetInfo) -> Vec<Requirement> {
    let mut out = Vec::new();
    let src_num = inventory["server_version_num"].as_u64().unwrap_or(0) as u32;
    if src_num / 10_000 > t.server_version_num / 10_000 {
        out.push(Requirement {
            blocking: true,
            what: format!(
                "the target runs PostgreSQL {}, older than the snapshot's {}: a dump of a newer server may not load",
                t.server_version_num / 10_000,
                src_num / 10_000
            ),
            fix: Some(format!("restore into PostgreSQL {} or newer", src_num / 10_000)),
        });
    }
    for e in names(inventory, "extensions") {
        let (Some(name), schema) = (e["name"].as_str(), e["schema"].as_str().unwrap_or("public")) else { continue };
        if name == "plpgsql" || t.extensions.iter().any(|x| x == name) {
            continue;
        }
        let available = t.available_extensions.iter().any(|x| x == name);
        out.push(Requirement {
            blocking: true,
            what: format!("extension {name} is not installed in the target{}", if available { "" } else { " (and not available on its server)" }),
            fix: Some(format!("CREATE EXTENSION IF NOT EXISTS \"{name}\" WITH SCHEMA \"{schema}\";")),
        });
    }
    let webhooks = names(inventory, "webhooks").count();
    if webhooks > 0 && !t.has_http_request {
        out.push(Requirement {
            blocking: true,
            what: format!("{webhooks} database webhook trigger(s) need supabase_functions.http_request (and pg_net)"),
            fix: Some("enable Database Webhooks in the target project (Database → Webhooks)".into()),
        });
    }
    let realtime = names(&inventory["realtime"], "tables").count();
    if realtime > 0 && !t.publications.iter().any(|p| p == "supabase_realtime") {
        out.push(Requirement {
            blocking: true,
            what: format!("{realtime} table(s) are in the supabase_realtime publication, which the target lacks"),
            fix: Some("enable Realtime in the target project, or: CREATE PUBLICATION supabase_realtime;".into()),
        });
    }
    let missing_roles: BTreeSet<&str> = names(inventory, "roles")
        .filter_map(|r| r.as_str())
        .filter(|r| is_reserved_role(r) && !r.starts_with("cli_login_") && !t.roles.iter().any(|x| x == r))
        .collect();
    for r in missing_roles {
        out.push(Requirement {
            blocking: true,
            what: format!("role {r} is reserved (roles.sql does not create it) and missing in the target"),
            fix: Some(format!("CREATE ROLE \"{r}\" NOLOGIN;  -- a Supabase project has it")),
        });
    }
    let clash: Vec<String> = parts_tables
        .iter()
        .map(|(s, t)| format!("{s}.{t}"))
        .filter(|st| t.nonempty_tables.contains(st))
        .collect();
    if !clash.is_empty() {
        out.push(Requirement {
            blocking: true,
            what: format!("the target already has rows in {}", clash.join(", ")),
            fix: Some("restore into an empty database".into()),
        });
    }
    out
}

/// Statements a hosted Supabase project refuses; on such a target they are skipped and listed.
pub fn refused_on_managed_target(line: &str) -> bool {
    let l = line.trim_start();
    if l.starts_with("--") {
        return false;
    }
    (l.starts_with("GRANT ") && (l.contains(" TO \"postgres\"") || l.contains(" TO postgres")))
        || (l.starts_with("ALTER ") && (l.contains(" OWNER TO \"supabase_admin\"") || l.contains(" OWNER TO supabase_admin")))
        || l.contains("buckets_vectors")
        || l.contains("vector_indexes")
}

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    pub parts: Vec<String>,
    pub bytes: u64,
    /// Statements skipped because the target is a hosted Supabase project: (part, line, text).
    pub skipped: Vec<(String, u64, String)>,
    pub notified_postgrest: bool,
}

/// Counts lines written, so psql's `<stdin>:LINE` can be mapped back to a part.
struct LineCounter<W> {
    inner: W,
    lines: u64,
}

impl<W: Write> Write for LineCounter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The parts restored, in order (relative to the snapshot's `db/<database>/`).
pub fn restore_parts(db: &DbSnapshot) -> Vec<String> {
    let mut parts = vec!["roles.sql".to_string(), "schema.sql".into(), "data.sql".into()];
    if db.has("migrations.sql") {
        parts.push("migrations.sql".into());
    }
    parts
}

/// Load the snapshot into the target in one transaction.
pub fn restore(db: &DbSnapshot, tools: &PgTools, conn: &ConnSpec, supabase_target: bool, progress: &dyn Progress) -> Result<RestoreReport> {
    let mut report = RestoreReport { parts: restore_parts(db), ..Default::default() };
    let mut cmd = tools.command("psql");
    cmd.args(PSQL_ARGS).args(["--single-transaction", "-f", "-"]);
    conn.apply(&mut cmd);
    let display = format!("psql --single-transaction {}", conn.display());
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().map_err(|e| Error::io(tools.tool("psql"), e))?;
    let mut stderr = child.stderr.take().expect("piped");
    let drain = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut w = LineCounter { inner: std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().expect("piped")), lines: 0 };
    // (part, first line of the part in psql's numbering)
    let mut starts: Vec<(String, u64)> = Vec::new();
    progress.start("restore", None);
    let fed = (|| -> Result<()> {
        for part in report.parts.clone() {
            progress.item(&part);
            starts.push((part.clone(), w.lines + 1));
            let n = match part.as_str() {
                "data.sql" => db.write_data_sql(&mut w)?,
                "roles.sql" | "schema.sql" if supabase_target => {
                    let text = db.read_to_vec(&part)?;
                    for (i, line) in text.split_inclusive(|b| *b == b'\n').enumerate() {
                        let s = String::from_utf8_lossy(line);
                        if refused_on_managed_target(&s) {
                            report.skipped.push((part.clone(), i as u64 + 1, s.trim_end().to_string()));
                            w.write_all(b"-- snap: skipped on a managed target: ").map_err(|e| Error::io("psql stdin", e))?;
                        }
                        w.write_all(line).map_err(|e| Error::io("psql stdin", e))?;
                    }
                    text.len() as u64
                }
                _ => db.write_part(&part, &mut w)?,
            };
            // Parts end with a newline; make sure the next starts on a line of its own.
            w.write_all(b"\n").map_err(|e| Error::io("psql stdin", e))?;
            report.bytes += n;
            progress.bytes(n);
        }
        w.flush().map_err(|e| Error::io("psql stdin", e))
    })();
    drop(w);
    let status = child.wait().map_err(|e| Error::io("psql", e))?;
    let err = drain.join().unwrap_or_default();
    progress.finish();
    if !status.success() {
        return Err(Error::CommandFailed {
            command: display,
            status: format!("{status}; the transaction was rolled back, the target is unchanged"),
            stderr: locate(db, &err, &starts),
        });
    }
    fed?;
    if supabase_target {
        session::query(tools, conn, None, "NOTIFY pgrst, 'reload schema';")?;
        report.notified_postgrest = true;
    }
    Ok(report)
}

/// Rewrite psql's `psql:<stdin>:N: ERROR: …` into the part and line it came from, with the
/// statement's text.
fn locate(db: &DbSnapshot, stderr: &str, starts: &[(String, u64)]) -> String {
    let mut out = String::new();
    for l in stderr.lines() {
        let loc = l.strip_prefix("psql:<stdin>:").and_then(|r| r.split_once(':')).and_then(|(n, rest)| Some((n.parse::<u64>().ok()?, rest)));
        match loc {
            Some((n, rest)) => {
                let (part, first) = starts.iter().rev().find(|(_, s)| *s <= n).cloned().unwrap_or_default();
                let line = n - first + 1;
                out.push_str(&format!("{part} line {line}:{rest}\n"));
                if part != "data.sql"
                    && let Ok(text) = db.read_to_vec(&part)
                {
                    out.push_str(&format!("  statement: {}\n", statement_ending_at(&text, line as usize)));
                }
            }
            None => {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out.trim_end().to_string()
}

/// The statement whose last line is `line` (1-based): back to the line after the previous
/// statement's `;`, a blank line or a comment (psql reports where a statement ends).
fn statement_ending_at(text: &[u8], line: usize) -> String {
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    let end = line.min(lines.len()).max(1);
    let mut start = end - 1;
    while start > 0 {
        let prev = String::from_utf8_lossy(lines[start - 1]);
        let p = prev.trim();
        if p.is_empty() || p.starts_with("--") || p.ends_with(';') {
            break;
        }
        start -= 1;
    }
    lines[start..end].iter().map(|l| String::from_utf8_lossy(l).trim().to_string()).collect::<Vec<_>>().join(" ")
}

/// One verification check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

const VERIFY_SQL: &str = r#"
SELECT json_build_object(
  'functions', (SELECT coalesce(json_agg(format('%s.%s(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))), '[]')
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace),
  'policies', (SELECT coalesce(json_agg(format('%s.%s.%s', schemaname, tablename, policyname)), '[]') FROM pg_policies),
  'realtime', (SELECT coalesce(json_agg(format('%s.%s', schemaname, tablename)), '[]') FROM pg_publication_tables WHERE pubname = 'supabase_realtime'),
  'grants', (SELECT coalesce(json_agg(format('%s %s %s.%s', grantee, privilege_type, table_schema, table_name)), '[]')
      FROM information_schema.role_table_grants WHERE grantee IN ('anon', 'authenticated', 'service_role'))
);
"#;

fn set(v: &Value) -> BTreeSet<String> {
    v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)).collect()
}

/// Compare the restored target with the snapshot.
pub fn verify(db: &DbSnapshot, tools: &PgTools, conn: &ConnSpec) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    let tables: Vec<_> = db.tables().filter(|p| p.schema.is_some() && p.table.is_some()).collect();
    if !tables.is_empty() {
        let q: Vec<String> = tables
            .iter()
            .map(|p| {
                let (s, t) = (p.schema.as_deref().unwrap(), p.table.as_deref().unwrap());
                format!("SELECT count(*) FROM \"{}\".\"{}\"", s.replace('"', "\"\""), t.replace('"', "\"\""))
            })
            .collect();
        let out = session::query(tools, conn, None, &format!("{};", q.join(" UNION ALL ")))?;
        let mut bad = Vec::new();
        for (p, line) in tables.iter().zip(out.lines()) {
            let got: u64 = line.trim().parse().unwrap_or(u64::MAX);
            if Some(got) != p.rows {
                bad.push(format!("{}.{}: {} rows, snapshot has {}", p.schema.as_deref().unwrap_or(""), p.table.as_deref().unwrap_or(""), got, p.rows.unwrap_or(0)));
            }
        }
        checks.push(Check {
            what: format!("row counts of {} tables", tables.len()),
            ok: bad.is_empty(),
            detail: if bad.is_empty() { "all equal".into() } else { bad.join("; ") },
        });
    }
    let target: Value = serde_json::from_str(&session::query(tools, conn, None, VERIFY_SQL)?).map_err(|e| Error::Invalid(format!("verification query: {e}")))?;
    let inv = &db.inventory;
    let want = |key: &str, f: &dyn Fn(&Value) -> Option<String>| -> BTreeSet<String> { names(inv, key).filter_map(f).collect() };
    let compare = |what: &str, want: BTreeSet<String>, have: BTreeSet<String>, checks: &mut Vec<Check>| {
        let missing: Vec<_> = want.difference(&have).cloned().collect();
        checks.push(Check {
            what: format!("{what} ({})", want.len()),
            ok: missing.is_empty(),
            detail: if missing.is_empty() { "all present".into() } else { format!("missing: {}", missing.join(", ")) },
        });
    };
    let user = |v: &Value| !matches!(v["schema"].as_str(), Some("auth" | "storage" | "extensions" | "supabase_functions" | "supabase_migrations" | "realtime" | "vault" | "graphql" | "graphql_public" | "net" | "pgbouncer" | "cron"));
    compare(
        "functions",
        want("functions", &|f| if user(f) { Some(format!("{}.{}({})", f["schema"].as_str()?, f["name"].as_str()?, f["args"].as_str()?)) } else { None }),
        set(&target["functions"]),
        &mut checks,
    );
    compare(
        "policies",
        want("policies", &|p| if user(p) { Some(format!("{}.{}.{}", p["schema"].as_str()?, p["table"].as_str()?, p["policy"].as_str()?)) } else { None }),
        set(&target["policies"]),
        &mut checks,
    );
    compare(
        "realtime publication tables",
        names(&inv["realtime"], "tables").filter_map(|t| Some(format!("{}.{}", t["schema"].as_str()?, t["table"].as_str()?))).collect(),
        set(&target["realtime"]),
        &mut checks,
    );
    compare(
        "grants to anon/authenticated/service_role",
        want("grants", &|g| if user(g) { Some(format!("{} {} {}.{}", g["grantee"].as_str()?, g["privilege"].as_str()?, g["schema"].as_str()?, g["table"].as_str()?)) } else { None }),
        set(&target["grants"]),
        &mut checks,
    );
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target() -> TargetInfo {
        TargetInfo {
            server_version_num: 150018,
            extensions: vec!["plpgsql".into(), "pgcrypto".into()],
            available_extensions: vec!["pgcrypto".into(), "uuid-ossp".into()],
            roles: vec!["postgres".into(), "anon".into()],
            publications: vec![],
            ..Default::default()
        }
    }

    #[test]
    fn requirement_report() {
        let inv = json!({
            "server_version_num": 160002,
            "extensions": [{"name": "plpgsql", "schema": "pg_catalog"}, {"name": "pgcrypto", "schema": "extensions"}, {"name": "uuid-ossp", "schema": "extensions"}, {"name": "postgis", "schema": "public"}],
            "webhooks": [{"schema": "public", "table": "orders", "trigger": "w"}],
            "realtime": {"tables": [{"schema": "public", "table": "orders"}]},
            "roles": ["anon", "authenticated", "app_user", "postgres"],
        });
        let mut t = target();
        t.nonempty_tables = vec!["public.orders".into()];
        let r = requirements(&inv, &[("public".into(), "orders".into()), ("public".into(), "x".into())], &t);
        let text: Vec<String> = r.iter().map(|x| format!("{} | {}", x.what, x.fix.clone().unwrap_or_default())).collect();
        assert!(r.iter().all(|x| x.blocking));
        assert!(text[0].contains("PostgreSQL 15, older than the snapshot's 16"), "{text:?}");
        assert!(text.iter().any(|l| l.contains("CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\" WITH SCHEMA \"extensions\";")));
        assert!(text.iter().any(|l| l.contains("postgis is not installed in the target (and not available")));
        assert!(!text.iter().any(|l| l.contains("pgcrypto") || l.contains("plpgsql")));
        assert!(text.iter().any(|l| l.contains("webhook") && l.contains("Database Webhooks")));
        assert!(text.iter().any(|l| l.contains("supabase_realtime")));
        assert!(text.iter().any(|l| l.contains("role authenticated is reserved")));
        assert!(!text.iter().any(|l| l.contains("app_user")), "roles.sql creates user roles");
        assert!(text.iter().any(|l| l.contains("already has rows in public.orders") && !l.contains("public.x")));
        // A satisfied target: no problems.
        let t = TargetInfo {
            server_version_num: 160004,
            extensions: vec!["pgcrypto".into(), "uuid-ossp".into(), "postgis".into()],
            roles: vec!["anon".into(), "authenticated".into(), "postgres".into()],
            publications: vec!["supabase_realtime".into()],
            has_http_request: true,
            ..Default::default()
        };
        assert!(requirements(&inv, &[("public".into(), "orders".into())], &t).is_empty());
    }

    #[test]
    fn failing_statement_is_shown_whole() {
        let sql = b"SET x = 1;\n\nALTER TABLE ONLY billing.invoices\n    ADD CONSTRAINT invoices_pkey PRIMARY KEY (id);\nSELECT 1;\n";
        assert_eq!(statement_ending_at(sql, 4), "ALTER TABLE ONLY billing.invoices ADD CONSTRAINT invoices_pkey PRIMARY KEY (id);");
        assert_eq!(statement_ending_at(sql, 5), "SELECT 1;");
        assert_eq!(statement_ending_at(sql, 1), "SET x = 1;");
    }

    #[test]
    fn managed_target_statements() {
        assert!(refused_on_managed_target("GRANT ALL ON TABLE \"public\".\"orders\" TO \"postgres\";"));
        assert!(refused_on_managed_target("ALTER TABLE \"public\".\"orders\" OWNER TO \"supabase_admin\";"));
        assert!(refused_on_managed_target("CREATE TABLE IF NOT EXISTS \"storage\".\"buckets_vectors\" ("));
        assert!(!refused_on_managed_target("GRANT ALL ON TABLE \"public\".\"orders\" TO \"anon\";"));
        assert!(!refused_on_managed_target("ALTER TABLE \"public\".\"orders\" OWNER TO \"postgres\";"));
        assert!(!refused_on_managed_target("-- GRANT ALL ON TABLE x TO \"postgres\";"));
    }
}
