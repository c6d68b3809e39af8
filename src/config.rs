//! From what the user typed (`cli::ScriptOptions`) to what a template renders (`ScriptContext`):
//! every check happens here, before anything renders, and fails with exit code 2.

use crate::cli::ScriptOptions;
use crate::delta;
use crate::error::Failure;
use crate::journal_check::{self, JournalRun};
use crate::limits::{self, Limits};
use crate::records::{MailboxKind, Outcome};
use crate::script::{Connection, Script, Target};
use crate::{locale, rights::Role};
use anyhow::Result;
use serde::Serialize;
use std::path::Path;

/// Microsoft Graph's resource appId and the Calendars.Read application role (reference/entra.md §0).
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
pub const CALENDARS_READ_ROLE_ID: &str = "798ee544-9d2d-430c-a058-570e29e34338";
pub const EWS_URL: &str = "https://outlook.office365.com/EWS/Exchange.asmx";

/// Identity columns a `--mailboxes-csv` file may use, in order of preference.
pub const CSV_IDENTITY_COLUMNS: [&str; 4] = [
    "PrimarySmtpAddress",
    "UserPrincipalName",
    "EmailAddress",
    "Identity",
];

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

/// The typed facts of the command that the runner needs (the context is for templates).
pub fn target(script: Script, o: &ScriptOptions) -> Target {
    Target {
        script,
        connection: o.connection,
        restricted: o.restrict_to_group.is_some(),
        creates_secret: script.may_create_secret() && o.app_certificate_path.is_none(),
        show_secret: o.show_secret,
        resume_journal: o.resume.clone(),
    }
}

