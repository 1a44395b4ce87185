//! What the tracker tells its readers: the committer (watermarks, where
//! passed messages landed, whether every line is settled), the outcome
//! and the metrics (counts, latencies, the first error).

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Counts, Tracker};
use crate::latency::Histogram;
use crate::position::{Mark, Placed};
use crate::sync::lock;

impl Tracker {
    /// Last position whose line and all lines before it were delivered.
    pub fn watermark(&self) -> Option<Mark> {
        lock(&self.window).watermark()
    }

    /// The offset up to which every line of `generation` (and every line
    /// registered before those) was delivered, if any was.
    pub fn watermark_of(&self, generation: u32) -> Option<u64> {
        lock(&self.window).watermark_of(generation)
    }

    /// Per partition, the last message the watermark passed. Read before
    /// the watermarks saved with it: they are then at or past it.
    pub fn passed(&self) -> Vec<Placed> {
        lock(&self.window).passed()
    }

    /// Lines registered so far.
    pub fn sent(&self) -> u64 {
        self.sent.sent.load(Ordering::Relaxed)
    }

    /// Lines registered but not yet settled.
    pub fn pending(&self) -> u64 {
        // Settled first: it never passes the sent count read after it.
        let settled = self.settled.settled.load(Ordering::SeqCst);
        self.sent.sent.load(Ordering::SeqCst) - settled
    }

    /// Every line registered is settled and none was given up: at
    /// shutdown, a clean stop for `--exactly-once`.
    pub fn all_settled(&self) -> bool {
        self.pending() == 0 && self.counts().given_up == 0
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
            already: get(&d.already),
            lossy: get(&s.lossy),
            keyless: get(&s.keyless),
            unspooled: get(&s.unspooled),
            longer: get(&s.longer),
            damaged: get(&s.damaged),
        }
    }

    /// Delivery latencies so far (sampled, see [`SAMPLE_EVERY`](super::SAMPLE_EVERY)).
    pub fn latency(&self) -> Histogram {
        lock(&self.latency).clone()
    }

    /// The first delivery error, if any.
    pub fn first_error(&self) -> Option<String> {
        lock(&self.first_error).clone()
    }
}
