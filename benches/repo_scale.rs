//! Repository maintenance at scale, through the real `snap` binary:
//! * prune of a repository holding about 10^6 chunks: peak RSS must stay under 200 MB
//!   (the index stays in redb, not in a RAM hash map);
//! * `check --read-data` of a repository holding four nightly SQL dumps, against restic when
//!   it is on PATH (target: at most half of restic's time).
//!
//! `cargo bench --bench repo_scale`. `SNAP_BENCH_CHUNKS` sets the chunk count (default 10^6),
//! `SNAP_BENCH_MB` the dump size (default 300). Under `cargo test` it runs a small smoke version.

#[path = "common/mod.rs"]
mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::proc::{Outcome, run};
use common::{Dump, Rng, mb};

const PASSWORD: &str = "correct horse battery staple scale";

fn snap(repo: &Path, cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_snap"));
    c.env("SNAP_PASSWORD", PASSWORD)
        .env("SNAP_CACHE_DIR", cache)
        .arg("--repo")
        .arg(repo)
        .arg("--quiet");
    c
}

fn report(what: &str, o: &Outcome, bytes: Option<u64>) {
    let rate = bytes
        .map(|b| format!("{:>8.1} MB/s", mb(b) / o.wall.as_secs_f64()))
        .unwrap_or_default();
    println!(
        "{what:<44} {:>7.2} s wall {:>7.2} s cpu {:>8.1} MiB peak RSS {rate}",
        o.wall.as_secs_f64(),
        o.cpu.as_secs_f64(),
        o.maxrss_kib as f64 / 1024.0
    );
}

fn prune_scale(base: &Path) {
    let chunks: u64 = std::env::var("SNAP_BENCH_CHUNKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if common::smoke_test() {
            20_000
        } else {
            1_000_000
        });
    // avg 1 KiB chunks of incompressible data: about one chunk per 1.15 KiB (FastCDC's real
    // mean sits above the nominal average).
    let (repo, cache) = (base.join("prune-repo"), base.join("prune-cache"));
    let mut init = snap(&repo, &cache);
    init.args(["init", "--chunk-avg-kib", "1"]);
    run(init, None);
    let mut rng = Rng::new(4242);
    let mut buf = vec![0u8; (chunks * 1180 / 2) as usize];
    for part in ["a", "b"] {
        rng.fill(&mut buf);
        let f = base.join(part);
        fs::write(&f, &buf).unwrap();
        let mut c = snap(&repo, &cache);
        c.args(["backup", "--stdin", "--stdin-name", part]);
        report(
            &format!(
                "backup {} MB in 1 KiB chunks ({part})",
                buf.len() / 1_000_000
            ),
            &run(c, Some(&f)),
            Some(buf.len() as u64),
        );
        fs::remove_file(&f).unwrap();
    }
    drop(buf);
    let mut c = snap(&repo, &cache);
    c.args(["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_str(&run(c, None).stdout).unwrap_or_default();
    println!(
        "repository: {} chunks indexed",
        stats
            .get("chunks")
            .or_else(|| stats.get("indexed_chunks"))
            .cloned()
            .unwrap_or_default()
    );
    // Forget the first snapshot by hand (as `snap forget` does): half the chunks become garbage.
    let mut c = snap(&repo, &cache);
    c.args(["snapshots", "--json"]);
    let snaps: serde_json::Value = serde_json::from_str(&run(c, None).stdout).unwrap();
    fs::remove_file(
        repo.join("snapshots")
            .join(snaps[0]["id"].as_str().unwrap()),
    )
    .unwrap();
    let mut c = snap(&repo, &cache);
    c.args(["prune"]);
    let o = run(c, None);
    report("prune (phase 1: condemn half)", &o, None);
    let mut c = snap(&repo, &cache);
    c.args(["prune", "--grace", "0s"]);
    let o2 = run(c, None);
    report("prune --grace 0s (phase 2: delete)", &o2, None);
    let peak = o.maxrss_kib.max(o2.maxrss_kib) as f64 / 1024.0;
    println!(
        "prune peak RSS {peak:.1} MiB for {chunks} chunks (target < 200 MB){}",
        if peak * 1.048576 < 200.0 {
            ""
        } else {
            "  ** OVER TARGET **"
        }
    );
}

fn check_read_data(base: &Path) {
    let dump = Dump::new(common::env_mb("SNAP_BENCH_MB", 300), 1);
    let rows = dump.total_rows();
    let (repo, cache) = (base.join("check-repo"), base.join("check-cache"));
    let mut init = snap(&repo, &cache);
    init.arg("init");
    run(init, None);
    let restic = if common::smoke_test() {
        None
    } else {
        Command::new("restic")
            .arg("version")
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    let restic_repo = base.join("restic-repo");
    let restic_cmd = || {
        let mut c = Command::new("restic");
        c.env("RESTIC_PASSWORD", PASSWORD)
            .env("RESTIC_CACHE_DIR", base.join("restic-cache"))
            .arg("--repo")
            .arg(&restic_repo)
            .arg("--quiet");
        c
    };
    if restic.is_some() {
        let mut c = restic_cmd();
        c.arg("init");
        run(c, None);
    }
    let mut total = 0u64;
    for night in 0..4u64 {
        let edits = dump.nightly(
            100 + night,
            (rows / 1000) as usize,
            "orders",
            rows / 2000,
            (rows / 10_000) as usize,
        );
        let f = base.join("dump.sql");
        let n = dump
            .write(
                &edits,
                std::io::BufWriter::new(fs::File::create(&f).unwrap()),
            )
            .unwrap();
        total += n;
        let mut c = snap(&repo, &cache);
        c.args(["backup", "--stdin", "--stdin-name", "db/dump.sql"]);
        run(c, Some(&f));
        if restic.is_some() {
            let mut c = restic_cmd();
            c.args(["backup", "--stdin", "--stdin-filename", "dump.sql"]);
            run(c, Some(&f));
        }
    }
    let repo_bytes = common::dir_bytes(&repo);
    println!(
        "four nightly dumps: {:.1} MB of input, snap repository {:.1} MB",
        mb(total),
        mb(repo_bytes)
    );
    let mut c = snap(&repo, &cache);
    c.args(["check", "--read-data"]);
    let s = run(c, None);
    report("snap check --read-data", &s, Some(repo_bytes));
    if restic.is_some() {
        let mut c = restic_cmd();
        c.args(["check", "--read-data"]);
        let r = run(c, None);
        report("restic check --read-data", &r, None);
        println!(
            "snap / restic time: {:.2} (target <= 0.5)",
            s.wall.as_secs_f64() / r.wall.as_secs_f64()
        );
    } else {
        println!(
            "restic not compared ({})",
            if common::smoke_test() {
                "smoke test"
            } else {
                "not on PATH"
            }
        );
    }
}

fn main() {
    let base = tempfile::Builder::new()
        .prefix("snap-scale-")
        .tempdir()
        .unwrap();
    println!(
        "machine: {} cores; RSS = peak of the child (wait4)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    prune_scale(base.path());
    check_read_data(base.path());
}
