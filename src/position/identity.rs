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

/// The bytes just before a saved offset (at most [`HEAD_BYTES`]), which
/// prove that a file resumed there still holds what was delivered up to
/// it. A file that lost its unsynced tail in a power loss and was written
/// again past the offset keeps its inode and head, but not these bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// How many bytes before the offset.
    pub len: u32,
    /// FNV-1a of them.
    pub hash: u64,
}

impl Window {
    /// The window of `file` before `offset`; `None` if the file no longer
    /// holds that many bytes.
    pub fn read(file: &fs::File, offset: u64) -> Option<Window> {
        let len = offset.min(HEAD_BYTES as u64);
        let bytes = read_before(file, offset, len)?;
        Some(Window {
            len: len as u32,
            hash: fnv(&bytes),
        })
    }

    /// Whether `file` holds this window before `offset`.
    pub fn matches(&self, file: &fs::File, offset: u64) -> bool {
        let len = u64::from(self.len);
        len <= offset && read_before(file, offset, len).is_some_and(|b| fnv(&b) == self.hash)
    }
}

/// The `len` bytes of `file` before `offset`.
fn read_before(file: &fs::File, offset: u64, len: u64) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt as _;
    let mut bytes = vec![0; usize::try_from(len).ok()?];
    file.read_exact_at(&mut bytes, offset - len).ok()?;
    Some(bytes)
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

/// A hash of a line's bytes, the last part of its message id: two
/// different lines at the same offset of files with the same identity (a
/// header file rewritten on its inode) never share an id, and the same
/// line read again (a replay) has the same one. Eight bytes a step with
/// fixed constants, so it is the same in every run and release, then
/// MurmurHash3's finaliser so that every input bit reaches every output
/// bit.
pub fn line_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let step = |hash: u64, word: u64| (hash.rotate_left(5) ^ word).wrapping_mul(K);
    let mut words = bytes.chunks_exact(8);
    let mut hash = (bytes.len() as u64).wrapping_mul(K);
    for word in &mut words {
        hash = step(hash, u64::from_le_bytes(word.try_into().expect("8 bytes")));
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    hash = step(hash, u64::from_le_bytes(tail));
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
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
    fn a_window_proves_the_bytes_before_an_offset() {
        use std::io::Write as _;
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"cdr 1\ncdr 2\ncdr 3\n").unwrap();
        let window = Window::read(&file, 12).unwrap();
        assert_eq!(window.len, 12);
        assert!(window.matches(&file, 12));
        assert!(!window.matches(&file, 18), "other bytes");
        // Shrunk at a line boundary, then written again past the offset.
        file.set_len(6).unwrap();
        assert!(!window.matches(&file, 12), "too short");
        assert_eq!(Window::read(&file, 12), None);
        file.write_all(b"new 1\nnew 2\n").unwrap();
        assert!(!window.matches(&file, 12), "new bytes before the offset");
    }

    #[test]
    fn the_line_hash_is_fixed_and_tells_lines_apart() {
        // Fixed across runs and releases: ids in Kafka are compared with
        // ids of lines read again by later versions.
        assert_eq!(line_hash(b""), 0);
        assert_eq!(line_hash(b"call 1"), line_hash(b"call 1"));
        let lines = [
            &b"call 1"[..],
            b"call 2",
            b"call 1\0",
            b"2026-12-07 10:00:00,+74950000001",
            b"2026-12-07 10:00:00,+74950000002",
            b"12345678",
            b"123456789",
        ];
        let mut hashes: Vec<u64> = lines.iter().map(|l| line_hash(l)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), lines.len());
    }

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
