//! The spool's segment files on disk: their names, the listing at start
//! and their deletion. Reading and writing records is the writer's and
//! replay's.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::position::FileId;

/// One segment file on disk.
#[derive(Debug, Clone, Copy)]
pub(super) struct Segment {
    pub(super) number: u32,
    pub(super) size: u64,
    pub(super) id: FileId,
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

/// Delete a delivered segment; a failure only costs disk space.
pub(super) fn remove(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!("spool: cannot delete {}: {e}", path.display());
        }
    }
}
