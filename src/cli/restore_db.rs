//! `snap restore <id> --db`: load a database snapshot into a target database.

use std::io::IsTerminal;

use serde_json::json;
use snap::ops::dbrestore::{self, Requirement, Scope};
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
    /// With --db: do not apply your additions to auth and storage (triggers, policies,
    /// indexes, functions the snapshot has there beyond the platform's own). By default a
    /// whole-database restore applies them after the data, in the same transaction.
    #[arg(long, requires = "db")]
    pub no_auth_storage_additions: bool,
}

fn print_report(reqs: &[Requirement]) {
    if reqs.is_empty() {
        tell!("requirements: the target has everything the snapshot needs");
        return;
    }
    tell!("requirements:");
    for r in reqs {
        tell!(
            "  {} {}",
            if r.blocking { "BLOCKING" } else { "note    " },
            r.what
        );
        if let Some(f) = &r.fix {
            tell!("           fix: {f}");
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    g: &Global,
    repo: &Repository,
    snap: &Snapshot,
    conn: &DbConnArgs,
    database: Option<&str>,
    yes: bool,
    dry_run: bool,
    json_out: bool,
    opts: &DbRestoreArgs,
) -> anyhow::Result<u8> {
    if opts.verify {
        return super::restore_verify::run(g, repo, snap, conn, database, json_out);
    }
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
        anyhow::bail!(
            "--clean drops what it restores, --data-only restores no definitions: use one or the other"
        );
    }
    let db = DbSnapshot::open(repo, snap, database)?;
    if let Scope::Table(s, t) = &scope
        && !db.tables().any(|p| {
            p.schema.as_deref() == Some(s.as_str()) && p.table.as_deref() == Some(t.as_str())
        })
    {
        anyhow::bail!("snapshot {} has no table {s}.{t}", snap.id.short());
    }
    if let Scope::Schema(s) = &scope
        && !db.tables().any(|p| p.schema.as_deref() == Some(s.as_str()))
        && !dbrestore::split_schema_sql(&String::from_utf8_lossy(&db.read_to_vec("schema.sql")?))
            .1
            .iter()
            .any(|b| {
                b.schema.as_deref() == Some(s.as_str()) || (b.kind == "SCHEMA" && b.name == *s)
            })
    {
        anyhow::bail!("snapshot {} has no schema {s}", snap.id.short());
    }
    let (spec, tools, info) = conn.with_conn(|c| {
        let tools = pgbin::newest(conn.pg_bin.as_deref())?;
        let info = dbrestore::inspect(&tools, &c)?;
        Ok((c, tools, info))
    })?;
    // `snap restore --db` without options: the whole database in one transaction, roles.sql as is.
    let whole = scope == Scope::Whole && !opts.data_only && opts.jobs.is_none() && !opts.clean;
    if opts.data_only
        && let Scope::Table(s, t) = &scope
        && !dbrestore::table_exists(&tools, &spec, s, t)?
    {
        anyhow::bail!(
            "--data-only: table {s}.{t} does not exist in the target; restore its definition too (drop --data-only)"
        );
    }
    if opts.data_only
        && let Scope::Schema(s) = &scope
    {
        for p in dbrestore::scoped_parts(&db, &scope) {
            let t = p.table.as_deref().unwrap_or("");
            if !dbrestore::table_exists(&tools, &spec, s, t)? {
                anyhow::bail!(
                    "--data-only: table {s}.{t} does not exist in the target; restore its definition too (drop --data-only)"
                );
            }
        }
    }
    let snapshot_managed = db
        .catalog()?
        .map(|c| c.managed_objects.as_slice())
        .unwrap_or_default();
    let clean = if opts.clean {
        dbrestore::clean::plan(
            &String::from_utf8_lossy(&db.read_to_vec("schema.sql")?),
            &scope,
            snapshot_managed,
            &tools,
            &spec,
        )?
    } else {
        dbrestore::CleanPlan::default()
    };
    let dropped = |s: &str, t: &str| {
        opts.clean
            && match &scope {
                Scope::Table(cs, ct) => cs == s && ct == t,
                _ => clean.schemas.iter().any(|c| c == s),
            }
    };
    let tables: Vec<(String, String)> = dbrestore::scoped_parts(&db, &scope)
        .iter()
        .filter_map(|p| Some((p.schema.clone()?, p.table.clone()?)))
        .collect();
    // With --data-only the tables exist (checked above); their rows still block.
    let checked: Vec<(String, String)> = tables
        .iter()
        .filter(|(s, t)| !dropped(s, t))
        .cloned()
        .collect();
    let inv = dbrestore::scope_inventory(&db.inventory, &scope);
    let mut reqs = dbrestore::requirements(&inv, &checked, &info);
    if opts.clean && scope == Scope::Whole {
        // --clean drops only user schemas: rows the data part reloads elsewhere (auth.users, …)
        // would be duplicated.
        let kept: Vec<(String, String)> = checked
            .iter()
            .filter(|(s, t)| !info.nonempty_tables.contains(&format!("{s}.{t}")))
            .cloned()
            .collect();
        let busy = dbrestore::tables_with_rows(&tools, &spec, &kept)?;
        if !busy.is_empty() {
            reqs.push(Requirement {
                blocking: true,
                what: format!("--clean drops only user schemas, and the target already has rows in {} (not dropped)", busy.join(", ")),
                fix: Some("restore the user schemas one by one (--schema S --clean), or into a fresh project".into()),
            });
        }
    }
    let data = dbrestore::data_plan(&db, &scope, &info)?;
    reqs.extend(dbrestore::plan_notes(&data));
    if !clean.blocking.is_empty() {
        reqs.push(Requirement {
            blocking: true,
            what: format!(
                "--clean would also drop, outside what is restored (CASCADE): {}",
                clean.blocking.iter().map(|d| d.what.as_str()).collect::<Vec<_>>().join(", ")
            ),
            fix: Some("restore a wider scope (the schema, or the whole database), or drop or move those objects yourself first".into()),
        });
    }
    let all_additions = scope == Scope::Whole && !opts.data_only && !opts.no_auth_storage_additions;
    let additions =
        dbrestore::additions_plan(&db, &tools, &spec, all_additions, &clean.recreate_keys())?;
    reqs.extend(dbrestore::additions_notes(&additions));
    let blocking = reqs.iter().any(|r| r.blocking);
    let supabase = info.is_supabase();
    let target = spec.display();
    let mode = match opts.jobs {
        None => "in one transaction".to_string(),
        Some(n) => format!(
            "roles and schema in one transaction, then the data of {n} tables at a time (one transaction per table; a failure leaves the schema and loaded tables in place)"
        ),
    };
    let what = format!(
        "{}{}",
        scope.describe(),
        if opts.data_only { ", data only" } else { "" }
    );
    let of_what = if whole {
        String::new()
    } else {
        format!("{what} of ")
    };
    let show_plan = || {
        tell!(
            "restore {of_what}snapshot {} (database {}) into {target}{}",
            snap.id.short(),
            db.database,
            if supabase {
                " (a Supabase project)"
            } else {
                ""
            }
        );
        if whole {
            tell!(
                "  in one transaction: {} ({} tables)",
                dbrestore::restore_parts(&db).join(" → "),
                tables.len()
            );
        } else {
            tell!("  {mode}: {} tables", tables.len());
        }
        if opts.clean {
            tell!("  --clean drops first:");
            for d in clean.describe() {
                tell!("    {d}");
            }
        }
    };
    if dry_run || blocking {
        if json_out {
            let mut plan = json!({
                "snapshot": snap.id.to_hex(), "database": db.database, "target": target, "supabase_target": supabase,
                "dry_run": dry_run, "requirements": reqs, "tables": tables.len(),
            });
            let extra = if whole {
                json!({ "parts": dbrestore::restore_parts(&db) })
            } else {
                json!({ "scope": scope, "data_only": opts.data_only, "jobs": opts.jobs, "clean": clean.describe() })
            };
            plan.as_object_mut()
                .expect("object")
                .extend(extra.as_object().expect("object").clone());
            output::json(&plan)?;
        } else {
            show_plan();
            print_report(&reqs);
        }
        if blocking {
            if !json_out {
                say!("error: the target is not ready (BLOCKING above); nothing was changed");
            }
            return Ok(exit::FAILED);
        }
        if !json_out {
            tell!("dry run: nothing was changed");
        }
        return Ok(exit::OK);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            let drops = if opts.clean {
                format!("; --clean would drop: {}", clean.describe().join(", "))
            } else {
                String::new()
            };
            let what = if whole {
                String::new()
            } else {
                format!("{what} ")
            };
            anyhow::bail!(
                "restoring {what}into {target} changes that database{drops}: pass --yes to confirm without a terminal"
            );
        }
        let question = if whole {
            format!(
                "restore snapshot {} (database {}, {} tables) into {target}?",
                snap.id.short(),
                db.database,
                tables.len()
            )
        } else {
            show_plan();
            format!("restore {what} into {target}?")
        };
        if !output::confirm(&question)? {
            say!("not restored");
            return Ok(exit::FAILED);
        }
    }
    let started = std::time::Instant::now();
    let ropts = if whole {
        dbrestore::RestoreOptions {
            data,
            additions,
            ..dbrestore::RestoreOptions::whole(supabase)
        }
    } else {
        dbrestore::RestoreOptions {
            scope: scope.clone(),
            data_only: opts.data_only,
            jobs: opts.jobs,
            clean: clean.statements(),
            existing_roles: info.roles.clone(),
            supabase_target: supabase,
            data,
            additions,
        }
    };
    let report = dbrestore::restore(
        &db,
        &tools,
        &spec,
        &ropts,
        &super::progress::Bars::new(g.quiet),
    )?;
    let checks = dbrestore::verify(&db, &tools, &spec, &scope, &ropts)?;
    let ok = checks.iter().all(|c| c.ok);
    if json_out {
        let mut done = json!({
            "snapshot": snap.id.to_hex(), "database": db.database, "target": target, "supabase_target": supabase,
            "requirements": reqs, "restore": report, "verification": checks, "verified": ok,
            "seconds": started.elapsed().as_secs_f64(),
        });
        if !whole {
            let extra = json!({ "scope": scope, "data_only": opts.data_only, "jobs": opts.jobs, "clean": clean.describe() });
            done.as_object_mut()
                .expect("object")
                .extend(extra.as_object().expect("object").clone());
        }
        output::json(&done)?;
    } else if !g.quiet {
        tell!(
            "restored {of_what}snapshot {} (database {}) into {target}: {} in {:.1} s, {}",
            snap.id.short(),
            db.database,
            output::bytes(report.bytes),
            started.elapsed().as_secs_f64(),
            if opts.jobs.is_some() {
                "schema in one transaction, then one transaction per table (not all-or-nothing)"
            } else {
                "one transaction"
            }
        );
        if opts.clean {
            for d in clean.describe() {
                tell!("  dropped first: {d}");
            }
        }
        for (part, line, stmt) in &report.skipped {
            tell!("  skipped on a managed target ({part} line {line}): {stmt}");
        }
        if report.cron_jobs_scheduled > 0 {
            tell!(
                "  recreated {} pg_cron job(s) with cron.schedule_in_database",
                report.cron_jobs_scheduled
            );
        }
        for l in &report.left_out {
            tell!("  not restored: {}: {}", l.what, l.reason);
        }
        for a in &report.additions_applied {
            tell!("  applied your addition to auth/storage: {a}");
        }
        if report.notified_postgrest {
            tell!("  sent NOTIFY pgrst, 'reload schema'");
        }
        tell!("verification:");
        for c in &checks {
            tell!(
                "  {} {}: {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.what,
                c.detail
            );
        }
    }
    Ok(if ok { exit::OK } else { exit::FAILED })
}
