//! A followed file (Asterisk's Master.csv): read from the saved position,
//! follow appends, and survive rename+create rotation by finishing the old
//! file before switching to the new one.
//!
//! Directory events (notify) only wake the reader early; a periodic
//! re-check is the source of truth, so filesystems without events (NFS)
//! still work. Progress is saved whenever the tracker's watermark moves.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use notify::{RecursiveMode, Watcher as _};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::acker::{Mark, Tracker};
use crate::checkpoint::{FileId, Progress, State};
use crate::route::{Position, Router};

mod current;
mod resume;

use current::{
    directory_of, end_of_last_line, path_state, read_head, truncated, Current, PathState,
};
use resume::open;

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
    mut progress: Option<&mut Progress>,
    stop: &CancellationToken,
) -> Result<()> {
    let wake = Arc::new(Notify::new());
    let _watcher = watch_directory(cfg.path, wake.clone());
    let mut ticker =
        tokio::time::interval(cfg.options.poll_interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let (saved, ever_saved) = match progress.as_deref() {
        Some(p) => load_state(p),
        None => (None, false),
    };
    let mut generation = 0;
    let mut announced = false;
    let mut current = loop {
        if let Some(current) = open(cfg.path, saved.as_ref(), generation, cfg.max_line)? {
            break current;
        }
        if !announced {
            info!("{}: waiting for the file to appear", cfg.path.display());
            announced = true;
        }
        tokio::select! {
            () = wake.notified() => {}
            _ = ticker.tick() => {}
            () = stop.cancelled() => return Ok(()),
        }
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
    if current.framer.offset() > 0 {
        // Resuming mid-file: with --header, the names are in line one.
        let head = &current.head;
        let line = head.split(|&b| b == b'\n').next().unwrap_or(head);
        router.learn_header(line.strip_suffix(b"\r").unwrap_or(line));
    }
    if let Some(p) = progress.as_deref_mut() {
        p.opened(current.generation, current.id);
    }

    let mut last_growth = tokio::time::Instant::now();
    loop {
        // Before reading: after copytruncate the old position may already
        // hold new bytes, which must not be read as if they continued a line.
        if let PathState::Same { len } = path_state(cfg.path, &current) {
            if truncated(&current, len)? {
                warn!(
                    "{}: truncated (now {len} bytes, read position {}); copytruncate?",
                    cfg.path.display(),
                    current.framer.offset()
                );
                finish_from_copy(cfg.path, &mut current, router, stop).await?;
                // Offsets restart: a new generation keeps positions unambiguous.
                generation += 1;
                current.generation = generation;
                current.seek(0)?;
                current.head.clear();
                current.refresh_head()?;
                router.expect_header();
                if let Some(p) = progress.as_deref_mut() {
                    p.opened(current.generation, current.id);
                }
            }
        }
        if read_available(&mut current, router, stop).await? {
            last_growth = tokio::time::Instant::now();
        }
        if stop.is_cancelled() {
            return Ok(());
        }
        save(&mut progress, tracker, &current);
        cfg.lag.store(lag(tracker, &current), Ordering::Relaxed);
        match path_state(cfg.path, &current) {
            PathState::Replaced => {
                // Lines appended to the old file before the rename are read
                // first; a last line without newline is shipped as it is.
                read_available(&mut current, router, stop).await?;
                if let Some(frame) = current.framer.finish() {
                    let at = position(current.generation, &current.id, frame.end());
                    router.route(frame, Some(at)).await;
                }
                generation += 1;
                if let Some((next, _)) = Current::open(cfg.path, generation, cfg.max_line)? {
                    info!("{}: rotated; now reading the new file", cfg.path.display());
                    current = next;
                    router.expect_header();
                    if let Some(p) = progress.as_deref_mut() {
                        p.opened(current.generation, current.id);
                    }
                    continue;
                }
            }
            PathState::Same { .. } | PathState::Missing => {}
        }
        let partial_deadline = cfg
            .options
            .partial_line_timeout
            .filter(|_| current.framer.has_partial())
            .map(|timeout| last_growth + timeout);
        tokio::select! {
            () = wake.notified() => {}
            _ = ticker.tick() => {}
            () = tracker.wait_advanced() => {}
            () = sleep_until(partial_deadline) => {
                if let Some(frame) = current.framer.finish() {
                    info!("{}: shipping an unterminated last line (--partial-line-timeout)", cfg.path.display());
                    let at = position(current.generation, &current.id, frame.end());
                    router.route(frame, Some(at)).await;
                }
            }
            () = stop.cancelled() => return Ok(()),
        }
    }
}

/// Sleep until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The position of a line ending at `end` in the file `file`.
fn position(generation: u32, file: &FileId, end: u64) -> Position<'_> {
    Position {
        mark: Mark {
            generation,
            offset: end,
        },
        file,
    }
}

/// Save the watermark; a failing disk is logged, not fatal: the worst
/// outcome is re-sending lines after a restart, never losing them.
fn save(progress: &mut Option<&mut Progress>, tracker: &Tracker, current: &Current) {
    if let Some(p) = progress.as_deref_mut() {
        // The fingerprint may have become known since the file was opened.
        p.opened(current.generation, current.id);
        if let Err(e) = p.save(tracker.watermark()) {
            warn!("{e:#}");
        }
    }
}

/// Bytes of the current file behind the delivered position (all of it
/// while the watermark is still in an older file).
fn lag(tracker: &Tracker, current: &Current) -> u64 {
    let len = current.file.metadata().map_or(0, |m| m.len());
    match tracker.watermark() {
        Some(mark) if mark.generation == current.generation => len.saturating_sub(mark.offset),
        _ => len,
    }
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
/// are only in the copy (`PATH.1`). Read them from there when the copy's
/// head matches ours, so the rotation window shrinks to the copy itself.
async fn finish_from_copy(
    path: &Path,
    current: &mut Current,
    router: &mut Router,
    stop: &CancellationToken,
) -> Result<()> {
    let mut copy_path = path.as_os_str().to_owned();
    copy_path.push(".1");
    let copy_path = PathBuf::from(copy_path);
    let read_to = current
        .file
        .stream_position()
        .context("position in the followed file")?;
    let copy = match File::open(&copy_path) {
        Ok(copy) => copy,
        Err(_) => return Ok(()),
    };
    let long_enough = copy.metadata().is_ok_and(|m| m.len() >= read_to);
    if !long_enough || !read_head(&copy)?.starts_with(&current.head) {
        warn!(
            "{}: truncated, and {} is not its copy; lines written just before the truncation may be missing",
            path.display(),
            copy_path.display()
        );
        return Ok(());
    }
    let original = std::mem::replace(&mut current.file, copy);
    current.file.seek(SeekFrom::Start(read_to))?;
    read_available(current, router, stop).await?;
    if let Some(frame) = current.framer.finish() {
        let at = position(current.generation, &current.id, frame.end());
        router.route(frame, Some(at)).await;
    }
    info!(
        "{}: read the rest of the truncated content from {}",
        path.display(),
        copy_path.display()
    );
    current.file = original;
    Ok(())
}

/// Read and route everything up to the current end of the file; true if
/// there was anything. A partial last line stays in the framer until its
/// newline arrives.
async fn read_available(
    current: &mut Current,
    router: &mut Router,
    stop: &CancellationToken,
) -> Result<bool> {
    let mut grew = false;
    loop {
        // Regular-file reads come from the page cache; a blocking read here
        // is cheaper than a thread hop per chunk.
        let n = match current.file.read(current.framer.space()) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the followed file"),
        };
        if n == 0 {
            return Ok(grew);
        }
        grew = true;
        current.framer.filled(n);
        current.refresh_head()?;
        while let Some(frame) = current.framer.next_frame() {
            let at = position(current.generation, &current.id, frame.end());
            router.route(frame, Some(at)).await;
        }
        if stop.is_cancelled() {
            return Ok(grew);
        }
    }
}

/// Watch the file's directory: events on the file and its re-creation both
/// arrive there. Without a watcher, polling alone still works.
fn watch_directory(path: &Path, wake: Arc<Notify>) -> Option<notify::RecommendedWatcher> {
    let dir = directory_of(path);
    let watch = || -> notify::Result<notify::RecommendedWatcher> {
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok() {
                    wake.notify_one();
                }
            })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        Ok(watcher)
    };
    match watch() {
        Ok(watcher) => Some(watcher),
        Err(e) => {
            warn!("{}: no change events ({e}); polling only", dir.display());
            None
        }
    }
}
