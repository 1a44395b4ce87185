//! The librdkafka client side of the sink: the context that settles
//! deliveries in the [`Tracker`] and forwards librdkafka's log and
//! statistics, and the nudge that gets the idempotent producer its id at
//! start.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::error::RDKafkaErrorCode::{
    AllBrokersDown, BrokerTransportFailure, PurgeInflight, PurgeQueue, TopicAuthorizationFailed,
    UnknownTopic, UnknownTopicOrPartition,
};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;

use tokio::sync::mpsc::UnboundedSender;

use super::access::Access;
use super::refused::{for_content, Refused};
use crate::acker::Tracker;
use crate::kafka_stats::KafkaStats;
use crate::position::Placed;
use crate::sync::lock;

/// Settles deliveries in the tracker; optionally tees delivered values;
/// keeps the last statistics report.
pub struct DeliveryContext {
    pub tracker: Arc<Tracker>,
    pub echo: bool,
    pub stats: Mutex<Option<KafkaStats>>,
    /// The configured topic, whose refused messages go to `refused`.
    pub topic: String,
    pub refused: UnboundedSender<Refused>,
    /// TLS and SASL refusals, logged once with what to change.
    pub access: Arc<Access>,
    /// Tell the tracker where each message landed (`--exactly-once`).
    pub places: bool,
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if self.access.failed_fatally() {
            return debug!("kafka: {error}: {reason}");
        }
        if self.access.observe(reason) {
            return;
        }
        if self.access.credential_error(reason) {
            return debug!("kafka: {error}: {reason}");
        }
        if matches!(error, KafkaError::Global(AllBrokersDown)) {
            return self.access.all_down(reason);
        }
        if matches!(error, KafkaError::Global(BrokerTransportFailure)) && self.access.outage() {
            return debug!("kafka: {error}: {reason}");
        }
        warn!("kafka: {error}: {reason}");
    }

    fn stats(&self, statistics: Statistics) {
        *lock(&self.stats) = Some(statistics.into());
    }

    /// librdkafka's own log (`-X debug=...` shows up with `-v`).
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if facility == "FATAL" {
            self.access.fatal(message, &self.topic);
            return debug!("kafka: {facility}: {message}");
        }
        // A refusal comes through `error` too, where it is said once.
        if (facility == "FAIL" && (self.access.observe(message) || self.access.outage()))
            || self.access.credential(facility, message)
        {
            return debug!("kafka: {facility}: {message}");
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => error!("kafka: {facility}: {message}"),
            RDKafkaLogLevel::Warning => warn!("kafka: {facility}: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!("kafka: {facility}: {message}")
            }
            RDKafkaLogLevel::Debug => debug!("kafka: {facility}: {message}"),
        }
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        match result {
            Ok(message) => {
                if self.echo {
                    let mut out = std::io::stdout().lock();
                    // A closed stdout must not stop delivery; the tee is best effort.
                    let _ = out
                        .write_all(message.payload().unwrap_or_default())
                        .and_then(|()| out.write_all(b"\n"));
                }
                self.access.delivered();
                let placed = self.places.then(|| Placed {
                    reject: message.topic() != self.topic,
                    partition: message.partition(),
                    offset: message.offset(),
                });
                self.tracker.delivered(seq as u64, placed);
            }
            // Purged at shutdown: given up, the producer did not fail it.
            Err((KafkaError::MessageProduction(PurgeQueue | PurgeInflight), _)) => {
                self.tracker.given_up(seq as u64)
            }
            Err((error, message)) => {
                let to_reject = for_content(error).filter(|_| message.topic() == self.topic);
                if let Some(error) = to_reject {
                    let ticket = seq as u64;
                    let message = message.detach();
                    if self
                        .refused
                        .send(Refused {
                            ticket,
                            message,
                            error,
                        })
                        .is_ok()
                    {
                        return;
                    }
                }
                self.tracker.failed(seq as u64, || {
                    failure("delivery to", message.topic(), error)
                })
            }
        }
    }
}

/// Why a message for `topic` failed (`what` says at which step), with
/// what to change when the topic is missing or may not be written.
pub(super) fn failure(what: &str, topic: &str, error: &KafkaError) -> String {
    let hint = match error {
        KafkaError::MessageProduction(TopicAuthorizationFailed) => format!(
            "; grant this principal Write on {topic}, or name another topic with --topic / \
             --reject-topic"
        ),
        KafkaError::MessageProduction(UnknownTopic | UnknownTopicOrPartition) => {
            "; create the topic (or grant write access to it), or name another with --topic / \
             --reject-topic"
                .to_owned()
        }
        _ => String::new(),
    };
    format!("{what} {topic} failed: {error}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_that_may_not_be_written_says_what_to_grant() {
        let denied = KafkaError::MessageProduction(TopicAuthorizationFailed);
        let said = failure("producing to", "cdr", &denied);
        assert!(said.contains("grant this principal Write on cdr"), "{said}");
        assert!(!said.contains("create the topic"), "{said}");
        let missing = KafkaError::MessageProduction(UnknownTopicOrPartition);
        assert!(failure("delivery to", "cdr", &missing).contains("create the topic"));
    }
}
