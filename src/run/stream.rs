//! Reading the script's standard output line by line, as it arrives, and sorting each line into
//! text, record or unreadable record. Nothing is collected: every line goes to the handler and
//! is forgotten, so memory does not grow with the output.

use super::marker::{Line, Marker};
use crate::records::Record;
use std::io::{self, BufRead};

/// What happens to each kind of line.
pub(crate) trait Handler {
    /// A line that is not a record, exactly as read (line ending included).
    fn text(&mut self, raw: &[u8]);
    /// A record.
    fn record(&mut self, record: Record);
    /// A marked line that is not a record; `number` counts output lines from 1.
    fn unreadable(&mut self, number: u64, raw: &[u8]);
}

/// Reads `reader` to its end, handing each line to `handler`. Returns the number of lines.
pub(crate) fn pump(
    mut reader: impl BufRead,
    marker: &Marker,
    handler: &mut impl Handler,
) -> io::Result<u64> {
    let mut buffer = Vec::with_capacity(4096);
    let mut number = 0u64;
    loop {
        buffer.clear();
        if reader.read_until(b'\n', &mut buffer)? == 0 {
            return Ok(number);
        }
        number += 1;
        // A UTF-8 byte-order mark before the first line must not hide the first record.
        let line = match (number, buffer.strip_prefix(crate::render::BOM.as_bytes())) {
            (1, Some(rest)) => rest,
            _ => &buffer[..],
        };
        match marker.classify(line) {
            Line::Text => handler.text(&buffer),
            Line::Record(record) => handler.record(*record),
            Line::Unreadable => handler.unreadable(number, &buffer),
        }
        // Keep the buffer from staying huge after one enormous line.
        if buffer.capacity() > 1 << 20 {
            buffer = Vec::with_capacity(4096);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        text: Vec<u8>,
        records: Vec<Record>,
        unreadable: Vec<(u64, String)>,
    }

    impl Handler for Collect {
        fn text(&mut self, raw: &[u8]) {
            self.text.extend_from_slice(raw);
        }
        fn record(&mut self, record: Record) {
            self.records.push(record);
        }
        fn unreadable(&mut self, number: u64, raw: &[u8]) {
            self.unreadable
                .push((number, String::from_utf8_lossy(raw).into_owned()));
        }
    }

    #[test]
    fn sorts_lines_and_keeps_text_byte_for_byte() {
        let marker = Marker::random();
        let m = marker.as_str();
        let output = format!(
            "\u{FEFF}{m}{{\"type\":\"start\",\"script\":\"grant\"}}\nbanner line\r\n{m}{{broken\n\
             {m}{{\"type\":\"end\",\"exitCode\":0}}\nlast line without newline"
        );
        let mut collect = Collect::default();
        let lines = pump(output.as_bytes(), &marker, &mut collect).unwrap();
        assert_eq!(lines, 5);
        assert_eq!(collect.records.len(), 2);
        assert!(matches!(collect.records[0], Record::Start(_)));
        assert!(matches!(collect.records[1], Record::End(_)));
        assert_eq!(collect.text, b"banner line\r\nlast line without newline");
        assert_eq!(collect.unreadable, [(3, format!("{m}{{broken\n"))]);
    }

    #[test]
    fn invalid_utf8_text_passes_through() {
        let marker = Marker::random();
        let mut collect = Collect::default();
        pump(&b"caf\xe9\n"[..], &marker, &mut collect).unwrap();
        assert_eq!(collect.text, b"caf\xe9\n");
    }
}
