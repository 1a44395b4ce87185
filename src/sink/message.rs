//! What the sources hand the sink: one message, where it goes, and the
//! headers cdrship adds.

use crate::framing::Frame;
use crate::position::Mark;

/// Header naming why a line went to the reject topic.
pub const REJECT_REASON_HEADER: &str = "cdrship.reject.reason";

/// Header with a line's stable idempotency id, its place: in file mode
/// `dev:ino:fingerprint@offset#linehash`, for a spooled line with `--exactly-once`
/// `spool:dev:ino:segment@offset`; consumers can drop replays by it.
pub const ID_HEADER: &str = "cdrship.id";

/// One message to produce.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The message value.
    pub value: &'a [u8],
    /// The message key.
    pub key: Option<&'a [u8]>,
    /// The line's file position, for the checkpoint.
    pub mark: Option<Mark>,
    /// The line's idempotency id.
    pub id: Option<&'a str>,
    /// Further headers (metadata).
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The line as framed, which the spool keeps until it is delivered.
    pub line: Frame<'a>,
    /// The source it was read from (kept with it in the spool).
    pub source: &'a str,
}

/// Where a message goes.
#[derive(Debug, Clone, Copy)]
pub enum Dest<'a> {
    /// The configured topic.
    Main,
    /// The reject topic, with the reason header.
    Reject(&'a str),
}
