//! One process per spool or per followed file's state: a lock file held
//! (`flock`) for the life of the process, since two would send every line
//! twice and overwrite each other's position.
//!
//! flock cannot be taken away, but the lock *file* can be deleted or
//! replaced, and then a second process takes a lock of its own on the new
//! file. [`Lock::check`] finds that out; the committer runs it with every
//! save and whenever the lock's directory changes ([`Lock::watch`]; every
//! second where it cannot be watched), and a process that lost its lock
//! stops writing.

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use notify::RecommendedWatcher;
use tokio::sync::Notify;

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

impl Lock {
    /// Notify `changed` when the lock file may have been deleted or
    /// replaced (an event naming it, its directory, or none), so a lost
    /// lock is found without checking on a timer. `None` when the
    /// directory cannot be watched: then the caller checks on a timer.
    pub fn watch(&self, changed: Arc<Notify>) -> Option<RecommendedWatcher> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let (path, own_dir) = (self.path.clone(), dir.to_owned());
        let concerns_it = move |event: &notify::Event| {
            event.paths.is_empty() || event.paths.iter().any(|p| *p == path || *p == own_dir)
        };
        crate::watch::watch_directory(dir, move |event| {
            if concerns_it(event) {
                changed.notify_one();
            }
        })
        .inspect_err(|e| debug!("{}: no change events ({e})", dir.display()))
        .ok()
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

    #[tokio::test]
    async fn a_lock_file_renamed_over_wakes_its_watcher() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = lock(&path, || "in use".into()).unwrap();
        let changed = Arc::new(Notify::new());
        let _watcher = held.watch(changed.clone()).expect("inotify on a temp dir");
        let other = dir.path().join("new");
        fs::write(&other, "").unwrap();
        fs::rename(&other, &path).unwrap();
        let woken = tokio::time::timeout(std::time::Duration::from_secs(30), changed.notified());
        woken.await.expect("the rename names the lock file");
        assert!(held.check().is_err());
    }
}
