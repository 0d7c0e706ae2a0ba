//! Where backup data comes from: a filesystem walk, or one byte stream (stdin, a command's stdout).

mod command;
pub mod files;
pub mod postgres;
pub mod project;
pub mod storage;

pub use command::{ChildStream, CommandSource};
pub use files::{Excludes, WalkItem, stored_path, walk};

use std::io::Read;

use crate::error::Result;

/// One stream of bytes stored as one file in a snapshot.
pub trait StreamSource: Send {
    /// The path the stream is stored under (e.g. `db/shop.sql`).
    fn name(&self) -> &str;
    /// Kind recorded in the manifest.
    fn kind(&self) -> crate::snapshot::SourceKind;
    /// Human description for the manifest (no secrets).
    fn description(&self) -> String;
    fn reader(&mut self) -> &mut dyn Read;
    /// Called after the stream hit EOF: an error here means the data must not become a snapshot
    /// (for a command: non-zero exit or death by signal, with its stderr).
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Standard input (or any reader) as a stream source.
pub struct ReaderSource<R: Read + Send> {
    name: String,
    reader: R,
}

impl<R: Read + Send> ReaderSource<R> {
    pub fn new(name: impl Into<String>, reader: R) -> Self {
        ReaderSource {
            name: name.into(),
            reader,
        }
    }
}

impl<R: Read + Send> StreamSource for ReaderSource<R> {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> crate::snapshot::SourceKind {
        crate::snapshot::SourceKind::Stdin
    }
    fn description(&self) -> String {
        "standard input".into()
    }
    fn reader(&mut self) -> &mut dyn Read {
        &mut self.reader
    }
    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// Receives the entries a [`Source`] produces, in any order (the backup sorts them).
pub trait EntrySink {
    /// Store a file whose content is `reader` read to its end, at `path` (relative, `/`-separated;
    /// parent directories are added). Returns the number of bytes stored.
    fn file(
        &mut self,
        path: &str,
        mode: u32,
        reader: &mut dyn Read,
        attrs: crate::snapshot::Attrs,
    ) -> Result<u64>;
    /// Like [`EntrySink::file`], with a modification time (ns since the epoch) for the entry.
    fn file_at(
        &mut self,
        path: &str,
        mode: u32,
        mtime_ns: i64,
        reader: &mut dyn Read,
        attrs: crate::snapshot::Attrs,
    ) -> Result<u64>;
    /// Store a directory entry carrying `attrs` (e.g. a storage bucket's configuration). Its
    /// mtime is the newest below it; with nothing below, `mtime_ns` (a bucket's own time), else
    /// the backup's. Directories a source does not declare are added without attributes.
    fn dir(
        &mut self,
        path: &str,
        mtime_ns: Option<i64>,
        attrs: crate::snapshot::Attrs,
    ) -> Result<()>;
    /// The entry at `path` in the parent snapshot (the latest snapshot of the same source), so a
    /// source can tell whether an item changed since.
    fn parent_entry(&self, path: &str) -> Option<&crate::snapshot::Entry>;
    /// Store the parent's file at `path` again without reading it: its chunk list is reused, with
    /// new `attrs` and `mtime_ns`. Returns its size, or `None` when the parent has no such file or
    /// its chunks are no longer all in the repository (then the source must read the content).
    fn reuse(
        &mut self,
        path: &str,
        mtime_ns: i64,
        attrs: crate::snapshot::Attrs,
    ) -> Result<Option<u64>>;
    /// Something the user should know that does not fail the backup.
    fn warn(&mut self, message: String);
    /// About `n` more bytes will be stored than announced so far (for progress: a listing's
    /// sizes, a dump's estimate). `estimate`: a guess that may be exceeded.
    fn expect(&mut self, _n: u64, _estimate: bool) {}
}

/// A source that pushes many entries into one snapshot (a database, a storage project).
pub trait Source {
    fn kind(&self) -> crate::snapshot::SourceKind;
    /// What the snapshot holds (recorded as the manifest's `paths`; also used to find the
    /// parent snapshot), e.g. `["db/postgres"]`.
    fn paths(&self) -> Vec<String>;
    /// Human description for the manifest (no secrets).
    fn description(&self) -> String;
    /// Produce every entry. An error means no snapshot is recorded.
    fn run(&mut self, sink: &mut dyn EntrySink) -> Result<()>;
    /// Source-specific figures for the backup's summary, after `run`.
    fn summary(&self) -> SourceSummary {
        SourceSummary::None
    }
}

/// What a source reports after a backup: one typed summary per source kind. Serialised (for
/// `--json` output) as the summary itself: `null`, a database's, a storage's, or a project's
/// `{"database": …, "storage": …}`.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(untagged)]
pub enum SourceSummary {
    /// Files, standard input, a command: the snapshot's own figures say it all.
    #[default]
    None,
    Database(postgres::DbSummary),
    Storage(storage::StorageSummary),
    Project(ProjectSummary),
}

/// A whole project's summary: its database and its storage (`null` when absent).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProjectSummary {
    pub database: Option<postgres::DbSummary>,
    pub storage: Option<storage::StorageSummary>,
}

impl SourceSummary {
    /// The database part of this summary (a database or a project backup).
    pub fn database(&self) -> Option<&postgres::DbSummary> {
        match self {
            SourceSummary::Database(d) => Some(d),
            SourceSummary::Project(p) => p.database.as_ref(),
            _ => None,
        }
    }

    /// The storage part of this summary (a storage or a project backup).
    pub fn storage(&self) -> Option<&storage::StorageSummary> {
        match self {
            SourceSummary::Storage(s) => Some(s),
            SourceSummary::Project(p) => p.storage.as_ref(),
            _ => None,
        }
    }
}
