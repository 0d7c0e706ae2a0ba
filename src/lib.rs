//! snap: deduplicated, encrypted snapshots of Supabase projects (Postgres + Storage).
//!
//! Layers, bottom up: [`crypto`], [`chunker`], [`backend`] → [`blob`] → [`pack`] → [`index`] →
//! [`snapshot`] → [`source`], [`repo`] → [`ops`] → [`config`] (the nightly configuration file)
//! → [`nightly`] (the job it describes). Every layer may use [`supabase`] (facts about a
//! project's database), [`spec`] (values users write), [`error`], [`id`], [`progress`],
//! [`redact`], [`secret`] and [`util`]; none imports a layer above it (`tests/shape.rs` checks
//! it). The library prints nothing; the `snap` binary (`src/main.rs`, `src/cli/`) is a thin CLI.
//!
//! ```
//! use std::sync::Arc;
//! use snap::backend::{Backend, MemoryBackend};
//! use snap::crypto::keyfile::KdfParams;
//! use snap::ops::{backup, BackupInput, BackupOptions};
//! use snap::repo::{InitOptions, Repository};
//! use snap::source::ReaderSource;
//!
//! let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
//! let init = InitOptions { kdf: KdfParams { m_cost: 64, t_cost: 1, p_cost: 1 }, ..Default::default() };
//! Repository::init(&*backend, b"password", &init).unwrap();
//! let cache = tempfile::tempdir().unwrap();
//! let repo = Repository::open(backend, b"password", cache.path()).unwrap();
//! let src = ReaderSource::new("db/dump.sql", &b"COPY t FROM stdin;\n1\n\\.\n"[..]);
//! let out = backup(&repo, BackupInput::Stream(Box::new(src)), &BackupOptions::default(),
//!                  &snap::progress::NoProgress).unwrap();
//! let tree = repo.load_tree(&out.snapshot.manifest).unwrap();
//! let mut restored = Vec::new();
//! repo.write_file_to(&tree.get("db/dump.sql").unwrap().chunks, &mut restored).unwrap();
//! assert_eq!(restored, b"COPY t FROM stdin;\n1\n\\.\n");
//! ```

pub mod backend;
pub mod blob;
pub mod chunker;
pub mod config;
pub mod crypto;
pub mod error;
pub mod id;
pub mod index;
pub mod nightly;
pub mod ops;
pub mod pack;
pub mod progress;
pub mod redact;
pub mod repo;
pub mod secret;
pub mod snapshot;
pub mod source;
pub mod spec;
pub mod supabase;
pub mod util;

pub use error::{Error, Result};
pub use id::Id;
