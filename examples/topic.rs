//! Create a topic on the cluster in `KAFKA_BROKERS`, with the cluster's
//! default replication, for benchmarks against a real broker (Apache Kafka
//! does not create topics on use in `scripts/kafka`'s set-up).
//!
//! `cargo run --release --example topic -- NAME PARTITIONS`; an existing
//! topic of that name is an error.

use anyhow::{anyhow, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let name = args.next().context("usage: topic NAME PARTITIONS")?;
    let partitions: i32 = args.next().context("PARTITIONS")?.parse()?;
    let servers = std::env::var("KAFKA_BROKERS").context("KAFKA_BROKERS")?;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .create()?;
    let new = NewTopic::new(&name, partitions, TopicReplication::Fixed(-1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for result in runtime.block_on(admin.create_topics([&new], &AdminOptions::new()))? {
        result.map_err(|(topic, e)| anyhow!("creating {topic}: {e}"))?;
    }
    Ok(())
}
