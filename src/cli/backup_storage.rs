//! `snap backup storage`: a snapshot of Supabase Storage buckets; and the connection options it
//! shares with `snap restore --storage`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use snap::ops::{BackupInput, BackupOptions, BackupOutcome, backup};
use snap::repo::lock::LockKind;
use snap::source::storage::{StorageOptions, StorageSource, StorageSummary, resolve_api_base};
use zeroize::Zeroizing;

use super::{Global, exit, output};

/// Where a Storage API is and the key that opens it.
#[derive(clap::Args, Clone)]
pub struct StorageConnArgs {
    /// Project URL (SUPABASE_URL, e.g. https://<ref>.supabase.co); /storage/v1 is appended.
    #[arg(long, conflicts_with = "storage_url")]
    pub url: Option<String>,
    /// Storage API base as is (self-hosted, or a storage server of its own serving at /).
    #[arg(long)]
    pub storage_url: Option<String>,
    /// Read the service_role key from this file (first line). Else: SUPABASE_SERVICE_ROLE_KEY,
    /// or a prompt on a terminal. The key is never printed.
    #[arg(long)]
    pub service_key_file: Option<PathBuf>,
    /// Storage buckets to include (repeatable; default: all).
    #[arg(long = "bucket")]
    pub buckets: Vec<String>,
    /// Transfers at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,
    /// Seconds to wait for a connection or for more data before retrying.
    #[arg(long, hide = true, default_value_t = 60)]
    pub storage_timeout: u64,
    /// How long to keep retrying a request while the Storage API is unreachable or failing
    /// (a restart, an outage) before giving up: `2m`, `90s`, or seconds.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_retry_for)]
    pub retry_for: std::time::Duration,
}

/// `--retry-for`: a duration (`2m`, `90s`, `1h`) or plain seconds, from 1 s to 24 h.
pub fn parse_retry_for(s: &str) -> Result<std::time::Duration, String> {
    let d = match s.trim().parse::<u64>() {
        Ok(secs) => std::time::Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(s.trim())
            .map_err(|e| format!("{s:?}: {e}; use e.g. 2m, 90s or 120"))?,
    };
    if d < std::time::Duration::from_secs(1) || d > std::time::Duration::from_secs(86_400) {
        return Err(format!("{s:?} is out of range: use 1s to 24h"));
    }
    Ok(d)
}

impl StorageConnArgs {
    pub fn given(&self) -> bool {
        self.url.is_some() || self.storage_url.is_some()
    }

    fn service_key(&self) -> anyhow::Result<Zeroizing<String>> {
        if let Some(f) = &self.service_key_file {
            let s = snap::secret::secret_from_file(f).context("reading the service key file")?;
            let key = Zeroizing::new(s.trim().to_string());
            if key.is_empty() {
                anyhow::bail!("service key file {} is empty", f.display());
            }
            return Ok(key);
        }
        if let Ok(k) = std::env::var("SUPABASE_SERVICE_ROLE_KEY")
            && !k.trim().is_empty()
        {
            snap::redact::remember(&k);
            return Ok(Zeroizing::new(k.trim().to_string()));
        }
        if std::io::stdin().is_terminal() {
            let k = Zeroizing::new(rpassword::prompt_password("Supabase service_role key: ")?);
            snap::redact::remember(&k);
            return Ok(Zeroizing::new(k.trim().to_string()));
        }
        usage!(
            "no service key: pass --service-key-file or set SUPABASE_SERVICE_ROLE_KEY (the project's service_role key)"
        )
    }

    /// Storage options (asks for the key when needed).
    pub fn options(&self) -> anyhow::Result<StorageOptions> {
        let api_base = resolve_api_base(self.url.as_deref(), self.storage_url.as_deref())?;
        Ok(StorageOptions {
            api_base,
            service_key: self.service_key()?,
            buckets: self.buckets.clone(),
            concurrency: self.concurrency as usize,
            timeout: std::time::Duration::from_secs(self.storage_timeout.max(1)),
            retry: snap::source::storage::client::RetryPolicy {
                patience: self.retry_for,
                ..Default::default()
            },
            ..Default::default()
        })
    }
}

