//! A bounded cache of decoded chunks (least recently used first out, bounded by bytes). A
//! chunk being loaded is loaded once: other readers of it wait for that load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use lru::LruCache;

use crate::error::{Error, Result};
use crate::id::Id;

type Loaded = std::result::Result<Arc<Vec<u8>>, String>;

#[derive(Default)]
struct Slot {
    data: OnceLock<Loaded>,
    /// Its bytes are counted in [`Inner::bytes`].
    counted: AtomicBool,
}

impl Slot {
    fn len(&self) -> u64 {
        match self.data.get() {
            Some(Ok(d)) => d.len() as u64,
            _ => 0,
        }
    }
}

struct Inner {
    lru: LruCache<Id, Arc<Slot>>,
    bytes: u64,
}

pub struct ChunkCache {
    inner: Mutex<Inner>,
    budget: u64,
}

impl ChunkCache {
    /// A cache holding at most about `budget` bytes of plaintext (always at least one chunk).
    pub fn new(budget: u64) -> ChunkCache {
        ChunkCache {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            budget,
        }
    }

    /// Bytes of plaintext held.
    pub fn bytes(&self) -> u64 {
        self.inner.lock().unwrap().bytes
    }

    /// Whether `id` is held or being loaded.
    pub fn contains(&self, id: &Id) -> bool {
        self.inner.lock().unwrap().lru.contains(id)
    }

    /// The chunk `id`, from the cache or from `load` (run at most once at a time per chunk; a
    /// failed load is not cached).
    pub fn get(&self, id: &Id, load: impl FnOnce() -> Result<Vec<u8>>) -> Result<Arc<Vec<u8>>> {
        let slot = {
            let mut inner = self.inner.lock().unwrap();
            match inner.lru.get(id) {
                Some(s) => s.clone(),
                None => {
                    let s = Arc::new(Slot::default());
                    inner.lru.put(*id, s.clone());
                    s
                }
            }
        };
        let mut own_error = None;
        let mut loaded_here = false;
        let r = slot.data.get_or_init(|| {
            loaded_here = true;
            load().map(Arc::new).map_err(|e| {
                let msg = e.to_string();
                own_error = Some(e);
                msg
            })
        });
        match r {
            Ok(d) => {
                let d = d.clone();
                if loaded_here {
                    self.account(id, &slot);
                }
                Ok(d)
            }
            Err(msg) => {
                let mut inner = self.inner.lock().unwrap();
                if inner.lru.peek(id).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                    inner.lru.pop(id);
                }
                drop(inner);
                Err(own_error.unwrap_or_else(|| {
                    Error::corrupt(format!("chunk {}", id.short()), msg.clone())
                }))
            }
        }
    }

    /// Count a freshly loaded slot (if it is still the cached one) and evict down to the budget.
    fn account(&self, id: &Id, slot: &Arc<Slot>) {
        let mut inner = self.inner.lock().unwrap();
        if !inner.lru.peek(id).is_some_and(|s| Arc::ptr_eq(s, slot))
            || slot.counted.swap(true, Ordering::Relaxed)
        {
            return;
        }
        inner.bytes += slot.len();
        while inner.bytes > self.budget && inner.lru.len() > 1 {
            let Some((_, old)) = inner.lru.pop_lru() else {
                break;
            };
            if old.counted.load(Ordering::Relaxed) {
                inner.bytes -= old.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn caches_evicts_by_bytes_and_does_not_cache_errors() {
        let c = ChunkCache::new(250);
        let loads = AtomicUsize::new(0);
        let get = |n: u8| {
            c.get(&Id::hash_of(&[n]), || {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok(vec![n; 100])
            })
            .unwrap()
        };
        assert_eq!(*get(1), vec![1; 100]);
        get(1);
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        get(2);
        get(1); // 1 is now the most recently used
        get(3); // over budget: 2 goes
        assert_eq!(c.bytes(), 200);
        assert!(c.contains(&Id::hash_of(&[1])) && !c.contains(&Id::hash_of(&[2])));
        get(2);
        assert_eq!(loads.load(Ordering::SeqCst), 4);

        let id = Id::hash_of(b"bad");
        assert!(c.get(&id, || Err(Error::Invalid("boom".into()))).is_err());
        assert!(!c.contains(&id));
        assert_eq!(*c.get(&id, || Ok(vec![9])).unwrap(), vec![9]);
    }

    #[test]
    fn concurrent_readers_load_once() {
        let c = Arc::new(ChunkCache::new(1 << 20));
        let loads = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (c, loads) = (c.clone(), loads.clone());
                std::thread::spawn(move || {
                    c.get(&Id::hash_of(b"x"), || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        Ok(vec![1; 10])
                    })
                    .unwrap()
                    .len()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 10);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }
}
