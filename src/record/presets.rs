//! The column presets, each with its source. README lists them too.

/// A named column layout.
pub struct Preset {
    /// `--preset` name.
    pub name: &'static str,
    /// Columns as for `--columns`.
    pub spec: &'static str,
    /// Fewest fields a line must have (fixed width: must reach).
    pub required: usize,
    /// strptime pattern of the layout's date/time text.
    pub time_input: &'static str,
    /// Fixed-width byte ranges (offset, length) per column; empty for CSV.
    pub fixed: &'static [(usize, usize)],
}

/// All presets.
pub const PRESETS: &[Preset] = &[
    // Asterisk cdr_csv Master.csv, cdr/cdr_csv.c `build_csv_record()`: 16
    // fields; `loguniqueid` adds uniqueid, `loguserfield` userfield (both on
    // in the stock cdr.conf.sample), `newcdrcolumns` adds peeraccount,
    // linkedid, sequence. Dates `%Y-%m-%d %T` local time, empty when unset;
    // duration/billsec unquoted integers; disposition/amaflags text.
    Preset {
        name: "asterisk-cdr",
        spec: "accountcode,src,dst,dcontext,clid,channel,dstchannel,lastapp,lastdata,\
               start:datetime,answer:datetime,end:datetime,duration:int,billsec:int,\
               disposition,amaflags,uniqueid,userfield,peeraccount,linkedid,sequence:int",
        required: 16,
        time_input: "%Y-%m-%d %H:%M:%S",
        fixed: &[],
    },
    // Asterisk CEL through cel_custom, the stock mapping of
    // configs/samples/cel_custom.conf.sample (20 CSV_QUOTE()d fields).
    // eventtime is `<epoch>.<usec>` unless cel.conf sets dateformat, so it
    // stays text; amaflags is numeric in CEL (0 none .. 3 documentation).
    Preset {
        name: "asterisk-cel",
        spec: "eventtype,eventtime,cid_name,cid_num,cid_ani,cid_rdnis,cid_dnid,exten,context,\
               channame,appname,appdata,amaflags:int,accountcode,uniqueid,linkedid,peer,\
               userfield,userdeftype,eventextra",
        required: 20,
        time_input: "%Y-%m-%d %H:%M:%S",
        fixed: &[],
    },
    // Avaya IP Office SMDR (documentation.avaya.com, IP Office R12.3 "SMDR
    // Fields"; field names 31-37 from public parsers): comma separated, no
    // quoting, 17 fields on old releases, 30 and later up to 37.
    Preset {
        name: "avaya-ipo-smdr",
        spec: "call_start:datetime,connected_time,ring_time:int,caller,direction,called_number,\
               dialled_number,account,is_internal:int,call_id:int,continuation:int,\
               party1_device,party1_name,party2_device,party2_name,hold_time:int,park_time:int,\
               auth_valid,auth_code,user_charged,call_charge,currency,\
               amount_at_last_user_change,call_units,units_at_last_user_change,cost_per_unit,\
               mark_up,external_targeting_cause,external_targeter_id,external_targeted_number,\
               calling_party_server_ip,caller_unique_call_id,called_party_server_ip,\
               called_unique_call_id,smdr_record_time,caller_consent_directive,\
               calling_number_verification",
        required: 17,
        time_input: "%Y/%m/%d %H:%M:%S",
        fixed: &[],
    },
    // Avaya Communication Manager, a 125-byte customized CDR record (the
    // layout of micahhausler/avayafmt `main.go`, checked against its
    // capture `avaya.raw`): space-separated fixed-width fields, values
    // right-adjusted. CM layouts are administered per site
    // (`change system-parameters cdr`); this is the common customized one.
    Preset {
        name: "avaya-cm",
        spec: "date,time,sec_dur:int,cond_code,code_dial,code_used,dialed_num,calling_num,\
               auth_code,in_crt_id,out_crt_id,isdn_cc,ppm,acct_code,in_trk_code,attd_console,vdn",
        // A line must reach calling_num (the connect banner `15:04 01/14`
        // does not); shorter trailing fields are empty.
        required: 8,
        time_input: "%Y-%m-%d %H:%M:%S",
        fixed: &[
            (0, 6),
            (7, 4),
            (12, 5),
            (18, 1),
            (20, 4),
            (25, 4),
            (30, 18),
            (49, 10),
            (60, 7),
            (68, 3),
            (72, 3),
            (76, 11),
            (88, 5),
            (94, 15),
            (110, 4),
            (115, 2),
            (118, 5),
        ],
    },
];

#[cfg(test)]
pub(super) mod tests {
    use crate::record::{Columns, Format, JsonFormat, Mapper, Origin, TimeConv, TimeFormat};

    fn map(preset: &str, line: &[u8]) -> Result<serde_json::Value, String> {
        map_with(Columns::preset(preset).unwrap(), line)
    }

