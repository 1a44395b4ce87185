//! File-mode progress on disk: which file (path, device, inode) and the
//! byte offset up to which every line was acknowledged by Kafka.
//!
//! The state is written atomically (temp file, fsync, rename, fsync of the
//! directory) so a crash leaves either the old or the new state, never a
//! torn one. This module stores positions; deciding which position is
//! safe to store is the tracker's job (its watermark).

use std::fs::{self, File};
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::acker::Mark;

/// Format version of the state file; bump when the layout changes.
pub const VERSION: u32 = 1;

/// Identity of a file: device and inode survive renames; the fingerprint
/// of its first line tells a re-created file that reuses the inode number
/// (common on ext4 after delete+recreate) from the one that was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// FNV-1a of the first line (or first 4 KiB); `None` while the file
    /// has no complete first line.
    pub fingerprint: Option<u64>,
}

impl FileId {
    /// The identity of the file `meta` describes, fingerprint not yet known.
    pub fn of(meta: &fs::Metadata) -> Self {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            fingerprint: None,
        }
    }

    /// Same inode on the same device (what a rename keeps).
    pub fn same_inode(&self, other: &FileId) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }

    /// Same inode, and no fingerprint says otherwise.
    pub fn same_file(&self, other: &FileId) -> bool {
        self.same_inode(other)
            && match (self.fingerprint, other.fingerprint) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
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
    // FNV-1a: tiny, and stable across Rust releases (unlike DefaultHasher).
    Some(first.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    }))
}

/// What is saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Layout version.
    pub version: u32,
    /// The followed path.
    pub path: PathBuf,
    /// The file that was open at that path.
    pub file: FileId,
    /// Every line before this offset was delivered.
    pub offset: u64,
}

/// The state file of one followed path.
#[derive(Debug)]
pub struct Store {
    file: PathBuf,
}

impl Store {
    /// The store for `followed` inside `dir` (created if missing).
    pub fn new(dir: &Path, followed: &Path) -> Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("creating state directory {}", dir.display()))?;
        let name: String = followed
            .to_string_lossy()
            .trim_start_matches('/')
            .chars()
            .map(|c| if c == '/' { '_' } else { c })
            .collect();
        Ok(Store {
            file: dir.join(format!("{name}.state.json")),
        })
    }

    /// Read the saved state; `None` if there is none yet.
    pub fn load(&self) -> Result<Option<State>> {
        let text = match fs::read(&self.file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.file.display())),
        };
        let state: State = serde_json::from_slice(&text)
            .with_context(|| format!("state file {} is corrupt", self.file.display()))?;
        if state.version != VERSION {
            bail!(
                "state file {} has version {}, this cdrship reads version {VERSION}",
                self.file.display(),
                state.version
            );
        }
        Ok(Some(state))
    }

    /// Atomically replace the saved state.
    pub fn save(&self, state: &State) -> Result<()> {
        let tmp = self.file.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut out = File::create(&tmp)?;
            out.write_all(&serde_json::to_vec(state).map_err(std::io::Error::other)?)?;
            out.sync_all()?;
            fs::rename(&tmp, &self.file)?;
            let dir = self.file.parent().unwrap_or(Path::new("."));
            File::open(dir)?.sync_all()
        };
        write().with_context(|| format!("saving progress to {}", self.file.display()))
    }

    /// Where the state lives (for messages).
    pub fn path(&self) -> &Path {
        &self.file
    }
}

/// Saves the tracker's watermark, translating its file generation back to
/// the file identity it was read from.
#[derive(Debug)]
pub struct Progress {
    store: Store,
    followed: PathBuf,
    /// Opened files by generation, newest last.
    files: Vec<(u32, FileId)>,
    saved: Option<Mark>,
}

impl Progress {
    /// Progress for `followed`, stored in `store`.
    pub fn new(store: Store, followed: PathBuf) -> Self {
        Progress {
            store,
            followed,
            files: Vec::new(),
            saved: None,
        }
    }

