//! `calperm run`: run a rendered script with pwsh and report what it did.
//!
//! One run, in order: prepare the simulation if asked (`simulate`), find pwsh (`pwsh`), open the
//! journal and the report outputs, write the script to a private temp file (`script_file`),
//! start `pwsh … -File <tmp.ps1> -RecordMarker <marker>` with stdout piped, then read its output
//! line by line as it arrives (`stream`, `marker`): records go to the journal (appended and
//! flushed at once), the tally (`tally`), the report (`report`) and the progress bar
//! (`progress`); every other line goes unchanged to calperm's stderr, so a device-code sign-in
//! prompt reaches the user and calperm's stdout carries only the report. When pwsh has ended,
//! the temp files go, the report is finished, and `verdict` decides the exit code; an
//! interrupted or broken run names its journal and the command that resumes it (`resume`).

mod interrupt;
mod marker;
mod progress;
mod pwsh;
mod report;
mod resume;
mod script_file;
mod simulate;
mod stream;
mod tally;
mod verdict;

use crate::config::ScriptContext;
use crate::error::Failure;
use crate::journal::{self, Journal};
use crate::records::Record;
use anyhow::{Context, Result};
use interrupt::Interrupt;
use marker::Marker;
use progress::Progress;
use report::{Footer, Report};
use script_file::ScriptFile;
use simulate::Simulation;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tally::Tally;
use verdict::{ChildEnd, Verdict};

/// What to run and how.
pub struct Plan<'a> {
    pub context: &'a ScriptContext,
    /// The rendered script, exactly as `calperm render` prints it (starts with the UTF-8 BOM).
    pub script_text: &'a str,
    pub options: &'a crate::cli::RunOptions,
}

/// Runs the script and reports. `Ok` only for exit code 0; every other outcome is an
/// `error::Failure` carrying its exit code, after the report has been written.
pub fn execute(plan: Plan<'_>) -> Result<ExitCode> {
    let Plan {
        context,
        script_text,
        options,
    } = plan;

    // Everything that can fail before pwsh starts fails here, with nothing run.
    let simulation = match &options.simulate {
        Some(tenant) => Some(Simulation::prepare(tenant, options.sim_state.as_deref())?),
        None => None,
    };
    let pwsh = pwsh::locate(options.pwsh.as_deref())?;
    let journal_path = journal_path(options, context)?;
    if let Some(report) = &options.report {
        journal::ensure_not_journal(&journal_path, report)?;
    }
    let resuming = context
        .resume_journal
        .as_deref()
        .is_some_and(|resumed| journal::same_file(&journal_path, Path::new(resumed)));
    let new_journal = !journal_path.exists();
    let opened = if resuming {
        Journal::resume(&journal_path)
    } else {
        Journal::create(&journal_path)
    };
    let journal = opened.map_err(|err| match err.downcast::<Failure>() {
        Ok(failure) => failure.into(),
        Err(err) => anyhow::Error::from(Failure::usage(
            format!("{err:#}"),
            "pass --journal FILE in a directory you can write to",
        )),
    })?;
    if let Some(bytes) = journal.repaired() {
        eprintln!(
            "calperm: warning: the journal {} ended in a record cut off mid-write ({bytes} bytes); it was removed before appending (it was never acknowledged, so nothing was changed on its account)",
            journal_path.display()
        );
    }
    let report = Report::open(options.format, options.report.as_deref())?;
    let script = ScriptFile::write(script_text)?;
    let marker = Marker::random();

    // Changes wait for calperm's acknowledgement on pwsh's standard input (records.rs, Intent).
    let await_ack = pwsh::awaits_ack(context, script_text) && !options.what_if;
    let mut command = Command::new(&pwsh);
    command
        .args(pwsh::arguments(
            script.path(),
            marker.as_str(),
            pwsh::non_interactive(context, simulation.is_some()),
            options.what_if,
            await_ack,
        ))
        .stdin(if await_ack {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(simulation) = &simulation {
        simulation.apply(&mut command, context.connection_onprem)?;
    }

    pwsh::tie_to_parent(&mut command);

    let progress = Progress::on_stderr();
    let interrupt = Interrupt::install(progress.bar());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            progress.finish();
            if new_journal {
                // Nothing ran: do not leave an empty journal behind.
                let _ = std::fs::remove_file(&journal_path);
            }
            return Err(pwsh::spawn_failed(&pwsh, &err).into());
        }
    };
    let stdout = child
        .stdout
        .take()
        .context("pwsh's standard output is not piped")?;
    let ack = child.stdin.take();
    let pid = child.id();
    let child = Arc::new(Mutex::new(child));
    let watchdog = interrupt.watch(Arc::clone(&child));

    let mut session = Session {
        journal,
        journal_error: None,
        written: 0,
        not_written: 0,
        ack,
        pid,
        interrupted: interrupt.flag(),
        report,
        progress,
        tally: Tally::default(),
    };
    let read = stream::pump(stdout, &marker, &mut session);
    session.ack = None;
    if session.journal_error.is_none()
        && let Err(err) = session.journal.sync()
    {
        session.journal_error = Some(format!("{err:#}"));
    }
    let mut trouble = Vec::new();
    if let Err(err) = read {
        trouble.push(format!("reading pwsh's output failed ({err})"));
        // Nobody reads its output any more: it would block on a full pipe.
        let _ = lock(&child).kill();
    }
    let status = wait(&child);
    watchdog.stop();
    let interrupted = interrupt.interrupted();

    if let Err(err) = script.remove() {
        eprintln!("calperm: warning: {err:#}");
    }
    let sim_state = simulation.as_ref().map(|s| s.state().to_path_buf());
    if let Some(simulation) = simulation
        && let Err(err) = simulation.remove()
    {
        eprintln!("calperm: warning: {err:#}");
    }

    let Session {
        journal_error,
        written,
        not_written,
        report,
        progress,
        tally,
        ..
    } = session;
    progress.finish();
    trouble.extend(journal_error);
    let child_end = match status {
        Ok(status) => ChildEnd::from_status(status),
        Err(err) => {
            trouble.push(format!("waiting for pwsh failed ({err})"));
            ChildEnd::Unknown
        }
    };
    let footer = Footer {
        script: context.script.to_string(),
        journal: journal_path.clone(),
        report_file: options.report.clone(),
        sim_state,
    };
    report.finish(&tally, &footer);

    let verdict = verdict::decide(&tally, child_end, interrupted, &trouble);
    conclude(
        verdict,
        &tally,
        context,
        options,
        &journal_path,
        JournalCount {
            written,
            not_written,
            guarded: await_ack || options.what_if,
        },
    )
}

