//! The field notes (docs reference/field-notes.md) that shape how calperm runs Exchange and Graph
//! together, each shown end to end in the real pwsh against the simulated tenant, which behaves
//! as the notes say real tenants and modules do:
//! §1 Exchange Online PowerShell and Microsoft Graph PowerShell clash in one process;
//! §5 Entra ID replicates new objects with a delay;
//! §6 keyCredentials are replaced as a whole list; RBAC for Applications group scopes.

use crate::common;

use common::calperm;
use common::tenant::{SimTenant, apps_named, certificate, describe, records};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;

const MONITOR: &str = "monitor@contoso.com";
const APP: &str = "Exchange calendar synchronization";
const GROUP: &str = "calendarsync@contoso.com";

/// field-notes §1, the exact texts.
const WITH_LOGGING: &str = "ClientCertificateCredential authentication failed: Method not found: '!0 Microsoft.Identity.Client.BaseAbstractApplicationBuilder`1.WithLogging(Microsoft.IdentityModel.Abstractions.IIdentityLogger, Boolean)'.";
const WITH_BROKER: &str = "Method not found: 'Microsoft.Identity.Client.PublicClientApplicationBuilder Microsoft.Identity.Client.Broker.BrokerExtension.WithBroker(Microsoft.Identity.Client.PublicClientApplicationBuilder, Microsoft.Identity.Client.BrokerOptions)'.";

/// `calperm --templates <root>/templates run <args> --simulate … --format json` in the tenant's
/// working directory, with `template` as the override of `<name>.ps1.hbs`.
fn run_override(t: &SimTenant, name: &str, template: &str, args: &[&str]) -> Output {
    let templates = t.root().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(templates.join(format!("{name}.ps1.hbs")), template).unwrap();
    calperm()
        .current_dir(t.root().join("work"))
        .env("TMPDIR", t.root().join("tmp"))
        .arg("--templates")
        .arg(&templates)
        .arg("run")
        .args(args)
        .args([
            "--simulate",
            "tenant.json",
            "--sim-state",
            "state.json",
            "--retry-delay-ms",
            "1",
            "--format",
            "json",
        ])
        .output()
        .unwrap()
}

/// A script that signs in to `first`, then to `second`, in one pwsh, and reports what the
/// second sign-in said.
fn both_in_one_process(first: &str, second: &str) -> String {
    format!(
        "{header}{first} | Out-Null\n\
         try {{ {second} | Out-Null; $message = 'signed in to both' }} catch {{ $message = $_.Exception.Message }}\n\
         Out-Record (ConvertTo-Json -Compress -InputObject ([ordered]@{{ type = 'fatal'; kind = 'connect'; message = $message }}))\n\
         Out-Record '{{\"type\":\"end\",\"exitCode\":1}}'\n\
         exit 1\n",
        header = common::HEADER
    )
}

const CONNECT_EXCHANGE: &str = "Connect-ExchangeOnline -ShowBanner:$false";
const CONNECT_GRAPH: &str = "Connect-MgGraph -Scopes 'Application.ReadWrite.All', 'AppRoleAssignment.ReadWrite.All' -NoWelcome";

fn fatal_message(out: &Output) -> String {
    records(out)
        .iter()
        .find(|r| r["type"] == "fatal")
        .and_then(|r| r["message"].as_str())
        .unwrap_or_else(|| panic!("no fatal record: {}", describe(out)))
        .to_string()
}

#[test]
fn field_note_1_graph_after_exchange_in_one_process_fails_with_the_with_logging_text() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let out = run_override(
        &t,
        "ews-readiness",
        &both_in_one_process(CONNECT_EXCHANGE, CONNECT_GRAPH),
        &["ews-readiness"],
    );
    assert_eq!(fatal_message(&out), WITH_LOGGING, "{}", describe(&out));
}

#[test]
fn field_note_1_exchange_after_graph_in_one_process_fails_with_the_with_broker_text() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let out = run_override(
        &t,
        "ews-readiness",
        &both_in_one_process(CONNECT_GRAPH, CONNECT_EXCHANGE),
        &["ews-readiness"],
    );
    assert_eq!(fatal_message(&out), WITH_BROKER, "{}", describe(&out));
}

