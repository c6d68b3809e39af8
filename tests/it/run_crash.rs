//! `calperm run` when pwsh does not end normally: killed mid-run, or interrupted with Ctrl-C.
//! The journal must hold every record that arrived, the temp script must be gone, and the
//! message must name the journal and the command that resumes the run.

use crate::common;

use common::{Sandbox, pwsh};
use std::time::{Duration, Instant};

const KILLED_AFTER_THREE: &str = r#"
Out-Record '{"type":"start","script":"grant","monitor":"Monitor","accessRights":"Reviewer","calpermVersion":"0.1.0","total":5}'
Out-Mailbox 'anna@contoso.com' 'added'
Out-Mailbox 'bert@contoso.com' 'updated'
[System.Diagnostics.Process]::GetCurrentProcess().Kill()
Out-Mailbox 'carl@contoso.com' 'added'
Out-Record '{"type":"end","exitCode":0}'
"#;

#[test]
fn a_killed_pwsh_is_exit_4_with_every_record_journaled_and_the_resume_command() {
    let Some(_) = pwsh() else { return };
    let sandbox = Sandbox::new();
    sandbox.grant(KILLED_AFTER_THREE);
    let journal = sandbox.file("j.jsonl");
    let output = sandbox
        .cmd()
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

    let records = common::journal(&journal);
    let mailboxes: Vec<&str> = records
        .iter()
        .filter_map(|r| r["mailbox"].as_str())
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
    let Some(_) = pwsh() else { return };
    let sandbox = Sandbox::new();
    sandbox.grant(KILLED_AFTER_THREE);
    let journal = sandbox.file("j.jsonl");
    let output = sandbox
        .cmd()
        .args(["run", "grant", "--journal"])
        .arg(&journal)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4));

    // A script that reports which mailboxes it was told to skip.
    sandbox.grant(
        r#"
Out-Record '{"type":"start","script":"grant"}'
Out-Mailbox 'resume@contoso.com' 'added' ($ResumeDone -join ',')
Out-Record '{"type":"end","exitCode":0}'
"#,
    );
    let template = std::fs::read_to_string(sandbox.templates().join("grant.ps1.hbs")).unwrap();
    let with_resume = template.replace(
        "param([string] $RecordMarker = '')",
        "param([string] $RecordMarker = '', [string[]] $ResumeDone = {{array resume_done}})",
    );
    std::fs::write(sandbox.templates().join("grant.ps1.hbs"), with_resume).unwrap();

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
        .args(&args)
        .assert()
        .success();
    let records = common::journal(&journal);
    assert_eq!(records.len(), 6, "3 before + 3 resumed: {records:?}");
    assert_eq!(records[4]["message"], "anna@contoso.com,bert@contoso.com");
}

#[cfg(unix)]
#[test]
fn ctrl_c_lets_pwsh_stop_then_cleans_up_and_exits_4_with_the_resume_command() {
    use std::os::unix::process::CommandExt;
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
    let journal = sandbox.file("j.jsonl");
    // Its own process group, like a terminal's foreground job: Ctrl-C reaches calperm and pwsh.
    let child = sandbox
        .command()
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
