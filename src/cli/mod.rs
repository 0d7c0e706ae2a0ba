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

/// Fail the command with a usage error (a missing or contradicting argument: exit 2).
macro_rules! usage {
    ($($arg:tt)*) => {
        anyhow::bail!(crate::cli::Usage(format!($($arg)*)))
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
mod interrupt;
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

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

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
    /// Interrupted by SIGINT (Ctrl-C): 128 + 2.
    pub const INTERRUPTED: u8 = 130;
    /// Stopped by SIGTERM: 128 + 15.
    pub const TERMINATED: u8 = 143;
}

/// A usage error: an argument is missing or contradicts another. The command exits
/// [`exit::USAGE`]; raise it with `usage!`.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

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
        match self.repo.as_deref() {
            Some(r) => Ok(r),
            None => usage!("no repository given: pass --repo or set SNAP_REPO"),
        }
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
        Ok((repo, lock))
    }
}

/// An open repository that, when the command is done with it, reports packs the index could
/// not read (if the command needed the index).
pub struct OpenRepo {
    repo: Repository,
    quiet: bool,
}

impl OpenRepo {
    /// Take a lock for `command` (held until the guard drops), then remove the locks that
    /// processes of this host, now gone, left behind, saying so.
    pub fn lock(
        &self,
        kind: snap::repo::lock::LockKind,
        command: &str,
    ) -> snap::Result<snap::repo::lock::LockGuard> {
        let lock = self.repo.lock(kind, command)?;
        if lock.used_reserve() {
            say!(
                "warning: the repository's disk is full: its space reserve made room for this command's lock (it is put back when there is room). Free space with `snap forget` and `snap prune --grace 0s`"
            );
        }
        // Best effort: a lock left here is ignored as stale anyway, and `snap unlock` removes it.
        let gone = snap::repo::lock::remove_gone(&**self.repo.backend(), self.repo.key());
        for l in gone.unwrap_or_default() {
            if !self.quiet {
                say!(
                    "removed a stale lock of pid {} (snap {}), which is gone",
                    l.pid,
                    l.command
                );
            }
        }
        Ok(lock)
    }
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
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            // The reader of our output is gone (`snap ls … | head`): not a bug, nothing more to
            // say. End quietly, as an interrupt does: locks removed, throwaway servers stopped.
            interrupt::undo_process_state();
            std::process::exit(exit::OK.into());
        }
        let at = info
            .location()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        say!("snap panicked{at}: {msg} (a bug: please report it)");
    }));
}

/// The parsed command line and whether the command was given `--json`; or, for a command line
/// that does not parse, the exit code (after printing clap's message or help).
fn parse() -> Result<(Cli, bool), u8> {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Ok((Cli::from_arg_matches(&m)?, wants_json(&m))));
    match parsed {
        Ok(p) => Ok(p),
        Err(e) if e.use_stderr() => {
            let text = output::usage_error(&e);
            // No parsed command to ask: a `--json` among the options (before `--`) counts.
            if std::env::args_os()
                .take_while(|a| a != "--")
                .any(|a| a == "--json")
            {
                let text = text.trim_end();
                print_json_error(
                    text.strip_prefix("error: ").unwrap_or(text),
                    exit::USAGE,
                    "usage",
                );
            } else {
                eprint!("{}", snap::redact::text(&text));
            }
            Err(exit::USAGE)
        }
        Err(e) => {
            // --help, --version: printed to stdout, not an error.
            let _ = e.print();
            Err(exit::OK)
        }
    }
}

/// Whether the (sub)command given has its `--json` flag set.
fn wants_json(m: &clap::ArgMatches) -> bool {
    let mut m = m;
    loop {
        if matches!(m.try_get_one::<bool>("json"), Ok(Some(true))) {
            return true;
        }
        match m.subcommand() {
            Some((_, sub)) => m = sub,
            None => return false,
        }
    }
}

/// An error as `--json` prints it on stderr: `{"error": {"message", "exit_code", "kind"}}`.
#[derive(serde::Serialize)]
struct JsonError<'a> {
    error: JsonErrorBody<'a>,
}

#[derive(serde::Serialize)]
struct JsonErrorBody<'a> {
    message: &'a str,
    exit_code: u8,
    /// `usage`, `locked`, `interrupted` or `failed`.
    kind: &'a str,
}

/// Print an error as one line of JSON on stderr, its message redacted like every message.
fn print_json_error(message: &str, exit_code: u8, kind: &str) {
    let message = snap::redact::text(message);
    let e = JsonError {
        error: JsonErrorBody {
            message: &message,
            exit_code,
            kind,
        },
    };
    say!(
        "{}",
        serde_json::to_string(&e).expect("an error serializes")
    );
}

/// The exit code and kind of a failed command's error (docs/reference.md, "Exit codes").
fn classify(e: &anyhow::Error) -> (u8, &'static str) {
    for c in e.chain() {
        if c.is::<Usage>() {
            return (exit::USAGE, "usage");
        }
        if let Some(snap::Error::Locked(_)) = c.downcast_ref::<snap::Error>() {
            return (exit::LOCKED, "locked");
        }
    }
    (exit::FAILED, "failed")
}

/// Print a failed command's error (as JSON with `json`); returns its exit code.
fn report(e: &anyhow::Error, json: bool) -> u8 {
    let (code, kind) = classify(e);
    if json {
        print_json_error(&format!("{e:#}"), code, kind);
    } else {
        say!("error: {e:#}");
    }
    code
}

pub fn main() -> ExitCode {
    redact_panics();
    let (cli, json) = match parse() {
        Ok(p) => p,
        Err(code) => return ExitCode::from(code),
    };
    // `mount` takes the stop signals itself, to unmount.
    if !matches!(cli.command, Command::Mount(_)) {
        interrupt::install(json);
    }
    let result = dispatch(&cli);
    interrupt::wait_if_stopping();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => ExitCode::from(report(&e, json)),
    }
}

fn dispatch(cli: &Cli) -> anyhow::Result<u8> {
    match &cli.command {
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
    }
}
