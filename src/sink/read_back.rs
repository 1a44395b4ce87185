//! The read-back of `--exactly-once`: a plain consumer (partitions
//! assigned, no group joined, nothing committed) reads each partition of the topic and of the reject topic
//! from where the checkpoint says this shipper's unsaved messages can
//! start, to the partition's end, and returns the `cdrship.id`s it finds.
//! The same consumer finds where each partition ends, for a first start.
//!
//! It retries while the cluster is unreachable (as the producer does)
//! and fails with what to grant when the topic may not be read.

use std::time::Duration;

use anyhow::{bail, Result};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::ID_HEADER;
use crate::checkpoint::{value_hash, Found};
use crate::position::{PartitionFrom, Placed, Written};

/// How long one metadata or offsets request may take before a retry.
const REQUEST: Duration = Duration::from_secs(10);

/// Logs like the producer; librdkafka's warnings that producer settings
/// do not apply to a consumer are only debug news.
pub(super) struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            _ if facility == "CONFWARN" => debug!("kafka read-back: {facility}: {message}"),
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => warn!("kafka read-back: {facility}: {message}"),
            _ => debug!("kafka read-back: {facility}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        debug!("kafka read-back: {error}: {reason}");
    }
}

impl ConsumerContext for Quiet {}

/// A consumer for the read-back, with the producer's connection settings.
pub struct Reader {
    consumer: BaseConsumer<Quiet>,
    topics: [String; 2],
}

impl Reader {
    /// A reader of `topics` (the topic and the reject topic).
    pub fn new(properties: &[(String, String)], topics: [String; 2]) -> Result<Self> {
        let mut config = ClientConfig::new();
        for (key, value) in properties {
            config.set(key, value);
        }
        // librdkafka assigns partitions only with a group id; the group
        // is never joined (no subscribe) and nothing is committed to it.
        config
            .set("group.id", "cdrship-read-back")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // The end of a partition is how a first start learns that
            // the topics may be read (`readable`).
            .set("enable.partition.eof", "true");
        let consumer = config.create_with_context(Quiet)?;
        Ok(Reader { consumer, topics })
    }

    /// Where each partition ends now, once the cluster proved it lets
    /// this principal read them: a first start reads nothing back, but a
    /// start after an unclean stop must, and finding out only then would
    /// stop the shipping after a crash.
    pub fn ends(&self, stop: &CancellationToken) -> Result<Vec<PartitionFrom>> {
        let ends: Vec<_> = self.bounds(stop)?.into_iter().map(|(end, _)| end).collect();
        self.readable(&ends, stop)?;
        Ok(ends)
    }

