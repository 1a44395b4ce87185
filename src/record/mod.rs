//! Record mapping: a framed line -> the Kafka message value (and key).
//!
//! `raw` passes the bytes through untouched; `json` decodes the line from
//! its charset, splits it as CSV and writes one typed JSON object keyed by
//! column names. A line that cannot be mapped is a [`Reject`] with a
//! reason, never an error that stops the pipeline: the caller routes it to
//! the reject topic.

mod avaya;
mod cm_formats;
mod columns;
mod csv;
mod json;
mod json_line;
mod json_text;
mod presets;
mod reject;
mod swar;
mod time;

use anyhow::{bail, Result};
use encoding_rs::Encoding;

pub use columns::Columns;
use csv::{SplitError, Splitter};
use json::{MetaFields, ObjectWriter};
pub use reject::Reject;
pub use time::{TimeConv, TimeFormat};

/// The message format.
#[derive(Debug, Clone)]
pub enum Format {
    /// The line's bytes as received.
    Raw,
    /// CSV fields as a JSON object.
    Json(Box<JsonFormat>),
}

/// Settings of the JSON format.
#[derive(Debug, Clone)]
pub struct JsonFormat {
    /// Column layout.
    pub columns: Columns,
    /// Date/time conversion.
    pub time: TimeConv,
    /// Charset the PBX writes.
    pub charset: &'static Encoding,
    /// Wrap in a Kafka Connect schema envelope.
    pub envelope: bool,
    /// Host id for `_host` when metadata goes into the object.
    pub meta_host: Option<String>,
    /// Column names come from the first line of each input (`--header`).
    pub header: bool,
}

/// Where `--header` stands for the current input.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Header {
    /// No `--header`: the layout is fixed.
    Off,
    /// The next line names the columns.
    Expected,
    /// The layout was learned from a header line.
    Known,
    /// The header line was rejected for this reason: the columns are
    /// unknown, so every data line is rejected too (taking the next line
    /// for the header would consume a record unseen).
    Unusable(String),
}

/// Where a line came from, for metadata.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// File path, peer address or `stdin`.
    pub source: &'a str,
    /// Offset just after the line in a followed file.
    pub offset: Option<u64>,
    /// 1-based line number in the file or stream.
    pub line: u64,
}

/// A mapped message, borrowing the line or the mapper's output buffer.
#[derive(Debug)]
pub struct Mapped<'a> {
    /// The message value.
    pub value: &'a [u8],
    /// The message key, if `--key` names a non-empty field.
    pub key: Option<&'a [u8]>,
    /// The line had bytes invalid in its charset; `_raw` holds it.
    pub lossy: bool,
    /// A fixed-width record went on past its layout (the rest ignored).
    pub longer: bool,
}

impl Mapped<'_> {
    /// Bytes of the value and the key: what the producer's limit counts.
    pub fn size(&self) -> usize {
        self.value.len() + self.key.map_or(0, <[u8]>::len)
    }
}

impl From<SplitError> for Reject {
    fn from(error: SplitError) -> Self {
        match error {
            SplitError::UnbalancedQuotes => Reject::BadCsv("unbalanced quotes"),
        }
    }
}

/// Maps lines to messages; one per task, since it reuses buffers.
#[derive(Debug, Clone)]
pub struct Mapper {
    json: Option<(ObjectWriter, &'static Encoding, Option<String>)>,
    /// Column index of `--key`.
    key: Option<usize>,
    /// The `--key` column's name (looked up again in a learned header).
    key_name: Option<String>,
    header: Header,
    splitter: Splitter,
    out: Vec<u8>,
    key_bytes: Vec<u8>,
    /// Raw lines lose leading and trailing whitespace (`--trim`).
    trim: bool,
}

/// What Python's `str.strip()` removes from ASCII text: the drop-in for
/// consumers of phone.py, which shipped `sys.stdin.readline().strip()`.
fn trim(line: &[u8]) -> &[u8] {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f);
    let start = line.iter().position(|b| !space(b)).unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !space(b))
        .map_or(start, |i| i + 1);
    &line[start..end]
}

