//! Avaya Communication Manager layouts written as CM displays them: the
//! data items of `display system-parameters cdr` page 2 with their
//! lengths, in order (`date 6, space 1, time 4, sec-dur 5, ...`), so an
//! admin copies the page instead of counting byte offsets. The presets
//! for CM's standard formats are written the same way, from Avaya's
//! tables. `space`, `return`, `line-feed` and `null` take their bytes and
//! give no field.

use anyhow::{bail, Context as _, Result};

use super::columns::{Column, Columns, Kind, DEFAULT_TIME};

/// Items that only fill or end the record.
const FILLERS: &[&str] = &["space", "return", "line_feed", "null"];

/// Items CM writes as plain numbers: JSON integers.
const NUMBERS: &[&str] = &["sec_dur", "ppm"];

/// The columns of `layout`: items separated by commas or new lines, each
/// a data-item name and its length in bytes (`sec-dur 5`, `sec-dur - 5`,
/// `sec-dur:5`). Names become snake_case (`clg-num/in-tac` ->
/// `clg_num_in_tac`).
pub fn layout(layout: &str, name: &str) -> Result<Columns> {
    let mut columns: Vec<Column> = Vec::new();
    let mut fixed = Vec::new();
    let mut offset = 0;
    for item in layout
        .split([',', '\n'])
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        let digits = item.len() - item.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (label, len) = item.split_at(item.len() - digits);
        let len: usize =
            len.parse().ok().filter(|&n| n > 0).with_context(|| {
                format!("CM layout item `{item}`: no length (e.g. `sec-dur 5`)")
            })?;
        let label = label.trim_end_matches([' ', '\t', '-', ':']).trim();
        let snake: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        if snake.is_empty() {
            bail!("CM layout item `{item}`: no data-item name");
        }
        if !FILLERS.contains(&snake.as_str()) {
            if columns.iter().any(|c| c.name == snake) {
                bail!("CM layout: data item `{label}` appears twice");
            }
            let kind = if NUMBERS.contains(&snake.as_str()) {
                Kind::Int
            } else {
                Kind::Text
            };
            columns.push(Column { name: snake, kind });
            fixed.push((offset, len));
        }
        offset += len;
    }
    if columns.is_empty() {
        bail!("CM layout `{layout}`: no data items");
    }
    Ok(Columns {
        columns,
        // A record reaching its first field maps; missing trailing fields
        // are absent.
        required: 1,
        time_input: DEFAULT_TIME,
        name: name.replace('-', "_"),
        fixed: Some(fixed),
    })
}

/// Whether `line` (NUL padding and blanks trimmed) is one of CM's date
/// records, sent when the link connects and at midnight: `15:04 01/14`
/// (customized, CDRU), `01 14` (printer, expanded) or `0114` (TELESEER,
/// 59-char, int-*).
pub fn is_date_record(line: &[u8]) -> bool {
    let line = line.trim_ascii();
    let line = &line[line.iter().take_while(|&&b| b == 0).count()..];
    let shape = |pattern: &[u8]| {
        line.len() == pattern.len()
            && line.iter().zip(pattern).all(|(&b, &p)| match p {
                b'9' => b.is_ascii_digit(),
                _ => b == p,
            })
    };
    shape(b"99:99 99/99") || shape(b"99 99") || shape(b"9999")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_two_as_cm_displays_it() {
        let page = "date - 6\n space - 1\n time - 4\n space - 1\n sec-dur - 5\n clg-num/in-tac - 10\n return - 1\n line-feed - 1";
        let c = layout(page, "site").unwrap();
        let names: Vec<_> = c.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["date", "time", "sec_dur", "clg_num_in_tac"]);
        assert_eq!(c.fixed.unwrap(), [(0, 6), (7, 4), (12, 5), (17, 10)]);
        assert_eq!(c.columns[2].kind, Kind::Int);
        assert!(layout("date 6, date 6", "x").is_err());
        assert!(layout("date", "x").is_err());
        assert!(layout("space 3", "x").is_err());
    }

    #[test]
    fn date_records() {
        assert!(is_date_record(b"\0\0\x0015:04 01/14"));
        assert!(is_date_record(b"01 14 "));
        assert!(is_date_record(b"0114"));
        assert!(!is_date_record(b"011426 1504 00012"));
    }
}
