//! Library level: one snapshot for a whole project — a real throwaway PostgreSQL and the in-test
//! Storage API server through [`ProjectSource`] into ONE snapshot holding `db/<database>/…` and
//! `storage/<bucket>/…`; a second backup reuses the unchanged objects.

#[path = "support/pg.rs"]
mod pg;
#[path = "support/storage_server.rs"]
mod storage_server;
mod support;

use std::sync::Arc;

use serde_json::json;
use snap::backend::{Backend, MemoryBackend};
use snap::ops::{BackupInput, BackupOptions, backup};
use snap::progress::NoProgress;
use snap::repo::Repository;
use snap::snapshot::{EntryKind, SourceKind};
use snap::source::postgres::conn::ConnSpec;
use snap::source::postgres::{DatabaseSource, DbOptions};
use snap::source::project::ProjectSource;
use snap::source::storage::{StorageOptions, StorageSource, resolve_api_base};
use storage_server::{Content, StorageServer};
use zeroize::Zeroizing;

#[test]
fn database_and_storage_in_one_snapshot() {
    let pg = pg::PgCluster::start();
    pg.create_db("app");
    pg.psql_db("app", "CREATE TABLE public.files(id int PRIMARY KEY, object text); INSERT INTO public.files VALUES (1, 'docs/a.txt'), (2, 'docs/b.txt')");
    let server = StorageServer::start("key");
    server.create_bucket("docs", false, Some(1 << 20), Some(&["text/plain"]));
    server.put(
        "docs",
        "docs/a.txt",
        Content::Bytes(b"alpha".to_vec().into()),
        "text/plain",
        "max-age=10",
        Some(json!({"row": 1})),
    );
    server.put(
        "docs",
        "docs/b.txt",
        Content::Bytes(b"beta".to_vec().into()),
        "text/plain",
        "no-cache",
        None,
    );

    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    Repository::init(&*backend, b"pw", &support::fast_init_options()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = Repository::open(backend, b"pw", cache.path()).unwrap();
    let project = || {
        let db = DatabaseSource::connect(DbOptions {
            conn: ConnSpec::from_url(&pg.url_db("app"), None).unwrap(),
            pg_bin: Some(pg::bin_dir()),
        })
        .unwrap();
        let storage = StorageSource::new(StorageOptions {
            api_base: resolve_api_base(Some(&server.project_url()), None).unwrap(),
            service_key: Zeroizing::new("key".into()),
            ..Default::default()
        })
        .unwrap();
        ProjectSource::new(Some(db), Some(storage))
    };

    let out = backup(
        &repo,
        BackupInput::Source(Box::new(project())),
        &BackupOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let m = &out.snapshot.manifest;
    assert_eq!(m.source, SourceKind::Project);
    assert_eq!(m.paths, ["db/app", "storage"]);
    assert_eq!(out.source_summary.database().unwrap().database, "app");
    assert_eq!(out.source_summary.storage().unwrap().objects, 2);
    let tree = repo.load_tree(m).unwrap();
    let files = tree
        .get("db/app/tables/public.files.sql")
        .expect("table data in the snapshot");
    let mut sql = Vec::new();
    repo.write_file_to(&files.chunks, &mut sql).unwrap();
    assert!(String::from_utf8_lossy(&sql).contains("docs/a.txt"));
    let bucket = tree.get("storage/docs").unwrap();
    assert_eq!(bucket.kind, EntryKind::Dir);
    assert_eq!(
        bucket.attrs["bucket"]["allowed_mime_types"],
        json!(["text/plain"])
    );
    assert_eq!(bucket.attrs["bucket"]["file_size_limit"], 1 << 20);
    let a = tree.get("storage/docs/docs/a.txt").unwrap();
    assert_eq!(
        (
            a.attrs["content_type"].as_str(),
            a.attrs["cache_control"].as_str()
        ),
        (Some("text/plain"), Some("max-age=10"))
    );
    assert_eq!(a.attrs["user_metadata"], json!({"row": 1}));
    let mut bytes = Vec::new();
    repo.write_file_to(&a.chunks, &mut bytes).unwrap();
    assert_eq!(bytes, b"alpha");

    // The next night: the parent is found, the objects are not downloaded again.
    let downloads = server.downloads();
    let again = backup(
        &repo,
        BackupInput::Source(Box::new(project())),
        &BackupOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(again.snapshot.manifest.parent, Some(out.snapshot.id));
    assert_eq!(server.downloads(), downloads);
    assert_eq!(again.source_summary.storage().unwrap().reused, 2);
    let tree2 = repo.load_tree(&again.snapshot.manifest).unwrap();
    assert_eq!(
        tree2.get("storage/docs/docs/a.txt").unwrap().attrs["user_metadata"],
        json!({"row": 1})
    );
}
