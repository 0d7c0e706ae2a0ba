//! The virtual tree a mount shows, as plain data (no repository, no FUSE): inode allocation,
//! the snapshot listings (`snapshots/`, `latest`, `tags/<tag>/`, `hosts/<host>/`), the
//! contents of a snapshot once its tree is attached, and where a file offset lies among its
//! chunks.
//!
//! ```text
//! /latest                        -> snapshots/<newest>
//! /snapshots/<time>_<shortid>/   the snapshot's paths (srv/data/…, db/<database>/…)
//! /snapshots/latest              -> <newest>
//! /tags/<tag>/<time>_<shortid>   -> ../../snapshots/<time>_<shortid>   (and `latest`)
//! /hosts/<host>/<time>_<shortid> -> ../../snapshots/<time>_<shortid>   (and `latest`)
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::id::Id;
use crate::snapshot::{ChunkRef, EntryKind, Tree};

pub type Ino = u64;
pub const ROOT: Ino = 1;
const SNAPSHOTS: Ino = 2;
const TAGS: Ino = 3;
const HOSTS: Ino = 4;

/// What `stat` shows for a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    pub kind: EntryKind,
    pub size: u64,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    pub mtime_ns: i64,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
}

/// One directory entry as a listing returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub ino: Ino,
    pub kind: EntryKind,
}

/// A file's content: its chunks and their cumulative end offsets, so the chunk holding any
/// offset is found by binary search, never by reading from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    chunks: Vec<ChunkRef>,
    /// `ends[i]` = offset just past chunk `i`.
    ends: Vec<u64>,
}

/// A piece of a read: `len` bytes of chunk `chunk`, starting at `start` within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub chunk: usize,
    pub start: usize,
    pub len: usize,
}

impl FileContent {
    pub fn new(chunks: Vec<ChunkRef>) -> FileContent {
        let mut end = 0;
        let ends = chunks
            .iter()
            .map(|c| {
                end += c.len();
                end
            })
            .collect();
        FileContent { chunks, ends }
    }

    pub fn size(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    pub fn chunks(&self) -> &[ChunkRef] {
        &self.chunks
    }

    /// The chunk holding byte `offset` and the offset within it; `None` at or past the end.
    pub fn locate(&self, offset: u64) -> Option<(usize, u64)> {
        let i = self.ends.partition_point(|&e| e <= offset);
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        (i < self.chunks.len()).then(|| (i, offset - start))
    }

    /// The pieces of chunks that make up bytes `offset .. offset + len` (clipped at the end).
    pub fn pieces(&self, offset: u64, len: u64) -> Vec<Piece> {
        let end = offset.saturating_add(len).min(self.size());
        let mut out = Vec::new();
        let Some((mut i, mut within)) = self.locate(offset) else {
            return out;
        };
        let mut pos = offset;
        while pos < end {
            let take = (self.chunks[i].len() - within).min(end - pos);
            out.push(Piece {
                chunk: i,
                start: within as usize,
                len: take as usize,
            });
            pos += take;
            i += 1;
            within = 0;
        }
        out
    }
}

/// What the listings need to know about a snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    pub id: Id,
    pub time: chrono::DateTime<chrono::FixedOffset>,
    pub host: String,
    pub tags: Vec<String>,
}

impl SnapshotInfo {
    /// The directory name: UTC time (ISO 8601 basic, no `:`) and the short id,
    /// e.g. `2026-11-21T045251Z_1a2b3c4d`; sorts by time.
    pub fn dir_name(&self) -> String {
        format!(
            "{}_{}",
            self.time
                .with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H%M%SZ"),
            self.id.short()
        )
    }
    fn time_ns(&self) -> i64 {
        self.time.timestamp_nanos_opt().unwrap_or(0)
    }
}

/// A file that is not in the tree but made from entries of it (a database's `data.sql`).
#[derive(Debug, Clone)]
pub struct VirtualFile {
    /// Full path inside the snapshot, e.g. `db/postgres/data.sql`.
    pub path: String,
    pub chunks: Vec<ChunkRef>,
    pub mode: u32,
    pub mtime_ns: i64,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug)]
