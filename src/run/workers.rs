//! `calperm run grant|audit|revoke --parallel N`: one listing, N pwsh workers, one journal.
//!
//! The script runs once with `-Queue enumerate -QueueFile <private temp file>`: it connects,
//! resolves the monitor and writes the facts of every mailbox in scope, one JSON line each, to
//! the file (the queue lives on disk, so calperm's memory does not grow with the tenant). Then N
//! (`revoke --from-journal`: the journal's entries are the queue, one JSON line each.) Then N
//! copies of the same script run with `-Queue worker`, each with its own Exchange connection.
//! calperm sends each worker one mailbox line on its standard input, and the next one when that
//! mailbox's record has arrived (a slow worker holds back nothing). The same input carries the
//! `ok` to an intent (journal before change), always between a mailbox line and its record.
//!
//! Records of every worker pass through the run's one `Session` (journal, report, tally,
//! progress) as they arrive. A throttled or retried mailbox lowers the number of workers that get
//! new mailboxes (at most once a second, never below one); a quiet period raises it again, up
//! to N (3 s, doubling with every step down, at most 60 s). A worker that ends while on a mailbox gives it back to the queue, is not replaced, and
//! makes the run end with exit 4 and the resume command.
//!
//! Every pwsh is spawned from the main thread, which outlives them (PR_SET_PDEATHSIG follows the
//! spawning thread).

use super::marker::Marker;
use super::script_file::ScriptFile;
use super::verdict::ChildEnd;
use super::{Run, lock, pwsh, stream};
use crate::error::Failure;
use crate::records::{MailboxKind, Record};
use crate::run::Options;
use crate::run::plan::Workflow;
use crate::script::{Connection, Script, Target};
use anyhow::{Context as _, Result};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a reader thread hands to the main thread.
enum Event {
    Text(Vec<u8>),
    Record(Box<Record>),
    Unreadable(u64, Vec<u8>),
    Closed,
}

struct Forward {
    id: usize,
    tx: Sender<(usize, Event)>,
}

impl stream::Handler for Forward {
    fn text(&mut self, raw: &[u8]) {
        let _ = self.tx.send((self.id, Event::Text(raw.to_vec())));
    }
    fn record(&mut self, record: Record) {
        let _ = self.tx.send((self.id, Event::Record(Box::new(record))));
    }
    fn unreadable(&mut self, number: u64, raw: &[u8]) {
        let _ = self
            .tx
            .send((self.id, Event::Unreadable(number, raw.to_vec())));
    }
}

struct Worker {
    child: Arc<Mutex<Child>>,
    stdin: Option<ChildStdin>,
    /// The mailbox line it is working on, since when, and whether it was counted as slow.
    current: Option<String>,
    since: Instant,
    slow: bool,
    running: bool,
    watchdog: Option<super::interrupt::Watchdog>,
}

/// Refuses what cannot run in parallel, before anything runs.
fn refuse(target: &Target, options: &Options) -> Result<()> {
    if !matches!(
        target.script,
        Script::Grant | Script::Audit | Script::Revoke
    ) {
        return Err(Failure::usage(
            format!("--parallel is not available for {}", target.script.name()),
            "use --parallel with `run grant`, `run audit` or `run revoke`, or drop it",
        )
        .into());
    }
    if matches!(target.connection, Connection::Exo | Connection::LegacyBasic)
        && options.simulate.is_none()
    {
        return Err(Failure::usage(
            format!(
                "--parallel {} needs an unattended sign-in: each worker opens its own Exchange connection, and --connection {} would ask you to sign in {} times",
                options.parallel,
                target.connection.name(),
                options.parallel
            ),
            "use --connection exo-app (certificate: --app-id, --organization, --certificate-path or --certificate-thumbprint), or --connection onprem (Kerberos) from a domain-joined machine; or drop --parallel",
        )
        .into());
    }
    Ok(())
}

/// Adaptive concurrency: how many workers get new mailboxes, and what it was over the run.
struct Throttle {
    max: usize,
    target: usize,
    last_change: Instant,
    last_trouble: Instant,
    /// Quiet time before the next step up: doubles with every step down (3 s to 60 s), so a
    /// tenant limit below N is probed ever more rarely instead of every few seconds.
    quiet: Duration,
    /// A mailbox's usual time (moving average).
    typical: Duration,
    samples: u64,
    sum: u64,
    min: usize,
    retries: u64,
}

