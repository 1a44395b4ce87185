//! Shipping through Apache Kafka's own secured listeners, as
//! `scripts/kafka up --secure` sets them up (its lines name them in the
//! environment): TLS verified against the test CA, mTLS, SCRAM-SHA-512
//! over TLS, OAUTHBEARER with unsecured JWTs and GSSAPI against a local
//! MIT KDC, with ACLs enforced. A refusal (a wrong password, a missing
//! client certificate, a missing ACL) is one clear line and exit 1, and
//! loses nothing: the next start with the cause fixed delivers every line
//! once. Lines are read back by a consumer of the cluster.
//!
//! Needs the cluster, which plain `cargo test` has not: `.ci/run` runs
//! them with `-- --ignored`. Without the environment they fail.

mod common;

use std::process::{Command, Stdio};

use common::acls::{grant, On, Op};
use common::{cdrship_at, numbered, spawn, texts, Broker, Cdrship, Expected, Followed, Reader};

const NEEDS: &str =
    "needs Apache Kafka's secure listeners: scripts/kafka up --secure (.ci/run runs them)";

/// A variable `scripts/kafka up --secure` printed; panics without it.
fn env(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("{name} is not set: this test {NEEDS}"))
}

/// A file of the test CA's directory (`ca.pem`, `client.pem`, ...).
fn secure_file(name: &str) -> String {
    format!("{}/{name}", env("KAFKA_SECURE_DIR"))
}

/// The cluster's PLAINTEXT listeners (never the mock: a test here that
/// ran against it would check nothing).
fn cluster() -> Broker {
    env("KAFKA_BROKERS");
    let broker = Broker::start();
    assert!(broker.mock().is_none());
    broker
}

/// `-X key=value` for each of `pairs`.
fn properties(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(k, v)| ["-X".to_owned(), format!("{k}={v}")])
        .collect()
}

/// `args` followed by `extra`, as `&str`s.
fn with<'a>(args: &[&'a str], extra: &'a [String]) -> Vec<&'a str> {
    args.iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .collect()
}

/// Allow `principal` to write `topic` (and its reject topic), read it
/// and use the test consumer's group for it.
fn grant_all(broker: &Broker, principal: &str, topic: &str) {
    let group = format!("test-{topic}");
    grant(
        broker.servers(),
        principal,
        &[
            (On::TopicsFrom(topic), Op::Write),
            (On::TopicsFrom(topic), Op::Read),
            (On::GroupsFrom(&group), Op::Read),
        ],
    );
}

/// Ship `lines` from a file with `client` properties to `servers`; read
/// them back with the same properties; after a stop nothing more arrives.
fn ships_all(broker: &Broker, f: &Followed, servers: &str, client: &[(&str, &str)]) {
    let n = std::fs::read_to_string(&f.path).unwrap().lines().count();
    let mut run = f.start_at(servers, &with(&[], &properties(client)));
    let reader = Reader::try_with(servers, &f.topic, client).expect("a consumer of the cluster");
    let got = reader.read(n);
    let want = std::fs::read_to_string(&f.path).unwrap();
    assert_eq!(texts(&got), want.lines().collect::<Vec<_>>());
    run.stop();
    let mut e = Expected::new(broker, &f.topic);
    e.want = want.lines().map(str::to_owned).collect();
    e.check();
    e.nothing_more();
}

