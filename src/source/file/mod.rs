//! A followed file (Asterisk's Master.csv): read from the saved positions,
//! follow appends, and survive every rotation: a renamed or deleted file
//! is read on beside the new one while it still grows (`rotated`), a
//! truncated one is finished from its copy (`copy`).
//!
//! Directory events (notify) only wake the reader early; a periodic
//! re-check is the source of truth, so filesystems without events (NFS)
//! still work. The source notes in the [`Progress`] which files it reads
//! and lets go of; the pipeline's committer saves it.

use std::io::{Seek as _, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::acker::Tracker;
use crate::checkpoint::{Progress, State};
use crate::route::Router;

mod copy;
mod current;
mod head;
mod missed;
mod reader;
mod resolve;
mod resume;
mod rotated;

pub use resolve::resolve;

use current::{directory_of, end_of_last_line, path_state, truncated, Current, PathState};
use missed::{Finished, Late};
use reader::{read_available, Last};
use rotated::Rotated;

use crate::args::StartAt;

/// How a file is followed (from the command line).
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Re-check period without events.
    pub poll_interval: Duration,
    /// Start of a file without saved progress.
    pub from: StartAt,
    /// Ship an unterminated last line after this long without new bytes.
    pub partial_line_timeout: Option<Duration>,
    /// How long a rotated-away file is read on after it stopped growing.
    pub rotate_grace: Duration,
}

/// Settings of the file source.
pub struct Follow<'a> {
    /// The path to follow.
    pub path: &'a Path,
    /// How to follow it.
    pub options: FollowOptions,
    /// Longest line.
    pub max_line: usize,
    /// Bytes of the current file not yet delivered, for the metrics.
    pub lag: &'a AtomicU64,
}

