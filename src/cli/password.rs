//! Where the repository password comes from: --password-file / SNAP_PASSWORD_FILE,
//! --password-command / SNAP_PASSWORD_COMMAND, SNAP_PASSWORD, else a prompt on the terminal.
//! Passwords live in zeroizing buffers and are never printed.

use std::io::IsTerminal;

use anyhow::{Context, bail};
use zeroize::Zeroizing;

use super::Global;

/// The password; `confirm` asks twice when prompting (for new passwords).
pub fn get(g: &Global, confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    let pw = if let Some(f) = &g.password_file {
        snap::secret::secret_from_file(f).context("reading the password file")?
    } else if let Some(cmd) = &g.password_command {
        snap::secret::secret_from_command(cmd).context("running the password command")?
    } else if let Ok(p) = std::env::var("SNAP_PASSWORD") {
        Zeroizing::new(p)
    } else {
        prompt(confirm)?
    };
    if pw.is_empty() {
        bail!("the password is empty");
    }
    snap::redact::remember(&pw);
    Ok(pw)
}

fn prompt(confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() && std::fs::File::open("/dev/tty").is_err() {
        bail!(
            "no password given: set SNAP_PASSWORD_FILE, SNAP_PASSWORD_COMMAND or SNAP_PASSWORD (no terminal to ask on)"
        );
    }
    let p = Zeroizing::new(
        rpassword::prompt_password("repository password: ").context("reading the password")?,
    );
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("repeat password: ").context("reading the password")?,
        );
        if *again != *p {
            bail!("the passwords do not match");
        }
    }
    Ok(p)
}

/// A NEW password (for `key add` / `key passwd`): from `file` (first line), else
/// `SNAP_NEW_PASSWORD`, else asked twice on the terminal. Never printed.
pub fn get_new(file: Option<&std::path::Path>) -> anyhow::Result<Zeroizing<String>> {
    let pw = if let Some(f) = file {
        snap::secret::secret_from_file(f).context("reading the new password file")?
    } else if let Ok(p) = std::env::var("SNAP_NEW_PASSWORD") {
        Zeroizing::new(p)
    } else {
        if !std::io::stdin().is_terminal() && std::fs::File::open("/dev/tty").is_err() {
            bail!(
                "no new password given: pass --new-password-file or set SNAP_NEW_PASSWORD (no terminal to ask on)"
            );
        }
        let p = Zeroizing::new(
            rpassword::prompt_password("new password: ").context("reading the new password")?,
        );
        let again = Zeroizing::new(
            rpassword::prompt_password("repeat new password: ")
                .context("reading the new password")?,
        );
        if *again != *p {
            bail!("the new passwords do not match");
        }
        p
    };
    if pw.is_empty() {
        bail!("the new password is empty");
    }
    snap::redact::remember(&pw);
    Ok(pw)
}

/// Hidden argon2id cost flags for commands that create key files (tests use cheap values).
#[derive(clap::Args, Clone, Copy)]
pub struct KdfArgs {
    /// argon2id memory in KiB (default 65536).
    #[arg(long, hide = true)]
    kdf_memory_kib: Option<u32>,
    /// argon2id iterations (default 3).
    #[arg(long, hide = true)]
    kdf_iterations: Option<u32>,
}

impl KdfArgs {
    pub fn params(&self) -> snap::crypto::keyfile::KdfParams {
        let d = snap::crypto::keyfile::KdfParams::default();
        snap::crypto::keyfile::KdfParams {
            m_cost: self.kdf_memory_kib.unwrap_or(d.m_cost),
            t_cost: self.kdf_iterations.unwrap_or(d.t_cost),
            p_cost: d.p_cost,
        }
    }
}
