//! Delivery tracking: every line handed to the producer gets a ticket;
//! the delivery callback reports back here. The tracker keeps the counts
//! the exit code is decided from and the *watermark*: the position of the
//! last line that Kafka acknowledged together with every line before it.
//! Only the watermark may ever reach a checkpoint, so progress is saved for
//! delivered lines only, in order, whatever order acks arrive in.
//!
//! Only lines with a position (a file offset, a spool record) enter the
//! in-order window and its lock; stdin and TCP lines without a spool are
//! counted with atomics alone. The sender and the delivery thread run at
//! a million lines a second, and a shared lock per line was their largest
//! cost after librdkafka itself.
//!
//! The first failed delivery cancels the pipeline: sources stop reading and
//! the watermark never moves past the failed line.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::latency::Histogram;
use crate::position::{Mark, Placed};
use crate::spool::Spool;
use crate::sync::lock;

mod counts;
mod spooled;
mod view;
mod window;

pub use counts::{Counts, Note};
use counts::{SentCounters, SettledCounters};
pub use spooled::{AppendError, Line};
use window::{State, Window};

/// Tickets of lines without a position have this bit set; the rest of
/// the ticket is their sampled send time (nanoseconds since the tracker
/// started, plus one; 0 when not sampled). Other tickets are window
/// sequence numbers.
const UNPLACED: u64 = 1 << 63;

/// Under load one line in this many has its latency measured (reading the
/// clock twice per line costs more than the rest of the bookkeeping); on
/// a quiet PBX every line is, since each finds nothing in flight.
const SAMPLE_EVERY: u64 = 16;

/// Shared between sources (which register lines) and the producer's
/// delivery callback (which settles them).
#[derive(Debug)]
pub struct Tracker {
    window: Mutex<Window>,
    sent: SentCounters,
    settled: SettledCounters,
    started: Instant,
    latency: Mutex<Histogram>,
    first_error: Mutex<Option<String>>,
    /// Woken when `pending` drops to `room_at` while a sender waits for
    /// queue room: a full queue resumes a batch at a time, not per line.
    progress: Notify,
    room_at: AtomicU64,
    /// Senders waiting on `progress`; deliveries skip the wake-up when 0.
    waiting: AtomicUsize,
    /// Woken when the watermark moves.
    advanced: Notify,
    /// Woken when nothing is pending, once someone waits for that.
    idle: Notify,
    want_idle: AtomicBool,
    cancel: CancellationToken,
    /// Where lines without a position are kept until delivered.
    spool: Option<Arc<Spool>>,
}

impl Tracker {
    /// A tracker that cancels `cancel` on the first failed delivery.
    pub fn new(cancel: CancellationToken) -> Self {
        Tracker {
            window: Mutex::default(),
            sent: SentCounters::default(),
            settled: SettledCounters::default(),
            started: Instant::now(),
            latency: Mutex::default(),
            first_error: Mutex::default(),
            progress: Notify::new(),
            room_at: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            advanced: Notify::new(),
            idle: Notify::new(),
            want_idle: AtomicBool::new(false),
            cancel,
            spool: None,
        }
    }

    /// The tracker spools every line without a position in `spool`
    /// before registering it (`spooled.rs`).
    pub fn spooling(self, spool: Option<Arc<Spool>>) -> Self {
        Tracker { spool, ..self }
    }

    /// Count a line handed to the producer; whether to sample its latency.
    fn count_sent(&self, rejected: bool, bytes: usize) -> bool {
        let n = self.sent.sent.fetch_add(1, Ordering::SeqCst);
        self.sent.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if rejected {
            self.sent.rejected.fetch_add(1, Ordering::Relaxed);
        }
        n.is_multiple_of(SAMPLE_EVERY) || n == self.settled.settled.load(Ordering::Relaxed)
    }

    /// Register a line about to be produced; returns its ticket.
    pub fn begin(&self, mark: Option<Mark>, rejected: bool, bytes: usize) -> u64 {
        if mark.is_some() {
            let known = || Ok::<_, std::convert::Infallible>(mark);
            return match self.begin_with(known, rejected, bytes) {
                Ok(ticket) => ticket,
                Err(never) => match never {},
            };
        }
        let sampled = self.count_sent(rejected, bytes);
        UNPLACED | if sampled { self.stamp() } else { 0 }
    }

    /// The position of the line of `ticket` while it is in flight; `None`
    /// for a line without one.
    fn mark_of(&self, ticket: u64) -> Option<Mark> {
        if ticket & UNPLACED != 0 {
            return None;
        }
        lock(&self.window).mark(ticket)
    }