impl Mapper {
    /// A mapper for `format`, keyed by the column named `key`.
    pub fn new(format: Format, key_name: Option<&str>) -> Result<Self> {
        let header = match &format {
            Format::Json(json) if json.header => Header::Expected,
            _ => Header::Off,
        };
        let (json, key) = match (format, key_name) {
            (Format::Raw, Some(_)) => bail!("--key needs --format json"),
            (Format::Raw, None) => (None, None),
            (Format::Json(json), key) => {
                let key = match key {
                    None => None,
                    Some(_) if json.header => None,
                    Some(name) => match json.columns.index_of(name) {
                        Some(index) => Some(index),
                        None => bail!("--key {name}: no such column"),
                    },
                };
                let writer = ObjectWriter::new(json.columns, json.time, json.envelope);
                (Some((writer, json.charset, json.meta_host)), key)
            }
        };
        Ok(Mapper {
            json,
            key,
            key_name: key_name.map(str::to_owned),
            header,
            splitter: Splitter::default(),
            out: Vec::new(),
            key_bytes: Vec::new(),
            trim: false,
        })
    }

    /// Whether `line` is only the NULs (and blanks) Avaya CM puts after a
    /// fixed-width record: the tail of the last record before the link
    /// closed, no record itself.
    pub fn is_padding(&self, line: &[u8]) -> bool {
        let fixed = self
            .json
            .as_ref()
            .is_some_and(|(w, ..)| w.columns().fixed.is_some());
        fixed && line.contains(&0) && line.iter().all(|&b| b == 0 || b == b' ')
    }

    /// Raw lines without leading and trailing whitespace (`--trim`).
    pub fn trimmed(mut self) -> Self {
        self.trim = true;
        self
    }

    /// Whether a `--key` column is configured.
    pub fn keyed(&self) -> bool {
        self.key_name.is_some()
    }

    /// With `--header`: whether the next line is taken for the header.
    pub fn expects_header(&self) -> bool {
        self.header == Header::Expected
    }

    /// With `--header`: the next line names the columns (a new file, or a
    /// truncated one, starts with its header).
    pub fn expect_header(&mut self) {
        if self.header != Header::Off {
            self.header = Header::Expected;
        }
    }

    /// With `--header`: the header line was rejected before mapping (too
    /// long); the columns stay unknown until the next header.
    pub fn reject_header(&mut self, reject: &Reject) {
        if self.header != Header::Off {
            self.header = Header::Unusable(reject.to_string());
        }
    }

    /// With `--header`: learn the columns from `line`, the input's first
    /// line (a file resumed mid-way reads it separately).
    pub fn learn_header(&mut self, line: &[u8]) -> Result<(), Reject> {
        let learned = self.columns_of(line);
        if let Err(reject) = &learned {
            self.reject_header(reject);
        }
        learned
    }

    /// [`learn_header`](Self::learn_header) up to its failure.
    fn columns_of(&mut self, line: &[u8]) -> Result<(), Reject> {
        let (Some((writer, charset, _)), false) = (&mut self.json, self.header == Header::Off)
        else {
            return Ok(());
        };
        let (text, _) = charset.decode_without_bom_handling(line);
        let found = self.splitter.split(text.as_bytes())?;
        let names: Vec<&str> = (0..found)
            .map(|i| std::str::from_utf8(self.splitter.field(text.as_bytes(), i)).map(str::trim))
            .collect::<Result<_, _>>()
            .map_err(|_| Reject::BadHeader("not UTF-8".into()))?;
        let columns = Columns::from_names(&names).map_err(|e| Reject::BadHeader(e.to_string()))?;
        self.key = self.key_name.as_deref().and_then(|k| columns.index_of(k));
        *writer = writer.with_columns(columns);
        self.header = Header::Known;
        Ok(())
    }

