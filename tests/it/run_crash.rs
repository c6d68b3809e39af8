//! `calperm run` when pwsh does not end normally: killed mid-run, interrupted with Ctrl-C, or
//! left without acknowledgements when the journal fails. The journal must hold every record that
//! arrived, the temp script must be gone, and the message must name the journal and the command
//! that resumes the run. The runner's side runs against the fake pwsh (tests/fake-pwsh/pwsh,
//! POSIX sh); one Ctrl-C test runs in the real pwsh, whose own handling of SIGINT it needs.

use crate::common;

use calperm::records::Record;
use common::{Sandbox, pwsh};
use std::time::{Duration, Instant};

const KILLED_AFTER_THREE: &str = r#"
record '{"type":"start","script":"grant","monitor":"Monitor","accessRights":"Reviewer","calpermVersion":"0.1.0","total":5}'
mailbox anna@contoso.com added
mailbox bert@contoso.com updated
kill -9 $$
mailbox carl@contoso.com added
record '{"type":"end","exitCode":0}'
"#;

#[test]
fn a_killed_pwsh_is_exit_4_with_every_record_journaled_and_the_resume_command() {
    let sandbox = Sandbox::new();
    sandbox.fake_grant(KILLED_AFTER_THREE);
    let journal = sandbox.file("j.jsonl");
    let output = sandbox
        .fake_cmd()
        .args([
            "run",
            "grant",
            "--monitor",
            "monitor@contoso.com",
            "--journal",
        ])
        .arg(&journal)
        .output()
        .unwrap();
    let err = common::stderr(&output);
    assert_eq!(output.status.code(), Some(4), "{err}");

    let records = common::records(&journal);
    let mailboxes: Vec<&str> = common::mailboxes(&records)
        .iter()
        .map(|m| m.mailbox.as_str())
        .collect();
    assert_eq!(records.len(), 3, "{records:?}");
    assert_eq!(mailboxes, ["anna@contoso.com", "bert@contoso.com"]);

    assert!(
        err.contains("pwsh was killed by signal 9 (SIGKILL)"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "3 records were received and are all in the journal {}",
            journal.display()
        )),
        "{err}"
    );
    let resume = format!(
        "hint: resume with: calperm --templates {} run grant --monitor monitor@contoso.com --resume {}",
        sandbox.templates().display(),
        journal.display()
    );
    assert!(err.contains(&resume), "expected {resume:?} in:\n{err}");
    assert!(
        sandbox.leftovers().is_empty(),
        "left behind: {:?}",
        sandbox.leftovers()
    );
    // The partial report still went out.
    assert!(common::stdout(&output).contains("bert@contoso.com"));
}

