//! Broker faults, for file and stream schedules alike. On the mock: an
//! outage, slow round trips, request errors. On a real three-node cluster
//! (`scripts/kafka`): the outage with every node killed, slowness as
//! every node stopped, and what only a cluster has: a partition leader
//! killed or stopped, a rolling restart, in-sync replicas below
//! `min.insync.replicas`, partitions added while cdrship runs.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use crate::common::cluster::{Fault, Nodes};
use crate::common::Broker;
use crate::schedule::Step;

/// Apply `step` if it is a broker fault (on `topic`); what it did, or
/// `None` for any other step.
pub fn apply(broker: &Broker, topic: &str, step: &Step) -> Option<String> {
    let note = match step {
        Step::BrokerDown { ms } => {
            broker.outage(Duration::from_millis(*ms));
            String::new()
        }
        Step::BrokerSlow { rtt_ms, ms } => {
            broker.slow(Duration::from_millis(*rtt_ms));
            std::thread::sleep(Duration::from_millis(*ms));
            broker.fast();
            String::new()
        }
        Step::RequestErrors { count, ms } => {
            request_errors(broker, *count, Duration::from_millis(*ms));
            String::new()
        }
        Step::LeaderKill { ms } => {
            let nodes = real(broker);
            let leader = nodes.leader(topic, 0);
            nodes.fault(Fault::Kill, &[leader]);
            std::thread::sleep(Duration::from_millis(*ms));
            nodes.fault(Fault::Start, &[leader]);
            format!("node {leader} killed and started")
        }
        Step::LeaderStop { ms } => {
            let nodes = real(broker);
            let leader = nodes.leader(topic, 0);
            nodes.fault(Fault::Stop, &[leader]);
            std::thread::sleep(Duration::from_millis(*ms));
            nodes.fault(Fault::Cont, &[leader]);
            format!("node {leader} stopped and continued")
        }
        Step::RollingRestart => {
            let nodes = real(broker);
            for node in nodes.all() {
                nodes.fault(Fault::Term, &[node]);
                nodes.fault(Fault::Start, &[node]);
            }
            String::new()
        }
        Step::UnderMinIsr { ms } => {
            // Two of three down: the one left leads every partition with
            // itself alone in sync, and refuses acks=all writes.
            let nodes = real(broker);
            let leader = nodes.leader(topic, 0);
            let others: Vec<i32> = nodes.all().into_iter().filter(|&n| n != leader).collect();
            nodes.fault(Fault::Kill, &others);
            std::thread::sleep(Duration::from_millis(*ms));
            nodes.fault(Fault::Start, &others);
            format!("nodes {others:?} killed and started")
        }
        Step::PartitionsAdded { more } => {
            let total = add_partitions(broker, topic, *more);
            format!("{total} partitions now")
        }
        _ => return None,
    };
    Some(note)
}

fn real(broker: &Broker) -> &Nodes {
    broker
        .nodes()
        .expect("a cluster fault needs the real cluster of scripts/kafka")
}

/// Push `count` retriable errors onto Produce requests for `lasting`,
/// then clear what is left (the mock's; a real cluster has
/// [`Step::UnderMinIsr`] instead).
fn request_errors(broker: &Broker, count: usize, lasting: Duration) {
    let mock = broker.mock().expect("request errors are the mock's");
    let kinds = [
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
    ];
    let errors: Vec<RDKafkaRespErr> = (0..count).map(|i| kinds[i % kinds.len()]).collect();
    mock.request_errors(RDKafkaApiKey::Produce, &errors);
    std::thread::sleep(lasting);
    mock.clear_request_errors(RDKafkaApiKey::Produce);
}

/// Give `topic` `more` partitions; how many it has then.
fn add_partitions(broker: &Broker, topic: &str, more: i32) -> i32 {
    let nodes = real(broker);
    let now = nodes.partitions(topic);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.servers())
        .create()
        .expect("admin client");
    let total = now + more;
    let added = crate::common::block_on(admin.create_partitions(
        [&NewPartitions::new(topic, total as usize)],
        &AdminOptions::new(),
    ))
    .expect("create_partitions");
    for result in added {
        result.expect("partitions added");
    }
    total
}
