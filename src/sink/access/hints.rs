//! The words of librdkafka's messages that tell a refusal, and what to
//! change for each.

/// What only a refusal says (not a bare "sasl": every message names a
/// `sasl_ssl://` broker).
pub(super) const REFUSALS: &[&str] = &[
    "certificate",
    "sasl authentication",
    "sasl handshake",
    "sasl mechanism",
    "mechanism handshake failed",
    "sasl(",
    "kerberos",
    "gssapi",
];

/// Failures of a broker that refuses already: its repeats.
pub(super) const REPEATS: &[&str] = &["ssl", "sasl", "apiversion_query", "authentication"];

/// What to change, by what librdkafka's message says (lower case, most
/// specific first).
const HINTS: &[(&str, &str)] = &[
    ("hostname mismatch", "the broker's certificate does not name the host cdrship connects to: use a name it lists (bootstrap.servers, the broker's advertised listener)"),
    ("ip address mismatch", "the broker's certificate does not name the address cdrship connects to: connect by a name it lists"),
    ("expired", "a certificate has expired (or this machine's clock is wrong)"),
    ("certificate verify failed", "set ssl.ca.location to the CA that signed the broker's certificate (or install that CA in the system store)"),
    ("certificate required", WANTS_CERTIFICATE),
    ("bad certificate", "the broker does not accept the client certificate: check ssl.certificate.location and ssl.key.location"),
    ("unknown ca", "the broker does not trust the client certificate's CA"),
    ("wrong version number", "the broker does not speak TLS on this port: connect to its TLS listener, or set security.protocol to plaintext or sasl_plaintext"),
    ("connecting to a ssl listener", "the port expects TLS: set security.protocol to ssl or sasl_ssl"),
    ("unsupported sasl mechanism", "set sasl.mechanism to one the broker offers"),
    ("mechanism handshake failed", "set sasl.mechanism to one the broker offers"),
    ("handshake not supported by broker", NO_SASL),
    ("no worthy mechs", "the Cyrus SASL plugin for this mechanism is not installed: for GSSAPI install libsasl2-modules-gssapi-mit (Debian)"),
    ("kerberos", "check sasl.kerberos.keytab and sasl.kerberos.principal, and that a KDC for the realm is reachable (/etc/krb5.conf)"),
    ("gssapi", "check sasl.kerberos.keytab and sasl.kerberos.principal, and that a KDC for the realm is reachable (/etc/krb5.conf)"),
    ("sasl", "check sasl.mechanism, sasl.username and sasl.password (the broker must know the user for that mechanism)"),
];

/// What to change when the listener has no SASL.
const NO_SASL: &str = "this listener has no SASL: connect to the broker's SASL listener, or set security.protocol to plaintext or ssl";

/// What to change when the broker wants a client certificate.
const WANTS_CERTIFICATE: &str =
    "the broker wants a client certificate: set ssl.certificate.location and ssl.key.location";

/// What to change for a refusal that says `detail`, by a client that has
/// a certificate of its own or not: a broker that wants one and gets none
/// may say "bad certificate" (Java's TLS, so Apache Kafka, does).
pub(super) fn hint(detail: &str, client_certificate: bool) -> &'static str {
    let detail = detail.to_ascii_lowercase();
    if !client_certificate && detail.contains("bad certificate") {
        return WANTS_CERTIFICATE;
    }
    // Apache Kafka's listener without SASL answers the handshake with an
    // empty list of mechanisms.
    if detail.contains("supported mechanisms:  ")
        || detail.trim_end().ends_with("supported mechanisms:")
    {
        return NO_SASL;
    }
    HINTS
        .iter()
        .find(|(marker, _)| detail.contains(marker))
        .map_or(
            "check the security.protocol, ssl.* and sasl.* properties",
            |(_, hint)| hint,
        )
}
