//! The spool's on-disk record: one framed line (whole, overlong or cut)
//! with what replay needs to route it as it was first routed (its source
//! label and line number), or a source's `--header` line, which replay
//! only learns the columns from.
//!
//! ```text
//! u32 body length | u32 CRC-32 of body | body
//! body: u8 kind | u64 line | u64 end | u64 full length | u16 label length | label | bytes
//! ```
//!
//! Little-endian. The checksum is what tells a record torn by a crash or
//! power loss (short, or zero-filled by the file system) from a whole one.

use crate::framing::Frame;

/// Length and checksum before the body.
const PREFIX: usize = 8;
/// Body bytes before the label.
const FIXED: usize = 1 + 8 + 8 + 8 + 2;

const LINE: u8 = 1;
const OVERLONG: u8 = 2;
const HEADER: u8 = 3;
const OVERLONG_HEADER: u8 = 4;
const CUT: u8 = 5;
const CUT_HEADER: u8 = 6;

/// A decoded record.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The line as the source framed it.
    pub frame: Frame<'a>,
    /// The source label it was read from.
    pub source: &'a str,
    /// Bytes the record takes in the segment.
    pub size: usize,
    /// The source's `--header` line: it names the columns of the source's
    /// next lines and is no message of its own.
    pub header: bool,
}

/// What the bytes at a position hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole record.
    Record(Record<'a>),
    /// Nothing: the segment ends here.
    End,
    /// A torn or corrupt record: its length cannot be trusted, so where
    /// the next one starts is unknown (see `damage.rs`).
    Torn(&'static str),
}

/// Append the record for `frame` read from `source` to `out`; `header`
/// marks the source's `--header` line.
pub fn encode(frame: Frame<'_>, source: &str, header: bool, out: &mut Vec<u8>) {
    let (kind, bytes, full, line, end) = match frame {
        Frame::Line { bytes, end, line } => {
            let kind = if header { HEADER } else { LINE };
            (kind, bytes, bytes.len() as u64, line, end)
        }
        Frame::Overlong {
            head,
            len,
            end,
            line,
        } => {
            let kind = if header { OVERLONG_HEADER } else { OVERLONG };
            (kind, head, len, line, end)
        }
        Frame::Cut { head, end, line } => {
            let kind = if header { CUT_HEADER } else { CUT };
            (kind, head, head.len() as u64, line, end)
        }
    };
    // Labels are peer addresses and paths; a longer one is cut, not refused.
    let label = &source.as_bytes()[..source.len().min(usize::from(u16::MAX))];
    let start = out.len();
    out.extend_from_slice(&[0; PREFIX]);
    out.push(kind);
    out.extend_from_slice(&line.to_le_bytes());
    out.extend_from_slice(&end.to_le_bytes());
    out.extend_from_slice(&full.to_le_bytes());
    out.extend_from_slice(&(label.len() as u16).to_le_bytes());
    out.extend_from_slice(label);
    out.extend_from_slice(bytes);
    let body = &out[start + PREFIX..];
    let len = u32::try_from(body.len()).expect("lines are capped far below 4 GiB");
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + PREFIX].copy_from_slice(&crc.to_le_bytes());
}

/// Decode the record at the start of `buf`.
pub fn decode(buf: &[u8]) -> Decoded<'_> {
    if buf.is_empty() {
        return Decoded::End;
    }
    let Some(prefix) = buf.get(..PREFIX) else {
        return Decoded::Torn("record header cut short");
    };
    let len = u32_at(prefix, 0) as usize;
    if len < FIXED {
        // Zeros here are what a power loss leaves after the last write.
        return Decoded::Torn("record length impossible");
    }
    let Some(body) = buf.get(PREFIX..PREFIX + len) else {
        return Decoded::Torn("record cut short");
    };
    // Before the checksum: resyncing after damage tries every byte, and
    // this refuses most of them cheaply.
    if !(LINE..=CUT_HEADER).contains(&body[0]) {
        return Decoded::Torn("record kind unknown");
    }
    if crc32fast::hash(body) != u32_at(prefix, 4) {
        return Decoded::Torn("record checksum mismatch");
    }
    let line = u64_at(body, 1);
    let end = u64_at(body, 9);
    let full = u64_at(body, 17);
    let label_len = usize::from(u16::from_le_bytes([body[25], body[26]]));
    let Some(label) = body.get(FIXED..FIXED + label_len) else {
        return Decoded::Torn("record label cut short");
    };
    let Ok(source) = std::str::from_utf8(label) else {
        return Decoded::Torn("record label is not UTF-8");
    };
    let bytes = &body[FIXED + label_len..];
    let frame = match body[0] {
        LINE | HEADER => Frame::Line { bytes, end, line },
        OVERLONG | OVERLONG_HEADER => Frame::Overlong {
            head: bytes,
            len: full,
            end,
            line,
        },
        CUT | CUT_HEADER => Frame::Cut {
            head: bytes,
            end,
            line,
        },
        _ => return Decoded::Torn("record kind unknown"),
    };
    Decoded::Record(Record {
        frame,
        source,
        size: PREFIX + len,
        header: matches!(body[0], HEADER | OVERLONG_HEADER | CUT_HEADER),
    })
}

