//! An in-memory backend for tests.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::{Backend, ObjectInfo};
use crate::error::{Error, Result};

#[derive(Default)]
pub struct MemoryBackend {
    objects: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl MemoryBackend {
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    /// Replace an object's bytes in place (for corruption tests).
    pub fn tamper(&self, name: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let mut m = self.objects.write().unwrap();
        f(m.get_mut(name).expect("object exists"));
    }
}

fn not_found(name: &str) -> Error {
    Error::NotFound {
        path: name.to_string(),
    }
}

impl Backend for MemoryBackend {
    fn location(&self) -> String {
        "memory:".into()
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let m = self.objects.read().unwrap();
        Ok(m.range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| ObjectInfo {
                name: k.clone(),
                size: v.len() as u64,
            })
            .collect())
    }
    fn get(&self, name: &str) -> Result<Vec<u8>> {
        self.objects
            .read()
            .unwrap()
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))
    }
    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let m = self.objects.read().unwrap();
        let v = m.get(name).ok_or_else(|| not_found(name))?;
        let end = offset.saturating_add(len);
        let (s, e) = (offset as usize, end.min(usize::MAX as u64) as usize);
        if end > v.len() as u64 {
            return Err(Error::Backend {
                path: name.into(),
                error: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "range past end of object",
                ),
            });
        }
        Ok(v[s..e].to_vec())
    }
    fn put(&self, name: &str, data: &[u8]) -> Result<()> {
        self.objects
            .write()
            .unwrap()
            .insert(name.to_string(), data.to_vec());
        Ok(())
    }
    fn delete(&self, name: &str) -> Result<()> {
        self.objects
            .write()
            .unwrap()
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| not_found(name))
    }
    fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.objects.read().unwrap().contains_key(name))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn contract() {
        super::super::contract::check(&super::MemoryBackend::new());
    }
}
