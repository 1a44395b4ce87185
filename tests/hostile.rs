//! Hostile or broken peers end to end: one address hogging the TCP
//! server's slots, a storm of refused connections, idle connections
//! hoarding the metrics endpoint.

mod common;

use std::io::Write as _;
use std::net::TcpStream;

use common::{
    assert_closed_at_once, cdrship, connect_from, scrape, serve_tcp, texts, wait_until, Broker,
};

#[test]
fn one_peer_beyond_max_connections_per_peer_is_closed_others_are_served() {
    let broker = Broker::start();
    let (topic, mut run, addr) =
        serve_tcp(&broker, "per-peer", &["--max-connections-per-peer", "2"]);
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

/// Refusals the log accounts for: one line each, plus the `N more`
/// summaries.
fn refusals_logged(log: &str) -> (usize, u64) {
    let lines = log.lines().filter(|l| l.contains(": refused, ")).count();
    let summarised = log
        .lines()
        .filter_map(|l| {
            l.split_once(" more connections refused")?
                .0
                .rsplit(' ')
                .next()
        })
        .map(|n| n.parse::<u64>().unwrap())
        .sum::<u64>();
    (lines, summarised)
}

#[test]
fn a_storm_of_refused_peers_is_summarised_not_logged_line_by_line() {
    const STORM: u64 = 200;
    let broker = Broker::start();
    let args = ["--allow", "127.0.0.1/32", "--metrics", "127.0.0.1:0"];
    let (_, mut run, addr) = serve_tcp(&broker, "storm", &args);
    for _ in 0..STORM {
        assert_closed_at_once(&mut connect_from("127.0.0.2", addr));
    }
    let refused = "cdrship_connections_refused_total{reason=\"allow\"}";
    assert_eq!(run.metric(refused), Some(STORM));
    // Every refusal shows in the log, most of them in a periodic summary.
    wait_until("the log accounts for every refusal", || {
        let (lines, summarised) = refusals_logged(&run.log());
        lines as u64 + summarised == STORM
    });
    let (lines, _) = refusals_logged(&run.log());
    assert!(lines <= 10, "{lines} lines for {STORM} refusals");
    let summary = run.wait_for_log(" more connections refused in the last 10 s");
    assert!(summary.contains("(not in --allow: "), "{summary}");
    run.stop();
    assert!(
        run.log()
            .contains("200 connections refused (not in --allow: 200)"),
        "{}",
        run.log()
    );
}

#[test]
fn idle_connections_cannot_hoard_the_metrics_endpoint() {
    /// Metrics connections served at once.
    const CAP: usize = 16;
    let broker = Broker::start();
    let topic = broker.topic("metrics-cap", 1);
    let mut run = cdrship(&broker, &["-t", &topic, "--metrics", "127.0.0.1:0"]);
    let addr = run.metrics_addr();
    // Accepted in order, so these hold every slot when the next arrives
    // (until the request timeout, far longer than this takes).
    let idle: Vec<TcpStream> = (0..CAP)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let mut extra = TcpStream::connect(addr).unwrap();
    extra
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_closed_at_once(&mut extra);
    drop(idle);
    wait_until("a scrape answered again", || {
        scrape(addr).is_some_and(|r| r.starts_with("HTTP/1.1 200 OK"))
    });
    run.stop();
}
