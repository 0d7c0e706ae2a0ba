//! Repositories on a real S3-compatible server (moto with SigV4 checked; tests/support/s3.rs):
//! every everyday command through the real binary, two hosts backing up at once, and the local
//! cache that keeps a remote repository cheap to open.

#[path = "support/s3.rs"]
mod s3;
mod support;

use std::process::Stdio;
use std::sync::Arc;

use s3::S3Server;
use snap::backend::{Backend, CountingBackend};
use snap::repo::Repository;
use support::*;

fn small_spec() -> TreeSpec {
    TreeSpec {
        max_depth: 2,
        entries: (3, 6),
        large_files: 1,
        large_size: 400 << 10,
        small_max: 8 << 10,
    }
}

/// A repository at `prefix` on the server, created with the cheap KDF, 16 KiB chunks and 1 MiB
/// packs (small data, several packs).
fn init_repo(server: &S3Server, prefix: &str) -> TestRepo {
    let r = TestRepo::uninit_at(&server.location(prefix), server.env());
    let (code, out, err) = r.init(&["--chunk-avg-kib", "16", "--pack-size", "1"]);
    assert_eq!(
        code, 0,
        "snap init on S3 failed\nstdout:\n{out}\nstderr:\n{err}"
    );
    r
}

#[test]
fn every_command_works_on_an_s3_repository() {
    let server = S3Server::start();
    let r = init_repo(&server, "cli");
    // init refuses a second time, and its message names the location without secrets.
    let (code, _, err) = r.init(&[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("already holds a snap repository") && err.contains("s3:http://127.0.0.1"),
        "{err}"
    );
    assert!(!err.contains(&server.secret_key));
    let nobucket = TestRepo::uninit_at(
        &format!("s3:{}/no-such-bucket/x", server.endpoint),
        server.env(),
    );
    let (code, _, err) = nobucket.init(&[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("bucket does not exist"), "{err}");

    let src = r.path("src");
    gen_tree(&src, 7, &small_spec());
    let s1 = r.backup(&[&src]);
    let id1 = s1["id"].as_str().unwrap().to_string();
    std::fs::write(src.join("new-file"), b"added after the first backup").unwrap();
    let s2 = r.backup(&[src.to_str().unwrap(), "--tag", "n=2"]);
    assert_eq!(s2["summary"]["files_new"], 1, "{s2}");
    assert_eq!(r.snapshot_ids().len(), 2);

    let ls = r.ok(&["ls", &id1[..8]]);
    assert!(ls.lines().count() > 5, "{ls}");
    let target = r.path("restore");
    r.restore("latest", &target, &[]);
    assert_trees_equal(&src, &restored_path(&target, &src));
    assert_eq!(
        r.cat("latest", &format!("{}/new-file", stored(&src))),
        b"added after the first backup"
    );

    r.ok(&["check", "--read-data"]);
    let stats = r.json(&["stats", "--json"]);
    assert!(stats.to_string().contains("packs"), "{stats}");
    r.ok(&["key", "list"]);
    r.ok(&["diff", &id1[..8], "latest"]);

    // forget the first snapshot, prune with no grace twice (condemn, then delete): the second
    // still restores byte for byte and check is clean.
    r.ok(&["forget", "--keep-last", "1"]);
    r.ok(&["prune", "--grace", "0s"]);
    r.ok(&["prune", "--grace", "0s"]);
    assert_eq!(r.snapshot_ids().len(), 1);
    let target2 = r.path("restore2");
    r.restore("latest", &target2, &[]);
    assert_trees_equal(&src, &restored_path(&target2, &src));
    r.ok(&["check", "--read-data"]);
    r.ok(&["unlock"]);
}

#[test]
fn two_hosts_back_up_into_one_s3_repository_at_once() {
    let server = S3Server::start();
    let r = init_repo(&server, "shared");
    let (a, b) = (r.path("host-a"), r.path("host-b"));
    gen_tree(&a, 11, &small_spec());
    gen_tree(&b, 12, &small_spec());
    // Two processes with their own caches (as two machines have), started together.
    let spawn = |src: &std::path::Path, host: &str, cache: &str| {
        r.cmd()
            .env("SNAP_CACHE_DIR", r.path(cache))
            .args(["backup", "--json", "--host", host])
            .arg(src)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (ca, cb) = (
        spawn(&a, "host-a", "cache-a"),
        spawn(&b, "host-b", "cache-b"),
    );
    for c in [ca, cb] {
        let (code, out, err) = output_parts(c.wait_with_output().unwrap());
        assert_eq!(code, 0, "{out}\n{err}");
    }
    let snaps = r.snapshots();
    assert_eq!(snaps.len(), 2);
    for (src, host) in [(&a, "host-a"), (&b, "host-b")] {
        let s = snaps.iter().find(|s| s["host"] == host).unwrap();
        let target = r.path(&format!("restore-{host}"));
        r.restore(s["id"].as_str().unwrap(), &target, &[]);
        assert_trees_equal(src, &restored_path(&target, src));
    }
    r.ok(&["check", "--read-data"]);
    // Locks on S3: while a backup holds its shared lock, prune is refused with exit code 3.
    let go = r.path("go");
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; echo night",
        go.display()
    );
    let backup = r
        .cmd()
        .args(["backup", "--command", &script, "--stdin-name", "db/x.sql"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let locks = server.backend("shared");
    while locks.list("locks/").unwrap().is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (code, _, err) = r.run(&["prune"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("shared lock held by `snap backup`"), "{err}");
    std::fs::write(&go, b"").unwrap();
    let (code, out, err) = output_parts(backup.wait_with_output().unwrap());
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        locks.list("locks/").unwrap().is_empty(),
        "the lock is released"
    );
    r.ok(&["prune"]);
}

/// A fresh cache costs one GET per pack trailer and manifest; a warm cache costs none of those.
#[test]
fn the_local_cache_keeps_a_remote_repository_cheap_to_open() {
    let server = S3Server::start();
    let r = init_repo(&server, "cache");
    let src = r.path("src");
    gen_tree(&src, 3, &small_spec());
    for i in 0..3 {
        std::fs::write(src.join("changing"), format!("round {i}")).unwrap();
        r.backup(&[&src]);
    }
    let cache = tempfile::tempdir().unwrap();
    let open = || {
        let b: Arc<dyn Backend> = Arc::new(CountingBackend::new(server.backend("cache")));
        Repository::open(b, r.password.as_bytes(), cache.path()).unwrap()
    };
    let packs = server.backend("cache").list("data/").unwrap().len() as u64;
    assert!(packs >= 2);

    let cold = open();
    let before = cold.backend().counts().unwrap();
    assert_eq!(cold.snapshots().unwrap().len(), 3);
    cold.index().unwrap();
    let c = cold.backend().counts().unwrap().since(&before);
    assert_eq!(
        c.gets,
        3 + packs,
        "cold: every manifest, and the end of every pack (footer and trailer in one read): {c:?}"
    );
    drop(cold);

    let warm = open();
    let before = warm.backend().counts().unwrap();
    assert_eq!(warm.snapshots().unwrap().len(), 3);
    warm.index().unwrap();
    let c = warm.backend().counts().unwrap().since(&before);
    assert_eq!(
        (c.gets, c.lists),
        (0, 2),
        "warm: two listings (snapshots/, data/), nothing fetched: {c:?}"
    );
    drop(warm);

    // A lost cache costs time, never data.
    std::fs::remove_dir_all(cache.path()).unwrap();
    let again = open();
    assert_eq!(again.snapshots().unwrap().len(), 3);
    let target = r.path("restore");
    r.restore("latest", &target, &[]);
    assert_trees_equal(&src, &restored_path(&target, &src));
}

/// `rclone serve s3` answers ranged GETs with 200 + Content-Range, which object_store refuses:
/// a backup into it, then restore (with a fresh cache, so pack trailers are read by range too),
/// cat and check --read-data all come back byte-exact and clean.
#[test]
fn a_repository_on_rclone_serve_s3_restores_byte_exact() {
    let data = tempfile::tempdir().unwrap();
    let server = S3Server::start_rclone(data.path());
    let r = init_repo(&server, "rclone");
    let src = r.path("src");
    let spec = TreeSpec {
        large_files: 4,
        large_size: 700 << 10,
        ..small_spec()
    };
    let info = gen_tree(&src, 19, &spec);
    let v = r.backup(&[&src]);
    assert!(v["summary"]["packs_new"].as_u64().unwrap() > 1, "{v}");
    std::fs::remove_dir_all(&r.cache).unwrap();
    let target = r.path("restored");
    r.restore("latest", &target, &[]);
    assert_trees_equal(&src, &restored_path(&target, &src));
    let big = info
        .files
        .iter()
        .max_by_key(|f| std::fs::metadata(f).unwrap().len())
        .unwrap();
    assert_eq!(r.cat("latest", &stored(big)), std::fs::read(big).unwrap());
    let (code, out, err) = r.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("no problems found"), "{out}{err}");
}
