//! `--created-after WHEN`: only mailboxes created after a moment, selected by Exchange itself
//! (`-Filter "WhenCreated -gt '…'"`). WHEN is a UTC date-time or a duration back from now.
//!
//! Exchange parses a date in a filter in the session's culture (the German `01.12.2026` and the
//! US `12/01/2026` are the same day), so the script is given the one form every culture reads
//! alike: year first, `yyyy-MM-ddTHH:mm:ss`, in UTC. UNCONFIRMED: that Exchange Online reads this
//! form in UTC; no public source states the time zone of a filter date. A scheduled run uses a
//! window that overlaps the previous one, so an hour's difference costs nothing.

use crate::error::Failure;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since 1970-01-01 UTC of WHEN (`2026-12-01`, `2026-12-01T10:00:00Z`, `2026-12-01T10:00`,
/// or a duration back from `now`: `90m`, `36h`, `2d`, `1w`).
pub fn parse_when(flag: &str, text: &str, now: SystemTime) -> Result<i64, Failure> {
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
