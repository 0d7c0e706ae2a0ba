//! Where backup data comes from: a filesystem walk, or one byte stream (stdin, a command's stdout).

mod command;
pub mod files;

pub use command::CommandSource;
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
        ReaderSource { name: name.into(), reader }
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
