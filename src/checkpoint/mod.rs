//! File-mode progress on disk: which file (path, device, inode) and the
//! byte offset up to which every line was acknowledged by Kafka. The
//! [`Store`] also keeps other kinds of state (the spool's position).
//!
//! The state is written atomically (temp file, fsync, rename, fsync of the
//! directory) so a crash leaves either the old or the new state, never a
//! torn one. This module stores positions; deciding which position is
//! safe to store is the tracker's job (its watermark).

mod lock;
mod naming;
mod progress;
mod read_back;

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub use lock::{lock, Lock, LockLost};
pub use progress::Progress;
pub use read_back::{value_hash, Found, Previous, ReadBack, Recovered, Settled};

use anyhow::{bail, Context as _, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::position::{FileId, Window, Written};

/// Format version of the state file; bump when the layout changes.
/// Version 2 added `draining` and the head identity; version 1 still
/// loads (without them).
pub const VERSION: u32 = 2;

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
    /// The bytes before `offset`, to prove the file still holds them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Older files still read beside `file` (rotated away while a writer
    /// kept writing to them), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub draining: Vec<Resume>,
    /// With `--exactly-once`: where in Kafka the messages of lines after
    /// these positions can be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<Written>,
}

impl State {
    /// Whether the file at `path` is the saved one (same inode) but no
    /// longer holds the bytes delivered before the saved offset (it shrank
    /// and was written again while cdrship was stopped): it is read again
    /// from the start, and `--exactly-once` reads the topics back whole.
    pub fn unproven_at(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(file) = File::open(path) else {
            return false;
        };
        let same = file
            .metadata()
            .is_ok_and(|m| m.dev() == self.file.dev && m.ino() == self.file.ino);
        let saved = Resume {
            file: self.file,
            offset: self.offset,
            window: self.window,
        };
        same && !saved.proven_in(&file)
    }
}

/// A file and the offset before which every line of it was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The file.
    pub file: FileId,
    /// Its delivered offset.
    pub offset: u64,
    /// The bytes before `offset`, to prove the file still holds them
    /// (states saved before windows existed have none: no proof asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

impl Resume {
    /// Whether `file` (found as this one) holds the bytes delivered
    /// before the offset.
    pub fn proven_in(&self, file: &File) -> bool {
        self.window.is_none_or(|w| w.matches(file, self.offset))
    }
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
        Ok(Store {
            file: dir.join(format!("{}.state.json", naming::name(followed))),
        })
    }

    /// The store for the resolved path `followed`, given as `given`: a
    /// state an older cdrship saved under the names it gave (after the
    /// path as given, or with an ambiguous spelling) is taken over when
    /// `mine` says its saved path is this one.
    pub fn taken_over(
        dir: &Path,
        followed: &Path,
        given: &Path,
        mine: impl Fn(&Path) -> bool,
    ) -> Result<Self> {
        let store = Store::new(dir, followed)?;
        let older = [
            naming::legacy(followed),
            naming::legacy(given),
            naming::name(given),
        ];
        for name in older {
            let old = Store {
                file: dir.join(format!("{name}.state.json")),
            };
            if old.file == store.file || store.file.exists() {
                continue;
            }
            let Ok(Some(state)) = old.load() else {
                continue;
            };
            if !mine(&state.path) {
                continue;
            }
            fs::rename(&old.file, &store.file).with_context(|| {
                format!(
                    "renaming the state {} to {}",
                    old.file.display(),
                    store.file.display()
                )
            })?;
            info!(
                "state {} renamed to {} (named after what --file resolves to)",
                old.file.display(),
                store.file.display()
            );
        }
        Ok(store)
    }

    /// Read the saved state; `None` if there is none yet.
    pub fn load(&self) -> Result<Option<State>> {
        let Some(state) = self.load_json::<State>()? else {
            return Ok(None);
        };
        if !(1..=VERSION).contains(&state.version) {
            bail!(
                "state file {} has version {}, this cdrship reads version {VERSION}",
                self.file.display(),
                state.version
            );
        }
        Ok(Some(state))
    }

    /// Read what was saved as `T`; `None` if nothing was. Checking its
    /// version is the caller's: each kind of state has its own.
    pub fn load_json<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let text = match fs::read(&self.file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.file.display())),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .with_context(|| format!("state file {} is corrupt", self.file.display()))
    }

    /// When the state was last saved (about when the run that saved it
    /// stopped), if there is one.
    pub fn saved_at(&self) -> Option<std::time::SystemTime> {
        fs::metadata(&self.file).and_then(|m| m.modified()).ok()
    }

    /// Atomically replace the saved state (a [`State`], or another kind's).
    pub fn save(&self, state: &impl Serialize) -> Result<()> {
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

    /// Take this state's lock (beside it, `.lock` for `.state.json`),
    /// held while the returned handle lives.
    pub fn lock(&self, followed: &Path) -> Result<Lock> {
        lock(&self.file.with_extension("lock"), || {
            format!(
                "{} is followed by another cdrship with the same --state-dir (its progress {} is locked)",
                followed.display(),
                self.file.display()
            )
        })
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
            file: FileId::of(&fs::metadata(".").unwrap()),
            offset: 42,
            window: None,
            draining: Vec::new(),
            written: None,
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
        // A version 1 state (no head identity, no draining files) loads.
        fs::write(
            store.path(),
            br#"{"version":1,"path":"x","file":{"dev":1,"ino":2,"fingerprint":7},"offset":1}"#,
        )
        .unwrap();
        let v1 = store.load().unwrap().unwrap();
        assert_eq!((v1.file.ino, v1.offset, v1.file.head_len), (2, 1, 0));
        assert!(v1.draining.is_empty());
    }
}
