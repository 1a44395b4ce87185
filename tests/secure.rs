//! Production-cluster plumbing that needs no secured broker: the codecs
//! librdkafka was built with round-trip through the broker and a real
//! consumer, `--version` names what the build supports, a properties file
//! (`-F`) reaches the producer without its secrets in the log, and a
//! cluster that refuses cdrship (TLS against `openssl s_server`, or the
//! mock's plaintext port) gets one clear line naming the broker and the
//! cause, a non-zero exit, and no lost line where one can be kept.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::tls::{Certs, TlsPort};
use common::{
    cdrship, cdrship_at, numbered, texts, wait_until, Broker, Cdrship, Expected, Followed,
};

/// Wait until `run` has read `n` lines from `source` (it needs
/// `--metrics 127.0.0.1:0`).
fn wait_read(run: &Cdrship, source: &str, n: u64) {
    let sample = format!("cdrship_lines_read_total{{source=\"{source}\"}}");
    wait_until("the lines read", || run.metric(&sample) >= Some(n));
}

#[test]
fn version_lists_tls_sasl_and_codecs() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cdrship"))
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8(out.stdout).unwrap();
    for feature in [
        "ssl",
        "sasl_gssapi",
        "sasl_plain",
        "sasl_scram",
        "sasl_oauthbearer",
        "oidc",
        "gzip",
        "snappy",
        "lz4",
        "zstd",
    ] {
        assert!(version.contains(feature), "{feature} missing: {version}");
    }
}

#[test]
fn every_codec_round_trips() {
    let broker = Broker::start();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = broker.topic(&format!("codec-{codec}"), 1);
        let property = format!("compression.type={codec}");
        let mut run = cdrship(&broker, &["-t", &topic, "-X", &property]);
        let lines = numbered(&format!("{codec} cdr"), 0..2000);
        run.feed_all(lines.as_bytes());
        let got = broker.reader(&topic).read(2000);
        assert_eq!(texts(&got), lines.lines().collect::<Vec<_>>(), "{codec}");
    }
}

