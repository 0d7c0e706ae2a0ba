//! End-to-end benchmark through the real `snap` binary (and `restic`, when on PATH, for
//! comparison): a pg_dump-like SQL stream and a directory of mixed files, backed up, changed a
//! little, backed up again, then the dump restored and compared byte for byte.
//!
//! For every step: wall time, MB/s (input bytes / wall seconds, MB = 10^6 bytes), CPU time and
//! peak RSS of the child process (from `wait4`), and repository bytes on disk afterwards.
//!
//! Run: `cargo bench --bench e2e`. `SNAP_BENCH_MB` sets the dump size (default 300),
//! `SNAP_BENCH_FILES_MB` the files corpus (default 60), `SNAP_BENCH_DIR` where the temporary
//! directory goes (default: the system temp dir).

#[path = "common/mod.rs"]
mod common;

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::proc::{Outcome, run};
use common::{Dump, Rng, ZstdCounter, mb};

const PASSWORD: &str = "correct horse battery staple e2e";

fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (
        io::BufReader::new(fs::File::open(a)?),
        io::BufReader::new(fs::File::open(b)?),
    );
    if fs::metadata(a)?.len() != fs::metadata(b)?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(fb.read(&mut bb[..1])? == 0);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    Snap,
    Restic,
}

struct Runner {
    tool: Tool,
    repo: PathBuf,
    cache: PathBuf,
    steps: Vec<Step>,
}

struct Step {
    name: String,
    input: u64,
    out: Outcome,
    repo_bytes: u64,
}

impl Runner {
    fn new(tool: Tool, base: &Path) -> Runner {
        let name = match tool {
            Tool::Snap => "snap",
            Tool::Restic => "restic",
        };
        Runner {
            tool,
            repo: base.join(format!("{name}-repo")),
            cache: base.join(format!("{name}-cache")),
            steps: Vec::new(),
        }
    }

    fn name(&self) -> &'static str {
        match self.tool {
            Tool::Snap => "snap",
            Tool::Restic => "restic",
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        match self.tool {
            Tool::Snap => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_snap"));
                c.env("SNAP_REPO", &self.repo)
                    .env("SNAP_PASSWORD", PASSWORD)
                    .env("SNAP_CACHE_DIR", &self.cache)
                    .env_remove("SNAP_PASSWORD_FILE")
                    .env_remove("SNAP_PASSWORD_COMMAND")
                    .args(args);
                c
            }
            Tool::Restic => {
                let mut c = Command::new("restic");
                c.env("RESTIC_PASSWORD", PASSWORD)
                    .env("RESTIC_CACHE_DIR", &self.cache)
                    .env_remove("RESTIC_PASSWORD_FILE")
                    .env_remove("RESTIC_PASSWORD_COMMAND")
                    .env_remove("RESTIC_REPOSITORY")
                    .arg("--repo")
                    .arg(&self.repo)
                    .args(args);
                c
            }
        }
    }

    fn step(&mut self, name: &str, cmd: Command, stdin: Option<&Path>, input: u64) {
        let out = run(cmd, stdin);
        let repo_bytes = common::dir_bytes(&self.repo);
        let step = Step {
            name: name.to_string(),
            input,
            out,
            repo_bytes,
        };
        print_step(self.name(), &step);
        self.steps.push(step);
    }

    fn init(&mut self) {
        let c = self.cmd(&["init"]);
        self.step("init", c, None, 0);
    }

    fn backup_dump(&mut self, name: &str, dump: &Path) {
        let len = fs::metadata(dump).unwrap().len();
        let c = match self.tool {
            Tool::Snap => self.cmd(&["backup", "--stdin", "--stdin-name", "db/dump.sql"]),
            Tool::Restic => self.cmd(&["backup", "--stdin", "--stdin-filename", "dump.sql"]),
        };
        self.step(name, c, Some(dump), len);
    }

    fn backup_dir(&mut self, name: &str, dir: &Path) {
        let len = common::dir_bytes(dir);
        let mut c = self.cmd(&["backup"]);
        c.arg(dir);
        self.step(name, c, None, len);
    }

    /// Restore the latest snapshot (the changed dump) and compare it with `expect`.
    fn restore_dump(&mut self, target: &Path, expect: &Path) {
        let len = fs::metadata(expect).unwrap().len();
        let mut c = self.cmd(&["restore", "latest", "--target"]);
        c.arg(target);
        self.step("restore latest (dump v1)", c, None, len);
        let restored = match self.tool {
            Tool::Snap => target.join("db/dump.sql"),
            Tool::Restic => target.join("dump.sql"),
        };
        let t = Instant::now();
        let equal = same_bytes(&restored, expect).unwrap_or(false);
        println!(
            "{:<7} verify: restored {} {} the input ({:.1} s)",
            self.name(),
            restored.display(),
            if equal {
                "is byte-identical to"
            } else {
                "DIFFERS from"
            },
            t.elapsed().as_secs_f64()
        );
        assert!(equal, "restored dump differs from the input");
    }

    fn find(&self, name: &str) -> &Step {
        self.steps.iter().find(|s| s.name == name).unwrap()
    }
}

