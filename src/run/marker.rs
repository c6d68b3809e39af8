//! The record marker: a per-run random prefix that tells a record line from any other output.
//!
//! calperm passes it to the script as `-RecordMarker`; the script writes each record as
//! `<marker><json>` on one stdout line (records.rs). The random part means no banner, warning,
//! sign-in prompt or mailbox name can be mistaken for a record, even one that quotes a marker of
//! an earlier run.

use crate::records::Record;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// `##calperm:<16 hex digits>## ` (with the trailing space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker(String);

/// What one line of the script's standard output is.
#[derive(Debug, PartialEq)]
pub(crate) enum Line {
    /// Not a record: passed through to the user unchanged.
    Text,
    /// A record.
    Record(Box<Record>),
    /// Starts with the marker, but the rest is not a record.
    Unreadable,
}

impl Marker {
    /// A fresh marker. The randomness comes from std's `RandomState` (seeded by the operating
    /// system), mixed with the time and the process id.
    pub(crate) fn random() -> Marker {
        let mut hasher = RandomState::new().build_hasher();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        Marker::from_bits(hasher.finish())
    }

    fn from_bits(bits: u64) -> Marker {
        Marker(format!("##calperm:{bits:016x}## "))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Classifies one output line (with or without its line ending).
    pub(crate) fn classify(&self, line: &[u8]) -> Line {
        let Some(rest) = line.strip_prefix(self.0.as_bytes()) else {
            return Line::Text;
        };
        let json = trim_line_ending(rest);
        match serde_json::from_slice::<Record>(json) {
            Ok(record) => Line::Record(Box::new(record)),
            Err(_) => Line::Unreadable,
        }
    }
}

/// `line` without a trailing `\n` or `\r\n` (Windows PowerShell writes CRLF).
pub(crate) fn trim_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Outcome;

    fn marker() -> Marker {
        Marker::from_bits(0x0123_4567_89ab_cdef)
    }

    #[test]
    fn has_the_documented_shape() {
        assert_eq!(marker().as_str(), "##calperm:0123456789abcdef## ");
        let random = Marker::random();
        let re = regex::Regex::new(r"^##calperm:[0-9a-f]{16}## $").unwrap();
        assert!(re.is_match(random.as_str()), "{}", random.as_str());
    }

    #[test]
    fn two_markers_differ() {
        assert_ne!(Marker::random(), Marker::random());
    }

    #[test]
    fn a_marked_line_is_a_record() {
        let line = b"##calperm:0123456789abcdef## {\"type\":\"mailbox\",\"mailbox\":\"a@x\",\"outcome\":\"added\"}\r\n";
        match marker().classify(line) {
            Line::Record(record) => match *record {
                Record::Mailbox(m) => {
                    assert_eq!(m.mailbox, "a@x");
                    assert_eq!(m.outcome, Outcome::Added);
                }
                other => panic!("mailbox expected, got {other:?}"),
            },
            other => panic!("record expected, got {other:?}"),
        }
    }

    #[test]
    fn other_lines_are_text() {
        for line in [
            &b"WARNING: something\n"[..],
            b"{\"type\":\"end\",\"exitCode\":0}\n",
            b"##calperm:fedcba9876543210## {\"type\":\"end\",\"exitCode\":0}\n",
            b"  ##calperm:0123456789abcdef## {\"type\":\"end\",\"exitCode\":0}\n",
            b"##calperm:0123456789abcdef##{\"type\":\"end\",\"exitCode\":0}\n",
            b"",
            b"\xff\xfe not utf-8\n",
        ] {
            assert_eq!(
                marker().classify(line),
                Line::Text,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn a_marked_line_that_is_not_a_record_is_unreadable() {
        for rest in [
            &b"{\"type\":\"mailbox\""[..],
            b"not json",
            b"{\"type\":\"no-such-type\"}",
            b"{\"type\":\"mailbox\",\"mailbox\":\"a@x\",\"outcome\":\"exploded\"}",
            b"\xff\xfe",
            b"",
        ] {
            let mut line = marker().as_str().as_bytes().to_vec();
            line.extend_from_slice(rest);
            line.push(b'\n');
            assert_eq!(
                marker().classify(&line),
                Line::Unreadable,
                "{}",
                String::from_utf8_lossy(&line)
            );
        }
    }
}
