//! `snap diff <old> <new>`: paths added, removed and changed between two snapshots.

use serde::Serialize;
use snap::ops::diff::{Change, ChangeKind, DiffSummary, Field};
use snap::repo::lock::LockKind;
use snap::snapshot::{EntryKind, Snapshot};

use super::{Global, exit, output};

#[derive(clap::Args)]
pub struct Args {
    /// The older snapshot: id (prefix), `latest` or `latest~N` (the Nth before the latest).
    old: String,
    /// The newer snapshot: id (prefix), `latest` or `latest~N`.
    new: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    select: super::select::SnapshotSelect,
}

#[derive(Serialize)]
struct SnapJson {
    id: String,
    short_id: String,
    time: String,
}

impl SnapJson {
    fn new(s: &Snapshot) -> Self {
        SnapJson {
            id: s.id.to_hex(),
            short_id: s.id.short(),
            time: s.manifest.time.to_rfc3339(),
        }
    }
}

#[derive(Serialize)]
struct ChangeJson<'a> {
    path: &'a str,
    change: ChangeKind,
    /// The type on the new side (the old side for removed paths).
    #[serde(rename = "type")]
    kind: EntryKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    old_type: Option<EntryKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    old_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_size: Option<u64>,
    #[serde(skip_serializing_if = "<[Field]>::is_empty")]
    fields: &'a [Field],
}

#[derive(Serialize)]
struct DiffJson<'a> {
    old: SnapJson,
    new: SnapJson,
    changes: Vec<ChangeJson<'a>>,
    summary: &'a DiffSummary,
}

fn kind_name(k: EntryKind) -> &'static str {
    match k {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink => "symlink",
    }
}

fn field_name(f: Field) -> &'static str {
    match f {
        Field::Type => "type",
        Field::Content => "content",
        Field::Target => "target",
        Field::Mode => "mode",
        Field::Owner => "owner",
        Field::Mtime => "mtime",
        Field::Attrs => "attrs",
    }
}

/// One line: a marker (`+` added, `-` removed, `M` content changed, `T` type changed,
/// `U` metadata only), the path, sizes and what changed.
fn line(c: &Change<'_>) -> String {
    let e = c.new.or(c.old).expect("a change has a side");
    let slash = if e.kind == EntryKind::Dir { "/" } else { "" };
    let path = format!("/{}{slash}", output::path(c.path));
    let size = |e: &snap::snapshot::Entry| {
        if e.kind == EntryKind::File {
            output::bytes(e.size)
        } else {
            kind_name(e.kind).into()
        }
    };
    match c.kind {
        ChangeKind::Added => format!("+  {path}  {}", size(e)),
        ChangeKind::Removed => format!("-  {path}  {}", size(e)),
        ChangeKind::Changed => {
            let (o, n) = (c.old.expect("old side"), c.new.expect("new side"));
            let mark = if c.fields.contains(&Field::Type) {
                'T'
            } else if c.content_changed() {
                'M'
            } else {
                'U'
            };
            let sizes = if o.kind != n.kind || o.size != n.size {
                format!("{} → {}", size(o), size(n))
            } else {
                size(n)
            };
            let mut what: Vec<String> = c
                .fields
                .iter()
                .map(|f| field_name(*f).to_string())
                .collect();
            if c.fields.contains(&Field::Target)
                && let (Some(a), Some(b)) = (&o.target, &n.target)
            {
                what.push(format!("{} → {}", output::path(a), output::path(b)));
            }
            format!("{mark}  {path}  {sizes}  ({})", what.join(", "))
        }
    }
}

fn paths(n: u64) -> String {
    format!("{n} path{}", if n == 1 { "" } else { "s" })
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    let (repo, _lock) = g.open_locked(LockKind::Shared, "diff")?;
    let none = snap::snapshot::Selector::default();
    let quiet = g.quiet || a.json;
    let old = &super::select::choose(&repo, &a.old, &a.select, &none, quiet)?;
    let new = &super::select::choose(&repo, &a.new, &a.select, &none, quiet)?;
    let old_tree = repo.load_tree(&old.manifest)?;
    let new_tree = repo.load_tree(&new.manifest)?;
    let d = snap::ops::diff::diff(&old_tree, &new_tree);
    if a.json {
        let changes = d
            .changes
            .iter()
            .map(|c| ChangeJson {
                path: c.path,
                change: c.kind,
                kind: c.new.or(c.old).expect("a change has a side").kind,
                old_type: c
                    .fields
                    .contains(&Field::Type)
                    .then(|| c.old.expect("old side").kind),
                old_size: c.old.map(|e| e.size),
                new_size: c.new.map(|e| e.size),
                fields: &c.fields,
            })
            .collect();
        output::json(&DiffJson {
            old: SnapJson::new(old),
            new: SnapJson::new(new),
            changes,
            summary: &d.summary,
        })?;
        return Ok(exit::OK);
    }
    let when = |s: &Snapshot| {
        s.manifest
            .time
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    println!(
        "comparing snapshot {} ({}) with {} ({})",
        old.id.short(),
        when(old),
        new.id.short(),
        when(new)
    );
    for c in &d.changes {
        println!("{}", line(c));
    }
    let s = &d.summary;
    if s.is_empty() {
        println!("no differences");
    } else {
        println!(
            "added {} ({}), removed {} ({}), changed {} ({} content, {} metadata only; {} → {})",
            paths(s.added),
            output::bytes(s.added_bytes),
            s.removed,
            output::bytes(s.removed_bytes),
            s.changed,
            s.content_changed,
            s.metadata_changed,
            output::bytes(s.changed_old_bytes),
            output::bytes(s.changed_new_bytes),
        );
    }
    Ok(exit::OK)
}
