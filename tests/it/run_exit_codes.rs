//! `calperm run` exit codes (design.md): 0 all good, 1 failures, 2 configuration (monitor not
//! found), 3 pwsh missing or not startable, 4 pwsh ended abnormally. The runner's side runs
//! against the fake pwsh (tests/fake-pwsh/pwsh, POSIX sh), so it needs no PowerShell; what only
//! PowerShell itself can show (a script that does not parse) runs in the real pwsh.

use crate::common;

#[cfg(unix)]
use calperm::records::Record;
use common::{Sandbox, pwsh, sh_quote};
use predicates::prelude::*;

const INSTALL_URL: &str =
    "https://learn.microsoft.com/powershell/scripting/install/installing-powershell";

/// `calperm run grant` with the fake pwsh running `body`, which must exit with `code`; the
/// output and its standard error. The fake is POSIX sh, so the tests that use it are Unix-only
/// (`cfg(unix)`).
#[cfg(unix)]
fn run_exits(sandbox: &Sandbox, body: &str, code: i32) -> (std::process::Output, String) {
    let output = sandbox.run_fake_grant(body);
    let err = common::stderr(&output);
    assert_eq!(output.status.code(), Some(code), "{err}");
    (output, err)
}

#[cfg(unix)]
#[test]
fn exit_0_when_everything_succeeded() {
    let sandbox = Sandbox::new();
    let (_, err) = run_exits(
        &sandbox,
        r#"
record '{"type":"start","script":"grant"}'
mailbox anna@contoso.com added
mailbox monitor@contoso.com skipped
record '{"type":"end","exitCode":0}'
"#,
        0,
    );
    assert!(!err.contains("error"));
    assert_eq!(common::records(&sandbox.file("j.jsonl")).len(), 4);
}

#[cfg(unix)]
#[test]
fn exit_1_when_a_mailbox_failed_with_the_retry_command() {
    let sandbox = Sandbox::new();
    let (output, err) = run_exits(
        &sandbox,
        r#"
record '{"type":"start","script":"grant"}'
mailbox anna@contoso.com added
record '{"type":"mailbox","mailbox":"bert@contoso.com","outcome":"failed","kind":"access-denied","message":"Access is denied."}'
record '{"type":"end","exitCode":1}'
exit 1
"#,
        1,
    );
    assert!(err.contains("calperm: error: 1 mailbox failed"), "{err}");
    assert!(
        err.contains(&format!("--resume {}", sandbox.file("j.jsonl").display())),
        "{err}"
    );
    assert!(common::stdout(&output).contains("access-denied: Access is denied."));
}

#[cfg(unix)]
#[test]
fn exit_1_for_a_failed_step_or_item() {
    let sandbox = Sandbox::new();
    let (_, err) = run_exits(
        &sandbox,
        r#"
record '{"type":"start","script":"grant"}'
record '{"type":"step","step":"execution-policy","outcome":"failed","message":"Access to the registry key is denied."}'
record '{"type":"item","item":"consent","outcome":"failed"}'
record '{"type":"end","exitCode":1}'
exit 1
"#,
        1,
    );
    assert!(err.contains("1 step, 1 item failed"), "{err}");
}

#[cfg(unix)]
#[test]
fn exit_2_when_the_monitor_is_not_found() {
    let sandbox = Sandbox::new();
    let message = "The operation couldn't be performed because object 'nobody' couldn't be found on 'AM0PR01A001DC01.EURPR01A001.prod.outlook.com'.";
    let fatal =
        serde_json::json!({"type": "fatal", "kind": "monitor-not-found", "message": message});
    let (output, err) = run_exits(
        &sandbox,
        &format!(
            "record '{{\"type\":\"start\",\"script\":\"grant\"}}'\nrecord {}\nrecord '{{\"type\":\"end\",\"exitCode\":2}}'\nexit 2\n",
            sh_quote(&fatal.to_string())
        ),
        2,
    );
    assert!(err.contains(&format!("calperm: error: {message}")), "{err}");
    assert!(err.contains("hint: check --monitor"), "{err}");
    assert!(common::stdout(&output).contains("stopped (monitor-not-found)"));
}

