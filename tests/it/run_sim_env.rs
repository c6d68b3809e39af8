//! `calperm run --simulate`: what the child process gets (modules first on PSModulePath, the
//! CALPERM_SIM_* variables, -NonInteractive), independent of what the simulated modules do.

use crate::common;

use common::{Sandbox, pwsh};
use std::path::PathBuf;

const REPORT_ENVIRONMENT: &str = r#"
Out-Record '{"type":"start","script":"grant"}'
$exo = Get-Module -ListAvailable -Name ExchangeOnlineManagement | Select-Object -First 1
Out-Mailbox 'module@contoso.com' 'added' $exo.ModuleBase
Out-Mailbox 'tenant@contoso.com' 'added' $env:CALPERM_SIM_TENANT
Out-Mailbox 'state@contoso.com' 'added' $env:CALPERM_SIM_STATE
$a = [Environment]::GetCommandLineArgs()
Out-Mailbox 'args@contoso.com' 'added' ($a[1..($a.Length - 1)] -join '|')
Out-Record '{"type":"end","exitCode":0}'
"#;

fn messages(journal: &std::path::Path) -> Vec<String> {
    common::journal(journal)
        .iter()
        .filter_map(|r| r["message"].as_str().map(String::from))
        .collect()
}

#[test]
fn the_simulated_modules_win_over_modules_installed_for_the_user() {
    let Some(_) = pwsh() else { return };
    let sandbox = Sandbox::new();
    sandbox.grant(REPORT_ENVIRONMENT);
    // A "real" ExchangeOnlineManagement in pwsh's CurrentUser module folder, which pwsh would
    // otherwise put in front of an inherited PSModulePath.
    let real = sandbox
        .home()
        .join(".local/share/powershell/Modules/ExchangeOnlineManagement");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::write(
        real.join("ExchangeOnlineManagement.psd1"),
        "@{ ModuleVersion = '99.0.0'; RootModule = 'ExchangeOnlineManagement.psm1'; FunctionsToExport = '*' }\n",
    )
    .unwrap();
    std::fs::write(
        real.join("ExchangeOnlineManagement.psm1"),
        "function Connect-ExchangeOnline { 'REAL' }\n",
    )
    .unwrap();
    std::fs::write(sandbox.file("tenant.json"), "{}\n").unwrap();

    let journal = sandbox.file("j.jsonl");
    let output = sandbox
        .cmd()
        .env("HOME", sandbox.home())
        .env_remove("XDG_DATA_HOME")
        .args(["run", "grant", "--simulate", "tenant.json", "--journal"])
        .arg(&journal)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", common::stderr(&output));
    let messages = messages(&journal);

    let module = PathBuf::from(&messages[0]);
    assert!(
        module.starts_with(sandbox.tmp()),
        "ExchangeOnlineManagement came from {}",
        module.display()
    );
    assert!(
        module.to_string_lossy().contains("calperm-sim-"),
        "{}",
        module.display()
    );
    assert_eq!(PathBuf::from(&messages[1]), sandbox.file("tenant.json"));
    assert_eq!(
        PathBuf::from(&messages[2]),
        sandbox.file("calperm-sim-tenant.state.json")
    );
    assert!(
        messages[3].starts_with("-NoLogo|-NoProfile|-NonInteractive|-File|"),
        "{}",
        messages[3]
    );
    assert!(!module.exists(), "the modules' temp dir was removed");
    assert!(
        sandbox.leftovers().is_empty(),
        "left behind: {:?}",
        sandbox.leftovers()
    );
}

#[test]
fn sim_state_is_made_absolute() {
    let Some(_) = pwsh() else { return };
    let sandbox = Sandbox::new();
    sandbox.grant(REPORT_ENVIRONMENT);
    std::fs::write(sandbox.file("tenant.json"), "{}\n").unwrap();
    let journal = sandbox.file("j.jsonl");
    let output = sandbox
        .cmd()
        .args([
            "run",
            "grant",
            "--simulate",
            "tenant.json",
            "--sim-state",
            "my.state.json",
            "--journal",
        ])
        .arg(&journal)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", common::stderr(&output));
    assert_eq!(
        PathBuf::from(&messages(&journal)[2]),
        sandbox.file("my.state.json")
    );
    assert!(common::stdout(&output).contains(&format!(
        "simulated tenant state: {}",
        sandbox.file("my.state.json").display()
    )));
}
