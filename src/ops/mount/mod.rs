//! `snap mount`: the repository as a read-only filesystem (FUSE). [`model`] is the virtual tree
//! as plain data, [`cache`] the decoded-chunk cache, [`fs`] the filesystem calls over the
//! repository (lazy trees, refreshed listings, reads at any offset, readahead), [`fuse`] the
//! kernel adapter. The mount takes no repository lock: see repo-format.md §9.1.

pub mod cache;
pub mod fs;
pub mod fuse;
pub mod model;

pub use fs::{MountOptions, SnapFs};
pub use fuse::{MountSession, Unmounter, check_fuse_available, check_mountpoint, mount};