#[test]
#[ignore = "needs Apache Kafka's secure listeners: scripts/kafka up --secure (.ci/run runs them)"]
fn tls_with_the_test_ca_ships_every_line() {
    let broker = cluster();
    let servers = env("KAFKA_TLS");
    let topic = broker.topic("tls", 2);
    let ca = secure_file("ca.pem");
    let client = [("security.protocol", "ssl"), ("ssl.ca.location", &ca)];
    let lines = numbered("cdr", 0..500);
    let mut run = cdrship_at(&servers, &with(&["-t", &topic], &properties(&client)));
    run.feed_all(lines.as_bytes());
    let reader = Reader::try_with(&servers, &topic, &client).expect("a consumer over TLS");
    let mut got = reader.read(500);
    reader.poll_all(&mut got);
    let mut got = texts(&got);
    got.sort();
    let mut want: Vec<String> = lines.lines().map(str::to_owned).collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
#[ignore = "needs Apache Kafka's secure listeners: scripts/kafka up --secure (.ci/run runs them)"]
fn mtls_names_a_missing_client_certificate_and_ships_with_one() {
    let broker = cluster();
    let servers = env("KAFKA_MTLS");
    let f = Followed::new(&broker, 1, "mtls");
    std::fs::write(&f.path, numbered("cdr", 0..100)).unwrap();
    grant_all(&broker, "User:cdrship", &f.topic);
    let ca = secure_file("ca.pem");
    let mut client = vec![("security.protocol", "ssl"), ("ssl.ca.location", &ca)];

    let mut run = f.start_at(&servers, &with(&[], &properties(&client)));
    refused(
        &mut run,
        "set ssl.certificate.location and ssl.key.location",
    );

    let (cert, key) = (secure_file("client.pem"), secure_file("client.key"));
    client.extend([
        ("ssl.certificate.location", cert.as_str()),
        ("ssl.key.location", key.as_str()),
    ]);
    ships_all(&broker, &f, &servers, &client);
}

#[test]
#[ignore = "needs Apache Kafka's secure listeners: scripts/kafka up --secure (.ci/run runs them)"]
fn scram_refuses_a_wrong_password_unsaid_and_ships_with_the_right_one() {
    let broker = cluster();
    let servers = env("KAFKA_SCRAM");
    let (user, password) = (env("KAFKA_SCRAM_USER"), env("KAFKA_SCRAM_PASSWORD"));
    let f = Followed::new(&broker, 1, "scram");
    std::fs::write(&f.path, numbered("cdr", 0..200)).unwrap();
    grant_all(&broker, &format!("User:{user}"), &f.topic);
    let ca = secure_file("ca.pem");
    let client = [
        ("security.protocol", "sasl_ssl"),
        ("ssl.ca.location", &ca),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", &user),
    ];
    let mut wrong = client.to_vec();
    wrong.push(("sasl.password", "not-the-password"));

    let mut run = f.start_at(&servers, &with(&[], &properties(&wrong)));
    refused(
        &mut run,
        "check sasl.mechanism, sasl.username and sasl.password",
    );
    assert!(!run.log().contains("not-the-password"), "{}", run.log());

    let mut right = client.to_vec();
    right.push(("sasl.password", &password));
    let mut run = f.start_at(&servers, &with(&[], &properties(&right)));
    let reader = Reader::try_with(&servers, &f.topic, &right).expect("a consumer over SCRAM");
    assert_eq!(reader.read(200).len(), 200);
    run.stop();
    assert!(!run.log().contains(&password), "{}", run.log());
    let mut e = Expected::new(&broker, &f.topic);
    e.want = numbered("cdr", 0..200).lines().map(str::to_owned).collect();
    e.check();
    e.nothing_more();
}

/// OAUTHBEARER with an unsecured JWT for `principal`, to KAFKA_OAUTH.
fn oauth(principal: &str) -> Vec<String> {
    let config = format!("principal={principal}");
    properties(&[
        ("security.protocol", "sasl_plaintext"),
        ("sasl.mechanism", "OAUTHBEARER"),
        ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
        ("sasl.oauthbearer.config", &config),
    ])
}

#[test]
#[ignore = "needs Apache Kafka's secure listeners: scripts/kafka up --secure (.ci/run runs them)"]
fn oauthbearer_with_an_unsecured_jwt_ships() {
    let broker = cluster();
    let servers = env("KAFKA_OAUTH");
    let f = Followed::new(&broker, 1, "oauth");
    let mut e = Expected::new(&broker, &f.topic);
    grant_all(&broker, "User:alice", &f.topic);
    e.add(&f.path, numbered("cdr", 0..100));
    let mut run = f.start_at(&servers, &with(&[], &oauth("alice")));
    e.check();
    run.stop();
    e.nothing_more();
}

#[test]
#[ignore = "needs Apache Kafka's secure listeners: scripts/kafka up --secure (.ci/run runs them)"]
fn gssapi_with_a_keytab_ships() {
    let broker = cluster();
    let servers = env("KAFKA_GSSAPI");
    let principal = env("KAFKA_KERBEROS_PRINCIPAL");
    let user = principal.split('@').next().unwrap();
    let f = Followed::new(&broker, 1, "gssapi");
    let mut e = Expected::new(&broker, &f.topic);
    grant_all(&broker, &format!("User:{user}"), &f.topic);
    e.add(&f.path, numbered("cdr", 0..100));
    let keytab = secure_file("cdrship.keytab");
    let kerberos = properties(&[
        ("security.protocol", "sasl_plaintext"),
        ("sasl.mechanism", "GSSAPI"),
        ("sasl.kerberos.service.name", "kafka"),
        ("sasl.kerberos.keytab", &keytab),
        ("sasl.kerberos.principal", &principal),
    ]);
    let state = f.sibling("state");
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdrship"));
    command
        .args(["-b", &servers, "-t", &f.topic, "--file"])
        .arg(&f.path)
        .arg("--state-dir")
        .arg(&state)
        .args(&kerberos)
        .env("KRB5_CONFIG", secure_file("krb5.conf"))
        .env("KRB5CCNAME", f.sibling("ccache"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut run = spawn(command);
    e.check();
    run.stop();
    e.nothing_more();
}

/// A principal of its own for `hint`: no other test grants it anything.
fn fresh_principal(hint: &str) -> String {
    format!("{hint}-{}", std::process::id())
}

#[test]
#[ignore = "needs Apache Kafka's secure listeners: scripts/kafka up --secure (.ci/run runs them)"]
fn without_write_on_the_topic_a_follower_stops_and_loses_nothing() {
    let broker = cluster();
    let servers = env("KAFKA_OAUTH");
    let principal = fresh_principal("no-write");
    let f = Followed::new(&broker, 1, "acl-write");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("cdr", 0..50));
    // It may see the topic, not write to it.
    let user = format!("User:{principal}");
    grant(
        broker.servers(),
        &user,
        &[(On::TopicsFrom(&f.topic), Op::Describe)],
    );
    let mut run = f.start_at(&servers, &with(&[], &oauth(&principal)));
    let refusal = refused(&mut run, "grant this principal Write on");
    for needle in [f.topic.as_str(), "grant this principal Write on"] {
        assert!(refusal.contains(needle), "{needle}: {refusal}");
    }
    delivered_once_granted(&broker, &f, e, &principal);
}

/// After a denied run: nothing was stored or saved; granted Write, the
/// next start delivers every line of `f`, once.
fn delivered_once_granted(broker: &Broker, f: &Followed, e: Expected, principal: &str) {
    assert_eq!(
        saved_offset(f),
        0,
        "the state advanced past undelivered lines"
    );
    assert_eq!(e.reader.stored(), 0);
    let user = format!("User:{principal}");
    grant(
        broker.servers(),
        &user,
        &[(On::TopicsFrom(&f.topic), Op::Write)],
    );
    let mut e = e;
    let mut run = f.start_at(&env("KAFKA_OAUTH"), &with(&[], &oauth(principal)));
    e.check();
    run.stop();
    e.nothing_more();
}

#[test]
#[ignore = "needs Apache Kafka's secure listeners: scripts/kafka up --secure (.ci/run runs them)"]
fn without_any_acl_a_follower_says_what_to_grant_and_loses_nothing() {
    let broker = cluster();
    let servers = env("KAFKA_OAUTH");
    let principal = fresh_principal("no-acl");
    let f = Followed::new(&broker, 1, "acl-none");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("cdr", 0..50));
    let mut run = f.start_at(&servers, &with(&[], &oauth(&principal)));
    assert_eq!(run.wait().code(), Some(1), "{}", run.log());
    let log = run.log();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cdrship: error"))
        .collect();
    assert_eq!(said.len(), 1, "{log}");
    let wanted = format!("grant this principal Write on {}", f.topic);
    assert!(said[0].contains(&wanted), "{wanted}: {}", said[0]);
    assert!(!said[0].contains("create the topic"), "{}", said[0]);
    delivered_once_granted(&broker, &f, e, &principal);
}

#[test]
#[ignore = "needs Apache Kafka's secure listeners: scripts/kafka up --secure (.ci/run runs them)"]
fn exactly_once_without_read_on_the_topic_says_what_to_grant() {
    let broker = cluster();
    let servers = env("KAFKA_OAUTH");
    let principal = fresh_principal("no-read");
    let f = Followed::new(&broker, 1, "acl-read");
    std::fs::write(&f.path, numbered("cdr", 0..10)).unwrap();
    let user = format!("User:{principal}");
    grant(
        broker.servers(),
        &user,
        &[(On::TopicsFrom(&f.topic), Op::Write)],
    );
    let mut args = vec!["--exactly-once".to_owned()];
    args.extend(oauth(&principal));
    let mut run = f.start_at(
        &servers,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let refusal = the_denial(&mut run);
    for needle in [f.topic.as_str(), "--exactly-once", "grant", "Read"] {
        assert!(refusal.contains(needle), "{needle}: {refusal}");
    }
    assert_eq!(Expected::new(&broker, &f.topic).reader.stored(), 0);
}

/// The offset the state of `f` says is delivered (0 when none is saved).
fn saved_offset(f: &Followed) -> u64 {
    let Ok(dir) = std::fs::read_dir(f.sibling("state")) else {
        return 0;
    };
    let Some(file) = dir
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".state.json"))
    else {
        return 0;
    };
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap();
    state["offset"].as_u64().expect("an offset in the state")
}

/// Wait for exit 1; the one line that says the cluster refused cdrship
/// (its brokers refuse alike: said once), which must say `hint`.
fn refused(run: &mut Cdrship, hint: &str) -> String {
    let refusal = run.the_refusal();
    assert!(refusal.contains(hint), "{hint}: {refusal}");
    refusal
}

/// Wait for exit 1 and return the one line that says what to grant.
fn the_denial(run: &mut Cdrship) -> String {
    assert_eq!(run.wait().code(), Some(1), "{}", run.log());
    let log = run.log();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("grant") && !l.contains("not delivered"))
        .collect();
    assert_eq!(said.len(), 1, "{log}");
    said[0].to_owned()
}
