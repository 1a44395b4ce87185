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
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use notify::{RecursiveMode, Watcher as _};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::acker::{Mark, Tracker};
use crate::checkpoint::{FileId, Progress, State};
use crate::framing::Framer;
use crate::route::Router;

/// Settings of the file source.
pub struct Follow<'a> {
    /// The path to follow.
    pub path: &'a Path,
    /// Re-check period without events.
    pub poll_interval: Duration,
    /// Longest line.
    pub max_line: usize,
}

/// The file currently being read.
struct Current {
    file: File,
    id: FileId,
    generation: u32,
    framer: Framer,
}

/// What the path looks like compared to the open file.
enum PathState {
    /// Same file, possibly grown.
    Same { len: u64 },
    /// A different file now lives at the path.
    Replaced,
    /// Nothing at the path (rotated, not yet recreated).
    Missing,
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
    let mut ticker = tokio::time::interval(cfg.poll_interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let saved = match progress.as_deref() {
        Some(p) => load_state(p),
        None => None,
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
    if let Some(p) = progress.as_deref_mut() {
        p.opened(current.generation, current.id);
    }

    loop {
        read_available(&mut current, router, stop).await?;
        if stop.is_cancelled() {
            return Ok(());
        }
        save(&mut progress, tracker);
        match path_state(cfg.path, &current) {
            PathState::Same { len } if len < current.framer.offset() => {
                warn!(
                    "{}: truncated to {len} bytes below read position {}; reading from the start",
                    cfg.path.display(),
                    current.framer.offset()
                );
                current.file.seek(SeekFrom::Start(0))?;
                current.framer.reset(0);
                continue;
            }
            PathState::Replaced => {
                // Lines appended to the old file before the rename are read
                // first; a last line without newline is shipped as it is.
                read_available(&mut current, router, stop).await?;
                if let Some(frame) = current.framer.finish() {
                    let mark = mark(current.generation, frame.end());
                    router.route(frame, Some(mark)).await;
                }
                generation += 1;
                if let Some(next) = open(cfg.path, None, generation, cfg.max_line)? {
                    info!("{}: rotated; now reading the new file", cfg.path.display());
                    current = next;
                    if let Some(p) = progress.as_deref_mut() {
                        p.opened(current.generation, current.id);
                    }
                    continue;
                }
            }
            PathState::Same { .. } | PathState::Missing => {}
        }
        tokio::select! {
            () = wake.notified() => {}
            _ = ticker.tick() => {}
            () = tracker.wait_advanced() => {}
            () = stop.cancelled() => return Ok(()),
        }
    }
}

fn mark(generation: u32, offset: u64) -> Mark {
    Mark { generation, offset }
}

/// Save the watermark; a failing disk is logged, not fatal: the worst
/// outcome is re-sending lines after a restart, never losing them.
fn save(progress: &mut Option<&mut Progress>, tracker: &Tracker) {
    if let Some(p) = progress.as_deref_mut() {
        if let Err(e) = p.save(tracker.watermark()) {
            warn!("{e:#}");
        }
    }
}

fn load_state(progress: &Progress) -> Option<State> {
    match progress.load() {
        Ok(state) => state,
        Err(e) => {
            // Reading from the start re-sends lines; guessing would skip them.
            error!("{e:#}; reading the file from the start");
            None
        }
    }
}

/// Open `path`; `None` if it does not exist. Starts at the saved offset when
/// `saved` describes this very file and the offset is inside it.
fn open(
    path: &Path,
    saved: Option<&State>,
    generation: u32,
    max_line: usize,
) -> Result<Option<Current>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("reading metadata of {}", path.display()))?;
    let id = FileId::of(&meta);
    let start = match saved {
        None => 0,
        Some(state) if state.path != path => {
            warn!(
                "saved progress is for {}, not {}; reading from the start",
                state.path.display(),
                path.display()
            );
            0
        }
        Some(state) if state.file != id => {
            warn!(
                "{}: replaced since the last run (rotated while stopped); reading the new file from the start",
                path.display()
            );
            0
        }
        Some(state) if state.offset > meta.len() => {
            warn!(
                "{}: shorter ({} bytes) than the saved position {}; reading from the start",
                path.display(),
                meta.len(),
                state.offset
            );
            0
        }
        Some(state) => state.offset,
    };
    file.seek(SeekFrom::Start(start))
        .with_context(|| format!("seeking {}", path.display()))?;
    info!("{}: reading from byte {start}", path.display());
    Ok(Some(Current {
        file,
        id,
        generation,
        framer: Framer::new(max_line, start),
    }))
}

/// Read and route everything up to the current end of the file. A partial
/// last line stays in the framer until its newline arrives.
async fn read_available(
    current: &mut Current,
    router: &mut Router,
    stop: &CancellationToken,
) -> Result<()> {
    loop {
        // Regular-file reads come from the page cache; a blocking read here
        // is cheaper than a thread hop per chunk.
        let n = match current.file.read(current.framer.space()) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the followed file"),
        };
        if n == 0 {
            return Ok(());
        }
        current.framer.filled(n);
        while let Some(frame) = current.framer.next_frame() {
            let mark = mark(current.generation, frame.end());
            router.route(frame, Some(mark)).await;
        }
        if stop.is_cancelled() {
            return Ok(());
        }
    }
}

fn path_state(path: &Path, current: &Current) -> PathState {
    match std::fs::metadata(path) {
        Ok(meta) if FileId::of(&meta) == current.id => PathState::Same { len: meta.len() },
        Ok(_) => PathState::Replaced,
        Err(_) => PathState::Missing,
    }
}

/// Watch the file's directory: events on the file and its re-creation both
/// arrive there. Without a watcher, polling alone still works.
fn watch_directory(path: &Path, wake: Arc<Notify>) -> Option<notify::RecommendedWatcher> {
    let dir: PathBuf = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
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
