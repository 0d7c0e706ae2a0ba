use anyhow::Context;
use snap::ops::copy::{self, CopyMode, CopyOptions, CopyReport};
use snap::repo::lock::LockKind;

use super::{Global, exit, output};

const AFTER_HELP: &str = "\
Copies snapshots from the repository given with --repo into the one given with --to, sending
only the chunks the destination lacks; snapshots it already holds are skipped, so running the
same copy again (e.g. nightly) is cheap. A destination made with `snap init --copy-key-from`
shares the master key, and packs move without re-encryption; otherwise content is re-chunked
for the destination's key. Each copied snapshot's manifest is written only after all its data
is stored: an interrupted copy leaves nothing half-copied, and running it again resumes.

Examples:
  snap copy --repo /backups/repo --to s3:https://s3.example.com/bucket/offsite --key-from-repo
  snap copy --to s3:… --to-password-file /etc/snap/offsite.pw --tag env=prod --since 7d
  snap copy --to s3:… --key-from-repo --dry-run";

#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
#[command(group(clap::ArgGroup::new("to_password").required(true).args(["key_from_repo", "to_password_file"])))]
pub struct Args {
    /// Destination repository (a directory or s3:…).
    #[arg(long, value_name = "REPO")]
    to: String,
    /// Open the destination with the same password as the source (repositories made with
    /// `snap init --copy-key-from` start with the same password).
    #[arg(long)]
    key_from_repo: bool,
    /// Read the destination's password from this file (first line).
    #[arg(long, value_name = "FILE", env = "SNAP_TO_PASSWORD_FILE")]
    to_password_file: Option<std::path::PathBuf>,
    /// Snapshots to copy (ids, unique prefixes, or `latest`); default: all matching the filters.
    snapshots: Vec<String>,
    /// Only snapshots with this tag (repeatable; all must match).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Only snapshots of this host.
    #[arg(long)]
    host: Option<String>,
    /// Only snapshots taken within this long (e.g. `7d`, `12h`).
    #[arg(long, value_parser = parse_since)]
    since: Option<std::time::Duration>,
    /// Show what would be copied, and how many bytes sent; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Packs fetched and uploaded at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    parallel: u32,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_since(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    let mut dst_global = g.clone();
    dst_global.repo = Some(a.to.clone());
    if let Some(f) = &a.to_password_file {
        dst_global.password_file = Some(f.clone());
        dst_global.password_command = None;
    }
    let since = match a.since {
        Some(d) => Some(
            chrono::Utc::now() - chrono::TimeDelta::from_std(d).context("--since is too long")?,
        ),
        None => None,
    };
    let (src, _src_lock) = g.open_locked(LockKind::Shared, "copy")?;
    let (dst, _dst_lock) = dst_global
        .open_locked(LockKind::Shared, "copy")
        .with_context(|| format!("opening the destination {}", a.to))?;
    let opts = CopyOptions {
        ids: a.snapshots.clone(),
        tags: a.tags.clone(),
        host: a.host.clone(),
        since,
        dry_run: a.dry_run,
        parallel: a.parallel as usize,
    };
    let report = copy::copy(
        &src,
        &dst,
        &opts,
        &super::progress::Bars::new(g.quiet || a.json),
    )?;
    if a.json {
        output::json(&report)?;
    } else {
        print_report(&report, &dst.backend().location());
    }
    Ok(exit::OK)
}

fn print_report(r: &CopyReport, to: &str) {
    let mode = match r.mode {
        CopyMode::SameKey => "same master key: packs copied without re-encryption",
        CopyMode::Rechunk => "different keys: content re-chunked for the destination",
    };
    tell!("copy to {to} ({mode})");
    for (src, dst) in &r.skipped {
        tell!("  {}  already there as {}", src.short(), dst.short());
    }
    for c in &r.copied {
        let dest = c
            .destination
            .map(|d| format!(" -> {}", d.short()))
            .unwrap_or_default();
        tell!(
            "  {}{dest}  {}  {}  {}  {}",
            c.source.short(),
            c.time.format("%Y-%m-%d %H:%M:%S"),
            c.host,
            c.paths.join(", "),
            output::bytes(c.bytes)
        );
    }
    let total: u64 = r.copied.iter().map(|c| c.bytes).sum();
    if r.dry_run {
        let bound = if r.mode == CopyMode::Rechunk {
            "at most "
        } else {
            ""
        };
        tell!(
            "dry run: would copy {} ({} already there), sending {bound}{}; nothing was changed",
            output::count(r.copied.len() as u64, "snapshot"),
            r.skipped.len(),
            output::bytes(total)
        );
        return;
    }
    tell!(
        "copied {} ({} already there): {}, {} in {}, {:.1} s, {}",
        output::count(r.copied.len() as u64, "snapshot"),
        r.skipped.len(),
        output::count(r.chunks_sent, "chunk"),
        output::bytes(r.bytes_sent),
        output::count(r.packs_written, "pack"),
        r.duration_ms as f64 / 1000.0,
        output::rate(r.bytes_sent, r.duration_ms)
    );
    for (name, c) in [
        ("source", r.source_requests),
        ("destination", r.destination_requests),
    ] {
        if let Some(c) = c {
            tell!(
                "{name} requests: {} ({} list, {} get, {} put, {} delete, {} head; {} down, {} up)",
                c.requests(),
                c.lists,
                c.gets,
                c.puts,
                c.deletes,
                c.heads,
                output::bytes(c.bytes_down),
                output::bytes(c.bytes_up)
            );
        }
    }
}
