//! Mailbox folder roles and the individual rights each grants (reference/exchange.md §1.1).
//! "Covers" is decided on these sets, never on role names: Editor covers Reviewer because it
//! grants every right Reviewer grants. The rendered scripts carry the same table (see
//! `templates/_rights.ps1.hbs`), and a test runs that PowerShell over every pair of roles.

use clap::ValueEnum;
use serde::Serialize;
use std::collections::BTreeSet;

/// The individual rights `-AccessRights` accepts, plus the two free/busy levels that exist only
/// on calendar folders (they have no individual-right name in the cmdlets).
pub const INDIVIDUAL_RIGHTS: [&str; 11] = [
    "ReadItems",
    "CreateItems",
    "EditOwnedItems",
    "DeleteOwnedItems",
    "EditAllItems",
    "DeleteAllItems",
    "CreateSubfolders",
    "FolderOwner",
    "FolderContact",
    "FolderVisible",
    "None",
];

/// Free/busy levels on calendar folders. On `IPF.Appointment` folders Exchange ORs free/busy bits
/// into every role (exchange.md §1.1, XD `CalculateMemberRights`); which role gets which bit is
/// not documented, so calperm takes: any role → simple free/busy, any role with `ReadItems` →
/// detailed free/busy as well (inference, see README "Rights").
pub const FREE_BUSY_SIMPLE: &str = "FreeBusySimple";
pub const FREE_BUSY_DETAILED: &str = "FreeBusyDetailed";

/// The documented roles, in the order the documentation lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[value(rename_all = "PascalCase")]
pub enum Role {
    Owner,
    PublishingEditor,
    Editor,
    PublishingAuthor,
    Author,
    NonEditingAuthor,
    Reviewer,
    Contributor,
    /// Calendar folders only: free/busy time.
    AvailabilityOnly,
    /// Calendar folders only: free/busy with subject and location.
    LimitedDetails,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::Owner,
        Role::PublishingEditor,
        Role::Editor,
        Role::PublishingAuthor,
        Role::Author,
        Role::NonEditingAuthor,
        Role::Reviewer,
        Role::Contributor,
        Role::AvailabilityOnly,
        Role::LimitedDetails,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::PublishingEditor => "PublishingEditor",
            Role::Editor => "Editor",
            Role::PublishingAuthor => "PublishingAuthor",
            Role::Author => "Author",
            Role::NonEditingAuthor => "NonEditingAuthor",
            Role::Reviewer => "Reviewer",
            Role::Contributor => "Contributor",
            Role::AvailabilityOnly => "AvailabilityOnly",
            Role::LimitedDetails => "LimitedDetails",
        }
    }

    /// The individual rights of the role, as the documentation's role table lists them.
    pub fn documented_rights(self) -> &'static [&'static str] {
        match self {
            Role::Owner => &[
                "CreateItems",
                "CreateSubfolders",
                "DeleteAllItems",
                "DeleteOwnedItems",
                "EditAllItems",
                "EditOwnedItems",
                "FolderContact",
                "FolderOwner",
                "FolderVisible",
                "ReadItems",
            ],
            Role::PublishingEditor => &[
                "CreateItems",
                "CreateSubfolders",
                "DeleteAllItems",
                "DeleteOwnedItems",
                "EditAllItems",
                "EditOwnedItems",
                "FolderVisible",
                "ReadItems",
            ],
            Role::Editor => &[
                "CreateItems",
                "DeleteAllItems",
                "DeleteOwnedItems",
                "EditAllItems",
                "EditOwnedItems",
                "FolderVisible",
                "ReadItems",
            ],
            Role::PublishingAuthor => &[
                "CreateItems",
                "CreateSubfolders",
                "DeleteOwnedItems",
                "EditOwnedItems",
                "FolderVisible",
                "ReadItems",
            ],
            Role::Author => &[
                "CreateItems",
                "DeleteOwnedItems",
                "EditOwnedItems",
                "FolderVisible",
                "ReadItems",
            ],
            Role::NonEditingAuthor => &[
                "CreateItems",
                "DeleteOwnedItems",
                "FolderVisible",
                "ReadItems",
            ],
            Role::Reviewer => &["FolderVisible", "ReadItems"],
            Role::Contributor => &["CreateItems", "FolderVisible"],
            Role::AvailabilityOnly | Role::LimitedDetails => &[],
        }
    }

    /// Every right the role grants on a calendar folder, free/busy levels included.
    pub fn calendar_rights(self) -> BTreeSet<&'static str> {
        let mut set: BTreeSet<&'static str> = self.documented_rights().iter().copied().collect();
        match self {
            Role::AvailabilityOnly => {
                set.insert(FREE_BUSY_SIMPLE);
            }
            Role::LimitedDetails => {
                set.insert(FREE_BUSY_SIMPLE);
                set.insert(FREE_BUSY_DETAILED);
            }
            _ => add_implied_free_busy(&mut set),
        }
        set
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(name))
    }
}

fn add_implied_free_busy(set: &mut BTreeSet<&'static str>) {
    if set.is_empty() {
        return;
    }
    set.insert(FREE_BUSY_SIMPLE);
    if set.contains("ReadItems") {
        set.insert(FREE_BUSY_DETAILED);
    }
}

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

/// The rights a list of `AccessRights` values (roles or individual rights) grants on a calendar.
/// `None` grants nothing. Unknown names yield `None`.
pub fn rights_of(values: &[&str]) -> Option<BTreeSet<&'static str>> {
    let mut set = BTreeSet::new();
    let mut individual = false;
    for value in values {
        if let Some(role) = Role::from_name(value) {
            set.extend(role.calendar_rights());
        } else if let Some(right) = INDIVIDUAL_RIGHTS
            .iter()
            .find(|r| r.eq_ignore_ascii_case(value))
        {
            if *right != "None" {
                set.insert(*right);
                individual = true;
            }
        } else {
            return None;
        }
    }
    if individual {
        add_implied_free_busy(&mut set);
    }
    Some(set)
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

#[cfg(test)]
mod tests {
    use super::*;

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
