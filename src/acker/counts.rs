//! The tracker's line totals: the counters sources and the delivery
//! thread write, and the [`Counts`] read from them.

use std::sync::atomic::AtomicU64;

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
    /// Of the delivered lines, those an earlier run had already written
    /// (`--exactly-once` found them in Kafka and did not send them again).
    pub already: u64,
    /// Mapped with bytes invalid in their charset (original kept in `_raw`).
    pub lossy: u64,
    /// Sent without a key because the `--key` field was empty or absent.
    pub keyless: u64,
    /// Given up at shutdown before the spool could take them.
    pub unspooled: u64,
    /// Fixed-width records that went on past their layout.
    pub longer: u64,
    /// Lines an earlier run spooled that damage in the spool cost (replay
    /// skipped their records): lost, though never read by this run.
    pub damaged: u64,
}

/// The counts the sources write. Aligned apart from [`SettledCounters`]:
/// sender and delivery thread each keep their own cache line instead of
/// passing one back and forth for every line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(super) struct SentCounters {
    pub(super) sent: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) rejected: AtomicU64,
    pub(super) lossy: AtomicU64,
    pub(super) keyless: AtomicU64,
    pub(super) unspooled: AtomicU64,
    pub(super) longer: AtomicU64,
    pub(super) damaged: AtomicU64,
}

/// The counts the delivery callback writes.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(super) struct SettledCounters {
    /// Delivered or failed.
    pub(super) settled: AtomicU64,
    pub(super) delivered: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) given_up: AtomicU64,
    pub(super) already: AtomicU64,
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
