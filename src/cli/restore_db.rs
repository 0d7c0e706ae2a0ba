//! `snap restore <id> --db`: load a database snapshot into a target database.

use std::io::IsTerminal;

use serde_json::json;
use snap::ops::dbrestore::{self, Requirement, Scope};
use snap::ops::dbsnap::DbSnapshot;
use snap::repo::Repository;
use snap::snapshot::Snapshot;
use snap::source::postgres::conn::ConnSpec;
use snap::source::postgres::pgbin::{self, PgTools};

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

/// `snap restore <id> --db`: plan the restore, show it or ask, then restore and verify.
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
    check_usage(conn, opts)?;
    let scope = scope_of(opts)?;
    let db = DbSnapshot::open(repo, snap, database)?;
    check_in_snapshot(&db, snap, &scope)?;
    let (spec, tools, info) = conn
        .with_conn(|c| {
            let tools = pgbin::newest(conn.pg_bin.as_deref())?;
            let info = dbrestore::inspect(&tools, &c)?;
            Ok((c, tools, info))
        })
        .map_err(|e| missing_database(e, conn))?;
    let target = Target { spec, tools, info };
    check_data_only(opts, &db, &scope, &target)?;
    let mut plan = Plan::make(snap, db, opts, scope, target)?;
    if dry_run || plan.blocking() {
        return plan.report(dry_run, json_out);
    }
    if !yes && !plan.confirm()? {
        say!("not restored");
        return Ok(exit::FAILED);
    }
    plan.execute(g, json_out)
}

/// The usage errors of `restore --db`, found before the repository is opened.
pub fn check_usage(conn: &DbConnArgs, opts: &DbRestoreArgs) -> anyhow::Result<()> {
    if opts.verify {
        return Ok(());
    }
    if !conn.given() {
        usage!("restore --db needs the target: pass --db-url or --project-ref");
    }
    scope_of(opts).map(|_| ())
}

/// When the target database does not exist (the server said so), an error that names it and
/// says how to create it; any other error unchanged.
fn missing_database(e: anyhow::Error, conn: &DbConnArgs) -> anyhow::Error {
    let stderr = e
        .downcast_ref::<snap::Error>()
        .and_then(|e| e.command_stderr())
        .unwrap_or_default();
    let Some(name) = stderr
        .split("database \"")
        .nth(1)
        .and_then(|rest| rest.split_once("\" does not exist"))
        .map(|(name, _)| name.to_string())
    else {
        return e;
    };
    let (host, port, user) = server_of(conn);
    let mut create = format!("createdb -h {host} -p {port}");
    if let Some(u) = user {
        create.push_str(&format!(" -U {u}"));
    }
    anyhow::anyhow!(
        "database {name:?} does not exist on {host}:{port}: create it with `{create} {name}` (or restore into an existing database or a fresh Supabase project), then run the restore again; nothing was changed"
    )
}

/// Host, port and user of the target, for a `createdb` command line.
fn server_of(conn: &DbConnArgs) -> (String, u16, Option<String>) {
    if let Some(r) = &conn.project_ref {
        return match &conn.pooler_host {
            Some(h) => (h.clone(), 5432, Some(format!("postgres.{r}"))),
            None => (format!("db.{r}.supabase.co"), 5432, Some("postgres".into())),
        };
    }
    let url = conn.db_url.as_deref().and_then(|u| url::Url::parse(u).ok());
    let Some(url) = url else {
        return ("localhost".into(), 5432, None);
    };
    let query = |k: &str| {
        url.query_pairs()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.into_owned())
    };
    let host = query("host")
        .or_else(|| url.host_str().filter(|h| !h.is_empty()).map(str::to_string))
        .unwrap_or_else(|| "localhost".into());
    let port = query("port")
        .and_then(|p| p.parse().ok())
        .or(url.port())
        .unwrap_or(5432);
    let user = Some(url.username().to_string()).filter(|u| !u.is_empty());
    (host, port, user)
}

/// The scope `opts` asks for, refusing the combinations of options that make no sense.
fn scope_of(opts: &DbRestoreArgs) -> anyhow::Result<Scope> {
    let scope = match (&opts.schema, &opts.table) {
        (Some(s), _) => Scope::Schema(s.clone()),
        (None, Some(t)) => Scope::table(t)?,
        (None, None) => Scope::Whole,
    };
    if opts.data_only && scope == Scope::Whole {
        usage!("--data-only needs --table or --schema");
    }
    if opts.data_only && opts.clean {
        usage!(
            "--clean drops what it restores, --data-only restores no definitions: use one or the other"
        );
    }
    Ok(scope)
}

