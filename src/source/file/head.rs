//! A file's head: its first bytes (up to [`HEAD_BYTES`]), which its
//! identity and the checks for truncation and for copies compare.
//!
//! A file that starts with a hole of NUL bytes (copytruncate before a
//! writer without `O_APPEND`, whose next write lands at its old offset)
//! would have a head of NULs, the same for every such file: its copies,
//! the generations after it and files that are none of these could not be
//! told apart. Its head is instead a marker with the hole's length, then
//! the bytes after the hole: a copy still matches, another generation
//! does not. A file with nothing but NULs yet has an empty head.

use std::fs::File;
use std::os::unix::fs::FileExt as _;

use anyhow::{Context as _, Result};

use crate::position::HEAD_BYTES;

/// NUL bytes looked through for the end of a hole, after the first block
/// with data (a sparse hole is skipped without reading it).
const SCAN: u64 = 1 << 20;

/// The head of `file`.
pub(super) fn read_head(file: &File) -> Result<Vec<u8>> {
    let head = read_at(file, 0, HEAD_BYTES)?;
    if head.first() != Some(&0) {
        return Ok(head);
    }
    let Some(start) = after_hole(file)? else {
        return Ok(Vec::new());
    };
    let mut marked = vec![0; 4];
    marked.extend_from_slice(&start.to_le_bytes());
    marked.extend(read_at(file, start, HEAD_BYTES)?);
    Ok(marked)
}

/// Up to `len` bytes of `file` from `offset`.
fn read_at(file: &File, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut bytes = vec![0; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut bytes[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading the head of the followed file"),
        }
    }
    bytes.truncate(filled);
    Ok(bytes)
}

/// The offset of the first byte after the hole at the start of `file`,
/// if there is one within reach.
fn after_hole(file: &File) -> Result<Option<u64>> {
    let from = first_data(file).unwrap_or(0);
    let mut at = from;
    while at < from + SCAN {
        let chunk = read_at(file, at, 64 * 1024)?;
        if chunk.is_empty() {
            return Ok(None);
        }
        if let Some(i) = chunk.iter().position(|&b| b != 0) {
            return Ok(Some(at + i as u64));
        }
        at += chunk.len() as u64;
    }
    Ok(None)
}

/// Where the first block with data starts (`SEEK_DATA`), the file's read
/// position left where it was.
fn first_data(file: &File) -> Option<u64> {
    use std::os::fd::AsRawFd as _;
    let fd = file.as_raw_fd();
    // SAFETY: lseek on a descriptor `file` owns and keeps open for the
    // call; the position it had is set again before returning.
    unsafe {
        let here = libc::lseek(fd, 0, libc::SEEK_CUR);
        if here < 0 {
            return None;
        }
        let data = libc::lseek(fd, 0, libc::SEEK_DATA);
        libc::lseek(fd, here, libc::SEEK_SET);
        u64::try_from(data).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn a_hole_is_no_head_the_bytes_after_it_are() {
        let mut plain = tempfile::tempfile().unwrap();
        plain.write_all(b"cdr 1\n").unwrap();
        assert_eq!(read_head(&plain).unwrap(), b"cdr 1\n");

        // copytruncate, then a writer without O_APPEND at offset 200,000.
        let holed = |at: u64, text: &[u8]| {
            let file = tempfile::tempfile().unwrap();
            file.write_all_at(text, at).unwrap();
            file
        };
        let a = read_head(&holed(200_000, b"cdr 2\n")).unwrap();
        assert!(a.ends_with(b"cdr 2\n") && a.iter().any(|&b| b != 0));
        assert_eq!(a, read_head(&holed(200_000, b"cdr 2\n")).unwrap(), "a copy");
        assert_ne!(a, read_head(&holed(300_000, b"cdr 2\n")).unwrap());
        assert_ne!(a, read_head(&holed(200_000, b"cdr 3\n")).unwrap());
        // Only NULs so far: nothing to tell it by.
        let empty = tempfile::tempfile().unwrap();
        empty.set_len(10_000).unwrap();
        assert!(read_head(&empty).unwrap().is_empty());
    }

    #[test]
    fn reading_the_head_leaves_the_read_position() {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let mut file = tempfile::tempfile().unwrap();
        file.write_all_at(b"cdr 1\ncdr 2\n", 100_000).unwrap();
        file.seek(SeekFrom::Start(100_006)).unwrap();
        read_head(&file).unwrap();
        let mut rest = String::new();
        file.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "cdr 2\n");
    }
}