    /// Map one line (without newline); `None` when it was the header line.
    pub fn map<'a>(
        &'a mut self,
        line: &'a [u8],
        origin: Origin<'_>,
    ) -> Result<Option<Mapped<'a>>, Reject> {
        match &self.header {
            Header::Expected => return self.learn_header(line).map(|()| None),
            Header::Unusable(why) => return Err(Reject::NoHeader(why.clone())),
            Header::Off | Header::Known => {}
        }
        let Some((writer, charset, meta_host)) = &self.json else {
            return Ok(Some(Mapped {
                value: if self.trim { trim(line) } else { line },
                key: None,
                lossy: false,
                longer: false,
            }));
        };
        let (text, lossy) = charset.decode_without_bom_handling(line);
        let meta = meta_host.as_deref().map(|host| MetaFields {
            host,
            source: origin.source,
            offset: origin.offset,
            line: origin.line,
        });
        let columns = writer.columns();
        if columns.fixed.is_none() && !lossy {
            let text = text.as_bytes();
            if let Some(key) = writer.write_line(text, self.key, meta, &mut self.out) {
                return Ok(Some(Mapped {
                    value: &self.out,
                    key: keep_key(&mut self.key_bytes, key.map(|k| &text[k])),
                    lossy: false,
                    longer: false,
                }));
            }
        }
        let (found, emitted, longer) = match &columns.fixed {
            None => {
                let found = self.splitter.split(text.as_bytes())?;
                (found, found, false)
            }
            Some(_) if avaya::is_date_record(text.as_bytes()) => return Err(Reject::DateRecord),
            Some(ranges) => {
                let (found, longer) = self.splitter.split_fixed(text.as_bytes(), ranges);
                (found, ranges.len(), longer)
            }
        };
        if found < columns.required || found > columns.columns.len() {
            return Err(Reject::FieldCount {
                found,
                min: columns.required,
                max: columns.columns.len(),
            });
        }
        let (splitter, text) = (&self.splitter, text.as_bytes());
        let utf8 = |i| std::str::from_utf8(splitter.field(text, i)).is_ok();
        if columns.fixed.is_some() && !(0..emitted).all(utf8) {
            return Err(Reject::CutCharacter);
        }
        // CSV unquoting removes only ASCII bytes from decoded text, and
        // fixed-width fields were checked above: every field is UTF-8.
        let fields = (0..emitted).map(|i| splitter.field(text, i));
        writer.write(fields, meta, lossy.then_some(line), &mut self.out)?;
        let key = self
            .key
            .filter(|&k| k < emitted)
            .map(|k| splitter.field(text, k));
        Ok(Some(Mapped {
            value: &self.out,
            key: keep_key(&mut self.key_bytes, key),
            lossy,
            longer,
        }))
    }
}

