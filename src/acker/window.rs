//! The in-order window of lines with a position: their states in
//! sequence order and the watermark over the leading delivered ones.
//! The tracker holds it under one lock.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use crate::position::{Mark, Placed};

/// How a line in the window is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Pending,
    Done,
    Failed,
}

/// One line with a position, in flight.
#[derive(Debug)]
struct Entry {
    state: State,
    mark: Mark,
    /// When it was handed to the producer, if its latency is sampled.
    sent: Option<Instant>,
    /// Where Kafka put it, once delivered.
    placed: Option<Placed>,
}

/// The in-order window of lines with a position.
#[derive(Debug, Default)]
pub(super) struct Window {
    /// Sequence number of `entries[0]`.
    base: u64,
    entries: VecDeque<Entry>,
    watermark: Option<Mark>,
    /// The watermark's offset in each of the newest generations: how far
    /// a file read beside others (a rotated file still written to) is
    /// delivered.
    by_generation: BTreeMap<u32, u64>,
    /// Per partition, the last message the watermark passed (for
    /// `--exactly-once`: messages of lines after it come later there).
    passed: Vec<Placed>,
}

/// Generations [`Window::by_generation`] remembers: files read at once
/// are few; the spool's segments need only the watermark.
const GENERATIONS_KEPT: usize = 64;

impl Window {
    /// Add a pending line at `mark`, sent at `sent` if sampled; its
    /// sequence number.
    pub(super) fn push(&mut self, mark: Mark, sent: Option<Instant>) -> u64 {
        let seq = self.base + self.entries.len() as u64;
        self.entries.push_back(Entry {
            state: State::Pending,
            mark,
            sent,
            placed: None,
        });
        seq
    }

    /// Settle line `seq` (delivered to `placed`, if known); move the
    /// watermark over what is done. Returns when the line was sent (if
    /// sampled) and whether the watermark moved.
    pub(super) fn settle(
        &mut self,
        seq: u64,
        state: State,
        placed: Option<Placed>,
    ) -> (Option<Instant>, bool) {
        let index = usize::try_from(seq - self.base).expect("in-flight window fits in memory");
        let entry = &mut self.entries[index];
        entry.state = state;
        entry.placed = placed;
        let sent = entry.sent;
        let before = self.watermark;
        while let Some(entry) = self.entries.front().filter(|e| e.state == State::Done) {
            let (mark, placed) = (entry.mark, entry.placed);
            if let Some(placed) = placed {
                match self.passed.iter_mut().find(|p| p.same_partition(&placed)) {
                    Some(last) => last.offset = last.offset.max(placed.offset),
                    None => self.passed.push(placed),
                }
            }
            self.watermark = Some(mark);
            self.by_generation.insert(mark.generation, mark.offset);
            self.entries.pop_front();
            self.base += 1;
        }
        let moved = self.watermark != before;
        if moved {
            while self.by_generation.len() > GENERATIONS_KEPT {
                self.by_generation.pop_first();
            }
        }
        (sent, moved)
    }

    /// The position of line `seq`, while it is in flight.
    pub(super) fn mark(&self, seq: u64) -> Option<Mark> {
        let index = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        self.entries.get(index).map(|e| e.mark)
    }

    /// Last position whose line and all lines before it were delivered.
    pub(super) fn watermark(&self) -> Option<Mark> {
        self.watermark
    }

    /// Per partition, the last message the watermark passed.
    pub(super) fn passed(&self) -> Vec<Placed> {
        self.passed.clone()
    }

    /// How far `generation` is delivered (see [`super::Tracker::watermark_of`]).
    pub(super) fn watermark_of(&self, generation: u32) -> Option<u64> {
        self.by_generation.get(&generation).copied()
    }
}
