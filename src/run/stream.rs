//! Reading the script's standard output as it arrives and sorting each line into text, record or
//! unreadable record. Nothing is collected: every line goes to the handler and is forgotten, so
//! memory does not grow with the output.
//!
//! Text is passed on as soon as it is known to be text, even before its line ends: a prompt
//! such as `Read-Host`'s `Password: ` or `Get-Credential`'s has no newline until the user answers
//! it, so it must not wait for one. Only a line that may still turn out to be a record (it starts
//! with the marker, or with part of it) is held back until it is complete.

use super::marker::{Line, Marker};
use crate::records::Record;
use std::io::{self, Read};

/// What happens to each kind of line.
pub(crate) trait Handler {
    /// Bytes of a line that is not a record, exactly as read (a line may come in several pieces;
    /// its line ending is in the last one).
    fn text(&mut self, raw: &[u8]);
    /// A record.
    fn record(&mut self, record: Record);
    /// A marked line that is not a record; `number` counts output lines from 1.
    fn unreadable(&mut self, number: u64, raw: &[u8]);
}

const BOM: &[u8] = crate::render::BOM.as_bytes();

/// Reads `reader` to its end, handing each line to `handler`. Returns the number of lines.
pub(crate) fn pump(
    mut reader: impl Read,
    marker: &Marker,
    handler: &mut impl Handler,
) -> io::Result<u64> {
    let mut chunk = vec![0u8; 64 * 1024];
    // The start of a line that may still be a record.
    let mut pending: Vec<u8> = Vec::new();
    // The current line is text and has been passed on in part.
    let mut in_text = false;
    let mut lines = 0u64;
    loop {
        let read = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        let mut data = &chunk[..read];
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    let (line, rest) = data.split_at(end + 1);
                    data = rest;
                    lines += 1;
                    if in_text {
                        handler.text(line);
                        in_text = false;
                    } else if pending.is_empty() {
                        dispatch(line, lines, marker, handler);
                    } else {
                        pending.extend_from_slice(line);
                        dispatch(&pending, lines, marker, handler);
                        clear(&mut pending);
                    }
                }
                None => {
                    if in_text {
                        handler.text(data);
                    } else {
                        pending.extend_from_slice(data);
                        if !may_be_record(&pending, lines == 0, marker) {
                            handler.text(&pending);
                            clear(&mut pending);
                            in_text = true;
                        }
                    }
                    data = &[];
                }
            }
        }
    }
    if !pending.is_empty() {
        // The last line, without a line ending.
        lines += 1;
        dispatch(&pending, lines, marker, handler);
    } else if in_text {
        lines += 1;
    }
    Ok(lines)
}

/// One complete line (line ending included, if it had one).
fn dispatch(raw: &[u8], number: u64, marker: &Marker, handler: &mut impl Handler) {
    // A UTF-8 byte-order mark before the first line must not hide the first record.
    let line = match (number, raw.strip_prefix(BOM)) {
        (1, Some(rest)) => rest,
        _ => raw,
    };
    match marker.classify(line) {
        Line::Text => handler.text(raw),
        Line::Record(record) => handler.record(*record),
        Line::Unreadable => handler.unreadable(number, raw),
    }
}

/// Whether an unfinished line could still be a record: it starts with the marker, or is the
/// beginning of one.
fn may_be_record(start: &[u8], first_line: bool, marker: &Marker) -> bool {
    let mut start = start;
    if first_line {
        if BOM.starts_with(start) {
            return true;
        }
        start = start.strip_prefix(BOM).unwrap_or(start);
    }
    let marker = marker.as_str().as_bytes();
    if start.len() >= marker.len() {
        start.starts_with(marker)
    } else {
        marker.starts_with(start)
    }
}

