//! Operations built on the repository: backup, restore, check, forget, prune, stats, diff, mount.

pub mod backup;
pub mod check;
pub mod dbrestore;
pub mod dbsnap;
pub mod diff;
pub mod forget;
pub mod mount;
pub mod prune;
pub mod restore;
pub mod stats;

pub use backup::{BackupInput, BackupOptions, BackupOutcome, backup};
pub use restore::{RestoreOptions, RestoreSummary, restore};
