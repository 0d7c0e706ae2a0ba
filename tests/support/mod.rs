//! Shared helpers for the CLI end-to-end tests: a throwaway repository driven through the real
//! `snap` binary, a deterministic random tree generator, and a strict tree comparison.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use filetime::FileTime;
use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery staple 42";

/// Path of the binary under test.
pub fn snap_bin() -> &'static str {
    env!("CARGO_BIN_EXE_snap")
}

/// Exit code of a finished process; a death by signal `s` is reported as `-s`.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| -status.signal().unwrap_or(0))
}

/// A `snap` command with a clean environment: none of the SNAP_* variables of the caller
/// leak in, the cache is private, stdin is empty, and the process has no controlling terminal
/// (so a missing password can never turn into an interactive prompt).
pub fn bare_snap(scratch: &Path) -> Command {
    let mut c = Command::new(snap_bin());
    for v in [
        "SNAP_REPO",
        "SNAP_PASSWORD",
        "SNAP_PASSWORD_FILE",
        "SNAP_PASSWORD_COMMAND",
        "SNAP_CACHE_DIR",
    ] {
        c.env_remove(v);
    }
    c.env("XDG_CACHE_HOME", scratch.join("xdg-cache"));
    c.stdin(Stdio::null());
    // SAFETY: setsid is async-signal-safe; it detaches the child from our terminal.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    c
}

