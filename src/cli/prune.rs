use snap::ops::prune::{self, PruneOptions, PrunePlan, RepackLimit};
use snap::repo::lock::LockKind;

use super::{Global, exit, output};

#[derive(clap::Args)]
pub struct Args {
    /// Show what would be deleted, condemned and repacked; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Most live data to copy while repacking mostly-garbage packs: a percentage of all pack
    /// bytes (`10%`) or a size (`500MiB`).
    #[arg(long, default_value = "10%")]
    max_repack: RepackLimit,
    /// How long condemned packs stay readable before a later prune deletes them (e.g. `12h`,
    /// `2d`, `0s`). Protects backups that were running, or whose lock went stale, while
    /// an earlier prune ran.
    #[arg(long, default_value = "12h", value_parser = parse_grace)]
    grace: chrono::TimeDelta,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_grace(s: &str) -> Result<chrono::TimeDelta, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))?;
    chrono::TimeDelta::from_std(d).map_err(|e| e.to_string())
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    let opts = PruneOptions {
        dry_run: a.dry_run,
        max_repack: a.max_repack,
        grace: a.grace,
        now: chrono::Utc::now(),
        compression: None,
    };
    prune_with(g, &opts, a.json)
}

/// Run prune after `forget --prune` (same dry-run / JSON choice). Returns the exit code.
pub fn after_forget(g: &Global, dry_run: bool, json: bool) -> anyhow::Result<u8> {
    prune_with(
        g,
        &PruneOptions {
            dry_run,
            ..Default::default()
        },
        json,
    )
}

fn prune_with(g: &Global, opts: &PruneOptions, json: bool) -> anyhow::Result<u8> {
    let (repo, lock) = g.open_locked(LockKind::Exclusive, "prune")?;
    let mut opts = opts.clone();
    if lock.used_reserve() {
        // Repacking writes new packs: there is no room for them.
        opts.max_repack = RepackLimit::Bytes(0);
        say!("note: no repacking while the disk is full; prune only condemns and deletes");
    }
    let opts = &opts;
    let plan = prune::plan(&repo, opts)?;
    if opts.dry_run {
        if json {
            output::json(&serde_json::json!({ "dry_run": true, "plan": plan }))?;
        } else {
            print_plan(&plan, opts);
            tell!("dry run: nothing was changed");
        }
        return Ok(exit::OK);
    }
    let report = prune::execute(&repo, &plan, opts, &super::progress::Bars::new(g.quiet))?;
    if json {
        output::json(&serde_json::json!({ "dry_run": false, "plan": plan, "report": report }))?;
    } else if !g.quiet {
        print_plan(&plan, opts);
        tell!(
            "done: deleted {} packs ({}), resurrected {}, condemned {}, repacked {} chunks ({}) into {} new packs",
            report.packs_deleted,
            output::bytes(report.bytes_deleted),
            report.packs_resurrected,
            report.packs_condemned,
            report.chunks_repacked,
            output::bytes(report.bytes_repacked),
            report.packs_written
        );
        if report.temporaries_removed > 0 {
            tell!(
                "removed {} temporary files left by interrupted writes",
                report.temporaries_removed
            );
        }
    }
    for u in &plan.unreadable {
        say!("warning: pack trailer unreadable, pack left alone: {u} (run `snap check`)");
    }
    Ok(exit::OK)
}

fn print_plan(p: &PrunePlan, opts: &PruneOptions) {
    let sum = |v: &[prune::PackRef]| output::bytes(v.iter().map(|x| x.bytes).sum());
    tell!(
        "{} snapshots reference {} chunks; {} packs hold {}",
        p.snapshots,
        p.referenced_chunks,
        p.packs_total,
        output::bytes(p.pack_bytes_total)
    );
    tell!(
        "  delete now:   {} packs ({}) condemned more than {} ago",
        p.delete_now.len(),
        sum(&p.delete_now),
        humantime_delta(opts.grace)
    );
    if !p.resurrect.is_empty() {
        tell!(
            "  resurrect:    {} condemned packs ({}) that snapshots need again",
            p.resurrect.len(),
            sum(&p.resurrect)
        );
    }
    tell!(
        "  condemn:      {} unreferenced packs ({})",
        p.condemn.len(),
        sum(&p.condemn)
    );
    tell!(
        "  repack:       {} mostly-garbage packs: copy {} of live data, free {}",
        p.repack.len(),
        output::bytes(p.repack.iter().map(|r| r.live_bytes).sum()),
        output::bytes(p.repack.iter().map(|r| r.bytes - r.live_bytes).sum())
    );
    for w in &p.waiting {
        tell!(
            "  waiting:      {} ({} packs) can be deleted after {}",
            w.plan,
            w.packs,
            w.deletable_after
                .with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
        );
    }
    tell!(
        "  frees {} now; {} more by a prune after the grace period",
        output::bytes(p.bytes_freed_now),
        output::bytes(p.bytes_freed_later)
    );
}

fn humantime_delta(d: chrono::TimeDelta) -> String {
    d.to_std()
        .map(|s| humantime::format_duration(s).to_string())
        .unwrap_or_else(|_| d.to_string())
}
