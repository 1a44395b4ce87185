//! `--exactly-once` at start, in file mode: find the messages the last
//! run wrote for lines after its saved position, so that re-reading those
//! lines does not send them again.
//!
//! Why reading back is enough. The file position and, per partition, the
//! offset from which this shipper's unsaved messages can be are saved in
//! one atomic state ([`ReadBack`] says how `from` is kept right). After an
//! unclean stop the lines after the saved position are read again; the
//! ones whose message is in Kafka are exactly those whose `cdrship.id`
//! appears from `from` to the partition's end. That needs the stopped
//! process to write nothing more:
//! - it is dead: its lock (beside the state) is free only then, and the
//!   kernel closed its broker connections with its descriptors;
//! - a produce request it had already sent can still be written after
//!   that (even on one broker: its bytes may still wait in the broker's
//!   socket buffer), and a record written but not yet replicated is not
//!   visible to a consumer; the *fence* waits for both before the read. Kafka's own
//!   fence (a transactional id's epoch) would make the wait needless, but
//!   neither broker this is tested on can show it (see README).
//!
//! After a clean stop (every line settled, none given up) there is
//! nothing to read back and no wait.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio_util::sync::CancellationToken;

use crate::checkpoint::{Progress, ReadBack, Recovered, State, Store};
use crate::cli::{Config, SourceConfig};
use crate::sink::Reader;

/// How the read-back went.
enum Started {
    /// Ready to read the file; what the read-back found.
    Ready(ReadBack),
    /// Stopped (a signal) before anything was sent.
    Stopped,
}

/// File mode's progress, if saved, and what `--exactly-once` found.
pub enum Opened {
    /// Progress is not saved: stdin, TCP, a file without `--state-dir`.
    Unsaved,
    /// Saved progress, and the lines already in Kafka (`--exactly-once`).
    Saved(Arc<Progress>, Option<Arc<Recovered>>),
    /// Stopped before anything was sent.
    Stopped,
}

/// Open file mode's progress and, with `--exactly-once`, recover.
pub async fn open_progress(config: &Config, stop: &CancellationToken) -> Result<Opened> {
    let (path, dir) = match &config.source {
        SourceConfig::File {
            path,
            state_dir: Some(dir),
            ..
        } => (path, dir),
        SourceConfig::File { path, .. } => {
            warn!(
                "{}: no --state-dir, progress is not saved; a restart reads the file from the start",
                path.display()
            );
            return Ok(Opened::Unsaved);
        }
        _ => return Ok(Opened::Unsaved),
    };
    let progress = Progress::new(Store::new(dir, path)?, path.clone())?;
    info!("progress is saved in {}", progress.location().display());
    let Some(fence) = config.exactly_once else {
        return Ok(Opened::Saved(Arc::new(progress), None));
    };
    let topics = [config.topic.clone(), config.reject_topic.clone()];
    match recover(&progress, &config.kafka, topics, fence, stop).await? {
        Started::Ready(read_back) => {
            let recovered = read_back.recovered.clone();
            let progress = progress.with_read_back(read_back);
            Ok(Opened::Saved(Arc::new(progress), Some(recovered)))
        }
        Started::Stopped => Ok(Opened::Stopped),
    }
}

/// Prepare `--exactly-once` for `progress`: read back after an unclean
/// stop (waiting `fence` first), or note where the partitions end.
async fn recover(
    progress: &Progress,
    kafka: &[(String, String)],
    topics: [String; 2],
    fence: Duration,
    stop: &CancellationToken,
) -> Result<Started> {
    let loaded = progress.load();
    // A state that cannot be used: everything of the topics is read back.
    let fresh = matches!(loaded, Ok(None));
    let state = loaded.ok().flatten();
    let clean = state
        .as_ref()
        .and_then(|s| s.written.as_ref())
        .filter(|w| w.clean);
    if let Some(written) = clean {
        return Ok(Started::Ready(ReadBack {
            topics,
            base: written.from.clone(),
            recovered: Arc::default(),
            fresh: false,
        }));
    }
    let reader = Reader::new(kafka, topics.clone()).context("creating the read-back consumer")?;
    if !fresh {
        info!(
            "exactly once: the last run did not stop cleanly; waiting {} s for what it had \
             sent, then reading {} and {} back",
            fence.as_secs_f64(),
            topics[0],
            topics[1]
        );
        tokio::select! {
            () = tokio::time::sleep(fence) => {}
            () = stop.cancelled() => return Ok(Started::Stopped),
        }
    }
    let mine = own_files(state.as_ref(), progress.followed());
    let started = Instant::now();
    let stopping = stop.clone();
    let read = tokio::task::spawn_blocking(move || {
        if fresh {
            return reader.ends(&stopping).map(|ends| (Vec::new(), ends));
        }
        let mine = |id: &str| file_of(id).is_some_and(|file| mine.contains(&file));
        let written = state.as_ref().and_then(|s| s.written.as_ref());
        reader.read(written, mine, &stopping)
    })
    .await
    .context("the read-back's thread")?;
    let (found, ends) = match read {
        Err(_) if stop.is_cancelled() => return Ok(Started::Stopped),
        read => read?,
    };
    if !fresh {
        info!(
            "exactly once: {} messages of lines after the saved position are in Kafka \
             (read back in {} ms); those lines are not sent again",
            found.len(),
            started.elapsed().as_millis()
        );
    }
    Ok(Started::Ready(ReadBack {
        topics,
        base: ends,
        recovered: Arc::new(Recovered::new(found)),
        fresh,
    }))
}

/// Device and inode of the files whose lines the last run can have sent:
/// those in its state, and the files beside the followed path named after
/// it (the one there now, rotated ones), which it may have opened after
/// its last save.
fn own_files(state: Option<&State>, followed: &Path) -> HashSet<(u64, u64)> {
    let mut files: HashSet<(u64, u64)> = state
        .into_iter()
        .flat_map(|s| std::iter::once(s.file).chain(s.draining.iter().map(|d| d.file)))
        .map(|f| (f.dev, f.ino))
        .collect();
    let name = followed.file_name().unwrap_or_default().as_encoded_bytes();
    let dir = followed.parent().filter(|d| !d.as_os_str().is_empty());
    if let Ok(entries) = std::fs::read_dir(dir.unwrap_or(Path::new("."))) {
        for entry in entries.flatten() {
            if !entry.file_name().as_encoded_bytes().starts_with(name) {
                continue;
            }
            if let Ok(meta) = entry.metadata() {
                files.insert((meta.dev(), meta.ino()));
            }
        }
    }
    files
}

/// Device and inode named by a `cdrship.id` (`dev:ino:fingerprint@offset`).
fn file_of(id: &str) -> Option<(u64, u64)> {
    let mut parts = id.split(':');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}
