//! The spool's segment files on disk: their names, the listing at start,
//! the directory lock, and which saved position still names a segment.
//! Reading and writing records is the spool's (`mod.rs`) and replay's.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::acker::Mark;
use crate::checkpoint::{FileId, State};

/// One segment file on disk.
#[derive(Debug, Clone, Copy)]
pub(super) struct Segment {
    pub(super) number: u32,
    pub(super) size: u64,
    pub(super) id: FileId,
}

/// Take the directory's lock file, or say who holds it.
pub(super) fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join("lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => anyhow::bail!(
            "spool {} is in use by another cdrship (one process per spool directory)",
            dir.display()
        ),
        Err(fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

pub(super) fn segment_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("{number:020}.seg"))
}

/// Segments in `dir`, oldest first.
pub(super) fn list(dir: &Path) -> Result<Vec<Segment>> {
    let mut segments = Vec::new();
    let entries = fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let Some(number) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        let meta = entry
            .metadata()
            .with_context(|| format!("reading {}", entry.path().display()))?;
        segments.push(Segment {
            number,
            size: meta.len(),
            id: FileId::of(&meta),
        });
    }
    segments.sort_by_key(|s| s.number);
    Ok(segments)
}

/// The saved position, if it still names a segment on disk (the same
/// file: a segment number is never reused, the inode check is a guard).
pub(super) fn committed_mark(state: &State, segments: &[Segment]) -> Option<Mark> {
    let number = state
        .path
        .file_name()?
        .to_str()?
        .strip_suffix(".seg")?
        .parse()
        .ok()?;
    let mark = Mark {
        generation: number,
        offset: state.offset,
    };
    match segments.iter().find(|s| s.number == number) {
        Some(s) if s.id.same_inode(&state.file) => Some(mark),
        Some(_) => {
            warn!(
                "spool: {} was replaced since its progress was saved; replaying it whole",
                state.path.display()
            );
            None
        }
        // Delivered and deleted: every segment on disk is newer.
        None => Some(mark),
    }
}

/// Delete a delivered segment; a failure only costs disk space.
pub(super) fn remove(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!("spool: cannot delete {}: {e}", path.display());
        }
    }
}
