//! A librdkafka properties file (`-F FILE`, as kcat has): one `key=value`
//! per line, `#` comments and blank lines ignored. It holds what must not
//! be on a command line (SASL passwords, key passphrases): its values are
//! never logged or put in an error message, and a file others can read is
//! warned about.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::{bail, Context as _, Result};

/// The properties in `file`, in order.
pub fn read(file: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the properties file {}", file.display()))?;
    let mode = std::fs::metadata(file)
        .with_context(|| format!("reading the properties file {}", file.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        warn!(
            "{} can be read by others (mode {:o}); it may hold secrets: chmod 600 it",
            file.display(),
            mode & 0o777
        );
    }
    parse(&text).with_context(|| format!("properties file {}", file.display()))
}

fn parse(text: &str) -> Result<Vec<(String, String)>> {
    let mut properties = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The line is not quoted back: it may be a secret without its `=`.
        let Some((key, value)) = line.split_once('=') else {
            bail!("line {}: expected key=value", number + 1);
        };
        properties.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(properties)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_comments_and_errors_that_keep_secrets() {
        let text = "# cluster\nsecurity.protocol = SASL_SSL\n\nsasl.password=s3cr=t\n";
        let got = parse(text).unwrap();
        assert_eq!(
            got,
            [
                ("security.protocol".into(), "SASL_SSL".into()),
                ("sasl.password".into(), "s3cr=t".into())
            ]
        );
        let error = parse("ok=1\nhunter2\n").unwrap_err().to_string();
        assert_eq!(error, "line 2: expected key=value");
    }
}