    /// Register a line whose mark `place` decides (the spool writes it),
    /// under the window's lock: marks are then in sequence order. Nothing
    /// is registered if `place` fails.
    fn begin_with<E>(
        &self,
        place: impl FnOnce() -> Result<Option<Mark>, E>,
        rejected: bool,
        bytes: usize,
    ) -> Result<u64, E> {
        let mut w = lock(&self.window);
        let Some(mark) = place()? else {
            drop(w);
            return Ok(self.begin(None, rejected, bytes));
        };
        let sampled = self.count_sent(rejected, bytes);
        Ok(w.push(mark, sampled.then(Instant::now)))
    }

    /// Now, as an unplaced ticket's send time (never 0).
    fn stamp(&self) -> u64 {
        let nanos = self.started.elapsed().as_nanos();
        u64::try_from(nanos).map_or(UNPLACED - 1, |n| n.min(UNPLACED - 2) + 1)
    }

    /// Count a line event.
    pub fn note(&self, note: Note) {
        let counter = match note {
            Note::Lossy => &self.sent.lossy,
            Note::Keyless => &self.sent.keyless,
            Note::Unspooled => &self.sent.unspooled,
            Note::Longer => &self.sent.longer,
            Note::Rerouted => &self.sent.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Replaying the spool skipped damaged records holding `lines` lines.
    pub fn spool_damaged(&self, lines: u64) {
        self.sent.damaged.fetch_add(lines, Ordering::Relaxed);
    }

    /// The broker acknowledged the line of `ticket`, placing it at
    /// `placed` (if known).
    pub fn delivered(&self, ticket: u64, placed: Option<Placed>) {
        self.settled.delivered.fetch_add(1, Ordering::Relaxed);
        self.settle(ticket, State::Done, placed);
    }

    /// A line an earlier run already wrote to Kafka (`--exactly-once`
    /// found it there): registered and settled as delivered, not sent.
    pub fn already(&self, mark: Option<Mark>, rejected: bool, bytes: usize) {
        let ticket = self.begin(mark, rejected, bytes);
        self.settled.already.fetch_add(1, Ordering::Relaxed);
        self.delivered(ticket, None);
    }

    /// The line of `ticket` will not be delivered; stop the pipeline.
    pub fn failed(&self, ticket: u64, error: impl FnOnce() -> String) {
        self.settled.failed.fetch_add(1, Ordering::Relaxed);
        lock(&self.first_error).get_or_insert_with(error);
        self.settle(ticket, State::Failed, None);
        self.cancel.cancel();
    }

    /// Something besides a delivery failed for good (the lock was lost):
    /// stop the pipeline, with `error` as the run's error.
    pub fn halt(&self, error: String) {
        lock(&self.first_error).get_or_insert(error);
        self.cancel.cancel();
    }

    /// Shutdown gave up on the line of `ticket`: it is not delivered (the
    /// watermark stays before it), but nothing failed; whether it is lost
    /// depends on where it is kept (see `outcome`).
    pub fn given_up(&self, ticket: u64) {
        self.settled.given_up.fetch_add(1, Ordering::Relaxed);
        self.settle(ticket, State::Failed, None);
    }

    fn settle(&self, ticket: u64, state: State, placed: Option<Placed>) {
        let sent = if ticket & UNPLACED != 0 {
            let stamp = ticket & !UNPLACED;
            (stamp != 0).then(|| self.started + Duration::from_nanos(stamp - 1))
        } else {
            self.settle_placed(ticket, state, placed)
        };
        if let Some(sent) = sent.filter(|_| state == State::Done) {
            lock(&self.latency).observe(sent.elapsed());
        }
        // Reading what the sender writes only when someone waits keeps
        // this thread off the sender's cache line.
        let settled = self.settled.settled.fetch_add(1, Ordering::SeqCst) + 1;
        if self.want_idle.load(Ordering::SeqCst) && settled == self.sent.sent.load(Ordering::SeqCst)
        {
            self.idle.notify_one();
        }
        if self.waiting.load(Ordering::Acquire) > 0 {
            let left = self.sent.sent.load(Ordering::Acquire) - settled;
            if left <= self.room_at.load(Ordering::Acquire) {
                self.progress.notify_one();
            }
        }
    }

    /// Settle window entry `seq`; move the watermark over what is done.
    fn settle_placed(&self, seq: u64, state: State, placed: Option<Placed>) -> Option<Instant> {
        let (sent, moved) = lock(&self.window).settle(seq, state, placed);
        if moved {
            self.advanced.notify_one();
        }
        sent
    }

    /// Wait until deliveries made room in the producer queue (a quarter of
    /// what is in flight settled), at most `limit`.
    pub async fn wait_progress(&self, limit: Duration) {
        let pending = self.pending();
        self.room_at.store(pending - pending / 4, Ordering::Release);
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
        self.want_idle.store(true, Ordering::SeqCst);
        loop {
            let idle = self.idle.notified();
            if self.pending() == 0 {
                return;
            }
            idle.await;
        }
    }
}

#[cfg(test)]
mod tests;
