//! The summary: what the script did in a few lines. The settings a connector needs (tenant ID,
//! client ID, EWS URL, …) come first and stand out; then the counts per outcome in a fixed order,
//! the steps and items, why the script stopped if it did, and where the journal is.

use super::super::tally::{KEEP, Tally};
use std::fmt::Write;
use std::path::PathBuf;

/// Facts about the run that are not in its records.
pub(crate) struct Footer {
    pub(crate) script: String,
    pub(crate) journal: PathBuf,
    pub(crate) report_file: Option<PathBuf>,
    pub(crate) sim_state: Option<PathBuf>,
}

pub(crate) fn render(tally: &Tally, footer: &Footer) -> String {
    let mut out = String::new();
    let mut title = format!("calperm run {}", footer.script);
    if tally.what_if() {
        title.push_str(" (what-if: nothing was changed)");
    }
    let _ = writeln!(out, "{title}");
    if let Some(monitor) = &tally.monitor {
        let address = monitor
            .primary_smtp_address
            .as_deref()
            .unwrap_or(&monitor.identity);
        match monitor.display_name.as_deref() {
            Some(name) if name != address => {
                let _ = writeln!(out, "monitor: {} <{}>", printable(name), printable(address));
            }
            _ => {
                let _ = writeln!(out, "monitor: {}", printable(address));
            }
        }
    }

    if !tally.settings.is_empty() {
        let _ = writeln!(out, "\nSettings for the connector:");
        let name_width = tally
            .settings
            .iter()
            .map(|s| width(&s.name))
            .max()
            .unwrap_or(0);
        for setting in &tally.settings {
            let pad = " ".repeat(name_width - width(&setting.name));
            let _ = write!(
                out,
                "  {}{pad}  {}",
                printable(&setting.name),
                printable(&setting.value)
            );
            if let Some(note) = &setting.note {
                let _ = write!(out, "  ({})", one_line(note));
            }
            out.push('\n');
        }
    }

    if !tally.parts.is_empty() {
        let _ = writeln!(out, "\nScripts (each in its own pwsh):");
        let rows: Vec<[String; 3]> = tally
            .parts
            .iter()
            .map(|p| {
                [
                    format!("{}. {}", p.number, p.part),
                    p.outcome.clone(),
                    p.message.as_deref().map(one_line).unwrap_or_default(),
                ]
            })
            .collect();
        columns(&mut out, &rows);
    }

    if !tally.steps.is_empty() {
        let _ = writeln!(out, "\nSteps:");
        let rows: Vec<[String; 3]> = tally
            .steps
            .iter()
            .map(|s| {
                [
                    printable(&s.step),
                    printable(&s.outcome),
                    s.message.as_deref().map(one_line).unwrap_or_default(),
                ]
            })
            .collect();
        columns(&mut out, &rows);
    }

    if !tally.items.is_empty() {
        let _ = writeln!(out, "\nItems:");
        let rows: Vec<[String; 5]> = tally
            .items
            .iter()
            .map(|i| {
                [
                    printable(&i.item),
                    printable(&i.outcome),
                    printable(i.name.as_deref().unwrap_or_default()),
                    printable(i.id.as_deref().unwrap_or_default()),
                    {
                        let message = i.message.as_deref().map(one_line).unwrap_or_default();
                        match i.retries {
                            0 => message,
                            n => format!("[{n} replication retries] {message}"),
                        }
                    },
                ]
            })
            .collect();
        columns(&mut out, &rows);
    }
    if tally.replication_retries > 0 {
        let _ = writeln!(
            out,
            "  {} call(s) were retried while Entra ID replicated new objects.",
            tally.replication_retries
        );
    }
    if tally.not_kept > 0 {
        let _ = writeln!(
            out,
            "  … {} more steps, items or settings (over {KEEP} of a kind): see the journal",
            tally.not_kept
        );
    }

    if tally.mailboxes > 0 || tally.start.as_ref().is_some_and(|s| s.total.is_some()) {
        let _ = writeln!(out);
        let mut rows: Vec<(String, u64)> = tally
            .outcomes
            .iter()
            .map(|(o, n)| (o.as_str().to_string(), *n))
            .collect();
        rows.push(("mailboxes".into(), tally.mailboxes));
        rows.push(("retries".into(), tally.retries));
        if tally.delta_new + tally.delta_retried > 0 {
            rows.push(("new".into(), tally.delta_new));
            rows.push(("retried".into(), tally.delta_retried));
            rows.push(("not usable yet".into(), tally.not_yet_usable));
        }
        let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        let digits = rows
            .iter()
            .map(|(_, n)| n.to_string().len())
            .max()
            .unwrap_or(1);
        for (name, count) in rows {
            let _ = writeln!(out, "  {name:<width$}  {count:>digits$}");
        }
    }

    for warning in &tally.warnings {
        let _ = writeln!(
            out,
            "\nwarning ({}): {}",
            warning.kind,
            one_line(&warning.message)
        );
    }

    for fatal in &tally.fatals {
        let _ = writeln!(
            out,
            "\nstopped ({}): {}",
            printable(fatal.kind.as_str()),
            one_line(&fatal.message)
        );
    }

    let _ = writeln!(out, "\njournal: {}", footer.journal.display());
    if let Some(path) = &footer.report_file {
        let _ = writeln!(out, "report: {}", path.display());
    }
    if let Some(path) = &footer.sim_state {
        let _ = writeln!(out, "simulated tenant state: {}", path.display());
    }
    out
}

