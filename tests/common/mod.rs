//! Shared end-to-end harness: a Kafka-protocol broker (librdkafka's mock
//! cluster, or a real one named by `KAFKA_BROKERS`), a consumer that reads
//! a topic back, and the real `cdrship` binary run as a child process.
//!
//! Every wait polls a condition until a deadline; nothing sleeps and hopes.

#![allow(dead_code)] // each test binary uses a different part of the harness

mod expected;

#[allow(unused_imports)] // not every test binary uses them
pub use expected::{append, held, truncate, Expected};

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer as _};
use rdkafka::{Offset, TopicPartitionList};

pub mod acls;
pub mod cluster;
pub mod collector;
pub mod tls;
pub mod tmpfs;

/// How long any single wait in a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A broker for one test.
pub struct Broker {
    mock: Option<MockCluster<'static, DefaultProducerContext>>,
    /// The real cluster's nodes, for a test that faults them.
    nodes: Option<cluster::Nodes>,
    servers: String,
    _claim: Option<cluster::Claim>,
}

impl Broker {
    /// The broker in `KAFKA_BROKERS` (shared with the tests running
    /// beside), or a fresh one-node mock cluster.
    pub fn start() -> Broker {
        Broker::new(false)
    }

    /// The same, for a test that takes the broker down or slows it: the
    /// real cluster is this test's alone while it runs.
    pub fn for_faults() -> Broker {
        Broker::new(true)
    }

    fn new(faults: bool) -> Broker {
        match std::env::var("KAFKA_BROKERS") {
            Ok(servers) if !servers.is_empty() => Broker {
                _claim: Some(cluster::Claim::wait(faults)),
                mock: None,
                nodes: faults.then(|| cluster::Nodes::new(&servers)),
                servers,
            },
            _ => {
                let mock = MockCluster::new(1).expect("starting the mock cluster");
                let servers = mock.bootstrap_servers();
                Broker {
                    mock: Some(mock),
                    nodes: None,
                    servers,
                    _claim: None,
                }
            }
        }
    }

    /// Take the broker down for `outage`, then bring it back: on a real
    /// cluster every node is killed, then all start again.
    pub fn outage(&self, outage: Duration) {
        self.down();
        std::thread::sleep(outage);
        self.up();
    }

    /// Take the broker down: connections refused (every node of a real
    /// cluster SIGKILLed).
    pub fn down(&self) {
        match (&self.mock, &self.nodes) {
            (Some(mock), _) => mock.broker_down(1).expect("broker_down"),
            (None, Some(nodes)) => nodes.fault(cluster::Fault::Kill, &nodes.all()),
            (None, None) => panic!("a fault on a real cluster needs Broker::for_faults()"),
        }
    }

    /// Bring the broker back after [`down`](Self::down) (a real
    /// cluster's nodes serve again when this returns).
    pub fn up(&self) {
        match (&self.mock, &self.nodes) {
            (Some(mock), _) => mock.broker_up(1).expect("broker_up"),
            (None, Some(nodes)) => nodes.fault(cluster::Fault::Start, &nodes.all()),
            (None, None) => panic!("a fault on a real cluster needs Broker::for_faults()"),
        }
    }

    /// Make requests slow until [`fast`](Self::fast): the mock answers
    /// after a round trip of `rtt`; a real cluster's nodes are SIGSTOPped
    /// (connections open, no answers).
    pub fn slow(&self, rtt: Duration) {
        match (&self.mock, &self.nodes) {
            (Some(mock), _) => mock.broker_round_trip_time(1, rtt).unwrap(),
            (None, Some(nodes)) => nodes.fault(cluster::Fault::Stop, &nodes.all()),
            (None, None) => panic!("a fault on a real cluster needs Broker::for_faults()"),
        }
    }

    /// Answer at once again after [`slow`](Self::slow).
    pub fn fast(&self) {
        match (&self.mock, &self.nodes) {
            (Some(mock), _) => mock.broker_round_trip_time(1, Duration::ZERO).unwrap(),
            (None, Some(nodes)) => nodes.fault(cluster::Fault::Cont, &nodes.all()),
            (None, None) => panic!("a fault on a real cluster needs Broker::for_faults()"),
        }
    }

