//! `snap repair index`: rebuild the local index cache from the pack trailers alone.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::index::Index;
use crate::repo::Repository;

/// What [`repair_index`] did.
#[derive(Debug, Clone, Serialize)]
pub struct RepairIndexReport {
    pub path: PathBuf,
    pub packs: u64,
    pub chunks: u64,
    /// Packs whose trailer could not be read (storage name, reason); their chunks are not indexed.
    pub unreadable: Vec<(String, String)>,
    /// The file was damaged beyond what redb opens, and was deleted and created anew.
    pub recreated: bool,
}

/// Rebuild the local index at `path` from the pack trailers alone. Fails with
/// [`Error::IndexBusy`] when another process has the index open.
pub fn repair_index(repo: &Repository, path: &Path) -> Result<RepairIndexReport> {
    let id = &repo.config().id;
    let attempt = || -> Result<(Index, crate::index::SyncReport)> {
        let idx = Index::open(path, id)?;
        if idx.is_temporary() {
            return Err(Error::IndexBusy {
                path: path.to_path_buf(),
            });
        }
        let r = idx.rebuild(&**repo.backend(), repo.key())?;
        Ok((idx, r))
    };
    let (idx, r, recreated) = match attempt() {
        Ok((idx, r)) => (idx, r, false),
        Err(Error::Index(_)) => {
            // Opened, but its pages are damaged: start from an empty file.
            std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
            let (idx, r) = attempt()?;
            (idx, r, true)
        }
        Err(e) => return Err(e),
    };
    Ok(RepairIndexReport {
        path: path.to_path_buf(),
        packs: idx.packs()?.len() as u64,
        chunks: idx.chunk_count()?,
        unreadable: r.unreadable,
        recreated,
    })
}
