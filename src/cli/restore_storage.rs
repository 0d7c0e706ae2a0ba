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
    let busy = plan.non_empty();
    if !busy.is_empty() && !yes {
        let what = format!(
            "bucket(s) {} at {} already hold objects; existing objects are {}",
            busy.join(", "),
            opts.storage.api_base,
            if overwrite {
                "REPLACED (--overwrite)"
            } else {
                "kept (skipped)"
            }
        );
        if !std::io::stdin().is_terminal() {
            usage!("{what}: pass --yes to restore into them without a terminal");
        }
        if !output::confirm(&format!(
            "{what}. Restore {} objects ({}) from snapshot {}?",
            plan.objects(),
            output::bytes(plan.bytes()),
            snap.id.short()
        ))? {
            say!("not restored");
            return Ok(exit::FAILED);
        }
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
    let secs = started.elapsed().as_secs_f64();
    if !g.quiet {
        tell!(
            "restored snapshot {} to {}: {} buckets ({} created), {} objects uploaded ({}, {:.1} MB/s), {} skipped (already there{}), {} failed",
            snap.id.short(),
            opts.storage.api_base,
            s.buckets,
            s.buckets_created.len(),
            s.uploaded,
            output::bytes(s.bytes_uploaded),
            s.bytes_uploaded as f64 / 1e6 / secs.max(0.001),
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
        say!("error: {} objects were not restored:", s.failed.len());
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
