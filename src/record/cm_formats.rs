//! Avaya Communication Manager's standard CDR formats (`change
//! system-parameters cdr`, "Primary Output Format"), written as CM layouts
//! (see `avaya.rs`) from the "CDR Data Format" tables of the DEFINITY ECS
//! Release 8.2 Administrator's Guide (555-233-506, Issue 1 April 2000 and
//! Issue 1.1 June 2000, chapter 20) and the Administrator's Guide for
//! Avaya MultiVantage Software (555-233-506 Issue 5, October 2002).
//! Positions there are 1-based; `time` is hhmm, `duration` hmmt (hours,
//! minutes, tenths of a minute). Avaya says CM 4.0 and later have their
//! own tables for these formats, which were not available here: check a
//! captured record against the preset, or copy the site's layout into
//! `--avaya-cm-layout`. Not here, for want of a complete table:
//! `59-char` and `int-process` (none found), `int-direct` (positions
//! 19-26 missing), `int-isdn` (its end, and a line feed inside the
//! record at position 74).

/// Preset name and CM layout.
pub const FORMATS: &[(&str, &str)] = &[
    // Table 40 "CDR Data Format - Unformatted" (R8.2 Issue 1.1, p.1257):
    // positions 14-105. Positions 1-13 were unreadable there and are taken
    // from the Enhanced Unformatted table on the next page (Table 41),
    // whose rows 1-17 join the continuation exactly. 100 bytes, CR LF, 3
    // NULs; positions 97-100 are reserved.
    (
        "avaya-cm-unformatted",
        "time 4, duration 4, cond-code 1, code-dial 4, code-used 4, dialed-num 15, \
         calling-num 10, acct-code 15, auth-code 7, space 2, frl 1, in-crt-id 3, out-crt-id 3, \
         feat-flag 1, attd-console 2, in-trk-code 4, node-num 2, ins 3, ixc 3, bcc 1, ma-uui 1, \
         res-flag 1, tsc-ct 4, tsc-flag 1, space 4, return 1, line-feed 1, null 3",
    ),
    // Table 27 "CDR Data format - TELESEER" (R8.2 Issue 1, pp.1230-1231),
    // identical in MultiVantage Table 33 (p.1563). 76 bytes, CR LF, 3
    // NULs. Circuit ids are printed tens, units, hundreds unless "Modified
    // Circuit ID Display" is set.
    (
        "avaya-cm-teleseer",
        "space 3, time 4, duration 4, cond-code 1, code-dial 3, code-used 3, dialed-num 15, \
         calling-num 5, acct-code 15, frl 1, ixc 1, in-crt-id 3, out-crt-id 3, feat-flag 1, \
         auth-code 7, space 7, return 1, line-feed 1, null 3",
    ),
    // Table 28 "CDR Data Format - ISDN TELESEER" (R8.2 Issue 1, p.1231):
    // what `teleseer` sends with "Use ISDN Layouts? y". The IXC code
    // takes the access code dialed's place, and INS is split: its units
    // before the FRL, its hundreds and tens after the authorization code.
    // 76 bytes, then a line feed without a carriage return (as printed),
    // and 3 NULs.
    (
        "avaya-cm-teleseer-isdn",
        "space 3, time 4, duration 4, cond-code 1, ixc 3, code-used 3, dialed-num 15, \
         calling-num 5, acct-code 15, ins-units 1, frl 1, in-crt-id 3, out-crt-id 3, feat-flag 1, \
         auth-code 7, ins-hundreds-tens 2, space 5, line-feed 1, null 3",
    ),
    // Table 35 "CDR Data Format - LSU" (R8.2 Issue 1, p.1239, positions
    // 1-48) and MultiVantage Table 41 (p.1573, 46-59; the overlap agrees).
    // No time of day. A long account code overwrites the positions after
    // its first 5 digits, hence the two-way names. 54 bytes, CR LF, 3 NULs.
    (
        "avaya-cm-lsu",
        "duration 4, cond-code 1, code-dial 3, code-used 3, dialed-num 15, calling-num-2-5 4, \
         acct-code-1-5 5, auth-code-or-acct-6-12 7, space-or-acct-13-14 2, frl-or-acct-15 1, \
         calling-num-1 1, in-crt-id-tens-units 2, feat-flag 1, out-crt-id-tens-units-hundreds 3, \
         in-crt-id-hundreds 1, ixc 1, return 1, line-feed 1, null 3",
    ),
    // Table 34 "CDR Data Format - LSU-Expand" (R8.2 Issue 1.1 p.1248,
    // positions 1-65, and Issue 1 p.1239, 67-78). Position 66 fell on the
    // page break in both; it is taken as a space, as around every other
    // field of this format. 73 bytes, CR LF, 3 NULs.
    (
        "avaya-cm-lsu-expand",
        "time 4, space 1, duration 4, space 1, cond-code 1, space 1, code-dial 3, code-used 3, \
         space 1, dialed-num 15, space 1, calling-num 4, space 1, acct-code 5, space 1, \
         auth-code 7, space 4, frl 1, space 1, calling-num-1 1, space 1, in-crt-id-tens-units 2, \
         space 1, feat-flag 1, space 1, out-crt-id-tens-units 2, space 1, out-crt-id-hundreds 1, \
         space 1, in-crt-id-hundreds 1, ixc 1, return 1, line-feed 1, null 3",
    ),
    // Table 31 "CDR Data Format - Printer" (R8.2 Issue 1, p.1234),
    // positions 1-77. The continuation (outgoing circuit id, feature flag,
    // the end of the record) was not available: `rest` holds it as text.
    (
        "avaya-cm-printer",
        "time 4, space 1, duration 4, space 1, cond-code 1, space 1, code-dial 3, space 1, \
         code-used 3, space 1, dialed-num 15, space 1, calling-num 5, space 1, acct-code 15, \
         space 1, auth-code 7, space 4, frl 1, space 1, ixc 1, space 1, in-crt-id 3, space 1, \
         rest 40",
    ),
    // Table 44 "CDR data format Expanded" (MultiVantage, p.1575),
    // positions 1-64; the rest of the table was not available: `rest`
    // holds it as text.
    (
        "avaya-cm-expanded",
        "time 4, space 1, duration 4, space 1, cond-code 1, space 1, code-dial 4, space 1, \
         code-used 4, space 1, dialed-num 15, space 1, calling-num 10, space 1, acct-code 15, \
         rest 80",
    ),
];

