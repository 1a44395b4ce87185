//! Runs a stdin or TCP schedule with `--spool-dir`: a writer streams
//! numbered lines into cdrship's stdin pipe or a TCP connection while the
//! driver kills and restarts it and takes the broker down (with
//! `--spool-max-bytes 256K` long enough to fill the spool).
//!
//! What did cdrship read? A pipe or socket has no acknowledgement, so the
//! promise covers what cdrship took into its spool. After each death the
//! driver (holding the writer's lock, so no line is sent meanwhile) reads
//! the spool's segment files, which are final once the process is gone:
//! a record holds the line's bytes at its end, so a line whose whole text
//! is there is a whole record, spooled. Spooled lines must arrive, and so
//! must every line before the last one spooled or arrived (lines are read
//! in order). Only lines after that one, which had not arrived, are exempt
//! (`Unread`): still in the pipe or socket buffer, or in the read in
//! progress. A spooled line whose segment was deleted was acknowledged, so
//! it arrives anyway.

use std::io::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::brokers;
use crate::common::collector::Collector;
use crate::common::{cdrship, Broker, Cdrship};
use crate::oracle::{judge, Oracle, Reason};
use crate::rng::Rng;
use crate::runner::overflowed;
use crate::schedule::{Mode, Schedule, Step, Stop};
use crate::writer::line;
use crate::{number, Outcome, LINES_PER_PARTITION};

/// Column names sent first on every stream with `--header`.
const HEADER: &str = "a,b,c,d,n,e\n";

/// The stream the writer sends to, and what it sent.
struct Feed {
    oracle: Oracle,
    sink: Option<Box<dyn std::io::Write + Send>>,
    header_due: bool,
    /// Lines sent at most (see [`LINES_PER_PARTITION`]).
    budget: u64,
}

/// Start cdrship and connect a sink to it.
fn start(
    broker: &Broker,
    schedule: &Schedule,
    args: &[String],
) -> (Cdrship, Box<dyn std::io::Write + Send>) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut process = cdrship(broker, &args);
    let sink: Box<dyn std::io::Write + Send> = match schedule.mode {
        Mode::Tcp => {
            Box::new(TcpStream::connect(process.listening_on()).expect("connecting to cdrship"))
        }
        _ => Box::new(process.child.stdin.take().expect("stdin is piped")),
    };
    (process, sink)
}

/// Line numbers whose whole line is in the spool's segment files.
fn spooled(dir: &Path) -> Vec<u64> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
    {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for (at, _) in text.match_indices("\"explore\",") {
            let rest = &text[at + 10..];
            let Some(comma) = rest.find(',') else {
                continue;
            };
            if rest[comma..].starts_with(",\"Иван\"") {
                if let Ok(n) = rest[..comma].parse() {
                    found.push(n);
                }
            }
        }
    }
    found
}

