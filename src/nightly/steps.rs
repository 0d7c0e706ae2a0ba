//! The steps of the nightly job: whether each may run, running it, and its figures.

use chrono::Utc;

use super::sources::{backup_project, open_offsite};
use super::{
    CheckFigures, CopyFigures, ForgetFigures, NightlyOptions, PruneFigures, Status, Step, StepKind,
    StepReport,
};
use crate::config::{Config, Project};
use crate::error::{Error, Result};
use crate::ops::check::{CheckOptions, check};
use crate::ops::copy::{self, CopyOptions};
use crate::ops::forget::{self, GroupBy};
use crate::ops::prune::{self, PruneOptions};
use crate::ops::summary::BackupFigures;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::repo::lock::LockKind;
use crate::snapshot::Selector;

/// What earlier steps found, deciding whether later ones run.
#[derive(Default)]
pub(super) struct State {
    /// A step reported damage in the repository (unreadable manifests, corrupt data).
    pub(super) corruption: Option<String>,
    pub(super) forget_ran: bool,
}

pub(super) fn is_corruption(e: &Error) -> bool {
    matches!(e, Error::Corrupt { .. } | Error::ChunkMissing(_))
}

pub(super) fn describe<'c>(s: &Step<'c>) -> (StepKind, Option<&'c str>) {
    match s {
        Step::Backup(p) => (StepKind::Backup, Some(p.name.as_str())),
        Step::Forget(p) => (StepKind::Forget, Some(p.name.as_str())),
        Step::Prune => (StepKind::Prune, None),
        Step::Check => (StepKind::Check, None),
        Step::Copy => (StepKind::Copy, None),
    }
}

pub(super) fn step_report(
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
pub(super) fn skip_reason(s: &Step<'_>, state: &State) -> Option<String> {
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

/// Run step `s`, filling `r` with its figures; an error fails the step.
pub(super) fn run_step(
    s: &Step<'_>,
    cfg: &Config,
    opts: &NightlyOptions,
    repo: &Repository,
    progress: &dyn Progress,
    state: &mut State,
    r: &mut StepReport,
) -> Result<()> {
    match s {
        Step::Backup(p) => backup_step(repo, cfg, p, opts, progress, r),
        Step::Forget(p) => forget_step(repo, cfg, p, state, r),
        Step::Prune => prune_step(repo, cfg, progress, r),
        Step::Check => check_step(repo, cfg, progress, state, r),
        Step::Copy => copy_step(repo, cfg, progress, r),
    }
}

/// One project's backup: a snapshot with unreadable entries fails the step (it is kept).
fn backup_step(
    repo: &Repository,
    cfg: &Config,
    p: &Project,
    opts: &NightlyOptions,
    progress: &dyn Progress,
    r: &mut StepReport,
) -> Result<()> {
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
    Ok(())
}

/// One project's retention (its tag as filter); unreadable manifests fail it and count as damage.
fn forget_step(
    repo: &Repository,
    cfg: &Config,
    p: &Project,
    state: &mut State,
    r: &mut StepReport,
) -> Result<()> {
    let _lock = repo.lock(LockKind::Shared, "forget")?;
    let (all, damaged) = repo.snapshots_and_damaged()?;
    let policy = cfg.policy();
    let filter = Selector {
        tags: vec![p.tag()],
        ..Selector::default()
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
    Ok(())
}

/// Prune the repository (exclusive lock); unreadable pack trailers fail the step.
fn prune_step(
    repo: &Repository,
    cfg: &Config,
    progress: &dyn Progress,
    r: &mut StepReport,
) -> Result<()> {
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
    Ok(())
}

/// Check the repository with the configured data subset; problems fail it and count as damage.
fn check_step(
    repo: &Repository,
    cfg: &Config,
    progress: &dyn Progress,
    state: &mut State,
    r: &mut StepReport,
) -> Result<()> {
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
    Ok(())
}

/// Copy every snapshot the `[offsite]` repository lacks.
fn copy_step(
    repo: &Repository,
    cfg: &Config,
    progress: &dyn Progress,
    r: &mut StepReport,
) -> Result<()> {
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
    Ok(())
}

/// Figures of a finished step for its log line.
pub(super) fn step_fields(r: &StepReport) -> Vec<(&'static str, String)> {
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
