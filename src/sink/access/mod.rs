//! Whether the cluster lets cdrship in. A TLS or SASL failure (a CA that
//! did not sign the broker's certificate, a certificate that does not name
//! the broker, a bad password, a mechanism the broker does not offer, TLS
//! against a plaintext port or the other way round) is a configuration
//! error: librdkafka retries it for ever and logs it at every attempt.
//! Here each is logged once per broker with what to change, repeats are
//! counted, and a reminder comes every minute while it lasts.
//!
//! When every bootstrap broker refused cdrship and nothing was ever
//! delivered, nothing can be: the run stops (`stop`) as soon as what it
//! read is safe, that is at once with a spool or a saved file position,
//! and at the end of input otherwise (lines from a pipe or socket wait
//! in memory meanwhile, in case the cluster's side is fixed). The cause
//! becomes the run's error, so the exit status is not 0.
//!
//! Credentials cdrship gets before any broker sees them (a Kerberos
//! ticket, an OAuth token) are said here too, and an outage of every
//! broker is said once, not at each of librdkafka's reports.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::probe::{self, Tls};
use crate::sync::lock;
use credentials::Credential;
use hints::{hint, REPEATS};
use lasting::Lasting;

mod credentials;
mod diagnose;
mod hints;
mod lasting;

/// How often a refusal that lasts is logged again.
const REMINDER: Duration = Duration::from_secs(60);

/// How often a broker's vague failure is probed.
const PROBE_EVERY: Duration = Duration::from_secs(10);

/// The refuser of a credential every broker needs (the OAuth token).
const EVERYWHERE: &str = "every broker";

/// The cluster's refusals of this run's connections.
pub struct Access {
    /// librdkafka's names of the `bootstrap.servers` (`ssl://host:port/bootstrap`).
    bootstrap: Vec<String>,
    /// The producer's TLS settings, for the certificate probe.
    tls: Tls,
    /// Whether cdrship has a client certificate to show (mTLS).
    client_certificate: bool,
    /// Whether lines read survive the process (spool, saved file position).
    keeps: bool,
    /// Cancelled when nothing can be delivered and what was read is safe.
    stop: CancellationToken,
    delivered: AtomicBool,
    refused_now: AtomicBool,
    /// librdkafka raised a fatal error: the producer delivers no more.
    fatal: AtomicBool,
    state: Mutex<State>,
    /// Every broker down.
    outage: Lasting,
    /// A credential not obtained this time (kinit, the token endpoint).
    credential: Lasting,
}

#[derive(Default)]
struct State {
    /// Brokers refusing since the last delivery, each with its first cause.
    refusing: BTreeMap<String, String>,
    /// Bootstrap brokers that refused while nothing was delivered.
    bootstrap_refused: BTreeSet<String>,
    /// When each broker's vague failure was last probed.
    probed: HashMap<String, Instant>,
    repeats: u64,
    reminded: Option<Instant>,
    input_ended: bool,
    /// Why nothing can be delivered, once that is so.
    cause: Option<String>,
}

/// A refusal's words without the broker and librdkafka's timings
/// ("(after 4ms in state SSL_HANDSHAKE)").
fn gist(cause: &str) -> String {
    let mut rest = cause
        .split_once(" refused cdrship: ")
        .map_or(cause, |(_, w)| w);
    let mut words = String::new();
    while let Some(at) = rest.find("(after ") {
        words.push_str(&rest[..at]);
        rest = rest[at..].split_once(')').map_or("", |(_, after)| after);
    }
    words.push_str(rest);
    words
}

