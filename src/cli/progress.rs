//! The one [`snap::progress::Progress`] of the CLI. On a terminal: an indicatif bar on stderr
//! (bytes, and with a known total its percentage and ETA; the current item). Without a terminal:
//! a plain line on stderr every 10 s (`SNAP_PROGRESS_INTERVAL` seconds), none for an operation
//! that ends sooner, so logs (journald, CI) show progress without control characters. Nothing
//! with --quiet. Warnings are printed either way unless quiet, above the bar; with --verbose a
//! backup's new and changed files too (`+ path`, `M path`).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output;

pub struct Bars {
    /// Draw bars (stderr is a terminal and not --quiet).
    on: bool,
    /// Print a progress line now and then (stderr is no terminal and not --quiet).
    lines: bool,
    /// Print warnings.
    warnings: bool,
    /// List new and changed files.
    verbose: bool,
    /// Time between two progress lines.
    interval: Duration,
    bar: Mutex<Option<ProgressBar>>,
    state: Mutex<State>,
}

/// Where the current phase is, for progress lines and the bar's total.
#[derive(Default)]
struct State {
    phase: String,
    started: Option<Instant>,
    last_line: Option<Instant>,
    done: u64,
    total: Option<u64>,
    /// The total is an estimate (shown as `~`).
    estimate: bool,
}

impl State {
    /// The total to show: none once an estimate is exceeded (never more than 100 %).
    fn shown_total(&self) -> Option<u64> {
        self.total.filter(|t| *t > 0 && self.done <= *t)
    }

    /// `backup: 1.20 GiB of 3.40 GiB (35 %), 110.00 MiB/s, ETA 20s`.
    fn line(&self) -> String {
        let ms = self
            .started
            .map_or(0, |s| s.elapsed().as_millis() as u64)
            .max(1);
        let mut l = format!("{}: {}", self.phase, output::bytes(self.done));
        if let Some(t) = self.shown_total() {
            let tilde = if self.estimate { "~" } else { "" };
            let pct = self.done * 100 / t;
            l.push_str(&format!(" of {tilde}{} ({pct} %)", output::bytes(t)));
        }
        l.push_str(&format!(", {}", output::rate(self.done, ms)));
        if let Some(t) = self.shown_total() {
            let per_ms = self.done as f64 / ms as f64;
            if per_ms > 0.0 {
                let left = ((t - self.done) as f64 / per_ms / 1000.0).ceil() as u64;
                l.push_str(&format!(", ETA {}", humantime::format_duration(secs(left))));
            }
        }
        l
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The time between two progress lines without a terminal (`SNAP_PROGRESS_INTERVAL`, seconds).
fn line_interval() -> Duration {
    std::env::var("SNAP_PROGRESS_INTERVAL")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::from_secs(10), Duration::from_secs_f64)
}

impl Bars {
    fn make(quiet: bool, warnings: bool, progress: bool) -> Bars {
        let tty = std::io::stderr().is_terminal();
        Bars {
            on: progress && !quiet && tty,
            lines: progress && !quiet && !tty,
            warnings: warnings && !quiet,
            verbose: false,
            interval: line_interval(),
            bar: Mutex::new(None),
            state: Mutex::new(State::default()),
        }
    }

    /// Progress unless `quiet`; warnings unless `quiet`.
    pub fn new(quiet: bool) -> Bars {
        Bars::make(quiet, true, true)
    }

    /// Progress unless `quiet`, but no warnings (the command reports them itself).
    pub fn bars_only(quiet: bool) -> Bars {
        Bars::make(quiet, false, true)
    }

    /// No progress (a long-lived command such as `mount`), warnings unless `quiet`.
    pub fn warnings_only(quiet: bool) -> Bars {
        Bars::make(quiet, true, false)
    }

    /// Also list a backup's new and changed files (`+ path`, `M path`) unless quiet.
    pub fn verbose(mut self, verbose: bool, quiet: bool) -> Bars {
        self.verbose = verbose && !quiet;
        self
    }

