//! The kernel side: [`SnapFs`] as a read-only FUSE filesystem (the `fuser` crate, mounting
//! through `fusermount3`), plus the checks that turn a failed mount into a clear message.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEntry, ReplyOpen, ReplyStatfs, Request,
};

use super::fs::{KernelCache, SnapFs};
use super::model::Attr;
use crate::error::{Error, Result};
use crate::snapshot::EntryKind;

/// Attributes of snapshot content never change: the kernel may keep them long.
const CONTENT_TTL: Duration = Duration::from_secs(3600);
/// The listings (`snapshots/`, `latest`, `tags/`, `hosts/`) change when backups run.
const LISTING_TTL: Duration = Duration::from_secs(1);
/// Kernel read requests and readahead, as large as the kernel allows.
const MAX_READAHEAD: u32 = 1 << 20;
/// Block size reported by `stat`: tools like `cp` size their buffers from it.
const BLKSIZE: u32 = 1 << 20;
/// Threads serving kernel requests.
const THREADS: usize = 4;

struct Adapter {
    fs: Arc<SnapFs>,
    /// The kernel accepts ENOSYS from `open` as "no open needed" (FUSE_NO_OPEN_SUPPORT): it
    /// then opens files without asking (keeping their page cache) and sends no releases.
    no_open: bool,
}

fn system_time(ns: i64) -> SystemTime {
    let d = Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH.checked_sub(d).unwrap_or(UNIX_EPOCH)
    }
}

fn file_type(k: EntryKind) -> FileType {
    match k {
        EntryKind::Dir => FileType::Directory,
        EntryKind::File => FileType::RegularFile,
        EntryKind::Symlink => FileType::Symlink,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    let t = system_time(a.mtime_ns);
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: t,
        mtime: t,
        ctime: t,
        crtime: t,
        kind: file_type(a.kind),
        perm: (a.mode & 0o7777) as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: BLKSIZE,
        flags: 0,
    }
}

impl Adapter {
    fn ttl(&self, ino: u64) -> Duration {
        if self.fs.is_dynamic(ino) {
            LISTING_TTL
        } else {
            CONTENT_TTL
        }
    }

    /// Report an error (the kernel only gets EIO) and return the errno.
    fn fail(&self, what: &str, e: Error) -> Errno {
        self.fs.progress().warn(&format!("{what}: {e}"));
        Errno::EIO
    }
}

