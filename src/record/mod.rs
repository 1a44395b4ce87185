//! Record mapping: a framed line -> the Kafka message value (and key).
//!
//! `raw` passes the bytes through untouched; `json` splits the line as CSV
//! and writes one JSON object keyed by column names. A line that cannot be
//! mapped is a [`Reject`] with a reason, never an error that stops the
//! pipeline: the caller routes it to the reject topic.

mod columns;
mod csv;

use std::fmt;
use std::io::Write as _;

use anyhow::{bail, Result};

pub use columns::{Columns, Kind};
use csv::{SplitError, Splitter};

/// The message format.
#[derive(Debug, Clone)]
pub enum Format {
    /// The line's bytes as received.
    Raw,
    /// CSV fields as a JSON object.
    Json(Columns),
}

/// Why a line was not mapped; it goes to the reject topic with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// More bytes than `--max-line-bytes`.
    TooLong {
        /// The line's full length.
        len: u64,
        /// The configured cap.
        max: usize,
    },
    /// The line is not one CSV record.
    BadCsv(&'static str),
    /// The field count is outside the layout.
    FieldCount {
        /// Fields found.
        found: usize,
        /// Fewest accepted.
        min: usize,
        /// Most accepted.
        max: usize,
    },
    /// A field is not valid UTF-8, so it cannot be a JSON string.
    NotUtf8(String),
    /// An `int` column holds something else.
    NotInteger(String),
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::TooLong { len, max } => write!(
                f,
                "line of {len} bytes exceeds --max-line-bytes {max}; value holds its first {max} bytes"
            ),
            Reject::BadCsv(why) => write!(f, "not a CSV record: {why}"),
            Reject::FieldCount { found, min, max } if min == max => {
                write!(f, "expected {min} fields, found {found}")
            }
            Reject::FieldCount { found, min, max } => {
                write!(f, "expected {min} to {max} fields, found {found}")
            }
            Reject::NotUtf8(column) => write!(f, "field `{column}` is not valid UTF-8"),
            Reject::NotInteger(column) => write!(f, "field `{column}` is not an integer"),
        }
    }
}

/// A mapped message, borrowing the line or the mapper's output buffer.
#[derive(Debug)]
pub struct Mapped<'a> {
    /// The message value.
    pub value: &'a [u8],
    /// The message key, if `--key` names a non-empty field.
    pub key: Option<&'a [u8]>,
}

/// Maps lines to messages; one per task, since it reuses buffers.
#[derive(Debug, Clone)]
pub struct Mapper {
    format: Format,
    /// Column index of `--key`.
    key: Option<usize>,
    /// `"name":` for each column, JSON-escaped once up front.
    prefixes: Vec<Vec<u8>>,
    splitter: Splitter,
    out: Vec<u8>,
}

impl Mapper {
    /// A mapper for `format`, keyed by the column named `key`.
    pub fn new(format: Format, key: Option<&str>) -> Result<Self> {
        let (key, prefixes) = match (&format, key) {
            (Format::Raw, Some(_)) => bail!("--key needs --format json"),
            (Format::Raw, None) => (None, Vec::new()),
            (Format::Json(columns), key) => {
                let key = match key {
                    None => None,
                    Some(name) => match columns.index_of(name) {
                        Some(index) => Some(index),
                        None => bail!("--key {name}: no such column"),
                    },
                };
                let prefixes = columns
                    .columns
                    .iter()
                    .map(|c| {
                        let mut p = serde_json::to_vec(&c.name).expect("a str always serializes");
                        p.push(b':');
                        p
                    })
                    .collect();
                (key, prefixes)
            }
        };
        Ok(Mapper {
            format,
            key,
            prefixes,
            splitter: Splitter::default(),
            out: Vec::new(),
        })
    }

