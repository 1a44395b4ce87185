//! Which partition a batch of keyless lines goes to: one partition a
//! batch, the partitions in turn.
//!
//! librdkafka's default for a keyless message is the sticky partitioner
//! (one random partition for `sticky.partitioning.linger.ms`, then
//! another), and it runs it per message: a clock read, a partition
//! lookup and a reference count each time, 15% of the sending thread in
//! JSON mode. A batch given one partition takes librdkafka's
//! single-partition path, which looks the partition up once. Batches in
//! turn spread the lines as evenly as the sticky partitioner does.
//!
//! The partition count comes from metadata, refreshed on the warm-up
//! thread (`metadata.rs`); until it is known, or when the user picked a
//! `partitioner` of their own, batches are left to librdkafka's.

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// librdkafka's `RD_KAFKA_PARTITION_UA`: let the partitioner choose.
pub const UNASSIGNED: i32 = -1;

/// The topic's partition count and whose turn is next.
#[derive(Debug, Default)]
pub struct Spread {
    /// Partitions of the topic; 0 while unknown.
    count: AtomicI32,
    next: AtomicU32,
}

impl Spread {
    /// The partition for the next batch, or [`UNASSIGNED`].
    pub fn partition(&self) -> i32 {
        match self.count.load(Ordering::Relaxed) {
            count @ 1.. => {
                let turn = self.next.fetch_add(1, Ordering::Relaxed);
                (turn % count.unsigned_abs()) as i32
            }
            _ => UNASSIGNED,
        }
    }

    /// The topic has `count` partitions (0: unknown).
    pub fn learn(&self, count: usize) {
        let count = i32::try_from(count).unwrap_or(i32::MAX);
        self.count.store(count, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_take_the_partitions_in_turn_once_known() {
        let spread = Spread::default();
        assert_eq!(spread.partition(), UNASSIGNED);
        spread.learn(3);
        let turns: Vec<i32> = (0..7).map(|_| spread.partition()).collect();
        assert_eq!(turns, [0, 1, 2, 0, 1, 2, 0]);
        spread.learn(0);
        assert_eq!(spread.partition(), UNASSIGNED);
    }
}
