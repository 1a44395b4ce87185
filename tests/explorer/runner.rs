//! Runs a file-mode schedule: the real binary follows `Master.csv` while
//! the writer appends and the driver applies each step. Between steps the
//! driver waits (polling, with a deadline) until cdrship has reached the
//! file now at the path and saved progress naming it, as it would between
//! two real rotations; two renames before any reader looked would hide a
//! file from every reader.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::brokers;
use crate::common::collector::Collector;
use crate::common::tmpfs::Tmpfs;
use crate::common::{Broker, Cdrship, Followed};
use crate::oracle::judge;
use crate::rng::Rng;
use crate::rotations::{inode, Rotator};
use crate::schedule::{After, Damage, Schedule, Spelling, Step, Stop};
use crate::writer::{Desk, Writer};
use crate::{number, settle, Outcome, LINES_PER_PARTITION};

/// How long the driver waits for cdrship between steps.
const STEP_DEADLINE: Duration = Duration::from_secs(20);

struct Run<'a> {
    broker: &'a Broker,
    followed: &'a Followed,
    args: Vec<String>,
    process: Option<Cdrship>,
    problems: Vec<String>,
    /// `--file` at each start, in turn.
    spellings: Vec<String>,
    starts: usize,
    /// The state directory.
    state: std::path::PathBuf,
}

impl Run<'_> {
    fn start(&mut self) {
        let state = &self.state;
        let file = &self.spellings[self.starts % self.spellings.len()];
        self.starts += 1;
        let mut args = vec![
            "-t",
            &self.followed.topic,
            "--file",
            file,
            "--state-dir",
            state.to_str().unwrap(),
        ];
        args.extend(self.args.iter().map(String::as_str));
        self.process = Some(crate::common::cdrship_at(self.broker.servers(), &args));
    }

    fn stop(&mut self, how: Stop) {
        let mut process = self.process.take().expect("cdrship runs");
        match how {
            Stop::Kill => process.signal("KILL"),
            Stop::Term => process.terminate(),
        }
        let status = process.wait();
        if how == Stop::Term && !status.success() && !process.killed_before_start(status) {
            self.problems.push(format!("exit {status} after SIGTERM"));
        }
    }

    fn state_file(&self) -> Option<std::path::PathBuf> {
        std::fs::read_dir(&self.state)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".state.json"))
    }

    /// Whether the saved progress names the file with inode `ino`.
    fn saved_names(&self, ino: u64) -> bool {
        self.state_file()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .is_some_and(|s| s.contains(&format!("\"ino\":{ino},")))
    }
}

