//! The session: where each line of pwsh's output goes. A record is appended to the journal
//! (and, for an intent, acknowledged on pwsh's standard input only once it is there), counted,
//! reported and shown on the progress bar; any other line goes unchanged to calperm's stderr.

use super::interrupt;
use super::marker;
use super::progress::Progress;
use super::pwsh;
use super::report::Report;
use super::stream;
use super::tally::Tally;
use crate::journal::Journal;
use crate::records::Record;
use std::io::{self, Write};

/// Where each line of pwsh's output goes.
pub(crate) struct Session {
    /// Stamped on the start record: which simulated tenant the journal's run was against.
    simulated_tenant: Option<String>,
    pub(super) journal: Journal,
    pub(super) journal_error: Option<String>,
    /// Records in the journal, and records received after it failed.
    pub(super) written: u64,
    pub(super) not_written: u64,
    /// pwsh's standard input, when the script awaits an acknowledgement before each change.
    /// Dropping it tells the script to stop before its next change.
    pub(super) ack: Option<std::process::ChildStdin>,
    /// The pwsh now running.
    pub(super) pid: Option<u32>,
    interrupted: interrupt::Flag,
    pub(super) report: Report,
    pub(super) progress: Progress,
    /// The whole run (every script of a workflow).
    pub(super) tally: Tally,
    /// The script now running (or last run): its exit code is decided on this.
    pub(crate) part: Tally,
}

/// Longest unreadable line quoted in a warning.
const QUOTE_MAX: usize = 1000;

impl Session {
    pub(super) fn new(
        simulated_tenant: Option<String>,
        journal: Journal,
        interrupted: interrupt::Flag,
        report: Report,
        progress: Progress,
    ) -> Session {
        Session {
            simulated_tenant,
            journal,
            journal_error: None,
            written: 0,
            not_written: 0,
            ack: None,
            pid: None,
            interrupted,
            report,
            progress,
            tally: Tally::default(),
            part: Tally::default(),
        }
    }

    /// Appends `record` to the journal. The first failure stops the run: no acknowledgement
    /// is given any more, and pwsh is asked to stop.
    fn journal_ok(&mut self, record: &Record) -> bool {
        match self.journal.append(record) {
            Ok(()) => {
                self.written += 1;
                true
            }
            Err(err) => {
                self.not_written += 1;
                self.progress.suspend(|| {
                    eprintln!("calperm: warning: {err:#}; stopping the run before its next change")
                });
                self.journal_error = Some(format!(
                    "the journal could not be written ({err:#}); the run was stopped before its next change"
                ));
                self.ack = None;
                if let Some(pid) = self.pid {
                    pwsh::interrupt(pid);
                }
                false
            }
        }
    }
}

impl stream::Handler for Session {
    fn text(&mut self, raw: &[u8]) {
        // A line that is not finished yet may be a prompt: keep the bar off its line until it is.
        let complete = raw.ends_with(b"\n");
        if !complete {
            self.progress.pause();
        }
        self.progress.suspend(|| {
            let mut stderr = io::stderr().lock();
            let _ = stderr.write_all(raw).and_then(|()| stderr.flush());
        });
        if complete {
            self.progress.resume();
        }
    }

    fn record(&mut self, mut record: Record) {
        if let Record::Start(start) = &mut record {
            start.simulated_tenant.clone_from(&self.simulated_tenant);
            start.started_at = Some(crate::delta::utc_now());
        }
        let journaled = if self.journal_error.is_none() {
            self.journal_ok(&record)
        } else {
            self.not_written += 1;
            false
        };
        if let Record::Intent(_) = record {
            // The script changes nothing until it reads this line; a closed pipe stops it.
            if journaled && !self.interrupted.is_set() {
                if let Some(ack) = &mut self.ack
                    && ack.write_all(b"ok\n").and_then(|()| ack.flush()).is_err()
                {
                    self.ack = None;
                }
            } else {
                self.ack = None;
            }
            return;
        }
        self.tally.add(&record);
        self.part.add(&record);
        self.report.record(&record, journaled);
        match &record {
            Record::Start(start) => self.progress.expect(start.total),
            Record::Mailbox(m) => self.progress.mailbox(&m.mailbox),
            Record::Step(step) => self.progress.note(&step.step),
            Record::Item(item) => self.progress.note(&item.item),
            _ => {}
        }
    }

    fn unreadable(&mut self, number: u64, raw: &[u8]) {
        self.tally.unreadable += 1;
        self.part.unreadable += 1;
        let line = String::from_utf8_lossy(marker::trim_line_ending(raw));
        let quoted: String = if line.chars().count() > QUOTE_MAX {
            line.chars()
                .take(QUOTE_MAX)
                .chain(std::iter::once('…'))
                .collect()
        } else {
            line.into_owned()
        };
        self.progress.suspend(|| {
            eprintln!("calperm: warning: unreadable record on output line {number}: {quoted}")
        });
    }
}