enum Content {
    Dir(BTreeMap<String, Ino>),
    File(Arc<FileContent>),
    Symlink(String),
}

#[derive(Debug)]
struct Node {
    attr: Attr,
    parent: Ino,
    content: Content,
    /// A snapshot's root directory whose tree is not loaded yet.
    pending: Option<Id>,
    /// Made by the listings (may change on a refresh), not by a snapshot's tree.
    dynamic: bool,
    /// Its name in its parent (nodes of a snapshot's tree only).
    name: String,
}

/// The whole virtual tree.
#[derive(Debug)]
pub struct Model {
    /// `nodes[ino - 1]`.
    nodes: Vec<Node>,
    /// Stable inodes for the nodes the listings rebuild (`snap:<id>`, `tag:<tag>`, …).
    named: HashMap<String, Ino>,
    /// Directories whose content comes from the snapshot list (refreshed when listed).
    listings: HashSet<Ino>,
    uid: u32,
    gid: u32,
}

/// `/` and `%` in a tag or host name, so it can be one path component.
fn component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '/' => out.push_str("%2F"),
            '%' => out.push_str("%25"),
            '\0' => out.push_str("%00"),
            c => out.push(c),
        }
    }
    if out.is_empty() || out == "." || out == ".." {
        format!("%{out}")
    } else {
        out
    }
}

impl Model {
    /// An empty mount owned by `uid`/`gid`, created at `now_ns`.
    pub fn new(uid: u32, gid: u32, now_ns: i64) -> Model {
        let mut m = Model {
            nodes: Vec::new(),
            named: HashMap::new(),
            listings: HashSet::new(),
            uid,
            gid,
        };
        for (ino, parent) in [(ROOT, ROOT), (SNAPSHOTS, ROOT), (TAGS, ROOT), (HOSTS, ROOT)] {
            let got = m.push(
                parent,
                m.dir_attr(0o755, now_ns),
                Content::Dir(BTreeMap::new()),
            );
            debug_assert_eq!(got, ino);
            m.node_mut(ino).dynamic = true;
            m.listings.insert(ino);
        }
        m.set_snapshots(&[]);
        m
    }

    fn dir_attr(&self, mode: u32, mtime_ns: i64) -> Attr {
        Attr {
            ino: 0,
            kind: EntryKind::Dir,
            size: 0,
            mode,
            mtime_ns,
            uid: self.uid,
            gid: self.gid,
            nlink: 2,
        }
    }

    fn push(&mut self, parent: Ino, mut attr: Attr, content: Content) -> Ino {
        let ino = self.nodes.len() as Ino + 1;
        attr.ino = ino;
        self.nodes.push(Node {
            attr,
            parent,
            content,
            pending: None,
            dynamic: false,
            name: String::new(),
        });
        ino
    }

    fn node(&self, ino: Ino) -> Option<&Node> {
        ino.checked_sub(1).and_then(|i| self.nodes.get(i as usize))
    }

    fn node_mut(&mut self, ino: Ino) -> &mut Node {
        &mut self.nodes[(ino - 1) as usize]
    }

    /// The inode named `key`, created by `make` the first time; later calls update its
    /// parent, attributes and content (listings are rebuilt, inodes stay).
    fn named(&mut self, key: String, parent: Ino, attr: Attr, content: Content) -> Ino {
        if let Some(&ino) = self.named.get(&key) {
            let n = self.node_mut(ino);
            n.parent = parent;
            let keep_nlink = n.attr.nlink;
            n.attr = Attr {
                ino,
                nlink: keep_nlink,
                ..attr
            };
            if !matches!(n.content, Content::Dir(_)) || !matches!(content, Content::Dir(_)) {
                n.content = content;
            }
            return ino;
        }
        let ino = self.push(parent, attr, content);
        self.node_mut(ino).dynamic = true;
        self.named.insert(key, ino);
        ino
    }

