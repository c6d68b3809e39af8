//! What real Exchange does beyond its docs (reference/field-notes.md), one test per note, run as
//! calperm runs them: the rendered scripts, unchanged, in the real pwsh against the simulated
//! tenant, which reproduces each behaviour (docs/simulated-tenant.md).

use crate::common;

use common::tenant::{
    SimTenant, describe, in_scope, mailbox_records, monitor_on_default_calendars, outcome_counts,
    permissions, records,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const MONITOR: &str = "monitor@contoso.com";

fn recipient<'a>(tenant: &'a mut Value, address: &str) -> &'a mut Value {
    tenant["recipients"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["primarySmtpAddress"] == address)
        .unwrap()
}

/// Every mailbox in scope has at least `target`-covering rights for `monitor` on its default calendar.
fn assert_all_granted(tenant: &Value, scope_from: &Value, monitor: &str) {
    let granted = monitor_on_default_calendars(tenant, monitor);
    for mailbox in in_scope(scope_from, MONITOR) {
        if mailbox.eq_ignore_ascii_case(monitor) {
            continue;
        }
        assert!(
            granted.get(&mailbox).cloned().flatten().is_some(),
            "{mailbox}: no entry for {monitor}"
        );
    }
}

#[test]
fn field_note_2_typeless_not_found_falls_back_to_folder_type() {
    if common::pwsh().is_none() {
        return;
    }
    // Every error type-less: the guessed names that miss (German, French, … calendars) must still
    // lead to the FolderType lookup.
    let t = SimTenant::edited(|json| json["faults"]["typelessRate"] = 1.0.into());
    let before = t.now();
    let out = t.run_json(&["grant", "--monitor", MONITOR]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let after = t.now();
    assert!(after["stats"]["typeless"].as_u64().unwrap() > 0);
    let records = mailbox_records(&out);
    let by_folder_type: Vec<&Value> = records
        .iter()
        .filter(|r| {
            r["mailbox"] == "anna.schmidt@contoso.com" || r["mailbox"] == "lukas.weber@contoso.com"
        })
        .collect();
    // lukas.weber's calendar kept its English name: the guess "Kalender" misses.
    let lukas = by_folder_type
        .iter()
        .find(|r| r["mailbox"] == "lukas.weber@contoso.com")
        .unwrap();
    assert_eq!(lukas["outcome"], "added", "{lukas}");
    assert_eq!(lukas["folder"], "Calendar", "{lukas}");
    assert!(
        !records.iter().any(|r| r["outcome"] == "failed"),
        "{}",
        describe(&out)
    );
    assert_all_granted(&after, &before, MONITOR);
}

#[test]
fn field_note_2_typeless_entry_exists_leads_to_the_read_path_on_a_rerun() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    assert_eq!(
        t.run(&["grant", "--monitor", MONITOR]).status.code(),
        Some(0)
    );
    let granted = permissions(&t.now());
    // The rerun meets "An existing permission entry was found" with no type at all.
    let mut state = t.now();
    state["faults"]["typelessRate"] = 1.0.into();
    std::fs::write(t.file("state.json"), serde_json::to_string(&state).unwrap()).unwrap();
    let out = t.run_json(&["grant", "--monitor", MONITOR]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let counts = outcome_counts(&mailbox_records(&out));
    for outcome in counts.keys() {
        assert!(
            ["unchanged", "kept-higher", "skipped"].contains(&outcome.as_str()),
            "rerun: {counts:?}"
        );
    }
    assert!(t.now()["stats"]["typeless"].as_u64().unwrap() > 0);
    assert_eq!(permissions(&t.now()), granted, "a rerun changed the tenant");
}

/// The outcome a grant of Reviewer must report for a calendar where the monitor had `rights`.
fn expected_outcome(rights: Option<&str>) -> &'static str {
    match rights {
        None => "added",
        Some("Reviewer") => "unchanged",
        Some("AvailabilityOnly" | "LimitedDetails") => "updated",
        Some(_) => "kept-higher",
    }
}

