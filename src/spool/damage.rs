//! Damage amid a segment's whole records: a block the file system never
//! wrote (a power loss with out-of-order writeback leaves zeros) or a
//! flipped byte. Such a record fails its checksum like a torn last write,
//! but whole records follow it: replay must skip only the damage, not the
//! rest of the segment, and the lines the damage cost are lost and counted.
//!
//! The next whole record is found by trying every byte after the bad one:
//! a record decodes only if its length fits, its kind is known and the
//! CRC-32 of its body matches, so a false start in damaged bytes or inside
//! another record's line is negligible. Nothing whole after the bad record
//! is what a crash leaves at the end of the last write: a torn tail.

use std::collections::HashMap;

use super::record::{decode, Decoded};

/// A damaged stretch with whole records after it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Gap {
    /// Where the bad record begins.
    pub(super) from: usize,
    /// Where the next whole record begins.
    pub(super) to: usize,
    /// The lines it held, as far as the line numbers of the records around
    /// it tell (their sources' lines before and after it): at least one,
    /// since a record was lost.
    pub(super) lines: u64,
}

/// Where the next whole record after the bad one at the start of `buf`
/// begins; `None` when none follows (a torn tail).
pub(super) fn resync(buf: &[u8]) -> Option<usize> {
    (1..buf.len()).find(|&at| matches!(decode(&buf[at..]), Decoded::Record(_)))
}

/// The damaged stretches of a segment's `data`, in order. A torn tail is
/// none: replay ends the segment there as before.
pub(super) fn survey(data: &[u8]) -> Vec<Gap> {
    let mut gaps: Vec<Gap> = Vec::new();
    // Each source's last line number and how many gaps came before it: a
    // source's lines are spooled in order, so the numbers it skips across
    // a gap were in the gap. Header records are left out: each segment
    // starts with copies of them, far from the lines around them.
    let mut last: HashMap<&str, (u64, usize)> = HashMap::new();
    let mut at = 0;
    loop {
        match decode(&data[at..]) {
            Decoded::End => break,
            Decoded::Torn(_) => match resync(&data[at..]) {
                None => break,
                Some(skip) => {
                    gaps.push(Gap {
                        from: at,
                        to: at + skip,
                        lines: 0,
                    });
                    at += skip;
                }
            },
            Decoded::Record(record) => {
                at += record.size;
                if record.header {
                    continue;
                }
                let line = record.frame.line();
                if let Some(&(before, seen)) = last.get(record.source) {
                    if let Some(gap) = gaps.get_mut(seen) {
                        gap.lines += line.saturating_sub(before + 1);
                    }
                }
                last.insert(record.source, (line, gaps.len()));
            }
        }
    }
    for gap in &mut gaps {
        gap.lines = gap.lines.max(1);
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::super::record::encode;
    use super::*;
    use crate::framing::Frame;

    /// Records of lines `lines` of `source`, and where each ends.
    fn records(source: &str, lines: std::ops::Range<u64>, out: &mut Vec<u8>) -> Vec<usize> {
        lines
            .map(|line| {
                let bytes = format!("call {line},100,200");
                let frame = Frame::Line {
                    bytes: bytes.as_bytes(),
                    end: 0,
                    line,
                };
                encode(frame, source, false, out);
                out.len()
            })
            .collect()
    }

    fn lines_of(data: &[u8]) -> Vec<u64> {
        let mut at = 0;
        let mut found = Vec::new();
        loop {
            match decode(&data[at..]) {
                Decoded::Record(r) => {
                    found.push(r.frame.line());
                    at += r.size;
                }
                Decoded::End => return found,
                Decoded::Torn(_) => match resync(&data[at..]) {
                    Some(skip) => at += skip,
                    None => return found,
                },
            }
        }
    }

    #[test]
    fn zeros_amid_records_cost_only_the_records_they_hit() {
        let mut data = Vec::new();
        let ends = records("stdin", 1..21, &mut data);
        // From inside line 5's record to inside line 7's.
        data[ends[3] + 10..ends[6] - 3].fill(0);
        assert_eq!(
            survey(&data),
            [Gap {
                from: ends[3],
                to: ends[6],
                lines: 3
            }]
        );
        let expected: Vec<u64> = (1..21).filter(|l| !(5..=7).contains(l)).collect();
        assert_eq!(lines_of(&data), expected);
    }

    #[test]
    fn a_flipped_byte_or_length_costs_one_record() {
        let mut clean = Vec::new();
        let ends = records("10.0.0.5:4711 -> 10.0.0.1:11111", 1..11, &mut clean);
        // A byte of line 4's body, then its length (it then runs past the end).
        for at in [ends[2] + 20, ends[2] + 3] {
            let mut data = clean.clone();
            data[at] ^= 0x40;
            let gaps = survey(&data);
            assert_eq!(gaps.len(), 1, "byte {at}");
            assert_eq!(
                (gaps[0].from, gaps[0].to, gaps[0].lines),
                (ends[2], ends[3], 1)
            );
            assert_eq!(lines_of(&data).len(), 9);
        }
    }

    #[test]
    fn lines_lost_are_counted_per_source() {
        let mut data = Vec::new();
        records("pbx-a", 1..3, &mut data);
        let b = records("pbx-b", 1..3, &mut data);
        records("pbx-a", 3..4, &mut data);
        let damaged = records("pbx-b", 3..4, &mut data);
        records("pbx-a", 4..6, &mut data);
        records("pbx-b", 4..6, &mut data);
        // pbx-a 3 and pbx-b 3.
        data[b[1] + 1..damaged[0] - 1].fill(0);
        let gaps = survey(&data);
        assert_eq!(gaps.len(), 1);
        assert_eq!(
            (gaps[0].from, gaps[0].to, gaps[0].lines),
            (b[1], damaged[0], 2)
        );
        assert_eq!(lines_of(&data), [1, 2, 1, 2, 4, 5, 4, 5]);
        // A source with no line before the damage tells nothing: one
        // record, at least, was lost.
        let mut data = Vec::new();
        let a = records("pbx-a", 1..3, &mut data);
        records("pbx-b", 1..3, &mut data);
        data[a[1] + 1..a[1] + 9].fill(0);
        assert_eq!(survey(&data)[0].lines, 1);
    }

    #[test]
    fn a_torn_tail_is_no_gap() {
        let mut data = Vec::new();
        let ends = records("stdin", 1..6, &mut data);
        data.truncate(ends[3] + 7);
        data.extend_from_slice(&[0; 4096]);
        assert!(survey(&data).is_empty());
        assert_eq!(resync(&data[ends[3]..]), None);
        assert_eq!(lines_of(&data), [1, 2, 3, 4]);
        let mut flipped = Vec::new();
        let ends = records("stdin", 1..6, &mut flipped);
        flipped[ends[3] + 20] ^= 1;
        assert!(survey(&flipped).is_empty(), "damage to the last record");
    }
}
