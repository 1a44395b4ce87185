//! A randomized fault explorer: the real binary against the mock broker,
//! or the real cluster in `KAFKA_BROKERS` (`scripts/kafka up --nodes 3`),
//! through schedules drawn from a seed. Each schedule picks a mode (a
//! followed file, or stdin/TCP with `--spool-dir`), a writer (open-append-
//! close per line, or a descriptor held across rotations and reopened
//! late; bursts; half-written last lines; equal header lines) and a list
//! of steps: rotations in every logrotate style, SIGKILL and SIGTERM with
//! restarts, damaged state files, rotations while cdrship is stopped,
//! broker outages, slow round trips and request errors; on a real cluster
//! also leader kills and stops, rolling restarts, too few in-sync replicas
//! and added partitions (`explorer/brokers.rs`). The kinds live in one
//! table (`explorer/faults.rs`); those with a known product defect are off
//! in the CI set, and those the broker cannot show are not drawn.
//!
//! An oracle (`explorer/oracle.rs`) knows every numbered line and which
//! ones are exempt and why; every other line must arrive, and a duplicate
//! must carry its original's `cdrship.id`. Each schedule prints one
//! summary line; a failure prints the seed, the missing lines and the
//! schedule.
//!
//! - `cargo test --test explorer`: the CI seeds ([`CI_SEEDS`], or
//!   [`CI_SEEDS_REAL`] with `KAFKA_BROKERS`).
//! - `CDRSHIP_EXPLORE_SEEDS=N`: N fresh random seeds instead (each printed).
//! - `CDRSHIP_EXPLORE_SEED=S`: replay seed S (the same choices; timing may
//!   differ).
//! - `CDRSHIP_EXPLORE_FAULTS=all` or `=HeldWriter,RenameCreate,...`: the
//!   enabled kinds (default: the CI set, all but `faults::KNOWN_DEFECTS`).
//!
//! Synchronisation is by polling conditions with deadlines; sleeps only
//! pace the writer or make a fault last.

mod common;

#[path = "explorer/brokers.rs"]
mod brokers;
#[path = "explorer/faults.rs"]
mod faults;
#[path = "explorer/oracle.rs"]
mod oracle;
#[path = "explorer/rng.rs"]
mod rng;
#[path = "explorer/rotations.rs"]
mod rotations;
#[path = "explorer/runner.rs"]
mod runner;
#[path = "explorer/schedule.rs"]
mod schedule;
#[path = "explorer/stream.rs"]
mod stream;
#[path = "explorer/writer.rs"]
mod writer;

use std::time::{Duration, Instant};

use common::Msg;
use schedule::Mode;

/// Seeds run by `cargo test`: file and stream schedules, a few seconds each.
const CI_SEEDS: &[u64] = &[1, 2, 3, 4, 5, 6, 7, 8];

/// Seeds run on a real cluster (`KAFKA_BROKERS`, as `.ci/run` does): its
/// broker faults restart nodes, tens of seconds a schedule.
const CI_SEEDS_REAL: &[u64] = &[1, 2, 3, 4, 5, 6];

/// Lines the writers add in the background per topic partition before
/// they slow to a trickle.
/// The mock keeps ~5 MB per partition and drops its oldest messages
/// beyond that; a file line with its id header takes ~110 bytes there,
/// and replays after a SIGKILL add to it. [`runner::overflowed`] checks.
const LINES_PER_PARTITION: u64 = 20_000;

/// What one schedule produced.
pub struct Outcome {
    verdict: oracle::Verdict,
    /// Things that went wrong besides lost lines (a bad exit, a timeout).
    problems: Vec<String>,
    /// What each step did.
    log: Vec<String>,
}

/// The number of an explorer line: field 5 of a raw line, or the `n`
/// field of a JSON object (`--header` in the stream modes).
pub fn number(msg: &Msg) -> Option<u64> {
    let text = msg.text();
    if let Some(at) = text.find("\"n\":\"") {
        let digits = &text[at + 5..];
        return digits[..digits.find('"')?].parse().ok();
    }
    text.split(',').nth(4)?.parse().ok()
}

/// Poll `condition` every 10 ms until it holds (true) or `deadline`
/// passes (false).
pub fn settle(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !condition() {
        if start.elapsed() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Run the schedule of `seed`; its summary line, or the failure report.
fn explore(seed: u64, enabled: &faults::Enabled) -> Result<String, String> {
    let schedule = schedule::schedule(seed, enabled);
    eprintln!("explore: {schedule}");
    let started = Instant::now();
    let outcome = match schedule.mode {
        Mode::File => runner::run(&schedule),
        Mode::Stdin | Mode::Tcp => stream::run(&schedule),
    };
    let summary = format!(
        "explore: seed {seed} {:?} in {:.1} s: {}",
        schedule.mode,
        started.elapsed().as_secs_f64(),
        outcome.verdict
    );
    eprintln!("{summary}");
    if outcome.verdict.failed() || !outcome.problems.is_empty() {
        return Err(format!(
            "{summary}\nproblems: {:?}\n{schedule}{}",
            outcome.problems,
            outcome.log.join("\n")
        ));
    }
    Ok(summary)
}

#[test]
fn explore_schedules_without_loss() {
    let enabled = faults::Enabled::from_env();
    for why in faults::impossible() {
        eprintln!("explore: not drawn on this broker: {why}");
    }
    let seeds: Vec<u64> = if let Ok(seed) = std::env::var("CDRSHIP_EXPLORE_SEED") {
        vec![seed.parse().expect("CDRSHIP_EXPLORE_SEED: a number")]
    } else if let Ok(n) = std::env::var("CDRSHIP_EXPLORE_SEEDS") {
        let n: usize = n.parse().expect("CDRSHIP_EXPLORE_SEEDS: a number");
        (0..n).map(|_| rng::fresh_seed()).collect()
    } else if faults::real_cluster() {
        CI_SEEDS_REAL.to_vec()
    } else {
        CI_SEEDS.to_vec()
    };
    let mut summaries = Vec::new();
    let mut failures = Vec::new();
    for seed in seeds {
        match explore(seed, &enabled) {
            Ok(summary) => summaries.push(summary),
            Err(report) => {
                summaries.push(report.lines().next().unwrap_or_default().to_owned());
                failures.push(report);
            }
        }
    }
    eprintln!(
        "explore: {} schedules\n{}",
        summaries.len(),
        summaries.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} failing schedules:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
