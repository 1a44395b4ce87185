//! One line -> its CSV fields, RFC 4180 quoting as Asterisk's cdr_csv
//! writes it (`"` around text, `""` for a quote inside).
//!
//! Built on `csv-core`, the engine of the `csv` crate, because framing is
//! already done: a `csv::Reader` would want to own the stream and its
//! offsets. The buffers are reused, so splitting allocates nothing per line
//! once warmed up.

use std::ops::Range;

/// Reusable splitter; holds the unescaped fields of the last line.
#[derive(Debug)]
pub struct Splitter {
    reader: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
}

/// Why a line is not one CSV record.
#[derive(Debug, PartialEq, Eq)]
pub enum SplitError {
    /// An odd number of `"`: a quoted field never closes.
    UnbalancedQuotes,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter {
            // Framing removed the `\n`; a bare `\r` inside a line is data,
            // not a record end (csv-core's default would cut the line there).
            reader: csv_core::ReaderBuilder::new()
                .terminator(csv_core::Terminator::Any(b'\n'))
                .build(),
            out: Vec::new(),
            ends: Vec::new(),
        }
    }
}

/// A fresh splitter: a cloned `csv_core::Reader` mis-parses (seen with
/// csv-core 0.1: every line became one field), and the buffers are scratch.
impl Clone for Splitter {
    fn clone(&self) -> Self {
        Splitter::default()
    }
}

impl Splitter {
    /// Split `line` (no newline) into fields, replacing the previous ones.
    pub fn split(&mut self, line: &[u8]) -> Result<usize, SplitError> {
        // csv-core is lenient and would silently close an open quote at the
        // end of input; an odd quote count is exactly that case.
        if bytecount_quotes(line) % 2 == 1 {
            return Err(SplitError::UnbalancedQuotes);
        }
        if self.split_simple(line) {
            return Ok(self.ends.len());
        }
        Ok(self.split_quoted(line))
    }

    /// Split with csv-core: every quoting case RFC 4180 allows.
    fn split_quoted(&mut self, line: &[u8]) -> usize {
        self.reader.reset();
        if self.out.len() < line.len() {
            self.out.resize(line.len(), 0);
        }
        if self.ends.is_empty() {
            self.ends.resize(32, 0);
        }
        let (mut input, mut nout, mut nends) = (line, 0, 0);
        loop {
            let (res, nin, o, e) =
                self.reader
                    .read_record(input, &mut self.out[nout..], &mut self.ends[nends..]);
            input = &input[nin..];
            nout += o;
            nends += e;
            match res {
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull => {
                    let len = self.out.len() * 2;
                    self.out.resize(len, 0);
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len() * 2;
                    self.ends.resize(len, 0);
                }
                csv_core::ReadRecordResult::Record | csv_core::ReadRecordResult::End => break,
            }
        }
        // Field ends are relative to the start of this record's output.
        nends
    }

    /// The common case without csv-core's byte-at-a-time state machine:
    /// every field either unquoted without a `"`, or quoted (cdr_csv's
    /// lines, nearly always). Returns false, buffers in any state, for
    /// anything else (text after a closing quote, a quote inside an
    /// unquoted field): csv-core splits that.
    fn split_simple(&mut self, line: &[u8]) -> bool {
        self.out.clear();
        self.ends.clear();
        let mut rest = line;
        loop {
            let after = if let Some(mut quoted) = rest.strip_prefix(b"\"") {
                // `""` inside is one quote (every cdr_csv clid has some).
                loop {
                    let Some(close) = memchr::memchr(b'"', quoted) else {
                        return false;
                    };
                    let escaped = quoted.get(close + 1) == Some(&b'"');
                    self.out
                        .extend_from_slice(&quoted[..close + usize::from(escaped)]);
                    quoted = &quoted[close + 1 + usize::from(escaped)..];
                    if !escaped {
                        break quoted;
                    }
                }
            } else {
                let end = memchr::memchr2(b',', b'"', rest).unwrap_or(rest.len());
                self.out.extend_from_slice(&rest[..end]);
                &rest[end..]
            };
            self.ends.push(self.out.len());
            match after.split_first() {
                None => return true,
                Some((b',', next)) => rest = next,
                Some(_) => return false,
            }
        }
    }