    /// The real cluster's nodes, for faults of single nodes; `None` with
    /// the mock or without [`for_faults`](Self::for_faults).
    pub fn nodes(&self) -> Option<&cluster::Nodes> {
        self.nodes.as_ref()
    }

    /// From now on, refuse messages to `topic` over 200 bytes as too
    /// large: the mock refuses the next produce request so; a real
    /// cluster's topic gets `max.message.bytes=200`.
    pub fn refuse_large(&self, topic: &str) {
        if let Some(mock) = &self.mock {
            let too_large = rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
            mock.request_errors(rdkafka::types::RDKafkaApiKey::Produce, &[too_large]);
            return;
        }
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.servers)
            .create()
            .expect("admin client");
        let config =
            AlterConfig::new(ResourceSpecifier::Topic(topic)).set("max.message.bytes", "200");
        let results =
            block_on(admin.alter_configs([&config], &AdminOptions::new())).expect("alter_configs");
        for result in results {
            result.expect("max.message.bytes set");
        }
    }

    /// A topic name the broker does not know (a real cluster does not
    /// create topics on use; the mock is told to say so).
    pub fn missing_topic(&self, hint: &str) -> String {
        let topic = format!("{hint}-never-created-{}", std::process::id());
        if let Some(mock) = &self.mock {
            let unknown = rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
            mock.topic_error(&topic, unknown).expect("topic error set");
        }
        topic
    }

    /// The mock cluster, for faults beyond [`outage`](Self::outage) (slow
    /// round trips, request errors); `None` with a real broker.
    pub fn mock(&self) -> Option<&MockCluster<'static, DefaultProducerContext>> {
        self.mock.as_ref()
    }

    /// Bootstrap servers for clients.
    pub fn servers(&self) -> &str {
        &self.servers
    }

    /// Create a topic with a unique name (and its `.rejects` sibling) and
    /// return the name.
    pub fn topic(&self, hint: &str, partitions: i32) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{hint}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        for topic in [name.clone(), format!("{name}.rejects")] {
            self.create(&topic, partitions);
        }
        name
    }

    fn create(&self, topic: &str, partitions: i32) {
        if let Some(mock) = &self.mock {
            mock.create_topic(topic, partitions, 1)
                .expect("creating mock topic");
            return;
        }
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.servers)
            .create()
            .expect("admin client");
        // The cluster's default replication (3 on three nodes).
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
        let results =
            block_on(admin.create_topics([&new], &AdminOptions::new())).expect("create_topics");
        for result in results {
            result.expect("topic created");
        }
    }

    /// A consumer of `topic` from its beginning, all partitions.
    pub fn reader(&self, topic: &str) -> Reader {
        Reader::try_new(&self.servers, topic).expect("consumer for the topic")
    }
}

/// Run an admin request to its end.
pub fn block_on<T>(request: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(request)
}

fn partition_count(consumer: &BaseConsumer, topic: &str) -> Option<i32> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let meta = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()?;
        let n = meta.topics()[0].partitions().len() as i32;
        if n > 0 {
            return Some(n);
        }
        if Instant::now() > deadline {
            return None;
        }
    }
}

/// One consumed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// The message value.
    pub value: Vec<u8>,
    /// The message key.
    pub key: Option<Vec<u8>>,
    /// Header name and value pairs.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// The create time the producer gave it, in milliseconds.
    pub timestamp: Option<i64>,
}

impl Msg {
    /// The value as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8(self.value.clone()).expect("utf-8 value")
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// Whether `again` is this very record stored a second time by the
    /// broker, not a second send: same partition, id, value and create
    /// time. librdkafka keeps a batch's timestamps when it retries it after
    /// a lost response; a line cdrship sends again gets a new one. A real
    /// broker drops such a retry by its producer sequence; the mock cluster
    /// checks sequences only for transactional producers and appends it.
    pub fn stored_again(&self, again: &Msg) -> bool {
        self.partition == again.partition
            && self.timestamp.is_some()
            && self.timestamp == again.timestamp
            && self.value == again.value
            && self.header("cdrship.id") == again.header("cdrship.id")
    }
}

