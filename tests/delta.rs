//! Delta runs: `--created-after` lets Exchange select only the mailboxes created after a moment,
//! and the date reaches the filter in a form every session culture reads alike. Real pwsh
//! against the simulated tenant.

mod common;

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
