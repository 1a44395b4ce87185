//! The durable spool end to end: lines read from TCP or stdin while the
//! broker is down survive SIGTERM, SIGKILL and a torn last write, and are
//! delivered in order by the next start.
//!
//! "Broker down" is an address where nothing listens, so the same tests
//! run against the mock cluster and a real broker (`KAFKA_BROKERS`).

mod common;

use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{cdrship, numbered, spooling_without_broker, texts, wait_until, Broker, Cdrship};

/// Wait until `run` has read `n` lines and written every spooled byte to
/// the segments in `dir` (the spool counts appended bytes at once and
/// writes them per batch).
fn wait_spooled(run: &Cdrship, dir: &Path, source: &str, n: u64) {
    let sample = format!("cdrship_lines_read_total{{source=\"{source}\"}}");
    wait_until("lines spooled", || {
        let on_disk = segments(dir)
            .iter()
            .map(|s| std::fs::metadata(s).map_or(0, |m| m.len()))
            .sum::<u64>();
        run.metric(&sample) == Some(n) && run.metric("cdrship_spool_bytes") == Some(on_disk)
    });
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    found.sort();
    found
}

#[test]
fn tcp_lines_survive_sigkill_while_the_broker_is_down() {
    const LINES: usize = 10_000;
    let broker = Broker::start();
    let topic = broker.topic("spool-kill", 1);
    let spool = tempfile::tempdir().unwrap();
    let lines = numbered("call", 0..LINES);

    let mut down = spooling_without_broker(&topic, spool.path(), &["--listen", "127.0.0.1:0"]);
    let mut pbx = TcpStream::connect(down.listening_on()).unwrap();
    pbx.write_all(lines.as_bytes()).unwrap();
    drop(pbx);
    wait_spooled(&down, spool.path(), "tcp", LINES as u64);
    down.signal("KILL");
    // Its lock is let go only once it is gone.
    down.wait();

    let mut up = cdrship(
        &broker,
        &[
            "-t",
            &topic,
            "--listen",
            "127.0.0.1:0",
            "--spool-dir",
            spool.path().to_str().unwrap(),
        ],
    );
    let got = broker.reader(&topic).read(LINES);
    assert_eq!(texts(&got), lines.lines().collect::<Vec<_>>());
    up.wait_for_log(&format!("sending {LINES} lines an earlier run left"));
    up.stop();
}

#[test]
fn sigterm_with_the_broker_down_exits_promptly_keeping_the_lines() {
    let broker = Broker::start();
    let topic = broker.topic("spool-term", 1);
    let spool = tempfile::tempdir().unwrap();
    let before = numbered("before", 0..1000);

    // A shutdown timeout far beyond the bound below: the spool, not the
    // timeout, must be what lets cdrship go.
    let mut down = spooling_without_broker(&topic, spool.path(), &["--shutdown-timeout", "120"]);
    // One write, in the pipe whole: the signal cuts its last line, which
    // is spooled as cut and stays a reject when the next run replays it.
    down.feed(format!("{before}cut by the sig").as_bytes());
    wait_spooled(&down, spool.path(), "stdin", 1000);
    let asked = Instant::now();
    down.terminate();
    let status = down.wait();
    assert!(asked.elapsed() < Duration::from_secs(30), "{}", down.log());
    assert_eq!(status.code(), Some(75), "{}", down.log());
    assert!(down
        .log()
        .contains("1001 lines not delivered yet are kept in the spool"));

    let mut up = cdrship(
        &broker,
        &["-t", &topic, "--spool-dir", spool.path().to_str().unwrap()],
    );
    up.feed_all(b"after\n");
    let got = broker.reader(&topic).read(1001);
    let mut expected: Vec<_> = before.lines().collect();
    expected.push("after");
    assert_eq!(texts(&got), expected);
    let rejects = broker.reader(&format!("{topic}.rejects")).read(1);
    assert_eq!(rejects[0].text(), "cut by the sig");
    assert_eq!(
        rejects[0].header("cdrship.reject.reason").unwrap(),
        "unfinished: the stream was cut 14 bytes into this line, before its newline"
    );
}

