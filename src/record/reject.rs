//! Why a line could not be mapped: the reason that travels with it to the
//! reject topic.

use std::fmt;

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
    /// The mapped message is larger than the producer accepts.
    TooLarge {
        /// The mapped value's and key's length.
        len: usize,
        /// The most the producer takes.
        max: usize,
    },
    /// The line is not one CSV record.
    BadCsv(&'static str),
    /// A `--header` line that cannot name columns.
    BadHeader(String),
    /// A data line after a `--header` line that was rejected.
    NoHeader(String),
    /// A fixed-width column boundary falls inside a multi-byte character.
    CutCharacter,
    /// The field count is outside the layout.
    FieldCount {
        /// Fields found.
        found: usize,
        /// Fewest accepted.
        min: usize,
        /// Most accepted.
        max: usize,
    },
    /// An `int` column holds something else.
    NotInteger(String),
    /// A `datetime` column holds something else.
    NotDateTime(String),
    /// Avaya CM's date record (at connect and midnight), not a call.
    DateRecord,
    /// The head of a line whose stream was cut before its newline.
    Unfinished {
        /// The bytes read of it.
        len: usize,
    },
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::TooLong { len, max } => write!(
                f,
                "line of {len} bytes exceeds --max-line-bytes {max}; value holds its first {max} bytes"
            ),
            Reject::TooLarge { len, max } => write!(
                f,
                "mapped message of {len} bytes exceeds the {max} bytes message.max.bytes allows; value holds the line as read"
            ),
            Reject::BadCsv(why) => write!(f, "not a CSV record: {why}"),
            Reject::BadHeader(why) => write!(f, "not a usable header line: {why}"),
            Reject::NoHeader(why) => write!(
                f,
                "column names unknown: this input's --header line was rejected ({why})"
            ),
            Reject::CutCharacter => {
                write!(f, "a fixed-width column cuts a multi-byte character")
            }
            Reject::FieldCount { found, min, max } if min == max => {
                write!(f, "expected {min} fields, found {found}")
            }
            Reject::FieldCount { found, min, max } => {
                write!(f, "expected {min} to {max} fields, found {found}")
            }
            Reject::NotInteger(column) => write!(f, "field `{column}` is not an integer"),
            Reject::NotDateTime(column) => {
                write!(f, "field `{column}` is not a date/time in the expected layout")
            }
            Reject::DateRecord => write!(
                f,
                "an Avaya CM date record (sent when the link connects and at midnight), not a call"
            ),
            Reject::Unfinished { len } => write!(
                f,
                "unfinished: the stream was cut {len} bytes into this line, before its newline"
            ),
        }
    }
}
