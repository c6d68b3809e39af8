//! Delta runs: `--created-after` lets Exchange select only the mailboxes created after a moment,
//! and the date reaches the filter in a form every session culture reads alike. Real pwsh
//! against the simulated tenant.

use crate::common;

use common::tenant::{SimTenant, describe, records};
use std::collections::BTreeSet;
use std::process::Output;

const MONITOR: &str = "monitor@contoso.com";

/// A demo tenant where two mailboxes are recent: camille on 10 March 2026 (after 4 March, before
/// 3 April, so a 03/04/2026 read the German way would miss her), support on 1 May 2026. Every
/// other mailbox was created in 2020.
fn tenant() -> SimTenant {
    SimTenant::edited(|tenant| {
        for r in tenant["recipients"].as_array_mut().unwrap() {
            let when = match r["primarySmtpAddress"].as_str().unwrap() {
                "camille.martin@contoso.com" => "2026-03-10T08:00:00Z",
                "support@contoso.com" => "2026-05-01T00:00:00Z",
                _ => "2020-06-01T00:00:00Z",
            };
            r["whenCreated"] = when.into();
        }
    })
}

/// `calperm run <args> --simulate …` with the session (pwsh) in `culture`.
fn run_in(t: &SimTenant, culture: &str, args: &[&str]) -> Output {
    common::calperm()
        .current_dir(t.root().join("work"))
        .env("TMPDIR", t.root().join("tmp"))
        .env("LC_ALL", culture)
        .env("LANG", culture)
        .arg("run")
        .args(args)
        .args(["--simulate", "tenant.json", "--sim-state", "state.json"])
        .args(["--retry-delay-ms", "1", "--format", "json"])
        .output()
        .unwrap()
}

fn visited(out: &Output) -> BTreeSet<String> {
    records(out)
        .iter()
        .filter(|r| r["type"] == "mailbox")
        .map(|r| r["mailbox"].as_str().unwrap().to_lowercase())
        .collect()
}

#[test]
fn created_after_selects_the_same_mailboxes_in_a_german_and_a_us_session() {
    if common::pwsh().is_none() {
        return;
    }
    let expected: BTreeSet<String> = ["camille.martin@contoso.com", "support@contoso.com"]
        .map(String::from)
        .into();
    for culture in ["de_DE.UTF-8", "en_US.UTF-8"] {
        let t = tenant();
        let args = [
            "grant",
            "--monitor",
            MONITOR,
            "--created-after",
            "2026-03-04T00:00:00Z",
        ];
        let out = run_in(&t, culture, &args);
        assert_eq!(out.status.code(), Some(0), "{culture}: {}", describe(&out));
        assert_eq!(visited(&out), expected, "{culture}: {}", describe(&out));
        // Exchange did the selecting: one enumeration, no per-mailbox call for the others.
        let stats = &t.now()["stats"]["calls"];
        assert_eq!(stats["Get-EXOMailbox"], 1, "{culture}: {stats}");
        let folder_calls = stats["Get-EXOMailboxFolderStatistics"]
            .as_u64()
            .unwrap_or(0);
        assert!(folder_calls <= 2, "{culture}: {stats}");
    }
}

#[test]
fn the_sim_reads_a_filter_date_in_the_session_culture() {
    // What the test above guards against: the same US-style date selects different mailboxes in
    // a German and a US session, so a run that wrote it that way would not pass above.
    let Some(pwsh) = common::pwsh() else { return };
    let t = tenant();
    let modules = common::fixture("sim/modules");
    let script = format!(
        "$env:PSModulePath = '{}' + [IO.Path]::PathSeparator + $env:PSModulePath; \
         $env:CALPERM_SIM_TENANT = '{}'; Import-Module ExchangeOnlineManagement; \
         Connect-ExchangeOnline -ShowBanner:$false; \
         (@(Get-EXOMailbox -ResultSize Unlimited -Filter \"WhenCreated -gt '03/04/2026'\") | ForEach-Object {{ $_.PrimarySmtpAddress }}) -join ','",
        modules.display(),
        t.file("tenant.json").display()
    );
    let run = |culture: &str| {
        let out = std::process::Command::new(&pwsh)
            .args(["-NoProfile", "-NonInteractive", "-Command", &script])
            .env("LC_ALL", culture)
            .env("LANG", culture)
            .env_remove("CALPERM_SIM_STATE")
            .output()
            .unwrap();
        assert!(out.status.success(), "{culture}: {}", describe(&out));
        common::stdout(&out).trim().to_string()
    };
    assert_eq!(
        run("en_US.UTF-8"),
        "camille.martin@contoso.com,support@contoso.com"
    );
    assert_eq!(run("de_DE.UTF-8"), "support@contoso.com");
}

