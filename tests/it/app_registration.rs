//! app-registration end to end: the rendered script, unchanged, in the real pwsh against the
//! simulated tenant (`calperm run app-registration --simulate …`), on copies of the demo tenant.
//! What it must show: the app, service principal, permission, consent and secret are created once
//! and reused after; the secret appears nowhere but on the console and in `--secret-file`; two
//! apps with the same name stop the run untouched; `--restrict-to-group` scopes the app with RBAC
//! for Applications instead of tenant-wide consent.

use crate::common;

use common::tenant::{SimTenant, apps_named, certificate, describe, records};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;

const APP: &str = "Exchange calendar synchronization";
const SECRET: &str = "Exchange calendar synchronization secret";
const GRAPH: &str = "00000003-0000-0000-c000-000000000000";
const CALENDARS_READ: &str = "798ee544-9d2d-430c-a058-570e29e34338";
const GROUP: &str = "calendarsync@contoso.com";
const SCOPE: &str = "Exchange calendar synchronization - mailboxes";

/// (item, outcome) of every item record, in order.
fn items(records: &[Value]) -> Vec<(String, String)> {
    records
        .iter()
        .filter(|r| r["type"] == "item")
        .map(|r| {
            (
                r["item"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn item<'a>(records: &'a [Value], name: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["type"] == "item" && r["item"] == name)
        .unwrap_or_else(|| panic!("no {name} item in {records:#?}"))
}

fn setting(records: &[Value], name: &str) -> String {
    records
        .iter()
        .find(|r| r["type"] == "setting" && r["name"] == name)
        .and_then(|r| r["value"].as_str())
        .unwrap_or_else(|| panic!("no setting {name} in {records:#?}"))
        .to_string()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn list<'a>(value: &'a Value, pointer: &str) -> &'a Vec<Value> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{pointer} is not a list"))
}

fn service_principals_of<'a>(state: &'a Value, app_id: &str) -> Vec<&'a Value> {
    list(state, "/graph/servicePrincipals")
        .iter()
        .filter(|sp| sp["appId"] == app_id)
        .collect()
}

fn graph_sp_id(state: &Value) -> String {
    service_principals_of(state, GRAPH)[0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Calendars.Read app role assignments of the principal on Microsoft Graph (the admin consent).
fn consents<'a>(state: &'a Value, principal: &str) -> Vec<&'a Value> {
    let graph = graph_sp_id(state);
    list(state, "/graph/appRoleAssignments")
        .iter()
        .filter(|a| {
            a["principalId"] == principal
                && a["resourceId"] == graph.as_str()
                && a["appRoleId"] == CALENDARS_READ
        })
        .collect()
}

fn declared(app: &Value, resource: &str, id: &str, kind: &str) -> bool {
    app["requiredResourceAccess"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| {
            r["resourceAppId"] == resource
                && r["resourceAccess"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["id"] == id && a["type"] == kind)
        })
}

/// The one app named APP, its service principal's object ID and its client ID.
fn the_app(state: &Value) -> (&Value, String, String) {
    let apps = apps_named(state, APP);
    assert_eq!(apps.len(), 1, "exactly one app named {APP}");
    let app_id = apps[0]["appId"].as_str().unwrap().to_string();
    let sps = service_principals_of(state, &app_id);
    assert_eq!(sps.len(), 1, "exactly one service principal for {app_id}");
    (apps[0], sps[0]["id"].as_str().unwrap().to_string(), app_id)
}

