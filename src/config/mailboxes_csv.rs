//! `--mailboxes-csv`: the file is checked before anything runs, with the rules of the
//! `Import-Csv` that reads it again at run time.

use crate::error::Failure;
use anyhow::Result;
use std::path::Path;

/// Identity columns a `--mailboxes-csv` file may use, in order of preference (the scripts get
/// them rendered).
pub(super) const IDENTITY_COLUMNS: [&str; 4] = [
    "PrimarySmtpAddress",
    "UserPrincipalName",
    "EmailAddress",
    "Identity",
];

/// Checks the CSV now (it exists, has an identity column, and at least one row), so a bad file
/// fails before anything runs; the script reads it again at run time.
pub(super) fn check(path: &Path) -> Result<()> {
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
    let has_identity_column = names
        .iter()
        .any(|h| IDENTITY_COLUMNS.iter().any(|c| h.eq_ignore_ascii_case(c)));
    if !has_identity_column {
        let found = names.join(", ");
        let hint = if let Some(padded) = names.iter().find(|h| {
            IDENTITY_COLUMNS
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
                IDENTITY_COLUMNS.join(", ")
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
