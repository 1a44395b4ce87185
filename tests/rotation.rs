//! Rotation styles the simple cases miss: a writer that keeps its
//! descriptor across rename+create (logrotate `create` with a daemon that
//! reopens late), and copytruncate whose copy is not `PATH.1` (dateext,
//! numbered copies not shifted).

mod common;

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::time::Duration;

use common::{append, held, numbered, texts, truncate, Broker, Expected, Followed};

/// `lines` through `file`, paced over about `over` (load shaping: the
/// follower must see the file grow while it reads the new one).
fn write_paced(file: &mut fs::File, lines: &str, over: Duration) {
    let count = lines.lines().count().max(1) as u32;
    for line in lines.lines() {
        writeln!(file, "{line}").unwrap();
        std::thread::sleep(over / count);
    }
}

#[test]
fn a_writer_holding_its_descriptor_across_rename_loses_nothing() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "held-fd");
    let mut writer = held(&f.path);
    let mut e = Expected::new(&broker, &f.topic);
    let before = numbered("before", 0..200);
    writer.write_all(before.as_bytes()).unwrap();
    e.want.extend(before.lines().map(str::to_owned));
    let mut run = f.start(&broker);
    e.check();

    fs::rename(&f.path, f.sibling("Master.csv.1")).unwrap();
    fs::File::create(&f.path).unwrap();
    let late = numbered("late-old", 0..500);
    write_paced(&mut writer, &late, Duration::from_secs(1));
    // The daemon reopens (HUP, postrotate) and writes to the new file.
    let mut writer = OpenOptions::new().append(true).open(&f.path).unwrap();
    let after = numbered("new", 0..200);
    writer.write_all(after.as_bytes()).unwrap();
    e.want
        .extend(late.lines().chain(after.lines()).map(str::to_owned));
    e.check_per_file(&["before", "late-old", "new"]);
    run.stop();
    e.nothing_more();
}

#[test]
fn a_sigkill_while_a_rotated_file_still_grows_resumes_it() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "held-fd-kill");
    let mut writer = held(&f.path);
    writer
        .write_all(numbered("before", 0..100).as_bytes())
        .unwrap();
    let mut run = f.start(&broker);
    let reader = broker.reader(&f.topic);
    let mut got = reader.read(100);

    fs::rename(&f.path, f.sibling("Master.csv.1")).unwrap();
    append(&f.path, &numbered("new", 0..50));
    writer
        .write_all(numbered("late-old", 0..100).as_bytes())
        .unwrap();
    reader.read_more(&mut got, 250);
    run.signal("KILL");
    run.wait();
    // Still written after the crash, and read by the next run.
    writer
        .write_all(numbered("late-old", 100..150).as_bytes())
        .unwrap();
    let mut run = f.start(&broker);
    append(&f.path, &numbered("new", 50..60));
    let want: Vec<String> = ["before", "late-old", "new"]
        .iter()
        .zip([0..100, 0..150, 0..60])
        .flat_map(|(p, r)| {
            numbered(p, r)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    common::wait_until("every line", || {
        reader.poll_all(&mut got);
        let seen: std::collections::HashSet<_> = texts(&got).into_iter().collect();
        want.iter().all(|w| seen.contains(w))
    });
    run.stop();
    // A line sent twice is the same position (same id), never another one.
    let mut ids: HashMap<String, String> = HashMap::new();
    for m in &got {
        let id = m.header("cdrship.id").unwrap();
        let first = ids.entry(m.text()).or_insert_with(|| id.clone());
        assert_eq!(*first, id, "{} re-sent under another id", m.text());
    }
}

/// copytruncate while cdrship is paused (SIGSTOP): the lines it had not
/// read yet are only in the copy, whatever logrotate named it.
fn copytruncate_to(copy: &str, older: &[(&str, &str)]) {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "copytruncate-any-name");
    for (name, content) in older {
        fs::write(f.sibling(name), content).unwrap();
    }
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("read", 0..20));
    let mut run = f.start(&broker);
    e.check();
    run.signal("STOP");
    e.add(&f.path, numbered("only-in-the-copy", 0..10));
    fs::copy(&f.path, f.sibling(copy)).unwrap();
    truncate(&f.path);
    e.add(&f.path, numbered("after-truncate", 0..5));
    run.signal("CONT");
    e.check();
    assert!(
        run.log()
            .contains(&format!("from {}", f.sibling(copy).display())),
        "{}",
        run.log()
    );
    run.stop();
    e.nothing_more();
}

#[test]
fn copytruncate_with_dateext_reads_the_tail_from_the_copy() {
    copytruncate_to(
        "Master.csv-20261202",
        &[("Master.csv-20261201", "older,1\n")],
    );
}

#[test]
fn copytruncate_with_numbered_copies_not_shifted_reads_the_tail_from_the_copy() {
    let older = numbered("read", 0..20);
    // An older copy with the same first lines, but not this content.
    let not_it = format!("{}other\n", &older[..older.len() / 2]);
    copytruncate_to(
        "Master.csv.2",
        &[("Master.csv.1", &not_it), ("Master.csv.1.gz", "gzip bytes")],
    );
}

#[test]
fn copytruncate_to_a_compressed_copy_says_it_cannot_be_read() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "copytruncate-gz");
    append(&f.path, &numbered("read", 0..5));
    let mut run = f.start(&broker);
    broker.reader(&f.topic).read(5);
    fs::write(f.sibling("Master.csv.1.gz"), b"\x1f\x8b").unwrap();
    truncate(&f.path);
    append(&f.path, "after\n");
    run.wait_for_log("compressed, which cannot be read: Master.csv.1.gz");
    run.stop();
}

