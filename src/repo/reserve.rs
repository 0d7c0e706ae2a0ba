//! The space reserve (repo-format.md §1, §9.1): a local repository keeps [`PIECES`] objects
//! `reserve/<n>` of [`PIECE`] zero bytes each. When a lock or a deletion plan cannot be written
//! because the repository's disk is full, a command that adds no data (prune, forget, check,
//! restore, …) deletes one piece after another until the object fits. Pieces are put back,
//! as far as there is room, when the lock is released and after prune deleted packs. So a
//! full disk never stops the commands that read the repository or free space in it. Object
//! stores do not fill up: remote repositories keep no reserve.

use crate::backend::Backend;
use crate::error::{Error, Result};

pub const PREFIX: &str = "reserve/";
pub const PIECES: usize = 4;
/// 4 × 1 MiB: room for locks and the deletion plans of prunes of ~12 000 packs each.
pub const PIECE: usize = 1 << 20;

fn piece(n: usize) -> String {
    format!("{PREFIX}{n}")
}

/// Put missing pieces back while there is room (best effort); how many are there now.
pub fn ensure(backend: &dyn Backend) -> usize {
    if backend.is_remote() {
        return PIECES;
    }
    let zeros = vec![0u8; PIECE];
    (0..PIECES)
        .filter(|&n| match backend.exists(&piece(n)) {
            Ok(true) => true,
            Ok(false) => backend.put(&piece(n), &zeros).is_ok(),
            Err(_) => false,
        })
        .count()
}

/// Delete one piece; whether there was one.
fn release_one(backend: &dyn Backend) -> bool {
    if backend.is_remote() {
        return false;
    }
    (0..PIECES)
        .rev()
        .any(|n| backend.exists(&piece(n)).unwrap_or(false) && backend.delete(&piece(n)).is_ok())
}

/// Put `bytes` at `name`; on a full disk, spend reserve pieces until it fits. Returns whether
/// a piece was spent. Fails with the disk-full error when the reserve is spent too.
pub fn put_spending(backend: &dyn Backend, name: &str, bytes: &[u8]) -> Result<bool> {
    let mut spent = false;
    loop {
        match backend.put(name, bytes) {
            Ok(()) => return Ok(spent),
            Err(e) if is_disk_full(&e) && release_one(backend) => spent = true,
            Err(e) => return Err(e),
        }
    }
}

/// Whether `command` may spend the reserve: every command but those that add data (they
/// would fill the freed space and leave none for the prune that must follow).
pub fn may_spend(command: &str) -> bool {
    !(command.starts_with("backup") || command == "copy")
}

/// Whether `e` is "no space left on device" (or a quota: the same for the user).
pub fn is_disk_full(e: &Error) -> bool {
    match e {
        Error::Backend { error: source, .. } => {
            use std::io::ErrorKind::*;
            matches!(source.kind(), StorageFull | QuotaExceeded)
                || matches!(
                    source.raw_os_error(),
                    Some(libc::ENOSPC) | Some(libc::EDQUOT)
                )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;

    #[test]
    fn ensure_and_spend() {
        let b = MemoryBackend::new();
        assert!(!release_one(&b), "nothing to release yet");
        assert_eq!(ensure(&b), PIECES);
        assert_eq!(b.list(PREFIX).unwrap().len(), PIECES);
        assert!(release_one(&b));
        assert_eq!(b.list(PREFIX).unwrap().len(), PIECES - 1);
        assert_eq!(ensure(&b), PIECES);
        let full = Error::Backend {
            path: "x".into(),
            error: std::io::Error::from_raw_os_error(libc::ENOSPC),
        };
        assert!(is_disk_full(&full));
        assert!(!is_disk_full(&Error::NotFound { path: "x".into() }));
        assert!(may_spend("prune") && may_spend("restore") && !may_spend("backup db"));
    }
}
