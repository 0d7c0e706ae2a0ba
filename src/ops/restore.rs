//! `snap restore`: write a snapshot's entries into a directory, byte-exact, with modes, mtimes
//! and (as root) ownership. Directories first, files in parallel, symlinks last (so no link can
//! redirect a later write), directory metadata deepest-first at the end.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::{Entry, EntryKind, Snapshot, Tree};

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub target: PathBuf,
    /// Restore only these paths (and what lies below them). Empty = everything.
    pub includes: Vec<String>,
    /// Allow a non-empty target; existing entries at restored paths are replaced.
    pub overwrite: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestoreSummary {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
}

/// Chunks decoded in parallel per batch within one file.
const BATCH: usize = 16;

/// Entries of `tree` selected by `includes` (plus the directories above them).
pub fn select<'t>(tree: &'t Tree, includes: &[String], snapshot: &str) -> Result<Vec<&'t Entry>> {
    if includes.is_empty() {
        return Ok(tree.entries.iter().collect());
    }
    let incs: Vec<String> = includes
        .iter()
        .map(|i| i.trim_matches('/').to_string())
        .collect();
    for inc in &incs {
        if tree.get(inc).is_none() {
            return Err(Error::PathNotInSnapshot {
                snapshot: snapshot.into(),
                path: inc.clone(),
            });
        }
    }
    Ok(tree
        .entries
        .iter()
        .filter(|e| {
            incs.iter().any(|inc| {
                crate::snapshot::tree::is_under(&e.path, inc)
                    || (e.kind == EntryKind::Dir && crate::snapshot::tree::is_under(inc, &e.path))
            })
        })
        .collect())
}

pub fn restore(
    repo: &Repository,
    snap: &Snapshot,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreSummary> {
    let tree = repo.load_tree(&snap.manifest)?;
    let entries = select(&tree, &opts.includes, &snap.id.short())?;
    prepare_target(&opts.target, opts.overwrite)?;
    let target = fs::canonicalize(&opts.target).map_err(|e| Error::io(&opts.target, e))?;
    let total: u64 = entries.iter().map(|e| e.size).sum();
    progress.start("restore", Some(total));
    let is_root = unsafe { libc::geteuid() } == 0;
    let mut summary = RestoreSummary::default();

    for e in entries.iter().filter(|e| e.kind == EntryKind::Dir) {
        let p = target.join(&e.path);
        if opts.overwrite && p.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
            fs::remove_file(&p).map_err(|err| Error::io(&p, err))?;
        }
        fs::create_dir_all(&p).map_err(|err| Error::io(&p, err))?;
        summary.dirs += 1;
    }

    let files: Vec<&&Entry> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .collect();
    let results: Vec<Result<u64>> = files
        .par_iter()
        .map(|e| {
            progress.item(&e.path);
            let p = target.join(&e.path);
            let n = restore_file(repo, e, &p, opts.overwrite, progress)?;
            set_meta(&p, e, is_root, false)?;
            Ok(n)
        })
        .collect();
    for r in results {
        summary.bytes += r?;
        summary.files += 1;
    }

    for e in entries.iter().filter(|e| e.kind == EntryKind::Symlink) {
        let p = target.join(&e.path);
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir).map_err(|err| Error::io(dir, err))?;
        }
        if opts.overwrite && p.symlink_metadata().is_ok() {
            remove_any(&p)?;
        }
        let t = e.target.as_deref().unwrap_or_default();
        std::os::unix::fs::symlink(t, &p).map_err(|err| Error::io(&p, err))?;
        set_meta(&p, e, is_root, true)?;
        summary.symlinks += 1;
    }

    for e in entries.iter().rev().filter(|e| e.kind == EntryKind::Dir) {
        set_meta(&target.join(&e.path), e, is_root, false)?;
    }
    progress.finish();
    Ok(summary)
}

fn prepare_target(target: &Path, overwrite: bool) -> Result<()> {
    match fs::read_dir(target) {
        Ok(mut rd) => {
            if rd.next().is_some() && !overwrite {
                return Err(Error::TargetNotEmpty(target.to_path_buf()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(target).map_err(|e| Error::io(target, e))
        }
        Err(e) => Err(Error::io(target, e)),
    }
}

fn remove_any(p: &Path) -> Result<()> {
    let m = p.symlink_metadata().map_err(|e| Error::io(p, e))?;
    let r = if m.is_dir() {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    };
    r.map_err(|e| Error::io(p, e))
}

fn restore_file(
    repo: &Repository,
    e: &Entry,
    p: &Path,
    overwrite: bool,
    progress: &dyn Progress,
) -> Result<u64> {
    if let Some(dir) = p.parent() {
        fs::create_dir_all(dir).map_err(|err| Error::io(dir, err))?;
    }
    if overwrite && p.symlink_metadata().is_ok_and(|m| !m.is_file()) {
        remove_any(p)?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)
        .map_err(|err| Error::io(p, err))?;
    // Decode batch k+1 (in parallel) while batch k is written.
    let decode = |batch: &[crate::snapshot::ChunkRef]| -> Vec<Result<Vec<u8>>> {
        batch.par_iter().map(|c| repo.read_chunk(c.id())).collect()
    };
    let batches: Vec<_> = e.chunks.chunks(BATCH).collect();
    let mut next = batches.first().map(|b| decode(b));
    let mut written = 0u64;
    for i in 0..batches.len() {
        let current = next.take().expect("decoded ahead");
        let (w, n) = rayon::join(
            || -> Result<u64> {
                let mut n = 0;
                for d in current {
                    let d = d.map_err(|err| {
                        Error::corrupt(format!("file {}", e.path), err.to_string())
                    })?;
                    f.write_all(&d).map_err(|err| Error::io(p, err))?;
                    n += d.len() as u64;
                    progress.bytes(d.len() as u64);
                }
                Ok(n)
            },
            || batches.get(i + 1).map(|b| decode(b)),
        );
        written += w?;
        next = n;
    }
    if written != e.size {
        return Err(Error::corrupt(
            format!("file {}", e.path),
            format!("{written} bytes restored, {} expected", e.size),
        ));
    }
    Ok(written)
}

fn set_meta(p: &Path, e: &Entry, is_root: bool, symlink: bool) -> Result<()> {
    if is_root {
        std::os::unix::fs::lchown(p, Some(e.uid), Some(e.gid)).map_err(|err| Error::io(p, err))?;
    }
    let t = filetime::FileTime::from_unix_time(
        e.mtime_ns.div_euclid(1_000_000_000),
        e.mtime_ns.rem_euclid(1_000_000_000) as u32,
    );
    if symlink {
        filetime::set_symlink_file_times(p, t, t).map_err(|err| Error::io(p, err))?;
    } else {
        fs::set_permissions(p, fs::Permissions::from_mode(e.mode))
            .map_err(|err| Error::io(p, err))?;
        filetime::set_file_times(p, t, t).map_err(|err| Error::io(p, err))?;
    }
    Ok(())
}