#[test]
fn field_note_1_each_sign_in_alone_works_and_the_clash_can_be_turned_off() {
    if common::pwsh().is_none() {
        return;
    }
    // The clash is a property of one process, not of the tenant: with moduleClash off (a tenant
    // whose admin matched the module versions) both sign-ins work.
    let t = SimTenant::edited(|tenant| tenant["faults"]["moduleClash"] = json!(false));
    let out = run_override(
        &t,
        "ews-readiness",
        &both_in_one_process(CONNECT_EXCHANGE, CONNECT_GRAPH),
        &["ews-readiness"],
    );
    assert_eq!(
        fatal_message(&out),
        "signed in to both",
        "{}",
        describe(&out)
    );
}

#[test]
fn field_note_1_the_old_single_process_setup_now_fails_in_the_simulation() {
    if common::pwsh().is_none() {
        return;
    }
    // The setup script as it was before it was split: Exchange, then Graph, in one process. It
    // is run as a one-script override so calperm runs it exactly as it used to.
    let old = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/single-process-setup.ps1.hbs"),
    )
    .unwrap();
    let t = SimTenant::demo();
    let out = run_override(
        &t,
        "ews-readiness",
        &old,
        &[
            "ews-readiness",
            "--monitor",
            MONITOR,
            "--secret-months",
            "12",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let recs = records(&out);
    let step = |name: &str| -> Value {
        recs.iter()
            .find(|r| r["type"] == "step" && r["step"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no step {name}: {}", describe(&out)))
    };
    assert_eq!(step("exchange-connect")["outcome"], "ok");
    assert_eq!(step("grant")["outcome"], "changed");
    let registration = step("app-registration");
    assert_eq!(registration["outcome"], "failed");
    assert!(
        registration["message"]
            .as_str()
            .unwrap()
            .contains(WITH_LOGGING),
        "{registration}"
    );
    assert!(
        apps_named(&t.now(), APP).is_empty(),
        "no app was registered"
    );

    // The same options today: three processes, every part completes.
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
    assert_eq!(apps_named(&t.now(), APP).len(), 1);
}

#[test]
fn field_note_1_no_rendered_script_signs_in_to_exchange_and_graph() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (i, args) in [
        &["setup"][..],
        &["setup", "--restrict-to-group", GROUP],
        &["app-registration"],
        &["app-registration", "--restrict-to-group", GROUP],
        &["grant"],
        &["ews-readiness"],
    ]
    .iter()
    .enumerate()
    {
        let target = dir.path().join(format!("r{i}"));
        calperm()
            .arg("render")
            .args(*args)
            .arg("-o")
            .arg(&target)
            .assert()
            .success();
        let files: Vec<std::path::PathBuf> = if target.is_dir() {
            std::fs::read_dir(&target)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "ps1"))
                .collect()
        } else {
            vec![target]
        };
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let graph = text.contains("Connect-MgGraph -Scopes");
            let exchange =
                text.contains("Connect-ExchangeOnline ") || text.contains("New-PSSession");
            assert!(
                !(graph && exchange),
                "{args:?}: {} signs in to both",
                file.display()
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        3 + 3 + 1 + 2 + 1 + 1,
        "every script of every workflow"
    );
}

// --- §5 Entra replication ----------------------------------------------------------------

fn item<'a>(recs: &'a [Value], name: &str) -> &'a Value {
    recs.iter()
        .find(|r| r["type"] == "item" && r["item"] == name)
        .unwrap_or_else(|| panic!("no {name} item"))
}

