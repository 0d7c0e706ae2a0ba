use std::path::PathBuf;

use anyhow::Context;
use snap::ops::{BackupInput, BackupOptions, backup};
use snap::source::{CommandSource, ReaderSource};

use super::{Global, exit, output};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    what: Option<What>,
    /// Files and directories to back up (a directory named like a subcommand: write `./db`).
    paths: Vec<PathBuf>,
    /// Back up standard input as one file (name it with --stdin-name).
    #[arg(long, conflicts_with_all = ["paths", "command"])]
    stdin: bool,
    /// Back up the projects of this configuration file, one snapshot each (see `snap config
    /// init`); the repository and its password come from the file.
    #[arg(long, conflicts_with_all = ["paths", "stdin", "command"])]
    config: Option<PathBuf>,
    /// With --config: only this project (repeatable; default: all).
    #[arg(long = "project", value_name = "NAME", requires = "config")]
    projects: Vec<String>,
    /// Back up the standard output of this shell command; no snapshot unless it exits 0.
    #[arg(long, conflicts_with = "paths")]
    command: Option<String>,
    /// Path under which --stdin / --command data is stored.
    #[arg(long, default_value = "stdin")]
    stdin_name: String,
    /// Tag the snapshot (`key=value`; repeatable).
    #[arg(long = "tag", global = true)]
    tags: Vec<String>,
    /// Host name to record (default: this machine's).
    #[arg(long, global = true)]
    host: Option<String>,
    /// Exclude paths matching this glob (repeatable). Without a `/` it matches any name.
    #[arg(long = "exclude")]
    excludes: Vec<String>,
    /// Read exclude patterns from this file, one per line (`#` comments).
    #[arg(long = "exclude-file")]
    exclude_files: Vec<PathBuf>,
    /// Re-read all files, even those unchanged since the parent snapshot.
    #[arg(long)]
    force: bool,
    /// Compare against this snapshot instead of the latest one with the same host and paths.
    #[arg(long)]
    parent: Option<String>,
    /// zstd level for this backup (default: the repository's).
    #[arg(long, global = true, value_parser = clap::value_parser!(i32).range(0..=22))]
    compression: Option<i32>,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Read, chunk and hash everything as a backup would, and report what it would add, but
    /// write nothing to the repository (no snapshot). With `db`/`storage` the dump or download
    /// runs too.
    #[arg(long, global = true)]
    dry_run: bool,
    /// Record this snapshot time (RFC 3339) instead of now: for imports and for tests of
    /// retention with chosen times.
    #[arg(long, hide = true, value_parser = chrono::DateTime::parse_from_rfc3339)]
    time: Option<chrono::DateTime<chrono::FixedOffset>>,
}

#[derive(clap::Subcommand)]
enum What {
    /// Snapshot a Supabase (or plain PostgreSQL) database with pg_dump: roles, schema, data per
    /// table, migration history, managed schemas and an inventory, from one consistent point in time.
    Db(super::backup_db::DbConnArgs),
    /// Snapshot Supabase Storage: every bucket's configuration and every object with its
    /// metadata (content type, cache control, user metadata, eTag, times).
    Storage(super::backup_storage::StorageConnArgs),
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    for t in &a.tags {
        if t.is_empty() || t.contains(',') {
            usage!("invalid tag {t:?}: use key=value without commas");
        }
    }
    let mut excludes = a.excludes.clone();
    for f in &a.exclude_files {
        let s = snap::secret::read_text_file(f, snap::secret::TEXT_LIMIT)
            .with_context(|| format!("reading exclude file {}", f.display()))?;
        excludes.extend(s.lines().map(str::to_string));
    }
    if let Some(cfg) = &a.config {
        return from_config(g, a, cfg);
    }
    if let Some(what) = &a.what {
        let opts = BackupOptions {
            host: a.host.clone(),
            tags: a.tags.clone(),
            compression: a.compression,
            time: a.time,
            ..Default::default()
        };
        let how = How {
            json: a.json,
            dry_run: a.dry_run,
        };
        return match what {
            What::Db(db) => super::backup_db::run(g, db, &opts, how),
            What::Storage(st) => super::backup_storage::run(g, st, &opts, how),
        };
    }
    let input = if a.stdin {
        BackupInput::Stream(Box::new(ReaderSource::new(
            a.stdin_name.clone(),
            std::io::stdin(),
        )))
    } else if let Some(cmd) = &a.command {
        BackupInput::Stream(Box::new(CommandSource::spawn(cmd, a.stdin_name.clone())?))
    } else {
        if a.paths.is_empty() {
            usage!("nothing to back up: give paths, --stdin or --command");
        }
        BackupInput::Paths(a.paths.clone())
    };
    let (repo, _lock) = g.open_locked(snap::repo::lock::LockKind::Shared, "backup")?;
    let opts = BackupOptions {
        host: a.host.clone(),
        tags: a.tags.clone(),
        excludes,
        force: a.force,
        parent: a.parent.clone(),
        compression: a.compression,
        time: a.time,
    };
    let progress = super::progress::Bars::new(g.quiet).verbose(g.verbose, g.quiet);
    if a.dry_run {
        let out = snap::ops::backup::dry_run(&repo, input, &opts, &progress)?;
        return report_dry_run(g, &out, a.json);
    }
    let out = backup(&repo, input, &opts, &progress)?;
    let s = &out.snapshot.manifest.summary;
    if a.json {
        output::json(&super::snapshots::SnapshotJson::new(
            &out.snapshot,
            &out.warnings,
        ))?;
    } else if !g.quiet {
        tell!(
            "snapshot {} saved: {}, {}, {} in total; {}",
            out.snapshot.id.short(),
            output::count(s.files, "file"),
            output::count(s.dirs, "dir"),
            output::bytes(s.total_bytes),
            output::backup_line(&snap::ops::summary::BackupFigures::of(&out)),
        );
        if s.files_unchanged > 0 {
            tell!(
                "  {} unchanged since the parent snapshot (not read again)",
                output::count(s.files_unchanged, "file")
            );
        }
    }
    if !out.warnings.is_empty() {
        say!(
            "warning: {} could not be backed up or changed while read (listed above); the snapshot is incomplete",
            output::count_irregular(out.warnings.len() as u64, "entry", "entries")
        );
        return Ok(exit::INCOMPLETE);
    }
    Ok(exit::OK)
}

