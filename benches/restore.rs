//! Restores side by side with the peers, on the same bytes in one run (issue 19's targets):
//! one pg_dump-like dump (`SNAP_BENCH_MB`, default 300) backed up and restored
//!
//! - from a local repository: snap, rustic and restic (each when on PATH);
//! - from S3 — moto on loopback behind a TCP proxy adding `SNAP_BENCH_LATENCY_MS` (default 20)
//!   before each request (tests/support/proxy.rs), the round trip of a real object store:
//!   snap and restic; then snap's `check --read-data` and `copy` from that S3 repository.
//!
//! For every step: wall time, MB/s (dump bytes / wall seconds, MB = 10^6 bytes), CPU time and
//! peak RSS of the child (`wait4`); every restore is compared byte for byte with the dump. The
//! targets are printed beside the ratios: local restore ≤ 0.5× rustic, S3 restore ≤ 0.5×
//! restic and ≥ 160 MB/s with peak RSS < 200 MB, first backup ≤ 0.35× rustic.
//!
//! Run: `cargo bench --bench restore` (needs moto[server]: `bash .ci/test.sh` installs it;
//! restic: `apt-get install --no-install-recommends restic` — with its recommends apt swaps
//! fuse3 for fuse 2 —; rustic: `cargo install rustic-rs --locked`). Under `cargo test` a
//! 2 MB smoke version runs, without peers.

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/support/proxy.rs"]
mod latency_proxy;
#[path = "../tests/support/s3.rs"]
mod s3;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::proc::{Outcome, run};
use common::{Dump, mb};

const PASSWORD: &str = "correct horse battery staple restore";

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    Snap,
    Rustic,
    Restic,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Snap => "snap",
            Tool::Rustic => "rustic",
            Tool::Restic => "restic",
        }
    }

    fn available(self) -> bool {
        self == Tool::Snap
            || Command::new(self.name())
                .arg(if self == Tool::Restic {
                    "version"
                } else {
                    "--version"
                })
                .output()
                .is_ok_and(|o| o.status.success())
    }

    /// `args` against the repository `repo` (a path or an `s3:` location), with `env`.
    fn cmd(self, repo: &str, cache: &Path, env: &[(String, String)], args: &[&str]) -> Command {
        let mut c = match self {
            Tool::Snap => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_snap"));
                c.env("SNAP_PASSWORD", PASSWORD)
                    .env("SNAP_CACHE_DIR", cache)
                    .env_remove("SNAP_PASSWORD_FILE")
                    .env_remove("SNAP_PASSWORD_COMMAND");
                c
            }
            Tool::Rustic | Tool::Restic => {
                let mut c = Command::new(self.name());
                c.env("RESTIC_PASSWORD", PASSWORD)
                    .env("RUSTIC_PASSWORD", PASSWORD)
                    .env("RESTIC_CACHE_DIR", cache)
                    .env("RUSTIC_CACHE_DIR", cache)
                    .env_remove("RESTIC_REPOSITORY")
                    .env_remove("RUSTIC_REPOSITORY");
                c
            }
        };
        c.envs(env.iter().map(|(k, v)| (k, v)))
            .arg(if self == Tool::Snap { "--repo" } else { "-r" })
            .arg(repo)
            .args(args);
        c
    }
}

/// One tool's steps on one repository.
struct Run {
    tool: Tool,
    repo: String,
    cache: PathBuf,
    env: Vec<(String, String)>,
}

impl Run {
    fn step(&self, args: &[&str]) -> Outcome {
        run(
            self.tool.cmd(&self.repo, &self.cache, &self.env, args),
            None,
        )
    }

    fn init(&self) {
        self.step(&["init"]);
    }

    fn backup(&self, dir: &Path) -> Outcome {
        self.step(&["backup", dir.to_str().unwrap()])
    }

    /// Restore the newest snapshot into `target` (emptied first) and compare `file` in it.
    fn restore(&self, target: &Path, file: &Path) -> Outcome {
        let _ = fs::remove_dir_all(target);
        let t = target.to_str().unwrap();
        let o = match self.tool {
            Tool::Rustic => self.step(&["restore", "latest", t]),
            _ => self.step(&["restore", "latest", "--target", t]),
        };
        let restored = target.join(file.strip_prefix("/").unwrap());
        assert!(
            same_file(&restored, file).unwrap(),
            "{}: the restored dump differs",
            self.tool.name()
        );
        o
    }
}

