//! The figures a backup is summarised by (the old nightly scripts printed the same): bytes read
//! and added, dedup ratio, files and tables, duration and MB/s, snapshot id — for the snapshot
//! and for each source in it. Used by `snap backup`, `snap backup db`, `snap backup --config`
//! and `snap run` alike.

use serde::Serialize;

use crate::ops::BackupOutcome;
use crate::snapshot::Summary;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BackupFigures {
    pub snapshot: String,
    pub short_id: String,
    pub files: u64,
    /// Tables dumped (database sources), when the snapshot holds any.
    pub tables: Option<u64>,
    pub bytes_read: u64,
    /// Bytes stored in the repository (compressed, encrypted, with pack trailers).
    pub bytes_added: u64,
    /// Plaintext bytes of the new chunks.
    pub raw_bytes_added: u64,
    /// bytes read / new plaintext bytes; `None` when nothing new was stored (infinite).
    pub dedup_ratio: Option<f64>,
    pub duration_ms: u64,
    pub mb_per_s: f64,
    pub sources: Vec<SourceFigures>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

/// One source of a snapshot (a database, a bucket).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceFigures {
    /// Where it is in the snapshot, e.g. `db/postgres`.
    pub path: String,
    /// `database`, `storage`, …
    pub kind: String,
    /// Objects (storage sources).
    pub files: Option<u64>,
    pub tables: Option<u64>,
    pub bytes: u64,
    pub duration_ms: u64,
    pub mb_per_s: f64,
}

/// Megabytes (10^6) per second; 0 when no time passed.
pub fn mb_per_s(bytes: u64, ms: u64) -> f64 {
    if ms == 0 {
        0.0
    } else {
        bytes as f64 / 1e6 / (ms as f64 / 1000.0)
    }
}

pub fn dedup_ratio(s: &Summary) -> Option<f64> {
    (s.added_raw_bytes > 0).then(|| s.bytes_read as f64 / s.added_raw_bytes as f64)
}

impl BackupFigures {
    pub fn of(out: &BackupOutcome) -> BackupFigures {
        let s = &out.snapshot.manifest.summary;
        let sources = source_figures(&out.source_summary);
        let tables = sources.iter().filter_map(|x| x.tables).reduce(|a, b| a + b);
        BackupFigures {
            snapshot: out.snapshot.id.to_hex(),
            short_id: out.snapshot.id.short(),
            files: s.files,
            tables,
            bytes_read: s.bytes_read,
            bytes_added: s.added_bytes,
            raw_bytes_added: s.added_raw_bytes,
            dedup_ratio: dedup_ratio(s),
            duration_ms: s.duration_ms,
            mb_per_s: mb_per_s(s.bytes_read, s.duration_ms),
            sources,
            warnings: out.warnings.clone(),
            notes: out.notes.clone(),
        }
    }
}

/// The sources described by a [`crate::source::Source::summary`]: a database summary
/// (`{"database": …, "tables": […], "bytes_dumped": …}`), or an object holding such summaries
/// under `db` / `storage` (a whole project), or a bucket summary
/// (`{"bucket": …, "objects"|"files": n, "bytes": …, "seconds": …}`).
pub fn source_figures(v: &serde_json::Value) -> Vec<SourceFigures> {
    let ms = |v: &serde_json::Value| (v["seconds"].as_f64().unwrap_or(0.0) * 1000.0) as u64;
    if let Some(db) = v["database"].as_str() {
        let bytes = v["bytes_dumped"].as_u64().unwrap_or(0);
        let d = ms(v);
        return vec![SourceFigures {
            path: format!("db/{}", crate::source::postgres::dump::path_component(db)),
            kind: "database".into(),
            files: None,
            tables: v["tables"].as_array().map(|t| t.len() as u64),
            bytes,
            duration_ms: d,
            mb_per_s: mb_per_s(bytes, d),
        }];
    }
    if let Some(b) = v["bucket"].as_str() {
        let bytes = v["bytes"].as_u64().unwrap_or(0);
        let d = ms(v);
        return vec![SourceFigures {
            path: format!("storage/{b}"),
            kind: "storage".into(),
            files: v["objects"].as_u64().or(v["files"].as_u64()),
            tables: None,
            bytes,
            duration_ms: d,
            mb_per_s: mb_per_s(bytes, d),
        }];
    }
    let mut out = Vec::new();
    for key in ["db", "database", "storage", "buckets", "sources"] {
        match &v[key] {
            serde_json::Value::Array(a) => a.iter().for_each(|x| out.extend(source_figures(x))),
            x @ serde_json::Value::Object(_) => out.extend(source_figures(x)),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn sources_of_summaries() {
        let db = json!({"database": "app", "tables": [{}, {}], "parts": [{}, {}, {}], "bytes_dumped": 2_000_000, "seconds": 2.0});
        let f = super::source_figures(&db);
        assert_eq!(
            (f[0].path.as_str(), f[0].tables, f[0].files, f[0].mb_per_s),
            ("db/app", Some(2), None, 1.0)
        );
        let project = json!({"db": db, "storage": [{"bucket": "avatars", "objects": 5, "bytes": 10, "seconds": 0.0}]});
        let f = super::source_figures(&project);
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[1].path.as_str(), f[1].files, f[1].mb_per_s),
            ("storage/avatars", Some(5), 0.0)
        );
        // The shape of `ProjectSource::summary()`: a database and a storage summary side by side.
        let project = json!({"database": db, "storage": {"listing": "v2", "objects": 7, "buckets": [{"bucket": "a", "objects": 3, "bytes": 30}, {"bucket": "b", "objects": 4, "bytes": 40}]}});
        let f = super::source_figures(&project);
        let paths: Vec<_> = f.iter().map(|x| (x.path.as_str(), x.files)).collect();
        assert_eq!(
            paths,
            [
                ("db/app", None),
                ("storage/a", Some(3)),
                ("storage/b", Some(4))
            ]
        );
        assert!(super::source_figures(&serde_json::Value::Null).is_empty());
    }
}
