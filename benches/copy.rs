//! `snap copy` to a loopback S3 server (moto, signatures checked; tests/support/s3.rs): four
//! nightly pg_dump-like dumps (~300 MB each, each night a few thousand rows changed) backed up
//! into a local repository, then copied to a repository on S3 that shares the master key.
//! Prints the copy's wall time, MB/s (pack bytes sent / wall time, MB = 10^6 bytes) and the
//! requests made to each side; then a second copy with nothing new (target: under 2 s).
//!
//! Run: `cargo bench --bench copy` (needs moto[server]; `bash .ci/test.sh` installs it).
//! `SNAP_BENCH_MB` sets the dump size (default 300), `SNAP_BENCH_DIR` the temp dir's parent.
//! Under `cargo test` a 2 MB smoke version runs.

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/support/s3.rs"]
mod s3;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::proc::{Outcome, run};
use common::{Dump, mb};

const PASSWORD: &str = "correct horse battery staple copy";

fn snap(repo: &str, cache: &Path, server: &s3::S3Server, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_snap"));
    c.env("SNAP_PASSWORD", PASSWORD)
        .env("SNAP_CACHE_DIR", cache)
        .env_remove("SNAP_PASSWORD_FILE")
        .env_remove("SNAP_PASSWORD_COMMAND")
        .envs(server.env())
        .arg("--repo")
        .arg(repo)
        .args(args);
    c
}

fn json(o: &Outcome) -> serde_json::Value {
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", o.stdout))
}

fn report(name: &str, o: &Outcome) {
    let v = json(o);
    let secs = o.wall.as_secs_f64();
    let sent = v["bytes_sent"].as_u64().unwrap();
    let req = |side: &str| {
        let r = &v[side];
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        format!(
            "{} requests ({} list, {} get, {} put, {} delete, {} head)",
            n("lists") + n("gets") + n("puts") + n("deletes") + n("heads"),
            n("lists"),
            n("gets"),
            n("puts"),
            n("deletes"),
            n("heads")
        )
    };
    println!(
        "{name}: {} snapshots copied, {} skipped; {:.1} MB sent in {} packs; wall {:.2} s ({:.1} MB/s), CPU {:.2} s, peak RSS {} MiB",
        v["copied"].as_array().unwrap().len(),
        v["skipped"].as_array().unwrap().len(),
        mb(sent),
        v["packs_written"],
        secs,
        mb(sent) / secs.max(1e-9),
        o.cpu.as_secs_f64(),
        o.maxrss_kib / 1024
    );
    println!("  source (local): {}", req("source_requests"));
    println!("  destination (S3): {}", req("destination_requests"));
}

fn main() {
    let target = common::env_mb("SNAP_BENCH_MB", 300);
    let base_dir = std::env::var_os("SNAP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("snap-copy-bench-")
        .tempdir_in(&base_dir)
        .expect("tempdir");
    let base = tmp.path();
    let server = s3::S3Server::start();
    let local = base.join("local-repo");
    let local = local.to_str().unwrap();
    let cache = base.join("cache");
    let remote = server.location("offsite");

    let o = run(snap(local, &cache, &server, &["init"]), None);
    assert!(o.stdout.contains("created repository"));
    let dump = Dump::new(target, 1);
    let rows = dump.total_rows();
    let dir = base.join("nightly");
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dump.sql");
    let mut logical = 0u64;
    for night in 0..4u64 {
        let edits = if night == 0 {
            common::Edits::none()
        } else {
            dump.nightly(
                100 + night,
                (rows / 1000) as usize,
                "orders",
                night * rows / 2000,
                (rows / 10_000) as usize,
            )
        };
        let len = dump
            .write(&edits, io::BufWriter::new(fs::File::create(&file).unwrap()))
            .unwrap();
        logical += len;
        let mut c = snap(local, &cache, &server, &["backup", "--json"]);
        c.arg(&dir);
        let o = run(c, None);
        let v = json(&o);
        println!(
            "night {}: dump {:.1} MB, backup added {:.1} MB ({:.2} s)",
            night + 1,
            mb(len),
            mb(v["summary"]["added_bytes"].as_u64().unwrap()),
            o.wall.as_secs_f64()
        );
    }
    let local_bytes = common::dir_bytes(Path::new(local));
    println!(
        "local repository: {:.1} MB for {:.1} MB of dumps; S3: moto on loopback ({})",
        mb(local_bytes),
        mb(logical),
        server.endpoint
    );
    if common::smoke_test() {
        println!("smoke test (cargo test): 2 MB dumps; run `cargo bench --bench copy` for figures");
    }

    let o = run(
        snap(
            &remote,
            &cache,
            &server,
            &["init", "--copy-key-from", local],
        ),
        None,
    );
    assert!(o.stdout.contains("created repository"));
    let copy = || {
        run(
            snap(
                local,
                &cache,
                &server,
                &["copy", "--to", &remote, "--key-from-repo", "--json"],
            ),
            None,
        )
    };
    let first = copy();
    report("copy (4 nights, local -> S3)", &first);
    assert_eq!(json(&first)["copied"].as_array().unwrap().len(), 4);
    let second = copy();
    report("copy again (nothing new)", &second);
    assert_eq!(json(&second)["bytes_sent"], 0);
    println!(
        "second copy: {:.2} s (target: under 2 s)",
        second.wall.as_secs_f64()
    );

    // The copy restores byte for byte (the last night).
    let restore = base.join("restore");
    let mut c = snap(
        &remote,
        &base.join("cache-2"),
        &server,
        &["restore", "latest", "--target"],
    );
    c.arg(&restore);
    let o = run(c, None);
    let restored = restore.join(file.strip_prefix("/").unwrap());
    assert_eq!(
        fs::read(&restored).unwrap(),
        fs::read(&file).unwrap(),
        "restored dump differs"
    );
    println!(
        "restore of the last night from S3 with a cold cache: {:.2} s ({:.1} MB/s)",
        o.wall.as_secs_f64(),
        mb(fs::metadata(&file).unwrap().len()) / o.wall.as_secs_f64()
    );
}
