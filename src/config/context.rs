//! The template data: everything a template may use. The runner reads none of it
//! (`config::target` gives it the typed facts it needs).

use super::journals::FromJournals;
use super::plan::PartScript;
use crate::cli::ScriptOptions;
use crate::delta;
use crate::journal_check::{self, JournalRun};
use crate::limits::{self, Limits};
use crate::records::{MailboxKind, Outcome};
use crate::script::{Connection, Script};
use crate::{locale, rights::Role};
use serde::Serialize;

/// Microsoft Graph's resource appId and the Calendars.Read application role (reference/entra.md §0).
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
const CALENDARS_READ_ROLE_ID: &str = "798ee544-9d2d-430c-a058-570e29e34338";
const EWS_URL: &str = "https://outlook.office365.com/EWS/Exchange.asmx";

/// Everything a template may use. Optional values serialize as `null`, never go missing, so a
/// typo in a template fails at render time (strict mode).
#[derive(Debug, Serialize)]
pub struct ScriptContext {
    pub(crate) calperm_version: &'static str,
    pub(crate) script: &'static str,
    pub(crate) monitor: String,
    pub(crate) access_rights: &'static str,
    pub(crate) locale: String,
    /// `exo`, `exo-app`, `managed-identity`, `onprem` or `legacy-basic`: templates test it with
    /// `(eq connection "…")`, and Exchange Online against Exchange Server with `(cloud connection)`.
    pub(crate) connection: &'static str,
    pub(crate) user_principal_name: Option<String>,
    pub(crate) app_id: Option<String>,
    pub(crate) organization: Option<String>,
    pub(crate) certificate_thumbprint: Option<String>,
    pub(crate) certificate_path: Option<String>,
    pub(crate) server: Option<String>,
    pub(crate) recipient_types: Vec<String>,
    pub(crate) include: Vec<String>,
    pub(crate) exclude: Vec<String>,
    pub(crate) mailboxes_csv: Option<String>,
    /// `--created-after`: the filter date, `yyyy-MM-ddTHH:mm:ss` UTC (delta.rs).
    pub(crate) created_after: Option<String>,
    /// schedule: the task's `--created-after` duration.
    pub(crate) schedule_window: String,
    /// `--since`: the mailboxes the earlier journal left unfinished, and that journal's file name.
    pub(crate) retry: Vec<String>,
    pub(crate) since: Option<String>,
    /// `--folders-from`: calendars to try first.
    pub(crate) folder_cache: Vec<delta::CachedFolder>,
    pub(crate) max_retries: u32,
    pub(crate) retry_delay_ms: u32,
    /// How long in all the scripts retry a call on an object Entra ID has not replicated yet.
    pub(crate) replication_timeout_seconds: u32,
    /// Mailboxes a resumed grant skips.
    pub(crate) resume_done: Vec<String>,
    pub(crate) resume_journal: Option<String>,
    /// What `revoke --from-journal` restores.
    pub(crate) revoke_from_journal: Option<String>,
    pub(crate) revoke_entries: Vec<journal_check::Undo>,
    /// The run a `--resume` or `--from-journal` journal records; the script checks the monitor
    /// and tenant it resolves against it.
    pub(crate) journal_run: Option<JournalRun>,
    pub(crate) roles: Vec<RoleRow>,
    /// The roles' names, for `ValidateSet`.
    pub(crate) role_names: Vec<&'static str>,
    /// The individual rights `-AccessRights` accepts (rights.rs).
    pub(crate) individual_rights: &'static [&'static str],
    pub(crate) calendar_names: Vec<CalendarName>,
    pub(crate) app_name: String,
    pub(crate) secret_name: String,
    pub(crate) secret_months: u32,
    /// The options' ranges, for the scripts' `ValidateRange` attributes.
    pub(crate) limits: &'static Limits,
    pub(crate) secret_file: Option<String>,
    /// `--show-secret`: the script's ShowSecret default is 'yes' instead of 'auto'.
    pub(crate) show_secret: bool,
    pub(crate) app_certificate_path: Option<String>,
    pub(crate) connector_app_id: Option<String>,
    pub(crate) restrict_to_group: Option<String>,
    pub(crate) graph_app_id: &'static str,
    pub(crate) calendars_read_role_id: &'static str,
    pub(crate) ews_url: &'static str,
    /// The mailbox outcomes that make a run exit 1 (records.rs `Outcome::is_failure`).
    pub(crate) failure_outcomes: Vec<&'static str>,
    /// The kinds a failed mailbox is reported with (records.rs `MailboxKind::FAILURES`).
    pub(crate) failure_kinds: Vec<&'static str>,
    pub(crate) csv_identity_columns: &'static [&'static str],
}