/// The secret as the console showed it (on calperm's stderr: pwsh's non-record output).
fn console_secret(out: &Output) -> String {
    let stderr = common::stderr(out);
    assert!(
        stderr.contains("copy it now, it cannot be shown again"),
        "{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("Secret:"))
        .unwrap_or_else(|| panic!("no secret line in {stderr}"));
    let secret = line.split_whitespace().last().unwrap().to_string();
    assert!(secret.len() >= 30, "{line}");
    secret
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_first_run_creates_everything_and_a_second_run_creates_nothing() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let out = t.run_json(&["app-registration", "--show-secret", "--secret-months", "12"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let first = records(&out);
    assert_eq!(
        items(&first),
        pairs(&[
            ("application", "created"),
            ("permission", "created"),
            ("service-principal", "created"),
            ("consent", "created"),
            ("secret", "created"),
        ]),
        "{}",
        describe(&out)
    );

    let state = t.now();
    let (app, sp, app_id) = the_app(&state);
    assert_eq!(app["signInAudience"], "AzureADMyOrg");
    assert!(declared(app, GRAPH, CALENDARS_READ, "Role"), "{app:#}");
    assert_eq!(
        consents(&state, &sp).len(),
        1,
        "admin consent is the app role assignment"
    );
    let passwords = app["passwordCredentials"].as_array().unwrap();
    assert_eq!(passwords.len(), 1);
    assert_eq!(passwords[0]["displayName"], SECRET);
    assert_eq!(item(&first, "application")["id"], app_id.as_str());
    assert_eq!(item(&first, "service-principal")["id"], sp.as_str());

    // What the connector needs, as settings.
    assert_eq!(
        setting(&first, "Tenant ID"),
        state["tenantId"].as_str().unwrap()
    );
    assert_eq!(setting(&first, "Client (application) ID"), app_id);
    let expiry = setting(&first, "Secret expiry");
    assert_eq!(passwords[0]["endDateTime"].as_str().unwrap(), expiry);
    // 12 months: the same month, one year after the secret's start.
    let start = passwords[0]["startDateTime"].as_str().unwrap();
    assert_eq!(
        expiry[..4].parse::<u32>().unwrap(),
        start[..4].parse::<u32>().unwrap() + 1,
        "{start} → {expiry}"
    );
    assert_eq!(expiry[5..7], start[5..7], "{start} → {expiry}");
    assert_eq!(
        setting(&first, "EWS URL"),
        "https://outlook.office365.com/EWS/Exchange.asmx"
    );
    assert_eq!(setting(&first, "Autodiscover"), "off");
    let api = first
        .iter()
        .find(|r| r["type"] == "setting" && r["name"] == "API")
        .unwrap();
    assert!(
        api["note"]
            .as_str()
            .unwrap()
            .contains("graph.microsoft.com, not to EWS"),
        "{api}"
    );

    // Rerun: everything is found and reused, nothing is created, no second app.
    let out = t.run_json(&["app-registration", "--show-secret", "--secret-months", "12"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let second = records(&out);
    assert_eq!(
        items(&second),
        pairs(&[
            ("application", "unchanged"),
            ("permission", "unchanged"),
            ("service-principal", "unchanged"),
            ("consent", "unchanged"),
            ("secret", "unchanged"),
        ]),
        "{}",
        describe(&out)
    );
    let message = item(&second, "secret")["message"].as_str().unwrap();
    assert!(
        message.contains("cannot be read back") && message.contains("another SecretName"),
        "{message}"
    );
    assert!(
        !common::stderr(&out).contains("copy it now"),
        "no secret is shown when none is made"
    );
    let again = t.now();
    assert_eq!(list(&again, "/graph/applications").len(), 1);
    let (app, sp2, app_id2) = the_app(&again);
    assert_eq!(
        (sp2.as_str(), app_id2.as_str()),
        (sp.as_str(), app_id.as_str())
    );
    assert_eq!(consents(&again, &sp).len(), 1);
    assert_eq!(app["passwordCredentials"].as_array().unwrap().len(), 1);
    assert_eq!(
        list(&again, "/graph/appRoleAssignments").len(),
        list(&state, "/graph/appRoleAssignments").len()
    );
}

#[test]
fn the_secret_appears_only_on_the_console_and_in_the_secret_file() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    // No --journal: the default journal goes to the working directory, inside the scanned tree.
    let out = t.run_json(&[
        "app-registration",
        "--show-secret",
        "--secret-file",
        "secret.txt",
        "--report",
        "report.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let secret = console_secret(&out);
    let secret_file = t.file("secret.txt");
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), secret);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "the secret file is readable only by the user");
    }
    assert!(
        !contains(&out.stdout, secret.as_bytes()),
        "the secret is in the json report on stdout"
    );
    assert_eq!(item(&records(&out), "secret-file")["outcome"], "created");

    // Every file the run wrote: journal, report, sim state, temp dir. Only the secret file has it.
    let files = files_under(t.root());
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("calperm-journal-")),
        "{names:?}"
    );
    assert!(
        names.contains(&"report.jsonl".to_string()) && names.contains(&"state.json".to_string()),
        "{names:?}"
    );
    let holders: Vec<&PathBuf> = files
        .iter()
        .filter(|p| contains(&std::fs::read(p).unwrap(), secret.as_bytes()))
        .collect();
    assert_eq!(holders, vec![&secret_file], "files holding the secret");

    // An existing secret file is never overwritten, and then no secret is made at all.
    let out = t.run_json(&[
        "app-registration",
        "--show-secret",
        "--secret-name",
        "second secret",
        "--secret-file",
        "secret.txt",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let rerun = records(&out);
    assert_eq!(item(&rerun, "secret")["outcome"], "failed");
    assert!(
        item(&rerun, "secret")["message"]
            .as_str()
            .unwrap()
            .contains("never overwritten")
    );
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), secret);
    assert!(!common::stderr(&out).contains("copy it now"));
    let state = t.now();
    let (app, _, _) = the_app(&state);
    assert_eq!(
        app["passwordCredentials"].as_array().unwrap().len(),
        1,
        "no second secret"
    );
}

