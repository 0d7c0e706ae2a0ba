//! `snap prune`: free space no snapshot needs, in two phases (repo-format.md §Prune).
//!
//! Phase 1 (every run): packs holding no referenced chunk are *condemned*, and packs that are
//! mostly garbage are *repacked* (their live chunks copied into new packs, durably, then the
//! old packs condemned). Condemned packs are listed in a new deletion plan `prune/<id>`; they
//! stay readable, and writers stop deduplicating against them.
//! Phase 2 (every run, for plans older than the grace period): each condemned pack is deleted
//! unless a snapshot written since needs one of its chunks (then it is resurrected); then the
//! plan is deleted.
//!
//! [`plan`] decides and changes nothing; [`execute`] carries a plan out.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::blob;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::Index;
use crate::pack::{self, PackEntry};
use crate::progress::Progress;
use crate::repo::deletion::{self, StoredPlan};
use crate::repo::{Repository, Saver};

pub use crate::spec::{DEFAULT_GRACE, RepackLimit};

/// A pack is repacked when at least this fraction of it is garbage.
pub const REPACK_GARBAGE_FRACTION: f64 = 0.5;
#[derive(Debug, Clone)]
pub struct PruneOptions {
    pub dry_run: bool,
    pub max_repack: RepackLimit,
    pub grace: TimeDelta,
    pub now: DateTime<Utc>,
    pub compression: Option<i32>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            dry_run: false,
            max_repack: RepackLimit::Percent(10.0),
            grace: DEFAULT_GRACE,
            now: Utc::now(),
            compression: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackRef {
    pub pack: Id,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepackItem {
    pub pack: Id,
    pub bytes: u64,
    /// Bytes of live (sealed) chunks copied into new packs.
    pub live_bytes: u64,
    pub live_chunks: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitingPlan {
    pub plan: String,
    pub packs: usize,
    pub created: DateTime<Utc>,
    pub deletable_after: DateTime<Utc>,
}

/// What a prune run will do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PrunePlan {
    pub snapshots: usize,
    /// The snapshots whose chunks this plan keeps (phase 2 re-checks them before deleting).
    #[serde(skip)]
    pub snapshot_ids: Vec<Id>,
    pub referenced_chunks: usize,
    pub packs_total: usize,
    pub pack_bytes_total: u64,
    /// Phase 2: condemned packs deleted now (their plans are older than the grace period).
    pub delete_now: Vec<PackRef>,
    /// Phase 2: condemned packs kept because a snapshot needs them again.
    pub resurrect: Vec<PackRef>,
    /// Plans consumed by phase 2 (deleted after their packs).
    pub plans_done: Vec<String>,
    /// Plans still inside the grace period.
    pub waiting: Vec<WaitingPlan>,
    /// Phase 1: packs with no referenced chunk, condemned now.
    pub condemn: Vec<PackRef>,
    /// Phase 1: mostly-garbage packs whose live chunks are copied, then condemned.
    pub repack: Vec<RepackItem>,
    /// Packs whose trailer could not be read: left alone (see `snap check`).
    pub unreadable: Vec<String>,
    pub bytes_freed_now: u64,
    /// Bytes a prune after the grace period will free (condemned now, minus what repack copies).
    pub bytes_freed_later: u64,
}

/// The referenced chunk ids of every snapshot. Refuses when any snapshot cannot be read: its
/// chunks would look unreferenced.
fn referenced(repo: &Repository) -> Result<(Vec<Id>, HashSet<Id>)> {
    let (snaps, damaged) = repo.snapshots_and_damaged()?;
    if let Some((id, e)) = damaged.first() {
        return Err(Error::Invalid(format!(
            "snapshot {} cannot be read ({e}); prune refuses to run because its data would look unreferenced. Run `snap check`",
            id.short()
        )));
    }
    let mut refs = HashSet::new();
    for s in &snaps {
        refs.extend(s.manifest.tree.iter().map(|c| *c.id()));
        let tree = repo.load_tree(&s.manifest).map_err(|e| {
            Error::Invalid(format!("the tree of snapshot {} cannot be read ({e}); prune refuses to run. Run `snap check`", s.id.short()))
        })?;
        for e in tree.entries {
            refs.extend(e.chunks.iter().map(|c| *c.id()));
        }
    }
    Ok((snaps.iter().map(|s| s.id).collect(), refs))
}

/// Whether entry `e` of `pack` must be kept: a snapshot references the chunk and this is its
/// indexed copy, or its indexed copy is in a condemned pack (or missing).
fn needed(
    e: &PackEntry,
    pack: &Id,
    refs: &HashSet<Id>,
    index: &Index,
    condemned: &HashSet<Id>,
) -> Result<bool> {
    if !refs.contains(&e.id) {
        return Ok(false);
    }
    Ok(match index.lookup(&e.id)? {
        Some(loc) => (loc.pack == *pack && loc.offset == e.offset) || condemned.contains(&loc.pack),
        None => true,
    })
}

/// Decide what to do. Changes nothing.
pub fn plan(repo: &Repository, opts: &PruneOptions) -> Result<PrunePlan> {
    let (snapshots, refs) = referenced(repo)?;
    let index = repo.index()?;
    let plans = deletion::read_plans(&**repo.backend(), repo.key())?;
    let condemned: HashSet<Id> = plans
        .iter()
        .flat_map(|p| p.plan.packs.iter().copied())
        .collect();
    let listed = repo.backend().list("data/")?;
    let sizes: HashMap<Id, u64> = listed
        .iter()
        .filter_map(|o| Some((pack::pack_id_from_name(&o.name)?, o.size)))
        .collect();
    let mut out = PrunePlan {
        snapshots: snapshots.len(),
        snapshot_ids: snapshots,
        referenced_chunks: refs.len(),
        packs_total: sizes.len(),
        pack_bytes_total: sizes.values().sum(),
        ..Default::default()
    };
    let packs = Packs {
        repo,
        refs,
        index,
        condemned,
        sizes,
    };

    // Phase 2: plans past the grace period.
    for sp in &plans {
        packs.due_plan(sp, opts, &mut out)?;
    }
    out.bytes_freed_now = out.delete_now.iter().map(|p| p.bytes).sum();

    // Phase 1: live packs.
    let candidates = packs.live_packs(&mut out)?;
    choose_repacks(candidates, opts, &mut out);
    out.bytes_freed_later = out.condemn.iter().map(|p| p.bytes).sum::<u64>()
        + out
            .repack
            .iter()
            .map(|r| r.bytes - r.live_bytes)
            .sum::<u64>();
    Ok(out)
}

/// What [`plan`] weighs each pack against.
struct Packs<'a> {
    repo: &'a Repository,
    /// The chunks the snapshots reference.
    refs: HashSet<Id>,
    index: &'a Index,
    /// The packs the deletion plans condemn.
    condemned: HashSet<Id>,
    /// Every listed pack and its size.
    sizes: HashMap<Id, u64>,
}

impl Packs<'_> {
    /// The trailer of pack `p` (`bytes` long).
    fn trailer(&self, p: &Id, bytes: u64) -> Result<Vec<PackEntry>> {
        pack::read_trailer(
            &**self.repo.backend(),
            self.repo.key(),
            &pack::pack_name(p),
            bytes,
        )
    }

