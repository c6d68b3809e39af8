//! The table of mailboxes: mailbox, outcome, folder, previous → rights, kind/message.
//!
//! Up to `FULL_LIMIT` mailboxes every row is listed. Past that only the rows worth a look (failed,
//! below, missing, no-calendar, skipped for an unexpected reason) are printed, and the table says
//! where the full list is: the screen stays proportional to the problems, not to the tenant.
//! Those rows are not kept in memory: every mailbox record is in the journal before it reaches
//! the report, so the table counts them and, when it is printed, reads them back from the
//! journal, from where this run's records start (a resumed journal begins with earlier runs').
//! Only rows the journal cannot give back are kept: all of them when the journal is a pipe or a
//! device (`--journal /dev/stdout`), and those received after a journal write failed.

use super::super::tally::Tally;
use super::Footer;
use super::summary::{one_line, printable, truncate, width};
use crate::journal::ReadBack;
use crate::records::{Mailbox, MailboxKind, Outcome};

pub(crate) const FULL_LIMIT: u64 = 500;

/// Separates a row's cells inside its one allocation (replaced by a space inside a cell).
const SEP: char = '\u{1f}';

const HEADER: [&str; 5] = ["MAILBOX", "OUTCOME", "FOLDER", "RIGHTS", "DETAIL"];

#[derive(Default)]
pub(crate) struct Rows {
    /// Every row up to `FULL_LIMIT` mailboxes; past it, the notable rows not in `journal`.
    rows: Vec<Row>,
    seen: u64,
    trimmed: bool,
    /// Notable rows of the whole run, and the widest cell of each column among them: the
    /// columns of a trimmed table are as wide as its rows, wherever they are read from.
    notable: u64,
    notable_widths: [usize; 5],
    /// This run's records in the journal, to read notable rows back from.
    journal: Option<ReadBack>,
    /// Notable rows to read back from `journal`.
    in_journal: u64,
}

/// One kept row, its five cells in a single string: a table of 100,000 failures stays small.
struct Row {
    cells: Box<str>,
    notable: bool,
    /// In the journal, so it can be read back from there.
    journaled: bool,
}

impl Row {
    fn cells(&self) -> impl Iterator<Item = &str> {
        self.cells.split(SEP)
    }
}

impl Rows {
    /// Reads notable rows back from `journal` instead of keeping them (call before any `add`).
    pub(crate) fn read_back(&mut self, journal: Option<ReadBack>) {
        self.journal = journal;
    }

    /// Adds a mailbox's row; `journaled`: its record is in the journal.
    pub(crate) fn add(&mut self, m: &Mailbox, journaled: bool) {
        let journaled = journaled && self.journal.is_some();
        self.seen += 1;
        if self.seen > FULL_LIMIT && !self.trimmed {
            self.rows.retain(|r| r.notable && !r.journaled);
            self.rows.shrink_to_fit();
            self.trimmed = true;
        }
        let notable = is_notable(m);
        if notable {
            self.notable += 1;
            self.in_journal += u64::from(journaled);
        }
        if !self.trimmed || (notable && !journaled) {
            let row = Row {
                cells: cells(m),
                notable,
                journaled,
            };
            if notable {
                self.widen(&row.cells);
            }
            self.rows.push(row);
        } else if notable {
            self.widen(&cells(m));
        }
    }

    fn widen(&mut self, cells: &str) {
        for (column, cell) in self.notable_widths.iter_mut().zip(cells.split(SEP)) {
            *column = (*column).max(width(cell));
        }
    }
}

/// A row that is not a plain success: a failure, a mailbox without calendar, or a skip for a
/// reason other than the expected ones (the monitor's own mailbox, `--exclude`, a resumed run).
fn is_notable(m: &Mailbox) -> bool {
    m.outcome.is_failure()
        || m.outcome == Outcome::NoCalendar
        || (m.outcome == Outcome::Skipped
            && !m.kind.as_ref().is_some_and(MailboxKind::is_expected_skip))
}

/// Widest cell per column, in terminal columns; a longer one is cut with `…` (the JSON and CSV
/// reports and the journal have it whole), so one long address does not widen every row.
const MAX_CELL: [usize; 5] = [48, 16, 32, 48, 200];

fn cells(m: &Mailbox) -> Box<str> {
    let clean = |text: &str, column: usize| truncate(&printable(text), MAX_CELL[column]);
    [
        clean(&m.mailbox, 0),
        m.outcome.as_str().to_string(),
        clean(m.folder.as_deref().unwrap_or_default(), 2),
        clean(&change(m), 3),
        clean(&detail(m), 4),
    ]
    .join(&SEP.to_string())
    .into_boxed_str()
}

/// `previous → rights`, or whichever of the two is known.
fn change(m: &Mailbox) -> String {
    let join = |l: &Vec<String>| {
        if l.is_empty() {
            "none".to_string()
        } else {
            l.join(",")
        }
    };
    match (&m.previous, &m.rights) {
        (Some(previous), Some(rights)) => format!("{} → {}", join(previous), join(rights)),
        (None, Some(rights)) => format!("none → {}", join(rights)),
        (Some(previous), None) => join(previous),
        (None, None) => String::new(),
    }
}

