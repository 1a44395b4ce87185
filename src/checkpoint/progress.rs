//! File-mode progress: which files are being read (the followed path's
//! current file, and older ones a writer still appends to after a
//! rotation) and how far each is delivered, saved as one [`State`].
//!
//! A file stays in the state until every line read from it is delivered,
//! also after the reader let it go: a crash before then re-reads its tail
//! at the next start instead of losing it.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{Resume, State, Store, VERSION};
use crate::acker::Tracker;
use crate::position::FileId;

/// One file read in this run, by generation.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    generation: u32,
    id: FileId,
    /// The offset reading started at (nothing before it is in flight).
    start: u64,
    /// Where reading ended when the file was let go.
    end: Option<u64>,
}

/// Saves how far the files being read are delivered.
#[derive(Debug)]
pub struct Progress {
    store: Store,
    followed: PathBuf,
    /// Oldest first; the last is the file at the followed path.
    files: Vec<Tracked>,
    saved: Option<State>,
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

    /// When the state was last saved, if there is one.
    pub fn saved_at(&self) -> Option<std::time::SystemTime> {
        self.store.saved_at()
    }

    /// Reading `id` started at `start` as `generation` (again when its
    /// identity grew: the head is read as the file fills).
    pub fn opened(&mut self, generation: u32, id: FileId, start: u64) {
        match self.files.iter_mut().find(|f| f.generation == generation) {
            Some(known) => known.id = id,
            None => self.files.push(Tracked {
                generation,
                id,
                start,
                end: None,
            }),
        }
    }

    /// Reading `generation` ended at `end`; it leaves the state once its
    /// lines are delivered.
    pub fn closed(&mut self, generation: u32, end: u64) {
        if let Some(file) = self.files.iter_mut().find(|f| f.generation == generation) {
            file.end = Some(end);
        }
    }

    /// Save how far each file is delivered, if that changed.
    pub fn save(&mut self, tracker: &Tracker) -> Result<()> {
        let delivered = |f: &Tracked| tracker.watermark_of(f.generation).unwrap_or(f.start);
        // Let go and wholly delivered: nothing of it can be lost anymore.
        self.files
            .retain(|f| f.end.is_none_or(|end| delivered(f) < end));
        let Some((newest, older)) = self.files.split_last() else {
            return Ok(());
        };
        // Nothing delivered in this run yet: the saved state (if any) is
        // still right, and a first run has nothing to save.
        let moved = |f: &Tracked| tracker.watermark_of(f.generation).is_some();
        if self.saved.is_none() && !self.files.iter().any(moved) {
            return Ok(());
        }
        let state = State {
            version: VERSION,
            path: self.followed.clone(),
            file: newest.id,
            offset: delivered(newest),
            draining: older
                .iter()
                .map(|f| Resume {
                    file: f.id,
                    offset: delivered(f),
                })
                .collect(),
        };
        if self.saved.as_ref() == Some(&state) {
            return Ok(());
        }
        self.store.save(&state)?;
        debug!("progress saved: byte {} of {}", state.offset, state.file);
        self.saved = Some(state);
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
    use crate::position::Mark;
    use tokio_util::sync::CancellationToken;

    #[test]
    fn a_let_go_file_stays_until_delivered_and_each_file_has_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), Path::new("x.csv")).unwrap();
        let mut progress = Progress::new(store, "x.csv".into());
        let tracker = Tracker::new(CancellationToken::new());
        let id = |ino| FileId {
            ino,
            ..FileId::of(&std::fs::metadata(".").unwrap())
        };
        let at = |generation, offset| Some(Mark { generation, offset });
        progress.opened(0, id(10), 100);
        progress.save(&tracker).unwrap();
        assert_eq!(
            progress.load().unwrap(),
            None,
            "nothing delivered, nothing saved"
        );

        let old = tracker.begin(at(0, 150), false, 1);
        progress.opened(1, id(11), 0);
        let new = tracker.begin(at(1, 30), false, 1);
        // The writer still appends to the rotated file.
        let old_tail = tracker.begin(at(0, 170), false, 1);
        progress.closed(0, 170);
        tracker.delivered(old);
        tracker.delivered(new);
        progress.save(&tracker).unwrap();
        let saved = progress.load().unwrap().unwrap();
        assert_eq!((saved.file.ino, saved.offset), (11, 30));
        assert_eq!(
            saved.draining,
            [Resume {
                file: id(10),
                offset: 150
            }]
        );

        tracker.delivered(old_tail);
        progress.save(&tracker).unwrap();
        let saved = progress.load().unwrap().unwrap();
        assert_eq!((saved.file.ino, saved.offset), (11, 30));
        assert!(saved.draining.is_empty(), "delivered to its end: gone");
    }
}
