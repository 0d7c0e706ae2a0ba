//! `snap restore <id> --db`: load a database snapshot into a target database.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::json;
use snap::ops::dbrestore::{self, Requirement};
use snap::ops::dbsnap::DbSnapshot;
use snap::repo::Repository;
use snap::snapshot::Snapshot;
use snap::source::postgres::pgbin;

use super::backup_db::DbConnArgs;
use super::{Global, exit, output};

/// Options of `snap restore --db` beyond the whole-database restore.
#[derive(clap::Args, Clone, Default)]
pub struct DbRestoreArgs {
    /// With --db: restore only this schema: its objects from schema.sql (and the schema itself,
    /// its grants and comment) and its tables' data and sequence values. Touches nothing else.
    #[arg(long, requires = "db")]
    pub schema: Option<String>,
    /// With --db: restore only this table (`schema.table`): its definition (constraints,
    /// indexes, triggers, policies, grants, comments, defaults, owned sequences) and its data.
    #[arg(long, requires = "db", conflicts_with = "schema")]
    pub table: Option<String>,
    /// With --table or --schema: load only the data and sequence values (the tables must
    /// already exist in the target).
    #[arg(long, requires = "db")]
    pub data_only: bool,
    /// With --db: roles and schema in one transaction, then the data with N psql sessions in
    /// parallel, one transaction per table, then sequences and migrations. NOT all-or-nothing:
    /// a failure leaves the schema and the tables already loaded in place and names the table
    /// that failed. Without --jobs the whole restore is one transaction.
    #[arg(long, requires = "db", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: Option<u32>,
    /// With --db: first DROP … CASCADE what the restore recreates: the user schemas of
    /// schema.sql (with --schema: that schema; with --table: that table); never auth, storage,
    /// extensions or another Supabase-managed schema. Same transaction as the restore (without
    /// --jobs). Shows what it drops and asks, or --yes.
    #[arg(long, requires = "db")]
    pub clean: bool,
    /// Restore drill: restore into a throwaway local PostgreSQL (initdb on a free port),
    /// verify, drop it, and report. Needs no --db-url.
    #[arg(long, conflicts_with_all = ["db_url", "project_ref"])]
    pub verify: bool,
}

