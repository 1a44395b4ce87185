//! Where a restarted cdrship resumes: each saved file at its saved offset,
//! wherever it is now. The file at the followed path is resumed when it is
//! provably the saved one (same inode and same head: a file recreated on
//! the same inode, even with the same first line, is not); a saved file
//! rotated away while cdrship was stopped is found among the siblings,
//! renamed (same inode first) or copied (same head, long enough), and is
//! finished before the path's file is read from the start. A file that
//! cannot be proven to be the saved one is never sought into.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;

use super::current::{directory_of, is_followed, read_head, Current};
use crate::checkpoint::{Resume, State};
use crate::position::HEAD_BYTES;

/// The files to read after a start.
pub(super) struct Resumed {
    /// Saved files rotated away, each at its saved offset, oldest first:
    /// they are finished beside the current file.
    pub(super) rotated: Vec<Current>,
    /// The file at the path (`None` while it does not exist).
    pub(super) current: Option<Current>,
}

/// Open what `saved` names (with when it was saved), numbering files from
/// `generation` on.
pub(super) fn open(
    path: &Path,
    saved: Option<(&State, Option<SystemTime>)>,
    generation: &mut u32,
    max_line: usize,
) -> Result<Resumed> {
    let saved_at = saved.and_then(|(_, at)| at);
    let saved = match saved.map(|(state, _)| state) {
        // Saved before paths were resolved, the path may be spelled as given.
        Some(state) if state.path != path && super::resolve(&state.path) != path => {
            warn!(
                "saved progress is for {}, not {}; ignoring it",
                state.path.display(),
                path.display()
            );
            None
        }
        other => other,
    };
    let mut resumed = Resumed {
        rotated: Vec::new(),
        current: None,
    };
    let mut found = Vec::new();
    let entries: Vec<Resume> = saved.map_or_else(Vec::new, |s| {
        let main = Resume {
            file: s.file,
            offset: s.offset,
            window: s.window,
        };
        s.draining.iter().copied().chain([main]).collect()
    });
    for &entry in &entries {
        let at_path = match resumed.current {
            None => Current::open(path, *generation, max_line)?.filter(|(c, len)| {
                let same = c.id.same_file(&entry.file, &c.head);
                let moved = !same && moved(path, &entry, c);
                if moved {
                    info!(
                        "{}: the saved file's device or inode changed (its file system came back under another device number, or it was restored), and it holds the bytes delivered",
                        path.display()
                    );
                }
                (same || moved) && entry.offset <= *len
            }),
            Some(_) => None,
        };
        let mut unproven = false;
        let at_path = at_path.filter(|(c, _)| {
            let proven = entry.proven_in(&c.file);
            unproven = !proven;
            if !proven {
                warn!(
                    "{}: the bytes before the saved byte {} are not the ones delivered (the file shrank and was written again while cdrship was stopped: a power loss?); it is read from the start, and lines sent before are sent again with the ids they had",
                    path.display(),
                    entry.offset
                );
            }
            proven
        });
        if let Some((mut current, _)) = at_path {
            *generation += 1;
            current.seek(entry.offset)?;
            info!("{}: resuming at byte {}", path.display(), entry.offset);
            resumed.current = Some(current);
            continue;
        }
        match find_rotated(path, &entry, *generation, max_line)? {
            Some((rotated, mut current)) => {
                *generation += 1;
                // A copy holds the saved file's lines: they keep its ids.
                current.id = entry.file;
                info!(
                    "{}: rotated while stopped; finishing {} from byte {} first",
                    path.display(),
                    rotated.display(),
                    entry.offset
                );
                current.seek(entry.offset)?;
                resumed.rotated.push(current);
                found.push(rotated);
            }
            // Said above: the file is there, but not as it was.
            None if unproven => {}
            None => warn!(
                "{}: the saved file ({}, byte {}) is gone and no sibling holds its content (rotated away or truncated while stopped); its unsent lines cannot be read",
                path.display(),
                entry.file,
                entry.offset
            ),
        }
    }
    let since = Since {
        found: &found,
        saved_at,
        saved: &entries,
    };
    for (between, current) in rotated_since(path, &since, *generation, max_line)? {
        info!(
            "{}: {} was rotated in after the saved file while cdrship was stopped; reading it whole",
            path.display(),
            between.display()
        );
        *generation += 1;
        resumed.rotated.push(current);
    }
    if resumed.current.is_none() {
        if saved.is_some() {
            info!(
                "{}: reading the file at the path from the start",
                path.display()
            );
        }
        resumed.current = Current::open(path, *generation, max_line)?.map(|(c, _)| c);
        *generation += 1;
    }
    Ok(resumed)
}