#[test]
fn a_torn_last_record_is_skipped_on_start() {
    let broker = Broker::start();
    let topic = broker.topic("spool-torn", 1);
    let spool = tempfile::tempdir().unwrap();
    let lines = numbered("line", 0..100);

    let down = spooling_without_broker(&topic, spool.path(), &[]);
    let mut down = down;
    down.feed(lines.as_bytes());
    wait_spooled(&down, spool.path(), "stdin", 100);
    down.signal("KILL");
    down.wait();
    // What a crash in the middle of the last append leaves: the record
    // cut short, then zeros where the file system had allocated blocks.
    let last = segments(spool.path()).pop().expect("a spool segment");
    let len = std::fs::metadata(&last).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    file.set_len(len - 5).unwrap();
    file.set_len(len + 4096).unwrap();
    drop(file);

    let mut up = cdrship(
        &broker,
        &["-t", &topic, "--spool-dir", spool.path().to_str().unwrap()],
    );
    up.feed_all(b"after\n");
    let got = broker.reader(&topic).read(100);
    let mut expected: Vec<_> = lines.lines().take(99).collect();
    expected.push("after");
    assert_eq!(texts(&got), expected);
    assert!(up.log().contains("1 torn records skipped"), "{}", up.log());
}

/// Damage amid whole records (a block the file system never wrote after
/// a power loss, out-of-order writeback): only the damaged records are
/// lost, every whole one after them is sent, and the loss is reported.
#[test]
fn damage_amid_a_segment_costs_only_the_damaged_records() {
    let broker = Broker::start();
    let topic = broker.topic("spool-damage", 1);
    let spool = tempfile::tempdir().unwrap();
    let lines = numbered("line", 0..100);

    let mut down = spooling_without_broker(&topic, spool.path(), &[]);
    down.feed(lines.as_bytes());
    wait_spooled(&down, spool.path(), "stdin", 100);
    down.terminate();
    assert_eq!(down.wait().code(), Some(75), "{}", down.log());
    let segment = segments(spool.path()).pop().expect("a spool segment");
    assert!(std::fs::metadata(&segment).unwrap().len() > 4000);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &[0; 100], 2000).unwrap();
    drop(file);

    let mut up = cdrship(
        &broker,
        &["-t", &topic, "--spool-dir", spool.path().to_str().unwrap()],
    );
    up.feed(b"after\n");
    up.close_stdin();
    let status = up.wait();
    let log = up.log();
    let reader = broker.reader(&topic);
    let got = texts(&reader.read(reader.stored() as usize));
    assert_eq!(got.last().map(String::as_str), Some("after"), "{log}");
    // 100 zeros hit at most three records (46 or 47 bytes each), in a row.
    let missing: Vec<usize> = (0..100)
        .filter(|i| !got.contains(&format!("line {i}")))
        .collect();
    assert!((1..=3).contains(&missing.len()), "{missing:?}\n{log}");
    assert!(missing.windows(2).all(|w| w[1] == w[0] + 1), "{missing:?}");
    let mut expected: Vec<String> = (0..100)
        .filter(|i| !missing.contains(i))
        .map(|i| format!("line {i}"))
        .collect();
    expected.push("after".to_owned());
    assert_eq!(got, expected);
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(log.contains(name) && log.contains("damaged"), "{log}");
    let lost = format!("{} lines an earlier run spooled are lost", missing.len());
    assert!(log.contains(&lost), "{log}");
    assert_eq!(status.code(), Some(1), "{log}");
}

#[test]
fn one_process_per_spool_directory() {
    let spool = tempfile::tempdir().unwrap();
    let first = spooling_without_broker("t", spool.path(), &[]);
    first.wait_for_log("spooling lines in");
    let mut second = spooling_without_broker("t", spool.path(), &[]);
    let status = second.wait();
    assert!(!status.success());
    assert!(
        second.log().contains("is in use by another cdrship"),
        "{}",
        second.log()
    );
}

