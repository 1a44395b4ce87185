//! The JSON object of one record: column names precomputed once, typed
//! values, optional metadata fields, and the optional Kafka Connect
//! `{"schema": ..., "payload": ...}` envelope.

use std::io::Write as _;

use base64::Engine as _;
use serde_json::json;

use super::columns::{Columns, Kind};
use super::json_text;
use super::time::{TimeConv, TimeFormat};
use super::Reject;

/// Writes JSON objects for one column layout.
#[derive(Debug, Clone)]
pub struct ObjectWriter {
    pub(super) columns: Columns,
    pub(super) time: TimeConv,
    /// `"name":` for each column, JSON-escaped once.
    pub(super) prefixes: Vec<Vec<u8>>,
    /// `{"schema":...,"payload":` when the envelope is on.
    envelope: Option<Vec<u8>>,
}

/// Metadata written after the columns.
#[derive(Debug, Clone, Copy)]
pub struct MetaFields<'a> {
    /// Host id.
    pub host: &'a str,
    /// File path or peer address.
    pub source: &'a str,
    /// Byte offset just after the line in a followed file.
    pub offset: Option<u64>,
    /// 1-based line number in the file or stream.
    pub line: u64,
}

impl ObjectWriter {
    /// A writer for `columns`; `envelope` wraps each object in a Kafka
    /// Connect schema envelope.
    pub fn new(columns: Columns, time: TimeConv, envelope: bool) -> Self {
        let prefixes = columns
            .columns
            .iter()
            .map(|c| key_prefix(&c.name))
            .collect();
        let envelope = envelope.then(|| {
            let mut prefix = br#"{"schema":"#.to_vec();
            prefix.extend_from_slice(schema(&columns, &time).to_string().as_bytes());
            prefix.extend_from_slice(br#","payload":"#);
            prefix
        });
        ObjectWriter {
            columns,
            time,
            prefixes,
            envelope,
        }
    }

    /// The same writer for another layout (learned from a header line).
    pub fn with_columns(&self, columns: Columns) -> Self {
        ObjectWriter::new(columns, self.time.clone(), self.envelope.is_some())
    }

    /// The layout.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// Write the object for `fields` into `out`. The fields must be UTF-8
    /// (the caller decoded the line before splitting it).
    pub fn write<'f>(
        &self,
        fields: impl Iterator<Item = &'f [u8]>,
        meta: Option<MetaFields<'_>>,
        raw: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> Result<(), Reject> {
        self.start(out);
        let mut first = true;
        // Fixed-width fields are blank when absent: left out.
        let fixed = self.columns.fixed.is_some();
        for ((column, prefix), text) in self.columns.columns.iter().zip(&self.prefixes).zip(fields)
        {
            if fixed && text.is_empty() {
                continue;
            }
            out.push(if first { b'{' } else { b',' });
            first = false;
            out.extend_from_slice(prefix);
            match column.kind {
                _ if text.is_empty() && column.kind != Kind::Text => out.extend_from_slice(b"null"),
                Kind::Text => json_text::string(out, text),
                Kind::Int => json_text::integer(out, text)
                    .ok_or_else(|| Reject::NotInteger(column.name.clone()))?,
                Kind::DateTime => std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| self.time.write(t, out).ok())
                    .ok_or_else(|| Reject::NotDateTime(column.name.clone()))?,
            }
        }
        if first {
            out.push(b'{');
        }
        self.finish(meta, raw, out);
        Ok(())
    }

    /// Empty `out` and open the envelope, if it is on.
    pub(super) fn start(&self, out: &mut Vec<u8>) {
        out.clear();
        if let Some(prefix) = &self.envelope {
            out.extend_from_slice(prefix);
        }
    }

    /// After the columns: the metadata, `_raw`, and the closing braces.
    pub(super) fn finish(
        &self,
        meta: Option<MetaFields<'_>>,
        raw: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) {
        if let Some(meta) = meta {
            field(out, "_host", |out| string(out, meta.host));
            field(out, "_source", |out| string(out, meta.source));
            if let Some(offset) = meta.offset {
                field(out, "_offset", |out| number(out, offset));
            }
            field(out, "_line", |out| number(out, meta.line));
        }
        if let Some(raw) = raw {
            // The exact line: as text if it is UTF-8, else base64.
            field(out, "_raw", |out| match std::str::from_utf8(raw) {
                Ok(text) => string(out, text),
                Err(_) => string(out, &base64::engine::general_purpose::STANDARD.encode(raw)),
            });
        }
        out.push(b'}');
        if self.envelope.is_some() {
            out.push(b'}');
        }
    }
}

fn key_prefix(name: &str) -> Vec<u8> {
    let mut prefix = serde_json::to_vec(name).expect("a str always serializes");
    prefix.push(b':');
    prefix
}

fn field(out: &mut Vec<u8>, name: &str, value: impl FnOnce(&mut Vec<u8>)) {
    if out.last() != Some(&b'{') {
        out.push(b',');
    }
    out.extend_from_slice(&key_prefix(name));
    value(out);
}

fn number(out: &mut Vec<u8>, n: u64) {
    write!(out, "{n}").expect("writing to a Vec cannot fail");
}

fn string(out: &mut Vec<u8>, text: &str) {
    json_text::string(out, text.as_bytes());
}

/// The Kafka Connect struct schema of the layout: every field optional,
/// since trailing columns and metadata may be absent.
fn schema(columns: &Columns, time: &TimeConv) -> serde_json::Value {
    let mut fields: Vec<serde_json::Value> = columns
        .columns
        .iter()
        .map(|c| {
            let (kind, name) = match c.kind {
                Kind::Text => ("string", None),
                Kind::Int => ("int64", None),
                Kind::DateTime => match time.format() {
                    TimeFormat::Epoch => ("int64", None),
                    TimeFormat::EpochMs => {
                        ("int64", Some("org.apache.kafka.connect.data.Timestamp"))
                    }
                    _ => ("string", None),
                },
            };
            let mut field = json!({"field": c.name, "type": kind, "optional": true});
            if let Some(name) = name {
                field["name"] = json!(name);
                field["version"] = json!(1);
            }
            field
        })
        .collect();
    for (name, kind) in [
        ("_host", "string"),
        ("_source", "string"),
        ("_offset", "int64"),
        ("_raw", "string"),
    ] {
        fields.push(json!({"field": name, "type": kind, "optional": true}));
    }
    json!({"type": "struct", "name": format!("cdrship.{}", columns.name), "optional": false, "fields": fields})
}
