//! What a run takes from earlier journals: the mailboxes `--resume` skips, the entries
//! `revoke --from-journal` restores, the window and retries of `--since`, the calendars of
//! `--folders-from`, and the run those journals record (one monitor in one tenant).

use crate::cli::ScriptOptions;
use crate::delta;
use crate::error::Failure;
use crate::journal_check::{self, JournalRun};
use crate::script::Script;
use anyhow::Result;

/// What the journals the options name say, for the context.
pub(super) struct FromJournals {
    /// Mailboxes a resumed grant skips.
    pub(super) resume_done: Vec<String>,
    /// What `revoke --from-journal` restores.
    pub(super) revoke_entries: Vec<journal_check::Undo>,
    /// `--created-after`'s filter date, or the one `--since` chose.
    pub(super) created_after: Option<String>,
    pub(super) retry: Vec<String>,
    pub(super) since: Option<String>,
    pub(super) folder_cache: Vec<delta::CachedFolder>,
    pub(super) journal_run: Option<JournalRun>,
}

/// Reads and checks the journals of `--resume`, `--from-journal`, `--since` and `--folders-from`
/// against this run of `script` for `monitor`.
pub(super) fn read(
    script: Script,
    o: &ScriptOptions,
    monitor: &str,
    created_after: Option<String>,
) -> Result<FromJournals> {
    let this_run = journal_check::ThisRun {
        script: script.name(),
        monitor,
        access_rights: o.access_rights.name(),
    };
    let mut journal_run = None;
    let resume_done = match &o.resume {
        Some(_) if !script.resumable(o.restrict_to_group.is_some()) => {
            return Err(Failure::usage(
                "--resume applies to grant, setup and app-registration --restrict-to-group only",
                "drop --resume",
            )
            .into());
        }
        Some(path) if script.resumes_mailboxes() => {
            let (done, run) = journal_check::for_resume(path, &this_run)?;
            journal_run = Some(run);
            done
        }
        // A workflow resumed by its parts (app-registration --restrict-to-group).
        Some(path) => {
            crate::journal::read(path)?;
            Vec::new()
        }
        None => Vec::new(),
    };
    let revoke_entries = match (&o.from_journal, script) {
        (Some(path), Script::Revoke) => {
            let (undo, run) = journal_check::for_undo(path, &this_run)?;
            journal_run = Some(run);
            undo
        }
        (Some(_), _) => {
            return Err(Failure::usage(
                "--from-journal applies to revoke only",
                "use: calperm run revoke --from-journal FILE",
            )
            .into());
        }
        (None, _) => Vec::new(),
    };
    let (mut created_after, mut retry, mut since) = (created_after, Vec::new(), None);
    if let Some(path) = &o.since {
        if script != Script::Grant {
            return Err(Failure::usage("--since applies to grant only", "drop --since").into());
        }
        if created_after.is_some() || journal_run.is_some() {
            return Err(Failure::usage(
                "--since cannot be combined with --created-after or --resume",
                "--since chooses the window itself; resume an interrupted run first, then run --since",
            )
            .into());
        }
        let basis = delta::since(path, &this_run)?;
        (created_after, retry, since) =
            (Some(basis.created_after), basis.retry, Some(basis.journal));
        journal_run = Some(basis.run);
    }
    let mut folder_cache = Vec::new();
    if let Some(path) = &o.folders_from {
        if !matches!(script, Script::Grant | Script::Audit | Script::Revoke)
            || o.from_journal.is_some()
        {
            return Err(Failure::usage(
                "--folders-from applies to grant, audit and revoke (not with --from-journal, which names its folders itself)",
                "drop --folders-from",
            )
            .into());
        }
        let (cache, run) = delta::folders_from(path, &this_run)?;
        if let Some(other) = &journal_run
            && ((!other.guid.is_empty() && !run.guid.is_empty() && other.guid != run.guid)
                || (!other.tenant_id.is_empty()
                    && !run.tenant_id.is_empty()
                    && other.tenant_id != run.tenant_id))
        {
            return Err(Failure::usage(
                format!(
                    "the journal {} is of another monitor or tenant than the run's other journal",
                    path.display()
                ),
                "pass journals of runs of this monitor in this tenant",
            )
            .into());
        }
        journal_run.get_or_insert(run);
        folder_cache = cache;
    }
    Ok(FromJournals {
        resume_done,
        revoke_entries,
        created_after,
        retry,
        since,
        folder_cache,
        journal_run,
    })
}
