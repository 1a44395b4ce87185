//! Room for the spool on a disk that may fill up: a line is kept once its
//! record is written, not when it is appended (what the disk refused by
//! the shutdown timeout is dropped and counted lost by the caller);
//! segments small enough for the disk they are on (space is freed a whole
//! delivered segment at a time, and the segment written to is never
//! freed); and a position save that frees delivered segments first and
//! then a reserve file, when the disk has no room for it. When to save is
//! the spool API's (`mod.rs`).

use std::ffi::CString;
use std::fs::{self, File};
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::delivered::Delivered;
use super::Spool;
use crate::position::Mark;
use crate::sync::lock;

/// Largest segment; the spool frees space a segment at a time.
const SEGMENT_BYTES: u64 = 4 << 20;
/// Smallest segment (`--spool-max-bytes` is at least 4 of them).
const MIN_SEGMENT_BYTES: u64 = 64 << 10;
/// Size of the reserve: a few saves of the position (a block each).
const RESERVE_BYTES: usize = 16 << 10;

/// Segment size for a spool of `max_bytes` in `dir`: an eighth of the
/// limit or of the file system, whichever is smaller, so a full disk
/// holds several segments and delivered ones can be freed.
pub(super) fn segment_bytes(dir: &Path, max_bytes: u64) -> u64 {
    let room = file_system_bytes(dir).map_or(max_bytes, |fs| fs.min(max_bytes));
    (room / 8).clamp(MIN_SEGMENT_BYTES, SEGMENT_BYTES)
}

/// Size of the file system holding `dir`, if it says.
fn file_system_bytes(dir: &Path) -> Option<u64> {
    let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs only writes the struct it is given; zeroes are a
    // valid value of it.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    // Both are narrower than u64 on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let (blocks, size) = (u64::from(stat.f_blocks), u64::from(stat.f_frsize));
    Some(blocks.saturating_mul(size))
}

/// A file of zeros in the spool directory whose blocks a position save
/// can have when the disk is full and no delivered segment is left to
/// free: without a save, nothing is freed and a restart re-sends lines.
#[derive(Debug)]
pub(super) struct Reserve {
    path: PathBuf,
}

impl Reserve {
    /// The reserve of the spool in `dir` (made by [`keep`](Self::keep)).
    pub(super) fn new(dir: &Path) -> Self {
        Reserve {
            path: dir.join("reserve"),
        }
    }

    /// Make the reserve if it is missing; a disk without room for it
    /// gets none (tried again at the next save).
    pub(super) fn keep(&self) {
        if self.path.exists() {
            return;
        }
        let made = || -> std::io::Result<()> {
            let mut file = File::create(&self.path)?;
            file.write_all(&[0; RESERVE_BYTES])?;
            file.sync_all()
        };
        if made().is_err() {
            // Half a reserve would hold space and not be counted on.
            let _ = fs::remove_file(&self.path);
        }
    }

    /// Give the reserve's space back to the file system; whether there
    /// was one.
    pub(super) fn release(&self) -> bool {
        fs::remove_file(&self.path).is_ok()
    }
}

impl Spool {
    /// Write the appended records (one `write(2)` for all of them);
    /// whether the record ending at `mark` is written now. The sink
    /// produces a line only once it is: a line is kept when its record is
    /// on disk, not when it is appended.
    pub fn on_disk(&self, mark: Mark) -> bool {
        let mut inner = lock(&self.inner);
        // A failure is the writer's to log and retry.
        let _ = inner.writer.write_pending();
        inner.writer.written_through(mark)
    }

    /// The shutdown timeout came while the disk refused records: drop the
    /// ones not written (their lines are lost, which the caller counts)
    /// and take no more.
    pub fn abandon_unwritten(&self) {
        let mut inner = lock(&self.inner);
        let dropped = inner.writer.abandon();
        if !inner.abandoned && dropped > 0 {
            error!(
                "spool: the disk had no room for {dropped} bytes of records by the shutdown timeout; their lines are lost"
            );
        }
        inner.abandoned = true;
    }

    /// Save `record`, the position `mark`. A full disk has no room for the
    /// new state file: the segments wholly before `mark` (delivered) are
    /// deleted first, then the reserve is given up, each followed by
    /// another try. Deleting before the save is safe: a crash before it
    /// leaves the older position, which names a deleted segment, so the
    /// next start replays every segment left from its start (lines sent
    /// again, never skipped).
    pub(super) fn save(&self, record: &Delivered, mark: Mark) -> Result<()> {
        let Err(refused) = self.store.save(record) else {
            self.reserve.keep();
            return Ok(());
        };
        let freed = {
            let mut inner = lock(&self.inner);
            let before = inner.writer.total();
            inner.writer.remove_before(mark.generation);
            before - inner.writer.total()
        };
        if freed > 0 {
            // Writes that wait for room may go on, saved or not.
            self.freed.notify_waiters();
            if self.store.save(record).is_ok() {
                return Ok(());
            }
        }
        if self.reserve.release() && self.store.save(record).is_ok() {
            warn!(
                "spool: {refused:#}; saved in the space reserved for it ({})",
                self.dir.display()
            );
            return Ok(());
        }
        Err(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_fit_the_limit_and_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let disk = file_system_bytes(dir.path()).expect("a file system size");
        assert!(disk > 0);
        assert_eq!(segment_bytes(dir.path(), 512 << 10), 64 << 10);
        assert_eq!(segment_bytes(dir.path(), 1 << 20), 128 << 10);
        let big = segment_bytes(dir.path(), 1 << 40);
        assert_eq!(big, (disk / 8).clamp(MIN_SEGMENT_BYTES, SEGMENT_BYTES));
    }

    #[test]
    fn a_reserve_is_made_once_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let reserve = Reserve::new(dir.path());
        assert!(!reserve.release());
        reserve.keep();
        let len = fs::metadata(dir.path().join("reserve")).unwrap().len();
        assert_eq!(len, RESERVE_BYTES as u64);
        assert!(reserve.release());
        assert!(!dir.path().join("reserve").exists());
    }
}