/// `--file Master.csv` given relative to the working directory: the
/// directory listing names it `./Master.csv`, which is the followed file,
/// not a file rotated in while cdrship was stopped. (It was read whole
/// again after every restart: 110 duplicates here.)
#[test]
fn a_relative_path_resumes_without_reading_the_file_again() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "relative");
    let start = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cdrship"));
        command
            .current_dir(f.dir.path())
            .args(["-b", broker.servers(), "-t", &f.topic])
            .args(["--file", "Master.csv", "--state-dir", "state"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        common::spawn(command)
    };
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("cdr", 0..100));
    let mut first = start();
    e.check();
    first.stop();
    append(&f.path, &numbered("cdr", 100..110));
    for line in numbered("cdr", 100..110).lines() {
        e.push(line);
    }
    let mut second = start();
    e.check();
    second.stop();
    assert!(!second.log().contains("rotated in"), "{}", second.log());
    e.nothing_more();
}

/// copytruncate against a writer that keeps its descriptor without
/// `O_APPEND`: its next write lands at the old offset, so the file is a
/// hole of NUL bytes, then the CDR. The NULs are no line: the CDR goes to
/// the topic, nothing to the reject topic (issue 25, defect 6: the hole
/// and the CDR were one overlong line, the CDR lost).
#[test]
fn a_nul_hole_before_a_cdr_is_skipped_and_the_cdr_shipped() {
    use std::os::unix::fs::FileExt as _;
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "nul-hole");
    let mut e = Expected::new(&broker, &f.topic);
    // More than --max-line-bytes (64 KiB) of them, and a second hole
    // shorter than a line.
    e.add(&f.path, numbered("cdr", 0..2000));
    let mut run = f.start(&broker);
    e.check();
    let old_len = fs::metadata(&f.path).unwrap().len();
    let writer = fs::OpenOptions::new().write(true).open(&f.path).unwrap();
    fs::copy(&f.path, f.sibling("Master.csv.1")).unwrap();
    truncate(&f.path);
    run.wait_for_log("truncated");
    writer.write_all_at(b"after the hole 1\n", old_len).unwrap();
    e.push("after the hole 1");
    e.check();
    let end = fs::metadata(&f.path).unwrap().len();
    writer
        .write_all_at(b"after the hole 2\n", end + 10)
        .unwrap();
    e.push("after the hole 2");
    e.check();
    run.wait_for_log("NUL bytes");
    run.stop();
    e.nothing_more();
    assert_eq!(broker.reader(&format!("{}.rejects", f.topic)).stored(), 0);
}

/// logrotate with `extension .csv` names rotated files `Master.1.csv`,
/// `Master.2.csv`: two rotations while cdrship was stopped, and the file
/// rotated in between is read too (found by the adversarial review: it
/// was never read, silently).
#[test]
fn rotations_keeping_the_extension_while_stopped_lose_nothing() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "extension-kept");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("first", 0..100));
    let mut run = f.start(&broker);
    e.check();
    run.stop();
    e.add(&f.path, numbered("first", 100..110));
    fs::rename(&f.path, f.sibling("Master.1.csv")).unwrap();
    e.add(&f.path, numbered("between", 0..100));
    fs::rename(f.sibling("Master.1.csv"), f.sibling("Master.2.csv")).unwrap();
    fs::rename(&f.path, f.sibling("Master.1.csv")).unwrap();
    e.add(&f.path, numbered("after", 0..100));
    let mut run = f.start(&broker);
    e.check();
    run.stop();
    e.nothing_more();
}

/// A copy of the file made while cdrship is stopped (a backup, logrotate
/// `copy`) holds lines already delivered: it is no rotated generation and
/// is not shipped again (found by the adversarial review: it was shipped
/// whole, under new ids, also with `--exactly-once`).
#[test]
fn a_backup_copy_made_while_stopped_is_not_shipped_again() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "backup-copy");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("cdr", 0..100));
    let mut run = f.start(&broker);
    e.check();
    run.stop();
    fs::copy(&f.path, f.sibling("Master.csv.orig")).unwrap();
    e.add(&f.path, numbered("cdr", 100..110));
    let mut run = f.start(&broker);
    e.check();
    run.stop();
    e.nothing_more();
}

/// `: > Master.csv` while the PBX is half-way through a line: the head
/// cdrship read is no record (its rest never reaches this file). It goes
/// to the reject topic as an unfinished line, as a head cut by SIGTERM
/// does; it used to be shipped as a record (the explorer on Apache Kafka
/// saw `"","100","200","explore",3` taken for line 3).
#[test]
fn a_head_cut_off_by_a_truncation_goes_to_the_reject_topic() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "truncated-head");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("cdr", 0..10));
    let mut run = f.start(&broker);
    e.check();
    append(&f.path, "\"\",\"100\",\"200\",\"explore\",3");
    let len = fs::metadata(&f.path).unwrap().len();
    common::wait_until("cdrship read the head", || {
        run.file_offset(&f.path) == Some(len)
    });
    truncate(&f.path);
    run.wait_for_log("truncated");
    e.add(&f.path, numbered("after", 0..3));
    e.check();
    let rejects = broker.reader(&format!("{}.rejects", f.topic)).read(1);
    assert_eq!(rejects[0].text(), "\"\",\"100\",\"200\",\"explore\",3");
    run.stop();
    e.nothing_more();
}
