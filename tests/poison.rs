//! Poison lines: a line the producer or the broker refuses for its content
//! must not pin progress forever (and fail every restart). It goes to the
//! reject topic with the reason; a configuration that cannot work fails at
//! start with what to change.

mod common;

use common::{cdrship, texts, Broker};

#[test]
fn max_line_bytes_beyond_the_producer_limit_is_a_usage_error() {
    let broker = Broker::start();
    let mut run = cdrship(&broker, &["-t", "x", "-X", "message.max.bytes=1000"]);
    assert_eq!(run.wait().code(), Some(2), "{}", run.log());
    let log = run.log();
    assert!(log.contains("--max-line-bytes 65536"), "{log}");
    assert!(log.contains("message.max.bytes"), "{log}");
}

/// JSON can be far longer than its line (a control character becomes six
/// bytes): a mapped message beyond the producer's limit goes raw to the
/// reject topic, the lines around it to the topic, and the run succeeds.
#[test]
fn a_mapped_message_beyond_the_limit_goes_to_the_reject_topic() {
    let broker = Broker::start();
    let topic = broker.topic("too-large", 1);
    let limits = ["-X", "message.max.bytes=3000", "--max-line-bytes", "1500"];
    let json = ["-f", "json", "--columns", "v"];
    let mut run = cdrship(&broker, &[&["-t", &topic][..], &limits, &json].concat());
    let big = "\u{1}".repeat(1000);
    run.feed_all(format!("first\n{big}\nlast\n").as_bytes());
    let reader = broker.reader(&topic);
    assert_eq!(
        texts(&reader.read(2)),
        [r#"{"v":"first"}"#, r#"{"v":"last"}"#]
    );
    let rejects = broker.reader(&format!("{topic}.rejects")).read(1);
    assert_eq!(rejects[0].text(), big);
    let why = rejects[0].header("cdrship.reject.reason").unwrap();
    assert!(why.contains("6008 bytes"), "{why}");
    assert!(run
        .log()
        .contains("3 lines read, 3 delivered (1 of them to the reject topic), 0 failed"));
    assert_eq!(reader.stored(), 2);
}

/// The broker refuses a message for its content (here: too large for the
/// topic): it goes to the reject topic with the broker's reason instead of
/// failing the run; the lines after it still arrive.
#[test]
fn a_message_the_broker_refuses_goes_to_the_reject_topic() {
    let broker = Broker::start();
    let topic = broker.topic("broker-refused", 1);
    let mut run = cdrship(&broker, &["-t", &topic]);
    let reader = broker.reader(&topic);
    run.feed(b"first\n");
    let mut got = reader.read(1);
    broker.refuse_large(&topic);
    let poison = "poison".repeat(100);
    run.feed(format!("{poison}\n").as_bytes());
    let rejects = broker.reader(&format!("{topic}.rejects")).read(1);
    assert_eq!(rejects[0].text(), poison);
    let why = rejects[0].header("cdrship.reject.reason").unwrap();
    assert!(why.contains("refused by the broker"), "{why}");
    run.feed(b"last\n");
    reader.read_more(&mut got, 2);
    assert_eq!(texts(&got), ["first", "last"]);
    run.close_stdin();
    assert!(run.wait().success(), "{}", run.log());
    assert!(run
        .log()
        .contains("3 lines read, 3 delivered (1 of them to the reject topic), 0 failed"));
}

/// A missing topic is a configuration error, not a poison line: the run
/// fails and says what to change.
#[test]
fn a_missing_topic_fails_with_what_to_change() {
    let broker = Broker::start();
    let topic = broker.missing_topic("missing");
    let quick = ["-X", "topic.metadata.propagation.max.ms=100"];
    let mut run = cdrship(&broker, &[&["-t", &topic][..], &quick].concat());
    run.feed(b"a line\n");
    run.close_stdin();
    assert_eq!(run.wait().code(), Some(1));
    assert!(run.log().contains("create the topic"), "{}", run.log());
}