/// Bytes of the whole records at the start of `buf`, records as
/// [`encode`] wrote them back to back and cut anywhere.
pub fn whole(buf: &[u8]) -> usize {
    let mut at = 0;
    while let Some(prefix) = buf.get(at..at + PREFIX) {
        let size = PREFIX + u32_at(prefix, 0) as usize;
        if buf.len() - at < size {
            break;
        }
        at += size;
    }
    at
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_records() -> Vec<u8> {
        let mut out = Vec::new();
        let line = Frame::Line {
            bytes: b"\"\",\"100\",\"200\"",
            end: 15,
            line: 1,
        };
        encode(line, "10.0.0.5:4711 -> 10.0.0.1:11111", true, &mut out);
        let overlong = Frame::Overlong {
            head: b"\xff\x00abc",
            len: 1 << 20,
            end: (1 << 20) + 16,
            line: 2,
        };
        encode(overlong, "stdin", false, &mut out);
        out
    }

    #[test]
    fn records_round_trip_in_sequence() {
        let buf = two_records();
        let Decoded::Record(first) = decode(&buf) else {
            panic!("first record")
        };
        assert_eq!(first.source, "10.0.0.5:4711 -> 10.0.0.1:11111");
        assert!(first.header);
        assert_eq!(first.frame.line(), 1);
        let rest = &buf[first.size..];
        let Decoded::Record(second) = decode(rest) else {
            panic!("second record")
        };
        assert_eq!(
            second.frame,
            Frame::Overlong {
                head: b"\xff\x00abc",
                len: 1 << 20,
                end: (1 << 20) + 16,
                line: 2
            }
        );
        assert!(!second.header);
        assert_eq!(decode(&rest[second.size..]), Decoded::End);
    }

    #[test]
    fn a_cut_line_stays_cut() {
        for header in [false, true] {
            let mut out = Vec::new();
            let cut = Frame::Cut {
                head: b"call 4",
                end: 90,
                line: 9,
            };
            encode(cut, "stdin", header, &mut out);
            let Decoded::Record(record) = decode(&out) else {
                panic!("a record")
            };
            assert_eq!((record.frame, record.header), (cut, header));
        }
    }

    #[test]
    fn whole_records_end_where_the_last_one_ends() {
        let buf = two_records();
        let Decoded::Record(first) = decode(&buf) else {
            panic!("first record")
        };
        assert_eq!(whole(&buf), buf.len());
        assert_eq!(whole(&buf[..buf.len() - 1]), first.size);
        assert_eq!(whole(&buf[..first.size]), first.size);
        assert_eq!(whole(&buf[..first.size - 1]), 0);
        assert_eq!(whole(&buf[..3]), 0);
        assert_eq!(whole(&[]), 0);
    }

    #[test]
    fn torn_and_zeroed_tails_are_detected() {
        let buf = two_records();
        let Decoded::Record(first) = decode(&buf) else {
            panic!("first record")
        };
        for cut in [first.size + 3, first.size + 20, buf.len() - 1] {
            assert!(
                matches!(decode(&buf[first.size..cut]), Decoded::Torn(_)),
                "cut at {cut}"
            );
        }
        assert!(matches!(decode(&[0; 64]), Decoded::Torn(_)));
        let mut flipped = buf.clone();
        flipped[first.size - 1] ^= 1;
        assert_eq!(decode(&flipped), Decoded::Torn("record checksum mismatch"));
    }
}
