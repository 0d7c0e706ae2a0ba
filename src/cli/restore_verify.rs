//! `snap restore <id> --db --verify`: the restore drill. The snapshot is restored into a
//! throwaway local PostgreSQL (the newest installed server, initdb on a free port), prepared
//! like a fresh Supabase project from the snapshot's inventory, by the same path as a real
//! restore (requirement report → one-transaction restore → verification); then the cluster is
//! stopped and removed and a PASS/FAIL report is printed (`--json` for all of it).

use std::io::Write;
use std::process::Stdio;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};
use snap::ops::dbrestore::{self, Check, Requirement, RestoreReport};
use snap::ops::dbsnap::DbSnapshot;
use snap::repo::Repository;
use snap::snapshot::Snapshot;
use snap::source::postgres::cluster::{self, LocalCluster};
use snap::source::postgres::conn::ConnSpec;
use snap::source::postgres::pgbin::{self, PgTools};
use snap::source::postgres::sanitize::is_reserved_role;
use snap::source::postgres::session;

use super::backup_db::DbConnArgs;
use super::{Global, exit, output};

/// Webhooks' function and table as a fresh Supabase project has them (a stub: no HTTP calls).
const WEBHOOKS_SQL: &str = r#"
CREATE SCHEMA IF NOT EXISTS supabase_functions;
CREATE TABLE IF NOT EXISTS supabase_functions.hooks (id bigserial PRIMARY KEY, hook_table_id integer NOT NULL,
  hook_name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), request_id bigint);
CREATE OR REPLACE FUNCTION supabase_functions.http_request() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
"#;

const MANAGED: &[&str] = &["managed/auth.sql", "managed/storage.sql"];

#[derive(Serialize)]
struct Step {
    step: &'static str,
    seconds: f64,
    ok: bool,
}

#[derive(Serialize, Default)]
struct ManagedApply {
    part: String,
    /// Statements psql reported an error for (applied leniently, without ON_ERROR_STOP).
    errors: usize,
}

#[derive(Default, Serialize)]
struct Drill {
    steps: Vec<Step>,
    server: Option<String>,
    server_major: Option<u32>,
    /// Preparation problems (e.g. an extension the local server does not have).
    problems: Vec<String>,
    prepared: Vec<String>,
    managed: Vec<ManagedApply>,
    managed_after: Vec<ManagedApply>,
    requirements: Vec<Requirement>,
    supabase_target: bool,
    restore: Option<RestoreReport>,
    verification: Vec<Check>,
    error: Option<String>,
}