/// Follow `cfg.path` until `stop`, routing every line with its position.
pub async fn run(
    cfg: Follow<'_>,
    router: &mut Router,
    tracker: &Tracker,
    progress: Option<&Progress>,
    stop: &CancellationToken,
) -> Result<()> {
    let wake = Arc::new(Notify::new());
    let _watcher = watch_directory(cfg.path, wake.clone());
    let mut ticker =
        tokio::time::interval(cfg.options.poll_interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let grace = cfg.options.rotate_grace;

    let (saved, ever_saved) = match progress {
        Some(p) => load_state(p),
        None => (None, false),
    };
    let mut generation = 0;
    let saved_at = progress.and_then(Progress::saved_at);
    let saved = saved.as_ref().map(|state| (state, saved_at));
    let resumed = resume::open(cfg.path, saved, &mut generation, cfg.max_line)?;
    let mut rotated = Vec::new();
    for mut file in resumed.rotated {
        let mut own = router.for_source(router.label().to_owned());
        learn_header(&mut file, &mut own);
        rotated.push(Rotated::new(file, own));
    }
    let mut announced = false;
    // A saved file rotated away with nothing at the path yet: it is the
    // current file until the path reappears.
    let mut current = match resumed.current.or_else(|| rotated.pop().map(|r| r.file)) {
        Some(current) => current,
        None => loop {
            if !announced {
                info!("{}: waiting for the file to appear", cfg.path.display());
                announced = true;
            }
            tokio::select! {
                () = wake.notified() => {}
                _ = ticker.tick() => {}
                () = stop.cancelled() => return Ok(()),
            }
            if let Some((current, _)) = Current::open(cfg.path, generation, cfg.max_line)? {
                generation += 1;
                break current;
            }
        },
    };
    // --from applies to a first start only: a state that exists but cannot
    // be used means reading from the start (duplicates, never a skip).
    if !ever_saved && !announced && cfg.options.from == StartAt::End {
        let start = end_of_last_line(&current.file)?;
        info!(
            "{}: --from end: skipping the {start} bytes already there",
            cfg.path.display()
        );
        current.seek(start)?;
    }
    learn_header(&mut current, router);
    if let Some(p) = progress {
        for file in rotated.iter().map(|r| &r.file).chain([&current]) {
            p.opened(file.generation, file.id, file.framer.offset(), &file.file);
        }
        p.started(tracker)?;
    }

    let mut finished = Finished::default();
    let mut last_growth = tokio::time::Instant::now();
    loop {
        // Before reading: after copytruncate the old position may already
        // hold new bytes, which must not be read as if they continued a line.
        // Through the descriptor, wherever the file is now: truncated and
        // then renamed away while reading was paused is truncated too.
        if let Ok(len) = current.file.metadata().map(|m| m.len()) {
            if truncated(&current, len)? {
                warn!(
                    "{}: truncated (now {len} bytes, read position {}); copytruncate?",
                    cfg.path.display(),
                    current.framer.offset()
                );
                let end = finish_from_copy(cfg.path, &mut current, router, stop).await?;
                if let Some(p) = progress {
                    p.closed(current.generation, end);
                }
                let late = Late {
                    path: cfg.path,
                    since: current.since,
                    max_line: cfg.max_line,
                    finished: &finished,
                };
                late.find(&mut generation, &current, &mut rotated, router, progress)?;
                finished.note(&current);
                // Offsets restart: a new generation keeps positions unambiguous.
                current.generation = generation;
                current.since = std::time::SystemTime::now();
                generation += 1;
                current.seek(0)?;
                current.head.clear();
                current.refresh_head()?;
                router.expect_header();
                if let Some(p) = progress {
                    p.opened(current.generation, current.id, 0, &current.file);
                }
            }
        }
        // Rotated files first: what they hold was written before the new
        // file's lines, unless a writer still appends to them.
        rotated::drain(&mut rotated, grace, (progress, &mut finished), stop).await?;
        if read_available(&mut current, router, stop).await? {
            last_growth = tokio::time::Instant::now();
        }
        if stop.is_cancelled() {
            return Ok(());
        }
        note_heads(progress, &current, &rotated);
        cfg.lag.store(lag(tracker, &current), Ordering::Relaxed);
        if let PathState::Replaced = path_state(cfg.path, &current) {
            if truncated(&current, current.file.metadata().map_or(0, |m| m.len()))? {
                // Truncated before it was renamed: finished from its copy
                // first, at the top of the loop.
                continue;
            }
            // Lines appended to the old file before the rename are read
            // first; it is read on while it grows (a writer may hold it).
            read_available(&mut current, router, stop).await?;
            if std::fs::metadata(cfg.path).is_ok() {
                // Read in this order: the old file, any rotated in and away
                // since it was opened, then the new one.
                let late = Late {
                    path: cfg.path,
                    since: current.since,
                    max_line: cfg.max_line,
                    finished: &finished,
                };
                let old_at = rotated.len();
                late.find(&mut generation, &current, &mut rotated, router, progress)?;
                let Some((next, _)) = Current::open(cfg.path, generation, cfg.max_line)? else {
                    continue;
                };
                generation += 1;
                info!(
                    "{}: rotated; now reading the new file (and the old one while it grows)",
                    cfg.path.display()
                );
                let old = std::mem::replace(&mut current, next);
                rotated.insert(
                    old_at,
                    Rotated::new(old, router.for_source(router.label().to_owned())),
                );
                router.expect_header();
                if let Some(p) = progress {
                    p.opened(current.generation, current.id, 0, &current.file);
                }
                last_growth = tokio::time::Instant::now();
                continue;
            }
        }
        let partial_deadline = cfg
            .options
            .partial_line_timeout
            .filter(|_| current.framer.has_partial())
            .map(|timeout| last_growth + timeout);
        tokio::select! {
            () = wake.notified() => {}
            _ = ticker.tick() => {}
            () = sleep_until(rotated::next_deadline(&rotated, grace)) => {}
            () = sleep_until(partial_deadline) => {
                info!("{}: shipping an unterminated last line (--partial-line-timeout)", cfg.path.display());
                reader::finish(&mut current, router, Last::Line).await;
            }
            () = stop.cancelled() => return Ok(()),
        }
    }
}

/// With `--header`, a file resumed mid-way has its column names in line
/// one, which is not read again.
fn learn_header(file: &mut Current, router: &mut Router) {
    if file.framer.offset() > 0 {
        let head = &file.head;
        let line = head.split(|&b| b == b'\n').next().unwrap_or(head);
        router.learn_header(line.strip_suffix(b"\r").unwrap_or(line));
    }
}

/// Sleep until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Note the files' identities in the progress: they grow with the head
/// as the files fill.
fn note_heads(progress: Option<&Progress>, current: &Current, rotated: &[Rotated]) {
    if let Some(p) = progress {
        for file in rotated.iter().map(|r| &r.file).chain([current]) {
            p.opened(file.generation, file.id, 0, &file.file);
        }
    }
}

/// Bytes of the current file behind the delivered position (all of it
/// while the watermark is still in an older file).
fn lag(tracker: &Tracker, current: &Current) -> u64 {
    let len = current.file.metadata().map_or(0, |m| m.len());
    len.saturating_sub(tracker.watermark_of(current.generation).unwrap_or(0))
}

/// The saved state, and whether there was one at all (usable or not).
fn load_state(progress: &Progress) -> (Option<State>, bool) {
    match progress.load() {
        Ok(state) => {
            let found = state.is_some();
            (state, found)
        }
        Err(e) => {
            // Reading from the start re-sends lines; guessing would skip them.
            error!("{e:#}; reading the file from the start");
            (None, true)
        }
    }
}

/// After copytruncate, lines appended between our last read and the copy
/// are only in the copy: read them from there (see `copy`); a last line
/// without newline was cut by the truncation (its rest, if any, went to
/// the emptied file); the offset read up to.
async fn finish_from_copy(
    path: &Path,
    current: &mut Current,
    router: &mut Router,
    stop: &CancellationToken,
) -> Result<u64> {
    let read_to = current
        .file
        .stream_position()
        .context("position in the followed file")?;
    let found = match current.head.is_empty() {
        true => None,
        false => copy::find(path, &current.id, &current.head, read_to)?,
    };
    if let Some((copy_path, copy)) = found {
        let original = std::mem::replace(&mut current.file, copy);
        current.file.seek(SeekFrom::Start(read_to))?;
        read_available(current, router, stop).await?;
        info!(
            "{}: read the rest of the truncated content from {}",
            path.display(),
            copy_path.display()
        );
        current.file = original;
    }
    Ok(reader::finish(current, router, Last::Cut).await)
}

/// Watch the file's directory: events on the file and its re-creation both
/// arrive there. Without a watcher, polling alone still works.
fn watch_directory(path: &Path, wake: Arc<Notify>) -> Option<notify::RecommendedWatcher> {
    let dir = directory_of(path);
    match crate::watch::watch_directory(&dir, move |_| wake.notify_one()) {
        Ok(watcher) => Some(watcher),
        Err(e) => {
            warn!("{}: no change events ({e}); polling only", dir.display());
            None
        }
    }
}
