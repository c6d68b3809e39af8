//! The records a script reports, one JSON object per line (design.md principle 7).
//!
//! When calperm runs a script it passes `-RecordMarker <marker>`; the script then writes each record
//! as one line `<marker><json>` on standard output. The marker carries a per-run random part, so no
//! other output (banners, warnings, a device-code prompt, a mailbox name) can be taken for a
//! record. Run by hand, the same script emits ordinary PowerShell objects instead.
//!
//! Field names are camelCase, as PowerShell's `ConvertTo-Json` writes them from the scripts'
//! ordered hashtables. Unknown fields are ignored so that an overridden template may add some.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Record {
    /// First record of every script.
    Start(Start),
    /// The monitor as Exchange resolved it.
    Monitor(Monitor),
    /// One mailbox's outcome (grant, audit, revoke).
    Mailbox(Mailbox),
    /// A change about to be made (grant, revoke), written before it. Run by calperm with
    /// `-AwaitAck`, the script makes the change only after calperm has journaled this record and
    /// said so on the script's standard input; an intent without a later mailbox record means
    /// the run stopped while the change was in flight.
    Intent(Intent),
    /// One step's outcome (execution-policy, setup, ews-readiness).
    Step(Step),
    /// One object of the app registration (application, service principal, permission, consent,
    /// secret, certificate, RBAC scope) and what was done with it.
    Item(Item),
    /// A value to hand to the connector or the admin (tenant ID, client ID, EWS URL, …).
    Setting(Setting),
    /// A value the next script of a workflow takes as its parameter of the same name.
    Output(Output),
    /// Written by calperm, not by a script: how one script (part) of a workflow ended, with the
    /// values it reported. `--resume` reads these.
    Part(Part),
    /// Something the admin should know that is not a failure (e.g. an --exclude value that
    /// matched no mailbox).
    Warning(Warning),
    /// The script stopped before its work was done.
    Fatal(Fatal),
    /// Last record: the script's own exit code and counts.
    End(End),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    pub script: String,
    #[serde(default)]
    pub monitor: Option<String>,
    #[serde(default)]
    pub access_rights: Option<String>,
    #[serde(default)]
    pub what_if: bool,
    /// Mailboxes the script will visit, when known before enumeration (include list, CSV).
    #[serde(default)]
    pub total: Option<u64>,
    /// The calperm that rendered the script. Journals without it predate run identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calperm_version: Option<String>,
    /// The `--simulate` tenant file (absolute), set by calperm, never by the script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated_tenant: Option<String>,
    /// When calperm received this record (UTC, `yyyy-MM-ddTHH:mm:ssZ`): what `--since` counts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// A delta run's basis: only mailboxes created after this (UTC) ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_after: Option<String>,
    /// ... and the journal (`--since`) whose unfinished mailboxes it retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Monitor {
    pub identity: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub primary_smtp_address: Option<String>,
    /// The mailbox's Guid as Exchange returned it: the same account whatever it was typed as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guid: Option<String>,
    /// The tenant the script was connected to (Exchange Online: Get-ConnectionInformation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// Per-mailbox outcomes (design.md "Outcomes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Added,
    Updated,
    Unchanged,
    KeptHigher,
    WouldAdd,
    WouldUpdate,
    /// audit: the monitor's rights meet the target.
    Meets,
    /// audit: the monitor has an entry below the target.
    Below,
    /// audit: the monitor has no entry.
    Missing,
    Removed,
    Restored,
    Absent,
    WouldRemove,
    WouldRestore,
    Skipped,
    NoCalendar,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Added => "added",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::KeptHigher => "kept-higher",
            Outcome::WouldAdd => "would-add",
            Outcome::WouldUpdate => "would-update",
            Outcome::Meets => "meets",
            Outcome::Below => "below",
            Outcome::Missing => "missing",
            Outcome::Removed => "removed",
            Outcome::Restored => "restored",
            Outcome::Absent => "absent",
            Outcome::WouldRemove => "would-remove",
            Outcome::WouldRestore => "would-restore",
            Outcome::Skipped => "skipped",
            Outcome::NoCalendar => "no-calendar",
            Outcome::Failed => "failed",
        }
    }

    /// Whether a resumed grant may skip a mailbox that ended with this outcome.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            Outcome::Added
                | Outcome::Updated
                | Outcome::Unchanged
                | Outcome::KeptHigher
                | Outcome::NoCalendar
        )
    }

    /// Whether this outcome makes the run exit 1.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Below | Outcome::Missing)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mailbox {
    /// The mailbox's primary SMTP address (its key in journals).
    pub mailbox: String,
    pub outcome: Outcome,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub recipient_type: Option<String>,
    /// The default calendar's display name, as found.
    #[serde(default)]
    pub folder: Option<String>,
    /// The folder identity the change was made on (`mailbox:\Name` or `mailbox:FolderId`).
    #[serde(default)]
    pub folder_identity: Option<String>,
    /// The monitor's rights before (updated, kept-higher, unchanged, audit).
    #[serde(default)]
    pub previous: Option<Vec<String>>,
    /// The monitor's rights after the change (or wanted, with -WhatIf).
    #[serde(default)]
    pub rights: Option<Vec<String>>,
    /// For `failed`: not-found, access-denied, throttled, other. For `skipped`: monitor, excluded,
    /// resumed, not-yet-usable (a delta run's new mailbox Exchange cannot use yet).
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// Throttled or transient calls that were retried.
    #[serde(default)]
    pub retries: u32,
    /// Exchange cmdlet calls made for this mailbox.
    #[serde(default)]
    pub calls: u32,
    /// In a delta run: `new` (created after the window's start) or `retried` (unfinished in
    /// the `--since` journal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<String>,
}

