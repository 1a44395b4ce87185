//! Rotations seen late. While reading is paused (Kafka down and the
//! producer queue full, or the process stopped) logrotate may run more
//! than once: the generations between the file being read and the one
//! now at the path were rotated in and away unseen (`create`: B is
//! `Master.csv.1` by the time cdrship finishes A; `copytruncate`: B is
//! only in the second copy). They are found as rotations while cdrship
//! was stopped are: siblings named after the followed file, not
//! compressed, modified since cdrship opened the file it was reading, and
//! holding none of the content it knows (not a file it reads or has read,
//! nor a copy of one). Oldest first, each is read whole before the new
//! file.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;

use super::copy::compressed;
use super::current::{directory_of, is_followed, read_head, Current};
use super::rotated::Rotated;
use crate::checkpoint::Progress;
use crate::position::{FileId, HEAD_BYTES};
use crate::route::Router;

/// Finished generations remembered: more rotations than a pause can span.
const REMEMBERED: usize = 64;

/// The generations this run finished reading, by identity and head.
#[derive(Default)]
pub(super) struct Finished(Vec<(FileId, Vec<u8>)>);

impl Finished {
    /// `file` was read to its end and let go.
    pub(super) fn note(&mut self, file: &Current) {
        if self.0.len() == REMEMBERED {
            self.0.remove(0);
        }
        self.0.push((file.id, file.head.clone()));
    }

    /// Whether a file with `id` and `head` is one of them (renamed on, or
    /// written on by a writer that held it), or a copy of one whose whole
    /// head is known (a shorter head could be a new file's header line).
    fn knows(&self, id: &FileId, head: &[u8]) -> bool {
        self.0.iter().any(|(known, known_head)| {
            let whole = known_head.len() == HEAD_BYTES && telling(known_head);
            head.starts_with(known_head) && (known.same_inode(id) || whole)
        })
    }
}

/// Whether a head tells files apart: not empty, and not only NUL bytes
/// (the hole copytruncate leaves before a writer without `O_APPEND` goes
/// on: every such file starts with the same bytes). A head that tells
/// nothing proves no copy: the file is read (duplicates, never a loss).
fn telling(head: &[u8]) -> bool {
    head.iter().any(|&b| b != 0)
}

/// The siblings of `path` that are generations of it: regular files
/// named after it (`Master.csv.1`, `Master.csv-20261207`, and with
/// logrotate's `extension .csv` `Master.1.csv`, `Master-20261207.csv`),
/// not compressed, not the path itself; with their modification times.
pub(super) fn generations(path: &Path) -> Vec<(SystemTime, PathBuf)> {
    let (Ok(dir), Some(base)) = (std::fs::read_dir(directory_of(path)), path.file_name()) else {
        return Vec::new();
    };
    let base = base.to_string_lossy().into_owned();
    dir.flatten()
        .filter_map(|entry| {
            let candidate = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_followed(&candidate, path) || !named_after(&name, &base) || compressed(&name) {
                return None;
            }
            // Through a symlink too: logrotate's own files are regular.
            let meta = std::fs::metadata(&candidate).ok()?;
            Some((meta.modified().ok()?, candidate)).filter(|_| meta.is_file())
        })
        .collect()
}

/// Whether the file `name` is named after the followed file `base`:
/// `base` then a suffix, or with the extension kept at the end (`stem`,
/// a `.` or `-` and a suffix, then `.ext`).
fn named_after(name: &str, base: &str) -> bool {
    if name.starts_with(base) {
        return true;
    }
    let Some((stem, ext)) = base.rsplit_once('.').filter(|(stem, _)| !stem.is_empty()) else {
        return false;
    };
    let Some(rest) = name.strip_prefix(stem) else {
        return false;
    };
    (rest.starts_with('.') || rest.starts_with('-'))
        && rest.len() > ext.len() + 2
        && rest.ends_with(&format!(".{ext}"))
}

/// The generations of `path` rotated in and away since `since` (when the
/// file being read was opened) that are none of `reading` (the files
/// being read, by inode and head) and none of `finished`, oldest first,
/// opened as generations numbered from `generation`. File times lag the
/// clock a little, never lead it: a copy made before `since` is older.
fn between(
    path: &Path,
    since: SystemTime,
    reading: &[(&FileId, &[u8])],
    finished: &Finished,
    (generation, max_line): (u32, usize),
) -> Result<Vec<(PathBuf, Current)>> {
    let mut between: Vec<_> = generations(path)
        .into_iter()
        .filter(|(modified, _)| *modified > since)
        .collect();
    between.sort();
    let mut opened = Vec::new();
    for (_, candidate) in between {
        let number = generation + opened.len() as u32;
        let Some((current, _)) = Current::open(&candidate, number, max_line)? else {
            continue;
        };
        let head = read_head(&current.file)?;
        let read_already = finished.knows(&current.id, &head)
            || reading.iter().any(|(id, known_head)| {
                id.same_inode(&current.id) || (telling(known_head) && head.starts_with(known_head))
            });
        if !read_already {
            opened.push((candidate, current));
        }
    }
    Ok(opened)
}

/// Where to look for generations missed, and since when.
pub(super) struct Late<'a> {
    /// The followed path.
    pub(super) path: &'a Path,
    /// When the file being read was opened.
    pub(super) since: SystemTime,
    /// Longest line.
    pub(super) max_line: usize,
    /// The generations read to their end.
    pub(super) finished: &'a Finished,
}

impl Late<'_> {
    /// Queue the generations missed since `current` was opened (none of
    /// `current` and `rotated`) to be read whole after the files in
    /// `rotated`, numbered from `generation` on.
    pub(super) fn find(
        &self,
        generation: &mut u32,
        current: &Current,
        rotated: &mut Vec<Rotated>,
        router: &Router,
        progress: Option<&Progress>,
    ) -> Result<()> {
        let mut known: Vec<(&FileId, &[u8])> = rotated
            .iter()
            .map(|r| (&r.file.id, &r.file.head[..]))
            .collect();
        known.push((&current.id, &current.head));
        let numbers = (*generation, self.max_line);
        let found = between(self.path, self.since, &known, self.finished, numbers)?;
        for (path, file) in found {
            *generation += 1;
            warn!(
                "{}: {} was rotated in and away while reading was paused; reading it whole",
                self.path.display(),
                path.display()
            );
            if let Some(p) = progress {
                p.opened(file.generation, file.id, 0, &file.file);
            }
            rotated.push(Rotated::new(
                file,
                router.for_source(router.label().to_owned()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::named_after;

    #[test]
    fn rotated_names_with_and_without_the_extension_kept() {
        for name in [
            "Master.csv.1",
            "Master.csv-20261207",
            "Master.1.csv",
            "Master-20261207.csv",
        ] {
            assert!(named_after(name, "Master.csv"), "{name}");
        }
        for name in ["Master.csv.txt.x", "Other.1.csv", "Master.csv"] {
            let after = named_after(name, "Master.csv");
            assert_eq!(after, name.starts_with("Master.csv"), "{name}");
        }
        assert!(!named_after("Master.1.txt", "Master.csv"));
        assert!(!named_after("Masterx.csv", "Master.csv"));
        assert!(
            named_after("cdr.1", "cdr"),
            "no extension: cdr then a suffix"
        );
        assert!(!named_after("cd.1", "cdr"));
    }
}