/// Reads a topic back.
pub struct Reader {
    consumer: BaseConsumer,
    servers: String,
    topic: String,
    partitions: i32,
}

impl Reader {
    /// A consumer of `topic` on `servers` from its beginning, all
    /// partitions; `None` if the broker cannot be reached.
    pub fn try_new(servers: &str, topic: &str) -> Option<Reader> {
        Reader::try_with(servers, topic, &[])
    }

    /// The same with librdkafka `properties` (TLS, SASL) on top.
    pub fn try_with(servers: &str, topic: &str, properties: &[(&str, &str)]) -> Option<Reader> {
        let mut config = ClientConfig::new();
        for (key, value) in properties {
            config.set(*key, *value);
        }
        let consumer: BaseConsumer = config
            .set("bootstrap.servers", servers)
            .set("group.id", format!("test-{topic}"))
            .set("enable.auto.commit", "false")
            // A position lost in a broker outage must re-read, not skip.
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        let partitions = partition_count(&consumer, topic)?;
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).expect("assign");
        Some(Reader {
            consumer,
            servers: servers.to_owned(),
            topic: topic.to_owned(),
            partitions,
        })
    }

    /// Read until `n` messages in total arrived (panics at the deadline).
    pub fn read(&self, n: usize) -> Vec<Msg> {
        let mut out = Vec::with_capacity(n);
        self.read_more(&mut out, n);
        out
    }

    /// Extend `out` until it holds `n` messages.
    pub fn read_more(&self, out: &mut Vec<Msg>, n: usize) {
        let deadline = Instant::now() + DEADLINE;
        while out.len() < n {
            assert!(
                Instant::now() < deadline,
                "{}: only {} of {n} messages arrived",
                self.topic,
                out.len()
            );
            self.poll_into(out);
        }
    }

    /// Append every message available now (waiting at most 100 ms for
    /// the first) to `out`.
    pub fn poll_all(&self, out: &mut Vec<Msg>) {
        loop {
            let before = out.len();
            self.poll_into(out);
            if out.len() == before {
                return;
            }
        }
    }

    /// Append the next message to `out`, if one arrives within 100 ms.
    pub fn poll_into(&self, out: &mut Vec<Msg>) {
        let Some(result) = self.consumer.poll(Duration::from_millis(100)) else {
            return;
        };
        // Errors such as AllBrokersDown during an outage are transient.
        let m = match result {
            Ok(m) => m,
            Err(e) => return eprintln!("consumer: {e}"),
        };
        if m.payload()
            .is_some_and(|v| v.starts_with(MARKER.as_bytes()))
        {
            return;
        }
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Msg {
            value: m.payload().unwrap_or_default().to_vec(),
            key: m.key().map(<[u8]>::to_vec),
            headers,
            partition: m.partition(),
            offset: m.offset(),
            timestamp: m.timestamp().to_millis(),
        });
    }

    /// The first offset each partition still holds (its low watermark):
    /// above 0 on the mock when its log outgrew what it keeps (~5 MB per
    /// partition) and it dropped the oldest messages.
    pub fn earliest(&self) -> Vec<i64> {
        (0..self.partitions)
            .map(|p| {
                self.consumer
                    .fetch_watermarks(&self.topic, p, DEADLINE)
                    .expect("watermarks")
                    .0
            })
            .collect()
    }

    /// Messages stored in the topic now: proves nothing extra was produced,
    /// without waiting for it. A marker is produced to every partition and
    /// a fresh consumer counts what precedes the markers (watermarks would
    /// be shorter, but not every Kafka-compatible broker counts them alike).
    pub fn stored(&self) -> i64 {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let marker = format!("{MARKER}{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.servers)
            .create()
            .expect("marker producer");
        for p in 0..self.partitions {
            producer
                .send(
                    BaseRecord::<(), _>::to(&self.topic)
                        .partition(p)
                        .payload(&marker),
                )
                .expect("marker enqueued");
        }
        producer.flush(DEADLINE).expect("markers delivered");
        let fresh = Reader::try_new(&self.servers, &self.topic).expect("consumer");
        let deadline = Instant::now() + DEADLINE;
        let (mut count, mut markers) = (0, 0);
        while markers < self.partitions {
            assert!(
                Instant::now() < deadline,
                "{}: markers never arrived",
                self.topic
            );
            let Some(Ok(m)) = fresh.consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            match m.payload() {
                Some(value) if value == marker.as_bytes() => markers += 1,
                Some(value) if value.starts_with(MARKER.as_bytes()) => {}
                _ => count += 1,
            }
        }
        count
    }
}

