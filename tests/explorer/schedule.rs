//! A schedule is everything a seed decides, drawn up front: the mode, the
//! writer, cdrship's options and the list of steps. Running it may take
//! different times; it never makes a choice of its own.

use crate::faults::{Enabled, Fault, Fault::*};
use crate::rng::Rng;

/// Where cdrship reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `--file Master.csv --state-dir`.
    File,
    /// stdin with `--spool-dir`.
    Stdin,
    /// `--listen` with `--spool-dir`.
    Tcp,
}

/// How a rotated file is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// `Master.csv.1`, replacing an older one.
    Dot1,
    /// logrotate's default: `.1` -> `.2` ... first, then `.1`.
    Shifted,
    /// The next unused `.N`, older copies not shifted.
    Numbered,
    /// `Master.csv-20261201`, `-20261202`, ...
    Dateext,
}

/// One rotation of the followed path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Rename away, create the path empty.
    RenameCreate(Naming),
    /// Rename away; the writer creates the path again.
    RenameLazy(Naming),
    /// Copy, `window` lines appended between copy and truncate, truncate.
    CopyTruncate { naming: Naming, window: u32 },
    /// Truncate in place, after letting cdrship catch up or not.
    TruncateInPlace { catch_up: bool },
    /// Remove the path; recreate it at once or leave it to the writer.
    DeleteRecreate { lazy: bool },
    /// The last `lines` whole lines cut off, as a power loss takes what
    /// the PBX never synced (while cdrship is stopped).
    Shrink { lines: u32 },
}

/// How cdrship is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM, and a clean exit is expected.
    Term,
    /// SIGKILL.
    Kill,
}

/// What happens to the state file while cdrship is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// Overwritten with garbage.
    Corrupt,
    /// Deleted.
    Missing,
}

/// Lines written after the last rotation while stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// This many.
    Lines(u32),
    /// More than the old file held, so a saved offset fits the new file.
    Outgrow,
}

/// How `--file` is spelled at a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// `DIR/Master.csv`.
    Plain,
    /// `DIR/feeds/pbx1.csv -> ../Master.csv`.
    Symlink,
    /// `LINK/Master.csv` with `LINK -> DIR`.
    LinkedDir,
    /// `DIR//Master.csv`.
    DoubleSlash,
    /// `DIR/./Master.csv`.
    DotSlash,
}

/// One step of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Rotate while cdrship runs; a held writer reopens after
    /// `reopen_after` batches; maybe SIGKILL right after.
    Rotate {
        rotation: Rotation,
        reopen_after: u32,
        kill_after: bool,
    },
    /// Stop, maybe damage the state file, start again.
    Restart { stop: Stop, damage: Option<Damage> },
    /// Stop; for each entry write that many lines, then rotate; write
    /// `after`; start again.
    Stopped {
        stop: Stop,
        rotations: Vec<(u32, Rotation)>,
        after: After,
    },
    /// The broker down for `ms`.
    BrokerDown { ms: u64 },
    /// Round trips of `rtt_ms` for `ms`.
    BrokerSlow { rtt_ms: u64, ms: u64 },
    /// `count` retriable errors on Produce requests, cleared after `ms`
    /// (left over, they would add up across steps).
    RequestErrors { count: usize, ms: u64 },
    /// SIGHUP; the follower carries on.
    Hangup,
    /// The state's disk full for `ms`; SIGKILL before it is freed, and
    /// a start after, if `kill`.
    StateDiskFull { ms: u64, kill: bool },
    /// A SIGKILL this many ms after each start, one after the other.
    KillStorm { after_ms: Vec<u64> },
    /// The leader of partition 0 SIGKILLed, started again after `ms`.
    LeaderKill { ms: u64 },
    /// The leader of partition 0 SIGSTOPped for `ms` (past the cluster's
    /// 6 s session timeout, it is fenced and leadership moves).
    LeaderStop { ms: u64 },
    /// Every node in turn shut down and started again.
    RollingRestart,
    /// Two nodes of three killed for `ms`: NOT_ENOUGH_REPLICAS.
    UnderMinIsr { ms: u64 },
    /// `more` partitions added to the topic.
    PartitionsAdded { more: i32 },
    /// The broker down, `fill` lines (more than the small producer queue
    /// holds), then for each entry a rotation and that many lines, then
    /// the broker back.
    PausedRotations {
        fill: u32,
        rotations: Vec<(Rotation, u32)>,
    },
}

