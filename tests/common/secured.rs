//! A real secured Kafka endpoint: tansu (an independent Kafka-protocol
//! broker; SCRAM-SHA-512 users in its SQLite store) behind stunnel4
//! terminating TLS, tansu advertising the TLS port. Neither program is
//! in CI (tansu takes about 15 minutes to build on 2 cores), so the tests
//! that use this are `#[ignore]`d and run on a machine that has both:
//! `cargo test --test secure_cluster -- --ignored`.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use super::tls::{free_port, Certs};
use super::wait_until;

/// What the endpoint demands.
pub struct Demands<'a> {
    /// A SCRAM-SHA-512 user (name, password) and SASL required.
    pub user: Option<(&'a str, &'a str)>,
    /// stunnel requires a client certificate signed by `ca.pem`.
    pub client_certificate: bool,
}

/// A running tansu and stunnel, stopped on drop.
pub struct Secured {
    /// `localhost:TLS_PORT`, for `bootstrap.servers`.
    pub servers: String,
    _dir: tempfile::TempDir,
    tansu: Child,
    stunnel: Child,
}

fn wait_listening(port: u16, what: &str) {
    wait_until(what, || TcpStream::connect(("127.0.0.1", port)).is_ok());
}

/// Run a `tansu` subcommand to completion against `broker`.
fn tansu_cli(dir: &std::path::Path, args: &[&str], broker: &str) {
    let out = Command::new("tansu")
        .args(args)
        .args(["--broker", broker])
        .current_dir(dir)
        .output()
        .expect("running tansu (cargo install tansu --features dynostore,libsql)");
    assert!(out.status.success(), "tansu {args:?}: {out:?}");
}

impl Secured {
    /// Start tansu with `topics` (one partition each) and stunnel with the
    /// `localhost` certificate, making what `demands` asks for.
    pub fn start(certs: &Certs, demands: &Demands, topics: &[&str]) -> Secured {
        let dir = tempfile::tempdir().unwrap();
        let (plain, tls) = (free_port(), free_port());
        let broker = format!("tcp://127.0.0.1:{plain}");
        let spawn_tansu = |authentication: bool| {
            let mut tansu = Command::new("tansu");
            tansu
                .args(["broker", "--storage-engine", "sqlite://tansu.db"])
                .args(["--listener-url", &broker])
                .args([
                    "--advertised-listener-url",
                    &format!("tcp://localhost:{tls}"),
                ])
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if authentication {
                tansu.arg("--authentication");
            }
            let child = tansu.spawn().expect("running tansu");
            wait_listening(plain, "tansu listening");
            child
        };
        // Users and topics are made on an open broker, which then restarts
        // on the same store requiring authentication.
        let mut tansu = spawn_tansu(false);
        for topic in topics {
            tansu_cli(
                dir.path(),
                &["topic", "create", topic, "--partitions", "1"],
                &broker,
            );
        }
        if let Some((name, password)) = demands.user {
            tansu_cli(dir.path(), &["user", "create", name, password], &broker);
            tansu.kill().unwrap();
            tansu.wait().unwrap();
            tansu = spawn_tansu(true);
        }
        let verify = if demands.client_certificate {
            format!("verifyChain = yes\nCAfile = {}\n", certs.path("ca.pem"))
        } else {
            String::new()
        };
        let conf = dir.path().join("stunnel.conf");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{tls}\nconnect = 127.0.0.1:{plain}\ncert = {}\nkey = {}\n{verify}",
                certs.path("localhost.pem"),
                certs.path("localhost.key"),
            ),
        )
        .unwrap();
        let stunnel = Command::new("stunnel4")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running stunnel4 (Debian package stunnel4)");
        wait_listening(tls, "stunnel listening");
        Secured {
            servers: format!("localhost:{tls}"),
            _dir: dir,
            tansu,
            stunnel,
        }
    }
}

impl Drop for Secured {
    fn drop(&mut self) {
        for child in [&mut self.stunnel, &mut self.tansu] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
