//! End to end through the real binary: stdin and TCP sources, raw and
//! JSON formats, rejects, exit codes, SIGTERM.

mod common;

use std::io::Write as _;
use std::net::TcpStream;
use std::time::Duration;

use common::{cdrship, numbered, summary, texts, wait_until, Broker};

#[test]
fn stdin_raw_is_byte_exact() {
    let broker = Broker::start();
    let topic = broker.topic("stdin-raw", 1);
    let mut run = cdrship(&broker, &["-t", &topic]);
    // CRLF stripped, empty lines skipped, non-UTF-8 kept, last line unterminated.
    run.feed_all(b"\"a\",\"b\"\r\n\n\r\ncp1251 \xcf\xe5\xf2\xf0\xee\xe2\n\xff\x00\x01\nlast line");
    let reader = broker.reader(&topic);
    let values: Vec<Vec<u8>> = reader.read(4).into_iter().map(|m| m.value).collect();
    let want: Vec<&[u8]> = vec![
        b"\"a\",\"b\"",
        b"cp1251 \xcf\xe5\xf2\xf0\xee\xe2",
        b"\xff\x00\x01",
        b"last line",
    ];
    assert_eq!(values, want);
    assert_eq!(reader.stored(), 4);
}

#[test]
fn stdin_json_matches_the_expected_sample() {
    let broker = Broker::start();
    let topic = broker.topic("stdin-json", 1);
    let mut run = cdrship(
        &broker,
        &[
            "-t",
            &topic,
            "-f",
            "json",
            "--preset",
            "asterisk-cdr",
            "-k",
            "uniqueid",
        ],
    );
    run.feed_all(include_bytes!("../examples/Master.csv"));
    let expected: Vec<&str> = include_str!("../examples/Master.expected.jsonl")
        .lines()
        .collect();
    let got = broker.reader(&topic).read(expected.len());
    assert_eq!(texts(&got), expected);
    for (msg, want) in got.iter().zip(&expected) {
        let want: serde_json::Value = serde_json::from_str(want).unwrap();
        assert_eq!(
            msg.key.as_deref(),
            want["uniqueid"].as_str().map(str::as_bytes)
        );
    }
}

#[test]
fn malformed_and_overlong_lines_go_to_the_reject_topic_with_a_reason() {
    let broker = Broker::start();
    let topic = broker.topic("rejects", 1);
    let mut run = cdrship(
        &broker,
        &[
            "-t",
            &topic,
            "-f",
            "json",
            "--columns",
            "id:int,name",
            "--max-line-bytes",
            "40",
        ],
    );
    let long = "9,".to_string() + &"x".repeat(100);
    let input = format!("1,alice\n2\n\"3,bob\nx4,carol\n{long}\n5,dave\n");
    run.feed_all(input.as_bytes());
    let good = broker.reader(&topic).read(2);
    assert_eq!(
        texts(&good),
        [r#"{"id":1,"name":"alice"}"#, r#"{"id":5,"name":"dave"}"#]
    );
    let rejects = broker.reader(&format!("{topic}.rejects")).read(4);
    let got: Vec<(String, String)> = rejects
        .iter()
        .map(|m| (m.text(), m.header("cdrship.reject.reason").unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("2".into(), "expected 2 fields, found 1".into()),
            (
                "\"3,bob".into(),
                "not a CSV record: unbalanced quotes".into()
            ),
            ("x4,carol".into(), "field `id` is not an integer".into()),
            (
                long[..40].to_string(),
                "line of 102 bytes exceeds --max-line-bytes 40; value holds its first 40 bytes"
                    .into()
            ),
        ]
    );
    assert!(
        run.log().contains("4 of them to the reject topic"),
        "{}",
        run.log()
    );
}

#[test]
fn unreachable_broker_means_nonzero_exit_with_the_count() {
    let mut run = common::cdrship_without_broker(&[]);
    run.feed(numbered("cdr", 0..3).as_bytes());
    run.close_stdin();
    let status = run.wait();
    assert!(!status.success());
    let log = run.log();
    assert!(log.contains("3 of 3 lines not delivered"), "{log}");
    assert!(log.contains("timed out"), "{log}");
}

/// A dead broker and no delivery timeout: the producer queue fills (50,000
/// messages) and reading waits. SIGTERM with a 1 s shutdown timeout must
/// end that wait, fail the lines still waiting for room, and account for
/// every line read.
#[test]
fn shutdown_timeout_ends_the_wait_on_a_full_queue_and_counts_every_line() {
    let mut run = common::cdrship_without_broker(&common::WAIT_THEN_STOP_AT_ONCE);
    let mut stdin = run.child.stdin.take().expect("stdin piped");
    // More than the queue holds; the writer blocks once cdrship stops reading.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(numbered("cdr", 0..70_000).as_bytes());
    });
    wait_until("the producer queue is full", || {
        run.metric("cdrship_producer_queue_messages")
            .is_some_and(|queued| queued >= 50_000)
    });
    run.terminate();
    let status = run.wait();
    writer.join().unwrap();
    assert_eq!(status.code(), Some(1), "{}", run.log());
    let log = run.log();
    let (summary, read) = summary(&log);
    assert!(read > 50_000, "{summary}");
    assert!(
        summary.contains(&format!("{read} lines read, 0 delivered")),
        "{summary}"
    );
    assert!(
        log.contains(&format!("{read} of {read} lines not delivered")),
        "{log}"
    );
}

