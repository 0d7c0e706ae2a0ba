//! How long-running operations report what they do. The library never prints; the CLI
//! implements [`Progress`] (bars on a TTY, nothing otherwise).

pub trait Progress: Send + Sync {
    /// A phase starts (e.g. "backup", "restore"); `total_bytes` when known.
    fn start(&self, _phase: &str, _total_bytes: Option<u64>) {}
    /// Work moved to another item (a path).
    fn item(&self, _path: &str) {}
    /// `n` more bytes processed.
    fn bytes(&self, _n: u64) {}
    /// Something the user should know about that did not stop the operation.
    fn warn(&self, _message: &str) {}
    /// The phase ended.
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}
