//! A wrapper that injects faults into another backend: fail the Nth put or get, return short
//! reads, or report a full disk. Used by tests; counts are shared across threads.

use std::sync::Mutex;

use super::{Backend, ObjectInfo};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub enum Fault {
    /// Puts number `n` and later (0-based, counting only puts whose name starts with `prefix`) fail
    /// with "no space left on device", as a full disk would.
    DiskFullFromPut { n: usize, prefix: String },
    /// Get or ranged get number `n` (0-based) fails with an I/O error.
    FailGet { n: usize },
    /// Ranged gets return one byte less than asked.
    ShortReads,
}

pub struct FaultyBackend<B> {
    inner: B,
    fault: Fault,
    puts: Mutex<usize>,
    gets: Mutex<usize>,
}

impl<B: Backend> FaultyBackend<B> {
    pub fn new(inner: B, fault: Fault) -> Self {
        FaultyBackend {
            inner,
            fault,
            puts: Mutex::new(0),
            gets: Mutex::new(0),
        }
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    fn count_get(&self, name: &str) -> Result<()> {
        let mut g = self.gets.lock().unwrap();
        let n = *g;
        *g += 1;
        if let Fault::FailGet { n: at } = self.fault
            && n == at
        {
            return Err(Error::Backend {
                path: name.into(),
                error: std::io::Error::other("injected read failure"),
            });
        }
        Ok(())
    }
}

impl<B: Backend> Backend for FaultyBackend<B> {
    fn location(&self) -> String {
        format!("faulty:{}", self.inner.location())
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.inner.list(prefix)
    }
    fn get(&self, name: &str) -> Result<Vec<u8>> {
        self.count_get(name)?;
        self.inner.get(name)
    }
    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.count_get(name)?;
        let mut v = self.inner.get_range(name, offset, len)?;
        if matches!(self.fault, Fault::ShortReads) && !v.is_empty() {
            v.pop();
        }
        Ok(v)
    }
    fn put(&self, name: &str, data: &[u8]) -> Result<()> {
        if let Fault::DiskFullFromPut { n, prefix } = &self.fault
            && name.starts_with(prefix.as_str())
        {
            let mut p = self.puts.lock().unwrap();
            let this = *p;
            *p += 1;
            if this >= *n {
                return Err(Error::Backend {
                    path: name.into(),
                    error: std::io::Error::from_raw_os_error(libc::ENOSPC),
                });
            }
        }
        self.inner.put(name, data)
    }
    fn delete(&self, name: &str) -> Result<()> {
        self.inner.delete(name)
    }
    fn exists(&self, name: &str) -> Result<bool> {
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
}
