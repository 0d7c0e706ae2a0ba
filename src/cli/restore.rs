use std::path::PathBuf;

use snap::ops::{RestoreOptions, restore};

use super::{Global, exit, output};

#[derive(clap::Args)]
pub struct Args {
    /// Snapshot id (prefix) or `latest`.
    snapshot: String,
    /// Directory to restore into (created if missing; must be empty unless --overwrite).
    #[arg(long, required_unless_present_any = ["db", "storage"])]
    target: Option<PathBuf>,
    /// Restore a database snapshot into the database given by --db-url / --project-ref.
    #[arg(long, conflicts_with_all = ["target", "includes", "overwrite"])]
    db: bool,
    #[command(flatten)]
    conn: super::backup_db::DbConnArgs,
    /// Restore the storage buckets and objects of the snapshot into the Storage API given by
    /// --url / --storage-url (missing buckets are created; existing objects are skipped unless
    /// --overwrite).
    #[arg(long, conflicts_with_all = ["target", "includes", "db"])]
    storage: bool,
    #[command(flatten)]
    storage_conn: super::backup_storage::StorageConnArgs,
    /// With --storage: restore only objects whose name starts with this.
    #[arg(long, requires = "storage")]
    prefix: Option<String>,
    /// With --storage: give buckets that already exist the snapshot's configuration (public,
    /// file size limit, allowed MIME types) before uploading, instead of keeping theirs.
    #[arg(long, requires = "storage")]
    apply_bucket_config: bool,
    /// With --db: which database of the snapshot (when it holds several).
    #[arg(long)]
    database: Option<String>,
    /// With --db or --storage: do not ask for confirmation.
    #[arg(long)]
    yes: bool,
    /// With --db: print the requirement report and the plan; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    db_opts: super::restore_db::DbRestoreArgs,
    /// Restore only this path and what lies below it (repeatable).
    #[arg(long = "include")]
    includes: Vec<String>,
    /// Restore into a non-empty directory, replacing entries at restored paths (with --storage:
    /// replace existing objects).
    #[arg(long)]
    overwrite: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    select: super::select::SnapshotSelect,
}

impl Args {
    /// `latest` means the newest database snapshot with --db, storage with --storage, and
    /// otherwise the newest snapshot of files or a stream (or the newest that backed up the
    /// --include paths).
    fn implied(&self) -> snap::snapshot::Selector {
        use super::select::{implied_kinds, implied_paths};
        use snap::snapshot::Kind;
        if self.db {
            implied_kinds(&[Kind::Database])
        } else if self.storage {
            implied_kinds(&[Kind::Storage])
        } else if !self.includes.is_empty() {
            implied_paths(self.includes.iter().map(String::as_str))
        } else {
            implied_kinds(&[Kind::Files, Kind::Stream])
        }
    }
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    // Arguments first: a usage error needs no repository.
    if a.db {
        super::restore_db::check_usage(&a.conn, &a.db_opts)?;
    }
    if a.storage && !a.storage_conn.given() {
        usage!("no Storage API given: pass --url https://<ref>.supabase.co or --storage-url");
    }
    let (repo, _lock) = g.open_locked(snap::repo::lock::LockKind::Shared, "restore")?;
    let snap = super::select::choose(
        &repo,
        &a.snapshot,
        &a.select,
        &a.implied(),
        g.quiet || a.json,
    )?;
    if a.db {
        return super::restore_db::run(
            g,
            &repo,
            &snap,
            &a.conn,
            a.database.as_deref(),
            a.yes,
            a.dry_run,
            a.json,
            &a.db_opts,
        );
    }
    if a.storage {
        let opts = snap::ops::storage_restore::StorageRestoreOptions {
            storage: a.storage_conn.options()?,
            prefix: a.prefix.clone(),
            overwrite: a.overwrite,
            apply_bucket_config: a.apply_bucket_config,
        };
        return super::restore_storage::run(g, &repo, &snap, &opts, a.yes, a.json);
    }
    let target = a
        .target
        .clone()
        .expect("clap requires --target without --db");
    let opts = RestoreOptions {
        target: target.clone(),
        includes: a.includes.clone(),
        overwrite: a.overwrite,
    };
    let started = std::time::Instant::now();
    let s = restore(&repo, &snap, &opts, &super::progress::Bars::new(g.quiet))?;
    if a.json {
        output::json(&s)?;
    } else if !g.quiet {
        let ms = started.elapsed().as_millis() as u64;
        tell!(
            "restored snapshot {} to {}: {}, {}, {}, {} ({})",
            snap.id.short(),
            target.display(),
            output::count(s.files, "file"),
            output::count(s.dirs, "dir"),
            output::count(s.symlinks, "symlink"),
            output::bytes(s.bytes),
            output::rate(s.bytes, ms.max(1))
        );
    }
    Ok(exit::OK)
}
