//! The template data: everything a template may use. The runner reads none of it
//! (`config::target` gives it the typed facts it needs).

use super::journals::FromJournals;
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
    pub calperm_version: &'static str,
    pub script: &'static str,
    pub monitor: String,
    pub access_rights: &'static str,
    pub locale: String,
    /// `exo`, `exo-app`, `managed-identity`, `onprem` or `legacy-basic`: templates test it with
    /// `(eq connection "…")`, and Exchange Online against Exchange Server with `(cloud connection)`.
    pub connection: &'static str,
    pub user_principal_name: Option<String>,
    pub app_id: Option<String>,
    pub organization: Option<String>,
    pub certificate_thumbprint: Option<String>,
    pub certificate_path: Option<String>,
    pub server: Option<String>,
    pub recipient_types: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub mailboxes_csv: Option<String>,
    /// `--created-after`: the filter date, `yyyy-MM-ddTHH:mm:ss` UTC (delta.rs).
    pub created_after: Option<String>,
    /// schedule: the task's `--created-after` duration.
    pub schedule_window: String,
    /// `--since`: the mailboxes the earlier journal left unfinished, and that journal's file name.
    pub retry: Vec<String>,
    pub since: Option<String>,
    /// `--folders-from`: calendars to try first.
    pub folder_cache: Vec<delta::CachedFolder>,
    pub max_retries: u32,
    pub retry_delay_ms: u32,
    /// How long in all the scripts retry a call on an object Entra ID has not replicated yet.
    pub replication_timeout_seconds: u32,
    /// Mailboxes a resumed grant skips.
    pub resume_done: Vec<String>,
    pub resume_journal: Option<String>,
    /// What `revoke --from-journal` restores.
    pub revoke_from_journal: Option<String>,
    pub revoke_entries: Vec<journal_check::Undo>,
    /// The run a `--resume` or `--from-journal` journal records; the script checks the monitor
    /// and tenant it resolves against it.
    pub journal_run: Option<JournalRun>,
    pub roles: Vec<RoleRow>,
    /// The roles' names, for `ValidateSet`.
    pub role_names: Vec<&'static str>,
    /// The individual rights `-AccessRights` accepts (rights.rs).
    pub individual_rights: &'static [&'static str],
    pub calendar_names: Vec<CalendarName>,
    pub app_name: String,
    pub secret_name: String,
    pub secret_months: u32,
    /// The options' ranges, for the scripts' `ValidateRange` attributes.
    pub limits: &'static Limits,
    pub secret_file: Option<String>,
    /// `--show-secret`: the script's ShowSecret default is 'yes' instead of 'auto'.
    pub show_secret: bool,
    pub app_certificate_path: Option<String>,
    pub connector_app_id: Option<String>,
    pub restrict_to_group: Option<String>,
    pub graph_app_id: &'static str,
    pub calendars_read_role_id: &'static str,
    pub ews_url: &'static str,
    /// The mailbox outcomes that make a run exit 1 (records.rs `Outcome::is_failure`).
    pub failure_outcomes: Vec<&'static str>,
    /// The kinds a failed mailbox is reported with (records.rs `MailboxKind::FAILURES`).
    pub failure_kinds: Vec<&'static str>,
    pub csv_identity_columns: &'static [&'static str],
}

#[derive(Debug, Serialize)]
pub struct RoleRow {
    pub name: &'static str,
    pub rights: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct CalendarName {
    pub code: String,
    pub name: String,
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
        let Checked {
            monitor,
            locale,
            include,
            exclude,
            schedule_window,
            app_certificate_path,
        } = checked;
        let FromJournals {
            resume_done,
            revoke_entries,
            created_after,
            retry,
            since,
            folder_cache,
            journal_run,
        } = journals;
        ScriptContext {
            calperm_version: env!("CARGO_PKG_VERSION"),
            script: script.name(),
            monitor,
            access_rights: o.access_rights.name(),
            locale,
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
            include,
            exclude,
            mailboxes_csv: o.mailboxes_csv.as_deref().map(super::path_string),
            created_after,
            schedule_window,
            retry,
            since,
            folder_cache,
            max_retries: o.max_retries,
            retry_delay_ms: o.retry_delay_ms,
            replication_timeout_seconds: o.replication_timeout,
            resume_done,
            resume_journal: o.resume.as_deref().map(super::path_string),
            revoke_from_journal: o.from_journal.as_deref().map(super::path_string),
            revoke_entries,
            journal_run,
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
            app_certificate_path,
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
