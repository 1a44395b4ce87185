//! JSON scalars written straight from field bytes: strings escaped after
//! a word-at-a-time scan (most CDR fields need no escape at all), integers
//! copied when already in canonical form. Both run for every field of
//! every line, so they avoid `fmt` and per-byte branches.

use std::io::Write as _;

/// `text`, known to need no escape, as a JSON string.
pub fn plain_string(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(text);
    out.push(b'"');
}

/// `text` as a JSON string. It must be UTF-8: then only `"`, `\\` and
/// control bytes need escapes, and every other byte (multi-byte characters
/// included) is copied as it is, without validating each field again.
pub fn string(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    if super::swar::json_plain(text) {
        out.extend_from_slice(text);
        out.push(b'"');
        return;
    }
    let mut copied = 0;
    for (i, &byte) in text.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&text[copied..i]);
        if escape.is_empty() {
            write!(out, "\\u{byte:04x}").expect("writing to a Vec cannot fail");
        } else {
            out.extend_from_slice(escape);
        }
        copied = i + 1;
    }
    out.extend_from_slice(&text[copied..]);
    out.push(b'"');
}

/// `text` as a JSON integer, or `None` if it is no i64. Digits already in
/// canonical form (no sign, no leading zero, at most 18 of them: always in
/// range) are copied; anything else is parsed and printed.
pub fn integer(out: &mut Vec<u8>, text: &[u8]) -> Option<()> {
    let canonical = (1..=18).contains(&text.len())
        && text.iter().all(u8::is_ascii_digit)
        && (text[0] != b'0' || text.len() == 1);
    if canonical {
        out.extend_from_slice(text);
        return Some(());
    }
    let n: i64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    write!(out, "{n}").expect("writing to a Vec cannot fail");
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_match_serde_json() {
        for text in [
            "plain",
            "q\"uote",
            "back\\slash",
            "tab\tnl\ncr\r",
            "\u{1}\u{1f}\u{7f}",
            "Иван \"Петров\" <101>",
            "",
            "exactly8",
            "sixteen bytes ok",
            "seventeen bytes\"!",
            "long plain text that spans several words\u{1f}",
        ] {
            let mut ours = Vec::new();
            string(&mut ours, text.as_bytes());
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(text).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn integers_are_canonical() {
        for (text, want) in [
            ("162", Some("162")),
            ("0", Some("0")),
            ("007", Some("7")),
            ("-5", Some("-5")),
            ("+5", Some("5")),
            ("999999999999999999", Some("999999999999999999")),
            ("9223372036854775807", Some("9223372036854775807")),
            ("9223372036854775808", None),
            ("1.5", None),
            ("12a", None),
            ("", None),
        ] {
            let mut out = Vec::new();
            let got = integer(&mut out, text.as_bytes()).map(|()| String::from_utf8(out).unwrap());
            assert_eq!(got.as_deref(), want, "{text:?}");
        }
    }
}
