//! Command-line interface: clap definitions and rendering. One file per subcommand.

/// Every message for stderr goes through here: the one redaction step ([`snap::redact`]).
macro_rules! say {
    () => {
        eprintln!()
    };
    ($($arg:tt)*) => {
        eprintln!("{}", snap::redact::text(&format!($($arg)*)))
    };
}

/// Human messages for stdout (summaries, findings) pass the same step; data and JSON do not.
macro_rules! tell {
    () => {
        println!()
    };
    ($($arg:tt)*) => {
        println!("{}", snap::redact::text(&format!($($arg)*)))
    };
}

mod backup;
mod backup_db;
mod backup_storage;
mod cat;
mod check;
mod completions;
mod config;
mod copy;
mod diff;
mod dump;
mod find;
mod forget;
mod init;
mod key;
mod ls;
mod mount;
mod output;
mod password;
mod progress;
mod prune;
mod repair;
mod restore;
mod restore_db;
mod restore_storage;
mod restore_verify;
mod run;
mod select;
mod snapshots;
mod stats;
mod unlock;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use snap::repo::Repository;

/// Exit codes (docs/reference.md, "Exit codes").
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    /// The repository is locked by another process.
    pub const LOCKED: u8 = 3;
    /// A snapshot was saved, but some files could not be read and are missing from it, or
    /// changed while they were read.
    pub const INCOMPLETE: u8 = 4;
}

#[derive(Parser)]
#[command(
    name = "snap",
    version,
    about = "Back up a Supabase (or PostgreSQL) database and restore it: deduplicated, encrypted snapshots of databases, Storage buckets and files",
    long_about = "Back up a Supabase (or plain PostgreSQL) database and restore it.\n\n\
The main job: `snap backup db` takes one consistent snapshot of a database (roles, schema, data \
per table, migration history) streamed from pg_dump into an encrypted, deduplicated repository; \
`snap restore SNAPSHOT --db` puts it back into a database in one verified transaction; \
`snap snapshots`, `snap ls`, `snap cat` and `snap diff` look inside. Storage buckets \
(`snap backup storage`) and files (`snap backup PATH…`) go into the same repository, and \
`snap run` is the nightly job.",
    after_help = completions::help_examples()
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
pub struct Global {
    /// Repository location: a directory, or s3:https://host[:port]/bucket/prefix (s3:bucket/prefix
    /// for AWS); S3 credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    #[arg(
        long,
        short = 'r',
        env = "SNAP_REPO",
        global = true,
        help_heading = "Global options"
    )]
    repo: Option<String>,
    /// Read the repository password from this file (first line).
    #[arg(
        long,
        env = "SNAP_PASSWORD_FILE",
        global = true,
        help_heading = "Global options"
    )]
    password_file: Option<PathBuf>,
    /// Run this shell command and use its output (first line) as the password.
    #[arg(
        long,
        env = "SNAP_PASSWORD_COMMAND",
        global = true,
        help_heading = "Global options"
    )]
    password_command: Option<String>,
    /// Directory for the local index cache (default: $XDG_CACHE_HOME/snap).
    #[arg(
        long,
        env = "SNAP_CACHE_DIR",
        global = true,
        help_heading = "Global options"
    )]
    cache_dir: Option<PathBuf>,
    /// Print no warnings or progress (errors are still printed).
    #[arg(long, short = 'q', global = true, help_heading = "Global options")]
    quiet: bool,
    /// Say more: a backup lists each new (`+ path`) and changed (`M path`) file on stderr, and
    /// every note in full. --quiet wins.
    #[arg(long, short = 'v', global = true, help_heading = "Global options")]
    verbose: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new repository (asks for its password twice).
    Init(init::Args),
    /// Back up a database (`snap backup db`), Storage buckets (`snap backup storage`), files,
    /// standard input or a command's output into a new snapshot.
    Backup(backup::Args),
    /// List the snapshots: id, time, host, tags, size, added bytes.
    Snapshots(snapshots::Args),
    /// List the entries of a snapshot.
    Ls(ls::Args),
    /// Restore a database snapshot into a database (`--db --db-url URL`, verified), Storage
    /// buckets (`--storage`), or a snapshot's files into a directory (`--target DIR`).
    Restore(restore::Args),
    /// Write one file of a snapshot to standard output.
    Cat(cat::Args),
    /// Find files by name or path pattern across snapshots.
    Find(find::Args),
    /// Verify the repository: structure, and with --read-data every chunk.
    Check(check::Args),
    /// Remove snapshots according to a retention policy (default: keep 21 days).
    Forget(forget::Args),
    /// Delete data no snapshot references (two-phase, safe with concurrent backups).
    Prune(prune::Args),
    /// Manage the passwords (key files) that open the repository.
    #[command(subcommand)]
    Key(key::Command),
    /// Rebuild derived data.
    #[command(subcommand)]
    Repair(repair::Command),
    /// Remove stale locks (or all locks with --remove-all).
    Unlock(unlock::Args),
    /// Repository size, logical size, dedup and compression ratios, chunk and pack counts.
    Stats(stats::Args),
    /// Show paths added, removed and changed between two snapshots.
    Diff(diff::Args),
    /// Write a database snapshot as plain SQL files that restore with psql, no snap needed.
    Dump(dump::Args),
    /// The nightly configuration file: print a template, validate one.
    #[command(subcommand)]
    Config(config::Command),
    /// The nightly job from a configuration file: backup, forget, prune, check.
    Run(run::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::Args),
    /// Print the manual page (roff) to standard output, or write every page into a directory
    /// (`--dir`).
    Man(completions::ManArgs),
    /// Copy snapshots to another repository (e.g. off-site on S3), sending only what it lacks.
    Copy(copy::Args),
    /// Mount the repository read-only (FUSE) to browse and copy from any snapshot.
    Mount(mount::Args),
}

