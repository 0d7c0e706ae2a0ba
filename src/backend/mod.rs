//! Where repository files live. The [`Backend`] trait is shaped for object stores: whole-object
//! put/get, ranged get, list by prefix, delete. Nothing relies on rename, appends or atomic listing.
//! Each put must be atomic (readers see the old state or the whole new object, never a part).

mod counting;
mod faulty;
mod latency;
mod local;
mod memory;
mod powerloss;
mod ranged;
mod s3;
pub(crate) mod strict;

pub use counting::{CountingBackend, RequestCounts};
pub use faulty::{Fault, FaultyBackend};
pub use latency::LatencyBackend;
pub use local::LocalBackend;
pub use memory::MemoryBackend;
pub use powerloss::{CutMode, Power, PowerLossBackend};
pub use s3::{S3Backend, S3Location};

use crate::error::Result;

/// One stored object: its name (`data/ab/ab12…`, `snapshots/…`) and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
}

/// Requests kept in flight at once by readers of a store across a network (each costs a round
/// trip, ~20 ms to an object store): tens, whatever the number of cores.
pub const REMOTE_IN_FLIGHT: usize = 16;

/// How many requests [`Backend::get_ranges`] callers keep in flight on `backend`: many on a
/// remote store, one on a local disk (large reads one after the other; the OS reads ahead).
pub fn in_flight_for(backend: &dyn Backend) -> usize {
    if backend.is_remote() {
        REMOTE_IN_FLIGHT
    } else {
        1
    }
}

/// One ranged read of [`Backend::get_ranges`]: `len` bytes of `name` from `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRequest {
    pub name: String,
    pub offset: u64,
    pub len: u64,
}

pub trait Backend: Send + Sync {
    /// Human description of where the repository is (no secrets).
    fn location(&self) -> String;
    /// All objects whose name starts with `prefix` (recursive), in no particular order.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;
    fn get(&self, name: &str) -> Result<Vec<u8>>;
    /// `get`, refusing an object larger than `limit` before reading it whole: for objects that
    /// are not data (config, locks, manifests, deletion plans; limits in repo-format.md §10).
    fn get_bounded(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let b = self.get(name)?;
        check_bound(name, b.len() as u64, limit)?;
        Ok(b)
    }
    /// `len` bytes starting at `offset`; fewer bytes than asked is an error.
    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    /// Read every range `requests` yields, with up to `in_flight` requests outstanding, and
    /// hand each answer to `sink` in the order asked (the request comes back beside it). Stops
    /// at the first error `sink` returns, and returns it. The default reads one range after the
    /// other; object stores keep `in_flight` requests going on their runtime, whatever the
    /// number of cores.
    fn get_ranges(
        &self,
        requests: &mut dyn Iterator<Item = RangeRequest>,
        in_flight: usize,
        sink: &mut dyn FnMut(RangeRequest, Result<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        let _ = in_flight;
        for r in requests {
            let got = self.get_range(&r.name, r.offset, r.len);
            sink(r, got)?;
        }
        Ok(())
    }
    /// Store `data` under `name` atomically and durably; replaces an existing object.
    fn put(&self, name: &str, data: &[u8]) -> Result<()>;
    /// Store `data` under `name` only if no object has that name; `Ok(false)` when one exists
    /// (and is left alone). Object stores use a conditional put (`If-None-Match: *`); the
    /// default checks then puts, which is not atomic. Never the only safeguard for correctness:
    /// some S3 servers ignore the condition (repo-format.md §9.3).
    fn put_new(&self, name: &str, data: &[u8]) -> Result<bool> {
        if self.exists(name)? {
            return Ok(false);
        }
        self.put(name, data)?;
        Ok(true)
    }
    /// Delete `name`; when it returns, the deletion is durable (as a put is). Deleting a missing
    /// object either succeeds (S3) or returns [`Error::NotFound`](crate::Error::NotFound);
    /// callers accept both.
    fn delete(&self, name: &str) -> Result<()>;
    /// Whether `name` exists.
    fn exists(&self, name: &str) -> Result<bool>;
    /// Requests made so far, when this backend counts them ([`CountingBackend`]).
    fn counts(&self) -> Option<RequestCounts> {
        None
    }
    /// Whether objects live across a network (each request costs time and money): the
    /// repository then keeps copies of immutable metadata in the local cache.
    fn is_remote(&self) -> bool {
        false
    }
    /// Temporary files an interrupted write left behind (local directories write each object
    /// to a temporary name first), not modified for `min_age`: names relative to the root.
    /// Object stores have none (a put is atomic).
    fn leftover_temporaries(&self, min_age: std::time::Duration) -> Result<Vec<ObjectInfo>> {
        let _ = min_age;
        Ok(Vec::new())
    }
    /// Remove one of [`Backend::leftover_temporaries`].
    fn remove_temporary(&self, name: &str) -> Result<()> {
        Err(crate::Error::Invalid(format!(
            "{name}: this backend has no temporary files"
        )))
    }
}

/// A smart pointer to a backend is that backend (`Arc<dyn Backend>`, `Box<dyn Backend>`).
macro_rules! delegate_backend {
    ($($ptr:ident)::+) => {
        impl<B: Backend + ?Sized> Backend for $($ptr)::+<B> {
            fn location(&self) -> String {
                (**self).location()
            }
            fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
                (**self).list(prefix)
            }
            fn get(&self, name: &str) -> Result<Vec<u8>> {
                (**self).get(name)
            }
            fn get_bounded(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
                (**self).get_bounded(name, limit)
            }
            fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
                (**self).get_range(name, offset, len)
            }
            fn get_ranges(
                &self,
                requests: &mut dyn Iterator<Item = RangeRequest>,
                in_flight: usize,
                sink: &mut dyn FnMut(RangeRequest, Result<Vec<u8>>) -> Result<()>,
            ) -> Result<()> {
                (**self).get_ranges(requests, in_flight, sink)
            }
            fn put(&self, name: &str, data: &[u8]) -> Result<()> {
                (**self).put(name, data)
            }
            fn put_new(&self, name: &str, data: &[u8]) -> Result<bool> {
                (**self).put_new(name, data)
            }
            fn delete(&self, name: &str) -> Result<()> {
                (**self).delete(name)
            }
            fn exists(&self, name: &str) -> Result<bool> {
                (**self).exists(name)
            }
            fn counts(&self) -> Option<RequestCounts> {
                (**self).counts()
            }
            fn is_remote(&self) -> bool {
                (**self).is_remote()
            }
            fn leftover_temporaries(&self, min_age: std::time::Duration) -> Result<Vec<ObjectInfo>> {
                (**self).leftover_temporaries(min_age)
            }
            fn remove_temporary(&self, name: &str) -> Result<()> {
                (**self).remove_temporary(name)
            }
        }
    };
}

