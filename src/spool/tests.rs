//! The spool's unit tests: space, segments, header copies, syncs and
//! failed writes.

use super::*;
use std::fs::File;

/// `bytes` as a framed line.
pub(super) fn line(bytes: &[u8]) -> Frame<'_> {
    Frame::Line {
        bytes,
        end: 0,
        line: 1,
    }
}

impl Spool {
    /// Write the appended records (the sink does so through
    /// [`on_disk`](Spool::on_disk)).
    pub(super) fn write(&self) -> std::io::Result<()> {
        lock(&self.inner).writer.write_pending()
    }
}

#[test]
fn fills_up_frees_by_segment_and_resumes_after_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, backlog) = Spool::open(dir.path(), 1 << 20).unwrap();
    assert!(backlog.segments.is_empty());
    let record = [b'x'; 1000];
    let mut marks = Vec::new();
    let refused = loop {
        match spool.append(line(&record), "stdin") {
            Ok(mark) => marks.push(mark),
            Err(e) => break e,
        }
    };
    assert!(matches!(refused, AppendError::Full));
    assert!(spool.is_full());
    spool.write().unwrap();
    // 1 MiB in segments of 128 KiB.
    let on_disk = list(dir.path()).unwrap();
    assert_eq!(on_disk.len(), 8);
    assert_eq!(spool.bytes(), on_disk.iter().map(|s| s.size).sum::<u64>());

    let delivered = marks[marks.len() / 2];
    spool.commit(Some(delivered), &Settled::default()).unwrap();
    assert!(!spool.is_full());
    assert_eq!(list(dir.path()).unwrap()[0].number, delivered.generation);
    assert!(spool.append(line(b"more"), "stdin").is_ok());
    assert!(Spool::open(dir.path(), 1 << 20).is_err(), "locked");
    drop(spool);

    let (reopened, backlog) = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(
        backlog.segments[0],
        (delivered.generation, delivered.offset)
    );
    assert!(backlog
        .segments
        .iter()
        .skip(1)
        .all(|&(_, start)| start == 0));
    // New lines go to a segment after everything replayed (0 to 7).
    let next = reopened.append(line(b"new"), "stdin").unwrap();
    assert_eq!(next.generation, 8);
}

/// The lines in `path`, decoded.
fn lines_in(path: &Path) -> Vec<Vec<u8>> {
    let data = fs::read(path).unwrap();
    let mut at = 0;
    let mut lines = Vec::new();
    while let record::Decoded::Record(r) = record::decode(&data[at..]) {
        at += r.size;
        let Frame::Line { bytes, .. } = r.frame else {
            panic!("only whole lines were spooled");
        };
        lines.push(bytes.to_vec());
    }
    assert_eq!(at, data.len(), "no torn record");
    lines
}

#[test]
fn every_segment_starts_with_the_headers_of_the_live_sources() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(dir.path(), 1 << 20).unwrap();
    spool.header(line(b"a,b"), "pbx-1").unwrap();
    spool.header(line(b"x"), "pbx-2").unwrap();
    let record = [b'1'; 1000];
    let first = spool.append(line(&record), "pbx-1").unwrap();
    spool.forget("pbx-2");
    while spool.append(line(&record), "pbx-1").unwrap().generation == first.generation {}
    spool.write().unwrap();
    let headers = |number| {
        let data = fs::read(segment_path(dir.path(), number)).unwrap();
        let mut at = 0;
        let mut found = Vec::new();
        while let record::Decoded::Record(r) = record::decode(&data[at..]) {
            at += r.size;
            if r.header {
                found.push(r.source.to_owned());
            }
        }
        found
    };
    assert_eq!(headers(first.generation), ["pbx-1", "pbx-2"]);
    assert_eq!(headers(first.generation + 1), ["pbx-1"], "pbx-2 ended");
}

#[test]
fn a_sync_flushes_rolled_segments_and_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(dir.path(), 1 << 20).unwrap();
    let record = [b'x'; 1000];
    let first = spool.append(line(&record), "stdin").unwrap();
    assert!(lock(&spool.inner).writer.new_entry, "a new segment");
    spool.sync().unwrap();
    assert!(!lock(&spool.inner).writer.new_entry);
    while spool.append(line(&record), "stdin").unwrap().generation == first.generation {}
    {
        let inner = lock(&spool.inner);
        assert_eq!(
            inner.writer.rolled.len(),
            1,
            "the rolled segment awaits its sync"
        );
        assert!(inner.writer.new_entry);
    }
    spool.sync().unwrap();
    let inner = lock(&spool.inner);
    assert!(inner.writer.rolled.is_empty() && !inner.writer.new_entry);
}

#[test]
fn a_failed_write_keeps_the_records_and_refuses_new_ones_until_it_works() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(dir.path(), 1 << 20).unwrap();
    spool.append(line(b"one"), "stdin").unwrap();
    let two = spool.append(line(b"two"), "stdin").unwrap();
    let path = segment_path(dir.path(), two.generation);
    // Swap in a read-only handle: every write fails (EBADF).
    let writable = {
        let mut inner = lock(&spool.inner);
        inner
            .writer
            .file
            .replace(File::open(&path).unwrap())
            .unwrap()
    };
    assert!(spool.write().is_err());
    assert!(matches!(
        spool.append(line(b"three"), "stdin"),
        Err(AppendError::Io(_))
    ));
    assert!(lines_in(&path).is_empty());
    lock(&spool.inner).writer.file = Some(writable);
    let three = spool.append(line(b"three"), "stdin").unwrap();
    spool.write().unwrap();
    assert_eq!(lines_in(&path), [&b"one"[..], b"two", b"three"]);
    assert_eq!(three.offset, fs::metadata(&path).unwrap().len());
}

