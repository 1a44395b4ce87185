//! Avaya Communication Manager over TCP as CM sends it: a date record at
//! connect, then CR LF terminated records each followed by three NULs, in
//! the site's customized layout given as CM lists it; and `--trim` for
//! consumers of the phone.py scripts.

mod common;

use std::io::Write as _;
use std::net::TcpStream;

use common::{cdrship, serve_tcp, texts, Broker};

/// Page 2 of `display system-parameters cdr` at a site (44 bytes, then CR LF).
const LAYOUT: &str = "date - 6\nspace - 1\ntime - 4\nspace - 1\nsec-dur - 5\nspace - 1\n\
                      cond-code - 1\ndialed-num - 10\ncalling-num - 10\nvdn - 5\nreturn - 1\nline-feed - 1";

#[test]
fn a_cm_feed_over_tcp_maps_its_layout_and_rejects_the_date_record() {
    let broker = Broker::start();
    let args = ["-f", "json", "--avaya-cm-layout", LAYOUT];
    let (topic, mut run, addr) = serve_tcp(&broker, "avaya-cm", &args);
    let mut pbx = TcpStream::connect(addr).unwrap();
    let mut feed = b"15:04 01/14\r\n\0\0\0".to_vec();
    // Fields at their offsets: cond-code, dialed-num (right-adjusted)
    // and calling-num touch.
    for record in [
        ["011426 1504 00065 9", "8495123456", "2001234567", " 6100"].concat(),
        // Short (no VDN), then longer than the layout.
        ["011426 1505 00007 A", "      6200", "2001234567"].concat(),
        [
            "011426 1506 00010 9",
            "      1234",
            "      2002",
            " 6100",
            " EXTRA",
        ]
        .concat(),
    ] {
        feed.extend_from_slice(record.as_bytes());
        feed.extend_from_slice(b"\r\n\0\0\0");
    }
    pbx.write_all(&feed).unwrap();
    drop(pbx);

    let got = broker.reader(&topic).read(3);
    let values: Vec<serde_json::Value> = texts(&got)
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    assert_eq!(
        values[0],
        serde_json::json!({"date": "011426", "time": "1504", "sec_dur": 65, "cond_code": "9",
            "dialed_num": "8495123456", "calling_num": "2001234567", "vdn": "6100"})
    );
    assert_eq!(values[1]["dialed_num"], "6200");
    assert!(values[1].get("vdn").is_none(), "{}", values[1]);
    assert_eq!(values[2]["vdn"], "6100");

    let rejects = broker.reader(&format!("{topic}.rejects"));
    let rejected = rejects.read(1);
    assert_eq!(rejected[0].text(), "15:04 01/14");
    let reason = rejected[0].header("cdrship.reject.reason").unwrap();
    assert!(reason.contains("date record"), "{reason}");
    run.stop();
    let mut all = rejected;
    rejects.poll_all(&mut all);
    assert_eq!(all.len(), 1, "{:?}", texts(&all));
    assert!(
        run.log()
            .contains("1 records went on past their fixed-width layout"),
        "{}",
        run.log()
    );
}

#[test]
fn trim_ships_lines_as_phone_py_did() {
    let broker = Broker::start();
    let topic = broker.topic("trim", 1);
    let mut run = cdrship(&broker, &["-t", &topic, "--trim"]);
    run.feed_all(b"  011426 1504 00065 9   \r\n\t\"\",\"100\",\"200\"\x0b\n");
    let got = broker.reader(&topic).read(2);
    assert_eq!(texts(&got), ["011426 1504 00065 9", "\"\",\"100\",\"200\""]);
}