delegate_backend!(std::sync::Arc);
delegate_backend!(Box);

/// Open the backend a `--repo` string names: `s3:…` (see [`S3Backend`]) or a local directory.
/// An object of `size` bytes where at most `limit` may be: damage (or a hostile store).
pub fn check_bound(name: &str, size: u64, limit: u64) -> Result<()> {
    if size > limit {
        return Err(crate::error::Error::corrupt(
            name.to_string(),
            format!(
                "{size} bytes, more than the {limit} such an object may have (run `snap check`)"
            ),
        ));
    }
    Ok(())
}

/// Every backend is wrapped in a [`CountingBackend`], so commands can report requests made.
pub fn open_location(location: &str) -> Result<Box<dyn Backend>> {
    if let Some(rest) = location.strip_prefix("s3:") {
        return Ok(Box::new(CountingBackend::new(S3Backend::open(rest)?)));
    }
    if let Some((scheme, _)) = location.split_once(':')
        && matches!(scheme, "http" | "https" | "gs" | "az" | "sftp" | "rest")
    {
        return Err(crate::error::Error::Invalid(format!(
            "repository location {:?}: {scheme}: repositories are not supported by this build; use a local path or s3:https://host/bucket/prefix",
            crate::redact::url_passwords(location)
        )));
    }
    Ok(Box::new(CountingBackend::new(LocalBackend::new(location))))
}

#[doc(hidden)]
pub mod contract {
    //! The behaviour every backend must show; run against each implementation (unit tests for
    //! local and memory, tests/backend_contract.rs for all three including S3). `b` must be
    //! empty. Panics on the first violation.
    use super::*;
    use crate::error::Error;

    pub fn check(b: &dyn Backend) {
        check_with_big(b, 1 << 20);
    }

    /// [`check`], with a "big" object of `big_len` bytes.
    pub fn check_with_big(b: &dyn Backend, big_len: usize) {
        puts(b);
        ranges_and_listings(b);
        big_object(b, big_len);
    }

