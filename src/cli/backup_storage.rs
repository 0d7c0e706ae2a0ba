//! `snap backup storage`: a snapshot of Supabase Storage buckets; and the connection options it
//! shares with `snap restore --storage`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use snap::ops::summary::BackupFigures;
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
        })
    }
}

pub fn run(
    g: &Global,
    a: &StorageConnArgs,
    opts: &BackupOptions,
    how: super::backup::How,
) -> anyhow::Result<u8> {
    let json = how.json;
    if !a.given() {
        usage!("no Storage API given: pass --url https://<ref>.supabase.co or --storage-url");
    }
    let src = StorageSource::new(a.options()?)?;
    let (repo, _lock) = g.open_locked(LockKind::Shared, "backup storage")?;
    let input = BackupInput::Source(Box::new(src));
    let progress = super::progress::Bars::new(g.quiet || json).verbose(g.verbose, g.quiet);
    if how.dry_run {
        let out = snap::ops::backup::dry_run(&repo, input, opts, &progress)?;
        return super::backup::report_dry_run(g, &out, json);
    }
    let out = backup(&repo, input, opts, &progress)?;
    let st: StorageSummary = out.source_summary.storage().cloned().unwrap_or_default();
    let figures = BackupFigures::of(&out);
    let code = if st.failed > 0 {
        exit::INCOMPLETE
    } else {
        exit::OK
    };
    if json {
        print_json(&out, &figures)?;
        return Ok(code);
    }
    if !g.quiet {
        print_text(&out, &st, &figures);
    }
    warn_incomplete(&st);
    Ok(code)
}

/// Print the snapshot, the Storage summary and the rates as JSON.
fn print_json(out: &BackupOutcome, f: &BackupFigures) -> anyhow::Result<()> {
    let v = super::snapshots::backup_json(out, "storage", f.dedup_ratio, f.mb_per_s)?;
    output::json(&v)?;
    Ok(())
}

/// Print the snapshot, its buckets, what was downloaded and the rates.
fn print_text(out: &BackupOutcome, st: &StorageSummary, f: &BackupFigures) {
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
        "  {}: {} downloaded ({}), {} unchanged since the parent snapshot (reused, not downloaded)",
        output::count(st.objects, "object"),
        st.downloaded,
        output::bytes(st.bytes_downloaded),
        st.reused
    );
    if st.retries > 0 {
        tell!(
            "  {} (timeouts, resets, 429/5xx) retried",
            output::count(st.retries, "transient failure"),
        );
    }
    tell!("  {}", output::backup_line(f));
}

/// Warn of the objects that vanished during the backup or could not be backed up.
fn warn_incomplete(st: &StorageSummary) {
    if st.vanished > 0 {
        say!(
            "warning: {} deleted or changed during the backup and not in the snapshot",
            output::count(st.vanished, "object"),
        );
    }
    if st.failed > 0 {
        say!(
            "warning: {} could not be backed up; the snapshot is incomplete",
            output::count(st.failed, "object"),
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
