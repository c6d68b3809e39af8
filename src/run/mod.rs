//! `calperm run`: run a rendered script with pwsh and report what it did.
//!
//! One run, in order: prepare the simulation if asked (`simulate`), find pwsh (`pwsh`), open the
//! journal and the report outputs, write the script to a private temp file (`script_file`),
//! start `pwsh … -File <tmp.ps1> -RecordMarker <marker>` with stdout piped, then read its output
//! line by line as it arrives (`stream`, `marker`, `session`): records go to the journal (appended and
//! flushed at once), the tally (`tally`), the report (`report`) and the progress bar
//! (`progress`); every other line goes unchanged to calperm's stderr, so a device-code sign-in
//! prompt reaches the user and calperm's stdout carries only the report. When pwsh has ended,
//! the temp files go, the report is finished, and `verdict` decides the exit code; an
//! interrupted or broken run names its journal and the command that resumes it (`resume`).
//!
//! `Run` holds what the pwsh processes of one run share, so a workflow of several scripts
//! (`plan`: setup, app-registration --restrict-to-group) runs each through `Run::script` into one
//! journal and one report.

mod interrupt;
mod marker;
pub mod plan;
mod progress;
mod pwsh;
mod report;
mod resume;
mod script_file;
mod session;
mod simulate;
mod stream;
mod tally;
mod verdict;
pub mod workers;

use crate::error::Failure;
use crate::journal::{self, Journal};
use crate::records::Record;
use crate::script::Target;
use anyhow::{Context, Result};
use interrupt::Interrupt;
use marker::Marker;
use plan::Workflow;
use progress::Progress;
pub use report::ReportFormat;
use report::{Footer, Report};
use script_file::ScriptFile;
use session::Session;
use simulate::Simulation;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tally::Tally;
use verdict::{ChildEnd, Verdict};

/// How to run: pwsh, the simulation, the journal and the report (`calperm run`'s own options).
#[derive(Debug, Clone)]
pub struct Options {
    /// Workers of a parallel run (`workers`); 1 is serial.
    pub parallel: u16,
    pub pwsh: Option<PathBuf>,
    pub simulate: Option<PathBuf>,
    pub sim_state: Option<PathBuf>,
    pub format: ReportFormat,
    pub report: Option<PathBuf>,
    pub journal: Option<PathBuf>,
    pub what_if: bool,
}

/// Runs the workflow's one script and reports (`plan::execute` runs several). `Ok` only for
/// exit code 0; every other outcome is an `error::Failure` carrying its exit code, after the
/// report has been written.
pub fn execute(workflow: &Workflow, target: &Target, options: &Options) -> Result<ExitCode> {
    let part = &workflow.parts[0];
    let mut run = Run::open(target, options)?;
    let end = run.script(
        &part.text,
        options.simulate.is_some() || part.non_interactive(target.connection),
        &[],
    )?;
    run.finish(end.child, end.interrupted, end.trouble)
}

/// How much of the run reached the journal. `guarded`: every script waited for an
/// acknowledgement before each change, so nothing changed after the journal failed.
pub(crate) struct JournalCount {
    written: u64,
    not_written: u64,
    guarded: bool,
}

/// What every pwsh process of one run shares: the simulation, pwsh, the journal, the report and
/// the tally. `calperm run` of one script uses it once (`execute`); a workflow of several scripts
/// (`plan`) runs each of them through it, so they share one journal and one report.
pub(crate) struct Run<'a> {
    target: &'a Target,
    options: &'a Options,
    simulation: Option<Simulation>,
    pwsh: PathBuf,
    journal_path: PathBuf,
    new_journal: bool,
    /// Every script so far waited for an acknowledgement before each change (or changed nothing).
    guarded: bool,
    pub(crate) session: Session,
    interrupt: Interrupt,
    /// Environment for every pwsh of the run (the simulation's shared mode under --parallel).
    extra_env: Vec<(&'static str, &'static str)>,
}

/// What a closed run leaves for its verdict.
pub(crate) struct Closed {
    pub(crate) tally: Tally,
    pub(crate) journal_path: PathBuf,
    /// What went wrong writing the report, if anything.
    pub(crate) report_trouble: Option<String>,
    pub(crate) journal_count: JournalCount,
}

/// How one pwsh process ended.
pub(crate) struct ScriptEnd {
    pub(crate) child: ChildEnd,
    pub(crate) interrupted: bool,
    /// Problems on calperm's side (reading pwsh's output, writing the journal).
    pub(crate) trouble: Vec<String>,
}

