//! Column layouts for JSON output: `--columns a,b:int` and the presets
//! (see `presets.rs`).
//!
//! A layout names the fields in order and types them. It also says how
//! many trailing columns are optional, because Asterisk's Master.csv gains
//! `uniqueid` and `userfield` only when cdr_csv is configured with
//! `loguniqueid` / `loguserfield`, and IP Office SMDR grew fields over
//! releases. Fields are CSV by default, or fixed-width byte ranges (Avaya
//! Communication Manager).

use anyhow::{bail, Result};

/// How a field's text becomes a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A JSON string.
    Text,
    /// A JSON integer (empty field -> null).
    Int,
    /// A date/time, written per `--time-format` (empty field -> null).
    DateTime,
}

/// One named column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The JSON key.
    pub name: String,
    /// The JSON value type.
    pub kind: Kind,
}

/// An ordered column layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// All columns, optional ones last.
    pub columns: Vec<Column>,
    /// Fewest fields a line may have; between this and `columns.len()` the
    /// missing trailing columns are simply left out of the JSON.
    pub required: usize,
    /// strptime pattern of the date/time columns' text.
    pub time_input: &'static str,
    /// Names the layout in a Kafka Connect schema.
    pub name: String,
    /// Fixed-width layout: byte offset and length of each column; `None`
    /// for CSV.
    pub fixed: Option<Vec<(usize, usize)>>,
}

/// Default strptime pattern of date/time text (Asterisk's cdr_csv).
pub(super) const DEFAULT_TIME: &str = "%Y-%m-%d %H:%M:%S";

impl Columns {
    /// A named preset.
    pub fn preset(name: &str) -> Result<Self> {
        if let Some((name, layout)) = super::cm_formats::FORMATS.iter().find(|(n, _)| *n == name) {
            return super::avaya::layout(layout, name);
        }
        let Some(preset) = super::presets::PRESETS.iter().find(|p| p.name == name) else {
            let presets = super::presets::PRESETS.iter().map(|p| p.name);
            let known: Vec<_> = presets
                .chain(super::cm_formats::FORMATS.iter().map(|(n, _)| *n))
                .collect();
            bail!(
                "unknown preset `{name}`; known presets: {}",
                known.join(", ")
            );
        };
        let mut columns = Columns::parse(preset.spec)?;
        columns.required = preset.required;
        columns.time_input = preset.time_input;
        columns.name = name.replace('-', "_");
        columns.fixed = (!preset.fixed.is_empty()).then(|| preset.fixed.to_vec());
        Ok(columns)
    }

    /// `name[:type],...` where type is `int`, `datetime` or `text` (the
    /// default); every column is required. Or fixed width, every item
    /// `name@OFFSET+LEN[:type]` (0-based byte offset, length in bytes):
    /// then a record needs to reach its first field only.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut columns: Vec<Column> = Vec::new();
        let mut fixed = Vec::new();
        for item in spec.split(',').map(str::trim) {
            let (name, kind) = match item.split_once(':') {
                None => (item, Kind::Text),
                Some((name, "text")) => (name, Kind::Text),
                Some((name, "int")) => (name, Kind::Int),
                Some((name, "datetime")) => (name, Kind::DateTime),
                Some((_, other)) => {
                    bail!("column `{item}`: unknown type `{other}` (text, int, datetime)")
                }
            };
            let name = match name.split_once('@') {
                None => name,
                Some((name, range)) => {
                    let parsed = range.split_once('+').and_then(|(offset, len)| {
                        Some((offset.parse().ok()?, len.parse().ok().filter(|&l| l > 0)?))
                    });
                    let Some(range) = parsed else {
                        bail!("column `{item}`: expected name@OFFSET+LEN (bytes, e.g. dialed_num@30+18)")
                    };
                    fixed.push(range);
                    name
                }
            };
            if name.is_empty() {
                bail!("--columns `{spec}`: empty column name");
            }
            if columns.iter().any(|c| c.name == name) {
                bail!("--columns `{spec}`: column `{name}` appears twice");
            }
            columns.push(Column {
                name: name.to_owned(),
                kind,
            });
        }
        if !fixed.is_empty() && fixed.len() != columns.len() {
            bail!("--columns `{spec}`: give every column as name@OFFSET+LEN, or none");
        }
        let required = if fixed.is_empty() { columns.len() } else { 1 };
        Ok(Columns {
            columns,
            required,
            time_input: DEFAULT_TIME,
            name: "columns".into(),
            fixed: (!fixed.is_empty()).then_some(fixed),
        })
    }

    /// No columns yet: `--header` names them from the input's first line.
    pub fn unnamed() -> Self {
        Columns {
            columns: Vec::new(),
            required: 0,
            time_input: DEFAULT_TIME,
            name: "header".into(),
            fixed: None,
        }
    }

    /// An Avaya CM layout as CM lists it (see `avaya.rs`).
    pub fn avaya_cm(layout: &str) -> Result<Self> {
        super::avaya::layout(layout, "avaya_cm_layout")
    }

    /// Text columns named by a header line, all required.
    pub fn from_names(names: &[&str]) -> Result<Self> {
        if names.iter().any(|n| n.contains([',', ':'])) {
            bail!("header names must not contain `,` or `:`");
        }
        Columns::parse(&names.join(","))
    }

    /// Position of a column by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asterisk_cdr_preset() {
        let cdr = Columns::preset("asterisk-cdr").unwrap();
        assert_eq!(cdr.columns.len(), 21);
        assert_eq!(cdr.required, 16);
        assert_eq!(cdr.index_of("duration"), Some(12));
        assert_eq!(cdr.columns[12].kind, Kind::Int);
        assert_eq!(cdr.columns[10].kind, Kind::DateTime);
        assert_eq!(cdr.columns[13].kind, Kind::Int);
        assert_eq!(cdr.columns[17].name, "userfield");
    }

    #[test]
    fn parse_types_and_errors() {
        let cols = Columns::parse("a, b:int ,c:text,d:datetime").unwrap();
        let kinds: Vec<_> = cols
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("a", Kind::Text),
                ("b", Kind::Int),
                ("c", Kind::Text),
                ("d", Kind::DateTime)
            ]
        );
        assert_eq!(cols.required, 4);
        assert!(Columns::parse("a,a").is_err());
        assert!(Columns::parse("a,,b").is_err());
        assert!(Columns::parse("a:float").is_err());
        let fixed = Columns::parse("dialed@30+18, secs@12+5:int").unwrap();
        assert_eq!(fixed.fixed, Some(vec![(30, 18), (12, 5)]));
        assert_eq!((fixed.required, fixed.columns[1].kind), (1, Kind::Int));
        assert!(Columns::parse("a@1+2,b").is_err());
        assert!(Columns::parse("a@1").is_err());
        assert!(Columns::parse("a@1+0").is_err());
        assert!(Columns::preset("nope")
            .unwrap_err()
            .to_string()
            .contains("asterisk-cdr"));
    }
}
