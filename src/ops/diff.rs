//! What changed between two snapshot trees: one merge pass over the two entry lists, which are
//! both sorted by [`path_cmp`]. Pure: no repository access, no printing.

use std::cmp::Ordering;

use serde::Serialize;

use crate::snapshot::{Entry, EntryKind, Tree, path_cmp};

/// How a path differs between the old and the new tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Only in the new tree.
    Added,
    /// Only in the old tree.
    Removed,
    /// In both, with at least one [`Field`] different.
    Changed,
}

/// What differs for a path present in both trees, in this order of importance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    /// File ⇄ directory ⇄ symlink (the other fields are then not compared).
    Type,
    /// A file's chunk list (so its bytes) differs.
    Content,
    /// A symlink's target differs.
    Target,
    /// Permission bits.
    Mode,
    /// uid or gid.
    Owner,
    /// Modification time.
    Mtime,
    /// Source-specific attributes.
    Attrs,
}

/// One differing path, with the entries on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<'a> {
    pub path: &'a str,
    pub kind: ChangeKind,
    pub old: Option<&'a Entry>,
    pub new: Option<&'a Entry>,
    /// For [`ChangeKind::Changed`]: what differs (never empty). Empty otherwise.
    pub fields: Vec<Field>,
}

impl Change<'_> {
    /// Size on the old side (0 when absent or not a file).
    pub fn old_size(&self) -> u64 {
        self.old.map_or(0, |e| e.size)
    }
    /// Size on the new side (0 when absent or not a file).
    pub fn new_size(&self) -> u64 {
        self.new.map_or(0, |e| e.size)
    }
    /// True when the bytes (or the type) differ, not only metadata.
    pub fn content_changed(&self) -> bool {
        self.fields
            .iter()
            .any(|f| matches!(f, Field::Type | Field::Content | Field::Target))
    }
}

/// Counts and byte totals of a diff. Bytes are file sizes (0 for directories and symlinks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiffSummary {
    pub added: u64,
    pub added_bytes: u64,
    pub removed: u64,
    pub removed_bytes: u64,
    /// Paths in both trees that differ in anything.
    pub changed: u64,
    /// Of those, paths whose content, symlink target or type differs.
    pub content_changed: u64,
    /// Of those, paths whose only differences are metadata (mode, owner, mtime, attrs).
    pub metadata_changed: u64,
    /// Sizes of the changed paths in the old tree …
    pub changed_old_bytes: u64,
    /// … and in the new tree.
    pub changed_new_bytes: u64,
}

impl DiffSummary {
    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.removed == 0 && self.changed == 0
    }
}

/// The differences between `old` and `new`, in path order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff<'a> {
    pub changes: Vec<Change<'a>>,
    pub summary: DiffSummary,
}

/// Which fields of two entries for the same path differ.
pub fn compare(a: &Entry, b: &Entry) -> Vec<Field> {
    if a.kind != b.kind {
        return vec![Field::Type];
    }
    let mut f = Vec::new();
    match a.kind {
        EntryKind::File if a.size != b.size || a.chunks != b.chunks => f.push(Field::Content),
        EntryKind::Symlink if a.target != b.target => f.push(Field::Target),
        _ => {}
    }
    if a.mode != b.mode {
        f.push(Field::Mode);
    }
    if a.uid != b.uid || a.gid != b.gid {
        f.push(Field::Owner);
    }
    if a.mtime_ns != b.mtime_ns {
        f.push(Field::Mtime);
    }
    if a.attrs != b.attrs {
        f.push(Field::Attrs);
    }
    f
}