impl<'a> Run<'a> {
    /// Everything that can fail before pwsh starts fails here, with nothing run.
    pub(crate) fn open(target: &'a Target, options: &'a Options) -> Result<Run<'a>> {
        let simulation = match &options.simulate {
            Some(tenant) => Some(Simulation::prepare(tenant, options.sim_state.as_deref())?),
            None => None,
        };
        let pwsh = pwsh::locate(options.pwsh.as_deref())?;
        let journal_path = journal_path(options, target)?;
        if let Some(report) = &options.report {
            journal::ensure_not_journal(&journal_path, report)?;
        }
        let mut report = Report::open(options.format, options.report.as_deref())?;
        let resuming = target
            .resume_journal
            .as_deref()
            .is_some_and(|resumed| journal::same_file(&journal_path, resumed));
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
        report.read_back(|| journal.read_back());
        let progress = Progress::on_stderr();
        let interrupt = Interrupt::install(progress.bar());
        Ok(Run {
            target,
            options,
            simulation,
            pwsh,
            journal_path,
            new_journal,
            guarded: true,
            session: Session::new(
                options.simulate.as_deref().map(|p| {
                    std::path::absolute(p)
                        .unwrap_or_else(|_| p.to_path_buf())
                        .to_string_lossy()
                        .into_owned()
                }),
                journal,
                interrupt.flag(),
                report,
                progress,
            ),
            interrupt,
            extra_env: Vec::new(),
        })
    }

    pub(crate) fn interrupted(&self) -> bool {
        self.interrupt.interrupted()
    }

    /// A record calperm writes itself (a part's end): journal, report and tallies, like any other.
    pub(crate) fn record(&mut self, record: Record) {
        stream::Handler::record(&mut self.session, record);
    }

    /// Runs one script in a new pwsh with `params` (`-Name value`, never a secret) after the
    /// record marker, and reads its records into the session; `session.part` holds this
    /// script's own tally afterwards. `Err` only when pwsh could not be started (exit code 3).
    pub(crate) fn script(
        &mut self,
        script_text: &str,
        non_interactive: bool,
        params: &[(String, String)],
    ) -> Result<ScriptEnd> {
        self.session.part = Tally::default();
        let script = ScriptFile::write(script_text)?;
        let marker = Marker::random();

        // Changes wait for calperm's acknowledgement on pwsh's standard input (records.rs, Intent).
        let await_ack = pwsh::awaits_ack(self.target, script_text) && !self.options.what_if;
        self.guarded &= await_ack || self.options.what_if;
        let mut command = Command::new(&self.pwsh);
        command
            .args(pwsh::arguments(
                script.path(),
                marker.as_str(),
                non_interactive,
                self.options.what_if,
                await_ack,
            ))
            .args(pwsh::secret_arguments(self.target, script_text))
            .args(
                params
                    .iter()
                    .flat_map(|(name, value)| [format!("-{name}"), value.clone()]),
            )
            .stdin(if await_ack {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(simulation) = &self.simulation {
            simulation.apply(&mut command, self.target.connection.is_on_premises())?;
        }
        command.envs(self.extra_env.iter().copied());
        pwsh::tie_to_parent(&mut command);

        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) => {
                self.session.progress.finish();
                if self.new_journal && self.session.tally.records == 0 {
                    // Nothing ran: do not leave an empty journal behind.
                    let _ = std::fs::remove_file(&self.journal_path);
                }
                let _ = script.remove();
                return Err(pwsh::spawn_failed(&self.pwsh, &err).into());
            }
        };
        let stdout = child
            .stdout
            .take()
            .context("pwsh's standard output is not piped")?;
        self.session.ack = child.stdin.take();
        self.session.pid = Some(child.id());
        let child = Arc::new(Mutex::new(child));
        let watchdog = self.interrupt.watch(Arc::clone(&child));

        let read = stream::pump(stdout, &marker, &mut self.session);
        self.session.ack = None;
        if self.session.journal_error.is_none()
            && let Err(err) = self.session.journal.sync()
        {
            self.session.journal_error = Some(format!("{err:#}"));
        }
        let mut trouble = Vec::new();
        if let Err(err) = read {
            trouble.push(format!("reading pwsh's output failed ({err})"));
            // Nobody reads its output any more: it would block on a full pipe.
            let _ = lock(&child).kill();
        }
        let status = wait(&child);
        watchdog.stop();
        self.session.pid = None;

        if let Err(err) = script.remove() {
            eprintln!("calperm: warning: {err:#}");
        }
        trouble.extend(self.session.journal_error.clone());
        let child = match status {
            Ok(status) => ChildEnd::from_status(status),
            Err(err) => {
                trouble.push(format!("waiting for pwsh failed ({err})"));
                ChildEnd::Unknown
            }
        };
        if self.session.part.records == 0
            && !self.interrupt.interrupted()
            && child != ChildEnd::Exited(0)
            && !pwsh::is_powershell(&self.pwsh)
        {
            self.session.progress.finish();
            if self.new_journal && self.session.tally.records == 0 {
                // Nothing ran: do not leave an empty journal behind.
                let _ = std::fs::remove_file(&self.journal_path);
            }
            return Err(pwsh::not_powershell(&self.pwsh).into());
        }
        Ok(ScriptEnd {
            child,
            interrupted: self.interrupt.interrupted(),
            trouble,
        })
    }

    /// Closes a run of one script's pwsh processes and turns how they ended into the exit code.
    pub(crate) fn finish(
        self,
        child: ChildEnd,
        interrupted: bool,
        mut trouble: Vec<String>,
    ) -> Result<ExitCode> {
        let (target, options) = (self.target, self.options);
        let closed = self.close();
        trouble.extend(closed.report_trouble);
        let verdict = verdict::decide(&closed.tally, child, interrupted, &trouble);
        conclude(
            verdict,
            &closed.tally,
            target,
            options,
            &closed.journal_path,
            closed.journal_count,
        )
    }

    /// Removes the simulation's files and writes the end of the report.
    pub(crate) fn close(self) -> Closed {
        let sim_state = self.simulation.as_ref().map(|s| s.state().to_path_buf());
        if let Some(simulation) = self.simulation
            && let Err(err) = simulation.remove()
        {
            eprintln!("calperm: warning: {err:#}");
        }
        let Session {
            written,
            not_written,
            report,
            progress,
            tally,
            ..
        } = self.session;
        progress.finish();
        let footer = Footer {
            script: self.target.script.name().to_string(),
            journal: self.journal_path.clone(),
            report_file: self.options.report.clone(),
            sim_state,
        };
        let report_trouble = report.finish(&tally, &footer);
        Closed {
            tally,
            journal_path: self.journal_path,
            report_trouble,
            journal_count: JournalCount {
                written,
                not_written,
                guarded: self.guarded,
            },
        }
    }
}

