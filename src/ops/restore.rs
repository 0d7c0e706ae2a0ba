//! `snap restore`: write a snapshot's entries into a directory, byte-exact, with modes, mtimes
//! and (as root) ownership. Directories first, then files — their chunks read in one pipeline
//! ([`Repository::read_chunks`]: coalesced ranged reads, many in flight, decoded on the CPU pool)
//! and written in order —, symlinks last (so no link can redirect a later write), directory
//! metadata deepest-first at the end.

use std::fs;
use std::io::{Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
    let file_entries: Vec<&Entry> = entries
        .iter()
        .copied()
        .filter(|e| e.kind == EntryKind::File)
        .collect();
    let mut files = Files {
        at: &at,
        overwrite: opts.overwrite,
        is_root,
        progress,
        results: Vec::new(),
    };
    files.restore_all(repo, &file_entries)?;
    let results = std::mem::take(&mut files.results);
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

/// The regular files of a restore, all read through one pipeline in the snapshot's order.
/// Each file is written under a temporary name beside its final one (`.<name>.snap-tmp-…`),
/// given its metadata, and renamed into place only once complete, so a failed file never
/// appears under its name half written (the temporary file is removed). All-zero chunks become
/// holes: a sparse file comes back sparse. A file that fails is recorded; the others go on.
struct Files<'a> {
    at: &'a dyn Fn(&Entry) -> PathBuf,
    overwrite: bool,
    is_root: bool,
    progress: &'a dyn Progress,
    results: Vec<(&'a Entry, Result<u64>)>,
}

/// The file being written: where, and how far.
struct Open {
    tmp: PathBuf,
    path: PathBuf,
    f: fs::File,
    written: u64,
}

impl<'a> Files<'a> {
    fn restore_all(&mut self, repo: &Repository, files: &[&'a Entry]) -> Result<()> {
        let (empty, full): (Vec<&Entry>, Vec<&Entry>) =
            files.iter().partition(|e| e.chunks.is_empty());
        for e in empty {
            let r = self.open(e).and_then(|o| self.close(e, o));
            self.results.push((e, r));
        }
        let ids = full.iter().flat_map(|e| e.chunks.iter().map(|c| c.id()));
        // (file, chunks of it still to come, its open file or None once it failed)
        let mut cur: Option<(usize, usize, Option<Open>)> = None;
        let mut next = 0usize;
        let read = repo.read_chunks(ids, &mut |_, got| {
            let (i, left, open) = cur.get_or_insert_with(|| {
                let e = full[next];
                next += 1;
                self.progress.item(&e.path);
                let o = self.open(e).map_err(|err| self.results.push((e, Err(err))));
                (next - 1, e.chunks.len(), o.ok())
            });
            let e = full[*i];
            if let Some(o) = open.as_mut()
                && let Err(err) = self.write(o, e, got)
            {
                let _ = fs::remove_file(&o.tmp);
                *open = None;
                self.results.push((e, Err(err)));
            }
            *left -= 1;
            if *left == 0 {
                if let Some(o) = open.take() {
                    let r = self.close(e, o);
                    self.results.push((e, r));
                }
                cur = None;
            }
            Ok(())
        });
        if let Some((_, _, Some(o))) = cur {
            let _ = fs::remove_file(&o.tmp);
        }
        read
    }

    /// Create `e`'s temporary file (and the directories above it).
    fn open(&self, e: &Entry) -> Result<Open> {
        let p = (self.at)(e);
        let dir = p.parent().unwrap_or(Path::new("/")).to_path_buf();
        fs::create_dir_all(&dir).map_err(|err| Error::io(&dir, err))?;
        if self.overwrite && p.symlink_metadata().is_ok_and(|m| !m.is_file()) {
            remove_any(&p)?;
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
        Ok(Open {
            tmp,
            path: p,
            f,
            written: 0,
        })
    }

    /// One chunk of `e` into its file (a hole where the chunk is all zeros).
    fn write(&self, o: &mut Open, e: &Entry, got: Result<Vec<u8>>) -> Result<()> {
        let d = got.map_err(|err| Error::corrupt(format!("file {}", e.path), err.to_string()))?;
        if d.iter().all(|&b| b == 0) {
            o.f.seek(std::io::SeekFrom::Current(d.len() as i64))
                .map_err(|err| Error::io(&o.tmp, err))?;
        } else {
            o.f.write_all(&d).map_err(|err| Error::io(&o.tmp, err))?;
        }
        o.written += d.len() as u64;
        self.progress.bytes(d.len() as u64);
        Ok(())
    }

    /// `e`'s file complete: its length and metadata set, renamed into place.
    fn close(&self, e: &Entry, o: Open) -> Result<u64> {
        let done = self.finish(e, &o);
        if done.is_err() {
            let _ = fs::remove_file(&o.tmp);
        }
        done
    }

    fn finish(&self, e: &Entry, o: &Open) -> Result<u64> {
        if o.written != e.size {
            return Err(Error::corrupt(
                format!("file {}", e.path),
                format!("{} bytes restored, {} expected", o.written, e.size),
            ));
        }
        // A trailing hole needs the length set.
        o.f.set_len(o.written)
            .map_err(|err| Error::io(&o.tmp, err))?;
        set_meta(&o.tmp, e, self.is_root, false)?;
        fs::rename(&o.tmp, &o.path).map_err(|err| Error::io(&o.path, err))?;
        Ok(o.written)
    }
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