fn same_file(a: &Path, b: &Path) -> io::Result<bool> {
    Ok(fs::metadata(a)?.len() == fs::metadata(b)?.len() && fs::read(a)? == fs::read(b)?)
}

fn line(what: &str, tool: Tool, o: &Outcome, bytes: u64) {
    let s = o.wall.as_secs_f64();
    println!(
        "{what:<34} {:<7} {:>7.2} s {:>8.1} MB/s   CPU {:>6.2} s   peak RSS {:>5} MiB",
        tool.name(),
        s,
        mb(bytes) / s.max(1e-9),
        o.cpu.as_secs_f64(),
        o.maxrss_kib / 1024
    );
}

fn ratio(what: &str, snap: &Outcome, (tool, p): (Tool, &Outcome), target: &str) {
    println!(
        "  {what}: snap / {} = {:.2} (target {target})",
        tool.name(),
        snap.wall.as_secs_f64() / p.wall.as_secs_f64().max(1e-9)
    );
}

fn main() {
    let smoke = common::smoke_test();
    let size = common::env_mb("SNAP_BENCH_MB", 300);
    let latency = Duration::from_millis(
        std::env::var("SNAP_BENCH_LATENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20),
    );
    let base = tempfile::Builder::new()
        .prefix("snap-restore-bench-")
        .tempdir_in(
            std::env::var_os("SNAP_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from),
        )
        .expect("tempdir");
    let base = base.path();
    let dir = base.join("dump");
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dump.sql");
    let bytes = Dump::new(size, 1)
        .write(
            &common::Edits::none(),
            io::BufWriter::new(fs::File::create(&file).unwrap()),
        )
        .unwrap();
    let file = fs::canonicalize(&file).unwrap();
    println!(
        "one dump of {:.1} MB; machine: {} cores; S3 = moto on loopback behind a proxy adding {} ms per request",
        mb(bytes),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        latency.as_millis()
    );
    let peers: Vec<Tool> = [Tool::Rustic, Tool::Restic]
        .into_iter()
        .filter(|t| !smoke && t.available())
        .collect();
    for t in [Tool::Rustic, Tool::Restic] {
        if !peers.contains(&t) {
            println!(
                "{} not compared ({})",
                t.name(),
                if smoke { "smoke test" } else { "not on PATH" }
            );
        }
    }
    let first_backup = local(base, &dir, &file, bytes, &peers);
    cpu_breakdown(&file, &first_backup);
    remote(base, &dir, &file, bytes, &peers, latency);
    if smoke {
        println!("smoke test (cargo test): 2 MB; run `cargo bench --bench restore` for figures");
    }
}

/// Local repositories: first backup and restore of each tool. Returns snap's first backup.
fn local(base: &Path, dir: &Path, file: &Path, bytes: u64, peers: &[Tool]) -> Outcome {
    let mut results = Vec::new();
    for tool in std::iter::once(Tool::Snap).chain(peers.iter().copied()) {
        let r = Run {
            tool,
            repo: base
                .join(format!("{}-local", tool.name()))
                .to_str()
                .unwrap()
                .to_string(),
            cache: base.join(format!("{}-cache", tool.name())),
            env: Vec::new(),
        };
        r.init();
        let b = r.backup(dir);
        line("first backup (local)", tool, &b, bytes);
        let o = r.restore(&base.join("target"), file);
        line("restore (local repository)", tool, &o, bytes);
        results.push((tool, b, o));
    }
    let (_, sb, so) = &results[0];
    for (tool, b, o) in &results[1..] {
        if *tool == Tool::Rustic {
            ratio("first backup", sb, (*tool, b), "≤ 0.35");
            ratio("local restore", so, (*tool, o), "≤ 0.50");
        } else {
            ratio("first backup", sb, (*tool, b), "-");
            ratio("local restore", so, (*tool, o), "-");
        }
    }
    results.swap_remove(0).1
}

/// S3 behind the latency proxy: snap and restic back up and restore; snap also checks every
/// byte and copies the repository back to a local one.
fn remote(base: &Path, dir: &Path, file: &Path, bytes: u64, peers: &[Tool], latency: Duration) {
    let server = s3::S3Server::start();
    let upstream = server.endpoint.trim_start_matches("http://").to_string();
    let proxy = latency_proxy::LatencyProxy::start(&upstream, latency);
    let at = |prefix: &str| format!("s3:{}/{}/{prefix}", proxy.endpoint, s3::BUCKET);
    let mut results = Vec::new();
    for tool in
        std::iter::once(Tool::Snap).chain(peers.iter().copied().filter(|t| *t == Tool::Restic))
    {
        let r = Run {
            tool,
            repo: at(tool.name()),
            cache: base.join(format!("{}-s3-cache", tool.name())),
            env: server.env(),
        };
        r.init();
        let b = r.backup(dir);
        line("backup (to S3)", tool, &b, bytes);
        // A cold cache, as on the day the primary machine is gone.
        let _ = fs::remove_dir_all(&r.cache);
        let o = r.restore(&base.join("target"), file);
        line("restore (from S3, cold cache)", tool, &o, bytes);
        if tool == Tool::Snap {
            let c = r.step(&["check", "--read-data"]);
            line("check --read-data (S3)", tool, &c, bytes);
            let local = base.join("copy-target");
            let l = local.to_str().unwrap();
            run(
                Tool::Snap.cmd(l, &r.cache, &r.env, &["init", "--copy-key-from", &r.repo]),
                None,
            );
            let c = r.step(&["copy", "--to", l, "--key-from-repo"]);
            line("copy (S3 -> local)", tool, &c, bytes);
        }
        results.push((tool, o));
    }
    let (_, so) = &results[0];
    println!(
        "  S3 restore: {:.1} MB/s (target ≥ 160), peak RSS {} MiB (target < 200)",
        mb(bytes) / so.wall.as_secs_f64().max(1e-9),
        so.maxrss_kib / 1024
    );
    if let Some((tool, o)) = results.get(1) {
        ratio("S3 restore", so, (*tool, o), "≤ 0.50");
    }
}

/// Where the first backup's CPU goes: each stage of the write path timed alone, on one thread,
/// over the same dump (FastCDC cuts, keyed BLAKE3 ids, then zstd + XChaCha20-Poly1305 at each
/// level), beside the CPU the whole backup took; and what each zstd level costs and saves.
fn cpu_breakdown(file: &Path, backup: &Outcome) {
    use snap::blob::{self, BlobKind};
    use snap::chunker::{Chunker, ChunkerParams};
    use snap::crypto::MasterKey;
    use std::time::Instant;
    let data = fs::read(file).unwrap();
    let key = MasterKey::from_secret(&[7; 32]);
    let chunker = Chunker::new(ChunkerParams::default(), key.chunker_seed());
    let t = Instant::now();
    let cuts = chunker.cut(&data);
    let cdc = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ids: Vec<_> = cuts
        .iter()
        .map(|&(at, len)| key.chunk_id(&data[at..at + len]))
        .collect();
    let hash = t.elapsed().as_secs_f64();
    let n = mb(data.len() as u64);
    println!(
        "backup CPU, stage by stage on one thread ({} chunks): FastCDC {:.2} s ({:.0} MB/s), keyed BLAKE3 {:.2} s ({:.0} MB/s)",
        cuts.len(),
        cdc,
        n / cdc,
        hash,
        n / hash
    );
    let mut at_default = 0.0;
    for level in [1, 2, 3, 4, 6, 9] {
        let t = Instant::now();
        let stored: usize = cuts
            .iter()
            .zip(&ids)
            .map(|(&(at, len), id)| {
                blob::encode(&key, BlobKind::Data, id, &data[at..at + len], level).len()
            })
            .sum();
        let secs = t.elapsed().as_secs_f64();
        if level == 3 {
            at_default = secs;
        }
        println!(
            "  zstd level {level} + seal: {secs:.2} s ({:.0} MB/s), stored {:.1} MB (ratio {:.2}x)",
            n / secs,
            mb(stored as u64),
            data.len() as f64 / stored as f64
        );
    }
    let stages = cdc + hash + at_default;
    let cpu = backup.cpu.as_secs_f64();
    println!(
        "  first backup: CPU {cpu:.2} s; chunking + hashing + compressing (level 3) + sealing {stages:.2} s ({:.0} %); the rest (reading, packing, index, writes) {:.2} s",
        100.0 * stages / cpu.max(1e-9),
        (cpu - stages).max(0.0)
    );
}