/// The writer's habits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterPlan {
    /// Holds its descriptor across rotations (file mode).
    pub held: bool,
    /// Sometimes writes hundreds of lines at once.
    pub bursts: bool,
    /// Sometimes leaves a last line unfinished until the next batch.
    pub partial: bool,
    /// Starts every file (or stream) with the same header line.
    pub header: bool,
    /// Holds its descriptor without `O_APPEND`: after a copytruncate it
    /// writes at its old offset, after a hole of NUL bytes.
    pub no_append: bool,
}

/// Everything a seed decides.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub seed: u64,
    pub mode: Mode,
    pub writer: WriterPlan,
    /// `--from end` (file mode).
    pub from_end: bool,
    /// `--exactly-once`: no duplicate may arrive.
    pub exactly_once: bool,
    /// `--poll-interval` in ms (file mode).
    pub poll_ms: u64,
    /// Topic partitions.
    pub partitions: i32,
    /// `--spool-max-bytes 256K` (stream modes).
    pub small_spool: bool,
    /// Each step with the pause (ms of writing) before it.
    pub steps: Vec<(u64, Step)>,
    /// Kafka down from the first start for this many ms of writing, with
    /// a SIGTERM and a restart in it (file mode).
    pub first_outage_ms: Option<u64>,
    /// How `--file` is spelled at each start, in turn (file mode).
    pub spellings: Vec<Spelling>,
}

/// Kinds of steps in file mode, in table order.
const FILE_STEPS: &[Fault] = &[
    RenameCreate,
    RenameLazy,
    CopyTruncate,
    CopyTruncateOtherName,
    TruncateInPlace,
    DeleteRecreate,
    Kill,
    Term,
    CorruptState,
    MissingState,
    RotateWhileStopped,
    RotationsWhileStopped,
    InodeReuseWhileStopped,
    FromEndCorruptState,
    BrokerDown,
    BrokerSlow,
    RequestErrors,
    LeaderKill,
    LeaderStop,
    RollingRestart,
    UnderMinIsr,
    PartitionsAdded,
    Hangup,
    PausedRotations,
    ShrinkWhileStopped,
    StateDiskFull,
    KillStorm,
];

/// Kinds of steps in the stream modes.
const STREAM_STEPS: &[Fault] = &[
    SpoolKill,
    SpoolTerm,
    SpoolFull,
    BrokerDown,
    BrokerSlow,
    RequestErrors,
    LeaderKill,
    LeaderStop,
    RollingRestart,
    UnderMinIsr,
    PartitionsAdded,
];

