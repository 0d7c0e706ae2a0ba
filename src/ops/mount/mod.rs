//! `snap mount`: the repository as a read-only filesystem (FUSE). [`model`] is the virtual tree
//! as plain data, [`cache`] the decoded-chunk cache, [`fs`] the filesystem calls over the
//! repository (lazy trees, refreshed listings, reads at any offset, readahead), [`fuse`] the
//! kernel adapter. The mount takes no repository lock: see repo-format.md §9.1.

pub mod cache;
pub mod fs;
pub mod fuse;
pub mod model;

pub use fs::{MountOptions, SnapFs};
pub use fuse::{
    MountSession, Unmounter, check_fuse_available, check_mountpoint, mount, unmount_lazy,
};

use std::path::Path;

use crate::error::{Error, Result};
use crate::repo::Repository;

/// Give `repo` — opened with a private cache directory, before it first used its index — a copy
/// of the index kept in `shared_cache_dir`. A mount runs for a long time: holding the shared
/// index file that long would make every backup meanwhile build a temporary index from all pack
/// trailers. Without a shared index (or while another process holds it), the private one is
/// built from the trailers on first use, as after a lost cache.
pub fn copy_shared_index(repo: &Repository, shared_cache_dir: &Path) -> Result<()> {
    let id = &repo.config().id;
    let shared = shared_cache_dir.join(id).join("index.redb");
    let private = repo.index_path();
    if !shared.is_file() || shared == private {
        return Ok(());
    }
    // Its lock, so nobody writes it while it is copied (redb itself never opens it here: an
    // open redb file differs from the closed one its checksum describes). A file that fails its
    // checksum is not copied: the private index is then built from the trailers.
    let Some(_held) = crate::index::try_lock(&shared)? else {
        return Ok(());
    };
    if crate::index::distrust(&shared).is_some() {
        return Ok(());
    }
    if let Some(dir) = private.parent() {
        crate::util::create_private_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::copy(&shared, private).map_err(|e| Error::io(private, e))?;
    // Its checksum too, so the copy is trusted (a copy without one is rebuilt).
    let sum = crate::index::sum_path(&shared);
    if sum.is_file() {
        let to = crate::index::sum_path(private);
        std::fs::copy(&sum, &to).map_err(|e| Error::io(&to, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, MemoryBackend};
    use crate::index::Index;
    use crate::snapshot::ChunkRef;
    use std::sync::Arc;

    #[test]
    fn a_mount_reads_a_private_copy_of_the_shared_index() {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let init = crate::repo::InitOptions {
            kdf: crate::crypto::keyfile::KdfParams {
                m_cost: 64,
                t_cost: 1,
                p_cost: 1,
            },
            ..Default::default()
        };
        Repository::init(&*backend, b"pw", &init).unwrap();
        let (shared, private) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let src = crate::source::ReaderSource::new("x", &b"some bytes"[..]);
        let writer = Repository::open(backend.clone(), b"pw", shared.path()).unwrap();
        let out = crate::ops::backup(
            &writer,
            crate::ops::BackupInput::Stream(Box::new(src)),
            &Default::default(),
            &crate::progress::NoProgress,
        )
        .unwrap();
        drop(writer);

        let mount = Repository::open(backend.clone(), b"pw", private.path()).unwrap();
        copy_shared_index(&mount, shared.path()).unwrap();
        let tree = mount.load_tree(&out.snapshot.manifest).unwrap();
        let chunks: Vec<ChunkRef> = tree.get("x").unwrap().chunks.clone();
        assert_eq!(mount.read_chunk(chunks[0].id()).unwrap(), b"some bytes");
        assert_eq!(
            mount.sync_report().unwrap().packs_added,
            0,
            "the copy already knew the pack"
        );
        // While the mount's index is open, the shared one is free for others.
        assert!(
            !Index::open(
                &shared.path().join(&mount.config().id).join("index.redb"),
                &mount.config().id
            )
            .unwrap()
            .is_temporary()
        );
    }
}