#[test]
fn a_full_spool_pauses_reading_and_refuses_new_peers() {
    let broker = Broker::start();
    let topic = broker.topic("spool-full", 1);
    let spool = tempfile::tempdir().unwrap();
    let lines = numbered("full", 0..20_000);

    let args = [
        "--listen",
        "127.0.0.1:0",
        "--spool-max-bytes",
        "256K",
        "--when-full",
        "reject",
    ];
    let mut down = spooling_without_broker(&topic, spool.path(), &args);
    let addr = down.listening_on();
    // The PBX's writes block once cdrship stops reading: send from a thread.
    let sent = lines.clone();
    std::thread::spawn(move || {
        let _ = TcpStream::connect(addr).and_then(|mut pbx| pbx.write_all(sent.as_bytes()));
    });
    down.wait_for_log("spool full (--spool-max-bytes); reading paused");
    let mut late = TcpStream::connect(addr).unwrap();
    down.wait_for_log("refused, the spool is full");
    let mut byte = [0u8; 1];
    assert_eq!(std::io::Read::read(&mut late, &mut byte).unwrap_or(0), 0);
    let spooled = down
        .metric("cdrship_lines_read_total{source=\"tcp\"}")
        .unwrap();
    let bytes = down.metric("cdrship_spool_bytes").unwrap();
    assert!(spooled > 0 && spooled < 20_000, "{spooled} lines spooled");
    assert!(bytes <= 256 << 10, "{bytes} bytes spooled");
    down.signal("KILL");
    // Its lock is let go only once it is gone.
    down.wait();

    let mut up = cdrship(
        &broker,
        &["-t", &topic, "--spool-dir", spool.path().to_str().unwrap()],
    );
    up.feed_all(b"");
    let got = broker.reader(&topic).read(spooled as usize);
    let expected: Vec<_> = lines.lines().take(spooled as usize).collect();
    assert_eq!(texts(&got), expected);
}

/// A spool far smaller than the input, broker up: reading pauses whenever
/// the spool is full and resumes as deliveries free its segments; every
/// line arrives, in order. A size below 256K is refused at start.
#[test]
fn a_small_spool_passes_more_lines_than_it_holds() {
    let broker = Broker::start();
    let topic = broker.topic("spool-small", 1);
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().to_str().unwrap();
    let spooling = |size| ["-t", &topic, "--spool-dir", dir, "--spool-max-bytes", size];

    let mut too_small = cdrship(&broker, &spooling("100K"));
    assert_eq!(too_small.wait().code(), Some(2));
    assert!(too_small.log().contains("below the smallest spool"));

    let lines = numbered("cdr", 0..100_000);
    // Deliveries that linger 50 ms let the reader fill the spool.
    let mut run = cdrship(
        &broker,
        &[&spooling("256K")[..], &["-X", "linger.ms=50"]].concat(),
    );
    run.feed_all(lines.as_bytes());
    assert!(run.log().contains("spool full"), "{}", run.log());
    let got = broker.reader(&topic).read(100_000);
    assert_eq!(texts(&got), lines.lines().collect::<Vec<_>>());
}

#[test]
fn header_lines_are_spooled_per_connection_and_map_the_replay() {
    let broker = Broker::start();
    let topic = broker.topic("spool-header", 1);
    let spool = tempfile::tempdir().unwrap();
    let json = ["--listen", "127.0.0.1:0", "-f", "json", "--header"];

    let mut down = spooling_without_broker(&topic, spool.path(), &json);
    let addr = down.listening_on();
    let mut first = TcpStream::connect(addr).unwrap();
    first.write_all(b"a,b,c\n1,2,3\n4,5,6\n7,8,9\n").unwrap();
    drop(first);
    wait_spooled(&down, spool.path(), "tcp", 3);
    // Another PBX with its own header, read while the first is spooled.
    let mut second = TcpStream::connect(addr).unwrap();
    second.write_all(b"x,y\n10,20\n").unwrap();
    drop(second);
    wait_spooled(&down, spool.path(), "tcp", 4);
    down.signal("KILL");
    // Its lock is let go only once it is gone.
    down.wait();

    let dir = spool.path().to_str().unwrap();
    let mut up = cdrship(
        &broker,
        &[&["-t", &topic, "--spool-dir", dir], &json[..]].concat(),
    );
    let got = broker.reader(&topic).read(4);
    assert_eq!(
        texts(&got),
        [
            r#"{"a":"1","b":"2","c":"3"}"#,
            r#"{"a":"4","b":"5","c":"6"}"#,
            r#"{"a":"7","b":"8","c":"9"}"#,
            r#"{"x":"10","y":"20"}"#,
        ]
    );
    up.stop();
    assert_eq!(broker.reader(&topic).stored(), 4);
}

