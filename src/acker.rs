//! Delivery tracking: every line handed to the producer gets a sequence
//! number; the delivery callback reports back here. The tracker keeps the
//! counts the exit code is decided from and the *watermark*: the position
//! of the last line that Kafka acknowledged together with every line before
//! it. Only the watermark may ever reach a checkpoint, so progress is saved
//! for delivered lines only, in order, whatever order acks arrive in.
//!
//! The first failed delivery cancels the pipeline: sources stop reading and
//! the watermark never moves past the failed line.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A position in file mode: which opened file (generation) and the byte
/// offset just after the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Index into the file source's table of opened files.
    pub generation: u32,
    /// Offset just after the line and its newline.
    pub offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Done,
    Failed,
}

#[derive(Debug, Default)]
struct Window {
    /// Sequence number of `entries[0]`.
    base: u64,
    entries: VecDeque<(State, Option<Mark>)>,
    watermark: Option<Mark>,
    pending: u64,
    counts: Counts,
    first_error: Option<String>,
}

/// Totals for the exit summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Lines handed to the producer (including rejects).
    pub sent: u64,
    /// Bytes of the message values handed to the producer.
    pub bytes: u64,
    /// Acknowledged by the broker.
    pub delivered: u64,
    /// Of the sent lines, those routed to the reject topic.
    pub rejected: u64,
    /// Reported as failed by the producer.
    pub failed: u64,
    /// Mapped with bytes invalid in their charset (original kept in `_raw`).
    pub lossy: u64,
    /// Sent without a key because the `--key` field was empty or absent.
    pub keyless: u64,
    /// Given up at shutdown before the spool could take them.
    pub unspooled: u64,
}

/// Line events worth counting that are not deliveries.
#[derive(Debug, Clone, Copy)]
pub enum Note {
    /// See [`Counts::lossy`].
    Lossy,
    /// See [`Counts::keyless`].
    Keyless,
    /// See [`Counts::unspooled`].
    Unspooled,
}

/// Shared between sources (which register lines) and the producer's
/// delivery callback (which settles them).
#[derive(Debug)]
pub struct Tracker {
    window: Mutex<Window>,
    /// Woken on a settled delivery while a sender waits for queue room.
    progress: Notify,
    /// Senders waiting on `progress`; deliveries skip the wake-up when 0.
    waiting: AtomicUsize,
    /// Woken when the watermark moves.
    advanced: Notify,
    /// Woken when nothing is pending.
    idle: Notify,
    cancel: CancellationToken,
}

