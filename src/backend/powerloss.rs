//! A wrapper that simulates a power cut, for tests. Writes (put, conditional put, delete,
//! removal of a temporary file) are numbered from 0 across every backend sharing one
//! [`Power`]; when write number `k` starts, the power is cut: that write is lost, lands without
//! its caller learning it, or (over a local directory) leaves a torn `.tmp-*` file beside its
//! target, as [`CutMode`] says; then every later operation, read or write, fails. Writes that
//! returned before the cut stay: [`Backend::put`] returning means the object is durable.
//!
//! A hook ([`Power::on_cut`]) runs at the instant of the cut, so a test can take what local
//! state (the index cache) looked like then.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{Backend, ObjectInfo};
use crate::error::{Error, Result};

/// What happens to the write in progress when the power is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutMode {
    /// It never reaches the disk.
    Lost,
    /// It reaches the disk, but its caller sees a failure.
    Landed,
    /// A put leaves half its bytes in a `.tmp-*` file beside its target (a local directory
    /// given with [`PowerLossBackend::with_local_root`]; elsewhere the write is lost).
    Torn,
}

type Hook = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct State {
    writes: usize,
    cut_at: Option<(usize, CutMode)>,
    cut: bool,
    hook: Option<Hook>,
    /// Names of the objects whose put reached the store.
    stored: Vec<String>,
}

/// The power supply shared by the backends of one simulated machine.
#[derive(Default)]
pub struct Power {
    state: Mutex<State>,
}

/// What a write about to start must do.
enum Fate {
    Proceed,
    Cut(CutMode),
}

impl Power {
    /// Power that never fails (counts the writes: see [`Power::writes`]).
    pub fn steady() -> Arc<Power> {
        Arc::new(Power::default())
    }

    /// Power that is cut when write number `k` (0-based) starts.
    pub fn cut_at(k: usize, mode: CutMode) -> Arc<Power> {
        let p = Power::default();
        p.state.lock().unwrap().cut_at = Some((k, mode));
        Arc::new(p)
    }

    /// Run `f` at the instant of the cut (before the failing write returns).
    pub fn on_cut(&self, f: impl FnOnce() + Send + 'static) {
        self.state.lock().unwrap().hook = Some(Box::new(f));
    }

    /// Writes started so far (including the one the cut interrupted).
    pub fn writes(&self) -> usize {
        self.state.lock().unwrap().writes
    }

    /// Names of the objects whose put reached the store (those that returned, and the one the
    /// cut interrupted if it landed), in order.
    pub fn stored(&self) -> Vec<String> {
        self.state.lock().unwrap().stored.clone()
    }

    fn record(&self, name: &str) {
        self.state.lock().unwrap().stored.push(name.to_string());
    }

    /// Whether the power has been cut.
    pub fn is_cut(&self) -> bool {
        self.state.lock().unwrap().cut
    }

    fn check(&self, name: &str) -> Result<()> {
        if self.is_cut() {
            return Err(dead(name));
        }
        Ok(())
    }

    /// Called as a write starts. The hook runs outside the lock.
    fn start_write(&self, name: &str) -> Result<Fate> {
        let mut s = self.state.lock().unwrap();
        if s.cut {
            return Err(dead(name));
        }
        let n = s.writes;
        s.writes += 1;
        match s.cut_at {
            Some((k, mode)) if k == n => {
                s.cut = true;
                let hook = s.hook.take();
                drop(s);
                if let Some(h) = hook {
                    h();
                }
                Ok(Fate::Cut(mode))
            }
            _ => Ok(Fate::Proceed),
        }
    }
}

fn dead(name: &str) -> Error {
    Error::Backend {
        path: name.into(),
        error: std::io::Error::other("the power was cut (simulated)"),
    }
}

pub struct PowerLossBackend<B> {
    inner: B,
    power: Arc<Power>,
    local_root: Option<PathBuf>,
}

impl<B: Backend> PowerLossBackend<B> {
    pub fn new(inner: B, power: Arc<Power>) -> Self {
        PowerLossBackend {
            inner,
            power,
            local_root: None,
        }
    }