/// The key, copied into `buffer`: it outlives the decoded text. An empty
/// key is none.
fn keep_key<'b>(buffer: &'b mut Vec<u8>, key: Option<&[u8]>) -> Option<&'b [u8]> {
    buffer.clear();
    buffer.extend_from_slice(key.unwrap_or_default());
    Some(&buffer[..]).filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STDIN: Origin<'static> = Origin {
        source: "stdin",
        offset: None,
        line: 1,
    };

    fn json(columns: Columns) -> JsonFormat {
        JsonFormat {
            time: TimeConv::new(TimeFormat::Keep, columns.time_input, Some("UTC"), None).unwrap(),
            columns,
            charset: encoding_rs::UTF_8,
            envelope: false,
            meta_host: None,
            header: false,
        }
    }

    fn mapper(format: JsonFormat, key: Option<&str>) -> Mapper {
        Mapper::new(Format::Json(Box::new(format)), key).unwrap()
    }

    fn cdr_mapper(key: Option<&str>) -> Mapper {
        mapper(json(Columns::preset("asterisk-cdr").unwrap()), key)
    }

    fn text(m: &mut Mapper, line: &[u8]) -> String {
        String::from_utf8(m.map(line, STDIN).unwrap().unwrap().value.to_vec()).unwrap()
    }

    #[test]
    fn raw_passes_bytes_through() {
        let mut mapper = Mapper::new(Format::Raw, None).unwrap();
        let m = mapper.map(b"\xff\x00abc", STDIN).unwrap().unwrap();
        assert_eq!(m.value, b"\xff\x00abc");
        assert_eq!(m.key, None);
    }

    /// The sample file and its expected JSON, written independently of
    /// this code (Python's csv + json modules).
    #[test]
    fn sample_master_csv_maps_to_expected_json() {
        let csv = include_str!("../../examples/Master.csv");
        let expected = include_str!("../../examples/Master.expected.jsonl");
        let mut mapper = cdr_mapper(Some("uniqueid"));
        let lines: Vec<_> = csv.lines().collect();
        assert_eq!(lines.len(), expected.lines().count());
        for (line, want) in lines.iter().zip(expected.lines()) {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let got = mapper.map(line.as_bytes(), STDIN).unwrap().unwrap();
            assert_eq!(std::str::from_utf8(got.value).unwrap(), want);
            let want: serde_json::Value = serde_json::from_str(want).unwrap();
            let key = got.key.map(|k| std::str::from_utf8(k).unwrap());
            assert_eq!(key, want["uniqueid"].as_str());
        }
    }

    #[test]
    fn rejects_say_why() {
        let mut mapper = cdr_mapper(None);
        let reason = |m: &mut Mapper, line: &[u8]| m.map(line, STDIN).unwrap_err().to_string();
        assert_eq!(
            reason(&mut mapper, b"a,b,c"),
            "expected 16 to 21 fields, found 3"
        );
        assert_eq!(
            reason(&mut mapper, b"\"a,b"),
            "not a CSV record: unbalanced quotes"
        );
        let sixteen = |duration: &str, start: &str| {
            format!(
                ",100,200,ctx,clid,chan,dchan,Dial,x,{start},,,{duration},0,ANSWERED,DOCUMENTATION"
            )
        };
        let ok = sixteen("5", "2024-03-11 09:15:02");
        assert!(mapper.map(ok.as_bytes(), STDIN).is_ok());
        let bad = sixteen("5s", "2024-03-11 09:15:02");
        assert_eq!(
            reason(&mut mapper, bad.as_bytes()),
            "field `duration` is not an integer"
        );
        let mut epoch = mapper_with_time(TimeFormat::Epoch);
        let bad = sixteen("5", "11.03.2024");
        assert_eq!(
            reason(&mut epoch, bad.as_bytes()),
            "field `start` is not a date/time in the expected layout"
        );
    }

    fn mapper_with_time(format: TimeFormat) -> Mapper {
        let mut f = json(Columns::preset("asterisk-cdr").unwrap());
        f.time = TimeConv::new(
            format,
            f.columns.time_input,
            Some("Europe/Moscow"),
            Some("UTC"),
        )
        .unwrap();
        mapper(f, None)
    }

    #[test]
    fn empty_times_are_null_and_times_convert() {
        let line = b",100,200,ctx,clid,chan,dchan,Dial,x,2024-03-11 09:15:02,,2024-03-11 09:15:09,7,0,NO ANSWER,DOCUMENTATION";
        let got = text(&mut mapper_with_time(TimeFormat::Epoch), line);
        assert!(
            got.contains(r#""start":1710137702,"answer":null,"end":1710137709"#),
            "{got}"
        );
        let got = text(&mut mapper_with_time(TimeFormat::ClickHouse), line);
        assert!(
            got.contains(r#""start":"2024-03-11 06:15:02","answer":null"#),
            "{got}"
        );
    }

    #[test]
    fn cp1251_names_decode_and_invalid_bytes_keep_the_raw_line() {
        let mut f = json(Columns::parse("name,num").unwrap());
        f.charset = encoding_rs::Encoding::for_label(b"cp1251").unwrap();
        let mut m = mapper(f, None);
        // "Иван" in CP1251.
        assert_eq!(
            text(&mut m, b"\"\xc8\xe2\xe0\xed\",100"),
            r#"{"name":"Иван","num":"100"}"#
        );
        // UTF-8 input with a stray byte: decoded lossily, original in base64.
        let mut m = mapper(json(Columns::parse("name,num").unwrap()), None);
        let got = m.map(b"Ivan\xff,100", STDIN).unwrap().unwrap();
        assert!(got.lossy);
        let value = String::from_utf8(got.value.to_vec()).unwrap();
        assert_eq!(
            value,
            "{\"name\":\"Ivan\u{fffd}\",\"num\":\"100\",\"_raw\":\"SXZhbv8sMTAw\"}"
        );
    }

    #[test]
    fn meta_fields_and_schema_envelope() {
        let mut f = json(Columns::parse("id:int,name").unwrap());
        f.meta_host = Some("pbx1".into());
        f.envelope = true;
        let mut m = mapper(f, Some("name"));
        let origin = Origin {
            source: "/var/log/asterisk/cdr-csv/Master.csv",
            offset: Some(42),
            line: 3,
        };
        let got = m.map(b"7,alice", origin).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_slice(got.value).unwrap();
        assert_eq!(
            v["payload"],
            serde_json::json!({"id": 7, "name": "alice", "_host": "pbx1",
                "_source": "/var/log/asterisk/cdr-csv/Master.csv", "_offset": 42, "_line": 3})
        );
        assert_eq!(v["schema"]["type"], "struct");
        assert_eq!(
            v["schema"]["fields"][0],
            serde_json::json!({"field": "id", "type": "int64", "optional": true})
        );
        assert_eq!(got.key, Some(&b"alice"[..]));
    }

    #[test]
    fn header_line_names_the_columns_and_is_not_a_record() {
        let mut f = json(Columns::unnamed());
        f.header = true;
        let mut m = mapper(f, Some("id"));
        assert!(m.map(b"id,name", STDIN).unwrap().is_none());
        let got = m.map(b"7,alice", STDIN).unwrap().unwrap();
        assert_eq!(got.value, br#"{"id":"7","name":"alice"}"#);
        assert_eq!(got.key, Some(&b"7"[..]));
        // A new file starts with its own header.
        m.expect_header();
        assert!(m.map(b"name", STDIN).unwrap().is_none());
        assert_eq!(text(&mut m, b"bob"), r#"{"name":"bob"}"#);
        m.learn_header(b"a,b").unwrap();
        assert_eq!(text(&mut m, b"1,2"), r#"{"a":"1","b":"2"}"#);
        m.expect_header();
        let bad = m.map(b"x,x", STDIN).unwrap_err().to_string();
        assert!(bad.contains("twice"), "{bad}");
        // No data line is ever taken for the header after a bad one: each
        // is rejected until the next input brings its own header.
        for line in [&b"1,2"[..], b"3,4"] {
            let no_header = m.map(line, STDIN).unwrap_err().to_string();
            assert!(no_header.contains("twice"), "{no_header}");
        }
        assert!(m.learn_header(b"a:b").is_err());
        assert!(m.map(b"1", STDIN).is_err(), "a failed learn is no header");
        m.expect_header();
        assert!(m.map(b"v", STDIN).unwrap().is_none());
        assert_eq!(text(&mut m, b"1"), r#"{"v":"1"}"#);
    }

    #[test]
    fn columns_layout_and_null_int() {
        let mut m = mapper(json(Columns::parse("id:int,name").unwrap()), Some("name"));
        let got = m.map(b",\"a \"\"b\"\"\\\"", STDIN).unwrap().unwrap();
        assert_eq!(got.value, br#"{"id":null,"name":"a \"b\"\\"}"#);
        assert_eq!(got.key, Some(&b"a \"b\"\\"[..]));
        let f = json(Columns::parse("a").unwrap());
        assert!(Mapper::new(Format::Json(Box::new(f)), Some("b")).is_err());
    }
}