    /// The listing link `key` pointing at `target`; if it pointed elsewhere before (`latest`
    /// after a backup), it is added to `moved`.
    fn symlink(
        &mut self,
        key: String,
        parent: Ino,
        target: String,
        mtime_ns: i64,
        moved: &mut Vec<Ino>,
    ) -> Ino {
        if let Some(&ino) = self.named.get(&key)
            && !matches!(&self.node(ino).map(|n| &n.content), Some(Content::Symlink(t)) if *t == target)
        {
            moved.push(ino);
        }
        let attr = Attr {
            ino: 0,
            kind: EntryKind::Symlink,
            size: target.len() as u64,
            mode: 0o777,
            mtime_ns,
            uid: self.uid,
            gid: self.gid,
            nlink: 1,
        };
        self.named(key, parent, attr, Content::Symlink(target))
    }

    fn set_children(&mut self, dir: Ino, children: BTreeMap<String, Ino>, mtime_ns: i64) {
        let subdirs = children
            .values()
            .filter(|&&c| self.nodes[(c - 1) as usize].attr.kind == EntryKind::Dir)
            .count();
        let n = self.node_mut(dir);
        n.attr.nlink = 2 + subdirs as u32;
        n.attr.mtime_ns = mtime_ns;
        n.content = Content::Dir(children);
    }

    /// Rebuild the listings from `snaps` (oldest first). Inodes of snapshots seen before stay
    /// the same (with their loaded trees); snapshots no longer listed disappear from the
    /// listings. Returns the links whose target moved (whatever cached them must forget it).
    pub fn set_snapshots(&mut self, snaps: &[SnapshotInfo]) -> Vec<Ino> {
        let mut moved = Vec::new();
        let newest_ns = snaps.last().map(|s| s.time_ns()).unwrap_or(0);
        let mut snapshots = BTreeMap::new();
        let mut tags: BTreeMap<String, Vec<&SnapshotInfo>> = BTreeMap::new();
        let mut hosts: BTreeMap<String, Vec<&SnapshotInfo>> = BTreeMap::new();
        for s in snaps {
            let key = format!("snap:{}", s.id);
            let fresh = !self.named.contains_key(&key);
            let ino = self.named(
                key,
                SNAPSHOTS,
                self.dir_attr(0o755, s.time_ns()),
                Content::Dir(BTreeMap::new()),
            );
            if fresh {
                self.node_mut(ino).pending = Some(s.id);
            }
            snapshots.insert(s.dir_name(), ino);
            for t in &s.tags {
                tags.entry(component(t)).or_default().push(s);
            }
            hosts.entry(component(&s.host)).or_default().push(s);
        }
        let mut root: BTreeMap<String, Ino> = [
            ("snapshots".to_string(), SNAPSHOTS),
            ("tags".to_string(), TAGS),
            ("hosts".to_string(), HOSTS),
        ]
        .into();
        if let Some(last) = snaps.last() {
            let name = last.dir_name();
            let l = self.symlink(
                "latest:snapshots".into(),
                SNAPSHOTS,
                name.clone(),
                newest_ns,
                &mut moved,
            );
            snapshots.insert("latest".into(), l);
            let l = self.symlink(
                "latest:root".into(),
                ROOT,
                format!("snapshots/{name}"),
                newest_ns,
                &mut moved,
            );
            root.insert("latest".into(), l);
        }
        self.set_children(SNAPSHOTS, snapshots, newest_ns);
        for (top, groups, prefix) in [(TAGS, tags, "tag"), (HOSTS, hosts, "host")] {
            let mut dirs = BTreeMap::new();
            for (name, members) in groups {
                let group_ns = members.last().map(|s| s.time_ns()).unwrap_or(0);
                let dir = self.named(
                    format!("{prefix}:{name}"),
                    top,
                    self.dir_attr(0o755, group_ns),
                    Content::Dir(BTreeMap::new()),
                );
                self.listings.insert(dir);
                let mut links = BTreeMap::new();
                for s in &members {
                    let n = s.dir_name();
                    let l = self.symlink(
                        format!("{prefix}:{name}:{}", s.id),
                        dir,
                        format!("../../snapshots/{n}"),
                        s.time_ns(),
                        &mut moved,
                    );
                    links.insert(n, l);
                }
                if let Some(last) = members.last() {
                    let l = self.symlink(
                        format!("{prefix}:{name}:latest"),
                        dir,
                        last.dir_name(),
                        group_ns,
                        &mut moved,
                    );
                    links.insert("latest".into(), l);
                }
                self.set_children(dir, links, group_ns);
                dirs.insert(name, dir);
            }
            self.set_children(top, dirs, newest_ns);
        }
        self.set_children(ROOT, root, newest_ns);
        moved
    }