#[derive(Debug, Serialize)]
pub(crate) struct RoleRow {
    pub(crate) name: &'static str,
    pub(crate) rights: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CalendarName {
    pub(crate) code: String,
    pub(crate) name: String,
}

/// A part's template data in a workflow of several scripts: the command's context and the
/// part's own switches.
#[derive(Serialize)]
pub(crate) struct PartContext<'a> {
    #[serde(flatten)]
    context: &'a ScriptContext,
    /// The app's Exchange side also checks EWS readiness (setup).
    part_ews_readiness: bool,
}

impl ScriptContext {
    /// The data of `part` of a workflow.
    pub(crate) fn for_part(&self, part: PartScript) -> PartContext<'_> {
        PartContext {
            context: self,
            part_ews_readiness: part.ews_readiness(),
        }
    }
}

/// What the checks made of the options, for the context.
pub(super) struct Checked {
    pub(super) monitor: String,
    pub(super) locale: String,
    pub(super) include: Vec<String>,
    pub(super) exclude: Vec<String>,
    pub(super) schedule_window: String,
    pub(super) app_certificate_path: Option<String>,
}

impl ScriptContext {
    pub(super) fn new(
        script: Script,
        o: &ScriptOptions,
        checked: Checked,
        journals: FromJournals,
    ) -> ScriptContext {
        ScriptContext {
            calperm_version: env!("CARGO_PKG_VERSION"),
            script: script.name(),
            monitor: checked.monitor,
            access_rights: o.access_rights.name(),
            locale: checked.locale,
            connection: o.connection.name(),
            user_principal_name: o.user_principal_name.clone(),
            app_id: o.app_id.clone(),
            organization: o.organization.clone(),
            certificate_thumbprint: o.certificate_thumbprint.clone(),
            certificate_path: if o.connection == Connection::ExoApp {
                o.certificate_path.as_deref().map(super::path_string)
            } else {
                None
            },
            server: o.server.clone(),
            recipient_types: o
                .recipient_types
                .iter()
                .map(|s| s.trim().to_string())
                .collect(),
            include: checked.include,
            exclude: checked.exclude,
            mailboxes_csv: o.mailboxes_csv.as_deref().map(super::path_string),
            created_after: journals.created_after,
            schedule_window: checked.schedule_window,
            retry: journals.retry,
            since: journals.since,
            folder_cache: journals.folder_cache,
            max_retries: o.max_retries,
            retry_delay_ms: o.retry_delay_ms,
            replication_timeout_seconds: o.replication_timeout,
            resume_done: journals.resume_done,
            resume_journal: o.resume.as_deref().map(super::path_string),
            revoke_from_journal: o.from_journal.as_deref().map(super::path_string),
            revoke_entries: journals.revoke_entries,
            journal_run: journals.journal_run,
            roles: Role::ALL
                .into_iter()
                .map(|r| RoleRow {
                    name: r.name(),
                    rights: r.calendar_rights().into_iter().collect(),
                })
                .collect(),
            role_names: Role::ALL.iter().map(|r| r.name()).collect(),
            individual_rights: &crate::rights::INDIVIDUAL_RIGHTS,
            calendar_names: locale::all()
                .iter()
                .map(|l| CalendarName {
                    code: l.code.to_lowercase(),
                    name: l.calendar.clone(),
                })
                .collect(),
            app_name: o.app_name.clone(),
            secret_name: o.secret_name.clone(),
            secret_months: o.secret_months,
            limits: &limits::ALL,
            secret_file: o.secret_file.as_deref().map(super::path_string),
            show_secret: o.show_secret,
            app_certificate_path: checked.app_certificate_path,
            connector_app_id: o.connector_app_id.clone(),
            restrict_to_group: o.restrict_to_group.clone(),
            graph_app_id: GRAPH_APP_ID,
            calendars_read_role_id: CALENDARS_READ_ROLE_ID,
            ews_url: EWS_URL,
            failure_outcomes: Outcome::failure_names(),
            failure_kinds: MailboxKind::FAILURES
                .iter()
                .filter_map(MailboxKind::known_name)
                .collect(),
            csv_identity_columns: &super::mailboxes_csv::IDENTITY_COLUMNS,
        }
    }
}