    /// A line's origin in these tests.
    pub(in crate::record) const ORIGIN: Origin<'static> = Origin {
        source: "test",
        offset: None,
        line: 1,
    };

    /// A JSON mapper for `columns`, times kept as written.
    pub(in crate::record) fn mapper_for(columns: Columns) -> Mapper {
        let time = TimeConv::new(TimeFormat::Keep, columns.time_input, Some("UTC"), None).unwrap();
        let format = JsonFormat {
            columns,
            time,
            charset: encoding_rs::UTF_8,
            envelope: false,
            meta_host: None,
            header: false,
        };
        Mapper::new(Format::Json(Box::new(format)), None).unwrap()
    }

    /// `line` mapped to JSON with `columns`, or the reject reason.
    pub(in crate::record) fn map_with(
        columns: Columns,
        line: &[u8],
    ) -> Result<serde_json::Value, String> {
        let mut mapper = mapper_for(columns);
        let origin = ORIGIN;
        let mapped = mapper
            .map(line, origin)
            .map_err(|r| r.to_string())?
            .expect("no header mode");
        Ok(serde_json::from_slice(mapped.value).unwrap())
    }

    #[test]
    fn asterisk_cdr_with_newcdrcolumns() {
        let line = br#""","100","101","from-internal","""Ivan"" <100>","PJSIP/100-01","PJSIP/101-02","Dial","PJSIP/101,30","2024-03-11 09:15:02",,"2024-03-11 09:15:12",10,0,"NO ANSWER","DOCUMENTATION","1710148502.1","","","1710148502.1",3"#;
        let v = map("asterisk-cdr", line).unwrap();
        assert_eq!(v["answer"], serde_json::Value::Null);
        assert_eq!(v["sequence"], 3);
        assert_eq!(v["linkedid"], "1710148502.1");
    }

    /// Built from the stock mapping in asterisk configs/samples/
    /// cel_custom.conf.sample (every field CSV_QUOTE()d, eventtime
    /// `<epoch>.<usec>`, amaflags numeric); no public capture was found.
    #[test]
    fn asterisk_cel_stock_mapping() {
        let line = r#""CHAN_START","1710148502.123456","Иван Петров","100","100","","101","101","from-internal","PJSIP/100-00000001","","","3","","1710148502.1","1710148502.1","","","","""#;
        let v = map("asterisk-cel", line.as_bytes()).unwrap();
        assert_eq!(v["eventtype"], "CHAN_START");
        assert_eq!(v["eventtime"], "1710148502.123456");
        assert_eq!(v["cid_name"], "Иван Петров");
        assert_eq!(v["amaflags"], 3);
        assert_eq!(v["eventextra"], "");
        assert!(map("asterisk-cel", b"\"ANSWER\",\"1\"").is_err());
    }

    /// Lines from Avaya's IP Office knowledge base, "SMDR Examples"
    /// (ipofficekb.avaya.com/basic/english/tech/simplified/smdr_examples.htm).
    #[test]
    fn avaya_ipo_smdr_examples() {
        let internal = b"2008/06/26 10:27:44,00:00:44,4,4688,O,4207,4207,,1,1000013898,0,E4688,Joe Bloggs,E4207,John Smith,0,0";
        let v = map("avaya-ipo-smdr", internal).unwrap();
        assert_eq!(v["call_start"], "2008/06/26 10:27:44");
        assert_eq!(v["connected_time"], "00:00:44");
        assert_eq!(v["ring_time"], 4);
        assert_eq!(v["call_id"], 1000013898);
        assert_eq!(v["party2_name"], "John Smith");
        assert!(
            v.get("auth_valid").is_none(),
            "17-field record has no field 18"
        );
        let incoming = b"2008/08/01 15:14:19,00:00:05,7,01707299900,I,23,390664,,0,1000013,0,E23,Extn23,T9001,Line 1.2,0,0,,,,,,,,,,,,,,";
        let v = map("avaya-ipo-smdr", incoming).unwrap();
        assert_eq!(v["direction"], "I");
        assert_eq!(v["external_targeted_number"], "");
    }

    /// Records from micahhausler/avayafmt's capture `avaya.raw` (125-byte
    /// customized CM records), after the connect banner and its NULs.
    #[test]
    fn avaya_cm_customized_records() {
        let line = b"\x00\x00\x00011416 1508 00005 1    9  102            620666#       4999             013           0     0                              ";
        let v = map("avaya-cm", line).unwrap();
        assert_eq!(v["date"], "011416");
        assert_eq!(v["time"], "1508");
        assert_eq!(v["sec_dur"], 5);
        assert_eq!(v["cond_code"], "1");
        assert_eq!(v["code_dial"], "9");
        assert_eq!(v["code_used"], "102");
        assert_eq!(v["dialed_num"], "620666#");
        assert_eq!(v["calling_num"], "4999");
        assert!(v.get("vdn").is_none(), "blank means absent: {v}");
        let line = b"011416 1512 00002 G                         6100 3333333333         001               0     0                  102     6100";
        let v = map("avaya-cm", line).unwrap();
        assert_eq!(v["cond_code"], "G");
        assert_eq!(v["dialed_num"], "6100");
        assert_eq!(v["calling_num"], "3333333333");
        assert_eq!(v["in_crt_id"], "001");
        assert_eq!(v["in_trk_code"], "102");
        assert_eq!(v["vdn"], "6100");
        let banner = map("avaya-cm", b"15:04 01/14").unwrap_err();
        assert!(banner.contains("date record"), "{banner}");
    }
}
