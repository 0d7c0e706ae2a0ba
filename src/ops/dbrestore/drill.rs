//! The restore drill (`snap restore <id> --db --verify`): the snapshot is restored into a
//! throwaway local PostgreSQL (the newest installed server, initdb on a free port), prepared
//! like a fresh Supabase project from the snapshot's inventory, by the same path as a real
//! restore (requirement report → one-transaction restore → verification); then the cluster is
//! stopped and removed. The result is a [`DrillReport`]; the caller renders it.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use serde::Serialize;

use super::{
    Check, Requirement, RestoreOptions, RestoreReport, Scope, data_plan, inspect, plan_notes,
    requirements, restore, verify,
};
use crate::error::{Error, Result};
use crate::ops::dbsnap::DbSnapshot;
use crate::progress::Progress;
use crate::snapshot::Snapshot;
use crate::source::postgres::cluster::{self, LocalCluster};
use crate::source::postgres::conn::ConnSpec;
use crate::source::postgres::pgbin::{self, PgTools};
use crate::source::postgres::session;
use crate::supabase::{REALTIME_PUBLICATION, is_project_role};

/// Webhooks' function and table as a fresh Supabase project has them (a stub: no HTTP calls).
const WEBHOOKS_SQL: &str = r#"
CREATE SCHEMA IF NOT EXISTS supabase_functions;
CREATE TABLE IF NOT EXISTS supabase_functions.hooks (id bigserial PRIMARY KEY, hook_table_id integer NOT NULL,
  hook_name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), request_id bigint);
CREATE OR REPLACE FUNCTION supabase_functions.http_request() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
"#;

/// The parts holding the managed schemas' definitions (`managed/auth.sql`, …).
fn managed_parts() -> impl Iterator<Item = String> {
    crate::supabase::EXTENDED_MANAGED_SCHEMAS
        .iter()
        .map(|s| format!("managed/{s}.sql"))
}

/// One step of the drill and how long it took.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: &'static str,
    pub seconds: f64,
    pub ok: bool,
}

/// A managed part (`managed/auth.sql`, `managed/storage.sql`) applied leniently.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ManagedApply {
    pub part: String,
    /// Statements psql reported an error for (applied leniently, without ON_ERROR_STOP).
    pub errors: usize,
}

/// Everything the drill did and found (the `--json` output).
#[derive(Default, Serialize)]
pub struct DrillReport {
    pub steps: Vec<Step>,
    pub server: Option<String>,
    pub server_major: Option<u32>,
    /// Preparation problems (e.g. an extension the local server does not have).
    pub problems: Vec<String>,
    pub prepared: Vec<String>,
    pub managed: Vec<ManagedApply>,
    pub managed_after: Vec<ManagedApply>,
    pub requirements: Vec<Requirement>,
    pub supabase_target: bool,
    pub restore: Option<RestoreReport>,
    pub verification: Vec<Check>,
    /// The step that failed and why (`"<step>: <error>"`).
    pub error: Option<String>,
    /// The snapshot's full id.
    pub snapshot: String,
    pub database: String,
    /// The source server's version, from the inventory.
    pub snapshot_server_version: Option<String>,
    /// Where the throwaway cluster lived (removed by now).
    pub cluster_dir: Option<String>,
    /// Tables with data in the snapshot.
    pub tables: usize,
    /// Every verification check ran and passed.
    pub verified: bool,
    /// `"PASS"` or `"FAIL"`.
    pub result: String,
    pub pass: bool,
    /// Total time of the drill.
    pub seconds: f64,
}

impl DrillReport {
    fn step<T>(&mut self, name: &'static str, f: impl FnOnce(&mut Self) -> Result<T>) -> Option<T> {
        let t = Instant::now();
        let r = f(self);
        self.steps.push(Step {
            step: name,
            seconds: t.elapsed().as_secs_f64(),
            ok: r.is_ok(),
        });
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.error = Some(format!("{name}: {}", chain(&e)));
                None
            }
        }
    }

    /// True when the snapshot restored and every check passed.
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && self.problems.is_empty()
            && !self.requirements.iter().any(|r| r.blocking)
            && self.restore.is_some()
            && !self.verification.is_empty()
            && self.verification.iter().all(|c| c.ok)
    }
}

