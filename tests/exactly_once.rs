//! End to end: `--exactly-once` in file mode. Lines whose messages an
//! earlier run wrote after its saved position (a crash between the
//! broker's ack and the checkpoint) are found in the topic at start and
//! not sent again; a plain consumer sees every line once.

mod common;

use std::fs;

use common::{numbered, Broker, Expected, Followed};

/// `--exactly-once` with the fence one broker needs: the killed
/// process's last requests are written within milliseconds, not 30 s.
const EXACTLY_ONCE: [&str; 3] = ["--exactly-once", "--exactly-once-fence", "1"];

/// Move the saved position of `f` back to `offset` as a crash right
/// after the acks of the lines behind it would leave it; `written` says
/// what it keeps for the read-back (`None`: a state saved without the
/// option).
fn rewind(f: &Followed, offset: usize, written: Option<serde_json::Value>) {
    let path = f.state_file();
    let mut state: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    state["offset"] = offset.into();
    // The window proves the bytes before the saved offset: a state saved
    // at `offset` would hold other ones; saved without, none is asked.
    state.as_object_mut().unwrap().remove("window");
    match written {
        Some(written) => state["written"] = written,
        None => {
            state.as_object_mut().unwrap().remove("written");
        }
    }
    fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

#[test]
fn lines_already_in_kafka_after_the_saved_position_are_not_sent_again() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "exactly-once");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("cdr", 0..100));
    let mut first = f.start_with(&broker, &EXACTLY_ONCE);
    e.check();
    first.stop();
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(f.state_file()).unwrap()).unwrap();
    assert_eq!(state["written"]["clean"], true, "{state}");
    assert_eq!(state["written"]["from"][0]["offset"], 100, "{state}");

    // A crash after line 40's ack: 60 lines are in the topic past the
    // saved position.
    let at_40 = numbered("cdr", 0..40).len();
    let from = serde_json::json!({"clean": false, "from": [{"topic": f.topic, "partition": 0, "offset": 30}]});
    rewind(&f, at_40, Some(from));
    e.add(&f.path, numbered("new", 0..10));
    let mut second = f.start_with(&broker, &EXACTLY_ONCE);
    e.check();
    second.stop();
    let log = second.log();
    assert!(log.contains("did not stop cleanly"), "{log}");
    assert!(
        log.contains("exactly once: 70 messages of lines after the saved position"),
        "{log}"
    );
    assert!(
        log.contains("60 of the delivered lines were in Kafka already"),
        "{log}"
    );
    e.nothing_more();
}

#[test]
fn a_state_saved_without_the_option_is_read_back_from_the_start() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 2, "exactly-once-upgrade");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("cdr", 0..50));
    let mut first = f.start(&broker);
    e.reader.read_more(&mut e.got, 50);
    first.stop();
    rewind(&f, numbered("cdr", 0..20).len(), None);
    e.add(&f.path, numbered("new", 0..5));
    let mut second = f.start_with(&broker, &EXACTLY_ONCE);
    e.reader.read_more(&mut e.got, 55);
    second.stop();
    let log = second.log();
    assert!(
        log.contains("30 of the delivered lines were in Kafka already"),
        "{log}"
    );
    assert_eq!(sorted(common::texts(&e.got)), sorted(e.want.clone()));
    e.nothing_more();
}

/// The real thing: SIGKILL while lines stream, so some are acknowledged
/// (or written and not acknowledged yet) beyond the saved position; after
/// the restarts the consumer sees every line once. Without the option
/// the same kills leave duplicates (the checkpoint trails the acks by a
/// save, and this disk's fsyncs take milliseconds).
#[test]
fn sigkills_with_lines_in_flight_leave_no_duplicate() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 3, "exactly-once-kill");
    let mut e = Expected::new(&broker, &f.topic);
    let args = [&EXACTLY_ONCE[..], &["--metrics", "127.0.0.1:0"]].concat();
    for round in 0..4 {
        e.add(&f.path, numbered(&format!("round{round}"), 0..20_000));
        let mut killed = f.start_with(&broker, &args);
        common::wait_until("lines stream", || {
            killed
                .metric("cdrship_lines_delivered_total{source=\"file\"}")
                .is_some_and(|n| n > 3000)
        });
        killed.signal("KILL");
        killed.wait();
    }
    let mut last = f.start_with(&broker, &EXACTLY_ONCE);
    e.reader.read_more(&mut e.got, e.want.len());
    last.stop();
    assert_eq!(sorted(common::texts(&e.got)), sorted(e.want.clone()));
    e.nothing_more();
}

