//! `snap backup db`: a database snapshot; and the connection options it shares with
//! `snap restore --db`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use snap::ops::{BackupInput, BackupOptions, backup};
use snap::repo::lock::LockKind;
use snap::source::postgres::conn::{ConnSpec, DbTarget};
use snap::source::postgres::{DatabaseSource, DbOptions};
use zeroize::Zeroizing;

use super::backup::How;
use super::{Global, exit, output};

/// Where a database is and how to log in.
#[derive(clap::Args)]
pub struct DbConnArgs {
    /// postgresql://user[:password]@host:port/database (a password is better given separately).
    #[arg(long, conflicts_with = "project_ref")]
    pub db_url: Option<String>,
    /// Supabase project ref: connects to db.<ref>.supabase.co:5432 (TLS).
    #[arg(long)]
    pub project_ref: Option<String>,
    /// With --project-ref: use the session pooler at this host (user postgres.<ref>, port 5432).
    #[arg(long, requires = "project_ref")]
    pub pooler_host: Option<String>,
    /// Read the database password from this file (first line). Else: SNAP_DB_PASSWORD,
    /// PGPASSWORD, the URL, ~/.pgpass, or a prompt when the server asks for one.
    #[arg(long)]
    pub db_password_file: Option<PathBuf>,
    /// Directory holding pg_dump, pg_dumpall and psql (default: found among installed versions).
    #[arg(long)]
    pub pg_bin: Option<PathBuf>,
}

impl DbConnArgs {
    pub fn given(&self) -> bool {
        self.db_url.is_some() || self.project_ref.is_some()
    }

    fn password(&self) -> anyhow::Result<Option<Zeroizing<String>>> {
        if let Some(f) = &self.db_password_file {
            let pw =
                snap::secret::secret_from_file(f).context("reading the database password file")?;
            return Ok(Some(pw));
        }
        for var in ["SNAP_DB_PASSWORD", "PGPASSWORD"] {
            if let Ok(p) = std::env::var(var) {
                snap::redact::remember(&p);
                return Ok(Some(Zeroizing::new(p)));
            }
        }
        Ok(None)
    }

    fn spec(&self, password: Option<Zeroizing<String>>) -> anyhow::Result<ConnSpec> {
        let target = match (&self.db_url, &self.project_ref) {
            (Some(u), _) => DbTarget::Url(u.clone()),
            (None, Some(r)) => DbTarget::ProjectRef {
                project_ref: r.clone(),
                pooler_host: self.pooler_host.clone(),
            },
            (None, None) => usage!("no database given: pass --db-url or --project-ref"),
        };
        // The target cannot be made only when the URL given is wrong (or the transaction pooler).
        ConnSpec::from_target(&target, password).map_err(|e| match e {
            snap::Error::Invalid(_) => super::Usage(e.to_string()).into(),
            e => e.into(),
        })
    }

    /// Run `f` against the database; when the server wants a password nobody gave, ask on the
    /// terminal once and run it again.
    pub fn with_conn<T>(&self, f: impl Fn(ConnSpec) -> snap::Result<T>) -> anyhow::Result<T> {
        let conn = self.spec(self.password()?)?;
        let had_password = conn.has_password();
        match f(conn.clone()) {
            Err(e)
                if !had_password
                    && e.command_stderr()
                        .is_some_and(|s| s.contains("no password supplied"))
                    && std::io::stdin().is_terminal() =>
            {
                let pw = Zeroizing::new(rpassword::prompt_password(format!(
                    "password for {}: ",
                    conn.display()
                ))?);
                Ok(f(self.spec(Some(pw))?)?)
            }
            other => Ok(other?),
        }
    }
}

pub fn run(g: &Global, a: &DbConnArgs, opts: &BackupOptions, how: How) -> anyhow::Result<u8> {
    if !a.given() {
        usage!("no database given: pass --db-url or --project-ref");
    }
    let (repo, _lock) = g.open_locked(LockKind::Shared, "backup db")?;
    let src = a.with_conn(|conn| {
        DatabaseSource::connect(DbOptions {
            conn,
            pg_bin: a.pg_bin.clone(),
        })
    })?;
    let input = BackupInput::Source(Box::new(src));
    let progress = super::progress::Bars::bars_only(g.quiet).verbose(g.verbose, g.quiet);
    if how.dry_run {
        let out = snap::ops::backup::dry_run(&repo, input, opts, &progress)?;
        if !how.json && !g.quiet {
            print_notes(&out.notes, g.verbose);
        }
        return super::backup::report_dry_run(g, &out, how.json);
    }
    let out = backup(&repo, input, opts, &progress)?;
    let f = snap::ops::summary::BackupFigures::of(&out);
    if how.json {
        let v = super::snapshots::backup_json(&out, "database", f.dedup_ratio, f.mb_per_s)?;
        output::json(&v)?;
        return Ok(exit::OK);
    }
    if g.quiet {
        return Ok(exit::OK);
    }
    print_notes(&out.notes, g.verbose);
    let Some(db) = out.source_summary.database() else {
        anyhow::bail!("internal error: a database backup reported no database summary");
    };
    tell!(
        "snapshot {} of database {} (PostgreSQL {}, dumped with {}, snapshot {})",
        out.snapshot.id.short(),
        db.database,
        db.server_version,
        db.pg_dump,
        db.snapshot,
    );
    tell!("  {:<24} {:>7} {:>12}", "schema", "tables", "data");
    for sc in &db.schemas {
        tell!(
            "  {:<24} {:>7} {:>12}",
            sc.schema,
            sc.tables,
            output::bytes(sc.bytes)
        );
    }
    tell!("  {}", output::backup_line(&f));
    Ok(exit::OK)
}

/// A database backup's notes: every one with --verbose; else the notes that parts were skipped
/// (`skipped <part>: <why>`, one per part a plain PostgreSQL lacks) folded into one line.
fn print_notes(notes: &[String], verbose: bool) {
    if verbose {
        for n in notes {
            say!("note: {n}");
        }
        return;
    }
    let (skipped, other): (Vec<&String>, Vec<&String>) =
        notes.iter().partition(|n| n.starts_with("skipped "));
    let parts: Vec<&str> = skipped
        .iter()
        .map(|n| {
            let n = n.trim_start_matches("skipped ");
            n.split_once(':').map_or(n, |(part, _)| part)
        })
        .collect();
    let mut other = other.into_iter();
    match (other.next(), parts.is_empty()) {
        (Some(first), false) => say!("note: {first} (skipped: {}; -v says why)", parts.join(", ")),
        (Some(first), true) => say!("note: {first}"),
        (None, false) => say!("note: skipped {}; -v says why", parts.join(", ")),
        (None, true) => {}
    }
    for n in other {
        say!("note: {n}");
    }
}