/// Broker down and the producer queue full of spooled lines: SIGTERM gives
/// up on the queue, but every line is in the spool, so nothing is lost:
/// exit 75, no line counted failed, and the next start delivers them all.
#[test]
fn a_full_producer_queue_at_sigterm_is_kept_in_the_spool() {
    let broker = Broker::start();
    let topic = broker.topic("spool-queue-full", 1);
    let spool = tempfile::tempdir().unwrap();
    let mut down = spooling_without_broker(&topic, spool.path(), &[]);
    let mut stdin = down.child.stdin.take().expect("stdin piped");
    let lines = numbered("cdr", 0..70_000);
    let all = lines.clone();
    // More than the queue holds; the writer blocks once cdrship stops reading.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(all.as_bytes());
    });
    wait_until("the producer queue is full", || {
        down.metric("cdrship_producer_queue_messages")
            .is_some_and(|queued| queued >= 50_000)
    });
    down.terminate();
    let status = down.wait();
    writer.join().unwrap();
    let log = down.log();
    assert_eq!(status.code(), Some(75), "{log}");
    let (line, read) = common::summary(&log);
    assert!(line.ends_with(" 0 failed"), "{line}");
    assert!(
        log.contains(&format!(
            "{read} lines not delivered yet are kept in the spool"
        )),
        "{log}"
    );

    let dir = spool.path().to_str().unwrap();
    let mut up = cdrship(&broker, &["-t", &topic, "--spool-dir", dir]);
    up.feed_all(b"");
    common::check_cut_at_stop(&broker, &topic, &lines, read);
}

/// A corrupt spool state must not fail every start (a crash loop under
/// `Restart=`): the spool is replayed from its oldest segment, with a
/// warning; duplicates, never a gap.
#[test]
fn a_corrupt_spool_state_replays_every_segment() {
    let broker = Broker::start();
    let topic = broker.topic("spool-corrupt-state", 1);
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().to_str().unwrap();
    let mut first = cdrship(&broker, &["-t", &topic, "--spool-dir", dir]);
    first.feed_all(numbered("delivered", 0..10).as_bytes());
    let state = spool.path().join("spool.state.json");
    assert!(state.exists(), "the delivered position was saved");

    let mut down = spooling_without_broker(&topic, spool.path(), &[]);
    down.feed(numbered("kept", 0..10).as_bytes());
    wait_spooled(&down, spool.path(), "stdin", 10);
    down.signal("KILL");
    down.wait();
    std::fs::write(&state, b"\0\0\0garbage").unwrap();

    let mut up = cdrship(&broker, &["-t", &topic, "--spool-dir", dir]);
    up.feed_all(b"");
    assert!(
        up.log()
            .contains("replaying the spool from its oldest segment"),
        "{}",
        up.log()
    );
    // The delivered lines may come again (their segment was still there).
    let reader = broker.reader(&topic);
    let mut got = texts(&reader.read(reader.stored() as usize));
    assert!(got
        .iter()
        .all(|l| l.starts_with("delivered") || l.starts_with("kept")));
    got.retain(|l| l.starts_with("kept"));
    assert_eq!(got, numbered("kept", 0..10).lines().collect::<Vec<_>>());
}

/// SIGTERM while reading waits for room in a full spool: the lines already
/// read are kept in the spool anyway (its size limit is soft for them), so
/// nothing is lost: exit 75, and the next start sends every line read.
#[test]
fn sigterm_while_the_spool_is_full_keeps_the_lines_read() {
    let broker = Broker::start();
    let topic = broker.topic("spool-full-term", 1);
    let spool = tempfile::tempdir().unwrap();
    let lines = numbered("full", 0..20_000);
    let args = ["--spool-max-bytes", "256K"];
    let mut down = spooling_without_broker(&topic, spool.path(), &args);
    let mut stdin = down.child.stdin.take().expect("stdin piped");
    let sent = lines.clone();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(sent.as_bytes());
    });
    down.wait_for_log("spool full (--spool-max-bytes); reading paused");
    down.terminate();
    let status = down.wait();
    writer.join().unwrap();
    let log = down.log();
    assert_eq!(status.code(), Some(75), "{log}");
    let (line, read) = common::summary(&log);
    assert!(line.ends_with(" 0 failed"), "{line}");

    let dir = spool.path().to_str().unwrap();
    let mut up = cdrship(&broker, &["-t", &topic, "--spool-dir", dir]);
    up.feed_all(b"");
    common::check_cut_at_stop(&broker, &topic, &lines, read);
}
