//! The file-mode writer: numbered CDR lines appended the way PBXs do it.
//! Either open-append-close per line (Asterisk cdr_csv), or one descriptor
//! held across rotations and reopened late (a daemon reopening on SIGHUP).
//! Lines may come in bursts, and a last line may be left half-written
//! until the next batch. All state sits on a [`Desk`] behind one mutex:
//! the driver takes it to rotate between batches or to write by itself.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::oracle::Oracle;
use crate::rng::Rng;
use crate::schedule::WriterPlan;

/// The first line of every file when the schedule wants equal first lines.
pub const HEADER: &str = "\"accountcode\",\"src\",\"dst\",\"dcontext\",\"clid\",\"name\"\n";

/// Line `n` as cdr_csv would write it (the number is field 5).
pub fn line(n: u64) -> String {
    format!("\"\",\"100\",\"200\",\"explore\",{n},\"Иван\"\n")
}

/// The writer's state and the oracle it reports to.
pub struct Desk {
    /// The followed path.
    pub path: PathBuf,
    /// Where every line went.
    pub oracle: Oracle,
    plan: WriterPlan,
    held: Option<File>,
    /// Batches before a held descriptor is reopened at the path.
    reopen_in: Option<u32>,
    /// The unwritten rest of a half-written line.
    rest: Option<(u64, Vec<u8>)>,
    /// Lines the background batches write before they slow to a trickle.
    budget: u64,
}

impl Desk {
    /// A desk for `path` with nothing written; background batches slow
    /// to a trickle at `budget` lines (steps still write theirs).
    pub fn new(path: PathBuf, plan: WriterPlan, budget: u64) -> Desk {
        Desk {
            path,
            oracle: Oracle::default(),
            plan,
            held: None,
            reopen_in: None,
            rest: None,
            budget,
        }
    }

    /// Write `count` whole lines now.
    pub fn write_lines(&mut self, count: u64) -> Vec<u64> {
        self.complete_partial();
        (0..count)
            .map(|_| {
                let n = self.oracle.allocate();
                self.append(line(n).as_bytes(), n);
                n
            })
            .collect()
    }

    /// Finish a half-written line (before a rotation: a write in progress
    /// completes before logrotate runs).
    pub fn complete_partial(&mut self) {
        if let Some((n, rest)) = self.rest.take() {
            self.append(&rest, n);
        }
    }

    /// The inode of the held descriptor's file if it was deleted.
    pub fn held_deleted(&self) -> Option<u64> {
        let meta = self.held.as_ref()?.metadata().ok()?;
        (meta.nlink() == 0).then(|| meta.ino())
    }

    /// A held descriptor is reopened after `batches` more batches.
    pub fn reopen_after(&mut self, batches: u32) {
        if self.held.is_some() {
            self.reopen_in = Some(batches);
        }
    }

    /// Reopen a held descriptor at the path now.
    pub fn reopen_now(&mut self) {
        self.complete_partial();
        if let Some(old) = self.held.take() {
            let meta = old.metadata().expect("metadata of the held file");
            if meta.nlink() == 0 {
                // Deleted: once closed, its inode number may be reused.
                self.oracle.unlinked(meta.ino());
            }
        }
        self.reopen_in = None;
    }

    /// One batch of the writer thread.
    fn batch(&mut self, rng: &mut Rng) {
        self.complete_partial();
        match self.reopen_in {
            Some(0) => self.reopen_now(),
            Some(n) => self.reopen_in = Some(n - 1),
            None => {}
        }
        // Over budget, a trickle (~25 lines/s): a step still needs a line
        // in the file at the path to know cdrship reached it.
        let count = if self.oracle.written() >= self.budget {
            u64::from(rng.chance(5))
        } else if self.plan.bursts && rng.chance(3) {
            rng.range(100, 400)
        } else {
            rng.range(1, 5)
        };
        self.write_lines(count);
        if self.plan.partial && rng.chance(10) {
            let n = self.oracle.allocate();
            let text = line(n).into_bytes();
            let cut = rng.range(1, text.len() as u64 - 1) as usize;
            self.append(&text[..cut], n);
            self.rest = Some((n, text[cut..].to_vec()));
        }
    }

    /// Append `bytes` (all or part of line `n`) as this writer does.
    fn append(&mut self, bytes: &[u8], n: u64) {
        let no_append = self.plan.no_append;
        let open = || {
            let mut file = OpenOptions::new()
                .create(true)
                .append(!no_append)
                .write(true)
                .open(&self.path)
                .expect("opening the followed path for append");
            // Without O_APPEND: at the end once, then at its own offset,
            // also after a copytruncate (a hole of NUL bytes).
            std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).expect("seeking to the end");
            file
        };
        let mut opened;
        let file = if self.plan.held {
            self.held.get_or_insert_with(open)
        } else {
            opened = open();
            &mut opened
        };
        let meta = file.metadata().expect("metadata of the written file");
        if self.plan.header && meta.len() == 0 {
            file.write_all(HEADER.as_bytes())
                .expect("writing the header");
        }
        file.write_all(bytes).expect("appending a line");
        if self.oracle.lines_in(meta.ino()).last() != Some(&n) {
            self.oracle.record(meta.ino(), n);
        }
    }
}

/// Appends numbered lines in a thread until finished.
pub struct Writer {
    desk: Arc<Mutex<Desk>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Start writing through `desk`; `rng` shapes the batches.
    pub fn start(desk: Desk, mut rng: Rng) -> Writer {
        let desk = Arc::new(Mutex::new(desk));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (desk, stop) = (desk.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    desk.lock().unwrap().batch(&mut rng);
                    // Load shaping, not synchronisation: ~1500 lines/s.
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        Writer {
            desk,
            stop,
            thread: Some(thread),
        }
    }

    /// The desk, with the writer paused until the guard is dropped.
    pub fn pause(&self) -> MutexGuard<'_, Desk> {
        self.desk.lock().unwrap()
    }

    /// Stop writing; the last line is completed.
    pub fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("writer thread");
        }
        self.pause().complete_partial();
    }
}
