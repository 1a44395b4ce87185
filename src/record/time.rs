//! Date/time fields: keep the PBX's text, or convert it to a chosen format
//! and zone. The PBX writes local time without an offset (Asterisk:
//! `2024-03-11 09:15:02`), so converting needs the zone it wrote in.

use anyhow::{bail, Context as _, Result};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use super::json_text;

/// How date/time fields are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// The PBX's text as is.
    Keep,
    /// `2024-03-11T06:15:02+00:00` in the output zone.
    Iso8601,
    /// `2024-03-11 06:15:02` in the output zone (ClickHouse DateTime text).
    ClickHouse,
    /// Seconds since the Unix epoch (a JSON number).
    Epoch,
    /// Milliseconds since the Unix epoch (a JSON number).
    EpochMs,
    /// A strftime pattern in the output zone.
    Pattern(String),
}

impl TimeFormat {
    /// `keep`, `iso8601`, `clickhouse`, `epoch`, `epoch_ms`, or a pattern
    /// containing `%`.
    pub fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "keep" => TimeFormat::Keep,
            "iso8601" => TimeFormat::Iso8601,
            "clickhouse" => TimeFormat::ClickHouse,
            "epoch" => TimeFormat::Epoch,
            "epoch_ms" => TimeFormat::EpochMs,
            pattern if pattern.contains('%') => TimeFormat::Pattern(pattern.to_owned()),
            other => bail!(
                "--time-format {other}: use keep, iso8601, clickhouse, epoch, epoch_ms or a strftime pattern"
            ),
        })
    }
}

/// Converts date/time field text.
#[derive(Debug, Clone)]
pub struct TimeConv {
    format: TimeFormat,
    /// strptime pattern of the PBX's text.
    input: &'static str,
    from: TimeZone,
    to: TimeZone,
}

/// A field that is not a date/time in the expected layout.
#[derive(Debug)]
pub struct BadTime;

impl TimeConv {
    /// A converter to `format`; `from` is the zone the PBX wrote in (IANA
    /// name, default the system zone), `to` the output zone (default UTC).
    pub fn new(
        format: TimeFormat,
        input: &'static str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Self> {
        let zone = |name: Option<&str>, default: fn() -> TimeZone| match name {
            None => Ok(default()),
            Some(name) => {
                TimeZone::get(name).with_context(|| format!("unknown time zone `{name}`"))
            }
        };
        Ok(TimeConv {
            format,
            input,
            from: zone(from, TimeZone::system)?,
            to: zone(to, || TimeZone::UTC)?,
        })
    }

    /// The output format.
    pub fn format(&self) -> &TimeFormat {
        &self.format
    }

    /// Write the JSON value for non-empty `text`.
    pub fn write(&self, text: &str, out: &mut Vec<u8>) -> Result<(), BadTime> {
        if self.format == TimeFormat::Keep {
            json_text::string(out, text.as_bytes());
            return Ok(());
        }
        let civil = DateTime::strptime(self.input, text).map_err(|_| BadTime)?;
        let zoned = civil
            .to_zoned_datetime(self.from.clone())
            .map_err(|_| BadTime)?;
        let local = zoned.with_time_zone(self.to.clone());
        let text = match &self.format {
            TimeFormat::Keep => unreachable!("handled above"),
            TimeFormat::Epoch => return write_number(out, zoned.timestamp().as_second()),
            TimeFormat::EpochMs => return write_number(out, zoned.timestamp().as_millisecond()),
            TimeFormat::Iso8601 => local.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            TimeFormat::ClickHouse => local.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            TimeFormat::Pattern(pattern) => local.strftime(pattern).to_string(),
        };
        json_text::string(out, text.as_bytes());
        Ok(())
    }
}

fn write_number(out: &mut Vec<u8>, n: i64) -> Result<(), BadTime> {
    out.extend_from_slice(n.to_string().as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(format: &str, text: &str) -> String {
        let conv = TimeConv::new(
            TimeFormat::parse(format).unwrap(),
            "%Y-%m-%d %H:%M:%S",
            Some("Europe/Moscow"),
            Some("UTC"),
        )
        .unwrap();
        let mut out = Vec::new();
        conv.write(text, &mut out)
            .map(|()| String::from_utf8(out).unwrap())
            .unwrap_or("bad".into())
    }

    #[test]
    fn converts_pbx_local_time() {
        let t = "2024-03-11 09:15:02";
        assert_eq!(convert("keep", t), "\"2024-03-11 09:15:02\"");
        assert_eq!(convert("iso8601", t), "\"2024-03-11T06:15:02+00:00\"");
        assert_eq!(convert("clickhouse", t), "\"2024-03-11 06:15:02\"");
        assert_eq!(convert("epoch", t), "1710137702");
        assert_eq!(convert("epoch_ms", t), "1710137702000");
        assert_eq!(convert("%d.%m.%Y %H:%M", t), "\"11.03.2024 06:15\"");
        assert_eq!(convert("epoch", "11/03/2024"), "bad");
        assert!(TimeFormat::parse("unix").is_err());
        assert!(TimeConv::new(TimeFormat::Epoch, "%F", Some("Mars/Base"), None).is_err());
    }
}
