//! Hostile or broken peers end to end: one address hogging the TCP
//! server's slots, a storm of refused connections, idle connections
//! hoarding the metrics endpoint.

mod common;

use std::io::Write as _;

use common::{assert_closed_at_once, cdrship, connect_from, texts, wait_until, Broker};

#[test]
fn one_peer_beyond_max_connections_per_peer_is_closed_others_are_served() {
    let broker = Broker::start();
    let topic = broker.topic("per-peer", 1);
    let args = [
        "-t",
        &topic,
        "--listen",
        "127.0.0.1:0",
        "--max-connections-per-peer",
        "2",
    ];
    let mut run = cdrship(&broker, &args);
    let addr = run.listening_on();
    let reader = broker.reader(&topic);
    let mut got = Vec::new();

    let mut first = connect_from("127.0.0.1", addr);
    let mut second = connect_from("127.0.0.1", addr);
    first.write_all(b"first\n").unwrap();
    second.write_all(b"second\n").unwrap();
    reader.read_more(&mut got, 2);
    // Both are served, so the third from the same address is one too many.
    let mut third = connect_from("127.0.0.1", addr);
    assert_closed_at_once(&mut third);
    run.wait_for_log("refused, 2 connections from 127.0.0.1 already");

    // Another address is not locked out.
    let mut other = connect_from("127.0.0.2", addr);
    other.write_all(b"other\n").unwrap();
    reader.read_more(&mut got, 3);
    assert_eq!(texts(&got)[2], "other");

    // When one of the two closes, the peer may connect again.
    drop(first);
    wait_until("the first connection closed", || {
        run.log().matches(": closed").count() == 1
    });
    let mut again = connect_from("127.0.0.1", addr);
    again.write_all(b"again\n").unwrap();
    reader.read_more(&mut got, 4);
    assert_eq!(texts(&got)[3], "again");
    drop((second, other, again));
    run.stop();
    assert!(run.log().contains("1 connections refused"), "{}", run.log());
    assert_eq!(reader.stored(), 4);
}