    /// The inner backend is a local directory at `root`: a torn put leaves a `.tmp-*` file.
    pub fn with_local_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.local_root = Some(root.into());
        self
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Leave half of `data` in a temporary file beside `name`, as an interrupted local put does.
    fn tear(&self, name: &str, data: &[u8]) {
        let Some(root) = &self.local_root else { return };
        let target = root.join(name);
        let dir = target.parent().unwrap_or(Path::new("."));
        let leaf = target.file_name().unwrap_or_default().to_string_lossy();
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(
            dir.join(format!(".tmp-cut-{leaf}")),
            &data[..data.len() / 2],
        );
    }

    /// A write `op` under the power's rules; `data` is what a put would tear.
    fn write<T>(&self, name: &str, data: &[u8], op: impl FnOnce() -> Result<T>) -> Result<T> {
        match self.power.start_write(name)? {
            Fate::Proceed => op(),
            Fate::Cut(CutMode::Landed) => {
                let _ = op();
                Err(dead(name))
            }
            Fate::Cut(CutMode::Torn) => {
                self.tear(name, data);
                Err(dead(name))
            }
            Fate::Cut(CutMode::Lost) => Err(dead(name)),
        }
    }
}

impl<B: Backend> Backend for PowerLossBackend<B> {
    fn location(&self) -> String {
        format!("powerloss:{}", self.inner.location())
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.power.check(prefix)?;
        self.inner.list(prefix)
    }
    fn get(&self, name: &str) -> Result<Vec<u8>> {
        self.power.check(name)?;
        self.inner.get(name)
    }
    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.power.check(name)?;
        self.inner.get_range(name, offset, len)
    }
    fn put(&self, name: &str, data: &[u8]) -> Result<()> {
        self.write(name, data, || {
            self.inner.put(name, data)?;
            self.power.record(name);
            Ok(())
        })
    }
    fn put_new(&self, name: &str, data: &[u8]) -> Result<bool> {
        self.write(name, data, || {
            let new = self.inner.put_new(name, data)?;
            if new {
                self.power.record(name);
            }
            Ok(new)
        })
    }
    fn delete(&self, name: &str) -> Result<()> {
        self.write(name, &[], || self.inner.delete(name))
    }
    fn exists(&self, name: &str) -> Result<bool> {
        self.power.check(name)?;
        self.inner.exists(name)
    }
    fn counts(&self) -> Option<super::RequestCounts> {
        self.inner.counts()
    }
    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }
    fn leftover_temporaries(&self, min_age: std::time::Duration) -> Result<Vec<ObjectInfo>> {
        self.power.check("")?;
        self.inner.leftover_temporaries(min_age)
    }
    fn remove_temporary(&self, name: &str) -> Result<()> {
        self.write(name, &[], || self.inner.remove_temporary(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;

    #[test]
    fn contract_while_the_power_holds() {
        let b = PowerLossBackend::new(MemoryBackend::new(), Power::steady());
        super::super::contract::check(&b);
    }

    #[test]
    fn the_cut_write_and_everything_after_fail() {
        for (mode, kept) in [(CutMode::Lost, false), (CutMode::Landed, true)] {
            let power = Power::cut_at(1, mode);
            let hit = Arc::new(Mutex::new(false));
            let h = hit.clone();
            power.on_cut(move || *h.lock().unwrap() = true);
            let b = PowerLossBackend::new(MemoryBackend::new(), power.clone());
            b.put("a", b"1").unwrap();
            assert!(b.put("b", b"2").is_err());
            assert!(*hit.lock().unwrap() && power.is_cut());
            assert!(b.get("a").is_err() && b.list("").is_err() && b.put("c", b"3").is_err());
            assert_eq!(b.inner().exists("b").unwrap(), kept);
            assert!(b.inner().exists("a").unwrap() && !b.inner().exists("c").unwrap());
            assert_eq!(power.writes(), 2);
            let stored: &[&str] = if kept { &["a", "b"] } else { &["a"] };
            assert_eq!(power.stored(), stored);
        }
    }

    #[test]
    fn a_torn_local_put_leaves_a_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let local = crate::backend::LocalBackend::new(dir.path());
        let b = PowerLossBackend::new(local, Power::cut_at(0, CutMode::Torn))
            .with_local_root(dir.path());
        assert!(b.put("data/ab/ab01", b"0123456789").is_err());
        assert!(b.inner().list("").unwrap().is_empty());
        let left = std::fs::read(dir.path().join("data/ab/.tmp-cut-ab01")).unwrap();
        assert_eq!(left, b"01234");
    }
}
