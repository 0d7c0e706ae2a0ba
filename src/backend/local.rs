//! A repository in a local directory. Each put is atomic and durable:
//! temp file in the target directory → write → fsync → rename → fsync directory.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{Backend, ObjectInfo};
use crate::error::{Error, Result};

const TEMP_PREFIX: &str = ".tmp-";

pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> PathBuf {
        debug_assert!(!name.contains(".."));
        self.root.join(name)
    }

    fn err(&self, name: &str, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound {
                path: name.to_string(),
            }
        } else {
            Error::Backend {
                path: self.path(name).display().to_string(),
                error: e,
            }
        }
    }
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        // Walk the directory holding the prefix; filter by the full name.
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let start = self.root.join(dir_part);
        if !start.exists() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(&start).follow_links(false) {
            let entry = entry.map_err(|e| {
                let path = e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                Error::Backend {
                    path,
                    error: e.into(),
                }
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                continue;
            }
            let rel = entry.path().strip_prefix(&self.root).expect("under root");
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if !name.starts_with(prefix) {
                continue;
            }
            let size = entry
                .metadata()
                .map_err(|e| self.err(&name, e.into()))?
                .len();
            out.push(ObjectInfo { name, size });
        }
        Ok(out)
    }

    fn get(&self, name: &str) -> Result<Vec<u8>> {
        fs::read(self.path(name)).map_err(|e| self.err(name, e))
    }

    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let mut f = fs::File::open(self.path(name)).map_err(|e| self.err(name, e))?;
        // A range from a damaged index must not size the buffer beyond what the file holds.
        let size = f.metadata().map_err(|e| self.err(name, e))?.len();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(self.err(
                name,
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("range {offset}+{len} lies past the end of the object ({size} bytes)"),
                ),
            ));
        }
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| self.err(name, e))?;
        let mut buf = vec![0u8; len as usize];
        f.read_exact(&mut buf).map_err(|e| self.err(name, e))?;
        Ok(buf)
    }

    fn get_bounded(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let mut f = fs::File::open(self.path(name)).map_err(|e| self.err(name, e))?;
        let size = f.metadata().map_err(|e| self.err(name, e))?.len();
        super::check_bound(name, size, limit)?;
        let mut buf = Vec::with_capacity(size as usize);
        f.read_to_end(&mut buf).map_err(|e| self.err(name, e))?;
        super::check_bound(name, buf.len() as u64, limit)?;
        Ok(buf)
    }

    fn put(&self, name: &str, data: &[u8]) -> Result<()> {
        let path = self.path(name);
        let dir = path
            .parent()
            .expect("object has a parent dir")
            .to_path_buf();
        if !dir.exists() {
            crate::util::create_private_dir_all(&dir).map_err(|e| self.err(name, e))?;
            if let Some(up) = dir.parent() {
                fsync_dir(up).map_err(|e| self.err(name, e))?;
            }
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&dir)
            .map_err(|e| self.err(name, e))?;
        tmp.write_all(data).map_err(|e| self.err(name, e))?;
        tmp.as_file().sync_all().map_err(|e| self.err(name, e))?;
        tmp.persist(&path).map_err(|e| self.err(name, e.error))?;
        fsync_dir(&dir).map_err(|e| self.err(name, e))?;
        Ok(())
    }

    fn leftover_temporaries(&self, min_age: std::time::Duration) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(&self.root)
            .follow_links(false)
            .into_iter()
            .flatten()
        {
            if !entry.file_type().is_file()
                || !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
            {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let age = meta
                .modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default();
            if age < min_age {
                continue; // a write in progress
            }
            let rel = entry.path().strip_prefix(&self.root).expect("under root");
            out.push(ObjectInfo {
                name: rel.to_string_lossy().into_owned(),
                size: meta.len(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn remove_temporary(&self, name: &str) -> Result<()> {
        let leaf = Path::new(name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !leaf.starts_with(TEMP_PREFIX) || name.contains("..") {
            return Err(Error::Invalid(format!("{name} is not a temporary file")));
        }
        fs::remove_file(self.root.join(name)).map_err(|e| self.err(name, e))
    }

    /// Durable on return, like a put: the directory is synced, so a power loss cannot bring
    /// back a forgotten manifest after the packs it needs were deleted (repo-format.md §1).
    fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name);
        fs::remove_file(&path).map_err(|e| self.err(name, e))?;
        match path.parent() {
            Some(dir) => fsync_dir(dir).map_err(|e| self.err(name, e)),
            None => Ok(()),
        }
    }

    fn exists(&self, name: &str) -> Result<bool> {
        match fs::symlink_metadata(self.path(name)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.err(name, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        super::super::contract::check(&b);
        // No temp files left behind.
        let leftovers: Vec<_> = walkdir::WalkDir::new(dir.path())
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn temp_files_are_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.put("data/ab/x", b"1").unwrap();
        fs::write(dir.path().join("data/ab/.tmp-abc"), b"partial").unwrap();
        assert_eq!(b.list("data/").unwrap().len(), 1);
    }
}