/// Fail unless the snapshot has the table or schema `scope` names.
fn check_in_snapshot(db: &DbSnapshot, snap: &Snapshot, scope: &Scope) -> anyhow::Result<()> {
    if let Scope::Table(s, t) = scope
        && !db.tables().any(|p| {
            p.schema.as_deref() == Some(s.as_str()) && p.table.as_deref() == Some(t.as_str())
        })
    {
        anyhow::bail!("snapshot {} has no table {s}.{t}", snap.id.short());
    }
    if let Scope::Schema(s) = scope
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
    Ok(())
}

/// With `--data-only`: fail unless every table it loads already exists in the target.
fn check_data_only(
    opts: &DbRestoreArgs,
    db: &DbSnapshot,
    scope: &Scope,
    target: &Target,
) -> anyhow::Result<()> {
    let (tools, spec) = (&target.tools, &target.spec);
    if opts.data_only
        && let Scope::Table(s, t) = scope
        && !dbrestore::table_exists(tools, spec, s, t)?
    {
        anyhow::bail!(
            "--data-only: table {s}.{t} does not exist in the target; restore its definition too (drop --data-only)"
        );
    }
    if opts.data_only
        && let Scope::Schema(s) = scope
    {
        for p in dbrestore::scoped_parts(db, scope) {
            let t = p.table.as_deref().unwrap_or("");
            if !dbrestore::table_exists(tools, spec, s, t)? {
                anyhow::bail!(
                    "--data-only: table {s}.{t} does not exist in the target; restore its definition too (drop --data-only)"
                );
            }
        }
    }
    Ok(())
}

/// The target database: its connection, the PostgreSQL tools to reach it and what it holds.
struct Target {
    spec: ConnSpec,
    tools: PgTools,
    info: dbrestore::TargetInfo,
}

/// A planned `snap restore --db`: what it restores into which target, and what stands in the
/// way.
struct Plan<'a> {
    snap: &'a Snapshot,
    db: DbSnapshot<'a>,
    opts: &'a DbRestoreArgs,
    scope: Scope,
    /// `snap restore --db` without options: the whole database in one transaction, roles.sql
    /// as is.
    whole: bool,
    t: Target,
    /// The target, for people.
    target: String,
    clean: dbrestore::CleanPlan,
    tables: Vec<(String, String)>,
    reqs: Vec<Requirement>,
    data: dbrestore::DataPlan,
    additions: dbrestore::AdditionsPlan,
}

/// The `--clean` plan (empty without `--clean`).
fn clean_plan(
    db: &DbSnapshot,
    opts: &DbRestoreArgs,
    scope: &Scope,
    t: &Target,
) -> anyhow::Result<dbrestore::CleanPlan> {
    let snapshot_managed = db
        .catalog()?
        .map(|c| c.managed_objects.as_slice())
        .unwrap_or_default();
    Ok(if opts.clean {
        dbrestore::clean::plan(
            &String::from_utf8_lossy(&db.read_to_vec("schema.sql")?),
            scope,
            snapshot_managed,
            &t.tools,
            &t.spec,
        )?
    } else {
        dbrestore::CleanPlan::default()
    })
}

/// What the target must offer for `tables`, leaving out those `--clean` drops first.
fn target_requirements(
    db: &DbSnapshot,
    opts: &DbRestoreArgs,
    scope: &Scope,
    clean: &dbrestore::CleanPlan,
    tables: &[(String, String)],
    target: &Target,
) -> anyhow::Result<Vec<Requirement>> {
    let dropped = |s: &str, t: &str| {
        opts.clean
            && match scope {
                Scope::Table(cs, ct) => cs == s && ct == t,
                _ => clean.schemas.iter().any(|c| c == s),
            }
    };
    // With --data-only the tables exist (checked above); their rows still block.
    let checked: Vec<(String, String)> = tables
        .iter()
        .filter(|(s, t)| !dropped(s, t))
        .cloned()
        .collect();
    let inv = dbrestore::scope_inventory(&db.inventory, scope);
    let mut reqs = dbrestore::requirements(&inv, &checked, &target.info);
    if opts.clean && *scope == Scope::Whole {
        // --clean drops only user schemas: rows the data part reloads elsewhere (auth.users, …)
        // would be duplicated.
        let kept: Vec<(String, String)> = checked
            .iter()
            .filter(|(s, t)| !target.info.nonempty_tables.contains(&format!("{s}.{t}")))
            .cloned()
            .collect();
        let busy = dbrestore::tables_with_rows(&target.tools, &target.spec, &kept)?;
        if !busy.is_empty() {
            reqs.push(Requirement {
                blocking: true,
                what: format!("--clean drops only user schemas, and the target already has rows in {} (not dropped)", busy.join(", ")),
                fix: Some("restore the user schemas one by one (--schema S --clean), or into a fresh project".into()),
            });
        }
    }
    Ok(reqs)
}

