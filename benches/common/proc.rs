//! Running a child process and measuring it alone (wall time, CPU, peak RSS via `wait4`).

use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Outcome {
    pub wall: Duration,
    pub cpu: Duration,
    pub maxrss_kib: u64,
    pub stdout: String,
}

/// Run `cmd` (stdin from `input` through a pipe, if given) and collect its resource usage with
/// `wait4`, which reports this child alone. Panics with its output if it fails.
pub fn run(mut cmd: Command, input: Option<&Path>) -> Outcome {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    // Reaped below by wait4, which also yields this child's own rusage.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let feeder = input.map(|p| {
        let mut f = fs::File::open(p).expect("open input");
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            // A child that fails early closes the pipe; its exit status tells why.
            let _ = io::copy(&mut f, &mut stdin);
        })
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    // Peak RSS: the child's own VmHWM, sampled until it exits. (`ru_maxrss` from wait4 would
    // include the parent's resident memory, which a vfork/posix_spawn child shares until exec.)
    let hwm = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let hwm = hwm.clone();
        std::thread::spawn(move || {
            let path = format!("/proc/{pid}/status");
            let me = std::env::current_exe().ok();
            while let Ok(s) = fs::read_to_string(&path) {
                // Until exec the child still shares this process's memory: skip those samples.
                if fs::read_link(format!("/proc/{pid}/exe")).ok() == me {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                let Some(kib) = s
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                else {
                    break; // exited (zombie): no memory figures any more
                };
                hwm.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted, "wait4: {e}");
    }
    let wall = started.elapsed();
    sampler.join().unwrap();
    if let Some(t) = feeder {
        t.join().unwrap();
    }
    let stdout = out_t.join().unwrap();
    let stderr = err_t.join().unwrap();
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !ok {
        panic!("{cmd:?} failed (wait status {status}):\nstdout:\n{stdout}\nstderr:\n{stderr}");
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Outcome {
        wall,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        maxrss_kib: hwm.load(std::sync::atomic::Ordering::Relaxed),
        stdout,
    }
}
