//! `calperm run`: records are read, counted, journaled and reported; everything else pwsh prints
//! reaches the user unchanged on stderr. Scripts come from template overrides run by the fake
//! pwsh (tests/fake-pwsh/pwsh, POSIX sh), so these tests depend neither on the real templates
//! nor on PowerShell: they run wherever `cargo test` does (the module is Unix-only, as sh is).

use crate::common;

use calperm::records::{Outcome, Record};
use common::Sandbox;
use predicates::prelude::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

const THREE_MAILBOXES: &str = r#"
record '{"type":"start","script":"grant","total":3}'
echo 'plain output: Календарь für Jürgen'
echo '{"type":"mailbox","mailbox":"unmarked@contoso.com","outcome":"failed"}'
record '{"type":"monitor","identity":"Monitor","displayName":"Monitor","primarySmtpAddress":"monitor@contoso.com"}'
record '{"type":"mailbox","mailbox":"anna@contoso.com","outcome":"added","folder":"Calendar","rights":["Reviewer"],"retries":2,"calls":2}'
record '{"type":"mailbox","mailbox":"bert@contoso.com","outcome":"kept-higher","folder":"Kalender","previous":["Editor"],"rights":["Editor"],"calls":1}'
record '{"type":"mailbox","mailbox":"carl@contoso.com","outcome":"unchanged","folder":"Calendar","previous":["Reviewer"],"rights":["Reviewer"],"calls":1}'
record '{"type":"end","exitCode":0}'
"#;

#[test]
fn records_are_counted_and_reported_in_a_summary_and_a_table() {
    let sandbox = Sandbox::new();
    let output = sandbox.run_fake_grant(THREE_MAILBOXES);
    let journal = sandbox.file("j.jsonl");
    let (out, err) = (common::stdout(&output), common::stderr(&output));
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{out}\nstderr:\n{err}"
    );

    // Summary: counts in a fixed order (added, unchanged, kept-higher), totals, journal.
    let line_of = |needle: &str| {
        out.lines()
            .position(|l| l.trim_start().starts_with(needle))
            .unwrap_or(usize::MAX)
    };
    for (name, count) in [
        ("added", 1),
        ("unchanged", 1),
        ("kept-higher", 1),
        ("mailboxes", 3),
        ("retries", 2),
    ] {
        let re = regex::Regex::new(&format!(r"(?m)^\s+{name}\s+{count}$")).unwrap();
        assert!(re.is_match(&out), "{name} {count} missing in:\n{out}");
    }
    assert!(
        line_of("added") < line_of("unchanged") && line_of("unchanged") < line_of("kept-higher"),
        "{out}"
    );
    assert!(
        !out.contains("failed"),
        "the unmarked JSON line is not a record:\n{out}"
    );
    assert!(
        out.contains("monitor: Monitor <monitor@contoso.com>"),
        "{out}"
    );
    assert!(
        out.contains(&format!("journal: {}", journal.display())),
        "{out}"
    );

    // Table: mailbox, outcome, folder, previous → rights.
    let row =
        regex::Regex::new(r"(?m)^\s+bert@contoso\.com\s+kept-higher\s+Kalender\s+Editor → Editor$")
            .unwrap();
    assert!(row.is_match(&out), "{out}");
    assert!(out.contains("none → Reviewer"), "{out}");

    // Other output went to stderr, byte for byte, and not to stdout.
    assert!(
        err.contains("plain output: Календарь für Jürgen\n"),
        "{err}"
    );
    assert!(
        err.contains(
            "{\"type\":\"mailbox\",\"mailbox\":\"unmarked@contoso.com\",\"outcome\":\"failed\"}\n"
        ),
        "{err}"
    );
    assert!(
        !out.contains("plain output") && !out.contains("##calperm:"),
        "{out}"
    );

    let records = common::records(&journal);
    assert!(
        matches!(
            records.as_slice(),
            [
                Record::Start(_),
                Record::Monitor(_),
                Record::Mailbox(_),
                Record::Mailbox(_),
                Record::Mailbox(_),
                Record::End(_)
            ]
        ),
        "{records:?}"
    );
    let mailboxes = common::mailboxes(&records);
    assert_eq!(mailboxes[0].mailbox, "anna@contoso.com");
    assert_eq!(mailboxes[0].retries, 2);
    assert_eq!(mailboxes[1].outcome, Outcome::KeptHigher);
    assert_eq!(
        mailboxes[1].previous.as_deref(),
        Some(&["Editor".to_string()][..])
    );
}