#[test]
fn the_resume_command_really_resumes() {
    let sandbox = Sandbox::new();
    let output = sandbox.run_fake_grant(KILLED_AFTER_THREE);
    let journal = sandbox.file("j.jsonl");
    assert_eq!(output.status.code(), Some(4));

    // A script that reports which mailboxes it was told to skip (`{{list …}}` renders them as
    // single-quoted words, which sh reads as PowerShell does).
    sandbox.fake_grant(
        r#"
record '{"type":"start","script":"grant"}'
set -- {{list resume_done}}
mailbox resume@contoso.com added "$*"
record '{"type":"end","exitCode":0}'
"#,
    );

    let err = common::stderr(&output);
    let command = err
        .lines()
        .find_map(|l| l.strip_prefix("hint: resume with: calperm "))
        .expect("a resume command");
    let args: Vec<&str> = command.split(' ').collect();
    let mut resumed = assert_cmd::Command::from_std(common::calperm_std());
    resumed
        .current_dir(sandbox.work())
        .env("TMPDIR", sandbox.tmp())
        .env("CALPERM_PWSH", sandbox.fake_pwsh())
        .args(&args)
        .assert()
        .success();
    let records = common::records(&journal);
    assert_eq!(records.len(), 6, "3 before + 3 resumed: {records:?}");
    let Record::Mailbox(resumed) = &records[4] else {
        panic!("{records:?}")
    };
    assert_eq!(
        resumed.message.as_deref(),
        Some("anna@contoso.com, bert@contoso.com")
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_lets_pwsh_stop_then_cleans_up_and_exits_4_with_the_resume_command() {
    let sandbox = Sandbox::new();
    sandbox.fake_grant(
        r#"
record '{"type":"start","script":"grant","total":3}'
mailbox anna@contoso.com added
pause 60
mailbox bert@contoso.com added
record '{"type":"end","exitCode":0}'
"#,
    );
    ctrl_c(&sandbox, sandbox.fake_command());
}

#[cfg(unix)]
#[test]
fn ctrl_c_lets_the_real_pwsh_stop_then_cleans_up_and_exits_4_with_the_resume_command() {
    let Some(_) = pwsh() else { return };
    let sandbox = Sandbox::new();
    sandbox.grant(
        r#"
Out-Record '{"type":"start","script":"grant","total":3}'
Out-Mailbox 'anna@contoso.com' 'added'
Start-Sleep -Seconds 60
Out-Mailbox 'bert@contoso.com' 'added'
Out-Record '{"type":"end","exitCode":0}'
"#,
    );
    ctrl_c(&sandbox, sandbox.command());
}

/// Runs `command` (calperm with the grant override) in its own process group and sends Ctrl-C
/// after the first mailbox record.
#[cfg(unix)]
fn ctrl_c(sandbox: &Sandbox, mut command: std::process::Command) {
    use std::os::unix::process::CommandExt;
    let journal = sandbox.file("j.jsonl");
    // Its own process group, like a terminal's foreground job: Ctrl-C reaches calperm and pwsh.
    let child = command
        .args(["run", "grant", "--journal"])
        .arg(&journal)
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let group = child.id() as i32;
    common::wait_for(Duration::from_secs(60), "the first mailbox record", || {
        std::fs::read_to_string(&journal).is_ok_and(|j| j.lines().count() == 2)
    });
    let script = sandbox.leftovers();
    assert_eq!(
        script.len(),
        1,
        "the temp script exists while pwsh runs: {script:?}"
    );
    let interrupted = Instant::now();
    // SAFETY: kill(2) with a process group we created; no memory is involved.
    assert_eq!(unsafe { libc::kill(-group, libc::SIGINT) }, 0);

    let output = child.wait_with_output().unwrap();
    let err = common::stderr(&output);
    assert!(
        interrupted.elapsed() < Duration::from_secs(30),
        "pwsh did not stop on Ctrl-C"
    );
    assert_eq!(output.status.code(), Some(4), "{err}");
    assert!(
        err.contains("calperm: interrupted; waiting for pwsh to stop"),
        "{err}"
    );
    assert!(
        err.contains("calperm: error: interrupted; 2 records were received"),
        "{err}"
    );
    assert!(
        err.contains(&format!("--resume {}", journal.display())),
        "{err}"
    );
    assert_eq!(common::journal(&journal).len(), 2);
    assert!(
        sandbox.leftovers().is_empty(),
        "left behind: {:?}",
        sandbox.leftovers()
    );
}

/// SIGINT to calperm alone (not its process group, as `kill -INT` does): calperm passes the
/// interrupt on to pwsh, which stops at once, and no process of the run is left.
#[cfg(target_os = "linux")]
#[test]
fn sigint_to_calperm_alone_is_passed_on_to_pwsh() {
    signal_to_calperm_alone(libc::SIGINT);
}

/// SIGTERM and SIGHUP (a closed terminal, a service manager) stop the run as Ctrl-C does.
#[cfg(target_os = "linux")]
#[test]
fn sigterm_and_sighup_to_calperm_stop_pwsh_as_ctrl_c_does() {
    signal_to_calperm_alone(libc::SIGTERM);
    signal_to_calperm_alone(libc::SIGHUP);
}

#[cfg(target_os = "linux")]
fn signal_to_calperm_alone(signal: libc::c_int) {
    let sandbox = Sandbox::new();
    sandbox.fake_grant(
        r#"
record '{"type":"start","script":"grant","total":2}'
mailbox anna@contoso.com added
pause 60
mailbox bert@contoso.com added
record '{"type":"end","exitCode":0}'
"#,
    );
    let journal = sandbox.file("j.jsonl");
    let child = sandbox
        .fake_command()
        .args(["run", "grant", "--journal"])
        .arg(&journal)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_for(Duration::from_secs(60), "the first mailbox record", || {
        std::fs::read_to_string(&journal).is_ok_and(|j| j.lines().count() == 2)
    });
    let sent = Instant::now();
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    let output = child.wait_with_output().unwrap();
    let err = common::stderr(&output);
    assert!(
        sent.elapsed() < Duration::from_secs(20),
        "signal {signal}: pwsh was not interrupted: {err}"
    );
    assert_eq!(output.status.code(), Some(4), "signal {signal}: {err}");
    assert!(
        err.contains("calperm: error: interrupted; 2 records were received"),
        "{err}"
    );
    assert_eq!(common::records(&journal).len(), 2);
    common::wait_for(Duration::from_secs(5), "the fake pwsh to be gone", || {
        sandbox.fake_processes().is_empty()
    });
    assert!(sandbox.leftovers().is_empty(), "{:?}", sandbox.leftovers());
}

/// A script that declares `-AwaitAck` for the fake pwsh: an intent, then (acknowledged) the
/// change, a file in `changed/`, then the mailbox record, for `count` mailboxes.
const ACKED_CHANGES: &str = r#"
# Declares [switch] $AwaitAck, so calperm acknowledges each intent.
record '{"type":"start","script":"grant"}'
mkdir -p changed
i=1
while [ "$i" -le COUNT ]; do
    intent "m$i@contoso.com"
    touch "changed/m$i@contoso.com"
    mailbox "m$i@contoso.com" added
    i=$((i + 1))
done
record '{"type":"end","exitCode":0}'
"#;

/// The mailboxes the fake script changed (files in `work/changed`).
fn changed(sandbox: &Sandbox) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(sandbox.file("changed"))
        .map(|dir| {
            dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(unix)]
#[test]
fn every_change_waits_for_its_intent_to_be_journaled() {
    let sandbox = Sandbox::new();
    let output = sandbox.run_fake_grant(&ACKED_CHANGES.replace("COUNT", "50"));
    let journal = sandbox.file("j.jsonl");
    assert_eq!(output.status.code(), Some(0), "{}", common::stderr(&output));
    assert_eq!(changed(&sandbox).len(), 50);
    let records = common::records(&journal);
    // Each intent is journaled before its mailbox record.
    for m in common::mailboxes(&records) {
        let intent = records
            .iter()
            .position(|r| matches!(r, Record::Intent(i) if i.mailbox == m.mailbox));
        let done = records
            .iter()
            .position(|r| matches!(r, Record::Mailbox(d) if d.mailbox == m.mailbox));
        assert!(intent < done, "{}: {records:?}", m.mailbox);
    }
}

/// The journal stops accepting writes mid-run (a FIFO whose reader goes away, as a full disk
/// would): the script gets no acknowledgement and makes no change the journal does not name.
/// The fake ignores the interrupt calperm also sends (as on Windows, where there is none), so
/// the acknowledgement alone must stop it.
#[cfg(target_os = "linux")]
#[test]
fn a_journal_write_failure_stops_the_script_before_its_next_change() {
    use std::io::BufRead;
    const KEEP: usize = 20;
    let sandbox = Sandbox::new();
    sandbox.fake_grant(&ACKED_CHANGES.replace("COUNT", "500"));
    let fifo = sandbox.file("journal.fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let reader_path = fifo.clone();
    // What reached the journal before it failed.
    let reader = std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(std::fs::File::open(&reader_path).unwrap());
        let mut kept = String::new();
        let mut intents = 0;
        while intents < KEEP {
            let mut line = String::new();
            if lines.read_line(&mut line).unwrap() == 0 {
                break;
            }
            intents += usize::from(line.contains("\"type\":\"intent\""));
            kept.push_str(&line);
        }
        kept.push_str(&String::from_utf8_lossy(lines.buffer()));
        kept
        // Dropping the reader closes the FIFO: the next write fails.
    });
    let output = sandbox
        .fake_cmd()
        .env("FAKE_PWSH_IGNORE_INTERRUPT", "1")
        .args(["run", "grant", "--journal"])
        .arg(&fifo)
        .output()
        .unwrap();
    let kept = reader.join().unwrap();
    let err = common::stderr(&output);
    assert_eq!(output.status.code(), Some(4), "{err}");
    assert!(err.contains("the journal could not be written"), "{err}");
    assert!(
        err.contains("no change was made after the journal failed"),
        "{err}"
    );
    let journaled: std::collections::BTreeSet<String> = kept
        .lines()
        .filter_map(|l| match serde_json::from_str::<Record>(l) {
            Ok(Record::Intent(i)) => Some(i.mailbox),
            _ => None,
        })
        .collect();
    let changed = changed(&sandbox);
    assert!(changed.len() >= KEEP - 1, "{changed:?}");
    assert!(changed.len() < 500, "the script ran on: {}", changed.len());
    let unjournaled: Vec<&String> = changed.difference(&journaled).collect();
    assert!(
        unjournaled.is_empty(),
        "changed without a journaled intent: {unjournaled:?}"
    );
    assert!(sandbox.fake_processes().is_empty());
}

/// A run stopped while writing a record leaves half a line at the journal's end; resuming
/// removes it (it was never acknowledged) instead of gluing the next record onto it.
#[cfg(unix)]
#[test]
fn a_resumed_journal_with_a_cut_off_last_line_is_repaired_not_glued() {
    let sandbox = Sandbox::new();
    sandbox.fake_grant(
        r#"
record '{"type":"start","script":"grant","monitor":"Monitor","accessRights":"Reviewer","calpermVersion":"0.1.0"}'
for m in anna bert carl dora emil; do
    mailbox "$m@contoso.com" added
done
record '{"type":"end","exitCode":0}'
"#,
    );
    let journal = sandbox.file("j.jsonl");
    sandbox
        .fake_cmd()
        .args(["run", "grant", "--journal"])
        .arg(&journal)
        .assert()
        .success();
    let full = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = full.lines().collect();
    assert_eq!(lines.len(), 7, "{full}");
    // The start, two mailboxes, then half of the third.
    let cut = format!(
        "{}\n{}\n{}\n{}",
        lines[0],
        lines[1],
        lines[2],
        &lines[3][..lines[3].len() / 2]
    );
    std::fs::write(&journal, &cut).unwrap();
    let output = sandbox
        .fake_cmd()
        .args(["run", "grant", "--resume"])
        .arg(&journal)
        .output()
        .unwrap();
    let err = common::stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(err.contains("cut off mid-write"), "{err}");
    // Every line is a record again: 3 kept, 7 from the resumed run.
    let records = common::records(&journal);
    assert_eq!(records.len(), 10, "{records:?}");
    assert!(matches!(records[3], Record::Start(_)), "{records:?}");
}
