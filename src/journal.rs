//! The journal: every record of a run, appended and flushed the moment it arrives, so a crash
//! loses nothing. It is what `--resume` and `revoke --from-journal` read.

use crate::records::{Mailbox, Outcome, Record};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// An open journal file.
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Opens `path` for appending, creating it if needed.
    pub fn open(path: &Path) -> Result<Journal> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the journal {}", path.display()))?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as a JSON line and flushes it to the operating system.
    pub fn append(&mut self, record: &Record) -> Result<()> {
        let mut line =
            serde_json::to_string(record).context("serializing a record for the journal")?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .with_context(|| format!("writing to the journal {}", self.path.display()))
    }
}

/// Reads every record of a journal. A line that is not a record is an error naming the line.
pub fn read(path: &Path) -> Result<Vec<Record>> {
    let file = File::open(path).with_context(|| {
        format!(
            "cannot open the journal {}; pass the file a previous run named in its summary",
            path.display()
        )
    })?;
    let mut records = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).with_context(|| {
            format!(
                "{} line {} is not a calperm record: {}",
                path.display(),
                index + 1,
                shorten(&line)
            )
        })?;
        records.push(record);
    }
    Ok(records)
}

fn shorten(line: &str) -> String {
    const MAX: usize = 120;
    if line.chars().count() <= MAX {
        line.to_string()
    } else {
        format!("{}…", line.chars().take(MAX).collect::<String>())
    }
}

/// The name of a new journal: `calperm-journal-<UTC yyyyMMddTHHmmssZ>.jsonl`.
pub fn default_file_name(now: std::time::SystemTime) -> String {
    let seconds = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "calperm-journal-{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z.jsonl",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The mailboxes a journal shows as done (for `--resume`), lowercased, sorted.
pub fn done_mailboxes(records: &[Record]) -> BTreeSet<String> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Mailbox(m) if m.outcome.is_done() => Some(m.mailbox.to_lowercase()),
            _ => None,
        })
        .collect()
}

/// The changes a grant journal recorded, the first one per mailbox (its `previous` is the state
/// before any grant): what `revoke --from-journal` undoes.
pub fn grant_changes(records: &[Record]) -> Vec<Mailbox> {
    let mut by_mailbox: BTreeMap<String, Mailbox> = BTreeMap::new();
    for record in records {
        if let Record::Mailbox(m) = record
            && matches!(m.outcome, Outcome::Added | Outcome::Updated)
        {
            // The first change is the one whose "before" is the original state.
            by_mailbox
                .entry(m.mailbox.to_lowercase())
                .or_insert_with(|| m.clone());
        }
    }
    by_mailbox.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(name: &str, outcome: Outcome, previous: Option<&[&str]>) -> Record {
        Record::Mailbox(Mailbox {
            mailbox: name.into(),
            outcome,
            display_name: None,
            recipient_type: None,
            folder: None,
            folder_identity: Some(format!("{name}:\\Calendar")),
            previous: previous.map(|p| p.iter().map(|s| s.to_string()).collect()),
            rights: Some(vec!["Reviewer".into()]),
            kind: None,
            message: None,
            retries: 0,
            calls: 1,
        })
    }

    #[test]
    fn appends_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        journal
            .append(&mailbox("a@x", Outcome::Added, None))
            .unwrap();
        journal
            .append(&mailbox("b@x", Outcome::Failed, None))
            .unwrap();
        drop(journal);
        let records = read(&path).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(
            done_mailboxes(&records).into_iter().collect::<Vec<_>>(),
            ["a@x"]
        );
    }

    #[test]
    fn a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, "{\"type\":\"end\",\"exitCode\":0}\nnot json\n").unwrap();
        let err = format!("{:#}", read(&path).unwrap_err());
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn default_name_is_utc_basic_format() {
        use std::time::{Duration, UNIX_EPOCH};
        let at = |secs| default_file_name(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "calperm-journal-19700101T000000Z.jsonl");
        assert_eq!(at(951_782_400), "calperm-journal-20000229T000000Z.jsonl");
        assert_eq!(at(1_700_000_000), "calperm-journal-20231114T221320Z.jsonl");
        assert_eq!(at(4_107_542_399), "calperm-journal-21000228T235959Z.jsonl");
        assert_eq!(at(4_107_542_400), "calperm-journal-21000301T000000Z.jsonl");
    }

    #[test]
    fn first_change_per_mailbox_wins() {
        let records = vec![
            mailbox("a@x", Outcome::Updated, Some(&["AvailabilityOnly"])),
            mailbox("A@x", Outcome::Updated, Some(&["Reviewer"])),
            mailbox("b@x", Outcome::Unchanged, Some(&["Reviewer"])),
        ];
        let changes = grant_changes(&records);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].previous.as_deref(),
            Some(&["AvailabilityOnly".to_string()][..])
        );
    }
}
