use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use snap::ops::mount::{self, MountOptions, SnapFs};

use super::{Global, exit};

#[derive(clap::Args)]
pub struct Args {
    /// An existing, empty directory to mount the repository on.
    mountpoint: PathBuf,
    /// Memory for decoded chunks, in MiB.
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    cache_mib: u64,
    /// Read the snapshot list again when a listing is older than this (new backups appear).
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    refresh_secs: u64,
}

/// Block the stop signals in this thread and every thread it starts; [`wait_for_stop`] takes
/// them synchronously, so Ctrl-C unmounts instead of killing the process mid-request.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: plain sigset manipulation on a zeroed local set; pthread_sigmask on this thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_stop(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: sigwait on a valid set of blocked signals.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    // Before asking for a password: is there anything to mount on?
    mount::check_mountpoint(&a.mountpoint)?;
    mount::check_fuse_available()?;
    // A private copy of the index: the shared one stays free for backups while mounted.
    let private_cache = tempfile::Builder::new()
        .prefix("snap-mount-")
        .tempdir()
        .context("creating a temporary index directory")?;
    let repo = g.open_repository(private_cache.path())?;
    mount::copy_shared_index(&repo, &g.cache_dir())?;
    let signals = block_stop_signals();
    let opts = MountOptions {
        cache_bytes: a.cache_mib << 20,
        refresh: std::time::Duration::from_secs(a.refresh_secs),
        ..Default::default()
    };
    let fs = SnapFs::new(
        Arc::new(repo),
        opts,
        Arc::new(super::progress::Bars::warnings_only(g.quiet)),
    )?;
    let mut session = mount::mount(fs, &a.mountpoint)?;
    let mut unmounter = session.unmounter();
    let point = a.mountpoint.clone();
    std::thread::spawn(move || {
        wait_for_stop(&signals);
        let Err(e) = unmounter.unmount() else { return };
        say!(
            "error: cannot unmount: {e}. Close the files and shells using it; press Ctrl-C again to detach it now (it goes away when the last of them closes)"
        );
        loop {
            wait_for_stop(&signals);
            match mount::unmount_lazy(&point) {
                Ok(()) => {
                    say!(
                        "detached {}; snap exits when the last file or shell inside it closes",
                        point.display()
                    );
                    break;
                }
                Err(e) => say!("error: {e}"),
            }
        }
    });
    if !g.quiet {
        tell!("mounted at {}, Ctrl-C to unmount", a.mountpoint.display());
    }
    session.run().context("serving the mount")?;
    if !g.quiet {
        tell!("unmounted {}", a.mountpoint.display());
    }
    Ok(exit::OK)
}