    /// Phase 2 for one deletion plan: wait out its grace period, or sort its packs into those
    /// deleted now and those resurrected.
    fn due_plan(&self, sp: &StoredPlan, opts: &PruneOptions, out: &mut PrunePlan) -> Result<()> {
        let due = sp.plan.created + opts.grace;
        if due > opts.now {
            out.waiting.push(WaitingPlan {
                plan: sp.name.clone(),
                packs: sp.plan.packs.len(),
                created: sp.plan.created,
                deletable_after: due,
            });
            return Ok(());
        }
        for p in &sp.plan.packs {
            let Some(&bytes) = self.sizes.get(p) else {
                continue;
            }; // already gone
            let entries = match self.trailer(p, bytes) {
                Ok(e) => e,
                Err(_) => {
                    // Unreadable and condemned: nothing can be read from it anyway.
                    out.delete_now.push(PackRef { pack: *p, bytes });
                    continue;
                }
            };
            let mut keep = false;
            for e in &entries {
                if needed(e, p, &self.refs, self.index, &self.condemned)? {
                    keep = true;
                    break;
                }
            }
            let r = PackRef { pack: *p, bytes };
            if keep {
                out.resurrect.push(r)
            } else {
                out.delete_now.push(r)
            }
        }
        out.plans_done.push(sp.name.clone());
        Ok(())
    }