/// How much of the run reached the journal. `guarded`: the script waited for an
/// acknowledgement before each change, so nothing changed after the journal failed.
struct JournalCount {
    written: u64,
    not_written: u64,
    guarded: bool,
}

/// Turns the verdict into the exit code, or into the `Failure` that `error::report` prints.
fn conclude(
    verdict: Verdict,
    tally: &Tally,
    context: &ScriptContext,
    options: &crate::cli::RunOptions,
    journal: &std::path::Path,
    count: JournalCount,
) -> Result<ExitCode> {
    let JournalCount {
        written,
        not_written,
        guarded,
    } = count;
    let resumable = resume::can_resume(context.script) && !options.what_if;
    let again = resume::command(&resume::current_args(), journal, resumable);
    match verdict {
        Verdict::Success => Ok(ExitCode::SUCCESS),
        Verdict::Failures(message) => {
            let hint = (resumable && tally.failed_mailboxes > 0)
                .then(|| format!("the report lists them; to retry only the mailboxes not done: {again}"));
            Err(Failure::failures(message, hint).into())
        }
        Verdict::Configuration(message) => Err(Failure::usage(
            message,
            "check --monitor: it must name exactly one mailbox or mail user (its UPN or SMTP address is safest); nothing was changed",
        )
        .into()),
        Verdict::Abnormal(reason) if not_written > 0 => {
            let after = if guarded {
                "no change was made after the journal failed"
            } else {
                "pwsh was asked to stop, but may have made changes after the journal failed (this script does not wait for the journal)"
            };
            let message = format!(
                "{reason}; {} records were received: the first {written} are in the journal {}, the last {not_written} are not, and {after}",
                written + not_written,
                journal.display()
            );
            let hint = format!(
                "free space for the journal, then check with `calperm run audit` and resume with: {again}"
            );
            Err(Failure::pwsh_failed(message, Some(hint)).into())
        }
        Verdict::Abnormal(reason) => {
            let message = match tally.records {
                0 => format!("{reason}; no record was received (journal: {})", journal.display()),
                1 => format!("{reason}; 1 record was received and is in the journal {}", journal.display()),
                n => format!("{reason}; {n} records were received and are all in the journal {}", journal.display()),
            };
            let hint = if resumable { format!("resume with: {again}") } else { format!("run it again with: {again}") };
            Err(Failure::pwsh_failed(message, Some(hint)).into())
        }
    }
}

/// `--journal FILE`, else the `--resume` journal (appended to), else a new
/// `calperm-journal-<time>.jsonl` in the current directory. Absolute, so the summary and the
/// resume command name it unambiguously.
fn journal_path(options: &crate::cli::RunOptions, context: &ScriptContext) -> Result<PathBuf> {
    let path = match (&options.journal, &context.resume_journal) {
        (Some(path), _) => path.clone(),
        (None, Some(resumed)) => PathBuf::from(resumed),
        (None, None) => journal::free_default_path(Path::new(""), SystemTime::now()),
    };
    std::path::absolute(&path)
        .with_context(|| format!("resolving the journal path {}", path.display()))
}

fn lock(child: &Mutex<Child>) -> MutexGuard<'_, Child> {
    child
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits for pwsh without holding the lock, so a second Ctrl-C can still kill it.
fn wait(child: &Mutex<Child>) -> io::Result<ExitStatus> {
    loop {
        if let Some(status) = lock(child).try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Where each line of pwsh's output goes.
struct Session {
    journal: Journal,
    journal_error: Option<String>,
    /// Records in the journal, and records received after it failed.
    written: u64,
    not_written: u64,
    /// pwsh's standard input, when the script awaits an acknowledgement before each change.
    /// Dropping it tells the script to stop before its next change.
    ack: Option<std::process::ChildStdin>,
    pid: u32,
    interrupted: interrupt::Flag,
    report: Report,
    progress: Progress,
    tally: Tally,
}

/// Longest unreadable line quoted in a warning.
const QUOTE_MAX: usize = 1000;

impl Session {
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
                pwsh::interrupt(self.pid);
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

    fn record(&mut self, record: Record) {
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
        self.report.record(&record);
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
