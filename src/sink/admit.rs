//! Registering a line in the tracker before it is produced: the tracker
//! spools it when it has no position (stdin, TCP with a spool), and a full
//! or failing spool makes the source wait (backpressure), never drops.

use std::time::Duration;

use super::{Batch, Outgoing, Sink};
use crate::acker::{AppendError, Line};
use crate::framing::Frame;
use crate::position::Mark;

impl Sink {
    /// Register a line to be staged in `batch`: the ticket, and its place
    /// if it was spooled now.
    pub(super) async fn begin_staged(
        &self,
        batch: &mut Batch,
        msg: &Outgoing<'_>,
    ) -> Option<(u64, Option<Mark>)> {
        match self.tracker.try_begin(&line(msg, false)) {
            Ok(begun) => Some(begun),
            Err(_) => {
                // A full spool waits for deliveries: the lines batched
                // before this one must be on their way first.
                self.flush(batch).await;
                self.begin(msg, false).await
            }
        }
    }

    /// Register `msg` in the tracker (which spools it if it has no
    /// position yet). A full or failing spool makes the source wait
    /// (backpressure), never drops; if shutdown ends the wait, the tracker
    /// keeps or counts the line and there is nothing to produce. The
    /// ticket, and the line's place if it was spooled now.
    pub(super) async fn begin(
        &self,
        msg: &Outgoing<'_>,
        rejected: bool,
    ) -> Option<(u64, Option<Mark>)> {
        let line = line(msg, rejected);
        match self.until_spooled(|| self.tracker.try_begin(&line)).await {
            Ok(begun) => Some(begun),
            Err(_) => {
                self.tracker.give_up_unsent(&line);
                None
            }
        }
    }

    /// Wait until the spool has written the record of the line of
    /// `ticket` (and so of every line spooled before it): a line is
    /// produced only once it is kept. A disk without room holds it, and
    /// so the reading, back until deliveries free space. False when the
    /// shutdown timeout came first: the spool dropped what it could not
    /// write, and the caller gives the line up.
    pub(super) async fn spooled(&self, ticket: u64) -> bool {
        loop {
            if self.tracker.spooled_on_disk(ticket) {
                return true;
            }
            if self.abort.is_cancelled() {
                self.tracker.abandon_unspooled();
                return false;
            }
            tokio::select! {
                () = self.tracker.wait_spool_room(Duration::from_secs(1)) => {}
                () = self.abort.cancelled() => {}
            }
        }
    }

    /// [`spooled`](Self::spooled) for the lines of `batch`; when shutdown
    /// gave up first, they are given up (lost if not on disk) and the
    /// batch emptied.
    pub(super) async fn batch_spooled(&self, batch: &mut Batch) -> bool {
        let Some(last) = batch.tickets(0).last() else {
            return true;
        };
        if self.spooled(last).await {
            return true;
        }
        for ticket in batch.tickets(0) {
            self.tracker.give_up_spooling(ticket);
        }
        batch.clear();
        false
    }

    /// Spool `line`, the `--header` line of `source` (stdin, a TCP
    /// connection), waiting for room as lines do: replay maps the source's
    /// lines by it.
    pub async fn spool_header(&self, line: Frame<'_>, source: &str) {
        if !self.tracker.spools() {
            return;
        }
        if let Err(refused) = self
            .until_spooled(|| self.tracker.spool_header(line, source))
            .await
        {
            warn!("{source}: shutdown timeout reached before the spool took the header line: {refused}");
        }
    }

    /// The spool is done with `source`'s header.
    pub fn forget_header(&self, source: &str) {
        self.tracker.forget_header(source);
    }

    /// Retry `attempt` while the spool refuses it (full, failing disk),
    /// until it succeeds or the shutdown timeout gives up (the refusal).
    async fn until_spooled<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, AppendError>,
    ) -> Result<T, AppendError> {
        let mut waited = false;
        loop {
            let error = match attempt() {
                Ok(done) => {
                    if waited {
                        info!("spool accepts lines again; reading resumed");
                    }
                    return Ok(done);
                }
                Err(error) => error,
            };
            // Shutdown gave up waiting: the caller counts the line.
            if self.abort.is_cancelled() {
                return Err(error);
            }
            if !waited {
                warn!("{error}; reading paused until it takes lines again");
                waited = true;
            }
            tokio::select! {
                () = self.tracker.wait_spool_room(Duration::from_secs(1)) => {}
                () = self.abort.cancelled() => return Err(error),
            }
        }
    }
}

/// `msg` as the tracker registers it.
pub(super) fn line<'a>(msg: &Outgoing<'a>, rejected: bool) -> Line<'a> {
    Line {
        mark: msg.mark,
        frame: msg.line,
        source: msg.source,
        rejected,
        bytes: msg.value.len(),
    }
}