    /// Phase 1: condemn the packs no snapshot needs; returns the mostly-garbage packs worth
    /// repacking.
    fn live_packs(&self, out: &mut PrunePlan) -> Result<Vec<RepackItem>> {
        let mut candidates = Vec::new();
        let mut names: Vec<_> = self
            .sizes
            .iter()
            .filter(|(p, _)| !self.condemned.contains(p))
            .collect();
        names.sort();
        for (p, &bytes) in names {
            let entries = match self.trailer(p, bytes) {
                Ok(e) => e,
                Err(e) => {
                    out.unreadable.push(format!("{}: {e}", pack::pack_name(p)));
                    continue;
                }
            };
            let (mut live_bytes, mut live_chunks) = (0u64, 0u64);
            for e in &entries {
                if needed(e, p, &self.refs, self.index, &self.condemned)? {
                    live_bytes += e.length as u64;
                    live_chunks += 1;
                }
            }
            if live_chunks == 0 {
                out.condemn.push(PackRef { pack: *p, bytes });
            } else if (bytes - live_bytes) as f64 >= REPACK_GARBAGE_FRACTION * bytes as f64 {
                candidates.push(RepackItem {
                    pack: *p,
                    bytes,
                    live_bytes,
                    live_chunks,
                });
            }
        }
        Ok(candidates)
    }
}

/// Repack the `candidates` with the most garbage first, within the copy budget.
fn choose_repacks(mut candidates: Vec<RepackItem>, opts: &PruneOptions, out: &mut PrunePlan) {
    // Most garbage first, within the copy budget.
    candidates.sort_by(|a, b| {
        (b.bytes - b.live_bytes)
            .cmp(&(a.bytes - a.live_bytes))
            .then(a.pack.cmp(&b.pack))
    });
    let budget = match opts.max_repack {
        RepackLimit::Percent(pct) => (out.pack_bytes_total as f64 * pct / 100.0) as u64,
        RepackLimit::Bytes(b) => b,
    };
    let mut spent = 0;
    for c in candidates {
        if spent + c.live_bytes > budget {
            continue;
        }
        spent += c.live_bytes;
        out.repack.push(c);
    }
}

/// What [`execute`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    pub packs_deleted: usize,
    pub bytes_deleted: u64,
    pub packs_resurrected: usize,
    pub plans_removed: usize,
    pub packs_condemned: usize,
    /// The deletion plan written by this run, if any.
    pub new_plan: Option<String>,
    pub chunks_repacked: u64,
    pub bytes_repacked: u64,
    pub packs_written: u64,
    /// Temporary files of interrupted writes removed (older than [`TEMPORARY_MIN_AGE`]).
    pub temporaries_removed: usize,
    /// A snapshot was written after the plan was made (a writer whose lock was removed or
    /// stale): phase 2 deleted nothing, its plans wait for the next prune.
    pub deletions_postponed: bool,
}