    /// The state saved by an earlier run.
    pub fn load(&self) -> Result<Option<State>> {
        self.store.load()
    }

    /// Remember which file a generation number stands for (again when
    /// its fingerprint becomes known).
    pub fn opened(&mut self, generation: u32, file: FileId) {
        match self.files.last_mut() {
            Some(last) if last.0 == generation => last.1 = file,
            _ => self.files.push((generation, file)),
        }
    }

    /// Save `mark` if it moved since the last save.
    pub fn save(&mut self, mark: Option<Mark>) -> Result<()> {
        let Some(mark) = mark.filter(|m| Some(*m) != self.saved) else {
            return Ok(());
        };
        let file = self
            .files
            .iter()
            .rev()
            .find(|(g, _)| *g == mark.generation)
            .map(|(_, f)| *f)
            .expect("every generation is registered before its lines are sent");
        self.store.save(&State {
            version: VERSION,
            path: self.followed.clone(),
            file,
            offset: mark.offset,
        })?;
        debug!(
            "progress saved: byte {} of generation {}",
            mark.offset, mark.generation
        );
        self.saved = Some(mark);
        // Older generations can no longer be the watermark.
        self.files.retain(|(g, _)| *g >= mark.generation);
        Ok(())
    }

    /// Where the state lives (for messages).
    pub fn location(&self) -> &Path {
        self.store.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(
            &dir.path().join("state"),
            Path::new("/var/log/a/Master.csv"),
        )
        .unwrap();
        assert!(store.path().ends_with("var_log_a_Master.csv.state.json"));
        assert_eq!(store.load().unwrap(), None);
        let state = State {
            version: VERSION,
            path: "/var/log/a/Master.csv".into(),
            file: FileId {
                dev: 1,
                ino: 2,
                fingerprint: Some(3),
            },
            offset: 42,
        };
        store.save(&state).unwrap();
        assert_eq!(store.load().unwrap(), Some(state));
        fs::write(store.path(), b"{\"version\":1,\"pa").unwrap();
        assert!(format!("{:#}", store.load().unwrap_err()).contains("corrupt"));
        fs::write(
            store.path(),
            br#"{"version":9,"path":"x","file":{"dev":1,"ino":2},"offset":1}"#,
        )
        .unwrap();
        assert!(store.load().unwrap_err().to_string().contains("version 9"));
    }

    #[test]
    fn fingerprint_is_the_first_line_and_tells_files_apart() {
        assert_eq!(fingerprint(b"no newline yet", 4096), None);
        assert_eq!(fingerprint(b"full", 4), fingerprint(b"full", 4));
        let a = fingerprint(b"a,1\nrest", 4096);
        assert_eq!(a, fingerprint(b"a,1\nother rest", 4096));
        assert_ne!(a, fingerprint(b"b,1\nrest", 4096));
        let id = |fingerprint| FileId {
            dev: 1,
            ino: 2,
            fingerprint,
        };
        assert!(id(a).same_file(&id(None)));
        assert!(!id(a).same_file(&id(Some(0))));
        assert!(id(a).same_inode(&id(Some(0))));
    }

    #[test]
    fn progress_saves_only_moves_and_maps_generations() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), Path::new("x.csv")).unwrap();
        let mut progress = Progress::new(store, "x.csv".into());
        let id = |ino| FileId {
            dev: 1,
            ino,
            fingerprint: None,
        };
        progress.opened(0, id(10));
        progress.opened(1, id(11));
        progress.opened(
            1,
            FileId {
                fingerprint: Some(5),
                ..id(11)
            },
        );
        progress
            .save(Some(Mark {
                generation: 1,
                offset: 7,
            }))
            .unwrap();
        let saved = progress.load().unwrap().unwrap();
        assert_eq!(
            (saved.file.ino, saved.file.fingerprint, saved.offset),
            (11, Some(5), 7)
        );
        progress.save(None).unwrap();
        assert_eq!(progress.load().unwrap().unwrap().offset, 7);
    }
}
