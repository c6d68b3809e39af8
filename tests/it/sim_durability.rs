//! The simulated tenant keeps its state like a real tenant does: a change, once a cmdlet has
//! returned, survives the pwsh that made it being killed, and two processes working on one state
//! file do not overwrite each other's changes (the second waits for the first's lock).

use crate::common;

use common::{Sandbox, pwsh};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A pwsh script that connects to the simulated tenant and then runs `body`.
fn sim_script(sandbox: &Sandbox, body: &str) -> std::path::PathBuf {
    let modules = common::fixture("sim/modules");
    let text = format!(
        "$ErrorActionPreference = 'Stop'\n\
         Import-Module (Join-Path '{}' 'ExchangeOnlineManagement')\n\
         Connect-ExchangeOnline -Organization contoso.onmicrosoft.com -ShowBanner:$false\n\
         {body}\n",
        modules.display()
    );
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path = sandbox.tmp().join(format!("sim-{n}.ps1"));
    std::fs::write(&path, text).unwrap();
    path
}

fn pwsh_command(pwsh: &Path, sandbox: &Sandbox, script: &Path, state: &Path) -> Command {
    let mut command = Command::new(pwsh);
    command
        .args(["-NoLogo", "-NoProfile", "-NonInteractive", "-File"])
        .arg(script)
        .current_dir(sandbox.work())
        .env("CALPERM_SIM_TENANT", common::fixture("tenants/demo.json"))
        .env("CALPERM_SIM_STATE", state)
        .env("HOME", sandbox.home())
        .stdin(Stdio::null());
    command
}

fn add(mailbox: &str, rights: &str) -> String {
    format!(
        "Add-MailboxFolderPermission -Identity '{mailbox}:\\Calendar' -User monitor@contoso.com -AccessRights {rights} | Out-Null"
    )
}

/// The monitor's rights on `mailbox`'s Calendar, read by a new pwsh from the state file.
fn monitor_rights(pwsh: &Path, sandbox: &Sandbox, state: &Path, mailbox: &str) -> String {
    let script = sim_script(
        sandbox,
        &format!(
            "$e = @(Get-MailboxFolderPermission -Identity '{mailbox}:\\Calendar' -User monitor@contoso.com -ErrorAction SilentlyContinue)\n\
             if ($e.Count -eq 0) {{ 'none' }} else {{ $e[0].AccessRights -join ',' }}"
        ),
    );
    let output = pwsh_command(pwsh, sandbox, &script, state)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn sim_state_survives_a_killed_pwsh() {
    let Some(pwsh) = pwsh() else { return };
    let sandbox = Sandbox::new();
    let state = sandbox.file("state.json");
    let script = sim_script(
        &sandbox,
        &format!(
            "{}\n{}\n[System.Diagnostics.Process]::GetCurrentProcess().Kill()",
            add("adele.vance@contoso.com", "Editor"),
            add("alex.wilber@contoso.com", "Author")
        ),
    );
    let status = pwsh_command(&pwsh, &sandbox, &script, &state)
        .status()
        .unwrap();
    assert!(!status.success(), "pwsh was meant to be killed");
    assert_eq!(
        monitor_rights(&pwsh, &sandbox, &state, "adele.vance@contoso.com"),
        "Editor"
    );
    assert_eq!(
        monitor_rights(&pwsh, &sandbox, &state, "alex.wilber@contoso.com"),
        "Author"
    );
}

#[test]
fn two_runs_on_one_state_file_keep_both_changes() {
    let Some(pwsh) = pwsh() else { return };
    let sandbox = Sandbox::new();
    let state = sandbox.file("state.json");
    // The first holds the tenant a while after its change; the second starts meanwhile.
    let loaded = sandbox.file("first-changed");
    let first = sim_script(
        &sandbox,
        &format!(
            "{}\nSet-Content -LiteralPath '{}' -Value 1\nStart-Sleep -Seconds 3\nDisconnect-ExchangeOnline -Confirm:$false",
            add("adele.vance@contoso.com", "Editor"),
            loaded.display()
        ),
    );
    let second = sim_script(
        &sandbox,
        &format!(
            "{}\nDisconnect-ExchangeOnline -Confirm:$false",
            add("alex.wilber@contoso.com", "Author")
        ),
    );
    let mut one = pwsh_command(&pwsh, &sandbox, &first, &state)
        .spawn()
        .unwrap();
    common::wait_for(Duration::from_secs(60), "the first run's change", || {
        loaded.exists()
    });
    let two = pwsh_command(&pwsh, &sandbox, &second, &state)
        .output()
        .unwrap();
    assert!(
        two.status.success(),
        "{}",
        String::from_utf8_lossy(&two.stderr)
    );
    assert!(one.wait().unwrap().success());
    assert_eq!(
        monitor_rights(&pwsh, &sandbox, &state, "adele.vance@contoso.com"),
        "Editor"
    );
    assert_eq!(
        monitor_rights(&pwsh, &sandbox, &state, "alex.wilber@contoso.com"),
        "Author"
    );
}

#[test]
fn a_run_that_cannot_get_the_state_in_time_says_why() {
    let Some(pwsh) = pwsh() else { return };
    let sandbox = Sandbox::new();
    let state = sandbox.file("state.json");
    let holder = sim_script(&sandbox, "Start-Sleep -Seconds 8");
    let mut one = pwsh_command(&pwsh, &sandbox, &holder, &state)
        .spawn()
        .unwrap();
    let log = sandbox.file("state.json.log");
    common::wait_for(Duration::from_secs(60), "the first run to load", || {
        log.exists()
    });
    let waiter = sim_script(&sandbox, &add("alex.wilber@contoso.com", "Author"));
    let output = pwsh_command(&pwsh, &sandbox, &waiter, &state)
        .env("CALPERM_SIM_LOCK_TIMEOUT", "1")
        .output()
        .unwrap();
    let _ = one.kill();
    let _ = one.wait();
    let err = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    // pwsh colours and wraps error messages to the console width.
    let plain = regex::Regex::new("\x1b\\[[0-9;]*m")
        .unwrap()
        .replace_all(&err, "");
    let flat: String = plain
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '|')
        .collect();
    assert!(flat.contains("isinusebyanotherprocess"), "{err}");
}
