//! The durable spool for stdin and TCP: lines that exist nowhere else (a
//! PBX has no application-level acknowledgement, a pipe cannot replay)
//! are appended to a local segment log before they are produced, and
//! dropped from it only once Kafka acknowledged them.
//!
//! Segments are numbered files (`00000000000000000042.seg`); a record's
//! position is a [`Mark`] whose generation is the segment number, so the
//! tracker's in-order watermark says how far the spool is delivered. That
//! watermark is saved as the spool's own position record (segment and
//! offset, `delivered.rs`); segments wholly before it are deleted. On start the rest is
//! the [`Backlog`], produced before any new line.
//!
//! Appends are collected and written with one `write(2)` per batch, which
//! the sink does before it produces that batch: a line is produced only
//! once its record reached the kernel, so a SIGKILL never loses a line that
//! was produced and not yet acknowledged, and a write the disk refuses
//! holds the batch (and the reading) back until there is room. Records are
//! fsynced within a second by the pipeline: a power loss can tear the last
//! ones, which the checksum catches on replay, or leave damage amid whole
//! records, which replay skips to the next whole record (`damage.rs`).

mod damage;
mod delivered;
mod exactly;
mod record;
mod replay;
mod room;
mod segment;
mod writer;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::sync::Notify;

use delivered::Delivered;
pub use replay::{Backlog, Replayed};
use room::Reserve;
use segment::{list, remove, segment_path};
use writer::Writer;

use crate::checkpoint::{self, Lock, Previous, ReadBack, Settled, Store};
use crate::framing::Frame;
use crate::position::Mark;
use crate::sync::lock;

/// Why a line could not be spooled (yet).
#[derive(Debug)]
pub enum AppendError {
    /// `--spool-max-bytes` reached: wait for deliveries to free segments.
    Full,
    /// Writing failed (disk full, I/O error), and appended records still
    /// wait to be written: retry later. Or, after the shutdown timeout
    /// dropped what the disk refused, for good.
    Io(std::io::Error),
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::Full => write!(f, "spool full (--spool-max-bytes)"),
            AppendError::Io(e) => write!(f, "writing to the spool failed: {e}"),
        }
    }
}

#[derive(Debug)]
struct Inner {
    writer: Writer,
    scratch: Vec<u8>,
    committed: Option<Mark>,
    /// The record saved last (a save that changes nothing is skipped).
    saved: Option<Delivered>,
    /// The shutdown timeout dropped records the disk refused: no more
    /// lines are taken (their marks must name no later record).
    abandoned: bool,
    /// The `--header` line of each source still reading, as encoded
    /// records: each new segment starts with them, so replay from any
    /// segment maps a source's lines by its own header.
    headers: HashMap<String, Vec<u8>>,
}

/// An open spool directory (exclusively locked by this process).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    store: Store,
    max_bytes: u64,
    segment_bytes: u64,
    inner: Mutex<Inner>,
    /// Held while the delivered position is saved.
    saving: Mutex<()>,
    /// Space kept for saving the position on a full disk.
    reserve: Reserve,
    /// Set while an append was refused for space; cleared when space frees.
    full: AtomicBool,
    freed: Notify,
    /// Records were added since the committer last waited for them.
    added: Notify,
    /// Held for the life of the spool: one process per directory.
    lock: Lock,
    /// Names this spool in line ids: `spool:dev:ino` of its directory.
    identity: String,
    /// What the last run saved, for `--exactly-once`.
    previous: Previous,
    /// With `--exactly-once`: the read-back's side of each save.
    read_back: Option<ReadBack>,
}

