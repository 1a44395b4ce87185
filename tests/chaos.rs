//! Chaos suite for file mode: a writer appends numbered CDR lines the way
//! Asterisk does (open, append, close per batch) while a driver rotates the
//! file in every style, kills cdrship with SIGKILL and restarts it, and
//! takes the broker down and up. At the end every line number must have
//! arrived; a duplicate is only allowed as a replay of the same file
//! position (same `cdrship.id`), which happens only after a SIGKILL.
//!
//! `CDRSHIP_CHAOS_ROUNDS` (default 12) sets how many actions the driver
//! takes; the long version is e.g. `CDRSHIP_CHAOS_ROUNDS=200`.

mod common;

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Broker, Cdrship, Followed, Msg};

/// Lines per writer batch (one open/append/close, like one cdr_csv call).
const BATCH: u64 = 20;

/// Appends numbered lines to `path` until stopped.
struct Writer {
    written: Arc<AtomicU64>,
    /// Held while writing a batch; the driver takes it to rotate between
    /// batches or to pause the writer.
    lock: Arc<Mutex<()>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(path: PathBuf) -> Writer {
        let written = Arc::new(AtomicU64::new(0));
        let lock = Arc::new(Mutex::new(()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (written, lock, stop) = (written.clone(), lock.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    {
                        let _guard = lock.lock().unwrap();
                        let first = written.load(Ordering::Relaxed);
                        let batch: String = (first..first + BATCH)
                            .map(|n| format!("\"\",\"100\",\"200\",\"chaos\",{n},\"Иван\"\n"))
                            .collect();
                        let mut file = OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&path)
                            .unwrap();
                        file.write_all(batch.as_bytes()).unwrap();
                        written.store(first + BATCH, Ordering::Relaxed);
                    }
                    // Load shaping, not synchronisation: about 10k lines/s.
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        Writer {
            written,
            lock,
            stop,
            thread: Some(thread),
        }
    }

    fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    fn finish(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.written()
    }
}

/// Collects every message of a topic in a background thread.
struct Collector {
    seen: Arc<Mutex<Vec<Msg>>>,
    /// Every line number below this one has arrived.
    complete: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Collector {
    fn start(broker: &Broker, topic: &str) -> Collector {
        let servers = broker.servers().to_owned();
        let topic = topic.to_owned();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let complete = Arc::new(AtomicU64::new(0));
        let (seen2, stop2, complete2) = (seen.clone(), stop.clone(), complete.clone());
        let mut reader = broker.reader(&topic);
        std::thread::spawn(move || {
            // A consumer that re-reads after an outage is not a duplicate
            // produced by cdrship: keep each (partition, offset) once.
            let mut stored = HashSet::new();
            let mut arrived: Vec<bool> = Vec::new();
            let mut batch = Vec::new();
            let mut idle = std::time::Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                reader.poll_into(&mut batch);
                if batch.is_empty() {
                    // The mock cluster's consumer can stall for good after
                    // broker_down/up (cdrship's data is all there); a fresh
                    // consumer from the beginning reads on.
                    if idle.elapsed() > Duration::from_secs(3) {
                        if let Some(fresh) = common::Reader::try_new(&servers, &topic) {
                            reader = fresh;
                        }
                        idle = std::time::Instant::now();
                    }
                    continue;
                }
                idle = std::time::Instant::now();
                batch.retain(|m| stored.insert((m.partition, m.offset)));
                for n in batch.iter().map(number) {
                    let n = n as usize;
                    if arrived.len() <= n {
                        arrived.resize(n + 1, false);
                    }
                    arrived[n] = true;
                }
                let mut prefix = complete2.load(Ordering::Relaxed) as usize;
                while arrived.get(prefix) == Some(&true) {
                    prefix += 1;
                }
                complete2.store(prefix as u64, Ordering::Relaxed);
                seen2.lock().unwrap().append(&mut batch);
            }
        });
        Collector {
            seen,
            complete,
            stop,
        }
    }

    /// Wait until every line below `n` has arrived; name the missing ones
    /// if they never do.
    fn caught_up(&self, n: u64) {
        let deadline = std::time::Instant::now() + common::DEADLINE;
        while self.complete.load(Ordering::Relaxed) < n {
            if std::time::Instant::now() > deadline {
                let seen = self.seen.lock().unwrap();
                let have: HashSet<u64> = seen.iter().map(number).collect();
                let missing: Vec<u64> = (0..n).filter(|x| !have.contains(x)).collect();
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

fn number(msg: &Msg) -> u64 {
    msg.text().split(',').nth(4).unwrap().parse().unwrap()
}

/// Rename `path` away; false if there was nothing to rename (right after
/// a delete round the writer may not have recreated the file yet: its lock
/// is not fair, so the driver can win it several rounds in a row).
fn rotate_rename(path: &Path) -> bool {
    match fs::rename(path, sibling(path)) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => panic!("renaming {}: {e}", path.display()),
    }
}

fn sibling(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    name.into()
}

#[test]
fn file_mode_survives_rotations_kills_and_outages_without_loss() {
    let rounds: usize = std::env::var("CDRSHIP_CHAOS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(12);
    let broker = Broker::start();
    let followed = Followed::new(&broker, 4, "chaos");
    let path = followed.path.clone();
    let collector = Collector::start(&broker, &followed.topic);
    let mut writer = Writer::start(path.clone());
    let mut run: Cdrship = followed.start(&broker);
    let (mut kills, mut rotations, mut outages) = (0, 0, 0);
    // cdrship must have opened the file before the first rotation: a file
    // rotated away before any reader saw it is beyond anyone's reach.
    common::wait_until("the first batch", || writer.written() > 0);
    collector.caught_up(writer.written());

    for round in 0..rounds {
        let before = writer.written();
        match round % 6 {
            0 => {
                let _pause = writer.lock.lock().unwrap();
                rotations += u32::from(rotate_rename(&path));
                fs::File::create(&path).unwrap();
            }
            1 => {
                // Lazy recreate: the writer creates the file on its next batch.
                let _pause = writer.lock.lock().unwrap();
                rotations += u32::from(rotate_rename(&path));
            }
            2 => {
                // copytruncate; copy and truncate are one step for the writer
                // (the window between them loses lines for any reader).
                let _pause = writer.lock.lock().unwrap();
                if path.exists() {
                    fs::copy(&path, sibling(&path)).unwrap();
                    OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                    rotations += 1;
                }
            }
            3 => {
                // SIGKILL at an arbitrary point, lines in flight.
                run.signal("KILL");
                run.wait();
                kills += 1;
                run = followed.start(&broker);
            }
            4 => {
                // Delete + recreate; cdrship must already hold the file, so
                // let it catch up with the writer paused.
                let _pause = writer.lock.lock().unwrap();
                collector.caught_up(writer.written());
                if path.exists() {
                    fs::remove_file(&path).unwrap();
                    rotations += 1;
                }
            }
            _ => {
                // Broker outage (mock) or, with a real broker, a SIGKILL
                // followed by a rotation while cdrship is down.
                if broker.outage(Duration::from_secs(2)) {
                    outages += 1;
                } else {
                    let _pause = writer.lock.lock().unwrap();
                    collector.caught_up(writer.written());
                    run.signal("KILL");
                    run.wait();
                    rotations += u32::from(rotate_rename(&path));
                    kills += 1;
                    run = followed.start(&broker);
                }
            }
        }
        eprintln!(
            "chaos: round {round} done ({} lines written)",
            writer.written()
        );
        collector.caught_up(before);
        // The next round may rotate again. A line written after this round
        // must arrive first: then cdrship has moved on to the file this
        // round left, as it would between two real rotations (two renames
        // before any reader looked would hide a file from every reader).
        let after = writer.written();
        common::wait_until("the writer to write again", || writer.written() > after);
        collector.caught_up(after + 1);
    }

    let total = writer.finish();
    collector.caught_up(total);
    run.stop();

    let seen = collector.seen.lock().unwrap();
    let mut first: HashMap<u64, String> = HashMap::new();
    let mut duplicates = 0;
    for msg in seen.iter() {
        let id = msg.header("cdrship.id").expect("id header");
        match first.get(&number(msg)) {
            None => {
                first.insert(number(msg), id);
            }
            Some(original) => {
                duplicates += 1;
                assert_eq!(
                    *original,
                    id,
                    "line {} re-sent from another position",
                    number(msg)
                );
            }
        }
    }
    let lost = (0..total).filter(|n| !first.contains_key(n)).count();
    eprintln!(
        "chaos: {total} lines, {rounds} rounds, {kills} kills, {rotations} rotations, \
         {outages} outages, {lost} lost, {duplicates} duplicates"
    );
    assert_eq!(lost, 0);
    if kills == 0 {
        assert_eq!(duplicates, 0, "duplicates without a SIGKILL");
    }
}
