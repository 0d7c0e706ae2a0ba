//! Operations built on the repository: backup, restore, check, forget, prune, stats, diff, copy,
//! mount.

pub mod backup;
pub mod check;
pub mod copy;
pub mod dbrestore;
pub mod dbsnap;
pub mod diff;
pub mod find;
pub mod forget;
pub mod mount;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod stats;
pub mod storage_restore;
pub mod summary;

pub use backup::{BackupInput, BackupOptions, BackupOutcome, backup};
pub use restore::{RestoreOptions, RestoreSummary, restore};
