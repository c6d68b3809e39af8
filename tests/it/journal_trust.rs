//! Journals steer runs (`--resume` skips what they show done, `--from-journal` writes rights back
//! from them), so a journal of another run, an edited one or a self-contradicting one is refused
//! before anything changes (exit 2, saying what differs). And a plain revoke records what it
//! removes, so its own journal undoes it. Real pwsh against the simulated tenant.

use crate::common;

use common::tenant::{SimTenant, describe, monitor_on_default_calendars, records};
use serde_json::Value;
use std::path::Path;

const A: &str = "monitor@contoso.com";
const B: &str = "megan.bowen@contoso.com";

fn lines(path: &Path) -> Vec<Value> {
    common::journal(path)
}

fn write_lines(path: &Path, records: &[Value]) {
    let text: String = records
        .iter()
        .map(|r| format!("{}\n", serde_json::to_string(r).unwrap()))
        .collect();
    std::fs::write(path, text).unwrap();
}

fn stderr_has(out: &std::process::Output, text: &str) {
    let stderr = common::stderr(out);
    assert!(
        stderr.contains(text),
        "stderr lacks {text:?}\n{}",
        describe(out)
    );
}

#[test]
fn resume_refuses_another_monitors_journal() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let out = t.run(&["grant", "--monitor", A, "--journal", "a.jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let before = t.now();

    // Another monitor: refused before anything runs.
    let out = t.run(&["grant", "--monitor", B, "--resume", "a.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    stderr_has(&out, "is of the monitor monitor@contoso.com");
    // Another role.
    let out = t.run(&[
        "grant",
        "--monitor",
        A,
        "--access-rights",
        "Editor",
        "--resume",
        "a.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    stderr_has(&out, "not of --access-rights Editor");
    // Another script.
    let out = t.run(&[
        "setup",
        "--monitor",
        A,
        "--show-secret",
        "--resume",
        "a.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    stderr_has(&out, "is of a grant run, not of setup");
    // A real tenant for a simulated run's journal.
    let out = common::calperm()
        .current_dir(t.file(""))
        .args([
            "run",
            "grant",
            "--monitor",
            A,
            "--resume",
            "a.jsonl",
            "--pwsh",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    stderr_has(&out, "this run is against a real tenant");
    assert_eq!(t.now(), before, "a refused resume changed the tenant");

    // The same address in another tenant (the tenant's ID changed under it): the script sees it
    // once connected, and stops before any change.
    let mut state = t.now();
    state["tenantId"] = Value::from("11111111-2222-3333-4444-555555555555");
    std::fs::write(t.file("state.json"), serde_json::to_string(&state).unwrap()).unwrap();
    let out = t.run_json(&["grant", "--monitor", A, "--resume", "a.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let fatal = records(&out)
        .into_iter()
        .find(|r| r["type"] == "fatal")
        .unwrap();
    assert_eq!(fatal["kind"], "journal-mismatch", "{fatal}");
    assert!(
        fatal["message"].as_str().unwrap().contains("the tenant"),
        "{fatal}"
    );
    assert!(
        !records(&out).iter().any(|r| r["type"] == "mailbox"),
        "no mailbox may be visited"
    );
}

#[test]
fn from_journal_refuses_another_monitor() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    for (monitor, journal) in [(B, "b.jsonl"), (A, "a.jsonl")] {
        let out = t.run(&["grant", "--monitor", monitor, "--journal", journal]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    }
    let b_before = monitor_on_default_calendars(&t.now(), B);
    let out = t.run(&["revoke", "--monitor", B, "--from-journal", "a.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    stderr_has(
        &out,
        "is of the monitor monitor@contoso.com, not of --monitor megan.bowen@contoso.com",
    );
    assert_eq!(
        monitor_on_default_calendars(&t.now(), B),
        b_before,
        "B's entries changed"
    );

    // The journal's own monitor undoes it, and B keeps everything.
    let out = t.run(&["revoke", "--monitor", A, "--from-journal", "a.jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(monitor_on_default_calendars(&t.now(), B), b_before);
}

/// A grant journal of A on the demo tenant, with isaiah's AvailabilityOnly raised to Reviewer.
/// Edits below change the `mailbox` records (the result); the `intent` record before each stays.
fn granted(t: &SimTenant) -> Vec<Value> {
    let out = t.run(&["grant", "--monitor", A, "--journal", "g.jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let journal = lines(&t.file("g.jsonl"));
    let isaiah = journal
        .iter()
        .find(|r| r["type"] == "mailbox" && r["mailbox"] == "isaiah.langer@contoso.com")
        .unwrap();
    assert_eq!(isaiah["outcome"], "updated", "{isaiah}");
    assert_eq!(isaiah["previous"], serde_json::json!(["AvailabilityOnly"]));
    journal
}

#[test]
fn restore_never_raises_above_what_the_grant_found() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let mut journal = granted(&t);
    let after_grant = t.now();
    for record in journal.iter_mut() {
        if record["type"] == "mailbox" && record["mailbox"] == "isaiah.langer@contoso.com" {
            record["previous"] = serde_json::json!(["Owner"]);
        }
    }
    write_lines(&t.file("edited.jsonl"), &journal);
    let out = t.run(&["revoke", "--monitor", A, "--from-journal", "edited.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    stderr_has(&out, "isaiah.langer@contoso.com");
    assert_eq!(t.now(), after_grant, "nothing may change");
    assert_eq!(
        monitor_on_default_calendars(&t.now(), A)["isaiah.langer@contoso.com"].as_deref(),
        Some("Reviewer")
    );

    // An 'added' that claims rights above the role the grant gave is refused as well.
    let mut journal = granted(&SimTenant::demo());
    for record in journal.iter_mut() {
        if record["type"] == "mailbox" && record["mailbox"] == "adele.vance@contoso.com" {
            record["rights"] = serde_json::json!(["Owner"]);
        }
    }
    write_lines(&t.file("edited2.jsonl"), &journal);
    let out = t.run(&["revoke", "--monitor", A, "--from-journal", "edited2.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert_eq!(t.now(), after_grant);
}

#[test]
fn contradicting_journal_is_refused() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let journal = granted(&t);
    let after_grant = t.now();

    // The same mailbox twice, with two different states before the grant.
    let mut twice = journal.clone();
    let mut copy = journal
        .iter()
        .find(|r| r["type"] == "mailbox" && r["mailbox"] == "isaiah.langer@contoso.com")
        .unwrap()
        .clone();
    copy["previous"] = serde_json::json!(["LimitedDetails"]);
    twice.insert(twice.len() - 1, copy);
    write_lines(&t.file("twice.jsonl"), &twice);
    let out = t.run(&["revoke", "--monitor", A, "--from-journal", "twice.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    stderr_has(&out, "contradicts itself for isaiah.langer@contoso.com");

    // Two runs for different monitors in one journal.
    let mut mixed = journal.clone();
    let mut other = journal
        .iter()
        .find(|r| r["type"] == "monitor")
        .unwrap()
        .clone();
    other["guid"] = Value::from("00000000-0000-4000-8000-00000000dead");
    other["primarySmtpAddress"] = Value::from(B);
    mixed.push(other);
    write_lines(&t.file("mixed.jsonl"), &mixed);
    let out = t.run(&["grant", "--monitor", A, "--resume", "mixed.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    stderr_has(&out, "different monitors or tenants");

    // A journal from before run identities: refused, with what to do instead.
    let old: Vec<Value> = journal
        .iter()
        .cloned()
        .map(|mut r| {
            if let Some(o) = r.as_object_mut() {
                o.remove("calpermVersion");
            }
            r
        })
        .collect();
    write_lines(&t.file("old.jsonl"), &old);
    let out = t.run(&["revoke", "--monitor", A, "--from-journal", "old.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    stderr_has(&out, "did not record which run it belongs to");
    assert_eq!(t.now(), after_grant, "nothing may change");
}

#[test]
fn plain_revoke_records_removed_rights_and_can_be_undone() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let out = t.run(&["grant", "--monitor", A]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let after_grant = monitor_on_default_calendars(&t.now(), A);
    assert_eq!(
        after_grant["grady.archie@contoso.com"].as_deref(),
        Some("Editor")
    );

    let out = t.run_json(&["revoke", "--monitor", A, "--journal", "r.jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let grady = records(&out)
        .into_iter()
        .find(|r| r["mailbox"] == "grady.archie@contoso.com")
        .unwrap();
    assert_eq!(grady["outcome"], "removed");
    assert_eq!(grady["previous"], serde_json::json!(["Editor"]), "{grady}");
    assert!(
        monitor_on_default_calendars(&t.now(), A)
            .values()
            .all(Option::is_none)
    );

    // Restoring never gives more than --access-rights: Editor was removed from grady.
    let out = t.run(&["revoke", "--monitor", A, "--from-journal", "r.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    stderr_has(&out, "grady.archie@contoso.com (Editor)");

    let out = t.run(&[
        "revoke",
        "--monitor",
        A,
        "--from-journal",
        "r.jsonl",
        "--access-rights",
        "Editor",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        monitor_on_default_calendars(&t.now(), A),
        after_grant,
        "the revoke was undone exactly"
    );
}
