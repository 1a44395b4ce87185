//! `--exactly-once` with a spool: each spooled line carries its
//! `cdrship.id` (its place in the spool), which `rd_kafka_produce_batch`
//! cannot send. The lines are batched all the same, so the spool gets one
//! `write(2)` per batch before any of them is produced (one per line cost
//! more than half the throughput); then each is produced with its header.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;

use super::{Batch, Outgoing, Sink, ID_HEADER};
use crate::position::Mark;

impl Sink {
    /// Whether `id`, the id of `msg`, names a line an earlier run already
    /// wrote (`--exactly-once`): it is then settled as delivered, unsent.
    pub(super) fn found(&self, id: Option<&str>, msg: &Outgoing<'_>, rejected: bool) -> bool {
        let (Some(id), Some(recovered)) = (id, &self.recovered) else {
            return false;
        };
        if !recovered.take(id, msg.value) {
            return false;
        }
        self.tracker.already(msg.mark, rejected, msg.value.len());
        true
    }

    /// The id of the line at spool position `mark`, when spooled lines
    /// carry ids.
    pub(super) fn spooled_id(&self, mark: Option<Mark>) -> Option<String> {
        mark.filter(|_| self.spool_ids)
            .and_then(|m| self.tracker.spooled_id(m))
    }

    /// [`stage`](Sink::stage) for a line the spool keeps, with its id.
    pub(super) async fn stage_spooled(&self, batch: &mut Batch, msg: Outgoing<'_>) {
        // A line replayed from the spool has the id it was first sent with.
        let replayed = self.spooled_id(msg.mark);
        if self.found(replayed.as_deref(), &msg, false) {
            return;
        }
        let Some((ticket, spooled)) = self.begin_staged(batch, &msg).await else {
            return;
        };
        let id = replayed.or_else(|| self.spooled_id(spooled));
        if batch.push_with_id(ticket, msg.value, msg.key, id.as_deref()) {
            self.flush(batch).await;
        }
    }

    /// Produce the lines of `batch`, which carry ids, one by one (their
    /// records are written, one spool write for all); empty it.
    pub(super) async fn flush_with_ids(&self, batch: &mut Batch) {
        for line in batch.lines() {
            let mut record = BaseRecord::with_opaque_to(self.topic.as_str(), line.ticket as usize)
                .payload(line.value);
            if let Some(key) = line.key {
                record = record.key(key);
            }
            if let Some(id) = line.id {
                let header = Header {
                    key: ID_HEADER,
                    value: Some(id),
                };
                record = record.headers(OwnedHeaders::new_with_capacity(1).insert(header));
            }
            self.produce(record, line.ticket).await;
        }
        batch.clear();
    }
}
