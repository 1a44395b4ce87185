//! librdkafka's configuration errors without the value: rdkafka's error
//! text repeats the value, so a misspelled `sasl.pasword=...` would put
//! the password in the journal.

use anyhow::anyhow;
use rdkafka::error::KafkaError;

/// `error`, with the value of the property it names left out.
pub(super) fn config_error(error: KafkaError) -> anyhow::Error {
    match error {
        KafkaError::ClientConfig(_, description, key, value) => {
            let description = if value.is_empty() {
                description
            } else {
                description.replace(&value, "...")
            };
            anyhow!("property {key}: {description} (its value is not shown)")
        }
        other => other.into(),
    }
}