fn detail(m: &Mailbox) -> String {
    match (
        m.kind.as_ref().map(MailboxKind::as_str),
        m.message.as_deref(),
    ) {
        (Some(kind), Some(message)) => format!("{kind}: {}", one_line(message)),
        (Some(kind), None) => kind.to_string(),
        (None, Some(message)) => one_line(message),
        (None, None) => String::new(),
    }
}

/// Writes the table, a line at a time, through `emit`.
pub(crate) fn render(rows: &Rows, tally: &Tally, footer: &Footer, emit: &mut dyn FnMut(&str)) {
    if rows.seen == 0 {
        return;
    }
    emit("\n");
    let mut widths = HEADER.map(width);
    if rows.trimmed {
        let hidden = rows.seen - rows.notable;
        emit(&format!(
            "{} mailboxes: {} not listed below, all of them plain results. Every row is in the journal {} \
             (or run with --format csv).\n",
            tally.mailboxes,
            hidden,
            footer.journal.display()
        ));
        if rows.notable == 0 {
            return;
        }
        for (column, notable) in widths.iter_mut().zip(rows.notable_widths) {
            *column = (*column).max(notable);
        }
    } else {
        for row in &rows.rows {
            for (column, cell) in widths.iter_mut().zip(row.cells()) {
                *column = (*column).max(width(cell));
            }
        }
    }
    let mut line = String::new();
    let mut write_row = |cells: &mut dyn Iterator<Item = &str>| {
        line.clear();
        line.push_str("  ");
        for (i, cell) in cells.enumerate() {
            line.push_str(cell);
            if i + 1 < HEADER.len() {
                // A row read back from a journal edited since may be wider than its column:
                // a ragged line, not a panic.
                let pad = widths[i].saturating_sub(width(cell)) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let end = line.trim_end().len();
        line.truncate(end);
        line.push('\n');
        emit(&line);
    };
    write_row(&mut HEADER.into_iter());
    if rows.trimmed
        && rows.in_journal > 0
        && let Some(journal) = &rows.journal
    {
        // The journal's rows come first: records received after a write failed are not in it.
        let mut found = 0;
        let read = journal.mailboxes(&mut |m| {
            if is_notable(&m) {
                write_row(&mut cells(&m).split(SEP));
                found += 1;
            }
            found < rows.in_journal
        });
        if found < rows.in_journal {
            let why = match read {
                Err(err) => format!("{err:#}"),
                Ok(()) => "they are not in it any more".into(),
            };
            let note = format!(
                "({} more rows could not be read back from the journal {}: {why})",
                rows.in_journal - found,
                footer.journal.display()
            );
            write_row(&mut std::iter::once(note.as_str()));
        }
    }
    for row in &rows.rows {
        write_row(&mut row.cells());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Record;

    fn mailbox(name: &str, outcome: Outcome) -> Mailbox {
        Mailbox {
            mailbox: name.into(),
            outcome,
            display_name: None,
            recipient_type: None,
            folder: Some("Calendar".into()),
            folder_identity: None,
            previous: None,
            rights: Some(vec!["Reviewer".into()]),
            kind: None,
            message: None,
            retries: 0,
            calls: 1,
            delta: None,
        }
    }

    fn footer() -> Footer {
        Footer {
            script: "grant".into(),
            journal: "/w/j.jsonl".into(),
            report_file: None,
            sim_state: None,
        }
    }

    #[test]
    fn small_runs_list_every_mailbox() {
        let mut rows = Rows::default();
        let mut tally = Tally::default();
        let mut failed = mailbox("b@x", Outcome::Failed);
        failed.kind = Some(MailboxKind::AccessDenied);
        failed.message = Some("Access is denied.\nReally.".into());
        failed.rights = None;
        for m in [mailbox("a@x", Outcome::Added), failed] {
            tally.add(&crate::records::Record::Mailbox(m.clone()));
            rows.add(&m, false);
        }
        let mut out = String::new();
        render(&rows, &tally, &footer(), &mut |text| out.push_str(text));
        assert_eq!(
            out,
            "\n  MAILBOX  OUTCOME  FOLDER    RIGHTS           DETAIL\n  \
             a@x      added    Calendar  none → Reviewer\n  \
             b@x      failed   Calendar                   access-denied: Access is denied. Really.\n"
        );
    }

    #[test]
    fn large_runs_keep_only_notable_rows() {
        let mut rows = Rows::default();
        let mut tally = Tally::default();
        for i in 0..2000 {
            let outcome = if i % 100 == 7 {
                Outcome::Failed
            } else {
                Outcome::Added
            };
            let m = mailbox(&format!("m{i}@x"), outcome);
            tally.add(&crate::records::Record::Mailbox(m.clone()));
            rows.add(&m, false);
        }
        assert_eq!(rows.rows.len(), 20, "no journal to read back: kept");
        let mut out = String::new();
        render(&rows, &tally, &footer(), &mut |text| out.push_str(text));
        assert!(
            out.contains("2000 mailboxes: 1980 not listed below"),
            "{out}"
        );
        assert!(out.contains("/w/j.jsonl"), "{out}");
        assert!(out.contains("m7@x") && !out.contains("m8@x"), "{out}");
    }

    /// 2,000 mailboxes of every kind, notable ones of different widths among them.
    fn large_run() -> Vec<Mailbox> {
        (0..2000)
            .map(|i| {
                let mut m = mailbox(&format!("m{i}@x"), Outcome::Added);
                match i % 97 {
                    3 => {
                        m.outcome = Outcome::Failed;
                        m.kind = Some(MailboxKind::AccessDenied);
                        m.message =
                            Some(format!("Access is denied.\nTry {}", "again ".repeat(i % 7)));
                        m.rights = None;
                    }
                    5 => {
                        m.outcome = Outcome::NoCalendar;
                        m.folder = None;
                    }
                    8 => {
                        m.outcome = Outcome::Skipped;
                        m.kind = Some(MailboxKind::from_name(if i % 2 == 0 {
                            "excluded"
                        } else {
                            "not-a-mailbox"
                        }));
                    }
                    _ => {}
                }
                if i == 1500 {
                    m.outcome = Outcome::Failed;
                    m.mailbox = format!("a-much-longer-address-{i}@subsidiary.example.com");
                }
                m
            })
            .collect()
    }

    fn tally_of(mailboxes: &[Mailbox]) -> Tally {
        let mut tally = Tally::default();
        for m in mailboxes {
            tally.add(&Record::Mailbox(m.clone()));
        }
        tally
    }

    fn rendered(rows: &Rows, tally: &Tally) -> String {
        let mut out = String::new();
        render(rows, tally, &footer(), &mut |text| out.push_str(text));
        out
    }

    /// The table read back from a resumed journal is the one kept in memory: same rows, same
    /// order, same widths; the earlier run's rows are not in it.
    #[test]
    fn rows_read_back_from_the_journal_are_the_rows_memory_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut earlier = crate::journal::Journal::create(&path).unwrap();
        let mut old = mailbox("earlier-run-with-a-very-long-address@x", Outcome::Failed);
        old.message = Some("x".repeat(150));
        earlier.append(&Record::Mailbox(old)).unwrap();
        drop(earlier);
        let mut journal = crate::journal::Journal::resume(&path).unwrap();

        let mailboxes = large_run();
        let tally = tally_of(&mailboxes);
        let (mut kept, mut read) = (Rows::default(), Rows::default());
        read.read_back(journal.read_back());
        for m in &mailboxes {
            // Intents are in the journal too, never in the table.
            journal
                .append(&Record::Intent(crate::records::Intent {
                    mailbox: format!("intent-{}", m.mailbox),
                    action: "add".into(),
                    folder_identity: "x".into(),
                    previous: None,
                    rights: None,
                }))
                .unwrap();
            journal.append(&Record::Mailbox(m.clone())).unwrap();
            kept.add(m, true);
            read.add(m, true);
        }
        assert!(read.rows.is_empty(), "read back, not kept");
        let (expected, out) = (rendered(&kept, &tally), rendered(&read, &tally));
        assert!(
            expected.contains("m3@x") && expected.contains("a-much-longer-address-1500@"),
            "{expected}"
        );
        assert!(!out.contains("earlier-run"), "{out}");
        assert_eq!(out, expected);
    }

    /// Records received after the journal failed are kept, and follow the journal's rows.
    #[test]
    fn rows_the_journal_did_not_get_are_kept_and_come_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut journal = crate::journal::Journal::create(&path).unwrap();
        let mailboxes = large_run();
        let tally = tally_of(&mailboxes);
        let (mut kept, mut read) = (Rows::default(), Rows::default());
        read.read_back(journal.read_back());
        for (i, m) in mailboxes.iter().enumerate() {
            let journaled = i < 1200;
            if journaled {
                journal.append(&Record::Mailbox(m.clone())).unwrap();
            }
            kept.add(m, journaled);
            read.add(m, journaled);
        }
        assert_eq!(read.rows.len() as u64, read.notable - read.in_journal);
        assert!(!read.rows.is_empty() && read.in_journal > 0);
        assert_eq!(rendered(&read, &tally), rendered(&kept, &tally));
    }

    /// A journal cut short behind the run's back: the table says how many rows it lacks.
    #[test]
    fn rows_missing_from_the_journal_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut journal = crate::journal::Journal::create(&path).unwrap();
        let mailboxes = large_run();
        let tally = tally_of(&mailboxes);
        let mut read = Rows::default();
        read.read_back(journal.read_back());
        for m in &mailboxes {
            journal.append(&Record::Mailbox(m.clone())).unwrap();
            read.add(m, true);
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        let out = rendered(&read, &tally);
        assert!(
            out.contains(&format!(
                "({} more rows could not be read back from the journal /w/j.jsonl",
                read.in_journal
            )),
            "{out}"
        );
    }
}
