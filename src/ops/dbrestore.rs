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
use crate::ops::dbsnap::{DataPart, DbSnapshot};
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
    locate_in(stderr, starts, &|part| if part == "data.sql" { None } else { db.read_to_vec(part).ok() })
}

/// [`locate`] with the texts given by `text_of` (None: do not quote the statement).
fn locate_in(stderr: &str, starts: &[(String, u64)], text_of: &dyn Fn(&str) -> Option<Vec<u8>>) -> String {
    let mut out = String::new();
    for l in stderr.lines() {
        let loc = l.strip_prefix("psql:<stdin>:").and_then(|r| r.split_once(':')).and_then(|(n, rest)| Some((n.parse::<u64>().ok()?, rest)));
        match loc {
            Some((n, rest)) => {
                let (part, first) = starts.iter().rev().find(|(_, s)| *s <= n).cloned().unwrap_or_default();
                let line = n - first + 1;
                out.push_str(&format!("{part} line {line}:{rest}\n"));
                if let Some(text) = text_of(&part) {
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

// ---------------------------------------------------------------------------------------------
// Partial restores (--schema, --table, --data-only), --jobs and --clean.

/// Schemas Supabase manages: never dropped by `--clean`.
pub fn is_managed_schema(s: &str) -> bool {
    matches!(
        s,
        "auth" | "storage" | "extensions" | "supabase_functions" | "supabase_migrations" | "realtime" | "vault" | "graphql" | "graphql_public" | "net"
            | "pgbouncer" | "cron" | "pgsodium" | "pgsodium_masks" | "pgtle" | "repack" | "_analytics" | "_realtime" | "_supavisor" | "etl" | "dbdev"
            | "pgmq" | "tiger" | "tiger_data" | "topology" | "information_schema"
    ) || s.starts_with("pg_")
        || s.starts_with("timescaledb_")
        || s.starts_with("_timescaledb_")
}

/// What a restore covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Scope {
    Whole,
    Schema(String),
    Table(String, String),
}

impl Scope {
    /// `--table schema.table` (quoted parts are not needed: the first `.` separates).
    pub fn table(spec: &str) -> Result<Scope> {
        match spec.split_once('.') {
            Some((s, t)) if !s.is_empty() && !t.is_empty() => Ok(Scope::Table(s.to_string(), t.to_string())),
            _ => Err(Error::Invalid(format!("--table {spec:?}: expected schema.table, e.g. public.orders"))),
        }
    }

    pub fn covers_table(&self, schema: &str, table: &str) -> bool {
        match self {
            Scope::Whole => true,
            Scope::Schema(s) => s == schema,
            Scope::Table(s, t) => s == schema && t == table,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Scope::Whole => "the whole database".into(),
            Scope::Schema(s) => format!("schema {s}"),
            Scope::Table(s, t) => format!("table {s}.{t}"),
        }
    }
}

/// `"x"` with embedded quotes doubled (pg_dump --quote-all-identifiers spelling).
pub fn qi(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// One object of schema.sql: its TOC comment block and the statements after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlBlock {
    pub name: String,
    pub kind: String,
    /// `None` for `Schema: -`.
    pub schema: Option<String>,
    pub text: String,
}

/// Parse `-- Name: N; Type: T; Schema: S; Owner: O` (the name may itself contain `; `).
fn parse_toc(line: &str) -> Option<(String, String, Option<String>)> {
    let rest = line.strip_prefix("-- Name: ")?;
    let ti = rest.rfind("; Type: ")?;
    let name = &rest[..ti];
    let rest = &rest[ti + 8..];
    let si = rest.find("; Schema: ")?;
    let kind = &rest[..si];
    let rest = &rest[si + 10..];
    let schema = rest.split("; Owner:").next().unwrap_or(rest).split("; Tablespace:").next().unwrap_or(rest).trim();
    Some((name.to_string(), kind.to_string(), if schema == "-" { None } else { Some(schema.to_string()) }))
}

/// Split pg_dump plain output at its TOC comment blocks: (preamble, blocks).
pub fn split_schema_sql(text: &str) -> (String, Vec<SqlBlock>) {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut preamble = String::new();
    let mut blocks: Vec<SqlBlock> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let header = lines[i].trim_end() == "--"
            && i + 2 < lines.len()
            && lines[i + 2].trim_end() == "--"
            && parse_toc(lines[i + 1].trim_end()).is_some();
        if header {
            let (name, kind, schema) = parse_toc(lines[i + 1].trim_end()).expect("checked");
            blocks.push(SqlBlock { name, kind, schema, text: String::new() });
        }
        match blocks.last_mut() {
            Some(b) => b.text.push_str(lines[i]),
            None => preamble.push_str(lines[i]),
        }
        i += 1;
    }
    (preamble, blocks)
}

/// The statements of a block (its comment lines aside).
fn body(b: &SqlBlock) -> String {
    b.text.lines().filter(|l| !l.starts_with("--")).collect::<Vec<_>>().join("\n")
}

/// A TOC tag `KW name`: pg_dump quotes the name with --quote-all-identifiers (`SCHEMA "x"`).
fn tag_is(tag: &str, kw: &str, name: &str) -> bool {
    tag.strip_prefix(kw).and_then(|r| r.strip_prefix(' ')).is_some_and(|r| r == name || r == qi(name))
}

/// Whether a block belongs to table `s`.`t` (see [`filter_schema_sql`]).
fn block_of_table(b: &SqlBlock, s: &str, t: &str, owned_seqs: &BTreeSet<String>) -> bool {
    if b.schema.as_deref() != Some(s) {
        return false;
    }
    let st = format!("{}.{}", qi(s), qi(t));
    match b.kind.as_str() {
        "TABLE" => return b.name == t,
        "SEQUENCE" | "SEQUENCE OWNED BY" if owned_seqs.contains(&b.name) => return true,
        "ACL" | "COMMENT" if tag_is(&b.name, "TABLE", t) || b.name.starts_with(&format!("COLUMN {t}.")) || b.name.starts_with(&format!("COLUMN {}.", qi(t))) => return true,
        "ACL" | "COMMENT" if owned_seqs.iter().any(|q| tag_is(&b.name, "SEQUENCE", q)) => return true,
        "SCHEMA" | "FUNCTION" | "VIEW" | "MATERIALIZED VIEW" | "TYPE" | "DOMAIN" => return false,
        _ => {}
    }
    let text = body(b);
    [
        format!("ON {st}"),
        format!("ON TABLE {st}"),
        format!("ALTER TABLE ONLY {st}"),
        format!("ALTER TABLE {st}"),
        format!("TABLE ONLY {st}"),
        format!("OWNED BY {st}."),
    ]
    .iter()
    .any(|p| text.split(p.as_str()).skip(1).any(|after| !after.starts_with('.') && !after.starts_with('"')))
}

/// Sequences owned by table `s`.`t`: identity sequences and `OWNED BY` (serial) ones.
pub fn owned_sequences(blocks: &[SqlBlock], s: &str, t: &str) -> BTreeSet<String> {
    let st = format!("{}.{}", qi(s), qi(t));
    blocks
        .iter()
        .filter(|b| b.schema.as_deref() == Some(s) && matches!(b.kind.as_str(), "SEQUENCE" | "SEQUENCE OWNED BY"))
        .filter(|b| {
            let text = body(b);
            text.contains(&format!("ALTER TABLE {st} ALTER COLUMN")) || text.contains(&format!("ALTER TABLE ONLY {st} ALTER COLUMN")) || text.contains(&format!("OWNED BY {st}."))
        })
        .map(|b| b.name.clone())
        .collect()
}

/// Whether a block is restored for `scope`.
fn block_in_scope(b: &SqlBlock, scope: &Scope, owned_seqs: &BTreeSet<String>) -> bool {
    match scope {
        Scope::Whole => true,
        Scope::Schema(s) => {
            b.schema.as_deref() == Some(s.as_str())
                || (b.kind == "SCHEMA" && b.name == *s)
                || (matches!(b.kind.as_str(), "ACL" | "COMMENT") && tag_is(&b.name, "SCHEMA", s))
        }
        Scope::Table(s, t) => block_of_table(b, s, t, owned_seqs),
    }
}

/// schema.sql reduced to `scope`: the preamble (SET lines) and the blocks of the scope.
pub fn filter_schema_sql(text: &str, scope: &Scope) -> String {
    if *scope == Scope::Whole {
        return text.to_string();
    }
    let (preamble, blocks) = split_schema_sql(text);
    let owned = match scope {
        Scope::Table(s, t) => owned_sequences(&blocks, s, t),
        _ => BTreeSet::new(),
    };
    let mut out = preamble;
    for b in blocks.iter().filter(|b| block_in_scope(b, scope, &owned)) {
        out.push_str(&b.text);
    }
    out
}

/// User schemas schema.sql restores: the ones it creates and the ones its objects live in,
/// never a Supabase-managed one.
pub fn user_schemas(blocks: &[SqlBlock]) -> BTreeSet<String> {
    blocks
        .iter()
        .filter_map(|b| if b.kind == "SCHEMA" { Some(b.name.clone()) } else { b.schema.clone() })
        .filter(|s| !is_managed_schema(s))
        .collect()
}

/// What `--clean` drops for `scope`: (description, statement).
pub fn clean_plan(schema_sql: &str, scope: &Scope) -> Vec<(String, String)> {
    let (_, blocks) = split_schema_sql(schema_sql);
    let schemas: Vec<String> = match scope {
        Scope::Whole => user_schemas(&blocks).into_iter().collect(),
        Scope::Schema(s) if !is_managed_schema(s) => vec![s.clone()],
        Scope::Schema(_) => vec![],
        Scope::Table(s, t) => {
            if is_managed_schema(s) {
                return vec![];
            }
            return vec![(format!("table {s}.{t} (DROP TABLE … CASCADE)"), format!("DROP TABLE IF EXISTS {}.{} CASCADE;", qi(s), qi(t)))];
        }
    };
    schemas
        .into_iter()
        .map(|s| (format!("schema {s} with everything in it (DROP SCHEMA … CASCADE)"), format!("DROP SCHEMA IF EXISTS {q} CASCADE;\nCREATE SCHEMA IF NOT EXISTS {q};", q = qi(&s))))
        .collect()
}

/// `SELECT pg_catalog.setval('"S"."seq"', …)` lines of the data parts that belong to `scope`.
fn setval_in_scope(line: &str, scope: &Scope, owned_seqs: &BTreeSet<String>) -> bool {
    let Some(rest) = line.trim_start().strip_prefix("SELECT pg_catalog.setval('") else { return true };
    match scope {
        Scope::Whole => true,
        Scope::Schema(s) => rest.starts_with(&format!("{}.", qi(s))),
        Scope::Table(s, _) => owned_seqs.iter().any(|q| rest.starts_with(&format!("{}.{}'", qi(s), qi(q)))),
    }
}

fn is_setval(line: &str) -> bool {
    line.trim_start().starts_with("SELECT pg_catalog.setval(")
}

/// The inventory limited to `scope` (webhooks and realtime tables of the restored tables only).
pub fn scope_inventory(inv: &Value, scope: &Scope) -> Value {
    let mut v = inv.clone();
    let keep = |x: &Value| scope.covers_table(x["schema"].as_str().unwrap_or(""), x["table"].as_str().unwrap_or(""));
    if let Some(a) = v.get_mut("webhooks").and_then(|w| w.as_array_mut()) {
        a.retain(keep);
    }
    if let Some(a) = v.get_mut("realtime").and_then(|r| r.get_mut("tables")).and_then(|w| w.as_array_mut()) {
        a.retain(keep);
    }
    v
}

/// Whether `schema`.`table` exists in the target.
pub fn table_exists(tools: &PgTools, conn: &ConnSpec, schema: &str, table: &str) -> Result<bool> {
    let lit = format!("{}.{}", qi(schema), qi(table)).replace('\'', "''");
    Ok(session::query(tools, conn, None, &format!("SELECT to_regclass('{lit}') IS NOT NULL;"))?.trim() == "t")
}

/// Which of `tables` (`schema`, `table`) exist in the target and hold at least one row (exact,
/// unlike [`TargetInfo::nonempty_tables`], and including the Supabase-managed schemas).
pub fn tables_with_rows(tools: &PgTools, conn: &ConnSpec, tables: &[(String, String)]) -> Result<Vec<String>> {
    if tables.is_empty() {
        return Ok(vec![]);
    }
    let q: Vec<String> = tables
        .iter()
        .map(|(s, t)| {
            let lit = format!("{}.{}", qi(s), qi(t)).replace('\'', "''");
            format!(
                "SELECT '{}' WHERE to_regclass('{lit}') IS NOT NULL AND (xpath('/row/c/text()', query_to_xml('SELECT 1 AS c FROM {} LIMIT 1', false, true, '')))[1] IS NOT NULL",
                format!("{s}.{t}").replace('\'', "''"),
                lit
            )
        })
        .collect();
    Ok(session::query(tools, conn, None, &format!("{};", q.join(" UNION ALL ")))?.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect())
}

/// Options of [`restore_scoped`].
#[derive(Debug, Clone)]
pub struct ScopedRestore {
    pub scope: Scope,
    pub data_only: bool,
    /// Load the data of up to N tables in parallel, one session and transaction per table.
    pub jobs: Option<u32>,
    /// Statements run first (from [`clean_plan`]).
    pub clean: Vec<String>,
    /// Roles the target has: roles.sql does not create them again.
    pub existing_roles: Vec<String>,
    pub supabase_target: bool,
}

/// The per-table COPY parts of `scope`.
pub fn scoped_parts<'a>(db: &'a DbSnapshot, scope: &Scope) -> Vec<&'a DataPart> {
    db.tables().filter(|p| scope.covers_table(p.schema.as_deref().unwrap_or(""), p.table.as_deref().unwrap_or(""))).collect()
}

type Feed<'a> = Box<dyn FnOnce(&mut LineCounter<std::io::BufWriter<std::process::ChildStdin>>, &mut Vec<(String, u64)>, &mut RestoreReport) -> Result<()> + 'a>;

/// Run one psql session fed by `feed`; on failure the error names part and line.
fn psql_session(tools: &PgTools, conn: &ConnSpec, texts: &[(String, Vec<u8>)], rolled_back: &str, report: &mut RestoreReport, feed: Feed<'_>) -> Result<()> {
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
    let mut starts = Vec::new();
    let fed = feed(&mut w, &mut starts, report).and_then(|_| w.flush().map_err(|e| Error::io("psql stdin", e)));
    drop(w);
    let status = child.wait().map_err(|e| Error::io("psql", e))?;
    let err = drain.join().unwrap_or_default();
    if !status.success() {
        return Err(Error::CommandFailed {
            command: display,
            status: format!("{status}; {rolled_back}"),
            stderr: locate_in(&err, &starts, &|part| texts.iter().find(|(p, _)| p == part).map(|(_, t)| t.clone())),
        });
    }
    fed
}

fn put(w: &mut dyn Write, b: &[u8]) -> Result<()> {
    w.write_all(b).map_err(|e| Error::io("psql stdin", e))
}

/// Feed an SQL text, skipping what a managed target refuses.
fn feed_text(part: &str, text: &[u8], supabase: bool, w: &mut dyn Write, report: &mut RestoreReport) -> Result<()> {
    for (i, line) in text.split_inclusive(|b| *b == b'\n').enumerate() {
        let s = String::from_utf8_lossy(line);
        if supabase && refused_on_managed_target(&s) {
            report.skipped.push((part.to_string(), i as u64 + 1, s.trim_end().to_string()));
            put(w, b"-- snap: skipped on a managed target: ")?;
        }
        put(w, line)?;
    }
    put(w, b"\n")?;
    report.bytes += text.len() as u64;
    Ok(())
}

/// roles.sql without the `CREATE ROLE` of roles the target already has.
fn roles_for(text: &[u8], existing: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for line in text.split_inclusive(|b| *b == b'\n') {
        let s = String::from_utf8_lossy(line);
        let exists = s
            .trim_end()
            .strip_prefix("CREATE ROLE ")
            .and_then(|r| r.strip_suffix(';'))
            .is_some_and(|r| existing.iter().any(|e| qi(e) == r || e == r));
        if exists {
            out.extend_from_slice(b"-- snap: the role exists: ");
        }
        out.extend_from_slice(line);
    }
    out
}

/// The SQL between COPY parts reduced to `scope` (SET lines kept, other tables' setval out).
fn data_sql_text(db: &DbSnapshot, scope: &Scope, owned: &BTreeSet<String>, with_setval: bool) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for p in db.parts.iter().filter(|p| p.kind != "copy") {
        for line in db.read_to_vec(&p.path)?.split_inclusive(|b| *b == b'\n') {
            let s = String::from_utf8_lossy(line);
            if is_setval(&s) && !(with_setval && setval_in_scope(&s, scope, owned)) {
                continue;
            }
            out.extend_from_slice(line);
        }
    }
    Ok(out)
}