#[test]
fn a_properties_file_reaches_the_producer_and_keeps_its_secrets() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kafka.properties");
    std::fs::write(
        &file,
        "# the cluster\nsasl.password = hunter2\nmessage.max.bytes=2000\n",
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = file.to_str().unwrap();
    // The file's message.max.bytes is what the start-up check sees.
    let mut run = cdrship(&broker, &["-t", "x", "-F", path]);
    assert_eq!(run.wait().code(), Some(2), "{}", run.log());
    let log = run.log();
    assert!(log.contains("message.max.bytes 2000"), "{log}");
    assert!(log.contains("can be read by others"), "{log}");
    assert!(!log.contains("hunter2"), "{log}");

    std::fs::write(&file, "compression.type=zstd\nhunter2\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut run = cdrship(&broker, &["-t", "x", "-F", path]);
    assert_eq!(run.wait().code(), Some(2));
    let log = run.log();
    assert!(log.contains("line 2: expected key=value"), "{log}");
    assert!(
        !log.contains("hunter2") && !log.contains("can be read by others"),
        "{log}"
    );
}

/// A follower whose CA did not sign the broker's certificate stops as
/// soon as every bootstrap broker refused it, says why in one line, exits
/// 1, and the next start (here against a reachable broker) sends every
/// line: the saved position never passed them.
#[test]
fn a_wrong_ca_stops_a_follower_and_loses_nothing() {
    let broker = Broker::start();
    let certs = Certs::new();
    let mut port = TlsPort::reserve();
    let f = Followed::new(&broker, 1, "wrong-ca");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("cdr", 0..20));
    let ca = format!("ssl.ca.location={}", certs.path("other-ca.pem"));
    let mut run = f.start_at(
        &port.servers,
        &[
            "-X",
            "security.protocol=ssl",
            "-X",
            &ca,
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    // The lines are read while nothing listens (an outage, not a refusal).
    wait_read(&run, "file", 20);
    port.serve(&certs, "localhost");
    let refused = run.the_refusal();
    for needle in [
        &format!("ssl://{}/bootstrap refused cdrship", port.servers),
        "unable to get local issuer certificate",
        "set ssl.ca.location",
    ] {
        assert!(refused.contains(needle), "{needle}: {}", refused);
    }
    assert!(
        run.log()
            .contains("20 lines not delivered yet are read again"),
        "{}",
        run.log()
    );

    let mut run = f.start(&broker);
    e.check();
    run.stop();
    e.nothing_more();
}

/// A certificate for another name: the line says which names it has; the
/// spool keeps what was read, and the next start delivers it.
#[test]
fn a_certificate_for_another_name_is_named_and_the_spool_keeps_the_lines() {
    let broker = Broker::start();
    let certs = Certs::new();
    let mut port = TlsPort::reserve();
    let topic = broker.topic("other-name", 1);
    let spool = tempfile::tempdir().unwrap();
    let spool_dir = spool.path().to_str().unwrap();
    let ca = format!("ssl.ca.location={}", certs.path("ca.pem"));
    let args = ["-t", &topic, "--spool-dir", spool_dir];
    let mut secured = args.to_vec();
    secured.extend([
        "-X",
        "security.protocol=ssl",
        "-X",
        &ca,
        "--metrics",
        "127.0.0.1:0",
    ]);
    let mut run = cdrship_at(&port.servers, &secured);
    let lines = numbered("cdr", 0..10);
    run.feed(lines.as_bytes());
    wait_read(&run, "stdin", 10);
    port.serve(&certs, "elsewhere");
    let refused = run.the_refusal();
    assert!(
        refused.contains("hostname mismatch: it names broker.example.com, not localhost"),
        "{}",
        refused
    );
    assert!(
        run.log()
            .contains("10 lines not delivered yet are kept in the spool"),
        "{}",
        run.log()
    );

    cdrship(&broker, &args).feed_all(b"");
    let got = broker.reader(&topic).read(10);
    assert_eq!(texts(&got), lines.lines().collect::<Vec<_>>());
}

/// Plaintext against a TLS port: librdkafka only sees a disconnect, which
/// a probe proves to be TLS. Lines from a pipe exist nowhere else: they
/// wait until the input ends, then the exit says they are lost.
#[test]
fn plaintext_to_a_tls_port_is_named_and_the_loss_is_reported() {
    let certs = Certs::new();
    let port = TlsPort::start(&certs, "localhost");
    let mut run = cdrship_at(&port.servers, &["-t", "t", "--shutdown-timeout", "1"]);
    run.feed(numbered("cdr", 0..5).as_bytes());
    run.close_stdin();
    let refused = run.the_refusal();
    assert!(refused.contains("it speaks TLS"), "{}", refused);
    assert!(
        refused.contains("set security.protocol to ssl"),
        "{}",
        refused
    );
    assert!(
        run.log().contains("5 of 5 lines not delivered and lost"),
        "{}",
        run.log()
    );
}

/// TLS against a plaintext Kafka port: named as such, once however many
/// brokers refuse alike.
#[test]
fn tls_to_a_plaintext_broker_is_named() {
    let broker = Broker::start();
    let mut run = cdrship(
        &broker,
        &[
            "-t",
            "t",
            "-X",
            "security.protocol=ssl",
            "--shutdown-timeout",
            "1",
        ],
    );
    let refused = refusal_of_one_line(&mut run);
    assert!(
        refused.contains("answers plaintext Kafka requests"),
        "{}",
        refused
    );
}

/// Feed `run` one line and end its input; the refusal line of its exit 1.
fn refusal_of_one_line(run: &mut Cdrship) -> String {
    run.feed(b"a cdr\n");
    run.close_stdin();
    run.the_refusal()
}

/// Ship one line over TLS (verified against `ca.pem`) to `port`; the
/// refusal line.
fn one_line_over_tls(port: &TlsPort, certs: &Certs) -> String {
    let ca = format!("ssl.ca.location={}", certs.path("ca.pem"));
    let args = [
        "-t",
        "t",
        "-X",
        "security.protocol=ssl",
        "-X",
        &ca,
        "--shutdown-timeout",
        "1",
    ];
    let mut run = cdrship_at(&port.servers, &args);
    refusal_of_one_line(&mut run)
}

/// An expired certificate is named as such.
#[test]
fn an_expired_certificate_is_named() {
    let certs = Certs::new();
    let port = TlsPort::start(&certs, "expired");
    let refused = one_line_over_tls(&port, &certs);
    assert!(refused.contains("(certificate has expired)"), "{}", refused);
}

/// SASL against a listener without it (the mock's, Apache Kafka's
/// PLAINTEXT): named once, with the property to change, and the password
/// appears nowhere.
#[test]
fn sasl_against_a_listener_without_it_is_named() {
    let broker = Broker::start();
    let args = [
        "-t",
        "t",
        "--shutdown-timeout",
        "1",
        "-X",
        "security.protocol=sasl_plaintext",
        "-X",
        "sasl.mechanism=PLAIN",
        "-X",
        "sasl.username=cdrship",
        "-X",
        "sasl.password=hunter2",
    ];
    let mut run = cdrship(&broker, &args);
    let refused = refusal_of_one_line(&mut run);
    // The mock says "SASL Handshake not supported by broker"; Apache Kafka
    // offers an empty list of mechanisms.
    assert!(refused.contains("this listener has no SASL"), "{}", refused);
    assert!(!run.log().contains("hunter2"), "{}", run.log());
}

/// mTLS: a broker that requires a client certificate, and cdrship has
/// none: named, with the properties to set.
#[test]
fn a_missing_client_certificate_is_named() {
    let certs = Certs::new();
    let mut port = TlsPort::reserve().verifying_clients();
    port.serve(&certs, "localhost");
    let refused = one_line_over_tls(&port, &certs);
    assert!(
        refused.contains("set ssl.certificate.location and ssl.key.location"),
        "{}",
        refused
    );
}

/// A misspelled or invalid property is named, its value is not: the
/// value of a misspelled `sasl.password` is the password.
#[test]
fn a_bad_property_is_named_without_its_value() {
    let broker = Broker::start();
    for property in ["sasl.pasword=hunter2", "security.protocol=hunter2"] {
        let mut run = cdrship(&broker, &["-t", "t", "-X", property]);
        run.close_stdin();
        assert!(!run.wait().success(), "{}", run.log());
        let log = run.log();
        let key = property.split_once('=').unwrap().0;
        assert!(log.contains(&format!("property {key}: ")), "{log}");
        assert!(!log.contains("hunter2"), "{log}");
    }
}
