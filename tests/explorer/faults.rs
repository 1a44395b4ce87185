//! The table of fault kinds: every kind the explorer can inject, and which
//! of them the CI seed set enables. A kind that finds a known product
//! defect stays out of the CI set ([`KNOWN_DEFECTS`]) until the fix lands; turn it on for a run
//! with `CDRSHIP_EXPLORE_FAULTS=all` or a comma-separated list of names.

/// One kind of fault (or of load) a schedule may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    // Rotations while cdrship runs.
    /// `mv Master.csv <name>; touch Master.csv` (logrotate `create`).
    RenameCreate,
    /// `mv Master.csv <name>`; the writer recreates it on its next line.
    RenameLazy,
    /// logrotate `copytruncate`, the copy named `Master.csv.1`.
    CopyTruncate,
    /// `copytruncate` with `dateext` or numbered copies not shifted
    /// (known defect 4: the tail only the copy holds is lost).
    CopyTruncateOtherName,
    /// `: > Master.csv`, sometimes after cdrship caught up.
    TruncateInPlace,
    /// `rm Master.csv`, then recreated at once or by the writer.
    DeleteRecreate,
    // Writers.
    /// A writer that holds its descriptor across a rotation and reopens
    /// the path late, as a daemon does on SIGHUP (known defect 3).
    HeldWriter,
    /// Bursts of hundreds of lines without pacing.
    Bursts,
    /// A last line written in two parts, completed later.
    PartialLine,
    /// Every file starts with the same header line, so first-line
    /// fingerprints are equal (known defect 5).
    SameFirstLine,
    /// A held writer without `O_APPEND`: a copytruncate leaves a hole of
    /// NUL bytes before its next line.
    HoleWriter,
    // Process faults (file mode).
    /// SIGKILL at any point (also right after a rotation), restart.
    Kill,
    /// SIGTERM, clean exit, restart.
    Term,
    /// The state file overwritten with garbage while stopped.
    CorruptState,
    /// The state file deleted while stopped (`--from beginning` only).
    MissingState,
    /// One rotation while cdrship is stopped.
    RotateWhileStopped,
    /// Two or three rotations while stopped (the files between the saved
    /// one and the current one are exempt: documented).
    RotationsWhileStopped,
    /// Delete+recreate or truncate+rewrite while stopped: the same inode
    /// with new content (with [`Fault::SameFirstLine`], known defect 5).
    InodeReuseWhileStopped,
    /// SIGKILL before cdrship's progress covered a file that copytruncate
    /// then copied (found here: the replay from the copy carries the
    /// copy's inode in `cdrship.id`, so it is not the same id).
    ReplayFromCopy,
    /// `--from end` runs (saved progress must win).
    FromEnd,
    /// `--from end` with a corrupt state file (known defect 2).
    FromEndCorruptState,
    /// `--exactly-once`: then no line may arrive twice.
    ExactlyOnce,
    /// SIGHUP to a follower (sent by habit after a rotation): logged,
    /// nothing else changes.
    Hangup,
    /// Kafka down from the first start: the run reads, cannot deliver,
    /// is stopped (exit 75) and started again before Kafka is back.
    FirstStartOutage,
    /// `--file` spelled another way at each start: through a symlink, a
    /// symlinked directory, `DIR//Master.csv`, `DIR/./Master.csv`.
    PathSpelling,
    /// Two rotations while reading is paused by backpressure (Kafka
    /// down, a small producer queue full).
    PausedRotations,
    /// The file cut back by a few lines while cdrship is stopped (a power
    /// loss), then written past the saved offset.
    ShrinkWhileStopped,
    /// The state directory's disk (a small tmpfs) full for a while,
    /// maybe with a SIGKILL while it is.
    StateDiskFull,
    /// SIGKILLs in quick succession, each a few ms after a start: some
    /// land inside a state write.
    KillStorm,
    // Broker faults.
    /// An outage of a few hundred ms to 2 s: the mock's broker_down and
    /// broker_up; every node of a real cluster SIGKILLed, then started.
    BrokerDown,
    /// The mock: a round-trip time of 50-500 ms for a while. A real
    /// cluster: every node SIGSTOPped for as long, then continued.
    BrokerSlow,
    /// Retriable errors pushed onto Produce requests (the mock's; a real
    /// cluster refuses for real in [`Fault::UnderMinIsr`]).
    RequestErrors,
    /// A real cluster's leader of partition 0 SIGKILLed, then started.
    LeaderKill,
    /// A real cluster's leader of partition 0 SIGSTOPped, maybe past the
    /// session timeout (fenced, leadership moves), then continued.
    LeaderStop,
    /// A real cluster's nodes shut down and started one after another.
    RollingRestart,
    /// Two of a real cluster's three nodes killed: in-sync replicas below
    /// `min.insync.replicas`, writes refused (NOT_ENOUGH_REPLICAS) until
    /// they are back.
    UnderMinIsr,
    /// Partitions added to the topic of a real cluster while cdrship runs.
    PartitionsAdded,
    // stdin / TCP with --spool-dir.
    /// SIGKILL of a spooling stdin/TCP run.
    SpoolKill,
    /// SIGTERM of a spooling run (exit 75 with lines on disk).
    SpoolTerm,
    /// `--spool-max-bytes 256K` with an outage long enough to fill it.
    SpoolFull,
    /// `-f json --header` with a spool (known defect 1).
    SpoolHeader,
}