/// The saved file among `path`'s siblings, long enough to resume: renamed
/// (same inode and head, e.g. `Master.csv.1`), else copied (same head,
/// e.g. a copytruncate copy under any name).
fn find_rotated(
    path: &Path,
    entry: &Resume,
    generation: u32,
    max_line: usize,
) -> Result<Option<(PathBuf, Current)>> {
    let Ok(dir) = std::fs::read_dir(directory_of(path)) else {
        return Ok(None);
    };
    let mut copy = None;
    for candidate in dir.flatten().map(|e| e.path()) {
        if is_followed(&candidate, path) || !candidate.is_file() {
            continue;
        }
        let Some((current, len)) = Current::open(&candidate, generation, max_line)? else {
            continue;
        };
        if len < entry.offset
            || !entry.file.head_matches(&current.head)
            || !entry.proven_in(&current.file)
        {
            continue;
        }
        if current.id.same_inode(&entry.file) {
            return Ok(Some((candidate, current)));
        }
        copy = copy.or(Some((candidate, current)));
    }
    Ok(copy)
}

/// What tells a sibling written while cdrship was stopped.
struct Since<'a> {
    /// The saved files found (renamed or copied), resumed already.
    found: &'a [PathBuf],
    /// When the state was saved.
    saved_at: Option<SystemTime>,
    /// The saved files.
    saved: &'a [Resume],
}

/// Several rotations while stopped: the files rotated in after the saved
/// ones (`found`) and before the path's current file. They are the
/// siblings named after the followed file, not compressed, created after
/// the state was saved (`saved_at`: a copytruncate copy made while
/// cdrship ran holds lines already read), also when the saved file itself
/// is gone; oldest first, each read whole. Without birth times, those
/// last written after the saved files found were. A saved file's inode
/// not found as the saved file was truncated since (copytruncate while
/// stopped): what it holds now was written after, and is read whole too.
fn rotated_since(
    path: &Path,
    since: &Since<'_>,
    generation: u32,
    max_line: usize,
) -> Result<Vec<(PathBuf, Current)>> {
    use std::os::unix::fs::MetadataExt as _;
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    // Without birth times: written after the newest saved file found.
    let found_written = since.found.iter().filter_map(|p| modified(p)).max();
    let new_since_stop = |p: &Path| {
        let Ok(meta) = std::fs::metadata(p) else {
            return false;
        };
        let truncated_since = since
            .saved
            .iter()
            .any(|s| s.file.dev == meta.dev() && s.file.ino == meta.ino());
        match (meta.created().ok(), since.saved_at, found_written) {
            _ if truncated_since => true,
            (Some(born), Some(saved_at), _) => born >= saved_at,
            (_, _, Some(written)) => meta.modified().is_ok_and(|m| m >= written),
            _ => false,
        }
    };
    let mut between: Vec<_> = super::missed::generations(path)
        .into_iter()
        .filter(|(_, p)| !since.found.contains(p) && new_since_stop(p) && !copy_of(p, since.saved))
        .collect();
    between.sort();
    let mut opened = Vec::new();
    for (_, candidate) in between {
        let number = generation + opened.len() as u32;
        if let Some((current, _)) = Current::open(&candidate, number, max_line)? {
            opened.push((candidate, current));
        }
    }
    Ok(opened)
}

/// Whether the file at `candidate` is a copy of one of the `saved` files
/// (a backup made while cdrship was stopped, logrotate `copy`): it holds
/// the saved file's bytes up to the saved offset, proven by the head and
/// the window before the offset (by a whole 4 KiB head for a state saved
/// without windows). Such a copy is no generation of its own: its lines
/// are the saved file's, read from where they are.
fn copy_of(candidate: &Path, saved: &[Resume]) -> bool {
    let Ok(file) = std::fs::File::open(candidate) else {
        return false;
    };
    let (Ok(head), Ok(meta)) = (read_head(&file), file.metadata()) else {
        return false;
    };
    saved.iter().any(|entry| {
        let proven = match entry.window {
            Some(_) => entry.proven_in(&file),
            None => entry.file.head_len as usize == HEAD_BYTES,
        };
        // A head of NUL bytes (a hole) proves no copy.
        let telling = head.iter().any(|&b| b != 0);
        telling && meta.len() >= entry.offset && entry.file.head_matches(&head) && proven
    })
}

/// Whether the file `at_path` is the saved one `entry` moved to another
/// device or inode: a file system mounted under another device number
/// after a reboot (LVM, NVMe, btrfs), or the file restored from a backup.
/// Only its bytes can tell: the head and the window before the saved
/// offset match, and no sibling still has the saved device and inode.
fn moved(path: &Path, entry: &Resume, at_path: &Current) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    if entry.window.is_none()
        || at_path.id.same_inode(&entry.file)
        || !entry.file.head_matches(&at_path.head)
        || !entry.proven_in(&at_path.file)
    {
        return false;
    }
    let Ok(dir) = std::fs::read_dir(directory_of(path)) else {
        return false;
    };
    !dir.flatten().any(|e| {
        e.metadata()
            .is_ok_and(|m| m.dev() == entry.file.dev && m.ino() == entry.file.ino)
    })
}
