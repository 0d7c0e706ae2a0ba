//! `snap mount` throughput: a snapshot restored with `snap restore`, then copied out of a real
//! FUSE mount with `cp -r`; MB/s of both and their ratio, plus `cp -r` of the source directory
//! itself (the ceiling for a single-threaded copy on this disk). The copies are compared with
//! the source. Two snapshots: "project" (a pg_dump-like SQL file plus Storage-like objects)
//! and "mixed" (the same dump plus a corpus of mostly tiny files, the hard case for FUSE).
//!
//! Run: `cargo bench --bench mount`. `SNAP_BENCH_MB` sets the dump size (default 200),
//! `SNAP_BENCH_FILES_MB` the objects / files (default 100), `SNAP_BENCH_DIR` where the temporary
//! directory goes; `SNAP_BENCH_SETUP_ONLY=1` only builds (and keeps) the source and repository. Under `cargo test` a small smoke version runs.

#[path = "common/mod.rs"]
mod common;

use std::fs;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::proc::run;
use common::{Dump, mb};

const PASSWORD: &str = "correct horse battery staple mount";

fn snap(repo: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_snap"));
    c.env("SNAP_REPO", repo)
        .env("SNAP_PASSWORD", PASSWORD)
        .env("SNAP_CACHE_DIR", cache)
        .env_remove("SNAP_PASSWORD_FILE")
        .env_remove("SNAP_PASSWORD_COMMAND")
        .args(args);
    c
}

fn is_mounted(point: &Path) -> bool {
    let point = point.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(point))
}

/// Unmounts (lazily) and reaps the mount process, also on panic.
struct Mounted(std::process::Child, std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        if is_mounted(&self.1) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&self.1)
                .status();
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every file under `a` equals the one under `b` (same relative paths, same bytes).
fn same_tree(a: &Path, b: &Path) -> io::Result<bool> {
    for e in walkdir::WalkDir::new(a) {
        let e = e?;
        let rel = e.path().strip_prefix(a).unwrap();
        let other = b.join(rel);
        if e.file_type().is_file() && fs::read(e.path())? != fs::read(&other)? {
            return Ok(false);
        }
    }
    Ok(common::dir_bytes(a) == common::dir_bytes(b))
}