#[test]
fn field_note_2_large_tenant_with_half_the_errors_typeless_has_no_wrong_outcome_and_a_rerun_changes_nothing()
 {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::from_file(&common::fixture("tenants/large-2000.json"), |json| {
        json["faults"]["typelessRate"] = 0.5.into();
        json["faults"]["throttleRate"] = 0.02.into();
        json["faults"]["seed"] = 11.into();
    });
    let before = t.now();
    let had = monitor_on_default_calendars(&before, MONITOR);
    let first = t.run_json(&["grant", "--monitor", MONITOR, "--max-retries", "10"]);
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    let after = t.now();
    assert!(
        after["stats"]["typeless"].as_u64().unwrap() > 20,
        "{}",
        after["stats"]
    );
    let records = mailbox_records(&first);
    assert_eq!(records.len(), 2000);
    let mut wrong = Vec::new();
    for r in &records {
        let mailbox = r["mailbox"].as_str().unwrap().to_lowercase();
        let want = if mailbox == MONITOR {
            "skipped"
        } else {
            expected_outcome(had.get(&mailbox).cloned().flatten().as_deref())
        };
        if r["outcome"] != want {
            wrong.push(format!(
                "{mailbox}: {} (want {want}) {}",
                r["outcome"], r["message"]
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong outcomes:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_all_granted(&after, &before, MONITOR);
    // Only default calendars changed, only the monitor's entries.
    let (p0, p1) = (permissions(&before), permissions(&after));
    for (key, entries) in &p1 {
        let strip = |v: &Vec<String>| -> Vec<String> {
            v.iter()
                .filter(|e| !e.starts_with(&format!("{MONITOR}=")))
                .cloned()
                .collect()
        };
        assert_eq!(strip(&p0[key]), strip(entries), "{key:?}");
    }

    let rerun = t.run_json(&["grant", "--monitor", MONITOR, "--max-retries", "10"]);
    assert_eq!(rerun.status.code(), Some(0), "{}", describe(&rerun));
    let counts = outcome_counts(&mailbox_records(&rerun));
    for outcome in counts.keys() {
        assert!(
            ["unchanged", "kept-higher", "skipped"].contains(&outcome.as_str()),
            "rerun: {counts:?}"
        );
    }
    assert_eq!(permissions(&t.now()), p1, "the rerun changed the tenant");
}

#[test]
fn field_note_4_exchange_server_grant_audit_and_revoke_from_journal_read_the_mailboxes_first() {
    if common::pwsh().is_none() {
        return;
    }
    let onprem = ["--connection", "onprem", "--server", "mail01.contoso.local"];
    let t = SimTenant::demo();
    let before = t.now();
    let journal = t.file("grant.jsonl");
    let mut args = vec![
        "grant",
        "--monitor",
        MONITOR,
        "--journal",
        journal.to_str().unwrap(),
    ];
    args.extend(onprem);
    let grant = t.run_json(&args);
    assert_eq!(grant.status.code(), Some(0), "{}", describe(&grant));
    let after = t.now();
    // The simulated session fails any cmdlet called while Get-Mailbox still streams; none was.
    assert_eq!(
        after["stats"]["concurrentPipelines"], 0,
        "{}",
        after["stats"]
    );
    assert!(after["stats"]["calls"]["Get-Mailbox"].as_u64().unwrap() >= 1);
    let counts = outcome_counts(&mailbox_records(&grant));
    assert!(!counts.contains_key("failed"), "{counts:?}");
    assert_all_granted(&after, &before, MONITOR);

    let mut args = vec!["audit", "--monitor", MONITOR];
    args.extend(onprem);
    let audit = t.run_json(&args);
    assert_eq!(audit.status.code(), Some(0), "{}", describe(&audit));
    let counts = outcome_counts(&mailbox_records(&audit));
    assert_eq!(
        counts.keys().collect::<Vec<_>>(),
        ["meets", "skipped"],
        "{counts:?}"
    );
    assert_eq!(t.now()["stats"]["concurrentPipelines"], 0);

    let mut args = vec![
        "revoke",
        "--monitor",
        MONITOR,
        "--from-journal",
        journal.to_str().unwrap(),
    ];
    args.extend(onprem);
    let revoke = t.run_json(&args);
    assert_eq!(revoke.status.code(), Some(0), "{}", describe(&revoke));
    assert_eq!(t.now()["stats"]["concurrentPipelines"], 0);
    assert_eq!(
        permissions(&t.now()),
        permissions(&before),
        "back to the state before the grant"
    );

    // And the plain revoke, which enumerates like the grant.
    assert_eq!(
        t.run(&{
            let mut a = vec!["grant", "--monitor", MONITOR];
            a.extend(onprem);
            a
        })
        .status
        .code(),
        Some(0)
    );
    let mut args = vec!["revoke", "--monitor", MONITOR];
    args.extend(onprem);
    let plain = t.run_json(&args);
    assert_eq!(plain.status.code(), Some(0), "{}", describe(&plain));
    assert_eq!(t.now()["stats"]["concurrentPipelines"], 0);
    assert!(
        monitor_on_default_calendars(&t.now(), MONITOR)
            .values()
            .all(Option::is_none)
    );
}

#[test]
fn field_note_7_a_run_under_what_if_still_closes_the_exchange_session() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let out = t.run_json(&["grant", "--monitor", MONITOR, "--what-if"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let state = t.now();
    assert_eq!(state["stats"]["calls"]["Disconnect-ExchangeOnline"], 1);
    assert_eq!(
        state["stats"]["exchangeSessionOpen"], false,
        "{}",
        state["stats"]
    );
}

#[test]
fn field_note_7_supported_powershell_versions_are_stated_and_checked() {
    if common::pwsh().is_none() {
        return;
    }
    for script in [
        "grant",
        "audit",
        "revoke",
        "ews-readiness",
        "app-registration",
        "execution-policy",
        "setup",
    ] {
        // On stdout: setup is several scripts (a directory with -o), all of them printed here.
        let out = common::calperm()
            .args(["render", script, "--monitor", MONITOR])
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("Windows PowerShell 5.1 and PowerShell 7.4 or later")
                && !text.contains("7.2 or later"),
            "{script}: the help must state the supported versions"
        );
        assert!(
            text.contains("[version]'7.4'"),
            "{script}: no run-time version check"
        );
        assert!(
            text.contains("try { [Console]::OutputEncoding"),
            "{script}: the console encoding is not guarded"
        );
    }
    // pwsh here is supported: no version warning.
    let t = SimTenant::demo();
    let out = t.run(&["audit", "--monitor", MONITOR]);
    assert!(
        !common::stderr(&out).contains("is not supported"),
        "{}",
        describe(&out)
    );
}

#[test]
fn field_note_8_ews_readiness_reports_the_mailbox_level_switch() {
    if common::pwsh().is_none() {
        return;
    }
    for connection in [
        &[][..],
        &["--connection", "onprem", "--server", "mail01.contoso.local"][..],
    ] {
        let t = SimTenant::edited(|json| {
            json["organizationConfig"]["ewsEnabled"] = true.into();
            recipient(json, "anna.schmidt@contoso.com")["ewsEnabled"] = false.into();
        });
        let mut args = vec!["ews-readiness"];
        args.extend(connection);
        let out = t.run_json(&args);
        let all = records(&out);
        let setting = all
            .iter()
            .find(|r| r["type"] == "setting" && r["name"] == "Mailboxes with EwsEnabled False")
            .unwrap_or_else(|| panic!("{}", describe(&out)));
        assert_eq!(setting["value"], "1 of 24", "{setting}");
        assert!(
            setting["note"]
                .as_str()
                .unwrap()
                .contains("anna.schmidt@contoso.com")
        );
        let step = all
            .iter()
            .find(|r| r["type"] == "step" && r["step"] == "ews-readiness")
            .unwrap();
        let message = step["message"].as_str().unwrap();
        assert!(
            message.contains("1 of 24 mailboxes have EwsEnabled False")
                && message.contains("anna.schmidt@contoso.com"),
            "{step}"
        );
        let calls = &t.now()["stats"]["calls"];
        let cmdlet = if connection.is_empty() {
            "Get-EXOCasMailbox"
        } else {
            "Get-CASMailbox"
        };
        assert_eq!(calls[cmdlet], 1, "{calls}");
    }
}

#[test]
fn field_note_9_a_mail_user_or_a_mail_enabled_security_group_can_be_the_monitor() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::edited(|json| {
        json["recipients"].as_array_mut().unwrap().push(json!({
            "displayName": "Sync Service", "alias": "sync.service", "primarySmtpAddress": "sync.service@fabrikam.com",
            "recipientTypeDetails": "MailUser",
            "guid": "5a5a5a5a-0000-4000-8000-000000000009", "externalDirectoryObjectId": "5a5a5a5a-0000-4000-8000-00000000000a"
        }));
    });
    let before = t.now();
    for monitor in ["sync.service@fabrikam.com", "calendarsync@contoso.com"] {
        let out = t.run_json(&["grant", "--monitor", monitor]);
        assert_eq!(out.status.code(), Some(0), "{monitor}: {}", describe(&out));
        let counts = outcome_counts(&mailbox_records(&out));
        assert!(!counts.contains_key("failed"), "{monitor}: {counts:?}");
        // monitor@contoso.com's mailbox is an ordinary mailbox for these monitors.
        let granted = monitor_on_default_calendars(&t.now(), monitor);
        for mailbox in in_scope(&before, "nobody") {
            assert!(
                granted.get(&mailbox).cloned().flatten().is_some(),
                "{monitor} on {mailbox}"
            );
        }
    }
    // A distribution group cannot hold folder permissions: stopped before any change.
    let now = permissions(&t.now());
    let out = t.run(&["grant", "--monitor", "allstaff@contoso.com"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        common::stderr(&out).contains("cannot hold folder permissions"),
        "{}",
        describe(&out)
    );
    assert_eq!(permissions(&t.now()), now);
}

#[test]
fn field_note_10_a_calendar_found_by_folder_type_is_addressed_by_its_path_unless_the_name_cannot_be_one()
 {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::edited(|json| {
        // Camille's default calendar has a name with a backslash: no path can name it.
        let camille = recipient(json, "camille.martin@contoso.com");
        let calendar = camille["folders"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|f| f["folderType"] == "Calendar")
            .unwrap();
        calendar["name"] = "Calendrier\\Perso".into();
        calendar["folderPath"] = "/Calendrier\\Perso".into();
    });
    let state = t.now();
    let camille_id = state["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["primarySmtpAddress"] == "camille.martin@contoso.com")
        .unwrap()["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["folderType"] == "Calendar")
        .unwrap()["folderId"]
        .as_str()
        .unwrap()
        .to_string();
    let out = t.run_json(&["audit", "--monitor", MONITOR]);
    let records = mailbox_records(&out);
    let by: BTreeMap<&str, &Value> = records
        .iter()
        .map(|r| (r["mailbox"].as_str().unwrap(), r))
        .collect();
    assert_eq!(
        by["camille.martin@contoso.com"]["folderIdentity"],
        format!("camille.martin@contoso.com:{camille_id}"),
        "{}",
        describe(&out)
    );
    // Every other calendar the audit found by FolderType is named by its documented path.
    assert_eq!(
        by["lukas.weber@contoso.com"]["folderIdentity"],
        "lukas.weber@contoso.com:\\Calendar"
    );
    assert_eq!(
        by["yuki.tanaka@contoso.com"]["folderIdentity"],
        "yuki.tanaka@contoso.com:\\予定表"
    );
    for r in &records {
        if r["outcome"] != "skipped" && r["mailbox"] != "camille.martin@contoso.com" {
            assert!(r["folderIdentity"].as_str().unwrap().contains(":\\"), "{r}");
        }
    }
    // The grant reaches Camille's calendar by its FolderId.
    let grant = t.run_json(&["grant", "--monitor", MONITOR]);
    assert_eq!(grant.status.code(), Some(0), "{}", describe(&grant));
    assert!(
        monitor_on_default_calendars(&t.now(), MONITOR)["camille.martin@contoso.com"].is_some()
    );
}

#[test]
fn field_note_10_a_tenant_that_refuses_the_languages_property_gets_no_language_guess() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::edited(|json| json["faults"]["refuseLanguagesProperty"] = true.into());
    let before = t.now();
    let out = t.run_json(&["grant", "--monitor", MONITOR]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        common::stderr(&out).contains("Languages was refused"),
        "{}",
        describe(&out)
    );
    let records = mailbox_records(&out);
    assert!(
        !records.iter().any(|r| r["outcome"] == "failed"),
        "{}",
        describe(&out)
    );
    assert_all_granted(&t.now(), &before, MONITOR);
    // No name guessed: every calendar was looked up by FolderType.
    let calls = &t.now()["stats"]["calls"];
    assert_eq!(
        calls["Get-EXOMailboxFolderStatistics"].as_u64().unwrap() as usize,
        in_scope(&before, MONITOR).len(),
        "{calls}"
    );
    // Named mailboxes (--include) too.
    let named = t.run_json(&[
        "audit",
        "--monitor",
        MONITOR,
        "--include",
        "anna.schmidt@contoso.com,yuki.tanaka@contoso.com",
    ]);
    assert_eq!(named.status.code(), Some(0), "{}", describe(&named));
    assert_eq!(
        outcome_counts(&mailbox_records(&named)).get("meets"),
        Some(&2)
    );
}
