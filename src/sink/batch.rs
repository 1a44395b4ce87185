//! Lines handed to librdkafka together. Per line, `rd_kafka_producev`
//! looks the topic up by name, takes its lock and reads two clocks;
//! `rd_kafka_produce_batch` on a topic handle does that once per batch,
//! which is most of what separated cdrship from `kcat -P` on raw lines
//! (see bench/RESULTS.md). It takes no headers, so only lines without
//! headers are produced by it; spooled lines with their `cdrship.id`
//! (`--exactly-once`) are batched too, for one spool write per batch,
//! and produced one by one.

use std::ffi::{c_void, CString};
use std::ops::Range;
use std::ptr::{self, NonNull};
use std::sync::Arc;

use anyhow::{anyhow, Result};
use rdkafka::bindings as rdsys;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::types::RDKafkaRespErr;

use super::spread::{Spread, UNASSIGNED};

/// Lines in a batch before it is produced.
const MAX_LINES: usize = 512;
/// Payload bytes in a batch before it is produced.
const MAX_BYTES: usize = 64 * 1024;

/// Lines waiting for one `produce_batch` call. Values and keys are copied
/// back to back into one buffer: the callers reuse theirs for the next line.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    ticket: u64,
    value: Range<usize>,
    key: Option<Range<usize>>,
    id: Option<Range<usize>>,
}

/// One line of a batch.
pub struct Staged<'a> {
    pub ticket: u64,
    pub value: &'a [u8],
    pub key: Option<&'a [u8]>,
    pub id: Option<&'a [u8]>,
}

impl Batch {
    /// Add a line registered in the tracker as `ticket`; true when the
    /// batch is full and should be produced now.
    pub fn push(&mut self, ticket: u64, value: &[u8], key: Option<&[u8]>) -> bool {
        self.push_with_id(ticket, value, key, None)
    }

    /// [`push`](Self::push) with the line's id, if it has one.
    pub fn push_with_id(
        &mut self,
        ticket: u64,
        value: &[u8],
        key: Option<&[u8]>,
        id: Option<&str>,
    ) -> bool {
        let value = self.copy(value);
        let key = key.map(|key| self.copy(key));
        let id = id.map(|id| self.copy(id.as_bytes()));
        self.entries.push(Entry {
            ticket,
            value,
            key,
            id,
        });
        self.entries.len() >= MAX_LINES || self.bytes.len() >= MAX_BYTES
    }

    /// Whether its lines carry ids (then they are produced one by one);
    /// a sink stages either lines with ids or lines without.
    pub fn has_ids(&self) -> bool {
        self.entries.first().is_some_and(|e| e.id.is_some())
    }

    /// The lines, in order.
    pub fn lines(&self) -> impl Iterator<Item = Staged<'_>> {
        let at = |range: &Range<usize>| &self.bytes[range.clone()];
        self.entries.iter().map(move |e| Staged {
            ticket: e.ticket,
            value: at(&e.value),
            key: e.key.as_ref().map(at),
            id: e.id.as_ref().map(at),
        })
    }

    fn copy(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    /// Lines in the batch.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no line waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The tracker tickets of lines `from..`.
    pub fn tickets(&self, from: usize) -> impl Iterator<Item = u64> + '_ {
        self.entries[from..].iter().map(|e| e.ticket)
    }

    /// Empty it, keeping the buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
    }
}

/// A librdkafka topic handle of one producer, which `produce_batch` needs.
pub struct Topic {
    handle: NonNull<rdsys::rd_kafka_topic_t>,
    /// Partitions for keyless batches; `None` when the user's
    /// `partitioner` decides.
    spread: Option<Arc<Spread>>,
}

// SAFETY: librdkafka topic handles are reference counted and every
// function taking one is thread-safe.
unsafe impl Send for Topic {}
unsafe impl Sync for Topic {}

impl Topic {
    /// The handle of `name` in the producer `client`.
    ///
    /// # Safety
    /// `client` must be a live producer handle that outlives this value.
    pub unsafe fn new(
        client: *mut rdsys::rd_kafka_t,
        name: &str,
        spread: Option<Arc<Spread>>,
    ) -> Result<Self> {
        let c_name = CString::new(name).map_err(|_| anyhow!("topic {name:?} contains NUL"))?;
        // SAFETY: the caller guarantees `client`; the name is copied.
        let handle = unsafe { rdsys::rd_kafka_topic_new(client, c_name.as_ptr(), ptr::null_mut()) };
        NonNull::new(handle)
            .map(|handle| Topic { handle, spread })
            .ok_or_else(|| anyhow!("librdkafka refused the topic name {name:?}"))
    }