    /// Whether `ino` is a directory built from the snapshot list (worth refreshing when listed).
    pub fn is_listing(&self, ino: Ino) -> bool {
        self.listings.contains(&ino)
    }

    /// Whether `ino` belongs to the listings (its attributes or target may change on a
    /// refresh), rather than to a snapshot's immutable content.
    pub fn is_dynamic(&self, ino: Ino) -> bool {
        self.node(ino).is_some_and(|n| n.dynamic)
    }

    /// The snapshot whose tree must be attached before `ino` can be listed or searched.
    pub fn pending_tree(&self, ino: Ino) -> Option<Id> {
        self.node(ino).and_then(|n| n.pending)
    }

    /// Fill snapshot root `root` with `tree`'s entries, plus `virtual_files` (skipped when
    /// their directory is missing or the name is taken).
    pub fn attach_tree(&mut self, root: Ino, tree: &Tree, virtual_files: &[VirtualFile]) {
        let root_mtime = match self.node(root) {
            Some(n) if n.pending.is_some() => n.attr.mtime_ns,
            _ => return,
        };
        self.node_mut(root).pending = None;
        let mut dirs: HashMap<String, Ino> = HashMap::from([(String::new(), root)]);
        for e in &tree.entries {
            let parent = self.ensure_dir(&mut dirs, e.parent(), root_mtime);
            let (content, size) = match e.kind {
                EntryKind::Dir => (Content::Dir(BTreeMap::new()), 0),
                EntryKind::File => {
                    let f = FileContent::new(e.chunks.clone());
                    let size = f.size();
                    (Content::File(Arc::new(f)), size)
                }
                EntryKind::Symlink => {
                    let t = e.target.clone().unwrap_or_default();
                    let n = t.len() as u64;
                    (Content::Symlink(t), n)
                }
            };
            let attr = Attr {
                ino: 0,
                kind: e.kind,
                size,
                mode: e.mode & 0o7777,
                mtime_ns: e.mtime_ns,
                uid: e.uid,
                gid: e.gid,
                nlink: if e.kind == EntryKind::Dir { 2 } else { 1 },
            };
            if let Some(&existing) = dirs.get(&e.path) {
                // A directory synthesized for an earlier entry: take the stored metadata.
                if e.kind == EntryKind::Dir {
                    let n = self.node_mut(existing);
                    n.attr = Attr {
                        ino: existing,
                        nlink: n.attr.nlink,
                        ..attr
                    };
                }
                continue;
            }
            let ino = self.add_child(parent, e.name(), attr, content);
            if e.kind == EntryKind::Dir {
                dirs.insert(e.path.clone(), ino);
            }
        }
        for v in virtual_files {
            let (dir, name) = v.path.rsplit_once('/').unwrap_or(("", &v.path));
            let Some(&parent) = dirs.get(dir) else {
                continue;
            };
            if self.lookup(parent, name).is_some() {
                continue;
            }
            let f = FileContent::new(v.chunks.clone());
            let attr = Attr {
                ino: 0,
                kind: EntryKind::File,
                size: f.size(),
                mode: v.mode & 0o7777,
                mtime_ns: v.mtime_ns,
                uid: v.uid,
                gid: v.gid,
                nlink: 1,
            };
            self.add_child(parent, name, attr, Content::File(Arc::new(f)));
        }
    }

    fn ensure_dir(&mut self, dirs: &mut HashMap<String, Ino>, path: &str, mtime_ns: i64) -> Ino {
        if let Some(&ino) = dirs.get(path) {
            return ino;
        }
        let (parent_path, name) = path.rsplit_once('/').unwrap_or(("", path));
        let parent = self.ensure_dir(dirs, parent_path, mtime_ns);
        let ino = self.add_child(
            parent,
            name,
            self.dir_attr(0o755, mtime_ns),
            Content::Dir(BTreeMap::new()),
        );
        dirs.insert(path.to_string(), ino);
        ino
    }