/// The schedule of `seed` with the `enabled` kinds.
pub fn schedule(seed: u64, enabled: &Enabled) -> Schedule {
    let mut rng = Rng::new(seed);
    let stream = enabled.among(&[SpoolKill, SpoolTerm, SpoolFull, SpoolHeader]);
    let file = enabled.among(&FILE_STEPS[..14]);
    let on = |rng: &mut Rng, kind| enabled.has(kind) && rng.chance(60);
    let mode = if !stream.is_empty() && (file.is_empty() || rng.chance(30)) {
        rng.pick(&[Mode::Stdin, Mode::Tcp])
    } else {
        Mode::File
    };
    let writer = WriterPlan {
        held: mode == Mode::File && on(&mut rng, HeldWriter),
        bursts: on(&mut rng, Bursts),
        partial: mode == Mode::File && on(&mut rng, PartialLine),
        header: if mode == Mode::File {
            on(&mut rng, SameFirstLine)
        } else {
            on(&mut rng, SpoolHeader)
        },
        no_append: false,
    };
    let writer = WriterPlan {
        no_append: writer.held && on(&mut rng, HoleWriter),
        ..writer
    };
    let from_end = mode == Mode::File && on(&mut rng, FromEnd);
    let exactly_once = on(&mut rng, ExactlyOnce);
    let small_spool = mode != Mode::File && on(&mut rng, SpoolFull);
    // With --exactly-once a first start reads where the partitions end
    // before it reads a line: it waits for Kafka, by design.
    let first_outage_ms = (mode == Mode::File && !exactly_once && on(&mut rng, FirstStartOutage))
        .then(|| rng.range(300, 1500));
    let spellings = if mode == Mode::File && on(&mut rng, PathSpelling) {
        let all = [
            Spelling::Plain,
            Spelling::Symlink,
            Spelling::LinkedDir,
            Spelling::DoubleSlash,
            Spelling::DotSlash,
        ];
        (0..8).map(|_| rng.pick(&all)).collect()
    } else {
        vec![Spelling::Plain]
    };
    let poll_ms = rng.pick(&[50, 200, 1000]);
    let partitions = rng.pick(&[1, 4]);
    let kinds: Vec<Fault> = enabled
        .among(if mode == Mode::File {
            FILE_STEPS
        } else {
            STREAM_STEPS
        })
        .into_iter()
        .filter(|kind| match kind {
            CorruptState => !from_end,
            // A deleted state is a first start: the file is sent again,
            // with or without --exactly-once (README says so).
            MissingState => !from_end && !exactly_once,
            FromEndCorruptState => from_end,
            SpoolFull => small_spool,
            _ => true,
        })
        .collect();
    let mut steps = Vec::new();
    // A real cluster's node takes seconds to start again: at most two
    // steps a schedule restart nodes there.
    let light: Vec<Fault> = kinds.iter().copied().filter(|k| !restarts(*k)).collect();
    let mut restarts_left = if crate::faults::real_cluster() {
        2
    } else {
        u32::MAX
    };
    if !kinds.is_empty() {
        for _ in 0..rng.range(5, 9) {
            let mut kind = rng.pick(&kinds);
            if restarts(kind) {
                if restarts_left == 0 && !light.is_empty() {
                    kind = rng.pick(&light);
                } else {
                    restarts_left = restarts_left.saturating_sub(1);
                }
            }
            let step = step(&mut rng, kind, enabled);
            steps.push((rng.range(100, 600), step));
        }
    }
    Schedule {
        seed,
        mode,
        writer,
        from_end,
        exactly_once,
        poll_ms,
        partitions,
        small_spool,
        steps,
        first_outage_ms,
        spellings,
    }
}

/// Whether a step of `kind` starts cluster nodes again (or, on the mock,
/// brings its broker back).
fn restarts(kind: Fault) -> bool {
    matches!(
        kind,
        BrokerDown | SpoolFull | PausedRotations | LeaderKill | RollingRestart | UnderMinIsr
    )
}