/// A temporary file this old belongs to no write in progress (a write takes seconds; a
/// writer suspended longer fails its put and writes no manifest, rule W3).
pub const TEMPORARY_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Remove the temporary files interrupted writes left; returns how many.
fn remove_temporaries(repo: &Repository) -> Result<usize> {
    let mut n = 0;
    for t in repo.backend().leftover_temporaries(TEMPORARY_MIN_AGE)? {
        if repo.backend().remove_temporary(&t.name).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// Carry out `plan` (made by [`plan`] under the same exclusive lock).
/// Order: repack (new packs durable and indexed) → write the new deletion plan → delete the
/// due packs → forget them in the index → delete the consumed plans. A crash at any point leaves
/// every snapshot restorable; the next run finishes the work.
pub fn execute(
    repo: &Repository,
    plan: &PrunePlan,
    opts: &PruneOptions,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    let mut report = PruneReport {
        temporaries_removed: remove_temporaries(repo)?,
        ..Default::default()
    };
    let level = opts.compression.unwrap_or(repo.config().compression);
    progress.start(
        "prune",
        Some(plan.repack.iter().map(|r| r.live_bytes).sum::<u64>() + plan.bytes_freed_now),
    );

    // Phase 1a: copy live chunks out of the packs to repack.
    if !plan.repack.is_empty() {
        repack(repo, plan, level, progress, &mut report)?;
    }

    // Phase 1b: condemn.
    condemn(repo, plan, opts, &mut report)?;

    // Phase 2: delete due packs, then their plans — unless a snapshot appeared since the plan
    // was made: its chunks were not counted, so nothing is deleted this time (rule P1,
    // repo-format.md §9.2).
    let planned: HashSet<Id> = plan.snapshot_ids.iter().copied().collect();
    if !plan.delete_now.is_empty() && repo.snapshot_ids()?.iter().any(|id| !planned.contains(id)) {
        report.deletions_postponed = true;
        progress.warn("a snapshot was written while prune ran (a backup whose lock was removed or stale): no pack was deleted; the next prune deletes what is still unreferenced");
        progress.finish();
        return Ok(report);
    }
    delete_due(repo, plan, progress, &mut report)?;
    progress.finish();
    Ok(report)
}

/// Phase 1a: copy the live chunks of the packs `plan` repacks into new packs (durable and
/// indexed when this returns).
fn repack(
    repo: &Repository,
    plan: &PrunePlan,
    level: i32,
    progress: &dyn Progress,
    report: &mut PruneReport,
) -> Result<()> {
    let (_, refs) = referenced(repo)?;
    let index = repo.index()?;
    let old_condemned = repo.condemned_packs()?;
    let avoid: HashSet<Id> = plan
        .repack
        .iter()
        .map(|r| r.pack)
        .chain(plan.condemn.iter().map(|p| p.pack))
        .collect();
    let saver = Saver::avoiding(repo, level, avoid)?;
    for r in &plan.repack {
        let name = pack::pack_name(&r.pack);
        progress.item(&name);
        let bytes = repo.backend().get(&name)?;
        let entries = pack::parse_pack(repo.key(), &bytes, &name)?;
        for e in &entries {
            if !needed(e, &r.pack, &refs, index, &old_condemned)? {
                continue;
            }
            let sealed = &bytes[e.offset as usize..(e.offset + e.length) as usize];
            let plain = blob::decode(repo.key(), e.kind, &e.id, sealed).map_err(|err| {
                Error::corrupt(format!("pack {name}"), format!("while repacking: {err}"))
            })?;
            saver.save(e.kind, plain)?;
            report.chunks_repacked += 1;
            report.bytes_repacked += e.length as u64;
            progress.bytes(e.length as u64);
        }
    }
    report.packs_written = saver.finish()?.packs;
    Ok(())
}

/// Phase 1b: write a deletion plan condemning the packs with no live chunk and those repacked.
fn condemn(
    repo: &Repository,
    plan: &PrunePlan,
    opts: &PruneOptions,
    report: &mut PruneReport,
) -> Result<()> {
    let condemn: Vec<Id> = plan
        .condemn
        .iter()
        .map(|p| p.pack)
        .chain(plan.repack.iter().map(|r| r.pack))
        .collect();
    if !condemn.is_empty() {
        report.packs_condemned = condemn.len();
        report.new_plan = Some(deletion::write_plan(
            &**repo.backend(),
            repo.key(),
            condemn,
            opts.now,
        )?);
    }
    Ok(())
}

/// Phase 2: delete the due packs, forget them in the index, then delete their plans.
fn delete_due(
    repo: &Repository,
    plan: &PrunePlan,
    progress: &dyn Progress,
    report: &mut PruneReport,
) -> Result<()> {
    let mut gone = HashSet::new();
    for p in &plan.delete_now {
        match repo.backend().delete(&pack::pack_name(&p.pack)) {
            Ok(()) => {
                report.packs_deleted += 1;
                report.bytes_deleted += p.bytes;
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        gone.insert(p.pack);
        progress.bytes(p.bytes);
    }
    repo.index()?.remove_packs(&gone)?;
    // Repositories made before the reserve existed get one once there is room (§1).
    crate::repo::reserve::ensure(&**repo.backend());
    report.packs_resurrected = plan.resurrect.len();
    for name in &plan.plans_done {
        match repo.backend().delete(name) {
            Ok(()) | Err(Error::NotFound { .. }) => report.plans_removed += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Plans as stored (for reporting).
pub fn plans(repo: &Repository) -> Result<Vec<StoredPlan>> {
    deletion::read_plans(&**repo.backend(), repo.key())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repack_limits_parse() {
        assert_eq!(
            "10%".parse::<RepackLimit>().unwrap(),
            RepackLimit::Percent(10.0)
        );
        assert_eq!(
            "500MiB".parse::<RepackLimit>().unwrap(),
            RepackLimit::Bytes(500 << 20)
        );
        assert_eq!(
            "2G".parse::<RepackLimit>().unwrap(),
            RepackLimit::Bytes(2 << 30)
        );
        assert_eq!(
            "4096".parse::<RepackLimit>().unwrap(),
            RepackLimit::Bytes(4096)
        );
        assert!("150%".parse::<RepackLimit>().is_err());
        assert!("lots".parse::<RepackLimit>().is_err());
    }
}
