//! `--created-after WHEN`: only mailboxes created after a moment, selected by Exchange itself
//! (`-Filter "WhenCreated -gt '…'"`). WHEN is a UTC date-time or a duration back from now.
//!
//! Exchange parses a date in a filter in the session's culture (the German `01.12.2026` and the
//! US `12/01/2026` are the same day), so the script is given the one form every culture reads
//! alike: year first, `yyyy-MM-ddTHH:mm:ss`, in UTC. UNCONFIRMED: that Exchange Online reads this
//! form in UTC; no public source states the time zone of a filter date. A scheduled run uses a
//! window that overlaps the previous one, so an hour's difference costs nothing.

use crate::error::Failure;
use crate::journal;
use crate::journal_check::{self, JournalRun, ThisRun};
use crate::records::{Outcome, Record};
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// `--since`: how long before the earlier run's start the window opens. A mailbox created just
/// before that run started may not have been listed by it yet, and the time zone Exchange reads a
/// filter date in is UNCONFIRMED (see above): a day covers both, and costs one call for each
/// mailbox created that day, which is left as it is.
pub(crate) const SINCE_MARGIN_SECONDS: i64 = 86_400;

/// What a `--since` run does: the mailboxes created after `created_after`, and `retry` by identity.
#[derive(Debug)]
pub(crate) struct Since {
    pub created_after: String,
    pub retry: Vec<String>,
    /// The journal's file name, recorded in the new journal's start record.
    pub journal: String,
    pub run: JournalRun,
}

/// The earlier grant journal of `--since`: of this monitor (the script checks the tenant too).
pub(crate) fn since(path: &Path, this: &ThisRun<'_>) -> Result<Since> {
    let records = journal::read(path)?;
    let identity = journal_check::identify(path, &records)?;
    if identity.script != "grant" {
        return Err(Failure::usage(
            format!(
                "the journal {} is of a {} run, not of a grant",
                path.display(),
                identity.script
            ),
            "pass the journal of an earlier grant to --since",
        )
        .into());
    }
    journal_check::check_monitor(path, &identity, this)?;
    let started = records.iter().find_map(|r| match r {
        Record::Start(s) => s.started_at.as_deref().and_then(parse_date_time),
        _ => None,
    });
    let Some(started) = started else {
        return Err(Failure::usage(
            format!("the journal {} does not say when its run started", path.display()),
            "it was written by an older calperm: use --created-after with a date before that run instead",
        )
        .into());
    };
    Ok(Since {
        created_after: filter_date(started - SINCE_MARGIN_SECONDS),
        retry: unfinished(&records),
        journal: file_name(path),
        run: journal_check::journal_run(path, &identity),
    })
}

/// The mailboxes a grant journal did not leave granted: its last word on them was failed,
/// no-calendar or skipped as not usable yet, or a change was announced (intent) and never confirmed. In journal order.
fn unfinished(records: &[Record]) -> Vec<String> {
    let mut last: BTreeMap<String, (usize, String, bool)> = BTreeMap::new();
    for (i, record) in records.iter().enumerate() {
        let (address, open) = match record {
            Record::Mailbox(m) => (
                &m.mailbox,
                matches!(m.outcome, Outcome::Failed | Outcome::NoCalendar),
            ),
            Record::Intent(intent) => (&intent.mailbox, true),
            _ => continue,
        };
        let entry = last
            .entry(address.to_lowercase())
            .or_insert((i, address.clone(), open));
        entry.2 = open;
    }
    let mut open: Vec<(usize, String)> = last
        .into_values()
        .filter(|e| e.2)
        .map(|(i, a, _)| (i, a))
        .collect();
    open.sort();
    open.into_iter().map(|(_, a)| a).collect()
}

/// A calendar an earlier journal found for a mailbox (`--folders-from`).
#[derive(Debug, Serialize)]
pub(crate) struct CachedFolder {
    pub mailbox: String,
    pub name: String,
    pub identity: String,
}