fn step(rng: &mut Rng, kind: Fault, enabled: &Enabled) -> Step {
    let stop = |rng: &mut Rng| rng.pick(&[Stop::Term, Stop::Kill]);
    match kind {
        RenameCreate
        | RenameLazy
        | CopyTruncate
        | CopyTruncateOtherName
        | TruncateInPlace
        | DeleteRecreate => Step::Rotate {
            rotation: rotation(rng, kind, true),
            reopen_after: rng.range(0, 30) as u32,
            kill_after: enabled.has(Kill)
                && (kind != CopyTruncate && kind != CopyTruncateOtherName
                    || enabled.has(ReplayFromCopy))
                && rng.chance(30),
        },
        Kill | SpoolKill => Step::Restart {
            stop: Stop::Kill,
            damage: None,
        },
        Term | SpoolTerm => Step::Restart {
            stop: Stop::Term,
            damage: None,
        },
        CorruptState | FromEndCorruptState => Step::Restart {
            stop: stop(rng),
            damage: Some(Damage::Corrupt),
        },
        MissingState => Step::Restart {
            stop: stop(rng),
            damage: Some(Damage::Missing),
        },
        RotateWhileStopped | RotationsWhileStopped => {
            let kinds = enabled.among(&[
                RenameCreate,
                RenameLazy,
                CopyTruncate,
                CopyTruncateOtherName,
                DeleteRecreate,
            ]);
            let kinds = if kinds.is_empty() {
                vec![RenameCreate]
            } else {
                kinds
            };
            let count = if kind == RotateWhileStopped {
                1
            } else {
                rng.range(2, 3)
            };
            let rotations: Vec<(u32, Rotation)> = (0..count)
                .map(|_| {
                    let kind = rng.pick(&kinds);
                    let rotation = rotation(rng, kind, false);
                    // A delete destroys what it holds: write nothing into
                    // the file before, so nothing becomes exempt.
                    let lines = match rotation {
                        Rotation::DeleteRecreate { .. } => 0,
                        _ => rng.range(0, 50) as u32,
                    };
                    (lines, rotation)
                })
                .collect();
            let copied = rotations
                .iter()
                .any(|(_, r)| matches!(r, Rotation::CopyTruncate { .. }));
            let stop = if copied && !enabled.has(ReplayFromCopy) {
                Stop::Term
            } else {
                stop(rng)
            };
            Step::Stopped {
                stop,
                rotations,
                after: After::Lines(rng.range(1, 50) as u32),
            }
        }
        InodeReuseWhileStopped => Step::Stopped {
            stop: stop(rng),
            rotations: vec![(
                0,
                rng.pick(&[
                    Rotation::DeleteRecreate { lazy: false },
                    Rotation::TruncateInPlace { catch_up: true },
                ]),
            )],
            after: After::Outgrow,
        },
        ShrinkWhileStopped => Step::Stopped {
            stop: stop(rng),
            rotations: vec![(
                0,
                Rotation::Shrink {
                    lines: rng.range(1, 50) as u32,
                },
            )],
            after: After::Outgrow,
        },
        BrokerDown => Step::BrokerDown {
            ms: rng.range(200, 2000),
        },
        SpoolFull => Step::BrokerDown {
            ms: rng.range(2500, 3500),
        },
        BrokerSlow => Step::BrokerSlow {
            rtt_ms: rng.range(50, 500),
            ms: rng.range(300, 1500),
        },
        RequestErrors => Step::RequestErrors {
            count: rng.range(1, 8) as usize,
            ms: rng.range(300, 1000),
        },
        LeaderKill => Step::LeaderKill {
            ms: rng.range(200, 3000),
        },
        LeaderStop => Step::LeaderStop {
            ms: rng.range(500, 9000),
        },
        RollingRestart => Step::RollingRestart,
        UnderMinIsr => Step::UnderMinIsr {
            ms: rng.range(500, 4000),
        },
        PartitionsAdded => Step::PartitionsAdded {
            more: rng.range(1, 3) as i32,
        },
        Hangup => Step::Hangup,
        StateDiskFull => Step::StateDiskFull {
            ms: rng.range(200, 1500),
            kill: rng.chance(50),
        },
        KillStorm => Step::KillStorm {
            after_ms: (0..rng.range(3, 8)).map(|_| rng.range(0, 80)).collect(),
        },
        PausedRotations => {
            // Renamed or copied away with older files kept: a pause must
            // not be what destroys a generation.
            let naming = [Naming::Shifted, Naming::Numbered, Naming::Dateext];
            let rotations = (0..2)
                .map(|_| {
                    let rotation = if rng.chance(50) {
                        Rotation::RenameCreate(rng.pick(&naming))
                    } else {
                        Rotation::CopyTruncate {
                            naming: rng.pick(&naming),
                            window: 0,
                        }
                    };
                    (rotation, rng.range(10, 300) as u32)
                })
                .collect();
            Step::PausedRotations {
                fill: rng.range(1500, 3000) as u32,
                rotations,
            }
        }
        other => unreachable!("{other:?} is not a step"),
    }
}

