//! Mailbox folder roles and the individual rights each grants (reference/exchange.md §1.1).
//! "Covers" is decided on these sets, never on role names: Editor covers Reviewer because it
//! grants every right Reviewer grants. The rendered scripts carry this table (rendered from it
//! into `templates/_rights.ps1.hbs`) and decide there; tests/it/rights.rs holds a Rust oracle of
//! that decision and runs the PowerShell over every pair of roles.

use clap::ValueEnum;
use serde::Serialize;
use std::collections::BTreeSet;

/// The individual rights `-AccessRights` accepts, plus the two free/busy levels that exist only
/// on calendar folders (they have no individual-right name in the cmdlets).
pub(crate) const INDIVIDUAL_RIGHTS: [&str; 11] = [
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
    pub(crate) fn documented_rights(self) -> &'static [&'static str] {
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

    pub(crate) fn from_name(name: &str) -> Option<Role> {
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
