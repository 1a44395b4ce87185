//! End to end: `--exactly-once` for stdin with `--spool-dir`. A spooled
//! line's id is its place in the spool, so the lines an earlier run had
//! sent but not saved as delivered are found in the topic when the spool
//! replays them, and are not sent again.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;

use common::{cdrship, numbered, texts, Broker};

/// `--exactly-once` with the fence one broker needs (see exactly_once.rs).
const EXACTLY_ONCE: [&str; 3] = ["--exactly-once", "--exactly-once-fence", "1"];

#[test]
fn replayed_lines_already_in_kafka_are_not_sent_again() {
    let broker = Broker::start();
    let topic = broker.topic("exactly-once-spool", 1);
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().to_str().unwrap();
    let args = [&["-t", &topic, "--spool-dir", dir][..], &EXACTLY_ONCE].concat();
    cdrship(&broker, &args).feed_all(numbered("cdr", 0..100).as_bytes());
    let path = spool.path().join("spool.state.json");
    let mut state: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(state["written"]["clean"], true, "{state}");
    assert_eq!(state["written"]["from"][0]["offset"], 100, "{state}");

    // A crash before any save: every line is replayed from the segment,
    // and every one is in the topic already.
    state["offset"] = 0.into();
    state["written"] = serde_json::json!({"clean": false, "from": [{"topic": topic, "partition": 0, "offset": 0}]});
    fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    let mut second = cdrship(&broker, &args);
    second.feed_all(numbered("new", 0..10).as_bytes());
    assert!(
        second
            .log()
            .contains("100 of the delivered lines were in Kafka already"),
        "{}",
        second.log()
    );

    let reader = broker.reader(&topic);
    let got = reader.read(reader.stored() as usize);
    let want: Vec<String> = [numbered("cdr", 0..100), numbered("new", 0..10)]
        .concat()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(texts(&got), want);
    let ids: Vec<String> = got
        .iter()
        .map(|m| m.header("cdrship.id").unwrap())
        .collect();
    assert!(ids.iter().all(|id| id.starts_with("spool:")), "{ids:?}");
}

/// SIGKILL while stdin streams into the spool: the lines read before each
/// kill arrive once (the ones still in the pipe were never read). Without
/// the option the same kills leave duplicates (the spool's saved
/// position trails the acks).
#[test]
fn sigkills_while_stdin_streams_leave_no_duplicate_and_no_gap() {
    let broker = Broker::start();
    let topic = broker.topic("exactly-once-spool-kill", 3);
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().to_str().unwrap();
    let args = [&["-t", &topic, "--spool-dir", dir][..], &EXACTLY_ONCE].concat();
    let watched = [&args[..], &["--metrics", "127.0.0.1:0"]].concat();
    for round in 0..4 {
        let mut killed = cdrship(&broker, &watched);
        let mut stdin = killed.child.stdin.take().unwrap();
        let lines = numbered(&format!("round{round}"), 0..50_000);
        // The writer fails with EPIPE once the process is killed.
        let writer = std::thread::spawn(move || drop(stdin.write_all(lines.as_bytes())));
        // The count includes the lines the spool replays first.
        killed.wait_for_log("shipping stdin");
        let replayed: u64 = killed
            .log()
            .split_once("spool: sending ")
            .and_then(|(_, rest)| rest.split(' ').next()?.parse().ok())
            .unwrap_or(0);
        common::wait_until("lines stream", || {
            killed
                .metric("cdrship_lines_delivered_total{source=\"stdin\"}")
                .is_some_and(|n| n > replayed + 3000)
        });
        killed.signal("KILL");
        killed.wait();
        writer.join().unwrap();
    }
    cdrship(&broker, &args).feed_all(numbered("last", 0..100).as_bytes());

    let reader = broker.reader(&topic);
    let got = texts(&reader.read(reader.stored() as usize));
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for line in &got {
        *seen.entry(line).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{} lines arrived twice: {twice:?}",
        twice.len()
    );
    // Lines are read in order: what arrived of a round is its first lines.
    for round in 0..4 {
        let prefix = format!("round{round} ");
        let arrived = got.iter().filter(|l| l.starts_with(&prefix)).count();
        assert!(arrived > 3000, "round {round}: {arrived}");
        let want = numbered(&format!("round{round}"), 0..arrived);
        for line in want.lines() {
            assert!(seen.contains_key(line), "round {round}: {line} missing");
        }
    }
    assert!(numbered("last", 0..100)
        .lines()
        .all(|l| seen.contains_key(l)));
}

/// After an unclean stop, `--listen` waits the fence before it reads: a
/// PBX is refused meanwhile (its lines stay with it), and a SIGTERM in
/// the fence leaves the spool's lines for the next start, exit 75 (it
/// used to say "0 lines read" and exit 0).
#[test]
fn a_stop_during_the_fence_leaves_the_spool_for_the_next_start() {
    let broker = Broker::start();
    let topic = broker.topic("exactly-once-listen-fence", 1);
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().to_str().unwrap();
    let addr = format!("127.0.0.1:{}", common::tls::free_port());
    let fence = ["--exactly-once", "--exactly-once-fence", "5"];
    let args = [
        &["-t", &topic, "--spool-dir", dir, "--listen", &addr][..],
        &fence,
    ]
    .concat();
    let mut first = cdrship(&broker, &args);
    first.wait_for_log("listening on");
    std::net::TcpStream::connect(&addr)
        .unwrap()
        .write_all(numbered("before", 0..10).as_bytes())
        .unwrap();
    let reader = broker.reader(&topic);
    let mut got = reader.read(10);
    first.signal("KILL");
    first.wait();

    let mut second = cdrship(&broker, &args);
    second.wait_for_log("waiting 5 s for what it had sent");
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "a PBX's lines taken during the fence"
    );
    second.terminate();
    assert_eq!(second.wait().code(), Some(75), "{}", second.log());
    assert!(
        second.log().contains("is sent at the next start"),
        "{}",
        second.log()
    );

    let mut third = cdrship(&broker, &args);
    third.wait_for_log("listening on");
    let mut pbx = std::net::TcpStream::connect(&addr).unwrap();
    pbx.write_all(numbered("after", 0..10).as_bytes()).unwrap();
    drop(pbx);
    reader.read_more(&mut got, 20);
    third.stop();
    assert_eq!(
        texts(&got),
        [numbered("before", 0..10), numbered("after", 0..10)]
            .concat()
            .lines()
            .collect::<Vec<_>>()
    );
    assert_eq!(reader.stored(), 20, "a line sent twice");
}