impl Tracker {
    /// A tracker that cancels `cancel` on the first failed delivery.
    pub fn new(cancel: CancellationToken) -> Self {
        Tracker {
            window: Mutex::default(),
            progress: Notify::new(),
            waiting: AtomicUsize::new(0),
            advanced: Notify::new(),
            idle: Notify::new(),
            cancel,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Window> {
        // A panic while holding this lock already aborts the delivery
        // bookkeeping; keep going with the data rather than cascading.
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register a line about to be produced; returns its sequence number.
    pub fn begin(&self, mark: Option<Mark>, rejected: bool, bytes: usize) -> u64 {
        let known = || Ok::<_, std::convert::Infallible>(mark);
        match self.begin_with(known, rejected, bytes) {
            Ok(seq) => seq,
            Err(never) => match never {},
        }
    }

    /// Register a line whose mark `place` decides (the spool writes it),
    /// under the tracker's lock: marks are then in sequence order. Nothing
    /// is registered if `place` fails.
    pub fn begin_with<E>(
        &self,
        place: impl FnOnce() -> Result<Option<Mark>, E>,
        rejected: bool,
        bytes: usize,
    ) -> Result<u64, E> {
        let mut w = self.lock();
        let mark = place()?;
        let seq = w.base + w.entries.len() as u64;
        w.entries.push_back((State::Pending, mark));
        w.pending += 1;
        w.counts.sent += 1;
        w.counts.bytes += bytes as u64;
        w.counts.rejected += u64::from(rejected);
        Ok(seq)
    }

    /// Count a line event.
    pub fn note(&self, note: Note) {
        let mut w = self.lock();
        match note {
            Note::Lossy => w.counts.lossy += 1,
            Note::Keyless => w.counts.keyless += 1,
            Note::Unspooled => w.counts.unspooled += 1,
        }
    }

    /// The broker acknowledged line `seq`.
    pub fn delivered(&self, seq: u64) {
        let mut w = self.lock();
        w.counts.delivered += 1;
        self.settle(&mut w, seq, State::Done);
    }

    /// Line `seq` will not be delivered; stop the pipeline.
    pub fn failed(&self, seq: u64, error: impl FnOnce() -> String) {
        let mut w = self.lock();
        w.counts.failed += 1;
        if w.first_error.is_none() {
            w.first_error = Some(error());
        }
        self.settle(&mut w, seq, State::Failed);
        drop(w);
        self.cancel.cancel();
    }

    fn settle(&self, w: &mut Window, seq: u64, state: State) {
        let index = usize::try_from(seq - w.base).expect("in-flight window fits in memory");
        w.entries[index].0 = state;
        w.pending -= 1;
        let before = w.watermark;
        while let Some(&(State::Done, mark)) = w.entries.front() {
            w.entries.pop_front();
            w.base += 1;
            if mark.is_some() {
                w.watermark = mark;
            }
        }
        if w.watermark != before {
            self.advanced.notify_one();
        }
        if w.pending == 0 {
            self.idle.notify_one();
        }
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.progress.notify_one();
        }
    }

    /// Wait until some delivery settles (room in the producer queue), at
    /// most `limit`.
    pub async fn wait_progress(&self, limit: Duration) {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let _ = tokio::time::timeout(limit, self.progress.notified()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }

    /// Wait until the watermark may have moved.
    pub async fn wait_advanced(&self) {
        self.advanced.notified().await;
    }

    /// Wait until nothing is in flight.
    pub async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.lock().pending == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Last position whose line and all lines before it were delivered.
    pub fn watermark(&self) -> Option<Mark> {
        self.lock().watermark
    }

    /// Lines registered but not yet settled.
    pub fn pending(&self) -> u64 {
        self.lock().pending
    }

    /// Totals so far.
    pub fn counts(&self) -> Counts {
        self.lock().counts
    }

    /// The first delivery error, if any.
    pub fn first_error(&self) -> Option<String> {
        self.lock().first_error.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(offset: u64) -> Option<Mark> {
        Some(Mark {
            generation: 0,
            offset,
        })
    }

    #[test]
    fn watermark_moves_only_over_contiguous_acks() {
        let t = Tracker::new(CancellationToken::new());
        let seqs: Vec<_> = (1..=4).map(|i| t.begin(mark(i * 10), false, 1)).collect();
        t.delivered(seqs[1]);
        t.delivered(seqs[3]);
        assert_eq!(t.watermark(), None);
        t.delivered(seqs[0]);
        assert_eq!(t.watermark(), mark(20));
        t.delivered(seqs[2]);
        assert_eq!(t.watermark(), mark(40));
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn a_failure_pins_the_watermark_and_cancels() {
        let cancel = CancellationToken::new();
        let t = Tracker::new(cancel.clone());
        let a = t.begin(mark(10), false, 1);
        let b = t.begin(mark(20), false, 1);
        let c = t.begin(mark(30), true, 1);
        t.delivered(a);
        t.failed(b, || "boom".into());
        t.delivered(c);
        assert_eq!(t.watermark(), mark(10));
        assert!(cancel.is_cancelled());
        assert_eq!(t.first_error().as_deref(), Some("boom"));
        let counts = t.counts();
        assert_eq!(
            (
                counts.sent,
                counts.delivered,
                counts.failed,
                counts.rejected
            ),
            (3, 2, 1, 1)
        );
    }

    #[tokio::test]
    async fn wait_idle_returns_once_drained() {
        let t = std::sync::Arc::new(Tracker::new(CancellationToken::new()));
        let seq = t.begin(None, false, 1);
        let t2 = t.clone();
        let waiter = tokio::spawn(async move { t2.wait_idle().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        t.delivered(seq);
        waiter.await.unwrap();
    }
}