#[cfg(test)]
mod tests {
    use crate::record::presets::tests::{map_with, mapper_for, ORIGIN};
    use crate::record::Columns;

    /// A record of `len` blanks with `fields` (0-based offset, text) in
    /// place, after the three NULs that end the record before it.
    fn record(len: usize, fields: &[(usize, &str)]) -> Vec<u8> {
        let mut line = vec![b' '; len];
        for (offset, text) in fields {
            line[*offset..offset + text.len()].copy_from_slice(text.as_bytes());
        }
        [b"\0\0\0".as_slice(), &line].concat()
    }

    fn map(preset: &str, line: &[u8]) -> Result<serde_json::Value, String> {
        map_with(Columns::preset(preset).unwrap(), line)
    }

    /// Table 27: the dialed number (right-adjusted, 15) touches the
    /// 5-digit calling number, which touches the account code.
    #[test]
    fn teleseer() {
        let fields = [
            (3, "1504"),
            (7, "0123"),
            (11, "7"),
            (12, "123"),
            (15, "456"),
            (26, "5551234"),
            (33, "12345"),
            (38, "987654321012345"),
            (53, "1"),
            (55, "012"),
            (58, "345"),
            (61, "0"),
            (62, "7654321"),
        ];
        let v = map("avaya-cm-teleseer", &record(76, &fields)).unwrap();
        for (key, want) in [
            ("time", "1504"),
            ("duration", "0123"),
            ("cond_code", "7"),
            ("dialed_num", "5551234"),
            ("calling_num", "12345"),
            ("acct_code", "987654321012345"),
            ("frl", "1"),
            ("in_crt_id", "012"),
            ("out_crt_id", "345"),
            ("auth_code", "7654321"),
        ] {
            assert_eq!(v[key], want, "{key}: {v}");
        }
        assert!(v.get("ixc").is_none(), "blank means absent: {v}");
    }