impl Throttle {
    fn new(max: usize) -> Throttle {
        let now = Instant::now();
        Throttle {
            max,
            target: max,
            last_change: now,
            last_trouble: now,
            quiet: Duration::from_secs(3),
            typical: Duration::from_secs(1),
            samples: 0,
            sum: 0,
            min: max,
            retries: 0,
        }
    }

    /// A throttled call, seen in a mailbox's record or guessed from a mailbox that takes far
    /// longer than the others (its calls are being retried; its record comes only at the end).
    fn trouble(&mut self) {
        let now = Instant::now();
        self.last_trouble = now;
        if now.duration_since(self.last_change) >= Duration::from_secs(1) && self.target > 1 {
            self.target -= 1;
            self.last_change = now;
            self.quiet = (self.quiet * 2).min(Duration::from_secs(60));
        }
    }

    fn mailbox(&mut self, retries: u32, throttled: bool, took: Duration) {
        self.retries += u64::from(retries);
        let now = Instant::now();
        self.typical = (self.typical * 7 + took) / 8;
        if retries > 0 || throttled {
            self.trouble();
        } else if now.duration_since(self.last_trouble) >= self.quiet
            && now.duration_since(self.last_change) >= self.quiet
            && self.target < self.max
        {
            self.target += 1;
            self.last_change = now;
        }
        self.samples += 1;
        self.sum += self.target as u64;
        self.min = self.min.min(self.target);
    }

    fn summary(&self) -> String {
        let avg = if self.samples == 0 {
            self.max as f64
        } else {
            self.sum as f64 / self.samples as f64
        };
        format!(
            "calperm: --parallel {}: concurrency min {} / avg {avg:.1} / max {}, {} retries",
            self.max, self.min, self.max, self.retries
        )
    }
}

/// Holds `<state>.lock` for the whole run, as one pwsh of a serial run does (same lock: .NET's
/// FileShare.None is flock(LOCK_EX) on Unix), so another run on the state file waits.
#[cfg(unix)]
fn lock_state(state: &std::path::Path) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let mut path = state.as_os_str().to_owned();
    path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", std::path::Path::new(&path).display()))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        anyhow::bail!("locking {}", std::path::Path::new(&path).display());
    }
    Ok(file)
}

#[cfg(not(unix))]
fn lock_state(_state: &std::path::Path) -> Result<()> {
    Ok(())
}

pub fn execute(workflow: &Workflow, target: &Target, options: &Options) -> Result<ExitCode> {
    refuse(target, options)?;
    let part = &workflow.parts[0];
    let script_text = part.text.as_str();
    let n = usize::from(options.parallel);
    let mut run = Run::open(target, options)?;
    let _state_lock = match &run.simulation {
        Some(simulation) => Some(lock_state(simulation.state())?),
        None => None,
    };
    if run.simulation.is_some() {
        // The simulated tenant's shared mode (docs/simulated-tenant.md): calperm holds the lock.
        run.extra_env.push(("CALPERM_SIM_SHARED", "1"));
    }
    let non_interactive = options.simulate.is_some() || part.non_interactive(target.connection);

    // 1. The listing, into the private queue file.
    let queue = tempfile::NamedTempFile::new().context("creating the queue file")?;
    let queue_path = queue.path().to_string_lossy().into_owned();
    let listing = run.script(
        script_text,
        non_interactive,
        &[
            ("Queue".into(), "enumerate".into()),
            ("QueueFile".into(), queue_path),
        ],
    )?;
    let mut trouble = listing.trouble;
    let mut worst = listing.child;
    if listing.child == ChildEnd::Exited(0) && !listing.interrupted {
        let total = BufReader::new(queue.reopen()?).lines().count() as u64;
        run.session.progress.expect(Some(total));
        let (child, more) = work(&mut run, script_text, non_interactive, n, &queue)?;
        worst = child;
        trouble.extend(more);
    }
    let interrupted = run.interrupted();
    run.finish(worst, interrupted, trouble)
}

