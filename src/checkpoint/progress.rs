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

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Result;

use super::{Lock, ReadBack, Resume, State, Store, VERSION};
use crate::acker::Tracker;
use crate::position::{FileId, Window};
use crate::sync::lock;

/// One file read in this run, by generation.
#[derive(Debug, Clone)]
struct Tracked {
    generation: u32,
    id: FileId,
    /// The open file, to read the [`Window`] before a saved offset.
    file: Option<Arc<File>>,
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
    /// With `--exactly-once`: what is saved for the read-back.
    read_back: Option<ReadBack>,
    /// Held for the life of the progress: one process per followed file.
    lock: Lock,
}

impl Progress {
    /// Progress for `followed`, stored in `store`; refused while another
    /// process holds it.
    pub fn new(store: Store, followed: PathBuf) -> Result<Self> {
        Ok(Progress {
            lock: store.lock(&followed)?,
            store,
            followed,
            table: Mutex::default(),
            saving: Mutex::new(()),
            read_back: None,
        })
    }

    /// Save where in Kafka this run's messages are, for `--exactly-once`.
    pub fn with_read_back(self, read_back: ReadBack) -> Self {
        Progress {
            read_back: Some(read_back),
            ..self
        }
    }

    /// The files to read first are noted: save where reading starts,
    /// before a line is sent. A run that delivers nothing (Kafka down from
    /// its start) then still leaves the place its lines are read again
    /// from; without it the next start would be a first start, and
    /// `--from end` would skip them. With `--exactly-once` only a fresh
    /// start saves here: a saved state keeps where to read back from.
    pub fn started(&self, tracker: &Tracker) -> Result<()> {
        match &self.read_back {
            Some(read_back) if !read_back.fresh => Ok(()),
            _ => self.save_with(tracker, Save::Start),
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

    /// Reading `id` (open as `file`) started at `start` as `generation`
    /// (again when its identity grew: the head is read as the file fills).
    pub fn opened(&self, generation: u32, id: FileId, start: u64, file: &File) {
        let mut table = lock(&self.table);
        match table.files.iter_mut().find(|f| f.generation == generation) {
            Some(known) => known.id = id,
            None => table.files.push(Tracked {
                generation,
                id,
                // Without its own descriptor the file's offsets are saved
                // without proof, as before windows existed.
                file: file.try_clone().ok().map(Arc::new),
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

    /// Save how far each file is delivered, if that changed; `last` at
    /// shutdown, when nothing is sent anymore.
    pub fn save(&self, tracker: &Tracker, last: bool) -> Result<()> {
        self.save_with(tracker, if last { Save::Last } else { Save::Moved })
    }

    fn save_with(&self, tracker: &Tracker, why: Save) -> Result<()> {
        let _saving = lock(&self.saving);
        // Another process may own the state now: nothing more is saved.
        self.lock.check()?;
        let Some(state) = self.due(tracker, why) else {
            return Ok(());
        };
        self.store.save(&state)?;
        debug!("progress saved: byte {} of {}", state.offset, state.file);
        lock(&self.table).saved = Some(state);
        Ok(())
    }

    /// The state to save, if it changed since the last save.
    fn due(&self, tracker: &Tracker, why: Save) -> Option<State> {
        let passed = self.read_back.as_ref().map(|_| tracker.passed());
        let mut table = lock(&self.table);
        let delivered = |f: &Tracked| tracker.watermark_of(f.generation).unwrap_or(f.start);
        let written = self.read_back.as_ref().map(|read_back| {
            let files: Vec<(String, u64)> = table
                .files
                .iter()
                .map(|f| (f.id.to_string(), delivered(f)))
                .collect();
            let of = |file: &str| files.iter().find(|(id, _)| id == file).map(|f| f.1);
            let clean = why == Save::Last && tracker.all_settled();
            read_back.written(passed.as_deref().unwrap_or_default(), of, clean)
        });
        // Let go and wholly delivered: nothing of it can be lost anymore.
        table
            .files
            .retain(|f| f.end.is_none_or(|end| delivered(f) < end));
        let (newest, older) = table.files.split_last()?;
        // Nothing delivered in this run yet: the saved state (if any) is
        // still right, and a first run has nothing to save.
        let moved = |f: &Tracked| tracker.watermark_of(f.generation).is_some();
        if why != Save::Start && table.saved.is_none() && !table.files.iter().any(moved) {
            return None;
        }
        let resume = |f: &Tracked| {
            let offset = delivered(f);
            Resume {
                file: f.id,
                offset,
                window: f.file.as_ref().and_then(|file| Window::read(file, offset)),
            }
        };
        let current = resume(newest);
        let state = State {
            version: VERSION,
            path: self.followed.clone(),
            file: current.file,
            offset: current.offset,
            window: current.window,
            draining: older.iter().map(resume).collect(),
            written,
        };
        (table.saved.as_ref() != Some(&state)).then_some(state)
    }

    /// The state's lock, to watch.
    pub fn lock(&self) -> &Lock {
        &self.lock
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

/// Why a save is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Save {
    /// Before the first line is sent.
    Start,
    /// The watermark moved.
    Moved,
    /// At shutdown.
    Last,
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
        let file = tempfile::tempfile().unwrap();
        progress.opened(0, id(10), 100, &file);
        progress.save(&tracker, false).unwrap();
        assert_eq!(
            progress.load().unwrap(),
            None,
            "nothing delivered, nothing saved"
        );

        let old = tracker.begin(at(0, 150), false, 1);
        progress.opened(1, id(11), 0, &file);
        let new = tracker.begin(at(1, 30), false, 1);
        // The writer still appends to the rotated file.
        let old_tail = tracker.begin(at(0, 170), false, 1);
        progress.closed(0, 170);
        tracker.delivered(old, None);
        tracker.delivered(new, None);
        progress.save(&tracker, false).unwrap();
        let saved = progress.load().unwrap().unwrap();
        assert_eq!((saved.file.ino, saved.offset), (11, 30));
        assert_eq!(
            saved.draining,
            [Resume {
                file: id(10),
                offset: 150,
                // The test's file holds no bytes to prove.
                window: None,
            }]
        );

        tracker.delivered(old_tail, None);
        progress.save(&tracker, false).unwrap();
        let saved = progress.load().unwrap().unwrap();
        assert_eq!((saved.file.ino, saved.offset), (11, 30));
        assert!(saved.draining.is_empty(), "delivered to its end: gone");
    }
}