/// Empties `buffer`, and lets go of the memory one enormous line took.
fn clear(buffer: &mut Vec<u8>) {
    buffer.clear();
    if buffer.capacity() > 1 << 20 {
        *buffer = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Event {
        Text(String),
        Record(&'static str),
        Unreadable(u64, String),
    }

    #[derive(Default)]
    struct Collect(Vec<Event>);

    impl Collect {
        /// Text pieces joined, records and unreadable lines as they came.
        fn text(&self) -> String {
            self.0
                .iter()
                .filter_map(|e| {
                    if let Event::Text(t) = e {
                        Some(t.as_str())
                    } else {
                        None
                    }
                })
                .collect()
        }
        fn records(&self) -> Vec<&'static str> {
            self.0
                .iter()
                .filter_map(|e| {
                    if let Event::Record(r) = e {
                        Some(*r)
                    } else {
                        None
                    }
                })
                .collect()
        }
        fn unreadable(&self) -> Vec<(u64, String)> {
            self.0
                .iter()
                .filter_map(|e| {
                    if let Event::Unreadable(n, l) = e {
                        Some((*n, l.clone()))
                    } else {
                        None
                    }
                })
                .collect()
        }
    }

    impl Handler for Collect {
        fn text(&mut self, raw: &[u8]) {
            self.0
                .push(Event::Text(String::from_utf8_lossy(raw).into_owned()));
        }
        fn record(&mut self, record: Record) {
            self.0.push(Event::Record(match record {
                Record::Start(_) => "start",
                Record::End(_) => "end",
                _ => "other",
            }));
        }
        fn unreadable(&mut self, number: u64, raw: &[u8]) {
            self.0.push(Event::Unreadable(
                number,
                String::from_utf8_lossy(raw).into_owned(),
            ));
        }
    }

    /// Hands out `data` in pieces of `size` bytes, as a pipe may.
    struct Pieces<'a> {
        data: &'a [u8],
        size: usize,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.size.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn sample(m: &str) -> String {
        format!(
            "\u{FEFF}{m}{{\"type\":\"start\",\"script\":\"grant\"}}\nbanner line\r\n{m}{{broken\n\
             {m}{{\"type\":\"end\",\"exitCode\":0}}\nlast line without newline"
        )
    }

    #[test]
    fn sorts_lines_and_keeps_text_byte_for_byte_whatever_the_pieces() {
        let marker = Marker::random();
        let m = marker.as_str();
        let output = sample(m);
        for size in [1, 2, 3, 7, 31, 64 * 1024] {
            let mut collect = Collect::default();
            let lines = pump(
                Pieces {
                    data: output.as_bytes(),
                    size,
                },
                &marker,
                &mut collect,
            )
            .unwrap();
            assert_eq!(lines, 5, "pieces of {size}");
            assert_eq!(collect.records(), ["start", "end"], "pieces of {size}");
            assert_eq!(
                collect.text(),
                "banner line\r\nlast line without newline",
                "pieces of {size}"
            );
            assert_eq!(
                collect.unreadable(),
                [(3, format!("{m}{{broken\n"))],
                "pieces of {size}"
            );
        }
    }

    #[test]
    fn a_prompt_is_passed_on_before_its_line_ends() {
        let marker = Marker::random();
        let mut collect = Collect::default();
        struct Prompt(u8);
        impl Read for Prompt {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0 += 1;
                let piece: &[u8] = match self.0 {
                    1 => b"Password for monitor@contoso.com: ",
                    2 => b"\n",
                    _ => b"",
                };
                buf[..piece.len()].copy_from_slice(piece);
                Ok(piece.len())
            }
        }
        pump(Prompt(0), &marker, &mut collect).unwrap();
        assert_eq!(
            collect.0,
            [
                Event::Text("Password for monitor@contoso.com: ".into()),
                Event::Text("\n".into())
            ]
        );
    }

    #[test]
    fn the_start_of_a_marker_is_held_until_the_line_is_known() {
        let marker = Marker::random();
        let m = marker.as_str();
        // "##calp" (the first piece) could become a record; "##cat" cannot.
        let output = format!("{m}|\n##cat\n");
        let mut collect = Collect::default();
        pump(
            Pieces {
                data: output.as_bytes(),
                size: 6,
            },
            &marker,
            &mut collect,
        )
        .unwrap();
        assert_eq!(collect.0[0], Event::Unreadable(1, format!("{m}|\n")));
        assert_eq!(collect.text(), "##cat\n");
    }

    #[test]
    fn invalid_utf8_text_passes_through() {
        let marker = Marker::random();
        let mut collect = Collect::default();
        pump(&b"caf\xe9\n"[..], &marker, &mut collect).unwrap();
        assert_eq!(collect.0.len(), 1);
        let Event::Text(_) = &collect.0[0] else {
            panic!("text expected")
        };
    }
}
