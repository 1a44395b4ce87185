//! The producer's defaults, and the largest value they let through.

use std::time::Duration;

use anyhow::{Context as _, Result};

/// Producer defaults; `-X` properties are appended after these and win.
pub fn default_properties(brokers: &str) -> Vec<(String, String)> {
    [
        ("bootstrap.servers", brokers),
        ("client.id", "cdrship"),
        // Billing data: every replica has it, no duplicates from retries,
        // and no message is ever given up on because it waited too long.
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("message.timeout.ms", "0"),
        // Batch a few milliseconds: high throughput, still quick on a quiet PBX.
        ("linger.ms", "5"),
        // Bounded memory: when the queue is full, reading pauses.
        ("queue.buffering.max.messages", "50000"),
        ("queue.buffering.max.kbytes", "3072"),
        ("compression.codec", "none"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Bytes of a message's limit kept for what comes with the value: the
/// key, headers (id, metadata, reject reason) and librdkafka's framing.
pub const HEADROOM: usize = 1024;

/// The largest value (with its key) the producer accepts under the
/// `message.max.bytes` in `properties` (the last one wins, as in
/// librdkafka), and that limit itself.
pub fn value_limit(properties: &[(String, String)]) -> Result<(usize, usize)> {
    let limit = match properties
        .iter()
        .rev()
        .find(|(k, _)| k == "message.max.bytes")
    {
        Some((_, v)) => v
            .parse()
            .with_context(|| format!("-X message.max.bytes={v}: not a number of bytes"))?,
        // librdkafka's default.
        None => 1_000_000,
    };
    Ok((usize::saturating_sub(limit, HEADROOM), limit))
}

/// Whether keyless batches may be given their partition by cdrship
/// (`spread.rs`): not when the user set a `partitioner` of their own.
pub fn spreads_batches(properties: &[(String, String)]) -> bool {
    properties.iter().all(|(k, _)| k != "partitioner")
}

/// How often librdkafka refreshes metadata (`topic.metadata.refresh.interval.ms`,
/// default 5 minutes; a negative value, which turns it off, is taken as
/// the default).
pub fn metadata_refresh(properties: &[(String, String)]) -> Duration {
    properties
        .iter()
        .rev()
        .find(|(k, _)| k == "topic.metadata.refresh.interval.ms")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map_or(Duration::from_secs(300), Duration::from_millis)
}

/// How long librdkafka holds a lone message (`linger.ms`, alias
/// `queue.buffering.max.ms`; the last one set wins).
pub fn linger(properties: &[(String, String)]) -> Duration {
    properties
        .iter()
        .rev()
        .find(|(k, _)| k == "linger.ms" || k == "queue.buffering.max.ms")
        .and_then(|(_, v)| v.parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map_or(Duration::from_millis(5), |ms| {
            Duration::from_secs_f64(ms / 1000.0)
        })
}
