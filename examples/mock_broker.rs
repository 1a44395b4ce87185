//! A standalone Kafka-protocol broker for benchmarks and manual trials:
//! librdkafka's mock cluster in its own process.
//!
//! `cargo run --release --example mock_broker -- TOPIC [PARTITIONS]` prints
//! the bootstrap address on stdout and serves until stdin closes. A line
//! `down` on stdin takes the broker down, `up` brings it back (outages for
//! the benchmark's memory probe).

use std::io::BufRead as _;

use rdkafka::mocking::MockCluster;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "bench".into());
    let partitions: i32 = args.next().map_or(Ok(4), |p| p.parse())?;
    let cluster = MockCluster::new(1)?;
    cluster.create_topic(&topic, partitions, 1)?;
    println!("{}", cluster.bootstrap_servers());
    // Serve until whoever started us closes our stdin.
    for command in std::io::stdin().lock().lines() {
        match command?.trim() {
            "down" => cluster.broker_down(1)?,
            "up" => cluster.broker_up(1)?,
            other => eprintln!("mock_broker: unknown command {other:?} (down, up)"),
        }
    }
    Ok(())
}
