//! Unit tests of the refusal bookkeeping (no broker, no network:
//! the addresses refuse connections, so no probe proves anything).

use super::hints::hint;
use super::*;

fn access(servers: &str, keeps: bool) -> (Access, CancellationToken) {
    let stop = CancellationToken::new();
    let properties = [("bootstrap.servers".to_owned(), servers.to_owned())];
    (Access::new(&properties, keeps, stop.clone()), stop)
}

const BAD_CA: &str = "ssl://127.0.0.1:1/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed (after 3ms in state SSL_HANDSHAKE)";

#[test]
fn an_outage_is_not_a_refusal() {
    let (a, stop) = access("127.0.0.1:1", true);
    assert!(!a.observe("127.0.0.1:3/bootstrap: Connect to ipv4#127.0.0.1:3 failed: Connection refused (after 0ms in state CONNECT)"));
    assert!(!a.observe("1/1 brokers are down"));
    assert!(!a.observe("sasl_ssl://127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:9093 failed: Connection refused"));
    assert!(!stop.is_cancelled() && a.refusal().is_none());
}

#[test]
fn every_bootstrap_broker_refusing_stops_a_run_that_keeps_its_lines() {
    let (a, stop) = access("127.0.0.1:1,127.0.0.1:2", true);
    assert!(a.observe(BAD_CA));
    assert!(a.observe(BAD_CA), "a repeat");
    assert!(!stop.is_cancelled(), "b has not refused yet");
    assert!(a.observe(&BAD_CA.replace("127.0.0.1:1", "127.0.0.1:2")));
    assert!(stop.is_cancelled());
    let cause = a.refusal().unwrap();
    assert!(cause.contains("ssl.ca.location"), "{cause}");
    assert!(a.nothing_to_wait_for());
}

#[test]
fn without_a_keeper_the_run_stops_at_the_end_of_input() {
    let (a, stop) = access("127.0.0.1:1", false);
    a.observe(BAD_CA);
    assert!(a.refusal().is_some() && !stop.is_cancelled());
    assert!(!a.nothing_to_wait_for());
    a.input_ended();
    assert!(stop.is_cancelled());
}

#[test]
fn a_cluster_that_delivered_once_is_retried() {
    let (a, stop) = access("127.0.0.1:1", true);
    a.delivered();
    a.observe(BAD_CA);
    assert!(a.refused_now() && a.refusal().is_none() && !stop.is_cancelled());
    a.delivered();
    assert!(!a.refused_now());
}

#[test]
fn hints_name_what_to_change() {
    for (detail, wanted) in [
        ("SSL handshake failed: certificate verify failed: Hostname mismatch", "does not name"),
        ("SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512", "sasl.password"),
        ("Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol configuration (connecting to a SSL listener?)", "security.protocol to ssl"),
        ("SSL handshake failed: error:0A00010B:SSL routines::wrong version number", "does not speak TLS"),
        ("Failed to initialize SASL authentication: SASL handshake failed (start (-4)): SASL(-4): no mechanism available: No worthy mechs found (GSSAPI)", "libsasl2-modules-gssapi-mit"),
    ] {
        assert!(hint(detail, true).contains(wanted), "{detail}: {}", hint(detail, true));
    }
}

#[test]
fn a_bad_certificate_without_one_says_to_set_one() {
    // Apache Kafka (Java's TLS 1.3) requiring a client certificate.
    let detail = "Receive failed: error:0A000412:SSL routines::sslv3 alert bad certificate: SSL alert number 42 (after 2ms in state APIVERSION_QUERY)";
    assert!(hint(detail, false).contains("set ssl.certificate.location and ssl.key.location"));
    assert!(hint(detail, true).contains("does not accept the client certificate"));
}

#[test]
fn a_fatal_error_stops_even_after_deliveries_and_says_what_to_grant() {
    let (a, stop) = access("127.0.0.1:1", true);
    a.delivered();
    a.fatal("[thrd:main]: Fatal error: Broker: Cluster authorization failed: Failed to acquire idempotence PID from broker sasl_plaintext://127.0.0.1:9197/1: Broker: Cluster authorization failed", "cdr");
    assert!(stop.is_cancelled() && a.failed_fatally());
    let cause = a.refusal().unwrap();
    assert!(
        cause.starts_with(
            "the cluster refused cdrship: Broker: Cluster authorization failed: Failed to acquire"
        ),
        "{cause}"
    );
    assert!(
        cause.contains("grant this principal Write on cdr"),
        "{cause}"
    );
}

#[test]
fn the_same_refusal_by_another_broker_has_the_same_gist() {
    let one = "ssl://127.0.0.1:1/bootstrap refused cdrship: SSL handshake failed (after 3ms in state SSL_HANDSHAKE) (it answers plaintext); do this";
    let two = "ssl://127.0.0.1:2/bootstrap refused cdrship: SSL handshake failed (after 74ms in state SSL_HANDSHAKE) (it answers plaintext); do this";
    assert_eq!(gist(one), gist(two));
    assert_eq!(
        gist(one),
        "SSL handshake failed  (it answers plaintext); do this"
    );
    assert_ne!(gist(one), gist(&two.replace("do this", "do that")));
}

#[test]
fn a_listener_without_sasl_offering_no_mechanism_is_named() {
    let apache = "SASL PLAIN mechanism handshake failed: Broker: Request not valid in current SASL state: broker's supported mechanisms:  (after 2ms in state AUTH_HANDSHAKE)";
    assert!(hint(apache, false).starts_with("this listener has no SASL"));
    let offers = "SASL PLAIN mechanism handshake failed: Broker: Unsupported SASL mechanism: broker's supported mechanisms: SCRAM-SHA-512 (after 2ms in state AUTH_HANDSHAKE)";
    assert!(hint(offers, false).starts_with("set sasl.mechanism"));
}