    /// Enqueue lines `from..` of `batch`, copying their bytes. Lines that
    /// librdkafka refuses for good are passed to `refused`; returns the
    /// index of the first line refused because the queue is full (it and
    /// every line after it were not enqueued), or `None` when all were
    /// taken.
    pub fn produce(
        &self,
        batch: &Batch,
        from: usize,
        mut refused: impl FnMut(u64, RDKafkaErrorCode),
    ) -> Option<usize> {
        let at = |range: &Range<usize>| batch.bytes[range.clone()].as_ptr() as *mut c_void;
        let mut messages: Vec<rdsys::rd_kafka_message_t> = batch.entries[from..]
            .iter()
            .map(|entry| rdsys::rd_kafka_message_t {
                err: RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR,
                rkt: ptr::null_mut(),
                partition: UNASSIGNED,
                payload: at(&entry.value),
                len: entry.value.len(),
                key: entry.key.as_ref().map_or(ptr::null_mut(), at),
                key_len: entry.key.as_ref().map_or(0, Range::len),
                offset: 0,
                // The delivery opaque, as the producer context reads it back.
                _private: entry.ticket as usize as *mut c_void,
            })
            .collect();
        let count = i32::try_from(messages.len()).expect("a batch holds at most MAX_LINES");
        let keyless = || batch.entries[from..].iter().all(|e| e.key.is_none());
        let partition = match &self.spread {
            Some(spread) if keyless() => spread.partition(),
            _ => UNASSIGNED,
        };
        // SAFETY: the handle is live (see `new`); every pointer points into
        // `batch`, which outlives the call; F_COPY makes librdkafka copy the
        // bytes, so nothing is referenced after it returns.
        unsafe {
            rdsys::rd_kafka_produce_batch(
                self.handle.as_ptr(),
                partition,
                rdsys::RD_KAFKA_MSG_F_COPY,
                messages.as_mut_ptr(),
                count,
            );
        }
        for (i, message) in messages.iter().enumerate() {
            match message.err {
                // Fewer partitions than the metadata said (the topic was
                // made anew): librdkafka refused the whole batch; the
                // partitioner places it.
                RDKafkaRespErr::RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION
                    if i == 0 && partition != UNASSIGNED =>
                {
                    self.spread
                        .as_ref()
                        .expect("a partition was chosen")
                        .learn(0);
                    return self.produce(batch, from, refused);
                }
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR => {}
                RDKafkaRespErr::RD_KAFKA_RESP_ERR__QUEUE_FULL => return Some(from + i),
                err => refused(batch.entries[from + i].ticket, err.into()),
            }
        }
        None
    }
}

impl Drop for Topic {
    fn drop(&mut self) {
        // SAFETY: the handle came from rd_kafka_topic_new and is dropped once.
        unsafe { rdsys::rd_kafka_topic_destroy(self.handle.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_copies_lines_and_reports_full() {
        let mut batch = Batch::default();
        assert!(!batch.push(7, b"first", Some(b"k")));
        assert!(!batch.push(8, b"", None));
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.tickets(1).collect::<Vec<_>>(), [8]);
        let first = &batch.entries[0];
        assert_eq!(&batch.bytes[first.value.clone()], b"first");
        assert_eq!(&batch.bytes[first.key.clone().unwrap()], b"k");
        batch.clear();
        let full = (0..MAX_LINES as u64).map(|t| batch.push(t, b"x", None));
        assert_eq!(full.filter(|&f| f).count(), 1);
        batch.clear();
        assert!(batch.push(1, &vec![b'x'; MAX_BYTES], None));
        batch.clear();
        batch.push_with_id(3, b"v", None, Some("spool:1:2:0@9"));
        assert!(batch.has_ids());
        let line = batch.lines().next().unwrap();
        assert_eq!(
            (line.ticket, line.value, line.id),
            (3, &b"v"[..], Some(&b"spool:1:2:0@9"[..]))
        );
    }
}
