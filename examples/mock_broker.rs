//! A standalone Kafka-protocol broker for benchmarks and manual trials:
//! librdkafka's mock cluster in its own process.
//!
//! `cargo run --release --example mock_broker -- TOPIC [PARTITIONS]` prints
//! the bootstrap address on stdout and serves until stdin closes.

use std::io::Read as _;

use rdkafka::mocking::MockCluster;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "bench".into());
    let partitions: i32 = args.next().map_or(Ok(4), |p| p.parse())?;
    let cluster = MockCluster::new(1)?;
    cluster.create_topic(&topic, partitions, 1)?;
    println!("{}", cluster.bootstrap_servers());
    // Serve until whoever started us closes our stdin.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}
