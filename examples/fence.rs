//! How long after cdrship dies can its last messages still become
//! visible? The evidence for `--exactly-once-fence` (see bench/README.md).
//!
//! `cargo run --release --example fence -- CDRSHIP TOPIC KILLS [EVERY]`
//! against the cluster in `KAFKA_BROKERS` (started by `scripts/kafka up
//! --nodes 3`; TOPIC made by `examples/topic.rs` with 4 partitions):
//! each round feeds cdrship lines as fast as it takes them, SIGKILLs it
//! after a random moment, and watches the topic's partition ends until
//! they have not moved for `QUIET`. The time from the kill to the last
//! move is what a restart must wait before it reads back. Every EVERY-th
//! round (0: never) a node is SIGKILLed at the same instant
//! (`scripts/kafka kill`), in turn the leader of partition 0 and a
//! follower (whose partitions then wait for the in-sync set to shrink),
//! and started again after the round. Prints one line per round and the
//! longest wait.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};

/// How long the ends must stay put before a round is over.
const QUIET: Duration = Duration::from_secs(15);
const PARTITIONS: i32 = 4;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let cdrship = args
        .next()
        .context("usage: fence CDRSHIP TOPIC KILLS [EVERY]")?;
    let topic = args.next().context("TOPIC")?;
    let kills: u32 = args.next().context("KILLS")?.parse()?;
    let every: u32 = args.next().map_or(Ok(0), |e| e.parse())?;
    let servers = std::env::var("KAFKA_BROKERS").context("KAFKA_BROKERS")?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .create()?;
    let mut longest = Duration::ZERO;
    for round in 1..=kills {
        let node = (every > 0 && round.is_multiple_of(every)).then(|| {
            let leader = leader(&consumer, &topic);
            let nodes = servers.split(',').count() as i32;
            // Every other broker kill: a follower, the next node after it.
            if (round / every).is_multiple_of(2) {
                leader % nodes + 1
            } else {
                leader
            }
        });
        let waited = kill_and_watch(&cdrship, &servers, &topic, &consumer, round, node)?;
        longest = longest.max(waited);
        if let Some(node) = node {
            node_fault("start", node)?;
        }
    }
    println!("longest: {} ms over {kills} kills", longest.as_millis());
    Ok(())
}

/// One round: the time from the kill to the last move of the ends.
fn kill_and_watch(
    cdrship: &str,
    servers: &str,
    topic: &str,
    consumer: &BaseConsumer,
    round: u32,
    node: Option<i32>,
) -> Result<Duration> {
    let mut child = Command::new(cdrship)
        .args(["-b", servers, "-t", topic])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting cdrship")?;
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut n = 0u64;
        let mut batch = String::new();
        loop {
            batch.clear();
            for _ in 0..100 {
                n += 1;
                batch.push_str(&format!("fence,line,{n},2026-12-07 12:00:00,ANSWERED\n"));
            }
            if stdin.write_all(batch.as_bytes()).is_err() {
                return;
            }
        }
    });
    // Streaming first (after a node's restart the producer may take a
    // while to get its id and leaders), then the kill at a random moment.
    let start = ends(consumer, topic)?;
    let streaming = Instant::now();
    while ends(consumer, topic)? == start {
        if streaming.elapsed() > Duration::from_secs(60) {
            bail!("round {round}: cdrship sent nothing in 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let lead = 500 + (seed() % 1500);
    std::thread::sleep(Duration::from_millis(lead));
    // The last look while every partition has its leader; a node killed
    // takes some away until the cluster elects others.
    let before = ends(consumer, topic)?;
    if let Some(node) = node {
        node_fault("kill", node)?;
    }
    child.kill()?;
    let killed = Instant::now();
    child.wait()?;
    let _ = feeder.join();
    let (mut last, mut moved) = (before.clone(), Duration::ZERO);
    while killed.elapsed() < moved + QUIET {
        let now = ends_known(consumer, topic, &last);
        if now != last {
            moved = killed.elapsed();
            last = now;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let seen = last;
    let after: i64 = seen.iter().sum::<i64>() - before.iter().sum::<i64>();
    println!(
        "round {round}: {} ms to the last visible write ({after} messages visible after \
         the last look before the kill){}",
        moved.as_millis(),
        node.map_or(String::new(), |n| format!(", node {n} killed with it"))
    );
    Ok(moved)
}

/// Each partition's end where its leader answers at once, else the end
/// in `known`.
fn ends_known(consumer: &BaseConsumer, topic: &str, known: &[i64]) -> Vec<i64> {
    (0..PARTITIONS)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_millis(200))
                .map_or(known[p as usize], |(_, high)| high)
        })
        .collect()
}

/// Each partition's end (high watermark), as a consumer sees it.
fn ends(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i64>> {
    let mut ends = Vec::new();
    for partition in 0..PARTITIONS {
        // A partition without a leader for a moment: ask again.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match consumer.fetch_watermarks(topic, partition, Duration::from_secs(5)) {
                Ok((_, high)) => break ends.push(high),
                Err(e) if Instant::now() > deadline => bail!("partition {partition}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
    Ok(ends)
}

fn leader(consumer: &BaseConsumer, topic: &str) -> i32 {
    consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()
        .and_then(|m| m.topics()[0].partitions().first().map(|p| p.leader()))
        .unwrap_or(1)
}

fn node_fault(what: &str, node: i32) -> Result<()> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka");
    let status = Command::new(script)
        .args([what, &node.to_string()])
        .status()?;
    if !status.success() {
        bail!("scripts/kafka {what} {node} failed");
    }
    Ok(())
}

/// A cheap varying number for the moment of each kill.
fn seed() -> u64 {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
    now.map_or(0, |d| u64::from(d.subsec_nanos()))
}
