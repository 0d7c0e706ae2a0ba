//! A read-only view of a backend for verification (`snap check`): short ranged reads become
//! errors, writes and deletes are refused.

use super::{Backend, ObjectInfo};
use crate::error::{Error, Result};

/// Delegates to the repository's backend, turning a ranged read that returns fewer bytes than
/// asked into an error (as the [`Backend`] contract requires), so a misbehaving backend is
/// reported as a read error instead of upsetting the parsers.
pub struct Strict<'a>(pub &'a dyn Backend);

impl Backend for Strict<'_> {
    fn location(&self) -> String {
        self.0.location()
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.0.list(prefix)
    }
    fn get(&self, name: &str) -> Result<Vec<u8>> {
        self.0.get(name)
    }
    fn get_bounded(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        self.0.get_bounded(name, limit)
    }
    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        exact(name, offset, len, self.0.get_range(name, offset, len))
    }
    fn get_ranges(
        &self,
        requests: &mut dyn Iterator<Item = super::RangeRequest>,
        in_flight: usize,
        sink: &mut dyn FnMut(super::RangeRequest, Result<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        self.0.get_ranges(requests, in_flight, &mut |r, got| {
            let got = exact(&r.name, r.offset, r.len, got);
            sink(r, got)
        })
    }
    fn is_remote(&self) -> bool {
        self.0.is_remote()
    }
    fn put(&self, name: &str, _data: &[u8]) -> Result<()> {
        debug_assert!(false, "check wrote {name}");
        Err(Error::Invalid(format!("check must not write {name}")))
    }
    fn delete(&self, name: &str) -> Result<()> {
        debug_assert!(false, "check deleted {name}");
        Err(Error::Invalid(format!("check must not delete {name}")))
    }
    fn exists(&self, name: &str) -> Result<bool> {
        self.0.exists(name)
    }
    fn leftover_temporaries(&self, min_age: std::time::Duration) -> Result<Vec<ObjectInfo>> {
        self.0.leftover_temporaries(min_age)
    }
}

/// `got`, unless it holds fewer (or more) bytes than the `len` asked for at `offset`.
fn exact(name: &str, offset: u64, len: u64, got: Result<Vec<u8>>) -> Result<Vec<u8>> {
    let v = got?;
    if v.len() as u64 != len {
        return Err(Error::Backend {
            path: name.to_string(),
            error: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("short read: {} of {len} bytes at offset {offset}", v.len()),
            ),
        });
    }
    Ok(v)
}