pub fn run(
    g: &Global,
    a: &StorageConnArgs,
    opts: &BackupOptions,
    json: bool,
) -> anyhow::Result<u8> {
    if !a.given() {
        usage!("no Storage API given: pass --url https://<ref>.supabase.co or --storage-url");
    }
    let src = StorageSource::new(a.options()?)?;
    let (repo, _lock) = g.open_locked(LockKind::Shared, "backup storage")?;
    let out = backup(
        &repo,
        BackupInput::Source(Box::new(src)),
        opts,
        &super::progress::Bars::new(g.quiet || json),
    )?;
    let st: StorageSummary = out.source_summary.storage().cloned().unwrap_or_default();
    let rates = Rates::of(&out.snapshot.manifest.summary);
    let code = if st.failed > 0 {
        exit::INCOMPLETE
    } else {
        exit::OK
    };
    if json {
        print_json(&out, &rates)?;
        return Ok(code);
    }
    if !g.quiet {
        print_text(&out, &st, &rates);
    }
    warn_incomplete(&st);
    Ok(code)
}

/// How fast the backup read and how well it deduplicated.
struct Rates {
    secs: f64,
    mbps: f64,
    /// Bytes read per raw byte added (infinite: nothing new).
    dedup: f64,
}

impl Rates {
    /// The rates of a snapshot's summary.
    fn of(s: &snap::snapshot::Summary) -> Rates {
        let secs = s.duration_ms as f64 / 1000.0;
        let mbps = s.bytes_read as f64 / 1e6 / secs.max(0.001);
        let dedup = if s.added_raw_bytes > 0 {
            s.bytes_read as f64 / s.added_raw_bytes as f64
        } else {
            f64::INFINITY
        };
        Rates { secs, mbps, dedup }
    }
}

/// Print the snapshot, the Storage summary and the rates as JSON.
fn print_json(out: &BackupOutcome, r: &Rates) -> anyhow::Result<()> {
    let dedup = r.dedup.is_finite().then_some(r.dedup);
    let v = super::snapshots::backup_json(out, "storage", dedup, r.mbps)?;
    output::json(&v)?;
    Ok(())
}

/// Print the snapshot, its buckets, what was downloaded and the rates.
fn print_text(out: &BackupOutcome, st: &StorageSummary, r: &Rates) {
    let s = &out.snapshot.manifest.summary;
    tell!(
        "snapshot {} of Supabase Storage at {} ({} listing)",
        out.snapshot.id.short(),
        st.api_base,
        st.listing
    );
    tell!("  {:<32} {:>9} {:>12}", "bucket", "objects", "size");
    for b in &st.buckets {
        tell!(
            "  {:<32} {:>9} {:>12}",
            output::path(&b.bucket),
            b.objects,
            output::bytes(b.bytes)
        );
    }
    tell!(
        "  {} objects: {} downloaded ({}), {} unchanged since the parent snapshot (reused, not downloaded)",
        st.objects,
        st.downloaded,
        output::bytes(st.bytes_downloaded),
        st.reused
    );
    if st.retries > 0 {
        tell!(
            "  {} transient failures (timeouts, resets, 429/5xx) were retried",
            st.retries
        );
    }
    tell!(
        "  read {} in {:.1} s ({:.1} MB/s); added {} to the repository (dedup ratio {})",
        output::bytes(s.bytes_read),
        r.secs,
        r.mbps,
        output::bytes(s.added_bytes),
        if r.dedup.is_finite() {
            format!("{:.1}x", r.dedup)
        } else {
            "∞ (nothing new)".into()
        },
    );
}

/// Warn of the objects that vanished during the backup or could not be backed up.
fn warn_incomplete(st: &StorageSummary) {
    if st.vanished > 0 {
        say!(
            "warning: {} objects were deleted or changed during the backup and are not in the snapshot",
            st.vanished
        );
    }
    if st.failed > 0 {
        say!(
            "warning: {} objects could not be backed up; the snapshot is incomplete",
            st.failed
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_retry_for;
    use std::time::Duration;

    #[test]
    fn retry_for_takes_durations_and_seconds_in_range() {
        assert_eq!(parse_retry_for("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_retry_for("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_retry_for(" 45 "), Ok(Duration::from_secs(45)));
        assert!(parse_retry_for("0").unwrap_err().contains("out of range"));
        assert!(parse_retry_for("25h").unwrap_err().contains("out of range"));
        assert!(parse_retry_for("soon").unwrap_err().contains("2m"));
    }
}
