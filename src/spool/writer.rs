//! The spool's segment I/O: the segments on disk with their sizes, the
//! records appended but not written yet, the writes themselves (one
//! `write(2)` per batch, retried at the same place after a failure), new
//! segments, and what the next sync must flush. What to append and when
//! to free space is the spool API's (`mod.rs`).

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::record;
use super::segment::{remove, segment_path, Segment};
use super::AppendError;
use crate::position::{FileId, Mark};

/// Appended bytes kept before they are written even without a batch end
/// (many TCP connections append between their batch ends).
const PENDING_BYTES: usize = 256 << 10;

/// The segments and the one written to.
#[derive(Debug)]
pub(super) struct Writer {
    dir: PathBuf,
    /// Oldest first; the last one is written to while `file` is open.
    segments: VecDeque<Segment>,
    pub(super) file: Option<File>,
    /// Records appended to the last segment but not written yet; counted
    /// in its size, so marks are final when appended.
    pending: Vec<u8>,
    /// The last write failed: the rest of `pending` is retried, and new
    /// records are refused until it is written.
    pub(super) failing: bool,
    /// A failed write could not be cut back: `pending` starts with the
    /// rest of a record partly in the file.
    mid_record: bool,
    /// The next segment's number (never reused).
    next: u32,
    /// Bytes of all segments.
    total: u64,
    /// Rolled-away segments whose last records the next sync flushes.
    pub(super) rolled: Vec<File>,
    /// A segment was created since the last sync: the directory entry
    /// needs a sync too, or a power loss can drop the whole file.
    pub(super) new_entry: bool,
}

/// What a sync flushes: taken from the writer, given back if it fails.
pub(super) struct Unsynced {
    rolled: Vec<File>,
    current: Option<File>,
    new_entry: bool,
}

impl Writer {
    /// The writer of `segments` in `dir`; new ones are numbered from `next`.
    pub(super) fn new(dir: &Path, segments: Vec<Segment>, next: u32) -> Self {
        Writer {
            dir: dir.to_owned(),
            total: segments.iter().map(|s| s.size).sum(),
            segments: segments.into(),
            file: None,
            pending: Vec::new(),
            failing: false,
            mid_record: false,
            next,
            rolled: Vec::new(),
            new_entry: false,
        }
    }