/// The SET lines of the data parts (what each per-table session of `--jobs` starts with).
fn data_settings(db: &DbSnapshot) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for p in db.parts.iter().filter(|p| p.kind != "copy") {
        for line in db.read_to_vec(&p.path)?.split_inclusive(|b| *b == b'\n') {
            let s = String::from_utf8_lossy(line);
            if s.starts_with("SET ") || s.starts_with("SELECT pg_catalog.set_config(") {
                out.extend_from_slice(line);
            }
        }
    }
    out.extend_from_slice(b"SET session_replication_role = replica;\n");
    Ok(out)
}

/// Restore `opts.scope` of the snapshot. Without `jobs`: one transaction (clean → roles →
/// schema → data → migrations): a failure leaves the target as it was. With `jobs`: clean,
/// roles and schema in one transaction, then each table's data in its own session and
/// transaction (up to N at a time), then the sequences and migrations.sql: a failure leaves
/// the schema and the tables already loaded in place, and names the table that failed.
pub fn restore_scoped(db: &DbSnapshot, tools: &PgTools, conn: &ConnSpec, opts: &ScopedRestore, progress: &dyn Progress) -> Result<RestoreReport> {
    let scope = &opts.scope;
    let mut report = RestoreReport::default();
    let schema_full = String::from_utf8_lossy(&db.read_to_vec("schema.sql")?).into_owned();
    let owned = match scope {
        Scope::Table(s, t) => owned_sequences(&split_schema_sql(&schema_full).1, s, t),
        _ => BTreeSet::new(),
    };
    let mut texts: Vec<(String, Vec<u8>)> = Vec::new();
    if !opts.clean.is_empty() {
        texts.push(("clean".into(), (opts.clean.join("\n") + "\n").into_bytes()));
    }
    if !opts.data_only {
        texts.push(("roles.sql".into(), roles_for(&db.read_to_vec("roles.sql")?, &opts.existing_roles)));
        let label = if *scope == Scope::Whole { "schema.sql".to_string() } else { format!("schema.sql ({})", scope.describe()) };
        texts.push((label, filter_schema_sql(&schema_full, scope).into_bytes()));
    }
    let parts = scoped_parts(db, scope);
    let migrations = *scope == Scope::Whole && db.has("migrations.sql");
    let tx_note = "the transaction was rolled back, the target is unchanged";
    progress.start("restore", None);
    let res = (|| -> Result<()> {
        match opts.jobs {
            None => {
                let data = if *scope == Scope::Whole { None } else { Some(data_sql_text(db, scope, &owned, true)?) };
                let mut all = texts.clone();
                if migrations {
                    all.push(("migrations.sql".into(), db.read_to_vec("migrations.sql")?));
                }
                report.parts = texts.iter().map(|(p, _)| p.clone()).collect();
                report.parts.push(if *scope == Scope::Whole { "data.sql".into() } else { format!("data.sql ({} tables of {})", parts.len(), scope.describe()) });
                if migrations {
                    report.parts.push("migrations.sql".into());
                }
                let supabase = opts.supabase_target;
                let texts2 = texts.clone();
                let parts2 = parts.clone();
                let mig = all.iter().find(|(p, _)| p == "migrations.sql").map(|(_, t)| t.clone());
                let data_label = report.parts[texts.len()].clone();
                psql_session(tools, conn, &all, tx_note, &mut report, Box::new(move |w, starts, report| {
                    for (part, text) in &texts2 {
                        progress.item(part);
                        starts.push((part.clone(), w.lines + 1));
                        feed_text(part, text, supabase && part != "clean", w, report)?;
                    }
                    progress.item(&data_label);
                    starts.push((data_label.clone(), w.lines + 1));
                    match &data {
                        None => report.bytes += db.write_data_sql(w)?,
                        Some(sqltext) => {
                            // SET lines and this scope's setval first, then the COPY parts.
                            put(w, sqltext.strip_suffix(b"RESET ALL;\n").unwrap_or(sqltext))?;
                            for p in &parts2 {
                                report.bytes += db.write_part(&p.path, w)?;
                            }
                            put(w, b"RESET ALL;\n")?;
                        }
                    }
                    put(w, b"\n")?;
                    if let Some(m) = &mig {
                        starts.push(("migrations.sql".into(), w.lines + 1));
                        feed_text("migrations.sql", m, false, w, report)?;
                    }
                    Ok(())
                }))
            }
            Some(n) => {
                report.parts = texts.iter().map(|(p, _)| format!("{p} (transaction 1)")).collect();
                if !texts.is_empty() {
                    let supabase = opts.supabase_target;
                    let t2 = texts.clone();
                    psql_session(tools, conn, &texts, tx_note, &mut report, Box::new(move |w, starts, report| {
                        for (part, text) in &t2 {
                            progress.item(part);
                            starts.push((part.clone(), w.lines + 1));
                            feed_text(part, text, supabase && part != "clean", w, report)?;
                        }
                        Ok(())
                    }))?;
                }
                let settings = data_settings(db)?;
                let queue = std::sync::Mutex::new(parts.iter().rev().copied().collect::<Vec<&DataPart>>());
                let failed = std::sync::Mutex::new(None::<(String, Error)>);
                let loaded = std::sync::Mutex::new(Vec::<String>::new());
                let bytes = std::sync::atomic::AtomicU64::new(0);
                let bytes_ref = &bytes;
                std::thread::scope(|sc| {
                    for _ in 0..n.max(1) {
                        sc.spawn(|| {
                            loop {
                                if failed.lock().unwrap().is_some() {
                                    return;
                                }
                                let Some(p) = queue.lock().unwrap().pop() else { return };
                                let name = format!("{}.{}", p.schema.as_deref().unwrap_or(""), p.table.as_deref().unwrap_or(""));
                                let mut r = RestoreReport::default();
                                let settings = settings.clone();
                                let path = p.path.clone();
                                let res = psql_session(tools, conn, &[], "that table's transaction was rolled back", &mut r, Box::new(move |w, starts, _| {
                                    put(w, &settings)?;
                                    starts.push((path.clone(), w.lines + 1));
                                    let n = db.write_part(&path, w)?;
                                    bytes_ref.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                                    Ok(())
                                }));
                                match res {
                                    Ok(()) => loaded.lock().unwrap().push(name),
                                    Err(e) => {
                                        failed.lock().unwrap().get_or_insert((name, e));
                                        return;
                                    }
                                }
                            }
                        });
                    }
                });
                report.bytes += bytes.into_inner();
                let loaded = loaded.into_inner().unwrap();
                report.parts.push(format!("data: {} tables, one transaction each, {n} at a time", loaded.len()));
                if let Some((table, e)) = failed.into_inner().unwrap() {
                    return Err(Error::Invalid(format!(
                        "--jobs restore failed loading table {table}: {e}\nnot all-or-nothing: the schema and the {} table(s) loaded before stay in place{}",
                        loaded.len(),
                        if loaded.is_empty() { String::new() } else { format!(" ({})", loaded.join(", ")) }
                    )));
                }
                let mut tail = data_sql_text(db, scope, &owned, true)?
                    .split_inclusive(|b| *b == b'\n')
                    .filter(|l| {
                        let s = String::from_utf8_lossy(l);
                        s.starts_with("SET ") || s.starts_with("SELECT pg_catalog.set") || s.starts_with("RESET ")
                    })
                    .flatten()
                    .copied()
                    .collect::<Vec<u8>>();
                let mut tail_texts = vec![("sequences".to_string(), std::mem::take(&mut tail))];
                if migrations {
                    tail_texts.push(("migrations.sql".into(), db.read_to_vec("migrations.sql")?));
                    report.parts.push("migrations.sql".into());
                }
                let tt = tail_texts.clone();
                psql_session(tools, conn, &tail_texts, "the sequences and migration history were rolled back; the schema and data stay loaded", &mut report, Box::new(move |w, starts, report| {
                    for (part, text) in &tt {
                        starts.push((part.clone(), w.lines + 1));
                        feed_text(part, text, false, w, report)?;
                    }
                    Ok(())
                }))
            }
        }
    })();
    progress.finish();
    res?;
    if opts.supabase_target {
        session::query(tools, conn, None, "NOTIFY pgrst, 'reload schema';")?;
        report.notified_postgrest = true;
    }
    Ok(report)
}

