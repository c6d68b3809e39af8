//! setup and ews-readiness end to end in the real pwsh against the simulated tenant, on copies of
//! the demo tenant: every step reported in the manual's order, a failed step skipping only the
//! steps that need it, EWS readiness for each state of the organization's EWS switch; and every
//! variant of the scripts this module owns parsing without errors.

mod common;

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

/// Setup's steps, in order.
const STEPS: [&str; 10] = [
    "execution-policy",
    "exchange-connect",
    "grant",
    "app-registration",
    "admin-consent",
    "client-secret",
    "mailbox-restriction",
    "ews-settings",
    "ews-readiness",
    "connector-settings",
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

#[test]
fn setup_runs_every_step_on_the_demo_tenant() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let out = t.run_json(&[
        "setup",
        "--show-secret",
        "--monitor",
        MONITOR,
        "--secret-months",
        "12",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let recs = records(&out);
    let (order, map) = steps(&recs);
    assert_eq!(order, STEPS, "{}", describe(&out));
    assert!(
        map.values().all(|(o, _)| o != "failed" && o != "skipped"),
        "{map:#?}"
    );
    assert_eq!(outcome(&map, "exchange-connect"), "ok");
    assert_eq!(outcome(&map, "grant"), "changed");
    assert_eq!(outcome(&map, "app-registration"), "changed");
    assert_eq!(outcome(&map, "admin-consent"), "changed");
    assert_eq!(outcome(&map, "client-secret"), "changed");
    assert_eq!(outcome(&map, "mailbox-restriction"), "not-applicable");
    assert_eq!(outcome(&map, "connector-settings"), "ok");
    assert!(!recs.iter().any(|r| r["type"] == "fatal"));

    // The mailboxes are granted: every in-scope calendar now has the monitor.
    let counts = mailbox_outcomes(&recs);
    assert!(
        counts.get("added").copied().unwrap_or(0) > 0 && !counts.contains_key("failed"),
        "{counts:?}"
    );
    let state = t.now();
    let rights = monitor_rights(&state);
    assert!(!rights.is_empty());
    assert!(rights.values().all(Option::is_some), "{rights:#?}");
    // The app is registered, consented, with one secret; the settings name it.
    let apps = apps_named(&state, APP);
    assert_eq!(apps.len(), 1);
    let client_id = apps[0]["appId"].as_str().unwrap();
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
    assert!(
        settings.contains_key("Secret expiry") && settings.contains_key("EwsEnabled"),
        "{settings:#?}"
    );

    // Run again: nothing left to do.
    let out = t.run_json(&[
        "setup",
        "--show-secret",
        "--monitor",
        MONITOR,
        "--secret-months",
        "12",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let (order, map) = steps(&records(&out));
    assert_eq!(order, STEPS);
    for step in [
        "grant",
        "app-registration",
        "admin-consent",
        "client-secret",
    ] {
        assert_eq!(outcome(&map, step), "unchanged", "{step}: {map:#?}");
    }
    assert_eq!(apps_named(&t.now(), APP).len(), 1);
}

#[test]
fn a_missing_monitor_fails_the_grant_step_and_the_app_is_still_registered() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let before = monitor_rights(&t.now());
    let out = t.run_json(&[
        "setup",
        "--show-secret",
        "--monitor",
        "nobody@contoso.com",
        "--secret-months",
        "12",
    ]);
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
    for step in ["app-registration", "admin-consent", "client-secret"] {
        assert_eq!(outcome(&map, step), "changed", "{step}");
    }
    assert_eq!(outcome(&map, "connector-settings"), "ok");
    let state = t.now();
    assert_eq!(apps_named(&state, APP).len(), 1, "the app was registered");
    assert_eq!(monitor_rights(&state), before, "no calendar changed");
}

#[test]
fn without_exchange_the_steps_that_need_it_are_skipped() {
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
    let (order, map) = steps(&records(&out));
    assert_eq!(
        order,
        STEPS
            .iter()
            .filter(|s| **s != "ews-settings")
            .copied()
            .collect::<Vec<_>>()
    );
    assert_eq!(outcome(&map, "exchange-connect"), "failed");
    assert!(message(&map, "exchange-connect").contains("fabrikam.onmicrosoft.com"));
    for step in ["grant", "mailbox-restriction", "ews-readiness"] {
        assert_eq!(outcome(&map, step), "skipped", "{step}: {map:#?}");
        assert!(
            message(&map, step).contains("exchange-connect"),
            "{step}: {map:#?}"
        );
    }
    assert_eq!(outcome(&map, "app-registration"), "changed");
    assert_eq!(
        outcome(&map, "admin-consent"),
        "skipped",
        "restricted: no tenant-wide consent"
    );
    assert_eq!(outcome(&map, "client-secret"), "changed");
    assert_eq!(outcome(&map, "connector-settings"), "ok");
}

#[test]
fn when_the_app_registration_fails_the_steps_that_need_it_are_skipped() {
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
    let (order, map) = steps(&recs);
    assert_eq!(order, STEPS);
    assert_eq!(outcome(&map, "app-registration"), "failed");
    assert!(
        message(&map, "app-registration").contains("2 apps are named"),
        "{map:#?}"
    );
    for step in [
        "admin-consent",
        "client-secret",
        "mailbox-restriction",
        "connector-settings",
    ] {
        assert_eq!(outcome(&map, step), "skipped", "{step}: {map:#?}");
        assert!(
            message(&map, step).contains("app-registration"),
            "{step}: {map:#?}"
        );
    }
    assert_eq!(
        outcome(&map, "grant"),
        "changed",
        "independent steps still run"
    );
    assert_ne!(outcome(&map, "ews-readiness"), "skipped");
    assert!(!recs.iter().any(|r| r["type"] == "fatal"));
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
    let out = t.run_json(&[
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
    let recs = records(&out);
    let (_, map) = steps(&recs);
    assert_eq!(outcome(&map, "admin-consent"), "skipped");
    assert_eq!(outcome(&map, "mailbox-restriction"), "changed");
    assert_eq!(item_outcome(&recs, "role-assignment"), "created");
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
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let (order, map) = steps(&records(&out));
    assert_eq!(order, STEPS);
    for step in [
        "grant",
        "app-registration",
        "admin-consent",
        "client-secret",
    ] {
        assert_eq!(outcome(&map, step), "would-change", "{step}");
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
        let out = t.run_json(&[
            "setup",
            "--show-secret",
            "--monitor",
            MONITOR,
            "--secret-months",
            "12",
        ]);
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
            let output = calperm()
                .arg("render")
                .arg(script)
                .args(*options)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{script} {options:?}: {}",
                common::stderr(&output)
            );
            std::fs::write(dir.path().join(format!("{script}.{i}.ps1")), &output.stdout).unwrap();
            count += 1;
        }
        // With -RestrictToGroup and exo-app both parameter sets are rendered together.
        if *script == "app-registration" {
            let mut options = restrict.to_vec();
            options.extend_from_slice(exo_app);
            let output = calperm()
                .arg("render")
                .arg(script)
                .args(&options)
                .output()
                .unwrap();
            assert!(output.status.success(), "{}", common::stderr(&output));
            std::fs::write(
                dir.path().join(format!("{script}.restrict-exo-app.ps1")),
                &output.stdout,
            )
            .unwrap();
            count += 1;
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
