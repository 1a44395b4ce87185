//! Reading back what a previous run spooled but Kafka never acknowledged:
//! each remaining segment from its saved position, record by record, in
//! the order the lines were first read. Routing them again is the
//! pipeline's; this module only says what the segments hold.
//!
//! Header records are yielded from each segment's start, also before the
//! saved position: every segment holds the `--header` line of each source
//! it has lines of, so replay from any segment maps a source's lines by
//! its own header.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::damage::{survey, Gap};
use super::record::{decode, Decoded};
use super::segment_path;
use crate::framing::Frame;
use crate::position::Mark;

/// Segments to replay, with the offset each starts at.
#[derive(Debug)]
pub struct Backlog {
    dir: PathBuf,
    pub(super) segments: VecDeque<(u32, u64)>,
}

/// One segment read back, from its saved position on.
#[derive(Debug)]
pub struct Spooled {
    path: PathBuf,
    number: u32,
    data: Vec<u8>,
    start: usize,
    /// Damaged stretches with whole records after them, in order.
    gaps: Vec<Gap>,
}

/// What a segment holds at one place.
#[derive(Debug, PartialEq, Eq)]
pub enum Replayed<'a> {
    /// A line not delivered yet, read from `source`; `mark` is its place
    /// in the spool.
    Line {
        source: &'a str,
        frame: Frame<'a>,
        mark: Mark,
    },
    /// `source`'s `--header` line: it names the columns of its lines.
    Header { source: &'a str, frame: Frame<'a> },
    /// A torn record (SIGKILL mid-append, power loss) ends the segment;
    /// it is logged here, counting it is the caller's.
    Torn,
    /// Damage amid whole records was skipped, costing `lines` lines not
    /// delivered yet (0 when all were before the saved position); it is
    /// logged here, counting it is the caller's.
    Damaged { lines: u64 },
}

impl Backlog {
    pub(super) fn new(dir: &Path, segments: VecDeque<(u32, u64)>) -> Self {
        Backlog {
            dir: dir.to_owned(),
            segments,
        }
    }

    /// Read the next remaining segment; `None` when all are read.
    pub async fn next(&mut self) -> Result<Option<Spooled>> {
        let Some((number, start)) = self.segments.pop_front() else {
            return Ok(None);
        };
        let path = segment_path(&self.dir, number);
        let data = tokio::fs::read(&path)
            .await
            .with_context(|| format!("reading spool segment {}", path.display()))?;
        let mut start = usize::try_from(start).unwrap_or(usize::MAX);
        if start > data.len() {
            warn!(
                "spool: {} is shorter than its saved position; replaying it whole",
                path.display()
            );
            start = 0;
        }
        let gaps = survey(&data);
        Ok(Some(Spooled {
            path,
            number,
            data,
            start,
            gaps,
        }))
    }
}

impl Spooled {
    /// The segment's lines after the saved position and its header
    /// records, in order, with an item for each damaged stretch skipped;
    /// a torn record is the last item.
    pub fn records(&self) -> impl Iterator<Item = Replayed<'_>> {
        let mut at = 0;
        let mut ended = false;
        let mut gaps = self.gaps.iter().peekable();
        std::iter::from_fn(move || loop {
            if ended {
                return None;
            }
            let record = match decode(&self.data[at..]) {
                Decoded::Record(record) => record,
                Decoded::End => return None,
                Decoded::Torn(why) => {
                    if let Some(gap) = gaps.next_if(|gap| gap.from == at) {
                        at = gap.to;
                        return Some(Replayed::Damaged {
                            lines: self.skip(gap, why),
                        });
                    }
                    warn!(
                        "spool: {}: {why} at byte {at}; skipping its last {} bytes (a write cut by a crash)",
                        self.path.display(),
                        self.data.len() - at
                    );
                    ended = true;
                    return Some(Replayed::Torn);
                }
            };
            at += record.size;
            let (source, frame) = (record.source, record.frame);
            if record.header {
                return Some(Replayed::Header { source, frame });
            }
            if at > self.start {
                let mark = Mark {
                    generation: self.number,
                    offset: at as u64,
                };
                return Some(Replayed::Line {
                    source,
                    frame,
                    mark,
                });
            }
        })
    }

    /// Log `gap`; the lines it cost that were not delivered yet. Lines
    /// after the saved position are; where the damage reaches across it,
    /// all its lines are counted (more, never fewer).
    fn skip(&self, gap: &Gap, why: &str) -> u64 {
        let bytes = gap.to - gap.from;
        let (path, range) = (self.path.display(), format!("{}..{}", gap.from, gap.to));
        if gap.to <= self.start {
            warn!(
                "spool: {path}: {why} at byte {}: {bytes} damaged bytes skipped (bytes {range}); \
                 their lines were delivered already",
                gap.from
            );
            return 0;
        }
        error!(
            "spool: {path}: {why} at byte {}: {bytes} damaged bytes skipped (bytes {range}), \
             whole records follow; {} lines lost (counted by the line numbers around them)",
            gap.from, gap.lines
        );
        gap.lines
    }
}
