//! Probes that turn librdkafka's vague connection failures into a cause.
//! librdkafka says "certificate verify failed" for a wrong CA, an expired
//! certificate and a name mismatch alike, and only "disconnected" when a
//! plaintext client meets a TLS port; a broker that is merely down looks
//! the same. Each probe opens one connection of its own (a few seconds at
//! most, once per broker and cause) and reports only what it proved.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::Path;
use std::time::Duration;

use openssl::ssl::{HandshakeError, SslConnector, SslMethod, SslVerifyMode};

/// How long a probe waits for the broker.
const PATIENCE: Duration = Duration::from_secs(3);

/// The TLS settings of the producer that the certificate check repeats.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// `ssl.ca.location`: a CA file or directory; the system store if unset.
    pub ca_location: Option<String>,
    /// `ssl.endpoint.identification.algorithm=none` turns the name check off.
    pub check_name: bool,
}

/// `host:port` of a librdkafka broker name (`sasl_ssl://host:9093/1`).
pub fn address(broker: &str) -> Option<&str> {
    let rest = broker.split_once("://").map_or(broker, |(_, rest)| rest);
    let address = rest.split('/').next()?;
    address.contains(':').then_some(address)
}

/// A connection to the first of `address`'s addresses that takes one
/// (`localhost` may be `::1` first, as librdkafka also tries in turn).
fn connect(address: &str) -> Option<TcpStream> {
    let stream = address
        .to_socket_addrs()
        .ok()?
        .find_map(|to| TcpStream::connect_timeout(&to, PATIENCE).ok())?;
    stream.set_read_timeout(Some(PATIENCE)).ok()?;
    stream.set_write_timeout(Some(PATIENCE)).ok()?;
    Some(stream)
}

/// Why the broker's certificate fails verification as the producer does
/// it (OpenSSL's reason, with the names a mismatching certificate lists);
/// `None` when it passes or the broker cannot be reached.
pub fn certificate(address: &str, tls: &Tls) -> Option<String> {
    let host = address.rsplit_once(':')?.0.trim_matches(['[', ']']);
    let mut builder = SslConnector::builder(SslMethod::tls_client()).ok()?;
    match tls.ca_location.as_deref() {
        Some(dir) if Path::new(dir).is_dir() => {
            builder.load_verify_locations(None, Some(Path::new(dir)))
        }
        Some(file) => builder.set_ca_file(file),
        None => builder.set_default_verify_paths(),
    }
    .ok()?;
    let mut config = builder.build().configure().ok()?;
    config.set_verify_hostname(tls.check_name);
    let stream = connect(address)?;
    let Err(HandshakeError::Failure(failed)) = config.connect(host, stream) else {
        return None;
    };
    let result = failed.ssl().verify_result();
    if result.as_raw() == 0 {
        return None;
    }
    let why = result.error_string().to_owned();
    let names = unverified(address).unwrap_or_default();
    if why.to_ascii_lowercase().contains("mismatch") && !names.is_empty() {
        return Some(format!("{why}: it names {}, not {host}", names.join(", ")));
    }
    Some(why)
}

/// A TLS handshake verifying nothing: the DNS names of the server's
/// certificate, if it got that far.
fn unverified(address: &str) -> Option<Vec<String>> {
    let stream = connect(address)?;
    let mut builder = SslConnector::builder(SslMethod::tls_client()).ok()?;
    builder.set_verify(SslVerifyMode::NONE);
    let mut config = builder.build().configure().ok()?;
    config.set_verify_hostname(false);
    let cert = match config.connect("probe", stream) {
        Ok(tls) => tls.ssl().peer_certificate(),
        // A server that wants a client certificate alerts: still TLS.
        Err(HandshakeError::Failure(failed)) => failed.ssl().peer_certificate(),
        Err(_) => None,
    }?;
    let names = cert.subject_alt_names().map_or_else(Vec::new, |names| {
        names
            .iter()
            .filter_map(|n| n.dnsname().map(str::to_owned))
            .collect()
    });
    Some(names)
}

/// Whether a TLS server answers at `address`.
pub fn speaks_tls(address: &str) -> bool {
    unverified(address).is_some()
}

/// Whether a plaintext Kafka broker answers an ApiVersions request at
/// `address`.
pub fn speaks_plaintext_kafka(address: &str) -> bool {
    const CORRELATION: [u8; 4] = 0x6364_7273_i32.to_be_bytes();
    let Some(mut stream) = connect(address) else {
        return false;
    };
    // ApiVersions v0: api key 18, version 0, correlation id, no client id.
    let mut request = vec![0, 0, 0, 10, 0, 18, 0, 0];
    request.extend(CORRELATION);
    request.extend((-1i16).to_be_bytes());
    let mut reply = [0u8; 8];
    stream.write_all(&request).is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && reply[4..] == CORRELATION
}
