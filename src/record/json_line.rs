//! The common CSV line written as its JSON object in one pass, without
//! splitting it first: each field is found, typed and copied as the scan
//! reaches it, and a quoted field that needs no escape is copied with its
//! quotes, which are the JSON string's. This is what a CDR line nearly
//! always is, and what `--format json` spends its time on.
//!
//! Anything else is left to the general path (`csv.rs` and
//! [`ObjectWriter::write`]), which decides rejects: a `\` or control byte,
//! a `""` in a field that is not text or is the key, quoting only csv-core
//! settles, a field count out of range, a value that is not of its type.
//! So the two paths cannot disagree on what is rejected, and a test holds
//! them to the same output.

use std::ops::Range;

use super::columns::Kind;
use super::json::{MetaFields, ObjectWriter};
use super::json_text;
use super::swar::find_special;
use super::time::TimeFormat;

impl ObjectWriter {
    /// Write the object of the CSV `line` (UTF-8) into `out`, the column
    /// `key` (an index) giving the key; the key's range in `line`, or
    /// `None` where the general path must map the line instead.
    pub fn write_line(
        &self,
        line: &[u8],
        key: Option<usize>,
        meta: Option<MetaFields<'_>>,
        out: &mut Vec<u8>,
    ) -> Option<Option<Range<usize>>> {
        self.start(out);
        let mut key_range = None;
        let mut at = 0;
        let layout = self.columns.columns.iter().zip(&self.prefixes);
        for (index, (column, prefix)) in layout.enumerate() {
            out.push(if index == 0 { b'{' } else { b',' });
            out.extend_from_slice(prefix);
            let (value, end) = if line.get(at) == Some(&b'"') {
                let (value, end) = self.quoted(line, at, column.kind, key == Some(index), out)?;
                (value, end + 1)
            } else {
                let end = find_special(line, at);
                self.value(column.kind, &line[at..end], out)?;
                (at..end, end)
            };
            if key == Some(index) {
                key_range = Some(value);
            }
            match line.get(end) {
                None if index + 1 >= self.columns.required => {
                    self.finish(meta, None, out);
                    return Some(key_range);
                }
                Some(b',') => at = end + 1,
                _ => return None,
            }
        }
        None
    }

    /// The quoted field whose `"` is at `open`: its value written, its
    /// text's range and where its closing quote is. Text with `""`
    /// inside is written with `\"`; any other field with one is left to
    /// the general path, as is the key.
    fn quoted(
        &self,
        line: &[u8],
        open: usize,
        kind: Kind,
        is_key: bool,
        out: &mut Vec<u8>,
    ) -> Option<(Range<usize>, usize)> {
        let body = open + 1;
        // Written up to here (after a `""`), when the field is not one copy.
        let mut copied = None;
        let mut at = body;
        let close = loop {
            let found = find_special(line, at);
            match line.get(found)? {
                b',' => at = found + 1,
                b'"' if line.get(found + 1) == Some(&b'"') => {
                    if kind != Kind::Text || is_key {
                        return None;
                    }
                    let from = copied.unwrap_or(open);
                    out.extend_from_slice(&line[from..found]);
                    out.extend_from_slice(b"\\\"");
                    copied = Some(found + 2);
                    at = found + 2;
                }
                b'"' => break found,
                _ => return None,
            }
        };
        match copied {
            // `"text"` is the JSON string already.
            None if kind == Kind::Text => out.extend_from_slice(&line[open..=close]),
            None => self.value(kind, &line[body..close], out)?,
            Some(from) => out.extend_from_slice(&line[from..=close]),
        }
        Some((body..close, close))
    }

    /// `text` (no `"`, `\` or control byte in it) as a value of `kind`;
    /// `None` when it is not one.
    fn value(&self, kind: Kind, text: &[u8], out: &mut Vec<u8>) -> Option<()> {
        match kind {
            Kind::Text => json_text::plain_string(out, text),
            _ if text.is_empty() => out.extend_from_slice(b"null"),
            Kind::Int => json_text::integer(out, text)?,
            Kind::DateTime if self.time.format() == &TimeFormat::Keep => {
                json_text::plain_string(out, text)
            }
            Kind::DateTime => {
                let text = std::str::from_utf8(text).ok()?;
                self.time.write(text, out).ok()?
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::csv::Splitter;
    use crate::record::{Columns, TimeConv};

    /// The general path's object and key for `line`, or `None` for a reject.
    fn general(writer: &ObjectWriter, line: &[u8], key: usize) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut splitter = Splitter::default();
        let found = splitter.split(line).ok()?;
        let columns = &writer.columns;
        if found < columns.required || found > columns.columns.len() {
            return None;
        }
        let mut out = Vec::new();
        let fields = (0..found).map(|i| splitter.field(line, i));
        writer.write(fields, None, None, &mut out).ok()?;
        let key = if key < found {
            splitter.field(line, key)
        } else {
            b""
        };
        Some((out, key.to_vec()))
    }

    /// Every sample line, and each with every byte in turn replaced by
    /// one that matters to CSV or JSON: where the one-pass writer takes a
    /// line, it writes what the general path writes, key included.
    #[test]
    fn one_pass_and_general_path_agree() {
        let sample = include_str!("../../examples/Master.csv");
        let mut lines: Vec<Vec<u8>> = sample.lines().map(|l| l.as_bytes().to_vec()).collect();
        let originals = lines.clone();
        for line in &originals {
            for at in 0..line.len() {
                for byte in [
                    b'"', b',', b'\\', b'\r', b'\t', 0x01, b'0', b'-', b' ', b'x',
                ] {
                    let mut changed = line.clone();
                    changed[at] = byte;
                    lines.push(changed);
                }
            }
            lines.push(line[..line.len() / 2].to_vec());
            lines.push([line.as_slice(), b",extra"].concat());
        }
        lines.extend([&b""[..], b",", b"\"\"", b"\"\"\"\"", b"a,\"b\"\"\",c"].map(<[u8]>::to_vec));
        let (mut taken, mut declined) = (0, 0);
        for time in ["keep", "epoch"] {
            let columns = Columns::preset("asterisk-cdr").unwrap();
            let time = TimeFormat::parse(time).unwrap();
            let time = TimeConv::new(time, columns.time_input, Some("UTC"), None).unwrap();
            let writer = ObjectWriter::new(columns, time, false);
            for key in [1, 4, 12] {
                for line in &lines {
                    let mut out = Vec::new();
                    let Some(range) = writer.write_line(line, Some(key), None, &mut out) else {
                        declined += 1;
                        continue;
                    };
                    taken += 1;
                    let fast = (out, range.map_or(vec![], |r| line[r].to_vec()));
                    let shown = String::from_utf8_lossy(line);
                    assert_eq!(Some(fast), general(&writer, line, key), "{shown}");
                }
            }
        }
        // Both paths were walked, many times each.
        assert!(
            taken > 1000 && declined > 1000,
            "{taken} taken, {declined} declined"
        );
    }

    /// The sample lines are the common kind: none is left to the general path.
    #[test]
    fn cdr_csv_lines_take_the_one_pass_writer() {
        let columns = Columns::preset("asterisk-cdr").unwrap();
        let time = TimeConv::new(TimeFormat::Keep, columns.time_input, None, None).unwrap();
        let writer = ObjectWriter::new(columns, time, true);
        for line in include_str!("../../examples/Master.csv").lines() {
            let mut out = Vec::new();
            assert!(
                writer
                    .write_line(line.as_bytes(), None, None, &mut out)
                    .is_some(),
                "{line}"
            );
        }
    }
}
