//! Storage backup at scale: `snap backup storage` of a bucket of 1 GiB (one 640 MiB object and
//! three of 128 MiB, generated on the fly by the in-test Storage API server, never held in
//! memory) with 4 concurrent transfers, then the same bucket again (every object unchanged:
//! nothing downloaded). Printed: wall and CPU seconds, MB/s, peak RSS of the snap process.
//!
//! `cargo bench --bench storage`; `SNAP_BENCH_STORAGE_MB` sets the bucket size (default 1024
//! MiB), `SNAP_BENCH_DIR` where the repository goes. Under `cargo test` a 16 MiB bucket runs.

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/support/storage_server.rs"]
mod storage_server;

use std::path::Path;
use std::process::Command;

use common::proc::{Outcome, run};
use storage_server::{Content, StorageServer};

const PASSWORD: &str = "correct horse battery staple storage";
const KEY: &str = "bench-service-key";
const MIB: u64 = 1024 * 1024;

fn snap(repo: &Path, cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_snap"));
    c.env("SNAP_PASSWORD", PASSWORD)
        .env("SNAP_CACHE_DIR", cache)
        .arg("--repo")
        .arg(repo);
    c
}

fn report(what: &str, o: &Outcome, bytes: u64) {
    println!(
        "{what:<40} {:>7.2} s wall {:>7.2} s cpu {:>8.1} MB/s {:>8.1} MiB peak RSS",
        o.wall.as_secs_f64(),
        o.cpu.as_secs_f64(),
        bytes as f64 / 1e6 / o.wall.as_secs_f64().max(1e-3),
        o.maxrss_kib as f64 / 1024.0
    );
}

fn main() {
    let smoke = common::smoke_test();
    let total_mib: u64 = std::env::var("SNAP_BENCH_STORAGE_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if smoke { 16 } else { 1024 });
    let base_dir = std::env::var_os("SNAP_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("snap-storage-bench-")
        .tempdir_in(&base_dir)
        .expect("tempdir");
    let (repo, cache, key) = (
        tmp.path().join("repo"),
        tmp.path().join("cache"),
        tmp.path().join("key"),
    );
    std::fs::write(&key, KEY).unwrap();
    let mut init = snap(&repo, &cache);
    init.args(["init", "--kdf-memory-kib", "64", "--kdf-iterations", "1"]);
    run(init, None);

    let server = StorageServer::start(KEY);
    server.create_bucket("bench", false, None, None);
    let sizes = [
        total_mib * 5 / 8,
        total_mib / 8,
        total_mib / 8,
        total_mib - total_mib * 5 / 8 - 2 * (total_mib / 8),
    ];
    for (i, mib) in sizes.iter().enumerate() {
        server.put(
            "bench",
            &format!("object-{i}.bin"),
            Content::Generated {
                seed: i as u64,
                len: mib * MIB,
            },
            "application/octet-stream",
            "no-cache",
            None,
        );
    }
    let bytes = total_mib * MIB;
    println!(
        "storage: bucket of {total_mib} MiB in {} objects {sizes:?} MiB, concurrency 4",
        sizes.len()
    );
    for night in [
        "first backup (all downloaded)",
        "second backup (all unchanged)",
    ] {
        let mut c = snap(&repo, &cache);
        c.args([
            "backup",
            "storage",
            "--json",
            "--storage-url",
            &server.storage_url(),
            "--service-key-file",
        ])
        .arg(&key);
        let o = run(c, None);
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        report(night, &o, v["summary"]["bytes_read"].as_u64().unwrap());
        assert_eq!(v["summary"]["total_bytes"].as_u64(), Some(bytes));
    }
    assert_eq!(
        server.downloads(),
        sizes.len() as u64,
        "the second backup downloaded nothing"
    );
    if smoke {
        println!(
            "smoke test (cargo test): {total_mib} MiB; run `cargo bench --bench storage` for the 1 GiB figures"
        );
    }
}
