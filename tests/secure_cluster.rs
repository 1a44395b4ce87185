//! Shipping to a real secured broker (tansu behind stunnel4, see
//! `common/secured.rs`): SCRAM-SHA-512 over TLS with the server verified
//! against a CA, and mTLS with a client certificate stunnel requires. A
//! wrong password or a missing client certificate is refused with one
//! clear line, exit 1, and the next start with the configuration fixed
//! delivers every line: read back by a consumer of the same cluster.
//!
//! Needs `tansu` and `stunnel4` on the PATH, which CI has not:
//! `cargo test --test secure_cluster -- --ignored`.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::secured::{Demands, Secured};
use common::tls::Certs;
use common::{cdrship_at, numbered, texts, Cdrship, Reader};

/// A follower of `Master.csv` in `dir` (saving its state there too),
/// with the properties file `props`.
fn follower(servers: &str, dir: &std::path::Path, props: &std::path::Path) -> Cdrship {
    let (file, state) = (dir.join("Master.csv"), dir.join("state"));
    let args = [
        "-t",
        "cdr",
        "--file",
        file.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "-F",
        props.to_str().unwrap(),
    ];
    cdrship_at(servers, &args)
}

/// Write the properties file `props` (owner only) from `pairs`.
fn properties(props: &std::path::Path, pairs: &[(&str, &str)]) {
    let text: String = pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(props, text).unwrap();
    std::fs::set_permissions(props, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Follow a file until `expected` lines are in the topic, read back with
/// `client` properties; then nothing more arrives.
fn ships_all(
    servers: &str,
    dir: &std::path::Path,
    props: &std::path::Path,
    client: &[(&str, &str)],
    expected: &str,
) {
    let mut run = follower(servers, dir, props);
    let reader = Reader::try_with(servers, "cdr", client).expect("a consumer of the cluster");
    let n = expected.lines().count();
    let got = reader.read(n);
    assert_eq!(texts(&got), expected.lines().collect::<Vec<_>>());
    run.stop();
    let mut more = got;
    reader.poll_all(&mut more);
    assert_eq!(more.len(), n, "duplicates after the restart");
}

#[test]
#[ignore = "needs tansu and stunnel4: cargo test --test secure_cluster -- --ignored"]
fn scram_over_tls_refuses_a_wrong_password_and_ships_with_the_right_one() {
    let certs = Certs::new();
    let demands = Demands {
        user: Some(("cdrship", "s3cret")),
        client_certificate: false,
    };
    let cluster = Secured::start(&certs, &demands, &["cdr"]);
    let dir = tempfile::tempdir().unwrap();
    let lines = numbered("cdr", 0..200);
    std::fs::write(dir.path().join("Master.csv"), &lines).unwrap();
    let props = dir.path().join("kafka.properties");
    let ca = certs.path("ca.pem");
    let mut client = vec![
        ("security.protocol", "sasl_ssl"),
        ("ssl.ca.location", ca.as_str()),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", "cdrship"),
    ];
    let mut wrong = client.clone();
    wrong.push(("sasl.password", "not-the-password"));
    properties(&props, &wrong);

    let mut run = follower(&cluster.servers, dir.path(), &props);
    let refusal = run.the_refusal();
    assert!(
        refusal.contains("check sasl.mechanism, sasl.username and sasl.password"),
        "{refusal}"
    );
    assert!(!run.log().contains("not-the-password"), "{}", run.log());

    client.push(("sasl.password", "s3cret"));
    properties(&props, &client);
    ships_all(&cluster.servers, dir.path(), &props, &client, &lines);
}

#[test]
#[ignore = "needs tansu and stunnel4: cargo test --test secure_cluster -- --ignored"]
fn mtls_names_a_missing_client_certificate_and_ships_with_one() {
    let certs = Certs::new();
    let demands = Demands {
        user: None,
        client_certificate: true,
    };
    let cluster = Secured::start(&certs, &demands, &["cdr"]);
    let dir = tempfile::tempdir().unwrap();
    let lines = numbered("cdr", 0..100);
    std::fs::write(dir.path().join("Master.csv"), &lines).unwrap();
    let props = dir.path().join("kafka.properties");
    let (ca, cert, key) = (
        certs.path("ca.pem"),
        certs.path("client.pem"),
        certs.path("client.key"),
    );
    let mut client = vec![
        ("security.protocol", "ssl"),
        ("ssl.ca.location", ca.as_str()),
    ];
    properties(&props, &client);

    let refusal = follower(&cluster.servers, dir.path(), &props).the_refusal();
    assert!(
        refusal.contains("set ssl.certificate.location and ssl.key.location"),
        "{refusal}"
    );

    client.extend([
        ("ssl.certificate.location", cert.as_str()),
        ("ssl.key.location", key.as_str()),
    ]);
    properties(&props, &client);
    ships_all(&cluster.servers, dir.path(), &props, &client, &lines);
}
