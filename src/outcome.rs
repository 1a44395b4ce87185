//! The outcome of a run, decided in one place: every line read was
//! delivered, is kept (in the spool, or before the saved file position,
//! so the next start sends it), or is lost; and whether something failed.
//! The exit status and the summary in the log both come from it, so they
//! cannot disagree. [`Ending`] is the one place that maps how a process
//! ended (usage error, start-up failure, a run) to its exit status.

use std::path::PathBuf;

use crate::acker::Counts;

/// Where lines not delivered yet survive the process.
#[derive(Debug, Clone)]
pub enum Keeper {
    /// Nowhere: a pipe or a socket without a spool.
    Nothing,
    /// The durable spool in this directory (all but unspooled lines).
    Spool(PathBuf),
    /// The followed file: the saved position is before every line not
    /// delivered, so the next start reads them again.
    File(PathBuf),
}

/// What became of the lines of one run.
#[derive(Debug)]
pub struct Outcome {
    /// Line totals.
    pub counts: Counts,
    /// Where undelivered lines are kept.
    pub keeper: Keeper,
    /// Why reading stopped early or a delivery failed for good.
    pub error: Option<String>,
    /// Stopped before reading (during `--exactly-once`'s fence or
    /// read-back): the keeper's lines were not looked at.
    pub unread: bool,
}

/// EX_TEMPFAIL: nothing lost, delivery continues at the next start.
const TEMPFAIL: u8 = 75;

/// A usage error (bad options), as clap exits for its own.
const USAGE: u8 = 2;

/// How the process ended.
#[derive(Debug)]
pub enum Ending {
    /// The command line or what it names cannot be used: nothing ran.
    Usage(anyhow::Error),
    /// Starting or running failed before an outcome could be counted.
    Failed(anyhow::Error),
    /// A run, with what became of its lines.
    Ran(Outcome),
}

impl Ending {
    /// Log why it ended; the exit status.
    pub fn exit(self) -> u8 {
        match self {
            Ending::Usage(e) => {
                error!("{e:#}");
                USAGE
            }
            Ending::Failed(e) => {
                error!("{e:#}");
                1
            }
            Ending::Ran(outcome) => outcome.report(),
        }
    }
}

impl Outcome {
    /// A run that stopped before it read anything.
    pub fn nothing(keeper: Keeper) -> Self {
        Outcome {
            counts: Counts::default(),
            keeper,
            error: None,
            unread: false,
        }
    }

    /// A run stopped before it read anything, whose `keeper` may hold
    /// lines not delivered yet (after an unclean stop, or a first start's
    /// file): they wait for the next start.
    pub fn stopped_before_reading(keeper: Keeper) -> Self {
        Outcome {
            unread: true,
            ..Outcome::nothing(keeper)
        }
    }

    /// Lines read and not delivered.
    pub fn undelivered(&self) -> u64 {
        self.counts.sent - self.counts.delivered
    }

    /// Undelivered lines kept nowhere.
    pub fn lost(&self) -> u64 {
        match self.keeper {
            Keeper::Nothing => self.undelivered(),
            Keeper::Spool(_) => self.counts.unspooled,
            Keeper::File(_) => 0,
        }
    }

    /// Undelivered lines the next start sends.
    pub fn kept(&self) -> u64 {
        self.undelivered() - self.lost()
    }

