//! "Nothing lost" when calperm is stopped from outside: SIGTERM, SIGKILL, SIGHUP or a SIGINT sent
//! to calperm alone, and a journal that stops accepting writes mid-run. Each test runs the real
//! grant on the simulated 2,000-mailbox tenant, stops it mid-run and then checks that no pwsh of
//! the run is left, that the temp files are gone, and that every change in the tenant's state is
//! named by the journal (an intent or a mailbox record), so `revoke --from-journal` can undo it.
#![cfg(target_os = "linux")]

use crate::common;

use common::{Sandbox, pwsh};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const MONITOR: &str = "monitor@contoso.com";
const TENANT: &str = "large-2000.json";
/// Mailbox records to wait for before stopping the run: well into it, far from its end.
const STOP_AFTER: usize = 40;

/// A grant started in `sandbox` on its own state file, its journal and its stderr.
struct Run {
    child: Child,
    journal: PathBuf,
    state: PathBuf,
    stderr: PathBuf,
}

fn start_grant(sandbox: &Sandbox, journal: &Path) -> Run {
    start_grant_with(sandbox, journal, |_| {})
}

/// `start_grant` with more arguments, environment or process settings from `extra`.
fn start_grant_with(
    sandbox: &Sandbox,
    journal: &Path,
    extra: impl FnOnce(&mut std::process::Command),
) -> Run {
    let tenant = common::copy_tenant(TENANT, &sandbox.work());
    let state = sandbox.file("state.json");
    let stderr = sandbox.file("stderr.txt");
    let mut command = sandbox.command();
    command
        .args(["run", "grant", "--monitor", MONITOR, "--format", "json"])
        .arg("--simulate")
        .arg(&tenant)
        .arg("--sim-state")
        .arg(&state)
        .arg("--journal")
        .arg(journal);
    extra(&mut command);
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("starting calperm");
    Run {
        child,
        journal: journal.to_path_buf(),
        state,
        stderr,
    }
}

/// Lines of a journal that may still be growing (a last line without newline is left out).
fn journal_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("journal line {l:?}: {e}")))
        .collect()
}

fn mailbox_records(lines: &[Value]) -> usize {
    lines.iter().filter(|r| r["type"] == "mailbox").count()
}

fn wait_until_mid_run(run: &Run) {
    common::wait_for(Duration::from_secs(120), "the grant to get going", || {
        mailbox_records(&journal_lines(&run.journal)) >= STOP_AFTER
    });
}

fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    assert_eq!(
        unsafe { libc::kill(pid, signal) },
        0,
        "kill({pid}, {signal})"
    );
}

/// Processes (of this user) started with CALPERM_SIM_STATE=`state`: the run's pwsh.
fn processes_of(state: &Path) -> Vec<u32> {
    let needle = format!("CALPERM_SIM_STATE={}\0", state.display()).into_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle.as_slice()))
                // A zombie has no environment left; it runs nothing.
                && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|stat| stat.contains(") Z "))
        })
        .collect()
}

