//! `snap run --config F`: the nightly job ([`snap::nightly`]). Log lines (logfmt) go to
//! stderr — journald keeps them under systemd —, the summary to stdout (a table, or --json).

use std::io::Write;
use std::path::PathBuf;

use snap::nightly::{self, Event, Events, Level, NightlyOptions, NightlyReport, Status};

use super::progress::Bars;
use super::{Global, exit, output};

const AFTER_HELP: &str = "\
For each project of the configuration file: backup (one snapshot, tagged project=<name>), then
forget (the [retention] policy, default keep-within 21d, applied to that project's snapshots);
then, once for the repository, prune, check (--read-data-subset from [check]) and, with an
[offsite] table, copy to the off-site repository. The
repository, its password and the cache directory come from the file: --repo, --password-file,
--password-command and --cache-dir do not apply.

A failed backup does not stop the other projects. forget still runs for a project whose backup
failed (retention counts back from the newest snapshot, so nothing more is removed than the
night before); prune runs only if a forget ran and no step reported repository damage; check
always runs; copy runs unless a step reported damage. See docs/nightly.md.

Log lines (stderr): ts=… level=info|warn|error project=… step=backup|forget|prune|check|copy msg=… and
figures (bytes_read=…, bytes_added=…). Exit status: 0 when every step succeeded, 1 when any step
failed, 2 when the configuration file is invalid.";

#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// The configuration file (`snap config init` prints a template).
    #[arg(long, short = 'c', env = "SNAP_CONFIG")]
    config: PathBuf,
    /// Only this project (repeatable; default: all). Prune and check still cover the repository.
    #[arg(long = "project", value_name = "NAME")]
    projects: Vec<String>,
    /// Print the summary as JSON (the same document the health ping sends).
    #[arg(long)]
    json: bool,
    /// Do not ping the [healthcheck] URL.
    #[arg(long)]
    no_ping: bool,
    /// Record this snapshot time (RFC 3339) instead of now: for tests of retention.
    #[arg(long, hide = true, value_parser = chrono::DateTime::parse_from_rfc3339)]
    time: Option<chrono::DateTime<chrono::FixedOffset>>,
}

pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    let cfg = match snap::config::Config::load(&a.config) {
        Ok(c) => c,
        Err(e) => usage!("{e}"),
    };
    if let Some(Err(e)) = a
        .projects
        .iter()
        .map(|n| cfg.project(n))
        .find(Result::is_err)
    {
        usage!("{e}");
    }
    let bars = Bars::bars_only(g.quiet);
    let log = LogLines {
        quiet: g.quiet,
        bars: &bars,
    };
    let opts = NightlyOptions {
        projects: a.projects.clone(),
        time: a.time,
    };
    let report = nightly::run(&cfg, &opts, &log, &bars);
    if let Some(hc) = cfg.healthcheck.as_ref().filter(|_| !a.no_ping) {
        let kind = if report.ok { "success" } else { "failure" };
        match nightly::ping(hc, &report) {
            Ok(()) => log.event(&Event {
                level: Level::Info,
                project: None,
                step: "ping",
                msg: &format!("{kind} ping sent"),
                fields: &[],
            }),
            Err(e) => log.event(&Event {
                level: Level::Warn,
                project: None,
                step: "ping",
                msg: &e.to_string(),
                fields: &[],
            }),
        }
    }
    if a.json {
        output::json(&report)?;
    } else if !g.quiet {
        print_table(&report);
    }
    Ok(if report.ok { exit::OK } else { exit::FAILED })
}

/// Events as logfmt lines on stderr: `ts=… level=… project=… step=… msg="…" key=value…`.
struct LogLines<'a> {
    quiet: bool,
    bars: &'a Bars,
}

impl Events for LogLines<'_> {
    fn event(&self, e: &Event<'_>) {
        if self.quiet && e.level == Level::Info {
            return;
        }
        let line = logfmt(e, chrono::Utc::now());
        self.bars.suspend(|| {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        });
    }
}