/// Compare two trees (both sorted by [`path_cmp`], as [`Tree::parse`] guarantees).
pub fn diff<'a>(old: &'a Tree, new: &'a Tree) -> Diff<'a> {
    let mut d = Diff::default();
    let (mut i, mut j) = (0, 0);
    let (a, b) = (&old.entries, &new.entries);
    loop {
        let ord = match (a.get(i), b.get(j)) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => path_cmp(&x.path, &y.path),
        };
        match ord {
            Ordering::Less => {
                let e = &a[i];
                d.summary.removed += 1;
                d.summary.removed_bytes += e.size;
                d.changes.push(Change {
                    path: &e.path,
                    kind: ChangeKind::Removed,
                    old: Some(e),
                    new: None,
                    fields: vec![],
                });
                i += 1;
            }
            Ordering::Greater => {
                let e = &b[j];
                d.summary.added += 1;
                d.summary.added_bytes += e.size;
                d.changes.push(Change {
                    path: &e.path,
                    kind: ChangeKind::Added,
                    old: None,
                    new: Some(e),
                    fields: vec![],
                });
                j += 1;
            }
            Ordering::Equal => {
                let (x, y) = (&a[i], &b[j]);
                let fields = compare(x, y);
                if !fields.is_empty() {
                    let c = Change {
                        path: &y.path,
                        kind: ChangeKind::Changed,
                        old: Some(x),
                        new: Some(y),
                        fields,
                    };
                    d.summary.changed += 1;
                    if c.content_changed() {
                        d.summary.content_changed += 1;
                    } else {
                        d.summary.metadata_changed += 1;
                    }
                    d.summary.changed_old_bytes += x.size;
                    d.summary.changed_new_bytes += y.size;
                    d.changes.push(c);
                }
                i += 1;
                j += 1;
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::id::Id;
    use crate::snapshot::ChunkRef;

    fn entry(path: &str, kind: EntryKind) -> Entry {
        Entry {
            path: path.into(),
            kind,
            mode: if kind == EntryKind::Dir { 0o755 } else { 0o644 },
            mtime_ns: 1_000,
            uid: 1000,
            gid: 1000,
            size: 0,
            inode: 7,
            target: (kind == EntryKind::Symlink).then(|| "target".to_string()),
            chunks: vec![],
            attrs: BTreeMap::new(),
        }
    }

    fn file(path: &str, content: &[u8]) -> Entry {
        let mut e = entry(path, EntryKind::File);
        e.size = content.len() as u64;
        if !content.is_empty() {
            e.chunks = vec![ChunkRef(Id::hash_of(content), content.len() as u32)];
        }
        e
    }

    fn tree(mut entries: Vec<Entry>) -> Tree {
        entries.sort_by(|x, y| path_cmp(&x.path, &y.path));
        Tree { entries }
    }

    fn summary_of(d: &Diff<'_>) -> Vec<(String, ChangeKind, Vec<Field>)> {
        d.changes
            .iter()
            .map(|c| (c.path.to_string(), c.kind, c.fields.clone()))
            .collect()
    }

    #[test]
    fn identical_and_empty_trees_have_no_changes() {
        let t = tree(vec![
            entry("a", EntryKind::Dir),
            file("a/x", b"hello"),
            entry("l", EntryKind::Symlink),
        ]);
        let same = t.clone();
        let d = diff(&t, &same);
        assert!(d.changes.is_empty() && d.summary.is_empty(), "{d:?}");
        let empty = Tree::default();
        assert!(diff(&empty, &empty).changes.is_empty());
        // The inode is not a difference (a restored or copied file has another one).
        let mut t2 = t.clone();
        t2.entries[1].inode = 99;
        assert!(diff(&t, &t2).changes.is_empty());
    }

    #[test]
    fn added_removed_changed_with_sizes() {
        let old = tree(vec![
            entry("d", EntryKind::Dir),
            file("d/keep", b"same"),
            file("d/edit", b"old content"),
            file("d/gone", b"12345"),
            file("d/touch", b"x"),
        ]);
        let mut touched = file("d/touch", b"x");
        touched.mtime_ns = 2_000;
        let mut chmod = file("d/edit", b"new content, longer");
        chmod.mode = 0o600;
        let new = tree(vec![
            entry("d", EntryKind::Dir),
            file("d/keep", b"same"),
            chmod,
            file("d/new", b"1234567"),
            touched,
        ]);
        let d = diff(&old, &new);
        assert_eq!(
            summary_of(&d),
            vec![
                (
                    "d/edit".into(),
                    ChangeKind::Changed,
                    vec![Field::Content, Field::Mode]
                ),
                ("d/gone".into(), ChangeKind::Removed, vec![]),
                ("d/new".into(), ChangeKind::Added, vec![]),
                ("d/touch".into(), ChangeKind::Changed, vec![Field::Mtime]),
            ]
        );
        assert_eq!(d.changes[0].old_size(), 11);
        assert_eq!(d.changes[0].new_size(), 19);
        assert_eq!(
            d.summary,
            DiffSummary {
                added: 1,
                added_bytes: 7,
                removed: 1,
                removed_bytes: 5,
                changed: 2,
                content_changed: 1,
                metadata_changed: 1,
                changed_old_bytes: 12,
                changed_new_bytes: 20,
            }
        );
    }

    #[test]
    fn same_size_different_chunks_is_a_content_change() {
        let old = tree(vec![file("f", b"aaaa")]);
        let new = tree(vec![file("f", b"bbbb")]);
        assert_eq!(
            summary_of(&diff(&old, &new)),
            vec![("f".into(), ChangeKind::Changed, vec![Field::Content])]
        );
    }

    #[test]
    fn type_target_owner_and_attrs_changes() {
        let mut link2 = entry("link", EntryKind::Symlink);
        link2.target = Some("elsewhere".into());
        let mut owned = entry("dir", EntryKind::Dir);
        owned.gid = 0;
        let mut attr = file("obj", b"o");
        attr.attrs
            .insert("content_type".into(), serde_json::json!("text/plain"));
        let old = tree(vec![
            entry("dir", EntryKind::Dir),
            file("was-file", b"abc"),
            entry("link", EntryKind::Symlink),
            file("obj", b"o"),
        ]);
        let mut became_dir = entry("was-file", EntryKind::Dir);
        became_dir.mtime_ns = 5; // not reported: a type change says it all
        let new = tree(vec![owned, became_dir, link2, attr]);
        let d = diff(&old, &new);
        assert_eq!(
            summary_of(&d),
            vec![
                ("dir".into(), ChangeKind::Changed, vec![Field::Owner]),
                ("link".into(), ChangeKind::Changed, vec![Field::Target]),
                ("obj".into(), ChangeKind::Changed, vec![Field::Attrs]),
                ("was-file".into(), ChangeKind::Changed, vec![Field::Type]),
            ]
        );
        assert_eq!(
            (d.summary.content_changed, d.summary.metadata_changed),
            (2, 2)
        );
        assert_eq!(
            (d.summary.changed_old_bytes, d.summary.changed_new_bytes),
            (4, 1)
        );
    }

    #[test]
    fn merge_follows_component_order() {
        // "a/b" sorts before "a-b" component-wise although '-' < '/' bytewise: a merge that
        // compared raw strings would report these as removed and re-added.
        let old = tree(vec![
            entry("a", EntryKind::Dir),
            file("a/b", b"1"),
            file("a-b", b"2"),
            file("z", b"3"),
        ]);
        let new = tree(vec![
            entry("a", EntryKind::Dir),
            file("a/a", b"0"),
            file("a/b", b"1"),
            file("a/b2", b"9"),
            file("a-b", b"2"),
            file("a.c", b"4"),
        ]);
        let d = diff(&old, &new);
        assert_eq!(
            summary_of(&d),
            vec![
                ("a/a".into(), ChangeKind::Added, vec![]),
                ("a/b2".into(), ChangeKind::Added, vec![]),
                ("a.c".into(), ChangeKind::Added, vec![]),
                ("z".into(), ChangeKind::Removed, vec![]),
            ]
        );
        // Everything against nothing, both ways.
        let empty = Tree::default();
        let all_added = diff(&empty, &new);
        assert_eq!(all_added.summary.added, new.entries.len() as u64);
        assert_eq!(all_added.summary.added_bytes, 5);
        let all_removed = diff(&new, &empty);
        assert_eq!(all_removed.summary.removed, new.entries.len() as u64);
        assert!(
            all_removed
                .changes
                .iter()
                .all(|c| c.kind == ChangeKind::Removed && c.new.is_none())
        );
    }
}
