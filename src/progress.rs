//! How long-running operations report what they do. The library never prints; the CLI
//! implements [`Progress`] (bars on a terminal, a line now and then otherwise).

pub trait Progress: Send + Sync {
    /// A phase starts (e.g. "backup", "restore"); `total_bytes` when known.
    fn start(&self, _phase: &str, _total_bytes: Option<u64>) {}
    /// `n` more bytes are expected than announced so far: a pre-scan found more files, a storage
    /// listing more objects. `estimate`: the total is a guess that may be off either way (a
    /// database dump's size from the database's size), so it may be exceeded.
    fn expect(&self, _n: u64, _estimate: bool) {}
    /// Work moved to another item (a path).
    fn item(&self, _path: &str) {}
    /// A backup stored a file that is new (`new`) or changed since the parent snapshot.
    fn changed(&self, _path: &str, _new: bool) {}
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