/// An error with its sources, `outer: inner: …`.
fn chain(e: &Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(&format!(": {c}"));
        src = c.source();
    }
    s
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Feed `sql` to psql WITHOUT ON_ERROR_STOP; returns how many errors psql reported.
fn apply_leniently(tools: &PgTools, conn: &ConnSpec, sql: &[u8]) -> Result<usize> {
    let mut cmd = tools.command("psql");
    cmd.args(["-X", "-q", "-w", "-f", "-"]);
    conn.apply(&mut cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(tools.tool("psql"), e))?;
    let mut stdin = child.stdin.take().expect("piped");
    let data = sql.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().map_err(|e| Error::io("psql", e))?;
    let _ = feeder.join();
    let err = String::from_utf8_lossy(&out.stderr);
    let errors = err.lines().filter(|l| l.contains("ERROR:")).count();
    if !out.status.success() {
        return Err(Error::ToolFailed {
            tool: "psql".into(),
            status: out.status.to_string(),
            stderr: err.trim().to_string(),
        });
    }
    Ok(errors)
}

/// Give the throwaway cluster what a fresh Supabase project has, as far as the snapshot needs it.
fn prepare(d: &mut DrillReport, db: &DbSnapshot, tools: &PgTools, conn: &ConnSpec) -> Result<()> {
    let inv = &db.inventory;
    let info = inspect(tools, conn)?;
    let mut sql = String::new();
    let mut roles: Vec<&str> = inv
        .roles
        .iter()
        .map(String::as_str)
        .filter(|r| is_project_role(r) && !info.roles.iter().any(|x| x == r))
        .collect();
    roles.sort();
    roles.dedup();
    for r in &roles {
        sql.push_str(&format!("CREATE ROLE {} NOLOGIN;\n", quote_ident(r)));
    }
    if !roles.is_empty() {
        d.prepared
            .push(format!("reserved roles: {}", roles.join(", ")));
    }
    let mut exts = Vec::new();
    for e in &inv.extensions {
        let name = e.name.as_str();
        let schema = e.schema.as_deref().unwrap_or("public");
        if name == "plpgsql" || info.extensions.iter().any(|x| x == name) {
            continue;
        }
        if !info.available_extensions.iter().any(|x| x == name) {
            d.problems.push(format!(
                "extension {name} (schema {schema}) is not available on the local PostgreSQL {}: the drill cannot restore this snapshot faithfully \
                 (install the package that provides it, e.g. postgresql-{}-{name})",
                info.server_version_num / 10_000,
                info.server_version_num / 10_000
            ));
            continue;
        }
        // Extensions go where the platform puts them; pg_catalog (pg_cron under supautils) and
        // the other system schemas exist already and cannot be created.
        if !schema.starts_with("pg_") {
            sql.push_str(&format!(
                "CREATE SCHEMA IF NOT EXISTS {};\n",
                quote_ident(schema)
            ));
        }
        sql.push_str(&format!(
            "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {} CASCADE;\n",
            quote_ident(name),
            quote_ident(schema)
        ));
        exts.push(format!("{name} ({schema})"));
    }
    if !exts.is_empty() {
        d.prepared.push(format!("extensions: {}", exts.join(", ")));
    }
    if !inv.realtime.tables.is_empty()
        && !info.publications.iter().any(|p| p == REALTIME_PUBLICATION)
    {
        sql.push_str("CREATE PUBLICATION supabase_realtime;\n");
        d.prepared.push("publication supabase_realtime".into());
    }
    let hook_data = db.tables().any(|p| {
        p.schema.as_deref() == Some("supabase_functions") && p.table.as_deref() == Some("hooks")
    });
    if (!inv.webhooks.is_empty() || hook_data) && !info.has_http_request {
        sql.push_str(WEBHOOKS_SQL);
        d.prepared.push(
            "database webhooks (supabase_functions.http_request stub, supabase_functions.hooks)"
                .into(),
        );
    }
    if !sql.is_empty() {
        session::query(tools, conn, None, &format!("BEGIN;\n{sql}COMMIT;"))?;
    }
    for m in managed_parts() {
        if db.has(&m) {
            let errors = apply_leniently(tools, conn, &db.read_to_vec(&m)?)?;
            d.managed.push(ManagedApply { part: m, errors });
        }
    }
    Ok(())
}

/// What the throwaway server must start with for the snapshot's extensions: the libraries of
/// those that need `shared_preload_libraries` (where the server has them; a missing one is
/// reported by the preparation), and pg_cron's database.
fn server_settings(db: &DbSnapshot, install: &cluster::ServerInstall) -> Vec<(String, String)> {
    let exts: Vec<&str> = db
        .inventory
        .extensions
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    let libs: Vec<&str> = cluster::PRELOADED_EXTENSIONS
        .iter()
        .filter(|(e, lib)| exts.contains(e) && install.has_library(lib))
        .map(|(_, lib)| *lib)
        .collect();
    let mut out = Vec::new();
    if !libs.is_empty() {
        out.push(("shared_preload_libraries".to_string(), libs.join(",")));
    }
    if libs.contains(&"pg_cron") {
        out.push(("cron.database_name".to_string(), "postgres".to_string()));
    }
    out
}