/// A pipe or socket without a spool cannot be read again, and without a
/// state nothing says where to read Kafka back from: refused before
/// anything is read.
#[test]
fn exactly_once_where_lines_cannot_be_checked_is_a_usage_error() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "exactly-once-refused");
    let file = f.path.to_str().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["-t", "x", "--exactly-once"],
            "needs --file or --spool-dir",
        ),
        (
            &["-t", "x", "--exactly-once", "--listen", "127.0.0.1:0"],
            "needs --file or --spool-dir",
        ),
        (
            &["-t", "x", "--exactly-once", "--file", file],
            "needs --state-dir",
        ),
    ];
    for (args, why) in cases {
        let mut run = common::cdrship(&broker, args);
        assert_eq!(run.wait().code(), Some(2), "{args:?}: {}", run.log());
        assert!(run.log().contains(why), "{args:?}: {}", run.log());
    }
}

/// A file that shrank and grew while stopped (a power loss) is read again
/// from the start; with `--exactly-once` the topics are read back whole,
/// so the lines sent before arrive once and every new call arrives.
#[test]
fn a_file_that_shrank_and_grew_while_stopped_sends_nothing_twice() {
    const OLD: &str = "2026-12-07 10:00:00,+74951234567,+78121234567,ANSWERED,old";
    const NEW: &str = "2026-12-07 11:00:00,+74951234567,+78121234567,ANSWERED,new";
    let broker = Broker::start();
    let f = Followed::new(&broker, 2, "exactly-once-shrank");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered(OLD, 0..200));
    let mut first = f.start_with(&broker, &EXACTLY_ONCE);
    e.reader.read_more(&mut e.got, 200);
    first.stop();
    let kept = numbered(OLD, 0..150).len() as u64;
    fs::OpenOptions::new()
        .write(true)
        .open(&f.path)
        .unwrap()
        .set_len(kept)
        .unwrap();
    e.add(&f.path, numbered(NEW, 0..100));
    // The 50 lines cut off were delivered before: they stay in the topic,
    // the 150 kept are not sent again.
    let mut second = f.start_with(&broker, &EXACTLY_ONCE);
    e.reader.read_more(&mut e.got, 300);
    second.stop();
    assert_eq!(sorted(common::texts(&e.got)), sorted(e.want.clone()));
    e.nothing_more();
}

/// Without `--exactly-once-fence`, the wait after an unclean stop is the
/// brokers' own bound on a lagging replica or a silent broker
/// (`replica.lag.time.max.ms`, `broker.session.timeout.ms`) plus 5 s: a
/// cluster set to lag less waits less, one set to lag more is not cut
/// short by a fixed default. A broker that does not say gets Kafka's
/// default.
#[test]
fn the_fence_is_the_brokers_lag_bound_plus_a_margin() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "exactly-once-fence");
    common::append(&f.path, &numbered("cdr", 0..10));
    let mut killed = f.start_with(&broker, &EXACTLY_ONCE);
    broker.reader(&f.topic).read(10);
    killed.signal("KILL");
    killed.wait();
    let mut next = f.start_with(&broker, &["--exactly-once"]);
    let waiting = next.wait_for_log("waiting ");
    let log = next.log();
    if broker.mock().is_some() {
        // librdkafka's mock answers no DescribeConfigs.
        assert!(
            log.contains("replica.lag.time.max.ms could not be read"),
            "{log}"
        );
        assert!(waiting.contains("waiting 35 s"), "{log}");
    } else {
        // scripts/kafka: replica.lag.time.max.ms=10000, broker.session.timeout.ms=6000.
        assert!(
            log.contains("the brokers let a replica lag 10 s at most"),
            "{log}"
        );
        assert!(waiting.contains("waiting 15 s"), "{log}");
    }
    // Stopped in the fence: nothing read, the lines after the saved
    // position wait for the next start (it used to say "0 lines read"
    // and exit 0).
    next.terminate();
    assert_eq!(next.wait().code(), Some(75), "{}", next.log());
    assert!(
        next.log().contains("stopped before reading: ")
            && next
                .log()
                .contains("is read from its saved position at the next start"),
        "{}",
        next.log()
    );
}
