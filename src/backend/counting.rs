//! A wrapper that counts requests and bytes moved through another backend, so commands can
//! report what they cost on object storage (each call is one request, except multipart puts
//! and paginated listings, which the store may split further).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::{Backend, ObjectInfo};
use crate::error::Result;

/// Requests made and bytes moved so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    pub lists: u64,
    pub gets: u64,
    pub puts: u64,
    pub deletes: u64,
    pub heads: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

impl RequestCounts {
    pub fn requests(&self) -> u64 {
        self.lists + self.gets + self.puts + self.deletes + self.heads
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        RequestCounts {
            lists: self.lists - earlier.lists,
            gets: self.gets - earlier.gets,
            puts: self.puts - earlier.puts,
            deletes: self.deletes - earlier.deletes,
            heads: self.heads - earlier.heads,
            bytes_up: self.bytes_up - earlier.bytes_up,
            bytes_down: self.bytes_down - earlier.bytes_down,
        }
    }
}

#[derive(Default)]
struct Counters {
    lists: AtomicU64,
    gets: AtomicU64,
    puts: AtomicU64,
    deletes: AtomicU64,
    heads: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

pub struct CountingBackend<B> {
    inner: B,
    c: Counters,
}

impl<B: Backend> CountingBackend<B> {
    pub fn new(inner: B) -> Self {
        CountingBackend {
            inner,
            c: Counters::default(),
        }
    }
    pub fn inner(&self) -> &B {
        &self.inner
    }
}

impl<B: Backend> Backend for CountingBackend<B> {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.c.lists.fetch_add(1, Relaxed);
        self.inner.list(prefix)
    }
    fn get(&self, name: &str) -> Result<Vec<u8>> {
        self.c.gets.fetch_add(1, Relaxed);
        let v = self.inner.get(name)?;
        self.c.bytes_down.fetch_add(v.len() as u64, Relaxed);
        Ok(v)
    }
    fn get_bounded(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        self.c.gets.fetch_add(1, Relaxed);
        let v = self.inner.get_bounded(name, limit)?;
        self.c.bytes_down.fetch_add(v.len() as u64, Relaxed);
        Ok(v)
    }
    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.c.gets.fetch_add(1, Relaxed);
        let v = self.inner.get_range(name, offset, len)?;
        self.c.bytes_down.fetch_add(v.len() as u64, Relaxed);
        Ok(v)
    }
    fn get_ranges(
        &self,
        requests: &mut dyn Iterator<Item = super::RangeRequest>,
        in_flight: usize,
        sink: &mut dyn FnMut(super::RangeRequest, Result<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        let mut counted = requests.inspect(|_| {
            self.c.gets.fetch_add(1, Relaxed);
        });
        self.inner
            .get_ranges(&mut counted, in_flight, &mut |r, got| {
                if let Ok(v) = &got {
                    self.c.bytes_down.fetch_add(v.len() as u64, Relaxed);
                }
                sink(r, got)
            })
    }
    fn put(&self, name: &str, data: &[u8]) -> Result<()> {
        self.c.puts.fetch_add(1, Relaxed);
        self.inner.put(name, data)?;
        self.c.bytes_up.fetch_add(data.len() as u64, Relaxed);
        Ok(())
    }
    fn put_new(&self, name: &str, data: &[u8]) -> Result<bool> {
        self.c.puts.fetch_add(1, Relaxed);
        let created = self.inner.put_new(name, data)?;
        if created {
            self.c.bytes_up.fetch_add(data.len() as u64, Relaxed);
        }
        Ok(created)
    }
    fn delete(&self, name: &str) -> Result<()> {
        self.c.deletes.fetch_add(1, Relaxed);
        self.inner.delete(name)
    }
    fn exists(&self, name: &str) -> Result<bool> {
        self.c.heads.fetch_add(1, Relaxed);
        self.inner.exists(name)
    }
    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }
    fn leftover_temporaries(&self, min_age: std::time::Duration) -> Result<Vec<ObjectInfo>> {
        self.inner.leftover_temporaries(min_age)
    }
    fn remove_temporary(&self, name: &str) -> Result<()> {
        self.inner.remove_temporary(name)
    }
    fn counts(&self) -> Option<RequestCounts> {
        let l = |a: &AtomicU64| a.load(Relaxed);
        Some(RequestCounts {
            lists: l(&self.c.lists),
            gets: l(&self.c.gets),
            puts: l(&self.c.puts),
            deletes: l(&self.c.deletes),
            heads: l(&self.c.heads),
            bytes_up: l(&self.c.bytes_up),
            bytes_down: l(&self.c.bytes_down),
        })
    }
}
