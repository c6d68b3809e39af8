//! The records a script reports, one JSON object per line (design.md principle 7).
//!
//! When calperm runs a script it passes `-RecordMarker <marker>`; the script then writes each record
//! as one line `<marker><json>` on standard output. The marker carries a per-run random part, so no
//! other output (banners, warnings, a device-code prompt, a mailbox name) can be taken for a
//! record. Run by hand, the same script emits ordinary PowerShell objects instead.
//!
//! Field names are camelCase, as PowerShell's `ConvertTo-Json` writes them from the scripts'
//! ordered hashtables. Unknown fields are ignored so that an overridden template may add some.

use crate::names::names;
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

names! {
    /// Per-mailbox outcomes (design.md "Outcomes"). The scripts get the failing ones rendered
    /// from here (`failure_outcomes`).
    pub enum Outcome {
        Added = "added",
        Updated = "updated",
        Unchanged = "unchanged",
        KeptHigher = "kept-higher",
        WouldAdd = "would-add",
        WouldUpdate = "would-update",
        /// audit: the monitor's rights meet the target.
        Meets = "meets",
        /// audit: the monitor has an entry below the target.
        Below = "below",
        /// audit: the monitor has no entry.
        Missing = "missing",
        Removed = "removed",
        Restored = "restored",
        Absent = "absent",
        WouldRemove = "would-remove",
        WouldRestore = "would-restore",
        Skipped = "skipped",
        NoCalendar = "no-calendar",
        Failed = "failed",
    }
}

impl Outcome {
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

    /// The outcomes that make the run exit 1, by name: the scripts set their exit code from it.
    pub fn failure_names() -> Vec<&'static str> {
        Outcome::ALL
            .iter()
            .filter(|o| o.is_failure())
            .map(|o| o.as_str())
            .collect()
    }
}

names! {
    /// Why a mailbox `failed` or was `skipped` (a mailbox record's `kind`). A name the list does
    /// not know is kept as `Unknown`, so a script that reports a new one still parses.
    pub enum MailboxKind or Unknown {
        /// failed: Exchange does not know the mailbox or its calendar.
        NotFound = "not-found",
        /// failed: the signed-in account may not read or change the calendar's permissions.
        AccessDenied = "access-denied",
        /// failed: throttled or transient, and the retries were spent.
        Throttled = "throttled",
        /// failed: anything else (the message says what).
        Other = "other",
        /// failed: the run was stopped before this mailbox was changed.
        Interrupted = "interrupted",
        /// skipped: the monitor's own mailbox.
        Monitor = "monitor",
        /// skipped: matched `--exclude`.
        Excluded = "excluded",
        /// skipped: done in the `--resume` journal.
        Resumed = "resumed",
        /// skipped: a delta run's new mailbox that Exchange cannot use yet.
        NotYetUsable = "not-yet-usable",
        /// skipped (revoke): the monitor's entry changed since the grant; left as it is.
        Changed = "changed",
        /// skipped (revoke): the grant stopped while adding, so the entry may be older.
        Uncertain = "uncertain",
        /// skipped (revoke): restoring would raise rights the grant did not set.
        Refused = "refused",
        /// Written by calperm into a journal, never by a script: a change known only by its
        /// intent (journal.rs).
        Unconfirmed = "unconfirmed",
    }
}

impl MailboxKind {
    /// The kinds a failed mailbox is reported with (design.md "Outcomes"): the scripts map
    /// Exchange's error classes onto these.
    pub const FAILURES: [MailboxKind; 4] = [
        MailboxKind::NotFound,
        MailboxKind::AccessDenied,
        MailboxKind::Throttled,
        MailboxKind::Other,
    ];

    /// Skips that are the run working as asked (the monitor, `--exclude`, a resumed mailbox):
    /// the table leaves them out.
    pub fn is_expected_skip(&self) -> bool {
        matches!(
            self,
            MailboxKind::Resumed | MailboxKind::Monitor | MailboxKind::Excluded
        )
    }
}

names! {
    /// Why a script stopped (a `fatal` record's `kind`; `Stop-CalpermRun -Kind`).
    pub enum FatalKind or Unknown {
        /// The monitor does not exist.
        MonitorNotFound = "monitor-not-found",
        /// The monitor names more than one recipient.
        MonitorAmbiguous = "monitor-ambiguous",
        /// The monitor cannot hold folder permissions.
        MonitorInvalid = "monitor-invalid",
        /// The `--resume` / `--from-journal` journal is of another monitor or tenant.
        JournalMismatch = "journal-mismatch",
        /// More than one Entra application has the app name.
        AppAmbiguous = "app-ambiguous",
        /// Could not connect to Exchange.
        Connect = "connect",
        /// A PowerShell module the script needs is not installed.
        ModuleMissing = "module-missing",
        /// calperm stopped the run (interrupted, or its journal could not be written).
        Stopped = "stopped",
        Other = "other",
    }
}