pub fn output_parts(o: Output) -> (i32, String, String) {
    (
        exit_code(o.status),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Run a command, killing it if it does not finish within `limit` (a hang is a failure).
pub fn run_with_timeout(mut c: Command, limit: std::time::Duration) -> (i32, String, String) {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn snap");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(o) => output_parts(o.expect("wait snap")),
        Err(_) => {
            // SAFETY: plain kill(2) of the child we spawned (it has not been reaped yet).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("snap hung and was killed after {limit:?}");
        }
    }
}

/// A repository (and its index cache) in a temporary directory.
pub struct TestRepo {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub cache: PathBuf,
    pub password: String,
    /// Pass the repository through `SNAP_REPO` instead of `--repo`.
    pub via_env: bool,
    /// Extra environment for every `snap` run (S3 credentials, see s3.rs).
    pub env: Vec<(String, String)>,
}

impl TestRepo {
    /// A location for a repository that is not created yet.
    pub fn uninit() -> TestRepo {
        let dir = tempfile::Builder::new()
            .prefix("snap-e2e-")
            .tempdir()
            .expect("tempdir");
        let repo = dir.path().join("repo");
        let cache = dir.path().join("cache");
        TestRepo {
            dir,
            repo,
            cache,
            password: PASSWORD.to_string(),
            via_env: false,
            env: Vec::new(),
        }
    }

    /// A repository at a location that is not a local path (e.g. `s3:http://…`), not created
    /// yet; every run gets `env` (e.g. the S3 credentials).
    pub fn uninit_at(location: &str, env: Vec<(String, String)>) -> TestRepo {
        let mut r = Self::uninit();
        r.repo = location.into();
        r.env = env;
        r
    }

    /// A fresh repository created with a cheap KDF and default chunking.
    pub fn new() -> TestRepo {
        Self::with_init_args(&[])
    }

    /// A fresh repository created with extra `snap init` arguments (e.g. `--chunk-avg-kib 16`).
    pub fn with_init_args(extra: &[&str]) -> TestRepo {
        let r = Self::uninit();
        let (code, out, err) = r.init(extra);
        assert_eq!(code, 0, "snap init failed\nstdout:\n{out}\nstderr:\n{err}");
        assert!(r.repo.join("config").is_file(), "init wrote no config");
        r
    }

    /// Run `snap init` with the cheap KDF and `extra` arguments.
    pub fn init(&self, extra: &[&str]) -> (i32, String, String) {
        let mut args = vec!["init", "--kdf-memory-kib", "64", "--kdf-iterations", "1"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// A scratch directory (inside the test's temp dir) for sources, targets, etc.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `snap` with password, cache dir and repository set; `args` still to be added.
    pub fn cmd(&self) -> Command {
        let mut c = bare_snap(self.dir.path());
        c.env("SNAP_PASSWORD", &self.password);
        c.env("SNAP_CACHE_DIR", &self.cache);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        if self.via_env {
            c.env("SNAP_REPO", &self.repo);
        } else {
            c.arg("--repo").arg(&self.repo);
        }
        c
    }

    /// Run `snap args…`; returns (exit code, stdout, stderr).
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> (i32, String, String) {
        output_parts(self.cmd().args(args).output().expect("spawn snap"))
    }

    /// Run `snap args…` with `input` on stdin.
    pub fn run_stdin<S: AsRef<OsStr>>(&self, args: &[S], input: &[u8]) -> (i32, String, String) {
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn snap");
        let mut stdin = child.stdin.take().unwrap();
        let data = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().expect("wait snap");
        writer.join().unwrap();
        output_parts(out)
    }

    /// Run `snap args…`; returns (exit code, raw stdout, stderr).
    pub fn run_raw<S: AsRef<OsStr>>(&self, args: &[S]) -> (i32, Vec<u8>, String) {
        let o = self.cmd().args(args).output().expect("spawn snap");
        (
            exit_code(o.status),
            o.stdout,
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// Run and require exit code 0; returns stdout.
    pub fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(
            code,
            0,
            "snap {:?} exited {code}\nstdout:\n{out}\nstderr:\n{err}",
            show(args)
        );
        out
    }

    /// Run and require exit code 0; parse stdout as JSON.
    pub fn json<S: AsRef<OsStr>>(&self, args: &[S]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("snap {:?}: stdout is not JSON ({e}):\n{out}", show(args)))
    }

    /// `snap backup --json args…`, requiring exit 0; the snapshot as JSON.
    pub fn backup<S: AsRef<OsStr>>(&self, args: &[S]) -> Value {
        let mut all: Vec<&OsStr> = vec![OsStr::new("backup"), OsStr::new("--json")];
        all.extend(args.iter().map(|a| a.as_ref()));
        self.json(&all)
    }

    /// `snap snapshots --json`.
    pub fn snapshots(&self) -> Vec<Value> {
        match self.json(&["snapshots", "--json"]) {
            Value::Array(v) => v,
            other => panic!("snapshots --json is not an array: {other}"),
        }
    }

    /// Ids (full hex) of all snapshots, oldest first.
    pub fn snapshot_ids(&self) -> Vec<String> {
        self.snapshots()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// `snap restore <snapshot> --target <target> extra…`, requiring exit 0.
    pub fn restore(&self, snapshot: &str, target: &Path, extra: &[&str]) -> String {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("restore"),
            OsStr::new(snapshot),
            OsStr::new("--target"),
            target.as_os_str(),
        ];
        args.extend(extra.iter().map(OsStr::new));
        self.ok(&args)
    }

    /// `snap cat <snapshot> <path>`, requiring exit 0; the raw bytes.
    pub fn cat(&self, snapshot: &str, path: &str) -> Vec<u8> {
        let (code, out, err) = self.run_raw(&["cat", snapshot, path]);
        assert_eq!(code, 0, "snap cat {snapshot} {path} exited {code}: {err}");
        out
    }
}

fn show<S: AsRef<OsStr>>(args: &[S]) -> Vec<String> {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect()
}

/// Where `restore` puts source path `src` under `target`: `<target>/<src without leading />`.
pub fn restored_path(target: &Path, src: &Path) -> PathBuf {
    assert!(src.is_absolute(), "{} is not absolute", src.display());
    target.join(src.strip_prefix("/").unwrap())
}

/// How a source path is stored in a snapshot (absolute, without the leading `/`).
pub fn stored(src: &Path) -> String {
    src.to_str().unwrap().trim_start_matches('/').to_string()
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

/// xorshift64* — small, seedable, deterministic across platforms.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so nearby seeds give unrelated streams and 0 is fine.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..hi` (hi exclusive).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(hi > lo);
        lo + self.next_u64() % (hi - lo)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// `len` bytes of incompressible data.
pub fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    v
}

/// `len` bytes of compressible, text-like data (SQL-ish lines with varying numbers).
pub fn text_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "INSERT",
        "INTO",
        "orders",
        "VALUES",
        "customer",
        "total",
        "NULL",
        "2026-11-01",
        "Zürich",
        "東京",
        "alpha",
        "beta",
        "gamma",
        "delta",
        "épée",
        "naïve",
    ];
    let mut v = Vec::with_capacity(len + 64);
    while v.len() < len {
        let n = rng.range(3, 12);
        for i in 0..n {
            if i > 0 {
                v.push(b' ');
            }
            if rng.chance(30) {
                v.extend_from_slice(rng.range(0, 1_000_000).to_string().as_bytes());
            } else {
                v.extend_from_slice(rng.pick(WORDS).as_bytes());
            }
        }
        v.push(b'\n');
    }
    v.truncate(len);
    v
}

/// Half random, half text, interleaved in blocks: partly compressible.
pub fn mixed_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        let n = (rng.range(16 << 10, 512 << 10) as usize).min(len - v.len());
        if rng.chance(50) {
            v.extend(random_bytes(rng, n));
        } else {
            v.extend(text_bytes(rng, n));
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Random trees

/// Shape of a generated tree.
#[derive(Debug, Clone)]
pub struct TreeSpec {
    pub max_depth: u32,
    /// Entries per directory: `min..max`.
    pub entries: (u64, u64),
    /// Number of large files, each of `large_size` bytes ± 50%.
    pub large_files: usize,
    pub large_size: usize,
    /// Largest "small" file.
    pub small_max: usize,
}

impl Default for TreeSpec {
    fn default() -> Self {
        TreeSpec {
            max_depth: 3,
            entries: (3, 8),
            large_files: 2,
            large_size: 3 << 20,
            small_max: 16 << 10,
        }
    }
}

/// What was generated (for sanity checks in tests).
#[derive(Debug, Default, Clone)]
pub struct TreeInfo {
    pub files: Vec<PathBuf>,
    pub empty_files: usize,
    pub large_files: Vec<PathBuf>,
    pub dirs: Vec<PathBuf>,
    pub symlinks: Vec<PathBuf>,
    pub total_bytes: u64,
}

const NAMES: &[&str] = &[
    "ünïcødé ✓.txt",
    "日本語のファイル.txt",
    "中文目录",
    "한국어 문서",
    "with space.txt",
    "two  spaces",
    "hash#tag",
    "100% done",
    "percent%20encoded.dat",
    "emoji 🎉.bin",
    "-leading-dash",
    ".hidden",
    "it's quoted",
    "[brackets] {braces}",
    "semi;colon,comma",
    "dollar$HOME",
    "Ωmega",
    "plain.txt",
    "data.bin",
    "notes.md",
    "README",
    "x",
    "new\nline",
    "back\\slash",
    "tab\tand \"quotes\"",
];

const FILE_MODES: &[u32] = &[0o600, 0o644, 0o755, 0o640, 0o444, 0o700];
const DIR_MODES: &[u32] = &[0o700, 0o755, 0o750, 0o711];

fn random_mtime(rng: &mut Rng) -> FileTime {
    // 2001-09-09 .. 2033-05-18, with random nanoseconds.
    let secs = rng.range(1_000_000_000, 2_000_000_000) as i64;
    FileTime::from_unix_time(secs, rng.range(0, 1_000_000_000) as u32)
}

fn unique_name(rng: &mut Rng, taken: &mut Vec<String>) -> String {
    let base = rng.pick(NAMES).to_string();
    let mut name = base.clone();
    let mut n = 1;
    while taken.contains(&name) {
        n += 1;
        name = format!("{base} ~{n}");
    }
    taken.push(name.clone());
    name
}

fn write_file(path: &Path, data: &[u8]) {
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Generate a tree at `root` (which must not exist) from `seed`. Everything is decided by the
/// seed: names, sizes, contents, modes, mtimes, symlinks. Metadata is set last (files and links
/// first, then directories deepest-first), so the final mtimes are exactly the chosen ones.
pub fn gen_tree(root: &Path, seed: u64, spec: &TreeSpec) -> TreeInfo {
    let mut rng = Rng::new(seed);
    let mut info = TreeInfo::default();
    fs::create_dir(root).unwrap();
    info.dirs.push(root.to_path_buf());
    gen_dir(&mut rng, root, 0, spec, &mut info);

    // Every special name at least once, in a directory with a special name itself.
    let special = root.join("ünïcødé ✓ #1 %20 dir");
    fs::create_dir(&special).unwrap();
    info.dirs.push(special.clone());
    for name in NAMES {
        let p = special.join(name);
        let size = rng.range(0, 300) as usize;
        write_file(&p, &text_bytes(&mut rng, size));
        if size == 0 {
            info.empty_files += 1;
        }
        info.total_bytes += size as u64;
        info.files.push(p);
    }

    // Large files, spread over random directories.
    for i in 0..spec.large_files {
        let dir = rng.pick(&info.dirs).clone();
        let size = rng.range(
            spec.large_size as u64 / 2,
            spec.large_size as u64 * 3 / 2 + 1,
        ) as usize;
        let data = if i % 2 == 0 {
            random_bytes(&mut rng, size)
        } else {
            mixed_bytes(&mut rng, size)
        };
        let p = dir.join(format!("large {i} ✓.bin"));
        write_file(&p, &data);
        info.total_bytes += size as u64;
        info.files.push(p.clone());
        info.large_files.push(p);
    }

    // Always one of each kind of symlink at the top, plus a few random ones.
    let some_file = info
        .files
        .iter()
        .find(|f| f.parent() != Some(root))
        .or(info.files.first())
        .cloned();
    if let Some(f) = &some_file {
        let rel = f.strip_prefix(root).unwrap();
        let p = root.join("link relative ✓");
        std::os::unix::fs::symlink(rel, &p).unwrap();
        info.symlinks.push(p);
        let p = root.join("link-absolute");
        std::os::unix::fs::symlink(f, &p).unwrap();
        info.symlinks.push(p);
    }
    let p = root.join("link dangling");
    std::os::unix::fs::symlink("does/not/exist ☠", &p).unwrap();
    info.symlinks.push(p);
    let dirs = info.dirs.clone();
    for (i, d) in dirs.iter().enumerate() {
        if d != root && rng.chance(40) {
            let p = d.join(format!("up-link {i}"));
            std::os::unix::fs::symlink("../", &p).unwrap();
            info.symlinks.push(p);
        }
    }

    // An old mtime (before 1970) on one file, if there is one.
    let mut first = true;
    // Metadata: files, then links, then dirs deepest first.
    for f in &info.files {
        fs::set_permissions(f, fs::Permissions::from_mode(*rng.pick(FILE_MODES))).unwrap();
        let t = if first {
            first = false;
            FileTime::from_unix_time(-31_536_000 + 12_345, 678_901_234)
        } else {
            random_mtime(&mut rng)
        };
        filetime::set_file_times(f, t, t).unwrap();
    }
    for l in &info.symlinks {
        let t = random_mtime(&mut rng);
        filetime::set_symlink_file_times(l, t, t).unwrap();
    }
    let mut dirs = info.dirs.clone();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in &dirs {
        fs::set_permissions(d, fs::Permissions::from_mode(*rng.pick(DIR_MODES))).unwrap();
        let t = random_mtime(&mut rng);
        filetime::set_file_times(d, t, t).unwrap();
    }
    // The root is always searchable by the owner (tests add to it later only via restore).
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
    let t = random_mtime(&mut rng);
    filetime::set_file_times(root, t, t).unwrap();
    info
}

fn gen_dir(rng: &mut Rng, dir: &Path, depth: u32, spec: &TreeSpec, info: &mut TreeInfo) {
    let n = rng.range(spec.entries.0, spec.entries.1);
    let mut taken = Vec::new();
    for i in 0..n {
        let name = unique_name(rng, &mut taken);
        let p = dir.join(&name);
        let roll = rng.range(0, 100);
        // The first entry of each level is a directory, so the tree always reaches max_depth.
        if (i == 0 || roll < 25) && depth < spec.max_depth {
            fs::create_dir(&p).unwrap();
            info.dirs.push(p.clone());
            gen_dir(rng, &p, depth + 1, spec, info);
        } else if roll < 35 {
            write_file(&p, b"");
            info.empty_files += 1;
            info.files.push(p);
        } else {
            let size = rng.range(1, spec.small_max as u64 + 1) as usize;
            let data = if rng.chance(50) {
                random_bytes(rng, size)
            } else {
                text_bytes(rng, size)
            };
            write_file(&p, &data);
            info.total_bytes += size as u64;
            info.files.push(p);
        }
    }
    // Every directory level holds at least one empty subdirectory sometimes.
    if depth < spec.max_depth && rng.chance(30) {
        let p = dir.join("empty dir");
        if !p.exists() {
            fs::create_dir(&p).unwrap();
            info.dirs.push(p);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tree comparison

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink(PathBuf),
    Other,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: Kind,
    pub perm: u32,
    pub mtime: (i64, i64),
    pub size: u64,
}

/// `root/rel`, or `root` itself for the empty `rel`.
pub fn under(root: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    }
}

/// Every path under `root` (relative; "" is the root itself) with its lstat data.
pub fn scan(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    scan_into(root, Path::new(""), &mut out);
    out
}

fn scan_into(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Node>) {
    let abs = under(root, rel);
    let m = fs::symlink_metadata(&abs).unwrap_or_else(|e| panic!("lstat {}: {e}", abs.display()));
    let ft = m.file_type();
    let kind = if ft.is_symlink() {
        Kind::Symlink(fs::read_link(&abs).unwrap())
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File
    } else {
        Kind::Other
    };
    out.insert(
        rel.to_path_buf(),
        Node {
            kind: kind.clone(),
            perm: m.mode() & 0o7777,
            mtime: (m.mtime(), m.mtime_nsec()),
            size: m.len(),
        },
    );
    if kind == Kind::Dir {
        let mut names: Vec<_> = fs::read_dir(&abs)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for n in names {
            scan_into(root, &rel.join(n), out);
        }
    }
}

/// Assert that `restored` is an exact copy of `src`: same set of paths, same types, permission
/// bits (files and dirs), mtimes to the nanosecond (files, dirs and symlinks), symlink targets
/// and file bytes.
pub fn assert_trees_equal(src: &Path, restored: &Path) {
    let a = scan(src);
    let b = scan(restored);
    let missing: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let extra: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "trees differ in paths ({} vs {}):\n  missing from restore: {missing:?}\n  extra in restore: {extra:?}",
        src.display(),
        restored.display()
    );
    let mut problems = Vec::new();
    for (rel, x) in &a {
        let y = &b[rel];
        let show = rel.display();
        if x.kind != y.kind {
            problems.push(format!("/{show}: type {:?} vs {:?}", x.kind, y.kind));
            continue;
        }
        if !matches!(x.kind, Kind::Symlink(_)) && x.perm != y.perm {
            problems.push(format!("/{show}: mode {:04o} vs {:04o}", x.perm, y.perm));
        }
        if x.mtime != y.mtime {
            problems.push(format!("/{show}: mtime {:?} vs {:?}", x.mtime, y.mtime));
        }
        if x.kind == Kind::File {
            if x.size != y.size {
                problems.push(format!("/{show}: size {} vs {}", x.size, y.size));
            } else {
                let da = fs::read(under(src, rel)).unwrap();
                let db = fs::read(under(restored, rel)).unwrap();
                if da != db {
                    let at = da
                        .iter()
                        .zip(&db)
                        .position(|(p, q)| p != q)
                        .unwrap_or(da.len());
                    problems.push(format!("/{show}: content differs (first at byte {at})"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "trees {} and {} differ:\n  {}",
        src.display(),
        restored.display(),
        problems.join("\n  ")
    );
}

/// Recursively copy a tree with all metadata (files, dirs, symlinks, modes, mtimes).
pub fn copy_tree(src: &Path, dst: &Path) {
    let nodes = scan(src);
    for (rel, n) in &nodes {
        let d = under(dst, rel);
        match &n.kind {
            Kind::Dir => fs::create_dir_all(&d).unwrap(),
            Kind::File => {
                fs::copy(under(src, rel), &d).unwrap();
            }
            Kind::Symlink(t) => std::os::unix::fs::symlink(t, &d).unwrap(),
            Kind::Other => panic!("cannot copy special file {}", rel.display()),
        }
    }
    for (rel, n) in nodes.iter().rev() {
        let d = under(dst, rel);
        let t = FileTime::from_unix_time(n.mtime.0, n.mtime.1 as u32);
        match &n.kind {
            Kind::Symlink(_) => filetime::set_symlink_file_times(&d, t, t).unwrap(),
            _ => {
                fs::set_permissions(&d, fs::Permissions::from_mode(n.perm)).unwrap();
                filetime::set_file_times(&d, t, t).unwrap();
            }
        }
    }
}

/// Create a FIFO at `p`.
pub fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(
        r,
        0,
        "mkfifo {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// Set a path's mtime (following no symlinks for links).
pub fn set_mtime(p: &Path, secs: i64, nanos: u32) {
    let t = FileTime::from_unix_time(secs, nanos);
    filetime::set_symlink_file_times(p, t, t).unwrap();
}

/// Repository options for library-level tests: a cheap KDF, 16 KiB chunks and 1 MiB packs, so
/// small data gives many chunks and packs.
pub fn fast_init_options() -> snap::repo::InitOptions {
    snap::repo::InitOptions {
        kdf: snap::crypto::keyfile::KdfParams {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        },
        chunker: snap::chunker::ChunkerParams::with_avg(16 * 1024),
        pack_size: 1 << 20,
        ..Default::default()
    }
}

/// The index file (`index.redb`) somewhere under the cache directory `cache`.
pub fn index_file(cache: &Path) -> PathBuf {
    fn walk(d: &Path) -> Option<PathBuf> {
        for e in std::fs::read_dir(d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                if let Some(f) = walk(&p) {
                    return Some(f);
                }
            } else if p.file_name().is_some_and(|n| n == "index.redb") {
                return Some(p);
            }
        }
        None
    }
    walk(cache).expect("an index file in the cache")
}

/// A replayable random seed: the number in environment variable `var`, else one from the clock.
pub fn seed_from_env(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                % 1_000_000_007
        })
}