    /// Fetch at each partition's end until each says it is there (its
    /// end-of-partition event), or fail if the cluster refuses.
    fn readable(&self, ends: &[PartitionFrom], stop: &CancellationToken) -> Result<()> {
        let mut list = TopicPartitionList::new();
        for end in ends {
            list.add_partition_offset(&end.topic, end.partition, Offset::Offset(end.offset))?;
        }
        self.consumer.assign(&list)?;
        let mut at_end = 0;
        while at_end < ends.len() {
            if stop.is_cancelled() {
                bail!("stopped during the read-back, before any line was sent");
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Err(KafkaError::PartitionEOF(_))) => at_end += 1,
                Some(Err(e)) => self.check(e)?,
                Some(Ok(_)) | None => {}
            }
        }
        self.consumer.unassign()?;
        Ok(())
    }

    /// Each partition's end, with its first offset still kept.
    fn bounds(&self, stop: &CancellationToken) -> Result<Vec<(PartitionFrom, i64)>> {
        let mut bounds = Vec::new();
        for topic in &self.topics {
            for partition in self.partitions(topic, stop)? {
                let (low, high) = self.watermarks(topic, partition, stop)?;
                let end = PartitionFrom {
                    topic: topic.clone(),
                    partition,
                    offset: high,
                };
                bounds.push((end, low));
            }
        }
        Ok(bounds)
    }

    /// Read every partition from where `written` says (from the start
    /// where it says nothing) to its end; the messages whose id `mine`
    /// accepts, and where the partitions ended.
    pub fn read(
        &self,
        written: Option<&Written>,
        mine: impl Fn(&str) -> bool,
        stop: &CancellationToken,
    ) -> Result<(Vec<Found>, Vec<PartitionFrom>)> {
        let mut list = TopicPartitionList::new();
        let mut todo = Vec::new();
        let bounds = self.bounds(stop)?;
        for (end, low) in &bounds {
            let (low, high) = (*low, end.offset);
            let from = written
                .and_then(|w| w.start_in(&end.topic, end.partition))
                .unwrap_or(low)
                .clamp(low, high);
            if from < high {
                list.add_partition_offset(&end.topic, end.partition, Offset::Offset(from))?;
                todo.push((end.topic.clone(), end.partition, high));
            }
        }
        self.consumer.assign(&list)?;
        let mut found = Vec::new();
        let mut read = 0u64;
        while !todo.is_empty() {
            if stop.is_cancelled() {
                bail!("stopped during the read-back, before any line was sent");
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    read += 1;
                    let id = message.headers().and_then(|headers| {
                        headers
                            .iter()
                            .find(|h| h.key == ID_HEADER)
                            .and_then(|h| h.value)
                    });
                    if let Some(id) = id.and_then(|id| std::str::from_utf8(id).ok()) {
                        if mine(id) {
                            found.push(Found {
                                id: id.to_owned(),
                                value: value_hash(message.payload().unwrap_or_default()),
                                placed: Placed {
                                    reject: message.topic() == self.topics[1],
                                    partition: message.partition(),
                                    offset: message.offset(),
                                },
                            });
                        }
                    }
                    if !read.is_multiple_of(4096) {
                        continue;
                    }
                }
                Some(Err(e)) => self.check(e)?,
                None => {}
            }
            let position = self.consumer.position()?;
            todo.retain(|(topic, partition, high)| {
                match position
                    .find_partition(topic, *partition)
                    .map(|p| p.offset())
                {
                    Some(Offset::Offset(at)) => at < *high,
                    _ => true,
                }
            });
        }
        debug!(
            "read-back: {read} messages read, {} of this file's",
            found.len()
        );
        Ok((found, bounds.into_iter().map(|(end, _)| end).collect()))
    }

    /// The partitions of `topic` (none if it does not exist yet).
    fn partitions(&self, topic: &str, stop: &CancellationToken) -> Result<Vec<i32>> {
        let metadata = self.retry(stop, || self.consumer.fetch_metadata(Some(topic), REQUEST))?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Ok(Vec::new());
        };
        match found.error().map(RDKafkaErrorCode::from) {
            None => Ok(found.partitions().iter().map(|p| p.id()).collect()),
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) => Ok(Vec::new()),
            Some(code) => {
                self.check(KafkaError::MetadataFetch(code))?;
                Ok(Vec::new())
            }
        }
    }

    /// `(low, high)` offsets of a partition.
    fn watermarks(
        &self,
        topic: &str,
        partition: i32,
        stop: &CancellationToken,
    ) -> Result<(i64, i64)> {
        self.retry(stop, || {
            self.consumer.fetch_watermarks(topic, partition, REQUEST)
        })
    }

    /// Run `request` until it succeeds (the cluster may be down for a
    /// while), failing at once on what a retry cannot mend.
    fn retry<T>(
        &self,
        stop: &CancellationToken,
        mut request: impl FnMut() -> KafkaResult<T>,
    ) -> Result<T> {
        let mut warned = false;
        loop {
            match request() {
                Ok(done) => return Ok(done),
                Err(e) => {
                    self.check(e.clone())?;
                    if !warned {
                        warn!("read-back: {e}; retrying until the cluster answers");
                        warned = true;
                    }
                }
            }
            if stop.is_cancelled() {
                bail!("stopped during the read-back, before any line was sent");
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Fail on an error that says the topics may not be read.
    fn check(&self, error: KafkaError) -> Result<()> {
        use RDKafkaErrorCode::{ClusterAuthorizationFailed, TopicAuthorizationFailed};
        let code = error.rdkafka_error_code();
        if matches!(
            code,
            Some(TopicAuthorizationFailed | ClusterAuthorizationFailed)
        ) {
            bail!(
                "--exactly-once reads {} and {} back after an unclean stop, and the cluster \
                 refuses that ({error}): grant this principal Describe and Read on both topics",
                self.topics[0],
                self.topics[1]
            );
        }
        Ok(())
    }
}
