//! The figures a backup is summarised by (the old nightly scripts printed the same): bytes read
//! and added, dedup ratio, files and tables, duration and MB/s, snapshot id — for the snapshot
//! and for each source in it. Used by `snap backup`, `snap backup db`, `snap backup --config`
//! and `snap run` alike.

use serde::Serialize;

use crate::ops::BackupOutcome;
use crate::snapshot::Summary;
use crate::source::SourceSummary;
use crate::source::postgres::DbSummary;
use crate::source::storage::BucketSummary;

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

/// The sources a [`SourceSummary`] describes: a database, the buckets of a storage backup, or
/// both (a whole project).
pub fn source_figures(v: &SourceSummary) -> Vec<SourceFigures> {
    let mut out: Vec<SourceFigures> = v.database().map(database_figures).into_iter().collect();
    if let Some(st) = v.storage() {
        out.extend(st.buckets.iter().map(bucket_figures));
    }
    out
}

fn database_figures(db: &DbSummary) -> SourceFigures {
    let d = (db.seconds * 1000.0) as u64;
    SourceFigures {
        path: format!(
            "db/{}",
            crate::source::postgres::dump::path_component(&db.database)
        ),
        kind: "database".into(),
        files: None,
        tables: Some(db.tables.len() as u64),
        bytes: db.bytes_dumped,
        duration_ms: d,
        mb_per_s: mb_per_s(db.bytes_dumped, d),
    }
}

/// A bucket (its time is not measured apart: 0).
fn bucket_figures(b: &BucketSummary) -> SourceFigures {
    SourceFigures {
        path: format!("storage/{}", b.bucket),
        kind: "storage".into(),
        files: Some(b.objects),
        tables: None,
        bytes: b.bytes,
        duration_ms: 0,
        mb_per_s: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use crate::source::postgres::DbSummary;
    use crate::source::storage::{BucketSummary, StorageSummary};
    use crate::source::{ProjectSummary, SourceSummary};

    fn db() -> DbSummary {
        DbSummary {
            database: "app".into(),
            tables: vec![Default::default(), Default::default()],
            parts: vec![Default::default(), Default::default(), Default::default()],
            bytes_dumped: 2_000_000,
            seconds: 2.0,
            ..Default::default()
        }
    }

    fn bucket(name: &str, objects: u64, bytes: u64) -> BucketSummary {
        BucketSummary {
            bucket: name.into(),
            objects,
            bytes,
        }
    }

    #[test]
    fn sources_of_summaries() {
        let f = super::source_figures(&SourceSummary::Database(db()));
        assert_eq!(
            (f[0].path.as_str(), f[0].tables, f[0].files, f[0].mb_per_s),
            ("db/app", Some(2), None, 1.0)
        );
        let storage = StorageSummary {
            buckets: vec![bucket("avatars", 5, 10)],
            ..Default::default()
        };
        let f = super::source_figures(&SourceSummary::Storage(storage));
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].path.as_str(), f[0].files, f[0].mb_per_s),
            ("storage/avatars", Some(5), 0.0)
        );
        // A project: a database and a storage summary side by side.
        let storage = StorageSummary {
            listing: "v2".into(),
            objects: 7,
            buckets: vec![bucket("a", 3, 30), bucket("b", 4, 40)],
            ..Default::default()
        };
        let project = SourceSummary::Project(ProjectSummary {
            database: Some(db()),
            storage: Some(storage),
        });
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
        assert!(super::source_figures(&SourceSummary::None).is_empty());
    }
}