#[test]
fn created_after_refuses_an_ambiguous_date_and_a_named_list() {
    for (args, wanted) in [
        (
            vec!["--created-after", "03/04/2026"],
            "neither a date-time nor a duration",
        ),
        (
            vec!["--created-after", "2d", "--include", "a@contoso.com"],
            "--created-after selects from all mailboxes",
        ),
    ] {
        let out = common::calperm()
            .args(["render", "grant", "--monitor", MONITOR])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        assert!(common::stderr(&out).contains(wanted), "{}", describe(&out));
    }
}

#[test]
fn managed_identity_runs_unattended_against_the_organization() {
    if common::pwsh().is_none() {
        return;
    }
    let t = tenant();
    let connection = ["--connection", "managed-identity"];
    let args = [
        "grant",
        "--monitor",
        MONITOR,
        "--created-after",
        "2026-03-04",
    ];
    let missing = t.run(&[&args[..], &connection[..]].concat());
    assert_eq!(missing.status.code(), Some(2), "{}", describe(&missing));
    assert!(
        common::stderr(&missing).contains("needs --organization"),
        "{}",
        describe(&missing)
    );

    let org = ["--organization", "contoso.onmicrosoft.com"];
    let out = run_in(
        &t,
        "en_US.UTF-8",
        &[&args[..], &connection[..], &org[..]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(visited(&out).len(), 2, "{}", describe(&out));
    let script = common::calperm()
        .args(["render", "grant", "--monitor", MONITOR])
        .args(connection)
        .args(org)
        .output()
        .unwrap();
    let text = common::stdout(&script);
    assert!(
        text.contains("Connect-ExchangeOnline -ManagedIdentity -Organization $Organization"),
        "{text}"
    );
    assert!(
        text.contains("[string] $Organization = 'contoso.onmicrosoft.com'"),
        "{text}"
    );
}

/// Changes the saved state between runs (the tenant as the last run left it).
fn edit_state(t: &SimTenant, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut state = t.now();
    edit(&mut state);
    std::fs::write(
        t.file("state.json"),
        serde_json::to_string_pretty(&state).unwrap(),
    )
    .unwrap();
}

fn recipient<'a>(tenant: &'a mut serde_json::Value, address: &str) -> &'a mut serde_json::Value {
    tenant["recipients"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["primarySmtpAddress"] == address)
        .unwrap_or_else(|| panic!("no {address}"))
}

/// A new mailbox made from `template` of the initial tenant (so without the monitor's entry),
/// created now.
fn new_mailbox(t: &SimTenant, template: &str, name: &str, n: u32) -> serde_json::Value {
    let mut initial: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.file("tenant.json")).unwrap()).unwrap();
    let mut r = recipient(&mut initial, template).clone();
    let address = format!("{name}@contoso.com");
    for key in ["primarySmtpAddress", "userPrincipalName"] {
        r[key] = address.clone().into();
    }
    for key in ["alias", "name", "displayName"] {
        r[key] = name.into();
    }
    r["guid"] = format!("c0ffee00-0000-4000-8000-{n:012}").into();
    r["externalDirectoryObjectId"] = format!("e0ffee00-0000-4000-8000-{n:012}").into();
    r["distinguishedName"] = format!("CN={name},OU=contoso.onmicrosoft.com").into();
    r["emailAddresses"] = serde_json::Value::Array(vec![]);
    r["whenCreated"] = common_now().into();
    for folder in r["folders"].as_array_mut().unwrap() {
        folder["folderId"] = format!("AAMkNEW{n}{}", folder["name"].as_str().unwrap().len()).into();
    }
    r
}

/// Now in UTC, as the tenant files write it.
fn common_now() -> String {
    calperm::delta::utc_now()
}

fn by_mailbox(out: &Output) -> std::collections::BTreeMap<String, serde_json::Value> {
    records(out)
        .into_iter()
        .filter(|r| r["type"] == "mailbox")
        .map(|r| (r["mailbox"].as_str().unwrap().to_lowercase(), r))
        .collect()
}

