//! Whether a journal may steer this run. `--resume` skips what a journal shows as done and
//! `--from-journal` writes rights back from it, so a journal of another run (another monitor,
//! role, tenant or script), an edited one, or one that contradicts itself must not be used.
//!
//! A journal names its run in its `start` records (script, monitor as typed, role, calperm
//! version, simulated tenant) and its `monitor` records (the monitor as Exchange resolved it:
//! address, Guid, tenant). calperm compares what it knows before running; the script compares the
//! resolved monitor and tenant once it is connected (`JournalRun` in the rendered script).
//!
//! Journals written before run identities existed (no `calpermVersion` in their start record)
//! are refused: nothing in them says which monitor or tenant they belong to, and using the wrong
//! one removes or raises someone else's rights.

use crate::error::Failure;
use crate::journal;
use crate::records::{Mailbox, MailboxKind, Outcome, Record};
use crate::rights::{self, Role};
use anyhow::Result;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The run a journal records.
#[derive(Debug, Clone, PartialEq)]
pub struct RunIdentity {
    pub script: String,
    pub monitor: Option<String>,
    pub access_rights: Option<String>,
    pub simulated_tenant: Option<String>,
    pub calperm_version: String,
    /// The monitor as Exchange resolved it, when the run got that far.
    pub resolved: Option<Resolved>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resolved {
    pub address: String,
    pub guid: Option<String>,
    pub organization: Option<String>,
    pub tenant_id: Option<String>,
}

/// What the rendered script checks once connected: empty strings for what the journal does not
/// know.
#[derive(Debug, Serialize, Default)]
pub struct JournalRun {
    pub journal: String,
    pub address: String,
    pub guid: String,
    pub organization: String,
    pub tenant_id: String,
}

fn refuse(path: &Path, message: impl std::fmt::Display, hint: &str) -> anyhow::Error {
    Failure::usage(format!("the journal {}: {message}", path.display()), hint).into()
}

fn same(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => true,
    }
}