#[test]
fn the_default_journal_is_new_in_the_current_directory_and_named_in_the_summary() {
    let sandbox = Sandbox::new();
    sandbox.fake_grant(THREE_MAILBOXES);
    let output = sandbox.fake_cmd().args(["run", "grant"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", common::stderr(&output));
    let names: Vec<String> = std::fs::read_dir(sandbox.work())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        regex::Regex::new(r"^calperm-journal-\d{8}T\d{6}Z\.jsonl$")
            .unwrap()
            .is_match(&names[0]),
        "{names:?}"
    );
    let path = sandbox.work().join(&names[0]);
    assert!(common::stdout(&output).contains(&format!("journal: {}", path.display())));
    assert_eq!(common::journal(&path).len(), 6);
}

#[test]
fn a_resumed_run_appends_to_the_journal_it_resumes() {
    let sandbox = Sandbox::new();
    sandbox.fake_grant(THREE_MAILBOXES);
    let journal = sandbox.file("earlier.jsonl");
    std::fs::write(
        &journal,
        concat!(
            "{\"type\":\"start\",\"script\":\"grant\",\"monitor\":\"Monitor\",\"accessRights\":\"Reviewer\",\"calpermVersion\":\"0.1.0\"}\n",
            "{\"type\":\"mailbox\",\"mailbox\":\"anna@contoso.com\",\"outcome\":\"added\"}\n",
        ),
    )
    .unwrap();
    sandbox
        .fake_cmd()
        .args(["run", "grant", "--resume"])
        .arg(&journal)
        .assert()
        .success();
    let records = common::records(&journal);
    assert_eq!(records.len(), 8, "2 earlier + 6 new: {records:?}");
    assert!(matches!(records[2], Record::Start(_)), "{records:?}");
}

#[test]
fn json_format_writes_each_record_as_one_json_line_on_stdout() {
    let sandbox = Sandbox::new();
    sandbox.fake_grant(THREE_MAILBOXES);
    let journal = sandbox.file("j.jsonl");
    let output = sandbox
        .fake_cmd()
        .args(["run", "grant", "--format", "json", "--journal"])
        .arg(&journal)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let out = common::stdout(&output);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(lines[3]["mailbox"], "bert@contoso.com");
    assert_eq!(lines[3]["previous"], serde_json::json!(["Editor"]));
    assert_eq!(
        lines,
        common::journal(&journal),
        "stdout and journal hold the same records"
    );
    // The summary went to stderr.
    let err = common::stderr(&output);
    assert!(
        err.contains("mailboxes") && err.contains(&format!("journal: {}", journal.display())),
        "{err}"
    );
}

#[test]
fn json_records_and_the_journal_are_written_as_they_arrive() {
    let sandbox = Sandbox::new();
    sandbox.fake_grant(
        r#"
record '{"type":"start","script":"grant"}'
pause 4
record '{"type":"end","exitCode":0}'
"#,
    );
    let journal = sandbox.file("j.jsonl");
    let mut child = sandbox
        .fake_command()
        .args(["run", "grant", "--format", "json", "--journal"])
        .arg(&journal)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("\"type\":\"start\""), "{first}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first record arrived only after the script ended"
    );
    assert_eq!(
        common::journal(&journal).len(),
        1,
        "the journal has the record already"
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn csv_format_writes_a_header_and_one_row_per_mailbox() {
    let sandbox = Sandbox::new();
    sandbox.fake_grant(THREE_MAILBOXES);
    let output = sandbox
        .fake_cmd()
        .args(["run", "grant", "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let mut reader = csv::Reader::from_reader(&output.stdout[..]);
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        &header[..4],
        ["mailbox", "outcome", "displayName", "recipientType"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[1][column("mailbox")], "bert@contoso.com");
    assert_eq!(&rows[1][column("outcome")], "kept-higher");
    assert_eq!(&rows[1][column("folder")], "Kalender");
    assert_eq!(&rows[1][column("previous")], "Editor");
    assert_eq!(&rows[0][column("retries")], "2");
    assert!(
        common::stderr(&output).contains("journal:"),
        "summary on stderr"
    );
}

#[test]
fn report_file_gets_the_same_report() {
    let sandbox = Sandbox::new();
    sandbox.fake_grant(THREE_MAILBOXES);
    for format in ["table", "json", "csv"] {
        let report = sandbox.file(&format!("report.{format}"));
        let journal = sandbox.file(&format!("j-{format}.jsonl"));
        let output = sandbox
            .fake_cmd()
            .args(["run", "grant", "--format", format, "--report"])
            .arg(&report)
            .arg("--journal")
            .arg(&journal)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{format}");
        assert_eq!(
            std::fs::read_to_string(&report).unwrap(),
            common::stdout(&output),
            "{format}"
        );
    }
}

#[test]
fn an_unwritable_report_file_fails_before_anything_runs() {
    let sandbox = Sandbox::new();
    sandbox.fake_grant("record '{\"type\":\"start\",\"script\":\"grant\"}'\ntouch ran.txt\n");
    sandbox
        .fake_cmd()
        .args(["run", "grant", "--report", "/nonexistent/dir/report.txt"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/dir/report.txt"));
    assert!(!sandbox.file("ran.txt").exists(), "pwsh ran");
}

#[test]
fn malformed_record_lines_are_quoted_and_make_the_run_exit_4() {
    let sandbox = Sandbox::new();
    let output = sandbox.run_fake_grant(
        r#"
record '{"type":"start","script":"grant"}'
record '{"type":"mailbox","mailbox":"anna@contoso.com","outcome":"added"}'
record '{"type":"mailbox","mailbox":'
record 'not json at all'
record '{"type":"mailbox","mailbox":"bert@contoso.com","outcome":"added"}'
record '{"type":"end","exitCode":0}'
"#,
    );
    let journal = sandbox.file("j.jsonl");
    let err = common::stderr(&output);
    assert_eq!(output.status.code(), Some(4), "{err}");
    let warning = regex::Regex::new(
        r#"calperm: warning: unreadable record on output line 3: ##calperm:[0-9a-f]{16}## \{"type":"mailbox","mailbox":\n"#,
    )
    .unwrap();
    assert!(warning.is_match(&err), "{err}");
    assert!(
        err.contains("unreadable record on output line 4: ##calperm:"),
        "{err}"
    );
    assert!(err.contains("2 output lines could not be parsed"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The readable records were all kept, including the one after the bad lines.
    assert_eq!(common::journal(&journal).len(), 4);
    assert!(common::stdout(&output).contains("bert@contoso.com"));
}

#[test]
fn the_command_line_is_the_documented_one_and_what_if_passes_whatif() {
    let sandbox = Sandbox::new();
    sandbox.fake_grant(
        r#"
record '{"type":"start","script":"grant"}'
mailbox args@contoso.com would-add "$PWSH_ARGS"
mailbox whatif@contoso.com would-add "$WhatIf"
record '{"type":"end","exitCode":0}'
"#,
    );
    let run = |extra: &[&str]| {
        let journal = sandbox.file("j.jsonl");
        let _ = std::fs::remove_file(&journal);
        let output = sandbox
            .fake_cmd()
            .args(["run", "grant"])
            .args(extra)
            .arg("--journal")
            .arg(&journal)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", common::stderr(&output));
        let records = common::journal(&journal);
        (
            records[1]["message"].as_str().unwrap().to_string(),
            records[2]["message"].as_str().unwrap().to_string(),
        )
    };

    // Default connection (exo): interactive sign-in, so no -NonInteractive.
    let (args, what_if) = run(&[]);
    let re = regex::Regex::new(r"^-NoLogo\|-NoProfile\|-File\|[^|]*/calperm-[^|/]+\.ps1\|-RecordMarker\|##calperm:[0-9a-f]{16}## $").unwrap();
    assert!(re.is_match(&args), "{args}");
    assert_eq!(what_if, "false");

    let (args, what_if) = run(&["--what-if"]);
    assert!(args.ends_with("## |-WhatIf"), "{args}");
    assert_eq!(what_if, "true");

    // App-only sign-in needs nobody: -NonInteractive.
    let (args, _) = run(&[
        "--connection",
        "exo-app",
        "--app-id",
        "11111111-2222-3333-4444-555555555555",
        "--organization",
        "contoso.onmicrosoft.com",
        "--certificate-thumbprint",
        "ABCDEF0123",
    ]);
    assert!(
        args.starts_with("-NoLogo|-NoProfile|-NonInteractive|-File|"),
        "{args}"
    );
}

#[test]
fn the_temp_script_is_private_while_it_runs_and_gone_afterwards() {
    let sandbox = Sandbox::new();
    sandbox.fake_grant(
        r#"
record '{"type":"start","script":"grant"}'
mailbox mode@contoso.com added "$(ls -l "$PWSH_SCRIPT" | cut -c1-10)"
mailbox path@contoso.com added "$PWSH_SCRIPT"
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
    let records = common::journal(&journal);
    assert_eq!(records[1]["message"], "-rw-------", "mode 0600");
    let path = std::path::PathBuf::from(records[2]["message"].as_str().unwrap());
    assert!(path.starts_with(sandbox.tmp()), "{}", path.display());
    assert!(
        path.file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with(".ps1")
    );
    assert!(!path.exists(), "{} still exists", path.display());
    assert_eq!(sandbox.leftovers(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn a_long_run_is_not_held_up_by_output_nobody_reads() {
    // 20,000 records through the json pipe and 2,000 text lines through stderr: no deadlock.
    let sandbox = Sandbox::new();
    sandbox.fake_grant(
        r#"
record '{"type":"start","script":"grant","total":20000}'
i=0
while [ "$i" -lt 20000 ]; do
    printf '%s{"type":"mailbox","mailbox":"m%d@contoso.com","outcome":"added"}\n' "$RecordMarker" "$i"
    [ $((i % 10)) -ne 0 ] || echo "text line $i"
    i=$((i + 1))
done
record '{"type":"end","exitCode":0}'
"#,
    );
    let output = sandbox
        .fake_cmd()
        .timeout(Duration::from_secs(120))
        .args(["run", "grant", "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(common::stdout(&output).lines().count(), 20_001);
    assert_eq!(common::stderr(&output).matches("text line ").count(), 2_000);
}

#[test]
fn a_prompt_without_a_newline_reaches_the_user_at_once() {
    use std::io::Read;
    let sandbox = Sandbox::new();
    sandbox.fake_grant(
        r#"
record '{"type":"start","script":"grant"}'
printf 'Password for monitor@contoso.com: '
pause 6
echo
record '{"type":"end","exitCode":0}'
"#,
    );
    let mut child = sandbox
        .fake_command()
        .args(["run", "grant", "--journal"])
        .arg(sandbox.file("j.jsonl"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("Password for monitor@contoso.com: ") {
        let n = stderr.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "stderr ended without the prompt: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the prompt came only when the script ended"
    );
    let _ = stderr.read_to_end(&mut seen);
    assert!(child.wait().unwrap().success());
}

/// 1,200 mailboxes, every 50th failed with a message of its own length, the rest added.
const MANY_MAILBOXES: &str = r#"
record '{"type":"start","script":"grant","total":1200}'
record '{"type":"monitor","identity":"Monitor","displayName":"Monitor","primarySmtpAddress":"monitor@contoso.com"}'
i=0
while [ "$i" -lt 1200 ]; do
    if [ $((i % 50)) -eq 7 ]; then
        dots=''
        while [ "${#dots}" -lt $((i % 13)) ]; do dots="$dots."; done
        record "{\"type\":\"mailbox\",\"mailbox\":\"user$i@contoso.com\",\"outcome\":\"failed\",\"folder\":\"Calendar\",\"kind\":\"access-denied\",\"message\":\"Access is denied$dots\"}"
    else
        record "{\"type\":\"mailbox\",\"mailbox\":\"user$i@contoso.com\",\"outcome\":\"added\",\"folder\":\"Calendar\",\"rights\":[\"Reviewer\"]}"
    fi
    i=$((i + 1))
done
record '{"type":"end","exitCode":1}'
"#;

/// The table from its header on.
fn table_of(out: &str) -> &str {
    &out[out
        .find("  MAILBOX")
        .unwrap_or_else(|| panic!("no table in:\n{out}"))..]
}

/// Past 500 mailboxes the table lists the failed ones, read back from the journal: exactly
/// this run's (a resumed journal's earlier failures are not), as the same table the run
/// prints when its journal cannot be read back (`/dev/null`) and keeps the rows itself.
#[test]
fn a_large_table_lists_this_runs_failures_from_the_journal() {
    let sandbox = Sandbox::new();
    sandbox.fake_grant(MANY_MAILBOXES);
    let journal = sandbox.file("earlier.jsonl");
    std::fs::write(
        &journal,
        concat!(
            "{\"type\":\"start\",\"script\":\"grant\",\"monitor\":\"Monitor\",\"accessRights\":\"Reviewer\",\"calpermVersion\":\"0.1.0\"}\n",
            "{\"type\":\"mailbox\",\"mailbox\":\"earlier-failure-with-a-long-address@contoso.com\",\"outcome\":\"failed\",\"message\":\"from the earlier run\"}\n",
        ),
    )
    .unwrap();
    let resumed = sandbox
        .fake_cmd()
        .args(["run", "grant", "--resume"])
        .arg(&journal)
        .output()
        .unwrap();
    let kept = sandbox
        .fake_cmd()
        .args(["run", "grant", "--journal", "/dev/null"])
        .output()
        .unwrap();
    for output in [&resumed, &kept] {
        assert_eq!(output.status.code(), Some(1), "{}", common::stderr(output));
    }
    let out = common::stdout(&resumed);
    assert!(
        out.contains("1200 mailboxes: 1176 not listed below"),
        "{out}"
    );
    let table = table_of(&out);
    assert!(!table.contains("earlier"), "{table}");
    let listed: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let failed: Vec<String> = (0..1200)
        .filter(|i| i % 50 == 7)
        .map(|i| format!("user{i}@contoso.com"))
        .collect();
    assert_eq!(listed, failed, "{table}");
    assert!(
        table.contains(
            "  user1107@contoso.com  failed   Calendar          access-denied: Access is denied..\n"
        ),
        "{table}"
    );
    assert_eq!(table, table_of(&common::stdout(&kept)));
}
