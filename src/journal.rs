//! The journal: every record of a run, appended and flushed the moment it arrives, so a crash
//! loses nothing. It is what `--resume` and `revoke --from-journal` read.
//!
//! A journal is only ever appended to by the run that resumes it: a new run refuses an existing
//! journal, so two runs never interleave in one file. Each record is one `write` of a whole line,
//! handed to the operating system before anything else happens; a line cut short (a full disk
//! mid-write) is the last line of the file, and a resumed run removes it before appending.

use crate::error::Failure;
use crate::records::{Intent, Mailbox, MailboxKind, Outcome, Record};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// An open journal file.
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Bytes of a cut-off last line removed when a resumed journal was opened.
    repaired: Option<u64>,
}

impl Journal {
    /// Opens `path` for a new run. An existing non-empty regular file is refused (exit 2): it is
    /// another run's journal, and appending to it would mix two runs. Devices and pipes
    /// (`/dev/stdout`, a FIFO) are written as they are.
    pub fn create(path: &Path) -> Result<Journal> {
        if let Ok(meta) = std::fs::metadata(path)
            && meta.is_file()
            && meta.len() > 0
        {
            return Err(Failure::usage(
                format!("the journal {} already exists", path.display()),
                format!(
                    "pass a new file to --journal, or continue that run with --resume {}",
                    path.display()
                ),
            )
            .into());
        }
        // create_new where the file is new, so two runs starting at once cannot both take it.
        let exists = std::fs::symlink_metadata(path).is_ok();
        let file = OpenOptions::new()
            .create_new(!exists)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the journal {}", path.display()))?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            repaired: None,
        })
    }

    /// Opens the journal of the run being resumed, to append to it. A last line without its
    /// newline is the record whose write was cut off when the earlier run died; it was never
    /// acknowledged, so nothing was changed on its account, and it is removed (never glued to
    /// the next record).
    pub fn resume(path: &Path) -> Result<Journal> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the journal {}", path.display()))?;
        let repaired = cut_partial_line(&mut file)
            .with_context(|| format!("repairing the journal {}", path.display()))?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            repaired,
        })
    }

    /// Bytes of a cut-off last line that `resume` removed.
    pub fn repaired(&self) -> Option<u64> {
        self.repaired
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle to read back what this run appends, from the journal's present end (call it
    /// before the first `append`). None for a pipe or a device, which cannot be read back.
    pub fn read_back(&self) -> Option<ReadBack> {
        let meta = self.file.metadata().ok()?;
        if !meta.is_file() {
            return None;
        }
        let file = File::open(&self.path).ok()?;
        // The file being written, not another put at its path since.
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let other = file.metadata().ok()?;
            if (other.dev(), other.ino()) != (meta.dev(), meta.ino()) {
                return None;
            }
        }
        Some(ReadBack {
            file,
            start: meta.len(),
        })
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

    /// Asks the operating system to put what was written on disk (end of a run). Not done per
    /// record: measured on the 2,000-mailbox simulated grant, an fdatasync after every intent
    /// made the run about 50 % slower on a shared disk; a record handed to the operating
    /// system already survives calperm and pwsh being killed, only not a power cut.
    pub fn sync(&mut self) -> Result<()> {
        // A pipe or a device (`--journal /dev/stdout`) has nothing to put on disk.
        if !self.file.metadata().is_ok_and(|m| m.is_file()) {
            return Ok(());
        }
        self.file
            .sync_data()
            .with_context(|| format!("writing the journal {} to disk", self.path.display()))
    }
}

/// A journal's records from one offset on, read back through a handle of its own: the rows a
/// report prints without having kept them.
pub struct ReadBack {
    file: File,
    start: u64,
}

impl ReadBack {
    /// Calls `each` with every mailbox record from the start on, in order, until it returns
    /// false. A line that is not a record is passed over: it can only be a write cut short when
    /// the journal failed, and that record was never counted as written.
    pub fn mailboxes(&self, each: &mut dyn FnMut(Mailbox) -> bool) -> Result<()> {
        // `append` writes the tag first: other records (intents, half of a grant's lines) are
        // passed over unparsed.
        const OTHER: &[u8] = b"{\"type\":\"";
        const MAILBOX: &[u8] = b"{\"type\":\"mailbox\"";
        let mut file = &self.file;
        file.seek(SeekFrom::Start(self.start))
            .context("reading the journal back")?;
        let mut reader = BufReader::with_capacity(64 * 1024, file);
        let mut raw = Vec::new();
        loop {
            raw.clear();
            if reader
                .read_until(b'\n', &mut raw)
                .context("reading the journal back")?
                == 0
            {
                return Ok(());
            }
            if raw.starts_with(OTHER) && !raw.starts_with(MAILBOX) {
                continue;
            }
            if let Ok(Record::Mailbox(m)) = serde_json::from_slice::<Record>(&raw)
                && !each(m)
            {
                return Ok(());
            }
        }
    }
}