fn assert_no_pwsh_left(state: &Path, limit: Duration) {
    let start = Instant::now();
    loop {
        let left = processes_of(state);
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "pwsh of the run still running after {limit:?}: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("calperm did not end within {limit:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What an audit says about each mailbox: (outcome, the monitor's rights).
type Audit = BTreeMap<String, (String, Value)>;

fn audit(sandbox: &Sandbox, state: &Path) -> Audit {
    let tenant = sandbox.work().join(TENANT);
    let output = sandbox
        .command()
        .args(["run", "audit", "--monitor", MONITOR, "--format", "json"])
        .arg("--simulate")
        .arg(&tenant)
        .arg("--sim-state")
        .arg(state)
        .arg("--journal")
        .arg(sandbox.file(&format!("audit-{}.jsonl", std::process::id())))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(sandbox.file(&format!("audit-{}.jsonl", std::process::id())));
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "audit failed: {}",
        common::stderr(&output)
    );
    common::stdout(&output)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["type"] == "mailbox")
        .map(|r| {
            (
                r["mailbox"].as_str().unwrap().to_lowercase(),
                (
                    r["outcome"].as_str().unwrap().to_string(),
                    r["previous"].clone(),
                ),
            )
        })
        .collect()
}

/// The untouched tenant's audit, computed once.
fn baseline() -> &'static Audit {
    static BASELINE: OnceLock<Audit> = OnceLock::new();
    BASELINE.get_or_init(|| {
        let sandbox = Sandbox::new();
        common::copy_tenant(TENANT, &sandbox.work());
        audit(&sandbox, &sandbox.file("fresh.json"))
    })
}

/// Mailboxes whose monitor rights differ from the untouched tenant's.
fn changed_mailboxes(sandbox: &Sandbox, state: &Path) -> BTreeSet<String> {
    let now = audit(sandbox, state);
    let before = baseline();
    assert_eq!(now.len(), before.len(), "audits of different tenants");
    now.into_iter()
        .filter(|(mailbox, seen)| before.get(mailbox) != Some(seen))
        .map(|(mailbox, _)| mailbox)
        .collect()
}

/// Mailboxes the journal names as changed or about to be changed.
fn journaled_mailboxes(lines: &[Value]) -> BTreeSet<String> {
    lines
        .iter()
        .filter(|r| {
            r["type"] == "intent"
                || (r["type"] == "mailbox"
                    && matches!(r["outcome"].as_str(), Some("added" | "updated")))
        })
        .map(|r| r["mailbox"].as_str().unwrap().to_lowercase())
        .collect()
}

/// Every change in the tenant is in the journal, and the run was really stopped mid-way.
fn assert_every_change_journaled(sandbox: &Sandbox, run: &Run) {
    let lines = journal_lines(&run.journal);
    let journaled = journaled_mailboxes(&lines);
    let changed = changed_mailboxes(sandbox, &run.state);
    assert!(
        changed.len() >= STOP_AFTER / 2,
        "the run changed too little to show anything: {changed:?}"
    );
    assert!(
        mailbox_records(&lines) < 1500,
        "the run was not stopped mid-way: {} mailbox records",
        mailbox_records(&lines)
    );
    let missing: Vec<&String> = changed.difference(&journaled).collect();
    assert!(
        missing.is_empty(),
        "changed in the tenant but not in the journal: {missing:?}"
    );
}

fn stopped_by(sig: libc::c_int, name: &str) {
    let Some(_) = pwsh() else { return };
    let sandbox = Sandbox::new();
    let mut run = start_grant(&sandbox, &sandbox.file("j.jsonl"));
    wait_until_mid_run(&run);
    signal(&run.child, sig);
    let status = wait_exit(&mut run.child, Duration::from_secs(20));
    let err = std::fs::read_to_string(&run.stderr).unwrap();
    assert_eq!(status.code(), Some(4), "{name}: {err}");
    assert!(err.contains("interrupted"), "{name}: {err}");
    assert_no_pwsh_left(&run.state, Duration::from_secs(5));
    assert!(
        sandbox.leftovers().is_empty(),
        "{name} left temp files: {:?}",
        sandbox.leftovers()
    );
    // The mailbox in flight, if the stop caught one between its intent and its change.
    let lines = journal_lines(&run.journal);
    for r in lines.iter().filter(|r| r["kind"] == "interrupted") {
        assert_eq!(r["outcome"], "failed", "{r}");
    }
    assert_every_change_journaled(&sandbox, &run);
}

#[test]
fn sigterm_to_calperm_stops_pwsh_and_every_change_is_journaled() {
    stopped_by(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sighup_to_calperm_stops_pwsh_and_every_change_is_journaled() {
    stopped_by(libc::SIGHUP, "SIGHUP");
}

#[test]
fn sigint_to_calperm_alone_stops_the_run_promptly() {
    let Some(_) = pwsh() else { return };
    let sandbox = Sandbox::new();
    let mut run = start_grant(&sandbox, &sandbox.file("j.jsonl"));
    wait_until_mid_run(&run);
    let sent = Instant::now();
    signal(&run.child, libc::SIGINT);
    let status = wait_exit(&mut run.child, Duration::from_secs(60));
    let took = sent.elapsed();
    let err = std::fs::read_to_string(&run.stderr).unwrap();
    assert_eq!(status.code(), Some(4), "{err}");
    assert!(
        took < Duration::from_secs(8),
        "took {took:?} to stop: {err}"
    );
    let lines = journal_lines(&run.journal);
    assert!(
        mailbox_records(&lines) < 1500,
        "ran on after SIGINT: {} mailbox records",
        mailbox_records(&lines)
    );
    assert!(err.contains("resume with: "), "{err}");
    assert_no_pwsh_left(&run.state, Duration::from_secs(5));
    assert!(sandbox.leftovers().is_empty(), "{:?}", sandbox.leftovers());
}

#[test]
fn sigkill_to_calperm_kills_pwsh_and_every_change_is_journaled() {
    let Some(_) = pwsh() else { return };
    let sandbox = Sandbox::new();
    let mut run = start_grant(&sandbox, &sandbox.file("j.jsonl"));
    wait_until_mid_run(&run);
    signal(&run.child, libc::SIGKILL);
    let _ = wait_exit(&mut run.child, Duration::from_secs(10));
    assert_no_pwsh_left(&run.state, Duration::from_secs(5));
    assert_every_change_journaled(&sandbox, &run);

    // revoke --from-journal undoes every change, the unanswered intent included, except an
    // add it cannot tell from an entry that was there before (reported uncertain).
    let output = sandbox
        .command()
        .args(["run", "revoke", "--monitor", MONITOR, "--format", "json"])
        .arg("--simulate")
        .arg(sandbox.work().join(TENANT))
        .arg("--sim-state")
        .arg(&run.state)
        .arg("--journal")
        .arg(sandbox.file("revoke.jsonl"))
        .arg("--from-journal")
        .arg(&run.journal)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = common::stderr(&output);
    assert!(matches!(output.status.code(), Some(0 | 1)), "{err}");
    let uncertain: BTreeSet<String> = common::stdout(&output)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["kind"] == "uncertain")
        .map(|r| r["mailbox"].as_str().unwrap().to_lowercase())
        .collect();
    let left = changed_mailboxes(&sandbox, &run.state);
    assert!(
        left.is_subset(&uncertain),
        "not undone: {:?}",
        left.difference(&uncertain).collect::<Vec<_>>()
    );
}

/// A journal that stops accepting writes mid-run (a full disk, a closed pipe): the run stops
/// before its next change and says how much of it is in the journal. The journal here is a FIFO
/// whose reader goes away after a number of records, so writing fails as on a full disk.
#[test]
fn a_journal_write_failure_stops_the_run_before_the_next_change() {
    let Some(_) = pwsh() else { return };
    let sandbox = Sandbox::new();
    let fifo = sandbox.file("journal.fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let reader_path = fifo.clone();
    // What reached the journal before it failed: the reader keeps a copy.
    let copy = sandbox.file("received.jsonl");
    let copy_path = copy.clone();
    let reader = std::thread::spawn(move || {
        let file = std::fs::File::open(&reader_path).unwrap();
        let mut lines = std::io::BufReader::new(file);
        let mut kept = String::new();
        let mut intents = 0;
        while intents < STOP_AFTER {
            let mut line = String::new();
            if lines.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if line.contains("\"type\":\"intent\"") {
                intents += 1;
            }
            kept.push_str(&line);
        }
        // Lines already in the reader's buffer were written successfully too.
        kept.push_str(&String::from_utf8_lossy(lines.buffer()));
        std::fs::write(&copy_path, kept).unwrap();
        // Dropping the reader closes the FIFO: the next write fails.
    });
    let mut run = start_grant(&sandbox, &fifo);
    reader.join().unwrap();
    let status = wait_exit(&mut run.child, Duration::from_secs(60));
    let err = std::fs::read_to_string(&run.stderr).unwrap();
    assert_eq!(status.code(), Some(4), "{err}");
    assert!(err.contains("the journal could not be written"), "{err}");
    assert!(
        err.contains("are not, and no change was made after the journal failed"),
        "{err}"
    );
    assert_no_pwsh_left(&run.state, Duration::from_secs(5));

    let received = journal_lines(&copy);
    let written = received.len();
    assert!(
        err.contains(&format!("the first {written} are in the journal")),
        "expected {written} journaled records in:\n{err}"
    );
    let journaled = journaled_mailboxes(&received);
    let changed = changed_mailboxes(&sandbox, &run.state);
    assert!(!changed.is_empty());
    let missing: Vec<&String> = changed.difference(&journaled).collect();
    assert!(
        missing.is_empty(),
        "changed after the journal failed: {missing:?}"
    );
}

#[test]
fn journal_on_an_existing_file_is_refused_without_resume() {
    let sandbox = Sandbox::new();
    let journal = sandbox.file("j.jsonl");
    let before = "{\"type\":\"start\",\"script\":\"grant\"}\n{\"type\":\"mail";
    std::fs::write(&journal, before).unwrap();
    let output = sandbox
        .command()
        .args([
            "run",
            "grant",
            "--monitor",
            MONITOR,
            "--pwsh",
            "/bin/true",
            "--journal",
        ])
        .arg(&journal)
        .output()
        .unwrap();
    let err = common::stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("already exists") && err.contains("--resume"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), before);
}

#[test]
fn report_on_the_journal_is_refused_under_any_spelling() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.file("sub")).unwrap();
    let journal = sandbox.file("j.jsonl");
    std::fs::write(sandbox.file("other.jsonl"), "").unwrap();
    std::os::unix::fs::symlink(&journal, sandbox.file("link.csv")).unwrap();
    for report in ["j.jsonl", "sub/../j.jsonl", "./j.jsonl", "link.csv"] {
        let output = sandbox
            .command()
            .args(["run", "grant", "--monitor", MONITOR, "--pwsh", "/bin/true"])
            .args(["--journal", "j.jsonl", "--report", report])
            .output()
            .unwrap();
        let err = common::stderr(&output);
        assert_eq!(output.status.code(), Some(2), "--report {report}: {err}");
        assert!(err.contains("is the journal"), "--report {report}: {err}");
        assert!(!journal.exists(), "--report {report} created the journal");
    }
}