/// Runs the workers over the queue; returns the worst worker end and calperm-side trouble.
fn work(
    run: &mut Run<'_>,
    script_text: &str,
    non_interactive: bool,
    n: usize,
    queue: &tempfile::NamedTempFile,
) -> Result<(ChildEnd, Vec<String>)> {
    let await_ack = pwsh::awaits_ack(run.target, script_text) && !run.options.what_if;
    let script = ScriptFile::write(script_text)?;
    let (tx, rx) = mpsc::channel::<(usize, Event)>();
    let mut lines = BufReader::new(queue.reopen()?).lines();
    let mut given_back: VecDeque<String> = VecDeque::new();
    let mut throttle = Throttle::new(n);
    let mut trouble = Vec::new();
    let mut worst = ChildEnd::Exited(0);
    let mut workers = Vec::new();
    let mut readers = Vec::new();

    for id in 0..n {
        let marker = Marker::random();
        let mut command = Command::new(&run.pwsh);
        command
            .args(pwsh::arguments(
                script.path(),
                marker.as_str(),
                non_interactive,
                run.options.what_if,
                await_ack,
            ))
            .args(pwsh::secret_arguments(run.target, script_text))
            .args(["-Queue", "worker"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .envs(run.extra_env.iter().copied());
        if let Some(simulation) = &run.simulation {
            simulation.apply(&mut command, run.target.connection.is_on_premises())?;
        }
        pwsh::tie_to_parent(&mut command);
        let mut child = command
            .spawn()
            .map_err(|err| pwsh::spawn_failed(&run.pwsh, &err))?;
        let stdout = child.stdout.take().context("pwsh's output is not piped")?;
        let stdin = child.stdin.take();
        let child = Arc::new(Mutex::new(child));
        let watchdog = Some(run.interrupt.watch(Arc::clone(&child)));
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut forward = Forward { id, tx };
            let _ = stream::pump(stdout, &marker, &mut forward);
            let _ = forward.tx.send((id, Event::Closed));
        }));
        workers.push(Worker {
            child,
            stdin,
            current: None,
            since: Instant::now(),
            slow: false,
            running: true,
            watchdog,
        });
    }
    drop(tx);

    let mut exhausted = false;
    loop {
        // Hand out mailboxes while fewer than the target are busy; close idle workers at the end.
        let busy = workers.iter().filter(|w| w.current.is_some()).count();
        let mut slots = throttle.target.saturating_sub(busy);
        for worker in workers
            .iter_mut()
            .filter(|w| w.running && w.current.is_none())
        {
            if worker.stdin.is_none() {
                continue;
            }
            if run.interrupted() {
                worker.stdin = None;
                continue;
            }
            if slots == 0 {
                if exhausted && given_back.is_empty() {
                    worker.stdin = None;
                }
                continue;
            }
            let next = match given_back.pop_front() {
                Some(line) => Some(line),
                None if exhausted => None,
                None => match lines.next() {
                    Some(line) => Some(line.context("reading the queue file")?),
                    None => {
                        exhausted = true;
                        None
                    }
                },
            };
            match next {
                Some(line) => {
                    let sent = worker.stdin.as_mut().is_some_and(|stdin| {
                        stdin
                            .write_all(line.as_bytes())
                            .and_then(|()| stdin.write_all(b"\n"))
                            .and_then(|()| stdin.flush())
                            .is_ok()
                    });
                    if sent {
                        worker.current = Some(line);
                        worker.since = Instant::now();
                        worker.slow = false;
                        slots -= 1;
                    } else {
                        worker.stdin = None;
                        given_back.push_front(line);
                    }
                }
                None => worker.stdin = None,
            }
        }
        if workers.iter().all(|w| !w.running) {
            break;
        }
        let slow_after = (throttle.typical * 5).max(Duration::from_secs(2));
        for worker in workers
            .iter_mut()
            .filter(|w| w.current.is_some() && !w.slow)
        {
            if worker.since.elapsed() > slow_after {
                worker.slow = true;
                throttle.trouble();
            }
        }
        let Ok((id, event)) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        match event {
            Event::Text(raw) => stream::Handler::text(&mut run.session, &raw),
            Event::Unreadable(number, raw) => {
                stream::Handler::unreadable(&mut run.session, number, &raw)
            }
            Event::Record(record) => match *record {
                // The listing's start, monitor and end stand for the run; a worker's are its own.
                Record::End(_) | Record::Monitor(_) | Record::Start(_) => {}
                Record::Mailbox(m) => {
                    let took = workers[id].since.elapsed();
                    throttle.mailbox(m.retries, m.kind == Some(MailboxKind::Throttled), took);
                    workers[id].current = None;
                    stream::Handler::record(&mut run.session, Record::Mailbox(m));
                }
                record => {
                    // The acknowledgement of an intent goes to the worker that sent it.
                    std::mem::swap(&mut run.session.ack, &mut workers[id].stdin);
                    stream::Handler::record(&mut run.session, record);
                    std::mem::swap(&mut run.session.ack, &mut workers[id].stdin);
                }
            },
            Event::Closed => {
                let worker = &mut workers[id];
                worker.stdin = None;
                let status = super::wait(&worker.child);
                if let Some(watchdog) = worker.watchdog.take() {
                    watchdog.stop();
                }
                worker.running = false;
                let end = match status {
                    Ok(status) => ChildEnd::from_status(status),
                    Err(_) => ChildEnd::Unknown,
                };
                if let Some(line) = worker.current.take() {
                    // Never lost: another worker takes it; this run still ends with exit 4.
                    let mailbox = serde_json::from_str::<serde_json::Value>(&line)
                        .ok()
                        .and_then(|v| {
                            // A mailbox's facts, or a journal entry (revoke --from-journal).
                            v["PrimarySmtpAddress"]
                                .as_str()
                                .or(v["Mailbox"].as_str())
                                .map(String::from)
                        })
                        .unwrap_or_default();
                    trouble.push(format!(
                        "worker {} ended ({}) while working on {mailbox}",
                        id + 1,
                        describe(end)
                    ));
                    if !run.interrupted() {
                        given_back.push_back(line);
                    }
                    worst = end;
                } else if end != ChildEnd::Exited(0) && worst == ChildEnd::Exited(0) {
                    worst = end;
                }
            }
        }
    }
    for reader in readers {
        let _ = reader.join();
    }
    let left = given_back.len() + if exhausted { 0 } else { lines.count() };
    if left > 0 && !run.interrupted() {
        trouble.push(format!(
            "{left} mailboxes were not done: no worker was left to take them"
        ));
    }
    if run.session.journal_error.is_none()
        && let Err(err) = run.session.journal.sync()
    {
        run.session.journal_error = Some(format!("{err:#}"));
    }
    trouble.extend(run.session.journal_error.clone());
    if let Err(err) = script.remove() {
        eprintln!("calperm: warning: {err:#}");
    }
    run.session
        .progress
        .suspend(|| eprintln!("{}", throttle.summary()));
    for worker in &workers {
        let _ = lock(&worker.child).try_wait();
    }
    Ok((worst, trouble))
}