/// Truncates `file` after its last newline; returns the bytes removed, if any.
fn cut_partial_line(file: &mut File) -> std::io::Result<Option<u64>> {
    let len = file.metadata()?.len();
    if len == 0 || !file.metadata()?.is_file() {
        return Ok(None);
    }
    // Read backwards in blocks until a newline is found.
    let mut end = len;
    let mut block = vec![0u8; 64 * 1024];
    loop {
        let start = end.saturating_sub(block.len() as u64);
        let size = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block[..size])?;
        if let Some(pos) = block[..size].iter().rposition(|&b| b == b'\n') {
            let keep = start + pos as u64 + 1;
            if keep == len {
                return Ok(None);
            }
            file.set_len(keep)?;
            return Ok(Some(len - keep));
        }
        if start == 0 {
            file.set_len(0)?;
            return Ok(Some(len));
        }
        end = start;
    }
}

/// Refuses a report file that is the journal (exit 2): the report is written from its start
/// and would destroy the journal. Compares the files themselves where both exist, so another
/// spelling, a `..` or a symlink is caught too.
pub fn ensure_not_journal(journal: &Path, report: &Path) -> Result<()> {
    if same_file(journal, report) {
        return Err(Failure::usage(
            format!(
                "--report {} is the journal {}: writing the report would destroy the journal",
                report.display(),
                journal.display()
            ),
            "pass another file to --report or to --journal",
        )
        .into());
    }
    Ok(())
}