    /// Map one line (without newline).
    pub fn map<'a>(&'a mut self, line: &'a [u8]) -> Result<Mapped<'a>, Reject> {
        let Format::Json(columns) = &self.format else {
            return Ok(Mapped {
                value: line,
                key: None,
            });
        };
        let found = self.splitter.split(line).map_err(|e| match e {
            SplitError::UnbalancedQuotes => Reject::BadCsv("unbalanced quotes"),
        })?;
        if found < columns.required || found > columns.columns.len() {
            return Err(Reject::FieldCount {
                found,
                min: columns.required,
                max: columns.columns.len(),
            });
        }
        self.out.clear();
        for (index, column) in columns.columns[..found].iter().enumerate() {
            self.out.push(if index == 0 { b'{' } else { b',' });
            self.out.extend_from_slice(&self.prefixes[index]);
            let field = self.splitter.field(index);
            let text =
                std::str::from_utf8(field).map_err(|_| Reject::NotUtf8(column.name.clone()))?;
            match column.kind {
                Kind::Text => serde_json::to_writer(&mut self.out, text)
                    .expect("writing to a Vec cannot fail"),
                Kind::Int if text.is_empty() => self.out.extend_from_slice(b"null"),
                Kind::Int => {
                    let n: i64 = text
                        .parse()
                        .map_err(|_| Reject::NotInteger(column.name.clone()))?;
                    write!(self.out, "{n}").expect("writing to a Vec cannot fail");
                }
            }
        }
        self.out.push(b'}');
        let key = self
            .key
            .filter(|&k| k < found)
            .map(|k| self.splitter.field(k))
            .filter(|k| !k.is_empty());
        Ok(Mapped {
            value: &self.out,
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdr_mapper(key: Option<&str>) -> Mapper {
        Mapper::new(Format::Json(Columns::preset("asterisk-cdr").unwrap()), key).unwrap()
    }

    #[test]
    fn raw_passes_bytes_through() {
        let mut mapper = Mapper::new(Format::Raw, None).unwrap();
        let m = mapper.map(b"\xff\x00abc").unwrap();
        assert_eq!(m.value, b"\xff\x00abc");
        assert_eq!(m.key, None);
    }

    /// The sample file and its expected JSON, written independently of
    /// this code (Python's csv + json modules).
    #[test]
    fn sample_master_csv_maps_to_expected_json() {
        let csv = include_str!("../../examples/Master.csv");
        let expected = include_str!("../../examples/Master.expected.jsonl");
        let mut mapper = cdr_mapper(Some("uniqueid"));
        let lines: Vec<_> = csv.lines().collect();
        assert_eq!(lines.len(), expected.lines().count());
        for (line, want) in lines.iter().zip(expected.lines()) {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let got = mapper.map(line.as_bytes()).unwrap();
            assert_eq!(std::str::from_utf8(got.value).unwrap(), want);
            let want: serde_json::Value = serde_json::from_str(want).unwrap();
            let key = got.key.map(|k| std::str::from_utf8(k).unwrap());
            assert_eq!(key, want["uniqueid"].as_str());
        }
    }

    #[test]
    fn rejects_say_why() {
        let mut mapper = cdr_mapper(None);
        let reason = |m: &mut Mapper, line: &[u8]| m.map(line).unwrap_err().to_string();
        assert_eq!(
            reason(&mut mapper, b"a,b,c"),
            "expected 16 to 18 fields, found 3"
        );
        assert_eq!(
            reason(&mut mapper, b"\"a,b"),
            "not a CSV record: unbalanced quotes"
        );
        let sixteen = |duration: &str, src: &[u8]| {
            let mut line = b"\"\",\"".to_vec();
            line.extend_from_slice(src);
            line.extend_from_slice(b"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",");
            line.extend_from_slice(
                format!("{duration},0,\"ANSWERED\",\"DOCUMENTATION\"").as_bytes(),
            );
            line
        };
        assert!(mapper.map(&sixteen("5", b"100")).is_ok());
        assert_eq!(
            reason(&mut mapper, &sixteen("5s", b"100")),
            "field `duration` is not an integer"
        );
        assert_eq!(
            reason(&mut mapper, &sixteen("5", b"\xcf\xe5")),
            "field `src` is not valid UTF-8"
        );
    }

    #[test]
    fn columns_layout_and_null_int() {
        let cols = Columns::parse("id:int,name").unwrap();
        let mut mapper = Mapper::new(Format::Json(cols), Some("name")).unwrap();
        let m = mapper.map(b",\"a \"\"b\"\"\\\"").unwrap();
        assert_eq!(m.value, br#"{"id":null,"name":"a \"b\"\\"}"#);
        assert_eq!(m.key, Some(&b"a \"b\"\\"[..]));
        assert!(Mapper::new(Format::Json(Columns::parse("a").unwrap()), Some("b")).is_err());
    }
}