/// Left-aligned columns; the last one is not padded.
fn columns<const N: usize>(out: &mut String, rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (column, cell) in widths.iter_mut().zip(row) {
            *column = (*column).max(width(cell));
        }
    }
    for row in rows {
        let mut line = String::from("  ");
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let pad = widths[i] - width(cell);
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Columns a terminal gives `text`: two for East Asian wide and fullwidth characters (a
/// Japanese `予定表` is six columns wide), one for the rest. An approximation of Unicode's
/// East_Asian_Width that covers the scripts mailbox and folder names use.
pub(super) fn width(text: &str) -> usize {
    text.chars()
        .map(|c| match u32::from(c) {
            0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x1F300..=0x1F64F
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        })
        .sum()
}

/// Exchange messages can span lines; a table cell cannot. Control characters are shown escaped.
pub(super) fn one_line(text: &str) -> String {
    printable(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `text` as it may reach a terminal: control characters (an escape sequence in a display name
/// would be run by the terminal) and invisible direction or width overrides are written as
/// `\u{1b}`. JSON and CSV reports keep the value as it is.
pub(super) fn printable(text: &str) -> String {
    if !text.chars().any(hidden) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(u32::from(c), 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2069 | 0xFEFF)
}

/// `text` cut to at most `max` columns, ending in `…` when cut.
pub(super) fn truncate(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = width(c.encode_utf8(&mut [0; 4]));
        if used + w > max.saturating_sub(1) {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Record, Setting};

    #[test]
    fn wide_characters_take_two_columns() {
        assert_eq!(width("Calendar"), 8);
        assert_eq!(width("予定表"), 6);
        assert_eq!(width("Календарь"), 9);
        assert_eq!(width("캘린더"), 6);
    }

    #[test]
    fn settings_come_first_and_line_up() {
        let mut tally = Tally::default();
        for (name, value) in [
            ("Tenant ID", "11111111-aaaa"),
            ("Client ID", "22222222-bbbb"),
            ("EWS URL", "https://x"),
        ] {
            tally.add(&Record::Setting(Setting {
                name: name.into(),
                value: value.into(),
                note: None,
            }));
        }
        let footer = Footer {
            script: "app-registration".into(),
            journal: "/w/j.jsonl".into(),
            report_file: None,
            sim_state: None,
        };
        let text = render(&tally, &footer);
        assert!(
            text.starts_with(
                "calperm run app-registration\n\nSettings for the connector:\n  Tenant ID  11111111-aaaa\n  \
                 Client ID  22222222-bbbb\n  EWS URL    https://x\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("\njournal: /w/j.jsonl\n"), "{text}");
    }
}
