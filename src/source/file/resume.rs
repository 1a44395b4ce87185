//! Where a restarted cdrship resumes: the saved file at its saved offset,
//! even when it was rotated (renamed or copied) while cdrship was stopped.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::current::{directory_of, Current};
use crate::checkpoint::{FileId, State};

/// Open `path` for the first time, at the saved offset when `saved`
/// describes this very file. If the file was rotated while cdrship was
/// stopped and the old one is still in the directory, resume that one: the
/// main loop finishes it and then switches to `path`.
pub(super) fn open(
    path: &Path,
    saved: Option<&State>,
    generation: u32,
    max_line: usize,
) -> Result<Option<Current>> {
    let saved = match saved {
        Some(state) if state.path != path => {
            warn!(
                "saved progress is for {}, not {}; ignoring it",
                state.path.display(),
                path.display()
            );
            None
        }
        other => other,
    };
    let opened = Current::open(path, generation, max_line)?;
    let Some(state) = saved else {
        return Ok(opened.map(|(current, _)| current));
    };
    if let Some((mut current, _)) =
        opened.filter(|(c, len)| c.id.same_file(&state.file) && state.offset <= *len)
    {
        current.seek(state.offset)?;
        info!("{}: resuming at byte {}", path.display(), state.offset);
        return Ok(Some(current));
    }
    if let Some((rotated, mut current)) = find_rotated(path, state, generation, max_line)? {
        info!(
            "{}: rotated while stopped; finishing {} from byte {} first",
            path.display(),
            rotated.display(),
            state.offset
        );
        current.seek(state.offset)?;
        return Ok(Some(current));
    }
    warn!(
        "{}: the saved file is gone and no sibling holds its content (rotated away or truncated while stopped); reading from the start",
        path.display()
    );
    Ok(Current::open(path, generation, max_line)?.map(|(current, _)| current))
}

/// The saved file among `path`'s siblings, long enough to resume: renamed
/// (same inode, e.g. `Master.csv.1`) or copied by copytruncate (a sibling
/// named after the file whose first line has the saved fingerprint).
fn find_rotated(
    path: &Path,
    state: &State,
    generation: u32,
    max_line: usize,
) -> Result<Option<(PathBuf, Current)>> {
    let Ok(entries) = std::fs::read_dir(directory_of(path)) else {
        return Ok(None);
    };
    let base = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    for entry in entries.flatten() {
        let candidate = entry.path();
        let renamed = entry
            .metadata()
            .is_ok_and(|m| m.is_file() && FileId::of(&m).same_inode(&state.file));
        let named_after = entry.file_name().to_string_lossy().starts_with(&base);
        if candidate == path || !(renamed || named_after && state.file.fingerprint.is_some()) {
            continue;
        }
        let Some((current, len)) = Current::open(&candidate, generation, max_line)? else {
            continue;
        };
        let same = if renamed {
            current.id.same_file(&state.file)
        } else {
            current.id.fingerprint == state.file.fingerprint
        };
        if same && state.offset <= len {
            return Ok(Some((candidate, current)));
        }
    }
    Ok(None)
}