/// Whether two paths name one file (also through `..`, symlinks or, where both exist, hard links).
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        use std::os::unix::fs::MetadataExt;
        return x.dev() == y.dev() && x.ino() == y.ino();
    }
    // Not both existing (or not Unix): compare the resolved directories and the names.
    let resolve = |p: &Path| -> Option<PathBuf> {
        let mut path = std::path::absolute(p).ok()?;
        // Follow symlinks, also one that points to a file not created yet.
        for _ in 0..40 {
            if let Ok(real) = std::fs::canonicalize(&path) {
                return Some(real);
            }
            let dir = std::fs::canonicalize(path.parent()?).ok()?;
            let here = dir.join(path.file_name()?);
            match std::fs::read_link(&here) {
                Ok(target) => path = dir.join(target),
                Err(_) => return Some(here),
            }
        }
        None
    };
    match (resolve(a), resolve(b)) {
        (Some(x), Some(y)) => {
            if cfg!(any(windows, target_os = "macos")) {
                // Case-insensitive file systems by default.
                x.to_string_lossy().to_lowercase() == y.to_string_lossy().to_lowercase()
            } else {
                x == y
            }
        }
        _ => false,
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
    let mut reader = BufReader::new(file);
    let mut raw = Vec::new();
    for index in 0.. {
        raw.clear();
        let read = reader
            .read_until(b'\n', &mut raw)
            .with_context(|| format!("reading {}", path.display()))?;
        if read == 0 {
            break;
        }
        let complete = raw.ends_with(b"\n");
        let line = String::from_utf8_lossy(&raw);
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str(line.trim_end_matches(['\r', '\n']));
        if parsed.is_err() && !complete {
            // The last line, cut off by a run that died mid-write: never acknowledged, so
            // nothing was changed on its account.
            break;
        }
        let record = parsed.with_context(|| {
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

/// A journal name in `dir` that is not taken yet: `default_file_name`, else the same with `-2`,
/// `-3`, … before `.jsonl` (two runs started within one second).
pub fn free_default_path(dir: &Path, now: std::time::SystemTime) -> PathBuf {
    let name = default_file_name(now);
    let stem = name.trim_end_matches(".jsonl");
    let mut path = dir.join(&name);
    let mut n = 2;
    while std::fs::symlink_metadata(&path).is_ok() {
        path = dir.join(format!("{stem}-{n}.jsonl"));
        n += 1;
    }
    path
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
/// before any grant): what `revoke --from-journal` undoes. An intent that no mailbox record of
/// the same run answered counts as a change with kind `unconfirmed`.
pub fn grant_changes(records: &[Record]) -> Vec<Mailbox> {
    let mut by_mailbox: BTreeMap<String, Mailbox> = BTreeMap::new();
    // The last intent per mailbox of the current run, not answered yet.
    let mut open: BTreeMap<String, Intent> = BTreeMap::new();
    let settle = |open: &mut BTreeMap<String, Intent>,
                  by_mailbox: &mut BTreeMap<String, Mailbox>| {
        for (key, intent) in std::mem::take(open) {
            if let Some(change) = unconfirmed_change(intent) {
                by_mailbox.entry(key).or_insert(change);
            }
        }
    };
    for record in records {
        match record {
            // A new run: whatever the previous one left open stays open.
            Record::Start(_) => settle(&mut open, &mut by_mailbox),
            Record::Intent(intent) => {
                open.insert(intent.mailbox.to_lowercase(), intent.clone());
            }
            Record::Mailbox(m) => {
                open.remove(&m.mailbox.to_lowercase());
                if matches!(m.outcome, Outcome::Added | Outcome::Updated) {
                    // The first change is the one whose "before" is the original state.
                    by_mailbox
                        .entry(m.mailbox.to_lowercase())
                        .or_insert_with(|| m.clone());
                }
            }
            _ => {}
        }
    }
    settle(&mut open, &mut by_mailbox);
    by_mailbox.into_values().collect()
}

/// The change an unanswered intent may have made, as the mailbox record it would have had.
fn unconfirmed_change(intent: Intent) -> Option<Mailbox> {
    let outcome = match intent.action.as_str() {
        "add" => Outcome::Added,
        "set" => Outcome::Updated,
        _ => return None,
    };
    Some(Mailbox {
        mailbox: intent.mailbox,
        outcome,
        display_name: None,
        recipient_type: None,
        folder: None,
        folder_identity: Some(intent.folder_identity),
        previous: intent.previous,
        rights: intent.rights,
        kind: Some(MailboxKind::Unconfirmed),
        message: Some("the run stopped while this change was being made".into()),
        retries: 0,
        calls: 0,
        delta: None,
    })
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
            delta: None,
        })
    }

    #[test]
    fn appends_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut journal = Journal::create(&path).unwrap();
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

    fn intent(name: &str, action: &str, previous: Option<&[&str]>) -> Record {
        Record::Intent(Intent {
            mailbox: name.into(),
            action: action.into(),
            folder_identity: format!("{name}:\\Calendar"),
            previous: previous.map(|p| p.iter().map(|s| s.to_string()).collect()),
            rights: Some(vec!["Reviewer".into()]),
        })
    }

    fn start() -> Record {
        serde_json::from_str(r#"{"type":"start","script":"grant"}"#).unwrap()
    }

    #[test]
    fn an_unanswered_intent_is_an_unconfirmed_change() {
        let records = vec![
            start(),
            intent("a@x", "add", None),
            mailbox("a@x", Outcome::Added, None),
            intent("b@x", "set", Some(&["AvailabilityOnly"])),
            // A resumed run that found b@x done: the first run's intent stays open.
            start(),
            mailbox("b@x", Outcome::Unchanged, Some(&["Reviewer"])),
            intent("c@x", "add", Some(&[])),
        ];
        let changes = grant_changes(&records);
        let kinds: Vec<(&str, Outcome, Option<&MailboxKind>)> = changes
            .iter()
            .map(|m| (m.mailbox.as_str(), m.outcome, m.kind.as_ref()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("a@x", Outcome::Added, None),
                ("b@x", Outcome::Updated, Some(&MailboxKind::Unconfirmed)),
                ("c@x", Outcome::Added, Some(&MailboxKind::Unconfirmed)),
            ]
        );
        assert_eq!(
            changes[1].previous.as_deref(),
            Some(&["AvailabilityOnly".to_string()][..])
        );
        assert_eq!(changes[2].previous.as_deref(), Some(&[][..]));
    }

    #[test]
    fn an_existing_journal_is_refused_unless_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, "{\"type\":\"end\",\"exitCode\":0}\n").unwrap();
        let err = Journal::create(&path).err().unwrap();
        assert_eq!(
            err.downcast_ref::<Failure>().unwrap().code,
            crate::error::code::USAGE
        );
        assert!(Journal::resume(&path).is_ok());
    }

    #[test]
    fn a_cut_off_last_line_is_ignored_when_read_and_removed_when_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, "{\"type\":\"end\",\"exitCode\":0}\n{\"type\":\"mail").unwrap();
        assert_eq!(read(&path).unwrap().len(), 1);
        let mut journal = Journal::resume(&path).unwrap();
        assert_eq!(journal.repaired(), Some("{\"type\":\"mail".len() as u64));
        journal
            .append(&mailbox("a@x", Outcome::Added, None))
            .unwrap();
        drop(journal);
        assert_eq!(read(&path).unwrap().len(), 2);
    }

    #[test]
    fn the_report_may_not_be_the_journal_under_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("j.jsonl");
        let other = dir.path().join("sub/../j.jsonl");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(
            ensure_not_journal(&journal, &other).is_err(),
            "not existing yet"
        );
        std::fs::write(&journal, "").unwrap();
        assert!(ensure_not_journal(&journal, &other).is_err());
        #[cfg(unix)]
        {
            let link = dir.path().join("link.jsonl");
            std::os::unix::fs::symlink(&journal, &link).unwrap();
            assert!(ensure_not_journal(&journal, &link).is_err());
        }
        assert!(ensure_not_journal(&journal, &dir.path().join("r.csv")).is_ok());
    }

    #[test]
    fn a_default_name_taken_in_the_same_second_gets_a_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let first = free_default_path(dir.path(), now);
        assert_eq!(first, dir.path().join(default_file_name(now)));
        std::fs::write(&first, "x\n").unwrap();
        let second = free_default_path(dir.path(), now);
        assert_eq!(
            second.file_name().unwrap(),
            "calperm-journal-20231114T221320Z-2.jsonl"
        );
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
