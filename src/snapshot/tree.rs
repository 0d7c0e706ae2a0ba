//! Tree entries and their serialization (JSON Lines, sorted by path components).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ChunkRef;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// One path in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative, `/`-separated, no `.`/`..`/empty components.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    /// File size in bytes (0 for dirs and symlinks).
    #[serde(default)]
    pub size: u64,
    /// Inode number at backup time (files from a filesystem; used to detect unchanged files).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inode: u64,
    /// Symlink target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// File content, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<ChunkRef>,
    /// Source-specific metadata (e.g. content type of a storage object).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: Attrs,
}

/// An entry's source-specific attributes (repo-format.md §7.3 tables, §7.4 storage): an open
/// map, written and read by the source that owns the entry (storage objects and buckets:
/// `source::storage::layout`; a table's part: its schema and table).
pub type Attrs = BTreeMap<String, serde_json::Value>;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Entry {
    /// Parent directory path ("" for top-level entries).
    pub fn parent(&self) -> &str {
        self.path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.path
            .rsplit_once('/')
            .map(|(_, n)| n)
            .unwrap_or(&self.path)
    }
}

/// Order paths component by component, so a directory comes right before its contents.
pub fn path_cmp(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

/// Reject paths that could escape a restore target. A NUL may only start the escape of a
/// byte ≥ 0x80 ([`super::name`]), so an escape never makes a `/`, `.` or NUL.
pub fn validate_path(p: &str) -> Result<()> {
    let bad = p.is_empty()
        || p.starts_with('/')
        || super::name::decode(p).is_none_or(|raw| raw.contains(&0))
        || p.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(Error::corrupt("tree", format!("invalid entry path {p:?}")));
    }
    Ok(())
}

/// A file's size is the sum of its chunks' lengths; other entries have neither size nor chunks
/// (repo-format.md §7.2). Readers sum sizes (restore, stats, diff), so a claim the chunks do not
/// back is refused here rather than trusted there.
fn validate_size(e: &Entry) -> Result<()> {
    let held: u64 = e.chunks.iter().map(|c| c.len()).sum();
    let ok = match e.kind {
        EntryKind::File => e.size == held,
        EntryKind::Dir | EntryKind::Symlink => e.size == 0 && e.chunks.is_empty(),
    };
    if ok {
        return Ok(());
    }
    Err(Error::corrupt(
        "tree",
        format!(
            "entry {:?} has size {} but {} chunks holding {held} bytes",
            e.path,
            e.size,
            e.chunks.len()
        ),
    ))
}

/// A snapshot's entries, sorted by [`path_cmp`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    pub entries: Vec<Entry>,
}

impl Tree {
    pub fn serialize_entry(e: &Entry, out: &mut Vec<u8>) {
        serde_json::to_writer(&mut *out, e).expect("entry serializes");
        out.push(b'\n');
    }

    /// Parse JSON Lines; checks paths and order.
    pub fn parse(bytes: &[u8]) -> Result<Tree> {
        let mut entries: Vec<Entry> = Vec::new();
        for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let e: Entry = serde_json::from_slice(line)
                .map_err(|err| Error::corrupt("tree", format!("line {}: {err}", n + 1)))?;
            validate_path(&e.path)?;
            validate_size(&e)?;
            if let Some(prev) = entries.last()
                && path_cmp(&prev.path, &e.path) != Ordering::Less
            {
                return Err(Error::corrupt(
                    "tree",
                    format!("entries out of order at {:?}", e.path),
                ));
            }
            entries.push(e);
        }
        Ok(Tree { entries })
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| path_cmp(&e.path, path))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Entries at or below `path` ("" = everything).
    pub fn under<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        let path = path.trim_matches('/');
        self.entries.iter().filter(move |e| is_under(&e.path, path))
    }
}

/// Whether `p` is `base` or lies below it ("" contains everything).
pub fn is_under(p: &str, base: &str) -> bool {
    base.is_empty()
        || p == base
        || (p.starts_with(base) && p.as_bytes().get(base.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(path: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Dir,
            mode: 0o755,
            mtime_ns: 0,
            uid: 0,
            gid: 0,
            size: 0,
            inode: 0,
            target: None,
            chunks: vec![],
            attrs: BTreeMap::new(),
        }
    }

    #[test]
    fn order_and_lookup() {
        let mut paths = vec!["a/b", "a", "a.b", "a/b/c", "a-b", "b"];
        paths.sort_by(|x, y| path_cmp(x, y));
        assert_eq!(paths, vec!["a", "a/b", "a/b/c", "a-b", "a.b", "b"]);
        let mut buf = vec![];
        for p in &paths {
            Tree::serialize_entry(&e(p), &mut buf);
        }
        let t = Tree::parse(&buf).unwrap();
        assert_eq!(t.get("a/b").unwrap().path, "a/b");
        assert!(t.get("a/x").is_none());
        let under: Vec<_> = t.under("a").map(|e| e.path.as_str()).collect();
        assert_eq!(under, vec!["a", "a/b", "a/b/c"]);
    }

    #[test]
    fn rejects_escaping_paths() {
        for p in [
            "../x",
            "/etc",
            "a//b",
            "a/./b",
            "",
            "a\u{0}",
            "a\u{0}2f",
            "\u{0}2e\u{0}2e",
            "a\u{0}00",
        ] {
            assert!(validate_path(p).is_err(), "{p}");
        }
        assert!(validate_path("caf\u{0}e9/x").is_ok(), "an escaped byte");
        let mut buf = vec![];
        Tree::serialize_entry(&e("b"), &mut buf);
        Tree::serialize_entry(&e("a"), &mut buf);
        assert!(Tree::parse(&buf).is_err(), "out of order");
    }
}
