//! Checks of single options and of options that exclude each other; each fails with a usage
//! error (exit code 2) naming the problem and the fix.

use crate::cli::ScriptOptions;
use crate::delta;
use crate::error::Failure;
use crate::locale;
use crate::script::{Connection, Script};
use anyhow::Result;

/// `--monitor`, trimmed: one identity, never empty.
pub(super) fn monitor(value: &str) -> Result<String> {
    let monitor = value.trim().to_string();
    if monitor.is_empty() {
        // An empty identity makes Get-* cmdlets return every object (exchange.md §1.3).
        return Err(Failure::usage(
            "--monitor is empty",
            "pass the monitor's UPN, e.g. --monitor monitor@contoso.com",
        )
        .into());
    }
    reject_control_chars("--monitor", &monitor)?;
    Ok(monitor)
}

pub(super) fn recipient_types(values: &[String]) -> Result<()> {
    for v in values {
        if v.trim().is_empty() {
            return Err(Failure::usage(
                "--recipient-types has an empty value",
                "remove the stray comma in --recipient-types",
            )
            .into());
        }
    }
    Ok(())
}

/// The mailboxes to visit are named by `--include` or by `--mailboxes-csv`, not both.
pub(super) fn one_mailbox_list(o: &ScriptOptions) -> Result<()> {
    if !o.include.is_empty() && o.mailboxes_csv.is_some() {
        return Err(Failure::usage(
            "--include and --mailboxes-csv both name the mailboxes to visit",
            "use one of them (put the --include identities into the CSV)",
        )
        .into());
    }
    Ok(())
}

/// A registered certificate means no secret is created, so no `--secret-file` to write it to.
pub(super) fn secret_file(app_certificate_path: Option<&str>, o: &ScriptOptions) -> Result<()> {
    if let Some(path) = app_certificate_path
        && o.secret_file.is_some()
    {
        return Err(Failure::usage(
            format!("--secret-file was given, but the certificate {path} is registered instead: no secret is created"),
            "drop one of the two",
        )
        .into());
    }
    Ok(())
}

pub(super) fn connector_app_id(script: Script, o: &ScriptOptions) -> Result<()> {
    if o.connector_app_id.is_some() && script != Script::EwsReadiness {
        return Err(Failure::usage(
            "--connector-app-id applies to ews-readiness only",
            "setup checks the app it registers; drop --connector-app-id",
        )
        .into());
    }
    Ok(())
}

/// The certificate to register on the Entra app, if any. `--app-certificate-path` says so
/// explicitly; for app-registration, `--certificate-path` does too unless it is the exo-app
/// sign-in certificate.
pub(super) fn app_certificate(script: Script, o: &ScriptOptions) -> Result<Option<String>> {
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
        return Ok(Some(super::path_string(path)));
    }
    Ok(match (script, &o.certificate_path) {
        (Script::AppRegistration, Some(path)) if o.connection != Connection::ExoApp => {
            Some(super::path_string(path))
        }
        _ => None,
    })
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
pub(super) fn schedule_window(script: Script, o: &ScriptOptions) -> Result<String> {
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
pub(super) fn created_after(script: Script, o: &ScriptOptions) -> Result<Option<String>> {
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
pub(super) fn identities(flag: &str, values: &[String]) -> Result<Vec<String>> {
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
pub(super) fn resolve_locale(value: &str) -> Result<String> {
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

pub(super) fn connection(script: Script, o: &ScriptOptions) -> Result<()> {
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
