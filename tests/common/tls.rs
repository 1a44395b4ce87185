//! TLS endpoints for tests: certificates made with the `openssl` command
//! (a CA, a CA nobody trusts, a certificate for `localhost` and one for
//! another name, a client certificate, all signed by the first) and a
//! server that completes TLS handshakes on a port (and speaks no Kafka
//! after them), optionally requiring a client certificate.

use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslVerifyMode};

/// The certificates, in a temporary directory.
pub struct Certs {
    dir: tempfile::TempDir,
}

/// Run `openssl` with the words of `command` in `dir`.
fn openssl(dir: &std::path::Path, command: &str) {
    let out = Command::new("openssl")
        .args(command.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("running openssl (Debian package openssl)");
    assert!(out.status.success(), "openssl {command}: {out:?}");
}

impl Certs {
    /// `ca.pem`, `other-ca.pem`, `localhost.pem`/`.key`,
    /// `elsewhere.pem`/`.key` (for `broker.example.com`) and
    /// `expired.pem`/`.key` (for `localhost`, expired yesterday) and
    /// `client.pem`/`.key` (cdrship's own, for mTLS).
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for ca in ["ca", "other-ca"] {
            openssl(d, &format!("req -x509 -newkey rsa:2048 -nodes -keyout {ca}.key -out {ca}.pem -days 2 -subj /CN={ca}"));
        }
        for (name, host, days) in [
            ("localhost", "localhost", 2),
            ("elsewhere", "broker.example.com", 2),
            ("expired", "localhost", -1),
            ("client", "cdrship", 2),
        ] {
            std::fs::write(
                d.join(format!("{name}.ext")),
                format!("subjectAltName=DNS:{host}\n"),
            )
            .unwrap();
            openssl(d, &format!("req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr -subj /CN={host}"));
            openssl(d, &format!("x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {name}.pem -days {days} -extfile {name}.ext"));
        }
        Certs { dir }
    }

    /// The path of one of the files.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }
}

/// A port where nothing listens yet, and later a TLS server on it.
pub struct TlsPort {
    /// `localhost:PORT`.
    pub servers: String,
    port: u16,
    stop: Arc<AtomicBool>,
    verify_clients: bool,
}

/// A local port free now, for a server a test starts later. It is taken
/// below the ephemeral range, which the kernel hands to sockets bound to
/// port 0 and to outgoing connections (cdrship's among them): a port from
/// there can be taken by one of those before the server binds it.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let base = 10_000 + (std::process::id() % 1000) as u16 * 16;
    (0..)
        .map(|_| base + NEXT.fetch_add(1, Ordering::Relaxed) % (low - base).max(1))
        .find(|&port| TcpListener::bind(("127.0.0.1", port)).is_ok())
        .unwrap()
}

impl TlsPort {
    /// A free port ([`free_port`]), not listening yet.
    pub fn reserve() -> TlsPort {
        let port = free_port();
        TlsPort {
            servers: format!("localhost:{port}"),
            port,
            stop: Arc::default(),
            verify_clients: false,
        }
    }

    /// Make [`serve`](Self::serve) require a client certificate signed
    /// by `ca.pem` (mTLS).
    pub fn verifying_clients(mut self) -> TlsPort {
        self.verify_clients = true;
        self
    }

    /// Serve TLS with the certificate `name` (`localhost`, `elsewhere`):
    /// each connection gets a handshake, then is read until it closes.
    pub fn serve(&mut self, certs: &Certs, name: &str) {
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        acceptor
            .set_certificate_chain_file(certs.path(&format!("{name}.pem")))
            .unwrap();
        acceptor
            .set_private_key_file(certs.path(&format!("{name}.key")), SslFiletype::PEM)
            .unwrap();
        if self.verify_clients {
            acceptor.set_ca_file(certs.path("ca.pem")).unwrap();
            acceptor.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        }
        let acceptor = Arc::new(acceptor.build());
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("the reserved port");
        let stop = self.stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let acceptor = acceptor.clone();
                std::thread::spawn(move || {
                    if let Ok(mut tls) = acceptor.accept(stream) {
                        let _ = std::io::copy(&mut tls, &mut std::io::sink());
                    }
                });
            }
        });
    }

    /// A port serving TLS with the certificate `name` from the start.
    pub fn start(certs: &Certs, name: &str) -> TlsPort {
        let mut port = TlsPort::reserve();
        port.serve(certs, name);
        port
    }
}

impl Drop for TlsPort {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees `stop`.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}