    /// Log the summary; the exit status.
    pub fn report(&self) -> u8 {
        let c = &self.counts;
        info!(
            "{} lines read, {} delivered ({} of them to the reject topic), {} failed",
            c.sent, c.delivered, c.rejected, c.failed
        );
        if c.already > 0 {
            info!(
                "{} of the delivered lines were in Kafka already (sent by the run before, \
                 found by --exactly-once) and were not sent again",
                c.already
            );
        }
        if c.lossy > 0 {
            warn!(
                "{} lines had bytes invalid in --charset; their JSON keeps the original in _raw",
                c.lossy
            );
        }
        if c.longer > 0 {
            warn!(
                "{} records went on past their fixed-width layout; the bytes past it are not in their JSON (does the layout match the PBX's?)",
                c.longer
            );
        }
        if c.keyless > 0 {
            warn!(
                "{} lines had an empty --key field and were sent without a key",
                c.keyless
            );
        }
        let (kept, lost) = (self.kept(), self.lost());
        match &self.keeper {
            Keeper::Spool(dir) if self.unread => warn!(
                "stopped before reading: what the spool {} holds is sent at the next start",
                dir.display()
            ),
            Keeper::File(path) if self.unread => warn!(
                "stopped before reading: {} is read from its saved position at the next start",
                path.display()
            ),
            Keeper::Spool(dir) if kept > 0 => warn!(
                "{kept} lines not delivered yet are kept in the spool {}; the next start sends them first",
                dir.display()
            ),
            Keeper::File(path) if kept > 0 => warn!(
                "{kept} lines not delivered yet are read again from {} at the next start (the saved position is before them)",
                path.display()
            ),
            _ => {}
        }
        if c.damaged > 0 {
            let spool = match &self.keeper {
                Keeper::Spool(dir) => format!(" {}", dir.display()),
                _ => String::new(),
            };
            error!(
                "{} lines an earlier run spooled are lost: damage in the spool{spool} \
                 cost their records (its errors above say where)",
                c.damaged
            );
        }
        match (&self.error, lost) {
            (None, 0) => {}
            (None, lost) => match &self.keeper {
                // Read, but the disk had no room for their records.
                Keeper::Spool(dir) => error!(
                    "{lost} of {} lines not delivered and lost: the spool {} could not write them by the shutdown timeout",
                    c.sent,
                    dir.display()
                ),
                _ => error!("{lost} of {} lines not delivered: shutdown timeout", c.sent),
            },
            // Nothing lost, but reading failed.
            (Some(why), 0) if kept == 0 => error!("{why}"),
            (Some(why), 0) => error!("{kept} of {} lines not delivered: {why}", c.sent),
            (Some(why), lost) => {
                error!("{lost} of {} lines not delivered and lost: {why}", c.sent)
            }
        }
        self.status()
    }

    /// The exit status: 0 when every line was delivered; 75 when the
    /// undelivered ones are all kept and nothing failed (or the run
    /// stopped before reading what its keeper holds); 1 when lines were
    /// lost (also lines an earlier run spooled, to damage in the spool)
    /// or something failed.
    pub fn status(&self) -> u8 {
        let lost = self.lost() + self.counts.damaged;
        let unread = self.unread && !matches!(self.keeper, Keeper::Nothing);
        match (&self.error, lost, self.kept()) {
            (None, 0, 0) if unread => TEMPFAIL,
            (None, 0, 0) => 0,
            (None, 0, _) => TEMPFAIL,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(keeper: Keeper, error: Option<&str>, counts: [u64; 3]) -> Outcome {
        let [sent, delivered, unspooled] = counts;
        Outcome {
            counts: Counts {
                sent,
                delivered,
                unspooled,
                ..Counts::default()
            },
            keeper,
            error: error.map(str::to_owned),
            unread: false,
        }
    }

    #[test]
    fn a_stop_before_reading_a_keeper_is_a_temporary_failure() {
        let file = Outcome::stopped_before_reading(Keeper::File("Master.csv".into()));
        assert_eq!(file.status(), TEMPFAIL);
        let spool = Outcome::stopped_before_reading(Keeper::Spool("spool".into()));
        assert_eq!(spool.status(), TEMPFAIL);
        assert_eq!(Outcome::nothing(Keeper::Nothing).status(), 0);
    }

    #[test]
    fn the_status_follows_where_undelivered_lines_are() {
        let spool = || Keeper::Spool("spool".into());
        let file = || Keeper::File("Master.csv".into());
        let cases = [
            (Keeper::Nothing, None, [5, 5, 0], 0, 0),
            (Keeper::Nothing, None, [5, 3, 0], 1, 2),
            (spool(), None, [5, 5, 0], 0, 0),
            (spool(), None, [5, 1, 0], TEMPFAIL, 0),
            (spool(), None, [5, 1, 1], 1, 1),
            (file(), None, [5, 0, 0], TEMPFAIL, 0),
            (file(), Some("refused"), [5, 0, 0], 1, 0),
            (spool(), Some("reading failed"), [5, 5, 0], 1, 0),
        ];
        let mut damaged = outcome(spool(), None, [5, 5, 0]);
        damaged.counts.damaged = 2;
        assert_eq!((damaged.status(), damaged.lost()), (1, 0));
        for (keeper, error, counts, status, lost) in cases {
            let o = outcome(keeper.clone(), error, counts);
            assert_eq!(
                (o.status(), o.lost()),
                (status, lost),
                "{keeper:?} {error:?} {counts:?}"
            );
            assert_eq!(o.kept() + o.lost(), counts[0] - counts[1]);
        }
    }
}