/// Prefix of the markers [`Reader::stored`] produces; readers skip them.
const MARKER: &str = "\u{0}cdrship-test-marker-";

/// A running `cdrship` with its stderr collected line by line.
pub struct Cdrship {
    /// The child process (stdin piped).
    pub child: Child,
    log: Arc<Mutex<Vec<String>>>,
    log_thread: Option<std::thread::JoinHandle<()>>,
}

/// Start `cdrship -b <broker> ARGS` with stdin piped.
pub fn cdrship(broker: &Broker, args: &[&str]) -> Cdrship {
    cdrship_at(broker.servers(), args)
}

/// Start `cdrship -b SERVERS ARGS` with stdin piped.
pub fn cdrship_at(servers: &str, args: &[&str]) -> Cdrship {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdrship"));
    command
        .arg("-b")
        .arg(servers)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    spawn(command)
}

/// `cdrship -t TOPIC --listen 127.0.0.1:0 EXTRA` on a fresh one-partition
/// topic named after `hint`: the topic, the server and its address.
pub fn serve_tcp(
    broker: &Broker,
    hint: &str,
    extra: &[&str],
) -> (String, Cdrship, std::net::SocketAddr) {
    let topic = broker.topic(hint, 1);
    let mut args = vec!["-t", &topic, "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let run = cdrship(broker, &args);
    let addr = run.listening_on();
    (topic, run, addr)
}

/// Start a prepared command and collect its stderr.
pub fn spawn(mut command: Command) -> Cdrship {
    let mut child = command.spawn().expect("spawning cdrship");
    let stderr = child.stderr.take().expect("stderr is piped");
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let log_thread = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[cdrship] {line}");
            sink.lock().unwrap().push(line);
        }
    });
    Cdrship {
        child,
        log,
        log_thread: Some(log_thread),
    }
}