/// `--folders-from`: each mailbox's default calendar as a grant, audit or revoke journal of this
/// monitor last recorded it, where the call on it succeeded.
pub(crate) fn folders_from(
    path: &Path,
    this: &ThisRun<'_>,
) -> Result<(Vec<CachedFolder>, JournalRun)> {
    let records = journal::read(path)?;
    let identity = journal_check::identify(path, &records)?;
    if !matches!(identity.script.as_str(), "grant" | "audit" | "revoke") {
        return Err(Failure::usage(
            format!(
                "the journal {} is of a {} run, which records no calendars",
                path.display(),
                identity.script
            ),
            "pass the journal of a grant, audit or revoke to --folders-from",
        )
        .into());
    }
    journal_check::check_monitor(path, &identity, this)?;
    let mut found: BTreeMap<String, CachedFolder> = BTreeMap::new();
    for record in &records {
        let Record::Mailbox(m) = record else { continue };
        if matches!(
            m.outcome,
            Outcome::Failed | Outcome::Skipped | Outcome::NoCalendar
        ) {
            continue;
        }
        if let (Some(name), Some(identity)) = (&m.folder, &m.folder_identity) {
            found.insert(
                m.mailbox.to_lowercase(),
                CachedFolder {
                    mailbox: m.mailbox.clone(),
                    name: name.clone(),
                    identity: identity.clone(),
                },
            );
        }
    }
    Ok((
        found.into_values().collect(),
        journal_check::journal_run(path, &identity),
    ))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// Seconds since 1970-01-01 UTC of WHEN (`2026-12-01`, `2026-12-01T10:00:00Z`, `2026-12-01T10:00`,
/// or a duration back from `now`: `90m`, `36h`, `2d`, `1w`).
pub(crate) fn parse_when(flag: &str, text: &str, now: SystemTime) -> Result<i64, Failure> {
    let text = text.trim();
    let bad = || {
        Failure::usage(
            format!("{flag} '{text}' is neither a date-time nor a duration"),
            "use a UTC date-time such as 2026-12-01 or 2026-12-01T06:00:00Z, or a duration back from now such as 36h, 2d or 1w",
        )
    };
    if let Some(seconds) = parse_duration(text) {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
        return Ok(now - seconds);
    }
    parse_date_time(text).ok_or_else(bad)
}

fn parse_duration(text: &str) -> Option<i64> {
    let unit = text.chars().last()?;
    let number: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    if number < 0 {
        return None;
    }
    let scale = match unit {
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    number.checked_mul(scale)
}

/// `yyyy-MM-dd`, optionally `Thh:mm[:ss]` (or a space), optionally `Z`; always UTC.
fn parse_date_time(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
        return None;
    }
    let (year, month, day): (i64, i64, i64) = (
        parts[0].parse().ok()?,
        parts[1].parse().ok()?,
        parts[2].parse().ok()?,
    );
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut seconds = 0;
    if let Some(time) = time {
        let fields: Vec<&str> = time.split(':').collect();
        if !(2..=3).contains(&fields.len()) || fields.iter().any(|f| f.len() != 2) {
            return None;
        }
        let values: Vec<i64> = fields
            .iter()
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        if values[0] > 23 || values[1] > 59 || values.get(2).is_some_and(|s| *s > 59) {
            return None;
        }
        seconds = values[0] * 3600 + values[1] * 60 + values.get(2).copied().unwrap_or(0);
    }
    Some(days_from_civil(year, month, day) * 86_400 + seconds)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of `days_from_civil`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The culture-proof form the script puts into the filter: `yyyy-MM-ddTHH:mm:ss` (UTC).
pub fn filter_date(seconds: i64) -> String {
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Now, as a start record's `startedAt`: `yyyy-MM-ddTHH:mm:ssZ`.
pub fn utc_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    filter_date(now) + "Z"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(text: &str) -> String {
        filter_date(parse_when("--created-after", text, UNIX_EPOCH).unwrap())
    }

    #[test]
    fn dates_are_read_as_utc_and_written_year_first() {
        assert_eq!(at("2026-12-01"), "2026-12-01T00:00:00");
        assert_eq!(at("2026-12-01T06:30:05Z"), "2026-12-01T06:30:05");
        assert_eq!(at("2024-02-29 23:59"), "2024-02-29T23:59:00");
    }

    #[test]
    fn durations_count_back_from_now() {
        let now = UNIX_EPOCH + Duration::from_secs(days_from_civil(2026, 12, 2) as u64 * 86_400);
        let back = |t| filter_date(parse_when("--created-after", t, now).unwrap());
        assert_eq!(back("2d"), "2026-11-30T00:00:00");
        assert_eq!(back("36h"), "2026-11-30T12:00:00");
        assert_eq!(back("90m"), "2026-12-01T22:30:00");
        assert_eq!(back("1w"), "2026-11-25T00:00:00");
    }

    #[test]
    fn ambiguous_or_invalid_forms_are_refused() {
        for text in [
            "12/01/2026",
            "01.12.2026",
            "2026-13-01",
            "2023-02-29",
            "2d3h",
            "-2d",
            "",
            "2026-12-01T25:00",
        ] {
            let err = parse_when("--created-after", text, UNIX_EPOCH).unwrap_err();
            assert!(
                err.to_string()
                    .contains("neither a date-time nor a duration"),
                "{text}: {err}"
            );
        }
    }
}