impl Access {
    /// For a producer with these `properties`.
    pub fn new(properties: &[(String, String)], keeps: bool, stop: CancellationToken) -> Self {
        let last = |names: &[&str]| {
            properties
                .iter()
                .rev()
                .find(|(k, _)| names.contains(&k.as_str()))
                .map(|(_, v)| v.clone())
        };
        let servers = last(&["bootstrap.servers", "metadata.broker.list"]).unwrap_or_default();
        let tls = Tls {
            ca_location: last(&["ssl.ca.location"]).filter(|l| l != "probe"),
            check_name: last(&["ssl.endpoint.identification.algorithm"])
                .is_none_or(|v| v != "none"),
        };
        let scheme = match last(&["security.protocol"]) {
            Some(p) if !p.eq_ignore_ascii_case("plaintext") => {
                format!("{}://", p.to_ascii_lowercase())
            }
            _ => String::new(),
        };
        let bootstrap = servers
            .split(',')
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                format!(
                    "{scheme}{}/bootstrap",
                    s.split_once("://").map_or(s, |(_, a)| a)
                )
            })
            .collect();
        let client_certificate = last(&[
            "ssl.certificate.location",
            "ssl.certificate.pem",
            "ssl.keystore.location",
        ])
        .is_some();
        Access {
            bootstrap,
            tls,
            client_certificate,
            keeps,
            stop,
            delivered: AtomicBool::new(false),
            refused_now: AtomicBool::new(false),
            fatal: AtomicBool::new(false),
            state: Mutex::default(),
            outage: Lasting::default(),
            credential: Lasting::default(),
        }
    }

    /// A connection failure as librdkafka's error callback gives it, or
    /// its `FAIL` log line; whether it was a refusal (logged here, once).
    pub fn observe(&self, text: &str) -> bool {
        // "[thrd:ssl://host:9093/bootstrap]: ssl://host:9093/bootstrap: SSL handshake failed: ..."
        let text = match text.strip_prefix("[thrd:") {
            Some(rest) => rest.split_once("]: ").map_or(text, |(_, rest)| rest),
            None => text,
        };
        let Some((broker, detail)) = text.split_once(": ").filter(|(b, _)| b.contains('/')) else {
            return false;
        };
        let lower = detail.to_ascii_lowercase();
        if lock(&self.state).refusing.contains_key(broker) {
            if !REPEATS.iter().any(|r| lower.contains(r)) {
                return false;
            }
            self.repeat();
            return true;
        }
        let Some(cause) = self.diagnose(broker, detail, &lower) else {
            return false;
        };
        self.refuse(broker, cause);
        true
    }

    /// librdkafka found every broker down (`reason`). It does not always
    /// say why, so the bootstrap brokers are probed (now and then) for a
    /// port that speaks the other protocol; if none refuses, it is an
    /// outage, said once.
    pub fn all_down(&self, reason: &str) {
        if !self.delivered.load(Ordering::Relaxed) {
            for broker in &self.bootstrap {
                if lock(&self.state).refusing.contains_key(broker) {
                    continue;
                }
                if let Some(why) = self.wrong_protocol(broker) {
                    let hint = hint(why, self.client_certificate);
                    let cause = format!("{broker} refused cdrship: {why}; {hint}");
                    self.refuse(broker, cause);
                }
            }
        }
        if self.refused_now() {
            return debug!("kafka: {reason}");
        }
        let what = format!(
            "every broker is down ({reason}): the lines wait, and are sent when one is back"
        );
        self.outage.report(what, REMINDER);
    }

    /// librdkafka's log line about a credential (a failed `kinit`, no
    /// OAuth token), said in cdrship's words; whether it was one.
    pub fn credential(&self, facility: &str, message: &str) -> bool {
        match credentials::failure(facility, message) {
            None => return false,
            Some(Credential::Refused(_)) if lock(&self.state).refusing.contains_key(EVERYWHERE) => {
                self.repeat()
            }
            Some(Credential::Refused(cause)) => self.refuse(EVERYWHERE, cause),
            Some(Credential::Missing(what)) => self.credential.report(what, REMINDER),
        }
        true
    }

    /// Whether librdkafka's error `reason` repeats what
    /// [`credential`](Self::credential) said from its log line.
    pub fn credential_error(&self, reason: &str) -> bool {
        credentials::already_said(reason)
    }

    /// Log and count a refusal by `broker`; stop if nothing can be delivered.
    /// The brokers of one cluster refuse alike: a refusal another broker
    /// made already in the same words is not said again.
    fn refuse(&self, broker: &str, cause: String) {
        let mut state = lock(&self.state);
        self.refused_now.store(true, Ordering::Relaxed);
        if state
            .refusing
            .values()
            .any(|said| gist(said) == gist(&cause))
        {
            debug!("kafka: {cause}");
        } else {
            error!("kafka: {cause}");
        }
        state.refusing.insert(broker.to_owned(), cause.clone());
        state.reminded.get_or_insert_with(Instant::now);
        if self.delivered.load(Ordering::Relaxed) || state.cause.is_some() {
            return;
        }
        if broker.ends_with("/bootstrap") {
            state.bootstrap_refused.insert(broker.to_owned());
        }
        if broker == EVERYWHERE || state.bootstrap_refused.len() >= self.bootstrap.len() {
            self.nothing_deliverable(&mut state, cause);
        }
    }

    /// librdkafka's fatal error (its `FATAL` log line), for a producer of
    /// `topic`: the producer delivers nothing more, whatever it delivered
    /// before, so the run stops as for a refusal, said once with what to
    /// grant where the cluster denied it (an idempotent producer's id
    /// needs Write on a topic).
    pub fn fatal(&self, message: &str, topic: &str) {
        if self.fatal.swap(true, Ordering::Relaxed) {
            return self.repeat();
        }
        // "[thrd:main]: Fatal error: Broker: Cluster authorization failed: Failed to ..."
        let detail = message.split_once("]: ").map_or(message, |(_, d)| d);
        let detail = detail.strip_prefix("Fatal error: ").unwrap_or(detail);
        let hint = if detail.to_ascii_lowercase().contains("authorization failed") {
            format!(
                "grant this principal Write on {topic} (on Kafka before 3.0 also \
                 IdempotentWrite on the cluster)"
            )
        } else {
            "the producer cannot go on".to_owned()
        };
        let cause = format!("the cluster refused cdrship: {detail}; {hint}");
        error!("kafka: {cause}");
        let mut state = lock(&self.state);
        self.refused_now.store(true, Ordering::Relaxed);
        state.refusing.insert(EVERYWHERE.to_owned(), cause.clone());
        if state.cause.is_none() {
            self.nothing_deliverable(&mut state, cause);
        }
    }

    /// Whether librdkafka raised a fatal error (said by [`fatal`](Self::fatal)).
    pub fn failed_fatally(&self) -> bool {
        self.fatal.load(Ordering::Relaxed)
    }

    /// A refusing broker refused again.
    fn repeat(&self) {
        let mut state = lock(&self.state);
        state.repeats += 1;
        if state.reminded.is_some_and(|at| at.elapsed() >= REMINDER) {
            state.reminded = Some(Instant::now());
            warn!(
                "kafka: still refused by {} broker(s), {} attempts since: {}",
                state.refusing.len(),
                state.repeats,
                state.refusing.values().next().map_or("", String::as_str)
            );
        }
    }

    /// Every bootstrap broker refused and nothing was delivered.
    fn nothing_deliverable(&self, state: &mut State, cause: String) {
        if self.keeps {
            error!("kafka: nothing can be delivered while the cluster refuses cdrship: stopping (the lines read are kept for the next start)");
        } else {
            error!("kafka: nothing can be delivered while the cluster refuses cdrship: the lines read wait in memory until the input ends, then cdrship stops after --shutdown-timeout");
        }
        state.cause = Some(cause);
        if self.keeps || state.input_ended {
            self.stop.cancel();
        }
    }

    /// A message was delivered: the cluster lets cdrship in.
    pub fn delivered(&self) {
        if !self.delivered.load(Ordering::Relaxed) {
            self.delivered.store(true, Ordering::Relaxed);
        }
        self.outage.over();
        self.credential.over();
        if self.refused_now.swap(false, Ordering::Relaxed) {
            let mut state = lock(&self.state);
            if !state.refusing.is_empty() {
                info!("kafka: delivering again");
            }
            state.refusing.clear();
            state.repeats = 0;
            state.reminded = None;
        }
    }

    /// Whether every broker is down now (an outage said already, so a
    /// broker's failure to connect is no news).
    pub fn outage(&self) -> bool {
        self.outage.lasts()
    }

    /// Whether some broker refuses cdrship now.
    pub fn refused_now(&self) -> bool {
        self.refused_now.load(Ordering::Relaxed)
    }

    /// The input ended: if nothing can be delivered, stop waiting for it.
    pub fn input_ended(&self) {
        let mut state = lock(&self.state);
        state.input_ended = true;
        if state.cause.is_some() {
            self.stop.cancel();
        }
    }

    /// Why nothing can be delivered, if so.
    pub fn refusal(&self) -> Option<String> {
        lock(&self.state).cause.clone()
    }

    /// Whether shutdown need not wait for the broker: it refuses cdrship
    /// and every line read is kept.
    pub fn nothing_to_wait_for(&self) -> bool {
        self.keeps && self.refusal().is_some()
    }
}

#[cfg(test)]
mod tests;