fn describe(end: ChildEnd) -> String {
    match end {
        ChildEnd::Exited(code) => format!("exit code {code}"),
        ChildEnd::Signal(signal) => format!("signal {signal}"),
        ChildEnd::Unknown => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As if the last change and the last trouble were `ago` back.
    fn aged(throttle: &mut Throttle, ago: Duration) {
        let then = Instant::now().checked_sub(ago).unwrap();
        throttle.last_change = then;
        throttle.last_trouble = then;
    }

    #[test]
    fn trouble_steps_down_once_a_second_and_never_below_one() {
        let mut t = Throttle::new(3);
        aged(&mut t, Duration::from_secs(2));
        t.mailbox(2, false, Duration::from_millis(100));
        assert_eq!(t.target, 2);
        // Within the second: no second step.
        t.mailbox(1, true, Duration::from_millis(100));
        assert_eq!(t.target, 2);
        for _ in 0..5 {
            aged(&mut t, Duration::from_secs(2));
            t.trouble();
        }
        assert_eq!(t.target, 1);
        assert_eq!(t.retries, 3);
    }

    #[test]
    fn a_quiet_period_steps_back_up_to_n_and_grows_after_each_step_down() {
        let mut t = Throttle::new(2);
        aged(&mut t, Duration::from_secs(2));
        t.trouble();
        assert_eq!((t.target, t.quiet), (1, Duration::from_secs(6)));
        aged(&mut t, Duration::from_secs(4));
        t.mailbox(0, false, Duration::from_millis(100));
        assert_eq!(t.target, 1, "4 s is not quiet enough after one step down");
        aged(&mut t, Duration::from_secs(7));
        t.mailbox(0, false, Duration::from_millis(100));
        assert_eq!(t.target, 2);
        aged(&mut t, Duration::from_secs(100));
        t.mailbox(0, false, Duration::from_millis(100));
        assert_eq!(t.target, 2, "never above N");
        assert_eq!(t.min, 1);
        assert!(
            t.summary().contains("concurrency min 1 / avg 1.7 / max 2"),
            "{}",
            t.summary()
        );
    }
}
