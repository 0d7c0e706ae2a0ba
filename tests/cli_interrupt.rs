//! End-to-end: Ctrl-C (SIGINT) and SIGTERM during a command, and the locks a killed command
//! leaves behind. Real `snap` processes, real signals.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// Names of the lock files in the repository.
fn locks(repo: &Path) -> Vec<String> {
    std::fs::read_dir(repo.join("locks"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Wait (up to a minute) until `repo` holds a lock.
fn wait_for_lock(repo: &Path, child: &mut Child) {
    let start = Instant::now();
    while locks(repo).is_empty() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("snap exited ({status}) before taking its lock");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no lock after a minute"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `snap backup --stdin extra…`, fed random data without end (until it stops reading), and
/// busy with it: its lock is taken and a few MiB went through.
fn busy_backup(repo: &TestRepo, extra: &[&str]) -> Child {
    let mut child = repo
        .cmd()
        .args(["backup", "--stdin", "--stdin-name", "endless.bin"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn snap");
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut rng = Rng::new(18);
        let mut sent = 0usize;
        loop {
            if stdin.write_all(&random_bytes(&mut rng, 256 << 10)).is_err() {
                return; // snap is gone
            }
            sent += 256 << 10;
            if sent == 4 << 20 {
                let _ = tx.send(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    wait_for_lock(&repo.repo, &mut child);
    rx.recv_timeout(Duration::from_secs(60))
        .expect("snap read 4 MiB within a minute");
    child
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) of our own child, not reaped yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Wait (bounded) for the child; returns (exit code, stderr). Whatever it started is killed.
fn finish(child: Child) -> (i32, String) {
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx.recv_timeout(Duration::from_secs(60));
    // snap runs in its own session (bare_snap): its process group is whatever it left behind.
    // SAFETY: kill(2) of that process group.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let (code, _, err) = output_parts(out.expect("snap exits after the signal").unwrap());
    (code, err)
}

/// The repository is as before the interrupted command: no lock, no snapshot, check clean.
fn assert_untouched(repo: &TestRepo) {
    assert_eq!(locks(&repo.repo), Vec::<String>::new(), "no lock is left");
    assert!(repo.snapshots().is_empty(), "no snapshot was recorded");
    let (code, out, err) = repo.run(&["check"]);
    assert_eq!(code, 0, "check after the interrupt:\n{out}\n{err}");
    assert!(!out.contains("stale lock"), "{out}");
}

#[test]
fn ctrl_c_during_a_backup_removes_its_lock_and_exits_130() {
    let repo = TestRepo::new();
    let child = busy_backup(&repo, &[]);
    signal(&child, libc::SIGINT);
    let (code, err) = finish(child);
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("interrupted (SIGINT), cleaning up"), "{err}");
    assert_eq!(
        err.matches("interrupted").count(),
        1,
        "said once, no error after it: {err}"
    );
    assert_untouched(&repo);
}

#[test]
fn sigterm_during_a_backup_removes_its_lock_and_exits_143() {
    let repo = TestRepo::new();
    let child = busy_backup(&repo, &[]);
    signal(&child, libc::SIGTERM);
    let (code, err) = finish(child);
    assert_eq!(code, 143, "{err}");
    assert!(err.contains("interrupted (SIGTERM), cleaning up"), "{err}");
    assert_untouched(&repo);
}

#[test]
fn an_interrupt_under_json_is_a_json_error() {
    let repo = TestRepo::new();
    let child = busy_backup(&repo, &["--json"]);
    signal(&child, libc::SIGINT);
    let (code, err) = finish(child);
    assert_eq!(code, 130, "{err}");
    let v: serde_json::Value = serde_json::from_str(err.trim_end().lines().last().unwrap())
        .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {err}"));
    assert_eq!(v["error"]["kind"], "interrupted", "{v}");
    assert_eq!(v["error"]["exit_code"], 130, "{v}");
    assert_eq!(
        v["error"]["message"], "interrupted (SIGINT), cleaning up",
        "{v}"
    );
    assert_untouched(&repo);
}

/// Not only backups: `snap cat` blocked on a full stdout pipe, holding its lock.
#[test]
fn ctrl_c_during_cat_removes_its_lock() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("big.bin"), random_bytes(&mut Rng::new(7), 4 << 20)).unwrap();
    repo.backup(&[&src]);
    assert!(locks(&repo.repo).is_empty());
    // Nobody reads its stdout: it blocks once the pipe is full, with its lock held.
    let mut child = repo
        .cmd()
        .args(["cat", "latest", &format!("{}/big.bin", stored(&src))])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lock(&repo.repo, &mut child);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGINT);
    let (code, err) = finish(child);
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("interrupted (SIGINT), cleaning up"), "{err}");
    assert!(locks(&repo.repo).is_empty(), "no lock is left");
}

#[test]
fn the_lock_of_a_killed_backup_is_removed_by_the_next_command_of_this_host() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"a").unwrap();
    for quiet in [false, true] {
        let child = busy_backup(&repo, &[]);
        let pid = child.id();
        signal(&child, libc::SIGKILL);
        let (code, _) = finish(child);
        assert_eq!(code, -libc::SIGKILL);
        let left = locks(&repo.repo);
        assert_eq!(left.len(), 1, "SIGKILL leaves the lock behind");

        let mut args = vec!["backup", src.to_str().unwrap()];
        if quiet {
            args.push("--quiet");
        }
        let (code, out, err) = repo.run(&args);
        assert_eq!(code, 0, "{out}\n{err}");
        let said = format!("removed a stale lock of pid {pid} (snap backup), which is gone");
        if quiet {
            assert!(!err.contains("stale lock"), "--quiet says nothing: {err}");
        } else {
            assert_eq!(err.matches(&said).count(), 1, "said once: {err}");
        }
        assert!(locks(&repo.repo).is_empty(), "the stale lock was removed");
    }
    assert_eq!(repo.snapshots().len(), 2);
}
