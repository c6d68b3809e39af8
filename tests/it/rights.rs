//! The role table, checked where it matters: the PowerShell the scripts carry decides exactly
//! what `rights::decide` decides, for every pair of documented roles and some individual rights.

use crate::common;

use calperm::cli::{Cli, Command as CliCommand};
use calperm::rights::Role;
use clap::Parser;
use oracle::{Decision, decide};
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

/// The grant decision in Rust, written from the documentation's role table: the oracle the
/// scripts' PowerShell is checked against.
mod oracle {
    use calperm::rights::{FREE_BUSY_DETAILED, FREE_BUSY_SIMPLE, Role, rights_of};
    use std::collections::BTreeSet;

    /// What a grant does with an existing entry of the monitor, given its current rights.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Decision {
        /// No entry: add the target role.
        Add,
        /// Exactly the target already.
        Unchanged,
        /// Already grants every right of the target (and more): leave it alone.
        KeptHigher,
        /// Lacks some right of the target: set the union of current and target, so nothing the
        /// monitor already had is lost. The value is what `-AccessRights` gets.
        Update(Vec<String>),
        /// The union cannot be expressed with `-AccessRights` (free/busy levels have no individual
        /// right name): left untouched and reported.
        Conflict,
    }

    /// The decision for one mailbox. `current` is `None` when the monitor has no entry.
    pub fn decide(current: Option<&[&str]>, target: Role) -> Decision {
        let Some(current) = current else {
            return Decision::Add;
        };
        let target_set = target.calendar_rights();
        let current_set = rights_of(current).unwrap_or_default();
        if current_set == target_set {
            return Decision::Unchanged;
        }
        if target_set.is_subset(&current_set) {
            return Decision::KeptHigher;
        }
        let union: BTreeSet<&str> = current_set.union(&target_set).copied().collect();
        if let Some(role) = Role::ALL.into_iter().find(|r| r.calendar_rights() == union) {
            return Decision::Update(vec![role.name().to_string()]);
        }
        let individual: Vec<&str> = union
            .iter()
            .copied()
            .filter(|r| *r != FREE_BUSY_SIMPLE && *r != FREE_BUSY_DETAILED)
            .collect();
        if rights_of(&individual).as_ref() == Some(&union) {
            Decision::Update(individual.into_iter().map(String::from).collect())
        } else {
            Decision::Conflict
        }
    }

    #[test]
    fn editor_covers_reviewer_and_not_the_reverse() {
        assert_eq!(
            decide(Some(&["Editor"]), Role::Reviewer),
            Decision::KeptHigher
        );
        assert_eq!(
            decide(Some(&["Reviewer"]), Role::Editor),
            Decision::Update(vec!["Editor".into()])
        );
    }

    #[test]
    fn absent_equal_and_lower() {
        assert_eq!(decide(None, Role::Reviewer), Decision::Add);
        assert_eq!(
            decide(Some(&["Reviewer"]), Role::Reviewer),
            Decision::Unchanged
        );
        assert_eq!(
            decide(Some(&["reviewer"]), Role::Reviewer),
            Decision::Unchanged
        );
        assert_eq!(
            decide(Some(&["AvailabilityOnly"]), Role::Reviewer),
            Decision::Update(vec!["Reviewer".into()])
        );
        assert_eq!(
            decide(Some(&["None"]), Role::Reviewer),
            Decision::Update(vec!["Reviewer".into()])
        );
    }

    #[test]
    fn incomparable_rights_are_merged_never_lowered() {
        // Contributor can create items, Reviewer can read: the union keeps both.
        assert_eq!(
            decide(Some(&["Contributor"]), Role::Reviewer),
            Decision::Update(vec![
                "CreateItems".into(),
                "FolderVisible".into(),
                "ReadItems".into()
            ])
        );
        // Individual rights spelled out are understood like the role they make up.
        assert_eq!(
            decide(Some(&["ReadItems", "FolderVisible"]), Role::Reviewer),
            Decision::Unchanged
        );
    }

    #[test]
    fn whole_role_table_never_lowers_a_right() {
        for current in Role::ALL {
            for target in Role::ALL {
                let before = current.calendar_rights();
                let after = match decide(Some(&[current.name()]), target) {
                    Decision::Unchanged | Decision::KeptHigher | Decision::Conflict => {
                        before.clone()
                    }
                    Decision::Update(values) => {
                        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                        rights_of(&refs).expect("known rights")
                    }
                    Decision::Add => panic!("an entry exists"),
                };
                assert!(
                    before.is_subset(&after),
                    "{current:?} -> {target:?} lowered a right"
                );
                if decide(Some(&[current.name()]), target) != Decision::Conflict {
                    assert!(
                        target.calendar_rights().is_subset(&after),
                        "{current:?} -> {target:?} misses the target"
                    );
                }
            }
        }
    }

    #[test]
    fn owner_covers_every_role() {
        for target in Role::ALL {
            let d = decide(Some(&["Owner"]), target);
            assert!(
                matches!(d, Decision::KeptHigher | Decision::Unchanged),
                "{target:?}: {d:?}"
            );
        }
    }
}
