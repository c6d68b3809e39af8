//! `cargo bench --bench round_trips`: Exchange cmdlet calls per mailbox, the figure that decides
//! how long a grant takes on a real tenant and how soon it is throttled.
//!
//! On the 2,000-mailbox, 12-language simulated tenant (`fixtures/tenants/large-2000.json`), three
//! runs: `calperm run grant` on the fresh tenant; the same again (a rerun); and the manual's
//! one-liner (`Add-MailboxFolderPermission $_":\Calendar" -User $User.identity -AccessRights
//! Reviewer` for every mailbox) on another fresh copy.
//!
//! Calls come from the simulated tenant's own counters. Enumerating mailboxes (Get-EXOMailbox,
//! Get-Mailbox) and connecting are not counted, as the targets say. Targets: at most 1.10 calls
//! per mailbox fresh, at most 2.0 on a rerun.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const MONITOR: &str = "monitor@contoso.com";
const NOT_COUNTED: [&str; 7] = [
    "Get-EXOMailbox",
    "Get-Mailbox",
    "Connect-ExchangeOnline",
    "Disconnect-ExchangeOnline",
    // Reads the session's own connection (the tenant a journal names): no round trip.
    "Get-ConnectionInformation",
    "Get-Recipient",
    "Get-EXORecipient",
];

/// The manual's steps, verbatim after connecting (the simulated module needs a connection, as the
/// real one does). Its error stream is redirected only to count the failures.
const ONE_LINER: &str = r#"Connect-ExchangeOnline -ShowBanner:$false
$User = Get-Mailbox Monitor
$Mailboxes = Get-Mailbox -ResultSize Unlimited
$errors = @($Mailboxes | ForEach-Object { Add-MailboxFolderPermission $_":\Calendar" -User $User.identity -AccessRights Reviewer 2>&1 } |
    Where-Object { $_ -is [System.Management.Automation.ErrorRecord] })
"one-liner: $($Mailboxes.Count) mailboxes, $($errors.Count) errors"
$errors | Group-Object { ($_.Exception.Message -split '\|')[1] } | ForEach-Object { "  $($_.Count) x $($_.Name)" }
Disconnect-ExchangeOnline -Confirm:$false
"#;

fn main() {
    let Ok(pwsh) = which::which("pwsh") else {
        println!("round-trips bench skipped: pwsh not found on PATH");
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tenant = root.join("fixtures/tenants/large-2000.json");
    let dir = tempfile::tempdir().unwrap();
    let calperm = PathBuf::from(env!("CARGO_BIN_EXE_calperm"));

    println!(
        "== Exchange cmdlet calls per mailbox, {} ==",
        tenant.display()
    );
    let state = dir.path().join("calperm.state.json");
    let first = dir.path().join("first.jsonl");
    let first = first.to_str().unwrap();
    let runs: [(&str, Vec<&str>); 4] = [
        (
            "calperm grant, fresh tenant",
            vec!["grant", "--journal", first],
        ),
        ("calperm grant, rerun", vec!["grant"]),
        (
            "grant rerun --folders-from",
            vec!["grant", "--folders-from", first],
        ),
        (
            "audit --folders-from",
            vec!["audit", "--folders-from", first],
        ),
    ];
    for (label, args) in runs {
        run_calperm(&calperm, dir.path(), label, &args, &tenant, &state);
    }

    // A delta run: 25 mailboxes created since the last run (copies of existing ones with new
    // addresses, Guids and folder ids), selected by Exchange with --created-after.
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&tenant).unwrap()).unwrap();
    let copies: Vec<Value> = json["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["recipientTypeDetails"] == "UserMailbox" && r["primarySmtpAddress"] != MONITOR
        })
        .take(25)
        .enumerate()
        .map(|(n, r)| {
            let mut r = r.clone();
            let address = format!("new{n}@contoso.com");
            for key in ["primarySmtpAddress", "userPrincipalName", "alias", "name"] {
                r[key] = address.clone().into();
            }
            r["guid"] = format!("c0ffee00-0000-4000-8000-{n:012}").into();
            r["externalDirectoryObjectId"] = format!("e0ffee00-0000-4000-8000-{n:012}").into();
            r["emailAddresses"] = Value::Array(Vec::new());
            r["whenCreated"] = "2026-12-02T08:00:00Z".into();
            for (i, folder) in r["folders"].as_array_mut().unwrap().iter_mut().enumerate() {
                folder["folderId"] = format!("AAMkNEW{n}x{i}").into();
            }
            r
        })
        .collect();
    json["recipients"].as_array_mut().unwrap().extend(copies);
    let grown = dir.path().join("large-2025.json");
    std::fs::write(&grown, serde_json::to_string(&json).unwrap()).unwrap();
    let delta_state = dir.path().join("delta.state.json");
    run_calperm(
        &calperm,
        dir.path(),
        "grant --created-after, 25 new",
        &["grant", "--created-after", "2026-12-01"],
        &grown,
        &delta_state,
    );

    let one_liner_state = dir.path().join("one-liner.state.json");
    let script = dir.path().join("one-liner.ps1");
    std::fs::write(&script, format!("\u{FEFF}{ONE_LINER}")).unwrap();
    let started = Instant::now();
    let output = Command::new(&pwsh)
        .args(["-NoLogo", "-NoProfile", "-NonInteractive", "-File"])
        .arg(&script)
        .env("PSModulePath", sim_module_path(root))
        .env("CALPERM_SIM_TENANT", &tenant)
        .env("CALPERM_SIM_STATE", &one_liner_state)
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let summary = String::from_utf8_lossy(&output.stdout);
    let detail: Vec<&str> = summary.lines().filter(|l| l.starts_with("  ")).collect();
    let summary = summary
        .lines()
        .find(|l| l.starts_with("one-liner:"))
        .unwrap_or("one-liner: no summary")
        .to_string();
    let stats = read_stats(&one_liner_state);
    let (calls, breakdown) = counted_calls(&stats);
    let mailboxes: f64 = summary
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN);
    println!(
        "{:<32} {summary}  {calls} calls  {:.3} calls/mailbox  {seconds:.1} s",
        "the manual's one-liner",
        calls as f64 / mailboxes
    );
    println!("{:<32} {breakdown}", "");
    for line in detail {
        println!("{:<32} {}", "", line.trim());
    }
}

