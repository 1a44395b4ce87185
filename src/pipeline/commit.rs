//! The one committer: it saves how far delivery got, for whichever keeps
//! the undelivered lines (the followed file's progress, or the spool), as
//! the tracker's watermark moves, and once more at shutdown. Nothing else
//! writes a checkpoint.
//!
//! Saves (with their fsyncs) run on a blocking thread, so a slow disk
//! delays the checkpoint, never the reading. A failing save while running
//! is logged, not fatal: the worst outcome is re-sending lines after a
//! restart; the last save at shutdown decides the outcome. A lost lock
//! (checked with each save and on every change in its directory) is
//! fatal: another process may own the position now, so the run stops and
//! saves nothing more.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use anyhow::{Context as _, Result};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::acker::Tracker;
use crate::checkpoint::{Lock, LockLost, Progress, Settled};
use crate::outcome::Keeper;
use crate::spool::Spool;

/// What keeps lines not delivered yet, and so what is committed.
#[derive(Debug, Clone)]
pub enum Kept {
    /// Nothing: a pipe or a socket without a spool, or a file without
    /// `--state-dir`.
    Nothing,
    /// The followed file, re-read from the saved progress.
    File(Arc<Progress>),
    /// The spool, replayed from its saved position.
    Spool(Arc<Spool>),
}

impl Kept {
    /// The lock held on what keeps the lines, if anything does.
    fn lock(&self) -> Option<&Lock> {
        match self {
            Kept::Nothing => None,
            Kept::File(progress) => Some(progress.lock()),
            Kept::Spool(spool) => Some(spool.lock()),
        }
    }

    /// Where the outcome finds the lines not delivered.
    pub fn keeper(&self) -> Keeper {
        match self {
            Kept::Nothing => Keeper::Nothing,
            Kept::File(progress) => Keeper::File(progress.followed().to_owned()),
            Kept::Spool(spool) => Keeper::Spool(spool.dir().to_owned()),
        }
    }
}

/// Saves the delivered position of [`Kept`].
#[derive(Debug, Clone)]
pub struct Committer {
    kept: Kept,
    tracker: Arc<Tracker>,
}

/// How soon spooled records are flushed to the disk after they are written
/// (power-loss safety), and how often the lock is checked where its
/// directory cannot be watched.
const TICK: Duration = Duration::from_secs(1);

impl Committer {
    /// A committer of `kept`, following `tracker`'s watermark.
    pub fn new(kept: Kept, tracker: Arc<Tracker>) -> Self {
        Committer { kept, tracker }
    }

    /// Commit as the watermark moves, check the lock when its directory
    /// changes, and sync the spool within a second of a write, until
    /// `stop`; a commit under way is finished first. An idle follower or
    /// spool wakes for none of it.
    pub async fn run(self, stop: CancellationToken) {
        let Some(lock) = self.kept.lock() else {
            return;
        };
        let changed = Arc::new(Notify::new());
        // Without events the lock is checked every second.
        let watched = lock.watch(changed.clone());
        let mut ticker = tokio::time::interval(TICK);
        let mut sync_at = None;
        // A failure said once, not at every commit while it lasts.
        let mut failing: Option<String> = None;
        loop {
            let sync_due = async {
                match sync_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let mut saving = false;
            let done = tokio::select! {
                () = self.tracker.wait_advanced() => {
                    saving = true;
                    self.off_thread(Self::commit).await
                }
                () = changed.notified() => self.off_thread(Self::check_lock).await,
                () = self.written(), if sync_at.is_none() => {
                    sync_at = Some(Instant::now() + TICK);
                    continue;
                }
                () = sync_due => {
                    let synced = self.off_thread(Self::sync_spool).await;
                    // A failed sync is tried again in a second.
                    sync_at = synced.is_err().then(|| Instant::now() + TICK);
                    synced
                }
                _ = ticker.tick(), if watched.is_none() => self.off_thread(Self::check_lock).await,
                () = stop.cancelled() => return,
            };
            match done {
                Err(e) if e.downcast_ref::<LockLost>().is_some() => {
                    return self.tracker.halt(format!("{e:#}"));
                }
                Err(e) => {
                    let said = format!("{e:#}");
                    if failing.as_ref() != Some(&said) {
                        warn!("{said} (said once while it lasts)");
                        failing = Some(said);
                    }
                }
                Ok(()) if saving && failing.is_some() => {
                    failing = None;
                    info!("saving progress works again");
                }
                Ok(()) => {}
            }
        }
    }

    /// Records were written to the spool since it was last synced; never,
    /// for a followed file.
    async fn written(&self) {
        match &self.kept {
            Kept::Spool(spool) => spool.added().await,
            _ => std::future::pending().await,
        }
    }

    /// The spool's new records are on the disk, and the lock still held.
    fn sync_spool(&self) -> Result<()> {
        self.check_lock()?;
        self.sync().context("spool: flushing to disk failed")
    }

    /// The lock is still held.
    fn check_lock(&self) -> Result<()> {
        match self.kept.lock() {
            Some(lock) => Ok(lock.check()?),
            None => Ok(()),
        }
    }

    /// The last commit, at shutdown: everything delivered is saved, and
    /// the spool is on the disk.
    pub fn finish(&self) -> Result<()> {
        self.commit_as(true)?;
        self.sync().context("syncing the spool")
    }

    /// Run `step` on a blocking thread.
    async fn off_thread(&self, step: fn(&Self) -> Result<()>) -> Result<()> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || step(&this))
            .await
            .context("the committer's thread")?
    }

    /// Save the watermark (the spool also deletes wholly delivered segments).
    fn commit(&self) -> Result<()> {
        self.commit_as(false)
    }

    /// Save the watermark; `last` at shutdown.
    fn commit_as(&self, last: bool) -> Result<()> {
        match &self.kept {
            Kept::Nothing => Ok(()),
            Kept::File(progress) => progress.save(&self.tracker, last),
            Kept::Spool(spool) => {
                // Passed first: the watermark read after it is at or past it.
                let settled = Settled {
                    passed: self.tracker.passed(),
                    clean: last && self.tracker.all_settled(),
                };
                spool.commit(self.tracker.watermark(), &settled)
            }
        }
    }

    /// Flush spooled records to the disk.
    fn sync(&self) -> Result<()> {
        match &self.kept {
            Kept::Spool(spool) => Ok(spool.sync()?),
            _ => Ok(()),
        }
    }
}
