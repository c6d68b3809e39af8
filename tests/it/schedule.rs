//! The schedule script: it parses, registering it twice leaves one task (the ScheduledTasks
//! cmdlets are simulated here, keeping their parameter names), and neither the script nor the
//! task it registers holds a secret.

use crate::common;

use common::tenant::describe;

const ARGS: [&str; 9] = [
    "render",
    "schedule",
    "--monitor",
    "monitor@contoso.com",
    "--app-id",
    "11111111-2222-3333-4444-555555555555",
    "--organization",
    "contoso.onmicrosoft.com",
    "--certificate-thumbprint",
];
const THUMBPRINT: &str = "0123456789ABCDEF0123456789ABCDEF01234567";

/// Stand-ins for the ScheduledTasks module: tasks kept in $global:Tasks by path and name;
/// Register-ScheduledTask refuses an existing task, as the real one does without -Force.
const MOCK: &str = r#"
$global:Tasks = @{}
$global:Calls = New-Object System.Collections.ArrayList
function New-ScheduledTaskAction { param([Parameter(Mandatory)] [string] $Execute, [string] $Argument, [string] $WorkingDirectory) [pscustomobject]@{ Execute = $Execute; Arguments = $Argument; WorkingDirectory = $WorkingDirectory } }
function New-ScheduledTaskTrigger { param([switch] $Daily, [Parameter(Mandatory)] [datetime] $At) [pscustomobject]@{ Daily = [bool]$Daily; At = $At } }
function New-ScheduledTaskSettingsSet { param([switch] $StartWhenAvailable, [ValidateSet('Parallel', 'Queue', 'IgnoreNew', 'StopExisting')] [string] $MultipleInstances, [timespan] $ExecutionTimeLimit) [pscustomobject]@{ MultipleInstances = $MultipleInstances } }
function New-ScheduledTaskPrincipal { param([Parameter(Mandatory)] [string] $UserId, [ValidateSet('None', 'Password', 'S4U', 'Interactive', 'Group', 'ServiceAccount', 'InteractiveOrPassword')] [string] $LogonType, [ValidateSet('Limited', 'Highest')] [string] $RunLevel) [pscustomobject]@{ UserId = $UserId; LogonType = $LogonType } }
function Get-ScheduledTask { [CmdletBinding()] param([string] $TaskName, [string] $TaskPath)
    $key = $TaskPath + $TaskName
    if ($global:Tasks.ContainsKey($key)) { return $global:Tasks[$key] }
    Write-Error -Message ("No MSFT_ScheduledTask objects found with property 'TaskName' equal to '{0}'." -f $TaskName) -Category ObjectNotFound }
function Register-ScheduledTask { [CmdletBinding()] param([Parameter(Mandatory)] [string] $TaskName, [string] $TaskPath, $Action, $Trigger, $Settings, $Principal, [string] $Description, [string] $User, [string] $Password, [switch] $Force)
    [void]$global:Calls.Add('Register')
    $key = $TaskPath + $TaskName
    if ($global:Tasks.ContainsKey($key) -and -not $Force) { throw 'Cannot create a file when that file already exists.' }
    $global:Tasks[$key] = [pscustomobject]@{ TaskName = $TaskName; TaskPath = $TaskPath; Actions = @($Action); Triggers = @($Trigger); Principal = $Principal; Password = $Password } }
function Set-ScheduledTask { [CmdletBinding()] param([Parameter(Mandatory)] [string] $TaskName, [string] $TaskPath, $Action, $Trigger, $Settings, $Principal, [string] $User, [string] $Password)
    [void]$global:Calls.Add('Set')
    $task = $global:Tasks[$TaskPath + $TaskName]
    $task.Actions = @($Action); $task.Triggers = @($Trigger); $task.Principal = $Principal; $task.Password = $Password }
"#;

fn render(extra: &[&str]) -> std::process::Output {
    common::calperm()
        .args(ARGS)
        .arg(THUMBPRINT)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn schedule_parses_registers_one_task_however_often_it_runs_and_holds_no_secret() {
    let Some(pwsh) = common::pwsh() else { return };
    let out = render(&["--created-after", "36h"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = common::stdout(&out);
    for secret_word in ["Password", "ClientSecret", "SecureString", "Credential"] {
        assert!(
            !text.contains(secret_word),
            "the script mentions {secret_word}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("schedule.ps1");
    std::fs::write(&script, &text).unwrap();
    let logs = dir.path().join("logs");
    let journals = dir.path().join("journals");
    let harness = format!(
        "{MOCK}
$errors = $null
$null = [System.Management.Automation.Language.Parser]::ParseFile('{script}', [ref]$null, [ref]$errors)
'parse errors: ' + @($errors).Count
$first = & '{script}' -LogFolder '{logs}' -JournalFolder '{journals}'
$second = & '{script}' -LogFolder '{logs}' -JournalFolder '{journals}' -At '07:30'
'tasks: ' + $global:Tasks.Count
'calls: ' + ($global:Calls -join ',')
$task = @($global:Tasks.Values)[0]
'name: ' + $task.TaskPath + $task.TaskName
'principal: ' + $task.Principal.UserId + ' ' + $task.Principal.LogonType
'at: ' + $task.Triggers[0].At.ToString('HH:mm')
'password: ' + [string]::IsNullOrEmpty($task.Password)
'workdir: ' + $task.Actions[0].WorkingDirectory
'args: ' + $task.Actions[0].Arguments
'journals exist: ' + (Test-Path '{journals}')
",
        script = script.display(),
        logs = logs.display(),
        journals = journals.display()
    );
    let run = std::process::Command::new(pwsh)
        .args(["-NoProfile", "-NonInteractive", "-Command", &harness])
        .env("CALPERM_CERTIFICATE_PASSWORD", "pfx-pass-MARKER")
        .output()
        .unwrap();
    let report = common::stdout(&run);
    assert!(run.status.success(), "{}", describe(&run));
    for line in [
        "parse errors: 0",
        "tasks: 1",
        "calls: Register,Set",
        "name: \\calperm\\calperm grant",
        "principal: SYSTEM ServiceAccount",
        "at: 07:30",
        "password: True",
        "journals exist: True",
    ] {
        assert!(
            report.lines().any(|l| l == line),
            "missing {line:?} in\n{report}"
        );
    }
    let args = report.lines().find(|l| l.starts_with("args: ")).unwrap();
    for part in [
        "'run' 'grant' '--monitor' 'monitor@contoso.com'",
        "'--connection' 'exo-app'",
        &format!("'--certificate-thumbprint' '{THUMBPRINT}'"),
        "'--created-after' '36h'",
        "calperm-grant.log",
    ] {
        assert!(args.contains(part), "{part} not in {args}");
    }
    assert!(!report.contains("MARKER"), "{report}");
}

#[test]
fn schedule_needs_app_sign_in_and_a_duration() {
    let out = common::calperm()
        .args(["render", "schedule", "--monitor", "monitor@contoso.com"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        common::stderr(&out).contains("schedule needs --app-id"),
        "{}",
        describe(&out)
    );
    let out = render(&["--created-after", "2026-12-01"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        common::stderr(&out).contains("is not a duration"),
        "{}",
        describe(&out)
    );
}