    fn style(total: Option<u64>, estimate: bool) -> ProgressStyle {
        let t = match (total, estimate) {
            (Some(_), false) => {
                "{prefix:>9} [{bar:12}] {percent:>3}% {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {wide_msg}"
            }
            (Some(_), true) => {
                "{prefix:>9} [{bar:12}] {percent:>3}% {bytes}/~{total_bytes} {bytes_per_sec} ETA ~{eta} {wide_msg}"
            }
            (None, _) => "{prefix:>9} {spinner} {bytes} {bytes_per_sec} {elapsed:>3} {wide_msg}",
        };
        ProgressStyle::with_template(t)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }

    /// Bring the bar's length and style in line with the state.
    fn update_bar(&self, st: &State, style_changed: bool) {
        if let Some(b) = &*self.bar.lock().unwrap() {
            match st.shown_total() {
                Some(t) => b.set_length(t),
                None => b.unset_length(),
            }
            if style_changed {
                b.set_style(Self::style(st.shown_total(), st.estimate));
            }
        }
    }

    /// Print a progress line when one is due (no terminal).
    fn maybe_line(&self, st: &mut State) {
        let (Some(started), true) = (st.started, self.lines) else {
            return;
        };
        let since = st.last_line.unwrap_or(started);
        if since.elapsed() >= self.interval {
            st.last_line = Some(Instant::now());
            say!("{}", st.line());
        }
    }
}

impl snap::progress::Progress for Bars {
    fn start(&self, phase: &str, total_bytes: Option<u64>) {
        *self.state.lock().unwrap() = State {
            phase: phase.to_string(),
            started: Some(Instant::now()),
            total: total_bytes,
            ..State::default()
        };
        if !self.on {
            return;
        }
        let bar = ProgressBar::with_draw_target(total_bytes, ProgressDrawTarget::stderr());
        bar.set_style(Self::style(total_bytes, false));
        bar.set_prefix(phase.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Some(old) = self.bar.lock().unwrap().replace(bar) {
            old.finish_and_clear();
        }
    }

    fn expect(&self, n: u64, estimate: bool) {
        let mut st = self.state.lock().unwrap();
        let had = st.shown_total().is_some();
        st.total = Some(st.total.unwrap_or(0) + n);
        let changed = estimate != st.estimate || had != st.shown_total().is_some();
        st.estimate |= estimate;
        self.update_bar(&st, changed);
    }

    fn item(&self, path: &str) {
        if let Some(b) = &*self.bar.lock().unwrap() {
            b.set_message(output::path(path).into_owned());
        }
    }

    fn changed(&self, path: &str, new: bool) {
        if self.verbose {
            let mark = if new { '+' } else { 'M' };
            self.suspend(|| say!("{mark} {}", output::path(path)));
        }
    }

    fn bytes(&self, n: u64) {
        let mut st = self.state.lock().unwrap();
        let had = st.shown_total().is_some();
        st.done += n;
        if had && st.shown_total().is_none() {
            // An estimate was exceeded: from now on bytes and rate only.
            self.update_bar(&st, true);
        }
        if let Some(b) = &*self.bar.lock().unwrap() {
            b.inc(n);
        }
        self.maybe_line(&mut st);
    }

    fn warn(&self, message: &str) {
        if self.warnings {
            self.suspend(|| say!("warning: {message}"));
        }
    }

    fn finish(&self) {
        self.state.lock().unwrap().started = None;
        if let Some(b) = self.bar.lock().unwrap().take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Some(b) = self.bar.get_mut().unwrap().take() {
            b.finish_and_clear();
        }
    }
}

impl Bars {
    /// Run `f` (which prints to stderr) with the bar hidden, then redraw it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &*self.bar.lock().unwrap() {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::State;

    #[test]
    fn lines_clamp_an_exceeded_estimate() {
        let mut st = State {
            phase: "backup".into(),
            started: Some(std::time::Instant::now() - std::time::Duration::from_secs(2)),
            done: 1 << 20,
            total: Some(4 << 20),
            estimate: true,
            ..State::default()
        };
        let l = st.line();
        assert!(
            l.starts_with("backup: 1.00 MiB of ~4.00 MiB (25 %), ") && l.contains("ETA"),
            "{l}"
        );
        st.done = 5 << 20;
        let l = st.line();
        assert!(
            !l.contains('%') && !l.contains("ETA") && !l.contains(" of "),
            "{l}"
        );
    }
}
