//! End to end through the real binary: following a file across appends,
//! a rename+create rotation, SIGTERM and a restart from saved progress.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write as _;

use common::{append, cdrship, numbered, texts, truncate, wait_until, Broker, Expected, Followed};

#[test]
fn rotated_while_stopped_finishes_the_old_file_first() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "rotated-stopped");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("first-run", 0..50));
    let mut run = f.start(&broker);
    e.check();
    run.stop();

    e.add(&f.path, numbered("while-stopped", 0..10));
    fs::rename(&f.path, f.sibling("Master.csv.1")).unwrap();
    e.add(&f.path, numbered("new-file", 0..20));
    let mut run = f.start(&broker);
    e.check();
    run.stop();
    e.nothing_more();
}

#[test]
fn delete_and_recreate_while_stopped_reads_the_new_file_whole() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "recreated");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("old", 0..10));
    let mut run = f.start(&broker);
    e.check();
    run.stop();

    // The new file is longer than the saved offset and may reuse the inode
    // number; its different first line must stop a resume mid-file.
    fs::remove_file(&f.path).unwrap();
    e.add(&f.path, numbered("recreated", 0..100));
    let mut run = f.start(&broker);
    e.check();
    run.stop();
}

#[test]
fn delete_and_recreate_while_running_finishes_the_deleted_file() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "deleted");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("old", 0..10));
    let mut run = f.start(&broker);
    e.check();
    // A writer that still holds the old file appends after the delete.
    let mut old = OpenOptions::new().append(true).open(&f.path).unwrap();
    run.signal("STOP");
    fs::remove_file(&f.path).unwrap();
    let late = numbered("old-after-delete", 0..5);
    old.write_all(late.as_bytes()).unwrap();
    e.want.extend(late.lines().map(str::to_owned));
    e.add(&f.path, numbered("new", 0..10));
    run.signal("CONT");
    e.check();
    run.stop();
}

#[test]
fn copytruncate_reads_the_lines_that_only_the_copy_holds() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "copytruncate");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("before", 0..100));
    let mut run = f.start(&broker);
    e.check();

    // Freeze cdrship so the race is certain: these lines reach the file
    // after its last read and leave with the copy.
    run.signal("STOP");
    e.add(&f.path, numbered("raced", 0..30));
    fs::copy(&f.path, f.sibling("Master.csv.1")).unwrap();
    truncate(&f.path);
    // The new content grows past the old position before cdrship looks.
    e.add(
        &f.path,
        numbered("after-truncate, a longer line than before", 0..200),
    );
    run.signal("CONT");
    e.check();
    run.stop();
    e.nothing_more();
}

#[test]
fn follows_appends_and_rotation_then_resumes_without_resending() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "file");
    let (path, topic) = (&f.path, &f.topic);
    let state = f.dir.path().join("state");
    let mut e = Expected::new(&broker, topic);

    e.add(path, numbered("before-start", 0..100));
    let grace = ["--rotate-grace", "0.5"];
    let mut run = f.start_with(&broker, &grace);
    e.check();

    e.add(path, numbered("appended", 0..100));
    e.check();

    // Rotation: lines written to the old file after the rename arrive, in
    // order, beside the new file's; its last line without newline is
    // shipped once the old file was quiet for --rotate-grace.
    let rotated = f.sibling("Master.csv.1");
    fs::rename(path, &rotated).unwrap();
    e.add(&rotated, numbered("late-old", 0..10));
    append(&rotated, "old-unterminated");
    e.add(path, numbered("new-file", 0..50));
    e.push("old-unterminated");
    e.check_per_file(&["late-old", "new-file", "old-unterminated"]);

    // A partial line in the current file is held back across shutdown.
    append(path, "new-partial");
    wait_until("progress saved", || {
        fs::read_to_string(state.join(format!(
            "{}.state.json",
            path.to_str().unwrap().trim_start_matches('/').replace('/', "_")
        )))
        .is_ok_and(|s| s.contains(&format!("\"offset\":{}", numbered("new-file", 0..50).len())))
    });
    run.stop();
    e.nothing_more();
    // Every line carries a distinct idempotency id: file identity @ offset.
    let ids: std::collections::HashSet<String> = e
        .got
        .iter()
        .map(|m| m.header("cdrship.id").expect("id header"))
        .collect();
    assert_eq!(ids.len(), e.got.len());
    let first = e.got[0].header("cdrship.id").unwrap();
    assert!(
        first.contains(&format!("@{}#", e.want[0].len() + 1)),
        "{first}"
    );

    // Restart: nothing acknowledged is sent again; the partial line is
    // completed and shipped whole.
    append(path, " completed\n");
    e.push("new-partial completed");
    e.add(path, numbered("after-restart", 0..20));
    let mut run = f.start(&broker);
    e.check();
    run.stop();
    e.nothing_more();
}

