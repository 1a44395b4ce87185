//! A background consumer of one topic that keeps every stored message once
//! (by partition and offset) and knows which numbered lines arrived. Tests
//! that write numbered lines (the chaos suite, the fault explorer) ask it
//! what is still missing; how a number is read from a message is theirs.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Broker, Msg, Reader, DEADLINE};

/// Reads a line number out of a message; `None` for other messages.
pub type Number = fn(&Msg) -> Option<u64>;

/// Collects every message of a topic in a background thread.
pub struct Collector {
    seen: Arc<Mutex<Vec<Msg>>>,
    arrived: Arc<Mutex<Vec<bool>>>,
    /// Every line number below this one has arrived.
    complete: Arc<AtomicU64>,
    last_arrival: Arc<Mutex<Instant>>,
    stop: Arc<AtomicBool>,
}

impl Collector {
    /// Start collecting `topic` from its beginning.
    pub fn start(broker: &Broker, topic: &str, number: Number) -> Collector {
        let collector = Collector {
            seen: Arc::default(),
            arrived: Arc::default(),
            complete: Arc::default(),
            last_arrival: Arc::new(Mutex::new(Instant::now())),
            stop: Arc::default(),
        };
        let servers = broker.servers().to_owned();
        let topic = topic.to_owned();
        let mut reader = broker.reader(&topic);
        let (seen, arrived) = (collector.seen.clone(), collector.arrived.clone());
        let (complete, last) = (collector.complete.clone(), collector.last_arrival.clone());
        let stop = collector.stop.clone();
        std::thread::spawn(move || {
            // A consumer that re-reads after an outage is not a duplicate
            // produced by cdrship: keep each (partition, offset) once.
            let mut stored = HashSet::new();
            let mut batch = Vec::new();
            let mut idle = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                reader.poll_into(&mut batch);
                if batch.is_empty() {
                    // The mock cluster's consumer can stall for good after
                    // broker_down/up (the data is all there); a fresh
                    // consumer from the beginning reads on.
                    if idle.elapsed() > Duration::from_secs(3) {
                        if let Some(fresh) = Reader::try_new(&servers, &topic) {
                            reader = fresh;
                        }
                        idle = Instant::now();
                    }
                    continue;
                }
                idle = Instant::now();
                batch.retain(|m| stored.insert((m.partition, m.offset)));
                if batch.is_empty() {
                    continue;
                }
                let mut have = arrived.lock().unwrap();
                for n in batch.iter().filter_map(number) {
                    let n = n as usize;
                    if have.len() <= n {
                        have.resize(n + 1, false);
                    }
                    have[n] = true;
                }
                let mut prefix = complete.load(Ordering::Relaxed) as usize;
                while have.get(prefix) == Some(&true) {
                    prefix += 1;
                }
                complete.store(prefix as u64, Ordering::Relaxed);
                drop(have);
                *last.lock().unwrap() = Instant::now();
                seen.lock().unwrap().append(&mut batch);
            }
        });
        collector
    }

    /// Whether line `n` has arrived.
    pub fn has(&self, n: u64) -> bool {
        self.arrived.lock().unwrap().get(n as usize) == Some(&true)
    }

    /// The lines of `wanted` that have not arrived (yet).
    pub fn missing(&self, wanted: impl IntoIterator<Item = u64>) -> Vec<u64> {
        let have = self.arrived.lock().unwrap();
        wanted
            .into_iter()
            .filter(|&n| have.get(n as usize) != Some(&true))
            .collect()
    }

    /// How long ago the last new message arrived.
    pub fn quiet_for(&self) -> Duration {
        self.last_arrival.lock().unwrap().elapsed()
    }

    /// Every message collected so far, each stored message once.
    pub fn messages(&self) -> Vec<Msg> {
        self.seen.lock().unwrap().clone()
    }

    /// Wait until every line below `n` has arrived; name the missing ones
    /// if they never do.
    pub fn caught_up(&self, n: u64) {
        let deadline = Instant::now() + DEADLINE;
        while self.complete.load(Ordering::Relaxed) < n {
            if Instant::now() > deadline {
                let missing = self.missing(0..n);
                let shown = &missing[..missing.len().min(20)];
                panic!(
                    "{} of the first {n} lines missing: {shown:?}",
                    missing.len()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
