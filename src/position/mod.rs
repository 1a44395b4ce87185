//! Where a line is: a [`Mark`] (which opened file or spool segment, and
//! the byte offset after the line) and, for a followed file, the
//! [`FileId`] that proves which file it is and names it in message ids.
//! With `--exactly-once`, where messages landed in Kafka ([`Placed`],
//! [`Written`]). The tracker orders marks, the checkpoint and the spool
//! store them; this module only says what a position is.

mod identity;
mod kafka;

pub use identity::{line_hash, FileId, Window, HEAD_BYTES};
pub use kafka::{PartitionFrom, Placed, Written};

/// A position: which opened file (generation) or spool segment (its
/// number), and the byte offset just after the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Index into the file source's table of opened files, or the spool
    /// segment's number.
    pub generation: u32,
    /// Offset just after the line and its newline.
    pub offset: u64,
}

/// Where a line sits in a followed file.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    /// For the checkpoint.
    pub mark: Mark,
    /// For the idempotency id.
    pub file: &'a FileId,
}