fn rotation(rng: &mut Rng, kind: Fault, running: bool) -> Rotation {
    let any = [
        Naming::Dot1,
        Naming::Shifted,
        Naming::Numbered,
        Naming::Dateext,
    ];
    match kind {
        RenameCreate => Rotation::RenameCreate(rng.pick(&any)),
        RenameLazy => Rotation::RenameLazy(rng.pick(&any)),
        CopyTruncate | CopyTruncateOtherName => Rotation::CopyTruncate {
            naming: if kind == CopyTruncate {
                rng.pick(&[Naming::Dot1, Naming::Shifted])
            } else {
                rng.pick(&[Naming::Numbered, Naming::Dateext])
            },
            // The copy/truncate window exists only while something writes.
            window: if running && rng.chance(30) {
                rng.range(1, 5) as u32
            } else {
                0
            },
        },
        TruncateInPlace => Rotation::TruncateInPlace {
            catch_up: rng.chance(50),
        },
        DeleteRecreate => Rotation::DeleteRecreate {
            lazy: rng.chance(50),
        },
        other => unreachable!("{other:?} is not a rotation"),
    }
}

impl Schedule {
    /// Whether a step fills the state's disk (it then lives on a tmpfs).
    pub fn fills_state_disk(&self) -> bool {
        self.steps
            .iter()
            .any(|(_, step)| matches!(step, Step::StateDiskFull { .. }))
    }

    /// cdrship's arguments the schedule's faults need. With request errors,
    /// one produce request in flight at a time: librdkafka (rightly, for a
    /// real broker) takes a request that failed with a possibly-persisted
    /// error such as a timeout as written when a later one succeeds
    /// (`rd_kafka_dr_implicit_ack`), since a broker refuses a later
    /// sequence after a gap. The mock checks sequences of transactional
    /// producers only, so it appends the later request and the failed one
    /// is gone: 3 or 4 lines missing that cdrship had seen acknowledged.
    /// A mock artefact; pipelining is not what the fault is about.
    /// With `--exactly-once`, the fence one broker needs: the killed
    /// process's last requests are written within milliseconds, not 30 s.
    pub fn fault_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let errors = self
            .steps
            .iter()
            .any(|(_, step)| matches!(step, Step::RequestErrors { .. }));
        if errors {
            args.extend(["-X", "max.in.flight.requests.per.connection=1"]);
        }
        if self.exactly_once {
            args.extend(["--exactly-once", "--exactly-once-fence", "1"]);
        }
        let paused = self
            .steps
            .iter()
            .any(|(_, step)| matches!(step, Step::PausedRotations { .. }));
        if paused {
            // Reading pauses after a thousand lines, not fifty thousand.
            args.extend(["-X", "queue.buffering.max.messages=1000"]);
        }
        let added = self
            .steps
            .iter()
            .any(|(_, step)| matches!(step, Step::PartitionsAdded { .. }));
        if added {
            // New partitions are used within a second, not five minutes.
            args.extend(["-X", "topic.metadata.refresh.interval.ms=1000"]);
        }
        args.into_iter().map(String::from).collect()
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "seed {}: {:?}, {:?}, from_end {}, exactly_once {}, poll {} ms, {} partitions, small spool {}, first outage {:?}, spellings {:?}",
            self.seed,
            self.mode,
            self.writer,
            self.from_end,
            self.exactly_once,
            self.poll_ms,
            self.partitions,
            self.small_spool,
            self.first_outage_ms,
            self.spellings
        )?;
        for (i, (pause, step)) in self.steps.iter().enumerate() {
            writeln!(f, "  {i}: after {pause} ms: {step:?}")?;
        }
        Ok(())
    }
}
