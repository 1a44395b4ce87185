//! One line -> its CSV fields, RFC 4180 quoting as Asterisk's cdr_csv
//! writes it (`"` around text, `""` for a quote inside).
//!
//! Built on `csv-core`, the engine of the `csv` crate, because framing is
//! already done: a `csv::Reader` would want to own the stream and its
//! offsets. The buffers are reused, so splitting allocates nothing per line
//! once warmed up, and most fields are not even copied: they are ranges of
//! the line.

use super::swar;

/// Reusable splitter; knows where the fields of the last line are.
#[derive(Debug)]
pub struct Splitter {
    reader: csv_core::Reader,
    /// Fields that had to be unescaped (a `""` inside, or csv-core's output).
    out: Vec<u8>,
    /// Where each field of the last line is.
    spans: Vec<Span>,
    /// csv-core's field ends in `out` (scratch).
    ends: Vec<usize>,
}

/// One field: a range of the line, or of `out` when it was unescaped.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    copied: bool,
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
            spans: Vec::new(),
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
        // A line the fast path splits has every quote paired.
        if self.split_simple(line) {
            return Ok(self.spans.len());
        }
        // csv-core is lenient and would silently close an open quote at the
        // end of input; an odd quote count is exactly that case.
        if memchr::memchr_iter(b'"', line).count() % 2 == 1 {
            return Err(SplitError::UnbalancedQuotes);
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
        self.spans.clear();
        let mut start = 0;
        for &end in &self.ends[..nends] {
            self.spans.push(Span {
                start,
                end,
                copied: true,
            });
            start = end;
        }
        nends
    }

    /// The common case without csv-core's byte-at-a-time state machine:
    /// every field either unquoted without a `"`, or quoted (cdr_csv's
    /// lines, nearly always). Returns false, buffers in any state, for
    /// anything else (text after a closing quote, a quote inside an
    /// unquoted field): csv-core splits that.
    fn split_simple(&mut self, line: &[u8]) -> bool {
        self.out.clear();
        self.spans.clear();
        let mut at = 0;
        loop {
            let after = if line.get(at) == Some(&b'"') {
                match self.quoted(line, at + 1) {
                    Some(after) => after,
                    None => return false,
                }
            } else {
                let end = swar::find2(line, at, b',', b'"').unwrap_or(line.len());
                self.spans.push(Span {
                    start: at,
                    end,
                    copied: false,
                });
                end
            };
            match line.get(after) {
                None => return true,
                Some(b',') => at = after + 1,
                Some(_) => return false,
            }
        }
    }

    /// The quoted field whose text starts at `body`; returns the index
    /// after its closing quote, `None` if it never closes. Only a field
    /// with `""` inside (every cdr_csv clid) is copied, unescaped.
    fn quoted(&mut self, line: &[u8], body: usize) -> Option<usize> {
        let mut copied = None;
        let mut at = body;
        loop {
            let quote = swar::find(line, at, b'"')?;
            if line.get(quote + 1) == Some(&b'"') {
                copied.get_or_insert(self.out.len());
                // Up to and with the first quote of the pair.
                self.out.extend_from_slice(&line[at..=quote]);
                at = quote + 2;
                continue;
            }
            let span = match copied {
                Some(start) => {
                    self.out.extend_from_slice(&line[at..quote]);
                    Span {
                        start,
                        end: self.out.len(),
                        copied: true,
                    }
                }
                None => Span {
                    start: body,
                    end: quote,
                    copied: false,
                },
            };
            self.spans.push(span);
            return Some(quote + 1);
        }
    }

    /// Cut `line` into fixed-width fields at `ranges` (offset, length),
    /// trimmed of spaces; columns starting past the end are empty. Returns
    /// how many columns start inside the line, and whether it goes on past
    /// the layout. Leading NULs (Avaya CM ends each record with three, for
    /// adjuncts that want them) are not part of the record.
    pub fn split_fixed(&mut self, line: &[u8], ranges: &[(usize, usize)]) -> (usize, bool) {
        let start_nuls = line.iter().take_while(|&&b| b == 0).count();
        let layout_end = ranges
            .iter()
            .map(|&(o, l)| o.saturating_add(l))
            .max()
            .unwrap_or(0);
        let longer = line.trim_ascii_end().len() > start_nuls.saturating_add(layout_end);
        self.spans.clear();
        let mut started = 0;
        for &(offset, len) in ranges {
            let start = start_nuls.saturating_add(offset);
            let span = if start < line.len() {
                started += 1;
                let end = start.saturating_add(len).min(line.len());
                let field = &line[start..end];
                let trimmed = field.trim_ascii_start();
                let start = end - trimmed.len();
                Span {
                    start,
                    end: start + trimmed.trim_ascii_end().len(),
                    copied: false,
                }
            } else {
                Span {
                    start: 0,
                    end: 0,
                    copied: false,
                }
            };
            self.spans.push(span);
        }
        (started, longer)
    }

    /// The unescaped bytes of field `index` of the last split `line` (the
    /// same bytes that were split).
    pub fn field<'a>(&'a self, line: &'a [u8], index: usize) -> &'a [u8] {
        let span = self.spans[index];
        let from = if span.copied { &self.out[..] } else { line };
        &from[span.start..span.end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &[u8]) -> Result<Vec<String>, SplitError> {
        let mut splitter = Splitter::default();
        let n = splitter.split(line)?;
        Ok((0..n)
            .map(|i| String::from_utf8_lossy(splitter.field(line, i)).into_owned())
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
        assert_eq!(splitter.field(b"\"x\"", 0), b"x");
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
        for line in lines {
            let collect = |s: &Splitter, n: usize| {
                (0..n)
                    .map(|i| s.field(line, i).to_vec())
                    .collect::<Vec<_>>()
            };
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