impl Filesystem for Adapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        if let Err(max) = config.set_max_readahead(MAX_READAHEAD) {
            let _ = config.set_max_readahead(max);
        }
        let _ = config.set_max_background(64);
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_PARALLEL_DIROPS);
        // Listings carry the attributes of their entries (`cp -r`, `ls -l`, `find` need no
        // lookup per entry).
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_DO_READDIRPLUS);
        self.no_open = config
            .add_capabilities(fuser::InitFlags::FUSE_NO_OPEN_SUPPORT)
            .is_ok();
        // The kernel may keep link targets (paths through `latest` then cost no readlink
        // each): a refresh that moves a link invalidates it (`SnapFs::refresh`).
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_CACHE_SYMLINKS);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        // Stored names escape bytes that are not UTF-8 (repo-format.md §7.2).
        let name = crate::snapshot::name::from_os(name);
        let name = name.as_str();
        match self.fs.lookup(parent.0, name) {
            Ok(Some(a)) => reply.entry(&self.ttl(a.ino), &file_attr(&a), Generation(0)),
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) => reply.error(self.fail(&format!("lookup of {name:?}"), e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.fs.getattr(ino.0) {
            Some(a) => reply.attr(&self.ttl(ino.0), &file_attr(&a)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.fs.readlink(ino.0) {
            Some(t) => reply.data(crate::snapshot::name::to_os(&t).as_encoded_bytes()),
            None => reply.error(Errno::EINVAL),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        if !self.fs.is_file(ino.0) {
            return reply.error(Errno::EISDIR);
        }
        if self.no_open {
            // No open or release round trip per file from now on; the kernel then keeps the
            // page cache across opens (FOPEN_KEEP_CACHE), as below.
            return reply.error(Errno::ENOSYS);
        }
        // Snapshot content never changes: keep the page cache across opens.
        reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.fs.read(ino.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => {
                reply.error(self.fail(&format!("read of inode {} at offset {offset}", ino.0), e))
            }
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.getattr(ino.0) {
            Some(a) if a.kind == EntryKind::Dir => reply.opened(FileHandle(0), FopenFlags::empty()),
            Some(_) => reply.error(Errno::ENOTDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.fs.readdir(ino.0, offset == 0) {
            Ok(Some(entries)) => {
                for (i, e) in entries.iter().enumerate().skip(offset as usize) {
                    if reply.add(
                        INodeNo(e.ino),
                        i as u64 + 1,
                        file_type(e.kind),
                        crate::snapshot::name::to_os(&e.name),
                    ) {
                        break;
                    }
                }
                reply.ok()
            }
            Ok(None) => reply.error(Errno::ENOTDIR),
            Err(e) => reply.error(self.fail(&format!("listing of inode {}", ino.0), e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        match self.fs.readdir(ino.0, offset == 0) {
            Ok(Some(entries)) => {
                for (i, e) in entries.iter().enumerate().skip(offset as usize) {
                    let Some(a) = self.fs.getattr(e.ino) else {
                        continue;
                    };
                    if reply.add(
                        INodeNo(e.ino),
                        i as u64 + 1,
                        crate::snapshot::name::to_os(&e.name),
                        &self.ttl(e.ino),
                        &file_attr(&a),
                        Generation(0),
                    ) {
                        break;
                    }
                }
                reply.ok()
            }
            Ok(None) => reply.error(Errno::ENOTDIR),
            Err(e) => reply.error(self.fail(&format!("listing of inode {}", ino.0), e)),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(0, 0, 0, 0, 0, BLKSIZE, 255, BLKSIZE);
    }
}

/// The kernel's caches of the mount, through FUSE notifications.
struct Notifications(fuser::Notifier);

impl KernelCache for Notifications {
    fn store(&self, ino: u64, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.store(INodeNo(ino), offset, data)
    }

    fn invalidate(&self, ino: u64) -> std::io::Result<()> {
        // Offset 0 and length 0: attributes and all cached data (a link's target).
        self.0.inval_inode(INodeNo(ino), 0, 0)
    }
}

/// The mountpoint must be an existing, empty directory.
pub fn check_mountpoint(p: &Path) -> Result<()> {
    let meta = std::fs::metadata(p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Invalid(format!(
            "mountpoint {} does not exist; create it first (mkdir -p {0})",
            p.display()
        )),
        _ => Error::io(p, e),
    })?;
    if !meta.is_dir() {
        return Err(Error::Invalid(format!(
            "mountpoint {} is not a directory",
            p.display()
        )));
    }
    let mut entries = std::fs::read_dir(p).map_err(|e| Error::io(p, e))?;
    if entries.next().is_some() {
        return Err(Error::Invalid(format!(
            "mountpoint {} is not empty (or something is already mounted there); use an empty directory",
            p.display()
        )));
    }
    Ok(())
}

/// FUSE needs `/dev/fuse` and the `fusermount3` helper.
pub fn check_fuse_available() -> Result<()> {
    const INSTALL: &str = "install fuse3 (apt install fuse3)";
    if !Path::new("/dev/fuse").exists() {
        return Err(Error::Invalid(format!(
            "FUSE is not available: /dev/fuse is missing (load the fuse kernel module, or in a container pass --device /dev/fuse); {INSTALL}"
        )));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain([std::path::PathBuf::from("/bin")])
        .any(|d| d.join("fusermount3").is_file());
    if !found {
        return Err(Error::Invalid(format!(
            "FUSE is not available: fusermount3 was not found; {INSTALL}"
        )));
    }
    Ok(())
}

/// A mounted filesystem, not yet serving: [`MountSession::run`] serves requests until it is
/// unmounted (by [`Unmounter::unmount`] or `fusermount3 -u`).
pub struct MountSession {
    session: fuser::Session<Adapter>,
    mountpoint: std::path::PathBuf,
}

/// Unmounts a [`MountSession`] from another thread (e.g. on Ctrl-C).
pub struct Unmounter(fuser::SessionUnmounter, std::path::PathBuf);

impl Unmounter {
    /// Unmount; fails (and cannot be retried: use [`unmount_lazy`]) while the mount is busy.
    pub fn unmount(&mut self) -> Result<()> {
        self.0.unmount().map_err(|e| Error::io(&self.1, e))
    }
}

/// Detach the mount at `mountpoint` now, even while it is busy (`fusermount3 -u -z`): it goes
/// away for good when the last open file or shell inside it is closed, and then the serving
/// [`MountSession::run`] returns.
pub fn unmount_lazy(mountpoint: &Path) -> Result<()> {
    let out = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg("-z")
        .arg(mountpoint)
        .output()
        .map_err(|e| Error::io("fusermount3", e))?;
    if !out.status.success() {
        return Err(Error::ToolFailed {
            tool: "fusermount3 -u -z".into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Check the mountpoint and FUSE, then mount `fs` read-only at `mountpoint`.
pub fn mount(fs: SnapFs, mountpoint: &Path) -> Result<MountSession> {
    check_mountpoint(mountpoint)?;
    check_fuse_available()?;
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::FSName("snap".into()),
        MountOption::Subtype("snap".into()),
    ];
    config.n_threads = Some(THREADS);
    let fs = Arc::new(fs);
    let session = fuser::Session::new(
        Adapter {
            fs: fs.clone(),
            no_open: false,
        },
        mountpoint,
        &config,
    )
    .map_err(|e| Error::Invalid(format!("cannot mount at {}: {e}", mountpoint.display())))?;
    fs.attach_kernel_cache(Arc::new(Notifications(session.notifier())))?;
    Ok(MountSession {
        session,
        mountpoint: mountpoint.to_path_buf(),
    })
}

impl MountSession {
    pub fn unmounter(&mut self) -> Unmounter {
        Unmounter(self.session.unmount_callable(), self.mountpoint.clone())
    }

    /// Serve requests until the filesystem is unmounted.
    pub fn run(self) -> Result<()> {
        self.session
            .run()
            .map_err(|e| Error::io("<fuse session>", e))
    }
}