    /// Cut `line` into fixed-width fields at `ranges` (offset, length),
    /// trimmed of spaces; columns starting past the end are empty. Returns
    /// how many columns start inside the line. Leading NULs (Avaya CM sends
    /// some after its connect banner) are not part of the record.
    pub fn split_fixed(&mut self, line: &[u8], ranges: &[(usize, usize)]) -> usize {
        let start_nuls = line.iter().take_while(|&&b| b == 0).count();
        let line = &line[start_nuls..];
        self.out.clear();
        self.ends.clear();
        let mut started = 0;
        for &(offset, len) in ranges {
            if offset < line.len() {
                started += 1;
                let field = &line[offset..(offset + len).min(line.len())];
                self.out.extend_from_slice(field.trim_ascii());
            }
            self.ends.push(self.out.len());
        }
        started
    }

    /// The unescaped bytes of field `index` of the last split line.
    pub fn field(&self, index: usize) -> &[u8] {
        &self.out[self.range(index)]
    }

    fn range(&self, index: usize) -> Range<usize> {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        start..self.ends[index]
    }
}

fn bytecount_quotes(line: &[u8]) -> usize {
    memchr::memchr_iter(b'"', line).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &[u8]) -> Result<Vec<String>, SplitError> {
        let mut splitter = Splitter::default();
        let n = splitter.split(line)?;
        Ok((0..n)
            .map(|i| String::from_utf8_lossy(splitter.field(i)).into_owned())
            .collect())
    }

    #[test]
    fn asterisk_quoting() {
        let line = br#""","100","""Ivan Petrov"" <100>","PJSIP/101,30,tT",162,"""#;
        assert_eq!(
            fields(line).unwrap(),
            [
                "",
                "100",
                "\"Ivan Petrov\" <100>",
                "PJSIP/101,30,tT",
                "162",
                ""
            ]
        );
    }

    #[test]
    fn clones_split_correctly() {
        let mut warm = Splitter::default();
        warm.split(b"x,y").unwrap();
        assert_eq!(warm.clone().split(b"a,b,c").unwrap(), 3);
        assert_eq!(Splitter::default().clone().split(b"a,b,c").unwrap(), 3);
    }

    #[test]
    fn reuse_does_not_leak_fields_between_lines() {
        let mut splitter = Splitter::default();
        assert_eq!(splitter.split(b"a,b,c").unwrap(), 3);
        assert_eq!(splitter.split(b"\"x\"").unwrap(), 1);
        assert_eq!(splitter.field(0), b"x");
    }

    #[test]
    fn the_fast_path_splits_as_csv_core_does() {
        let lines: [&[u8]; 14] = [
            b"a,b",
            b"\"a\",b",
            b"a\"b\",c",
            b"\"a\"b,c",
            b"\"a\"\"b\"",
            b",",
            b",,",
            b"\"\",\"\"",
            b"a,",
            b" \"a\",b",
            b"\"a,b\",\"c\"",
            b"\"\"\"\"",
            b"\"x\" ,y",
            b"\"\xd0\x98\xd0\xb2\",1",
        ];
        let collect =
            |s: &Splitter, n: usize| (0..n).map(|i| s.field(i).to_vec()).collect::<Vec<_>>();
        for line in lines {
            let (mut fast, mut core) = (Splitter::default(), Splitter::default());
            let n = fast.split(line).unwrap();
            let m = core.split_quoted(line);
            assert_eq!(
                collect(&fast, n),
                collect(&core, m),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn bare_carriage_return_is_data() {
        assert_eq!(fields(b"a\rb,c").unwrap(), ["a\rb", "c"]);
    }

    #[test]
    fn unbalanced_quote_is_an_error() {
        assert_eq!(fields(b"\"a,b"), Err(SplitError::UnbalancedQuotes));
    }

    #[test]
    fn many_and_long_fields_grow_buffers() {
        let line = vec!["\"0123456789\""; 100].join(",");
        let got = fields(line.as_bytes()).unwrap();
        assert_eq!(got.len(), 100);
        assert!(got.iter().all(|f| f == "0123456789"));
    }
}