fn logfmt(e: &Event<'_>, ts: chrono::DateTime<chrono::Utc>) -> String {
    let mut s = format!(
        "ts={} level={}",
        ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        e.level.as_str()
    );
    if let Some(p) = e.project {
        s.push_str(&format!(" project={}", value(p)));
    }
    s.push_str(&format!(" step={} msg={}", value(e.step), value(e.msg)));
    for (k, v) in e.fields {
        s.push_str(&format!(" {k}={}", value(v)));
    }
    s
}

/// A logfmt value: bare when it is one simple word, else quoted with `"` `\` and control
/// characters escaped, so one event is always one line.
fn value(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '=' | '\\'))
    {
        return v.to_string();
    }
    let mut q = String::with_capacity(v.len() + 2);
    q.push('"');
    for c in v.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c if c.is_control() => q.push_str(&c.escape_default().to_string()),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn print_table(r: &NightlyReport) {
    tell!(
        "{:<16} {:<7} {:<8} {:>9}  details",
        "project",
        "step",
        "status",
        "time"
    );
    for s in &r.steps {
        let status = match s.status {
            Status::Ok => "ok",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        };
        let mut details = Vec::new();
        if let Some(b) = &s.backup {
            details.push(format!(
                "snapshot {}: {}",
                b.short_id,
                output::backup_line(b)
            ));
        }
        if let Some(f) = &s.forget {
            details.push(format!(
                "kept {}, removed {} ({})",
                f.kept, f.removed, f.policy
            ));
        }
        if let Some(p) = &s.prune {
            details.push(format!(
                "deleted {} packs ({}), condemned {}, repacked {} ({} chunks)",
                p.packs_deleted,
                output::bytes(p.bytes_deleted),
                p.packs_condemned,
                output::bytes(p.bytes_repacked),
                p.chunks_repacked
            ));
        }
        if let Some(c) = &s.check {
            details.push(format!(
                "{} snapshots, {} packs; read data {}: {} packs, {}; {} problems",
                c.snapshots,
                c.packs,
                c.read_data,
                c.packs_read,
                output::bytes(c.bytes_read),
                c.problems
            ));
        }
        if let Some(c) = &s.copy {
            details.push(format!(
                "to {}: {} copied ({} already there), {} sent ({}/s)",
                c.destination,
                output::count(c.snapshots_copied as u64, "snapshot"),
                c.snapshots_present,
                output::bytes(c.bytes_sent),
                output::bytes((c.mb_per_s * 1e6) as u64)
            ));
        }
        if let Some(m) = &s.message {
            details.push(m.clone());
        }
        tell!(
            "{:<16} {:<7} {:<8} {:>7.1} s  {}",
            s.project.as_deref().map(output::path).unwrap_or("-".into()),
            s.step.as_str(),
            status,
            s.duration_ms as f64 / 1000.0,
            details.join("; ")
        );
        for row in s.backup.iter().flat_map(output::source_rows) {
            tell!("{:<16} {:<7} {:<8} {:>9}    {row}", "", "", "", "");
        }
    }
    let failed = r.failed_steps().count();
    if failed == 0 {
        tell!(
            "nightly run succeeded in {:.1} s",
            r.duration_ms as f64 / 1000.0
        );
    } else {
        tell!(
            "nightly run FAILED: {failed} step{} failed ({:.1} s)",
            if failed == 1 { "" } else { "s" },
            r.duration_ms as f64 / 1000.0
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn logfmt_lines() {
        let fields = [
            ("bytes_read", "12".to_string()),
            ("policy", "keep-within 21d".to_string()),
        ];
        let e = super::Event {
            level: super::Level::Info,
            project: Some("prod"),
            step: "backup",
            msg: "done\nnext \"x\"",
            fields: &fields,
        };
        let ts = chrono::DateTime::parse_from_rfc3339("2026-11-21T03:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            super::logfmt(&e, ts),
            r#"ts=2026-11-21T03:00:00.000Z level=info project=prod step=backup msg="done\nnext \"x\"" bytes_read=12 policy="keep-within 21d""#
        );
    }
}