/// Run one stdin or TCP schedule.
pub fn run(schedule: &Schedule) -> Outcome {
    let broker = Broker::for_faults();
    let topic = broker.topic("explore-stream", schedule.partitions);
    let collector = Collector::start(&broker, &topic, number);
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let mut args = vec![
        "-t".to_owned(),
        topic.clone(),
        "--spool-dir".into(),
        spool.display().to_string(),
    ];
    if schedule.mode == Mode::Tcp {
        args.extend(["--listen".into(), "127.0.0.1:0".into()]);
    }
    if schedule.small_spool {
        args.extend(["--spool-max-bytes".into(), "256K".into()]);
    }
    args.extend(schedule.fault_args());
    if schedule.writer.header {
        args.extend(["-f".into(), "json".into(), "--header".into()]);
    }
    let (mut process, sink) = start(&broker, schedule, &args);
    let feed = Arc::new(Mutex::new(Feed {
        oracle: Oracle::default(),
        sink: Some(sink),
        header_due: schedule.writer.header,
        budget: LINES_PER_PARTITION * schedule.partitions as u64,
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (feed, stop) = (feed.clone(), stop.clone());
        let (mut rng, bursts) = (Rng::new(schedule.seed).fork(2), schedule.writer.bursts);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                send_batch(&mut feed.lock().unwrap(), &mut rng, bursts);
                // Load shaping, not synchronisation.
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut problems = Vec::new();
    let mut log = Vec::new();
    for (i, (pause, step)) in schedule.steps.iter().enumerate() {
        std::thread::sleep(Duration::from_millis(*pause));
        let note = match step {
            Step::Restart { stop, .. } => {
                match stop {
                    Stop::Kill => process.signal("KILL"),
                    Stop::Term => process.terminate(),
                }
                let status = process.wait();
                let exited = matches!(status.code(), Some(0 | 75));
                if *stop == Stop::Term && !exited && !process.killed_before_start(status) {
                    problems.push(format!("step {i}: exit {status} after SIGTERM"));
                }
                // The writer is unblocked by EPIPE now; hold it while the
                // spool is read and until the new process takes over.
                let mut feed = feed.lock().unwrap();
                let on_disk = spooled(&spool);
                let last = (0..feed.oracle.written())
                    .rev()
                    .find(|&n| collector.has(n) || on_disk.contains(&n));
                let first_unread = last.map_or(0, |n| n + 1);
                let unread: Vec<u64> = (first_unread..feed.oracle.written())
                    .filter(|&n| !collector.has(n))
                    .collect();
                feed.oracle.exempt_all(&unread, Reason::Unread);
                let (next, sink) = start(&broker, schedule, &args);
                process = next;
                feed.sink = Some(sink);
                feed.header_due = schedule.writer.header;
                format!(
                    "{status}, {} lines spooled on disk, {} unread",
                    on_disk.len(),
                    unread.len()
                )
            }
            other => brokers::apply(&broker, &topic, other)
                .unwrap_or_else(|| unreachable!("{other:?} is not a stream step")),
        };
        let written = feed.lock().unwrap().oracle.written();
        log.push(format!("step {i} done at line {written}: {note}"));
    }
    stop.store(true, Ordering::Relaxed);
    thread.join().expect("stream writer");
    // End of input: cdrship delivers everything, then exits 0.
    let oracle = {
        let mut feed = feed.lock().unwrap();
        feed.sink = None;
        std::mem::take(&mut feed.oracle)
    };
    let wanted = oracle.must_arrive();
    let start = Instant::now();
    while !collector.missing(wanted.iter().copied()).is_empty()
        && collector.quiet_for() < Duration::from_secs(10)
        && start.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    if schedule.mode == Mode::Tcp {
        process.terminate();
    }
    let status = process.wait();
    if !status.success() {
        problems.push(format!("exit {status} at the end"));
    }
    problems.extend(overflowed(&broker, &topic));
    let verdict = judge(
        &oracle,
        &collector.messages(),
        number,
        broker.mock().is_some(),
    );
    problems.extend(verdict.duplicate_problem(schedule.exactly_once));
    Outcome {
        verdict,
        problems,
        log,
    }
}

/// Send one batch; a failed write (cdrship gone) drops the sink.
fn send_batch(feed: &mut Feed, rng: &mut Rng, bursts: bool) {
    if feed.sink.is_none() || feed.oracle.written() >= feed.budget {
        return;
    }
    let count = if bursts && rng.chance(3) {
        rng.range(100, 400)
    } else {
        rng.range(1, 5)
    };
    let mut bytes = String::new();
    if std::mem::take(&mut feed.header_due) {
        bytes.push_str(HEADER);
    }
    for _ in 0..count {
        bytes.push_str(&line(feed.oracle.allocate()));
    }
    let sink = feed.sink.as_mut().expect("checked above");
    if sink
        .write_all(bytes.as_bytes())
        .and_then(|()| sink.flush())
        .is_err()
    {
        feed.sink = None;
    }
}