impl Drill {
    fn step<T>(&mut self, name: &'static str, f: impl FnOnce(&mut Self) -> anyhow::Result<T>) -> Option<T> {
        let t = Instant::now();
        let r = f(self);
        self.steps.push(Step { step: name, seconds: t.elapsed().as_secs_f64(), ok: r.is_ok() });
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.error = Some(format!("{name}: {e:#}"));
                None
            }
        }
    }

    fn passed(&self) -> bool {
        self.error.is_none()
            && self.problems.is_empty()
            && !self.requirements.iter().any(|r| r.blocking)
            && self.restore.is_some()
            && !self.verification.is_empty()
            && self.verification.iter().all(|c| c.ok)
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Feed `sql` to psql WITHOUT ON_ERROR_STOP; returns how many errors psql reported.
fn apply_leniently(tools: &PgTools, conn: &ConnSpec, sql: &[u8]) -> anyhow::Result<usize> {
    let mut cmd = tools.command("psql");
    cmd.args(["-X", "-q", "-w", "-f", "-"]);
    conn.apply(&mut cmd);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let data = sql.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output()?;
    let _ = feeder.join();
    let err = String::from_utf8_lossy(&out.stderr);
    let errors = err.lines().filter(|l| l.contains("ERROR:")).count();
    if !out.status.success() {
        anyhow::bail!("psql failed ({}): {}", out.status, err.trim());
    }
    Ok(errors)
}

/// Give the throwaway cluster what a fresh Supabase project has, as far as the snapshot needs it.
fn prepare(d: &mut Drill, db: &DbSnapshot, tools: &PgTools, conn: &ConnSpec) -> anyhow::Result<()> {
    let inv = &db.inventory;
    let info = dbrestore::inspect(tools, conn)?;
    let mut sql = String::new();
    let mut roles: Vec<&str> = inv["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|r| is_reserved_role(r) && !r.starts_with("cli_login_") && !info.roles.iter().any(|x| x == r))
        .collect();
    roles.sort();
    roles.dedup();
    for r in &roles {
        sql.push_str(&format!("CREATE ROLE {} NOLOGIN;\n", quote_ident(r)));
    }
    if !roles.is_empty() {
        d.prepared.push(format!("reserved roles: {}", roles.join(", ")));
    }
    let mut exts = Vec::new();
    for e in inv["extensions"].as_array().into_iter().flatten() {
        let Some(name) = e["name"].as_str() else { continue };
        let schema = e["schema"].as_str().unwrap_or("public");
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
        sql.push_str(&format!("CREATE SCHEMA IF NOT EXISTS {};\nCREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {} CASCADE;\n", quote_ident(schema), quote_ident(name), quote_ident(schema)));
        exts.push(format!("{name} ({schema})"));
    }
    if !exts.is_empty() {
        d.prepared.push(format!("extensions: {}", exts.join(", ")));
    }
    let has = |key: &str| inv[key].as_array().is_some_and(|a| !a.is_empty());
    if inv["realtime"]["tables"].as_array().is_some_and(|a| !a.is_empty()) && !info.publications.iter().any(|p| p == "supabase_realtime") {
        sql.push_str("CREATE PUBLICATION supabase_realtime;\n");
        d.prepared.push("publication supabase_realtime".into());
    }
    let hook_data = db.tables().any(|p| p.schema.as_deref() == Some("supabase_functions") && p.table.as_deref() == Some("hooks"));
    if (has("webhooks") || hook_data) && !info.has_http_request {
        sql.push_str(WEBHOOKS_SQL);
        d.prepared.push("database webhooks (supabase_functions.http_request stub, supabase_functions.hooks)".into());
    }
    if !sql.is_empty() {
        session::query(tools, conn, None, &format!("BEGIN;\n{sql}COMMIT;"))?;
    }
    for m in MANAGED {
        if db.has(m) {
            let errors = apply_leniently(tools, conn, &db.read_to_vec(m)?)?;
            d.managed.push(ManagedApply { part: m.to_string(), errors });
        }
    }
    Ok(())
}

pub fn run(g: &Global, repo: &Repository, snap: &Snapshot, conn: &DbConnArgs, database: Option<&str>, json_out: bool) -> anyhow::Result<u8> {
    let started = Instant::now();
    let db = DbSnapshot::open(repo, snap, database)?;
    let src_num = db.inventory["server_version_num"].as_u64().unwrap_or(0) as u32;
    if src_num == 0 {
        anyhow::bail!("snapshot {} (database {}): its inventory has no server_version_num; cannot choose a server for the drill", snap.id.short(), db.database);
    }
    let install = cluster::newest_server(src_num / 10_000)?;
    let tables: Vec<(String, String)> = db.tables().filter_map(|p| Some((p.schema.clone()?, p.table.clone()?))).collect();
    let mut d = Drill::default();
    let mut cluster_dir = None;
    {
        let cl = d.step("start throwaway cluster", |_| Ok(LocalCluster::start_with(&install)?));
        if let Some(cl) = &cl {
            cluster_dir = Some(cl.dir().display().to_string());
            d.server = Some(cl.version().to_string());
            d.server_major = Some(cl.major());
            drill(&mut d, &db, cl, conn, &tables, g);
        }
        // `cl` drops here: server stopped, directory removed.
        let t = Instant::now();
        drop(cl);
        d.steps.push(Step { step: "remove cluster", seconds: t.elapsed().as_secs_f64(), ok: true });
    }
    let pass = d.passed();
    let total = started.elapsed().as_secs_f64();
    if json_out {
        let mut v = serde_json::to_value(&d)?;
        v["snapshot"] = json!(snap.id.to_hex());
        v["database"] = json!(db.database);
        v["snapshot_server_version"] = db.inventory["server_version"].clone();
        v["cluster_dir"] = json!(cluster_dir);
        v["tables"] = json!(tables.len());
        v["verified"] = json!(!d.verification.is_empty() && d.verification.iter().all(|c| c.ok));
        v["result"] = json!(if pass { "PASS" } else { "FAIL" });
        v["pass"] = json!(pass);
        v["seconds"] = json!(total);
        output::json(&v)?;
    } else {
        print_text(&d, snap, &db, pass, total, g.quiet);
    }
    Ok(if pass { exit::OK } else { exit::FAILED })
}

fn drill(d: &mut Drill, db: &DbSnapshot, cl: &LocalCluster, conn: &DbConnArgs, tables: &[(String, String)], g: &Global) {
    let Some((spec, tools)) = d.step("connect", |_| {
        let tools = match &conn.pg_bin {
            Some(p) => pgbin::newest(Some(p))?,
            None => cl.tools().or_else(|_| pgbin::newest(None))?,
        };
        Ok((cl.conn()?, tools))
    }) else {
        return;
    };
    if d.step("prepare fresh project", |d| prepare(d, db, &tools, &spec)).is_none() {
        return;
    }
    let Some(info) = d.step("requirements", |d| {
        let info = dbrestore::inspect(&tools, &spec)?;
        d.requirements = dbrestore::requirements(&db.inventory, tables, &info);
        d.supabase_target = info.is_supabase();
        Ok(info)
    }) else {
        return;
    };
    if d.requirements.iter().any(|r| r.blocking) {
        return;
    }
    let warn = output::Warnings { quiet: g.quiet };
    if d.step("restore", |d| {
        d.restore = Some(dbrestore::restore(db, &tools, &spec, &dbrestore::RestoreOptions::whole(info.is_supabase()), &warn)?);
        Ok(())
    })
    .is_none()
    {
        return;
    }
    if MANAGED.iter().any(|m| db.has(m)) {
        d.step("re-apply managed schemas", |d| {
            for m in MANAGED {
                if db.has(m) {
                    let errors = apply_leniently(&tools, &spec, &db.read_to_vec(m)?)?;
                    d.managed_after.push(ManagedApply { part: m.to_string(), errors });
                }
            }
            Ok(())
        });
    }
    d.step("verify", |d| {
        d.verification = dbrestore::verify(db, &tools, &spec, &dbrestore::Scope::Whole)?;
        Ok(())
    });
}

fn print_text(d: &Drill, snap: &Snapshot, db: &DbSnapshot, pass: bool, total: f64, quiet: bool) {
    if !quiet {
        println!(
            "restore drill: snapshot {} (database {}, PostgreSQL {})",
            snap.id.short(),
            db.database,
            db.inventory["server_version"].as_str().unwrap_or("?")
        );
        if let Some(s) = &d.server {
            println!("  throwaway server: {s}");
        }
        for p in &d.prepared {
            println!("  prepared: {p}");
        }
        for m in &d.managed {
            println!("  applied {} leniently ({} statement(s) failed, e.g. references to objects the restore creates)", m.part, m.errors);
        }
        if d.steps.iter().any(|s| s.step == "requirements" && s.ok) {
            if d.requirements.is_empty() {
                println!("requirements: the target has everything the snapshot needs");
            } else {
                println!("requirements:");
                for r in &d.requirements {
                    println!("  {} {}", if r.blocking { "BLOCKING" } else { "note    " }, r.what);
                    if let Some(f) = &r.fix {
                        println!("           fix: {f}");
                    }
                }
            }
        }
        if let Some(r) = &d.restore {
            println!("restore: {} ({}) in one transaction", r.parts.join(" → "), output::bytes(r.bytes));
            for (part, line, stmt) in &r.skipped {
                println!("  skipped on a managed target ({part} line {line}): {stmt}");
            }
        }
        for m in &d.managed_after {
            println!("  re-applied {} leniently ({} statement(s) failed, e.g. objects that already exist)", m.part, m.errors);
        }
        if !d.verification.is_empty() {
            println!("verification:");
            for c in &d.verification {
                println!("  {} {}: {}", if c.ok { "ok  " } else { "FAIL" }, c.what, c.detail);
            }
        }
        println!("steps:");
        for s in &d.steps {
            println!("  {:<28} {:>7.2} s{}", s.step, s.seconds, if s.ok { "" } else { "  FAILED" });
        }
    }
    for p in &d.problems {
        eprintln!("problem: {p}");
    }
    if let Some(e) = &d.error {
        eprintln!("error: {e}");
    }
    if pass {
        println!("PASS: snapshot {} restores and verifies ({total:.1} s); the throwaway cluster was removed", snap.id.short());
    } else {
        println!("FAIL: snapshot {} did not pass the restore drill ({total:.1} s); the throwaway cluster was removed", snap.id.short());
    }
}
