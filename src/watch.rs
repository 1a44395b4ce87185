//! Directory change events (inotify, through `notify`). They wake a task
//! at once instead of at its next periodic check; where they cannot be
//! had (NFS, the inotify limit reached) the caller keeps polling.

use std::path::Path;

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};

/// Call `on_event` for every event in `dir` (not below it) until the
/// returned watcher is dropped.
pub fn watch_directory(
    dir: &Path,
    on_event: impl Fn(&notify::Event) + Send + 'static,
) -> notify::Result<RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // An error (a queue overflow) means events were missed: a wake too.
        on_event(&event.unwrap_or_else(|_| notify::Event::default()));
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
