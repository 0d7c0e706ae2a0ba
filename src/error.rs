//! The library's error kinds. Messages say what went wrong and what the user can do.

use std::path::PathBuf;

use crate::id::Id;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The io error is part of the message, not a separate cause (see [`Error::Io`]).
    #[error("storage error at {path}: {error}")]
    Backend { path: String, error: std::io::Error },

    #[error("{path} not found in the repository")]
    NotFound { path: String },

    #[error("{0} is not a snap repository (no config file); create one with `snap init`")]
    NotARepository(String),

    #[error("{0} already holds a snap repository; refusing to overwrite it")]
    AlreadyInitialized(String),

    #[error("wrong password: no key file in the repository opens with it")]
    WrongPassword,

    #[error("the repository has no key files (keys/ is empty or unreadable); it cannot be opened")]
    NoKeys,

    #[error(
        "repository format version {found} is not supported by this snap (supports {supported}); upgrade snap"
    )]
    UnsupportedVersion { found: u32, supported: u32 },

    #[error("corrupt {what}: {detail}")]
    Corrupt { what: String, detail: String },

    #[error(
        "chunk {0} is referenced but is not in the index (run `snap repair index`, or the data is lost)"
    )]
    ChunkMissing(Id),

    /// `snap init` on a server that cannot give back what snap writes.
    #[error(
        "refusing to create a repository at {location}: the server does not do what snap needs to read it back: {problems}. Use another server (or another version of it); nothing was created"
    )]
    ServerUnsupported { location: String, problems: String },

    #[error("no snapshot matches {0:?}")]
    SnapshotNotFound(String),

    /// `latest` with filters that no snapshot matches: what was asked and what to do.
    #[error("latest: {0}")]
    NoSnapshotMatches(String),

    /// A snapshot named by id that does not match the filters given with it.
    #[error(
        "snapshot {id} is not a {wanted}: it is {is}. Drop the filter, or pick another snapshot (`snap snapshots`)"
    )]
    SnapshotMismatch {
        id: String,
        wanted: String,
        is: String,
    },

    /// The snapshot asked for exists but its manifest cannot be read.
    #[error(
        "snapshot {id} is damaged: {detail}. Its manifest cannot be read, so nothing of it can be used; run `snap check` to see what else is damaged, and restore `snapshots/{full}` from a copy of the repository (or delete it to give up that snapshot)"
    )]
    SnapshotDamaged {
        id: String,
        full: String,
        detail: String,
    },

    #[error("snapshot prefix {prefix:?} is ambiguous: it matches {}", candidates.join(", "))]
    AmbiguousSnapshot {
        prefix: String,
        candidates: Vec<String>,
    },

    #[error(
        "path {path:?} is not in snapshot {snapshot}: `snap ls {snapshot}` lists what it holds, `snap find` finds a path in every snapshot"
    )]
    PathNotInSnapshot { snapshot: String, path: String },

    /// The io error is part of the message, not a separate cause: printed once, also in a
    /// `{:#}` chain.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("command `{command}` failed ({status}). Its stderr ended with:\n{stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },

    /// Packs a snapshot being written depends on were deleted while it was written (a prune
    /// ran while the writer's lock was removed or stale): its manifest is not written.
    #[error(
        "{count} pack(s) this snapshot depends on were deleted while it was being written (e.g. {example}): a prune ran while this command's lock was removed or had gone stale (a suspended host, `snap unlock --remove-all`). No snapshot was recorded; run the command again"
    )]
    PacksDeletedMeanwhile { count: usize, example: String },

    /// Some files of a restore failed; the others were restored.
    #[error(
        "{} file(s) could not be restored ({restored} were); none of them was left half written under its name:\n{}",
        failed.len(),
        failed.iter().take(20).map(|(p, e)| format!("  {p}: {e}")).collect::<Vec<_>>().join("\n")
    )]
    RestoreIncomplete {
        restored: u64,
        failed: Vec<(String, String)>,
    },

    /// A backup's source failed: nothing was written that a snapshot refers to.
    #[error("{0}\nno snapshot was recorded")]
    BackupSourceFailed(Box<Error>),

    /// A tool that is not part of a backup failed (e.g. psql applying SQL leniently).
    #[error("{tool} failed ({status}): {stderr}")]
    ToolFailed {
        tool: String,
        status: String,
        stderr: String,
    },

    #[error("restore target {0} is not empty; choose an empty directory or pass --overwrite")]
    TargetNotEmpty(PathBuf),

    #[error(
        "the local index at {path} is in use by another snap process; wait for it to finish or use another --cache-dir"
    )]
    IndexBusy { path: PathBuf },

    #[error("the repository is locked: {0}")]
    Locked(String),

    #[error("no space left: {0}")]
    DiskFull(String),

    #[error("index error: {0}")]
    Index(String),

    #[error("invalid argument: {0}")]
    Invalid(String),

    /// A Supabase Storage API request failed for good (after retries, or a refused key).
    #[error("{0}")]
    StorageApi(String),
}

impl Error {
    /// The stderr of a failed command, also when a backup wrapped it.
    pub fn command_stderr(&self) -> Option<&str> {
        match self {
            Error::CommandFailed { stderr, .. } => Some(stderr),
            Error::BackupSourceFailed(e) => e.command_stderr(),
            _ => None,
        }
    }

    pub fn corrupt(what: impl Into<String>, detail: impl Into<String>) -> Error {
        Error::Corrupt {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }

    /// True for failures that may go away when retried (network hiccups, throttling).
    pub fn is_transient(&self) -> bool {
        use std::io::ErrorKind::*;
        match self {
            Error::Backend { error, .. } => matches!(
                error.kind(),
                TimedOut | Interrupted | ConnectionReset | ConnectionAborted | WouldBlock
            ),
            _ => false,
        }
    }
}

macro_rules! index_err {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error { Error::Index(e.to_string()) }
        }
    )*};
}
index_err!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
