//! The Kafka sink: producer settings for billing data, and lines handed
//! to the producer with backpressure on a full queue (their deliveries are
//! settled in the [`Tracker`] by the client context, `context.rs`).
//!
//! Lines without headers are collected in a [`Batch`] and enqueued
//! together; lines with headers (file ids, metadata, rejects) are enqueued
//! one by one, after the batch before them. librdkafka copies each payload
//! when it is enqueued, so nothing is allocated per line here.
//! Retries of failed produce requests are librdkafka's job
//! (`message.timeout.ms=0` means it retries until delivered); this module
//! only waits for queue space, so a slow or dead broker slows the reading.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use tokio_util::sync::CancellationToken;

use crate::acker::{Note, Tracker};
use crate::checkpoint::Recovered;
use crate::kafka_stats::KafkaStats;
use crate::sync::lock;

mod access;
mod admit;
mod batch;
mod context;
mod defaults;
mod lag;
mod message;
mod metadata;
mod poller;
mod probe;
mod prompt;
mod read_back;
mod redact;
mod refused;
mod spooled;
mod spread;

use refused::Refused;
use tokio::sync::mpsc::UnboundedReceiver;

pub use access::Access;
pub use batch::Batch;
use batch::Topic;
use context::DeliveryContext;
pub use defaults::{default_properties, value_limit, HEADROOM};
pub use lag::lag_bound;
pub use message::{Dest, Outgoing, ID_HEADER, REJECT_REASON_HEADER};
use metadata::warm_up;
use poller::Poller;
use prompt::Prompt;
pub use read_back::Reader;

/// A connected producer shared by all source tasks.
pub struct Sink {
    /// The configured topic's handle, for batches; dropped before the producer.
    main: Topic,
    /// Sends a quiet period's first line without lingering; stopped
    /// before the producer is dropped.
    prompt: Prompt,
    /// Serves the producer's events (held for its drop, which stops it
    /// before the producer is dropped).
    _poller: Poller,
    producer: Arc<BaseProducer<DeliveryContext>>,
    tracker: Arc<Tracker>,
    topic: String,
    reject_topic: String,
    /// Cancelled when the shutdown timeout expires: stop waiting for room.
    abort: CancellationToken,
    /// With `--exactly-once`: lines an earlier run already wrote.
    recovered: Option<Arc<Recovered>>,
    /// With `--exactly-once` and a spool: a spooled line's id is its
    /// place in the spool, so every such line is sent with its header.
    spool_ids: bool,
}

impl Sink {
    /// Create the producer from ordered `properties`; lines are
    /// registered (and spooled, when the tracker spools) before they are
    /// sent. The messages the broker refuses arrive on the receiver, for
    /// [`reroute`](Self::reroute). With `--exactly-once`, lines whose ids
    /// `recovered` holds are in Kafka already: they are settled as
    /// delivered without being sent again, and the tracker learns where
    /// each delivered message landed.
    pub fn new(
        properties: &[(String, String)],
        topics: (String, String),
        tracker: Arc<Tracker>,
        echo: bool,
        abort: CancellationToken,
        access: Arc<Access>,
        recovered: Option<Arc<Recovered>>,
    ) -> Result<(Self, UnboundedReceiver<Refused>)> {
        let (topic, reject_topic) = topics;
        let mut config = ClientConfig::new();
        for (key, value) in properties {
            config.set(key, value);
        }
        let (refused, rerouted) = tokio::sync::mpsc::unbounded_channel();
        let context = DeliveryContext {
            tracker: tracker.clone(),
            echo,
            stats: Mutex::default(),
            topic: topic.clone(),
            refused,
            access,
            places: recovered.is_some(),
        };
        let producer: BaseProducer<DeliveryContext> = config
            .create_with_context(context)
            .map_err(redact::config_error)
            .context("creating the Kafka producer")?;
        let producer = Arc::new(producer);
        // SAFETY: the handle is dropped before the producer (field order).
        // A `partitioner` the user picked places every line.
        let spread = defaults::spreads_batches(properties).then(Arc::default);
        let main = unsafe { Topic::new(producer.client().native_ptr(), &topic, spread.clone())? };
        warm_up(
            &producer,
            &topic,
            spread,
            defaults::metadata_refresh(properties),
        );
        let spool_ids = recovered.is_some() && tracker.spools();
        let sink = Sink {
            main,
            prompt: Prompt::start(&producer, defaults::linger(properties)),
            _poller: Poller::start(producer.clone())?,
            producer,
            tracker,
            topic,
            reject_topic,
            abort,
            recovered,
            spool_ids,
        };
        Ok((sink, rerouted))
    }