#[cfg(unix)]
#[test]
fn exit_1_for_any_other_fatal() {
    let sandbox = Sandbox::new();
    let (_, err) = run_exits(
        &sandbox,
        r#"
record '{"type":"start","script":"grant"}'
record '{"type":"fatal","kind":"connect","message":"Could not connect to Exchange: AADSTS50076"}'
record '{"type":"end","exitCode":1}'
exit 1
"#,
        1,
    );
    assert!(
        err.contains("the script stopped (connect): Could not connect to Exchange: AADSTS50076"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn exit_4_without_an_end_record() {
    let sandbox = Sandbox::new();
    let (_, err) = run_exits(
        &sandbox,
        "record '{\"type\":\"start\",\"script\":\"grant\"}'\nmailbox a@contoso.com added\n",
        4,
    );
    assert!(err.contains("without its end record"), "{err}");
    assert!(err.contains("2 records were received"), "{err}");
}

#[cfg(unix)]
#[test]
fn exit_4_when_pwsh_exits_with_an_unexpected_code() {
    let sandbox = Sandbox::new();
    let (_, err) = run_exits(
        &sandbox,
        "record '{\"type\":\"start\",\"script\":\"grant\"}'\nrecord '{\"type\":\"end\",\"exitCode\":0}'\nexit 7\n",
        4,
    );
    assert!(err.contains("pwsh exited with code 7"), "{err}");
}

/// No record at all: calperm asks the executable for its PowerShell version to tell a script
/// that failed (exit 4) from a program that is not PowerShell (exit 3).
#[cfg(unix)]
#[test]
fn no_record_is_exit_4_from_powershell_and_exit_3_from_anything_else() {
    let sandbox = Sandbox::new();
    let (_, err) = run_exits(&sandbox, "echo 'Import-Module: not found' >&2\nexit 1\n", 4);
    assert!(!err.contains("is not PowerShell"), "{err}");

    sandbox.fake_grant("exit 1\n");
    let output = sandbox
        .fake_cmd()
        .env("FAKE_PWSH_NOT_POWERSHELL", "1")
        .args(["run", "grant", "--journal"])
        .arg(sandbox.file("j2.jsonl"))
        .output()
        .unwrap();
    let err = common::stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{err}");
    assert!(err.contains("is not PowerShell"), "{err}");
}

#[test]
fn exit_4_when_the_script_does_not_parse() {
    let Some(_) = pwsh() else { return };
    let sandbox = Sandbox::new();
    run_exits(&sandbox, "Out-Record '{\"type\":\"start\"\nif (\n", 4);
}

#[test]
fn exit_3_when_pwsh_is_not_where_pwsh_says() {
    let sandbox = Sandbox::new();
    sandbox
        .cmd()
        .args(["run", "grant", "--pwsh", "/nonexistent/pwsh"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("/nonexistent/pwsh"))
        .stderr(predicate::str::contains(INSTALL_URL))
        .stderr(predicate::str::contains("--pwsh PATH"))
        .stderr(predicate::str::contains("CALPERM_PWSH"));
    assert!(sandbox.leftovers().is_empty());
}

#[test]
fn exit_3_when_pwsh_is_not_on_path() {
    let sandbox = Sandbox::new();
    sandbox
        .cmd()
        .env("PATH", "")
        // An empty home: no ~/.dotnet/tools/pwsh to fall back on.
        .env("HOME", sandbox.home())
        .args(["run", "grant"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "PowerShell 7 (pwsh) was not found on PATH",
        ))
        .stderr(predicate::str::contains(INSTALL_URL))
        .stderr(predicate::str::contains(
            "--pwsh PATH or the CALPERM_PWSH environment variable",
        ));
}

#[test]
fn exit_3_when_calperm_pwsh_names_nothing() {
    let sandbox = Sandbox::new();
    sandbox
        .cmd()
        .env("CALPERM_PWSH", "/nonexistent/pwsh")
        .args(["run", "grant"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("CALPERM_PWSH=/nonexistent/pwsh"));
}

#[cfg(unix)]
#[test]
fn exit_3_when_the_executable_cannot_be_started() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let fake = sandbox.file("pwsh");
    std::fs::write(&fake, b"\x7fELF\x00garbage").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    sandbox
        .cmd()
        .args(["run", "grant", "--pwsh"])
        .arg(&fake)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("could not start"))
        .stderr(predicate::str::contains(INSTALL_URL));
    assert!(
        sandbox.leftovers().is_empty(),
        "the temp script was removed"
    );
    let left: Vec<_> = std::fs::read_dir(sandbox.work())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["pwsh"], "no journal is left when nothing ran");
}

#[cfg(unix)]
#[test]
fn exit_2_when_the_journal_cannot_be_written() {
    let sandbox = Sandbox::new();
    sandbox.fake_grant("touch ran.txt\n");
    sandbox
        .fake_cmd()
        .args(["run", "grant", "--journal", "/nonexistent/dir/j.jsonl"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/dir/j.jsonl"))
        .stderr(predicate::str::contains("hint: pass --journal FILE"));
    assert!(!sandbox.file("ran.txt").exists(), "the script ran");
}

#[cfg(unix)]
#[test]
fn calperm_pwsh_is_used_when_pwsh_is_not_on_path() {
    let sandbox = Sandbox::new();
    sandbox.fake_grant("record '{\"type\":\"start\",\"script\":\"grant\"}'\nmailbox fake@contoso.com added\nrecord '{\"type\":\"end\",\"exitCode\":0}'\n");
    // fake_cmd: CALPERM_PWSH names the fake, PATH=/usr/bin:/bin has no pwsh.
    sandbox
        .fake_cmd()
        .args(["run", "grant", "--journal"])
        .arg(sandbox.file("j.jsonl"))
        .assert()
        .success();
    let records = common::records(&sandbox.file("j.jsonl"));
    assert!(
        matches!(&records[1], Record::Mailbox(m) if m.mailbox == "fake@contoso.com"),
        "{records:?}"
    );
}

#[test]
fn exit_2_when_the_simulated_tenant_does_not_exist() {
    let sandbox = Sandbox::new();
    sandbox
        .cmd()
        .args(["run", "grant", "--simulate", "no-such-tenant.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the simulated tenant no-such-tenant.json does not exist",
        ));
}
