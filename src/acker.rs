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

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::latency::Histogram;
use crate::position::Mark;
use crate::sync::lock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
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
}

/// The in-order window of lines with a position.
#[derive(Debug, Default)]
struct Window {
    /// Sequence number of `entries[0]`.
    base: u64,
    entries: VecDeque<Entry>,
    watermark: Option<Mark>,
    /// The watermark's offset in each of the newest generations: how far
    /// a file read beside others (a rotated file still written to) is
    /// delivered.
    by_generation: BTreeMap<u32, u64>,
}

/// Generations [`Window::by_generation`] remembers: files read at once
/// are few; the spool's segments need only the watermark.
const GENERATIONS_KEPT: usize = 64;

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
    /// Refused or failed for good by the producer (not at shutdown).
    pub failed: u64,
    /// Given up at shutdown (timeout, purge) without a delivery report.
    pub given_up: u64,
    /// Mapped with bytes invalid in their charset (original kept in `_raw`).
    pub lossy: u64,
    /// Sent without a key because the `--key` field was empty or absent.
    pub keyless: u64,
    /// Given up at shutdown before the spool could take them.
    pub unspooled: u64,
    /// Fixed-width records that went on past their layout.
    pub longer: u64,
}

/// The counts the sources write. Aligned apart from [`SettledCounters`]:
/// sender and delivery thread each keep their own cache line instead of
/// passing one back and forth for every line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct SentCounters {
    sent: AtomicU64,
    bytes: AtomicU64,
    rejected: AtomicU64,
    lossy: AtomicU64,
    keyless: AtomicU64,
    unspooled: AtomicU64,
    longer: AtomicU64,
}

/// The counts the delivery callback writes.
#[derive(Debug, Default)]
#[repr(align(128))]
struct SettledCounters {
    /// Delivered or failed.
    settled: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    given_up: AtomicU64,
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
    /// See [`Counts::longer`].
    Longer,
    /// A line the broker refused goes to the reject topic after all.
    Rerouted,
}

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
        }
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

    /// Register a line whose mark `place` decides (the spool writes it),
    /// under the window's lock: marks are then in sequence order. Nothing
    /// is registered if `place` fails.
    pub fn begin_with<E>(
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
        let seq = w.base + w.entries.len() as u64;
        w.entries.push_back(Entry {
            state: State::Pending,
            mark,
            sent: sampled.then(Instant::now),
        });
        Ok(seq)
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

    /// The broker acknowledged the line of `ticket`.
    pub fn delivered(&self, ticket: u64) {
        self.settled.delivered.fetch_add(1, Ordering::Relaxed);
        self.settle(ticket, State::Done);
    }

    /// The line of `ticket` will not be delivered; stop the pipeline.
    pub fn failed(&self, ticket: u64, error: impl FnOnce() -> String) {
        self.settled.failed.fetch_add(1, Ordering::Relaxed);
        lock(&self.first_error).get_or_insert_with(error);
        self.settle(ticket, State::Failed);
        self.cancel.cancel();
    }

    /// Shutdown gave up on the line of `ticket`: it is not delivered (the
    /// watermark stays before it), but nothing failed; whether it is lost
    /// depends on where it is kept (see `outcome`).
    pub fn given_up(&self, ticket: u64) {
        self.settled.given_up.fetch_add(1, Ordering::Relaxed);
        self.settle(ticket, State::Failed);
    }

    fn settle(&self, ticket: u64, state: State) {
        let sent = if ticket & UNPLACED != 0 {
            let stamp = ticket & !UNPLACED;
            (stamp != 0).then(|| self.started + Duration::from_nanos(stamp - 1))
        } else {
            self.settle_placed(ticket, state)
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
    fn settle_placed(&self, seq: u64, state: State) -> Option<Instant> {
        let mut w = lock(&self.window);
        let index = usize::try_from(seq - w.base).expect("in-flight window fits in memory");
        let entry = &mut w.entries[index];
        entry.state = state;
        let sent = entry.sent;
        let before = w.watermark;
        while let Some(entry) = w.entries.front().filter(|e| e.state == State::Done) {
            let mark = entry.mark;
            w.watermark = Some(mark);
            w.by_generation.insert(mark.generation, mark.offset);
            w.entries.pop_front();
            w.base += 1;
        }
        if w.watermark != before {
            while w.by_generation.len() > GENERATIONS_KEPT {
                w.by_generation.pop_first();
            }
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

    /// Last position whose line and all lines before it were delivered.
    pub fn watermark(&self) -> Option<Mark> {
        lock(&self.window).watermark
    }

    /// The offset up to which every line of `generation` (and every line
    /// registered before those) was delivered, if any was.
    pub fn watermark_of(&self, generation: u32) -> Option<u64> {
        lock(&self.window).by_generation.get(&generation).copied()
    }

    /// Lines registered but not yet settled.
    pub fn pending(&self) -> u64 {
        // Settled first: it never passes the sent count read after it.
        let settled = self.settled.settled.load(Ordering::SeqCst);
        self.sent.sent.load(Ordering::SeqCst) - settled
    }

    /// Totals so far.
    pub fn counts(&self) -> Counts {
        let (s, d) = (&self.sent, &self.settled);
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Counts {
            sent: get(&s.sent),
            bytes: get(&s.bytes),
            delivered: get(&d.delivered),
            rejected: get(&s.rejected),
            failed: get(&d.failed),
            given_up: get(&d.given_up),
            lossy: get(&s.lossy),
            keyless: get(&s.keyless),
            unspooled: get(&s.unspooled),
            longer: get(&s.longer),
        }
    }

    /// Delivery latencies so far (sampled, see [`SAMPLE_EVERY`]).
    pub fn latency(&self) -> Histogram {
        lock(&self.latency).clone()
    }

    /// The first delivery error, if any.
    pub fn first_error(&self) -> Option<String> {
        lock(&self.first_error).clone()
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
    fn each_generation_keeps_its_own_watermark() {
        let t = Tracker::new(CancellationToken::new());
        let at = |generation, offset| Some(Mark { generation, offset });
        let old = t.begin(at(1, 10), false, 1);
        let new = t.begin(at(2, 5), false, 1);
        let old_again = t.begin(at(1, 20), false, 1);
        t.delivered(new);
        t.delivered(old_again);
        assert_eq!((t.watermark_of(1), t.watermark_of(2)), (None, None));
        t.delivered(old);
        assert_eq!((t.watermark_of(1), t.watermark_of(2)), (Some(20), Some(5)));
        assert_eq!(t.watermark(), at(1, 20));
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
