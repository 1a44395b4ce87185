//! File-mode progress: which files are being read (the followed path's
//! current file, and older ones a writer still appends to after a
//! rotation) and how far each is delivered, saved as one [`State`].
//!
//! A file stays in the state until every line read from it is delivered,
//! also after the reader let it go: a crash before then re-reads its tail
//! at the next start instead of losing it.
//!
//! The file source registers files as it opens and lets go of them; the
//! pipeline's committer saves. The table's lock is held only to note a
//! file or to compute the state; the disk write (with its fsyncs) runs
//! outside it, so a slow disk never holds up reading.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Result;

use super::{Resume, State, Store, VERSION};
use crate::acker::Tracker;
use crate::position::FileId;
use crate::sync::lock;

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

/// The files read and what was saved of them.
#[derive(Debug, Default)]
struct Table {
    /// Oldest first; the last is the file at the followed path.
    files: Vec<Tracked>,
    saved: Option<State>,
}

/// Saves how far the files being read are delivered.
#[derive(Debug)]
pub struct Progress {
    store: Store,
    followed: PathBuf,
    table: Mutex<Table>,
    /// Held for a whole save: one at a time (they share the temp file),
    /// each computed from the watermark after the one before it.
    saving: Mutex<()>,
    /// Held for the life of the progress: one process per followed file.
    _lock: std::fs::File,
}

impl Progress {
    /// Progress for `followed`, stored in `store`; refused while another
    /// process holds it.
    pub fn new(store: Store, followed: PathBuf) -> Result<Self> {
        Ok(Progress {
            _lock: store.lock(&followed)?,
            store,
            followed,
            table: Mutex::default(),
            saving: Mutex::new(()),
        })
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
    pub fn opened(&self, generation: u32, id: FileId, start: u64) {
        let mut table = lock(&self.table);
        match table.files.iter_mut().find(|f| f.generation == generation) {
            Some(known) => known.id = id,
            None => table.files.push(Tracked {
                generation,
                id,
                start,
                end: None,
            }),
        }
    }

    /// Reading `generation` ended at `end`; it leaves the state once its
    /// lines are delivered.
    pub fn closed(&self, generation: u32, end: u64) {
        if let Some(file) = lock(&self.table)
            .files
            .iter_mut()
            .find(|f| f.generation == generation)
        {
            file.end = Some(end);
        }
    }

    /// Save how far each file is delivered, if that changed.
    pub fn save(&self, tracker: &Tracker) -> Result<()> {
        let _saving = lock(&self.saving);
        let Some(state) = self.due(tracker) else {
            return Ok(());
        };
        self.store.save(&state)?;
        debug!("progress saved: byte {} of {}", state.offset, state.file);
        lock(&self.table).saved = Some(state);
        Ok(())
    }

    /// The state to save, if it changed since the last save.
    fn due(&self, tracker: &Tracker) -> Option<State> {
        let mut table = lock(&self.table);
        let delivered = |f: &Tracked| tracker.watermark_of(f.generation).unwrap_or(f.start);
        // Let go and wholly delivered: nothing of it can be lost anymore.
        table
            .files
            .retain(|f| f.end.is_none_or(|end| delivered(f) < end));
        let (newest, older) = table.files.split_last()?;
        // Nothing delivered in this run yet: the saved state (if any) is
        // still right, and a first run has nothing to save.
        let moved = |f: &Tracked| tracker.watermark_of(f.generation).is_some();
        if table.saved.is_none() && !table.files.iter().any(moved) {
            return None;
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
        (table.saved.as_ref() != Some(&state)).then_some(state)
    }

    /// The followed path.
    pub fn followed(&self) -> &Path {
        &self.followed
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
        let progress = Progress::new(store, "x.csv".into()).unwrap();
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
