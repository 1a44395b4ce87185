//! Identity of a followed file: device and inode survive renames; the
//! first-line fingerprint names the file in message ids; a hash of its
//! first bytes (up to [`HEAD_BYTES`]) is what proves that a file found
//! later is the one saved, whatever its inode or name. Files whose first
//! lines are equal (a header line, a banner) differ in that prefix.

use std::fs;
use std::os::unix::fs::MetadataExt as _;

use serde::{Deserialize, Serialize};

/// Bytes of a file's head its identity covers.
pub const HEAD_BYTES: usize = 4096;

/// Identity of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// FNV-1a of the first line (or first 4 KiB); `None` while the file
    /// has no complete first line. Part of every message id.
    pub fingerprint: Option<u64>,
    /// How many of the first bytes `head_hash` covers.
    #[serde(default)]
    pub head_len: u32,
    /// FNV-1a of the first `head_len` bytes.
    #[serde(default = "empty_hash")]
    pub head_hash: u64,
}

fn empty_hash() -> u64 {
    fnv(&[])
}

impl FileId {
    /// The identity of the file `meta` describes, head not yet read.
    pub fn of(meta: &fs::Metadata) -> Self {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            fingerprint: None,
            head_len: 0,
            head_hash: empty_hash(),
        }
    }

    /// Take the fingerprint and head hash from the file's first bytes
    /// (at most [`HEAD_BYTES`] of them).
    pub fn read_head(&mut self, head: &[u8]) {
        let head = &head[..head.len().min(HEAD_BYTES)];
        self.fingerprint = fingerprint(head, HEAD_BYTES);
        self.head_len = head.len() as u32;
        self.head_hash = fnv(head);
    }

    /// Same inode on the same device (what a rename keeps).
    pub fn same_inode(&self, other: &FileId) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }

    /// Whether a file starting with `head` has the content this identity
    /// was taken from (its head may have grown since).
    pub fn head_matches(&self, head: &[u8]) -> bool {
        let len = self.head_len as usize;
        head.len() >= len && fnv(&head[..len]) == self.head_hash
    }

    /// The same file: the same inode and the same head.
    pub fn same_file(&self, other: &FileId, head: &[u8]) -> bool {
        self.same_inode(other) && other.head_matches(head)
    }
}

/// Stable text for message headers: `dev:ino:fingerprint`.
impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{:016x}",
            self.dev,
            self.ino,
            self.fingerprint.unwrap_or(0)
        )
    }
}

/// The fingerprint of a file whose first bytes are `head` (at most
/// `limit` long): its first line, or all of `head` if it is full.
pub fn fingerprint(head: &[u8], limit: usize) -> Option<u64> {
    let first = match memchr::memchr(b'\n', head) {
        Some(newline) => &head[..=newline],
        None if head.len() >= limit => head,
        None => return None,
    };
    Some(fnv(first))
}

/// FNV-1a: tiny, and stable across Rust releases (unlike DefaultHasher).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_the_first_line_and_tells_files_apart() {
        assert_eq!(fingerprint(b"no newline yet", 4096), None);
        assert_eq!(fingerprint(b"full", 4), fingerprint(b"full", 4));
        let a = fingerprint(b"a,1\nrest", 4096);
        assert_eq!(a, fingerprint(b"a,1\nother rest", 4096));
        assert_ne!(a, fingerprint(b"b,1\nrest", 4096));
    }

    #[test]
    fn the_head_tells_files_with_equal_first_lines_apart() {
        let meta = fs::metadata(".").unwrap();
        let mut saved = FileId::of(&meta);
        saved.read_head(b"id,name\n1,alice\n");
        assert!(
            saved.head_matches(b"id,name\n1,alice\n2,bob\n"),
            "grown since"
        );
        assert!(
            !saved.head_matches(b"id,name\n7,carol\n"),
            "same first line"
        );
        assert!(!saved.head_matches(b"id,name\n"), "shorter");
        assert!(saved.same_file(&saved, b"id,name\n1,alice\n"));
        let mut other_inode = saved;
        other_inode.ino += 1;
        assert!(!other_inode.same_file(&saved, b"id,name\n1,alice\n"));
        assert!(
            FileId::of(&meta).head_matches(b""),
            "nothing read: no claim"
        );
    }
}