    /// Produce one message. Waits while the producer queue is full; gives
    /// up (counting the line as failed) only when shutdown runs out of time
    /// or on an error librdkafka will not retry.
    pub async fn send(&self, dest: Dest<'_>, msg: Outgoing<'_>) {
        let rejected = matches!(dest, Dest::Reject(_));
        // A line replayed from the spool has the id it was first sent with.
        let replayed = self.spooled_id(msg.mark);
        if self.found(msg.id.or(replayed.as_deref()), &msg, rejected) {
            return;
        }
        let Some((seq, spooled)) = self.begin(&msg, rejected).await else {
            return;
        };
        // A line spooled just now is named by its new place.
        let owned_id = replayed.or_else(|| self.spooled_id(spooled));
        let id = msg.id.or(owned_id.as_deref());
        let mut headers = None;
        let topic = match dest {
            Dest::Main => self.topic.as_str(),
            Dest::Reject(reason) => {
                headers = Some(OwnedHeaders::new_with_capacity(2).insert(Header {
                    key: REJECT_REASON_HEADER,
                    value: Some(reason),
                }));
                self.reject_topic.as_str()
            }
        };
        if let Some(id) = id {
            headers = Some(headers.unwrap_or_default().insert(Header {
                key: ID_HEADER,
                value: Some(id),
            }));
        }
        for &(key, value) in msg.headers {
            headers = Some(headers.unwrap_or_default().insert(Header {
                key,
                value: Some(value),
            }));
        }
        if !self.spooled(seq).await {
            return self.tracker.give_up_spooling(seq);
        }
        let mut record = BaseRecord::with_opaque_to(topic, seq as usize).payload(msg.value);
        if let Some(key) = msg.key {
            record = record.key(key);
        }
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        self.produce(record, seq).await;
    }

    /// Hand `record` (ticket `seq`) to the producer, waiting while its
    /// queue is full; a refusal or the shutdown timeout settles the ticket.
    async fn produce(&self, mut record: BaseRecord<'_, [u8], [u8], usize>, seq: u64) {
        loop {
            match self.producer.send(record) {
                Ok(()) => return self.after_quiet(1),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    if !self.wait_for_room().await {
                        self.tracker.given_up(seq);
                        return;
                    }
                }
                Err((error, back)) => {
                    let topic = back.topic;
                    self.tracker
                        .failed(seq, || context::failure("producing to", topic, &error));
                    return;
                }
            }
        }
    }

    /// Register `msg` (for the configured topic, without headers) and add
    /// it to `batch`, producing the batch when it is full. The caller
    /// [`flush`](Self::flush)es the rest when its input has nothing more ready.
    pub async fn stage(&self, batch: &mut Batch, msg: Outgoing<'_>) {
        debug_assert!(msg.id.is_none() && msg.headers.is_empty());
        if self.spool_ids {
            return self.stage_spooled(batch, msg).await;
        }
        let Some((ticket, _)) = self.begin_staged(batch, &msg).await else {
            return;
        };
        if batch.push(ticket, msg.value, msg.key) {
            self.flush(batch).await;
        }
    }

    /// Enqueue every line of `batch`, in order, and empty it. Waits while
    /// the producer queue is full, as [`send`](Self::send) does.
    pub async fn flush(&self, batch: &mut Batch) {
        if batch.is_empty() {
            return;
        }
        if !self.batch_spooled(batch).await {
            return;
        }
        if batch.has_ids() {
            return self.flush_with_ids(batch).await;
        }
        let mut from = 0;
        while from < batch.len() {
            let refused = |ticket, error| {
                self.tracker.failed(ticket, || {
                    let error = KafkaError::MessageProduction(error);
                    context::failure("producing to", &self.topic, &error)
                })
            };
            let Some(full_at) = self.main.produce(batch, from, refused) else {
                break;
            };
            from = full_at;
            if !self.wait_for_room().await {
                for ticket in batch.tickets(from) {
                    self.tracker.given_up(ticket);
                }
                break;
            }
        }
        self.after_quiet(batch.len());
        batch.clear();
    }

    /// `n` lines were handed to the producer: if they end a quiet period,
    /// have them sent at once (see `prompt.rs`).
    fn after_quiet(&self, n: usize) {
        let n = n as u64;
        if self.tracker.pending() <= n {
            self.prompt.empty(n, self.tracker.sent());
        }
    }

    /// Wait until deliveries made room in the producer queue; false when
    /// the shutdown timeout expired instead.
    async fn wait_for_room(&self) -> bool {
        tokio::select! {
            () = self.tracker.wait_progress(Duration::from_millis(10)) => true,
            () = self.abort.cancelled() => false,
        }
    }

    /// The last librdkafka statistics report, if any came yet.
    pub fn kafka_stats(&self) -> Option<KafkaStats> {
        lock(&self.producer.context().stats).clone()
    }

    /// Messages in the producer's queue or in flight to the broker.
    pub fn queued(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Count a line event in the tracker.
    pub fn note(&self, note: Note) {
        self.tracker.note(note);
    }

    /// Drop everything still queued so shutdown does not wait on a dead
    /// broker; their delivery reports come back as failures.
    pub fn purge(&self) {
        self.producer
            .purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
        let _ = self.producer.flush(Duration::from_secs(1));
    }
}