#[test]
fn json_without_columns_is_a_usage_error() {
    let broker = Broker::start();
    let mut run = cdrship(&broker, &["-t", "x", "-f", "json"]);
    assert_eq!(run.wait().code(), Some(2));
    assert!(run.log().contains("--preset"), "{}", run.log());
}

#[test]
fn sigterm_drains_every_line_read() {
    let broker = Broker::start();
    let topic = broker.topic("sigterm", 1);
    let mut run = cdrship(&broker, &["-t", &topic]);
    let input = numbered("call", 0..50_000);
    run.feed(input.as_bytes());
    // stdin stays open: only the signal ends the run.
    let reader = broker.reader(&topic);
    let mut got = Vec::new();
    reader.read_more(&mut got, 1);
    run.stop();
    let log = run.log();
    let (summary, read) = summary(&log);
    assert!(
        summary.contains(&format!("{read} lines read, {read} delivered")),
        "{summary}"
    );
    // SIGTERM may cut the line being read: its head is no record and goes
    // to the reject topic (see the test below), every whole line to Kafka.
    common::check_cut_at_stop(&broker, &topic, &input, read);
}

/// SIGHUP (the SSH session of `tail -f Master.csv | cdrship` closed, or
/// `kill -HUP` by habit) drains and exits like SIGTERM, logged; it used
/// to kill the process on the spot with its in-flight lines (issue 25,
/// defect 11).
#[test]
fn sighup_drains_every_line_read_and_says_so() {
    let broker = Broker::for_faults();
    let topic = broker.topic("sighup", 1);
    let mut run = cdrship(&broker, &["-t", &topic, "--metrics", "127.0.0.1:0"]);
    run.wait_for_log("shipping ");
    // The broker answers late (the mock) or not at all for a while (real
    // nodes stopped), so lines are in flight when the signal comes.
    broker.slow(Duration::from_millis(500));
    run.feed(numbered("call", 0..100).as_bytes());
    wait_until("the lines are read", || {
        run.metric("cdrship_lines_read_total{source=\"stdin\"}") == Some(100)
    });
    let delivered = run.metric("cdrship_lines_delivered_total{source=\"stdin\"}");
    run.signal("HUP");
    run.wait_for_log("SIGHUP");
    broker.fast();
    assert!(
        delivered.unwrap_or(0) < 100,
        "every line was delivered before SIGHUP"
    );
    let status = run.wait();
    let log = run.log();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("SIGHUP: stopping"), "{log}");
    assert!(log.contains("100 lines read, 100 delivered"), "{log}");
    assert_eq!(texts(&broker.reader(&topic).read(100)).len(), 100);
}

/// A follower or a listener is a daemon: SIGHUP (sent by habit after a
/// log rotation) has nothing to reopen, is logged and changes nothing.
#[test]
fn sighup_to_a_follower_is_logged_and_it_carries_on() {
    let broker = Broker::start();
    let f = common::Followed::new(&broker, 1, "sighup-file");
    let mut e = common::Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("cdr", 0..5));
    let mut run = f.start(&broker);
    e.check();
    run.signal("HUP");
    run.wait_for_log("SIGHUP");
    e.add(&f.path, numbered("cdr", 5..10));
    e.check();
    run.stop();
    e.nothing_more();
}

