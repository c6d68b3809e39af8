//! setup and ews-readiness end to end in the real pwsh against the simulated tenant, on copies of
//! the demo tenant: every step reported in the manual's order, a failed step skipping only the
//! steps that need it, EWS readiness for each state of the organization's EWS switch; and every
//! variant of the scripts this module owns parsing without errors.

use crate::common;

use common::calperm;
use common::tenant::{
    SimTenant, apps_named, describe, in_scope, monitor_on_default_calendars, records,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

const MONITOR: &str = "monitor@contoso.com";
const APP: &str = "Exchange calendar synchronization";
const GROUP: &str = "calendarsync@contoso.com";

/// The steps setup's scripts report, in order: the first script's three, then the app's
/// Exchange side (EWS readiness).
const STEPS: [&str; 5] = [
    "execution-policy",
    "exchange-connect",
    "grant",
    "ews-settings",
    "ews-readiness",
];

/// step → (outcome, message), and the order the steps came in.
fn steps(records: &[Value]) -> (Vec<String>, BTreeMap<String, (String, String)>) {
    let mut order = Vec::new();
    let mut map = BTreeMap::new();
    for r in records.iter().filter(|r| r["type"] == "step") {
        let step = r["step"].as_str().unwrap().to_string();
        order.push(step.clone());
        map.insert(
            step,
            (
                r["outcome"].as_str().unwrap().to_string(),
                r["message"].as_str().unwrap_or("").to_string(),
            ),
        );
    }
    (order, map)
}

fn outcome(map: &BTreeMap<String, (String, String)>, step: &str) -> String {
    map.get(step)
        .unwrap_or_else(|| panic!("no step {step} in {map:#?}"))
        .0
        .clone()
}

fn message(map: &BTreeMap<String, (String, String)>, step: &str) -> String {
    map.get(step)
        .unwrap_or_else(|| panic!("no step {step} in {map:#?}"))
        .1
        .clone()
}

fn item_outcome(records: &[Value], item: &str) -> String {
    records
        .iter()
        .find(|r| r["type"] == "item" && r["item"] == item)
        .and_then(|r| r["outcome"].as_str())
        .unwrap_or_else(|| panic!("no {item} item"))
        .to_string()
}

fn mailbox_outcomes(records: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in records.iter().filter(|r| r["type"] == "mailbox") {
        *counts
            .entry(r["outcome"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    counts
}

/// The monitor's rights on each in-scope mailbox's default calendar (the root Calendar folder).
fn monitor_rights(tenant: &Value) -> BTreeMap<String, Option<String>> {
    let all = monitor_on_default_calendars(tenant, MONITOR);
    in_scope(tenant, MONITOR)
        .into_iter()
        .filter_map(|m| all.get(&m).map(|rights| (m.clone(), rights.clone())))
        .collect()
}

/// Setup's scripts, in run order, each in its own pwsh.
/// `calperm setup --show-secret --monitor <monitor> --secret-months 12 <more> --format json`.
fn run_setup(t: &SimTenant, monitor: &str, more: &[&str]) -> Output {
    let mut args = vec![
        "setup",
        "--show-secret",
        "--monitor",
        monitor,
        "--secret-months",
        "12",
    ];
    args.extend_from_slice(more);
    t.run_json(&args)
}

const PARTS: [&str; 3] = ["setup", "app-registration", "app-exchange"];

/// The `part` records calperm wrote: (part, outcome, message), in order.
fn parts(records: &[Value]) -> Vec<(String, String, String)> {
    records
        .iter()
        .filter(|r| r["type"] == "part")
        .map(|r| {
            (
                r["part"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
                r["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn part_outcomes(records: &[Value]) -> Vec<(String, String)> {
    parts(records).into_iter().map(|(p, o, _)| (p, o)).collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The `start` records, in order: which scripts ran in this run.
fn started(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["type"] == "start")
        .map(|r| r["script"].as_str().unwrap().to_string())
        .collect()
}

/// The one app's secrets and consents in the tenant state.
fn secrets_and_consents(state: &Value) -> (usize, usize) {
    let apps = apps_named(state, APP);
    assert_eq!(apps.len(), 1, "exactly one app");
    let secrets = apps[0]["passwordCredentials"].as_array().unwrap().len();
    let app_id = apps[0]["appId"].as_str().unwrap();
    let sp = state["graph"]["servicePrincipals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|sp| sp["appId"] == app_id)
        .expect("the app's service principal");
    let consents = state["graph"]["appRoleAssignments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["principalId"] == sp["id"] && a["appRoleId"] == "798ee544-9d2d-430c-a058-570e29e34338"
        })
        .count();
    (secrets, consents)
}

#[test]
fn setup_runs_every_script_in_its_own_pwsh_with_the_clash_and_replication_delays_on() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    // The simulation behaves as real modules do by default: both are on.
    let tenant = t.now();
    assert_eq!(tenant["faults"].get("moduleClash"), None, "default: on");
    assert_eq!(
        tenant["faults"].get("replicationFailures"),
        None,
        "default: 2"
    );
    let out = run_setup(&t, MONITOR, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let recs = records(&out);
    assert_eq!(
        part_outcomes(&recs),
        pairs(&[
            ("setup", "completed"),
            ("app-registration", "completed"),
            ("app-exchange", "completed")
        ])
    );
    assert_eq!(started(&recs), PARTS, "one script per pwsh, in order");
    let (order, map) = steps(&recs);
    assert_eq!(order, STEPS, "{}", describe(&out));
    assert!(
        map.values().all(|(o, _)| o != "failed" && o != "skipped"),
        "{map:#?}"
    );
    assert_eq!(outcome(&map, "grant"), "changed");
    for item in [
        "application",
        "permission",
        "service-principal",
        "consent",
        "secret",
    ] {
        assert_eq!(item_outcome(&recs, item), "created", "{item}");
    }
    assert!(!recs.iter().any(|r| r["type"] == "fatal"));
    // The replication delays were met and retried, and the retries are in the records.
    for item in ["service-principal", "consent", "secret"] {
        let record = recs
            .iter()
            .find(|r| r["type"] == "item" && r["item"] == item)
            .unwrap();
        assert!(
            record["retries"].as_u64().unwrap_or(0) > 0,
            "{item}: {record}"
        );
    }

    // Every in-scope calendar has the monitor; one app, Calendars.Read declared and consented,
    // one secret; the settings name it.
    let counts = mailbox_outcomes(&recs);
    assert!(!counts.contains_key("failed"), "{counts:?}");
    let state = t.now();
    let rights = monitor_rights(&state);
    assert!(!rights.is_empty());
    assert!(rights.values().all(Option::is_some), "{rights:#?}");
    assert_eq!(secrets_and_consents(&state), (1, 1));
    let app = apps_named(&state, APP)[0];
    assert!(
        app["requiredResourceAccess"]
            .to_string()
            .contains("798ee544-9d2d-430c-a058-570e29e34338"),
        "Calendars.Read declared: {app}"
    );
    let client_id = app["appId"].as_str().unwrap();
    let settings: BTreeMap<&str, &str> = recs
        .iter()
        .filter(|r| r["type"] == "setting")
        .map(|r| (r["name"].as_str().unwrap(), r["value"].as_str().unwrap()))
        .collect();
    assert_eq!(settings["Client (application) ID"], client_id);
    assert_eq!(settings["Tenant ID"], state["tenantId"].as_str().unwrap());
    assert_eq!(
        settings["EWS URL"],
        "https://outlook.office365.com/EWS/Exchange.asmx"
    );
    assert_eq!(settings["Autodiscover"], "off");
    // The app's Exchange side got the client ID the Graph script reported.
    assert!(
        message(&map, "ews-readiness").contains(client_id),
        "{map:#?}"
    );

    // Run again: nothing left to do.
    let out = run_setup(&t, MONITOR, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let recs = records(&out);
    let (order, map) = steps(&recs);
    assert_eq!(order, STEPS);
    assert_eq!(outcome(&map, "grant"), "unchanged");
    for item in ["application", "service-principal", "consent", "secret"] {
        assert_eq!(item_outcome(&recs, item), "unchanged", "{item}");
    }
    assert_eq!(secrets_and_consents(&t.now()), (1, 1));
}

#[test]
fn a_missing_monitor_fails_the_grant_step_and_the_app_is_still_registered() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let before = monitor_rights(&t.now());
    let out = run_setup(&t, "nobody@contoso.com", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let recs = records(&out);
    let (order, map) = steps(&recs);
    assert_eq!(order, STEPS);
    assert_eq!(outcome(&map, "grant"), "failed");
    assert!(
        message(&map, "grant").contains("couldn't be found"),
        "Exchange's message: {map:#?}"
    );
    assert!(
        !recs.iter().any(|r| r["type"] == "fatal"),
        "only the grant step failed: {recs:#?}"
    );
    assert!(!recs.iter().any(|r| r["type"] == "mailbox"));
    // The first script failed; the others do not need it and ran.
    assert_eq!(
        part_outcomes(&recs),
        pairs(&[
            ("setup", "failed"),
            ("app-registration", "completed"),
            ("app-exchange", "completed")
        ])
    );
    let state = t.now();
    assert_eq!(
        secrets_and_consents(&state),
        (1, 1),
        "the app was registered"
    );
    assert_eq!(monitor_rights(&state), before, "no calendar changed");
}

#[test]
fn without_exchange_the_exchange_scripts_fail_and_the_graph_script_still_runs() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    std::fs::write(t.file("admin.pfx"), b"not used: the sign-in fails first").unwrap();
    let out = t.run_json(&[
        "setup",
        "--show-secret",
        "--monitor",
        MONITOR,
        "--connection",
        "exo-app",
        "--app-id",
        "6f1d2c4e-8a3b-4c5d-9e7f-0a1b2c3d4e5f",
        "--organization",
        "fabrikam.onmicrosoft.com",
        "--certificate-path",
        "admin.pfx",
        "--restrict-to-group",
        GROUP,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let recs = records(&out);
    let (_, map) = steps(&recs);
    assert_eq!(outcome(&map, "exchange-connect"), "failed");
    assert!(message(&map, "exchange-connect").contains("fabrikam.onmicrosoft.com"));
    assert_eq!(outcome(&map, "grant"), "skipped");
    assert!(
        message(&map, "grant").contains("exchange-connect"),
        "{map:#?}"
    );
    assert_eq!(
        part_outcomes(&recs),
        pairs(&[
            ("setup", "failed"),
            ("app-registration", "completed"),
            ("app-exchange", "failed")
        ])
    );
    assert_eq!(item_outcome(&recs, "application"), "created");
    assert_eq!(
        item_outcome(&recs, "consent"),
        "skipped",
        "restricted: no tenant-wide consent"
    );
    assert_eq!(item_outcome(&recs, "secret"), "created");
    let fatal = recs
        .iter()
        .find(|r| r["type"] == "fatal")
        .expect("the Exchange script stopped");
    assert_eq!(fatal["kind"], "connect");
}

#[test]
fn a_failed_script_skips_only_the_scripts_that_need_it() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::edited(|tenant| {
        let apps = tenant["graph"]["applications"].as_array_mut().unwrap();
        apps.push(json!({ "id": "a1a1a1a1-0000-4000-8000-000000000001", "appId": "b1b1b1b1-0000-4000-8000-000000000001", "displayName": APP }));
        apps.push(json!({ "id": "a2a2a2a2-0000-4000-8000-000000000002", "appId": "b2b2b2b2-0000-4000-8000-000000000002", "displayName": APP }));
    });
    let out = t.run_json(&[
        "setup",
        "--show-secret",
        "--monitor",
        MONITOR,
        "--restrict-to-group",
        GROUP,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let recs = records(&out);
    let ps = parts(&recs);
    assert_eq!(
        part_outcomes(&recs),
        pairs(&[
            ("setup", "completed"),
            ("app-registration", "failed"),
            ("app-exchange", "skipped")
        ]),
        "{ps:#?}"
    );
    assert!(ps[1].2.contains("2 apps are named"), "{ps:#?}");
    assert!(
        ps[2].2.contains("02-app-registration.ps1") && ps[2].2.contains("did not complete"),
        "the reason names the script it needs: {ps:#?}"
    );
    assert_eq!(
        started(&recs),
        ["setup", "app-registration"],
        "app-exchange never ran"
    );
    let (_, map) = steps(&recs);
    assert_eq!(
        outcome(&map, "grant"),
        "changed",
        "independent scripts still run"
    );
    let stderr = common::stderr(&out);
    assert!(
        stderr.contains("03-app-exchange.ps1 (app-exchange)"),
        "{stderr}"
    );
    let state = t.now();
    assert!(
        state["graph"]["appRoleAssignments"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        state["exchangeRbac"]["managementScopes"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn setup_with_restrict_to_group_limits_the_app_instead_of_consenting() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let out = t.run(&[
        "setup",
        "--show-secret",
        "--monitor",
        MONITOR,
        "--restrict-to-group",
        GROUP,
        "--secret-months",
        "12",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // The summary says how long RBAC for Applications takes to apply.
    let summary = common::stdout(&out);
    assert!(summary.contains("30 minutes to 2 hours"), "{summary}");
    let state = t.now();
    assert!(
        state["graph"]["appRoleAssignments"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        state["exchangeRbac"]["managementRoleAssignments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let app = apps_named(&state, APP)[0];
    let sp = &state["exchangeRbac"]["servicePrincipals"][0];
    assert_eq!(
        sp["appId"], app["appId"],
        "Exchange's service principal is the app's"
    );
}

#[test]
fn resume_skips_the_scripts_the_journal_shows_as_completed() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let journal = t.file("setup.jsonl");
    let journal_arg = journal.to_str().unwrap();
    // The last script fails: the group does not exist.
    let out = t.run_json(&[
        "setup",
        "--monitor",
        MONITOR,
        "--restrict-to-group",
        "nosuch@contoso.com",
        "--show-secret",
        "--journal",
        journal_arg,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(
        part_outcomes(&records(&out)),
        pairs(&[
            ("setup", "completed"),
            ("app-registration", "completed"),
            ("app-exchange", "failed")
        ])
    );
    assert!(
        common::stderr(&out).contains("--resume"),
        "the hint says how to resume"
    );
    let client_id = apps_named(&t.now(), APP)[0]["appId"]
        .as_str()
        .unwrap()
        .to_string();

    let out = t.run_json(&[
        "setup",
        "--monitor",
        MONITOR,
        "--restrict-to-group",
        GROUP,
        "--show-secret",
        "--resume",
        journal_arg,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let recs = records(&out);
    assert_eq!(
        part_outcomes(&recs),
        pairs(&[
            ("setup", "resumed"),
            ("app-registration", "resumed"),
            ("app-exchange", "completed")
        ])
    );
    assert_eq!(
        started(&recs),
        ["app-exchange"],
        "only the script not completed ran"
    );
    assert!(
        !recs.iter().any(|r| r["type"] == "mailbox"),
        "no mailbox visited again"
    );
    // The values came from the journal.
    let resumed = &parts(&recs)[1];
    assert!(resumed.2.contains("not run again"), "{resumed:?}");
    let state = t.now();
    assert_eq!(
        state["exchangeRbac"]["servicePrincipals"][0]["appId"],
        client_id.as_str()
    );
    assert_eq!(secrets_and_consents(&state).0, 1);
    // The journal holds both runs, in order.
    let lines = common::journal(&journal);
    let part_lines: Vec<(String, String)> = lines
        .iter()
        .filter(|r| r["type"] == "part")
        .map(|r| {
            (
                r["part"].as_str().unwrap().into(),
                r["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(part_lines.len(), 6, "{part_lines:?}");
}

#[test]
fn setup_what_if_changes_nothing() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let before = t.now();
    let out = t.run_json(&[
        "setup",
        "--show-secret",
        "--monitor",
        MONITOR,
        "--what-if",
        "--secret-file",
        "secret.txt",
        "--restrict-to-group",
        GROUP,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let recs = records(&out);
    let (_, map) = steps(&recs);
    assert_eq!(outcome(&map, "grant"), "would-change");
    for item in [
        "application",
        "service-principal",
        "secret",
        "exchange-service-principal",
        "role-assignment",
    ] {
        assert_eq!(item_outcome(&recs, item), "would-create", "{item}");
    }
    let after = t.now();
    assert_eq!(monitor_rights(&after), monitor_rights(&before));
    assert!(apps_named(&after, APP).is_empty());
    assert!(!t.file("secret.txt").exists());
}

// --- EWS readiness ------------------------------------------------------------------------

/// Seconds since the epoch of 1 Oct 2026 (EWS blocked unless allow-listed) and 1 Apr 2027 (off).
const EWS_BLOCK: u64 = 1_790_812_800;
const EWS_SHUTDOWN: u64 = 1_806_537_600;

#[derive(Debug, Clone, Copy)]
enum Ews {
    Unset,
    Disabled,
    EnabledNoApp,
    EnabledAppAllowed,
    EnabledAppNotAllowed,
}

/// What ews-readiness must say today: the script compares the run date with the two dates.
fn expected(case: Ews) -> &'static str {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now >= EWS_SHUTDOWN {
        return "failed";
    }
    let blocked = now >= EWS_BLOCK;
    match case {
        Ews::Unset | Ews::EnabledAppAllowed => "ok",
        Ews::Disabled => "failed",
        Ews::EnabledNoApp if blocked => "skipped",
        Ews::EnabledAppNotAllowed if blocked => "failed",
        Ews::EnabledNoApp | Ews::EnabledAppNotAllowed => "ok",
    }
}

const OTHER_APP: &str = "11111111-2222-3333-4444-555555555555";
const CONNECTOR: &str = "d3d3d3d3-0000-4000-8000-000000000003";

fn ews_tenant(enabled: Option<bool>, allowed: &[&str], with_app: bool) -> SimTenant {
    SimTenant::edited(|tenant| {
        tenant["organizationConfig"]["ewsEnabled"] = json!(enabled);
        tenant["organizationConfig"]["ewsAllowedAppIds"] = json!(allowed);
        if with_app {
            tenant["graph"]["applications"]
                .as_array_mut()
                .unwrap()
                .push(json!({
                    "id": "c3c3c3c3-0000-4000-8000-000000000003",
                    "appId": CONNECTOR,
                    "displayName": APP,
                    "signInAudience": "AzureADMyOrg"
                }));
        }
    })
}

fn ews_step(out: &Output) -> (String, String) {
    let (_, map) = steps(&records(out));
    assert_eq!(outcome(&map, "ews-settings"), "ok", "{}", describe(out));
    (
        outcome(&map, "ews-readiness"),
        message(&map, "ews-readiness"),
    )
}

#[test]
fn ews_readiness_reads_the_organization_switch() {
    if common::pwsh().is_none() {
        return;
    }
    for (enabled, case) in [
        (None, Ews::Unset),
        (Some(true), Ews::EnabledNoApp),
        (Some(false), Ews::Disabled),
    ] {
        let t = ews_tenant(enabled, &[OTHER_APP], false);
        let before = t.now()["organizationConfig"].clone();
        let out = t.run_json(&["ews-readiness"]);
        let want = expected(case);
        assert_eq!(
            out.status.code(),
            Some(if want == "failed" { 1 } else { 0 }),
            "{case:?}: {}",
            describe(&out)
        );
        let (got, text) = ews_step(&out);
        assert_eq!(got, want, "{case:?}: {text}");
        let recs = records(&out);
        let setting = |name: &str| {
            recs.iter()
                .find(|r| r["type"] == "setting" && r["name"] == name)
                .and_then(|r| r["value"].as_str())
                .unwrap_or_else(|| panic!("{name}"))
                .to_string()
        };
        assert_eq!(
            setting("EwsAllowedAppIDs"),
            OTHER_APP,
            "read with -RetrieveEwsOperationAccessPolicy"
        );
        assert_eq!(setting("EWS blocked from"), "2026-10-01");
        assert_eq!(setting("EWS switched off"), "2027-04-01");
        assert!(setting("Graph alternative").contains("graph.microsoft.com"));
        match case {
            Ews::Unset => assert_eq!(setting("EwsEnabled"), "not set (null)"),
            Ews::Disabled => {
                assert_eq!(setting("EwsEnabled"), "False");
                // It says how to allow the connector, keeping the list, and changes nothing itself.
                assert!(
                    text.contains(&format!(
                        "Set-OrganizationConfig -EwsEnabled $true -EwsAllowedAppIDs '{OTHER_APP},"
                    )),
                    "{text}"
                );
            }
            _ => assert_eq!(setting("EwsEnabled"), "True"),
        }
        assert_eq!(t.now()["organizationConfig"], before, "{case:?}: read only");
    }
}

#[test]
fn ews_readiness_in_setup_checks_the_registered_app() {
    if common::pwsh().is_none() {
        return;
    }
    // The tenant already has the connector's app, so setup reuses it and checks its client ID.
    for (allowed, case) in [
        (vec![OTHER_APP, CONNECTOR], Ews::EnabledAppAllowed),
        (vec![OTHER_APP], Ews::EnabledAppNotAllowed),
    ] {
        let t = ews_tenant(Some(true), &allowed, true);
        let out = run_setup(&t, MONITOR, &[]);
        let (got, text) = ews_step(&out);
        assert_eq!(got, expected(case), "{case:?}: {}", describe(&out));
        assert!(text.contains(CONNECTOR), "{case:?}: {text}");
        if matches!(case, Ews::EnabledAppNotAllowed) {
            assert!(
                text.contains(&format!("-EwsAllowedAppIDs '{OTHER_APP},{CONNECTOR}'")),
                "{text}"
            );
        }
        assert_eq!(
            t.now()["organizationConfig"]["ewsAllowedAppIds"],
            json!(allowed),
            "read only"
        );
    }
}

#[test]
fn ews_readiness_on_exchange_server_says_the_retirement_does_not_apply() {
    if common::pwsh().is_none() {
        return;
    }
    for (enabled, want) in [(Some(false), "failed"), (Some(true), "ok"), (None, "ok")] {
        let t = ews_tenant(enabled, &[], false);
        let out = t.run_json(&[
            "ews-readiness",
            "--connection",
            "onprem",
            "--server",
            "mail01.contoso.local",
        ]);
        let (got, text) = ews_step(&out);
        assert_eq!(got, want, "{enabled:?}: {}", describe(&out));
        let recs = records(&out);
        let retirement = recs
            .iter()
            .find(|r| r["type"] == "setting" && r["name"] == "EWS retirement")
            .unwrap();
        assert_eq!(retirement["value"], "does not apply");
        assert!(
            retirement["note"]
                .as_str()
                .unwrap()
                .contains("Exchange Server")
        );
        assert!(
            !recs
                .iter()
                .any(|r| r["type"] == "setting" && r["name"] == "EWS switched off"),
            "no cloud dates on premises"
        );
        if want == "failed" {
            assert!(
                text.contains("Set-OrganizationConfig -EwsEnabled $true"),
                "{text}"
            );
        }
    }
}

// --- Every variant parses ---------------------------------------------------------------

#[test]
fn every_variant_of_these_scripts_parses_without_errors() {
    let Some(pwsh) = common::pwsh() else { return };
    let dir = tempfile::tempdir().unwrap();
    let exo_app: &[&str] = &[
        "--connection",
        "exo-app",
        "--app-id",
        "a",
        "--organization",
        "contoso.onmicrosoft.com",
        "--certificate-path",
        "c.pfx",
    ];
    let onprem: &[&str] = &["--connection", "onprem", "--server", "mail01.contoso.local"];
    let restrict: &[&str] = &["--restrict-to-group", "O'Brien's group"];
    let variants: Vec<(&str, Vec<&[&str]>)> = vec![
        (
            "app-registration",
            vec![
                &[],
                restrict,
                &["--certificate-path", "c.cer"],
                &["--secret-file", "s.txt", "--app-name", "O\u{2019}Brien"],
            ],
        ),
        (
            "ews-readiness",
            vec![&[], exo_app, onprem, &["--connection", "legacy-basic"]],
        ),
        (
            "setup",
            vec![
                &[],
                restrict,
                exo_app,
                onprem,
                &["--connection", "legacy-basic"],
                &["--secret-file", "s.txt"],
            ],
        ),
    ];
    let mut count = 0;
    for (script, sets) in &variants {
        for (i, options) in sets.iter().enumerate() {
            let args = [&[*script][..], options].concat();
            count += common::write_scripts(&args, dir.path(), &format!("{script}.{i}"));
        }
        // With -RestrictToGroup and exo-app both parameter sets are rendered together.
        if *script == "app-registration" {
            let args = [&[*script][..], restrict, exo_app].concat();
            count +=
                common::write_scripts(&args, dir.path(), &format!("{script}.restrict-exo-app"));
        }
    }
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ps/Inspect-Script.ps1");
    let output = std::process::Command::new(pwsh)
        .args(["-NoLogo", "-NoProfile", "-NonInteractive", "-File"])
        .arg(&checker)
        .arg("-Directory")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", common::stderr(&output));
    let reports: Vec<Value> = common::stdout(&output)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), count);
    for report in &reports {
        assert_eq!(
            report["errors"],
            json!([]),
            "{}: parse errors",
            report["file"]
        );
        assert_eq!(
            report["ps7"],
            json!([]),
            "{}: PowerShell-7-only syntax",
            report["file"]
        );
        assert_eq!(report["bom"], json!(true), "{}", report["file"]);
    }
}

#[test]
fn a_crashed_script_makes_the_run_exit_4_the_others_still_run_and_resume_finishes_it() {
    if common::pwsh().is_none() {
        return;
    }
    // pwsh dies at the 3rd mailbox of the first script (the simulation kills its process).
    let t = SimTenant::edited(|tenant| tenant["faults"]["crashAtMailbox"] = json!(3));
    let journal = t.file("crash.jsonl");
    let journal_arg = journal.to_str().unwrap();
    let out = run_setup(&t, MONITOR, &["--journal", journal_arg]);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let recs = records(&out);
    assert_eq!(
        part_outcomes(&recs),
        pairs(&[
            ("setup", "stopped"),
            ("app-registration", "completed"),
            ("app-exchange", "completed")
        ]),
        "the scripts that do not need the first one still ran"
    );
    let stderr = common::stderr(&out);
    assert!(
        stderr.contains("01-setup.ps1 (setup): pwsh was killed"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("--resume {journal_arg}")),
        "{stderr}"
    );

    let out = run_setup(&t, MONITOR, &["--resume", journal_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let recs = records(&out);
    assert_eq!(
        part_outcomes(&recs),
        pairs(&[
            ("setup", "completed"),
            ("app-registration", "resumed"),
            ("app-exchange", "resumed")
        ])
    );
    assert_eq!(started(&recs), ["setup"]);
    let skipped = recs
        .iter()
        .filter(|r| r["type"] == "mailbox" && r["kind"] == "resumed")
        .count();
    assert!(
        skipped >= 2,
        "the mailboxes done before the crash are not visited again: {skipped}"
    );
    let state = t.now();
    assert!(
        monitor_rights(&state).values().all(Option::is_some),
        "every calendar granted"
    );
    assert_eq!(secrets_and_consents(&state), (1, 1));
}

#[test]
fn the_rendered_scripts_run_by_hand_one_after_another_with_the_values_carried_over() {
    let Some(pwsh) = common::pwsh() else { return };
    let t = SimTenant::demo();
    let dir = t.file("scripts");
    calperm()
        .args([
            "render",
            "app-registration",
            "--restrict-to-group",
            GROUP,
            "--secret-months",
            "12",
            "-o",
        ])
        .arg(&dir)
        .assert()
        .success();
    // What calperm's --simulate does for a run, done by hand: the simulated modules first.
    let by_hand = |command: &str| -> Output {
        let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sim/modules");
        std::process::Command::new(&pwsh)
            .args([
                "-NoLogo",
                "-NoProfile",
                "-NonInteractive",
                "-Command",
                command,
            ])
            .current_dir(&dir)
            .env("PSModulePath", modules)
            .env("CALPERM_SIM_TENANT", t.file("tenant.json"))
            .env("CALPERM_SIM_STATE", t.file("state.json"))
            .output()
            .unwrap()
    };
    // The first script's outputs, as a reviewer running it would see them (objects). Its output
    // is captured here, not a terminal, so the secret is shown only because ShowSecret says yes.
    let out = by_hand(
        "& ./01-app-registration.ps1 -ShowSecret yes -RetryDelayMs 10 | Where-Object { $_.type -eq 'output' } | ForEach-Object { '{0}={1}' -f $_.name, $_.value }",
    );
    assert!(out.status.success(), "{}", describe(&out));
    let values: BTreeMap<String, String> = common::stdout(&out)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let state = t.now();
    let app = apps_named(&state, APP)[0];
    assert_eq!(
        values["ClientId"],
        app["appId"].as_str().unwrap(),
        "{values:?}"
    );
    let out = by_hand(&format!(
        "& ./02-app-exchange.ps1 -ClientId '{}' -ServicePrincipalId '{}' -RetryDelayMs 10 | Out-Null",
        values["ClientId"], values["ServicePrincipalId"]
    ));
    assert!(out.status.success(), "{}", describe(&out));
    let state = t.now();
    let exchange_sp = &state["exchangeRbac"]["servicePrincipals"][0];
    assert_eq!(exchange_sp["appId"], values["ClientId"].as_str());
    assert_eq!(
        exchange_sp["objectId"],
        values["ServicePrincipalId"].as_str()
    );
    assert_eq!(
        state["exchangeRbac"]["managementRoleAssignments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