#[test]
fn waits_for_a_missing_file_and_reads_it_from_the_start() {
    let broker = Broker::start();
    let topic = broker.topic("late-file", 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cel.csv");
    let mut run = cdrship(&broker, &["-t", &topic, "--file", path.to_str().unwrap()]);
    run.wait_for_log("waiting for the file to appear");
    append(&path, &numbered("cel", 0..5));
    let got = broker.reader(&topic).read(5);
    assert_eq!(
        texts(&got),
        numbered("cel", 0..5).lines().collect::<Vec<_>>()
    );
    run.stop();
}

#[test]
fn from_end_skips_what_is_there_but_saved_progress_wins() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "from-end");
    append(&f.path, &numbered("history", 0..10));
    append(&f.path, "in-progress");
    let extra = ["--from", "end"];
    let mut run = f.start_with(&broker, &extra);
    run.wait_for_log("--from end");
    // The line in progress when cdrship started is shipped whole.
    let mut e = Expected::new(&broker, &f.topic);
    e.push("in-progress, completed");
    append(&f.path, ", completed\n");
    e.add(&f.path, numbered("live", 0..5));
    e.check();
    run.stop();

    e.add(&f.path, numbered("while-stopped", 0..5));
    let mut run = f.start_with(&broker, &extra);
    e.check();
    run.stop();
    e.nothing_more();
}

#[test]
fn partial_line_timeout_ships_an_unterminated_last_line() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "partial");
    append(&f.path, "complete\nunterminated");
    let extra = ["--partial-line-timeout", "0.2"];
    let mut run = f.start_with(&broker, &extra);
    let got = broker.reader(&f.topic).read(2);
    assert_eq!(texts(&got), ["complete", "unterminated"]);
    run.stop();
}

#[test]
fn copytruncate_while_stopped_resumes_from_the_copy() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "copytruncate-stopped");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("first-run", 0..20));
    let mut run = f.start(&broker);
    e.check();
    run.stop();

    e.add(&f.path, numbered("while-stopped", 0..10));
    fs::copy(&f.path, f.sibling("Master.csv.1")).unwrap();
    truncate(&f.path);
    e.add(&f.path, numbered("after-truncate", 0..5));
    let mut run = f.start(&broker);
    e.check();
    run.stop();
    e.nothing_more();
}

#[test]
fn undeliverable_lines_stop_the_run_without_advancing_progress() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Master.csv");
    let state = dir.path().join("state");
    append(&path, &numbered("cdr", 0..5));
    let (path_arg, state_arg) = (path.to_str().unwrap(), state.to_str().unwrap());
    let mut run = common::cdrship_without_broker(&["--file", path_arg, "--state-dir", state_arg]);
    assert!(!run.wait().success());
    assert!(
        run.log().contains("5 of 5 lines not delivered"),
        "{}",
        run.log()
    );
    // Nothing was acknowledged: the position saved is where reading
    // started (saved before the first line was sent), before every line.
    let states: Vec<String> = fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".state.json"))
        .map(|p| fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(states.len(), 1, "{states:?}");
    assert!(states[0].contains("\"offset\":0,"), "{}", states[0]);
}

#[test]
fn header_names_columns_across_restart_and_rotation() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "header");
    append(&f.path, "id,name\n1,alice\n2,bob\n");
    let extra = ["-f", "json", "--header"];
    let mut run = f.start_with(&broker, &extra);
    let mut e = Expected::new(&broker, &f.topic);
    e.push(r#"{"id":"1","name":"alice"}"#);
    e.push(r#"{"id":"2","name":"bob"}"#);
    e.check();
    run.stop();

    // Resumed mid-file: the names still come from line one.
    append(&f.path, "3,carol\n");
    e.push(r#"{"id":"3","name":"carol"}"#);
    let mut run = f.start_with(&broker, &extra);
    e.check();
    // A rotated-in file brings its own header.
    fs::rename(&f.path, f.sibling("Master.csv.1")).unwrap();
    append(&f.path, "id,name,extra\n4,dave,x\n");
    e.push(r#"{"id":"4","name":"dave","extra":"x"}"#);
    e.check();
    run.stop();
    e.nothing_more();
}

#[test]
fn line_numbers_and_offsets_continue_after_a_restart() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "line-numbers");
    append(&f.path, "a\nb\n\nc\n");
    let extra = ["-f", "json", "--columns", "v", "--meta", "--host-id", "pbx"];
    let mut run = f.start_with(&broker, &extra);
    let meta = |v: &str, offset: u64, line: u64| {
        let source = f.path.display();
        format!(
            r#"{{"v":"{v}","_host":"pbx","_source":"{source}","_offset":{offset},"_line":{line}}}"#
        )
    };
    let mut e = Expected::new(&broker, &f.topic);
    e.want
        .extend([meta("a", 2, 1), meta("b", 4, 2), meta("c", 7, 4)]);
    e.check();
    run.stop();
    append(&f.path, "d\n");
    e.push(meta("d", 9, 5));
    let mut run = f.start_with(&broker, &extra);
    e.check();
    run.stop();
}

#[test]
fn metrics_report_file_lag_latency_and_broker_state() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "file-metrics");
    append(&f.path, &numbered("m", 0..3));
    let mut run = f.start_with(&broker, &["--metrics", "127.0.0.1:0"]);
    broker.reader(&f.topic).read(3);
    wait_until("lag back to 0 with 3 lines delivered", || {
        run.metric("cdrship_file_lag_bytes") == Some(0)
            && run.metric("cdrship_lines_delivered_total{source=\"file\"}") == Some(3)
    });
    // The first line of a quiet stream is always timed.
    let timed = run.metric("cdrship_delivery_latency_seconds_count");
    assert!(timed.is_some_and(|n| n >= 1), "{}", run.metrics());
    // librdkafka reports statistics every 5 s with --metrics.
    wait_until("broker statistics", || {
        run.metrics()
            .lines()
            .any(|l| l.starts_with("cdrship_kafka_broker_up{") && l.ends_with("} 1"))
    });
    run.stop();
}