    /// Table 28: as Table 27, but the IXC code where the access code
    /// dialed was, and INS split around the authorization code.
    #[test]
    fn teleseer_isdn() {
        let fields = [
            (3, "0915"),
            (7, "0021"),
            (11, "9"),
            (12, "123"),
            (15, "901"),
            (18, "  4955551234567"),
            (33, "12345"),
            (38, "987654321012345"),
            (53, "7"),
            (54, "2"),
            (55, "012"),
            (58, "345"),
            (61, "0"),
            (62, "7654321"),
            (69, "45"),
        ];
        let v = map("avaya-cm-teleseer-isdn", &record(76, &fields)).unwrap();
        for (key, want) in [
            ("time", "0915"),
            ("cond_code", "9"),
            ("ixc", "123"),
            ("code_used", "901"),
            ("dialed_num", "4955551234567"),
            ("calling_num", "12345"),
            ("acct_code", "987654321012345"),
            ("ins_units", "7"),
            ("frl", "2"),
            ("in_crt_id", "012"),
            ("out_crt_id", "345"),
            ("feat_flag", "0"),
            ("auth_code", "7654321"),
            ("ins_hundreds_tens", "45"),
        ] {
            assert_eq!(v[key], want, "{key}: {v}");
        }
        assert!(v.get("code_dial").is_none(), "no access code dialed: {v}");
    }

    /// Table 40: no blanks between fields at all.
    #[test]
    fn unformatted() {
        let fields = [
            (0, "0915"),
            (4, "0021"),
            (8, "9"),
            (9, "   9"),
            (13, "   9"),
            (17, "     4955551234"),
            (32, "2001234567"),
            (42, "            123"),
            (57, "1234567"),
            (67, "001"),
            (70, "002"),
            (76, "#101"),
        ];
        let v = map("avaya-cm-unformatted", &record(100, &fields)).unwrap();
        assert_eq!(v["dialed_num"], "4955551234");
        assert_eq!(v["calling_num"], "2001234567");
        assert_eq!(v["acct_code"], "123");
        assert_eq!(v["auth_code"], "1234567");
        assert_eq!(v["in_trk_code"], "#101");
        assert_eq!(
            (v["code_dial"].as_str(), v["out_crt_id"].as_str()),
            (Some("9"), Some("002"))
        );
    }

    #[test]
    fn lsu_and_lsu_expand() {
        let v = map(
            "avaya-cm-lsu",
            &record(
                54,
                &[(0, "0105"), (11, "84955551234"), (26, "2345"), (45, "1")],
            ),
        )
        .unwrap();
        assert_eq!(
            (v["duration"].as_str(), v["calling_num_2_5"].as_str()),
            (Some("0105"), Some("2345"))
        );
        assert_eq!(v["calling_num_1"], "1");
        let v = map(
            "avaya-cm-lsu-expand",
            &record(
                73,
                &[(0, "2359"), (19, "84955551234"), (35, "2345"), (72, "3")],
            ),
        )
        .unwrap();
        assert_eq!(
            (
                v["time"].as_str(),
                v["dialed_num"].as_str(),
                v["ixc"].as_str()
            ),
            (Some("2359"), Some("84955551234"), Some("3"))
        );
    }

    /// Short records keep what they reach; long ones are counted; date
    /// records are no calls.
    #[test]
    fn short_long_and_date_records() {
        let short = map(
            "avaya-cm-teleseer",
            &record(40, &[(3, "1504"), (33, "12345")]),
        )
        .unwrap();
        assert_eq!(short["calling_num"], "12345");
        assert!(short.get("acct_code").is_none(), "{short}");
        let mut mapper = mapper_for(Columns::preset("avaya-cm-teleseer").unwrap());
        let origin = ORIGIN;
        let long = [record(76, &[(3, "1504")]), b"EXTRA".to_vec()].concat();
        assert!(mapper.map(&long, origin).unwrap().unwrap().longer);
        assert!(
            !mapper
                .map(&record(76, &[(3, "1504")]), origin)
                .unwrap()
                .unwrap()
                .longer
        );
        let date = map("avaya-cm-teleseer", b"\0\0\x000114").unwrap_err();
        assert!(date.contains("date record"), "{date}");
    }
}
