//! `snap run`: the nightly job a [`Config`] describes. Each project is backed up (one snapshot)
//! and its retention applied, then the repository is pruned, checked and copied off-site. Nothing is printed:
//! every step reports through [`Events`] and the result is a [`NightlyReport`].
//!
//! The steps run in this order, each only when it is safe (docs/nightly.md):
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

use std::time::Instant;

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use crate::config::{Config, Project};
use crate::error::{Error, Result};
use crate::ops::summary::BackupFigures;
use crate::progress::Progress;
use crate::repo::Repository;

mod ping;
mod sources;
mod steps;

pub use ping::ping;
pub use sources::{backup_project, open_repository, project_source};
use steps::{State, describe, is_corruption, run_step, skip_reason, step_fields, step_report};

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
// Run

/// Run the nightly job. Never fails as a whole: every failure is in the report.
pub fn run(
    cfg: &Config,
    opts: &NightlyOptions,
    events: &dyn Events,
    progress: &dyn Progress,
) -> NightlyReport {
    let mut runner = Runner {
        cfg,
        opts,
        events,
        progress,
        clock: Instant::now(),
        report: NightlyReport {
            config: cfg.path.display().to_string(),
            repository: crate::redact::url_passwords(&cfg.repository.location),
            host: (cfg.repository.host.clone()).unwrap_or_else(crate::util::hostname),
            started: Utc::now(),
            duration_ms: 0,
            ok: false,
            steps: Vec::new(),
        },
    };
    let steps = match plan(cfg, opts) {
        Ok(s) => s,
        Err(e) => return runner.plan_failed(&e),
    };
    runner.started(&steps);
    let Some(repo) = runner.open(&steps) else {
        return runner.finish();
    };
    let mut state = State::default();
    for s in &steps {
        runner.step(s, &repo, &mut state);
    }
    runner.finish()
}

/// One run in progress: what it reports to and the report it builds.
struct Runner<'a> {
    cfg: &'a Config,
    opts: &'a NightlyOptions,
    events: &'a dyn Events,
    progress: &'a dyn Progress,
    clock: Instant,
    report: NightlyReport,
}

impl Runner<'_> {
    fn emit(
        &self,
        level: Level,
        project: Option<&str>,
        step: &str,
        msg: &str,
        fields: &[(&'static str, String)],
    ) {
        self.events.event(&Event {
            level,
            project,
            step,
            msg,
            fields,
        });
    }

    /// The steps could not be planned (an unknown project): one failed step, nothing run.
    fn plan_failed(mut self, e: &Error) -> NightlyReport {
        self.emit(Level::Error, None, "plan", &e.to_string(), &[]);
        self.report.steps.push(step_report(
            StepKind::Open,
            None,
            Status::Failed,
            0,
            Some(e.to_string()),
        ));
        self.report.duration_ms = self.clock.elapsed().as_millis() as u64;
        self.report
    }

    /// The run's first event: how many projects, which repository.
    fn started(&self, steps: &[Step<'_>]) {
        let projects = steps
            .iter()
            .filter(|s| matches!(s, Step::Backup(_)))
            .count();
        self.emit(
            Level::Info,
            None,
            "run",
            "nightly run started",
            &[
                ("projects", projects.to_string()),
                ("repository", self.report.repository.clone()),
            ],
        );
    }

    /// Open the repository; when it cannot be opened, every step is recorded as skipped.
    fn open(&mut self, steps: &[Step<'_>]) -> Option<Repository> {
        let t = Instant::now();
        match open_repository(self.cfg) {
            Ok(r) => {
                self.emit(Level::Info, None, "open", "repository opened", &[]);
                self.remove_gone_locks(&r);
                Some(r)
            }
            Err(e) => {
                let msg = e.to_string();
                self.emit(Level::Error, None, "open", &msg, &[]);
                self.report.steps.push(step_report(
                    StepKind::Open,
                    None,
                    Status::Failed,
                    ms(t),
                    Some(msg),
                ));
                for s in steps {
                    let (kind, project) = describe(s);
                    self.skip(kind, project, "the repository could not be opened".into());
                }
                None
            }
        }
    }

    /// Locks left by processes of this host that are gone (a killed run) are removed, each
    /// with a warning; failing to list them is left to the steps' own locking.
    fn remove_gone_locks(&self, repo: &Repository) {
        let Ok(gone) = crate::repo::lock::remove_gone(&**repo.backend(), repo.key()) else {
            return;
        };
        for l in gone {
            let msg = format!(
                "removed a stale lock of pid {} (snap {}), which is gone",
                l.pid, l.command
            );
            self.emit(Level::Warn, None, "open", &msg, &[]);
        }
    }

    /// Record step `kind` as skipped, and why.
    fn skip(&mut self, kind: StepKind, project: Option<&str>, why: String) {
        self.emit(
            Level::Warn,
            project,
            kind.as_str(),
            &format!("skipped: {why}"),
            &[],
        );
        self.report.steps.push(step_report(
            kind,
            project.map(str::to_string),
            Status::Skipped,
            0,
            Some(why),
        ));
    }

    /// Run step `s` (or skip it, by the rules of the module documentation) and record it.
    fn step(&mut self, s: &Step<'_>, repo: &Repository, state: &mut State) {
        let (kind, project) = describe(s);
        if let Some(why) = skip_reason(s, state) {
            return self.skip(kind, project, why);
        }
        self.emit(Level::Info, project, kind.as_str(), "started", &[]);
        let t = Instant::now();
        let mut r = step_report(kind, project.map(str::to_string), Status::Ok, 0, None);
        let result = run_step(s, self.cfg, self.opts, repo, self.progress, state, &mut r);
        r.duration_ms = ms(t);
        let mut fields = vec![("duration_ms", r.duration_ms.to_string())];
        fields.extend(step_fields(&r));
        match result {
            Ok(()) if r.status == Status::Ok => {
                self.emit(Level::Info, project, kind.as_str(), "done", &fields)
            }
            Ok(()) => self.emit(
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
                self.emit(
                    Level::Error,
                    project,
                    kind.as_str(),
                    &e.to_string(),
                    &fields,
                );
            }
        }
        self.report.steps.push(r);
    }

    fn finish(self) -> NightlyReport {
        finish(self.report, self.clock, self.events)
    }
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
