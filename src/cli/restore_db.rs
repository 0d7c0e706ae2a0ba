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
pub fn run(g: &Global, repo: &Repository, snap: &Snapshot, conn: &DbConnArgs, database: Option<&str>, yes: bool, dry_run: bool, json_out: bool) -> anyhow::Result<u8> {
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