fn main() {
    let dump_target = common::env_mb("SNAP_BENCH_MB", 200);
    let files_target = common::env_mb("SNAP_BENCH_FILES_MB", 100);
    let base_dir = std::env::var_os("SNAP_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    println!(
        "mount: cp -r through `snap mount` vs `snap restore`; {} cores; MB = 10^6 bytes",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    if common::smoke_test() {
        println!(
            "smoke test (cargo test): small inputs; run `cargo bench --bench mount` for figures"
        );
    }
    // A Supabase project's snapshot: the database dump and the Storage buckets' objects.
    scenario(
        &base_dir,
        "project",
        "a SQL dump and Storage-like objects (8 KiB–8 MiB)",
        dump_target,
        common::storage_objects(files_target, 3),
    );
    // The hard case: the same dump with a corpus of mostly tiny files (12 000 of < 8 KiB).
    scenario(
        &base_dir,
        "mixed",
        "a SQL dump and a mixed-files corpus (mostly tiny files)",
        dump_target,
        common::mixed_files(files_target, 2),
    );
}

fn scenario(
    base_dir: &Path,
    name: &str,
    what: &str,
    dump_target: u64,
    files: Vec<common::FileData>,
) {
    let tmp = tempfile::Builder::new()
        .prefix("snap-mount-bench-")
        .tempdir_in(base_dir)
        .expect("tempdir");
    let base = tmp.path().to_path_buf();
    let base = base.as_path();
    let (repo, cache) = (base.join("repo"), base.join("cache"));

    let src = base.join("src");
    fs::create_dir_all(src.join("db")).unwrap();
    let dump = Dump::new(dump_target, 1);
    dump.write(
        &common::Edits::none(),
        io::BufWriter::new(fs::File::create(src.join("db/dump.sql")).unwrap()),
    )
    .unwrap();
    let n_files = files.len();
    for (p, d) in files {
        let path = src.join("files").join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, d).unwrap();
    }
    let total = common::dir_bytes(&src);
    run(
        snap(
            &repo,
            &cache,
            &["init", "--kdf-memory-kib", "64", "--kdf-iterations", "1"],
        ),
        None,
    );
    run(
        snap(&repo, &cache, &["backup", src.to_str().unwrap()]),
        None,
    );
    let stored = src.to_str().unwrap().trim_start_matches('/').to_string();
    println!(
        "\n[{name}] one snapshot of {:.1} MB: {what}; {} files",
        mb(total),
        n_files + 1
    );

    if std::env::var_os("SNAP_BENCH_SETUP_ONLY").is_some() {
        // For profiling by hand: keep the source and repository, measure nothing.
        let kept = tmp.keep();
        println!(
            "kept {} (repo/, cache/, src/; password {PASSWORD:?})",
            kept.display()
        );
        return;
    }
    // The packs are read once first, so both measurements start with them in the page cache.
    let warm = base.join("warm");
    run(
        snap(
            &repo,
            &cache,
            &["restore", "latest", "--target", warm.to_str().unwrap()],
        ),
        None,
    );
    fs::remove_dir_all(&warm).unwrap();

    // Best of `runs` for each (the machine may be shared), alternating restore and cp -r through
    // a fresh mount (empty caches), each after a `sync` so neither pays for the other's
    // writeback.
    let runs = if common::smoke_test() { 1 } else { 5 };
    let sync = || assert!(Command::new("sync").status().unwrap().success());
    let mnt = base.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let (mut best_restore, mut best_cp, mut best_local) =
        (Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..runs {
        // The ceiling for cp: the same cp -r from the (page-cached) source directory.
        let local = base.join("local-copy");
        let mut cp = Command::new("cp");
        cp.arg("-r").arg(&src).arg(&local);
        sync();
        let l = run(cp, None);
        println!(
            "  cp -r of the source directory: {:.2} s",
            l.wall.as_secs_f64()
        );
        best_local = best_local.min(l.wall);
        fs::remove_dir_all(&local).unwrap();

        let restored = base.join("restored");
        sync();
        let r = run(
            snap(
                &repo,
                &cache,
                &["restore", "latest", "--target", restored.to_str().unwrap()],
            ),
            None,
        );
        println!(
            "  snap restore: {:.2} s (CPU {:.2} s, peak RSS {} MiB)",
            r.wall.as_secs_f64(),
            r.cpu.as_secs_f64(),
            r.maxrss_kib / 1024
        );
        best_restore = best_restore.min(r.wall);
        assert!(
            same_tree(&src, &restored.join(&stored)).unwrap(),
            "restore differs from the source"
        );
        fs::remove_dir_all(&restored).unwrap();

        let child = snap(&repo, &cache, &["mount", mnt.to_str().unwrap()])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn snap mount");
        let mut mounted = Mounted(child, mnt.clone());
        let deadline = Instant::now() + Duration::from_secs(60);
        while !is_mounted(&mnt) {
            assert!(
                mounted.0.try_wait().unwrap().is_none(),
                "snap mount exited before mounting"
            );
            assert!(Instant::now() < deadline, "not mounted after 60 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        let copy = base.join("copy");
        let mut cp = Command::new("cp");
        cp.arg("-r")
            .arg(mnt.join("latest").join(&stored))
            .arg(&copy);
        sync();
        let c = run(cp, None);
        println!("  cp -r through the mount: {:.2} s", c.wall.as_secs_f64());
        best_cp = best_cp.min(c.wall);
        assert!(
            same_tree(&src, &copy).unwrap(),
            "the copy through the mount differs from the source"
        );
        fs::remove_dir_all(&copy).unwrap();
        let o = Command::new("fusermount3")
            .arg("-u")
            .arg(&mnt)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "fusermount3 -u: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let status = mounted.0.wait().unwrap();
        assert!(status.success(), "snap mount exited with {status}");
    }
    let restore_mbs = mb(total) / best_restore.as_secs_f64();
    let cp_mbs = mb(total) / best_cp.as_secs_f64();
    println!("[{name}] snap restore:            {restore_mbs:>8.1} MB/s (best of {runs})");
    println!("[{name}] cp -r through the mount: {cp_mbs:>8.1} MB/s (best of {runs})");
    println!(
        "[{name}] ratio mount / restore:   {:>8.2}",
        cp_mbs / restore_mbs
    );
    println!(
        "[{name}] cp -r of the source directory: {:.1} MB/s (best of {runs}; cp through the mount reaches {:.0}% of it)",
        mb(total) / best_local.as_secs_f64(),
        100.0 * best_local.as_secs_f64() / best_cp.as_secs_f64()
    );
}
