use anyhow::Context;
use snap::repo::{InitOptions, Repository};

use super::{Global, exit, output, password};

#[derive(clap::Args)]
pub struct Args {
    /// Target pack file size in MiB.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pack_size: u32,
    /// Default zstd level for new data (0 = no compression).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(0..=22))]
    compression: i32,
    /// Average chunk size in KiB (min = avg/4, max = avg*4).
    #[arg(long, hide = true)]
    chunk_avg_kib: Option<u32>,
    #[command(flatten)]
    kdf: password::KdfArgs,
    /// Share the master key (and chunking) of this existing repository, so `snap copy` between
    /// the two moves packs without re-encrypting. Its password: --copy-key-from-password-file,
    /// else the new repository's password.
    #[arg(long, value_name = "REPO")]
    copy_key_from: Option<String>,
    /// Password file (first line) of the --copy-key-from repository.
    #[arg(long, value_name = "FILE", requires = "copy_key_from")]
    copy_key_from_password_file: Option<std::path::PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    let backend = g.backend()?;
    if backend.exists("config")? {
        anyhow::bail!(snap::Error::AlreadyInitialized(backend.location()));
    }
    let mut opts = InitOptions {
        pack_size: a.pack_size << 20,
        compression: a.compression,
        ..Default::default()
    };
    if let Some(avg) = a.chunk_avg_kib {
        opts.chunker = snap::chunker::ChunkerParams::with_avg(avg * 1024);
    }
    opts.kdf = a.kdf.params();
    let pw = password::get(g, true)?;
    let config = match &a.copy_key_from {
        None => Repository::init(&*backend, pw.as_bytes(), &opts)?,
        Some(other) => {
            let mut og = g.clone();
            og.repo = Some(other.clone());
            let other_pw = match &a.copy_key_from_password_file {
                Some(f) => {
                    og.password_file = Some(f.clone());
                    og.password_command = None;
                    password::get(&og, false)?
                }
                None => pw.clone(),
            };
            let other_backend = og.backend()?;
            let other_repo = Repository::open(other_backend, other_pw.as_bytes(), &g.cache_dir())
                .with_context(|| format!("opening {other} (--copy-key-from)"))?;
            Repository::init_sharing_key(&*backend, &other_repo, pw.as_bytes(), &opts)?
        }
    };
    if a.json {
        output::json(&config)?;
    } else {
        tell!(
            "created repository {} at {}",
            &config.id[..8],
            backend.location()
        );
        tell!("Keep the password safe: without it the data cannot be read by anyone.");
    }
    Ok(exit::OK)
}