#[test]
fn field_note_5_calls_after_each_create_are_retried_and_the_retries_are_recorded() {
    if common::pwsh().is_none() {
        return;
    }
    // Each new object fails the next 3 calls that reference it, in Graph and in Exchange.
    let t = SimTenant::edited(|tenant| tenant["faults"]["replicationFailures"] = json!(3));
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
    for name in ["service-principal", "secret", "exchange-service-principal"] {
        assert_eq!(item(&recs, name)["outcome"], "created", "{name}");
        assert_eq!(
            item(&recs, name)["retries"],
            3,
            "{name}: {}",
            item(&recs, name)
        );
    }
    // Tenant-wide consent is the other dependent call (without a restriction).
    let t = SimTenant::edited(|tenant| tenant["faults"]["replicationFailures"] = json!(3));
    let out = t.run_json(&["app-registration", "--show-secret", "--secret-months", "12"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let recs = records(&out);
    assert_eq!(item(&recs, "consent")["outcome"], "created");
    assert_eq!(item(&recs, "consent")["retries"], 3);
    let summary = common::stderr(&out);
    assert!(
        summary.contains("retried while Entra ID replicated"),
        "{summary}"
    );
}

#[test]
fn field_note_5_when_replication_outlasts_the_limit_the_failure_says_what_to_do() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::edited(|tenant| tenant["faults"]["replicationFailures"] = json!(1000));
    let started = std::time::Instant::now();
    let out = calperm()
        .current_dir(t.root().join("work"))
        .env("TMPDIR", t.root().join("tmp"))
        .args([
            "run",
            "app-registration",
            "--show-secret",
            "--secret-months",
            "12",
            "--simulate",
            "tenant.json",
            "--sim-state",
            "state.json",
            "--retry-delay-ms",
            "200",
            "--replication-timeout",
            "1",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let recs = records(&out);
    let sp = item(&recs, "service-principal");
    assert_eq!(sp["outcome"], "failed");
    let message = sp["message"].as_str().unwrap();
    assert!(
        message.contains("does not reference a valid application object"),
        "{message}"
    );
    assert!(
        message.contains("--replication-timeout") && message.contains("--resume"),
        "{message}"
    );
    // Bounded: 200 + 400 ms of waiting fit into 1 s, the next 800 ms would not.
    assert_eq!(sp["retries"], 2, "{sp}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert_eq!(item(&recs, "consent")["outcome"], "skipped");
}

// --- §6 Graph details ---------------------------------------------------------------------

#[test]
fn field_note_6_adding_a_certificate_sends_back_the_ones_the_app_has() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let first = certificate(&t.file("first.cer"), "calendar sync 1");
    let second = certificate(&t.file("second.cer"), "calendar sync 2");
    let out = t.run_json(&["app-registration", "--app-certificate-path", "first.cer"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = t.run_json(&["app-registration", "--app-certificate-path", "second.cer"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let recs = records(&out);
    let created = item(&recs, "certificate");
    assert_eq!(created["outcome"], "created");
    assert_eq!(created["id"], second.as_str());
    assert!(
        created["message"].as_str().unwrap().contains("were kept"),
        "{created}"
    );
    // Both certificates are on the app, each with its public key.
    let state = t.now();
    let keys = apps_named(&state, APP)[0]["keyCredentials"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(keys.len(), 2, "{keys:#?}");
    let thumbprints: Vec<String> = keys
        .iter()
        .map(|k| {
            let bytes = base64_decode(k["customKeyIdentifier"].as_str().unwrap());
            bytes.iter().map(|b| format!("{b:02X}")).collect()
        })
        .collect();
    assert!(
        thumbprints.contains(&first) && thumbprints.contains(&second),
        "{thumbprints:?}"
    );
    assert!(
        keys.iter()
            .all(|k| k["key"].as_str().is_some_and(|s| !s.is_empty())),
        "{keys:#?}"
    );
}

/// Standard Base64 (the simulation stores binary Graph fields so).
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        let value = ALPHABET.iter().position(|&a| a == c).expect("Base64") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

#[test]
fn field_note_6_a_distribution_list_scopes_the_app_to_its_direct_members() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let out = t.run_json(&[
        "app-registration",
        "--show-secret",
        "--restrict-to-group",
        "allstaff@contoso.com",
        "--secret-months",
        "12",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stderr = common::stderr(&out);
    assert!(
        !stderr.contains("RestrictToGroup is a"),
        "a distribution list is a valid scope: {stderr}"
    );
    let recs = records(&out);
    assert_eq!(item(&recs, "management-scope")["outcome"], "created");
    let access = recs
        .iter()
        .find(|r| {
            r["type"] == "setting"
                && r["name"] == "Mailbox access"
                && r["value"].as_str().unwrap().starts_with("direct members")
        })
        .expect("the Exchange script's Mailbox access setting");
    let note = access["note"].as_str().unwrap();
    assert!(
        note.contains("nested groups are not included") && note.contains("30 minutes to 2 hours"),
        "{note}"
    );
}
