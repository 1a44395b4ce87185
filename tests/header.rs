//! `--header` end to end: a header line that cannot name columns goes to
//! the reject topic, and no data line after it is ever taken for the
//! header (consumed unseen); every one is rejected with the reason.

mod common;

use common::{append, cdrship, numbered, Broker, Followed, Msg};

/// The reject reasons of `msgs`.
fn reasons(msgs: &[Msg]) -> Vec<String> {
    msgs.iter()
        .map(|m| m.header("cdrship.reject.reason").expect("a reason"))
        .collect()
}

#[test]
fn a_bad_header_line_is_rejected_and_so_is_every_line_after_it() {
    let broker = Broker::start();
    let topic = broker.topic("bad-header", 1);
    let mut run = cdrship(&broker, &["-t", &topic, "-f", "json", "--header"]);
    run.feed(b"a:x,b\n1,2\n3,4\n");
    run.close_stdin();
    run.wait();
    let rejects = broker.reader(&format!("{topic}.rejects")).read(3);
    assert_eq!(common::texts(&rejects), ["a:x,b", "1,2", "3,4"]);
    let why = reasons(&rejects);
    assert!(why[0].contains("not a usable header"), "{why:?}");
    assert!(
        why[1..].iter().all(|r| r.contains("column names unknown")),
        "{why:?}"
    );
    assert_eq!(broker.reader(&topic).stored(), 0);
    assert!(run
        .log()
        .contains("3 lines read, 3 delivered (3 of them to the reject topic)"));
}

#[test]
fn a_resumed_file_with_a_bad_header_rejects_the_line_it_resumes_at() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "bad-header-resume");
    let rejects = broker.reader(&format!("{}.rejects", f.topic));
    append(&f.path, "a:x,b\n1,2\n");
    let extra = ["-f", "json", "--header"];
    let mut run = f.start_with(&broker, &extra);
    let mut got = rejects.read(2);
    run.stop();

    append(&f.path, &numbered("3,", 0..2));
    let mut run = f.start_with(&broker, &extra);
    rejects.read_more(&mut got, 4);
    run.stop();
    assert_eq!(common::texts(&got), ["a:x,b", "1,2", "3, 0", "3, 1"]);
    assert!(reasons(&got[1..])
        .iter()
        .all(|r| r.contains("column names unknown")));
    assert_eq!(broker.reader(&f.topic).stored(), 0);
}

#[test]
fn an_overlong_header_line_leaves_the_columns_unknown() {
    let broker = Broker::start();
    let topic = broker.topic("long-header", 1);
    let args = [
        "-t",
        &topic,
        "-f",
        "json",
        "--header",
        "--max-line-bytes",
        "8",
    ];
    let mut run = cdrship(&broker, &args);
    run.feed(b"abcdefghijklmnop\n1,2\n");
    run.close_stdin();
    run.wait();
    let rejects = broker.reader(&format!("{topic}.rejects")).read(2);
    let why = reasons(&rejects);
    assert!(why[0].contains("exceeds --max-line-bytes"), "{why:?}");
    assert!(why[1].contains("column names unknown"), "{why:?}");
    assert_eq!(broker.reader(&topic).stored(), 0);
}
