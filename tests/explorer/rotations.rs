//! Rotations of the followed path in every style logrotate and PBXs use,
//! each applied on the writer's [`Desk`] (so between two batches) and told
//! to the oracle: which inode lost its name, what was copied, which lines
//! were destroyed or fell into logrotate's copy/truncate window.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::common::collector::Collector;
use crate::oracle::Reason;
use crate::schedule::{Naming, Rotation};
use crate::writer::Desk;

/// Names rotated files and applies rotations.
pub struct Rotator {
    numbered: u32,
    day: u32,
}

/// The inode at `path`, if anything is there.
pub fn inode(path: &Path) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.ino())
}

impl Rotator {
    /// A rotator that has named nothing yet.
    pub fn new() -> Rotator {
        Rotator {
            numbered: 0,
            day: 0,
        }
    }

    /// Apply `rotation` to the desk's path. `running` says whether cdrship
    /// runs (a file deleted while it is stopped is destroyed for it);
    /// `caught_up` waits until the listed lines arrived (false: gave up).
    /// Returns what happened, for the log.
    pub fn rotate(
        &mut self,
        desk: &mut Desk,
        rotation: Rotation,
        running: bool,
        collector: &Collector,
        caught_up: &dyn Fn(&[u64]) -> bool,
    ) -> String {
        desk.complete_partial();
        let path = desk.path.clone();
        let arrived = |n| collector.has(n);
        let Some(ino) = inode(&path) else {
            return format!("{rotation:?}: no file at the path, nothing to rotate");
        };
        match rotation {
            Rotation::RenameCreate(naming) | Rotation::RenameLazy(naming) => {
                let target = self.target(desk, &path, naming, running, &arrived);
                fs::rename(&path, &target).expect("renaming the followed file");
                if matches!(rotation, Rotation::RenameCreate(_)) {
                    File::create(&path).expect("creating the followed path");
                }
                format!("{rotation:?}: renamed to {}", name(&target))
            }
            Rotation::CopyTruncate { naming, window } => {
                let target = self.target(desk, &path, naming, running, &arrived);
                fs::copy(&path, &target).expect("copying the followed file");
                let copy = inode(&target).expect("the copy exists");
                desk.oracle.copied(ino, copy);
                let raced = desk.write_lines(u64::from(window));
                desk.oracle.exempt_all(&raced, Reason::CopyWindow);
                truncate(&path);
                desk.oracle.emptied(ino);
                format!(
                    "{rotation:?}: copied to {}, {} lines in the window",
                    name(&target),
                    raced.len()
                )
            }
            Rotation::TruncateInPlace { catch_up } => {
                let lines = desk.oracle.lines_in(ino).to_vec();
                let waited = catch_up && caught_up(&lines);
                truncate(&path);
                desk.oracle.emptied(ino);
                let exempt = desk.oracle.destroyed(&lines, arrived);
                format!("{rotation:?}: caught up {waited}, {exempt} unread lines destroyed")
            }
            Rotation::Shrink { lines } => {
                let text = fs::read(&path).expect("reading the followed file");
                let mut cut = text.len();
                let mut removed = Vec::new();
                while removed.len() < lines as usize && cut > 0 {
                    let start = text[..cut - 1]
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(0, |i| i + 1);
                    let line = String::from_utf8_lossy(&text[start..cut]);
                    match line.split(',').nth(4).and_then(|n| n.parse().ok()) {
                        Some(n) => removed.push(n),
                        None => break, // the header line stays
                    }
                    cut = start;
                }
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(cut as u64))
                    .expect("shortening the followed file");
                desk.oracle.shortened(ino, &removed);
                removed.reverse();
                let exempt = desk.oracle.destroyed(&removed, arrived);
                format!(
                    "{rotation:?}: {} lines cut off, {exempt} of them unread",
                    removed.len()
                )
            }
            Rotation::DeleteRecreate { lazy } => {
                fs::remove_file(&path).expect("removing the followed file");
                let lines = desk.oracle.unlinked(ino);
                let exempt = if running {
                    0
                } else {
                    desk.oracle.destroyed(&lines, arrived)
                };
                if !lazy {
                    File::create(&path).expect("recreating the followed path");
                }
                let reused = inode(&path) == Some(ino);
                format!("{rotation:?}: inode reused {reused}, {exempt} unread lines destroyed")
            }
        }
    }

    /// The name a rotated file gets. An older file of that name is removed
    /// and told to the oracle; while cdrship is stopped that destroys what
    /// it had not read (the saved file itself, after several rotations).
    fn target(
        &mut self,
        desk: &mut Desk,
        path: &Path,
        naming: Naming,
        running: bool,
        arrived: &dyn Fn(u64) -> bool,
    ) -> PathBuf {
        let numbered = |n: u32| sibling(path, &format!(".{n}"));
        let target = match naming {
            Naming::Dot1 => numbered(1),
            Naming::Shifted => {
                let mut top = 1;
                while numbered(top).exists() {
                    top += 1;
                }
                for n in (1..top).rev() {
                    fs::rename(numbered(n), numbered(n + 1)).expect("shifting a rotated file");
                }
                numbered(1)
            }
            Naming::Numbered => {
                self.numbered += 1;
                while numbered(self.numbered).exists() {
                    self.numbered += 1;
                }
                numbered(self.numbered)
            }
            Naming::Dateext => {
                self.day += 1;
                sibling(path, &format!("-202612{:02}", self.day))
            }
        };
        if let Some(old) = inode(&target) {
            // Replaced (rename) or rewritten (copy): its content is gone.
            fs::remove_file(&target).expect("removing an old rotated file");
            let lines = desk.oracle.unlinked(old);
            if !running {
                desk.oracle.destroyed(&lines, arrived);
            }
        }
        target
    }
}

fn truncate(path: &Path) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(0))
        .expect("truncating the followed file");
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

fn name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}