/// Turns the verdict into the exit code, or into the `Failure` that `error::report` prints.
pub(crate) fn conclude(
    verdict: Verdict,
    tally: &Tally,
    target: &Target,
    options: &Options,
    journal: &std::path::Path,
    count: JournalCount,
) -> Result<ExitCode> {
    let JournalCount {
        written,
        not_written,
        guarded,
    } = count;
    let resumable = target.resumable() && !options.what_if;
    let again = resume::command(&resume::current_args(), journal, resumable);
    match verdict {
        Verdict::Success => Ok(ExitCode::SUCCESS),
        Verdict::Failures(message) => {
            let hint = (resumable && tally.failed_mailboxes + tally.failed_parts > 0)
                .then(|| format!("the report lists them; to retry only what is not done: {again}"));
            Err(Failure::failures(message, hint).into())
        }
        Verdict::Configuration(message) => {
            Err(Failure::usage(message, verdict::configuration_hint(tally)).into())
        }
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
                0 => format!(
                    "{reason}; no record was received (journal: {})",
                    journal.display()
                ),
                1 => format!(
                    "{reason}; 1 record was received and is in the journal {}",
                    journal.display()
                ),
                n => format!(
                    "{reason}; {n} records were received and are all in the journal {}",
                    journal.display()
                ),
            };
            let hint = if resumable {
                format!("resume with: {again}")
            } else {
                format!("run it again with: {again}")
            };
            Err(Failure::pwsh_failed(message, Some(hint)).into())
        }
    }
}

/// `--journal FILE`, else the `--resume` journal (appended to), else a new
/// `calperm-journal-<time>.jsonl` in the current directory. Absolute, so the summary and the
/// resume command name it unambiguously.
fn journal_path(options: &Options, target: &Target) -> Result<PathBuf> {
    let path = match (&options.journal, &target.resume_journal) {
        (Some(path), _) => path.clone(),
        (None, Some(resumed)) => resumed.clone(),
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
