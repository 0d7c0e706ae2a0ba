//! Feeding the snapshot's SQL to psql: one routine for every scope, `--jobs` and `--clean`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::acl;
use super::additions::{self, AdditionsPlan};
use super::data_plan::{DataPlan, Left};
use super::schema_blocks::{
    filter_schema_sql, is_setval, owned_sequences, setval_in_scope, split_schema_sql,
};
use super::{Scope, qi};
use crate::error::{Error, Result};
use crate::ops::dbsnap::{DataPart, DbSnapshot};
use crate::progress::Progress;
use crate::source::postgres::conn::ConnSpec;
use crate::source::postgres::pgbin::PgTools;
use crate::source::postgres::session::{self, PSQL_ARGS};

/// Statements a hosted Supabase project refuses; on such a target they are skipped and listed.
pub fn refused_on_managed_target(line: &str) -> bool {
    let l = line.trim_start();
    if l.starts_with("--") {
        return false;
    }
    (l.starts_with("GRANT ") && (l.contains(" TO \"postgres\"") || l.contains(" TO postgres")))
        || (l.starts_with("ALTER ")
            && (l.contains(" OWNER TO \"supabase_admin\"")
                || l.contains(" OWNER TO supabase_admin")))
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
    /// What the target's user may not write, left out (see [`DataPlan`]).
    pub left_out: Vec<Left>,
    /// pg_cron jobs recreated with `cron.schedule_in_database`.
    pub cron_jobs_scheduled: usize,
    /// The user's additions to auth and storage applied (see [`AdditionsPlan`]).
    pub additions_applied: Vec<String>,
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
    let mut parts = vec![
        "roles.sql".to_string(),
        "schema.sql".into(),
        "data.sql".into(),
    ];
    if db.has("migrations.sql") {
        parts.push("migrations.sql".into());
    }
    parts
}