/// Row counts of the restored tables against the snapshot (a partial restore's verification).
pub fn verify_scoped(db: &DbSnapshot, tools: &PgTools, conn: &ConnSpec, scope: &Scope) -> Result<Vec<Check>> {
    if *scope == Scope::Whole {
        return verify(db, tools, conn);
    }
    let tables = scoped_parts(db, scope);
    if tables.is_empty() {
        return Ok(vec![]);
    }
    let q: Vec<String> = tables.iter().map(|p| format!("SELECT count(*) FROM {}.{}", qi(p.schema.as_deref().unwrap_or("")), qi(p.table.as_deref().unwrap_or("")))).collect();
    let out = session::query(tools, conn, None, &format!("{};", q.join(" UNION ALL ")))?;
    let mut bad = Vec::new();
    for (p, line) in tables.iter().zip(out.lines()) {
        let got: u64 = line.trim().parse().unwrap_or(u64::MAX);
        if Some(got) != p.rows {
            bad.push(format!("{}.{}: {} rows, snapshot has {}", p.schema.as_deref().unwrap_or(""), p.table.as_deref().unwrap_or(""), got, p.rows.unwrap_or(0)));
        }
    }
    Ok(vec![Check {
        what: format!("row counts of {} tables ({})", tables.len(), scope.describe()),
        ok: bad.is_empty(),
        detail: if bad.is_empty() { "all equal".into() } else { bad.join("; ") },
    }])
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

    /// schema.sql of tests/fixtures/supabase.sql as `snap backup db` stores it (pg_dump 15.18
    /// --schema-only --quote-all-identifiers with the Supabase CLI cleanups).
    const REAL_SCHEMA_SQL: &str = r##"--
-- PostgreSQL database dump
--

-- \restrict oLgiWzMWjyL6Ptw6LSo5EtxiVQRUgRZoiRtv2N9gCQ9YDAlJRW5EmEGyoQDXoVd

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: billing; Type: SCHEMA; Schema: -; Owner: postgres
--

CREATE SCHEMA IF NOT EXISTS "billing";


ALTER SCHEMA "billing" OWNER TO "postgres";

--
-- Name: SCHEMA "billing"; Type: COMMENT; Schema: -; Owner: postgres
--

COMMENT ON SCHEMA "billing" IS 'Invoices (owned by the application)';


--
-- Name: SCHEMA "public"; Type: COMMENT; Schema: -; Owner: pg_database_owner
--

COMMENT ON SCHEMA "public" IS 'standard public schema';


--
-- Name: pgcrypto; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS "pgcrypto" WITH SCHEMA "extensions";


--
-- Name: EXTENSION "pgcrypto"; Type: COMMENT; Schema: -; Owner: 
--

-- COMMENT ON EXTENSION "pgcrypto" IS 'cryptographic functions';


--
-- Name: uuid-ossp; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA "extensions";


--
-- Name: EXTENSION "uuid-ossp"; Type: COMMENT; Schema: -; Owner: 
--

-- COMMENT ON EXTENSION "uuid-ossp" IS 'generate universally unique identifiers (UUIDs)';


--
-- Name: order_status; Type: TYPE; Schema: public; Owner: postgres
--

CREATE TYPE "public"."order_status" AS ENUM (
    'pending',
    'paid',
    'shipped',
    'cancelled',
    'refunded'
);


ALTER TYPE "public"."order_status" OWNER TO "postgres";

--
-- Name: TYPE "order_status"; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON TYPE "public"."order_status" IS 'Lifecycle of an order';


--
-- Name: handle_new_user(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE OR REPLACE FUNCTION "public"."handle_new_user"() RETURNS "trigger"
    LANGUAGE "plpgsql" SECURITY DEFINER
    SET "search_path" TO ''
    AS $$
BEGIN
  INSERT INTO public.profiles (id, username, full_name)
  VALUES (NEW.id, split_part(NEW.email, '@', 1), NEW.raw_user_meta_data ->> 'full_name');
  RETURN NEW;
END
$$;


ALTER FUNCTION "public"."handle_new_user"() OWNER TO "postgres";

--
-- Name: set_updated_at(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE OR REPLACE FUNCTION "public"."set_updated_at"() RETURNS "trigger"
    LANGUAGE "plpgsql"
    AS $$
BEGIN
  NEW.updated_at := '2024-06-01 12:00:00+00';
  RETURN NEW;
END
$$;


ALTER FUNCTION "public"."set_updated_at"() OWNER TO "postgres";

--
-- Name: invoice_number_seq; Type: SEQUENCE; Schema: public; Owner: postgres
--

CREATE SEQUENCE IF NOT EXISTS "public"."invoice_number_seq"
    START WITH 1000
    INCREMENT BY 7
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


ALTER TABLE "public"."invoice_number_seq" OWNER TO "postgres";

SET default_tablespace = '';

SET default_table_access_method = "heap";

--
-- Name: invoices; Type: TABLE; Schema: billing; Owner: postgres
--

CREATE TABLE IF NOT EXISTS "billing"."invoices" (
    "id" bigint DEFAULT "nextval"('"public"."invoice_number_seq"'::"regclass") NOT NULL,
    "order_id" bigint NOT NULL,
    "amount_cents" bigint NOT NULL,
    "issued_on" "date" NOT NULL,
    "memo" "text"
);


ALTER TABLE "billing"."invoices" OWNER TO "postgres";

--
-- Name: order_items; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE IF NOT EXISTS "public"."order_items" (
    "order_id" bigint NOT NULL,
    "line" integer NOT NULL,
    "sku" "text" NOT NULL,
    "qty" integer NOT NULL,
    "unit_price" numeric(10,2) NOT NULL,
    CONSTRAINT "order_items_qty_check" CHECK (("qty" > 0))
);


ALTER TABLE "public"."order_items" OWNER TO "postgres";

--
-- Name: orders; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE IF NOT EXISTS "public"."orders" (
    "id" bigint NOT NULL,
    "user_id" "uuid" NOT NULL,
    "total" numeric(12,2) NOT NULL,
    "created_at" timestamp with time zone DEFAULT "now"() NOT NULL,
    "status" "public"."order_status" DEFAULT 'pending'::"public"."order_status" NOT NULL,
    "receipt" "bytea",
    "note" "text",
    CONSTRAINT "orders_total_check" CHECK (("total" >= (0)::numeric))
);


ALTER TABLE "public"."orders" OWNER TO "postgres";

--
-- Name: TABLE "orders"; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON TABLE "public"."orders" IS 'Customer orders: one row per checkout';


--
-- Name: order_totals; Type: VIEW; Schema: public; Owner: postgres
--

CREATE OR REPLACE VIEW "public"."order_totals" WITH ("security_invoker"='true') AS
 SELECT "o"."user_id",
    "count"(*) AS "orders",
    "sum"("o"."total") AS "total"
   FROM "public"."orders" "o"
  GROUP BY "o"."user_id";


ALTER TABLE "public"."order_totals" OWNER TO "postgres";

--
-- Name: VIEW "order_totals"; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON VIEW "public"."order_totals" IS 'Per-user totals, with the caller''s RLS';


--
-- Name: orders_id_seq; Type: SEQUENCE; Schema: public; Owner: postgres
--

ALTER TABLE "public"."orders" ALTER COLUMN "id" ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME "public"."orders_id_seq"
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: profiles; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE IF NOT EXISTS "public"."profiles" (
    "id" "uuid" NOT NULL,
    "username" "text",
    "full_name" "text",
    "bio" "text",
    "settings" "jsonb" DEFAULT '{}'::"jsonb" NOT NULL,
    "updated_at" timestamp with time zone
);


ALTER TABLE "public"."profiles" OWNER TO "postgres";

--
-- Name: TABLE "profiles"; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON TABLE "public"."profiles" IS 'Public profile of each user — créé par un trigger ✓';


--
-- Name: COLUMN "profiles"."settings"; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON COLUMN "public"."profiles"."settings" IS 'UI settings (JSON)';


--
-- Name: invoices invoices_pkey; Type: CONSTRAINT; Schema: billing; Owner: postgres
--

ALTER TABLE ONLY "billing"."invoices"
    ADD CONSTRAINT "invoices_pkey" PRIMARY KEY ("id");


--
-- Name: order_items order_items_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."order_items"
    ADD CONSTRAINT "order_items_pkey" PRIMARY KEY ("order_id", "line");


--
-- Name: orders orders_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."orders"
    ADD CONSTRAINT "orders_pkey" PRIMARY KEY ("id");


--
-- Name: profiles profiles_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."profiles"
    ADD CONSTRAINT "profiles_pkey" PRIMARY KEY ("id");


--
-- Name: profiles profiles_username_key; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."profiles"
    ADD CONSTRAINT "profiles_username_key" UNIQUE ("username");


--
-- Name: orders_user_id_idx; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX "orders_user_id_idx" ON "public"."orders" USING "btree" ("user_id");


--
-- Name: orders orders_webhook; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE OR REPLACE TRIGGER "orders_webhook" AFTER INSERT ON "public"."orders" FOR EACH ROW EXECUTE FUNCTION "supabase_functions"."http_request"('http://host.docker.internal:54321/functions/v1/order-created', 'POST', '{"Content-type":"application/json"}', '{}', '5000');


--
-- Name: profiles profiles_set_updated_at; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE OR REPLACE TRIGGER "profiles_set_updated_at" BEFORE UPDATE ON "public"."profiles" FOR EACH ROW EXECUTE FUNCTION "public"."set_updated_at"();


--
-- Name: invoices invoices_order_id_fkey; Type: FK CONSTRAINT; Schema: billing; Owner: postgres
--

ALTER TABLE ONLY "billing"."invoices"
    ADD CONSTRAINT "invoices_order_id_fkey" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id");


--
-- Name: order_items order_items_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."order_items"
    ADD CONSTRAINT "order_items_order_id_fkey" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE CASCADE;


--
-- Name: orders orders_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."orders"
    ADD CONSTRAINT "orders_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "public"."profiles"("id");


--
-- Name: profiles profiles_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."profiles"
    ADD CONSTRAINT "profiles_id_fkey" FOREIGN KEY ("id") REFERENCES "auth"."users"("id") ON DELETE CASCADE;


--
-- Name: profiles Public profiles are viewable by everyone; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY "Public profiles are viewable by everyone" ON "public"."profiles" FOR SELECT USING (true);


--
-- Name: profiles Users can update own profile; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY "Users can update own profile" ON "public"."profiles" FOR UPDATE TO "authenticated" USING ((( SELECT "auth"."uid"() AS "uid") = "id")) WITH CHECK ((( SELECT "auth"."uid"() AS "uid") = "id"));


--
-- Name: orders Users create own orders; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY "Users create own orders" ON "public"."orders" FOR INSERT TO "authenticated" WITH CHECK ((( SELECT "auth"."uid"() AS "uid") = "user_id"));


--
-- Name: order_items Users see items of own orders; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY "Users see items of own orders" ON "public"."order_items" FOR SELECT TO "authenticated" USING ((EXISTS ( SELECT 1
   FROM "public"."orders" "o"
  WHERE (("o"."id" = "order_items"."order_id") AND ("o"."user_id" = ( SELECT "auth"."uid"() AS "uid"))))));


--
-- Name: orders Users see own orders; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY "Users see own orders" ON "public"."orders" FOR SELECT TO "authenticated" USING ((( SELECT "auth"."uid"() AS "uid") = "user_id"));


--
-- Name: order_items; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE "public"."order_items" ENABLE ROW LEVEL SECURITY;

--
-- Name: orders; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE "public"."orders" ENABLE ROW LEVEL SECURITY;

--
-- Name: profiles; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE "public"."profiles" ENABLE ROW LEVEL SECURITY;

--
-- Name: supabase_realtime; Type: PUBLICATION; Schema: -; Owner: postgres
--

-- CREATE PUBLICATION "supabase_realtime" WITH (publish = 'insert, update, delete, truncate');


ALTER PUBLICATION "supabase_realtime" OWNER TO "postgres";

--
-- Name: supabase_realtime orders; Type: PUBLICATION TABLE; Schema: public; Owner: postgres
--

ALTER PUBLICATION "supabase_realtime" ADD TABLE ONLY "public"."orders";


--
-- Name: supabase_realtime profiles; Type: PUBLICATION TABLE; Schema: public; Owner: postgres
--

ALTER PUBLICATION "supabase_realtime" ADD TABLE ONLY "public"."profiles";


--
-- Name: SCHEMA "billing"; Type: ACL; Schema: -; Owner: postgres
--

GRANT USAGE ON SCHEMA "billing" TO "service_role";


--
-- Name: SCHEMA "public"; Type: ACL; Schema: -; Owner: pg_database_owner
--

GRANT USAGE ON SCHEMA "public" TO "anon";
GRANT USAGE ON SCHEMA "public" TO "authenticated";
GRANT USAGE ON SCHEMA "public" TO "service_role";


--
-- Name: FUNCTION "handle_new_user"(); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION "public"."handle_new_user"() FROM PUBLIC;


--
-- Name: FUNCTION "set_updated_at"(); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION "public"."set_updated_at"() TO "anon";
GRANT ALL ON FUNCTION "public"."set_updated_at"() TO "authenticated";
GRANT ALL ON FUNCTION "public"."set_updated_at"() TO "service_role";


--
-- Name: SEQUENCE "invoice_number_seq"; Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON SEQUENCE "public"."invoice_number_seq" TO "authenticated";
GRANT ALL ON SEQUENCE "public"."invoice_number_seq" TO "service_role";


--
-- Name: TABLE "invoices"; Type: ACL; Schema: billing; Owner: postgres
--

GRANT SELECT ON TABLE "billing"."invoices" TO "service_role";


--
-- Name: TABLE "order_items"; Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON TABLE "public"."order_items" TO "authenticated";
GRANT ALL ON TABLE "public"."order_items" TO "service_role";


--
-- Name: TABLE "orders"; Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON TABLE "public"."orders" TO "authenticated";
GRANT ALL ON TABLE "public"."orders" TO "service_role";
GRANT SELECT ON TABLE "public"."orders" TO "app_user";


--
-- Name: TABLE "order_totals"; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE "public"."order_totals" TO "anon";
GRANT ALL ON TABLE "public"."order_totals" TO "authenticated";
GRANT ALL ON TABLE "public"."order_totals" TO "service_role";


--
-- Name: SEQUENCE "orders_id_seq"; Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON SEQUENCE "public"."orders_id_seq" TO "authenticated";
GRANT ALL ON SEQUENCE "public"."orders_id_seq" TO "service_role";


--
-- Name: TABLE "profiles"; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE "public"."profiles" TO "anon";
GRANT ALL ON TABLE "public"."profiles" TO "authenticated";
GRANT ALL ON TABLE "public"."profiles" TO "service_role";


--
-- Name: DEFAULT PRIVILEGES FOR SEQUENCES; Type: DEFAULT ACL; Schema: public; Owner: postgres
--

ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" GRANT ALL ON SEQUENCES  TO "anon";
ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" GRANT ALL ON SEQUENCES  TO "authenticated";
ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" GRANT ALL ON SEQUENCES  TO "service_role";


--
-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: public; Owner: postgres
--

ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" GRANT ALL ON TABLES  TO "anon";
ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" GRANT ALL ON TABLES  TO "authenticated";
ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" GRANT ALL ON TABLES  TO "service_role";


--
-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: public; Owner: supabase_admin
--

-- ALTER DEFAULT PRIVILEGES FOR ROLE "supabase_admin" IN SCHEMA "public" GRANT ALL ON TABLES  TO "anon";
-- ALTER DEFAULT PRIVILEGES FOR ROLE "supabase_admin" IN SCHEMA "public" GRANT ALL ON TABLES  TO "authenticated";
-- ALTER DEFAULT PRIVILEGES FOR ROLE "supabase_admin" IN SCHEMA "public" GRANT ALL ON TABLES  TO "service_role";


--
-- Name: issue_grant_on_ddl; Type: EVENT TRIGGER; Schema: -; Owner: postgres
--

-- CREATE EVENT TRIGGER "issue_grant_on_ddl" ON "ddl_command_end"
--          WHEN TAG IN ('CREATE EXTENSION')
--    EXECUTE FUNCTION "extensions"."grant_on_ddl"();


-- ALTER EVENT TRIGGER "issue_grant_on_ddl" OWNER TO "postgres";

--
-- PostgreSQL database dump complete
--

-- \unrestrict oLgiWzMWjyL6Ptw6LSo5EtxiVQRUgRZoiRtv2N9gCQ9YDAlJRW5EmEGyoQDXoVd

"##;

    fn kinds(text: &str) -> Vec<String> {
        split_schema_sql(text).1.iter().map(|b| format!("{} | {} | {}", b.kind, b.schema.as_deref().unwrap_or("-"), b.name)).collect()
    }

    #[test]
    fn splits_real_pg_dump_output_into_blocks() {
        let (pre, blocks) = split_schema_sql(REAL_SCHEMA_SQL);
        assert!(pre.contains("SET client_encoding = 'UTF8';") && pre.contains("set_config('search_path', '', false)"));
        assert!(!pre.contains("-- Name:"));
        assert_eq!(blocks.len(), REAL_SCHEMA_SQL.matches("\n-- Name: ").count());
        // Nothing lost, nothing duplicated.
        assert_eq!(pre + &blocks.iter().map(|b| b.text.as_str()).collect::<String>(), REAL_SCHEMA_SQL);
        let b = blocks.iter().find(|b| b.kind == "CONSTRAINT" && b.name == "orders orders_pkey").unwrap();
        assert_eq!(b.schema.as_deref(), Some("public"));
        assert!(b.text.contains("ALTER TABLE ONLY \"public\".\"orders\"") && !b.text.contains("orders_user_id_idx"));
        assert_eq!(parse_toc("-- Name: EXTENSION \"pgcrypto\"; Type: COMMENT; Schema: -; Owner: "), Some(("EXTENSION \"pgcrypto\"".into(), "COMMENT".into(), None)));
        assert_eq!(user_schemas(&blocks).into_iter().collect::<Vec<_>>(), vec!["billing".to_string(), "public".to_string()]);
    }

    #[test]
    fn schema_filter_keeps_the_schema_and_its_objects_only() {
        let billing = filter_schema_sql(REAL_SCHEMA_SQL, &Scope::Schema("billing".into()));
        let k = kinds(&billing);
        assert_eq!(
            k,
            vec![
                "SCHEMA | - | billing",
                "COMMENT | - | SCHEMA \"billing\"",
                "TABLE | billing | invoices",
                "CONSTRAINT | billing | invoices invoices_pkey",
                "FK CONSTRAINT | billing | invoices invoices_order_id_fkey",
                "ACL | - | SCHEMA \"billing\"",
                "ACL | billing | TABLE \"invoices\"",
            ],
            "{billing}"
        );
        assert!(billing.starts_with("--\n-- PostgreSQL database dump") && billing.contains("SET row_security = off;"));
        let public = filter_schema_sql(REAL_SCHEMA_SQL, &Scope::Schema("public".into()));
        assert!(!public.contains("\"billing\".") && !public.contains("CREATE SCHEMA IF NOT EXISTS \"billing\""));
        assert!(public.contains("CREATE TYPE \"public\".\"order_status\"") && public.contains("ADD TABLE ONLY \"public\".\"orders\""));
        assert!(!public.contains("Type: EXTENSION"), "extensions are requirements, not part of a schema");
        assert_eq!(filter_schema_sql(REAL_SCHEMA_SQL, &Scope::Whole), REAL_SCHEMA_SQL);
    }

    #[test]
    fn table_filter_keeps_the_table_and_what_hangs_on_it() {
        let orders = filter_schema_sql(REAL_SCHEMA_SQL, &Scope::Table("public".into(), "orders".into()));
        let k = kinds(&orders);
        for want in [
            "TABLE | public | orders",
            "COMMENT | public | TABLE \"orders\"",
            "SEQUENCE | public | orders_id_seq",
            "CONSTRAINT | public | orders orders_pkey",
            "INDEX | public | orders_user_id_idx",
            "TRIGGER | public | orders orders_webhook",
            "FK CONSTRAINT | public | orders orders_user_id_fkey",
            "POLICY | public | orders Users create own orders",
            "POLICY | public | orders Users see own orders",
            "ROW SECURITY | public | orders",
            "PUBLICATION TABLE | public | supabase_realtime orders",
            "ACL | public | TABLE \"orders\"",
            "ACL | public | SEQUENCE \"orders_id_seq\"",
        ] {
            assert!(k.contains(&want.to_string()), "{want} missing from {k:#?}");
        }
        assert_eq!(k.len(), 13, "{k:#?}");
        // Not the tables that reference it, nor the view over it.
        assert!(!orders.contains("order_items") && !orders.contains("order_totals") && !orders.contains("invoices"));

        // A serial column: CREATE SEQUENCE, OWNED BY and DEFAULT blocks (realistic pg_dump text).
        let serial = "SET x = 1;\n\n--\n-- Name: t; Type: TABLE; Schema: s; Owner: postgres\n--\n\nCREATE TABLE IF NOT EXISTS \"s\".\"t\" (\n    \"id\" integer NOT NULL\n);\n\n\
--\n-- Name: t_id_seq; Type: SEQUENCE; Schema: s; Owner: postgres\n--\n\nCREATE SEQUENCE IF NOT EXISTS \"s\".\"t_id_seq\"\n    AS integer\n    START WITH 1;\n\n\
--\n-- Name: t_id_seq; Type: SEQUENCE OWNED BY; Schema: s; Owner: postgres\n--\n\nALTER SEQUENCE \"s\".\"t_id_seq\" OWNED BY \"s\".\"t\".\"id\";\n\n\
--\n-- Name: t2; Type: TABLE; Schema: s; Owner: postgres\n--\n\nCREATE TABLE IF NOT EXISTS \"s\".\"t2\" (\"id\" integer);\n\n\
--\n-- Name: t id; Type: DEFAULT; Schema: s; Owner: postgres\n--\n\nALTER TABLE ONLY \"s\".\"t\" ALTER COLUMN \"id\" SET DEFAULT \"nextval\"('\"s\".\"t_id_seq\"'::\"regclass\");\n\n\
--\n-- Name: t2 t2_t_fkey; Type: FK CONSTRAINT; Schema: s; Owner: postgres\n--\n\nALTER TABLE ONLY \"s\".\"t2\"\n    ADD CONSTRAINT \"t2_t_fkey\" FOREIGN KEY (\"id\") REFERENCES \"s\".\"t\"(\"id\");\n";
        let k = kinds(&filter_schema_sql(serial, &Scope::Table("s".into(), "t".into())));
        assert_eq!(k, vec!["TABLE | s | t", "SEQUENCE | s | t_id_seq", "SEQUENCE OWNED BY | s | t_id_seq", "DEFAULT | s | t id"]);
        let (_, blocks) = split_schema_sql(serial);
        assert!(setval_in_scope("SELECT pg_catalog.setval('\"s\".\"t_id_seq\"', 5, true);", &Scope::Table("s".into(), "t".into()), &owned_sequences(&blocks, "s", "t")));
        assert!(!setval_in_scope("SELECT pg_catalog.setval('\"s\".\"u_id_seq\"', 5, true);", &Scope::Table("s".into(), "t".into()), &owned_sequences(&blocks, "s", "t")));
        assert!(setval_in_scope("SELECT pg_catalog.setval('\"s\".\"u_id_seq\"', 5, true);", &Scope::Schema("s".into()), &BTreeSet::new()));
        assert!(!setval_in_scope("SELECT pg_catalog.setval('\"s2\".\"u_id_seq\"', 5, true);", &Scope::Schema("s".into()), &BTreeSet::new()));
    }

    #[test]
    fn clean_never_drops_managed_schemas() {
        let whole = clean_plan(REAL_SCHEMA_SQL, &Scope::Whole);
        let stmts: Vec<&str> = whole.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(stmts, vec!["DROP SCHEMA IF EXISTS \"billing\" CASCADE;\nCREATE SCHEMA IF NOT EXISTS \"billing\";", "DROP SCHEMA IF EXISTS \"public\" CASCADE;\nCREATE SCHEMA IF NOT EXISTS \"public\";"]);
        assert!(clean_plan(REAL_SCHEMA_SQL, &Scope::Schema("auth".into())).is_empty());
        assert!(clean_plan(REAL_SCHEMA_SQL, &Scope::Table("storage".into(), "objects".into())).is_empty());
        assert_eq!(clean_plan(REAL_SCHEMA_SQL, &Scope::Table("public".into(), "orders".into()))[0].1, "DROP TABLE IF EXISTS \"public\".\"orders\" CASCADE;");
        for s in ["auth", "storage", "extensions", "supabase_migrations", "pg_toast", "realtime", "vault"] {
            assert!(is_managed_schema(s), "{s}");
        }
        assert_eq!(roles_for(b"CREATE ROLE \"app_user\";\nALTER ROLE \"app_user\" WITH NOLOGIN;\nCREATE ROLE \"other\";\n", &["app_user".into()]), b"-- snap: the role exists: CREATE ROLE \"app_user\";\nALTER ROLE \"app_user\" WITH NOLOGIN;\nCREATE ROLE \"other\";\n");
        assert!(Scope::table("public").is_err());
        assert_eq!(Scope::table("public.orders").unwrap(), Scope::Table("public".into(), "orders".into()));
    }
}