#[test]
fn a_line_cut_by_sigterm_goes_to_the_reject_topic_not_as_a_record() {
    let broker = Broker::start();
    let topic = broker.topic("cut", 1);
    let mut run = cdrship(&broker, &["-t", &topic]);
    // One write, read at once: the two lines and the head of a third.
    run.feed(b"call 1\ncall 2\ncall 3 to 4951");
    let reader = broker.reader(&topic);
    assert_eq!(texts(&reader.read(2)), ["call 1", "call 2"]);
    run.stop();
    let rejects = broker.reader(&format!("{topic}.rejects")).read(1);
    assert_eq!(rejects[0].text(), "call 3 to 4951");
    assert_eq!(
        rejects[0].header("cdrship.reject.reason").unwrap(),
        "unfinished: the stream was cut 14 bytes into this line, before its newline"
    );
    assert_eq!(reader.stored(), 2, "the head of a line is not a record");
    let log = run.log();
    assert!(log.contains("3 lines read"), "{log}");
    assert!(log.contains("1 of them to the reject topic"), "{log}");
}

#[test]
fn tcp_serves_20_concurrent_clients_in_order_per_connection() {
    let broker = Broker::start();
    let topic = broker.topic("tcp", 1);
    let mut run = cdrship(&broker, &["-t", &topic, "--listen", "127.0.0.1:0"]);
    let addr = run.listening_on();
    let clients: Vec<_> = (0..20)
        .map(|c| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                let mut lines = numbered(&format!("pbx{c}"), 0..500);
                lines.pop(); // the last line ends without a newline at close
                for chunk in lines.as_bytes().chunks(777) {
                    stream.write_all(chunk).unwrap();
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let reader = broker.reader(&topic);
    let got = texts(&reader.read(20 * 500));
    for c in 0..20 {
        let prefix = format!("pbx{c} ");
        let mine: Vec<&String> = got.iter().filter(|l| l.starts_with(&prefix)).collect();
        let want: Vec<String> = (0..500).map(|i| format!("{prefix}{i}")).collect();
        assert_eq!(mine, want.iter().collect::<Vec<_>>(), "client {c}");
    }
    wait_until("all connections closed", || {
        run.log().matches(": closed").count() == 20
    });
    run.stop();
    assert_eq!(reader.stored(), 10_000);
}

#[test]
fn meta_goes_into_headers_for_raw_and_fields_for_json() {
    let broker = Broker::start();
    let topic = broker.topic("meta", 1);
    let mut run = cdrship(&broker, &["-t", &topic, "--meta", "--host-id", "pbx7"]);
    run.feed_all(b"line\n");
    let got = broker.reader(&topic).read(1);
    assert_eq!(got[0].header("cdrship.host").as_deref(), Some("pbx7"));
    assert_eq!(got[0].header("cdrship.source").as_deref(), Some("stdin"));
    assert_eq!(got[0].header("cdrship.line").as_deref(), Some("1"));

    let topic = broker.topic("meta-json", 1);
    let args = [
        "-t",
        &topic,
        "-f",
        "json",
        "--columns",
        "a,b:int",
        "--meta",
        "--host-id",
        "pbx7",
    ];
    let mut run = cdrship(&broker, &args);
    run.feed_all(b"x,1\n\ny,2\n");
    let got = broker.reader(&topic).read(2);
    assert_eq!(
        texts(&got),
        [
            r#"{"a":"x","b":1,"_host":"pbx7","_source":"stdin","_line":1}"#,
            r#"{"a":"y","b":2,"_host":"pbx7","_source":"stdin","_line":3}"#
        ]
    );
}

#[test]
fn metrics_endpoint_counts_lines() {
    let broker = Broker::start();
    let topic = broker.topic("metrics", 1);
    let mut run = cdrship(&broker, &["-t", &topic, "--metrics", "127.0.0.1:0"]);
    run.feed(b"a\nb\nc\n");
    broker.reader(&topic).read(3);
    wait_until("delivered counter", || {
        run.metric("cdrship_lines_delivered_total{source=\"stdin\"}") == Some(3)
    });
    let body = run.metrics();
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(
        body.contains("cdrship_lines_read_total{source=\"stdin\"} 3"),
        "{body}"
    );
    assert!(
        body.contains("cdrship_bytes_read_total{source=\"stdin\"} 3"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE cdrship_lines_in_flight gauge\ncdrship_lines_in_flight 0"),
        "{body}"
    );
    run.close_stdin();
    assert!(run.wait().success(), "{}", run.log());
}

#[test]
fn a_terminal_shows_progress_a_pipe_does_not() {
    let broker = Broker::start();
    let topic = broker.topic("progress", 1);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("Master.csv");
    std::fs::write(&input, numbered("p", 0..20_000)).unwrap();
    // `script` gives cdrship a terminal, as when an admin runs it by hand.
    let command = format!(
        "{} -b {} -t {topic} < {}",
        env!("CARGO_BIN_EXE_cdrship"),
        broker.servers(),
        input.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (bsdutils)");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("% "), "no progress bar: {screen}");
    assert!(
        screen.contains("20000 lines read, 20000 delivered"),
        "{screen}"
    );
    assert_eq!(broker.reader(&topic).read(20_000).len(), 20_000);

    let mut piped = cdrship(&broker, &["-t", &topic]);
    piped.feed_all(numbered("q", 0..10).as_bytes());
    assert!(!piped.log().contains('%'), "{}", piped.log());
}

/// librdkafka reports "all brokers down" at every re-bootstrap cycle of an
/// outage, dozens of times a second: cdrship says it once, and says when
/// deliveries resume.
#[test]
fn a_broker_outage_is_said_once_and_so_is_its_end() {
    let broker = Broker::for_faults();
    let topic = broker.topic("outage-said-once", 1);
    let mut run = cdrship(&broker, &["-t", &topic]);
    let reader = broker.reader(&topic);
    run.feed(numbered("before", 0..10).as_bytes());
    let mut got = reader.read(10);
    broker.outage(std::time::Duration::from_secs(3));
    run.feed(numbered("after", 0..10).as_bytes());
    reader.read_more(&mut got, 20);
    run.stop();
    let log = run.log();
    let said = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(said("warning: kafka: every broker is down"), 1, "{log}");
    assert_eq!(said("AllBrokersDown"), 0, "{log}");
    // Each broker's failure to connect is no news once the outage is said.
    let failures = log
        .lines()
        .skip_while(|l| !l.contains("every broker is down"));
    assert_eq!(
        failures
            .filter(|l| l.contains("Connection refused"))
            .count(),
        0,
        "{log}"
    );
    assert_eq!(said("delivering again"), 1, "{log}");
}

/// Keyless lines go out in batches, each batch to one partition, the
/// partitions in turn: every partition gets lines, in order within it. A
/// `partitioner` of the user's own places them instead (`consistent`
/// hashes the absent key to one partition).
#[test]
fn keyless_batches_take_the_partitions_in_turn_unless_a_partitioner_is_set() {
    let broker = Broker::start();
    let lines = 20_000;
    for (partitioner, partitions_used) in [(None, 4), (Some("partitioner=consistent"), 1)] {
        let topic = broker.topic("spread", 4);
        let mut args = vec!["-t", &topic, "-v"];
        if let Some(partitioner) = partitioner {
            args.extend(["-X", partitioner]);
        }
        let mut run = cdrship(&broker, &args);
        // The partition count is known: batches from here on are placed.
        run.wait_for_log("has 4 partitions;");
        run.feed_all(numbered("line", 0..lines).as_bytes());
        let reader = broker.reader(&topic);
        let got = reader.read(lines);
        assert_eq!(reader.stored(), lines as i64, "no line twice");
        let mut by_partition = std::collections::BTreeMap::<i32, Vec<usize>>::new();
        for msg in &got {
            let n = msg.text()["line ".len()..].parse().unwrap();
            by_partition.entry(msg.partition).or_default().push(n);
        }
        assert_eq!(by_partition.len(), partitions_used, "{partitioner:?}");
        for numbers in by_partition.values() {
            assert!(numbers.windows(2).all(|w| w[0] < w[1]), "out of order");
        }
        let total: usize = by_partition.values().map(Vec::len).sum();
        assert_eq!(total, lines);
    }
}