/// Rewrite psql's `psql:<stdin>:N: ERROR: …` into the part and line it came from, with the
/// statement's text (from `text_of`; None: do not quote the statement).
pub(super) fn locate_in(
    stderr: &str,
    starts: &[(String, u64)],
    text_of: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> String {
    let mut out = String::new();
    for l in stderr.lines() {
        let loc = l
            .strip_prefix("psql:<stdin>:")
            .and_then(|r| r.split_once(':'))
            .and_then(|(n, rest)| Some((n.parse::<u64>().ok()?, rest)));
        match loc {
            Some((n, rest)) => {
                let (part, first) = starts
                    .iter()
                    .rev()
                    .find(|(_, s)| *s <= n)
                    .cloned()
                    .unwrap_or_default();
                let line = n - first + 1;
                out.push_str(&format!("{part} line {line}:{rest}\n"));
                if let Some(text) = text_of(&part) {
                    out.push_str(&format!(
                        "  statement: {}\n",
                        statement_ending_at(&text, line as usize)
                    ));
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
pub(super) fn statement_ending_at(text: &[u8], line: usize) -> String {
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
    lines[start..end]
        .iter()
        .map(|l| String::from_utf8_lossy(l).trim().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Options of [`restore`].
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub scope: Scope,
    pub data_only: bool,
    /// Load the data of up to N tables in parallel, one session and transaction per table.
    pub jobs: Option<u32>,
    /// Statements run first (from [`clean_plan`]).
    pub clean: Vec<String>,
    /// Roles the target has: roles.sql does not create them again.
    pub existing_roles: Vec<String>,
    pub supabase_target: bool,
    /// Rows and sequence values the target's user may not write, and pg_cron jobs.
    pub data: DataPlan,
    /// The user's additions to auth and storage, applied after the data.
    pub additions: AdditionsPlan,
}

impl RestoreOptions {
    /// The whole database in one transaction, roles.sql as it is (`snap restore --db` without
    /// options, and the restore drill).
    pub fn whole(supabase_target: bool) -> RestoreOptions {
        RestoreOptions {
            scope: Scope::Whole,
            data_only: false,
            jobs: None,
            clean: vec![],
            existing_roles: vec![],
            supabase_target,
            data: DataPlan::default(),
            additions: AdditionsPlan::default(),
        }
    }
}

/// Feed the data SQL part `rel` without the setvals `plan` leaves out.
fn write_sql_part(db: &DbSnapshot, rel: &str, plan: &DataPlan, w: &mut dyn Write) -> Result<u64> {
    let text = db.read_to_vec(rel)?;
    for line in text.split_inclusive(|b| *b == b'\n') {
        if plan.feeds_line(&String::from_utf8_lossy(line)) {
            put(w, line)?;
        } else {
            put(w, b"-- snap: left out (the target's user may not set it): ")?;
            put(w, line)?;
        }
    }
    Ok(text.len() as u64)
}

/// (schema, table) of COPY parts.
pub(super) fn part_tables(parts: &[&DataPart]) -> Vec<(String, String)> {
    parts
        .iter()
        .filter_map(|p| Some((p.schema.clone()?, p.table.clone()?)))
        .collect()
}

/// The part that recreates the pg_cron jobs.
const CRON: &str = "pg_cron jobs";

/// The part that applies the user's additions to auth and storage.
const ADDITIONS: &str = "your additions to auth and storage";

/// The part that sets every restored object's privileges exactly ([`acl`]).
const PRIVILEGES: &str = "privileges";

/// The sequences owned by the table of a `--table` scope (none for other scopes).
pub(super) fn owned_of(schema_sql: &str, scope: &Scope) -> BTreeSet<String> {
    match scope {
        Scope::Table(s, t) => owned_sequences(&split_schema_sql(schema_sql).1, s, t),
        _ => BTreeSet::new(),
    }
}

/// The SQL that sets the privileges of what `scope` restores to the snapshot's, exactly (empty
/// for a snapshot written before snap recorded ACLs).
pub fn privileges_sql(db: &DbSnapshot, scope: &Scope, owned: &BTreeSet<String>) -> Result<String> {
    let Some(acls) = db.catalog()?.map(|c| &c.acls) else {
        return Ok(String::new());
    };
    Ok(acl::set_sql(
        &acl::objects_in_scope(acls, scope, owned),
        &acl::defaults_in_scope(acls, scope),
    ))
}

/// `data.sql` as [`DbSnapshot::write_data_sql`] writes it, without what `plan` leaves out
/// (commented, so line numbers still match).
pub fn write_planned_data_sql(db: &DbSnapshot, plan: &DataPlan, w: &mut dyn Write) -> Result<u64> {
    let mut n = 0;
    for p in &db.parts {
        n += write_planned_part(db, p, plan, w)?;
    }
    Ok(n)
}

/// One part of `data.sql`, without what `plan` leaves out (commented).
fn write_planned_part(
    db: &DbSnapshot,
    p: &DataPart,
    plan: &DataPlan,
    w: &mut dyn Write,
) -> Result<u64> {
    match p.kind.as_str() {
        "copy" if !plan.feeds(p) => write_left_out(db, &p.path, w),
        "copy" => db.write_part(&p.path, w),
        _ => write_sql_part(db, &p.path, plan, w),
    }
}

/// A COPY part left out, as comments (so psql's line numbers still match data.sql's).
fn write_left_out(db: &DbSnapshot, rel: &str, w: &mut dyn Write) -> Result<u64> {
    let text = db.read_to_vec(rel)?;
    for line in text.split_inclusive(|b| *b == b'\n') {
        put(w, b"-- snap: left out: ")?;
        put(w, line)?;
    }
    Ok(0)
}

/// The per-table COPY parts of `scope`.
pub fn scoped_parts<'a>(db: &'a DbSnapshot, scope: &Scope) -> Vec<&'a DataPart> {
    db.tables()
        .filter(|p| {
            scope.covers_table(
                p.schema.as_deref().unwrap_or(""),
                p.table.as_deref().unwrap_or(""),
            )
        })
        .collect()
}

type Feed<'a> =
    Box<dyn FnOnce(&mut PsqlStdin, &mut Vec<(String, u64)>, &mut RestoreReport) -> Result<()> + 'a>;

/// Run one psql session fed by `feed`; on failure the error names part and line.
fn psql_session(
    tools: &PgTools,
    conn: &ConnSpec,
    texts: &[(String, Vec<u8>)],
    rolled_back: &str,
    report: &mut RestoreReport,
    feed: Feed<'_>,
) -> Result<()> {
    let mut cmd = tools.command("psql");
    cmd.args(PSQL_ARGS)
        .args(["--single-transaction", "-f", "-"]);
    conn.apply(&mut cmd);
    let display = format!("psql --single-transaction {}", conn.display());
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(tools.tool("psql"), e))?;
    let mut stderr = child.stderr.take().expect("piped");
    let drain = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut w = LineCounter {
        inner: std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().expect("piped")),
        lines: 0,
    };
    let mut starts = Vec::new();
    let fed = feed(&mut w, &mut starts, report)
        .and_then(|_| w.flush().map_err(|e| Error::io("psql stdin", e)));
    drop(w);
    let status = child.wait().map_err(|e| Error::io("psql", e))?;
    let err = drain.join().unwrap_or_default();
    if !status.success() {
        return Err(Error::CommandFailed {
            command: display,
            status: format!("{status}; {rolled_back}"),
            stderr: locate_in(&err, &starts, &|part| {
                texts
                    .iter()
                    .find(|(p, _)| p == part)
                    .map(|(_, t)| t.clone())
            }),
        });
    }
    fed
}

pub(super) fn put(w: &mut dyn Write, b: &[u8]) -> Result<()> {
    w.write_all(b).map_err(|e| Error::io("psql stdin", e))
}

/// Feed an SQL text, skipping what a managed target refuses.
pub(super) fn feed_text(
    part: &str,
    text: &[u8],
    supabase: bool,
    w: &mut dyn Write,
    report: &mut RestoreReport,
) -> Result<()> {
    for (i, line) in text.split_inclusive(|b| *b == b'\n').enumerate() {
        let s = String::from_utf8_lossy(line);
        if supabase && refused_on_managed_target(&s) {
            report
                .skipped
                .push((part.to_string(), i as u64 + 1, s.trim_end().to_string()));
            put(w, b"-- snap: skipped on a managed target: ")?;
        }
        put(w, line)?;
    }
    put(w, b"\n")?;
    report.bytes += text.len() as u64;
    Ok(())
}

/// roles.sql without the `CREATE ROLE` of roles the target already has.
pub(super) fn roles_for(text: &[u8], existing: &[String]) -> Vec<u8> {
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
pub(super) fn data_sql_text(
    db: &DbSnapshot,
    scope: &Scope,
    owned: &BTreeSet<String>,
    with_setval: bool,
    plan: &DataPlan,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for p in db.parts.iter().filter(|p| p.kind != "copy") {
        for line in db.read_to_vec(&p.path)?.split_inclusive(|b| *b == b'\n') {
            let s = String::from_utf8_lossy(line);
            if is_setval(&s)
                && !(with_setval && setval_in_scope(&s, scope, owned) && plan.feeds_line(&s))
            {
                continue;
            }
            out.extend_from_slice(line);
        }
    }
    Ok(out)
}

/// The SET lines of the data parts (what each per-table session of `--jobs` starts with).
pub(super) fn data_settings(db: &DbSnapshot) -> Result<Vec<u8>> {
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

/// Restore `opts.scope` of the snapshot ([`RestoreOptions::whole`]: all of it). Without `jobs`: one transaction (clean → roles →
/// schema → data → migrations): a failure leaves the target as it was. With `jobs`: clean,
/// roles and schema in one transaction, then each table's data in its own session and
/// transaction (up to N at a time), then the sequences and migrations.sql: a failure leaves
/// the schema and the tables already loaded in place, and names the table that failed.
pub fn restore(
    db: &DbSnapshot,
    tools: &PgTools,
    conn: &ConnSpec,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let r = Restore::new(db, tools, conn, opts, progress)?;
    let mut report = r.initial_report();
    r.start_progress();
    let res = match opts.jobs {
        None => r.one_transaction(&mut report),
        Some(n) => r.with_jobs(n, &mut report),
    };
    progress.finish();
    res?;
    if opts.supabase_target {
        session::query(tools, conn, None, "NOTIFY pgrst, 'reload schema';")?;
        report.notified_postgrest = true;
    }
    Ok(report)
}

/// What psql's stdin is written through.
type PsqlStdin = LineCounter<std::io::BufWriter<std::process::ChildStdin>>;

/// The note of a failed transaction that leaves the target as it was.
const TX_NOTE: &str = "the transaction was rolled back, the target is unchanged";

/// The texts fed before the data: clean, roles.sql, schema.sql (reduced to the scope) and the
/// privileges (roles, schema and privileges not with `data_only`).
fn texts_before_data(
    db: &DbSnapshot,
    opts: &RestoreOptions,
    schema_full: &str,
    owned: &BTreeSet<String>,
) -> Result<Vec<(String, Vec<u8>)>> {
    let scope = &opts.scope;
    let mut texts: Vec<(String, Vec<u8>)> = Vec::new();
    if !opts.clean.is_empty() {
        texts.push(("clean".into(), (opts.clean.join("\n") + "\n").into_bytes()));
    }
    if !opts.data_only {
        texts.push((
            "roles.sql".into(),
            roles_for(&db.read_to_vec("roles.sql")?, &opts.existing_roles),
        ));
        let label = if *scope == Scope::Whole {
            "schema.sql".to_string()
        } else {
            format!("schema.sql ({})", scope.describe())
        };
        texts.push((label, filter_schema_sql(schema_full, scope).into_bytes()));
        let privileges = privileges_sql(db, scope, owned)?;
        if !privileges.is_empty() {
            texts.push((PRIVILEGES.into(), privileges.into_bytes()));
        }
    }
    Ok(texts)
}

/// One [`restore`]: what it restores, and the SQL fed around the data.
struct Restore<'a> {
    db: &'a DbSnapshot<'a>,
    tools: &'a PgTools,
    conn: &'a ConnSpec,
    opts: &'a RestoreOptions,
    progress: &'a dyn Progress,
    /// Recreates the pg_cron jobs.
    cron: String,
    /// Applies the user's additions to auth and storage.
    added: String,
    /// The sequences owned by a `--table` scope's table.
    owned: BTreeSet<String>,
    /// Fed before the data (see [`texts_before_data`]).
    texts: Vec<(String, Vec<u8>)>,
    /// The scope's COPY parts that are fed.
    parts: Vec<&'a DataPart>,
    /// Whether migrations.sql is restored.
    migrations: bool,
    /// A selective restore's checks of the foreign keys it loaded into.
    fk_sql: String,
}

impl<'a> Restore<'a> {
    /// Read what the restore needs from the snapshot and work out what is fed.
    fn new(
        db: &'a DbSnapshot<'a>,
        tools: &'a PgTools,
        conn: &'a ConnSpec,
        opts: &'a RestoreOptions,
        progress: &'a dyn Progress,
    ) -> Result<Restore<'a>> {
        let scope = &opts.scope;
        let plan = &opts.data;
        let cron = plan.cron_sql(&db.database);
        let added = opts.additions.sql(db.catalog()?.map(|c| &c.acls), false);
        let schema_full = String::from_utf8_lossy(&db.read_to_vec("schema.sql")?).into_owned();
        let owned = owned_of(&schema_full, scope);
        let texts = texts_before_data(db, opts, &schema_full, &owned)?;
        let parts: Vec<&DataPart> = scoped_parts(db, scope)
            .into_iter()
            .filter(|p| plan.feeds(p))
            .collect();
        let migrations = *scope == Scope::Whole && db.has("migrations.sql");
        // A selective restore loads into foreign keys it does not check row by row.
        let fk_sql = if *scope == Scope::Whole {
            String::new()
        } else {
            super::fkeys::enforce_sql(&part_tables(&parts))
        };
        Ok(Restore {
            db,
            tools,
            conn,
            opts,
            progress,
            cron,
            added,
            owned,
            texts,
            parts,
            migrations,
            fk_sql,
        })
    }

    /// The report before anything is fed: what the plans leave out and add.
    fn initial_report(&self) -> RestoreReport {
        let plan = &self.opts.data;
        RestoreReport {
            left_out: plan.left_out.clone(),
            cron_jobs_scheduled: plan.cron_jobs.len(),
            additions_applied: self
                .opts
                .additions
                .apply
                .iter()
                .map(additions::describe)
                .collect(),
            ..Default::default()
        }
    }

    /// Start the progress bar, counting the data's bytes (sizes recorded at backup time).
    fn start_progress(&self) {
        // The data is nearly all of it: the bar counts its bytes.
        let data_parts: Vec<&DataPart> = if self.opts.scope == Scope::Whole {
            self.db.parts.iter().collect()
        } else {
            self.parts.clone()
        };
        self.progress.start(
            "restore",
            Some(data_parts.iter().filter_map(|p| p.bytes).sum()),
        );
    }

    /// Without `--jobs`: everything in one psql session and transaction.
    fn one_transaction(&self, report: &mut RestoreReport) -> Result<()> {
        let (db, scope) = (self.db, &self.opts.scope);
        let data = if *scope == Scope::Whole {
            None
        } else {
            Some(data_sql_text(
                db,
                scope,
                &self.owned,
                true,
                &self.opts.data,
            )?)
        };
        let mut all = self.texts.clone();
        if self.migrations {
            all.push(("migrations.sql".into(), db.read_to_vec("migrations.sql")?));
        }
        report.parts = self.texts.iter().map(|(p, _)| p.clone()).collect();
        report.parts.push(if *scope == Scope::Whole {
            "data.sql".into()
        } else {
            format!(
                "data.sql ({} tables of {})",
                self.parts.len(),
                scope.describe()
            )
        });
        if self.migrations {
            report.parts.push("migrations.sql".into());
        }
        let mig = all
            .iter()
            .find(|(p, _)| p == "migrations.sql")
            .map(|(_, t)| t.clone());
        // The texts fed after the data, so a failing statement there is quoted too.
        all.push((ADDITIONS.into(), self.added.clone().into_bytes()));
        all.push((CRON.into(), self.cron.clone().into_bytes()));
        let data_label = report.parts[self.texts.len()].clone();
        psql_session(
            self.tools,
            self.conn,
            &all,
            TX_NOTE,
            report,
            Box::new(move |w, starts, report| {
                self.feed_before_data(w, starts, report)?;
                self.progress.item(&data_label);
                starts.push((data_label.clone(), w.lines + 1));
                self.feed_data(w, data.as_deref(), report)?;
                put(w, b"\n")?;
                self.feed_after_data(w, starts, report, mig.as_deref())
            }),
        )
    }

    /// Feed the texts before the data, skipping what a managed target refuses (but in clean
    /// and privileges).
    fn feed_before_data(
        &self,
        w: &mut PsqlStdin,
        starts: &mut Vec<(String, u64)>,
        report: &mut RestoreReport,
    ) -> Result<()> {
        let supabase = self.opts.supabase_target;
        for (part, text) in &self.texts {
            self.progress.item(part);
            starts.push((part.clone(), w.lines + 1));
            feed_text(
                part,
                text,
                supabase && part != "clean" && part != PRIVILEGES,
                w,
                report,
            )?;
        }
        Ok(())
    }

    /// Feed the data: all of data.sql as planned (None), or the scope's SQL `sqltext` around
    /// its COPY parts.
    fn feed_data(
        &self,
        w: &mut dyn Write,
        data: Option<&[u8]>,
        report: &mut RestoreReport,
    ) -> Result<()> {
        let (db, progress) = (self.db, self.progress);
        match data {
            None => {
                for p in &db.parts {
                    if p.kind == "copy" {
                        progress.item(&p.path);
                    }
                    let n = write_planned_part(db, p, &self.opts.data, w)?;
                    report.bytes += n;
                    progress.bytes(n);
                }
            }
            Some(sqltext) => {
                // SET lines and this scope's setval first, then the COPY parts.
                put(w, sqltext.strip_suffix(b"RESET ALL;\n").unwrap_or(sqltext))?;
                for p in &self.parts {
                    progress.item(&p.path);
                    let n = db.write_part(&p.path, w)?;
                    report.bytes += n;
                    progress.bytes(n);
                }
                put(w, b"RESET ALL;\n")?;
            }
        }
        Ok(())
    }

    /// Feed what follows the data: foreign keys, additions, pg_cron jobs, migrations.sql (`mig`).
    fn feed_after_data(
        &self,
        w: &mut PsqlStdin,
        starts: &mut Vec<(String, u64)>,
        report: &mut RestoreReport,
        mig: Option<&[u8]>,
    ) -> Result<()> {
        if !self.fk_sql.is_empty() {
            starts.push(("foreign keys".into(), w.lines + 1));
            put(w, self.fk_sql.as_bytes())?;
        }
        if !self.added.is_empty() {
            self.progress.item(ADDITIONS);
            starts.push((ADDITIONS.into(), w.lines + 1));
            put(w, self.added.as_bytes())?;
        }
        if !self.cron.is_empty() {
            self.progress.item(CRON);
            starts.push((CRON.into(), w.lines + 1));
            put(w, self.cron.as_bytes())?;
        }
        if let Some(m) = mig {
            self.progress.item("migrations.sql");
            starts.push(("migrations.sql".into(), w.lines + 1));
            feed_text("migrations.sql", m, false, w, report)?;
        }
        Ok(())
    }

    /// With `--jobs n`: the schema in one transaction, each table in its own, then the tail.
    fn with_jobs(&self, n: u32, report: &mut RestoreReport) -> Result<()> {
        self.schema_transaction(report)?;
        self.load_tables(n, report)?;
        self.tail_transaction(report)
    }

    /// `--jobs`' first transaction: clean, roles.sql, schema.sql and privileges.
    fn schema_transaction(&self, report: &mut RestoreReport) -> Result<()> {
        report.parts = self
            .texts
            .iter()
            .map(|(p, _)| format!("{p} (transaction 1)"))
            .collect();
        if !self.texts.is_empty() {
            psql_session(
                self.tools,
                self.conn,
                &self.texts,
                TX_NOTE,
                report,
                Box::new(move |w, starts, report| self.feed_before_data(w, starts, report)),
            )?;
        }
        Ok(())
    }

    /// Load each table in its own session, `n` at a time; the first failure stops the rest.
    fn load_tables(&self, n: u32, report: &mut RestoreReport) -> Result<()> {
        let settings = data_settings(self.db)?;
        let queue = Mutex::new(self.parts.iter().rev().copied().collect::<Vec<&DataPart>>());
        let failed = Mutex::new(None::<(String, Error)>);
        let loaded = Mutex::new(Vec::<String>::new());
        let bytes = AtomicU64::new(0);
        std::thread::scope(|sc| {
            for _ in 0..n.max(1) {
                sc.spawn(|| self.load_worker(&queue, &failed, &loaded, &settings, &bytes));
            }
        });
        report.bytes += bytes.into_inner();
        let loaded = loaded.into_inner().unwrap();
        report.parts.push(format!(
            "data: {} tables, one transaction each, {n} at a time",
            loaded.len()
        ));
        if let Some((table, e)) = failed.into_inner().unwrap() {
            return Err(Error::Invalid(format!(
                "--jobs restore failed loading table {table}: {e}\nnot all-or-nothing: the schema and the {} table(s) loaded before stay in place{}",
                loaded.len(),
                if loaded.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", loaded.join(", "))
                }
            )));
        }
        Ok(())
    }

    /// One `--jobs` worker: load tables from `queue` until it is empty or a load failed.
    fn load_worker(
        &self,
        queue: &Mutex<Vec<&DataPart>>,
        failed: &Mutex<Option<(String, Error)>>,
        loaded: &Mutex<Vec<String>>,
        settings: &[u8],
        bytes: &AtomicU64,
    ) {
        loop {
            if failed.lock().unwrap().is_some() {
                return;
            }
            let Some(p) = queue.lock().unwrap().pop() else {
                return;
            };
            let name = format!(
                "{}.{}",
                p.schema.as_deref().unwrap_or(""),
                p.table.as_deref().unwrap_or("")
            );
            match self.load_table(p, settings, bytes) {
                Ok(()) => loaded.lock().unwrap().push(name),
                Err(e) => {
                    failed.lock().unwrap().get_or_insert((name, e));
                    return;
                }
            }
        }
    }

    /// Load one table's COPY part in its own session and transaction.
    fn load_table(&self, p: &DataPart, settings: &[u8], bytes: &AtomicU64) -> Result<()> {
        let mut r = RestoreReport::default();
        let (db, progress) = (self.db, self.progress);
        let path = p.path.clone();
        psql_session(
            self.tools,
            self.conn,
            &[],
            "that table's transaction was rolled back",
            &mut r,
            Box::new(move |w, starts, _| {
                put(w, settings)?;
                starts.push((path.clone(), w.lines + 1));
                progress.item(&path);
                let n = db.write_part(&path, w)?;
                bytes.fetch_add(n, Ordering::Relaxed);
                progress.bytes(n);
                Ok(())
            }),
        )
    }

    /// `--jobs`' last transaction: sequences, foreign keys, additions, pg_cron jobs and
    /// migrations.sql.
    fn tail_transaction(&self, report: &mut RestoreReport) -> Result<()> {
        let tail = data_sql_text(
            self.db,
            &self.opts.scope,
            &self.owned,
            true,
            &self.opts.data,
        )?
        .split_inclusive(|b| *b == b'\n')
        .filter(|l| {
            let s = String::from_utf8_lossy(l);
            s.starts_with("SET ")
                || s.starts_with("SELECT pg_catalog.set")
                || s.starts_with("RESET ")
        })
        .flatten()
        .copied()
        .collect::<Vec<u8>>();
        let mut tail_texts = vec![("sequences".to_string(), tail)];
        if !self.fk_sql.is_empty() {
            tail_texts.push(("foreign keys".into(), self.fk_sql.clone().into_bytes()));
        }
        if !self.added.is_empty() {
            tail_texts.push((ADDITIONS.into(), self.added.clone().into_bytes()));
        }
        if !self.cron.is_empty() {
            tail_texts.push((CRON.into(), self.cron.clone().into_bytes()));
        }
        if self.migrations {
            tail_texts.push((
                "migrations.sql".into(),
                self.db.read_to_vec("migrations.sql")?,
            ));
            report.parts.push("migrations.sql".into());
        }
        let tt = &tail_texts;
        psql_session(
            self.tools,
            self.conn,
            &tail_texts,
            "the sequences and migration history were rolled back; the schema and data stay loaded",
            report,
            Box::new(move |w, starts, report| {
                for (part, text) in tt {
                    starts.push((part.clone(), w.lines + 1));
                    feed_text(part, text, false, w, report)?;
                }
                Ok(())
            }),
        )
    }
}
