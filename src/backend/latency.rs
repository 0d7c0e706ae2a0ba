//! A wrapper that makes another backend behave like an object store across a network: every
//! request waits `delay` before it is served (the round trip), and
//! [`Backend::get_ranges`] keeps up to `in_flight` requests going at once on threads of its
//! own, answers handed on in order. For benchmarks (a reproducible 20 ms store) and for tests
//! of the read pipeline (it records how many requests were in flight at most).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use super::{Backend, ObjectInfo, RangeRequest};
use crate::error::Result;

pub struct LatencyBackend<B> {
    inner: B,
    delay: Duration,
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl<B: Backend> LatencyBackend<B> {
    pub fn new(inner: B, delay: Duration) -> Self {
        LatencyBackend {
            inner,
            delay,
            now: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// The most requests that were being served at one time so far.
    pub fn peak_in_flight(&self) -> usize {
        self.peak.load(Relaxed)
    }

    /// Run `f` as one request: counted in flight, after the delay.
    fn request<T>(&self, f: impl FnOnce() -> T) -> T {
        let n = self.now.fetch_add(1, Relaxed) + 1;
        self.peak.fetch_max(n, Relaxed);
        std::thread::sleep(self.delay);
        let out = f();
        self.now.fetch_sub(1, Relaxed);
        out
    }
}

impl<B: Backend> Backend for LatencyBackend<B> {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.request(|| self.inner.list(prefix))
    }
    fn get(&self, name: &str) -> Result<Vec<u8>> {
        self.request(|| self.inner.get(name))
    }
    fn get_bounded(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        self.request(|| self.inner.get_bounded(name, limit))
    }
    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.request(|| self.inner.get_range(name, offset, len))
    }
    /// Up to `in_flight` requests at once, each on a thread of its own; answers in order.
    fn get_ranges(
        &self,
        requests: &mut dyn Iterator<Item = RangeRequest>,
        in_flight: usize,
        sink: &mut dyn FnMut(RangeRequest, Result<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        let n = in_flight.max(1);
        std::thread::scope(|scope| {
            let mut running = VecDeque::new();
            loop {
                while running.len() < n {
                    let Some(r) = requests.next() else { break };
                    running.push_back(scope.spawn(move || {
                        let got = self.get_range(&r.name, r.offset, r.len);
                        (r, got)
                    }));
                }
                let Some(first) = running.pop_front() else {
                    return Ok(());
                };
                let (r, got) = first.join().expect("a read thread does not panic");
                sink(r, got)?;
            }
        })
    }
    fn put(&self, name: &str, data: &[u8]) -> Result<()> {
        self.request(|| self.inner.put(name, data))
    }
    fn put_new(&self, name: &str, data: &[u8]) -> Result<bool> {
        self.request(|| self.inner.put_new(name, data))
    }
    fn delete(&self, name: &str) -> Result<()> {
        self.request(|| self.inner.delete(name))
    }
    fn exists(&self, name: &str) -> Result<bool> {
        self.request(|| self.inner.exists(name))
    }
    fn is_remote(&self) -> bool {
        true
    }
}