    fn add_child(&mut self, parent: Ino, name: &str, attr: Attr, content: Content) -> Ino {
        let is_dir = attr.kind == EntryKind::Dir;
        let ino = self.push(parent, attr, content);
        self.node_mut(ino).name = name.to_string();
        let p = self.node_mut(parent);
        if let Content::Dir(children) = &mut p.content {
            children.insert(name.to_string(), ino);
        }
        if is_dir {
            p.attr.nlink += 1;
        }
        ino
    }

    pub fn attr(&self, ino: Ino) -> Option<Attr> {
        self.node(ino).map(|n| n.attr.clone())
    }

    pub fn parent(&self, ino: Ino) -> Option<Ino> {
        self.node(ino).map(|n| n.parent)
    }

    pub fn lookup(&self, parent: Ino, name: &str) -> Option<Ino> {
        match &self.node(parent)?.content {
            Content::Dir(children) => children.get(name).copied(),
            _ => None,
        }
    }

    /// A directory's entries (without `.` and `..`), in name order; `None` if not a directory.
    pub fn children(&self, ino: Ino) -> Option<Vec<DirEntry>> {
        match &self.node(ino)?.content {
            Content::Dir(children) => Some(
                children
                    .iter()
                    .map(|(name, &c)| DirEntry {
                        name: name.clone(),
                        ino: c,
                        kind: self.nodes[(c - 1) as usize].attr.kind,
                    })
                    .collect(),
            ),
            _ => None,
        }
    }

    /// The files that follow file `ino` in its directory (in listing order, about the order
    /// `cp -r` reads them): at most `max_files`, and no more once their sizes add up to over
    /// `max_bytes` (the file that crosses it is the last one returned).
    pub fn following_files(
        &self,
        ino: Ino,
        max_files: usize,
        max_bytes: u64,
    ) -> Vec<(Ino, Arc<FileContent>)> {
        use std::ops::Bound;
        let Some(n) = self.node(ino).filter(|n| !n.name.is_empty()) else {
            return Vec::new();
        };
        let Some(Content::Dir(siblings)) = self.node(n.parent).map(|p| &p.content) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for (_, &c) in
            siblings.range::<str, _>((Bound::Excluded(n.name.as_str()), Bound::Unbounded))
        {
            if out.len() >= max_files || bytes > max_bytes {
                break;
            }
            if let Content::File(f) = &self.nodes[(c - 1) as usize].content {
                bytes = bytes.saturating_add(f.size());
                out.push((c, f.clone()));
            }
        }
        out
    }

    pub fn readlink(&self, ino: Ino) -> Option<&str> {
        match &self.node(ino)?.content {
            Content::Symlink(t) => Some(t),
            _ => None,
        }
    }

