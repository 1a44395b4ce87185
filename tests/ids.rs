//! End to end: a `cdrship.id` names one line forever. A ClickHouse table
//! deduplicated by it (`ReplacingMergeTree` keyed by the id) must never
//! drop a real call because another line once had its id (issue 25,
//! defect 5: a CSV with a header line keeps its inode across
//! copytruncate, its first line stays the header, and every new line
//! whose end offset equalled an old line's got that old CDR's id).

mod common;

use std::collections::HashMap;
use std::fs;

use common::{truncate, Broker, Expected, Followed};

/// `n` rows of one length after a header, numbered from `from`.
fn rows(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("2026-12-07 10:00:00,+7495{i:07},+7812{i:07},ANSWERED\n"))
        .collect()
}

#[test]
fn lines_of_a_header_file_rewritten_on_its_inode_never_share_an_id() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "ids-header");
    let header = "calldate,src,dst,disposition\n";
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, format!("{header}{}", rows(0, 200)));
    let mut run = f.start(&broker);
    e.check();
    // logrotate copytruncate: the copy, then the same inode emptied and
    // written again by the PBX, header first.
    fs::copy(&f.path, f.sibling("Master.csv.1")).unwrap();
    truncate(&f.path);
    run.wait_for_log("truncated");
    e.add(&f.path, format!("{header}{}", rows(200, 200)));
    e.check();
    // Also across a restart: the ids of the second file stay its own.
    run.stop();
    let before = e.got.len();
    fs::remove_file(&f.path).unwrap();
    e.add(&f.path, format!("{header}{}", rows(400, 200)));
    let mut run = f.start(&broker);
    e.check();
    run.stop();
    e.nothing_more();
    let mut by_id: HashMap<String, String> = HashMap::new();
    for msg in &e.got {
        let id = msg.header("cdrship.id").expect("id header");
        // The header line, the same bytes at the same place of each file,
        // is the one line that may (and does) keep its id.
        if let Some(other) = by_id.insert(id.clone(), msg.text()) {
            if other == msg.text() && other == header.trim_end() {
                continue;
            }
            panic!(
                "{id} names both {other:?} and {:?} ({} lines in all, {before} before the restart)",
                msg.text(),
                e.got.len()
            );
        }
    }
}