fn print_header() {
    println!(
        "{:<7} {:<26} {:>9} {:>8} {:>8} {:>7} {:>9} {:>10}",
        "tool", "step", "input MB", "wall s", "MB/s", "cpu s", "RSS MiB", "repo MB"
    );
}

fn print_step(tool: &str, s: &Step) {
    let secs = s.out.wall.as_secs_f64();
    let rate = if s.input > 0 {
        format!("{:.1}", mb(s.input) / secs)
    } else {
        "-".into()
    };
    println!(
        "{:<7} {:<26} {:>9.1} {:>8.2} {:>8} {:>7.2} {:>9.1} {:>10.3}",
        tool,
        s.name,
        mb(s.input),
        secs,
        rate,
        s.out.cpu.as_secs_f64(),
        s.out.maxrss_kib as f64 / 1024.0,
        mb(s.repo_bytes)
    );
    for line in s
        .out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        println!("{:<7}   | {}", "", line.trim_end());
    }
}

fn write_files(root: &Path, files: &[common::FileData]) {
    for (p, d) in files {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, d).unwrap();
    }
}

/// The "next day" of the files directory: a few files touched, edited, added and deleted.
/// Returns a one-line description.
fn change_files(root: &Path, files: &[common::FileData]) -> String {
    let mut r = Rng::new(99);
    let of = |ext: &str| -> Vec<&String> {
        files
            .iter()
            .map(|(p, _)| p)
            .filter(|p| p.ends_with(ext))
            .collect()
    };
    let later =
        filetime::FileTime::from_unix_time(filetime::FileTime::now().unix_seconds() + 3600, 0);
    let (mut touched, mut edited, mut added, mut deleted) = (0, 0, 0, 0);
    let mut changed_bytes = 0u64;
    // Touched: same content, new mtime.
    let rs = of(".rs");
    for p in rs.iter().step_by((rs.len() / 5).max(1)).take(5) {
        filetime::set_file_mtime(root.join(p), later).unwrap();
        touched += 1;
    }
    // Source files edited in the middle.
    let ts = of(".ts");
    for p in ts.iter().step_by((ts.len() / 5).max(1)).take(5) {
        let path = root.join(p);
        let mut d = fs::read(&path).unwrap();
        let at = d.len() / 2;
        let ins = b"\n// edited: handle the empty case before indexing\nif items.len() == 0 { return None; }\n";
        d.splice(at..at, ins.iter().copied());
        fs::write(&path, &d).unwrap();
        changed_bytes += ins.len() as u64;
        edited += 1;
    }
    // Media files partly rewritten in place (64 KiB in the middle).
    let media = of(".jpg");
    for p in media.iter().take(2) {
        let path = root.join(p);
        let mut d = fs::read(&path).unwrap();
        let n = d.len().min(64 << 10);
        let at = (d.len() - n) / 2;
        r.fill(&mut d[at..at + n]);
        fs::write(&path, &d).unwrap();
        changed_bytes += n as u64;
        edited += 1;
    }
    // Small config files appended to.
    let json = of(".json");
    for p in json.iter().step_by((json.len() / 3).max(1)).take(3) {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(root.join(p))
            .unwrap();
        f.write_all(b"{\"patched\": true}\n").unwrap();
        changed_bytes += 18;
        edited += 1;
    }
    // New files.
    for i in 0..20 {
        let d = format!(
            "{{\"new_setting_{i}\": {}, \"enabled\": true}}\n",
            r.below(1000)
        );
        fs::create_dir_all(root.join("config/new")).unwrap();
        fs::write(root.join(format!("config/new/added_{i:02}.json")), &d).unwrap();
        changed_bytes += d.len() as u64;
        added += 1;
    }
    let mut big = vec![0u8; 2 << 20];
    r.fill(&mut big);
    fs::write(root.join("storage/media/new_upload.jpg"), &big).unwrap();
    changed_bytes += big.len() as u64;
    added += 1;
    // Deleted files.
    for p in json.iter().rev().take(3) {
        fs::remove_file(root.join(p)).unwrap();
        deleted += 1;
    }
    format!(
        "{touched} touched, {edited} edited, {added} added, {deleted} deleted; {:.2} MB of new content",
        mb(changed_bytes)
    )
}

