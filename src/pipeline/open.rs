//! Opening what keeps the lines not yet delivered: a followed file's
//! progress (`--state-dir`) or the spool (`--spool-dir`), and with
//! `--exactly-once` the read-back that tells which of those lines are in
//! Kafka already ([`recover`]).

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use super::recover::{recover, Started, Target};
use crate::checkpoint::{Previous, Progress, Recovered, State, Store};
use crate::cli::{Config, SourceConfig};
use crate::outcome::Keeper;
use crate::spool::{Backlog, Spool};

/// What keeps the lines, as opened.
pub enum Opened<T> {
    /// Nothing keeps them: a file without `--state-dir`, stdin or TCP
    /// without a spool.
    Unkept,
    /// The keeper, and the lines already in Kafka (`--exactly-once`).
    Kept(T, Option<Arc<Recovered>>),
    /// Stopped before anything was read or sent; where the lines wait.
    Stopped(Keeper),
}

fn target(config: &Config, fence: Option<std::time::Duration>) -> Target<'_> {
    Target {
        kafka: &config.kafka,
        topics: [config.topic.clone(), config.reject_topic.clone()],
        fence,
    }
}

/// Open file mode's progress and, with `--exactly-once`, recover.
pub async fn open_progress(
    config: &Config,
    stop: &CancellationToken,
) -> Result<Opened<Arc<Progress>>> {
    let (path, given, dir) = match &config.source {
        SourceConfig::File {
            path,
            given,
            state_dir: Some(dir),
            ..
        } => (path, given, dir),
        SourceConfig::File { path, .. } => {
            warn!(
                "{}: no --state-dir, progress is not saved; a restart reads the file from the start",
                path.display()
            );
            return Ok(Opened::Unkept);
        }
        _ => return Ok(Opened::Unkept),
    };
    let mine = |saved: &Path| saved == path || crate::source::file::resolve(saved) == *path;
    let store = Store::taken_over(dir, path, given, mine)?;
    let progress = Progress::new(store, path.clone())?;
    info!("progress is saved in {}", progress.location().display());
    let Some(fence) = config.exactly_once else {
        return Ok(Opened::Kept(Arc::new(progress), None));
    };
    let (previous, state) = match progress.load() {
        Ok(None) => (Previous::Fresh, None),
        // Read again from the start: lines from before the saved position
        // come again, with their ids, and are found only by reading all.
        Ok(Some(state)) if state.unproven_at(path) => (Previous::Saved(None), Some(state)),
        Ok(Some(state)) => (Previous::Saved(state.written.clone()), Some(state)),
        // A state that cannot be used: everything of the topics is read back.
        Err(_) => (Previous::Saved(None), None),
    };
    let files = own_files(state.as_ref(), progress.followed());
    let mine = move |id: &str| file_of(id).is_some_and(|file| files.contains(&file));
    match recover(previous, mine, target(config, fence), stop).await? {
        Started::Ready(read_back) => {
            let recovered = read_back.recovered.clone();
            let progress = progress.with_read_back(read_back);
            Ok(Opened::Kept(Arc::new(progress), Some(recovered)))
        }
        Started::Stopped => Ok(Opened::Stopped(Keeper::File(path.clone()))),
    }
}

/// Open the spool (with the lines an earlier run left in it) and, with
/// `--exactly-once`, recover.
pub async fn open_spool(
    config: &Config,
    stop: &CancellationToken,
) -> Result<Opened<(Arc<Spool>, Backlog)>> {
    let Some(spool) = &config.spool else {
        return Ok(Opened::Unkept);
    };
    let (opened, backlog) = Spool::open(&spool.dir, spool.max_bytes)?;
    info!("spooling lines in {} until delivered", spool.dir.display());
    let Some(fence) = config.exactly_once else {
        return Ok(Opened::Kept((Arc::new(opened), backlog), None));
    };
    let previous = opened.previous().clone();
    match recover(previous, opened.owns(), target(config, fence), stop).await? {
        Started::Ready(read_back) => {
            let recovered = read_back.recovered.clone();
            let spool = opened.with_read_back(read_back);
            spool.started()?;
            Ok(Opened::Kept((Arc::new(spool), backlog), Some(recovered)))
        }
        Started::Stopped => Ok(Opened::Stopped(Keeper::Spool(spool.dir.clone()))),
    }
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

/// Device and inode named by a `cdrship.id` (`dev:ino:fingerprint@offset#linehash`).
fn file_of(id: &str) -> Option<(u64, u64)> {
    let mut parts = id.split(':');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}