use Fault::*;

/// Every kind, in table order.
pub const ALL: &[Fault] = &[
    RenameCreate,
    RenameLazy,
    CopyTruncate,
    CopyTruncateOtherName,
    TruncateInPlace,
    DeleteRecreate,
    HeldWriter,
    Bursts,
    PartialLine,
    SameFirstLine,
    HoleWriter,
    Kill,
    Term,
    CorruptState,
    MissingState,
    RotateWhileStopped,
    RotationsWhileStopped,
    InodeReuseWhileStopped,
    ReplayFromCopy,
    FromEnd,
    FromEndCorruptState,
    ExactlyOnce,
    Hangup,
    FirstStartOutage,
    PathSpelling,
    PausedRotations,
    ShrinkWhileStopped,
    StateDiskFull,
    KillStorm,
    BrokerDown,
    BrokerSlow,
    RequestErrors,
    LeaderKill,
    LeaderStop,
    RollingRestart,
    UnderMinIsr,
    PartitionsAdded,
    SpoolKill,
    SpoolTerm,
    SpoolFull,
    SpoolHeader,
];

/// The kinds with a known product defect, out of the CI set until its
/// fix lands: none today. Those that found the defects of issue 13
/// (HeldWriter, CopyTruncateOtherName, SameFirstLine,
/// InodeReuseWhileStopped, FromEndCorruptState, SpoolHeader), the one the
/// explorer found itself (ReplayFromCopy) and those of issue 25
/// (PausedRotations, HoleWriter: a file whose first 4 KiB were a NUL hole
/// had no head identity, so its copies and generations were mistaken for
/// each other) are fixed.
pub const KNOWN_DEFECTS: &[Fault] = &[];

/// The kinds only a real cluster can show (`KAFKA_BROKERS` set).
pub const REAL_CLUSTER: &[Fault] = &[
    LeaderKill,
    LeaderStop,
    RollingRestart,
    UnderMinIsr,
    PartitionsAdded,
];

/// The kinds only the mock can show, with why.
pub const MOCK_ONLY: &[(Fault, &str)] = &[(
    RequestErrors,
    "a real broker cannot be told to fail requests; UnderMinIsr makes it refuse for real",
)];

/// Whether the tests run against a real cluster.
pub fn real_cluster() -> bool {
    std::env::var("KAFKA_BROKERS").is_ok_and(|servers| !servers.is_empty())
}

/// Whether `fault` can happen on this run's broker.
fn possible(fault: Fault) -> bool {
    if real_cluster() {
        !MOCK_ONLY.iter().any(|(f, _)| *f == fault)
    } else {
        !REAL_CLUSTER.contains(&fault)
    }
}

/// The kinds this run's broker cannot show, each with why (printed).
pub fn impossible() -> Vec<String> {
    if real_cluster() {
        MOCK_ONLY
            .iter()
            .map(|(f, why)| format!("{f:?}: {why}"))
            .collect()
    } else {
        REAL_CLUSTER
            .iter()
            .map(|f| {
                format!("{f:?}: needs a real cluster (KAFKA_BROKERS, scripts/kafka up --nodes 3)")
            })
            .collect()
    }
}
/// The set of enabled kinds.
#[derive(Debug, Clone)]
pub struct Enabled(Vec<Fault>);

impl Enabled {
    /// `CDRSHIP_EXPLORE_FAULTS` (`all`, or names such as
    /// `HeldWriter,Kill`), else the CI set: every kind but the
    /// [`KNOWN_DEFECTS`]. Only kinds this run's broker can show.
    pub fn from_env() -> Enabled {
        let Ok(list) = std::env::var("CDRSHIP_EXPLORE_FAULTS") else {
            let ci = ALL.iter().filter(|f| !KNOWN_DEFECTS.contains(f));
            return Enabled(ci.copied().filter(|f| possible(*f)).collect());
        };
        if list.trim() == "all" {
            return Enabled(ALL.iter().copied().filter(|f| possible(*f)).collect());
        }
        let names: Vec<&str> = list.split(',').map(str::trim).collect();
        for name in &names {
            let fault = ALL.iter().find(|f| format!("{f:?}") == *name);
            let fault = fault.unwrap_or_else(|| {
                panic!("CDRSHIP_EXPLORE_FAULTS: unknown fault kind {name}; one of {ALL:?}")
            });
            assert!(
                possible(*fault),
                "CDRSHIP_EXPLORE_FAULTS: {name} cannot happen on this broker: {:?}",
                impossible()
            );
        }
        Enabled(
            ALL.iter()
                .copied()
                .filter(|f| names.contains(&format!("{f:?}").as_str()))
                .collect(),
        )
    }

    /// Whether `fault` is on.
    pub fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    /// The enabled kinds among `kinds`.
    pub fn among(&self, kinds: &[Fault]) -> Vec<Fault> {
        kinds.iter().copied().filter(|k| self.has(*k)).collect()
    }
}
