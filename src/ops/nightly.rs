//! `snap run`: the nightly job a [`Config`] describes. Each project is backed up (one snapshot)
//! and its retention applied, then the repository is pruned, checked and copied off-site. Nothing is printed:
//! every step reports through [`Events`] and the result is a [`NightlyReport`].
//!
//! The steps run in this order, each only when it is safe (README "Nightly operation"):
//!
//! 1. **open** the repository; if that fails, every other step is skipped.
//! 2. per project, **backup** (shared lock): always attempted; one project failing does not
//!    stop the others.
//! 3. per project, **forget** (shared lock), with the project's tag as filter so projects never
//!    evict each other. It runs even when the project's backup failed, because every snap
//!    retention rule is anchored to the project's newest existing snapshot, never to the clock:
//!    a night without a new snapshot keeps exactly what the previous night kept, and the newest
//!    snapshot is always kept. It is skipped once any step has reported repository corruption.
//!    Unreadable snapshot manifests fail it (and count as corruption).
//! 4. **prune** (exclusive lock), once: only when enabled, at least one forget ran, and no step
//!    reported corruption (pruning a repository whose manifests cannot all be read could free
//!    data those snapshots need).
//! 5. **check** (shared lock), once, with the configured `read_data_subset`: whenever enabled
//!    and the repository opened, whatever happened before.
//!
//! 6. **copy** to the `[offsite]` repository (shared locks on both), once, when configured:
//!    skipped when any step reported corruption (including problems `check` found), so a
//!    damaged repository is never shipped over a good off-site copy.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use crate::config::{Config, Db, DbTarget, Project, Storage};
use crate::error::{Error, Result};
use crate::ops::check::{CheckOptions, check};
use crate::ops::copy::{self, CopyOptions};
use crate::ops::forget::{self, Filter, GroupBy};
use crate::ops::prune::{self, PruneOptions};
use crate::ops::summary::BackupFigures;
use crate::ops::{BackupInput, BackupOptions, BackupOutcome, backup};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::repo::lock::LockKind;
use crate::source::Source;
use crate::source::postgres::conn::ConnSpec;
use crate::source::postgres::{DatabaseSource, DbOptions};
use crate::source::project::ProjectSource;
use crate::source::storage::{StorageOptions, StorageSource};

// ---------------------------------------------------------------------------------------------
// Events

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One thing that happened: a step started or ended, a warning, an error. `fields` are figures
/// (`bytes_read=…`); no secrets are ever in an event.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub level: Level,
    pub project: Option<&'a str>,
    pub step: &'a str,
    pub msg: &'a str,
    pub fields: &'a [(&'static str, String)],
}