impl Mailbox {
    /// A record of `mailbox` with `outcome` and nothing else known yet.
    pub fn new(mailbox: impl Into<String>, outcome: Outcome) -> Mailbox {
        Mailbox {
            mailbox: mailbox.into(),
            outcome,
            display_name: None,
            recipient_type: None,
            folder: None,
            folder_identity: None,
            previous: None,
            rights: None,
            kind: None,
            message: None,
            retries: 0,
            calls: 0,
            delta: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    pub mailbox: String,
    /// `add` (Add-MailboxFolderPermission), `set` (Set-…) or `remove` (Remove-…).
    pub action: String,
    pub folder_identity: String,
    /// The monitor's rights before the change, when known (`set`, `remove`). An `add` made
    /// without reading first has none: it succeeds only where the monitor had no entry.
    #[serde(default)]
    pub previous: Option<Vec<String>>,
    /// The rights the change sets (`add`, `set`).
    #[serde(default)]
    pub rights: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub step: String,
    /// ok, changed, unchanged, not-applicable, would-change, skipped, failed.
    pub outcome: String,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub item: String,
    /// created, unchanged, updated, would-create, skipped, failed.
    pub outcome: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// Calls retried because Entra ID had not replicated a new object yet.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    /// The parameter name: ClientId, ServicePrincipalId, TenantId.
    pub name: String,
    pub value: String,
}

/// How a part ended: `completed` (nothing failed), `failed` (it ran; something failed),
/// `stopped` (pwsh ended abnormally or was interrupted), `skipped` (a part it depends on did not
/// complete), `resumed` (completed in the journal of an earlier run; not run again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    pub part: String,
    /// 1-based position in the workflow.
    pub number: u32,
    pub outcome: String,
    #[serde(default)]
    pub message: Option<String>,
    /// The outputs it reported (parameter name → value).
    #[serde(default)]
    pub values: std::collections::BTreeMap<String, String>,
}

impl Part {
    /// Whether a resumed run may take this part as done.
    pub fn is_done(&self) -> bool {
        matches!(self.outcome.as_str(), "completed" | "resumed")
    }

    pub fn is_failure(&self) -> bool {
        matches!(self.outcome.as_str(), "failed" | "stopped" | "skipped")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Setting {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    /// unmatched-filter, …
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fatal {
    /// monitor-not-found, monitor-ambiguous, monitor-invalid (cannot hold folder permissions),
    /// connect, module-missing, other.
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct End {
    pub exit_code: i32,
}

impl Step {
    pub fn is_failure(&self) -> bool {
        self.outcome == "failed"
    }
}

impl Item {
    pub fn is_failure(&self) -> bool {
        self.outcome == "failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_mailbox_record_as_powershell_writes_it() {
        let line = r#"{"type":"mailbox","mailbox":"anna@contoso.com","outcome":"kept-higher","displayName":"Anna","folder":"Kalender","previous":["Editor"],"rights":["Editor"],"kind":null,"message":null,"retries":0,"calls":2,"extra":1}"#;
        let Record::Mailbox(m) = serde_json::from_str(line).unwrap() else {
            panic!("mailbox expected")
        };
        assert_eq!(m.outcome, Outcome::KeptHigher);
        assert_eq!(m.previous.as_deref(), Some(&["Editor".to_string()][..]));
        assert_eq!(m.calls, 2);
    }

    #[test]
    fn outcome_names_round_trip() {
        for o in [
            Outcome::KeptHigher,
            Outcome::NoCalendar,
            Outcome::WouldUpdate,
        ] {
            let json = serde_json::to_string(&o).unwrap();
            assert_eq!(json, format!("\"{}\"", o.as_str()));
        }
    }
}
