//! `--exactly-once` at start: find the messages the last run wrote for
//! lines after its saved position (a followed file's progress, or the
//! spool's), so that the lines read or replayed again are not sent again.
//!
//! Why reading back is enough. The position and, per partition, the
//! offset from which this shipper's unsaved messages can be are saved in
//! one atomic state ([`ReadBack`] says how `from` is kept right). After an
//! unclean stop the lines after the saved position are read again; the
//! ones whose message is in Kafka are exactly those whose `cdrship.id`
//! appears from `from` to the partition's end. That needs the stopped
//! process to write nothing more:
//! - it is dead: its lock (beside the state) is free only then, and the
//!   kernel closed its broker connections with its descriptors;
//! - a produce request it had already sent can still be written after
//!   that (even on one broker: its bytes may still wait in the broker's
//!   socket buffer), and a record written but not yet replicated is not
//!   visible to a consumer; the *fence* waits for both before the read. Kafka's own
//!   fence (a transactional id's epoch) would make the wait needless, but
//!   neither broker this is tested on can show it (see README).
//!
//! After a clean stop (every line settled, none given up) there is
//! nothing to read back and no wait.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio_util::sync::CancellationToken;

use crate::checkpoint::{Previous, ReadBack, Recovered};
use crate::sink::Reader;

/// How the read-back went.
pub enum Started {
    /// Ready to read; what the read-back found.
    Ready(ReadBack),
    /// Stopped (a signal) before anything was sent.
    Stopped,
}

/// Where to read back and which ids are this shipper's.
pub struct Target<'a> {
    /// The producer's properties (the read-back consumer uses them).
    pub kafka: &'a [(String, String)],
    /// The configured topic and the reject topic.
    pub topics: [String; 2],
    /// How long the stopped process's requests may still be written
    /// (`None`: ask the brokers).
    pub fence: Option<Duration>,
}

/// Beyond the brokers' own bounds: the dead process's last requests may
/// still wait in a broker's socket or request queue.
const FENCE_MARGIN: Duration = Duration::from_secs(5);

/// Kafka's defaults for those bounds (`replica.lag.time.max.ms`), for
/// brokers that do not say (no DescribeConfigs on the cluster).
const KAFKA_DEFAULT_LAG: Duration = Duration::from_secs(30);

/// The default fence: a record the stopped process had sent is visible
/// once every in-sync replica has it, or once a replica that does not
/// fetch it has left the in-sync set, which the brokers' settings bound.
async fn fence_of(kafka: &[(String, String)]) -> Duration {
    match crate::sink::lag_bound(kafka).await {
        Ok(lag) => {
            info!(
                "exactly once: the brokers let a replica lag {} s at most \
                 (replica.lag.time.max.ms, broker.session.timeout.ms)",
                lag.as_secs_f64()
            );
            lag + FENCE_MARGIN
        }
        Err(e) => {
            info!(
                "exactly once: the brokers' replica.lag.time.max.ms could not be read ({e:#}); \
                 taking Kafka's default, {} s",
                KAFKA_DEFAULT_LAG.as_secs()
            );
            KAFKA_DEFAULT_LAG + FENCE_MARGIN
        }
    }
}

/// Prepare `--exactly-once` after `previous`: read back after an unclean
/// stop (waiting the fence first) the messages whose ids are `mine`, or
/// note where the partitions end.
pub async fn recover(
    previous: Previous,
    mine: impl Fn(&str) -> bool + Send + 'static,
    target: Target<'_>,
    stop: &CancellationToken,
) -> Result<Started> {
    let topics = target.topics;
    let written = match previous {
        Previous::Saved(Some(written)) if written.clean => {
            return Ok(Started::Ready(ReadBack {
                topics,
                base: written.from,
                recovered: Arc::default(),
                fresh: false,
            }));
        }
        Previous::Saved(written) => Some(written),
        Previous::Fresh => None,
    };
    let fresh = written.is_none();
    let reader =
        Reader::new(target.kafka, topics.clone()).context("creating the read-back consumer")?;
    if !fresh {
        let fence = match target.fence {
            Some(fence) => fence,
            None => fence_of(target.kafka).await,
        };
        info!(
            "exactly once: the last run did not stop cleanly; waiting {} s for what it had \
             sent, then reading {} and {} back",
            fence.as_secs_f64(),
            topics[0],
            topics[1]
        );
        tokio::select! {
            () = tokio::time::sleep(fence) => {}
            () = stop.cancelled() => return Ok(Started::Stopped),
        }
    }
    let started = Instant::now();
    let stopping = stop.clone();
    let read = tokio::task::spawn_blocking(move || match written {
        None => reader.ends(&stopping).map(|ends| (Vec::new(), ends)),
        Some(written) => reader.read(written.as_ref(), mine, &stopping),
    })
    .await
    .context("the read-back's thread")?;
    let (found, ends) = match read {
        Err(_) if stop.is_cancelled() => return Ok(Started::Stopped),
        read => read?,
    };
    if !fresh {
        info!(
            "exactly once: {} messages of lines after the saved position are in Kafka \
             (read back in {} ms); those lines are not sent again",
            found.len(),
            started.elapsed().as_millis()
        );
    }
    Ok(Started::Ready(ReadBack {
        topics,
        base: ends,
        recovered: Arc::new(Recovered::new(found)),
        fresh,
    }))
}