fn sim_module_path(root: &Path) -> String {
    let modules = root.join("fixtures/sim/modules");
    match std::env::var("PSModulePath") {
        Ok(existing) if !existing.is_empty() => format!("{}:{existing}", modules.display()),
        _ => modules.display().to_string(),
    }
}

/// One `calperm run … --simulate` and its calls per mailbox (and, for a delta run, in all).
fn run_calperm(
    calperm: &Path,
    dir: &Path,
    label: &str,
    args: &[&str],
    tenant: &Path,
    state: &Path,
) {
    let started = Instant::now();
    let output = Command::new(calperm)
        .current_dir(dir)
        .arg("run")
        .args(args)
        .args(["--monitor", MONITOR, "--format", "json", "--simulate"])
        .arg(tenant)
        .arg("--sim-state")
        .arg(state)
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let records: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["type"] == "mailbox")
        .collect();
    let failed = records.iter().filter(|r| r["outcome"] == "failed").count();
    let stats = read_stats(state);
    let (calls, breakdown) = counted_calls(&stats);
    println!(
        "{label:<32} {:>5} mailboxes  {:>6} calls  {:.3} calls/mailbox  {} calls in all  {failed} failed  exit {:?}  {seconds:.1} s",
        records.len(),
        calls,
        calls as f64 / records.len().max(1) as f64,
        stats["total"],
        output.status.code()
    );
    println!("{:<32} {breakdown}", "");
}

fn read_stats(state: &Path) -> Value {
    let text =
        std::fs::read_to_string(state).unwrap_or_else(|e| panic!("{}: {e}", state.display()));
    let json: Value = serde_json::from_str(&text).unwrap();
    json["stats"].clone()
}

/// Calls that count (everything but enumeration and connecting), and a per-cmdlet breakdown.
fn counted_calls(stats: &Value) -> (u64, String) {
    let mut total = 0;
    let mut parts = Vec::new();
    if let Some(calls) = stats["calls"].as_object() {
        for (cmdlet, n) in calls {
            let n = n.as_u64().unwrap_or(0);
            if NOT_COUNTED.contains(&cmdlet.as_str()) {
                parts.push(format!("{cmdlet} {n} (not counted)"));
            } else {
                total += n;
                parts.push(format!("{cmdlet} {n}"));
            }
        }
    }
    (total, parts.join(", "))
}
