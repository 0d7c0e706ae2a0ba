//! The one [`snap::progress::Progress`] of the CLI: an indicatif bar on stderr when it is a
//! terminal (bytes, rate, ETA when the total is known, the current item), nothing otherwise or
//! with --quiet. Warnings are printed either way unless quiet, above the bar.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bars {
    /// Draw bars (stderr is a terminal and not --quiet).
    on: bool,
    /// Print warnings.
    warnings: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// Bars on a terminal unless `quiet`; warnings unless `quiet`.
    pub fn new(quiet: bool) -> Bars {
        Bars {
            on: !quiet && std::io::stderr().is_terminal(),
            warnings: !quiet,
            bar: Mutex::new(None),
        }
    }

    /// Bars on a terminal unless `quiet`, but no warnings (the command reports them itself).
    pub fn bars_only(quiet: bool) -> Bars {
        Bars {
            on: !quiet && std::io::stderr().is_terminal(),
            warnings: false,
            bar: Mutex::new(None),
        }
    }

    /// No bars (a long-lived command such as `mount`), warnings unless `quiet`.
    pub fn warnings_only(quiet: bool) -> Bars {
        Bars {
            on: false,
            warnings: !quiet,
            bar: Mutex::new(None),
        }
    }

    fn style(total: Option<u64>) -> ProgressStyle {
        let t = match total {
            Some(_) => {
                "{prefix:>9} [{bar:20}] {bytes}/{total_bytes} {bytes_per_sec} {eta:>3} {wide_msg}"
            }
            None => "{prefix:>9} {spinner} {bytes} {bytes_per_sec} {elapsed:>3} {wide_msg}",
        };
        ProgressStyle::with_template(t)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }
}

impl snap::progress::Progress for Bars {
    fn start(&self, phase: &str, total_bytes: Option<u64>) {
        if !self.on {
            return;
        }
        let bar = match total_bytes {
            Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        };
        bar.set_style(Self::style(total_bytes));
        bar.set_prefix(phase.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Some(old) = self.bar.lock().unwrap().replace(bar) {
            old.finish_and_clear();
        }
    }

    fn item(&self, path: &str) {
        if let Some(b) = &*self.bar.lock().unwrap() {
            b.set_message(super::output::path(path).into_owned());
        }
    }

    fn bytes(&self, n: u64) {
        if let Some(b) = &*self.bar.lock().unwrap() {
            b.inc(n);
        }
    }

    fn warn(&self, message: &str) {
        if !self.warnings {
            return;
        }
        match &*self.bar.lock().unwrap() {
            Some(b) => b.suspend(|| say!("warning: {message}")),
            None => say!("warning: {message}"),
        }
    }

    fn finish(&self) {
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