impl FatalKind {
    /// A configuration error: an option is wrong and nothing was changed (exit code 2).
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            FatalKind::MonitorNotFound
                | FatalKind::MonitorAmbiguous
                | FatalKind::MonitorInvalid
                | FatalKind::JournalMismatch
        )
    }
}

names! {
    /// Why a delta run visited a mailbox (a mailbox record's `delta`).
    pub enum DeltaReason or Unknown {
        /// Created after the window's start (`--created-after`, `--since`).
        New = "new",
        /// Left unfinished by the `--since` journal.
        Retried = "retried",
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
    /// Why it `failed` or was `skipped`.
    #[serde(default)]
    pub kind: Option<MailboxKind>,
    #[serde(default)]
    pub message: Option<String>,
    /// Throttled or transient calls that were retried.
    #[serde(default)]
    pub retries: u32,
    /// Exchange cmdlet calls made for this mailbox.
    #[serde(default)]
    pub calls: u32,
    /// In a delta run: why the mailbox was visited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<DeltaReason>,
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
    /// As the scripts name it (templates/_records.ps1.hbs lists them): calperm tells only
    /// `failed` apart and shows the rest as written.
    pub outcome: String,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub item: String,
    /// As the scripts name it (templates/_records.ps1.hbs lists them): calperm tells only
    /// `failed` apart and shows the rest as written.
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
    pub kind: FatalKind,
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
}

#[cfg(test)]
mod vocabulary {
    use super::*;
    use regex::Regex;
    use std::collections::BTreeSet;

    /// The kinds the built-in templates write literally, by the pattern that writes them.
    fn written(patterns: &[&str]) -> BTreeSet<String> {
        let patterns: Vec<Regex> = patterns.iter().map(|p| Regex::new(p).unwrap()).collect();
        crate::render::TEMPLATES
            .iter()
            .flat_map(|(_, source)| {
                patterns
                    .iter()
                    .flat_map(|p| p.captures_iter(source).map(|c| c[1].to_string()))
            })
            .collect()
    }

    /// A kind a script reports that calperm does not list would still parse (as `Unknown`), but
    /// the report and the exit code would not know what it means: add it to the enum.
    #[test]
    fn every_mailbox_kind_the_scripts_write_is_known() {
        let kinds = written(&[r"(?i)\$record\.kind = '([^']+)'"]);
        assert!(
            kinds.contains("resumed") && kinds.contains("refused"),
            "{kinds:?}"
        );
        for kind in &kinds {
            assert!(
                MailboxKind::from_name(kind).is_known(),
                "{kind} is not a MailboxKind"
            );
        }
    }

    #[test]
    fn every_delta_reason_the_scripts_write_is_known_and_every_one_is_written() {
        let reasons = written(&[r"DeltaRole\[[^\]]+\] = '([^']+)'"]);
        let listed: BTreeSet<String> = DeltaReason::NAMES.iter().map(|s| s.to_string()).collect();
        assert_eq!(reasons, listed);
    }

    #[test]
    fn every_fatal_kind_the_scripts_write_is_known_and_every_one_is_written() {
        let kinds = written(&[
            r"-Kind '([^']+)'",
            r"type = 'fatal'; kind = '([^']+)'",
            r"@\{ Kind = '([^']+)'; Message",
        ]);
        for kind in &kinds {
            assert!(
                FatalKind::from_name(kind).is_known(),
                "{kind} is not a FatalKind"
            );
        }
        let listed: BTreeSet<String> = FatalKind::NAMES.iter().map(|s| s.to_string()).collect();
        assert_eq!(kinds, listed, "FatalKind lists a kind no script writes");
    }

    #[test]
    fn an_unknown_kind_parses_and_is_written_back_as_it_was() {
        let line =
            r#"{"type":"mailbox","mailbox":"a@x","outcome":"failed","kind":"quota-exceeded"}"#;
        let Record::Mailbox(m) = serde_json::from_str(line).unwrap() else {
            panic!("mailbox expected")
        };
        assert_eq!(m.kind, Some(MailboxKind::Unknown("quota-exceeded".into())));
        assert!(
            serde_json::to_string(&m)
                .unwrap()
                .contains(r#""kind":"quota-exceeded""#)
        );
        let fatal: Record =
            serde_json::from_str(r#"{"type":"fatal","kind":"journal-mismatch","message":"m"}"#)
                .unwrap();
        assert!(matches!(fatal, Record::Fatal(Fatal { kind, .. }) if kind.is_configuration()));
    }

    #[test]
    fn an_unknown_outcome_is_refused() {
        let err = serde_json::from_str::<Outcome>(r#""half-done""#).unwrap_err();
        assert!(err.to_string().contains("half-done"), "{err}");
        assert_eq!(
            serde_json::from_str::<Outcome>(r#""kept-higher""#).unwrap(),
            Outcome::KeptHigher
        );
    }
}