    /// Write `pending` to the last segment. On failure the file is cut
    /// back to the last whole record written (a disk that filled mid-write
    /// leaves no torn record), the whole records the kernel took leave
    /// `pending`, and the rest stays for a retry at the same place.
    pub(super) fn write_pending(&mut self) -> std::io::Result<()> {
        // Where the file ends now.
        let start = self.on_disk();
        let Some(file) = self.file.as_mut().filter(|_| !self.pending.is_empty()) else {
            return Ok(());
        };
        let mut written = 0;
        let result = loop {
            if written == self.pending.len() {
                break Ok(());
            }
            match file.write(&self.pending[written..]) {
                Ok(0) => break Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let Err(e) = result else {
            self.pending.clear();
            self.mid_record = false;
            if std::mem::take(&mut self.failing) {
                info!("spool: writing works again");
            }
            return Ok(());
        };
        // A failed cut keeps the torn bytes: the retry then completes
        // that record where it stopped (and `pending` starts mid-record
        // until a write succeeds, so it is not cut again by records).
        let whole = record::whole(&self.pending[..written]);
        let kept = match self.mid_record {
            false if file.set_len(start + whole as u64).is_ok() => whole,
            _ => {
                self.mid_record |= whole < written;
                written
            }
        };
        self.pending.drain(..kept);
        let e = self.describe(e);
        if !std::mem::replace(&mut self.failing, true) {
            warn!("spool: {e}; lines wait until it takes them");
        }
        Err(e)
    }

    /// `e` from writing the last segment, saying where; a full disk as such.
    fn describe(&self, e: std::io::Error) -> std::io::Error {
        let path = self
            .segments
            .back()
            .map_or_else(|| self.dir.clone(), |s| segment_path(&self.dir, s.number));
        let what = match e.kind() {
            std::io::ErrorKind::StorageFull => "disk full at",
            std::io::ErrorKind::QuotaExceeded => "disk quota used up at",
            _ => "writing failed at",
        };
        std::io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
    }

    /// Bytes of the last segment in its file: all but `pending`.
    fn on_disk(&self) -> u64 {
        let size = self.segments.back().map_or(0, |s| s.size);
        size - self.pending.len() as u64
    }

    /// Whether the record ending at `mark` is written (in the kernel's
    /// hands, so a SIGKILL keeps it; the sync makes it survive power loss).
    pub(super) fn written_through(&self, mark: Mark) -> bool {
        let last = self.segments.back().map(|s| s.number);
        match self.segments.iter().find(|s| s.number == mark.generation) {
            // Only the last segment has records not written yet.
            Some(s) if Some(s.number) == last => mark.offset <= self.on_disk(),
            Some(s) => mark.offset <= s.size,
            // Deleted: wholly delivered.
            None => true,
        }
    }

    /// Drop the records not written (the disk had no room for them by
    /// the shutdown timeout): their lines are not kept. The segment is
    /// closed at its last whole record, so no later record takes their
    /// places (a mark names one record only). The bytes dropped.
    pub(super) fn abandon(&mut self) -> u64 {
        let dropped = self.pending.len() as u64;
        if let Some(file) = self.file.take() {
            self.rolled.push(file);
        }
        self.pending.clear();
        self.failing = false;
        if let Some(segment) = self.segments.back_mut() {
            segment.size -= dropped;
        }
        self.total -= dropped;
        dropped
    }

    /// Whether the next record needs a new segment (none open, or the
    /// last one reached `segment_bytes`).
    pub(super) fn must_roll(&self, segment_bytes: u64) -> bool {
        self.file.is_none() || self.segments.back().is_none_or(|s| s.size >= segment_bytes)
    }

    /// Start the next segment, beginning with `copies` (the live sources'
    /// header records).
    pub(super) fn roll<'a>(
        &mut self,
        copies: impl Iterator<Item = &'a Vec<u8>>,
    ) -> Result<(), AppendError> {
        // The last segment's records first: they belong to its file.
        self.write_pending().map_err(AppendError::Io)?;
        let number = self.next;
        let path = segment_path(&self.dir, number);
        let file = File::options()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(AppendError::Io)?;
        let id = FileId::of(&file.metadata().map_err(AppendError::Io)?);
        self.next += 1;
        self.segments.push_back(Segment {
            number,
            size: 0,
            id,
        });
        if let Some(old) = self.file.replace(file) {
            self.rolled.push(old);
        }
        self.new_entry = true;
        for record in copies {
            self.add(record);
        }
        Ok(())
    }

    /// Append `record` to the last segment; the position after it.
    pub(super) fn add(&mut self, record: &[u8]) -> Mark {
        self.pending.extend_from_slice(record);
        if self.pending.len() >= PENDING_BYTES {
            // A failure is kept in `failing`: the next append retries.
            let _ = self.write_pending();
        }
        let segment = self.segments.back_mut().expect("the writer's segment");
        segment.size += record.len() as u64;
        self.total += record.len() as u64;
        Mark {
            generation: segment.number,
            offset: segment.size,
        }
    }

    /// The segment numbered `number`, if it is still kept.
    pub(super) fn segment(&self, number: u32) -> Option<Segment> {
        self.segments.iter().find(|s| s.number == number).copied()
    }

    /// The oldest segment's number, if any is kept.
    pub(super) fn oldest(&self) -> Option<u32> {
        self.segments.front().map(|s| s.number)
    }

    /// Delete the segments before `number` (wholly delivered).
    pub(super) fn remove_before(&mut self, number: u32) {
        while let Some(old) = self.segments.front().filter(|s| s.number < number) {
            let old = *old;
            remove(&segment_path(&self.dir, old.number));
            self.total -= old.size;
            self.segments.pop_front();
        }
    }

    /// Bytes of segments on disk.
    pub(super) fn total(&self) -> u64 {
        self.total
    }

    /// Write what is pending and take what the sync must flush.
    /// A failed write is no sync failure: it is logged and retried, and
    /// what it could not write is not claimed kept.
    pub(super) fn unsynced(&mut self) -> std::io::Result<Unsynced> {
        let _ = self.write_pending();
        Ok(Unsynced {
            current: self.file.as_ref().map(File::try_clone).transpose()?,
            rolled: std::mem::take(&mut self.rolled),
            new_entry: std::mem::take(&mut self.new_entry),
        })
    }

    /// A sync of `unsynced` failed: the next one flushes it again.
    pub(super) fn sync_failed(&mut self, unsynced: Unsynced) {
        self.rolled.extend(unsynced.rolled);
        self.new_entry |= unsynced.new_entry;
    }
}

impl Unsynced {
    /// Flush the records to the disk, and the directory entry of a new
    /// segment.
    pub(super) fn flush(&self, dir: &Path) -> std::io::Result<()> {
        for file in self.rolled.iter().chain(&self.current) {
            file.sync_data()?;
        }
        if self.new_entry {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}
