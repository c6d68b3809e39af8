//! The report on calperm's standard output (and in `--report FILE`): `table` (the default: a
//! summary and a table of mailboxes, written when the run ends), `json` (each record as one JSON
//! line, written as it arrives) or `csv` (one row per mailbox, written as it arrives). For json
//! and csv the summary goes to stderr, so stdout stays machine-readable.
//!
//! Memory stays bounded: json and csv keep nothing per record; the table keeps at most
//! `table::FULL_LIMIT` rows and reads the notable rows of a larger run back from the journal
//! (`table::Rows`).

mod summary;
mod table;

use super::tally::Tally;
use crate::error::Failure;
use crate::records::{Mailbox, MailboxKind, Record};
use anyhow::Result;
use clap::ValueEnum;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

pub(crate) use summary::Footer;

/// The report's format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Summary and a table.
    Table,
    /// One JSON record per line.
    Json,
    /// CSV with a header row.
    Csv,
}

/// A CSV column: its name (as in the JSON records) and its cell.
type CsvColumn = (&'static str, fn(&Mailbox) -> String);

/// The CSV report's columns.
const CSV_COLUMNS: [CsvColumn; 12] = [
    ("mailbox", |m| neutralise(m.mailbox.clone())),
    ("outcome", |m| m.outcome.as_str().to_string()),
    ("displayName", |m| csv_text(m.display_name.as_deref())),
    ("recipientType", |m| csv_text(m.recipient_type.as_deref())),
    ("folder", |m| csv_text(m.folder.as_deref())),
    ("folderIdentity", |m| csv_text(m.folder_identity.as_deref())),
    ("previous", |m| csv_list(&m.previous)),
    ("rights", |m| csv_list(&m.rights)),
    ("kind", |m| {
        csv_text(m.kind.as_ref().map(MailboxKind::as_str))
    }),
    ("message", |m| csv_text(m.message.as_deref())),
    ("retries", |m| m.retries.to_string()),
    ("calls", |m| m.calls.to_string()),
];

pub(crate) struct Report {
    format: ReportFormat,
    stdout: Output,
    file: Option<Output>,
    rows: table::Rows,
    scratch: Vec<u8>,
}

/// One place the report goes. A write error disables it (with one warning; none for a closed
/// pipe, as in `calperm run … | head`) instead of ending the run: pwsh keeps running either way,
/// and the journal still gets every record.
struct Output {
    name: String,
    sink: Box<dyn Write>,
    failed: bool,
}

impl Output {
    fn write(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        if let Err(err) = self.sink.write_all(bytes) {
            self.fail(&err);
        }
    }

    fn flush(&mut self) {
        if !self.failed
            && let Err(err) = self.sink.flush()
        {
            self.fail(&err);
        }
    }

    fn fail(&mut self, err: &io::Error) {
        self.failed = true;
        if err.kind() != io::ErrorKind::BrokenPipe {
            eprintln!(
                "calperm: warning: cannot write the report to {}: {err}",
                self.name
            );
        }
    }
}

impl Report {
    /// Opens the outputs now, so an unwritable `--report` file fails before anything runs.
    pub(crate) fn open(format: ReportFormat, report_file: Option<&Path>) -> Result<Report> {
        let stdout = Output {
            name: "standard output".into(),
            sink: Box::new(io::stdout()),
            failed: false,
        };
        let file = match report_file {
            Some(path) => {
                let file = create_report_file(path)?;
                Some(Output {
                    name: path.display().to_string(),
                    sink: Box::new(BufWriter::new(file)),
                    failed: false,
                })
            }
            None => None,
        };
        let mut report = Report {
            format,
            stdout,
            file,
            rows: table::Rows::default(),
            scratch: Vec::new(),
        };
        if format == ReportFormat::Csv {
            report.csv_row(&CSV_COLUMNS.map(|(name, _)| name.to_string()));
        }
        Ok(report)
    }

    /// Gives the table the journal to read its rows back from (`Journal::read_back`, taken
    /// before the run's first record); other formats need none.
    pub(crate) fn read_back(&mut self, journal: impl FnOnce() -> Option<crate::journal::ReadBack>) {
        if self.format == ReportFormat::Table {
            self.rows.read_back(journal());
        }
    }

    /// Handles one record as it arrives; `journaled`: it is in the journal.
    pub(crate) fn record(&mut self, record: &Record, journaled: bool) {
        match self.format {
            ReportFormat::Json => {
                self.scratch.clear();
                if serde_json::to_writer(&mut self.scratch, record).is_ok() {
                    self.scratch.push(b'\n');
                    self.write_all_outputs();
                }
            }
            ReportFormat::Csv => {
                if let Record::Mailbox(m) = record {
                    self.csv_row(&CSV_COLUMNS.map(|(_, cell)| cell(m)));
                }
            }
            ReportFormat::Table => {
                if let Record::Mailbox(m) = record {
                    self.rows.add(m, journaled);
                }
            }
        }
    }

    /// Writes what is written at the end: for table, everything; for json and csv, the summary
    /// (to stderr).
    /// Returns why the report file is incomplete, if writing it failed.
    pub(crate) fn finish(mut self, tally: &Tally, footer: &Footer) -> Option<String> {
        let text = summary::render(tally, footer);
        match self.format {
            ReportFormat::Table => {
                self.scratch = text.into_bytes();
                self.write_all_outputs();
                let rows = std::mem::take(&mut self.rows);
                table::render(&rows, tally, footer, &mut |line| {
                    self.scratch.clear();
                    self.scratch.extend_from_slice(line.as_bytes());
                    self.write_all_outputs();
                });
            }
            ReportFormat::Json | ReportFormat::Csv => {
                let mut stderr = io::stderr().lock();
                let _ = stderr.write_all(text.as_bytes());
                let _ = stderr.flush();
            }
        }
        self.stdout.flush();
        let file = self.file.as_mut()?;
        file.flush();
        file.failed.then(|| {
            format!(
                "the report file {} could not be written; every record is in the journal {}",
                file.name,
                footer.journal.display()
            )
        })
    }

    fn csv_row(&mut self, fields: &[String]) {
        self.scratch.clear();
        {
            let mut writer = csv::WriterBuilder::new()
                .buffer_capacity(1024)
                .from_writer(&mut self.scratch);
            if writer
                .write_record(fields)
                .and_then(|()| writer.flush().map_err(csv::Error::from))
                .is_err()
            {
                return;
            }
        }
        self.write_all_outputs();
    }

    fn write_all_outputs(&mut self) {
        self.stdout.write(&self.scratch);
        if let Some(file) = &mut self.file {
            file.write(&self.scratch);
        }
    }
}

/// A cell a spreadsheet would read as a formula (= + - @, or a leading tab or carriage return,
/// e.g. a display name `=HYPERLINK(…)`) gets a leading `'`, the usual neutralisation: the cell
/// then shows as text. The JSON report and the journal keep the value as it is.
fn neutralise(text: String) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text,
    }
}

/// Creates the report file, and for a regular file writes and removes one byte, so a file that
/// cannot be written (a full disk, a file system that refuses writes) fails now, before anything
/// runs (exit 2). Devices and pipes (`/dev/stdout`) are not probed: a probe would reach them.
fn create_report_file(path: &Path) -> Result<File> {
    let unwritable = |err: io::Error| -> anyhow::Error {
        Failure::usage(
            format!("cannot write the report file {}: {err}", path.display()),
            "pass --report a file in a directory you can write to",
        )
        .into()
    };
    let mut file = File::create(path).map_err(unwritable)?;
    if file.metadata().map_err(unwritable)?.is_file() {
        file.write_all(b"\n")
            .and_then(|()| file.flush())
            .and_then(|()| file.set_len(0))
            .and_then(|()| file.sync_data())
            .map_err(unwritable)?;
        use std::io::Seek;
        file.rewind().map_err(unwritable)?;
    }
    Ok(file)
}

fn csv_text(v: Option<&str>) -> String {
    neutralise(v.unwrap_or_default().to_string())
}

fn csv_list(v: &Option<Vec<String>>) -> String {
    neutralise(v.as_ref().map(|l| l.join(";")).unwrap_or_default())
}