/// `snap backup --config F [--project NAME]`: one snapshot per project; a failing project does
/// not stop the others (exit 1 if any failed).
fn from_config(g: &Global, a: &Args, path: &std::path::Path) -> anyhow::Result<u8> {
    use snap::nightly;
    if a.what.is_some() {
        usage!("--config backs up the projects of the file: give no `db` subcommand with it");
    }
    if a.dry_run {
        anyhow::bail!(
            "--dry-run is not available with --config: try `snap backup db --dry-run` with the project's database"
        );
    }
    let cfg = match snap::config::Config::load(path) {
        Ok(c) => c,
        Err(e) => usage!("{e}"),
    };
    let projects: Vec<&snap::config::Project> = if a.projects.is_empty() {
        cfg.projects.iter().collect()
    } else {
        a.projects
            .iter()
            .map(|n| cfg.project(n))
            .collect::<snap::Result<_>>()
            .map_err(|e| super::Usage(e.to_string()))?
    };
    let repo = nightly::open_repository(&cfg)?;
    let progress = super::progress::Bars::new(g.quiet);
    let mut results = Vec::new();
    let mut failed = false;
    for p in projects {
        match nightly::backup_project(&repo, &cfg, p, a.time, &progress) {
            Ok(out) => {
                let f = snap::ops::summary::BackupFigures::of(&out);
                failed |= !f.warnings.is_empty();
                if !a.json && !g.quiet {
                    tell!("project {}: snapshot {}", p.name, f.short_id);
                    for row in output::source_rows(&f) {
                        tell!("  {row}");
                    }
                    tell!("  {}", output::backup_line(&f));
                }
                results.push(serde_json::json!({ "project": p.name, "ok": f.warnings.is_empty(), "backup": f }));
            }
            Err(e) => {
                failed = true;
                say!("error: project {}: {e}", p.name);
                if matches!(e, snap::Error::Locked(_)) {
                    return Ok(exit::LOCKED);
                }
                results.push(
                    serde_json::json!({ "project": p.name, "ok": false, "error": e.to_string() }),
                );
            }
        }
    }
    if a.json {
        output::json(&results)?;
    }
    Ok(if failed { exit::FAILED } else { exit::OK })
}

/// How `snap backup db` / `snap backup storage` report and whether they store anything.
#[derive(Clone, Copy)]
pub struct How {
    pub json: bool,
    pub dry_run: bool,
}

/// What `--dry-run --json` prints.
#[derive(serde::Serialize)]
struct DryRunJson<'a> {
    dry_run: bool,
    files: u64,
    dirs: u64,
    files_new: u64,
    files_changed: u64,
    files_unchanged: u64,
    total_bytes: u64,
    bytes_read: u64,
    /// New data the repository lacks (before compression), and its chunks.
    new_bytes: u64,
    new_chunks: u64,
    warnings: &'a [String],
    notes: &'a [String],
}

/// Report a dry run: what the backup would have saved and added. Exit 4 when entries could not
/// be read, as the backup would.
pub fn report_dry_run(
    g: &Global,
    out: &snap::ops::backup::DryRunOutcome,
    json: bool,
) -> anyhow::Result<u8> {
    let s = &out.summary;
    if json {
        output::json(&DryRunJson {
            dry_run: true,
            files: s.files,
            dirs: s.dirs,
            files_new: s.files_new,
            files_changed: s.files_changed,
            files_unchanged: s.files_unchanged,
            total_bytes: s.total_bytes,
            bytes_read: s.bytes_read,
            new_bytes: s.added_raw_bytes,
            new_chunks: s.chunks_new,
            warnings: &out.warnings,
            notes: &out.notes,
        })?;
    } else if !g.quiet {
        tell!(
            "dry run: a snapshot would hold {}, {}, {}: {} new, {} changed, {} unchanged",
            output::count(s.files, "file"),
            output::count(s.dirs, "dir"),
            output::bytes(s.total_bytes),
            s.files_new,
            s.files_changed,
            s.files_unchanged,
        );
        tell!(
            "  read {}; {} of it is new and would be stored ({}), the rest is already in the repository; nothing was written",
            output::bytes(s.bytes_read),
            output::bytes(s.added_raw_bytes),
            output::count(s.chunks_new, "chunk"),
        );
    }
    if !out.warnings.is_empty() {
        say!(
            "warning: {} could not be read (listed above); a backup now would be incomplete",
            output::count_irregular(out.warnings.len() as u64, "entry", "entries")
        );
        return Ok(exit::INCOMPLETE);
    }
    Ok(exit::OK)
}
