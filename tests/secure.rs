//! Production-cluster plumbing that needs no secured broker: the codecs
//! librdkafka was built with round-trip through the broker and a real
//! consumer, `--version` names what the build supports, and a properties
//! file (`-F`) reaches the producer without its secrets in the log.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{cdrship, numbered, texts, Broker};

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
