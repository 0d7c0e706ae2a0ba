//! What the nightly job reads and writes: each project's source (database, storage, or both in
//! one snapshot) and the repositories (the main one and the `[offsite]` copy).

use chrono::{DateTime, FixedOffset};

use crate::config::{Config, Db, Project, Storage};
use crate::error::{Error, Result};
use crate::ops::{BackupInput, BackupOptions, BackupOutcome, backup};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::repo::lock::LockKind;
use crate::source::Source;
use crate::source::postgres::conn::ConnSpec;
use crate::source::postgres::{DatabaseSource, DbOptions};
use crate::source::project::ProjectSource;
use crate::source::storage::{StorageOptions, StorageSource};

/// The source of one project's snapshot — the ONE place that decides what it holds: the
/// database under `db/<database>/` and the Storage buckets under `storage/<bucket>/`, together in
/// one snapshot (so rows in `storage.objects` and the files they describe are from the same night).
pub fn project_source(p: &Project) -> Result<Box<dyn Source>> {
    let db = p.db.as_ref().map(database_source).transpose()?;
    let storage = p.storage.as_ref().map(storage_source).transpose()?;
    match (db, storage) {
        (Some(db), None) => Ok(Box::new(db)),
        (None, Some(st)) => Ok(Box::new(st)),
        (db, st @ Some(_)) => Ok(Box::new(ProjectSource::new(db, st))),
        (None, None) => Err(Error::Invalid(format!(
            "project {}: nothing to back up (give a db or a storage table)",
            p.name
        ))),
    }
}

fn storage_source(st: &Storage) -> Result<StorageSource> {
    StorageSource::new(StorageOptions {
        api_base: st.api_base.clone(),
        service_key: st.service_key.read()?,
        buckets: st.buckets.clone(),
        concurrency: st.concurrency,
        retry: crate::source::storage::client::RetryPolicy {
            patience: st.retry_for,
            ..Default::default()
        },
        ..Default::default()
    })
}

fn database_source(db: &Db) -> Result<DatabaseSource> {
    let password = db.password.as_ref().map(|s| s.read()).transpose()?;
    let conn = ConnSpec::from_target(&db.target, password)?;
    let pg_bin = db
        .pg_bin
        .as_deref()
        .map(crate::config::expand)
        .transpose()?;
    DatabaseSource::connect(DbOptions { conn, pg_bin })
}

/// Open the configured repository with the configured password.
pub fn open_repository(cfg: &Config) -> Result<Repository> {
    let backend = Repository::existing(&cfg.repository.location)?;
    let pw = cfg.repository.password.read()?;
    Repository::open(backend, pw.as_bytes(), &cfg.cache_dir())
}

/// Open the `[offsite]` repository (its index cache lives beside the main one's, keyed by its id).
pub(super) fn open_offsite(cfg: &Config, off: &crate::config::Offsite) -> Result<Repository> {
    let backend = Repository::existing(&off.location).map_err(|e| match e {
        Error::NotARepository(at) => Error::Invalid(format!(
            "the off-site repository {at} does not exist yet: create it once with `snap init --repo {at} --copy-key-from {}`",
            crate::redact::url_passwords(&cfg.repository.location)
        )),
        e => e,
    })?;
    let pw = off.password.read()?;
    Repository::open(backend, pw.as_bytes(), &cfg.cache_dir())
}

/// Back up one project into one snapshot (tagged `project=<name>` and its own tags), under a
/// shared lock.
pub fn backup_project(
    repo: &Repository,
    cfg: &Config,
    p: &Project,
    time: Option<DateTime<FixedOffset>>,
    progress: &dyn Progress,
) -> Result<BackupOutcome> {
    let _lock = repo.lock(LockKind::Shared, "backup")?;
    let src = project_source(p)?;
    let opts = BackupOptions {
        host: cfg.repository.host.clone(),
        tags: p.all_tags(),
        time,
        ..Default::default()
    };
    backup(repo, BackupInput::Source(src), &opts, progress)
}
