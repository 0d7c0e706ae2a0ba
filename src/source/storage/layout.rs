//! Where storage data lives in a snapshot (repo-format.md §7.4): `storage/<bucket>` is a
//! directory entry whose `attrs.bucket` holds the bucket's configuration; each object is the file
//! `storage/<bucket>/<object name>` whose attrs hold its name and metadata. One place for the
//! mapping both ways.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use super::api::{Bucket, ObjectInfo};
use crate::snapshot::{Entry, EntryKind};

/// The top directory of storage data in a snapshot.
pub const ROOT: &str = "storage";

pub fn bucket_path(bucket: &str) -> String {
    format!("{ROOT}/{bucket}")
}

/// A name component as a path component: verbatim unless it could not be one (`""`, `.`, `..`,
/// NUL bytes); those become `%`, `%.`, `%..`, and NUL `%00`. The exact name is always in
/// `attrs.name`.
fn component(c: &str) -> String {
    match c {
        "" => "%".into(),
        "." => "%.".into(),
        ".." => "%..".into(),
        c => c.replace('\0', "%00"),
    }
}

/// The snapshot path of object `name` in `bucket`.
pub fn object_path(bucket: &str, name: &str) -> String {
    let mut p = bucket_path(bucket);
    for c in name.split('/') {
        p.push('/');
        p.push_str(&component(c));
    }
    p
}

/// Paths for a bucket's objects. An object whose path is also a folder of other objects (`a`
/// next to `a/b`) is stored as `a%` instead; objects whose path still collides are returned as
/// warnings (not backed up).
pub fn plan_paths(
    bucket: &str,
    objects: Vec<ObjectInfo>,
) -> (Vec<(ObjectInfo, String)>, Vec<String>) {
    let paths: Vec<String> = objects
        .iter()
        .map(|o| object_path(bucket, &o.name))
        .collect();
    let mut dirs = HashSet::new();
    for p in &paths {
        let mut s = p.as_str();
        while let Some((parent, _)) = s.rsplit_once('/') {
            if !dirs.insert(parent.to_string()) {
                break;
            }
            s = parent;
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(objects.len());
    let mut warnings = Vec::new();
    for (o, mut p) in objects.into_iter().zip(paths) {
        if dirs.contains(&p) {
            p.push('%');
        }
        if dirs.contains(&p) || !seen.insert(p.clone()) {
            warnings.push(format!("storage object {bucket}/{} collides with another object's path in the snapshot; not backed up", o.name));
            continue;
        }
        out.push((o, p));
    }
    (out, warnings)
}

/// Attributes of a bucket's directory entry.
pub fn bucket_attrs(b: &Bucket) -> BTreeMap<String, Value> {
    BTreeMap::from([(
        "bucket".to_string(),
        serde_json::to_value(b).expect("bucket serializes"),
    )])
}

/// A bucket's own time (its `updated_at`, else `created_at`): the mtime of its directory
/// when it holds no object, so an empty bucket does not change from one snapshot to the next.
pub fn bucket_mtime_ns(b: &Bucket) -> Option<i64> {
    [&b.updated_at, &b.created_at]
        .into_iter()
        .flatten()
        .find_map(|s| rfc3339_ns(s))
}

fn rfc3339_ns(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
}

/// The bucket configuration recorded on a directory entry, if it is a bucket's.
pub fn bucket_of(e: &Entry) -> Option<Bucket> {
    if e.kind != EntryKind::Dir {
        return None;
    }
    serde_json::from_value(e.attrs.get("bucket")?.clone()).ok()
}

/// Attributes of an object's file entry.
pub fn object_attrs(o: &ObjectInfo, user_metadata: Option<&Value>) -> BTreeMap<String, Value> {
    let mut a = BTreeMap::new();
    a.insert("name".into(), json!(o.name));
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            a.insert(k.to_string(), v);
        }
    };
    put("content_type", o.mimetype().map(Value::from));
    put("cache_control", o.cache_control().map(Value::from));
    put("etag", o.etag().map(Value::from));
    put("size", o.size().map(Value::from));
    put("last_modified", o.metadata.get("lastModified").cloned());
    put("created_at", o.created_at.clone().map(Value::from));
    put("updated_at", o.updated_at.clone().map(Value::from));
    put(
        "last_accessed_at",
        o.last_accessed_at.clone().map(Value::from),
    );
    put("user_metadata", user_metadata.cloned());
    put("metadata", Some(o.metadata.clone()));
    a
}

/// An object as recorded in a file entry (for restores).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    pub name: String,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub user_metadata: Option<Value>,
}

pub fn object_of(e: &Entry) -> Option<StoredObject> {
    if e.kind != EntryKind::File {
        return None;
    }
    let s = |k: &str| e.attrs.get(k).and_then(Value::as_str).map(str::to_string);
    Some(StoredObject {
        name: s("name")?,
        content_type: s("content_type"),
        cache_control: s("cache_control"),
        user_metadata: e
            .attrs
            .get("user_metadata")
            .cloned()
            .filter(|v| !v.is_null()),
    })
}

/// The entry's modification time: the object's `updated_at` (else `lastModified`).
pub fn mtime_ns(o: &ObjectInfo) -> i64 {
    o.updated_at
        .as_deref()
        .and_then(rfc3339_ns)
        .or_else(|| {
            o.metadata
                .get("lastModified")
                .and_then(Value::as_str)
                .and_then(rfc3339_ns)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str) -> ObjectInfo {
        ObjectInfo {
            name: name.into(),
            created_at: None,
            updated_at: None,
            last_accessed_at: None,
            metadata: json!({}),
            user_metadata: None,
        }
    }

    #[test]
    fn paths_escape_only_impossible_components() {
        assert_eq!(object_path("b", "a b/ü#%.txt"), "storage/b/a b/ü#%.txt");
        assert_eq!(object_path("b", "x//./../y/"), "storage/b/x/%/%./%../y/%");
        for p in ["storage/b/x/%/%./%../y/%", &object_path("b", "a\0b")] {
            crate::snapshot::validate_path(p).unwrap();
        }
    }

    #[test]
    fn file_next_to_folder_of_same_name() {
        let (ok, warn) = plan_paths("b", vec![info("a"), info("a/b"), info("c")]);
        let paths: Vec<&str> = ok.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(paths, ["storage/b/a%", "storage/b/a/b", "storage/b/c"]);
        assert!(warn.is_empty());
    }

    #[test]
    fn attrs_round_trip() {
        let mut o = info("d/e.png");
        o.metadata = json!({"mimetype": "image/png", "cacheControl": "max-age=60", "eTag": "\"x\"", "size": 3});
        o.updated_at = Some("2026-01-02T03:04:05.678Z".into());
        let attrs = object_attrs(&o, Some(&json!({"k": "v"})));
        let e = Entry {
            path: object_path("b", &o.name),
            kind: EntryKind::File,
            mode: 0o644,
            mtime_ns: mtime_ns(&o),
            uid: 0,
            gid: 0,
            size: 3,
            inode: 0,
            target: None,
            chunks: vec![],
            attrs,
        };
        let s = object_of(&e).unwrap();
        assert_eq!(s.name, "d/e.png");
        assert_eq!(s.content_type.as_deref(), Some("image/png"));
        assert_eq!(s.cache_control.as_deref(), Some("max-age=60"));
        assert_eq!(s.user_metadata, Some(json!({"k": "v"})));
        assert_eq!(e.mtime_ns, 1_767_323_045_678_000_000);
    }
}
