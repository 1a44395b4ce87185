//! Telling a refusal from an outage: what only a refusal says, and for
//! librdkafka's vague failures a probe of the broker's port.

use std::time::Instant;

use super::hints::{hint, REFUSALS};
use super::probe;
use super::{Access, PROBE_EVERY};
use crate::sync::lock;

impl Access {
    /// The cause, with what to change, if `detail` is a refusal by
    /// `broker`: what only a refusal says, or a vague failure a probe
    /// proves to be one.
    pub(super) fn diagnose(&self, broker: &str, detail: &str, lower: &str) -> Option<String> {
        let address = probe::address(broker)?;
        let refused = |why: &str| {
            let hint = hint(why, self.client_certificate);
            format!("{broker} refused cdrship: {why}; {hint}")
        };
        if lower.contains("certificate verify failed") {
            return Some(match probe::certificate(address, &self.tls) {
                Some(why) => refused(&format!("{detail} ({why})")),
                None => refused(detail),
            });
        }
        if REFUSALS.iter().any(|r| lower.contains(r)) {
            return Some(refused(detail));
        }
        // A broker that is down fails the same way: probe.
        let vague = if broker.contains("ssl://") {
            lower.contains("ssl handshake failed")
        } else {
            lower.contains("apiversion_query") || lower.contains("security.protocol")
        };
        if !vague {
            return None;
        }
        let why = self.wrong_protocol(broker)?;
        Some(refused(&format!("{detail} ({why})")))
    }

    /// Whether `broker`'s port speaks the other protocol (TLS where
    /// plaintext is configured, or the other way round), probed at most
    /// every [`PROBE_EVERY`].
    pub(super) fn wrong_protocol(&self, broker: &str) -> Option<&'static str> {
        if !self.probe_due(broker) {
            return None;
        }
        let address = probe::address(broker)?;
        if broker.contains("ssl://") {
            probe::speaks_plaintext_kafka(address)
                .then_some("it answers plaintext Kafka requests: wrong version number")
        } else {
            probe::speaks_tls(address)
                .then_some("it speaks TLS: connecting to a SSL listener, security.protocol")
        }
    }

    fn probe_due(&self, broker: &str) -> bool {
        let mut state = lock(&self.state);
        let due = state
            .probed
            .get(broker)
            .is_none_or(|at| at.elapsed() >= PROBE_EVERY);
        if due {
            state.probed.insert(broker.to_owned(), Instant::now());
        }
        due
    }
}
