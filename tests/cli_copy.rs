//! `snap copy` between repositories: local → S3 (moto, SigV4 checked) → local with byte-exact
//! restores, shared and different master keys, dry runs, incremental re-runs, and an
//! interrupted copy that resumes without ever exposing a partial snapshot.

#[path = "support/s3.rs"]
mod s3;
mod support;

use std::sync::Arc;

use s3::S3Server;
use serde_json::Value;
use snap::backend::{Backend, Fault, FaultyBackend, MemoryBackend};
use snap::ops::copy::{CopyMode, CopyOptions, copy};
use snap::ops::{BackupInput, BackupOptions, backup};
use snap::progress::NoProgress;
use snap::repo::Repository;
use support::*;

fn spec() -> TreeSpec {
    TreeSpec {
        max_depth: 2,
        entries: (3, 6),
        large_files: 1,
        large_size: 600 << 10,
        small_max: 8 << 10,
    }
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} is not a number in {v}"))
}

#[test]
fn copy_local_to_s3_and_back_with_shared_and_different_keys() {
    let server = S3Server::start();
    let a = TestRepo::with_init_args(&["--chunk-avg-kib", "16", "--pack-size", "1"]);
    let src = a.path("src");
    gen_tree(&src, 21, &spec());
    let s1 = a.backup(&[src.to_str().unwrap(), "--tag", "night=1"]);
    std::fs::write(src.join("second-night"), vec![7u8; 100_000]).unwrap();
    let s2 = a.backup(&[src.to_str().unwrap(), "--tag", "night=2"]);
    let ids_a = [
        s1["id"].as_str().unwrap().to_string(),
        s2["id"].as_str().unwrap().to_string(),
    ];

    // B on S3 shares A's master key (same password, so --key-from-repo opens it).
    let b = TestRepo::uninit_at(&server.location("offsite"), server.env());
    let (code, out, err) = b.init(&["--copy-key-from", a.repo.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");
    let copy_ab = |extra: &[&str]| -> Value {
        let mut args = vec![
            "copy",
            "--to",
            b.repo.to_str().unwrap(),
            "--key-from-repo",
            "--json",
        ];
        args.extend_from_slice(extra);
        let mut c = a.cmd();
        c.envs(server.env()).args(&args);
        let (code, out, err) = output_parts(c.output().unwrap());
        assert_eq!(code, 0, "snap {args:?}\n{out}\n{err}");
        serde_json::from_str(&out).unwrap()
    };

    // Dry run: says what would go, sends nothing.
    let dry = copy_ab(&["--dry-run"]);
    assert_eq!(dry["mode"], "same-key");
    assert_eq!(dry["copied"].as_array().unwrap().len(), 2);
    let would: u64 = dry["copied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| u(c, "bytes"))
        .sum();
    assert!(would > 100_000, "{dry}");
    assert!(b.snapshots().is_empty(), "a dry run copies nothing");

    // Only night=1 first, then everything: the second run sends only what night=2 added.
    let first = copy_ab(&["--tag", "night=1"]);
    assert_eq!(first["copied"].as_array().unwrap().len(), 1);
    let all = copy_ab(&[]);
    assert_eq!(all["copied"].as_array().unwrap().len(), 1);
    assert_eq!(all["skipped"].as_array().unwrap().len(), 1);
    assert!(
        u(&all, "bytes_sent") < 200_000 && u(&all, "bytes_sent") > 0,
        "incremental: {all}"
    );
    assert!(u(&all["destination_requests"], "puts") >= 2, "{all}");
    let total_sent = u(&first, "bytes_sent") + u(&all, "bytes_sent");
    assert!(
        total_sent <= would + 4096,
        "no chunk sent twice: sent {total_sent}, needed {would}"
    );
    // Nothing new: nothing sent.
    let again = copy_ab(&[]);
    assert_eq!(
        (
            again["copied"].as_array().unwrap().len(),
            u(&again, "bytes_sent")
        ),
        (0, 0),
        "{again}"
    );

    // B's snapshots record their origin and restore byte for byte.
    let snaps_b = b.snapshots();
    let mut origins: Vec<String> = snaps_b
        .iter()
        .map(|s| s["copied_from"].as_str().unwrap().to_string())
        .collect();
    origins.sort();
    let mut expect = ids_a.to_vec();
    expect.sort();
    assert_eq!(origins, expect);
    let target = b.path("restore-b");
    b.restore("latest", &target, &[]);
    assert_trees_equal(&src, &restored_path(&target, &src));
    b.ok(&["check", "--read-data"]);

    // C: local, its own key and password. S3 → C re-chunks into C's key.
    let c = TestRepo::uninit();
    let c = TestRepo {
        password: "another password entirely".into(),
        ..c
    };
    c.init(&["--chunk-avg-kib", "16"]);
    let pw_file = c.path("c.pw");
    std::fs::write(&pw_file, format!("{}\n", c.password)).unwrap();
    let mut cmd = b.cmd();
    cmd.args([
        "copy",
        "--to",
        c.repo.to_str().unwrap(),
        "--to-password-file",
        pw_file.to_str().unwrap(),
        "--json",
    ]);
    let (code, out, err) = output_parts(cmd.output().unwrap());
    assert_eq!(code, 0, "{out}\n{err}");
    let bc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(bc["mode"], "rechunk");
    assert_eq!(bc["copied"].as_array().unwrap().len(), 2);
    for s in c.snapshots() {
        assert!(
            ids_a.contains(&s["copied_from"].as_str().unwrap().to_string()),
            "origin kept through two copies: {s}"
        );
    }
    let target = c.path("restore-c");
    c.restore("latest", &target, &[]);
    assert_trees_equal(&src, &restored_path(&target, &src));
    c.ok(&["check", "--read-data"]);

    // A → C: C already holds both (by origin), so nothing is copied.
    let mut cmd = a.cmd();
    cmd.args([
        "copy",
        "--to",
        c.repo.to_str().unwrap(),
        "--to-password-file",
        pw_file.to_str().unwrap(),
        "--json",
    ]);
    let (code, out, err) = output_parts(cmd.output().unwrap());
    assert_eq!(code, 0, "{err}");
    let ac: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            ac["copied"].as_array().unwrap().len(),
            ac["skipped"].as_array().unwrap().len()
        ),
        (0, 2),
        "{ac}"
    );

    // Human output names bandwidth and requests.
    let d = TestRepo::uninit_at(&server.location("offsite-2"), server.env());
    d.init(&["--copy-key-from", a.repo.to_str().unwrap()]);
    let mut cmd = a.cmd();
    cmd.envs(server.env())
        .args(["copy", "--to", d.repo.to_str().unwrap(), "--key-from-repo"]);
    let (code, out, err) = output_parts(cmd.output().unwrap());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("/s")
            && !out.contains("MB/s")
            && out.contains("destination requests:")
            && out.contains("copied 2 snapshots"),
        "{out}"
    );
    // A missing destination password is a usage error.
    let (code, _, err) = a.run(&["copy", "--to", "/nonexistent"]);
    assert_eq!(code, 2, "{err}");
}

