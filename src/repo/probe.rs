//! Before `snap init` creates a repository on a remote store: does the server do what snap
//! needs to read the repository back? One object, written, read whole, read by ranges (the
//! way blobs and pack trailers are read), listed, deleted. A server that fails any of these is
//! named with the reason, and no repository is created on it.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::id::Id;

/// Size of the probe object: enough for ranges in the middle and at the end.
const PROBE_LEN: usize = 64 << 10;

/// What the server at `backend` failed to do; empty when it does all snap needs.
pub fn problems(backend: &dyn Backend) -> Result<Vec<String>> {
    let name = format!("snap-probe-{}", Id::random().to_hex());
    let data = probe_bytes();
    if let Err(e) = backend.put(&name, &data) {
        return Ok(vec![format!("writing an object failed: {e}")]);
    }
    let mut found = Vec::new();
    read_back(backend, &name, &data, &mut found);
    match backend.list("snap-probe-") {
        Ok(l) if l.iter().any(|o| o.name == name && o.size == data.len() as u64) => {}
        Ok(_) => found.push("a listing right after a write does not show the object (snap needs read-after-write listings, repo-format.md §9.3)".into()),
        Err(e) => found.push(format!("listing objects failed: {e}")),
    }
    match backend.delete(&name) {
        Ok(()) | Err(Error::NotFound { .. }) => {}
        Err(e) => found.push(format!("deleting an object failed: {e}")),
    }
    Ok(found)
}

/// The probe's content: every byte value, so a range at the wrong offset cannot match.
fn probe_bytes() -> Vec<u8> {
    (0..PROBE_LEN).map(|i| (i * 7 + i / 256) as u8).collect()
}

/// Read `name` back whole, in the middle and at its end; each mismatch is a problem.
fn read_back(backend: &dyn Backend, name: &str, data: &[u8], found: &mut Vec<String>) {
    match backend.get(name) {
        Ok(b) if b == data => {}
        Ok(b) => found.push(format!(
            "reading an object back gave {} bytes that differ from the {} written",
            b.len(),
            data.len()
        )),
        Err(e) => found.push(format!("reading an object back failed: {e}")),
    }
    let len = data.len() as u64;
    for (what, offset, n) in [("in the middle", 1000, 5000), ("at the end", len - 40, 40)] {
        let want = &data[offset as usize..(offset + n) as usize];
        match backend.get_range(name, offset, n) {
            Ok(b) if b == want => {}
            Ok(_) => found.push(format!(
                "a ranged read {what} (bytes {offset}..{}) returned other bytes",
                offset + n
            )),
            Err(e) => found.push(format!("a ranged read {what} failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{MemoryBackend, ObjectInfo};

    /// A store whose ranged reads ignore the offset, and whose listings lag.
    struct Broken(MemoryBackend);

    impl Backend for Broken {
        fn location(&self) -> String {
            self.0.location()
        }
        fn list(&self, _prefix: &str) -> Result<Vec<ObjectInfo>> {
            Ok(Vec::new())
        }
        fn get(&self, name: &str) -> Result<Vec<u8>> {
            self.0.get(name)
        }
        fn get_range(&self, name: &str, _offset: u64, len: u64) -> Result<Vec<u8>> {
            self.0.get_range(name, 0, len)
        }
        fn put(&self, name: &str, data: &[u8]) -> Result<()> {
            self.0.put(name, data)
        }
        fn delete(&self, name: &str) -> Result<()> {
            self.0.delete(name)
        }
        fn exists(&self, name: &str) -> Result<bool> {
            self.0.exists(name)
        }
        fn is_remote(&self) -> bool {
            true
        }
    }

    #[test]
    fn a_sound_store_has_no_problems_and_keeps_nothing() {
        let m = MemoryBackend::new();
        assert!(problems(&m).unwrap().is_empty());
        assert!(m.list("").unwrap().is_empty());
    }

    #[test]
    fn wrong_ranges_and_lagging_listings_are_named() {
        let b = Broken(MemoryBackend::new());
        let p = problems(&b).unwrap();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("ranged read in the middle"), "{p:?}");
        assert!(p[1].contains("ranged read at the end"), "{p:?}");
        assert!(p[2].contains("read-after-write listings"), "{p:?}");
        assert!(
            b.0.list("").unwrap().is_empty(),
            "the probe object is deleted"
        );
    }

    #[test]
    fn init_refuses_a_server_that_cannot_read_back() {
        let b = Broken(MemoryBackend::new());
        let opts = crate::repo::InitOptions {
            kdf: crate::crypto::keyfile::KdfParams {
                m_cost: 64,
                t_cost: 1,
                p_cost: 1,
            },
            ..Default::default()
        };
        let e = crate::repo::Repository::init(&b, b"pw", &opts).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::ServerUnsupported { .. }), "{msg}");
        assert!(
            msg.contains("refusing to create a repository")
                && msg.contains("ranged read in the middle"),
            "{msg}"
        );
        assert!(b.0.list("").unwrap().is_empty(), "nothing was created");
    }
}
