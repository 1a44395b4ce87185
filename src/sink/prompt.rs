//! Sending the first line of a quiet period at once. librdkafka holds a
//! lone message for `linger.ms` hoping for company: on a quiet PBX that is
//! the whole latency (append -> acknowledged p50 6 ms here, of which 5 ms
//! waiting). `linger.ms=0` would cost a quarter of the throughput under
//! load (measured: raw stdin 2.1M -> 1.5M lines/s, JSON 0.9M -> 0.67M),
//! since every wake-up then sends a small request.
//!
//! So linger stays, and when a line ends a quiet period (it reaches a
//! producer with nothing else in it, and no other line was sent since the
//! last such line, at least `linger.ms` ago), a thread calls
//! `rd_kafka_flush`: while it runs,
//! librdkafka sends what is queued without lingering, and it returns once
//! everything is delivered (or after `linger.ms`, the most it would have
//! waited anyway). A busy producer always has something queued, so it
//! never triggers this (a producer that empties between batches under load
//! does not count: other lines came in between), and batches as before. (rdkafka's own `flush`
//! calls librdkafka with a zero timeout in a loop, which drops the flag
//! between calls; this thread serves no events: rdkafka's polling thread
//! does, as ever: see `poller.rs`.)

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::bindings as rdsys;
use rdkafka::producer::{BaseProducer, Producer as _};

use super::context::DeliveryContext;
use crate::sync::lock;

#[derive(Default)]
struct Signal {
    /// A line came to an idle producer.
    kicked: bool,
    stop: bool,
}

/// The thread that flushes after a quiet period; stopped on drop.
pub struct Prompt {
    signal: Arc<(Mutex<Signal>, Condvar)>,
    thread: Option<JoinHandle<()>>,
    linger: Duration,
    /// When the producer was last found empty, and the lines sent by then.
    last_empty: Mutex<Option<(Instant, u64)>>,
}

impl Prompt {
    /// Start it for `producer`, flushing for at most `linger`.
    pub fn start(producer: &Arc<BaseProducer<DeliveryContext>>, linger: Duration) -> Prompt {
        let signal: Arc<(Mutex<Signal>, Condvar)> = Arc::default();
        let producer = producer.clone();
        let shared = signal.clone();
        let linger_ms = i32::try_from(linger.as_millis()).unwrap_or(i32::MAX).max(1);
        let flusher = move || loop {
            {
                let (state, wake) = &*shared;
                let mut state = lock(state);
                while !state.kicked && !state.stop {
                    state = wake.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                if state.stop {
                    return;
                }
                state.kicked = false;
            }
            // SAFETY: the handle is valid while `producer` (a clone) lives;
            // rd_kafka_flush is thread-safe and, with event delivery
            // reports, only waits.
            unsafe { rdsys::rd_kafka_flush(producer.client().native_ptr(), linger_ms) };
        };
        let thread = std::thread::Builder::new()
            .name("kafka-prompt".into())
            .spawn(flusher)
            .map_err(|e| warn!("kafka: no prompt-send thread ({e}); quiet lines wait linger.ms"))
            .ok();
        Prompt {
            signal,
            thread,
            linger,
            last_empty: Mutex::default(),
        }
    }

    /// `n` lines were handed to a producer that has nothing else in it,
    /// `sent` lines in all so far: send them at once if they end a quiet
    /// period.
    pub fn empty(&self, n: u64, sent: u64) {
        let now = Instant::now();
        let quiet = {
            let mut last = lock(&self.last_empty);
            let quiet = last.is_none_or(|(at, before)| {
                sent - before == n && now.duration_since(at) >= self.linger
            });
            *last = Some((now, sent));
            quiet
        };
        if quiet {
            self.kick();
        }
    }

    fn kick(&self) {
        let (state, wake) = &*self.signal;
        lock(state).kicked = true;
        wake.notify_one();
    }
}

impl Drop for Prompt {
    fn drop(&mut self) {
        let (state, wake) = &*self.signal;
        lock(state).stop = true;
        wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
