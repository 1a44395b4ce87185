//! Credentials cdrship gets before any broker sees them: a Kerberos
//! ticket (librdkafka runs `kinit` with the keytab) and an OAuth token
//! (from the OIDC token endpoint). librdkafka's lines about them name no
//! broker and say little about what to change; these say it.

/// A credential not obtained.
pub(super) enum Credential {
    /// The token endpoint answered and refused cdrship (HTTP 4xx), or the
    /// request could not be made from the configuration: retrying does not
    /// help.
    Refused(String),
    /// Not obtained this time (an endpoint or KDC unreachable, a failed
    /// `kinit`); librdkafka tries again.
    Missing(String),
}

/// What librdkafka's log line `message` (of `facility`) says about a
/// credential, if it is about one.
pub(super) fn failure(facility: &str, message: &str) -> Option<Credential> {
    // "[thrd:background]: Failed to retrieve OIDC token from ..."
    let message = message
        .strip_prefix("[thrd:")
        .and_then(|rest| rest.split_once("]: "))
        .map_or(message, |(_, rest)| rest);
    match facility {
        "OIDC" | "JWT" => Some(token(message)),
        "SASLREFRESH" => kinit(message),
        _ => None,
    }
}

/// `Failed to retrieve OIDC token from "URL": DETAIL (STATUS)`, status -1
/// when no HTTP answer came; or a JWT assertion that cannot be made.
fn token(message: &str) -> Credential {
    let parsed = message
        .split_once(" token from \"")
        .and_then(|(_, rest)| rest.split_once("\": "))
        .and_then(|(url, rest)| {
            let (detail, status) = rest.rsplit_once(" (")?;
            Some((url, detail, status.strip_suffix(')')?.parse::<i32>().ok()?))
        });
    match parsed {
        Some((url, detail, status)) if (400..500).contains(&status) => {
            Credential::Refused(format!(
                "the token endpoint {url} refused cdrship (HTTP {status}: {detail}); check \
             sasl.oauthbearer.client.id, sasl.oauthbearer.client.secret and sasl.oauthbearer.scope"
            ))
        }
        Some((url, detail, _)) => Credential::Missing(format!(
            "no OAuth token from {url}: {detail}; the lines wait, and the token is asked for \
             every 10 s (check sasl.oauthbearer.token.endpoint.url if this lasts)"
        )),
        None => Credential::Refused(format!(
            "no OAuth token: {message}; check the sasl.oauthbearer.* properties"
        )),
    }
}

/// `Kerberos ticket refresh failed: CMD: exited with code N` (or a signal,
/// or why the command could not run). kinit's own message is on stderr
/// just before, from the command itself.
fn kinit(message: &str) -> Option<Credential> {
    let rest = message.strip_prefix("Kerberos ticket refresh failed: ")?;
    let how = rest.rsplit_once(": ").map_or(rest, |(_, how)| how);
    let what = if how.ends_with("code 127") {
        "kinit was not found: install krb5-user (Debian), or set sasl.kerberos.kinit.cmd"
    } else {
        "check sasl.kerberos.keytab and sasl.kerberos.principal, and that a KDC for the realm \
         is reachable (/etc/krb5.conf)"
    };
    Some(Credential::Missing(format!(
        "Kerberos: kinit failed ({how}; kinit's own message is logged above it): {what}"
    )))
}

/// Whether librdkafka's error `reason` repeats a credential failure its
/// log line gave (and [`failure`] said) already.
pub(super) fn already_said(reason: &str) -> bool {
    reason.starts_with("Failed to acquire SASL OAUTHBEARER token")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(facility: &str, message: &str) -> (bool, String) {
        match failure(facility, message) {
            Some(Credential::Refused(s)) => (true, s),
            Some(Credential::Missing(s)) => (false, s),
            None => panic!("not a credential: {message}"),
        }
    }

    #[test]
    fn a_token_endpoint_that_refuses_is_a_refusal_and_one_unreachable_is_not() {
        let (refused, line) = said("OIDC", "[thrd:background]: Failed to retrieve OIDC token from \"https://idp/token\": {\"error\":\"invalid_client\"} (401)");
        assert!(refused, "{line}");
        assert!(line.starts_with("the token endpoint https://idp/token refused cdrship (HTTP 401: {\"error\":\"invalid_client\"})"), "{line}");
        let (refused, line) = said("OIDC", "Failed to retrieve OIDC token from \"http://127.0.0.1:1/token\": Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server (-1)");
        assert!(
            !refused && line.contains("Couldn't connect to server; the lines wait"),
            "{line}"
        );
    }

    #[test]
    fn a_failed_kinit_says_what_to_check() {
        let cmd = "kinit -R -t \"/k\" -k a@B || kinit -t \"/k\" -k a@B";
        let (_, line) = said(
            "SASLREFRESH",
            &format!("[thrd:main]: Kerberos ticket refresh failed: {cmd}: exited with code 1"),
        );
        assert!(
            line.contains("(exited with code 1;") && line.contains("sasl.kerberos.keytab"),
            "{line}"
        );
        let (_, line) = said(
            "SASLREFRESH",
            &format!("Kerberos ticket refresh failed: {cmd}: exited with code 127"),
        );
        assert!(line.contains("install krb5-user"), "{line}");
        assert!(failure("SASLREFRESH", "Slow Kerberos ticket refresh: 6000ms: kinit").is_none());
        assert!(failure("FAIL", "whatever").is_none());
    }
}