#[test]
fn since_grants_the_new_and_the_unfinished_mailboxes_and_calls_nothing_else() {
    if common::pwsh().is_none() {
        return;
    }
    // First run: two mailboxes are not usable yet (just created), so they fail.
    let t = SimTenant::edited(|tenant| {
        for address in ["lukas.weber@contoso.com", "alex.wilber@contoso.com"] {
            recipient(tenant, address)["notUsable"] = true.into();
        }
    });
    let first = t.run_json(&["grant", "--monitor", MONITOR, "--journal", "first.jsonl"]);
    assert_eq!(first.status.code(), Some(1), "{}", describe(&first));
    let outcomes = by_mailbox(&first);
    assert_eq!(outcomes["lukas.weber@contoso.com"]["outcome"], "failed");
    assert_eq!(outcomes["alex.wilber@contoso.com"]["outcome"], "failed");
    assert_eq!(outcomes.len(), 23);

    // Minutes later: both are usable, and three mailboxes were created, one of them so recently
    // that Exchange cannot use it yet.
    let mut pending = new_mailbox(&t, "megan.bowen@contoso.com", "paula.pending", 3);
    pending["notUsable"] = true.into();
    let added = [
        new_mailbox(&t, "megan.bowen@contoso.com", "nina.new", 1),
        new_mailbox(&t, "anna.schmidt@contoso.com", "otto.neu", 2),
        pending,
    ];
    edit_state(&t, |state| {
        for address in ["lukas.weber@contoso.com", "alex.wilber@contoso.com"] {
            recipient(state, address)
                .as_object_mut()
                .unwrap()
                .remove("notUsable");
        }
        state["recipients"].as_array_mut().unwrap().extend(added);
    });

    let second = t.run_json(&[
        "grant",
        "--monitor",
        MONITOR,
        "--since",
        "first.jsonl",
        "--journal",
        "second.jsonl",
    ]);
    assert_eq!(second.status.code(), Some(0), "{}", describe(&second));
    let visited = by_mailbox(&second);
    let delta: Vec<(String, String, String)> = visited
        .iter()
        .map(|(m, r)| {
            (
                m.clone(),
                r["outcome"].as_str().unwrap().into(),
                r["delta"].as_str().unwrap_or("-").into(),
            )
        })
        .collect();
    assert_eq!(
        delta,
        [
            ("alex.wilber@contoso.com", "added", "retried"),
            ("lukas.weber@contoso.com", "added", "retried"),
            ("nina.new@contoso.com", "added", "new"),
            ("otto.neu@contoso.com", "added", "new"),
            ("paula.pending@contoso.com", "skipped", "new"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    assert_eq!(
        visited["paula.pending@contoso.com"]["kind"],
        "not-yet-usable"
    );
    // Nothing else was called: one filtered enumeration, two lookups by identity, and the calls
    // the five records account for (Lukas's German-named guess missed: 3 calls; Paula's 2).
    let calls = t.now()["stats"]["calls"].clone();
    let folder_calls: u64 = [
        "Add-MailboxFolderPermission",
        "Get-MailboxFolderPermission",
        "Set-MailboxFolderPermission",
        "Get-EXOMailboxFolderStatistics",
    ]
    .iter()
    .map(|c| calls[c].as_u64().unwrap_or(0))
    .sum();
    let accounted: u64 = visited.values().map(|r| r["calls"].as_u64().unwrap()).sum();
    assert_eq!(calls["Get-EXOMailbox"], 3, "{calls}");
    assert_eq!(
        (folder_calls, accounted),
        (8, 8),
        "{calls} {}",
        describe(&second)
    );

    // The summary says so too.
    let summary = t.run(&[
        "grant",
        "--monitor",
        MONITOR,
        "--since",
        "first.jsonl",
        "--what-if",
    ]);
    let text = common::stdout(&summary);
    for row in ["new ", "retried ", "not usable yet "] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(row)),
            "no {row:?} row in\n{text}"
        );
    }

    // The new journal records its basis, so the next run chains on it.
    let journal = common::journal(&t.file("second.jsonl"));
    let start = journal.iter().find(|r| r["type"] == "start").unwrap();
    assert_eq!(start["since"], "first.jsonl", "{start}");
    assert!(
        start["createdAfter"]
            .as_str()
            .is_some_and(|s| s.len() == 19),
        "{start}"
    );
    assert!(
        journal
            .iter()
            .any(|r| r["type"] == "mailbox" && r["delta"] == "new")
    );
    edit_state(&t, |state| {
        let paula = recipient(state, "paula.pending@contoso.com");
        paula.as_object_mut().unwrap().remove("notUsable");
    });
    let third = t.run_json(&[
        "grant",
        "--monitor",
        MONITOR,
        "--since",
        "second.jsonl",
        "--journal",
        "third.jsonl",
    ]);
    assert_eq!(third.status.code(), Some(0), "{}", describe(&third));
    // The day's margin brings the new ones back (left as they are); Paula is granted now.
    let again: Vec<String> = by_mailbox(&third)
        .into_iter()
        .map(|(m, r)| format!("{m} {}", r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        again,
        [
            "nina.new@contoso.com unchanged",
            "otto.neu@contoso.com unchanged",
            "paula.pending@contoso.com added"
        ]
    );
}

#[test]
fn since_refuses_another_monitors_journal_and_a_non_grant_journal() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let audit = t.run_json(&["audit", "--monitor", MONITOR, "--journal", "audit.jsonl"]);
    assert!(audit.status.code().is_some(), "{}", describe(&audit));
    let out = t.run_json(&["grant", "--monitor", MONITOR, "--since", "audit.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        common::stderr(&out).contains("not of a grant"),
        "{}",
        describe(&out)
    );
    let grant = t.run_json(&["grant", "--monitor", MONITOR, "--journal", "grant.jsonl"]);
    assert_eq!(grant.status.code(), Some(0), "{}", describe(&grant));
    let other = t.run_json(&[
        "grant",
        "--monitor",
        "adele.vance@contoso.com",
        "--since",
        "grant.jsonl",
    ]);
    assert_eq!(other.status.code(), Some(2), "{}", describe(&other));
    assert!(
        common::stderr(&other).contains("is of the monitor monitor@contoso.com"),
        "{}",
        describe(&other)
    );
}

#[test]
fn a_stale_folder_cache_entry_falls_back_and_still_grants() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let first = t.run_json(&["grant", "--monitor", MONITOR, "--journal", "first.jsonl"]);
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    // Camille's calendar was renamed since, and the monitor's entry there removed.
    edit_state(&t, |state| {
        let folder = recipient(state, "camille.martin@contoso.com")["folders"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|f| f["folderType"] == "Calendar")
            .unwrap();
        folder["name"] = "Agenda perso".into();
        folder["folderPath"] = "/Agenda perso".into();
        folder["permissions"]
            .as_array_mut()
            .unwrap()
            .retain(|p| p["user"] != MONITOR);
    });
    let second = t.run_json(&[
        "grant",
        "--monitor",
        MONITOR,
        "--folders-from",
        "first.jsonl",
    ]);
    assert_eq!(second.status.code(), Some(0), "{}", describe(&second));
    let visited = by_mailbox(&second);
    let camille = &visited["camille.martin@contoso.com"];
    assert_eq!(camille["outcome"], "added", "{camille}");
    assert_eq!(
        camille["folderIdentity"], "camille.martin@contoso.com:\\Agenda perso",
        "{camille}"
    );
    // Only Camille's calendar had to be looked up again.
    let calls = t.now()["stats"]["calls"].clone();
    assert_eq!(calls["Get-EXOMailboxFolderStatistics"], 1, "{calls}");
}