// ---------------------------------------------------------------------------------------------
// Library level: an interrupted copy.

fn backup_tree(repo: &Repository, dir: &std::path::Path) {
    backup(
        repo,
        BackupInput::Paths(vec![dir.to_path_buf()]),
        &BackupOptions::default(),
        &NoProgress,
    )
    .unwrap();
}

/// Copy with the destination's disk "full" after `n` pack puts, then resume on the healthy
/// destination: the failed run leaves no snapshot whose data is missing, the resumed run
/// finishes the job without re-sending what already arrived, and everything restores.
fn interrupted_then_resumed(shared_key: bool, dst_store: Arc<dyn Backend>) {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let opts = fast_init_options();
    let src_b: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    Repository::init(&*src_b, b"pw", &opts).unwrap();
    let src = Repository::open(src_b, b"pw", &cache).unwrap();
    let tree = dir.path().join("tree");
    gen_tree(
        &tree,
        5,
        &TreeSpec {
            large_files: 2,
            large_size: 1 << 20,
            ..spec()
        },
    );
    backup_tree(&src, &tree);
    std::fs::write(tree.join("more"), vec![3u8; 300_000]).unwrap();
    backup_tree(&src, &tree);

    let dst_mem = dst_store;
    if shared_key {
        Repository::init_sharing_key(&*dst_mem, &src, b"pw2", &opts).unwrap();
    } else {
        Repository::init(&*dst_mem, b"pw2", &opts).unwrap();
    }
    let faulty: Arc<dyn Backend> = Arc::new(FaultyBackend::new(
        dst_mem.clone(),
        Fault::DiskFullFromPut {
            n: 2,
            prefix: "data/".into(),
        },
    ));
    let dst = Repository::open(faulty, b"pw2", &dir.path().join("cache-dst")).unwrap();
    let copy_opts = CopyOptions {
        parallel: 2,
        ..Default::default()
    };
    let err = copy(&src, &dst, &copy_opts, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("No space left"), "{err}");
    drop(dst);
    let arrived = dst_mem.list("data/").unwrap().len();
    assert!(arrived >= 1, "some packs arrived before the failure");
    // Whatever manifests made it must be complete: check them by reading every file.
    let healthy: Arc<dyn Backend> = dst_mem.clone();
    let dst = Repository::open(healthy, b"pw2", &dir.path().join("cache-dst")).unwrap();
    let partial = dst.snapshots().unwrap();
    assert!(partial.len() < 2, "the copy failed before finishing");
    for s in &partial {
        for e in dst.load_tree(&s.manifest).unwrap().entries {
            dst.write_file_to(&e.chunks, &mut std::io::sink()).unwrap();
        }
    }

    // Resume.
    let report = copy(&src, &dst, &copy_opts, &NoProgress).unwrap();
    assert_eq!(
        report.mode,
        if shared_key {
            CopyMode::SameKey
        } else {
            CopyMode::Rechunk
        }
    );
    assert_eq!(report.copied.len() + report.skipped.len(), 2);
    assert_eq!(report.skipped.len(), partial.len());
    let full = copy(
        &src,
        &dst,
        &CopyOptions {
            dry_run: true,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    assert!(
        full.copied.is_empty(),
        "after resuming, nothing is left to copy"
    );
    // Every copied snapshot restores byte for byte.
    let snaps = dst.snapshots().unwrap();
    assert_eq!(snaps.len(), 2);
    let latest = snaps.last().unwrap();
    let target = dir.path().join("restored");
    let ropts = snap::ops::RestoreOptions {
        target: target.clone(),
        includes: Vec::new(),
        overwrite: false,
    };
    snap::ops::restore(&dst, latest, &ropts, &NoProgress).unwrap();
    assert_trees_equal(&tree, &restored_path(&target, &tree));
    let check = snap::ops::check::check(
        &dst,
        &snap::ops::check::CheckOptions {
            read_data: Some(snap::ops::check::DataSubset::All),
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    assert!(check.is_ok(), "{check:?}");
}

#[test]
fn interrupted_same_key_copy_resumes() {
    interrupted_then_resumed(true, Arc::new(MemoryBackend::new()));
}

#[test]
fn interrupted_rechunking_copy_resumes() {
    interrupted_then_resumed(false, Arc::new(MemoryBackend::new()));
}

/// Into S3, where packs are uploaded by several threads at once (one of them failing).
#[test]
fn interrupted_copies_into_s3_resume() {
    let server = S3Server::start();
    interrupted_then_resumed(true, Arc::new(server.backend("same-key")));
    interrupted_then_resumed(false, Arc::new(server.backend("rechunk")));
}