    pub fn file(&self, ino: Ino) -> Option<Arc<FileContent>> {
        match &self.node(ino)?.content {
            Content::File(f) => Some(f.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Entry;

    fn id(n: u8) -> Id {
        Id::hash_of(&[n])
    }

    fn snap(n: u8, secs: i64, host: &str, tags: &[&str]) -> SnapshotInfo {
        SnapshotInfo {
            id: id(n),
            time: chrono::DateTime::from_timestamp(secs, 0)
                .unwrap()
                .fixed_offset(),
            host: host.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn entry(path: &str, kind: EntryKind, chunks: &[(u8, u32)]) -> Entry {
        Entry {
            path: path.into(),
            kind,
            mode: if kind == EntryKind::Dir { 0o750 } else { 0o640 },
            mtime_ns: 1_700_000_000_123_456_789,
            uid: 7,
            gid: 8,
            size: chunks.iter().map(|c| c.1 as u64).sum(),
            inode: 0,
            target: (kind == EntryKind::Symlink).then(|| "../x".to_string()),
            chunks: chunks.iter().map(|&(n, l)| ChunkRef(id(n), l)).collect(),
            attrs: Default::default(),
        }
    }

    fn names(m: &Model, ino: Ino) -> Vec<String> {
        m.children(ino)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect()
    }

    #[test]
    fn locate_and_pieces_use_cumulative_lengths() {
        let f = FileContent::new(vec![
            ChunkRef(id(1), 10),
            ChunkRef(id(2), 5),
            ChunkRef(id(3), 20),
        ]);
        assert_eq!(f.size(), 35);
        assert_eq!(f.locate(0), Some((0, 0)));
        assert_eq!(f.locate(9), Some((0, 9)));
        assert_eq!(f.locate(10), Some((1, 0)));
        assert_eq!(f.locate(15), Some((2, 0)));
        assert_eq!(f.locate(34), Some((2, 19)));
        assert_eq!(f.locate(35), None);
        assert_eq!(
            f.pieces(8, 10),
            vec![
                Piece {
                    chunk: 0,
                    start: 8,
                    len: 2
                },
                Piece {
                    chunk: 1,
                    start: 0,
                    len: 5
                },
                Piece {
                    chunk: 2,
                    start: 0,
                    len: 3
                }
            ]
        );
        assert_eq!(
            f.pieces(30, 100),
            vec![Piece {
                chunk: 2,
                start: 15,
                len: 5
            }]
        );
        assert!(f.pieces(35, 1).is_empty());
        assert!(FileContent::new(vec![]).pieces(0, 10).is_empty());
    }

    #[test]
    fn listings_latest_tags_hosts() {
        let mut m = Model::new(0, 0, 0);
        assert_eq!(names(&m, ROOT), vec!["hosts", "snapshots", "tags"]);
        let a = snap(1, 1_700_000_000, "db-1", &["env=prod", "a/b"]);
        let b = snap(2, 1_700_000_100, "db-2", &["env=prod"]);
        m.set_snapshots(&[a.clone(), b.clone()]);
        assert_eq!(
            names(&m, ROOT),
            vec!["hosts", "latest", "snapshots", "tags"]
        );
        assert_eq!(
            names(&m, SNAPSHOTS),
            vec![a.dir_name(), b.dir_name(), "latest".into()]
        );
        assert!(
            a.dir_name().starts_with("2023-11-14T221320Z_"),
            "{}",
            a.dir_name()
        );
        let latest = m.lookup(ROOT, "latest").unwrap();
        assert_eq!(
            m.readlink(latest),
            Some(format!("snapshots/{}", b.dir_name()).as_str())
        );
        assert_eq!(names(&m, TAGS), vec!["a%2Fb", "env=prod"]);
        let prod = m.lookup(TAGS, "env=prod").unwrap();
        assert!(m.is_listing(prod));
        assert_eq!(
            names(&m, prod),
            vec![a.dir_name(), b.dir_name(), "latest".into()]
        );
        let link = m.lookup(prod, &a.dir_name()).unwrap();
        assert_eq!(
            m.readlink(link),
            Some(format!("../../snapshots/{}", a.dir_name()).as_str())
        );
        let db1 = m.lookup(HOSTS, "db-1").unwrap();
        assert_eq!(names(&m, db1), vec![a.dir_name(), "latest".into()]);

        // A refresh keeps inodes; a vanished snapshot leaves the listings.
        let a_ino = m.lookup(SNAPSHOTS, &a.dir_name()).unwrap();
        let c = snap(3, 1_700_000_200, "db-1", &[]);
        let mut links_before = [
            latest,
            m.lookup(SNAPSHOTS, "latest").unwrap(),
            m.lookup(prod, "latest").unwrap(),
            m.lookup(db1, "latest").unwrap(),
        ];
        links_before.sort();
        let mut moved = m.set_snapshots(&[a.clone(), c.clone()]);
        moved.sort();
        assert_eq!(
            moved, links_before,
            "every `latest` moved (db-1's to c), no other link did"
        );
        assert_eq!(
            m.lookup(ROOT, "latest"),
            Some(latest),
            "a moved link keeps its inode"
        );
        assert!(
            m.set_snapshots(&[a.clone(), c.clone()]).is_empty(),
            "nothing moved"
        );
        assert_eq!(m.lookup(SNAPSHOTS, &a.dir_name()), Some(a_ino));
        assert_eq!(m.lookup(SNAPSHOTS, &b.dir_name()), None);
        assert_eq!(
            m.readlink(m.lookup(ROOT, "latest").unwrap()),
            Some(format!("snapshots/{}", c.dir_name()).as_str())
        );
        assert_eq!(
            names(&m, m.lookup(TAGS, "env=prod").unwrap()),
            vec![a.dir_name(), "latest".into()]
        );
        assert_eq!(m.pending_tree(a_ino), Some(a.id));
    }

    #[test]
    fn attach_tree_builds_dirs_files_links_and_virtual_files() {
        let mut m = Model::new(0, 0, 0);
        let s = snap(1, 1_700_000_000, "h", &[]);
        m.set_snapshots(std::slice::from_ref(&s));
        let root = m.lookup(SNAPSHOTS, &s.dir_name()).unwrap();
        assert!(m.children(root).unwrap().is_empty());
        let tree = Tree {
            entries: vec![
                // "srv" itself is not stored: synthesized.
                entry("srv/data", EntryKind::Dir, &[]),
                entry("srv/data/a.txt", EntryKind::File, &[(1, 100), (2, 50)]),
                entry("srv/data/link", EntryKind::Symlink, &[]),
                entry("srv/data/sub", EntryKind::Dir, &[]),
            ],
        };
        let v = VirtualFile {
            path: "srv/data/all".into(),
            chunks: vec![ChunkRef(id(9), 7)],
            mode: 0o600,
            mtime_ns: 5,
            uid: 1,
            gid: 2,
        };
        let taken = VirtualFile {
            path: "srv/data/a.txt".into(),
            ..v.clone()
        };
        let nowhere = VirtualFile {
            path: "missing/x".into(),
            ..v.clone()
        };
        m.attach_tree(root, &tree, &[v, taken, nowhere]);
        assert_eq!(m.pending_tree(root), None);
        let srv = m.lookup(root, "srv").unwrap();
        assert_eq!(m.attr(srv).unwrap().mode, 0o755);
        let data = m.lookup(srv, "data").unwrap();
        let da = m.attr(data).unwrap();
        assert_eq!((da.mode, da.uid, da.gid, da.nlink), (0o750, 7, 8, 3));
        assert_eq!(names(&m, data), vec!["a.txt", "all", "link", "sub"]);
        let a = m.lookup(data, "a.txt").unwrap();
        let aa = m.attr(a).unwrap();
        assert_eq!(
            (aa.kind, aa.size, aa.mode, aa.mtime_ns),
            (EntryKind::File, 150, 0o640, 1_700_000_000_123_456_789)
        );
        assert_eq!(m.file(a).unwrap().chunks().len(), 2);
        assert_eq!(m.readlink(m.lookup(data, "link").unwrap()), Some("../x"));
        let all = m.attr(m.lookup(data, "all").unwrap()).unwrap();
        assert_eq!((all.size, all.mode), (7, 0o600));
        assert_eq!(m.parent(a), Some(data));
        let all_ino = m.lookup(data, "all").unwrap();
        let next: Vec<Ino> = m
            .following_files(a, 10, u64::MAX)
            .iter()
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(
            next,
            vec![all_ino],
            "the virtual file `all` follows a.txt; link and sub are no files"
        );
        assert_eq!(
            m.following_files(a, 10, 0)[0].1.chunks()[0].0,
            id(9),
            "the file crossing the byte limit is the last one"
        );
        assert!(m.following_files(a, 0, u64::MAX).is_empty());
        assert!(
            m.following_files(all_ino, 10, u64::MAX).is_empty(),
            "nothing follows the last file"
        );
        let root_files = m.following_files(srv, 10, u64::MAX);
        assert!(
            root_files.is_empty(),
            "srv is a directory, its siblings no files"
        );
        // Attaching again does nothing.
        m.attach_tree(root, &Tree::default(), &[]);
        assert_eq!(names(&m, data).len(), 4);
    }
}