impl Cdrship {
    /// Wait for an exit with status 1 and return the one line that says
    /// a broker refused cdrship (the summary aside).
    pub fn the_refusal(&mut self) -> String {
        assert_eq!(self.wait().code(), Some(1), "{}", self.log());
        let log = self.log();
        let refused: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("refused cdrship") && !l.contains("not delivered"))
            .collect();
        assert_eq!(refused.len(), 1, "{refused:#?}");
        refused[0].to_owned()
    }

    /// Wait until a stderr line contains `needle`; returns that line.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            assert!(Instant::now() < deadline, "cdrship never logged `{needle}`");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The offset of cdrship's open descriptor for `path` (from /proc):
    /// how far it has read the file; `None` while it has not opened it.
    pub fn file_offset(&self, path: &std::path::Path) -> Option<u64> {
        let pid = self.child.id();
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
            if std::fs::read_link(fd.path()).ok().as_deref() == Some(path) {
                let name = fd.file_name();
                let info =
                    std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", name.to_str()?));
                return info
                    .ok()?
                    .lines()
                    .find_map(|l| l.strip_prefix("pos:")?.trim().parse().ok());
            }
        }
        None
    }

    /// The address after "listening on ".
    pub fn listening_on(&self) -> std::net::SocketAddr {
        let line = self.wait_for_log("listening on ");
        line.rsplit(' ').next().unwrap().parse().expect("address")
    }

    /// The address of the `--metrics` endpoint (needs `--metrics 127.0.0.1:0`).
    pub fn metrics_addr(&self) -> std::net::SocketAddr {
        let line = self.wait_for_log("metrics on http://");
        let addr = line.rsplit("http://").next().unwrap();
        addr.trim_end_matches("/metrics").parse().expect("address")
    }

    /// A scrape of the `--metrics` endpoint: the whole HTTP response.
    pub fn metrics(&self) -> String {
        scrape(self.metrics_addr()).expect("the metrics endpoint answered")
    }

    /// The value of one sample (`name{labels}`) of the metrics endpoint.
    pub fn metric(&self, sample: &str) -> Option<u64> {
        self.metrics().lines().find_map(|line| {
            let value = line.strip_prefix(sample)?.strip_prefix(' ')?;
            value.parse().ok()
        })
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Close stdin (EOF for cdrship).
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// Send SIGTERM.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// SIGTERM, and expect a clean exit: everything read was delivered.
    pub fn stop(&mut self) {
        self.terminate();
        assert!(self.wait().success(), "{}", self.log());
    }

    /// Whether `status`, after SIGTERM, is the signal's default death
    /// before cdrship started: before it installed its handlers and then
    /// said what it ships or where it listens. It had read nothing, so
    /// there was nothing to drain; any later SIGTERM must end in an exit.
    pub fn killed_before_start(&self, status: ExitStatus) -> bool {
        use std::os::unix::process::ExitStatusExt as _;
        let log = self.log();
        status.signal() == Some(15) && !log.contains("shipping ") && !log.contains("listening on ")
    }

    /// Send a signal by name (`TERM`, `STOP`, `CONT`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Wait for exit (panics at the deadline, killing the child).
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // stderr is at EOF once the process is gone: collect the rest.
                if let Some(thread) = self.log_thread.take() {
                    thread.join().expect("stderr reader");
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("cdrship did not exit; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Write `bytes`, close stdin and expect a clean exit: every line
    /// delivered.
    pub fn feed_all(&mut self, bytes: &[u8]) {
        self.feed(bytes);
        self.close_stdin();
        assert!(self.wait().success(), "{}", self.log());
    }

    /// Write all of `bytes` to stdin.
    pub fn feed(&mut self, bytes: &[u8]) {
        use std::io::Write as _;
        self.child
            .stdin
            .as_mut()
            .expect("stdin open")
            .write_all(bytes)
            .expect("writing to cdrship");
    }
}

impl Drop for Cdrship {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// With the broker down: no delivery timeout (lines wait in the queue),
/// a 1 s shutdown timeout, and the metrics endpoint to watch progress.
pub const WAIT_THEN_STOP_AT_ONCE: [&str; 6] = [
    "-X",
    "message.timeout.ms=0",
    "--shutdown-timeout",
    "1",
    "--metrics",
    "127.0.0.1:0",
];

/// A local address where nothing listens (a broker that is down, for
/// mock and real brokers alike).
pub fn dead_address() -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    closed.local_addr().unwrap().to_string()
}

/// Start cdrship against a broker address where nothing listens, with a
/// short delivery timeout so undeliverable lines fail fast; stdin piped.
pub fn cdrship_without_broker(args: &[&str]) -> Cdrship {
    let addr = dead_address();
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdrship"));
    command
        .args([
            "-b",
            &addr,
            "-t",
            "nowhere",
            "-X",
            "message.timeout.ms=1000",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    spawn(command)
}

/// cdrship with the broker down, spooling stdin in `dir`, with metrics:
/// `-b <dead> -t topic --spool-dir dir --metrics 127.0.0.1:0 ARGS`.
pub fn spooling_without_broker(topic: &str, dir: &std::path::Path, args: &[&str]) -> Cdrship {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdrship"));
    command
        .args(["-b", &dead_address(), "-t", topic, "--spool-dir"])
        .arg(dir)
        .args(["--metrics", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    spawn(command)
}

/// A followed file with saved progress in a temp dir, and its topic.
pub struct Followed {
    /// Holds the file and the state directory.
    pub dir: tempfile::TempDir,
    /// The followed file (`Master.csv`, not created yet).
    pub path: std::path::PathBuf,
    /// The topic it ships to.
    pub topic: String,
}

impl Followed {
    /// A fresh directory and a topic with `partitions`.
    pub fn new(broker: &Broker, partitions: i32, hint: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Master.csv");
        Followed {
            topic: broker.topic(hint, partitions),
            dir,
            path,
        }
    }

    /// Start `cdrship --file PATH --state-dir DIR` with `extra` arguments.
    pub fn start_with(&self, broker: &Broker, extra: &[&str]) -> Cdrship {
        self.start_at(broker.servers(), extra)
    }

    /// The same against the brokers `servers`.
    pub fn start_at(&self, servers: &str, extra: &[&str]) -> Cdrship {
        let state = self.dir.path().join("state");
        let mut args = vec![
            "-t",
            &self.topic,
            "--file",
            self.path.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        cdrship_at(servers, &args)
    }

    /// Start it with no extra arguments.
    pub fn start(&self, broker: &Broker) -> Cdrship {
        self.start_with(broker, &[])
    }

    /// A path next to the followed file.
    pub fn sibling(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Wait until the saved state says every line before byte `offset`
    /// is delivered (a real broker acknowledges later than the mock).
    pub fn wait_saved(&self, offset: usize) {
        let saved = format!("\"offset\":{offset},");
        wait_until("the position is saved", || {
            std::fs::read_dir(self.dir.path().join("state")).is_ok_and(|dir| {
                dir.flatten().any(|e| {
                    e.file_name().to_string_lossy().ends_with(".state.json")
                        && std::fs::read_to_string(e.path()).is_ok_and(|s| s.contains(&saved))
                })
            })
        });
    }

    /// The state file saved in the state directory.
    pub fn state_file(&self) -> std::path::PathBuf {
        std::fs::read_dir(self.dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".state.json"))
            .expect("a saved state")
    }
}

/// Connect to `to` from the local address `from` (any of 127.0.0.0/8 is
/// a distinct peer on Linux).
pub fn connect_from(from: &str, to: std::net::SocketAddr) -> std::net::TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

/// Panic unless the peer closed `stream` without a word: a read ends
/// (EOF, or a reset when our bytes were unread) within the deadline.
pub fn assert_closed_at_once(stream: &mut std::net::TcpStream) {
    use std::io::Read as _;
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    match stream.read(&mut [0; 64]) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("the connection answered {n} bytes instead of closing"),
        Err(e) => panic!("the connection was not closed: {e}"),
    }
}

/// `GET /metrics` from `addr`: the whole response, or `None` when the
/// connection failed or was closed without one.
pub fn scrape(addr: std::net::SocketAddr) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut http = std::net::TcpStream::connect(addr).ok()?;
    http.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    http.read_to_string(&mut response).ok()?;
    Some(response).filter(|r| !r.is_empty())
}

/// Poll `condition` until it holds or the deadline passes.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Lines `"<prefix> <i>"` for `range`, newline-terminated.
pub fn numbered(prefix: &str, range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("{prefix} {i}\n")).collect()
}

/// The texts of `msgs`.
pub fn texts(msgs: &[Msg]) -> Vec<String> {
    msgs.iter().map(Msg::text).collect()
}

/// Every text in the reject topic of `topic` (call once cdrship exited).
pub fn rejected(broker: &Broker, topic: &str) -> Vec<String> {
    let rejects = broker.reader(&format!("{topic}.rejects"));
    let stored = rejects.stored() as usize;
    texts(&rejects.read(stored))
}

/// After a signal stopped cdrship reading `input`, of which it read
/// `read` lines: the whole ones reached `topic` in order, nothing more,
/// and the one it cut, if any, went to the reject topic as the head of the
/// next line, never to the topic as a short record.
pub fn check_cut_at_stop(broker: &Broker, topic: &str, input: &str, read: usize) {
    let cut = rejected(broker, topic);
    assert!(cut.len() <= 1, "{cut:?}");
    let whole = read - cut.len();
    let reader = broker.reader(topic);
    let want: Vec<&str> = input.lines().take(whole).collect();
    assert_eq!(texts(&reader.read(whole)), want);
    assert_eq!(reader.stored(), whole as i64);
    if let [head] = &cut[..] {
        let next = input.lines().nth(whole).expect("a line was cut");
        assert!(next.starts_with(head.as_str()) && next != head, "{head:?}");
    }
}

/// The exit summary line of `log` and the number of lines read it names.
pub fn summary(log: &str) -> (&str, usize) {
    let line = log
        .lines()
        .find(|l| l.contains("lines read"))
        .expect("summary");
    let read = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    (line, read)
}
