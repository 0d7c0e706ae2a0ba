//! Where repository files live. The [`Backend`] trait is shaped for object stores: whole-object
//! put/get, ranged get, list by prefix, delete. Nothing relies on rename, appends or atomic listing.
//! Each put must be atomic (readers see the old state or the whole new object, never a part).

mod faulty;
mod local;
mod memory;

pub use faulty::{Fault, FaultyBackend};
pub use local::LocalBackend;
pub use memory::MemoryBackend;

use crate::error::Result;

/// One stored object: its name (`data/ab/ab12…`, `snapshots/…`) and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
}

pub trait Backend: Send + Sync {
    /// Human description of where the repository is (no secrets).
    fn location(&self) -> String;
    /// All objects whose name starts with `prefix` (recursive), in no particular order.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;
    fn get(&self, name: &str) -> Result<Vec<u8>>;
    /// `len` bytes starting at `offset`; fewer bytes than asked is an error.
    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    /// Store `data` under `name` atomically and durably; replaces an existing object.
    fn put(&self, name: &str, data: &[u8]) -> Result<()>;
    fn delete(&self, name: &str) -> Result<()>;
    /// Whether `name` exists.
    fn exists(&self, name: &str) -> Result<bool>;
}

impl<B: Backend + ?Sized> Backend for std::sync::Arc<B> {
    fn location(&self) -> String {
        (**self).location()
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        (**self).list(prefix)
    }
    fn get(&self, name: &str) -> Result<Vec<u8>> {
        (**self).get(name)
    }
    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        (**self).get_range(name, offset, len)
    }
    fn put(&self, name: &str, data: &[u8]) -> Result<()> {
        (**self).put(name, data)
    }
    fn delete(&self, name: &str) -> Result<()> {
        (**self).delete(name)
    }
    fn exists(&self, name: &str) -> Result<bool> {
        (**self).exists(name)
    }
}

/// Open the backend a `--repo` string names. Today: a local directory path.
pub fn open_location(location: &str) -> Result<Box<dyn Backend>> {
    if let Some((scheme, _)) = location.split_once(':')
        && matches!(scheme, "s3" | "http" | "https" | "gs" | "az" | "sftp" | "rest")
    {
        return Err(crate::error::Error::Invalid(format!(
            "repository location {:?}: {scheme}: repositories are not supported by this build yet; use a local path",
            crate::util::mask_secret_url(location)
        )));
    }
    Ok(Box::new(LocalBackend::new(location)))
}

#[cfg(test)]
pub(crate) mod contract {
    //! The behaviour every backend must show; run against each implementation.
    use super::*;
    use crate::error::Error;

    pub fn check(b: &dyn Backend) {
        assert!(b.list("").unwrap().is_empty());
        assert!(matches!(b.get("config"), Err(Error::NotFound { .. })));
        assert!(!b.exists("config").unwrap());
        b.put("config", b"hello").unwrap();
        assert!(b.exists("config").unwrap());
        assert_eq!(b.get("config").unwrap(), b"hello");
        b.put("config", b"replaced").unwrap();
        assert_eq!(b.get("config").unwrap(), b"replaced");
        b.put("data/ab/ab01", b"0123456789").unwrap();
        b.put("data/cd/cd02", b"x").unwrap();
        assert_eq!(b.get_range("data/ab/ab01", 3, 4).unwrap(), b"3456");
        assert!(b.get_range("data/ab/ab01", 8, 4).is_err(), "short range is an error");
        let mut names: Vec<_> = b.list("data/").unwrap();
        names.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            names,
            vec![
                ObjectInfo { name: "data/ab/ab01".into(), size: 10 },
                ObjectInfo { name: "data/cd/cd02".into(), size: 1 },
            ]
        );
        assert_eq!(b.list("").unwrap().len(), 3);
        b.delete("data/cd/cd02").unwrap();
        assert_eq!(b.list("data/").unwrap().len(), 1);
        assert!(matches!(b.delete("data/cd/cd02"), Err(Error::NotFound { .. })));
    }
}
