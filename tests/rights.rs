//! The role table, checked where it matters: the PowerShell the scripts carry decides exactly
//! what `rights::decide` decides, for every pair of documented roles and some individual rights.

mod common;

use calperm::cli::{Cli, Command as CliCommand};
use calperm::rights::{Decision, Role, decide};
use clap::Parser;
use std::process::Command;

fn rendered_rights_partial() -> String {
    let cli = Cli::try_parse_from(["calperm", "render", "grant"]).unwrap();
    let CliCommand::Render(args) = cli.command else {
        unreachable!()
    };
    let context = calperm::config::build(args.script, &args.options).unwrap();
    let registry = calperm::render::registry(None).unwrap();
    registry.render("_rights", &context).unwrap()
}

fn expected(current: &[&str], target: Role) -> String {
    match decide(Some(current), target) {
        Decision::Add => "add".into(),
        Decision::Unchanged => "unchanged".into(),
        Decision::KeptHigher => "kept-higher".into(),
        Decision::Update(rights) => format!("update:{}", rights.join(",")),
        Decision::Conflict => "conflict".into(),
    }
}

#[test]
fn powershell_decides_like_rust_over_the_whole_role_table() {
    let Some(pwsh) = common::pwsh() else { return };
    let mut currents: Vec<Vec<&str>> = Role::ALL.iter().map(|r| vec![r.name()]).collect();
    currents.push(vec!["None"]);
    currents.push(vec!["ReadItems", "FolderVisible"]);
    currents.push(vec!["FolderVisible"]);
    currents.push(vec!["CreateItems", "ReadItems", "FolderVisible"]);
    currents.push(vec!["reviewer"]);

    let mut script = rendered_rights_partial();
    script.push_str("\n$cases = @(\n");
    let mut wanted = Vec::new();
    for current in &currents {
        for target in Role::ALL {
            let list = current
                .iter()
                .map(|c| format!("'{c}'"))
                .collect::<Vec<_>>()
                .join(",");
            script.push_str(&format!(
                "    @{{ Current = @({list}); Target = '{}' }}\n",
                target.name()
            ));
            wanted.push(expected(current, target));
        }
    }
    script.push_str(
        ")\nforeach ($case in $cases) {\n    $d = Get-CalpermGrantDecision -Current $case.Current -Target $case.Target\n    \
         if ($d.Action -eq 'update') { 'update:' + ($d.Rights -join ',') } else { $d.Action }\n}\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rights.ps1");
    std::fs::write(&file, format!("\u{FEFF}{script}")).unwrap();
    let output = Command::new(pwsh)
        .args(["-NoLogo", "-NoProfile", "-NonInteractive", "-File"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let got: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(got.len(), wanted.len());
    let mut mismatches = Vec::new();
    let mut i = 0;
    for current in &currents {
        for target in Role::ALL {
            if got[i] != wanted[i] {
                mismatches.push(format!(
                    "{current:?} -> {}: powershell {} rust {}",
                    target.name(),
                    got[i],
                    wanted[i]
                ));
            }
            i += 1;
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // And the cases the issue names, spelled out.
    let at = |current: &str, target: Role| {
        let c = currents.iter().position(|c| c == &vec![current]).unwrap();
        let t = Role::ALL.iter().position(|r| *r == target).unwrap();
        got[c * Role::ALL.len() + t].clone()
    };
    assert_eq!(at("Editor", Role::Reviewer), "kept-higher");
    assert_eq!(at("Reviewer", Role::Reviewer), "unchanged");
    assert_eq!(at("AvailabilityOnly", Role::Reviewer), "update:Reviewer");
    assert_eq!(at("Owner", Role::Editor), "kept-higher");
}
