//! copytruncate: the lines appended between cdrship's last read and the
//! copy are only in the copy. The copy is found among the file's siblings
//! by content, whatever logrotate named it (`PATH.1`, dateext
//! `PATH-20261202`, numbered copies not shifted): a regular file whose
//! head is the truncated file's head as cdrship read it, and which extends
//! past the read position. A compressed copy cannot be read; the log says
//! so.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;

use super::current::{directory_of, is_followed, read_head};
use crate::position::FileId;

/// Suffixes of compressed logs: their bytes are not the file's.
const COMPRESSED: [&str; 5] = [".gz", ".xz", ".bz2", ".zst", ".lz4"];

/// Whether a file name says it is compressed.
pub(super) fn compressed(name: &str) -> bool {
    COMPRESSED.iter().any(|z| name.ends_with(z))
}

/// The sibling of `path` that holds the bytes of the file `id` (whose
/// first bytes are `head`) at least up to `needed`, newest first when
/// several do; `None` after logging why when there is none.
pub(super) fn find(
    path: &Path,
    id: &FileId,
    head: &[u8],
    needed: u64,
) -> Result<Option<(PathBuf, File)>> {
    let Ok(entries) = std::fs::read_dir(directory_of(path)) else {
        return Ok(None);
    };
    let mut best: Option<(SystemTime, PathBuf, File)> = None;
    let mut packed = Vec::new();
    for entry in entries.flatten() {
        let candidate = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if is_followed(&candidate, path) || !meta.is_file() || FileId::of(&meta).same_inode(id) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if compressed(&name) {
            packed.push(name);
            continue;
        }
        if meta.len() < needed {
            continue;
        }
        let Ok(file) = File::open(&candidate) else {
            continue;
        };
        if !read_head(&file)?.starts_with(head) {
            continue;
        }
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if best.as_ref().is_none_or(|(newest, ..)| modified > *newest) {
            best = Some((modified, candidate, file));
        }
    }
    if best.is_none() {
        let also = if packed.is_empty() {
            String::new()
        } else {
            format!(
                " ({} compressed, which cannot be read: {})",
                packed.len(),
                packed.join(", ")
            )
        };
        warn!(
            "{}: truncated, and no sibling holds its copy{also}; lines written just before the truncation may be missing",
            path.display()
        );
    }
    Ok(best.map(|(_, path, file)| (path, file)))
}