    /// Missing objects, puts that replace the whole object, and the conditional create.
    fn puts(b: &dyn Backend) {
        assert!(b.list("").unwrap().is_empty(), "backend starts empty");
        assert!(matches!(b.get("config"), Err(Error::NotFound { .. })));
        assert!(matches!(
            b.get_range("config", 0, 1),
            Err(Error::NotFound { .. })
        ));
        assert!(!b.exists("config").unwrap());
        b.put("config", b"hello").unwrap();
        assert!(b.exists("config").unwrap());
        assert_eq!(b.get("config").unwrap(), b"hello");
        // Overwrite replaces the whole object.
        b.put("config", b"replaced").unwrap();
        assert_eq!(b.get("config").unwrap(), b"replaced");
        b.put("config", b"short").unwrap();
        assert_eq!(b.get("config").unwrap(), b"short");
        // Conditional create.
        assert!(b.put_new("keys/k1", b"first").unwrap());
        assert!(!b.put_new("keys/k1", b"second").unwrap());
        assert_eq!(
            b.get("keys/k1").unwrap(),
            b"first",
            "put_new leaves an existing object alone"
        );
    }

    /// Ranged reads, listings by prefix (nested, partial, empty) and deletes.
    fn ranges_and_listings(b: &dyn Backend) {
        b.put("data/ab/ab01", b"0123456789").unwrap();
        b.put("data/cd/cd02", b"x").unwrap();
        b.put("datafile", b"not under data/").unwrap();
        assert_eq!(b.get_range("data/ab/ab01", 3, 4).unwrap(), b"3456");
        assert_eq!(
            b.get_range("data/ab/ab01", 6, 4).unwrap(),
            b"6789",
            "range ending at the end"
        );
        assert_eq!(b.get_range("data/ab/ab01", 0, 10).unwrap(), b"0123456789");
        assert!(
            b.get_range("data/ab/ab01", 8, 4).is_err(),
            "short range is an error"
        );
        assert!(
            b.get_range("data/ab/ab01", 20, 1).is_err(),
            "range past the end is an error"
        );
        let sorted = |mut v: Vec<ObjectInfo>| {
            v.sort_by(|a, b| a.name.cmp(&b.name));
            v
        };
        assert_eq!(
            sorted(b.list("data/").unwrap()),
            vec![
                ObjectInfo {
                    name: "data/ab/ab01".into(),
                    size: 10
                },
                ObjectInfo {
                    name: "data/cd/cd02".into(),
                    size: 1
                },
            ]
        );
        // Nested prefixes: a directory, a partial name, and nothing.
        assert_eq!(
            sorted(b.list("data/ab/").unwrap()),
            vec![ObjectInfo {
                name: "data/ab/ab01".into(),
                size: 10
            }]
        );
        assert_eq!(
            b.list("data/c").unwrap(),
            vec![ObjectInfo {
                name: "data/cd/cd02".into(),
                size: 1
            }]
        );
        assert!(b.list("data/ef/").unwrap().is_empty());
        assert!(b.list("nothing/").unwrap().is_empty());
        assert_eq!(b.list("").unwrap().len(), 5);
        b.delete("data/cd/cd02").unwrap();
        assert_eq!(b.list("data/").unwrap().len(), 1);
        assert!(!b.exists("data/cd/cd02").unwrap());
        assert!(
            matches!(
                b.delete("data/cd/cd02"),
                Ok(()) | Err(Error::NotFound { .. })
            ),
            "deleting a missing object succeeds or says NotFound"
        );
    }

    /// A big-ish object of `big_len` bytes round-trips, whole and by range; then everything is
    /// deleted.
    fn big_object(b: &dyn Backend, big_len: usize) {
        // A big-ish object round-trips, whole and by range.
        let big: Vec<u8> = (0..big_len)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        b.put("data/ef/big", &big).unwrap();
        assert_eq!(b.get("data/ef/big").unwrap(), big);
        let tail = big_len as u64 - 100;
        assert_eq!(
            b.get_range("data/ef/big", tail, 100).unwrap(),
            &big[tail as usize..]
        );
        assert_eq!(
            b.list("data/ef/").unwrap(),
            vec![ObjectInfo {
                name: "data/ef/big".into(),
                size: big_len as u64
            }]
        );
        for o in b.list("").unwrap() {
            b.delete(&o.name).unwrap();
        }
        assert!(b.list("").unwrap().is_empty());
    }
}