/// Run one file-mode schedule.
pub fn run(schedule: &Schedule) -> Outcome {
    let broker = Broker::for_faults();
    let followed = Followed::new(&broker, schedule.partitions, "explore");
    let collector = Collector::start(&broker, &followed.topic, number);
    // Created empty first: `--from end` has nothing to skip.
    std::fs::File::create(&followed.path).unwrap();
    let mut args = vec![
        "--poll-interval".into(),
        format!("{}", schedule.poll_ms as f64 / 1000.0),
    ];
    if schedule.from_end {
        args.extend(["--from".into(), "end".into()]);
    }
    args.extend(schedule.fault_args());
    // More of cdrship's own arguments for a replay (`-v` to see why).
    if let Ok(extra) = std::env::var("CDRSHIP_EXPLORE_ARGS") {
        args.extend(extra.split_whitespace().map(String::from));
    }
    // A small disk of its own for a state that fills it.
    let disk = schedule.fills_state_disk().then(|| Tmpfs::mount("1m"));
    let mut run = Run {
        broker: &broker,
        followed: &followed,
        args,
        process: None,
        problems: Vec::new(),
        spellings: spell(&followed, &schedule.spellings),
        starts: 0,
        state: disk
            .as_ref()
            .map_or(followed.dir.path(), |d| d.dir.path())
            .join("state"),
    };
    if schedule.first_outage_ms.is_some() {
        broker.down();
    }
    run.start();
    if schedule.from_end {
        run.process.as_ref().unwrap().wait_for_log("--from end");
    }
    let mut rng = Rng::new(schedule.seed);
    let mut writer = Writer::start(
        Desk::new(
            followed.path.clone(),
            schedule.writer,
            LINES_PER_PARTITION * schedule.partitions as u64,
        ),
        rng.fork(1),
    );
    if let Some(ms) = schedule.first_outage_ms {
        first_outage(&mut run, &writer, Duration::from_millis(ms));
    }
    let mut rotator = Rotator::new();
    let path = followed.path.clone();
    let arrived_all = |lines: &[u64]| {
        settle(STEP_DEADLINE, || {
            collector.missing(lines.iter().copied()).is_empty()
        })
    };
    let mut log = Vec::new();
    for (i, (pause, step)) in schedule.steps.iter().enumerate() {
        if !settled(&run, &writer, &collector, &path) {
            run.problems.push(format!(
                "before step {i}: cdrship never reached the file at the path"
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(*pause));
        let note = match step {
            Step::Rotate {
                rotation,
                reopen_after,
                kill_after,
            } => {
                let mut desk = writer.pause();
                let note = rotator.rotate(&mut desk, *rotation, true, &collector, &arrived_all);
                desk.reopen_after(*reopen_after);
                drop(desk);
                if *kill_after {
                    run.stop(Stop::Kill);
                    forget_deleted(&mut writer.pause(), &collector);
                    run.start();
                }
                note
            }
            Step::Restart { stop, damage } => {
                let mut desk = writer.pause();
                if damage.is_some() {
                    // Without progress cdrship reads only the current file:
                    // every other file must be delivered first.
                    desk.reopen_now();
                    let current = inode(&path)
                        .map(|ino| desk.oracle.lines_in(ino).to_vec())
                        .unwrap_or_default();
                    let others: Vec<u64> = desk
                        .oracle
                        .must_arrive()
                        .into_iter()
                        .filter(|n| !current.contains(n))
                        .collect();
                    if !arrived_all(&others) {
                        run.problems
                            .push(format!("step {i}: older files never delivered"));
                    }
                }
                drop(desk);
                run.stop(*stop);
                forget_deleted(&mut writer.pause(), &collector);
                match (damage, run.state_file()) {
                    (Some(Damage::Corrupt), Some(state)) => {
                        std::fs::write(state, "{\"version\":1,\"pa\u{0}garbage").unwrap()
                    }
                    (Some(Damage::Missing), Some(state)) => std::fs::remove_file(state).unwrap(),
                    _ => {}
                }
                run.start();
                String::new()
            }
            Step::Stopped {
                stop,
                rotations,
                after,
            } => {
                let mut desk = writer.pause();
                desk.reopen_now();
                let all = desk.oracle.must_arrive();
                if !arrived_all(&all) {
                    run.problems
                        .push(format!("step {i}: no catch-up before stopping"));
                }
                run.stop(*stop);
                forget_deleted(&mut desk, &collector);
                let old_len = std::fs::metadata(&path).map_or(0, |m| m.len());
                let mut notes = Vec::new();
                for (lines, rotation) in rotations {
                    desk.write_lines(u64::from(*lines));
                    notes.push(rotator.rotate(
                        &mut desk,
                        *rotation,
                        false,
                        &collector,
                        &arrived_all,
                    ));
                    desk.reopen_now();
                }
                match after {
                    After::Lines(n) => drop(desk.write_lines(u64::from(*n))),
                    After::Outgrow => {
                        while std::fs::metadata(&path).map_or(0, |m| m.len()) <= old_len {
                            desk.write_lines(50);
                        }
                    }
                }
                run.start();
                notes.join("; ")
            }
            Step::Hangup => {
                let process = run.process.as_mut().expect("cdrship runs");
                process.signal("HUP");
                process.wait_for_log("SIGHUP");
                if process.child.try_wait().unwrap().is_some() {
                    run.problems
                        .push(format!("step {i}: SIGHUP ended the follower"));
                }
                String::new()
            }
            Step::StateDiskFull { ms, kill } => {
                let disk = disk.as_ref().expect("the state lives on a tmpfs");
                let filler = disk.fill();
                std::thread::sleep(Duration::from_millis(*ms));
                if *kill {
                    run.stop(Stop::Kill);
                    forget_deleted(&mut writer.pause(), &collector);
                }
                std::fs::remove_file(filler).unwrap();
                if *kill {
                    run.start();
                }
                String::new()
            }
            Step::KillStorm { after_ms } => {
                for ms in after_ms {
                    std::thread::sleep(Duration::from_millis(*ms));
                    run.stop(Stop::Kill);
                    forget_deleted(&mut writer.pause(), &collector);
                    run.start();
                }
                String::new()
            }
            Step::PausedRotations { fill, rotations } => {
                let mut desk = writer.pause();
                broker.down();
                desk.write_lines(u64::from(*fill));
                // The queue fills and reading pauses; the rotations land
                // while it is paused.
                std::thread::sleep(Duration::from_millis(300));
                let mut notes = Vec::new();
                for (rotation, lines) in rotations {
                    notes.push(rotator.rotate(&mut desk, *rotation, true, &collector, &|_| false));
                    desk.reopen_now();
                    desk.write_lines(u64::from(*lines));
                }
                broker.up();
                notes.join("; ")
            }
            broker_step => brokers::apply(&broker, &followed.topic, broker_step)
                .unwrap_or_else(|| unreachable!("{broker_step:?} is not a file step")),
        };
        let written = writer.pause().oracle.written();
        log.push(format!("step {i} done at line {written}: {note}"));
    }
    writer.finish();
    let oracle = std::mem::take(&mut writer.pause().oracle);
    let wanted = oracle.must_arrive();
    let start = Instant::now();
    while !collector.missing(wanted.iter().copied()).is_empty()
        && collector.quiet_for() < Duration::from_secs(10)
        && start.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    run.stop(Stop::Term);
    run.problems.extend(overflowed(&broker, &followed.topic));
    let verdict = judge(
        &oracle,
        &collector.messages(),
        number,
        broker.mock().is_some(),
    );
    run.problems
        .extend(verdict.duplicate_problem(schedule.exactly_once));
    Outcome {
        verdict,
        problems: run.problems,
        log,
    }
}

/// `--file` for each of `spellings` (symlinks made as needed).
fn spell(followed: &Followed, spellings: &[Spelling]) -> Vec<String> {
    let dir = followed.dir.path();
    spellings
        .iter()
        .map(|spelling| match spelling {
            Spelling::Plain => followed.path.display().to_string(),
            Spelling::Symlink => {
                let feeds = dir.join("feeds");
                let link = feeds.join("pbx1.csv");
                if !link.exists() {
                    let _ = std::fs::create_dir(&feeds);
                    let _ = std::os::unix::fs::symlink("../Master.csv", &link);
                }
                link.display().to_string()
            }
            Spelling::LinkedDir => {
                let link = dir.join("linked");
                if std::fs::symlink_metadata(&link).is_err() {
                    std::os::unix::fs::symlink(dir, &link).unwrap();
                }
                link.join("Master.csv").display().to_string()
            }
            Spelling::DoubleSlash => format!("{}//Master.csv", dir.display()),
            Spelling::DotSlash => format!("{}/./Master.csv", dir.display()),
        })
        .collect()
}

/// Kafka is down from the first start: the run reads what the writer
/// writes for `lasting`, is stopped (exit 75: kept, or 0 if it had read
/// nothing yet) and started again, and only then Kafka comes back.
fn first_outage(run: &mut Run<'_>, writer: &Writer, lasting: Duration) {
    std::thread::sleep(lasting);
    let mut process = run.process.take().expect("cdrship runs");
    let desk = writer.pause();
    process.terminate();
    let status = process.wait();
    if !matches!(status.code(), Some(0 | 75)) && !process.killed_before_start(status) {
        run.problems
            .push(format!("exit {status} after SIGTERM in the first outage"));
    }
    drop(desk);
    run.start();
    run.broker.up();
}

/// cdrship has read from the file now at the path and saved progress
/// naming it (a line of that file arrived, the writer still writing).
fn settled(run: &Run<'_>, writer: &Writer, collector: &Collector, path: &Path) -> bool {
    settle(STEP_DEADLINE, || {
        // Started reading: past its --exactly-once fence and read-back (a
        // file deleted before it opened it is beyond it, as while stopped).
        let reading = run
            .process
            .as_ref()
            .is_some_and(|p| p.log().contains("shipping "));
        let Some(ino) = inode(path) else { return false };
        let arrived = writer
            .pause()
            .oracle
            .lines_in(ino)
            .iter()
            .any(|&n| collector.has(n));
        reading && arrived && run.saved_names(ino)
    })
}

/// A problem if the mock dropped the oldest messages of `topic` (its
/// log outgrew ~5 MB): lines missing then may never have been seen by
/// the collector, so the verdict would prove nothing.
pub fn overflowed(broker: &Broker, topic: &str) -> Option<String> {
    let earliest = broker.reader(topic).earliest();
    earliest.iter().any(|&first| first > 0).then(|| {
        format!(
            "the mock dropped the oldest messages of {topic} (first offsets kept \
             {earliest:?}): the schedule wrote more than LINES_PER_PARTITION allows"
        )
    })
}

/// cdrship stopped: deleted files it may have held, and one the writer
/// still holds, are beyond every later process.
fn forget_deleted(desk: &mut Desk, collector: &Collector) {
    desk.oracle.stopped(|n| collector.has(n));
    if let Some(ino) = desk.held_deleted() {
        desk.oracle.gone(ino, |n| collector.has(n));
    }
}