impl<'a> Plan<'a> {
    /// Plan restoring `scope` of `db` into the target `t`: the `--clean` plan, the
    /// requirements, the data and the additions to auth and storage.
    fn make(
        snap: &'a Snapshot,
        db: DbSnapshot<'a>,
        opts: &'a DbRestoreArgs,
        scope: Scope,
        t: Target,
    ) -> anyhow::Result<Plan<'a>> {
        let whole = scope == Scope::Whole && !opts.data_only && opts.jobs.is_none() && !opts.clean;
        let clean = clean_plan(&db, opts, &scope, &t)?;
        let tables: Vec<(String, String)> = dbrestore::scoped_parts(&db, &scope)
            .iter()
            .filter_map(|p| Some((p.schema.clone()?, p.table.clone()?)))
            .collect();
        let mut reqs = target_requirements(&db, opts, &scope, &clean, &tables, &t)?;
        let data = dbrestore::data_plan(&db, &scope, &t.info)?;
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
        let all_additions =
            scope == Scope::Whole && !opts.data_only && !opts.no_auth_storage_additions;
        let additions = dbrestore::additions_plan(
            &db,
            &t.tools,
            &t.spec,
            all_additions,
            &clean.recreate_keys(),
        )?;
        reqs.extend(dbrestore::additions_notes(&additions));
        let target = t.spec.display();
        Ok(Plan {
            snap,
            db,
            opts,
            scope,
            whole,
            t,
            target,
            clean,
            tables,
            reqs,
            data,
            additions,
        })
    }

    /// A requirement blocks the restore.
    fn blocking(&self) -> bool {
        self.reqs.iter().any(|r| r.blocking)
    }

    /// The target is a Supabase project.
    fn supabase(&self) -> bool {
        self.t.info.is_supabase()
    }

    /// What is restored, e.g. "schema public, data only".
    fn what(&self) -> String {
        format!(
            "{}{}",
            self.scope.describe(),
            if self.opts.data_only {
                ", data only"
            } else {
                ""
            }
        )
    }

    /// "<what> of " before "snapshot …" (empty for a whole-database restore).
    fn of_what(&self) -> String {
        if self.whole {
            String::new()
        } else {
            format!("{} of ", self.what())
        }
    }

    /// Show what the restore would do.
    fn show_plan(&self) {
        let (db, target) = (&self.db, &self.target);
        let mode = match self.opts.jobs {
            None => "in one transaction".to_string(),
            Some(n) => format!(
                "roles and schema in one transaction, then the data of {n} tables at a time (one transaction per table; a failure leaves the schema and loaded tables in place)"
            ),
        };
        tell!(
            "restore {}snapshot {} (database {}) into {target}{}",
            self.of_what(),
            self.snap.id.short(),
            db.database,
            if self.supabase() {
                " (a Supabase project)"
            } else {
                ""
            }
        );
        if self.whole {
            tell!(
                "  in one transaction: {} ({})",
                dbrestore::restore_parts(db).join(" → "),
                output::count(self.tables.len() as u64, "table")
            );
        } else {
            tell!(
                "  {mode}: {}",
                output::count(self.tables.len() as u64, "table")
            );
        }
        if self.opts.clean {
            tell!("  --clean drops first:");
            for d in self.clean.describe() {
                tell!("    {d}");
            }
        }
    }

    /// `--dry-run`, or a blocking requirement: show the plan and the requirements, change
    /// nothing.
    fn report(&self, dry_run: bool, json_out: bool) -> anyhow::Result<u8> {
        if json_out {
            self.plan_json(dry_run)?;
        } else {
            self.show_plan();
            print_report(&self.reqs);
        }
        if self.blocking() {
            if !json_out {
                say!("error: the target is not ready (BLOCKING above); nothing was changed");
            }
            return Ok(exit::FAILED);
        }
        if !json_out {
            tell!("dry run: nothing was changed");
        }
        Ok(exit::OK)
    }

    /// Print the plan and the requirements as JSON.
    fn plan_json(&self, dry_run: bool) -> anyhow::Result<()> {
        let (snap, db, target, supabase) = (self.snap, &self.db, &self.target, self.supabase());
        let (scope, opts, reqs) = (&self.scope, self.opts, &self.reqs);
        let mut plan = json!({
            "snapshot": snap.id.to_hex(), "database": db.database, "target": target, "supabase_target": supabase,
            "dry_run": dry_run, "requirements": reqs, "tables": self.tables.len(),
        });
        let extra = if self.whole {
            json!({ "parts": dbrestore::restore_parts(db) })
        } else {
            json!({ "scope": scope, "data_only": opts.data_only, "jobs": opts.jobs, "clean": self.clean.describe() })
        };
        plan.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        output::json(&plan)?;
        Ok(())
    }

    /// Ask before changing the target (without a terminal: fail, asking for --yes); false when
    /// the answer is no.
    fn confirm(&self) -> anyhow::Result<bool> {
        let (snap, db, target) = (self.snap, &self.db, &self.target);
        let what = self.what();
        if !std::io::stdin().is_terminal() {
            let drops = if self.opts.clean {
                format!("; --clean would drop: {}", self.clean.describe().join(", "))
            } else {
                String::new()
            };
            let what = if self.whole {
                String::new()
            } else {
                format!("{what} ")
            };
            usage!(
                "restoring {what}into {target} changes that database{drops}: pass --yes to confirm without a terminal"
            );
        }
        let question = if self.whole {
            format!(
                "restore snapshot {} (database {}, {}) into {target}?",
                snap.id.short(),
                db.database,
                output::count(self.tables.len() as u64, "table")
            )
        } else {
            self.show_plan();
            format!("restore {what} into {target}?")
        };
        Ok(output::confirm(&question)?)
    }

    /// The options of [`dbrestore::restore`] (the data and additions plans move into them).
    fn restore_options(&mut self) -> dbrestore::RestoreOptions {
        let data = std::mem::take(&mut self.data);
        let additions = std::mem::take(&mut self.additions);
        if self.whole {
            dbrestore::RestoreOptions {
                data,
                additions,
                ..dbrestore::RestoreOptions::whole(self.supabase())
            }
        } else {
            dbrestore::RestoreOptions {
                scope: self.scope.clone(),
                data_only: self.opts.data_only,
                jobs: self.opts.jobs,
                clean: self.clean.statements(),
                existing_roles: self.t.info.roles.clone(),
                supabase_target: self.supabase(),
                data,
                additions,
            }
        }
    }

    /// Restore, verify, and report the result.
    fn execute(&mut self, g: &Global, json_out: bool) -> anyhow::Result<u8> {
        let started = std::time::Instant::now();
        let ropts = self.restore_options();
        let (db, tools, spec) = (&self.db, &self.t.tools, &self.t.spec);
        let report = dbrestore::restore(
            db,
            tools,
            spec,
            &ropts,
            &super::progress::Bars::new(g.quiet),
        )?;
        let checks = dbrestore::verify(db, tools, spec, &self.scope, &ropts)?;
        let ok = checks.iter().all(|c| c.ok);
        if json_out {
            self.done_json(&report, &checks, ok, started)?;
        } else if !g.quiet {
            self.tell_done(&report, &checks, started);
        }
        Ok(if ok { exit::OK } else { exit::FAILED })
    }

    /// Print the result of the restore and its verification as JSON.
    fn done_json(
        &self,
        report: &dbrestore::RestoreReport,
        checks: &[dbrestore::Check],
        ok: bool,
        started: std::time::Instant,
    ) -> anyhow::Result<()> {
        let (snap, db, target, supabase) = (self.snap, &self.db, &self.target, self.supabase());
        let (scope, opts, reqs) = (&self.scope, self.opts, &self.reqs);
        let mut done = json!({
            "snapshot": snap.id.to_hex(), "database": db.database, "target": target, "supabase_target": supabase,
            "requirements": reqs, "restore": report, "verification": checks, "verified": ok,
            "seconds": started.elapsed().as_secs_f64(),
        });
        if !self.whole {
            let extra = json!({ "scope": scope, "data_only": opts.data_only, "jobs": opts.jobs, "clean": self.clean.describe() });
            done.as_object_mut()
                .expect("object")
                .extend(extra.as_object().expect("object").clone());
        }
        output::json(&done)?;
        Ok(())
    }

    /// Tell the result of the restore and its verification.
    fn tell_done(
        &self,
        report: &dbrestore::RestoreReport,
        checks: &[dbrestore::Check],
        started: std::time::Instant,
    ) {
        tell!(
            "restored {}snapshot {} (database {}) into {}: {} in {:.1} s, {}",
            self.of_what(),
            self.snap.id.short(),
            self.db.database,
            self.target,
            output::bytes(report.bytes),
            started.elapsed().as_secs_f64(),
            if self.opts.jobs.is_some() {
                "schema in one transaction, then one transaction per table (not all-or-nothing)"
            } else {
                "one transaction"
            }
        );
        if self.opts.clean {
            for d in self.clean.describe() {
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
        for c in checks {
            tell!(
                "  {} {}: {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.what,
                c.detail
            );
        }
    }
}