/// Receives the events of a run (the CLI writes them as log lines).
pub trait Events: Send + Sync {
    fn event(&self, e: &Event<'_>);
}

/// Discards events.
pub struct NoEvents;
impl Events for NoEvents {
    fn event(&self, _: &Event<'_>) {}
}

// ---------------------------------------------------------------------------------------------
// Report

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    Open,
    Backup,
    Forget,
    Prune,
    Check,
    Copy,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Open => "open",
            StepKind::Backup => "backup",
            StepKind::Forget => "forget",
            StepKind::Prune => "prune",
            StepKind::Check => "check",
            StepKind::Copy => "copy",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForgetFigures {
    pub policy: String,
    pub kept: usize,
    pub removed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PruneFigures {
    pub packs_deleted: usize,
    pub bytes_deleted: u64,
    pub packs_condemned: usize,
    pub chunks_repacked: u64,
    pub bytes_repacked: u64,
    /// Bytes a prune after the grace period will free.
    pub bytes_freed_later: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckFigures {
    pub read_data: String,
    pub snapshots: u64,
    pub packs: u64,
    pub packs_read: u64,
    pub bytes_read: u64,
    pub problems: u64,
    pub warnings: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CopyFigures {
    /// Without any credentials.
    pub destination: String,
    pub snapshots_copied: usize,
    /// Snapshots the destination already held.
    pub snapshots_present: usize,
    pub bytes_sent: u64,
    pub mb_per_s: f64,
    /// Requests made to the destination, when its backend counts them.
    pub destination_requests: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step: StepKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    pub status: Status,
    pub duration_ms: u64,
    /// Why it failed, or why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forget: Option<ForgetFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<PruneFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy: Option<CopyFigures>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NightlyReport {
    pub config: String,
    /// Without any credentials.
    pub repository: String,
    pub host: String,
    pub started: DateTime<Utc>,
    pub duration_ms: u64,
    /// No step failed (steps are skipped only after a failure, so none was skipped either).
    pub ok: bool,
    pub steps: Vec<StepReport>,
}

impl NightlyReport {
    pub fn failed_steps(&self) -> impl Iterator<Item = &StepReport> {
        self.steps.iter().filter(|s| s.status == Status::Failed)
    }
}

// ---------------------------------------------------------------------------------------------
// Plan

/// One step of the nightly job.
#[derive(Debug, Clone, Copy)]
pub enum Step<'c> {
    Backup(&'c Project),
    Forget(&'c Project),
    Prune,
    Check,
    /// The off-site copy (`[offsite]`).
    Copy,
}

#[derive(Debug, Clone, Default)]
pub struct NightlyOptions {
    /// Only these projects (all when empty). Prune and check still cover the whole repository.
    pub projects: Vec<String>,
    /// Record this snapshot time instead of now (imports, tests of retention).
    pub time: Option<DateTime<FixedOffset>>,
}

/// The steps, in order, for `cfg` (see the module documentation).
pub fn plan<'c>(cfg: &'c Config, opts: &NightlyOptions) -> Result<Vec<Step<'c>>> {
    let projects: Vec<&Project> = if opts.projects.is_empty() {
        cfg.projects.iter().collect()
    } else {
        opts.projects
            .iter()
            .map(|n| cfg.project(n))
            .collect::<Result<_>>()?
    };
    let mut steps = Vec::new();
    for p in projects {
        steps.push(Step::Backup(p));
        steps.push(Step::Forget(p));
    }
    if cfg.prune.enabled {
        steps.push(Step::Prune);
    }
    if cfg.check.enabled {
        steps.push(Step::Check);
    }
    if cfg.offsite.is_some() {
        steps.push(Step::Copy);
    }
    Ok(steps)
}

// ---------------------------------------------------------------------------------------------
// Sources and the repository

/// The source of one project's snapshot — the ONE place that decides what it holds: the
/// database under `db/<database>/` and the Storage buckets under `storage/<bucket>/`, together in
/// one snapshot (so rows in `storage.objects` and the files they describe are from the same night).
pub fn project_source(p: &Project) -> Result<Box<dyn Source>> {
    let db = p.db.as_ref().map(database_source).transpose()?;
    let storage = p.storage.as_ref().map(storage_source).transpose()?;
    match (db, storage) {
        (Some(db), None) => Ok(Box::new(db)),
        (None, Some(st)) => Ok(Box::new(st)),
        (db, st @ Some(_)) => Ok(Box::new(ProjectSource::new(db, st))),
        (None, None) => Err(Error::Invalid(format!(
            "project {}: nothing to back up (give a db or a storage table)",
            p.name
        ))),
    }
}

fn storage_source(st: &Storage) -> Result<StorageSource> {
    StorageSource::new(StorageOptions {
        api_base: st.api_base.clone(),
        service_key: st.service_key.read()?,
        buckets: st.buckets.clone(),
        concurrency: st.concurrency,
        retry: crate::source::storage::client::RetryPolicy {
            patience: st.retry_for,
            ..Default::default()
        },
        ..Default::default()
    })
}

fn database_source(db: &Db) -> Result<DatabaseSource> {
    let password = db.password.as_ref().map(|s| s.read()).transpose()?;
    let conn = match &db.target {
        DbTarget::Url(u) => ConnSpec::from_url(u, password)?,
        DbTarget::ProjectRef {
            project_ref,
            pooler_host,
        } => ConnSpec::from_project_ref(project_ref, pooler_host.as_deref(), password)?,
    };
    let pg_bin = db
        .pg_bin
        .as_deref()
        .map(crate::config::expand)
        .transpose()?;
    DatabaseSource::connect(DbOptions { conn, pg_bin })
}

/// Open the configured repository with the configured password.
pub fn open_repository(cfg: &Config) -> Result<Repository> {
    let backend: Arc<dyn crate::backend::Backend> =
        Arc::from(crate::backend::open_location(&cfg.repository.location)?);
    if !backend.exists("config")? {
        return Err(Error::NotARepository(backend.location()));
    }
    let pw = cfg.repository.password.read()?;
    Repository::open(backend, pw.as_bytes(), &cfg.cache_dir())
}

/// Open the `[offsite]` repository (its index cache lives beside the main one's, keyed by its id).
fn open_offsite(cfg: &Config, off: &crate::config::Offsite) -> Result<Repository> {
    let backend: Arc<dyn crate::backend::Backend> =
        Arc::from(crate::backend::open_location(&off.location)?);
    if !backend.exists("config")? {
        return Err(Error::Invalid(format!(
            "the off-site repository {} does not exist yet: create it once with `snap init --repo {} --copy-key-from {}`",
            backend.location(),
            backend.location(),
            crate::redact::url_passwords(&cfg.repository.location)
        )));
    }
    let pw = off.password.read()?;
    Repository::open(backend, pw.as_bytes(), &cfg.cache_dir())
}

/// Back up one project into one snapshot (tagged `project=<name>` and its own tags), under a
/// shared lock.
pub fn backup_project(
    repo: &Repository,
    cfg: &Config,
    p: &Project,
    time: Option<DateTime<FixedOffset>>,
    progress: &dyn Progress,
) -> Result<BackupOutcome> {
    let _lock = repo.lock(LockKind::Shared, "backup")?;
    let src = project_source(p)?;
    let opts = BackupOptions {
        host: cfg.repository.host.clone(),
        tags: p.all_tags(),
        time,
        ..Default::default()
    };
    backup(repo, BackupInput::Source(src), &opts, progress)
}

// ---------------------------------------------------------------------------------------------
// Run

/// What earlier steps found, deciding whether later ones run.
#[derive(Default)]
struct State {
    /// A step reported damage in the repository (unreadable manifests, corrupt data).
    corruption: Option<String>,
    forget_ran: bool,
}

fn is_corruption(e: &Error) -> bool {
    matches!(e, Error::Corrupt { .. } | Error::ChunkMissing(_))
}

/// Run the nightly job. Never fails as a whole: every failure is in the report.
pub fn run(
    cfg: &Config,
    opts: &NightlyOptions,
    events: &dyn Events,
    progress: &dyn Progress,
) -> NightlyReport {
    let started = Utc::now();
    let clock = Instant::now();
    let mut report = NightlyReport {
        config: cfg.path.display().to_string(),
        repository: crate::redact::url_passwords(&cfg.repository.location),
        host: cfg
            .repository
            .host
            .clone()
            .unwrap_or_else(crate::util::hostname),
        started,
        duration_ms: 0,
        ok: false,
        steps: Vec::new(),
    };
    let emit = |level: Level,
                project: Option<&str>,
                step: &str,
                msg: &str,
                fields: &[(&'static str, String)]| {
        events.event(&Event {
            level,
            project,
            step,
            msg,
            fields,
        });
    };

    let steps = match plan(cfg, opts) {
        Ok(s) => s,
        Err(e) => {
            emit(Level::Error, None, "plan", &e.to_string(), &[]);
            report.steps.push(step_report(
                StepKind::Open,
                None,
                Status::Failed,
                0,
                Some(e.to_string()),
            ));
            report.duration_ms = clock.elapsed().as_millis() as u64;
            return report;
        }
    };
    emit(
        Level::Info,
        None,
        "run",
        "nightly run started",
        &[
            (
                "projects",
                steps
                    .iter()
                    .filter(|s| matches!(s, Step::Backup(_)))
                    .count()
                    .to_string(),
            ),
            ("repository", report.repository.clone()),
        ],
    );

    let t = Instant::now();
    let repo = match open_repository(cfg) {
        Ok(r) => {
            emit(Level::Info, None, "open", "repository opened", &[]);
            r
        }
        Err(e) => {
            let msg = e.to_string();
            emit(Level::Error, None, "open", &msg, &[]);
            report.steps.push(step_report(
                StepKind::Open,
                None,
                Status::Failed,
                ms(t),
                Some(msg),
            ));
            for s in &steps {
                let (kind, project) = describe(s);
                emit(
                    Level::Warn,
                    project,
                    kind.as_str(),
                    "skipped: the repository could not be opened",
                    &[],
                );
                report.steps.push(step_report(
                    kind,
                    project.map(str::to_string),
                    Status::Skipped,
                    0,
                    Some("the repository could not be opened".into()),
                ));
            }
            return finish(report, clock, events);
        }
    };

    let mut state = State::default();
    for s in &steps {
        let (kind, project) = describe(s);
        if let Some(why) = skip_reason(s, &state) {
            emit(
                Level::Warn,
                project,
                kind.as_str(),
                &format!("skipped: {why}"),
                &[],
            );
            report.steps.push(step_report(
                kind,
                project.map(str::to_string),
                Status::Skipped,
                0,
                Some(why),
            ));
            continue;
        }
        emit(Level::Info, project, kind.as_str(), "started", &[]);
        let t = Instant::now();
        let mut r = step_report(kind, project.map(str::to_string), Status::Ok, 0, None);
        let result = run_step(s, cfg, opts, &repo, progress, &mut state, &mut r);
        r.duration_ms = ms(t);
        let mut fields = vec![("duration_ms", r.duration_ms.to_string())];
        fields.extend(step_fields(&r));
        match result {
            Ok(()) if r.status == Status::Ok => {
                emit(Level::Info, project, kind.as_str(), "done", &fields)
            }
            Ok(()) => emit(
                Level::Error,
                project,
                kind.as_str(),
                r.message.as_deref().unwrap_or("failed"),
                &fields,
            ),
            Err(e) => {
                if is_corruption(&e) {
                    state
                        .corruption
                        .get_or_insert_with(|| format!("{} reported: {e}", kind.as_str()));
                }
                r.status = Status::Failed;
                r.message = Some(e.to_string());
                emit(
                    Level::Error,
                    project,
                    kind.as_str(),
                    &e.to_string(),
                    &fields,
                );
            }
        }
        report.steps.push(r);
    }
    finish(report, clock, events)
}

fn finish(mut report: NightlyReport, clock: Instant, events: &dyn Events) -> NightlyReport {
    report.duration_ms = ms(clock);
    let failed = report.failed_steps().count();
    report.ok = failed == 0;
    let failed: Vec<String> = report
        .failed_steps()
        .map(|s| match &s.project {
            Some(p) => format!("{}:{}", p, s.step.as_str()),
            None => s.step.as_str().to_string(),
        })
        .collect();
    let fields = [
        ("duration_ms", report.duration_ms.to_string()),
        ("failed", failed.join(",")),
    ];
    if report.ok {
        events.event(&Event {
            level: Level::Info,
            project: None,
            step: "run",
            msg: "nightly run succeeded",
            fields: &fields[..1],
        });
    } else {
        events.event(&Event {
            level: Level::Error,
            project: None,
            step: "run",
            msg: "nightly run failed",
            fields: &fields,
        });
    }
    report
}

fn ms(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}

fn describe<'c>(s: &Step<'c>) -> (StepKind, Option<&'c str>) {
    match s {
        Step::Backup(p) => (StepKind::Backup, Some(p.name.as_str())),
        Step::Forget(p) => (StepKind::Forget, Some(p.name.as_str())),
        Step::Prune => (StepKind::Prune, None),
        Step::Check => (StepKind::Check, None),
        Step::Copy => (StepKind::Copy, None),
    }
}

fn step_report(
    step: StepKind,
    project: Option<String>,
    status: Status,
    duration_ms: u64,
    message: Option<String>,
) -> StepReport {
    StepReport {
        step,
        project,
        status,
        duration_ms,
        message,
        backup: None,
        forget: None,
        prune: None,
        check: None,
        copy: None,
    }
}

/// Why step `s` must not run now (the rules of the module documentation).
fn skip_reason(s: &Step<'_>, state: &State) -> Option<String> {
    match s {
        Step::Backup(_) | Step::Check => None,
        Step::Forget(_) | Step::Copy => state
            .corruption
            .as_ref()
            .map(|c| format!("repository damage was reported ({c}); run `snap check`")),
        Step::Prune => {
            if let Some(c) = &state.corruption {
                Some(format!(
                    "repository damage was reported ({c}); run `snap check`"
                ))
            } else if !state.forget_ran {
                Some("no forget step ran".into())
            } else {
                None
            }
        }
    }
}

fn run_step(
    s: &Step<'_>,
    cfg: &Config,
    opts: &NightlyOptions,
    repo: &Repository,
    progress: &dyn Progress,
    state: &mut State,
    r: &mut StepReport,
) -> Result<()> {
    match s {
        Step::Backup(p) => {
            let out = backup_project(repo, cfg, p, opts.time, progress)?;
            let f = BackupFigures::of(&out);
            if !f.warnings.is_empty() {
                r.status = Status::Failed;
                r.message = Some(format!(
                    "snapshot {} saved, but {} entries could not be read: {}",
                    f.short_id,
                    f.warnings.len(),
                    f.warnings.join("; ")
                ));
            }
            r.backup = Some(f);
        }
        Step::Forget(p) => {
            let _lock = repo.lock(LockKind::Shared, "forget")?;
            let (all, damaged) = repo.snapshots_and_damaged()?;
            let policy = cfg.policy();
            let filter = Filter {
                host: None,
                tags: vec![p.tag()],
            };
            let plans = forget::plan(&all, &filter, GroupBy::HostPaths, &policy, &chrono::Local);
            let outcome = forget::execute(repo, &plans);
            state.forget_ran = true;
            r.forget = Some(ForgetFigures {
                policy: policy.to_string(),
                kept: plans.iter().map(|g| g.kept().count()).sum(),
                removed: outcome.removed.len(),
            });
            if !damaged.is_empty() {
                let ids: Vec<String> = damaged.iter().map(|(id, _)| id.short()).collect();
                let msg = format!(
                    "{} snapshot manifests cannot be read ({}); they were neither kept nor removed",
                    damaged.len(),
                    ids.join(", ")
                );
                state.corruption.get_or_insert_with(|| msg.clone());
                r.status = Status::Failed;
                r.message = Some(msg);
            } else if let Some((id, e)) = outcome.failed.first() {
                r.status = Status::Failed;
                r.message = Some(format!(
                    "could not remove {} snapshots (first: {}: {e})",
                    outcome.failed.len(),
                    id.short()
                ));
            }
        }
        Step::Prune => {
            let _lock = repo.lock(LockKind::Exclusive, "prune")?;
            let popts = PruneOptions {
                dry_run: false,
                max_repack: cfg.prune.max_repack,
                grace: cfg.prune.grace,
                now: Utc::now(),
                compression: None,
            };
            let plan = prune::plan(repo, &popts)?;
            let rep = prune::execute(repo, &plan, &popts, progress)?;
            r.prune = Some(PruneFigures {
                packs_deleted: rep.packs_deleted,
                bytes_deleted: rep.bytes_deleted,
                packs_condemned: rep.packs_condemned,
                chunks_repacked: rep.chunks_repacked,
                bytes_repacked: rep.bytes_repacked,
                bytes_freed_later: plan.bytes_freed_later,
            });
            if !plan.unreadable.is_empty() {
                r.message = Some(format!(
                    "{} pack trailers unreadable, packs left alone: {}",
                    plan.unreadable.len(),
                    plan.unreadable.join(", ")
                ));
                r.status = Status::Failed;
            }
        }
        Step::Check => {
            let lock = repo.lock(LockKind::Shared, "check")?;
            let copts = CheckOptions {
                read_data: cfg.check.read_data_subset.clone(),
                index_cache: Some(repo.index_path().to_path_buf()),
                own_lock: Some(lock.name().to_string()),
            };
            let rep = check(repo, &copts, progress)?;
            let s = &rep.summary;
            r.check = Some(CheckFigures {
                read_data: s.read_data.clone(),
                snapshots: s.snapshots,
                packs: s.packs,
                packs_read: s.packs_read,
                bytes_read: s.bytes_read,
                problems: s.problems,
                warnings: s.warnings,
            });
            if !rep.is_ok() {
                let first: Vec<&str> = rep
                    .problems
                    .iter()
                    .take(3)
                    .map(|f| f.message.as_str())
                    .collect();
                state
                    .corruption
                    .get_or_insert_with(|| format!("check found {} problems", rep.problems.len()));
                r.status = Status::Failed;
                r.message = Some(format!(
                    "{} problems found (first: {}); run `snap check` for all of them",
                    rep.problems.len(),
                    first.join("; ")
                ));
            }
        }
        Step::Copy => {
            let off = cfg
                .offsite
                .as_ref()
                .ok_or_else(|| Error::Invalid("no [offsite] table".into()))?;
            let dst = open_offsite(cfg, off)?;
            let _src_lock = repo.lock(LockKind::Shared, "copy")?;
            let _dst_lock = dst.lock(LockKind::Shared, "copy")?;
            let rep = copy::copy(
                repo,
                &dst,
                &CopyOptions {
                    parallel: off.parallel,
                    ..Default::default()
                },
                progress,
            )?;
            r.copy = Some(CopyFigures {
                destination: crate::redact::url_passwords(&off.location),
                snapshots_copied: rep.copied.len(),
                snapshots_present: rep.skipped.len(),
                bytes_sent: rep.bytes_sent,
                mb_per_s: rep.mb_per_s(),
                destination_requests: rep.destination_requests.map(|c| c.requests()),
            });
        }
    }
    Ok(())
}

/// Figures of a finished step for its log line.
fn step_fields(r: &StepReport) -> Vec<(&'static str, String)> {
    let mut f = Vec::new();
    if let Some(b) = &r.backup {
        f.push(("snapshot", b.short_id.clone()));
        f.push(("files", b.files.to_string()));
        if let Some(t) = b.tables {
            f.push(("tables", t.to_string()));
        }
        f.push(("bytes_read", b.bytes_read.to_string()));
        f.push(("bytes_added", b.bytes_added.to_string()));
        f.push((
            "dedup_ratio",
            b.dedup_ratio
                .map(|d| format!("{d:.2}"))
                .unwrap_or_else(|| "inf".into()),
        ));
        f.push(("mb_per_s", format!("{:.1}", b.mb_per_s)));
    }
    if let Some(x) = &r.forget {
        f.push(("kept", x.kept.to_string()));
        f.push(("removed", x.removed.to_string()));
        f.push(("policy", x.policy.clone()));
    }
    if let Some(x) = &r.prune {
        f.push(("packs_deleted", x.packs_deleted.to_string()));
        f.push(("bytes_deleted", x.bytes_deleted.to_string()));
        f.push(("packs_condemned", x.packs_condemned.to_string()));
        f.push(("bytes_repacked", x.bytes_repacked.to_string()));
    }
    if let Some(x) = &r.copy {
        f.push(("destination", x.destination.clone()));
        f.push(("copied", x.snapshots_copied.to_string()));
        f.push(("present", x.snapshots_present.to_string()));
        f.push(("bytes_sent", x.bytes_sent.to_string()));
        f.push(("mb_per_s", format!("{:.1}", x.mb_per_s)));
    }
    if let Some(x) = &r.check {
        f.push(("read_data", x.read_data.clone()));
        f.push(("packs_read", x.packs_read.to_string()));
        f.push(("bytes_read", x.bytes_read.to_string()));
        f.push(("problems", x.problems.to_string()));
    }
    f
}

// ---------------------------------------------------------------------------------------------
// Health ping

/// POST the report (JSON) to the healthcheck URL: `<url>` when `report.ok`, `<url>/fail`
/// otherwise (healthchecks.io's convention). The URL is never in an error message: it is a
/// credential of sorts.
pub fn ping(hc: &crate::config::Healthcheck, report: &NightlyReport) -> Result<()> {
    let url = if report.ok {
        hc.url.to_string()
    } else {
        format!("{}/fail", hc.url.as_str().trim_end_matches('/'))
    };
    let body = serde_json::to_vec(report).map_err(|e| Error::Invalid(e.to_string()))?;
    let host = hc.url.host_str().unwrap_or("?").to_string();
    let fail = |why: String| Error::Invalid(format!("health ping to {host} failed: {why}"));
    let client = reqwest::blocking::Client::builder()
        .timeout(hc.timeout)
        .build()
        .map_err(|e| fail(e.without_url().to_string()))?;
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .map_err(|e| fail(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    Ok(())
}