impl Global {
    fn location(&self) -> anyhow::Result<&str> {
        self.repo
            .as_deref()
            .context("no repository given: pass --repo or set SNAP_REPO")
    }

    fn backend(&self) -> anyhow::Result<Arc<dyn snap::backend::Backend>> {
        Ok(Arc::from(snap::backend::open_location(self.location()?)?))
    }

    /// The backend of the existing repository given by --repo / SNAP_REPO.
    fn existing_backend(&self) -> anyhow::Result<Arc<dyn snap::backend::Backend>> {
        Ok(Repository::existing(self.location()?)?)
    }

    fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(snap::repo::default_cache_dir)
    }

    /// Open the repository, asking for the password as configured.
    fn open(&self) -> anyhow::Result<OpenRepo> {
        Ok(OpenRepo {
            repo: self.open_repository(&self.cache_dir())?,
            quiet: self.quiet,
        })
    }

    /// [`Global::open`] with the index cache in `cache_dir`, without the end-of-command report
    /// (for a long-lived `mount`).
    fn open_repository(&self, cache_dir: &std::path::Path) -> anyhow::Result<Repository> {
        let backend = self.existing_backend()?;
        let pw = password::get(self, false)?;
        Ok(Repository::open(backend, pw.as_bytes(), cache_dir)?)
    }

    /// Open the repository and take a lock for `command` (held until the guard drops).
    fn open_locked(
        &self,
        kind: snap::repo::lock::LockKind,
        command: &str,
    ) -> anyhow::Result<(OpenRepo, snap::repo::lock::LockGuard)> {
        let repo = self.open()?;
        let lock = repo.lock(kind, command)?;
        if lock.used_reserve() {
            say!(
                "warning: the repository's disk is full: its space reserve made room for this command's lock (it is put back when there is room). Free space with `snap forget` and `snap prune --grace 0s`"
            );
        }
        Ok((repo, lock))
    }
}

/// An open repository that, when the command is done with it, reports packs the index could
/// not read (if the command needed the index).
pub struct OpenRepo {
    repo: Repository,
    quiet: bool,
}

impl std::ops::Deref for OpenRepo {
    type Target = Repository;
    fn deref(&self) -> &Repository {
        &self.repo
    }
}

impl Drop for OpenRepo {
    fn drop(&mut self) {
        if self.quiet {
            return;
        }
        for w in self.repo.key_warnings() {
            say!("warning: {w}");
        }
        if let Some(why) = self.repo.sync_report().and_then(|r| r.damaged.as_ref()) {
            say!(
                "warning: the local index cache {} was damaged ({why}); it was rebuilt from the pack trailers",
                self.repo.index_path().display()
            );
        }
        for (name, why) in self
            .repo
            .sync_report()
            .map(|r| r.unreadable.as_slice())
            .unwrap_or_default()
        {
            say!(
                "warning: pack {name} is unreadable and was not indexed: {why} (run `snap check`)"
            );
        }
    }
}

/// A panic's message passes the redaction step too.
fn redact_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = snap::util::panic_message(info.payload());
        let at = info
            .location()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        say!("snap panicked{at}: {msg} (a bug: please report it)");
    }));
}

pub fn main() -> ExitCode {
    redact_panics();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            eprint!("{}", snap::redact::text(&output::usage_error(&e)));
            return ExitCode::from(exit::USAGE);
        }
        Err(e) => {
            // --help, --version: printed to stdout, not an error.
            let _ = e.print();
            return ExitCode::from(exit::OK);
        }
    };
    let result = match &cli.command {
        Command::Init(a) => init::run(&cli.global, a),
        Command::Backup(a) => backup::run(&cli.global, a),
        Command::Snapshots(a) => snapshots::run(&cli.global, a),
        Command::Ls(a) => ls::run(&cli.global, a),
        Command::Restore(a) => restore::run(&cli.global, a),
        Command::Cat(a) => cat::run(&cli.global, a),
        Command::Find(a) => find::run(&cli.global, a),
        Command::Check(a) => check::run(&cli.global, a),
        Command::Forget(a) => forget::run(&cli.global, a),
        Command::Prune(a) => prune::run(&cli.global, a),
        Command::Key(c) => key::run(&cli.global, c),
        Command::Repair(c) => repair::run(&cli.global, c),
        Command::Unlock(a) => unlock::run(&cli.global, a),
        Command::Stats(a) => stats::run(&cli.global, a),
        Command::Diff(a) => diff::run(&cli.global, a),
        Command::Dump(a) => dump::run(&cli.global, a),
        Command::Config(c) => config::run(&cli.global, c),
        Command::Run(a) => run::run(&cli.global, a),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => completions::man(a),
        Command::Copy(a) => copy::run(&cli.global, a),
        Command::Mount(a) => mount::run(&cli.global, a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            say!("error: {e:#}");
            let locked = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<snap::Error>(),
                    Some(snap::Error::Locked(_))
                )
            });
            ExitCode::from(if locked { exit::LOCKED } else { exit::FAILED })
        }
    }
}
