use serde::Serialize;
use snap::ops::forget::{
    self, Decision, GroupBy, GroupKey, GroupPlan, Policy, Reason, RetentionDuration,
};
use snap::repo::lock::LockKind;

use super::{Global, exit, output};

const AFTER_HELP: &str = "\
Groups: the policy is applied to each group of snapshots separately; by default a group is
one host and set of paths, so the database dumps and the file backups in one repository never
evict each other. Only snapshots matching --host, --tag, --path and --kind are considered;
the others are left alone.

A snapshot is kept if ANY rule keeps it, and the newest snapshot of each group is always kept.
Hours, days, ISO weeks (Monday to Sunday), months and years are those of the local time zone.
Snapshots with equal times are ordered by id, so results are reproducible.

Without any --keep-* option the policy is --keep-within 21d.

forget only removes snapshot manifests; the data they alone referenced stays in the
repository until `snap prune` (or --prune) deletes it.

Examples:
  snap forget --dry-run                                   # what the default 21 days would remove
  snap forget --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-tag keep=forever --prune
  snap forget --host db-1 --keep-last 30";

#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent hours that have snapshots.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent days that have snapshots.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent ISO weeks that have snapshots.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent months that have snapshots.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent years that have snapshots.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    keep_yearly: Option<u32>,
    /// Keep snapshots less than DURATION older than the NEWEST snapshot of their group (not
    /// than now): if backups stop, the last ones are never removed. A snapshot exactly
    /// DURATION older than the newest is removed. DURATION is a number and a unit, h (hours),
    /// d (days of 24 h), w (weeks), m (calendar months) or y (calendar years), combinable:
    /// 36h, 21d, 2w3d, 1y6m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    keep_within: Option<RetentionDuration>,
    /// Always keep snapshots carrying this tag (`key=value`; repeatable: any of them).
    #[arg(long = "keep-tag", value_name = "TAG", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    keep_tags: Vec<String>,
    #[command(flatten)]
    select: super::select::SnapshotSelect,
    /// Group snapshots by `host,paths`, `host`, `paths`, or `none` (one group).
    #[arg(long, value_name = "GROUPING", default_value = "host,paths", value_parser = parse_group_by)]
    group_by: GroupBy,
    /// Print what would be removed; change nothing.
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Run `snap prune` afterwards (with --dry-run: show what it would do).
    #[arg(long)]
    prune: bool,
    /// Print the result as JSON: an array of groups.
    #[arg(long)]
    json: bool,
}

fn parse_duration(s: &str) -> Result<RetentionDuration, String> {
    s.parse().map_err(|e: snap::Error| {
        e.to_string()
            .trim_start_matches("invalid argument: ")
            .to_string()
    })
}

fn parse_group_by(s: &str) -> Result<GroupBy, String> {
    s.parse().map_err(|e: snap::Error| {
        e.to_string()
            .trim_start_matches("invalid argument: ")
            .to_string()
    })
}

impl Args {
    fn policy(&self) -> Policy {
        Policy {
            last: self.keep_last,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
            yearly: self.keep_yearly,
            within: self.keep_within,
            tags: self.keep_tags.clone(),
        }
    }
}

#[derive(Serialize)]
struct SnapshotJson<'a> {
    id: String,
    short_id: String,
    time: String,
    host: &'a str,
    paths: &'a [String],
    tags: &'a [String],
    reasons: &'a [Reason],
}

#[derive(Serialize)]
struct GroupJson<'a> {
    host: Option<&'a str>,
    paths: Option<&'a [String]>,
    keep: Vec<SnapshotJson<'a>>,
    remove: Vec<SnapshotJson<'a>>,
}

fn snapshot_json<'a>(d: &'a Decision<'a>) -> SnapshotJson<'a> {
    let (s, m) = (d.snapshot, &d.snapshot.manifest);
    SnapshotJson {
        id: s.id.to_hex(),
        short_id: s.id.short(),
        time: m.time.to_rfc3339(),
        host: &m.host,
        paths: &m.paths,
        tags: &m.tags,
        reasons: &d.reasons,
    }
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    let (code, prune_ok) = forget(g, a)?;
    if !a.prune {
        return Ok(code);
    }
    if !prune_ok {
        say!("error: not running prune, because forget did not complete cleanly (see above)");
        return Ok(exit::FAILED);
    }
    // forget's shared lock is released by now: prune takes an exclusive one.
    let prune_code = super::prune::after_forget(g, a.dry_run, a.json)?;
    Ok(if code != exit::OK { code } else { prune_code })
}