/// Run the restore drill for `db` (a database of snapshot `snap`): start a throwaway cluster,
/// prepare it, check requirements, restore, re-apply the managed schemas, verify, remove the
/// cluster. Step failures are recorded in the report (`error`, `steps`); `Err` only when the
/// drill cannot start (no server version in the inventory, no PostgreSQL server installed).
/// `pg_bin` chooses the client tools (default: the cluster's own). Warnings of the restore go
/// to `progress`.
pub fn drill(
    snap: &Snapshot,
    db: &DbSnapshot,
    pg_bin: Option<&Path>,
    progress: &dyn Progress,
) -> Result<DrillReport> {
    let started = Instant::now();
    let src_num = db.inventory.server_version_num;
    if src_num == 0 {
        return Err(Error::Invalid(format!(
            "snapshot {} (database {}): its inventory has no server_version_num; cannot choose a server for the drill",
            snap.id.short(),
            db.database
        )));
    }
    let install = cluster::newest_server(src_num / 10_000)?;
    let tables: Vec<(String, String)> = db
        .tables()
        .filter_map(|p| Some((p.schema.clone()?, p.table.clone()?)))
        .collect();
    let mut d = DrillReport::default();
    {
        let settings = server_settings(db, &install);
        if let Some((_, libs)) = settings
            .iter()
            .find(|(k, _)| k == "shared_preload_libraries")
        {
            d.prepared
                .push(format!("shared_preload_libraries = {libs}"));
        }
        let cl = d.step("start throwaway cluster", |_| {
            LocalCluster::start_with(&install, &settings)
        });
        if let Some(cl) = &cl {
            d.cluster_dir = Some(cl.dir().display().to_string());
            d.server = Some(cl.version().to_string());
            d.server_major = Some(cl.major());
            run_steps(&mut d, db, cl, pg_bin, &tables, progress);
        }
        // `cl` drops here: server stopped, directory removed.
        let t = Instant::now();
        drop(cl);
        d.steps.push(Step {
            step: "remove cluster",
            seconds: t.elapsed().as_secs_f64(),
            ok: true,
        });
    }
    let pass = d.passed();
    d.snapshot = snap.id.to_hex();
    d.database = db.database.clone();
    d.snapshot_server_version = db.inventory.server_version.clone();
    d.tables = tables.len();
    d.verified = !d.verification.is_empty() && d.verification.iter().all(|c| c.ok);
    d.result = if pass { "PASS" } else { "FAIL" }.to_string();
    d.pass = pass;
    d.seconds = started.elapsed().as_secs_f64();
    Ok(d)
}

fn run_steps(
    d: &mut DrillReport,
    db: &DbSnapshot,
    cl: &LocalCluster,
    pg_bin: Option<&Path>,
    tables: &[(String, String)],
    progress: &dyn Progress,
) {
    let Some((spec, tools)) = d.step("connect", |_| {
        let tools = match pg_bin {
            Some(p) => pgbin::newest(Some(p))?,
            None => cl.tools().or_else(|_| pgbin::newest(None))?,
        };
        Ok((cl.conn()?, tools))
    }) else {
        return;
    };
    if d.step("prepare fresh project", |d| prepare(d, db, &tools, &spec))
        .is_none()
    {
        return;
    }
    let Some((info, plan)) = d.step("requirements", |d| {
        let info = inspect(&tools, &spec)?;
        let plan = data_plan(db, &Scope::Whole, &info)?;
        d.requirements = requirements(&db.inventory, tables, &info);
        d.requirements.extend(plan_notes(&plan));
        d.supabase_target = info.is_supabase();
        Ok((info, plan))
    }) else {
        return;
    };
    if d.requirements.iter().any(|r| r.blocking) {
        return;
    }
    let ropts = RestoreOptions {
        data: plan,
        ..RestoreOptions::whole(info.is_supabase())
    };
    if d.step("restore", |d| {
        d.restore = Some(restore(db, &tools, &spec, &ropts, progress)?);
        Ok(())
    })
    .is_none()
    {
        return;
    }
    if managed_parts().any(|m| db.has(&m)) {
        d.step("re-apply managed schemas", |d| {
            for m in managed_parts() {
                if db.has(&m) {
                    let errors = apply_leniently(&tools, &spec, &db.read_to_vec(&m)?)?;
                    d.managed_after.push(ManagedApply { part: m, errors });
                }
            }
            Ok(())
        });
    }
    d.step("verify", |d| {
        d.verification = verify(db, &tools, &spec, &Scope::Whole, &ropts)?;
        Ok(())
    });
}