#[test]
fn a_resumed_journal_with_a_cut_off_last_line_is_repaired_not_glued() {
    let Some(_) = pwsh() else { return };
    let sandbox = Sandbox::new();
    let tenant = common::copy_tenant("demo.json", &sandbox.work());
    let journal = sandbox.file("j.jsonl");
    // A real journal (its run identity is what --resume checks), cut off as a run stopped while
    // writing its third mailbox record leaves it.
    let output = sandbox
        .command()
        .args(["run", "grant", "--monitor", MONITOR, "--simulate"])
        .arg(&tenant)
        .arg("--journal")
        .arg(&journal)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", common::stderr(&output));
    let full = std::fs::read_to_string(&journal).unwrap();
    let mut kept = String::new();
    let mut mailboxes = 0;
    for line in full.lines() {
        if line.contains("\"type\":\"mailbox\"") {
            mailboxes += 1;
            if mailboxes == 3 {
                kept.push_str(&line[..line.len() / 2]);
                break;
            }
        }
        kept.push_str(line);
        kept.push('\n');
    }
    assert_eq!(mailboxes, 3, "{full}");
    std::fs::write(&journal, kept).unwrap();
    let output = sandbox
        .command()
        .args(["run", "grant", "--monitor", MONITOR, "--simulate"])
        .arg(&tenant)
        .arg("--resume")
        .arg(&journal)
        .output()
        .unwrap();
    let err = common::stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(err.contains("cut off mid-write"), "{err}");
    // Every line is a record again.
    let lines = common::journal(&journal);
    assert!(lines.len() > 10, "{lines:?}");
    assert_eq!(lines.iter().filter(|r| r["type"] == "start").count(), 2);
}

