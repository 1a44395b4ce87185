//! The nodes of a real Apache Kafka cluster that `scripts/kafka up`
//! started (its run directory in `CDRSHIP_KAFKA_RUN`, as for the script),
//! for broker faults: SIGKILL, a controlled shutdown, SIGSTOP and SIGCONT,
//! a start again. The script keeps the processes; this asks it.
//!
//! The tests of one binary run in parallel on one cluster: each holds a
//! [`Claim`] on it, shared, or alone for a test that faults it, so no
//! other test sees its outage.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};

/// A test's hold on the cluster, released on drop.
pub struct Claim(#[allow(dead_code)] File);

impl Claim {
    /// Wait for the cluster, alone if `exclusive`.
    pub fn wait(exclusive: bool) -> Claim {
        let run = std::env::var_os("CDRSHIP_KAFKA_RUN")
            .map_or_else(|| std::env::temp_dir().join("cdrship-kafka"), PathBuf::from);
        let path = run.join("claim.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (scripts/kafka up first)", path.display()));
        if exclusive {
            file.lock().expect("an exclusive claim on the cluster");
        } else {
            file.lock_shared().expect("a shared claim on the cluster");
        }
        Claim(file)
    }
}

/// A fault `scripts/kafka` applies to nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL; returns once the process is gone.
    Kill,
    /// A controlled shutdown (SIGTERM); returns once the process is gone.
    Term,
    /// SIGSTOP: connections stay open, nothing answers.
    Stop,
    /// SIGCONT after [`Fault::Stop`].
    Cont,
    /// Start again after [`Fault::Kill`] or [`Fault::Term`]; returns once
    /// every node named serves.
    Start,
}

/// The nodes of the cluster at `servers` (node N is the Nth server).
#[derive(Debug, Clone)]
pub struct Nodes {
    servers: String,
    count: i32,
}

impl Nodes {
    /// The cluster whose bootstrap servers are `servers`.
    pub fn new(servers: &str) -> Nodes {
        Nodes {
            servers: servers.to_owned(),
            count: servers.split(',').count() as i32,
        }
    }

    /// Node numbers, 1 to the number of nodes.
    pub fn all(&self) -> Vec<i32> {
        (1..=self.count).collect()
    }

    /// Apply `fault` to `nodes` (together: a start of several waits for
    /// all, as a quorum needs more than one).
    pub fn fault(&self, fault: Fault, nodes: &[i32]) {
        let what = format!("{fault:?}").to_lowercase();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka");
        let numbers: Vec<String> = nodes.iter().map(i32::to_string).collect();
        let out = Command::new(&script)
            .arg(&what)
            .args(&numbers)
            .output()
            .expect("running scripts/kafka");
        assert!(
            out.status.success(),
            "scripts/kafka {what} {numbers:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The node leading `partition` of `topic`, as the cluster's metadata
    /// says now (polled: leadership moves after a fault).
    pub fn leader(&self, topic: &str, partition: i32) -> i32 {
        let mut leader = -1;
        self.metadata(topic, "a partition leader in the metadata", |partitions| {
            leader = partitions
                .iter()
                .find(|p| p.id() == partition)
                .map_or(-1, |p| p.leader());
            leader > 0
        });
        leader
    }

    /// How many partitions `topic` has.
    pub fn partitions(&self, topic: &str) -> i32 {
        let mut count = 0;
        self.metadata(topic, "the topic in the metadata", |partitions| {
            count = partitions.len() as i32;
            count > 0
        });
        count
    }

    /// Fetch `topic`'s metadata until `enough` says it is.
    fn metadata(
        &self,
        topic: &str,
        what: &str,
        mut enough: impl FnMut(&[rdkafka::metadata::MetadataPartition]) -> bool,
    ) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.servers)
            .create()
            .expect("metadata client");
        super::wait_until(what, || {
            consumer
                .fetch_metadata(Some(topic), Duration::from_secs(5))
                .is_ok_and(|meta| enough(meta.topics()[0].partitions()))
        });
    }
}