fn print_report(reqs: &[Requirement]) {
    if reqs.is_empty() {
        println!("requirements: the target has everything the snapshot needs");
        return;
    }
    println!("requirements:");
    for r in reqs {
        println!("  {} {}", if r.blocking { "BLOCKING" } else { "note    " }, r.what);
        if let Some(f) = &r.fix {
            println!("           fix: {f}");
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn run(g: &Global, repo: &Repository, snap: &Snapshot, conn: &DbConnArgs, database: Option<&str>, yes: bool, dry_run: bool, json_out: bool, opts: &DbRestoreArgs) -> anyhow::Result<u8> {
    if opts.verify {
        return super::restore_verify::run(g, repo, snap, conn, database, json_out);
    }
    if opts.schema.is_some() || opts.table.is_some() || opts.data_only || opts.jobs.is_some() || opts.clean {
        return run_scoped(g, repo, snap, conn, database, yes, dry_run, json_out, opts);
    }
    if !conn.given() {
        anyhow::bail!("restore --db needs the target: pass --db-url or --project-ref");
    }
    let db = DbSnapshot::open(repo, snap, database)?;
    let (spec, tools, info) = conn.with_conn(|c| {
        let tools = pgbin::newest(conn.pg_bin.as_deref())?;
        let info = dbrestore::inspect(&tools, &c)?;
        Ok((c, tools, info))
    })?;
    let tables: Vec<(String, String)> = db.tables().filter_map(|p| Some((p.schema.clone()?, p.table.clone()?))).collect();
    let reqs = dbrestore::requirements(&db.inventory, &tables, &info);
    let blocking = reqs.iter().any(|r| r.blocking);
    let supabase = info.is_supabase();
    let parts = dbrestore::restore_parts(&db);
    let target = spec.display();
    if dry_run || blocking {
        if json_out {
            output::json(&json!({
                "snapshot": snap.id.to_hex(), "database": db.database, "target": target, "supabase_target": supabase,
                "dry_run": dry_run, "requirements": reqs, "parts": parts, "tables": tables.len(),
            }))?;
        } else {
            println!("restore snapshot {} (database {}) into {target}{}", snap.id.short(), db.database, if supabase { " (a Supabase project)" } else { "" });
            println!("  in one transaction: {} ({} tables)", parts.join(" → "), tables.len());
            print_report(&reqs);
        }
        if blocking {
            if !json_out {
                eprintln!("error: the target is not ready (BLOCKING above); nothing was changed");
            }
            return Ok(exit::FAILED);
        }
        if !json_out {
            println!("dry run: nothing was changed");
        }
        return Ok(exit::OK);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!("restoring into {target} changes that database: pass --yes to confirm without a terminal");
        }
        eprint!("restore snapshot {} (database {}, {} tables) into {target}? [y/N] ", snap.id.short(), db.database, tables.len());
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("not restored");
            return Ok(exit::FAILED);
        }
    }
    let started = std::time::Instant::now();
    let report = dbrestore::restore(&db, &tools, &spec, supabase, &output::Warnings { quiet: g.quiet })?;
    let checks = dbrestore::verify(&db, &tools, &spec)?;
    let ok = checks.iter().all(|c| c.ok);
    if json_out {
        output::json(&json!({
            "snapshot": snap.id.to_hex(), "database": db.database, "target": target, "supabase_target": supabase,
            "requirements": reqs, "restore": report, "verification": checks, "verified": ok,
            "seconds": started.elapsed().as_secs_f64(),
        }))?;
    } else if !g.quiet {
        println!(
            "restored snapshot {} (database {}) into {target}: {} in {:.1} s, one transaction",
            snap.id.short(),
            db.database,
            output::bytes(report.bytes),
            started.elapsed().as_secs_f64()
        );
        for (part, line, stmt) in &report.skipped {
            println!("  skipped on a managed target ({part} line {line}): {stmt}");
        }
        if report.notified_postgrest {
            println!("  sent NOTIFY pgrst, 'reload schema'");
        }
        println!("verification:");
        for c in &checks {
            println!("  {} {}: {}", if c.ok { "ok  " } else { "FAIL" }, c.what, c.detail);
        }
    }
    Ok(if ok { exit::OK } else { exit::FAILED })
}

/// `--schema`, `--table`, `--data-only`, `--jobs`, `--clean`.
#[allow(clippy::too_many_arguments)]
fn run_scoped(g: &Global, repo: &Repository, snap: &Snapshot, conn: &DbConnArgs, database: Option<&str>, yes: bool, dry_run: bool, json_out: bool, opts: &DbRestoreArgs) -> anyhow::Result<u8> {
    use dbrestore::Scope;
    if !conn.given() {
        anyhow::bail!("restore --db needs the target: pass --db-url or --project-ref");
    }
    let scope = match (&opts.schema, &opts.table) {
        (Some(s), _) => Scope::Schema(s.clone()),
        (None, Some(t)) => Scope::table(t)?,
        (None, None) => Scope::Whole,
    };
    if opts.data_only && scope == Scope::Whole {
        anyhow::bail!("--data-only needs --table or --schema");
    }
    if opts.data_only && opts.clean {
        anyhow::bail!("--clean drops what it restores, --data-only restores no definitions: use one or the other");
    }
    let db = DbSnapshot::open(repo, snap, database)?;
    if let Scope::Table(s, t) = &scope
        && !db.tables().any(|p| p.schema.as_deref() == Some(s.as_str()) && p.table.as_deref() == Some(t.as_str()))
    {
        anyhow::bail!("snapshot {} has no table {s}.{t}", snap.id.short());
    }
    if let Scope::Schema(s) = &scope
        && !db.tables().any(|p| p.schema.as_deref() == Some(s.as_str()))
        && !dbrestore::split_schema_sql(&String::from_utf8_lossy(&db.read_to_vec("schema.sql")?)).1.iter().any(|b| b.schema.as_deref() == Some(s.as_str()) || (b.kind == "SCHEMA" && b.name == *s))
    {
        anyhow::bail!("snapshot {} has no schema {s}", snap.id.short());
    }
    let (spec, tools, info) = conn.with_conn(|c| {
        let tools = pgbin::newest(conn.pg_bin.as_deref())?;
        let info = dbrestore::inspect(&tools, &c)?;
        Ok((c, tools, info))
    })?;
    if opts.data_only
        && let Scope::Table(s, t) = &scope
        && !dbrestore::table_exists(&tools, &spec, s, t)?
    {
        anyhow::bail!("--data-only: table {s}.{t} does not exist in the target; restore its definition too (drop --data-only)");
    }
    if opts.data_only
        && let Scope::Schema(s) = &scope
    {
        for p in dbrestore::scoped_parts(&db, &scope) {
            let t = p.table.as_deref().unwrap_or("");
            if !dbrestore::table_exists(&tools, &spec, s, t)? {
                anyhow::bail!("--data-only: table {s}.{t} does not exist in the target; restore its definition too (drop --data-only)");
            }
        }
    }
    let clean = if opts.clean { dbrestore::clean_plan(&String::from_utf8_lossy(&db.read_to_vec("schema.sql")?), &scope) } else { vec![] };
    let dropped = |s: &str, t: &str| {
        opts.clean
            && match &scope {
                Scope::Table(cs, ct) => cs == s && ct == t,
                _ => clean.iter().any(|(_, stmt)| stmt.starts_with(&format!("DROP SCHEMA IF EXISTS {} ", dbrestore::qi(s)))),
            }
    };
    let tables: Vec<(String, String)> = dbrestore::scoped_parts(&db, &scope).iter().filter_map(|p| Some((p.schema.clone()?, p.table.clone()?))).collect();
    // With --data-only the tables exist (checked above); their rows still block.
    let checked: Vec<(String, String)> = tables.iter().filter(|(s, t)| !dropped(s, t)).cloned().collect();
    let inv = dbrestore::scope_inventory(&db.inventory, &scope);
    let mut reqs = dbrestore::requirements(&inv, &checked, &info);
    if opts.clean && scope == Scope::Whole {
        // --clean drops only user schemas: rows the data part reloads elsewhere (auth.users, …)
        // would be duplicated.
        let kept: Vec<(String, String)> = checked.iter().filter(|(s, t)| !info.nonempty_tables.contains(&format!("{s}.{t}"))).cloned().collect();
        let busy = dbrestore::tables_with_rows(&tools, &spec, &kept)?;
        if !busy.is_empty() {
            reqs.push(Requirement {
                blocking: true,
                what: format!("--clean drops only user schemas, and the target already has rows in {} (not dropped)", busy.join(", ")),
                fix: Some("restore the user schemas one by one (--schema S --clean), or into a fresh project".into()),
            });
        }
    }
    let blocking = reqs.iter().any(|r| r.blocking);
    let supabase = info.is_supabase();
    let target = spec.display();
    let mode = match opts.jobs {
        None => "in one transaction".to_string(),
        Some(n) => format!("roles and schema in one transaction, then the data of {n} tables at a time (one transaction per table; a failure leaves the schema and loaded tables in place)"),
    };
    let what = format!("{}{}", scope.describe(), if opts.data_only { ", data only" } else { "" });
    let show_plan = || {
        println!("restore {what} of snapshot {} (database {}) into {target}{}", snap.id.short(), db.database, if supabase { " (a Supabase project)" } else { "" });
        println!("  {mode}: {} tables", tables.len());
        if !clean.is_empty() {
            println!("  --clean drops first:");
            for (d, _) in &clean {
                println!("    {d}");
            }
        }
    };
    if dry_run || blocking {
        if json_out {
            output::json(&json!({
                "snapshot": snap.id.to_hex(), "database": db.database, "target": target, "supabase_target": supabase,
                "dry_run": dry_run, "scope": scope, "data_only": opts.data_only, "jobs": opts.jobs,
                "clean": clean.iter().map(|(d, _)| d).collect::<Vec<_>>(), "requirements": reqs, "tables": tables.len(),
            }))?;
        } else {
            show_plan();
            print_report(&reqs);
        }
        if blocking {
            if !json_out {
                eprintln!("error: the target is not ready (BLOCKING above); nothing was changed");
            }
            return Ok(exit::FAILED);
        }
        if !json_out {
            println!("dry run: nothing was changed");
        }
        return Ok(exit::OK);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            let drops = if clean.is_empty() { String::new() } else { format!("; --clean would drop: {}", clean.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>().join(", ")) };
            anyhow::bail!("restoring {what} into {target} changes that database{drops}: pass --yes to confirm without a terminal");
        }
        show_plan();
        eprint!("restore {what} into {target}? [y/N] ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("not restored");
            return Ok(exit::FAILED);
        }
    }
    let started = std::time::Instant::now();
    let ropts = dbrestore::ScopedRestore {
        scope: scope.clone(),
        data_only: opts.data_only,
        jobs: opts.jobs,
        clean: clean.iter().map(|(_, s)| s.clone()).collect(),
        existing_roles: info.roles.clone(),
        supabase_target: supabase,
    };
    let report = dbrestore::restore_scoped(&db, &tools, &spec, &ropts, &output::Warnings { quiet: g.quiet })?;
    let checks = dbrestore::verify_scoped(&db, &tools, &spec, &scope)?;
    let ok = checks.iter().all(|c| c.ok);
    if json_out {
        output::json(&json!({
            "snapshot": snap.id.to_hex(), "database": db.database, "target": target, "supabase_target": supabase,
            "scope": scope, "data_only": opts.data_only, "jobs": opts.jobs, "clean": clean.iter().map(|(d, _)| d).collect::<Vec<_>>(),
            "requirements": reqs, "restore": report, "verification": checks, "verified": ok,
            "seconds": started.elapsed().as_secs_f64(),
        }))?;
    } else if !g.quiet {
        println!(
            "restored {what} of snapshot {} (database {}) into {target}: {} in {:.1} s, {}",
            snap.id.short(),
            db.database,
            output::bytes(report.bytes),
            started.elapsed().as_secs_f64(),
            if opts.jobs.is_some() { "schema in one transaction, then one transaction per table (not all-or-nothing)" } else { "one transaction" }
        );
        for (d, _) in &clean {
            println!("  dropped first: {d}");
        }
        for (part, line, stmt) in &report.skipped {
            println!("  skipped on a managed target ({part} line {line}): {stmt}");
        }
        if report.notified_postgrest {
            println!("  sent NOTIFY pgrst, 'reload schema'");
        }
        println!("verification:");
        for c in &checks {
            println!("  {} {}: {}", if c.ok { "ok  " } else { "FAIL" }, c.what, c.detail);
        }
    }
    Ok(if ok { exit::OK } else { exit::FAILED })
}
