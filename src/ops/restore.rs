//! `snap restore`: write a snapshot's entries into a directory, byte-exact, with modes, mtimes
//! and (as root) ownership. Directories first, files in parallel, symlinks last (so no link can
//! redirect a later write), directory metadata deepest-first at the end.

use std::fs;
use std::io::{Seek, Write};
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
    let at = |e: &Entry| target.join(crate::snapshot::name::to_os(&e.path));
    // Every entry is tried, whatever happens to the others (a path too long for this system,
    // a damaged chunk); each failure is reported at the end.
    let mut failed = Vec::new();
    let mut note = |e: &Entry, r: Result<()>| match r {
        Ok(()) => true,
        Err(err) => {
            failed.push((e.path.clone(), err.to_string()));
            false
        }
    };

    for e in entries.iter().filter(|e| e.kind == EntryKind::Dir) {
        if note(e, restore_dir(&at(e), opts.overwrite)) {
            summary.dirs += 1;
        }
    }
    let files: Vec<&&Entry> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .collect();
    let results: Vec<(&Entry, Result<u64>)> = files
        .par_iter()
        .map(|e| {
            progress.item(&e.path);
            let r = restore_file(repo, e, &at(e), opts.overwrite, is_root, progress);
            (**e, r)
        })
        .collect();
    for (e, r) in results {
        if let Ok(n) = r {
            summary.bytes += n;
            summary.files += 1;
        } else {
            note(e, r.map(|_| ()));
        }
    }
    for e in entries.iter().filter(|e| e.kind == EntryKind::Symlink) {
        if note(e, restore_symlink(&at(e), e, opts.overwrite, is_root)) {
            summary.symlinks += 1;
        }
    }
    for e in entries.iter().rev().filter(|e| e.kind == EntryKind::Dir) {
        let p = at(e);
        if p.is_dir() {
            note(e, set_meta(&p, e, is_root, false));
        }
    }
    progress.finish();
    if !failed.is_empty() {
        return Err(Error::RestoreIncomplete {
            restored: summary.files,
            failed,
        });
    }
    Ok(summary)
}

fn restore_dir(p: &Path, overwrite: bool) -> Result<()> {
    if overwrite && p.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
        fs::remove_file(p).map_err(|err| Error::io(p, err))?;
    }
    fs::create_dir_all(p).map_err(|err| Error::io(p, err))
}

fn restore_symlink(p: &Path, e: &Entry, overwrite: bool, is_root: bool) -> Result<()> {
    if let Some(dir) = p.parent() {
        fs::create_dir_all(dir).map_err(|err| Error::io(dir, err))?;
    }
    if overwrite && p.symlink_metadata().is_ok() {
        remove_any(p)?;
    }
    let t = crate::snapshot::name::to_os(e.target.as_deref().unwrap_or_default());
    std::os::unix::fs::symlink(&t, p).map_err(|err| Error::io(p, err))?;
    set_meta(p, e, is_root, true)
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

/// Restore one file: written under a temporary name beside its final one (`.<name>.snap-tmp-…`),
/// given its metadata, and renamed into place only once complete, so a failed file never
/// appears under its name half written (the temporary file is removed). All-zero chunks become
/// holes: a sparse file comes back sparse.
fn restore_file(
    repo: &Repository,
    e: &Entry,
    p: &Path,
    overwrite: bool,
    is_root: bool,
    progress: &dyn Progress,
) -> Result<u64> {
    let dir = p.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir).map_err(|err| Error::io(dir, err))?;
    if overwrite && p.symlink_metadata().is_ok_and(|m| !m.is_file()) {
        remove_any(p)?;
    }
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.snap-tmp-{:08x}",
        getrandom::u32().unwrap_or(0)
    ));
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|err| Error::io(&tmp, err))?;
    let done = write_content(repo, e, f, &tmp, progress)
        .and_then(|n| set_meta(&tmp, e, is_root, false).map(|_| n))
        .and_then(|n| {
            fs::rename(&tmp, p)
                .map(|_| n)
                .map_err(|err| Error::io(p, err))
        });
    if done.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    done
}

/// Write `e`'s chunks into `f` (decoding batch k+1 in parallel while batch k is written);
/// all-zero chunks are skipped over, leaving holes.
fn write_content(
    repo: &Repository,
    e: &Entry,
    mut f: fs::File,
    p: &Path,
    progress: &dyn Progress,
) -> Result<u64> {
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
                    if d.iter().all(|&b| b == 0) {
                        f.seek(std::io::SeekFrom::Current(d.len() as i64))
                            .map_err(|err| Error::io(p, err))?;
                    } else {
                        f.write_all(&d).map_err(|err| Error::io(p, err))?;
                    }
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
    // A trailing hole needs the length set; then the bytes are made durable.
    f.set_len(written).map_err(|err| Error::io(p, err))?;
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