#[test]
fn two_apps_with_the_same_name_stop_the_run_and_change_nothing() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::edited(|tenant| {
        let apps = tenant["graph"]["applications"].as_array_mut().unwrap();
        for (id, app_id) in [
            (
                "a1a1a1a1-0000-4000-8000-000000000001",
                "b1b1b1b1-0000-4000-8000-000000000001",
            ),
            (
                "a2a2a2a2-0000-4000-8000-000000000002",
                "b2b2b2b2-0000-4000-8000-000000000002",
            ),
        ] {
            apps.push(json!({ "id": id, "appId": app_id, "displayName": APP, "signInAudience": "AzureADMyOrg" }));
        }
    });
    let before = t.now();
    let out = t.run_json(&["app-registration", "--show-secret"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let recs = records(&out);
    let fatal = recs
        .iter()
        .find(|r| r["type"] == "fatal")
        .unwrap_or_else(|| panic!("{}", describe(&out)));
    assert_eq!(fatal["kind"], "app-ambiguous");
    let message = fatal["message"].as_str().unwrap();
    for id in [
        "a1a1a1a1-0000-4000-8000-000000000001",
        "a2a2a2a2-0000-4000-8000-000000000002",
        "b1b1b1b1-0000-4000-8000-000000000001",
    ] {
        assert!(message.contains(id), "{message}");
    }
    assert!(
        !items(&recs)
            .iter()
            .any(|(_, o)| o == "created" || o == "updated"),
        "{recs:#?}"
    );
    // Nothing in Entra changed (the saved state only fills in empty lists).
    let after = t.now();
    for pointer in [
        "/graph/applications",
        "/graph/servicePrincipals",
        "/graph/appRoleAssignments",
    ] {
        assert_eq!(
            list(&after, pointer).len(),
            list(&before, pointer).len(),
            "{pointer}"
        );
    }
    for app in list(&after, "/graph/applications") {
        for field in [
            "requiredResourceAccess",
            "passwordCredentials",
            "keyCredentials",
        ] {
            assert!(
                app[field].as_array().is_none_or(Vec::is_empty),
                "{field} of {app:#}"
            );
        }
    }
}

#[test]
fn an_existing_app_gets_the_permission_added_next_to_the_ones_it_had() {
    if common::pwsh().is_none() {
        return;
    }
    const USER_READ: &str = "e1fe6dd8-ba31-4d61-89e7-88639da4683d";
    const EXO: &str = "00000002-0000-0ff1-ce00-000000000000";
    const FULL_ACCESS_AS_APP: &str = "dc890d15-9560-4a4c-9b7f-a736ec74ec40";
    let t = SimTenant::edited(|tenant| {
        tenant["graph"]["applications"].as_array_mut().unwrap().push(json!({
            "id": "c3c3c3c3-0000-4000-8000-000000000003",
            "appId": "d3d3d3d3-0000-4000-8000-000000000003",
            "displayName": APP,
            "signInAudience": "AzureADMyOrg",
            "requiredResourceAccess": [
                { "resourceAppId": GRAPH, "resourceAccess": [{ "id": USER_READ, "type": "Scope" }] },
                { "resourceAppId": EXO, "resourceAccess": [{ "id": FULL_ACCESS_AS_APP, "type": "Role" }] }
            ]
        }));
    });
    let out = t.run_json(&["app-registration", "--show-secret", "--secret-months", "6"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let recs = records(&out);
    assert_eq!(item(&recs, "application")["outcome"], "unchanged");
    assert_eq!(item(&recs, "permission")["outcome"], "updated");
    let state = t.now();
    let (app, _, app_id) = the_app(&state);
    assert_eq!(
        app_id, "d3d3d3d3-0000-4000-8000-000000000003",
        "the existing app was reused"
    );
    assert!(declared(app, GRAPH, CALENDARS_READ, "Role"));
    assert!(
        declared(app, GRAPH, USER_READ, "Scope"),
        "the permissions it had are kept: {app:#}"
    );
    assert!(declared(app, EXO, FULL_ACCESS_AS_APP, "Role"), "{app:#}");
}

#[test]
fn a_quote_in_the_app_name_is_doubled_in_the_graph_filter() {
    if common::pwsh().is_none() {
        return;
    }
    let name = "O'Brien's calendar sync";
    let t = SimTenant::demo();
    for expected in ["created", "unchanged"] {
        let out = t.run_json(&[
            "app-registration",
            "--show-secret",
            "--app-name",
            name,
            "--secret-months",
            "3",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        assert_eq!(
            item(&records(&out), "application")["outcome"],
            expected,
            "{}",
            describe(&out)
        );
    }
    assert_eq!(apps_named(&t.now(), name).len(), 1);
}

#[test]
fn what_if_reports_what_would_be_created_and_changes_nothing() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let before = t.now();
    let out = t.run_json(&[
        "app-registration",
        "--show-secret",
        "--what-if",
        "--secret-file",
        "secret.txt",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        items(&records(&out)),
        pairs(&[
            ("application", "would-create"),
            ("permission", "would-create"),
            ("service-principal", "would-create"),
            ("consent", "would-create"),
            ("secret", "would-create"),
            ("secret-file", "would-create"),
        ])
    );
    assert_eq!(t.now()["graph"], before["graph"]);
    assert!(!t.file("secret.txt").exists());
}

#[test]
fn restrict_to_group_scopes_the_app_with_rbac_and_skips_tenant_wide_consent() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let out = t.run_json(&[
        "app-registration",
        "--show-secret",
        "--restrict-to-group",
        GROUP,
        "--secret-months",
        "12",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let recs = records(&out);
    assert_eq!(
        items(&recs),
        pairs(&[
            ("application", "created"),
            ("permission", "created"),
            ("service-principal", "created"),
            ("consent", "skipped"),
            ("secret", "created"),
            ("management-scope", "created"),
            ("exchange-service-principal", "created"),
            ("role-assignment", "created"),
        ]),
        "{}",
        describe(&out)
    );
    assert!(
        item(&recs, "consent")["message"]
            .as_str()
            .unwrap()
            .contains("add up")
    );
    // The group's first member (also in All Staff: MemberOfGroup is multi-valued) is in scope.
    assert_eq!(
        setting(&recs, "Restriction check"),
        "adele.vance@contoso.com: InScope True"
    );
    assert!(setting(&recs, "Mailbox access").contains(GROUP));

    let state = t.now();
    let (_, sp, app_id) = the_app(&state);
    assert!(
        consents(&state, &sp).is_empty(),
        "no tenant-wide consent in restricted mode"
    );
    let scopes = list(&state, "/exchangeRbac/managementScopes");
    assert_eq!(scopes.len(), 1);
    assert_eq!(scopes[0]["name"], SCOPE);
    let dn = state["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["primarySmtpAddress"] == GROUP)
        .unwrap()["distinguishedName"]
        .clone();
    assert_eq!(
        scopes[0]["recipientRestrictionFilter"],
        format!("MemberOfGroup -eq '{}'", dn.as_str().unwrap())
    );
    let exchange_sps = list(&state, "/exchangeRbac/servicePrincipals");
    assert_eq!(exchange_sps.len(), 1);
    assert_eq!(
        (
            exchange_sps[0]["appId"].as_str().unwrap(),
            exchange_sps[0]["objectId"].as_str().unwrap()
        ),
        (app_id.as_str(), sp.as_str())
    );
    let assignments = list(&state, "/exchangeRbac/managementRoleAssignments");
    assert_eq!(assignments.len(), 1);
    assert_eq!(assignments[0]["role"], "Application Calendars.Read");
    assert_eq!(assignments[0]["app"], sp.as_str());
    assert_eq!(assignments[0]["customResourceScope"], SCOPE);

    // Rerun: nothing is created, nothing added in Entra or Exchange.
    let out = t.run_json(&[
        "app-registration",
        "--show-secret",
        "--restrict-to-group",
        GROUP,
        "--secret-months",
        "12",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let rerun = items(&records(&out));
    assert!(
        rerun
            .iter()
            .all(|(_, o)| o == "unchanged" || o == "skipped"),
        "{rerun:?}"
    );
    assert_eq!(rerun.len(), 8, "{rerun:?}");
    let again = t.now();
    for pointer in [
        "/graph/applications",
        "/graph/servicePrincipals",
        "/graph/appRoleAssignments",
        "/exchangeRbac/managementScopes",
        "/exchangeRbac/servicePrincipals",
        "/exchangeRbac/managementRoleAssignments",
    ] {
        assert_eq!(
            list(&again, pointer).len(),
            list(&state, pointer).len(),
            "{pointer}"
        );
    }
}

#[test]
fn restricting_later_names_the_tenant_wide_consent_that_still_applies() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let out = t.run_json(&["app-registration", "--show-secret", "--secret-months", "12"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = t.run_json(&[
        "app-registration",
        "--show-secret",
        "--restrict-to-group",
        GROUP,
        "--secret-months",
        "12",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let consent = item(&records(&out), "consent").clone();
    assert_eq!(consent["outcome"], "skipped");
    let message = consent["message"].as_str().unwrap();
    assert!(
        message.contains("already exists")
            && message.contains("Remove-MgServicePrincipalAppRoleAssignment"),
        "{message}"
    );
    assert!(
        common::stderr(&out).contains("WARNING"),
        "{}",
        describe(&out)
    );
    let state = t.now();
    let (_, sp, _) = the_app(&state);
    assert_eq!(
        consents(&state, &sp).len(),
        1,
        "the script does not remove it by itself"
    );
}

#[test]
fn a_certificate_is_registered_instead_of_a_secret() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let cer = t.file("connector.cer");
    let thumbprint = certificate(&cer, "calendar sync");

    let out = t.run_json(&[
        "app-registration",
        "--show-secret",
        "--certificate-path",
        "connector.cer",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let recs = records(&out);
    let certificate = item(&recs, "certificate");
    assert_eq!(certificate["outcome"], "created");
    assert_eq!(certificate["id"], thumbprint.as_str());
    assert!(
        !recs
            .iter()
            .any(|r| r["type"] == "item" && r["item"] == "secret"),
        "no secret with a certificate"
    );
    assert!(!common::stderr(&out).contains("copy it now"));
    assert_eq!(setting(&recs, "Certificate thumbprint"), thumbprint);
    let state = t.now();
    let (app, _, _) = the_app(&state);
    assert_eq!(app["keyCredentials"].as_array().unwrap().len(), 1);
    assert_eq!(app["keyCredentials"][0]["type"], "AsymmetricX509Cert");
    assert!(app["passwordCredentials"].as_array().unwrap().is_empty());

    // Rerun: the certificate is recognized by its thumbprint, not added again.
    let out = t.run_json(&[
        "app-registration",
        "--show-secret",
        "--certificate-path",
        "connector.cer",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(item(&records(&out), "certificate")["outcome"], "unchanged");
    let state = t.now();
    let (app, _, _) = the_app(&state);
    assert_eq!(app["keyCredentials"].as_array().unwrap().len(), 1);
}

#[test]
fn a_management_scope_with_another_filter_is_updated_to_the_group() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::edited(|tenant| {
        tenant["exchangeRbac"]["managementScopes"] = json!([{ "name": SCOPE, "recipientRestrictionFilter": "CustomAttribute1 -eq 'calsync'" }]);
    });
    let out = t.run_json(&[
        "app-registration",
        "--show-secret",
        "--restrict-to-group",
        GROUP,
        "--secret-months",
        "12",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let scope = item(&records(&out), "management-scope").clone();
    assert_eq!(scope["outcome"], "updated");
    assert!(
        scope["message"]
            .as_str()
            .unwrap()
            .contains("was: CustomAttribute1 -eq 'calsync'"),
        "{scope}"
    );
    let state = t.now();
    let scopes = list(&state, "/exchangeRbac/managementScopes");
    assert_eq!(scopes.len(), 1);
    assert!(
        scopes[0]["recipientRestrictionFilter"]
            .as_str()
            .unwrap()
            .starts_with("MemberOfGroup -eq 'CN=CalendarSync Users,")
    );
}