/// Who gets the signal: calperm alone (a supervisor, `kill`), or calperm's whole process group
/// with every pwsh in it (Ctrl-C at a terminal).
#[derive(Clone, Copy)]
enum To {
    Calperm,
    Group,
}

/// `run grant --parallel 3` stopped mid-run by `sig`: exit 4 with the resume command, no pwsh of
/// the run left (listing or worker), no temp file, every change in the tenant named by the
/// journal; then `--resume` finishes the grant with no mailbox granted twice.
fn parallel_stopped_by(sig: libc::c_int, to: To, name: &str) {
    let Some(_) = pwsh() else { return };
    let sandbox = Sandbox::new();
    let mut run = start_grant_with(&sandbox, &sandbox.file("j.jsonl"), |command| {
        use std::os::unix::process::CommandExt;
        // Some latency per Exchange call, so three workers are mid-mailbox when the signal comes.
        command
            .args(["--parallel", "3"])
            .env("CALPERM_SIM_LATENCY_MS", "10")
            .process_group(0);
    });
    wait_until_mid_run(&run);
    let workers = processes_of(&run.state).len();
    assert!(
        workers >= 3,
        "{name}: expected 3 pwsh workers mid-run, found {workers}"
    );
    match to {
        To::Calperm => signal(&run.child, sig),
        To::Group => {
            let group = libc::pid_t::try_from(run.child.id()).unwrap();
            assert_eq!(unsafe { libc::kill(-group, sig) }, 0, "kill(-{group})");
        }
    }
    let status = wait_exit(&mut run.child, Duration::from_secs(30));
    let err = std::fs::read_to_string(&run.stderr).unwrap();
    assert_eq!(status.code(), Some(4), "{name}: {err}");
    assert!(err.contains("interrupted"), "{name}: {err}");
    assert!(err.contains("resume with: "), "{name}: {err}");
    assert_no_pwsh_left(&run.state, Duration::from_secs(5));
    assert!(
        sandbox.leftovers().is_empty(),
        "{name} left temp files: {:?}",
        sandbox.leftovers()
    );
    let lines = journal_lines(&run.journal);
    for r in lines.iter().filter(|r| r["kind"] == "interrupted") {
        assert_eq!(r["outcome"], "failed", "{name}: {r}");
    }
    assert_every_change_journaled(&sandbox, &run);

    let resumed = sandbox
        .command()
        .args(["run", "grant", "--monitor", MONITOR, "--format", "json"])
        .args(["--parallel", "3", "--simulate"])
        .arg(sandbox.work().join(TENANT))
        .arg("--sim-state")
        .arg(&run.state)
        .arg("--resume")
        .arg(&run.journal)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{name}: resume: {}",
        common::stderr(&resumed)
    );
    assert_no_pwsh_left(&run.state, Duration::from_secs(5));
    let mut grants: BTreeMap<String, usize> = BTreeMap::new();
    for r in journal_lines(&run.journal).iter().filter(|r| {
        r["type"] == "mailbox" && matches!(r["outcome"].as_str(), Some("added" | "updated"))
    }) {
        *grants
            .entry(r["mailbox"].as_str().unwrap().to_lowercase())
            .or_default() += 1;
    }
    let twice: Vec<_> = grants.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{name}: granted twice: {twice:?}");
    let not_granted: Vec<_> = audit(&sandbox, &run.state)
        .into_iter()
        .filter(|(_, (outcome, _))| outcome == "missing" || outcome == "below")
        .collect();
    assert!(
        not_granted.is_empty(),
        "{name}: not granted after --resume: {not_granted:?}"
    );
}

#[test]
fn ctrl_c_during_a_parallel_grant_stops_every_pwsh_and_resume_finishes() {
    parallel_stopped_by(libc::SIGINT, To::Group, "Ctrl-C (SIGINT to the group)");
}

#[test]
fn sigint_to_calperm_alone_during_a_parallel_grant_stops_every_pwsh() {
    parallel_stopped_by(libc::SIGINT, To::Calperm, "SIGINT to calperm");
}

#[test]
fn sigterm_during_a_parallel_grant_stops_every_pwsh_and_resume_finishes() {
    parallel_stopped_by(libc::SIGTERM, To::Calperm, "SIGTERM");
}
