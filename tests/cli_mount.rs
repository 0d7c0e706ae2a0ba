//! `snap mount`: real FUSE mounts of real repositories, served by the `snap` binary running as
//! a child of the test. Every mount is unmounted (lazily, if need be) and its process reaped by
//! a guard, also when an assertion fails.

#[path = "support/pg.rs"]
mod pg;
mod support;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// Whether `point` is a mount point of this process's mount namespace.
fn is_mounted(point: &Path) -> bool {
    let point = point.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(point))
}

/// A running `snap mount`; dropping it unmounts (lazily) and kills and reaps the process.
struct Mount {
    child: Option<Child>,
    point: PathBuf,
    out: PathBuf,
    err: PathBuf,
}

impl Mount {
    /// Start `snap mount <point> extra…` and wait until the kernel shows the mount.
    fn start(repo: &TestRepo, point: &Path, extra: &[&str]) -> Mount {
        let (out, err) = (repo.path("mount.out"), repo.path("mount.err"));
        let child = repo
            .cmd()
            .arg("mount")
            .arg(point)
            .args(extra)
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .expect("spawn snap mount");
        let mut m = Mount {
            child: Some(child),
            point: point.to_path_buf(),
            out,
            err,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_mounted(point) {
            if let Some(status) = m.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "snap mount exited ({status}) before mounting: {}",
                    m.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "not mounted after 30 s: {}",
                m.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Wait (at most 30 s) for the process to end; its exit code, stdout and stderr.
    fn wait(mut self) -> (i32, String, String) {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                self.child = Some(child);
                panic!(
                    "snap mount did not exit after being unmounted: {}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            exit_code(status),
            fs::read_to_string(&self.out).unwrap(),
            self.stderr(),
        )
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if is_mounted(&self.point) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&self.point)
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn fusermount_u(point: &Path) {
    let o = Command::new("fusermount3")
        .arg("-u")
        .arg(point)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "fusermount3 -u: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// The directory name a snapshot has under `snapshots/`.
fn dir_name(snapshot: &serde_json::Value) -> String {
    let time = chrono::DateTime::parse_from_rfc3339(snapshot["time"].as_str().unwrap()).unwrap();
    format!(
        "{}_{}",
        time.with_timezone(&chrono::Utc).format("%Y-%m-%dT%H%M%SZ"),
        &snapshot["id"].as_str().unwrap()[..8]
    )
}

#[test]
fn mounted_snapshots_match_their_sources_and_listings_follow_backups() {
    let repo = TestRepo::with_init_args(&["--chunk-avg-kib", "64"]);
    let src = repo.path("src");
    let spec = TreeSpec {
        large_files: 1,
        large_size: 4 << 20,
        ..Default::default()
    };
    let info = gen_tree(&src, 7, &spec);
    let first = repo.backup(&[src.to_str().unwrap(), "--tag", "env=prod", "--host", "db-1"]);
    let other = repo.path("other");
    gen_tree(
        &other,
        8,
        &TreeSpec {
            large_files: 0,
            max_depth: 1,
            ..Default::default()
        },
    );
    let second = repo.backup(&[other.to_str().unwrap(), "--host", "db-2"]);
    let snaps = repo.snapshots();
    let (a, b) = (dir_name(&snaps[0]), dir_name(&snaps[1]));
    assert_ne!(a, b);
    assert_eq!(snaps[0]["id"], first["id"]);
    assert_eq!(snaps[1]["id"], second["id"]);

    let mnt = repo.path("mnt");
    fs::create_dir(&mnt).unwrap();
    let m = Mount::start(&repo, &mnt, &["--refresh-secs", "0"]);

    // Listings.
    assert_eq!(names(&mnt), ["hosts", "latest", "snapshots", "tags"]);
    let mut both = vec![a.clone(), b.clone()];
    both.sort(); // by time, then (within a second) by id
    both.push("latest".into());
    assert_eq!(names(&mnt.join("snapshots")), both);
    assert_eq!(
        fs::read_link(mnt.join("latest")).unwrap(),
        Path::new("snapshots").join(&b)
    );
    assert_eq!(
        fs::read_link(mnt.join("snapshots/latest")).unwrap(),
        Path::new(&b)
    );
    assert_eq!(names(&mnt.join("tags")), ["env=prod"]);
    assert_eq!(
        names(&mnt.join("tags/env=prod")),
        [a.clone(), "latest".into()]
    );
    assert_eq!(
        fs::read_link(mnt.join("tags/env=prod").join(&a)).unwrap(),
        Path::new("../../snapshots").join(&a)
    );
    assert_eq!(names(&mnt.join("hosts")), ["db-1", "db-2"]);
    assert_eq!(names(&mnt.join("hosts/db-2")), [b.clone(), "latest".into()]);

    // Every path, type, mode, mtime, symlink target and byte.
    assert_trees_equal(&other, &mnt.join("latest").join(stored(&other)));

    // The mount holds no lock: prune runs meanwhile. The second snapshot is forgotten (its
    // manifest removed, as `forget` does) and its data pruned; the first one still reads
    // entirely (nothing of it has been read through the mount yet).
    fs::remove_file(
        repo.repo
            .join("snapshots")
            .join(second["id"].as_str().unwrap()),
    )
    .unwrap();
    repo.ok(&["prune", "--grace", "0s"]);
    repo.ok(&["prune", "--grace", "0s"]);
    assert_eq!(names(&mnt.join("snapshots")), [a.clone(), "latest".into()]);
    assert_eq!(names(&mnt.join("hosts")), ["db-1"]);
    assert_trees_equal(&src, &mnt.join("snapshots").join(&a).join(stored(&src)));
    assert_trees_equal(&src, &mnt.join("tags/env=prod/latest").join(stored(&src)));
    assert!(
        !info.symlinks.is_empty() && !info.large_files.is_empty(),
        "the tree has symlinks and a large file"
    );

    // Reads at random offsets of the large file, without reading it from the start.
    let big = &info.large_files[0];
    let want = fs::read(big).unwrap();
    let f = fs::File::open(mnt.join("snapshots").join(&a).join(stored(big))).unwrap();
    let mut rng = Rng::new(99);
    for _ in 0..200 {
        let off = rng.range(0, want.len() as u64);
        let len = rng.range(1, 300_000) as usize;
        let mut buf = vec![0u8; len];
        let n = f.read_at(&mut buf, off).unwrap();
        let end = (off as usize + len).min(want.len());
        assert_eq!(
            &buf[..n],
            &want[off as usize..end],
            "read of {len} bytes at {off}"
        );
    }
    assert_eq!(
        f.read_at(&mut [0u8; 10], want.len() as u64).unwrap(),
        0,
        "reading at the end gives nothing"
    );
    drop(f);

    // Read-only.
    let e = fs::write(mnt.join("latest").join(stored(&src)).join("new-file"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");

    // A snapshot made while mounted shows up in the next listing.
    let third = repo.backup(&[src.to_str().unwrap(), "--tag", "env=prod", "--host", "db-1"]);
    let snaps = repo.snapshots();
    let c = dir_name(snaps.iter().find(|s| s["id"] == third["id"]).unwrap());
    assert!(names(&mnt.join("snapshots")).contains(&c));
    assert_eq!(
        fs::read_link(mnt.join("tags/env=prod/latest")).unwrap(),
        Path::new(&c)
    );
    assert_trees_equal(&src, &mnt.join("snapshots").join(&c).join(stored(&src)));

    // `fusermount3 -u` ends the process cleanly.
    fusermount_u(&mnt);
    let (code, out, err) = m.wait();
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "", "no read failed and nothing was reported");
    assert!(
        out.contains(&format!("mounted at {}, Ctrl-C to unmount", mnt.display())),
        "{out}"
    );
    assert!(!is_mounted(&mnt));
}

#[test]
fn a_database_snapshot_has_data_sql_and_ctrl_c_unmounts() {
    let c = pg::PgCluster::start();
    c.create_db("plain");
    c.load_file("plain", &pg::fixture("plain.sql"));
    let repo = TestRepo::new();
    let (code, _, err) = repo.run(&["backup", "db", "--db-url", &c.url_db("plain")]);
    assert_eq!(code, 0, "{err}");
    let dumped = repo.path("dump");
    let (code, _, err) = repo.run(&["dump", "latest", "--out", dumped.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let want = fs::read(dumped.join("data.sql")).unwrap();
    assert!(want.len() > 100, "data.sql has content");

    let mnt = repo.path("mnt");
    fs::create_dir(&mnt).unwrap();
    let m = Mount::start(&repo, &mnt, &[]);
    let db = mnt.join("latest/db/plain");
    let listed = names(&db);
    for f in [
        "data-order.json",
        "data.sql",
        "inventory.json",
        "roles.sql",
        "schema.sql",
        "tables",
    ] {
        assert!(listed.iter().any(|n| n == f), "{f} in {listed:?}");
    }
    assert_eq!(
        fs::read(db.join("data.sql")).unwrap(),
        want,
        "the virtual data.sql is the reassembled file"
    );
    assert_eq!(
        fs::metadata(db.join("data.sql")).unwrap().len(),
        want.len() as u64
    );
    let f = fs::File::open(db.join("data.sql")).unwrap();
    let mut buf = vec![0u8; 40];
    let off = want.len() as u64 / 2;
    let n = f.read_at(&mut buf, off).unwrap();
    assert_eq!(
        &buf[..n],
        &want[off as usize..(off as usize + 40).min(want.len())]
    );
    assert_eq!(
        fs::read(db.join("schema.sql")).unwrap(),
        fs::read(dumped.join("schema.sql")).unwrap()
    );
    drop(f);

    // Ctrl-C (SIGINT) unmounts and exits 0.
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(m.pid(), libc::SIGINT) };
    let (code, _, err) = m.wait();
    assert_eq!(code, 0, "{err}");
    assert!(!is_mounted(&mnt));
}

#[test]
fn mount_errors_are_clear() {
    let repo = TestRepo::new();
    let missing = repo.path("missing");
    let (code, _, err) = repo.run(&["mount".as_ref(), missing.as_os_str()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not exist; create it first"), "{err}");

    let full = repo.path("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("x"), b"x").unwrap();
    let (code, _, err) = repo.run(&["mount".as_ref(), full.as_os_str()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not empty"), "{err}");

    let (code, _, err) = repo.run(&["mount".as_ref(), full.join("x").as_os_str()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not a directory"), "{err}");

    let empty = repo.path("empty");
    fs::create_dir(&empty).unwrap();
    let mut c = repo.cmd();
    c.env("SNAP_PASSWORD", "not the password")
        .arg("mount")
        .arg(&empty);
    let (code, _, err) = output_parts(c.output().unwrap());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("wrong password"), "{err}");
    assert!(!is_mounted(&empty));

    let (code, _, err) = repo.run(&["mount"]);
    assert_eq!(
        code, 2,
        "a missing mountpoint argument is a usage error: {err}"
    );
}

#[test]
fn a_busy_mount_is_detached_by_a_second_ctrl_c() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"content").unwrap();
    repo.backup(&[&src]);
    let mnt = repo.path("mnt");
    fs::create_dir(&mnt).unwrap();
    let m = Mount::start(&repo, &mnt, &[]);

    // A process whose working directory is inside the mount keeps it busy.
    let mut user = Command::new("sleep")
        .arg("60")
        .current_dir(mnt.join("latest"))
        .spawn()
        .unwrap();
    let wait_for = |what: &dyn Fn() -> bool, why: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !what() {
            assert!(Instant::now() < deadline, "{why}: {}", m.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(m.pid(), libc::SIGINT) };
    wait_for(
        &|| m.stderr().contains("press Ctrl-C again"),
        "the first Ctrl-C reports the busy mount",
    );
    assert!(
        m.stderr().contains("cannot unmount") && m.stderr().contains("busy"),
        "{}",
        m.stderr()
    );
    assert!(is_mounted(&mnt), "still mounted and served");
    assert_eq!(
        fs::read(mnt.join("latest").join(stored(&src)).join("f")).unwrap(),
        b"content"
    );

    unsafe { libc::kill(m.pid(), libc::SIGINT) };
    wait_for(
        &|| !is_mounted(&mnt),
        "the second Ctrl-C detaches the mount",
    );
    user.kill().unwrap();
    user.wait().unwrap();
    let (code, _, err) = m.wait();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("detached"), "{err}");
}
