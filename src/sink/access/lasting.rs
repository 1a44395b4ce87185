//! A condition that lasts (every broker down, no OAuth token): logged
//! when it starts, counted while it lasts with a reminder every
//! [`REMINDER`](super::REMINDER), and ended by the next delivery.
//! librdkafka repeats such reports at every attempt: "all brokers down"
//! comes at every re-bootstrap cycle, dozens of times a second in an
//! outage (confluentinc/librdkafka#5546, in the 2.12 built in here), which
//! would be some 150,000 journal lines an hour.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;

#[derive(Default)]
pub(super) struct Lasting {
    /// Whether it lasts now: the cheap test at every delivery.
    on: AtomicBool,
    since: Mutex<Option<Since>>,
}

struct Since {
    what: String,
    at: Instant,
    repeats: u64,
    reminded: Instant,
}

impl Lasting {
    /// Report the condition: `what` is logged if it starts now, otherwise
    /// counted, and logged again when `reminder` has passed.
    pub(super) fn report(&self, what: String, reminder: Duration) {
        let mut since = lock(&self.since);
        let Some(s) = since.as_mut() else {
            warn!("kafka: {what}");
            let now = Instant::now();
            *since = Some(Since {
                what,
                at: now,
                repeats: 0,
                reminded: now,
            });
            return self.on.store(true, Ordering::Relaxed);
        };
        s.repeats += 1;
        if s.reminded.elapsed() >= reminder {
            s.reminded = Instant::now();
            warn!(
                "kafka: still, after {} s ({} reports since): {}",
                s.at.elapsed().as_secs(),
                s.repeats,
                s.what
            );
        }
    }

    /// Whether it lasts now.
    pub(super) fn lasts(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// A delivery: the condition is over, and said to be.
    pub(super) fn over(&self) {
        if !self.on.load(Ordering::Relaxed) || !self.on.swap(false, Ordering::Relaxed) {
            return;
        }
        if let Some(s) = lock(&self.since).take() {
            info!(
                "kafka: delivering again, {} s after: {}",
                s.at.elapsed().as_secs(),
                s.what
            );
        }
    }
}
