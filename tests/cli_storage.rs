//! `snap backup storage` / `snap restore --storage` through the real binary against the in-test
//! Storage API server (tests/support/storage_server.rs).

#[path = "support/storage_server.rs"]
mod storage_server;
mod support;

use std::path::PathBuf;

use serde_json::{Value, json};
use storage_server::{Content, StorageServer};
use support::*;

const KEY: &str = "service-role-key.for.tests";

struct Env {
    repo: TestRepo,
    key_file: PathBuf,
}

impl Env {
    fn new() -> Env {
        let repo = TestRepo::new();
        let key_file = repo.path("service-key");
        std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
        Env { repo, key_file }
    }

    /// `snap backup storage --json` against `server` (`--url` when `project`, else `--storage-url`).
    fn backup(
        &self,
        server: &StorageServer,
        project: bool,
        extra: &[&str],
    ) -> (i32, String, String) {
        let mut args: Vec<String> = vec!["backup".into(), "storage".into(), "--json".into()];
        if project {
            args.extend(["--url".into(), server.project_url()]);
        } else {
            args.extend(["--storage-url".into(), server.storage_url()]);
        }
        args.extend([
            "--service-key-file".into(),
            self.key_file.display().to_string(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        self.repo.run(&args)
    }

    fn backup_ok(&self, server: &StorageServer, project: bool, extra: &[&str]) -> Value {
        let (code, out, err) = self.backup(server, project, extra);
        assert_eq!(
            code, 0,
            "backup storage failed\nstdout:\n{out}\nstderr:\n{err}"
        );
        serde_json::from_str(&out).unwrap()
    }

    fn restore(
        &self,
        snapshot: &str,
        server: &StorageServer,
        extra: &[&str],
    ) -> (i32, String, String) {
        let mut args: Vec<String> = vec![
            "restore".into(),
            snapshot.into(),
            "--storage".into(),
            "--storage-url".into(),
            server.storage_url(),
        ];
        args.extend([
            "--service-key-file".into(),
            self.key_file.display().to_string(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        self.repo.run(&args)
    }
}

const MIB: u64 = 1024 * 1024;

/// Odd names that Supabase may hold (created by older servers or other tools).
const ODD: &[&str] = &[
    "with space/ünïcødé ✓.txt",
    "hash#and%percent%20.bin",
    "deep/a/b/c/d/e/leaf.json",
    "q?&$@=;:+,'!()*.x",
];

/// Three buckets: nested folders, an empty folder (placeholder), 0-byte, multi-MB (held and
/// generated), odd names, user metadata; one empty bucket.
fn populate(s: &StorageServer) {
    s.create_bucket(
        "avatars",
        true,
        Some(10 * MIB),
        Some(&["image/*", "application/octet-stream", "text/plain"]),
    );
    s.create_bucket("docs", false, None, None);
    s.create_bucket(
        "empty-bucket",
        false,
        Some(1024),
        Some(&["application/pdf"]),
    );
    let mut rng = Rng::new(6);
    s.put(
        "avatars",
        "users/1/face.png",
        Content::Bytes(random_bytes(&mut rng, 70_000).into()),
        "image/png",
        "max-age=3600",
        Some(json!({"owner": "ünï ✓", "n": 1, "nested": {"k": [1, 2], "deep": {"x": null}}})),
    );
    s.put(
        "avatars",
        "users/2/.emptyFolderPlaceholder",
        Content::Bytes(Vec::new().into()),
        "application/octet-stream",
        "max-age=3600",
        None,
    );
    s.put(
        "avatars",
        "zero.txt",
        Content::Bytes(Vec::new().into()),
        "text/plain",
        "no-cache",
        None,
    );
    s.put(
        "avatars",
        "big/held.bin",
        Content::Bytes(random_bytes(&mut rng, (2 * MIB + 123) as usize).into()),
        "application/octet-stream",
        "max-age=60",
        None,
    );
    s.put(
        "docs",
        "big/generated.bin",
        Content::Generated {
            seed: 7,
            len: 3 * MIB + 5,
        },
        "application/octet-stream",
        "max-age=60",
        Some(json!({"kind": "gen"})),
    );
    for (i, n) in ODD.iter().enumerate() {
        s.put(
            "docs",
            n,
            Content::Bytes(text_bytes(&mut rng, 100 + i * 50).into()),
            "text/plain;charset=UTF-8",
            "max-age=3600",
            None,
        );
    }
    for i in 0..40 {
        s.put(
            "docs",
            &format!("reports/2026/{:02}/r{i}.csv", i % 12),
            Content::Bytes(text_bytes(&mut rng, 500 + i * 10).into()),
            "text/csv",
            "max-age=3600",
            None,
        );
    }
}

/// Every bucket config and every object (bytes and metadata) of `a` equals `b`'s.
fn assert_same_storage(a: &StorageServer, b: &StorageServer) {
    let (ba, bb) = (a.buckets(), b.buckets());
    assert_eq!(
        ba.keys().collect::<Vec<_>>(),
        bb.keys().collect::<Vec<_>>(),
        "bucket ids"
    );
    for (id, x) in &ba {
        let y = &bb[id];
        assert_eq!(
            (x.public, x.file_size_limit, &x.allowed_mime_types),
            (y.public, y.file_size_limit, &y.allowed_mime_types),
            "config of bucket {id}"
        );
        let (oa, ob) = (a.objects(id), b.objects(id));
        assert_eq!(
            oa.keys().collect::<Vec<_>>(),
            ob.keys().collect::<Vec<_>>(),
            "objects of bucket {id}"
        );
        for (name, x) in &oa {
            let y = &ob[name];
            assert!(x.content.all() == y.content.all(), "bytes of {id}/{name}");
            assert_eq!(
                x.content_type, y.content_type,
                "content type of {id}/{name}"
            );
            assert_eq!(
                x.cache_control, y.cache_control,
                "cache control of {id}/{name}"
            );
            assert_eq!(
                x.user_metadata, y.user_metadata,
                "user metadata of {id}/{name}"
            );
        }
    }
}

#[test]
fn round_trip_into_an_empty_server_and_to_plain_files() {
    let src = StorageServer::start(KEY);
    populate(&src);
    let env = Env::new();
    let snap = env.backup_ok(&src, true, &["--tag", "nightly"]);
    let st = &snap["storage"];
    assert_eq!(st["listing"], "v2");
    assert_eq!(st["objects"], src.object_count() as u64);
    assert_eq!(st["buckets"].as_array().unwrap().len(), 3);
    assert_eq!(snap["source"], "storage");
    let id = snap["id"].as_str().unwrap().to_string();

    // The manifest carries bucket configs and object metadata.
    let ls: Value = env.repo.json(&["ls", &id, "--json"]);
    let text = ls.to_string();
    assert!(
        text.contains("storage/avatars") && text.contains("storage/empty-bucket"),
        "{text}"
    );

    // Into an empty server that accepts every name: everything comes back the same.
    let dst = StorageServer::start(KEY);
    dst.set_strict_names(false);
    let (code, out, err) = env.restore(&id, &dst, &["--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["uploaded"], src.object_count() as u64);
    assert_eq!(r["buckets_created"].as_array().unwrap().len(), 3);
    assert_same_storage(&src, &dst);

    // As plain files.
    let target = env.repo.path("files");
    env.repo.restore(&id, &target, &[]);
    for b in ["avatars", "docs"] {
        for (name, o) in src.objects(b) {
            let p = target.join("storage").join(b).join(&name);
            assert_eq!(
                std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
                o.content.all(),
                "{b}/{name}"
            );
        }
    }
    assert!(target.join("storage/empty-bucket").is_dir());
    assert!(
        target
            .join("storage/avatars/users/2/.emptyFolderPlaceholder")
            .is_file()
    );
}

#[test]
fn user_metadata_survives_both_shapes_of_the_info_answer() {
    // storage v1.70 answers user metadata as `metadata` (the default of the in-test server);
    // servers answering the database row put it in `user_metadata`. Both come back exact.
    for row_shape in [false, true] {
        let src = StorageServer::start(KEY);
        src.set_info_row_shape(row_shape);
        populate(&src);
        let with_meta = src
            .objects("docs")
            .values()
            .chain(src.objects("avatars").values())
            .filter(|o| o.user_metadata.is_some())
            .count();
        assert!(with_meta > 0, "the corpus has user metadata");
        let env = Env::new();
        let snap = env.backup_ok(&src, true, &[]);
        let id = snap["id"].as_str().unwrap().to_string();
        let dst = StorageServer::start(KEY);
        dst.set_strict_names(false);
        let (code, out, err) = env.restore(&id, &dst, &[]);
        assert_eq!(code, 0, "row shape {row_shape}: {out}\n{err}");
        assert_same_storage(&src, &dst);
    }
}

#[test]
fn v1_fallback_pages_folders_and_second_backup_reuses_unchanged_objects() {
    let s = StorageServer::start(KEY);
    s.set_v2(false);
    s.create_bucket("many", false, None, None);
    // 2,600 objects: more than two v1 pages at the root and in one folder, plus nested folders.
    for i in 0..1200 {
        s.put(
            "many",
            &format!("root-{i:05}.txt"),
            Content::Bytes(format!("object {i}").into_bytes().into()),
            "text/plain",
            "no-cache",
            None,
        );
    }
    for i in 0..1300 {
        s.put(
            "many",
            &format!("f/sub {}/o{i}.txt", i % 7),
            Content::Bytes(format!("nested {i}").into_bytes().into()),
            "text/plain",
            "no-cache",
            None,
        );
    }
    for i in 0..100 {
        s.put(
            "many",
            &format!("flat/{i}"),
            Content::Bytes(vec![i as u8; i].into()),
            "application/octet-stream",
            "no-cache",
            None,
        );
    }
    let env = Env::new();
    let first = env.backup_ok(&s, false, &["--concurrency", "8"]);
    assert_eq!(first["storage"]["listing"], "v1");
    assert_eq!(first["storage"]["objects"], 2600);
    assert_eq!(first["storage"]["downloaded"], 2600);
    assert!(
        s.state
            .list_v1_calls
            .load(std::sync::atomic::Ordering::SeqCst)
            > 10
    );
    let downloads = s.downloads();
    assert_eq!(downloads, 2600);

    // One object changed, one added, one deleted: only two are downloaded again.
    s.put(
        "many",
        "root-00007.txt",
        Content::Bytes(b"changed".to_vec().into()),
        "text/plain",
        "no-cache",
        None,
    );
    s.put(
        "many",
        "new.txt",
        Content::Bytes(b"new".to_vec().into()),
        "text/plain",
        "no-cache",
        None,
    );
    s.delete("many", "flat/3");
    let second = env.backup_ok(&s, false, &[]);
    assert_eq!(
        s.downloads() - downloads,
        2,
        "only changed and new objects are downloaded"
    );
    assert_eq!(second["storage"]["reused"], 2598);
    assert_eq!(second["storage"]["objects"], 2600);
    assert_eq!(second["parent"], first["id"]);
    let id = second["id"].as_str().unwrap();
    assert_eq!(env.repo.cat(id, "storage/many/root-00007.txt"), b"changed");
    assert_eq!(env.repo.cat(id, "storage/many/f/sub 3/o3.txt"), b"nested 3");
}

#[test]
fn a_server_restart_mid_backup_is_waited_out_and_retry_for_bounds_the_wait() {
    let s = StorageServer::start(KEY);
    s.create_bucket("b", false, None, None);
    for i in 0..6 {
        s.put(
            "b",
            &format!("o{i}.bin"),
            Content::Generated {
                seed: i,
                len: 300_000,
            },
            "application/octet-stream",
            "no-cache",
            None,
        );
    }
    let env = Env::new();
    // Down for 1.5 s at the first download, with a patience of 1 s: given up, and said without
    // a made-up HTTP status.
    s.faults().outage_at_next_download = Some(std::time::Duration::from_millis(1500));
    let (code, out, err) = env.backup(&s, false, &["--retry-for", "1"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("--retry-for") && !err.contains("HTTP 0"),
        "{err}"
    );
    assert!(env.repo.snapshots().is_empty());
    // A restart between objects (7 s: one restart of the real server took that long), then
    // one 20 s into the middle of a 200 MiB download: the default patience waits both out, the
    // download resumes where it broke, and every byte is right.
    let big = |seed| Content::Generated {
        seed,
        len: 200 * MIB,
    };
    s.put(
        "b",
        "big/big-200m.bin",
        big(99),
        "application/octet-stream",
        "no-cache",
        None,
    );
    s.faults().outage_at_next_download = Some(std::time::Duration::from_secs(7));
    let t = std::time::Instant::now();
    let snap = env.backup_ok(&s, false, &["--concurrency", "1"]);
    assert!(
        t.elapsed() >= std::time::Duration::from_secs(7),
        "the outage happened"
    );
    let id = snap["id"].as_str().unwrap().to_string();
    s.put(
        "b",
        "big/big-200m.bin",
        big(100),
        "application/octet-stream",
        "no-cache",
        None,
    );
    s.faults().outage_mid_body = Some(std::time::Duration::from_secs(20));
    let t = std::time::Instant::now();
    let snap2 = env.backup_ok(&s, false, &[]);
    assert!(
        t.elapsed() >= std::time::Duration::from_secs(20),
        "the outage happened"
    );
    assert!(s.faults().outage_mid_body.is_none());
    let id2 = snap2["id"].as_str().unwrap().to_string();
    for (snap_id, seed) in [(&id, 99), (&id2, 100)] {
        for (name, o) in s.objects("b") {
            let want = if name.starts_with("big/") {
                storage_server::generated(seed, 0, (200 * MIB) as usize)
            } else {
                o.content.all()
            };
            let got = env.repo.cat(snap_id, &format!("storage/b/{name}"));
            assert!(got == want, "{name} in {snap_id}");
        }
    }
    let st = &snap2["storage"];
    assert_eq!(
        (st["downloaded"].as_u64(), st["reused"].as_u64()),
        (Some(1), Some(6)),
        "{st}"
    );
}

#[test]
fn a_server_down_longer_than_retry_for_in_mid_download_gives_no_snapshot() {
    let s = StorageServer::start(KEY);
    s.create_bucket("b", false, None, None);
    let big = Content::Generated {
        seed: 1,
        len: 8 * MIB,
    };
    s.put(
        "b",
        "big.bin",
        big,
        "application/octet-stream",
        "no-cache",
        None,
    );
    s.faults().outage_mid_body = Some(std::time::Duration::from_secs(6));
    let env = Env::new();
    let (code, out, err) = env.backup(&s, false, &["--retry-for", "2s"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("downloading b/big.bin"), "{err}");
    assert!(
        err.contains("--retry-for") && !err.contains("HTTP 0"),
        "{err}"
    );
    assert!(env.repo.snapshots().is_empty(), "no snapshot was recorded");
}

#[test]
fn an_object_replaced_between_listing_and_download_is_stored_with_its_own_attributes() {
    let s = StorageServer::start(KEY);
    s.create_bucket("b", false, None, None);
    s.put(
        "b",
        "c/0200.bin",
        Content::Bytes(b"old bytes".to_vec().into()),
        "application/octet-stream",
        "no-cache",
        None,
    );
    s.faults().replace_at_download = Some((
        "b".into(),
        "c/0200.bin".into(),
        Content::Bytes(b"new <b>bytes</b>".to_vec().into()),
        "text/html".into(),
    ));
    let env = Env::new();
    let snap = env.backup_ok(&s, false, &[]);
    let id = snap["id"].as_str().unwrap().to_string();
    assert_eq!(
        env.repo.cat(&id, "storage/b/c/0200.bin"),
        b"new <b>bytes</b>"
    );
    // Restored: the new bytes with the new content type and eTag, not the listing's.
    let dst = StorageServer::start(KEY);
    let (code, out, err) = env.restore(&id, &dst, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let o = &dst.objects("b")["c/0200.bin"];
    assert_eq!(o.content.all(), b"new <b>bytes</b>");
    assert_eq!(o.content_type, "text/html");
    assert_same_storage(&s, &dst);
}

#[test]
fn diff_of_two_storage_snapshots_shows_only_what_changed() {
    let s = StorageServer::start(KEY);
    populate(&s);
    let env = Env::new();
    let first = env.backup_ok(&s, false, &[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // One object replaced, one added, one deleted: three changes, however many folders.
    let (name, _) = s.objects("docs").into_iter().next().unwrap();
    s.put(
        "docs",
        &name,
        Content::Bytes(b"changed".to_vec().into()),
        "text/plain",
        "no-cache",
        None,
    );
    s.put(
        "docs",
        "added/now.txt",
        Content::Bytes(b"new".to_vec().into()),
        "text/plain",
        "no-cache",
        None,
    );
    let (gone, _) = s.objects("avatars").into_iter().next().unwrap();
    s.delete("avatars", &gone);
    let second = env.backup_ok(&s, false, &[]);
    let d = env.repo.json(&[
        "diff",
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
        "--json",
    ]);
    let changes = d["changes"].as_array().unwrap();
    let files: Vec<&str> = changes
        .iter()
        .filter(|c| c["type"] == "file")
        .filter_map(|c| c["path"].as_str())
        .collect();
    assert_eq!(
        files.len(),
        3,
        "the replaced, the added and the deleted object: {d}"
    );
    // A folder changes only when something below it did (its newest object's time); the empty
    // bucket, with nothing below, keeps the bucket's own time. Before, every folder changed.
    for c in changes
        .iter()
        .filter(|c| c["type"] == "dir" && c["change"] == "changed")
    {
        let p = c["path"].as_str().unwrap();
        assert!(
            files.iter().any(|f| f.starts_with(&format!("{p}/"))),
            "{p} changed with nothing changed below it: {d}"
        );
    }
    // Seven changes (the count), across buckets: exactly seven objects listed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for i in 0..3 {
        s.put(
            "docs",
            &format!("reports/2026/0{i}/r{i}.csv"),
            Content::Bytes(format!("changed {i}").into_bytes().into()),
            "text/csv",
            "max-age=3600",
            None,
        );
    }
    s.put(
        "avatars",
        "zero.txt",
        Content::Bytes(Vec::new().into()),
        "text/plain",
        "max-age=1",
        None,
    );
    s.put(
        "avatars",
        "users/1/face.png",
        Content::Bytes(b"png".to_vec().into()),
        "image/png",
        "max-age=3600",
        Some(json!({"owner": "u2"})),
    );
    s.put(
        "empty-bucket",
        "now-not.pdf",
        Content::Bytes(b"%PDF".to_vec().into()),
        "application/pdf",
        "no-cache",
        None,
    );
    s.delete("docs", "added/now.txt");
    let third = env.backup_ok(&s, false, &[]);
    let d = env.repo.json(&[
        "diff",
        second["id"].as_str().unwrap(),
        third["id"].as_str().unwrap(),
        "--json",
    ]);
    let files: Vec<&str> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "file")
        .filter_map(|c| c["path"].as_str())
        .collect();
    assert_eq!(files.len(), 7, "{d}");
}

#[test]
fn an_empty_bucket_is_the_same_in_every_snapshot() {
    let s = StorageServer::start(KEY);
    s.create_bucket("empty", false, None, None);
    s.create_bucket("b", false, None, None);
    s.put(
        "b",
        "x",
        Content::Bytes(b"x".to_vec().into()),
        "text/plain",
        "no-cache",
        None,
    );
    let env = Env::new();
    let first = env.backup_ok(&s, false, &[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = env.backup_ok(&s, false, &[]);
    let d = env.repo.json(&[
        "diff",
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
        "--json",
    ]);
    assert_eq!(d["changes"], json!([]), "nothing changed: {d}");
}

#[test]
fn an_existing_bucket_configured_otherwise_is_kept_and_said() {
    let src = StorageServer::start(KEY);
    src.create_bucket("b", false, None, Some(&["text/plain"]));
    src.put(
        "b",
        "a.txt",
        Content::Bytes(b"a".to_vec().into()),
        "text/plain",
        "no-cache",
        None,
    );
    let env = Env::new();
    let id = env.backup_ok(&src, false, &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dst = StorageServer::start(KEY);
    dst.create_bucket("b", true, Some(1_000_000), None);
    let (code, out, err) = env.restore(&id, &dst, &["--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["buckets_kept_as_they_are"],
        json!([
            "b (public: true here, false in the snapshot; file size limit: 1000000 here, none in the snapshot; allowed MIME types: any here, text/plain in the snapshot)"
        ])
    );
    let (code, _, err) = env.restore(&id, &dst, &["--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: bucket b (public: true here")
            && err.contains("kept as it is")
            && err.contains("--apply-bucket-config"),
        "{err}"
    );
    assert!(dst.buckets()["b"].public, "kept");

    // --apply-bucket-config: what the Storage API can set is set and read back; a size limit
    // it cannot remove is still said.
    let (code, out, err) = env.restore(&id, &dst, &["--yes", "--apply-bucket-config", "--json"]);
    assert_eq!(
        code, 0,
        "{out}
{err}"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["buckets_updated"].as_array().map(Vec::len),
        Some(1),
        "{v}"
    );
    assert_eq!(
        v["buckets_kept_as_they_are"],
        json!(["b (file size limit: 1000000 here, none in the snapshot)"])
    );
    let b = &dst.buckets()["b"];
    assert_eq!(
        (b.public, b.file_size_limit, b.allowed_mime_types.clone()),
        (false, Some(1_000_000), Some(vec!["text/plain".to_string()]))
    );
    let (code, _, err) = env.restore(&id, &dst, &["--yes", "--apply-bucket-config"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("file size limit: 1000000 here") && err.contains("did not take"),
        "{err}"
    );
}

#[test]
fn apply_bucket_config_gives_an_existing_bucket_the_snapshots_configuration() {
    let src = StorageServer::start(KEY);
    src.create_bucket("b", true, Some(5_000), Some(&["text/plain", "image/*"]));
    src.put(
        "b",
        "a.txt",
        Content::Bytes(b"a".to_vec().into()),
        "text/plain",
        "no-cache",
        None,
    );
    let env = Env::new();
    let id = env.backup_ok(&src, false, &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The destination's bucket refuses text/plain: without the option the upload is refused.
    let dst = StorageServer::start(KEY);
    dst.create_bucket("b", false, Some(10), Some(&["application/pdf"]));
    let (code, _, err) = env.restore(&id, &dst, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("mime type text/plain is not supported"),
        "{err}"
    );
    // With it, the configuration comes first, then the objects.
    let (code, out, err) = env.restore(&id, &dst, &["--apply-bucket-config", "--json"]);
    assert_eq!(
        code, 0,
        "{out}
{err}"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["buckets_kept_as_they_are"], json!([]));
    assert_eq!(
        v["buckets_updated"],
        json!([
            "b (public: false here, true in the snapshot; file size limit: 10 here, 5000 in the snapshot; allowed MIME types: application/pdf here, text/plain, image/* in the snapshot)"
        ])
    );
    assert_same_storage(&src, &dst);
}

#[test]
fn a_key_revoked_after_the_listing_fails_the_backup_instead_of_losing_objects() {
    // The plain download route takes a refused key for anonymous and answers "Bucket not
    // found" for a private bucket (transcript §8, §10), which reads as objects deleted since
    // the listing: a snapshot without them, exit 0. snap downloads through the authenticated
    // routes, which refuse the key.
    let s = StorageServer::start(KEY);
    s.create_bucket("private", false, None, None);
    for n in ["a", "b", "c"] {
        s.put(
            "private",
            n,
            Content::Bytes(n.as_bytes().to_vec().into()),
            "text/plain",
            "no-cache",
            Some(json!({"n": n})),
        );
    }
    s.faults().revoke_key_after_list = true;
    let env = Env::new();
    let (code, out, err) = env.backup(&s, false, &[]);
    assert_eq!(
        code, 1,
        "{out}
{err}"
    );
    assert!(
        err.contains("refused the key") && err.contains("signature verification failed"),
        "{err}"
    );
    assert!(!err.contains("deleted"), "{err}");
    assert!(env.repo.snapshots().is_empty(), "no snapshot was recorded");
}

#[test]
fn a_transfer_broken_after_its_last_byte_is_complete() {
    let s = StorageServer::start(KEY);
    s.create_bucket("b", false, None, None);
    s.put(
        "b",
        "whole.bin",
        Content::Generated {
            seed: 9,
            len: 200_000,
        },
        "application/octet-stream",
        "no-cache",
        None,
    );
    s.faults().reset_after_last_byte = 1;
    let env = Env::new();
    let snap = env.backup_ok(&s, false, &[]);
    assert_eq!(s.faults().reset_after_last_byte, 0, "the fault happened");
    assert_eq!(
        (
            snap["storage"]["objects"].as_u64(),
            snap["storage"]["vanished"].as_u64(),
            snap["storage"]["failed"].as_u64()
        ),
        (Some(1), Some(0), Some(0)),
        "{snap}"
    );
    let id = snap["id"].as_str().unwrap();
    assert!(env.repo.cat(id, "storage/b/whole.bin") == storage_server::generated(9, 0, 200_000));
}

#[test]
fn backup_completes_through_transient_faults() {
    let s = StorageServer::start(KEY);
    s.create_bucket("b", false, None, None);
    s.put(
        "b",
        "big.bin",
        Content::Generated {
            seed: 3,
            len: 4 * MIB,
        },
        "application/octet-stream",
        "no-cache",
        None,
    );
    for i in 0..20 {
        s.put(
            "b",
            &format!("small/{i}"),
            Content::Bytes(vec![b'x'; 1000 + i].into()),
            "text/plain",
            "no-cache",
            None,
        );
    }
    {
        let mut f = s.faults();
        f.errors_5xx = 5;
        f.reset_mid_body = 3;
        f.slow_next = 2;
        f.slow_ms = 2500;
    }
    let env = Env::new();
    let snap = env.backup_ok(&s, true, &["--storage-timeout", "1"]);
    assert_eq!(snap["storage"]["objects"], 21);
    assert_eq!(snap["storage"]["vanished"], 0);
    let id = snap["id"].as_str().unwrap();
    assert!(
        env.repo.cat(id, "storage/b/big.bin")
            == storage_server::generated(3, 0, (4 * MIB) as usize),
        "resumed download is byte-exact"
    );
    assert_eq!(s.faults().reset_mid_body, 0, "the resets happened");
    // The first two requests are slower than the 1 s timeout (the client gives up before their
    // error answer), then 3 error answers, then 3 broken bodies: each one retried.
    assert!(
        snap["storage"]["retries"].as_u64().unwrap() >= 8,
        "{}",
        snap["storage"]
    );
}

#[test]
fn refused_key_and_no_buckets_leave_no_snapshot_and_say_what_to_do() {
    let s = StorageServer::start(KEY);
    s.create_bucket("b", false, None, None);
    s.put(
        "b",
        "x",
        Content::Bytes(b"x".to_vec().into()),
        "text/plain",
        "no-cache",
        None,
    );
    let env = Env::new();
    s.faults().unauthorized = true;
    let (code, out, err) = env.backup(&s, true, &[]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("service_role key") && err.contains("401"),
        "{err}"
    );
    assert!(
        !err.contains(KEY) && !out.contains(KEY),
        "the key is never printed"
    );
    s.faults().unauthorized = false;

    // A wrong key: through the gateway HTTP 401; from the storage server itself HTTP 400 with
    // statusCode 403 in the body.
    std::fs::write(&env.key_file, "not-the-key").unwrap();
    let (code, _, err) = env.backup(&s, true, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("refused the key") && err.contains("401"),
        "{err}"
    );
    let (code, _, err) = env.backup(&s, false, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("refused the key") && err.contains("403"),
        "{err}"
    );
    assert!(!err.contains("not-the-key"));

    // No buckets at all: probably the anon key.
    std::fs::write(&env.key_file, KEY).unwrap();
    let empty = StorageServer::start(KEY);
    let (code, _, err) = env.backup(&empty, false, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("anon key"), "{err}");
    assert!(env.repo.snapshots().is_empty(), "no snapshot was recorded");

    // The key from the environment works too.
    let mut c = env.repo.cmd();
    c.args(["backup", "storage", "--storage-url", &s.storage_url()])
        .env("SUPABASE_SERVICE_ROLE_KEY", KEY);
    let (code, out, err) = output_parts(c.output().unwrap());
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("1 object:") && !out.contains(KEY), "{out}");
}

#[test]
fn object_deleted_mid_backup_is_counted_and_warned_about() {
    let s = StorageServer::start(KEY);
    s.create_bucket("b", false, None, None);
    for n in ["a", "b", "c"] {
        s.put(
            "b",
            n,
            Content::Bytes(n.as_bytes().to_vec().into()),
            "text/plain",
            "no-cache",
            None,
        );
    }
    s.faults().delete_after_list = vec![("b".into(), "b".into())];
    let env = Env::new();
    let mut args: Vec<String> = [
        "backup",
        "storage",
        "--storage-url",
        &s.storage_url(),
        "--service-key-file",
    ]
    .map(String::from)
    .to_vec();
    args.push(env.key_file.display().to_string());
    let (code, out, err) = env.repo.run(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("b/b was deleted during the backup"), "{err}");
    assert!(err.contains("1 object deleted or changed"), "{err}");
    eprintln!("{out}");
    assert!(
        out.contains("2 objects: 2 downloaded")
            // 2 bytes read: the new bytes are the snapshot's metadata, no ratio to show.
            && !out.contains("dedup ratio")
            && out.contains(" B/s)")
            && !out.contains("MB/s"),
        "{out}"
    );
    let snaps = env.repo.snapshots();
    let id = snaps[0]["id"].as_str().unwrap();
    assert_eq!(env.repo.cat(id, "storage/b/c"), b"c");
    let (code, _, _) = env.repo.run(&["cat", id, "storage/b/b"]);
    assert_ne!(code, 0, "the vanished object is not in the snapshot");
}

#[test]
fn restore_skips_existing_reports_refused_names_and_a_rerun_completes() {
    let src = StorageServer::start(KEY);
    src.create_bucket("b", false, None, None);
    for i in 0..10 {
        src.put(
            "b",
            &format!("ok/{i}.txt"),
            Content::Bytes(format!("v1 {i}").into_bytes().into()),
            "text/plain",
            "max-age=5",
            Some(json!({"i": i})),
        );
    }
    src.put(
        "b",
        "ünïcødé.txt",
        Content::Bytes(b"u".to_vec().into()),
        "text/plain",
        "no-cache",
        None,
    );
    let env = Env::new();
    let id = env.backup_ok(&src, false, &[])["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The destination already has one object (other content) and refuses non-ASCII names.
    let dst = StorageServer::start(KEY);
    dst.create_bucket("b", false, None, None);
    dst.put(
        "b",
        "ok/0.txt",
        Content::Bytes(b"already here".to_vec().into()),
        "text/plain",
        "no-cache",
        None,
    );
    let (code, _, err) = env.restore(&id, &dst, &[]);
    assert_eq!(code, 2, "a usage error: --yes is missing");
    assert!(
        err.contains("already hold objects") && err.contains("--yes"),
        "{err}"
    );
    assert_eq!(
        dst.object_count(),
        1,
        "nothing written without confirmation"
    );

    let (code, out, err) = env.restore(&id, &dst, &["--yes", "--concurrency", "3"]);
    assert_eq!(code, 1, "a refused object fails the restore\n{out}\n{err}");
    assert!(
        out.contains("9 objects uploaded") && out.contains("1 skipped") && out.contains("1 failed"),
        "{out}"
    );
    assert!(
        err.contains("ünïcødé.txt") && err.contains("Invalid key"),
        "{err}"
    );
    assert!(
        !err.contains("kept as it is"),
        "same configuration: nothing to say: {err}"
    );
    assert_eq!(
        dst.objects("b")["ok/0.txt"].content.all(),
        b"already here",
        "kept without --overwrite"
    );
    assert_eq!(
        dst.objects("b")["ok/5.txt"].user_metadata,
        Some(json!({"i": 5}))
    );
    assert_eq!(dst.objects("b")["ok/5.txt"].cache_control, "max-age=5");

    // The server is fixed; the same restore completes the rest, through a burst of 5xx.
    dst.set_strict_names(false);
    dst.faults().errors_5xx = 3;
    let (code, out, err) = env.restore(&id, &dst, &["--yes", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (r["uploaded"].as_u64(), r["skipped"].as_u64()),
        (Some(1), Some(10))
    );
    assert_eq!(dst.faults().errors_5xx, 0, "the errors happened");

    // --overwrite replaces, --prefix limits.
    let (code, out, err) = env.restore(
        &id,
        &dst,
        &["--yes", "--overwrite", "--prefix", "ok/0", "--json"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["uploaded"], 1);
    assert_eq!(dst.objects("b")["ok/0.txt"].content.all(), b"v1 0");
    assert_same_storage(&src, &dst);
}

#[allow(dead_code)]
#[path = "../benches/common/proc.rs"]
mod proc;

/// Peak RSS of `snap backup storage` stays flat: a bucket of 336 MiB (one 288 MiB object and
/// three of 16 MiB, 4 transfers at once, generated on the fly by the server) is backed up with a
/// peak well below the size of its largest object: no object is ever held in memory. (The
/// saver's own pipeline needs about 100–150 MiB at any size; benches/storage.rs runs 1 GiB.)
#[test]
fn memory_stays_flat_whatever_the_object_sizes() {
    let s = StorageServer::start(KEY);
    s.create_bucket("big", false, None, None);
    for (i, mib) in [288u64, 16, 16, 16].into_iter().enumerate() {
        s.put(
            "big",
            &format!("o{i}.bin"),
            Content::Generated {
                seed: 100 + i as u64,
                len: mib * MIB,
            },
            "application/octet-stream",
            "no-cache",
            None,
        );
    }
    let env = Env::new();
    let mut c = env.repo.cmd();
    c.args([
        "backup",
        "storage",
        "--json",
        "--storage-url",
        &s.storage_url(),
        "--concurrency",
        "4",
        "--service-key-file",
    ]);
    c.arg(&env.key_file);
    let storage = proc::run(c, None);
    let v: Value = serde_json::from_str(&storage.stdout).unwrap();
    assert_eq!(v["summary"]["bytes_read"].as_u64(), Some(336 * MIB));
    eprintln!(
        "peak RSS for a 336 MiB bucket (largest object 288 MiB): {} KiB ({:?})",
        storage.maxrss_kib, storage.wall
    );
    assert!(
        storage.maxrss_kib < 208 * 1024,
        "storage backup peaked at {} KiB",
        storage.maxrss_kib
    );
}

#[test]
fn a_server_that_echoes_the_request_never_gets_the_key_printed() {
    // Supabase's newer secret keys are not JWTs: only the redaction step's memory of the
    // key read from --service-key-file can mask it.
    const SECRET: &str = "sb_secret_Qm9vZ2llV29vZ2llMTIzNDU2";
    let s = StorageServer::start(SECRET);
    s.create_bucket("b", false, None, None);
    let env = Env::new();
    std::fs::write(&env.key_file, format!("{SECRET}\n")).unwrap();
    s.faults().echo_request_headers = true;
    for project in [false, true] {
        let (code, out, err) = env.backup(&s, project, &[]);
        assert_eq!(code, 1, "{out}\n{err}");
        assert!(
            err.contains("proxy: request refused"),
            "the body is shown: {err}"
        );
        assert!(err.contains("***"), "{err}");
        assert!(!err.contains(SECRET) && !out.contains(SECRET), "{err}");
    }
}