#[test]
fn a_line_is_on_disk_only_once_written_and_shutdown_drops_what_was_not() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(dir.path(), 1 << 20).unwrap();
    let one = spool.append(line(b"one"), "stdin").unwrap();
    assert!(spool.on_disk(one), "written when asked");
    let two = spool.append(line(b"two"), "stdin").unwrap();
    let path = segment_path(dir.path(), two.generation);
    // A disk that takes nothing more (EBADF stands in for ENOSPC).
    lock(&spool.inner)
        .writer
        .file
        .replace(File::open(&path).unwrap());
    assert!(!spool.on_disk(two));
    assert!(spool.on_disk(one));

    spool.abandon_unwritten();
    assert!(!spool.on_disk(two), "dropped, never written");
    assert!(matches!(
        spool.append_beyond_limit(line(b"three"), "stdin"),
        Err(AppendError::Io(_))
    ));
    assert_eq!(lines_in(&path), [&b"one"[..]]);
    assert_eq!(spool.bytes(), fs::metadata(&path).unwrap().len());
}

#[test]
fn a_save_the_disk_refuses_frees_delivered_segments_and_the_reserve() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(dir.path(), 1 << 20).unwrap();
    assert!(dir.path().join("reserve").exists(), "made at open");
    let record = [b'x'; 1000];
    let first = spool.append(line(&record), "stdin").unwrap();
    let mut last = first;
    while last.generation < first.generation + 2 {
        last = spool.append(line(&record), "stdin").unwrap();
    }
    spool.write().unwrap();
    // The state's temp file cannot be made: every save fails.
    let tmp = dir.path().join("spool.state.json.tmp");
    fs::create_dir(&tmp).unwrap();
    assert!(spool.commit(Some(last), &Settled::default()).is_err());
    let left: Vec<u32> = list(dir.path()).unwrap().iter().map(|s| s.number).collect();
    assert_eq!(left, [last.generation], "delivered segments freed unsaved");
    assert!(
        !dir.path().join("reserve").exists(),
        "the reserve was tried"
    );

    fs::remove_dir(&tmp).unwrap();
    spool.commit(Some(last), &Settled::default()).unwrap();
    assert!(dir.path().join("reserve").exists(), "made again");
    drop(spool);
    let (_, backlog) = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(backlog.segments, [(last.generation, last.offset)]);
}

#[test]
fn a_position_naming_a_segment_freed_before_a_crash_replays_the_rest_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(dir.path(), 1 << 20).unwrap();
    let record = [b'x'; 1000];
    let first = spool.append(line(&record), "stdin").unwrap();
    spool.write().unwrap();
    spool.commit(Some(first), &Settled::default()).unwrap();
    let mut last = first;
    while last.generation == first.generation {
        last = spool.append(line(&record), "stdin").unwrap();
    }
    spool.write().unwrap();
    // What a crash between freeing a delivered segment and saving past
    // it leaves: the saved position names a segment that is gone.
    remove(&segment_path(dir.path(), first.generation));
    drop(spool);
    let (spool, backlog) = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(
        backlog.segments,
        [(last.generation, 0)],
        "sent again, never skipped"
    );
    // Nothing delivered in this run: the last save has nothing to add.
    spool.commit(None, &Settled::default()).unwrap();
}

/// Spool 30 lines, zero the records of lines 10 to 12, and reopen: what
/// replay yields after the saved position `delivered` (a line's index).
async fn replayed_around_damage(delivered: Option<usize>) -> (Vec<u64>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(dir.path(), 1 << 20).unwrap();
    let marks: Vec<Mark> = (1..=30)
        .map(|line| {
            let frame = Frame::Line {
                bytes: b"call,100,200",
                end: 0,
                line,
            };
            spool.append(frame, "stdin").unwrap()
        })
        .collect();
    spool.write().unwrap();
    if let Some(index) = delivered {
        spool
            .commit(Some(marks[index]), &Settled::default())
            .unwrap();
    }
    drop(spool);
    let path = segment_path(dir.path(), 0);
    let mut data = fs::read(&path).unwrap();
    data[marks[8].offset as usize + 5..marks[11].offset as usize - 5].fill(0);
    fs::write(&path, &data).unwrap();
    let (_spool, mut backlog) = Spool::open(dir.path(), 1 << 20).unwrap();
    let segment = backlog.next().await.unwrap().unwrap();
    let (mut lines, mut lost) = (Vec::new(), 0);
    for record in segment.records() {
        match record {
            Replayed::Line { frame, mark, .. } => {
                // A line's mark is its own record's end: never inside the
                // damage, never past a whole line not replayed yet.
                assert_eq!(mark, marks[frame.line() as usize - 1]);
                lines.push(frame.line());
            }
            Replayed::Damaged { lines } => lost += lines,
            other => panic!("{other:?}"),
        }
    }
    (lines, lost)
}

#[tokio::test]
async fn damage_is_skipped_to_the_next_whole_record_and_counted_if_undelivered() {
    let after: Vec<u64> = (13..=30).collect();
    let all: Vec<u64> = (1..=9).chain(13..=30).collect();
    assert_eq!(replayed_around_damage(None).await, (all, 3));
    assert_eq!(replayed_around_damage(Some(4)).await.1, 3, "before it");
    assert_eq!(replayed_around_damage(Some(10)).await, (after.clone(), 3));
    assert_eq!(replayed_around_damage(Some(11)).await, (after, 0));
}
