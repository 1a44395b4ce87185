//! Where cdrship's messages sit in Kafka, for `--exactly-once`: where
//! one delivered message landed ([`Placed`]), and, saved with the file
//! position, from which offset of each partition the messages of lines
//! not yet saved as delivered can be ([`Written`]). After an unclean stop
//! the read-back starts there; see `pipeline/recover.rs` for why it is
//! enough.

use serde::{Deserialize, Serialize};

/// Where one delivered message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// In the reject topic, not the configured one.
    pub reject: bool,
    /// Its partition.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
}

impl Placed {
    /// Whether `self` and `other` are in the same partition of one topic.
    pub fn same_partition(&self, other: &Placed) -> bool {
        self.reject == other.reject && self.partition == other.partition
    }
}

/// The first offset of one partition where a message of a line after
/// the saved position can be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionFrom {
    /// The topic's name.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

/// What `--exactly-once` saves beside the file position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// The run stopped with every line it sent settled and none given
    /// up: no message of a line after the saved position exists, and the
    /// next start has nothing to read back.
    pub clean: bool,
    /// Per partition, where such messages can start. A partition not
    /// listed is read from its start.
    pub from: Vec<PartitionFrom>,
}

impl Written {
    /// Where reading `topic`'s `partition` starts, if known.
    pub fn start_in(&self, topic: &str, partition: i32) -> Option<i64> {
        self.from
            .iter()
            .find(|p| p.topic == topic && p.partition == partition)
            .map(|p| p.offset)
    }
}
