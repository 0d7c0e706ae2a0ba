//! `snap restore <id> --storage`: buckets and objects of a snapshot back into a Storage API.

use std::io::IsTerminal;

use snap::ops::storage_restore::{self, StorageRestoreOptions};
use snap::repo::Repository;
use snap::snapshot::Snapshot;

use super::{Global, exit, output};

pub fn run(
    g: &Global,
    repo: &Repository,
    snap: &Snapshot,
    opts: &StorageRestoreOptions,
    yes: bool,
    json: bool,
) -> anyhow::Result<u8> {
    let overwrite = opts.overwrite;
    let plan = storage_restore::plan(repo, snap, opts)?;
    if !yes && !confirm_busy(snap, &plan, opts)? {
        say!("not restored");
        return Ok(exit::FAILED);
    }
    let started = std::time::Instant::now();
    let s = storage_restore::execute(
        repo,
        &plan,
        opts,
        &super::progress::Bars::new(g.quiet || json),
    )?;
    let code = if s.failed.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    };
    if json {
        output::json(&s)?;
        return Ok(code);
    }
    let ms = started.elapsed().as_millis() as u64;
    if !g.quiet {
        tell!(
            "restored snapshot {} to {}: {} ({} created), {} uploaded ({}, {}), {} skipped (already there{}), {} failed",
            snap.id.short(),
            opts.storage.api_base,
            output::count(s.buckets as u64, "bucket"),
            s.buckets_created.len(),
            output::count(s.uploaded as u64, "object"),
            output::bytes(s.bytes_uploaded),
            output::rate(s.bytes_uploaded, ms.max(1)),
            s.skipped,
            if overwrite {
                ""
            } else {
                "; --overwrite replaces them"
            },
            s.failed.len()
        );
    }
    if !g.quiet {
        for b in &s.buckets_updated {
            tell!("bucket {b}: given the snapshot's configuration (--apply-bucket-config)");
        }
    }
    for b in &s.buckets_kept_as_they_are {
        let hint = if opts.apply_bucket_config {
            "the Storage API did not take this; change it in the dashboard"
        } else {
            "it already existed and was kept as it is; pass --apply-bucket-config to give it the snapshot's configuration"
        };
        say!("warning: bucket {b}: {hint}");
    }
    if !s.failed.is_empty() {
        say!(
            "error: {} not restored:",
            output::count_irregular(s.failed.len() as u64, "object was", "objects were")
        );
        for f in &s.failed {
            say!(
                "  {}/{}: {}",
                output::path(&f.bucket),
                output::path(&f.name),
                f.reason
            );
        }
        say!(
            "fix what the server refused, then run the same restore again: objects already restored are skipped"
        );
    }
    Ok(code)
}

/// When buckets of the target already hold objects, ask whether to restore into them (an
/// error without a terminal). True: go on.
fn confirm_busy(
    snap: &Snapshot,
    plan: &storage_restore::StorageRestorePlan,
    opts: &StorageRestoreOptions,
) -> anyhow::Result<bool> {
    let busy = plan.non_empty();
    if busy.is_empty() {
        return Ok(true);
    }
    let what = format!(
        "bucket(s) {} at {} already hold objects; existing objects are {}",
        busy.join(", "),
        opts.storage.api_base,
        if opts.overwrite {
            "REPLACED (--overwrite)"
        } else {
            "kept (skipped)"
        }
    );
    if !std::io::stdin().is_terminal() {
        usage!("{what}: pass --yes to restore into them without a terminal");
    }
    Ok(output::confirm(&format!(
        "{what}. Restore {} ({}) from snapshot {}?",
        output::count(plan.objects() as u64, "object"),
        output::bytes(plan.bytes()),
        snap.id.short()
    ))?)
}
