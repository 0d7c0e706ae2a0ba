//! `snap restore <id> --db --verify`: the restore drill (`snap::ops::dbrestore::drill`). The
//! snapshot is restored into a throwaway local PostgreSQL, prepared like a fresh Supabase
//! project, verified, and the cluster removed; this prints the PASS/FAIL report (`--json` for
//! all of it).

use snap::ops::dbrestore::{self, DrillReport};
use snap::ops::dbsnap::DbSnapshot;
use snap::repo::Repository;
use snap::snapshot::Snapshot;

use super::backup_db::DbConnArgs;
use super::{Global, exit, output};

pub fn run(
    g: &Global,
    repo: &Repository,
    snap: &Snapshot,
    conn: &DbConnArgs,
    database: Option<&str>,
    json_out: bool,
) -> anyhow::Result<u8> {
    let db = DbSnapshot::open(repo, snap, database)?;
    if db.inventory.server_version_num == 0 {
        anyhow::bail!(
            "snapshot {} (database {}): its inventory has no server_version_num; cannot choose a server for the drill",
            snap.id.short(),
            db.database
        );
    }
    let d = dbrestore::drill(
        snap,
        &db,
        conn.pg_bin.as_deref(),
        &super::progress::Bars::new(g.quiet),
    )?;
    if json_out {
        // Through a Value, so the keys come out as before (sorted).
        output::json(&serde_json::to_value(&d)?)?;
    } else {
        print_text(&d, snap, &db, g.quiet);
    }
    Ok(if d.pass { exit::OK } else { exit::FAILED })
}

fn print_text(d: &DrillReport, snap: &Snapshot, db: &DbSnapshot, quiet: bool) {
    let (pass, total) = (d.pass, d.seconds);
    if !quiet {
        tell!(
            "restore drill: snapshot {} (database {}, PostgreSQL {})",
            snap.id.short(),
            db.database,
            db.inventory.server_version.as_deref().unwrap_or("?")
        );
        if let Some(s) = &d.server {
            tell!("  throwaway server: {s}");
        }
        for p in &d.prepared {
            tell!("  prepared: {p}");
        }
        for m in &d.managed {
            tell!(
                "  applied {} leniently ({} statement(s) failed, e.g. references to objects the restore creates)",
                m.part,
                m.errors
            );
        }
        if d.steps.iter().any(|s| s.step == "requirements" && s.ok) {
            if d.requirements.is_empty() {
                tell!("requirements: the target has everything the snapshot needs");
            } else {
                tell!("requirements:");
                for r in &d.requirements {
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
        }
        if let Some(r) = &d.restore {
            tell!(
                "restore: {} ({}) in one transaction",
                r.parts.join(" → "),
                output::bytes(r.bytes)
            );
            for (part, line, stmt) in &r.skipped {
                tell!("  skipped on a managed target ({part} line {line}): {stmt}");
            }
        }
        for m in &d.managed_after {
            tell!(
                "  re-applied {} leniently ({} statement(s) failed, e.g. objects that already exist)",
                m.part,
                m.errors
            );
        }
        if !d.verification.is_empty() {
            tell!("verification:");
            for c in &d.verification {
                tell!(
                    "  {} {}: {}",
                    if c.ok { "ok  " } else { "FAIL" },
                    c.what,
                    c.detail
                );
            }
        }
        tell!("steps:");
        for s in &d.steps {
            tell!(
                "  {:<28} {:>7.2} s{}",
                s.step,
                s.seconds,
                if s.ok { "" } else { "  FAILED" }
            );
        }
    }
    for p in &d.problems {
        say!("problem: {p}");
    }
    if let Some(e) = &d.error {
        say!("error: {e}");
    }
    if pass {
        tell!(
            "PASS: snapshot {} restores and verifies ({total:.1} s); the throwaway cluster was removed",
            snap.id.short()
        );
    } else {
        tell!(
            "FAIL: snapshot {} did not pass the restore drill ({total:.1} s); the throwaway cluster was removed",
            snap.id.short()
        );
    }
}