#[test]
fn the_script_takes_a_duration_for_a_runbook_schedule() {
    // An Azure Automation schedule passes the same -CreatedAfter every day: a duration, counted
    // back from each run.
    let Some(pwsh) = common::pwsh() else { return };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = |hours_ago: i64| calperm::delta::filter_date(now - hours_ago * 3600) + "Z";
    let t = SimTenant::edited(|tenant| {
        for r in tenant["recipients"].as_array_mut().unwrap() {
            let when = match r["primarySmtpAddress"].as_str().unwrap() {
                "camille.martin@contoso.com" => at(1),
                "support@contoso.com" => at(5 * 24),
                _ => at(400 * 24),
            };
            r["whenCreated"] = when.into();
        }
    });
    let rendered = common::calperm()
        .args(["render", "grant", "--monitor", MONITOR])
        .output()
        .unwrap();
    let script = t.file("grant.ps1");
    std::fs::write(&script, rendered.stdout).unwrap();
    let modules = common::fixture("sim/modules");
    let path = format!(
        "{}{}{}",
        modules.display(),
        if cfg!(windows) { ";" } else { ":" },
        std::env::var("PSModulePath").unwrap_or_default()
    );
    let out = std::process::Command::new(pwsh)
        .args(["-NoProfile", "-NonInteractive", "-File"])
        .arg(&script)
        .args(["-CreatedAfter", "2d", "-RecordMarker", "REC:"])
        .env("PSModulePath", path)
        .env("CALPERM_SIM_TENANT", t.file("tenant.json"))
        .env_remove("CALPERM_SIM_STATE")
        .output()
        .unwrap();
    let mailboxes: Vec<String> = common::stdout(&out)
        .lines()
        .filter_map(|l| l.strip_prefix("REC:"))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["type"] == "mailbox")
        .map(|r| {
            format!(
                "{} {}",
                r["mailbox"].as_str().unwrap(),
                r["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        mailboxes,
        ["camille.martin@contoso.com added"],
        "{}",
        describe(&out)
    );
}
