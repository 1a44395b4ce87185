//! The file being read and what its path looks like now: identity and
//! head (for fingerprints and truncation), and the checks that tell
//! appends, truncation and replacement apart.

use std::fs::File;
use std::io::{Seek as _, SeekFrom};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context as _, Result};

pub(super) use super::head::read_head;
use crate::framing::Framer;
use crate::position::{FileId, HEAD_BYTES};

/// The file currently being read.
pub(super) struct Current {
    pub(super) file: File,
    pub(super) id: FileId,
    pub(super) generation: u32,
    pub(super) framer: Framer,
    /// The first bytes of the file (up to [`HEAD_BYTES`]).
    pub(super) head: Vec<u8>,
    /// When reading this generation began: files rotated in after it
    /// and not seen are found by their times (see `missed`).
    pub(super) since: SystemTime,
}

impl Current {
    /// Open `path` at offset 0; `None` if it does not exist.
    pub(super) fn open(
        path: &Path,
        generation: u32,
        max_line: usize,
    ) -> Result<Option<(Self, u64)>> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        };
        let meta = file
            .metadata()
            .with_context(|| format!("reading metadata of {}", path.display()))?;
        let mut current = Current {
            file,
            id: FileId::of(&meta),
            generation,
            framer: Framer::new(max_line, 0, 0),
            head: Vec::new(),
            since: SystemTime::now(),
        };
        current.refresh_head()?;
        Ok(Some((current, meta.len())))
    }

    /// Continue reading at `offset`. Line numbers (`_line`) continue too:
    /// the lines before `offset` are counted once, here.
    pub(super) fn seek(&mut self, offset: u64) -> Result<()> {
        let lines = count_lines(&self.file, offset)?;
        self.file
            .seek(SeekFrom::Start(offset))
            .context("seeking the followed file")?;
        self.framer.reset(offset, lines);
        Ok(())
    }

    /// Re-read the head while it is shorter than [`HEAD_BYTES`]: the
    /// identity (fingerprint, head hash) grows with it.
    pub(super) fn refresh_head(&mut self) -> Result<()> {
        if self.head.len() < HEAD_BYTES {
            self.head = read_head(&self.file)?;
            self.id.read_head(&self.head);
        }
        Ok(())
    }
}

/// Newlines in the first `upto` bytes of `file`.
fn count_lines(file: &File, upto: u64) -> Result<u64> {
    let mut buf = vec![0; 256 * 1024];
    let (mut at, mut lines) = (0, 0);
    while at < upto {
        let want = buf.len().min((upto - at) as usize);
        let n = match file.read_at(&mut buf[..want], at) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("counting lines of the followed file"),
        };
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        at += n as u64;
    }
    Ok(lines)
}

/// What the path looks like compared to the open file.
pub(super) enum PathState {
    /// Same file, possibly grown.
    Same,
    /// A different file now lives at the path.
    Replaced,
    /// Nothing at the path (rotated, not yet recreated).
    Missing,
}

/// Offset just after the file's last newline: where `--from end` starts,
/// so an unterminated last line is not shipped as a fragment.
pub(super) fn end_of_last_line(file: &File) -> Result<u64> {
    const TAIL: u64 = 64 * 1024;
    let len = file
        .metadata()
        .context("reading the followed file's size")?
        .len();
    let from = len.saturating_sub(TAIL);
    let mut tail = vec![0; (len - from) as usize];
    file.read_exact_at(&mut tail, from)
        .context("reading the end of the followed file")?;
    Ok(match memchr::memrchr(b'\n', &tail) {
        Some(newline) => from + newline as u64 + 1,
        // No newline in the tail: one giant line, or only a partial one.
        None if from > 0 => len,
        None => 0,
    })
}

/// Shorter than what was read, or a different head: truncated in place
/// (and maybe already refilled past the old position).
pub(super) fn truncated(current: &Current, len: u64) -> Result<bool> {
    Ok(len < current.framer.offset() || !read_head(&current.file)?.starts_with(&current.head))
}

/// The directory a path lives in (`.` for a bare file name).
/// Whether `entry`, listed from [`directory_of`]`(path)`, is the followed
/// path itself: the listing names `Master.csv` as `./Master.csv`, so the
/// paths differ and only the names tell.
pub(super) fn is_followed(entry: &Path, path: &Path) -> bool {
    entry.file_name() == path.file_name()
}

pub(super) fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

pub(super) fn path_state(path: &Path, current: &Current) -> PathState {
    match std::fs::metadata(path) {
        Ok(meta) if FileId::of(&meta).same_inode(&current.id) => PathState::Same,
        Ok(_) => PathState::Replaced,
        Err(_) => PathState::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn truncation_is_a_shorter_file_or_a_different_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Master.csv");
        std::fs::write(&path, "first,1\nsecond,2\n").unwrap();
        let (mut current, len) = Current::open(&path, 0, 100).unwrap().unwrap();
        current.seek(len).unwrap();
        assert!(!truncated(&current, len).unwrap());
        let mut writer = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writer.write_all(b"third,3\n").unwrap();
        assert!(
            !truncated(&current, len + 8).unwrap(),
            "growth is not truncation"
        );
        writer.set_len(0).unwrap();
        assert!(
            truncated(&current, 0).unwrap(),
            "shorter than the read position"
        );
        writer
            .write_all(b"new-file,1\nrefilled past the old position\n")
            .unwrap();
        assert!(
            truncated(&current, 43).unwrap(),
            "longer again, but another head"
        );
    }
}
