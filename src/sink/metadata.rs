//! The metadata thread: asks the cluster for the topic's metadata at
//! start, which gets the idempotent producer its id sooner, and then for
//! its partition count, which keyless batches are spread over
//! (`spread.rs`).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{BaseProducer, Producer};

use super::context::DeliveryContext;
use super::spread::Spread;

/// How soon to ask again for a partition count not known yet.
const UNKNOWN_RETRY: Duration = Duration::from_secs(5);

/// Get the idempotent producer its id now instead of in 0.5-1 s, and
/// keep `spread` told the topic's partition count.
///
/// librdkafka (2.10 and later) asks for a producer id when a metadata
/// response arrives, but only if a broker is up then. The first response
/// comes over the bootstrap connection, which it drops right after in
/// favour of the brokers it names, so it finds none up and retries on a
/// 500 ms timer: every start (each inetd connection, too) waited for it.
/// A second metadata request is answered by a real broker, which is then
/// up. It runs on its own thread and is only a nudge: on failure the timer
/// still does the job. With `spread`, the thread then asks for the
/// partition count every `refresh` (partitions may be added), and ends
/// with the producer.
pub fn warm_up(
    producer: &Arc<BaseProducer<DeliveryContext>>,
    topic: &str,
    spread: Option<Arc<Spread>>,
    refresh: Duration,
) {
    let producer = Arc::downgrade(producer);
    let topic = topic.to_owned();
    let name = topic.clone();
    let ask = move || producer.upgrade().map(|p| partitions(&p, &name));
    let run = move || {
        let mut found = ask().flatten();
        if found.is_some() {
            found = ask().flatten();
        }
        let placed = match spread {
            Some(_) => "keyless batches take them in turn",
            None => "the user's partitioner places every line",
        };
        let mut said = None;
        loop {
            let known = found.filter(|&n| n > 0);
            if let Some(count) = known.filter(|_| known != said) {
                debug!("kafka: {topic} has {count} partitions; {placed}");
                said = known;
            }
            let Some(spread) = &spread else { return };
            spread.learn(known.unwrap_or(0));
            std::thread::park_timeout(if known.is_some() {
                refresh
            } else {
                UNKNOWN_RETRY
            });
            match ask() {
                Some(count) => found = count,
                None => return,
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("kafka-warm-up".into())
        .spawn(run)
    {
        debug!("kafka: no warm-up thread: {e}");
    }
}

/// The partition count of `topic` in a metadata response (0 when the
/// topic is not there yet); `None` when no response came.
fn partitions(producer: &BaseProducer<DeliveryContext>, topic: &str) -> Option<usize> {
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .inspect_err(|e| debug!("kafka: metadata for {topic}: {e}"))
        .ok()?;
    let found = metadata.topics().iter().find(|t| t.name() == topic);
    Some(
        found
            .filter(|t| t.error().is_none())
            .map_or(0, |t| t.partitions().len()),
    )
}
