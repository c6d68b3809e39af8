//! Progress on stderr while pwsh runs: "mailbox i of N" with the rate and the time left when the
//! total is known (the script's `start` record, or the queue after a parallel run's listing),
//! else a spinner with the count. Only when stderr is a terminal; otherwise
//! nothing at all, so logs and pipes see only pwsh's own output and the report.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::Duration;

pub(crate) struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A spinner on stderr if stderr is a terminal, else nothing.
    pub(crate) fn on_stderr() -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(spinner_style());
        bar.set_message("starting pwsh");
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar: Some(bar) }
    }

    /// The script announced how many mailboxes it will visit, or the parallel run's listing
    /// counted them.
    pub(crate) fn expect(&self, total: Option<u64>) {
        let Some(bar) = &self.bar else { return };
        match total {
            Some(total) => {
                bar.set_length(total);
                // Rate and ETA from here on: signing in and listing are not mailbox work.
                bar.reset_elapsed();
                bar.reset_eta();
                bar.set_style(counted_style());
            }
            None => bar.set_message("running"),
        }
    }

    pub(crate) fn mailbox(&self, mailbox: &str) {
        let Some(bar) = &self.bar else { return };
        bar.inc(1);
        if bar.length().is_none() {
            let n = bar.position();
            bar.set_message(format!("{n} mailbox{}", if n == 1 { "" } else { "es" }));
        } else {
            bar.set_message(mailbox.to_string());
        }
    }

    /// A step or item of a script without mailboxes.
    pub(crate) fn note(&self, what: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(what.to_string());
        }
    }

    /// The bar itself, for the Ctrl-C handler's message.
    pub(crate) fn bar(&self) -> Option<ProgressBar> {
        self.bar.clone()
    }

    /// Takes the bar off the screen until `resume`: a prompt is waiting on the current line.
    pub(crate) fn pause(&self) {
        if let Some(bar) = &self.bar
            && !bar.is_hidden()
        {
            // (Not inside `suspend`: that holds the lock `set_draw_target` takes.) The bar is one
            // line and the cursor stays on it, so clearing the line takes it off the screen.
            bar.set_draw_target(ProgressDrawTarget::hidden());
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(b"\r\x1b[2K").and_then(|()| stderr.flush());
        }
    }

    pub(crate) fn resume(&self) {
        if let Some(bar) = &self.bar
            && bar.is_hidden()
        {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    /// Runs `f` (which writes to stderr) with the bar out of the way.
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Mailboxes done of the total, mailboxes a second, and the time left at that rate.
const COUNTED: &str = "{spinner} [{bar:30}] mailbox {pos} of {len}  {per_sec} ETA {eta}  {msg}";

fn counted_style() -> ProgressStyle {
    ProgressStyle::with_template(COUNTED)
        .expect("a valid template")
        .progress_chars("=> ")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg}").expect("a valid template")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counted_bar_shows_rate_and_eta() {
        // Built here, so a template indicatif rejects fails a test, not a run.
        let _ = counted_style();
        assert!(COUNTED.contains("{per_sec}") && COUNTED.contains("{eta}"));
        // A bar with a known total estimates what is left from the rate.
        let bar = ProgressBar::hidden();
        bar.set_length(100);
        bar.set_style(counted_style());
        bar.reset_elapsed();
        std::thread::sleep(Duration::from_millis(50));
        bar.inc(10);
        std::thread::sleep(Duration::from_millis(50));
        bar.inc(10);
        assert!(bar.per_sec() > 0.0, "no rate");
        assert!(bar.eta() > Duration::ZERO, "no time left with 80 to go");
    }
}
