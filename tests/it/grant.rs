//! grant, audit and revoke end to end: the rendered scripts, unchanged, in the real pwsh against
//! the simulated tenant (`calperm run … --simulate`).

use crate::common;

use calperm::records::{MailboxKind, Outcome, Record};
use common::tenant::{
    SimTenant, assert_granted_in_scope, describe, in_scope, mailboxes,
    monitor_on_default_calendars, permissions, typed_outcome_counts,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const MONITOR: &str = "monitor@contoso.com";

#[test]
fn grant_reaches_every_default_calendar_and_a_rerun_changes_nothing() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let before = t.now();
    let first = t.run(&[
        "grant",
        "--monitor",
        MONITOR,
        "--format",
        "json",
        "--journal",
        t.file("j1.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    let after = t.now();

    // Every default calendar in scope now covers Reviewer; the Editor stayed Editor.
    let granted = monitor_on_default_calendars(&after, MONITOR);
    for mailbox in in_scope(&before, MONITOR) {
        let rights = granted.get(&mailbox).cloned().flatten();
        let rights = rights.unwrap_or_else(|| panic!("{mailbox}: no entry for the monitor"));
        assert!(
            [
                "Reviewer",
                "Editor",
                "Owner",
                "PublishingEditor",
                "Author",
                "PublishingAuthor"
            ]
            .contains(&rights.as_str()),
            "{mailbox}: {rights}"
        );
    }
    let had_before = monitor_on_default_calendars(&before, MONITOR);
    for (mailbox, rights) in &had_before {
        if rights.as_deref() == Some("Editor") {
            assert_eq!(
                granted[mailbox].as_deref(),
                Some("Editor"),
                "{mailbox}: an Editor must stay Editor"
            );
        }
    }

    // Nothing else changed: only default calendars, only the monitor's entry.
    let (p0, p1) = (permissions(&before), permissions(&after));
    for (key, entries) in &p1 {
        let old = &p0[key];
        let strip = |v: &Vec<String>| {
            v.iter()
                .filter(|e| !e.starts_with(&format!("{MONITOR}=")))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(old), strip(entries), "{key:?}: other entries changed");
        let is_default = granted.contains_key(&key.0)
            && after["recipients"].as_array().unwrap().iter().any(|r| {
                r["primarySmtpAddress"]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case(&key.0)
                    && r["folders"].as_array().unwrap().iter().any(|f| {
                        f["folderPath"] == key.1.as_str()
                            && f["folderType"] == "Calendar"
                            && key.1.matches('/').count() == 1
                    })
            });
        if !is_default {
            assert_eq!(
                old, entries,
                "{key:?}: a folder that is not a default calendar was touched"
            );
        }
    }

    // The report's counts match the state.
    let records = mailboxes(&first);
    let counts = typed_outcome_counts(&records);
    assert_eq!(counts.get("failed"), None, "{}", describe(&first));
    let added = counts.get("added").copied().unwrap_or(0);
    let newly = in_scope(&before, MONITOR)
        .iter()
        .filter(|m| had_before.get(*m).cloned().flatten().is_none())
        .count();
    assert_eq!(
        added, newly,
        "added = mailboxes that had no entry: {counts:?}"
    );
    assert!(
        counts.get("kept-higher").copied().unwrap_or(0) >= 1,
        "{counts:?}"
    );
    assert!(
        counts.get("updated").copied().unwrap_or(0) >= 1,
        "{counts:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r.outcome == Outcome::Skipped && r.kind == Some(MailboxKind::Monitor)),
        "the monitor's own mailbox is skipped"
    );

    // A second run changes nothing.
    let second = t.run(&[
        "grant",
        "--monitor",
        MONITOR,
        "--format",
        "json",
        "--journal",
        t.file("j2.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(second.status.code(), Some(0), "{}", describe(&second));
    let counts = typed_outcome_counts(&mailboxes(&second));
    for outcome in counts.keys() {
        assert!(
            ["unchanged", "kept-higher", "skipped", "no-calendar"].contains(outcome),
            "rerun: {counts:?}"
        );
    }
    assert_eq!(permissions(&t.now()), p1, "a rerun changed the tenant");
}

#[test]
fn revoke_from_journal_restores_the_state_entry_for_entry() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let before = permissions(&t.now());
    let journal = t.file("grant.jsonl");
    let grant = t.run(&[
        "grant",
        "--monitor",
        MONITOR,
        "--format",
        "json",
        "--journal",
        journal.to_str().unwrap(),
    ]);
    assert_eq!(grant.status.code(), Some(0), "{}", describe(&grant));
    assert_ne!(permissions(&t.now()), before, "the grant changed something");

    let revoke = t.run(&[
        "revoke",
        "--monitor",
        MONITOR,
        "--from-journal",
        journal.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(revoke.status.code(), Some(0), "{}", describe(&revoke));
    let counts = typed_outcome_counts(&mailboxes(&revoke));
    assert!(
        counts.contains_key("removed") && counts.contains_key("restored"),
        "{counts:?}"
    );
    assert_eq!(
        permissions(&t.now()),
        before,
        "the tenant is back to the state before the grant"
    );
}

#[test]
fn ten_percent_throttling_still_grants_everything_and_shows_the_retries() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::edited(|json| {
        json["faults"]["throttleRate"] = 0.1.into();
        json["faults"]["seed"] = 7.into();
    });
    let before = t.now();
    let out = t.run(&[
        "grant",
        "--monitor",
        MONITOR,
        "--format",
        "json",
        "--max-retries",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let records = mailboxes(&out);
    assert!(
        !records.iter().any(|r| r.outcome == Outcome::Failed),
        "{}",
        describe(&out)
    );
    let retries: u32 = records.iter().map(|r| r.retries).sum();
    assert!(retries > 0, "throttling must show as retries in the report");
    let after = t.now();
    assert!(
        after["stats"]["throttled"].as_u64().unwrap() > 0,
        "the sim throttled some calls"
    );
    assert_granted_in_scope(&after, &before, MONITOR, " not granted");
}

#[test]
fn an_unknown_monitor_stops_before_any_change() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let before = permissions(&t.now());
    let out = t.run(&["grant", "--monitor", "nobody@contoso.com"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Exchange's own message (Get-EXOMailbox: ManagementObjectNotFoundException), and what to do.
    assert!(
        stderr.contains("nobody@contoso.com") && stderr.contains("couldn't be found"),
        "{stderr}"
    );
    assert!(stderr.contains("--monitor"), "{stderr}");
    assert_eq!(permissions(&t.now()), before);
}

#[test]
fn a_crash_mid_run_is_resumed_without_granting_any_mailbox_twice() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::edited(|json| json["faults"]["crashAtMailbox"] = 6.into());
    let before = t.now();
    let journal = t.file("crash.jsonl");
    let crashed = t.run(&[
        "grant",
        "--monitor",
        MONITOR,
        "--format",
        "json",
        "--journal",
        journal.to_str().unwrap(),
    ]);
    assert_eq!(crashed.status.code(), Some(4), "{}", describe(&crashed));
    let stderr = String::from_utf8_lossy(&crashed.stderr);
    assert!(
        stderr.contains("--resume") && stderr.contains("crash.jsonl"),
        "{stderr}"
    );
    // The journal holds every record received before the crash.
    let journal_records: Vec<Record> = common::records(&journal);
    let done_before: Vec<String> = common::mailboxes(&journal_records)
        .iter()
        .map(|r| r.mailbox.to_lowercase())
        .collect();
    assert_eq!(
        done_before.len(),
        mailboxes(&crashed).len(),
        "journal = records received"
    );
    assert!(
        !done_before.is_empty(),
        "some mailboxes were done before the crash"
    );

    // The crash fault fires once; clear it in the saved state and resume.
    let mut state: Value =
        serde_json::from_str(&std::fs::read_to_string(t.file("state.json")).unwrap()).unwrap();
    state["faults"]["crashAtMailbox"] = Value::Null;
    std::fs::write(t.file("state.json"), serde_json::to_string(&state).unwrap()).unwrap();
    let resumed = t.run(&[
        "grant",
        "--monitor",
        MONITOR,
        "--format",
        "json",
        "--resume",
        journal.to_str().unwrap(),
    ]);
    assert_eq!(resumed.status.code(), Some(0), "{}", describe(&resumed));
    let records = mailboxes(&resumed);
    for r in &records {
        let mailbox = r.mailbox.to_lowercase();
        if done_before.contains(&mailbox) && mailbox != MONITOR {
            assert_eq!(
                r.outcome,
                Outcome::Skipped,
                "{mailbox} was done before the crash: {r:?}"
            );
            assert_eq!(
                r.calls, 0,
                "{mailbox}: no Exchange call for a resumed mailbox"
            );
        }
    }
    // Every mailbox got exactly one grant across both runs.
    let mut adds: BTreeMap<String, usize> = BTreeMap::new();
    for r in common::mailboxes(&journal_records)
        .into_iter()
        .chain(records.iter())
    {
        if matches!(r.outcome, Outcome::Added | Outcome::Updated) {
            *adds.entry(r.mailbox.to_lowercase()).or_default() += 1;
        }
    }
    assert!(adds.values().all(|n| *n == 1), "{adds:?}");
    assert_granted_in_scope(&t.now(), &before, MONITOR, " not granted after resume");
}

#[test]
fn what_if_reads_everything_and_changes_nothing() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let before = permissions(&t.now());
    let out = t.run(&[
        "grant",
        "--monitor",
        MONITOR,
        "--what-if",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let counts = typed_outcome_counts(&mailboxes(&out));
    assert!(
        counts.contains_key("would-add") && counts.contains_key("would-update"),
        "{counts:?}"
    );
    assert!(
        !counts.contains_key("added") && !counts.contains_key("updated"),
        "{counts:?}"
    );
    assert_eq!(permissions(&t.now()), before);
}

#[test]
fn audit_fails_before_the_grant_and_passes_after() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let before = t.run(&["audit", "--monitor", MONITOR, "--format", "json"]);
    assert_eq!(before.status.code(), Some(1), "{}", describe(&before));
    let counts = typed_outcome_counts(&mailboxes(&before));
    assert!(
        counts.contains_key("missing")
            && counts.contains_key("below")
            && counts.contains_key("meets"),
        "{counts:?}"
    );
    assert_eq!(
        t.run(&["grant", "--monitor", MONITOR]).status.code(),
        Some(0)
    );
    let after = t.run(&["audit", "--monitor", MONITOR, "--format", "json"]);
    assert_eq!(after.status.code(), Some(0), "{}", describe(&after));
}

#[test]
fn plain_revoke_removes_the_monitor_everywhere() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    assert_eq!(
        t.run(&["grant", "--monitor", MONITOR]).status.code(),
        Some(0)
    );
    let out = t.run(&["revoke", "--monitor", MONITOR, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        monitor_on_default_calendars(&t.now(), MONITOR)
            .values()
            .all(Option::is_none)
    );
}

#[test]
fn exchange_server_connection_runs_the_same_grant() {
    if common::pwsh().is_none() {
        return;
    }
    // Inside the Exchange Management Shell the cmdlets are already loaded; the simulated module
    // provides them the same way, so the onprem script's Get-Mailbox path runs for real.
    let t = SimTenant::demo();
    let out = t.run(&[
        "grant",
        "--monitor",
        MONITOR,
        "--connection",
        "onprem",
        "--server",
        "mail01.contoso.local",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let counts = typed_outcome_counts(&mailboxes(&out));
    assert!(!counts.contains_key("failed"), "{counts:?}");
    assert!(counts.contains_key("added"), "{counts:?}");
    let after = t.now();
    assert_granted_in_scope(&after, &after, MONITOR, " not granted");
    // Exchange Server has no Get-EXO* cmdlets: the onprem script used Get-Mailbox and
    // Get-MailboxFolderStatistics.
    let calls = after["stats"]["calls"].as_object().unwrap();
    assert!(calls.contains_key("Get-Mailbox"), "{calls:?}");
    assert!(!calls.keys().any(|k| k.starts_with("Get-EXO")), "{calls:?}");
}

#[test]
fn include_exclude_and_csv_scope() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let all = in_scope(&t.now(), MONITOR);
    let (first, second) = (all[0].clone(), all[1].clone());
    let out = t.run(&[
        "audit",
        "--monitor",
        MONITOR,
        "--include",
        &format!("{first},{second},ghost@contoso.com"),
        "--exclude",
        &second,
        "--format",
        "json",
    ]);
    let records = mailboxes(&out);
    assert_eq!(records.len(), 3, "{}", describe(&out));
    let by = |m: &str| {
        records
            .iter()
            .find(|r| r.mailbox.eq_ignore_ascii_case(m))
            .unwrap()
    };
    assert_eq!(by(&second).outcome, Outcome::Skipped);
    assert_eq!(by("ghost@contoso.com").outcome, Outcome::Failed);
    assert_eq!(by("ghost@contoso.com").kind, Some(MailboxKind::NotFound));

    let csv = t.file("mailboxes.csv");
    std::fs::write(&csv, format!("Name,PrimarySmtpAddress\nA,{first}\n")).unwrap();
    let out = t.run(&[
        "audit",
        "--monitor",
        MONITOR,
        "--mailboxes-csv",
        csv.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let records = mailboxes(&out);
    assert_eq!(records.len(), 1, "{}", describe(&out));
    assert!(records[0].mailbox.eq_ignore_ascii_case(&first));
}

#[test]
fn a_generated_twelve_language_tenant_is_granted_with_no_failures() {
    let Some(pwsh) = common::pwsh() else { return };
    // A fresh tenant from the same generator as the 2,000-mailbox one, smaller and with another seed.
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("generated.json");
    let status = std::process::Command::new(pwsh)
        .args(["-NoLogo", "-NoProfile", "-NonInteractive", "-File"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tenants/New-SimTenant.ps1"))
        .args(["-Count", "300", "-Seed", "42", "-Path"])
        .arg(&generated)
        .status()
        .unwrap();
    assert!(status.success());
    let t = SimTenant::from_file(&generated, |_| {});
    let before = t.now();
    let languages: std::collections::BTreeSet<String> = before["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| {
            r["languages"]
                .as_array()?
                .first()?
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert!(languages.len() >= 12, "{languages:?}");

    let out = t.run(&["grant", "--monitor", MONITOR, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let records = mailboxes(&out);
    assert!(
        !records
            .iter()
            .any(|r| matches!(r.outcome, Outcome::Failed | Outcome::NoCalendar)),
        "{}",
        describe(&out)
    );
    let after = t.now();
    assert_granted_in_scope(&after, &before, MONITOR, " not granted");
    // No folder other than a default calendar changed.
    let (p0, p1) = (permissions(&before), permissions(&after));
    let defaults: std::collections::BTreeSet<(String, String)> = after["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            let smtp = r["primarySmtpAddress"].as_str().unwrap().to_lowercase();
            r["folders"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(move |f| {
                    let path = f["folderPath"].as_str()?.to_string();
                    (f["folderType"] == "Calendar" && path.matches('/').count() == 1)
                        .then(|| (smtp.clone(), path))
                })
        })
        .collect();
    for (key, entries) in &p1 {
        if !defaults.contains(key) {
            assert_eq!(
                &p0[key], entries,
                "{key:?} is not a default calendar but changed"
            );
        }
    }
    let secondary = p1.keys().filter(|k| !defaults.contains(*k)).count();
    assert!(
        secondary > 0,
        "the tenant has secondary calendars to leave alone"
    );
}

#[test]
fn audit_finds_the_default_calendar_by_folder_type_not_by_the_guessed_name() {
    if common::pwsh().is_none() {
        return;
    }
    // A German-language mailbox whose default calendar kept its English name, plus a folder of
    // its own named "Kalender". The grant's first guess lands on that folder (the trade-off for
    // one call per mailbox, see README); the audit looks by FolderType and reports it.
    let t = SimTenant::edited(|json| {
        let lukas = json["recipients"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|r| r["primarySmtpAddress"] == "lukas.weber@contoso.com")
            .unwrap();
        lukas["folders"].as_array_mut().unwrap().push(serde_json::json!({
            "name": "Kalender", "folderType": "User Created", "folderPath": "/Kalender",
            "folderId": "AAMkADlukasUserKalender0000000000000000000=", "containerClass": "IPF.Appointment",
            "permissions": []
        }));
    });
    assert_eq!(
        t.run(&["grant", "--monitor", MONITOR]).status.code(),
        Some(0)
    );
    let audit = t.run(&["audit", "--monitor", MONITOR, "--format", "json"]);
    assert_eq!(audit.status.code(), Some(1), "{}", describe(&audit));
    let records = mailboxes(&audit);
    let lukas = records
        .iter()
        .find(|r| r.mailbox == "lukas.weber@contoso.com")
        .unwrap();
    assert_eq!(lukas.outcome, Outcome::Missing, "{lukas:?}");
    assert_eq!(lukas.folder.as_deref(), Some("Calendar"), "{lukas:?}");
    assert!(
        records
            .iter()
            .filter(|r| r.mailbox != "lukas.weber@contoso.com")
            .all(|r| matches!(r.outcome, Outcome::Meets | Outcome::Skipped))
    );
}
