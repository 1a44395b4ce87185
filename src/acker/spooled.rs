//! The tracker's begin hook for lines that exist nowhere else: with a
//! spool, a line without a position (stdin, TCP) is appended to it under
//! the window's lock, so spool order is sequence order and the watermark
//! is a spool position. The sink registers every line here and never
//! touches the spool itself.

use std::time::Duration;

use super::{Note, Tracker};
use crate::framing::Frame;
use crate::position::Mark;
pub use crate::spool::AppendError;

/// A line about to be produced, as the tracker registers it.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// Its file position; without one, the spool (if any) keeps it.
    pub mark: Option<Mark>,
    /// The line as framed, for the spool.
    pub frame: Frame<'a>,
    /// The source it was read from (kept with it in the spool).
    pub source: &'a str,
    /// Whether it goes to the reject topic.
    pub rejected: bool,
    /// Bytes of its message value.
    pub bytes: usize,
}

impl Tracker {
    /// Register `line`, after spooling it if it has no position: the
    /// spool's refusal (full, failing disk) registers nothing. Its ticket,
    /// and its place in the spool if it was spooled now.
    pub fn try_begin(&self, line: &Line<'_>) -> Result<(u64, Option<Mark>), AppendError> {
        let (rejected, bytes) = (line.rejected, line.bytes);
        match self.spool.as_ref().filter(|_| line.mark.is_none()) {
            Some(spool) => {
                let mut spooled = None;
                let append = || {
                    spooled = Some(spool.append(line.frame, line.source)?);
                    Ok(spooled)
                };
                let ticket = self.begin_with(append, rejected, bytes)?;
                Ok((ticket, spooled))
            }
            None => Ok((self.begin(line.mark, rejected, bytes), None)),
        }
    }

    /// The `cdrship.id` of the line spooled at `mark`, if lines are
    /// spooled.
    pub fn spooled_id(&self, mark: Mark) -> Option<String> {
        self.spool.as_ref().map(|spool| spool.line_id(mark))
    }

    /// Shutdown stopped waiting for the spool to take `line`. It was
    /// read, so the spool keeps it beyond its limit if the disk has room
    /// for its record now; it is not produced now, the next start sends
    /// it. Otherwise it is counted as unspooled, which the outcome reports
    /// as lost.
    pub fn give_up_unsent(&self, line: &Line<'_>) {
        let (rejected, bytes) = (line.rejected, line.bytes);
        if let Some(spool) = self.spool.as_ref().filter(|_| line.mark.is_none()) {
            let mut spooled = None;
            let kept = || {
                spooled = Some(spool.append_beyond_limit(line.frame, line.source)?);
                Ok::<_, AppendError>(spooled)
            };
            if let Ok(seq) = self.begin_with(kept, rejected, bytes) {
                // Kept only once its record is on disk.
                if !spooled.is_some_and(|mark| spool.on_disk(mark)) {
                    spool.abandon_unwritten();
                    self.note(Note::Unspooled);
                }
                self.given_up(seq);
                return;
            }
        }
        self.note(Note::Unspooled);
        let seq = self.begin(None, rejected, bytes);
        self.given_up(seq);
    }

    /// Whether the record of the line of `ticket` is written to the spool
    /// (what was appended is written now); true for a line the spool does
    /// not hold.
    pub fn spooled_on_disk(&self, ticket: u64) -> bool {
        let Some(spool) = &self.spool else {
            return true;
        };
        self.mark_of(ticket).is_none_or(|mark| spool.on_disk(mark))
    }

    /// Shutdown gave up waiting for the disk to take spooled records: the
    /// spool drops the ones not written and takes no more lines.
    pub fn abandon_unspooled(&self) {
        if let Some(spool) = &self.spool {
            spool.abandon_unwritten();
        }
    }

    /// Shutdown gave up on the line of `ticket` before it was produced:
    /// kept if its record is on disk, lost (counted) if not.
    pub fn give_up_spooling(&self, ticket: u64) {
        if !self.spooled_on_disk(ticket) {
            self.note(Note::Unspooled);
        }
        self.given_up(ticket);
    }

    /// Whether lines without a position are spooled.
    pub fn spools(&self) -> bool {
        self.spool.is_some()
    }

    /// Spool `frame`, the `--header` line of `source`: replay maps the
    /// source's lines by it. Without a spool there is nothing to do.
    pub fn spool_header(&self, frame: Frame<'_>, source: &str) -> Result<(), AppendError> {
        match &self.spool {
            Some(spool) => spool.header(frame, source),
            None => Ok(()),
        }
    }

    /// The spool is done with `source`'s header.
    pub fn forget_header(&self, source: &str) {
        if let Some(spool) = &self.spool {
            spool.forget(source);
        }
    }

    /// Wait until deliveries free spool space, at most `limit`.
    pub async fn wait_spool_room(&self, limit: Duration) {
        match &self.spool {
            Some(spool) => spool.wait_room(limit).await,
            None => tokio::time::sleep(limit).await,
        }
    }
}