fn zstd_of_file(p: &Path) -> u64 {
    let mut z = ZstdCounter::new(3);
    io::copy(&mut fs::File::open(p).unwrap(), &mut z).unwrap();
    z.finish()
}

fn restic_available() -> Option<String> {
    let out = Command::new("restic").arg("version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let dump_target = common::env_mb("SNAP_BENCH_MB", 300);
    let files_target = common::env_mb("SNAP_BENCH_FILES_MB", 60);
    let base_dir = std::env::var_os("SNAP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("snap-e2e-")
        .tempdir_in(&base_dir)
        .expect("tempdir");
    let base = tmp.path();

    // Inputs.
    let t = Instant::now();
    let dump = Dump::new(dump_target, 1);
    let rows = dump.total_rows();
    let edits = dump.nightly(
        21,
        (rows / 1000) as usize,
        "orders",
        rows / 2000,
        (rows / 10_000) as usize,
    );
    let dump0 = base.join("dump-v0.sql");
    let dump1 = base.join("dump-v1.sql");
    let len0 = dump
        .write(
            &common::Edits::none(),
            io::BufWriter::new(fs::File::create(&dump0).unwrap()),
        )
        .unwrap();
    let len1 = dump
        .write(
            &edits,
            io::BufWriter::new(fs::File::create(&dump1).unwrap()),
        )
        .unwrap();
    let files = common::mixed_files(files_target, 2);
    let dir = base.join("files");
    write_files(&dir, &files);
    let files0 = common::dir_bytes(&dir);
    println!(
        "e2e: dump v0 {:.1} MB ({rows} rows), dump v1 {:.1} MB ({} updated, {} appended to orders, {} deleted); files {:.1} MB in {} files (generated in {:.1} s)",
        mb(len0),
        mb(len1),
        edits.updated.len(),
        edits.appended.iter().sum::<u64>(),
        edits.deleted.len(),
        mb(files0),
        files.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let z_dump0 = zstd_of_file(&dump0);
    let z_dump1 = zstd_of_file(&dump1);
    let mut z = ZstdCounter::new(3);
    for (_, d) in &files {
        z.write_all(d).unwrap();
    }
    let z_files = z.finish();
    println!(
        "zstd -3 (zstd crate, whole stream): dump v0 {:.2} MB, dump v1 {:.2} MB, files (concatenated) {:.2} MB ({:.1} s)",
        mb(z_dump0),
        mb(z_dump1),
        mb(z_files),
        t.elapsed().as_secs_f64()
    );
    println!(
        "machine: {} cores; MB = 10^6 bytes; MB/s = input bytes / wall time; RSS = peak of the child (wait4)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let restic = if common::smoke_test() {
        None
    } else {
        restic_available()
    };
    match &restic {
        Some(v) => println!("comparing with {v}"),
        None if common::smoke_test() => println!(
            "smoke test (cargo test): small inputs, no restic comparison; run `cargo bench --bench e2e` for figures"
        ),
        None => println!("restic was not found on PATH: skipping the comparison"),
    }
    println!();

    let mut runners = vec![Runner::new(Tool::Snap, base)];
    if restic.is_some() {
        runners.push(Runner::new(Tool::Restic, base));
    }
    print_header();
    // Night 1: the same inputs for every tool.
    for r in &mut runners {
        r.init();
        r.backup_dump("backup dump v0 (stdin)", &dump0);
        let after_dump = r.steps.last().unwrap().repo_bytes;
        println!(
            "{:<7}   repo after the dump: {:.2} MB = {:.3} x zstd -3 of the dump ({:.2} MB)",
            "",
            mb(after_dump),
            after_dump as f64 / z_dump0 as f64,
            mb(z_dump0)
        );
        r.backup_dir("backup files v0", &dir);
    }
    // Night 2: change the inputs once, then every tool backs them up. The files go first so
    // that `latest` is the dump snapshot for the restore.
    let what = change_files(&dir, &files);
    println!("files v1: {what}");
    for r in &mut runners {
        r.backup_dir("backup files v1", &dir);
        r.backup_dump("backup dump v1 (stdin)", &dump1);
        let target = base.join(format!("{}-restore", r.name()));
        r.restore_dump(&target, &dump1);
        fs::remove_dir_all(&target).unwrap();
    }

    println!();
    for r in &runners {
        let total = r.steps.last().unwrap().repo_bytes;
        println!(
            "{:<7} repo total {:.2} MB; zstd -3 of night-1 inputs (dump v0 + files) {:.2} MB -> {:.3} x; of all four inputs {:.2} MB -> {:.3} x; index cache {:.2} MB",
            r.name(),
            mb(total),
            mb(z_dump0 + z_files),
            total as f64 / (z_dump0 + z_files) as f64,
            mb(z_dump0 + z_dump1 + 2 * z_files),
            total as f64 / (z_dump0 + z_dump1 + 2 * z_files) as f64,
            mb(common::dir_bytes(&r.cache))
        );
    }
    if let [snap, restic] = &runners[..] {
        println!();
        println!(
            "snap / restic ({} on this machine)",
            restic_available().unwrap_or_default()
        );
        println!(
            "{:<26} {:>10} {:>10} {:>8} {:>10} {:>10} {:>8}",
            "step", "snap MB/s", "restic", "ratio", "snap RSS", "restic", "ratio"
        );
        for s in &snap.steps {
            let o = restic.find(&s.name);
            if s.input == 0 {
                continue;
            }
            let a = mb(s.input) / s.out.wall.as_secs_f64();
            let b = mb(o.input) / o.out.wall.as_secs_f64();
            println!(
                "{:<26} {:>10.1} {:>10.1} {:>8.2} {:>10.1} {:>10.1} {:>8.2}",
                s.name,
                a,
                b,
                a / b,
                s.out.maxrss_kib as f64 / 1024.0,
                o.out.maxrss_kib as f64 / 1024.0,
                s.out.maxrss_kib as f64 / o.out.maxrss_kib as f64
            );
        }
        println!(
            "{:<26} {:>10} {:>10} {:>8}",
            "repo bytes after", "snap MB", "restic", "ratio"
        );
        for s in &snap.steps {
            let o = restic.find(&s.name);
            println!(
                "{:<26} {:>10.3} {:>10.3} {:>8.3}",
                s.name,
                mb(s.repo_bytes),
                mb(o.repo_bytes),
                s.repo_bytes as f64 / o.repo_bytes as f64
            );
        }
    }
}
