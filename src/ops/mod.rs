//! Operations built on the repository: backup, restore, listing, cat.

pub mod backup;
pub mod restore;

pub use backup::{BackupInput, BackupOptions, BackupOutcome, backup};
pub use restore::{RestoreOptions, RestoreSummary, restore};
