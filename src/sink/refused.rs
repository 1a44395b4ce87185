//! Messages the broker refused for their content (too large for the
//! topic, an invalid record): each goes to the reject topic with the
//! broker's reason, under its original ticket, so a poison line cannot pin
//! the file position or the spool forever. The delivery callback hands
//! them over here; producing from librdkafka's callback thread would block
//! it on a full queue.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers as _, Message as _, OwnedHeaders, OwnedMessage};
use rdkafka::producer::BaseRecord;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::{Sink, REJECT_REASON_HEADER};
use crate::acker::Note;

/// A message the broker refused, with its tracker ticket.
#[derive(Debug)]
pub struct Refused {
    /// The line's ticket; it settles when the reject is delivered.
    pub ticket: u64,
    /// The message as it was produced.
    pub message: OwnedMessage,
    /// Why the broker refused it.
    pub error: RDKafkaErrorCode,
}

/// Whether the broker refused the message itself, not the connection,
/// the topic or the request: sending it again can never succeed.
pub fn for_content(error: &KafkaError) -> Option<RDKafkaErrorCode> {
    match error {
        KafkaError::MessageProduction(
            code @ (RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidRecord),
        ) => Some(*code),
        _ => None,
    }
}

impl Sink {
    /// Send every refused message to the reject topic until `done`.
    pub async fn reroute(&self, mut refused: UnboundedReceiver<Refused>, done: CancellationToken) {
        loop {
            let next = tokio::select! {
                next = refused.recv() => next,
                () = done.cancelled() => return,
            };
            let Some(Refused {
                ticket,
                message,
                error,
            }) = next
            else {
                return;
            };
            let reason = format!("refused by the broker for {}: {error}", self.topic);
            warn!("{reason}; the line goes to {}", self.reject_topic);
            let mut headers = OwnedHeaders::new().insert(Header {
                key: REJECT_REASON_HEADER,
                value: Some(&reason),
            });
            for header in message.headers().into_iter().flat_map(|h| h.iter()) {
                headers = headers.insert(header);
            }
            let mut record: BaseRecord<'_, [u8], [u8], usize> =
                BaseRecord::with_opaque_to(&self.reject_topic, ticket as usize)
                    .payload(message.payload().unwrap_or_default())
                    .headers(headers);
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            self.tracker.note(Note::Rerouted);
            self.produce(record, ticket).await;
        }
    }
}
