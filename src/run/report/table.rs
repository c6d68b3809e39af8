//! The table of mailboxes: mailbox, outcome, folder, previous → rights, kind/message.
//!
//! Up to `FULL_LIMIT` mailboxes every row is listed. Past that only the rows worth a look (failed,
//! below, missing, no-calendar, skipped for an unexpected reason) are kept and printed, and the table
//! says where the full list is: memory and screen stay proportional to the problems, not to the
//! tenant.

use super::super::tally::Tally;
use super::Footer;
use super::summary::{one_line, printable, truncate, width};
use crate::records::{Mailbox, MailboxKind, Outcome};

pub(crate) const FULL_LIMIT: u64 = 500;

/// Separates a row's cells inside its one allocation (replaced by a space inside a cell).
const SEP: char = '\u{1f}';

const HEADER: [&str; 5] = ["MAILBOX", "OUTCOME", "FOLDER", "RIGHTS", "DETAIL"];

#[derive(Default)]
pub(crate) struct Rows {
    rows: Vec<Row>,
    seen: u64,
    trimmed: bool,
}

/// One kept row, its five cells in a single string: a table of 100,000 failures stays small.
struct Row {
    cells: Box<str>,
    notable: bool,
}

impl Row {
    fn cells(&self) -> impl Iterator<Item = &str> {
        self.cells.split(SEP)
    }
}

impl Rows {
    pub(crate) fn add(&mut self, m: &Mailbox) {
        self.seen += 1;
        if self.seen > FULL_LIMIT && !self.trimmed {
            self.rows.retain(|r| r.notable);
            self.rows.shrink_to_fit();
            self.trimmed = true;
        }
        let notable = is_notable(m);
        if notable || !self.trimmed {
            self.rows.push(Row {
                cells: cells(m),
                notable,
            });
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
    if rows.trimmed {
        let hidden = rows.seen - rows.rows.len() as u64;
        emit(&format!(
            "{} mailboxes: {} not listed below, all of them plain results. Every row is in the journal {} \
             (or run with --format csv).\n",
            tally.mailboxes,
            hidden,
            footer.journal.display()
        ));
        if rows.rows.is_empty() {
            return;
        }
    }
    let mut widths = HEADER.map(width);
    for row in &rows.rows {
        for (column, cell) in widths.iter_mut().zip(row.cells()) {
            *column = (*column).max(width(cell));
        }
    }
    let mut line = String::new();
    let mut write_row = |cells: &mut dyn Iterator<Item = &str>| {
        line.clear();
        line.push_str("  ");
        for (i, cell) in cells.enumerate() {
            line.push_str(cell);
            if i + 1 < HEADER.len() {
                line.extend(std::iter::repeat_n(' ', widths[i] - width(cell) + 2));
            }
        }
        let end = line.trim_end().len();
        line.truncate(end);
        line.push('\n');
        emit(&line);
    };
    write_row(&mut HEADER.into_iter());
    for row in &rows.rows {
        write_row(&mut row.cells());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            rows.add(&m);
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
            rows.add(&m);
        }
        assert_eq!(rows.rows.len(), 20);
        let mut out = String::new();
        render(&rows, &tally, &footer(), &mut |text| out.push_str(text));
        assert!(
            out.contains("2000 mailboxes: 1980 not listed below"),
            "{out}"
        );
        assert!(out.contains("/w/j.jsonl"), "{out}");
        assert!(out.contains("m7@x") && !out.contains("m8@x"), "{out}");
    }
}
