//! Credentials cdrship gets before a broker sees them, where no local
//! endpoint can issue one: a Kerberos ticket from a KDC that cannot be
//! reached (the real `kinit`, with a real keytab made by `ktutil`), and an
//! OAuth token endpoint (a local HTTP server) that refuses the client's
//! credentials. Each is said in one line with what to check; a refused
//! token stops a run whose lines are kept, and they are delivered later.

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use common::{cdrship, numbered, spawn, texts, wait_until, Broker};

/// An HTTP server answering every request with 401 and an OAuth error,
/// once `gate` is sent to (or dropped); its token endpoint URL.
fn refusing_token_endpoint() -> (String, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/oauth2/token", listener.local_addr().unwrap());
    let (gate, opened) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = opened.recv();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            let mut line = String::new();
            while request.read_line(&mut line).is_ok_and(|n| n > 2) {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let _ = request.read_exact(&mut vec![0; length]);
            let body = r#"{"error":"invalid_client"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, gate)
}

#[test]
fn a_token_endpoint_that_refuses_stops_a_spooling_run_and_loses_nothing() {
    let broker = Broker::start();
    let topic = broker.topic("oauth-refused", 1);
    let spool = tempfile::tempdir().unwrap();
    let args = ["-t", &topic, "--spool-dir", spool.path().to_str().unwrap()];
    let (url, gate) = refusing_token_endpoint();
    let endpoint = format!("sasl.oauthbearer.token.endpoint.url={url}");
    let mut oauth = args.to_vec();
    oauth.extend([
        "-X",
        "security.protocol=sasl_plaintext",
        "-X",
        "sasl.mechanism=OAUTHBEARER",
        "-X",
        "sasl.oauthbearer.method=oidc",
        "-X",
        "sasl.oauthbearer.client.id=cdrship",
        "-X",
        "sasl.oauthbearer.client.secret=hunter2",
        "-X",
        &endpoint,
        "--metrics",
        "127.0.0.1:0",
    ]);
    let mut run = cdrship(&broker, &oauth);
    let lines = numbered("cdr", 0..10);
    run.feed(lines.as_bytes());
    // The lines are read (and spooled) before the endpoint answers.
    let sample = "cdrship_lines_read_total{source=\"stdin\"}";
    wait_until("the lines read", || run.metric(sample) >= Some(10));
    drop(gate);
    assert_eq!(run.wait().code(), Some(1), "{}", run.log());
    let log = run.log();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("refused cdrship (HTTP 401"))
        .collect();
    assert!(!refused.is_empty(), "{log}");
    assert!(
        refused[0].contains("check sasl.oauthbearer.client.id, sasl.oauthbearer.client.secret"),
        "{}",
        refused[0]
    );
    assert!(log.contains("kept in the spool"), "{log}");
    assert!(!log.contains("hunter2"), "{log}");

    cdrship(&broker, &args).feed_all(b"");
    let got = broker.reader(&topic).read(10);
    assert_eq!(texts(&got), lines.lines().collect::<Vec<_>>());
}

/// Run `command` with `stdin`; panics naming the Debian package if absent.
fn run_with_stdin(command: &str, args: &[&str], stdin: &str) {
    let mut child = Command::new(command)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("running {command} (Debian package krb5-user): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "{command}");
}

#[test]
fn a_kdc_that_cannot_be_reached_is_said_with_what_to_check() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let (keytab, conf) = (
        dir.path().join("cdrship.keytab"),
        dir.path().join("krb5.conf"),
    );
    let script = format!(
        "addent -password -p cdrship@EXAMPLE.COM -k 1 -e aes256-cts-hmac-sha1-96\nsecret\nwkt {}\nq\n",
        keytab.display()
    );
    run_with_stdin("ktutil", &[], &script);
    // A realm whose only KDC is a port where nothing listens.
    std::fs::write(&conf, format!("[libdefaults]\ndefault_realm = EXAMPLE.COM\n[realms]\nEXAMPLE.COM = {{\n kdc = {}\n}}\n", common::dead_address())).unwrap();
    let keytab_property = format!("sasl.kerberos.keytab={}", keytab.display());
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdrship"));
    command
        .args(["-b", broker.servers(), "-t", "t", "--shutdown-timeout", "1"])
        .args([
            "-X",
            "security.protocol=sasl_plaintext",
            "-X",
            "sasl.mechanism=GSSAPI",
        ])
        .args([
            "-X",
            &keytab_property,
            "-X",
            "sasl.kerberos.principal=cdrship@EXAMPLE.COM",
        ])
        .env("KRB5_CONFIG", &conf)
        .env("KRB5CCNAME", dir.path().join("ccache"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut run = spawn(command);
    run.feed(b"a cdr\n");
    run.close_stdin();
    // The mock has no SASL listener: the broker's refusal ends the run.
    assert_eq!(run.wait().code(), Some(1), "{}", run.log());
    let log = run.log();
    assert!(
        log.contains("Cannot contact any KDC for realm 'EXAMPLE.COM'"),
        "{log}"
    );
    let said = log
        .lines()
        .find(|l| l.contains("Kerberos: kinit failed"))
        .unwrap_or_else(|| panic!("{log}"));
    for needle in [
        "(exited with code 1;",
        "sasl.kerberos.keytab",
        "a KDC for the realm is reachable",
    ] {
        assert!(said.contains(needle), "{needle}: {said}");
    }
}