impl Spool {
    /// Open (or create) the spool in `dir`; returns it with the lines a
    /// previous run left unacknowledged.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Spool, Backlog)> {
        fs::create_dir_all(dir)
            .with_context(|| format!("creating spool directory {}", dir.display()))?;
        let dir_lock = checkpoint::lock(&dir.join("lock"), || {
            format!(
                "spool {} is in use by another cdrship (one process per spool directory)",
                dir.display()
            )
        })?;
        let store = Store::new(dir, Path::new("spool"))?;
        // Failing every start would be a crash loop under `Restart=`;
        // replaying everything re-sends delivered lines, never skips one.
        let (saved, previous) = match Delivered::load(&store) {
            Ok(None) => (None, Previous::Fresh),
            Ok(Some(saved)) => {
                let written = saved.written.clone();
                (Some(saved), Previous::Saved(written))
            }
            Err(e) => {
                warn!("{e:#}; replaying the spool from its oldest segment (delivered lines may be sent again)");
                (None, Previous::Saved(None))
            }
        };
        let mut segments = list(dir)?;
        let committed = saved.as_ref().and_then(|saved| saved.mark(dir, &segments));
        // Wholly delivered segments go; the rest is the backlog.
        let done = committed.map_or(0, |m| m.generation);
        for segment in segments.iter().filter(|s| s.number < done) {
            remove(&segment_path(dir, segment.number));
        }
        segments.retain(|s| s.number >= done);
        let backlog = Backlog::new(
            dir,
            segments
                .iter()
                .map(|s| match committed {
                    Some(m) if m.generation == s.number => (s.number, m.offset),
                    _ => (s.number, 0),
                })
                .collect(),
        );
        let next = segments
            .last()
            .map(|s| s.number + 1)
            // Numbers are never reused, so a saved position cannot name a
            // future segment.
            .max(committed.map(|m| m.generation + 1))
            .unwrap_or(0);
        let spool = Spool {
            dir: dir.to_owned(),
            store,
            max_bytes,
            segment_bytes: room::segment_bytes(dir, max_bytes),
            inner: Mutex::new(Inner {
                writer: Writer::new(dir, segments, next),
                scratch: Vec::new(),
                committed,
                saved,
                abandoned: false,
                headers: HashMap::new(),
            }),
            saving: Mutex::new(()),
            reserve: Reserve::new(dir),
            full: AtomicBool::new(false),
            freed: Notify::new(),
            added: Notify::new(),
            lock: dir_lock,
            identity: exactly::identity(dir)?,
            previous,
            read_back: None,
        };
        spool.reserve.keep();
        Ok((spool, backlog))
    }

    /// Append `frame` read from `source`; its position. The record is
    /// written by the next [`write`](Self::write) (or once enough wait).
    pub fn append(&self, frame: Frame<'_>, source: &str) -> Result<Mark, AppendError> {
        self.push(frame, source, false, false)
    }

    /// [`append`](Self::append) beyond `--spool-max-bytes`: at shutdown
    /// the lines already read are kept, whatever the limit says (only a
    /// failing disk refuses them).
    pub fn append_beyond_limit(&self, frame: Frame<'_>, source: &str) -> Result<Mark, AppendError> {
        self.push(frame, source, false, true)
    }

    /// Append `source`'s `--header` line (no message of its own: replay
    /// learns the source's columns from it). Every later segment starts
    /// with it again until [`forget`](Self::forget).
    pub fn header(&self, frame: Frame<'_>, source: &str) -> Result<(), AppendError> {
        self.push(frame, source, true, false).map(drop)
    }

    /// `source` ended: its header is not copied into new segments anymore.
    pub fn forget(&self, source: &str) {
        lock(&self.inner).headers.remove(source);
    }

    fn push(
        &self,
        frame: Frame<'_>,
        source: &str,
        header: bool,
        beyond_limit: bool,
    ) -> Result<Mark, AppendError> {
        let mut inner = lock(&self.inner);
        let inner = &mut *inner;
        if inner.abandoned {
            let gone = "the disk had no room for the spool by the shutdown timeout";
            return Err(AppendError::Io(std::io::Error::other(gone)));
        }
        if inner.writer.failing {
            inner.writer.write_pending().map_err(AppendError::Io)?;
        }
        inner.scratch.clear();
        record::encode(frame, source, header, &mut inner.scratch);
        let size = inner.scratch.len() as u64;
        let total = inner.writer.total();
        if !beyond_limit && total > 0 && total + size > self.max_bytes {
            self.full.store(true, Ordering::Release);
            return Err(AppendError::Full);
        }
        if inner.writer.must_roll(self.segment_bytes) {
            inner.writer.roll(inner.headers.values())?;
        }
        if header {
            inner
                .headers
                .insert(source.to_owned(), inner.scratch.clone());
        }
        let mark = inner.writer.add(&inner.scratch);
        self.added.notify_one();
        Ok(mark)
    }

    /// Wait until a record is added (the committer then syncs it soon).
    pub async fn added(&self) {
        self.added.notified().await;
    }

    /// The spool's lock, to watch.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// Record that every line up to `mark` is delivered: save it (with
    /// what `settled` says, under `--exactly-once`), delete the segments
    /// before it.
    pub fn commit(&self, mark: Option<Mark>, settled: &Settled) -> Result<()> {
        // One save at a time: they share the state file's temp file.
        let _saving = lock(&self.saving);
        // Another process may own the spool now: nothing more is saved.
        self.lock.check()?;
        let (mark, record) = {
            let inner = lock(&self.inner);
            let Some(mark) = mark.or(inner.committed) else {
                return Ok(());
            };
            // A watermark's segment is kept until a save passes it; the
            // position loaded at start may name one deleted before a
            // crash (see `save`): then nothing new is known to save.
            let Some(segment) = inner.writer.segment(mark.generation) else {
                return Ok(());
            };
            let record = Delivered::new(mark, &segment, self.written(mark, settled));
            if inner.saved.as_ref() == Some(&record) {
                return Ok(());
            }
            (mark, record)
        };
        self.save(&record, mark)?;
        let mut inner = lock(&self.inner);
        inner.committed = Some(mark);
        inner.saved = Some(record);
        inner.writer.remove_before(mark.generation);
        if inner.writer.total() < self.max_bytes && self.full.swap(false, Ordering::AcqRel) {
            info!("spool has room again");
        }
        drop(inner);
        self.freed.notify_waiters();
        Ok(())
    }

    /// Write and flush appended records to the disk (power-loss safety):
    /// the segments rolled away since the last sync, the current one, and
    /// the directory when a segment was created. What fails is retried by
    /// the next sync.
    pub fn sync(&self) -> std::io::Result<()> {
        let unsynced = lock(&self.inner).writer.unsynced()?;
        let result = unsynced.flush(&self.dir);
        if result.is_err() {
            lock(&self.inner).writer.sync_failed(unsynced);
        }
        result
    }

    /// Wait until deliveries free space, at most `limit`.
    pub async fn wait_room(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.freed.notified()).await;
    }

    /// Whether appends are being refused for space.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Acquire)
    }

    /// Bytes of segments on disk.
    pub fn bytes(&self) -> u64 {
        lock(&self.inner).writer.total()
    }

    /// The spool directory (for messages).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests;
