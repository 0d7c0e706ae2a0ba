//! Ctrl-C (SIGINT) and SIGTERM: say so, clear the progress line, remove every lock this process
//! holds, exit 130 / 143. The repository itself is crash-safe: what an interrupted command wrote
//! is unreferenced and `snap prune` removes it.
//!
//! The signals are blocked in every thread (the mask is set before any thread starts, and
//! inherited); one thread takes them with sigwait, so the cleanup runs in ordinary code, not in
//! a signal handler. Child processes start with an empty mask (std::process resets it).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use super::exit;

/// Set when a stop signal arrived: the main thread must not exit on its own any more.
static STOPPING: AtomicBool = AtomicBool::new(false);

fn stop_signals() -> libc::sigset_t {
    // SAFETY: plain sigset manipulation on a zeroed local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

/// Handle SIGINT and SIGTERM from now on. Call first thing in main(), before any thread starts;
/// `json`: the interrupt is reported as a JSON error (the command was given `--json`).
pub fn install(json: bool) {
    let set = stop_signals();
    // SAFETY: pthread_sigmask on this thread with a valid set.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    let spawned = std::thread::Builder::new()
        .name("snap-signals".into())
        .spawn(move || watch(set, json));
    if spawned.is_err() {
        // No thread, no handling: let the signals act as before (terminate).
        // SAFETY: as above.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    }
}

fn wait(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: sigwait on a valid set of signals blocked in every thread (it cannot fail then).
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

/// The exit code for stop signal `sig`: 128 + its number, as a shell reports a death by it.
fn code_of(sig: i32) -> u8 {
    if sig == libc::SIGTERM {
        exit::TERMINATED
    } else {
        exit::INTERRUPTED
    }
}

fn watch(set: libc::sigset_t, json: bool) {
    let sig = wait(&set);
    STOPPING.store(true, Ordering::SeqCst);
    let code = code_of(sig);
    std::thread::spawn(move || {
        clean_up(sig, code, json);
        std::process::exit(code.into())
    });
    // A second signal while cleaning up: exit at once.
    let _ = wait(&set);
    clear_progress_line();
    // SAFETY: _exit ends the process without running anything else.
    unsafe { libc::_exit(code.into()) }
}

fn clean_up(sig: i32, code: u8, json: bool) {
    let name = if sig == libc::SIGTERM {
        "SIGTERM"
    } else {
        "SIGINT"
    };
    clear_progress_line();
    let message = format!("interrupted ({name}), cleaning up");
    if json {
        super::print_json_error(&message, code, "interrupted");
    } else {
        say!("{message}");
    }
    undo_process_state();
    // A progress bar may have drawn itself again meanwhile.
    clear_progress_line();
}

/// What a process ending early (a signal, a closed stdout) must not leave behind: every lock it
/// holds is removed, a throwaway PostgreSQL (restore --verify) stopped and deleted.
pub fn undo_process_state() {
    snap::repo::lock::release_held();
    snap::source::postgres::cluster::stop_all();
}

/// Erase the current line of a terminal's stderr (where the progress bar is).
fn clear_progress_line() {
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = err.write_all(b"\r\x1b[2K");
        let _ = err.flush();
    }
}

/// After the command returned: when a stop signal is being handled, wait for its cleanup to
/// end the process (with its exit code) instead of exiting first.
pub fn wait_if_stopping() {
    while STOPPING.load(Ordering::SeqCst) {
        std::thread::park_timeout(std::time::Duration::from_secs(1));
    }
}
