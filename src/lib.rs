//! snap: deduplicated, encrypted snapshots of Supabase projects (Postgres + Storage).
//!
//! Layers, bottom up: [`crypto`], [`chunker`], [`backend`] → [`blob`] → [`pack`] → [`index`] →
//! [`snapshot`] → [`source`], [`repo`] → [`ops`] → [`config`] (the nightly configuration file)
//! → [`nightly`] (the job it describes). Every layer may use [`supabase`] (facts about a
//! project's database), [`spec`] (values users write), [`error`], [`id`], [`progress`],
//! [`redact`], [`secret`] and [`util`]; none imports a layer above it (`tests/shape.rs` checks
//! it). The library prints nothing; the `snap` binary (`src/main.rs`, `src/cli/`) is a thin CLI.
//!
//! The main job through the crate root: open a repository, back up, restore.
//!
//! ```
//! use std::sync::Arc;
//! use snap::{backup, restore, Backend, BackupInput, BackupOptions, InitOptions, MemoryBackend};
//! use snap::{NoProgress, ReaderSource, Repository, RestoreOptions};
//!
//! let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
//! let init = InitOptions { kdf: snap::crypto::keyfile::KdfParams { m_cost: 64, t_cost: 1, p_cost: 1 },
//!                          ..Default::default() };
//! Repository::init(&*backend, b"password", &init).unwrap();
//! let cache = tempfile::tempdir().unwrap();
//! let repo = Repository::open(backend, b"password", cache.path()).unwrap();
//! let dump = &b"COPY t FROM stdin;\n1\n\\.\n"[..];
//! let src = ReaderSource::new("db/dump.sql", dump);
//! let out = backup(&repo, BackupInput::Stream(Box::new(src)), &BackupOptions::default(),
//!                  &NoProgress).unwrap();
//! let target = tempfile::tempdir().unwrap();
//! let opts = RestoreOptions { target: target.path().join("r"), includes: vec![], overwrite: false };
//! restore(&repo, &out.snapshot, &opts, &NoProgress).unwrap();
//! assert_eq!(std::fs::read(target.path().join("r/db/dump.sql")).unwrap(), dump);
//! ```

pub mod backend;
#[doc(hidden)] // an inner layer: reach it through the types below
pub mod blob;
#[doc(hidden)] // an inner layer: reach it through the types below
pub mod chunker;
pub mod config;
pub mod crypto;
pub mod error;
pub mod id;
#[doc(hidden)] // an inner layer: reach it through the types below
pub mod index;
pub mod nightly;
pub mod ops;
#[doc(hidden)] // an inner layer: reach it through the types below
pub mod pack;
pub mod progress;
pub mod redact;
pub mod repo;
pub mod secret;
pub mod snapshot;
pub mod source;
pub mod spec;
pub mod supabase;
#[doc(hidden)] // an inner layer: reach it through the types below
pub mod util;

pub use error::{Error, Result};
pub use id::Id;

// The public surface, by what a caller does. Open a repository:
pub use backend::{Backend, LocalBackend, MemoryBackend, S3Backend, open_location};
pub use repo::{Config as RepoConfig, InitOptions, Repository};
// Back up (files, a stream, a database, Storage buckets, a whole project):
pub use ops::{BackupInput, BackupOptions, BackupOutcome, backup};
pub use source::postgres::{DatabaseSource, DbOptions, DbSummary};
pub use source::project::ProjectSource;
pub use source::storage::{StorageOptions, StorageSource, StorageSummary};
pub use source::{ReaderSource, Source, SourceSummary, StreamSource};
// Look inside and get it back:
pub use ops::dbsnap::DbSnapshot;
pub use ops::{RestoreOptions, RestoreSummary, restore};
pub use snapshot::{Entry, EntryKind, Manifest, Snapshot, Tree};
// Keep it healthy:
pub use ops::check::{CheckOptions, CheckReport, check};
pub use spec::{DataSubset, Policy, RepackLimit, RetentionDuration};
// Run it nightly:
pub use config::Config as NightlyConfig;
pub use nightly::{NightlyOptions, NightlyReport};
// Report progress:
pub use progress::{NoProgress, Progress};