/// The run `records` belong to. Refuses a journal without a start record, one from before run
/// identities, and one whose runs (a resumed journal holds several) are not the same run.
pub fn identify(path: &Path, records: &[Record]) -> Result<RunIdentity> {
    let mut identity: Option<RunIdentity> = None;
    // A workflow's journal (setup) holds the start records of all its parts, one pwsh each, and
    // a `part` record after each. The run is the one its first start names; the later parts'
    // starts belong to it and do not name a run of their own.
    let parts: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| match r {
            Record::Part(p) => Some(p.part.as_str()),
            _ => None,
        })
        .collect();
    for record in records {
        match record {
            Record::Start(start)
                if identity
                    .as_ref()
                    .is_some_and(|first| first.script != start.script)
                    && parts.contains(start.script.as_str()) => {}
            Record::Start(start) => {
                let Some(version) = &start.calperm_version else {
                    return Err(refuse(
                        path,
                        "was written by a calperm that did not record which run it belongs to (no calpermVersion in its start record), so nothing says which monitor or tenant it is for",
                        "resume: run the grant again without --resume (a grant is safe to rerun); revoke: run `calperm run revoke` without --from-journal, which records what it removes",
                    ));
                };
                match &identity {
                    None => {
                        identity = Some(RunIdentity {
                            script: start.script.clone(),
                            monitor: start.monitor.clone(),
                            access_rights: start.access_rights.clone(),
                            simulated_tenant: start.simulated_tenant.clone(),
                            calperm_version: version.clone(),
                            resolved: None,
                        })
                    }
                    Some(first) => {
                        let differs = if first.script != start.script {
                            Some(format!("script {} and {}", first.script, start.script))
                        } else if first.access_rights != start.access_rights {
                            Some(format!(
                                "role {} and {}",
                                first.access_rights.as_deref().unwrap_or("none"),
                                start.access_rights.as_deref().unwrap_or("none")
                            ))
                        } else if first.simulated_tenant != start.simulated_tenant {
                            Some("a simulated and another tenant".to_string())
                        } else {
                            None
                        };
                        if let Some(differs) = differs {
                            return Err(refuse(
                                path,
                                format!("holds runs that are not the same run ({differs})"),
                                "use a journal of one run (each run writes its own unless --journal names an existing one)",
                            ));
                        }
                    }
                }
            }
            Record::Monitor(m) => {
                let Some(identity) = identity.as_mut() else {
                    continue;
                };
                let resolved = Resolved {
                    address: m.primary_smtp_address.clone().unwrap_or_default(),
                    guid: m.guid.clone(),
                    organization: m.organization.clone(),
                    tenant_id: m.tenant_id.clone(),
                };
                match &identity.resolved {
                    None => identity.resolved = Some(resolved),
                    Some(first) => {
                        let one =
                            |r: &Resolved| r.guid.as_deref().unwrap_or(&r.address).to_lowercase();
                        if one(first) != one(&resolved)
                            || !same(&first.tenant_id, &resolved.tenant_id)
                        {
                            return Err(refuse(
                                path,
                                format!(
                                    "holds runs for different monitors or tenants ({} and {})",
                                    first.address, resolved.address
                                ),
                                "use a journal of one run",
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    identity.ok_or_else(|| {
        refuse(
            path,
            "has no start record: it is not the journal of a calperm run",
            "pass the journal a previous run named in its summary",
        )
    })
}

/// What this run is, for comparing with a journal before anything runs.
pub struct ThisRun<'a> {
    pub script: &'a str,
    pub monitor: &'a str,
    pub access_rights: &'a str,
}

/// Refuses a journal whose monitor (as typed, or as resolved) is not this run's `--monitor`.
pub(crate) fn check_monitor(path: &Path, identity: &RunIdentity, run: &ThisRun<'_>) -> Result<()> {
    let typed = identity.monitor.as_deref().unwrap_or_default();
    let resolved = identity.resolved.as_ref().map(|r| r.address.as_str());
    let matches = typed.eq_ignore_ascii_case(run.monitor)
        || resolved.is_some_and(|r| r.eq_ignore_ascii_case(run.monitor));
    if !matches {
        let theirs = match resolved {
            Some(address) if !address.eq_ignore_ascii_case(typed) => format!("{typed} ({address})"),
            _ => typed.to_string(),
        };
        return Err(refuse(
            path,
            format!(
                "is of the monitor {theirs}, not of --monitor {}",
                run.monitor
            ),
            &format!(
                "pass the journal of this monitor's run, or --monitor {}",
                resolved.unwrap_or(typed)
            ),
        ));
    }
    Ok(())
}

/// The journal a `--resume` continues: same script, monitor and role. Returns the mailboxes it
/// shows as done and what the script checks once connected.
pub fn for_resume(path: &Path, run: &ThisRun<'_>) -> Result<(Vec<String>, JournalRun)> {
    let records = journal::read(path)?;
    let identity = identify(path, &records)?;
    if identity.script != run.script {
        return Err(refuse(
            path,
            format!("is of a {} run, not of {}", identity.script, run.script),
            &format!("resume a {} with its own journal", run.script),
        ));
    }
    check_monitor(path, &identity, run)?;
    if !same(
        &identity.access_rights,
        &Some(run.access_rights.to_string()),
    ) {
        return Err(refuse(
            path,
            format!(
                "is of a grant of {}, not of --access-rights {}",
                identity.access_rights.as_deref().unwrap_or("?"),
                run.access_rights
            ),
            "resume with the role of that run, or run without --resume",
        ));
    }
    let done = journal::done_mailboxes(&records).into_iter().collect();
    Ok((done, journal_run(path, &identity)))
}

pub(crate) fn journal_run(path: &Path, identity: &RunIdentity) -> JournalRun {
    let resolved = identity.resolved.clone().unwrap_or_default();
    JournalRun {
        // The file name only: the rendered script stays the same wherever the journal lies.
        journal: path
            .file_name()
            .unwrap_or(path.as_os_str())
            .to_string_lossy()
            .into_owned(),
        address: resolved.address,
        guid: resolved.guid.unwrap_or_default(),
        organization: resolved.organization.unwrap_or_default(),
        tenant_id: resolved.tenant_id.unwrap_or_default(),
    }
}

/// Refuses a journal of a simulated run for a real one, or of another simulated tenant file.
pub fn check_simulation(path: &Path, simulated_tenant: Option<&Path>) -> Result<()> {
    let records = journal::read(path)?;
    let identity = identify(path, &records)?;
    let this = simulated_tenant.map(|p| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .to_string_lossy()
            .into_owned()
    });
    if identity.simulated_tenant != this {
        let describe = |t: &Option<String>| match t {
            Some(t) => format!("the simulated tenant {t}"),
            None => "a real tenant".to_string(),
        };
        return Err(refuse(
            path,
            format!(
                "is of a run against {}, this run is against {}",
                describe(&identity.simulated_tenant),
                describe(&this)
            ),
            "pass the journal of a run against the same tenant",
        ));
    }
    Ok(())
}

/// One change `revoke --from-journal` undoes; the revoke template renders these as its entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Undo {
    pub mailbox: String,
    pub folder_identity: String,
    /// `remove` (a grant added the entry), `restore` (a grant raised `previous` to `granted`) or
    /// `add` (a revoke removed `previous`).
    pub action: &'static str,
    /// The rights the grant left; restoring only happens while they are still in place.
    pub granted: Vec<String>,
    /// The rights before the grant (restore), or the rights the revoke removed (add).
    pub previous: Vec<String>,
    /// An add the journal shows only by its intent, made without reading first: whether it
    /// happened (and whether an entry there now is the grant's) is decided from the live state.
    pub uncertain: bool,
}

/// What `revoke --from-journal` undoes: the changes of a grant (or setup) journal, or the
/// removals of a revoke journal. Every change must be one the run's own outcome could have made.
pub fn for_undo(path: &Path, run: &ThisRun<'_>) -> Result<(Vec<Undo>, JournalRun)> {
    let records = journal::read(path)?;
    let identity = identify(path, &records)?;
    check_monitor(path, &identity, run)?;
    let undo = match identity.script.as_str() {
        "grant" | "setup" => grant_undo(path, &identity, &records)?,
        "revoke" => revoke_undo(path, &records, run)?,
        other => {
            return Err(refuse(
                path,
                format!("is of a {other} run, which changes no calendar rights"),
                "pass the journal of a grant, setup or revoke run",
            ));
        }
    };
    if undo.is_empty() {
        return Err(refuse(
            path,
            "records no added, updated or removed entry",
            "pass the journal of a run that changed something",
        ));
    }
    Ok((undo, journal_run(path, &identity)))
}

fn set_of(path: &Path, mailbox: &str, values: &[String]) -> Result<BTreeSet<&'static str>> {
    let names: Vec<&str> = values.iter().map(String::as_str).collect();
    rights::rights_of(&names).ok_or_else(|| {
        refuse(
            path,
            format!(
                "names rights calperm does not know for {mailbox}: {}",
                values.join(",")
            ),
            "use the journal as calperm wrote it",
        )
    })
}

fn contradiction(path: &Path, mailbox: &str, what: String) -> anyhow::Error {
    refuse(
        path,
        format!("contradicts itself for {mailbox}: {what}"),
        "the journal was edited or mixes runs; use the journal as calperm wrote it",
    )
}

fn folder(path: &Path, m: &Mailbox) -> Result<String> {
    m.folder_identity.clone().ok_or_else(|| {
        refuse(
            path,
            format!("has no folderIdentity for {}", m.mailbox),
            "use the journal as calperm wrote it",
        )
    })
}

fn grant_undo(path: &Path, identity: &RunIdentity, records: &[Record]) -> Result<Vec<Undo>> {
    let role_name = identity.access_rights.as_deref().unwrap_or_default();
    let role = Role::from_name(role_name).ok_or_else(|| {
        refuse(
            path,
            format!("does not say which role the grant gave (accessRights {role_name:?})"),
            "use the journal as calperm wrote it",
        )
    })?;
    let role_set = role.calendar_rights();
    let mut changes: BTreeMap<String, Vec<&Mailbox>> = BTreeMap::new();
    for record in records {
        if let Record::Mailbox(m) = record
            && matches!(m.outcome, Outcome::Added | Outcome::Updated)
        {
            changes.entry(m.mailbox.to_lowercase()).or_default().push(m);
        }
    }
    // Changes the journal shows only by an intent that no mailbox record answered.
    let unconfirmed: Vec<Mailbox> = journal::grant_changes(records)
        .into_iter()
        .filter(|m| m.kind == Some(MailboxKind::Unconfirmed))
        .collect();
    for m in &unconfirmed {
        changes
            .entry(m.mailbox.to_lowercase())
            .or_insert_with(|| vec![m]);
    }
    let mut undo = Vec::new();
    for (_, list) in changes {
        let first = list[0];
        let name = &first.mailbox;
        let previous = first.previous.clone().unwrap_or_default();
        if let Some(other) = list
            .iter()
            .find(|m| m.previous.clone().unwrap_or_default() != previous)
        {
            return Err(contradiction(
                path,
                name,
                format!(
                    "two different rights before the grant ({} and {})",
                    none_or(&previous),
                    none_or(&other.previous.clone().unwrap_or_default())
                ),
            ));
        }
        let granted = first.rights.clone().unwrap_or_default();
        let granted_set = set_of(path, name, &granted)?;
        let previous_set = set_of(path, name, &previous)?;
        match first.outcome {
            Outcome::Added => {
                if !previous.is_empty() || granted_set != role_set {
                    return Err(contradiction(
                        path,
                        name,
                        format!(
                            "'added' with {} before and {} after, but a grant of {} adds exactly {} where there was no entry",
                            none_or(&previous),
                            none_or(&granted),
                            role.name(),
                            role.name()
                        ),
                    ));
                }
            }
            _ => {
                let union: BTreeSet<&str> = previous_set.union(&role_set).copied().collect();
                if previous.is_empty() || role_set.is_subset(&previous_set) || granted_set != union
                {
                    return Err(contradiction(
                        path,
                        name,
                        format!(
                            "'updated' from {} to {}, which a grant of {} cannot have done (it raises rights below {} to exactly what they had plus {})",
                            none_or(&previous),
                            none_or(&granted),
                            role.name(),
                            role.name(),
                            role.name()
                        ),
                    ));
                }
            }
        }
        undo.push(Undo {
            mailbox: name.clone(),
            folder_identity: folder(path, first)?,
            action: if previous.is_empty() {
                "remove"
            } else {
                "restore"
            },
            granted,
            previous,
            uncertain: first.kind == Some(MailboxKind::Unconfirmed) && first.previous.is_none(),
        });
    }
    Ok(undo)
}

fn revoke_undo(path: &Path, records: &[Record], run: &ThisRun<'_>) -> Result<Vec<Undo>> {
    let ceiling_role = Role::from_name(run.access_rights).unwrap_or(Role::Reviewer);
    let ceiling = ceiling_role.calendar_rights();
    let mut removed: BTreeMap<String, &Mailbox> = BTreeMap::new();
    for record in records {
        let Record::Mailbox(m) = record else { continue };
        match m.outcome {
            Outcome::Restored => {
                return Err(refuse(
                    path,
                    format!(
                        "is of a revoke that itself undid a grant (it restored {})",
                        m.mailbox
                    ),
                    "to give the rights again, run the grant again",
                ));
            }
            Outcome::Removed => {
                let previous = m.previous.clone().unwrap_or_default();
                if previous.is_empty() {
                    return Err(refuse(
                        path,
                        format!("does not say which rights were removed from {}", m.mailbox),
                        "only revokes by this calperm record what they remove; nothing can be restored from this journal",
                    ));
                }
                if let Some(earlier) = removed.get(&m.mailbox.to_lowercase())
                    && earlier.previous != m.previous
                {
                    return Err(contradiction(
                        path,
                        &m.mailbox,
                        format!(
                            "removed twice, once {} and once {}",
                            none_or(&earlier.previous.clone().unwrap_or_default()),
                            none_or(&previous)
                        ),
                    ));
                }
                removed.entry(m.mailbox.to_lowercase()).or_insert(m);
            }
            _ => {}
        }
    }
    let mut undo = Vec::new();
    let mut above = Vec::new();
    for m in removed.into_values() {
        let previous = m.previous.clone().unwrap_or_default();
        if !set_of(path, &m.mailbox, &previous)?.is_subset(&ceiling) {
            above.push(format!("{} ({})", m.mailbox, previous.join(",")));
            continue;
        }
        undo.push(Undo {
            uncertain: false,
            mailbox: m.mailbox.clone(),
            folder_identity: folder(path, m)?,
            action: "add",
            granted: Vec::new(),
            previous,
        });
    }
    if !above.is_empty() {
        return Err(refuse(
            path,
            format!(
                "says the revoke removed rights above --access-rights {}: {}",
                ceiling_role.name(),
                above.join(", ")
            ),
            "restoring never gives more than --access-rights; if those rights are right, pass the role that covers them (e.g. --access-rights Editor)",
        ));
    }
    Ok(undo)
}

fn none_or(list: &[String]) -> String {
    if list.is_empty() {
        "no entry".into()
    } else {
        list.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Monitor, Start};

    fn start(version: Option<&str>) -> Record {
        Record::Start(Start {
            script: "grant".into(),
            monitor: Some("monitor@contoso.com".into()),
            access_rights: Some("Reviewer".into()),
            what_if: false,
            total: None,
            calperm_version: version.map(String::from),
            simulated_tenant: None,
            started_at: None,
            created_after: None,
            since: None,
        })
    }

    fn monitor(guid: &str) -> Record {
        Record::Monitor(Monitor {
            identity: "monitor@contoso.com".into(),
            display_name: None,
            primary_smtp_address: Some("monitor@contoso.com".into()),
            guid: Some(guid.into()),
            organization: None,
            tenant_id: Some("t1".into()),
        })
    }

    fn change(name: &str, outcome: Outcome, previous: &[&str], rights: &[&str]) -> Record {
        Record::Mailbox(Mailbox {
            mailbox: name.into(),
            outcome,
            display_name: None,
            recipient_type: None,
            folder: None,
            folder_identity: Some(format!("{name}:\\Calendar")),
            previous: (!previous.is_empty())
                .then(|| previous.iter().map(|s| s.to_string()).collect()),
            rights: Some(rights.iter().map(|s| s.to_string()).collect()),
            kind: None,
            message: None,
            retries: 0,
            calls: 1,
            delta: None,
        })
    }

    fn undo(records: &[Record]) -> Result<Vec<Undo>> {
        let path = Path::new("j.jsonl");
        let identity = identify(path, records)?;
        grant_undo(path, &identity, records)
    }

    #[test]
    fn a_consistent_grant_is_undone_entry_for_entry() {
        let records = vec![
            start(Some("0.1.0")),
            monitor("g1"),
            change("a@x", Outcome::Added, &[], &["Reviewer"]),
            change(
                "b@x",
                Outcome::Updated,
                &["AvailabilityOnly"],
                &["Reviewer"],
            ),
            change(
                "c@x",
                Outcome::Updated,
                &["Contributor"],
                &["CreateItems", "ReadItems", "FolderVisible"],
            ),
        ];
        let undo = undo(&records).unwrap();
        let actions: Vec<_> = undo
            .iter()
            .map(|u| (u.mailbox.as_str(), u.action))
            .collect();
        assert_eq!(
            actions,
            [("a@x", "remove"), ("b@x", "restore"), ("c@x", "restore")]
        );
    }

    #[test]
    fn what_the_grant_could_not_have_done_is_a_contradiction() {
        for bad in [
            // Previous rights above the role: a grant keeps those (kept-higher), never updates.
            change("b@x", Outcome::Updated, &["Owner"], &["Reviewer"]),
            // Rights that are not previous plus the role.
            change("b@x", Outcome::Updated, &["AvailabilityOnly"], &["Editor"]),
            // An add that gave more than the role.
            change("b@x", Outcome::Added, &[], &["Owner"]),
            // An add over an existing entry.
            change("b@x", Outcome::Added, &["Editor"], &["Reviewer"]),
        ] {
            let records = vec![start(Some("0.1.0")), bad.clone()];
            let err = format!("{:#}", undo(&records).unwrap_err());
            assert!(err.contains("b@x"), "{bad:?}: {err}");
        }
        let twice = vec![
            start(Some("0.1.0")),
            change(
                "b@x",
                Outcome::Updated,
                &["AvailabilityOnly"],
                &["Reviewer"],
            ),
            change("B@x", Outcome::Updated, &["LimitedDetails"], &["Reviewer"]),
        ];
        assert!(format!("{:#}", undo(&twice).unwrap_err()).contains("two different rights"));
    }

    #[test]
    fn old_journals_and_mixed_runs_are_refused() {
        let path = Path::new("j.jsonl");
        let err = identify(path, &[start(None)]).unwrap_err().to_string();
        assert!(err.contains("did not record which run"), "{err}");
        let err = identify(path, &[]).unwrap_err().to_string();
        assert!(err.contains("no start record"), "{err}");
        let mixed = [
            start(Some("0.1.0")),
            monitor("g1"),
            start(Some("0.1.0")),
            monitor("g2"),
        ];
        let err = identify(path, &mixed).unwrap_err().to_string();
        assert!(err.contains("different monitors"), "{err}");
        let same = [
            start(Some("0.1.0")),
            monitor("g1"),
            start(Some("0.1.0")),
            monitor("G1"),
        ];
        assert!(identify(path, &same).is_ok());
    }
}