/// Validates the options for `script` and builds the template context.
pub fn build(script: Script, o: &ScriptOptions) -> Result<ScriptContext> {
    let monitor = o.monitor.trim().to_string();
    if monitor.is_empty() {
        // An empty identity makes Get-* cmdlets return every object (exchange.md §1.3).
        return Err(Failure::usage(
            "--monitor is empty",
            "pass the monitor's UPN, e.g. --monitor monitor@contoso.com",
        )
        .into());
    }
    reject_control_chars("--monitor", &monitor)?;

    let locale = resolve_locale(&o.locale)?;
    if script.needs_exchange(o.restrict_to_group.is_some()) {
        check_connection(script, o)?;
    }
    for v in &o.recipient_types {
        if v.trim().is_empty() {
            return Err(Failure::usage(
                "--recipient-types has an empty value",
                "remove the stray comma in --recipient-types",
            )
            .into());
        }
    }
    let include = identities("--include", &o.include)?;
    let exclude = identities("--exclude", &o.exclude)?;
    if !o.include.is_empty() && o.mailboxes_csv.is_some() {
        return Err(Failure::usage(
            "--include and --mailboxes-csv both name the mailboxes to visit",
            "use one of them (put the --include identities into the CSV)",
        )
        .into());
    }
    if let Some(path) = &o.mailboxes_csv {
        check_mailboxes_csv(path)?;
    }
    let schedule_window = schedule_window(script, o)?;
    let created_after = if script == Script::Schedule {
        None
    } else {
        created_after(script, o)?
    };
    limits::MAX_RETRIES.check(o.max_retries)?;
    limits::RETRY_DELAY_MS.check(o.retry_delay_ms)?;
    limits::REPLICATION_TIMEOUT.check(o.replication_timeout)?;

    let this_run = journal_check::ThisRun {
        script: script.name(),
        monitor: &monitor,
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

    limits::SECRET_MONTHS.check(o.secret_months)?;
    let app_certificate_path = app_certificate(script, o)?;
    if let Some(path) = &app_certificate_path
        && o.secret_file.is_some()
    {
        return Err(Failure::usage(
            format!("--secret-file was given, but the certificate {path} is registered instead: no secret is created"),
            "drop one of the two",
        )
        .into());
    }
    if o.connector_app_id.is_some() && script != Script::EwsReadiness {
        return Err(Failure::usage(
            "--connector-app-id applies to ews-readiness only",
            "setup checks the app it registers; drop --connector-app-id",
        )
        .into());
    }

    Ok(ScriptContext {
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
            o.certificate_path.as_deref().map(path_string)
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
        mailboxes_csv: o.mailboxes_csv.as_deref().map(path_string),
        created_after,
        schedule_window,
        retry,
        since,
        folder_cache,
        max_retries: o.max_retries,
        retry_delay_ms: o.retry_delay_ms,
        replication_timeout_seconds: o.replication_timeout,
        resume_done,
        resume_journal: o.resume.as_deref().map(path_string),
        revoke_from_journal: o.from_journal.as_deref().map(path_string),
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
        secret_file: o.secret_file.as_deref().map(path_string),
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
        csv_identity_columns: &CSV_IDENTITY_COLUMNS,
    })
}

/// The certificate to register on the Entra app, if any. `--app-certificate-path` says so
/// explicitly; for app-registration, `--certificate-path` does too unless it is the exo-app
/// sign-in certificate.
fn app_certificate(script: Script, o: &ScriptOptions) -> Result<Option<String>> {
    if !matches!(script, Script::AppRegistration | Script::Setup) {
        if o.app_certificate_path.is_some() {
            return Err(Failure::usage(
                "--app-certificate-path applies to app-registration and setup only",
                "drop --app-certificate-path",
            )
            .into());
        }
        return Ok(None);
    }
    if let Some(path) = &o.app_certificate_path {
        return Ok(Some(path_string(path)));
    }
    Ok(match (script, &o.certificate_path) {
        (Script::AppRegistration, Some(path)) if o.connection != Connection::ExoApp => {
            Some(path_string(path))
        }
        _ => None,
    })
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn reject_control_chars(flag: &str, value: &str) -> Result<()> {
    if value.chars().any(char::is_control) {
        return Err(Failure::usage(
            format!("{flag} contains a control character (newline or tab)"),
            format!("check the value of {flag}"),
        )
        .into());
    }
    Ok(())
}

/// schedule: the window each run of the task looks back (a duration; default two days), and
/// the app sign-in the task needs.
fn schedule_window(script: Script, o: &ScriptOptions) -> Result<String> {
    if script != Script::Schedule {
        return Ok(String::new());
    }
    for (flag, value, example) in [
        ("--app-id", &o.app_id, "<application (client) ID>"),
        ("--organization", &o.organization, "contoso.onmicrosoft.com"),
        (
            "--certificate-thumbprint",
            &o.certificate_thumbprint,
            "<thumbprint in LocalMachine\\My>",
        ),
    ] {
        if value.is_none() {
            return Err(Failure::usage(
                format!("schedule needs {flag}: the task signs in unattended with an app and a certificate"),
                format!("add {flag} {example}"),
            )
            .into());
        }
    }
    let window = o.created_after.clone().unwrap_or_else(|| "2d".into());
    let now = std::time::SystemTime::now();
    let is_duration = delta::parse_when("--created-after", &window, now)
        .is_ok_and(|_| window.trim().ends_with(['m', 'h', 'd', 'w']));
    if !is_duration {
        return Err(Failure::usage(
            format!(
                "--created-after '{window}' is not a duration; the task looks back from each run"
            ),
            "use a duration such as 36h, 2d or 1w",
        )
        .into());
    }
    Ok(window.trim().to_string())
}

/// `--created-after`: the filter date; it narrows an enumeration, so not with a named list.
fn created_after(script: Script, o: &ScriptOptions) -> Result<Option<String>> {
    let Some(when) = &o.created_after else {
        return Ok(None);
    };
    if !matches!(script, Script::Grant | Script::Audit | Script::Revoke) {
        return Err(Failure::usage(
            format!("--created-after does not apply to {}", script.name()),
            "use it with grant, audit or revoke",
        )
        .into());
    }
    if !o.include.is_empty() || o.mailboxes_csv.is_some() {
        return Err(Failure::usage(
            "--created-after selects from all mailboxes, but --include or --mailboxes-csv names them",
            "leave out --created-after, or the named list",
        )
        .into());
    }
    let seconds = delta::parse_when("--created-after", when, std::time::SystemTime::now())?;
    Ok(Some(delta::filter_date(seconds)))
}

/// The identities of repeated `--include`/`--exclude` flags. A display name may contain a comma
/// ("Schmidt, Anna"), so a value is split at commas only when every part is an address
/// ("a@x.com,b@x.com", the older comma-list form); a value that could be either is refused.
fn identities(flag: &str, values: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for value in values {
        let value = value.trim();
        if value.is_empty() {
            return Err(Failure::usage(
                format!("{flag} has an empty value"),
                format!("give {flag} one mailbox identity"),
            )
            .into());
        }
        if !value.contains(',') {
            out.push(value.to_string());
            continue;
        }
        let parts: Vec<&str> = value.split(',').map(str::trim).collect();
        let addresses = parts.iter().filter(|p| p.contains('@')).count();
        if addresses == parts.len() {
            out.extend(parts.into_iter().map(String::from));
        } else if addresses == 0 && value.contains(", ") && parts.iter().all(|p| !p.is_empty()) {
            // "Schmidt, Anna": one display name.
            out.push(value.to_string());
        } else {
            return Err(Failure::usage(
                format!("{flag} {value:?} is ambiguous: a list, or one name with a comma?"),
                format!(
                    "repeat {flag} once per mailbox ({flag} anna@contoso.com {flag} bert@contoso.com); a display name with a comma goes in one {flag} \"Schmidt, Anna\""
                ),
            )
            .into());
        }
    }
    Ok(out)
}

/// `auto`, or the known code `value` names (in the table's spelling).
fn resolve_locale(value: &str) -> Result<String> {
    if value.eq_ignore_ascii_case("auto") {
        return Ok("auto".into());
    }
    match locale::find(value) {
        Some(l) => Ok(l.code.clone()),
        None => Err(Failure::usage(
            format!("unknown locale `{value}`"),
            format!(
                "nearest known codes: {}; `calperm locales` lists all of them, or use --locale auto",
                locale::nearest(value, 5).join(", ")
            ),
        )
        .into()),
    }
}

fn check_connection(script: Script, o: &ScriptOptions) -> Result<()> {
    let missing = |flag: &str, mode: &str, example: &str| -> anyhow::Error {
        Failure::usage(
            format!("--connection {mode} needs {flag}"),
            format!("add {flag} {example}"),
        )
        .into()
    };
    match o.connection {
        Connection::Exo | Connection::LegacyBasic => {}
        Connection::ManagedIdentity => {
            if o.organization.is_none() {
                return Err(missing(
                    "--organization",
                    "managed-identity",
                    "contoso.onmicrosoft.com",
                ));
            }
        }
        Connection::ExoApp => {
            if o.app_id.is_none() {
                return Err(missing("--app-id", "exo-app", "<application (client) ID>"));
            }
            if o.organization.is_none() {
                return Err(missing(
                    "--organization",
                    "exo-app",
                    "contoso.onmicrosoft.com",
                ));
            }
            match (&o.certificate_thumbprint, &o.certificate_path) {
                (None, None) => {
                    return Err(Failure::usage(
                        "--connection exo-app needs a certificate",
                        "add --certificate-thumbprint THUMBPRINT (Windows) or --certificate-path FILE.pfx",
                    )
                    .into());
                }
                (Some(_), Some(_)) => {
                    return Err(Failure::usage(
                        "--certificate-thumbprint and --certificate-path both name the sign-in certificate",
                        "pass only one of them",
                    )
                    .into());
                }
                _ => {}
            }
        }
        Connection::Onprem => {
            if o.server.is_none() {
                return Err(missing("--server", "onprem", "mail01.contoso.local"));
            }
        }
    }
    let stray = |flag: &str, given: bool, modes: &str| -> Result<()> {
        if given {
            Err(Failure::usage(
                format!(
                    "{flag} does not apply to --connection {}",
                    o.connection.name()
                ),
                format!("{flag} is for --connection {modes}; drop it or change --connection"),
            )
            .into())
        } else {
            Ok(())
        }
    };
    let is = |c: Connection| o.connection == c;
    stray(
        "--app-id",
        o.app_id.is_some() && !is(Connection::ExoApp),
        "exo-app",
    )?;
    stray(
        "--organization",
        o.organization.is_some() && !is(Connection::ExoApp) && !is(Connection::ManagedIdentity),
        "exo-app or managed-identity",
    )?;
    stray(
        "--certificate-thumbprint",
        o.certificate_thumbprint.is_some() && !is(Connection::ExoApp),
        "exo-app",
    )?;
    stray(
        "--server",
        o.server.is_some() && !is(Connection::Onprem),
        "onprem",
    )?;
    // For app-registration, --certificate-path may also name the certificate to register.
    stray(
        "--certificate-path",
        o.certificate_path.is_some()
            && !is(Connection::ExoApp)
            && script != Script::AppRegistration,
        "exo-app (to register a certificate on the app, use --app-certificate-path)",
    )?;
    stray(
        "--user-principal-name",
        o.user_principal_name.is_some() && !is(Connection::Exo),
        "exo",
    )?;
    Ok(())
}

/// Checks the CSV now (it exists, has an identity column, and at least one row), so a bad file
/// fails before anything runs; the script reads it again at run time.
fn check_mailboxes_csv(path: &Path) -> Result<()> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| {
        Failure::usage(
            format!("cannot read --mailboxes-csv {}: {e}", path.display()),
            "check the path",
        )
    })?;
    let headers = reader
        .headers()
        .map_err(|e| {
            Failure::usage(
                format!("--mailboxes-csv {}: {e}", path.display()),
                "save it as UTF-8 CSV",
            )
        })?
        .clone();
    // The script reads the file with Import-Csv, which matches a column by its exact name (case
    // aside): a header " PrimarySmtpAddress" would be found here but not there.
    let names: Vec<String> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            if i == 0 {
                h.trim_start_matches('\u{FEFF}')
            } else {
                h
            }
            .to_string()
        })
        .collect();
    let has_identity_column = names.iter().any(|h| {
        CSV_IDENTITY_COLUMNS
            .iter()
            .any(|c| h.eq_ignore_ascii_case(c))
    });
    if !has_identity_column {
        let found = names.join(", ");
        let hint = if let Some(padded) = names.iter().find(|h| {
            CSV_IDENTITY_COLUMNS
                .iter()
                .any(|c| h.trim().eq_ignore_ascii_case(c))
        }) {
            format!(
                "the column {padded:?} has spaces around its name; Import-Csv needs it exact: rename it to {:?}",
                padded.trim()
            )
        } else if names.iter().any(|h| h.contains(';')) {
            "the header holds semicolons: the file seems to be separated by ';' (as Excel saves CSV in many locales). Save it with commas (\"CSV UTF-8 (comma delimited)\"), or replace the ';' by ','".to_string()
        } else {
            format!(
                "add a header row with one of: {}",
                CSV_IDENTITY_COLUMNS.join(", ")
            )
        };
        return Err(Failure::usage(
            format!(
                "--mailboxes-csv {} has no identity column (found: {found})",
                path.display()
            ),
            hint,
        )
        .into());
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = names.iter().find(|h| !seen.insert(h.to_lowercase())) {
        return Err(Failure::usage(
            format!(
                "--mailboxes-csv {} names the column {twice:?} twice",
                path.display()
            ),
            "Import-Csv refuses duplicate column names: rename or remove one",
        )
        .into());
    }
    let rows = reader.records().count();
    if rows == 0 {
        return Err(Failure::usage(
            format!("--mailboxes-csv {} lists no mailboxes", path.display()),
            "add one mailbox per row",
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::identities;

    fn split(values: &[&str]) -> Result<Vec<String>, String> {
        let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        identities("--exclude", &values).map_err(|e| e.to_string())
    }

    #[test]
    fn a_name_with_a_comma_stays_whole_and_address_lists_still_split() {
        assert_eq!(split(&["Schmidt, Anna"]).unwrap(), ["Schmidt, Anna"]);
        assert_eq!(
            split(&["a@x.com, b@x.com", "c@x.com"]).unwrap(),
            ["a@x.com", "b@x.com", "c@x.com"]
        );
        for ambiguous in ["anna,bert", "a@x.com,Schmidt", "a@x.com,", "Schmidt,Anna"] {
            assert!(
                split(&[ambiguous]).unwrap_err().contains("ambiguous"),
                "{ambiguous}"
            );
        }
        assert!(split(&[" "]).unwrap_err().contains("empty"));
    }
}