/// Plan and (unless --dry-run) remove. Returns the exit code and whether prune may follow.
fn forget(g: &Global, a: &Args) -> anyhow::Result<(u8, bool)> {
    let (repo, _lock) = g.open_locked(LockKind::Shared, "forget")?;
    let (all, damaged) = repo.snapshots_and_damaged()?;
    if !g.quiet {
        for (id, e) in &damaged {
            say!(
                "warning: snapshot {} cannot be read, so it is neither kept nor removed: {e} (run `snap check`)",
                id.short()
            );
        }
    }
    let policy = a.policy();
    let defaulted = policy.is_empty();
    let policy = policy.effective();
    let filter = a.select.selector();
    let plans = forget::plan(&all, &filter, a.group_by, &policy, &chrono::Local);

    let policy_line = if defaulted {
        format!("policy: {policy} (the default retention, as no --keep-* option was given)")
    } else {
        format!("policy: {policy}")
    };
    let human = !a.json && (a.dry_run || !g.quiet);
    if human {
        tell!("{policy_line}");
    } else if a.json && !g.quiet && defaulted {
        say!("note: {policy_line}");
    }

    let outcome = if a.dry_run {
        None
    } else {
        Some(forget::execute(&repo, &plans))
    };
    let failed: Vec<_> = outcome
        .as_ref()
        .map(|o| o.failed.iter().map(|(id, _)| *id).collect())
        .unwrap_or_default();

    if a.json {
        let groups: Vec<GroupJson> = plans
            .iter()
            .map(|p| GroupJson {
                host: p.key.host.as_deref(),
                paths: p.key.paths.as_deref(),
                keep: p.kept().map(snapshot_json).collect(),
                remove: p.removed().map(snapshot_json).collect(),
            })
            .collect();
        output::json(&groups)?;
    } else if human {
        print_plans(&plans, a.dry_run, a.prune, &failed);
    }
    if let Some(o) = &outcome {
        for (id, e) in &o.failed {
            say!("error: could not remove snapshot {}: {e}", id.short());
        }
    }
    let clean = damaged.is_empty() && failed.is_empty();
    Ok((if clean { exit::OK } else { exit::FAILED }, clean))
}

fn group_title(k: &GroupKey) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &k.host {
        parts.push(format!("host {}", output::path(h)));
    }
    if let Some(p) = &k.paths {
        let shown: Vec<_> = p.iter().map(|x| output::path(x)).collect();
        parts.push(format!("paths {}", shown.join(" ")));
    }
    if parts.is_empty() {
        "all snapshots".to_string()
    } else {
        parts.join(", ")
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "snapshot" } else { "snapshots" }
}

fn print_plans(plans: &[GroupPlan<'_>], dry_run: bool, prune_next: bool, failed: &[snap::Id]) {
    if plans.is_empty() {
        tell!("no snapshots to consider");
    }
    let (mut kept, mut removed) = (0, 0);
    for p in plans {
        // Columns the group does not share are shown per snapshot.
        let show_host = p.key.host.is_none();
        let show_paths = p.key.paths.is_none();
        let row = |d: &Decision, last: String| {
            let m = &d.snapshot.manifest;
            let mut line = format!(
                "  {:<8}  {:<19}",
                d.snapshot.id.short(),
                m.time
                    .with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
            );
            if show_host {
                line += &format!("  {:<12}", output::path(&m.host));
            }
            if show_paths {
                let shown: Vec<_> = m.paths.iter().map(|x| output::path(x)).collect();
                line += &format!("  {:<20}", shown.join(" "));
            }
            line += &format!("  {last}");
            tell!("{}", line.trim_end());
        };
        let header = |last: &str| {
            let mut line = format!("  {:<8}  {:<19}", "id", "time");
            if show_host {
                line += &format!("  {:<12}", "host");
            }
            if show_paths {
                line += &format!("  {:<20}", "paths");
            }
            line += &format!("  {last}");
            tell!("{}", line.trim_end());
        };
        let keep: Vec<_> = p.kept().collect();
        let remove: Vec<_> = p.removed().collect();
        kept += keep.len();
        removed += remove
            .iter()
            .filter(|d| !failed.contains(&d.snapshot.id))
            .count();
        tell!();
        tell!(
            "{}: {} {}",
            group_title(&p.key),
            p.decisions.len(),
            plural(p.decisions.len())
        );
        tell!("keep {} {}:", keep.len(), plural(keep.len()));
        header("reasons");
        for d in &keep {
            let reasons: Vec<String> = d.reasons.iter().map(|r| r.to_string()).collect();
            row(d, reasons.join(", "));
        }
        if !remove.is_empty() {
            tell!(
                "{} {} {}:",
                if dry_run { "would remove" } else { "remove" },
                remove.len(),
                plural(remove.len())
            );
            header("tags");
            for d in &remove {
                let mut tags = d.snapshot.manifest.tags.join(",");
                if failed.contains(&d.snapshot.id) {
                    tags = format!("{tags}  (NOT removed: see the error below)")
                        .trim_start()
                        .to_string();
                }
                row(d, tags);
            }
        }
    }
    tell!();
    let groups = format!(
        "{} {}",
        plans.len(),
        if plans.len() == 1 { "group" } else { "groups" }
    );
    if dry_run {
        tell!(
            "dry run: would remove {removed} {} and keep {kept} ({groups}); nothing was changed",
            plural(removed)
        );
    } else {
        tell!(
            "removed {removed} {}, kept {kept} ({groups})",
            plural(removed)
        );
        if removed > 0 && !prune_next {
            tell!("the data they alone referenced is freed by `snap prune`");
        }
    }
}
