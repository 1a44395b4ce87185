//! One process per spool or per followed file's state: a lock file held
//! (`flock`) for the life of the process, since two would send every line
//! twice and overwrite each other's position.
//!
//! flock cannot be taken away, but the lock *file* can be deleted or
//! replaced, and then a second process takes a lock of its own on the new
//! file. [`Lock::check`] finds that out; the committer runs it with every
//! save and every second, and a process that lost its lock stops writing.

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

/// A lock file held while this lives.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

/// The lock file was deleted or replaced while this process held it.
#[derive(Debug)]
pub struct LockLost(PathBuf);

impl std::fmt::Display for LockLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the lock file {} was deleted or replaced while this cdrship held it; stopping, \
             since another cdrship may now ship the same lines (nothing more is saved)",
            self.0.display()
        )
    }
}

impl std::error::Error for LockLost {}

impl Lock {
    /// Whether the file at the lock's path is still the one held.
    pub fn check(&self) -> Result<(), LockLost> {
        let lost = || LockLost(self.path.clone());
        let held = self.file.metadata().map_err(|_| lost())?;
        match fs::metadata(&self.path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => Ok(()),
            _ => Err(lost()),
        }
    }
}

/// Take the lock file at `path` for the life of the returned [`Lock`].
/// When another process holds it, the error is `in_use`.
pub fn lock(path: &Path, in_use: impl FnOnce() -> String) -> Result<Lock> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Lock {
            file,
            path: path.to_owned(),
        }),
        Err(fs::TryLockError::WouldBlock) => bail!(in_use()),
        Err(fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_or_replaced_lock_file_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = lock(&path, || "in use".into()).unwrap();
        assert!(held.check().is_ok());
        let second = lock(&path, || "in use".into()).unwrap_err();
        assert_eq!(second.to_string(), "in use");
        fs::remove_file(&path).unwrap();
        assert!(held.check().is_err(), "deleted");
        let other = lock(&path, || "in use".into()).unwrap();
        assert!(other.check().is_ok());
        assert!(held.check().is_err(), "replaced by another process's lock");
    }
}
